"""The synthetic set's class names, apart from its generator.

Models trained on the set (`models/tiny.py`) need its class list, not the 800 lines that render it;
`synthetic.py` builds its clips from these names.
"""

from __future__ import annotations

TIME_REVERSED_PAIRS: tuple[tuple[str, str], ...] = (
    ("moving_left", "moving_right"),
    ("growing", "shrinking"),
    ("rotating_clockwise", "rotating_counterclockwise"),
    ("fading_in", "fading_out"),
)
"""Class pairs where each is the other played backwards; frame-order-blind models cannot split them."""

CLASSES: tuple[str, ...] = (
    *(label for pair in TIME_REVERSED_PAIRS for label in pair),
    "orbiting_pair",
    "bouncing_ball",
    "flickering_checkerboard",
    "comet_trail",
)
"""All class names, in the canonical order used for the CSV and for ``generate``."""

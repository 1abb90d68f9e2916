"""Arrow of time: classify every clip and its time-reversed copy; which predictions change, for which classes?

A model that pools frames without regard to their order (a 2D network with temporal average pooling) gives
a clip and its reversal the same scores, so none of its predictions change. A model that sees motion should
change its mind exactly where the direction of time defines the class: on the synthetic set, each of the four
time-reversed pairs (moving left / right, growing / shrinking, ...) should turn into its twin, and the
classes one frame identifies should stay put.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from forwardlab.errors import ForwardlabError
from forwardlab.video.data.synthetic_classes import TIME_REVERSED_PAIRS
from forwardlab.video.errors import VideoDecodeError
from forwardlab.video.models.catalog import get_entry, load_model

Progress = Callable[[int, int], None]


def reverse_time(clips: torch.Tensor) -> torch.Tensor:
    """`(B, C, T, H, W)` played backwards: frame order reversed, nothing else touched."""
    if clips.dim() != 5:
        raise ForwardlabError(f"expected clips of shape (B, C, T, H, W), got {tuple(clips.shape)}")
    return clips.flip(2)


@dataclass(frozen=True)
class ClassReversal:
    """One class: how many of its clips change prediction when reversed; `to_twin`: how many become its twin."""

    label: str
    clips: int
    changed: int
    top1_forward: float | None
    top1_reversed: float | None
    twin: str | None = None
    to_twin: int | None = None

    @property
    def changed_share(self) -> float:
        return self.changed / self.clips if self.clips else 0.0


@dataclass(frozen=True)
class ArrowOfTimeResult:
    model: str
    weights: str
    clips: int
    changed: int
    per_class: list[ClassReversal]
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def changed_share(self) -> float:
        return self.changed / self.clips if self.clips else 0.0

    def most_sensitive(self, n: int = 5) -> list[ClassReversal]:
        """Classes whose predictions flip most often under reversal (ties: by name)."""
        ranked = sorted(self.per_class, key=lambda c: (-c.changed_share, c.label))
        return [c for c in ranked if c.changed][:n]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["changed_share"] = self.changed_share
        for row, cls in zip(out["per_class"], self.per_class, strict=True):
            row["changed_share"] = cls.changed_share
        out["most_sensitive"] = [c.label for c in self.most_sensitive()]
        return out


def reversal_predictions(model: nn.Module, clips: torch.Tensor) -> tuple[list[int], list[int]]:
    """Top-1 class index of each clip as given and played backwards."""
    with torch.inference_mode():
        forward = model(clips).argmax(dim=-1).tolist()
        backward = model(reverse_time(clips)).argmax(dim=-1).tolist()
    return forward, backward


def summarize(
    model_name: str,
    weights: str,
    labels: Sequence[str],
    forward: Sequence[str],
    backward: Sequence[str],
    *,
    pairs: Sequence[tuple[str, str]] = TIME_REVERSED_PAIRS,
    failed: dict[str, str] | None = None,
) -> ArrowOfTimeResult:
    """Per-class counts from each clip's true label and its predictions forward and backward."""
    twins = {a: b for pair in pairs for a, b in (pair, pair[::-1])}
    per_class = []
    for label in sorted(set(labels)):
        rows = [(f, b) for lbl, f, b in zip(labels, forward, backward, strict=True) if lbl == label]
        twin = twins.get(label)
        per_class.append(
            ClassReversal(
                label=label,
                clips=len(rows),
                changed=sum(f != b for f, b in rows),
                top1_forward=sum(f == label for f, _ in rows) / len(rows),
                top1_reversed=sum(b == label for _, b in rows) / len(rows),
                twin=twin,
                to_twin=None if twin is None else sum(b == twin for _, b in rows),
            )
        )
    changed = sum(f != b for f, b in zip(forward, backward, strict=True))
    return ArrowOfTimeResult(model_name, weights, len(labels), changed, per_class, dict(failed or {}))


def _clips(
    data: str | Path | None,
    out: Path,
    *,
    per_class: int,
    seed: int,
    split: str | None,
    limit: int | None,
    progress: Progress | None,
) -> list[tuple[Path, str]]:
    """(path, label) of every clip to test: the user's dataset, or a fresh synthetic split."""
    if data is None:
        from forwardlab.video.data.synthetic import generate

        made = generate(out / "synthetic", per_class=per_class, split="val", seed=seed, progress=progress)
        return [(Path(c.path), c.label) for c in made]
    from forwardlab.video.data.folder import open_dataset

    manifest = open_dataset(data, import_into=out)
    records = [r for r in manifest.records(split=split) if r.label is not None and r.status == "downloaded"]
    if not records:
        raise ForwardlabError(f"{data}: no labelled clips on disk{f' in split {split!r}' if split else ''}")
    if limit is not None and limit < len(records):
        records = random.Random(seed).sample(records, limit)
    return [(manifest.absolute(r), str(r.label)) for r in records]


def arrow_of_time(
    name: str,
    *,
    data: str | Path | None = None,
    out: Path = Path("convlab-output"),
    per_class: int = 4,
    seed: int = 0,
    split: str | None = None,
    limit: int | None = None,
    weights: str | Path | None = None,
    progress: Progress | None = None,
) -> ArrowOfTimeResult:
    """Registry model `name` (its trained weights; `weights` overrides) on `data`, or on `per_class` fresh
    synthetic clips per class written under `out/synthetic`. Clips that cannot be decoded are listed, not fatal."""
    from forwardlab.video.inference import model_input

    loaded = load_model(name, pretrained=weights is None, weights=weights, offline=True)
    entry = get_entry(name)
    clips = _clips(data, out, per_class=per_class, seed=seed, split=split, limit=limit, progress=None)
    labels: list[str] = []
    forward: list[str] = []
    backward: list[str] = []
    failed: dict[str, str] = {}
    for i, (path, label) in enumerate(clips, 1):
        try:
            batch, _ = model_input(path, entry.recipe, (1, 1))
        except VideoDecodeError as exc:
            failed[str(path)] = exc.reason
            continue
        f, b = reversal_predictions(loaded.model, batch)
        labels.append(label)
        forward.append(entry.classes[f[0]])
        backward.append(entry.classes[b[0]])
        if progress is not None:
            progress(i, len(clips))
    weights_name = str(loaded.weights_path) if loaded.weights_path else "random"
    return summarize(name, weights_name, labels, forward, backward, failed=failed)

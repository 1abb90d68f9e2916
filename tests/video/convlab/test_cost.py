"""Cost: totals against torchvision's published figures, per-layer bookkeeping, one layer three ways."""

from __future__ import annotations

import pytest

from forwardlab.video.convlab.cost import conv_variants, model_cost, reference_shape
from forwardlab.video.models.catalog import get_entry
from forwardlab.video.models.torchvision_zoo import TORCHVISION_MODELS


@pytest.mark.parametrize("name", list(TORCHVISION_MODELS))
def test_totals_match_torchvisions_published_params_and_gflops_within_one_percent(name: str) -> None:
    entry = get_entry(name)
    cost = model_cost(name, frames=16)  # the clip torchvision's figures are for, whatever the recipe's length
    assert cost.published_gmacs == entry.gmacs and cost.published_params == entry.params
    assert abs(cost.params / entry.params - 1) < 0.01
    assert abs(cost.gmacs / entry.gmacs - 1) < 0.01


def test_layers_add_up_to_the_total_and_a_layer_has_its_hand_computed_cost() -> None:
    cost = model_cost("r3d_18")
    assert sum(layer.macs for layer in cost.layers) == cost.macs == sum(cost.stages.values())
    assert sum(layer.params for layer in cost.layers) == cost.params
    stem = next(layer for layer in cost.layers if layer.name == "stem.0")
    # 64 filters of 3 x 3 x 7 x 7, one per output position of a 16 x 56 x 56 grid
    assert stem.params == 64 * 3 * 3 * 7 * 7
    assert stem.macs == stem.params * 16 * 56 * 56
    assert stem.output_shape == (1, 64, 16, 56, 56)


def test_the_published_figures_are_only_claimed_for_the_clip_they_describe() -> None:
    assert reference_shape("s3d").frames == 16 and get_entry("s3d").recipe.frames_per_clip == 128
    recipe_clip = model_cost("s3d")  # 128 frames: eight times the 16-frame MACs
    assert recipe_clip.published_gmacs is None and recipe_clip.gmacs_diff is None
    assert recipe_clip.gmacs == pytest.approx(8 * model_cost("s3d", frames=16).gmacs, rel=0.01)


def test_one_layer_as_2d_3d_and_2plus1d() -> None:
    flat, full, factorized = conv_variants(64, 64, clip=(16, 56, 56))
    assert flat.params == 64 * 64 * 9 and full.params == 64 * 64 * 27
    assert factorized.mid_channels == 144  # 27*64*64 / (9*64 + 3*64)
    assert factorized.params == full.params  # the rule's purpose: same parameters as the 3D kernel
    positions = 16 * 56 * 56  # 'same' padding, stride 1
    assert (flat.macs, full.macs, factorized.macs) == (flat.params * positions, full.params * positions,
                                                       factorized.params * positions)  # fmt: skip
    odd = conv_variants(3, 45, kernel_t=3, kernel_s=7, clip=(8, 32, 32))[2]
    assert odd.mid_channels == (3 * 49 * 3 * 45) // (49 * 3 + 3 * 45)

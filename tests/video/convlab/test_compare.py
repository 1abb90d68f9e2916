"""2D vs 3D vs (2+1)D: a real (tiny-budget) training run of the three networks, and its table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forwardlab.errors import ForwardlabError
from forwardlab.video.convlab.compare import TINY_MODELS, CompareResult, compare, recorded
from forwardlab.video.data.synthetic_classes import CLASSES
from forwardlab.video.models import tiny
from forwardlab.video.models.catalog import get_entry


@pytest.mark.slow
def test_compare_trains_the_three_networks_with_one_budget(tmp_path: Path) -> None:
    result = compare(tmp_path, epochs=1, per_class=1, val_per_class=1, workers=0)
    assert [r.model for r in result.rows] == list(TINY_MODELS)
    for row in result.rows:
        params = sum(p.numel() for p in tiny.BUILDERS[row.model](num_classes=len(CLASSES)).parameters())
        assert row.params == params
        assert row.gmacs == pytest.approx(get_entry(row.model).gmacs, rel=0.01)
        assert row.val_clips == len(CLASSES)
        assert row.top1 is not None and 0 <= row.top1 <= 1 and row.time_reversed_top1 is not None
        assert (tmp_path / "runs" / row.model / "model.pt").is_file()  # really trained
    params = {r.model: r.params for r in result.rows}
    assert params["tiny_2d"] < params["tiny_3d"]
    assert abs(params["tiny_r2plus1d"] / params["tiny_3d"] - 1) < 0.01  # the (2+1)D width rule
    saved = CompareResult.from_dict(json.loads((tmp_path / "compare.json").read_text()))
    assert saved == result and "1 clips per class, 1 epochs" in saved.source


def test_recorded_table_and_bad_budgets() -> None:
    table = recorded()
    by_model = {r.model: r for r in table.rows}
    assert by_model["tiny_r2plus1d"].time_reversed_top1 > by_model["tiny_2d"].time_reversed_top1  # type: ignore[operator]
    assert by_model["tiny_3d"].top1 is None  # no shipped weights, so no figures claimed
    with pytest.raises(ForwardlabError, match="epochs"):
        compare(Path("unused"), epochs=0)
    with pytest.raises(ForwardlabError, match="not one of the small networks"):
        compare(Path("unused"), models=["r3d_18"])

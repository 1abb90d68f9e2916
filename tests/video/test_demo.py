"""The video demo end to end: the contact sheet it draws, and on a freshly generated split (a seed the
shipped weights never saw) the figures the issue promises: (2+1)D >= 90% top-1, the 2D model at chance
on the time-reversed pairs but not elsewhere, and the shipped weights reproducing their recorded accuracy."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from forwardlab.video.data.synthetic_classes import CLASSES
from forwardlab.video.demo import DEMO_PER_CLASS, SHEET_FRAMES, SHEET_SIZE, DemoResult, model_figures, run_demo
from forwardlab.video.models.tiny import recorded_accuracy
from forwardlab.video.visualize import contact_sheet
from tests.support.browser import ARTIFACTS, open_page


def test_demo_writes_probe_json_and_a_sheet_with_a_row_per_class(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "out", per_class=1, seed=5, models=None)
    assert result.n_clips == len(CLASSES)
    probes = json.loads(result.probe_json.read_text())
    assert {p["label"] for p in probes} == set(CLASSES)
    assert all(p["codec"] == "h264" and p["n_frames"] > 0 for p in probes)
    sheet = Image.open(result.contact_sheet)
    assert sheet.width >= SHEET_FRAMES * SHEET_SIZE
    assert sheet.height >= len(CLASSES) * SHEET_SIZE
    assert (result.dataset_root / "annotations" / "val.csv").is_file()


def test_contact_sheet_shows_every_frame_once() -> None:
    red = torch.zeros(3, 3, 10, 10, dtype=torch.uint8)
    red[:, 0] = 255
    blue = torch.zeros(2, 3, 10, 10, dtype=torch.uint8)
    blue[:, 2] = 255
    pixels = np.asarray(contact_sheet([("red", red), ("blue", blue)], max_cols=2))
    is_red = (pixels == (255, 0, 0)).all(axis=2)
    is_blue = (pixels == (0, 0, 255)).all(axis=2)
    assert is_red.sum() == 3 * 100 and is_blue.sum() == 2 * 100
    red_rows, blue_rows = np.nonzero(is_red.any(axis=1))[0], np.nonzero(is_blue.any(axis=1))[0]
    assert red_rows.max() < blue_rows.min()  # clips are stacked in order
    assert len(np.unique(np.nonzero(is_red.any(axis=1))[0] // 10)) >= 2  # 3 frames wrap at 2 columns


def test_model_figures_match_a_hand_count() -> None:
    def row(path: str, label: str, prediction: str | None, top5: list[str], status: str = "ok") -> dict[str, object]:
        return {"path": path, "label": label, "prediction": prediction, "top5_labels": top5, "status": status}

    rows = [
        row("a", "moving_left", "moving_right", ["moving_right", "moving_left"]),  # twin confusion
        row("b", "moving_right", "moving_right", ["moving_right", "moving_left"]),
        row("c", "comet_trail", "comet_trail", ["comet_trail"]),
        row("d", "growing", "comet_trail", ["comet_trail", "fading_in"]),  # wrong pair, not in top-5
        row("e", "growing", None, [], status="failed"),
    ]
    f = model_figures(rows, CLASSES)
    assert (f["clips"], f["failed"], f["twin_confusions"]) == (4, 1, 1)
    assert f["top1"] == 2 / 4 and f["top5"] == 3 / 4
    assert f["time_reversed_top1"] == 1 / 3 and f["single_frame_top1"] == 1.0 and f["pair_top1"] == 2 / 3
    assert f["per_class_top1"]["moving_left"] == 0.0 and f["per_class_top1"]["bouncing_ball"] is None
    assert f["mean_class_accuracy"] == 0.5  # over the four classes present: 0, 1, 1, 0
    i, j = CLASSES.index("moving_left"), CLASSES.index("moving_right")
    assert f["confusion"][i][j] == 1 and sum(map(sum, f["confusion"])) == 4


# ============================================================================= the full demo, fresh data

FRESH_SEED = 20240611  # not the seed the shipped weights were trained and recorded on (0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(tmp_path_factory.mktemp("demo") / "out", seed=FRESH_SEED)


@pytest.mark.slow
def test_demo_numbers_hold_on_a_fresh_generation(demo: DemoResult) -> None:
    assert demo.summary_json is not None
    summary = json.loads(demo.summary_json.read_text())
    assert summary["dataset"]["seed"] == FRESH_SEED and summary["dataset"]["clips"] == DEMO_PER_CLASS * len(CLASSES)
    r21, d2 = summary["models"]["tiny_r2plus1d"], summary["models"]["tiny_2d"]
    for figures in (r21, d2):
        assert figures["clips"] == DEMO_PER_CLASS * len(CLASSES) and figures["failed"] == 0
        assert set(figures["per_class_top1"]) == set(CLASSES)
        assert {"top1", "top5", "mean_class_accuracy", "time_reversed_top1"} <= set(figures)
    assert r21["top1"] >= 0.90
    assert r21["time_reversed_top1"] >= 0.85  # it tells the directions apart
    assert d2["time_reversed_top1"] <= 0.60  # at or near chance within the pairs
    assert d2["single_frame_top1"] >= d2["time_reversed_top1"] + 0.30  # clearly better where one frame tells
    assert d2["twin_confusions"] > 0  # its pair mistakes include the exact time-reversed twin
    assert demo.figures.keys() == {"tiny_2d", "tiny_r2plus1d"}


def _noise(p: float, n: int, n_recorded: int) -> float:
    """Three standard errors of the difference of two accuracies measured on independent splits."""
    return 3 * math.sqrt(p * (1 - p) / n + p * (1 - p) / n_recorded)


@pytest.mark.slow
def test_shipped_weights_reproduce_their_recorded_accuracy(demo: DemoResult) -> None:
    """On this other-seed split: the (2+1)D model within 2 points of its recorded top-1 and top-5.

    The 2D model cannot be held to 2 points across seeds: on the pair classes it guesses, so its top-1
    moves by about 5 points (one standard error) between two 96-clip splits by design. It is held to its
    sampling noise instead; clip-by-clip reproduction of both models on a regenerated copy of the recorded
    split is `test_tiny.test_shipped_weights_reproduce_their_recorded_predictions`.
    """
    assert demo.summary_json is not None
    summary = json.loads(demo.summary_json.read_text())
    recorded = recorded_accuracy()
    r21, d2 = summary["models"]["tiny_r2plus1d"], summary["models"]["tiny_2d"]
    assert abs(r21["top1"] - recorded["tiny_r2plus1d"]["top1"]) <= 0.02
    assert abs(r21["top5"] - recorded["tiny_r2plus1d"]["top5"]) <= 0.02
    n, n_recorded = d2["clips"], recorded["tiny_2d"]["val_clips"]
    for key, share in (("top1", 1.0), ("top5", 1.0), ("single_frame_top1", 1 / 3), ("time_reversed_top1", 2 / 3)):
        p = recorded["tiny_2d"][key]
        assert abs(d2[key] - p) <= max(0.02, _noise(p, round(n * share), round(n_recorded * share))), key


@pytest.mark.slow
def test_demo_report_is_one_offline_page(demo: DemoResult) -> None:
    assert demo.report is not None
    page = demo.report.read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count("data:image/png;base64,") == len(CLASSES)  # the gallery: one clip per class
    assert "Why the 2D model confuses the time-reversed pairs" in page
    assert page.count('<table class="cm">') == 2
    for label in CLASSES:
        assert label in page
    assert (demo.report.parent / "contact_sheet.png").is_file()
    assert (demo.report.parent / "eval" / "tiny_2d" / "results.parquet").is_file()


@pytest.mark.slow
def test_demo_report_renders_in_a_browser(demo: DemoResult) -> None:
    assert demo.report is not None
    with open_page(demo.report, screenshot=ARTIFACTS / "video-demo-report.png") as page:
        assert page.locator("table.cm").count() == 2
        shown = page.evaluate("Array.from(document.images).filter(i => i.naturalWidth > 0).length")
        assert shown >= len(CLASSES)  # gallery thumbnails decoded, contact sheet linked

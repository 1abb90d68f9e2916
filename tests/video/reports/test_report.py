"""The results report, the gallery page and the preview, built from a real (tiny) evaluation run."""

from __future__ import annotations

import base64
import csv
import io
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from forwardlab.video.data.manifest import ClipRecord, Manifest
from forwardlab.video.data.synthetic import generate
from forwardlab.video.errors import ReportError
from forwardlab.video.evaluate import evaluate
from forwardlab.video.models.tiny import TINY_RECIPE
from forwardlab.video.reports import plots
from forwardlab.video.reports.gallery_page import build_gallery_page
from forwardlab.video.reports.report_page import build_report
from forwardlab.video.reports.results import load_run
from forwardlab.video.visualize import model_input_preview
from tests.support.browser import ARTIFACTS, open_page
from tests.support.cli_runner import run as run_cli

CLASSES = ("moving_left", "moving_right", "bouncing_ball", "flickering_checkerboard")
MISLABELLED = "comet_trail"  # the bouncing ball clip is labelled this: a guaranteed, known mistake


def _image(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("report")
    root = base / "data"
    clips = generate(root, per_class=1, seed=5, classes=CLASSES)
    (root / "val" / "broken.mp4").write_bytes(b"\x00" * 300)
    records = [
        ClipRecord(
            path=str(c.path.relative_to(root)),
            label=MISLABELLED if c.label == "bouncing_ball" else c.label,
            split="val",
            source="test",
        )
        for c in clips
    ]
    records.append(ClipRecord(path="val/broken.mp4", label="moving_left", split="val", source="test"))
    manifest = Manifest.create(base / "manifest.sqlite", root)
    manifest.upsert(records)
    manifest.refresh(workers=2)
    out = base / "run"
    evaluate(manifest, "tiny_r2plus1d", out=out, workers=0, batch=4)
    return out


def _predictions(results: Path) -> list[dict[str, str]]:
    with (results / "predictions.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_report_of_a_real_run(results: Path) -> None:
    page_path = build_report(results, workers=2)
    assert page_path == results / "report.html"
    page = page_path.read_text()
    predictions = _predictions(results)
    wrong = [p for p in predictions if p["correct"] == "False"]
    assert any(p["label"] == MISLABELLED for p in wrong)
    assert page.count("data-correct='incorrect'") == len(wrong)
    assert page.count("data-correct='correct'") == len(predictions) - len(wrong)
    assert "val/broken.mp4" in page and "corrupt" in page  # the failure, with its status
    # the known mistake is a most-confused pair, its example linked
    mistake = next(p for p in wrong if p["label"] == MISLABELLED)
    assert re.search(f"<td>{MISLABELLED}</td><td>{mistake['prediction']}</td><td class='num'>1</td>", page)
    # every linked video and thumbnail exists, relative to the page
    for href in re.findall(r"(?:href|src)='([^'#][^']*)'", page):
        if not href.startswith("data:"):
            assert (page_path.parent / unquote(href)).exists(), href
    assert len(list((results / "report_files").glob("*.webp"))) == len(predictions)


@pytest.mark.slow
def test_report_in_a_browser_filters_by_correctness_and_class(results: Path) -> None:
    page_path = build_report(results, workers=2)
    wrong = [p for p in _predictions(results) if p["correct"] == "False"]
    with open_page(page_path, screenshot=ARTIFACTS / "report.png") as page:
        rows = page.locator("#gallery tbody tr:visible")
        assert rows.count() == len(_predictions(results))
        page.select_option("#gallery select.f-correct", "incorrect")
        assert rows.count() == len(wrong)
        for i in range(rows.count()):
            assert rows.nth(i).get_attribute("data-correct") == "incorrect"
        page.select_option("#gallery select.f-correct", "correct")
        page.select_option("#gallery select.f-class", MISLABELLED)
        assert rows.count() == 0
        page.select_option("#gallery select.f-correct", "")
        assert rows.count() == 1
        assert page.locator("#gallery .f-count").inner_text() == f"1 of {len(_predictions(results))} clips shown"


@pytest.mark.slow
def test_gallery_pages_of_a_run_and_of_a_dataset(results: Path, tmp_path: Path) -> None:
    of_run = build_gallery_page(results, tmp_path / "run" / "gallery.html", workers=2)
    with open_page(of_run, screenshot=ARTIFACTS / "gallery_results.png") as page:
        page.select_option("#gallery select.f-correct", "incorrect")
        assert page.locator("#gallery tbody tr:visible").count() >= 1
    manifest = load_run(results).summary["data"]["manifest"]
    of_data = build_gallery_page(manifest, tmp_path / "data" / "gallery.html", workers=2, limit=3)
    text = of_data.read_text()
    assert "<select class='f-correct'" not in text and text.count("<tr data-label=") == 3
    with open_page(of_data, screenshot=ARTIFACTS / "gallery_dataset.png") as page:
        assert page.locator("#gallery tbody tr:visible").count() == 3


@pytest.mark.slow
def test_report_cli_and_a_folder_that_is_not_a_run(results: Path, tmp_path: Path) -> None:
    done = run_cli("video", "report", str(results), "--out", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.html").is_file()
    bad = run_cli("video", "report", str(tmp_path))
    assert bad.returncode == 2
    assert "not a finished evaluation folder; missing summary.json, results.parquet" in bad.stderr
    with pytest.raises(ReportError, match="no such results folder"):
        load_run(tmp_path / "absent")


@pytest.mark.slow
def test_preview_shows_the_original_beside_the_model_input(results: Path, tmp_path: Path) -> None:
    clip = next((load_run(results).root / "val" / "moving_left").glob("*.mp4"))
    preview = model_input_preview(clip, TINY_RECIPE, tmp_path / "p.gif", height=96)
    assert preview.model_frames == TINY_RECIPE.frames_per_clip
    assert preview.end_s - preview.start_s == pytest.approx(TINY_RECIPE.frames_per_clip / TINY_RECIPE.fps)
    with Image.open(preview.path) as gif:
        assert gif.n_frames == preview.source_frames > preview.model_frames
        assert gif.height == 96 + 14  # the frames plus a caption line
        # right half: the 48x72 model input enlarged to the original's height, aspect kept
        assert gif.width > 96 * 72 / 48


def test_confusion_focus_keeps_400_classes_readable() -> None:
    rng = np.random.default_rng(0)
    matrix = np.diag(rng.integers(5, 20, size=400))
    for a, b in [(10, 11), (200, 201), (300, 42)]:
        matrix[a, b] += 30
        matrix[b, a] += 20
    for _ in range(200):
        i, j = rng.integers(0, 400, size=2)
        matrix[i, j] += 1
    order = plots.confusion_focus(matrix, limit=30)
    assert len(order) == 30 and len(set(order)) == 30
    for a, b in [(10, 11), (200, 201), (300, 42)]:
        assert abs(order.index(a) - order.index(b)) == 1  # swapped pairs sit side by side
    names = [f"class_{i:03d}" for i in range(400)]
    heatmap = _image(plots.confusion_heatmap(matrix, names, order, title="t"))
    assert heatmap.width <= 1500 and heatmap.height <= 1400
    few = plots.confusion_focus(np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]]))
    assert sorted(few) == [0, 1]  # a class with no sample and no prediction is left out


def test_per_class_chart_at_400_classes_shows_the_extremes() -> None:
    values = [(f"class_{i:03d}", i / 400) for i in range(400)]
    chart = _image(plots.per_class_bars(values, title="t", xlabel="top-1", extremes=15, fraction=True))
    few = _image(plots.per_class_bars(values[:10], title="t", xlabel="top-1", fraction=True))
    assert chart.height < 1000 and few.height < chart.height

"""The lab's page in a real browser, and the commands as a user runs them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import forwardlab
from forwardlab.video.convlab.compare import CompareResult, recorded
from forwardlab.video.convlab.report import ReportInputs, build_report
from tests.support.browser import ARTIFACTS, open_page
from tests.support.cli_runner import run as run_cli

SOURCE = {"PYTHONPATH": str(Path(forwardlab.__file__).parents[1])}  # the tree under test, not another install


def run(*args: str):  # type: ignore[no-untyped-def]
    return run_cli(*args, env=SOURCE)


@pytest.mark.slow
def test_report_is_one_self_contained_page(tmp_path: Path) -> None:
    shipped = recorded()
    headline = CompareResult([replace(r, top1=0.5) for r in shipped.rows], "a compare run", {"epochs": 1})
    compare_json = tmp_path / "compare.json"
    compare_json.write_text(json.dumps(headline.to_dict()))
    inputs = ReportInputs(
        zoo=("r3d_18", "s3d", "mvit_v2_s", "tiny_2d", "tiny_r2plus1d"),
        equivariance_models=("tiny_2d",),
        arrow_models=("tiny_2d", "tiny_r2plus1d"),
        arrow_per_class=1,
        filter_models=("tiny_r2plus1d",),
        compare_json=compare_json,
    )
    report = build_report(tmp_path / "out", inputs)
    page_html = report.html.read_text()
    assert "http://" not in page_html and "https://" not in page_html and "<script" not in page_html
    data = json.loads(report.data.read_text())
    assert data["compare"]["source"] == "a compare run"
    assert {c["model"] for c in data["cost"]} == set(inputs.zoo)
    with open_page(report.html, screenshot=ARTIFACTS / "convlab_report.png") as page:
        headings = page.locator("h2").all_inner_texts()  # type: ignore[attr-defined]
        images = page.locator("img").count()  # type: ignore[attr-defined]
        gif = page.locator("img.gif").first.get_attribute("src")  # type: ignore[attr-defined]
    assert [h.split(":")[0] for h in headings] == [
        "2D vs 3D vs (2+1)D on the synthetic set", "Cost", "Receptive fields", "Equivariance", "Arrow of time",
        "First-layer filters",
    ]  # fmt: skip
    assert images >= 4 and gif.startswith("data:image/gif;base64,")


def test_cli_cost_and_receptive_field_as_json() -> None:
    result = run("video", "convlab", "cost", "--model", "tiny_3d", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["models"][0]["params"] == 226_492 and data["models"][0]["published_gmacs"] == 0.142
    assert [v["kind"] for v in data["conv_variants"]] == ["2D", "3D", "(2+1)D"]
    result = run("video", "convlab", "receptive-field", "--model", "r3d_18", "--json")
    assert result.returncode == 0, result.stderr
    layer4 = next(s for s in json.loads(result.stdout)[0]["stages"] if s["stage"] == "layer4")
    assert (layer4["rf_frames"], layer4["stride_t"], layer4["stride_h"]) == (109, 8, 16)


def test_cli_bad_input_is_one_line_and_exit_2() -> None:
    result = run("video", "convlab", "equivariance", "--model", "nope")
    assert result.returncode == 2 and "unknown model 'nope'" in result.stderr
    result = run("video", "convlab", "cost", "--clip", "16x56")
    assert result.returncode == 2 and "--clip '16x56'" in result.stderr
    result = run("video", "convlab", "report", "--compare", "missing.json")
    assert result.returncode == 2 and "missing.json: no such compare result" in result.stderr

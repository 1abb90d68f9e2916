"""Evaluation: metrics against a hand-made table, outputs that agree with each other, bad rows that are
recorded rather than fatal, resume after SIGKILL, and the Ray engine giving the local engine's results.

The model is the registry's `mc3_18` with random weights saved to a file, its classifier bias tilted
towards classes 0..4 (in that order) so every video's top-5 is known in advance while the scores still
depend on the video. Labels are then chosen to make top-1 hits, top-5-only hits and misses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest
import torch

from forwardlab.errors import ForwardlabError
from forwardlab.video.data.manifest import ClipRecord, Manifest
from forwardlab.video.data.synthetic import generate
from forwardlab.video.errors import DatasetError, EvaluationError, ModelError
from forwardlab.video.evaluate import (
    EvalSummary,
    ResultRow,
    _RowLog,
    _write_parquet,
    confusion_matrix,
    evaluate,
    mean_class_accuracy,
    per_class_accuracy,
    topk_accuracy,
)
from forwardlab.video.inference import Item, Outcome, Ranking, decode_views
from forwardlab.video.io import probe, read_frames, read_views
from forwardlab.video.models.catalog import get_entry
from forwardlab.video.transforms import to_model_input
from tests.support.clips import write_video

MODEL = "mc3_18"
CLASSES = get_entry(MODEL).classes
VIEWS = (2, 1)  # two clips per video, so batches of 3 clips straddle videos
BATCH = 3
SYNTH_CLASSES = ["moving_left", "moving_right", "growing", "shrinking", "bouncing_ball", "comet_trail"]


# ============================================================================= metrics, by hand

# Six samples, three classes: the ranked predictions, the true labels, and what a person computes.
RANKED = [[0, 1, 2], [1, 0, 2], [1, 2, 0], [1, 0, 2], [2, 1, 0], [0, 1, 2]]
LABELS = [0, 0, 1, 1, 2, 1]
# top-1 predictions 0 1 1 1 2 0 -> hits T F T T T F = 4/6; label within the first two: all 6
CONFUSION = [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
PER_CLASS = {0: 1 / 2, 1: 2 / 3, 2: 1 / 1}  # mean 13/18


def test_metrics_match_a_hand_computed_table() -> None:
    assert topk_accuracy(RANKED, LABELS, 1) == pytest.approx(4 / 6)
    assert topk_accuracy(RANKED, LABELS, 2) == pytest.approx(1.0)
    assert topk_accuracy(RANKED, LABELS, 3) == pytest.approx(1.0)
    top1 = [r[0] for r in RANKED]
    np.testing.assert_array_equal(confusion_matrix(LABELS, top1, 3), CONFUSION)
    assert per_class_accuracy(LABELS, top1, 4) == pytest.approx(PER_CLASS)  # class 3 has no samples: absent
    assert mean_class_accuracy(LABELS, top1, 4) == pytest.approx(13 / 18)


def test_metrics_refuse_empty_or_mismatched_input() -> None:
    with pytest.raises(ValueError, match="undefined"):
        topk_accuracy([], [], 1)
    with pytest.raises(ValueError, match="undefined"):
        mean_class_accuracy([], [], 3)
    with pytest.raises(ValueError, match="labels"):
        topk_accuracy(RANKED, LABELS[:-1], 1)
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 2)


# ============================================================================= fixtures


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random mc3_18 weights with the classifier tilted: every video ranks classes 0, 1, 2, 3, 4 first."""
    torch.manual_seed(0)
    model = get_entry(MODEL).builder(len(CLASSES))
    fc = model.fc
    assert isinstance(fc, torch.nn.Linear)
    with torch.no_grad():
        fc.bias[:5] += torch.tensor([10.0, 8.0, 6.0, 4.0, 2.0])
    path = tmp_path_factory.mktemp("weights") / "mc3_18_random.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """Six synthetic clips, one too short for the recipe, and three bad rows (missing, corrupt, stale)."""
    base = tmp_path_factory.mktemp("evaldata")
    root = base / "root"
    clips = generate(root, per_class=1, seed=3, classes=SYNTH_CLASSES)
    (root / "val" / "short").mkdir(parents=True)
    write_video(root / "val" / "short" / "short.mp4", n_frames=6, fps=25, width=96, height=72)
    (root / "val" / "bad.mp4").write_bytes(b"\x00" * 400)
    rel = [str(c.path.relative_to(root)) for c in clips]
    labels: list[str | None] = [CLASSES[0], CLASSES[0], CLASSES[3], CLASSES[10], clips[4].label, None]
    records = [ClipRecord(path=p, label=lbl, split="val", source="test") for p, lbl in zip(rel, labels, strict=True)]
    records += [
        ClipRecord(path="val/short/short.mp4", label=CLASSES[3], split="val", source="test"),
        ClipRecord(path="val/gone.mp4", label=CLASSES[0], split="val", source="test"),
        ClipRecord(path="val/bad.mp4", label=CLASSES[0], split="val", source="test"),
    ]
    manifest = Manifest.create(base / "manifest.sqlite", root)
    manifest.upsert(records)
    manifest.refresh(workers=2)
    # listed as downloaded, but gone by the time evaluation runs: a decode failure, not a manifest status
    manifest.upsert(
        [ClipRecord(path="val/stale.mp4", label=CLASSES[1], split="val", source="test", status="downloaded")]
    )
    return manifest


def run(manifest: Manifest, out: Path, weights: Path, engine: Literal["local", "ray"] = "local") -> EvalSummary:
    return evaluate(manifest, MODEL, out=out, views=VIEWS, batch=BATCH, workers=2, weights=weights, engine=engine)


@pytest.fixture(scope="module")
def reference(dataset: Manifest, weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted local run, shared by the checks and the comparisons."""
    out = tmp_path_factory.mktemp("reference")
    run(dataset, out, weights)
    return out


def assert_same_results(a: Path, b: Path) -> None:
    """What must not change between runs: every output but timings, scores equal to float rounding
    (batches hold other clips after a resume, and the BLAS kernels may sum in another order)."""
    left, right = pd.read_parquet(a / "results.parquet"), pd.read_parquet(b / "results.parquet")
    timing_and_scores = ["decode_s", "model_s", "top5_scores"]
    pd.testing.assert_frame_equal(left.drop(columns=timing_and_scores), right.drop(columns=timing_and_scores))
    for path, x, y in zip(left["path"], left["top5_scores"], right["top5_scores"], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=path)
    for name in ("predictions.csv", "per_class.csv", "confusion.csv"):
        assert (a / name).read_text() == (b / name).read_text(), name
    summary_a, summary_b = (json.loads((out / "summary.json").read_text()) for out in (a, b))
    for key in ("counts", "metrics", "failures", "label_not_in_model_classes", "views", "recipe"):
        assert summary_a[key] == summary_b[key], key


# ============================================================================= decoding


def test_one_decode_gives_exactly_what_the_recipe_preset_gives(dataset: Manifest) -> None:
    recipe = get_entry(MODEL).recipe
    record = next(r for r in dataset.records(status="downloaded") if r.label == CLASSES[0])
    path = dataset.absolute(record)
    clips_uint8, padded = decode_views(path, recipe, (2, 3))
    assert clips_uint8.dtype == torch.uint8 and clips_uint8.shape == (6, 16, 3, 112, 112) and padded == 0
    timestamps = recipe.sampler(2)(probe(path))
    expected_uint8 = read_views(path, timestamps, size=recipe.decode_size, crop=recipe.crop_size, spatial_crops=3)
    assert torch.equal(clips_uint8, expected_uint8)
    ours = to_model_input(clips_uint8, recipe.mean, recipe.std)
    preset = recipe.preset(3)
    reference = torch.cat([preset(read_frames(path, ts, size=recipe.decode_size).data) for ts in timestamps])
    assert ours.dtype == torch.float32 and ours.shape == reference.shape == (6, 3, 16, 112, 112)
    assert torch.equal(ours, reference)


# ============================================================================= the result row


def test_result_rows_round_trip_through_the_log_and_parquet(tmp_path: Path) -> None:
    """An ok, a failed and a skipped row: read back from results.partial.jsonl and results.parquet as
    they were written, under the column types the report pages read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    item = Item(key="val/a.mp4", path="/data/val/a.mp4", label=CLASSES[1])
    ranking = Ranking(indices=[1, 0, 2, 3, 4], scores=[0.5, 0.2, 0.1, 0.1, 0.05], view_indices=[[1, 0, 2, 3, 4]] * 2)
    ok = ResultRow.of(Outcome(item, ranking, None, n_views=2, padded=3, decode_s=0.25, model_s=0.5), CLASSES, 1)
    assert (ok.status, ok.prediction, ok.correct_top1, ok.correct_top5) == ("ok", CLASSES[1], True, True)
    assert ok.top5_labels == list(CLASSES[1::-1]) + list(CLASSES[2:5]) and ok.view_top5 == ranking.view_indices
    other = Item(key="val/c.mp4", path="/data/val/c.mp4", label=CLASSES[7])
    missed = ResultRow.of(Outcome(other, ranking, None, n_views=2, padded=0, decode_s=0.1, model_s=0.1), CLASSES, 7)
    assert (missed.correct_top1, missed.correct_top5) == (False, False)
    gone = Item(key="val/d.mp4", path="/data/val/d.mp4", label=None)
    failed = ResultRow.of(Outcome(gone, None, "file does not exist", 0, 0, decode_s=0.01, model_s=0.0), CLASSES, None)
    assert (failed.status, failed.error, failed.prediction) == ("failed", "file does not exist", None)
    assert failed.top5_labels == [] and failed.decode_s == 0.01
    record = ClipRecord(path="val/b.mp4", label="x", split="val", source="t", status="missing")
    skipped = ResultRow.skipped(record, None)
    assert (skipped.status, skipped.error, skipped.n_views) == ("missing", "status missing", 0)
    rows = [ok, missed, failed, skipped]

    log = _RowLog(tmp_path / "log.jsonl")
    for row in rows:
        log.append(row)
    log.close()
    reopened = _RowLog(tmp_path / "log.jsonl")
    reopened.close()
    assert list(reopened.rows.values()) == rows

    _write_parquet(tmp_path / "results.parquet", rows)
    table = pq.read_table(tmp_path / "results.parquet")
    assert table.schema.equals(
        pa.schema(
            [
                ("path", pa.string()),
                ("label", pa.string()),
                ("label_index", pa.int32()),
                ("status", pa.string()),
                ("error", pa.string()),
                ("prediction", pa.string()),
                ("top5_labels", pa.list_(pa.string())),
                ("top5_scores", pa.list_(pa.float64())),
                ("correct_top1", pa.bool_()),
                ("correct_top5", pa.bool_()),
                ("n_views", pa.int32()),
                ("padded", pa.int32()),
                ("decode_s", pa.float64()),
                ("model_s", pa.float64()),
                ("view_top5", pa.list_(pa.list_(pa.int32()))),
            ]
        )
    )
    assert [ResultRow.from_dict(r) for r in table.to_pylist()] == rows


# ============================================================================= a full run


def test_outputs_are_written_and_agree_with_each_other(reference: Path) -> None:
    summary = json.loads((reference / "summary.json").read_text())
    results = pd.read_parquet(reference / "results.parquet")
    counts = summary["counts"]
    assert list(results["path"]) == sorted(results["path"])
    assert counts["rows"] == len(results) == 10
    assert counts == {
        "rows": 10,
        "evaluated": 7,
        "failed": 1,
        "missing": 1,
        "corrupt": 1,
        "scored": 5,
        "label_not_in_model_classes": 1,
        "unlabeled": 1,
        "padded_videos": 1,
        "clips": 14,
    }
    assert dict(results["status"].value_counts()) == {"ok": 7, "failed": 1, "missing": 1, "corrupt": 1}
    assert summary["views"] == {"temporal": 2, "spatial": 1, "per_video": 2}
    assert summary["model"] == MODEL and summary["recipe"]["frames_per_clip"] == 16

    ok = results[results["status"] == "ok"]
    assert all(list(t) == list(CLASSES[:5]) for t in ok["top5_labels"])  # the tilted classifier
    assert (ok["n_views"] == 2).all() and ok["top5_scores"].map(lambda s: list(s) == sorted(s, reverse=True)).all()
    assert (ok["decode_s"] > 0).all() and (ok["model_s"] > 0).all()
    # labels: 2x class 0 (top-1 hits), class 3 twice (top-5 only, one is the short video), class 10 (miss)
    assert summary["metrics"] == pytest.approx(
        {
            "video_top1": 2 / 5,
            "video_top5": 4 / 5,
            "clip_top1": 4 / 10,
            "clip_top5": 8 / 10,
            "mean_class_accuracy": 1 / 3,
        }
    )
    # the same metrics from the rows themselves
    scored = ok[ok["label_index"].notna()]
    ranked = [[CLASSES.index(c) for c in t] for t in scored["top5_labels"]]
    labels = [int(x) for x in scored["label_index"]]
    assert topk_accuracy(ranked, labels, 1) == pytest.approx(summary["metrics"]["video_top1"])
    assert summary["label_not_in_model_classes"] == {"bouncing_ball": 1}

    predictions = pd.read_csv(reference / "predictions.csv", keep_default_na=False)
    assert list(predictions.columns) == ["video", "label", "prediction", "top5", "correct"]
    assert list(predictions["video"]) == list(ok["path"])
    assert (predictions["prediction"] == CLASSES[0]).all()
    assert predictions["top5"].iloc[0] == ";".join(CLASSES[:5])
    assert sorted(predictions["correct"]) == ["", "", "False", "False", "False", "True", "True"]

    per_class = pd.read_csv(reference / "per_class.csv")
    assert list(per_class["class"]) == [CLASSES[0], CLASSES[3], CLASSES[10]]
    assert list(per_class["videos"]) == [2, 2, 1] and per_class["videos"].sum() == counts["scored"]
    assert list(per_class["top1_accuracy"]) == [1.0, 0.0, 0.0] and list(per_class["top5_accuracy"]) == [1.0, 1.0, 0.0]

    confusion = pd.read_csv(reference / "confusion.csv", index_col=0)
    assert list(confusion.index) == list(confusion.columns) == [CLASSES[0], CLASSES[3], CLASSES[10]]
    assert confusion.to_numpy().tolist() == [[2, 0, 0], [2, 0, 0], [1, 0, 0]]
    assert confusion.to_numpy().sum() == counts["scored"]

    timing = summary["timing"]
    assert timing["videos_this_run"] == 8 and timing["resumed_videos"] == 0 and timing["videos_per_s"] > 0


def test_bad_rows_are_counted_with_reasons_not_fatal(reference: Path) -> None:
    summary = json.loads((reference / "summary.json").read_text())
    failures = {f["path"]: (f["status"], f["reason"]) for f in summary["failures"]}
    assert failures.keys() == {"val/gone.mp4", "val/bad.mp4", "val/stale.mp4"}
    assert failures["val/gone.mp4"] == ("missing", "file not on disk")
    assert failures["val/bad.mp4"][0] == "corrupt" and "not a readable video" in failures["val/bad.mp4"][1]
    assert failures["val/stale.mp4"] == ("failed", "file does not exist")
    results = pd.read_parquet(reference / "results.parquet").set_index("path")
    assert results.loc["val/stale.mp4", "error"] == "file does not exist"
    assert results.loc["val/stale.mp4", "n_views"] == 0


def test_a_video_too_short_for_the_recipe_is_padded_not_an_error(reference: Path) -> None:
    results = pd.read_parquet(reference / "results.parquet").set_index("path")
    short = results.loc["val/short/short.mp4"]
    assert short["status"] == "ok" and short["error"] is None
    assert short["padded"] > 0  # 6 frames at 25 fps cannot fill 2 x 16 frames at 15 fps
    assert (results.drop(index="val/short/short.mp4").query("status == 'ok'")["padded"] == 0).all()


# ============================================================================= resume


@pytest.mark.slow
def test_resume_after_sigkill_ends_with_the_uninterrupted_outputs(
    dataset: Manifest, weights: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    # The victim stalls after its third durable row (its decode worker keeps prefetching meanwhile), so
    # the kill lands mid-run however fast the machine is.
    code = f"""
import sys, time
from pathlib import Path
import forwardlab.video.evaluate as ev
append = ev._RowLog.append
def stalling_append(self, row):
    append(self, row)
    if len(self.rows) >= 3:
        time.sleep(600)
ev._RowLog.append = stalling_append
ev.evaluate(Path(sys.argv[1]), {MODEL!r}, out=Path(sys.argv[2]), views={VIEWS!r}, batch={BATCH}, workers=1,
            weights=Path(sys.argv[3]))
"""
    log = tmp_path / "victim.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(dataset.path), str(out), str(weights)],
            start_new_session=True,  # its decode worker shares the group: kill -9 takes the whole job down
            stderr=stderr,
        )
    partial = out / "results.partial.jsonl"
    deadline = time.monotonic() + 240  # a guard against a hang, not a timing assertion
    try:
        while not (partial.exists() and partial.read_bytes().count(b"\n") >= 3):
            assert proc.poll() is None, f"evaluation ended before it was killed: {log.read_text()}"
            assert time.monotonic() < deadline, "no rows became durable"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    durable = partial.read_bytes().count(b"\n")
    assert durable == 3
    with partial.open("ab") as f:  # and a row torn mid-write, as a kill during a write leaves
        f.write(b'{"path": "val/sh')

    summary = run(dataset, out, weights)
    assert summary.resumed == durable
    assert json.loads((out / "summary.json").read_text())["timing"]["videos_this_run"] == 8 - durable
    assert_same_results(reference, out)


def test_rerun_of_a_finished_folder_dataset_and_changed_settings(weights: Path, tmp_path: Path) -> None:
    """A class-folder dataset is indexed into `out`, not into the source; a finished run reruns instantly;
    other settings in the same `out` are refused."""
    src = tmp_path / "ucf"
    for label in ("Archery", "Bowling"):
        (src / label).mkdir(parents=True)
        write_video(src / label / f"v_{label}_g01_c01.mp4", n_frames=20, fps=20, width=80, height=60)
    out = tmp_path / "out"
    first = evaluate(src, MODEL, out=out, views=(1, 1), batch=2, workers=0, weights=weights)
    assert (out / "manifest.sqlite").is_file() and not (src / "manifest.sqlite").exists()
    assert first.counts["evaluated"] == 2 and first.counts["label_not_in_model_classes"] == 2
    assert first.counts["scored"] == 0 and first.metrics["video_top1"] is None
    summary = json.loads((out / "summary.json").read_text())
    assert summary["label_not_in_model_classes"] == {"Archery": 1, "Bowling": 1}

    again = evaluate(src, MODEL, out=out, views=(1, 1), batch=2, workers=0, weights=weights)
    assert again.resumed == 2 and again.counts == first.counts
    with pytest.raises(EvaluationError, match=r"other settings.*views"):
        evaluate(src, MODEL, out=out, views=(2, 1), weights=weights)
    with pytest.raises(EvaluationError, match=r"other settings.*sample: None there, 'uniform:8' now"):
        evaluate(src, MODEL, out=out, views=(1, 1), sample="uniform:8", weights=weights)

    ruled = evaluate(src, MODEL, out=tmp_path / "ruled", sample="uniform:8", batch=2, workers=0, weights=weights)
    written = json.loads((tmp_path / "ruled" / "summary.json").read_text())
    assert written["recipe"]["sample"] == "uniform:8" and written["views"]["per_video"] == 1
    assert ruled.counts["evaluated"] == 2 and ruled.counts["clips"] == 2


# ============================================================================= Ray


@pytest.mark.slow
def test_ray_engine_gives_the_local_engines_results(
    dataset: Manifest, weights: Path, reference: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray.data")
    run(dataset, tmp_path / "ray", weights, engine="ray")
    assert_same_results(reference, tmp_path / "ray")


def test_ray_engine_without_ray_names_the_extra(
    dataset: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(EvaluationError, match=r"forwardlab\[ray\]"):
        evaluate(dataset, MODEL, out=tmp_path, engine="ray")


# ============================================================================= bad input


def test_unknown_model_lists_the_known_ones(dataset: Manifest, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"unknown model 'r4d_99'.*r2plus1d_18.*r3d_18"):
        evaluate(dataset, "r4d_99", out=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written before the name was checked


def test_empty_dataset_is_a_clear_error(tmp_path: Path) -> None:
    empty = Manifest.create(tmp_path / "empty.sqlite", tmp_path)
    with pytest.raises(DatasetError, match="empty"):
        evaluate(empty, MODEL, out=tmp_path / "out", pretrained=False)
    only_missing = Manifest.create(tmp_path / "missing.sqlite", tmp_path)
    only_missing.upsert([ClipRecord(path="a.mp4", label="x", split="val", source="t", reason="gone")])
    with pytest.raises(DatasetError, match=r"none of its 1 clips is downloaded.*a\.mp4: gone"):
        evaluate(only_missing, MODEL, out=tmp_path / "out", pretrained=False)
    with pytest.raises(ForwardlabError, match="no such manifest"):
        evaluate(tmp_path / "nowhere", MODEL, out=tmp_path / "out", pretrained=False)


def test_bad_views_and_sizes_are_refused(dataset: Manifest, tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="C = 1 or 3"):
        evaluate(dataset, MODEL, out=tmp_path, views=(2, 2))
    with pytest.raises(EvaluationError, match="batch"):
        evaluate(dataset, MODEL, out=tmp_path, batch=0)


def test_evaluate_cli_writes_results_and_resumes(tmp_path: Path) -> None:
    from tests.support.cli_runner import run

    generate(tmp_path / "data", per_class=1, seed=11, classes=["moving_left", "bouncing_ball"])
    torch.manual_seed(0)
    weights = tmp_path / "mc3.pth"
    torch.save(get_entry("mc3_18").builder(400).state_dict(), weights)
    args = ["video", "evaluate", "--data", str(tmp_path / "data"), "--model", "mc3_18", "--weights", str(weights),
            "--views", "1x1", "--out", str(tmp_path / "run")]  # fmt: skip
    first = run(*args)
    assert first.returncode == 0, first.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["counts"]["evaluated"] == 2
    again = run(*args)
    assert again.returncode == 0, again.stderr
    rerun = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert rerun["metrics"] == summary["metrics"] and rerun["counts"] == summary["counts"]
    bad = run("video", "evaluate", "--data", str(tmp_path / "data"), "--model", "nope", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "known models" in bad.stderr

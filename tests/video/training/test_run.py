"""Training: the loss falls, a killed run resumes to the same weights, heads are replaced without touching
the backbone, trained folders work in predict/evaluate, and bad input gets a clear message.

Everything trains `tiny_2d` (the cheapest network) on a few synthetic clips of classes one frame tells
apart, so a handful of steps is enough to see learning.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from forwardlab.video.data.folder import import_folder
from forwardlab.video.data.manifest import Manifest
from forwardlab.video.data.synthetic import generate
from forwardlab.video.errors import DatasetError, ModelError, TrainError
from forwardlab.video.evaluate import evaluate
from forwardlab.video.models.catalog import get_entry, load_trained, register_trained
from forwardlab.video.models.registry import find_weights
from forwardlab.video.models.trained import CARD_NAME, MODEL_NAME
from forwardlab.video.predict import predict
from forwardlab.video.train_cli import train as train_command
from forwardlab.video.training.loop import lr_factor
from forwardlab.video.training.model import prepare_model, replace_head
from forwardlab.video.training.run import CHECKPOINT_NAME, train
from forwardlab.video.transforms import flip_allowed

CLASSES = ["bouncing_ball", "comet_trail", "flickering_checkerboard"]
FAST = {"epochs": 3, "batch": 4, "lr": 5e-3, "workers": 1, "seed": 3}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    root = tmp_path_factory.mktemp("train-data")
    generate(root, per_class=4, split="train", seed=11, classes=CLASSES)
    generate(root, per_class=2, split="val", seed=11, classes=CLASSES)
    return import_folder(root, workers=2)


@pytest.fixture(scope="module")
def trained(dataset: Manifest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ref"
    train(dataset, "tiny_2d", out=out, **FAST)
    return out


def test_loss_falls_and_the_run_writes_its_files(dataset: Manifest, tmp_path: Path) -> None:
    result = train(dataset, "tiny_2d", out=tmp_path / "run", **{**FAST, "epochs": 6})
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0], losses
    assert result.classes == tuple(sorted(CLASSES))
    assert not (result.out / CHECKPOINT_NAME).exists() and not (result.out / "cache").exists()
    metrics = (result.out / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5")
    assert len(metrics) == 1 + 6
    card = json.loads(result.card_path.read_text())
    assert card["base_model"] == "tiny_2d" and card["classes"] == sorted(CLASSES)
    assert card["training"]["seed"] == 3 and card["training"]["augmentation"]["horizontal_flip"] is True
    assert card["data"]["train_clips"] == 12 and card["data"]["val_clips"] == 6
    assert card["metrics"]["epoch"] == 6 and "val_top1" in card["metrics"]
    assert {"torch", "torchvision", "forwardlab", "python", "av"} <= set(card["versions"])
    assert card["recipe"]["frames_per_clip"] == get_entry("tiny_2d").recipe.frames_per_clip


def test_without_the_frame_cache_each_video_is_probed_once(
    dataset: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forwardlab.video.io as video_io

    probed: Counter[str] = Counter()
    real_probe = video_io.probe

    def counting_probe(path: str | Path) -> video_io.VideoInfo:
        probed[str(path)] += 1
        return real_probe(path)

    monkeypatch.setattr(video_io, "probe", counting_probe)
    result = train(dataset, "tiny_2d", out=tmp_path / "run", cache=False, **{**FAST, "epochs": 2, "workers": 0})
    assert len(result.history) == 2 and not result.failed
    assert not json.loads(result.card_path.read_text())["training"]["frame_cache"]
    assert len(probed) == 12 + 6, probed  # every training and validation video, each once over both epochs
    assert set(probed.values()) == {1}, probed


_KILLED_RUN = """
import json, sys, time
from forwardlab.video.training.run import train
args = json.loads(sys.argv[1])
def progress(done, total):
    if done == args["pause_at"]:
        print("PAUSED", flush=True)
        time.sleep(600)
train(args["data"], "tiny_2d", out=args["out"], progress=progress, **args["kw"])
"""


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(dataset: Manifest, trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    steps_per_epoch = 12 // FAST["batch"]
    args = {"data": str(dataset.path), "out": str(out), "kw": FAST, "pause_at": steps_per_epoch + 1}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, json.dumps(args)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill takes its data-loading workers too
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "PAUSED"  # one step into epoch 2
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert (out / CHECKPOINT_NAME).is_file() and not (out / MODEL_NAME).exists()
    assert torch.load(out / CHECKPOINT_NAME, weights_only=True)["epoch"] == 1

    result = train(dataset, "tiny_2d", out=out, **FAST)
    assert result.resumed_from_epoch == 1
    ours = torch.load(out / MODEL_NAME, weights_only=True)
    reference = torch.load(trained / MODEL_NAME, weights_only=True)
    assert ours.keys() == reference.keys()
    for key in reference:
        assert torch.equal(ours[key], reference[key]), key
    reference_history = json.loads((trained / CARD_NAME).read_text())["history"]
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in reference_history]


def test_a_resume_with_other_settings_is_refused(dataset: Manifest, tmp_path: Path) -> None:
    out = tmp_path / "run"

    def stop(_row: dict[str, float]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(dataset, "tiny_2d", out=out, on_epoch=stop, **FAST)
    with pytest.raises(TrainError, match=r"other settings \(lr: 0.005 there, 0.001 now"):
        train(dataset, "tiny_2d", out=out, **{**FAST, "lr": 1e-3})


def test_head_replacement_keeps_the_backbone_and_known_classes() -> None:
    shipped = torch.load(find_weights(get_entry("tiny_2d")), weights_only=True)  # type: ignore[arg-type]
    published = get_entry("tiny_2d").classes
    prepared = prepare_model("tiny_2d", ["growing", "my_new_class", "comet_trail"], from_pretrained=True)
    assert prepared.head_replaced and prepared.head_classes_kept == ("growing", "comet_trail")
    state = prepared.model.state_dict()
    assert state.keys() == shipped.keys()
    for key, value in shipped.items():
        if not key.startswith("fc."):
            assert torch.equal(state[key], value), key
    assert state["fc.weight"].shape == (3, shipped["fc.weight"].shape[1])
    assert torch.equal(state["fc.weight"][0], shipped["fc.weight"][published.index("growing")])
    assert torch.equal(state["fc.bias"][2], shipped["fc.bias"][published.index("comet_trail")])

    same = prepare_model("tiny_2d", published, from_pretrained=True)
    assert not same.head_replaced
    assert all(torch.equal(same.model.state_dict()[k], v) for k, v in shipped.items())


def test_replace_head_finds_conv_heads_too() -> None:
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 8, 1), torch.nn.ReLU(), torch.nn.Conv3d(8, 4, 1))
    before = model[0].weight.clone()
    kept = replace_head(model, ["a", "b", "c", "d"], ["d", "e"])
    assert kept == ["d"]
    assert isinstance(model[2], torch.nn.Conv3d) and model[2].out_channels == 2
    assert torch.equal(model[0].weight, before)
    with pytest.raises(ModelError, match="no Linear or Conv3d layer with 7 outputs"):
        replace_head(model, list("abcdefg"), ["x"])


def test_trained_folder_works_in_predict_and_evaluate(dataset: Manifest, trained: Path, tmp_path: Path) -> None:
    loaded = load_trained(trained)
    assert loaded.entry.classes == tuple(sorted(CLASSES))
    assert loaded.entry.recipe == get_entry("tiny_2d").recipe
    videos = [dataset.absolute(r) for r in dataset.records(split="val")[:2]]
    results = predict(videos, model=loaded, top=2)
    assert all(p.top[0][0] in CLASSES and len(p.top) == 2 for p in results)

    entry = register_trained(trained)
    assert get_entry(str(trained)) is entry
    summary = evaluate(dataset, str(trained), out=tmp_path / "eval", split="val", workers=0)
    assert summary.counts["evaluated"] == summary.counts["scored"] == 6
    assert summary.metrics["video_top1"] is not None


def test_flip_rule_and_schedule() -> None:
    assert flip_allowed(["bouncing_ball", "comet_trail"])
    assert not flip_allowed(["moving_left", "growing"])
    assert not flip_allowed(["rotating_counterclockwise", "x"])
    assert not flip_allowed(["Turning Right"])
    factors = [lr_factor(s, total_steps=10, warmup_steps=2) for s in range(10)]
    assert factors[0] == 0.5 and factors[1] == 1.0 and factors[2] == 1.0
    assert all(a >= b for a, b in itertools.pairwise(factors[2:]))
    assert lr_factor(10, total_steps=10, warmup_steps=2) == pytest.approx(0.0)


# ============================================================================= bad input


def test_one_class_is_refused(tmp_path: Path) -> None:
    generate(tmp_path / "one", per_class=2, split="train", seed=0, classes=["growing"])
    with pytest.raises(DatasetError, match=r"only one class \('growing'\).*at least two"):
        train(tmp_path / "one", "tiny_2d", out=tmp_path / "out", workers=0)


def test_empty_datasets_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no video files"):
        train(tmp_path / "empty", "tiny_2d", out=tmp_path / "out1", workers=0)
    for label in ("a", "b"):
        (tmp_path / "broken" / label).mkdir(parents=True)
        (tmp_path / "broken" / label / "x.mp4").write_bytes(b"not a video")
    with pytest.raises(DatasetError, match="the dataset is empty: no labelled, downloaded clips"):
        train(tmp_path / "broken", "tiny_2d", out=tmp_path / "out2", workers=0)


def test_unknown_model_is_refused(dataset: Manifest, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"unknown model 'tiny_4d'; known models: .*tiny_2d"):
        train(dataset, "tiny_4d", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_used_output_folders_are_refused(dataset: Manifest, trained: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="already holds a trained model"):
        train(dataset, "tiny_2d", out=trained, **FAST)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(TrainError, match=r"exists and is not empty \(notes.txt\)"):
        train(dataset, "tiny_2d", out=tmp_path, **FAST)
    with pytest.raises(TrainError, match="epochs must be >= 1"):
        train(dataset, "tiny_2d", out=tmp_path / "new", epochs=0)


def test_cli_help_and_errors(dataset: Manifest, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(train_command)
    app.command("other")(lambda: None)  # two commands: `train` stays a named sub-command
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    assert "--from-pretrained" in result.output and "forwardlab video train --data" in result.output
    result = runner.invoke(app, ["train", "--data", str(dataset.path), "--model", "nope", "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, ModelError)

"""The model registry against torchvision itself: recipes, weight loading, logits, and clear errors."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from forwardlab.video.errors import ModelError
from forwardlab.video.inference import model_input
from forwardlab.video.io import VideoInfo, read_frames
from forwardlab.video.models.catalog import get_entry, load_model
from forwardlab.video.models.registry import REGISTRY
from forwardlab.video.models.torchvision_zoo import TORCHVISION_MODELS
from forwardlab.video.predict import predict
from tests.support.cli_runner import run
from tests.support.clips import write_video

HEAVY = {"mvit_v1_b", "mvit_v2_s", "swin3d_s", "swin3d_b", "s3d"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("reg") / "clip.mp4", n_frames=40, fps=25, width=320, height=240)


def save_random_weights(name: str, folder: Path) -> Path:
    builder, _weights = TORCHVISION_MODELS[name]
    torch.manual_seed(0)
    model = builder(weights=None, num_classes=400)
    path = folder / get_entry(name).weights.file_name  # type: ignore[union-attr]
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in TORCHVISION_MODELS]
)
def test_recipe_and_weights_give_torchvisions_logits(
    name: str, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORWARDLAB_WEIGHTS", str(tmp_path))
    path = save_random_weights(name, tmp_path)
    builder, weights = TORCHVISION_MODELS[name]
    frames = read_frames(clip, [k / 25 for k in range(16)]).data  # native size, uint8 (T, C, H, W)

    ours = load_model(name)
    assert ours.weights_path == path
    theirs = builder(weights=None).eval()
    theirs.load_state_dict(torch.load(path, weights_only=True))
    with torch.inference_mode():
        our_logits = ours.model(ours.entry.recipe.preset()(frames))
        their_logits = theirs(weights.transforms()(frames).unsqueeze(0))
    assert torch.equal(our_logits, their_logits)
    assert ours.entry.classes == tuple(weights.meta["categories"])
    assert ours.entry.params == sum(p.numel() for p in theirs.parameters())


def test_recipes_come_from_the_weights_metadata() -> None:
    r2 = get_entry("r2plus1d_18").recipe
    assert (r2.frames_per_clip, r2.fps, r2.resize_size, r2.crop_size, r2.temporal_views) == (
        16,
        15,
        (128, 171),
        (112, 112),
        5,
    )
    swin = get_entry("swin3d_t").recipe
    assert (swin.frames_per_clip, swin.resize_size, swin.temporal_views, swin.mean) == (
        32,
        256,
        12,
        (0.485, 0.456, 0.406),
    )
    assert get_entry("mvit_v1_b").recipe.fps == 7.5
    assert set(REGISTRY) >= set(TORCHVISION_MODELS)


def test_model_input_shapes_follow_the_recipe_and_views(clip: Path) -> None:
    recipe = get_entry("r3d_18").recipe
    batch, padded = model_input(clip, recipe, views=(3, 3))
    assert batch.shape == (9, 3, 16, 112, 112) and batch.dtype == torch.float32
    assert padded == 0  # 1.6 s holds three 16-frame clips at 15 fps, the last ending on the last frame


def test_a_video_shorter_than_the_recipe_is_padded_not_refused(tmp_path: Path) -> None:
    short = write_video(tmp_path / "short.mp4", n_frames=8, fps=25, width=160, height=120)
    batch, padded = model_input(short, get_entry("r3d_18").recipe, views=(1, 1))
    assert batch.shape == (1, 3, 16, 112, 112)
    assert padded > 0


def test_i3d_is_registered_with_its_recipe_and_parameter_count() -> None:
    entry = get_entry("i3d")
    model = entry.builder(entry.num_classes)
    assert entry.params == sum(p.numel() for p in model.parameters())
    assert entry.recipe.mean == (0.5, 0.5, 0.5) and entry.recipe.fps == 25
    assert entry.recipe.sample == "all@25"  # DeepMind's protocol: the whole clip at 25 fps
    assert entry.classes[0] == "abseiling" and len(entry.classes) == 400


def test_a_run_samples_by_the_rule_the_views_or_the_published_protocol() -> None:
    r3d, i3d = get_entry("r3d_18").recipe, get_entry("i3d").recipe
    assert r3d.for_run(None, None) == (r3d, (5, 1))
    recipe, views = r3d.for_run("uniform:64", None)
    assert (recipe.sample, recipe.temporal_views, views) == ("uniform:64", 1, (1, 1))
    recipe, views = r3d.for_run("multiview:4x16@15", (4, 3))
    assert (recipe.sampler().n_views, views) == (4, (4, 3))
    recipe, views = i3d.for_run(None, (2, 1))  # views alone: K clips of 64 frames, not the whole video
    assert recipe.sample is None and len(recipe.sampler(2).views(_info(10.0))) == 2 and views == (2, 1)
    assert i3d.for_run(None, None)[0].sampler().views(_info(10.0))[0][-1] == Fraction(249, 25)
    with pytest.raises(ModelError, match=r"views 3x1: all@25 gives 1 view\(s\) per video, not 3"):
        i3d.for_run("all@25", (3, 1))
    with pytest.raises(ModelError, match="unknown sample spec 'every:3'"):
        r3d.with_sample("every:3")
    assert i3d.describe() == "all@25 (1x1 views, at least 64 frames)"
    assert r3d.describe() == "5x1 views of 16 frames @ 15 fps"


def _info(duration_s: float) -> VideoInfo:
    return VideoInfo(
        path="x.mp4", size_bytes=1, container="mp4", codec="h264", pixel_format="yuv420p", width=320, height=240,
        coded_width=320, coded_height=240, rotation_deg=0, duration_s=duration_s, start_s=0.0, fps=25.0,
        variable_frame_rate=False, n_frames=int(duration_s * 25), n_frames_exact=True, has_audio=False,
    )  # fmt: skip


def test_predict_returns_sorted_probabilities(clip: Path, tmp_path: Path) -> None:
    weights = save_random_weights("r3d_18", tmp_path)
    (result,) = predict([clip], model="r3d_18", weights=weights, top=5, views=(2, 1))
    probabilities = [p for _, p in result.top]
    assert len(result.top) == 5 and probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 and result.views == 2
    assert all(label in get_entry("r3d_18").classes for label, _ in result.top)


def test_predict_cli_json(clip: Path, tmp_path: Path) -> None:
    weights = save_random_weights("mc3_18", tmp_path)
    result = run(
        "video", "predict", str(clip), "--model", "mc3_18", "--weights", str(weights), "--views", "1x1", "--json"
    )
    assert result.returncode == 0, result.stderr
    (video,) = json.loads(result.stdout)
    assert video["path"] == str(clip) and len(video["top"]) == 5 and video["seconds"] > 0

    ruled = run("video", "predict", str(clip), "--model", "mc3_18", "--weights", str(weights), "--sample", "all@25",
                "--views", "1x3", "--json")  # fmt: skip
    assert ruled.returncode == 0, ruled.stderr
    (video,) = json.loads(ruled.stdout)
    assert video["views"] == 3 and video["padded_frames"] == 0  # 40 frames at 25 fps, one view, 3 crops
    bad = run("video", "predict", str(clip), "--model", "mc3_18", "--sample", "every:2")
    assert bad.returncode == 2 and "unknown sample spec 'every:2'" in bad.stderr


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'resnet9000'; known models: .*r2plus1d_18.*swin3d_t"):
        get_entry("resnet9000")
    result = run("video", "predict", "x.mp4", "--model", "resnet9000")
    assert result.returncode == 2 and "known models" in result.stderr


def test_offline_without_weights_says_which_file_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDLAB_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ModelError) as error:
        load_model("r3d_18", offline=True)
    message = str(error.value)
    assert "r3d_18-b3b3357e.pth" in message and str(tmp_path / "weights") in message
    assert "https://download.pytorch.org/models/r3d_18-b3b3357e.pth" in message


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    wrong = save_random_weights("mc3_18", tmp_path)
    with pytest.raises(ModelError, match="does not fit r3d_18"):
        load_model("r3d_18", weights=wrong)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a loadable weights file"):
        load_model("r3d_18", weights=garbage)


def test_models_cli_reports_offline_weights(tmp_path: Path) -> None:
    save_random_weights("r3d_18", tmp_path)
    result = run(
        "video", "models", "--json", env={"FORWARDLAB_WEIGHTS": str(tmp_path), "TORCH_HOME": str(tmp_path / "t")}
    )
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["r3d_18"]["weights"] == str(tmp_path / "r3d_18-b3b3357e.pth")
    assert rows["swin3d_t"]["weights"] is None and rows["swin3d_t"]["weights_url"].endswith(".pth")

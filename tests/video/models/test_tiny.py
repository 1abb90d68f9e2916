"""The three tiny networks: one skeleton, three convolutions; order blindness of the 2D one; shipped weights."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from forwardlab.video.data.folder import import_folder
from forwardlab.video.data.synthetic import generate
from forwardlab.video.data.synthetic_classes import CLASSES
from forwardlab.video.evaluate import evaluate
from forwardlab.video.models import tiny
from forwardlab.video.models.catalog import get_entry, load_model
from forwardlab.video.models.registry import REGISTRY, find_weights

T, H, W = tiny.TINY_RECIPE.frames_per_clip, *tiny.TINY_RECIPE.crop_size  # type: ignore[misc]


def clip_batch(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, T, H, W, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(tiny.BUILDERS))
def test_builders_are_keyword_only_and_give_one_score_per_class(name: str) -> None:
    builder = tiny.BUILDERS[name]
    with pytest.raises(TypeError):
        builder(5)  # type: ignore[misc]
    model = builder(num_classes=5, width=8).eval()
    with torch.inference_mode():
        assert model(clip_batch()).shape == (2, 5)
        assert model(torch.randn(1, 3, 4, 32, 40)).shape == (1, 5)  # any clip length and frame size


def _skeleton(model: nn.Module) -> list[tuple[str, str, tuple[int, ...]]]:
    """Every module outside the convolution blocks, with its parameter shapes."""
    out = []
    for name, module in model.named_modules():
        if ".conv" in f".{name}" or name.startswith("stem.0"):
            continue  # the convolution blocks: conv1/conv2 in each residual block, stem.0 in the stem
        shapes = tuple(s for p in module.parameters(recurse=False) for s in p.shape)
        out.append((name, type(module).__name__, shapes))
    return out


def test_the_three_networks_differ_only_in_their_convolutions() -> None:
    skeletons = [_skeleton(b(num_classes=12)) for b in tiny.BUILDERS.values()]
    assert skeletons[0] == skeletons[1] == skeletons[2]
    kernels = {
        name: {tuple(m.kernel_size) for m in b(num_classes=12).modules() if isinstance(m, nn.Conv3d)}
        for name, b in tiny.BUILDERS.items()
    }
    assert kernels["tiny_2d"] == {(1, 3, 3), (1, 1, 1)}
    assert kernels["tiny_3d"] == {(3, 3, 3), (1, 1, 1)}
    assert kernels["tiny_r2plus1d"] == {(1, 3, 3), (3, 1, 1), (1, 1, 1)}


def test_2d_model_cannot_see_frame_order_and_the_others_can() -> None:
    x = clip_batch()
    shuffled = x[:, :, torch.randperm(T, generator=torch.Generator().manual_seed(1))]
    for name, builder in tiny.BUILDERS.items():
        torch.manual_seed(0)
        model = builder(num_classes=12).eval()
        for module in model.modules():  # wake the zero-initialised residual branches
            if isinstance(module, nn.BatchNorm3d):
                nn.init.normal_(module.weight, 1.0, 0.2)
        with torch.inference_mode():
            forward, reversed_, mixed = model(x), model(x.flip(2)), model(shuffled)
        if name == "tiny_2d":
            torch.testing.assert_close(forward, reversed_, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(forward, mixed, rtol=1e-5, atol=1e-5)
        else:
            assert not torch.allclose(forward, reversed_, atol=1e-4), name


def test_registry_entries_and_recorded_costs() -> None:
    for name in tiny.BUILDERS:
        entry = get_entry(name)
        assert REGISTRY[name] is entry
        assert entry.classes == CLASSES
        assert entry.recipe == tiny.TINY_RECIPE
        assert entry.params == sum(p.numel() for p in tiny.BUILDERS[name](num_classes=len(CLASSES)).parameters())
        assert entry.gmacs == tiny._gmacs(tiny.BUILDERS[name](num_classes=len(CLASSES)).kind)
    assert get_entry("tiny_3d").weights is None  # only the 2D and (2+1)D nets ship weights


@pytest.mark.parametrize("name", list(tiny.SHIPPED))
def test_shipped_weights_load_by_name_offline(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORWARDLAB_WEIGHTS", "")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty cache: only the package has them
    entry = get_entry(name)
    path = find_weights(entry)
    assert path is not None and path.name == tiny.SHIPPED[name]
    assert path.stat().st_size < 5 * 2**20
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["fc.weight"].shape == (len(CLASSES), 4 * tiny.DEFAULT_WIDTH)
    loaded = load_model(name, offline=True)
    assert loaded.weights_path == path
    assert not loaded.model.training
    with torch.inference_mode():
        assert loaded.model(clip_batch(1)).shape == (1, len(CLASSES))


def test_recorded_accuracy_ships_with_the_weights() -> None:
    recorded = json.loads(tiny.RECORDED_ACCURACY_PATH.read_text())
    assert set(recorded["models"]) == set(tiny.SHIPPED)
    for name, figures in recorded["models"].items():
        assert get_entry(name).accuracy["acc@1"] == pytest.approx(100 * figures["top1"], abs=0.01)
    assert "scripts/train_tiny.py" in recorded["command"]


@pytest.mark.slow
def test_shipped_weights_reproduce_their_recorded_predictions(tmp_path: Path) -> None:
    """Regenerate the first clips of the recorded val split (same seed: the same clips, encoded afresh) and
    check every prediction and the accuracy against what `scripts/train_tiny.py` recorded."""
    recorded = json.loads(tiny.RECORDED_ACCURACY_PATH.read_text())
    data = recorded["data"]
    generate(tmp_path / "val", per_class=4, split="val", seed=data["seed"])
    manifest = import_folder(tmp_path / "val", workers=2)
    for name in tiny.SHIPPED:
        expected = recorded["models"][name]["predictions"]
        summary = evaluate(manifest, name, out=tmp_path / name, workers=2)
        rows = pd.read_parquet(summary.files["results"])
        assert len(rows) == 4 * len(CLASSES) and set(rows["path"]) <= set(expected)
        agree = sum(expected[p] == pred for p, pred in zip(rows["path"], rows["prediction"], strict=True))
        assert agree >= len(rows) - 1, f"{name}: {agree}/{len(rows)} predictions as recorded"
        recorded_top1 = sum(expected[p] == label for p, label in zip(rows["path"], rows["label"], strict=True))
        assert abs(summary.metrics["video_top1"] - recorded_top1 / len(rows)) <= 0.0201  # type: ignore[operator]

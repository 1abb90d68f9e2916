"""The catalog: every family registers where it is defined, names and trained folders resolve, and the
registry stays a leaf (it imports no family, so no family can form a cycle through it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from forwardlab.video.errors import ModelError
from forwardlab.video.models import i3d, tiny, torchvision_zoo
from forwardlab.video.models.catalog import (
    BUILT_IN,
    entries,
    get_entry,
    load_model,
    load_trained,
    register_trained,
)
from forwardlab.video.models.registry import REGISTRY, ModelEntry
from forwardlab.video.models.trained import (
    CARD_FORMAT,
    CARD_NAME,
    MODEL_NAME,
    is_trained_model,
    read_card,
    recipe_from_card,
    recipe_to_card,
)

CLASSES = ["growing", "comet_trail", "bouncing_ball"]


def _imported_after(statement: str) -> set[str]:
    """The forwardlab.video modules a fresh interpreter holds after running `statement`."""
    code = f"import sys\n{statement}\nprint('\\n'.join(m for m in sys.modules if m.startswith('forwardlab.video')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def trained_folder(folder: Path, base: str = "tiny_2d", *, seed: int = 0) -> Path:
    """A trained model folder as `forwardlab video train` leaves it, with random weights (no training)."""
    folder.mkdir(parents=True)
    entry = get_entry(base)
    torch.manual_seed(seed)
    torch.save(entry.builder(len(CLASSES)).state_dict(), folder / MODEL_NAME)
    card = {
        "format": CARD_FORMAT,
        "format_version": 1,
        "base_model": base,
        "classes": CLASSES,
        "recipe": recipe_to_card(entry.recipe),
        "weights": {"file": MODEL_NAME},
        "metrics": {"val_top1": 0.5, "val_top5": 1.0},
    }
    (folder / CARD_NAME).write_text(json.dumps(card), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "registered",
    [torchvision_zoo.ENTRIES, {"i3d": i3d.ENTRY}, tiny.ENTRIES],
    ids=["torchvision_zoo", "i3d", "tiny"],
)
def test_every_family_registers_its_models_where_it_is_defined(registered: dict[str, ModelEntry]) -> None:
    assert registered
    for name, entry in registered.items():
        assert entry.name == name and REGISTRY[name] is entry and get_entry(name) is entry
    assert [n for n in BUILT_IN if n in registered] == list(registered)


def test_the_listing_is_the_built_in_models_in_family_order_then_the_rest(tmp_path: Path) -> None:
    listed = list(entries())
    assert listed[: len(BUILT_IN)] == list(BUILT_IN)
    assert (*torchvision_zoo.TORCHVISION_MODELS, "i3d", *tiny.BUILDERS) == BUILT_IN
    folder = trained_folder(tmp_path / "run")
    register_trained(folder)
    assert list(entries())[-1] == str(folder)


def test_the_listing_order_does_not_depend_on_what_was_imported_first() -> None:
    code = (
        "import forwardlab.video.models.tiny\n"
        "from forwardlab.video.models.catalog import entries\n"
        "print(','.join(entries()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().split(",") == list(BUILT_IN)


def test_the_registry_is_a_leaf() -> None:
    loaded = _imported_after("import forwardlab.video.models.registry")
    assert not {m for m in loaded if m.startswith("forwardlab.video.models.")} - {"forwardlab.video.models.registry"}
    assert not {m for m in loaded if m.startswith(("forwardlab.video.train", "forwardlab.video.training"))}


def test_tiny_needs_the_synthetic_class_list_not_its_generator() -> None:
    loaded = _imported_after("import forwardlab.video.models.tiny")
    assert "forwardlab.video.data.synthetic_classes" in loaded
    assert "forwardlab.video.data.synthetic" not in loaded


def test_i3d_takes_torchvisions_kinetics_400_classes() -> None:
    assert get_entry("i3d").classes == get_entry("r3d_18").classes
    assert len(get_entry("i3d").classes) == 400 and get_entry("i3d").family == "deepmind"


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ModelError, match=r"unknown model 'r9d_1'; known models: .*i3d.*r3d_18.*tiny_2d"):
        get_entry("r9d_1")


def test_a_trained_folder_resolves_by_path_with_its_base_models_builder(tmp_path: Path) -> None:
    folder = trained_folder(tmp_path / "run")
    entry = get_entry(str(folder))
    assert REGISTRY[str(folder)] is entry  # registered under its path on first use
    base = get_entry("tiny_2d")
    assert entry.classes == tuple(CLASSES) and entry.recipe == base.recipe and entry.builder is base.builder
    assert entry.family == "trained from tiny_2d" and entry.accuracy == {"acc@1": 50.0, "acc@5": 100.0}

    saved = torch.load(folder / MODEL_NAME, weights_only=True)
    for loaded in (load_model(str(folder)), load_trained(folder)):
        assert loaded.weights_path == (folder / MODEL_NAME).resolve()
        assert not loaded.model.training
        assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in saved.items())


def test_a_folder_trained_from_a_trained_folder_resolves_through_it(tmp_path: Path) -> None:
    first = trained_folder(tmp_path / "first", "tiny_r2plus1d")
    second = trained_folder(tmp_path / "second", str(first), seed=1)
    entry = get_entry(str(second))
    assert entry.family == f"trained from {first}" and entry.builder is get_entry("tiny_r2plus1d").builder
    assert load_trained(second).model.fc.out_features == len(CLASSES)


def test_trained_folders_are_recognised_by_folder_card_or_weights(tmp_path: Path) -> None:
    folder = trained_folder(tmp_path / "run")
    assert is_trained_model(str(folder)) and is_trained_model(str(folder / MODEL_NAME))
    assert is_trained_model(str(folder / CARD_NAME))
    assert not is_trained_model(str(tmp_path)) and not is_trained_model("tiny_2d")
    assert read_card(folder / MODEL_NAME)["base_model"] == "tiny_2d"


def test_broken_trained_folders_fail_with_the_folder_named(tmp_path: Path) -> None:
    folder = trained_folder(tmp_path / "run")
    (folder / MODEL_NAME).unlink()
    with pytest.raises(ModelError, match=r"run: the weights file model.pt named by its card is missing"):
        get_entry(str(folder))
    (folder / CARD_NAME).write_text(json.dumps({"format": "something-else"}), encoding="utf-8")
    with pytest.raises(ModelError, match=r"not a forwardlab model card \(format 'something-else'\)"):
        load_trained(folder)
    other = trained_folder(tmp_path / "other", "tiny_2d")
    card = json.loads((other / CARD_NAME).read_text())
    (other / CARD_NAME).write_text(json.dumps({**card, "base_model": "r9d_1"}), encoding="utf-8")
    with pytest.raises(ModelError, match="unknown model 'r9d_1'"):
        register_trained(other)


def test_a_recipe_survives_the_card() -> None:
    for name in ("r2plus1d_18", "i3d", "tiny_2d"):
        recipe = get_entry(name).recipe
        stored = json.loads(json.dumps(recipe_to_card(recipe)))
        assert recipe_from_card(stored) == recipe, name

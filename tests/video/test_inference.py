"""The inference loop with something other than class scores: a pooled feature vector per video.

The model is the registry's `tiny_2d` with random weights; its `features` (the layer before the classifier)
are what an embeddings feature would store. Each video's result must equal the mean over its views of
the features of `model_input` (the same video decoded alone), whatever the batch size, with bad files
reported with their reasons while the others go through.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forwardlab.video.inference import (
    Item,
    Outcome,
    Ranking,
    Task,
    TopClasses,
    decode_views,
    model_input,
    run_local,
    run_ray,
)
from forwardlab.video.models.catalog import get_entry
from tests.support.clips import write_video

MODEL = "tiny_2d"
ENTRY = get_entry(MODEL)
RECIPE = ENTRY.recipe
VIEWS = (2, 1)
CLIPS = 4  # x 2 views = 8 clips: batches of 3 and 5 leave a short last batch


class PooledFeatures(Task[list[float]]):
    """The embeddings feature: the pooled features before the classifier, averaged over a video's views.

    Records the size of every batch it sees, so the test can check how clips were gathered.
    """

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def forward(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(len(x))
        features: torch.Tensor = model.features(x)  # type: ignore[operator]
        return features

    def reduce(self, views: torch.Tensor) -> list[float]:
        return views.mean(dim=0).tolist()


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return ENTRY.builder(ENTRY.num_classes).eval()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Clips of different lengths and sizes; the first is shorter than two 16-frame clips at 8 fps."""
    base = tmp_path_factory.mktemp("clips")
    sizes = [(12, 64, 48), (40, 80, 60), (50, 96, 72), (30, 64, 48)]
    return [write_video(base / f"v{i}.mp4", n_frames=n, fps=20, width=w, height=h) for i, (n, w, h) in enumerate(sizes)]


@pytest.fixture(scope="module")
def expected(videos: list[Path], model: torch.nn.Module) -> dict[str, list[float]]:
    """Each video alone: its views through the model in one batch, features averaged by hand."""
    out = {}
    with torch.inference_mode():
        for path in videos:
            x, _ = model_input(path, RECIPE, VIEWS)
            out[path.name] = model.features(x).mean(dim=0).tolist()  # type: ignore[operator]
    return out


def items_of(paths: list[Path]) -> list[Item]:
    return [Item(key=p.name, path=str(p), label=f"label-{p.stem}") for p in paths]


@pytest.mark.parametrize("batch", [1, 3, 5, 8, 20])
def test_any_batch_size_gives_each_video_its_own_features(
    batch: int, videos: list[Path], model: torch.nn.Module, expected: dict[str, list[float]]
) -> None:
    task = PooledFeatures()
    outcomes = list(run_local(items_of(videos), model, recipe=RECIPE, task=task, views=VIEWS, batch=batch, workers=0))
    total = CLIPS * VIEWS[0] * VIEWS[1]
    assert task.batch_sizes == [batch] * (total // batch) + ([total % batch] if total % batch else [])
    assert [o.item.key for o in outcomes] == [p.name for p in videos]  # one decode worker: in order
    for o in outcomes:
        assert o.error is None and o.value is not None and o.item.label == f"label-{Path(o.item.key).stem}"
        assert len(o.value) == 64  # 4 x width 16: the tiny nets' feature size, not the class count
        torch.testing.assert_close(torch.tensor(o.value), torch.tensor(expected[o.item.key]), rtol=1e-4, atol=1e-5)
        assert o.n_views == 2 and o.decode_s > 0 and o.model_s > 0
    padded = {o.item.key: o.padded for o in outcomes}
    assert padded == {p.name: decode_views(p, RECIPE, VIEWS)[1] for p in videos}
    assert padded["v0.mp4"] > 0 and padded["v2.mp4"] == 0


def test_a_failing_item_is_reported_with_its_reason_and_the_others_go_through(
    videos: list[Path], model: torch.nn.Module, expected: dict[str, list[float]], tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 400)
    paths = [videos[0], tmp_path / "gone.mp4", videos[1], garbage, videos[2]]
    run = run_local(items_of(paths), model, recipe=RECIPE, task=PooledFeatures(), views=VIEWS, batch=3, workers=2)
    outcomes = {o.item.key: o for o in run}
    assert outcomes.keys() == {p.name for p in paths}
    assert outcomes["gone.mp4"].error == "file does not exist"
    assert "not a readable video" in (outcomes["garbage.mp4"].error or "")
    for name in ("gone.mp4", "garbage.mp4"):
        failed = outcomes[name]
        assert failed.value is None and failed.n_views == 0 and failed.model_s == 0.0
    for path in (videos[0], videos[1], videos[2]):
        ok = outcomes[path.name]
        assert ok.error is None and ok.value is not None
        torch.testing.assert_close(torch.tensor(ok.value), torch.tensor(expected[path.name]), rtol=1e-4, atol=1e-5)


def test_top_classes_ranks_the_mean_over_views_and_each_view() -> None:
    probabilities = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.1, 0.3]])  # mean 0.35, 0.40, 0.25
    ranking = TopClasses(k=2).reduce(probabilities)
    assert ranking.indices == [1, 0] and ranking.view_indices == [[1, 2], [0, 2]]
    assert ranking.scores == pytest.approx([0.40, 0.35])
    assert TopClasses(k=5).reduce(probabilities).indices == [1, 0, 2]  # k is capped by the class count


def test_top_classes_through_the_loop_is_the_softmax_of_each_video_alone(
    videos: list[Path], model: torch.nn.Module
) -> None:
    outcomes: list[Outcome[Ranking]] = list(
        run_local(items_of(videos), model, recipe=RECIPE, task=TopClasses(3), views=VIEWS, batch=3, workers=0)
    )
    for o, path in zip(outcomes, videos, strict=True):
        with torch.inference_mode():
            alone = model(model_input(path, RECIPE, VIEWS)[0]).softmax(dim=-1)
        scores, top = alone.mean(dim=0).topk(3)
        assert o.value is not None and o.value.indices == top.tolist()
        assert o.value.scores == pytest.approx(scores.tolist(), rel=1e-4)
        assert o.value.view_indices == alone.topk(3, dim=1).indices.tolist()


@pytest.mark.slow
def test_ray_engine_computes_the_same_features(
    videos: list[Path], model: torch.nn.Module, expected: dict[str, list[float]], tmp_path: Path
) -> None:
    """The task travels to Ray's model actor, which loads the same weights from a file."""
    pytest.importorskip("ray.data")
    weights = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), weights)
    paths = [*videos, tmp_path / "gone.mp4"]
    outcomes = {
        o.item.key: o
        for o in run_ray(
            items_of(paths),
            entry=ENTRY,
            pretrained=False,
            weights=weights,
            task=PooledFeatures(),
            views=VIEWS,
            batch=3,
            workers=2,
            address=None,
        )
    }
    assert outcomes.keys() == {p.name for p in paths}
    assert outcomes["gone.mp4"].error == "file does not exist" and outcomes["gone.mp4"].item.label == "label-gone"
    for path in videos:
        ok = outcomes[path.name]
        assert ok.error is None and ok.value is not None and ok.item == items_of([path])[0]
        torch.testing.assert_close(torch.tensor(ok.value), torch.tensor(expected[path.name]), rtol=1e-4, atol=1e-5)


def test_whole_video_rule_batches_only_clips_of_one_length(videos: list[Path], model: torch.nn.Module) -> None:
    """`all@R` gives each video its own length: a batch holds one length, and each video still gets the
    features it has alone."""
    recipe = RECIPE.with_sample("all@10")
    task = PooledFeatures()
    outcomes = list(run_local(items_of(videos), model, recipe=recipe, task=task, views=(1, 1), batch=4, workers=0))
    lengths = {}
    with torch.inference_mode():
        for path in videos:
            x, _ = model_input(path, recipe, (1, 1))
            lengths[path.name] = x.shape[2]
            alone = model.features(x).mean(dim=0)  # type: ignore[operator]
            [o] = [o for o in outcomes if o.item.key == path.name]
            torch.testing.assert_close(torch.tensor(o.value), alone, rtol=1e-4, atol=1e-5)
    assert lengths == {"v0.mp4": 16, "v1.mp4": 20, "v2.mp4": 25, "v3.mp4": 16}  # 2, 2.5 s at 10 fps; min 16
    assert task.batch_sizes == [1, 1, 1, 1]  # v0 and v3 share a length but v1 and v2 come between

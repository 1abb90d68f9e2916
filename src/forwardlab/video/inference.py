"""Run a model over videos: decode each video's views, gather clips into batches, one result per video.

The loop, in one picture::

    items (key, path, label) -> decode workers (probe, sample K clips, ONE decode for all K x C views, uint8)
                             -> this process: clips of several videos gathered into batches of `batch` clips,
                                normalized to float only here, `task.forward` under inference_mode
                             -> when a video's last view is through: `task.reduce` of its views -> its Outcome

What is computed is the caller's `Task`: `TopClasses` (softmax over views -> top-k, for `evaluate` and
`predict`), or any other per-view output reduced per video (a pooled feature vector, the mean logits).
The loop streams: it holds at most `batch - 1` clips plus one video's views, and the decode workers'
prefetch; outcomes come in completion order. A video that cannot be decoded becomes an Outcome with the
reason, and the others go on. Two engines run the same stages: `run_local` (torch DataLoader workers
decode, this process runs the model) and `run_ray` (Ray Data decode tasks, one model actor; Ray is
imported only there).
"""

from __future__ import annotations

import pickle
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from forwardlab.video.errors import EvaluationError, VideoDecodeError

if TYPE_CHECKING:
    import torch

    from forwardlab.video.models.registry import ModelEntry, Recipe

Views = tuple[int, int]
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class Item:
    """One video to run: `key` names it in the results (a manifest path), `path` is the file to decode."""

    key: str
    path: str
    label: str | None = None


@dataclass(frozen=True)
class Outcome(Generic[ResultT]):
    """What the loop gives for one item: the task's result, or why there is none (`error`).

    `model_s` is the item's share of the forward passes its views were in; a failed item has no views.
    """

    item: Item
    value: ResultT | None
    error: str | None
    n_views: int
    padded: int
    decode_s: float
    model_s: float


class Task(ABC, Generic[ResultT]):
    """What the loop computes: an output per view from a batch, then one result per video from its views.

    A task crosses process boundaries with the Ray engine, so it must pickle (a module-level class).
    """

    @abstractmethod
    def forward(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """`x`: float `(n, 3, T, h, w)` clips on the model's device -> one output per clip, `(n, ...)`."""

    @abstractmethod
    def reduce(self, views: torch.Tensor) -> ResultT:
        """A video's result from the outputs of all its views, stacked `(V, ...)` on the CPU."""


@dataclass(frozen=True)
class Ranking:
    """The `k` best classes of a video (mean softmax over its views, best first) and of each view alone."""

    indices: list[int]
    scores: list[float]
    view_indices: list[list[int]]


@dataclass(frozen=True)
class TopClasses(Task[Ranking]):
    """Classification: softmax per view; a video's scores are the mean over its views."""

    k: int

    def forward(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return model(x).float().softmax(dim=-1)

    def reduce(self, views: torch.Tensor) -> Ranking:
        k = min(self.k, views.shape[1])
        scores, top = views.mean(dim=0).topk(k)
        return Ranking(
            indices=[int(i) for i in top.tolist()],
            scores=[float(s) for s in scores.tolist()],
            view_indices=[[int(i) for i in v] for v in views.topk(k, dim=1).indices.tolist()],
        )


# =============================================================================================== decoding


def decode_views(path: str | Path, recipe: Recipe, views: Views) -> tuple[torch.Tensor, int]:
    """All K x C views of a video from one decode: `uint8 (K*C, T, 3, h, w)`, clip-major, plus padding.

    A video shorter than the recipe repeats its last frame; the second value counts those frames.
    """
    from forwardlab.video.io import probe, read_views_padded

    temporal, spatial = views
    clips = recipe.sampler(temporal)(probe(path))
    return read_views_padded(path, clips, size=recipe.decode_size, crop=recipe.crop_size, spatial_crops=spatial)


def model_input(path: str | Path, recipe: Recipe, views: Views | None = None) -> tuple[torch.Tensor, int]:
    """A video as the model's input batch: float (K*C, 3, T, h, w), plus how many frames were padding.

    K temporal clips x C spatial crops (default: the recipe's) come from one decode; frames stay uint8
    until the final normalization. A video shorter than a clip repeats its last frame (see `sampling`).
    """
    from forwardlab.video.transforms import to_model_input

    frames, padded = decode_views(path, recipe, views or (recipe.temporal_views, recipe.spatial_views))
    return to_model_input(frames, recipe.mean, recipe.std), padded


@dataclass
class _Decoded:
    """What a decode worker hands back: all views of one video (uint8), or why there are none."""

    item: Item
    clips: torch.Tensor | None
    padded: int
    decode_s: float
    error: str | None

    def failure(self) -> Outcome[Any]:
        assert self.error is not None
        return Outcome(self.item, None, self.error, n_views=0, padded=0, decode_s=self.decode_s, model_s=0.0)


def _decode_item(item: Item, recipe: Recipe, views: Views) -> _Decoded:
    """Decode one video, catching its failure as a reason (a batch job goes on past bad items)."""
    start = time.perf_counter()
    try:
        clips, padded = decode_views(item.path, recipe, views)
    except VideoDecodeError as exc:
        return _Decoded(item, None, 0, time.perf_counter() - start, exc.reason)
    except Exception as exc:  # PyAV and friends raise many types for odd files; record, don't stop
        return _Decoded(item, None, 0, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    return _Decoded(item, clips, padded, time.perf_counter() - start, None)


class _DecodeDataset:
    """Map-style dataset for torch's DataLoader: index -> one decoded video."""

    def __init__(self, items: Sequence[Item], recipe: Recipe, views: Views) -> None:
        self.items, self.recipe, self.views = list(items), recipe, views

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> _Decoded:
        return _decode_item(self.items[index], self.recipe, self.views)


def _identity(x: Any) -> Any:
    return x


# =============================================================================================== batching


class _Batcher(Generic[ResultT]):
    """Gathers clips of several videos into batches of `batch` clips and emits each video's Outcome when
    its last view is through. Holds at most `batch - 1` clips plus one video's views between calls.
    Clips of another shape than the batch's first (whole-video rules give each video its own length) go
    into the next batch.
    """

    def __init__(
        self, model: torch.nn.Module, recipe: Recipe, task: Task[ResultT], batch: int, device: torch.device
    ) -> None:
        self.model, self.recipe, self.task, self.batch, self.device = model, recipe, task, batch, device
        self.queue: deque[tuple[_Open, int]] = deque()

    def add(self, decoded: _Decoded) -> Iterator[Outcome[ResultT]]:
        assert decoded.clips is not None
        video = _Open(decoded, len(decoded.clips))
        self.queue.extend((video, v) for v in range(len(decoded.clips)))
        while len(self.queue) >= self.batch:
            yield from self._run(self.batch)

    def flush(self) -> Iterator[Outcome[ResultT]]:
        while self.queue:
            yield from self._run(min(self.batch, len(self.queue)))

    def _run(self, n: int) -> Iterator[Outcome[ResultT]]:
        import torch

        from forwardlab.video.transforms import to_model_input

        taken = [self.queue.popleft()]
        shape = self._clip(taken[0]).shape
        while self.queue and len(taken) < n and self._clip(self.queue[0]).shape == shape:
            taken.append(self.queue.popleft())  # a rule like all@25 gives videos of other lengths: not stacked
        n = len(taken)
        start = time.perf_counter()
        clips = torch.stack([self._clip(entry) for entry in taken])
        x = to_model_input(clips, self.recipe.mean, self.recipe.std).to(self.device)
        with torch.inference_mode():
            outputs = self.task.forward(self.model, x).cpu()
        share = (time.perf_counter() - start) / n
        for (video, v), output in zip(taken, outputs, strict=True):
            video.outputs[v] = output
            video.model_s += share
        for video, _ in taken:
            if video.complete and not video.emitted:
                video.emitted = True
                d = video.decoded
                d.clips = None  # release the uint8 views as soon as the outcome exists
                value = self.task.reduce(torch.stack(video.outputs))  # type: ignore[arg-type]
                yield Outcome(
                    d.item,
                    value,
                    None,
                    n_views=len(video.outputs),
                    padded=d.padded,
                    decode_s=d.decode_s,
                    model_s=video.model_s,
                )

    @staticmethod
    def _clip(entry: tuple[_Open, int]) -> torch.Tensor:
        video, v = entry
        assert video.decoded.clips is not None
        return video.decoded.clips[v]


class _Open:
    """A video whose views are going through the model."""

    def __init__(self, decoded: _Decoded, n_views: int) -> None:
        self.decoded = decoded
        self.outputs: list[torch.Tensor | None] = [None] * n_views
        self.model_s = 0.0
        self.emitted = False

    @property
    def complete(self) -> bool:
        return all(p is not None for p in self.outputs)


def _device() -> torch.device:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# =============================================================================================== engines


def run_local(
    items: Sequence[Item],
    model: torch.nn.Module,
    *,
    recipe: Recipe,
    task: Task[ResultT],
    views: Views,
    batch: int,
    workers: int,
) -> Iterator[Outcome[ResultT]]:
    """Outcomes in completion order: decode in `workers` processes (0: in this one), run the model here,
    on the GPU when there is one (the model is moved there)."""
    from torch.utils.data import DataLoader

    device = _device()
    batcher = _Batcher(model.to(device), recipe, task, batch, device)
    loader: DataLoader[_Decoded] = DataLoader(
        _DecodeDataset(items, recipe, views),  # type: ignore[arg-type]
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        collate_fn=_identity,
        prefetch_factor=2 if workers > 0 else None,
        in_order=False,  # a slow video does not hold back the ones decoded after it
    )
    for decoded in loader:
        if decoded.error is not None:
            yield decoded.failure()
        else:
            yield from batcher.add(decoded)
    yield from batcher.flush()


def import_ray() -> Any:
    """The `ray` module with Ray Data loaded, or an error naming the extra to install."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise EvaluationError(
            f"engine='ray' needs Ray Data, which is not installed ({exc}); "
            "install the extra: pip install 'forwardlab[ray]'"
        ) from exc
    return ray


# Ray Data columns hold arrays, and turn None into NaN: items and outcomes cross as pickled bytes (our own
# objects, between our own processes), the decoded clips as a uint8 array.


def _ray_decode(batch: dict[str, np.ndarray], *, recipe: Recipe, views: Views) -> dict[str, np.ndarray]:
    """Ray Data decode stage: one video per batch -> its uint8 views (zeros and an error if it failed)."""
    from forwardlab.video.transforms import _hw

    rows = [_decode_item(pickle.loads(item), recipe, views) for item in batch["item"]]
    ch, cw = _hw(recipe.crop_size)
    blank = np.zeros((views[0] * views[1], recipe.frames_per_clip, 3, ch, cw), dtype=np.uint8)
    return {
        "item": batch["item"],
        "clips": np.stack([blank if r.clips is None else r.clips.numpy() for r in rows]),
        "padded": np.array([r.padded for r in rows]),
        "decode_s": np.array([r.decode_s for r in rows]),
        "error": np.array(["" if r.error is None else r.error for r in rows], dtype=object),
    }


class _RayModel:
    """Ray Data model stage: a callable class, so the model is loaded once per actor.

    The registry entry itself travels with it and is built there, not looked up by name, so models
    registered at run time in the driver (our tiny nets, trained folders, a run's `--sample` recipe)
    load in the actor too.
    """

    def __init__(self, entry: ModelEntry, pretrained: bool, weights: str | None, task: Task[Any], batch: int) -> None:
        from forwardlab.video.models.registry import build_model

        device = _device()
        loaded = build_model(entry, pretrained=pretrained, weights=weights)
        self.batcher = _Batcher(loaded.model.to(device), entry.recipe, task, batch, device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        out: list[Outcome[Any]] = []
        for i in range(len(batch["item"])):
            item = pickle.loads(batch["item"][i])
            error = str(batch["error"][i])
            clips = None if error else torch.from_numpy(np.array(batch["clips"][i]))  # a writable copy
            decoded = _Decoded(item, clips, int(batch["padded"][i]), float(batch["decode_s"][i]), error or None)
            out.extend([decoded.failure()] if error else self.batcher.add(decoded))
        out.extend(self.batcher.flush())
        return {"outcome": np.array([pickle.dumps(o) for o in out], dtype=object)}


def run_ray(
    items: Sequence[Item],
    *,
    entry: ModelEntry,
    pretrained: bool,
    weights: Path | None,
    task: Task[ResultT],
    views: Views,
    batch: int,
    workers: int,
    address: str | None,
) -> Iterator[Outcome[ResultT]]:
    """The same two stages on Ray Data: decode tasks (`workers` at a time) -> one model actor, which
    loads registry model `entry` itself. `address`: a running cluster, else a small local one."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        if address is not None:
            ray.init(address=address, logging_level="WARNING")
        else:
            # one logical CPU per decode worker plus one for the model actor, as the local engine uses
            ray.init(
                num_cpus=max(1, workers) + 1,
                include_dashboard=False,
                object_store_memory=512 * 2**20,
                logging_level="WARNING",
            )
        started = True
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        per_video = views[0] * views[1]
        ds = ray.data.from_items([{"item": pickle.dumps(t)} for t in items], override_num_blocks=len(items))
        ds = ds.map_batches(
            _ray_decode,
            batch_size=1,
            fn_kwargs={"recipe": entry.recipe, "views": views},
            num_cpus=1,
            compute=ray.data.TaskPoolStrategy(size=max(1, workers)),
            batch_format="numpy",
        )
        ds = ds.map_batches(
            _RayModel,
            batch_size=max(1, batch // per_video),
            fn_constructor_kwargs={
                "entry": entry,
                "pretrained": pretrained,
                "weights": None if weights is None else str(weights),
                "task": task,
                "batch": batch,
            },
            num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=1),
            batch_format="numpy",
        )
        for row in ds.iter_rows():
            yield pickle.loads(row["outcome"])
    finally:
        if started:
            ray.shutdown()


__all__ = [
    "Item",
    "Outcome",
    "Ranking",
    "Task",
    "TopClasses",
    "Views",
    "decode_views",
    "import_ray",
    "model_input",
    "run_local",
    "run_ray",
]

"""Tests for the synthetic Kinetics-layout generator: files, determinism, resume and semantics."""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forwardlab.video.data.synthetic import (
    FPS_CHOICES,
    ClipPlan,
    SyntheticClip,
    generate,
    plan_clip,
    render_frames,
)
from forwardlab.video.data.synthetic_classes import CLASSES, TIME_REVERSED_PAIRS

av = pytest.importorskip("av")

SINGLETONS = tuple(label for label in CLASSES if not any(label in pair for pair in TIME_REVERSED_PAIRS))


@dataclass
class Generated:
    root: Path
    clips: list[SyntheticClip]
    progress: list[tuple[int, int]]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """One clip of every class, shared by the read-only tests to keep the file fast."""
    root = tmp_path_factory.mktemp("synthetic")
    calls: list[tuple[int, int]] = []
    clips = generate(root, per_class=1, split="val", seed=0, progress=lambda done, total: calls.append((done, total)))
    return Generated(root, clips, calls)


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# ------------------------------------------------------------------------------------------
# Layout, annotations and decoding
# ------------------------------------------------------------------------------------------


def test_class_catalogue() -> None:
    assert len(CLASSES) >= 12
    assert len(set(CLASSES)) == len(CLASSES)
    paired = [label for pair in TIME_REVERSED_PAIRS for label in pair]
    assert len(TIME_REVERSED_PAIRS) == 4
    assert set(paired) <= set(CLASSES)
    assert len(SINGLETONS) >= 4


def test_layout_and_csv_match(generated: Generated) -> None:
    root, clips = generated.root, generated.clips
    rows = _read_csv(root / "annotations" / "val.csv")
    assert rows[0] == ["label", "youtube_id", "time_start", "time_end", "split"]
    assert rows[1:] == [[c.label, c.youtube_id, str(c.time_start), str(c.time_end), c.split] for c in clips]
    assert [c.label for c in clips] == list(CLASSES)
    for clip in clips:
        assert re.fullmatch(r"[A-Za-z0-9_-]{11}", clip.youtube_id)
        assert 0 <= clip.time_start <= 600
        assert 2 <= clip.time_end - clip.time_start <= 5
        expected = root / "val" / clip.label / f"{clip.youtube_id}_{clip.time_start:06d}_{clip.time_end:06d}.mp4"
        assert clip.path == expected
        assert clip.path.is_file()
    on_disk = {p for p in (root / "val").rglob("*") if p.is_file()}
    assert on_disk == {c.path for c in clips}, "stray files (e.g. unfinished temp files) left behind"
    assert generated.progress == [(i, len(CLASSES)) for i in range(1, len(CLASSES) + 1)]


def test_clips_decode_with_recorded_properties(generated: Generated) -> None:
    for clip in generated.clips:
        with av.open(str(clip.path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.pix_fmt == "yuv420p"
            assert (stream.width, stream.height) == (clip.width, clip.height)
            assert stream.average_rate == clip.fps
            n_decoded = sum(1 for _ in container.decode(stream))
        assert abs(n_decoded - clip.n_frames) <= 1, clip
        assert clip.n_frames == clip.fps * (clip.time_end - clip.time_start)


def test_decoded_pixels_match_the_rendered_frames(generated: Generated) -> None:
    """Catches channel-order, size or frame-order mistakes between rendering and encoding."""
    clip = generated.clips[0]
    rendered = list(render_frames(plan_clip(clip.label, 0)))
    with av.open(str(clip.path)) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    for index in (0, len(rendered) // 2, len(rendered) - 1):
        error = np.abs(decoded[index].astype(np.int16) - rendered[index]).mean()
        assert error < 8, (index, error)


def test_sampled_parameters_cover_the_advertised_variation() -> None:
    plans = [plan_clip(label, index) for label in CLASSES for index in range(20)]
    for plan in plans:
        assert plan.fps in FPS_CHOICES
        assert 96 <= plan.height <= 360 and plan.height % 2 == 0 and plan.width % 2 == 0
        aspect = plan.width / plan.height
        assert min(abs(aspect - 4 / 3), abs(aspect - 16 / 9)) < 0.02, (plan.width, plan.height)
        assert 2 <= plan.duration <= 5
        assert len(plan.jitter) == plan.n_frames
        assert len(plan.distractors) <= 3
    assert {p.fps for p in plans} == set(FPS_CHOICES)
    assert {p.duration for p in plans} == {2, 3, 4, 5}
    assert {len(p.distractors) for p in plans} == {0, 1, 2, 3}
    assert {round(p.width / p.height, 1) for p in plans} == {1.3, 1.8}
    assert any(dx or dy for p in plans for dx, dy in p.jitter), "camera never jitters"


# ------------------------------------------------------------------------------------------
# Determinism, idempotence, resume
# ------------------------------------------------------------------------------------------


def test_same_seed_same_csv_different_seed_differs(tmp_path: Path, generated: Generated) -> None:
    kwargs: dict[str, Any] = {"per_class": 1, "classes": ["growing", "moving_left"]}
    first = generate(tmp_path / "a", seed=7, **kwargs)
    second = generate(tmp_path / "b", seed=7, **kwargs)
    other = generate(tmp_path / "c", seed=8, **kwargs)
    csv_a = (tmp_path / "a" / "annotations" / "val.csv").read_bytes()
    assert csv_a == (tmp_path / "b" / "annotations" / "val.csv").read_bytes()
    assert csv_a != (tmp_path / "c" / "annotations" / "val.csv").read_bytes()
    assert [c.youtube_id for c in first] == [c.youtube_id for c in second]
    assert {c.youtube_id for c in first}.isdisjoint(c.youtube_id for c in other)
    # Classes come out in canonical order whatever order the caller used.
    assert [c.label for c in first] == ["moving_left", "growing"]


def test_clip_identity_does_not_depend_on_what_else_is_generated(generated: Generated) -> None:
    alone = plan_clip("comet_trail", 0, seed=0)
    in_full_run = next(c for c in generated.clips if c.label == "comet_trail")
    assert (alone.youtube_id, alone.time_start, alone.fps) == (
        in_full_run.youtube_id,
        in_full_run.time_start,
        in_full_run.fps,
    )
    assert plan_clip("comet_trail", 0, split="train").youtube_id != alone.youtube_id


def test_resume_recreates_only_missing_clip(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {
        "per_class": 2,
        "classes": ["fading_in", "bouncing_ball"],
        "split": "train",
        "seed": 3,
    }
    clips = generate(tmp_path, **kwargs)
    csv_path = tmp_path / "annotations" / "train.csv"
    csv_before = csv_path.read_bytes()
    victim, others = clips[1], [c for i, c in enumerate(clips) if i != 1]
    victim.path.unlink()
    # A killed run leaves a half-written temp file; resuming must not be confused by it.
    stale = victim.path.with_name(f".{victim.path.name}.partial")
    stale.write_bytes(b"truncated")
    old = 1_000_000_000
    for clip in others:
        os.utime(clip.path, ns=(old, old))

    again = generate(tmp_path, **kwargs)

    assert again == clips
    assert victim.path.is_file() and not stale.exists()
    assert all(clip.path.stat().st_mtime_ns == old for clip in others)
    assert csv_path.read_bytes() == csv_before
    with av.open(str(victim.path)) as container:
        assert sum(1 for _ in container.decode(video=0)) >= victim.n_frames - 1


# ------------------------------------------------------------------------------------------
# Argument validation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"per_class": 0}, "0"),
        ({"classes": ["moving_left", "dancing"]}, "'dancing'"),
        ({"classes": ["growing", "growing"]}, "growing"),
        ({"classes": []}, "at least one"),
        ({"split": "Val"}, "'Val'"),
        ({"split": "../escape"}, "'../escape'"),
        ({"split": ""}, "''"),
        ({"seed": -1}, "-1"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        generate(tmp_path / "root", **kwargs)
    assert not (tmp_path / "root").exists(), "nothing may be written before arguments are validated"


def test_unknown_class_message_lists_known_classes(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as excinfo:
        generate(tmp_path, classes=["dancing"])
    assert all(label in str(excinfo.value) for label in CLASSES)


# ------------------------------------------------------------------------------------------
# Semantics: what each class shows, checked on rendered pixels
# ------------------------------------------------------------------------------------------


class _NoAction:
    """Stands in for a clip's action to render its bare background."""

    def draw(self, canvas: np.ndarray, origin: tuple[float, float], u: float) -> None:
        return None


def _steady(plan: ClipPlan) -> ClipPlan:
    """The same clip without distractors or camera shake, so the actor is all that changes."""
    return replace(plan, distractors=(), jitter=((0, 0),) * plan.n_frames)


def _actor_masks(plan: ClipPlan) -> Iterator[np.ndarray]:
    """Per-frame boolean masks of the pixels the action changed, against the exact background."""
    steady = _steady(plan)
    background = next(render_frames(replace(steady, action=_NoAction()))).astype(np.int16)
    for frame in render_frames(steady):
        yield np.abs(frame.astype(np.int16) - background).sum(axis=-1) > 30


def _trend(values: list[float]) -> float:
    """Correlation of a per-frame statistic with time: +1 rising steadily, -1 falling."""
    return float(np.corrcoef(np.arange(len(values)), values)[0, 1])


@pytest.mark.parametrize(("label", "sign"), [("moving_right", 1), ("moving_left", -1)])
def test_moving_object_centroid_goes_the_named_way(label: str, sign: int) -> None:
    for index in range(2):
        plan = plan_clip(label, index)
        xs = [float(np.nonzero(mask)[1].mean()) for mask in _actor_masks(plan)]
        assert sign * _trend(xs) > 0.95
        assert sign * (xs[-1] - xs[0]) > 0.3 * plan.width


@pytest.mark.parametrize(("label", "sign"), [("growing", 1), ("shrinking", -1)])
def test_object_area_grows_or_shrinks(label: str, sign: int) -> None:
    for index in range(2):
        areas = [float(mask.sum()) for mask in _actor_masks(plan_clip(label, index))]
        assert sign * _trend(areas) > 0.9
        assert max(areas[0], areas[-1]) > 3 * min(areas[0], areas[-1])


@pytest.mark.parametrize(("label", "sign"), [("rotating_clockwise", 1), ("rotating_counterclockwise", -1)])
def test_rotation_direction(label: str, sign: int) -> None:
    """Track the contrasting marker dot around the shape's centre; image y points down."""
    for index in range(2):
        plan = _steady(plan_clip(label, index))
        colour = np.asarray(plan.action.sprite.colour) * 255  # type: ignore[attr-defined]
        marker = 255 - colour
        angles = []
        for frame in list(render_frames(plan))[::3]:  # <= 45 degrees apart, so unwrap stays exact
            pixels = frame.astype(np.float32)
            body = np.linalg.norm(pixels - colour, axis=-1) < 60
            dot = np.linalg.norm(pixels - marker, axis=-1) < 60
            by, bx = np.nonzero(body | dot)
            dy, dx = np.nonzero(dot)
            angles.append(math.atan2(dy.mean() - by.mean(), dx.mean() - bx.mean()))
        turned = float(np.unwrap(angles)[-1] - angles[0])
        assert sign * turned > 0.3 * 2 * math.pi, turned


def _mean_brightness(plan: ClipPlan) -> list[float]:
    return [float(frame.mean()) for frame in render_frames(plan)]


def test_fading_in_played_backwards_trends_like_fading_out() -> None:
    for index in range(2):
        fading_in = _mean_brightness(plan_clip("fading_in", index))
        fading_out = _mean_brightness(plan_clip("fading_out", index))
        assert _trend(fading_in) > 0.8
        assert _trend(fading_out) < -0.8
        assert _trend(fading_in[::-1]) < -0.8


def _frame_digests(plan: ClipPlan) -> list[str]:
    return [hashlib.blake2b(frame.tobytes(), digest_size=16).hexdigest() for frame in render_frames(plan)]


@pytest.mark.parametrize(("label", "partner"), TIME_REVERSED_PAIRS)
def test_pair_members_are_exact_time_reversals(label: str, partner: str) -> None:
    """Same scene, partner label: frame for frame the clip backwards, jitter and clutter included.

    Both members also draw their scenes from one sampler, so the multiset of frames - all a
    frame-order-blind model sees - has the same distribution for both classes.
    """
    plan = plan_clip(label, 0)
    forward = _frame_digests(plan)
    assert len(set(forward)) > 1, "a static clip would make this test vacuous"
    assert _frame_digests(replace(plan, label=partner)) == forward[::-1]
    assert type(plan_clip(partner, 0).action) is type(plan.action)


def test_singletons_show_their_cue_in_every_frame() -> None:
    """Spot-check the single-frame cues that no pair class has."""
    plan = _steady(plan_clip("bouncing_ball", 0))
    edge = np.asarray(plan.action.edge_colour) * 255  # type: ignore[attr-defined]
    for frame in render_frames(plan):
        # A bright floor edge spans the full width in every frame.
        rows = (np.linalg.norm(frame.astype(np.float32) - edge, axis=-1) < 40).mean(axis=1)
        assert rows.max() > 0.95
    plan = _steady(plan_clip("flickering_checkerboard", 0))
    first, second = (np.asarray(c) * 255 for c in plan.action.colours)  # type: ignore[attr-defined]
    for frame in render_frames(plan):
        pixels = frame.astype(np.float32)
        assert (np.linalg.norm(pixels - first, axis=-1) < 30).sum() > 4 * plan.action.cell**2  # type: ignore[attr-defined]
        assert (np.linalg.norm(pixels - second, axis=-1) < 30).sum() > 4 * plan.action.cell**2  # type: ignore[attr-defined]

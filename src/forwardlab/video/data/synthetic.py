"""Procedural, seeded H.264 clips of simple actions, laid out like Kinetics on disk.

Why this exists: the demo needs a dataset that works offline in seconds, and later features
(training small 2D, 3D and (2+1)D nets) need data whose right answer is known in advance.
The classes are built so those model families are distinguishable by construction:

* Four pairs of classes are exact time reversals of each other (a clip of one class played
  backwards is a clip of the other, drawn from the same parameter distribution). Their
  single frames therefore have identical distributions, so any model that ignores frame
  order - e.g. a 2D per-frame net with temporal average pooling - is at chance within a pair.
* The remaining classes each have a distinct static appearance, so a 2D net can recognise
  them from any one frame.

Every clip draws its parameters from its own RNG, derived from ``(seed, split, class, index)``
with :class:`numpy.random.SeedSequence`; adding classes or clips never reshuffles the others,
and re-running into the same root reproduces the same ids and skips finished clips.
"""

from __future__ import annotations

import colorsys
import csv
import hashlib
import io
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from forwardlab.fileio import atomic_path, write_text_atomic
from forwardlab.video.data.synthetic_classes import CLASSES

# label -> (motion kind, whether the clip is that motion played backwards). Both members of a
# pair sample parameters through the same kind, which is what makes their frame marginals equal.
_CLASS_SPECS: dict[str, tuple[str, bool]] = {
    "moving_right": ("moving", False),
    "moving_left": ("moving", True),
    "growing": ("growing", False),
    "shrinking": ("growing", True),
    "rotating_clockwise": ("rotating", False),
    "rotating_counterclockwise": ("rotating", True),
    "fading_in": ("fading", False),
    "fading_out": ("fading", True),
    "orbiting_pair": ("orbiting", False),
    "bouncing_ball": ("bouncing", False),
    "flickering_checkerboard": ("flickering", False),
    "comet_trail": ("comet", False),
}

FPS_CHOICES: tuple[int, ...] = (15, 20, 24, 25, 30)
ASPECT_RATIOS: tuple[float, ...] = (4 / 3, 16 / 9)
MIN_HEIGHT, MAX_HEIGHT = 96, 360
MIN_DURATION_S, MAX_DURATION_S = 2, 5
MAX_TIME_START = 600
CSV_HEADER: tuple[str, ...] = ("label", "youtube_id", "time_start", "time_end", "split")

_X264_OPTIONS = {"crf": "23", "preset": "veryfast"}
_YOUTUBE_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_SPLIT_PATTERN = re.compile(r"[a-z0-9_-]+")

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
# Shapes reach at most this multiple of their nominal radius; used to keep objects in frame.
_EXTENT = 1.25
_N_GHOSTS = 5


@dataclass(frozen=True)
class SyntheticClip:
    """One generated clip: its Kinetics annotation row plus what a loader needs to check it."""

    label: str
    youtube_id: str
    time_start: int
    time_end: int
    split: str
    path: Path
    fps: int
    width: int
    height: int
    n_frames: int


# --------------------------------------------------------------------------------------------
# Drawing primitives. Everything is in float32 RGB in [0, 1]; objects are composited only
# inside their bounding box so the cost follows the object size, not the frame size.
# --------------------------------------------------------------------------------------------

Colour = tuple[float, float, float]
Point = tuple[float, float]


def _star_vertices(points: int, inner: float) -> np.ndarray:
    """Vertices of a star with outer radius ``_EXTENT`` (pointing up), for the polygon SDF."""
    angles = -math.pi / 2 + np.arange(2 * points) * math.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, _EXTENT, _EXTENT * inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1).astype(np.float32)


def _regular_polygon(n: int, radius: float, phase: float) -> np.ndarray:
    angles = phase + np.arange(n) * 2 * math.pi / n
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1).astype(np.float32)


# Unit-radius polygons; sizes chosen so every shape has roughly the area of the unit circle.
_POLYGONS: dict[str, np.ndarray] = {
    "square": _regular_polygon(4, 1.2, math.pi / 4),
    "triangle": _regular_polygon(3, _EXTENT, -math.pi / 2),
    "star": _star_vertices(5, 0.45),
}


def _polygon_sdf(x: np.ndarray, y: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) to a simple polygon, vectorised over pixels.

    An exact distance gives one-pixel anti-aliasing at every scale, so sub-pixel motion,
    growth and rotation stay smooth instead of flickering on the pixel grid.
    """
    vx, vy = vertices[:, 0], vertices[:, 1]
    dist2 = (x - vx[0]) ** 2 + (y - vy[0]) ** 2
    inside = np.zeros(x.shape, dtype=bool)
    for i in range(len(vertices)):
        ex, ey = vx[i - 1] - vx[i], vy[i - 1] - vy[i]
        wx, wy = x - vx[i], y - vy[i]
        t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dist2 = np.minimum(dist2, (wx - ex * t) ** 2 + (wy - ey * t) ** 2)
        above, below, left = y >= vy[i], y < vy[i - 1], ex * wy > ey * wx
        inside ^= (above & below & left) | (~above & ~below & ~left)
    return np.where(inside, -1.0, 1.0).astype(np.float32) * np.sqrt(dist2)


def _shape_sdf(shape: str, x: np.ndarray, y: np.ndarray, centre: Point, radius: float, angle: float) -> np.ndarray:
    """Signed distance to ``shape`` rotated by ``angle`` (clockwise on screen, since y points down)."""
    dx, dy = x - centre[0], y - centre[1]
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - radius
    c, s = math.cos(angle), math.sin(angle)
    local_x, local_y = (c * dx + s * dy) / radius, (c * dy - s * dx) / radius
    return _polygon_sdf(local_x, local_y, _POLYGONS[shape]) * radius


def _segment_sdf(x: np.ndarray, y: np.ndarray, a: Point, b: Point, half_width: float) -> np.ndarray:
    """Signed distance to a thick line segment with round caps (the orbiting pair's bar)."""
    ex, ey = b[0] - a[0], b[1] - a[1]
    wx, wy = x - a[0], y - a[1]
    t = np.clip((wx * ex + wy * ey) / max(ex * ex + ey * ey, 1e-6), 0.0, 1.0)
    return np.sqrt((wx - ex * t) ** 2 + (wy - ey * t) ** 2) - half_width


def _paint(
    canvas: np.ndarray,
    origin: Point,
    bbox: tuple[float, float, float, float],
    sdf: Callable[[np.ndarray, np.ndarray], np.ndarray],
    colour: Colour,
    alpha: float = 1.0,
) -> None:
    """Alpha-composite the region where ``sdf < 0`` onto ``canvas`` in place.

    ``origin`` is the world position of canvas pixel (0, 0): the camera jitter moves the canvas
    over a fixed world, so objects are described once in world coordinates.
    """
    height, width = canvas.shape[:2]
    x0 = max(math.floor(bbox[0] - origin[0]) - 1, 0)
    y0 = max(math.floor(bbox[1] - origin[1]) - 1, 0)
    x1 = min(math.ceil(bbox[2] - origin[0]) + 2, width)
    y1 = min(math.ceil(bbox[3] - origin[1]) + 2, height)
    if x0 >= x1 or y0 >= y1 or alpha <= 0.0:
        return
    xs, ys = np.meshgrid(
        np.arange(x0, x1, dtype=np.float32) + (0.5 + origin[0]),
        np.arange(y0, y1, dtype=np.float32) + (0.5 + origin[1]),
    )
    cover = np.clip(0.5 - sdf(xs, ys), 0.0, 1.0) * np.float32(alpha)
    region = canvas[y0:y1, x0:x1]
    region += cover[..., None] * (np.asarray(colour, dtype=np.float32) - region)


@dataclass(frozen=True)
class _Sprite:
    """A coloured shape; the unit every action moves, scales, rotates or fades."""

    shape: str
    colour: Colour
    radius: float
    angle: float

    def paint(
        self,
        canvas: np.ndarray,
        origin: Point,
        centre: Point,
        *,
        scale: float = 1.0,
        angle: float = 0.0,
        alpha: float = 1.0,
    ) -> None:
        """Draw at ``centre``, with per-frame scale, extra rotation and opacity."""
        radius = self.radius * scale
        reach = _EXTENT * radius
        bbox = (centre[0] - reach, centre[1] - reach, centre[0] + reach, centre[1] + reach)
        total_angle = self.angle + angle

        def sdf(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return _shape_sdf(self.shape, x, y, centre, radius, total_angle)

        _paint(canvas, origin, bbox, sdf, self.colour, alpha)


def _lerp(a: Point, b: Point, u: float) -> Point:
    return (a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u)


# --------------------------------------------------------------------------------------------
# Actions: the labelled content of a clip, each a pure function of normalised time u in [0, 1].
# Being pure in u is what makes "play backwards" exact: the reversed class renders u = 1 - t.
# --------------------------------------------------------------------------------------------


class _Action(Protocol):
    def draw(self, canvas: np.ndarray, origin: Point, u: float) -> None: ...


@dataclass(frozen=True)
class _Moving:
    """One object sliding left to right (reversed: right to left)."""

    sprite: _Sprite
    start: Point
    end: Point

    def draw(self, canvas: np.ndarray, origin: Point, u: float) -> None:
        self.sprite.paint(canvas, origin, _lerp(self.start, self.end, u))


@dataclass(frozen=True)
class _Growing:
    """One object scaling up from ``start_scale`` to full size (reversed: shrinking)."""

    sprite: _Sprite
    centre: Point
    start_scale: float

    def draw(self, canvas: np.ndarray, origin: Point, u: float) -> None:
        scale = self.start_scale + (1.0 - self.start_scale) * u
        self.sprite.paint(canvas, origin, self.centre, scale=scale)


@dataclass(frozen=True)
class _Rotating:
    """A non-circular object turning clockwise by ``turn`` radians (reversed: counterclockwise).

    A contrasting marker dot near one corner makes the direction readable even for shapes
    whose symmetry would otherwise alias a fast turn.
    """

    sprite: _Sprite
    centre: Point
    turn: float
    marker_colour: Colour

    def draw(self, canvas: np.ndarray, origin: Point, u: float) -> None:
        angle = self.turn * u
        self.sprite.paint(canvas, origin, self.centre, angle=angle)
        vertex = _POLYGONS[self.sprite.shape][0]
        direction = math.atan2(float(vertex[1]), float(vertex[0])) + self.sprite.angle + angle
        offset = 0.55 * self.sprite.radius
        marker = _Sprite("circle", self.marker_colour, 0.18 * self.sprite.radius, 0.0)
        centre = (
            self.centre[0] + offset * math.cos(direction),
            self.centre[1] + offset * math.sin(direction),
        )
        marker.paint(canvas, origin, centre)


@dataclass(frozen=True)
class _Fading:
    """One slowly drifting object going from invisible to opaque (reversed: fading out)."""

    sprite: _Sprite
    start: Point
    end: Point

    def draw(self, canvas: np.ndarray, origin: Point, u: float) -> None:
        self.sprite.paint(canvas, origin, _lerp(self.start, self.end, u), alpha=u)


@dataclass(frozen=True)
class _Orbiting:
    """Two identical bodies joined by a bar, spinning about their midpoint.

    Single-frame cue: a dumbbell (two equal shapes plus a connecting bar); no other class
    draws a bar between objects.
    """

    sprite: _Sprite
    start: Point
    end: Point
    orbit_radius: float
    phase: float
    turn: float
    bar_colour: Colour

    def draw(self, canvas: np.ndarray, origin: Point, u: float) -> None:
        cx, cy = _lerp(self.start, self.end, u)
        angle = self.phase + self.turn * u
        dx, dy = self.orbit_radius * math.cos(angle), self.orbit_radius * math.sin(angle)
        a, b = (cx + dx, cy + dy), (cx - dx, cy - dy)
        half_width = 0.3 * self.sprite.radius
        bbox = (
            min(a[0], b[0]) - half_width,
            min(a[1], b[1]) - half_width,
            max(a[0], b[0]) + half_width,
            max(a[1], b[1]) + half_width,
        )
        _paint(canvas, origin, bbox, lambda x, y: _segment_sdf(x, y, a, b, half_width), self.bar_colour)
        self.sprite.paint(canvas, origin, a, angle=angle)
        self.sprite.paint(canvas, origin, b, angle=angle)


@dataclass(frozen=True)
class _Bouncing:
    """A ball hopping along a floor.

    Single-frame cue: a solid ground band with a bright edge across the whole frame width,
    which no other class (backgrounds included) draws.
    """

    sprite: _Sprite
    floor_y: float
    edge_width: int
    ground_colour: Colour
    edge_colour: Colour
    x_start: float
    x_end: float
    hop_height: float
    hops: int

    def draw(self, canvas: np.ndarray, origin: Point, u: float) -> None:
        floor_row = max(round(self.floor_y - origin[1]), 0)
        canvas[floor_row:] = self.ground_colour
        canvas[max(floor_row - self.edge_width, 0) : floor_row] = self.edge_colour
        x = self.x_start + (self.x_end - self.x_start) * u
        lift = self.hop_height * abs(math.sin(math.pi * self.hops * u))
        y = self.floor_y - self.edge_width - self.sprite.radius - lift
        self.sprite.paint(canvas, origin, (x, y))


@dataclass(frozen=True)
class _Flickering:
    """A checkerboard patch whose two colours swap ``toggles`` times over the clip.

    Single-frame cue: the high-contrast checkerboard itself (visible in either phase).
    """

    start: Point
    end: Point
    cell: int
    cells_x: int
    cells_y: int
    colours: tuple[Colour, Colour]
    toggles: int

    def draw(self, canvas: np.ndarray, origin: Point, u: float) -> None:
        left, top = _lerp(self.start, self.end, u)
        x0, y0 = round(left - origin[0]), round(top - origin[1])
        height, width = canvas.shape[:2]
        xs = np.arange(max(x0, 0), min(x0 + self.cell * self.cells_x, width))
        ys = np.arange(max(y0, 0), min(y0 + self.cell * self.cells_y, height))
        if xs.size == 0 or ys.size == 0:
            return
        phase = min(math.floor(u * self.toggles), self.toggles - 1) % 2
        parity = ((ys[:, None] - y0) // self.cell + (xs[None, :] - x0) // self.cell + phase) % 2
        first, second = (np.asarray(c, dtype=np.float32) for c in self.colours)
        canvas[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1] = np.where(parity[..., None] == 0, first, second)


@dataclass(frozen=True)
class _Comet:
    """An object crossing the frame followed by a chain of fading, shrinking ghost copies.

    Single-frame cue: the ghost chain; every other class shows each object exactly once.
    """

    sprite: _Sprite
    start: Point
    end: Point
    ghost_step: float

    def draw(self, canvas: np.ndarray, origin: Point, u: float) -> None:
        for ghost in range(_N_GHOSTS, -1, -1):
            centre = _lerp(self.start, self.end, u - ghost * self.ghost_step)
            self.sprite.paint(canvas, origin, centre, scale=0.88**ghost, alpha=0.7**ghost)


@dataclass(frozen=True)
class _Distractor:
    """A small object drifting in a straight line and bouncing off the frame edges.

    Clutter that makes the task about *the* action, not about any motion at all.
    """

    sprite: _Sprite
    start: Point
    velocity: Point
    bounds: tuple[float, float, float, float]

    def draw(self, canvas: np.ndarray, origin: Point, u: float) -> None:
        x = _reflect(self.start[0] + self.velocity[0] * u, self.bounds[0], self.bounds[2])
        y = _reflect(self.start[1] + self.velocity[1] * u, self.bounds[1], self.bounds[3])
        self.sprite.paint(canvas, origin, (x, y))


def _reflect(value: float, low: float, high: float) -> float:
    """Fold ``value`` into [low, high] like a ball bouncing between two walls."""
    span = high - low
    if span <= 0:
        return low
    folded = (value - low) % (2 * span)
    return low + (span - abs(folded - span))


@dataclass(frozen=True)
class _Background:
    """A static texture (smooth noise, linear gradient or soft stripes) between two dim colours.

    Dim, low-contrast colours keep the actors (always bright) salient at 96p, while still
    forcing a model to look past texture.
    """

    kind: str
    colours: tuple[Colour, Colour]
    angle: float
    period: float
    noise_seed: int

    def render(self, height: int, width: int) -> np.ndarray:
        mix = self._mix(height, width)[..., None]
        first, second = (np.asarray(c, dtype=np.float32) for c in self.colours)
        return first + mix * (second - first)

    def _mix(self, height: int, width: int) -> np.ndarray:
        if self.kind == "noise":
            return _smooth_noise(np.random.default_rng(self.noise_seed), height, width, self.period)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        along = xs * math.cos(self.angle) + ys * math.sin(self.angle)
        if self.kind == "gradient":
            low, high = float(along.min()), float(along.max())
            return (along - low) / max(high - low, 1.0)
        return 0.5 + 0.5 * np.sin(along * (2 * math.pi / self.period))


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Value noise: a coarse random grid, bilinearly upsampled with smoothstep weights."""
    grid_h, grid_w = math.ceil(height / cell) + 2, math.ceil(width / cell) + 2
    grid = rng.random((grid_h, grid_w), dtype=np.float32)
    gy, gx = np.arange(height, dtype=np.float32) / cell, np.arange(width, dtype=np.float32) / cell
    iy, ix = gy.astype(np.int64), gx.astype(np.int64)
    fy, fx = gy - iy, gx - ix
    fy, fx = (fy * fy * (3 - 2 * fy))[:, None], (fx * fx * (3 - 2 * fx))[None, :]
    top = grid[iy][:, ix] * (1 - fx) + grid[iy][:, ix + 1] * fx
    bottom = grid[iy + 1][:, ix] * (1 - fx) + grid[iy + 1][:, ix + 1] * fx
    return top * (1 - fy) + bottom * fy


# --------------------------------------------------------------------------------------------
# Sampling: every random choice for a clip comes from that clip's own Generator.
# --------------------------------------------------------------------------------------------


def _hsv(rng: np.random.Generator, saturation: tuple[float, float], value: tuple[float, float]) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value))
    return (r, g, b)


def _actor_colour(rng: np.random.Generator) -> Colour:
    """Bright, saturated: actors always stand out from the (dim) background."""
    return _hsv(rng, (0.55, 1.0), (0.85, 1.0))


def _dim_colour(rng: np.random.Generator) -> Colour:
    return _hsv(rng, (0.0, 0.6), (0.08, 0.42))


def _place(rng: np.random.Generator, width: int, height: int, margin: float) -> Point:
    """A uniform point whose ``margin``-neighbourhood lies inside the frame (centre if too big)."""
    return (
        float(rng.uniform(margin, width - margin)) if width > 2 * margin else width / 2,
        float(rng.uniform(margin, height - margin)) if height > 2 * margin else height / 2,
    )


def _drift(rng: np.random.Generator, start: Point, amount: float, width: int, height: int, margin: float) -> Point:
    """A nearby end point for slow, direction-free drift, kept inside the frame."""
    x = start[0] + rng.uniform(-amount, amount)
    y = start[1] + rng.uniform(-amount, amount)
    return (float(np.clip(x, margin, width - margin)), float(np.clip(y, margin, height - margin)))


def _sprite(rng: np.random.Generator, radius: float, shapes: Sequence[str] = SHAPES) -> _Sprite:
    return _Sprite(str(rng.choice(shapes)), _actor_colour(rng), radius, float(rng.uniform(0, 2 * math.pi)))


def _sample_moving(rng: np.random.Generator, width: int, height: int, duration: int) -> _Action:
    sprite = _sprite(rng, rng.uniform(0.10, 0.18) * min(width, height))
    margin = _EXTENT * sprite.radius
    span = width - 2 * margin
    travel = rng.uniform(0.5, 0.9) * span
    x0 = margin + rng.uniform(0, span - travel)
    y0 = rng.uniform(margin, height - margin)
    y1 = float(np.clip(y0 + rng.uniform(-0.15, 0.15) * height, margin, height - margin))
    return _Moving(sprite, (float(x0), float(y0)), (float(x0 + travel), y1))


def _sample_growing(rng: np.random.Generator, width: int, height: int, duration: int) -> _Action:
    sprite = _sprite(rng, rng.uniform(0.20, 0.32) * min(width, height))
    centre = _place(rng, width, height, _EXTENT * sprite.radius)
    return _Growing(sprite, centre, float(rng.uniform(0.15, 0.35)))


def _sample_rotating(rng: np.random.Generator, width: int, height: int, duration: int) -> _Action:
    # Circles are excluded: their rotation is invisible. At most 1.2 turns keeps the per-frame
    # step below half the star's 72-degree symmetry even for the shortest, slowest clip.
    sprite = _sprite(rng, rng.uniform(0.18, 0.30) * min(width, height), shapes=("square", "triangle", "star"))
    centre = _place(rng, width, height, _EXTENT * sprite.radius)
    turn = rng.uniform(0.4, 1.2) * 2 * math.pi
    red, green, blue = sprite.colour
    return _Rotating(sprite, centre, float(turn), (1.0 - red, 1.0 - green, 1.0 - blue))


def _sample_fading(rng: np.random.Generator, width: int, height: int, duration: int) -> _Action:
    sprite = _sprite(rng, rng.uniform(0.15, 0.28) * min(width, height))
    margin = _EXTENT * sprite.radius
    start = _place(rng, width, height, margin)
    end = _drift(rng, start, 0.1 * min(width, height), width, height, margin)
    return _Fading(sprite, start, end)


def _sample_orbiting(rng: np.random.Generator, width: int, height: int, duration: int) -> _Action:
    size = min(width, height)
    sprite = _sprite(rng, rng.uniform(0.07, 0.11) * size)
    orbit = float(rng.uniform(0.18, 0.28) * size)
    margin = orbit + _EXTENT * sprite.radius
    start = _place(rng, width, height, margin)
    end = _drift(rng, start, 0.1 * size, width, height, margin)
    revolutions = rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.4) * duration
    turn = revolutions * 2 * math.pi
    bar = (0.75 * sprite.colour[0], 0.75 * sprite.colour[1], 0.75 * sprite.colour[2])
    return _Orbiting(sprite, start, end, orbit, float(rng.uniform(0, 2 * math.pi)), float(turn), bar)


def _sample_bouncing(rng: np.random.Generator, width: int, height: int, duration: int) -> _Action:
    size = min(width, height)
    sprite = _Sprite("circle", _actor_colour(rng), float(rng.uniform(0.07, 0.12) * size), 0.0)
    floor_y = float(height * (1 - rng.uniform(0.18, 0.28)))
    edge = max(3, round(0.03 * height))
    x_start = float(rng.uniform(sprite.radius, width - sprite.radius))
    x_end = float(np.clip(x_start + rng.uniform(-0.4, 0.4) * width, sprite.radius, width - sprite.radius))
    hop_height = float(rng.uniform(0.35, 0.6) * (floor_y - edge - 2 * sprite.radius))
    hops = max(1, round(duration * rng.uniform(0.6, 1.5)))
    ground = _hsv(rng, (0.2, 0.7), (0.2, 0.35))
    edge_colour = _hsv(rng, (0.0, 0.2), (0.9, 1.0))
    return _Bouncing(sprite, floor_y, edge, ground, edge_colour, x_start, x_end, hop_height, hops)


def _sample_flickering(rng: np.random.Generator, width: int, height: int, duration: int) -> _Action:
    size = min(width, height)
    cell = max(4, round(rng.uniform(0.05, 0.08) * size))
    cells_x, cells_y = (int(n) for n in rng.integers(3, 7, size=2))
    patch_w, patch_h = cell * cells_x, cell * cells_y
    start = (float(rng.uniform(0, width - patch_w)), float(rng.uniform(0, height - patch_h)))
    end = (
        float(np.clip(start[0] + rng.uniform(-0.05, 0.05) * size, 0, width - patch_w)),
        float(np.clip(start[1] + rng.uniform(-0.05, 0.05) * size, 0, height - patch_h)),
    )
    colours = (_actor_colour(rng), _hsv(rng, (0.0, 0.5), (0.0, 0.15)))
    toggles = max(2, round(duration * rng.uniform(2.0, 6.0)))
    return _Flickering(start, end, cell, cells_x, cells_y, colours, toggles)


def _sample_comet(rng: np.random.Generator, width: int, height: int, duration: int) -> _Action:
    size = min(width, height)
    sprite = _sprite(rng, rng.uniform(0.08, 0.13) * size)
    margin = _EXTENT * sprite.radius
    start = _place(rng, width, height, margin)
    end = _place(rng, width, height, margin)
    while math.dist(start, end) < 0.5 * size:  # a short path would hide the trail in the head
        end = _place(rng, width, height, margin)
    return _Comet(sprite, start, end, 0.8 * sprite.radius / math.dist(start, end))


_SAMPLERS: dict[str, Callable[[np.random.Generator, int, int, int], _Action]] = {
    "moving": _sample_moving,
    "growing": _sample_growing,
    "rotating": _sample_rotating,
    "fading": _sample_fading,
    "orbiting": _sample_orbiting,
    "bouncing": _sample_bouncing,
    "flickering": _sample_flickering,
    "comet": _sample_comet,
}


def _sample_background(rng: np.random.Generator, height: int) -> _Background:
    kind = str(rng.choice(["noise", "gradient", "stripes"]))
    colours = (_dim_colour(rng), _dim_colour(rng))
    period = float(rng.uniform(0.08, 0.3) * height)
    return _Background(kind, colours, float(rng.uniform(0, 2 * math.pi)), period, int(rng.integers(2**31)))


def _sample_distractors(rng: np.random.Generator, width: int, height: int) -> tuple[_Distractor, ...]:
    size = min(width, height)
    distractors = []
    for _ in range(int(rng.integers(0, 4))):
        sprite = _Sprite(
            str(rng.choice(SHAPES)),
            _hsv(rng, (0.3, 0.9), (0.5, 0.8)),
            float(rng.uniform(0.04, 0.08) * size),
            float(rng.uniform(0, 2 * math.pi)),
        )
        margin = _EXTENT * sprite.radius
        heading, speed = rng.uniform(0, 2 * math.pi), rng.uniform(0.2, 1.0) * size
        velocity = (float(speed * math.cos(heading)), float(speed * math.sin(heading)))
        bounds = (margin, margin, width - margin, height - margin)
        distractors.append(_Distractor(sprite, _place(rng, width, height, margin), velocity, bounds))
    return tuple(distractors)


def _sample_jitter(rng: np.random.Generator, height: int, n_frames: int) -> tuple[tuple[int, int], ...]:
    """Per-frame whole-image shifts of up to ~1.7% of the height (0 for a steady camera)."""
    amplitude = int(rng.integers(0, height // 60 + 1))
    shifts = rng.integers(-amplitude, amplitude + 1, size=(n_frames, 2))
    return tuple((int(dx), int(dy)) for dx, dy in shifts)


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render one clip, fixed before any pixel is drawn.

    Public and frozen so tests and notebooks can render a clip - or a simplified copy made with
    :func:`dataclasses.replace` (no distractors, steady camera) - without encoding or decoding.
    ``label`` alone decides the playback direction, so replacing it with its time-reversed
    partner renders exactly the same frames backwards.
    """

    label: str
    youtube_id: str
    time_start: int
    duration: int
    fps: int
    width: int
    height: int
    background: _Background
    action: _Action
    distractors: tuple[_Distractor, ...]
    jitter: tuple[tuple[int, int], ...]

    @property
    def time_end(self) -> int:
        return self.time_start + self.duration

    @property
    def n_frames(self) -> int:
        return self.duration * self.fps

    @property
    def file_name(self) -> str:
        return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}.mp4"


def _name_key(name: str) -> int:
    """A stable integer for a string; Python's ``hash`` is salted per process, so unusable here."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def plan_clip(label: str, index: int, *, split: str = "val", seed: int = 0) -> ClipPlan:
    """Draw clip ``index`` of class ``label``: metadata first, then the scene.

    The RNG is derived from ``(seed, split, label, index)`` only, so the clip is the same
    whatever else is generated alongside it.
    """
    _check_label(label)
    _check_split(split)
    _check_seed(seed)
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _name_key(split), _name_key(label), index]))
    youtube_id = "".join(_YOUTUBE_ID_ALPHABET[i] for i in rng.integers(0, len(_YOUTUBE_ID_ALPHABET), size=11))
    time_start = int(rng.integers(0, MAX_TIME_START + 1))
    duration = int(rng.integers(MIN_DURATION_S, MAX_DURATION_S + 1))
    fps = int(rng.choice(FPS_CHOICES))
    height = 2 * int(rng.integers(MIN_HEIGHT // 2, MAX_HEIGHT // 2 + 1))
    width = 2 * round(height * float(rng.choice(ASPECT_RATIOS)) / 2)
    kind, _ = _CLASS_SPECS[label]
    return ClipPlan(
        label=label,
        youtube_id=youtube_id,
        time_start=time_start,
        duration=duration,
        fps=fps,
        width=width,
        height=height,
        background=_sample_background(rng, height),
        action=_SAMPLERS[kind](rng, width, height, duration),
        distractors=_sample_distractors(rng, width, height),
        jitter=_sample_jitter(rng, height, duration * fps),
    )


def render_frames(plan: ClipPlan) -> Iterator[np.ndarray]:
    """Yield the clip's frames one at a time as ``(height, width, 3)`` uint8 RGB arrays.

    A generator, so encoding never holds more than one frame. Reversed classes render the
    forward process at ``u = 1 - t``, including jitter and distractors, making them exact
    time reversals rather than look-alikes.
    """
    _, reverse = _CLASS_SPECS[plan.label]
    pad = max((max(abs(dx), abs(dy)) for dx, dy in plan.jitter), default=0)
    world = plan.background.render(plan.height + 2 * pad, plan.width + 2 * pad)
    n = plan.n_frames
    for step in range(n):
        source = n - 1 - step if reverse else step
        u = source / (n - 1)
        dx, dy = plan.jitter[source]
        canvas = world[pad + dy : pad + dy + plan.height, pad + dx : pad + dx + plan.width].copy()
        plan.action.draw(canvas, (dx, dy), u)
        for distractor in plan.distractors:
            distractor.draw(canvas, (dx, dy), u)
        yield (canvas * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Writing: atomic files so a killed run leaves only complete clips, which a rerun skips.
# --------------------------------------------------------------------------------------------


def _encode(plan: ClipPlan, path: Path) -> None:
    """Encode to a hidden temp file next to ``path``, then rename it into place."""
    import av  # deferred: planning and rendering work without the optional video extra

    with atomic_path(path) as partial, av.open(str(partial), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=plan.fps)
        stream.width, stream.height, stream.pix_fmt = plan.width, plan.height, "yuv420p"
        stream.options = dict(_X264_OPTIONS)
        for rgb in render_frames(plan):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))


def _write_csv(path: Path, clips: Sequence[SyntheticClip]) -> None:
    """Write the Kinetics annotation CSV atomically, with byte-stable formatting."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for clip in clips:
        writer.writerow([clip.label, clip.youtube_id, clip.time_start, clip.time_end, clip.split])
    write_text_atomic(path, buffer.getvalue())


def _check_label(label: str) -> None:
    if label not in _CLASS_SPECS:
        raise ValueError(f"unknown class {label!r}; known classes: {', '.join(CLASSES)}")


def _check_split(split: str) -> None:
    if not isinstance(split, str) or not _SPLIT_PATTERN.fullmatch(split):
        raise ValueError(f"invalid split name {split!r}: use lowercase letters, digits, '_' or '-'")


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def _select_classes(classes: Sequence[str] | None) -> tuple[str, ...]:
    """Validate ``classes`` and return them in canonical order, so the CSV ignores caller order."""
    if classes is None:
        return CLASSES
    if isinstance(classes, str):
        raise ValueError(f"classes must be a sequence of class names, not the string {classes!r}")
    for label in classes:
        _check_label(label)
    if not classes:
        raise ValueError("classes must name at least one class")
    duplicates = sorted({label for label in classes if list(classes).count(label) > 1})
    if duplicates:
        raise ValueError(f"classes listed more than once: {', '.join(duplicates)}")
    return tuple(label for label in CLASSES if label in classes)


def generate(
    root: Path | str,
    *,
    per_class: int = 4,
    split: str = "val",
    seed: int = 0,
    classes: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[SyntheticClip]:
    """Write ``per_class`` clips of each class under ``root/split`` plus ``root/annotations/split.csv``.

    Idempotent: clips already on disk are kept untouched (writes are atomic, so an existing
    file is a complete one), and the CSV is rewritten with identical bytes - a killed run is
    resumed by running it again. ``progress(done, total)`` is called after every clip.
    Concurrent runs into the same root are not supported.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    _check_split(split)
    _check_seed(seed)
    labels = _select_classes(classes)
    root = Path(root)
    total = len(labels) * per_class
    clips: list[SyntheticClip] = []
    for label in labels:
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            plan = plan_clip(label, index, split=split, seed=seed)
            path = folder / plan.file_name
            if not path.is_file():
                _encode(plan, path)
            clips.append(_record(plan, split, path))
            if progress is not None:
                progress(len(clips), total)
    _write_csv(root / "annotations" / f"{split}.csv", clips)
    return clips


def _record(plan: ClipPlan, split: str, path: Path) -> SyntheticClip:
    return SyntheticClip(
        label=plan.label,
        youtube_id=plan.youtube_id,
        time_start=plan.time_start,
        time_end=plan.time_end,
        split=split,
        path=path,
        fps=plan.fps,
        width=plan.width,
        height=plan.height,
        n_frames=plan.n_frames,
    )

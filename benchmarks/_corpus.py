"""Deterministic synthetic video corpus shared by the benchmarks.

Each clip is 10 seconds of a virtual camera panning, zooming and slightly rotating
over a large procedurally textured image, with a few textured objects moving on top
and per-frame sensor noise, so encoders produce real P/B frames with real motion
vectors and residuals (not a static test card).

H.264 clips are encoded with PyAV/libx264 at its defaults (yuv420p, default B-frames,
GOP/keyint and scene-cut), like YouTube/Kinetics re-encodes; VP9 clips with
libvpx-vp9 in constant-quality mode. Files are cached under ``benchmarks/.corpus/``
(gitignored); the file name carries a hash of the clip spec and the generator
version, so changing either regenerates the file.

Usage: ``python benchmarks/_corpus.py [--quick]`` builds (or reuses) the corpus and
prints what it holds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

GENERATOR_VERSION = 5
CORPUS_DIR = Path(__file__).resolve().parent / ".corpus"
DURATION_S = 10


@dataclass(frozen=True)
class ClipSpec:
    name: str
    codec: str  # "h264" or "vp9"
    width: int
    height: int
    fps: int
    seed: int
    duration_s: int = DURATION_S

    @property
    def n_frames(self) -> int:
        return self.duration_s * self.fps

    @property
    def suffix(self) -> str:
        return ".mp4" if self.codec == "h264" else ".webm"

    def key(self) -> str:
        blob = json.dumps({"v": GENERATOR_VERSION, **asdict(self)}, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:10]

    def filename(self) -> str:
        return f"{self.name}-{self.key()}{self.suffix}"


def _spec(codec: str, w: int, h: int, fps: int, seed: int) -> ClipSpec:
    return ClipSpec(name=f"{codec}_{w}x{h}_{fps}fps_s{seed}", codec=codec, width=w, height=h, fps=fps, seed=seed)


# The quick corpus is a subset of the default one, so a default run reuses its files.
QUICK_SPECS: list[ClipSpec] = [
    _spec("h264", 340, 256, 25, 1),
    _spec("h264", 640, 360, 30, 2),
    _spec("h264", 1280, 720, 25, 3),
    _spec("vp9", 340, 256, 30, 4),
]
DEFAULT_SPECS: list[ClipSpec] = [
    *QUICK_SPECS,
    _spec("h264", 340, 256, 30, 5),
    _spec("h264", 340, 256, 25, 6),
    _spec("h264", 340, 256, 30, 7),
    _spec("h264", 640, 360, 25, 8),
    _spec("h264", 640, 360, 30, 9),
    _spec("h264", 1280, 720, 30, 10),
    _spec("vp9", 640, 360, 25, 11),
    _spec("vp9", 340, 256, 25, 12),
]


# --------------------------------------------------------------------------- content


def _value_noise(rng: np.random.Generator, h: int, w: int, octaves: int = 6) -> np.ndarray:
    """Multi-octave value noise in [0, 1], float32 (h, w)."""
    import cv2

    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    cells = 4
    for _ in range(octaves):
        gh, gw = max(2, h * cells // max(h, w)), max(2, w * cells // max(h, w))
        grid = rng.random((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.55
        cells *= 2
    out /= total
    out -= out.min()
    out /= max(float(out.max()), 1e-6)
    return out


def _canvas(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Large textured RGB uint8 'world' the camera moves over."""
    import cv2

    chans = [_value_noise(rng, h, w) for _ in range(3)]
    img = np.stack(chans, axis=-1)
    # colour map: mix the noise channels through a random matrix, add fine grain
    mix = rng.uniform(0.2, 1.0, (3, 3)).astype(np.float32)
    img = img @ (mix / mix.sum(axis=0, keepdims=True))
    img = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    # man-made structure: rectangles, lines, circles, text (edges for the encoder)
    n_shapes = max(40, (h * w) // 12000)
    for _ in range(n_shapes):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 4)
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind == 0:
            x1, y1 = x0 + int(rng.integers(4, max(5, w // 8))), y0 + int(rng.integers(4, max(5, h // 8)))
            cv2.rectangle(img, (x0, y0), (x1, y1), color, int(rng.choice([-1, 2, 4])))
        elif kind == 1:
            x1, y1 = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(img, (x0, y0), (x1, y1), color, int(rng.integers(1, 5)), cv2.LINE_AA)
        elif kind == 2:
            cv2.circle(img, (x0, y0), int(rng.integers(5, max(6, h // 10))), color, -1, cv2.LINE_AA)
        else:
            cv2.putText(
                img,
                f"{int(rng.integers(0, 10**6))}",
                (x0, y0),
                cv2.FONT_HERSHEY_SIMPLEX,
                float(rng.uniform(0.6, 2.5)),
                color,
                2,
                cv2.LINE_AA,
            )
    return img


@dataclass
class _Sprite:
    tex: np.ndarray  # (s, s, 3) uint8
    mask: np.ndarray  # (s, s) float32 in [0, 1]
    x: float
    y: float
    vx: float
    vy: float


def _sprites(rng: np.random.Generator, h: int, w: int, fps: int) -> list[_Sprite]:
    import cv2

    out = []
    for _ in range(5):
        s = int(rng.integers(h // 8, h // 3))
        tex = _canvas(rng, s, s)
        mask = np.zeros((s, s), np.uint8)
        if rng.random() < 0.5:
            cv2.circle(mask, (s // 2, s // 2), s // 2 - 1, 255, -1, cv2.LINE_AA)
        else:
            cv2.ellipse(
                mask,
                (s // 2, s // 2),
                (s // 2 - 1, s // 3),
                float(rng.uniform(0, 180)),
                0,
                360,
                255,
                -1,
                cv2.LINE_AA,
            )
        speed = rng.uniform(0.15, 0.6) * w / fps  # px/frame: crosses 15-60% of the width a second
        ang = rng.uniform(0, 2 * math.pi)
        out.append(
            _Sprite(
                tex,
                mask.astype(np.float32)[..., None] / 255.0,
                float(rng.uniform(0, w - s)),
                float(rng.uniform(0, h - s)),
                speed * math.cos(ang),
                speed * math.sin(ang),
            )
        )
    return out


def _frames(spec: ClipSpec):
    """Yield the clip's RGB uint8 frames (H, W, 3), deterministically from spec.seed."""
    import cv2

    rng = np.random.default_rng(spec.seed)
    w, h, fps = spec.width, spec.height, spec.fps
    ch, cw = int(h * 2.4), int(w * 2.4)
    world = _canvas(rng, ch, cw)
    sprites = _sprites(rng, h, w, fps)
    noise_bank = rng.normal(0.0, 2.5, (8, h, w, 3)).astype(np.int16)
    p = rng.uniform(0, 2 * math.pi, 4)
    # 1-2 hard cuts per clip to another region of the world (what scene-cut detection sees)
    cuts = sorted(int(c) for c in rng.integers(spec.n_frames // 4, spec.n_frames, 2))
    jump = (0.0, 0.0)
    for i in range(spec.n_frames):
        t = i / fps
        if i in cuts:
            jump = (float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3)))
        # camera path: slow pan (Lissajous), zoom in/out, a little rotation and hand shake
        zoom = 1.0 + 0.45 * math.sin(0.35 * t + p[0])  # world px per output px
        cx = cw / 2 + (0.28 * math.sin(0.21 * t + p[1]) + jump[0]) * cw / 2 + 2.0 * math.sin(7.1 * t)
        cy = ch / 2 + (0.28 * math.sin(0.17 * t + p[2]) + jump[1]) * ch / 2 + 2.0 * math.sin(5.3 * t)
        rot = 4.0 * math.sin(0.3 * t + p[3])
        m = cv2.getRotationMatrix2D((cx, cy), rot, 1.0 / zoom)
        m[0, 2] += w / 2 - cx
        m[1, 2] += h / 2 - cy
        frame = cv2.warpAffine(world, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        for sp in sprites:
            s = sp.tex.shape[0]
            sp.x += sp.vx
            sp.y += sp.vy
            if not 0 <= sp.x <= w - s:
                sp.vx = -sp.vx
                sp.x = min(max(sp.x, 0.0), float(w - s))
            if not 0 <= sp.y <= h - s:
                sp.vy = -sp.vy
                sp.y = min(max(sp.y, 0.0), float(h - s))
            x, y = int(sp.x), int(sp.y)
            roi = frame[y : y + s, x : x + s]
            roi[:] = (roi * (1.0 - sp.mask) + sp.tex * sp.mask).astype(np.uint8)
        # slow global brightness drift + sensor noise
        gain = 1.0 + 0.06 * math.sin(0.5 * t)
        out = frame.astype(np.int16)
        if gain != 1.0:
            out = (out * gain).astype(np.int16)
        out += noise_bank[int(rng.integers(0, len(noise_bank)))]
        yield np.clip(out, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- encode


def _encode(spec: ClipSpec, dst: Path) -> None:
    import av
    import cv2

    tmp = dst.with_name(dst.stem + f".tmp{os.getpid()}" + dst.suffix)
    try:
        # bitexact: no random Matroska SegmentUID / muxer version strings, so files are reproducible
        with av.open(str(tmp), mode="w", options={"fflags": "+bitexact"}) as container:
            if spec.codec == "h264":
                # libx264 defaults (preset medium, 3 B-frames, keyint 250, scenecut 40);
                # a fixed thread count keeps the output byte-identical across machines.
                stream = container.add_stream("libx264", rate=spec.fps, options={"preset": "medium"})
                stream.codec_context.thread_count = 2
            elif spec.codec == "vp9":
                stream = container.add_stream(
                    "libvpx-vp9",
                    rate=spec.fps,
                    options={
                        "crf": "32",
                        "b:v": "0",
                        "deadline": "good",
                        "cpu-used": "4",
                        "row-mt": "1",
                        "threads": "2",
                    },
                )
            else:
                raise ValueError(spec.codec)
            stream.width, stream.height = spec.width, spec.height
            stream.pix_fmt = "yuv420p"
            tb = Fraction(1, spec.fps)
            for i, rgb in enumerate(_frames(spec)):
                # convert to I420 here: PyAV/swscale's rgb24->yuv420p at widths like 340 is not
                # byte-reproducible from run to run, OpenCV's conversion is
                frame = av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
                frame.pts = i
                frame.time_base = tb
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        tmp.replace(dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def build(specs: list[ClipSpec] | None = None, quick: bool = False, verbose: bool = True) -> list[Path]:
    """Return the corpus paths (in spec order), encoding any clip that is not cached yet."""
    if specs is None:
        specs = QUICK_SPECS if quick else DEFAULT_SPECS
    CORPUS_DIR.mkdir(parents=True, exist_ok=True)
    # drop clips from older generator versions or specs (the quick corpus is a subset of the default one)
    known = {s.filename() for s in (*DEFAULT_SPECS, *specs)}
    for old in CORPUS_DIR.iterdir():
        if old.suffix in (".mp4", ".webm") and old.name not in known and ".tmp" not in old.name:
            old.unlink()
    paths = []
    for spec in specs:
        dst = CORPUS_DIR / spec.filename()
        if not dst.exists():
            t0 = time.perf_counter()
            if verbose:
                print(f"  encoding {dst.name} ...", end="", flush=True, file=sys.stderr)
            _encode(spec, dst)
            if verbose:
                print(
                    f" {time.perf_counter() - t0:.1f}s, {dst.stat().st_size / 1e6:.2f} MB",
                    flush=True,
                    file=sys.stderr,
                )
        paths.append(dst)
    return paths


def describe(path: Path) -> dict:
    """Codec, size, frame count and frame-type mix of an encoded clip (PyAV)."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        types: dict[str, int] = {}
        n = 0
        for f in c.decode(s):
            n += 1
            t = {1: "I", 2: "P", 3: "B"}.get(int(f.pict_type), str(f.pict_type))
            types[t] = types.get(t, 0) + 1
        return {
            "file": path.name,
            "codec": s.codec_context.name,
            "size": f"{s.width}x{s.height}",
            "fps": float(s.average_rate or 0),
            "frames": n,
            "types": types,
            "kbps": round(path.stat().st_size * 8 / 1000 / DURATION_S),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--describe", action="store_true", help="decode each clip and print its frame types")
    args = ap.parse_args()
    t0 = time.perf_counter()
    paths = build(quick=args.quick)
    print(f"{len(paths)} clips in {CORPUS_DIR} ({time.perf_counter() - t0:.1f}s)")
    for p in paths:
        print(describe(p) if args.describe else p.name)


if __name__ == "__main__":
    main()

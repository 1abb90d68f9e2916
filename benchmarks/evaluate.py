"""Evaluation benchmark: streaming `evaluate` vs its own bound and vs the prototype's evaluate loop.

Run by `make bench` as `.venv/bin/python benchmarks/evaluate.py [--n N] [--quick] [--out DIR]`.

Settings (chosen so the whole script stays under 5 minutes on 2 busy CPU cores, about 2.5 on idle ones):
r2plus1d_18 with random weights and its recipe cut to 8 frames per clip (8 frames at 15 fps, resized to
128x171, centre crop 112x112, Kinetics mean/std), 1x1 views, batches of 8 clips, 2 decode workers, on clips
(`forwardlab.video.data.synthetic`: 2-5 s, 96p-360p, 15-30 fps, H.264). The default is N=12 vs 10N=120
videos (about 70 s on idle cores); `--n 200` is the issue's 200 vs 2,000 (about 25 minutes). 10N reuses the
distinct clips through hard links.

Approaches, each in its own fresh subprocess so its peak RSS is its own:
  bound       decode s per clip (probe + one decode + normalize, serially) and model s per clip (batches
              of 8, warm, serially), measured on this machine in this run, once right before and once
              right after the 10N run (their mean is the bound; a gap between them means a neighbour
              loaded the machine); bound = 1 / (decode + model) videos/s with one view per video
  ours N      evaluate() on N videos: streaming decode workers -> batched inference -> durable rows
  ours 10N    the same on 10N videos: videos/s against the bound, peak RSS against ours N
  prototype   the prototype's loop re-created: a batch of 8 whole videos in memory, every frame decoded
              to float32 at full resolution (OpenCV), resampled to 8 frames, resized, cropped, predicted

Memory: `peak RSS` is the evaluating process's VmHWM (exact); `+ workers` adds each decode worker's peak
private memory (USS, sampled): forked workers share torch and the parent's pages, which an RSS sum would
count once per process. Nothing asserts on time: the targets print PASS/MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import peak_rss_mib, print_result, run_tagged, status_kib

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".corpus" / "evaluate"

BASE_MODEL = "r2plus1d_18"
FRAMES = 8
VARIANT = f"{BASE_MODEL}-{FRAMES}f"
BATCH = 8
WORKERS = 2
PROTO_VIDEOS_PER_BATCH = 8
PER_CLASS = 2  # distinct synthetic clips: 12 classes x 2
SEED = 0


# =============================================================================== worker side


class WorkerMemory:
    """Samples every descendant process: its peak RSS (VmHWM) and its peak USS (private memory).

    A job's peak is then taken as this process's exact VmHWM plus each worker's peak USS: forked decode
    workers share torch's libraries and most of the parent's pages, which an RSS sum would count once
    per process, while their USS is what each adds. Workers hold steady (decoded clips come and go), so
    sampling every half second finds their peaks; the main process's transient inference peaks are
    what VmHWM catches exactly.
    """

    def __init__(self, interval_s: float = 0.5) -> None:  # a USS read costs ~5 ms per process
        self.interval_s = interval_s
        self.rss_kib: dict[int, int] = {}
        self.uss_bytes: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            try:
                children = me.children(recursive=True)
            except psutil.Error:
                children = []
            for child in children:
                try:
                    uss = child.memory_full_info().uss
                except (psutil.Error, AttributeError):
                    continue
                self.uss_bytes[child.pid] = max(self.uss_bytes.get(child.pid, 0), uss)
                kib = status_kib(child.pid, "VmHWM")
                if kib is not None:
                    self.rss_kib[child.pid] = max(self.rss_kib.get(child.pid, 0), kib)
            self._stop.wait(self.interval_s)

    @property
    def uss_mib(self) -> float:
        return sum(self.uss_bytes.values()) / 2**20


def _register_variant() -> Any:
    """The benchmark's model: r2plus1d_18's entry with its recipe cut to FRAMES frames per clip."""
    from dataclasses import replace

    from forwardlab.video.models.catalog import get_entry
    from forwardlab.video.models.registry import register

    base = get_entry(BASE_MODEL)
    return register(replace(base, name=VARIANT, recipe=replace(base.recipe, frames_per_clip=FRAMES)))


def _random_model(entry: Any) -> Any:
    import torch

    torch.manual_seed(SEED)
    return entry.builder(entry.num_classes).eval()


def _paths(manifest_path: str) -> list[str]:
    from forwardlab.video.data.manifest import Manifest

    manifest = Manifest(manifest_path)
    return [str(manifest.absolute(r)) for r in sorted(manifest.records(status="downloaded"), key=lambda r: r.path)]


def worker_bound(args: argparse.Namespace) -> dict[str, Any]:
    """Decode s per clip and model s per clip, each measured alone with the whole machine."""
    import torch

    from forwardlab.video.inference import decode_views
    from forwardlab.video.transforms import to_model_input

    entry = _register_variant()
    recipe = entry.recipe
    model = _random_model(entry)
    paths = _paths(args.data)
    decode_views(paths[0], recipe, (1, 1))  # warm-up: imports, codec init, page cache
    clips = []
    t0 = time.perf_counter()
    for p in paths:
        views, _ = decode_views(p, recipe, (1, 1))
        clips.append(to_model_input(views, recipe.mean, recipe.std))
    decode_s = (time.perf_counter() - t0) / len(paths)
    x = torch.cat(clips[:BATCH])
    with torch.inference_mode():
        model(x[:2])  # warm-up
        t0 = time.perf_counter()
        for _ in range(args.model_batches):
            model(x)
    model_s = (time.perf_counter() - t0) / (args.model_batches * len(x))
    return {
        "decode_s_per_clip": decode_s,
        "model_s_per_clip": model_s,
        "videos_per_s": 1.0 / (decode_s + model_s),
        "decoded_videos": len(paths),
        "model_clips": args.model_batches * len(x),
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mib": peak_rss_mib(),
    }


def worker_ours(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from forwardlab.video.evaluate import evaluate

    _register_variant()
    torch.manual_seed(SEED)  # evaluate builds the random-weight model in this process
    out = Path(args.scratch)
    shutil.rmtree(out, ignore_errors=True)
    rss_setup = peak_rss_mib()
    with WorkerMemory() as workers:
        summary = evaluate(
            Path(args.data),
            VARIANT,
            out=out,
            views=(1, 1),
            batch=BATCH,
            workers=WORKERS,
            pretrained=False,
        )
    main_peak = peak_rss_mib()
    timing = json.loads((out / "summary.json").read_text())["timing"]
    return {
        "videos": summary.counts["evaluated"],
        "failed": summary.counts["failed"],
        "videos_per_s": summary.videos_per_s,
        "run_s": timing["run_s"],
        "decode_s_per_clip_in_run": timing["decode_s_per_clip"],
        "model_s_per_clip_in_run": timing["model_s_per_clip"],
        "rss_after_setup_mib": rss_setup,
        "peak_rss_mib": main_peak,
        "peak_job_mib": main_peak + workers.uss_mib,
        "worker_peak_rss_mib": sorted(round(v / 1024) for v in workers.rss_kib.values()),
        "worker_peak_uss_mib": sorted(round(v / 2**20) for v in workers.uss_bytes.values()),
    }


def worker_prototype(args: argparse.Namespace) -> dict[str, Any]:
    """The prototype's loop: whole videos as float32 in memory, a batch at a time, then resample."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    entry = _register_variant()
    recipe = entry.recipe
    model = _random_model(entry)
    paths = _paths(args.data)
    mean = torch.tensor(recipe.mean).view(3, 1, 1, 1)
    std = torch.tensor(recipe.std).view(3, 1, 1, 1)
    height, width = recipe.resize_size
    crop_h, crop_w = recipe.crop_size
    try:
        import cv2

        reader = "OpenCV"

        def read_all(path: str) -> np.ndarray:
            cap = cv2.VideoCapture(path)
            frames = []
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
            cap.release()
            return np.stack(frames)  # (N, H, W, 3) float32, the whole video at full resolution

    except ImportError:
        import av

        reader = "PyAV (OpenCV not installed)"

        def read_all(path: str) -> np.ndarray:
            with av.open(path) as container:
                return np.stack(
                    [f.to_ndarray(format="rgb24").astype(np.float32) / 255.0 for f in container.decode(video=0)]
                )

    rss_setup = peak_rss_mib()
    held_mib = 0.0
    t0 = time.perf_counter()
    predictions = 0
    for start in range(0, len(paths), PROTO_VIDEOS_PER_BATCH):
        videos = [read_all(p) for p in paths[start : start + PROTO_VIDEOS_PER_BATCH]]
        held_mib = max(held_mib, sum(v.nbytes for v in videos) / 2**20)
        batch = []
        for video in videos:
            idx = np.linspace(0, len(video) - 1, recipe.frames_per_clip).astype(np.int64)
            clip = torch.from_numpy(video[idx]).permute(0, 3, 1, 2)  # (T, 3, H, W) float
            clip = F.interpolate(clip, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
            clip = clip[..., top : top + crop_h, left : left + crop_w].permute(1, 0, 2, 3)  # (3, T, h, w)
            batch.append((clip - mean) / std)
        with torch.inference_mode():
            probs = model(torch.stack(batch)).softmax(dim=-1)
        predictions += int(probs.topk(5).indices.shape[0])
        del videos, batch
    run_s = time.perf_counter() - t0
    peak = peak_rss_mib()
    return {
        "videos": predictions,
        "videos_per_s": predictions / run_s,
        "run_s": run_s,
        "reader": reader,
        "whole_videos_held_mib": held_mib,
        "rss_after_setup_mib": rss_setup,
        "peak_rss_mib": peak,
        "peak_job_mib": peak,
    }


WORKERS_BY_NAME = {"bound": worker_bound, "ours": worker_ours, "prototype": worker_prototype}


def worker_main(args: argparse.Namespace) -> int:
    import traceback

    try:
        res = {"ok": True, **WORKERS_BY_NAME[args.worker](args)}
    except Exception as exc:
        res = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300], "tb": traceback.format_exc()}
    print_result(res)
    return 0


# =============================================================================== parent side


def build_datasets(n: int) -> tuple[Path, Path, int]:
    """Manifests of N and 10N videos over cached synthetic clips (10N by hard links, no re-encoding)."""
    from forwardlab.video.data.folder import import_folder
    from forwardlab.video.data.synthetic import generate

    clips = generate(CACHE / "clips", per_class=PER_CLASS, seed=SEED)
    distinct = sorted(c.path for c in clips)
    manifests = []
    for size in (n, 10 * n):
        root = CACHE / f"n{size}"
        for i in range(size):
            src = distinct[i % len(distinct)]
            dst = root / "val" / src.parent.name / f"c{i // len(distinct)}_{src.name}"
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
        manifests.append(import_folder(root, manifest=root / "manifest.sqlite", workers=2).path)
    return manifests[0], manifests[1], len(distinct)


def run_worker(name: str, data: Path, scratch: Path, timeout: float, extra: list[str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--data", str(data)]
    cmd += ["--scratch", str(scratch), *(extra or [])]
    return run_tagged(cmd, timeout=timeout)


def _x(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _f(v: float | None, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=12, help="N: the small run's videos; the large run has 10N (default 12)")
    ap.add_argument("--quick", action="store_true", help="N=8 (one full batch), 10N=80: a shorter smoke run")
    ap.add_argument("--out", type=Path, help="also write results.json into this folder")
    ap.add_argument("--worker", choices=sorted(WORKERS_BY_NAME), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    ap.add_argument("--model-batches", type=int, default=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)

    n = 8 if args.quick else args.n
    load_start = os.getloadavg()[0]
    t_start = time.perf_counter()
    small, large, distinct = build_datasets(n)
    prep_s = time.perf_counter() - t_start
    print(f"data ready in {prep_s:.1f}s: {n} and {10 * n} videos over {distinct} distinct clips", file=sys.stderr)

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="fl-bench-eval-") as tmp:
        # the bound is measured right before and right after the long run, so a neighbour's load shows
        bound_args = ["--model-batches", "1" if args.quick else "2"]
        plan = [
            ("ours N", "ours", small, []),
            ("bound", "bound", small, bound_args),
            ("ours 10N", "ours", large, []),
            ("bound after", "bound", small, bound_args),
            ("prototype N", "prototype", small, []),
        ]
        for label, worker, data, extra in plan:
            videos = 10 * n if data == large else n
            # generous: a 2,000-video run on a busy 2-core machine takes most of an hour
            timeout = 600 + 5 * videos
            r = run_worker(worker, data, Path(tmp) / label.replace(" ", "_"), timeout=timeout, extra=extra)
            results[label] = r
            status = f"{r['videos_per_s']:.3f} videos/s" if r.get("ok") else r.get("error")
            print(f"  {label:12s} {status}  ({r.get('wall_s', 0):.1f}s)", file=sys.stderr, flush=True)

    bounds = [results[k]["videos_per_s"] for k in ("bound", "bound after") if results[k].get("ok")]
    bound = sum(bounds) / len(bounds) if bounds else None
    proto = results["prototype N"]
    proto_vps = proto.get("videos_per_s") if proto.get("ok") else None
    proto_rss = proto.get("peak_rss_mib") if proto.get("ok") else None

    print()
    print(
        f"evaluate benchmark: {VARIANT} (random weights; {FRAMES} frames @ 15 fps, 128x171 -> 112x112), views 1x1, "
        f"batch {BATCH} clips, {WORKERS} decode workers; synthetic H.264 clips 2-5 s, 96p-360p; "
        f"N={n}, 10N={10 * n}; {os.cpu_count()} CPUs, load average {load_start:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end"
    )
    header = (
        f"{'approach':<13}{'videos':>7}{'videos/s':>10}{'vs bound':>10}{'vs proto':>10}"
        f"{'peak RSS MiB':>14}{'+ workers MiB':>15}{'after setup':>13}"
    )
    print(header)
    print("-" * len(header))
    for label in ("bound", "bound after", "ours N", "ours 10N", "prototype N"):
        r = results[label]
        if not r.get("ok"):
            print(f"{label:<13} failed: {r.get('error')}")
            continue
        vps = r["videos_per_s"]
        print(
            f"{label:<13}{r.get('videos', '-')!s:>7}{_f(vps):>10}{_x(vps, bound):>10}{_x(vps, proto_vps):>10}"
            f"{_f(r.get('peak_rss_mib'), '.0f'):>14}{_f(r.get('peak_job_mib'), '.0f'):>15}"
            f"{_f(r.get('rss_after_setup_mib'), '.0f'):>13}"
        )
    if len(bounds) == 2 and max(bounds) > 1.2 * min(bounds):
        print(
            f"note: the bound measured {bounds[0]:.3f} before and {bounds[1]:.3f} videos/s after the 10N run: "
            "something else loaded the machine meanwhile, so these ratios are noisy (the table uses their mean)"
        )
    b = results["bound"]
    if b.get("ok"):
        print(
            f"bound: decode {1000 * b['decode_s_per_clip']:.0f} ms/clip (probe + one decode + normalize, "
            f"{b['decoded_videos']} videos) + model {1000 * b['model_s_per_clip']:.0f} ms/clip "
            f"({b['model_clips']} clips in batches of {BATCH}, {b['torch_threads']} threads) -> "
            f"{b['videos_per_s']:.3f} videos/s"
        )
    if proto.get("ok"):
        print(
            f"prototype: {proto['reader']} reads every frame to float32 at full size; a batch of "
            f"{PROTO_VIDEOS_PER_BATCH} whole videos held up to {proto['whole_videos_held_mib']:.0f} MiB"
        )

    checks: list[tuple[str, bool | None, str]] = []
    big, little = results["ours 10N"], results["ours N"]
    if big.get("ok") and bound:
        ratio = big["videos_per_s"] / bound
        checks.append((f"end-to-end 10N videos/s >= 0.9x the bound: {ratio:.2f}x", ratio >= 0.9, ""))
    else:
        checks.append(("end-to-end vs bound", None, "not measured"))
    if big.get("ok") and little.get("ok"):
        for key, what in (("peak_rss_mib", "evaluating process"), ("peak_job_mib", "with decode workers")):
            ratio = big[key] / little[key]
            text = f"peak memory at 10N within 1.10x of N ({what}): {big[key]:.0f} vs {little[key]:.0f} MiB"
            checks.append((f"{text} = {ratio:.2f}x", ratio <= 1.10, ""))
    if big.get("ok") and proto_vps and proto_rss:
        ratio = big["videos_per_s"] / proto_vps
        checks.append((f"videos/s at least the prototype's: {ratio:.2f}x", ratio >= 1.0, ""))
        ratio = big["peak_rss_mib"] / proto_rss
        checks.append(
            (f"peak RSS of the evaluating process (10N) below the prototype's (N): {ratio:.2f}x", ratio < 1.0, "")
        )
        ratio = big["peak_job_mib"] / proto["peak_job_mib"]
        checks.append(
            (f"peak memory with decode workers (10N) below the prototype's (N): {ratio:.2f}x", ratio < 1.0, "")
        )
    print("targets:")
    for text, passed, note in checks:
        print(f"  {'PASS' if passed else ('MISS' if passed is False else 'N/A ')}  {text}{'  ' + note if note else ''}")
    print(
        "peak RSS: the evaluating process's VmHWM, imports and model included (RSS after setup); + workers: "
        "that plus each decode worker's peak private memory (USS). "
        f"Total {time.perf_counter() - t_start:.0f}s."
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {"n": n, "results": results, "checks": [{"check": c[0], "passed": c[1]} for c in checks]}
        (args.out / "results.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Decode benchmark: "16 uniform frames at 112x112" per clip, ours vs the prototype and other decoders.

Run by `make bench` as `.venv/bin/python benchmarks/decode.py [--quick] [--out DIR]`.

Every approach runs in its own fresh subprocess (`decode.py --worker NAME ...`) so its peak RSS is its
own, over the same cached synthetic corpus (`benchmarks/_corpus.py`). Each worker decodes one clip to
warm up, then repeats whole passes over the corpus for a minimum time; the parent runs up to a few
rounds of all workers interleaved (as the time budget allows) and keeps each approach's best pass, so
a noisy neighbour slows every approach alike rather than the unlucky one. The printed ratios are
measured side by side in one run; nothing here asserts on time.

Approaches:
  prototype     OpenCV reads every frame, float32 RGB, center crop, 224x224, keeps them all, picks 16
  decord        VideoReader(width=112, height=112, num_threads=0).get_batch(indices)
  torchcodec    VideoDecoder(seek_mode=approximate|exact, num_ffmpeg_threads=0, Resize((112,112)))
                .get_frames_played_at(seconds)
  ours-exact    probe + uniform_timestamps + read_frames(size=(112,112), mode="exact")
  ours-fast     the same with mode="fast" (reports the timestamp error it trades for speed)
  multi-view    10 temporal clips x 3 spatial crops: read_views (one decode) vs 30 read_frames calls
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import peak_rss_mib, print_result, run_tagged  # noqa: E402

N_FRAMES = 16
OUT_HW = 112
PROTO_HW = 224
MV_CLIPS, MV_FPC, MV_FPS, MV_SIZE, MV_CROP, MV_CROPS = 10, 16, 15, 128, 112, 3

# name -> (label, group, description)
APPROACHES: dict[str, tuple[str, str, str]] = {
    "prototype": ("prototype (OpenCV)", "clips", "cv2.VideoCapture, all frames -> f32 RGB 224^2 cache"),
    "decord": ("decord", "clips", "VideoReader(w=h=112, num_threads=0).get_batch"),
    "torchcodec-approx": (
        "torchcodec approximate",
        "clips",
        "seek_mode=approximate, threads=0, decoder Resize",
    ),
    "torchcodec-exact": ("torchcodec exact", "clips", "seek_mode=exact, threads=0, decoder Resize"),
    "ours-exact": ("ours exact", "clips", "probe + uniform_timestamps + read_frames(exact)"),
    "ours-exact-cached": (
        "ours exact (probe cached)",
        "clips",
        "read_frames(exact), probe done once up front",
    ),
    "ours-fast": ("ours fast", "clips", "probe + uniform_timestamps + read_frames(fast)"),
    "mv-ours": ("ours read_views", "views", "1 decode serves 10 clips x 3 crops"),
    "mv-separate": ("30 x read_frames", "views", "each clip x crop decoded on its own, then cropped"),
}
THIRD_PARTY = ("decord", "torchcodec-approx", "torchcodec-exact")
# (multi-view?, channels-last?) -> output shape
EXPECTED_SHAPE = {
    (False, True): [N_FRAMES, OUT_HW, OUT_HW, 3],
    (False, False): [N_FRAMES, 3, OUT_HW, OUT_HW],
    (True, False): [MV_CLIPS * MV_CROPS, MV_FPC, 3, MV_CROP, MV_CROP],
}


# =============================================================================== worker side


def _uniform_indices(n: int) -> Any:
    import numpy as np

    return np.linspace(0, n - 1, N_FRAMES).astype(np.int64)  # prototype style


def _setup_prototype(clips: list[str]) -> tuple[Callable[[str], Any], dict]:
    import cv2
    import numpy as np

    def run(path: str) -> Callable[[], dict]:
        cap = cv2.VideoCapture(path)
        cache = []
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
            h, w = rgb.shape[:2]
            s = min(h, w)
            y0, x0 = (h - s) // 2, (w - s) // 2
            cache.append(
                cv2.resize(rgb[y0 : y0 + s, x0 : x0 + s], (PROTO_HW, PROTO_HW), interpolation=cv2.INTER_LINEAR)
            )
        cap.release()
        frames = np.stack(cache)  # the prototype's in-memory "cache": (N, 224, 224, 3) float32
        idx = _uniform_indices(len(frames))
        out = np.stack([cv2.resize(frames[i], (OUT_HW, OUT_HW), interpolation=cv2.INTER_AREA) for i in idx])
        cache_bytes, n = int(frames.nbytes), len(frames)
        return lambda: {
            "out_bytes": int(out.nbytes),
            "cache_bytes": cache_bytes,
            "n_frames": n,
            "shape": list(out.shape),
            "dtype": str(out.dtype),
        }

    return run, {"opencv": cv2.__version__, "cv2_threads": cv2.getNumThreads()}


def _setup_decord(clips: list[str]) -> tuple[Callable[[str], Any], dict]:
    import decord
    from decord import VideoReader, cpu

    def run(path: str) -> Callable[[], dict]:
        vr = VideoReader(path, ctx=cpu(0), width=OUT_HW, height=OUT_HW, num_threads=0)
        out = vr.get_batch(_uniform_indices(len(vr))).asnumpy()
        return lambda: {"out_bytes": int(out.nbytes), "shape": list(out.shape), "dtype": str(out.dtype)}

    return run, {"decord": decord.__version__}


def _setup_torchcodec(seek_mode: Any) -> Callable[[list[str]], tuple[Callable[[str], Any], dict]]:
    def setup(clips: list[str]) -> tuple[Callable[[str], Any], dict]:
        import torch
        import torchcodec
        from torchcodec.decoders import VideoDecoder

        info: dict[str, Any] = {"torchcodec": torchcodec.__version__}
        try:
            from torchcodec._core import get_ffmpeg_library_versions

            info["ffmpeg"] = get_ffmpeg_library_versions().get("ffmpeg_version")
        except Exception:
            pass
        try:
            from torchcodec.transforms import Resize

            transforms: list | None = [Resize((OUT_HW, OUT_HW))]
            info["resize"] = "decoder-side torchcodec.transforms.Resize"
        except ImportError:
            transforms = None
            info["resize"] = "torch.nn.functional.interpolate"

        def run(path: str) -> Callable[[], dict]:
            dec = VideoDecoder(path, seek_mode=seek_mode, num_ffmpeg_threads=0, transforms=transforms)
            md = dec.metadata
            fps = float(md.average_fps or 0.0)
            begin = md.begin_stream_seconds or 0.0
            n = int(md.num_frames or 0)
            if not (fps > 0 and n > 0):
                raise RuntimeError(f"{path}: torchcodec metadata has no frame rate or frame count")
            # the same frames as the index-based decoders: the middle of frame i's display interval
            seconds = [begin + (float(i) + 0.5) / fps for i in _uniform_indices(n)]
            data = dec.get_frames_played_at(seconds).data
            if transforms is None:
                data = (
                    torch.nn.functional.interpolate(
                        data.float(), size=(OUT_HW, OUT_HW), mode="bilinear", antialias=True
                    )
                    .round()
                    .clamp(0, 255)
                    .to(torch.uint8)
                )
            return lambda: {
                "out_bytes": data.numel() * data.element_size(),
                "shape": list(data.shape),
                "dtype": str(data.dtype),
            }

        return run, info

    return setup


def _setup_ours(mode: Any, cached_probe: bool = False) -> Callable[[list[str]], tuple[Callable[[str], Any], dict]]:
    def setup(clips: list[str]) -> tuple[Callable[[str], Any], dict]:
        import torch  # noqa: F401  (read_frames returns torch tensors: count the import, not the first decode)

        from forwardlab.video.io import probe, read_frames
        from forwardlab.video.sampling import uniform_timestamps

        probed = {c: uniform_timestamps(probe(c), N_FRAMES) for c in clips} if cached_probe else {}

        def run(path: str) -> Callable[[], dict]:
            ts = probed[path] if cached_probe else uniform_timestamps(probe(path), N_FRAMES)
            res = read_frames(path, ts, size=(OUT_HW, OUT_HW), mode=mode)
            return lambda: {
                "out_bytes": res.data.numel() * res.data.element_size(),
                "shape": list(res.data.shape),
                "dtype": str(res.data.dtype),
                "max_error_s": float(res.max_error_s),
                "mean_error_s": float(res.mean_error_s),
            }

        return run, {"forwardlab": _version("forwardlab")}

    return setup


def _setup_mv(separate: bool) -> Callable[[list[str]], tuple[Callable[[str], Any], dict]]:
    def setup(clips: list[str]) -> tuple[Callable[[str], Any], dict]:
        import torch

        from forwardlab.video.io import probe, read_frames
        from forwardlab.video.sampling import multiview_timestamps
        from forwardlab.video.transforms import spatial_crops

        if not separate:
            from forwardlab.video.io import read_views

        def run(path: str) -> Callable[[], dict]:
            views = multiview_timestamps(probe(path), n_clips=MV_CLIPS, frames_per_clip=MV_FPC, fps=MV_FPS)
            if separate:
                outs = []
                for ts in views:
                    for k in range(MV_CROPS):  # each view decoded on its own, as a naive loader does
                        frames = read_frames(path, ts, size=MV_SIZE, mode="exact").data
                        outs.append(spatial_crops(frames, MV_CROP, MV_CROPS)[k].contiguous())
                out = torch.stack(outs)
            else:
                out = read_views(path, views, size=MV_SIZE, crop=MV_CROP, spatial_crops=MV_CROPS)
            return lambda: {
                "views": out.shape[0],
                "out_bytes": out.numel() * out.element_size(),
                "shape": list(out.shape),
                "dtype": str(out.dtype),
                "crc32": zlib.crc32(out.contiguous().numpy().tobytes()),
            }

        return run, {"forwardlab": _version("forwardlab")}

    return setup


WORKERS: dict[str, Callable[[list[str]], tuple[Callable[[str], Any], dict]]] = {
    "prototype": _setup_prototype,
    "decord": _setup_decord,
    "torchcodec-approx": _setup_torchcodec("approximate"),
    "torchcodec-exact": _setup_torchcodec("exact"),
    "ours-exact": _setup_ours("exact"),
    "ours-exact-cached": _setup_ours("exact", cached_probe=True),
    "ours-fast": _setup_ours("fast"),
    "mv-ours": _setup_mv(separate=False),
    "mv-separate": _setup_mv(separate=True),
}


def worker_main(args: argparse.Namespace) -> int:
    res: dict[str, Any] = {"approach": args.worker, "ok": False}
    try:
        t0 = time.perf_counter()
        try:
            run, info = WORKERS[args.worker](args.clip)
        except Exception as exc:  # import or API problem: report, don't crash the whole benchmark
            res["error"] = f"not available: {type(exc).__name__}: {exc}".splitlines()[0][:300]
            raise _Reported from exc
        res["info"] = info
        res["setup_s"] = time.perf_counter() - t0
        res["rss_after_setup_mib"] = peak_rss_mib()
        if not args.no_warmup:
            run(args.clip[0])  # warm-up: lazy imports, codec init, page cache
        res["rss_after_warmup_mib"] = peak_rss_mib()
        passes: list[float] = []
        cpu: list[float] = []
        per_clip: list[dict] = []
        elapsed = 0.0
        while True:
            wall = proc = 0.0
            for clip in args.clip:
                c0, t0 = time.process_time(), time.perf_counter()
                stats = run(clip)
                wall += time.perf_counter() - t0
                proc += time.process_time() - c0  # all threads of this process
                if not passes:  # describe the output once, outside the timed region
                    per_clip.append({"clip": Path(clip).name, **stats()})
                    got, want = (
                        per_clip[-1]["shape"],
                        EXPECTED_SHAPE[APPROACHES[args.worker][1] == "views", args.worker in ("prototype", "decord")],
                    )
                    if got != want:
                        raise AssertionError(f"{Path(clip).name}: output shape {got}, expected {want}")
                del stats
            passes.append(wall)
            cpu.append(proc)
            elapsed += wall
            if (elapsed >= args.min_time and len(passes) >= args.min_passes) or elapsed >= args.max_time:
                break
        res.update(
            ok=True,
            n_clips=len(args.clip),
            pass_s=passes,
            cpu_s=cpu,
            per_clip=per_clip,
            peak_rss_mib=peak_rss_mib(),
        )
    except _Reported:
        pass
    except Exception as exc:
        res["error"] = f"failed: {type(exc).__name__}: {exc}".splitlines()[0][:300]
        res["traceback"] = traceback.format_exc()[-2000:]
    print_result(res)
    return 0


class _Reported(Exception):
    pass


# =============================================================================== parent side


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    mem = None
    try:
        import psutil

        mem = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "mem_gib": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def library_versions() -> dict[str, Any]:
    v: dict[str, Any] = {
        d: _version(d)
        for d in (
            "forwardlab",
            "av",
            "torch",
            "numpy",
            "opencv-python-headless",
            "opencv-python",
            "decord",
            "torchcodec",
        )
    }
    v = {k: val for k, val in v.items() if val is not None or k in ("decord", "torchcodec")}
    try:
        import av

        lv = av.library_versions.get("libavcodec")
        v["pyav libavcodec"] = ".".join(map(str, lv)) if lv else None
    except Exception:
        pass
    try:
        out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, timeout=10).stdout
        v["system ffmpeg"] = out.split()[2] if out else None
    except (OSError, subprocess.SubprocessError, IndexError):
        v["system ffmpeg"] = None
    return v


def run_worker(
    name: str,
    clips: list[Path],
    min_time: float,
    min_passes: int,
    max_time: float,
    timeout: float,
    warmup: bool = True,
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--min-time",
        str(min_time),
        "--min-passes",
        str(min_passes),
        "--max-time",
        str(max_time),
    ]
    if not warmup:
        cmd.append("--no-warmup")
    for c in clips:
        cmd += ["--clip", str(c)]
    return {"approach": name, **run_tagged(cmd, timeout=timeout)}


def merge(prev: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Fold another round of one approach into its result: all passes, worst-case RSS."""
    if prev is None or not prev.get("ok"):
        return new if new.get("ok") or prev is None else prev
    if not new.get("ok"):
        return prev
    out = dict(prev)
    out["pass_s"] = prev["pass_s"] + new["pass_s"]
    out["cpu_s"] = prev["cpu_s"] + new["cpu_s"]
    out["peak_rss_mib"] = max(prev["peak_rss_mib"], new["peak_rss_mib"])
    out["rss_after_setup_mib"] = max(prev["rss_after_setup_mib"], new["rss_after_setup_mib"])
    out["rounds"] = prev.get("rounds", 1) + 1
    out["wall_s"] = prev.get("wall_s", 0) + new.get("wall_s", 0)
    return out


def summarize(res: dict[str, Any]) -> None:
    if not res.get("ok"):
        return
    best, med = min(res["pass_s"]), statistics.median(res["pass_s"])
    n = res["n_clips"]
    res["clips_per_s"] = n / best
    res["clips_per_s_median"] = n / med
    res["passes"] = len(res["pass_s"])
    res["cpu_ms_per_clip"] = 1000 * sum(res["cpu_s"]) / (len(res["cpu_s"]) * n)
    if APPROACHES[res["approach"]][1] == "views":
        views = sum(c["views"] for c in res["per_clip"])
        res["views_per_s"] = views / best
        res["views_per_s_median"] = views / med


def fmt_x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def render(
    results: dict[str, dict], meta: dict[str, Any], console_print: Callable[..., None], use_rich: bool
) -> tuple[list[dict], list[tuple[str, float | None, str, bool | None]]]:
    """Print the tables and target checks; return the table rows and the checks."""
    ok = {k: r for k, r in results.items() if r.get("ok")}
    cps = {k: r["clips_per_s"] for k, r in ok.items() if APPROACHES[k][1] == "clips"}
    third = {k: v for k, v in cps.items() if k in THIRD_PARTY}
    best_third_name = max(third, key=third.__getitem__) if third else None
    best_third = third.get(best_third_name) if best_third_name else None
    proto = cps.get("prototype")

    rows: list[dict] = []
    for name, (label, group, desc) in APPROACHES.items():
        if group != "clips" or name not in results:
            continue
        r = results[name]
        row: dict[str, Any] = {"approach": name, "label": label, "settings": desc}
        if r.get("ok"):
            if name in THIRD_PARTY and best_third is not None:
                # a third-party decoder compares against the fastest *other* third-party one
                others = [v for k, v in third.items() if k != name]
                vs_other = r["clips_per_s"] / max(others) if others else None
            else:
                vs_other = r["clips_per_s"] / best_third if best_third else None
            row.update(
                clips_per_s=r["clips_per_s"],
                clips_per_s_median=r["clips_per_s_median"],
                vs_fastest_other=vs_other,
                vs_prototype=r["clips_per_s"] / proto if proto else None,
                peak_rss_mib=r["peak_rss_mib"],
                rss_after_setup_mib=r["rss_after_setup_mib"],
                passes=r["passes"],
                cpu_ms_per_clip=r["cpu_ms_per_clip"],
            )
            if name == "ours-fast":
                errs = [c["max_error_s"] for c in r["per_clip"]]
                means = [c["mean_error_s"] for c in r["per_clip"]]
                row["max_error_s"], row["mean_error_s"] = max(errs), sum(means) / len(means)
        else:
            row["error"] = r.get("error", "failed")
        rows.append(row)

    mv_rows: list[dict] = []
    for name in ("mv-ours", "mv-separate"):
        if name not in results:
            continue
        r = results[name]
        row = {"approach": name, "label": APPROACHES[name][0], "settings": APPROACHES[name][2]}
        if r.get("ok"):
            row.update(
                views_per_s=r["views_per_s"],
                views_per_s_median=r["views_per_s_median"],
                clips_per_s=r["clips_per_s"],
                peak_rss_mib=r["peak_rss_mib"],
                rss_after_setup_mib=r["rss_after_setup_mib"],
                passes=r["passes"],
                cpu_ms_per_clip=r["cpu_ms_per_clip"],
            )
        else:
            row["error"] = r.get("error", "failed")
        mv_rows.append(row)
    mv_ok = {r["approach"]: r for r in mv_rows if "views_per_s" in r}
    mv_ratio = mv_ok["mv-ours"]["views_per_s"] / mv_ok["mv-separate"]["views_per_s"] if len(mv_ok) == 2 else None
    if "mv-ours" in mv_ok:
        mv_ok["mv-ours"]["vs_separate"] = mv_ratio
    if "mv-separate" in mv_ok:
        mv_ok["mv-separate"]["vs_separate"] = 1.0
    mv_same = None
    if len(mv_ok) == 2:
        a = [c["crc32"] for c in results["mv-ours"]["per_clip"]]
        b = [c["crc32"] for c in results["mv-separate"]["per_clip"]]
        mv_same = a == b

    # bytes: prototype cache vs our output, per clip (from what the workers actually held)
    bytes_ratio = bytes_ratio_mean = None
    if "prototype" in ok:
        cache = {c["clip"]: c["cache_bytes"] for c in ok["prototype"]["per_clip"]}
        ours_src = ok.get("ours-exact") or ok.get("ours-fast") or ok.get("ours-exact-cached")
        if ours_src:
            ours_b = {c["clip"]: c["out_bytes"] for c in ours_src["per_clip"]}
        else:  # contract size: 16 x 3 x 112 x 112 uint8
            ours_b = dict.fromkeys(cache, N_FRAMES * 3 * OUT_HW * OUT_HW)
        ratios = [cache[k] / ours_b[k] for k in cache if k in ours_b]
        if ratios:
            bytes_ratio, bytes_ratio_mean = min(ratios), sum(ratios) / len(ratios)
            meta["bytes"] = {
                "prototype_cache_mib_per_clip": sum(cache.values()) / len(cache) / 2**20,
                "ours_output_kib_per_clip": sum(ours_b.values()) / len(ours_b) / 1024,
                "ratio_min": bytes_ratio,
                "ratio_mean": bytes_ratio_mean,
            }

    def g(name: str, key: str) -> float | None:
        for row in rows:
            if row["approach"] == name:
                return row.get(key)
        return None

    checks: list[tuple[str, float | None, str, bool | None]] = []

    def check(label: str, value: float | None, target: float, unit: str = "x") -> None:
        passed = None if value is None else value >= target
        checks.append((label, value, f">= {target:g}{unit}", passed))

    best_label = APPROACHES[best_third_name][0] if best_third_name else "n/a"
    check(
        f"ours exact vs fastest other decoder ({best_label})",
        g("ours-exact", "vs_fastest_other"),
        0.95,
    )
    check("ours exact vs prototype", g("ours-exact", "vs_prototype"), 2.0)
    check("ours fast vs fastest other decoder", g("ours-fast", "vs_fastest_other"), 1.15)
    check("multi-view read_views vs 30 separate decodes (views/s)", mv_ratio, 4.0)
    check("prototype cache bytes / our output bytes (worst clip)", bytes_ratio, 250.0)

    # ---------------------------------------------------------------- print
    m, c = meta["machine"], meta["corpus"]
    console_print(
        f"machine: {m['cpu']} | {m['usable_cores']} usable / {m['logical_cores']} logical cores | "
        f"{m['mem_gib']} GiB | Python {m['python']}"
    )
    console_print("versions: " + ", ".join(f"{k} {v if v else 'not installed'}" for k, v in meta["versions"].items()))
    console_print(
        f"corpus: {c['n_clips']} clips x {c['duration_s']}s ({c['summary']}); multi-view on "
        f"{c['mv_n_clips']} of them; task: {N_FRAMES} uniform frames at {OUT_HW}x{OUT_HW}; "
        f"best of {meta['rounds']} round(s); wall {meta['wall_s']:.0f}s"
    )

    def f(v: float | None, spec: str = ".1f") -> str:
        return "-" if v is None else format(v, spec)

    head = [
        "approach",
        "clips/s",
        "(median)",
        "vs fastest other",
        "vs prototype",
        "CPU ms/clip",
        "peak RSS MiB",
        "RSS after import",
        "notes",
    ]
    body = []
    for row in rows:
        if "error" in row:
            body.append([row["label"], "-", "-", "-", "-", "-", "-", "-", row["error"]])
            continue
        note = ""
        if "max_error_s" in row:
            note = f"ts error mean {row['mean_error_s'] * 1000:.1f} ms, max {row['max_error_s'] * 1000:.1f} ms"
        body.append(
            [
                row["label"],
                f(row["clips_per_s"], ".2f"),
                f(row["clips_per_s_median"], ".2f"),
                fmt_x(row["vs_fastest_other"]),
                fmt_x(row["vs_prototype"]),
                f(row["cpu_ms_per_clip"], ".0f"),
                f(row["peak_rss_mib"], ".0f"),
                f(row["rss_after_setup_mib"], ".0f"),
                note,
            ]
        )
    mv_head = [
        "multi-view 10x3",
        "views/s",
        "(median)",
        "videos/s",
        "vs separate",
        "CPU ms/video",
        "peak RSS MiB",
        "RSS after import",
        "notes",
    ]
    mv_body = []
    for row in mv_rows:
        if "error" in row:
            mv_body.append([row["label"], "-", "-", "-", "-", "-", "-", "-", row["error"]])
            continue
        note = ""
        if row["approach"] == "mv-ours" and mv_same is not None:
            note = "same pixels as separate" if mv_same else "PIXELS DIFFER from separate decodes"
        mv_body.append(
            [
                row["label"],
                f(row["views_per_s"], ".1f"),
                f(row["views_per_s_median"], ".1f"),
                f(row["clips_per_s"], ".2f"),
                fmt_x(row.get("vs_separate")),
                f(row["cpu_ms_per_clip"], ".0f"),
                f(row["peak_rss_mib"], ".0f"),
                f(row["rss_after_setup_mib"], ".0f"),
                note,
            ]
        )
    check_lines = []
    for label, value, target, passed in checks:
        status = "n/a " if passed is None else ("PASS" if passed else "MISS")
        val = "-" if value is None else f"{value:.2f}x"
        check_lines.append(f"  {status}  {label}: {val} (target {target})")

    if use_rich:
        from rich.table import Table

        for title, h, b in (
            ("16 uniform frames at 112x112, per clip", head, body),
            ("multi-view: 10 temporal clips x 3 spatial crops (128 -> 112)", mv_head, mv_body),
        ):
            if not b:
                continue
            t = Table(title=title, title_justify="left")
            for i, col in enumerate(h):
                t.add_column(
                    col,
                    justify="right" if 0 < i < len(h) - 1 else "left",
                    overflow="fold",
                    max_width=70 if i == len(h) - 1 else None,
                )
            for cells in b:
                t.add_row(*cells)
            console_print(t)
    else:
        for h, b in ((head, body), (mv_head, mv_body)):
            if not b:
                continue
            widths = [max(len(str(x)) for x in col) for col in zip(h, *b, strict=True)]
            for cells in [h, *b]:
                console_print("  ".join(str(x).ljust(w) for x, w in zip(cells, widths, strict=True)).rstrip())
            console_print("")
    if "bytes" in meta:
        bb = meta["bytes"]
        console_print(
            f"memory held per clip: prototype float32 cache {bb['prototype_cache_mib_per_clip']:.1f} MiB vs "
            f"our uint8 output {bb['ours_output_kib_per_clip']:.0f} KiB "
            f"(ratio worst clip {bb['ratio_min']:.0f}x, mean {bb['ratio_mean']:.0f}x)"
        )
    console_print(
        "settings: " + "; ".join(f"{label}: {desc}" for name, (label, _, desc) in APPROACHES.items() if name in results)
    )
    console_print("targets:")
    for line in check_lines:
        console_print(line)
    console_print(
        "peak RSS includes each approach's own imports (torch alone is most of it); "
        "'RSS after import' is the peak before the first decode."
    )
    return rows + mv_rows, checks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small corpus, short runs (< 1 min)")
    ap.add_argument("--out", type=Path, help="also write results.json and results.csv into this folder")
    ap.add_argument("--only", help="comma-separated approaches to run (default: all)")
    ap.add_argument("--rounds", type=int, help="max rounds of all workers (default 2, --quick 1)")
    ap.add_argument("--plain", action="store_true", help="plain text tables instead of Rich")
    # worker mode (internal)
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--clip", action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--min-time", type=float, default=2.5, help=argparse.SUPPRESS)
    ap.add_argument("--min-passes", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--max-time", type=float, default=20.0, help=argparse.SUPPRESS)
    ap.add_argument("--no-warmup", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)

    import _corpus

    t_start = time.perf_counter()
    use_rich = not args.plain
    if use_rich:
        try:
            from rich.console import Console

            console = Console(width=max(160, int(os.environ.get("COLUMNS", "0") or 0)))
            cprint: Callable[..., None] = console.print
        except ImportError:
            use_rich, cprint = False, print
    else:
        cprint = print

    specs = _corpus.QUICK_SPECS if args.quick else _corpus.DEFAULT_SPECS
    clips = _corpus.build(specs)
    # multi-view: the separate baseline decodes each video 30 times, so it runs on a few small clips
    mv_specs = [s for s in specs if s.width <= 640][: 1 if args.quick else 3]
    mv_clips = [p for s, p in zip(specs, clips, strict=True) if s in mv_specs]
    corpus_s = time.perf_counter() - t_start

    # a worker stops after min_time and min_passes, or after max_time (the prototype: one long pass)
    if args.quick:
        min_time, min_passes, max_time, rounds, budget = 1.2, 2, 3.0, args.rounds or 1, 45.0
    else:
        min_time, min_passes, max_time, rounds, budget = 2.5, 2, 8.0, args.rounds or 2, 130.0
    names = list(APPROACHES)
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
        unknown = set(names) - set(APPROACHES)
        if unknown:
            ap.error(f"unknown approach(es): {', '.join(sorted(unknown))}")

    results: dict[str, dict] = {}
    done_rounds = 0
    for rnd in range(rounds):
        t_round = time.perf_counter()
        for name in names:
            if rnd > 0 and not results.get(name, {}).get("ok"):
                continue  # unavailable stays unavailable
            is_mv = APPROACHES[name][1] == "views"
            sep = name == "mv-separate"
            r = run_worker(
                name,
                mv_clips if is_mv else clips,
                min_time=min_time,
                min_passes=1 if sep else min_passes,
                max_time=min_time if sep else max_time,
                timeout=240,
                warmup=not sep,
            )
            status = f"{r['n_clips'] / min(r['pass_s']):.2f} clips/s" if r.get("ok") else r.get("error")
            print(
                f"  round {rnd + 1} {name:18s} {status}  ({r.get('wall_s', 0):.1f}s)",
                file=sys.stderr,
                flush=True,
            )
            results[name] = merge(results.get(name), r)
        done_rounds += 1
        round_s = time.perf_counter() - t_round
        if time.perf_counter() - t_start + round_s > budget:
            break
    for r in results.values():
        summarize(r)

    summary: dict[str, int] = {}
    for s in specs:
        k = f"{s.codec} {s.width}x{s.height}"
        summary[k] = summary.get(k, 0) + 1
    meta: dict[str, Any] = {
        "machine": machine_info(),
        "versions": library_versions(),
        "corpus": {
            "n_clips": len(clips),
            "duration_s": _corpus.DURATION_S,
            "summary": ", ".join(f"{v}x {k}" for k, v in summary.items()),
            "clips": [p.name for p in clips],
            "mv_clips": [p.name for p in mv_clips],
            "mv_n_clips": len(mv_clips),
            "build_s": corpus_s,
        },
        "rounds": done_rounds,
        "quick": args.quick,
    }
    meta["wall_s"] = time.perf_counter() - t_start
    rows, checks = render(results, meta, cprint, use_rich)

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {
            "meta": meta,
            "rows": rows,
            "checks": [{"check": c[0], "value": c[1], "target": c[2], "passed": c[3]} for c in checks],
            "raw": results,
        }
        (args.out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
        cols = [
            "approach",
            "label",
            "clips_per_s",
            "clips_per_s_median",
            "views_per_s",
            "vs_fastest_other",
            "vs_prototype",
            "vs_separate",
            "cpu_ms_per_clip",
            "peak_rss_mib",
            "rss_after_setup_mib",
            "passes",
            "max_error_s",
            "mean_error_s",
            "settings",
            "error",
        ]
        with (args.out / "results.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        cprint(f"wrote {args.out / 'results.json'} and {args.out / 'results.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

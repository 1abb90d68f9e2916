"""Explore benchmark: `forwardlab video explore` on a 10,000-clip manifest whose metadata is known.

Run by `make bench` as `.venv/bin/python benchmarks/explore.py [--clips N] [--classes C] [--quick]`.

The manifest: N rows over C classes and two splits, with probe fields drawn from a seeded RNG shaped like
Kinetics (durations 0.5-12 s, 15-60 fps, 240p-2160p, a few percent variable-rate, missing and corrupt
rows with reasons). Every downloaded row points at a real file, a hard link to one of 24 small synthetic
H.264 clips, so the gallery's thumbnails decode real frames; metadata is read from the manifest, not
probed (the target is about a manifest "whose metadata is already known").

Measured side by side, each in its own fresh subprocess (imports included, torch among them):
  explore     `forwardlab.video.explore.explore`: everything the command does (statistics, plots, 48
              thumbnails, HTML, JSON, CSV), against the 30 s target
  statistics  the counting part alone, ours (`compute_stats` over the rows) against a prototype-like
              pandas notebook (a DataFrame, one boolean mask per class and split, `iterrows` for
              outliers); both must agree before the ratio is printed
  probing     rows lacking metadata (24 real clips): `Manifest.refresh` probing in 4 threads against one
Nothing asserts on time: the target prints PASS/MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULT_TAG, print_result

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".corpus" / "explore"
TARGET_S = 30.0
SEED = 0


# =============================================================================== building the data


def _real_clips() -> list[Path]:
    from forwardlab.video.data.synthetic import generate

    return [c.path for c in generate(CACHE / "clips", per_class=2, split="val", seed=SEED)]


def build_manifest(folder: Path, n_clips: int, n_classes: int) -> Path:
    """N rows with known metadata over C classes; downloaded rows hard-link a real clip."""
    import numpy as np

    from forwardlab.video.data.manifest import ClipRecord, Manifest

    rng = np.random.default_rng(SEED)
    clips = _real_clips()
    root = folder / "root"
    classes = [f"action_{i:03d}" for i in range(n_classes)]
    heights = np.array([240, 360, 480, 720, 1080, 2160])
    records = []
    for i in range(n_clips):
        label = classes[i % n_classes]
        split = "train" if i % 5 else "val"
        path = f"{split}/{label}/clip_{i:05d}.mp4"
        roll = rng.random()
        if roll < 0.03:
            records.append(ClipRecord(path, label, split, "bench", status="missing", reason="youtube private: gone"))
            continue
        height = int(rng.choice(heights, p=[0.2, 0.35, 0.2, 0.2, 0.04, 0.01]))
        width = int(round(height * float(rng.choice([4 / 3, 16 / 9])) / 2) * 2)
        fps = float(rng.choice([15.0, 24.0, 25.0, 29.97, 30.0, 60.0]))
        duration = float(np.clip(rng.normal(9.0, 2.5), 0.5, 12.0))
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(clips[i % len(clips)], target)
        if roll < 0.04:
            records.append(
                ClipRecord(path, label, split, "bench", status="corrupt", reason="cannot decode video (Invalid data)")
            )
            continue
        records.append(
            ClipRecord(
                path,
                label,
                split,
                "bench",
                status="downloaded",
                youtube_id=f"id{i:09d}",
                is_cc=int(rng.random() < 0.1),
                duration_s=duration,
                fps=fps,
                n_frames=int(duration * fps),
                width=width,
                height=height,
                codec="h264" if rng.random() < 0.9 else "vp9",
                has_audio=bool(rng.random() < 0.8),
                variable_frame_rate=bool(rng.random() < 0.03),
                size_bytes=int(duration * height * 900),
            )
        )
    manifest = Manifest.create(folder / "manifest.sqlite", root)
    manifest.upsert(records)
    return manifest.path


def build_unprobed(folder: Path) -> Path:
    from forwardlab.video.data.manifest import ClipRecord, Manifest

    clips = _real_clips()
    manifest = Manifest.create(folder / "manifest.sqlite", clips[0].parents[2])
    root = manifest.root
    manifest.upsert(ClipRecord(str(c.relative_to(root)), c.parent.name, "val", "bench") for c in clips)
    return manifest.path


# =============================================================================== measured side


def _naive_statistics(manifest_path: str) -> dict[str, Any]:
    """The prototype's notebook way: a DataFrame, one mask per class and split, a Python loop per row."""
    from forwardlab.video.data.manifest import Manifest

    df = Manifest(manifest_path).to_frame()
    per_class = {}
    for label in sorted(df["label"].unique()):
        per_class[label] = {s: int(((df["label"] == label) & (df["split"] == s)).sum()) for s in df["split"].unique()}
        per_class[label] = {s: n for s, n in sorted(per_class[label].items()) if n}
    outliers = set()
    for _, row in df.iterrows():
        if row["status"] != "downloaded" or row["duration_s"] != row["duration_s"]:
            continue
        if row["duration_s"] < 2.0:
            outliers.add((row["path"], "too_short"))
        if row["n_frames"] < 16:
            outliers.add((row["path"], "too_few_frames"))
        if min(row["width"], row["height"]) > 1080:
            outliers.add((row["path"], "huge_resolution"))
        if row["variable_frame_rate"]:
            outliers.add((row["path"], "variable_frame_rate"))
        if not 10 <= row["fps"] <= 60:
            outliers.add((row["path"], "unusual_fps"))
    return {"classes": per_class, "outliers": sorted(outliers)}


def _ours_statistics(manifest_path: str) -> dict[str, Any]:
    from forwardlab.video.data.manifest import Manifest
    from forwardlab.video.explore import compute_stats

    manifest = Manifest(manifest_path)
    stats = compute_stats(manifest, manifest.records())
    return {"classes": stats.classes, "outliers": sorted((o.path, o.kind) for o in stats.outliers)}


def measure(kind: str, manifest_path: str, out: str) -> dict[str, Any]:
    started = time.perf_counter()
    if kind == "explore":
        from forwardlab.video.explore import explore

        result = explore(manifest_path, out, workers=2)
        return {"seconds": time.perf_counter() - started, "clips": result.stats.n_clips, "gallery": result.gallery,
                "outliers": len(result.stats.outliers), "html_kb": result.html.stat().st_size // 1024}  # fmt: skip
    if kind in ("ours-stats", "naive-stats"):
        import pandas  # noqa: F401  (imports are not what is compared)

        import forwardlab.video.explore  # noqa: F401

        fn = _ours_statistics if kind == "ours-stats" else _naive_statistics
        started = time.perf_counter()
        figures = fn(manifest_path)
        seconds = time.perf_counter() - started
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{kind}.json").write_text(json.dumps(figures))
        return {"seconds": seconds}
    if kind.startswith("probe-"):
        from forwardlab.video.data.manifest import Manifest

        tally = Manifest(manifest_path).refresh(workers=int(kind.split("-")[1]), only_unprobed=True)
        return {"seconds": time.perf_counter() - started, "probed": sum(tally.values())}
    raise ValueError(kind)


# =============================================================================== driver side


def _run(kind: str, manifest: Path, out: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(manifest), str(out)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith(RESULT_TAG))
    return {**json.loads(line[len(RESULT_TAG) :]), "process_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="1,000 clips")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, manifest, out = args.measure
        print_result(measure(kind, manifest, out))
        return
    n = 1_000 if args.quick else args.clips
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=CACHE) as tmp:  # beside the clips: hard links work
        work = Path(tmp)
        t = time.perf_counter()
        manifest = build_manifest(work / "data", n, args.classes)
        unprobed = build_unprobed(work / "unprobed")
        print(f"built a {n}-clip manifest ({args.classes} classes) in {time.perf_counter() - t:.1f} s")

        explore = _run("explore", manifest, work / "out")
        ours = _run("ours-stats", manifest, work / "stats")
        naive = _run("naive-stats", manifest, work / "stats")
        same = json.loads((work / "stats" / "ours-stats.json").read_text()) == json.loads(
            (work / "stats" / "naive-stats.json").read_text()
        )
        serial = _run("probe-1", unprobed, work / "p")
        unprobed_again = build_unprobed(work / "unprobed2")
        threaded = _run("probe-4", unprobed_again, work / "p")

    verdict = "PASS" if explore["process_s"] < TARGET_S else "MISS"
    print(f"\nexplore, {explore['clips']} clips with known metadata, {explore['gallery']} thumbnails:")
    print(f"  explore() {explore['seconds']:6.2f} s; whole process incl. imports {explore['process_s']:6.2f} s")
    print(f"  target < {TARGET_S:.0f} s: {verdict}; html {explore['html_kb']} KiB, {explore['outliers']} outliers")
    print("\nstatistics over the rows (same figures: " + ("yes" if same else "NO, the ratio is meaningless") + "):")
    print(f"  ours (compute_stats)           {ours['seconds']:7.3f} s")
    ratio = naive["seconds"] / ours["seconds"]
    print(f"  prototype-like pandas loop     {naive['seconds']:7.3f} s   ours is {ratio:.1f}x faster")
    print(f"\nprobing {threaded['probed']} clips lacking metadata (Manifest.refresh, only_unprobed):")
    print(f"  1 thread  {serial['seconds']:6.2f} s")
    print(f"  4 threads {threaded['seconds']:6.2f} s   {serial['seconds'] / threaded['seconds']:.2f}x")


if __name__ == "__main__":
    main()

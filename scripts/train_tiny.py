"""Regenerate the tiny models' shipped weights: the recorded, seeded command behind them.

Exact invocation (from the repository root, about 10-15 minutes on a 2-core CPU)::

    .venv/bin/python scripts/train_tiny.py

It generates the synthetic set (train: 64 clips per class, val: 32 per class, seed 0) under
`build/tiny-data/`, trains `tiny_2d` and `tiny_r2plus1d` with `forwardlab.video.training.run.train` (seed 0,
settings in `SETTINGS`) into `build/tiny-runs/<model>/`, evaluates each on the val split with
`forwardlab.video.evaluate.evaluate`, copies the state dicts to
`src/forwardlab/video/models/weights/<model>_synthetic.pt` and writes the figures they reach to
`src/forwardlab/video/models/weights/recorded_accuracy.json` (what the registry reports and the tests
check, with every val clip's prediction), then prints them. `--models tiny_3d` trains the 3D net the
same way (not shipped).

Reruns are resumable (data and runs are kept under build/); `--fresh` starts the runs over.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = REPO / "src" / "forwardlab" / "video" / "models" / "weights"
DATA_SEED = 0
TRAIN_PER_CLASS = 64
VAL_PER_CLASS = 32
# Per model: epochs, batch, peak learning rate, warm-up epochs. Seed 0 for everything.
SETTINGS: dict[str, dict[str, float]] = {
    "tiny_2d": {"epochs": 30, "batch": 8, "lr": 4e-3, "warmup_epochs": 1.0},
    "tiny_3d": {"epochs": 30, "batch": 8, "lr": 4e-3, "warmup_epochs": 1.0},
    "tiny_r2plus1d": {"epochs": 30, "batch": 8, "lr": 4e-3, "warmup_epochs": 1.0},
}
SEED = 0
MAX_WEIGHTS_BYTES = 5 * 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny_2d", "tiny_r2plus1d"], choices=sorted(SETTINGS))
    parser.add_argument("--data", type=Path, default=REPO / "build" / "tiny-data")
    parser.add_argument("--runs", type=Path, default=REPO / "build" / "tiny-runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="discard earlier runs under --runs")
    args = parser.parse_args(argv)

    import forwardlab.video.models.tiny as tiny
    from forwardlab.progress import progress_bar
    from forwardlab.video.data.folder import import_folder
    from forwardlab.video.data.synthetic import generate
    from forwardlab.video.data.synthetic_classes import CLASSES
    from forwardlab.video.demo import model_figures
    from forwardlab.video.evaluate import evaluate
    from forwardlab.video.models.registry import register
    from forwardlab.video.training.run import train

    started = time.perf_counter()
    for split, per_class in (("train", TRAIN_PER_CLASS), ("val", VAL_PER_CLASS)):
        with progress_bar(f"generating {split}", per_class * len(CLASSES)) as advance:
            generate(args.data, per_class=per_class, split=split, seed=DATA_SEED, progress=advance)
    manifest = import_folder(args.data, workers=args.workers)

    recorded: dict[str, dict[str, object]] = {}
    if tiny.RECORDED_ACCURACY_PATH.is_file():
        recorded = json.loads(tiny.RECORDED_ACCURACY_PATH.read_text())["models"]
    for name in args.models:
        out = args.runs / name
        if args.fresh:
            shutil.rmtree(out, ignore_errors=True)
        settings = SETTINGS[name]
        if not (out / "model_card.json").is_file():
            with progress_bar(f"training {name}", 0) as advance:
                train(
                    manifest,
                    name,
                    out=out,
                    epochs=int(settings["epochs"]),
                    batch=int(settings["batch"]),
                    lr=settings["lr"],
                    warmup_epochs=settings["warmup_epochs"],
                    seed=SEED,
                    classes=CLASSES,  # the registry's class order, so the head ships as trained
                    workers=args.workers,
                    cache_dir=args.runs / "frame-cache",  # decoded once, shared by the models
                    progress=advance,
                    on_epoch=lambda row: print({k: round(v, 4) for k, v in row.items()}, flush=True),
                )
        state = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
        if name in tiny.SHIPPED:
            target = WEIGHTS_DIR / tiny.SHIPPED[name]
            WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
            torch.save(state, target)
            size = target.stat().st_size
            if size > MAX_WEIGHTS_BYTES:
                print(f"error: {target} is {size} bytes, over the 5 MB budget", file=sys.stderr)
                return 1
        # evaluate exactly as users and the demo do: the registry entry with these weights
        register(tiny.ENTRIES[name])
        eval_out = args.runs / f"{name}-eval"
        shutil.rmtree(eval_out, ignore_errors=True)
        with progress_bar(f"evaluating {name}", 0) as advance:
            summary = evaluate(
                manifest,
                name,
                out=eval_out,
                split="val",
                weights=out / "model.pt",
                workers=args.workers,
                progress=advance,
            )
        import pandas as pd

        rows = pd.read_parquet(summary.files["results"]).to_dict("records")
        figures = model_figures(rows, CLASSES)
        card = json.loads((out / "model_card.json").read_text())
        recorded[name] = {
            "top1": figures["top1"],
            "top5": figures["top5"],
            "mean_class_accuracy": figures["mean_class_accuracy"],
            "single_frame_top1": figures["single_frame_top1"],
            "time_reversed_top1": figures["time_reversed_top1"],
            "pair_top1": figures["pair_top1"],
            "per_class_top1": figures["per_class_top1"],
            "val_clips": figures["clips"],
            "train_seconds": round(sum(row["seconds"] for row in card["history"]), 1),  # the epochs' time
            "training": card["training"],
            # every val clip's top-1, so a regenerated subset of this split can be checked clip by clip
            "predictions": {r["path"]: r["prediction"] for r in sorted(rows, key=lambda r: r["path"])},
        }
        print(
            f"{name}: top-1 {100 * figures['top1']:.1f}%  top-5 {100 * figures['top5']:.1f}%  "
            f"single-frame classes {100 * figures['single_frame_top1']:.1f}%  "
            f"time-reversed pairs {100 * figures['time_reversed_top1']:.1f}%  "
            f"(trained in {sum(row['seconds'] for row in card['history']):.0f}s)"
        )
    document = {
        "command": "python scripts/train_tiny.py",
        "data": {
            "generator": "forwardlab.video.data.synthetic.generate",
            "seed": DATA_SEED,
            "train_per_class": TRAIN_PER_CLASS,
            "val_per_class": VAL_PER_CLASS,
        },
        "evaluation": "forwardlab.video.evaluate.evaluate on the val split, the recipe's single view",
        "models": {k: recorded[k] for k in sorted(recorded) if k in tiny.SHIPPED},
    }
    (WEIGHTS_DIR / "recorded_accuracy.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"done in {time.perf_counter() - started:.0f}s; weights and figures in {WEIGHTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

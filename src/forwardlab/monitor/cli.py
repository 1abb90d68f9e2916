"""`forwardlab monitor ...`: the monitoring half's commands."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="Continuous model monitoring of the King County house-price model.",
    no_args_is_help=True,
)
err = Console(stderr=True)

DEFAULT_DATA_DIR = Path("data/monitor")
DEFAULT_MODEL_DIR = Path("models/price")


@app.callback()
def monitor() -> None:
    """Continuous model monitoring: prepare data, train, serve, detect drift, simulate, dashboard."""


@app.command()
def prepare(
    data: Annotated[
        Path | None,
        typer.Option(help="Raw kc_house_data.csv; default: download it into $FORWARDLAB_HOME (sha256-checked)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for train.csv, prod.csv and summary.json.")] = DEFAULT_DATA_DIR,
    seed: Annotated[int, typer.Option(help="Seed of the simulated listing dates (42: the prototype's).")] = 42,
) -> None:
    """Clean and split the sales: training (sold to 2014-10-31), production (after, to the last full month).

    Prints the summary (counts kept and dropped, date ranges) as JSON.

    Example: forwardlab monitor prepare --data ../shared/data/kc_house_data.csv --out data/monitor
    """
    from forwardlab.monitor.data import prepare_files
    from forwardlab.progress import progress_bar

    if data is None:
        with progress_bar("kc_house_data.csv", 0) as advance:
            summary = prepare_files(None, out, seed=seed, progress=advance)
    else:
        summary = prepare_files(data, out, seed=seed)
    typer.echo(json.dumps(asdict(summary), indent=2))
    err.print(f"{summary.rows_train} training and {summary.rows_prod} production rows in [bold]{out}[/]")


@app.command()
def train(
    data_dir: Annotated[Path, typer.Option(help="Folder written by `prepare` (reads train.csv).")] = DEFAULT_DATA_DIR,
    out: Annotated[Path, typer.Option(help="Model folder: writes OUT/VERSION/ and OUT/LATEST.")] = DEFAULT_MODEL_DIR,
    n_jobs: Annotated[int, typer.Option(help="Parallel CV fits (-1: all cores).")] = 1,
) -> None:
    """Train the price model (Ridge on log10 price; alpha by 5-fold CV on MAE) and save it versioned.

    Prints the metadata (version, best alpha, CV MAE, training window, data hash) as JSON.

    Example: forwardlab monitor train --data-dir data/monitor --out models/price
    """
    from forwardlab.monitor.data import read_split
    from forwardlab.monitor.model import save_model
    from forwardlab.monitor.model import train as train_model

    frame = read_split(data_dir, "train")
    with err.status(f"grid search over {len(frame)} rows (9 alphas x 5 folds)"):
        model = train_model(frame, n_jobs=n_jobs)
    folder = save_model(model, out)
    typer.echo(json.dumps(asdict(model.metadata), indent=2))
    err.print(f"model {model.version}: CV MAE {model.metadata.cv_mae_usd:,.0f} USD -> [bold]{folder}[/]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port; the URL is printed).")] = 8000,
    model: Annotated[
        Path, typer.Option(help="Model folder (a version, or a root with LATEST).", envvar="FORWARDLAB_MODEL")
    ] = DEFAULT_MODEL_DIR,
    store: Annotated[
        str,
        typer.Option(
            help="Metrics store URL: sqlite:///PATH or postgresql+psycopg://USER:PASS@HOST/DB.",
            envvar="FORWARDLAB_STORE_URL",
        ),
    ] = "sqlite:///forwardlab-monitor.db",
    api_keys_file: Annotated[
        Path | None,
        typer.Option(
            help="File of API keys, one a line. Default: $FORWARDLAB_API_KEYS (comma-separated).",
            envvar="FORWARDLAB_API_KEYS_FILE",
        ),
    ] = None,
    record: Annotated[bool, typer.Option(help="Store predictions (--no-record: only for comparisons).")] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the price model over HTTP; every prediction is stored before it is answered.

    Routes: POST /v1/predict, POST /v1/ground-truth, GET /v1/predictions (header X-API-Key required),
    GET /healthz, GET /metrics, GET /openapi.json. Prints `serving on URL` when ready.

    Example: FORWARDLAB_API_KEYS=secret forwardlab monitor serve --model models/price --store sqlite:///monitor.db
    """
    from forwardlab.monitor.server import serve_forever
    from forwardlab.monitor.service import app_from_paths

    service = app_from_paths(model, store, api_keys_file=api_keys_file, record=record)

    def ready(url: str) -> None:
        typer.echo(f"serving on {url}")

    serve_forever(service, host=host, port=port, log_level=log_level, on_ready=ready)

"""`forwardlab monitor ...`: the monitoring half's commands."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from forwardlab.progress import Advance

if TYPE_CHECKING:
    from forwardlab.monitor.detection import Detection
    from forwardlab.monitor.drift.calculator import DriftResult
    from forwardlab.monitor.drift.config import DriftConfig
    from forwardlab.monitor.drift.multivariate import DomainClassifierResult, ReconstructionResult
    from forwardlab.monitor.estimation import EstimatedPerformance
    from forwardlab.monitor.simulation import MonthResult, SimulationResult
    from forwardlab.monitor.windows import MonitoringRun

app = typer.Typer(
    help="Continuous model monitoring of the King County house-price model.",
    no_args_is_help=True,
)
err = Console(stderr=True)
out = Console(highlight=False)

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

    Prints the metadata (version, best alpha, CV MAE, training window, data hash) as JSON. Also writes
    OUT/VERSION/estimation_reference.parquet: the training rows scored out of fold, what `monitor run
    --estimation-reference` learns the label-free MAE estimate from.

    Example: forwardlab monitor train --data-dir data/monitor --out models/price
    """
    from forwardlab.monitor.data import read_split
    from forwardlab.monitor.house import save_estimation_reference
    from forwardlab.monitor.model import save_model
    from forwardlab.monitor.model import train as train_model

    frame = read_split(data_dir, "train")
    with err.status(f"grid search over {len(frame)} rows (9 alphas x 5 folds)"):
        model = train_model(frame, n_jobs=n_jobs)
    folder = save_model(model, out)
    with err.status("scoring the training rows out of fold for the label-free MAE estimate"):
        save_estimation_reference(model, frame, folder)
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
    dashboard_reports: Annotated[
        Path | None,
        typer.Option(help="Also serve the dashboard at /dashboard, linking the reports in this folder (run's --out)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the price model over HTTP; every prediction is stored before it is answered.

    Routes: POST /v1/predict, POST /v1/ground-truth, GET /v1/predictions (header X-API-Key required),
    GET /healthz, GET /metrics, GET /openapi.json; with --dashboard-reports, /dashboard/ (sign in with a key).
    Prints `serving on URL` when ready.

    Example: FORWARDLAB_API_KEYS=secret forwardlab monitor serve --model models/price --store sqlite:///monitor.db
    """
    from forwardlab.monitor.server import serve_forever
    from forwardlab.monitor.service import app_from_paths

    service = app_from_paths(
        model, store, api_keys_file=api_keys_file, record=record, dashboard_reports=dashboard_reports
    )

    def ready(url: str) -> None:
        typer.echo(f"serving on {url}")

    serve_forever(service, host=host, port=port, log_level=log_level, on_ready=ready)


DEFAULT_STORE = "sqlite:///forwardlab-monitor.db"
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


class ReferenceSampleChoice(StrEnum):
    all = "all"
    match = "match"


TestOption = Annotated[
    list[str] | None,
    typer.Option(
        "--test",
        help="COLUMN=TEST: the test for one column (ks, chisquare, z, wasserstein, jensenshannon, psi). Repeatable.",
    ),
]
ThresholdOption = Annotated[
    list[str] | None, typer.Option("--threshold", help="COLUMN=VALUE: the drift threshold for one column. Repeatable.")
]
DriftShareOption = Annotated[
    float, typer.Option(help="Dataset drift when at least this share of the tested columns drifted.")
]
MinRowsOption = Annotated[int, typer.Option(help="Fewer non-missing values than this on a side: not tested.")]


@app.command()
def drift(
    reference: Annotated[Path, typer.Argument(help="Reference table, CSV or Parquet (e.g. the training data).")],
    current: Annotated[Path, typer.Argument(help="Current table with the same columns.")],
    numerical: Annotated[str, typer.Option(help="Numerical columns, comma-separated.")] = "",
    categorical: Annotated[str, typer.Option(help="Categorical columns, comma-separated.")] = "",
    test: TestOption = None,
    threshold: ThresholdOption = None,
    drift_share: DriftShareOption = 0.5,
    min_rows: MinRowsOption = 30,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of a table.")] = False,
    html: Annotated[
        Path | None, typer.Option(help="Also write Evidently's data drift report of the same two tables here.")
    ] = None,
) -> None:
    """Compare two tables column by column with the test Evidently would choose (or the one you name).

    Per column: test, score, threshold, drift; then the share of drifted columns and the dataset verdict.

    Example: forwardlab monitor drift data/monitor/train.csv data/monitor/prod.csv --numerical sqft_living
    --categorical zipcode,view --json
    """
    from forwardlab.monitor.drift.calculator import compare
    from forwardlab.monitor.results import finite
    from forwardlab.monitor.windows import read_frame

    config = _drift_config(
        numerical, categorical, _pairs(test, "--test"), _pairs(threshold, "--threshold"), drift_share, min_rows
    )
    ref_frame, cur_frame = read_frame(reference), read_frame(current)
    result = compare(ref_frame, cur_frame, config)
    if json_out:
        typer.echo(json.dumps(finite(result.to_dict()), indent=2))
    else:
        _print_drift(result)
    if html is not None:
        from forwardlab.monitor.reports import data_drift_html

        tested = [c.column for c in result.columns if c.drift is not None]
        if tested:
            with err.status("rendering the Evidently report"):
                data_drift_html(ref_frame, cur_frame, config.restricted_to(tested), html)
            err.print(f"report -> [bold]{html}[/]")
        else:
            err.print("no column could be tested; no report written")


@app.command("run")
def run_command(
    store: Annotated[
        str, typer.Option(help="Metrics store URL (as for `serve`).", envvar="FORWARDLAB_STORE_URL")
    ] = DEFAULT_STORE,
    window: Annotated[str, typer.Option(help="month, week or N-days (e.g. 14-days); UTC.")] = "month",
    reference: Annotated[
        Path | None,
        typer.Option(help="Reference file (CSV/Parquet): scored training rows with prediction_usd and label_usd."),
    ] = None,
    reference_end: Annotated[
        datetime | None,
        typer.Option(
            formats=DATE_FORMATS,
            help="Or: the reference is the store's predictions labelled before this date (the training cut-off).",
        ),
    ] = None,
    reference_start: Annotated[
        datetime | None, typer.Option(formats=DATE_FORMATS, help="With --reference-end: labelled from this date.")
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, help="First window from here (default: --reference-end or first label)."),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, help="Windows up to here (default: through the window of the last label)."),
    ] = None,
    reference_sample: Annotated[
        ReferenceSampleChoice,
        typer.Option(help="all: the whole reference; match: a seeded sample as large as each window (prototype)."),
    ] = ReferenceSampleChoice.all,
    numerical: Annotated[
        str | None, typer.Option(help="Numerical features, comma-separated (default: the price model's three).")
    ] = None,
    categorical: Annotated[
        str | None, typer.Option(help="Categorical features, comma-separated (default: the price model's six).")
    ] = None,
    test: TestOption = None,
    threshold: ThresholdOption = None,
    drift_share: DriftShareOption = 0.5,
    min_rows: MinRowsOption = 30,
    out: Annotated[Path, typer.Option(help="Folder for monitoring.json and reports/START_END/*.html.")] = Path(
        "monitoring"
    ),
    reports: Annotated[bool, typer.Option(help="Render the three Evidently reports per window.")] = True,
    workers: Annotated[int, typer.Option(min=1, help="Processes rendering reports.")] = 2,
    alerts: Annotated[
        Path | None, typer.Option(help="Alert rules file (TOML, see the README).", envvar="FORWARDLAB_ALERTS")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="POST alerts here (overrides the rules file's).", envvar="FORWARDLAB_WEBHOOK_URL")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the reference samples (--reference-sample match).")] = 42,
    estimation_reference: Annotated[
        Path | None,
        typer.Option(
            help="Training rows scored out of fold (`monitor train` writes MODEL/VERSION/estimation_reference"
            ".parquet): what the label-free MAE estimate learns from. Default: the reference (a little optimistic)."
        ),
    ] = None,
    min_coverage: Annotated[
        float,
        typer.Option(
            min=0.01, max=1.0, help="Share of a window's predictions labelled before its realized MAE is final."
        ),
    ] = 0.8,
    json_out: Annotated[bool, typer.Option("--json", help="Print monitoring.json's content on stdout.")] = False,
) -> None:
    """Per window, compare production (predictions whose ground truth arrived in it) with the reference.

    Each window also looks at the predictions MADE in it, labelled or not: label coverage (the realized MAE is
    provisional under --min-coverage), the realized MAE of those labelled so far, the MAE estimated without
    labels (with a 95% band and an alert above the reference's range), multivariate drift (PCA reconstruction
    error, domain-classifier AUC) and the segments (zip code, predicted-price band, model version) whose
    error grew most.

    Writes OUT/monitoring.json (one record per window: counts, per-feature test/score/threshold/drift, drift
    share, dataset/target/prediction drift, regression metrics in USD), OUT/reports/START_END/ (Evidently's data
    drift, target drift and regression performance reports) and the same time series into the store.

    Example: forwardlab monitor run --store sqlite:///monitor.db --window month --reference-end 2014-11-01
    --out monitoring
    """
    from forwardlab.monitor.alerts import load_alert_config, parse_alert_config
    from forwardlab.monitor.features import HOUSE
    from forwardlab.monitor.house import house_columns
    from forwardlab.monitor.production import ProductionCalculator
    from forwardlab.monitor.store import LABEL_COLUMN, PREDICTION_COLUMN, Store
    from forwardlab.monitor.windows import ReferenceSource, read_frame, run_monitoring

    tests, thresholds = _pairs(test, "--test"), _pairs(threshold, "--threshold")
    targets = (LABEL_COLUMN, PREDICTION_COLUMN)
    target_tests = {c: tests.pop(c) for c in list(tests) if c in targets}
    target_thresholds = {c: thresholds.pop(c) for c in list(thresholds) if c in targets}
    numerical = ",".join(HOUSE.numerical) if numerical is None else numerical
    categorical = ",".join(HOUSE.categorical) if categorical is None else categorical
    config = _drift_config(numerical, categorical, tests, thresholds, drift_share, min_rows)
    columns = house_columns(config, target_overrides=_overrides(target_tests, target_thresholds))
    rules = load_alert_config(alerts) if alerts else None
    if webhook_url:
        raw = rules.model_dump() if rules else {}
        raw["webhook"] = (raw.get("webhook") or {}) | {"url": webhook_url}
        rules = parse_alert_config(raw, source="--webhook-url")
    source = ReferenceSource(path=reference, start=reference_start, end=reference_end)
    production = ProductionCalculator(
        columns,
        min_coverage=min_coverage,
        estimation_reference=read_frame(estimation_reference, string_columns=columns.strings)
        if estimation_reference
        else None,
    )
    with Store(store) as opened, _progress_when_needed("Evidently reports") as advance:
        run = run_monitoring(
            opened,
            window=window,
            reference=source,
            columns=columns,
            start=start,
            end=end,
            reference_sample=reference_sample.value,
            seed=seed,
            out_dir=out,
            reports=reports,
            workers=workers,
            alerts=rules,
            progress=advance,
            production=production,
        )
    if json_out:
        typer.echo(json.dumps(run.to_json(), indent=2))
    else:
        _print_run(run)
    for delivery in run.deliveries:
        if not delivery.delivered:
            err.print(f"[yellow]alert not delivered:[/] {delivery.error}", highlight=False)
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in run.timings_s.items())
    err.print(f"{len(run.windows)} windows ({timings}) -> [bold]{run.json_path}[/]")


@app.command()
def dashboard(
    store: Annotated[
        str, typer.Option(help="Metrics store URL (as for `run`).", envvar="FORWARDLAB_STORE_URL")
    ] = DEFAULT_STORE,
    reports: Annotated[
        Path, typer.Option(help="Folder of monitoring.json and reports/ (the --out of `run`); its files are linked.")
    ] = Path("monitoring"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port; the URL is printed).")] = 8001,
    api_keys_file: Annotated[
        Path | None,
        typer.Option(
            help="File of API keys, one a line (the service's). Default: $FORWARDLAB_API_KEYS (comma-separated).",
            envvar="FORWARDLAB_API_KEYS_FILE",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the monitoring dashboard: windows, error and drift charts, a feature x window drift heat map,
    alerts, and each window's Evidently reports. It reads the store live, so new windows appear as `run`
    (or the simulation) stores them. Sign in with one of the service's API keys; scripts may send the
    X-API-Key header (GET /dashboard/api/summary is the page's data as JSON). Prints `dashboard on URL`.

    Example: FORWARDLAB_API_KEYS=secret forwardlab monitor dashboard --store sqlite:///monitor.db --reports monitoring
    """
    from forwardlab.monitor.dashboard import DASHBOARD_PATH, app_from_paths
    from forwardlab.monitor.server import serve_forever

    board = app_from_paths(store, reports, api_keys_file=api_keys_file)

    def ready(url: str) -> None:
        typer.echo(f"dashboard on {url}{DASHBOARD_PATH}/")

    serve_forever(board, host=host, port=port, log_level=log_level, on_ready=ready)


@app.command("simulate")
def simulate_command(
    data: Annotated[
        str | None,
        typer.Option(
            help="Raw kc_house_data.csv, or a built-in scenario (synthetic: covariate-shift-sudden; list them "
            "with `forwardlab monitor scenarios --list`). Default: the King County file, downloaded once."
        ),
    ] = None,
    sample: Annotated[
        float, typer.Option(help="Share of each split replayed, seeded (0.05: the prototype's dev mode).")
    ] = 0.8,
    out: Annotated[Path, typer.Option(help="Folder for the store, monitoring.json, reports/, data/, model/.")] = Path(
        "simulation"
    ),
    store: Annotated[str | None, typer.Option(help="Metrics store URL (default: sqlite:///OUT/store.db).")] = None,
    months: Annotated[
        int | None, typer.Option(min=0, help="Replay only the first N months (rerun with more, or without, to go on).")
    ] = None,
    reports: Annotated[bool, typer.Option(help="Render the three Evidently reports per month.")] = True,
    alerts: Annotated[
        Path | None,
        typer.Option(help="Alert rules file (TOML). Default: data-drift, target-drift and mae-up (README)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Houses per predict request (1: one house a request, as the prototype).")
    ] = 32,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the samples and of the simulated listing dates.")] = 42,
    fresh: Annotated[bool, typer.Option(help="Discard a replay already in OUT and start over.")] = False,
    api_keys_file: Annotated[
        Path | None,
        typer.Option(
            help="Keys that may sign in to the dashboard the replay serves while it runs, one a line. "
            "Default: $FORWARDLAB_API_KEYS (comma-separated); without keys it is not shown.",
            envvar="FORWARDLAB_API_KEYS_FILE",
        ),
    ] = None,
) -> None:
    """Replay production month by month through the real service, monitoring each month as it ends.

    Prepares the data, trains the model, serves it on 127.0.0.1, scores the training sample (the reference),
    then per month scores the newly listed houses over HTTP, posts the prices of the houses sold, and runs the
    monitor for the month. Prints a row per month (listed, sold, MAE, drifted features, alerts). Stopped or
    killed, the same command goes on from the first unfinished month.

    Example: forwardlab monitor simulate --data ../shared/data/kc_house_data.csv --sample 0.8 --out sim
    """
    from forwardlab.monitor.alerts import load_alert_config
    from forwardlab.monitor.auth import load_api_keys
    from forwardlab.monitor.simulation import simulate
    from forwardlab.progress import progress_bar

    rules = load_alert_config(alerts) if alerts else None
    keys = load_api_keys(None, api_keys_file)
    out_console = Console(highlight=False)

    def show(month: MonthResult) -> None:
        out_console.print(_month_line(month))

    def announce(url: str) -> None:
        out_console.print(f"dashboard, live while the replay runs: {url}")

    with progress_bar("months", 0) as advance:
        result = simulate(
            data,
            out_dir=out,
            sample=sample,
            seed=seed,
            store_url=store,
            alerts=rules,
            reports=reports,
            batch_size=batch_size,
            concurrency=concurrency,
            max_months=months,
            fresh=fresh,
            api_keys=sorted(keys),
            on_serving=announce if keys else None,
            on_month=show,
            progress=advance,
        )
    _print_simulation(result)


@app.command("scenarios")
def scenarios_command(
    out: Annotated[Path, typer.Option(help="Folder: one replay per scenario, detection.csv, detection.md.")] = Path(
        "scenarios"
    ),
    only: Annotated[str | None, typer.Option(help="Scenarios to run, comma-separated (default: all).")] = None,
    sample: Annotated[float, typer.Option(help="Share of each scenario's sales replayed.")] = 0.8,
    reports: Annotated[bool, typer.Option(help="Also render the Evidently reports (slower, same verdicts).")] = False,
    list_only: Annotated[bool, typer.Option("--list", help="List the scenarios and exit.")] = False,
) -> None:
    """Replay each built-in drift scenario and measure detection delay and false alarms before the onset.

    Prints the table (also written as OUT/detection.md and OUT/detection.csv). Rerunning resumes the replays.

    Example: forwardlab monitor scenarios --out scenarios
    """
    from forwardlab.monitor.scenarios import DEFAULT_SCENARIO, SCENARIOS

    if list_only:
        for scenario in SCENARIOS.values():
            default = " (default: --data synthetic)" if scenario.name == DEFAULT_SCENARIO else ""
            out_console = Console(highlight=False)
            out_console.print(f"[bold]{scenario.name}[/]{default}: {scenario.description}; expect {scenario.expected}")
        return
    from forwardlab.monitor.detection import run_scenarios

    def done(detection: Detection, result: SimulationResult) -> None:
        err.print(f"{detection.scenario}: {len(result.months)} months replayed in [bold]{result.out_dir}[/]")

    names = _names(only) if only else None
    with err.status("replaying the scenarios"):
        detections = run_scenarios(out, names=names, sample=sample, reports=reports, on_scenario=done)
    _print_detections(detections)
    err.print(f"table -> [bold]{out / 'detection.md'}[/] and [bold]{out / 'detection.csv'}[/]")


@contextlib.contextmanager
def _progress_when_needed(description: str) -> Iterator[Advance]:
    """A progress bar that appears on the first report, so runs without reports (or failing early) show none."""
    from forwardlab.progress import progress_bar

    with contextlib.ExitStack() as stack:
        bars: list[Advance] = []

        def advance(done: int, total: int) -> None:
            if not bars:
                bars.append(stack.enter_context(progress_bar(description, total)))
            bars[0](done, total)

        yield advance


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out = {}
    for value in values or []:
        column, sep, setting = value.partition("=")
        if not sep or not column.strip() or not setting.strip():
            raise typer.BadParameter(f"{value!r}: expected COLUMN=VALUE", param_hint=option)
        out[column.strip()] = setting.strip()
    return out


def _overrides(tests: dict[str, str], thresholds: dict[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for column, test in tests.items():
        out.setdefault(column, {})["test"] = test
    for column, value in thresholds.items():
        out.setdefault(column, {})["threshold"] = value
    return out


def _drift_config(
    numerical: str,
    categorical: str,
    tests: dict[str, str],
    thresholds: dict[str, str],
    drift_share: float,
    min_rows: int,
) -> DriftConfig:
    from forwardlab.monitor.drift.config import drift_config

    return drift_config(
        numerical=_names(numerical),
        categorical=_names(categorical),
        overrides=_overrides(tests, thresholds),
        drift_share=drift_share,
        min_rows=min_rows,
    )


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _print_drift(result: DriftResult) -> None:
    table = Table("column", "kind", "test", "score", "threshold", "drift", box=box.SIMPLE_HEAD)
    for c in result.columns:
        verdict = "-" if c.drift is None else ("[red]DRIFT[/]" if c.drift else "ok")
        table.add_row(c.column, c.kind, c.test_name or "-", _num(c.score), _num(c.threshold), verdict)
    out.print(table)
    for c in result.columns:
        if c.note:
            out.print(f"  {c.column}: {c.note}", highlight=False)
    if result.drift_share is None:
        out.print(f"{result.status}: {result.note}", highlight=False)
        return
    verdict = "[red]dataset drift[/]" if result.dataset_drift else "no dataset drift"
    out.print(
        f"{result.drifted_columns} of {result.tested_columns} columns drifted "
        f"(share {result.drift_share:.2f}, threshold {result.drift_share_threshold:g}): {verdict}"
    )


def _print_run(run: MonitoringRun) -> None:
    table = Table(
        "window", "rows", "ref", "drift share", "dataset", "target", "prediction", "MAE USD", "MAPE %", "reports",
        box=box.SIMPLE_HEAD,
    )  # fmt: skip
    for w in run.windows:
        m = w.performance
        reports = "-" if w.status != "ok" else (w.report_error or (f"{len(w.reports)}" if w.reports else "off"))
        table.add_row(
            f"{w.start:%Y-%m-%d}..{w.end:%Y-%m-%d}",
            str(w.n_current),
            str(w.n_reference),
            _num(w.drift.drift_share if w.drift else None) if w.status == "ok" else w.status,
            _flag(w.drift.dataset_drift if w.drift else None),
            _flag(w.target_drift.drift if w.target_drift else None),
            _flag(w.prediction_drift.drift if w.prediction_drift else None),
            "-" if m is None or m.mae_usd is None else f"{m.mae_usd:,.0f}",
            "-" if m is None or m.mape_pct is None else f"{m.mape_pct:.1f}",
            reports,
        )
    out.print(table)
    _print_production(run)
    ref = run.reference_metrics
    out.print(f"reference: {run.reference}, {run.n_reference} rows, MAE {ref.mae_usd or 0:,.0f} USD", highlight=False)
    for alert in run.alerts:
        out.print(f"[red]alert[/] {alert.rule} [{alert.window_start:%Y-%m-%d}..{alert.window_end:%Y-%m-%d}]: "
                  f"{alert.message}", highlight=False)  # fmt: skip


def _print_production(run: MonitoringRun) -> None:
    """The predictions made in each window: how many are labelled, and their realized MAE so far."""
    table = Table(
        "predicted in", "predictions", "labelled", "realized MAE USD", "estimated MAE USD (95%)", "PCA error",
        "domain AUC", "top segment", box=box.SIMPLE_HEAD,
    )  # fmt: skip
    for w in run.windows:
        p = w.production
        if p is None:
            continue
        share = p.coverage.label_coverage
        labelled = "-" if share is None else f"{p.coverage.n_labelled} ({share:.0%})"
        mae = "-" if p.realized_mae_usd is None else f"{p.realized_mae_usd:,.0f}"
        top = p.segments.top(1) if p.segments else ()
        table.add_row(
            f"{w.start:%Y-%m-%d}..{w.end:%Y-%m-%d}",
            str(p.coverage.n_predictions),
            labelled,
            f"{mae} [yellow]provisional[/]" if p.coverage.provisional and p.realized_mae_usd is not None else mae,
            _estimate(p.estimated),
            _alerting(p.reconstruction),
            _alerting(p.domain_classifier),
            f"{top[0].by} {top[0].segment} +{top[0].increase_usd:,.0f}" if top and top[0].increase_usd else "-",
        )
    out.print(table)


def _estimate(e: EstimatedPerformance | None) -> str:
    if e is None or e.estimated_mae_usd is None:
        return "-"
    text = f"{e.estimated_mae_usd:,.0f} ({e.estimated_mae_lower_usd or 0:,.0f}-{e.estimated_mae_upper_usd or 0:,.0f})"
    return f"[red]{text}[/]" if e.estimated_mae_alert else text


def _alerting(result: ReconstructionResult | DomainClassifierResult | None) -> str:
    if result is None or result.value is None:
        return "-"
    return f"[red]{result.value:.3g}[/]" if result.alert else f"{result.value:.3g}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _flag(value: bool | None) -> str:
    return "-" if value is None else ("[red]yes[/]" if value else "no")


def _month_line(m: MonthResult) -> str:
    mae = "-" if m.mae_usd is None else f"{m.mae_usd:,.0f}"
    estimated = "-" if m.estimated_mae_usd is None else f"{m.estimated_mae_usd:,.0f}"
    if m.estimated_mae_alert:
        estimated = f"[red]{estimated}[/]"
    drifted = ", ".join(m.drifted_features) or "-"
    alerts = f"  [red]alerts: {', '.join(m.alerts)}[/]" if m.alerts else ""
    status = "" if m.status == "ok" else f"  ({m.status})"
    return (
        f"{m.start[:7]}  listed {m.listed:>5}  sold {m.sold:>5}  MAE {mae:>8} USD  "
        f"est. MAE of the listed {estimated:>8} USD  drifted: {drifted}{alerts}{status}"
    )


def _print_simulation(result: SimulationResult) -> None:
    table = Table(
        "month", "listed", "sold", "MAE USD", "drift share", "drifted features", "alerts", box=box.SIMPLE_HEAD
    )
    for m in result.months:
        table.add_row(
            m.start[:7],
            str(m.listed),
            str(m.sold),
            "-" if m.mae_usd is None else f"{m.mae_usd:,.0f}",
            _num(m.drift_share) if m.status == "ok" else m.status,
            ", ".join(m.drifted_features) or "-",
            ", ".join(m.alerts) or "-",
        )
    out.print(table)
    listed, sold = sum(m.listed for m in result.months), sum(m.sold for m in result.months)
    out.print(
        f"{result.source}: {result.reference_rows} training houses scored (the reference), {listed} listed and "
        f"{sold} sold of {result.production_rows} in production; model {result.model_version}"
    )
    if result.resumed_at:
        out.print(f"resumed after {result.resumed_at} finished months")
    if not result.complete:
        out.print(f"{len(result.months)} of {result.months_total} months done; rerun the command to go on")
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in result.timings_s.items())
    out.print(f"time: {timings}")
    out.print(f"store:           {result.store_url}")
    out.print(f"monitoring.json: {result.json_path}")
    out.print(f"reports:         {result.out_dir / 'reports'}/START_END/*.html")
    out.print(
        f"dashboard:       FORWARDLAB_API_KEYS=<a key> forwardlab monitor dashboard --store {result.store_url} "
        f"--reports {result.out_dir}"
    )


def _print_detections(detections: list[Detection]) -> None:
    table = Table(
        "scenario", "onset", "first alert", "delay (windows)", "alerts then", "false alarms", box=box.SIMPLE_HEAD
    )
    for d in detections:
        delay = "-" if d.onset is None else ("missed" if d.delay_windows is None else str(d.delay_windows))
        table.add_row(
            d.scenario,
            d.onset or "-",
            d.first_alert or "-",
            delay,
            ", ".join(d.alerts_at_detection) or "-",
            f"{d.false_alarms} of {d.windows_before_onset}",
        )
    out.print(table)

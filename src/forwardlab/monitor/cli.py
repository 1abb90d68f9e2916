"""`forwardlab monitor ...`: the monitoring half's commands."""

import typer

app = typer.Typer(
    help="Continuous model monitoring of the King County house-price model.",
    no_args_is_help=True,
)


@app.callback()
def monitor() -> None:
    """Continuous model monitoring: prepare data, train, serve, detect drift, simulate, dashboard."""

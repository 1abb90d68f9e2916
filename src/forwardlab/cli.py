"""The `forwardlab` command: a thin layer that parses, calls the library and prints."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from forwardlab import __version__
from forwardlab.errors import ForwardlabError
from forwardlab.monitor.cli import app as monitor_app
from forwardlab.video.cli import app as video_app

app = typer.Typer(
    name="forwardlab",
    help="Video classification workbench and continuous model monitoring.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(video_app, name="video")
app.add_typer(monitor_app, name="monitor")

USER_ERROR_EXIT = 2


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"forwardlab {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Video classification workbench (`video`) and continuous model monitoring (`monitor`)."""


def main() -> None:
    """Entry point: errors a user can cause print one line and exit 2; bugs keep their traceback."""
    try:
        app()
    except ForwardlabError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(USER_ERROR_EXIT) from None

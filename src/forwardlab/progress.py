"""Progress bars for long work, shared by every command (Rich, on stderr so stdout stays parseable)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

Advance = Callable[[int, int], None]


class RateColumn(ProgressColumn):
    """Items per second over Rich's recent window: throughput is what users tune workers and batches by."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text("" if speed is None else f"{speed:.1f} {self.unit}/s", style="progress.data.speed")


@contextlib.contextmanager
def progress_bar(description: str, total: int, *, unit: str | None = None) -> Iterator[Advance]:
    """Yield `advance(done, total)`, the callback library functions take as `progress=`.

    With `unit` ("videos", "clips") the bar also shows the rate in that unit per second.
    """
    rate = (RateColumn(unit),) if unit else ()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *rate, TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(done: int, new_total: int) -> None:
            bar.update(task, completed=done, total=new_total)

        yield advance


@contextlib.contextmanager
def progress_bars(*tasks: tuple[str, bool]) -> Iterator[list[Advance]]:
    """Several bars in one display, e.g. partitions and bytes; each task is (description, counts_bytes)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[amount]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        advances: list[Advance] = []
        for description, counts_bytes in tasks:
            task = bar.add_task(description, total=None, amount="")
            fmt = decimal if counts_bytes else str

            def advance(done: int, total: int, task: TaskID = task, fmt: Callable[[int], str] = fmt) -> None:
                bar.update(task, completed=done, total=total or None, amount=f"{fmt(done)}/{fmt(total)}")

            advances.append(advance)
        yield advances

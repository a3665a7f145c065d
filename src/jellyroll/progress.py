"""Progress bars for long steps: frames done, frames per second, time left (rich)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def frame_progress(
    console: Console, label: str, total: int | None, *, transient: bool = False
) -> Iterator[Callable[[int], None]]:
    """A bar counting frames with their rate; yields ``advance(n_frames, total=None)``
    (``total`` sets the bar's length once it is known, e.g. after the input was opened)."""
    columns = (
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.fields[shown_total]} frames"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    start = time.perf_counter()
    with Progress(*columns, console=console, transient=transient) as progress:
        # "0/None frames" before the input is opened (or fails to open): "0/? frames"
        task = progress.add_task(label, total=total, rate="", shown_total=total or "?")

        def advance(n_frames: int, total: int | None = None) -> None:
            if total is not None:
                progress.update(task, total=total, shown_total=total)
            progress.advance(task, n_frames)
            done = progress.tasks[task].completed
            rate = done / max(time.perf_counter() - start, 1e-9)
            progress.update(task, rate=f"{rate:,.0f} frames/s")

        yield advance


@contextmanager
def fraction_progress(
    console: Console, label: str, *, transient: bool = False
) -> Iterator[Callable[[float], None]]:
    """A bar for work measured as a fraction done (0..1); yields ``update(fraction)``."""
    columns = (TextColumn(label), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=transient) as progress:
        task = progress.add_task(label, total=1.0)
        yield lambda fraction: progress.update(task, completed=fraction)
        progress.update(task, completed=1.0)


@contextmanager
def warnings_printed(console: Console) -> Iterator[None]:
    """Warnings raised inside, printed on ``console`` once it ends (even by an error), each
    message once, as ``warning: ...``: not Python's lines with a file and a line of source,
    in the middle of a progress bar."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        for warning in unique_warnings(caught):
            console.print(
                f"[yellow]warning:[/yellow] {warning.message}", highlight=False, soft_wrap=True
            )


def unique_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    """The warnings ``caught``, each message once (its first), in order."""
    seen: dict[str, warnings.WarningMessage] = {}
    for warning in caught:
        seen.setdefault(str(warning.message), warning)
    return list(seen.values())

"""``jellyroll run``: the whole chain from raw scans to the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jellyroll.cli import app, console
from jellyroll.cli._common import reported_errors
from jellyroll.progress import warnings_printed


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="TOML configuration (see docs/pipeline.md).")],
) -> None:
    """Reduce, reconstruct, map and diagnose every cell of CONFIG, then write the report.

    Stages whose inputs and settings are unchanged since the last run are skipped.
    """
    from jellyroll.options import OptionsError
    from jellyroll.pipeline import ConfigError, load_config, run_pipeline

    with reported_errors():
        try:
            settings = load_config(config)
        except ConfigError as error:
            raise OptionsError(str(error)) from error
        with warnings_printed(console):
            result = run_pipeline(settings, console=console)
    for entry in result.log.entries:
        console.print(f"  {entry['stage']:<32} {entry['status']:<11} {entry['seconds']:7.1f} s")
    console.print(f"report: [bold]{result.report}[/bold] ({result.seconds:.0f} s)")

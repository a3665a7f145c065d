"""``jellyroll diagnose`` (one cell's maps to its results file) and ``jellyroll report``
(results files to the HTML report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from jellyroll.cli import app, console
from jellyroll.cli._common import check_input_file, check_output_file, option, reported_errors
from jellyroll.defects.options import DiagnoseOptions
from jellyroll.options import options_from
from jellyroll.report.options import ReportOptions


@app.command()
def diagnose(
    waxs: Annotated[Path, typer.Argument(help="WAXS run file with its maps.")],
    saxs: Annotated[Path, typer.Argument(help="SAXS run file with its maps.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Results file to write (NeXus HDF5).")
    ],
    name: Annotated[str, typer.Option(help="Name of the cell.")] = "cell",
    label: Annotated[str, typer.Option(help="Label of the cell in the report.")] = "",
    critical_diameter: Annotated[
        float | None, option(DiagnoseOptions, "critical_diameter_um")
    ] = None,
) -> None:
    """Find the cell, unroll it, find the agglomerates, bends and lithiation around them."""
    from jellyroll.defects.run import run_diagnose
    from jellyroll.results.store import refuse_stage_file, run_files

    with reported_errors():
        refuse_stage_file(waxs, "the WAXS run")
        refuse_stage_file(saxs, "the SAXS run")
        check_output_file(output, "results.h5", "diagnose", [*run_files(waxs), *run_files(saxs)])
        options = options_from(DiagnoseOptions, {"critical_diameter_um": critical_diameter})
        result = run_diagnose({"waxs": waxs, "saxs": saxs}, output, options, name=name, label=label)
    values = result.summary
    console.print(
        f"wrote [bold]{output}[/bold]: {values['agglomerates']} agglomerates "
        f"({values['case_b']} case B, {values['unresolved']} unresolved), "
        + ("collector not traced" if np.isnan(values["bends"]) else f"{values['bends']} bends")
    )
    for note in result.notes:
        console.print(f"note: {note}")


@app.command()
def report(
    results: Annotated[list[Path], typer.Argument(help="Results files (from diagnose or run).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML report to write.")],
    title: Annotated[str | None, option(ReportOptions, "title")] = None,
) -> None:
    """Write the self-contained HTML report of one or more cells."""
    from jellyroll.report.run import run_report

    with reported_errors():
        check_output_file(output, "report.html", "report", results)
        for path in results:
            check_input_file(path, "results file", "from `jellyroll diagnose` or `jellyroll run`")
        options = options_from(ReportOptions, {"title": title})
        path = run_report(results, output, options)
    console.print(f"report: [bold]{path}[/bold]")

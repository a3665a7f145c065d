"""``jellyroll diagnose`` (one cell's maps to its results file) and ``jellyroll report``
(results files to the HTML report)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

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
    psf_fwhm: Annotated[  # text: "auto" or a number
        str | None, option(DiagnoseOptions, "psf_fwhm_um")
    ] = None,
    background_window: Annotated[
        float | None, option(DiagnoseOptions, "background_window_um")
    ] = None,
) -> None:
    """Find the cell, unroll it, find the agglomerates, bends and lithiation around them."""
    from jellyroll.defects.run import run_diagnose
    from jellyroll.results.store import refuse_not_a_run, run_files

    with reported_errors():
        if not name.strip():
            raise typer.BadParameter("give the cell a name (--name): it names it in the report")
        refuse_not_a_run(waxs, "the WAXS run", reads="maps")
        refuse_not_a_run(saxs, "the SAXS run", reads="maps")
        _refuse_one_run_twice(waxs, saxs)
        check_output_file(output, "results.h5", "diagnose", [*run_files(waxs), *run_files(saxs)])
        options = options_from(
            DiagnoseOptions,
            {
                "critical_diameter_um": critical_diameter,
                "psf_fwhm_um": psf_fwhm,
                "background_window_um": background_window,
            },
        )
        result = run_diagnose({"waxs": waxs, "saxs": saxs}, output, options, name=name, label=label)
    values = result.summary
    console.print(
        f"wrote [bold]{output}[/bold]: {values['agglomerates']} agglomerates "
        f"({values['case_b']} case B, {values['unresolved']} unresolved), "
        + ("collector not traced" if np.isnan(values["bends"]) else f"{values['bends']} bends")
        + f"; sizes deconvolved by a {values['psf_fwhm_um']:.3g} um PSF "
        + f"({_psf_source(values['psf_measured'], options)})"
    )
    for note in result.notes:
        console.print(f"note: {note}")


def _refuse_one_run_twice(waxs: Path, saxs: Path) -> None:
    """ValueError when the WAXS and the SAXS run are one file (the same path, or a link to
    it): `diagnose SAXS SAXS` diagnosed the SAXS maps alone, exit 0, its results without
    the WAXS phase shares (lic6, lic12, NMC) and the cell's place, with only a note."""
    same = waxs.resolve() == saxs.resolve() or (
        waxs.is_file() and saxs.is_file() and os.path.samefile(waxs, saxs)
    )
    if same:
        raise ValueError(
            f"{waxs} is given as both the WAXS and the SAXS run; give the WAXS run first, "
            "then the SAXS run of the same cell"
        )


def _psf_source(measured: bool, options: DiagnoseOptions) -> str:
    """Where the PSF the sizes were deconvolved by came from, in words."""
    if measured:
        return "measured on the map"
    return "the study's beam: not measured" if options.psf_fwhm_um == "auto" else "given"


CELL_FILES = {
    "nxct": ("NXCT file", "from `jellyroll nxct XCT NCT -o NXCT.h5`"),
    "link": ("link file", "from `jellyroll link`"),
    "truth": ("truth.h5 of a digital twin", "from `jellyroll phantom`"),
    "operando": ("operando file", "from `jellyroll operando SERIES -o OPERANDO.h5`"),
}
"""The report's per-cell files: option -> (what the file is, how to make it)."""


def _cell_option(what: str) -> Any:
    """A repeatable ``CELL=PATH`` option adding ``what`` to the report."""
    return typer.Option(
        help=f"{what} of a cell, as CELL=PATH (the cell's name in its results file; PATH "
        "alone with one results file); repeat for each cell."
    )


@app.command()
def report(
    results: Annotated[list[Path], typer.Argument(help="Results files (from diagnose or run).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML report to write.")],
    title: Annotated[str | None, option(ReportOptions, "title")] = None,
    nxct: Annotated[
        list[str] | None, _cell_option("NXCT file (fused views, 3D bends: from nxct)")
    ] = None,
    link: Annotated[
        list[str] | None, _cell_option("Link file (slice in the volume, dossiers: from link)")
    ] = None,
    truth: Annotated[
        list[str] | None, _cell_option("Digital twin's truth.h5 (found vs truth)")
    ] = None,
    operando: Annotated[
        list[str] | None, _cell_option("Operando file (the charge series: from operando)")
    ] = None,
) -> None:
    """Write the self-contained HTML report of one or more cells."""
    from jellyroll.report.run import run_report

    with reported_errors():
        given = {"nxct": nxct, "link": link, "truth": truth, "operando": operando}
        values = [value for found in given.values() for value in found or ()]
        # the file of a value: PATH of CELL=PATH, or the whole value (a bare PATH)
        sides = {Path(p) for value in values for p in (value, value.partition("=")[2]) if p}
        check_output_file(output, "report.html", "report", [*results, *sides])
        for path in results:
            check_input_file(path, "results file", "from `jellyroll diagnose` or `jellyroll run`")
        files = _cell_files(results, given) if values else {}
        options = options_from(ReportOptions, {"title": title})
        path = run_report(results, output, options, **files)
    console.print(f"report: [bold]{path}[/bold]")


def _cell_files(
    results: list[Path], given: dict[str, list[str] | None]
) -> dict[str, dict[str, Path]]:
    """The files of ``--nxct``, ``--link``, ``--truth`` and ``--operando`` as option -> cell
    name -> file, checked: each CELL the name (read from its file, as the report reads it)
    of exactly one of ``results``, given once per option, its file there."""
    from jellyroll.results import require_diagnosis

    names = [require_diagnosis(path).name for path in results]
    files: dict[str, dict[str, Path]] = {}
    for flag, values in given.items():
        what, hint = CELL_FILES[flag]
        files[flag] = {}
        for value in values or ():
            cell, path = _cell_and_path(flag, value, names)
            shared = [str(p) for p, name in zip(results, names, strict=True) if name == cell]
            if len(shared) > 1:
                raise ValueError(
                    f"--{flag} {value}: {len(shared)} results files are cell {cell!r} "
                    f"({', '.join(shared)}) and the file would be shown with each; report "
                    "them one at a time"
                )
            if cell in files[flag]:
                raise ValueError(f"--{flag}: cell {cell!r} is given twice; give one file per cell")
            check_input_file(path, f"{what} of --{flag} {cell}", hint)
            files[flag][cell] = path
    return files


def _cell_and_path(flag: str, value: str, names: list[str]) -> tuple[str, Path]:
    """(cell, file) of the ``--flag`` value ``CELL=PATH``, or of a bare ``PATH`` when
    ``names`` (the results files' cells) has one cell (a bare path may hold "=" where
    what precedes it is no cell's name and the whole value is a file)."""
    cells = ", ".join(sorted(set(names)))
    cell, sep, path = value.partition("=")
    bare = len(names) == 1 and (not sep or (cell not in names and Path(value).is_file()))
    if bare and value:
        return names[0], Path(value)
    if not sep or not cell or not path:
        several = f"{len(names)} results files are given; " if len(names) > 1 else ""
        raise ValueError(f"--{flag} {value!r}: {several}give CELL=PATH, the cell one of {cells}")
    if cell not in names:
        raise ValueError(
            f"--{flag} {value}: {cell!r} is not a cell of the results files given; their "
            f"cells: {cells}"
        )
    return cell, Path(path)

"""``jellyroll maps``: phase, SAXS intensity and d* maps of a reconstructed run file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from jellyroll.cli import app, console
from jellyroll.maps import MapsOptions, write_run_maps


@app.command()
def maps(
    run: Annotated[Path, typer.Argument(help="Run file with /entry/reconstruction.")],
    label_threshold: Annotated[
        float,
        typer.Option(help="Label -1 below this fraction of a phase family's robust maximum."),
    ] = MapsOptions.label_threshold,
    denoise: Annotated[
        bool,
        typer.Option(
            "--denoise/--no-denoise",
            help="Low-rank denoise the SAXS profiles before d* (not in the study's method).",
        ),
    ] = MapsOptions.denoise,
    rank: Annotated[
        int | None, typer.Option(help="Components kept by the denoising (default: automatic).")
    ] = None,
    dstar_min_intensity: Annotated[
        float,
        typer.Option(help="d* only where the SAXS intensity exceeds this fraction of its p99."),
    ] = MapsOptions.dstar_min_intensity,
    tolerance: Annotated[
        float | None, typer.Option(help="d*: departure from the power law [study: 0.03].")
    ] = None,
    min_points: Annotated[
        int | None, typer.Option(help="d*: shortest usable segment [study: 150].")
    ] = None,
    min_slope: Annotated[
        float | None, typer.Option(help="d*: smallest accepted exponent [study: 2.5].")
    ] = None,
    max_slope: Annotated[
        float | None, typer.Option(help="d*: largest accepted exponent [study: 4.3].")
    ] = None,
) -> None:
    """Write every map of a run file under /entry/maps and the composites as PNG beside it.

    WAXS runs (q covering the Table 1 windows) give the phase maps, their labels and the
    graphite overview; SAXS runs (q covering 0.025-0.1 1/A) the integrated SAXS intensity
    and the d* map.
    """
    from jellyroll.io.runfile import RunFileError

    start = time.perf_counter()
    options = MapsOptions(
        label_threshold=label_threshold,
        denoise=denoise,
        rank=rank,
        dstar_min_intensity=dstar_min_intensity,
        # only what was given: the defaults stay those of jellyroll.saxs.departure_dstar_map
        dstar={
            name: value
            for name, value in (
                ("tolerance", tolerance),
                ("min_points", min_points),
                ("min_slope", min_slope),
                ("max_slope", max_slope),
            )
            if value is not None
        },
    )
    try:
        result = write_run_maps(run, options)
    except (RunFileError, ValueError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    table = Table(title=f"maps of {run}")
    table.add_column("map")
    table.add_column("units")
    table.add_column("values")
    for name, (values, units) in result.maps.items():
        table.add_row(name, units, _summary(values))
    console.print(table)
    for note in result.notes:
        console.print(note)
    for path in result.figures:
        console.print(f"figure: [bold]{path}[/bold]")
    console.print(f"done in {time.perf_counter() - start:.1f} s")


def _summary(values: np.ndarray) -> str:
    """Counts per value of a label map; 1-99 % range of the non-zero values of others."""
    if values.dtype.kind in "iu":
        keys, counts = np.unique(values, return_counts=True)
        return ", ".join(f"{k}: {c}" for k, c in zip(keys, counts, strict=True))
    useful = values[np.isfinite(values) & (values != 0)]
    if not useful.size:
        return "-"
    low, high = np.percentile(useful, [1, 99])
    return f"{low:.4g} .. {high:.4g} ({useful.size} px)"

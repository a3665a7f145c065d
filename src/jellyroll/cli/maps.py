"""``jellyroll maps``: phase, SAXS intensity and d* maps of a reconstructed run file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from jellyroll.cli import app, console
from jellyroll.cli._common import option, reported_errors
from jellyroll.maps.options import DstarOptions, MapsOptions
from jellyroll.options import options_from


@app.command()
def maps(
    run: Annotated[Path, typer.Argument(help="Run file with /entry/reconstruction.")],
    analysis: Annotated[str | None, option(MapsOptions, "analysis")] = None,
    label_threshold: Annotated[float | None, option(MapsOptions, "label_threshold")] = None,
    denoise: Annotated[
        bool | None, option(MapsOptions, "denoise", "--denoise/--no-denoise")
    ] = None,
    rank: Annotated[int | None, option(MapsOptions, "rank")] = None,
    dstar_min_intensity: Annotated[float | None, option(MapsOptions, "dstar_min_intensity")] = None,
    q_check: Annotated[
        bool | None, option(MapsOptions, "q_check", "--q-check/--no-q-check")
    ] = None,
    tolerance: Annotated[float | None, option(DstarOptions, "tolerance")] = None,
    min_points: Annotated[int | None, option(DstarOptions, "min_points")] = None,
    min_slope: Annotated[float | None, option(DstarOptions, "min_slope")] = None,
    max_slope: Annotated[float | None, option(DstarOptions, "max_slope")] = None,
    min_intensity: Annotated[float | None, option(DstarOptions, "min_intensity")] = None,
    skip_low_fraction: Annotated[float | None, option(DstarOptions, "skip_low_fraction")] = None,
    skip_high_fraction: Annotated[float | None, option(DstarOptions, "skip_high_fraction")] = None,
) -> None:
    """Write every map of a run file under /entry/maps and the composites as PNG beside it.

    WAXS runs (q covering the Table 1 windows) give the phase maps, their labels and the
    graphite overview; SAXS runs (q covering 0.025-0.1 1/A) the integrated SAXS intensity
    and the d* map; the attenuation slice, when the scan had a diode, becomes a map too.
    """
    from jellyroll.maps.run import run_maps
    from jellyroll.results.store import refuse_not_a_run

    with reported_errors():
        refuse_not_a_run(run, "the run file")
        dstar = options_from(
            DstarOptions,
            {
                "tolerance": tolerance,
                "min_points": min_points,
                "min_slope": min_slope,
                "max_slope": max_slope,
                "min_intensity": min_intensity,
                "skip_low_fraction": skip_low_fraction,
                "skip_high_fraction": skip_high_fraction,
            },
        )
        options = options_from(
            MapsOptions,
            {
                "analysis": analysis,
                "label_threshold": label_threshold,
                "denoise": denoise,
                "rank": rank,
                "dstar_min_intensity": dstar_min_intensity,
                "q_check": q_check,
                "dstar": dstar,
            },
        )
        start = time.perf_counter()
        result = run_maps(run, options)
    table = Table(title=f"maps of {run}")
    table.add_column("map")
    table.add_column("units")
    table.add_column("values (label: count; else 1-99 % percentiles)")
    for name, (values, units) in result.maps.maps.items():
        table.add_row(name, units, _summary(values))
    console.print(table)
    for note in result.maps.notes:
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

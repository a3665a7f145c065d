"""``jellyroll operando``: lithiation kinetics of a charge series of one slice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jellyroll.cli import app, console
from jellyroll.cli._common import check_input_file, check_output_file, option, reported_errors
from jellyroll.maps.options import MapsOptions
from jellyroll.operando.options import OperandoOptions
from jellyroll.options import options_from
from jellyroll.progress import warnings_printed


@app.command()
def operando(
    series: Annotated[
        list[Path], typer.Argument(help="A folder of WAXS scans, or the scans in time order.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Results file (HDF5).")],
    log: Annotated[Path | None, typer.Option(help="Potentiostat log: EC-Lab .mpt or CSV.")] = None,
    saxs: Annotated[
        Path | None,
        typer.Option(help="Results file of jellyroll diagnose, or SAXS run file, of the slice."),
    ] = None,
    poni: Annotated[
        Path | None,
        typer.Option(help="PONI calibration of every step's frames (overrides the scans')."),
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option(help="Detector mask of every step, EDF/CBF/TIFF/NPY, non-zero = masked."),
    ] = None,
    channels: Annotated[str | None, option(OperandoOptions, "channels")] = None,
    capacity_mah: Annotated[float | None, option(OperandoOptions, "capacity_mah")] = None,
    max_log_gap_s: Annotated[float | None, option(OperandoOptions, "max_log_gap_s")] = None,
    log_utc_offset_h: Annotated[float | None, option(OperandoOptions, "log_utc_offset_h")] = None,
    register_steps: Annotated[
        bool | None, option(OperandoOptions, "register_steps", "--register/--no-register")
    ] = None,
    graphite_fraction: Annotated[float | None, option(OperandoOptions, "graphite_fraction")] = None,
    min_lag_soc: Annotated[float | None, option(OperandoOptions, "min_lag_soc")] = None,
    min_zone_pixels: Annotated[int | None, option(OperandoOptions, "min_zone_pixels")] = None,
    ring_width_um: Annotated[float | None, option(OperandoOptions, "ring_width_um")] = None,
    q_check: Annotated[
        bool | None, option(MapsOptions, "q_check", "--q-check/--no-q-check")
    ] = None,
) -> None:
    """Reduce, reconstruct and map every step with one rotation centre, then follow the
    graphite phases of the regular anode, each damaged zone, its ring and each turn."""
    from jellyroll.operando.run import run_operando
    from jellyroll.operando.timeline import SOC_UNITS

    with reported_errors():
        side_files = [path for path in (poni, mask, log, saxs) if path is not None]
        check_output_file(output, "operando.h5", "operando", [*series, *side_files])
        # checked before the steps are reduced and reconstructed, not after
        if poni is not None:
            check_input_file(poni, "PONI file of --poni", "a pyFAI calibration, .poni")
        if mask is not None:
            check_input_file(mask, "detector mask of --mask", "EDF/CBF/TIFF/NPY, non-zero = masked")
        if log is not None:
            check_input_file(log, "potentiostat log of --log", "EC-Lab .mpt or CSV")
        if saxs is not None:
            check_input_file(
                saxs, "SAXS file of --saxs", "from `jellyroll diagnose` or `jellyroll maps`"
            )
        options = options_from(
            OperandoOptions,
            {
                "channels": channels,
                "capacity_mah": capacity_mah,
                "max_log_gap_s": max_log_gap_s,
                "log_utc_offset_h": log_utc_offset_h,
                "register_steps": register_steps,
                "graphite_fraction": graphite_fraction,
                "min_lag_soc": min_lag_soc,
                "min_zone_pixels": min_zone_pixels,
                "ring_width_um": ring_width_um,
            },
        )
        start = time.perf_counter()
        given = series[0] if len(series) == 1 and series[0].is_dir() else list(series)
        with warnings_printed(console):
            done = run_operando(
                given,
                output,
                options,
                log=log,
                saxs_maps=saxs,
                maps_options=options_from(MapsOptions, {"q_check": q_check}),
                poni_path=poni,
                mask_path=mask,
                console=console,
            )
    result = done.result
    table = Table(title=f"operando: {len(result.steps)} steps ({result.soc_source})")
    # without a state of charge the curves, and their half-way points, run along time
    by_soc = result.soc_units == SOC_UNITS
    half_at = (
        "SOC at half lithiation" if by_soc else f"time at half lithiation ({result.soc_units})"
    )
    lag_by = "lag (SOC)" if by_soc else f"lag ({result.soc_units})"
    for column in ("region", "pixels", half_at, lag_by):
        table.add_column(column)
    for name, half in result.soc_half.items():
        table.add_row(name, str(result.pixels[name]), f"{half:.3f}", f"{result.lag(name):+.3f}")
    console.print(table)
    for note in result.notes:
        console.print(note)
    for path in done.figures:
        console.print(f"figure: [bold]{path}[/bold]")
    console.print(f"results: [bold]{done.path}[/bold]; done in {time.perf_counter() - start:.1f} s")

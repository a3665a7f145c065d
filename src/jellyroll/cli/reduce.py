"""``jellyroll reduce``: raw frames to the sinogram of a run file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from jellyroll.cli import app, console
from jellyroll.cli._common import check_output_file, option, reported_errors
from jellyroll.options import options_from
from jellyroll.progress import frame_progress
from jellyroll.reduce.options import ReduceOptions


@app.command()
def reduce(
    scan: Annotated[
        Path,
        typer.Argument(
            help="Raw scan: HDF5 (SPEC layout), Bliss HDF5 with --mapping, "
            "or a CSV table of CBF/EDF frames."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Run file to write (NeXus HDF5).")],
    poni: Annotated[
        Path | None, typer.Option(help="PONI calibration (overrides the file's).")
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option(
            help="Detector mask, EDF/CBF/TIFF/NPY, non-zero = masked; added to the mask the "
            "scan file holds."
        ),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="TOML mapping of a Bliss-style file's dataset paths.")
    ] = None,
    npt: Annotated[int | None, option(ReduceOptions, "npt")] = None,
    unit: Annotated[str | None, option(ReduceOptions, "unit")] = None,
    q_min: Annotated[
        float | None,
        typer.Option(help="Lower end of the radial range, in --unit; default: the detector's."),
    ] = None,
    q_max: Annotated[
        float | None,
        typer.Option(help="Upper end of the radial range, in --unit; default: the detector's."),
    ] = None,
    filter: Annotated[str | None, option(ReduceOptions, "filter")] = None,
    split: Annotated[str | None, option(ReduceOptions, "split")] = None,
    spot_filter: Annotated[
        bool | None, option(ReduceOptions, "spot_filter", "--spot-filter/--no-spot-filter")
    ] = None,
    polarization_factor: Annotated[  # text: "none" turns the correction off
        str | None, option(ReduceOptions, "polarization_factor")
    ] = None,
    block: Annotated[int | None, option(ReduceOptions, "block_frames")] = None,
    air: Annotated[bool | None, option(ReduceOptions, "subtract_air", "--air/--no-air")] = None,
    threads: Annotated[int | None, option(ReduceOptions, "threads")] = None,
    decode_threads: Annotated[int | None, option(ReduceOptions, "decode_threads")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="dask.distributed scheduler address (e.g. tcp://host:8786).")
    ] = None,
) -> None:
    """Integrate every frame, place it by its motor positions and write the sinogram.

    An interrupted run resumes where it stopped when started again with the same inputs.
    """  # fmt: skip
    from jellyroll.reduce.run import run_reduce
    from jellyroll.results.store import refuse_stage_file

    with reported_errors():
        refuse_stage_file(output, "the output (-o)")
        check_output_file(output, "run.h5", "reduce", [scan])
        if (q_min is None) != (q_max is None):
            raise typer.BadParameter("give both --q-min and --q-max, or neither")
        options = options_from(
            ReduceOptions,
            {
                "npt": npt,
                "unit": unit,
                "radial_range": None if q_min is None else (q_min, q_max),
                "filter": filter,
                "split": split,
                "spot_filter": spot_filter,
                "polarization_factor": polarization_factor,
                "block_frames": block,
                "subtract_air": air,
                "threads": threads,
                "decode_threads": decode_threads,
            },
        )
        start = time.perf_counter()
        with frame_progress(console, "reducing", None) as advance:
            report = run_reduce(
                scan,
                output,
                options,
                mapping=mapping,
                poni_path=poni,
                mask_path=mask,
                scheduler=scheduler,
                on_block=advance,
            )
    dropped = report.unreadable_frames + report.unplaced_frames
    console.print(
        f"wrote [bold]{report.output}[/bold]: sinogram {report.shape} "
        f"(angles x translations x q), {report.missing_cells} missing cells, "
        f"{report.unreadable_frames} unreadable frames, {report.unplaced_frames} frames left out "
        f"for their readings{' (see the warnings)' if dropped else ''}"
    )
    if report.blocks_done_before:
        console.print(f"resumed: {report.blocks_done_before} blocks were already done")
    if report.rotation_centre_mm is not None:
        console.print(f"rotation centre: {report.rotation_centre_mm:.5f} mm")
    console.print(f"done in {time.perf_counter() - start:.1f} s")

"""``jellyroll reduce``: raw frames to the sinogram of a run file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from jellyroll.cli import app, console
from jellyroll.progress import frame_progress


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
        Path | None, typer.Option(help="Detector mask, EDF/CBF/TIFF/NPY, non-zero = masked.")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="TOML mapping of a Bliss-style file's dataset paths.")
    ] = None,
    npt: Annotated[int, typer.Option(help="Number of q bins.")] = 2000,
    unit: Annotated[str, typer.Option(help="Radial unit (pyFAI name).")] = "q_A^-1",
    q_min: Annotated[float | None, typer.Option(help="Lower end of the radial range.")] = None,
    q_max: Annotated[float | None, typer.Option(help="Upper end of the radial range.")] = None,
    filter: Annotated[
        str, typer.Option(help="Outlier rejection: none, sigma-clip or trimmed-mean.")
    ] = "none",
    block: Annotated[
        int, typer.Option(help="Frames per block (memory ~ block x frame size).")
    ] = 256,
    air: Annotated[
        bool,
        typer.Option("--air/--no-air", help="Subtract the air scattering of the sinogram edges."),
    ] = True,
    scheduler: Annotated[
        str | None, typer.Option(help="dask.distributed scheduler address (e.g. tcp://host:8786).")
    ] = None,
) -> None:
    """Integrate every frame, place it by its motor positions and write the sinogram.

    An interrupted run resumes where it stopped when started again with the same inputs.
    """  # fmt: skip
    from jellyroll.reduce.engine import FILTERS
    from jellyroll.reduce.pipeline import ReduceOptions, reduce_scan

    if filter not in FILTERS:
        raise typer.BadParameter(f"--filter must be one of {', '.join(FILTERS)}")
    if (q_min is None) != (q_max is None):
        raise typer.BadParameter("give both --q-min and --q-max, or neither")
    options = ReduceOptions(
        npt=npt,
        unit=unit,
        radial_range=None if q_min is None else (q_min, q_max),  # type: ignore[arg-type]
        filter=filter,
        block_frames=block,
        subtract_air=air,
    )
    start = time.perf_counter()
    try:
        with frame_progress(console, "reducing", None) as advance:
            report = reduce_scan(
                scan,
                output,
                options=options,
                mapping=mapping,
                poni_path=poni,
                mask_path=mask,
                scheduler=scheduler,
                on_block=advance,
            )
    except ValueError as error:  # ScanFormatError and bad settings: say what, not where
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    console.print(
        f"wrote [bold]{report.output}[/bold]: sinogram {report.shape} "
        f"(angles x translations x q), {report.missing_cells} missing cells, "
        f"{report.unreadable_frames} unreadable frames"
    )
    if report.blocks_done_before:
        console.print(f"resumed: {report.blocks_done_before} blocks were already done")
    if report.rotation_centre_mm is not None:
        console.print(f"rotation centre: {report.rotation_centre_mm:.5f} mm")
    console.print(f"done in {time.perf_counter() - start:.1f} s")

"""``jellyroll nxct``: register, fuse and segment an X-ray and a neutron CT volume."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from jellyroll.cli import app, console
from jellyroll.cli._common import check_output_file, option, reported_errors
from jellyroll.nxct.options import NXCTOptions
from jellyroll.options import options_from
from jellyroll.progress import fraction_progress, warnings_printed

N = NXCTOptions


@app.command()
def nxct(
    xct: Annotated[str, typer.Argument(help="X-ray CT volume: TIFF stack, folder, file.h5::/path")],
    nct: Annotated[
        str, typer.Argument(help="Neutron CT volume: TIFF stack, folder, file.h5::/path")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="NXCT result file (NeXus HDF5).")],
    xct_voxel_um: Annotated[float | None, option(N, "xct_voxel_um")] = None,
    nct_voxel_um: Annotated[float | None, option(N, "nct_voxel_um")] = None,
    grid: Annotated[str | None, option(N, "grid")] = None,
    scale: Annotated[bool | None, option(N, "scale", "--scale/--rigid")] = None,
    max_voxels: Annotated[int | None, option(N, "max_voxels")] = None,
    fine_voxels: Annotated[int | None, option(N, "fine_voxels")] = None,
    window_low: Annotated[float | None, typer.Option(help="Lower contrast percentile [1].")] = None,
    window_high: Annotated[
        float | None, typer.Option(help="Upper contrast percentile [99].")
    ] = None,
    check_order: Annotated[
        bool | None, option(N, "check_order", "--order-check/--no-order-check")
    ] = None,
    segment: Annotated[bool | None, option(N, "segment", "--segment/--no-segment")] = None,
    bends: Annotated[bool | None, option(N, "bends", "--bends/--no-bends")] = None,
    bend_slice_step: Annotated[int | None, option(N, "bend_slice_step")] = None,
    slab: Annotated[int | None, option(N, "slab")] = None,
) -> None:
    """Register the neutron volume onto the X-ray one (any remount), fuse them as RGB (red =
    X-ray, cyan = neutron), segment the components and find the bent Cu collector in 3D."""
    from jellyroll.io.volumes import split_dataset
    from jellyroll.nxct.run import run_nxct

    with reported_errors():
        volumes = [split_dataset(given)[0] for given in (xct, nct)]
        check_output_file(output, "nxct.h5", "nxct", volumes)
        window = None
        if window_low is not None or window_high is not None:
            default = NXCTOptions().window_percentiles
            window = (
                default[0] if window_low is None else window_low,
                default[1] if window_high is None else window_high,
            )
        options = options_from(
            NXCTOptions,
            {
                "xct_voxel_um": xct_voxel_um,
                "nct_voxel_um": nct_voxel_um,
                "grid": grid,
                "scale": scale,
                "max_voxels": max_voxels,
                "fine_voxels": fine_voxels,
                "window_percentiles": window,
                "check_order": check_order,
                "segment": segment,
                "bends": bends,
                "bend_slice_step": bend_slice_step,
                "slab": slab,
            },
        )
        start = time.perf_counter()
        with warnings_printed(console), fraction_progress(console, "nxct") as update:
            result = run_nxct(xct, nct, output, options, progress=update)
    console.print(
        f"wrote [bold]{output}[/bold]: registration ({result.metric} {result.metric_value:.4g}, "
        f"{result.seconds:.1f} s), fused {result.shape} at {result.voxel_um:g} um, "
        f"{len(result.label_names)} labels, {len(result.bends)} bends"
    )
    console.print(f"done in {time.perf_counter() - start:.1f} s")

"""``jellyroll locate``: place the SWAXS-CT slice of a run file inside an X-ray CT volume."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jellyroll.cli import app, console
from jellyroll.cli._common import check_input_file, check_output_file, option, reported_errors
from jellyroll.locate.options import LocateOptions
from jellyroll.options import options_from
from jellyroll.progress import fraction_progress

L = LocateOptions


@app.command()
def locate(
    run: Annotated[Path, typer.Argument(help="Run file holding the SWAXS-CT maps (RUN.h5).")],
    xct: Annotated[str, typer.Argument(help="X-ray CT volume: TIFF stack, folder, file.h5::/path")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Location file (NeXus HDF5).")],
    nct: Annotated[
        str | None, typer.Option(help="Neutron CT volume to resample on the map grid too.")
    ] = None,
    nxct: Annotated[
        Path | None,
        typer.Option(help="NXCT file of the pair (its nct_to_xct); default: register here."),
    ] = None,
    map_name: Annotated[str | None, option(L, "map", "--map")] = None,
    xct_voxel_um: Annotated[float | None, option(L, "xct_voxel_um")] = None,
    nct_voxel_um: Annotated[float | None, option(L, "nct_voxel_um")] = None,
    max_voxels: Annotated[int | None, option(L, "max_voxels")] = None,
    max_points: Annotated[int | None, option(L, "max_points")] = None,
    max_tilt_deg: Annotated[float | None, option(L, "max_tilt_deg")] = None,
    min_similarity: Annotated[float | None, option(L, "min_similarity")] = None,
    strict_height: Annotated[
        bool | None, option(L, "strict_height", "--strict-height/--no-strict-height")
    ] = None,
    check_order: Annotated[
        bool | None, option(L, "check_order", "--order-check/--no-order-check")
    ] = None,
    offset_um: Annotated[list[float] | None, option(L, "offsets_um", "--offset-um")] = None,
) -> None:
    """Place the SWAXS-CT slice in the X-ray volume (any in-plane rotation, height found
    from the similarity profile) and resample the volumes on the map grid."""
    from jellyroll.io.volumes import split_dataset
    from jellyroll.locate.run import run_locate
    from jellyroll.results.store import run_files

    with reported_errors():
        nct_file = None if nct is None else split_dataset(nct)[0]
        given = [*run_files(run), split_dataset(xct)[0], *(p for p in (nct_file, nxct) if p)]
        check_output_file(output, "location.h5", "locate", given)
        if nxct is not None and nct is None:
            raise ValueError("--nxct needs --nct: the neutron volume to resample")
        if nxct is not None:
            check_input_file(
                nxct, "NXCT file of --nxct", "from `jellyroll nxct XCT NCT -o NXCT.h5`"
            )
        if nct_file is not None and not nct_file.exists():  # found after the placement else
            raise ValueError(
                f"{nct_file}: no such file or folder; give the neutron CT volume of --nct "
                "(TIFF stack, folder, file.h5::/path)"
            )
        options = options_from(
            LocateOptions,
            {
                "map": map_name,
                "xct_voxel_um": xct_voxel_um,
                "nct_voxel_um": nct_voxel_um,
                "max_voxels": max_voxels,
                "max_points": max_points,
                "max_tilt_deg": max_tilt_deg,
                "min_similarity": min_similarity,
                "strict_height": strict_height,
                "check_order": check_order,
                "offsets_um": None if not offset_um else tuple(offset_um),
            },
        )
        with fraction_progress(console, "locate") as update:
            result = run_locate(run, xct, output, options, nct=nct, nxct=nxct, progress=update)
    p = result.parameters
    console.print(
        f"wrote [bold]{output}[/bold]: {result.map_name} map at z = {result.z_um:.1f} um, "
        f"rotation {p['rotation_deg']:.2f} deg, tilt {p['tilt_deg']:.2f} deg, "
        f"correlation {result.similarity:.3f}, height +- {result.height_uncertainty_um:.1f} um"
    )
    if result.height_warning:
        console.print(f"[yellow]warning:[/yellow] {result.height_warning}")
    if result.in_plane_warning:
        console.print(f"[yellow]warning:[/yellow] {result.in_plane_warning}")

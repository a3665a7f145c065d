"""``jellyroll link``: link the agglomerates of a diagnosed slice to the 3D bends of its CT
volumes, through the slice's place in the X-ray volume, with the defect dossiers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from jellyroll.cli import app, console
from jellyroll.cli._common import check_input_file, check_output_file, option, reported_errors
from jellyroll.locate.link_options import LinkOptions
from jellyroll.options import options_from
from jellyroll.progress import warnings_printed

K = LinkOptions
VOLUME_HINT = "TIFF stack, folder, file.h5::/path"


@app.command()
def link(
    diagnosis: Annotated[
        Path, typer.Argument(help="Results file of the cell (from diagnose or run).")
    ],
    xct: Annotated[str, typer.Argument(help="X-ray CT volume: TIFF stack, folder, file.h5::/path")],
    nxct: Annotated[Path, typer.Argument(help="NXCT file of the volumes (from nxct).")],
    location: Annotated[
        Path,
        typer.Argument(help="Location file of the slice (from locate), or a twin's truth.h5."),
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Link file (NeXus HDF5); its PNG figures beside it."),
    ],
    nct: Annotated[
        str | None,
        typer.Option(help="Neutron CT volume, for the dossiers' neutron and fused panels."),
    ] = None,
    registration_error_um: Annotated[float | None, option(K, "registration_error_um")] = None,
    largest_case_a: Annotated[int | None, option(K, "largest_case_a")] = None,
    dossier_half_width_um: Annotated[float | None, option(K, "dossier_half_width_um")] = None,
) -> None:
    """Link each agglomerate to the bend of the Cu collector it sits on in 3D, measure the
    case A/B threshold from the volume, and draw the slice in the volume and the dossiers.
    The volumes are read at the voxel sizes the location and NXCT files were made with."""
    from jellyroll.io.volumes import refuse_same_volume, split_dataset
    from jellyroll.locate.link import size_bin_text
    from jellyroll.locate.link_run import run_link

    with reported_errors():
        volumes = {"X-ray": xct, **({"neutron": nct} if nct is not None else {})}
        files = {name: split_dataset(given)[0] for name, given in volumes.items()}
        check_output_file(output, "link.h5", "link", [diagnosis, nxct, location, *files.values()])
        check_input_file(diagnosis, "results file", "from `jellyroll diagnose` or `jellyroll run`")
        check_input_file(nxct, "NXCT file", "from `jellyroll nxct XCT NCT -o NXCT.h5`")
        check_input_file(
            location, "location file", "from `jellyroll locate RUN.h5 XCT -o LOCATION.h5`"
        )
        for name, path in files.items():  # the volumes are opened after the tables else
            if not path.exists():
                raise ValueError(
                    f"{path}: no such file or folder; give the {name} CT volume ({VOLUME_HINT})"
                )
        if nct is not None:
            refuse_same_volume(xct, nct)
        options = options_from(
            LinkOptions,
            {
                "registration_error_um": registration_error_um,
                "largest_case_a": largest_case_a,
                "dossier_half_width_um": dossier_half_width_um,
            },
        )
        start = time.perf_counter()
        with (
            warnings_printed(console),
            console.status("link: the agglomerates to the 3D bends, dossiers"),
        ):
            result = run_link(diagnosis, xct, nxct, location, output, options, nct=nct)
    linked = result.linked
    on_bend = int((linked["bend3d_id"] > 0).sum())
    table = Table(title=f"link: {on_bend} of {len(linked)} agglomerates on a 3D bend")
    for column in ("equivalent diameter", "agglomerates", "on a bend", "fraction"):
        table.add_column(column, justify="right")
    for row in result.size_bins.itertuples():
        if row.count == 0:  # an empty bin has no fraction
            continue
        size = size_bin_text(row.lower_um, row.upper_um)
        table.add_row(size, str(row.count), str(row.on_bend), f"{row.fraction:.2f}")
    console.print(table)
    if np.isfinite(result.threshold_um):
        console.print(
            f"threshold measured: {result.threshold_um:.1f} um (bent above, none below), "
            f"{result.misclassified} agglomerate(s) on the wrong side"
        )
    else:
        console.print("threshold measured: none (every agglomerate on one side of any cut)")
    for note in result.notes:
        console.print(f"note: {note}")
    for path in result.figures.values():
        console.print(f"figure: [bold]{path}[/bold]")
    console.print(f"link: [bold]{result.path}[/bold]; done in {time.perf_counter() - start:.1f} s")

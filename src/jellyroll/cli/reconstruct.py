"""``jellyroll reconstruct``: sinogram of a run file to (y, x, q) volume and attenuation map."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from jellyroll.cli import app, console
from jellyroll.progress import fraction_progress


@app.command()
def reconstruct(
    run: Annotated[Path, typer.Argument(help="Run file with /entry/sinogram (from reduce).")],
    method: Annotated[str, typer.Option(help="fbp, sart (the study's) or sirt.")] = "sart",
    iterations: Annotated[
        int, typer.Option(help="SART sweeps or SIRT iterations (ignored by fbp).")
    ] = 10,
    backend: Annotated[
        str,
        typer.Option(help="auto (= jellyroll), jellyroll (multi-channel) or astra (per channel)."),
    ] = "auto",
    channels: Annotated[
        str, typer.Option(help='"all", or q ranges in 1/angstrom: "1.67:1.73,4.45:4.62".')
    ] = "all",
    rotation_centre: Annotated[
        float | None,
        typer.Option(help="Rotation centre (mm, stage reading); default: the run file's."),
    ] = None,
    nonnegative: Annotated[
        bool, typer.Option(help="Clip at 0 after every update (turns off low-rank).")
    ] = False,
    self_absorption: Annotated[
        bool,
        typer.Option(help="Divide by the transmission through the attenuation slice first."),
    ] = False,
    energy: Annotated[
        float | None,
        typer.Option(
            help="Low-rank: fraction of the sinogram's squared norm kept (default 1 - 1e-8; "
            "lower it, e.g. 0.9999, for noisy data: fewer components, faster, denoised)."
        ),
    ] = None,
) -> None:
    """Reconstruct every q channel (or q ranges) and the attenuation slice into the run file."""
    from jellyroll.io.runfile import RunFileError
    from jellyroll.recon.engine import check_method
    from jellyroll.recon.run import reconstruct_run

    try:
        check_method(method, backend, iterations)
    except ValueError as error:  # a bad option value: a usage error, as typer reports them
        raise typer.BadParameter(str(error)) from error
    start = time.perf_counter()
    with fraction_progress(console, f"reconstructing ({method})") as update:
        try:
            done = reconstruct_run(
                run,
                method=method,
                iterations=iterations,
                backend=backend,
                channels=channels,
                rotation_centre_mm=rotation_centre,
                nonnegative=nonnegative,
                self_absorption=self_absorption,
                **({} if energy is None else {"energy": energy}),
                progress=update,
            )
        except (RunFileError, ValueError) as error:
            console.print(f"[red]error:[/red] {error}")
            raise typer.Exit(1) from error
    result = done.result
    ny, nx, nq = result.data.shape
    console.print(
        f"wrote [bold]{done.path}[/bold]: /entry/reconstruction ({ny} x {nx} x {nq} q channels, "
        f"{result.geometry.pixel_size_um:g} um pixels, {method}, backend {result.backend})"
    )
    if result.rank is not None:
        console.print(
            f"low-rank: {result.rank} components, sinogram residual {result.residual:.1e}"
        )
    if done.attenuation:
        console.print("wrote /entry/maps/attenuation (1/um)")
    console.print(
        f"rotation centre {done.rotation_centre_mm:.5f} mm; done in "
        f"{time.perf_counter() - start:.1f} s"
    )

"""``jellyroll reconstruct``: sinogram of a run file to (y, x, q) volume and attenuation slice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from jellyroll.cli import app, console
from jellyroll.cli._common import option, reported_errors
from jellyroll.options import options_from
from jellyroll.progress import fraction_progress
from jellyroll.recon.options import ReconstructOptions

Recon = ReconstructOptions


@app.command()
def reconstruct(
    run: Annotated[Path, typer.Argument(help="Run file with /entry/sinogram (from reduce).")],
    method: Annotated[str | None, option(Recon, "method")] = None,
    iterations: Annotated[int | None, option(Recon, "iterations")] = None,
    backend: Annotated[str | None, option(Recon, "backend")] = None,
    channels: Annotated[str | None, option(Recon, "channels")] = None,
    rotation_centre: Annotated[float | None, option(Recon, "rotation_centre_mm")] = None,
    nonnegative: Annotated[
        bool | None, option(Recon, "nonnegative", "--nonnegative/--signed")
    ] = None,
    self_absorption: Annotated[
        bool | None, option(Recon, "self_absorption", "--self-absorption/--no-self-absorption")
    ] = None,
    rank: Annotated[str | None, option(Recon, "rank")] = None,
    energy: Annotated[float | None, option(Recon, "energy")] = None,
) -> None:
    """Reconstruct every q channel (or q ranges) and the attenuation slice into the run file.

    The run's maps, computed from the previous reconstruction, are deleted.
    """
    from jellyroll.recon.run import run_reconstruct
    from jellyroll.results.store import refuse_not_a_run

    with reported_errors():
        refuse_not_a_run(run, "the run file")
        options = options_from(
            ReconstructOptions,
            {
                "method": method,
                "iterations": iterations,
                "backend": backend,
                "channels": channels,
                "rotation_centre_mm": rotation_centre,
                "nonnegative": nonnegative,
                "self_absorption": self_absorption,
                "rank": rank,
                "energy": energy,
            },
        )
        start = time.perf_counter()
        with fraction_progress(console, f"reconstructing ({options.method})") as update:
            done = run_reconstruct(run, options, progress=update)
    result = done.result
    ny, nx, nq = result.shape
    console.print(
        f"wrote [bold]{done.path}[/bold]: /entry/reconstruction ({ny} x {nx} x {nq} q channels, "
        f"{result.geometry.pixel_size_um:g} um pixels, {options.method}, backend {result.backend})"
    )
    if result.rank is not None:
        share = result.noise_energy
        said = (
            f"{share:.1e} of the energy"
            if not share >= 1  # expected noise over the data's own energy: mostly noise
            else f"{share:.2g} times the data's energy: the sinogram is mostly noise"
        )
        floor = (
            f", above the noise floor (noise {said}, from the {result.noise_from})"
            if result.rank_rule == "noise"
            else ""
        )
        console.print(
            f"low-rank: {result.rank} components{floor}, sinogram residual {result.residual:.1e}"
        )
    if done.attenuation:
        console.print("wrote /entry/reconstruction/attenuation (1/um)")
    for note in done.notes:
        console.print(f"note: {note}")
    console.print(
        f"rotation centre {done.rotation_centre_mm:.5f} mm; done in "
        f"{time.perf_counter() - start:.1f} s"
    )

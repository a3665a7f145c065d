"""``jellyroll phantom`` and ``jellyroll demo``: the digital twin."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jellyroll.cli import app, console
from jellyroll.cli._common import reported_errors


@app.command()
def phantom(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")],
    preset: Annotated[
        str,
        typer.Option(
            help="Cell state: fresh_discharged, fresh_charged, aged_discharged, aged_charged."
        ),
    ] = "aged_charged",
    size: Annotated[
        str,
        typer.Option(
            help="tiny (tests), small (20 um step), demo (10 um), paper (the study's grid)."
        ),
    ] = "small",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same cell.")] = 0,
    raw: Annotated[
        bool | None,
        typer.Option(
            "--raw/--integrated",
            help="Write raw 2D frames, or pre-integrated patterns (default: by size).",
        ),
    ] = None,
    nxct: Annotated[bool, typer.Option(help="Also write the X-ray and neutron CT volumes.")] = True,
    operando_steps: Annotated[
        int, typer.Option(help="Also write an operando charge series of N slices (0: none).")
    ] = 0,
) -> None:
    """Simulate a digital twin cell and every measurement of it, with its ground truth.

    OUTPUT is a new or empty folder, or one holding only an earlier twin, which is then
    replaced whole (no file of it is left to be taken for the new twin's).
    """
    from jellyroll.phantom.write import write_phantom

    _check_settings(preset=preset, size=size, seed=seed, operando_steps=operando_steps)
    start = time.perf_counter()
    with reported_errors():
        written = write_phantom(
            output,
            preset=preset,
            size=size,
            seed=seed,
            raw=raw,
            nxct=nxct,
            operando_steps=operando_steps,
            console=console,
        )
    table = Table(title=f"phantom {preset} ({size}, seed {seed})", show_lines=False)
    table.add_column("file")
    table.add_column("what")
    for path, what in written.items():
        table.add_row(str(path), what)
    console.print(table)
    console.print(f"done in {time.perf_counter() - start:.1f} s")


@app.command()
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")] = Path(
        "out/demo"
    ),
    size: Annotated[
        str,
        typer.Option(help="Twin size: demo (10 um step, the study's), small (20 um) or tiny."),
    ] = "demo",
    seed: Annotated[int, typer.Option(help="Seed of the twin cell.")] = 0,
) -> None:
    """Build a fresh and an aged twin, run the whole pipeline on both, write the report.

    OUTPUT holds no demo.toml but an earlier demo's. Twins already in OUTPUT/twins are
    reused when they were built with this size and seed; any other is rebuilt (and the
    stages downstream of it rerun).
    """
    from jellyroll.phantom.write import (
        demo_config,
        foreign_demo_config,
        twin_mismatch,
        write_phantom,
    )
    from jellyroll.pipeline import load_config, run_pipeline

    _check_settings(preset="fresh_charged", size=size, seed=seed, operando_steps=0)
    start = time.perf_counter()
    twins = output / "twins"
    with reported_errors():
        if output.exists() and not output.is_dir():  # an OS error named output/twins/...
            raise ValueError(f"{output}: a file, not a folder; give a new or empty output folder")
        foreign = foreign_demo_config(output)
        if foreign is not None:  # a user's own demo.toml in the folder was replaced, exit 0
            raise ValueError(
                f"{foreign} exists and is no demo configuration of jellyroll's; give a new "
                "or empty folder, or an earlier demo's, as -o"
            )
        for preset in ("fresh_charged", "aged_charged"):
            folder = twins / preset
            # CT volumes for the aged cell only: its report gets the correlative section (the
            # slice in the volume, fused views, bends in 3D, dossiers); one pair shows it
            nxct = preset == "aged_charged"
            reason = twin_mismatch(folder, preset=preset, size=size, seed=seed, nxct=nxct)
            if reason is None:
                continue
            console.rule(f"twin {preset}")
            if (folder / "truth.h5").exists():
                console.print(f"rebuilding the twin in {folder}: {reason}")
            write_phantom(folder, preset=preset, size=size, seed=seed, nxct=nxct, console=console)
        config = demo_config(output, twins, size)
        console.rule("pipeline")
        result = run_pipeline(load_config(config), console=console)
    for entry in result.log.entries:
        console.print(f"  {entry['stage']:<32} {entry['status']:<11} {entry['seconds']:7.1f} s")
    console.print(f"demo done in {time.perf_counter() - start:.0f} s")
    console.print(f"report: [bold]{result.report}[/bold]")


def _check_settings(**settings: str | int) -> None:
    """Exit 2 naming the setting when a twin cannot be made with ``settings`` (see
    :func:`~jellyroll.phantom.write.check_phantom_settings`), before anything is written."""
    from jellyroll.options import OptionsError
    from jellyroll.phantom.write import check_phantom_settings

    with reported_errors():
        try:
            check_phantom_settings(**settings)  # type: ignore[arg-type]
        except ValueError as error:
            raise OptionsError(str(error)) from None

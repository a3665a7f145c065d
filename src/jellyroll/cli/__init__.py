"""The ``jellyroll`` command line (thin: parses options, calls the library, reports).

One module per command group; each registers its commands on :data:`app` when imported.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from jellyroll import __version__

app = typer.Typer(
    name="jellyroll",
    help="Correlative multimodal tomography of cylindrical Li-ion cells.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


def _version(value: bool) -> None:
    if value:
        console.print(f"jellyroll {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """jellyroll: SWAXS-CT and NXCT of wound Li-ion cells, from raw frames to diagnosis."""


from jellyroll.cli import maps as _maps  # noqa: E402, F401
from jellyroll.cli import phantom as _phantom  # noqa: E402, F401  (registers commands)
from jellyroll.cli import reconstruct as _reconstruct  # noqa: E402, F401
from jellyroll.cli import reduce as _reduce  # noqa: E402, F401
from jellyroll.cli import run as _run  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    app()

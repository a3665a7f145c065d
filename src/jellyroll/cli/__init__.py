"""The ``jellyroll`` command line (thin: parses options, calls the stage drivers, reports).

One module per command group; each registers its commands on :data:`app` when imported.
Options take their defaults and help from the stage's options model
(:func:`jellyroll.cli._common.option`); errors end in one line on stderr (exit 2 for
usage, 1 for data), with the traceback only under ``--debug``.
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
    pretty_exceptions_enable=False,
)
console = Console()
error_console = Console(stderr=True)
state = {"debug": False}


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
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an error.")
    ] = False,
) -> None:
    """jellyroll: SWAXS-CT and NXCT of wound Li-ion cells, from raw frames to diagnosis."""
    state["debug"] = debug


from jellyroll.cli import diagnose as _diagnose  # noqa: E402, F401  (registers commands)
from jellyroll.cli import link as _link  # noqa: E402, F401
from jellyroll.cli import locate as _locate  # noqa: E402, F401
from jellyroll.cli import maps as _maps  # noqa: E402, F401
from jellyroll.cli import nxct as _nxct  # noqa: E402, F401
from jellyroll.cli import operando as _operando  # noqa: E402, F401
from jellyroll.cli import phantom as _phantom  # noqa: E402, F401
from jellyroll.cli import reconstruct as _reconstruct  # noqa: E402, F401
from jellyroll.cli import reduce as _reduce  # noqa: E402, F401
from jellyroll.cli import run as _run  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    app()

"""What every command shares: options documented from the stage's options model, and one
way to end on an error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from rich.markup import escape

from jellyroll.cli import error_console, state
from jellyroll.options import OptionsError

USAGE_ERROR = 2
DATA_ERROR = 1
INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT, as shells report it)."""


def option(model: type[BaseModel], name: str, *declarations: str, **kwargs: Any) -> Any:
    """A typer option for field ``name`` of ``model``: its description and default as help.

    The option's own default is None ("not given"): the model fills in its default, so a
    default exists only in the model.
    """
    return typer.Option(*declarations, help=_help_text(model, name), show_default=False, **kwargs)


def _help_text(model: type[BaseModel], name: str) -> str:
    """The help of the option of field ``name`` of ``model``: its description and default."""
    info = model.model_fields[name]
    default = info.default
    description = info.description or ""
    if default is None and ("default" in description or description.rstrip(". ").endswith("]")):
        # None stands for a value the description gives ("[0.03]", "(default 10)"):
        # "[default: none]" after it said there was none
        return escape(description)
    shown = (
        "none"
        if default is None
        else str(default).lower()
        if isinstance(default, bool)
        else default
    )
    # escaped: the help is rich markup, where "[default: 1000]" is a style tag, dropped
    return escape(f"{info.description} [default: {shown}]")


SPLIT_FIELDS = {
    "radial_range": "--q-min/--q-max",
    "radial_range.0": "--q-min",
    "radial_range.1": "--q-max",
    "window_percentiles": "--window-low/--window-high",
    "window_percentiles.0": "--window-low",
    "window_percentiles.1": "--window-high",
}
"""Options fields (and their items) that two command-line options set together, by the
options' flags (``radial_range.0: ...`` named no option the user had typed)."""


def _flag(model: type[BaseModel] | None, name: str) -> str:
    """The command-line option that sets field ``name`` of ``model`` in the running command
    (``--block`` for ``block_frames``), found by the help :func:`option` gave it; ``name``
    itself where none is found (a field of a run configuration, an option of no command)."""
    try:  # typer vendors click (0.2x); before, click's own
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context
    context = get_current_context(silent=True)
    if context is None:
        return name
    spelt = {opt for param in context.command.params for opt in param.opts}
    split = SPLIT_FIELDS.get(name)
    if split is not None and set(split.split("/")) <= spelt:
        return split
    if model is None or name not in model.model_fields:
        return name
    wanted = _help_text(model, name)
    hits = [p for p in context.command.params if getattr(p, "help", None) == wanted]
    if len(hits) != 1 or not hits[0].opts:
        return name
    return max(hits[0].opts, key=len)


def _options_message(error: OptionsError) -> str:
    """The message of ``error`` with each option named as the command line spells it."""
    if not error.problems:
        return str(error)
    return "\n".join(
        f"{_flag(error.model, key)}: {message}" if key else message
        for key, message in error.problems
    )


def check_output_file(
    output: Path, example: str, command: str, inputs: Iterable[str | Path] = ()
) -> None:
    """Refuse, before any work, an output path that is one of ``inputs``, an existing folder
    (found only at the final rename otherwise, in a message naming a temporary file), or an
    existing file that ``jellyroll command`` did not write (a raw scan, a CT volume, another
    stage's result: replaced whole at the end, exit 0). An empty file may be replaced."""
    from jellyroll.io.provenance import refuse_overwrite

    refuse_overwrite([output], inputs)
    if output.is_dir():
        raise IsADirectoryError(f"{output} is a folder; give a file name, e.g. {output / example}")
    if not output.is_file() or output.stat().st_size == 0:
        return
    found = _written_by(output)
    if found == command:
        return
    what = "no output of jellyroll" if found is None else f"a {found} result of jellyroll"
    raise FileExistsError(
        f"{output} exists and is {what}, not the output of an earlier `jellyroll {command}`: "
        f"it would be replaced; give another file name (e.g. {output.with_name(example)}), "
        "or delete it first"
    )


def _written_by(path: Path) -> str | None:
    """The command (or stage) whose output the existing file ``path`` is: the stage its
    root records, ``reduce`` for a run index, ``report`` for a page that begins as the
    report's renderer begins every page; None for any other file (any HTML page was taken
    for a report: `report -o index.html` replaced a hand-written page, exit 0)."""
    import h5py

    from jellyroll.results.store import written_by_stage

    if h5py.is_hdf5(path):
        return written_by_stage(path)
    from jellyroll.report.html import is_report

    return "report" if is_report(path) else None


def check_input_file(path: Path, what: str, hint: str) -> None:
    """Refuse, before any work, an input ``path`` that is not a file, saying what it should
    be and how to make it (the run file's generic hint names another stage)."""
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"{path}: {state}; give the {what} ({hint})")


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one line on stderr and an exit code (2: the
    options, 1: the data or the files); ``--debug`` shows the traceback instead. Warnings
    are printed as ``warning: ...`` lines (reduce and reconstruct printed Python's, with a
    file, ``UserWarning`` and a line of jellyroll's source)."""
    from jellyroll.progress import warnings_printed

    try:
        with warnings_printed(error_console):
            yield
    except typer.Exit:
        raise
    except OptionsError as error:
        _fail(OptionsError(_options_message(error)), USAGE_ERROR, "option")
    except (ValueError, OSError, RuntimeError, KeyError) as error:
        _fail(error, DATA_ERROR, "error")
    except EOFError as error:  # np.load of an empty file: click printed only "Aborted."
        _fail(EOFError(f"an input file is empty or cut short ({error})"), DATA_ERROR, "error")
    except KeyboardInterrupt:  # Ctrl-C printed a blank line only
        if state["debug"]:
            raise
        error_console.print(
            "[yellow]interrupted[/yellow]: no output was left half-written; run the same "
            "command again to go on (a reduction from its last finished block, a run from "
            "its last finished stage)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(INTERRUPTED) from None


def _fail(error: Exception, code: int, what: str) -> None:
    if state["debug"]:
        raise error
    message = str(error).strip() or type(error).__name__
    if isinstance(error, OSError) and error.filename and str(error.filename) not in message:
        message = f"{error.filename}: {message}"
    lines = message.splitlines()
    error_console.print(f"[red]{what}:[/red] {escape(lines[0])}", highlight=False, soft_wrap=True)
    for line in lines[1:]:
        error_console.print(f"  {escape(line.strip())}", highlight=False, soft_wrap=True)
    raise typer.Exit(code) from None

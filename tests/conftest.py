"""Shared fixtures: the real measured data beside the checkout (``../shared/data/real``), the
tiny twin's written files."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

# numba's OpenMP threads spin between parallel regions while OMP_WAIT_POLICY is unset: with
# two pytest-xdist workers on two cores, one worker's spinning threads took the other's CPU
# (tests/recon and tests/test_saxs.py: 83-96 s, 54 s with passive waiting; results alike).
# Set before numba loads libgomp; the command-line runs the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import h5py
import numpy as np
import pytest
from hypothesis import settings

# CI runs the same examples every time (a red CI blocks the whole submission, and a random
# example found there can not be rerun); everywhere else the property tests explore anew
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def shared_real() -> Path:
    """Folder of real measured files; skips (saying why) when the checkout has no ../shared."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} not found (expected beside the checkout)")
    return REAL_DATA


SAXS_RUN_PIXEL_UM = 20.0


def _saxs_maps_run(folder: Path, intensity: np.ndarray) -> Path:
    """``folder/saxs.h5``: a run index linking a maps stage file of ``intensity`` (n, n) on
    :data:`SAXS_RUN_PIXEL_UM` pixels and a flat d* of 12 nm."""
    from jellyroll.results import Map, MapSet, write_map_set
    from jellyroll.results.store import stage_file

    run = folder / "saxs.h5"
    n = intensity.shape[0]
    axis = (np.arange(n) - (n - 1) / 2) * SAXS_RUN_PIXEL_UM
    maps = {"saxs_intensity": Map(intensity, "1/A"), "d_star_nm": Map(np.full((n, n), 12.0), "nm")}
    write_map_set(run, MapSet(maps, axis, axis), {})  # the maps stage file
    with h5py.File(run, "w") as index:  # an index linking the maps alone
        index["entry/maps"] = h5py.ExternalLink(stage_file(run, "maps").name, "/entry/maps")
    return run


@pytest.fixture(scope="session")
def saxs_maps_run() -> Callable[[Path, np.ndarray], Path]:
    """:func:`_saxs_maps_run`: a SAXS run file holding only the given intensity map."""
    return _saxs_maps_run


def made_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]
) -> Path:
    """The folder ``name`` made by ``make(folder)`` once for the whole test run: each
    pytest-xdist worker runs its own session, so the first to ask makes it (under a lock in
    the run's shared temporary folder) and the others wait for it and read it."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, made = shared / name, shared / f"{name}.made"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not made.exists():
            shutil.rmtree(folder, ignore_errors=True)
            make(folder)
            made.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_twin_files(tmp_path_factory) -> Path:
    """Folder of the tiny twin's files (seed 2, pre-integrated scans, NXCT volumes, truth):
    written once per test run, read only by the tests that share it."""
    from jellyroll.phantom.write import write_phantom

    def write(out: Path) -> None:
        write_phantom(out, preset="aged_charged", size="tiny", seed=2, raw=False)

    return made_once(tmp_path_factory, "tiny_twin", write)


KILLER = """
import importlib, os, sys
module, name, after = sys.argv[1], sys.argv[2], int(sys.argv[3])
target = importlib.import_module(module)
original = getattr(target, name)
calls = [0]
def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] > after:
        os._exit(137)
    return original(*args, **kwargs)
setattr(target, name, dying)
from jellyroll.cli import app
app(sys.argv[4:])
"""


def jellyroll_process(*args: str, kill: tuple[str, str, int] | None = None) -> int:
    """Exit code of ``jellyroll ARGS``: with ``kill = (module, function, n)`` in a new
    process, ended with ``os._exit(137)`` (no cleanup, as SIGKILL) at the call after the
    ``n``-th of ``module.function``; without, in this process (the runs before and after a
    kill read and write only files, and a new process costs 2.5 s of imports)."""
    if kill is None:
        from typer.testing import CliRunner

        from jellyroll.cli import app

        return CliRunner().invoke(app, list(args)).exit_code
    result = subprocess.run(
        [sys.executable, "-c", KILLER, kill[0], kill[1], str(kill[2]), *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.returncode


@pytest.fixture(scope="session")
def jellyroll_cli() -> Callable[..., int]:
    """:func:`jellyroll_process`, for tests that kill the command line and run it again."""
    return jellyroll_process

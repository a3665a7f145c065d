"""A process killed at any point of reduce, reconstruct, maps or run, then run again, gives
the result of an uninterrupted run (array_equal) and leaves no orphan files.

The kill is ``os._exit`` at the n-th call of a function on the path of the stage (no
``finally`` runs, as with SIGKILL), injected by a small driver in a subprocess.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from jellyroll.phantom.write import write_phantom

REDUCE = ["--npt", "400", "--q-min", "0.8", "--q-max", "5.2", "--block", "100"]
RECONSTRUCT = ["--iterations", "3"]
EXPECTED = {
    "run.h5", "run.sinogram.h5", "run.reconstruction.h5", "run.maps.h5",
    "run_graphite_rgb.png", "run_nmc_rgb.png",
}  # fmt: skip


def _chain(_jellyroll: Callable[..., int], scan: Path, folder: Path) -> Path:
    """The uninterrupted chain in ``folder``; the run folder as each stage left it is kept
    in ``folder/after_<stage>`` (a killed stage's test starts from the stages before it,
    copied, instead of running them again)."""
    run = folder / "run.h5"
    assert _jellyroll("reduce", str(scan), "-o", str(run), *REDUCE) == 0
    shutil.copytree(folder, folder.with_name(f"{folder.name}_after_reduce"))
    assert _jellyroll("reconstruct", str(run), *RECONSTRUCT) == 0
    shutil.copytree(folder, folder.with_name(f"{folder.name}_after_reconstruct"))
    assert _jellyroll("maps", str(run)) == 0
    return run


def _arrays(run: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(run, "r") as f:
        for name in ("sinogram/data", "sinogram/errors", "reconstruction/data"):
            out[name] = f[f"entry/{name}"][()]
        for name in f["entry/maps"]:
            out[f"maps/{name}"] = f[f"entry/maps/{name}/data"][()]
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory, jellyroll_cli) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """The scan, the uninterrupted run and its arrays."""
    out = tmp_path_factory.mktemp("kill")
    write_phantom(out / "twin", preset="aged_charged", size="tiny", seed=4, nxct=False)
    scan = out / "twin" / "waxs_scan.h5"
    (out / "reference").mkdir()
    run = _chain(jellyroll_cli, scan, out / "reference")
    return scan, run, _arrays(run)


KILLS = {
    "reduce, after two blocks": ("reduce", ("jellyroll.reduce.run", "_place_block", 2)),
    "reduce, in the final pass": ("reduce", ("jellyroll.reduce.run", "_minus_air", 5)),
    "reduce, writing the sinogram": ("reduce", ("jellyroll.results.store", "provenance_json", 0)),
    "reduce, before the index": ("reduce", ("jellyroll.reduce.run", "write_index", 0)),
    "reconstruct, in the sweeps": ("reconstruct", ("jellyroll.recon.run", "reconstruct", 0)),
    "reconstruct, writing": ("reconstruct", ("jellyroll.results.store", "provenance_json", 0)),
    "reconstruct, before the index": ("reconstruct", ("jellyroll.results.store", "write_index", 1)),
    "maps, writing": ("maps", ("jellyroll.results.store", "provenance_json", 0)),
    "maps, drawing": ("maps", ("jellyroll.maps.run", "_figures", 0)),
}


@pytest.mark.parametrize("case", sorted(KILLS))
def test_kill_then_rerun_equals_an_uninterrupted_run(
    reference, jellyroll_cli, tmp_path: Path, case: str
) -> None:
    _jellyroll = jellyroll_cli
    scan, reference_run, expected = reference
    stage, kill = KILLS[case]
    run = tmp_path / "run.h5"
    arguments = {
        "reduce": ("reduce", str(scan), "-o", str(run), *REDUCE),
        "reconstruct": ("reconstruct", str(run), *RECONSTRUCT),
        "maps": ("maps", str(run)),
    }
    order = list(arguments)
    if stage != "reduce":  # the stages before, as the uninterrupted chain left them
        before = order[order.index(stage) - 1]
        shutil.copytree(reference_run.parent.with_name(f"reference_after_{before}"), tmp_path,
                        dirs_exist_ok=True)  # fmt: skip
    assert _jellyroll(*arguments[stage], kill=kill) == 137, "the kill point was not reached"
    for after in order[order.index(stage) :]:
        assert _jellyroll(*arguments[after]) == 0
    got = _arrays(run)
    assert got.keys() == expected.keys()
    for name, values in expected.items():
        assert np.array_equal(got[name], values, equal_nan=True), name
    assert {p.name for p in tmp_path.iterdir()} == EXPECTED  # no .part, .lock or .partial

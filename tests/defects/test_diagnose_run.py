"""run_diagnose on run files: what it refuses."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from jellyroll.defects.run import run_diagnose
from jellyroll.io.provenance import OutputWouldOverwriteInputError
from jellyroll.results import Map, MapSet, write_map_set
from jellyroll.results.store import RunFileError, stage_file

N = 48


def _saxs_run(tmp_path: Path, intensity: np.ndarray) -> Path:
    """A run index linking a maps stage file of ``intensity`` (N, N) and a flat d*."""
    run = tmp_path / "saxs.h5"
    axis = (np.arange(N) - (N - 1) / 2) * 20.0
    maps = {"saxs_intensity": Map(intensity, "1/A"), "d_star_nm": Map(np.full((N, N), 12.0), "nm")}
    write_map_set(run, MapSet(maps, axis, axis), {})  # the maps stage file
    with h5py.File(run, "w") as index:  # an index linking the maps alone
        index["entry/maps"] = h5py.ExternalLink(stage_file(run, "maps").name, "/entry/maps")
    return run


@pytest.mark.parametrize(("fill", "what"), [(np.nan, "no finite value"), (0.0, "one value")])
def test_an_empty_saxs_map_is_refused(tmp_path: Path, fill: float, what: str) -> None:
    """An all-NaN or all-zero SAXS intensity map was diagnosed as "0 agglomerates" (a
    defect share of NaN), exit 0: nothing told the user the map was empty."""
    run = _saxs_run(tmp_path, np.full((N, N), fill))
    with pytest.raises(RunFileError, match=rf"saxs\.h5.*saxs_intensity holds {what}"):
        run_diagnose({"saxs": run}, tmp_path / "diagnosis.h5")


def test_the_diagnosis_never_replaces_a_stage_file_of_its_runs(tmp_path: Path) -> None:
    """`-o RUN.maps.h5` replaced the SAXS run's maps with the diagnosis, exit 0: only the
    index file was compared with the output."""
    run = _saxs_run(tmp_path, np.random.default_rng(0).random((N, N)))
    before = stage_file(run, "maps").read_bytes()
    with pytest.raises(OutputWouldOverwriteInputError, match=r"saxs\.maps\.h5"):
        run_diagnose({"saxs": run}, stage_file(run, "maps"))
    assert stage_file(run, "maps").read_bytes() == before

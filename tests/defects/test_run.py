"""run_diagnose on run files: what it refuses."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from jellyroll.defects.run import run_diagnose
from jellyroll.results import Map, MapSet, write_map_set
from jellyroll.results.store import RunFileError, stage_file

N = 48


@pytest.mark.parametrize(("fill", "what"), [(np.nan, "no finite value"), (0.0, "one value")])
def test_an_empty_saxs_map_is_refused(tmp_path: Path, fill: float, what: str) -> None:
    """An all-NaN or all-zero SAXS intensity map was diagnosed as "0 agglomerates" (a
    defect share of NaN), exit 0: nothing told the user the map was empty."""
    run = tmp_path / "saxs.h5"
    axis = (np.arange(N) - (N - 1) / 2) * 20.0
    maps = {
        "saxs_intensity": Map(np.full((N, N), fill), "1/A"),
        "d_star_nm": Map(np.full((N, N), 12.0), "nm"),
    }
    write_map_set(run, MapSet(maps, axis, axis), {})  # the maps stage file
    with h5py.File(run, "w") as index:  # an index linking the maps alone
        index["entry/maps"] = h5py.ExternalLink(stage_file(run, "maps").name, "/entry/maps")
    with pytest.raises(RunFileError, match=rf"saxs\.h5.*saxs_intensity holds {what}"):
        run_diagnose({"saxs": run}, tmp_path / "diagnosis.h5")

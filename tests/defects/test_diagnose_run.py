"""run_diagnose on run files: what it refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jellyroll.defects.run import run_diagnose
from jellyroll.io.provenance import OutputWouldOverwriteInputError
from jellyroll.results.store import RunFileError, stage_file

N = 48


def _disk_map(sign: float) -> np.ndarray:
    """``sign`` x (a disk of SAXS intensity 1 with a bright spot, noise +-0.05 around it)."""
    y, x = np.mgrid[:N, :N] - (N - 1) / 2
    disk = (np.hypot(x, y) < 0.4 * N) + 4.0 * (np.hypot(x - 5, y) < 2)
    return sign * (disk + 0.05 * np.random.default_rng(1).standard_normal((N, N)))


@pytest.mark.parametrize(
    ("intensity", "what"),
    [
        (np.full((N, N), np.nan), "has no finite value"),
        (np.zeros((N, N)), "has one value"),
        # the holes of a negated map were found as 17 agglomerates, exit 0
        (_disk_map(-1.0), "is mostly below zero"),
    ],
)
def test_an_empty_or_negated_saxs_map_is_refused(
    tmp_path: Path, intensity: np.ndarray, what: str, saxs_maps_run
) -> None:
    """An all-NaN or all-zero SAXS intensity map was diagnosed as "0 agglomerates" (a
    defect share of NaN), exit 0: nothing told the user the map was empty."""
    run = saxs_maps_run(tmp_path, intensity)
    with pytest.raises(RunFileError, match=rf"saxs\.h5.*saxs_intensity {what}"):
        run_diagnose({"saxs": run}, tmp_path / "diagnosis.h5")


def test_a_map_whose_noise_dips_below_zero_is_diagnosed(tmp_path: Path, saxs_maps_run) -> None:
    """Control: a reconstruction's noise below 0 around the cell is no reason to refuse."""
    run_diagnose({"saxs": saxs_maps_run(tmp_path, _disk_map(1.0))}, tmp_path / "diagnosis.h5")
    assert (tmp_path / "diagnosis.h5").is_file()


def test_the_diagnosis_never_replaces_a_stage_file_of_its_runs(
    tmp_path: Path, saxs_maps_run
) -> None:
    """`-o RUN.maps.h5` replaced the SAXS run's maps with the diagnosis, exit 0: only the
    index file was compared with the output."""
    run = saxs_maps_run(tmp_path, np.random.default_rng(0).random((N, N)))
    before = stage_file(run, "maps").read_bytes()
    with pytest.raises(OutputWouldOverwriteInputError, match=r"saxs\.maps\.h5"):
        run_diagnose({"saxs": run}, stage_file(run, "maps"))
    assert stage_file(run, "maps").read_bytes() == before

"""The twin the 2D-3D link and the dossiers are tested on, simulated once per session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jellyroll.defects.bends3d import find_bends_3d
from jellyroll.phantom.parameters import SIZES, AgglomerateParameters, CellParameters
from jellyroll.phantom.twin import Twin, make_twin
from jellyroll.phantom.write import TwinNXCT, simulate_twin_nxct

SEED = 11
LINK_SIZE = SIZES["tiny"].model_copy(
    update={
        "name": "link",
        "cell": CellParameters(
            outer_diameter_um=3000.0,
            casing_um=100.0,
            hollow_diameter_um=500.0,
            turns=3.0,
            agglomerates=AgglomerateParameters(count=20, count_large=5),
        ),
        "n_translations": 160,
        "nxct_slices": 40,
        "nxct_supersample": 1,
    }
)
"""A 3 mm, three-turn cell with 25 agglomerates (5 large: case B), 20 um map pixels, and a
400 um tall NXCT stack (X-ray voxels 20 um) that holds every bend's axial reach."""


@pytest.fixture(scope="session")
def twin() -> Twin:
    return make_twin("aged_charged", LINK_SIZE, seed=SEED)


@pytest.fixture(scope="session")
def twin_nxct(twin: Twin) -> TwinNXCT:
    return simulate_twin_nxct(twin, seed=SEED)


@pytest.fixture(scope="session")
def measured_bends(twin_nxct: TwinNXCT) -> pd.DataFrame:
    """Bends traced through every slice of the twin's X-ray volume (as `jellyroll nxct`).
    The presence filter allows half the slices: the 400 um test stack is short beside a
    bend's ~130 um axial reach (a real stack is mm tall)."""
    volumes = twin_nxct.volumes
    bends, _ = find_bends_3d(volumes.xray, volumes.xray_voxel_um, slice_step=1, max_presence=0.5)
    return bends


def _in_a_wider_array(volume: np.ndarray, margin: int) -> np.ndarray:
    """``volume`` (nz, ny, nx) NaN outside the circle inscribed in its slices, centred in
    an array ``margin`` (>= 0) voxels wider on each side, NaN there: a reconstruction's
    circle inside its array, or inside a wider one."""
    nz, ny, nx = volume.shape
    y, x = np.indices((ny, nx))
    inner = np.array(volume, dtype=np.float32)
    inner[:, np.hypot(y - (ny - 1) / 2, x - (nx - 1) / 2) > min(ny, nx) / 2] = np.nan
    wide = np.full((nz, ny + 2 * margin, nx + 2 * margin), np.nan, np.float32)
    wide[:, margin : margin + ny, margin : margin + nx] = inner
    return wide


@pytest.fixture
def in_a_wider_array():
    """:func:`_in_a_wider_array`: a volume as a reconstruction's circle in a wider array."""
    return _in_a_wider_array

"""Shared fixtures of the reconstruction tests: the tiny twin, projected once."""

from __future__ import annotations

import numpy as np
import pytest

from jellyroll.phantom.parameters import SIZES
from jellyroll.phantom.scan import project_twin, scan_geometry
from jellyroll.phantom.twin import make_twin
from jellyroll.recon import ParallelGeometry


@pytest.fixture(scope="session")
def twin_case() -> dict:
    """Tiny aged, charged twin (104 x 104 pixels of 20 um), 3 x 20 interlaced angles."""
    size = SIZES["tiny"].model_copy(update={"angles_per_subset": 20})
    twin = make_twin("aged_charged", size, seed=1)
    scan = scan_geometry(twin)
    projections = project_twin(twin, scan)
    geometry = ParallelGeometry.from_scan(
        scan.sorted_angles_deg, scan.translations_mm, scan.rotation_centre_mm
    )
    # undo the transmission exactly: these tests are about the tomography
    undo = np.exp(projections.attenuation)[..., None]
    return {
        "twin": twin,
        "scan": scan,
        "projections": projections,
        "geometry": geometry,
        "waxs": projections.sinogram("waxs") * undo,
        "saxs": projections.sinogram("saxs") * undo,
        "truth_waxs": twin.patterns("waxs"),
        "truth_saxs": twin.patterns("saxs"),
    }

"""The inputs of `jellyroll link` and of the report's per-cell sections, made once per
session from the tiny twin's files (``tiny_twin_files``)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from jellyroll.defects.run import run_diagnose
from jellyroll.io.nexus import nx_group, read_table
from jellyroll.nxct.fuse import fuse_rgb
from jellyroll.results.nxct import (
    create_volume_datasets,
    write_bends_group,
    write_registration_group,
)

LOWER_UM = 90.0
"""How far (um) the slice of ``location_lower.h5`` lies below the true one: inside the
160 um tall X-ray stack, but beyond the bend's axial reach at the default registration
error (the bend's half extent, 46 um, + 20 um), within it at 100 um."""


@pytest.fixture(scope="session")
def linkable(tiny_twin_files: Path, saxs_maps_run, tmp_path_factory) -> dict[str, Path]:
    """The tiny twin's cell ``twin`` ready to link: ``results`` (`jellyroll diagnose` of its
    true SAXS intensity map, 20 um pixels), its volumes ``xct`` and ``nct``, an ``nxct``
    file holding the true registration, labels and bends (the fused volume its X-ray
    channel), the true placement as ``location`` (its truth.h5, which the link reads as
    a location) and ``lower`` (a location file of the slice :data:`LOWER_UM` lower)."""
    folder = tmp_path_factory.mktemp("link_cli")
    truth = tiny_twin_files / "truth.h5"
    with h5py.File(truth, "r") as f:
        saxs = f["/entry/maps/saxs_intensity/data"][()]
        nxct = f["/entry/nxct"]
        nct_to_xct, map_to_xct = nxct["nct_to_xct"][()], nxct["map_to_xct"][()]
        bends = read_table(nxct["bends"])
        labels = nxct["labels"]
        names = {int(k): v for k, v in json.loads(labels.attrs["names"]).items()}
        labels, voxel_um = labels[()], float(labels.attrs["voxel_um"])
    run_diagnose(
        {"saxs": saxs_maps_run(folder, saxs)}, folder / "results.h5", name="twin", label="twin"
    )
    xray = tifffile.imread(tiny_twin_files / "xct.tif").astype(np.float32)
    windows = {"xray": [0.0, float(xray.max())], "neutron": [0.0, 1.0]}
    with h5py.File(folder / "nxct.h5", "w") as f:
        entry = nx_group(f, "entry", "NXentry")
        write_registration_group(entry, nct_to_xct, metric="truth", metric_value=0.0, seconds=0.0)
        fused, written = create_volume_datasets(
            entry, xray.shape, voxel_um, grid="xct", label_names=names, windows=windows
        )
        fused[...] = fuse_rgb(xray, np.zeros_like(xray), windows["xray"], windows["neutron"])
        written[...] = labels
        write_bends_group(entry, bends)
    lower = map_to_xct.copy()
    lower[0, 3] -= LOWER_UM
    with h5py.File(folder / "location_lower.h5", "w") as f:
        f["/entry/location/swaxs_to_xct"] = lower
    return {
        "results": folder / "results.h5",
        "xct": tiny_twin_files / "xct.tif",
        "nct": tiny_twin_files / "nct.tif",
        "nxct": folder / "nxct.h5",
        "location": truth,
        "lower": folder / "location_lower.h5",
    }

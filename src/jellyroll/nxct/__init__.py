"""Correlative neutron and X-ray CT (NXCT): registration, resampling, fusion, segmentation.

Automatic registration of the two volumes of one cell (:mod:`jellyroll.nxct.register`),
slab-wise (out-of-core) resampling onto a common grid (:mod:`jellyroll.nxct.resample`), the
study's RGB fusion, red = X-ray, cyan = neutron (:mod:`jellyroll.nxct.fuse`), and the
segmentation of the registered pair into cell components (:mod:`jellyroll.nxct.segment`).
The stage's driver is :func:`jellyroll.nxct.run.run_nxct`.
"""

from jellyroll.nxct.fuse import VoxelSample, contrast_window, fuse_rgb, sample_voxels
from jellyroll.nxct.register import (
    CellAxis,
    Registration,
    apply_transform,
    downsample,
    downsample_levels,
    find_cell_axis,
    register_volumes,
    rms_error,
    rms_error_along,
)
from jellyroll.nxct.resample import resample_slabs, write_resampled
from jellyroll.nxct.segment import (
    LABEL_NAMES,
    Thresholds,
    classify,
    find_thresholds,
    segment_slabs,
)

__all__ = [
    "LABEL_NAMES",
    "CellAxis",
    "Registration",
    "Thresholds",
    "VoxelSample",
    "apply_transform",
    "classify",
    "contrast_window",
    "downsample",
    "downsample_levels",
    "find_cell_axis",
    "find_thresholds",
    "fuse_rgb",
    "register_volumes",
    "resample_slabs",
    "rms_error",
    "rms_error_along",
    "sample_voxels",
    "segment_slabs",
    "write_resampled",
]

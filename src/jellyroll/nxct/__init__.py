"""Correlative neutron and X-ray CT (NXCT): resampling, RGB fusion and segmentation.

Slab-wise (out-of-core) resampling onto a common grid (:mod:`jellyroll.nxct.resample`), the
study's RGB fusion, red = X-ray, cyan = neutron (:mod:`jellyroll.nxct.fuse`), and the
segmentation of the registered pair into cell components (:mod:`jellyroll.nxct.segment`).
"""

from jellyroll.nxct.fuse import VoxelSample, contrast_window, fuse_rgb, sample_voxels
from jellyroll.nxct.resample import resample_slabs, write_resampled
from jellyroll.nxct.segment import (
    LABEL_NAMES,
    Thresholds,
    classify,
    find_thresholds,
    fit_gmm_histogram,
    segment_slabs,
)

__all__ = [
    "LABEL_NAMES",
    "Thresholds",
    "VoxelSample",
    "classify",
    "contrast_window",
    "find_thresholds",
    "fit_gmm_histogram",
    "fuse_rgb",
    "resample_slabs",
    "sample_voxels",
    "segment_slabs",
    "write_resampled",
]

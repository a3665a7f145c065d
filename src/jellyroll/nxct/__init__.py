"""Correlative neutron and X-ray CT (NXCT): resampling, RGB fusion and segmentation.

Slab-wise (out-of-core) resampling onto a common grid (:mod:`jellyroll.nxct.resample`), the
study's RGB fusion, red = X-ray, cyan = neutron (:mod:`jellyroll.nxct.fuse`), and the
segmentation of the registered pair into cell components (:mod:`jellyroll.nxct.segment`).
"""

from jellyroll.nxct.fuse import VoxelSample, contrast_window, fuse_rgb, sample_voxels
from jellyroll.nxct.resample import resample_slabs, write_resampled

__all__ = [
    "VoxelSample",
    "contrast_window",
    "fuse_rgb",
    "resample_slabs",
    "sample_voxels",
    "write_resampled",
]

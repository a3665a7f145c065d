"""Correlative neutron and X-ray CT (NXCT): registration, resampling, fusion, segmentation.

Automatic registration of the two volumes of one cell (:mod:`jellyroll.nxct.register`),
slab-wise (out-of-core) resampling onto a common grid (:mod:`jellyroll.nxct.resample`), the
study's RGB fusion, red = X-ray, cyan = neutron (:mod:`jellyroll.nxct.fuse`), and the
segmentation of the registered pair into cell components (:mod:`jellyroll.nxct.segment`).
The stage's driver is :func:`jellyroll.nxct.run.run_nxct`.
"""

from jellyroll._lazy import lazy_exports

__all__ = lazy_exports(
    __name__,
    {
        "fuse": ["VoxelSample", "contrast_window", "fuse_rgb", "sample_voxels"],
        "register": [
            "CellAxis",
            "Registration",
            "apply_transform",
            "downsample",
            "downsample_levels",
            "find_cell_axis",
            "register_volumes",
            "rms_error",
            "rms_error_along",
        ],
        "resample": ["resample_slabs", "write_resampled"],
        "segment": ["LABEL_NAMES", "Thresholds", "classify", "find_thresholds", "segment_slabs"],
    },
)

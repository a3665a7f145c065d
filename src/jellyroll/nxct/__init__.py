"""Correlative neutron and X-ray CT (NXCT): registration of the two volumes of one cell."""

from jellyroll.nxct.register import (
    CellAxis,
    Registration,
    apply_transform,
    downsample,
    find_cell_axis,
    register_volumes,
    rms_error,
)

__all__ = [
    "CellAxis",
    "Registration",
    "apply_transform",
    "downsample",
    "find_cell_axis",
    "register_volumes",
    "rms_error",
]

"""Options of the correlative NXCT stage (``jellyroll nxct``, ``[nxct]`` of ``jellyroll run``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from jellyroll.options import StageOptions


class NXCTOptions(StageOptions):
    """Registration, fusion, segmentation and bends of an X-ray / neutron CT pair."""

    xct_voxel_um: float | None = Field(
        None, gt=0, description="X-ray voxel size (um); default: the file's metadata."
    )
    nct_voxel_um: float | None = Field(
        None, gt=0, description="Neutron voxel size (um); default: the file's metadata."
    )
    grid: Literal["xct", "nct"] = Field(
        "xct",
        description="Common grid of the fused volume and labels: the X-ray or neutron one (the "
        "finer neutron grid for the thin components' volumes: on a 20 um X-ray grid the 10 um "
        "foils are drawn a voxel thick, docs/nxct.md).",
    )
    scale: bool = Field(False, description="Refine an isotropic scale as well as the rigid motion.")
    max_voxels: int = Field(
        2_000_000, ge=10_000, description="Voxels of the downsampled copies the registration uses."
    )
    fine_voxels: int = Field(
        64_000_000,
        ge=0,
        description="Neutron voxels read at full resolution, in 16 blocks spread over the cell, "
        "for the registration's last level (0: none, nor the axial level after it).",
    )
    window_percentiles: tuple[float, float] = Field(
        (1.0, 99.0), description="Contrast window of each channel of the fused RGB (percentiles)."
    )
    check_order: bool = Field(
        True,
        description="Refuse a pair whose first volume looks like the neutron one (its bright "
        "class a large part of the cell, not the thin metals).",
    )
    segment: bool = Field(True, description="Segment the registered pair into components.")
    bends: bool = Field(True, description="Trace the Cu collector and find its bends in 3D.")
    bend_slice_step: int = Field(1, ge=1, description="Trace every n-th X-ray slice for bends.")
    slab: int = Field(16, ge=1, description="Slices per slab when streaming volumes.")

    @field_validator("window_percentiles")
    @classmethod
    def _ordered_percentiles(cls, value: tuple[float, float]) -> tuple[float, float]:
        """Refused at once, not after the registration: 0 <= low < high <= 100."""
        low, high = value
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(
                f"the window must satisfy 0 <= low < high <= 100 (percentiles), got {value}"
            )
        return value

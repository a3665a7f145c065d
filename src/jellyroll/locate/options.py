"""Options of the slice location stage (``jellyroll locate``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jellyroll.options import StageOptions


class LocateOptions(StageOptions):
    """Where a SWAXS-CT map lies in the X-ray volume, and the volumes resampled on its grid."""

    map: Literal["auto", "attenuation", "housing", "summed"] = Field(
        "auto",
        description="Map matched to the volume: the diode's attenuation, the WAXS housing "
        "ring, the summed scattering, or auto (the first of these that the run file holds).",
    )
    xct_voxel_um: float | None = Field(
        None, gt=0, description="X-ray voxel size (um); default: the file's metadata."
    )
    nct_voxel_um: float | None = Field(
        None, gt=0, description="Neutron voxel size (um); default: the file's metadata."
    )
    max_voxels: int = Field(
        16_000_000, ge=10_000, description="Voxels of the coarse copy of the X-ray volume."
    )
    max_points: int = Field(
        100_000, ge=1_000, description="Map pixels the full-resolution refinement uses."
    )
    max_tilt_deg: float = Field(
        0.0,
        ge=0,
        le=10,
        description="Refine a tilt of the slice up to this angle away from the cell axis "
        "(0: the slice stays perpendicular to the axis found in the volume).",
    )
    min_similarity: float = Field(
        0.3, ge=-1, le=1, description="Refuse a placement whose correlation is under this."
    )
    strict_height: bool = Field(
        False,
        description="Refuse (exit 1, no file) a placement whose height the data do not fix "
        "to half an X-ray voxel, instead of writing it with a warning.",
    )
    check_order: bool = Field(
        True,
        description="With --nct, refuse a pair whose X-ray volume looks like the neutron one "
        "(its bright class a large part of the cell, not the thin metals).",
    )
    offsets_um: tuple[float, ...] = Field(
        (-20.0, -10.0, 0.0, 10.0, 20.0),
        min_length=1,
        description="Heights (um, along the map's normal) of the planes resampled on the map grid.",
    )

"""Options of the 2D-3D link and the defect dossiers (``[link]`` of ``jellyroll run``)."""

from __future__ import annotations

from pydantic import Field

from jellyroll.options import StageOptions


class LinkOptions(StageOptions):
    """How agglomerates are matched to 3D bends and which defects get a dossier."""

    registration_error_um: float = Field(
        20.0,
        ge=0,
        description="Uncertainty (um) of the slice's placement in the X-ray volume, added to "
        "each bend's reach (default: one 20 um map pixel, the study's beam).",
    )
    largest_case_a: int = Field(
        2, ge=0, description="Dossiers of this many of the largest case-A agglomerates too."
    )
    dossier_half_width_um: float = Field(
        300.0, gt=0, description="Half width (um) of a dossier's cutouts along the layer."
    )

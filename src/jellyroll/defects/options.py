"""Options of the diagnosis (``jellyroll diagnose``, ``[defects]`` of ``jellyroll run``)."""

from __future__ import annotations

from pydantic import Field

from jellyroll.defects.agglomerates import STUDY_CRITICAL_DIAMETER_UM
from jellyroll.options import StageOptions


class DiagnoseOptions(StageOptions):
    """How defects are classified."""

    critical_diameter_um: float = Field(
        STUDY_CRITICAL_DIAMETER_UM,
        gt=0,
        description="Equivalent diameter (um) between case A and case B agglomerates "
        "(the study: ~50 um).",
    )

"""Options of the reduction (``jellyroll reduce``, the ``[waxs]``/``[saxs]`` tables of
``jellyroll run``): the only place their defaults live."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator

from jellyroll.options import StageOptions
from jellyroll.reduce.engine import FilterName


class ReduceOptions(StageOptions):
    """How frames are integrated and placed."""

    npt: int = Field(1000, ge=16, description="Number of radial bins.")
    unit: str = Field(
        "q_A^-1", description="Radial unit (pyFAI name); the maps stage needs q_A^-1."
    )
    radial_range: tuple[float, float] | None = Field(
        None,
        validation_alias=AliasChoices("radial_range", "q_range"),
        description="(low, high) radial range in `unit`; default: the whole detector.",
    )
    filter: FilterName = Field(
        "sigma-clip",
        description="Rejection of single-crystal spots and zingers: none, sigma-clip or "
        "trimmed-mean.",
    )
    spot_filter: bool = Field(
        True,
        description="Replace single-frame, q-narrow outliers of the sinogram (single-crystal "
        "spots, zingers) by their neighbours' median (jellyroll.sinogram.suppress_spots).",
    )
    polarization_factor: float | None = Field(
        0.99, ge=-1, le=1, description="pyFAI polarisation factor (None: no correction)."
    )
    block_frames: int = Field(256, ge=1, description="Frames per block (memory ~ block x frame).")
    subtract_air: bool = Field(True, description="Subtract the air scattering of the line ends.")

    @field_validator("radial_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] < value[1]:
            raise ValueError("radial_range must be (low, high) with 0 <= low < high")
        return value

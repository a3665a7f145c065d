"""Options of the maps stage (``jellyroll maps``, ``[maps]`` of ``jellyroll run``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jellyroll.options import StageOptions


class DstarOptions(StageOptions):
    """Overrides of the d* method's parameters; None keeps the study's value, whose one
    definition is the signature of :func:`jellyroll.saxs.departure_dstar` (SPEC section 3)."""

    min_intensity: float | None = Field(
        None, gt=0, description="Drop points below this share of the profile's largest [1e-9]."
    )
    min_points: int | None = Field(None, ge=3, description="Shortest usable segment [150].")
    skip_low_fraction: float | None = Field(None, ge=0, lt=1, description="Low-q skip [0.30].")
    skip_high_fraction: float | None = Field(None, ge=0, lt=1, description="High-q skip [0.20].")
    min_slope: float | None = Field(None, description="Smallest accepted exponent [2.5].")
    max_slope: float | None = Field(None, description="Largest accepted exponent [4.3].")
    tolerance: float | None = Field(None, gt=0, description="Departure from the power law [0.03].")

    def overrides(self) -> dict[str, float | int]:
        """The parameters given, as keyword arguments of the d* functions."""
        return {name: value for name, value in self.model_dump().items() if value is not None}

    @model_validator(mode="after")
    def _consistent(self) -> DstarOptions:
        """The parameters given, with the study's for the others, as the d* method checks
        them (min_slope above max_slope, skip fractions summing to 1 or more): refused when
        read, not after `jellyroll run` has reduced and reconstructed every scan."""
        overrides = self.overrides()
        if overrides:  # the study's own are valid: no numba for the default built at import
            from jellyroll.saxs import check_dstar_parameters

            check_dstar_parameters(**overrides)
        return self


class MapsOptions(StageOptions):
    """How the phase, SAXS intensity and d* maps are made from a reconstruction."""

    analysis: Literal["jellyroll", "study"] = Field(
        "jellyroll",
        description="study: the study's plain Table 1 window integrals and raw per-voxel d*; "
        "jellyroll: a linear background under every window and denoised d* profiles.",
    )
    label_threshold: float = Field(
        0.05, ge=0, lt=1, description="Label -1 below this fraction of a phase family's maximum."
    )
    denoise: bool | None = Field(
        None,
        description="Low-rank denoise the SAXS profiles before d* (not the study's); "
        "default: on with analysis jellyroll, off with study.",
    )
    rank: int | None = Field(None, ge=1, description="Components kept by the denoising.")
    dstar_min_intensity: float = Field(
        0.2,
        ge=0,
        le=1,
        description="d* only where the SAXS intensity exceeds this fraction of its bright "
        "level (p99, hot voxels left out).",
    )
    dstar: DstarOptions = DstarOptions()
    q_check: bool = Field(
        True,
        description="Check a WAXS q axis against the casing's and collectors' lines (Cu, Al, "
        "steel) and refuse one they put off (a wrong PONI distance or wavelength); false "
        "for a sample without those lines or with others at their places.",
    )

    @model_validator(mode="after")
    def _study_is_raw(self) -> MapsOptions:
        if self.analysis == "study" and self.denoise:
            raise ValueError(
                "analysis 'study' uses the raw per-voxel profiles: drop denoise, or choose "
                "analysis 'jellyroll'"
            )
        if self.rank is not None and not self.denoised:
            raise ValueError(
                "rank is the denoising's, and the SAXS profiles are not denoised: drop rank, "
                "or denoise them (analysis jellyroll, denoise true or unset)"
            )
        return self

    @property
    def denoised(self) -> bool:
        """Whether the SAXS profiles are denoised before d*."""
        return self.analysis == "jellyroll" if self.denoise is None else self.denoise

"""Options of the diagnosis (``jellyroll diagnose``, ``[defects]`` of ``jellyroll run``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from jellyroll.options import StageOptions

# The study's numbers live here, not in the modules that use them, so that this module (and
# with it the command line's help) imports no scipy.
STUDY_CRITICAL_DIAMETER_UM = 50.0
"""The study's critical equivalent diameter (um) between case A and case B."""
STUDY_PSF_FWHM_UM = 20.0
"""FWHM (um) of the study's pencil beam: the blur assumed where the map's cannot be measured."""


class DiagnoseOptions(StageOptions):
    """How defects are classified."""

    critical_diameter_um: float = Field(
        STUDY_CRITICAL_DIAMETER_UM,
        gt=0,
        description="Equivalent diameter (um) between case A and case B agglomerates "
        "(the study: ~50 um).",
    )
    psf_fwhm_um: float | Literal["auto"] = Field(
        "auto",
        description="Blur of the SAXS map (FWHM, um) that agglomerate sizes are deconvolved "
        "by: auto (measured on the edges of the map's anode layers; the study's 20 um beam, "
        "with a note, where they do not give it) or a number (the map's measured blur is "
        "recorded, and noted when 25 % off).",
    )

    background_window_um: float | None = Field(
        None,
        gt=0,
        description="Length (um) of the line segments whose median is the SAXS background "
        "under an agglomerate; it must exceed twice the largest agglomerate (default: 5 "
        "critical diameters, at least 250 um: a spot over half of it is taken for "
        "background).",
    )

    @field_validator("psf_fwhm_um", mode="before")
    @classmethod
    def _auto_or_number(cls, value: object) -> object:
        # the command line gives text: "auto" in any case, else a number; true is no size
        if isinstance(value, bool):
            raise ValueError(f'give "auto" or a FWHM in um, not {value}')
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "auto":
                return text
            try:
                return float(text)
            except ValueError:
                raise ValueError('give "auto" or a FWHM in um (a number >= 0)') from None
        return value

    @field_validator("psf_fwhm_um")
    @classmethod
    def _not_negative(cls, value: float | str) -> float | str:
        if value != "auto" and not value >= 0:
            raise ValueError(f'a FWHM is >= 0 um ({value:g} given); or give "auto"')
        return value

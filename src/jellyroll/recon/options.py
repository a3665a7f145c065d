"""Options of the reconstruction (``jellyroll reconstruct``, ``[reconstruct]`` of
``jellyroll run``): the only place their defaults live."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jellyroll.options import StageOptions
from jellyroll.recon.lowrank import DEFAULT_ENERGY


class ReconstructOptions(StageOptions):
    """Method, backend and corrections of the reconstruction of every q channel."""

    method: Literal["fbp", "sart", "sirt"] = Field(
        "sart", description="fbp, sart (the study's) or sirt."
    )
    iterations: int = Field(10, ge=1, description="SART sweeps or SIRT iterations (not fbp).")
    backend: Literal["auto", "astra", "jellyroll"] = Field(
        "auto", description="auto (= jellyroll), jellyroll (multi-channel) or astra (per channel)."
    )
    channels: str = Field(
        "all", description='"all", or q ranges in 1/angstrom: "1.67:1.73,4.45:4.62".'
    )
    rotation_centre_mm: float | None = Field(
        None, description="Rotation centre (mm, stage reading); default: the run file's."
    )
    nonnegative: bool = Field(False, description="Clip at 0 after every update (no low-rank).")
    self_absorption: bool | None = Field(
        None,
        description="Divide by the transmission through the attenuation slice first; "
        "default: when the scan has a diode (skipped with a note otherwise).",
    )
    energy: float = Field(
        DEFAULT_ENERGY,
        gt=0,
        le=1,
        description="Low-rank: fraction of the sinogram's squared norm kept (lower it, e.g. "
        "0.9999, for noisy data: fewer components, faster, denoised).",
    )

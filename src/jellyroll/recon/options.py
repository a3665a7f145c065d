"""Options of the reconstruction (``jellyroll reconstruct``, ``[reconstruct]`` of
``jellyroll run``): the only place their defaults live."""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
from pydantic import Field, field_validator, model_validator

from jellyroll.options import StageOptions

MethodName = Literal["fbp", "sart", "sirt"]
BackendName = Literal["auto", "astra", "jellyroll"]
RankRule = Literal["auto", "noise", "energy"]
"""How the low-rank step picks its components (or give a number of components); see
:data:`jellyroll.recon.engine.RANK_RULES`."""
RANK_RULES: tuple[str, ...] = get_args(RankRule)
DEFAULT_ITERATIONS = {"fbp": 10, "sart": 10, "sirt": 100}
"""Iterations of each method when none are given (FBP's unused). SIRT moves each pixel by
the mean of all its rays' residuals, SART by each projection's in turn: on the tiny twin's
WAXS scan SIRT's graphite anode after 10 iterations labelled 4547 pixels for the truth's 1554
(the map half as high and blurred: 72 % of the pixels labelled alike), after 30: 2625, 50:
2110, 100: 1912, 400: 1831; SART's after 3 sweeps 2002, 10: 1848 (97 % alike)."""


def q_ranges(channels: str) -> list[tuple[float, float]] | None:
    """The q ranges (lo, hi) in 1/angstrom of a ``channels`` text, ``"lo:hi,lo:hi,..."``
    (each range in either order); None for ``"all"``. ValueError naming a range that is not
    two finite numbers."""
    if channels.strip().lower() == "all":
        return None
    ranges = []
    for item in channels.split(","):
        try:
            lo, hi = (float(v) for v in item.split(":"))
        except ValueError:
            lo = hi = float("nan")
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(
                f"bad q range {item!r} in the channels {channels!r}; write lo:hi in "
                "1/angstrom, several joined by commas, or all"
            )
        ranges.append((min(lo, hi), max(lo, hi)))
    return ranges


def iterations_of(method: str, iterations: int | None) -> int:
    """``iterations``, or :data:`DEFAULT_ITERATIONS` of ``method`` (a known one) when None."""
    return DEFAULT_ITERATIONS[method] if iterations is None else iterations


class ReconstructOptions(StageOptions):
    """Method, backend and corrections of the reconstruction of every q channel."""

    method: MethodName = Field("sart", description="fbp, sart (the study's) or sirt.")
    iterations: int | None = Field(
        None,
        ge=1,
        description="SART sweeps (default 10) or SIRT iterations (default 100); not fbp.",
    )
    backend: BackendName = Field(
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
    rank: str = Field(
        "auto",
        description="Low-rank components: auto (noise-free cubes: energy; noisy: noise), "
        "noise (those above the noise of the sinogram's errors), energy, or a number.",
    )
    energy: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Low-rank energy rule: fraction of the squared norm kept (of every q "
        "channel's without errors; of the cube's with them, no channel losing more than its "
        "noise); given, it is the rule of rank auto. Default: 1 - 1e-8.",
    )

    @field_validator("channels")
    @classmethod
    def _channels_are_q_ranges(cls, value: str) -> str:
        """Refused as the options are read: a malformed range was found only when the
        reconstruction's key was computed, after `jellyroll run` had reduced the scan."""
        q_ranges(value)
        return value

    @field_validator("rank")
    @classmethod
    def _rank_rule_or_number(cls, value: str) -> str:
        text = str(value).strip().lower()
        if text in RANK_RULES or (text.isdigit() and int(text) >= 1):
            return text
        raise ValueError(f"choose one of {', '.join(RANK_RULES)} or a number of components >= 1")

    @model_validator(mode="after")
    def _no_option_without_effect(self) -> ReconstructOptions:
        """Refuse an option the user set, to other than its default, that the chosen method
        or backend would ignore (a default written out, as in an example file, is no
        request)."""
        fields = type(self).model_fields
        given = {
            name
            for name in self.model_fields_set
            if getattr(self, name) is not None and getattr(self, name) != fields[name].default
        }
        low_rank = [name for name in ("rank", "energy") if name in given]
        # 10, SART's default written out (docs/pipeline.md's example had it), asks nothing of FBP
        if self.method == "fbp" and "iterations" in given and self.iterations != 10:
            raise ValueError(
                "FBP has no iterations: drop iterations, or choose method sart or sirt"
            )
        if low_rank and self.backend == "astra":
            raise ValueError(
                f"{' and '.join(low_rank)} set the low-rank step of the jellyroll backend; "
                "astra reconstructs every channel: drop them, or choose backend jellyroll"
            )
        if low_rank and self.nonnegative and self.method != "fbp":
            raise ValueError(
                f"nonnegative {self.method} clips every update, so every channel is "
                f"reconstructed without the low-rank step: drop {' and '.join(low_rank)} "
                "or nonnegative"
            )
        if "energy" in given and self.rank not in ("auto", "energy"):
            raise ValueError(
                f"energy is the energy rule's; rank {self.rank} does not use it: drop energy, "
                "or choose rank energy"
            )
        return self

    @property
    def sweeps(self) -> int:
        """The iterations run: those given, or :data:`DEFAULT_ITERATIONS` of the method."""
        return iterations_of(self.method, self.iterations)

    @property
    def rank_value(self) -> str | int:
        """:attr:`rank` as :func:`~jellyroll.recon.reconstruct` takes it."""
        return int(self.rank) if self.rank.isdigit() else self.rank

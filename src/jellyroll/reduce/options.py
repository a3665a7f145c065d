"""Options of the reduction (``jellyroll reduce``, the ``[waxs]``/``[saxs]`` tables of
``jellyroll run``): the only place their defaults live."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from jellyroll.options import StageOptions

# The choices live here, not in the engine that uses them, so that this module (and with it
# the command line's help) imports no numba or pyFAI.
FilterName = Literal["none", "sigma-clip", "trimmed-mean"]
"""Outlier filters of an integration (see :mod:`jellyroll.reduce.engine`)."""
SplitName = Literal["no", "bbox", "full"]
"""Pixel splittings of pyFAI's integration matrix."""


class ReduceOptions(StageOptions):
    """How frames are integrated and placed."""

    speed_only = frozenset({"threads", "decode_threads", "block_frames"})

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
    split: SplitName = Field(
        "bbox",
        description="Pixel splitting of pyFAI's integration matrix: bbox, full or no. With "
        "the sigma-clip filter, no is pyFAI's own choice (a clipped pixel leaves the one bin "
        "it is in) and about three times faster: each pixel is in one bin, not three or four.",
    )
    spot_filter: bool = Field(
        True,
        description="Replace single-frame, q-narrow outliers of the sinogram (single-crystal "
        "spots, zingers) by their neighbours' median (jellyroll.sinogram.suppress_spots).",
    )
    polarization_factor: float | None = Field(
        0.99,
        ge=-1,
        le=1,
        description="pyFAI polarisation factor; none: no correction (frames corrected already).",
    )
    block_frames: int = Field(256, ge=1, description="Frames per block (memory ~ block x frame).")
    subtract_air: bool = Field(True, description="Subtract the air scattering of the line ends.")
    threads: int | None = Field(
        None, ge=1, description="CPU threads in all (default: the cores this process may use)."
    )
    decode_threads: int | None = Field(
        None,
        ge=1,
        description="Of those, threads reading and decoding frames. Without a filter the "
        "others integrate (default: half, at least one); with one, the filter's kernel takes "
        "every thread and the decoding shares them (default: a quarter, at least one).",
    )

    def thread_split(self, cores: int) -> tuple[int, int]:
        """(decoding, integrating) threads on ``cores`` available cores. Without a filter the
        two stages cost about the same per frame and run at once on the cores given, no
        more (on one core, one each). A filter costs several times the decoding per frame,
        so its kernel takes every core (a thread the decoding holds up delays none of the
        others: the kernel hands out its work in small parts) and the decoding threads share
        them."""
        total = self.threads or cores
        if self.filter != "none":
            return self.decode_threads or max(1, total // 4), total
        decode = self.decode_threads or max(1, total // 2)
        return decode, max(1, total - decode)

    @model_validator(mode="after")
    def _integration_keeps_a_thread(self) -> ReduceOptions:
        if self.threads and self.decode_threads and self.decode_threads >= self.threads > 1:
            raise ValueError(
                f"decode_threads ({self.decode_threads}) must be less than threads "
                f"({self.threads}): the integration needs at least one"
            )
        return self

    @field_validator("polarization_factor", mode="before")
    @classmethod
    def _none_spelled(cls, value: object) -> object:
        # the command line and TOML have no null: "none" turns the correction off
        if isinstance(value, str) and value.strip().lower() in ("none", "off"):
            return None
        return value

    @field_validator("radial_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] < value[1]:
            raise ValueError("the q range must be (low, high) with 0 <= low < high")
        return value

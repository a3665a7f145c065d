"""Options of the operando stage (``jellyroll operando``, ``[operando]`` of ``jellyroll run``):
the only place their defaults live."""

from __future__ import annotations

from pydantic import Field

from jellyroll.options import StageOptions


class OperandoOptions(StageOptions):
    """How a charge series of one slice is reconstructed and analysed."""

    channels: str = Field(
        "1.58:2.0,4.40:4.68",
        description="q ranges reconstructed per step (1/A): the graphite lines and the "
        "Table 1 windows with their background anchors.",
    )
    capacity_mah: float | None = Field(
        None,
        gt=0,
        description="Capacity (mAh) for the state of charge from a log; default: "
        "the charge passed over the whole log.",
    )
    max_log_gap_s: float = Field(
        300.0, gt=0, description="A scan in a longer gap of the log gets no state of charge."
    )
    log_utc_offset_h: float | None = Field(
        None,
        ge=-14,
        le=14,
        description="UTC offset (h) of the clock of a log whose times carry none (an EC-Lab "
        "date, local CSV times) at the log's start; default: the scans' offset.",
    )
    register_steps: bool = Field(True, description="Register every step to the first (cell drift).")
    graphite_fraction: float = Field(
        0.2, gt=0, lt=1, description="Graphite where its signal reaches this fraction of p99."
    )
    min_lag_soc: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="A pixel lagging the anode by more than this (SOC, under 1) is a zone.",
    )
    min_zone_pixels: int = Field(2, ge=1, description="Smallest lagging zone kept (pixels).")
    ring_width_um: float = Field(
        80.0,
        gt=0,
        description="Width of a zone's neighbourhood ring; it must hold the reconstruction's "
        "blur, as the zone's core is summed over the zone and its ring.",
    )

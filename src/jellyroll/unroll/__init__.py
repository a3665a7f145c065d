"""Virtual unrolling of wound cells: find the cell, unroll by polar transform or along the spiral.

See ``docs/unroll.md``. Pixel and angle conventions: :mod:`jellyroll.unroll.polar`.
"""

from jellyroll.unroll.cell import Cell, find_cell
from jellyroll.unroll.polar import PolarView, unroll_polar
from jellyroll.unroll.spiral import (
    LayerDeviation,
    SpiralTrace,
    SpiralView,
    spiral_deviation,
    trace_spiral,
    unroll_spiral,
)
from jellyroll.unroll.unmeasured import UNMEASURED_REACH_PX, fill_unmeasured, unmeasured_samples

__all__ = [
    "UNMEASURED_REACH_PX",
    "Cell",
    "LayerDeviation",
    "PolarView",
    "SpiralTrace",
    "SpiralView",
    "fill_unmeasured",
    "find_cell",
    "spiral_deviation",
    "trace_spiral",
    "unmeasured_samples",
    "unroll_polar",
    "unroll_spiral",
]

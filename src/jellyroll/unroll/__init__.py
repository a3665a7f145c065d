"""Virtual unrolling of wound cells: find the cell, unroll by polar transform or along the spiral.

See ``docs/unroll.md``. Pixel and angle conventions: :mod:`jellyroll.unroll.polar`.
"""

from jellyroll._lazy import lazy_exports

__all__ = lazy_exports(
    __name__,
    {
        "cell": ["Cell", "find_cell"],
        "polar": ["PolarView", "unroll_polar"],
        "spiral": [
            "LayerDeviation",
            "SpiralTrace",
            "SpiralView",
            "spiral_deviation",
            "trace_spiral",
            "unroll_spiral",
        ],
        "unmeasured": ["UNMEASURED_REACH_PX", "fill_unmeasured", "unmeasured_samples"],
    },
)

"""Robust statistics shared by the defect modules."""

from __future__ import annotations

import numpy as np

from jellyroll.conventions import MAD_TO_SIGMA


def robust_sigma(values: np.ndarray) -> float:
    """Standard deviation from the median absolute deviation of the finite ``values``."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    return MAD_TO_SIGMA * float(np.median(np.abs(values - np.median(values))))

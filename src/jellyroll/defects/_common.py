"""Helpers shared by the defect modules: map coordinates and robust statistics."""

from __future__ import annotations

import math

import numpy as np

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
MAD_TO_SIGMA = 1.4826
"""Standard deviation of a normal distribution per unit median absolute deviation."""


def axis_um(n: int, pixel_size_um: float) -> np.ndarray:
    """Pixel-centre coordinates (um) of ``n`` pixels with the map centre at 0."""
    return (np.arange(n) - (n - 1) / 2.0) * pixel_size_um


def robust_sigma(values: np.ndarray) -> float:
    """Standard deviation from the median absolute deviation of the finite ``values``."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    return MAD_TO_SIGMA * float(np.median(np.abs(values - np.median(values))))

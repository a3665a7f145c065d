"""Conventions every stage shares: the map pixel grid and two statistical constants.

A 2D map of shape (ny, nx) with square pixels of ``p`` um has pixel (iy, ix) centred at
``x = (ix - (nx - 1) / 2) p``, ``y = (iy - (ny - 1) / 2) p``: the map centre is the
rotation axis of the scan and y grows with the row index (see
:mod:`jellyroll.phantom.acquisition` for the projection geometry built on it).
"""

from __future__ import annotations

import math

import numpy as np

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
"""Standard deviation of a Gaussian per unit full width at half maximum."""
MAD_TO_SIGMA = 1.4826
"""Standard deviation of a normal distribution per unit median absolute deviation."""


def pixel_centres_um(n: int, pixel_size_um: float) -> np.ndarray:
    """Centres (um) of ``n`` pixels of ``pixel_size_um`` with the grid centre at 0, (n,)."""
    return (np.arange(n) - (n - 1) / 2.0) * pixel_size_um

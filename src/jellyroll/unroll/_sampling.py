"""Polar sampling shared by the cell finder and the unrollers (pixel conventions: polar.py)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def polar_samples(
    image: np.ndarray,
    centre: tuple[float, float],
    radii_px: np.ndarray,
    angles_rad: np.ndarray,
    *,
    order: int = 1,
) -> np.ndarray:
    """Sample a 2D ``image`` on a polar grid: (n_radii, n_angles), NaN outside the image."""
    x = centre[0] + radii_px[:, None] * np.cos(angles_rad)[None, :]
    y = centre[1] + radii_px[:, None] * np.sin(angles_rad)[None, :]
    return ndi.map_coordinates(
        np.asarray(image, dtype=np.float64), [y, x], order=order, mode="constant", cval=np.nan
    )


def row_quantile(values: np.ndarray, q: float) -> np.ndarray:
    """Per-row ``q`` quantile (0..1, lower) of a 2D array, ignoring NaN; NaN for empty rows."""
    count = np.isfinite(values).sum(axis=1)
    ordered = np.sort(values, axis=1)  # NaN sort last
    out = ordered[np.arange(values.shape[0]), np.maximum((count - 1) * q, 0).astype(int)]
    return np.where(count > 0, out, np.nan)

"""Linear interpolation of a volume at scattered points, as
``scipy.ndimage.map_coordinates(values, index.T, order=1, mode="nearest")`` gives it, several
times faster: the registration and location score a pose by sampling ~1e4 points thousands
of times, and scipy's general spline machinery cost most of that time."""

from __future__ import annotations

import numpy as np
from numba import njit


def linear_at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values`` (nz, ny, nx) interpolated linearly at ``index`` (n, 3) (fractional voxel
    indices z, y, x), each index clamped to the array (mode "nearest"); shape (n,), the dtype
    of ``values``. Every one of the eight corners counts, with its weight, so a NaN corner
    gives NaN even at weight 0: scipy's values to rounding (float32: the same bits)."""
    if values.ndim != 3 or index.ndim != 2 or index.shape[1] != 3:
        raise ValueError(f"need a 3D array and (n, 3) indices, got {values.shape}, {index.shape}")
    return _linear_at(np.ascontiguousarray(values), np.ascontiguousarray(index, dtype=np.float64))


@njit(cache=True)
def _clamped(start: float, size: int) -> int:
    """Index ``start`` (a whole number, any size) clamped to ``0 .. size - 1``."""
    return min(max(int(min(max(start, -1.0), float(size))), 0), size - 1)


@njit(cache=True)
def _linear_at(values, index):
    nz, ny, nx = values.shape
    out = np.empty(index.shape[0], dtype=values.dtype)
    for p in range(index.shape[0]):
        z0, y0, x0 = np.floor(index[p, 0]), np.floor(index[p, 1]), np.floor(index[p, 2])
        fz, fy, fx = index[p, 0] - z0, index[p, 1] - y0, index[p, 2] - x0
        iz0, iz1 = _clamped(z0, nz), _clamped(z0 + 1, nz)
        iy0, iy1 = _clamped(y0, ny), _clamped(y0 + 1, ny)
        ix0, ix1 = _clamped(x0, nx), _clamped(x0 + 1, nx)
        low = (values[iz0, iy0, ix0] * (1 - fx) + values[iz0, iy0, ix1] * fx) * (1 - fy) + (
            values[iz0, iy1, ix0] * (1 - fx) + values[iz0, iy1, ix1] * fx
        ) * fy
        high = (values[iz1, iy0, ix0] * (1 - fx) + values[iz1, iy0, ix1] * fx) * (1 - fy) + (
            values[iz1, iy1, ix0] * (1 - fx) + values[iz1, iy1, ix1] * fx
        ) * fy
        out[p] = low * (1 - fz) + high * fz
    return out

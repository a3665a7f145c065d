"""RGB fusion of a registered X-ray / neutron pair, as in the study: red = X-ray attenuation,
green = blue = neutron attenuation (cyan), each scaled to its own robust contrast window.

Windows come from percentiles of a random voxel sample read from a few random planes, so a
volume larger than memory (h5py dataset, memmap) is never loaded whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class VoxelSample:
    """Voxels drawn at the same positions from one or more volumes of one shape.

    ``values``: (n, n_volumes) float32, rows with a non-finite value dropped. ``planes``: the z
    indices read; ``seed``: of ``numpy.random.default_rng``. Record planes and seed with any
    window or threshold derived from the sample.
    """

    values: np.ndarray
    planes: np.ndarray
    seed: int


def sample_voxels(
    *volumes: Any, n_planes: int = 8, max_values: int = 200_000, seed: int = 0
) -> VoxelSample:
    """Sample voxels of (nz, ny, nx) array-likes (same shape) from ``n_planes`` random planes.

    Only the chosen planes are read (one at a time per volume); at most ``max_values`` voxels
    are kept, chosen at random among those planes' voxels.
    """
    if not volumes:
        raise ValueError("give at least one volume")
    shape = tuple(volumes[0].shape)
    if len(shape) != 3 or any(tuple(v.shape) != shape for v in volumes):
        raise ValueError(f"volumes must share one 3D shape, got {[v.shape for v in volumes]}")
    rng = np.random.default_rng(seed)
    planes = np.sort(rng.choice(shape[0], size=min(n_planes, shape[0]), replace=False))
    per_plane = max(1, max_values // len(planes))
    rows = []
    for z in planes:
        flat = rng.choice(shape[1] * shape[2], size=min(per_plane, shape[1] * shape[2]))
        rows.append(
            np.stack(
                [np.asarray(v[int(z)], dtype=np.float32).ravel()[flat] for v in volumes], axis=1
            )
        )
    values = np.concatenate(rows)
    return VoxelSample(values[np.isfinite(values).all(axis=1)], planes, seed)


def contrast_window(
    values_sample: np.ndarray, low: float = 1.0, high: float = 99.0
) -> tuple[float, float]:
    """Robust (lo, hi) window: the ``low`` and ``high`` percentiles of the finite values."""
    values = np.asarray(values_sample, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("no finite value in the sample")
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(hi)


def _to_uint8(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Linear map of ``window`` to 0..255, clipped; NaN -> 0."""
    lo, hi = (float(w) for w in window)
    if not hi > lo:
        raise ValueError(f"window must have hi > lo, got {window}")
    scaled = (np.asarray(values, dtype=np.float32) - lo) * np.float32(255.0 / (hi - lo))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)


def fuse_rgb(
    xray_slab: np.ndarray,
    neutron_slab: np.ndarray,
    xray_window: tuple[float, float],
    neutron_window: tuple[float, float],
) -> np.ndarray:
    """uint8 RGB (..., 3) of two same-shape slabs: red = X-ray, green = blue = neutron.

    Each modality is mapped linearly from its (lo, hi) window to 0..255 and clipped; NaN
    (outside a field of view) gives 0.
    """
    if np.shape(xray_slab) != np.shape(neutron_slab):
        raise ValueError(f"shapes differ: {np.shape(xray_slab)} and {np.shape(neutron_slab)}")
    red = _to_uint8(xray_slab, xray_window)
    cyan = _to_uint8(neutron_slab, neutron_window)
    return np.stack([red, cyan, cyan], axis=-1)

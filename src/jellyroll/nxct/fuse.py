"""RGB fusion of a registered X-ray / neutron pair, as in the study: red = X-ray attenuation,
green = blue = neutron attenuation (cyan), each scaled to its own robust contrast window.

Windows come from percentiles of a voxel sample read from planes spread through the stack,
so a volume larger than memory (h5py dataset, memmap) is never loaded whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class VoxelSample:
    """Voxels drawn at the same positions from one or more volumes of one shape.

    ``values``: (n, n_volumes) float32, rows with a non-finite value dropped. ``planes``: the z
    indices read; record them with any window or threshold derived from the sample.
    ``n_read``: the rows read, before any was dropped.
    """

    values: np.ndarray
    planes: np.ndarray
    n_read: int = 0


SAMPLE_PLANES = 64
"""Most planes :func:`sample_voxels` reads, evenly spaced through the whole stack (all of a
stack of fewer): one plane at the roll's end, where the neutron's blur leaves a third of
the roll's level, is then at most a 1/64th of the sample, not 1/8th as among 8 random
planes (see :func:`sample_voxels`)."""


def sample_voxels(
    *volumes: Any,
    n_planes: int = SAMPLE_PLANES,
    max_values: int = 200_000,
    unmeasured: Callable[[np.ndarray], np.ndarray] | None = None,
) -> VoxelSample:
    """The voxels of (nz, ny, nx) array-likes on one grid (arrays, memmaps, h5py datasets,
    :class:`~jellyroll.io.volumes.VolumeSource`): up to ``n_planes`` planes evenly spaced
    through the whole stack, each on one regular in-plane grid, about ``max_values`` voxels
    in all; only those planes are read (one at a time per volume). Rows with a non-finite
    value are dropped, and those that ``unmeasured`` (a plane (ny, nx) -> bool mask) marks
    in any volume.

    Deterministic and spread over all heights, so that the sample's make-up is the
    volume's: reversing the stack reads the same voxels, and cropping a few planes changes a
    few of them. Before, 8 random planes: in a 40-plane stack of the small twin
    (aged_charged, 10 um) that holds the roll's end and its head space, a draw that took the
    plane at the roll's end (a third of the roll's neutron level) moved the anode's neutron
    mode to that plane's level: separator threshold 2.39e-4 instead of 3.14e-4 /um, void
    3.7e-5 instead of 1.2e-4, 9 % of the anode labelled separator, exit 0; which draw did so
    changed with the stack's height, a crop or its order.
    """
    if not volumes:
        raise ValueError("give at least one volume")
    shape = tuple(volumes[0].shape)
    if len(shape) != 3 or any(tuple(v.shape) != shape for v in volumes):
        raise ValueError(f"volumes must share one 3D shape, got {[v.shape for v in volumes]}")
    nz, ny, nx = shape
    count = max(1, min(nz, int(n_planes)))
    planes = np.unique(((np.arange(count) + 0.5) * nz / count).astype(np.int64))
    step = max(1, int(np.ceil(np.sqrt(ny * nx * len(planes) / max(int(max_values), 1)))))
    grid = (slice(step // 2, None, step), slice(step // 2, None, step))
    rows = []
    for z in planes:
        read = [np.array(v[int(z)], dtype=np.float32) for v in volumes]
        if unmeasured is not None:
            dropped = np.logical_or.reduce([unmeasured(plane) for plane in read])
            for plane in read:
                plane[dropped] = np.nan
        rows.append(np.column_stack([plane[grid].ravel() for plane in read]))
    values = np.concatenate(rows)
    return VoxelSample(values[np.isfinite(values).all(axis=1)], planes, len(values))


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

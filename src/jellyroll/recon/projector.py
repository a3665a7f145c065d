"""Multi-channel line projector and its exact transpose (numba, channels contiguous).

Model: a map is constant over each square pixel of side ``p``; the system weight of a
(ray, pixel) pair is the length of the ray line inside the pixel (the model of
astra-toolbox's ``line`` projector). As a function of ``u = t_ray - t_pixel_centre`` that
length is a trapezoid of area ``p**2``: it vanishes beyond ``(hi + lo) / 2``, is flat
within ``(hi - lo) / 2`` at height ``p / max(|cos|, |sin|)``, with
``hi, lo = p max(|cos|, |sin|), p min(|cos|, |sin|)``. Every kernel walks pixels and
evaluates that trapezoid for the one or two rays of the pixel's footprint, so
:func:`back` is the exact transpose of :func:`forward` (up to float32 rounding).

Layout: maps ``(ny, nx, nc)`` and sinograms ``(n_angles, n_t, nc)``, float32, channels
last and contiguous, so that each weight is computed once and applied to ``nc`` values.
The backprojection gathers into square tiles of pixels (each tile owns its output); the
forward projection scatters tiles into one private sinogram per thread, summed at the end.
Tiles keep the map block and the few rays it touches in cache for all angles. SART makes
one pass over the map per projection, applying the previous projection's update and
projecting along the next one in the same pass; each thread sweeps its own channels, or,
with few channels, its own band of rows of the map (:func:`sart_sweep_bands`).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from jellyroll.recon.geometry import ParallelGeometry

__all__ = [
    "AngleTable",
    "as_block",
    "back",
    "forward",
    "gather",
    "n_parts",
    "ray_lengths",
    "sart_sweep",
    "sart_sweep_bands",
    "scatter",
]

TILE = 32
"""Tile side (pixels): a tile of 32 x 32 pixels x 16 channels is 64 kB, within L2."""


class AngleTable:
    """Per-angle footprint constants of a geometry: ``values`` ``(n_angles, 5)`` float64,
    columns cos, sin, reach (um), 1 / ramp width (1/um), height (um)."""

    def __init__(self, geometry: ParallelGeometry) -> None:
        theta = np.deg2rad(geometry.angles_deg)
        c, s = np.cos(theta), np.sin(theta)
        p = geometry.pixel_size_um
        hi = p * np.maximum(np.abs(c), np.abs(s))
        # a zero-width ramp (0 or 90 deg) would leave rays along pixel edges undecided;
        # with lo -> 0+ they get half the weight on each side, the limit of the trapezoid
        lo = np.maximum(p * np.minimum(np.abs(c), np.abs(s)), 1e-9 * p)
        self.values = np.ascontiguousarray(np.stack([c, s, 0.5 * (hi + lo), 1 / lo, p * p / hi], 1))
        self.x0 = float(geometry.x_um[0])
        self.y0 = float(geometry.y_um[0])
        self.p = p
        self.t0 = geometry.t0_um
        self.dt = geometry.t_step_um

    @property
    def grid(self) -> tuple[float, float, float, float, float]:
        """(x0, y0, p, t0, dt): first pixel centre, pixel side, first ray, ray step (um)."""
        return self.x0, self.y0, self.p, self.t0, self.dt


@njit(cache=True, inline="always")
def _weight(d: float, reach: float, inv_lo: float, height: float) -> float:
    """Trapezoid at distance ``d`` (um) from the pixel's projected centre; 0 beyond reach."""
    return height * min(1.0, max(reach - abs(d), 0.0) * inv_lo)


@njit(cache=True, inline="always")
def _span(f: float, reach_rays: float, n_t: int) -> tuple[int, int]:
    """Rays ``j0 <= j <= j1`` strictly within ``reach_rays`` of ray coordinate ``f``."""
    return max(0, math.floor(f - reach_rays) + 1), min(n_t - 1, math.floor(f + reach_rays))


@njit(parallel=True, cache=True, fastmath=True)
def gather(
    sino: np.ndarray,  # (n_a, n_t, nc) float32
    table: np.ndarray,  # (n_a, 5)
    x0: float,
    y0: float,
    p: float,
    t0: float,
    dt: float,
    out: np.ndarray,  # (ny, nx, nc) float32, accumulated into
) -> None:
    ny, nx, nc = out.shape
    n_t = sino.shape[1]
    n_tx = (nx + TILE - 1) // TILE
    n_tiles = ((ny + TILE - 1) // TILE) * n_tx
    for k in prange(n_tiles):
        ty0 = (k // n_tx) * TILE
        tx0 = (k % n_tx) * TILE
        for a in range(table.shape[0]):
            c, s, reach, inv_lo, height = table[a]
            rows = sino[a]
            reach_rays = reach / dt
            step = p * c / dt
            for iy in range(ty0, min(ny, ty0 + TILE)):
                # f: position of the pixel centre's projection in ray units
                f = ((x0 + tx0 * p) * c + (y0 + iy * p) * s - t0) / dt
                for ix in range(tx0, min(nx, tx0 + TILE)):
                    j0, j1 = _span(f, reach_rays, n_t)
                    acc = out[iy, ix]
                    for j in range(j0, j1 + 1):
                        w = np.float32(_weight((j - f) * dt, reach, inv_lo, height))
                        r = rows[j]
                        for ch in range(nc):
                            acc[ch] += w * r[ch]
                    f += step


@njit(parallel=True, cache=True, fastmath=True)
def scatter(
    img: np.ndarray,  # (ny, nx, nc) float32
    table: np.ndarray,
    x0: float,
    y0: float,
    p: float,
    t0: float,
    dt: float,
    parts: np.ndarray,  # (n_parts, n_a, n_t, nc) float32, zeroed
) -> None:
    ny, nx, nc = img.shape
    n_parts, _, n_t, _ = parts.shape
    n_ty = (ny + TILE - 1) // TILE
    for part in prange(n_parts):
        own = parts[part]
        for bty in range(part * n_ty // n_parts, (part + 1) * n_ty // n_parts):
            for tx0 in range(0, nx, TILE):
                for a in range(table.shape[0]):
                    c, s, reach, inv_lo, height = table[a]
                    rows = own[a]
                    reach_rays = reach / dt
                    step = p * c / dt
                    for iy in range(bty * TILE, min(ny, bty * TILE + TILE)):
                        f = ((x0 + tx0 * p) * c + (y0 + iy * p) * s - t0) / dt
                        for ix in range(tx0, min(nx, tx0 + TILE)):
                            j0, j1 = _span(f, reach_rays, n_t)
                            pix = img[iy, ix]
                            for j in range(j0, j1 + 1):
                                w = np.float32(_weight((j - f) * dt, reach, inv_lo, height))
                                r = rows[j]
                                for ch in range(nc):
                                    r[ch] += w * pix[ch]
                            f += step


def footprint_taps(table: AngleTable, n_t: int) -> int:
    """Most rays one pixel's footprint meets at any angle of ``table`` on a detector of
    ``n_t`` rays: the footprint is an open interval of ``2 reach`` um, so it holds at most
    ``floor(2 reach / dt) + 1`` rays."""
    return min(int(np.floor(2 * table.values[:, 2].max() / table.dt)) + 1, n_t)


@njit(cache=True, fastmath=True, inline="always")
def _footprints(
    f0: float,
    step: float,
    angle: np.ndarray,  # (5,) row of AngleTable.values
    dt: float,
    n_t: int,
    first: np.ndarray,  # (nx,) int64, out
    count: np.ndarray,  # (nx,) int64, out
    weights: np.ndarray,  # (taps, nx) float64, out
) -> None:
    """Footprints of one row of pixels, pixel ``ix`` at ray coordinate ``f0 + ix * step``:
    the rays ``first[ix] + k``, ``k < taps``, all on the detector, hold every ray the pixel
    meets, with weights ``weights[k, ix]`` (um; 0 out of reach); those past
    ``count[ix]`` are all 0."""
    taps, nx = weights.shape
    reach, inv_lo, height = angle[2], angle[3], angle[4]
    reach_rays = reach / dt
    # loops over the row without branches, which the compiler turns into vector code
    for ix in range(nx):
        f = f0 + ix * step
        j0 = min(max(math.floor(f - reach_rays) + 1, 0), n_t - taps)
        first[ix] = j0
        count[ix] = max(min(math.floor(f + reach_rays), n_t - 1) - j0 + 1, 0)
    for k in range(taps):
        for ix in range(nx):
            d = (first[ix] + k - (f0 + ix * step)) * dt
            weights[k, ix] = _weight(d, reach, inv_lo, height)


@njit(cache=True, fastmath=True)
def _sart_pass(
    x: np.ndarray,  # (ny, nx, nc) float32, rows [row0, row1) updated in place
    row0: int,
    row1: int,
    residual: np.ndarray,  # (n_t, nc): (P_a - A_a x) / ray length, 0 where masked
    mask: np.ndarray,  # (n_t,) float32, 1 for measured rays of the previous angle
    previous: np.ndarray,  # (5,) footprint of the angle to apply; empty: none
    following: np.ndarray,  # (5,) footprint of the angle to project next; empty: none
    x0: float,
    y0: float,
    p: float,
    t0: float,
    dt: float,
    taps: int,
    relaxation: float,
    nonnegative: bool,
    projection: np.ndarray,  # (n_t, nc), accumulated into: A_following x
) -> None:
    """One pass over rows of the map: apply the previous angle's update
    ``x += relaxation * A_a^T residual / A_a^T mask`` per pixel (clipped at 0 when
    ``nonnegative``), then project the pixel along the following angle.

    The footprints of a row are computed first, for the whole row, in loops without
    branches: per pixel, that was the costly part with few channels.
    """
    nx, nc = x.shape[1], x.shape[2]
    n_t = mask.size
    first = np.empty(nx, dtype=np.int64)
    count = np.empty(nx, dtype=np.int64)
    weights = np.empty((taps, nx))
    scaled = np.empty((taps, nx), dtype=np.float32)
    total = np.empty(nx)
    for iy in range(row0, row1):
        y = y0 + iy * p
        if previous.size > 0:
            c, s = previous[0], previous[1]
            f0 = (x0 * c + y * s - t0) / dt
            _footprints(f0, p * c / dt, previous, dt, n_t, first, count, weights)
            total[:] = 0.0
            for k in range(taps):
                for ix in range(nx):
                    total[ix] += weights[k, ix] * mask[first[ix] + k]
            for k in range(taps):
                for ix in range(nx):
                    # a pixel that meets no measured ray keeps its value (weights 0)
                    scale = relaxation / total[ix] if total[ix] > 0.0 else 0.0
                    scaled[k, ix] = np.float32(scale * weights[k, ix])
            for ix in range(nx):
                j = first[ix]
                for k in range(count[ix]):
                    w = scaled[k, ix]
                    for ch in range(nc):
                        x[iy, ix, ch] += w * residual[j + k, ch]
                if nonnegative:
                    for ch in range(nc):
                        x[iy, ix, ch] = max(x[iy, ix, ch], np.float32(0.0))
        if following.size > 0:
            c, s = following[0], following[1]
            f0 = (x0 * c + y * s - t0) / dt
            _footprints(f0, p * c / dt, following, dt, n_t, first, count, weights)
            for k in range(taps):
                for ix in range(nx):
                    scaled[k, ix] = np.float32(weights[k, ix])
            for ix in range(nx):
                j = first[ix]
                for k in range(count[ix]):
                    w = scaled[k, ix]
                    for ch in range(nc):
                        projection[j + k, ch] += w * x[iy, ix, ch]


@njit(cache=True)
def _update_residual(
    projections: np.ndarray,  # (m, n_t, nc): parts of A_a x, summed
    rows: np.ndarray,  # (n_t, nc): P_a
    inv_length: np.ndarray,  # (n_t,)
    residual: np.ndarray,  # (n_t, nc), out: (P_a - A_a x) / ray length
) -> None:
    m, n_t, nc = projections.shape
    for j in range(n_t):
        for ch in range(nc):
            total = np.float32(0.0)
            for part in range(m):
                total += projections[part, j, ch]
            residual[j, ch] = (rows[j, ch] - total) * inv_length[j]


@njit(parallel=True, cache=True)
def sart_sweep(
    x: np.ndarray,  # (n_groups, ny, nx, nc) float32, updated in place
    data: np.ndarray,  # (n_groups, n_a, n_t, nc) float32, 0 where missing
    measured: np.ndarray,  # (n_a, n_t) float32, 1 for measured rays
    inv_length: np.ndarray,  # (n_a, n_t) float32, 1 / ray length, 0 where missing
    table: np.ndarray,  # (n_a, 5)
    order: np.ndarray,  # (n_a,) int64, the projections of one sweep
    x0: float,
    y0: float,
    p: float,
    t0: float,
    dt: float,
    taps: int,
    relaxation: float,
    nonnegative: bool,
) -> None:
    """One SART sweep over the projections in ``order``. Each thread owns whole groups of
    channels and runs the sweep alone, so no thread waits for another between angles."""
    n_groups, ny, _, nc = x.shape
    n_t = data.shape[2]
    none = np.zeros(0)
    for g in prange(n_groups):
        xg = x[g]
        residual = np.zeros((n_t, nc), dtype=np.float32)
        projection = np.zeros((1, n_t, nc), dtype=np.float32)
        previous = -1
        # each pass applies the previous projection's update and projects the next one
        for k in range(order.size + 1):
            following = order[k] if k < order.size else -1
            projection[:] = 0.0
            _sart_pass(
                xg,
                0,
                ny,
                residual,
                measured[max(previous, 0)],
                table[previous] if previous >= 0 else none,
                table[following] if following >= 0 else none,
                x0,
                y0,
                p,
                t0,
                dt,
                taps,
                relaxation,
                nonnegative,
                projection[0],
            )
            if following >= 0:
                _update_residual(projection, data[g, following], inv_length[following], residual)
            previous = following


@njit(parallel=True, cache=True)
def sart_sweep_bands(
    x: np.ndarray,  # (ny, nx, nc) float32, updated in place
    data: np.ndarray,  # (n_a, n_t, nc) float32, 0 where missing
    measured: np.ndarray,  # (n_a, n_t) float32, 1 for measured rays
    inv_length: np.ndarray,  # (n_a, n_t) float32, 1 / ray length, 0 where missing
    table: np.ndarray,  # (n_a, 5)
    order: np.ndarray,  # (n_a,) int64, the projections of one sweep
    x0: float,
    y0: float,
    p: float,
    t0: float,
    dt: float,
    taps: int,
    relaxation: float,
    nonnegative: bool,
    parts: np.ndarray,  # (n_bands, n_t, nc) float32, scratch: one projection per band
) -> None:
    """One SART sweep like :func:`sart_sweep`, for few channels: the map is cut into
    ``n_bands`` bands of rows, swept in parallel for every projection (each pixel's update
    is its own; the bands' projections are summed between projections)."""
    ny = x.shape[0]
    n_bands, n_t, nc = parts.shape
    none = np.zeros(0)
    residual = np.zeros((n_t, nc), dtype=np.float32)
    previous = -1
    for k in range(order.size + 1):
        following = order[k] if k < order.size else -1
        back_row = table[previous] if previous >= 0 else none
        fwd_row = table[following] if following >= 0 else none
        mask = measured[max(previous, 0)]
        for b in prange(n_bands):
            part = parts[b]
            part[:] = 0.0
            _sart_pass(
                x,
                b * ny // n_bands,
                (b + 1) * ny // n_bands,
                residual,
                mask,
                back_row,
                fwd_row,
                x0,
                y0,
                p,
                t0,
                dt,
                taps,
                relaxation,
                nonnegative,
                part,
            )
        if following >= 0:
            _update_residual(parts, data[following], inv_length[following], residual)
        previous = following


def as_block(values: np.ndarray, ndim: int, name: str) -> tuple[np.ndarray, bool]:
    """C-contiguous float32 array (a view when possible) with a trailing channel axis, and
    whether that axis was added."""
    arr = np.asarray(values)
    single = arr.ndim == ndim - 1
    if single:
        arr = arr[..., None]
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim - 1} or {ndim} dimensions")
    return np.ascontiguousarray(arr, dtype=np.float32), single


def n_parts() -> int:
    """Private accumulators of the scattering kernels: one per numba thread."""
    return numba.get_num_threads()


def forward(geometry: ParallelGeometry, maps: np.ndarray) -> np.ndarray:
    """Line integrals: maps ``(ny, nx[, nc])`` (per um) -> ``(n_angles, n_t[, nc])`` float32
    (map units x um)."""
    img, single = as_block(maps, 3, "maps")
    if img.shape[:2] != geometry.shape:
        raise ValueError(f"maps are {img.shape[:2]}, the geometry wants {geometry.shape}")
    table = AngleTable(geometry)
    parts = np.zeros((n_parts(), geometry.n_angles, geometry.n_t, img.shape[2]), np.float32)
    scatter(img, table.values, *table.grid, parts)
    out = parts.sum(axis=0) if parts.shape[0] > 1 else parts[0]
    return out[..., 0] if single else out


def back(geometry: ParallelGeometry, sinogram: np.ndarray) -> np.ndarray:
    """Transpose of :func:`forward`: ``(n_angles, n_t[, nc])`` -> ``(ny, nx[, nc])`` float32."""
    sino, single = as_block(sinogram, 3, "sinogram")
    if sino.shape[:2] != (geometry.n_angles, geometry.n_t):
        raise ValueError(
            f"sinogram is {sino.shape[:2]}, the geometry wants {geometry.n_angles, geometry.n_t}"
        )
    table = AngleTable(geometry)
    out = np.zeros((*geometry.shape, sino.shape[2]), dtype=np.float32)
    gather(sino, table.values, *table.grid, out)
    return out[..., 0] if single else out


def ray_lengths(geometry: ParallelGeometry) -> np.ndarray:
    """Length (um) of every ray inside the map, ``(n_angles, n_t)`` float32."""
    return forward(geometry, np.ones(geometry.shape, dtype=np.float32))

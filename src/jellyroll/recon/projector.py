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
projecting along the next one in the same pass; each thread sweeps its own group of
channels, or, with few channels, its own band of rows of the map (:func:`sart_sweep`), and
applies each weight to a pixel's channels as short vectors (:mod:`.lanes`); a pixel whose
footprint spans 2 rays (the study's grid) handles both rays as one vector.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numba
import numpy as np
from numba import literally, njit, prange, types

from jellyroll.recon.geometry import ParallelGeometry
from jellyroll.recon.lanes import lanes_axpy, lanes_clip, lanes_pair_axpy, lanes_pair_dot

__all__ = [
    "AngleTable",
    "as_block",
    "back",
    "compiled_sart_sweep",
    "forward",
    "gather",
    "n_parts",
    "ray_lengths",
    "sart_sweep",
    "scatter",
]

TILE = 32
"""Tile side (pixels): a tile of 32 x 32 pixels x 16 channels is 64 kB, within L2."""
COPIES = 2
"""Copies of each band's projection in SART, summed between projections: consecutive
pixels add to different copies, so that one addition to a ray does not wait for the
previous pixel's."""
FRACTION = 40
"""Fractional bits of the footprints' fixed-point ray coordinates (:func:`_row_footprints`):
~1e-12 rays, and room for +-2**22 rays in int64."""
WIDE = 32
"""SART skips a pixel's taps out of reach (weight 0: ~40 % of them) from this many
channels per group: below, the branch costs more than the work it saves."""


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
def _row_footprints(
    f0: float,
    step: float,
    angle: np.ndarray,  # (5,) row of AngleTable.values
    dt: float,
    n_t: int,
    first: np.ndarray,  # (nx,) int64, out
    offset: np.ndarray,  # (nx,) float32, scratch
    weights: np.ndarray,  # (taps, nx) float32, out
) -> None:
    """Footprints of one row of pixels, pixel ``ix`` at ray coordinate ``f0 + ix * step``:
    the rays ``first[ix] + k``, ``k < taps``, all on the detector, hold every ray the pixel
    meets, with weights ``weights[k, ix]`` (um; 0 out of reach).

    Loops over the row without branches, which the compiler turns into vector code; the
    weights from the ray's offset in float32 (um, rounding ~1e-7).
    """
    taps, nx = weights.shape
    reach, inv_lo, height = np.float32(angle[2]), np.float32(angle[3]), np.float32(angle[4])
    # ray coordinates in fixed point, 2**-FRACTION rays: a row is integer additions and
    # shifts (cheaper vector code than floor and conversions in float64), exact but for
    # the rounding of the start and step (~1e-9 rays over a row)
    unit = 2.0**FRACTION
    reach_fixed = np.int64(round(angle[2] / dt * unit))
    start = np.int64(round(f0 * unit)) - reach_fixed  # f - reach at ix = 0
    stride = np.int64(round(step * unit))
    last = n_t - taps
    to_um = np.float32(dt / unit)
    for ix in range(nx):
        edge = start + ix * stride  # f - reach
        j0 = min(max((edge >> FRACTION) + 1, 0), last)
        first[ix] = j0
        offset[ix] = np.float32((j0 << FRACTION) - edge - reach_fixed) * to_um  # of ray j0 (um)
    for k in range(taps):
        shift = np.float32(k * dt)
        row = weights[k]  # a row of its own: no overlap with offset to check for
        for ix in range(nx):
            d = offset[ix] + shift
            row[ix] = height * min(np.float32(1.0), max(reach - abs(d), np.float32(0.0)) * inv_lo)


@njit(cache=True, fastmath=True)
def _sart_pass(
    x: np.ndarray,  # (ny, nx, width) float32, rows [row0, row1) updated in place
    row0: int,
    row1: int,
    residual: np.ndarray,  # (n_t, width): (P_a - A_a x) / ray length, 0 where masked
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
    projection: np.ndarray,  # (COPIES, n_t, width), accumulated into: A_following x
    lanes: int,  # literal; width is a multiple of it
    paired: bool,  # literal: 2 taps and width == lanes (:func:`_pair_pass`)
) -> None:
    """One pass over rows of the map: apply the previous angle's update
    ``x += relaxation * A_a^T residual / A_a^T mask`` per pixel (clipped at 0 when
    ``nonnegative``), then project the pixel along the following angle.

    The footprints of a row are computed first, for the whole row, in vector loops; then
    each weight is applied to the pixel's channels ``lanes`` at a time (:mod:`.lanes`).
    """
    literally(lanes)
    literally(taps)
    literally(paired)
    nx, width = x.shape[1], x.shape[2]
    n_t = mask.size
    apply, project = previous.size > 0, following.size > 0
    first_back = np.zeros(nx, dtype=np.int64)
    first_next = np.zeros(nx, dtype=np.int64)
    back_weights = np.zeros((taps, nx), dtype=np.float32)
    next_weights = np.zeros((taps, nx), dtype=np.float32)
    offset = np.zeros(nx, dtype=np.float32)
    pairs = np.zeros((COPIES, n_t, 2 * width) if paired else (0, 0, 0), dtype=np.float32)
    scale_max = np.float32(relaxation)
    complete = mask.min() > 0.0
    for iy in range(row0, row1):
        y = y0 + iy * p
        if apply:
            c, s = previous[0], previous[1]
            _row_footprints(
                (x0 * c + y * s - t0) / dt,
                p * c / dt,
                previous,
                dt,
                n_t,
                first_back,
                offset,
                back_weights,
            )
            # the column normalisation A_a^T mask, per pixel, into the weights
            if complete:  # every ray measured (the usual case): no look-up of the mask
                for ix in range(nx):
                    total = np.float32(0.0)
                    for k in range(taps):
                        total += back_weights[k, ix]
                    scale = scale_max / total if total > np.float32(0.0) else np.float32(0.0)
                    for k in range(taps):
                        back_weights[k, ix] *= scale
            else:
                offset[:] = 0.0
                for k in range(taps):
                    for ix in range(nx):
                        offset[ix] += back_weights[k, ix] * mask[first_back[ix] + k]
                for ix in range(nx):
                    # a pixel that meets no measured ray keeps its value (weights 0)
                    total = offset[ix]
                    offset[ix] = scale_max / total if total > np.float32(0.0) else np.float32(0.0)
                for k in range(taps):
                    row = back_weights[k]
                    for ix in range(nx):
                        row[ix] *= offset[ix]
        if project:
            c, s = following[0], following[1]
            _row_footprints(
                (x0 * c + y * s - t0) / dt,
                p * c / dt,
                following,
                dt,
                n_t,
                first_next,
                offset,
                next_weights,
            )
        # one vector of channels and footprints of 2 rays (pixels no wider than the ray
        # step, the study's grid): a pixel's 2 rays as one vector. Otherwise, narrow
        # groups: one vector per pixel, every tap, no branch left inside the pixel's work
        # (constants once inlined); wide groups skip the taps out of reach. Two calls, not
        # one with these flags as variables: that one call made 4 channels 2x slower (0.32
        # against 0.16 s per channel, run_sart_scaling on 2 quiet cores)
        vectors = width // lanes
        if paired:
            _pair_pass(
                x,
                iy,
                residual,
                first_back,
                back_weights,
                apply,
                nonnegative,
                pairs,
                first_next,
                next_weights,
                project,
                lanes,
            )
        elif vectors == 1 and width < WIDE:
            _row_pass(
                x,
                iy,
                residual,
                first_back,
                back_weights,
                apply,
                nonnegative,
                projection,
                first_next,
                next_weights,
                project,
                taps,
                False,
                1,
                lanes,
            )
        else:
            _row_pass(
                x,
                iy,
                residual,
                first_back,
                back_weights,
                apply,
                nonnegative,
                projection,
                first_next,
                next_weights,
                project,
                taps,
                True,
                vectors,
                lanes,
            )
    if paired and project:  # ray r: from the pixels whose first ray is r, and r - 1
        for c in range(COPIES):
            for ch in range(width):
                projection[c, 0, ch] += pairs[c, 0, ch]
            for r in range(1, n_t):
                for ch in range(width):
                    projection[c, r, ch] += pairs[c, r, ch] + pairs[c, r - 1, width + ch]


@njit(cache=True, fastmath=True)
def _pair_pass(
    x: np.ndarray,  # (ny, nx, width) float32
    iy: int,
    residual: np.ndarray,  # (n_t, width)
    first_back: np.ndarray,  # (nx,)
    back_weights: np.ndarray,  # (2, nx), normalised
    apply: bool,
    nonnegative: bool,
    pairs: np.ndarray,  # (COPIES, n_t, 2 width): per first ray, to it and the next
    first_next: np.ndarray,  # (nx,)
    next_weights: np.ndarray,  # (2, nx)
    project: bool,
    lanes: int,  # literal, = width
) -> None:
    """Row ``iy`` of :func:`_sart_pass` for footprints of 2 rays and one vector of
    channels: each pixel reads its 2 rays' residual as one vector of ``2 lanes``, and adds
    to its first ray's entry of ``pairs``, the sums to that ray and the next side by side
    (the same vector of ``2 lanes`` at the same place for every pixel of that first ray,
    so that a sum is read back whole from the store before it; rays folded after the
    pass). No branch per tap: the weight 0 of a pixel that meets one ray costs nothing in
    a vector twice as wide (up to 8 float32 in the 256-bit half of the machine's vectors
    with 4 channels)."""
    nx = first_back.size
    width = lanes
    n_t = pairs.shape[1]
    for ix in range(nx):
        pixel = (iy * nx + ix) * width
        if apply:
            lanes_pair_dot(
                x,
                pixel,
                residual,
                first_back[ix] * width,
                back_weights[0, ix],
                back_weights[1, ix],
                lanes,
            )
            if nonnegative:
                lanes_clip(x, pixel, lanes)
        if project:
            ray = ((ix % COPIES) * n_t + first_next[ix]) * 2 * width
            lanes_pair_axpy(pairs, ray, x, pixel, next_weights[0, ix], next_weights[1, ix], lanes)


@njit(cache=True, fastmath=True)
def _row_pass(
    x: np.ndarray,  # (ny, nx, width) float32
    iy: int,
    residual: np.ndarray,  # (n_t, width)
    first_back: np.ndarray,  # (nx,) footprints of the update to apply
    back_weights: np.ndarray,  # (taps, nx), normalised
    apply: bool,
    nonnegative: bool,
    projection: np.ndarray,  # (COPIES, n_t, width), accumulated into
    first_next: np.ndarray,  # (nx,) footprints of the projection
    next_weights: np.ndarray,  # (taps, nx)
    project: bool,
    taps: int,
    sparse: bool,  # skip the taps of weight 0
    vectors: int,  # width // lanes
    lanes: int,  # literal
) -> None:
    """Row ``iy`` of :func:`_sart_pass`: each pixel updated, then projected, its channels
    ``lanes`` at a time (:mod:`.lanes`)."""
    nx = first_back.size
    width = vectors * lanes
    n_t = projection.shape[1]
    for ix in range(nx):
        pixel = (iy * nx + ix) * width
        if apply:
            ray = first_back[ix] * width
            for k in range(taps):
                if sparse and back_weights[k, ix] == 0.0:
                    continue
                for v in range(vectors):
                    lanes_axpy(
                        x,
                        pixel + v * lanes,
                        residual,
                        ray + k * width + v * lanes,
                        back_weights[k, ix],
                        lanes,
                    )
            if nonnegative:
                for v in range(vectors):
                    lanes_clip(x, pixel + v * lanes, lanes)
        if project:
            # consecutive pixels add to different copies: no wait on each other's sums
            ray = ((ix % COPIES) * n_t + first_next[ix]) * width
            for k in range(taps):
                if sparse and next_weights[k, ix] == 0.0:
                    continue
                for v in range(vectors):
                    lanes_axpy(
                        projection,
                        ray + k * width + v * lanes,
                        x,
                        pixel + v * lanes,
                        next_weights[k, ix],
                        lanes,
                    )


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


@njit(cache=True)
def _sart_step(
    k: int,
    x: np.ndarray,  # (ny, nx, width) one group
    band: int,
    n_bands: int,
    residual: np.ndarray,  # (n_t, width) of the group
    measured: np.ndarray,
    table: np.ndarray,
    order: np.ndarray,
    grid: tuple[float, float, float, float, float],
    taps: int,
    relaxation: float,
    nonnegative: bool,
    part: np.ndarray,  # (COPIES, n_t, width) this band's projection, zeroed here
    lanes: int,
    paired: bool,
) -> None:
    """Pass ``k`` of a sweep (``k = 0 .. order.size``) over one band of rows: apply the
    update of projection ``order[k - 1]``, project along ``order[k]``."""
    literally(lanes)
    literally(taps)
    literally(paired)
    ny = x.shape[0]
    previous = order[k - 1] if k > 0 else -1
    following = order[k] if k < order.size else -1
    none = np.zeros(0)
    x0, y0, p, t0, dt = grid
    part[:] = 0.0
    _sart_pass(
        x,
        band * ny // n_bands,
        (band + 1) * ny // n_bands,
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
        part,
        lanes,
        paired,
    )


@njit(parallel=True, cache=True)
def sart_sweep(
    x: np.ndarray,  # (n_groups, ny, nx, width) float32, updated in place
    data: np.ndarray,  # (n_groups, n_a, n_t, width) float32, 0 where missing
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
    parts: np.ndarray,  # (n_groups, n_bands * COPIES, n_t, width) float32, scratch
    lanes: int,  # literal: channels applied at once; width is a multiple of it
    paired: bool,  # literal: footprints of 2 rays, width == lanes (:func:`_pair_pass`)
) -> None:
    """One SART sweep over the projections in ``order``, each group of channels on its
    own. With one band per group each thread owns whole groups and runs the sweep alone,
    so no thread waits for another between projections; with one group, its ``n_bands``
    bands of rows are swept in parallel for every projection (each pixel's update is its
    own; the bands' projections are summed between projections)."""
    literally(lanes)
    literally(taps)
    literally(paired)
    n_groups, n_slots, n_t, width = parts.shape
    n_bands = n_slots // COPIES
    grid = (x0, y0, p, t0, dt)
    residual = np.zeros((n_groups, n_t, width), dtype=np.float32)
    if n_bands == 1:
        for g in prange(n_groups):
            for k in range(order.size + 1):
                _sart_step(
                    k,
                    x[g],
                    0,
                    1,
                    residual[g],
                    measured,
                    table,
                    order,
                    grid,
                    taps,
                    relaxation,
                    nonnegative,
                    parts[g, 0:COPIES],
                    lanes,
                    paired,
                )
                if k < order.size:
                    a = order[k]
                    _update_residual(parts[g], data[g, a], inv_length[a], residual[g])
        return
    for k in range(order.size + 1):
        for b in prange(n_groups * n_bands):
            g = b // n_bands
            _sart_step(
                k,
                x[g],
                b % n_bands,
                n_bands,
                residual[g],
                measured,
                table,
                order,
                grid,
                taps,
                relaxation,
                nonnegative,
                parts[g, (b % n_bands) * COPIES : (b % n_bands + 1) * COPIES],
                lanes,
                paired,
            )
        if k < order.size:
            a = order[k]
            for g in range(n_groups):
                _update_residual(parts[g], data[g, a], inv_length[a], residual[g])


SWEEP_LITERALS = ("taps", "lanes", "paired")
"""The arguments of :func:`sart_sweep` it compiles as literals (:func:`numba.literally`)."""
_SWEEP_PARAMETERS = tuple(inspect.signature(sart_sweep.py_func).parameters)


def compiled_sart_sweep(args: tuple) -> Callable[..., None]:
    """:func:`sart_sweep` compiled (or loaded from numba's cache) for ``args``, with the
    :data:`SWEEP_LITERALS` as literals: call it with ``args``. Called through its
    dispatcher, every sweep was typed again with plain integers until ``literally`` asked
    for the literal values (15-40 ms a sweep: 25 times the sweep of a 64 x 64 map)."""
    signature = tuple(
        types.literal(value) if name in SWEEP_LITERALS else numba.typeof(value)
        for name, value in zip(_SWEEP_PARAMETERS, args, strict=True)
    )
    return sart_sweep.compile(signature)


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
    """Length (um) of every ray inside the map, ``(n_angles, n_t)`` float32: the forward
    projection of a map of ones, in closed form.

    The pixels' footprints add up to the footprint of the whole ``nx p x ny p`` rectangle,
    a trapezoid of the same form as a pixel's (:class:`AngleTable`, with the rectangle's
    sides in place of ``p``; the same ramp at 0 and 90 deg): ``O(n_angles n_t)`` instead of
    a projection of every pixel.
    """
    theta = np.deg2rad(geometry.angles_deg)
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    ny, nx = geometry.shape
    p = geometry.pixel_size_um
    across_x, across_y = nx * p * np.abs(c), ny * p * np.abs(s)
    hi = np.maximum(across_x, across_y)
    lo = np.maximum(np.minimum(across_x, across_y), 1e-9 * p)
    centre = geometry.x_um.mean() * c + geometry.y_um.mean() * s
    distance = np.abs(geometry.t_um[None, :] - centre)
    ramp = np.clip((0.5 * (hi + lo) - distance) / lo, 0.0, 1.0)
    return (nx * ny * p * p / hi * ramp).astype(np.float32)

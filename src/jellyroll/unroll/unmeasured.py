"""Pixels not measured (NaN, inf) in a map to trace: filled for the cell finder and the
tracer, and the traced samples near them marked as no measure of the layer.

Read as 0 (black material), a band of three NaN rows across a wound layer's map drew false
bends of 6-14 um wherever it crossed the turns and read a 37 um bend under it as 24 um
(the 2D bends), cut a 9-turn trace to 6.7 turns (the link's dossiers), and cut every slice's
trace through a twin's X-ray volume (the 3D bends), exit 0. Pixel conventions:
:mod:`jellyroll.unroll.polar`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from jellyroll.unroll._sampling import bilinear
from jellyroll.unroll.cell import Cell, find_cell
from jellyroll.unroll.spiral import SpiralTrace

UNMEASURED_REACH_PX = 3.0
"""Distance (pixels) from a pixel not measured within which a traced sample is not measured
either: the tracer's ridge and the bend finders' foil profiles (2.5 pixels across) read the
pixels around a sample."""


def fill_unmeasured(image: np.ndarray, cell: Cell | None = None) -> tuple[np.ndarray, Cell]:
    """``image`` (ny, nx) with its pixels not measured (NaN, inf) filled for
    :func:`~jellyroll.unroll.trace_spiral`, and the cell: ``cell``, or the one
    :func:`~jellyroll.unroll.find_cell` finds on the image filled with the nearest measured
    pixel's values. Within the casing (and :data:`UNMEASURED_REACH_PX` twice beyond) the
    pixels are filled along the circles about the cell's centre (:func:`_filled_along_turns`:
    the layer is followed across a gap); beyond it (a reconstruction's outside: no gap in
    the layers) with the nearest measured value. The traced samples near the filled pixels
    are no measure of the layer: :func:`unmeasured_samples`. An image with every pixel
    measured is returned as it is (float64). ``ValueError`` when none is."""
    image = np.asarray(image, dtype=np.float64)
    measured = np.isfinite(image)
    if measured.all():
        return image, find_cell(image) if cell is None else cell
    if not measured.any():
        raise ValueError("no casing ring found: the image has no finite values")
    image = _nearest_filled(image, measured)
    if cell is None:
        cell = find_cell(image)
    # NaN beyond the casing (a reconstruction's outside) is no gap in the layers: it keeps the
    # nearest fill, and the plane's outside costs no fill along the turns
    reach = cell.radius + 2 * UNMEASURED_REACH_PX
    measured |= ~Cell(cell.x, cell.y, reach).disk(measured.shape)
    if not measured.all():
        image = _filled_along_turns(image, measured, cell.centre)
    return image, cell


def unmeasured_samples(
    image: np.ndarray, trace: SpiralTrace, reach_px: float = UNMEASURED_REACH_PX
) -> np.ndarray:
    """(n,) bool: the samples of ``trace`` within ``reach_px`` of a pixel of ``image`` (ny,
    nx, as traced, before :func:`fill_unmeasured`) not measured (NaN, inf); all False when
    every pixel is."""
    measured = np.isfinite(image)
    if measured.all():
        return np.zeros(len(trace.xy_px), bool)
    distance = ndi.distance_transform_edt(measured)  # to the nearest pixel not measured
    x, y = trace.xy_px[:, 0], trace.xy_px[:, 1]
    return ndi.map_coordinates(distance, [y, x], order=1, mode="nearest") < reach_px


def _nearest_filled(image: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """``image`` (ny, nx) with its pixels not ``measured`` (bool) set to the nearest measured
    pixel's value."""
    nearest = ndi.distance_transform_edt(~measured, return_distances=False, return_indices=True)
    return image[tuple(nearest)]


def _filled_along_turns(
    image: np.ndarray, measured: np.ndarray, centre_xy: tuple[float, float], step_px: float = 0.5
) -> np.ndarray:
    """``image`` (ny, nx; its pixels not ``measured`` filled, :func:`_nearest_filled`) with
    those pixels set by linear interpolation along the circle about ``centre_xy`` (pixels,
    the cell's centre) through them, between the nearest measured points at the same radius
    (polar samples ``step_px`` apart): a wound layer runs near such a circle, so a band of
    rows the layer runs along (a turn's top or bottom) is bridged along the layer, where the
    nearest-pixel fill smeared it across the band and cut the trace. Radii without a
    measured point keep the nearest fill."""
    ny, nx = image.shape
    cx, cy = centre_xy
    r_max = float(np.hypot(max(cx, nx - 1 - cx), max(cy, ny - 1 - cy))) + 1.0
    radii = np.arange(0.0, r_max + step_px, step_px)
    n_angles = max(360, int(np.ceil(2 * np.pi * r_max / step_px)))
    angles = np.arange(n_angles) * (2 * np.pi / n_angles)
    x = cx + radii[:, None] * np.cos(angles)[None, :]
    y = cy + radii[:, None] * np.sin(angles)[None, :]
    seen = bilinear(measured, y, x, 0.0) >= 0.999  # every pixel interpolated measured
    # clipped to the image: its edge values beyond it
    polar = bilinear(image, np.clip(y, 0, ny - 1), np.clip(x, 0, nx - 1), np.nan)
    rows = seen.any(axis=1) & ~seen.all(axis=1)
    polar[rows] = _bridged(polar[rows], seen[rows])
    yy, xx = np.nonzero(~measured)
    r = np.hypot(xx - cx, yy - cy) / step_px
    a = (np.arctan2(yy - cy, xx - cx) % (2 * np.pi)) / (2 * np.pi) * n_angles
    wrapped = np.concatenate([polar, polar[:, :1]], axis=1)  # the angle's wrap
    out = image.copy()
    out[yy, xx] = ndi.map_coordinates(wrapped, [r, a], order=1, mode="nearest")
    return out


def _bridged(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """``values`` (n_rows, n) round circles (equal angular steps) with those not ``seen``
    (bool, at least one per row seen) interpolated linearly along the row, round the circle,
    between the nearest seen ones either side (as ``np.interp(..., period=2 pi)``)."""
    n = values.shape[1]
    row, col = np.nonzero(~seen)
    key = np.flatnonzero(seen)  # row * n + column of the seen ones, ascending
    k = np.searchsorted(key, row * n + col)  # each gap's next seen one, if in its row
    after, before = key[np.minimum(k, key.size - 1)], key[np.maximum(k - 1, 0)]
    first = np.argmax(seen, axis=1)
    last = n - 1 - np.argmax(seen[:, ::-1], axis=1)
    # columns, across the circle's wrap: beyond n or below 0
    after = np.where((k < key.size) & (after // n == row), after % n, first[row] + n)
    before = np.where((k > 0) & (before // n == row), before % n, last[row] - n)
    lo, hi = values[row, before % n], values[row, after % n]
    out = values.copy()
    out[row, col] = lo + (col - before) / (after - before) * (hi - lo)
    return out

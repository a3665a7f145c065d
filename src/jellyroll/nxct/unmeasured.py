"""Voxels a CT volume holds but nothing measured, read as not measured (NaN) wherever a
volume is read: by the registration (:mod:`jellyroll.nxct.register`), the segmentation and
fusion (:mod:`jellyroll.nxct.segment`, :mod:`jellyroll.nxct.run`) and the slice location
(:mod:`jellyroll.locate.core`).

NaN and inf are not measured already (:class:`~jellyroll.io.volumes.VolumeSource` reads them
as NaN). Two kinds of finite voxels are not measured either:

- a blank plane (:func:`are_blank`), every finite voxel of it one value: a stack padded to a
  fixed number of slices (with 0, or an integer volume's offset), a detector frame lost and
  written as 0. No measurement is that flat;
- a fill ring (:func:`fill_ring`), the constant a reconstruction writes outside its circle
  (0 round an int16 X-ray whose air reads -1000).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["RING_RADIUS", "FillRings", "PlanesAsNan", "are_blank", "fill_ring"]


def are_blank(planes: np.ndarray) -> np.ndarray:
    """bool (n,): which of the (n, ny, nx) ``planes`` are blank, their finite voxels (at least
    one) all one value."""
    finite = np.isfinite(planes)
    low = np.where(finite, planes, np.inf).min(axis=(1, 2))
    high = np.where(finite, planes, -np.inf).max(axis=(1, 2))
    return low == high  # a plane without a finite voxel: inf against -inf, not blank


RING_RADIUS = 0.85
"""Least radius, as a share of half the plane's smaller side, of the circle outside which a
reconstruction fills a plane (:func:`fill_ring`): the circle its rotation axis sweeps, about
the inscribed one (masks of 0.95-1 of it; 0.85 leaves room for a resampling's shift and
scale). A constant region that begins further in (a noiseless phantom's void and casing,
the same 0 in neutrons) is data."""


def fill_ring(plane: np.ndarray) -> np.ndarray:
    """bool (ny, nx): the voxels of a plane that a reconstruction filled outside its circle,
    not measured: the region of one exact value, 4-connected to the plane's border or to its
    non-finite voxels (beyond a resampled volume's grid), whose inner edge is a circle (to 1
    voxel rms) of radius at least :data:`RING_RADIUS` of half the plane's smaller side, and
    which holds every finite voxel 2 voxels beyond that circle. Nothing when there is none.
    The circle may lie off the plane's centre: a volume resampled onto the other's grid. A
    plane whose finite voxels all hold one value (a blank plane padding a stack: no
    measurement is that flat) is filled all over.

    A ring of 0 (or of any constant) is not the void: where the other volume measured the
    cell there, the pair (0, cell) read as a class of its own, and a constant above the void
    as the cell. The small twin's planes (10 um, aged_charged) cropped to 176 voxels, so
    that the inscribed circle cuts the casing: the X-ray 0 outside it, the neutron measured
    there, labelled 0.206 of the circle cathode and 0.153 anode, the whole pair's labels
    0.177 and 0.179; a ring at the mean in both volumes 0.163 and 0.154; moved 3 voxels off
    the centre (``--grid nct``) 0.186 and 0.135 against 0.171 and 0.167; exit 0. Its voxels
    are now left out (void, and out of the thresholds' sample), as NaN were: 0.176, 0.179.
    The tiny twin's 8 planes (10 um) as int16 of offset -1000 (the void at -1000), padded by
    2 planes of 0: those labelled anode all over, and, in the sample, moving the thresholds
    so that 3.5 % of the data planes' labels changed, exit 0; now void, and the data planes'
    labels those of the unpadded stack."""
    return _fill_ring(np.asarray(plane))[0]


def _plane_edge(finite: np.ndarray) -> np.ndarray:
    """bool (ny, nx): the finite voxels on a plane's border or beside its non-finite ones."""
    edge = np.zeros(finite.shape, bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    if not finite.all():  # the dilation costs a few ms per 1024^2 plane: only where needed
        edge |= ndimage.binary_dilation(~finite)
    return edge & finite


def _fill_ring(plane: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`fill_ring` of a plane and the ring's value (NaN where there is no ring)."""
    none = np.zeros(plane.shape, bool), float("nan")
    finite = np.isfinite(plane)
    edge = _plane_edge(finite)
    if not edge.any():
        return none
    values, counts = np.unique(plane[edge], return_counts=True)
    if counts.max() < 0.5 * edge.sum():  # measured values: no fill along the edge
        return none
    if len(values) == 1 and are_blank(plane[None])[0]:
        return finite, float(values[0])
    same = plane == values[np.argmax(counts)]
    regions, _ = ndimage.label(same)
    touching = np.unique(regions[edge & same])
    ring = np.isin(regions, touching[touching > 0])
    inner = ring & ndimage.binary_dilation(finite & ~ring)
    if ring.all() or inner.sum() < 8:
        return none
    ys, xs = np.nonzero(inner)
    design = np.column_stack([xs, ys, np.ones(len(xs))])
    (a, b, c), *_ = np.linalg.lstsq(design, -(xs**2.0 + ys**2.0), rcond=None)
    cx, cy = -a / 2, -b / 2
    radius = np.sqrt(max(cx**2 + cy**2 - c, 0.0))
    rms = np.sqrt(np.mean((np.hypot(ys - cy, xs - cx) - radius) ** 2))
    y, x = np.ogrid[: plane.shape[0], : plane.shape[1]]
    beyond = finite & (np.hypot(y - cy, x - cx) > radius + 2)
    if rms > 1.0 or radius < RING_RADIUS * min(plane.shape) / 2 or not ring[beyond].all():
        return none
    return ring, float(values[np.argmax(counts)])


class FillRings:
    """:func:`fill_ring` of the planes of one volume, one after another: the same masks, the
    last plane's ring taken again where it provably holds, not searched for again.

    A reconstruction's circle is the same in every plane of its own grid, but not of a grid
    it was resampled onto (tilted, its circle moves from plane to plane) nor past a plane of
    NaN, so the ring is not fixed once per volume: it is checked. The last ring ``R`` of
    value ``v`` is this plane's when the plane's non-finite voxels are the last plane's, it
    holds ``v`` all over ``R`` (on more than half the edge, as found), and no voxel
    4-adjacent to ``R`` or on the edge outside it holds ``v``: then ``R`` is again the
    region of ``v`` connected to the edge, and the circle fit on its inner edge and the
    checks on it are the last plane's. The check costs a few ms per 1024^2 plane where the
    search cost ~20 ms (the fit on the ring's inner edge); one plane's labels took 0.161 s
    for 0.142 s without any ring search.
    """

    def __init__(self) -> None:
        self._last: tuple[np.ndarray, float, np.ndarray, np.ndarray] | None = None

    def __call__(self, plane: np.ndarray) -> np.ndarray:
        """bool (ny, nx): :func:`fill_ring` of ``plane``."""
        plane = np.asarray(plane)
        if self._last is not None and self._last[0].shape == plane.shape:
            ring, value, finite, guard = self._last
            if (
                np.array_equal(np.isfinite(plane), finite)
                and (plane[ring] == value).all()
                and not (plane[guard] == value).any()
            ):
                return ring.copy()
        ring, value = _fill_ring(plane)
        self._last = None
        if ring.any():
            finite = np.isfinite(plane)
            edge = _plane_edge(finite)
            if 2 * int((ring & edge).sum()) > int(edge.sum()):  # v the edge's only mode
                guard = (ndimage.binary_dilation(ring) | edge) & ~ring
                self._last = (ring, value, finite, guard)
        return ring


class PlanesAsNan:
    """``volume`` (array-like, sliced as ``volume[z0:z1]`` or by a tuple of slices) read as
    float32 with its planes ``planes`` (indices along z) NaN: not measured."""

    def __init__(self, volume: Any, planes: Sequence[int]) -> None:
        self.volume, self.shape = volume, tuple(volume.shape)
        self.planes = np.unique(np.asarray(planes, dtype=np.int64))
        self.name = getattr(volume, "name", None)

    def __getitem__(self, index: Any) -> np.ndarray:
        first = index[0] if isinstance(index, tuple) else index
        data = np.array(self.volume[index], dtype=np.float32)
        z = np.arange(self.shape[0])[first]
        unmeasured = np.isin(np.atleast_1d(z), self.planes)
        if unmeasured.any():
            if np.ndim(z) == 0:
                data[...] = np.nan
            else:
                data[unmeasured] = np.nan
        return data

"""Out-of-core rigid resampling of a volume onto another grid, slab by slab.

Frames follow ``SPEC.md`` section 6: a volume frame has its origin at the grid centre, voxel
``i`` of ``n`` at ``(i - (n - 1) / 2) * voxel``, axes ``(z, y, x)`` in um, and a 4x4 matrix
``A_to_B`` maps ``(z, y, x, 1)`` of frame A to frame B.

The source may be a numpy array, a ``numpy.memmap`` or an ``h5py.Dataset``: for each slab of
target planes only the source box that the slab's corners map into (plus a margin for the
interpolation kernel) is needed, so memory holds a few slabs, never the whole volume. A tilted
slab's box spans many more source planes than the slab (a 5 deg tilt across 2048 voxels: ~180
planes), so the boxes of successive slabs overlap: the planes are kept between slabs, in the
source's own dtype, and each is read from disk once (:class:`_PlaneWindow`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import hdf5plugin
import numpy as np
from scipy import ndimage

_SPLINE_MARGIN = 12
"""Extra source voxels read around a slab for ``order > 1``: the spline prefilter of a cropped
block differs from the full volume's by a term decaying as 0.27^k at k voxels from the crop
(cubic B-spline pole, Unser, IEEE Signal Proc. Mag. 16 (1999) 22), < 1e-6 at 12."""


def index_affine(
    source_shape: Sequence[int],
    source_voxel_um: float,
    target_to_source: np.ndarray,
    target_shape: Sequence[int],
    target_voxel_um: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(3x3 matrix, 3 offset) taking target voxel indices to source voxel indices (z, y, x)."""
    a = np.asarray(target_to_source, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"target_to_source must be 4x4, got {a.shape}")
    v_s, v_t = float(source_voxel_um), float(target_voxel_um)
    if not (v_s > 0 and v_t > 0):
        raise ValueError(f"voxel sizes must be positive, got {v_s} and {v_t}")
    c_s = (np.asarray(source_shape, dtype=np.float64) - 1) / 2
    c_t = (np.asarray(target_shape, dtype=np.float64) - 1) / 2
    matrix = a[:3, :3] * (v_t / v_s)
    offset = (a[:3, 3] - a[:3, :3] @ (c_t * v_t)) / v_s + c_s
    return matrix, offset


def _source_box(
    matrix: np.ndarray,
    offset: np.ndarray,
    z_range: tuple[int, int],
    target_shape: Sequence[int],
    source_shape: Sequence[int],
    margin: int,
) -> tuple[slice, ...]:
    """Source index box (slices) that target planes ``z_range`` map into, plus ``margin``."""
    corners = np.array(
        [
            (z, y, x)
            for z in (z_range[0], z_range[1] - 1)
            for y in (0, target_shape[1] - 1)
            for x in (0, target_shape[2] - 1)
        ],
        dtype=np.float64,
    )
    mapped = corners @ matrix.T + offset
    box = []
    for axis, n in enumerate(source_shape):
        lo = int(np.clip(np.floor(mapped[:, axis].min()) - margin, 0, n - 1))
        hi = int(np.clip(np.ceil(mapped[:, axis].max()) + margin, lo, n - 1)) + 1
        box.append(slice(lo, hi))
    return tuple(box)


_NATIVE_DTYPES = {np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.int32, np.float32)}
"""Source dtypes interpolated as they are (``ndimage`` computes in float64 for any of them):
kept in memory in their own size, not widened to float32."""


class _PlaneWindow:
    """Consecutive source planes of one in-plane box (rows, cols), held between slabs.

    :meth:`planes` returns planes ``lo:hi`` as a (hi - lo, rows, cols) array, moving the planes
    it already holds into place and reading only the others, so that a source read in slabs
    whose boxes overlap is read once. A numpy array (or memmap) is sliced, not copied (but
    converted to float32 when not of a dtype ``ndimage`` interpolates as it is).
    """

    def __init__(self, source: Any, rows: slice, cols: slice, capacity: int) -> None:
        self._source, self._rows, self._cols = source, rows, cols
        self._in_memory = isinstance(source, np.ndarray)
        dtype = np.dtype(getattr(source, "dtype", np.float32))  # array-likes may have none
        dtype = dtype if dtype in _NATIVE_DTYPES else np.dtype(np.float32)
        shape = (0 if self._in_memory else capacity, rows.stop - rows.start, cols.stop - cols.start)
        self._buffer = np.empty(shape, dtype)
        self._start = self._count = 0

    def planes(self, lo: int, hi: int) -> np.ndarray:
        if self._in_memory:  # a view, unless its dtype is not one interpolated as it is
            return np.asarray(self._source[lo:hi, self._rows, self._cols], self._buffer.dtype)
        kept_lo, kept_hi = max(lo, self._start), min(hi, self._start + self._count)
        if kept_lo < kept_hi:
            held, wanted, n = kept_lo - self._start, kept_lo - lo, kept_hi - kept_lo
            # numpy copies overlapping slices as if through a temporary
            self._buffer[wanted : wanted + n] = self._buffer[held : held + n]
        else:
            kept_lo = kept_hi = hi
        for a, b in ((lo, kept_lo), (kept_hi, hi)):
            if a < b:
                self._buffer[a - lo : b - lo] = self._source[a:b, self._rows, self._cols]
        self._start, self._count = lo, hi - lo
        return self._buffer[: hi - lo]


def resample_slabs(
    source: Any,
    source_voxel_um: float,
    target_to_source: np.ndarray,
    target_shape: Sequence[int],
    target_voxel_um: float,
    *,
    slab: int = 16,
    order: int = 1,
    outside: float | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(z_start, values)`` slabs of ``source`` resampled onto the target grid.

    ``source``: (nz, ny, nx) array-like with numpy slicing (array, memmap, h5py dataset), voxel
    ``source_voxel_um``. ``target_to_source``: 4x4 (um) from the target frame to the source
    frame. ``values``: float32 (<= slab, ny_t, nx_t), spline interpolation of ``order``
    (``scipy.ndimage.affine_transform``, i.e. ``map_coordinates`` on the affine grid without
    storing the coordinates); points outside the source take the nearest edge voxel, as in
    :func:`jellyroll.phantom.nxct.resample_rigid`, or the value ``outside`` when given
    (NaN: "not measured", which the fusion and segmentation treat as such).
    """
    source_shape = tuple(int(n) for n in source.shape)
    shape = tuple(int(n) for n in target_shape)
    if len(source_shape) != 3 or len(shape) != 3:
        raise ValueError(f"expected 3D shapes, got {source_shape} and {shape}")
    if slab < 1:
        raise ValueError(f"slab must be >= 1, got {slab}")
    matrix, offset = index_affine(
        source_shape, source_voxel_um, target_to_source, shape, target_voxel_um
    )
    margin = order + 1 + (_SPLINE_MARGIN if order > 1 else 0)
    starts = range(0, shape[0], slab)
    boxes = [
        _source_box(matrix, offset, (z0, min(z0 + slab, shape[0])), shape, source_shape, margin)
        for z0 in starts
    ]
    # one in-plane box for all slabs (their union), so that planes carry over between slabs
    rows, cols = (
        slice(min(b[axis].start for b in boxes), max(b[axis].stop for b in boxes))
        for axis in (1, 2)
    )
    window = _PlaneWindow(source, rows, cols, max(b[0].stop - b[0].start for b in boxes))
    for z0, (planes, _, _) in zip(starts, boxes, strict=True):
        z1 = min(z0 + slab, shape[0])
        block = window.planes(planes.start, planes.stop)
        start = np.array([planes.start, rows.start, cols.start], dtype=np.float64)
        # block index = matrix @ (o + (z0, 0, 0)) + offset - start, o the slab's voxel index
        block_offset = offset + matrix[:, 0] * z0 - start
        values = _interpolate(block, matrix, block_offset, (z1 - z0, shape[1], shape[2]),
                              order, outside)  # fmt: skip
        yield z0, values
        del values  # the consumer may have dropped it: do not hold it during the next slab


UNMEASURED_WEIGHT = 1e-3
"""Share of a target voxel's interpolation weight from non-finite source voxels (not
measured) above which it is NaN: the rest, read as 0, moves a value by at most that share
(order 1)."""


def _interpolate(
    block: np.ndarray,
    matrix: np.ndarray,
    offset: np.ndarray,
    output_shape: tuple[int, int, int],
    order: int,
    outside: float | None,
) -> np.ndarray:
    """float32 ``output_shape`` of ``block`` at ``matrix @ index + offset`` (see
    :func:`resample_slabs`); NaN where non-finite source voxels (not measured) carry more
    than :data:`UNMEASURED_WEIGHT` of the interpolation weight.

    Interpolated as they are, NaN spread along whole lines through the spline prefilter
    (``order`` > 1: one NaN voxel made the whole 5^3 output NaN), and inf gave inf or NaN;
    now they are filled (0, or the block's mean for ``order`` > 1) and the target voxels
    they reach marked NaN. Order 1 is then exact elsewhere; beyond the cubic kernel's
    reach the prefilter's ringing about the fill remains (a 1-voxel hole in noise of unit
    range: 0.014)."""
    kwargs = {
        "offset": offset,
        "output_shape": output_shape,
        "output": np.float32,
        "order": order,
        "mode": "nearest" if outside is None else "constant",
    }
    finite = np.isfinite(block) if block.dtype.kind == "f" else None
    if finite is None or finite.all():
        return ndimage.affine_transform(
            block, matrix, cval=0.0 if outside is None else outside, prefilter=order > 1,
            **kwargs,
        )  # fmt: skip
    # order 1: any fill is exact where the weight is 0; order > 1: the prefilter rings
    # about the fill (0.27^k at k voxels), least for a fill near the values around it
    fill = float(np.mean(block[finite], dtype=np.float64)) if order > 1 and finite.any() else 0.0
    values = ndimage.affine_transform(
        np.where(finite, block, fill).astype(block.dtype, copy=False), matrix,
        cval=0.0 if outside is None else outside, prefilter=order > 1, **kwargs,
    )  # fmt: skip
    # the B-spline basis without its prefilter: the weight each target voxel draws from them
    weight = ndimage.affine_transform(
        (~finite).astype(np.float32), matrix, cval=0.0, prefilter=False, **kwargs
    )
    values[weight > UNMEASURED_WEIGHT] = np.nan
    return values


def write_resampled(
    h5_group: Any,
    name: str,
    source: Any,
    source_voxel_um: float,
    target_to_source: np.ndarray,
    target_shape: Sequence[int],
    target_voxel_um: float,
    *,
    slab: int = 16,
    order: int = 1,
    outside: float | None = None,
) -> Any:
    """Write :func:`resample_slabs` into ``h5_group[name]``, float32, chunked and compressed
    with Blosc LZ4 + byte shuffle (hdf5plugin: ~1 GB/s where gzip wrote ~40 MB/s of noisy
    float32; the file is a scratch copy, read back once).

    Chunks are (slab, <=256, <=256) so that a slab is written without reading back others.
    The dataset gets the attribute ``voxel_um`` (the target voxel). Returns the dataset.
    """
    shape = tuple(int(n) for n in target_shape)
    chunks = (min(slab, shape[0]), min(256, shape[1]), min(256, shape[2]))
    data = h5_group.create_dataset(
        name,
        shape=shape,
        dtype=np.float32,
        chunks=chunks,
        **hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
    )
    data.attrs["voxel_um"] = float(target_voxel_um)
    for z0, values in resample_slabs(
        source,
        source_voxel_um,
        target_to_source,
        shape,
        target_voxel_um,
        slab=slab,
        order=order,
        outside=outside,
    ):
        data[z0 : z0 + values.shape[0]] = values
    return data

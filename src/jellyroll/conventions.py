"""Conventions every stage shares: the map pixel grid, robust statistics, the line shape,
the sub-sample peak, and how a (y, x, q) cube is read (by row slabs of whole chunks, in
memory or on disk).

A 2D map of shape (ny, nx) with square pixels of ``p`` um has pixel (iy, ix) centred at
``x = (ix - (nx - 1) / 2) p``, ``y = (iy - (ny - 1) / 2) p``: the map centre is the
rotation axis of the scan and y grows with the row index (see
:mod:`jellyroll.phantom.acquisition` for the projection geometry built on it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage, spatial

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
"""Standard deviation of a Gaussian per unit full width at half maximum."""
MAD_TO_SIGMA = 1.4826
"""Standard deviation of a normal distribution per unit median absolute deviation."""

UM_PER_UNIT = {
    "um": 1.0,
    "µm": 1.0,
    "μm": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "\\u00b5m": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "mm": 1e3,
    "millimeter": 1e3,
    "millimetre": 1e3,
    "cm": 1e4,
    "centimeter": 1e4,
    "centimetre": 1e4,
    "m": 1e6,
    "meter": 1e6,
    "metre": 1e6,
}
"""Micrometres per length unit, by the names files use (see :func:`um_per`)."""


def unit_text(unit: object) -> str:
    """A unit attribute as text (HDF5 gives bytes or str), stripped.

    Bytes are UTF-8, or latin-1 where they are not (old writers: ``b"\\xb5m"`` raised
    UnicodeDecodeError)."""
    if isinstance(unit, bytes):
        try:
            return unit.decode().strip()
        except UnicodeDecodeError:
            return unit.decode("latin-1").strip()
    return str(unit).strip()


def unit_factor(unit: object, table: dict[str, float]) -> float | None:
    """The factor of ``unit`` in ``table`` (any case, spaces ignored, a plural ``s``
    dropped), None when the table does not know it.

    The plural ``s`` is dropped only where more than one letter stays: ``ms`` is a
    millisecond, not metres (it read as 1e6 um)."""
    text = unit_text(unit).lower().replace(" ", "")
    singular = text.removesuffix("s")
    return table.get(text, table.get(singular) if len(singular) > 1 else None)


def um_per(unit: object) -> float | None:
    """Micrometres per ``unit`` (a name of :data:`UM_PER_UNIT`); None when unknown."""
    return unit_factor(unit, UM_PER_UNIT)


MAX_TRANSLATION_SPAN_MM = 100.0
"""Widest span (mm) of a slice's translations: a pencil-beam line crosses a cell of a few mm
(SPEC section 1: ~10 mm); wider readings are micrometres written without ``@units``."""


def mm_per(unit: object) -> float | None:
    """Millimetres per length ``unit`` (:func:`um_per`); None when unknown."""
    um = um_per(unit)
    return None if um is None else um / 1000.0


PER_ANGSTROM_PER_UNIT = {
    "1/angstrom": 1.0,
    "angstrom^-1": 1.0,
    "1/a": 1.0,
    "a^-1": 1.0,
    "a-1": 1.0,
    "1/\u00e5": 1.0,
    "\u00e5^-1": 1.0,
    "\u00e5-1": 1.0,
    "q_a^-1": 1.0,
    "1/nm": 0.1,
    "nm^-1": 0.1,
    "nm-1": 0.1,
    "q_nm^-1": 0.1,
}
"""Inverse angstroms per unit of scattering vector, by the names files use (lower case;
see :func:`per_angstrom`)."""


def per_angstrom(unit: object) -> float | None:
    """Inverse angstroms per ``unit`` of q (a name of :data:`PER_ANGSTROM_PER_UNIT`); None
    when it is not a unit of q."""
    return unit_factor(unit, PER_ANGSTROM_PER_UNIT)


DEG_PER_UNIT = {
    "deg": 1.0,
    "degree": 1.0,
    "\u00b0": 1.0,
    "rad": 180.0 / math.pi,
    "radian": 180.0 / math.pi,
}
"""Degrees per angle unit, by the names files use (see :func:`deg_per`)."""


def deg_per(unit: object) -> float | None:
    """Degrees per angle ``unit`` (a name of :data:`DEG_PER_UNIT`); None when unknown."""
    return unit_factor(unit, DEG_PER_UNIT)


def px_to_um(index: ArrayLike, n: int, pixel_size_um: float) -> np.ndarray | float:
    """Map coordinate (um) of a (fractional) pixel ``index`` along an axis of ``n`` pixels.

    Same shape as ``index`` (a float for a scalar); inverse of :func:`um_to_px`.
    """
    return (np.asarray(index, dtype=float) - (n - 1) / 2) * pixel_size_um


def um_to_px(position_um: ArrayLike, n: int, pixel_size_um: float) -> np.ndarray | float:
    """Fractional pixel index of a map coordinate ``position_um`` (um) along ``n`` pixels.

    Same shape as ``position_um`` (a float for a scalar); inverse of :func:`px_to_um`.
    """
    return np.asarray(position_um, dtype=float) / pixel_size_um + (n - 1) / 2


def pixel_centres_um(n: int, pixel_size_um: float) -> np.ndarray:
    """Centres (um) of ``n`` pixels of ``pixel_size_um`` with the grid centre at 0, (n,)."""
    return px_to_um(np.arange(n), n, pixel_size_um)


def pixel_extent(columns: np.ndarray, rows: np.ndarray) -> list[float]:
    """``imshow`` extent [left, right, bottom, top] of an image whose pixel centres are
    ``columns`` (n_columns,) and ``rows`` (n_rows,), each evenly spaced, row 0 at the top
    (``origin="upper"``): the outer pixel edges, centres +- half a step, in the centres'
    units (not the first and last centres: those drew every pixel stretched, the first one
    half a pixel off). An axis of one pixel takes the other's step (1 when both have one)."""
    step_c, step_r = (float(a[1] - a[0]) if a.size > 1 else None for a in (columns, rows))
    step_c = step_c or step_r or 1.0
    step_r = step_r or step_c
    return [
        float(columns[0] - step_c / 2), float(columns[-1] + step_c / 2),
        float(rows[-1] + step_r / 2), float(rows[0] - step_r / 2),
    ]  # fmt: skip


def map_extent_mm(x_um: np.ndarray, y_um: np.ndarray) -> list[float]:
    """``imshow`` extent (mm) of a map with pixel centres ``x_um`` (nx,) and ``y_um`` (ny,):
    :func:`pixel_extent` in mm (row 0, the first y, at the top)."""
    return [edge / 1000 for edge in pixel_extent(x_um, y_um)]


SLAB_BYTES = 64 * 2**20
"""About how much of a cube :func:`row_slabs` reads at a time."""


class RowSliced(Protocol):
    """A cube held whole (an ndarray) or on disk (an h5py dataset), or made on the way
    (a factored reconstruction): ``cube[a:b]`` gives rows ``a..b`` of its first axis."""

    shape: tuple[int, ...]
    dtype: np.dtype
    ndim: int

    def __getitem__(self, rows: slice) -> np.ndarray: ...


def slab_rows(cube: RowSliced, slab_bytes: int | None = None) -> int:
    """Rows of the first axis per slab of about ``slab_bytes`` (default :data:`SLAB_BYTES`;
    at least one), a whole number of the cube's chunk rows when it is a chunked dataset: a
    slab that cut a compressed chunk would decompress (or, written, rewrite) it once per
    slab."""
    slab_bytes = SLAB_BYTES if slab_bytes is None else slab_bytes
    row_bytes = max(1, np.dtype(cube.dtype).itemsize * math.prod(cube.shape[1:]))
    chunks = getattr(cube, "chunks", None)
    chunk_rows = chunks[0] if chunks else 1
    return max(chunk_rows, slab_bytes // row_bytes // chunk_rows * chunk_rows)


def slab_ranges(cube: RowSliced, slab_bytes: int | None = None) -> Iterator[slice]:
    """The slices of the first axis, slab by slab (:func:`slab_rows`)."""
    step = slab_rows(cube, slab_bytes)
    for start in range(0, cube.shape[0], step):
        yield slice(start, min(cube.shape[0], start + step))


def row_slabs(cube: RowSliced, slab_bytes: int | None = None) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, cube[rows])`` slab by slab of the first axis (:func:`slab_rows`): a cube on
    disk is never read whole, one in memory is given as views."""
    for rows in slab_ranges(cube, slab_bytes):
        yield rows, np.asarray(cube[rows])


def masked_mean_profiles(cube: RowSliced, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mean profile (n_q,) of ``cube`` (ny, nx, n_q) over each mask (ny, nx) that has
    pixels, each channel over its finite values (NaN where it has none); read by row slabs
    (:func:`row_slabs`), so that no copy of the cube is made."""
    n_q = cube.shape[-1]
    names = [name for name, mask in masks.items() if mask.any()]
    sums = {name: np.zeros(n_q) for name in names}
    counts = {name: np.zeros(n_q) for name in names}
    for rows, slab in row_slabs(cube):
        finite = np.isfinite(slab)
        for name in names:
            inside = masks[name][rows]
            sums[name] += np.where(finite[inside], slab[inside], 0.0).sum(axis=0, dtype=np.float64)
            counts[name] += finite[inside].sum(axis=0)
    return {
        name: np.divide(sums[name], counts[name], out=np.full(n_q, np.nan), where=counts[name] > 0)
        for name in names
    }


def empty_channels(cube: RowSliced) -> np.ndarray:
    """(n,) True where a channel of ``cube`` (..., n), channels last (a sinogram or a
    reconstruction, in memory or on disk), holds no finite value (:func:`unusable_channels`)."""
    return unusable_channels(cube)[0]


def unusable_channels(cube: RowSliced) -> tuple[np.ndarray, np.ndarray]:
    """Channels of ``cube`` (..., n), in memory or on disk, read by row slabs
    (:func:`row_slabs`: no full-size temporary): (n,) True where a channel holds no finite
    value, and (n,) True where every finite value it holds is exactly 0 (a channel nothing
    reached, e.g. a detector gap integrated as 0 rather than NaN: a LiC12 channel of zeros
    took 29 % off the tiny twin's LiC12 map, exit 0)."""
    finite = np.zeros(cube.shape[-1], dtype=bool)
    nonzero = np.zeros(cube.shape[-1], dtype=bool)
    leading = tuple(range(cube.ndim - 1))
    for _, slab in row_slabs(cube):
        held = np.isfinite(slab)
        finite |= held.any(axis=leading)
        # in place (NaN is truthy, but not held): no second slab-sized mask
        np.logical_and(held, slab, out=held)
        nonzero |= held.any(axis=leading)
    return ~finite, finite & ~nonzero


def finite_gaussian(values: np.ndarray, sigma: float | tuple[float, ...]) -> np.ndarray:
    """Gaussian smoothing (``sigma`` in samples, one for every axis or one per axis) of the
    finite entries of ``values`` (normalised convolution), NaN where ``values`` is not
    finite, in its float dtype: a hole or a band of NaN neither lowers nor lifts its
    neighbours (read as 0, it drew spots along its edges)."""
    values = np.asarray(values)
    dtype = values.dtype if values.dtype.kind == "f" else np.dtype(np.float64)
    finite = np.isfinite(values)
    if finite.all():
        return ndimage.gaussian_filter(values.astype(dtype, copy=False), sigma)
    weight = ndimage.gaussian_filter(finite.astype(dtype), sigma)
    total = ndimage.gaussian_filter(np.where(finite, values, 0).astype(dtype), sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, total / weight, np.nan).astype(dtype, copy=False)


MIN_MEASURED_SHARE = 0.8
"""Least share of a volume's field of view (:func:`field_of_view`) that must be measured (not
NaN or inf) for the registration, the slice's location and the 3D bends to rest on it.
Measured on the test twin's pair (40 um X-ray voxels, three remounts): NaN rows across 10 %
of the cylinder or NaN end planes (17 %) leave the registration within 5.4 um RMS (1.9-4.6
intact); 10 rows through the roll's core (76 % measured) 12-36 um off, the top 6 of 24
planes (75 %, the roll's end hidden) 26 um, exit 0: refused."""

NAN_ONLY_OUTSIDE = (
    "NaN only where nothing was measured: a detector gap, the outside of a circular field of "
    "view. NaN outside a square or turned field counts against the share: fill it with the "
    "air's value or crop the array to the field"
)
"""How a volume must mark what was not measured for :data:`MIN_MEASURED_SHARE` to judge it
(the advice of every refusal under it): the share is taken over the disk of the field of
view (:func:`field_of_view`), so NaN corners of a turned or padded square field are read as
a cell not measured (the tiny twin's volume turned 30 deg with NaN outside: 64 %)."""


def field_of_view(measured: np.ndarray) -> np.ndarray:
    """(ny, nx) bool: the disk of a slice's field of view, where a volume's cell lies, from
    ``measured`` (ny, nx) bool, its pixels measured (finite) in some plane: the disk
    inscribed in the slice, or the smaller one about the same centre that holds every
    measured pixel (a reconstruction's circle inside a wider array: NaN outside it is no
    hole in the measurement; judged in the inscribed disk, a circle of 0.8 of it was 64 %
    measured). The inscribed disk when nothing is measured."""
    ny, nx = measured.shape
    iy = (np.arange(ny) - (ny - 1) / 2) / (ny / 2)
    ix = (np.arange(nx) - (nx - 1) / 2) / (nx / 2)
    radius = np.hypot(iy[:, None], ix[None, :])
    field = min(1.0, float(radius[measured].max())) if measured.any() else 1.0
    return radius <= field


def measured_shares(stack: np.ndarray) -> np.ndarray:
    """(nz,): per plane of ``stack`` (nz, ny, nx; NaN or inf not measured), the share
    measured inside its field of view (:func:`field_of_view`, from the pixels measured in
    any plane); 1 where the field holds no pixel."""
    inside = stack[:, field_of_view(np.isfinite(stack).any(axis=0))]
    return np.isfinite(inside).mean(axis=1) if inside.shape[1] else np.ones(stack.shape[0])


def measured_field(
    measured: np.ndarray, origin_yx_um: ArrayLike, pixel_um: float
) -> Callable[[np.ndarray], np.ndarray]:
    """Whether (n, 2) points (y, x) um lie in a map's or a volume's field of view: the convex
    hull of its measured pixels ``measured`` (ny, nx) bool, pixel (0, 0) centred at
    ``origin_yx_um``, ``pixel_um`` apart, to their outer edges. A scan's field is convex (a
    rectangle, a reconstruction's circle); NaN holes and stripes inside it are masked pixels,
    not a cut through the cell (the tiny twin placed as well with them)."""
    edge = measured & ~ndimage.binary_erosion(measured, border_value=0)
    half = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    corners = (np.argwhere(edge)[:, None, :] + half[None]).reshape(-1, 2)
    hull = spatial.Delaunay(corners[spatial.ConvexHull(corners).vertices])
    origin = np.asarray(origin_yx_um, dtype=np.float64)

    def inside(points: np.ndarray) -> np.ndarray:
        return hull.find_simplex((points - origin) / pixel_um) >= 0

    return inside


def disk_cut_by_field(
    centre_yx_um: ArrayLike, radius_um: float, inside: Callable[[np.ndarray], np.ndarray]
) -> tuple[float, float]:
    """The fraction of the disk of ``radius_um`` about ``centre_yx_um`` (um) outside a field
    of view (points not ``inside`` it, e.g. :func:`measured_field`; a 201 x 201 lattice over
    the disk) and the shift of the centroid of the rest from the centre (fraction of the
    radius): how much of a cell's cross-section a field cuts off, and on which side."""
    offsets = np.linspace(-radius_um, radius_um, 201)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    disk = np.hypot(dy, dx) <= radius_um
    points = np.column_stack([dy[disk], dx[disk]])
    seen = inside(points + np.asarray(centre_yx_um, dtype=np.float64))
    if not seen.any():
        return 1.0, 1.0
    shift = float(np.hypot(*points[seen].mean(axis=0))) / radius_um
    return float(1.0 - seen.mean()), shift


def block_mean(images: np.ndarray, block: int) -> np.ndarray:
    """``images`` (..., ny, nx) averaged over ``block`` x ``block`` pixels in their last two
    axes (the rows and columns past a whole block cut)."""
    if block <= 1:
        return images
    ny, nx = (images.shape[-2] // block) * block, (images.shape[-1] // block) * block
    blocks = images[..., :ny, :nx].reshape(
        *images.shape[:-2], ny // block, block, nx // block, block
    )
    return blocks.mean(axis=(-3, -1))


def map_shift_px(reference: np.ndarray, moving: np.ndarray, upsample: int = 20) -> np.ndarray:
    """(rows, columns) shift (px) that registers the map ``moving`` onto ``reference`` (same
    grid; NaN as 0): cross-correlation, sub-pixel to 1/``upsample``, not phase-normalised
    (which biases smooth maps by half a pixel)."""
    from skimage.registration import phase_cross_correlation

    return phase_cross_correlation(
        np.nan_to_num(np.asarray(reference, np.float64)),
        np.nan_to_num(np.asarray(moving, np.float64)),
        upsample_factor=upsample,
        normalization=None,
    )[0]


def finite_median(values: ArrayLike) -> float:
    """Median of the finite ``values`` (any shape); NaN when there are none."""
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def robust_sigma(values: ArrayLike) -> float:
    """Standard deviation from the median absolute deviation of the finite ``values``."""
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    return MAD_TO_SIGMA * float(np.median(np.abs(values - np.median(values))))


def pseudo_voigt(q: np.ndarray, centre: float, fwhm: float, eta: float = 0.3) -> np.ndarray:
    """Pseudo-Voigt line of unit height at ``centre`` (A^-1) with FWHM ``fwhm`` (A^-1) on ``q``
    (A^-1): the Lorentzian share ``eta`` plus ``1 - eta`` of a Gaussian of the same FWHM.

    The one line shape of the twin's patterns and of the analysis's line fits, so both mean
    the same by a width and a Lorentzian share."""
    x = (np.asarray(q, np.float64) - centre) / fwhm
    return eta / (1.0 + 4.0 * x * x) + (1.0 - eta) * np.exp(-4.0 * np.log(2.0) * x * x)


def parabola_vertex(left: ArrayLike, mid: ArrayLike, right: ArrayLike) -> np.ndarray:
    """Offset (-0.5..0.5 samples) from ``mid`` of the vertex of the parabola through three
    equally spaced samples (0 where they do not form a maximum): a peak to a fraction of a
    sample."""
    left, mid, right = (np.asarray(v, dtype=float) for v in (left, mid, right))
    curvature = left - 2 * mid + right
    peaked = curvature < 0
    offset = np.divide(0.5 * (left - right), curvature, out=np.zeros_like(curvature), where=peaked)
    return np.clip(offset, -0.5, 0.5)


FULL_TURN_GAP = 3.0
"""Widest gap, in median angular steps, of a scan still taken for a full turn (a frame or
two dropped)."""


def is_full_turn(angles_deg: np.ndarray) -> bool:
    """Whether the finite ``angles_deg`` cover a full turn (modulo 360, no gap wider than
    :data:`FULL_TURN_GAP` median steps): every line is then measured from both sides, and
    a half acquisition (the axis near one end of the lines) sees the whole disk its longer
    side reaches."""
    angles_deg = np.asarray(angles_deg, dtype=np.float64)
    folded = np.unique(np.mod(angles_deg[np.isfinite(angles_deg)], 360.0))
    if folded.size < 3:
        return False
    gaps = np.diff(np.r_[folded, folded[0] + 360.0])
    return float(gaps.max()) <= FULL_TURN_GAP * float(np.median(gaps))


MAX_TURN_GAP_DEG = 90.0
"""Widest gap (deg, modulo 360) of a scan over more than a half turn that still sees the
lines beyond a half acquisition's short side from both sides of the sample (a gap of ``G``
leaves such a line ``G`` of its 180 deg of directions unmeasured: no more than
:data:`~jellyroll.recon.geometry.MIN_COVERAGE_DEG` may lack)."""


def sees_both_sides(angles_deg: np.ndarray) -> bool:
    """Whether the finite ``angles_deg`` cover a full turn
    (:func:`is_full_turn`) or one with a gap (modulo 360) of at most
    :data:`MAX_TURN_GAP_DEG`: a half acquisition's lines beyond the short side are then
    measured, once, over most of their directions, and its map covers the disk the long
    side reaches (a turn whose last 15 deg were lost was taken for a half turn: its map,
    the scanned width about the axis, cut the sample off, and FBP read 1.3-2.5 times the
    truth, exit 0)."""
    angles_deg = np.asarray(angles_deg, dtype=np.float64)
    if is_full_turn(angles_deg):
        return True
    folded = np.unique(np.mod(angles_deg[np.isfinite(angles_deg)], 360.0))
    if folded.size < 3:
        return False
    gaps = np.diff(np.r_[folded, folded[0] + 360.0])
    return float(gaps.max()) <= MAX_TURN_GAP_DEG


def conjugate_projections(angles_deg: np.ndarray) -> np.ndarray:
    """Index ``(n_angles,)`` of the projection half a turn from each (within half the
    median step between the distinct angles modulo 360 deg), -1 where there is none."""
    angles = np.mod(np.asarray(angles_deg, dtype=np.float64), 360.0)
    distinct = np.unique(angles)
    if distinct.size < 2:
        return np.full(angles.size, -1, dtype=np.intp)
    step = float(np.median(np.diff(distinct)))
    gap = np.abs(np.mod(angles[None, :] - angles[:, None], 360.0) - 180.0)
    nearest = np.argmin(gap, axis=1)
    found = gap[np.arange(angles.size), nearest] <= 0.5 * step
    return np.where(found, nearest, -1)


def redundancy_weights(t_um: np.ndarray) -> np.ndarray:
    """Share ``(n_t,)`` of each ray ``t_um`` (um from the axis, ascending) in the line it
    measures in a full turn: 1 beyond the short side (measured once), and across the band
    ``|t| <= T`` measured from both sides (``T`` the short side's reach)
    ``sin^2(pi/4 (1 + t/T))`` towards the long side, so that a ray and its conjugate at
    ``-t`` sum to 1 and the weight has no step for the ramp filter to ring on."""
    t_um = np.asarray(t_um, dtype=np.float64)
    long_side = 1.0 if t_um[-1] + t_um[0] >= 0 else -1.0
    reach = min(-t_um[0], t_um[-1])
    if reach <= 0:  # the axis at the end of the lines: every line measured once
        return np.ones_like(t_um)
    return np.sin(0.25 * np.pi * (1.0 + np.clip(long_side * t_um / reach, -1.0, 1.0))) ** 2


def pearson(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson correlation of two arrays of one shape (over all their values); 0 when one
    is constant."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return float(np.sum(a * b)) / norm if norm > 0 else 0.0


def interp_in_any_order(
    x: np.ndarray | float, xp: np.ndarray, fp: np.ndarray, **options: float
) -> np.ndarray:
    """:func:`numpy.interp` of ``fp`` given on ``xp`` in any order (an imported sinogram's q
    may descend) at ``x``; ``options``: its ``left`` and ``right``. On a descending ``xp``
    np.interp returns wrong values without a word."""
    order = np.argsort(xp)
    return np.interp(x, np.asarray(xp)[order], np.asarray(fp)[order], **options)

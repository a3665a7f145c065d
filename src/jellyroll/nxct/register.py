"""Multimodal rigid registration of a neutron CT volume onto a lab X-ray CT volume of one cell.

Frames follow SPEC section 6: a volume frame has its origin at the grid centre (voxel ``i`` of
``n`` at ``(i - (n - 1) / 2) * voxel``), axes ``(z, y, x)`` in um, and a 4x4 matrix ``A_to_B``
maps ``(z, y, x, 1)`` of frame A to frame B. A one-slice volume (``nz == 1``) is a 2D image.

Method (fully automatic, any rotation about the cell axis):

1. :func:`find_cell_axis`: per slice of a block-averaged copy, the centroid of the cell's
   outline (the convex hull of what stands above the background [Otsu 1979]); a 3D line fitted
   by least squares through the centres of the slices whose outline has the body's area (not
   the roll's end or a clipped field), with iterative rejection of outliers (> 3 robust
   standard deviations from the median absolute deviation).
2. Each volume is brought into its *axis frame* (cell axis on z through the origin), the
   neutron axis first moved across itself to where its polar unwrapping best matches the
   X-ray's (:func:`_centred_on_content`: an outline that is not the cell's, a holder's, is
   not centred on it); where the X-ray's axis moved so about the neutron's matches better,
   steps 2-3 run from both and the lower metric is kept (:func:`_centrings`). The rotation
   about the axis is found by an exhaustive search over all angles (0.5 deg steps) of the
   mutual information [Viola & Wells 1997; Maes et al. 1997] between polar unwrappings
   (radius x angle x height) of the two volumes, quantised into equal-population bins, one
   circular shift per angle; then the shift along the axis by the same MI over whole-step
   shifts of the height grid, and the angle again at that shift.
   At that pose, :func:`implied_scale`: the isotropic scale of most mutual information, scanned
   over +-20 %; a rigid registration refuses a pair that implies a scale off 1 by more than
   2 % (:func:`check_scale`: a voxel size is wrong), and a similarity one starts from it.
3. The six rigid parameters (and an isotropic scale with ``scale=True``) are refined with
   SimpleITK [Lowekamp et al. 2013]: Mattes mutual information [Mattes et al. 2003] inside the
   cell, versor rigid (or similarity) transform, regular-step gradient descent at half
   resolution, then Powell's direction-set search at full resolution on a fixed random fifth
   of the voxels (the axial shift, flat in the metric, is where the gradient descent stops
   short). One thread and a fixed sampling seed: deterministic.
4. Where the copies are coarser than the volumes (large volumes), a last level at the
   volumes' own voxels on 16 blocks of the neutron volume spread over the cell
   (:func:`_refine_fine`): Mattes MI of points drawn in them against X-ray crops, Powell's
   search over the rotation and the shift across the axis.
5. Then the shift along the axis at the volumes' own voxels (:func:`_refine_axial`): the
   position of the cell's step along its axis (the roll's end) in both volumes, on 16 blocks
   around the cell at the heights where the coarse copy changes most along the axis, in
   turn; where no step pins it, the coarse levels' shift stays and the result says so.

NaN and inf voxels are not measured (a detector gap, a cut field of view, a reconstruction's
outside): every level leaves them out, in either volume (a
:class:`~jellyroll.io.volumes.VolumeSource` reads them as NaN), and a volume measured over
too little of its stack is refused (:func:`check_measured`). So are blank planes, whose
finite voxels all hold one value (a stack padded to a fixed number of slices with 0 or an
integer volume's offset: no measurement is that flat), and in the copies a reconstruction's
fill ring (:func:`jellyroll.nxct.unmeasured.fill_ring`). Where a copy holds NaN, the gradient
descent's level is smoothed over the measured voxels only (:func:`_smoothed`) and its
metric's gradient taken by central differences, not by a Gaussian derivative of the whole
image, which carried the filling (:func:`_filled`) past the mask's margin.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage, optimize
from scipy.spatial.transform import Rotation
from skimage.filters import threshold_otsu
from skimage.morphology import convex_hull_image

from jellyroll.conventions import (
    MIN_MEASURED_SHARE,
    NAN_ONLY_OUTSIDE,
    disk_cut_by_field,
    finite_gaussian,
    measured_field,
    measured_shares,
    parabola_vertex,
)
from jellyroll.interpolation import linear_at
from jellyroll.nxct.unmeasured import RING_RADIUS, FillRings, PlanesAsNan, are_blank

__all__ = [
    "CellAxis",
    "Registration",
    "apply_transform",
    "downsample",
    "downsample_levels",
    "find_cell_axis",
    "register_volumes",
    "rms_error",
    "rms_error_along",
]


@dataclass(frozen=True)
class CellAxis:
    """The cell axis in a volume frame: ``point`` (z, y, x) um on the axis at the frame's z = 0
    height, ``direction`` (z, y, x) unit vector with a positive z component, ``radius_um`` the
    mean radius of the cell silhouette, ``centres_zyx_um`` (n, 3) the slice centres used."""

    point: np.ndarray
    direction: np.ndarray
    radius_um: float
    centres_zyx_um: np.ndarray

    def to_axis_frame(self) -> np.ndarray:
        """4x4 matrix: volume frame -> axis frame (axis on z through the origin)."""
        rotation = _rotation_to_z(self.direction)
        matrix = np.eye(4)
        matrix[:3, :3] = rotation
        matrix[:3, 3] = -rotation @ self.point
        return matrix


class _Coarse(NamedTuple):
    """The coarse levels' result from one start (:func:`_centrings`): the polish's Mattes MI,
    the same on every voxel of its mask where two starts are judged (:func:`_mattes_at`;
    lower is better), the neutron-to-X-ray matrix, the scale and the pose search's turn
    (:data:`UPRIGHT` or :data:`UPSIDE_DOWN`) from the axes it started from."""

    metric_value: float
    judged_metric: float
    matrix: np.ndarray
    scale: float
    turn: np.ndarray
    xct_axis: CellAxis
    nct_axis: CellAxis


@dataclass(frozen=True)
class Registration:
    """Result of :func:`register_volumes`.

    ``nct_to_xct``: (4, 4) float64, (z, y, x, 1) um of the neutron frame -> the X-ray frame.
    ``metric``: name of the similarity; ``metric_value``: its final value (SimpleITK's Mattes
    MI is negative, lower is better); ``seconds``: wall time; ``rotation_about_axis_deg``: the
    rotation about the cell axis that ``nct_to_xct`` applies to the neutron volume, read from
    it in the two axis frames (:func:`_rotation_about_axis`; for an upside-down pair, after
    the turn about x), right-handed in (x, y, z) as the twin's remount draw of that name (it
    was reported with the opposite sign, -29.4 for the twin's +30, exit 0);
    ``scale``: the isotropic scale found (1 for a rigid fit); ``fine_level``: what the last
    level at the volumes' own voxels did (:func:`_refine_fine`): "refined", "off", "not
    needed" (the copies are at full resolution, or one-slice volumes) or "skipped: <why>";
    ``axial_level``: what the axial level at the volumes' own voxels did
    (:func:`_refine_axial`), with the same words ("refined ..." says where and by how much;
    "skipped: ..." says why the shift along the axis is the coarse levels', e.g. nothing in
    the overlap pins it); ``upside_down``: the neutron volume's cell axis runs down its stack
    where the X-ray's runs up (a cell mounted upside down in one instrument; the matrix holds
    the turn).
    """

    nct_to_xct: np.ndarray
    metric: str
    metric_value: float
    seconds: float
    rotation_about_axis_deg: float
    xct_axis: CellAxis
    nct_axis: CellAxis
    scale: float = 1.0
    fine_level: str = "not needed"
    axial_level: str = "not needed"
    upside_down: bool = False


def apply_transform(points_zyx_um: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (n, 3) or (3,) points (z, y, x) um with a 4x4 homogeneous ``matrix``."""
    points = np.asarray(points_zyx_um, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def rms_error(
    matrix_found: np.ndarray,
    matrix_true: np.ndarray,
    shape: Sequence[int],
    voxel_um: float,
    points_zyx_um: np.ndarray | None = None,
) -> float:
    """RMS distance (um) between points of the source volume mapped by the two matrices.

    Default points: a 9 x 9 x 9 grid (9 x 9 when ``shape[0] == 1``) over the source volume of
    ``shape`` and ``voxel_um``, kept inside the cylinder inscribed in it (around z).
    """
    delta = _mapped_difference(matrix_found, matrix_true, shape, voxel_um, points_zyx_um)
    return float(np.sqrt(np.mean(np.sum(delta**2, axis=1))))


def rms_error_along(
    matrix_found: np.ndarray,
    matrix_true: np.ndarray,
    shape: Sequence[int],
    voxel_um: float,
    direction_zyx: Sequence[float] = (1.0, 0.0, 0.0),
) -> tuple[float, float]:
    """The :func:`rms_error` (um) split into its parts along the unit ``direction_zyx`` of
    the target frame (default z, the cell axis of an upright volume) and across it: RMS of
    the signed component along, RMS of the distance across (their squares add up to the
    whole's)."""
    delta = _mapped_difference(matrix_found, matrix_true, shape, voxel_um, None)
    direction = np.asarray(direction_zyx, dtype=np.float64)
    along = delta @ (direction / np.linalg.norm(direction))
    across = np.sum(delta**2, axis=1) - along**2
    return float(np.sqrt(np.mean(along**2))), float(np.sqrt(max(np.mean(across), 0.0)))


def _mapped_difference(
    matrix_found: np.ndarray,
    matrix_true: np.ndarray,
    shape: Sequence[int],
    voxel_um: float,
    points_zyx_um: np.ndarray | None,
) -> np.ndarray:
    """(n, 3) um: the points (:func:`rms_error`) mapped by ``matrix_found`` minus by
    ``matrix_true``."""
    if points_zyx_um is None:
        half = (np.asarray(shape, dtype=np.float64) - 1) / 2 * float(voxel_um)
        axes = [np.linspace(-h, h, 9) if h > 0 else np.zeros(1) for h in half]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        radius = min(half[1], half[2])
        points_zyx_um = grid[np.hypot(grid[:, 1], grid[:, 2]) <= radius]
    return apply_transform(points_zyx_um, matrix_found) - apply_transform(
        points_zyx_um, matrix_true
    )


def downsample(
    volume: Any, voxel_um: float, max_voxels: int
) -> tuple[np.ndarray, float, np.ndarray]:
    """Block-mean copy of ``volume`` with at most ``max_voxels`` voxels, read in slabs.

    ``volume``: a (nz, ny, nx) array or array-like with ``shape`` and slicing (h5py dataset,
    memmap); a few slices are read at a time. The factor is the same along the three
    axes (1 along z for a one-slice volume). Returns the float32 copy, its voxel (um) and the
    4x4 matrix coarse frame -> original frame (a translation of ``pad / 2`` fine voxels where a
    shape is not a multiple of the factor; edge voxels are repeated to fill the last blocks).
    NaN and inf voxels are not measured: a block is the mean of its measured voxels, NaN
    where under half of them are measured.
    """
    return downsample_levels(volume, voxel_um, (max_voxels,))[0]


def downsample_levels(
    volume: Any,
    voxel_um: float,
    max_voxels: Sequence[int],
    *,
    slab: int = 8,
    blank_planes: list[int] | None = None,
) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """The :func:`downsample` copies of ``volume`` of at most ``max_voxels[i]`` voxels, all
    from one streamed read: ``slab`` slices at a time, each level adding their block sums
    (float64) to its copy, so a pyramid of a volume on disk costs one pass over it. Blocks
    are means of their measured (finite) voxels, NaN where under half are measured; the
    count of unmeasured voxels is kept only once a slab holds one (no cost otherwise).
    ``blank_planes``: a list to which the indices of the blank planes
    (:func:`jellyroll.nxct.unmeasured.are_blank`: all their finite voxels one value, a stack's
    padding) are appended, those planes and the planes' fill rings (a reconstruction's
    constant outside its circle, :func:`jellyroll.nxct.unmeasured.fill_ring`) then not
    measured (NaN) in the copies; None: read as they are."""
    shape = tuple(int(n) for n in volume.shape)
    if len(shape) != 3:
        raise ValueError(f"expected a (nz, ny, nx) volume, got shape {shape}")
    levels = []
    for limit in max_voxels:
        factor = 1
        while np.prod(_coarse_shape(shape, _factors(shape, factor))) > limit:
            factor += 1
        factors = _factors(shape, factor)
        m = _coarse_shape(shape, factors)
        levels.append((factors, m, np.zeros(m, np.float64)))
    missing: list[np.ndarray | None] = [None] * len(levels)  # unmeasured voxels per block
    rings = FillRings()
    for z0 in range(0, shape[0], slab):
        planes = np.asarray(volume[z0 : min(z0 + slab, shape[0])], dtype=np.float64)
        if blank_planes is not None:
            blank_planes.extend(int(k) for k in z0 + np.flatnonzero(are_blank(planes)))
            filled = np.stack([rings(plane) for plane in planes])  # a blank plane all over
            if filled.any():
                planes = np.where(filled, np.nan, planes)
        unmeasured = ~np.isfinite(planes)
        if not unmeasured.any():
            unmeasured = None
        else:  # a new array: ``planes`` may be a view of the caller's
            planes = np.where(unmeasured, 0.0, planes)
        for i, ((fz, fy, fx), m, sums) in enumerate(levels):
            pads = [(0, 0), (0, m[1] * fy - shape[1]), (0, m[2] * fx - shape[2])]
            rows = np.arange(z0, z0 + len(planes)) // fz
            firsts = np.flatnonzero(np.diff(rows, prepend=-1))
            last = z0 + len(planes) == shape[0]  # the last block filled with the last slice
            for values, total in ((planes, sums), (unmeasured, missing[i])):
                if values is None:
                    continue
                if total is None:
                    total = missing[i] = np.zeros(m, np.float64)
                padded = np.pad(values, pads, mode="edge") if pads[1][1] or pads[2][1] else values
                block_sums = padded.reshape(len(values), m[1], fy, m[2], fx).sum(axis=(2, 4))
                total[rows[firsts]] += np.add.reduceat(block_sums, firsts, axis=0)
                if last:
                    total[-1] += (m[0] * fz - shape[0]) * block_sums[-1]
                del padded, block_sums  # not alive beside the next level's
    out = []
    for (factors, m, sums), unmeasured_count in zip(levels, missing, strict=True):
        pad = np.array([mi * f - n for mi, f, n in zip(m, factors, shape, strict=True)], float)
        to_fine = np.eye(4)
        to_fine[:3, 3] = pad / 2 * float(voxel_um)
        size = np.prod(factors)
        if unmeasured_count is None:
            coarse = (sums / size).astype(np.float32)
        else:
            measured = size - unmeasured_count
            with np.errstate(divide="ignore", invalid="ignore"):
                coarse = np.where(measured >= 0.5 * size, sums / measured, np.nan)
            coarse = coarse.astype(np.float32)
        out.append((coarse, float(voxel_um) * factors[1], to_fine))
    return out


def _coarse_shape(shape: Sequence[int], factors: Sequence[int]) -> list[int]:
    return [-(-n // f) for n, f in zip(shape, factors, strict=True)]


def _factors(shape: Sequence[int], factor: int) -> tuple[int, int, int]:
    return (1 if shape[0] == 1 else factor, factor, factor)


def _rotation_to_z(direction: np.ndarray) -> np.ndarray:
    """3x3 rotation (z, y, x) taking the unit ``direction`` onto (1, 0, 0), about their normal
    (Rodrigues' formula); the identity for a direction along z."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    z = np.array([1.0, 0.0, 0.0])
    axis = np.cross(d, z)
    s, c = np.linalg.norm(axis), float(d @ z)
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)


MAIN_OBJECT = 0.05
"""Share of the largest object's pixels an object above the cell's threshold holds to count
in its outline wherever it lies (:func:`_slice_centre`)."""
SMALL_OBJECT = 0.01
"""Share an object holds to count where it lies near the main objects' hull."""
NEAR_OBJECT = 0.1
"""How near (a fraction of the main objects' hull's radius) a small object lies to count."""


def _slice_centre(image: np.ndarray) -> tuple[float, float, float] | None:
    """Centroid (iy, ix) and area (pixels) of the cell's outline in one slice: the convex
    hull of the objects above a threshold a quarter of the way from the background (the 1st
    percentile) to Otsu's that hold at least :data:`MAIN_OBJECT` of the largest one's pixels,
    and of those that hold :data:`SMALL_OBJECT` and lie within :data:`NEAR_OBJECT` of their
    hull's radius of it. (The main objects alone left out the arcs of a real cell's casing cut
    by NaN a pixel past it, 3-4.5 % each: the outline 190 um off the cell's centre, and the
    pair refused as mirrored; a small object anywhere, a speck 1 % of a disk in the corner
    moved its centre by 27 % of its radius.)

    The hull of everything above the background, not the largest object above Otsu: in one
    modality the outer layers (casing, outer turn) may attenuate less than the inner ones or
    be a ring or a spiral apart from the rest, and the centroid of one piece is biased.
    NaN pixels (not measured) are left out: the smoothing is normalised by the measured
    weight, the thresholds are the measured pixels' and no object holds a NaN pixel (filled
    with the darkest, 8 NaN rows across the test twin's X-ray made the air an object, a cell
    1.3 times too wide); None where none is measured.
    """
    finite = np.isfinite(image)
    if not finite.any():
        return None
    smooth = finite_gaussian(image.astype(np.float32), 1.0)
    values = smooth[finite]
    if not np.ptp(values) > 0:
        return None
    background = float(np.percentile(values, 1))
    labels, n = ndimage.label(smooth > background + 0.25 * (threshold_otsu(values) - background))
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    index = np.arange(1, n + 1)
    is_main = sizes >= MAIN_OBJECT * sizes.max()
    mask = convex_hull_image(np.isin(labels, index[is_main]))
    small = index[~is_main & (sizes >= SMALL_OBJECT * sizes.max())]
    if small.size:
        # smaller objects count where they lie by the main ones' hull (a casing's arcs),
        # not apart from it (a speck, a pin, a label in the air)
        reach = NEAR_OBJECT * np.sqrt(mask.sum() / np.pi)
        distance = ndimage.minimum(ndimage.distance_transform_edt(~mask), labels, small)
        near = small[np.asarray(distance) <= reach]
        if near.size:  # the hull of the objects (a hull of a hull grows by its pixels)
            mask = convex_hull_image(np.isin(labels, np.concatenate([index[is_main], near])))
    iy, ix = np.nonzero(mask)
    return float(iy.mean()), float(ix.mean()), float(iy.size)


def find_cell_axis(volume: Any, voxel_um: float, *, max_voxels: int = 2_000_000) -> CellAxis:
    """The cell axis of a (nz, ny, nx) volume (array-like) of ``voxel_um`` voxels.

    Works on a block-mean copy of at most ``max_voxels`` voxels. For ``nz == 1`` the axis is
    the z direction through the slice's centre.
    """
    coarse, coarse_voxel, to_fine = downsample(volume, voxel_um, max_voxels)
    return _find_axis_coarse(coarse, coarse_voxel, to_fine)


def _find_axis_coarse(coarse: np.ndarray, voxel: float, to_fine: np.ndarray) -> CellAxis:
    centre_index = (np.asarray(coarse.shape, dtype=np.float64) - 1) / 2
    rows = []
    for k in range(coarse.shape[0]):
        found = _slice_centre(coarse[k])
        if found is not None:
            rows.append((k, *found))
    if not rows:
        raise ValueError("no cell found in the volume (constant slices)")
    table = np.asarray(rows)
    centres = (table[:, :3] - centre_index) * voxel + to_fine[:3, 3]
    radius = float(np.sqrt(np.median(table[:, 3]) / np.pi) * voxel)
    z, yx = centres[:, 0], centres[:, 1:]
    if len(rows) < 3:
        point = np.array([0.0, *yx.mean(axis=0)])
        direction = np.array([1.0, 0.0, 0.0])
        return CellAxis(point, direction, radius, centres)
    # the body of the cell has one outline area at every height; slices of another area (the
    # roll's end, head space, a field of view that clips the cell) do not follow its axis
    area = table[:, 3]
    keep = np.abs(area - np.median(area)) <= 0.15 * np.median(area)
    if keep.sum() < 3:
        keep[:] = True
    for _ in range(5):
        design = np.stack([np.ones(keep.sum()), z[keep]], axis=1)
        coef, *_ = np.linalg.lstsq(design, yx[keep], rcond=None)
        residual = np.linalg.norm(yx - (coef[0] + np.outer(z, coef[1])), axis=1)
        scale = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        new_keep = residual <= np.median(residual[keep]) + 3 * max(scale, 0.1 * voxel)
        if new_keep.sum() < 3 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    point = np.array([0.0, *coef[0]])
    direction = np.array([1.0, *coef[1]])
    return CellAxis(point, direction / np.linalg.norm(direction), radius, centres[keep])


def _polar_samples(
    coarse: np.ndarray,
    voxel: float,
    to_fine: np.ndarray,
    axis_frame: np.ndarray,
    radii: np.ndarray,
    angles: np.ndarray,
    heights: np.ndarray,
) -> np.ndarray:
    """The volume at (height, radius, angle) of its axis frame, (nh, nr, na), linear."""
    # axis frame -> original frame -> coarse frame -> coarse index, one axis of the index
    # at a time from the heights and the in-plane points (no (n, 3) array of points)
    to_coarse = np.linalg.inv(to_fine) @ np.linalg.inv(axis_frame)
    h = np.asarray(heights, np.float64)[:, None, None]
    y = (radii[:, None] * np.sin(angles))[None]
    x = (radii[:, None] * np.cos(angles))[None]
    shape = (len(heights), len(radii), len(angles))
    index = np.empty((*shape, 3))
    for axis, (row, n) in enumerate(zip(to_coarse[:3], coarse.shape, strict=True)):
        index[..., axis] = (h * row[0] + y * row[1] + x * row[2] + row[3]) / voxel + (n - 1) / 2
    return linear_at(coarse, index.reshape(-1, 3)).reshape(shape)


def _quantise(values: np.ndarray, bins: int) -> np.ndarray:
    """Equal-population bin index (0 .. bins - 1) of each value; -1 for NaN (not measured,
    left out of the mutual informations), the bins' populations among the others."""
    flat = np.asarray(values).ravel()
    finite = np.isfinite(flat)
    if not finite.all():
        out = np.full(flat.size, -1, np.int64)
        if finite.any():
            out[finite] = _quantise(flat[finite], bins)
        return out.reshape(np.shape(values))
    # the bin of each value's rank among them, ties ranked in the order they come: a value
    # whose copies lie in one bin has that bin's index, the number of bins' first values
    # not above it; only a value whose copies straddle a bin's first rank (air, a constant
    # filling) needs its ties' order (a stable argsort of all, 20 times as long, did the same)
    n = flat.size
    if n < bins:  # a bin for each rank
        ranks = np.empty(n, np.int64)
        ranks[np.argsort(flat, kind="stable")] = np.arange(n)
        return (ranks * bins // max(n, 1)).reshape(np.shape(values))
    ordered = np.sort(flat)
    firsts = -(-np.arange(1, bins) * n // bins)  # the first rank of bins 1 .. bins - 1
    out = np.searchsorted(ordered[firsts], flat, side="right")
    straddling = ordered[firsts][ordered[firsts - 1] == ordered[firsts]]
    for value in np.unique(straddling):
        tied = np.flatnonzero(flat == value)
        below = np.searchsorted(ordered, value, side="left")
        out[tied] = (below + np.arange(tied.size)) * bins // n
    return out.reshape(np.shape(values))


def _mutual_information(a: np.ndarray, b: np.ndarray, bins: int) -> float:
    """MI (nats) of two quantised index arrays of the same shape, over the pairs where
    neither is -1 (not measured); 0 where none is."""
    if a.size and min(a.min(), b.min()) < 0:
        both = (a >= 0) & (b >= 0)
        if not both.any():
            return 0.0
        a, b = a[both], b[both]
    joint = np.bincount((a * bins + b).ravel(), minlength=bins * bins).reshape(bins, bins)
    p = joint / joint.sum()
    pa, pb = p.sum(axis=1), p.sum(axis=0)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])))


_JOINT_ROWS = 64
"""Rows (of the samples' last axis) whose spectra :func:`_circular_mutual_information` takes
at once."""


def _indicator_spectra(rows: np.ndarray, bins: int) -> np.ndarray:
    """(frequency, real and imaginary parts of each bin's indicator, row): the spectra along
    the last axis of the indicator arrays of the quantised ``rows`` (n_rows, n). Taken along
    the first axis of the transposed indicators, they come frequency first, as the joint
    histograms' products want them (transposed after, the copies cost 4 times the products)."""
    levels = np.arange(bins)[None, :, None]
    spectra = np.fft.rfft((rows.T[:, None] == levels).astype(float), axis=0)
    return np.concatenate([spectra.real, spectra.imag], axis=1)


def _row_chunks(a: np.ndarray) -> list[np.ndarray]:
    """``a`` as (rows, last axis), :data:`_JOINT_ROWS` rows at a time."""
    rows = a.reshape(-1, a.shape[-1])
    return [rows[start : start + _JOINT_ROWS] for start in range(0, rows.shape[0], _JOINT_ROWS)]


SPECTRA_KEPT_BYTES = 128 << 20
"""The most the indicator spectra of a sample array fixed over many mutual informations
(the centring's X-ray samples) may hold to be kept (:func:`_fixed_spectra`)."""


def _fixed_spectra(a: np.ndarray, bins: int) -> list[np.ndarray] | None:
    """The indicator spectra of ``a`` per chunk of rows, for
    :func:`_circular_mutual_information` against many ``b``; None where they would hold
    more than :data:`SPECTRA_KEPT_BYTES` (each call then takes them again)."""
    n_bytes = 8 * 2 * bins * (a.shape[-1] // 2 + 1) * (a.size // a.shape[-1])
    if n_bytes > SPECTRA_KEPT_BYTES:
        return None
    return [_indicator_spectra(chunk, bins) for chunk in _row_chunks(a)]


def _circular_mutual_information(
    a: np.ndarray,
    b: np.ndarray,
    bins: int,
    mirrored: bool = False,
    a_spectra: list[np.ndarray] | None = None,
) -> np.ndarray:
    """MI (nats) of ``a`` and ``b`` rolled by every shift ``s`` along the last axis,
    ``MI(a, np.roll(b, -s, axis=-1))`` for ``s = 0 .. n - 1``, of quantised index arrays;
    with ``mirrored``, shape (2, n): that and the MI of ``a`` against ``b`` mirrored along the
    last axis, ``np.roll(b[..., ::-1], 1, axis=-1)`` (``b[-t]``), rolled alike.
    ``a_spectra``: :func:`_fixed_spectra` of ``a``, when kept.

    The joint histogram at every shift at once: the count of (bin i in ``a``, bin j in ``b``)
    is the circular cross-correlation of their indicator arrays along the last axis, summed
    over the others, done by FFT; the marginals do not depend on the shift. The mirrored
    ``b``'s spectra are the conjugates of ``b``'s, so both come from one product of the
    spectra's real and imaginary parts. Samples of index -1 (not measured) fall in no bin: at
    each shift the MI is that of the pairs measured in both, its marginals from that shift's
    joint histogram.
    """
    n = a.shape[-1]
    # (frequency, parts of the bins of a, parts of those of b): summed over the other axes,
    # one real matrix product per frequency, a few rows at a time (all at once, the spectra
    # of a search's 13 x 85 x 720 samples took 1.8 s, most of it in fresh memory; 0.13 s so)
    products = np.zeros((n // 2 + 1, 2 * bins, 2 * bins))
    a_parts = a_spectra or (_indicator_spectra(chunk, bins) for chunk in _row_chunks(a))
    for parts_a, chunk in zip(a_parts, _row_chunks(b), strict=True):
        products += parts_a @ _indicator_spectra(chunk, bins).transpose(0, 2, 1)
    rr, ri = products[:, :bins, :bins], products[:, :bins, bins:]
    ir, ii = products[:, bins:, :bins], products[:, bins:, bins:]
    spectra = [(rr + ii) + 1j * (ri - ir)]  # sum of conj(fa) fb
    if mirrored:
        spectra.append((rr - ii) - 1j * (ri + ir))  # sum of conj(fa) conj(fb)
    joints = [np.fft.irfft(sp.transpose(1, 2, 0), n=n, axis=-1) for sp in spectra]
    scores = np.array([_joint_mutual_information(joint, a, b, bins) for joint in joints])
    return scores if mirrored else scores[0]


def _joint_mutual_information(
    joint: np.ndarray, a: np.ndarray, b: np.ndarray, bins: int
) -> np.ndarray:
    """MI (nats) at each shift of the joint counts ``joint`` (bins, bins, shift) of the
    quantised ``a`` and ``b`` (-1: not measured), rounded to whole counts."""
    counts = np.clip(np.rint(joint), 0, None)
    if a.size and min(a.min(), b.min()) < 0:
        p = counts / np.maximum(counts.sum(axis=(0, 1)), 1)
        marginal_entropies = [
            -np.sum(np.where(m > 0, m * np.log(np.where(m > 0, m, 1)), 0), axis=0)
            for m in (p.sum(axis=1), p.sum(axis=0))
        ]
        entropy_joint = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=(0, 1))
        return marginal_entropies[0] + marginal_entropies[1] - entropy_joint
    p = counts / a.size
    entropy_joint = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=(0, 1))
    marginals = [np.bincount(v.ravel(), minlength=bins) / v.size for v in (a, b)]
    entropy_marginals = sum(-np.sum(m[m > 0] * np.log(m[m > 0])) for m in marginals)
    return entropy_marginals - entropy_joint


def _peak(scores: np.ndarray, circular: bool) -> float:
    """Index of the maximum of ``scores``, refined by a parabola through its neighbours."""
    best = int(np.argmax(scores))
    if not circular and best in (0, len(scores) - 1):
        return float(best)
    return best + float(
        parabola_vertex(scores[best - 1], scores[best], scores[(best + 1) % len(scores)])
    )


START_SCAN_DEG = 2.0
"""Half width (deg) of the scan of the metric about the cell axis that starts a one-slice
pair's gradient descent (the pose search's angle was up to 1.3 deg off on a real slice)."""
START_SCAN_STEP_DEG = 0.25
"""Its step (deg)."""
MIRROR_RATIO = 1.05
"""How much more mutual information the mirrored neutron volume must give to be refused: a
wound roll is chiral (test twin: 0.84-0.90 the right way, 0.47-0.51 mirrored)."""
FLIP_RATIO = 1.05
"""How much more mutual information along the axis the neutron volume's heights reversed
must give to be taken as reversed (mounted upside down, or slices in the other order); on
the test twin's remounts the right way gives 1.09-1.21 times the reversed heights' score."""

UPRIGHT = np.eye(4)
"""The neutron axis frame as found: the cell axis up both stacks."""
UPSIDE_DOWN = np.diag([-1.0, -1.0, 1.0, 1.0])
"""The neutron axis frame turned 180 deg about its x axis: a cell mounted upside down."""
Z_MIRROR = np.diag([-1.0, 1.0, 1.0, 1.0])
"""The neutron axis frame's heights reversed (slices stacked the other way): a mirror."""
Y_MIRROR = np.diag([1.0, -1.0, 1.0, 1.0])
"""The neutron axis frame mirrored across the axis (in the plane): a mirror."""


def _pose_search(
    xct: tuple[np.ndarray, float, np.ndarray],
    nct: tuple[np.ndarray, float, np.ndarray],
    xct_axis: CellAxis,
    nct_axis: CellAxis,
    step_deg: float = 0.5,
    bins: int = 24,
    name: str = "the neutron volume",
) -> tuple[float, float, np.ndarray, ValueError | None]:
    """Angle (deg) about z and shift (um) along z taking the X-ray axis frame to the neutron
    one, by exhaustive MI of polar unwrappings (radius x angle x height), the turn
    (:data:`UPRIGHT` or :data:`UPSIDE_DOWN`, 4x4) of the neutron axis frame they hold in, and
    the ValueError to raise where the shift is not pinned inside the search (its best at an
    end of the +-20 % scan, or the shorter stack matching better elsewhere along the taller
    one; raised by the caller after the scale's check, which names a wrong voxel size), or
    None.

    The angle is searched over the full turn at five heights, then the axial shift over
    +-20 % of the shorter stack in steps of half a coarse voxel (on the heights the stacks
    share at each shift) about the arrays' middles and about the middles of the stacks'
    measured planes (:func:`_measured_extent`: padding planes, NaN or blank, left out), then
    the angle again at that shift, twice: a cell's structure along its axis (roll ends, tabs,
    inclusions) pins the shift, the roll's spiral pins the angle.

    Both axis frames point their axis up their stacks, so a cell mounted upside down in one
    instrument (turned 180 deg about an axis across it: a rotation) reads with its roll's
    spiral mirrored in the plane and its heights reversed, and a stack whose slices run the
    other way (a mirror) with its heights reversed only. The spiral's handedness (the
    in-plane mirror, :data:`MIRROR_RATIO`) and the structure along the axis (the heights
    reversed at the angle found, :data:`FLIP_RATIO`) tell the four apart: upside down is
    registered as the rotation it is; a mirror, in the plane or along the axis, is refused
    with a ValueError naming ``name`` and what to flip (before, a stack with its slices in
    the other order registered 24 neutron voxels off, exit 0, and an upside-down mount was
    refused as mirrored).
    """
    radius = min(xct_axis.radius_um, nct_axis.radius_um)
    step = max(xct[1], nct[1]) / 2
    radii = np.arange(0.1 * radius, 1.05 * radius, step)
    n_angles = round(360 / step_deg)
    angles = np.arange(n_angles) * (2 * np.pi / n_angles)
    half = 0.5 * min((xct[0].shape[0] - 1) * xct[1], (nct[0].shape[0] - 1) * nct[1])
    to_x, to_n = xct_axis.to_axis_frame(), nct_axis.to_axis_frame()

    def angle_at(flip: np.ndarray, heights: np.ndarray, shift_um: float) -> float:
        qx = _quantise(_polar_samples(*xct, to_x, radii, angles, heights), bins)
        qn = _quantise(_polar_samples(*nct, flip @ to_n, radii, angles, heights + shift_um), bins)
        return _angle_of(_circular_mutual_information(qx, qn, bins), step_deg)

    heights = np.linspace(-0.5 * half, 0.5 * half, 5) if half > 0 else np.zeros(1)
    qx = _quantise(_polar_samples(*xct, to_x, radii, angles, heights), bins)
    qn = _quantise(_polar_samples(*nct, to_n, radii, angles, heights), bins)
    # and the neutron volume mirrored about a plane through its axis (its angles reversed)
    scores, mirrored = _circular_mutual_information(qx, qn, bins, mirrored=True)
    in_plane_mirrored = bool(mirrored.max() > MIRROR_RATIO * scores.max())
    mirror_message = (
        f"{name} matches the X-ray one better mirrored (mutual information "
        f"{mirrored.max():.2f} against {scores.max():.2f}): the two differ in handedness (an "
        "axis flipped between the instruments' conventions); flip one axis of the neutron "
        "volume and register again"
    )
    if half <= 0:
        if in_plane_mirrored:
            raise ValueError(mirror_message)
        return _angle_of(scores, step_deg), 0.0, UPRIGHT, None
    base = Y_MIRROR if in_plane_mirrored else UPRIGHT
    angle = _angle_of(mirrored if in_plane_mirrored else scores, step_deg)
    # both stacks on one grid of heights through 0, so that a shift is a whole index step
    grid_x, grid_n = (
        step * np.arange(np.ceil(-h / step), np.floor(h / step) + 1)
        for h in ((xct[0].shape[0] - 1) * xct[1] / 2, (nct[0].shape[0] - 1) * nct[1] / 2)
    )
    n_shift = int(0.4 * half / step)
    (middle_x, half_x), (middle_n, half_n) = (
        _measured_extent(*copy[:2], axis) for copy, axis in ((xct, xct_axis), (nct, nct_axis))
    )

    def span(h: float) -> float:
        """Height (um) of the grid of heights within +-``h``."""
        return step * (np.floor(h / step) - np.ceil(-h / step))

    # the shorter measured stack anywhere along the taller one, and as far past either end
    n_reach = max(n_shift, int((abs(span(half_x) - span(half_n)) / 2 + 0.4 * half) / step))
    coarse_angles = angles[::4]
    qx = _quantise(_polar_samples(*xct, to_x, radii, coarse_angles, grid_x), bins)
    first = round((grid_n[0] - grid_x[0]) / step)  # grid_x[i] + shift k is grid_n[i + k - first]

    def centre(flip: np.ndarray) -> int:
        """The shift (steps) that puts the middles of the stacks' measured planes together."""
        return round((flip[0, 0] * middle_n - middle_x) / step)

    def near(flip: np.ndarray) -> range:
        """The shifts (steps) searched: within 20 % of the shorter stack of 0 (the arrays'
        middles together) and of :func:`centre`. Padding planes (blank or NaN) move the
        arrays' middles, a lost end plane the measured planes': 4 blank planes before the
        tiny twin's 16-plane neutron stack put the truth past the arrays' search (refused),
        one NaN end plane of its X-ray past the measured planes'."""
        k0 = centre(flip)
        return range(min(0, k0) - n_shift, max(0, k0) + n_shift + 1)

    def shift_scan(
        flip: np.ndarray, angle: float, shifts: range | None = None
    ) -> tuple[float, float, bool]:
        """The shift (um) of most MI along the axis at ``angle`` over ``shifts`` (steps;
        default :func:`near`), that MI, and whether it lies at an end of the scan (the best
        shift may lie beyond)."""
        shifts = near(flip) if shifts is None else shifts
        rotated = coarse_angles + np.deg2rad(angle)
        qn = _quantise(_polar_samples(*nct, flip @ to_n, radii, rotated, grid_n), bins)
        scores = np.zeros(len(shifts))
        for j, k in enumerate(shifts):
            lo, hi = max(0, first - k), min(len(grid_x), len(grid_n) + first - k)
            scores[j] = _mutual_information(qx[lo:hi], qn[lo + k - first : hi + k - first], bins)
        at_end = int(np.argmax(scores)) in (0, len(shifts) - 1)
        return (_peak(scores, circular=False) + shifts[0]) * step, float(scores.max()), at_end

    def beyond_reach(
        flip: np.ndarray,
        angle: float,
        reversed_mi: str,
        scanned: tuple[float, float, bool] | None = None,
    ) -> ValueError | None:
        """The ValueError to raise where the shift along the axis at ``angle`` is not pinned
        inside the search: its best lies at an end of the +-20 % scan, or the shorter stack
        matches better elsewhere along the taller one (before, a neutron stack of the bottom
        half of the test twin's X-ray one registered 297 um off, exit 0); else None.
        ``reversed_mi``: what the heights reversed gave, for the message; ``scanned``:
        :func:`shift_scan` at ``flip`` and ``angle`` where the caller has it."""
        shift, best, at_end = shift_scan(flip, angle) if scanned is None else scanned
        k0 = centre(flip)
        far, far_best, _ = shift_scan(flip, angle, range(k0 - n_reach, k0 + n_reach + 1))
        searched = near(flip)
        if at_end or (not searched[0] <= far / step <= searched[-1] and far_best > best):
            where = far if far_best > best else shift
            return ValueError(
                f"{name} matches the X-ray one best along the cell's axis at a shift of "
                f"{where:+.0f} um (mutual information {max(best, far_best):.2f}), at or past "
                f"the end of the search ({searched[0] * step:+.0f} to "
                f"{searched[-1] * step:+.0f} um: "
                "20 % of the shorter stack about the stacks' middles, with and without their "
                "unmeasured planes): the two stacks' middles lie too far apart along the cell's "
                "axis for the registration to pin the shift, or a stack's slices lie further "
                "apart than its voxel size says (binned or skipped slices), or run the other "
                f"way ({reversed_mi}). Crop the taller stack to the heights the two share (or "
                "give the voxel size its slices have, or reverse the slices of the one that "
                "runs the other way) and register again"
            )
        return None

    def refine(flip: np.ndarray, angle: float) -> tuple[float, float]:
        shift = 0.0
        for _ in range(2):
            shift = shift_scan(flip, angle)[0]
            inside = grid_x[(np.abs(grid_x) <= half - abs(shift))]
            angle = angle_at(flip, inside[:: max(1, len(inside) // 9)], shift)
        return angle, shift

    angle, shift = refine(base, angle)
    # the same handedness in the plane, the heights as they are or reversed
    as_given = shift_scan(base, angle)
    kept, turned = as_given[1], shift_scan(base @ Z_MIRROR, angle)[1]
    reversed_heights = turned > FLIP_RATIO * kept
    reversed_mi = (
        f"with the neutron volume's slices reversed, mutual information along the axis "
        f"{turned:.2f} against {kept:.2f} as given"
    )
    if in_plane_mirrored and reversed_heights:  # upside down: a rotation
        angle, shift = refine(UPSIDE_DOWN, angle)
        return angle, shift, UPSIDE_DOWN, beyond_reach(UPSIDE_DOWN, angle, reversed_mi)
    if in_plane_mirrored:
        raise ValueError(
            f"{mirror_message}; if the cell was rather mounted upside down (a rotation, "
            "which jellyroll registers), nothing along its axis showed it (mutual information "
            f"{turned:.2f} with its heights reversed against {kept:.2f})"
        )
    if reversed_heights:
        raise ValueError(
            f"{name} matches the X-ray one better with its slices in the reverse order "
            f"(mutual information along the axis {turned:.2f} against {kept:.2f}): one of "
            "the stacks runs the other way along the cell's axis (slices numbered from the "
            "other end, or a detector read the other way up), a mirror that no rotation "
            "reaches; reverse the order of the neutron volume's slices and register again"
        )
    if kept <= FLIP_RATIO * turned:
        warnings.warn(
            f"nothing along the cell's axis tells which way {name}'s slices run against the "
            f"X-ray ones ({reversed_mi}: within {FLIP_RATIO - 1:.0%}): registered as given. "
            "Stacked the other way (a mirror), the pair registers off unseen (the tiny "
            "twin's neutron slices reversed: 91 um RMS); check that both stacks' slices run "
            "the same way, or give stacks that include an end of the roll",
            stacklevel=3,
        )
    return angle, shift, UPRIGHT, beyond_reach(UPRIGHT, angle, reversed_mi, as_given)


CENTRING_STEPS = 48  # the centring's grid step: the smaller cell's radius over this (or a voxel)
CENTRING_BINS = 16  # equal-population bins of its mutual information
CENTRING_ANGLES = 90  # angles of its polar unwrappings (4 deg)
FINEST_CENTRING_ARC = 4.0
"""The finest climb's angular step as an arc at the cell's rim, in (coarser) voxels: its
angles a multiple of :data:`CENTRING_ANGLES`, at least that."""
MAX_CENTRING = 0.15
"""Half width (fraction of the smaller cell's radius) of the grid of points about the neutron
outline's centre that the centring (:func:`_centred_on_content`) searches; best on its edge,
the outlines are refused as not the same object. A real 18650 slice's holder moved the
point the two share by 0.03-0.12 of the radius (170-640 um); fields of view cutting the
tiny twin's cell (its neutron cropped 20 of 208 voxels a side, both in circles inside the
cell) by 0.07-0.10 (65-85 um); the twins' whole cells by none."""


def _centred_on_content(
    xct: tuple[np.ndarray, float, np.ndarray],
    nct: tuple[np.ndarray, float, np.ndarray],
    xct_axis: CellAxis,
    nct_axis: CellAxis,
    names: Sequence[str] = ("the X-ray volume", "the neutron volume"),
) -> tuple[float, CellAxis]:
    """``nct_axis`` moved across itself to the point whose polar unwrapping best matches the
    X-ray's about ``xct_axis``: mutual information, best over all angles and either
    handedness, of samples at :data:`CENTRING_STEPS` radii, :data:`CENTRING_ANGLES` angles and
    three heights; from the outlines' centre, or, where one of the 8 points a step away
    matches better, from the best of a grid of that step over +-:data:`MAX_CENTRING` of the
    radius (the roll's layers make the score rough between its steps: a climb stopped a few
    steps short), refined by climbs at a half to a sixteenth of the step (on radii half a
    voxel apart at the finest): a spiral's layers turn an offset across into an angle, and a
    holder's outline centred to a quarter step (28 um) left the pose search's angle 2-4 deg
    off, past what the gradient descent recovers. The climbs run also from the outlines'
    centre: kept where it was best a step away, the real slice's outlines 64 um apart (60 um
    pixels, air round the casing in both, a 111 um step) left the angle 17.5 deg off and the
    pair 1.2 mm off, exit 0. Where the grid's best lies elsewhere, a climb from each (the
    score is rough on the grid's step: the same slice with 2 % noise, turned -151 deg, had
    its grid's best 338 um off and the pair 8.1 mm off, exit 0), the better kept. The
    finest climb's angles step an arc of :data:`FINEST_CENTRING_ARC` voxels at the rim, not
    4 deg: the score's peak over angles is narrower, and sampled so it is rough on the
    climb's step (the same slice at 40 um pixels, the holder in the X-ray only: the climb
    stopped 16 um off and the pair 218 um off, exit 0; at 20 um, NaN from the X-ray's
    casing on, with 2 deg steps: 5.5 um off and 37 um, exit 0).

    The pose search turns the two about their axes, which must pass through the same point
    of the cell. The outlines' centres do where both outlines are the cell's (within 12 um on
    the test twin's remounts); not where one is a holder's round the casing, seen in one modality,
    or filling the field of view: a real X-ray CT slice of an 18650 cell (20 and 40 um
    pixels) against grey-mapped remounts, its holder in one, the other or both, was
    registered 60 um to 8.1 mm off in 11 of 18, exit 0, refused as mirrored in 5; centred
    so, 17 within 3.3 um. Returns the finest climb's score (nats) and the moved axis;
    ValueError where the best lies on the grid's edge."""
    radius = min(xct_axis.radius_um, nct_axis.radius_um)
    step = max(radius / CENTRING_STEPS, xct[1], nct[1])
    half = 0.5 * min((xct[0].shape[0] - 1) * xct[1], (nct[0].shape[0] - 1) * nct[1])
    heights = np.linspace(-0.5 * half, 0.5 * half, 3) if half > 0 else np.zeros(1)
    bins, to_x, to_n = CENTRING_BINS, xct_axis.to_axis_frame(), nct_axis.to_axis_frame()

    def climber(
        fraction: int, n_angles: int = CENTRING_ANGLES, smooth: bool = False
    ) -> tuple[Callable[[tuple[int, int]], float], float]:
        """The score of the neutron centre moved by (y, x) steps of ``step / fraction`` (axis
        frame), on radii that far apart (half a voxel at least) and ``n_angles`` angles, and
        that step; ``smooth``: on the copies smoothed by a Gaussian of half the step (where
        that exceeds a voxel)."""
        fine = step / fraction
        radii = np.arange(0.1 * radius, radius, max(fine, max(xct[1], nct[1]) / 2))
        x_copy, n_copy = (
            (_smoothed(copy[0], fine / 2 / copy[1]), *copy[1:])
            if smooth and fine / 2 > copy[1]
            else copy
            for copy in (xct, nct)
        )
        angles = np.arange(n_angles) * (2 * np.pi / n_angles)
        qx = _quantise(_polar_samples(*x_copy, to_x, radii, angles, heights), bins)
        qx_spectra = _fixed_spectra(qx, bins)
        scores: dict[tuple[int, int], float] = {}

        def score(at: tuple[int, int]) -> float:
            if at not in scores:
                moved = to_n.copy()
                moved[1:3, 3] -= np.asarray(at) * fine
                qn = _quantise(_polar_samples(*n_copy, moved, radii, angles, heights), bins)
                # either handedness: the neutron's angles as they run and reversed
                scores[at] = _circular_mutual_information(
                    qx, qn, bins, mirrored=True, a_spectra=qx_spectra
                ).max()
            return scores[at]

        return score, fine

    def around(at: tuple[int, int], reach: int = 1) -> list[tuple[int, int]]:
        """The grid points within ``reach`` steps of ``at`` (a square), ``at`` among them."""
        return [(at[0] + dy, at[1] + dx) for dy in range(-reach, reach + 1)
                for dx in range(-reach, reach + 1)]  # fmt: skip

    score, _ = climber(1)
    at = (0, 0)
    reach = int(np.ceil(MAX_CENTRING * radius / step))
    starts = {at}  # the outlines' centre
    if max(around(at), key=score) != at:
        at = max(around(at, reach), key=score)
        # and the best of the grid scored on copies smoothed by half its step: the score's
        # peak is as narrow as the roll's layers are sharp (under 40 um at 20 um pixels),
        # and the grid's step can miss it (a real slice with a holder in the neutron, 3 %
        # noise, -77 deg: the grid's best 370-500 um off, the pair 8.1 mm off, exit 0;
        # from the smoothed grid's best, 0.3-0.4 um); the finest climb tells the better
        starts |= {at, max(around((0, 0), reach), key=climber(1, smooth=True)[0])}
    if max(abs(at[0]), abs(at[1])) == reach:
        raise ValueError(
            f"the cell outlines found in {names[0]} ({2 * xct_axis.radius_um:.0f} um across) "
            f"and in {names[1]} ({2 * nct_axis.radius_um:.0f} um across) are not centred on "
            "the same point of the cell: its content matches best at or past "
            f"{MAX_CENTRING:.0%} of its radius away. One of them is not the cell's outline (a "
            "holder or other material round the casing, or material filling the field of "
            "view to its edge); set what lies round the casing to the value of air in both, "
            "leaving air around the cell, and register again"
        )
    arcs = 2 * np.pi * radius / (FINEST_CENTRING_ARC * max(xct[1], nct[1]))
    finest_angles = CENTRING_ANGLES * max(1, int(np.ceil(arcs / CENTRING_ANGLES)))
    climbers = [climber(2), climber(4), climber(8), climber(16, finest_angles)]

    def climbed(at: tuple[int, int]) -> tuple[float, tuple[int, int]]:
        """The finest climber's score and the point (its steps) climbed to from ``at``
        (first steps)."""
        for score, _ in climbers:
            at = (2 * at[0], 2 * at[1])
            while (best := max(around(at), key=score)) != at:
                at = best
        return climbers[-1][0](at), at

    best, at = max(climbed(start) for start in starts)
    fine = climbers[-1][1]
    across = np.array([0.0, at[0] * fine, at[1] * fine])
    point = nct_axis.point + _rotation_to_z(nct_axis.direction).T @ across
    point -= point[0] / nct_axis.direction[0] * nct_axis.direction  # back to z = 0
    return best, CellAxis(point, nct_axis.direction, nct_axis.radius_um, nct_axis.centres_zyx_um)


def _centrings(
    xct: tuple[np.ndarray, float, np.ndarray],
    nct: tuple[np.ndarray, float, np.ndarray],
    xct_axis: CellAxis,
    nct_axis: CellAxis,
    names: Sequence[str],
) -> list[tuple[CellAxis, CellAxis]]:
    """The (X-ray, neutron) axes the pose search starts from: the neutron's centred on the
    content about the X-ray's (:func:`_centred_on_content`) and, where it matches better,
    the X-ray's centred about the neutron's as well (the registration keeps the start that
    ends at the lower metric, :func:`_mattes_at`): for a one-slice pair, and for a 3D pair
    whose neutron axis moved by more than a copy's voxel where the two centrings pair other
    points of the cell (the two axes moved by lengths that differ by more than a voxel).

    With a holder seen in the X-ray only, the X-ray's outline is the holder's, and the
    content about its centre (part holder, part cell) matched the neutron's poorly: a real
    18650 slice against grey-mapped remounts, 4 % noise, was registered 27.6 um (20 um
    pixels, 160 deg) and 8.1 mm (60 um, -121 deg) off, with 3 % noise 8.1 mm (20 um, -77 deg),
    exit 0; centred the other way, 0.1-1.8 um. The better centring alone does not tell the
    better start: on the same slice without noise the X-ray's centred scored higher on
    pairs it ended 10.7-90.5 um off (17.3 um at 20 um pixels, both holders, 60 deg; 1.2
    um from the other). On the test twin's remounts the X-ray's centred scores lower (by
    0.1-0.8 %): one start, as before."""
    score, moved = _centred_on_content(xct, nct, xct_axis, nct_axis, names)
    starts = [(xct_axis, moved)]
    one_slice, voxel = xct[0].shape[0] == 1, max(xct[1], nct[1])
    if not one_slice and np.linalg.norm(moved.point - nct_axis.point) <= voxel:
        # both outlines centred on the cell's content: the cell's, no holder's (the kernel
        # bench's twin pair: 3.3 um; the other centring cost 3.5 s of its 24)
        return starts
    try:
        other_score, other = _centred_on_content(nct, xct, nct_axis, xct_axis, names[::-1])
    except ValueError:  # the X-ray's content best past the grid's edge: that start only
        return starts
    # both axes moved alike: the same points of the cell paired, up to the turn about the
    # axis, which a 3D pair's descent settles alike from either (the kernel bench's twin
    # pair: 3.3 and 3.3 um, 0.09 and 0.15 voxel from each, 25 and 38 s for both); a
    # one-slice pair's did not (the slice at 160 deg: 436.5 and 437.8 um, 9.8 and 0.3 um
    # RMS; the 8.1 mm pairs: 387 and 105 um, 430 and 113 um)
    moves = (
        np.linalg.norm(other.point - xct_axis.point),
        np.linalg.norm(moved.point - nct_axis.point),
    )
    if other_score > score and (one_slice or abs(moves[0] - moves[1]) > voxel):
        starts.append((other, nct_axis))
    return starts


def _measured_extent(coarse: np.ndarray, voxel: float, axis: CellAxis) -> tuple[float, float]:
    """How far (um along ``axis``) the middle of the planes of the block-mean ``coarse``
    copy (``voxel`` um) that hold a measured voxel lies above the copy's middle, and half
    the height (um) from the first to the last: the stack's own extent, its padding planes
    (NaN or blank) left out; the copy's (0 and half its height) for a stack measured at
    both ends."""
    planes = np.flatnonzero(np.isfinite(coarse).any(axis=(1, 2)))
    if planes.size == 0:
        planes = np.array([0, coarse.shape[0] - 1])
    middle = ((planes[0] + planes[-1]) / 2 - (coarse.shape[0] - 1) / 2) * voxel
    return float(middle / axis.direction[0]), float((planes[-1] - planes[0]) / 2 * voxel)


def _angle_of(scores: np.ndarray, step_deg: float) -> float:
    """The angle (deg, -180 .. 180) of the best of circular ``scores`` at ``step_deg``."""
    return float((_peak(scores, circular=True) * step_deg + 180) % 360 - 180)


def _to_sitk(coarse: np.ndarray, voxel: float, to_fine: np.ndarray) -> sitk.Image:
    """SimpleITK image whose physical (x, y, z) frame is the volume's SPEC frame reversed.
    NaN voxels (not measured; SimpleITK has none) are filled (:func:`_filled`): the metric
    leaves them out by :func:`_measured_mask`."""
    dim = 2 if coarse.shape[0] == 1 else 3
    array = _filled(coarse[0] if dim == 2 else coarse)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
    origin_zyx = -(np.asarray(coarse.shape, dtype=np.float64) - 1) / 2 * voxel + to_fine[:3, 3]
    image.SetSpacing([float(voxel)] * dim)
    image.SetOrigin([float(c) for c in origin_zyx[::-1][:dim]])
    return image


def _filled(array: np.ndarray) -> np.ndarray:
    """``array`` with its NaN voxels filled by the mean of the measured ones around them (a
    Gaussian of 2 voxels normalised by their weight), the median further away: no edge the
    pyramid's smoothing or the interpolation could carry into the measured voxels."""
    finite = np.isfinite(array)
    if finite.all():
        return array
    if not finite.any():
        return np.zeros_like(array, dtype=np.float32)
    weight = ndimage.gaussian_filter(finite.astype(np.float32), 2.0)
    sums = ndimage.gaussian_filter(np.where(finite, array, 0).astype(np.float32), 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        local = np.where(weight > 1e-3, sums / weight, np.median(array[finite]))
    return np.where(finite, array, local).astype(np.float32)


def _smoothed(copy: np.ndarray, sigma: float) -> np.ndarray:
    """float32 ``copy`` smoothed by a Gaussian of ``sigma`` voxels over its measured voxels
    only (:func:`~jellyroll.conventions.finite_gaussian`; along z too unless one slice)."""
    sig = (0.0, sigma, sigma) if copy.shape[0] == 1 else sigma
    return finite_gaussian(np.asarray(copy, dtype=np.float32), sig)


def _measured_mask(coarse: np.ndarray, image: sitk.Image) -> sitk.Image | None:
    """uint8 mask (1 = measured) of the copy ``coarse`` (nz, ny, nx) of ``image``: its
    finite voxels, less one voxel at the edges of the unmeasured (NaN) ones, where the
    interpolation reaches the filling (:func:`_filled`); None where all are measured."""
    finite = np.isfinite(coarse)
    if finite.all():
        return None
    if coarse.shape[0] == 1:
        finite = finite[0]
    measured = ndimage.binary_erosion(finite, border_value=1)
    mask = sitk.GetImageFromArray(measured.astype(np.uint8))
    mask.CopyInformation(image)
    return mask


def _cell_mask(image: sitk.Image, axis: CellAxis) -> sitk.Image:
    """uint8 mask (1 = sampled by the metric) of ``image``'s voxels inside the cell: within
    1.05 radii of ``axis`` and, in 3D, 10 % of the stack away from its ends, where a tilted
    or clipped field of view has no data (zero or edge-repeated planes)."""
    array_shape = sitk.GetArrayViewFromImage(image).shape
    shape = array_shape if len(array_shape) == 3 else (1, *array_shape)
    spacing = image.GetSpacing()[0]
    origin = np.asarray(image.GetOrigin(), dtype=np.float64)[::-1]
    if len(array_shape) == 2:
        origin = np.array([0.0, *origin])
    axes = [origin[i] + spacing * np.arange(n) for i, n in enumerate(shape)]
    zz, yy, xx = np.meshgrid(*axes, indexing="ij", sparse=True)
    rel = [zz - axis.point[0], yy - axis.point[1], xx - axis.point[2]]
    along = sum(r * d for r, d in zip(rel, axis.direction, strict=True))
    across = np.sqrt(sum((r - along * d) ** 2 for r, d in zip(rel, axis.direction, strict=True)))
    inside = across <= 1.05 * axis.radius_um
    if shape[0] > 1:
        half = (shape[0] - 1) / 2 * spacing
        inside &= np.abs(along) <= 0.9 * half
    mask = sitk.GetImageFromArray(inside.reshape(array_shape).astype(np.uint8))
    mask.CopyInformation(image)
    return mask


def _zyx_to_sitk_matrix(matrix_zyx: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) in SimpleITK's (x, y[, z]) order from a 4x4 (z, y, x) matrix."""
    perm = np.arange(3)[::-1]
    a = matrix_zyx[:3, :3][np.ix_(perm, perm)]
    b = matrix_zyx[:3, 3][perm]
    return a[:dim, :dim], b[:dim]


def _sitk_affine(matrix_zyx: np.ndarray, dim: int) -> sitk.AffineTransform:
    """SimpleITK affine transform of a 4x4 (z, y, x) matrix."""
    a, b = _zyx_to_sitk_matrix(matrix_zyx, dim)
    return sitk.AffineTransform([float(v) for v in a.ravel()], [float(v) for v in b])


def _sitk_to_zyx_matrix(transform: sitk.Transform, dim: int) -> np.ndarray:
    """4x4 (z, y, x) matrix of a SimpleITK affine-like transform (x, y[, z] order)."""
    a = np.asarray(transform.GetMatrix(), dtype=np.float64).reshape(dim, dim)
    centre = np.asarray(transform.GetCenter(), dtype=np.float64)
    t = np.asarray(transform.GetTranslation(), dtype=np.float64)
    b = t + centre - a @ centre
    full_a, full_b = np.eye(3), np.zeros(3)
    full_a[:dim, :dim], full_b[:dim] = a, b
    perm = np.arange(3)[::-1]
    matrix = np.eye(4)
    matrix[:3, :3] = full_a[np.ix_(perm, perm)]
    matrix[:3, 3] = full_b[perm]
    return matrix


def _initial_transform(
    fixed_to_moving: np.ndarray, centre_zyx: np.ndarray, dim: int, scale: bool
) -> sitk.Transform:
    """SimpleITK transform mapping fixed-image points to moving-image points (SimpleITK's
    direction) from a 4x4 (z, y, x) rigid matrix, its centre of rotation at ``centre_zyx`` um
    of the fixed frame. :func:`register_volumes` fixes the finer neutron volume."""
    a, b = _zyx_to_sitk_matrix(fixed_to_moving, dim)
    centre = np.asarray(centre_zyx, dtype=np.float64)[::-1][:dim]
    if dim == 3:
        transform = sitk.Similarity3DTransform() if scale else sitk.VersorRigid3DTransform()
    else:
        transform = sitk.Similarity2DTransform() if scale else sitk.Euler2DTransform()
    transform.SetCenter([float(c) for c in centre])
    if dim == 3:
        transform.SetMatrix([float(v) for v in _orthonormal(a).ravel()])
    else:
        transform.SetAngle(float(np.arctan2(a[1, 0], a[0, 0])))
    translation = b + a @ centre - centre
    transform.SetTranslation([float(v) for v in translation])
    return transform


CELL_SIZE_TOLERANCE = 0.15
"""Largest relative difference of a cell's diameter between two modalities of one cell."""


def check_same_cell(diameter_um: float, other_um: float, one: str, other: str, sizes: str) -> None:
    """ValueError when a cell's diameters in two modalities differ by more than
    :data:`CELL_SIZE_TOLERANCE`: a wrong voxel or pixel size (or another cell) would be
    registered anyway, with a wrong result. The diameter is the outline's: a field of view
    that cuts the cell shrinks it, a constant filling outside a reconstruction's circle that
    :func:`~jellyroll.nxct.unmeasured.fill_ring` does not find (a circle under
    :data:`~jellyroll.nxct.unmeasured.RING_RADIUS` of half the slice) grows it to the whole
    slice; the message names both (the tiny twin's X-ray within a ring of 0.8 was 2934 um
    across for 1785, its neutron in a circle of 0.85 1534 for 1862, both refused with the
    voxel sizes as the only advice)."""
    if abs(diameter_um / other_um - 1.0) > CELL_SIZE_TOLERANCE:
        raise ValueError(
            f"the cell is {diameter_um:.0f} um across in {one} but {other_um:.0f} um in "
            f"{other}: they do not overlap as the same cell; check {sizes}, that both hold "
            "the same cell, and that each holds the whole cell with air around it (a field "
            "of view that cuts the cell makes it smaller; a constant filling outside a "
            "reconstruction's circle, read as the cell where that circle lies under "
            f"{RING_RADIUS:g} of half the slice, makes it the whole slice: give the volume "
            "with NaN there)"
        )


MAX_CUT_DIFFERENCE = 0.1
"""Largest difference between the two volumes of the share of the cell's cross-section that
their fields of view cut off (:func:`check_same_cut`). The registration starts at the centre
of the cell's outline in each volume, and a cut moves it: the tiny twin's X-ray cropped 14 of
its 104 voxels a side cut 13 % off (the cell sits 97 um off the array's centre, so more on
two sides), moved its centre 119 um and was registered 64.5 um off, exit 0 (6.3 um from the
uncut centre). Registered right: the test remounts' neutron volumes (the cell moved across
the array's edge: up to 4.3 % cut), the tiny twin's neutron cropped 20 of 208 a side (7.3 %,
7.0 um) and both volumes inside circles within the cell (1.1 % and 3.0 %, 10.3 um). Cut alike
(a neutron field inside the cell, the X-ray cropped to it) the two outlines agree. Centred on
the cell, deeper cuts can register right (the test twin's X-ray cut 13-19 %, 3-4 um): the
limit refuses those too."""


def check_same_cut(
    copies: Sequence[tuple[np.ndarray, float, np.ndarray]],
    axes: Sequence[CellAxis],
    names: Sequence[str],
) -> None:
    """ValueError when one volume's field of view cuts off more of the cell's cross-section
    than the other's, by over :data:`MAX_CUT_DIFFERENCE`: the share of the disk of the larger
    of the two cells' radii about each volume's axis (at its z = 0) that lies outside the
    convex hull of its block-mean copy's measured pixels
    (:func:`~jellyroll.conventions.measured_field`,
    :func:`~jellyroll.conventions.disk_cut_by_field`; a copy's last block may reach up to
    one of its voxels past the volume). ``copies``: the X-ray's and the neutron's
    (:func:`downsample`), ``axes`` and ``names`` in that order."""
    radius = max(axis.radius_um for axis in axes)
    cut = []
    for (copy, voxel, to_fine), axis in zip(copies, axes, strict=True):
        origin = to_fine[1:3, 3] - (np.asarray(copy.shape[1:]) - 1) / 2 * voxel
        field = measured_field(np.isfinite(copy).any(axis=0), origin, voxel)
        cut.append(disk_cut_by_field(axis.point[1:], radius, field)[0])
    more = int(cut[1] > cut[0])
    other = 1 - more
    if cut[more] - cut[other] > MAX_CUT_DIFFERENCE:
        raise ValueError(
            f"the field of view of {names[more]} cuts off {cut[more]:.0%} of the cell's "
            f"cross-section (the disk {2 * radius:.0f} um across about its axis, the larger of "
            f"the two volumes' cells), that of {names[other]} {cut[other]:.0%}: the two show "
            f"different parts of the cell (at most {MAX_CUT_DIFFERENCE:.0%} apart), and a "
            "cut moves the centre of the outline the registration starts from, which places "
            f"the pair wrong. Give {names[more]} uncropped (the whole cell, with air around "
            f"it), or crop {names[other]} to the same field of view about the cell"
        )


SCALE_TOLERANCE = 0.02
"""Largest departure from 1 of the isotropic scale a pair implies (:func:`implied_scale`)
before its voxel sizes are refused (:func:`check_scale`). Measured at the right sizes: within
0.0006 of 1 on seven tiny twins, the small twin and the ten test remounts, 0.0036 on a real
X-ray slice against its grey-mapped remount; one size 2-10 % off, found within 0.005 of the
truth (either modality, either way). Sound real pairs imply ~1 % at most (instrument
calibrations, a roll swelling with its state of charge inside its casing): 2 % refuses none."""
SCALE_WARNING = 0.01
"""Departure from 1 of the implied scale above which :func:`check_scale` warns: a 1 % scale
puts the tiny twin's rim ~1 neutron voxel off."""
SCALE_RANGE = 0.2  # the scales scanned: 1 +- this, past what check_same_cell lets through
SCALE_STEP = 0.01  # their step: under the main peak's half width (0.015 on the tiny twin)
SCALE_SAMPLES = 30_000  # points of the neutron copy inside the cell that the scan samples
SCALE_BINS = 32  # joint histogram bins of the scan's Mattes MI


def implied_scale(
    xct: tuple[np.ndarray, float, np.ndarray],
    nct: tuple[np.ndarray, float, np.ndarray],
    nct_to_xct: np.ndarray,
    axis: CellAxis,
    *,
    seed: int = 0,
) -> tuple[float, float, float]:
    """The isotropic scale about the neutron cell axis's ``point`` that, applied after
    ``nct_to_xct``, gives the block-mean copies ``xct`` and ``nct`` (:func:`downsample`) the
    most Mattes MI [Mattes et al. 2003], with that MI and the MI at scale 1 (nats).

    A scan of every scale within 1 +- :data:`SCALE_RANGE` in steps of :data:`SCALE_STEP`
    (the peak refined by a parabola), not a local fit: a roll's layers repeat, so a scale a
    layer's pitch over the cell's radius away is a side peak, and a similarity fit started
    at 1 stopped there (the tiny twin with its neutron voxel 5 % too small: 1.010 fitted,
    1.050 the scan). :data:`SCALE_SAMPLES` random points of the neutron copy inside the
    cell (:func:`_cell_mask`'s bounds), those mapped outside the X-ray copy left out at each
    scale (a short X-ray stack may hold a third of a tall neutron one's); scale 1 and no MI
    where under a tenth of them land in it. A neutron volume whose voxel size is given ``k``
    times too large needs ``1 / k``.
    """
    coarse, voxel, to_fine = nct
    shape = np.asarray(coarse.shape, dtype=np.float64)
    rng = np.random.default_rng(seed)
    index = rng.uniform(0, 1, (4 * SCALE_SAMPLES, 3)) * (shape - 1)
    points = (index - (shape - 1) / 2) * voxel + to_fine[:3, 3]
    rel = points - axis.point
    along = rel @ axis.direction
    inside = np.linalg.norm(rel - np.outer(along, axis.direction), axis=1) <= 1.05 * axis.radius_um
    if shape[0] > 1:
        inside &= np.abs(along) <= 0.9 * (shape[0] - 1) / 2 * voxel
    index, points = index[inside][:SCALE_SAMPLES], points[inside][:SCALE_SAMPLES]
    fixed = ndimage.map_coordinates(coarse, index.T, order=1)
    measured = np.isfinite(fixed)  # NaN: next to a block not measured, left out
    if not measured.all():
        fixed, points = fixed[measured], points[measured]
    xray, xray_voxel, xray_to_fine = xct
    xray_shape = np.asarray(xray.shape, dtype=np.float64)
    if fixed.size < 100:
        return 1.0, 0.0, 0.0
    fixed_range = np.percentile(fixed, (0.5, 99.5))
    if not np.ptp(fixed_range) > 0:
        return 1.0, 0.0, 0.0
    fixed_bins = (np.clip((fixed - fixed_range[0]) / np.ptp(fixed_range), 0, 1 - 1e-9)
                  * SCALE_BINS).astype(np.int64)  # fmt: skip
    to_index = np.linalg.inv(xray_to_fine) @ nct_to_xct

    def xray_at(scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Which points land inside the X-ray copy, where it is measured, at ``scale``, and
        its values there."""
        moved = apply_transform(axis.point + scale * (points - axis.point), to_index)
        at = moved / xray_voxel + (xray_shape - 1) / 2
        kept = np.all((at >= -0.5) & (at <= xray_shape - 0.5), axis=1)
        values = ndimage.map_coordinates(xray, at[kept].T, order=1, mode="nearest")
        measured = np.isfinite(values)
        if not measured.all():
            kept[kept] = measured
            values = values[measured]
        return kept, values

    at_one = xray_at(1.0)[1]
    if at_one.size < 0.1 * len(points):  # the stacks barely overlap: nothing to judge
        return 1.0, 0.0, 0.0
    moving_range = tuple(np.percentile(at_one, (0.5, 99.5)))
    if not np.ptp(moving_range) > 0:
        return 1.0, 0.0, 0.0

    def mi_at(scale: float) -> float:
        kept, moving = xray_at(scale)
        if kept.sum() < 0.1 * len(kept):
            return 0.0
        return _mattes_mutual_information(fixed_bins[kept], moving, moving_range, SCALE_BINS)

    n = round(SCALE_RANGE / SCALE_STEP)
    scores = np.array([mi_at(1 + SCALE_STEP * k) for k in range(-n, n + 1)])
    best = _peak(scores, circular=False)
    return float(1 + SCALE_STEP * (best - n)), float(scores.max()), float(scores[n])


def check_scale(
    scale: float, best_mi: float, mi_at_one: float, xct_voxel_um: float, nct_voxel_um: float,
    names: Sequence[str] = ("the X-ray volume", "the neutron volume"),
) -> None:  # fmt: skip
    """ValueError when the pair registers best scaled by more than :data:`SCALE_TOLERANCE`
    (``scale``, ``best_mi`` and ``mi_at_one`` from :func:`implied_scale`), a warning above
    :data:`SCALE_WARNING`: one voxel size is wrong, and a rigid registration spreads the
    scale as misregistration (the tiny twin with its neutron voxel 10 % too large: 79 um RMS,
    124 um at most, exit 0; 3 % too small: 653 um, the gradient descent strayed, exit 0)."""
    if abs(scale - 1.0) <= SCALE_WARNING:
        return
    message = (
        f"{names[1]} matches {names[0]} best scaled by {scale:.3f} (mutual information "
        f"{best_mi:.2f} against {mi_at_one:.2f} at the voxel sizes given: X-ray "
        f"{xct_voxel_um:g} um, neutron {nct_voxel_um:g} um): one of the voxel sizes is "
        "wrong, a scale that a rigid registration spreads as misregistration. The volumes "
        f"imply a neutron voxel of {nct_voxel_um * scale:.4g} um "
        f"for the X-ray's {xct_voxel_um:g} um (or an X-ray voxel of "
        f"{xct_voxel_um / scale:.4g} um for the neutron's {nct_voxel_um:g} um). Check the "
        "voxel sizes in the files' headers and give the right ones with --xct-voxel-um / "
        "--nct-voxel-um (or fit the scale with --scale)"
    )
    if abs(scale - 1.0) > SCALE_TOLERANCE:
        raise ValueError(message)
    warnings.warn(message, stacklevel=3)


AXIS_VARIATION_LIMIT = 2.0
"""How many times more a volume may vary between its slices than along the stillest in-plane
axis before it is taken for one whose first axis is not the cell's (see
:func:`check_cell_axis`)."""


def check_cell_axis(copy: np.ndarray, name: str) -> None:
    """ValueError naming ``name`` when the block-mean ``copy`` (nz, ny, nx) of a volume does
    not vary least along z: a wound cell barely changes along its axis, so a volume read as
    (z, y, x) with z the cell's axis (SPEC section 6) varies between its slices far less than
    within them (mean squared neighbour difference after a one-voxel Gaussian, the noise
    smoothed: 0.01-0.46 times the stiller in-plane axis on the twins), while one stored as
    (x, y, z) (MATLAB or Fortran order) varies least along its last axis (2.3-76 times). Both
    volumes of a pair stored so were registered 207 um off, exit 0. Stacks of under 3 slices
    are not judged; noise that hides the structure leaves the ratio near 1, not refused.
    NaN voxels (not measured) are left out: the smoothing is normalised by the measured
    weight, and the differences are taken between measured voxels only."""
    if copy.ndim != 3 or copy.shape[0] < 3:
        return
    smooth = finite_gaussian(copy.astype(np.float32), 1.0)
    variation = []
    for a in range(3):
        step = np.diff(smooth, axis=a)
        step = step[np.isfinite(step)]
        if step.size == 0:
            return
        variation.append(float(np.mean(np.square(step))))
    stillest = min(variation[1:])
    if variation[0] > AXIS_VARIATION_LIMIT * stillest:
        axis = 1 + int(np.argmin(variation[1:]))
        raise ValueError(
            f"{name} varies {variation[0] / stillest:.1f} times more between its slices than "
            f"along its axis {axis}: the cell's axis is not its first. jellyroll reads volumes "
            "as (z, y, x) slices across the cell (SPEC section 6); a volume stored as (x, y, z) "
            "(MATLAB or Fortran order) must be transposed before it is given"
        )


AIR_SPREAD = 0.5
"""How uniform a volume's slice corners must be, as a share of the spread inside the cell
(interquartile ranges), to be taken for the air around a round cell (the twins' corners:
0-0.26; corners of a field of view inside the cell, which hold the roll: 0.69-0.94)."""
INVERTED_MARGIN = 0.5
"""How much brighter than the cell's median (in its interquartile ranges) that air must be
for a volume to be refused as inverted (the twins: 0.9-1.3 darker the right way, 0.9-1.3
brighter inverted)."""


def check_attenuation_contrast(copy: np.ndarray, name: str) -> None:
    """ValueError naming ``name`` when the block-mean ``copy`` (nz, ny, nx) of a volume is
    brighter in the air around the cell than inside it: inverted (a transmission volume, or
    a grey scale reversed). The air is the corners of the slices, outside the disc inscribed
    in them, when they are uniform (:data:`AIR_SPREAD`); the cell, the ring from 0.2 to 0.7
    of that disc's radius (past a central hole). The twin's neutron remounts inverted were
    refused as mirrored, with the advice to flip an axis (which makes a mirror), or
    registered; a field of view inside the cell (its corners hold the roll) is not judged.
    """
    ny, nx = copy.shape[1:]
    iy = (np.arange(ny) - (ny - 1) / 2) / (ny / 2)
    ix = (np.arange(nx) - (nx - 1) / 2) / (nx / 2)
    radius = np.hypot(iy[:, None], ix[None, :])
    corners = copy[:, radius > 1.05]
    cell = copy[:, (radius > 0.2) & (radius < 0.7)]
    corners, cell = corners[np.isfinite(corners)], cell[np.isfinite(cell)]  # NaN: unmeasured
    if corners.size == 0 or cell.size == 0:
        return
    air_low, air, air_high = np.nanpercentile(corners, [25, 50, 75])
    low, middle, high = np.nanpercentile(cell, [25, 50, 75])
    spread = high - low
    if not spread > 0 or not air_high - air_low < AIR_SPREAD * spread:
        return
    if air > middle + INVERTED_MARGIN * spread:
        raise ValueError(
            f"{name} is brighter in the air around the cell (the corners of its slices: "
            f"median {air:.4g}) than inside the cell ({middle:.4g}): an attenuation volume is "
            "darkest in the air. Is it inverted (transmission, or a grey scale reversed)? "
            "Give the reconstructed attenuation (-ln of a transmission, or the grey scale "
            "reversed)"
        )


POLISH_VOXELS = 8  # the polish's neutron copy: up to this many times ``max_voxels`` voxels


def _polish(
    fixed: sitk.Image,
    moving: sitk.Image,
    mask: sitk.Image,
    transform: sitk.Transform,
    sampling: float,
    seed: int,
    fixed_initial: sitk.Transform | None = None,
) -> tuple[sitk.Transform, float]:
    """``transform`` refined by Powell's direction-set search [Powell 1964] of the Mattes MI
    at full resolution, on a fixed random ``sampling`` fraction of the masked voxels.

    The gradient descent leaves the axial shift a few um short: the roll barely changes
    along its axis, so the metric is flat along z next to steep in the other directions, and
    a direction-set search, which needs no gradient and adapts its directions, is not slowed
    by that ill-conditioning. The start is within a fraction of a voxel, so the search starts
    with small steps (0.2 voxel) and two sweeps. ``fixed_initial``: SimpleITK's fixed
    initial transform (virtual points -> the fixed image), if any. Returns the transform and
    the metric's final value.
    """
    method = _mattes_method(mask, transform, fixed_initial, sampling, seed)
    method.SetOptimizerAsPowell(
        numberOfIterations=2,
        maximumLineIterations=5,
        stepLength=0.2,
        stepTolerance=1e-3,
        valueTolerance=1e-7,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    final = method.Execute(fixed, moving)
    if isinstance(final, sitk.CompositeTransform):
        final = final.GetNthTransform(0)
    return getattr(sitk, type(transform).__name__)(final), float(method.GetMetricValue())


def _mattes_at(
    fixed: sitk.Image,
    moving: sitk.Image,
    mask: sitk.Image,
    transform: sitk.Transform,
    fixed_initial: sitk.Transform | None,
) -> float:
    """The Mattes MI (as :func:`_polish` measures it) of ``moving`` against ``fixed`` under
    ``transform``, on every voxel of ``mask``: what tells two registrations apart, not the
    polish's random fifth. At two poses 10 um apart (a real slice, 20 um pixels) the fifth's
    differed by 3e-6 (the lower 10.9 um off the truth), the whole mask's by 0.04 (the lower
    0.9 um off)."""
    return _mattes_method(mask, transform, fixed_initial).MetricEvaluate(fixed, moving)


def _mattes_method(
    mask: sitk.Image,
    transform: sitk.Transform,
    fixed_initial: sitk.Transform | None,
    sampling: float = 1.0,
    seed: int = 0,
) -> sitk.ImageRegistrationMethod:
    """SimpleITK's Mattes MI (32 bins, linear, one thread) on the fixed image's ``mask``,
    at ``transform`` (and ``fixed_initial``, if any), on a fixed random ``sampling``
    fraction of the masked voxels (from ``seed``) or all of them: what :func:`_polish`
    optimises and :func:`_mattes_at` evaluates."""
    method = sitk.ImageRegistrationMethod()
    method.SetNumberOfThreads(1)
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricFixedMask(mask)
    if sampling < 1:
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(float(sampling), _sitk_seed(seed))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetInitialTransform(transform, inPlace=False)
    if fixed_initial is not None:
        method.SetFixedInitialTransform(fixed_initial)
    return method


def _sitk_seed(seed: int) -> int:
    """SimpleITK's sampling seed for ``seed``: its 0 means "from the wall clock", which made a
    run with ``seed=0`` differ from the next."""
    return int(seed) + 1


def _orthonormal(a: np.ndarray) -> np.ndarray:
    """Nearest rotation to ``a`` (polar decomposition by SVD)."""
    u, _, vt = np.linalg.svd(a)
    return u @ vt


def _rotation_z(angle_deg: float) -> np.ndarray:
    """4x4 right-handed rotation by ``angle_deg`` about z (SPEC (z, y, x) order)."""
    c, s = np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))
    matrix = np.eye(4)
    matrix[1:3, 1:3] = [[c, s], [-s, c]]
    return matrix


class FineLevelSkipped(Exception):
    """The fine level (:func:`_refine_fine`) cannot refine this pair; the message says why."""


FINE_BLOCKS = 16  # blocks of the fine level
FINE_SAMPLES = 250_000  # the metric's sample points, drawn at random in the fine blocks
FINE_BINS = 48  # joint histogram bins of the fine level's Mattes MI


def _mattes_mutual_information(
    fixed_bins: np.ndarray, moving: np.ndarray, moving_range: tuple[float, float], bins: int
) -> float:
    """Mattes mutual information (nats) of samples: ``fixed_bins`` (n,) int bin indices of
    the fixed image (a box Parzen window), ``moving`` (n,) grey levels of the moving image,
    spread over the bins by a cubic B-spline Parzen window [Mattes et al. 2003] so that the
    metric varies smoothly with the moving samples (with the transform); values outside
    ``moving_range`` are clamped into its end bins."""
    low, high = moving_range
    position = np.clip((moving - low) / (high - low), 0, 1) * (bins - 4) + 1  # 1 .. bins - 3
    first = np.floor(position).astype(np.int64)
    t = position - first
    # the cubic B-spline's weights of bins first - 1 .. first + 2 at fraction t
    weights = ((1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3)
    rows = fixed_bins * bins
    joint = sum(
        np.bincount(rows + first + offset, weights=w, minlength=bins * bins)
        for offset, w in zip((-1, 0, 1, 2), weights, strict=True)
    ).reshape(bins, bins)
    p = joint / joint.sum()
    p_fixed, p_moving = p.sum(axis=1), p.sum(axis=0)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / np.outer(p_fixed, p_moving)[nz])))


def _spread_around_axis(k: int) -> tuple[float, float]:
    """The ``k``-th of points spread around the cell: a fraction 0.3-0.8 of its radius (a
    golden-ratio sequence) and an angle (rad) a golden angle (137.5 deg) past the previous
    one's, so that any few of them see every radius and direction."""
    return 0.3 + 0.5 * (k * (np.sqrt(5) - 1) / 2 % 1), k * np.pi * (3 - np.sqrt(5))


def _fine_blocks(
    shape: Sequence[int], voxel_um: float, axis: CellAxis, side: int, fits: Any
) -> list[np.ndarray]:
    """First voxels (z, y, x) of the blocks of ``side`` voxels of the neutron volume
    (``shape``, ``voxel_um``) the fine level reads: :data:`FINE_BLOCKS` centres spread
    evenly over 70 % of the stack's height, at 0.3-0.8 of the cell's radius (a golden-ratio
    sequence) and at angles a golden angle (137.5 deg) apart, so that every height, radius
    and direction is seen; the blocks for which ``fits(first_voxel)`` is false (an X-ray
    crop outside the X-ray volume) are left out.

    Spread rather than chosen on the structure: picking half the blocks of most gradient
    along the axis and half across it (on the block-mean copy) clustered them at the roll's
    ends and outline, and the 1024^3 pair's error (blocks of 64^3) went from 0.08 to 0.45
    neutron voxel.
    """
    shape = np.asarray(shape)
    half = (shape[0] - 1) / 2 * voxel_um
    firsts = []
    for k in range(FINE_BLOCKS):
        height = (-0.7 + 1.4 * k / (FINE_BLOCKS - 1)) * half
        fraction, angle = _spread_around_axis(k)
        radius = axis.radius_um * fraction
        centre = axis.point + height * axis.direction
        centre += radius * np.array([0.0, np.sin(angle), np.cos(angle)])
        first = np.round(centre / voxel_um + (shape - 1) / 2 - (side - 1) / 2).astype(int)
        first = np.clip(first, 0, shape - side)
        if fits(first):
            firsts.append(first)
    return firsts


def _perturbed(
    matrix: np.ndarray, delta: np.ndarray, centre: np.ndarray, lever: float, across: np.ndarray
) -> np.ndarray:
    """``matrix`` (neutron -> X-ray, 4x4) after a small motion of the neutron frame about
    ``centre`` (z, y, x) um: ``delta`` = rotation vector x ``lever`` (um), translation (um)
    along the two unit vectors ``across`` (2, 3) and, with a 6th entry, an isotropic
    scale - 1 x ``lever`` (um)."""
    rotation = Rotation.from_rotvec(delta[:3] / lever).as_matrix()
    if len(delta) > 5:
        rotation = rotation * (1 + delta[5] / lever)
    motion = np.eye(4)
    motion[:3, :3] = rotation
    motion[:3, 3] = centre + delta[3:5] @ across - rotation @ centre
    return matrix @ motion


def _refine_fine(
    xct: Any,
    xct_voxel_um: float,
    nct: Any,
    nct_voxel_um: float,
    nct_to_xct: np.ndarray,
    axis: CellAxis,
    *,
    fine_voxels: int,
    bound_um: float,
    seed: int,
    scale: bool,
    samples: int = FINE_SAMPLES,
) -> tuple[np.ndarray, float]:
    """``nct_to_xct`` refined at the volumes' own voxels on blocks of the neutron volume.

    :func:`_fine_blocks` places :data:`FINE_BLOCKS` cubes of ``fine_voxels`` neutron voxels
    in all, read by slicing (an HDF5 dataset reads only their chunks), each with the crop of
    the X-ray volume it maps into, widened by what a motion within ``bound_um`` (per
    parameter) can add; where the X-ray voxels are the finer, the cubes are smaller by the
    voxels' ratio, so that the crops hold no more than ``fine_voxels`` in all (plus their
    margins). The metric: Mattes MI of one joint histogram of
    ``samples`` points drawn once at random positions in the blocks (off any grid
    the X-ray's could alias with) inside the cell, the X-ray crops linearly interpolated at
    the moved points; minimised by Powell's search [Powell 1964] within +-``bound_um`` over
    the rotation, the shift across the cell axis (and the scale with ``scale``).

    The shift along the axis stays the coarse levels': a roll barely changes along its axis,
    and on blocks of it the metric fell steadily over +-6 um of axial shift around the truth
    of the 512^3 bench pair (from the truth the search ended 1.1 neutron voxels off), while
    the coarse copies see the roll's ends whole. Few large blocks, not many small ones: with
    the same 250k points, 16 blocks of 64^3 voxels left the 1024^3 pair's rotation about the
    axis 0.07 deg off (a concentric roll pins it only by its sparse non-concentric features),
    16 of 160^3 within 0.012 deg. One histogram over all blocks, not a sum of per-block
    SimpleITK metrics: its per-call setup scales with the image (0.15 s per 80^3 block,
    measured), which a search of a hundred or more evaluations of 16 blocks cannot pay.
    Returns the matrix and the final metric (negative MI). Raises :class:`FineLevelSkipped`
    where no block fits, the blocks hold too little of the cell or no contrast, or the search
    ends at its bounds (then the coarse levels' result stands).
    """
    nct_shape, xct_shape = np.asarray(nct.shape), np.asarray(xct.shape)
    # an X-ray finer than the neutron volume: each crop holds ratio^3 times the block's
    # voxels, so the blocks shrink by the ratio (the crops at most fine_voxels / 16 voxels
    # with their margins aside); at 5 um X-ray against 50 um neutron voxels each crop was
    # 1618^3 voxels (15.8 GiB as float32), a run killed for memory
    ratio = max(1.0, nct_voxel_um / xct_voxel_um)
    side = min(max(8, round((fine_voxels / FINE_BLOCKS) ** (1 / 3) / ratio)), int(nct_shape.min()))
    margin = 4 * bound_um / xct_voxel_um + 2  # X-ray voxels: the motion's reach, interpolation
    corners = np.stack(np.meshgrid(*[(0, side - 1)] * 3, indexing="ij"), -1).reshape(-1, 3)

    def crop_of(first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = (first + corners - (nct_shape - 1) / 2) * nct_voxel_um
        index = apply_transform(points, nct_to_xct) / xct_voxel_um + (xct_shape - 1) / 2
        return _index_box(index, margin)

    def fits(first: np.ndarray) -> bool:
        low, high = crop_of(first)
        return bool(np.all(low >= 0) and np.all(high <= xct_shape))

    firsts = _fine_blocks(nct.shape, nct_voxel_um, axis, side, fits)
    if not firsts:
        raise FineLevelSkipped("no block's X-ray crop lies inside the X-ray volume")
    rng = np.random.default_rng(seed)
    blocks, fixed_values = [], []
    for first in firsts:
        block = np.asarray(nct[tuple(slice(f, f + side) for f in first)], dtype=np.float32)
        index = rng.uniform(0, side - 1, (samples // len(firsts), 3))
        points = (index + first - (nct_shape - 1) / 2) * nct_voxel_um
        rel = points - axis.point
        along = rel @ axis.direction
        distance = np.linalg.norm(rel - np.outer(along, axis.direction), axis=1)
        keep = distance <= 1.05 * axis.radius_um
        low, high = crop_of(first)
        crop = np.asarray(xct[tuple(slice(a, b) for a, b in zip(low, high, strict=True))],
                          dtype=np.float32)  # fmt: skip
        values = ndimage.map_coordinates(block, index[keep].T, order=1)
        measured = np.isfinite(values)  # NaN or inf around: not measured, left out
        fixed_values.append(values[measured])
        blocks.append((points[keep][measured], crop, low))
    fixed = np.concatenate(fixed_values)
    if fixed.size < samples // 10:
        raise FineLevelSkipped("the blocks hold too little of the cell (measured)")
    fixed_range = np.percentile(fixed, (0.5, 99.5))
    crops = np.concatenate([crop.ravel() for _, crop, _ in blocks])
    unmeasured_crops = not np.isfinite(crops).all()
    if unmeasured_crops:
        crops = crops[np.isfinite(crops)]
        if crops.size == 0:
            raise FineLevelSkipped("the X-ray crops hold no measured voxel")
    moving_range = tuple(np.percentile(crops, (0.5, 99.5)))
    if not (np.ptp(fixed_range) > 0 and np.ptp(moving_range) > 0):
        raise FineLevelSkipped("no contrast in the blocks")
    fixed_bins = (np.clip((fixed - fixed_range[0]) / np.ptp(fixed_range), 0, 1 - 1e-9)
                  * FINE_BINS).astype(np.int64)  # fmt: skip
    centre = np.concatenate([p for p, _, _ in blocks]).mean(axis=0)
    lever = float(max(np.linalg.norm(p - centre, axis=1).max() for p, _, _ in blocks))

    def cost(delta: np.ndarray) -> float:
        matrix = _perturbed(nct_to_xct, delta, centre, lever, across)
        moving = [
            ndimage.map_coordinates(
                crop,
                (apply_transform(points, matrix) / xct_voxel_um + (xct_shape - 1) / 2 - low).T,
                order=1,
                mode="nearest",
            )
            for points, crop, low in blocks
        ]
        moving_values, bins_of = np.concatenate(moving), fixed_bins
        if unmeasured_crops:  # the points where the X-ray is measured (they move with it)
            measured = np.isfinite(moving_values)
            if measured.sum() < fixed_bins.size // 10:
                return 0.0
            moving_values, bins_of = moving_values[measured], fixed_bins[measured]
        mi = _mattes_mutual_information(bins_of, moving_values, moving_range, FINE_BINS)
        return -mi

    across = _rotation_to_z(axis.direction)[1:]  # the two unit vectors across the axis
    n = 6 if scale else 5
    found = optimize.minimize(
        cost,
        np.zeros(n),
        method="Powell",
        bounds=[(-bound_um, bound_um)] * n,
        options={"xtol": 0.03 * nct_voxel_um, "ftol": 1e-6, "maxfev": 100 * n},
    )
    if np.any(np.abs(found.x) > 0.95 * bound_um):
        # the optimum lies beyond the search's reach: the start is not trusted
        raise FineLevelSkipped(f"the search ended at its bound (+-{bound_um:.2g} um)")
    return _perturbed(nct_to_xct, found.x, centre, lever, across), float(found.fun)


AXIAL_BLOCKS = 16  # blocks of the axial level, around the cell at the height of its step
AXIAL_LINES = 1000  # lines along the axis sampled per block
AXIAL_HALF_HEIGHT = 4  # half height of the axial level's blocks, in the coarse copy's voxels
AXIAL_MIN_CONTRAST = 10  # a step's height over its plateaus' noise, in both volumes
AXIAL_MAX_STD_ERROR = 0.05
"""Largest standard error (neutron voxels) across blocks of the axial level's shift. Accepted
levels measured 0.035 voxel (the 512^3 bench pair, the small twin's own pair); at 0.096 (a
remount of the test twin, 40 um X-ray voxels) the level moved the shift along the axis from
1.55 to 2.63 um off: no better than the mutual information it would replace."""
AXIAL_CANDIDATES = 3  # heights of most axial change tried for a step


class AxialLevelSkipped(Exception):
    """Nothing the axial level (:func:`_refine_axial`) can use pins the shift along the axis;
    the message says why."""


def _index_box(index: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """First voxel and end (exclusive) of the box holding the (n, 3) voxel indices ``index``
    widened by ``margin`` voxels (for linear interpolation inside it)."""
    return (np.floor(index.min(axis=0) - margin).astype(int),
            np.ceil(index.max(axis=0) + margin).astype(int) + 1)  # fmt: skip


def _read_around(volume: Any, index: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """The box of ``volume`` holding the (n, 3) voxel indices ``index`` widened by ``margin``
    voxels (:func:`_index_box`), read by slicing (float32), and its first voxel;
    :class:`AxialLevelSkipped` where the box leaves the volume."""
    low, high = _index_box(index, margin)
    if np.any(low < 0) or np.any(high > np.asarray(volume.shape)):
        raise AxialLevelSkipped("outside the volume")
    box = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
    return np.asarray(volume[box], dtype=np.float32), low


def _step_height(profile: np.ndarray, heights: np.ndarray) -> tuple[float, float]:
    """Where a step of the mean ``profile`` (n,) over ``heights`` (n,) um lies, and its height
    over the noise of its plateaus (the outer fifth at each end): the first moment of the
    profile normalised from 0 (below) to 1 (above), exact for a step under any symmetric
    blur, whatever the grey levels or the sign of the step (multimodal)."""
    q = max(2, len(profile) // 5)
    low, high = profile[:q].mean(), profile[-q:].mean()
    noise = max(profile[:q].std(), profile[-q:].std(), 1e-12 * (abs(low) + abs(high)))
    unit = (profile - low) / (high - low) if high != low else np.zeros_like(profile)
    step = heights[-1] - np.trapezoid(unit, heights)  # the integral of 1 - unit from the bottom
    return float(step), float(abs(high - low) / noise)


def _refine_axial(
    xct: Any,
    xct_voxel_um: float,
    nct: Any,
    nct_voxel_um: float,
    nct_to_xct: np.ndarray,
    axis: CellAxis,
    coarse: tuple[np.ndarray, float, np.ndarray],
    *,
    bound_um: float,
    seed: int,
) -> tuple[np.ndarray, str]:
    """``nct_to_xct`` with the shift along the cell axis refined at the volumes' own voxels.

    A jelly roll is the same at every height but at its ends, its defects and its noise, so
    what pins the shift along the axis is a height where the cell changes: those of the
    largest mean squared axial difference of the neutron ``coarse`` copy (its block mean) in
    the axis frame, tried in turn (:data:`AXIAL_CANDIDATES` of them, apart by more than the
    blocks' height) by :func:`_shift_at_step` until one holds a step both volumes show; on the
    bench pairs the roll's end stands ~7000 times above the body's noise floor, the defect
    band < 8 times. Raises :class:`AxialLevelSkipped` with the first candidate's reason where
    none does (a body without ends, or with only blob-like defects, has no step): the coarse
    levels' shift stands. Returns the matrix and what was done.
    """
    small, voxel, to_fine = coarse
    half_height = AXIAL_HALF_HEIGHT * voxel
    top = 0.9 * (nct.shape[0] - 1) / 2 * nct_voxel_um - half_height  # clear of the stack's ends
    if top <= 0:
        raise AxialLevelSkipped("the stack is too short")
    heights = np.arange(-top, top + voxel / 2, voxel)
    if heights.size < 2:  # no axial difference to rank (a 10-slice stack: IndexError below)
        raise AxialLevelSkipped("the stack is too short")
    rings = _polar_samples(
        small, voxel, to_fine, axis.to_axis_frame(),
        np.linspace(0.1, 1.0, 24) * axis.radius_um,
        np.linspace(0, 2 * np.pi, 64, endpoint=False), heights,
    )  # fmt: skip
    if np.isfinite(rings).all():
        change = np.mean(np.diff(rings, axis=0) ** 2, axis=(1, 2))
    else:  # between measured samples only (an edge of a NaN region is no step of the cell)
        squares = np.diff(rings, axis=0) ** 2
        counts = np.isfinite(squares).sum(axis=(1, 2))
        change = np.where(counts > 0, np.nansum(squares, axis=(1, 2)) / np.maximum(counts, 1),
                          -np.inf)  # fmt: skip
    candidates: list[float] = []
    for k in np.argsort(change)[::-1]:
        height = float(heights[k] + voxel / 2)
        if all(abs(height - c) > 2 * half_height for c in candidates):
            candidates.append(height)
        if len(candidates) == AXIAL_CANDIDATES:
            break
    reasons = []
    for height in candidates:
        try:
            return _shift_at_step(
                xct, xct_voxel_um, nct, nct_voxel_um, nct_to_xct, axis, height, half_height,
                bound_um=bound_um, seed=seed,
            )  # fmt: skip
        except AxialLevelSkipped as why:
            reasons.append(str(why))
    raise AxialLevelSkipped(reasons[0] + (f"; {len(reasons) - 1} other heights neither"
                                          if len(reasons) > 1 else ""))  # fmt: skip


def _shift_at_step(
    xct: Any,
    xct_voxel_um: float,
    nct: Any,
    nct_voxel_um: float,
    nct_to_xct: np.ndarray,
    axis: CellAxis,
    height: float,
    half_height: float,
    *,
    bound_um: float,
    seed: int,
) -> tuple[np.ndarray, str]:
    """``nct_to_xct`` with the shift along the axis from a step of the cell at ``height`` um
    of the neutron axis frame (:func:`_refine_axial`).

    :data:`AXIAL_BLOCKS` boxes of the neutron volume around the cell at that height (0.3-0.8
    of its radius, a golden angle apart), each with the X-ray box it maps into, read by
    slicing; in each, :data:`AXIAL_LINES` lines along the axis at random offsets (within
    ``half_height`` um across) give the two volumes' mean profiles over heights within
    ``half_height`` um of the step, and :func:`_step_height` the step's height in each (the
    X-ray's through ``nct_to_xct``, both from the blocks' pooled profiles): the shift is their
    difference. Twice, the second pass from the first's result.

    Why a step's position, not the fine level's Mattes MI with the shift free: on 16 blocks of
    32^3 voxels across the roll's end of the 512^3 bench pair the MI over the axial shift
    (others fixed) peaked 2.0 um (0.32 neutron voxel) off the truth, on a smooth broad curve,
    while the two steps' positions matched to 0.06 um; a roll's body is flat along the axis
    and only adds noise to the MI. The step must stand out in both volumes (over
    :data:`AXIAL_MIN_CONTRAST` times its plateaus' noise) and the blocks must agree (the
    shift's standard error within :data:`AXIAL_MAX_STD_ERROR` neutron voxel), and the shift
    must lie within ``bound_um`` (else the start is not trusted); if not, or where too few
    boxes lie inside both volumes, :class:`AxialLevelSkipped` says why.
    """
    across = _rotation_to_z(axis.direction)[1:]
    rng = np.random.default_rng(seed)
    nct_shape, radius = np.asarray(nct.shape), axis.radius_um
    steps = np.arange(-half_height, half_height + nct_voxel_um / 4, nct_voxel_um / 2)
    blocks = []
    for k in range(AXIAL_BLOCKS):
        fraction, angle = _spread_around_axis(k)
        centre = axis.point + height * axis.direction
        centre += fraction * radius * (np.sin(angle) * across[0] + np.cos(angle) * across[1])
        offsets = rng.uniform(-half_height, half_height, (AXIAL_LINES, 2)) @ across
        points = centre + steps[:, None, None] * axis.direction + offsets  # (height, line, 3)
        index = points.reshape(-1, 3) / nct_voxel_um + (nct_shape - 1) / 2
        try:
            neutron, low = _read_around(nct, index, 2)
            xct_index = apply_transform(points.reshape(-1, 3), nct_to_xct) / xct_voxel_um
            xray, xct_low = _read_around(
                xct, xct_index + (np.asarray(xct.shape) - 1) / 2, bound_um / xct_voxel_um + 2
            )
        except AxialLevelSkipped:
            continue
        profile = ndimage.map_coordinates(neutron, (index - low).T, order=1)
        blocks.append((points.reshape(-1, 3), xray, xct_low, profile.reshape(len(steps), -1)))
    if len(blocks) < AXIAL_BLOCKS // 4:
        raise AxialLevelSkipped(f"too few blocks at the cell's step ({height:.0f} um) fit")
    matrix = nct_to_xct
    for _ in range(2):
        neutron_profiles, xray_profiles = [], []
        for points, xray, xct_low, profile in blocks:
            index = apply_transform(points, matrix) / xct_voxel_um + (np.asarray(xct.shape) - 1) / 2
            moving = ndimage.map_coordinates(xray, (index - xct_low).T, order=1, mode="nearest")
            moving = moving.reshape(len(steps), -1)
            # the lines measured over their whole height in both volumes (NaN or inf: not)
            lines = np.isfinite(profile).all(axis=0) & np.isfinite(moving).all(axis=0)
            if lines.all():
                neutron_profiles.append(profile.mean(axis=1))
                xray_profiles.append(moving.mean(axis=1))
            elif lines.sum() >= AXIAL_LINES // 2:
                neutron_profiles.append(profile[:, lines].mean(axis=1))
                xray_profiles.append(moving[:, lines].mean(axis=1))
        if len(xray_profiles) < AXIAL_BLOCKS // 4:
            raise AxialLevelSkipped(
                f"too few blocks at the cell's step ({height:.0f} um) are measured in both"
            )
        # the blocks' profiles pooled for the shift; one by one for its standard error
        (n_step, n_contrast), (x_step, x_contrast) = (
            _step_height(np.mean(profiles, axis=0), steps)
            for profiles in (neutron_profiles, xray_profiles)
        )
        contrast = min(n_contrast, x_contrast)
        if contrast < AXIAL_MIN_CONTRAST:
            raise AxialLevelSkipped(
                f"no step along the axis stands out in both volumes (at {height:.0f} um: "
                f"{contrast:.1f} times the noise)"
            )
        shifts = [
            _step_height(x, steps)[0] - _step_height(n, steps)[0]
            for n, x in zip(neutron_profiles, xray_profiles, strict=True)
        ]
        std_error = float(np.std(shifts, ddof=1) / np.sqrt(len(shifts)))
        if std_error > AXIAL_MAX_STD_ERROR * nct_voxel_um:
            raise AxialLevelSkipped(
                f"the blocks disagree on the shift along the axis at the step ({height:.0f} "
                f"um): standard error {std_error:.2g} um"
            )
        motion = np.eye(4)
        motion[:3, 3] = (x_step - n_step) * axis.direction
        matrix = matrix @ motion
    total = float((np.linalg.inv(nct_to_xct) @ matrix)[:3, 3] @ axis.direction)
    if abs(total) > bound_um:
        raise AxialLevelSkipped(f"the shift ({total:.2g} um) is beyond +-{bound_um:.2g} um")
    return matrix, (
        f"refined at the step {height:.0f} um along the neutron axis: {total:+.2f} um "
        f"(standard error {std_error:.2f} um, {len(xray_profiles)} blocks, contrast "
        f"{contrast:.0f})"
    )


def _descent_from_scan(
    method: sitk.ImageRegistrationMethod,
    images: tuple[sitk.Image, sitk.Image],
    full: tuple[sitk.Image, sitk.Image],
    initial_at: Callable[[float], sitk.Transform],
    angle: float,
) -> sitk.Transform:
    """A one-slice pair's gradient descent (``method`` on ``images``) from the angles (deg)
    about the axis of the two lowest minima of its metric on ``full`` (the copies as given)
    over +-:data:`START_SCAN_DEG` of ``angle`` (``initial_at``: the start transform at an
    angle), the descent ending at the lower metric kept.

    From the pose search's angle alone, 0.9 deg off, the descent stopped on a local optimum
    of the spiral, 58 um RMS off (a real slice, its holder in the neutron only, 40 um
    pixels; the scan's least 0.15 deg off: 2.5 um); with 5 % noise at 20 um pixels, 0.6
    deg off, the scan's least lay at the pose search's angle and the descent from there
    ended 28 um off, from the next minimum 0.5 um (at a lower metric). Not in 3D: on the
    test twin's remounts the metric varies by 1 % over the scan, which cost a quarter of
    the registration (17 evaluations of 25 ms), and left them as they were (2.0-5.5 um)."""
    scanned = np.arange(-START_SCAN_DEG, START_SCAN_DEG + 1e-9, START_SCAN_STEP_DEG)
    metrics = []
    for offset in scanned:
        method.SetInitialTransform(initial_at(angle + offset), inPlace=False)
        metrics.append(method.MetricEvaluate(*full))
    metrics = np.asarray(metrics)
    inner = metrics[1:-1]
    minima = np.flatnonzero((inner < metrics[:-2]) & (inner < metrics[2:])) + 1
    starts = sorted({int(np.argmin(metrics)), *minima}, key=lambda i: metrics[i])[:2]
    descents = []
    for i in starts:
        method.SetInitialTransform(initial_at(angle + scanned[i]), inPlace=False)
        descents.append((method.Execute(*images), method.GetMetricValue()))
    return min(descents, key=lambda descent: descent[1])[0]


def _descent_method(
    fixed: sitk.Image,
    moving: sitk.Image,
    copies: tuple[tuple[np.ndarray, float, np.ndarray], ...],
    *,
    sampling: float,
    seed: int,
    iterations: int,
    learning_rate: float,
    relaxation: float,
    shrink: Sequence[int],
) -> tuple[sitk.ImageRegistrationMethod, tuple[sitk.Image, sitk.Image]]:
    """The gradient descent of :func:`register_volumes` (Mattes MI, its arguments of the same
    names) on ``fixed`` and ``moving``, made of ``copies`` (the neutron's and the X-ray's, as
    :func:`downsample_levels` gives them), and the (fixed, moving) images it descends on:
    smoothed once where voxels are not measured."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    if sampling < 1:
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(float(sampling), _sitk_seed(seed))
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=learning_rate,
        minStep=1e-4,
        numberOfIterations=int(iterations),
        relaxationFactor=relaxation,
        gradientMagnitudeTolerance=1e-8,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(shrink))
    sigmas = [s / 2 if s > 1 else 0.0 for s in shrink]
    # with voxels not measured, one level's smoothing over the measured voxels only: the
    # pyramid's smoothed the filling (:func:`_filled`) into the voxels the mask keeps, and
    # one NaN end plane of the tiny twin's 8-plane X-ray moved it 10.8 um along the axis
    # (1.9 with this; what the NaN held, the true values or the filling, moved it 8.8 um)
    gradient_images = fixed, moving
    unmeasured = not all(np.isfinite(c[0]).all() for c in copies)
    if len(set(sigmas)) == 1 and sigmas[0] > 0 and unmeasured:
        gradient_images = tuple(_to_sitk(_smoothed(c[0], sigmas[0]), *c[1:]) for c in copies)
        sigmas = [0.0] * len(sigmas)
    if unmeasured:
        # the metric's gradient by central differences of the interpolated X-ray copy (one
        # voxel past the interpolation's reach), not SimpleITK's default, a Gaussian
        # derivative of the whole image, filling included, which carried the filling several
        # voxels past the mask's margin: the tiny twin with a NaN end plane registered 9.3 um
        # apart filled with the local mean or with the X-ray's maximum (1.1 so)
        method.MetricUseMovingImageGradientFilterOff()
    method.SetSmoothingSigmasPerLevel(sigmas)
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return method, gradient_images


def register_volumes(
    xct: Any,
    xct_voxel_um: float,
    nct: Any,
    nct_voxel_um: float,
    *,
    scale: bool = False,
    max_voxels: int = 2_000_000,
    seed: int = 0,
    sampling: float = 0.3,
    iterations: int = 100,
    learning_rate: float = 2.0,
    relaxation: float = 0.8,
    shrink: Sequence[int] = (2,),
    polish_sampling: float = 0.2,
    fine_voxels: int = 64_000_000,
) -> Registration:
    """Register a neutron CT volume onto an X-ray CT volume of the same cell (multimodal).

    ``xct``, ``nct``: (nz, ny, nx) arrays or array-likes (h5py datasets, memmaps), each read in
    slabs into block-mean copies of at most ``max_voxels`` voxels; one-slice volumes register
    in 2D. ``scale``: also fit an isotropic scale (started at :func:`implied_scale`'s);
    without it, a pair whose voxel sizes disagree is refused (:func:`check_scale`).
    ``sampling``: fraction of the neutron voxels sampled (randomly, from ``seed``) by the
    Mattes MI metric's gradient descent;
    ``iterations`` per level of the pyramid ``shrink`` (factors of the downsampled copies;
    the default, one level at half resolution, leaves the full resolution to the polish);
    ``polish_sampling``: fraction of the masked neutron voxels, a fixed random set, on which
    Powell's search polishes at full resolution (0.2: the ten twin remounts of the tests end
    within 0.28 voxel, as with every voxel, at a fifth of the cost). ``fine_voxels``:
    neutron voxels read, in 16 blocks, for the last level at the volumes' own voxels where
    the copies are coarser (0: none; the default's blocks of 160^3 hold 16 MiB each while
    read, and their X-ray crops stay, a few MiB each); 3D only. The axial level
    (:func:`_refine_axial`) runs last in 3D, also where the copies are at full resolution
    (the small twin's own pair: 0.40 -> 0.17 neutron voxel, 3.6 -> 0.3 um along the axis),
    not with ``fine_voxels=0``.
    NaN and inf voxels are not measured: left out of every level (:func:`check_measured`
    refuses a volume measured too little).
    Deterministic: one seed, one thread.
    """
    start = time.perf_counter()
    names = (_volume_name(xct, "the X-ray volume"), _volume_name(nct, "the neutron volume"))
    if (xct.shape[0] == 1) != (nct.shape[0] == 1):
        raise ValueError(
            f"{names[0]} has {xct.shape[0]} slice(s), {names[1]} {nct.shape[0]}: both volumes "
            "must be 3D, or both one slice; give two stacks (or two single slices)"
        )
    # blank planes (padding: all one value) and fill rings are not measured either, as NaN:
    # read as data, one plane of 0 on the tiny twin's 8-plane X-ray stack moved it 25-34 um
    # along the axis, and a ring of 0 round an int16 X-ray (air -1000) made the cell 2347 um
    # across for 1785 (refused as a wrong voxel size). The finer levels read inside the cell,
    # within the circle: the rings are left to the copies, the blank planes read as NaN.
    blanks: tuple[list[int], list[int]] = ([], [])
    (xc,) = downsample_levels(xct, xct_voxel_um, (max_voxels,), blank_planes=blanks[0])
    # the polish's finer neutron copy in the same pass over the (largest) volume
    nc, fine = downsample_levels(
        nct, nct_voxel_um, (max_voxels, POLISH_VOXELS * max_voxels), blank_planes=blanks[1]
    )
    xct, nct = (PlanesAsNan(v, b) if b else v for v, b in zip((xct, nct), blanks, strict=True))
    for name, volume, voxel, (copy, copy_voxel, _) in zip(
        names, (xct, nct), (xct_voxel_um, nct_voxel_um), (xc, nc), strict=True
    ):
        _check_copy_slices(name, volume.shape, copy.shape, round(copy_voxel / voxel), max_voxels)
    for name, volume, voxel, (copy, copy_voxel, _), b in zip(
        names, (xct, nct), (xct_voxel_um, nct_voxel_um), (xc, nc), blanks, strict=True
    ):
        factor = 1 if copy.shape[0] == volume.shape[0] else round(copy_voxel / voxel)
        check_measured(copy, name, _judged_planes(copy.shape[0], factor, volume.shape[0], b))
        check_cell_axis(copy, name)
        check_attenuation_contrast(copy, name)
    xct_axis, nct_axis = _find_axis_coarse(*xc), _find_axis_coarse(*nc)
    check_same_cell(
        2 * xct_axis.radius_um, 2 * nct_axis.radius_um,
        f"the X-ray volume ({xct_voxel_um:g} um voxels)",
        f"the neutron volume ({nct_voxel_um:g} um voxels)",
        "the voxel sizes (--xct-voxel-um, --nct-voxel-um)",
    )  # fmt: skip
    check_same_cut((xc, nc), (xct_axis, nct_axis), names)
    dim = 2 if xc[0].shape[0] == 1 else 3
    fixed, moving = _to_sitk(*nc), _to_sitk(*xc)
    # the metric's mask about the neutron's outline, whichever pair of axes the pose starts
    # from: about the neutron's axis centred on the X-ray's holder it held air and cut off
    # the casing (a real slice, holder in the X-ray, 4 % noise, 160 deg: 27.6 um RMS off)
    cell_mask = _with_measured(_cell_mask(fixed, nct_axis), nc[0], fixed)
    # the polish samples a finer neutron copy when the volume has one: sampled on the
    # coarse copy's grid, commensurate with the X-ray's, the MI's optimum of the small
    # twin's pair sat 7.5 um (0.75 neutron voxel) off along the axis; on 2x finer samples
    # it is at the truth (within 2.5 um). As many samples are drawn as on the coarse copy.
    polish_fixed, polish_mask, polish_fraction = fixed, cell_mask, polish_sampling
    if fine[1] < nc[1]:
        polish_fixed = _to_sitk(*fine)
        polish_mask = _with_measured(_cell_mask(polish_fixed, nct_axis), fine[0], polish_fixed)
        polish_fraction *= nc[0].size / fine[0].size

    def registered_from(xct_axis: CellAxis, nct_axis: CellAxis, judged: bool) -> _Coarse:
        """The pose search, the gradient descent and the polish from one pair of axes;
        ``judged``: measure the metric on every voxel of the mask as well."""
        angle, shift, turn, beyond_reach = _pose_search(xc, nc, xct_axis, nct_axis, name=names[1])
        along = np.eye(4)
        along[0, 3] = shift

        def pose_at(angle: float) -> np.ndarray:
            """The X-ray-to-neutron matrix of the pose search's pose turned to ``angle`` (deg)."""
            return (
                np.linalg.inv(turn @ nct_axis.to_axis_frame())
                @ along
                @ _rotation_z(angle)
                @ xct_axis.to_axis_frame()
            )

        xct_to_nct = pose_at(angle)
        # at the pose search's pose: the gradient descent at a wrong scale strayed
        implied = implied_scale(xc, nc, np.linalg.inv(xct_to_nct), nct_axis, seed=seed)
        if not scale:
            check_scale(*implied, xct_voxel_um, nct_voxel_um, names)
        # after the scale's check: a voxel size 10 % off also moves the best shift along the axis,
        # and the scale's message names what is wrong; a scale to fit explains it as well
        if beyond_reach is not None and not (scale and abs(implied[0] - 1) > SCALE_WARNING):
            raise beyond_reach
        method, gradient_images = _descent_method(
            fixed, moving, (nc, xc), sampling=sampling, seed=seed, iterations=iterations,
            learning_rate=learning_rate, relaxation=relaxation, shrink=shrink,
        )  # fmt: skip
        # upside down: SimpleITK optimises the pose of the neutron volume turned back upright
        # (``turn_back``, its own inverse, maps SimpleITK's virtual points onto the neutron
        # image); the turn itself in the optimised versor, one of about 180 deg about an axis
        # across the cell, sat where its parameters degenerate and its gradient descent went
        # from 0.86 neutron voxel off to 6.5 (1.8 after the polish) on the test twin
        turn_back = np.linalg.inv(nct_axis.to_axis_frame()) @ turn @ nct_axis.to_axis_frame()
        fixed_initial = None if turn is UPRIGHT else _sitk_affine(turn_back, dim)

        def initial_at(angle: float) -> sitk.Transform:
            """SimpleITK's start transform at the pose search's pose turned to ``angle``."""
            initial = _initial_transform(
                np.linalg.inv(pose_at(angle)) @ turn_back,
                apply_transform(nct_axis.point, turn_back),
                dim,
                scale,
            )
            if scale:  # started at 1, the fit stopped on a side peak (5 % off: 1.010 for 1.053)
                initial.SetScale(implied[0])
            return initial

        initial = initial_at(angle)
        method.SetInitialTransform(initial, inPlace=False)
        if fixed_initial is not None:
            method.SetFixedInitialTransform(fixed_initial)
        # the voxels measured in both, as one fixed set of the neutron copy's: those the start
        # maps near an X-ray voxel not measured left out (a moving mask lets the search drop the
        # points it matches worst: 4 NaN rows across the test twin's X-ray, 19 um RMS off)
        mask = _without_unmeasured(cell_mask, fixed, xc[0], moving, np.linalg.inv(xct_to_nct))
        method.SetMetricFixedMask(mask)
        # one thread (metric, pyramid filters, Powell): the metric's per-thread histograms are
        # summed in an order that varies from run to run, which moved the result by ~0.2 voxel;
        # what remains between runs is ~1e-3 um
        threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
        method.SetNumberOfThreads(1)
        try:
            if dim == 2:
                final = _descent_from_scan(
                    method, gradient_images, (fixed, moving), initial_at, angle
                )
            else:
                final = method.Execute(*gradient_images)
            if isinstance(final, sitk.CompositeTransform):
                final = final.GetNthTransform(0)
            gradient_pose = _sitk_to_zyx_matrix(final, dim) @ turn_back
            mask = _without_unmeasured(polish_mask, polish_fixed, xc[0], moving, gradient_pose)
            found, metric_value = _polish(
                polish_fixed,
                moving,
                mask,
                getattr(sitk, type(initial).__name__)(final),
                polish_fraction,
                seed,
                fixed_initial,
            )
            judged_metric = (
                _mattes_at(polish_fixed, moving, mask, found, fixed_initial) if judged else 0.0
            )
        finally:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
        matrix = _sitk_to_zyx_matrix(found, dim) @ turn_back  # turn_back is its own inverse
        fitted_scale = float(found.GetScale()) if scale else 1.0
        return _Coarse(metric_value, judged_metric, matrix, fitted_scale, turn, xct_axis, nct_axis)

    starts = _centrings(xc, nc, xct_axis, nct_axis, names)
    coarse = min(
        (registered_from(*axes, judged=len(starts) > 1) for axes in starts),
        key=lambda candidate: candidate.judged_metric,
    )
    matrix, metric_value, fitted_scale = coarse.matrix, coarse.metric_value, coarse.scale
    xct_axis, nct_axis, turn = coarse.xct_axis, coarse.nct_axis, coarse.turn
    copy_voxel = max(xc[1] / xct_voxel_um, fine[1] / nct_voxel_um)  # in the volumes' voxels
    fine_level = axial_level = "not needed"
    if dim == 3 and copy_voxel > 1:
        fine_level = axial_level = "off"
    if fine_level == "off" and fine_voxels > 0:
        try:
            matrix, metric_value = _refine_fine(
                xct,
                xct_voxel_um,
                nct,
                nct_voxel_um,
                matrix,
                nct_axis,
                fine_voxels=fine_voxels,
                bound_um=0.25 * max(xc[1], fine[1]),
                seed=seed,
                scale=scale,
            )
        except FineLevelSkipped as why:
            fine_level = f"skipped: {why}"
            warnings.warn(
                f"the registration's last level at the volumes' own voxels was skipped ({why}):"
                f" the pose is the one of {copy_voxel:.2g}x coarser copies, typically within "
                "0.1 of their voxel",
                stacklevel=2,
            )
        else:
            fine_level = "refined"
            if scale:
                fitted_scale = float(np.cbrt(np.linalg.det(matrix[:3, :3])))
    if dim == 3 and fine_voxels > 0:
        try:
            matrix, axial_level = _refine_axial(
                xct,
                xct_voxel_um,
                nct,
                nct_voxel_um,
                matrix,
                nct_axis,
                nc,
                bound_um=0.25 * max(xc[1], fine[1]),
                seed=seed,
            )
        except AxialLevelSkipped as why:
            axial_level = f"skipped: {why}"
            source = (
                f"the one of {copy_voxel:.2g}x coarser copies, typically within 0.1 of their voxel"
                if copy_voxel > 1
                else "the mutual information's alone, with no bound on its error along the "
                "axis (a few um on the digital twins)"
            )
            warnings.warn(
                f"the shift along the cell axis was not refined at the volumes' own voxels "
                f"({why}): it is {source}. Check the alignment along the axis (a vertical "
                "cut of the fused volume) before using it, or give volumes that include an "
                "end of the roll",
                stacklevel=2,
            )
    return Registration(
        nct_to_xct=matrix,
        metric="MattesMutualInformation",
        metric_value=metric_value,
        seconds=time.perf_counter() - start,
        rotation_about_axis_deg=_rotation_about_axis(matrix, xct_axis, nct_axis, turn),
        xct_axis=xct_axis,
        nct_axis=nct_axis,
        scale=fitted_scale,
        fine_level=fine_level,
        axial_level=axial_level,
        upside_down=turn is UPSIDE_DOWN,
    )


def _rotation_about_axis(
    nct_to_xct: np.ndarray, xct_axis: CellAxis, nct_axis: CellAxis, turn: np.ndarray
) -> float:
    """The rotation (deg) about the cell axis that ``nct_to_xct`` (4x4) applies to the neutron
    volume, right-handed in (x, y, z) as the twin's remount draw of that name: its rotation
    between the two cells' axis frames (the neutron's turned by ``turn``, upright or upside
    down). Read from the final matrix, not the pose search's 0.5 deg grid: that estimate
    was 0.3-1.5 deg off on the test twin's remounts, where the matrix turns them within a
    few um at their rim."""
    in_axes = (
        xct_axis.to_axis_frame()[:3, :3]
        @ nct_to_xct[:3, :3]
        @ np.linalg.inv(turn @ nct_axis.to_axis_frame())[:3, :3]
    )
    return float(np.degrees(np.arctan2(in_axes[1, 2], in_axes[1, 1])))


def check_measured(copy: np.ndarray, name: str, planes: np.ndarray | None = None) -> None:
    """ValueError naming ``name`` when under :data:`MIN_MEASURED_SHARE` of the block-mean
    ``copy`` (nz, ny, nx) of a volume (NaN: a block under half measured) is measured inside
    the cylinder of its field of view (:func:`~jellyroll.conventions.field_of_view`): too
    little of the cell to register. ``planes``: bool
    (nz,), the copy's planes judged (default all; :func:`register_volumes` leaves out those
    of blank planes only, a stack's padding, as a stack without them would be)."""
    if planes is not None:
        copy = copy[np.asarray(planes, dtype=bool)]
    share = float(measured_shares(copy).mean()) if copy.shape[0] else 1.0
    if share < MIN_MEASURED_SHARE:
        raise ValueError(
            f"{name} is measured (not NaN or inf) over {share:.0%} of the cylinder of its "
            f"field of view, where the cell lies (at least {MIN_MEASURED_SHARE:.0%} needed): "
            "too little of the cell to register. Give a volume that holds the cell "
            f"({NAN_ONLY_OUTSIDE})"
        )


def _judged_planes(n_copy: int, factor: int, n: int, blank: Sequence[int]) -> np.ndarray:
    """bool (n_copy,): the planes of a copy (blocks of ``factor`` of the volume's ``n``
    planes) that hold a plane not in ``blank`` (:func:`check_measured`'s ``planes``)."""
    data = np.ones(n, bool)
    data[np.asarray(blank, dtype=np.int64)] = False
    return np.array([data[k * factor : (k + 1) * factor].any() for k in range(n_copy)])


def _without_unmeasured(
    mask: sitk.Image,
    fixed: sitk.Image,
    moving_copy: np.ndarray,
    moving: sitk.Image,
    fixed_to_moving: np.ndarray,
    margin: int = 1,
) -> sitk.Image:
    """``mask`` (on ``fixed``'s grid) less the points that ``fixed_to_moving`` (4x4, (z, y, x)
    um of the neutron frame -> the X-ray's) maps within ``margin`` voxels of a voxel the
    ``moving_copy`` (the array of ``moving``) does not measure (NaN): the metric's points are
    chosen once, at the start, so that the search cannot improve its metric by moving points
    out of the measured region. One voxel, the interpolation's reach: a wider margin hid
    what pins the angle (4 NaN rows across the test twin's core, 2 voxels: 35 um RMS off)."""
    unmeasured = ~np.isfinite(moving_copy)
    if not unmeasured.any():
        return mask
    if moving_copy.shape[0] == 1:
        unmeasured = unmeasured[0]
    grown = ndimage.binary_dilation(unmeasured, iterations=margin)
    image = sitk.GetImageFromArray(grown.astype(np.uint8))
    image.CopyInformation(moving)
    near = sitk.Resample(
        image, fixed, _sitk_affine(fixed_to_moving, fixed.GetDimension()),
        sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8,
    )  # fmt: skip
    return sitk.And(mask, sitk.Cast(near == 0, sitk.sitkUInt8))


def _with_measured(mask: sitk.Image, coarse: np.ndarray, image: sitk.Image) -> sitk.Image:
    """``mask`` where ``coarse`` (the array of ``image``) is measured
    (:func:`_measured_mask`)."""
    measured = _measured_mask(coarse, image)
    return mask if measured is None else sitk.And(mask, measured)


MIN_COPY_SLICES = 4
"""Fewest slices of a 3D volume's registration copy: SimpleITK's pyramid smooths along z and
needs 4 (2 or 3 ended in a bare ITK "SmoothingRecursiveGaussianImageFilter" RuntimeError)."""


def _volume_name(volume: Any, default: str) -> str:
    """``default`` with the file a :class:`~jellyroll.io.volumes.VolumeSource` reads."""
    name = getattr(volume, "name", None)
    return f"{default} {name}" if isinstance(name, str) else default


def _check_copy_slices(
    name: str, shape: Sequence[int], copy_shape: Sequence[int], factor: int, max_voxels: int
) -> None:
    """ValueError naming the volume when its block-mean copy (``copy_shape``: blocks of
    ``factor`` voxels, at most ``max_voxels`` voxels) is 3D but under
    :data:`MIN_COPY_SLICES` slices thick."""
    if shape[0] == 1 or copy_shape[0] >= MIN_COPY_SLICES:
        return
    raise ValueError(
        f"{name} has {shape[0]} slices, {copy_shape[0]} in the registration's copy of at most "
        f"{max_voxels} voxels (blocks of {factor} voxels): too thin to register in 3D (at "
        f"least {MIN_COPY_SLICES} slices there, {(MIN_COPY_SLICES - 1) * factor + 1} in the "
        "volume); "
        "give a taller stack, or more --max-voxels for a wide one"
    )


def mattes_from_centre(
    xct: np.ndarray,
    xct_voxel_um: float,
    nct: np.ndarray,
    nct_voxel_um: float,
    *,
    sampling: float | None = None,
) -> np.ndarray:
    """The out-of-the-box anchor: SimpleITK's Mattes MI (rigid, multi-resolution) started
    from the volumes' geometric centres, no axis or global angle search; ``nct_to_xct``
    (4, 4) as :func:`register_volumes` gives it. It recovers small misalignments only."""
    fixed, moving = _to_sitk(xct, xct_voxel_um, np.eye(4)), _to_sitk(nct, nct_voxel_um, np.eye(4))
    initial = sitk.CenteredTransformInitializer(
        fixed,
        moving,
        sitk.VersorRigid3DTransform(),
        sitk.CenteredTransformInitializerFilter.GEOMETRY,
    )
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(32)
    if sampling is not None:
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(sampling, 0)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-4, 200)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    method.SetInitialTransform(initial, inPlace=False)
    found = sitk.VersorRigid3DTransform(method.Execute(fixed, moving).GetNthTransform(0))
    return np.linalg.inv(_sitk_to_zyx_matrix(found, 3))

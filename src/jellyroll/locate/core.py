"""Place a SWAXS-CT map (one slice) inside a lab X-ray CT volume of the same cell.

Frames (SPEC section 6): the *map frame* is physical (z, y, x) um with z = 0 on the map's
plane; map row ``i`` is ``y`` and column ``j`` is ``x``, at ``centre_um + (i - (ny - 1) / 2) *
pixel`` (the reconstruction's ``y_um`` / ``x_um``, origin on the SWAXS rotation axis; the
twin's :meth:`jellyroll.phantom.geometry.Raster.axes_um`). The *X-ray frame* has its origin at
the volume's centre, voxel ``i`` of ``n`` at ``(i - (n - 1) / 2) * voxel``. The result
``map_to_xct`` (4x4) maps ``(z, y, x, 1)`` of the map frame to the X-ray frame.

Method (automatic; any in-plane rotation, the cell was remounted):

1. The volume is block-averaged (streamed, :func:`jellyroll.nxct.register.downsample_levels`) and
   its cell axis found (:func:`jellyroll.nxct.register.find_cell_axis`); the map's cell centre
   and radius from the same outline detection; the scale from the pixel sizes (the two radii
   must agree, else the map and the volume do not show the same cell at these pixel sizes).
2. Polar unwrapping (radius x angle) of the map about its cell centre and of every coarse
   slice about the axis, both quantised into equal-population bins (a monotone grey map
   between the two energies changes nothing); per height the circular cross-correlation
   over all angles (FFT, 0.5 deg steps) gives the best angle and its normalised correlation:
   the coarse similarity-vs-height profile; its maximum gives the start height and angle.
3. Height, rotation, shift and tilt (two angles, within ``max_tilt_deg`` of the cell axis)
   refined together by Powell's method [Powell 1964] on the normalised cross-correlation of
   the oblique plane of the volume with the map, both in rank units (the volume's values
   through the quantile function of its sample at the start pose); first on the coarse
   volume, then on the full-resolution slab around the plane.
4. The similarity profile at the final pose, plane moved along z through the whole stack;
   how sure the height is: the interval of heights the data allow and the number of defects
   the height rests on (:func:`_height_support`).

NaN and inf voxels of the volume are not measured (a detector gap, a band of rows or end
planes left unreconstructed, a reconstruction's outside): left out of the coarse copy's
blocks, of the polar correlations, of the rank transform, of every similarity and of the
smoothing, never read as a value. So are blank planes (one value all over: a stack's padding,
a lost detector frame written as 0) and, in the coarse copy, a reconstruction's fill ring
(:mod:`jellyroll.nxct.unmeasured`). A plane measured over less than
:data:`MIN_MEASURED_SHARE` of the map's cell is refused naming the file; so is a plane not
measured inside the stack (:func:`_check_no_gap`): the slice may lie there.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import ndimage, optimize

from jellyroll.conventions import (
    MIN_MEASURED_SHARE,
    NAN_ONLY_OUTSIDE,
    disk_cut_by_field,
    finite_gaussian,
    measured_field,
    measured_shares,
)
from jellyroll.interpolation import linear_at
from jellyroll.nxct.register import (
    _find_axis_coarse,
    _peak,
    _polar_samples,
    _quantise,
    _slice_centre,
    check_attenuation_contrast,
    check_cell_axis,
    check_same_cell,
    downsample_levels,
)
from jellyroll.nxct.unmeasured import PlanesAsNan, are_blank
from jellyroll.phantom.nxct import rigid_matrix

__all__ = ["Location", "NoAngleError", "locate_slice", "pose_parameters"]

QUANTILES = 256
"""Levels of the rank transform of the volume's values."""
MIN_ANGULAR_CONTRAST = 0.05
"""Least excess of the best angle's polar correlation over the median angle's: a map
without it (a ring, a featureless disk) cannot give the rotation. Measured on the tiny
twin: 0.35 for its attenuation map, 0.005 for its casing ring alone."""
LIKE_MARGIN = 0.1
"""Slices whose whole-cell correlation with the map is this far under the best one's are not
the roll's body (its end, the head space, a clipped field): the height is not sought there.
Along the body of a roll the correlation varies by ~0.01 (the twin), above its end it drops
by ~0.5."""


EXTRA_BLUR = (-1.0, -0.7, -0.5, 0.0, 0.5, 0.7, 1.0)
"""Extra blur tried for the map (> 0) or the volume (< 0), in units of the common smoothing
(about a voxel), by :func:`_matched_metric`."""


SUPPORT_BLOCK_FRACTION = 1 / 6
"""Side of the squares the height's support is measured on, as a fraction of the cell's
diameter (:func:`_height_support`)."""
MIN_DEFECTS = 1.5
"""Effective number of defects under which one defect alone fixes the height
(:func:`_height_support`). Measured (ten placements each): 1.00-1.39 on most placements of
the tiny twins (one large agglomerate; 1.78 and 2.11 on two of seed 13), 1.42-2.00 on the
small twins (twelve agglomerates, two of them large)."""
PROFILE_SMOOTHING = 4.0
"""Gaussian smoothing (quarter-voxel steps: one voxel) of the height profiles."""
SUPPORT_STEP = 0.5
"""Step (voxels) of the profiles of :func:`_height_support`: half a voxel, half the cost of
the quarter-voxel steps that place the height (the support needs the hump, not its top)."""


class NoAngleError(ValueError):
    """The map has no angular structure (a ring, a featureless disk): no rotation to find."""


@dataclass(frozen=True)
class Location:
    """Where a map lies in an X-ray volume.

    ``map_to_xct``: 4x4 float64 (um), map frame -> X-ray frame. ``similarity``: the
    normalised cross-correlation (rank units) of map and plane at the optimum.
    ``profile_height_um`` / ``profile_similarity``: the same correlation with the plane moved
    along the X-ray z axis, against the height of the map's origin; ``coarse_similarity``:
    the rotation-free polar correlation per coarse height (step 2). ``seconds``: wall time.
    ``height_interval_um``: the lowest and highest height of the map origin the data allow;
    ``height_defects``: the effective number of defects the height rests on
    (:func:`_height_support`). ``in_plane_rotation_deg`` / ``in_plane_shift_um``: how far
    the whole-cell correlation alone moves the placement's rotation and the cell centre
    (:func:`_in_plane_disagreement`; NaN where the map does not show the defects).
    ``rotation_uncertainty_deg``: the standard error of the rotation the whole-cell
    correlation supports (:func:`_rotation_uncertainty`).
    """

    map_to_xct: np.ndarray
    similarity: float
    profile_height_um: np.ndarray
    profile_similarity: np.ndarray
    coarse_similarity: np.ndarray
    seconds: float
    height_interval_um: tuple[float, float] = (np.nan, np.nan)
    height_defects: float = np.nan
    in_plane_rotation_deg: float = np.nan
    in_plane_shift_um: float = np.nan
    rotation_uncertainty_deg: float = np.nan

    @property
    def height_uncertainty_um(self) -> float:
        """Largest distance (um) from the height found to an end of ``height_interval_um``."""
        height = float(self.map_to_xct[0, 3])
        low, high = self.height_interval_um
        return max(height - low, high - height)

    @property
    def parameters(self) -> dict[str, float]:
        """Height, rotation, tilt and shift of the placement (:func:`pose_parameters`)."""
        return pose_parameters(self.map_to_xct)


def pose_parameters(map_to_xct: np.ndarray) -> dict[str, float]:
    """The placement in words: ``height_um``, ``shift_y_um``, ``shift_x_um`` (the map origin
    in the X-ray frame), ``rotation_deg`` (of the map's x axis about the X-ray z axis,
    right-handed in (x, y, z)), ``tilt_deg`` (between the map's normal and z) and
    ``tilt_azimuth_deg`` (direction of the normal's in-plane part, from x towards y)."""
    m = np.asarray(map_to_xct, dtype=np.float64)
    normal = m[:3, 0]
    return {
        "height_um": float(m[0, 3]),
        "shift_y_um": float(m[1, 3]),
        "shift_x_um": float(m[2, 3]),
        "rotation_deg": float(np.degrees(np.arctan2(m[1, 2], m[2, 2]))),
        "tilt_deg": float(np.degrees(np.arccos(np.clip(normal[0], -1.0, 1.0)))),
        "tilt_azimuth_deg": float(np.degrees(np.arctan2(normal[1], normal[2]))),
    }


def pose_errors(found: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """How far one placement (4x4 map_to_xct, um) is from another: the signed height of the
    map origin (um, found - truth), the in-plane rotation's magnitude (deg, within 180) and
    the in-plane distance of the map origin (um)."""
    p, q = pose_parameters(found), pose_parameters(truth)
    rotation = (p["rotation_deg"] - q["rotation_deg"] + 180.0) % 360.0 - 180.0
    shift = np.hypot(p["shift_y_um"] - q["shift_y_um"], p["shift_x_um"] - q["shift_x_um"])
    return p["height_um"] - q["height_um"], abs(rotation), float(shift)


@dataclass(frozen=True)
class _Grid:
    """A volume (or slab) held in memory: ``values[k, i, j]`` at ``origin_um + index * voxel``."""

    values: np.ndarray
    voxel_um: float
    origin_um: np.ndarray

    def sample(self, points_zyx_um: np.ndarray) -> np.ndarray:
        """Linear interpolation at (n, 3) points; a one-slice grid is a map of (y, x)."""
        index = (points_zyx_um - self.origin_um) / self.voxel_um
        if self.values.shape[0] == 1:  # z clamped to the one slice: any z gives the map
            index[:, 0] = 0.0
        return linear_at(self.values, index)


def locate_slice(
    image: np.ndarray,
    pixel_um: float,
    volume: Any,
    voxel_um: float,
    *,
    centre_um: tuple[float, float] = (0.0, 0.0),
    max_voxels: int = 16_000_000,
    max_points: int = 100_000,
    max_tilt_deg: float = 0.0,
    min_similarity: float = 0.3,
    progress: Callable[[float], None] | None = None,
    check_scale: bool = True,
) -> Location:
    """Place the map ``image`` (ny, nx) of ``pixel_um`` pixels in ``volume`` (nz, ny, nx; an
    array or a slab-readable source) of ``voxel_um`` voxels (module docstring).

    ``centre_um``: (y, x) of the map grid's centre in the map frame. ``max_voxels``: size of
    the coarse copy; ``max_points``: map pixels used by the fine refinement; ``max_tilt_deg``:
    bound of the tilt away from the cell axis (0: the plane stays perpendicular to it).
    ``check_scale``: where the map's cell is more than :data:`MAX_SCALE_ERROR` larger or
    smaller than the volume's, place it at that scale too and compare (twice the time).
    Raises ``ValueError`` with what to give when the map is empty, no cell is found, the
    cell's size differs between map and volume, the plane leaves the volume or the best
    similarity stays under ``min_similarity``, or (``check_scale``) the map placed at the
    scale it implies matches better or lies elsewhere (:func:`_check_scale`).

    End planes of ``volume`` not measured (NaN or inf over half the field of view of the
    slice, :func:`_measured_planes`) are left out, as for a stack cut there: read as black
    material (0), two such planes of the tiny twin placed the slice 14-45 um off, exit 0;
    left in as NaN, 50 um and 4.3 deg off (the profile's ends, tuned on cut stacks). A plane
    not measured between measured ones, in the coarse copy or the slab the fine level reads,
    is refused (:func:`_check_no_gap`).
    """
    low, high = _measured_planes(volume, _volume_name(volume))
    if (low, high) != (0, int(volume.shape[0])):
        arguments = {
            "centre_um": centre_um, "max_voxels": max_voxels, "max_points": max_points,
            "max_tilt_deg": max_tilt_deg, "min_similarity": min_similarity,
            "progress": progress, "check_scale": check_scale,
        }  # fmt: skip
        try:
            found = locate_slice(image, pixel_um, _Planes(volume, low, high), voxel_um, **arguments)
        except ValueError as error:
            raise type(error)(
                f"{error} (the measured planes {low}-{high - 1} of the stack's "
                f"{volume.shape[0]}: its end planes are NaN, not measured)"
            ) from None
        offset = ((low + high - 1) / 2 - (int(volume.shape[0]) - 1) / 2) * float(voxel_um)
        lowest, highest = found.height_interval_um
        return replace(
            found,
            map_to_xct=_translation([offset, 0.0, 0.0]) @ found.map_to_xct,
            profile_height_um=found.profile_height_um + offset,
            height_interval_um=(lowest + offset, highest + offset),
        )
    start = time.perf_counter()
    say = progress or (lambda fraction: None)
    measured = np.isfinite(np.asarray(image, dtype=np.float32))
    image = _valid_map(image)
    if not pixel_um > 0 or not voxel_um > 0:
        raise ValueError(f"pixel sizes must be positive, got map {pixel_um}, volume {voxel_um}")
    map_um = max(image.shape) * float(pixel_um)
    if voxel_um > map_um:  # the map smoothed to that scale failed in scikit-image, unnamed
        raise ValueError(
            f"the X-ray volume's voxel ({voxel_um:g} um) is larger than the whole map "
            f"({map_um:g} um across, {pixel_um:g} um pixels): they cannot hold the same cell; "
            "check the voxel size (--xct-voxel-um) and the map's pixel size"
        )
    shape = tuple(int(n) for n in volume.shape)
    blank: list[int] = []  # planes of one value (a lost frame written as 0): not measured
    ((coarse, coarse_voxel, to_fine),) = downsample_levels(
        volume, voxel_um, (max_voxels,), blank_planes=blank
    )
    name = _volume_name(volume)
    # the stack's first plane, where its end planes not measured are cut
    first = volume.low if isinstance(volume, _Planes) else 0
    volume = PlanesAsNan(volume, blank) if blank else volume
    shares = measured_shares(coarse)
    _check_measured_slices(shares, name)
    _check_no_gap(shares, round(coarse_voxel / voxel_um), first, shape, name)
    check_cell_axis(coarse, "the X-ray volume")
    check_attenuation_contrast(coarse, "the X-ray volume")  # else "the cell's sizes differ"
    say(0.4)
    try:
        axis = _find_axis_coarse(coarse, coarse_voxel, to_fine)
    except ValueError:
        raise ValueError(
            "no cell found in the X-ray volume (constant slices); give the volume of the cell "
            "the map was measured on"
        ) from None
    coarse_grid = _Grid(
        coarse,
        coarse_voxel,
        to_fine[:3, 3] - (np.asarray(coarse.shape) - 1) / 2 * coarse_voxel,
    )
    work_um = max(float(pixel_um), coarse_voxel)
    smooth = ndimage.gaussian_filter(image, 0.5 * max(work_um / pixel_um - 1.0, 0.0))
    map_grid = _Grid(
        smooth[None],
        float(pixel_um),
        np.array([0.0, *centre_um]) - (np.array([1, *image.shape]) - 1) / 2 * pixel_um,
    )
    found = _slice_centre(smooth)
    if found is None:
        raise ValueError("the map is constant: no cell outline to place")
    cell_yx = map_grid.origin_um[1:] + np.array(found[:2]) * pixel_um
    map_radius = float(np.sqrt(found[2] / np.pi) * pixel_um)
    radius_um = max(map_radius, axis.radius_um)  # a cell cut off looks smaller

    def check_fields(height_um: float) -> None:  # height_um: along the axis, axis frame
        on_axis = np.linalg.inv(axis.to_axis_frame()) @ np.array([height_um, 0.0, 0.0, 1.0])
        inside = _field_inside(shape[1:], voxel_um)
        k = int(np.clip(np.rint((on_axis[0] - coarse_grid.origin_um[0]) / coarse_voxel), 0,
                        coarse.shape[0] - 1))  # fmt: skip
        measured_here = np.isfinite(coarse[k])
        if not measured_here.all() and measured_here.sum() >= 3:
            # a NaN band at the field's edge cuts the cell as the stack's edge does
            rectangle = inside
            hull = measured_field(measured_here, coarse_grid.origin_um[1:], coarse_voxel)
            inside = lambda points: rectangle(points) & hull(points)  # noqa: E731
        _check_field(
            disk_cut_by_field(on_axis[1:3], radius_um, inside), radius_um,
            "the X-ray volume's field of view", f"{shape[1]} x {shape[2]} voxels, NaN "
            "unmeasured", "a volume whose field of view holds the whole cell",
        )  # fmt: skip
        map_field = measured_field(measured, map_grid.origin_um[1:], pixel_um)
        _check_field(
            disk_cut_by_field(cell_yx, radius_um, map_field), radius_um,
            "the map's field of view", f"{image.shape[0]} x {image.shape[1]} pixels, NaN "
            "unmeasured", "a map that holds the whole cell (or another map, --map)",
        )  # fmt: skip

    check_same_cell(
        2 * map_radius, 2 * axis.radius_um,
        f"the map ({pixel_um:g} um pixels)", f"the volume ({voxel_um:g} um voxels)",
        "the voxel size (--xct-voxel-um)",
    )  # fmt: skip
    try:
        angle, height, coarse_profile, scale = _global_search(
            map_grid, cell_yx, coarse, coarse_voxel, to_fine, axis.to_axis_frame(),
            axis.radius_um, work_um,
        )  # fmt: skip
    except NoAngleError:
        raise
    except ValueError:  # "better mirrored": a cell cut off on one side says so
        check_fields(0.0)  # at the middle of the stack: no height was found
        raise
    check_fields(height)
    _check_outlines_agree(map_radius, axis.radius_um, scale, name)
    say(0.6)
    cell = np.array([0.0, *cell_yx])
    pose = (
        np.linalg.inv(axis.to_axis_frame())
        @ rigid_matrix((angle, 0.0, 0.0), (height, 0.0, 0.0))
        @ _translation(-cell)
    )
    radius = 1.05 * map_radius
    points, values = _map_points(map_grid, cell_yx, radius, work_um)
    metric = _Metric.at(points, values, coarse_grid, _detail(coarse_grid), pose)
    # in-plane first; then the slices that look like the map at all (not the roll's end or
    # the head space), where the height is sought by what changes along z among them (the
    # defects); then in-plane and tilt again
    pose = _refine(metric, pose, cell, work_um, max_tilt_deg, free="ryx")
    like = _like_the_map(metric, pose)
    metric = _Metric.at(points, values, coarse_grid, _detail(coarse_grid, like), pose)
    pose = _best_height(metric, pose, like)
    pose = _refine(metric, pose, cell, work_um, max_tilt_deg, free="rtyx")
    pose = _best_height(metric, pose, like)
    say(0.75)
    fine_um = max(float(pixel_um), float(voxel_um))
    if coarse_voxel > voxel_um or work_um > fine_um:
        stride = max(1, int(np.ceil(np.sqrt(np.pi * (radius / pixel_um) ** 2 / max_points))))
        fine_map = _Grid(image[None], map_grid.voxel_um, map_grid.origin_um)
        points, values = _map_points(fine_map, cell_yx, radius, stride * float(pixel_um))
        reach = 2 * round(coarse_voxel / voxel_um) + 3
        reach += int(np.ceil(radius * np.tan(np.radians(max_tilt_deg)) / voxel_um))
        slab = _slab(volume, shape, voxel_um, points, pose, reach)
        _check_no_gap(measured_shares(slab.values), 1, first + _index(slab, shape), shape, name)
        fine = _Metric.at(points, values, slab, _detail(slab), pose)
        pose = _best_height(fine, pose)
        pose = _refine(fine, pose, cell, fine_um, max_tilt_deg, free="rtyx")
    else:
        stride, slab, fine = 1, coarse_grid, metric
    smoothed = _matched_metric(image, map_grid, slab, cell_yx, radius, stride * float(pixel_um),
                                fine_um, pose)  # fmt: skip
    pose = _refine(smoothed, pose, cell, fine_um, max_tilt_deg, free="rtyx")
    _check_measured_plane(fine.measured(pose), name)
    in_plane = _in_plane_disagreement(smoothed, pose, cell, fine_um)
    step_um = stride * float(pixel_um)
    rotation_uncertainty = _rotation_uncertainty(smoothed, pose, cell, step_um, fine_um)
    say(0.95)
    _check_inside(metric.points, pose, shape, voxel_um)
    similarity = _Metric.at(points, values, coarse_grid, metric.detail, pose).parts(pose)[0]
    if check_scale and abs(scale - 1.0) > MAX_SCALE_ERROR:

        def scaled() -> Location | None:  # the map at the pixel size it implies
            try:
                return locate_slice(
                    image, pixel_um / scale, volume, voxel_um, max_voxels=max_voxels,
                    centre_um=(centre_um[0] / scale, centre_um[1] / scale),
                    max_points=max_points, max_tilt_deg=max_tilt_deg, min_similarity=-1.0,
                    check_scale=False,
                )  # fmt: skip
            except ValueError:
                return None

        _check_scale(scale, similarity, scaled(), pose, float(pixel_um), float(voxel_um))
    if not similarity >= min_similarity:
        raise ValueError(
            f"no slice of the X-ray volume matches the map (best correlation {similarity:.2f} "
            f"< {min_similarity}): the map and the volume do not overlap; give the volume of "
            "the mapped slice, or the map of another modality (--map)"
        )
    # one sweep in quarter voxels: its smoothing for the stack's ends, every fourth level
    # (each slice's) for the stored profile
    fine_heights, fine_scores = _height_profile(metric, pose, step_fraction=0.25)
    kept = _measured_levels(metric, pose, fine_heights)
    if kept is None:
        _check_peak_inside(metric.grid.values.shape[0], fine_heights, _smoothed(fine_scores))
    else:  # the stack's measured part: NaN end planes end it as a cut does
        n_measured = 1 + round((int(kept.sum()) - 1) / 4) if kept.any() else 0
        _check_peak_inside(n_measured, fine_heights[kept], _smoothed(fine_scores[kept]),
                           " measured (not NaN)")  # fmt: skip
    heights, profile = fine_heights[::4], fine_scores[::4]
    stack_top = coarse_grid.origin_um[0] + (coarse_grid.values.shape[0] - 1) * coarse_grid.voxel_um
    interval, defects = _height_support(
        fine, pose, SUPPORT_BLOCK_FRACTION * 2 * map_radius,
        (float(coarse_grid.origin_um[0]), float(stack_top)),
    )  # fmt: skip
    say(1.0)
    return Location(
        pose, similarity, heights, profile, coarse_profile, time.perf_counter() - start,
        interval, defects, *in_plane, rotation_uncertainty,
    )  # fmt: skip


MAX_OUTLINE_MISMATCH = 0.05
"""Largest difference between the ratio of the cell outlines' radii (map over volume) and
the scale at which the map's content matches the volume's (:func:`_map_scale`), beyond
which the outlines are refused as not the same object (:func:`_check_outlines_agree`).
Measured where both outlines are the cell's (the tests' tiny twins, attenuation and summed
WAXS maps, NaN holes and bands, cells cut on every side alike, pixels given 1-5 % off; the
small twin of seed 2): -0.019 to +0.028. A real X-ray CT slice of an 18650 cell (576^2,
its holder filling the field round the casing) placed on its own stack, the map's field a
circle inside the holder: -0.121 (-0.115 at 40 um pixels); the outlines' centres 144 um
apart, it was placed 15-23 deg and 110-155 um off, with a rotation error of 0.15-0.35 deg,
exit 0."""


def _check_outlines_agree(map_radius_um: float, volume_radius_um: float, scale: float,
                          name: str) -> None:  # fmt: skip
    """ValueError when the ratio of the cell outlines' radii (``map_radius_um`` over
    ``volume_radius_um``) departs from the ``scale`` at which the map's content matches the
    volume's (polar samples, :func:`_map_scale`) by over :data:`MAX_OUTLINE_MISMATCH`: one
    of the outlines is then not the cell's, and the rotation would be sought about its
    centre, which is not the cell's."""
    ratio = map_radius_um / volume_radius_um
    if abs(ratio - scale) > MAX_OUTLINE_MISMATCH:
        raise ValueError(
            f"the cell outlines found in the map ({2 * map_radius_um:.0f} um across) and in "
            f"{name} ({2 * volume_radius_um:.0f} um across) differ in size by a factor "
            f"{ratio:.3f}, where the cell inside them matches at a scale of {scale:.3f}: "
            "one of them is not the cell's outline (a holder or other material around the "
            "casing, or material filling the field of view to its edge, whose edge is then "
            "taken for the cell's), and the rotation would be sought about the wrong centre; "
            "set what lies round the casing (a holder) to the value of air in both, leaving "
            "air around the cell, and locate again"
        )


MAX_CLIP_SHIFT = 0.018
"""Largest shift (fraction of the cell's radius) of the centroid of the part of the cell's
cross-section inside the map's or the volume's field of view from the cell's centre
(:func:`_check_field`): a field that cuts the cell off on one side. Cut off on all sides
alike the cell keeps its centre and is placed (the map's outer 8 pixels NaN: 3.3 % cut off,
shift 0.015, placed as whole). Measured on the tiny twin (placements 0-2, the field cut at a
corner): wrong placements, exit 0, from a shift of 0.022 (the volume's, 2.7 % cut off: 3.7
deg and 53 um off; at 0.050, 34.6 deg), and from 0.024 the right map refused as mirrored,
the map mirrored then placed 60 deg off; right placements up to 0.031 too (what is cut off
matters, not only how much): the limit refuses some of those."""


def _field_inside(shape_yx: tuple[int, ...], voxel_um: float) -> Callable[[np.ndarray], np.ndarray]:
    """Whether (n, 2) points (y, x) um of a volume's centred frame lie in its ``shape_yx``
    in-plane field of ``voxel_um`` voxels."""
    half = np.asarray(shape_yx, dtype=np.float64) * voxel_um / 2
    return lambda points: np.all(np.abs(points) <= half, axis=1)


def _check_field(
    clipped: tuple[float, float], radius_um: float, field: str, extent: str, remedy: str
) -> None:
    """ValueError when the part of the cell's cross-section (``radius_um``) inside a field of
    view (``clipped``: fraction cut off, centroid shift,
    :func:`~jellyroll.conventions.disk_cut_by_field`) is off-centre by more than
    :data:`MAX_CLIP_SHIFT`: a cell cut off on one side misleads the polar search
    (rotation, handedness, scale) into a wrong placement with exit 0, or into a refusal that
    blames the handedness."""
    fraction, shift = clipped
    if shift > MAX_CLIP_SHIFT:
        raise ValueError(
            f"{100 * fraction:.1f} % of the cell's cross-section ({2 * radius_um:.0f} um across, "
            f"the larger of the map's and the volume's) lies outside {field} ({extent}), on one "
            f"side: what is left is centred {shift:.3f} radii off the cell's centre (at most "
            f"{MAX_CLIP_SHIFT}), and a cell cut off on one side is placed wrong "
            f"(the rotation, handedness and scale rest on its whole outline); give {remedy}"
        )


def _valid_map(image: np.ndarray) -> np.ndarray:
    """The map as float32 with NaN (unmeasured) set to its background (1st percentile)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a 2D (ny, nx) map, got shape {image.shape}")
    finite = np.isfinite(image)
    if finite.sum() < 0.25 * image.size:
        raise ValueError(
            f"the map holds {int(finite.sum())} finite values of {image.size} (all NaN or "
            "nearly): give another map (--map), e.g. a housing WAXS map or the summed scattering"
        )
    if not np.ptp(image[finite]) > 0:
        raise ValueError("the map is constant: no cell outline to place; give another map (--map)")
    return np.where(finite, image, np.percentile(image[finite], 1)).astype(np.float32)


def _translation(shift_zyx: np.ndarray) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = shift_zyx
    return matrix


MIRROR_MARGIN = 0.02
"""How much better the mirrored map must match (polar correlation) to be refused: a wound
roll is chiral (tiny twins: 0.88 the right way, 0.66 mirrored), a tie is no evidence."""


def _global_search(
    map_grid: _Grid,
    cell_yx: np.ndarray,
    coarse: np.ndarray,
    coarse_voxel: float,
    to_fine: np.ndarray,
    axis_frame: np.ndarray,
    radius_um: float,
    step_um: float,
    step_deg: float = 0.5,
    bins: int = 32,
) -> tuple[float, float, np.ndarray, float]:
    """Angle (deg; Rz of the map about its cell centre into the axis frame), height (um, axis
    frame), the per-height best polar correlation of the coarse slices (step 2) and the map's
    scale against the volume at the best height (:func:`_map_scale`).
    ValueError when the mirrored map matches better (:data:`MIRROR_MARGIN`)."""
    radii = np.arange(0.15 * radius_um, 1.05 * radius_um, step_um)
    n_angles = round(360 / step_deg)
    angles = np.arange(n_angles) * (2 * np.pi / n_angles)
    nz = coarse.shape[0]
    heights = (np.arange(nz) - (nz - 1) / 2) * coarse_voxel + to_fine[0, 3]
    map_centre = (
        map_grid.origin_um + (np.asarray(map_grid.values.shape) - 1) / 2 * map_grid.voxel_um
    )
    map_polar = _polar_samples(
        map_grid.values, map_grid.voxel_um, _translation(map_centre),
        _translation(-np.array([0.0, *cell_yx])), radii, angles, np.zeros(1),
    )[0]  # fmt: skip
    volume_polar = _polar_samples(coarse, coarse_voxel, to_fine, axis_frame, radii, angles, heights)
    weight = (radii / radii.mean())[:, None]
    m = _standard(_quantise(map_polar, bins).astype(np.float64)) * weight
    # the map mirrored about a line through the cell centre: its angles run backwards
    mirrored = np.roll(m[:, ::-1], 1, axis=-1)
    spectra = np.conj(np.fft.rfft(np.stack([m, mirrored]), axis=-1))
    squares = None  # of the map's squares, for slices not measured everywhere
    scores = np.zeros(nz)
    mirror_scores = np.zeros(nz)
    contrast = np.zeros(nz)
    best_angles = np.zeros(nz)
    for k in range(nz):
        measured = np.isfinite(volume_polar[k])
        if measured.all():
            v = _standard(_quantise(volume_polar[k], bins).astype(np.float64))
            corr = np.fft.irfft(spectra * np.fft.rfft(v, axis=-1), n=n_angles, axis=-1).sum(axis=1)
            corr /= np.sqrt(np.sum(m**2) * np.sum(v**2))
        elif measured.mean() < MIN_POLAR_MEASURED:
            continue  # a slice hardly measured: no score (0)
        else:  # the correlation over the samples measured, the map's norm over those too
            if squares is None:
                squares = np.conj(np.fft.rfft(np.stack([m, mirrored]) ** 2, axis=-1))
            v = _standard_measured(_quantise(volume_polar[k], bins).astype(np.float64), measured)
            corr = np.fft.irfft(spectra * np.fft.rfft(v, axis=-1), n=n_angles, axis=-1).sum(axis=1)
            overlap = np.fft.irfft(squares * np.fft.rfft(measured.astype(np.float64), axis=-1),
                                   n=n_angles, axis=-1).sum(axis=1)  # fmt: skip
            corr /= np.sqrt(np.clip(overlap, 1e-12, None) * np.sum(v**2))
        scores[k], mirror_scores[k] = corr.max(axis=-1)
        contrast[k] = np.median(corr[0])
        best_angles[k] = _peak(corr[0], circular=True) * step_deg
    best = int(np.argmax(scores))
    if mirror_scores.max() > scores[best] + MIRROR_MARGIN:
        raise ValueError(
            f"the map matches the X-ray volume better mirrored (best polar correlation "
            f"{mirror_scores.max():.2f} against {scores[best]:.2f}): the two differ in "
            "handedness (an axis flipped between the beamline's and the CT's conventions); "
            "flip the map's x axis (or the volume's) and locate again"
        )
    if not scores[best] - contrast[best] >= MIN_ANGULAR_CONTRAST:
        raise NoAngleError(
            f"the map has no angular structure to turn it by (its best angle correlates "
            f"{scores[best] - contrast[best]:.3f} above the median angle; a ring such as the "
            "housing's?): the rotation cannot be found; give a map of the cell's inside "
            "(--map attenuation or --map summed)"
        )
    scale = _map_scale(
        map_grid, map_centre, cell_yx, radii, angles, volume_polar[best], weight, bins
    )
    return float(best_angles[best]), float(heights[best]), scores, scale


MAX_SCALE_ERROR = 0.008
"""Largest departure from 1 of the map's scale against the volume's (:func:`_map_scale`)
placed without a second look (:func:`_check_scale`). The rotation of a spiral rests on its
scale: with the map's pixel given 1 % off, the tiny twins of seeds 3-17 (placement 1, pixel
0.99 and 1.01 times) were placed 0.02-1.56 deg off, 7 of 10 over the 0.5 deg bar (0.06-0.81
deg at the right sizes, 2 of 6 over), 1.5 % off one slice 8.7 deg and 46 um off, 2 % one
11.7 deg off and on the wrong side of the stack, exit 0. The
scale found: 0.9991-1.0005 at the right sizes for attenuation maps (the tiny twins, the small
twin of seed 2, a reconstructed one), 1.0059-1.0065 for the tiny twins' summed WAXS (its
cell's outline differs from the volume's) and 1.0032 for the small twin's reconstructed one;
0.9903-0.9905 and 1.0118-1.0122 with the pixel 1 % off. Up to 1 % it was placed without a
second look: 0.99 passed unchecked."""

SCALE_MARGIN = 0.01
"""How much better the map placed at the scale it implies must match (similarity) for the
sizes given to be refused (:func:`_check_scale`). Measured on the tiny twin: 0.02 better with
the pixel 1.2 % off, 0.06 at 1.5 %, 0.37 at 5 %; 0.24-0.26 worse for a cell cut off by the
volume's field of view, whose polar scale misled (1.05-1.06)."""

SCALE_STEPS = np.arange(-20, 21) * 0.01
"""Departures from 1 of the map's scale scanned by :func:`_map_scale`: past
:data:`jellyroll.nxct.register.CELL_SIZE_TOLERANCE` (15 %), in steps under the peak's half
width (the tiny twin: 0.88 at the right scale, 0.84 one step off, 0.58 four steps off)."""


def _map_scale(
    map_grid: _Grid, map_centre: np.ndarray, cell_yx: np.ndarray, radii: np.ndarray,
    angles: np.ndarray, volume_polar: np.ndarray, weight: np.ndarray, bins: int,
) -> float:  # fmt: skip
    """How many times larger (um) the cell is in the map than in the volume: the factor
    ``s`` (within 1 + :data:`SCALE_STEPS`, refined by a parabola) for which the map's polar
    samples at radii ``s * radii`` (um) best match the volume's ``volume_polar`` (nr, na) of
    its best slice at ``radii``, over all angles. 1 when the pixel and voxel sizes are right."""
    measured = np.isfinite(volume_polar)
    v = _standard_measured(_quantise(volume_polar, bins).astype(np.float64), measured)
    spectrum = np.fft.rfft(v, axis=-1)
    scores = np.zeros(SCALE_STEPS.size)
    for i, step in enumerate(SCALE_STEPS):
        polar = _polar_samples(
            map_grid.values, map_grid.voxel_um, _translation(map_centre),
            _translation(-np.array([0.0, *cell_yx])), (1.0 + step) * radii, angles, np.zeros(1),
        )[0]  # fmt: skip
        m = _standard(_quantise(polar, bins).astype(np.float64)) * weight
        corr = np.fft.irfft(np.conj(np.fft.rfft(m, axis=-1)) * spectrum, n=angles.size, axis=-1)
        if measured.all():
            scores[i] = corr.sum(axis=0).max() / np.sqrt(np.sum(m**2) * np.sum(v**2))
        else:  # the map's norm over the samples each angle lays on measured ones
            overlap = np.fft.irfft(np.conj(np.fft.rfft(m**2, axis=-1))
                                   * np.fft.rfft(measured.astype(np.float64), axis=-1),
                                   n=angles.size, axis=-1).sum(axis=0)  # fmt: skip
            ratio = corr.sum(axis=0) / np.sqrt(np.clip(overlap, 1e-12, None) * np.sum(v**2))
            scores[i] = ratio.max()
    step = float(SCALE_STEPS[1] - SCALE_STEPS[0])
    return 1.0 + float(SCALE_STEPS[0]) + _peak(scores, circular=False) * step


def _check_scale(
    scale: float, similarity: float, scaled: Location | None, pose: np.ndarray,
    pixel_um: float, voxel_um: float,
) -> None:  # fmt: skip
    """ValueError when the map, which matches the volume best scaled by ``scale``
    (:func:`_map_scale`, more than :data:`MAX_SCALE_ERROR` away from 1), placed at that scale
    (``scaled``; None where refused) matches better (its similarity over the ``similarity``
    at the sizes given by more than :data:`SCALE_MARGIN`) or lies elsewhere (its rotation
    more than 0.5 deg, the locate issue's bar, or its map origin more than a map pixel from
    ``pose``): the map's pixel size or the volume's voxel size is wrong, and the placement
    rests on it. Under the cell-size check's 15 % such a map was placed anyway: the tiny twin
    with its pixel given 5 % too small or too large was placed 21-26 deg and 20-30 um off, at
    similarity 0.44-0.53 (0.91 at the right scale), exit 0; 1 % off, up to 1.56 deg off at
    similarity 0.88-0.89 (0.90 at the right scale: the similarity alone does not tell, its
    ripple with the pixel's phase on the voxels is as large). The second placement guards
    against a polar scale misled by something else: a cell cut off by the volume's field of
    view moved it to 1.05 but placed best at the sizes given (0.80 against 0.54; such a cell
    is now refused before, :func:`_check_field`)."""
    if scaled is None:
        return
    better = scaled.similarity > similarity + SCALE_MARGIN
    _, rotation, shift = pose_errors(scaled.map_to_xct, pose)
    if not (better or rotation > 0.5 or shift > pixel_um):
        return
    raise ValueError(
        f"the map matches the X-ray volume best scaled by {scale:.3f} (similarity "
        f"{scaled.similarity:.2f} against {similarity:.2f} at {pixel_um:g} um map pixels and "
        f"{voxel_um:g} um voxels; placed at that scale it lies {rotation:.2f} deg and "
        f"{shift:.1f} um away): one of the sizes is wrong. They imply a map pixel of "
        f"{pixel_um / scale:.4g} um for the volume's {voxel_um:g} um voxels (or a voxel of "
        f"{voxel_um * scale:.4g} um for the map's {pixel_um:g} um pixels); check the map's "
        "y_um / x_um axes and the X-ray voxel size (--xct-voxel-um)"
    )


def _standard(values: np.ndarray) -> np.ndarray:
    std = values.std()
    return (values - values.mean()) / (std if std > 0 else 1.0)


def _standard_measured(values: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """``values`` standardised over its ``measured`` entries (bool, same shape), 0 (the
    mean: no share in a correlation) at the others; :func:`_standard` where all are."""
    if measured.all():
        return _standard(values)
    out = np.zeros_like(values)
    if measured.any():
        out[measured] = _standard(values[measured])
    return out


def _map_points(
    grid: _Grid, cell_yx: np.ndarray, radius_um: float, step_um: float
) -> tuple[np.ndarray, np.ndarray]:
    """Map-frame points (n, 3) on a square lattice of ``step_um`` within ``radius_um`` of the
    cell centre, and the map's values there in rank units (mean 0, std 1)."""
    offsets = np.arange(-radius_um, radius_um + step_um / 2, step_um)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    keep = np.hypot(dy, dx) <= radius_um
    points = np.column_stack([np.zeros(keep.sum()), cell_yx[0] + dy[keep], cell_yx[1] + dx[keep]])
    ranks = np.argsort(np.argsort(grid.sample(points), kind="stable"), kind="stable")
    return points, _standard(ranks.astype(np.float64))


@dataclass(frozen=True)
class _Metric:
    """Similarity of the map (``values`` at map-frame ``points``, rank units) with the plane
    of ``grid`` at a pose: the correlation over the whole disk plus the one weighted by
    ``detail`` (a (1, ny, nx) grid of the volume's spread along z: where the cell changes with
    height, its defects, which alone pin the height of a nearly z-invariant roll)."""

    points: np.ndarray
    values: np.ndarray
    grid: _Grid
    detail: _Grid
    levels: np.ndarray

    @classmethod
    def at(cls, points, values, grid: _Grid, detail: _Grid, pose: np.ndarray) -> _Metric:
        """The metric with the volume's rank transform taken on the plane at ``pose``."""
        sampled = grid.sample(points @ pose[:3, :3].T + pose[:3, 3])
        finite = np.isfinite(sampled)
        if not finite.any():
            raise ValueError(
                "the X-ray volume is not measured (NaN) anywhere on the map's plane: give a "
                "volume that holds the mapped slice"
            )
        sampled = sampled if finite.all() else sampled[finite]  # NaN: not measured
        levels = np.quantile(sampled, np.linspace(0.0, 1.0, QUANTILES + 1))
        return cls(points, values, grid, detail, levels)

    def measured(self, pose: np.ndarray) -> float:
        """The share of the points at which the plane at ``pose`` is measured (not NaN)."""
        moved = self.points @ pose[:3, :3].T + pose[:3, 3]
        return float(np.isfinite(self.grid.sample(moved)).mean())

    def parts(self, pose: np.ndarray) -> tuple[float, float]:
        """(correlation over the disk, detail-weighted correlation) at ``pose``."""
        moved = self.points @ pose[:3, :3].T + pose[:3, 3]
        ranks = np.interp(self.grid.sample(moved), self.levels, np.linspace(0, 1, self.levels.size))
        weights = self.detail.sample(moved)
        return _correlation(self.values, ranks, None), _correlation(self.values, ranks, weights)

    def whole(self, pose: np.ndarray) -> float:
        """The correlation over the disk at ``pose`` (``parts(pose)[0]``)."""
        moved = self.points @ pose[:3, :3].T + pose[:3, 3]
        ranks = np.interp(self.grid.sample(moved), self.levels, np.linspace(0, 1, self.levels.size))
        return _correlation(self.values, ranks, None)

    def __call__(self, pose: np.ndarray) -> float:
        return float(sum(self.parts(pose)))


def _correlation(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None) -> float:
    """Pearson correlation of ``a`` and ``b``, weighted, over the finite ``b`` (NaN: not
    measured); 0 when either is constant."""
    # element-wise sums, not np.dot: BLAS threads on vectors this short (~1e4) spin against
    # the other work of a loaded machine, measured 100x slower than the sums
    w = np.ones_like(a) if weights is None else np.asarray(weights, dtype=np.float64)
    measured = np.isfinite(b)
    if not measured.all():  # a plane through voxels not measured (NaN): left out
        w, b = np.where(measured, w, 0.0), np.where(measured, b, 0.0)
    total = w.sum()
    if not total > 0:
        return 0.0
    a = a - (w * a).sum() / total
    b = b - (w * b).sum() / total
    wa = w * a
    norm = np.sqrt((wa * a).sum() * (w * b * b).sum())
    return float((wa * b).sum() / norm) if norm > 0 else 0.0


def _detail(grid: _Grid, slices: np.ndarray | None = None) -> _Grid:
    """Spread along z of each (y, x) column of ``grid`` (over ``slices``, a boolean per
    slice; default all) above the median spread (noise), as a (1, ny, nx) grid: where the
    volume changes with height."""
    values = grid.values if slices is None else grid.values[slices]
    if np.isfinite(values).all():
        spread = values.std(axis=0)
        spread = np.clip(spread - np.median(spread), 0.0, None)
    else:  # over the measured voxels of each column; a column never measured: no detail
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            spread = np.nanstd(values, axis=0)
        finite = np.isfinite(spread)
        median = np.median(spread[finite]) if finite.any() else 0.0
        spread = np.where(finite, np.clip(spread - median, 0.0, None), 0.0)
    return _Grid(spread[None].astype(np.float32), grid.voxel_um, grid.origin_um * [0, 1, 1])


def _matched_metric(
    image: np.ndarray, map_grid: _Grid, volume: _Grid, cell_yx: np.ndarray, radius_um: float,
    step_um: float, sigma_um: float, pose: np.ndarray,
) -> _Metric:  # fmt: skip
    """The metric of the full-resolution map ``image`` (on ``map_grid``'s lattice) and
    ``volume``, both smoothed in-plane by a Gaussian of ``sigma_um``, points ``step_um`` apart,
    and the sharper of the two blurred further to match the other: :data:`EXTRA_BLUR` (in
    units of ``sigma_um``, in quadrature; > 0 the map, < 0 the volume), the one of highest
    whole-cell correlation at ``pose``.

    Linear interpolation of the volume blurs it by an amount that depends on the sub-voxel
    position of the plane, so the raw correlation prefers poses on the voxel lattice; a
    common low-pass filter of about a voxel makes that blur small beside the shared one
    [Pluim, Maintz & Viergever 2000, interpolation artefacts in image registration]. Measured
    on the tiny twin's ten placements: the largest rotation error falls from 0.71 to 0.37 deg
    and the largest shift error from 4.6 to 1.6 um. Map and volume come from different
    instruments (beam footprint against the CT's point spread), and a blur left unmatched
    biases the angle of a nearly rotation-invariant roll: on four small twins not tuned on
    (ten placements each, the volume blurred 0.7 voxel, the map sharp) the worst rotation
    error fell from 0.89 to 0.45 deg, and the extra blur chosen was 0.7 of a voxel on every
    placement looked at.
    """
    maps: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    volumes: dict[float, tuple[_Grid, _Grid]] = {}
    metrics = []
    for extra in EXTRA_BLUR:
        map_sigma = float(np.hypot(1.0, max(extra, 0.0))) * sigma_um
        volume_sigma = float(np.hypot(1.0, min(extra, 0.0))) * sigma_um
        if map_sigma not in maps:  # each smoothing once: four of the seven share the volume's
            smooth = ndimage.gaussian_filter(image, map_sigma / map_grid.voxel_um)[None]
            smooth_map = _Grid(smooth, map_grid.voxel_um, map_grid.origin_um)
            maps[map_sigma] = _map_points(smooth_map, cell_yx, radius_um, step_um)
        if volume_sigma not in volumes:
            pixels = volume_sigma / volume.voxel_um
            values = finite_gaussian(volume.values, (0.0, pixels, pixels))
            grid = _Grid(values, volume.voxel_um, volume.origin_um)
            volumes[volume_sigma] = (grid, _detail(grid))
        metrics.append(_Metric.at(*maps[map_sigma], *volumes[volume_sigma], pose))
    return max(metrics, key=lambda metric: metric.parts(pose)[0])


def _like_the_map(metric: _Metric, pose: np.ndarray) -> np.ndarray:
    """Per slice of the metric's grid, whether the plane at ``pose`` moved there correlates
    with the map over the whole cell within :data:`LIKE_MARGIN` of the best slice."""
    grid = metric.grid
    shifts = grid.origin_um[0] + np.arange(grid.values.shape[0]) * grid.voxel_um - pose[0, 3]
    scores = np.array([metric.parts(_translation([s, 0, 0]) @ pose)[0] for s in shifts])
    return scores >= scores.max() - LIKE_MARGIN


MIN_DETAIL_CORRELATION = 0.5
"""Least detail-weighted correlation (:class:`_Metric`) of the map at a pose for the
in-plane refinement (:func:`_refine`) to use that term: a map without the defects' contrast
gives none, and the term then draws the pose to line up noise at the cost of the whole cell.
The small twin's summed scattering (0.07 at the last refinement's start; its attenuation
map 0.93) was drawn from 0.2 deg and 0.2 um off to 1.28 deg and 62 um off, its whole-cell
correlation falling from 0.54 to 0.46, exit 0; without the term, 0.18 deg and 3.4 um.
Measured at the refinements' starts: attenuation maps 0.87-0.99 (tiny twins of seeds 3, 7,
11 and the small twin of seed 2), the tiny twins' summed WAXS 0.64-0.77. For the attenuation
map the term helps: the whole-cell correlation alone took the worst rotation of ten
placements of each of six tiny twins from 0.36-1.06 to 0.62-0.73 deg, and those over 0.5
deg from 7 to 16 of 60."""


def _refine(
    metric: _Metric, pose: np.ndarray, cell: np.ndarray, step_um: float, max_tilt_deg: float,
    free: str = "rthyx", detail: bool | None = None,
) -> np.ndarray:  # fmt: skip
    """``pose`` refined by Powell's method over the ``free`` parameters: rotation ``r`` and
    tilts ``t`` (deg) about the map's cell centre ``cell``, shift ``h``, ``y``, ``x`` (units
    of ``step_um``) along the map frame's axes.

    The objective is the whole-cell correlation plus the detail-weighted one (the defects,
    :class:`_Metric`), the latter (``detail`` None) only where the map shows the volume's
    detail at all (its detail-weighted correlation at ``pose`` at least
    :data:`MIN_DETAIL_CORRELATION`) or the height or tilt is free (the defects alone pin
    what changes along z); ``detail`` True or False: with or without it."""
    names = [name for name in "rthyx" if name in free and (name != "t" or max_tilt_deg > 0)]
    if detail is None:
        detail = "t" in names or "h" in names or metric.parts(pose)[1] >= MIN_DETAIL_CORRELATION
    bounds = {"r": (-5.0, 5.0), "t": (-max_tilt_deg, max_tilt_deg), "h": (-4.0, 4.0),
              "y": (-4.0, 4.0), "x": (-4.0, 4.0)}  # fmt: skip

    def moved(p: np.ndarray) -> np.ndarray:
        given = dict(zip(names, p, strict=False))
        tilts = (p[names.index("t")], p[names.index("t") + 1]) if "t" in names else (0.0, 0.0)
        shift = np.array([given.get(axis, 0.0) for axis in "hyx"]) * step_um
        delta = rigid_matrix((given.get("r", 0.0), *tilts), shift)
        return pose @ _translation(cell) @ delta @ _translation(-cell)

    if "t" in names:
        names.insert(names.index("t") + 1, "t")
    result = optimize.minimize(
        lambda p: -(metric(moved(p)) if detail else metric.whole(moved(p))),
        np.zeros(len(names)), method="Powell",
        bounds=[bounds[name] for name in names], options={"xtol": 1e-2, "ftol": 1e-6},
    )  # fmt: skip
    return moved(result.x)


MAX_IN_PLANE_DISAGREEMENT_DEG = 1.0
"""Largest rotation (deg) between the placement and the same refined on the whole-cell
correlation alone (:func:`_in_plane_disagreement`) under which the rotation is not flagged
(twice the locate issue's bar of 0.5 deg). Measured, ten placements each: attenuation maps of
six tiny twins 0.00-1.29 deg (over 1: two of 60, both off by more than the bar, 1.06 and 0.66
deg); their agglomerates scrambled in the map (tiny twins 3 and 11, five each: placed 1.1-4.8
deg off, exit 0) 1.00-5.00 deg, all ten; the summed WAXS of tiny twins 3 and 11 (placed up to
1.9 deg off) over 1 on 9 of 20, 8 of them off by more than the bar; the six misses it let
pass are flagged by :data:`MAX_ROTATION_UNCERTAINTY_DEG`."""


def _in_plane_disagreement(
    metric: _Metric, pose: np.ndarray, cell: np.ndarray, step_um: float
) -> tuple[float, float]:
    """How far (rotation deg, shift um of the cell centre ``cell``) the whole-cell correlation
    alone moves ``pose`` (:func:`_refine` from it, rotation and shift), where the placement
    also rests on the detail-weighted one: two estimates of the in-plane pose from what the
    map and the volume share, which agree where the map's defects and its whole cell tell the
    same. A jelly roll is nearly the same turned by a degree (the whole-cell correlation
    changes by 1e-4 over +-0.5 deg on the tiny twin): its rotation rests on a few defects and
    the spiral's ends, and a map that shows the defects otherwise than the volume (the tiny
    twin's attenuation map with its agglomerates scrambled, placed 1.1-4.8 deg off at
    similarity 0.88, exit 0) is drawn away from the whole cell's rotation. (NaN, NaN) where
    the map does not show the volume's detail (:data:`MIN_DETAIL_CORRELATION`): the pose
    then rests on the whole-cell term alone."""
    if not metric.parts(pose)[1] >= MIN_DETAIL_CORRELATION:
        return np.nan, np.nan
    alone = _refine(metric, pose, cell, step_um, 0.0, free="ryx", detail=False)
    rotation = pose_errors(alone, pose)[1]
    centre = np.array([*cell[:3], 1.0])
    shift = float(np.hypot(*((alone - pose) @ centre)[1:3]))
    return float(rotation), shift


MAX_ROTATION_UNCERTAINTY_DEG = 0.5
"""Largest standard error (deg) of the rotation the whole-cell correlation supports
(:func:`_rotation_uncertainty`) under which the rotation is not flagged: the locate issue's
bar. Measured, ten placements each: attenuation maps of six tiny twins (seeds 3, 5, 7, 11, 13,
17) 0.19-0.42 deg (placed 0.00-1.06 deg off); the summed WAXS of tiny twins 3 and 11
1.16-2.75 deg (placed 0.08-1.87 deg off, 14 of 20 over the 0.5 deg bar, 6 of those not
flagged by :data:`MAX_IN_PLANE_DISAGREEMENT_DEG`: 0.65-1.62 deg off, exit 0)."""

ROTATION_STEPS_DEG = np.linspace(-1.0, 1.0, 9)
"""Rotations (deg) about the cell centre at which :func:`_rotation_uncertainty` samples the
whole-cell correlation: over the parabola's width, past the lattice's ripple."""


def _rotation_uncertainty(
    metric: _Metric, pose: np.ndarray, cell: np.ndarray, step_um: float, sigma_um: float
) -> float:
    """Standard error (deg) of the rotation at ``pose`` from the whole-cell correlation of
    ``metric`` (its points ``step_um`` apart, map and volume smoothed by ``sigma_um``): the
    least-squares estimate for map = a * plane + b + noise, var = (1 - r^2) / (n r |r''|),
    r the correlation at ``pose``, r'' its curvature in rotation (per deg^2, a parabola
    through :data:`ROTATION_STEPS_DEG` about the cell centre ``cell``), n the independent
    samples: the disk's area over 4 pi ``sigma_um``^2, the correlation area of noise smoothed
    by a Gaussian of ``sigma_um``, at most the points themselves (a map of 900 px radius
    sampled with a stride counted 2.9 times more samples than points, and its error came
    out 1.7 times too small). Inf where the correlation is not peaked in rotation.

    A jelly roll turned by a degree looks nearly the same, so the rotation rests on how well
    the map's values follow the volume's: a map of another modality (the summed WAXS: its
    electrodes bright, the X-ray volume's current collectors; r 0.68 against 0.99 for the
    attenuation map on the tiny twins) leaves the rotation uncertain by 1.2-2.8 deg, where
    the attenuation map's is 0.2-0.4 deg. The detail-weighted term does not enter: it rests
    on a few defects, which such a map may show otherwise (:func:`_in_plane_disagreement`),
    and it placed the tiny twin's summed WAXS 1.62 deg off with its own standard error at
    0.37 deg."""
    scores = np.array([
        metric.whole(pose @ _translation(cell) @ rigid_matrix((step, 0.0, 0.0), (0.0, 0.0, 0.0))
                     @ _translation(-cell))
        for step in ROTATION_STEPS_DEG
    ])  # fmt: skip
    curvature = 2.0 * np.polyfit(ROTATION_STEPS_DEG, scores, 2)[0]
    peak = float(scores[ROTATION_STEPS_DEG.size // 2])
    if not (curvature < 0 and peak > 0):
        return float("inf")
    # no more independent samples than points: with points further apart than the noise's
    # correlation length (a large map's stride) the area's count overstated them
    points = len(metric.points)
    samples = min(points, points * step_um**2 / (4 * np.pi * sigma_um**2))
    return float(np.sqrt((1.0 - peak**2) / (samples * peak * -curvature)))


def _slab(
    volume: Any, shape: tuple[int, ...], voxel_um: float, points: np.ndarray, pose: np.ndarray,
    margin: int,
) -> _Grid:  # fmt: skip
    """The full-resolution slices the plane at ``pose`` crosses, ``margin`` more each side
    (the refinement may move and tilt it further)."""
    z = (points @ pose[:3, :3].T + pose[:3, 3])[:, 0] / voxel_um + (shape[0] - 1) / 2
    low = max(0, int(np.floor(z.min())) - margin)
    high = min(shape[0], int(np.ceil(z.max())) + margin + 1)
    if low >= high:
        raise ValueError(
            "the map's plane falls outside the X-ray volume: they do not overlap; give the "
            "volume that holds the mapped slice"
        )
    values = np.asarray(volume[low:high], dtype=np.float32)
    origin = (np.array([low, 0, 0]) - (np.asarray(shape) - 1) / 2) * voxel_um
    return _Grid(values, float(voxel_um), origin)


def _check_inside(points: np.ndarray, pose: np.ndarray, shape: tuple[int, ...], voxel_um: float):
    """Refuse a plane that leaves the volume's stack (edge slices would fake the match)."""
    z = (points @ pose[:3, :3].T + pose[:3, 3])[:, 0] / voxel_um + (shape[0] - 1) / 2
    outside = float(np.mean((z < -0.5) | (z > shape[0] - 0.5)))
    if outside > 0.05:
        raise ValueError(
            f"{100 * outside:.0f} % of the map's plane lies outside the X-ray volume's "
            f"{shape[0]} slices: the map and the volume do not overlap; give the volume that "
            "holds the mapped slice"
        )


MIN_SLICES = 4
"""Fewest slices (at the working resolution) in which a height is sought."""

MIN_POLAR_MEASURED = 0.5
"""Least share of a coarse slice's polar samples (the global search) measured (not NaN)
for the slice to be scored: under it the correlation rests on too little of the cell."""
MIN_LEVEL_MEASURED = 0.5
"""Least share of the map's points measured on a level of the final similarity profile for
the level to count as inside the stack's measured part (:func:`_measured_levels`)."""


def _volume_name(volume: Any) -> str:
    """The X-ray volume's name in messages, with the file a
    :class:`~jellyroll.io.volumes.VolumeSource` reads."""
    name = getattr(volume, "name", None)
    return f"the X-ray volume {name}" if isinstance(name, str) else "the X-ray volume"


class _Planes:
    """Planes ``low`` to ``high`` (excluded) of a (nz, ny, nx) array-like, read on demand."""

    def __init__(self, volume: Any, low: int, high: int) -> None:
        self.volume, self.low = volume, low
        self.shape = (high - low, *(int(n) for n in volume.shape[1:]))
        self.name = getattr(volume, "name", None)

    def __getitem__(self, index: Any) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        z = range(self.low, self.low + self.shape[0])[index[0]]
        if isinstance(z, int):
            return self.volume[(z, *index[1:])]
        if z.step != 1:
            raise IndexError("a step along z")
        return self.volume[(slice(z.start, z.stop), *index[1:])]


def _measured_planes(volume: Any, name: str) -> tuple[int, int]:
    """The first and one past the last plane of ``volume`` (nz, ny, nx) measured (not NaN
    or inf, and not blank: a stack's padding of one value, as the registration reads it)
    over at least :data:`MIN_LEVEL_MEASURED` of its field of view
    (:func:`~jellyroll.conventions.field_of_view`: a reconstruction's NaN outside its
    circle lies outside it); the end planes are read one by one until one is. ValueError
    naming ``name`` when none is."""
    nz = int(volume.shape[0])
    if 0 in volume.shape[1:]:
        return 0, nz

    def measured(k: int) -> bool:  # a blank plane (padding: one value) is not measured
        plane = np.asarray(volume[k], dtype=np.float32)[None]
        return measured_shares(plane)[0] >= MIN_LEVEL_MEASURED and not are_blank(plane)[0]

    low = next((k for k in range(nz) if measured(k)), None)
    if low is None:
        raise ValueError(
            f"no cell found in the X-ray volume: {name} is not measured (NaN or inf, or blank: "
            f"one value all over) in any of its {nz} planes: give the volume the map's cell "
            "was measured in"
        )
    high = next(k for k in range(nz, low, -1) if measured(k - 1))
    return low, high


def _check_measured_slices(shares: np.ndarray, name: str) -> None:
    """ValueError naming ``name`` when no slice of the block-mean copy is measured over
    :data:`MIN_MEASURED_SHARE` of its field of view (``shares``: per slice, as
    :func:`~jellyroll.conventions.measured_shares`): no plane to place the map on. NaN end
    planes leave other slices measured whole, and are let through."""
    if not shares.max() >= MIN_MEASURED_SHARE:
        raise ValueError(
            f"{name} is measured (not NaN or inf) over {shares.max():.0%} of the cylinder "
            f"of its field of view at best (a slice of its copy; at least "
            f"{MIN_MEASURED_SHARE:.0%} needed): too little of the cell to place the map on. "
            f"Give a volume that holds the cell ({NAN_ONLY_OUTSIDE})"
        )


def _index(slab: _Grid, shape: tuple[int, ...]) -> int:
    """The plane of the volume of ``shape`` that is the first of ``slab``, one of its slabs."""
    return round(slab.origin_um[0] / slab.voxel_um + (shape[0] - 1) / 2)


def _check_no_gap(
    shares: np.ndarray, factor: int, first: int, shape: tuple[int, ...], name: str
) -> None:
    """ValueError naming ``name`` when a slice of a stack of ``shape`` cut to its measured
    planes (a block-mean copy of ``factor`` planes a slice, or a slab of the stack;
    ``shares``: per slice, the share measured in its field of view,
    :func:`~jellyroll.conventions.measured_shares`; ``first``: the whole volume's plane of
    the stack's first) is measured under :data:`MIN_LEVEL_MEASURED`: a plane inside the
    stack not measured (NaN or inf over most of it, or blank: a lost detector frame written
    as 0). Its levels hold no similarity, and the slice's own height may lie
    there: one such plane of the tiny twin's 8 at the slice placed nine placements of ten
    48-85 um and 1.3-12 deg off, exit 0 (one without a warning); read as data (0), 28 um
    off or refused as a stack cut below. The slab (the fine level's planes) is checked
    whole: six planes from the slice such a plane moved it under 1 um, one plane 61 um."""
    gaps = np.flatnonzero(shares < MIN_LEVEL_MEASURED)
    if gaps.size == 0:
        return
    low, high = first + gaps[0] * factor, first + min((gaps[-1] + 1) * factor, shape[0]) - 1
    planes = f"plane {low}" if low == high else f"planes {low}-{high}"
    raise ValueError(
        f"{name} is not measured (NaN or inf over most of a plane, or blank: one value all "
        f"over) in {planes}, inside its measured planes: the map's height cannot "
        "be sought across them, and the slice may lie there. Give the measured planes on the "
        "slice's side of them as a volume of their own (the stack cut there), or the volume "
        "with those planes reconstructed"
    )


def _check_measured_plane(share: float, name: str) -> None:
    """ValueError naming ``name`` when the plane placed is measured over less than
    :data:`~jellyroll.conventions.MIN_MEASURED_SHARE` of the map's cell (``share``, the
    points of the fine similarity, :meth:`_Metric.measured`). Measured on the tiny twin
    (seed 3, placements 0-3): NaN bands of 4-12 rows through the cell's centre (93-83 % of
    the cell measured on the plane) placed 0, 1 and 3 within the issue's bars; placement 2
    up to 25 um and 1.4 deg off from 10 rows, flagged by the height and rotation warnings
    (the defects that pin them hidden); 16 rows: 78 %."""
    if share < MIN_MEASURED_SHARE:
        raise ValueError(
            f"{name} is measured (not NaN or inf) over {share:.0%} of the map's cell on the "
            f"plane placed (at least {MIN_MEASURED_SHARE:.0%} needed): too little to place "
            "it by. Give a volume measured where the slice lies (NaN only where nothing was "
            "measured: a detector gap, a field of view's outside)"
        )


def _measured_levels(metric: _Metric, pose: np.ndarray, heights: np.ndarray) -> np.ndarray | None:
    """Per height (um, the map origin's) of a profile of ``metric`` at ``pose`` moved along
    z, whether the plane there is measured over :data:`MIN_LEVEL_MEASURED` of the map's
    points; None when the metric's grid is measured everywhere (every level counts)."""
    if np.isfinite(metric.grid.values).all():
        return None
    shares = [metric.measured(_translation([h - pose[0, 3], 0, 0]) @ pose) for h in heights]
    return np.asarray(shares) >= MIN_LEVEL_MEASURED


def _check_peak_inside(
    n_slices: int, heights: np.ndarray, smooth: np.ndarray, which: str = ""
) -> None:
    """Refuse a height whose smoothed similarity ``smooth`` along z (at ``heights``, um,
    through the ``n_slices`` of the stack) still rises at an end of the stack (highest at
    its first or last level): the slice may lie beyond it (a volume cut above or below the
    mapped slice gave a height inside it, with exit 0). A peak inside, however near the
    end, is a height. ``which`` qualifies the slices counted (" measured (not NaN)")."""
    if n_slices < MIN_SLICES:
        raise ValueError(
            f"the X-ray volume holds {n_slices}{which} slice(s) at its working resolution: too "
            "few "
            f"to find the height (at least {MIN_SLICES}; three 20 um slices 50 um below the "
            "mapped slice still showed a peak in their middle); give a volume that extends "
            "past the mapped slice on both sides"
        )
    peak = int(np.argmax(smooth))
    low, high = heights[0], heights[-1]
    if peak in (0, smooth.size - 1):
        end = "bottom" if peak == 0 else "top"
        raise ValueError(
            f"the similarity along z is highest at the {end} of the X-ray volume's "
            f"{n_slices}{which} slices (heights {low:.0f} to {high:.0f} um at its "
            "working resolution): the mapped slice may lie beyond it, or the map and the "
            "volume are of two cells; give the volume of the mapped cell, extending past the "
            "slice on both sides"
        )


def _height_profile(
    metric: _Metric, pose: np.ndarray, step_fraction: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The detail-weighted similarity (:class:`_Metric`) with the plane at ``pose`` moved
    along z through the metric's grid in steps of ``step_fraction`` voxel, against the height
    (um) of the map's origin."""
    grid = metric.grid
    top = grid.origin_um[0] + (grid.values.shape[0] - 1) * grid.voxel_um
    levels = np.arange(grid.origin_um[0], top + 1e-9, step_fraction * grid.voxel_um)
    shifts = levels - pose[0, 3]
    scores = np.array([metric.parts(_translation([s, 0, 0]) @ pose)[1] for s in shifts])
    return pose[0, 3] + shifts, scores


def _smoothed_profile(metric: _Metric, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The height profile (:func:`_height_profile`) in quarter-voxel steps, smoothed over one
    voxel: linear interpolation between slices ripples it with the slice period."""
    heights, scores = _height_profile(metric, pose, step_fraction=0.25)
    return heights, _smoothed(scores)


def _smoothed(scores: np.ndarray) -> np.ndarray:
    """A height profile in quarter-voxel steps smoothed over one voxel."""
    return ndimage.gaussian_filter1d(scores, PROFILE_SMOOTHING, mode="nearest")


def _height_support(
    metric: _Metric, pose: np.ndarray, block_um: float, stack_um: tuple[float, float]
) -> tuple[tuple[float, float], float]:
    """The interval of heights (um, map origin) the data allow around the height of ``pose``,
    and the number of defects the height rests on.

    The height comes from the defects (the detail-weighted profile); each square of
    ``block_um`` of the map (larger than a defect with its bend) carries the share of the
    profile's hump (peak over median) lost when it is left out, and has its own height (the
    hump of its own profile). The effective number of defects is ``(sum s)^2 / sum s^2`` over
    the shares ``s`` (the smaller of two lattices half a square apart, so that a defect on a
    square's edge counts once). With :data:`MIN_DEFECTS` or more, the interval is the
    share-weighted mean height +- its standard error, from the scatter of the squares'
    heights (each defect's centre lies off the slice by its own amount) over the effective
    number of defects less one, in quadrature with how far the defects may all lie off the
    slice alike (:func:`_shared_offset`). With fewer, one defect fixes the height: a plane
    through it off its equator looks like its mirror plane on the other side, so the data
    place the slice anywhere within that defect's hump, whose half-maximum width is the
    interval. A profile without a hump (nothing changes along z) allows the whole stack,
    ``stack_um`` (lowest and highest height of the volume's slices: the heights of
    ``metric``'s slab alone said -154 to -73 um where the profile was flat from -255 to
    -27, and the warning gave them as where the slice may lie).
    """
    grid = metric.grid
    top = grid.origin_um[0] + (grid.values.shape[0] - 1) * grid.voxel_um
    heights = np.arange(grid.origin_um[0], top + 1e-9, SUPPORT_STEP * grid.voxel_um)
    corner = metric.points[:, 1:].min(axis=0)
    lattices = []
    for offset in (0.0, 0.5):
        cells = np.floor((metric.points[:, 1:] - corner) / block_um + offset).astype(np.int64)
        key = cells[:, 0] * (cells[:, 1].max() + 1) + cells[:, 1]
        lattices.append(np.unique(key, return_inverse=True)[1])
    # per height, lattice and square the weighted sums of the correlation: 1, a, b, a^2, b^2, ab
    sums = [np.zeros((6, heights.size, int(block.max()) + 1)) for block in lattices]
    a = metric.values
    for k, height in enumerate(heights):
        moved = metric.points @ pose[:3, :3].T + pose[:3, 3] + [height - pose[0, 3], 0.0, 0.0]
        b = np.interp(grid.sample(moved), metric.levels, np.linspace(0, 1, metric.levels.size))
        w = metric.detail.sample(moved).astype(np.float64)
        measured = np.isfinite(b)
        if not measured.all():  # not measured (NaN): no weight
            w, b = np.where(measured, w, 0.0), np.where(measured, b, 0.0)
        terms = (w, w * a, w * b, w * a * a, w * b * b, w * a * b)
        for block, total in zip(lattices, sums, strict=True):
            for j, term in enumerate(terms):
                total[j, k] = np.bincount(block, term, minlength=total.shape[2])
    full = _smoothed_correlation(sums[0].sum(axis=2))
    contrast = full.max() - np.median(full)
    if not contrast > 0:  # nothing changes along z: any height of the stack
        return stack_um, 0.0
    best = None
    for total in sums:
        left_out = _smoothed_correlation(total.sum(axis=2, keepdims=True) - total)
        own = _smoothed_correlation(total)
        shares = np.clip(1.0 - (left_out.max(axis=0) - np.median(left_out, axis=0)) / contrast,
                         0.0, None)  # fmt: skip
        defects = float(shares.sum() ** 2 / np.sum(shares**2)) if shares.sum() > 0 else 0.0
        if best is None or defects < best[0]:
            best = (defects, shares, own)
    defects, shares, own = best
    height = float(pose[0, 3])
    if defects < MIN_DEFECTS:
        low, high = _hump(full)
        return (min(float(heights[low]), height), max(float(heights[high]), height)), defects
    used = np.flatnonzero(shares > 0)
    centres = np.array([_hump_centre(heights, own[:, i]) for i in used])
    mean = float(np.average(centres, weights=shares[used]))
    spread = float(np.average((centres - mean) ** 2, weights=shares[used]))
    reaches_um = (
        np.array([np.ptp(_hump(own[:, i])) for i in used]) * 0.5 * SUPPORT_STEP * grid.voxel_um
    )
    shared = _shared_offset(shares[used], reaches_um)
    half_width = float(np.hypot(np.sqrt(spread / (defects - 1.0)), shared))
    return (min(mean - half_width, height), max(mean + half_width, height)), defects


def _shared_offset(shares: np.ndarray, reaches_um: np.ndarray) -> float:
    """How far (um) the share-weighted mean of the defects' centres may lie from the slice:
    each defect's centre anywhere within ``reaches_um`` of it (the half-width of the defect's
    own hump, where the slice and its mirror plane about the defect's centre cannot be told
    apart), all to the same side.

    The height found is the share-weighted mean of the defects' centres (each hump is centred
    on its defect, not on the slice), so it is off by their weighted mean offset, which the
    scatter of the centres does not show when the defects happen to lie alike: the small
    twin of seed 6 rests on two agglomerates 3.7 and 4.2 um below the slice and was placed
    3-4 um low, given as +-0.6-2.4 um from their scatter; the 1024^3 bench on five, -12.3 to
    +0.6 um, and was placed 6.5 um low at +-2.2 um (docs/locate.md). No estimator of the
    similarity profile tells the slice from the defects' centre there: on volumes without
    blur or noise, at 20 and at 10 um voxels, the height found is the centre all the same.
    """
    return float(np.sum(shares * reaches_um) / shares.sum())


def _smoothed_correlation(sums: np.ndarray) -> np.ndarray:
    """Weighted correlations (heights, ...) from their sums (6, heights, ...) of 1, a, b,
    a^2, b^2, ab at :data:`SUPPORT_STEP` voxel steps, smoothed along the heights over one
    voxel (as :func:`_smoothed_profile`)."""
    n, sa, sb, saa, sbb, sab = sums
    n = np.where(n > 0, n, np.inf)  # no weight: no correlation (0)
    norm = np.sqrt(np.clip((saa - sa**2 / n) * (sbb - sb**2 / n), 0.0, None))
    r = np.divide(sab - sa * sb / n, norm, out=np.zeros_like(norm), where=norm > 0)
    sigma = PROFILE_SMOOTHING * 0.25 / SUPPORT_STEP
    return ndimage.gaussian_filter1d(r, sigma, axis=0, mode="nearest")


def _best_height(metric: _Metric, pose: np.ndarray, slices: np.ndarray | None = None) -> np.ndarray:
    """``pose`` moved along z to the centroid of the highest hump of the height profile in
    quarter-voxel steps (over ``slices``, a boolean per slice of the metric's grid; default
    all), smoothed over one voxel: linear interpolation between slices ripples the profile
    with the slice period, and the defects' broad hump, not a ripple, marks the height."""
    heights, smooth = _smoothed_profile(metric, pose)
    if slices is not None:
        grid = metric.grid
        index = np.rint((heights - grid.origin_um[0]) / grid.voxel_um)
        keep = slices[np.clip(index.astype(int), 0, slices.size - 1)]
        heights, smooth = heights[keep], smooth[keep]
    return _translation([_hump_centre(heights, smooth) - pose[0, 3], 0.0, 0.0]) @ pose


def _hump_centre(heights: np.ndarray, smooth: np.ndarray) -> float:
    """Centroid (um) of the highest hump of a smoothed height profile ``smooth`` at
    ``heights``: the centroid of the peak's own hump above half its height over the median
    (the body of the roll, flat but for noise); a centroid over the whole profile would drift
    to the middle of a long stack."""
    low, high = _hump(smooth)
    top = np.clip(smooth[low : high + 1] - _half_height(smooth), 0.0, None)
    if not top.sum() > 0:
        return float(heights[int(np.argmax(smooth))])
    return float(np.sum(top * heights[low : high + 1]) / np.sum(top))


def _half_height(smooth: np.ndarray) -> float:
    """Half-way between a profile's peak and its median (the body of the roll)."""
    return 0.5 * (float(smooth.max()) + float(np.median(smooth)))


def _hump(smooth: np.ndarray) -> tuple[int, int]:
    """First and last index of the highest hump of a profile above :func:`_half_height`."""
    above = smooth - _half_height(smooth)
    low = high = int(np.argmax(smooth))
    while low > 0 and above[low - 1] > 0:
        low -= 1
    while high < above.size - 1 and above[high + 1] > 0:
        high += 1
    return low, high

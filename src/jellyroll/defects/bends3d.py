"""Bent collectors in 3D: the Cu collector traced through an X-ray volume, slice by slice,
its bends joined along the cell axis (the study's Fig. 3a/b seen in NXCT).

Each slice is handled as a 2D map by :func:`jellyroll.defects.find_bends` (the collector
traced by :func:`jellyroll.unroll.trace_spiral` around the cell centre, moved onto the
foil's brightest point by :func:`refine_layer` and onto its ridge's centre by
:func:`centre_on_foil`, bends as runs off a smooth spiral fitted without them); a bend seen
in neighbouring slices at nearby positions on the same side is one bend in 3D, its depth
the peak along the axis. Positions in the volume frame of SPEC
section 6: (z, y, x) um with the origin at the grid centre.

NaN and inf voxels are not measured (a detector gap, a band of rows or end planes left
unreconstructed, a reconstruction's outside): a slice's are filled for the tracer only
(:func:`jellyroll.unroll.fill_unmeasured`: along the circle about the cell's centre through
them, so the layer is followed across the gap), and the layer's samples within
:data:`~jellyroll.unroll.UNMEASURED_REACH_PX` of one carry no deviation (NaN) and no bend.
A stack measured over less than :data:`MIN_MEASURED_SHARE` of its field of view
(:func:`~jellyroll.conventions.field_of_view`) is refused naming the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import ndimage, optimize, spatial, stats

from jellyroll.conventions import (
    FWHM_TO_SIGMA,
    MIN_MEASURED_SHARE,
    NAN_ONLY_OUTSIDE,
    field_of_view,
    parabola_vertex,
    px_to_um,
)
from jellyroll.defects.bends import find_bends
from jellyroll.unroll import (
    SpiralTrace,
    fill_unmeasured,
    spiral_deviation,
    trace_spiral,
    unmeasured_samples,
)

BEND3D_COLUMNS = (
    "id", "z_um", "y_um", "x_um", "turn", "amplitude_um", "extent_axial_um",
    "extent_arc_um", "slices", "depth_limited",
)  # fmt: skip


@dataclass
class SliceLayer:
    """One slice's traced collector, per sample along it (n,): ``x_um``, ``y_um`` (volume
    frame), ``winding_rad``, ``reference_um`` (radius of the smooth spiral without the bends),
    ``deviation_um`` (off it, outwards positive); ``z_um`` the slice's height and
    ``profile_sigma_um`` the width of the foil's radial profile (see :func:`foil_profile_sigma`)."""

    z_um: float
    x_um: np.ndarray
    y_um: np.ndarray
    winding_rad: np.ndarray
    reference_um: np.ndarray
    deviation_um: np.ndarray
    profile_sigma_um: float


@dataclass
class CollectorDisplacement:
    """The collector's radial displacement off its smooth spiral, per slice and arc sample:
    ``displacement_um`` (n_slices, n_arc), one row per slice read, NaN where a slice was not
    traced (or was left out) or not that far;
    ``arc_um`` (n_arc,) from the layer's inner end, ``z_um`` (n_slices,), ``turn`` (n_arc,)
    revolutions from the inner end (of the middle slice's trace)."""

    displacement_um: np.ndarray
    arc_um: np.ndarray
    z_um: np.ndarray
    turn: np.ndarray


def slice_bends(
    volume, voxel_um: float, slices: np.ndarray, progress: Callable[[float], None] | None = None
) -> tuple[pd.DataFrame, CollectorDisplacement, list[SliceLayer]]:
    """Bends of every slice in ``slices`` of ``volume`` ((nz, ny, nx) array-like, Cu bright),
    the displacement map and each traced slice's layer: the spiral tracer's layer moved
    onto the foil's brightest point (:func:`refine_layer`), then onto the centre of its
    ridge (:func:`centre_on_foil`, with the foil's profile width of that slice). Slices
    where no collector can be traced are skipped.

    Each slice's trace counts its turns and arcs from where it starts, and a trace may
    start past the layer's inner end (cut where the layer goes on, ``SpiralTrace.cut_ends``:
    a tear, a deep bend, a faded turn, a detector band; or late without a mark).
    So every slice's are carried onto one origin, the innermost start that a tenth of them
    share, by matching its layer to its neighbour's (:func:`_on_common_layer`); where the
    slices that start there were cut, a warning says that turns and arcs count from that
    cut. A slice whose layer does not lie on its neighbours' is left out, with a warning.
    Joined as traced, a cut slice put its bends and displacement at other turns and arcs,
    exit 0; left out, a stack cut alike in every slice (a band of rows not measured across
    the inner turn) lost all its bends.

    NaN and inf voxels are not measured: filled for the tracer
    (:func:`jellyroll.unroll.fill_unmeasured`), and the samples near them carry NaN
    deviations and no bend (:func:`jellyroll.unroll.unmeasured_samples`, the bends by
    :func:`~jellyroll.defects.find_bends`); said in a warning. Read as black material (0),
    three NaN rows across the link twin's X-ray drew a 44 um bend where there is none, or
    cut every slice's trace (no bend at all), exit 0. ValueError naming the volume when the
    slices read are measured over less than :data:`MIN_MEASURED_SHARE` of their field of
    view, or when no slice read can be traced."""
    nz = volume.shape[0]
    tables = []
    profiles: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
    layers: list[SliceLayer] = []
    inner_cut: list[bool] = []  # per traced slice
    traced_slices: list[int] = []
    untraced: list[int] = []  # measured, but no wound layer found
    counts = np.zeros(2)  # voxels inside the field of view: measured, all
    samples = np.zeros(2, dtype=np.int64)  # traced samples: not measured, all
    for n, k in enumerate(slices):
        raw = np.asarray(volume[int(k)], dtype=np.float64)
        measured = np.isfinite(raw)
        inside = field_of_view(measured)
        counts += (measured[inside].sum(), inside.sum())
        if not measured.any():
            continue  # nothing measured: no collector to trace
        z_um = float(px_to_um(int(k), nz, voxel_um))
        try:
            image, cell = fill_unmeasured(raw)
            traced = trace_spiral(image, cell, voxel_um)
        except ValueError:
            untraced.append(int(k))
            continue
        trace = refine_layer(image, traced)
        profile_sigma_um = foil_profile_sigma(image, trace)
        if np.isfinite(profile_sigma_um):
            trace = centre_on_foil(image, trace, profile_sigma_um / voxel_um)
        # the raw slice: no bend reaches a sample near a voxel not measured
        unmeasured = unmeasured_samples(raw, trace)
        bends = find_bends(raw, voxel_um, trace=trace, robust_reference=True, unmeasured=unmeasured)
        samples += (int(unmeasured.sum()), unmeasured.size)
        reach = bends.width_um.to_numpy() / 2 + trace.pitch_um / 2
        near = np.abs(trace.arc_um[:, None] - bends.arc_um.to_numpy()[None, :]) <= reach
        # bends and samples not measured left out, as there
        deviation = spiral_deviation(trace, exclude=near.any(axis=1) | unmeasured)
        if unmeasured.any():
            deviation = replace(
                deviation, deviation_um=np.where(unmeasured, np.nan, deviation.deviation_um)
            )
        turn = (trace.winding_rad - trace.winding_rad[0]) / (2 * np.pi)
        profiles.append((z_um, deviation.arc_um, deviation.deviation_um, turn))
        inner_cut.append(traced.cut_ends[0])
        traced_slices.append(int(k))
        xy_px = trace.xy_px
        layers.append(
            SliceLayer(
                z_um,
                px_to_um(xy_px[:, 0], image.shape[1], voxel_um),
                px_to_um(xy_px[:, 1], image.shape[0], voxel_um),
                trace.winding_rad,
                deviation.reference_radius_um,
                deviation.deviation_um,
                profile_sigma_um,
            )
        )
        tables.append(bends.assign(z_um=z_um, slice=int(k)))
        if progress is not None:
            progress((n + 1) / len(slices))
    share = counts[0] / counts[1] if counts[1] else 1.0
    if share < MIN_MEASURED_SHARE:
        name = getattr(volume, "name", None)
        raise ValueError(
            f"the X-ray volume{' ' + name if isinstance(name, str) else ''} is measured (not NaN "
            f"or inf) over {share:.0%} of the field of view of the {len(slices)} slices "
            f"read (at least {MIN_MEASURED_SHARE:.0%} needed): too little of the cell to find "
            f"its bends. Give a volume that holds the cell ({NAN_ONLY_OUTSIDE})"
        )
    if samples[0]:
        warnings.warn(
            f"{samples[0] / samples[1]:.1%} of the Cu collector traced in the X-ray slices "
            "lies on or next to voxels not measured (NaN or inf): no bend is found there",
            stacklevel=3,
        )
    if untraced and not layers:
        raise ValueError(
            f"no wound layer found in any of the {len(untraced)} X-ray slices read: no Cu "
            "collector to trace. The Cu collector must be the brightest layer (an attenuation "
            "volume, not inverted: bright air is a negative) and the cell inside the field of "
            "view; check the volume given as the X-ray one"
        )
    if untraced:
        warnings.warn(
            f"{len(untraced)} of {len(slices)} X-ray slices could not be traced (slices "
            f"{_listed(untraced)}): no wound layer found there, so a bend there is not "
            "measured; the bends of the slices either side are joined across them",
            stacklevel=3,
        )
    origins, from_cut = _on_common_layer(layers, profiles, inner_cut)
    kept = [i for i, origin in enumerate(origins) if origin is not None]
    left = [traced_slices[i] for i in range(len(layers)) if origins[i] is None]
    if left:
        warnings.warn(
            f"{len(left)} of {len(slices)} slices left out of the 3D bends (slices "
            f"{_listed(left)}): the "
            "collector traced there does not lie on the neighbouring slices' layer (within "
            "a quarter pitch over half its first turn; a trace that jumped to another layer, "
            "a slice beyond the roll's end), so its turns and arcs cannot be matched to "
            "theirs; a bend there is not measured, and the bends either side are joined "
            "across them",
            stacklevel=3,
        )
    if from_cut:
        warnings.warn(
            "the collector's trace was cut at its inner end where the layer goes on in the "
            "slices traced furthest in (a tear, a deep bend, a faded turn or a band not "
            "measured across the inner turns): the 3D bends' turns and the displacement's "
            "arcs count from that cut, not from the layer's inner end",
            stacklevel=3,
        )
    moved = [
        (z, arc + origins[i][0], values, turn + origins[i][1])
        for i, (z, arc, values, turn) in enumerate(profiles)
        if origins[i] is not None
    ]
    found = [_recounted(tables[i], profiles[i], origins[i]) for i in kept]
    found = [bends for bends in found if len(bends)]
    table = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
    table.attrs[GAPS] = sorted(untraced + left)
    heights = [float(px_to_um(int(k), nz, voxel_um)) for k in slices]
    return table, _displacement(moved, voxel_um, heights), [layers[i] for i in kept]


GAPS = "gaps"
"""Key of :func:`slice_bends`' table's ``attrs``: the slices read (measured) whose layer
was not traced or not matched to the others', which :func:`join_bends` joins across."""


def _listed(slices: list[int]) -> str:
    """Slice indices in words, the first 8."""
    return f"{', '.join(map(str, slices[:8]))}{' ...' if len(slices) > 8 else ''}"


def _recounted(
    bends: pd.DataFrame,
    profile: tuple[float, np.ndarray, np.ndarray, np.ndarray],
    origin: tuple[float, float],
) -> pd.DataFrame:
    """One slice's ``bends`` with their arcs and turns counted from the common ``origin``
    (arc offset um, turn offset; :func:`_on_common_layer`), ``profile`` that slice's
    (z, arc, deviation, fractional turn) samples."""
    if bends.empty or origin == (0.0, 0.0):
        return bends
    _, arc, _, turn = profile
    turns = np.interp(bends.arc_um.to_numpy(dtype=float), arc, turn) + origin[1]
    return bends.assign(arc_um=bends.arc_um + origin[0], turn=np.floor(turns).astype(int))


def _on_common_layer(
    layers: list[SliceLayer],
    profiles: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]],
    inner_cut: list[bool],
    *,
    reach_turns: tuple[float, float] = (0.25, 1.25),
    min_share: float = 0.5,
    same_start_turns: float = 0.1,
) -> tuple[list[tuple[float, float] | None], bool]:
    """Per traced slice, the arc (um) and turn to add to its own (counted from its
    trace's inner end) so that every slice counts them from one origin, the innermost
    start that at least a tenth of the slices (two at least) share within
    ``same_start_turns``; None where that cannot be told. And whether that origin is a
    cut: a slice starting there was cut at its inner end where the layer goes on.

    The longest trace is the reference; the others are matched in order of their distance
    along z from it, each to the nearest slice matched before it (a layer shifts little
    from slice to slice, a tilted cell's by a voxel over many): each of its samples
    ``reach_turns`` from its start (the path's last samples before a cut are no measure of
    the layer) is paired with the other layer's nearest sample in the slice plane, and the
    median difference of their arcs and turns is the offset (or the other's samples on it,
    where it starts further in than the other). Pairs farther apart than a
    quarter of the pitch are not on one layer; under ``min_share`` of them on it, the
    slice cannot be matched (None). Every slice is matched, marked cut or not: with a NaN
    band across the link twin's inner turn two of twenty traces stopped 0.4 turn short
    unmarked beside eighteen marked cut (and one of its intact slices began a quarter turn
    late, unmarked until the tracer's rule for short pieces past an end)."""
    if not layers:
        return [], False
    reference = int(np.argmax([arc[-1] - arc[0] for _, arc, _, _ in profiles]))
    origins: list[tuple[float, float] | None] = [None] * len(layers)
    origins[reference] = (0.0, 0.0)
    heights = np.array([layer.z_um for layer in layers])
    for i in np.argsort(np.abs(heights - heights[reference]), kind="stable"):
        if i == reference:
            continue
        placed = [j for j, origin in enumerate(origins) if origin is not None]
        j = min(placed, key=lambda k: abs(heights[k] - heights[i]))
        offset = _offset_onto(
            (layers[i], profiles[i]), (layers[j], profiles[j]), reach_turns, min_share
        )
        if offset is None:  # it starts further in than the other: the other's start on it
            back = _offset_onto(
                (layers[j], profiles[j]), (layers[i], profiles[i]), reach_turns, min_share
            )
            offset = None if back is None else (-back[0], -back[1])
        if offset is not None:
            origins[i] = (offset[0] + origins[j][0], offset[1] + origins[j][1])
    placed = sorted(
        (i for i, origin in enumerate(origins) if origin is not None),
        key=lambda i: origins[i][1],
    )
    # the innermost start that other slices share: one trace led off the layer's end (onto
    # the hollow's edge) would otherwise move every slice's turns
    starts = np.array([origins[i][1] for i in placed])
    shared = np.searchsorted(starts, starts + same_start_turns, side="right") - np.arange(
        len(placed)
    )
    first = placed[int(np.argmax(shared >= min(len(placed), max(2, 0.1 * len(placed)))))]
    arc0, turn0 = origins[first]
    at_origin = [i for i in placed if abs(origins[i][1] - turn0) <= same_start_turns]
    from_cut = any(inner_cut[i] for i in at_origin)
    shifted = [None if o is None else (o[0] - arc0, o[1] - turn0) for o in origins]
    return shifted, from_cut


def _offset_onto(
    traced: tuple[SliceLayer, tuple[float, np.ndarray, np.ndarray, np.ndarray]],
    other: tuple[SliceLayer, tuple[float, np.ndarray, np.ndarray, np.ndarray]],
    reach_turns: tuple[float, float],
    min_share: float,
) -> tuple[float, float] | None:
    """The (arc um, turn) to add to the ``traced`` layer's own (its layer and (z, arc,
    deviation, turn) profile) so that they count as the ``other``'s do (see
    :func:`_on_common_layer`), None where too few of its samples lie on it."""
    (layer, (_, arc, _, turn)), (reference, (_, reference_arc, _, reference_turn)) = traced, other
    pitch_um = 2 * np.pi * abs(np.polyfit(reference.winding_rad, reference.reference_um, 1)[0])
    near_start = (turn >= reach_turns[0]) & (turn <= reach_turns[1])
    if not near_start.any():
        return None
    points = np.column_stack([layer.x_um[near_start], layer.y_um[near_start]])
    path = np.column_stack([reference.x_um, reference.y_um])
    gap, nearest = spatial.cKDTree(path).query(points)
    on = gap <= pitch_um / 4
    if on.mean() < min_share:
        return None
    # each point's foot on the path between its samples (a chain of slices matched one to
    # the next would add up the half-sample steps of the nearest sample)
    k = nearest[on]
    step = np.gradient(path, axis=0)[k]
    along = np.sum((points[on] - path[k]) * step, axis=1) / np.sum(step**2, axis=1)
    along = np.clip(along, -1.0, 1.0)
    at_arc = reference_arc[k] + along * np.gradient(reference_arc)[k]
    at_turn = reference_turn[k] + along * np.gradient(reference_turn)[k]
    return (
        float(np.median(at_arc - arc[near_start][on])),
        float(np.median(at_turn - turn[near_start][on])),
    )


def foil_profile_sigma(image: np.ndarray, trace: SpiralTrace, *, reach_px: float = 2.5) -> float:
    """Standard deviation (um) of the foil's radial profile in ``image`` (ny, nx): the
    profiles across the traced layer within ``reach_px`` (the Cu foil between its anode
    coatings), each centred on its sub-voxel brightest point, their median fitted by a
    Gaussian on a sloping background. For a foil thinner than the voxels this is the
    image's blur (its point spread function with the voxel's own width), widened by the
    foil's thickness in quadrature (10 um adds 2.9 um). NaN when the fit fails."""
    step = 0.1
    offsets = np.arange(-reach_px, reach_px + step / 2, step)
    shifted = refine_layer(image, trace, reach_px=reach_px, step_px=step)
    profile = np.median(_radial_profiles(image, shifted, offsets), axis=0)

    def model(r, height, sigma, base, slope):
        return height * np.exp(-0.5 * (r / sigma) ** 2) + base + slope * r

    start = (np.ptp(profile), 0.75, float(np.min(profile)), 0.0)
    try:
        (_, sigma, _, _), _ = optimize.curve_fit(model, offsets, profile, p0=start)
    except (RuntimeError, optimize.OptimizeWarning):
        return float("nan")
    return float(abs(sigma) * trace.pixel_size_um)


def _radial_profiles(image: np.ndarray, trace: SpiralTrace, offsets_px: np.ndarray) -> np.ndarray:
    """(n, m) ``image`` along each trace sample's radius at ``offsets_px`` (m,) from the
    layer (cubic interpolation)."""
    radius = trace.radius_px[:, None] + offsets_px[None, :]
    angle = trace.angle_rad[:, None]
    x = trace.centre[0] + radius * np.cos(angle)
    y = trace.centre[1] + radius * np.sin(angle)
    return ndimage.map_coordinates(image, [y, x], order=3, mode="nearest")


def refine_layer(
    image: np.ndarray, trace: SpiralTrace, *, reach_px: float = 1.5, step_px: float = 0.1
) -> SpiralTrace:
    """``trace`` moved, sample by sample, to the brightest point of ``image`` (ny, nx) along
    its radius within ``reach_px`` (cubic interpolation, ``step_px`` steps).

    The tracer follows a band-passed, angle-smoothed ridge that holds the layer close to a
    smooth spiral: on a 20 um X-ray voxel it reads a 40-50 um bend of the 10 um Cu foil at
    about 60 % of its depth; the raw profile's maximum gives the foil's own position.
    """
    offsets = np.arange(-reach_px, reach_px + step_px / 2, step_px)
    brightest = offsets[np.argmax(_radial_profiles(image, trace, offsets), axis=1)]
    return replace(trace, radius_px=trace.radius_px + brightest)


def centre_on_foil(
    image: np.ndarray,
    trace: SpiralTrace,
    sigma_px: float,
    *,
    reach_px: float = 2.5,
    half_length_px: float = 0.75,
    shift_px: float = 0.4,
    step_px: float = 0.05,
    chunk: int = 2048,
) -> SpiralTrace:
    """``trace`` moved, sample by sample, onto the centre of the foil's ridge in ``image``
    (ny, nx): a Gaussian across the layer of the foil's profile width ``sigma_px`` on a
    sloping background, fitted by least squares to the raw pixels within ``reach_px``
    across and ``half_length_px`` along the layer of each sample (each pixel at its exact
    offset from the layer), the centre searched within ``shift_px`` every ``step_px``, the
    best refined by a parabola.

    The raw pixels, not an interpolated profile: a foil under two voxels wide (10 um Cu at
    20 um voxels, blurred) is undersampled, and the maximum of its interpolated profile is
    pulled towards the pixel centres (0.1-0.15 px): a bias that changes as a bend moves the
    foil across the voxels, 2-4 um at 20 um voxels against a bend's 30-50 um.
    """
    angle = trace.angle_rad
    normal = np.column_stack([np.cos(angle), np.sin(angle)])
    tangent = np.column_stack([-np.sin(angle), np.cos(angle)])
    xy = trace.xy_px
    span = int(np.ceil(reach_px + 1))
    grid = np.arange(-span, span + 1)
    offsets = np.stack(np.meshgrid(grid, grid, indexing="xy"), axis=-1).reshape(-1, 2)
    shifts = np.arange(-shift_px, shift_px + step_px / 2, step_px)
    most = int(np.ceil((2 * reach_px + 1) * (2 * half_length_px + 1)))  # pixels in a window
    ny, nx = image.shape
    moved = np.zeros(len(xy))

    def total(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # a x b summed over the window
        return np.einsum("nk...,nk->n...", a, b)

    for start in range(0, len(xy), chunk):
        part = slice(start, start + chunk)
        pixels = np.round(xy[part])[:, None, :].astype(np.int64) + offsets[None]
        rel = pixels - xy[part, None, :]
        across = np.einsum("nkc,nc->nk", rel, normal[part])
        along = np.einsum("nkc,nc->nk", rel, tangent[part])
        inside = (pixels[..., 0] >= 0) & (pixels[..., 0] < nx)
        inside &= (pixels[..., 1] >= 0) & (pixels[..., 1] < ny)
        weight = inside & (np.abs(across) <= reach_px) & (np.abs(along) <= half_length_px)
        used = np.argsort(~weight, axis=1, kind="stable")[:, :most]  # the window's pixels
        weight, across = (np.take_along_axis(a, used, axis=1) for a in (weight, across))
        pixels = np.take_along_axis(pixels, used[..., None], axis=1)
        values = image[np.clip(pixels[..., 1], 0, ny - 1), np.clip(pixels[..., 0], 0, nx - 1)]
        ridge = np.exp(-0.5 * ((across[..., None] - shifts) / sigma_px) ** 2)  # (n, k, m)
        w = weight.astype(float)
        ridge_w = ridge * w[..., None]

        # normal equations of (ridge, 1, across) per sample and centre: (n, m, 3, 3)
        r1, ra, rr = (
            total(ridge_w, np.ones_like(w)),
            total(ridge_w, across),
            total(ridge_w * ridge, np.ones_like(w)),
        )
        n1, na, aa = (
            np.broadcast_to(total(w, x)[:, None], r1.shape)
            for x in (np.ones_like(w), across, across**2)
        )
        normal_matrix = np.stack(
            [np.stack([rr, r1, ra], -1), np.stack([r1, n1, na], -1), np.stack([ra, na, aa], -1)], -2
        )
        rhs = np.stack(
            [total(ridge_w, values), *(np.broadcast_to(total(w * values, x)[:, None], r1.shape)
                                       for x in (np.ones_like(w), across))], -1
        )  # fmt: skip
        normal_matrix = normal_matrix + 1e-9 * np.eye(3)  # a sample with too few pixels
        coeff = np.linalg.solve(normal_matrix, rhs[..., None])[..., 0]
        misfit = total(w * values, values)[:, None] - np.einsum("nmi,nmi->nm", coeff, rhs)
        ridged = coeff[..., 0] > 0  # a dip is no foil
        misfit = np.where(ridged, misfit, misfit.max(axis=1, keepdims=True))
        best = np.clip(np.argmin(misfit, axis=1), 1, len(shifts) - 2)
        rows = np.arange(len(best))
        vertex = parabola_vertex(*(-misfit[rows, best + k] for k in (-1, 0, 1)))
        moved[part] = np.where(ridged.any(axis=1), shifts[best] + vertex * step_px, 0.0)
    return replace(trace, radius_px=trace.radius_px + moved)


def _displacement(
    profiles: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]],
    step_um: float,
    heights_um: list[float],
) -> CollectorDisplacement:
    """The displacement (one row per slice read, at ``heights_um``, NaN in a slice not
    traced or left out: a row dropped made the z axis uneven, and a viewer that spaces
    rows evenly put the rows above it a slice low) along arcs ``step_um`` apart."""
    if not profiles:
        empty = np.empty(0)
        return CollectorDisplacement(np.empty((0, 0)), empty, empty, empty)
    longest = max(arc[-1] for _, arc, _, _ in profiles)
    grid = np.arange(0.0, longest + step_um, step_um)
    rows = np.full((len(heights_um), grid.size), np.nan)
    for z_um, arc, values, _ in profiles:
        inside = (grid >= arc[0]) & (grid <= arc[-1])
        rows[heights_um.index(z_um), inside] = np.interp(grid[inside], arc, values)
    # the turns of the middle one of the slices traced from the common origin (a slice cut
    # further out counts its turns from there only past its cut)
    innermost = min(arc[0] for _, arc, _, _ in profiles)
    starting = [profile for profile in profiles if profile[1][0] <= innermost + step_um]
    _, arc, _, turn = starting[len(starting) // 2]
    turns = np.interp(grid, arc, turn)
    return CollectorDisplacement(rows, grid, np.array(heights_um), turns)


def join_bends(
    per_slice: pd.DataFrame,
    voxel_um: float,
    *,
    slice_step: int = 1,
    slack_um: float | None = None,
    gaps: Collection[int] = (),
) -> pd.DataFrame:
    """Bends of consecutive slices on the same side whose deepest points lie within half
    the larger width (plus ``slack_um``, default two voxels) of each other in the slice
    plane joined into 3D bends; slices in ``gaps`` (not traced) are stepped over: a tiny
    twin's slice whose tracer found no layer was its bend's deepest, and the bend was
    counted twice, exit 0. Position, not the turn number, decides: the turn counted
    from the layer's inner end changes by one between slices where the tracer finds that
    end a revolution earlier or later; another turn lies a pitch away.

    Returns one row per 3D bend: ``id``, ``z_um``, ``y_um``, ``x_um`` (deepest point),
    ``turn`` (the most frequent among its slices), ``amplitude_um`` (signed, outwards
    positive: the peak along the axis, see :func:`_axial_peak`), ``extent_axial_um``
    (slices spanned x slice spacing), ``extent_arc_um`` (largest width along the layer),
    ``slices`` (how many slices show it, one for a slice with two of its runs),
    ``depth_limited`` (the tracker's path sat at its window's edge in one of its slices:
    the depth may be a lower bound, :func:`~jellyroll.defects.bends.find_bends`).
    """
    if per_slice.empty:
        return pd.DataFrame({name: pd.Series(dtype=float) for name in BEND3D_COLUMNS})
    slack = 2 * voxel_um if slack_um is None else slack_um
    rows = per_slice.sort_values(["slice", "arc_um"], ignore_index=True)
    parent = np.arange(len(rows))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_slice = {k: group for k, group in rows.groupby("slice")}
    for k, group in by_slice.items():
        after = k + slice_step
        while after in gaps:
            after += slice_step
        following = by_slice.get(after)
        if following is None:
            continue
        for i, a in group.iterrows():
            for j, b in following.iterrows():
                reach = max(a.width_um, b.width_um) / 2 + slack
                same_side = np.sign(a.amplitude_um) == np.sign(b.amplitude_um)
                if same_side and np.hypot(a.x_um - b.x_um, a.y_um - b.y_um) <= reach:
                    parent[root(int(j))] = root(int(i))
    labels = np.array([root(i) for i in range(len(rows))])
    out = []
    for label in np.unique(labels):
        members = rows[labels == label]
        deepest = members.loc[members.amplitude_um.abs().idxmax()]
        amplitude, z_um = _axial_peak(members, deepest, slice_step, voxel_um)
        span = members.slice.max() - members.slice.min() + slice_step
        out.append(
            {
                "z_um": z_um,
                "y_um": deepest.y_um,
                "x_um": deepest.x_um,
                "turn": int(members.turn.mode().iloc[0]),
                "amplitude_um": amplitude,
                "extent_axial_um": float(span * voxel_um),
                "extent_arc_um": float(members.width_um.max()),
                "slices": members.slice.nunique(),
                "depth_limited": bool(members.get("depth_limited", pd.Series(False)).any()),
            }
        )
    table = pd.DataFrame(out).sort_values(["turn", "z_um"], ignore_index=True)
    table.insert(0, "id", np.arange(1, len(table) + 1))
    return table


def _axial_peak(
    members: pd.DataFrame, deepest: pd.Series, slice_step: int, voxel_um: float
) -> tuple[float, float]:
    """Amplitude (um, signed) and height (um) of a bend's peak along the axis: a bend is
    about Gaussian along z (an agglomerate's push), so the parabola through the logarithm
    of the depths of the deepest slice and its two neighbours gives the peak between
    slices (its offset clipped to half a slice step). The deepest slice alone when a
    neighbour is missing. A slice with two of the bend's runs counts by its deeper one."""
    depth = members.amplitude_um.abs().groupby(members.slice).max()
    k = int(deepest.slice)
    if k - slice_step not in depth or k + slice_step not in depth:
        return float(deepest.amplitude_um), float(deepest.z_um)
    below, peak, above = (np.log(depth[k + d]) for d in (-slice_step, 0, slice_step))
    curvature = below - 2 * peak + above
    if curvature >= 0:
        return float(deepest.amplitude_um), float(deepest.z_um)
    offset = float(np.clip(0.5 * (below - above) / curvature, -0.5, 0.5))
    log_peak = peak - 0.25 * (below - above) * offset
    sign = np.sign(deepest.amplitude_um)
    return float(sign * np.exp(log_peak)), float(deepest.z_um + offset * slice_step * voxel_um)


@dataclass
class BumpFit:
    """A bend's Gaussian bump fitted to the traced displacement (lengths in um):
    ``peak_um`` (signed, outwards positive), ``sigma_arc_um`` and ``sigma_axial_um`` as
    traced (under the image's blur); ``z_um`` its peak height; ``depth_um`` (signed) the
    peak with the blur's share put back; ``residual_um`` the rms of what the fit (this bump,
    and its neighbour when a ridge was split) leaves; ``x_um``, ``y_um`` its peak's place
    in the slice plane (on the traced layer of the slice nearest its height)."""

    peak_um: float
    sigma_arc_um: float
    sigma_axial_um: float
    z_um: float
    depth_um: float
    residual_um: float
    x_um: float
    y_um: float


@dataclass
class _BendSamples:
    """The traced layers around a bend: ``radius_um`` (n_slices, n_arc) at ``z_um``
    (n_slices, 1) and ``arc_um`` (n_arc,) from the bend's deepest point, less its mean over
    the slices; ``placed`` each slice's layer with its samples' arc from that point."""

    arc_um: np.ndarray
    z_um: np.ndarray
    radius_um: np.ndarray
    placed: list[tuple[SliceLayer, np.ndarray]]
    reach_arc_um: float
    reach_z_um: float


def _bend_samples(bend: pd.Series, layers: list[SliceLayer], voxel_um: float) -> _BendSamples:
    """The radius of the slices within twice ``bend``'s axial extent, each sampled every
    half voxel along its layer within twice its arc extent of the sample nearest the bend's
    deepest point (arc from the winding angle and the smooth spiral's radius).

    Samples not measured (NaN deviation, next to NaN voxels) within that reach narrow it to
    the measured arc, down to one arc extent; a slice not measured within that is left out
    (with every slice's reach at the same gap of a band of NaN rows, a bend 90-140 um
    beside the band had no slice left, and was dropped)."""
    reach_z = 2 * max(bend.extent_axial_um, 2 * voxel_um)
    reach_arc = 2 * max(bend.extent_arc_um, 2 * voxel_um)
    near = []
    for layer in layers:
        if abs(layer.z_um - bend.z_um) > reach_z:
            continue
        gap = np.hypot(layer.x_um - bend.x_um, layer.y_um - bend.y_um)
        i = int(np.argmin(gap))
        if gap[i] > abs(bend.amplitude_um) + 2 * voxel_um:
            continue  # the layer passes elsewhere in this slice
        near.append((layer, (layer.winding_rad - layer.winding_rad[i]) * layer.reference_um[i]))
    unmeasured = [np.abs(s[np.isnan(layer.deviation_um)]) for layer, s in near]
    closest = min((float(a.min()) for a in unmeasured if a.size), default=np.inf)
    if closest - voxel_um / 2 < reach_arc:
        reach_arc = max(closest - voxel_um / 2, reach_arc / 2)
    arc = np.arange(-reach_arc, reach_arc + voxel_um / 4, voxel_um / 2)
    heights, rows, placed = [], [], []
    for layer, s in near:
        if s[0] > -reach_arc or s[-1] < reach_arc:
            continue  # the layer ends within the bend's reach
        row = np.interp(arc, s, layer.reference_um + layer.deviation_um)
        if not np.isfinite(row).all():
            continue  # not measured (NaN) within the bend's reach
        heights.append(layer.z_um)
        rows.append(row)
        placed.append((layer, s))
    radius = np.asarray(rows).reshape(len(rows), arc.size)
    if rows:
        radius = radius - radius.mean(axis=0)  # the undeformed layer's share, as the bumps' below
    return _BendSamples(
        arc, np.asarray(heights)[:, None], radius, placed, float(reach_arc), float(reach_z)
    )


def _fit_gaussians(
    samples: _BendSamples, start: list[float], voxel_um: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Least-squares fit of the undeformed layer (one radius per arc sample, common to the
    slices) plus k Gaussian bumps to ``samples``, from ``start`` (4 k: arc position,
    height, arc and axial standard deviations per bump, um). Returns the bumps' (k, 4)
    parameters (widths made positive, a thousandth of a voxel at least), their (k,) peaks
    and the residual (n_slices * n_arc,); None when the optimiser fails."""
    arc, z, radius = samples.arc_um, samples.z_um, samples.radius_um.ravel()
    k = len(start) // 4

    def shapes(p: np.ndarray) -> np.ndarray:  # (k, n_slices * n_arc)
        s0, z0, s_arc, s_axial = (p.reshape(k, 4)[:, j, None, None] for j in range(4))
        s_arc, s_axial = (np.maximum(np.abs(s), 1e-3 * voxel_um) for s in (s_arc, s_axial))
        shape = np.exp(-0.5 * (((arc - s0) / s_arc) ** 2 + ((z - z0) / s_axial) ** 2))
        shape = np.where(shape > 1e-9, shape, 0.0)  # no vanishing shape for a huge peak
        return (shape - shape.mean(axis=1, keepdims=True)).reshape(k, -1)

    def peaks_of(shape: np.ndarray) -> np.ndarray:  # least squares, the layer given by the rest
        return np.linalg.solve(shape @ shape.T + 1e-12 * np.eye(k), shape @ radius)

    def residual(p: np.ndarray) -> np.ndarray:
        shape = shapes(p)
        return peaks_of(shape) @ shape - radius

    fit = optimize.least_squares(residual, start, x_scale=voxel_um)
    if not fit.success:
        return None
    bumps = fit.x.reshape(k, 4).copy()
    bumps[:, 2:] = np.maximum(np.abs(bumps[:, 2:]), 1e-3 * voxel_um)
    return bumps, peaks_of(shapes(fit.x)), fit.fun


def fit_bumps(
    bend: pd.Series,
    layers: list[SliceLayer],
    blur_um: float,
    voxel_um: float,
    *,
    split: bool = True,
    min_depth_um: float | None = None,
    p_value: float = 1e-3,
) -> list[BumpFit]:
    """A 3D ``bend`` (a row of :func:`join_bends`) measured on the traced layers: the
    radius of the slices within twice its axial extent, each sampled every half voxel along
    its layer within twice its arc extent of the sample nearest the bend's deepest point
    (arc from the winding angle and the smooth spiral's radius), fitted by least squares as
    the undeformed layer (one radius per arc sample, common to all the slices) plus a
    Gaussian bump along the arc and the axis (peak, position, two widths); then the blur's
    share of the depth put back.

    The undeformed layer is read from the slices themselves, above and below the bend
    where the bump has faded (a wound cell is the same at every height away from its
    defects), not from each slice's smooth spiral: at a bend that reference is pulled
    towards it (its running median, interpolated across the bend, follows the bend's
    flanks), 4-7 um on the twin's seed 5, and even away from the bends it misses the
    layer's wiggles shorter than its window (2 um there); the residual around the fitted
    bump halves (1.2-2.1 um rms on the twins' bends, was 2.4-3.6).

    The traced foil is where the blurred image is brightest: the true displacement D
    averaged over the point spread function (Gaussian, ``blur_um`` = b) along the foil, so
    its peak reads short by (b^2 / 2) times the Laplacian of D at the peak (to first order,
    whatever the bump's shape: exact for a paraboloid cap). The Laplacian is the fitted
    bump's, ``-peak (1 / s_arc^2 + 1 / s_axial^2)``: depth = peak (1 + b^2/2 (1/s_arc^2 +
    1/s_axial^2)); a bump 50 x 30 um (standard deviations) under a 15 um blur reads 83 % of
    its depth. The first order, not the Gaussian's exact deconvolution (which divides by
    s^2 - b^2): a bend pushed by an agglomerate is a cap sharper than a Gaussian, its
    fitted widths are near the blur, and the exact form overshoots there.

    No bend when fewer than three slices reach it, or the fit fails, peaks on the
    other side or at under half the deviation the slices showed (a deviation along the
    whole height is the winding's own shape: the undeformed layer takes it), finds a bump
    narrower than the blur or wider than the samples, or leaves a residual over 0.15 voxel
    rms (3 um at 20 um voxels): around a bend the traced foil follows the bump to a
    fraction of that (on the twins, 1.2-2.1 um), a layer not followed (the tracer lost on
    the innermost turns: 3.9 um and more) does not.

    Two bends close along the arc (their displacements overlapping) make one ridge that the
    2D finder reports as one run. The undeformed layer
    plus two bumps (each its own position, height, widths and peak) is fitted too, from
    the single bump split in two either side of its centre and from the single bump plus a
    second at the largest residual on its side; two are kept when the second lowers the
    residual significantly: an F-test, p < ``p_value`` (default 0.001), on the residual
    sums of squares with 5 more parameters, the samples counted as independent per voxel
    (the trace's own noise is correlated over the half-voxel arc steps) less the
    undeformed layer's share (one value per voxel of arc); and each bump is plausible as a
    single one is (same side, at least as wide as the blur, within the samples), at least
    ``min_depth_um`` deep with the blur's share put back (default one voxel, the bends
    :func:`find_bends_3d` keeps), the deeper at least half the deviation the slices
    showed, the fit's residual under 0.15 voxel rms, and the two resolved: their sum dips
    between their peaks by at least the fit's residual rms (the wobble of one traced
    sample: a shallower dip is not seen in the trace), and each no taller (half-maximum
    height along the axis) than twice the height of the slices that show the ridge: two
    bends that make one ridge each lie where it is seen; every other slice traced, a second
    bump 246 um tall fitted beside a bend of the link twin seen over 80 um (more than half
    the 400 um stack) was a sixth bend. Without the dip, their sum is a
    single flat-topped bump (two equal bumps up to two widths apart: Sparrow's limit),
    which one bend also makes: a flat-topped bump (exp(-|s / 60 um|^4 / 2) under 1.5 um of
    wobble) fits two bumps significantly better than one, dipping 0.7-0.9 um between them;
    two equal 30 um bumps 2.5 widths apart dip 2.8-4.1 um (12 % without the wobble). On
    the twins a bend whose traced profile is a core with long flanks (seed 7) fits two
    bumps 1.9 widths apart as significantly better than one as two bends 2.0 widths apart
    (seed 13: 131 um, 58 and 69 um wide) do: neither dips, both stay one. A single broad
    Gaussian fits as well with one: the F-test keeps one.

    Returns the bumps, along the arc ([] when none fits); ``split`` False: one at most.
    """
    samples = _bend_samples(bend, layers, voxel_um)
    if samples.radius_um.shape[0] < 3:
        return []
    start = [
        0.0, bend.z_um,
        max(bend.extent_arc_um, voxel_um) * FWHM_TO_SIGMA,
        max(bend.extent_axial_um, voxel_um) * FWHM_TO_SIGMA,
    ]  # fmt: skip
    one = _fit_gaussians(samples, start, voxel_um)
    if one is None:
        return []
    single = _measured(samples, bend, *one, blur_um, voxel_um)
    if not split:
        return single
    (s0, z0, s_arc, s_axial), residual = one[0][0], one[2].reshape(samples.radius_um.shape)
    outwards = np.sign(bend.amplitude_um)
    worst = samples.arc_um[np.argmax(np.max(-outwards * residual, axis=0))]  # data over the fit
    starts = (
        [s0 - 0.7 * s_arc, z0, 0.7 * s_arc, s_axial, s0 + 0.7 * s_arc, z0, 0.7 * s_arc, s_axial],
        [s0, z0, s_arc, s_axial, worst, z0, 0.7 * s_arc, s_axial],
    )
    pairs = [fit for fit in (_fit_gaussians(samples, p, voxel_um) for p in starts) if fit]
    if not pairs:
        return single
    two = min(pairs, key=lambda fit: float(np.sum(fit[2] ** 2)))
    pair = _measured(samples, bend, *two, blur_um, voxel_um)
    shallowest = voxel_um if min_depth_um is None else min_depth_um
    rss_one, rss_two = float(np.sum(one[2] ** 2)), float(np.sum(two[2] ** 2))
    free = samples.radius_um.size / 2 - samples.arc_um.size / 2 - 10
    distinct = (
        len(pair) == 2
        and free > 0
        and 0 < rss_two < rss_one
        and stats.f.sf((rss_one - rss_two) / 5 / (rss_two / free), 5, free) < p_value
        and min(abs(b.depth_um) for b in pair) >= shallowest
        and _dip_um(*two[:2]) >= np.sqrt(rss_two / two[2].size)
        and max(b.sigma_axial_um for b in pair) <= samples.reach_z_um * FWHM_TO_SIGMA
    )
    return pair if distinct else single


def _dip_um(bumps: np.ndarray, peaks: np.ndarray, *, samples: int = 101) -> float:
    """How far (um) the sum of two fitted ``bumps`` (2, 4: arc position, height, arc and
    axial widths) with their ``peaks`` (2,) dips between them: along the line between
    their centres, its lower end less its lowest point between (0 or less: no dip)."""
    t = np.linspace(0.0, 1.0, samples)[:, None]
    line = bumps[0, :2] + t * (bumps[1, :2] - bumps[0, :2])  # (samples, 2): arc, height
    scaled = (line[:, None, :] - bumps[None, :, :2]) / bumps[None, :, 2:]
    ridge = np.abs(np.exp(-0.5 * np.sum(scaled**2, axis=-1)) @ peaks)
    return float(min(ridge[0], ridge[-1]) - ridge[1:-1].min())


def _measured(
    samples: _BendSamples,
    bend: pd.Series,
    bumps: np.ndarray,
    peaks: np.ndarray,
    residual: np.ndarray,
    blur_um: float,
    voxel_um: float,
) -> list[BumpFit]:
    """Fitted ``bumps`` (k, 4) with their ``peaks`` (k,) as bends along the arc, the blur's
    share of each depth put back (see :func:`fit_bumps`); [] when any is implausible: among
    others, a residual over 0.15 of the voxel or of the blur, whichever is larger (the
    trace's wobble follows the blur: the link twin's bends fitted to 0.7-1.6 um at 20 um
    voxels, and, simulated at 10 um voxels with the same 14 um blur or upsampled to them as
    the study matched its grids, to 1.5-1.7 um, past a bar of 0.15 voxel: none of its 5
    bends found, exit 0)."""
    rms = float(np.sqrt(np.mean(residual**2)))
    s0, z0, s_arc, s_axial = bumps.T
    plausible = (
        rms <= 0.15 * max(voxel_um, blur_um)
        and np.all(np.sign(peaks) == np.sign(bend.amplitude_um))
        and np.abs(peaks).max() >= abs(bend.amplitude_um) / 2
        and np.all(blur_um <= np.minimum(s_arc, s_axial))
        and np.all(s_arc <= samples.reach_arc_um)
        and np.all(s_axial <= samples.reach_z_um)
        and np.all(np.abs(s0) <= samples.reach_arc_um)
    )
    if not plausible:
        return []
    depths = peaks * (1 + blur_um**2 / 2 * (1 / s_arc**2 + 1 / s_axial**2))
    found = []
    for j in np.argsort(s0):
        layer, s = min(samples.placed, key=lambda placed: abs(placed[0].z_um - z0[j]))
        x_um, y_um = (float(np.interp(s0[j], s, xy)) for xy in (layer.x_um, layer.y_um))
        found.append(
            BumpFit(float(peaks[j]), float(s_arc[j]), float(s_axial[j]), float(z0[j]),
                    float(depths[j]), rms, x_um, y_um)
        )  # fmt: skip
    return found


BEND_HEIGHT_UM = 100.0
"""Height along the axis (um) that :func:`find_bends_3d`'s presence rule keeps for a bend
in a stack too short for ``max_presence``: the tiny twins' bends are 60-80 um tall (3-4 of
their 8 slices of 20 um), the small twins' 60-120 um; a feature of the winding along 120 um
of a 160 um stack (its inner end in 6 of 8 slices) must stay out."""


def find_bends_3d(
    volume,
    voxel_um: float,
    *,
    slice_step: int = 1,
    min_slices: int = 1,
    max_presence: float = 0.3,
    min_amplitude_um: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[pd.DataFrame, CollectorDisplacement]:
    """Bends of the Cu collector in an X-ray volume ((nz, ny, nx) array-like, 1/um or grey
    levels, Cu bright; read one slice at a time), every ``slice_step``-th slice traced.

    A warning where ``slice_step`` > 1: bends shorter along the axis than about three
    traced slices' spacing may be missed.

    Dropped: bends seen in fewer than ``min_slices`` slices (default one: a bend of 1.5
    voxels crosses the 2D finder's threshold in one slice only, and the bump fit below
    keeps the noise out), and bends at a place of
    the layer (same side, within reach in the slice plane) that deviates in more than
    ``max_presence`` of all traced slices (or, in a stack too short for a whole bend to
    fill under that share, than :data:`BEND_HEIGHT_UM`, with a warning): a bend is local
    along the axis (an agglomerate's size), a feature along the whole height is the winding
    itself (its inner end, a tab, a tracer artefact). Each remaining bend's depth and height
    are those of the bump fitted to the traced layers with the blur's share put back
    (:func:`fit_bumps`; the blur is the median over the slices of
    :func:`foil_profile_sigma`); bends the bump does not fit are
    dropped (a deviation that is no bump along both the arc and the axis: tracer noise on
    the innermost turns), and so are bends shallower than ``min_amplitude_um`` (default one
    voxel: the foil's position wobbles by a fraction of a voxel from slice to slice with
    its partial volume). Returns the table of :func:`join_bends` and the displacement map.
    Raises ``ValueError`` when the foil's profile cannot be fitted in any slice (its blur,
    needed for the depths, unknown).
    """
    slices = np.arange(0, volume.shape[0], slice_step)
    if slice_step > 1:
        warnings.warn(
            f"bends traced on one X-ray slice in {slice_step} ({slice_step * voxel_um:g} um "
            "apart): a bend fits where three traced slices cross it, so bends shorter along "
            "the axis than about three times that spacing may be missed (the small twins' "
            "bends, 60-120 um tall: all 31 found on every slice of 20 um or every second, 25 "
            "on every third); trace every slice (--bend-slice-step 1) for them all",
            stacklevel=2,
        )
    per_slice, displacement, layers = slice_bends(volume, voxel_um, slices, progress)
    bends = join_bends(
        per_slice, voxel_um, slice_step=slice_step, gaps=set(per_slice.attrs.get(GAPS, ()))
    )
    if len(bends):
        # of the slices traced: those outside the cell (nothing to trace) see no feature
        traced = max(len(layers), 1)
        presence = _presence(bends, per_slice, voxel_um) / traced
        # a stack under BEND_HEIGHT_UM / max_presence holds a whole bend in more than
        # max_presence of its slices: the tiny twins' 8-slice stacks (160 um) lost every
        # bend, and the link said no agglomerate sat on one, exit 0
        most = max(max_presence, min(BEND_HEIGHT_UM / (voxel_um * slice_step * traced), 1.0))
        if most > max_presence:
            warnings.warn(
                f"the X-ray stack traced is {traced * slice_step * voxel_um:g} um tall: a "
                f"bend {BEND_HEIGHT_UM:g} um tall fills over {max_presence:.0%} of it, so "
                f"features along up to {most:.0%} of its slices are kept as bends; a bend "
                f"taller than {BEND_HEIGHT_UM:g} um cannot be told there from the winding's "
                "own features and is dropped: a taller stack tells them apart",
                stacklevel=2,
            )
        local = (bends.slices >= min(min_slices, len(layers))) & (presence <= most)
        bends = _fitted(bends[local], layers, voxel_um)
        shallowest = voxel_um if min_amplitude_um is None else min_amplitude_um
        bends = bends[bends.amplitude_um.abs() >= shallowest].reset_index(drop=True)
        bends["id"] = np.arange(1, len(bends) + 1)
    return bends, displacement


def _fitted(bends: pd.DataFrame, layers: list[SliceLayer], voxel_um: float) -> pd.DataFrame:
    """``bends`` with the depth and height of their fitted bumps (:func:`fit_bumps`); those
    no bump fits left out, a ridge of two bumps split in two rows (each with its bump's
    place, and its arc and axial full widths at half maximum as its extents). A single
    bump keeps the deepest traced point as its place: where a ridge of two bends too close
    to split lies, that point is on one of them, the fitted centre between them."""
    if bends.empty:
        return bends
    blur_um = float(np.nanmedian([layer.profile_sigma_um for layer in layers]))
    if not np.isfinite(blur_um):
        raise ValueError(
            "the Cu foil's radial profile could not be fitted in any traced X-ray slice: the "
            "volume's blur, needed to measure the bends' depths, is unknown; check that the "
            "Cu collector is the brightest layer of the X-ray volume"
        )
    rows = []
    for _, bend in bends.iterrows():
        fits = fit_bumps(bend, layers, blur_um, voxel_um)
        for fit in fits:
            row = bend.copy()
            row[["amplitude_um", "z_um"]] = fit.depth_um, fit.z_um
            if len(fits) > 1:
                arc, axial = np.array([fit.sigma_arc_um, fit.sigma_axial_um]) / FWHM_TO_SIGMA
                row[["x_um", "y_um", "extent_arc_um", "extent_axial_um"]] = (
                    fit.x_um, fit.y_um, arc, axial
                )  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows, columns=bends.columns).astype(bends.dtypes.to_dict())


def _presence(bends: pd.DataFrame, per_slice: pd.DataFrame, voxel_um: float) -> np.ndarray:
    """For each 3D bend, the number of traced slices with a 2D bend at its place of the
    layer (same side, within half its arc extent plus two voxels in the slice plane)."""
    counts = []
    for bend in bends.itertuples():
        same = per_slice[
            (np.sign(per_slice.amplitude_um) == np.sign(bend.amplitude_um))
            & (np.hypot(per_slice.x_um - bend.x_um, per_slice.y_um - bend.y_um)
               <= bend.extent_arc_um / 2 + 2 * voxel_um)
        ]  # fmt: skip
        counts.append(same.slice.nunique())
    return np.asarray(counts, dtype=float)

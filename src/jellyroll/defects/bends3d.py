"""Bent collectors in 3D: the Cu collector traced through an X-ray volume, slice by slice,
its bends joined along the cell axis (the study's Fig. 3a/b seen in NXCT).

Each slice is handled as a 2D map by :func:`jellyroll.defects.find_bends` (the collector
traced by :func:`jellyroll.unroll.trace_spiral` around the cell centre and moved onto the
foil's brightest point by :func:`refine_layer`, bends as runs off a smooth spiral fitted
without them); a bend seen in neighbouring slices at nearby positions on the same side is
one bend in 3D, its depth the peak along the axis. Positions in the volume frame of SPEC
section 6: (z, y, x) um with the origin at the grid centre.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import ndimage

from jellyroll.conventions import px_to_um
from jellyroll.defects.bends import find_bends
from jellyroll.unroll import SpiralTrace, find_cell, spiral_deviation, trace_spiral

BEND3D_COLUMNS = (
    "id", "z_um", "y_um", "x_um", "turn", "amplitude_um", "extent_axial_um",
    "extent_arc_um", "slices",
)  # fmt: skip


@dataclass
class CollectorDisplacement:
    """The collector's radial displacement off its smooth spiral, per slice and arc sample:
    ``displacement_um`` (n_slices, n_arc), NaN where a slice was not traced that far;
    ``arc_um`` (n_arc,) from the layer's inner end, ``z_um`` (n_slices,), ``turn`` (n_arc,)
    revolutions from the inner end (of the middle slice's trace)."""

    displacement_um: np.ndarray
    arc_um: np.ndarray
    z_um: np.ndarray
    turn: np.ndarray


def slice_bends(
    volume, voxel_um: float, slices: np.ndarray, progress: Callable[[float], None] | None = None
) -> tuple[pd.DataFrame, CollectorDisplacement]:
    """Bends of every slice in ``slices`` of ``volume`` ((nz, ny, nx) array-like, Cu bright)
    and the displacement map. Slices where no collector can be traced are skipped."""
    nz = volume.shape[0]
    tables = []
    profiles: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
    for n, k in enumerate(slices):
        image = np.nan_to_num(np.asarray(volume[int(k)], dtype=np.float64))
        z_um = float(px_to_um(int(k), nz, voxel_um))
        try:
            trace = refine_layer(image, trace_spiral(image, find_cell(image), voxel_um))
        except ValueError:
            continue
        bends = find_bends(image, voxel_um, trace=trace, robust_reference=True)
        reach = bends.width_um.to_numpy() / 2 + trace.pitch_um / 2
        near = np.abs(trace.arc_um[:, None] - bends.arc_um.to_numpy()[None, :]) <= reach
        deviation = spiral_deviation(trace, exclude=near.any(axis=1))  # bends left out, as there
        turn = (trace.winding_rad - trace.winding_rad[0]) / (2 * np.pi)
        profiles.append((z_um, deviation.arc_um, deviation.deviation_um, turn))
        if len(bends):
            tables.append(bends.assign(z_um=z_um, slice=int(k)))
        if progress is not None:
            progress((n + 1) / len(slices))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return table, _displacement(profiles, voxel_um)


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
    radius = trace.radius_px[:, None] + offsets[None, :]
    angle = trace.angle_rad[:, None]
    x = trace.centre[0] + radius * np.cos(angle)
    y = trace.centre[1] + radius * np.sin(angle)
    profile = ndimage.map_coordinates(image, [y, x], order=3, mode="nearest")
    brightest = offsets[np.argmax(profile, axis=1)]
    return replace(trace, radius_px=trace.radius_px + brightest)


def _displacement(
    profiles: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]], step_um: float
) -> CollectorDisplacement:
    if not profiles:
        empty = np.empty(0)
        return CollectorDisplacement(np.empty((0, 0)), empty, empty, empty)
    longest = max(arc[-1] for _, arc, _, _ in profiles)
    grid = np.arange(0.0, longest + step_um, step_um)
    rows = np.full((len(profiles), grid.size), np.nan)
    for i, (_, arc, values, _) in enumerate(profiles):
        inside = grid <= arc[-1]
        rows[i, inside] = np.interp(grid[inside], arc, values)
    _, arc, _, turn = profiles[len(profiles) // 2]
    turns = np.interp(grid, arc, turn)
    z = np.array([z for z, _, _, _ in profiles])
    return CollectorDisplacement(rows, grid, z, turns)


def join_bends(
    per_slice: pd.DataFrame,
    voxel_um: float,
    *,
    slice_step: int = 1,
    slack_um: float | None = None,
) -> pd.DataFrame:
    """Bends of consecutive slices on the same side whose deepest points lie within half
    the larger width (plus ``slack_um``, default two voxels) of each other in the slice
    plane joined into 3D bends. Position, not the turn number, decides: the turn counted
    from the layer's inner end changes by one between slices where the tracer finds that
    end a revolution earlier or later; another turn lies a pitch away.

    Returns one row per 3D bend: ``id``, ``z_um``, ``y_um``, ``x_um`` (deepest point),
    ``turn`` (the most frequent among its slices), ``amplitude_um`` (signed, outwards
    positive: the peak along the axis, see :func:`_axial_peak`), ``extent_axial_um``
    (slices spanned x slice spacing), ``extent_arc_um`` (largest width along the layer),
    ``slices`` (how many slices show it).
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
        following = by_slice.get(k + slice_step)
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
                "slices": len(members),
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
    neighbour is missing."""
    depth = {int(m.slice): abs(float(m.amplitude_um)) for m in members.itertuples()}
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


def find_bends_3d(
    volume,
    voxel_um: float,
    *,
    slice_step: int = 1,
    min_slices: int = 2,
    max_presence: float = 0.3,
    min_amplitude_um: float | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[pd.DataFrame, CollectorDisplacement]:
    """Bends of the Cu collector in an X-ray volume ((nz, ny, nx) array-like, 1/um or grey
    levels, Cu bright; read one slice at a time), every ``slice_step``-th slice traced.

    Dropped: bends seen in fewer than ``min_slices`` slices (noise), and bends at a place of
    the layer (same side, within reach in the slice plane) that deviates in more than
    ``max_presence`` of all traced slices: a bend is local along the axis (an agglomerate's
    size), a feature along the whole height is the winding itself (its inner end, a tab, a
    tracer artefact); and bends shallower than ``min_amplitude_um`` at their peak (default
    one voxel: the foil's position wobbles by a fraction of a voxel from slice to slice
    with its partial volume). Returns the table of :func:`join_bends` and the displacement map.
    """
    slices = np.arange(0, volume.shape[0], slice_step)
    per_slice, displacement = slice_bends(volume, voxel_um, slices, progress)
    bends = join_bends(per_slice, voxel_um, slice_step=slice_step)
    if len(bends):
        presence = _presence(bends, per_slice, voxel_um) / max(len(slices), 1)
        shallowest = voxel_um if min_amplitude_um is None else min_amplitude_um
        keep = (
            (bends.slices >= min(min_slices, len(slices)))
            & (presence <= max_presence)
            & (bends.amplitude_um.abs() >= shallowest)
        )
        bends = bends[keep].reset_index(drop=True)
        bends["id"] = np.arange(1, len(bends) + 1)
    return bends, displacement


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

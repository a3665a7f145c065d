"""Bent current collectors: bumps of the traced Cu layer off its smooth spiral.

In X-ray (or neutron) attenuation maps the Cu collector is a thin bright layer that
:func:`jellyroll.unroll.trace_spiral` follows along the winding;
:func:`jellyroll.unroll.spiral_deviation` gives its radial deviation from a smooth
spiral. A large silicon agglomerate pushes the collector aside during formation (Lübke
et al. 2024, case B): a bend is a run of the layer deviating on one side beyond the
noise of the deviation. :func:`link_bends` pairs bends and agglomerates;
:func:`locate_on_layer` places any point (an agglomerate) on the unrolled layer.

Lengths in micrometres; positions in map coordinates (pixel ``(iy, ix)`` centred at
``x = (ix - (nx - 1) / 2) p``, ``y = (iy - (ny - 1) / 2) p``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit
from scipy import ndimage

from jellyroll.conventions import MAD_TO_SIGMA, px_to_um, um_to_px
from jellyroll.unroll import (
    SpiralTrace,
    fill_unmeasured,
    spiral_deviation,
    trace_spiral,
    unmeasured_samples,
)
from jellyroll.unroll._sampling import positive_pixel_size

__all__ = ["find_bends", "link_bends", "locate_on_layer"]

_BEND_COLUMNS = (
    "id", "x_um", "y_um", "arc_um", "turn", "amplitude_um", "width_um", "significance",
    "depth_limited",
)  # fmt: skip


def find_bends(
    attenuation_map: np.ndarray,
    pixel_size_um: float,
    *,
    trace: SpiralTrace | None = None,
    window_um: float | None = None,
    threshold: float = 4.0,
    min_amplitude_um: float | None = None,
    agglomerates: pd.DataFrame | None = None,
    robust_reference: bool = False,
    unmeasured: np.ndarray | None = None,
) -> pd.DataFrame:
    """Bends of the Cu collector in an attenuation map ``(ny, nx)`` (Cu bright).

    ``trace``: the collector from :func:`jellyroll.unroll.trace_spiral` (traced on the
    map around :func:`jellyroll.unroll.find_cell`'s centre when not given);
    ``window_um``: arc length of the smooth reference's running median (default four
    pitches, see :func:`jellyroll.unroll.spiral_deviation`). A bend is a run of samples
    deviating on one side by more than ``min_amplitude_um`` (default half a pixel) and
    ``threshold`` robust noise units of the deviation (MAD over four windows of arc
    around it), at least one pixel long. With ``agglomerates`` the bends are linked to
    them (:func:`link_bends`). ``robust_reference``: the smooth reference fitted again
    without the bends of a first pass and half a pitch of arc either side, so that it
    does not follow them and eat part of their depth. Within a pitch of an end where the
    trace was cut although the layer goes on (``trace.cut_ends``: a tear, a bend deeper
    than the tracker follows, a jump to another layer) no bend is reported: the path there
    is no measure of the layer's course; ``arc_um`` and ``turn`` then count from the cut.
    Pixels of the map not measured (NaN, inf) are filled for the tracer
    (:func:`jellyroll.unroll.fill_unmeasured`), and no bend reaches a sample of the layer
    near them (:func:`jellyroll.unroll.unmeasured_samples`), nor do they shape the reference:
    read as 0 (black material), a band of three NaN rows drew bends of 6-14 um wherever it
    crossed the turns and read a 37 um bend under it as 24 um, exit 0. ``unmeasured``: those
    samples of ``trace``, where the caller has them already
    (:func:`jellyroll.unroll.unmeasured_samples` of this map and trace: a distance transform
    of the whole map).

    Returns one row per bend, along the layer: ``id`` (1...), ``x_um``, ``y_um`` (deepest
    point), ``arc_um`` (along the layer from its inner end), ``turn`` (revolutions from
    the inner end), ``amplitude_um`` (signed, outwards positive), ``width_um`` (arc
    length), ``significance`` (noise units), ``depth_limited`` (the tracker's path sat at
    the edge of its window within the bend, :attr:`SpiralTrace.at_window_edge`: the depth
    is a lower bound; a bend of 60 um on a 120 um pitch measured 51 um) and, when linked,
    ``agglomerate_ids``. ``attrs["unmeasured_runs"]``: how many departures past the
    threshold were not reported because they reach samples near unmeasured pixels (a NaN
    row through a 43 um bend removed it without a word).
    """
    image = np.asarray(attenuation_map, dtype=np.float64)
    p = positive_pixel_size(pixel_size_um, "find_bends")
    if trace is None:
        trace = trace_spiral(*fill_unmeasured(image), p)
    problem = trace.grid_problem(image.shape, p)
    if problem is not None:  # its bends would be placed with the wrong pixels
        raise ValueError(
            f"trace: {problem}: trace the Cu layer on this attenuation map (or give no trace)"
        )
    minimum = 0.5 * p if min_amplitude_um is None else min_amplitude_um
    noise_window = 4 * (window_um or 4 * trace.pitch_um)
    # no measure of the layer's course: left out of the reference too, not to pull it off
    if unmeasured is None:
        unmeasured = unmeasured_samples(image, trace)
    lost = _near_cut_ends(trace) | unmeasured
    exclude = lost if lost.any() else None
    for _ in range(2 if robust_reference else 1):
        deviation = spiral_deviation(trace, window_um=window_um, exclude=exclude)
        values = deviation.deviation_um
        noise = _local_noise(deviation.arc_um, values, noise_window)
        limit = np.maximum(threshold * noise, minimum)
        exclude = _around(np.abs(values) > limit, deviation.arc_um, trace.pitch_um / 2) | lost
    xy_px = trace.xy_px
    x_um, y_um = px_to_um(xy_px[:, 0], image.shape[1], p), px_to_um(xy_px[:, 1], image.shape[0], p)
    turn = np.floor((trace.winding_rad - trace.winding_rad[0]) / (2 * np.pi)).astype(int)
    at_edge = trace.at_window_edge
    if at_edge is None or at_edge.shape != values.shape:
        at_edge = np.zeros(values.shape, dtype=bool)
    rows = []
    unmeasured_runs = 0
    for sign in (1.0, -1.0):
        runs, _ = ndimage.label(sign * values > limit)
        for (run,) in ndimage.find_objects(runs):
            width = float(deviation.arc_um[run.stop - 1] - deviation.arc_um[run.start])
            if width < p or lost[run].any():
                unmeasured_runs += int(width >= p and bool(unmeasured[run].any()))
                continue
            k = run.start + int(np.argmax(sign * values[run]))
            rows.append(
                {
                    "x_um": x_um[k],
                    "y_um": y_um[k],
                    "arc_um": deviation.arc_um[k],
                    "turn": turn[k],
                    "amplitude_um": values[k],
                    "width_um": width,
                    "significance": abs(values[k]) / noise[k] if noise[k] > 0 else np.inf,
                    "depth_limited": bool(at_edge[run].any()),
                }
            )
    if rows:
        bends = pd.DataFrame(rows).sort_values("arc_um", ignore_index=True)
        bends.insert(0, "id", np.arange(1, len(bends) + 1))
    else:
        bends = pd.DataFrame({name: pd.Series(dtype=float) for name in _BEND_COLUMNS})
    if agglomerates is not None:
        bends, _ = link_bends(agglomerates, bends)
    bends.attrs["unmeasured_runs"] = unmeasured_runs
    return bends


def _near_cut_ends(trace: SpiralTrace) -> np.ndarray:
    """(n,) bool: the trace samples within a pitch of arc of an end where the trace was cut
    although the layer goes on (:attr:`~jellyroll.unroll.SpiralTrace.cut_ends`). There the
    path ran off the layer's course into the cut: a trace cut at a bend of 80 um, deeper
    than the tracker's window, began on its flank and a bend of +12.6 um was reported at
    turn 0, exit 0 (the bend itself is not measured; the trace says it was cut)."""
    arc = trace.arc_um
    inner, outer = trace.cut_ends
    return (inner & (arc <= arc[0] + trace.pitch_um)) | (outer & (arc >= arc[-1] - trace.pitch_um))


def _around(mask: np.ndarray, arc_um: np.ndarray, reach_um: float) -> np.ndarray:
    """``mask`` (n,) grown by ``reach_um`` of arc on either side."""
    marked = arc_um[mask]
    if marked.size == 0:
        return mask
    nearest = np.abs(arc_um[:, None] - marked[None, :]).min(axis=1)
    return nearest <= reach_um


def _local_noise(arc_um: np.ndarray, values: np.ndarray, window_um: float) -> np.ndarray:
    """Robust standard deviation (MAD) of ``values`` over ``window_um`` of arc around each
    sample: stretches where the layer is faint trace noisily and need larger bends."""
    lo = np.searchsorted(arc_um, arc_um - window_um / 2, side="left")
    hi = np.searchsorted(arc_um, arc_um + window_um / 2, side="right")
    spread = np.abs(values - np.median(values))
    monotone = (np.diff(lo) >= 0).all() and (np.diff(hi) >= 0).all()
    if not (monotone and (hi > lo).all() and np.isfinite(spread).all()):
        # NaN values or empty windows (a negative pitch): window by window, as np.median does
        return MAD_TO_SIGMA * np.array(
            [np.median(spread[a:b]) for a, b in zip(lo, hi, strict=True)]
        )
    return MAD_TO_SIGMA * _window_medians(spread, lo, hi)


@njit(cache=True)
def _window_medians(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Median of ``values[lo[i]:hi[i]]`` for each i (``lo`` and ``hi`` non-decreasing, each
    window non-empty), as ``np.median``: a sorted copy of the window slides along, one
    insertion or removal per sample entering or leaving (O(n w), not O(n w log w))."""
    window = np.empty(values.size)
    out = np.empty(lo.size)
    count = 0
    a = b = 0
    for i in range(lo.size):
        while b < hi[i]:  # the samples entering, each put at its sorted place
            k = np.searchsorted(window[:count], values[b])
            window[k + 1 : count + 1] = window[k:count].copy()
            window[k] = values[b]
            count += 1
            b += 1
        while a < lo[i]:  # the samples leaving
            k = np.searchsorted(window[:count], values[a])
            window[k : count - 1] = window[k + 1 : count].copy()
            count -= 1
            a += 1
        half = count // 2
        out[i] = window[half] if count % 2 else 0.5 * (window[half - 1] + window[half])
    return out


def link_bends(
    agglomerates: pd.DataFrame, bends: pd.DataFrame, *, slack_um: float = 20.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pair bends with the agglomerates that may have caused them.

    An agglomerate that bends the collector lies against it: its centre is at most its
    own diameter from where the collector was, so within ``|amplitude| + diameter +
    slack_um`` (default the study's beam size) of the bend's deepest point. Returns
    copies: ``bends`` with ``agglomerate_ids`` (tuple, nearest first) and
    ``agglomerates`` with ``bend_id`` (nearest linked bend, 0 = none).
    """
    bends = bends.copy()
    agglomerates = agglomerates.copy()
    ax = agglomerates["x_um"].to_numpy(dtype=float)
    ay = agglomerates["y_um"].to_numpy(dtype=float)
    reach = agglomerates["equivalent_diameter_um"].to_numpy(dtype=float) + slack_um
    agglomerate_ids = agglomerates["id"].to_numpy()
    bend_of = np.zeros(len(agglomerates), dtype=int)
    nearest = np.full(len(agglomerates), np.inf)
    linked = []
    for bend in bends.itertuples():
        distance = np.hypot(ax - bend.x_um, ay - bend.y_um)
        near = np.flatnonzero(distance <= abs(bend.amplitude_um) + reach)
        near = near[np.argsort(distance[near])]
        linked.append(tuple(int(i) for i in agglomerate_ids[near]))
        closer = near[distance[near] < nearest[near]]
        bend_of[closer] = bend.id
        nearest[closer] = distance[closer]
    bends["agglomerate_ids"] = pd.Series(linked, index=bends.index, dtype=object)
    agglomerates["bend_id"] = bend_of
    return bends, agglomerates


def locate_on_layer(
    x_um: np.ndarray, y_um: np.ndarray, trace: SpiralTrace, shape: tuple[int, int]
) -> pd.DataFrame:
    """Points of a map ``shape`` (ny, nx) placed on a traced layer (the unrolled cell).

    Each point goes to the turn of the layer nearest along its ray from the centre.
    Returns ``turn`` (revolutions from the layer's inner end), ``arc_um`` (along the
    layer) and ``depth_um`` (radial offset, outwards positive); -1 and NaN where no traced
    turn lies within half a pitch along the ray.
    """
    p = trace.pixel_size_um
    problem = trace.grid_problem(shape, p)
    if problem is not None:  # the points would be placed with the wrong pixels
        raise ValueError(f"trace: {problem}: trace the layer on a map of this grid")
    x_px, y_px = um_to_px(x_um, shape[1], p), um_to_px(y_um, shape[0], p)
    cx, cy = trace.centre
    radius = np.hypot(x_px - cx, y_px - cy)
    base = trace.direction * np.arctan2(y_px - cy, x_px - cx)
    start, end = trace.winding_rad[0], trace.winding_rad[-1]
    turns = np.arange(
        np.floor((start - np.pi) / (2 * np.pi)), np.ceil((end + np.pi) / (2 * np.pi)) + 1
    )
    winding = base[:, None] + 2 * np.pi * turns[None, :]
    valid = (winding >= start) & (winding <= end)
    layer_radius = np.interp(winding, trace.winding_rad, trace.radius_px)
    gap = np.where(valid, np.abs(radius[:, None] - layer_radius), np.inf)
    best = np.argmin(gap, axis=1)
    rows = np.arange(radius.size)
    found = gap[rows, best] <= 0.5 * trace.pitch_um / p  # else the layer was not traced there
    chosen = winding[rows, best]
    return pd.DataFrame(
        {
            "turn": np.where(found, np.floor((chosen - start) / (2 * np.pi)), -1).astype(int),
            "arc_um": np.where(found, np.interp(chosen, trace.winding_rad, trace.arc_um), np.nan),
            "depth_um": np.where(found, (radius - layer_radius[rows, best]) * p, np.nan),
        }
    )

"""The 2D bend finder: its local noise (the sliding-window median against NumPy's), and
the bends of a twin's collector."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, ndimage
from wound_layers import wound_layers

from jellyroll.conventions import FWHM_TO_SIGMA, MAD_TO_SIGMA
from jellyroll.defects import find_bends
from jellyroll.defects.bends import _local_noise
from jellyroll.defects.bends3d import slice_bends
from jellyroll.defects.options import DiagnoseOptions
from jellyroll.defects.run import diagnose
from jellyroll.phantom.twin import make_twin
from jellyroll.results import Map, MapSet
from jellyroll.unroll import find_cell, trace_spiral


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.01, 5.0), min_size=1, max_size=200),
    st.floats(-50.0, 400.0),
    st.integers(0, 2**16),
    st.booleans(),
)
def test_local_noise_is_the_median_of_each_window(
    steps: list[float], window_um: float, seed: int, with_nan: bool
) -> None:
    """Exactly the robust spread of each window as ``np.median`` gives it, whatever the
    window (empty ones at a negative width: NaN), ties included (values on a coarse grid)
    and a NaN in the trace (NaN wherever a window reaches it)."""
    arc = np.cumsum(steps)
    values = np.round(np.random.default_rng(seed).normal(size=arc.size), 1)
    if with_nan:
        values[arc.size // 2] = np.nan
    lo = np.searchsorted(arc, arc - window_um / 2, side="left")
    hi = np.searchsorted(arc, arc + window_um / 2, side="right")
    spread = np.abs(values - np.median(values))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # np.median of an empty window
        expected = MAD_TO_SIGMA * np.array(
            [np.median(spread[a:b]) for a, b in zip(lo, hi, strict=True)]
        )
        found = _local_noise(arc, values, window_um)
    np.testing.assert_array_equal(found, expected)


def test_the_collector_s_end_is_no_bend() -> None:
    """The small twin's Cu collector (seed 3) is bent by its 3 case-B agglomerates only; the
    trace ran on for a few samples past the collector's end towards the casing (ridge
    strength 0.3 down to -0.1) and a 4th bend of +35 um, 1 px long, was reported there,
    exit 0. The trace now ends where the ridge does."""
    twin = make_twin("aged_charged", "small", seed=3)
    p = twin.pixel_size_um
    image = ndimage.gaussian_filter(twin.mu_xray_per_um, 20.0 * FWHM_TO_SIGMA / p)
    bends = find_bends(image, p)
    truth = twin.agglomerates[twin.agglomerates["bend_amplitude_um"] > 0]
    assert len(bends) == len(truth) == 3
    for bend in bends.itertuples():  # each at its agglomerate: within its diameter + 3 px
        near = np.hypot(truth["x_um"] - bend.x_um, truth["y_um"] - bend.y_um)
        assert near.min() <= truth["equivalent_diameter_um"].max() + 3 * p


def test_noise_beside_the_inner_end_is_no_bend() -> None:
    """A 9-turn spiral (Gaussian layer, sigma 1.2 px, pitch 12 px, 10 um pixels) under
    noise of 0.2 of its peak: the trace began 0.076 rad before the layer, 2.3 px inside it,
    on a noise blob joined to the layer across a 7-sample gap, and bends of -16.3 um
    (significance 7.7) and +10.1 um (its pull on the reference) were reported there, exit
    0. The trace now begins on the layer: within 0.5 px of it (measured 0.24 px; the noise
    moves the ridge by about that) and within 1 deg of its start."""
    shape, centre, r0, pitch, turns = (301, 301), (150.3, 149.6), 30.0, 12.0, 9.0
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    r = np.hypot(x - centre[0], y - centre[1])
    t = np.mod(np.arctan2(y - centre[1], x - centre[0]), 2 * np.pi)
    image = np.zeros(shape)
    for k in range(int(turns) + 1):
        on = t + 2 * np.pi * k <= 2 * np.pi * turns
        image = np.maximum(
            image, on * np.exp(-0.5 * ((r - r0 - pitch * (t / 2 / np.pi + k)) / 1.2) ** 2)
        )
    image += 0.2 * np.random.default_rng(1).standard_normal(shape)
    trace = trace_spiral(image, centre, 10.0, radius_range_um=(0.0, 1450.0))
    assert np.mod(trace.winding_rad[0] + np.deg2rad(1.0), 2 * np.pi) < np.deg2rad(2.0)
    start = r0 + pitch * np.mod(trace.winding_rad[0] + np.pi, 2 * np.pi) / (2 * np.pi) - pitch / 2
    assert abs(trace.radius_px[0] - start) < 0.5
    assert find_bends(image, 10.0, trace=trace).empty


def _spiral_with_a_bend(amplitude_px: float, width_rad: float) -> np.ndarray:
    """:func:`wound_layers` bent by ``amplitude_px`` (sigma ``width_rad``) at 4.3 turns,
    inside its casing ring."""
    return wound_layers(bend_px=amplitude_px, bend_width_rad=width_rad, casing=True)


def test_a_bend_deeper_than_the_tracker_follows_is_no_bend_at_turn_0() -> None:
    """A bend of 80 um (8 px, 0.67 pitch) on one turn, deeper than the tracker's window
    (0.45 pitch): the path lost the layer at its top and the trace was cut there, keeping
    the outer 4.7 of 9 turns from the bend's flank on; find_bends reported a bend of
    +12.6 um at arc 41 um, turn 0, and none of 80 um, exit 0. The trace now says its inner
    end is a cut (the layer goes on inwards) and no bend is reported within a pitch of it.
    A bend of 40 um (within the window) on the same spiral is still found, whole, at turn 4
    (37 um measured: the running-median reference takes a little of it)."""
    deep = _spiral_with_a_bend(8.0, 0.15)
    trace = trace_spiral(deep, find_cell(deep), 10.0)
    assert find_bends(deep, 10.0, trace=trace).empty
    assert trace.cut_ends == (True, False)
    shallow = _spiral_with_a_bend(4.0, 0.05)
    trace = trace_spiral(shallow, find_cell(shallow), 10.0)
    assert trace.cut_ends == (False, False)
    bends = find_bends(shallow, 10.0, trace=trace)
    assert len(bends) == 1
    assert bends.turn.iloc[0] == 4
    assert bends.amplitude_um.iloc[0] == pytest.approx(40.0, abs=5.0)


def test_a_bend_at_the_edge_of_the_tracking_window_is_a_lower_bound() -> None:
    """A bend of 60 um on a 120 um pitch (0.5 pitch, past the tracker's 0.45): the path
    stays at its window's edge and the bend measured 51 um, as if that were its depth,
    exit 0. It is now marked ``depth_limited``; the 40 um bend (within the window) is
    not."""
    deep = find_bends(_spiral_with_a_bend(6.0, 0.05), 10.0)
    shallow = find_bends(_spiral_with_a_bend(4.0, 0.05), 10.0)
    assert len(deep) == 1 and bool(deep.depth_limited.iloc[0])
    assert deep.amplitude_um.iloc[0] < 60.0  # measured short of the true 60 um
    assert len(shallow) == 1 and not bool(shallow.depth_limited.iloc[0])


def _diagnosed(attenuation: np.ndarray):
    """The diagnosis of a cell whose attenuation map (1/mm) is ``attenuation`` on 10 um
    pixels (SAXS maps of noise)."""
    axis = (np.arange(attenuation.shape[0]) - (attenuation.shape[0] - 1) / 2) * 10.0
    maps = {
        "attenuation": Map(attenuation * 1e-3, "1/um"),
        "saxs_intensity": Map(np.random.default_rng(0).random(attenuation.shape), ""),
        "d_star_nm": Map(np.full(attenuation.shape, 12.0), "nm"),
    }
    return diagnose(MapSet(maps, axis, axis), DiagnoseOptions(), name="c", label="c")


def test_the_diagnosis_says_where_the_trace_was_cut() -> None:
    """The deep bend's cut trace (above) left half the roll out of the turns and arcs with
    no word in the diagnosis: its notes now say which end was cut and what that means."""
    found = _diagnosed(_spiral_with_a_bend(8.0, 0.15))
    assert found.bends.empty
    assert any("trace was cut at its inner end where the layer goes on" in n for n in found.notes)


def test_slices_whose_trace_was_cut_count_their_turns_from_the_layer_s_inner_end() -> None:
    """A volume whose middle slices hold the deep bend (their traces cut at the inner end
    on the bend's flank, 4.3 turns in) between slices with the 40 um one. Joined with the
    others as traced, their profiles counted turns and arcs from the cut, without a word;
    then they were left out (a stack cut alike in every slice lost all its bends). Now
    they are carried onto the uncut slices' layer: their displacement begins at the turn of
    the cut (the first traced sample's angle, 4 turns on: to 0.01 turn, the nearest-sample
    pairing's step) and at the arc the spiral has there (to two voxels: the trace's arc
    and the 10 um grid), and agrees with the uncut slices' where both are traced (a
    shared layer: within 1 um RMS). No bend is reported near the cut, none elsewhere but
    the 40 um one at turn 4, and no warning."""
    shallow, deep = _spiral_with_a_bend(4.0, 0.05), _spiral_with_a_bend(8.0, 0.15)
    volume = np.stack([shallow, deep, deep, shallow])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table, displacement, layers = slice_bends(volume, 10.0, np.arange(4))
    assert len(layers) == 4 and set(table.slice) == {0, 3} and set(table.turn) == {4}
    rows = displacement.displacement_um
    for k in (1, 2):
        first = int(np.flatnonzero(np.isfinite(rows[k]))[0])
        true_turn = 4 + np.mod(layers[k].winding_rad[0], 2 * np.pi) / (2 * np.pi)
        assert displacement.turn[first] == pytest.approx(true_turn, abs=0.01)
        true_arc = 10.0 * integrate.quad(_wound_arc_px, 0.0, 2 * np.pi * true_turn)[0]
        assert displacement.arc_um[first] == pytest.approx(true_arc, abs=20.0)
        both = np.isfinite(rows[0]) & np.isfinite(rows[k])
        assert np.sqrt(np.mean((rows[0][both] - rows[k][both]) ** 2)) < 1.0


def _wound_arc_px(winding_rad: float) -> float:
    """d(arc)/d(winding) (px per rad) of :func:`wound_layers`'s spiral (r = 30 + 12 turns)."""
    return float(np.hypot(30.0 + 12.0 * winding_rad / (2 * np.pi), 12.0 / (2 * np.pi)))


def test_a_slice_whose_layer_lies_elsewhere_is_left_out_of_the_3d_bends() -> None:
    """A cut slice whose layer does not lie on the uncut slices' (here turned by half a
    pitch: another cell's winding) cannot be matched to their turns: it is left out, with
    a warning naming it."""
    shallow, deep = _spiral_with_a_bend(4.0, 0.05), _spiral_with_a_bend(8.0, 0.15)
    volume = np.stack([shallow, np.rot90(deep, 2), shallow])
    with pytest.warns(UserWarning, match=r"1 of 3 slices left out of the 3D bends \(slices 1\)"):
        table, _, layers = slice_bends(volume, 10.0, np.arange(3))
    assert len(layers) == 2 and set(table.slice) == {0, 2}


def test_a_slice_not_traced_is_said_and_its_neighbours_bends_joined_across_it() -> None:
    """A slice whose tracer finds no wound layer (here: air only) was skipped without a
    word; it is named in a warning and recorded as a gap the 3D join steps over."""
    shallow = _spiral_with_a_bend(4.0, 0.05)
    volume = np.stack([shallow, np.full_like(shallow, shallow.min()), shallow])
    with pytest.warns(UserWarning, match=r"1 of 3 X-ray slices could not be traced \(slices 1\)"):
        table, _, layers = slice_bends(volume, 10.0, np.arange(3))
    assert len(layers) == 2 and table.attrs["gaps"] == [1]
    # none traced (an inverted volume gave an empty table, exit 0): refused
    with pytest.raises(ValueError, match="no wound layer found in any of the 3 X-ray slices"):
        slice_bends(volume.max() - volume, 10.0, np.arange(3))


@pytest.mark.parametrize(
    ("rows", "found"), [((205, 208), 1), ((230, 233), 0)], ids=["beside the bend", "through it"]
)
def test_a_band_of_rows_not_measured_draws_no_bend(rows: tuple[int, int], found: int) -> None:
    """Three NaN rows (a detector gap) across the spiral with the 40 um bend. Read as 0
    (black material): rows 205-207, where the turns' bottoms run along them, drew 10 false
    bends of 6-14 um and put the true one at turn 2 (the trace cut at the band); rows
    230-232, through the bend, 11 false ones and the bend read as +24 um, exit 0. Now the
    tracer follows the layer across the band (filled along the turns) and the samples near
    it are no measure of the layer (no bend reaches them, the reference is fitted without
    them): beside the bend it alone is found, at turn 4, as deep as on the intact map
    within 1 um (0.001 um measured: only the reference's samples change); through it, none.
    """
    image = _spiral_with_a_bend(4.0, 0.05)
    intact = find_bends(image, 10.0)
    image[rows[0] : rows[1]] = np.nan
    bends = find_bends(image, 10.0)
    assert len(bends) == found
    # the bend under the band is counted among the departures not reported (it was dropped
    # without a word; `jellyroll diagnose` says so in a note): 2 through it, 0 beside it
    assert (bends.attrs["unmeasured_runs"] > 0) == (found == 0)
    if found:
        assert bends.turn.iloc[0] == 4
        assert bends.amplitude_um.iloc[0] == pytest.approx(intact.amplitude_um.iloc[0], abs=1.0)


def test_the_diagnosis_traces_across_a_band_not_measured() -> None:
    """``jellyroll diagnose`` traced the collector on the attenuation map with NaN read as 0:
    three NaN rows (205-207, beside the 40 um bend) gave 11 bends, the true one at turn 2,
    exit 0. Now as :func:`find_bends` alone (above): the bend alone, at turn 4, as deep as
    on the intact map within 1 um."""
    image = _spiral_with_a_bend(4.0, 0.05)
    image[205:208] = np.nan
    found = _diagnosed(image)
    assert found.bends.turn.tolist() == [4]
    assert found.bends.amplitude_um.iloc[0] == pytest.approx(37.1, abs=1.0)


@pytest.mark.parametrize("pixel_size_um", [-10.0, 0.0, np.nan])
def test_find_bends_refuses_a_pixel_size_that_is_not_a_positive_length(
    pixel_size_um: float,
) -> None:
    """With a negative pixel size (a descending axis' signed step) find_bends returned no
    bends for a spiral with a bend of 40 um, exit 0. Refused, naming the function."""
    with pytest.raises(ValueError, match="find_bends: pixel_size_um must be a positive"):
        find_bends(_spiral_with_a_bend(4.0, 0.05), pixel_size_um)

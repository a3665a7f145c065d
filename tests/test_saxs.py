"""Tests of the d* (departure from power law) method, jellyroll.saxs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.special import erf

from jellyroll.phantom.patterns import SaxsModel, rg_for_dstar
from jellyroll.saxs import (
    FEATURELESS,
    REASONS,
    SHORT_SEGMENT,
    DStarResult,
    departure_dstar,
    departure_dstar_map,
    dstar_histogram,
)

# A linear q grid (A^-1) like an azimuthal integration gives, 500 points.
Q = np.linspace(0.005, 0.35, 500)


def beaucage(q: np.ndarray, rg: float, g: float = 100.0, b: float = 1e-3, p: float = 4.0):
    """Beaucage unified level: Guinier shoulder of radius of gyration rg (A) plus power law."""
    return g * np.exp(-(q**2) * rg**2 / 3.0) + b * (erf(q * rg / math.sqrt(6.0)) ** 3 / q) ** p


def study_window(n: int) -> tuple[int, int]:
    """Fit window [start, stop) of an n-point segment under the documented rounding rule."""
    return math.floor(0.3 * n + 0.5), n - math.floor(0.2 * n + 0.5)


def test_pure_power_law_is_featureless() -> None:
    q = np.linspace(0.01, 0.35, 320)
    r = departure_dstar(q, 5.0 * q**-3.5)
    assert not r.valid
    assert r.reason == REASONS[5]
    assert "featureless" in r.reason
    assert math.isnan(r.d_star_nm) and math.isnan(r.q_star)
    # An exact power law is fitted to rounding error (~1e-15 relative per log, 1e-10 is ample).
    assert r.slope == pytest.approx(3.5, rel=1e-10)
    assert r.amplitude == pytest.approx(5.0, rel=1e-10)


@pytest.mark.parametrize(("exponent", "word"), [(4.6, "> 4.3"), (2.2, "< 2.5")])
def test_slope_out_of_range_is_rejected(exponent: float, word: str) -> None:
    r = departure_dstar(Q, Q**-exponent)
    assert not r.valid
    assert r.reason == f"slope {exponent:.3g} {word}"
    assert math.isnan(r.d_star_nm)


def test_short_segment_is_rejected() -> None:
    base = beaucage(Q, 80.0)
    # Leave 149 points above 1e-9 at the high-q end: rejected; 150 points: accepted.
    for kept, ok in [(149, False), (150, True)]:
        intensity = base.copy()
        intensity[: Q.size - kept] = 1e-10
        r = departure_dstar(Q, intensity)
        assert (r.reason_code != 1) is ok
        if not ok:
            assert r.reason == "fewer than 150 points in the segment (149)"


def test_beaucage_departure_is_where_data_leave_the_fit() -> None:
    d_stars = []
    for rg in [50.0, 65.0, 80.0, 100.0, 120.0]:
        intensity = beaucage(Q, rg)
        r = departure_dstar(Q, intensity)
        assert r.valid, r.reason
        assert r.d_star_nm == pytest.approx(2 * math.pi / r.q_star / 10)

        # Independent check: polyfit on the window, then the 3 % test by hand.
        lo, hi = study_window(Q.size)
        assert r.fit_q_range == (Q[lo], Q[hi - 1])
        coef = np.polyfit(np.log(Q[lo:hi]), np.log(intensity[lo:hi]), 1)
        # Two least-squares algorithms agree to ~1e-12 on 250 well-conditioned points.
        assert -coef[0] == pytest.approx(r.slope, rel=1e-9)
        dev = np.abs(intensity / np.exp(np.polyval(coef, np.log(Q))) - 1)
        k = int(np.flatnonzero(Q == r.q_star)[0])
        assert dev[k] > 0.03
        assert np.all(dev[k + 1 : lo] <= 0.03)
        # The departure lies strictly below the window edge, so the walk is really exercised.
        assert k + 1 < lo
        d_stars.append(r.d_star_nm)
    assert np.all(np.diff(d_stars) > 0)


@pytest.mark.parametrize(
    ("qmax", "exponent", "b"),
    [
        (0.35, 3.6, 2e-2),  # matrix power law dominating the high-q end
        (0.45, 4.0, 5e-3),  # Porod-like q^-4 matrix term
    ],
)
def test_sasmodels_polydisperse_spheres(qmax: float, exponent: float, b: float) -> None:
    core = pytest.importorskip("sasmodels.core")
    direct = pytest.importorskip("sasmodels.direct_model")
    q = np.linspace(0.005, qmax, 500)
    kernel = core.load_model("sphere", dtype="double").make_kernel([q])
    radii = np.arange(30.0, 101.0, 10.0)  # A, i.e. structure sizes 6-20 nm
    d_stars = []
    for radius in radii:
        # Si domains (X-ray SLD ~20e-6 A^-2) in an FeSi2-like matrix (~38e-6 A^-2), 10 vol %,
        # Schulz polydispersity 0.3; I in cm^-1.
        spheres = direct.call_kernel(
            kernel,
            {
                "scale": 0.1,
                "background": 0.0,
                "sld": 20.0,
                "sld_solvent": 38.0,
                "radius": radius,
                "radius_pd": 0.3,
                "radius_pd_n": 35,
                "radius_pd_nsigma": 3.0,
                "radius_pd_type": "schulz",
            },
        )
        r = departure_dstar(q, spheres + b * q**-exponent)
        assert r.valid, (radius, r.reason)
        d_stars.append(r.d_star_nm)
    d = np.array(d_stars)
    size_nm = 2 * radii / 10
    assert np.all(np.diff(d) > 0)
    coef = np.polyfit(size_nm, d, 1)
    r2 = 1 - np.var(d - np.polyval(coef, size_nm)) / np.var(d)
    assert r2 >= 0.99
    # d* tracks the domain size: same order of magnitude as the diameter.
    assert 0.5 < coef[0] < 2.0


@settings(max_examples=40, deadline=None)
@given(
    rg=st.floats(50.0, 120.0),
    log_scale=st.floats(-12.0, 6.0),
)
@example(rg=80.0, log_scale=-9.0)
@example(rg=80.0, log_scale=-12.0)
def test_scale_invariance(rg: float, log_scale: float) -> None:
    """d* does not depend on the intensity's (arbitrary) units. Rule 1's cut was an
    absolute 1e-9: the profile (0.067-183) scaled by 1e-9 lost its high-q points, the fit
    window moved and d* read 11.19 nm for 9.64, exit 0; scaled by 1e-10 or less it had no
    value ("fewer than 150 points"). The cut is now relative to the profile's brightest
    point, and scales down to 1e-12 (a profile in cm^-1 written in units of 1e9) give
    the same q* exactly."""
    base = beaucage(Q, rg)
    scaled = base * 10.0**log_scale
    r0 = departure_dstar(Q, base)
    r1 = departure_dstar(Q, scaled)
    assert r0.reason_code == r1.reason_code
    # q* is a grid point: exactly equal unless a deviation sits within ~1e-13 of 3 %.
    assert r0.q_star == r1.q_star or (math.isnan(r0.q_star) and math.isnan(r1.q_star))
    # log(c I) = log c + log I up to rounding, so the slope moves by ~1e-13 at most.
    assert r1.slope == pytest.approx(r0.slope, rel=1e-9)


def _random_stack(seed: int, n_profiles: int) -> np.ndarray:
    """Profiles on Q covering every reason code: shoulders, noise, gaps, NaN, negative and
    tiny values, pure and out-of-range power laws."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_profiles, Q.size))
    for i in range(n_profiles):
        kind = rng.integers(6)
        if kind == 0:
            prof = Q ** -rng.uniform(2.0, 5.0)
        else:
            prof = beaucage(Q, rng.uniform(20, 150), b=10 ** rng.uniform(-4, -2))
            prof *= Q ** rng.uniform(-0.8, 0.8)
        prof *= 1 + rng.normal(0, rng.choice([0.0, 0.005, 0.03]), Q.size)
        prof *= 10 ** rng.uniform(-6, 3)
        if kind == 2:
            prof[rng.integers(0, Q.size, rng.integers(1, 6))] = np.nan
        if kind == 3:
            prof[rng.integers(0, Q.size, rng.integers(1, 6))] *= -1
        if kind == 4:
            prof[rng.integers(0, Q.size, rng.integers(1, 4))] = 1e-12
        if kind == 5:
            prof[: rng.integers(300, 420)] = 0.0
        out[i] = prof
    return out


def _assert_map_matches_scalar(q: np.ndarray, stack: np.ndarray) -> None:
    m = departure_dstar_map(q, stack)
    flat = stack.reshape(-1, q.size)
    for i, prof in enumerate(flat):
        r = departure_dstar(q, prof)
        idx = np.unravel_index(i, stack.shape[:-1])
        assert m.reason_code[idx] == r.reason_code
        assert m.at_window_edge[idx] == r.at_window_edge
        # Same compiled kernel on the same float64 values: bit-identical, NaN included.
        np.testing.assert_array_equal(
            [m.d_star_nm[idx], m.q_star[idx], m.slope[idx]], [r.d_star_nm, r.q_star, r.slope]
        )


def test_map_matches_scalar_seeded() -> None:
    stack = _random_stack(1234, 120).reshape(4, 30, Q.size)
    m = departure_dstar_map(Q, stack)
    assert m.d_star_nm.shape == (4, 30) and m.reason_code.dtype == np.int8
    assert set(np.unique(m.reason_code)) >= {0, 1, 3, 4, 5}  # the set exercises rejections
    _assert_map_matches_scalar(Q, stack)
    # float32 maps are read in place; float32 -> float64 is exact, so the scalar version on
    # the same float32 values still agrees bit for bit.
    with np.errstate(over="ignore"):
        _assert_map_matches_scalar(Q, stack.astype(np.float32))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), descending=st.booleans())
def test_map_matches_scalar_random(seed: int, descending: bool) -> None:
    q = Q[::-1] if descending else Q
    stack = _random_stack(seed, 12)
    _assert_map_matches_scalar(q, stack[:, ::-1] if descending else stack)


def test_a_departure_at_the_first_point_below_the_window_is_flagged() -> None:
    """Debye-Bueche profiles I = 1 / (1 + (xi q)^2)^2 of correlation length 2 and 5 nm bend
    all along the fit window: both depart at its first point below, d* 9.95 nm, which the
    single-profile result gave with nothing to tell it from a departure further down (the
    map flagged it). A profile q^-4 above q0 = 0.03 1/A and q^-2 below departs where
    (q0 / q)^2 exceeds 1.03, far below the window (0.064 1/A), and is not flagged."""
    q = np.linspace(0.005, 0.2, 400)
    for xi in (20.0, 50.0):
        result = departure_dstar(q, 1 / (1 + (xi * q) ** 2) ** 2)
        assert result.valid and result.at_window_edge
        assert result.d_star_nm == pytest.approx(9.948, abs=1e-3)
    kink = departure_dstar(q, np.where(q >= 0.03, q**-4.0, 0.03**-2 * q**-2.0))
    assert kink.valid and not kink.at_window_edge
    assert kink.d_star_nm == pytest.approx(2 * np.pi / q[q < 0.03 / np.sqrt(1.03)][-1] / 10)
    assert not departure_dstar(q, q**-4.0).at_window_edge  # featureless: no value, no flag


def test_descending_q_gives_same_result() -> None:
    intensity = beaucage(Q, 80.0)
    assert departure_dstar(Q[::-1], intensity[::-1]) == departure_dstar(Q, intensity)


def test_invalid_q_points_are_removed() -> None:
    intensity = beaucage(Q, 80.0)
    q_bad = np.concatenate([[0.0, -0.01, np.nan, np.inf], Q])
    i_bad = np.concatenate([[1.0, 1.0, 1.0, 1.0], intensity])
    assert departure_dstar(q_bad, i_bad) == departure_dstar(Q, intensity)


@pytest.mark.parametrize("bad", [np.nan, -1.0, 1e-10, np.inf, 0.0])
def test_bad_intensity_breaks_the_segment(bad: float) -> None:
    intensity = beaucage(Q, 80.0)
    intensity[30] = bad
    r = departure_dstar(Q, intensity)
    # The segment is now Q[31:], 469 points: the window follows it.
    lo, hi = study_window(469)
    assert r.fit_q_range == (Q[31 + lo], Q[31 + hi - 1])
    assert r.valid and r.q_star > Q[30]


def test_longest_segment_and_tie_goes_to_high_q() -> None:
    q = np.linspace(0.005, 0.35, 401)
    intensity = beaucage(q, 60.0)
    intensity[200] = np.nan  # two runs of 200 points: the high-q one wins
    r = departure_dstar(q, intensity)
    lo, hi = study_window(200)
    assert r.fit_q_range == (q[201 + lo], q[201 + hi - 1])
    intensity[150] = np.nan  # runs of 150, 49 and 200 points: the longest is at high q
    r = departure_dstar(q, intensity)
    assert r.fit_q_range[0] == q[201 + lo]
    intensity = beaucage(q, 60.0)
    intensity[250] = np.nan  # [0, 250) is the longest run, although at lower q
    r = departure_dstar(q, intensity)
    lo, hi = study_window(250)
    assert r.fit_q_range == (q[lo], q[hi - 1])


def test_all_invalid_and_empty() -> None:
    r = departure_dstar(Q, np.full(Q.size, np.nan))
    assert r.reason_code == 1 and not r.valid and math.isnan(r.amplitude)
    assert math.isnan(r.fit_q_range[0])
    m = departure_dstar_map(Q, np.zeros((0, Q.size)))
    assert m.d_star_nm.shape == (0,)


def test_parameters_are_used() -> None:
    intensity = beaucage(Q, 80.0)
    default = departure_dstar(Q, intensity)
    loose = departure_dstar(Q, intensity, tolerance=0.10)
    assert loose.q_star < default.q_star  # a looser tolerance departs further down
    assert departure_dstar(Q, intensity, max_slope=3.9).reason_code == 3
    assert departure_dstar(Q, intensity, min_points=501).reason_code == 1
    no_skip = departure_dstar(Q, intensity, skip_low_fraction=0.0, min_slope=0.0)
    assert no_skip.reason_code == 6
    with pytest.raises(ValueError):
        departure_dstar(Q, intensity, skip_low_fraction=0.6, skip_high_fraction=0.5)
    with pytest.raises(ValueError):
        departure_dstar(Q, intensity[:-1])


def test_result_types_and_histogram() -> None:
    r = departure_dstar(Q, beaucage(Q, 80.0))
    assert isinstance(r, DStarResult) and r.valid and r.reason is None
    counts, edges = dstar_histogram(np.array([[10.0, np.nan], [12.0, 12.5]]), bins=4)
    assert counts.sum() == 3 and edges.size == 5


@pytest.mark.parametrize(
    "q",
    [
        np.geomspace(0.005, 0.35, 500),  # log-spaced bins
        np.geomspace(0.005, 0.35, 500)[::-1],  # the same, descending
        # two grids merged: dense at low q (long detector distance), sparse at high q
        np.concatenate([np.linspace(0.005, 0.1, 400, endpoint=False), np.linspace(0.1, 0.35, 60)]),
    ],
)
def test_a_non_uniform_q_grid_gives_the_linear_grids_dstar(q: np.ndarray) -> None:
    """Rule 4's skips counted points: on a log grid the first 30 % of the points end at
    0.018 1/A, so the fit took in the shoulder and d* was 35.3 nm for every size (16.7 nm on
    the merged grid) against 6-15 nm on the study's linear grid. They now skip the same share
    of the q range, which is the same points on a linear grid."""
    for rg in [50.0, 80.0, 100.0]:  # A
        linear = departure_dstar(Q, 2e4 * np.exp(-((Q * rg) ** 2) / 3) + 2e-2 * Q**-3.6)
        found = departure_dstar(q, 2e4 * np.exp(-((q * rg) ** 2) / 3) + 2e-2 * q**-3.6)
        assert linear.valid and found.valid, (rg, found.reason)
        # q* is a grid point: the grids' steps near q* (0.0005-0.0007 1/A, 1-2 % of q*) move
        # d* by 0.05-0.2 nm; 0.3 nm allows two bins.
        assert found.d_star_nm == pytest.approx(linear.d_star_nm, abs=0.3)
        assert found.slope == pytest.approx(3.6, abs=0.05)  # the matrix law, not the shoulder


def test_a_fit_window_of_a_few_sparse_points_gives_no_value() -> None:
    """400 points up to 0.1 1/A merged with 3 at 0.2-0.35: counted in points the fit took the
    shoulder (d* 18.7 nm for an 11 nm profile); in q it holds the two points at 0.2 and
    0.25, too few to make the law (a uniform 150-point run's window holds 75)."""
    q = np.concatenate([np.linspace(0.005, 0.1, 400), [0.2, 0.25, 0.35]])
    intensity = 2e4 * np.exp(-((q * 80.0) ** 2) / 3) + 2e-2 * q**-3.6
    intensity[-3:] *= [1.05, 0.97, 1.0]  # a few % noise on the sparse points
    r = departure_dstar(q, intensity)
    assert r.reason_code == 2 and math.isnan(r.d_star_nm)
    assert math.isnan(departure_dstar_map(q, intensity[None]).d_star_nm[0])


def test_the_walk_to_low_q_does_not_cross_a_gap_in_the_q_axis() -> None:
    """Channels without a value are left off the q grid (``compute_maps`` gives them NaN q),
    and the rule-6 walk stepped over the gap they leave: a departure at 0.065 1/A inside a
    0.04 1/A gap was found at the first point below it, 0.045 1/A: d* 13.9 nm for 9.6 nm,
    exit 0. Walking across a gap of more than HOLE_STEPS steps now gives no value (code
    8); a gap of a few channels (3 steps) is bridged as before and gives the full axis's
    q*, to the grid step (the fit window loses 2 of 250 points: d* within 0.2 nm)."""
    intensity = beaucage(Q, 80.0)
    full = departure_dstar(Q, intensity)
    assert full.valid and full.d_star_nm == pytest.approx(9.64, abs=0.01)
    hole = np.abs(Q - full.q_star) < 0.02
    for q in (np.where(hole, np.nan, Q), Q[~hole]):
        i = intensity if q.size == Q.size else intensity[~hole]
        r = departure_dstar(q, i)
        assert r.reason_code == 8 and math.isnan(r.d_star_nm), r
        assert r.reason == REASONS[8] and math.isfinite(r.slope)
        m = departure_dstar_map(q, np.stack([i, i]))
        assert np.all(m.reason_code == 8) and np.isnan(m.d_star_nm).all()
    few = np.ones(Q.size, dtype=bool)
    k = int(np.flatnonzero(Q == full.fit_q_range[0])[0])
    few[k - 40 : k - 38] = False  # two channels missing between the window and q*
    bridged = departure_dstar(Q[few], intensity[few])
    assert bridged.valid and bridged.d_star_nm == pytest.approx(full.d_star_nm, abs=0.2)


def test_a_gap_split_by_one_channel_still_stops_the_walk() -> None:
    """Two gaps of 20 channels around one channel kept, across the departure: each gap was
    measured against the step beside it, the other gap, and the walk crossed the upper one,
    which holds the departure (q* 0.0652 1/A), to depart at the island: d* 10.18 nm for
    9.64, exit 0. Each gap is now measured against the smaller of the two steps on each
    side: no value, code 8."""
    intensity = beaucage(Q, 80.0)
    k = int(np.flatnonzero(Q == departure_dstar(Q, intensity).q_star)[0])
    keep = np.ones(Q.size, dtype=bool)
    keep[k - 25 : k - 5] = keep[k - 4 : k + 16] = False  # q* in the upper gap
    r = departure_dstar(Q[keep], intensity[keep])
    assert r.reason_code == 8 and math.isnan(r.d_star_nm), r


def test_a_departure_at_the_end_of_the_data_is_not_shown_to_last() -> None:
    """A power law whose lowest channel reads 0.2 of it (a bin at the range's edge that
    pixels cover in part, as the twin's strip detector's first bin): the study's rule
    departs there, d* = 2 pi / q_min; so did the lasting rule (the mean over one point),
    giving the tiny twin's weak voxels 75.8 nm, exit 0. The data end within the span a
    departure must last over, so it cannot be shown to last: no value (featureless), while
    a shoulder that starts higher keeps its d*."""
    q = np.linspace(0.008, 0.3, 500)
    edge = q**-3.7
    edge[0] *= 0.2
    assert departure_dstar(q, edge).q_star == q[0]  # the study's rule, unchanged
    held = departure_dstar(q, edge, sustain_fraction=0.1)
    assert held.reason_code == FEATURELESS and math.isnan(held.d_star_nm)
    shoulder = beaucage(Q, 80.0)
    shoulder[0] *= 0.2
    assert departure_dstar(Q, shoulder, sustain_fraction=0.1) == departure_dstar(Q, shoulder)


def test_a_departure_that_does_not_last_is_walked_past_and_noise_gives_no_value() -> None:
    """A Beaucage profile (Rg 80 A) with one point 5 % high halfway between the fit window
    and its shoulder: the study's single-point rule departs there (d* 7.26 nm for 9.64,
    exit 0), as the tiny twin's denoised voxels did at their noise excursions (map median
    12.34 nm for a true 14.08). With ``sustain_fraction`` a departure must last from q down
    to (1 - f) q: the walk passes the spike and finds the shoulder's q*, the clean profile's
    exactly; with an excursion every 8th point (more than 5 % of the walk) there is no
    value, code 9. Every noise-free profile, the Beaucage levels, the Debye-Bueche bends and
    a kink, keeps the study's d* exactly (bit-identical: the same kernel), in the map too."""
    intensity = beaucage(Q, 80.0)
    study = departure_dstar(Q, intensity)
    lo, _ = study_window(Q.size)
    k = int(np.flatnonzero(Q == study.q_star)[0])
    spiked = intensity.copy()
    spike = (k + lo) // 2
    spiked[spike] *= 1.05
    fooled = departure_dstar(Q, spiked)
    assert fooled.valid and fooled.q_star == Q[spike]  # the study's rule, unchanged
    assert fooled.d_star_nm == pytest.approx(7.257, abs=1e-3)  # for 9.644
    assert departure_dstar(Q, spiked, sustain_fraction=0.1) == study
    noisy = intensity.copy()
    noisy[k + 2 : lo : 8] *= 1.05  # 8 excursions in a walk of 63 points
    held = departure_dstar(Q, noisy, sustain_fraction=0.1)
    assert held.reason_code == 9 and held.reason == REASONS[9] and math.isnan(held.d_star_nm)
    assert math.isfinite(held.slope)
    in_map = departure_dstar_map(Q, np.stack([spiked, noisy, intensity]), sustain_fraction=0.1)
    assert in_map.reason_code.tolist() == [0, 9, 0]
    assert in_map.d_star_nm[0] == in_map.d_star_nm[2] == study.d_star_nm
    q = np.linspace(0.005, 0.2, 400)
    clean = [(Q, beaucage(Q, rg)) for rg in (50.0, 65.0, 80.0, 100.0, 120.0)]
    clean += [(q, 1 / (1 + (xi * q) ** 2) ** 2) for xi in (20.0, 50.0)]
    clean += [(q, np.where(q >= 0.03, q**-4.0, 0.03**-2 * q**-2.0))]
    for grid, profile in clean:
        plain = departure_dstar(grid, profile)
        assert plain.valid and departure_dstar(grid, profile, sustain_fraction=0.1) == plain
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="sustain_fraction"):
            departure_dstar(Q, intensity, sustain_fraction=bad)


@pytest.mark.parametrize("sustain", [0.0, 0.1])
def test_a_channel_without_a_value_that_cuts_the_high_q_end_gives_no_d_star(
    sustain: float,
) -> None:
    """One negative channel at 0.16 1/A of an axis to 0.3 (an unclipped reconstruction's
    weak channel): the study's longest segment then ends there, its fit window lies on the
    shoulder, and the twin's profile (true d* 11.8 nm) read 13.4 nm, valid; the axis
    reached 0.2 1/A, so the axis's guard passed it. Refused per profile (code 12) in both
    analyses, alike in the map; a cut above 0.2 1/A keeps d* within a q bin."""
    model = SaxsModel()
    q = np.linspace(0.002, 0.3, 600)
    rg = float(rg_for_dstar(11.8, 30.0, model))
    profile = model.power_law(q) + 30.0 * np.exp(-((q * rg) ** 2) / 3)
    for bad_q, valid in ((0.16, False), (0.2, False), (0.25, True)):
        cut = profile.copy()
        cut[np.argmin(np.abs(q - bad_q))] = -1e-6
        found = departure_dstar(q, cut, sustain_fraction=sustain)
        mapped = departure_dstar_map(q, cut[None], sustain_fraction=sustain)
        assert mapped.reason_code[0] == found.reason_code
        if valid:
            assert found.d_star_nm == pytest.approx(11.8, abs=0.25)
        else:
            assert found.reason_code == SHORT_SEGMENT and math.isnan(mapped.d_star_nm[0])

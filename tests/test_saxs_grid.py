"""Metamorphic tests of the SAXS analysis: the same smooth profile sampled on q axes that
differ only in offset, bin width, range or order gives the same d* and SAXS intensity,
within the method's resolution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from jellyroll.phantom.patterns import SaxsModel, model_dstar_nm, rg_for_dstar
from jellyroll.saxs import SAXS_Q_RANGE, departure_dstar, saxs_intensity_map

MODEL = SaxsModel()
RATIO = 100.0  # shoulder over power law at the model's reference q (0.1 A^-1)


def profile(q: np.ndarray, rg: float) -> np.ndarray:
    """Power law (q/0.1)^-3.7 plus a Guinier shoulder of radius of gyration rg (A)."""
    return MODEL.power_law(q) + RATIO * np.exp(-((q * rg) ** 2) / 3.0)


def bin_centres(q_min: float, n: int, offset: float, q_max: float = 0.30) -> np.ndarray:
    """Centres (A^-1) of n bins of [q_min, q_max] shifted by ``offset`` bins."""
    step = (q_max - q_min) / n
    edges = q_min + step * (np.arange(n + 1) + offset)
    return 0.5 * (edges[1:] + edges[:-1])


@pytest.mark.parametrize("n", [250, 500])
def test_saxs_intensity_does_not_move_with_the_axis_offset(n: int) -> None:
    """The trapezoid over the bins whose centre lies in 0.025-0.1 A^-1 missed up to a bin
    at each edge: on 250 bins from 0.005 A^-1 it gave 0.887 to 0.995 of the integral as
    the axis's offset moved by a bin (0.944 to 1.000 on 500 bins), exit 0."""
    rg = float(rg_for_dstar(12.0, RATIO, MODEL))
    exact = quad(lambda x: profile(np.array([x]), rg)[0], *SAXS_Q_RANGE, limit=200)[0]
    for q_min in (0.005, 0.012):
        for offset in (0.0, 0.25, 0.5, 0.75):
            q = bin_centres(q_min, n, offset)
            found = saxs_intensity_map(q, profile(q, rg)[None])[0]
            # Linear interpolation of a convex profile between bins: +0.2 % at 250 bins.
            assert found == pytest.approx(exact, rel=0.005)
            descending = saxs_intensity_map(q[::-1], profile(q, rg)[None, ::-1])[0]
            assert descending == pytest.approx(found, rel=1e-12)


@pytest.mark.parametrize("target_nm", [10.0, 15.0])
def test_dstar_stays_within_a_bin_of_the_model_on_any_grid(target_nm: float) -> None:
    """d* is the first bin past 3 %: on any offset, bin width and q_min of the axis it lies
    between the model's grid-free d* and the d* of one bin further down, never more."""
    rg = float(rg_for_dstar(target_nm, RATIO, MODEL))
    truth = float(model_dstar_nm(RATIO, rg, MODEL))
    q_true = 2.0 * math.pi / (10.0 * truth)
    for n in (250, 1000):
        for q_min in (0.005, 0.012):
            for offset in (0.0, 0.5):
                q = bin_centres(q_min, n, offset)
                step = q[1] - q[0]
                for scale in (1e-6, 1.0, 1e6):
                    r = departure_dstar(q[::-1], scale * profile(q, rg)[::-1])
                    assert r.valid
                    assert q_true - step - 1e-12 <= r.q_star <= q_true + 1e-12


def test_an_exact_power_law_has_no_value_at_any_scale() -> None:
    q = bin_centres(0.005, 500, 0.3)
    for scale in (1e-6, 1.0, 1e6):
        r = departure_dstar(q, scale * MODEL.power_law(q))
        assert not r.valid and math.isnan(r.d_star_nm) and r.reason_code == 5


def test_an_axis_that_starts_inside_the_window_says_so() -> None:
    """A SAXS axis whose first bin centre lies less than a bin above 0.025 A^-1 (from
    0.0262, bins of 0.0014) is integrated from there: 0.87 of the integral of 0.025-0.1 on
    a q^-3.7 law, and no note said the window was cut (the one-bin allowance of the
    refusal hid it), exit 0. The note now names the window whenever the axis's ends cut
    it; the 0.87 is the interpolation's (0.3 % on this axis) times the part held."""
    from jellyroll.phases import partly_covered

    rg = float(rg_for_dstar(12.0, RATIO, MODEL))
    exact = quad(lambda x: profile(np.array([x]), rg)[0], *SAXS_Q_RANGE, limit=200)[0]
    held = quad(lambda x: profile(np.array([x]), rg)[0], 0.0262, SAXS_Q_RANGE[1], limit=200)[0]
    q = np.arange(0.0262, 0.30, 0.0014)
    found = saxs_intensity_map(q, profile(q, rg)[None])[0]
    assert found == pytest.approx(held, rel=0.005) and found < 0.9 * exact
    note = partly_covered(q, {"saxs": SAXS_Q_RANGE})
    assert note is not None and "saxs [0.025, 0.1] 1.6% short" in note
    assert partly_covered(np.arange(0.0245, 0.30, 0.0014), {"saxs": SAXS_Q_RANGE}) is None

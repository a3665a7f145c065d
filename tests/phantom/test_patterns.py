"""Scattering patterns of the twin: lines at their lattice positions, SAXS laws."""

from __future__ import annotations

import numpy as np
import pytest

from jellyroll.phantom.components import COMPONENTS
from jellyroll.phantom.patterns import (
    DEPARTURE_TOLERANCE,
    SaxsModel,
    cubic_lines,
    model_dstar_nm,
    rg_for_dstar,
    shoulder_basis,
    waxs_basis,
    waxs_pattern,
)
from jellyroll.saxs import departure_dstar

Q = np.linspace(0.8, 5.2, 8801)  # 0.0005 A^-1 steps: peak positions resolved to 1e-3

# SPEC section 5 positions (A^-1)
STRONGEST_LINE = {
    "graphite_poor": 2 * np.pi / 3.354,
    "lic12": 2 * np.pi / 3.51,
    "lic6": 2 * np.pi / 3.70,
    "cu": 2 * np.pi * np.sqrt(3) / 3.615,
    "al": 2 * np.pi * np.sqrt(3) / 4.049,
}
TABLE1 = {  # SPEC Table 1 windows (A^-1)
    "nmc_lithiated": (4.57, 4.62),
    "nmc_delithiated": (4.45, 4.50),
    "lic6": (1.67, 1.73),
    "lic12": (1.78, 1.82),
    "graphite_poor": (1.82, 1.90),
}


@pytest.mark.parametrize(("component", "q_line"), STRONGEST_LINE.items())
def test_strongest_line_at_lattice_position(component: str, q_line: float) -> None:
    pattern = waxs_pattern(component, Q)
    assert Q[np.argmax(pattern)] == pytest.approx(q_line, abs=1e-3)


def test_cubic_lines_match_ceo2_reference() -> None:
    """CeO2 (a = 5.4116 A) (111) at 2 pi sqrt(3) / a = 2.0110 A^-1."""
    assert cubic_lines(5.4116, [(1, 1, 1)])[0] == pytest.approx(2.0110, abs=1e-4)


@pytest.mark.parametrize(("phase", "window"), TABLE1.items())
def test_each_table1_window_holds_its_own_line(phase: str, window: tuple[float, float]) -> None:
    """Inside a window the phase's line peaks; sharp lines of other crystalline phases
    reach less than 10 % of it (broad halos are removed by the linear background)."""
    inside = (Q >= window[0]) & (Q <= window[1])
    own = waxs_pattern(phase, Q)
    assert Q[inside][np.argmax(own[inside])] == pytest.approx(np.mean(window), abs=0.03)
    for other in ("lic6", "lic12", "graphite_poor", "nmc_lithiated", "nmc_delithiated"):
        if other == phase:
            continue
        foreign = waxs_pattern(other, Q)[inside]
        # the pseudo-Voigt tail of a neighbour must not look like this phase
        assert foreign.max() < 0.1 * own[inside].max(), other


def test_waxs_basis_rows_follow_component_order() -> None:
    basis = waxs_basis(Q)
    assert basis.shape == (len(COMPONENTS), Q.size)
    assert np.array_equal(basis[COMPONENTS.index("cu")], waxs_pattern("cu", Q))


def test_power_law_without_shoulder_has_no_dstar() -> None:
    """A delithiated pixel is a sum of laws with one exponent: a pure power law."""
    q = np.linspace(0.008, 0.3, 300)
    model = SaxsModel()
    curve = np.ones(len(COMPONENTS)) @ model.porod_basis(q)
    result = departure_dstar(q, curve)
    assert not result.valid
    assert result.slope == pytest.approx(model.exponent, abs=1e-6)


def test_shoulder_basis_reproduces_shoulders() -> None:
    """The low-rank expansion is accurate to 1e-4 of the peak, far below the 3 % departure
    tolerance, so the twin's d* is not affected by the truncation."""
    q = np.linspace(0.008, 0.3, 300)
    model = SaxsModel()
    basis = shoulder_basis(model, q)
    rg = np.array([23.0, 51.7, 88.8, 140.2])
    approx = basis.coefficients(rg) @ basis.basis
    exact = model.shoulder(q, rg)
    assert np.abs(approx - exact).max() <= 1e-4 * exact.max()


def test_model_dstar_is_the_largest_three_percent_departure() -> None:
    """The closed form (Lambert W) against the model's shoulder/power-law ratio on a fine q
    grid: 3 % at q*, below 3 % everywhere above it; NaN when the ratio never reaches 3 %."""
    model = SaxsModel()
    ratio = np.array([1.5, 2.0, 12.0, 47.0, 60.0, 0.5])
    rg = np.array([40.0, 43.0, 65.0, 74.0, 100.0, 40.0])
    d_star = model_dstar_nm(ratio, rg, model)
    assert np.isnan(d_star[-1])
    q = np.linspace(0.005, 0.5, 200001)
    for r, g, d in zip(ratio[:-1], rg[:-1], d_star[:-1], strict=True):
        share = r * (q / model.reference_q) ** model.exponent * np.exp(-((q * g) ** 2) / 3)
        q_star = 2 * np.pi / (10 * d)
        assert np.interp(q_star, q, share) == pytest.approx(DEPARTURE_TOLERANCE, rel=1e-6)
        assert share[q > q_star * (1 + 1e-6)].max() < DEPARTURE_TOLERANCE
    np.testing.assert_allclose(rg_for_dstar(d_star[:-1], ratio[:-1], model), rg[:-1])

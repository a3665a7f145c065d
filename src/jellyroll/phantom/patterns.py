"""1D scattering patterns of the twin's components: WAXS Bragg lines and SAXS laws.

WAXS: pseudo-Voigt peaks at the positions of SPEC section 5 (q = 2 pi / d, A^-1), broad
amorphous halos for liquids, polymers, amorphous Si and carbon. Every Table 1 window holds
only its own phase's line. SAXS: a q^-P Porod-like law shared by all components (so a
delithiated pixel is a pure power law and has no d*, as in the study) plus, for lithiated
silicon, a Guinier shoulder of radius of gyration Rg whose departure from the power law
gives d* (SPEC section 3). The twin's true d* follows from this model alone
(:func:`model_dstar_nm`), never from the analysis it is meant to check.

Intensities are per unit volume fraction per um of path (arbitrary but consistent units).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

from jellyroll.conventions import pseudo_voigt
from jellyroll.phantom.components import COMPONENTS


def cubic_lines(a_A: float, hkls: list[tuple[int, int, int]]) -> list[float]:
    """Line positions q = 2 pi sqrt(h^2+k^2+l^2) / a (A^-1) of a cubic lattice."""
    return [2 * np.pi * np.sqrt(h * h + k * k + m * m) / a_A for h, k, m in hkls]


FCC = [(1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1)]
BCC = [(1, 1, 0), (2, 0, 0), (2, 1, 1)]


@dataclass(frozen=True)
class Peak:
    """One diffraction line or halo: position q (A^-1), relative height, FWHM (A^-1).

    ``fwhm`` None means the instrument resolution of the pattern model.
    """

    q: float
    height: float
    fwhm: float | None = None


def _lines(qs: list[float], heights: list[float]) -> list[Peak]:
    return [Peak(q, h) for q, h in zip(qs, heights, strict=True)]


WAXS_PEAKS: dict[str, list[Peak]] = {
    "steel": _lines(cubic_lines(2.8665, BCC), [1.0, 0.2, 0.35]),  # ferrite; the housing ring
    "cu": _lines(cubic_lines(3.615, FCC), [1.0, 0.46, 0.2, 0.17]),
    "al": _lines(cubic_lines(4.049, FCC), [1.0, 0.47, 0.22, 0.24]),
    "separator": [  # isotactic polypropylene lines + amorphous halo
        Peak(1.003, 1.0, 0.05),
        Peak(1.198, 0.7, 0.05),
        Peak(1.317, 0.6, 0.05),
        Peak(1.25, 0.4, 0.45),
    ],
    "electrolyte": [Peak(1.55, 0.35, 0.6), Peak(2.95, 0.12, 0.8)],  # liquid carbonate halos
    "binder_carbon": [Peak(1.75, 0.25, 0.55), Peak(2.95, 0.06, 0.4)],  # turbostratic carbon
    "nmc_lithiated": _lines([2 * np.pi / 4.74, 2.575, 3.08, 4.595], [1.0, 0.3, 0.5, 0.35]),
    "nmc_delithiated": _lines([2 * np.pi / 4.83, 2.56, 3.06, 4.475], [1.0, 0.3, 0.5, 0.35]),
    "lic6": _lines([2 * np.pi / 3.70, 2 * 2 * np.pi / 3.70], [1.0, 0.08]),
    "lic12": _lines([2 * np.pi / 3.51, 2 * 2 * np.pi / 3.51], [1.0, 0.08]),
    "graphite_poor": _lines(
        [2 * np.pi / 3.354, 2 * np.pi / 2.13, 2 * np.pi / 2.03, 2 * 2 * np.pi / 3.354],
        [1.0, 0.03, 0.05, 0.06],
    ),
    "si": [Peak(2.0, 0.3, 0.35), Peak(3.55, 0.15, 0.5)],  # amorphous silicon halos
    "lisi": [Peak(2.4, 0.25, 0.45), Peak(4.0, 0.08, 0.6)],  # amorphous Li15Si4-like
    "fesi2": _lines([2 * np.pi / 2.98, 2 * np.pi / 2.48, 2 * np.pi / 1.56], [1.0, 0.4, 0.3]),
}
"""Lines of each component (q in A^-1). Cu, Al, ferrite and CeO2-like cubic lines follow
from their lattice constants (SPEC section 5); graphite (002) d = 3.354 A, LiC12 3.51 A,
LiC6 3.70 A; NMC622 (003) and the (113)/(110) group inside the Table 1 windows."""

WAXS_SCALE: dict[str, float] = {
    "steel": 3.0,
    "cu": 3.0,
    "al": 1.5,
    "separator": 0.5,
    "electrolyte": 0.3,
    "binder_carbon": 0.5,
    "nmc_lithiated": 2.0,
    "nmc_delithiated": 2.0,
    "lic6": 2.5,
    "lic12": 2.5,
    "graphite_poor": 2.5,
    "si": 0.6,
    "lisi": 0.6,
    "fesi2": 1.5,
}
"""Scattering power per unit volume fraction (relative units)."""


def waxs_pattern(component: str, q: np.ndarray, fwhm: float = 0.025) -> np.ndarray:
    """WAXS pattern of one component per unit fraction per um on ``q`` (A^-1)."""
    q = np.asarray(q, dtype=np.float64)
    out = np.zeros_like(q)
    for peak in WAXS_PEAKS[component]:
        out += peak.height * pseudo_voigt(q, peak.q, peak.fwhm or fwhm)
    return WAXS_SCALE[component] * out


def waxs_basis(q: np.ndarray, fwhm: float = 0.025) -> np.ndarray:
    """(n_components, n_q) WAXS patterns in :data:`COMPONENTS` order."""
    return np.stack([waxs_pattern(c, q, fwhm) for c in COMPONENTS])


@dataclass(frozen=True)
class SaxsModel:
    """SAXS of the cell: a shared power law plus the silicon Guinier shoulder.

    I(q) = sum_c f_c K_c q^-P + lithiated-Si amount * G exp(-q^2 Rg^2 / 3), with q in A^-1.
    ``porod`` constants K_c are per unit volume fraction; silicon dominates them.
    """

    exponent: float = 3.7
    guinier_height: float = 100.0
    reference_q: float = 0.1
    porod: tuple[tuple[str, float], ...] = (
        ("si", 1.0),
        ("lisi", 1.6),
        ("fesi2", 0.25),
        ("lic6", 0.03),
        ("lic12", 0.03),
        ("graphite_poor", 0.03),
        ("binder_carbon", 0.05),
        ("nmc_lithiated", 0.02),
        ("nmc_delithiated", 0.02),
        ("cu", 0.005),
        ("al", 0.005),
        ("steel", 0.005),
        ("separator", 0.01),
    )

    def power_law(self, q: np.ndarray) -> np.ndarray:
        """Shared power law, 1 at ``reference_q``."""
        return (np.asarray(q, dtype=np.float64) / self.reference_q) ** (-self.exponent)

    def porod_basis(self, q: np.ndarray) -> np.ndarray:
        """(n_components, n_q) power-law part per unit fraction, :data:`COMPONENTS` order."""
        constants = dict(self.porod)
        law = self.power_law(q)
        return np.stack([constants.get(c, 0.0) * law for c in COMPONENTS])

    def shoulder(self, q: np.ndarray, rg_A: float | np.ndarray) -> np.ndarray:
        """Guinier shoulder per unit lithiated-Si amount, shape (..., n_q)."""
        rg = np.asarray(rg_A, dtype=np.float64)[..., None]
        return self.guinier_height * np.exp(-((np.asarray(q) * rg) ** 2) / 3.0)


DEPARTURE_TOLERANCE = 0.03
"""Relative departure from the power law that places q* (SPEC section 3, rule 6)."""


def model_dstar_nm(
    shoulder_ratio: np.ndarray,
    rg_A: np.ndarray,
    model: SaxsModel,
    tolerance: float = DEPARTURE_TOLERANCE,
) -> np.ndarray:
    """True d* (nm) of the model curve P (q/q0)^-x + P r exp(-q^2 Rg^2 / 3), shape of inputs.

    SPEC section 3's definition applied to the noise-free model, whose power-law part is
    known exactly: walking from high q towards low q, q* is the first q where the curve
    departs from its power law by ``tolerance``, i.e. the largest root of
    h(q) = r (q/q0)^x exp(-q^2 Rg^2 / 3) = tolerance. With u = q^2 Rg^2 / 3 and a = x / 2
    this is u e^(-u/a) = e^(C/a), C = log(tolerance / r) + a log((Rg q0)^2 / 3), solved by
    the W_-1 branch of the Lambert function (the root beyond h's maximum at u = a).
    ``shoulder_ratio`` r is the shoulder over the power law at ``model.reference_q`` q0
    (both per unit volume), ``rg_A`` the radius of gyration (A). NaN where h never reaches
    ``tolerance`` (no shoulder or too weak a one): the study's "no value".
    """
    r = np.asarray(shoulder_ratio, dtype=np.float64)
    rg = np.asarray(rg_A, dtype=np.float64)
    a = 0.5 * model.exponent
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.log(tolerance / r) + a * np.log((rg * model.reference_q) ** 2 / 3.0)
        z = -np.exp(c / a) / a
        reached = np.isfinite(z) & (z >= -1.0 / np.e) & (rg > 0)
        u = -a * lambertw(np.where(reached, z, -0.5 / np.e), k=-1).real
        q_star = np.sqrt(3.0 * u) / rg
    return np.where(reached, 2.0 * np.pi / q_star / 10.0, np.nan)


def rg_for_dstar(
    d_star_nm: np.ndarray,
    shoulder_ratio: np.ndarray,
    model: SaxsModel,
    tolerance: float = DEPARTURE_TOLERANCE,
) -> np.ndarray:
    """Radius of gyration (A) whose shoulder puts the model's d* at ``d_star_nm`` (nm).

    The inverse of :func:`model_dstar_nm` at fixed ``shoulder_ratio``: with q* = 2 pi / d*,
    Rg^2 = 3 (log(r / tolerance) + x log(q* / q0)) / q*^2. NaN where the target cannot be
    the largest root (the shoulder is too weak to depart by ``tolerance`` that far out)
    or is NaN.
    """
    q_star = 2.0 * np.pi / (10.0 * np.asarray(d_star_nm, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.log(np.asarray(shoulder_ratio, dtype=np.float64) / tolerance) + (
            model.exponent * np.log(q_star / model.reference_q)
        )
        rg = np.sqrt(3.0 * u) / q_star
    return np.where(u >= 0.5 * model.exponent, rg, np.nan)


def patterns_from_maps(
    values: np.ndarray, names: Sequence[str], basis: np.ndarray, *, attenuate: bool = False
) -> np.ndarray:
    """Patterns (..., n_q), float32, of projection-map values ``values`` (..., n_maps).

    ``names`` (n_maps,) name the maps, one of them ``"mu"`` (X-ray attenuation); ``basis``
    (n_maps - 1, n_q) is the pattern per unit of every other map, in map order. Values are
    per-pixel maps or their line integrals along rays; with ``attenuate`` (line integrals
    only) the patterns are times the ray's transmission exp(-mu).
    """
    mu = list(names).index("mu")
    patterns = np.delete(values, mu, axis=-1) @ basis.astype(np.float32)
    if attenuate:
        patterns *= np.exp(-values[..., mu : mu + 1])
    return patterns


@dataclass(frozen=True)
class ShoulderBasis:
    """Low-rank expansion of the silicon shoulder over a range of Rg.

    shoulder(q; Rg) ~= coefficients(Rg) @ basis, with coefficients interpolated linearly
    in Rg from a fine table. Projections of the twin use the ``rank`` coefficient maps
    instead of one map per Rg value. The expansion is within ``relative_tolerance`` of the
    exact shoulder, which moves the 3 % departure point by far less than a q bin, so the
    twin's true d* (:func:`model_dstar_nm`, on the exact shoulder) describes these curves.
    """

    rg_grid_A: np.ndarray  # (n_rg,)
    coefficient_table: np.ndarray  # (n_rg, rank)
    basis: np.ndarray  # (rank, n_q)

    @property
    def rank(self) -> int:
        return self.basis.shape[0]

    @property
    def rg_range_A(self) -> tuple[float, float]:
        """Smallest and largest Rg (A) of the table; coefficients are clamped to them."""
        return float(self.rg_grid_A[0]), float(self.rg_grid_A[-1])

    def coefficients(self, rg_A: np.ndarray) -> np.ndarray:
        """(..., rank) expansion coefficients for radii of gyration ``rg_A`` (A)."""
        rg = np.asarray(rg_A, dtype=np.float64)
        return np.stack(
            [np.interp(rg, self.rg_grid_A, col) for col in self.coefficient_table.T], axis=-1
        )


def shoulder_basis(
    model: SaxsModel,
    q: np.ndarray,
    rg_range_A: tuple[float, float] = (20.0, 160.0),
    n_rg: int = 561,
    relative_tolerance: float = 1e-5,
) -> ShoulderBasis:
    """SVD of shoulders on a fine Rg grid, truncated at ``relative_tolerance`` (Frobenius)."""
    rg_grid = np.linspace(*rg_range_A, n_rg)
    curves = model.shoulder(np.asarray(q, dtype=np.float64), rg_grid)
    u, s, vt = np.linalg.svd(curves, full_matrices=False)
    residual = np.sqrt(np.cumsum((s**2)[::-1])[::-1]) / np.sqrt(np.sum(s**2))
    rank = int(np.searchsorted(-residual, -relative_tolerance)) or 1
    return ShoulderBasis(rg_grid, u[:, :rank] * s[:rank], vt[:rank])

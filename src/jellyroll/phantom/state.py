"""Electrochemical state of the twin: component fractions, lithiation and true d* per pixel.

A state is a state of health (``fresh`` or ``aged``) and a state of charge ``soc`` in 0..1
(discharged 0, charged 1; operando frames in between). SPEC section 4 sets the behaviour:
fresh and charged is mostly LiC6, aged and charged LiC12 nearly everywhere (lithium
inventory loss); agglomerates and bent (damaged) zones hold more silicon, barely breathe
(d* plateaus at 10-11 nm) and the damaged zone's graphite stays poorly lithiated in a
shrinking elliptical core with a LiC12 rim, lithiating late from its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from jellyroll.phantom.components import COMPONENTS
from jellyroll.phantom.geometry import Raster
from jellyroll.phantom.parameters import AgglomerateParameters, Health

PRESETS: dict[str, tuple[Health, float]] = {
    "fresh_discharged": ("fresh", 0.0),
    "fresh_charged": ("fresh", 1.0),
    "aged_discharged": ("aged", 0.0),
    "aged_charged": ("aged", 1.0),
}
"""Named states: (state of health, state of charge)."""

_SILICON = "silicon"  # placeholder split into si / lisi by the silicon lithiation
_ANODE_SILICON = 0.06
"""Silicon volume fraction of the regular anode coating."""


def region_composition(silicon_enrichment: float) -> dict[str, dict[str, float]]:
    """Volume fractions of the components in each region (the rest of a region is empty pores).

    Anode: Si/FeSi2/graphite composite, ~32 % porosity; agglomerates hold
    ``silicon_enrichment`` x the anode's silicon fraction; damaged zones are compacted (no
    porosity left, SPEC section 4).
    """
    return {
        "casing": {"steel": 1.0},
        "separator": {"separator": 0.55, "electrolyte": 0.45},
        "cathode": {"nmc": 0.62, "binder_carbon": 0.10, "electrolyte": 0.28},
        "al": {"al": 1.0},
        "cu": {"cu": 1.0},
        "anode": {"graphite": 0.52, _SILICON: _ANODE_SILICON, "fesi2": 0.03,
                  "binder_carbon": 0.07, "electrolyte": 0.32},
        "agglomerate": {"graphite": 0.25, _SILICON: _ANODE_SILICON * silicon_enrichment,
                        "fesi2": 0.15, "binder_carbon": 0.05, "electrolyte": 0.25},
        "damage": {"graphite": 0.64, _SILICON: 0.13, "fesi2": 0.06, "binder_carbon": 0.10,
                   "electrolyte": 0.03},
    }  # fmt: skip


ANODE_REGIONS = ("anode", "agglomerate", "damage")


@dataclass(frozen=True)
class Behaviour:
    """How a state of health responds to charge (fractions and nm)."""

    graphite_x_max: float  # x in LixC6 of regular graphite when charged
    nmc_lithiated_max: float
    nmc_swing: float
    si_lithiation: tuple[float, float]  # regular: (at soc 0, increase to soc 1)
    defect_si_lithiation: tuple[float, float]
    dstar_regular_nm: tuple[float, float]  # (at soc 0, increase to soc 1)
    dstar_defect_nm: float


BEHAVIOUR: dict[str, Behaviour] = {
    "fresh": Behaviour(0.95, 0.98, 0.93, (0.0, 0.9), (0.25, 0.08), (9.0, 2.8), 10.4),
    "aged": Behaviour(0.55, 0.88, 0.73, (0.15, 0.6), (0.3, 0.05), (12.8, 1.3), 10.8),
}
"""Fresh charged: mostly LiC6, d* ~11.8 nm; aged: LiC12 when charged, d* 12.8 -> 14.1 nm;
defects: d* 10-11 nm at every state (SPEC sections 3 and 4)."""

DEFECT_LAG_SOC = 0.35
"""Fraction of the charge before a damaged zone starts to lithiate from its neighbours."""
DAMAGE_CORE_RADIUS_CHARGED = 0.55
"""Normalised radius of the poorly lithiated core of a damaged zone at the end of charge."""


@dataclass
class CellState:
    """Per-pixel truth of one slice in one state; arrays are (ny, nx).

    ``fractions`` holds one volume-fraction map per component of :data:`COMPONENTS`;
    ``silicon`` the silicon volume fraction (si + lisi), ``si_lithiation`` lisi / silicon,
    ``graphite_x`` the local x of LixC6, ``dstar_target_nm`` the d* the shoulder was made
    for (NaN where there is no shoulder).
    """

    health: Health
    soc: float
    fractions: dict[str, np.ndarray]
    silicon: np.ndarray
    si_lithiation: np.ndarray
    graphite_x: np.ndarray
    dstar_target_nm: np.ndarray
    anode_mask: np.ndarray

    def graphite_label(self) -> np.ndarray:
        """0 = LiC6, 1 = LiC12, 2 = poorly lithiated (argmax), -1 where no graphite."""
        stack = np.stack([self.fractions[c] for c in ("lic6", "lic12", "graphite_poor")])
        return np.where(stack.sum(axis=0) > 1e-3, stack.argmax(axis=0), -1).astype(np.int8)

    def nmc_label(self) -> np.ndarray:
        """0 = lithiated, 1 = delithiated (argmax), -1 where no NMC."""
        stack = np.stack([self.fractions[c] for c in ("nmc_lithiated", "nmc_delithiated")])
        return np.where(stack.sum(axis=0) > 1e-3, stack.argmax(axis=0), -1).astype(np.int8)


def smooth_noise(shape: tuple[int, ...], correlation_px: float, rng: np.random.Generator):
    """Gaussian random field of unit standard deviation and given correlation length (px)."""
    field_ = ndimage.gaussian_filter(rng.normal(size=shape), correlation_px, mode="wrap")
    return (field_ / max(field_.std(), 1e-12)).astype(np.float32)


def graphite_phase_fractions(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lever-rule split of graphite with local Li content x (LixC6) into phases.

    Two-phase coexistence between dilute graphite (x <= 0.1), stage 2 LiC12 (x = 0.5) and
    stage 1 LiC6 (x = 1). Returns (lic6, lic12, graphite_poor) fractions summing to 1.
    """
    x = np.clip(x, 0.0, 1.0)
    lic6 = np.clip((x - 0.5) / 0.5, 0.0, 1.0)
    lic12_low = np.clip((x - 0.1) / 0.4, 0.0, 1.0)
    lic12 = np.where(x > 0.5, 1.0 - lic6, lic12_low)
    poor = np.where(x > 0.5, 0.0, 1.0 - lic12_low)
    return lic6.astype(np.float32), lic12.astype(np.float32), poor.astype(np.float32)


def defect_lag(soc: float) -> float:
    """Lithiation progress (0..1) of a damaged zone at state of charge ``soc``: nothing before
    :data:`DEFECT_LAG_SOC`, then linear to the end of charge."""
    return float(np.clip((soc - DEFECT_LAG_SOC) / (1.0 - DEFECT_LAG_SOC), 0.0, 1.0))


def damage_core(raster: Raster, soc: float) -> np.ndarray:
    """(ny, nx) bool: pixels of a damaged zone inside its poorly lithiated core at ``soc``.

    The core is the ellipse of normalised radius 1 (the whole zone) until the zone starts
    to lithiate, shrinking to :data:`DAMAGE_CORE_RADIUS_CHARGED` at the end of charge.
    """
    core_radius = 1.0 - (1.0 - DAMAGE_CORE_RADIUS_CHARGED) * defect_lag(soc)
    return np.nan_to_num(raster.damage_radius, nan=2.0) < core_radius


def cell_state(
    raster: Raster,
    health: Health,
    soc: float,
    *,
    seed: int = 0,
    silicon_variation: float = 0.12,
    pixel_correlation_um: float = 60.0,
    silicon_enrichment: float = AgglomerateParameters().silicon_enrichment,
) -> CellState:
    """Per-pixel component fractions and lithiation of a rasterised slice in one state.

    The random textures (silicon content, local lithiation, d*) depend only on ``seed``
    and the grid, so the same cell in different states differs only by its state.
    ``silicon_enrichment`` is the cell's
    :attr:`~jellyroll.phantom.parameters.AgglomerateParameters.silicon_enrichment`.
    """
    if not 0.0 <= soc <= 1.0:
        raise ValueError(f"state of charge must be within 0..1, got {soc}")
    behaviour = BEHAVIOUR[health]
    rng = np.random.default_rng(seed + 7919)
    shape = raster.shape
    corr_px = max(pixel_correlation_um / raster.pixel_size_um, 0.5)
    si_texture = 1.0 + silicon_variation * smooth_noise(shape, corr_px, rng)
    x_texture = 1.0 + 0.03 * smooth_noise(shape, corr_px, rng)
    d_texture = 0.25 * smooth_noise(shape, corr_px, rng)
    regions = raster.fractions
    defect = regions["agglomerate"] + regions["damage"]
    anode_total = sum(regions[r] for r in ANODE_REGIONS)

    # graphite lithiation per region (local x of LixC6)
    x_regular = soc * behaviour.graphite_x_max * x_texture
    x_agglomerate = 0.8 * x_regular
    lag = defect_lag(soc)
    in_core = damage_core(raster, soc)
    x_damage = np.where(in_core, 0.05, np.minimum(0.5 * lag + 0.05, x_regular)) * x_texture

    fractions = {c: np.zeros(shape, np.float32) for c in COMPONENTS}
    silicon = np.zeros(shape, np.float32)
    graphite_x = np.zeros(shape, np.float32)
    graphite_total = np.zeros(shape, np.float32)
    for region, composition in region_composition(silicon_enrichment).items():
        weight = regions[region]
        for item, amount in composition.items():
            share = (weight * amount).astype(np.float32)
            if item == _SILICON:
                silicon += share * si_texture
            elif item == "graphite":
                x_local = {"agglomerate": x_agglomerate, "damage": x_damage}.get(region, x_regular)
                graphite_x += share * x_local
                graphite_total += share
            elif item == "nmc":
                lithiated = np.clip(
                    behaviour.nmc_lithiated_max
                    - soc * behaviour.nmc_swing
                    + 0.02 * (x_texture - 1.0) / 0.03,
                    0.0,
                    1.0,
                )
                fractions["nmc_lithiated"] += share * lithiated
                fractions["nmc_delithiated"] += share * (1.0 - lithiated)
            else:
                fractions[item] += share
    with np.errstate(invalid="ignore", divide="ignore"):
        graphite_x = np.where(graphite_total > 0, graphite_x / graphite_total, 0.0)
    lic6, lic12, poor = graphite_phase_fractions(graphite_x)
    fractions["lic6"] += graphite_total * lic6
    fractions["lic12"] += graphite_total * lic12
    fractions["graphite_poor"] += graphite_total * poor

    with np.errstate(invalid="ignore", divide="ignore"):
        defect_share = np.where(anode_total > 0, defect / anode_total, 0.0)
    lam_regular = behaviour.si_lithiation[0] + soc * behaviour.si_lithiation[1]
    lam_defect = behaviour.defect_si_lithiation[0] + soc * behaviour.defect_si_lithiation[1]
    si_lithiation = ((1 - defect_share) * lam_regular + defect_share * lam_defect).astype(
        np.float32
    )
    fractions["si"] += silicon * (1 - si_lithiation)
    fractions["lisi"] += silicon * si_lithiation

    d_regular = behaviour.dstar_regular_nm[0] + soc * behaviour.dstar_regular_nm[1]
    d_target = (1 - defect_share) * d_regular + defect_share * behaviour.dstar_defect_nm
    has_shoulder = (silicon > 0) & (si_lithiation > 0)
    dstar_target = np.where(has_shoulder, d_target + d_texture, np.nan).astype(np.float32)
    return CellState(
        health=health,
        soc=float(soc),
        fractions=fractions,
        silicon=silicon,
        si_lithiation=si_lithiation,
        graphite_x=graphite_x.astype(np.float32),
        dstar_target_nm=dstar_target,
        anode_mask=anode_total > 0.5,
    )

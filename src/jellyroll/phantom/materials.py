"""Materials of the twin's components and their X-ray and neutron attenuation.

Each component of :data:`jellyroll.phantom.components.COMPONENTS` is a bulk material with a
chemical formula and a mass density. Porosity is not part of a material: it is carried by the
volume fractions (a porous separator is a separator fraction plus an electrolyte fraction).

X-ray attenuation comes from ``xraydb.material_mu`` (Elam tables, total cross section incl.
coherent and Compton scattering); neutron attenuation from
``periodictable.nsf.neutron_scattering`` (tabulated bound-atom cross sections, absorption
scaled as 1/v with wavelength). Both libraries return 1/cm; everything here is in 1/um.

Densities (g/cm^3) and their sources:

- steel: taken as iron, 7.87 (CRC Handbook of Chemistry and Physics, 97th ed.); the casing of
  the study is nickel-plated low-carbon (ferritic) steel, whose density is within 0.3 % of it.
- cu 8.96, al 2.70: CRC Handbook of Chemistry and Physics.
- separator: isotactic polypropylene (C3H6)n, 0.90 for the bulk polymer (Brandrup, Immergut &
  Grulke, Polymer Handbook, 4th ed.).
- electrolyte: 1 M LiPF6 in EC/DMC 1:1 (v/v) ("LP30"), 1.25 (supplier data sheets give
  1.25-1.30). Formula per litre: 1250 g, of which LiPF6 152 g; the remaining 1098 g split
  1.32 : 1.07 (EC : DMC densities) gives 6.9 mol EC (C3H4O3) and 5.5 mol DMC (C3H6O3).
- binder_carbon: PVDF (C2H2F2)n, 1.78 (Polymer Handbook), mixed 1:1 by mass with carbon
  black, ~1.9 (skeletal density, e.g. Imerys Super P / C65 data sheets): 5.33 C per C2H2F2
  unit, density 1 / (0.5/1.78 + 0.5/1.9) = 1.84.
- nmc_lithiated: LiNi0.6Mn0.2Co0.2O2, 4.75, crystallographic density of the R-3m cell with
  a = 2.87 A, c = 14.21 A, Z = 3 (Noh et al., J. Power Sources 233 (2013) 121).
- nmc_delithiated: Li0.4Ni0.6Mn0.2Co0.2O2, 4.60, the same cell contracted in a (~2.83 A) and
  expanded in c (~14.4 A) as in operando XRD of Ni-rich NMC (de Biasi et al., J. Phys. Chem. C
  121 (2017) 26163); approximate.
- lic6: LiC6, 2.20 (P6/mmm, a = 4.31 A, c = 3.70 A; Dahn, Phys. Rev. B 44 (1991) 9170).
- lic12: LiC12, 2.24 (stage 2, a = 4.29 A, c = 7.03 A, 12 C + 1 Li per cell).
- graphite_poor: graphite C, 2.26 (ideal 2.266 from d002 = 3.354 A, a = 2.461 A).
- si: amorphous Si, 2.29, 1.8 % below crystalline 2.329 (Custer et al., Appl. Phys. Lett. 64
  (1994) 437).
- lisi: Li15Si4, 1.18 (I-43d, a = 10.685 A, Z = 4; Obrovac & Christensen, Electrochem.
  Solid-State Lett. 7 (2004) A93).
- fesi2: beta-FeSi2, 4.93 (Dusausoy et al., Acta Cryst. B 27 (1971) 1209).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from jellyroll.phantom.components import COMPONENTS


@dataclass(frozen=True)
class Material:
    """A bulk material: name, chemical formula (fractional stoichiometry allowed), g/cm^3."""

    name: str
    formula: str
    density_g_cm3: float


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        Material("steel", "Fe", 7.87),
        Material("cu", "Cu", 8.96),
        Material("al", "Al", 2.70),
        Material("separator", "C3H6", 0.90),
        Material("electrolyte", "LiPF6(C3H4O3)6.9(C3H6O3)5.5", 1.25),
        Material("binder_carbon", "C7.33H2F2", 1.84),
        Material("nmc_lithiated", "LiNi0.6Mn0.2Co0.2O2", 4.75),
        Material("nmc_delithiated", "Li0.4Ni0.6Mn0.2Co0.2O2", 4.60),
        Material("lic6", "LiC6", 2.20),
        Material("lic12", "LiC12", 2.24),
        Material("graphite_poor", "C", 2.26),
        Material("si", "Si", 2.29),
        Material("lisi", "Li15Si4", 1.18),
        Material("fesi2", "FeSi2", 4.93),
    )
}
"""One material per component name (see the module docstring for the sources)."""

if set(MATERIALS) != set(COMPONENTS):  # pragma: no cover - guards edits of either list
    raise ImportError(
        f"materials and components disagree: {sorted(set(MATERIALS) ^ set(COMPONENTS))}"
    )


def material(component_or_material: str | Material) -> Material:
    """The :class:`Material` of a component name (a Material is returned unchanged)."""
    if isinstance(component_or_material, Material):
        return component_or_material
    try:
        return MATERIALS[component_or_material]
    except KeyError:
        raise ValueError(
            f"unknown component {component_or_material!r}; expected one of {list(COMPONENTS)} "
            "or a Material(name, formula, density_g_cm3)"
        ) from None


@lru_cache(maxsize=4096)
def _xray_mu_per_cm(formula: str, density: float, energy_eV: float) -> float:
    import xraydb  # slow import; only needed here

    return float(xraydb.material_mu(formula, energy_eV, density))


@lru_cache(maxsize=4096)
def _neutron_xs_per_cm(formula: str, density: float, wavelength_A: float) -> tuple[float, ...]:
    from periodictable import nsf

    _sld, xs, _depth = nsf.neutron_scattering(formula, density=density, wavelength=wavelength_A)
    if xs is None:
        raise ValueError(f"periodictable has no neutron data for an element of {formula!r}")
    coherent, absorption, incoherent = (float(v) for v in xs)
    return coherent, absorption, incoherent


def xray_mu_per_um(component_or_material: str | Material, energy_keV: float) -> float:
    """Linear X-ray attenuation coefficient (1/um, total cross section) at ``energy_keV``."""
    if not energy_keV > 0:
        raise ValueError(f"energy_keV must be positive, got {energy_keV}")
    m = material(component_or_material)
    return _xray_mu_per_cm(m.formula, float(m.density_g_cm3), float(energy_keV) * 1000.0) / 1e4


def neutron_mu_per_um(
    component_or_material: str | Material,
    wavelength_A: float = 4.0,
    include_incoherent: bool = True,
    include_coherent: bool = False,
) -> float:
    """Linear neutron attenuation coefficient (1/um) at ``wavelength_A`` (A).

    Absorption always counts; incoherent scattering (hydrogen) by default; coherent scattering
    is off by default because in polycrystals beyond the Bragg cut-off and in liquids it mostly
    scatters forward into the detector rather than out of the beam.
    """
    if not wavelength_A > 0:
        raise ValueError(f"wavelength_A must be positive, got {wavelength_A}")
    m = material(component_or_material)
    coherent, absorption, incoherent = _neutron_xs_per_cm(
        m.formula, float(m.density_g_cm3), float(wavelength_A)
    )
    total = absorption
    if include_incoherent:
        total += incoherent
    if include_coherent:
        total += coherent
    return total / 1e4


def mu_table(kind: Literal["xray", "neutron"], **kw: float | bool) -> dict[str, float]:
    """Attenuation coefficients (1/um) of every component, in :data:`COMPONENTS` order.

    ``kind="xray"`` needs ``energy_keV``; ``kind="neutron"`` takes the keyword arguments of
    :func:`neutron_mu_per_um`.
    """
    if kind == "xray":
        return {name: xray_mu_per_um(name, **kw) for name in COMPONENTS}  # type: ignore[arg-type]
    if kind == "neutron":
        return {name: neutron_mu_per_um(name, **kw) for name in COMPONENTS}  # type: ignore[arg-type]
    raise ValueError(f"kind must be 'xray' or 'neutron', got {kind!r}")


_SLAB_ELEMENTS = 1 << 22


def attenuation_map(fractions: Mapping[str, np.ndarray], mu: Mapping[str, float]) -> np.ndarray:
    """Sum of fraction x mu over components (1/um): float32, the shape of the fractions.

    Works slab by slab along the first axis, so the only full-size allocation is the result.
    Every name in ``fractions`` needs a coefficient in ``mu``; names only in ``mu`` are absent.
    """
    missing = [name for name in fractions if name not in mu]
    if missing:
        raise ValueError(f"no attenuation coefficient for component(s) {missing}")
    arrays = {name: np.asarray(f) for name, f in fractions.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) > 1:
        raise ValueError(f"fraction maps differ in shape: {sorted(shapes)}")
    shape = shapes.pop() if shapes else ()
    out = np.zeros(shape, dtype=np.float32)
    if out.ndim == 0:
        for name, a in arrays.items():
            out += np.float32(a * mu[name])
        return out
    row = max(1, int(np.prod(shape[1:], dtype=np.int64)))
    step = max(1, _SLAB_ELEMENTS // row)
    for start in range(0, shape[0], step):
        block = out[start : start + step]
        for name, a in arrays.items():
            coefficient = float(mu[name])
            if coefficient != 0.0:
                block += a[start : start + step] * np.float32(coefficient)
    return out

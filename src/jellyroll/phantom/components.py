"""The material components of the digital twin cell.

Every per-pixel state of the twin is a set of volume-fraction maps, one per component
below (values 0..1, summing to at most 1; the rest is air/vacuum). Everything that is
simulated from the cell (diffraction, SAXS, X-ray and neutron attenuation) is linear in
these fractions, which keeps forward models exact and fast.
"""

from __future__ import annotations

COMPONENTS: tuple[str, ...] = (
    "steel",  # casing (ferritic, bcc)
    "cu",  # anode current collector
    "al",  # cathode current collector
    "separator",  # polyolefin (polypropylene)
    "electrolyte",  # 1 M LiPF6 in carbonate solvents, fills the pores
    "binder_carbon",  # PVDF / CMC binder and conductive carbon
    "nmc_lithiated",  # LiNi0.6Mn0.2Co0.2O2
    "nmc_delithiated",  # Li(x~0.4)Ni0.6Mn0.2Co0.2O2
    "lic6",  # stage-1 lithiated graphite, x = 1 in LixC6
    "lic12",  # stage-2 lithiated graphite, x = 0.5
    "graphite_poor",  # graphite and poorly lithiated LixC6, x < 0.2
    "si",  # amorphous silicon nanodomains, delithiated
    "lisi",  # lithiated amorphous silicon (Li15Si4 composition)
    "fesi2",  # crystalline FeSi2 buffer particles of the Si composite
)
"""Names of the component fraction maps, in a fixed order."""

"""X-ray and neutron attenuation of the twin's materials."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xraydb
from periodictable import nsf

from jellyroll.phantom import materials
from jellyroll.phantom.components import COMPONENTS
from jellyroll.phantom.materials import (
    MATERIALS,
    Material,
    attenuation_map,
    mu_table,
    neutron_mu_per_um,
    xray_mu_per_um,
)


def test_every_component_has_a_plausible_material() -> None:
    assert set(MATERIALS) == set(COMPONENTS)
    for name, m in MATERIALS.items():
        assert m.name == name
        assert 0.5 < m.density_g_cm3 < 9.0


def test_xray_mu_is_xraydb_in_per_um() -> None:
    assert xray_mu_per_um("cu", 60.0) == xraydb.material_mu("Cu", 60000, 8.96) / 1e4
    custom = Material("water", "H2O", 1.0)
    assert xray_mu_per_um(custom, 77.0) == xraydb.material_mu("H2O", 77000, 1.0) / 1e4


def test_xray_ordering_is_physical() -> None:
    # computed, not assumed: at 60 keV Cu (Z=29, 8.96 g/cm3) ~14.3/cm beats Fe (Z=26, 7.87) ~9.5/cm
    mu = mu_table("xray", energy_keV=60.0)
    assert mu["cu"] > mu["steel"] > mu["nmc_lithiated"] > mu["fesi2"] > mu["al"]
    assert mu["al"] > mu["graphite_poor"] > mu["separator"]
    # attenuation falls with energy away from absorption edges
    assert xray_mu_per_um("cu", 77.0) < xray_mu_per_um("cu", 60.0)


def test_electrolyte_over_ten_millimetres_is_plausible() -> None:
    mu = xray_mu_per_um("electrolyte", 60.0)
    water = xraydb.material_mu("H2O", 60000, 1.0) / 1e4
    # denser than water and carrying P and F: a little more attenuating, but same order
    assert water < mu < 1.5 * water
    transmission = math.exp(-mu * 10_000.0)
    assert 0.6 < transmission < 0.9


def test_neutron_lithium_contrast() -> None:
    mu = mu_table("neutron")
    assert mu["lic6"] > mu["lic12"] > mu["graphite_poor"]
    assert mu["lisi"] > mu["si"]
    assert mu["nmc_lithiated"] > mu["nmc_delithiated"]
    # hydrogen (incoherent) makes the electrolyte far more visible than the metals
    assert mu["electrolyte"] > 3 * mu["cu"]


@pytest.mark.parametrize("name", ["lic6", "electrolyte", "nmc_lithiated", "cu"])
@pytest.mark.parametrize("wavelength", [1.798, 4.0])
def test_neutron_mu_is_periodictable_in_per_um(name: str, wavelength: float) -> None:
    m = MATERIALS[name]
    _, (coh, absorption, incoh), _ = nsf.neutron_scattering(
        m.formula, density=m.density_g_cm3, wavelength=wavelength
    )
    # the same float operations in a possibly different order: allow a few ulps
    assert neutron_mu_per_um(name, wavelength) == pytest.approx(
        (absorption + incoh) / 1e4, rel=1e-12
    )
    assert neutron_mu_per_um(name, wavelength, include_incoherent=False) == pytest.approx(
        absorption / 1e4, rel=1e-12
    )
    assert neutron_mu_per_um(name, wavelength, include_coherent=True) == pytest.approx(
        (absorption + incoh + coh) / 1e4, rel=1e-12
    )


def test_neutron_absorption_scales_with_wavelength() -> None:
    short = neutron_mu_per_um("lisi", 4.0, include_incoherent=False)
    long = neutron_mu_per_um("lisi", 8.0, include_incoherent=False)
    assert long == pytest.approx(2 * short, rel=1e-9)  # 1/v law


def test_mu_table_and_errors() -> None:
    assert list(mu_table("xray", energy_keV=77.0)) == list(COMPONENTS)
    with pytest.raises(ValueError, match="kind"):
        mu_table("gamma")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown component"):
        xray_mu_per_um("unobtainium", 60.0)
    with pytest.raises(ValueError, match="positive"):
        neutron_mu_per_um("cu", 0.0)


def test_attenuation_map_is_the_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    fractions = {name: rng.random((7, 5, 6)) for name in ("cu", "lic6", "electrolyte")}
    fractions["al"] = rng.random((7, 5, 6)).astype(np.float32)
    mu = mu_table("xray", energy_keV=60.0)
    expected = sum(fractions[n].astype(np.float64) * mu[n] for n in fractions)
    # force several slabs so the slab bookkeeping is exercised
    monkeypatch.setattr(materials, "_SLAB_ELEMENTS", 40)
    result = attenuation_map(fractions, mu)
    assert result.dtype == np.float32 and result.shape == (7, 5, 6)
    # float32 accumulation of 4 terms: a few float32 ulps
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    assert attenuation_map({"cu": np.float64(0.5)}, mu) == pytest.approx(0.5 * mu["cu"], rel=1e-6)


def test_attenuation_map_rejects_bad_input() -> None:
    mu = {"cu": 1.0}
    with pytest.raises(ValueError, match="coefficient"):
        attenuation_map({"cu": np.ones(3), "al": np.ones(3)}, mu)
    with pytest.raises(ValueError, match="shape"):
        attenuation_map({"cu": np.ones(3), "al": np.ones(4)}, {"cu": 1.0, "al": 2.0})

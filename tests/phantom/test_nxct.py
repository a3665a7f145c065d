"""Simulated neutron and lab X-ray CT volumes and their known rigid transform."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from jellyroll.phantom.materials import attenuation_map, mu_table
from jellyroll.phantom.nxct import (
    block_mean,
    resample_rigid,
    rigid_matrix,
    rotation_matrix,
    simulate_nxct,
)

VOXEL_UM = 10.0
SHAPE = (20, 64, 64)


def _fractions(shape: tuple[int, int, int] = SHAPE) -> dict[str, np.ndarray]:
    """A small wound cell: spiral layers, a steel casing and a few Si spheres at various z."""
    z, y, x = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in shape), indexing="ij")
    r = np.hypot(y, x)
    theta = np.arctan2(y, x)
    pitch = 7.0  # voxels
    s = np.mod(r + pitch * theta / (2 * np.pi), pitch)
    rolled = (r > 5) & (r < 26)
    f = {name: np.zeros(shape, np.float32) for name in ("steel", "cu", "al", "separator")}
    f |= {name: np.zeros(shape, np.float32) for name in ("electrolyte", "nmc_lithiated", "lic6")}
    f["lisi"] = np.zeros(shape, np.float32)
    f["cu"][rolled & (s < 1)] = 1
    anode = rolled & (s >= 1) & (s < 3)
    f["lic6"][anode] = 0.6
    f["electrolyte"][anode] = 0.3
    sep = rolled & (s >= 3) & (s < 4)
    f["separator"][sep] = 0.5
    f["electrolyte"][sep] = 0.5
    cathode = rolled & (s >= 4) & (s < 6.5)
    f["nmc_lithiated"][cathode] = 0.7
    f["electrolyte"][cathode] = 0.3
    f["al"][rolled & (s >= 6.5)] = 1
    f["steel"][(r >= 27) & (r < 29)] = 1
    for cz, cy, cx, radius in [(-5, 8, -10, 3.5), (4, -12, 6, 4.0), (0, 15, 12, 3.0)]:
        ball = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 < radius**2
        for name in f:
            f[name][ball] = 0
        f["lisi"][ball] = 0.8
        f["electrolyte"][ball] = 0.2
    return f


@pytest.fixture(scope="module")
def fractions() -> dict[str, np.ndarray]:
    return _fractions()


@pytest.fixture(scope="module")
def volumes(fractions: dict[str, np.ndarray]):
    return simulate_nxct(fractions, VOXEL_UM, seed=7)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _inner_cell() -> np.ndarray:
    """Inside the casing and away from the top/bottom faces reached by the tilt."""
    z, y, x = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in SHAPE), indexing="ij")
    return (np.hypot(y, x) < 26) & (np.abs(z) < SHAPE[0] / 2 - 3)


def test_rotation_convention() -> None:
    rot = rotation_matrix((90.0, 0.0, 0.0))
    np.testing.assert_allclose(rot @ [0, 0, 1], [0, 1, 0], atol=1e-12)  # x -> y about z
    rot = rotation_matrix((7.0, 0.5, -0.3))
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)


def test_resample_rigid_round_trip() -> None:
    smooth = ndimage.gaussian_filter(np.random.default_rng(0).random((16, 32, 32)), 3)
    smooth = smooth.astype(np.float32)
    matrix = rigid_matrix((5.0, 1.0, -2.0), (2.0, -3.0, 4.5))
    back = resample_rigid(resample_rigid(smooth, 2.0, matrix), 2.0, np.linalg.inv(matrix))
    inner = (slice(4, -4), slice(6, -6), slice(6, -6))
    # two trilinear interpolations of a smooth field: small smoothing error only
    np.testing.assert_allclose(back[inner], smooth[inner], atol=0.05 * np.ptp(smooth))


def test_block_mean_translation_is_exact_for_a_ramp() -> None:
    ramp = np.broadcast_to(np.arange(9, dtype=np.float32)[None, :, None], (4, 9, 6)).copy()
    coarse, to_fine = block_mean(ramp, 2)
    assert coarse.shape == (2, 5, 3)
    # coarse voxel j, centre-origin coordinate (j - 2) * 2 fine voxels, plus the pad offset
    j = np.arange(4)  # the last coarse row is half padding (edge-repeated), skip it
    fine_index = (j - 2) * 2 + to_fine[1, 3] + (9 - 1) / 2
    np.testing.assert_allclose(coarse[0, :4, 0], fine_index)


def test_neutron_realigns_with_truth(volumes, fractions: dict[str, np.ndarray]) -> None:
    truth = ndimage.gaussian_filter(
        attenuation_map(fractions, mu_table("neutron", wavelength_A=4.0)), 1.0, mode="nearest"
    )
    inside = _inner_cell()
    realigned = volumes.neutron_in_world()
    assert realigned.shape == SHAPE
    aligned = _correlation(realigned[inside], truth[inside])
    as_measured = _correlation(volumes.neutron[inside], truth[inside])
    # 3 % noise and two trilinear resamplings cost a few per cent of correlation at most
    assert aligned > 0.95
    assert as_measured < aligned - 0.2  # the transform is not a no-op
    np.testing.assert_allclose(volumes.neutron_to_world[:3, 3], [30.0, -20.0, 40.0])


def test_xray_is_coarser_and_conserves_attenuation(fractions: dict[str, np.ndarray]) -> None:
    clean = simulate_nxct(fractions, VOXEL_UM, blur_sigma_voxels=(0, 0), noise_fraction=(0, 0))
    assert clean.xray.shape == (10, 32, 32) and clean.xray.dtype == np.float32
    assert clean.xray_voxel_um == 2 * VOXEL_UM and clean.neutron_voxel_um == VOXEL_UM
    np.testing.assert_array_equal(clean.xray_to_world, np.eye(4))  # shape divisible by 2
    truth = attenuation_map(fractions, mu_table("xray", energy_keV=60.0))
    # block means preserve the mean exactly up to float32 rounding
    assert clean.xray.mean() == pytest.approx(truth.mean(), rel=1e-5)
    odd = simulate_nxct({k: v[:, :63, :] for k, v in fractions.items()}, VOXEL_UM)
    assert odd.xray.shape == (10, 32, 32)
    np.testing.assert_allclose(odd.xray_to_world[:3, 3], [0.0, 0.5 * VOXEL_UM, 0.0])
    assert odd.xray_in_world().shape == (20, 63, 64)


def test_noise_level_and_seed(fractions: dict[str, np.ndarray], volumes) -> None:
    clean = simulate_nxct(fractions, VOXEL_UM, noise_fraction=(0, 0), seed=7)
    for noisy, quiet, fraction, sigma in zip(
        (volumes.xray, volumes.neutron),
        (clean.xray, clean.neutron),
        (0.02, 0.03),
        volumes.noise_sigma,
        strict=True,
    ):
        expected = fraction * float(np.ptp(quiet))
        assert sigma == pytest.approx(expected, rel=1e-6)
        # >= 10^4 samples: the sample std is within ~1 % of sigma; allow 5 %
        assert float(np.std(noisy - quiet)) == pytest.approx(expected, rel=0.05)
    again = simulate_nxct(fractions, VOXEL_UM, seed=7)
    np.testing.assert_array_equal(again.xray, volumes.xray)
    np.testing.assert_array_equal(again.neutron, volumes.neutron)
    other = simulate_nxct(fractions, VOXEL_UM, seed=8)
    assert not np.array_equal(other.neutron, volumes.neutron)


def test_rejects_bad_input(fractions: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="shape"):
        simulate_nxct({"cu": np.ones((4, 4))}, VOXEL_UM)
    with pytest.raises(ValueError, match="voxel"):
        simulate_nxct(fractions, 0.0)

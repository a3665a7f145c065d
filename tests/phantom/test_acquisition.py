"""Tests of the pencil-beam forward model (jellyroll.phantom.acquisition)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

from jellyroll.conventions import FWHM_TO_SIGMA
from jellyroll.phantom.acquisition import (
    acquisition_schedule,
    beam_kernel,
    interlaced_angles,
    project,
    simulate_diode,
    simulate_monitor,
    transmission,
)


def _disk(n: int, p: float, radius: float, ss: int = 8) -> np.ndarray:
    """Uniform disk (value 1) on an n x n map, anti-aliased by ss x ss coverage sampling."""
    c = ((np.arange(n * ss) + 0.5) / ss - n / 2) * p
    x, y = np.meshgrid(c, c)
    return (x**2 + y**2 <= radius**2).reshape(n, ss, n, ss).mean(axis=(1, 3))


def _smooth_phantom(rng: np.random.Generator, ny: int, nx: int, width: float) -> np.ndarray:
    """Random smooth map under a Gaussian envelope (negligible values at the map edges)."""
    y, x = np.mgrid[:ny, :nx]
    env = np.exp(-((x - (nx - 1) / 2) ** 2 + (y - (ny - 1) / 2) ** 2) / (2 * width**2))
    return (gaussian_filter(rng.random((ny, nx)), 4) * env).astype(np.float32)


# --------------------------------------------------------------------------- analytic


@pytest.fixture(scope="module")
def disk_case() -> dict:
    p, radius = 2.0, 300.0
    t = np.arange(-340.0, 341.0, 2.5)
    return {
        "p": p,
        "R": radius,
        "map": _disk(350, p, radius),
        "angles": np.linspace(0.0, 180.0, 25),
        "t": t,
        "chord": 2 * np.sqrt(np.clip(radius**2 - t**2, 0, None)),
    }


def test_disk_chord_narrow_beam(disk_case: dict) -> None:
    p, radius, t, chord = disk_case["p"], disk_case["R"], disk_case["t"], disk_case["chord"]
    for fwhm in (0.0, 1e-3):
        proj = project(disk_case["map"], p, disk_case["angles"], t / 1000, beam_fwhm_um=fwhm)
        assert proj.shape == (25, t.size)
        # The only error is the rasterised rim: for |t| <= 0.8 R the line meets the rim at
        # >= 37 deg incidence and crosses ~2 partly covered pixels per side, whose
        # coverage-weighted length misses the true chord piece by a fraction of p each
        # (measured 0.65 p); near the tangent the crossing runs along the rim (~10 p).
        inner = np.abs(t) <= 0.8 * radius
        assert np.abs(proj - chord)[:, inner].max() < 1.5 * p
        assert np.abs(proj - chord).max() < 15 * p
        # same for every angle: the disk is round, so the rim error has no preferred angle
        assert np.abs(proj - proj.mean(axis=0)).max() < 15 * p


def test_disk_chord_with_gaussian_beam(disk_case: dict) -> None:
    p, radius, t = disk_case["p"], disk_case["R"], disk_case["t"]
    fwhm = 20.0
    sigma = fwhm * FWHM_TO_SIGMA
    # numerical convolution of the exact chord with the (truncated at 4 sigma, renormalised)
    # beam profile on a 0.05 um grid
    fine = np.arange(-400.0, 400.0001, 0.05)
    chord = 2 * np.sqrt(np.clip(radius**2 - fine**2, 0, None))
    u = np.arange(-4 * sigma, 4 * sigma + 1e-9, 0.05)
    g = np.exp(-0.5 * (u / sigma) ** 2)
    ref = np.interp(t, fine, np.convolve(chord, g / g.sum(), mode="same"))
    proj = project(disk_case["map"], p, disk_case["angles"], t / 1000, beam_fwhm_um=fwhm)
    # the beam averages the rim error of the rasterised disk over ~20 um (measured 0.18 p);
    # 0.5 p also covers the 0.05 um convolution grid
    assert np.abs(proj - ref).max() < 0.5 * p
    # the untruncated profile differs by the weight beyond 4 sigma (6e-5) times the chord
    # change over that lever arm: measured 6e-5 of the largest chord (4e-4 at 3 sigma)
    full = project(
        disk_case["map"], p, disk_case["angles"], t / 1000, beam_fwhm_um=fwhm, truncate_sigma=np.inf
    )
    assert np.abs(full - proj).max() < 2e-4 * 2 * radius


def test_beam_kernel_unit_integral() -> None:
    u = np.linspace(-60, 60, 240001)
    for theta in (0.0, 13.0, 45.0, 90.0, 200.0):
        for fwhm in (0.0, 5.0, 20.0):
            k = beam_kernel(u, theta, 10.0, fwhm)
            assert np.all(k >= 0)
            assert np.trapezoid(k, u) == pytest.approx(1.0, abs=1e-4)


# --------------------------------------------------------------------------- conservation


@settings(max_examples=25, deadline=None)
@given(
    theta=st.floats(0.0, 360.0),
    pixel=st.floats(1.0, 20.0),
    centre_mm=st.floats(-0.5, 0.5),
    seed=st.integers(0, 2**16),
)
def test_conservation(theta: float, pixel: float, centre_mm: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.random((3, 17, 23))
    fwhm = 20.0
    step = fwhm / 2
    # translations cover the object's footprint (half diagonal) plus the 6-sigma beam reach
    reach = 0.5 * pixel * math.hypot(17, 23) + 6 * fwhm * FWHM_TO_SIGMA + step
    t = np.arange(-reach, reach + step, step)
    stage = (t + 1000 * centre_mm) / 1000
    expected = m.sum(axis=(1, 2)) * pixel**2
    # A smooth unit-integral kernel sampled every step ~ 1.2 sigma sums to 1 within the
    # aliasing term 2 exp(-2 pi^2 sigma^2 / step^2) ~ 1e-6 (+ ~1e-6 from float32); the
    # truncation edges of the profile add aliasing: with 6 sigma it is < 1e-8 ...
    proj = project(m, pixel, [theta], stage, rotation_centre_mm=centre_mm, truncate_sigma=6.0)
    np.testing.assert_allclose(proj[0].sum(axis=0) * step, expected, rtol=1e-5)
    # ... with the default 4 sigma it is at most 1.4e-4 for a lone 1 um pixel (less for
    # bigger pixels, whose footprint smooths the edges, and for many pixels, which average)
    proj = project(m, pixel, [theta], stage, rotation_centre_mm=centre_mm)
    np.testing.assert_allclose(proj[0].sum(axis=0) * step, expected, rtol=1.5e-4)


# --------------------------------------------------------------------------- point object


@pytest.mark.parametrize("centre_mm", [0.0, 0.137, -0.29])
def test_point_object_position(centre_mm: float) -> None:
    p, ny, nx = 1.0, 41, 61
    iy, ix = 7, 50
    m = np.zeros((ny, nx))
    m[iy, ix] = 1.0
    x0, y0 = (ix - (nx - 1) / 2) * p, (iy - (ny - 1) / 2) * p
    angles = np.array([0.0, 17.0, 90.0, 133.0, 250.0])
    stage_mm = np.arange(-60.0, 60.0, 0.5) / 1000 + centre_mm
    proj = project(m, p, angles, stage_mm, rotation_centre_mm=centre_mm, beam_fwhm_um=5.0)
    centroid_mm = (proj * stage_mm).sum(axis=1) / proj.sum(axis=1)
    th = np.deg2rad(angles)
    expected_mm = (x0 * np.cos(th) + y0 * np.sin(th) + 1000 * centre_mm) / 1000
    # the kernel is symmetric and 0.5 um sampling of a 5 um beam aliases ~exp(-40) -> tiny;
    # 1e-3 um leaves room for float32 accumulation
    np.testing.assert_allclose(centroid_mm, expected_mm, atol=1e-6)
    np.testing.assert_allclose(proj.sum(axis=1) * 0.5, p**2, rtol=1e-5)


# --------------------------------------------------------------------------- astra reference


def _astra_sino(img: np.ndarray, p: float, angles: np.ndarray, step: float, kind: str):
    """astra parallel-beam sinogram in our convention (see the mapping in the test below)."""
    astra = pytest.importorskip("astra")
    ny, nx = img.shape
    vol = astra.create_vol_geom(ny, nx, -nx * p / 2, nx * p / 2, -ny * p / 2, ny * p / 2)
    geom = astra.create_proj_geom("parallel", step, 200, -np.deg2rad(angles))
    proj_id = astra.create_projector(kind, geom, vol)
    sino_id, sino = astra.create_sino(img, proj_id)
    astra.data2d.delete(sino_id)
    astra.projector.delete(proj_id)
    return sino


@pytest.mark.parametrize("sharp", [False, True])
def test_against_astra(sharp: bool) -> None:
    """Mapping of our geometry to astra-toolbox (2D parallel, CPU):

    * volume: ``create_vol_geom(ny, nx, -nx*p/2, nx*p/2, -ny*p/2, ny*p/2)`` (um) with our
      (ny, nx) array passed as is (astra's row 0 is at +y, so its y is our -y);
    * angles: astra angle = ``-deg2rad(theta_deg)`` (equivalently: theta itself on
      ``np.flipud(map)``);
    * detector: ``create_proj_geom('parallel', step_um, n_t, ...)``; detector pixel i sits at
      ``t = (i - (n_t - 1) / 2) * step_um``, i.e. at stage reading
      ``s_i = (t + 1000 * rotation_centre_mm) / 1000`` (ascending with i);
    * values: both in map units x um.
    """
    rng = np.random.default_rng(3)
    ny, nx, p, step = 96, 112, 7.0, 5.0
    img = _smooth_phantom(rng, ny, nx, 15.0)
    if sharp:  # a cut-out disk: sharp edges test the pixel footprint itself
        y, x = np.mgrid[:ny, :nx]
        img = gaussian_filter(rng.random((ny, nx)), 4).astype(np.float32)
        img *= ((x - (nx - 1) / 2) ** 2 + (y - (ny - 1) / 2) ** 2) < 40**2
    angles = np.sort(rng.uniform(0.0, 360.0, 40))
    centre_mm = 0.0123
    stage_mm = ((np.arange(200) - 199 / 2) * step + 1000 * centre_mm) / 1000
    ours = project(img, p, angles, stage_mm, rotation_centre_mm=centre_mm, beam_fwhm_um=0.0)
    scale = np.abs(ours).max()
    # astra 'line' weights each pixel by its intersection length with the ray: the exact
    # line integral of the pixelated map, which is our model with an ideal beam. Remaining
    # differences: float32 and our kernel table (its smallest features are ~1e-3 pixel
    # wide, which matters only for rays within that distance of a pixel edge near 0/90 deg).
    line = _astra_sino(img, p, angles, step, "line")
    tol = 1e-3 if sharp else 2e-4  # measured 2.8e-4 and 2.6e-5
    assert np.abs(ours - line).max() < tol * scale
    assert np.sqrt(np.mean((ours - line) ** 2)) < 2e-5 * scale
    if not sharp:
        # astra 'linear' (Joseph) interpolates the map bilinearly instead of taking it
        # pixel-constant; on a smooth map the two models agree to ~1 % (measured 1.2 % max,
        # 0.1 % rms)
        joseph = _astra_sino(img, p, angles, step, "linear")
        assert np.abs(ours - joseph).max() < 3e-2 * scale
        assert np.sqrt(np.mean((ours - joseph) ** 2)) < 3e-3 * scale


# --------------------------------------------------------------------------- consistency


def test_multi_map_equals_single_maps() -> None:
    rng = np.random.default_rng(1)
    maps = rng.random((5, 32, 40)).astype(np.float32)
    angles = np.linspace(0, 180, 19)
    stage = np.linspace(-0.3, 0.3, 61)
    multi = project(maps, 10.0, angles, stage, rotation_centre_mm=0.01)
    assert multi.shape == (19, 61, 5)
    assert multi.dtype == np.float32
    for k in range(5):
        single = project(maps[k], 10.0, angles, stage, rotation_centre_mm=0.01)
        assert single.shape == (19, 61)
        # identical arithmetic per channel, so equal up to float32 rounding
        np.testing.assert_allclose(multi[..., k], single, rtol=1e-6, atol=1e-6 * single.max())


def test_supersample_and_translation_order() -> None:
    rng = np.random.default_rng(2)
    maps = rng.random((2, 30, 30))
    angles = np.array([0.0, 7.0, 45.0, 90.0, 161.0])
    stage = np.linspace(-0.25, 0.25, 101)
    ref = project(maps, 8.0, angles, stage, beam_fwhm_um=12.0)
    scale = ref.max()
    # sub-pixels with their own exact footprints add up to the pixel's footprint
    sup = project(maps, 8.0, angles, stage, beam_fwhm_um=12.0, supersample=3)
    np.testing.assert_allclose(sup, ref, atol=2e-5 * scale)
    # unsorted and non-uniform translations: each value depends only on its own position
    idx = np.sort(rng.choice(stage.size, 40, replace=False))
    perm = rng.permutation(idx)
    sub = project(maps, 8.0, angles, stage[perm], beam_fwhm_um=12.0)
    np.testing.assert_allclose(sub, ref[:, perm], atol=2e-6 * scale)


def test_input_validation() -> None:
    with pytest.raises(ValueError):
        project(np.zeros(5), 1.0, [0.0], [0.0])
    with pytest.raises(ValueError):
        project(np.zeros((4, 4)), 0.0, [0.0], [0.0])
    with pytest.raises(ValueError):
        project(np.zeros((4, 4)), 1.0, [0.0], [0.0], beam_fwhm_um=-1.0)


# --------------------------------------------------------------------------- schedule


def test_interlaced_angles_union_is_uniform() -> None:
    a = interlaced_angles(3, 100, 180.0)
    assert a.shape == (3, 100)
    step = 180.0 / 100
    for subset in a:
        np.testing.assert_allclose(np.diff(subset), step, atol=1e-12)
        assert 0.0 <= subset[0] and subset[-1] < 180.0
    np.testing.assert_allclose(a[:, 0], [0.0, step / 3, 2 * step / 3], atol=1e-12)
    union = np.sort(a.ravel())
    assert np.unique(union).size == 300
    np.testing.assert_allclose(np.diff(union), 180.0 / 300, atol=1e-12)


def test_schedule_zigzag_and_missing() -> None:
    angles = interlaced_angles(3, 4)
    trans = np.linspace(-1.0, 1.0, 5)
    sched = acquisition_schedule(angles, trans, zigzag=True)
    assert sched.n_frames == 60
    assert not sched.missing.any()
    # subset by subset, angle by angle: line L is angle angles.ravel()[L]
    np.testing.assert_array_equal(sched.angle_deg.reshape(12, 5)[:, 0], angles.ravel())
    lines = sched.translation_mm.reshape(12, 5)
    np.testing.assert_array_equal(lines[0::2], np.tile(trans, (6, 1)))
    np.testing.assert_array_equal(lines[1::2], np.tile(trans[::-1], (6, 1)))
    np.testing.assert_allclose(sched.unique_angles_deg[sched.angle_index], sched.angle_deg)
    np.testing.assert_array_equal(trans[sched.translation_index], sched.translation_mm)
    # every (angle, translation) pair exactly once
    pairs = sched.angle_index * 5 + sched.translation_index
    assert np.unique(pairs).size == 60

    flat = acquisition_schedule(angles, trans, zigzag=False)
    np.testing.assert_array_equal(flat.translation_mm.reshape(12, 5), np.tile(trans, (12, 1)))

    rng = np.random.default_rng(5)
    dropped = acquisition_schedule(angles, trans, missing_fraction=0.1, rng=rng)
    assert dropped.missing.sum() == 6
    kept = dropped.present()
    assert kept.n_frames == 54 and not kept.missing.any()


# --------------------------------------------------------------------------- counters


def test_monitor_and_diode() -> None:
    rng = np.random.default_rng(7)
    mon = simulate_monitor(20000, mean_counts=1e5, relative_noise=0.01, rng=rng)
    assert mon.shape == (20000,) and np.all(mon > 0)
    assert mon.mean() == pytest.approx(1e5, rel=0.05)
    # drift (3 %) + jitter (1 %) + Poisson (0.3 %): spread between 1 % and ~5 %
    assert 0.01 < mon.std() / mon.mean() < 0.05

    mu = np.linspace(0.0, 3.0, mon.size)
    diode = simulate_diode(mon, mu, gain=0.5, rng=rng)
    expected = mon * 0.5 * transmission(mu)
    # Poisson counting: standardised residuals have unit variance
    z = (diode - expected) / np.sqrt(expected)
    assert abs(z.mean()) < 0.05 and 0.95 < z.std() < 1.05
    np.testing.assert_allclose(transmission(np.array([0.0, 1.0])), [1.0, math.exp(-1.0)])

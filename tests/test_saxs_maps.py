"""Tests of the SAXS maps of jellyroll.saxs: intensity, denoising, d* maps on the twin and on
independent scattering physics (sasmodels)."""

from __future__ import annotations

import time
from dataclasses import replace

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.maps.core import compute_maps
from jellyroll.maps.options import MapsOptions
from jellyroll.phantom.twin import Twin, make_twin
from jellyroll.phantom.write import noisy_pixel_patterns
from jellyroll.report.run import _region_dstar
from jellyroll.results import Reconstruction
from jellyroll.saxs import (
    CLIPPED,
    CLIPPED_NOTE,
    DSTAR_MIN_Q_MAX_A,
    FEATURELESS,
    SHORT_Q_RANGE,
    SLOPE_TOO_SHALLOW,
    SLOPE_TOO_STEEP,
    denoise_profiles,
    departure_dstar,
    departure_dstar_map,
    dstar_histogram,
    saxs_intensity_map,
)

Q = np.linspace(0.005, 0.35, 500)  # A^-1, as an azimuthal integration gives


def noisy_saxs(twin: Twin, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel SAXS truth with one pixel's Poisson noise, and its one-sigma errors."""
    return noisy_pixel_patterns(twin, "saxs", seed)


# --- the twin -----------------------------------------------------------------------------


def assert_dstar_meets_the_bar(
    q: np.ndarray, profiles: np.ndarray, truth: np.ndarray, anode: np.ndarray
) -> None:
    """The issue's bar: median |d* - true d*| <= 0.3 nm over valid anode pixels, and a value
    for >= 95 % of the anode pixels that have a true d*."""
    result = departure_dstar_map(q, profiles)
    graded = anode & np.isfinite(truth)
    valid = graded & result.valid
    assert valid.sum() >= 0.95 * graded.sum()
    error = np.abs(result.d_star_nm - truth)[valid]
    assert np.median(error) <= 0.3


@pytest.mark.parametrize(
    ("preset", "seed"),
    [("fresh_charged", 0), ("aged_charged", 1), *[("aged_discharged", s) for s in range(2)]],
)
def test_dstar_map_at_the_study_detector(preset: str, seed: int) -> None:
    """The bar at the noise of the study's geometry: the paper-size twin (10 um pixels, SAXS on
    the whole Pilatus3 2M of SPEC section 1), on a 64-row slab through the cell centre
    (~10 000 anode pixels; the whole map would take 2 GB per state)."""
    twin = make_twin(preset, "paper", seed=seed)
    centre = twin.shape[0] // 2
    rows = slice(centre - 32, centre + 32)
    intensities, sigma = noisy_pixel_patterns(twin, "saxs", seed, rows)
    denoised = denoise_profiles(intensities, sigma)
    assert 2 <= denoised.rank <= 4  # a power law and a shoulder that changes shape
    truth = twin.true_dstar_rows(rows)
    assert_dstar_meets_the_bar(twin.q.saxs, denoised.profiles, truth, twin.state.anode_mask[rows])


@pytest.mark.parametrize(
    ("preset", "seed"),
    [
        *[("fresh_charged", seed) for seed in range(2)],
        *[("aged_charged", seed) for seed in range(2)],
        # The small preset's SAXS detector is a 24 x 400 pixel strip (for speed), which collects
        # 1/25-1/170 of the Pilatus 2M counts per q bin. At that noise the weak shoulder of an
        # aged, discharged anode (15 % lithiated silicon) is recovered to 0.57, 0.37, 0.21,
        # 0.27 nm (seeds 0-3; against the model's grid-free truth, which the noise-free method
        # itself reads ~0.05 nm high): the components learned from 3500 noisy anode profiles
        # shift q* by one or two bins (0.15 nm each), by the noise of the leading component,
        # common to the whole map, so the error changes with the noise draw (docs/maps.md).
        # At the study's detector it holds (above).
        *[
            pytest.param(
                "aged_discharged",
                seed,
                marks=pytest.mark.xfail(reason="0.37-0.57 nm at the strip detector", strict=False),
            )
            for seed in range(2)
        ],
    ],
)
def test_dstar_map_on_the_small_twin(preset: str, seed: int) -> None:
    """The bar at the small preset's per-pixel noise, over the whole map."""
    twin = make_twin(preset, "small", seed=seed)
    intensities, sigma = noisy_saxs(twin, seed=seed)
    denoised = denoise_profiles(intensities, sigma)
    assert 2 <= denoised.rank <= 4
    truth = twin.true_dstar_nm
    assert_dstar_meets_the_bar(twin.q.saxs, denoised.profiles, truth, twin.state.anode_mask)
    # Without denoising the study's 3 % test trips on the noise at once: d* is meaningless.
    raw = departure_dstar_map(twin.q.saxs, intensities)
    graded = twin.state.anode_mask & np.isfinite(truth)
    assert np.nanmedian(np.abs(raw.d_star_nm - truth)[graded]) > 3.0


def test_saxs_intensity_map_matches_the_twin() -> None:
    twin = make_twin("aged_charged", "tiny", seed=1)
    patterns = twin.patterns("saxs")
    intensity = saxs_intensity_map(twin.q.saxs, patterns)
    # Same trapezoid over the same bins; float32 patterns: ~1e-7 relative.
    np.testing.assert_allclose(intensity, twin.saxs_intensity, rtol=1e-5, atol=1e-6)
    # Silicon sits in the anode: its SAXS intensity is several times that of the rest.
    anode = twin.state.anode_mask
    assert np.median(intensity[anode]) > 5 * np.median(intensity[~anode & (intensity > 0)])


# --- denoising ----------------------------------------------------------------------------


def _low_rank_stack(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = np.stack(
        [Q**-3.5, 50 * np.exp(-(Q**2) * 60.0**2 / 3), 50 * np.exp(-(Q**2) * 90.0**2 / 3)]
    )
    truth = rng.uniform(0.2, 1.0, (n, 3)) @ shapes
    return truth, truth + rng.normal(size=truth.shape) * 0.01 * np.sqrt(truth)


def test_denoise_finds_the_rank_and_reduces_the_noise() -> None:
    truth, noisy = _low_rank_stack(0)
    sigma = 0.01 * np.sqrt(truth)
    result = denoise_profiles(noisy, sigma)
    assert result.rank == 3
    assert result.singular_values[2] > result.threshold > result.singular_values[3]
    before = np.mean(((noisy - truth) / sigma) ** 2)
    after = np.mean(((result.profiles - truth) / sigma) ** 2)
    # Projecting white noise of 500 channels on 3 components keeps ~3/500 of its power.
    assert after < 0.02 * before
    # Poisson-like default (no sigma) on the same data: the same rank.
    assert denoise_profiles(noisy).rank == 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noise_free_profiles_keep_their_own_components(dtype: type) -> None:
    """Profiles of exactly 3 components (a noise-free twin's low-rank reconstruction): the
    automatic threshold, a multiple of the median singular value, lay in the rounding and
    kept 240 (float32) or 235 (float64) of 500 components, and the maps said the profiles
    were "barely denoised". The rounding floor sets the threshold now: 3 components, the
    profiles back to within rounding (the 3rd component is 1e-6 of the first)."""
    truth, _ = _low_rank_stack(0)
    result = denoise_profiles(truth.astype(dtype))
    assert result.rank == 3
    # a few roundings of the stored values, or the components' own accuracy: they come from
    # the Gram matrix, whose eigenvectors hold ~sqrt(float64 eps) = 1.5e-8
    tolerance = max(20 * np.finfo(dtype).eps, 1e-8)
    np.testing.assert_allclose(result.profiles, truth.astype(dtype), rtol=tolerance)


def test_denoise_blocks_nan_rows_and_fixed_rank() -> None:
    _, noisy = _low_rank_stack(1, n=500)
    noisy[7, 3] = np.nan
    one_block = denoise_profiles(noisy, rank=2, block_rows=10_000)
    many_blocks = denoise_profiles(noisy, rank=2, block_rows=64)
    assert one_block.rank == 2
    # Streaming only changes the order of float64 sums, which the eigenvectors amplify by
    # their conditioning: ~1e-9 relative seen.
    np.testing.assert_allclose(many_blocks.profiles, one_block.profiles, rtol=1e-7)
    assert one_block.profiles.shape == noisy.shape
    with pytest.raises(ValueError):
        denoise_profiles(noisy, rank=501)


def test_a_cube_on_disk_is_denoised_by_slabs_of_its_rows(tmp_path) -> None:
    """A (y, x, q) cube left in its HDF5 file (8.4 GB at the study's size) is read by whole
    slabs of rows (here 3 of 20 rows of 25 profiles a block, chunks of 4 rows: slabs of
    one chunk row), never whole: the same rank and profiles as the array in memory."""
    _, noisy = _low_rank_stack(2, n=500)
    noisy[7, 3] = np.nan
    cube = noisy.reshape(20, 25, Q.size)
    in_memory = denoise_profiles(cube, block_rows=10_000)
    with h5py.File(tmp_path / "cube.h5", "w") as f:
        dataset = f.create_dataset("d", data=cube, chunks=(4, 25, 50), compression="gzip")
        on_disk = denoise_profiles(dataset, block_rows=75)
    assert on_disk.rank == in_memory.rank >= 2  # (the third shape is under the noise)
    # only the order of the float64 sums differs (see above)
    np.testing.assert_allclose(on_disk.profiles, in_memory.profiles, rtol=1e-7)
    assert np.isnan(on_disk.profiles[0, 7, 3])


def test_a_profile_with_a_missing_bin_is_denoised_over_the_others() -> None:
    """A profile with one NaN bin was returned raw: d* of its noise, 6.2 nm off against
    0.37 nm for its neighbours, in the same "denoised" map. It is now projected on the
    components over its finite bins; the missing bin stays NaN."""
    truth, noisy = _low_rank_stack(1, n=500)
    whole = denoise_profiles(noisy, rank=3).profiles
    holed = noisy.copy()
    holed[7, 3] = holed[8, [3, 40]] = np.nan
    found = denoise_profiles(holed, rank=3).profiles
    assert np.isnan(found[7, 3]) and np.isnan(found[8, [3, 40]]).all()
    sigma = 0.01 * np.sqrt(truth[7:9])
    kept = np.isfinite(found[7:9])
    # three coefficients fitted to 498-499 bins instead of 500: within half the noise of the
    # whole profile's projection, and as close to the truth (raw: mean squared z of 1)
    assert np.abs((found[7:9] - whole[7:9]) / sigma)[kept].max() < 0.5
    assert np.mean(((found[7:9] - truth[7:9]) / sigma)[kept] ** 2) < 0.05
    # a profile with fewer finite bins than components was returned raw: none now
    holed[9, 2:] = np.nan
    assert np.isnan(denoise_profiles(holed, rank=3).profiles[9]).all()


def test_a_hot_profile_takes_no_part_in_the_components() -> None:
    """One voxel at 100 times the brightest profile took a component of its own and tilted
    the others: the twin's median d* error went from 0.44 to 1.83 nm."""
    truth, noisy = _low_rank_stack(2, n=1000)
    clean = denoise_profiles(noisy)
    hot = noisy.copy()
    hot[0] = 100 * noisy.max(axis=0)
    found = denoise_profiles(hot)
    assert found.rank == clean.rank == 3
    # the column factor (mean noise variance per bin) still counts the hot row: the other
    # profiles move by up to 0.05 of their noise (measured 0.047)
    sigma = 0.01 * np.sqrt(truth[1:])
    assert np.abs((found.profiles[1:] - clean.profiles[1:]) / sigma).max() < 0.1
    assert np.isfinite(found.profiles[0]).all()  # still projected


# --- independent physics (sasmodels) ------------------------------------------------------

_PD = {"radius_pd": 0.3, "radius_pd_n": 35, "radius_pd_nsigma": 3.0, "radius_pd_type": "schulz"}


@pytest.mark.parametrize(
    ("model", "shape_parameters"),
    [
        ("cylinder", lambda r: {"radius": r, "length": 3 * r, **_PD}),
        (
            "ellipsoid",
            lambda r: {
                "radius_equatorial": r,
                "radius_polar": 1.5 * r,
                "radius_equatorial_pd": 0.3,
                "radius_equatorial_pd_n": 35,
                "radius_equatorial_pd_type": "schulz",
            },
        ),
        ("sphere", lambda r: {"radius": r, **_PD}),
    ],
)
def test_sasmodels_dstar_grows_linearly_with_size(model: str, shape_parameters) -> None:
    core = pytest.importorskip("sasmodels.core")
    direct = pytest.importorskip("sasmodels.direct_model")
    kernel = core.load_model(model, dtype="double").make_kernel([Q])
    radii = np.arange(30.0, 101.0, 10.0)  # A: structure sizes (2 R) 6-20 nm
    # Si-like domains (SLD 20e-6 A^-2) in an FeSi2-like matrix (38e-6 A^-2), 10 vol %, Schulz
    # polydispersity 0.3, on the matrix's own q^-3.6 power law (the study's regime).
    curves = np.stack(
        [
            direct.call_kernel(
                kernel,
                {"scale": 0.1, "background": 0.0, "sld": 20.0, "sld_solvent": 38.0}
                | shape_parameters(r),
            )
            + 2e-2 * Q**-3.6
            for r in radii
        ]
    )
    result = departure_dstar_map(Q, curves)
    assert np.all(result.valid)
    d_star, size_nm = result.d_star_nm, 2 * radii / 10
    assert np.all(np.diff(d_star) > 0)
    coef = np.polyfit(size_nm, d_star, 1)
    r2 = 1 - np.var(d_star - np.polyval(coef, size_nm)) / np.var(d_star)
    assert r2 >= 0.99
    assert 0.7 < coef[0] < 1.5  # d* is of the order of the structure size


@settings(max_examples=60, deadline=None)
@given(
    exponent=st.floats(1.5, 5.5).filter(lambda x: abs(x - 2.5) > 1e-3 and abs(x - 4.3) > 1e-3),
    log_amplitude=st.floats(-3, 3),
)
def test_pure_power_laws_give_no_value(exponent: float, log_amplitude: float) -> None:
    curves = 10.0**log_amplitude * Q[None, :] ** -exponent * np.ones((2, 1))
    result = departure_dstar_map(Q, curves)
    assert not result.valid.any()
    if exponent > 4.3:
        expected = SLOPE_TOO_STEEP
    elif exponent < 2.5:
        expected = SLOPE_TOO_SHALLOW
    else:
        expected = FEATURELESS
    assert np.all(result.reason_code == expected)
    # An exact power law is fitted to rounding error (~1e-12 relative).
    np.testing.assert_allclose(result.slope, exponent, rtol=1e-9)


def test_slopes_outside_the_range_are_rejected_even_with_a_shoulder() -> None:
    shoulder = 100 * np.exp(-(Q**2) * 80.0**2 / 3)
    for exponent, code in [(4.8, SLOPE_TOO_STEEP), (2.0, SLOPE_TOO_SHALLOW), (3.5, 0)]:
        r = departure_dstar(Q, shoulder + 1e-3 * Q**-exponent)
        assert r.reason_code == code, (exponent, r.reason)


def test_map_speed_and_histogram() -> None:
    """256 x 256 profiles of 500 points: 1/16 of the 1024 x 1024 map that must take < 60 s."""
    rg = np.random.default_rng(0).uniform(50, 90, (256 * 256, 1))
    stack = (2e4 * np.exp(-((Q * rg) ** 2) / 3) + 2e-2 * Q**-3.6).astype(np.float32)
    departure_dstar_map(Q, stack[:4])  # compile outside the timing
    start = time.perf_counter()
    result = departure_dstar_map(Q, stack.reshape(256, 256, Q.size))
    elapsed = time.perf_counter() - start
    assert elapsed < 60.0 / 16  # typically 0.1 s on 2 shared cores
    assert result.valid.mean() > 0.99
    counts, edges = dstar_histogram(result.d_star_nm, bins=20)
    assert counts.sum() == result.valid.sum() and edges.size == 21


@pytest.mark.parametrize("n_zero", [400, 25_000])
def test_profiles_of_zeros_change_neither_the_rank_nor_the_others(n_zero: int) -> None:
    """Masked voxels (profiles of zeros) took part in the threshold: 400 of them next to 200
    profiles of 500 channels kept 226 components (rank 2 without them: nothing denoised), and
    above 99 % of the map they set the 99th percentile of the norms to 0, so every real
    profile was hot and came back as zeros (mean squared z 4.9e9)."""
    truth, noisy = _low_rank_stack(3, n=200)
    alone = denoise_profiles(noisy)
    channels = slice(None) if n_zero < 1000 else slice(None, None, 5)  # keep the array small
    masked = np.concatenate([noisy[:, channels], np.zeros((n_zero, Q.size))[:, channels]])
    found = denoise_profiles(masked)
    expected = alone if n_zero < 1000 else denoise_profiles(noisy[:, channels])
    assert found.rank == expected.rank <= 3
    # the same components from the same sums plus zeros: float64 rounding only (~1e-12)
    np.testing.assert_allclose(found.profiles[:200], expected.profiles, rtol=1e-7)
    assert not found.profiles[200:].any()
    sigma = 0.01 * np.sqrt(truth[:, channels])
    assert np.mean(((found.profiles[:200] - truth[:, channels]) / sigma) ** 2) < 0.1


def test_the_automatic_rank_refuses_too_few_profiles() -> None:
    """The threshold scales the median singular value, which must be noise: 3 profiles of
    d* 12.1, 9.3 and 7.8 nm kept 1 component and came back as copies of one shape, d* 8.4 nm
    all three (mean squared z 6600, raw 1); with 3 complete profiles among 500 (the others
    miss a bin) 1 of 3 components was kept for all 500. Refused now; a chosen rank runs."""
    rng = np.random.default_rng(0)
    rg = rng.uniform(60.0, 100.0, (3, 1))  # A
    truth = 2e4 * np.exp(-((Q * rg) ** 2) / 3) + 2e-2 * Q**-3.6
    noisy = truth + rng.normal(size=truth.shape) * np.sqrt(3e-3 * truth)
    with pytest.raises(ValueError, match="automatic rank needs >= 20"):
        denoise_profiles(noisy)
    assert denoise_profiles(noisy, rank=3).rank == 3
    _, stack = _low_rank_stack(4, n=500)
    stack[3:, 7] = np.nan
    with pytest.raises(ValueError, match=r"\(3: non-zero, not hot, a value in every channel\)"):
        denoise_profiles(stack)
    stack[3:23, 7] = stack[3:23, 8]  # 23 complete profiles: enough
    assert denoise_profiles(stack).rank >= 2


# --- the maps' d* and the q axis ----------------------------------------------------------


def _saxs_recon(q_A: np.ndarray, n: int = 8) -> Reconstruction:
    """(n, n) voxels of a Guinier shoulder (radius of gyration 60 A: d* 10.3 nm) on a
    q^-3.6 law, amplitudes 0.5-1, noise-free, drawn on ``q_A`` (1/A)."""
    amplitude = np.linspace(0.5, 1.0, n * n).reshape(n, n, 1)
    profiles = amplitude * (100 * np.exp(-(q_A**2) * 60.0**2 / 3) + 1e-3 * q_A**-3.6)
    axis = (np.arange(n) - (n - 1) / 2) * 20.0
    return Reconstruction(profiles.astype(np.float32), q_A, axis, axis)


LONG_CAMERA = np.linspace(0.0022, 0.2, 500)
"""A long SAXS camera's q (1/A); in 1/nm, 0.022-2.0, it covers the SAXS window read in 1/A."""
STUDY = MapsOptions(analysis="study")


def test_a_saxs_axis_in_nm_read_as_angstrom_is_noted() -> None:
    """The same profiles on the same axis written in 1/nm and read as 1/A (pre-integrated
    by pyFAI in its default unit, no @units): d* 10 times smaller (10.3 nm became 1.03
    nm), exit 0, and no note. Now a note says that q* lies above 0.3 1/A and what to do;
    the axis in 1/A gets none. Tolerance: the same kernel on q scaled by 10 in float64."""
    right = compute_maps(_saxs_recon(LONG_CAMERA), STUDY)
    wrong = compute_maps(
        replace(_saxs_recon(LONG_CAMERA), q_A=10 * LONG_CAMERA), STUDY
    )  # the same intensities, each q read 10 times too large
    np.testing.assert_allclose(wrong["d_star_nm"], right["d_star_nm"] / 10, rtol=1e-5)
    assert 5 < np.nanmedian(right["d_star_nm"]) < 15
    assert not any("1/nm" in note for note in right.notes)
    assert any(
        note.startswith("median d* 1.03 nm") and '@units = "1/nm"' in note for note in wrong.notes
    )


def test_an_axis_that_only_1_nm_maps_is_refused_with_the_hint() -> None:
    """The twin's SAXS axis (0.008-0.3 1/A) in 1/nm read as 1/A covers neither window: the
    refusal said so and no more; now it says that read in 1/nm the values would give maps,
    and what to write."""
    q = np.linspace(0.008, 0.3, 300)
    with pytest.raises(ValueError, match=r'gives no map.*Read in 1/nm.*@units = "1/nm"'):
        compute_maps(replace(_saxs_recon(q), q_A=10 * q), STUDY)


def test_a_hole_in_an_axis_that_spans_the_windows_gets_no_unit_hint() -> None:
    """A WAXS axis reduced from frames (0.177-5.4 1/A) whose channels across the LiC6 line
    hold no value: the refusal was right, but it then said the values read in 1/nm would
    give maps and to write @units = "1/nm" (0.0177-0.54 covers the SAXS window), which
    would have made a right axis wrong. An axis that spans the windows has a hole, not the
    wrong unit: no hint."""
    q = np.linspace(0.177, 5.4, 600)
    recon = _saxs_recon(q)
    recon.data[..., (q > 1.70) & (q < 1.80)] = np.nan
    with pytest.raises(ValueError, match="gives no map") as error:
        compute_maps(recon, STUDY)
    assert "1/nm" not in str(error.value)


def test_a_dstar_min_points_beyond_the_channels_is_refused() -> None:
    """min_points above the channels the reconstruction holds: no profile can give a d*.
    Before, a d* map without one value (600 on 500 channels), exit 0, no note; now the
    option is refused, and the study's 150 on 120 channels (a reconstruction of few
    channels) gives the SAXS intensity and a note saying why there is no d*."""
    with pytest.raises(ValueError, match=r"min_points 600 .* exceeds the 500 q channels"):
        compute_maps(
            _saxs_recon(LONG_CAMERA), MapsOptions(analysis="study", dstar={"min_points": 600})
        )
    few = np.linspace(0.02, 0.2, 120)
    maps = compute_maps(_saxs_recon(few), STUDY)
    assert "saxs_intensity" in maps and not np.isfinite(maps["d_star_nm"]).any()
    assert any(note.startswith("no d*: the method needs 150") for note in maps.notes)
    assert any(
        note.startswith("no voxel has a d* (64 fewer than min_points") for note in maps.notes
    )


def test_the_jellyroll_dstar_walks_past_a_departure_that_does_not_last() -> None:
    """One voxel's profile 5 % high at one channel between the fit window and the shoulder
    (a noise excursion: the tiny twin's denoised voxels had them, and 550 of its 1789 d*
    lay more than 3 nm off, at 6.6-7.5 nm for about 14; map median 12.34 nm for a true
    14.08, exit 0). The jellyroll analysis gave that voxel the excursion's d* (7.80 nm for
    9.53); now the walk passes it and finds the shoulder's, and a voxel with an excursion
    every 8th channel (more than 5 % of the walk: noise at the tolerance) has none, reason
    code 9, which a note counts. The study's analysis keeps its single-point rule, and the
    clean voxels keep the study's d* exactly (the same kernel, bit-identical)."""
    q = np.linspace(0.008, 0.3, 500)  # the twin's SAXS axis (1/A)
    recon = _saxs_recon(q)
    clean = departure_dstar(q, recon.data[0, 0].astype(np.float64))
    below_window = int(np.searchsorted(q, clean.fit_q_range[0])) - 1
    k = int(np.flatnonzero(q == clean.q_star)[0])
    data = recon.data.copy()
    data[3, 4, (below_window + k) // 2] *= 1.05
    data[5, 1, k + 2 : below_window : 8] *= 1.05
    recon = replace(recon, data=data)
    study = compute_maps(recon, STUDY)
    raw = compute_maps(recon, MapsOptions(analysis="jellyroll", denoise=False))
    spike = 2 * np.pi / q[(below_window + k) // 2] / 10
    assert study["d_star_nm"][3, 4] == pytest.approx(spike, rel=1e-6)  # 7.80 nm
    assert raw["d_star_nm"][3, 4] == np.float32(clean.d_star_nm)  # 9.53 nm
    assert np.isnan(raw["d_star_nm"][5, 1]) and raw["d_star_reason"][5, 1] == 9
    others = np.ones((8, 8), dtype=bool)
    others[3, 4] = others[5, 1] = False
    np.testing.assert_array_equal(raw["d_star_nm"][others], study["d_star_nm"][others])
    assert np.all(raw["d_star_nm"][others] == np.float32(clean.d_star_nm))
    assert any(note.startswith("no d* in 1 voxels") for note in raw.notes)
    assert not any("reason code 9" in note for note in study.notes)


def test_a_reconstruction_clipped_at_0_gives_no_d_star() -> None:
    """`reconstruct --nonnegative` of the tiny twin's SAXS scan: d* 6.2 nm for a true 14.05
    in a third of the anode's voxels, exit 0 (clipping lifts the noise of the weak high-q
    channels and flattens the power law; denoised harder, 6.5-39 nm). Such a reconstruction
    (its ``nonnegative`` attribute) now gets no d*, every voxel's reason says why and a note
    what to do; the same profiles unclipped keep their d*."""
    twin = make_twin("aged_charged", "tiny", seed=0)
    y_um, x_um = twin.raster.axes_um()
    data = twin.patterns("saxs").astype(np.float32)
    clipped = Reconstruction(data, twin.q.saxs, x_um, y_um, attrs={"nonnegative": True})
    maps = compute_maps(clipped, STUDY)
    assert np.isnan(maps["d_star_nm"]).all() and (maps["d_star_reason"] == CLIPPED).all()
    assert np.isfinite(maps["saxs_intensity"]).any()
    assert CLIPPED_NOTE in maps.notes
    signed = compute_maps(replace(clipped, attrs={"nonnegative": False}), STUDY)
    assert np.isfinite(signed["d_star_nm"]).any()


@pytest.mark.parametrize("q_max", [0.12, 0.15])
def test_profiles_ending_short_of_the_d_star_range_give_no_d_star(q_max: float) -> None:
    """The tiny twin's profiles reduced to q 0.12 1/A (`reduce --q-max 0.12`): d* 31 nm for
    14, exit 0: the fit window, at shares of the q span, fell on the shoulder. Now no d*,
    every voxel's reason says why, and a note says what to do; the same profiles to 0.3 1/A
    give the twin's d* (the bar's 0.3 nm on the median)."""
    twin = make_twin("aged_charged", "tiny", seed=0)
    q, profiles = twin.q.saxs, twin.patterns("saxs")
    truth = twin.true_dstar_nm
    y_um, x_um = twin.raster.axes_um()

    def maps_to(end: float):
        kept = q <= end
        recon = Reconstruction(profiles[..., kept].astype(np.float32), q[kept], x_um, y_um)
        return compute_maps(recon, STUDY)

    cut = maps_to(q_max)
    assert np.isnan(cut["d_star_nm"]).all()
    assert (cut["d_star_reason"] == SHORT_Q_RANGE).all()
    assert any(f"below the {DSTAR_MIN_Q_MAX_A:g} 1/A the d* rule needs" in n for n in cut.notes)
    # the report's d* of a region's averaged profile, the same rule
    kept = q <= q_max
    region = _region_dstar(q[kept], profiles[..., kept].reshape(-1, kept.sum()).mean(axis=0), None)
    assert region.reason_code == SHORT_Q_RANGE and np.isnan(region.d_star_nm)
    whole = maps_to(q[-1])
    assert abs(np.nanmedian(whole["d_star_nm"]) - np.nanmedian(truth)) <= 0.3

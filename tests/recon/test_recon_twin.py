"""Accuracy on the digital twin's sinograms against its ground truth, and astra parity.

The twin is projected by its own pixel-driven projector with a 20 um Gaussian beam (not
astra, not jellyroll's line model), so none of this is an inverse crime: both
reconstructions carry the beam blur and the 60-angle undersampling in their errors, and
the tests compare jellyroll with astra on the same data rather than demand a small error.
"""

from __future__ import annotations

import numpy as np
import pytest

from jellyroll.phantom.scan import CENTRE_OFFSET_PX
from jellyroll.phases import TABLE1_WINDOWS, window_integrals
from jellyroll.recon import (
    ParallelGeometry,
    attenuation_map,
    correct_self_absorption,
    reconstruct,
    reconstruct_q_windows,
    transmission,
)

TABLE1 = {
    "nmc_lithiated": (4.57, 4.62),
    "nmc_delithiated": (4.45, 4.50),
    "lic6": (1.67, 1.73),
    "lic12": (1.78, 1.82),
    "graphite_poor": (1.82, 1.90),
}
SAXS_WINDOW = {"saxs_intensity": (0.025, 0.1)}
SWEEPS = 10


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)))


def _rmse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-channel RMSE over the map, ``(nc,)``."""
    return np.sqrt(np.mean((a - b) ** 2, axis=(0, 1)))


def _window_maps(volume: np.ndarray, q: np.ndarray, windows: dict) -> np.ndarray:
    """Trapezoid q integrals (no background) of a ``(ny, nx, nq)`` volume or a sinogram,
    ``(..., n_windows)``."""
    return window_integrals(q, volume, windows, shoulder_bins=0)


def _window_channels(q: np.ndarray, windows: dict) -> np.ndarray:
    return np.flatnonzero(np.any([(q >= lo) & (q <= hi) for lo, hi in windows.values()], 0))


def test_fbp_equals_astra_fbp_on_the_twin(twin_case: dict) -> None:
    q = twin_case["twin"].q.waxs
    picked = _window_channels(q, TABLE1)
    sinogram, truth = twin_case["waxs"][..., picked], twin_case["truth_waxs"][..., picked]
    ours = reconstruct(sinogram, twin_case["geometry"], "fbp")
    theirs = reconstruct(sinogram, twin_case["geometry"], "fbp", backend="astra")
    # same Ram-Lak filter, astra's backprojector on the exact (offset) geometry: float32
    # rounding only (measured 1e-4); the issue asks for 1 %
    assert _relative(ours.data, theirs.data) < 0.01
    assert _relative(ours.data, truth) <= 1.001 * _relative(theirs.data, truth)


@pytest.mark.parametrize("kind", ["waxs", "saxs"])
def test_sart_error_is_no_worse_than_astra_per_channel_and_on_maps(twin_case, kind) -> None:
    q = getattr(twin_case["twin"].q, kind)
    windows = TABLE1 if kind == "waxs" else SAXS_WINDOW
    sinogram, truth, geometry = twin_case[kind], twin_case[f"truth_{kind}"], twin_case["geometry"]
    ours = reconstruct(sinogram, geometry, "sart", SWEEPS)  # every channel
    assert ours.rank is not None and ours.residual < 1e-4  # the low-rank path ran
    picked = np.linspace(0, q.size - 1, 12).round().astype(int)
    theirs = reconstruct(sinogram[..., picked], geometry, "sart", SWEEPS, backend="astra")
    error_ours = _rmse(ours.data[..., picked], truth[..., picked])
    error_astra = _rmse(theirs.data, truth[..., picked])
    # the bound: within 2 % per channel (measured ratio 1.0000); a floor of 1e-6
    # of the largest true value covers channels without signal, where both are rounding
    floor = 1e-6 * float(np.abs(truth).max())
    assert np.all(error_ours <= 1.02 * error_astra + floor)
    # maps: q integrals over the windows. Ours from the full volume; astra's per-channel
    # maps integrate its channels, which by linearity of SART equals reconstructing the
    # integrated sinogram (checked for jellyroll in test_q_window_fast_path_is_exact)
    maps_ours = _window_maps(ours.data, q, windows)
    maps_astra = reconstruct(
        _window_maps(sinogram, q, windows), geometry, "sart", SWEEPS, backend="astra"
    ).data
    maps_truth = _window_maps(truth, q, windows)
    for k in range(len(windows)):
        mine = _relative(maps_ours[..., k], maps_truth[..., k])
        assert mine <= 1.02 * _relative(maps_astra[..., k], maps_truth[..., k])
        assert mine < 0.5  # 10-20 um layers on a 20 um grid, 60 angles: measured 0.18-0.35


def test_missing_rays_and_centre_offset(twin_case: dict) -> None:
    geometry, truth = twin_case["geometry"], twin_case["truth_waxs"]
    q = twin_case["twin"].q.waxs
    picked = _window_channels(q, TABLE1)
    sinogram = twin_case["waxs"][..., picked].copy()
    full = _relative(reconstruct(sinogram, geometry, "sart", SWEEPS).data, truth[..., picked])
    dropped = np.random.default_rng(3).random(sinogram.shape[:2]) < 0.02
    sinogram[dropped] = np.nan  # 2 % missing frames, as NaN in every channel
    ours = reconstruct(sinogram, geometry, "sart", SWEEPS)
    theirs = reconstruct(sinogram, geometry, "sart", SWEEPS, backend="astra")
    with_gaps = _relative(ours.data, truth[..., picked])
    assert np.isfinite(ours.data).all()
    assert with_gaps <= 1.02 * _relative(theirs.data, truth[..., picked])
    assert with_gaps < 1.05 * full  # measured 1.02: 2 % of the rays carry little
    # ignoring the 1.37-step rotation-centre offset smears every layer (measured 3.6x)
    centred = ParallelGeometry.from_scan(
        twin_case["scan"].sorted_angles_deg,
        twin_case["scan"].translations_mm,
        twin_case["scan"].rotation_centre_mm - CENTRE_OFFSET_PX * 0.02,
    )
    wrong = reconstruct(twin_case["waxs"][..., picked], centred, "sart", SWEEPS)
    assert _relative(wrong.data, truth[..., picked]) > 1.3 * full


def test_q_window_fast_path_is_exact(twin_case: dict) -> None:
    q, geometry = twin_case["twin"].q.waxs, twin_case["geometry"]
    sinogram = twin_case["waxs"]
    fast = reconstruct_q_windows(sinogram, q, geometry, TABLE1, "sart", SWEEPS, shoulder_bins=0)
    slow = reconstruct(sinogram, geometry, "sart", SWEEPS, low_rank=False)
    integrated = _window_maps(slow.data, q, TABLE1)
    for k, name in enumerate(TABLE1):
        # linear method: the two orders of integrate and reconstruct differ by float32
        # rounding only
        assert _relative(fast[name], integrated[..., k]) < 1e-4
    # with the maps stage's Table 1 windows and their backgrounds (the default) too
    fast_maps = reconstruct_q_windows(sinogram, q, geometry, method="sart", iterations=SWEEPS)
    maps = window_integrals(q, slow.data, TABLE1_WINDOWS)
    for k, name in enumerate(TABLE1_WINDOWS):
        assert _relative(fast_maps[name], maps[..., k]) < 1e-4
    low_rank = _window_maps(reconstruct(sinogram, geometry, "sart", SWEEPS).data, q, TABLE1)
    # the low-rank volume drops 1e-4 of the sinogram norm
    assert _relative(low_rank, integrated) < 1e-3


def test_a_q_window_without_any_value_is_nan_on_the_fast_path() -> None:
    """A q bin without pixels (NaN in every cell) inside the LiC6 window: the fast path
    returned a map of exact 0 (no LiC6 anywhere, exit 0) where the maps stage, from the
    reconstructed channels, gives NaN. The other window is untouched."""
    geometry = ParallelGeometry.from_scan(
        np.linspace(0.0, 180.0, 12, endpoint=False), 3.0 + 0.01 * np.arange(16), 3.075
    )
    q = np.linspace(1.6, 1.9, 31)
    sinogram = np.ones((geometry.n_angles, geometry.n_t, q.size), np.float32)
    sinogram[..., np.argmin(np.abs(q - 1.70))] = np.nan
    windows = {name: TABLE1[name] for name in ("lic6", "lic12")}
    maps = reconstruct_q_windows(sinogram, q, geometry, windows, "fbp", shoulder_bins=0)
    assert np.isnan(maps["lic6"]).all()
    assert np.isfinite(maps["lic12"]).all() and np.abs(maps["lic12"]).max() > 0


def test_a_plain_q_window_on_the_fast_path_is_the_maps_stages() -> None:
    """A plain (lo, hi) window: the fast path anchored a background on the 2 bins either
    side (the phases' default), which the maps stage does not (shoulder_bins 0), so its
    map differed from `jellyroll maps`' by 22-88 %. FBP is linear: float32 rounding."""
    geometry = ParallelGeometry.from_scan(
        np.linspace(0.0, 180.0, 12, endpoint=False), 3.0 + 0.01 * np.arange(16), 3.075
    )
    q = np.linspace(1.6, 1.9, 31)
    rng = np.random.default_rng(0)
    sinogram = rng.random((geometry.n_angles, geometry.n_t, q.size)).astype(np.float32)
    window = {"plain": (1.65, 1.75)}
    fast = reconstruct_q_windows(sinogram, q, geometry, window, "fbp")
    slow = reconstruct(sinogram, geometry, "fbp", low_rank=False)
    expected = window_integrals(q, slow.data, window, shoulder_bins=0)[..., 0]
    assert _relative(fast["plain"], expected) < 1e-4


def test_attenuation_map_and_self_absorption(twin_case: dict) -> None:
    twin, geometry = twin_case["twin"], twin_case["geometry"]
    projections = twin_case["projections"]
    mu = attenuation_map(projections.attenuation, geometry, "sart", SWEEPS)
    assert mu.shape == twin.shape and mu.min() >= 0
    # 80 um steel casing and 10 um foils on 20 um pixels: measured 0.17
    assert _relative(mu, twin.mu_xray_per_um) < 0.3
    fbp_mu = attenuation_map(projections.attenuation, geometry, "fbp")
    assert _relative(fbp_mu, twin.mu_xray_per_um) < 0.4  # measured 0.28
    # self-absorption: the measured sinogram carries exp(-mu line integral)
    q = twin.q.waxs
    picked = _window_channels(q, TABLE1)
    raw = projections.sinogram("waxs")[..., picked]
    truth = twin_case["truth_waxs"][..., picked]
    ray_transmission = transmission(geometry, mu)
    # the reprojected slice reproduces the twin's transmission (measured 0.2 %)
    assert _relative(ray_transmission, np.exp(-projections.attenuation)) < 0.01

    def error(sinogram: np.ndarray) -> float:
        return _relative(reconstruct(sinogram, geometry, "sart", SWEEPS).data, truth)

    corrected = error(correct_self_absorption(raw, ray_transmission))
    exact = error(twin_case["waxs"][..., picked])
    assert corrected <= 1.02 * exact
    assert corrected < 0.8 * error(raw)  # up to 30 % absorbed: uncorrected is far worse
    with pytest.raises(ValueError, match="transmission"):
        correct_self_absorption(raw, ray_transmission[:, :-1])

"""Noise-aware low rank (jellyroll.recon.lowrank.compress_noisy) on a noisy twin cube.

The tiny twin's WAXS sinogram (60 angles x 104 translations x 300 q, ``twin_case`` of
conftest.py, transmission undone) gets Poisson counting noise, ~50 counts in the brightest
bins (the study's weak channels); the reduction's one-sigma errors are sqrt(counts) on the
same scale.
"""

from __future__ import annotations

import numpy as np
import pytest

from jellyroll.recon import compress_noisy, reconstruct
from jellyroll.recon.lowrank import biwhitening_scales

SWEEPS = 10
COUNTS = 50.0
"""Counts of the 90th percentile of the positive bins."""


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)))


@pytest.fixture(scope="module")
def noisy_case(twin_case: dict) -> dict:
    clean = twin_case["waxs"]
    scale = COUNTS / np.percentile(clean[clean > 0], 90)
    counts = np.random.default_rng(0).poisson(np.maximum(clean, 0) * scale)
    return {
        "geometry": twin_case["geometry"],
        "clean": clean,
        "noisy": (counts / scale).astype(np.float32),
        "errors": (np.sqrt(np.maximum(counts, 1)) / scale).astype(np.float32),
        "truth": twin_case["truth_waxs"],
    }


def _detectable_rank(clean: np.ndarray, noisy: np.ndarray, errors: np.ndarray) -> int:
    """Components of the noise-free cube that the noise lets one see: whitened like the
    noisy cube, those whose squared singular value exceeds sqrt(n_rays nc), the detection
    (BBP) threshold of a spike in unit-variance noise (Baik, Ben Arous & Peche 2005)."""
    nc = clean.shape[2]
    ray_var, channel_var, _ = biwhitening_scales(noisy.reshape(-1, nc), errors.reshape(-1, nc))
    whiten = np.divide(1.0, np.sqrt(ray_var), out=np.zeros_like(ray_var), where=ray_var > 0)
    whitened = clean.reshape(-1, nc) * whiten[:, None] / np.sqrt(channel_var)
    values = np.linalg.eigvalsh(whitened.T @ whitened)
    return int(np.count_nonzero(values > np.sqrt(np.count_nonzero(ray_var) * nc)))


def test_noise_rank_finds_the_patterns_above_the_noise_and_beats_per_channel_sart(
    noisy_case: dict,
) -> None:
    geometry, noisy, errors = noisy_case["geometry"], noisy_case["noisy"], noisy_case["errors"]
    truth = noisy_case["truth"]
    ours = reconstruct(noisy, geometry, "sart", SWEEPS, errors=errors)  # defaults
    assert ours.rank_rule == "noise" and ours.noise_from == "errors"
    # the twin mixes 12 spatial patterns (its noise-free cube is exactly rank 12); those
    # the noise buries cannot be found by any rule. A pattern just above the detection
    # threshold gives an eigenvalue just above the edge, found or not by a hair: +-1
    assert abs(ours.rank - _detectable_rank(noisy_case["clean"], noisy, errors)) <= 1
    assert ours.rank < 12
    # what is dropped is the noise: its measured share of the squared norm is within 20 %
    # of the share the errors predict (the rest: the weak patterns dropped with it)
    assert 0.8 * ours.noise_energy < ours.residual**2 < 1.2 * ours.noise_energy
    sample = np.linspace(0, noisy.shape[2] - 1, 12).round().astype(int)
    per_channel = reconstruct(noisy[..., sample], geometry, "sart", SWEEPS, low_rank=False)
    error_ours = _relative(ours.data[..., sample], truth[..., sample])
    error_per_channel = _relative(per_channel.data, truth[..., sample])
    # measured 0.27 against 0.34: the noise of 300 channels is not reconstructed
    assert error_ours < 0.9 * error_per_channel


def test_noise_rank_from_the_data_alone(noisy_case: dict) -> None:
    # every other channel: half the work, the same question
    noisy, errors = noisy_case["noisy"][..., ::2], noisy_case["errors"][..., ::2]
    # without errors the default keeps every channel: nothing tells noise from q structure
    assert reconstruct(noisy, noisy_case["geometry"], "fbp").rank is None
    estimated = compress_noisy(noisy)
    assert estimated.rule == "noise" and estimated.noise_from == "data"
    # the second difference along q keeps some signal: the noise is overestimated, so the
    # rank can only be lower than with the errors
    assert 1 <= estimated.rank <= compress_noisy(noisy, errors).rank
    with pytest.raises(ValueError, match="3 channels"):
        compress_noisy(noisy[..., :2])


def test_an_error_of_zero_is_unknown_not_exact(noisy_case: dict) -> None:
    """A reduction reports an error of 0 where a bin holds no count (an azimuthal or Poisson
    error of identical pixels). Taken as exact, a channel known on one ray only weighed
    without bound: its variance fell to 1e-83, the whitened cube overflowed float32 and the
    eigensolver failed on a reduced tiny twin with default options."""
    noisy, errors = noisy_case["noisy"], noisy_case["errors"]
    unknown = np.where(noisy > 0, errors, 0.0).astype(np.float32)
    unknown[1:, :, 100:105] = 0.0  # five channels known on the first angle's rays only
    nc = noisy.shape[2]
    ray_var, channel_var, _ = biwhitening_scales(noisy.reshape(-1, nc), unknown.reshape(-1, nc))
    assert np.all(np.isfinite(channel_var)) and np.all(np.isfinite(ray_var))
    # the five channels are scaled like their neighbours (within the spread of all), not as
    # noise-free: the whitened noise of a channel stays of order one
    assert channel_var[100:105].min() > 0.1 * np.median(channel_var)
    # the rank is still the number of patterns standing above the noise: +-1 as above
    ours = compress_noisy(noisy, unknown)
    assert abs(ours.rank - _detectable_rank(noisy_case["clean"], noisy, unknown)) <= 1

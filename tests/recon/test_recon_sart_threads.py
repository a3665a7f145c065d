"""SART sweeps parallel over bands of rows (few channels) against the per-thread channel
blocks (many channels): the same updates, so the same result up to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest

from jellyroll.recon import ParallelGeometry, forward, iterative
from jellyroll.recon.iterative import CHANNELS_PER_THREAD, sart
from jellyroll.recon.projector import n_parts


def test_sart_over_bands_of_rows_equals_the_channel_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(iterative, "BAND_MIN_PIXELS", 0)  # bands on a small map too
    rng = np.random.default_rng(0)
    geometry = ParallelGeometry(
        np.linspace(0, 180, 40, endpoint=False), -315.0, 10.0, 64, (64, 64), 10.0
    )
    many = CHANNELS_PER_THREAD * n_parts()  # the channel-block path
    sinogram = forward(geometry, rng.random((64, 64, many)).astype(np.float32))
    sinogram[5, 10:20] = np.nan  # missing rays
    # clipped at 0 too, the one update that is not linear
    blocks = sart(geometry, sinogram, 2, nonnegative=True)
    bands = sart(geometry, sinogram[..., :4], 2, nonnegative=True)  # 4 channels: bands
    single = sart(geometry, sinogram[..., 2], 2, nonnegative=True)
    scale = np.abs(blocks).max()
    # each pixel's update is the same; only the order of the projection's float32 sums
    # differs (bands summed at the end): measured 1.4e-6 of the largest value
    np.testing.assert_allclose(bands, blocks[..., :4], rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(single, blocks[..., 2], rtol=0, atol=1e-5 * scale)

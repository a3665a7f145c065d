"""The sinogram-domain spot filter: finds single-frame outliers, leaves thin layers alone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from jellyroll.sinogram import suppress_spots, window_median

PIXEL_UM = 20.0


def _layered_sinogram(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(noisy, errors, noise-free) sinograms (90 angles over 180 deg, 80 translations, 4 q
    channels) of off-centre annuli one to three pixels thick, Poisson noise of 200 counts per
    unit."""
    theta = np.deg2rad(np.linspace(0, 180, 90, endpoint=False))[:, None]
    t_um = (np.arange(80) - 39.5)[None, :] * PIXEL_UM
    centre = 1.3 * PIXEL_UM * np.cos(theta) + 0.7 * PIXEL_UM * np.sin(theta)

    def disc(radius_um: float) -> np.ndarray:
        return 2 * np.sqrt(np.clip(radius_um**2 - (t_um - centre) ** 2, 0, None)) / PIXEL_UM

    rings = [disc(r + w) - disc(r) for r, w in ((300, 20), (420, 40), (560, 60), (700, 20))]
    weights = np.array([[1, 0.2, 0, 0.5], [0, 1, 0.3, 0.5], [0.4, 0, 1, 0.5], [0, 0.6, 0, 1.0]])
    clean = np.einsum("rat,rq->atq", np.stack(rings), weights)
    counts = np.random.default_rng(seed).poisson(200 * clean)
    return counts / 200, np.sqrt(np.maximum(counts, 1)) / 200, clean


@pytest.mark.parametrize("seed", [0, 1])
def test_spots_are_replaced_and_layers_kept(seed: int) -> None:
    noisy, errors, clean = _layered_sinogram(seed)
    assert not suppress_spots(noisy, errors).replaced.any()  # no spot: nothing touched
    rng = np.random.default_rng(seed + 10)
    n_angles, n_t, n_q = noisy.shape
    frames = rng.random((n_angles, n_t)) < 0.02
    spots = np.zeros(noisy.shape, dtype=bool)
    for a, t in np.argwhere(frames):
        spots[a, t, rng.integers(n_q)] = True
    # a spot adds as much as a few times the brightest cell (the twin's: 30 x the frame's
    # brightest pixel, spread over the pixels of its q bin)
    spotted = noisy + spots * rng.uniform(1.0, 5.0, noisy.shape) * clean.max()
    result = suppress_spots(spotted, errors)
    # a spot next to a brighter spot of its channel stays: 14 neighbours x 0.5 % of the
    # cells, half of them brighter, leave ~3.5 % of the spots
    assert result.replaced[spots].mean() >= 0.95
    assert np.sum(result.replaced & ~spots) <= 2  # of 28 800 cells
    # replaced by the neighbours' median: within the layers' contrast of the truth
    assert np.abs(result.data - clean)[spots & result.replaced].max() < 0.5 * clean.max()
    assert np.array_equal(result.data[~result.replaced], spotted[~result.replaced])


def test_missing_cells_are_neither_flagged_nor_used() -> None:
    noisy, errors, _ = _layered_sinogram(0)
    noisy[5] = np.nan
    noisy[20, 30, 1] += 10 * np.nanmax(noisy)
    result = suppress_spots(noisy, errors)
    assert result.replaced[20, 30, 1] and not result.replaced[5].any()
    assert np.isnan(result.data[5]).all() and np.isfinite(result.data[20, 30, 1])


def test_a_cube_is_required() -> None:
    with pytest.raises(ValueError, match="n_angles, n_translations, n_q"):
        suppress_spots(np.zeros((4, 5)))


def test_a_frame_bright_in_many_channels_is_a_feature_not_a_spot() -> None:
    """A compact bright object far from the axis moves by more than the reach between
    angles; it raises every channel of its frame, a spot only a few."""
    noisy, errors, _ = _layered_sinogram(0)
    noisy[40, 10, :] += 10 * noisy.max()  # all 4 channels of one frame
    noisy[41, 60, 2] += 10 * noisy.max()  # one channel: a spot
    result = suppress_spots(noisy, errors)
    assert not result.replaced[40, 10].any() and result.replaced[41, 60, 2]


def test_channel_chunks_give_the_same_result() -> None:
    noisy, errors, _ = _layered_sinogram(1)
    noisy[10:80:7, 20:60:5, 2] += 5 * noisy.max()
    whole, chunked = suppress_spots(noisy, errors), suppress_spots(noisy, errors, chunk=1)
    assert whole.replaced.sum() >= 40
    assert np.array_equal(whole.replaced, chunked.replaced)
    assert np.array_equal(whole.data, chunked.data)


def test_streamed_in_place_matches_and_never_holds_the_sinogram(tmp_path) -> None:
    """`jellyroll reduce` filters the sinogram on disk, slab by slab: the same cells and values
    as the filter in memory, with less memory than the sinogram itself (the study's is 2.5 GB)."""
    import tracemalloc

    import h5py

    from jellyroll.sinogram import suppress_spots_in_place

    rng = np.random.default_rng(3)
    shape = (48, 64, 1024)
    data = rng.poisson(100.0, shape).astype(np.float32)
    data[rng.random(shape) < 2e-4] += 5000.0  # spots
    data[7, 9] = np.nan  # a missing cell
    expected = suppress_spots(data, chunk=8)
    assert expected.replaced.any()
    with h5py.File(tmp_path / "s.h5", "w") as f:
        stored = f.create_dataset("data", data=data, chunks=(1, *shape[1:]))
        tracemalloc.start()
        replaced = suppress_spots_in_place(stored, chunk=8, slab_bytes=shape[0] * shape[1] * 4 * 64)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        np.testing.assert_array_equal(stored[()], expected.data)
    assert replaced == expected.replaced.sum()
    assert peak < data.nbytes / 2, (
        f"peak {peak / 2**20:.1f} MiB of a {data.nbytes / 2**20:.1f} MiB sinogram"
    )


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 9), st.integers(1, 12), st.integers(1, 3)),
    reach=st.tuples(st.integers(0, 2), st.integers(0, 4)),
    seed=st.integers(0, 2**16),
    levels=st.integers(2, 50),
)
def test_window_median_is_scipy_median_filter(
    shape: tuple[int, int, int], reach: tuple[int, int], seed: int, levels: int
) -> None:
    """The sliding window's median is scipy's median_filter, exactly (an odd window: one
    of its values), with edges repeated, on values with many ties (``levels`` distinct)
    and windows wider than the array."""
    values = np.random.default_rng(seed).integers(0, levels, shape).astype(np.float64) / 7
    size = (2 * reach[0] + 1, 2 * reach[1] + 1, 1)
    expected = ndimage.median_filter(values, size=size, mode="nearest")
    assert np.array_equal(window_median(values, *reach), expected)

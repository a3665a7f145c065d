"""The 2D bend finder: its local noise (the sliding-window median against NumPy's), and
the bends of a twin's collector."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from jellyroll.conventions import FWHM_TO_SIGMA, MAD_TO_SIGMA
from jellyroll.defects import find_bends
from jellyroll.defects.bends import _local_noise
from jellyroll.phantom.twin import make_twin


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.01, 5.0), min_size=1, max_size=200),
    st.floats(-50.0, 400.0),
    st.integers(0, 2**16),
    st.booleans(),
)
def test_local_noise_is_the_median_of_each_window(
    steps: list[float], window_um: float, seed: int, with_nan: bool
) -> None:
    """Exactly the robust spread of each window as ``np.median`` gives it, whatever the
    window (empty ones at a negative width: NaN), ties included (values on a coarse grid)
    and a NaN in the trace (NaN wherever a window reaches it)."""
    arc = np.cumsum(steps)
    values = np.round(np.random.default_rng(seed).normal(size=arc.size), 1)
    if with_nan:
        values[arc.size // 2] = np.nan
    lo = np.searchsorted(arc, arc - window_um / 2, side="left")
    hi = np.searchsorted(arc, arc + window_um / 2, side="right")
    spread = np.abs(values - np.median(values))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # np.median of an empty window
        expected = MAD_TO_SIGMA * np.array(
            [np.median(spread[a:b]) for a, b in zip(lo, hi, strict=True)]
        )
        found = _local_noise(arc, values, window_um)
    np.testing.assert_array_equal(found, expected)


def test_the_collector_s_end_is_no_bend() -> None:
    """The small twin's Cu collector (seed 3) is bent by its 3 case-B agglomerates only; the
    trace ran on for a few samples past the collector's end towards the casing (ridge
    strength 0.3 down to -0.1) and a 4th bend of +35 um, 1 px long, was reported there,
    exit 0. The trace now ends where the ridge does."""
    twin = make_twin("aged_charged", "small", seed=3)
    p = twin.pixel_size_um
    image = ndimage.gaussian_filter(twin.mu_xray_per_um, 20.0 * FWHM_TO_SIGMA / p)
    bends = find_bends(image, p)
    truth = twin.agglomerates[twin.agglomerates["bend_amplitude_um"] > 0]
    assert len(bends) == len(truth) == 3
    for bend in bends.itertuples():  # each at its agglomerate: within its diameter + 3 px
        near = np.hypot(truth["x_um"] - bend.x_um, truth["y_um"] - bend.y_um)
        assert near.min() <= truth["equivalent_diameter_um"].max() + 3 * p

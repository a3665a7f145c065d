"""The 2D bend finder's local noise: the sliding-window median against NumPy's."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.conventions import MAD_TO_SIGMA
from jellyroll.defects.bends import _local_noise


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

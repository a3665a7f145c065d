"""Linear interpolation at scattered points against scipy's map_coordinates (the reference)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from jellyroll.interpolation import linear_at


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(*[st.integers(1, 6)] * 3),
    seed=st.integers(0, 2**32 - 1),
    nan_share=st.sampled_from([0.0, 0.1]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_linear_at_is_scipys_order_one_nearest(shape, seed, nan_share, dtype) -> None:
    """Points inside, outside (clamped), on the lattice (a NaN corner at weight 0 still
    gives NaN, as in scipy) and far out: float32 the same bits as scipy (rounded from the
    same double), float64 within a few ulp (the corners summed in another order)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=shape).astype(dtype)
    values[rng.random(shape) < nan_share] = np.nan
    index = rng.uniform(-2.0, np.array(shape) + 1.0, (40, 3))  # inside and up to 2 out
    index[:10] = np.round(index[:10])  # on the lattice
    index[10] = [1e6, -1e6, 0.5]  # far outside: clamped
    expected = ndimage.map_coordinates(values, index.T, order=1, mode="nearest")
    found = linear_at(values, index)
    assert found.dtype == values.dtype
    if dtype is np.float32:
        np.testing.assert_array_equal(found, expected)
    else:
        np.testing.assert_allclose(found, expected, rtol=1e-13, atol=1e-13)


def test_linear_at_clamps_indices_beyond_any_integer() -> None:
    """An index past the int64 range is clamped to the last (or first) plane. (scipy's own
    integer overflows there: 1e30 read the first plane for the last.)"""
    values = np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1)
    index = np.array([[1e30, 0.0, 0.0], [-1e30, 0.0, 0.0], [np.inf, 0.0, 0.0]])
    np.testing.assert_array_equal(linear_at(values, index), [3.0, 1.0, np.nan])


def test_linear_at_refuses_other_shapes() -> None:
    with pytest.raises(ValueError, match=r"3D array and \(n, 3\)"):
        linear_at(np.zeros((4, 4)), np.zeros((3, 2)))

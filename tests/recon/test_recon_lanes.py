"""The vector intrinsics of SART against NumPy: every lane written once, nothing else."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import literally, njit

from jellyroll.recon.lanes import lanes_axpy, lanes_clip, lanes_pair_axpy, lanes_pair_dot


@njit(cache=True)
def _axpy(dst: np.ndarray, at: int, src: np.ndarray, start: int, weight: float, lanes: int) -> None:
    literally(lanes)
    lanes_axpy(dst, at, src, start, np.float32(weight), lanes)


@njit(cache=True)
def _pair_axpy(
    dst: np.ndarray, at: int, src: np.ndarray, start: int, first: float, second: float, lanes: int
) -> None:
    literally(lanes)
    lanes_pair_axpy(dst, at, src, start, np.float32(first), np.float32(second), lanes)


@njit(cache=True)
def _pair_dot(
    dst: np.ndarray, at: int, src: np.ndarray, start: int, first: float, second: float, lanes: int
) -> None:
    literally(lanes)
    lanes_pair_dot(dst, at, src, start, np.float32(first), np.float32(second), lanes)


@njit(cache=True)
def _clip(dst: np.ndarray, at: int, lanes: int) -> None:
    literally(lanes)
    lanes_clip(dst, at, lanes)


@settings(max_examples=30, deadline=None)
@given(
    lanes=st.sampled_from([1, 2, 4, 8, 16]),
    at=st.integers(0, 20),
    start=st.integers(0, 20),
    weight=st.floats(-4, 4, width=32),
    seed=st.integers(0, 2**16),
)
def test_lanes_match_numpy_on_their_slice_only(
    lanes: int, at: int, start: int, weight: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    dst = rng.standard_normal((6, 7)).astype(np.float32)  # 2-D: offsets count flat values
    src = rng.standard_normal(40).astype(np.float32)
    expected = dst.copy().ravel()
    expected[at : at + lanes] += np.float32(weight) * src[start : start + lanes]
    _axpy(dst, at, src, start, weight, lanes)
    # one float32 multiply-add per value (fused or not: ~1 ulp of the operands)
    np.testing.assert_allclose(dst.ravel(), expected, rtol=1e-6, atol=1e-6)
    expected[at : at + lanes] = np.maximum(expected[at : at + lanes], 0)
    _clip(dst, at, lanes)
    np.testing.assert_allclose(dst.ravel(), expected, rtol=1e-6, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    lanes=st.sampled_from([1, 4, 16]),
    at=st.integers(0, 8),
    start=st.integers(0, 8),
    first=st.floats(-4, 4, width=32),
    second=st.floats(-4, 4, width=32),
    seed=st.integers(0, 2**16),
)
def test_pair_lanes_match_numpy_on_their_slice_only(
    lanes: int, at: int, start: int, first: float, second: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    dst = rng.standard_normal((6, 7)).astype(np.float32)
    src = rng.standard_normal(40).astype(np.float32)
    w1, w2 = np.float32(first), np.float32(second)
    # one value to two consecutive rays
    expected = dst.copy().ravel()
    expected[at : at + lanes] += w1 * src[start : start + lanes]
    expected[at + lanes : at + 2 * lanes] += w2 * src[start : start + lanes]
    _pair_axpy(dst, at, src, start, first, second, lanes)
    # a multiply and an add per value: ~1 ulp of the operands
    np.testing.assert_allclose(dst.ravel(), expected, rtol=1e-6, atol=1e-6)
    # two consecutive rays to one value: two products and two adds, ~2 ulp
    expected[at : at + lanes] += (
        w1 * src[start : start + lanes] + w2 * src[start + lanes : start + 2 * lanes]
    )
    _pair_dot(dst, at, src, start, first, second, lanes)
    np.testing.assert_allclose(dst.ravel(), expected, rtol=2e-6, atol=2e-6)

"""Slab-wise resampling against the in-memory phantom resampler, and its memory bound."""

from __future__ import annotations

import tracemalloc

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.nxct.resample import resample_slabs, write_resampled
from jellyroll.phantom.nxct import resample_rigid, rigid_matrix


def _assemble(slabs, shape):
    out = np.full(shape, np.nan, np.float32)
    for z0, values in slabs:
        out[z0 : z0 + values.shape[0]] = values
    return out


@pytest.mark.parametrize("order", [0, 1, 3])
def test_matches_resample_rigid(order):
    rng = np.random.default_rng(1)
    source = rng.random((20, 24, 28), dtype=np.float32)
    source_to_target = rigid_matrix((9.0, 2.0, -3.0), (4.0, -7.0, 5.5))
    target_shape, v_t = (17, 30, 26), 1.7
    expected = resample_rigid(
        source,
        2.0,
        source_to_target,
        output_shape=target_shape,
        output_voxel_um=v_t,
        order=order,
    )
    got = _assemble(
        resample_slabs(
            source, 2.0, np.linalg.inv(source_to_target), target_shape, v_t, slab=4, order=order
        ),
        target_shape,
    )
    tol = 1e-5 if order <= 1 else 1e-4  # cubic: prefilter of a cropped block, see _SPLINE_MARGIN
    np.testing.assert_allclose(got, expected, atol=tol)


def test_write_resampled_chunks(tmp_path):
    source = np.arange(8 * 9 * 10, dtype=np.float32).reshape(8, 9, 10)
    with h5py.File(tmp_path / "r.h5", "w") as f:
        data = write_resampled(f, "v", source, 1.0, np.eye(4), (8, 9, 10), 1.0, slab=3)
        assert data.chunks == (3, 9, 10)
        assert data.attrs["voxel_um"] == 1.0
        np.testing.assert_allclose(data[()], source)


def test_memory_holds_a_few_slabs(tmp_path):
    n, slab = 256, 16
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        data = f.create_dataset("v", (n, n, n), np.float32, chunks=(16, 64, 64))
        plane = np.linspace(0, 1, n * n, dtype=np.float32).reshape(n, n)
        for z in range(n):
            data[z] = plane * z
    target_to_source = rigid_matrix((7.0, 0.5, -0.3), (3.0, -2.0, 4.0))
    slab_bytes = slab * n * n * 4
    with h5py.File(path, "r") as f:
        tracemalloc.start()
        count = 0
        for _z0, values in resample_slabs(f["v"], 1.0, target_to_source, (n,) * 3, 1.0, slab=slab):
            count += values.shape[0]
            del values
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert count == n
    # Held at once: the slab's source box (16 planes + 2.2 of the 0.5 deg tilt over 256 voxels
    # + 2 x 2 margin, ~23 planes, 1.4 slabs) and the output slab, ~2.5 slabs (10 MiB measured);
    # the bound is 3 slabs (12 MiB) of a 64 MiB volume (16 slabs).
    assert peak < 3 * slab_bytes, f"peak {peak / 2**20:.1f} MiB"


class _CountingSource:
    """An on-disk-like source (not an ndarray; a ``dtype`` or only a shape and slicing)
    that counts the planes read from it."""

    def __init__(self, array: np.ndarray, with_dtype: bool) -> None:
        self.array, self.shape = array, array.shape
        if with_dtype:
            self.dtype = array.dtype  # uint16: kept and interpolated as it is
        self.planes_read = np.zeros(array.shape[0], int)

    def __getitem__(self, index):
        self.planes_read[index[0]] += 1
        return self.array[index]


@pytest.mark.parametrize(
    ("rotation", "with_dtype"), [((0.0, 5.0, 3.0), True), ((40.0, 178.0, 2.0), False)]
)
def test_tilted_slabs_read_each_plane_once(rotation, with_dtype):
    """A 5 deg tilt makes each slab's box span ~4x the slab's planes; the planes carried over
    between slabs (upwards, and downwards for a cell turned upside down) are read once and
    give the in-memory result."""
    rng = np.random.default_rng(2)
    array = rng.integers(0, 60000, (40, 64, 64), dtype=np.uint16)
    source = _CountingSource(array, with_dtype)
    target_to_source = rigid_matrix(rotation, (1.0, -2.0, 1.5))
    args = (1.0, target_to_source, (40, 64, 64), 1.0)
    got = _assemble(resample_slabs(source, *args, slab=3, outside=np.nan), (40, 64, 64))
    expected = _assemble(
        resample_slabs(array.astype(np.float32), *args, slab=40, outside=np.nan), (40, 64, 64)
    )
    np.testing.assert_array_equal(got, expected)  # same arithmetic: float64 inside ndimage
    assert source.planes_read.max() == 1


# --- properties of the rigid resampling -----------------------------------------------------

_ROTATIONS = st.lists(st.floats(-180.0, 180.0), min_size=3, max_size=3)
_SHIFTS = st.lists(st.floats(-6.0, 6.0), min_size=3, max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    _ROTATIONS,
    _SHIFTS,
    st.lists(st.integers(4, 14), min_size=3, max_size=3),
    st.lists(st.integers(3, 14), min_size=3, max_size=3),
    st.floats(0.6, 2.5),
    st.integers(1, 6),
    st.sampled_from([1, 3]),
    st.integers(0, 2**32 - 1),
)
def test_slabs_match_the_whole_volume_resampling_for_any_rigid_transform(
    rotation, shift, source_shape, target_shape, target_voxel, slab, order, seed
) -> None:
    """Any rotation (so the slab boxes tilt every way), shift, shapes, voxel ratio and slab
    size: the slab-wise resampling is the in-memory one. Tolerance: float32 output (1e-6 of
    values in [0, 1)) for linear; for cubic the prefilter of a cropped block, < 1e-6 at the
    12-voxel margin, plus float32 (the example test above uses 1e-4 likewise)."""
    source = np.random.default_rng(seed).random(source_shape, dtype=np.float32)
    source_to_target = rigid_matrix(rotation, shift)
    expected = resample_rigid(
        source,
        1.0,
        source_to_target,
        output_shape=target_shape,
        output_voxel_um=target_voxel,
        order=order,
    )
    slabs = resample_slabs(
        source,
        1.0,
        np.linalg.inv(source_to_target),
        target_shape,
        target_voxel,
        slab=slab,
        order=order,
    )
    got = _assemble(slabs, target_shape)
    np.testing.assert_allclose(got, expected, atol=1e-5 if order == 1 else 1e-4)


@settings(max_examples=200, deadline=None)
@given(_ROTATIONS, _SHIFTS, _ROTATIONS, _SHIFTS)
def test_rigid_matrices_compose_and_invert_as_rigid_motions(r1, s1, r2, s2) -> None:
    """A rigid matrix has an orthonormal rotation of determinant +1 and bottom row (0 0 0 1);
    products and inverses of rigid matrices stay rigid; (rotate, shift) applied to a point is
    R p + s (rotate first, as the docstring says)."""
    a, b = rigid_matrix(r1, s1), rigid_matrix(r2, s2)
    for m in (a, b, a @ b, np.linalg.inv(a)):
        np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
        assert np.linalg.det(m[:3, :3]) == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_array_equal(m[3], [0, 0, 0, 1])
    p = np.array([1.5, -2.0, 0.25, 1.0])
    np.testing.assert_allclose((a @ p)[:3], a[:3, :3] @ p[:3] + np.asarray(s1), atol=1e-12)
    np.testing.assert_allclose(np.linalg.inv(a) @ (a @ p), p, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=3, max_size=3), st.floats(0.5, 3.0))
def test_a_shift_of_whole_voxels_moves_the_volume_by_them(shift_voxels, voxel) -> None:
    """SPEC section 6: ``source_to_target`` maps source points to target points, so a shift
    of +k voxels moves the content k voxels up the index: target[i] == source[i - k],
    exactly (a whole-voxel shift interpolates nothing), away from the clamped edges."""
    source = np.random.default_rng(0).random((9, 10, 11), dtype=np.float32)
    k = np.asarray(shift_voxels)
    out = resample_rigid(source, voxel, rigid_matrix((0, 0, 0), k * voxel), order=1)
    inner = tuple(slice(max(d, 0), n + min(d, 0)) for d, n in zip(k, source.shape, strict=True))
    moved = tuple(slice(s.start - d, s.stop - d) for s, d in zip(inner, k, strict=True))
    np.testing.assert_allclose(out[inner], source[moved], rtol=0, atol=1e-6)


@settings(max_examples=150, deadline=None)
@given(_ROTATIONS, _SHIFTS)
def test_resampling_by_a_transform_then_its_inverse_gives_the_volume_back(rotation, shift):
    """A smooth volume (a Gaussian blob of 3.5 voxels sigma, well inside the grid) resampled
    by T then by T^-1, cubic, returns to itself in the inner region that neither pass takes
    from beyond the edges. Tolerance 1 % of the peak: two cubic-spline interpolations of a
    Gaussian this wide (its spectrum at Nyquist ~1e-13) err ~1e-3 each, plus the blob's tail
    cut at the edge (< 1e-3 of the peak in a 24-voxel grid)."""
    n, voxel = 24, 2.0
    c = (np.arange(n) - (n - 1) / 2) * voxel
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    sigma = 3.5 * voxel
    volume = np.exp(-(z**2 + y**2 + x**2) / (2 * sigma**2)).astype(np.float32)
    t = rigid_matrix(rotation, shift)
    there = resample_rigid(volume, voxel, t, order=3)
    back = resample_rigid(there, voxel, np.linalg.inv(t), order=3)
    # inside radius r a rotation about the centre plus |shift| <= 6*sqrt(3) um stays on grid
    inner = np.sqrt(z**2 + y**2 + x**2) < (n - 1) / 2 * voxel - np.linalg.norm(shift) - voxel
    np.testing.assert_allclose(back[inner], volume[inner], rtol=0, atol=1e-2)


@pytest.mark.parametrize("order", [1, 3])
def test_voxels_not_measured_stay_where_they_are(order: int) -> None:
    """A NaN and an inf voxel (not measured) in a (12, 12, 12) volume shifted by a fraction
    of a voxel: NaN where they carry interpolation weight (at most the kernel's reach, 4^3
    voxels each for cubic), elsewhere the values of the intact volume's resampling. Before,
    the cubic prefilter spread the NaN over the whole volume (1728 of 1728 NaN) and the inf
    came out as inf (linear), exit 0. Tolerance: linear is exact (the hole's weight is 0);
    cubic keeps the prefilter's ringing about the filled hole, 0.27^k at k voxels (0.014 on
    noise of unit range, measured)."""
    rng = np.random.default_rng(0)
    volume = (rng.random((12, 12, 12)) + 1).astype(np.float32)
    holed = volume.copy()
    holed[6, 6, 6], holed[3, 8, 2] = np.nan, np.inf
    shift = np.eye(4)
    shift[:3, 3] = [0.3, 0.2, -0.4]
    intact, got = (
        _assemble(resample_slabs(v, 1.0, shift, v.shape, 1.0, slab=5, order=order), v.shape)
        for v in (volume, holed)
    )
    assert not np.isinf(got).any()
    unmeasured = np.isnan(got)
    assert 2 <= unmeasured.sum() <= 2 * (order + 1) ** 3
    np.testing.assert_allclose(
        got[~unmeasured], intact[~unmeasured], atol=0 if order == 1 else 0.02
    )

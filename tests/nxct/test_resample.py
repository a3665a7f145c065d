"""Slab-wise resampling against the in-memory phantom resampler, and its memory bound."""

from __future__ import annotations

import tracemalloc

import h5py
import numpy as np
import pytest

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

"""RGB fusion: channels, window clipping, NaN, and the plane-wise voxel sample."""

from __future__ import annotations

import h5py
import numpy as np

from jellyroll.nxct.fuse import contrast_window, fuse_rgb, sample_voxels


def test_channels_and_clipping():
    xray = np.array([[-1.0, 0.0, 0.5, 1.0, 2.0]])
    neutron = np.array([[10.0, 10.0, 15.0, 20.0, 30.0]])
    rgb = fuse_rgb(xray, neutron, (0.0, 1.0), (10.0, 20.0))
    assert rgb.shape == (1, 5, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 0, 128, 255, 255])
    np.testing.assert_array_equal(rgb[0, :, 1], [0, 0, 128, 255, 255])
    np.testing.assert_array_equal(rgb[..., 1], rgb[..., 2])


def test_nan_is_black():
    rgb = fuse_rgb(np.array([np.nan, 1.0]), np.array([1.0, np.nan]), (0.0, 1.0), (0.0, 1.0))
    np.testing.assert_array_equal(rgb, [[0, 255, 255], [255, 0, 0]])


def test_window_is_robust_to_outliers():
    values = np.r_[np.linspace(0.0, 1.0, 10_001), 1e6, -1e6, np.nan]
    lo, hi = contrast_window(values, 1, 99)
    assert abs(lo - 0.01) < 1e-3 and abs(hi - 0.99) < 1e-3


def test_sample_reads_planes_of_h5(tmp_path):
    a = np.arange(20 * 6 * 7, dtype=np.float32).reshape(20, 6, 7)
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["a"] = a
        f["b"] = -a
        sample = sample_voxels(f["a"], f["b"], n_planes=3, max_values=30)
    assert 0 < sample.values.shape[0] <= 30 and sample.values.shape[1] == 2
    assert sample.planes.tolist() == [3, 10, 16]  # evenly spaced through the 20 planes
    np.testing.assert_array_equal(sample.values[:, 1], -sample.values[:, 0])
    z = (sample.values[:, 0] // 42).astype(int)
    assert set(z) <= set(sample.planes.tolist())

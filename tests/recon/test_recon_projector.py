"""The line projector pair (jellyroll.recon.projector) and the geometry convention."""

from __future__ import annotations

import astra
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

from jellyroll.phantom.acquisition import project
from jellyroll.recon import ParallelGeometry, back, forward, ray_lengths
from jellyroll.recon.astra_backend import astra_geometries


def _smooth(rng: np.random.Generator, ny: int, nx: int, nc: int = 1) -> np.ndarray:
    maps = gaussian_filter(rng.random((ny, nx, nc)), (2, 2, 0)).astype(np.float32)
    maps[ny // 4 : ny // 3, nx // 5 : nx // 3] += 1.0  # a sharp block
    return maps[..., 0] if nc == 1 else maps


def _geometry(n_t: int, n_angles: int, offset_steps: float, shape=None, step_um=10.0):
    translations = 20.0 + (np.arange(n_t) - (n_t - 1) / 2) * step_um / 1000
    return ParallelGeometry.from_scan(
        np.linspace(0.0, 180.0, n_angles, endpoint=False) + 1.0,
        translations,
        20.0 + offset_steps * step_um / 1000,
        shape=shape,
    )


@pytest.mark.parametrize(("n", "shape"), [(48, None), (49, None), (50, (44, 52))])
def test_forward_is_the_exact_line_integral_of_the_pixelated_map(n, shape) -> None:
    geometry = _geometry(n, 23, 1.37, shape)
    maps = _smooth(np.random.default_rng(n), *geometry.shape)
    ours = forward(geometry, maps)
    # the twin's projector with an ideal line beam integrates the same pixel-constant map,
    # through a tabulated trapezoid (4097 samples, linear interpolation): measured up to
    # 3e-5 of the peak near 90 deg, where the ramps span few table steps
    exact = project(
        maps,
        geometry.pixel_size_um,
        geometry.angles_deg,
        20.0 + 1.37e-2 + geometry.t_um / 1000,
        rotation_centre_mm=20.0 + 1.37e-2,
        beam_fwhm_um=0.0,
    )
    assert np.abs(ours - exact).max() < 1e-4 * np.abs(exact).max()


def test_geometry_convention_matches_astra_line_projector() -> None:
    geometry = _geometry(64, 37, -2.6)
    maps = _smooth(np.random.default_rng(1), 64, 64)
    volume, projections = astra_geometries(geometry)
    projector = astra.create_projector("line", projections, volume)
    try:
        sinogram_id, theirs = astra.create_sino(maps, projector)
        astra.data2d.delete(sinogram_id)
        residual = np.random.default_rng(2).random(theirs.shape).astype(np.float32)
        image_id, their_back = astra.create_backprojection(residual, projector)
        astra.data2d.delete(image_id)
    finally:
        astra.projector.delete(projector)
    # same model (line-pixel intersection lengths); astra's float32 arithmetic differs
    # in order and in its edge handling by ~1e-5 of the peak
    assert np.abs(forward(geometry, maps) - theirs).max() < 1e-4 * np.abs(theirs).max()
    ours_back = back(geometry, residual)
    assert np.abs(ours_back - their_back).max() < 1e-4 * np.abs(their_back).max()


def test_channels_are_independent() -> None:
    geometry = _geometry(40, 17, 0.5)
    maps = _smooth(np.random.default_rng(3), 40, 40, nc=5)
    together = forward(geometry, maps)
    for k in range(5):
        np.testing.assert_allclose(together[..., k], forward(geometry, maps[..., k]), atol=1e-5)


def test_ray_lengths_at_zero_degrees() -> None:
    geometry = ParallelGeometry(np.array([0.0, 90.0]), -195.0, 10.0, 40, (30, 40), 10.0)
    lengths = ray_lengths(geometry)
    # vertical rays inside the map cross its 30 rows; horizontal rays its 40 columns
    inside = np.abs(geometry.t_um) < 200
    np.testing.assert_allclose(lengths[0, inside], 300.0, rtol=1e-6)
    np.testing.assert_allclose(lengths[1, np.abs(geometry.t_um) < 150], 400.0, rtol=1e-6)


geometries = st.builds(
    lambda n_t, ny, nx, n_a, start, offset, ratio: ParallelGeometry(
        np.sort(np.random.default_rng(n_a).uniform(0, 360, n_a)) + start,
        offset - (n_t - 1) / 2 * 10.0,
        10.0,
        n_t,
        (ny, nx),
        10.0 * ratio,
    ),
    n_t=st.integers(4, 40),
    ny=st.integers(3, 30),
    nx=st.integers(3, 30),
    n_a=st.integers(1, 12),
    start=st.sampled_from([0.0, 45.0, 90.0, 13.7]),
    offset=st.floats(-30.0, 30.0),
    ratio=st.sampled_from([0.5, 1.0, 1.3, 2.0]),
)


@settings(max_examples=40, deadline=None)
@given(geometry=geometries, seed=st.integers(0, 2**16))
def test_back_is_the_transpose_of_forward(geometry: ParallelGeometry, seed: int) -> None:
    rng = np.random.default_rng(seed)
    maps = rng.standard_normal((*geometry.shape, 3)).astype(np.float32)
    sinogram = rng.standard_normal((geometry.n_angles, geometry.n_t, 3)).astype(np.float32)
    lhs = float(np.sum(forward(geometry, maps).astype(np.float64) * sinogram))
    rhs = float(np.sum(maps.astype(np.float64) * back(geometry, sinogram)))
    # float32 accumulation: relative error ~1e-6 of the summed magnitudes
    scale = float(np.sum(np.abs(forward(geometry, np.abs(maps)) * np.abs(sinogram)))) + 1e-9
    assert abs(lhs - rhs) <= 1e-5 * scale


@settings(max_examples=25, deadline=None)
@given(
    geometry=geometries,
    seed=st.integers(0, 2**16),
    a=st.floats(-3, 3),
    b=st.floats(-3, 3),
)
def test_forward_is_linear(geometry: ParallelGeometry, seed: int, a: float, b: float) -> None:
    rng = np.random.default_rng(seed)
    u = rng.random(geometry.shape).astype(np.float32)
    v = rng.random(geometry.shape).astype(np.float32)
    combined = forward(geometry, (a * u + b * v).astype(np.float32))
    separate = a * forward(geometry, u) + b * forward(geometry, v)
    scale = (abs(a) + abs(b)) * max(float(ray_lengths(geometry).max()), 1.0)
    # float32 rounding: 1e-5 of the scale, and float32's smallest normal where a or b is so
    # small that a * u rounds on the subnormal grid (b = 1.4e-45 gave 6e-45 against 2e-49)
    tolerance = 1e-5 * scale + np.finfo(np.float32).tiny
    assert np.abs(combined - separate).max() <= tolerance


@settings(max_examples=40, deadline=None)
@given(geometry=geometries)
def test_ray_lengths_in_closed_form_are_the_projection_of_ones(geometry: ParallelGeometry) -> None:
    projected = forward(geometry, np.ones(geometry.shape, dtype=np.float32))
    # float32 sums of at most ~60 pixel weights: ~1e-6 of the longest ray; the strategy's
    # 0 and 90 deg angles put rays on pixel edges (half weights) and off the map
    np.testing.assert_allclose(
        ray_lengths(geometry), projected, rtol=0, atol=1e-5 * float(projected.max())
    )


def test_every_pixel_footprint_has_the_pixel_area() -> None:
    # rays 20 times finer than the pixels sample each trapezoid finely: the weights of a
    # pixel summed over one projection times dt give its area p**2 (Riemann sum of a
    # piecewise-linear function: error ~ (dt / p)**2 = 0.25 %)
    geometry = ParallelGeometry(
        np.random.default_rng(5).uniform(0, 180, 11), -400.0, 0.5, 1601, (20, 30), 10.0
    )
    seen = back(geometry, np.ones((11, 1601), dtype=np.float32)) * 0.5 / 11
    np.testing.assert_allclose(seen, 100.0, rtol=5e-3)


def test_geometry_from_scan_checks_spacing_and_matches_the_twin_grid() -> None:
    s = 10.0 + np.arange(8) * 0.02
    geometry = ParallelGeometry.from_scan([0.0, 90.0], s, 10.07)
    assert geometry.shape == (8, 8)
    assert geometry.pixel_size_um == pytest.approx(20.0)
    np.testing.assert_allclose(geometry.t_um, 1000 * (s - 10.07), atol=1e-9)
    np.testing.assert_allclose(geometry.x_um, (np.arange(8) - 3.5) * 20.0)
    jittered = s + np.array([0, 1, -1, 0, 0, 1, 0, 0]) * 1e-4  # 0.5 % of a step
    assert ParallelGeometry.from_scan([0.0, 90.0], jittered, 10.07).n_t == 8
    broken = s.copy()
    broken[3] += 0.005  # a quarter of a step
    with pytest.raises(ValueError, match="equally spaced"):
        ParallelGeometry.from_scan([0.0, 90.0], broken, 10.07)
    kept = geometry.subset(np.array([False, True]))
    assert kept.angles_deg.tolist() == [90.0] and kept.t0_um == geometry.t0_um


def _chord_matrix(geometry: ParallelGeometry) -> np.ndarray:
    """(n_angles * n_t, ny * nx) exact lengths (um) of each ray through each pixel square,
    float64: the line clipped to the square (slab method), rays as in astra's vectors."""
    ny, nx = geometry.shape
    p = geometry.pixel_size_um
    vectors = astra_geometries(geometry)[1]["Vectors"]
    j = np.arange(geometry.n_t) - (geometry.n_t - 1) / 2
    rx, ry, dx, dy, ux, uy = (vectors[:, k, None, None] for k in range(6))
    norm = np.hypot(rx, ry)
    px, py = dx + j[None, :, None] * ux, dy + j[None, :, None] * uy  # (a, t, 1)
    x0 = (-nx / 2 + np.tile(np.arange(nx), ny)) * p  # pixel (i, k): row i at the top
    y1 = (ny / 2 - np.repeat(np.arange(ny), nx)) * p
    low, high = np.full(px.shape[:2] + x0.shape, -np.inf), np.full(px.shape[:2] + x0.shape, np.inf)
    for start, direction, lo in ((px, rx / norm, x0), (py, ry / norm, y1 - p)):
        with np.errstate(divide="ignore", invalid="ignore"):
            a, b = (lo - start) / direction, (lo + p - start) / direction
        parallel = np.abs(direction) < 1e-15
        inside = (start >= lo) & (start <= lo + p)
        a = np.where(parallel, np.where(inside, -np.inf, np.inf), a)
        b = np.where(parallel, np.where(inside, np.inf, -np.inf), b)
        low, high = np.maximum(low, np.minimum(a, b)), np.minimum(high, np.maximum(a, b))
    return np.clip(high - low, 0.0, None).reshape(-1, ny * nx)


@settings(max_examples=60, deadline=None)
@given(geometry=geometries, seed=st.integers(0, 2**16))
def test_forward_and_back_are_exact_chord_lengths_on_any_geometry(
    geometry: ParallelGeometry, seed: int
) -> None:
    """docs/reconstruction.md: the projector is the line model (line-pixel intersection
    lengths). On random geometries (angles over the full turn, pixels 0.5-2x the ray step,
    non-square maps, an axis off the translation range's centre) forward and back are the
    exact chord-length matrix and its transpose to float32 rounding (1e-5 of the peak).
    astra's ``line`` projector agrees only to 5e-3 of the peak: on rays within a degree or
    so of an axis its float32 kernel is off the exact lengths (found here: 8.5e-4, then
    2.07e-3 of the peak in a backprojection, where jellyroll's is within 1e-7: astra's
    error, not a convention; a convention error is of the order of the peak)."""
    rng = np.random.default_rng(seed)
    maps = rng.random(geometry.shape).astype(np.float32)
    residual = rng.random((geometry.angles_deg.size, geometry.n_t)).astype(np.float32)
    chords = _chord_matrix(geometry)
    exact = (chords @ maps.ravel().astype(np.float64)).reshape(residual.shape)
    exact_back = (chords.T @ residual.ravel().astype(np.float64)).reshape(geometry.shape)
    ours, ours_back = forward(geometry, maps), back(geometry, residual)
    assert np.abs(ours - exact).max() <= 1e-5 * max(np.abs(exact).max(), 1e-6)
    assert np.abs(ours_back - exact_back).max() <= 1e-5 * max(np.abs(exact_back).max(), 1e-6)
    volume, projections = astra_geometries(geometry)
    projector = astra.create_projector("line", projections, volume)
    try:
        sinogram_id, theirs = astra.create_sino(maps, projector)
        astra.data2d.delete(sinogram_id)
        image_id, their_back = astra.create_backprojection(residual, projector)
        astra.data2d.delete(image_id)
    finally:
        astra.projector.delete(projector)
    assert np.abs(ours - theirs).max() <= 5e-3 * max(np.abs(theirs).max(), 1e-6)
    assert np.abs(ours_back - their_back).max() <= 5e-3 * max(np.abs(their_back).max(), 1e-6)

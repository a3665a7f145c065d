"""Tests of the virtual unrolling, jellyroll.unroll: cell finding, polar and spiral unrolling.

Real data: one X-ray CT slice of a commercial 18650 cell and its layer mask (shared_real).
Simulated data: digital twins whose centre, radius and Cu collector positions are known.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import cv2
import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from wound_layers import CENTRE, wound_layers

import jellyroll.unroll.spiral as spiral_module
from jellyroll.phantom.parameters import SIZES
from jellyroll.phantom.twin import Twin, make_twin
from jellyroll.unroll import (
    Cell,
    fill_unmeasured,
    find_cell,
    spiral_deviation,
    trace_spiral,
    unmeasured_samples,
    unroll_polar,
    unroll_spiral,
)
from jellyroll.unroll._sampling import bilinear
from jellyroll.unroll.spiral import _radial_smooth
from jellyroll.unroll.unmeasured import _along_circles

RAY_ANGLES = np.arange(2.5, 360.0, 5.0)  # deg, away from the twins' layer ends at 0 deg


# ---------------------------------------------------------------- helpers and fixtures


@pytest.fixture(scope="module")
def real(shared_real) -> dict:
    """The real 18650 slice, its layer mask, the cell found and the traced layer."""
    image = tifffile.imread(shared_real / "cell18650_slice.tif").astype(np.float64)
    mask = tifffile.imread(shared_real / "cell18650_slice_mask.tif") > 0
    cell = find_cell(image)
    return {"image": image, "mask": mask, "cell": cell, "trace": trace_spiral(image, cell)}


def casing_reference_fit(image: np.ndarray) -> tuple[float, float, float, float]:
    """Independent reference: centre (x, y), mean radius and thickness of the casing ring.

    The casing is the brightest material (steel, saturated in this slice): threshold at the
    99th percentile, keep the connected component reaching farthest (the outermost one),
    and fit a circle to all its pixels by algebraic least squares.
    """
    labels, count = ndi.label(image >= np.percentile(image, 99))
    extents = [np.ptp(np.nonzero(labels == k)[1]) for k in range(1, count + 1)]
    y, x = np.nonzero(labels == 1 + int(np.argmax(extents)))
    a = np.column_stack([x, y, np.ones(x.size)])
    (d, e, f), *_ = np.linalg.lstsq(a, -(x**2.0 + y**2.0), rcond=None)
    xc, yc = -d / 2, -e / 2
    radius = np.sqrt(xc**2 + yc**2 - f)
    return xc, yc, radius, x.size / (2 * np.pi * radius)


def mask_crossings(mask: np.ndarray, centre: tuple[float, float], angle_deg: float) -> int:
    """Number of layer bands (0 -> 1 transitions) met along a ray from ``centre``."""
    r = np.arange(0.0, max(mask.shape), 0.25)
    a = np.deg2rad(angle_deg)
    x, y = centre[0] + r * np.cos(a), centre[1] + r * np.sin(a)
    inside = (x >= 0) & (x <= mask.shape[1] - 1) & (y >= 0) & (y <= mask.shape[0] - 1)
    values = ndi.map_coordinates(mask.astype(np.uint8), [y[inside], x[inside]], order=0)
    return int(np.sum(np.diff(values.astype(int)) == 1))


def true_cell(twin: Twin) -> tuple[float, float, float]:
    """Twin's cell centre (x, y) and outer radius in pixels."""
    n = twin.shape[0]
    p = twin.geometry.params
    ps = twin.pixel_size_um
    return (
        (n - 1) / 2 + p.centre_um[0] / ps,
        (n - 1) / 2 + p.centre_um[1] / ps,
        p.outer_radius_um / ps,
    )


def true_cu_radii(twin: Twin, cell: Cell, angle_deg: float) -> np.ndarray:
    """Radii (px) of the Cu collector along a ray: Cu-fraction centroid of each crossing."""
    r = np.arange(0.0, cell.radius, 0.05)
    a = np.deg2rad(angle_deg)
    cu = ndi.map_coordinates(
        twin.raster.fractions["cu"], [cell.y + r * np.sin(a), cell.x + r * np.cos(a)], order=1
    )
    runs, count = ndi.label(cu > 0.02)
    return np.array(
        [np.sum(r[runs == k] * cu[runs == k]) / np.sum(cu[runs == k]) for k in range(1, count + 1)]
    )


@cache
def tiny_twin(seed: int) -> Twin:
    return make_twin("aged_charged", "tiny", seed=seed)


@cache
def roomy_twin(seed: int, centre_um: tuple[float, float]) -> Twin:
    """A ``small`` twin (3 turns, 20 um pixels) whose roll ends inside the casing.

    In the ``small`` preset the last ~0.1 turn of the roll runs into the casing; a 2.9 mm
    casing leaves the whole Cu collector visible, so its true length is exactly 3 turns.
    """
    base = SIZES["small"]
    cell = base.cell.model_copy(update={"outer_diameter_um": 2900.0, "centre_um": centre_um})
    size = base.model_copy(update={"n_translations": 170, "cell": cell})
    return make_twin("aged_charged", size, seed=seed)


def archimedean_spiral(
    shape: tuple[int, int],
    centre: tuple[float, float],
    r0: float,
    pitch: float,
    turns: float,
    direction: int,
) -> np.ndarray:
    """A bright layer (Gaussian profile, sigma 1.2 px) along r = r0 + pitch t / 2 pi for the
    winding angle t in [0, 2 pi turns], at image angle direction * t (px)."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    r = np.hypot(x - centre[0], y - centre[1])
    t = np.mod(direction * np.arctan2(y - centre[1], x - centre[0]), 2 * np.pi)
    image = np.zeros(shape)
    for k in range(int(np.ceil(turns)) + 1):
        on = t + 2 * np.pi * k <= 2 * np.pi * turns
        layer = r0 + pitch * (t / (2 * np.pi) + k)
        image = np.maximum(image, on * np.exp(-0.5 * ((r - layer) / 1.2) ** 2))
    return image


def spiral_arc_px(r0: float, pitch: float, r_a: float, r_b: float) -> float:
    """Arc length (px) of r = r0 + b t between the radii r_a and r_b (closed form of the
    integral of sqrt(r^2 + b^2) dt, b = pitch / 2 pi)."""
    b = pitch / (2 * np.pi)

    def primitive(r: float) -> float:
        return (r * np.hypot(r, b) + b**2 * np.arcsinh(r / b)) / (2 * b)

    return primitive(r_b) - primitive(r_a)


# ---------------------------------------------------------------- find_cell, real slice


def test_find_cell_real_slice_matches_casing_fit(real) -> None:
    cell = real["cell"]
    xc, yc, radius, thickness = casing_reference_fit(real["image"])
    # the SPEC acceptance: centre within 2 px of an independent fit of the ring's pixels
    assert np.hypot(cell.x - xc, cell.y - yc) < 2.0
    # find_cell reports the ring's outer edge: half a thickness beyond its mean radius
    assert abs(cell.radius - (radius + thickness / 2)) < 1.0


def test_cell_unpacks_and_is_frozen(real) -> None:
    x, y, radius = real["cell"]
    assert (x, y) == real["cell"].centre and radius == real["cell"].radius
    with pytest.raises(AttributeError):
        real["cell"].x = 0.0


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    quarter_turns=st.integers(0, 3),
    flip=st.booleans(),
    scale=st.floats(0.55, 1.3),
    shift=st.tuples(st.integers(-15, 40), st.integers(-15, 40)),
    noise=st.floats(0.0, 0.1),
)
def test_find_cell_consistent_under_transforms(
    real, quarter_turns: int, flip: bool, scale: float, shift: tuple[int, int], noise: float
) -> None:
    """Rotated, flipped, rescaled, shifted (padded or cropped) and noisy copies of the real
    slice give the transformed centre and radius (exact geometry: tolerance 1 px)."""
    image = real["image"]
    x, y, radius = real["cell"]
    for _ in range(quarter_turns):  # np.rot90: out[i, j] = in[j, W - 1 - i]
        x, y = y, image.shape[1] - 1 - x
        image = np.rot90(image)
    if flip:
        x, image = image.shape[1] - 1 - x, image[:, ::-1]
    small = cv2.resize(
        np.ascontiguousarray(image, dtype=np.float32),
        None,
        fx=scale,
        fy=scale,
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    sx, sy = small.shape[1] / image.shape[1], small.shape[0] / image.shape[0]
    x, y, radius = (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, radius * sx
    dx, dy = shift  # positive: pad on the left/top, negative: crop
    moved = np.pad(small, ((max(dy, 0), 0), (max(dx, 0), 0)))[max(-dy, 0) :, max(-dx, 0) :]
    rng = np.random.default_rng(quarter_turns)
    moved = moved + rng.normal(0.0, noise * np.ptp(image), moved.shape)
    found = find_cell(moved)
    assert np.hypot(found.x - (x + dx), found.y - (y + dy)) < 1.0
    assert abs(found.radius - radius) < 1.0


# ---------------------------------------------------------------- find_cell, twins


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_find_cell_twin_attenuation_map(seed: int) -> None:
    twin = tiny_twin(seed)
    x, y, radius = true_cell(twin)
    cell = find_cell(twin.mu_xray_per_um)
    assert np.hypot(cell.x - x, cell.y - y) < 1.0
    assert abs(cell.radius - radius) < 1.0


@pytest.mark.parametrize("scale", [0.5, 1.7, 3.0])
def test_find_cell_twin_other_magnifications(scale: float) -> None:
    twin = tiny_twin(2)
    x, y, radius = true_cell(twin)
    mu = twin.mu_xray_per_um
    image = cv2.resize(mu, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    s = image.shape[1] / mu.shape[1]
    cell = find_cell(image)
    assert np.hypot(cell.x - ((x + 0.5) * s - 0.5), cell.y - ((y + 0.5) * s - 0.5)) < 1.0
    assert abs(cell.radius - radius * s) < 1.0


def test_find_cell_twin_off_centre_and_noisy() -> None:
    base = SIZES["tiny"]
    cell_params = base.cell.model_copy(update={"centre_um": (420.0, -350.0)})
    twin = make_twin(
        "aged_charged", base.model_copy(update={"n_translations": 130, "cell": cell_params})
    )
    x, y, radius = true_cell(twin)
    mu = twin.mu_xray_per_um
    noisy = mu + np.random.default_rng(0).normal(0.0, 0.1 * mu.max(), mu.shape)
    cell = find_cell(noisy)
    assert np.hypot(cell.x - x, cell.y - y) < 1.0
    assert abs(cell.radius - radius) < 1.0


def test_find_cell_on_a_housing_ring_map() -> None:
    """A map of a housing component alone (as a housing diffraction ring in WAXS-CT)."""
    twin = tiny_twin(1)
    x, y, radius = true_cell(twin)
    cell = find_cell(twin.raster.fractions["casing"])
    assert np.hypot(cell.x - x, cell.y - y) < 1.0
    assert abs(cell.radius - radius) < 1.0


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).normal(size=(200, 200)),
        np.random.default_rng(1).poisson(5.0, (120, 160)).astype(float),
        np.zeros((64, 64)),
        np.full((64, 64), np.nan),
    ],
    ids=["gaussian-noise", "poisson-noise", "constant", "all-nan"],
)
def test_find_cell_rejects_images_without_a_ring(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="no casing ring found"):
        find_cell(image)


def test_find_cell_rejects_non_2d_input() -> None:
    with pytest.raises(ValueError, match="2D"):
        find_cell(np.zeros((3, 32, 32)))


# ---------------------------------------------------------------- polar unrolling


def test_unroll_polar_axes_and_orientation() -> None:
    ny, nx, ps = 81, 101, 2.5
    centre = (55.3, 38.7)
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    radius_um = np.hypot(x - centre[0], y - centre[1]) * ps
    angle = np.rad2deg(np.arctan2(y - centre[1], x - centre[0]))
    maps = np.stack([radius_um, np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))])
    view = unroll_polar(maps[None], centre, ps, radius_range_um=(10.0, 90.0), n_angles=360)
    assert view.data.shape == (1, 3, view.radius_um.size, 360)
    assert view.radius_um[0] == 10.0 and view.radius_um[-1] == 90.0
    assert np.allclose(np.diff(view.radius_um), ps)  # one sample per pixel by default
    # rows are radius: a radius map unrolls to its own axis (up to the linear interpolation
    # of a cone, < 0.1 um here); columns are the image angle
    assert np.allclose(view.data[0, 0], view.radius_um[:, None], atol=0.1)
    a = np.deg2rad(view.angle_deg)
    assert np.allclose(view.data[0, 1], np.cos(a), atol=0.02)
    assert np.allclose(view.data[0, 2], np.sin(a), atol=0.02)  # 90 deg = +y = down the rows
    assert np.allclose(view.arc_length_um, 90.0 * a)
    xs, ys = view.to_xy(50.0, 90.0)
    assert np.allclose((xs, ys), (centre[0], centre[1] + 50.0 / ps))


def test_unroll_polar_defaults_from_the_cell(real) -> None:
    cell = real["cell"]
    view = unroll_polar(real["image"], cell, 35.0)
    assert view.radius_um[-1] == pytest.approx(cell.radius * 35.0)
    assert view.data.shape == (view.radius_um.size, view.angle_deg.size)
    # one pixel of arc at the outer radius, and the casing is the last bright ring
    assert view.angle_deg.size == int(np.ceil(2 * np.pi * cell.radius))
    profile = np.nanmedian(view.data, axis=1)
    assert np.argmax(profile) > 0.95 * profile.size


# ---------------------------------------------------------------- spiral tracing, real slice


def test_spiral_turns_match_the_layer_mask(real) -> None:
    """Along rays every 5 deg, the traced layer crosses as many times as the mask has bands.

    The mask's bands end (inner tail by the hollow, outer tail at the casing) a few degrees
    from where the traced ridge fades, so a ray or two between the two ends may differ.
    """
    trace, mask = real["trace"], real["mask"]
    angles = np.arange(0.0, 360.0, 5.0)
    expected = np.array([mask_crossings(mask, trace.centre, a) for a in angles])
    found = np.array([trace.crossings(a).size for a in angles])
    assert np.bincount(found).argmax() == np.bincount(expected).argmax() == 19
    assert np.mean(found == expected) >= 0.9
    assert round(trace.n_turns) == 19


def test_spiral_on_the_mask_follows_the_same_layer(real) -> None:
    on_mask = trace_spiral(real["mask"].astype(float), real["cell"])
    trace = real["trace"]
    assert abs(on_mask.n_turns - trace.n_turns) < 0.05
    assert on_mask.direction == trace.direction
    for angle in RAY_ANGLES:
        a, b = on_mask.crossings(angle), trace.crossings(angle)
        if a.size == b.size:  # both trace the middle of the bright bands
            assert np.abs(a - b).max() < 1.0


def test_spiral_mirror_image_winds_the_other_way(real) -> None:
    mirrored = real["image"][:, ::-1]
    trace = trace_spiral(mirrored, find_cell(mirrored))
    assert trace.direction == -real["trace"].direction
    assert abs(trace.n_turns - real["trace"].n_turns) < 0.05
    assert trace.pitch_um == pytest.approx(real["trace"].pitch_um, rel=0.01)


@pytest.mark.parametrize("variant", ["magnified x0.6", "core dented by 1.5 pitches"])
def test_spiral_on_altered_real_slices(real, variant: str) -> None:
    """Other magnifications and a harder buckled core give the same layer length.

    The dent pushes the layers inwards by 1.5 pitches at the hollow, over 40 deg of angle,
    fading outwards over 5 turns (neighbouring turns then differ by < 0.3 pitch)."""
    image, cell = real["image"], real["cell"]
    if variant.startswith("magnified"):
        image = cv2.resize(image, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    else:
        pitch = real["trace"].pitch_um
        y, x = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(float)
        r, theta = np.hypot(x - cell.x, y - cell.y), np.arctan2(y - cell.y, x - cell.x)
        across = np.angle(np.exp(1j * (theta - np.deg2rad(200.0)))) / 0.35
        fade = np.exp(-np.maximum(r - 50.0, 0.0) / (5 * pitch))
        r = r + 1.5 * pitch * np.exp(-0.5 * across**2) * fade
        image = ndi.map_coordinates(
            image, [cell.y + r * np.sin(theta), cell.x + r * np.cos(theta)], order=1
        )
    trace = trace_spiral(image, find_cell(image))
    assert trace.n_turns == pytest.approx(real["trace"].n_turns, abs=0.1)


def test_spiral_rejects_a_map_without_layers() -> None:
    y, x = np.mgrid[0:120, 0:120]
    r = np.hypot(x - 60.0, y - 60.0)
    casing_only = ((r > 50) & (r < 55)).astype(float)
    with pytest.raises(ValueError, match="no wound layers"):
        trace_spiral(casing_only, find_cell(casing_only))


@pytest.mark.parametrize("offset_px", [5, 8])
def test_spiral_refuses_a_trace_that_left_the_collector(real, offset_px: int) -> None:
    """From a centre 5 px off, the trace followed the casing's arc for 0.4 turns with a
    pitch of 2.7 px (the roll's is 10.3): returned as the collector, and diagnose unrolled
    and searched it for bends. 0-4 and 6 px off trace all 18-19 turns."""
    cell = real["cell"]
    with pytest.raises(ValueError, match=r"covers 0\.4\d turns"):
        trace_spiral(real["image"], Cell(cell.x + offset_px, cell.y, cell.radius))


def test_spiral_refuses_a_trace_off_the_windings_pitch(real, monkeypatch) -> None:
    """The other way a trace leaves the collector: its mean pitch not the radial pattern's
    (traces that left it read 0.02-0.71 of it). Simulated by a winding that reports twice
    the real pitch: the layer followed is the real one, 10.3 px apart."""
    winding = spiral_module._winding

    def doubled(*args):
        direction, pitch = winding(*args)
        return direction, 2 * pitch

    monkeypatch.setattr(spiral_module, "_winding", doubled)
    monkeypatch.setattr(spiral_module, "_follow", _follow_at_real_pitch(real))
    with pytest.raises(ValueError, match="is not the radial pattern's"):
        trace_spiral(real["image"], real["cell"])


def _follow_at_real_pitch(real):
    """``_follow`` that returns the real trace's layer whatever pitch it is given."""
    trace = real["trace"]
    at_edge = np.zeros(trace.radius_px.shape, dtype=bool)
    return lambda *args: (
        trace.winding_rad,
        trace.radius_px,
        trace.strength,
        at_edge,
        (False, False),
    )


def test_spiral_on_a_flat_map_says_why() -> None:
    """A flat map inside a found cell failed in numpy's FFT ("Invalid number of FFT data
    points (0)"), a message diagnose copied into its notes."""
    with pytest.raises(ValueError, match="no wound layers found: no room"):
        trace_spiral(np.zeros((64, 64)), Cell(32.0, 32.0, 28.0))


def test_spiral_needs_a_radius_range_for_a_bare_centre(real) -> None:
    with pytest.raises(ValueError, match="radius_range_um"):
        trace_spiral(real["image"], real["cell"].centre)


# ---------------------------------------------------------------- spiral tracing, twins


@pytest.mark.parametrize(("seed", "centre_um"), [(0, (37.0, -23.0)), (4, (300.0, -200.0))])
def test_spiral_follows_the_true_cu_collector(seed: int, centre_um: tuple[float, float]) -> None:
    """The twin's Cu (10 um in 20 um pixels) traced in its attenuation map: every crossing
    within a pixel of the Cu's true position (measured: < 0.35 px), 3 turns (+-1 deg at
    each end), direction and pitch as simulated."""
    twin = roomy_twin(seed, centre_um)
    cell = find_cell(twin.mu_xray_per_um)
    trace = trace_spiral(twin.mu_xray_per_um, cell, twin.pixel_size_um)
    p = twin.geometry.params
    assert trace.direction == 1  # the twin winds outwards with the image angle
    assert trace.n_turns == pytest.approx(p.turns, abs=0.03)
    assert trace.pitch_um == pytest.approx(p.stack.pitch_um, rel=0.02)
    matched = 0
    for angle in RAY_ANGLES:
        truth, found = true_cu_radii(twin, cell, angle), trace.crossings(angle)
        if truth.size == found.size:
            assert np.abs(truth - found).max() < 1.0
            matched += 1
    assert matched >= 0.95 * RAY_ANGLES.size


def test_a_trace_that_ends_turns_before_the_winding_is_said_to_be_cut() -> None:
    """An oval cell (the small twin, 3 % ovality, 20 um pixels, seed 1): the trace left the
    Cu for the Al foil and ended after 1.2 of its 3 turns (at 596 um; the Cu reaches 1176
    um) without a cut, and the diagnosis reported no bend for its 3 true case-B bends,
    without a word (the red team's twin). The winding is seen over a pitch further out
    than the trace's end: its outer end is cut (the diagnosis says so). The round twin's
    trace is not."""
    size = SIZES["small"]
    for ovality, cut in ((0.03, True), (0.01, False)):
        cell = size.cell.model_copy(update={"ovality": ovality})
        oval = size.model_copy(update={"cell": cell})
        twin = make_twin("aged_charged", oval, seed=1)
        image = ndi.gaussian_filter(twin.mu_xray_per_um, 20.0 / 2.3548 / twin.pixel_size_um)
        trace = trace_spiral(image, find_cell(image), twin.pixel_size_um)
        assert trace.cut_ends[1] is cut, ovality


def test_deviation_shows_the_bent_collectors() -> None:
    """Case B agglomerates bend the Cu by 36 and 48 um in seed 0; the largest deviations
    from the smooth spiral sit at them, with the sign of the bend, and elsewhere the layer
    stays within a few um of the reference (winding irregularity 3 um rms)."""
    twin = roomy_twin(0, (37.0, -23.0))  # the same twin as the tracing test's first case
    cell = find_cell(twin.mu_xray_per_um)
    trace = trace_spiral(twin.mu_xray_per_um, cell, twin.pixel_size_um)
    view = unroll_spiral(twin.mu_xray_per_um, trace)
    deviation = spiral_deviation(trace)
    n = twin.shape[0]
    bent = np.zeros(deviation.arc_um.size, dtype=bool)
    for _, g in twin.agglomerates[twin.agglomerates["case"] == "B"].iterrows():
        arc, _ = view.from_xy((n - 1) / 2 + g.x_um / 20, (n - 1) / 2 + g.y_um / 20)
        near = np.abs(deviation.arc_um - arc) < 200.0
        outwards = g.side == "anode_inner"  # the Cu lies outwards of this coating
        peak = (
            deviation.deviation_um[near].max() if outwards else -deviation.deviation_um[near].min()
        )
        assert peak > 0.5 * g.bend_amplitude_um
        bent |= near
    assert np.abs(deviation.deviation_um[~bent]).max() < 15.0
    assert np.abs(deviation.deviation_um[bent]).max() > 30.0


# ---------------------------------------------------------------- spiral unrolling


def test_unroll_spiral_round_trips(real) -> None:
    trace = real["trace"]
    ny, nx = real["image"].shape
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    view = unroll_spiral(np.stack([x, y]), trace)
    assert view.data.shape == (2, view.depth_um.size, view.arc_um.size)
    assert view.depth_um[0] == pytest.approx(-trace.pitch_um / 2)
    # to_xy of the grid is where the samples came from (linear maps interpolate exactly)
    gx, gy = view.to_xy(view.arc_um[None, :], view.depth_um[:, None])
    assert np.allclose(view.data[0], gx, atol=1e-6) and np.allclose(view.data[1], gy, atol=1e-6)
    # from_xy inverts to_xy within half a pitch of the layer
    arc, depth = np.meshgrid(view.arc_um[::7], view.depth_um[1:-1], indexing="ij")
    back_arc, back_depth = view.from_xy(*view.to_xy(arc, depth))
    assert np.allclose(back_arc, arc, atol=1e-6) and np.allclose(back_depth, depth, atol=1e-6)


def test_unroll_spiral_resamples_a_smooth_image_and_back(real) -> None:
    """Unroll a smooth image, sample the strip at every roll pixel's (arc, depth): the image
    comes back up to the error of two linear interpolations (< 1 % of its range)."""
    trace = real["trace"]
    ny, nx = real["image"].shape
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    smooth = np.sin(x / 9.0) * np.cos(y / 13.0)
    view = unroll_spiral(smooth, trace)
    arc, depth = view.from_xy(x, y)
    inside = (arc <= view.arc_um[-1]) & (np.abs(depth) < 0.5 * trace.pitch_um - 1.0)
    assert inside.sum() > 0.5 * np.pi * real["cell"].radius ** 2
    step = view.arc_um[1] - view.arc_um[0]
    rows = (depth[inside] - view.depth_um[0]) / (view.depth_um[1] - view.depth_um[0])
    back = ndi.map_coordinates(view.data, [rows, arc[inside] / step], order=1)
    assert np.abs(back - smooth[inside]).max() < 0.02


def test_turn_strips_tile_the_strip(real) -> None:
    view = unroll_spiral(real["image"], real["trace"])
    strips = view.turn_strips()
    assert len(strips) == int(np.floor(real["trace"].n_turns)) + 1
    assert sum(s.shape[-1] for s in strips) == view.arc_um.size
    # a strip ending where its last turn starts (a layer of whole turns) has no empty turn
    # after it (8 turns gave 9 pieces, the last 0 columns wide)
    end = int(np.searchsorted(view.arc_um, view.turn_start_arc_um[-1]))
    whole = dataclasses.replace(view, data=view.data[..., :end], arc_um=view.arc_um[:end])
    assert len(whole.turn_strips()) == len(strips) - 1
    assert all(strip.shape[-1] > 0 for strip in whole.turn_strips())
    # each full turn is longer than the previous one by about 2 pi pitch
    lengths = np.diff(np.concatenate([[0.0], view.turn_start_arc_um]))
    assert np.all(np.diff(lengths) > 0)
    assert np.median(np.diff(lengths)) == pytest.approx(2 * np.pi * real["trace"].pitch_um, rel=0.1)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 12),
    st.lists(st.tuples(st.floats(-2, 14), st.floats(-2, 14)), min_size=1, max_size=30),
    st.integers(0, 2**16),
)
def test_bilinear_samples_as_map_coordinates(
    ny: int, nx: int, points: list[tuple[float, float]], seed: int
) -> None:
    """The tracer's bilinear sampler against scipy's order-1, constant-mode
    map_coordinates (inside, on the edges, outside, one-pixel images): equal to rounding
    (1e-12 of values of order 1), the outside value where scipy gives it."""
    image = np.random.default_rng(seed).normal(size=(ny, nx))
    y, x = (np.array(v) for v in zip(*points, strict=True))
    y[: len(y) // 3] = np.round(y[: len(y) // 3])  # whole pixels and the exact edges
    expected = ndi.map_coordinates(image, [y, x], order=1, mode="constant", cval=-7.0)
    np.testing.assert_allclose(bilinear(image, y, x, -7.0), expected, rtol=0, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 400), st.integers(1, 5), st.floats(0.3, 60.0), st.integers(0, 2**16))
def test_radial_smooth_is_the_gaussian_filter(n_r: int, n_a: int, sigma: float, seed: int) -> None:
    """The polar image's radial low-pass (FFT for long kernels) against
    ``gaussian_filter1d`` along the radius, short kernels and kernels longer than the
    image included: equal to rounding (1e-12 on values of order 1)."""
    polar = np.random.default_rng(seed).normal(size=(n_r, n_a)) + 3.0
    expected = ndi.gaussian_filter1d(polar, sigma, axis=0)
    np.testing.assert_allclose(_radial_smooth(polar, sigma), expected, rtol=0, atol=1e-12)


def test_the_arc_length_of_a_trace_on_a_noisy_map_is_the_layers() -> None:
    """A 9-turn layer under white noise of half its peak: the trace's sample-to-sample
    jitter (0.37 px rms) made it 3.0 % longer than the spiral between its ends, so every
    arc position and bend width along it. Within 1 % now (0.5 % measured; 0.08 % at a
    fifth of the noise): the radial steps are those of the radius smoothed over 2 px."""
    r0, pitch, ps, centre = 15.0, 12.0, 7.3, (140.4, 121.7)
    image = archimedean_spiral((281, 281), centre, r0, pitch, 9.0, 1)
    noisy = image + 0.5 * image.max() * np.random.default_rng(0).normal(size=image.shape)
    trace = trace_spiral(noisy, centre, ps, radius_range_um=(20 * ps, 125 * ps))
    frac = np.mod(trace.angle_rad, 2 * np.pi) / (2 * np.pi)
    on_spiral = r0 + pitch * (np.round((trace.radius_px - r0) / pitch - frac) + frac)
    expected = spiral_arc_px(r0, pitch, on_spiral[0], on_spiral[-1]) * ps
    assert trace.arc_um[-1] == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("direction", [1, -1])
def test_a_radius_range_cutting_the_roll_ends_the_trace_at_the_layer(direction: int) -> None:
    """A radius range through the roll (bare centre, 30-80 px): the band-pass, reflected at
    the range's edges, showed the layer beyond them as a ridge along them, and the trace
    followed each edge for 45 deg, 1.7 px off the layer, its arc 11134 um where the whole
    layer inside the range is 10518 (spiral.py's _EDGE). Now every sample lies on the
    spiral (0.14 px measured, 0.3 allowed: the layer's own sampling), the arc between the
    trace's ends is the spiral's (2e-5 measured) and at most the layer's inside the range
    (the trace stops a pixel short of each edge: 0.95 of it)."""
    r0, pitch, ps, centre = 15.0, 12.0, 7.3, (140.4, 121.7)
    image = archimedean_spiral((241, 261), centre, r0, pitch, 8.0, direction)
    trace = trace_spiral(image, centre, ps, radius_range_um=(30.0 * ps, 80.0 * ps))
    assert trace.direction == direction
    frac = np.mod(direction * trace.angle_rad, 2 * np.pi) / (2 * np.pi)
    turn = np.round((trace.radius_px - r0) / pitch - frac)
    on_spiral = r0 + pitch * (turn + frac)  # the spiral's radius at each sample's angle
    assert np.abs(trace.radius_px - on_spiral).max() < 0.3
    expected = spiral_arc_px(r0, pitch, on_spiral[0], on_spiral[-1]) * ps
    assert trace.arc_um[-1] == pytest.approx(expected, rel=1e-3)
    in_range = spiral_arc_px(r0, pitch, 30.0, 80.0) * ps
    assert 0.95 * in_range < trace.arc_um[-1] <= in_range


def test_unroll_spiral_refuses_maps_of_another_grid(real) -> None:
    """A map padded by 10 rows at the top was unrolled with the trace's pixel positions: its
    strip was the map's 10 px above the layer (the layer's own strip shifted by 10 px in
    y), returned without a word. The trace records its map's shape; other shapes are
    refused."""
    trace = real["trace"]
    padded = np.pad(real["image"], ((10, 0), (0, 0)))
    with pytest.raises(ValueError, match=r"shape \(576, 576\), this map has shape \(586, 576\)"):
        unroll_spiral(padded, trace)
    unroll_spiral(np.stack([real["image"]] * 2), trace)  # a stack of maps of its grid


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"depth_range_um": (10.0, -10.0)}, "depth_range_um must satisfy start < stop"),
        ({"depth_range_um": (50.0, -50.0)}, "depth_range_um must satisfy start < stop"),
        ({"step_um": 0.0}, "step_um must be a positive"),
        ({"step_um": -5.0}, "step_um must be a positive"),
    ],
)
def test_unroll_spiral_refuses_an_empty_depth_range_or_step(
    real, options: dict, message: str
) -> None:
    """A depth range given outwards-first, (10, -10) um, returned an empty strip (0 rows),
    exit 0; (50, -50) and a step of 0 or below failed deep in NumPy ("Number of samples,
    -4, must be non-negative", a division by zero). Each is refused, naming the option."""
    with pytest.raises(ValueError, match=message):
        unroll_spiral(real["image"], real["trace"], **options)


@pytest.mark.parametrize("direction", [1, -1])
def test_a_roll_cut_by_the_image_edge_ends_the_trace_at_the_layer(direction: int) -> None:
    """A roll running out of the map (its centre 50 px from the left edge): the blur of the
    layer just outside showed as a ridge along the edge and the trace's outer end followed
    it for 25 deg, 1.46 px off the layer. Now it ends a pixel inside the map, every sample
    on the spiral (0.24 px measured; 0.4 allowed, the layer's sampling near the edge)."""
    r0, pitch, centre = 15.0, 12.0, (50.3, 121.7)
    image = archimedean_spiral((241, 261), centre, r0, pitch, 8.0, direction)
    trace = trace_spiral(image, centre, 2.0, radius_range_um=(6.0, 240.0))
    frac = np.mod(direction * trace.angle_rad, 2 * np.pi) / (2 * np.pi)
    turn = np.round((trace.radius_px - r0) / pitch - frac)
    assert np.abs(trace.radius_px - (r0 + pitch * (turn + frac))).max() < 0.4
    assert trace.xy_px[:, 0].min() >= 1.0  # px: the layer is not located nearer the edge
    assert trace.n_turns > 3  # the layer inside the map (3.42 turns) is followed


@pytest.mark.parametrize(("cut_px", "cut_ends"), [(5, (False, False)), (15, (False, True))])
def test_a_casing_cut_by_the_image_edge_marks_the_outer_end_cut(
    real, cut_px: int, cut_ends: tuple[bool, bool]
) -> None:
    """The real slice cropped so its left edge cuts the casing: 5 px in, the roll is whole
    (18.99 turns, as uncropped); 15 px in, the outer turn runs off the image and the trace
    ends a pixel from the edge, 18.71 turns and 600.6 of 615.7 mm, reported with
    ``cut_ends`` (False, False), exit 0: the layer's length, short by 0.28 turns. Now the
    outer end is a cut (the layer, continued 4 px along its circle, leaves the image)."""
    cell = real["cell"]
    image = real["image"][:, round(cell.x - cell.radius) + cut_px :]
    trace = trace_spiral(image, find_cell(image))
    assert trace.cut_ends == cut_ends
    if not any(cut_ends):
        assert trace.n_turns == pytest.approx(real["trace"].n_turns, abs=0.01)


@pytest.mark.parametrize("variant", ["blurred by 2 px", "3x coarser pixels"])
def test_a_faded_innermost_turn_marks_the_inner_end_cut(real, variant: str) -> None:
    """The real slice blurred (Gaussian of 2 px) or 3x coarser: the second turn's ridge
    fades beside the innermost layer's tail, the innermost turn (0.72-0.79 of the rest's
    ridge) is not joined across it, and 17.7-17.9 of the 18.99 turns were traced from an
    inner end not marked cut, exit 0: every turn number one off. Now the inner end is a
    cut (the turn beyond it, on the layer's spiral, is the wound layer going on), so the
    diagnosis says its turns count from there."""
    image = real["image"]
    if variant.startswith("blurred"):
        image = ndi.gaussian_filter(image, 2.0)
    else:
        image = cv2.resize(image, None, fx=1 / 3, fy=1 / 3, interpolation=cv2.INTER_AREA)
    trace = trace_spiral(image, find_cell(image))
    whole = trace.n_turns == pytest.approx(real["trace"].n_turns, abs=0.1)
    assert whole or trace.cut_ends[0]  # measured: 17.88 and 17.74 turns, cut


@pytest.mark.parametrize(("piece_turns", "gap_deg"), [(0.22, 12.0), (0.22, 16.0), (0.1, 14.0)])
def test_a_short_piece_past_a_gap_at_the_inner_end_marks_it_cut(
    piece_turns: float, gap_deg: float
) -> None:
    """The 9-turn spiral with its innermost turn broken ``piece_turns`` from its inner end
    by a gap of ``gap_deg`` (wider than the 10 deg bridged): the trace began past the gap,
    8.7-8.9 turns from an inner end not marked cut, exit 0 (a piece before it counted only
    from a quarter turn on; the link twin's X-ray had such a slice, 2.75 of 3 turns). A
    piece right past the end (within 20 deg) on its very spiral now marks it cut from a
    twelfth of a turn on."""
    image = wound_layers(casing=True)
    y, x = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(float)
    radius = np.hypot(x - CENTRE[0], y - CENTRE[1])
    angle = np.mod(np.arctan2(y - CENTRE[1], x - CENTRE[0]), 2 * np.pi)
    start = 2 * np.pi * piece_turns
    gap = (angle >= start) & (angle <= start + np.deg2rad(gap_deg))
    image[gap & (np.abs(radius - 30.0 - 12.0 * angle / (2 * np.pi)) < 6.0)] = 0.0
    trace = trace_spiral(image, find_cell(image), 10.0)
    assert trace.n_turns == pytest.approx(9.0 - piece_turns - gap_deg / 360, abs=0.05)
    assert trace.cut_ends == (True, False)


def test_the_trace_does_not_join_the_hollows_edge_to_the_collector() -> None:
    """Two scans on grids half a pixel apart (161 and 160 translations): the WAXS scan's
    attenuation map, resampled onto the SAXS grid, is the map blurred by [1/4, 1/2, 1/4].
    On it the trace followed the edge of the hollow for a turn and jumped 0.37 pitch out
    onto the Cu, as one layer (the ridge as strong on both sides): 3.99 turns for 3, and
    two bends of +45 and -34 um where no agglomerate is, exit 0. The pieces either side of
    a jump must now lie on one spiral."""
    twin = make_twin("aged_charged", "small", seed=3)
    p = twin.pixel_size_um
    image = ndi.gaussian_filter(twin.mu_xray_per_um, 20.0 * 0.4247 / p)  # the 20 um beam
    for axis in (0, 1):
        image = ndi.convolve1d(image, [0.25, 0.5, 0.25], axis=axis, mode="nearest")
    cell = find_cell(image)
    trace = trace_spiral(image, cell, p)
    # the twin's Cu is 3 turns; its ends cut within a few deg (the tracing test's +-0.03)
    assert trace.n_turns == pytest.approx(twin.geometry.params.turns, abs=0.05)
    matched = 0
    for angle in RAY_ANGLES:
        truth, found = true_cu_radii(twin, cell, angle), trace.crossings(angle)
        if truth.size == found.size:
            assert np.abs(truth - found).max() < 1.0  # within a pixel of the true Cu
            matched += 1
    assert matched >= 0.9 * RAY_ANGLES.size


@pytest.mark.parametrize("pixel_size_um", [-7.3, 0.0, np.nan, np.inf])
def test_a_pixel_size_that_is_not_a_positive_length_is_refused(pixel_size_um: float) -> None:
    """A negative pixel size (the signed step of a descending axis) gave a trace of negative
    pitch and arc length (-88 um and -23132 um here; on a spiral with two bends find_bends
    then found none), exit 0; NaN and inf gave a NaN or inf pitch, 0 a division by zero.
    Each is refused, naming the function."""
    cell = Cell(140.4, 121.7, 115.0)
    image = archimedean_spiral((241, 261), cell.centre, 15.0, 12.0, 8.0, 1)
    with pytest.raises(ValueError, match="trace_spiral: pixel_size_um must be a positive"):
        trace_spiral(image, cell, pixel_size_um)
    with pytest.raises(ValueError, match="unroll_polar: pixel_size_um must be a positive"):
        unroll_polar(image, cell, pixel_size_um)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"radius_range_um": (-5000.0, 8000.0)}, "radius_range_um must satisfy 0 <= start"),
        ({"radius_range_um": (np.nan, 8000.0)}, "radius_range_um must satisfy 0 <= start"),
        ({"pitch_um": 0.0}, "pitch_um must be a positive finite length"),
        ({"pitch_um": -360.0}, "pitch_um must be a positive finite length"),
        ({"pitch_um": np.nan}, "pitch_um must be a positive finite length"),
    ],
)
def test_trace_spiral_refuses_a_radius_range_or_pitch_that_is_no_length(
    real, options: dict, message: str
) -> None:
    """A radius range starting below 0 sampled the far side of the centre: the real slice
    traced from -5000 um read 17.50 of its 18.99 turns, exit 0. A pitch of 0 failed with a
    bare ZeroDivisionError, a negative one with SciPy's "Radius must be a nonnegative
    integer", NaN with "cannot convert float NaN to integer". Each is refused, naming the
    function and the option (as unroll_polar's radius range)."""
    with pytest.raises(ValueError, match=f"trace_spiral: {message}"):
        trace_spiral(real["image"], real["cell"], 35.0, **options)


def test_a_given_pitch_sets_the_tracking_not_the_pitch_reported(real) -> None:
    """``pitch_um`` given 450 um for the real slice's 360 um layer: the layer was followed
    (18.94 turns) but its pitch reported as 450 um, the unrolled strips then 1.25 times
    too deep; given 250 um, 18.42 of its 18.99 turns were traced and 250 um reported, exit
    0 both. The pitch reported is the traced layer's mean (as when measured: within 1 %),
    and a layer off the given pitch by more than PITCH_TOLERANCE (30 %) is refused."""
    trace = trace_spiral(real["image"], real["cell"], 35.0, pitch_um=450.0)
    assert trace.pitch_um == pytest.approx(35.0 * real["trace"].pitch_um, rel=0.01)
    with pytest.raises(ValueError, match=r"\(360 um\) is not the pitch_um given \(250 um\)"):
        trace_spiral(real["image"], real["cell"], 35.0, pitch_um=250.0)


OPTIONS_THAT_ARE_NO_MEASURE = {
    "polar, no angles": (
        lambda real: unroll_polar(real["image"], real["cell"], 35.0, n_angles=0),
        "n_radii and n_angles must be at least 1",
    ),
    "polar, no radii": (
        lambda real: unroll_polar(real["image"], real["cell"], 35.0, n_radii=0),
        "n_radii and n_angles must be at least 1",
    ),
    "polar, negative arc radius": (
        lambda real: unroll_polar(real["image"], real["cell"], 35.0, arc_radius_um=-5.0),
        "unroll_polar: arc_radius_um must be a positive",
    ),
    "polar, NaN centre": (
        lambda real: unroll_polar(real["image"], (np.nan, 3.0), 35.0),
        "unroll_polar: the cell's centre must be finite",
    ),
    "trace, NaN centre": (
        lambda real: trace_spiral(real["image"], Cell(np.nan, 100.0, 50.0)),
        "trace_spiral: the cell's centre must be finite",
    ),
    "trace, casing off the image": (
        lambda real: trace_spiral(real["image"], Cell(-500.0, 100.0, 50.0)),
        r"trace_spiral: the cell's casing .* lies outside the image",
    ),
    "spiral view, step of 1e-3 um": (
        lambda real: unroll_spiral(real["image"], real["trace"], step_um=1e-3),
        r"unroll_spiral: step_um 0.001 is under 0.1 of the trace's 1 um pixel",
    ),
    "deviation, window of 0": (
        lambda real: spiral_deviation(real["trace"], window_um=0.0),
        "spiral_deviation: window_um must be a positive",
    ),
    "deviation, exclude of another size": (
        lambda real: spiral_deviation(real["trace"], exclude=np.zeros(5, bool)),
        r"spiral_deviation: exclude must be \(\d+,\) bool",
    ),
}


@pytest.mark.parametrize("case", OPTIONS_THAT_ARE_NO_MEASURE)
def test_options_that_are_no_measure_are_refused(real, case: str) -> None:
    """Each was a wrong figure with exit 0 or a bare NumPy error: no angles, a division by
    zero; no radii, an empty view; a negative arc radius, negative arc lengths (-3.9 um at
    the second angle); a NaN centre, "All-NaN slice encountered" (the polar view's said
    its radius range was NaN); a casing off the image, the same; a window of 0 um, a
    3-sample median as the reference, which followed every bend (the real slice's
    deviations: 0.9 um at most, 29 um with the default window); an exclude mask of
    another size, an IndexError; a spiral view's step of 1e-3 um (a step in mm?), a
    MemoryError of 1.6 PiB. Each is refused, naming the function and the option."""
    call, message = OPTIONS_THAT_ARE_NO_MEASURE[case]
    with pytest.raises(ValueError, match=message):
        call(real)


def test_a_torn_layer_is_cut_not_joined_across_another_layer() -> None:
    """A 9-turn layer torn over +-0.1 rad on its 5th turn, beside a layer of 0.6 its
    brightness half a pitch out: the trace crossed to that layer through the tear and back,
    joined as one layer with a sharp bend (the ridge as strong on both sides of the jumps;
    the tear, 12 deg, bridged), and find_bends reported a bend of +52.8 um there, exit 0.
    The path crosses no gap in the ridge through a bend: the layer is cut at the tear, and
    the trace says its inner end is a cut (the layer goes on inwards). The outer stretch
    (4.7 turns, the stronger) is kept."""
    image = layers_with_a_tear(tear_rad=0.1)
    trace = trace_spiral(image, (150.3, 149.6), 10.0, radius_range_um=(0.0, 1420.0))
    assert trace.n_turns == pytest.approx(9.0 - 4.3, abs=0.1)
    assert trace.cut_ends == (True, False)
    smooth = trace_spiral(layers_with_a_tear(tear_rad=0.0), (150.3, 149.6), 10.0,
                          radius_range_um=(0.0, 1420.0))  # fmt: skip
    assert smooth.cut_ends == (False, False)
    assert smooth.n_turns == pytest.approx(9.0, abs=0.02)


def layers_with_a_tear(tear_rad: float) -> np.ndarray:
    """:func:`wound_layers` torn over +-``tear_rad`` around 4.3 turns (none at 0), and a
    layer of 0.6 its brightness half a pitch outwards."""
    return wound_layers(tear_rad=tear_rad, second_layer=0.6)


def test_a_band_not_measured_is_traced_across() -> None:
    """Three NaN rows (a detector gap) across the 9-turn layer where its turns run along
    them (their bottoms), as the link's dossiers traced the X-ray plane: read as 0 (black
    material) the trace was cut at the band, 6.71 turns kept, its inner end a cut, and
    1.7 px off the layer elsewhere, exit 0. Filled along the turns (fill_unmeasured), the
    trace is the intact map's: 9 turns, uncut, within 0.2 px (measured 0.05 px; the fill
    is the layer's course across the band to a fraction of a pixel), and the samples
    within 3 px of the band, only those, are marked (the distance read bilinearly: +-0.5
    px at the boundary). An intact map comes back as it is, a blank one is refused, and
    the tracer refuses a map not filled (its polar samples took the median there)."""
    intact = wound_layers(casing=True)
    reference = trace_spiral(intact, find_cell(intact), 10.0)
    holed = intact.copy()
    holed[205:208] = np.nan
    image, cell = fill_unmeasured(holed)
    assert np.isfinite(image).all() and np.array_equal(image[:205], intact[:205])
    trace = trace_spiral(image, cell, 10.0)
    assert trace.cut_ends == (False, False)
    assert trace.n_turns == pytest.approx(reference.n_turns, abs=0.01)
    np.testing.assert_allclose(trace.xy_px, reference.xy_px, atol=0.2)
    y = trace.xy_px[:, 1]
    marked = unmeasured_samples(holed, trace)
    assert marked.any() and (np.abs(y[marked] - 206) < 4.5).all()
    assert marked[np.abs(y - 206) < 3.5].all()
    assert not unmeasured_samples(intact, trace).any()
    same, found = fill_unmeasured(intact)
    assert np.array_equal(same, intact) and found == find_cell(intact)
    with pytest.raises(ValueError, match="no finite values"):
        fill_unmeasured(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match=r"903 pixels .* not measured .*fill_unmeasured"):
        trace_spiral(holed, cell, 10.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.floats(0.05, 0.95), st.integers(0, 2**16))
def test_the_fill_along_turns_is_np_interp_round_each_circle(
    n_rows: int, n: int, share: float, seed: int
) -> None:
    """The vectorised fill of each circle's gaps (was a Python loop of ``np.interp`` with
    a period, one call per radius) against that loop: gaps across the circle's wrap, one
    measured point in a row, every point but one; equal to rounding (1e-12 of values of
    order 1). Every sample asked for, in a shuffled order (the fill asks for those it reads)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n_rows, n))
    seen = rng.random((n_rows, n)) < share
    seen[np.arange(n_rows), rng.integers(0, n, n_rows)] = True  # one at least per row
    angles = np.arange(n) * (2 * np.pi / n)
    expected = values.copy()
    for i in range(n_rows):
        gap = ~seen[i]
        expected[i, gap] = np.interp(angles[gap], angles[seen[i]], values[i, seen[i]],
                                     period=2 * np.pi)  # fmt: skip
    rows, cols = np.unravel_index(rng.permutation(values.size), values.shape)
    found = _along_circles(
        lambda i, j: values[i, j % n], lambda i, j: seen[i, j % n], rows, cols, n
    )
    np.testing.assert_allclose(found, expected[rows, cols], rtol=0, atol=1e-12)

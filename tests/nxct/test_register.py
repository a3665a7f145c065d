"""Registration of neutron onto X-ray CT volumes of the twin, remounted at random."""

from __future__ import annotations

import re
import tracemalloc
from dataclasses import replace
from functools import cache

import h5py
import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from jellyroll.nxct import (
    apply_transform,
    downsample,
    downsample_levels,
    find_cell_axis,
    register_volumes,
    rms_error,
    rms_error_along,
)
from jellyroll.nxct.register import (
    MAX_CENTRING,
    AxialLevelSkipped,
    CellAxis,
    FineLevelSkipped,
    _centred_on_content,
    _circular_mutual_information,
    _find_axis_coarse,
    _fixed_spectra,
    _mattes_mutual_information,
    _mutual_information,
    _quantise,
    _refine_axial,
    _refine_fine,
    _sitk_to_zyx_matrix,
    _slice_centre,
    _to_sitk,
    check_attenuation_contrast,
    check_cell_axis,
    check_same_cut,
    check_scale,
    implied_scale,
    mattes_from_centre,
)
from jellyroll.phantom.materials import attenuation_map, mu_table
from jellyroll.phantom.nxct import (
    block_mean,
    resample_rigid,
    rigid_matrix,
    rotation_matrix,
    simulate_nxct_from_attenuation,
)
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import nxct_fraction_slices

VOXEL = 20.0  # neutron voxel, um; the X-ray voxel is twice this
WORLD = (48, 104, 104)
NCT_SHAPE = (36, 104, 104)


@cache
def twin_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X-ray (40 um) and neutron (20 um, world-aligned) volumes and X-ray -> world matrix.

    The twin's jelly roll does not change along its axis within a short stack, so the stack
    gets axial landmarks real cells have (the roll's end under the cap, 3D inclusions with
    different X-ray and neutron contrast); without them the axial shift is unobservable.
    """
    twin = make_twin("aged_charged", "tiny", seed=0)
    _, _, fractions = next(nxct_fraction_slices(twin, 1, VOXEL))
    mu_x, mu_n = mu_table("xray", energy_keV=60.0), mu_table("neutron", wavelength_A=4.0)
    xs = np.repeat(attenuation_map(fractions, mu_x)[None], WORLD[0], axis=0)
    ns = np.repeat(attenuation_map(fractions, mu_n)[None], WORLD[0], axis=0)
    z, y, x = (np.arange(n) - (n - 1) / 2 for n in WORLD)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    r = np.hypot(yy, xx)
    head = (zz > 14) & (r < 40)  # the roll ends 14 voxels above the centre: head space
    xs[head], ns[head] = mu_x["al"], mu_n["electrolyte"] * 0.3
    rng = np.random.default_rng(3)
    for k in range(12):
        c = np.array([rng.uniform(-20, 12), *rng.uniform(-28, 28, 2)])
        blob = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < rng.uniform(2, 4) ** 2
        xs[blob] = mu_x["cu"] if k % 2 else 0.0
        ns[blob] = 0.0 if k % 2 else mu_n["separator"]
    # multimodal: a non-monotonic grey map of the neutron attenuation, applied to the material
    # values before the instrument's blur and noise, as a different contrast mechanism would be
    u = ns / ns.max()
    ns = (np.sin(2.5 * u) + 0.3 * u**2) * ns.max()
    volumes = simulate_nxct_from_attenuation(
        xs, ns, VOXEL, neutron_rotation_deg=(0, 0, 0), neutron_shift_um=(0, 0, 0), seed=1
    )
    return volumes.xray, volumes.neutron, volumes.xray_to_world


def remount(seed: int, angle_deg: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A remounted neutron volume and its true nct_to_xct.

    Random remount: rotation about the axis uniform in [0, 360) deg (or ``angle_deg``), tilt
    up to 5 deg about a random horizontal axis, shift up to 10 % of the field (5 % along z).
    """
    _, neutron, xray_to_world = twin_pair()
    rng = np.random.default_rng(seed)
    rz = rng.uniform(0, 360) if angle_deg is None else angle_deg
    tilt, azimuth = rng.uniform(0, 5), rng.uniform(0, 2 * np.pi)
    shift = rng.uniform(-1, 1, 3) * np.array(NCT_SHAPE) * VOXEL * np.array([0.05, 0.1, 0.1])
    nct_to_world = rigid_matrix((rz, tilt * np.cos(azimuth), tilt * np.sin(azimuth)), shift)
    moved = resample_rigid(
        neutron, VOXEL, np.linalg.inv(nct_to_world), output_shape=NCT_SHAPE, mode="constant"
    )
    return moved, np.linalg.inv(xray_to_world) @ nct_to_world


def test_downsample_streams_and_keeps_frame() -> None:
    volume = np.arange(5 * 7 * 9, dtype=np.float32).reshape(5, 7, 9)
    coarse, voxel, to_fine = downsample(volume, 3.0, max_voxels=60)
    assert voxel == 6.0 and coarse.shape == (3, 4, 5)
    assert coarse[0, 0, 0] == pytest.approx(volume[:2, :2, :2].mean())
    # coarse voxel (0, 0, 0) sits at the centre of fine voxels 0..1 of each axis
    centre = (np.array([0, 0, 0]) - (np.array(coarse.shape) - 1) / 2) * voxel
    assert apply_transform(centre, to_fine) == pytest.approx(
        (0.5 - (np.array([5, 7, 9]) - 1) / 2) * 3
    )
    flat, _, _ = downsample(volume[:1], 1.0, max_voxels=20)
    assert flat.shape == (1, 4, 5)


class _CountingVolume:
    """A volume on disk, as seen by the registration: slicing along z only, reads counted."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.shape = array, array.shape
        self.planes_read = np.zeros(array.shape[0], int)

    def __getitem__(self, index):
        self.planes_read[index] += 1
        return self.array[index]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(1, 23), min_size=3, max_size=3))
def test_pyramid_levels_in_one_read_match_block_means(seed: int, shape: list[int]) -> None:
    """Every level of one streamed pass equals the phantom's in-memory block mean (edge
    padding included; the same float64 sums, so to float32 rounding) and no slice is read
    twice."""
    volume = np.random.default_rng(seed).random(shape, dtype=np.float32) * 1000
    source = _CountingVolume(volume)
    limits = (30, 200, 10_000)
    levels = downsample_levels(source, 2.0, limits, slab=3)
    assert source.planes_read.max() == 1
    for (coarse, voxel, to_fine), limit in zip(levels, limits, strict=True):
        factor = round(voxel / 2.0)
        assert coarse.size <= limit
        if shape[0] > 1:  # the phantom's block mean pads along z too; one slice stays one
            expected, expected_to_fine = block_mean(volume, factor)
            np.testing.assert_allclose(coarse, expected, rtol=1e-6)
            np.testing.assert_allclose(to_fine[:3, 3], expected_to_fine[:3, 3] * 2.0)


def test_pyramid_of_a_volume_on_disk_holds_a_few_slabs(tmp_path) -> None:
    """Both registration copies of a 32 MiB uint16 HDF5 volume from one pass that holds
    a few slabs, never the volume."""
    n, slab = 256, 8
    with h5py.File(tmp_path / "v.h5", "w") as f:
        data = f.create_dataset("v", (n, n, n), np.uint16, chunks=(8, n, n))
        for z in range(0, n, slab):
            index = np.arange(z, z + slab, dtype=np.uint16)[:, None, None]
            data[z : z + slab] = np.broadcast_to(index, (slab, n, n))  # each slice: its index
    with h5py.File(tmp_path / "v.h5", "r") as f:
        tracemalloc.start()
        levels = downsample_levels(f["v"], 1.0, (20_000, 8 * 20_000), slab=slab)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    float_slab = slab * n * n * 8
    # held at once: the slab as float64, its edge-padded copy and the block sums (~2 float64
    # slabs, 8 MiB) beside the two copies (1.5 MiB); bound 3 float64 slabs, 12 MiB, of a
    # volume of 256 MiB as float64
    assert peak < 3 * float_slab, f"peak {peak / 2**20:.1f} MiB"
    for coarse, voxel, _ in levels:  # each coarse slice: the mean index of its block
        factor = round(voxel)
        heights = np.pad(np.arange(n), (0, coarse.shape[0] * factor - n), mode="edge")
        expected = heights.reshape(-1, factor).mean(axis=1)
        np.testing.assert_allclose(coarse[:, 3, 5], expected, rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(2, 40), st.integers(2, 8))
def test_mi_of_every_circular_shift_matches_one_shift_at_a_time(
    seed: int, rows: int, n: int, bins: int
) -> None:
    """The FFT joint histograms give the MI of each shift as rolling and counting does, to
    rounding (1e-9 nats), for any sizes and bin counts, some samples not measured or none;
    and so for ``b`` mirrored (``b[-t]``), whose joint histograms come from the same spectra."""
    rng = np.random.default_rng(seed)
    a = _quantise(rng.normal(size=(rows, n)), bins)
    b = _quantise(np.roll(np.sin(3 * a), 2, axis=-1) + rng.normal(size=(rows, n)), bins)
    if seed % 2:  # samples not measured (-1) in both
        a[rng.random(a.shape) < 0.1], b[rng.random(b.shape) < 0.1] = -1, -1
    mirrored = np.roll(b[..., ::-1], 1, axis=-1)
    direct = [
        [_mutual_information(a, np.roll(v, -s, axis=-1), bins) for s in range(n)]
        for v in (b, mirrored)
    ]
    np.testing.assert_allclose(_circular_mutual_information(a, b, bins), direct[0], atol=1e-9)
    both = _circular_mutual_information(a, b, bins, mirrored=True)
    np.testing.assert_allclose(both, direct, atol=1e-9)
    kept = _circular_mutual_information(a, b, bins, True, a_spectra=_fixed_spectra(a, bins))
    np.testing.assert_array_equal(kept, both)  # a's spectra kept for many b: the same


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1), st.integers(1, 400), st.sampled_from([4, 6, 16, 32]),
    st.sampled_from([0.3, 3.0, 30.0]),
)  # fmt: skip
def test_equal_population_bins_are_those_of_a_stable_rank(
    seed: int, n: int, bins: int, spread: float
) -> None:
    """``_quantise`` gives each value the bin of its rank, ties ranked in the order they come
    (a stable argsort, the reference), NaN -1: on values rounded to few levels, a fifth of
    them one plateau (air, a constant filling) whose ties straddle bins, and 5 % NaN."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=n) * spread)
    values[rng.random(n) < 0.2] = 0.0
    values[rng.random(n) < 0.05] = np.nan
    measured = np.isfinite(values)
    ranks = np.empty(int(measured.sum()), np.int64)
    ranks[np.argsort(values[measured], kind="stable")] = np.arange(ranks.size)
    expected = np.full(n, -1)
    expected[measured] = ranks * bins // max(ranks.size, 1)
    np.testing.assert_array_equal(_quantise(values, bins), expected)


def test_sitk_frame_matches_spec() -> None:
    """SimpleITK physical points are SPEC (z, y, x) points reversed, both ways."""
    volume = np.zeros((4, 6, 8), np.float32)
    image = _to_sitk(volume, 2.5, np.eye(4))
    index = (7, 1, 3)  # (x, y, z) index = voxel [3, 1, 7]
    spec = (np.array([3, 1, 7]) - (np.array(volume.shape) - 1) / 2) * 2.5
    assert image.TransformIndexToPhysicalPoint(index) == pytest.approx(spec[::-1])
    rigid = sitk.Euler3DTransform((1.0, -2.0, 3.0), 0.1, -0.2, 0.3, (4.0, 5.0, 6.0))
    matrix = _sitk_to_zyx_matrix(rigid, 3)
    point = np.array([7.0, -8.0, 9.0])  # (z, y, x)
    assert apply_transform(point, matrix) == pytest.approx(rigid.TransformPoint(point[::-1])[::-1])


@pytest.mark.xfail(
    reason="open: the axis point is 40-45 um off even without tilt or shift (2 voxels; the "
    "direction is within 0.1 deg): in this neutron volume the casing ring sits at the outline "
    "threshold, so the hull is mostly the spiral's, whose centroid is not the cell's centre; "
    "the registration's refinement recovers the shift (remount tests)"
)
def test_cell_axis_of_tilted_volume() -> None:
    _, neutron, _ = twin_pair()
    tilt = rigid_matrix((30.0, 4.0, 0.0), (0.0, 60.0, -100.0))
    moved = resample_rigid(neutron, VOXEL, tilt, output_shape=NCT_SHAPE, mode="constant")
    axis = find_cell_axis(moved, VOXEL)
    expected = tilt[:3, :3] @ np.array([1.0, 0.0, 0.0])
    assert np.degrees(np.arccos(abs(axis.direction @ expected))) < 0.5
    # the axis passes through the shifted centre
    offset = axis.point - tilt[:3, 3]
    assert np.linalg.norm(offset - (offset @ expected) * expected) < 0.3 * VOXEL


def test_a_real_cells_outline_with_nan_round_its_casing(shared_real) -> None:
    """A real X-ray CT slice of an 18650 cell (20 um pixels) not measured (NaN) from a pixel
    past its saturated casing on: the casing ring, cut there, broke into arcs of 3-4.5 % of
    the cell's pixels, under the 5 % an object needed to count, and the outline was the rest:
    9.4 pixels (190 um) off the cell's centre, 10 (200 um) narrow. Registered against a grey-mapped
    remount (137 deg), it was refused as mirrored, and flipped as told registered as a
    mirror, exit 0; 1 % counts them: 0.3 um RMS. Bars: 1 pixel and 1 % of the radius, the
    outline with air where the NaN are as the reference."""
    tifffile = pytest.importorskip("tifffile")
    path = shared_real / "cell18650_slice.tif"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    image = tifffile.imread(path).astype(np.float32)
    casing = image >= 65000
    index = np.indices(casing.shape)
    radius = np.hypot(*(index - index[:, casing].mean(axis=1)[:, None, None]))
    rim = np.percentile(radius[casing], 99.5)
    for pad in (1, -2):  # from a pixel past the casing's rim on, from 2 pixels inside it
        with_air = _slice_centre(np.where(radius > rim + pad, 0.0, image))
        with_nan = _slice_centre(np.where(radius > rim + pad, np.nan, image))
        assert np.hypot(with_nan[0] - with_air[0], with_nan[1] - with_air[1]) <= 1.0
        assert np.sqrt(with_nan[2] / with_air[2]) == pytest.approx(1.0, abs=0.01)


def test_a_speck_apart_from_the_cell_is_not_its_outline() -> None:
    """An object of 1-5 % of the cell's pixels counts in its outline only by the cell (the
    casing's arcs of the test above): an 8 x 8 pixel speck (1 % of a disk of radius 45) in
    the corner moved the outline's centre 17 pixels (27 % of the radius) with every object
    of 1 % counted. Bar: a tenth of a pixel (the disk's own centre is exact)."""
    y, x = np.indices((160, 160))
    disk = (np.hypot(y - 80, x - 80) <= 45).astype(np.float32)
    disk[2:10, 2:10] = 1.0
    centre_y, centre_x, _ = _slice_centre(disk)
    assert (centre_y, centre_x) == pytest.approx((80.0, 80.0), abs=0.1)


@cache
def registered(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The found and the true nct_to_xct of remount ``seed``, registered once per session."""
    xray, _, _ = twin_pair()
    nct, truth = remount(seed)
    return register_volumes(xray, 2 * VOXEL, nct, VOXEL, seed=seed).nct_to_xct, truth


@pytest.mark.parametrize("seed", range(10))
def test_random_remounts(seed: int) -> None:
    """Ten remounts (any angle, tilt <= 5 deg, shifts): every one within 0.3 neutron voxel
    RMS over the cell (the NXCT issue's bar)."""
    found, truth = registered(seed)
    assert rms_error(found, truth, NCT_SHAPE, VOXEL) <= 0.3 * VOXEL


def test_registration_is_deterministic() -> None:
    """A second run on the same pair agrees within 0.01 um (5e-4 voxel): with SimpleITK's
    default threads runs differed by ~0.24 voxel, and its sampling seed 0 (the wall clock)
    moved a run by up to 0.2 voxel; with one thread and a fixed seed a last ~1e-3 um of
    summation order remains in this process, far below anything a user can see."""
    xray, _, _ = twin_pair()
    nct, _ = remount(4)
    first = registered(4)[0]
    second = register_volumes(xray, 2 * VOXEL, nct, VOXEL, seed=4).nct_to_xct
    np.testing.assert_allclose(first[:3, 3], second[:3, 3], atol=0.01)
    np.testing.assert_allclose(first[:3, :3], second[:3, :3], atol=1e-5)


def test_plain_mattes_fails_where_register_succeeds() -> None:
    """Mattes MI from the geometric centre is lost on remount 8 (118 deg about the axis);
    the global search is not (the same registration as the remount test's)."""
    xray, _, _ = twin_pair()
    nct, truth = remount(8)
    plain = mattes_from_centre(xray, 2 * VOXEL, nct, VOXEL)
    assert rms_error(plain, truth, nct.shape, VOXEL) > 5 * VOXEL
    found, _ = registered(8)
    assert rms_error(found, truth, nct.shape, VOXEL) <= 0.3 * VOXEL


def test_convention_pure_shift_and_rotation() -> None:
    """A shift and rotation applied with resample_rigid come back with the same sign and order."""
    _, neutron, _ = twin_pair()
    for rotation, shift in (
        ((0.0, 0.0, 0.0), (20.0, -60.0, 100.0)),
        ((50.0, 2.0, -1.0), (0, 0, 0)),
    ):
        moved_to_world = rigid_matrix(rotation, shift)
        moved = resample_rigid(
            neutron, VOXEL, np.linalg.inv(moved_to_world), output_shape=NCT_SHAPE, mode="constant"
        )
        result = register_volumes(neutron, VOXEL, moved, VOXEL)
        assert rms_error(result.nct_to_xct, moved_to_world, moved.shape, VOXEL) <= 0.2 * VOXEL
        assert result.nct_to_xct[:3, 3] == pytest.approx(shift, abs=0.3 * VOXEL)
        assert result.nct_to_xct[:3, :3] == pytest.approx(rotation_matrix(rotation), abs=2e-3)


@pytest.mark.parametrize(
    ("holder", "angle_deg", "pixel", "noise"),
    [
        ("both", 137.0, 40.0, 0.0),
        ("neutron", 60.0, 40.0, 0.0),
        ("neutron", 137.0, 40.0, 0.0),
        ("neither", 137.0, 60.0, 0.0),
        ("neither", -151.0, 60.0, 0.02),
        ("xray", 23.0, 40.0, 0.02),
        ("NaN in the X-ray", 23.0, 20.0, 0.0),
        ("neutron", -33.0, 20.0, 0.05),
        ("neutron", -77.0, 40.0, 0.03),
        ("xray", -121.0, 60.0, 0.04),
        ("xray", 160.0, 20.0, 0.04),
    ],
)
def test_real_slice_against_grey_mapped_remount(
    shared_real, holder: str, angle_deg: float, pixel: float, noise: float
) -> None:
    """A real X-ray CT slice of an 18650 cell (20 um pixels, averaged to 40) against itself
    under |v - median| inside the cell, remounted: a non-monotonic grey map that keeps the
    air darkest, as every attenuation volume does (bright air is refused as inverted). Its
    holder fills the field round the casing: in both, or in one only (air round the casing
    in the other). The outlines found are the holder's where it shows, not centred
    on the same point of the cell, and the turn was sought about the wrong points: 228 um
    RMS off with the holder in both, 7963 um in the neutron only, exit 0 (passed at 1 um
    pixels only, where the gradient descent's 2 um steps reach the cell's centre). Centred
    on the content (:func:`~jellyroll.nxct.register._centred_on_content`): 1.8 and 0.3 um;
    the bar is half a pixel. Over the holder in either, both or neither, 20 and 40 um
    pixels and turns of 137, 60 and -100 deg, 23 of 24 register within 3.3 um (before, 11
    of the 18 with a holder were 60-8100 um off, exit 0, 5 refused as mirrored); the
    neutron's holder at 40 um and 137 deg was still 58 um (0.8 deg) off, exit 0: the
    gradient descent from the pose search's 0.9 deg error stopped on a local optimum of the
    spiral. A one-slice pair's descent now starts at the angle of least metric within 2 deg
    of the pose search's: 2.5 um.
    Without the holder (air round the casing in both) at 60 um pixels the outlines' centres
    lay 64 um (a pixel) apart, under the centring's first step, which kept them: the spiral
    turned that offset into an angle 17.5 deg off and the pair registered 1210 um RMS off,
    exit 0. The centring now always climbs to a sixteenth of its step: 2.6 um.
    On turns and noise (``noise``: Gaussian, that fraction of each image's spread) the
    settings were not chosen on, two pairs still registered wrong, exit 0: without the holder
    at 60 um pixels and -151 deg, 8117 um off (the turn 175 deg off: the centring's first
    grid, rough at its 111 um step, put its best 338 um from the centre, and its climb stayed
    there), and with the holder in the X-ray only at 40 um and 23 deg, 218 um off (the
    finest climb stopped 16 um off on a score rough at 4 deg between angles: the pose 3.5
    deg off). The centring now also climbs from the outlines' centre, keeping the better,
    and its finest climb samples finer angles: 0.7 and 1.3 um. The X-ray not measured (NaN)
    from 2 pixels inside its casing's rim on, 20 um pixels, 23 deg: 37 um off, exit 0 (the
    centre 5.5 um off, the pose 1.3 deg off); the finest climb's angles now step a 4-voxel
    arc at the rim (0.8 deg here): 0.7 um. The holder in the neutron, 20 um pixels, 5 %
    noise, -33 deg: 28.5 um off, exit 0 (the descent from the pose search's 0.6 deg error
    stopped on a local optimum); it now also starts from the scan's next local minimum,
    the lower metric kept: 0.5 um. The holder in the neutron, 40 um pixels, 3 % noise,
    -77 deg: 8107 um off, exit 0 (the centring's first grid missed the content's narrow
    peak, its best 379 um off); a climb also from the best of the grid scored on copies
    smoothed by half its step: 0.3 um. The holder in the X-ray only, 4 % noise: 60 um pixels,
    -121 deg, 8115 um off, and 20 um, 160 deg, 27.6 um, exit 0 (the X-ray's axis, the
    holder's centre, off the cell's; the metric's mask was centred about the point the
    neutron was moved to, cutting off its casing); the mask now stays on the neutron's
    outline and the X-ray's axis is also centred on the content about the neutron's
    (:func:`~jellyroll.nxct.register._centrings`), the lower metric kept: 1.8 and 0.3 um."""
    tifffile = pytest.importorskip("tifffile")
    path = shared_real / "cell18650_slice.tif"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    image = tifffile.imread(path).astype(np.float32)[None]
    casing = image[0] >= 65000
    index = np.indices(casing.shape)
    radius = np.hypot(*(index - index[:, casing].mean(axis=1)[:, None, None]))
    rim = np.percentile(radius[casing], 99.5)
    in_air = np.where(radius > rim + 4, 0.0, image)  # air (0) past the saturated steel casing
    xray = image if holder in ("both", "xray") else in_air
    if holder == "NaN in the X-ray":
        xray = np.where(radius > rim - 2, np.nan, image)
    neutron = image if holder in ("both", "neutron") else in_air
    xray, neutron = (block_mean(v, round(pixel / 20.0))[0] for v in (xray, neutron))
    moved_to_fixed = rigid_matrix((angle_deg, 0.0, 0.0), (0.0, 3.5 * pixel, -2.0 * pixel))
    moved = resample_rigid(neutron, pixel, np.linalg.inv(moved_to_fixed), mode="constant")
    median = np.median(image)
    # air (~4000) to 0, the cell to half the median and more
    moved = np.where(moved > 0.25 * median, 0.5 * median + np.abs(moved - median), 0.0)
    if noise:
        rng = np.random.default_rng(int(angle_deg) + 1000 + round(pixel / 20.0))
        xray = xray + rng.normal(0.0, noise * xray.std(), xray.shape).astype(np.float32)
        moved += (moved > 0) * rng.normal(0.0, noise * moved.std(), moved.shape).astype(np.float32)
    result = register_volumes(xray, pixel, moved, pixel)
    assert rms_error(result.nct_to_xct, moved_to_fixed, moved.shape, pixel) <= 0.5 * pixel


@pytest.mark.parametrize("offset_um", [125.0, 200.0])
def test_an_axis_off_the_cells_centre_is_moved_back_or_refused(offset_um: float) -> None:
    """The twin's neutron against its 50 deg remount, the remount's axis moved 125 um (0.14
    of the cell's radius, 6 voxels) off its outline's centre, as a holder's outline moves
    it: moved back by the content's polar unwrappings (measured: 1.2 um off, 1.1 um from 110
    um; the bar, a quarter voxel, is two of the finest climb's 2.5 um steps); 200 um, past
    the centring grid's 15 % of the radius, is refused as outlines of different objects,
    with the remedy (air round the casing)."""
    _, neutron, _ = twin_pair()
    moved_to_fixed = rigid_matrix((50.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    moved = resample_rigid(
        neutron, VOXEL, np.linalg.inv(moved_to_fixed), output_shape=NCT_SHAPE, mode="constant"
    )
    copies = downsample(neutron, VOXEL, 2_000_000), downsample(moved, VOXEL, 2_000_000)
    fixed_axis, moved_axis = (_find_axis_coarse(*copy) for copy in copies)
    off = replace(moved_axis, point=moved_axis.point + offset_um * np.array([0.0, 0.6, -0.8]))
    if offset_um > MAX_CENTRING * moved_axis.radius_um:
        with pytest.raises(ValueError, match=r"not centred on the same point.*air in both"):
            _centred_on_content(*copies, fixed_axis, off)
        return
    _, back = _centred_on_content(*copies, fixed_axis, off)
    assert np.linalg.norm(back.point - moved_axis.point) <= 0.25 * VOXEL


def test_fine_level_recovers_rotation_and_shift_across_the_axis() -> None:
    """The last level at the volumes' own voxels, from a start 1.3 neutron voxels off (0.6 deg
    about the axis, 8 um across it; the coarse levels of a large pair leave ~0.1 of their
    copies' voxel, e.g. 0.11 deg on the cached 1024^3 bench pair), ends within 0.3 neutron voxel
    (the NXCT issue's bar) on a multimodal pair (a non-monotonic grey map, X-ray voxel twice
    the neutron one) of a structured cylinder; the shift along the axis, which it leaves to
    the coarse levels, is not refined."""
    rng = np.random.default_rng(7)
    shape, voxel = (48, 96, 96), 10.0  # um; the X-ray's voxel is 20 um
    world = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 2.0)
    y, x = (np.arange(n) - (n - 1) / 2 for n in shape[1:])
    world *= np.hypot(*np.meshgrid(y, x, indexing="ij")) < 40
    world = (world - world.min()) / np.ptp(world)
    xray, _ = block_mean(world, 2)  # even shape: the X-ray frame is the world's
    nct_to_xct = rigid_matrix((30.0, 2.0, -1.0), (0.0, 15.0, -10.0))
    neutron = resample_rigid(np.sin(3 * world), voxel, np.linalg.inv(nct_to_xct), mode="constant")
    to_nct = np.linalg.inv(nct_to_xct)
    axis = CellAxis(to_nct[:3, 3], to_nct[:3, :3] @ [1.0, 0, 0], 400.0, np.zeros((0, 3)))
    off = rigid_matrix((0.0, 0.0, 0.0), (0.0, 8.0, -8.0)) @ rigid_matrix((0.6, 0.0, 0.0), (0, 0, 0))
    start = off @ nct_to_xct
    found, _ = _refine_fine(
        xray, 2 * voxel, neutron, voxel, start, axis,
        fine_voxels=16 * 20**3, bound_um=15.0, seed=0, scale=False, samples=30_000,
    )  # fmt: skip
    assert rms_error(start, nct_to_xct, shape, voxel) > 1.0 * voxel
    assert rms_error(found, nct_to_xct, shape, voxel) <= 0.3 * voxel
    # a start beyond the search's reach (+-3 um per parameter) is not refined into a wrong pose
    with pytest.raises(FineLevelSkipped, match="bound"):
        _refine_fine(
            xray, 2 * voxel, neutron, voxel, start, axis,
            fine_voxels=16 * 20**3, bound_um=3.0, seed=0, scale=False, samples=30_000,
        )  # fmt: skip


class _ZeroStrideVolume:
    """A large volume that reads nothing: each slice a zero-stride array of ones, its shape
    recorded; a read over ``limit`` voxels fails the test before anything is allocated."""

    def __init__(self, shape: tuple[int, int, int], limit: float) -> None:
        self.shape, self.dtype, self.limit, self.reads = shape, np.dtype(np.float32), limit, []

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        shape = tuple(len(range(*k.indices(n))) for k, n in zip(key, self.shape, strict=True))
        self.reads.append(shape)
        assert np.prod(shape) <= self.limit, f"an X-ray crop of {shape} voxels"
        return np.broadcast_to(np.float32(1.0), shape)


def test_the_fine_levels_x_ray_crops_stay_small_when_the_x_ray_is_finer() -> None:
    """An X-ray volume finer than the neutron one (5 um against 50 um: a lab or synchrotron
    XCT beside a coarse neutron CT): each neutron block's X-ray crop held ratio^3 = 1000
    times its voxels, 1618^3 (15.8 GiB as float32) for a 2600^3 X-ray and a 205^3 neutron
    volume, and the run was killed for memory. The blocks now shrink by the voxels' ratio:
    here (ratio 5, 16 blocks of at most 48^3 voxels) each crop is at most 8 times a block's
    share (2.6; margins for the motion's reach and the interpolation; was 152 times), and on a
    pair at 5 um X-ray / 10 um neutron the level still ends within 0.3 neutron voxel of the
    truth from 1.2 voxels off (0.18)."""
    fine_voxels = 16 * 48**3
    xray = _ZeroStrideVolume((600, 1200, 1200), limit=8 * fine_voxels / 16)
    neutron = _cylinder((60, 240, 240), 6)
    axis = CellAxis(np.zeros(3), np.array([1.0, 0.0, 0.0]), 0.35 * 240 * 50.0, np.zeros((0, 3)))
    with pytest.raises(FineLevelSkipped, match="contrast"):  # the stand-in's crops are flat
        _refine_fine(
            xray, 10.0, neutron, 50.0, np.eye(4), axis,
            fine_voxels=fine_voxels, bound_um=20.0, seed=0, scale=False, samples=20_000,
        )  # fmt: skip
    assert len(xray.reads) >= 8
    # accuracy with the smaller blocks: a 5 um X-ray against a 10 um neutron volume
    rng = np.random.default_rng(7)
    shape, voxel = (96, 192, 192), 5.0
    world = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 4.0)
    y, x = (np.arange(n) - (n - 1) / 2 for n in shape[1:])
    world *= np.hypot(*np.meshgrid(y, x, indexing="ij")) < 80
    world = (world - world.min()) / np.ptp(world)
    nct_to_xct = rigid_matrix((30.0, 2.0, -1.0), (0.0, 15.0, -10.0))
    neutron = resample_rigid(
        np.sin(3 * block_mean(world, 2)[0]), 2 * voxel, np.linalg.inv(nct_to_xct), mode="constant"
    )
    to_nct = np.linalg.inv(nct_to_xct)
    axis = CellAxis(to_nct[:3, 3], to_nct[:3, :3] @ [1.0, 0, 0], 400.0, np.zeros((0, 3)))
    off = rigid_matrix((0.0, 0.0, 0.0), (0.0, 8.0, -8.0)) @ rigid_matrix((0.6, 0.0, 0.0), (0, 0, 0))
    start = off @ nct_to_xct
    found, _ = _refine_fine(
        world, voxel, neutron, 2 * voxel, start, axis,
        fine_voxels=16 * 24**3, bound_um=15.0, seed=0, scale=False, samples=30_000,
    )  # fmt: skip
    assert rms_error(start, nct_to_xct, neutron.shape, 2 * voxel) > 1.0 * 2 * voxel
    assert rms_error(found, nct_to_xct, neutron.shape, 2 * voxel) <= 0.3 * 2 * voxel


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(8, 40), st.floats(0.0, 0.5))
def test_mattes_mi_is_bounded_and_blind_to_fixed_labels(seed: int, bins: int, noise: float):
    """The fine level's Mattes MI of any samples lies in [0, H(fixed)] (a mutual information,
    to rounding) and does not change when the fixed bins are relabelled (a permutation: the
    metric is multimodal); it grows as the moving samples follow the fixed ones more."""
    rng = np.random.default_rng(seed)
    fixed = rng.integers(0, bins, 5000)
    moving = np.cos(fixed) + noise * rng.standard_normal(5000)  # non-monotonic
    value = _mattes_mutual_information(fixed, moving, (-1.0, 1.0), bins)
    counts = np.bincount(fixed) / fixed.size
    entropy = -np.sum(counts[counts > 0] * np.log(counts[counts > 0]))
    assert -1e-12 <= value <= entropy + 1e-12
    relabelled = rng.permutation(bins)[fixed]
    assert _mattes_mutual_information(relabelled, moving, (-1.0, 1.0), bins) == pytest.approx(
        value, rel=1e-9, abs=1e-12
    )
    shuffled = _mattes_mutual_information(fixed, rng.permutation(moving), (-1.0, 1.0), bins)
    assert value >= shuffled - 1e-12


def _roll_with_an_end(
    end_um: float, disc: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """X-ray (20 um) and neutron (10 um, tilted, rotated and shifted) volumes of a roll that
    is the same at every height (concentric layers) up to its end at ``end_um`` above the
    centre, then head space (air and a tab); different grey maps and noise. With ``disc``,
    a disc 40 um tall at -150 um across the roll (a band of defects), more change along the
    axis than the end but no step. Returns them, the true nct_to_xct and the neutron voxel (um)."""
    rng = np.random.default_rng(5)
    shape, voxel = (80, 96, 96), 10.0
    z, y, x = (np.arange(n) - (n - 1) / 2 for n in shape)
    zz, yy, xx = np.meshgrid(z * voxel, y * voxel, x * voxel, indexing="ij")
    radius = np.hypot(yy, xx)
    world = np.where(radius < 420, 0.5 + 0.4 * np.sin(2 * np.pi * radius / 45), 0.0)
    head = zz > end_um
    world[head & (radius < 400)] = 0.05
    world[head & (np.abs(yy) < 20) & (xx > 60) & (xx < 380)] = 1.0  # the tab
    if disc:
        world[(np.abs(zz + 150) < 20) & (radius < 420)] = np.pi / 3  # neutron grey level -1
    world = world.astype(np.float32)
    xray, _ = block_mean(ndimage.gaussian_filter(world, 0.7), 2)
    xray += 0.02 * rng.standard_normal(xray.shape, dtype=np.float32)
    nct_to_xct = rigid_matrix((40.0, 3.0, -2.0), (12.0, 15.0, -10.0))
    neutron = resample_rigid(np.cos(3 * world), voxel, np.linalg.inv(nct_to_xct), mode="nearest")
    neutron = ndimage.gaussian_filter(neutron, 1.0)
    neutron += 0.03 * rng.standard_normal(neutron.shape, dtype=np.float32)
    return xray, neutron, nct_to_xct, voxel


@pytest.mark.parametrize("disc", [False, True])
def test_axial_level_finds_the_shift_along_the_axis_at_the_rolls_end(disc: bool) -> None:
    """The axial level, from a start 0.6 neutron voxel off along the axis (what the coarse
    levels leave on the 512^3 bench pair: 0.44), ends within 0.1 voxel of the truth on a
    multimodal pair where only the roll's end pins the axial shift (a third of the 0.3 bar:
    the rest is the other parameters'), also when a disc (a band of defects, no step) changes
    more along the axis than the end; a crop of the body below the end has nothing to pin it
    and is refused with a reason, not refined."""
    xray, neutron, nct_to_xct, voxel = _roll_with_an_end(200.0, disc)
    to_nct = np.linalg.inv(nct_to_xct)
    axis = CellAxis(to_nct[:3, 3], to_nct[:3, :3] @ [1.0, 0, 0], 420.0, np.zeros((0, 3)))
    off = np.eye(4)
    off[:3, 3] = 0.6 * voxel * axis.direction
    start = nct_to_xct @ off
    coarse = downsample(neutron, voxel, neutron.size // 8)  # 20 um copies
    found, what = _refine_axial(
        xray, 2 * voxel, neutron, voxel, start, axis, coarse, bound_um=10.0, seed=0
    )
    # the step used is the roll's end (200 um less the remount's 12 um), not the disc
    height = float(re.match(r"refined at the step (\S+) um", what).group(1))
    assert height == pytest.approx(188.0, abs=40.0)  # two 20 um copy voxels
    assert rms_error(start, nct_to_xct, neutron.shape, voxel) > 0.55 * voxel
    assert rms_error(found, nct_to_xct, neutron.shape, voxel) <= 0.1 * voxel
    if disc:
        return
    # the body below the end: the same pair, the neutron stack cut under the roll's end
    body = neutron[10:40]
    body_to_nct = np.eye(4)
    body_to_nct[0, 3] = (25 - 80 / 2) * voxel  # the cut stack's centre in the full one's frame
    with pytest.raises(AxialLevelSkipped, match="no step"):
        _refine_axial(
            xray, 2 * voxel, body, voxel, start @ body_to_nct, axis, downsample(body, voxel,
            body.size // 8), bound_um=10.0, seed=0,
        )  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-5.0, 5.0), min_size=3, max_size=3),
    st.lists(st.floats(-20.0, 20.0), min_size=3, max_size=3),
)
def test_rms_error_splits_along_and_across(rotation_deg: list[float], shift_um: list[float]):
    """The parts along and across the axis add up (in squares) to the whole RMS error; a
    shift along the axis is all along, one across it all across."""
    found, true = rigid_matrix(rotation_deg, shift_um), rigid_matrix((1.0, 0.0, 0.0), (0, 0, 0))
    shape, voxel = (20, 30, 30), 2.0
    along, across = rms_error_along(found, true, shape, voxel)
    assert along**2 + across**2 == pytest.approx(rms_error(found, true, shape, voxel) ** 2)
    lift = rigid_matrix((0.0, 0.0, 0.0), (shift_um[0], 0.0, 0.0))
    assert rms_error_along(lift @ true, true, shape, voxel) == pytest.approx(
        (abs(shift_um[0]), 0.0), abs=1e-9
    )
    side = rigid_matrix((0.0, 0.0, 0.0), (0.0, shift_um[1], shift_um[2]))
    assert rms_error_along(side @ true, true, shape, voxel)[0] == pytest.approx(0.0, abs=1e-9)


def test_a_wrong_voxel_size_is_refused() -> None:
    """The neutron voxel given as 20 um (truly 10): registered anyway, 1221 um RMS off, with
    exit 0. The cell's diameters differ by 2x; 15 % is the bar (as in locate)."""
    xray, neutron, _ = twin_pair()
    with pytest.raises(ValueError, match=r"cell is \d+ um across.*--nct-voxel-um"):
        register_volumes(xray, 2 * VOXEL, neutron, 2 * VOXEL)


@pytest.mark.parametrize(
    ("xct_factor", "nct_factor", "implied"), [(1.0, 1.1, 1 / 1.1), (0.97, 1.0, 0.97)]
)
def test_a_voxel_size_a_few_percent_off_is_refused(
    xct_factor: float, nct_factor: float, implied: float
) -> None:
    """One voxel size 3-10 % off passes the outlines' 15 % (they differ by ~11 % at the right
    sizes here, by ~4 % on the tiny twin: the casing's contrast) and a rigid registration
    spread the scale as misregistration: the tiny twin's pair with its neutron voxel 10 %
    too large was 79 um RMS off (124 um at most), 3 % too small 653 um (the gradient descent
    strayed), exit 0. Refused, naming both sizes and the scale the volumes imply: found
    within 0.005 of the truth (measured: <= 0.005 on tiny twins at 2-10 % off, where the pose
    search's pose is off by the wrong scale; 0.0013 on the small twin)."""
    xray, _, _ = twin_pair()
    moved, _ = remount(3)
    xct_voxel, nct_voxel = 2 * VOXEL * xct_factor, VOXEL * nct_factor
    with pytest.raises(ValueError, match=r"best scaled by") as refused:
        register_volumes(xray, xct_voxel, moved, nct_voxel, fine_voxels=0)
    message = str(refused.value)
    assert f"X-ray {xct_voxel:g} um, neutron {nct_voxel:g} um" in message
    assert "--xct-voxel-um / --nct-voxel-um" in message
    scale = float(re.search(r"best scaled by (\S+) ", message).group(1))
    assert scale == pytest.approx(implied, abs=0.005)
    neutron = float(re.search(r"imply a neutron voxel of (\S+) um", message).group(1))
    assert neutron == pytest.approx(VOXEL * nct_factor * implied, abs=0.005 * VOXEL)


@pytest.mark.parametrize("seed", [0, 3])
def test_the_right_voxel_sizes_imply_no_scale(seed: int) -> None:
    """At the right sizes the scan's scale about the registered pose is 1 within 0.002 (the
    ten remounts at the pose search's pose: within 0.0005; seven tiny twins 0.0006; the
    small twin 0.0005), far inside the warning's 1 %; the same pair with its neutron voxel
    given 5 % too large implies 1 / 1.05 (within 0.005, as above)."""
    xray, _, _ = twin_pair()
    nct, _ = remount(seed)
    found, _ = registered(seed)
    copies = downsample(xray, 2 * VOXEL, 2_000_000), downsample(nct, VOXEL, 2_000_000)
    axis = find_cell_axis(nct, VOXEL)
    scale, best, at_one = implied_scale(*copies, found, axis, seed=seed)
    assert scale == pytest.approx(1.0, abs=0.002) and best == pytest.approx(at_one, rel=0.01)
    check_scale(scale, best, at_one, 2 * VOXEL, VOXEL)  # neither refused nor warned
    # a short X-ray stack (its 6 middle slices: the same frame, a third of the neutron
    # stack's height): the points outside it are left out, not taken for a mismatch (a
    # rule of half the points inside refused this pair at the right sizes)
    short = downsample(xray[9:15], 2 * VOXEL, 2_000_000)
    assert implied_scale(short, copies[1], found, axis, seed=seed)[0] == pytest.approx(
        1.0, abs=0.002
    )
    # the rigid pose read at a wrong size: every neutron point 5 % farther from the centre
    wrong = downsample(nct, 1.05 * VOXEL, 2_000_000)
    axis = find_cell_axis(nct, 1.05 * VOXEL)
    scale, _, _ = implied_scale(copies[0], wrong, found, axis, seed=seed)
    assert scale == pytest.approx(1 / 1.05, abs=0.005)


def test_the_scale_fit_starts_at_the_scale_the_pair_implies(tiny_twin_files) -> None:
    """--scale with the tiny twin's neutron voxel given 5 % too small (9.5 um for 10): the
    similarity fit, started at scale 1, stopped on a side peak of the roll's repeating
    layers (1.010 for 1.053) and the pair was 30 um RMS off, exit 0; started at the scan's
    scale it ends at 1.052, 7 um off, as the rigid fit at the right sizes (7.5 um; the bar,
    1.5 neutron voxels, is twice that)."""
    from jellyroll.io.volumes import read_volume

    xray, xray_voxel = read_volume(tiny_twin_files / "xct.tif")
    neutron, neutron_voxel = read_volume(tiny_twin_files / "nct.tif")
    with h5py.File(tiny_twin_files / "truth.h5", "r") as f:
        truth = f["/entry/nxct/nct_to_xct"][()]
    given = 0.95 * neutron_voxel
    result = register_volumes(xray, xray_voxel, neutron, given, scale=True)
    assert result.scale == pytest.approx(1 / 0.95, abs=0.005)
    to_given = np.diag([0.95, 0.95, 0.95, 1.0])  # true neutron um -> the um given
    error = rms_error(result.nct_to_xct @ to_given, truth, neutron.shape, neutron_voxel)
    assert error <= 1.5 * neutron_voxel


def test_a_scale_between_the_warning_and_the_refusal_warns() -> None:
    """1-2 %: a calibration a little off (1 % puts the tiny twin's rim ~1 neutron voxel off);
    registered with a warning that says which sizes and what to do, not refused."""
    with pytest.warns(UserWarning, match=r"best scaled by 0\.985.*neutron voxel of 9\.85 um"):
        check_scale(0.985, 0.8, 0.7, 20.0, 10.0)
    with pytest.raises(ValueError, match=r"best scaled by 1\.025.*X-ray voxel of 19\.51 um"):
        check_scale(1.025, 0.8, 0.6, 20.0, 10.0)


def test_a_cell_size_mismatch_names_a_cut_field_and_an_unfound_fill_ring() -> None:
    """Cells of different sizes were refused with the voxel sizes (and another cell) as the
    only advice, also where a field of view cuts the cell (the tiny twin's neutron in a
    circle of 0.85 of half its slice: 1534 um across for the X-ray's 1862) or a constant
    filling outside a reconstruction's circle under 0.85 of half the slice was read as the
    cell (its X-ray within a ring of 0.8: 2934 um, the whole slice, for 1785). The message
    now names both."""
    from jellyroll.nxct.register import check_same_cell

    with pytest.raises(ValueError, match=r"voxel sizes.*cuts the cell.*whole slice.*NaN"):
        check_same_cell(2934.0, 1785.0, "the X-ray", "the neutron", "the voxel sizes")
    check_same_cell(1862.0, 1785.0, "the X-ray", "the neutron", "the voxel sizes")


def test_a_field_of_view_that_cuts_one_volumes_cell_is_refused(tiny_twin_files) -> None:
    """The tiny twin's X-ray cropped 14 of its 104 voxels a side cuts 13 % of the cell's
    cross-section off (the cell sits 97 um off the array's centre: more on two sides); the
    outline's centre moved 119 um and the pair registered 64.5 um off, 6.7 deg about the
    axis, exit 0. Refused, naming the volume cut and the remedy, before any registration.
    Not refused (:data:`MAX_CUT_DIFFERENCE` 10 % between the two): the neutron cropped by as
    much as registers right (20 of 208 voxels a side, 7 %: 7.0 um RMS) and both volumes in
    circles inside the cell, as the study's pair (1 % and 3 %: 10.3 um)."""
    from jellyroll.io.volumes import read_volume

    xray, xray_voxel = read_volume(tiny_twin_files / "xct.tif")
    neutron, neutron_voxel = read_volume(tiny_twin_files / "nct.tif")
    with pytest.raises(ValueError, match=r"the X-ray volume cuts off 1[34]%.*0%.*uncropped"):
        register_volumes(xray[:, 14:-14, 14:-14], xray_voxel, neutron, neutron_voxel)

    def in_circle(volume: np.ndarray, fraction: float) -> np.ndarray:
        """``volume`` NaN outside a circle of ``fraction`` of half its slice."""
        ny, nx = volume.shape[1:]
        y, x = np.ogrid[:ny, :nx]
        out = volume.copy()
        out[:, np.hypot(y - (ny - 1) / 2, x - (nx - 1) / 2) > fraction * ny / 2] = np.nan
        return out

    sizes = (xray_voxel, neutron_voxel)
    for pair in [
        (xray, neutron[:, 20:-20, 20:-20]),
        (in_circle(xray, 0.6), in_circle(neutron, 0.6)),
    ]:
        copies = [downsample(v, size, 2_000_000) for v, size in zip(pair, sizes, strict=True)]
        axes = [_find_axis_coarse(*copy) for copy in copies]
        check_same_cut(copies, axes, ("the X-ray volume", "the neutron volume"))


def test_a_mirrored_neutron_volume_is_refused() -> None:
    """One axis flipped between the instruments' conventions: registered 162 um off at a
    lower mutual information, exit 0. A wound roll is chiral: its mirror matches worse."""
    xray, _, _ = twin_pair()
    moved, _ = remount(0)
    with pytest.raises(ValueError, match=r"better mirrored.*flip one axis"):
        register_volumes(xray, 2 * VOXEL, moved[:, :, ::-1].copy(), VOXEL, fine_voxels=0)


def test_a_neutron_stack_with_its_slices_reversed_is_refused() -> None:
    """Slices stacked the other way (numbered from the other end, a detector read the other
    way up): a mirror along the axis, which the in-plane mirror check cannot see (the roll's
    spiral is unchanged). Registered 24 neutron voxels (490 um) RMS off, exit 0; now refused
    by the structure along the axis (the roll's end, inclusions): the heights reversed match
    1.09-1.30 times worse than as given on the ten remounts (:data:`FLIP_RATIO` 1.05)."""
    xray, _, _ = twin_pair()
    moved, _ = remount(0)
    with pytest.raises(ValueError, match=r"slices in the reverse order.*reverse the order"):
        register_volumes(xray, 2 * VOXEL, moved[::-1].copy(), VOXEL, fine_voxels=0)


@pytest.mark.parametrize("which", ["neutron", "X-ray"])
def test_a_volume_of_inverted_contrast_is_refused(which: str) -> None:
    """A volume bright in the air around the cell (a transmission volume, a grey scale
    reversed): remount 0's neutron volume so was refused as "better mirrored ... flip one
    axis" (advice that, followed, makes a mirror; mutual information 0.13 against 0.10) and
    remount 1's registered. Refused by name, either modality. The twins' corners are air
    0.9-1.3 interquartile ranges of the cell below its median, inverted as far above."""
    xray, _, _ = twin_pair()
    moved, _ = remount(0)
    if which == "neutron":
        moved = moved.max() - moved
    else:
        xray = xray.max() - xray
    with pytest.raises(ValueError, match=rf"the {which} volume is brighter in the air.*inverted"):
        register_volumes(xray, 2 * VOXEL, moved, VOXEL, fine_voxels=0)


def test_a_field_of_view_inside_the_cell_is_not_judged_for_contrast() -> None:
    """The study's neutron field of view (8.6 mm) lies inside the 18 mm cell: the slices'
    corners hold the roll, not air, and say nothing of the contrast (either way up)."""
    _, neutron, _ = twin_pair()
    inside = neutron[:, 26:78, 26:78]
    check_attenuation_contrast(inside, "inside")
    check_attenuation_contrast(inside.max() - inside, "inside, inverted")


def test_an_upside_down_neutron_volume_is_registered() -> None:
    """A cell mounted upside down in the neutron instrument (turned 180 deg about an axis
    across it: a rotation, no mirror) was refused as "mirrored ... flip one axis", advice
    that, followed, would have made it a mirror. Now registered as the rotation it is,
    within the remounts' 0.3 neutron voxel bar (0.11; 0.09 upright). The turn is not left to
    SimpleITK's versor (about 180 deg about an axis across the cell, where its parameters
    degenerate: its gradient descent went from 0.86 neutron voxel off to 6.5, 1.8 after the
    polish)."""
    xray, _, _ = twin_pair()
    moved, truth = remount(0)
    turned = np.diag([-1.0, -1.0, 1.0, 1.0])  # (z, y, x) -> (-z, -y, x) about the centre
    result = register_volumes(xray, 2 * VOXEL, moved[::-1, ::-1].copy(), VOXEL, fine_voxels=0)
    assert result.upside_down
    assert rms_error(result.nct_to_xct, truth @ turned, NCT_SHAPE, VOXEL) <= 0.3 * VOXEL
    assert np.linalg.det(result.nct_to_xct[:3, :3]) == pytest.approx(1.0, abs=1e-6)


def _cylinder(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """A noisy cylinder along z filling 70 % of the field: a cell to find in any stack."""
    _, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    r = np.hypot(y - (shape[1] - 1) / 2, x - (shape[2] - 1) / 2)
    inside = r < 0.35 * shape[1]
    noise = np.random.default_rng(seed).normal(0, 0.05, shape)
    return (np.broadcast_to(inside, shape) + noise).astype(np.float32)


@pytest.mark.parametrize(
    ("xct_shape", "nct_shape", "max_voxels", "message"),
    [
        # 2-3 slices ended in a bare ITK RuntimeError ("SmoothingRecursiveGaussianImageFilter
        # ... less than 4") after the angle search
        ((8, 52, 52), (3, 104, 104), 2_000_000, r"neutron volume has 3 slices.*at least 4"),
        # a wide stack of 8 slices becomes 3 in a copy of blocks of 3 voxels: the same crash
        (
            (8, 104, 104),
            (16, 208, 208),
            10_000,
            r"X-ray volume has 8 slices, 3 in.*10 in the volume",
        ),
        ((1, 52, 52), (8, 104, 104), 2_000_000, r"1 slice\(s\).*neutron volume 8"),
    ],
)
def test_a_stack_too_thin_to_register_is_refused(
    xct_shape: tuple[int, int, int],
    nct_shape: tuple[int, int, int],
    max_voxels: int,
    message: str,
) -> None:
    xray, neutron = _cylinder(xct_shape, 1), _cylinder(nct_shape, 2)
    with pytest.raises(ValueError, match=message):
        register_volumes(xray, 2 * VOXEL, neutron, VOXEL, max_voxels=max_voxels, fine_voxels=0)


def test_the_axial_level_of_a_short_stack_is_skipped_not_a_crash() -> None:
    """A 10-slice neutron stack left one height to rank the axial change at: an IndexError
    (bare traceback) out of `jellyroll nxct`; now the level is skipped, as for shorter ones."""
    neutron = _cylinder((10, 64, 64), 3)
    coarse = downsample(neutron, VOXEL / 2, 2_000_000)
    axis = CellAxis(np.zeros(3), np.array([1.0, 0.0, 0.0]), 200.0, np.zeros((1, 3)))
    with pytest.raises(AxialLevelSkipped, match="too short"):
        _refine_axial(
            _cylinder((5, 32, 32), 4), VOXEL, neutron, VOXEL / 2, np.eye(4), axis, coarse,
            bound_um=5.0, seed=0,
        )  # fmt: skip


def test_volumes_stored_as_xyz_are_refused() -> None:
    """Both volumes of a pair stored as (x, y, z) (MATLAB or Fortran order) were registered
    207 um off with exit 0 (fused volume and labels without meaning). A wound cell varies
    least along its axis: the volumes as given pass, transposed they are refused, naming the
    volume (the ratios on the twins: 0.01-0.46 as given, 2.3-76 transposed; limit 2)."""
    xray, neutron, _ = twin_pair()
    for volume, voxel in ((xray, 2 * VOXEL), (neutron, VOXEL)):
        check_cell_axis(downsample(volume, voxel, 2_000_000)[0], "as given")
    xyz = [np.ascontiguousarray(np.transpose(v, (2, 1, 0))) for v in (xray, neutron)]
    with pytest.raises(ValueError, match=r"X-ray volume varies .* transposed"):
        register_volumes(xyz[0], 2 * VOXEL, xyz[1], VOXEL, fine_voxels=0)
    # a noisy cylinder along z, and one slice (nothing to judge) pass
    check_cell_axis(_cylinder((16, 64, 64), 5), "a cylinder")
    check_cell_axis(_cylinder((1, 64, 64), 5), "one slice")


def test_a_neutron_stack_centred_past_the_axial_search_is_refused() -> None:
    """A neutron stack of the bottom half of the twin's neutron world (24 of 48 slices, its
    centre 240 um below the X-ray stack's) registered 297 um (15 neutron voxels) off along
    the axis with exit 0: the shift search reached +-80 um (20 % of the shorter stack) and
    its flat scores peaked inside. Now the shorter stack is also matched anywhere along the
    taller one; its best there (230 um, beyond +-80) is refused with the advice to crop. The
    match is not a tolerance: a refusal, where any pose found would be 10+ voxels off."""
    xray, neutron, _ = twin_pair()
    bottom = np.ascontiguousarray(neutron[:24])
    with pytest.raises(ValueError, match=r"end of the search .*Crop the taller stack"):
        register_volumes(xray, 2 * VOXEL, bottom, VOXEL, fine_voxels=0)


def test_the_rotation_about_the_axis_is_reported_with_the_remounts_sign() -> None:
    """``rotation_about_axis_deg`` (written to ``/entry/registration``) is the rotation about
    the cell axis that ``nct_to_xct`` applies, with the sign of the twin's remount draw of the
    same name: a neutron volume remounted +30 deg about the axis was reported as -29.4, exit
    0, while its matrix turned it +30. It was the pose search's estimate, 0.57 deg off here
    (up to 1.5 on the ten remounts); read from the final matrix, 0.35 deg (0.43 at most).
    0.5 deg: the matrix is within 5 um RMS at the cell's 1 mm radius (0.3 deg), under a tilt
    of up to 5 deg; 1 deg against the matrix's own in-plane angle, which the tilt moves."""
    xray, _, _ = twin_pair()
    moved, _ = remount(2, angle_deg=30.0)
    result = register_volumes(xray, 2 * VOXEL, moved, VOXEL, fine_voxels=0)
    assert result.rotation_about_axis_deg == pytest.approx(30.0, abs=0.5)
    in_plane = result.nct_to_xct[1:3, 1:3]  # (y, x) rows of a rotation about z by +angle
    angle = np.degrees(np.arctan2(in_plane[0, 1], in_plane[0, 0]))
    assert result.rotation_about_axis_deg == pytest.approx(angle, abs=1.0)


@pytest.mark.parametrize(
    ("rows", "planes"), [(slice(20, 24), slice(None)), (slice(None), slice(0, 3))],
    ids=["band of rows", "end planes"],
)  # fmt: skip
def test_voxels_not_measured_are_left_out_of_the_registration(
    tmp_path, rows: slice, planes: slice
) -> None:
    """NaN voxels of the X-ray (not measured: a detector gap, a cut field of view) read
    through the run's reader (a TIFF, :func:`open_volume`), which gives them 0: read so,
    as data, 4 NaN rows across the core of remount 0's X-ray registered 7.1 um RMS off
    (1.9 intact) and its 3 bottom planes NaN 9.1 um (8.9 along the axis), exit 0. Now the
    registration reads them as NaN and leaves them out of every level: 2.3 and 2.0 um; the
    bar, a quarter neutron voxel (5 um), is the remount test's less its intact margin."""
    from jellyroll.io.volumes import open_volume, write_tiff_stack

    xray, _, _ = twin_pair()
    nct, truth = remount(0)
    holed = xray.copy()
    holed[planes, rows] = np.nan
    path = write_tiff_stack(tmp_path / "xct.tif", holed, 2 * VOXEL)
    with open_volume(path) as source:
        found = register_volumes(source, 2 * VOXEL, nct, VOXEL, fine_voxels=0).nct_to_xct
    assert rms_error(found, truth, NCT_SHAPE, VOXEL) <= 0.25 * VOXEL


def test_a_volume_measured_too_little_is_refused_naming_the_file(tmp_path) -> None:
    """10 NaN rows through the roll's core (76 % of the stack's inscribed cylinder measured)
    registered 12-36 um RMS off on three remounts, exit 0 (read as NaN or as 0): refused,
    naming the file and the share measured."""
    from jellyroll.io.volumes import open_volume, write_tiff_stack

    xray, _, _ = twin_pair()
    nct, _ = remount(0)
    holed = xray.copy()
    holed[:, 16:26] = np.nan
    path = write_tiff_stack(tmp_path / "holed.tif", holed, 2 * VOXEL)
    with (
        open_volume(path) as source,
        pytest.raises(ValueError, match=r"holed\.tif is measured .* over 76% .*too little"),
    ):
        register_volumes(source, 2 * VOXEL, nct, VOXEL, fine_voxels=0)


def test_unmeasured_voxels_in_the_copies_and_the_mutual_information() -> None:
    """A block is the mean of its measured (finite) voxels, NaN under half measured (before,
    NaN spread to its block and the axis search found "no cell"); quantised NaN is -1 and
    the circular MI of every shift is that of the pairs measured in both."""
    rng = np.random.default_rng(0)
    volume = rng.random((4, 6, 6))
    volume[0, :3, :3] = np.nan
    volume[1, 0, 0] = np.inf
    coarse = downsample(volume, 1.0, 27)[0]
    assert np.isnan(coarse[0, 0, 0])  # 7 of 8 unmeasured
    block = volume[2:4, :2, :2]
    assert coarse[1, 0, 0] == pytest.approx(block.mean(), rel=1e-6)
    corner = volume[:2, 2:4, :2]
    assert coarse[0, 1, 0] == pytest.approx(corner[np.isfinite(corner)].mean(), rel=1e-6)
    a = rng.random((3, 40))
    b = np.roll(a, 7, axis=-1) ** 2
    a[0, 5:15], b[2, 20:30] = np.nan, np.nan
    qa, qb = _quantise(a, 6), _quantise(b, 6)
    assert (qa < 0).sum() == 10 and (qb < 0).sum() == 10
    scores = _circular_mutual_information(qa, qb, 6)
    expected = [_mutual_information(qa, np.roll(qb, -s, axis=-1), 6) for s in range(40)]
    np.testing.assert_allclose(scores, expected, atol=1e-9)
    assert int(np.argmax(scores)) == 7


@pytest.mark.parametrize(
    ("which", "where", "count"),
    [("X-ray", "start", 1), ("X-ray", "end", 1), ("neutron", "start", 4)],
)
def test_blank_padding_planes_are_not_measured(
    tiny_twin_files, which: str, where: str, count: int
) -> None:
    """A stack padded with planes of one value (a reconstruction writing a fixed number of
    slices; 0 here, as an integer volume's offset would be): read as data, one such plane
    on the tiny twin's 8-plane X-ray stack moved it 34.6 um RMS (34.2 along the axis) at the
    start, 26.2 (25.5) at the end, exit 0; 7.5 intact. Now the plane is not measured, as NaN
    (as :func:`~jellyroll.nxct.unmeasured.fill_ring` reads it): 9.7 and 7.6. The bar, 1.5
    neutron voxels, is the tiny twin's (as for the scale fit): its axial shift is pinned to
    a few um only (the sampling seed alone moves it 2.6-10.6 um intact).

    Padding also moves a stack's middle, where the search along the axis was centred: 4
    blank planes before the 16 of the neutron stack (4-8 planes at either end of either stack
    alike) were refused as "the two stacks' centres lie too far apart ... Crop the taller
    stack", advice that misleads (nothing to crop). The search now also covers the shifts
    about the one where the middles of the stacks' measured planes meet: 6.4 um (6.6-11.3
    for the others)."""
    from jellyroll.io.volumes import read_volume

    xray, xray_voxel = read_volume(tiny_twin_files / "xct.tif")
    neutron, neutron_voxel = read_volume(tiny_twin_files / "nct.tif")
    with h5py.File(tiny_twin_files / "truth.h5", "r") as f:
        truth = f["/entry/nxct/nct_to_xct"][()]
    volume, voxel = (xray, xray_voxel) if which == "X-ray" else (neutron, neutron_voxel)
    blank = np.zeros((count, *volume.shape[1:]), volume.dtype)
    padded = np.concatenate([blank, volume] if where == "start" else [volume, blank])
    to_padded = np.eye(4)  # the frame's centre moves half the padding away from it
    to_padded[0, 3] = (0.5 if where == "start" else -0.5) * count * voxel
    if which == "X-ray":
        xray, truth = padded, to_padded @ truth
    else:
        neutron, truth = padded, truth @ np.linalg.inv(to_padded)
    result = register_volumes(xray, xray_voxel, neutron, neutron_voxel)
    error = rms_error(result.nct_to_xct, truth, neutron.shape, neutron_voxel)
    assert error <= 1.5 * neutron_voxel


def test_blank_planes_read_as_not_measured() -> None:
    """The pyramid reports the blank planes (finite voxels all one value; NaN beside them
    allowed) and leaves them out of its blocks; the view of the volume the finer levels
    read gives them as NaN, whatever the slicing."""
    from jellyroll.nxct.unmeasured import PlanesAsNan

    volume = np.random.default_rng(0).random((6, 4, 4)).astype(np.float32)
    volume[0] = 0.0
    volume[4] = -1000.0
    volume[4, 0, 0] = np.nan
    volume[5, 1:] = 7.0  # not blank: the first row is measured otherwise
    blank: list[int] = []
    (coarse, _, _), *_ = downsample_levels(volume, 1.0, (10_000,), slab=4, blank_planes=blank)
    assert blank == [0, 4]
    assert np.isnan(coarse[[0, 4]]).all() and np.isfinite(coarse[[1, 2, 3, 5]]).all()
    view = PlanesAsNan(volume, blank)
    assert np.isnan(view[0:2][0]).all() and np.isfinite(view[0:2][1]).all()
    box = view[3:6, 1:3, 1:3]
    assert np.isnan(box[1]).all() and np.isfinite(box[[0, 2]]).all()


def test_the_measured_share_is_judged_in_the_field_of_view() -> None:
    """A reconstruction's circle inside a wider array (NaN outside it, the cell inside):
    the share was taken over the cylinder inscribed in the array, and the tiny twin's X-ray
    grown by 13 voxels a side (its circle 0.8 of the new one) was refused as 64 % measured,
    though it registers within 8.5 um RMS (7.5 as given). Now the cylinder is the one that
    holds every measured voxel; a hole inside it is still refused, and so is one inside an
    array's inscribed cylinder; blank padding planes are left out of the judged planes."""
    from jellyroll.nxct.register import check_measured

    copy = np.random.default_rng(0).random((6, 40, 40)).astype(np.float32)
    y, x = np.ogrid[:40, :40]
    radius = np.hypot(y - 19.5, x - 19.5) / 20
    in_circle = np.where(radius <= 0.7, copy, np.nan)
    check_measured(in_circle, "a circle of 0.7")  # 100 % of its field of view
    holed = in_circle.copy()
    holed[:, 14:20] = np.nan  # rows through the core: 76 % of the circle measured
    with pytest.raises(ValueError, match=r"holed is measured .* over 7\d% of the cylinder"):
        check_measured(holed, "holed")
    square = copy.copy()
    square[:, 10:20] = np.nan  # the corners measured: the inscribed cylinder, 75 %
    with pytest.raises(ValueError, match=r"over 7\d%"):
        check_measured(square, "square")
    padded = np.concatenate([np.full((4, 40, 40), np.nan, np.float32), copy])
    with pytest.raises(ValueError, match=r"over 60%"):
        check_measured(padded, "padded")
    check_measured(padded, "padded", planes=np.arange(10) >= 4)
    # a square field padded with NaN: its NaN margins count against the share, and the
    # refusal says so and what to do (it said NaN outside a field was allowed)
    framed = np.full((6, 56, 56), np.nan, np.float32)
    framed[:, 8:48, 8:48] = copy
    with pytest.raises(ValueError, match=r"NaN outside a square or turned field .* fill it"):
        check_measured(framed, "framed")


def test_a_fill_ring_round_an_integer_volume_is_not_measured(tiny_twin_files) -> None:
    """A reconstruction's circle filled outside with 0 in an int16 volume whose air reads
    about -1000 (an offset): the ring, brighter than the air, was read as the cell's outline
    (the tiny twin's X-ray 2347 um across for the neutron's 1785) and the pair refused as of
    a wrong voxel size, advice that misleads. Now the ring is not measured, as in the
    segmentation (:func:`~jellyroll.nxct.unmeasured.fill_ring`): registered within 8.3 um RMS
    (7.5 as given), under the tiny twin's bar of 1.5 neutron voxels (see the padding test).
    The copies leave it out (NaN), the blank planes too."""
    from jellyroll.io.volumes import read_volume

    xray, xray_voxel = read_volume(tiny_twin_files / "xct.tif")
    neutron, neutron_voxel = read_volume(tiny_twin_files / "nct.tif")
    with h5py.File(tiny_twin_files / "truth.h5", "r") as f:
        truth = f["/entry/nxct/nct_to_xct"][()]
    offset = np.round(xray / np.percentile(xray, 99.9) * 8000 - 1000).astype(np.int16)
    _, ny, nx = xray.shape
    y, x = np.ogrid[:ny, :nx]
    offset[:, np.hypot(y - (ny - 1) / 2, x - (nx - 1) / 2) > min(ny, nx) / 2] = 0
    blank: list[int] = []
    (copy, _, _), *_ = downsample_levels(offset, xray_voxel, (10**7,), blank_planes=blank)
    assert np.isnan(copy[:, 0, 0]).all() and np.isfinite(copy[:, ny // 2, nx // 2]).all()
    assert blank == []
    result = register_volumes(offset, xray_voxel, neutron, neutron_voxel)
    assert rms_error(result.nct_to_xct, truth, neutron.shape, neutron_voxel) <= 1.5 * neutron_voxel


def test_a_nan_end_plane_is_not_smoothed_into_the_gradient_level(
    tiny_twin_files, monkeypatch
) -> None:
    """SimpleITK's pyramid smoothed the filled NaN voxels (:func:`_filled`, a blurred local
    mean) into the measured planes beside them, past the metric mask's one-voxel margin: one
    NaN end plane of the tiny twin's 8-plane X-ray moved it 10.8 and 3.8 um along the axis
    (seeds 0 and 1; 3.3 and 2.6 intact), and the NaN plane holding its true values instead
    of the filling gave 2.0, exit 0. Now that level smooths the measured voxels only: 1.9
    and 3.1. The bar, a mean of 5 um (half a neutron voxel) over the two seeds, sits between:
    the seed alone moves this short pair's axial shift by up to 10 um (seed 2 intact).

    Nor does what fills the NaN voxels for SimpleITK matter much: SimpleITK's gradient of the
    X-ray copy, a Gaussian derivative of the whole image, carried the filling past the mask's
    margin, and the NaN plane filled with the X-ray's maximum instead of the local mean
    (:func:`_filled`) moved seed 0's result 9.3 um, exit 0; with central differences 1.1.
    The bar, 3 um (0.3 neutron voxel, the remounts' bar): not 0, the central differences
    still reach one voxel past the margin, and a 0.001 deg change of the polish's start moves
    this pair's result by up to 7 um."""
    import jellyroll.nxct.register as register
    from jellyroll.io.volumes import read_volume

    xray, xray_voxel = read_volume(tiny_twin_files / "xct.tif")
    neutron, neutron_voxel = read_volume(tiny_twin_files / "nct.tif")
    with h5py.File(tiny_twin_files / "truth.h5", "r") as f:
        truth = f["/entry/nxct/nct_to_xct"][()]
    xray = xray.copy()
    xray[0] = np.nan
    found = [
        register_volumes(xray, xray_voxel, neutron, neutron_voxel, seed=seed).nct_to_xct
        for seed in (0, 1)
    ]
    along = [rms_error_along(m, truth, neutron.shape, neutron_voxel)[0] for m in found]
    assert np.mean(along) <= 5.0

    def filled_with_the_maximum(array: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(array), array, np.nanmax(array)).astype(np.float32)

    monkeypatch.setattr(register, "_filled", filled_with_the_maximum)
    other = register_volumes(xray, xray_voxel, neutron, neutron_voxel, seed=0).nct_to_xct
    assert rms_error(other, found[0], neutron.shape, neutron_voxel) <= 3.0

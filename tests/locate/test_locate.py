"""Slice location against the twin's truth: random placements recovered, the LOCATION.h5
contract through the CLI, and one clear error per bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.conventions import block_mean, pixel_centres_um
from jellyroll.io.volumes import open_volume, planes_digest, read_volume, write_tiff_stack
from jellyroll.locate.core import (
    MAX_IN_PLANE_DISAGREEMENT_DEG,
    MAX_ROTATION_UNCERTAINTY_DEG,
    MIN_DETAIL_CORRELATION,
    Location,
    NoAngleError,
    _best_height,
    _detail,
    _Grid,
    _height_support,
    _map_points,
    _Metric,
    _refine,
    _rotation_uncertainty,
    locate_slice,
    pose_errors,
    pose_parameters,
)
from jellyroll.locate.options import LocateOptions
from jellyroll.locate.run import height_warning, in_plane_warning, nxct_on_map, run_locate
from jellyroll.nxct.fuse import fuse_rgb
from jellyroll.phantom.nxct import axis_angle_matrix, rigid_matrix, rotation_matrix
from jellyroll.phantom.twin import Twin, make_twin
from jellyroll.phantom.write import placed_xray_stack
from jellyroll.results.location import read_location
from jellyroll.results.nxct import create_volume_datasets, write_registration_group
from jellyroll.results.run import Map, MapSet, write_maps_group
from jellyroll.results.store import RunFileError

VOXEL_UM = 20.0
"""The twin's X-ray voxel (2 x the 10 um NXCT voxel), on the map's 20 um pixels."""
N_SLICES = 8
"""The tiny twin's X-ray stack: 160 um."""


@pytest.fixture(scope="module")
def twin() -> Twin:
    return make_twin("aged_charged", "tiny", seed=3)


def placed_xray(twin: Twin, seed: int, n_slices: int = N_SLICES) -> tuple[np.ndarray, np.ndarray]:
    """An X-ray volume of the twin (60 keV, blurred 0.7 voxel, noise 2 % of the range) in
    which the SWAXS slice sits at the random placement of ``seed``; and map_to_xct."""
    return placed_xray_stack(twin, seed, n_slices, VOXEL_UM)


def placement_errors(found: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """|height| (um), |rotation| (deg) and in-plane distance (um) of the map origin."""
    height, rotation, shift = pose_errors(found, truth)
    return abs(height), rotation, shift


@pytest.fixture(scope="module")
def ten_placements(twin: Twin) -> np.ndarray:
    """(10, 3) errors (height um, rotation deg, shift um) of ten random placements (seeds
    0-9); the map is the twin's true attenuation at the SWAXS energy, the volume a 60 keV lab
    CT (a monotone grey map apart)."""
    errors = []
    for seed in range(10):
        volume, truth = placed_xray(twin, seed)
        found = locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, volume, VOXEL_UM)
        errors.append(placement_errors(found.map_to_xct, truth))
        assert found.similarity > 0.8
        # the rotation's standard error (measured 0.21-0.32 deg): not flagged
        assert found.rotation_uncertainty_deg <= MAX_ROTATION_UNCERTAINTY_DEG
    return np.asarray(errors)


def test_ten_random_placements_height_and_shift(twin: Twin, ten_placements: np.ndarray) -> None:
    """The issue's bars: height within 0.5 X-ray voxel, shift within one map pixel."""
    height, _, shift = ten_placements.max(axis=0)
    # measured: 9.8 um and 1.3 um at most over the ten
    assert height <= 0.5 * VOXEL_UM
    assert shift <= twin.pixel_size_um


def test_ten_random_placements_rotation(ten_placements: np.ndarray) -> None:
    """The issue's bar: in-plane rotation within 0.5 deg (measured: 0.43 deg at most; the
    angle rests on the tiny twin's four agglomerates and the spiral's ends)."""
    assert ten_placements[:, 1].max() <= 0.5


@pytest.fixture(scope="module")
def another_twin_placements() -> list[tuple[Location, np.ndarray]]:
    """Ten placements (seeds 0-9) of the tiny twin of seed 5, none of the settings chosen on
    it: the locations found and the true map_to_xct."""
    other = make_twin("aged_charged", "tiny", seed=5)
    found = []
    for seed in range(10):
        volume, truth = placed_xray(other, seed)
        found.append(
            (locate_slice(other.mu_xray_per_um, other.pixel_size_um, volume, VOXEL_UM), truth)
        )
    return found


@pytest.mark.xfail(
    strict=True,
    reason="issue 12 not met on a twin the method was not tuned on: on the tiny twin of seed 5 "
    "four of ten placements miss the half-voxel height (11.0, 11.6, 14.4, 17.8 um; rotation "
    "0.36 deg, shift 2.2 um at most). The height "
    "found follows the centre of the twin's large agglomerate, 9.3 um above the slice (mean "
    "error +9.3 um; moved to the slice in the twin, none misses): a plane 9 um off an "
    "ellipsoid's equator matches its mirror plane, and the volume's 20 um slices merge the two "
    "(docs/locate-validation.md, why the height misses); locate says so (the next test)",
)
def test_ten_placements_of_another_twin(
    another_twin_placements: list[tuple[Location, np.ndarray]],
) -> None:
    """The issue's bars on a twin none of the settings were chosen on (seed 5)."""
    errors = [placement_errors(found.map_to_xct, truth) for found, truth in another_twin_placements]
    height, rotation, shift = np.max(errors, axis=0)
    assert rotation <= 0.5 and shift <= 20.0
    assert height <= 0.5 * VOXEL_UM


def test_a_height_the_data_do_not_fix_is_flagged(
    another_twin_placements: list[tuple[Location, np.ndarray]],
) -> None:
    """Where the height misses the bar (seed 5), the data say so: every placement whose
    height is off by more than half a voxel has an uncertainty over half a voxel (the warning
    of `jellyroll locate`), and every interval of heights given covers the truth. Measured:
    all ten rest on the one large agglomerate (1.00-1.11 effective defects), uncertainties
    20.2 to 28.6 um, the four misses among them."""
    for found, truth in another_twin_placements:
        error = abs(found.map_to_xct[0, 3] - truth[0, 3])
        flagged = found.height_uncertainty_um > 0.5 * VOXEL_UM
        assert flagged or error <= 0.5 * VOXEL_UM, (error, found.height_uncertainty_um)
        if flagged:
            low, high = found.height_interval_um
            assert low <= truth[0, 3] <= high


def test_a_volume_the_same_at_every_height_allows_any_height(twin: Twin) -> None:
    """Nothing changes along z (every slice the same): at the true pose (the identity) the
    height's interval is the whole stack, and no defect holds it. The whole stack, not the
    slab the height was refined in (a 384^3 volume flat along z from -255 to -27 um said
    -154 to -73, the slab's heights)."""
    image = twin.mu_xray_per_um  # the map itself as every slice, on its own grid
    volume = np.repeat(image[None], N_SLICES, axis=0)
    grid = _Grid(volume, VOXEL_UM, -(np.asarray(volume.shape) - 1) / 2 * VOXEL_UM)
    points, values = _map_points(_Grid(volume[:1], VOXEL_UM, grid.origin_um * [0, 1, 1]),
                                 np.zeros(2), 800.0, VOXEL_UM)  # fmt: skip
    metric = _Metric.at(points, values, grid, _detail(grid), np.eye(4))
    stack = (N_SLICES - 1) / 2 * VOXEL_UM + 500.0  # a stack beyond the slab measured
    interval, defects = _height_support(metric, np.eye(4), 300.0, (-stack, stack))
    assert interval == pytest.approx((-stack, stack)) and defects == 0


@pytest.mark.parametrize(
    ("interval", "defects", "why"),
    [
        ((-3.0, 3.0), 2.0, ""),
        ((-30.0, 30.0), 0.0, "nothing in the volume changes along z"),
        ((-30.0, 30.0), 1.1, "rests on one defect"),
        ((-30.0, 30.0), 2.0, "the defects it rests on may all lie off the slice alike"),
    ],
)
def test_the_height_warning_says_why(interval, defects, why) -> None:
    """Within half a voxel: no warning; beyond: the interval and why."""
    empty = np.zeros(1)
    location = Location(np.eye(4), 0.9, empty, empty, empty, 0.0, interval, defects)
    warning = height_warning(location, VOXEL_UM)
    assert (why in warning and "from -30.0 to 30.0 um" in warning) if why else warning == ""


@pytest.fixture(scope="module")
def small_twin_placements() -> list[tuple[Location, np.ndarray]]:
    """Ten placements (seeds 0-9) of the three-turn small twin of seed 6 (twelve agglomerates
    with their bends) in a 24-slice (480 um) stack: a twin none of the settings were chosen
    on, the worst of four such twins for the rotation."""
    small = make_twin("aged_charged", "small", seed=6)
    placements = []
    for seed in range(10):
        volume, truth = placed_xray(small, seed, n_slices=24)
        found = locate_slice(small.mu_xray_per_um, small.pixel_size_um, volume, VOXEL_UM)
        placements.append((found, truth))
    return placements


def test_ten_placements_of_a_small_twin_not_tuned_on(
    small_twin_placements: list[tuple[Location, np.ndarray]],
) -> None:
    """The issue's bars on the small twin of seed 6 (measured: height 4.4 um, rotation
    0.45 deg, shift 0.8 um at most; before the matched blur the rotation was 0.89 deg,
    docs/locate-validation.md), and the height's interval covers the truth on every
    placement: the height rests on two agglomerates 3.7 and 4.2 um below the slice, so it is
    3-4 um low on every placement, which the scatter of the defects' heights (+-0.6-2.4 um)
    did not cover."""
    errors = [placement_errors(found.map_to_xct, truth) for found, truth in small_twin_placements]
    height, rotation, shift = np.max(errors, axis=0)
    assert height <= 0.5 * VOXEL_UM and rotation <= 0.5 and shift <= VOXEL_UM
    for found, truth in small_twin_placements:
        low, high = found.height_interval_um
        assert found.height_defects >= 1.5 and low <= truth[0, 3] <= high
        assert found.rotation_uncertainty_deg <= MAX_ROTATION_UNCERTAINTY_DEG


@pytest.mark.xfail(
    strict=True,
    reason="the data do not fix the defects' shared offset from the slice: the small twin's "
    "heights are within 4.4 um of the truth, but its two agglomerates' humps allow it 40-47 um "
    "away (over half the 20 um voxel: flagged); docs/locate.md, 'the shared offset'",
)
def test_correct_heights_of_a_small_twin_are_not_flagged(
    small_twin_placements: list[tuple[Location, np.ndarray]],
) -> None:
    """A height within half a voxel, resting on several defects, is not flagged."""
    for found, _ in small_twin_placements:
        assert found.height_uncertainty_um <= 0.5 * VOXEL_UM


def test_defects_that_lie_alike_off_the_slice_do_not_narrow_the_interval() -> None:
    """Two ellipsoidal defects of different sizes (axial semi-axes 40 and 30 um), both centred
    10 um below the map's plane, in a volume that is otherwise the same at every height (10 um
    voxels, noise 15 % of the defects' contrast): the height is found at their centre, 10 um
    (a voxel) low, their heights agree, and the interval still reaches the truth."""
    rng = np.random.default_rng(0)
    voxel, n, nz, below = 10.0, 48, 41, 10.0
    texture = ndimage.gaussian_filter(rng.standard_normal((n, n)), 2.0)
    z, yx = pixel_centres_um(nz, voxel), pixel_centres_um(n, voxel)
    zz, yy, xx = np.meshgrid(z, yx, yx, indexing="ij")
    volume = np.repeat(texture[None], nz, axis=0)
    for centre, across, tall in ((-120.0, 60.0, 40.0), (120.0, 40.0, 30.0)):
        inside = ((yy - centre) ** 2 + (xx - centre) ** 2) / across**2 + ((zz + below) / tall) ** 2
        volume += 2.0 * np.clip(1.0 - inside, 0.0, None)
    plane = volume[nz // 2].copy()  # the map: the plane z = 0, without the volume's noise
    volume += 0.3 * rng.standard_normal(volume.shape)
    grid = _Grid(volume, voxel, -(np.asarray(volume.shape) - 1) / 2 * voxel)
    points, values = _map_points(_Grid(plane[None], voxel, grid.origin_um * [0, 1, 1]),
                                 np.zeros(2), 230.0, voxel)  # fmt: skip
    metric = _Metric.at(points, values, grid, _detail(grid), np.eye(4))
    pose = _best_height(metric, np.eye(4))
    stack = (grid.origin_um[0], -grid.origin_um[0])
    (low, high), defects = _height_support(metric, pose, 200.0, stack)
    # the mirror ambiguity: the height is the defects' centre (within a quarter voxel), over
    # half a voxel from the slice, so the interval must reach past the defects' own heights
    assert pose[0, 3] == pytest.approx(-below, abs=0.25 * voxel + 2.0)
    assert defects >= 1.5 and low <= 0.0 <= high


def test_a_volume_that_ends_before_the_slice_is_refused(twin: Twin) -> None:
    """A stack cut below (or above) the mapped slice: the similarity still rises at its end
    and the best height lies beyond it. It gave a height inside the stack, 50-80 um off,
    with exit 0."""
    volume, truth = placed_xray(twin, 1, n_slices=12)  # the slice at index 5.5 of 12
    z = truth[0, 3] / VOXEL_UM + (volume.shape[0] - 1) / 2  # the slice's index in the stack
    below, above = volume[: int(z) - 1], volume[int(np.ceil(z)) + 2 :]
    for part in (below, above):
        assert part.shape[0] >= 4  # the slice lies 1.5+ voxels beyond the part's end
        with pytest.raises(ValueError, match=r"highest at the (top|bottom).*beyond it"):
            locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, part, VOXEL_UM)
    # three slices 50 um below the slice peaked in their middle: too few to tell
    with pytest.raises(ValueError, match=r"3 slice.*too few"):
        locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, volume[:3], VOXEL_UM)


def test_bad_maps_and_volumes_are_refused(twin: Twin) -> None:
    volume, _ = placed_xray(twin, 0)
    image = twin.mu_xray_per_um
    with pytest.raises(ValueError, match=r"all NaN.*--map"):
        locate_slice(np.full_like(image, np.nan), twin.pixel_size_um, volume, VOXEL_UM)
    # the map's pixels said twice as large: the cells differ in size, no overlap
    with pytest.raises(ValueError, match=r"do not overlap.*--xct-voxel-um"):
        locate_slice(image, 2 * twin.pixel_size_um, volume, VOXEL_UM)
    with pytest.raises(ValueError, match="no cell found in the X-ray volume"):
        locate_slice(image, twin.pixel_size_um, np.zeros_like(volume), VOXEL_UM)
    # a voxel larger than the whole map (--xct-voxel-um 20000): scikit-image's "Too many
    # bins for data range", naming nothing
    with pytest.raises(ValueError, match=r"voxel \(20000 um\) is larger than the whole map"):
        locate_slice(image, twin.pixel_size_um, volume, 20000.0)
    # a map (or a volume) with one axis flipped: placed 57-72 deg off at correlation 0.72,
    # exit 0; the roll is chiral, its mirror matches worse (0.66 against 0.88 in polar)
    with pytest.raises(ValueError, match=r"better mirrored.*flip the map's x axis"):
        locate_slice(image[:, ::-1], twin.pixel_size_um, volume, VOXEL_UM)
    with pytest.raises(ValueError, match=r"better mirrored"):
        locate_slice(image, twin.pixel_size_um, volume[:, :, ::-1], VOXEL_UM)
    # inverted (bright air): it was refused as a cell of another size, "check the voxel size"
    with pytest.raises(ValueError, match=r"X-ray volume is brighter in the air.*inverted"):
        locate_slice(image, twin.pixel_size_um, volume.max() - volume, VOXEL_UM)
    # the housing ring alone: centre and scale, but no angle to find
    with pytest.raises(ValueError, match=r"no angular structure.*--map attenuation"):
        locate_slice(twin.raster.fractions["casing"], twin.pixel_size_um, volume, VOXEL_UM)


@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_a_map_pixel_a_few_percent_off_is_refused(twin: Twin, factor: float) -> None:
    """The map's pixel given 5 % too small or too large (under the cell-size check's 15 %):
    it was placed 21-26 deg and 20-30 um off at similarity 0.44-0.53 (over the 0.3 floor),
    exit 0; at the scale it implies it places at 0.90-0.91. The scale is found within 0.001
    at the right sizes and at these (tiny twins: 0.9998-1.0005 at the right sizes); 0.005
    leaves room for the parabola through the 1 % steps."""
    volume, _ = placed_xray(twin, 0)
    with pytest.raises(ValueError, match=r"best scaled by .*--xct-voxel-um") as refused:
        locate_slice(twin.mu_xray_per_um, factor * twin.pixel_size_um, volume, VOXEL_UM)
    scale = float(re.search(r"best scaled by ([0-9.]+)", str(refused.value)).group(1))
    assert scale == pytest.approx(factor, abs=0.005)


@pytest.mark.parametrize("factor", [0.99, 1.01])
def test_a_map_pixel_one_percent_off_is_refused(twin: Twin, factor: float) -> None:
    """The map's pixel given 1 % too small or too large: the scale found (0.990, 1.012) lay
    within the 1 % placed without a second look, or its second placement matched no better
    than the similarity's ripple (0.01), and the slice was placed 0.56 and 0.67 deg off (the
    bar: 0.5; at the right size 0.20), exit 0. A spiral's rotation rests on its scale. Now
    the second look starts at 0.8 % (attenuation maps at the right sizes: within 0.1 %; the
    summed WAXS 0.65 %), and the map placed at the scale it implies lies over 0.5 deg from
    the placement at the sizes given: refused with the sizes the pair implies."""
    volume, _ = placed_xray(twin, 1)
    with pytest.raises(ValueError, match=r"best scaled by .*deg and .*--xct-voxel-um"):
        locate_slice(twin.mu_xray_per_um, factor * twin.pixel_size_um, volume, VOXEL_UM)


def _real_slice_on_its_stack(
    image: np.ndarray, map_image: np.ndarray, block: int = 3
) -> tuple[np.ndarray, np.ndarray, float]:
    """A real CT slice as a map (``map_image``, ``block``-averaged) and a 5-plane stack of
    ``image`` whose planes blur away from the middle one (the slice), noise 2 %."""
    rng = np.random.default_rng(0)
    plane = block_mean(image, block)
    volume = np.stack([
        ndimage.gaussian_filter(plane, 0.6 * abs(k - 2))
        + rng.normal(0, 0.02 * plane.std(), plane.shape)
        for k in range(5)
    ]).astype(np.float32)  # fmt: skip
    return block_mean(map_image, block).astype(np.float32), volume, 20.0 * block


def test_a_holder_round_a_real_cell_is_refused_and_air_round_its_casing_placed(
    shared_real: Path,
) -> None:
    """A real X-ray CT slice of an 18650 cell (a holder fills the field round its casing)
    placed on its own stack, the map's field a circle inside the holder: the outlines found
    (the map's field, the volume's holder) are not the cell's, their centres 144 um apart,
    and it was placed 15-23 deg and 110-155 um off with a rotation error of 0.15-0.35 deg,
    exit 0. Refused; with the holder set to air round the casing, as the message says, the
    map turned by 37 deg is placed within the issue's bars (measured: 0.16 deg, 1.0 um)."""
    image = tifffile.imread(shared_real / "cell18650_slice.tif").astype(np.float32)
    y, x = np.indices(image.shape) - (np.asarray(image.shape)[:, None, None] - 1) / 2
    field = np.where(np.hypot(y, x) < 275, image, np.nan)
    map_image, volume, pixel = _real_slice_on_its_stack(image, field)
    with pytest.raises(ValueError, match=r"not the cell's outline .* to the value of air"):
        locate_slice(map_image, pixel, volume, pixel)
    casing = image >= 65000  # saturated steel
    yc, xc = (np.indices(image.shape)[:, casing]).mean(axis=1)
    radius = np.hypot(*(np.indices(image.shape) - np.array([yc, xc])[:, None, None]))
    image = np.where(radius > np.percentile(radius[casing], 99.5) + 4, 0.0, image)
    turned = ndimage.rotate(image, 37.0, reshape=False, order=1, mode="constant", cval=0.0)
    map_image, volume, pixel = _real_slice_on_its_stack(image, turned)
    found = locate_slice(map_image, pixel, volume, pixel)
    height, rotation, shift = placement_errors(
        found.map_to_xct, rigid_matrix((37.0, 0, 0), (0, 0, 0))
    )
    assert rotation <= 0.5 and shift <= pixel and height <= 0.5 * pixel


def test_a_cell_cut_off_on_one_side_is_refused(twin: Twin) -> None:
    """A field of view that cuts the cell off on one side misleads the polar search: the
    X-ray volume's first 12 rows and columns left out (2.7 % of the cell cut off) placed
    the slice 3.7 deg and 53 um off at similarity 0.74; the map's first 16 (3.9 %) had the
    right map refused as mirrored, and the map mirrored as told placed 60 deg off at 0.52,
    both exit 0. The shift of what is left is 0.022-0.024 radii (the limit: 0.018)."""
    volume, _ = placed_xray(twin, 0)
    image, pixel = twin.mu_xray_per_um, twin.pixel_size_um
    with pytest.raises(ValueError, match=r"outside the X-ray volume's field of view.*on one side"):
        locate_slice(image, pixel, volume[:, 12:, 12:], VOXEL_UM)
    volume, _ = placed_xray(twin, 1)
    centre = (16 / 2) * pixel  # the centre of the map's last 88 of 104 pixels, y and x
    for cut, centre_um in ((image[16:, 16:], (centre, centre)), (image[16:, 16:][:, ::-1],
                                                                 (centre, -centre))):  # fmt: skip
        with pytest.raises(ValueError, match=r"outside the map's field of view.*on one side"):
            locate_slice(cut, pixel, volume, VOXEL_UM, centre_um=centre_um)


def test_a_cell_cut_off_on_every_side_alike_or_with_holes_is_placed(twin: Twin) -> None:
    """The map's outer 8 pixels NaN (3.3 % of the cell cut off, all round: what is left is
    centred 0.015 radii off) is placed as the whole map is (seed 0: 0.11 deg, 1.6 um; 0.14
    deg, 1.1 um whole); so is a map with a NaN hole off the cell's centre (6 % of the cell,
    masked pixels inside the field of view, not a cut: 0.22 deg, 1.6 um)."""
    volume, truth = placed_xray(twin, 0)
    border = twin.mu_xray_per_um.copy()
    border[:8], border[-8:], border[:, :8], border[:, -8:] = np.nan, np.nan, np.nan, np.nan
    holed = twin.mu_xray_per_um.copy()
    y, x = np.indices(holed.shape)
    holed[np.hypot(y - 30, x - 70) < 12] = np.nan
    for image in (border, holed):
        found = locate_slice(image, twin.pixel_size_um, volume, VOXEL_UM)
        _, rotation, shift = placement_errors(found.map_to_xct, truth)
        assert rotation <= 0.5 and shift <= VOXEL_UM


def _holed_tiff(tmp_path: Path, volume: np.ndarray, rows: slice, planes: slice) -> Path:
    """``volume`` with NaN (not measured) on ``rows`` of ``planes``, as a TIFF."""
    holed = volume.copy()
    holed[planes, rows] = np.nan
    return write_tiff_stack(tmp_path / "holed.tif", holed, VOXEL_UM)


@pytest.mark.parametrize(
    ("seed", "rows", "planes"),
    [(2, slice(50, 54), slice(None)), (1, slice(None), slice(0, 2)),
     (1, slice(None), slice(-2, None))],
    ids=["band of rows", "bottom planes", "top planes"],
)  # fmt: skip
def test_voxels_not_measured_are_left_out_of_the_placement(
    twin: Twin, tmp_path: Path, seed: int, rows: slice, planes: slice
) -> None:
    """NaN voxels of the X-ray volume (not measured: a detector gap, end planes left
    unreconstructed) read through the CLI's reader (a TIFF, :func:`open_volume`), which
    gave them 0, black material: 4 NaN rows through the cell placed the slice of
    placement 2 1.54 deg off (0.08 intact), the 2 bottom or top planes of placement 1
    +13.9 and -16.7 um off (-2.9 intact), exit 0. Now they are left out of every
    similarity, and NaN end planes end the stack as a cut does: 0.07 deg; -5.7 and -2.8 um
    (the stack cut there: the same). The bars are the issue's (test_ten_random_...)."""
    volume, truth = placed_xray(twin, seed)
    with open_volume(_holed_tiff(tmp_path, volume, rows, planes)) as source:
        found = locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, source, VOXEL_UM)
    height, rotation, shift = placement_errors(found.map_to_xct, truth)
    assert height <= 0.5 * VOXEL_UM and rotation <= 0.5 and shift <= twin.pixel_size_um


def test_nan_end_planes_over_the_slice_are_refused_as_a_cut_stack(
    twin: Twin, tmp_path: Path
) -> None:
    """Placement 3's slice lies 1.6 planes above the stack's bottom: its 2 bottom planes
    NaN, read as 0, placed it 45.1 um high at similarity 0.90, exit 0 (read as NaN but
    kept in the stack, 50 um and 4.3 deg off). The measured planes are a stack cut below
    the slice: refused as one, saying which planes were measured."""
    volume, _ = placed_xray(twin, 3)
    path = _holed_tiff(tmp_path, volume, slice(None), slice(0, 2))
    with (
        open_volume(path) as source,
        pytest.raises(ValueError, match=r"highest at the bottom.*measured planes 2-7 of .* 8"),
    ):
        locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, source, VOXEL_UM)


@pytest.mark.parametrize(("value", "ends"), [(np.nan, 0), (0.0, 1)], ids=["NaN", "blank"])
def test_a_plane_not_measured_inside_the_stack_is_refused(
    twin: Twin, tmp_path: Path, value: float, ends: int
) -> None:
    """One plane inside the stack not measured, at the slice (placement 1: 3.50): NaN, its
    levels held no similarity and the slice was placed 56.4 um and 5.5 deg off (intact: 2.9
    um, 0.20 deg); 0 (a lost detector frame, blank), read as data, 27.6 um off, exit 0 both;
    NaN at placement 4's slice in a 16-plane stack whose coarse copy is 2x (the gap met in
    the fine slab), 60.8 um off. Now refused before any search, naming the file and the
    plane (of the whole stack, where its NaN end planes were cut: the blank case has them)."""
    volume, _ = placed_xray(twin, 1)
    volume[3] = value
    if ends:  # NaN end planes: the stack is cut to planes 1-6 before the search
        volume[:ends] = volume[-ends:] = np.nan
    path = write_tiff_stack(tmp_path / "gap.tif", volume, VOXEL_UM)
    with (
        open_volume(path) as source,
        pytest.raises(ValueError, match=r"gap\.tif is not measured .* in plane 3, inside"),
    ):
        locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, source, VOXEL_UM)


def test_nan_at_the_fields_edge_is_refused_as_a_cell_cut_off(twin: Twin, tmp_path: Path) -> None:
    """The X-ray volume's first 16 rows and columns NaN (not measured: 6.4 % of the cell
    cut off, on one side), read as 0, placed the slice 31.4 um high and 0.82 deg off at
    similarity 0.73, exit 0. The field of view is the measured voxels' now: refused as the
    stack cut there is (``test_a_cell_cut_off_on_one_side_is_refused``)."""
    volume, _ = placed_xray(twin, 0)
    volume[:, :, :16] = np.nan
    path = _holed_tiff(tmp_path, volume, slice(0, 16), slice(None))
    with (
        open_volume(path) as source,
        pytest.raises(ValueError, match=r"outside the X-ray volume's field of view.*one side"),
    ):
        locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, source, VOXEL_UM)


def test_a_volume_measured_too_little_is_refused_naming_the_file(
    twin: Twin, tmp_path: Path
) -> None:
    """16 NaN rows through the cell (78 % of the map's cell measured on the plane; 24 rows:
    71 % of the stack's inscribed cylinder at best) were placed, read as black material,
    exit 0; read as not measured, 12 rows (83 %) already placed placement 2 25 um and 1.2
    deg off (both flagged). Refused under the registration's 80 %, naming the file and
    the share; so is a volume NaN everywhere (it was "no cell found")."""
    volume, _ = placed_xray(twin, 0)
    for rows, share in ((slice(44, 60), "78% of the map's cell"), (slice(40, 64), "71%")):
        path = _holed_tiff(tmp_path, volume, rows, slice(None))
        with (
            open_volume(path) as source,
            pytest.raises(ValueError, match=rf"holed\.tif is measured .* over {share}"),
        ):
            locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, source, VOXEL_UM)
    path = _holed_tiff(tmp_path, volume, slice(None), slice(None))
    with open_volume(path) as source, pytest.raises(ValueError, match=r"holed\.tif is not meas"):
        locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, source, VOXEL_UM)


FUSED_WINDOW = (-0.0001, 0.001)
"""X-ray attenuation (1/um) window of the test's fused volume: the twin's whole range
(-0.00007 to 0.00097), so that no clipping breaks the linearity."""


@pytest.fixture(scope="module")
def located(tiny_twin_files: Path, tmp_path_factory) -> tuple[Path, Path, int]:
    """The twin's files: a run file holding its attenuation map, an NXCT file holding the
    true nct_to_xct, and `jellyroll locate` run on them with the neutron volume."""
    out = tmp_path_factory.mktemp("locate")
    with h5py.File(tiny_twin_files / "truth.h5", "r") as f:
        group = f["/entry/maps/attenuation"]
        maps = MapSet({"attenuation": Map(group["data"][()], "1/um")}, group["x_um"][()],
                      group["y_um"][()])  # fmt: skip
        nct_to_xct = f["/entry/nxct/nct_to_xct"][()]
        labels = f["/entry/nxct/labels"]
        label_names = {int(k): v for k, v in json.loads(labels.attrs["names"]).items()}
        labels, voxel_um = labels[()], float(labels.attrs["voxel_um"])
    with h5py.File(out / "RUN.h5", "w") as f:
        write_maps_group(f.create_group("entry"), maps)
    xray = tifffile.imread(tiny_twin_files / "xct.tif").astype(np.float32)
    with h5py.File(out / "NXCT.h5", "w") as f:
        entry = f.create_group("entry")
        write_registration_group(entry, nct_to_xct, metric="truth", metric_value=0.0, seconds=0.0)
        # the fused volume on the X-ray grid: red the X-ray window, green = blue 0 (a channel
        # mixed up shows), and the true labels
        fused, written = create_volume_datasets(
            entry, xray.shape, voxel_um, grid="xct", label_names=label_names,
            windows={"xray": FUSED_WINDOW, "neutron": [0.0, 1.0]},
        )  # fmt: skip
        fused[...] = fuse_rgb(xray, np.zeros_like(xray), FUSED_WINDOW, (0.0, 1.0))
        written[...] = labels
    output = out / "LOCATION.h5"
    result = CliRunner().invoke(
        app,
        ["locate", str(out / "RUN.h5"), str(tiny_twin_files / "xct.tif"), "-o", str(output),
         "--nct", str(tiny_twin_files / "nct.tif"), "--nxct", str(out / "NXCT.h5")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: the height is uncertain" in " ".join(result.output.split())
    return output, tiny_twin_files, maps["attenuation"].shape[0]


def test_locate_cli_writes_the_contract(located: tuple[Path, Path, int]) -> None:
    output, twin_files, n = located
    with h5py.File(twin_files / "truth.h5", "r") as f:
        truth = f["/entry/nxct/map_to_xct"][()]
    found = read_location(output)
    height, rotation, shift = placement_errors(found.map_to_xct, truth)
    # the contract on the written twin (its X-ray volume block-averaged from 10 um voxels):
    # placed within one voxel and one degree (measured 9.4 um, 0.09 deg, 0.6 um); the issue's
    # bars are checked on ten placements above
    assert height <= VOXEL_UM and rotation <= 1.0 and shift <= VOXEL_UM
    assert found.xct_voxel_um == VOXEL_UM  # the scale of map_to_xct, read again by the link
    with h5py.File(output, "r") as f:
        location = f["/entry/location"]
        np.testing.assert_array_equal(location["swaxs_to_xct"][()], location["map_to_xct"][()])
        assert location["map_to_xct"].dtype == np.float64
        # the volume it lies in, which `jellyroll link` checks the one it is given against
        xray, _ = read_volume(twin_files / "xct.tif")
        assert tuple(location.attrs["xct_shape"]) == xray.shape
        assert location.attrs["xct_digest"] == planes_digest(xray)
        score = location["score"]
        assert score["data"].shape == score["height_um"].shape and score["data"].size >= 8
        assert score.attrs["optimum"] == pytest.approx(found.similarity)
        # one large agglomerate holds the height (measured 1.14 effective defects): the
        # interval (measured 27 um below to 13 um above the truth) covers it, and is flagged
        low, high = location["height_interval_um"][()]
        assert low <= truth[0, 3] <= high and location["height_defects"][()] < 1.5
        assert location["height_uncertainty_um"][()] > 0.5 * VOXEL_UM
        assert "rests on one defect" in location.attrs["height_warning"]
        # the rotation: the whole cell alone agrees with the defects (within 1 deg, a pixel)
        assert (
            location.attrs["in_plane_rotation_deg"] < 1.0
            and location.attrs["in_plane_warning"] == ""
        )
        xct_on_map, nct_on_map = location["xct_on_map/data"][()], location["nct_on_map/data"][()]
        assert xct_on_map.shape == nct_on_map.shape == (5, n, n)
        np.testing.assert_array_equal(location["xct_on_map/offset_um"][()], [-20, -10, 0, 10, 20])
        record = json.loads(f["/entry/provenance/locate"][()])
        assert record["configuration"]["map"] == "attenuation"
        uncertainty = location.attrs["rotation_uncertainty_deg"]
        assert uncertainty == record["configuration"]["rotation_uncertainty_deg"]
        assert uncertainty <= MAX_ROTATION_UNCERTAINTY_DEG
        assert set(record["inputs"]) >= {str(twin_files / "xct.tif")}
        attenuation = f["/entry/location"].attrs["map"]
    assert attenuation == "attenuation"
    # the resampled volumes are the cell at the map's pixels: both modalities rank-correlate
    # with the map inside the cell (measured 0.9 and 0.8)
    maps_truth = h5py.File(twin_files / "truth.h5", "r")["/entry/maps/attenuation/data"][()]
    inside = np.isfinite(xct_on_map[2]) & np.isfinite(nct_on_map[2])

    def rank_correlation(values: np.ndarray) -> float:
        ranks = [np.argsort(np.argsort(v)) for v in (values[inside], maps_truth[inside])]
        return float(np.corrcoef(*ranks)[0, 1])

    assert rank_correlation(xct_on_map[2]) > 0.8 and rank_correlation(nct_on_map[2]) > 0.6


def test_locate_cli_puts_the_fused_rgb_and_labels_on_the_map(
    located: tuple[Path, Path, int],
) -> None:
    output, twin_files, n = located
    with h5py.File(output, "r") as f:
        location = f["/entry/location"]
        rgb, labels = location["fused_on_map"][()], location["labels_on_map"][()]
        names = json.loads(location["labels_on_map"].attrs["names"])
        xray_plane = location["xct_on_map/data"][2]
    with h5py.File(twin_files / "truth.h5", "r") as f:
        true_labels = f["/entry/nxct/labels"]
        true_names, voxel_um = json.loads(true_labels.attrs["names"]), true_labels.attrs["voxel_um"]
        true_labels = true_labels[()]
        truth = f["/entry/nxct/map_to_xct"][()]
        y_um, x_um = (f[f"/entry/maps/attenuation/{axis}"][()] for axis in ("y_um", "x_um"))
    assert rgb.shape == (n, n, 3) and rgb.dtype == np.uint8 and labels.dtype == np.uint8
    assert labels.shape == (n, n) and names == true_names
    # red: the X-ray window of the same plane, both linear interpolations of the same voxels,
    # so equal but for the two roundings to uint8 (<= 1 level each)
    inside = np.isfinite(xray_plane)
    expected = np.clip((xray_plane - FUSED_WINDOW[0]) / np.ptp(FUSED_WINDOW) * 255, 0, 255)
    assert np.abs(rgb[..., 0][inside] - expected[inside]).max() <= 2.0
    assert not rgb[..., 1:].any()
    # labels: the true labels looked up (nearest) at the true placement agree but where the
    # found one differs by its errors (< a voxel): on the boundaries of the thin layers
    # (measured 0.99; a map a voxel off in-plane or turned a degree agrees far less)
    yy, xx = np.meshgrid(y_um, x_um, indexing="ij")
    points = np.stack([np.zeros(yy.size), yy.ravel(), xx.ravel(), np.ones(yy.size)])
    index = (truth @ points)[:3] / voxel_um + ((np.array(true_labels.shape) - 1) / 2)[:, None]
    expected = ndimage.map_coordinates(true_labels, index, order=0, mode="nearest")
    agree = float(np.mean(labels.ravel()[inside.ravel()] == expected[inside.ravel()]))
    assert agree > 0.95, agree


def test_nxct_volumes_on_the_neutron_grid_reach_the_map_through_the_registration(
    tmp_path: Path,
) -> None:
    """An NXCT file on the neutron grid: red a linear ramp of the X-ray frame's y, labels the
    side of its x = 0 plane. On the map both read back where the map's pixels lie in the
    X-ray frame; the volumes taken as on the X-ray grid would be off by the registration's
    10 deg and 9 um (several grey levels)."""
    nct_to_xct = rigid_matrix((10.0, 0.0, 0.0), (2.0, 7.0, -5.0))
    map_to_xct = rigid_matrix((30.0, 0.0, 0.0), (5.0, 3.0, -4.0))
    shape, voxel_um = (6, 40, 40), 10.0
    axes = np.meshgrid(*(pixel_centres_um(n, voxel_um) for n in shape), indexing="ij")
    in_xct = np.einsum("ij,j...->i...", nct_to_xct[:3, :3], np.stack(axes))
    in_xct += nct_to_xct[:3, 3, None, None, None]
    with h5py.File(tmp_path / "NXCT.h5", "w") as f:
        entry = f.create_group("entry")
        write_registration_group(entry, nct_to_xct, metric="test", metric_value=0, seconds=0)
        fused, labels = create_volume_datasets(
            entry, shape, voxel_um, grid="nct", label_names={0: "void", 1: "a", 2: "b"},
            windows={},
        )  # fmt: skip
        fused[...] = np.stack(
            [np.rint(128 + 0.5 * in_xct[1]), np.full(shape, 200), np.full(shape, 50)], axis=-1
        ).astype(np.uint8)
        labels[...] = 1 + (in_xct[2] > 0)
    y_um = x_um = pixel_centres_um(20, 10.0)
    rgb, on_map, names = nxct_on_map(tmp_path / "NXCT.h5", map_to_xct, y_um, x_um)
    yy, xx = np.meshgrid(y_um, x_um, indexing="ij")
    where = np.einsum("ij,jkl->ikl", map_to_xct[:3], np.stack([0 * yy, yy, xx, 1 + 0 * yy]))
    # a linear ramp interpolates exactly: only the two roundings to uint8 (<= 1 level)
    assert np.abs(rgb[..., 0] - (128 + 0.5 * where[1])).max() <= 1.0
    assert (rgb[..., 1] == 200).all() and (rgb[..., 2] == 50).all()
    away = np.abs(where[2]) > voxel_um  # nearest neighbour: exact a voxel off the boundary
    np.testing.assert_array_equal(on_map[away], (1 + (where[2] > 0))[away])
    assert names == {0: "void", 1: "a", 2: "b"}


def test_locate_cli_names_what_to_give(located: tuple[Path, Path, int], tmp_path: Path) -> None:
    output, twin_files, _ = located
    bare = tmp_path / "bare.tif"
    tifffile.imwrite(bare, np.zeros((4, 8, 8), np.float32), photometric="minisblack")
    run = output.parent / "RUN.h5"
    result = CliRunner().invoke(app, ["locate", str(run), str(bare), "-o", str(tmp_path / "o.h5")])
    assert result.exit_code == 1
    assert "voxel size is not recorded" in result.output and "--xct-voxel-um" in result.output
    result = CliRunner().invoke(
        app, ["locate", str(run), str(twin_files / "xct.tif"), "--map", "housing",
              "-o", str(tmp_path / "o.h5")],
    )  # fmt: skip
    assert result.exit_code == 1 and "/entry/maps/housing is missing" in result.output
    assert not (tmp_path / "o.h5").exists()
    # a height the data do not fix to half a voxel: refused on demand, nothing written
    result = CliRunner().invoke(
        app, ["locate", str(run), str(twin_files / "xct.tif"), "--strict-height",
              "-o", str(tmp_path / "o.h5")],
    )  # fmt: skip
    assert result.exit_code == 1 and "the height is uncertain by" in result.output
    assert not (tmp_path / "o.h5").exists()


def test_volumes_given_the_wrong_way_round_are_refused(
    located: tuple[Path, Path, int], tmp_path: Path
) -> None:
    """`locate RUN NCT --nct XCT` placed the slice in the neutron volume and exited 0 (on
    the tiny twin 68 um and 17 deg away from the placement in the X-ray volume); nxct
    refused such a pair, locate did not look."""
    output, twin_files, _ = located
    with h5py.File(twin_files / "truth.h5", "r") as f:
        xct_to_nct = np.linalg.inv(f["/entry/nxct/nct_to_xct"][()])
    swapped = tmp_path / "SWAPPED_NXCT.h5"  # the right registration of the swapped pair
    with h5py.File(swapped, "w") as f:
        entry = f.create_group("entry")
        write_registration_group(entry, xct_to_nct, metric="truth", metric_value=0.0, seconds=0.0)
    args = ["locate", str(output.parent / "RUN.h5"), str(twin_files / "nct.tif"),
            "--nct", str(twin_files / "xct.tif"), "--nxct", str(swapped)]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "o.h5")])
    assert result.exit_code == 1, result.output
    assert "Are the volumes swapped?" in " ".join(result.output.split())
    assert not (tmp_path / "o.h5").exists()


def test_a_neutron_volume_given_alone_as_the_x_ray_one_is_refused(
    located: tuple[Path, Path, int], tmp_path: Path
) -> None:
    """`locate RUN NCT` (the neutron volume given as the X-ray one, no --nct) placed the
    slice in it and wrote the location, exit 0: with one volume the pair check has nothing
    to compare. The slice's own attenuation map is X-ray contrast: the neutron volume's
    bright class holds 69 % of the cell at the slice against the map's 20 % (the X-ray
    volume's 21 % against 25 %: 0.8 times, refused from 1.5). Skipped on demand."""
    output, twin_files, _ = located
    run, nct = output.parent / "RUN.h5", twin_files / "nct.tif"
    result = CliRunner().invoke(app, ["locate", str(run), str(nct), "-o", str(tmp_path / "o.h5")])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "Is it the neutron volume?" in text and "nct.tif" in text
    assert not (tmp_path / "o.h5").exists()
    skipped = CliRunner().invoke(
        app, ["locate", str(run), str(nct), "--no-order-check", "-o", str(tmp_path / "o.h5")]
    )
    assert skipped.exit_code == 0, skipped.output


def test_locate_reads_the_volumes_at_the_sizes_the_nxct_file_used(
    located: tuple[Path, Path, int], tmp_path: Path
) -> None:
    """`locate --nct NCT --nxct NXCT` read the neutron volume at its header's size, while
    the NXCT file's nct_to_xct was registered at the size given to `jellyroll nxct` over
    that header: with a header 1.5 times the size, the neutron plane on the map correlated
    0.15 with the right one, exit 0. It now reads the sizes the NXCT file records (the same
    planes as the fixture's, which read a right header); a size given against it is refused."""
    output, twin_files, _ = located
    neutron, nct_um = read_volume(twin_files / "nct.tif")
    write_tiff_stack(tmp_path / "nct.tif", neutron, 1.5 * nct_um)
    shutil.copy(output.parent / "NXCT.h5", tmp_path / "NXCT.h5")
    with h5py.File(tmp_path / "NXCT.h5", "a") as f:
        f["/entry/registration"].attrs.update({"xct_voxel_um": VOXEL_UM, "nct_voxel_um": nct_um})
    given = {"nct": tmp_path / "nct.tif", "nxct": tmp_path / "NXCT.h5"}
    run, xct = output.parent / "RUN.h5", twin_files / "xct.tif"
    run_locate(run, xct, tmp_path / "LOCATION.h5", **given)
    with h5py.File(output, "r") as f, h5py.File(tmp_path / "LOCATION.h5", "r") as g:
        # the same inputs at the same sizes: the same computation, to rounding
        for name in ("xct_on_map", "nct_on_map"):
            np.testing.assert_allclose(
                g[f"/entry/location/{name}/data"][()], f[f"/entry/location/{name}/data"][()],
                atol=1e-6, equal_nan=True,
            )  # fmt: skip
    with pytest.raises(ValueError, match="registered the volumes with"):
        run_locate(run, xct, tmp_path / "o.h5", LocateOptions(nct_voxel_um=1.5 * nct_um), **given)
    assert not (tmp_path / "o.h5").exists()


def test_volumes_other_than_the_nxct_files_are_refused(
    located: tuple[Path, Path, int], tmp_path: Path
) -> None:
    """`locate --nxct` with the X-ray volume given two empty slices below (another crop or
    export of it): the map was placed in that volume, but the fused RGB, labels and neutron
    plane were read in the NXCT file's frame, a slice (20 um) off, exit 0 (the red channel
    up to 37 grey levels off the X-ray plane at the slice; 4 with the volume it was made
    with). The shapes are checked: the fused grid's for an older file, the recorded ones;
    and the values of the first, middle and last planes."""
    output, twin_files, _ = located
    run, nxct = output.parent / "RUN.h5", output.parent / "NXCT.h5"
    xray, xct_um = read_volume(twin_files / "xct.tif")
    padded = np.concatenate([np.zeros((2, *xray.shape[1:]), np.float32), xray])
    write_tiff_stack(tmp_path / "xct.tif", padded, xct_um)
    with pytest.raises(
        ValueError, match=r"X-ray volume given is \(10, 104, 104\).*\(8, 104, 104\)"
    ):
        run_locate(run, tmp_path / "xct.tif", tmp_path / "o.h5", nxct=nxct)
    neutron, nct_um = read_volume(twin_files / "nct.tif")
    write_tiff_stack(tmp_path / "nct.tif", neutron[1:], nct_um)
    shutil.copy(nxct, tmp_path / "NXCT.h5")
    with h5py.File(tmp_path / "NXCT.h5", "a") as f:  # as `jellyroll nxct` records them
        f["/entry/registration"].attrs.update({
            "xct_shape": xray.shape, "nct_shape": neutron.shape,
            "xct_digest": planes_digest(xray), "nct_digest": planes_digest(neutron),
        })  # fmt: skip
    with pytest.raises(ValueError, match=r"neutron volume given is \(15, 208, 208\)"):
        run_locate(run, twin_files / "xct.tif", tmp_path / "o.h5", nct=tmp_path / "nct.tif",
                   nxct=tmp_path / "NXCT.h5")  # fmt: skip
    # turned by 90 deg in its plane, its shape the same: resampled on the map turned (its
    # rank correlation with the X-ray plane 0.11 against 0.65), exit 0; the planes differ
    write_tiff_stack(tmp_path / "turned.tif", np.rot90(neutron, axes=(1, 2)), nct_um)
    with pytest.raises(ValueError, match=r"neutron volume given \(.*turned\.tif\) is not the one"):
        run_locate(run, twin_files / "xct.tif", tmp_path / "o.h5", nct=tmp_path / "turned.tif",
                   nxct=tmp_path / "NXCT.h5")  # fmt: skip
    assert not (tmp_path / "o.h5").exists()


@settings(max_examples=50, deadline=None)
@given(
    rotation=st.floats(-179.0, 179.0),
    tilt=st.floats(0.0, 10.0),
    azimuth=st.floats(-179.0, 179.0),
    shift=st.tuples(*[st.floats(-1e4, 1e4)] * 3),
)
def test_pose_parameters_read_back_a_placement(rotation, tilt, azimuth, shift) -> None:
    """A slice rotated about z, then tilted about a horizontal axis, then shifted: the
    parameters read back are the ones it was built from."""
    horizontal = (0.0, np.sin(np.radians(azimuth + 90)), np.cos(np.radians(azimuth + 90)))
    matrix = np.eye(4)
    matrix[:3, :3] = axis_angle_matrix(horizontal, tilt) @ rotation_matrix((rotation, 0, 0))
    matrix[:3, 3] = shift
    found = pose_parameters(matrix)
    assert [found["height_um"], found["shift_y_um"], found["shift_x_um"]] == list(shift)
    assert found["tilt_deg"] == pytest.approx(tilt, abs=1e-6)
    if tilt > 1e-3:
        difference = (found["tilt_azimuth_deg"] - azimuth + 180) % 360 - 180
        assert difference == pytest.approx(0.0, abs=1e-4)
    if tilt < 1e-6:
        assert found["rotation_deg"] == pytest.approx(rotation, abs=1e-6)


def test_without_a_diode_the_housing_ring_then_the_summed_scattering(
    twin: Twin, tmp_path: Path
) -> None:
    """A run file with the housing ring (the casing) and a reconstruction but no attenuation:
    the ring gives no angle, so auto goes on to the summed scattering, which places it."""
    volume, truth = placed_xray(twin, 4)
    write_tiff_stack(tmp_path / "xct.tif", volume, VOXEL_UM)
    y_um, x_um = twin.raster.axes_um()
    with h5py.File(tmp_path / "RUN.h5", "w") as f:
        entry = f.create_group("entry")
        ring = Map(twin.raster.fractions["casing"], "arb. units")
        write_maps_group(entry, MapSet({"housing": ring}, x_um, y_um))
        channels = np.stack([twin.mu_xray_per_um, 2 * twin.mu_xray_per_um], axis=-1)
        recon = entry.create_group("reconstruction")
        recon["data"], recon["y_um"], recon["x_um"] = channels, y_um, x_um
    found = run_locate(tmp_path / "RUN.h5", tmp_path / "xct.tif", tmp_path / "LOCATION.h5")
    assert found.map_name.startswith("summed")
    height, rotation, shift = placement_errors(found.map_to_xct, truth)
    assert height <= 0.5 * VOXEL_UM and rotation <= 0.5 and shift <= VOXEL_UM  # seed 4 alone
    with pytest.raises(NoAngleError):
        run_locate(tmp_path / "RUN.h5", tmp_path / "xct.tif", tmp_path / "o.h5",
                   LocateOptions(map="housing"))  # fmt: skip


def test_a_summed_scattering_on_axes_stored_the_other_way_is_refused(
    twin: Twin, tmp_path: Path
) -> None:
    """`--map summed` read the reconstruction's y_um / x_um unchecked and placed the map as
    if they ascended: the same map stored with both axes descending was placed 179.95 deg
    off, exit 0 (the maps of /entry/maps are refused so; the reconstruction now is too),
    and so are axes in mm and pixels that are not square."""
    volume, _ = placed_xray(twin, 4)
    write_tiff_stack(tmp_path / "xct.tif", volume, VOXEL_UM)
    y_um, x_um = twin.raster.axes_um()
    channels = np.stack([twin.mu_xray_per_um, 2 * twin.mu_xray_per_um], axis=-1)
    for why, data, y, x, units in (
        ("ascending", channels[::-1, ::-1], y_um[::-1], x_um[::-1], "um"),
        ("not um", channels, y_um / 1000, x_um / 1000, "mm"),
        ("square pixels", channels, 1.1 * y_um, x_um, "um"),
    ):
        with h5py.File(tmp_path / "RUN.h5", "w") as f:
            recon = f.create_group("entry/reconstruction")
            recon["data"], recon["y_um"], recon["x_um"] = data, y, x
            for name in ("y_um", "x_um"):
                recon[name].attrs["units"] = units
        with pytest.raises(RunFileError, match=why):
            run_locate(tmp_path / "RUN.h5", tmp_path / "xct.tif", tmp_path / "o.h5",
                       LocateOptions(map="summed"))  # fmt: skip


def test_auto_never_passes_over_maps_it_refuses(twin: Twin, tmp_path: Path) -> None:
    """`--map auto` caught any refusal of the run's maps and went on to the summed
    scattering: maps whose axes were in mm were passed over, and the slice was placed
    from the summed scattering (62 um and 1.3 deg off on the small twin), exit 0."""
    volume, _ = placed_xray(twin, 4)
    write_tiff_stack(tmp_path / "xct.tif", volume, VOXEL_UM)
    y_um, x_um = twin.raster.axes_um()
    with h5py.File(tmp_path / "RUN.h5", "w") as f:
        entry = f.create_group("entry")
        write_maps_group(
            entry, MapSet({"attenuation": Map(twin.mu_xray_per_um, "1/um")}, x_um, y_um)
        )
        for name in ("x_um", "y_um"):
            entry[f"maps/attenuation/{name}"].attrs["units"] = "mm"
        channels = np.stack([twin.mu_xray_per_um, 2 * twin.mu_xray_per_um], axis=-1)
        recon = entry.create_group("reconstruction")
        recon["data"], recon["y_um"], recon["x_um"] = channels, y_um, x_um
    with pytest.raises(RunFileError, match=r"x_um is in 'mm'"):
        run_locate(tmp_path / "RUN.h5", tmp_path / "xct.tif", tmp_path / "o.h5")


def test_a_map_without_the_volumes_detail_is_refined_on_the_whole_cell(twin: Twin) -> None:
    """The in-plane refinement maximised the whole-cell correlation plus the one weighted by
    the volume's detail (its spread along z: the defects) for any map. For a map that does
    not show what the detail marks, that term is noise, and Powell followed it: the small
    twin's summed scattering (`--map summed`, detail-weighted correlation 0.07) was drawn from
    0.2 deg and 0.2 um off to 1.28 deg and 62 um off, exit 0. Here the tiny twin's map with
    the patch under the detail scrambled, refined from the true pose: before, 5.0 deg (the
    bound) and 14 um off, the whole-cell correlation falling from 0.86 to 0.82; now the term
    is left out under a detail-weighted correlation of 0.5 (0.04 here), and the pose stays
    within 0.3 deg and 4.2 um (bars: 1 deg, one 20 um pixel, as the issue's 0.5 deg bar is
    for a whole placement, not a refinement from a scrambled map)."""
    volume, truth = placed_xray(twin, 4)
    image = twin.mu_xray_per_um.astype(np.float32).copy()
    n = image.shape[0]
    rows, columns = np.mgrid[:n, :n]
    centre_px, radius_px = np.array([35, 52]), 14
    patch = np.hypot(rows - centre_px[0], columns - centre_px[1]) < radius_px
    image[patch] = np.random.default_rng(0).permutation(image[patch])
    pixel = twin.pixel_size_um
    map_grid = _Grid(image[None], pixel, -(np.array([1, n, n]) - 1) / 2 * pixel)
    grid = _Grid(volume.astype(np.float32), VOXEL_UM, -(np.array(volume.shape) - 1) / 2 * VOXEL_UM)
    # the volume's detail: under the patch (carried into the X-ray frame at the truth) alone
    at = truth @ np.array([0.0, *(map_grid.origin_um[1:] + centre_px * pixel), 1.0])
    y = grid.origin_um[1] + np.arange(volume.shape[1]) * VOXEL_UM
    x = grid.origin_um[2] + np.arange(volume.shape[2]) * VOXEL_UM
    detail = np.hypot(y[:, None] - at[1], x[None, :] - at[2]) < radius_px * pixel
    detail_grid = _Grid(detail[None].astype(np.float32), VOXEL_UM, grid.origin_um * [0, 1, 1])
    cell_yx = np.array([0.0, 0.0])  # the twin's cell on the map's centre, within a pixel
    points, values = _map_points(map_grid, cell_yx, 0.95 * n / 2 * pixel, pixel)
    metric = _Metric.at(points, values, grid, detail_grid, truth)
    assert metric.parts(truth)[1] < MIN_DETAIL_CORRELATION
    pose = _refine(metric, truth, np.array([0.0, *cell_yx]), pixel, 0.0, free="ryx")
    _, rotation, shift = placement_errors(pose, truth)
    assert rotation <= 1.0 and shift <= pixel


def test_a_rotation_the_map_and_its_defects_disagree_on_is_flagged(twin: Twin) -> None:
    """The tiny twin's attenuation map with the pixels around its agglomerates scrambled
    (a map that shows the defects otherwise than the volume) was placed 4.3 deg off at
    similarity 0.89, exit 0, with nothing said: a jelly roll turned by a degree looks the
    same, its rotation rests on the defects. The whole-cell correlation alone now moves that
    placement by 4.1 deg (over the 1 deg of MAX_IN_PLANE_DISAGREEMENT_DEG), recorded and
    warned; the map as it is moves by 0.34 deg, not flagged (ten placements of six tiny
    twins: over 1 deg on two, both off by more than the 0.5 deg bar)."""
    volume, truth = placed_xray(twin, 0)
    found = locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, volume, VOXEL_UM)
    assert found.in_plane_rotation_deg < MAX_IN_PLANE_DISAGREEMENT_DEG
    assert in_plane_warning(found, twin.pixel_size_um) == ""
    y_um, x_um = twin.raster.axes_um()
    image = twin.mu_xray_per_um.astype(np.float32).copy()
    rng = np.random.default_rng(0)
    for _, agglomerate in twin.agglomerates.iterrows():
        near = np.hypot(y_um[:, None] - agglomerate.y_um, x_um[None, :] - agglomerate.x_um)
        near = near < 1.5 * agglomerate.nominal_diameter_um
        image[near] = rng.permutation(image[near])
    found = locate_slice(image, twin.pixel_size_um, volume, VOXEL_UM)
    _, rotation, _ = placement_errors(found.map_to_xct, truth)
    assert rotation > 1.0  # still placed wrong: flagged, not mended
    assert found.in_plane_rotation_deg > MAX_IN_PLANE_DISAGREEMENT_DEG
    assert "the rotation and shift are uncertain" in in_plane_warning(found, twin.pixel_size_um)


def test_a_rotation_the_summed_scattering_does_not_fix_is_flagged(twin: Twin) -> None:
    """The summed WAXS (`--map summed`, the map of a run without a diode) follows the X-ray
    plane loosely (its electrodes bright where the volume's current collectors are: whole-cell
    correlation 0.68, the attenuation map 0.99), and a jelly roll turned by a degree looks
    the same. Ten placements each of tiny twins 3 and 11 were placed up to 1.87 deg off, 14
    of 20 over the 0.5 deg bar, six of those (0.65-1.62 deg) with nothing said, exit 0: here
    (seed 3, placement 5) 1.62 deg off, the whole cell alone 0.73 deg away (under the 1 deg
    of MAX_IN_PLANE_DISAGREEMENT_DEG). The rotation's standard error from the whole-cell
    correlation's curvature, 1.53 deg here (1.16-2.75 on all 20; 0.19-0.42 for the
    attenuation maps of six tiny twins, none flagged), is over the bar: flagged."""
    volume, truth = placed_xray(twin, 5)
    image = twin.patterns("waxs").sum(axis=-1)
    found = locate_slice(image, twin.pixel_size_um, volume, VOXEL_UM)
    _, rotation, _ = placement_errors(found.map_to_xct, truth)
    warning = in_plane_warning(found, twin.pixel_size_um, "summed")
    assert found.rotation_uncertainty_deg > 2 * MAX_ROTATION_UNCERTAINTY_DEG
    assert "its standard error" in warning and "the rotation and shift are uncertain" in warning
    assert warning.endswith("or place the attenuation map (--map attenuation)")
    # placing the attenuation map already, it was told to place the attenuation map
    assert "--map attenuation" not in in_plane_warning(found, twin.pixel_size_um, "attenuation")
    assert rotation < 4 * found.rotation_uncertainty_deg  # an honest error bar: 1.62 deg off


def test_a_reconstructions_circle_inside_a_wider_array_is_placed_as_the_intact(
    twin: Twin, tmp_path: Path, in_a_wider_array
) -> None:
    """The volume's field of view a circle of 0.8 of the one inscribed in its array (NaN
    outside: a reconstruction written into a wider array). Judged in the inscribed
    cylinder, it was refused as 64 % measured; judged in its field of view
    (``conventions.field_of_view``), it is placed as the intact volume: height, rotation
    and shift within 0.5 um, 0.05 deg and 0.5 um of it (the NaN corners change the
    coarse copy's blocks at the circle's edge only). So is the circle (0.95 of the
    inscribed one) filled outside with 0 (a fill ring,
    :func:`jellyroll.nxct.unmeasured.fill_ring`) in an int16-like volume whose air reads
    -1000: read as data, the ring as bright as the metal, it was refused as an inverted
    contrast (the corners' median 0 against -871 inside the cell), exit 1 on a good volume."""
    volume, truth = placed_xray(twin, 0)
    ring = np.nan_to_num(np.rint(in_a_wider_array(volume, 4) * 1e6 - 1000.0), nan=0.0)
    errors = []
    for name, data in (("intact", volume), ("wide", in_a_wider_array(volume, 13)),
                       ("ring", ring)):  # fmt: skip
        path = write_tiff_stack(tmp_path / f"{name}.tif", data, VOXEL_UM)
        with open_volume(path) as source:
            found = locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, source, VOXEL_UM)
        errors.append(placement_errors(found.map_to_xct, truth))
    intact = errors[0]
    for height, rotation, shift in errors[1:]:
        assert abs(height - intact[0]) < 0.5 and abs(shift - intact[2]) < 0.5
        assert abs(rotation - intact[1]) < 0.05


@pytest.mark.parametrize("planes", [slice(0, 2), slice(-2, None)], ids=["bottom", "top"])
def test_blank_padding_planes_are_placed_as_not_measured_ones(
    twin: Twin, tmp_path: Path, planes: slice
) -> None:
    """Two end planes of one value (0: a stack padded to a fixed number of slices, as the
    registration reads them) were black material to locate, as NaN ones were (the
    registration's padding moved it 25-34 um): placement 1 landed 19.6 um (bottom) and
    13.9 um (top) from where the same planes as NaN put it, exit 0. Now blank end planes
    end the stack as NaN ones do: the same placement, to float rounding."""
    volume, _ = placed_xray(twin, 1)
    found = []
    for value in (np.nan, 0.0):
        padded = volume.astype(np.float32, copy=True)
        padded[planes] = value
        path = write_tiff_stack(tmp_path / f"padded_{value}.tif", padded, VOXEL_UM)
        with open_volume(path) as source:
            found.append(locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, source, VOXEL_UM))
    np.testing.assert_allclose(found[1].map_to_xct, found[0].map_to_xct, atol=1e-6)


@pytest.mark.parametrize("step_um", [5.0, 20.0, 80.0])
def test_the_rotations_standard_error_counts_no_more_samples_than_points(step_um: float) -> None:
    """The least-squares error of the rotation, sqrt((1 - r^2) / (n r |r''|)), on a
    correlation r = 0.9 - 0.01 deg^-2 x angle^2 (r'' = -0.02): with points further apart
    than the noise's correlation length (a large map sampled with a stride) the area's
    count, points x step^2 / (4 pi sigma^2), took n 2.9-3.9 times larger than the points
    and the error 1.7-2 times too small. n is now at most the points."""

    class Parabola:
        points = np.zeros((1000, 3))

        def whole(self, pose: np.ndarray) -> float:
            angle = np.degrees(np.arctan2(pose[1, 2], pose[1, 1]))
            return 0.9 - 0.01 * angle**2

    n = min(1000.0, 1000.0 * step_um**2 / (4 * np.pi * 10.0**2))
    expected = np.sqrt((1 - 0.9**2) / (n * 0.9 * 0.02))
    found = _rotation_uncertainty(Parabola(), np.eye(4), np.zeros(3), step_um, 10.0)
    assert found == pytest.approx(expected, rel=1e-6)


def test_a_plane_outside_the_volume_is_said(located: tuple[Path, Path, int]) -> None:
    """`locate --offset-um 1e9` wrote an all-NaN plane without a word: a warning names the
    offsets whose planes lie outside the X-ray volume."""
    output, twin_files, _ = located
    with pytest.warns(UserWarning, match=r"planes at 1e\+09 um from the slice lie outside"):
        found = run_locate(
            output.with_name("RUN.h5"),
            twin_files / "xct.tif",
            output.with_name("far.h5"),
            LocateOptions(offsets_um=(0.0, 1e9)),
        )
    assert found.offsets_um.tolist() == [0.0, 1e9]

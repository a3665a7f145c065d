"""Segmentation of the twin's registered NXCT pair against its true component fractions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.nxct.fuse import VoxelSample, sample_voxels
from jellyroll.nxct.segment import (
    LABELS,
    Thresholds,
    _sheet,
    bright_share,
    check_modality_order,
    check_voxel_sizes,
    classify,
    find_thresholds,
    segment_slabs,
)
from jellyroll.nxct.unmeasured import fill_ring
from jellyroll.phantom.materials import attenuation_map, mu_table
from jellyroll.phantom.nxct import simulate_nxct_from_attenuation
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import COMPONENT_GROUPS, group_fractions, nxct_fraction_slices

RESOLVED_UM = 2.5
"""A world voxel at which every layer is resolved (X-ray 5 um): the issue's bar of 0.9 applies
to the majority-component truth."""

SMALL_TWIN_UM = 10.0
"""The small twin's neutron voxel (its X-ray one: 20 um), segmented on the neutron grid
(``--grid nct``): the 10 um Cu foil is one voxel thick and the X-ray locates it within one
voxel; a 16 um separator and 15-20 um Al foil are under two voxels."""


def _twin_pair(
    voxel_um: float,
    state: str = "aged_charged",
    wavelength_A: float = 4.0,
    n_slices: int = 2,
    grid: str = "nct",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X-ray on the world grid, neutron, true majority group index of
    :data:`~jellyroll.phantom.write.COMPONENT_GROUPS`) of the tiny twin at a state of
    charge, the neutrons of ``wavelength_A`` (A), ``n_slices`` planes about the SWAXS slice
    (from 40 at 10 um: the roll's end and its head space on top).
    ``grid="xct"``: on the X-ray's own grid instead (twice ``voxel_um``, ``--grid xct``), the
    neutron volume and the components' fractions averaged over its 2 x 2 x 2 blocks."""
    twin = make_twin(state, "tiny", seed=0)
    fractions = [f for _, _, f in nxct_fraction_slices(twin, n_slices, voxel_um)]
    xray = np.stack([attenuation_map(f, mu_table("xray", energy_keV=60.0)) for f in fractions])
    neutron = np.stack(
        [attenuation_map(f, mu_table("neutron", wavelength_A=wavelength_A)) for f in fractions]
    )
    volumes = simulate_nxct_from_attenuation(
        xray, neutron, voxel_um, neutron_rotation_deg=(0, 0, 0), neutron_shift_um=(0, 0, 0)
    )
    groups = group_fractions(fractions)
    if grid == "xct":
        shape = [size // 2 for size in volumes.neutron.shape]

        def coarse(values: np.ndarray) -> np.ndarray:
            cut = values[: 2 * shape[0], : 2 * shape[1], : 2 * shape[2]]
            return cut.reshape(shape[0], 2, shape[1], 2, shape[2], 2).mean(axis=(1, 3, 5))

        xray = volumes.xray[: shape[0], : shape[1], : shape[2]]
        return xray, coarse(volumes.neutron), np.argmax([coarse(g) for g in groups], axis=0)
    truth = np.argmax(groups, axis=0)
    return volumes.xray_in_world(), volumes.neutron, truth


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(int(a.sum() + b.sum()), 1)


def _segment_dice(xray: np.ndarray, neutron: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    thresholds = find_thresholds(sample_voxels(xray, neutron, n_planes=2).values)
    labels = np.concatenate([s for _, s in segment_slabs(xray, neutron, thresholds, slab=1)])
    anode = np.isin(labels, [LABELS["anode_lithiated"], LABELS["anode_li_poor"]])
    names = list(COMPONENT_GROUPS)
    return {
        "cu": _dice(truth == names.index("cu"), labels == LABELS["cu"]),
        "cathode": _dice(truth == names.index("cathode"), labels == LABELS["cathode"]),
        "anode": _dice(truth == names.index("anode"), anode),
    }


def test_dice_where_the_layers_are_resolved():
    dice = _segment_dice(*_twin_pair(RESOLVED_UM))
    print(dice)  # measured 0.935, 0.969, 0.963 (before the any-state method: 0.965, 0.983, 0.967)
    assert min(dice.values()) >= 0.9, dice


@pytest.fixture(scope="module")
def small_twin_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _twin_pair(SMALL_TWIN_UM)


def test_dice_at_the_small_twins_voxel(small_twin_pair):
    dice = _segment_dice(*small_twin_pair)
    print(dice)  # measured 0.926, 0.950, 0.923 (seeds 1-2: >= 0.916, 0.946, 0.923)
    assert min(dice.values()) >= 0.9, dice


@pytest.mark.parametrize("state", ["fresh_charged", "aged_discharged"])
def test_dice_at_every_state_of_charge(state):
    """A discharged anode (delithiated graphite) is darker in neutrons than a Cu foil's blur and
    a fresh charged one about as bright as the cathode: the classes must not rest on the
    anode's neutron level. Measured (seed 0; Cu, cathode, anode): fresh_charged 0.923, 0.950,
    0.908; aged_discharged 0.914, 0.925, 0.925 (all four states, seeds 0-2: >= 0.908, 0.923,
    0.906; docs/nxct.md, `python -m benchmarks.bench_nxct --dice`)."""
    dice = _segment_dice(*_twin_pair(SMALL_TWIN_UM, state))
    print(state, dice)
    assert min(dice.values()) >= 0.9, dice


def test_a_neutron_volume_clipped_at_zero(small_twin_pair) -> None:
    """A neutron volume whose negative values (the void's noise) were set to 0, as by a
    conversion to unsigned integers: 30 % of the voxels at the floor. The log-Otsu of the
    void parted that spike from the rest of the void's noise, which then counted as the
    cell: anode Dice 0.17, cathode 0.88 (Cu 0.92), exit 0. Now anode 0.923, cathode 0.950,
    Cu 0.926 (within 0.001 of the unclipped pair); the bar is the other Dice tests' 0.9."""
    xray, neutron, truth = small_twin_pair
    clipped = np.round(np.clip(neutron, 0, None) / neutron.max() * 65535).astype(np.uint16)
    assert (clipped == 0).mean() > 0.25
    dice = _segment_dice(xray, clipped, truth)
    print(dice)
    assert min(dice.values()) >= 0.9, dice


@pytest.mark.parametrize("state", ["aged_charged", "aged_discharged"])
def test_a_casing_dim_in_thermal_neutrons_is_still_metal(state: str) -> None:
    """At 1.8 A (a thermal beam) the steel casing lies under the neutron's void split; the
    X-ray's Otsu of the rest, left with the thin Cu foils, parted the cathode from the light
    side: that "metal" took the cathode (Dice of the cathode 0.003 / 0.005, Cu 0.53, exit 0).
    Now aged_charged 0.926, 0.953, 0.905 and aged_discharged 0.914, 0.944, 0.930 (Cu,
    cathode, anode; 4 A: 0.91-0.93, 0.93-0.95, 0.92): the bar is the other Dice tests' 0.9.
    (aged_discharged read 0.921, 0.904, 0.905 while the cathode's neutron level was the
    tallest peak of its X-ray band, here the Cu foils' blur: 7.1e-5 for 1.9e-4 /um.)"""
    dice = _segment_dice(*_twin_pair(SMALL_TWIN_UM, state, wavelength_A=1.8))
    print(state, dice)
    assert min(dice.values()) >= 0.9, dice


@pytest.mark.parametrize("signs", [(-1, 1), (1, -1), (-1, -1)])
def test_an_inverted_contrast_is_refused(small_twin_pair, signs: tuple[int, int]) -> None:
    """Grey values flipped (bright = transmitting) in the X-ray, the neutron or both volumes:
    thresholds were found all the same and the labels had Dice of Cu, cathode and anode
    0.00-0.24, 0.00-0.51 and 0.08-0.65, exit 0 (the order check, skippable, caught only the
    flipped X-ray). The void, dark in both beams, and the metals, a thin minority of the
    X-ray, now refuse them (the right way round: the other tests' thresholds)."""
    xray, neutron, _ = small_twin_pair
    sample = sample_voxels(signs[0] * xray, signs[1] * neutron, n_planes=2).values
    with pytest.raises(ValueError, match="inverted"):
        find_thresholds(sample)


@pytest.mark.parametrize("state", ["aged_charged", "fresh_discharged"])
def test_a_pair_given_the_wrong_way_round_is_refused(state: str) -> None:
    """Exchanged, the neutron volume's soaked layers were thresholded as metal and the X-ray
    one's metals as void or anode: labels without meaning, and no error. The right way
    round, the same sample gives thresholds (the dice tests measure them)."""
    xray, neutron, _ = _twin_pair(SMALL_TWIN_UM, state)
    sample = sample_voxels(xray, neutron, n_planes=2).values
    check_modality_order(sample)
    with pytest.raises(ValueError, match="swapped"):
        check_modality_order(sample[:, ::-1])


@pytest.mark.parametrize("sample", [np.empty((0, 2)), np.ones((500, 2)), np.full((500, 2), np.nan)])
def test_a_sample_too_poor_to_tell_the_order_is_left_to_find_thresholds(sample) -> None:
    """The order check ran first and failed on an empty or constant sample with numpy's
    IndexError or "autodetected range of [nan, nan]": now it lets find_thresholds say what
    to sample."""
    check_modality_order(sample)
    with pytest.raises(ValueError, match="sample more voxels"):
        find_thresholds(sample)


def test_the_bright_share_ignores_offsets_and_scales(small_twin_pair) -> None:
    """Grey values with any offset and positive scale (uncalibrated CT) give the same
    shares: the splits are Otsu's, on a histogram that moves with the values."""
    xray, neutron, _ = small_twin_pair
    sample = sample_voxels(xray, neutron, n_planes=2).values
    moved = sample * [3.0, 0.5] + [2e-3, -1e-3]
    for order in (slice(None), slice(None, None, -1)):
        assert bright_share(moved[:, order]) == pytest.approx(bright_share(sample[:, order]))
    # measured 0.094 and 0.616 (seed 0); 2-15 % against 32-62 % over all four states at
    # 2.5, 10 and 20 um: the order the check relies on holds with a factor 2 to spare
    assert 2 * bright_share(sample) < bright_share(sample[:, ::-1])


def test_an_offset_of_the_grey_levels_changes_no_label(small_twin_pair):
    """Grey values of a CT volume may carry any offset (no air calibration): thresholds and
    foil rules must follow it, voxel for voxel."""
    xray, neutron, _ = small_twin_pair

    def labels(x: np.ndarray, n: np.ndarray) -> np.ndarray:
        return classify(x, n, find_thresholds(sample_voxels(x, n, n_planes=2).values))

    assert np.array_equal(labels(xray, neutron), labels(xray + 5e-4, neutron - 1e-4))


def _measured_sample(xray: np.ndarray, neutron: np.ndarray) -> VoxelSample:
    """The voxel sample ``jellyroll nxct`` takes its thresholds from."""
    return sample_voxels(xray, neutron, unmeasured=fill_ring)


@pytest.mark.parametrize("state", ["aged_charged", "aged_discharged"])
def test_the_thresholds_do_not_depend_on_the_stacks_crop_or_order(state: str) -> None:
    """A 40-plane stack holding the roll's end (a plane at a third of the roll's neutron
    level) and its head space: the thresholds of the stack, of it cropped by 3 planes at
    either end and of it reversed agree within 3 % of each modality's 1-99 % span (measured
    at most 2.1 % over crops of 1-6 planes and reversals in all four states of charge; 0 %
    reversed: the same voxels) and label the roll's anode with Dice >= 0.9 (0.92, 0.93).

    Before, 8 random planes (``sample_voxels``) were the sample: where one was the roll's
    end, the anode's neutron mode took that plane's level. The same stacks gave the cathode's
    neutron threshold 48 % of the span apart (discharged) and anode Dice 0.45-0.72 for two
    draws in five (charged), exit 0."""
    xray, neutron, truth = _twin_pair(SMALL_TWIN_UM, state, n_slices=40)
    spans = [np.ptp(np.percentile(v, [1, 99])) for v in (xray, neutron)]
    found = {
        name: find_thresholds(_measured_sample(xray[cut], neutron[cut]).values)
        for name, cut in [
            ("whole", slice(None)),
            ("top cropped", slice(0, -3)),
            ("bottom cropped", slice(3, None)),
            ("reversed", slice(None, None, -1)),
        ]
    }
    whole = found["whole"]
    for name, thresholds in found.items():
        for field in ("xray_metal", "xray_cathode"):
            moved = abs(getattr(thresholds, field) - getattr(whole, field)) / spans[0]
            assert moved <= 0.03, (name, field, moved)
        for field in ("neutron_cathode", "neutron_separator", "neutron_void", "neutron_lithiated"):
            moved = abs(getattr(thresholds, field) - getattr(whole, field)) / spans[1]
            assert moved <= 0.03, (name, field, moved)
    assert found["reversed"] == whole
    roll = slice(8, 12)
    labels = classify(xray[roll], neutron[roll], whole)
    anode = np.isin(labels, [LABELS["anode_lithiated"], LABELS["anode_li_poor"]])
    assert _dice(truth[roll] == list(COMPONENT_GROUPS).index("anode"), anode) >= 0.9


@pytest.mark.parametrize("fill", ["xray zero", "both mean", "xray zero, resampled"])
def test_a_reconstruction_circle_that_cuts_the_cell_is_left_out(small_twin_pair, fill) -> None:
    """A volume filled outside its reconstruction's circle, which cuts the cell's casing:
    the small twin's planes cropped to 176 voxels about the grid's centre (the inscribed
    circle) with the X-ray 0 where the neutron volume measured the cell, or both at their
    mean; or, as a volume resampled onto the other's grid, the X-ray 0 outside a circle of 94
    voxels 3, -2 voxels off the centre and NaN beyond its own grid. The (0, cell) pairs read
    as a class of their own, the mean as cell: cathode 0.206 / 0.163 / 0.180 of the circle
    against 0.177 / 0.177 / 0.155 from the whole pair, anode 0.153 / 0.154 / 0.136 against
    0.179 / 0.179 / 0.157, exit 0. Now the ring is void and out of the sample, as NaN:
    within 0.001 of the whole pair's; tolerance 0.01, the whole pair's own labels moving by
    0.001-0.002 with the sample of a crop."""
    xray, neutron, _ = small_twin_pair
    whole = classify(xray, neutron, find_thresholds(_measured_sample(xray, neutron).values))
    if fill == "xray zero, resampled":
        crop, centre, radius = (slice(None),) * 3, (106.5, 101.5), 94
    else:
        crop, centre, radius = (slice(None), slice(16, 192), slice(16, 192)), (87.5, 87.5), 88
    x, n = xray[crop].copy(), neutron[crop].copy()
    y, x_ = np.ogrid[: x.shape[1], : x.shape[2]]
    inside = np.hypot(y - centre[0], x_ - centre[1]) <= radius
    x[:, ~inside] = x.mean() if fill == "both mean" else 0.0
    if fill == "both mean":
        n[:, ~inside] = n.mean()
    if fill == "xray zero, resampled":
        x[:, :3], x[:, :, -2:] = np.nan, np.nan  # beyond the resampled volume's grid
        inside[:3], inside[:, -2:] = False, False
    assert (fill_ring(x[0]) | fill_ring(n[0]) | np.isnan(x[0]) == ~inside).all()
    labels = classify(x, n, find_thresholds(_measured_sample(x, n).values))
    assert (labels[:, ~inside] == LABELS["void"]).all()
    for names in (["cathode"], ["anode_lithiated", "anode_li_poor"]):
        values = [LABELS[name] for name in names]
        share = np.isin(labels[:, inside], values).mean()
        truth = np.isin(whole[crop][:, inside], values).mean()
        assert share == pytest.approx(truth, abs=0.01), names


@pytest.mark.parametrize("padded", ["both", "xray"])
def test_blank_planes_padding_a_stack_are_not_measured(small_twin_pair, padded: str) -> None:
    """The small twin's planes as int16 of offset -1000 (the void at -1000, as an integer
    volume's raw values read), the stack padded with 2 planes of 0 (both volumes, or the
    X-ray alone beside measured neutron planes). Before, both padded: the blank planes
    labelled anode all over (86528 voxels), and in the thresholds' sample they moved 3.6 %
    of the data planes' labels, exit 0; the X-ray alone: refused as an inverted contrast.
    Now they are void and out of the sample: the data planes' labels are the unpadded
    stack's (the same sample: equal; the bar 99.9 %)."""
    xray, neutron, _ = small_twin_pair
    x, n = (np.round(v * 1e7 - 1000).astype(np.int16) for v in (xray, neutron))
    whole = classify(x, n, find_thresholds(_measured_sample(x, n).values))
    blank = np.zeros((2, *x.shape[1:]), np.int16)
    x_padded = np.concatenate([blank, x])
    n_padded = np.concatenate([blank if padded == "both" else n[:2], n])
    thresholds = find_thresholds(_measured_sample(x_padded, n_padded).values)
    labels = classify(x_padded, n_padded, thresholds)
    assert (labels[:2] == LABELS["void"]).all()
    assert np.mean(labels[2:] == whole) >= 0.999


def test_a_field_of_view_that_cuts_the_roll_leaves_its_foils_cu(small_twin_pair) -> None:
    """The X-ray's top 50 rows not measured (NaN), across the roll: the Cu foils that ended
    at the edge of the view touched the "outside void" and became casing, drawn as thick as
    their X-ray blur (722 Cu and 935 anode voxels casing, 663 anode voxels cathode beside
    them: 96.4 % of the voxels in view as labelled from the whole pair, exit 0). Now 99.8 %
    (the thresholds from the smaller sample move a few voxels); the bar 99 %, the casing
    the metal that touches the measured void outside."""
    xray, neutron, _ = small_twin_pair
    whole = classify(xray, neutron, find_thresholds(_measured_sample(xray, neutron).values))
    cut = xray.copy()
    cut[:, :50] = np.nan
    labels = classify(cut, neutron, find_thresholds(_measured_sample(cut, neutron).values))
    assert (labels[:, :50] == LABELS["void"]).all()
    assert np.mean(labels[:, 50:] == whole[:, 50:]) >= 0.99
    casing = LABELS["casing"]
    assert abs(np.mean(labels[:, 50:] == casing) - np.mean(whole[:, 50:] == casing)) < 0.001


def test_a_field_of_view_inside_the_cell_is_refused_as_such(small_twin_pair) -> None:
    """A field of view inside the roll (no void or casing around it, the study's 8.6 mm
    neutron view of an 18 mm cell): refused, its cathode the "metal" (59-68 % of the cell);
    the message blamed only an inverted contrast, now it names the field of view too."""
    xray, neutron, _ = small_twin_pair
    crop = (slice(None), slice(67, 157), slice(61, 151))
    sample = _measured_sample(xray[crop], neutron[crop]).values
    with pytest.raises(ValueError, match="field of view lie inside the cell"):
        find_thresholds(sample)


def test_a_constant_region_inside_the_circle_is_data() -> None:
    """A noiseless plane's constant void and casing (the same 0 in neutrons) from a radius
    under :data:`~jellyroll.nxct.unmeasured.RING_RADIUS` of the half-width, or a constant that
    does not fill the whole outside of a circle, is no fill ring (a noiseless void beyond
    that radius may be: it is void either way)."""
    xray, neutron = _rings()
    assert not fill_ring(neutron[0]).any()
    assert not (fill_ring(xray[0]) & (xray[0] > 0)).any()
    plane = np.random.default_rng(0).normal(size=(40, 40))
    plane[:, :3] = 0.0  # a constant band along one side only
    assert not fill_ring(plane).any()


@pytest.mark.parametrize(
    ("xray_um", "neutron_um", "refused"),
    [(20.0, 10.0, None), (25.0, 15.0, None), (30.0, 10.0, "X-ray"), (20.0, 20.0, "neutron")],
)
def test_voxels_coarser_than_the_layers_resolve_are_refused(
    xray_um: float, neutron_um: float, refused: str | None
) -> None:
    """An X-ray voxel over 25 um or a neutron one over 15 um (the limits where the twin's
    labels stop being right: X-ray 30 um Dice 0.53-0.88, 40 um 0.36-0.57; neutron 20 um
    0.67-0.91) was segmented all the same, exit 0; now refused, naming the volume."""
    names = ("x.tif", "n.h5")
    if refused is None:
        check_voxel_sizes(xray_um, neutron_um, names)
        return
    name = names[0] if refused == "X-ray" else names[1]
    with pytest.raises(ValueError, match=rf"{name}: its {refused} voxel of"):
        check_voxel_sizes(xray_um, neutron_um, names)


def test_the_fill_ring_is_searched_once_and_checked_in_every_plane(monkeypatch) -> None:
    """:class:`~jellyroll.nxct.unmeasured.FillRings` gives :func:`fill_ring`'s mask in every
    plane, searching only where the last plane's ring no longer provably holds. Before, the
    ring was searched in every plane of both volumes: 0.18-0.19 s per 1024^2 plane with a
    ring against 0.14 s without the search (now 0.15-0.16 s). A stack whose ring moves (a
    volume resampled onto a tilted grid), changes value, meets a NaN plane, reaches a
    voxel of the fill's value beside it or ends: the masks must be exactly fill_ring's."""
    from jellyroll.nxct import unmeasured

    rng = np.random.default_rng(1)
    y, x = np.ogrid[:64, :64]
    planes = []
    for centre, value in (((31.5, 31.5), 0.0),) * 4 + (((32.5, 31.0), 0.0), ((32.5, 31.0), 7.0)):
        plane = rng.uniform(1.0, 2.0, (64, 64))
        plane[np.hypot(y - centre[0], x - centre[1]) > 30] = value
        planes.append(plane)
    planes.append(np.full((64, 64), np.nan))
    planes.append(planes[0].copy())
    touching = planes[0].copy()
    touching[31, 1:4] = 0.0  # the fill's value inside, 4-adjacent to the ring
    planes.append(touching)
    planes.append(rng.uniform(1.0, 2.0, (64, 64)))  # no ring
    planes.append(planes[0].copy())
    searched = []
    original = unmeasured._fill_ring
    monkeypatch.setattr(
        unmeasured, "_fill_ring", lambda plane: searched.append(1) or original(plane)
    )
    rings = unmeasured.FillRings()
    for index, plane in enumerate(planes):
        expected = original(plane)[0]
        assert np.array_equal(rings(plane), expected), index
    assert expected.any()
    # found in plane 0, checked in 1-3; searched again at the move, the value, the NaN plane,
    # the ring after it, the touching voxel, the plane without a ring and the last one
    assert len(searched) == 8


def _rings() -> tuple[np.ndarray, np.ndarray]:
    """A steel ring (touches the outside) around a Cu ring in anode, one plane of 41 x 41."""
    y, x = np.mgrid[-20:21, -20:21]
    r = np.hypot(y, x)
    xray = np.where((r > 16) & (r < 19), 10.0, np.where(r <= 16, 1.0, 0.0))
    xray[(r > 8) & (r < 10)] = 10.0
    neutron = np.where(r <= 16, 5.0, 0.0)
    return xray[None], neutron[None]


HAND = Thresholds(
    xray_metal=5.0,
    xray_cathode=3.0,
    neutron_cathode=3.0,
    neutron_separator=8.0,
    neutron_void=1.0,
    neutron_lithiated=2.0,
)


def test_casing_and_cu_by_position():
    labels = classify(*_rings(), HAND)[0]
    assert labels[20, 2] == LABELS["casing"] and labels[20, 11] == LABELS["cu"]
    assert labels[0, 0] == LABELS["void"] and labels[20, 15] == LABELS["anode_lithiated"]


def test_voxels_outside_the_neutron_field_of_view_are_void():
    """NaN neutron voxels (outside its field of view) are void, as the docstring says: the
    casing there, bright in the X-ray, was labelled Cu (and then casing), exit 0."""
    xray, neutron = _rings()
    neutron[0, :, :5] = np.nan  # the casing's column 2 and the roll's edge beyond the view
    for size in (0, 3):
        labels = classify(xray, neutron, HAND, majority_size=size)[0]
        assert (labels[:, :5] == LABELS["void"]).all()
        assert labels[20, 11] == LABELS["cu"]  # inside both views, as before


def test_majority_filter_removes_salt():
    xray, neutron = _rings()
    neutron[0, 20, 14] = 0.0  # one void voxel inside the anode
    assert classify(xray, neutron, HAND)[0, 20, 14] == LABELS["void"]
    assert classify(xray, neutron, HAND, majority_size=3)[0, 20, 14] == LABELS["anode_lithiated"]


def _layers(xray_columns: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """One 21 x 21 plane of anode (X-ray 1, neutron 2.5-2.52 of :data:`HAND`'s units) with the
    given X-ray values on whole columns."""
    xray = np.ones((1, 21, 21))
    for column, value in xray_columns.items():
        xray[0, :, column] = value
    # a measured plane is never exactly flat (one value all over is a blank plane)
    return xray, np.full_like(xray, 2.5) + 1e-3 * np.arange(21)


def test_a_foil_thinner_than_the_voxels_is_cu_along_its_ridge_only():
    thresholds = replace(HAND, xray_full_metal=9.0)
    blurred = classify(*_layers({9: 6.0, 10: 8.0, 11: 6.0}), thresholds)[0]
    assert (blurred[:, 10] == LABELS["cu"]).all()
    assert (blurred[:, [9, 11]] == LABELS["anode_lithiated"]).all()
    resolved = classify(*_layers({9: 10.0, 10: 10.0, 11: 10.0}), thresholds)[0]
    assert (resolved[:, 9:12] == LABELS["cu"]).all()


def test_anode_within_a_cathode_coating_is_al():
    cathode = dict.fromkeys([*range(2, 8), *range(9, 15)], 4.0)  # coatings on a 1-voxel gap
    xray, neutron = _layers(cathode)
    neutron[0][:, list(cathode)] = 5.0
    labels = classify(xray, neutron, HAND)[0]
    assert (labels[:, 8] == LABELS["al"]).all()
    assert (labels[:, 16:] == LABELS["anode_lithiated"]).all()  # beyond reach: still anode


@settings(max_examples=30, deadline=None)
@given(st.floats(0.0, np.pi), st.floats(-0.5, 0.5), st.floats(1.0, 1.6))
def test_a_thin_sheet_is_drawn_one_voxel_thick_on_its_sub_voxel_mid_surface(
    angle: float, offset: float, blur: float
):
    """A sheet at any angle and sub-voxel offset, blurred by 1-1.6 voxels: the drawn voxels are
    those whose centre lies within half a voxel of its mid-surface. Tolerance 0.1 voxel: the
    parabola through a Gaussian's samples at +-1 voxel misplaces its peak by a few hundredths
    (0.06 at most over 300 random sheets) and the Hessian's direction tilts a little."""
    y, x = np.mgrid[-20:21, -20:21].astype(float)
    across = y * np.cos(angle) + x * np.sin(angle) - offset
    score = np.exp(-0.5 * (across / blur) ** 2)
    centre = (np.abs(y) <= 12) & (np.abs(x) <= 12)  # away from the plane's edges
    drawn = _sheet(score, centre & (score > 0.3)) & centre
    assert np.abs(across[drawn]).max() <= 0.6
    assert drawn[centre & (np.abs(across) <= 0.4)].all()


def test_the_al_valley_is_al_and_its_blurred_shoulders_cathode():
    xray, neutron = _layers(dict.fromkeys(range(2, 15), 4.0))  # one cathode band
    neutron[0][:, 2:15] = 5.0
    neutron[0][:, [7, 9]] = 2.5  # the valley's shoulders read as anode in the neutron
    neutron[0][:, 8] = 1.5
    labels = classify(xray, neutron, HAND)[0]
    assert (labels[:, 8] == LABELS["al"]).all()
    assert (labels[:, [7, 9]] == LABELS["cathode"]).all()


def test_a_class_the_contrast_does_not_part_is_refused():
    """A pair whose interior is one material (an anode-only roll, or a neutron volume that shows
    nothing) with a few bright outliers: Otsu still splits it, into 2 % "cathode" voxels;
    the thresholds are refused rather than returned."""
    rng = np.random.default_rng(0)

    def cloud(count: int, xray: float, neutron: float) -> np.ndarray:
        return rng.normal([xray, neutron], 0.05, size=(count, 2))

    sample = np.vstack(
        [cloud(2000, 0.0, 0.0), cloud(300, 10.0, 0.5), cloud(1000, 1.0, 5.0), cloud(20, 3, 5)]
    )
    with pytest.raises(ValueError, match="cathode class holds"):
        find_thresholds(sample)


FIELDS = ("xray_metal", "xray_cathode", "neutron_cathode", "neutron_separator", "neutron_void")
"""The thresholds :func:`find_thresholds` places between classes' levels (``neutron_lithiated``
and ``xray_full_metal``, a class's mean less its deviations, follow its make-up)."""


@pytest.mark.parametrize("grid", ["nct", "xct"])
@pytest.mark.parametrize(
    "state", ["aged_charged", "fresh_charged", "aged_discharged", "fresh_discharged"]
)
def test_the_thresholds_barely_move_without_a_few_percent_of_the_sample(
    state: str, grid: str
) -> None:
    """The sample less a band of 4 % of the rows (an X-ray row band not measured, at three
    heights) or less a random 5 % of its voxels: each threshold within 3 % of its
    modality's 1-99 % span of the whole sample's, on the neutron grid (10 um) and on the
    X-ray's (20 um), in all four states of charge. Measured at most 0.6 % here (2.1 % over
    seeds 0-1, 8 planes; 0.1 % on the small twin at 10 um, ``--grid nct``).

    The X-ray's cathode band holds the foils' and the anode's voxels blurred by the Cu foils
    (their neutron level: Cu, Al, or a charged anode's) about as many as the cathode's: the
    cathode's neutron level was the tallest peak of a histogram of fixed bins, and of two
    near-equal peaks a few % of the sample chose. On the X-ray grid, discharged, the
    cathode's neutron threshold moved by 52 % of the span (the Cu blur's level: 9e-5 for
    3.2e-4 /um) and the X-ray's metal one by 4 %; the small twin (seed 3, ``--grid nct``,
    aged_charged) by 22 % (1.3e-4 for 2.3e-4), exit 0. The level is now the brightest peak
    of a smoothed density (``brightest``, module docstring step 3)."""
    xray, neutron, _ = _twin_pair(
        SMALL_TWIN_UM, state, n_slices=4 if grid == "xct" else 2, grid=grid
    )
    spans = [np.ptp(np.percentile(v, [1, 99])) for v in (xray, neutron)]
    sample = _measured_sample(xray, neutron).values
    whole = find_thresholds(sample)
    samples = []
    rows = round(0.04 * xray.shape[1])
    for start in np.array([1, 2, 3]) * xray.shape[1] // 4:
        cut = xray.copy()
        cut[:, start : start + rows] = np.nan
        samples.append(_measured_sample(cut, neutron).values)
    rng = np.random.default_rng(0)
    samples += [sample[rng.random(len(sample)) >= 0.05] for _ in range(4)]
    for part in samples:
        thresholds = find_thresholds(part)
        for field in FIELDS:
            moved = abs(getattr(thresholds, field) - getattr(whole, field))
            assert moved <= 0.03 * spans[field.startswith("neutron")], (field, moved)

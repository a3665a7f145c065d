"""The twin's NXCT pair in 3D: heights, bends confined in z, remount, nct_to_xct, labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from jellyroll.phantom.geometry import Agglomerate, CellGeometry, rasterize, z_invariant
from jellyroll.phantom.materials import attenuation_map, mu_table
from jellyroll.phantom.nxct import rigid_matrix, simulate_nxct_from_attenuation
from jellyroll.phantom.parameters import SIZES
from jellyroll.phantom.twin import Twin, make_twin
from jellyroll.phantom.write import (
    LABEL_NAMES,
    PLACEMENT_HEIGHT_FRACTION,
    ROLL_END_FRACTION,
    XRAY_DOWNSAMPLE,
    TwinNXCT,
    nxct_fraction_slices,
    roll_end_um,
    simulate_twin_nxct,
    twin_placement,
    twin_remount,
)

SEED = 3


@pytest.fixture(scope="module")
def twin() -> Twin:
    return make_twin("aged_charged", "tiny", seed=SEED)


@pytest.fixture(scope="module")
def twin_nxct(twin: Twin) -> TwinNXCT:
    return simulate_twin_nxct(twin, seed=SEED)


def test_volume_heights(twin_nxct: TwinNXCT) -> None:
    small, tiny = SIZES["small"], SIZES["tiny"]
    assert small.nxct_slices * small.nxct_voxel_um >= 1000.0
    assert tiny.nxct_slices >= 16
    volumes = twin_nxct.volumes
    assert volumes.neutron.shape[0] == tiny.nxct_slices
    assert volumes.xray_voxel_um == pytest.approx(XRAY_DOWNSAMPLE * volumes.neutron_voxel_um)
    assert volumes.xray.shape[0] == -(-tiny.nxct_slices // XRAY_DOWNSAMPLE)


def test_bend_is_confined_in_z(twin: Twin) -> None:
    """The Cu displacement of a bend is Gaussian along z about its agglomerate's height."""
    geometry = twin.geometry
    bend = geometry.bend_table().iloc[0]
    g = next(g for g in geometry.agglomerates if g.id == bend["agglomerate_id"])
    sigma = g.push_sigma_axial_um
    n, pixel = twin.size.n_translations, twin.pixel_size_um
    x, y = (np.arange(n) - (n - 1) / 2) * pixel, (np.arange(n) - (n - 1) / 2) * pixel
    near = np.hypot(x[None, :] - bend["x_um"], y[:, None] - bend["y_um"]) < bend["extent_arc_um"]
    peaks = []
    for dz in (0.0, 1.0, 2.0, 3.5):
        raster = rasterize(geometry, (n, n), pixel, z_um=g.z_um + dz * sigma, supersample=1)
        peaks.append(np.abs(raster.displacement_um[near]).max())
    assert peaks[0] > 0.5 * bend["amplitude_um"]
    for dz, peak in zip((1.0, 2.0), peaks[1:3], strict=True):
        assert peak == pytest.approx(peaks[0] * np.exp(-0.5 * dz**2), rel=0.2, abs=1.0)
    assert peaks[3] == 0.0 and z_invariant(geometry, g.z_um + 3.5 * sigma)


def test_slices_away_from_defects_are_shared(twin: Twin) -> None:
    """The shared z-invariant slice is the one computed at each such height."""
    geometry = twin.geometry
    top = 20 * twin.size.nxct_voxel_um
    assert z_invariant(geometry, top) and z_invariant(geometry, -top)
    shape, voxel = (60, 60), twin.size.nxct_voxel_um
    a, b = (rasterize(geometry, shape, voxel, z_um=z, supersample=1) for z in (top, -top))
    for name, values in a.fractions.items():
        np.testing.assert_array_equal(values, b.fractions[name])


def test_remount_is_random_per_seed() -> None:
    fov = (160.0, 2080.0, 2080.0)
    spins, tilts = [], []
    for seed in range(12):
        matrix, draws = twin_remount(seed, fov)
        np.testing.assert_array_equal(matrix, twin_remount(seed, fov)[0])
        rotation = matrix[:3, :3]
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        tilts.append(np.degrees(np.arccos(np.clip(rotation[0, 0], -1, 1))))
        spins.append(draws["rotation_about_axis_deg"])
        assert tilts[-1] == pytest.approx(draws["tilt_deg"])
        assert np.all(np.abs(matrix[:3, 3]) <= 0.05 * np.asarray(fov) + 1e-9)
    assert max(tilts) <= 5.0
    assert np.ptp(spins) > 90.0 and len(set(spins)) == len(spins)


def test_nct_to_xct_maps_the_same_material(twin: Twin, twin_nxct: TwinNXCT) -> None:
    """Points of the neutron frame mapped by nct_to_xct find the same true attenuation."""
    voxel = twin.size.nxct_voxel_um
    mu_x = mu_table("xray", energy_keV=60.0)
    slices = list(nxct_fraction_slices(twin, twin.size.nxct_slices, voxel, twin_nxct.map_to_world))
    truth = np.stack([attenuation_map(fractions, mu_x) for _, _, fractions in slices])
    clean = simulate_nxct_from_attenuation(
        truth,
        truth,
        voxel,
        neutron_to_world=twin_nxct.volumes.neutron_to_world,
        blur_sigma_voxels=(0.0, 0.0),
        noise_fraction=(0.0, 0.0),
    )
    shape_n = np.asarray(clean.neutron.shape)
    rng = np.random.default_rng(0)
    index_n = rng.integers(0, shape_n, size=(40000, 3))
    points_n = np.column_stack([(index_n - (shape_n - 1) / 2) * voxel, np.ones(len(index_n))])
    # keep points whose world image lies inside the simulated world (no edge extension)
    world = points_n @ clean.neutron_to_world.T
    index_w = world[:, :3] / voxel + (np.asarray(truth.shape) - 1) / 2
    inside = np.all((index_w > 1) & (index_w < np.asarray(truth.shape) - 2), axis=1)
    assert inside.sum() > 2000
    code = {name: label for label, name in LABEL_NAMES.items()}
    labels = twin_nxct.labels
    contrast = np.median(clean.xray[labels == code["cu"]]) - np.median(
        clean.xray[labels == code["anode"]]
    )
    # material points only: the air inside and around the cell matches under any map
    inside &= clean.neutron[tuple(index_n.T)] > 0.05 * contrast
    assert inside.sum() > 1000
    # both at the X-ray resolution: a 30 um Gaussian hides the 2x2x2 block averaging
    xray = ndimage.gaussian_filter(clean.xray, 30.0 / clean.xray_voxel_um, mode="nearest")
    neutron = ndimage.gaussian_filter(clean.neutron, 30.0 / voxel, mode="nearest")
    values_n = neutron[tuple(index_n[inside].T)]

    def mapped(nct_to_xct: np.ndarray) -> np.ndarray:
        points_x = points_n[inside] @ nct_to_xct.T
        index_x = points_x[:, :3] / clean.xray_voxel_um + (np.asarray(clean.xray.shape) - 1) / 2
        return ndimage.map_coordinates(xray, index_x.T, order=1, mode="nearest")

    error = np.mean(np.abs(mapped(twin_nxct.volumes.nct_to_xct) - values_n))
    off = rigid_matrix((10.0, 0.0, 0.0), (0.0, 0.0, 0.0)) @ twin_nxct.volumes.nct_to_xct
    wrong = np.mean(np.abs(mapped(off) - values_n))
    # measured on seed 3: contrast 6.9e-4, error 5.0e-6, 10 deg off 2.2e-5 (1/um)
    assert error < 0.02 * contrast
    assert wrong > 3 * error


def test_labels(twin_nxct: TwinNXCT) -> None:
    labels, xray = twin_nxct.labels, twin_nxct.volumes.xray
    assert labels.shape == xray.shape and labels.dtype == np.uint8
    assert set(LABEL_NAMES.values()) == {
        "void", "casing", "cu", "al", "anode", "cathode", "separator"
    }  # fmt: skip
    present = set(np.unique(labels))
    assert present <= set(LABEL_NAMES) and {0, 1, 4, 5, 6} <= present
    code = {name: label for label, name in LABEL_NAMES.items()}
    mean = {name: xray[labels == code[name]].mean() for name in ("void", "casing", "anode")}
    assert mean["void"] < mean["anode"] < mean["casing"]


def test_bends_in_the_xray_frame(twin: Twin, twin_nxct: TwinNXCT) -> None:
    bends = twin_nxct.bends
    columns = ["id", "z_um", "y_um", "x_um", "turn", "amplitude_um", "extent_axial_um",
               "extent_arc_um"]  # fmt: skip
    assert columns == list(bends.columns[: len(columns)])
    cases_b = [g for g in twin.geometry.agglomerates if g.case == "B"]
    assert len(bends) == len(cases_b) >= 1
    for bend, g in zip(bends.itertuples(), cases_b, strict=True):
        # the foil's mid-surface moves less than the push its near face takes (the push
        # decays beyond it), within the few um the twin's ovality shifts the ramp's end
        assert 0.85 * g.push_cu_um < bend.amplitude_um < g.push_cu_um + 2.0
        # narrower than the push's Gaussian along z (its FWHM 2.3548 sigma; sigma = c)
        assert 0.6 < bend.extent_axial_um / (2.3548 * g.semi_axes_um[2]) < 1.0
        cell = np.linalg.inv(twin_nxct.map_to_xct) @ [bend.z_um, bend.y_um, bend.x_um, 1.0]
        assert cell[0] == pytest.approx(g.z_um)
        distance = np.hypot(cell[2] - g.x_um, cell[1] - g.y_um)
        assert g.to_cu_um + bend.amplitude_um < distance < g.to_cu_um + g.push_cu_um + 20.0


def _foil_mid_radius_um(cell: CellGeometry, g: Agglomerate, theta_rad: float, z_um: float) -> float:
    """Cu-weighted mean radius (um) of the first Cu foil on ``g``'s Cu side along the ray at
    ``theta_rad`` from the cell's centre, at height ``z_um``, as :func:`rasterize` renders it
    (area fractions of 3x3 samples per 0.05 um pixel of a row laid along the ray)."""
    step, n = 0.05, 4000
    outwards = 1.0 if g.side == "anode_inner" else -1.0
    cx, cy = cell.params.centre_um
    radius = g.radius_um + outwards * (g.to_cu_um - 50.0 + step * np.arange(n))
    middle, along = radius[n // 2] - outwards * step / 2, outwards * step
    c, s = np.cos(theta_rad), np.sin(theta_rad)
    # grid (y, x) -> cell (y, x): the grid's x along the ray, its y across it
    grid_to_cell = np.array(
        [[c, s * along, cy + s * middle], [-s, c * along, cx + c * middle], [0, 0, 1]]
    )
    cu = rasterize(cell, (1, n), 1.0, z_um=z_um, grid_to_cell=grid_to_cell).fractions["cu"][0]
    foil = ndimage.label(cu > 0)[0]
    first = foil == foil[np.argmax(cu > 0)]  # the first foil along the ray
    return float(np.sum(radius[first] * cu[first]) / np.sum(cu[first]))


def test_bend_amplitude_is_the_foils_mid_surface_displacement(twin: Twin) -> None:
    """Each bend's ``amplitude_um`` is the radial displacement of the Cu foil's mid-surface
    at the bend's peak: the Cu-weighted mean radius of the foil as :func:`rasterize`
    renders it (:func:`_foil_mid_radius_um`), bent minus the same cell without
    agglomerates. Tolerance 0.05 um: a pixel's width at the foil's two faces."""
    geometry = twin.geometry
    flat = dataclasses.replace(geometry, agglomerates=())
    table = geometry.bend_table().set_index("agglomerate_id")
    for g in (g for g in geometry.agglomerates if g.case == "B"):
        outwards = 1.0 if g.side == "anode_inner" else -1.0
        mids = [_foil_mid_radius_um(cell, g, g.theta_rad, g.z_um) for cell in (geometry, flat)]
        assert outwards * (mids[0] - mids[1]) == pytest.approx(
            table.loc[g.id, "amplitude_um"], abs=0.05
        )


def _full_width_at_half_maximum(x: np.ndarray, values: np.ndarray) -> float:
    """Width between the two points, linearly interpolated, where ``values`` (peak in the
    middle of ``x``) fall to half the middle value."""
    k, half = x.size // 2, values[x.size // 2] / 2
    ends = []
    for direction in (1, -1):
        i = k
        while values[i + direction] > half:
            i += direction
        j = i + direction
        ends.append(x[i] + (x[j] - x[i]) * (values[i] - half) / (values[i] - values[j]))
    return abs(ends[0] - ends[1])


def test_bend_extents_are_the_foils_half_maximum_widths(twin: Twin) -> None:
    """``extent_axial_um`` and ``extent_arc_um`` are the full widths at half maximum of the
    foil's mid-surface displacement (as the amplitude: :func:`_foil_mid_radius_um`) along z
    and along the arc (at the radius of half maximum), read on 31 heights and 31 angles
    over +-1.5 of the push's standard deviations. They were the widths of the push's
    Gaussians, 1.2-1.4 times too wide: the foil takes the push's full profile only at its
    peak. Tolerance 1 %: linear interpolation between samples 3-7 um apart and the
    rendered faces (measured 0.1-0.2 % on seeds 0, 3, 5)."""
    geometry = twin.geometry
    flat = dataclasses.replace(geometry, agglomerates=())
    table = geometry.bend_table().set_index("agglomerate_id")
    for g in (g for g in geometry.agglomerates if g.case == "B"):
        outwards = 1.0 if g.side == "anode_inner" else -1.0
        still = _foil_mid_radius_um(flat, g, g.theta_rad, g.z_um)
        dz = np.linspace(-1.5, 1.5, 31) * g.push_sigma_axial_um
        axial = [outwards * (_foil_mid_radius_um(geometry, g, g.theta_rad, g.z_um + z) - still)
                 for z in dz]  # fmt: skip
        radius = still + outwards * axial[15] / 2
        arc = np.linspace(-1.5, 1.5, 31) * g.push_sigma_arc_um
        along = [
            outwards * (_foil_mid_radius_um(geometry, g, g.theta_rad + s / radius, g.z_um)
                        - _foil_mid_radius_um(flat, g, g.theta_rad + s / radius, g.z_um))
            for s in arc
        ]  # fmt: skip
        bend = table.loc[g.id]
        assert _full_width_at_half_maximum(dz, np.array(axial)) == pytest.approx(
            bend["extent_axial_um"], rel=0.01
        )
        assert _full_width_at_half_maximum(arc, np.array(along)) == pytest.approx(
            bend["extent_arc_um"], rel=0.01
        )


def test_roll_ends_under_the_head_space(twin: Twin) -> None:
    """Above the roll's end only the casing and the tab remain (an axial landmark); below it
    the roll is untouched; the end sits above every defect's reach."""
    voxel, n_slices = 40.0, 12
    end = roll_end_um(twin, n_slices, voxel)
    reach = max(g.z_um + 3 * g.push_sigma_axial_um for g in twin.geometry.agglomerates)
    assert end > reach and end >= ROLL_END_FRACTION * n_slices * voxel
    heights, tab_pixels = [], []
    casing = np.zeros(0, bool)
    for k, raster, fractions in nxct_fraction_slices(twin, n_slices, voxel):
        z_um = (k - (n_slices - 1) / 2) * voxel
        heights.append(z_um)
        roll = sum(raster.fractions[r] for r in ("anode", "cathode", "separator", "al"))
        if z_um > end:
            assert roll.max() == 0 and fractions["nmc_lithiated"].max() == 0
            cu = raster.fractions["cu"] > 0
            tab_pixels.append(int(cu.sum()))
            # one straight strip: its pixels lie on a line through the axis
            y, x = np.nonzero(cu)
            assert np.linalg.svd(np.column_stack([y - y.mean(), x - x.mean()]), False)[1][1] < 2
            np.testing.assert_array_equal(raster.fractions["casing"] > 0.5, casing)
        else:
            assert roll.sum() > 0
            casing = raster.fractions["casing"] > 0.5
    assert tab_pixels and min(tab_pixels) >= 4 and len(set(tab_pixels)) == 1
    assert max(heights) > end


def test_placement_is_random_per_seed() -> None:
    fov = (160.0, 2080.0, 2080.0)
    draws = [twin_placement(seed, fov)[1] for seed in range(12)]
    for seed, d in enumerate(draws):
        matrix = twin_placement(seed, fov)[0]
        np.testing.assert_allclose(
            matrix[:3, 3], [d["height_um"], d["shift_y_um"], d["shift_x_um"]]
        )
        assert abs(d["height_um"]) <= PLACEMENT_HEIGHT_FRACTION * fov[0]
    rotations = [d["rotation_deg"] for d in draws]
    assert np.ptp(rotations) > 90.0 and np.ptp([d["height_um"] for d in draws]) > 0.2 * fov[0]


def test_map_to_xct_places_the_attenuation_map(twin: Twin, twin_nxct: TwinNXCT) -> None:
    """The X-ray volume sampled on the SWAXS map plane through map_to_xct is the twin's true
    attenuation map (another energy: compared by rank correlation), and a turned one is not."""
    truth = twin.mu_xray_per_um
    y_um, x_um = twin.raster.axes_um()
    yy, xx = np.meshgrid(y_um, x_um, indexing="ij")
    inside = np.hypot(yy, xx) < 0.9 * np.abs(x_um).max()
    points = np.column_stack(
        [np.zeros(inside.sum()), yy[inside], xx[inside], np.ones(inside.sum())]
    )
    xray = twin_nxct.volumes.xray
    voxel = twin_nxct.volumes.xray_voxel_um

    def correlation(map_to_xct: np.ndarray) -> float:
        index = (points @ map_to_xct.T)[:, :3] / voxel + (np.asarray(xray.shape) - 1) / 2
        sampled = ndimage.map_coordinates(xray, index.T, order=1, mode="nearest")
        return float(
            np.corrcoef(*(np.argsort(np.argsort(v)) for v in (sampled, truth[inside])))[0, 1]
        )

    right = correlation(twin_nxct.map_to_xct)
    wrong = {
        angle: correlation(twin_nxct.map_to_xct @ rigid_matrix((angle, 0.0, 0.0), (0, 0, 0)))
        for angle in (2.0, 10.0, 90.0)
    }
    assert abs(twin_nxct.placement["height_um"]) > 0 and twin_nxct.map_to_xct[0, 3] != 0
    # measured on seed 3: 0.874 placed; 0.872, 0.834, 0.226 at 2, 10, 90 deg off (a spiral
    # turned by a few degrees is nearly itself: its ends and defects tell the angle)
    assert right > 0.8 and wrong[90.0] < right - 0.3
    assert wrong[10.0] < right - 0.02 and wrong[2.0] < right

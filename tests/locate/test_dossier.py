"""Per-defect dossiers on the twin: the volumes' planes at the slice, cutouts centred on each
defect with its profile across the layer, the 3D bend's slices, the figures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from jellyroll.io.images import save_png
from jellyroll.locate import link_to_bends
from jellyroll.locate.dossier import defect_dossiers, select_defects, vertical_cut, volume_on_map
from jellyroll.locate.link_figures import slice_in_volume_figure
from jellyroll.phantom.twin import Twin
from jellyroll.phantom.write import TwinNXCT
from jellyroll.unroll import find_cell, trace_spiral


def _plane(twin: Twin, twin_nxct: TwinNXCT, height_um: float = 0.0) -> np.ndarray:
    volumes = twin_nxct.volumes
    return volume_on_map(
        volumes.xray, volumes.xray_voxel_um, twin_nxct.map_to_xct, twin.shape,
        twin.pixel_size_um, height_um=height_um,
    )  # fmt: skip


def test_volume_on_map_is_map_coordinates_at_the_mapped_points(
    twin: Twin, twin_nxct: TwinNXCT
) -> None:
    """Against scipy's map_coordinates at the map pixels carried by map_to_xct (an
    independent route), at the plane and 40 um above it."""
    volumes = twin_nxct.volumes
    ny, nx = twin.shape
    p = twin.pixel_size_um
    y, x = np.meshgrid((np.arange(ny) - (ny - 1) / 2) * p, (np.arange(nx) - (nx - 1) / 2) * p,
                       indexing="ij")  # fmt: skip
    for height in (0.0, 40.0):
        points = np.stack([np.full(x.size, height), y.ravel(), x.ravel(), np.ones(x.size)], 1)
        zyx = (points @ twin_nxct.map_to_xct.T)[:, :3]
        index = zyx / volumes.xray_voxel_um + (np.asarray(volumes.xray.shape) - 1) / 2
        inside = np.all((index >= 0) & (index <= np.asarray(volumes.xray.shape) - 1), axis=1)
        expected = ndimage.map_coordinates(volumes.xray, index.T, order=1).reshape(ny, nx)
        plane = _plane(twin, twin_nxct, height)
        np.testing.assert_allclose(plane.ravel()[inside], expected.ravel()[inside], atol=1e-7)
        assert np.isnan(plane.ravel()[~inside]).all()


@pytest.fixture(scope="module")
def dossiers(twin: Twin, twin_nxct: TwinNXCT):
    plane = _plane(twin, twin_nxct)
    trace = trace_spiral(np.nan_to_num(plane), find_cell(np.nan_to_num(plane)), twin.pixel_size_um)
    linked = link_to_bends(twin.agglomerates, twin_nxct.bends, twin_nxct.map_to_xct)
    maps = {
        "xray": plane,
        "saxs_intensity": twin.saxs_intensity,
        "d_star_nm": twin.true_dstar_nm,
        "rgb": np.stack([plane / np.nanmax(plane)] * 3, axis=-1),
    }
    volumes = twin_nxct.volumes
    found = defect_dossiers(
        maps, twin.pixel_size_um, trace, select_defects(linked, 2),
        xray=volumes.xray, xray_voxel_um=volumes.xray_voxel_um,
    )  # fmt: skip
    return linked, found


def test_every_case_b_and_the_largest_case_a_get_a_dossier(dossiers) -> None:
    linked, found = dossiers
    ids = [int(d.defect["id"]) for d in found]
    case_b = set(linked[linked.case == "B"].id)
    largest_a = set(linked[linked.case == "A"].nlargest(2, "equivalent_diameter_um").id)
    assert set(ids) == case_b | largest_a
    for dossier in found:
        assert (dossier.bend is not None) == (dossier.defect["case"] == "B")


def test_the_cutout_is_centred_on_the_defect_and_its_profile_crosses_it(dossiers) -> None:
    """Around the defect (one diameter either way) the SAXS cutout's bright blob (over half
    its maximum, the part holding the defect's centre) is centred on it, within 1.5 pixels
    along the arc and across (a brighter agglomerate may lie elsewhere in the cutout; a
    large agglomerate's silicon is a plateau, whose brightest pixel may sit anywhere on it:
    defect 24, 78 um across, reads within 2 % from -94 to -52 um of depth), and its profile
    across the layer peaks at the defect's depth: the agglomerate is the brightest silicon
    on that line."""
    _, found = dossiers
    for dossier in found:
        step = dossier.arc_axis_um[1] - dossier.arc_axis_um[0]  # one map pixel
        reach = float(dossier.defect["equivalent_diameter_um"])
        rows = np.abs(dossier.depth_axis_um - dossier.depth_um) <= reach
        columns = np.abs(dossier.arc_axis_um - dossier.arc_um) <= reach
        saxs = np.nan_to_num(dossier.panels["saxs_intensity"][np.ix_(rows, columns)])
        blobs, _ = ndimage.label(saxs >= 0.5 * saxs.max())
        depth, arc = dossier.depth_axis_um[rows], dossier.arc_axis_um[columns]
        own = blobs[
            np.argmin(np.abs(depth - dossier.depth_um)), np.argmin(np.abs(arc - dossier.arc_um))
        ]
        assert own > 0, "the defect's centre is not bright"
        weights = np.where(blobs == own, saxs, 0.0)
        assert abs(weights.sum(axis=0) @ arc / weights.sum() - dossier.arc_um) <= 1.5 * step
        assert abs(weights.sum(axis=1) @ depth / weights.sum() - dossier.depth_um) <= 1.5 * step
        profile = dossier.profiles["saxs_intensity"]
        peak = dossier.depth_axis_um[np.nanargmax(profile)]
        assert abs(peak - dossier.depth_um) <= 1.5 * step
        assert dossier.panels["rgb"].shape == (*dossier.panels["xray"].shape, 3)


def test_the_bend_views_pass_through_the_defect(dossiers) -> None:
    """The three slices meet at the voxel nearest the defect (the driver test draws them)."""
    _, found = dossiers
    dossier = next(d for d in found if d.bend is not None)
    bend = dossier.bend
    iz, iy, ix = (
        int(np.flatnonzero(axis == through)[0])
        for axis, through in zip(
            (bend.z_um, bend.y_um, bend.x_um), bend.through_zyx_um, strict=True
        )
    )
    half_voxel = (bend.z_um[1] - bend.z_um[0]) / 2
    assert np.all(np.abs(np.subtract(bend.through_zyx_um, bend.centre_zyx_um)) <= half_voxel)
    assert bend.axial[iy, ix] == bend.along_x[iz, ix] == bend.along_y[iz, iy]


def test_the_vertical_cut_holds_the_slice(twin: Twin, twin_nxct: TwinNXCT, tmp_path) -> None:
    """The cut's row at z = 0 is the X-ray plane at the map's centre row (y = 0)."""
    volumes = twin_nxct.volumes
    width = twin.shape[1] * twin.pixel_size_um
    cut, x_um, z_um = vertical_cut(volumes.xray, volumes.xray_voxel_um, twin_nxct.map_to_xct, width)
    plane = volume_on_map(volumes.xray, volumes.xray_voxel_um, twin_nxct.map_to_xct,
                          (1, x_um.size), volumes.xray_voxel_um)  # fmt: skip
    np.testing.assert_allclose(cut[z_um.size // 2], plane[0], atol=1e-7, equal_nan=True)
    assert np.isfinite(cut).any() and np.isnan(cut[0]).all()  # the volume ends below
    figure = slice_in_volume_figure(cut, x_um, z_um, np.array([0.0, 20.0]), np.array([1, 0.5]),
                                    slice_height_um=float(twin_nxct.map_to_xct[0, 3]))  # fmt: skip
    assert save_png(figure, tmp_path / "cut.png").read_bytes()[:4] == b"\x89PNG"


def test_a_defect_beyond_the_cutouts_depth_gets_no_dossier(twin: Twin, twin_nxct: TwinNXCT) -> None:
    """Defect 5 (37 um, case A, on the anode inside the first turn) lies 283 um inside the
    first traced turn of the X-ray plane, beyond the cutouts' depth (half a 258 um pitch):
    its dossier cut out that turn, not the defect (its profile did not cross it), exit 0.
    Every dossier now holds its defect within its cutouts' depth, and that one gets none."""
    plane = np.nan_to_num(_plane(twin, twin_nxct))
    trace = trace_spiral(plane, find_cell(plane), twin.pixel_size_um)
    linked = link_to_bends(twin.agglomerates, twin_nxct.bends, twin_nxct.map_to_xct)
    found = defect_dossiers({"saxs_intensity": twin.saxs_intensity}, twin.pixel_size_um, trace,
                            linked)  # fmt: skip
    for dossier in found:
        assert dossier.depth_axis_um[0] <= dossier.depth_um <= dossier.depth_axis_um[-1]
    assert {int(d.defect["id"]) for d in found} == set(linked.id) - {5}


def test_a_trace_of_another_grid_is_refused(twin: Twin, twin_nxct: TwinNXCT) -> None:
    """A trace of the X-ray plane at half the map's pixels was read on the map grid: its
    centre and radii (pixels) landed elsewhere, 3 of 7 dossiers were made, one 44 um off its
    defect's depth, no error. It is refused, naming the two pixel sizes."""
    volumes, p = twin_nxct.volumes, twin.pixel_size_um
    shape = (2 * twin.shape[0], 2 * twin.shape[1])
    plane = np.nan_to_num(
        volume_on_map(volumes.xray, volumes.xray_voxel_um, twin_nxct.map_to_xct, shape, p / 2)
    )
    trace = trace_spiral(plane, find_cell(plane), p / 2)
    linked = link_to_bends(twin.agglomerates, twin_nxct.bends, twin_nxct.map_to_xct)
    with pytest.raises(ValueError, match=f"trace is on {p / 2:g} um pixels, the map on {p:g}"):
        defect_dossiers({"saxs_intensity": twin.saxs_intensity}, p, trace, linked)

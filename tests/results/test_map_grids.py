"""WAXS and SAXS maps of different grids: resampled onto one grid when they overlap, refused
with a message otherwise."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.conventions import pixel_centres_um
from jellyroll.results import Map, MapSet, RunFileError, read_map_set, write_map_set


def _saxs_set(n: int, pixel_um: float) -> MapSet:
    """A SAXS run's map set on an n x n grid: its intensity only (what the WAXS set lacks)."""
    axis = pixel_centres_um(n, pixel_um)
    maps = {"saxs_intensity": Map(np.ones((n, n), np.float32), "a.u. x 1/angstrom")}
    return MapSet(maps, axis, axis, [])


def _ramp_set(n: int, pixel_um: float, shift_um: float = 0.0) -> MapSet:
    """A map set on an n x n grid: a plane 3 x + 2 y (um) and a label map of x's sign."""
    axis = pixel_centres_um(n, pixel_um) + shift_um
    y, x = np.meshgrid(axis, axis, indexing="ij")
    maps = {
        "lic6": Map((3 * x + 2 * y).astype(np.float32), "a.u."),
        "graphite_label": Map((x > 0).astype(np.int8), "0 left, 1 right"),
    }
    return MapSet(maps, axis, axis, ["waxs note"])


@settings(max_examples=25, deadline=None)
@given(pixel_um=st.floats(12.0, 40.0), shift_um=st.floats(-60.0, 60.0))
def test_other_grids_are_resampled_exactly_for_a_plane(pixel_um: float, shift_um: float) -> None:
    saxs = _saxs_set(40, 20.0)
    waxs = _ramp_set(round(800 / pixel_um) + 4, pixel_um, shift_um)
    joined = saxs.joined(waxs, source="waxs_run.h5")
    assert joined.x_um is saxs.x_um and "waxs note" in joined.notes
    assert any("resampled" in note for note in joined.notes)
    y, x = np.meshgrid(saxs.y_um, saxs.x_um, indexing="ij")
    inside = np.isfinite(joined["lic6"])
    hull = (x >= waxs.x_um[0]) & (x <= waxs.x_um[-1]) & (y >= waxs.y_um[0]) & (y <= waxs.y_um[-1])
    # bilinear interpolation reproduces a plane between the WAXS pixel centres (float32
    # values up to ~4000); the outer half pixel takes the edge pixel's value
    assert np.all(inside[hull])
    np.testing.assert_allclose(joined["lic6"][hull], (3 * x + 2 * y)[hull], atol=2e-3)
    border = inside & ~hull
    assert np.all(np.abs(joined["lic6"][border] - (3 * x + 2 * y)[border]) <= 5 * pixel_um / 2)
    label = joined["graphite_label"]
    assert label.dtype == np.int8
    # nearest neighbour: right except within half a WAXS pixel of the x = 0 edge
    clear = inside & (np.abs(x) > pixel_um)
    assert np.array_equal(label[clear], (x > 0)[clear].astype(np.int8))
    assert np.all(label[~inside] == -1)


def test_a_resampled_map_never_replaces_one_of_the_grids_own() -> None:
    """Both runs with an attenuation (each scan's diode), the WAXS run's on another grid:
    its resampled copy, blurred by the interpolation, replaced the SAXS run's own, and the
    collector was traced on it. The set's own map is kept; maps it lacks are resampled."""
    saxs = _ramp_set(40, 20.0)
    saxs.maps["attenuation"] = Map(np.ones((40, 40), np.float32), "1/cm")
    waxs = _ramp_set(41, 20.0, shift_um=10.0)
    waxs.maps["attenuation"] = Map(np.zeros((41, 41), np.float32), "1/cm")
    joined = saxs.joined(waxs, source="waxs_run.h5")
    assert np.array_equal(joined["attenuation"], saxs["attenuation"])
    assert np.array_equal(joined["lic6"], saxs["lic6"])  # its own too
    assert "graphite_label" in joined and any("resampled" in n for n in joined.notes)


def test_grids_that_barely_overlap_are_refused() -> None:
    with pytest.raises(RunFileError, match=r"waxs_run.h5: .* overlap on \d+%"):
        _ramp_set(40, 20.0).joined(_ramp_set(40, 20.0, shift_um=600.0), source="waxs_run.h5")


def test_a_grid_without_regular_pixels_is_refused() -> None:
    other = _ramp_set(30, 25.0)
    uneven = MapSet(other.maps, other.x_um**3 / 1e4, other.y_um, [])
    with pytest.raises(RunFileError, match="no regular pixel size"):
        _ramp_set(40, 20.0).joined(uneven, source="waxs_run.h5")


def test_the_same_grid_is_joined_as_it_is() -> None:
    saxs = _ramp_set(40, 20.0)
    joined = saxs.joined(_ramp_set(40, 20.0))
    assert np.array_equal(joined["lic6"], saxs["lic6"])
    assert not any("resampled" in note for note in joined.notes)


def _edited_maps(tmp_path, edit):
    """A written map set with ``edit(maps_group)`` applied; read back."""
    run = tmp_path / "maps.h5"
    write_map_set(run, _ramp_set(8, 20.0), {})
    stage = run.with_name("maps.maps.h5")
    with h5py.File(stage, "a") as f:
        edit(f["/entry/maps"])
    return lambda: read_map_set(stage)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # axes in mm: read as um, the cell 1000x too small (diagnose ran for 10+ minutes)
        (lambda g: g["lic6/x_um"].attrs.__setitem__("units", "mm"), r"x_um is in 'mm'"),
        # a flipped axis with the data flipped to match mirrored every table and locate
        (lambda g: g["lic6/x_um"].__setitem__(Ellipsis, g["lic6/x_um"][()][::-1]), r"must ascend"),
        # x and y steps unequal: the y spacing was ignored
        (lambda g: g["lic6/y_um"].__setitem__(Ellipsis, 2 * g["lic6/y_um"][()]), r"square pixels"),
        # axes off 0 (a map cropped by another tool): diagnose and link placed everything on
        # the centred grid, every agglomerate and the slice's dossiers off by the offset
        (
            lambda g: g["lic6/x_um"].__setitem__(Ellipsis, g["lic6/x_um"][()] + 1000.0),
            r"x_um is centred on 1000 um, not 0",
        ),
    ],
)
def test_map_axes_that_do_not_say_um_pixel_centres_are_refused(tmp_path, edit, message) -> None:
    read = _edited_maps(tmp_path, edit)
    with pytest.raises(RunFileError, match=message):
        read()


def test_a_map_whose_axes_do_not_fit_it_is_refused(tmp_path) -> None:
    def shorter(group: h5py.Group) -> None:
        del group["lic6/x_um"]
        group["lic6/x_um"] = pixel_centres_um(5, 20.0)

    with pytest.raises(RunFileError, match=r"lic6/data has shape \(8, 8\).*5 values"):
        _edited_maps(tmp_path, shorter)()


def test_a_map_of_the_same_shape_on_another_grid_is_refused(tmp_path) -> None:
    """A map pasted in from a scan on 40 um pixels (same 8 x 8 shape): the set took the last
    map's axes, and every map was read on 20 um pixels, exit 0."""

    def coarser(group: h5py.Group) -> None:
        for name in ("x_um", "y_um"):
            group[f"lic6/{name}"][...] = pixel_centres_um(8, 40.0)

    with pytest.raises(RunFileError, match=r"/entry/maps/lic6 lies on other x_um / y_um"):
        _edited_maps(tmp_path, coarser)()


def _d_star_set(tmp_path, units: str | None) -> MapSet:
    """A map set whose d* map says ``units`` (no attribute: None), read back."""
    maps = _ramp_set(8, 20.0)
    maps.maps["d_star_nm"] = Map(np.full((8, 8), 120.0, np.float32), "nm")
    write_map_set(tmp_path / "d.h5", maps, {})
    with h5py.File(tmp_path / "d.maps.h5", "a") as f:
        attrs = f["/entry/maps/d_star_nm/data"].attrs
        if units is None:
            del attrs["units"]
        else:
            attrs["units"] = units
    return read_map_set(tmp_path / "d.maps.h5")


@pytest.mark.parametrize("units", ["angstrom", "um", "A"])
def test_a_d_star_map_not_in_nm_is_refused(tmp_path, units: str) -> None:
    """d* of 12 nm written as 120 angstrom was read as 120 nm (median d* in the diagnosis
    10 times too large), exit 0."""
    with pytest.raises(RunFileError, match=rf"d_star_nm/data is in '{units}'.*in nm"):
        _d_star_set(tmp_path, units)


@pytest.mark.parametrize("units", ["nm", "nanometre", None])
def test_a_d_star_map_in_nm_or_without_units_reads_as_written(tmp_path, units) -> None:
    # the values come back as stored (float32 120.0, exact)
    assert np.all(_d_star_set(tmp_path, units)["d_star_nm"] == 120.0)


def test_an_unsigned_label_map_resampled_says_none_outside() -> None:
    """A uint8 label map (another program's map set) on another grid: the pixels outside it,
    -1 (none), wrapped to 255, a label the map's names do not hold."""
    saxs = _saxs_set(40, 20.0)
    waxs = _ramp_set(30, 20.0, shift_um=100.0)
    waxs.maps["graphite_label"] = Map(waxs["graphite_label"].astype(np.uint8), "0 left, 1 right")
    label = saxs.joined(waxs, source="waxs_run.h5")["graphite_label"]
    assert label.dtype.kind == "i" and set(np.unique(label)) == {-1, 0, 1}

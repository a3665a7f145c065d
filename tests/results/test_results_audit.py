"""Run-file readers given files other programs wrote: each input here was once read into a
wrong number with exit 0; now it is read right or refused naming the file and dataset."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from jellyroll.conventions import pixel_centres_um
from jellyroll.results import (
    RunFileError,
    read_map,
    read_map_set,
    read_reconstruction,
    read_sinogram,
)
from jellyroll.results.location import (
    PARAMETERS,
    LocationResult,
    read_location,
    write_location_group,
)
from jellyroll.results.nxct import create_volume_datasets, read_nxct, write_registration_group


def _nxdata(parent: h5py.Group, name: str, data: np.ndarray, axes: list, order: list) -> None:
    """An NXdata group as another program writes it: ``axes`` (name, values, units),
    ``@axes`` = ``order`` (the data's dimension order)."""
    group = parent.create_group(name)
    group.attrs.update({"NX_class": "NXdata", "signal": "data", "axes": order})
    group["data"] = data
    for axis, values, units in axes:
        group[axis] = values
        group[axis].attrs["units"] = units


@pytest.mark.parametrize("order", [["x_um", "y_um"], "x_um:y_um"])
def test_a_map_stored_x_y_as_its_axes_say_is_read_y_x(tmp_path: Path, order) -> None:
    """A square map stored (x, y) with ``@axes = [x_um, y_um]`` (NeXus order) was read as
    (y, x): the plane 3 x + 2 y came back as 3 y + 2 x, the top-right pixel -30 instead of
    30, exit 0; so did :func:`read_map`, which read the dataset as it was stored. Values
    are float32 copies, compared exactly."""
    axis = pixel_centres_um(4, 20.0)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    truth = (3 * x + 2 * y).astype(np.float32)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        axes = [("x_um", axis, "um"), ("y_um", axis, "um")]
        _nxdata(f.create_group("entry/maps"), "lic6", truth.T, axes, order)
    assert np.array_equal(read_map_set(tmp_path / "m.h5")["lic6"], truth)
    assert np.array_equal(read_map(tmp_path / "m.h5", "lic6"), truth)


def test_a_map_stored_x_y_of_another_shape_is_read_y_x(tmp_path: Path) -> None:
    """A 3 x 5 (y, x) map stored (x, y) with ``@axes = [x_um, y_um]`` was refused as not
    fitting its axes; it fits them in the order @axes gives."""
    x, y = pixel_centres_um(5, 10.0), pixel_centres_um(3, 10.0)
    truth = np.arange(15, dtype=np.float32).reshape(3, 5)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        axes = [("x_um", x, "um"), ("y_um", y, "um")]
        _nxdata(f.create_group("entry/maps"), "lic6", truth.T, axes, ["x_um", "y_um"])
    maps = read_map_set(tmp_path / "m.h5")
    assert np.array_equal(maps["lic6"], truth) and maps.x_um.size == 5


def test_a_reconstruction_stored_x_y_q_is_refused(tmp_path: Path) -> None:
    """A 4 x 4 x 3 cube stored (x, y, q) with ``@axes = [x_um, y_um, q]`` was read as
    (y, x, q): every map transposed, exit 0."""
    axis = pixel_centres_um(4, 20.0)
    cube = np.ones((4, 4, 3), np.float32)
    with h5py.File(tmp_path / "r.h5", "w") as f:
        axes = [("x_um", axis, "um"), ("y_um", axis, "um"), ("q", [1.0, 1.5, 2.0], "1/angstrom")]
        _nxdata(f.create_group("entry"), "reconstruction", cube, axes, ["x_um", "y_um", "q"])
    with pytest.raises(RunFileError, match=r"reconstruction@axes says .*\(x_um, y_um, q\)"):
        read_reconstruction(tmp_path / "r.h5")


def test_a_sinogram_stored_translation_first_is_refused(tmp_path: Path) -> None:
    """A sinogram with as many angles as translations stored (translation, angle, q) as its
    ``@axes`` say was read as (angle, translation, q), exit 0."""
    with h5py.File(tmp_path / "s.h5", "w") as f:
        axes = [
            ("rotation_angle", np.linspace(0, 135, 4), "deg"),
            ("translation", np.linspace(-0.015, 0.015, 4), "mm"),
            ("q", [1.0, 1.5, 2.0], "1/angstrom"),
        ]
        order = ["translation", "rotation_angle", "q"]
        _nxdata(f.create_group("entry"), "sinogram", np.ones((4, 4, 3)), axes, order)
        f["entry/sinogram/errors"] = np.ones((4, 4, 3))
    with pytest.raises(RunFileError, match=r"sinogram@axes says .*\(translation, rotation_angle"):
        read_sinogram(tmp_path / "s.h5")


def test_nxct_volume_axes_in_mm_give_the_voxel_in_um(tmp_path: Path) -> None:
    """A fused volume of 5 um voxels whose axes another program wrote in mm (@units mm):
    the voxel was read as 0.005 um, 1000 times too small, exit 0. float64 of 5 um / 1000 *
    1000: equal to 1e-9 relative."""
    path = tmp_path / "n.h5"
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        write_registration_group(entry, np.eye(4), metric="m", metric_value=0.5, seconds=1.0)
        create_volume_datasets(entry, (3, 4, 4), 5.0, grid="xct", label_names=None, windows={})
        for name in ("z_um", "y_um", "x_um"):
            entry["fused"][name][...] = entry["fused"][name][()] / 1000
            entry["fused"][name].attrs["units"] = "mm"
    assert read_nxct(path).voxel_um == pytest.approx(5.0, rel=1e-9)
    with h5py.File(path, "a") as f:
        f["entry/fused/z_um"].attrs["units"] = "px"
    with pytest.raises(ValueError, match=r"fused/z_um is in 'px', not a length"):
        read_nxct(path)


def _location_file(path: Path) -> Path:
    """A location file: height 120 um, rotation 30 deg, on a 4 x 4 map grid."""
    parameters = dict.fromkeys(PARAMETERS, 0.0) | {"height_um": 120.0, "rotation_deg": 30.0}
    result = LocationResult(
        np.eye(4), 120.0, parameters, 0.9, np.array([100.0, 120.0]), np.array([0.5, 0.9]),
        "attenuation", np.empty(0), height_interval_um=(110.0, 130.0),
    )  # fmt: skip
    axis = pixel_centres_um(4, 20.0)
    with h5py.File(path, "w") as f:
        write_location_group(f.create_group("entry"), result, axis, axis, {})
    return path


def test_a_location_in_mm_and_rad_is_read_in_um_and_deg(tmp_path: Path) -> None:
    """Heights another program wrote in mm and the rotation in rad were read as um and deg:
    z 0.12 um instead of 120, rotation 0.52 deg instead of 30, exit 0. float64 unit
    conversions: 1e-9 relative."""
    path = _location_file(tmp_path / "loc.h5")
    with h5py.File(path, "a") as f:
        group = f["entry/location"]
        for name in ("z_um", "height_um", "height_interval_um", "score/height_um"):
            group[name][...] = group[name][()] / 1000
            group[name].attrs["units"] = "mm"
        group["rotation_deg"][...] = np.deg2rad(30.0)
        group["rotation_deg"].attrs["units"] = "rad"
    found = read_location(path)
    assert found.z_um == pytest.approx(120.0, rel=1e-9)
    assert found.parameters["height_um"] == pytest.approx(120.0, rel=1e-9)
    assert found.parameters["rotation_deg"] == pytest.approx(30.0, rel=1e-9)
    np.testing.assert_allclose(found.height_interval_um, (110.0, 130.0), rtol=1e-9)
    np.testing.assert_allclose(found.profile_height_um, [100.0, 120.0], rtol=1e-9)


def test_a_location_of_another_unit_or_matrix_shape_is_refused(tmp_path: Path) -> None:
    path = _location_file(tmp_path / "loc.h5")
    with h5py.File(path, "a") as f:
        f["entry/location/z_um"].attrs["units"] = "counts"
    with pytest.raises(RunFileError, match=r"location/z_um is in 'counts'"):
        read_location(path)
    path = _location_file(tmp_path / "loc2.h5")
    with h5py.File(path, "a") as f:
        del f["entry/location/map_to_xct"], f["entry/location/swaxs_to_xct"]
        f["entry/location/swaxs_to_xct"] = np.eye(3)
    with pytest.raises(RunFileError, match=r"swaxs_to_xct has shape \(3, 3\), not \(4, 4\)"):
        read_location(path)


def test_a_reconstruction_unit_written_as_bytes_is_read_as_text(tmp_path: Path) -> None:
    """A ``@units`` attribute written as bytes was read with ``str()``: "b'counts / um'",
    a unit no later stage could match."""
    axis = pixel_centres_um(4, 20.0)
    with h5py.File(tmp_path / "r.h5", "w") as f:
        axes = [("y_um", axis, "um"), ("x_um", axis, "um"), ("q", [1.0, 1.5, 2.0], "1/angstrom")]
        _nxdata(f.create_group("entry"), "reconstruction", np.ones((4, 4, 3)), axes,
                ["y_um", "x_um", "q"])  # fmt: skip
        f["entry/reconstruction/data"].attrs["units"] = np.bytes_(b"counts / um")
    assert read_reconstruction(tmp_path / "r.h5").units == "counts / um"


@pytest.mark.parametrize(("units", "factor"), [("1/mm", 1e-3), ("cm^-1", 1e-4), ("", 1.0)])
def test_an_attenuation_map_in_another_inverse_length_is_read_in_1_per_um(
    tmp_path: Path, units: str, factor: float
) -> None:
    """An attenuation map another program wrote in 1/mm was read as 1/um: 1000 times too
    large, exit 0 (only d* had its unit checked). Converted; without a unit, 1/um."""
    axis = pixel_centres_um(4, 20.0)
    values = np.arange(16.0).reshape(4, 4)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        maps = f.create_group("entry/maps")
        _nxdata(maps, "attenuation", values, [("x_um", axis, "um"), ("y_um", axis, "um")],
                ["y_um", "x_um"])  # fmt: skip
        maps["attenuation/data"].attrs["units"] = units
    read = read_map_set(tmp_path / "m.h5")
    assert (
        np.allclose(read["attenuation"], values * factor)
        and read.maps["attenuation"].units == "1/um"
    )


def test_an_attenuation_map_in_another_quantity_is_refused(tmp_path: Path) -> None:
    axis = pixel_centres_um(4, 20.0)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        maps = f.create_group("entry/maps")
        _nxdata(maps, "attenuation", np.ones((4, 4)), [("x_um", axis, "um"), ("y_um", axis, "um")],
                ["y_um", "x_um"])  # fmt: skip
        maps["attenuation/data"].attrs["units"] = "counts"
    with pytest.raises(RunFileError, match="not an inverse length"):
        read_map_set(tmp_path / "m.h5")


def test_phase_maps_of_one_family_in_different_units_are_refused(tmp_path: Path) -> None:
    """lic6 integrated per 1/nm beside lic12 per 1/angstrom: the graphite shares compare
    their sums, and lic6 weighed 10 times its share, exit 0."""
    axis = pixel_centres_um(4, 20.0)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        maps = f.create_group("entry/maps")
        axes = [("x_um", axis, "um"), ("y_um", axis, "um")]
        for name, units in (("lic6", "counts x 1/nm"), ("lic12", "counts x 1/angstrom")):
            _nxdata(maps, name, np.ones((4, 4), np.float32), axes, ["y_um", "x_um"])
            maps[f"{name}/data"].attrs["units"] = units
    with pytest.raises(RunFileError, match=r"phase maps .* different units .*lic6 'counts x"):
        read_map_set(tmp_path / "m.h5")

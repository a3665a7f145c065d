"""The run file: one file per stage joined by an index, keys inside each file, stale stages
deleted, readers that check the contract of SPEC section 6."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from jellyroll.results import (
    Map,
    MapSet,
    Reconstruction,
    RunFileError,
    Sinogram,
    read_map_set,
    read_reconstruction,
    read_sinogram,
    recorded_key,
    run_stage_key,
    stage_file,
    write_map_set,
    write_reconstruction,
    write_sinogram,
)
from jellyroll.results.store import linked_stages


def _sinogram(q_units: str = "1/angstrom") -> Sinogram:
    rng = np.random.default_rng(0)
    data = rng.random((4, 6, 5)).astype(np.float32)
    return Sinogram(
        data=data,
        errors=0.1 * data,
        rotation_angle_deg=np.array([0.0, 45.0, 90.0, 135.0]),
        translation_mm=np.linspace(-0.025, 0.025, 6),
        q_A=np.linspace(1.0, 2.0, 5),
        rotation_centre_mm=0.0,
        q_units=q_units,
    )


def _recon(q_units: str = "1/angstrom") -> Reconstruction:
    axis = (np.arange(6) - 2.5) * 10.0
    return Reconstruction(
        np.ones((6, 6, 5), np.float32), np.linspace(1.0, 2.0, 5), axis, axis, q_units=q_units
    )


def _maps() -> MapSet:
    axis = (np.arange(6) - 2.5) * 10.0
    return MapSet({"lic6": Map(np.ones((6, 6)), "fraction")}, axis, axis, ["a note"], "lic6")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    path = tmp_path / "scan_run.h5"
    write_sinogram(path, _sinogram(), {"stage": "test"})
    write_reconstruction(path, _recon(), {})
    write_map_set(path, _maps(), {})
    return path


def test_the_index_reads_like_one_file(run: Path) -> None:
    with h5py.File(run, "r") as f:
        assert f["/entry/sinogram/data"].shape == (4, 6, 5)
        assert f["/entry/reconstruction/data"].shape == (6, 6, 5)
        assert f["/entry/maps/lic6/data"].shape == (6, 6)
        assert set(f["/entry/provenance"]) == {"reduce", "reconstruction", "maps"}
        assert f.attrs["default"] == "entry" and f["entry"].attrs["default"] == "maps"
    maps = read_map_set(run)
    assert maps.notes == ["a note"] and maps.default == "lic6"
    assert np.array_equal(read_sinogram(run).data, _sinogram().data)


def test_each_stage_file_records_its_key_and_upstream(run: Path) -> None:
    keys = [run_stage_key(run, stage) for stage in ("reduce", "reconstruct", "maps")]
    assert all(keys) and len(set(keys)) == 3
    with h5py.File(stage_file(run, "maps"), "r") as f:
        assert f.attrs["jellyroll_upstream"] == keys[1]


def test_a_new_reconstruction_deletes_the_stale_maps(run: Path) -> None:
    write_reconstruction(run, _recon(), {})
    assert not stage_file(run, "maps").exists()
    with h5py.File(run, "r") as f:
        assert "maps" not in f["entry"] and f["entry"].attrs["default"] == "reconstruction"
    with pytest.raises(RunFileError, match="jellyroll maps"):
        read_map_set(run)


def test_a_new_sinogram_deletes_every_later_stage(run: Path) -> None:
    write_sinogram(run, _sinogram(), {})
    assert not stage_file(run, "reconstruct").exists() and not stage_file(run, "maps").exists()
    assert [s.stage for s in linked_stages(run)] == ["reduce"]


def test_a_stage_file_of_another_upstream_is_not_linked(run: Path, tmp_path: Path) -> None:
    """A maps file copied in from another run (its upstream key is not this reconstruction's)
    is not part of the chain: the index does not show it."""
    other = tmp_path / "other_run.h5"
    write_sinogram(other, _sinogram(), {})
    write_reconstruction(other, _recon(), {})
    write_map_set(other, _maps(), {})
    write_reconstruction(run, _recon(), {})
    shutil.copy(stage_file(other, "maps"), stage_file(run, "maps"))
    assert [s.stage for s in linked_stages(run)] == ["reduce", "reconstruct"]


def test_the_folder_can_move(run: Path, tmp_path_factory) -> None:
    """The links are relative to the index: a copied folder reads without the original."""
    moved = tmp_path_factory.mktemp("moved") / "copy"
    shutil.copytree(run.parent, moved)
    for path in run.parent.glob("scan_run*"):
        path.unlink()
    with h5py.File(moved / run.name, "r") as f:
        assert f["/entry/maps/lic6/data"].shape == (6, 6)


def test_an_index_moved_without_its_stage_files_is_refused(
    run: Path, tmp_path_factory, monkeypatch
) -> None:
    """An index copied alone into a folder holding another run's stage files of the same
    name: HDF5 followed its links into those (from the working folder), and locate placed
    the other map, exit 0."""
    alone = tmp_path_factory.mktemp("alone")
    shutil.copy(run, alone / run.name)
    monkeypatch.chdir(run.parent)  # the original stage files sit in the working folder
    with pytest.raises(
        RunFileError, match=r"scan_run\.h5: its \w+ lives in scan_run\.\w+\.h5, which is not"
    ):
        read_map_set(alone / run.name)


def test_an_index_copied_under_another_name_is_refused(run: Path) -> None:
    """cp RUN.h5 RUN2.h5: reconstruct RUN2.h5 read RUN's sinogram, computed everything, then
    stopped on RUN2.sinogram.h5 missing. Now refused before any work."""
    copy = run.with_name("other_run.h5")
    shutil.copy(run, copy)
    with pytest.raises(RunFileError, match=r"linked to scan_run\.\w+\.h5, not other_run\."):
        read_map_set(copy)


def test_keys_change_with_content_written_by_hand(run: Path) -> None:
    before = recorded_key(stage_file(run, "reconstruct"))
    write_reconstruction(run, _recon(), {})
    assert recorded_key(stage_file(run, "reconstruct")) != before


def test_a_radial_axis_not_in_inverse_angstrom_is_refused_by_the_maps_stage(
    tmp_path: Path,
) -> None:
    from jellyroll.maps import run_maps

    path = tmp_path / "deg_run.h5"
    write_sinogram(path, _sinogram("deg"), {})
    write_reconstruction(path, _recon("deg"), {})
    assert read_reconstruction(path).q_units == "deg"
    with pytest.raises(RunFileError, match="--unit q_A\\^-1"):
        run_maps(path)
    # a reconstruction made in Python with q in 1/A named otherwise is no such axis
    for name in ("A^-1", "1/\u00c5", "1/angstrom"):
        _recon(name).require_q_in_inverse_angstrom("made in Python")


@pytest.mark.parametrize(("units", "factor"), [("1/nm", 0.1), ("A^-1", 1.0), ("1/\u00c5", 1.0)])
def test_q_in_any_unit_of_q_is_read_in_inverse_angstrom(
    tmp_path: Path, units: str, factor: float
) -> None:
    """q in 1/nm was refused ("reduce again"), and A^-1 spelled otherwise too."""
    path = tmp_path / "run.h5"
    write_sinogram(path, _sinogram(units), {})
    write_reconstruction(path, _recon(units), {})
    for read in (read_sinogram, read_reconstruction):
        found = read(path)
        assert found.q_units == "1/angstrom"
        np.testing.assert_allclose(found.q_A, factor * np.linspace(1.0, 2.0, 5))


def test_a_q_axis_without_units_is_in_inverse_angstrom(tmp_path: Path) -> None:
    """SPEC section 6 fixes the sinogram's q in A^-1, as its angles in degrees: a file of
    another program that writes no @units follows that contract."""
    path = tmp_path / "run.h5"
    write_sinogram(path, _sinogram(), {})
    write_reconstruction(path, _recon(), {})
    stages = {"sinogram": "reduce", "reconstruction": "reconstruct"}
    for group, read in (("sinogram", read_sinogram), ("reconstruction", read_reconstruction)):
        with h5py.File(stage_file(path, stages[group]), "r+") as f:
            del f[f"entry/{group}/q"].attrs["units"]
        found = read(path)
        assert found.q_units == "1/angstrom"
        np.testing.assert_array_equal(found.q_A, np.linspace(1.0, 2.0, 5))


@pytest.mark.parametrize(("name", "shape"), [("x_um", (5,)), ("q", (4,)), ("attenuation", (6, 5))])
def test_a_reconstruction_whose_axes_disagree_with_its_data_is_refused(
    tmp_path: Path, name: str, shape: tuple[int, ...]
) -> None:
    """A transposed attenuation map or a short x axis were read as they were: `jellyroll
    maps` wrote maps that every later reader refused, blaming the maps file."""
    path = tmp_path / "run.h5"
    write_sinogram(path, _sinogram(), {})
    recon = _recon()
    write_reconstruction(path, replace(recon, attenuation=np.ones((6, 6), np.float32)), {})
    with h5py.File(stage_file(path, "reconstruct"), "r+") as f:
        attrs = dict(f[f"entry/reconstruction/{name}"].attrs)
        del f[f"entry/reconstruction/{name}"]
        f[f"entry/reconstruction/{name}"] = np.ones(shape)
        f[f"entry/reconstruction/{name}"].attrs.update(attrs)
    with pytest.raises(RunFileError, match=rf"/entry/reconstruction/{name} has shape"):
        read_reconstruction(path)


def test_a_reconstruction_whose_axes_are_in_mm_is_refused(run: Path) -> None:
    """x_um / y_um written in mm by another program: the maps were written on 0.01 um
    pixels (labelled um), every size downstream 1000 times too small, exit 0."""
    with h5py.File(stage_file(run, "reconstruct"), "a") as f:
        for name in ("x_um", "y_um"):
            f[f"/entry/reconstruction/{name}"][...] /= 1000.0
            f[f"/entry/reconstruction/{name}"].attrs["units"] = "mm"
    with pytest.raises(RunFileError, match=r"reconstruction/x_um is in 'mm'.*um"):
        read_reconstruction(run)


def _attenuation_read_as(tmp_path: Path, units: str | None) -> np.ndarray:
    """A reconstruction whose attenuation (2 everywhere) says ``units``, read back."""
    path = tmp_path / "mu_run.h5"
    write_reconstruction(path, replace(_recon(), attenuation=np.full((6, 6), 2.0)), {})
    with h5py.File(stage_file(path, "reconstruct"), "a") as f:
        attrs = f["/entry/reconstruction/attenuation"].attrs
        if units is None:
            del attrs["units"]
        else:
            attrs["units"] = units
    return read_reconstruction(stage_file(path, "reconstruct")).attenuation


@pytest.mark.parametrize(
    ("units", "per_um"),
    [("1/cm", 2e-4), ("mm^-1", 2e-3), ("cm-1", 2e-4), ("1/um", 2.0), (None, 2.0)],
)
def test_an_attenuation_in_another_inverse_length_is_read_in_per_um(
    tmp_path: Path, units: str | None, per_um: float
) -> None:
    """2 1/cm (another program's reconstruction) became the attenuation map as 2 1/um,
    10^4 times too large, exit 0."""
    # float32 values: 1e-6 relative
    np.testing.assert_allclose(_attenuation_read_as(tmp_path, units), per_um, rtol=1e-6)


@pytest.mark.parametrize("units", ["mm", "arb. units"])
def test_an_attenuation_not_in_an_inverse_length_is_refused(tmp_path: Path, units: str) -> None:
    with pytest.raises(RunFileError, match=rf"attenuation is in '{units}', not an inverse length"):
        _attenuation_read_as(tmp_path, units)


def test_maps_of_a_replaced_reconstruction_are_refused(run: Path, tmp_path: Path) -> None:
    """A reconstruction redone elsewhere and copied over the run's own: the index still
    linked the old maps, read beside the new reconstruction, exit 0."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    for path in run.parent.glob("scan_run*.h5"):
        shutil.copy(path, other)
    write_reconstruction(other / run.name, replace(_recon(), data=np.zeros((6, 6, 5))), {})
    shutil.copy(stage_file(other / run.name, "reconstruct"), stage_file(run, "reconstruct"))
    assert np.all(read_reconstruction(run).data == 0)  # the stage the maps stage reads
    stale = r"/entry/maps rests on scan_run\.maps\.h5.*jellyroll maps"
    with pytest.raises(RunFileError, match=stale):
        read_map_set(run)
    write_map_set(run, _maps(), {})  # the maps made again: read as they are
    assert read_map_set(run)["lic6"].shape == (6, 6)


def test_readers_of_other_results_name_them_as_what_they_are(tmp_path: Path) -> None:
    """An unreadable NXCT, location or results file was "not a readable HDF5 run file", a
    missing one to be made with `jellyroll reduce`."""
    from jellyroll.locate.link_run import read_placement
    from jellyroll.results import read_diagnosis
    from jellyroll.results.nxct import read_nxct

    garbage = tmp_path / "garbage.h5"
    garbage.write_text("not HDF5")
    for reader, what in (
        (read_nxct, "NXCT file"),
        (read_placement, "location file"),
        (read_diagnosis, "results file"),
    ):
        with pytest.raises(RunFileError, match=f"not a readable HDF5 {what}"):
            reader(garbage)
    with pytest.raises(RunFileError, match="no such NXCT file; make it with `jellyroll nxct`"):
        read_nxct(tmp_path / "missing.h5")


def test_readers_name_the_file_and_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="no such run file"):
        read_sinogram(tmp_path / "missing.h5")
    path = tmp_path / "only_sinogram.h5"
    write_sinogram(path, _sinogram(), {})
    with pytest.raises(RunFileError, match=r"only_sinogram\.h5.*jellyroll reconstruct"):
        read_reconstruction(path)
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["entry/sinogram/data"] = np.zeros((2, 3, 4))
        f["entry/sinogram/rotation_angle"] = np.zeros(2)
        f["entry/sinogram/translation"] = np.zeros(2)  # wrong length
        f["entry/sinogram/q"] = np.zeros(4)
    with pytest.raises(RunFileError, match="translation has shape"):
        read_sinogram(tmp_path / "bad.h5")


def test_a_diagnosis_reads_back_as_written(tmp_path: Path) -> None:
    """Tables, notes, summary and the unrolled views in their written order. A summary
    value not measured (NaN) is written as null, strict JSON that any reader parses (it
    was a bare NaN), and reads back as NaN."""
    import json

    import pandas as pd

    from jellyroll.results import Diagnosis, FoundCell, Unrolled, read_diagnosis, write_diagnosis

    views = {
        name: Unrolled(
            np.full((3, 4), i, np.float32), np.arange(3.0) - 1, np.arange(4.0), along="spiral"
        )
        for i, name in enumerate(("saxs_intensity", "d_star_nm", "attenuation"))
    }
    table = pd.DataFrame({"id": [1, 2], "x_um": [1.5, -2.0], "case": ["A", "unresolved"]})
    profiles = pd.DataFrame({"q_A": [0.01, 0.02], "regular": [3.0, 1.0], "bent": [4.0, np.nan]})
    written = Diagnosis(
        "cell", "a cell", _maps(), table, pd.DataFrame(), pd.DataFrame(),
        FoundCell(1.0, -2.0, 900.0), views, {"agglomerates": 2, "psf_measured_fwhm_um": np.nan},
        ["no diode"],
        saxs_profiles=profiles,
    )  # fmt: skip
    write_diagnosis(tmp_path / "results.h5", written, {}, key="k", upstream="u")
    back = read_diagnosis(tmp_path / "results.h5")
    assert list(back.unrolled) == ["saxs_intensity", "d_star_nm", "attenuation"]
    view = back.unrolled["d_star_nm"]
    assert view.along == "spiral" and view.radius_um.tolist() == [-1.0, 0.0, 1.0]
    pd.testing.assert_frame_equal(back.saxs_profiles, profiles)
    assert back.cell == written.cell and back.notes == ["no diode"]
    assert back.summary.keys() == {"agglomerates", "psf_measured_fwhm_um"}
    assert back.summary["agglomerates"] == 2 and np.isnan(back.summary["psf_measured_fwhm_um"])
    assert back.agglomerates.equals(table)
    with h5py.File(tmp_path / "results.h5") as f:
        text = f["/entry/summary"].attrs["values"]
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}")) == {
        "agglomerates": 2, "psf_measured_fwhm_um": None
    }  # fmt: skip
    np.testing.assert_array_equal(back.maps["lic6"], written.maps["lic6"])


def test_open_reconstruction_leaves_the_cube_on_disk(tmp_path: Path) -> None:
    """`jellyroll diagnose` reads the SAXS cube (8 GB at the study's size) a few rows at a
    time: open_reconstruction gives the dataset itself, checked as read_reconstruction is."""
    from jellyroll.results.run import open_reconstruction

    path = tmp_path / "run.h5"
    write_sinogram(path, _sinogram(), {})
    write_reconstruction(path, _recon(), {})
    whole = read_reconstruction(path)
    with open_reconstruction(path) as lazy:
        assert isinstance(lazy.data, h5py.Dataset)
        np.testing.assert_array_equal(lazy.data[1:3], whole.data[1:3])
        np.testing.assert_array_equal(lazy.q_A, whole.q_A)
        assert lazy.attrs == whole.attrs
    with h5py.File(stage_file(path, "reconstruct"), "r+") as f:
        del f["entry/reconstruction/x_um"]
    with pytest.raises(RunFileError, match="x_um"), open_reconstruction(path):
        pass

"""The link driver and its report section on the twin: the diagnosis, the CT volumes, an
NXCT file and a location file on disk; the pipeline's placement read from a twin's truth."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from jellyroll.io.nexus import nx_group
from jellyroll.io.volumes import planes_digest, read_volume, write_tiff_stack
from jellyroll.locate.core import pose_parameters
from jellyroll.locate.dossier import volume_on_map
from jellyroll.locate.link_options import LinkOptions
from jellyroll.locate.link_run import (
    _rank_correlation,
    check_map_orientation,
    read_placement,
    run_link,
)
from jellyroll.phantom.twin import Twin
from jellyroll.phantom.write import TwinNXCT
from jellyroll.report.html import Report
from jellyroll.report.run import _link_section
from jellyroll.results import (
    Diagnosis,
    Map,
    MapSet,
    RunFileError,
    require_diagnosis,
    write_diagnosis,
)
from jellyroll.results.location import LocationResult, write_location_group
from jellyroll.results.nxct import (
    create_volume_datasets,
    write_bends_group,
    write_registration_group,
)

HEIGHT_WARNING = "the height is uncertain by 30.0 um (a test location)"
MAPS = ("saxs_intensity", "d_star_nm", "lic6", "lic12", "graphite_poor")


@pytest.fixture(scope="module")
def inputs(twin: Twin, twin_nxct: TwinNXCT, tmp_path_factory) -> dict[str, Path]:
    """The twin's true maps and agglomerates as a diagnosis, its volumes as TIFF stacks,
    an NXCT file with the true registration and bends, and a location file."""
    folder = tmp_path_factory.mktemp("link")
    truth = {"saxs_intensity": twin.saxs_intensity, "d_star_nm": twin.true_dstar_nm,
             **{name: twin.state.fractions[name] for name in MAPS[2:]}}  # fmt: skip
    y_um, x_um = twin.raster.axes_um()
    # one case-B agglomerate is enough for the driver (each dossier takes ~1 s to draw)
    case_b = twin.agglomerates[twin.agglomerates.case == "B"]
    table = twin.agglomerates.drop(index=case_b.index[1:])
    maps = MapSet(
        {name: Map(np.asarray(v, np.float32), "") for name, v in truth.items()}, x_um, y_um
    )
    diagnosis = Diagnosis(
        "twin", "twin", maps, table, pd.DataFrame(), pd.DataFrame(),
        summary={"critical_diameter_um": 50.0},
    )  # fmt: skip
    write_diagnosis(folder / "results.h5", diagnosis, {}, key="k", upstream="u")
    volumes = twin_nxct.volumes
    write_tiff_stack(folder / "xct.tif", volumes.xray, volumes.xray_voxel_um)
    write_tiff_stack(folder / "nct.tif", volumes.neutron, volumes.neutron_voxel_um)
    with h5py.File(folder / "nxct.h5", "w") as f:
        entry = nx_group(f, "entry", "NXentry")
        write_registration_group(
            entry, volumes.nct_to_xct, metric="truth", metric_value=0.0, seconds=0.0
        )
        windows = {"xray": [0.0, float(volumes.xray.max())],
                   "neutron": [0.0, float(volumes.neutron.max())]}  # fmt: skip
        create_volume_datasets(entry, volumes.xray.shape, volumes.xray_voxel_um, grid="xct",
                               label_names=None, windows=windows)  # fmt: skip
        write_bends_group(entry, twin_nxct.bends)
    located = LocationResult(
        map_to_xct=twin_nxct.map_to_xct, z_um=0.0,
        parameters=pose_parameters(twin_nxct.map_to_xct), similarity=0.9,
        profile_height_um=np.linspace(-100, 100, 11),
        profile_similarity=np.exp(-(np.linspace(-2, 2, 11) ** 2)), map_name="attenuation",
        offsets_um=np.zeros(1), height_interval_um=(-30.0, 30.0), height_defects=1.0,
        height_warning=HEIGHT_WARNING,
    )  # fmt: skip
    with h5py.File(folder / "location.h5", "w") as f:
        write_location_group(nx_group(f, "entry", "NXentry"), located, y_um, x_um, {})
    return {name: folder / f"{name}.{'tif' if name in ('xct', 'nct') else 'h5'}"
            for name in ("results", "xct", "nct", "nxct", "location")}  # fmt: skip


def test_link_file_figures_and_report(inputs: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "link.h5"
    result = run_link(
        inputs["results"], inputs["xct"], inputs["nxct"], inputs["location"], output,
        LinkOptions(largest_case_a=1), nct=inputs["nct"],
    )  # fmt: skip
    linked = result.linked
    assert (linked[linked.case == "B"].bend3d_id > 0).all()
    assert (linked[linked.case == "A"].bend3d_id == 0).all()
    assert result.misclassified == 0 and 45 < result.threshold_um < 68  # the A/B gap
    n_dossiers = int((linked.case == "B").sum()) + 1  # and the largest case A
    dossiers = [name for name in result.figures if name.startswith("dossier_")]
    assert set(result.figures) == {"slice", "fractions", *dossiers}
    assert len(dossiers) == n_dossiers
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in result.figures.values())
    report = Report("link")
    # the section run_report adds for link={cell: file}, at the twin's case A/B diameter
    _link_section(report, "twin", output, 50.0)
    html = report.render()
    for name in ("slice_in_volume", "bend_fractions", *dossiers):
        assert f'data-name="{name}"' in html
    # every dossier's caption named X-ray slices through its 3D bend, drawn for none off one
    for name in dossiers:
        caption = re.search(f'data-name="{name}".*?<figcaption>(.*?)</figcaption>', html)[1]
        bend = linked.loc[linked.id == int(name.removeprefix("dossier_")), "bend3d_id"].item()
        assert ("X-ray slices through its 3D bend" in caption) == (bend > 0)
    assert "share of agglomerates on a bent collector" in html
    assert HEIGHT_WARNING in html  # the location's warning shown with the slice
    # the volumes are inputs of the record (it listed the tables only), by their checksums
    with h5py.File(output, "r") as f:
        record = json.loads(f["/entry/provenance/link"][()])
        # silx and h5web open on the share on a bend per size bin (no default view before)
        entry = f[f.attrs["default"]]
        shown = entry[entry.attrs["default"]]
        shown = shown[shown.attrs["default"]]
        assert shown.attrs["NX_class"] == "NXdata" and list(shown.attrs["axes"]) == ["lower_um"]
        np.testing.assert_array_equal(shown["fraction"][()], result.size_bins["fraction"])
        # every measured number states its unit (the copied agglomerate table lost the
        # results file's units of excess intensity and significance); ids and turns not
        link = f["entry/link"]
        numbers = [link[t][c] for t in ("agglomerates", "size_bins") for c in link[t]]
        numbers += [link[name] for name in ("map_to_xct", "profile_height_um")]
        unitless = [d.name for d in numbers if d.dtype.kind == "f" and "units" not in d.attrs]
        assert not unitless
    recorded = {Path(p).resolve() for p in record["inputs"]}
    assert {inputs[name].resolve() for name in ("xct", "nct", "nxct", "results")} <= recorded


def test_a_location_without_a_placement_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="no such location file"):
        read_placement(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f["/entry/location/z_um"] = 1.0
    with pytest.raises(RunFileError, match="swaxs_to_xct"):
        read_placement(tmp_path / "empty.h5")
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["/entry/location/swaxs_to_xct"] = np.eye(3)
    with pytest.raises(ValueError, match=r"bad\.h5.*4x4"):
        read_placement(tmp_path / "bad.h5")


def test_a_placement_in_other_units_is_refused(tmp_path: Path) -> None:
    """A swaxs_to_xct whose @units say mm (shift 0.35 mm) was read as um: the map put 350 um
    too near the volume's centre, every link made at the wrong distances, exit 0; and one
    into 20 um voxel indices (lengths a 20th) likewise. Both refused, naming the file;
    the units `jellyroll locate` writes (um first) and none pass."""
    shifted = np.eye(4)
    shifted[:3, 3] = (0.35, -0.2, 0.1)
    for name, matrix, units in (
        ("mm.h5", shifted, "mm, (z, y, x, 1) homogeneous"),
        ("voxels.h5", np.diag([0.05, 0.05, 0.05, 1.0]), "um"),
        ("um.h5", shifted, "um, (z, y, x, 1) homogeneous; SWAXS map frame -> X-ray frame"),
        ("none.h5", shifted, None),
    ):
        with h5py.File(tmp_path / name, "w") as f:
            f["/entry/location/swaxs_to_xct"] = matrix
            if units is not None:
                f["/entry/location/swaxs_to_xct"].attrs["units"] = units
    with pytest.raises(RunFileError, match=r"mm\.h5.*'mm'.*not um"):
        read_placement(tmp_path / "mm.h5")
    with pytest.raises(ValueError, match=r"voxels\.h5.*not a rigid placement"):
        read_placement(tmp_path / "voxels.h5")
    for name in ("um.h5", "none.h5"):
        np.testing.assert_array_equal(read_placement(tmp_path / name).map_to_xct, shifted)


def test_a_cell_names_its_location_and_the_link_options(tmp_path: Path) -> None:
    from jellyroll.pipeline import load_config

    path = tmp_path / "cell.toml"
    path.write_text(
        '[[cells]]\nname = "a"\nwaxs = "w.h5"\nsaxs = "s.h5"\nxct = "x.tif"\nnct = "n.tif"\n'
        'location = "where/location.h5"\n[link]\nregistration_error_um = 10.0\n'
        "largest_case_a = 0\ndossier_half_width_um = 200.0\n"
    )
    config = load_config(path)
    assert config.cells[0].location == (tmp_path / "where" / "location.h5").resolve()
    assert config.link == LinkOptions(
        registration_error_um=10.0, largest_case_a=0, dossier_half_width_um=200.0
    )


def _with_recorded_voxels(inputs: dict[str, Path], folder: Path, xct_um: float, nct_um: float):
    """Copies of ``inputs`` whose X-ray stack's metadata says twice its voxel size (a wrong
    header), with the sizes given to `locate` (``xct_um``) and `nxct` recorded in their files."""
    import shutil

    given = {name: folder / path.name for name, path in inputs.items()}
    for name in ("results", "nct", "nxct", "location"):
        shutil.copy(inputs[name], given[name])
    xray, voxel = read_volume(inputs["xct"])
    write_tiff_stack(given["xct"], xray, 2 * voxel)
    with h5py.File(given["location"], "a") as f:
        f["/entry/location"].attrs["xct_voxel_um"] = xct_um
    with h5py.File(given["nxct"], "a") as f:
        f["/entry/registration"].attrs.update({"xct_voxel_um": voxel, "nct_voxel_um": nct_um})
    return given, voxel


def test_link_reads_the_volumes_at_the_sizes_locate_and_nxct_used(
    inputs: dict[str, Path], twin_nxct: TwinNXCT, tmp_path: Path, monkeypatch
) -> None:
    """A voxel size given to `locate` and `nxct` over a wrong header was lost in the link: it
    opened the volumes with their metadata's (here twice the X-ray size), so the planes and
    dossiers were resampled at the wrong scale, exit 0. It now reads the sizes the location
    and the NXCT file were made with; files made at two X-ray scales are refused."""
    import jellyroll.locate.link_run as link_run

    nct_um = twin_nxct.volumes.neutron_voxel_um
    xct_um = twin_nxct.volumes.xray_voxel_um
    given, voxel = _with_recorded_voxels(inputs, tmp_path, xct_um, nct_um)
    opened: dict[str, float] = {}
    real_open = link_run.open_volume

    def spy(path, voxel_size_um=None, **kwargs):
        source = real_open(path, voxel_size_um, **kwargs)
        opened[Path(path).stem] = source.voxel_um
        return source

    monkeypatch.setattr(link_run, "open_volume", spy)
    run_link(given["results"], given["xct"], given["nxct"], given["location"],
             tmp_path / "link.h5", LinkOptions(largest_case_a=0), nct=given["nct"])  # fmt: skip
    assert opened == {"xct": voxel, "nct": nct_um}  # not 2 x voxel from the header
    with h5py.File(given["location"], "a") as f:
        f["/entry/location"].attrs["xct_voxel_um"] = 2 * voxel
    with pytest.raises(ValueError, match="same X-ray voxel size"):
        run_link(given["results"], given["xct"], given["nxct"], given["location"],
                 tmp_path / "link2.h5", LinkOptions(), nct=given["nct"])  # fmt: skip


def test_a_link_stopped_after_its_figures_leaves_no_link_file(
    inputs: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    """run_link draws its PNGs, then writes the link file. A rerun with other inputs stopped
    in between (a kill) left the earlier link file, which a later run with the earlier inputs
    took for up to date beside the interrupted run's figures (the size-bin figure drawn at a
    critical diameter of 35 um beside tables made at 50 um), exit 0. The rerun now removes
    the link file before it draws."""
    import jellyroll.locate.link_run as link_run

    output = tmp_path / "link.h5"
    arguments = (inputs["results"], inputs["xct"], inputs["nxct"], inputs["location"], output)
    run_link(*arguments, LinkOptions(largest_case_a=0), nct=inputs["nct"])
    assert output.is_file()

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt("stopped between the figures and the link file")

    monkeypatch.setattr(link_run, "write_stage_file", stopped)
    with pytest.raises(KeyboardInterrupt):
        run_link(*arguments, LinkOptions(largest_case_a=0, registration_error_um=5.0))
    assert not output.exists()


def test_link_refuses_an_x_ray_volume_other_than_the_nxct_files(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """The X-ray volume with two empty slices more (another crop of the same data): the link
    read the fused volume and labels of the NXCT file in their own frame, a slice off the
    volume given, exit 0. Refused, naming both shapes (as `locate --nxct` does)."""
    xray, voxel = read_volume(inputs["xct"])
    padded = np.concatenate([np.zeros((2, *xray.shape[1:]), xray.dtype), xray])
    write_tiff_stack(tmp_path / "xct.tif", padded, voxel)
    with pytest.raises(ValueError, match=r"X-ray volume given is \(\d+, \d+, \d+\) voxels"):
        run_link(inputs["results"], tmp_path / "xct.tif", inputs["nxct"], inputs["location"],
                 tmp_path / "link.h5", nct=inputs["nct"])  # fmt: skip
    assert not (tmp_path / "link.h5").exists()


def test_link_refuses_a_location_made_in_another_x_ray_volume(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """Another cell's location file (its X-ray volume of the same shape): the map was placed
    where it was not found, and every case-B agglomerate lay on no bend, exit 0 (five cells
    of six). The location records its volume's shape and planes' digest (as `jellyroll
    locate` writes them); another volume is refused, the same one passes."""
    xray, _ = read_volume(inputs["xct"])
    for name, volume in (("other", xray[::-1]), ("same", xray)):
        location = tmp_path / f"{name}.h5"
        shutil.copy(inputs["location"], location)
        with h5py.File(location, "a") as f:
            f["/entry/location"].attrs.update(
                xct_shape=np.asarray(volume.shape), xct_digest=planes_digest(volume)
            )
        call = (inputs["results"], inputs["xct"], inputs["nxct"], location,
                tmp_path / f"{name}_link.h5")  # fmt: skip
        if name == "other":
            with pytest.raises(ValueError, match="places the slice in another X-ray volume"):
                run_link(*call, nct=inputs["nct"])
            assert not (tmp_path / "other_link.h5").exists()
        else:
            run_link(*call, nct=inputs["nct"])


def _diagnosis_with_attenuation(twin: Twin, path: Path, turns: int) -> Path:
    """The twin's SAXS intensity and X-ray attenuation maps and its agglomerates, all turned
    by ``turns`` x 90 deg on the (square) map grid, as a diagnosis file."""
    y_um, x_um = twin.raster.axes_um()
    maps = {"saxs_intensity": twin.saxs_intensity, "d_star_nm": twin.true_dstar_nm,
            "attenuation": twin.mu_xray_per_um}  # fmt: skip
    table = twin.agglomerates.copy()
    for _ in range(turns):  # np.rot90: the pixel at (y, x) goes to (-x, y)
        table["x_um"], table["y_um"] = table["y_um"].to_numpy(), -table["x_um"].to_numpy()
    turned = {name: Map(np.rot90(np.asarray(v, np.float32), turns).copy(), "")
              for name, v in maps.items()}  # fmt: skip
    diagnosis = Diagnosis(
        "twin", "twin", MapSet(turned, x_um, y_um), table, pd.DataFrame(), pd.DataFrame(),
        summary={"critical_diameter_um": 50.0},
    )  # fmt: skip
    write_diagnosis(path, diagnosis, {}, key="k", upstream="u")
    return path


def test_a_location_of_maps_turned_otherwise_than_the_diagnosis_is_refused(
    twin: Twin, inputs: dict[str, Path], tmp_path: Path
) -> None:
    """A diagnosis of the maps turned 90 deg, linked through the location of the maps as
    they were: every agglomerate carried to the wrong place in the volume (the small twin:
    0 of 12 on a bend instead of 3, no threshold instead of 71 um), exit 0. Refused: its
    attenuation map matches the X-ray plane at the placement worse than its copy turned
    back (rank correlation 0.53 against 0.91 here; as given, the best turned or mirrored
    copy reaches 0.73, under the margin of 0.05). Turned by 0 or 4 x 90 deg: linked."""
    turned = _diagnosis_with_attenuation(twin, tmp_path / "turned.h5", 1)
    with pytest.raises(ValueError, match="made from maps in another orientation"):
        run_link(turned, inputs["xct"], inputs["nxct"], inputs["location"],
                 tmp_path / "link.h5", LinkOptions(largest_case_a=0))  # fmt: skip
    assert not (tmp_path / "link.h5").exists()
    # the maps as the location placed them pass the check, turned by none or a full turn
    xray, voxel = read_volume(inputs["xct"])
    placement = read_placement(inputs["location"])
    for turns in (0, 4):
        path = _diagnosis_with_attenuation(twin, tmp_path / f"{turns}.h5", turns)
        cell = require_diagnosis(path)
        image = cell.maps["attenuation"]
        plane = volume_on_map(xray, voxel, placement.map_to_xct, image.shape, cell.pixel_size_um)
        check_map_orientation(cell.maps, plane, "results.h5", "location.h5")
        assert _rank_correlation(np.asarray(image, float), plane) > 0.85


def test_the_orientation_check_refuses_only_a_convincing_better_turn() -> None:
    """An attenuation map turned 90 deg against the plane it was placed on is refused; maps
    that match the plane in no orientation (noise: every rank correlation near 0) are not,
    whichever copy scores a few hundredths higher by chance."""
    yy, xx = np.mgrid[-40:40, -40:40].astype(float)
    plane = np.where(np.hypot(yy, xx) < 35, 1.0 + 0.02 * yy + 0.01 * np.sign(xx), np.nan)
    image = np.nan_to_num(plane, nan=0.0)
    check_map_orientation({"attenuation": image}, plane, "results.h5", "location.h5")
    with pytest.raises(ValueError, match=r"worse \(rank correlation .*\) than the same map"):
        check_map_orientation({"attenuation": np.rot90(image)}, plane, "results.h5", "loc.h5")
    noise = np.random.default_rng(0).normal(size=(2, 80, 80))
    check_map_orientation({"attenuation": noise[0]}, noise[1], "results.h5", "location.h5")
    check_map_orientation({"saxs_intensity": noise[0]}, plane, "results.h5", "location.h5")


def test_a_band_not_measured_in_the_x_ray_keeps_the_dossiers(
    inputs: dict[str, Path], twin_nxct: TwinNXCT, tmp_path: Path
) -> None:
    """Three NaN rows (a detector gap) across the X-ray volume through the outer turn's
    bottom (true bend 3): read as 0 (black material), the X-ray plane's collector was traced
    over 1.11 of its 2.75 turns (no cut said) and the defects beyond got no dossier, exit 0.
    Filled along the turns (``fill_unmeasured``), the trace keeps its 2.75 turns: every
    dossier of the intact volume is drawn."""
    xray, voxel = read_volume(inputs["xct"])
    row = round(twin_nxct.bends.iloc[3].y_um / voxel + (xray.shape[1] - 1) / 2)
    holed = np.array(xray, dtype=np.float32)
    holed[:, row - 1 : row + 2] = np.nan
    write_tiff_stack(tmp_path / "xct.tif", holed, voxel)
    result = run_link(
        inputs["results"], tmp_path / "xct.tif", inputs["nxct"], inputs["location"],
        tmp_path / "link.h5", LinkOptions(largest_case_a=1),
    )  # fmt: skip
    linked = result.linked
    dossiers = [name for name in result.figures if name.startswith("dossier_")]
    assert len(dossiers) == int((linked.case == "B").sum()) + 1  # and the largest case A
    assert not any("dossier" in note for note in result.notes)

"""``jellyroll nxct`` end to end on the twin's volume pair: the SPEC section 6 contract."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.io.nexus import read_table
from jellyroll.io.volumes import planes_digest, read_volume
from jellyroll.locate import pose_parameters
from jellyroll.results import read_diagnosis
from jellyroll.results.location import read_location
from jellyroll.results.nxct import read_nxct


@pytest.fixture(scope="module")
def twin(tiny_twin_files: Path) -> Path:
    return tiny_twin_files


@pytest.fixture(scope="module")
def on_xray_grid(twin: Path, tmp_path_factory) -> Path:
    """``jellyroll nxct`` with its defaults, run once for the contract and the grid tests."""
    output = tmp_path_factory.mktemp("nxct_run") / "nxct.h5"
    result = CliRunner().invoke(
        app, ["nxct", str(twin / "xct.tif"), str(twin / "nct.tif"), "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    return output


def test_nxct_writes_the_contract(on_xray_grid: Path, twin: Path) -> None:
    output, folder = on_xray_grid, on_xray_grid.parent
    found = read_nxct(output)
    rotation = found.nct_to_xct[:3, :3]
    # a rigid motion: orthonormal rotation, proper (no mirror), bottom row (0, 0, 0, 1)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-6)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(found.nct_to_xct[3], [0, 0, 0, 1])
    with h5py.File(output, "r") as f:
        xray_shape = f["/entry/fused/data"].shape[:3]
        assert f["/entry/fused/data"].dtype == np.uint8 and f["/entry/fused/data"].shape[3] == 3
        assert f["/entry/segmentation/labels"].shape == xray_shape
        names = json.loads(f["/entry/segmentation/labels"].attrs["names"])
        assert {"cu", "anode_lithiated", "cathode", "casing"} <= set(names.values())
        assert f["/entry/registration"].attrs["metric"] == "MattesMutualInformation"
        # the twin's copies are at full resolution: no last level at the volumes' own voxels;
        # the axial level runs at full resolution too, but the tiny twin's stack is too short
        # for its blocks about the roll's end, and the file says so
        assert f["/entry/registration"].attrs["fine_level"] == "not needed"
        assert f["/entry/registration"].attrs["axial_level"].startswith("skipped: too few")
        # the voxel sizes the pair was read with, for the link to read it again at that scale
        # and their shapes and planes' digests: the frames the matrix and the fused volume lie
        # in (locate --nxct checks the volumes it is given against them)
        for name in ("xct", "nct"):
            voxel = f["/entry/registration"].attrs[f"{name}_voxel_um"]
            volume, size = read_volume(twin / f"{name}.tif")
            assert voxel == size
            assert tuple(f["/entry/registration"].attrs[f"{name}_shape"]) == volume.shape
            assert f["/entry/registration"].attrs[f"{name}_digest"] == planes_digest(volume)
        assert f.attrs["default"] == "entry" and f["entry"].attrs["default"] == "fused"
        bends = read_table(f["/entry/bends"])
        assert f["/entry/fused/z_um"].attrs["units"] == "um"
    assert {"id", "z_um", "y_um", "x_um", "turn", "amplitude_um", "extent_axial_um",
            "extent_arc_um"} <= set(bends.columns)  # fmt: skip
    assert found.windows["xray"][0] < found.windows["xray"][1]
    # what the run said is in the file (it was printed only, lost with the terminal): here
    # that the shift along the axis is the metric's alone (the stack is too short), and that
    # nothing along it tells the order of the slices (its neutron slices reversed, the
    # tiny twin registered 91 um RMS off, exit 0, without a word of it)
    assert any("shift along the cell axis was not refined" in note for note in found.notes)
    assert any("tells which way" in note and "registered as given" in note
               for note in found.notes)  # fmt: skip
    assert (folder / "nxct_views.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(folder.glob(".*"))  # no scratch or lock file left


def test_nxct_prints_what_the_run_says_once_as_warning_lines(
    on_xray_grid: Path, tmp_path: Path, monkeypatch
) -> None:
    """The run's warnings were Python's lines (the file, `UserWarning:`, a line of source)
    in the middle of the progress bar; now each is a `warning:` line after it, once."""
    import warnings

    import jellyroll.nxct.run as nxct_run

    def warning_run(*args, **kwargs):
        for _ in range(3):  # once per slab, say
            warnings.warn("the collector's turns count from a cut", stacklevel=1)
        return read_nxct(on_xray_grid)

    monkeypatch.setattr(nxct_run, "run_nxct", warning_run)
    result = CliRunner().invoke(
        app, ["nxct", str(on_xray_grid), str(on_xray_grid), "-o", str(tmp_path / "o.h5")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("warning: the collector's turns count from a cut") == 1
    assert "UserWarning" not in result.output


def test_nxct_names_what_is_missing(twin: Path, tmp_path: Path) -> None:
    """A volume without voxel size: one line on stderr naming the file and the option."""
    import tifffile

    bare = tmp_path / "bare.tif"
    tifffile.imwrite(bare, np.zeros((4, 8, 8), np.float32), photometric="minisblack")
    result = CliRunner().invoke(
        app, ["nxct", str(bare), str(twin / "nct.tif"), "-o", str(tmp_path / "out.h5")]
    )
    assert result.exit_code == 1 and "bare.tif" in result.stderr
    # the option of this command (the message named --voxel-size-um, which it has not)
    assert "--xct-voxel-um" in result.stderr.replace("\n", "")


def test_a_neutron_voxel_size_10_percent_off_is_refused(twin: Path, tmp_path: Path) -> None:
    """--nct-voxel-um 11 for the tiny twin's 10 um neutron voxels: registered 79 um RMS off
    (124 um at most), exit 0; the outlines (15 % allowed, ~4 % apart at the right sizes)
    let it through. Refused by the scale the pair implies (0.909, found within 0.005 of
    the truth on the tiny twins at 2-10 % off), naming both sizes and what to give; no
    output written."""
    output = tmp_path / "out.h5"
    result = CliRunner().invoke(
        app, ["nxct", str(twin / "xct.tif"), str(twin / "nct.tif"), "-o", str(output),
              "--nct-voxel-um", "11"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    stderr = " ".join(result.stderr.split())
    assert "X-ray 20 um, neutron 11 um" in stderr and "--nct-voxel-um" in stderr
    scale = float(re.search(r"best scaled by (\S+) ", stderr).group(1))
    assert scale == pytest.approx(1 / 1.1, abs=0.005)
    implied = float(re.search(r"imply a neutron voxel of (\S+) um", stderr).group(1))
    assert implied == pytest.approx(10.0, abs=0.05)
    assert not output.exists()


def test_one_volume_given_twice_is_refused(twin: Path, tmp_path: Path) -> None:
    """`jellyroll nxct XCT XCT` registered the volume onto itself and exited 0 after 26 s; it
    is refused before any reading, by nxct and by locate's --nct (the same file by another
    path too)."""
    from jellyroll.locate.run import run_locate

    xct = str(twin / "xct.tif")
    result = CliRunner().invoke(app, ["nxct", xct, xct, "-o", str(tmp_path / "out.h5")])
    assert result.exit_code == 1 and "as both the X-ray and the neutron" in result.stderr
    assert not (tmp_path / "out.h5").exists()
    again = str(twin / ".." / twin.name / "xct.tif")
    with pytest.raises(ValueError, match="as both the X-ray and the neutron"):
        run_locate(tmp_path / "run.h5", xct, tmp_path / "loc.h5", nct=again)


def test_volumes_given_the_wrong_way_round_are_refused(twin: Path, tmp_path: Path) -> None:
    """The neutron volume given as the X-ray one was registered, fused, segmented into
    nonsense labels and searched for bends, exit 0."""
    output = tmp_path / "out.h5"
    result = CliRunner().invoke(
        app, ["nxct", str(twin / "nct.tif"), str(twin / "xct.tif"), "-o", str(output)]
    )
    assert result.exit_code == 1, result.output
    assert "swapped" in result.stderr and "nct.tif (X-ray)" in result.stderr
    assert not output.exists()
    # a user who knows the cell is unlike the twin may skip the check (segmentation off:
    # its classes need the X-ray volume first)
    args = ["nxct", str(twin / "nct.tif"), str(twin / "xct.tif"), "-o", str(output)]
    result = CliRunner().invoke(app, [*args, "--no-order-check", "--no-segment", "--no-bends"])
    assert result.exit_code == 0, result.output


def test_voxels_too_coarse_for_the_layers_are_refused_before_labelling(
    twin: Path, tmp_path: Path
) -> None:
    """The tiny twin's pair read at twice its voxel sizes (X-ray 40 um, neutron 20 um, as a
    coarse scan's would be): registered, then segmented into labels of Dice 0.36 / 0.51 /
    0.55 (Cu / cathode / anode, measured at those voxels on the twin's truth), exit 0. Now
    refused naming the file, its voxel and the limit; without labels the run goes on."""
    output = tmp_path / "out.h5"
    args = ["nxct", str(twin / "xct.tif"), str(twin / "nct.tif"), "-o", str(output)]
    coarse = ["--xct-voxel-um", "40", "--nct-voxel-um", "20", "--no-bends"]
    result = CliRunner().invoke(app, [*args, *coarse])
    assert result.exit_code == 1, result.output
    message = result.stderr.replace("\n", "")
    assert "xct.tif: its X-ray voxel of 40 um" in message and "at most 25 um" in message
    assert "--no-segment" in message and not output.exists()


def test_a_fill_ring_and_a_blank_plane_are_black_in_the_fused_volume() -> None:
    """A reconstruction's ring of 0 outside its circle, and a blank plane of 0, in an X-ray
    volume whose void reads -1000 (an integer volume's raw values): the run's windows left
    them out, but the fused RGB kept their value, red 255 (as bright as the metals) over the
    whole ring and plane, exit 0. Now NaN in both slabs before the fusion: black (0), as NaN
    voxels are; the measured voxels unchanged."""
    from jellyroll.nxct.fuse import fuse_rgb
    from jellyroll.nxct.segment import mask_fill_rings
    from jellyroll.nxct.unmeasured import FillRings

    rng = np.random.default_rng(0)
    xray = rng.normal(-900.0, 50.0, (3, 48, 48)).astype(np.float32)
    neutron = rng.normal(2.0, 0.5, (3, 48, 48)).astype(np.float32)
    y, x = np.ogrid[:48, :48]
    ring = np.hypot(y - 23.5, x - 23.5) > 22
    xray[:2, ring] = 0.0
    xray[2] = 0.0  # a blank plane padding the stack
    measured = np.stack([~ring, ~ring, np.zeros_like(ring)])
    kept = xray.copy()
    mask_fill_rings(xray, neutron, (FillRings(), FillRings()))
    rgb = fuse_rgb(xray, neutron, (-1000.0, -800.0), (0.0, 4.0))
    assert (rgb[~measured] == 0).all()
    np.testing.assert_array_equal(xray[measured], kept[measured])


def test_a_cell_with_ct_volumes_gets_its_nxct_section(twin: Path, tmp_path: Path) -> None:
    from jellyroll.pipeline import load_config, run_pipeline
    from jellyroll.pipeline.config import written_by_the_run

    config = tmp_path / "cell.toml"
    config.write_text(
        f'output = "out"\n[[cells]]\nname = "aged"\nwaxs = "{twin / "waxs_scan.h5"}"\n'
        f'saxs = "{twin / "saxs_scan.h5"}"\n'
        f'xct = "{twin / "xct.tif"}"\nnct = "{twin / "nct.tif"}"\n'
        f'truth = "{twin / "truth.h5"}"\n'
        "[nxct]\nbend_slice_step = 2\n"
    )
    result = run_pipeline(load_config(config))
    html = result.report.read_text()
    assert 'data-name="nxct_views"' in html and "neutron and X-ray CT" in html
    assert "shift along the cell axis was not refined" in html  # the NXCT run's note
    # the twin's true placement of the slice: the agglomerates linked to the 3D bends
    assert 'data-name="slice_in_volume"' in html and 'data-name="bend_fractions"' in html
    assert (tmp_path / "out" / "aged" / "link.h5").is_file()
    # the slice located by the run from its reconstructed attenuation, not the twin's truth
    found = read_location(tmp_path / "out" / "aged" / "location.h5").map_to_xct
    with h5py.File(twin / "truth.h5", "r") as f:
        true = f["/entry/nxct/map_to_xct"][()]
    got, want = pose_parameters(found), pose_parameters(true)
    xray_voxel_um = read_nxct(tmp_path / "out" / "aged" / "nxct.h5").voxel_um
    # measured: 7.6 um high (X-ray voxel 20 um), 0.36 deg, 1.9 um; the bars are the issue's,
    # but 1 deg for the rotation: the tiny twin's four agglomerates pin the angle loosely
    assert abs(got["height_um"] - want["height_um"]) <= 0.5 * xray_voxel_um
    assert abs(got["rotation_deg"] - want["rotation_deg"]) <= 1.0
    shift = np.hypot(got["shift_y_um"] - want["shift_y_um"], got["shift_x_um"] - want["shift_x_um"])
    assert shift <= read_diagnosis(tmp_path / "out" / "aged" / "results.h5").pixel_size_um
    assert (tmp_path / "out" / "aged" / "nxct.h5").is_file()
    # every file named as the configuration's check of inputs against outputs knows them
    assert all(written_by_the_run(p.name) for p in (tmp_path / "out" / "aged").iterdir())
    status = {e["stage"]: e["status"] for e in run_pipeline(load_config(config)).log.entries}
    assert status["aged nxct"] == "up to date"


def test_the_neutron_grid_holds_the_same_registered_pair(
    twin: Path, on_xray_grid: Path, tmp_path: Path
) -> None:
    """--grid nct: the X-ray volume resampled onto the neutron grid with the same registration
    (the fused red channel there matches the X-ray grid's, through nct_to_xct)."""
    outputs = {"xct": on_xray_grid, "nct": tmp_path / "nct.h5"}
    result = CliRunner().invoke(
        app, ["nxct", str(twin / "xct.tif"), str(twin / "nct.tif"), "-o", str(outputs["nct"]),
              "--grid", "nct", "--no-bends"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    on_x, on_n = read_nxct(outputs["xct"]), read_nxct(outputs["nct"])
    assert (on_x.grid, on_n.grid) == ("xct", "nct")  # whose frame: read by `locate --nxct`
    with h5py.File(outputs["xct"]) as fx, h5py.File(outputs["nct"]) as fn:
        red_x, red_n = fx["/entry/fused/data"][..., 0], fn["/entry/fused/data"][..., 0]
    # the X-ray grid's red channel carried onto the neutron grid by the registration agrees
    # with the red channel fused there: correlation over the voxels, not a shifted copy
    from jellyroll.nxct import resample_slabs

    moved = np.concatenate(
        [
            values
            for _, values in resample_slabs(
                red_x.astype(np.float32), on_x.voxel_um, on_n.nct_to_xct, red_n.shape,
                on_n.voxel_um,
            )
        ]
    )  # fmt: skip
    correlation = np.corrcoef(moved.ravel(), red_n.astype(np.float32).ravel())[0, 1]
    assert correlation > 0.8


def _registered_as(monkeypatch, on_xray_grid: Path) -> None:
    """`jellyroll nxct` with the registration of the intact pair (``on_xray_grid``), not run
    again: a NaN region changes what the fusion and the segmentation read, not the pose."""
    from jellyroll.nxct import run
    from jellyroll.nxct.register import Registration

    matrix = read_nxct(on_xray_grid).nct_to_xct
    registration = Registration(matrix, "MattesMutualInformation", -0.5, 0.0, 0.0, None, None)
    monkeypatch.setattr(run, "register_volumes", lambda *args, **kwargs: registration)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ((slice(None), slice(48, 56)), np.nan),  # a band of rows across the cell
        ((slice(None), slice(48, 56)), np.inf),
        ((0,), np.nan),  # a whole plane
    ],
)
def test_nan_in_the_xray_volume_is_not_measured(
    twin: Path, on_xray_grid: Path, tmp_path: Path, monkeypatch, where, value
) -> None:
    """NaN (or inf) in the X-ray volume, where the file holds no value (a detector gap
    across 8 of the tiny twin's 104 rows, a whole plane), is not measured: void, black in
    the RGB's red, out of the thresholds' sample. Before, the run read it as 0 (the
    registration's reading): 34.5 % of the band labelled a component from the neutron
    alone (the cell there: 40.6 %; of the plane 16.3 %), the (0, neutron) pairs in the
    sample moved the thresholds, and the labels in view agreed with the intact pair's for
    98.2 % of the voxels (cathode 0.109 of them for 0.099), exit 0. Now 99.8 % (99.9 %):
    the rest is the thresholds of a sample without the band's voxels; 99.5 % allowed."""
    from jellyroll.io.volumes import write_tiff_stack
    from jellyroll.nxct.options import NXCTOptions
    from jellyroll.nxct.run import run_nxct

    _registered_as(monkeypatch, on_xray_grid)
    volume, voxel = read_volume(twin / "xct.tif")
    volume[where] = value
    gap = np.zeros(volume.shape, bool)
    gap[where] = True
    path = write_tiff_stack(tmp_path / "gap.tif", volume, voxel)
    run_nxct(path, twin / "nct.tif", tmp_path / "gap.h5", NXCTOptions(bends=False))
    with h5py.File(tmp_path / "gap.h5") as got, h5py.File(on_xray_grid) as intact:
        labels = got["/entry/segmentation/labels"][()]
        red = got["/entry/fused/data"][..., 0]
        before = intact["/entry/segmentation/labels"][()]
    assert (labels[gap] == 0).all() and (red[gap] == 0).all()
    assert (before[gap] != 0).mean() > 0.2  # the region crosses the cell
    assert (labels[~gap] == before[~gap]).mean() > 0.995


def test_a_stack_measured_nowhere_is_refused_as_such(
    twin: Path, on_xray_grid: Path, tmp_path: Path, monkeypatch
) -> None:
    """An X-ray stack of NaN alone: refused, naming the files and the share of the sampled
    voxels each measures. Before (NaN read as 0), "the sample (63764 finite voxels) has no
    contrast in one modality ...: sample more voxels", which named neither file nor NaN."""
    from jellyroll.io.volumes import write_tiff_stack
    from jellyroll.nxct.options import NXCTOptions
    from jellyroll.nxct.run import run_nxct

    _registered_as(monkeypatch, on_xray_grid)
    volume, voxel = read_volume(twin / "xct.tif")
    write_tiff_stack(tmp_path / "void.tif", np.full_like(volume, np.nan), voxel)
    with pytest.raises(ValueError, match=r"measured in both volumes.*void\.tif 0\.0%.*nct\.tif"):
        run_nxct(tmp_path / "void.tif", twin / "nct.tif", tmp_path / "out.h5",
                 NXCTOptions(bends=False))  # fmt: skip
    assert not (tmp_path / "out.h5").exists()

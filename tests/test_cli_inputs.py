"""Files of the wrong kind at the command line: each refused in one line naming the file,
what it is and what to give, before any work (an audit of every command's inputs)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.io.provenance import atomic_output
from jellyroll.io.scans import BlissMapping, ScanFormatError, read_poni_text
from jellyroll.report.html import Report


def _png(path: Path) -> Path:
    """A 1 x 1 PNG image at ``path``: binary, not text."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4))
        + chunk(b"IEND", b"")
    )
    return path


def _one_line(output: str) -> str:
    return " ".join(output.split())


@pytest.mark.parametrize(
    ("command", "example"),
    [
        (["diagnose", "w.h5", "s.h5"], "results.h5"),
        (["report", "results.h5"], "report.html"),
        (["nxct", "xct.tif", "nct.tif"], "nxct.h5"),
        (["locate", "run.h5", "xct.tif"], "location.h5"),
        (["operando", "series"], "operando.h5"),
    ],
)
def test_an_output_that_is_a_folder_is_refused_before_any_work(
    tmp_path: Path, command: list[str], example: str
) -> None:
    """`-o FOLDER` ran the whole stage (20 s for nxct on the tiny twin), then failed at the
    final rename naming a temporary file: `[Errno 21] Is a directory:
    '.../.afolder.cbb0g32z.part' -> '.../afolder'`."""
    folder = tmp_path / "out"
    folder.mkdir()
    result = CliRunner().invoke(app, [*command, "-o", str(folder)])
    assert result.exit_code == 1, result.output
    assert f"{folder} is a folder; give a file name, e.g. {folder / example}" in _one_line(
        result.output
    )
    assert list(folder.iterdir()) == []


def test_an_atomic_output_over_a_folder_names_it_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=r"out is a folder; give a file name"):
        with atomic_output(folder):
            pass
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def _stage_file(path: Path, stage: str) -> Path:
    """An (empty) stage file of a run: what `RUN.<group>.h5` records at its root."""
    with h5py.File(path, "w") as f:
        f.attrs["jellyroll_stage"] = stage
    return path


@pytest.mark.parametrize(
    ("name", "stage", "command"),
    [
        ("RUN.sinogram.h5", "reduce", ["reconstruct", "{file}"]),
        ("RUN.reconstruction.h5", "reconstruct", ["maps", "{file}"]),
        ("RUN.maps.h5", "maps", ["diagnose", "{file}", "{file}", "-o", "{out}"]),
        ("RUN.sinogram.h5", "reduce", ["reduce", "scan.h5", "-o", "{file}"]),
    ],
)
def test_a_stage_file_given_for_a_run_file_names_its_run(
    tmp_path: Path, name: str, stage: str, command: list[str]
) -> None:
    """`reconstruct RUN.sinogram.h5` reconstructed for 7 s, then failed with `[Errno 2] No
    such file or directory: 'RUN.sinogram.sinogram.h5'`; `reduce -o RUN.sinogram.h5`
    replaced that run's sinogram with an index, exit 0."""
    file = _stage_file(tmp_path / name, stage)
    before = file.read_bytes()
    args = [part.format(file=file, out=tmp_path / "results.h5") for part in command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    text = _one_line(result.output)
    assert f"{file}: given as" in text and f"give the run file {tmp_path / 'RUN.h5'}" in text
    assert file.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize(
    ("attrs", "said"),
    [
        ({}, "no jellyroll run file (it records no stages: a raw scan"),
        ({"jellyroll_stage": "diagnose"}, "a jellyroll diagnose result"),
    ],
    ids=["raw scan", "results file"],
)
@pytest.mark.parametrize(
    "command",
    [
        ["reconstruct", "{file}"],
        ["maps", "{file}"],
        ["diagnose", "{file}", "{file}", "-o", "{out}"],
    ],
    ids=["reconstruct", "maps", "diagnose"],
)
def test_a_file_that_is_no_run_given_for_a_run_says_what_it_is(
    tmp_path: Path, attrs: dict, said: str, command: list[str]
) -> None:
    """`reconstruct` of a raw scan was told that the scan "is where the run's index file
    goes ... Move it away"; `diagnose` of a results file failed on a `.maps.h5` never
    given. Each says what the file is and how a run is made, and leaves it as it was."""
    file = tmp_path / "given.h5"
    with h5py.File(file, "w") as f:
        f.attrs.update(attrs)
        f["entry/instrument/detector/data"] = [[[0.0]]]
    before = file.read_bytes()
    args = [part.format(file=file, out=tmp_path / "out.h5") for part in command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    text = _one_line(result.output)
    assert f"{file}: given as" in text and said in text and "jellyroll reduce SCAN" in text
    assert file.read_bytes() == before


@pytest.mark.parametrize("command", [["demo", "--size", "tiny"], ["phantom", "--size", "tiny"]])
def test_an_output_folder_that_is_a_file_is_named(tmp_path: Path, command: list[str]) -> None:
    """`demo -o FILE` ended on the operating system's "[Errno 20] Not a directory:
    'FILE/twins/fresh_charged'"; it now says what `phantom` says."""
    file = tmp_path / "results.h5"
    file.write_bytes(b"mine")
    result = CliRunner().invoke(app, [*command, "-o", str(file)])
    assert result.exit_code == 1, result.output
    assert f"{file}: a file, not a folder; give a new or empty output folder" in _one_line(
        result.output
    )
    assert file.read_bytes() == b"mine"


def test_a_binary_poni_or_mapping_is_named(tmp_path: Path) -> None:
    """A PNG given as --poni or --mapping ended in `error: 'utf-8' codec can't decode byte
    0x89 in position 0: invalid start byte`, naming no file."""
    image = _png(tmp_path / "image.png")
    with pytest.raises(ScanFormatError, match=r"image\.png: not a PONI file"):
        read_poni_text(image)
    with pytest.raises(ScanFormatError, match=r"image\.png: not a readable TOML mapping"):
        BlissMapping.from_toml(image)


def test_a_binary_run_configuration_is_named(tmp_path: Path) -> None:
    """`jellyroll run image.png`: the same bare decoding error, exit 1."""
    image = _png(tmp_path / "image.png")
    result = CliRunner().invoke(app, ["run", str(image)])
    assert result.exit_code == 2, result.output
    assert f"{image}: not valid TOML" in _one_line(result.output)


def test_an_hdf5_file_without_a_volume_says_how_to_name_one(tmp_path: Path) -> None:
    """A run file given as a CT volume: `no dataset given; pass dataset= one of: (none)`,
    the Python keyword, not the command line's FILE.h5::/path."""
    run, other = tmp_path / "run.h5", tmp_path / "other.h5"
    for path in (run, other):
        with h5py.File(path, "w") as f:
            f["entry/note"] = "no volume here"
    result = CliRunner().invoke(app, ["nxct", str(run), str(other), "-o", str(tmp_path / "n.h5")])
    assert result.exit_code == 1, result.output
    text = _one_line(result.output)
    assert f"{run}: no dataset given" in text and "not a CT volume" in text
    assert "FILE.h5::/path/to/dataset" in text and "pass dataset=" not in text
    volume = tmp_path / "volumes.h5"
    with h5py.File(volume, "w") as f:
        f["entry/xct"] = [[[0.0]]]
    result = CliRunner().invoke(
        app, ["nxct", str(volume), str(other), "-o", str(tmp_path / "n.h5")]
    )
    assert result.exit_code == 1, result.output
    assert f"name the volume as {volume}::/path/to/dataset" in _one_line(result.output)
    assert "/entry/xct" in result.output


def test_missing_results_and_nxct_files_name_the_command_that_makes_them(
    tmp_path: Path,
) -> None:
    """A missing results file (report) or NXCT file (locate --nxct) was "no such run file;
    create it with `jellyroll reduce`", the latter after the whole placement."""
    missing = tmp_path / "cell.h5"
    result = CliRunner().invoke(app, ["report", str(missing), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1, result.output
    text = _one_line(result.output)
    assert f"{missing}: does not exist; give the results file" in text
    assert "jellyroll diagnose" in text and "jellyroll reduce" not in text
    result = CliRunner().invoke(
        app, ["locate", "run.h5", "xct.tif", "--nct", "nct.tif", "--nxct", str(missing),
              "-o", str(tmp_path / "l.h5")],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    text = _one_line(result.output)
    assert f"{missing}: does not exist; give the NXCT file of --nxct" in text
    assert "jellyroll nxct" in text and "jellyroll reduce" not in text


def _raw_scan(path: Path) -> Path:
    """An HDF5 file no jellyroll stage wrote (a raw scan's layout, no stage record)."""
    with h5py.File(path, "w") as f:
        f["entry/sample/rotation_angle"] = [0.0, 1.0]
    return path


@pytest.mark.parametrize(
    ("command", "written_by"),
    [
        (["reduce", "scan.h5"], None),
        (["reduce", "scan.h5"], "diagnose"),
        (["diagnose", "w.h5", "s.h5"], None),
        (["diagnose", "w.h5", "s.h5"], "nxct"),
        (["nxct", "xct.tif", "nct.tif"], "diagnose"),
        (["locate", "run.h5", "xct.tif"], "run index"),
        (["operando", "series"], "locate"),
        (["report", "results.h5"], "operando"),
    ],
)
def test_an_output_that_is_another_file_is_refused_before_any_work(
    tmp_path: Path, command: list[str], written_by: str | None
) -> None:
    """`reduce waxs_scan.h5 -o saxs_scan.h5` replaced the raw SAXS scan (1.4 MB of frames)
    by a 7.6 kB run index, and `report results.h5 -o nxct.h5` the NXCT result by HTML, both
    exit 0: an output may replace only an earlier output of its own command."""
    other = tmp_path / "other.h5"
    if written_by is None:
        _raw_scan(other)
    elif written_by == "run index":
        with h5py.File(other, "w") as f:
            f.attrs["jellyroll_stages"] = '["reduce"]'
    else:
        _stage_file(other, written_by)
    before = other.read_bytes()
    result = CliRunner().invoke(app, [*command, "-o", str(other)])
    assert result.exit_code == 1, result.output
    text = _one_line(result.output)
    assert f"{other} exists and is" in text and f"earlier `jellyroll {command[0]}`" in text
    assert other.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["other.h5"]


def test_an_earlier_output_of_the_same_command_or_an_empty_file_may_be_replaced(
    tmp_path: Path,
) -> None:
    """Controls: rerunning a command over its own output, or over an empty file, is no
    refusal (the stages fail later here, on their missing inputs)."""
    from jellyroll.cli._common import check_output_file

    check_output_file(_stage_file(tmp_path / "results.h5", "diagnose"), "r.h5", "diagnose")
    with h5py.File(tmp_path / "run.h5", "w") as f:
        f.attrs["jellyroll_stages"] = "[]"
    check_output_file(tmp_path / "run.h5", "run.h5", "reduce")
    (tmp_path / "report.html").write_text(Report("an earlier report").render())
    check_output_file(tmp_path / "report.html", "report.html", "report")
    (tmp_path / "empty.h5").touch()
    check_output_file(tmp_path / "empty.h5", "nxct.h5", "nxct")
    check_output_file(tmp_path / "new.h5", "nxct.h5", "nxct")


def test_an_empty_mask_file_ends_in_one_line_not_aborted(tmp_path: Path) -> None:
    """An empty .npy given as --mask raised EOFError in np.load, which click turns into
    "Aborted." and nothing else: no file, no cause. One line naming the file now."""
    scan = tmp_path / "scan.h5"
    with h5py.File(scan, "w") as f:
        f["entry/instrument/detector/data"] = [[[0, 0], [0, 0]]] * 2
        f["entry/sample/rotation_angle"] = [0.0, 1.0]
        f["entry/sample/translation"] = [0.0, 0.0]
    mask = tmp_path / "mask.npy"
    mask.touch()
    args = ["reduce", str(scan), "-o", str(tmp_path / "run.h5"), "--mask", str(mask)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "mask.npy: not a readable mask image" in _one_line(result.stderr)
    assert "Aborted" not in result.output


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--saxs", "{missing}"], "give the SAXS file of --saxs"),
        (["--log", "{missing}"], "give the potentiostat log of --log"),
        (["--log", "{folder}"], "is a folder; give the potentiostat log"),
    ],
)
def test_operando_side_files_are_checked_before_the_steps_are_computed(
    tmp_path: Path, option: list[str], named: str
) -> None:
    """A missing --saxs failed only after every step was reduced and reconstructed, with
    h5py's `Unable to synchronously open file`; a folder as --log with `[Errno 21]`."""
    args = [part.format(missing=tmp_path / "nope.h5", folder=tmp_path) for part in option]
    result = CliRunner().invoke(app, ["operando", "series", "-o", "op.h5", *args])
    assert result.exit_code == 1, result.output
    assert named in _one_line(result.output)


def test_a_missing_neutron_volume_is_named_before_the_placement(tmp_path: Path) -> None:
    """`locate RUN XCT --nct missing.tif` placed the slice, then failed at 80 %."""
    missing = tmp_path / "nct.h5"
    result = CliRunner().invoke(
        app, ["locate", "run.h5", "xct.tif", "--nct", f"{missing}::/entry/volume",
              "-o", str(tmp_path / "l.h5")],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert f"{missing}: no such file or folder; give the neutron CT volume" in _one_line(
        result.output
    )


def test_one_run_given_as_both_the_waxs_and_the_saxs_run_is_refused(
    tmp_path: Path, saxs_maps_run
) -> None:
    """`diagnose SAXS SAXS` (the SAXS run typed twice) diagnosed the SAXS maps alone, exit 0:
    a results file without the WAXS phase shares (lic6, lic12, NMC) or the cell's place,
    with only a note. Refused now, before any work, by path or through a link."""
    import numpy as np

    intensity = np.random.default_rng(0).uniform(0.9, 1.1, (24, 24))
    intensity[10:13, 10:13] = 5.0  # one agglomerate
    saxs = saxs_maps_run(tmp_path, intensity)
    link = tmp_path / "link.h5"
    link.symlink_to(saxs)
    for waxs in (saxs, link):
        output = tmp_path / "results.h5"
        result = CliRunner().invoke(app, ["diagnose", str(waxs), str(saxs), "-o", str(output)])
        assert result.exit_code == 1, result.output
        assert "given as both the WAXS and the SAXS run" in _one_line(result.stderr)
        assert not output.exists()


def test_a_hand_written_html_page_is_not_taken_for_a_report(tmp_path: Path, saxs_maps_run) -> None:
    """Any file beginning `<!DOCTYPE html` or `<html` counted as an earlier report:
    `report results.h5 -o index.html` replaced a hand-written page whole, exit 0. Only a
    page beginning as jellyroll's renderer begins its reports is replaced now; the report
    written is itself replaced on a rerun (the control)."""
    import numpy as np

    from jellyroll.defects.run import run_diagnose

    intensity = np.random.default_rng(0).uniform(0.9, 1.1, (24, 24))
    intensity[10:13, 10:13] = 5.0
    results = tmp_path / "results.h5"
    run_diagnose({"saxs": saxs_maps_run(tmp_path, intensity)}, results, name="cell")
    page = tmp_path / "index.html"
    notes = "<!DOCTYPE html>\n<html><body><h1>Lab notebook</h1></body></html>\n"
    page.write_text(notes)
    result = CliRunner().invoke(app, ["report", str(results), "-o", str(page)])
    assert result.exit_code == 1, result.output
    assert f"{page} exists and is no output of jellyroll" in _one_line(result.stderr)
    assert page.read_text() == notes
    report = tmp_path / "report.html"
    for _ in range(2):  # written, then replaced by the rerun
        result = CliRunner().invoke(app, ["report", str(results), "-o", str(report)])
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("command", "what"),
    [(["reduce", "{folder}", "-o", "{out}"], "scan"), (["maps", "{folder}"], "run")],
)
def test_a_folder_given_as_an_input_file_is_named_a_folder(
    tmp_path: Path, command: list[str], what: str
) -> None:
    """`reduce dir.h5` said "no such scan file" (and `maps dir.h5` "no such run file"):
    the folder exists, and the message sent the user looking for a missing file."""
    folder = tmp_path / "dir.h5"
    folder.mkdir()
    args = [part.format(folder=folder, out=tmp_path / "x.h5") for part in command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert f"{folder} is a folder, not a {what} file" in _one_line(result.output)

"""`jellyroll report --nxct/--link/--truth/--operando CELL=PATH`: a report made by hand
gets the per-cell sections of the pipeline's report; a value that names no cell, or names
it unclearly, or a missing file, is refused before the report is drawn."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.defects.run import run_diagnose
from jellyroll.io.provenance import sha256_file
from jellyroll.locate.link_options import LinkOptions
from jellyroll.locate.link_run import run_link
from jellyroll.report.run import _refuse_files_made_from_others
from jellyroll.results import read_diagnosis
from jellyroll.results.store import stage_file

SECTIONS = {  # option -> title of the section of report/run.py it adds for cell "twin"
    "nxct": "Cell twin: neutron and X-ray CT",
    "link": "Cell twin: the slice in the volume, defects in 3D",
    "truth": "Cell twin: found vs truth (digital twin)",
}


@pytest.fixture(scope="module")
def linked(linkable: dict[str, Path], tmp_path_factory) -> dict[str, Path]:
    """``linkable`` with the ``link`` file of its cell (no dossiers: fast)."""
    output = tmp_path_factory.mktemp("report_link") / "link.h5"
    run_link(
        *(linkable[name] for name in ("results", "xct", "nxct", "location")), output,
        LinkOptions(largest_case_a=0), nct=linkable["nct"],
    )  # fmt: skip
    return {**linkable, "link": output}


def _report(results: list[Path], output: Path, *options: str):
    return CliRunner().invoke(app, ["report", *map(str, results), "-o", str(output), *options])


def _words(output: str) -> str:
    return " ".join(output.split())  # rich wraps long lines at 80 columns


def test_the_report_gets_the_sections_of_the_files_given(
    linked: dict[str, Path], tmp_path: Path
) -> None:
    """`--link twin=LINK --nxct NXCT` (a bare path: one results file) add the link and NXCT
    sections; without them the report has neither (what it had before)."""
    plain = _report([linked["results"]], tmp_path / "plain.html")
    assert plain.exit_code == 0, plain.output
    html = (tmp_path / "plain.html").read_text()
    assert not any(title in html for title in SECTIONS.values())
    result = _report(
        [linked["results"]], tmp_path / "report.html",
        "--link", f"twin={linked['link']}", "--nxct", str(linked["nxct"]),
        "--truth", f"twin={linked['location']}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report.html").read_text()
    for title in SECTIONS.values():
        assert title in html
    assert 'data-name="slice_in_volume"' in html and 'data-name="nxct_views"' in html


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--link", "other={link}"], "'other' is not a cell of the results files given; their "
         "cells: twin"),
        (["--nxct", "twin="], "--nxct 'twin=': give CELL=PATH, the cell one of twin"),
        (["--nxct", "={nxct}"], "give CELL=PATH, the cell one of twin"),
        (["--nxct", ""], "give CELL=PATH, the cell one of twin"),
        (["--link", "twin={missing}"], "missing.h5: does not exist; give the link file of "
         "--link twin (from `jellyroll link`)"),
        (["--operando", "{missing}"], "missing.h5: does not exist; give the operando file of "
         "--operando twin"),
        (["--link", "{link}", "--link", "twin={link}"], "--link: cell 'twin' is given twice"),
    ],
)  # fmt: skip
def test_a_value_naming_no_cell_or_no_file_is_refused(
    linked: dict[str, Path], tmp_path: Path, options: list[str], message: str
) -> None:
    files = {**linked, "missing": tmp_path / "missing.h5"}
    given = [option.format(**files) for option in options]
    result = _report([linked["results"]], tmp_path / "report.html", *given)
    assert result.exit_code == 1, result.output
    assert message in _words(result.output) and "Traceback" not in result.output
    assert not (tmp_path / "report.html").exists()


def test_with_several_results_files_the_cell_is_named_and_must_be_one(
    linked: dict[str, Path], tmp_path: Path
) -> None:
    """Two results files: a bare path could be either cell's; two results files of one
    cell (two diagnoses of ``twin``) would both be shown with its file: both refused."""
    again = tmp_path / "again" / "results.h5"
    again.parent.mkdir()
    shutil.copyfile(linked["results"], again)
    results = [linked["results"], again]
    bare = _report(results, tmp_path / "report.html", "--link", str(linked["link"]))
    assert bare.exit_code == 1
    assert "2 results files are given; give CELL=PATH, the cell one of twin" in _words(bare.output)
    shared = _report(results, tmp_path / "report.html", "--link", f"twin={linked['link']}")
    assert shared.exit_code == 1
    assert "2 results files are cell 'twin'" in _words(shared.output)
    assert not (tmp_path / "report.html").exists()


def test_a_file_of_an_option_is_never_the_output(linked: dict[str, Path]) -> None:
    """`-o` naming the link file given: refused before any work, the link file kept."""
    before = linked["link"].read_bytes()
    result = _report([linked["results"]], linked["link"], "--link", f"twin={linked['link']}")
    assert result.exit_code == 1 and "one of the inputs" in _words(result.output)
    assert linked["link"].read_bytes() == before


def test_each_option_reaches_run_report_as_cell_to_file(
    linked: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    """The four options, bare or CELL=PATH, become run_report's cell -> file mappings
    (the operando file is not read here: run_report is replaced)."""
    import jellyroll.report.run as report_run

    operando = tmp_path / "operando=1.h5"  # a bare path holding "=" (no cell's name before)
    operando.write_bytes(b"")
    seen = {}
    monkeypatch.setattr(report_run, "run_report", lambda *a, **kw: seen.update(kw) or a[1])
    result = _report(
        [linked["results"]], tmp_path / "report.html", "--nxct", str(linked["nxct"]),
        "--link", f"twin={linked['link']}", "--truth", f"twin={linked['location']}",
        "--operando", str(operando),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen == {
        "nxct": {"twin": linked["nxct"]},
        "link": {"twin": linked["link"]},
        "truth": {"twin": linked["location"]},
        "operando": {"twin": operando},
    }


def _operando_record(path: Path, inputs: list[Path], zones_from: Path | None) -> Path:
    """An operando file holding only the provenance record an operando run writes: the
    checksums of ``inputs`` and the SAXS file its zones came from."""
    with h5py.File(path, "w") as f:
        f.create_group("/entry/operando")
        record = {
            "configuration": {"zones_from": None if zones_from is None else str(zones_from)},
            "inputs": {str(p): f"sha256:{sha256_file(p)}" for p in inputs},
        }
        f["/entry/provenance/operando"] = json.dumps(record)
    return path


def test_a_file_made_from_another_cells_results_is_refused(
    linked: dict[str, Path], tmp_path: Path, saxs_maps_run
) -> None:
    """The twin's link file given for another cell was shown under that cell's name (the
    twin's agglomerates, bends and threshold as its own), exit 0, and so was an operando
    file. A link file's record names the results file it was made from, an operando
    file's its SAXS file: one not of this cell's results (their checksum, or one their own
    record lists) is refused, naming both. A copy of the right results file elsewhere
    passes, and so does an operando file whose zones came from the cell's SAXS run, or
    that has no zones."""
    with h5py.File(linked["location"], "r") as f:
        saxs = f["/entry/maps/saxs_intensity/data"][()]
    run_diagnose(
        {"saxs": saxs_maps_run(tmp_path, np.fliplr(saxs))}, tmp_path / "other.h5",
        name="other", label="other",
    )  # fmt: skip
    twins = _operando_record(tmp_path / "operando.h5", [linked["results"]], linked["results"])
    results = [linked["results"], tmp_path / "other.h5"]
    for option in (["--link", f"other={linked['link']}"], ["--operando", f"other={twins}"]):
        refused = _report(results, tmp_path / "report.html", *option)
        assert refused.exit_code == 1, refused.output
        words = _words(refused.output)
        assert f"given with {option[0]} for cell 'other') was not made from the results" in words
        assert str(tmp_path / "other.h5") in words and "Traceback" not in words
    assert not (tmp_path / "report.html").exists()
    moved = tmp_path / "moved" / "results.h5"
    moved.parent.mkdir()
    shutil.copy2(linked["results"], moved)
    fine = _report([moved], tmp_path / "report.html", "--link", str(linked["link"]))
    assert fine.exit_code == 0, fine.output
    # zones from the other cell's SAXS run (a file its results list), or no zones: passed
    other = read_diagnosis(tmp_path / "other.h5")
    run_maps = stage_file(tmp_path / "saxs.h5", "maps")
    for zones in (run_maps, None):
        series = _operando_record(tmp_path / "series.h5", [run_maps], zones)
        _refuse_files_made_from_others([other], None, {"other": series})

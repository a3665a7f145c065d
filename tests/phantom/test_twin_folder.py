"""`jellyroll phantom` and `jellyroll demo` and the folders they write into: settings
checked before anything is written, an earlier twin replaced whole, twins reused only
when they are the ones asked for."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import h5py
import pytest
from typer.testing import CliRunner

import jellyroll.phantom.write as phantom_write
import jellyroll.pipeline
from jellyroll.cli import app
from jellyroll.phantom.write import TWIN_FILES, remove_earlier_twin, twin_mismatch, write_phantom


@pytest.mark.parametrize(
    ("options", "settings", "what"),
    [
        (["--seed", "-1"], {"seed": -1}, "seed -1: a seed is 0 or more"),
        (["--operando-steps", "-1"], {"operando_steps": -1}, "operando steps -1"),
        (["--operando-steps", "1"], {"operando_steps": 1}, "operando steps 1"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(
    tmp_path: Path, options: list[str], settings: dict[str, int], what: str
) -> None:
    """A negative seed left an empty folder behind a NumPy traceback; -1 operando steps
    failed after the scans were written (a partial twin); 1 step wrote a potentiostat log
    of NaN voltages and exited 0."""
    out = tmp_path / "twin"
    result = CliRunner().invoke(app, ["phantom", "--size", "tiny", "-o", str(out), *options])
    assert result.exit_code == 2 and what in result.output
    assert "Traceback" not in result.output and not out.exists()
    with pytest.raises(ValueError, match=r"^(seed|operando steps) -?1: "):
        write_phantom(out, size="tiny", **settings)
    assert not out.exists()
    demo = CliRunner().invoke(app, ["demo", "--size", "tiny", "-o", str(out), "--seed", "-1"])
    assert demo.exit_code == 2 and "seed -1" in demo.output and not out.exists()


def test_an_output_that_is_a_file_is_refused_in_one_line(tmp_path: Path) -> None:
    """`-o FILE` ended on a bare FileExistsError traceback; `-o FILE/sub` on a
    NotADirectoryError one."""
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for output, what in ((afile, "a file, not a folder"), (afile / "sub", "Not a directory")):
        result = CliRunner().invoke(app, ["phantom", "--size", "tiny", "-o", str(output)])
        assert result.exit_code == 1 and what in result.output, result.output
        assert "Traceback" not in result.output
    assert afile.read_text() == "mine"


def test_a_folder_with_files_the_phantom_does_not_write_is_refused_untouched(
    tmp_path: Path,
) -> None:
    """The phantom wrote into any folder, beside whatever was there."""
    (tmp_path / "truth.h5").write_bytes(b"old twin")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "operando").mkdir()
    (tmp_path / "operando" / "plan.csv").write_text("mine")
    with pytest.raises(ValueError, match=r"notes\.txt, operando/plan\.csv.*empty output folder"):
        remove_earlier_twin(tmp_path)
    assert (tmp_path / "truth.h5").read_bytes() == b"old twin"
    assert (tmp_path / "notes.txt").read_text() == "mine"
    result = CliRunner().invoke(app, ["phantom", "--size", "tiny", "-o", str(tmp_path)])
    assert result.exit_code == 1 and "notes.txt" in result.output


def test_files_named_like_a_twins_without_its_truth_are_never_deleted(tmp_path: Path) -> None:
    """A folder holding a user's own xct.tif and nct.tif (names the phantom writes) was taken
    for an earlier twin and emptied."""
    for name in ("xct.tif", "nct.tif"):
        (tmp_path / name).write_bytes(b"measured")
    with pytest.raises(ValueError, match=r"nct\.tif, xct\.tif but no truth\.h5 of a twin"):
        remove_earlier_twin(tmp_path)
    assert (tmp_path / "xct.tif").read_bytes() == (tmp_path / "nct.tif").read_bytes() == b"measured"


def test_a_new_twin_replaces_every_file_of_the_earlier_one(tmp_path: Path) -> None:
    """Writing a twin without CT volumes and with 2 operando steps into the folder of one
    with volumes and 3 steps left xct.tif, nct.tif and step_002, which the demo and the
    operando series then took for the new twin's."""
    _fake_twin(tmp_path, "aged_charged", "tiny", 0, nxct=True)  # a truth.h5 of a twin
    for name in TWIN_FILES:
        if name != "truth.h5":
            (tmp_path / name).write_bytes(b"earlier twin")
    (tmp_path / ".waxs_scan.h5.k2j4_x.part").write_bytes(b"killed write")
    (tmp_path / "operando").mkdir()
    for name in ("step_000_waxs.h5", "step_001_waxs.h5", "step_002_waxs.h5", "truth.h5",
                 "potentiostat.csv"):  # fmt: skip
        (tmp_path / "operando" / name).write_bytes(b"earlier twin")
    written = write_phantom(tmp_path, size="tiny", seed=1, nxct=False, operando_steps=2)
    left = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert left == {str(p.relative_to(tmp_path)) for p in written}
    assert "xct.tif" not in left and "operando/step_002_waxs.h5" not in left
    assert "operando/step_001_waxs.h5" in left


def _fake_twin(folder: Path, preset: str, size: str, seed: int, nxct: bool) -> None:
    """The files of a twin, with the settings its truth.h5 records (content not read)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("waxs_scan.h5", "saxs_scan.h5", "agglomerates.csv"):
        (folder / name).write_bytes(b"")
    for name in ("xct.tif", "nct.tif") if nxct else ():
        (folder / name).write_bytes(b"")
    configuration = {"preset": preset, "size": size, "seed": seed, "raw": True}
    with h5py.File(folder / "truth.h5", "w") as f:
        f["entry/provenance"] = json.dumps({"configuration": configuration})


def test_twin_mismatch_names_what_differs(tmp_path: Path) -> None:
    """The demo reused any twin with a truth.h5, whatever its seed or size."""
    _fake_twin(tmp_path, "aged_charged", "tiny", 0, nxct=True)
    asked = {"preset": "aged_charged", "size": "tiny", "nxct": True}
    assert twin_mismatch(tmp_path, seed=0, **asked) is None
    assert twin_mismatch(tmp_path, seed=3, **asked) == "it holds seed 0 (asked: 3)"
    assert "size tiny (asked: small)" in twin_mismatch(tmp_path, **{**asked, "size": "small"},
                                                       seed=0)  # fmt: skip
    assert "CT volumes" in twin_mismatch(tmp_path, seed=0, **{**asked, "nxct": False})
    (tmp_path / "nct.tif").unlink()
    assert twin_mismatch(tmp_path, seed=0, **asked) == "it lacks nct.tif"
    assert twin_mismatch(tmp_path / "none", seed=0, **asked) == "no twin yet"


def test_the_demo_rebuilds_only_the_twins_of_other_settings(tmp_path: Path, monkeypatch) -> None:
    """`jellyroll demo --seed 1` into a folder with seed-0 twins reused them (it checked only
    that truth.h5 existed) and reported on cells of another seed than asked."""
    built: list[tuple[str, int]] = []

    def fake_write(folder: Path, *, preset: str, size: str, seed: int, nxct: bool, console):
        built.append((preset, seed))
        _fake_twin(folder, preset, size, seed, nxct)

    monkeypatch.setattr(phantom_write, "write_phantom", fake_write)
    monkeypatch.setattr(
        jellyroll.pipeline,
        "run_pipeline",
        lambda config, console: SimpleNamespace(log=SimpleNamespace(entries=[]), report="r"),
    )
    twins = tmp_path / "twins"
    _fake_twin(twins / "fresh_charged", "fresh_charged", "tiny", 1, nxct=False)
    _fake_twin(twins / "aged_charged", "aged_charged", "tiny", 0, nxct=True)

    def demo(seed: int) -> None:
        result = CliRunner().invoke(
            app, ["demo", "--size", "tiny", "--seed", str(seed), "-o", str(tmp_path)]
        )
        assert result.exit_code == 0, result.output

    demo(1)
    assert built == [("aged_charged", 1)]  # the fresh twin already has seed 1
    demo(1)
    assert built == [("aged_charged", 1)]  # both as asked: reused
    demo(0)
    assert built == [("aged_charged", 1), ("fresh_charged", 0), ("aged_charged", 0)]


def test_the_demo_never_replaces_a_demo_toml_of_the_users(tmp_path: Path) -> None:
    """`jellyroll demo -o DIR` wrote its configuration over DIR/demo.toml, whatever it was,
    exit 0. One the demo wrote is still replaced (a rerun)."""
    (tmp_path / "demo.toml").write_text("# my own settings\n")
    result = CliRunner().invoke(app, ["demo", "--size", "tiny", "-o", str(tmp_path)])
    assert result.exit_code == 1 and "no demo configuration of jellyroll's" in result.output
    assert (tmp_path / "demo.toml").read_text() == "# my own settings\n"
    assert phantom_write.foreign_demo_config(tmp_path) == tmp_path / "demo.toml"
    phantom_write.demo_config(tmp_path / "earlier", tmp_path / "twins", "tiny")
    assert phantom_write.foreign_demo_config(tmp_path / "earlier") is None

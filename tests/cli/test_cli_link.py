"""`jellyroll link`: the 2D-3D link of a cell whose stages were run by hand, the same as
:func:`run_link` from Python with the same options, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.locate.link_options import LinkOptions
from jellyroll.locate.link_run import read_link, run_link
from jellyroll.results.store import recorded_key


def _link(inputs: dict[str, Path], output: Path, *options: str, location: str = "location"):
    """``jellyroll link`` of ``inputs`` (with the neutron volume) into ``output``."""
    arguments = [str(inputs[name]) for name in ("results", "xct", "nxct")]
    return CliRunner().invoke(
        app,
        ["link", *arguments, str(inputs[location]), "-o", str(output),
         "--nct", str(inputs["nct"]), *options],
    )  # fmt: skip


def _words(output: str) -> str:
    return " ".join(output.split())  # rich wraps long lines at 80 columns


def test_link_writes_what_run_link_writes(linkable: dict[str, Path], tmp_path: Path) -> None:
    result = _link(linkable, tmp_path / "cli" / "link.h5", "--largest-case-a", "0")
    assert result.exit_code == 0, result.output
    python = run_link(
        *(linkable[name] for name in ("results", "xct", "nxct", "location")),
        tmp_path / "python" / "link.h5", LinkOptions(largest_case_a=0), nct=linkable["nct"],
    )  # fmt: skip
    given = read_link(tmp_path / "cli" / "link.h5")
    pd.testing.assert_frame_equal(given.linked, python.linked)
    pd.testing.assert_frame_equal(given.size_bins, python.size_bins)
    # NaN where every resolved agglomerate lies on one side (the tiny twin: unresolved spots
    # are left out of the threshold): equal as NaN
    np.testing.assert_equal(
        (given.threshold_um, given.misclassified), (python.threshold_um, python.misclassified)
    )
    assert given.notes == python.notes and given.figures.keys() == python.figures.keys()
    # the same stage, inputs and options: the same key
    assert recorded_key(given.path) == recorded_key(python.path) is not None
    on_bend = int((python.linked.bend3d_id > 0).sum())
    assert on_bend > 0  # the twin's bend found its agglomerate
    shown = _words(result.output)
    assert f"link: {on_bend} of {len(python.linked)} agglomerates on a 3D bend" in shown
    if np.isfinite(python.threshold_um):
        assert f"threshold measured: {python.threshold_um:.1f} um" in shown
        assert f"{python.misclassified} agglomerate(s) on the wrong side" in shown
    else:
        assert "threshold measured: none (every agglomerate on one side" in shown
    for path in given.figures.values():
        # a long path is broken across lines at 80 columns: compared without spaces
        assert path.is_file() and f"figure:{path}" in "".join(shown.split())
    for row in python.size_bins[python.size_bins["count"] > 0].itertuples():
        assert f"{row.count} │ {row.on_bend} │ {row.fraction:.2f}" in shown


def test_an_option_given_reaches_the_link(linkable: dict[str, Path], tmp_path: Path) -> None:
    """The slice placed 90 um below the true one: beyond the bend's axial reach at the
    default 20 um registration error (nothing linked), within it at 100 um."""
    default = _link(linkable, tmp_path / "default.h5", location="lower")
    assert default.exit_code == 0, default.output
    assert (read_link(tmp_path / "default.h5").linked.bend3d_id == 0).all()
    assert "threshold measured: none" in _words(default.output)
    wider = _link(linkable, tmp_path / "wider.h5", "--registration-error-um", "100",
                  location="lower")  # fmt: skip
    assert wider.exit_code == 0, wider.output
    given = read_link(tmp_path / "wider.h5")
    assert (given.linked.bend3d_id > 0).any()
    python = run_link(
        *(linkable[name] for name in ("results", "xct", "nxct", "lower")),
        tmp_path / "python.h5", LinkOptions(registration_error_um=100.0), nct=linkable["nct"],
    )  # fmt: skip
    pd.testing.assert_frame_equal(given.linked, python.linked)
    with h5py.File(given.path, "r") as f:
        record = json.loads(f["/entry/provenance/link"][()])
    assert record["configuration"]["options"]["registration_error_um"] == 100.0


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"output": "results"}, 1, "it is one of the inputs"),
        ({"output": "nxct"}, 1, "it is one of the inputs"),
        ({"xct": "missing.tif"}, 1, "missing.tif: no such file or folder; give the X-ray CT"),
        ({"nct": "missing.tif"}, 1, "missing.tif: no such file or folder; give the neutron CT"),
        ({"nct": "xct"}, 1, "given as both the X-ray and the neutron volume"),
        ({"nxct": "missing.h5"}, 1, "does not exist; give the NXCT file"),
        ({"location": "missing.h5"}, 1, "does not exist; give the location file"),
        ({"results": "missing.h5"}, 1, "does not exist; give the results file"),
        ({"location": "results"}, 1, "no /entry/location/swaxs_to_xct"),
        ({"location": "nxct", "nxct": "lower"}, 1, "given as the NXCT file, is a location"),
        ({"option": ["--registration-error-um", "-1"]}, 2, "--registration-error-um"),
        ({"option": ["--dossier-half-width-um", "0"]}, 2, "--dossier-half-width-um"),
    ],
)
def test_link_refuses_before_any_work(
    linkable: dict[str, Path], tmp_path: Path, change: dict, code: int, message: str
) -> None:
    """One line naming the file or option, exit 1 (data) or 2 (option), nothing written."""
    given = {**linkable, "output": tmp_path / "link.h5"}
    for name, value in change.items():
        if name != "option":
            given[name] = linkable.get(value, tmp_path / value)
    result = CliRunner().invoke(
        app,
        ["link", *(str(given[n]) for n in ("results", "xct", "nxct", "location")),
         "-o", str(given["output"]), "--nct", str(given["nct"]), *change.get("option", [])],
    )  # fmt: skip
    assert result.exit_code == code, result.output
    assert message in _words(result.output) and "Traceback" not in result.output
    assert not (tmp_path / "link.h5").exists() and not list(tmp_path.glob("*.png"))


def test_link_replaces_its_own_output_only(linkable: dict[str, Path], tmp_path: Path) -> None:
    """Another file at the output (here a CSV table) is refused; a link file may be
    replaced (as every command's own output)."""
    other = tmp_path / "link.h5"
    other.write_text("id,case\n1,A\n")
    refused = _link(linkable, other, "--largest-case-a", "0")
    assert refused.exit_code == 1 and "no output of jellyroll" in _words(refused.output)
    assert other.read_text() == "id,case\n1,A\n"
    other.unlink()
    for _ in range(2):
        done = _link(linkable, other, "--largest-case-a", "0")
        assert done.exit_code == 0, done.output

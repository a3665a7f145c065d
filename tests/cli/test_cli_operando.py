"""`jellyroll operando --poni/--mask`: checked like the other commands' inputs, and handed
to every step (the command had neither: the steps took the geometry of their files)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from jellyroll.cli import app


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _integrated_steps(folder: Path) -> list[str]:
    """Two scans of patterns integrated already, 20 minutes apart."""
    folder.mkdir()
    start = datetime(2026, 1, 1, 8, 0, tzinfo=UTC).timestamp()
    scans = []
    for k in range(2):
        path = folder / f"op_{k}.h5"
        with h5py.File(path, "w") as f:
            f["entry/start_time"] = datetime.fromtimestamp(start + 1200 * k, UTC).isoformat()
            f["entry/integrated/intensity"] = np.ones((1, 4), np.float32)
        scans.append(str(path))
    return scans


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("--poni", "does not exist; give the PONI file of --poni"),
        ("--mask", "does not exist; give the detector mask of --mask"),
    ],
)
def test_a_missing_poni_or_mask_is_named_before_the_steps(
    tmp_path: Path, option: str, named: str
) -> None:
    missing = tmp_path / "nope.poni"
    result = CliRunner().invoke(
        app, ["operando", "series", "-o", str(tmp_path / "op.h5"), option, str(missing)]
    )
    assert result.exit_code == 1, result.output
    assert f"{missing}: {named}" in _one_line(result.output)


def test_a_poni_for_integrated_steps_reaches_them_and_is_refused(tmp_path: Path) -> None:
    """The option is handed to the steps: patterns integrated already cannot take it."""
    scans = _integrated_steps(tmp_path / "op")
    poni = tmp_path / "moved.poni"
    poni.write_text("Distance: 0.2\n")
    output = tmp_path / "out.h5"
    result = CliRunner().invoke(app, ["operando", *scans, "-o", str(output), "--poni", str(poni)])
    assert result.exit_code == 1, result.output
    assert "op_0.h5 (step 0): holds no detector frames" in _one_line(result.output)
    assert f"a PONI ({poni})" in _one_line(result.output)
    assert not output.with_name("out_steps").exists()

"""The PONI and the mask given for a series act on every step of raw frames, and are
refused for steps without frames (they were ignored: each step was integrated with the
geometry its file held, exit 0)."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
from rich.console import Console

import jellyroll.phantom.write as phantom_write
import jellyroll.pipeline.run as pipeline_run
from jellyroll.maps.options import MapsOptions
from jellyroll.operando.options import OperandoOptions
from jellyroll.operando.run import operando_key, run_operando
from jellyroll.phantom.parameters import SIZES
from jellyroll.phantom.twin import make_twin
from jellyroll.pipeline.config import CellInput, RunConfig
from jellyroll.pipeline.stages import StageLog
from jellyroll.recon.options import ReconstructOptions
from jellyroll.reduce.run import run_reduce
from jellyroll.results import read_sinogram

DISTANCE_FACTOR = 1.1
"""The recalibrated sample-detector distance, as a factor of the one the frames' files hold."""


def _raw_steps(out: Path, n_steps: int) -> Path:
    """A tiny twin's charge series with raw frames (the phantom writes integrated patterns):
    each step holds its frames, the detector's PONI and mask, its start time and state of
    charge."""

    def raw(path, projections, schedule, counters, setup, config, seed, console, metadata):
        phantom_write._write_raw_scan(
            path, projections, schedule, counters, setup, config, seed, console
        )
        with h5py.File(path, "r+") as f:
            f["entry/start_time"] = metadata["start_time"]
            f["entry/sample/state_of_charge"] = metadata["state_of_charge"]

    twin = make_twin("aged_charged", SIZES["tiny"], seed=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(phantom_write, "_write_integrated_scan", raw)
        phantom_write._write_operando(out, twin, n_steps, 0, Console(quiet=True))
    return out


def _moved_poni(scan: Path, path: Path, factor: float = DISTANCE_FACTOR) -> Path:
    """The scan's own PONI with its distance times ``factor``."""
    with h5py.File(scan, "r") as f:
        text = f["entry/instrument/detector/poni"].asstr()[()]
    found = re.search(r"Distance: (\S+)", text).group(1)
    path.write_text(text.replace(found, repr(float(found) * factor)))
    return path


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two raw steps made once with a moved PONI and a mask (FBP: fast); the analysis
    refuses them (see the test of ``refusal``) even with the q axis check skipped."""
    folder = tmp_path_factory.mktemp("operando_raw")
    series = _raw_steps(folder / "series", 2)
    poni = _moved_poni(series / "step_000_waxs.h5", folder / "moved.poni")
    with h5py.File(series / "step_000_waxs.h5", "r") as f:
        shape = f["entry/instrument/detector/data"].shape[1:]
    mask = np.zeros(shape, np.uint8)
    mask[:, : shape[1] // 4] = 1  # a quarter of the columns hidden (a beamstop's shadow)
    np.save(folder / "mask.npy", mask)
    output = folder / "op.h5"
    with warnings.catch_warnings(), pytest.raises(ValueError) as refusal:
        warnings.simplefilter("ignore")
        run_operando(
            series,
            output,
            reconstruct_options=ReconstructOptions(method="fbp"),
            maps_options=MapsOptions(q_check=False),  # the graphite guard behind it
            poni_path=poni,
            mask_path=folder / "mask.npy",
            figures=False,
        )
    return {
        "series": series,
        "output": output,
        "poni": poni,
        "mask": folder / "mask.npy",
        "refusal": refusal.value,
    }


def test_steps_integrated_with_a_wrong_distance_are_refused(calibrated: dict[str, Path]) -> None:
    """The PONI's distance 10 % long (the q axis stretched): the charged step's LiC6 line
    fell below the fit's q range and its graphite signal was negative (-66 and -284 beside
    114 for three steps), and the series was analysed with the anode's half lithiation NaN
    and 37 damaged zones of noise, exit 0. Refused after the steps are made, naming the
    step whose graphite is missing (no results file)."""
    assert re.search(
        r"step_001\.h5 \(step 1\): its graphite signal .*PONI distance",
        str(calibrated["refusal"]),
    )
    assert not calibrated["output"].exists()


def test_steps_whose_q_axis_puts_lines_on_their_neighbours_are_refused(
    calibrated: dict[str, Path], tmp_path: Path
) -> None:
    """A distance 5 % long moves each graphite line onto its neighbour's window: the tiny
    twin's anode was half lithiated at SOC 0.26 instead of 0.55, with no damaged zone,
    exit 0 (the steps reconstruct only the Table 1 channels, which hold none of the metals'
    lines, so the maps said "not checked"). The first step's maps now check the sinogram's
    mean pattern (every channel) and refuse it, naming the step and the factor; nothing is
    written."""
    poni = _moved_poni(calibrated["series"] / "step_000_waxs.h5", tmp_path / "five.poni", 1.05)
    output = tmp_path / "op.h5"
    with warnings.catch_warnings(), pytest.raises(ValueError) as refusal:
        warnings.simplefilter("ignore")
        run_operando(
            calibrated["series"],
            output,
            reconstruct_options=ReconstructOptions(method="fbp"),
            poni_path=poni,
            figures=False,
        )
    # the twin's lines give 1 / 1.05 = 0.952 to 0.3 %, the accepted departure
    assert re.search(
        r"step_000_waxs\.h5 \(step 0\): the q axis is off by a factor 0\.95\d+ .* "
        r"sinogram's mean pattern.*give the right PONI \(--poni",
        str(refusal.value),
    )
    assert not output.exists()


def test_raw_steps_are_integrated_with_the_poni_and_mask_given(
    calibrated: dict[str, Path], tmp_path: Path
) -> None:
    """The steps' sinograms were those of the geometry in their files (q up to 5.40 1/A
    instead of 4.91 for a distance 10 % longer) and of no mask. Each step is now the
    sinogram `jellyroll reduce --poni --mask` makes of its scan: equal to float32 rounding
    (the same integration of the same frames)."""
    scan = calibrated["series"] / "step_001_waxs.h5"  # the last step, as every other
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_reduce(
            scan, tmp_path / "alone.h5", poni_path=calibrated["poni"], mask_path=calibrated["mask"]
        )
    expected = read_sinogram(tmp_path / "alone.h5", errors=False)
    step = read_sinogram(calibrated["output"].with_name("op_steps") / "step_001.h5", errors=False)
    np.testing.assert_allclose(step.q_A, expected.q_A, rtol=1e-6)
    np.testing.assert_allclose(step.data, expected.data, rtol=1e-5, equal_nan=True)
    # the file's own geometry reaches further out in q (a shorter distance): not used
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_reduce(calibrated["series"] / "step_000_waxs.h5", tmp_path / "own.h5")
    own = read_sinogram(tmp_path / "own.h5", errors=False)
    assert own.q_A[-1] > 1.05 * step.q_A[-1]


def test_the_poni_and_mask_are_in_the_operando_key(calibrated: dict[str, Path]) -> None:
    """A PONI or mask given (or changed) must redo the series: its key named only the scans."""
    series, options = calibrated["series"], OperandoOptions()
    plain = operando_key(series, options)
    with_poni = operando_key(series, options, poni_path=calibrated["poni"])
    both = operando_key(series, options, poni_path=calibrated["poni"], mask_path=calibrated["mask"])
    assert len({plain, with_poni, both}) == 3


def _integrated_steps(folder: Path, n: int) -> list[Path]:
    """Scans of patterns integrated already (no frames), each with its start time."""
    folder.mkdir()
    start = datetime(2026, 1, 1, 8, 0, tzinfo=UTC).timestamp()
    scans = []
    for k in range(n):
        path = folder / f"op_{k}.h5"
        with h5py.File(path, "w") as f:
            f["entry/start_time"] = datetime.fromtimestamp(start + 1200 * k, UTC).isoformat()
            f["entry/integrated/intensity"] = np.ones((1, 4), np.float32)
        scans.append(path)
    return scans


@pytest.mark.parametrize("given", ["poni_path", "mask_path"])
def test_a_poni_or_mask_for_integrated_steps_is_refused_leaving_nothing(
    tmp_path: Path, given: str
) -> None:
    """Patterns integrated already cannot take another geometry or mask: refused before any
    step is made, naming the step, as `jellyroll reduce` refuses them for one scan."""
    scans = _integrated_steps(tmp_path / "op", 2)
    calibration = tmp_path / "calibration.poni"
    calibration.write_text("Distance: 0.2\n")
    with pytest.raises(ValueError, match=r"op_0\.h5 \(step 0\): holds no detector frames"):
        run_operando(scans, tmp_path / "out.h5", figures=False, **{given: calibration})
    assert not (tmp_path / "out_steps").exists()


def test_a_mask_of_another_detector_is_refused_before_any_step(
    calibrated: dict[str, Path], tmp_path: Path
) -> None:
    """Found only at the first step's reduction, after the steps folder was made."""
    np.save(tmp_path / "small.npy", np.zeros((5, 5), np.uint8))
    output = tmp_path / "op.h5"
    with pytest.raises(ValueError, match=r"small\.npy: the mask is 5 x 5 pixels"):
        run_operando(calibrated["series"], output, mask_path=tmp_path / "small.npy")
    assert not output.with_name("op_steps").exists()


def _stage_calibration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: str
) -> dict[str, object]:
    """What `jellyroll run` hands the operando stage of a cell with ``poni_waxs`` and
    ``mask``, for a series of raw frames or of integrated ``steps``."""
    folder = tmp_path / "series"
    if steps == "raw":
        folder.mkdir()
        for k in range(2):
            with h5py.File(folder / f"op_{k}.h5", "w") as f:
                f["entry/instrument/detector/data"] = np.zeros((1, 2, 2), np.int32)
    else:
        _integrated_steps(folder, 2)
    cell = CellInput(
        name="a",
        waxs=tmp_path / "w.h5",
        saxs=tmp_path / "s.h5",
        poni_waxs=tmp_path / "waxs.poni",
        mask=tmp_path / "mask.npy",
        operando=folder,
    )
    seen: dict[str, object] = {}
    monkeypatch.setattr(pipeline_run, "operando_key", lambda *a, **k: seen.update(key=k) or "k")
    monkeypatch.setattr(pipeline_run, "run_operando", lambda *a, **k: seen.update(run=k))
    log = StageLog()
    monkeypatch.setattr(log, "run", lambda label, path, key, action: (key(), action()))
    config = RunConfig(cells=[cell], output=tmp_path / "out")
    waxs_run = tmp_path / "waxs_run.h5"  # read for [reconstruct] channels other than "all"
    pipeline_run._operando_stage(
        cell, tmp_path / "r.h5", config, tmp_path, log, Console(), waxs_run
    )
    return {"cell": cell, **seen}


def test_the_pipeline_gives_raw_steps_the_cells_poni_and_mask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`jellyroll run` reduced the operando steps without the cell's poni_waxs and mask
    (its WAXS scan with them): every step's q axis off by the recalibration, exit 0."""
    found = _stage_calibration(tmp_path, monkeypatch, "raw")
    cell = found["cell"]
    for call in ("run", "key"):
        assert found[call]["poni_path"] == cell.poni_waxs
        assert found[call]["mask_path"] == cell.mask


def test_the_pipeline_gives_integrated_steps_no_calibration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cell's PONI and mask are those of its frame scans: a series integrated already
    takes neither (as a sinogram file beside a frame scan takes no mask)."""
    found = _stage_calibration(tmp_path, monkeypatch, "integrated")
    for call in ("run", "key"):
        assert found[call]["poni_path"] is None
        assert found[call]["mask_path"] is None

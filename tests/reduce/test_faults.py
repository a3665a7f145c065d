"""Faults a user can cause or meet: impossible geometry, ranges off the detector, a second
writer, missing inputs and folders. Each gives a clear error or the right result, never a
NaN file reported as success."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.io.lock import OutputLockedError, lock_path
from jellyroll.io.scans import write_frame_table
from jellyroll.phantom.write import write_phantom
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.run import _air_ends, run_reduce
from jellyroll.results import Sinogram, read_sinogram
from jellyroll.results.store import stage_file

# No spot filter: a cell's neighbours change where frames are lost, and with them which
# cells the filter replaces; these tests compare the placement with the intact scan's.
OPTIONS = ReduceOptions(npt=120, radial_range=(0.8, 5.2), block_frames=400, spot_filter=False)


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("twin")
    write_phantom(out, preset="fresh_charged", size="tiny", seed=3, nxct=False)
    return out


def _copy_with(twin: Path, tmp_path: Path, edit) -> Path:
    scan = tmp_path / "scan.h5"
    scan.write_bytes((twin / "waxs_scan.h5").read_bytes())
    with h5py.File(scan, "r+") as f:
        edit(f)
    return scan


def test_a_negative_wavelength_is_refused(twin: Path, tmp_path: Path) -> None:
    def negative(f: h5py.File) -> None:
        poni = f["/entry/instrument/detector/poni"].asstr()[()]
        lines = [
            "Wavelength: -1.61e-11" if line.startswith("Wavelength") else line
            for line in poni.splitlines()
        ]
        del f["/entry/instrument/detector/poni"]
        f["/entry/instrument/detector/poni"] = "\n".join(lines)

    scan = _copy_with(twin, tmp_path, negative)
    with pytest.raises(ValueError, match=r"scan\.h5.*Wavelength must be > 0"):
        run_reduce(scan, tmp_path / "run.h5", OPTIONS)
    assert not (tmp_path / "run.h5").exists()


def test_a_radial_range_off_the_detector_is_refused(twin: Path, tmp_path: Path) -> None:
    options = OPTIONS.model_copy(update={"radial_range": (40.0, 50.0)})
    with pytest.raises(ValueError, match="no unmasked detector pixel falls in the radial range"):
        run_reduce(twin / "waxs_scan.h5", tmp_path / "run.h5", options)


def test_a_second_writer_is_refused_while_the_first_lives(twin: Path, tmp_path: Path) -> None:
    output = tmp_path / "run.h5"
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(output).write_text(
            f'{{"pid": {owner.pid}, "host": "{socket.gethostname()}", "started": 0}}'
        )
        with pytest.raises(OutputLockedError, match=f"process {owner.pid}"):
            run_reduce(twin / "waxs_scan.h5", output, OPTIONS)
    finally:
        owner.kill()
        owner.wait()


def test_a_stale_lock_is_taken_over_and_its_leftovers_removed(twin: Path, tmp_path: Path):
    output = tmp_path / "run.h5"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(output).write_text(
        f'{{"pid": {dead.pid}, "host": "{socket.gethostname()}", "started": 0}}'
    )
    leftover = tmp_path / ".run.maps.h5.abcd.part"  # an atomic write killed half-way
    leftover.write_bytes(b"half")
    run_reduce(twin / "waxs_scan.h5", output, OPTIONS)
    assert read_sinogram(output).data.shape[2] == 120
    assert not leftover.exists() and not lock_path(output).exists()


def test_output_folders_are_created(twin: Path, tmp_path: Path) -> None:
    output = tmp_path / "new" / "folder" / "run.h5"
    run_reduce(twin / "waxs_scan.h5", output, OPTIONS)
    assert np.isfinite(read_sinogram(output).data).any()


def test_cli_errors_are_one_line_on_stderr(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["reduce", str(tmp_path / "missing.h5"), "-o", "run.h5"])
    assert result.exit_code == 1
    assert "missing.h5" in result.stderr and "no such scan file" in result.stderr
    assert "Traceback" not in result.output and "no such scan file" not in result.stdout
    text = tmp_path / "notes.h5"
    text.write_text("not an HDF5 file")
    result = runner.invoke(app, ["reduce", str(text), "-o", str(tmp_path / "run.h5")])
    assert (
        result.exit_code == 1
        and "notes.h5" in result.stderr
        and "not a readable HDF5" in (result.stderr)
    )
    config = tmp_path / "cells.toml"
    config.write_text(f'[[cells]]\nname = "a"\nwaxs = "{tmp_path / "nope.h5"}"\nsaxs = "s.h5"\n')
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code == 1 and "nope.h5" in result.stderr
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "jellyroll.cli", "--debug", "reduce", str(tmp_path / "x.h5"),
         "-o", str(tmp_path / "run.h5")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_an_output_that_is_a_folder_is_refused(twin: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        run_reduce(twin / "waxs_scan.h5", tmp_path, OPTIONS)


def test_a_full_disk_is_refused_before_starting(
    twin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=1000))
    with pytest.raises(OSError, match="GiB free, the reduction needs about"):
        run_reduce(twin / "waxs_scan.h5", tmp_path / "run.h5", OPTIONS)
    assert not list(tmp_path.iterdir())


def _rewritten(twin: Path, tmp_path: Path, change) -> Path:
    """The twin's WAXS scan written again after ``change(readings) -> keep`` edits the
    readings (dict of arrays, in place) and returns the frames to keep."""
    with h5py.File(twin / "waxs_scan.h5", "r") as f:
        frames = f["/entry/instrument/detector/data"][()]
        readings = {
            "angle": f["/entry/sample/rotation_angle"][()],
            "translation": f["/entry/sample/translation"][()],
            "monitor": f["/entry/monitor/data"][()],
            "diode": f["/entry/instrument/diode/data"][()],
        }
        poni = f["/entry/instrument/detector/poni"].asstr()[()]
        mask = f["/entry/instrument/detector/mask"][()]
    keep = change(readings)
    scan = tmp_path / "changed_scan.h5"
    from jellyroll.io.raw_scan import RawScanWriter

    with RawScanWriter(scan, frames.shape[1:], poni=poni, mask=mask) as writer:
        writer.append(
            frames[keep], *(readings[k][keep] for k in ("angle", "translation", "monitor", "diode"))
        )
    return scan


@pytest.fixture(scope="module")
def intact(twin: Path, tmp_path_factory) -> Sinogram:
    output = tmp_path_factory.mktemp("intact") / "run.h5"
    run_reduce(twin / "waxs_scan.h5", output, OPTIONS)
    return read_sinogram(output)


def _angles(readings: dict) -> np.ndarray:
    return np.unique(np.round(readings["angle"], 3))


@pytest.mark.parametrize(
    "case",
    ["two projections lost", "four translation steps lost", "one angle reads -37 deg",
     "one monitor reading NaN", "NaN angle and translation readings"],
)  # fmt: skip
def test_lost_frames_and_spoiled_readings_keep_the_grid(
    twin: Path, tmp_path: Path, intact: Sinogram, case: str
) -> None:
    """The grid stays the nominal one (36 angles x 104 translations), the affected cells
    are NaN, every other cell is the intact run's, and the spoiled frames are named."""
    spoiled: list[int] = []

    def change(readings: dict) -> np.ndarray:
        keep = np.ones(readings["angle"].size, bool)
        angles = np.round(readings["angle"], 3)
        translations = np.round(readings["translation"], 5)
        if case == "two projections lost":
            keep &= ~np.isin(angles, _angles(readings)[[10, 11]])
        elif case == "four translation steps lost":
            keep &= ~np.isin(translations, np.unique(translations)[[40, 41, 42, 43]])
        else:
            frame = int(np.flatnonzero(np.isclose(angles, _angles(readings)[7]))[50])
            spoiled.append(frame)
            if case == "one angle reads -37 deg":
                readings["angle"][frame] = -37.0
            elif case == "one monitor reading NaN":
                readings["monitor"][frame] = np.nan
            else:
                readings["angle"][frame] = np.nan
                readings["translation"][frame + 1] = np.nan
                spoiled.append(frame + 1)
        return keep

    scan = _rewritten(twin, tmp_path, change)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_reduce(scan, tmp_path / "run.h5", OPTIONS)
    assert not [w for w in caught if w.category is RuntimeWarning]  # no NumPy noise
    sinogram = read_sinogram(tmp_path / "run.h5")
    assert sinogram.data.shape == intact.data.shape
    np.testing.assert_allclose(sinogram.rotation_angle_deg, intact.rotation_angle_deg, atol=0.01)
    np.testing.assert_allclose(sinogram.translation_mm, intact.translation_mm, atol=1e-4)
    # the centre within a tenth of a translation step (10 um) of the intact scan's
    assert abs(report.rotation_centre_mm - intact.rotation_centre_mm) < 1e-3
    # Every cell that holds data in both equals the intact run's (no lost cell is an air
    # column, so air subtraction is unchanged). Frames are normalised by monitor / (mean
    # monitor of the frames kept): losing frames changes that mean (the twin's monitor
    # drifts ~1 %), a factor common to all cells.
    both = np.isfinite(sinogram.data) & np.isfinite(intact.data) & (intact.data > 0)
    assert both.mean() > 0.5
    factor = np.median(sinogram.data[both] / intact.data[both])
    assert abs(factor - 1) < 1e-3
    assert np.allclose(sinogram.data[both] / factor, intact.data[both], rtol=1e-5, atol=1e-6)
    present = ~np.isnan(intact.data).all(axis=2)  # the twin drops a few frames itself
    lost = np.isnan(sinogram.data).all(axis=2) & present
    region = np.zeros_like(lost)
    if case == "two projections lost":
        region[[10, 11]] = True
    elif case == "four translation steps lost":
        region[:, 40:44] = True
    if region.any():
        assert np.array_equal(lost, region & present)
    else:
        assert lost.sum() == len(spoiled)
    messages = " ".join(str(w.message) for w in caught)
    for frame in spoiled:
        assert f"frame {frame}" in messages and "changed_scan.h5" in messages


def test_a_scan_without_usable_readings_is_an_error(twin: Path, tmp_path: Path) -> None:
    def no_monitor(readings: dict) -> np.ndarray:
        readings["monitor"][:] = np.nan
        return np.ones(readings["angle"].size, bool)

    scan = _rewritten(twin, tmp_path, no_monitor)
    with pytest.raises(ValueError, match="no frame has usable readings"):
        run_reduce(scan, tmp_path / "run.h5", OPTIONS)


def test_line_ends_that_are_not_air_are_not_subtracted(twin: Path, tmp_path: Path) -> None:
    """A scan cut to the middle translations (its ends inside the cell) warns, says how to
    turn the subtraction off and gives the sinogram without it, never sample minus sample.
    (The whole twin, air beside the cell, is subtracted as before: the other tests.)"""

    def middle(readings: dict) -> np.ndarray:
        steps = np.unique(np.round(readings["translation"], 5))
        return np.isin(np.round(readings["translation"], 5), steps[35:69])

    scan = _rewritten(twin, tmp_path, middle)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_reduce(scan, tmp_path / "run.h5", OPTIONS)
    messages = " ".join(str(w.message) for w in caught)
    assert "changed_scan.h5: the line ends are not air" in messages and "--no-air" in messages
    plain = OPTIONS.model_copy(update={"subtract_air": False})
    run_reduce(scan, tmp_path / "plain.h5", plain)
    with h5py.File(stage_file(tmp_path / "run.h5", "reduce")) as f:
        assert not f["entry/sinogram"].attrs["air_subtracted"]
    kept, unsubtracted = read_sinogram(tmp_path / "run.h5"), read_sinogram(tmp_path / "plain.h5")
    assert np.array_equal(kept.data, unsubtracted.data, equal_nan=True)


def test_a_frame_without_beam_is_left_out(twin: Path, tmp_path: Path) -> None:
    """A monitor reading 1e-3 (median 1e5) put 1e10 in one cell of a sinogram whose cells
    reach a few hundred, exit 0: such a frame saw no beam and is left out, with a warning."""

    def no_beam(f: h5py.File) -> None:
        f["/entry/monitor/data"][7] = 1e-8 * f["/entry/monitor/data"][7]

    with pytest.warns(UserWarning, match=r"monitor is below 1% of its median .* frame 7"):
        report = run_reduce(_copy_with(twin, tmp_path, no_beam), tmp_path / "r.h5", options=OPTIONS)
    intact = run_reduce(twin / "waxs_scan.h5", tmp_path / "intact.h5", options=OPTIONS)
    reference = read_sinogram(tmp_path / "intact.h5").data
    assert np.nanmax(read_sinogram(tmp_path / "r.h5").data) <= np.nanmax(reference)
    assert report.missing_cells == intact.missing_cells + 1


@pytest.mark.parametrize("reading", [0, 50000])
def test_a_dead_or_stuck_diode_writes_no_attenuation(
    twin: Path, tmp_path: Path, reading: int
) -> None:
    """A diode reading 0 on every frame wrote an all-NaN attenuation sinogram in silence;
    with a centre given, reconstruct then wrote an all-zero attenuation map and recorded
    self-absorption as corrected. One stuck at 50000 wrote a flat attenuation, whose centre
    of mass pulled an operando series' shared rotation axis off, and another step was
    blamed for a moved stage, exit 1 with the wrong advice."""

    def stuck(f: h5py.File) -> None:
        f["/entry/instrument/diode/data"][...] = reading

    with pytest.warns(UserWarning, match=rf"the diode reads {reading} on every frame"):
        run_reduce(_copy_with(twin, tmp_path, stuck), tmp_path / "r.h5", options=OPTIONS)
    assert read_sinogram(tmp_path / "r.h5").attenuation is None


def test_a_mask_that_hides_every_pixel_is_refused(twin: Path, tmp_path: Path) -> None:
    """An inverted mask (1 = valid) left the module gaps (reading -1) alone: every pattern
    was NaN, and reduce reported "7 missing cells" with exit 0."""

    def inverted(f: h5py.File) -> None:
        mask = f["/entry/instrument/detector/mask"]
        mask[...] = mask[()] == 0

    with pytest.raises(ValueError, match=r"scan\.h5: every frame integrated to no value.*mask"):
        run_reduce(_copy_with(twin, tmp_path, inverted), tmp_path / "r.h5", options=OPTIONS)


def test_a_frame_file_that_never_arrived_is_left_out(shared_real: Path, tmp_path: Path) -> None:
    """A CBF series whose table names a file that is not there: the reader leaves the frame
    out, but the reduction's key hashed every file and stopped on '[Errno 2]'."""
    frame = shared_real / "ceo2_pilatus2m.cbf"
    names = [str(frame), str(frame), str(tmp_path / "absent.cbf"), str(frame)]
    table = write_frame_table(
        tmp_path / "frames.csv", names, np.zeros(4), 1.0 + 0.01 * np.arange(4)
    )
    options = ReduceOptions(npt=100, spot_filter=False)
    poni = shared_real / "ceo2_pilatus2m.poni"
    with pytest.warns(UserWarning, match="absent.cbf"):
        report = run_reduce(table, tmp_path / "run.h5", options=options, poni_path=poni)
    assert report.unreadable_frames == 1 and report.missing_cells == 1


def test_a_mask_of_another_detector_is_named(twin: Path, tmp_path: Path) -> None:
    """A --mask of the wrong shape failed with a message that named neither file."""
    with h5py.File(twin / "waxs_scan.h5", "r") as f:
        mask = f["/entry/instrument/detector/mask"][()]
    np.save(tmp_path / "mask.npy", mask.T)
    with pytest.raises(ValueError, match=r"mask\.npy: the mask is .* the frames of .*waxs_scan"):
        run_reduce(
            twin / "waxs_scan.h5",
            tmp_path / "r.h5",
            options=OPTIONS,
            mask_path=tmp_path / "mask.npy",
        )


def test_a_mask_given_adds_to_the_scans_own(twin: Path, tmp_path: Path) -> None:
    """A mask given with the scan replaced the mask the scan file holds: the stored mask's
    pixels (here a hot column, as a beamstop's edge or a hot-pixel line; one mask named in
    a cell for both detector positions) were integrated again: 5.6 % of the sinogram's
    values changed, by up to 2.7e5 counts, exit 0. A mask given now hides its pixels
    besides the file's: an empty one changes nothing (identical sinograms: the same pixels
    integrated)."""

    def hot_column(f: h5py.File) -> None:
        frames = f["/entry/instrument/detector/data"]
        column = frames[:, :, 100]
        frames[:, :, 100] = np.where(column >= 0, 10**6, column)
        f["/entry/instrument/detector/mask"][:, 100] = 1

    scan = _copy_with(twin, tmp_path, hot_column)
    np.save(tmp_path / "empty.npy", np.zeros((24, 192), np.uint8))
    run_reduce(scan, tmp_path / "own.h5", options=OPTIONS)
    run_reduce(scan, tmp_path / "both.h5", options=OPTIONS, mask_path=tmp_path / "empty.npy")
    own, both = read_sinogram(tmp_path / "own.h5"), read_sinogram(tmp_path / "both.h5")
    np.testing.assert_array_equal(both.data, own.data)


def _virtual_scan(folder: Path, second: np.ndarray) -> Path:
    """A scan whose 6 frames are a virtual dataset over ``part0.h5`` (frames 0-2) and
    ``part1.h5`` (``second``, mapped as frames 3-5), as multi-file detectors write them."""
    frames = np.arange(6 * 4 * 5, dtype=np.int32).reshape(6, 4, 5)
    with h5py.File(folder / "part0.h5", "w") as f:
        f["data"] = frames[:3]
    with h5py.File(folder / "part1.h5", "w") as f:
        f["data"] = second
    layout = h5py.VirtualLayout(shape=frames.shape, dtype=np.int32)
    layout[:3] = h5py.VirtualSource("part0.h5", "data", shape=(3, 4, 5))
    layout[3:] = h5py.VirtualSource("part1.h5", "data", shape=(3, 4, 5))
    scan = folder / "master.h5"
    with h5py.File(scan, "w") as f:
        f.create_virtual_dataset("/entry/instrument/detector/data", layout)
        f["/entry/sample/rotation_angle"] = np.repeat([0.0, 90.0], 3)
        f["/entry/sample/translation"] = np.tile([0.0, 0.01, 0.02], 2)
    return scan


@pytest.mark.parametrize("fault", ["missing", "short", "renamed"])
def test_a_virtual_scan_with_a_lost_data_file_is_refused(tmp_path: Path, fault: str) -> None:
    """HDF5 reads the rows of a virtual dataset whose source file is missing (or lacks its
    dataset, or is shorter than mapped) as the fill value, 0 counts, without an error: the
    tiny twin's SAXS scan as a master over two files, the second one gone, reduced,
    reconstructed and mapped with exit 0 and a SAXS map 149 % (RMS) off the whole scan's."""
    from jellyroll.io.scans import ScanFormatError, open_scan

    second = np.ones((3, 4, 5), np.int32)
    scan = _virtual_scan(tmp_path, second)
    reader = open_scan(scan)  # intact: every frame as written
    assert np.array_equal(reader.read(0, 6).data[3:], second)
    reader.close()
    if fault == "missing":
        (tmp_path / "part1.h5").unlink()
    else:
        with h5py.File(tmp_path / "part1.h5", "r+") as f:
            if fault == "renamed":
                f.move("data", "frames")
            else:  # one frame of the three mapped
                del f["data"]
                f["data"] = second[:1]
    with pytest.raises(ScanFormatError, match=r"master\.h5: .*rows 3 to 5 come from part1"):
        open_scan(scan)
    with pytest.raises(ScanFormatError, match=r"part1\.h5:data, (which|whose)"):
        run_reduce(scan, tmp_path / "run.h5", OPTIONS)


def _tiny_scan(
    path: Path, *, monitor: bool = True, diode: bool = True, frames: np.ndarray | None = None
) -> Path:
    """A 6 x 14 scan of 24 x 28 pixel frames through a disc (0.3 mm radius) that absorbs
    1.2 at its centre, the beam constant (monitor 1e5); ``frames`` (84, 24, 28) replaces
    the Poisson frames (counts 10 + 50 x thickness)."""
    from jellyroll.io.poni import poni_text
    from jellyroll.io.raw_scan import RawScanWriter
    from jellyroll.phantom.detector import geometry_for_q_range, make_integrator

    shape, centre = (24, 28), (-3.3, 12.7)
    distance = geometry_for_q_range(shape, 6.0, 0.161, centre)
    ai = make_integrator(shape, distance_m=distance, wavelength_A=0.161, beam_centre_px=centre)
    angles, translations = np.meshgrid(np.arange(6) * 30.0, (np.arange(14) - 6.5) * 0.05)
    angles, translations = angles.T.ravel(), translations.T.ravel()
    thickness = np.clip(1 - (translations / 0.3) ** 2, 0, None)
    if frames is None:
        rng = np.random.default_rng(0)
        counts = 10 + 50 * thickness[:, None, None] * np.ones(shape)
        frames = rng.poisson(counts).astype(np.int32)
    readings = {
        "monitor": np.full(angles.size, 1e5) if monitor else None,
        "diode": 3e4 * np.exp(-1.2 * thickness) if diode else None,
    }
    with RawScanWriter(path, shape, poni=poni_text(ai)) as writer:
        writer.append(frames, angles, translations, **readings)
    return path


TINY = ReduceOptions(npt=20, filter="none", spot_filter=False, subtract_air=False)


def test_a_diode_without_a_monitor_gives_the_attenuation(tmp_path: Path) -> None:
    """SPEC section 6 writes the attenuation sinogram "if a diode exists". A scan with a
    diode and no monitor got none, with no word (exit 0), and the reconstruction did not
    correct self-absorption. Without a monitor the beam is taken as constant, as for the
    frames: the attenuation equals that of the same scan with a constant monitor (to
    float32 rounding, 1e-6)."""
    with_monitor = run_reduce(_tiny_scan(tmp_path / "m.h5"), tmp_path / "m_run.h5", TINY)
    without = run_reduce(_tiny_scan(tmp_path / "d.h5", monitor=False), tmp_path / "d_run.h5", TINY)
    expected = read_sinogram(with_monitor.output).attenuation
    found = read_sinogram(without.output).attenuation
    assert found is not None
    np.testing.assert_allclose(found, expected, atol=1e-6)
    assert np.nanmax(found) > 1.0  # the disc's centre: 1.2 minus the line ends' 0.1


def test_air_subtracted_errors_hold_the_air_means_noise(tmp_path: Path) -> None:
    """The air subtraction takes the mean pattern of the m air columns off each cell, but
    the errors were the cell's alone: over 40 noise realisations of a scan whose line ends
    read half the middle (m = 4), the subtracted values scattered 1.061 times the errors
    reported (sqrt(1 + 1/4 x 10/21) = 1.058 expected; 1.003 now). The errors are now the
    cell's and the air mean's (root of the air cells' summed squares over m) in
    quadrature: checked here against the run without subtraction, to float32 rounding."""
    scan = _tiny_scan(tmp_path / "s.h5", diode=False)
    plain = read_sinogram(run_reduce(scan, tmp_path / "plain.h5", TINY).output)
    on = TINY.model_copy(update={"subtract_air": True})
    subtracted = read_sinogram(run_reduce(scan, tmp_path / "air.h5", on).output)
    assert subtracted.attrs["air_subtracted"]
    air = [0, 1, 12, 13]  # edge_columns(14)
    mean_variance = np.sum(plain.errors[:, air] ** 2, axis=1, keepdims=True) / len(air) ** 2
    expected = np.sqrt(plain.errors**2 + mean_variance)
    np.testing.assert_allclose(subtracted.errors, expected, rtol=1e-6)
    assert np.all(subtracted.errors > plain.errors)


def test_a_zinger_in_an_air_frame_is_not_subtracted_from_its_line(tmp_path: Path) -> None:
    """The air mean taken off every cell of a line held a zinger of one air frame: 1e5
    counts in a pixel (which the integration's sigma clip keeps in a q bin of fewer than 27
    pixels, as on the 24 x 400 SAXS strip of the demo) went, over the m air cells, into
    its channels of the whole line: here 140 and 385 off for cells of about 10-60 (errors
    ~0.8), exit 0; the spot filter, after the subtraction, mended the zinger's own cell
    only. On the aged, discharged twin's demo-like chain (seed 0) seven such lines put
    channels of the SAXS fit window 14-44 % low in the reconstruction and 600 d* values
    over 20 nm (the regular anode's 90th-percentile error 58 nm; 0.86 now).

    The air cells' outliers are now found (the spot filter on the air cells alone) and
    replaced by the median over the angles of their translation before the mean: the line
    is as without the zinger to 0.2 (a quarter of a cell's one-sigma error: the replaced
    cell's noise over m = 4; 0.07 found), the other lines exactly."""
    rng = np.random.default_rng(0)
    thickness = np.clip(1 - ((np.arange(14) - 6.5) * 0.05 / 0.3) ** 2, 0, None)
    counts = 10 + 50 * np.tile(thickness, 6)[:, None, None] * np.ones((24, 28))
    frames = rng.poisson(counts).astype(np.int32)
    options = TINY.model_copy(update={"subtract_air": True, "spot_filter": True})
    clean = read_sinogram(
        run_reduce(
            _tiny_scan(tmp_path / "c.h5", frames=frames), tmp_path / "c_run.h5", options
        ).output
    )
    frames[2 * 14, 12, 15] += 100_000  # angle 2, translation 0: an air frame
    scan = _tiny_scan(tmp_path / "z.h5", frames=frames)
    hit = read_sinogram(run_reduce(scan, tmp_path / "z_run.h5", options).output)
    difference = np.abs(hit.data - clean.data)
    assert np.nanmax(difference[2, 1:]) < 0.2  # the zinger's own cell (0) the spot filter's
    assert np.nanmax(np.delete(difference, 2, axis=0)) == 0.0
    assert hit.attrs["air_spots_replaced"] >= 1


def test_dark_subtracted_float_frames_are_refused(tmp_path: Path) -> None:
    """Float frames corrected already (dark subtracted: a signal of 2 counts under a read
    noise of 5) had their negative pixels masked as detector gaps: the cells came out 2.5
    times too bright (median 4.97 for about 2; pyFAI's integrate1d 2.2), exit 0. They are
    refused now, naming the file; float frames whose only negative values are gap markers
    (-1) are reduced as before."""
    scan = _tiny_scan(tmp_path / "s.h5")
    rng = np.random.default_rng(1)
    with h5py.File(scan, "r+") as f:
        shape = f["/entry/instrument/detector/data"].shape
        del f["/entry/instrument/detector/data"]
        noisy = rng.poisson(2.0, shape) + rng.normal(0.0, 5.0, shape)
        f["/entry/instrument/detector/data"] = noisy.astype(np.float32)
    with pytest.raises(ValueError, match=r"s\.h5: .* read between -0\.5 and 0: .*dark-subtracted"):
        run_reduce(scan, tmp_path / "run.h5", TINY)
    with h5py.File(scan, "r+") as f:
        del f["/entry/instrument/detector/data"]
        counts = rng.poisson(2.0, shape).astype(np.float32) * 1.03  # flat-field corrected
        counts[:, 5, :] = -1.0  # a gap row
        f["/entry/instrument/detector/data"] = counts
    assert run_reduce(scan, tmp_path / "gaps.h5", TINY).missing_cells == 0


def test_no_attenuation_relative_to_line_ends_inside_the_sample(tmp_path: Path) -> None:
    """The attenuation is -ln(diode / monitor) relative to the line ends, taken as air. A
    scan whose lines stayed inside the disc (ends 0.69 thick, 1.2 in the middle), reduced
    with --no-air, wrote every cell 0.66 too low (0.43 in the middle) with no warning at
    all. Where the line ends are not air (here: they scatter 72 % as much as the middle),
    no attenuation is written now, with a warning that says why."""
    full = (np.arange(14) - 6.5) * 0.05
    thickness = np.clip(1 - (0.6 * full / 0.3) ** 2, 0, None)
    rng = np.random.default_rng(2)
    counts = 10 + 50 * np.tile(thickness, 6)[:, None, None] * np.ones((24, 28))
    scan = _tiny_scan(tmp_path / "s.h5", frames=rng.poisson(counts).astype(np.int32))
    with h5py.File(scan, "r+") as f:
        f["/entry/sample/translation"][...] = 0.6 * f["/entry/sample/translation"][()]
        f["/entry/instrument/diode/data"][...] = 3e4 * np.exp(-1.2 * np.tile(thickness, 6))
    with pytest.warns(UserWarning, match=r"s\.h5: the line ends are not air .* no attenuation"):
        report = run_reduce(scan, tmp_path / "run.h5", TINY)
    assert read_sinogram(report.output).attenuation is None


def _half_acquisition_scan(path: Path, n_angles: int, step_deg: float, short: int = 0) -> Path:
    """A full turn whose axis lies near one end of the lines: a disc of 0.3 mm radius
    centred on the axis, lines of 14 cells from -0.1 to +0.55 mm (their first end in the
    disc), its diode reading 1.2 x the disc's thickness; the first half turn's lines
    ``short`` cells short at their far (air) end."""
    from jellyroll.io.poni import poni_text
    from jellyroll.io.raw_scan import RawScanWriter
    from jellyroll.phantom.detector import geometry_for_q_range, make_integrator

    shape, centre = (24, 28), (-3.3, 12.7)
    distance = geometry_for_q_range(shape, 6.0, 0.161, centre)
    ai = make_integrator(shape, distance_m=distance, wavelength_A=0.161, beam_centre_px=centre)
    angles, translations = np.meshgrid(np.arange(n_angles) * step_deg, np.arange(14) * 0.05 - 0.1)
    angles, translations = angles.T.ravel(), translations.T.ravel()
    kept = (angles >= 180.0) | (translations < 0.55 - 0.05 * short + 0.01)
    angles, translations = angles[kept], translations[kept]
    thickness = np.clip(1 - (translations / 0.3) ** 2, 0, None)
    counts = 10 + 50 * thickness[:, None, None] * np.ones(shape)
    frames = np.random.default_rng(0).poisson(counts).astype(np.int32)
    diode = 3e4 * np.exp(-1.2 * thickness)
    with RawScanWriter(path, shape, poni=poni_text(ai)) as writer:
        writer.append(frames, angles, translations, monitor=np.full(angles.size, 1e5), diode=diode)
    return path


@pytest.mark.parametrize(
    ("n_angles", "step_deg"), [(12, 30.0), (20, 15.0)], ids=["full turn", "last 75 deg lost"]
)
def test_a_half_acquisition_takes_its_far_line_end_as_air(
    tmp_path: Path, n_angles: int, step_deg: float
) -> None:
    """A full turn whose axis lies near one end of the lines (half acquisition,
    :func:`_half_acquisition_scan`): the near end lies in the disc, both ends were taken as
    the air and refused, and the scan lost its attenuation (and air subtraction), with a
    warning that blamed the scan; so did such a turn whose last 75 deg were lost (a gap the
    reconstruction maps whole, ``conventions.sees_both_sides``). The far end alone is air:
    the attenuation is 1.2 x the disc's thickness at every cell (to the float32 rounding of
    the diode readings and the 1e-6 of the log)."""
    scan = _half_acquisition_scan(tmp_path / "half.h5", n_angles, step_deg)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "line ends are not air"
        warnings.filterwarnings("ignore", message=".*rotation.centre.*")
        report = run_reduce(scan, tmp_path / "run.h5", TINY)
    sinogram = read_sinogram(report.output)
    expected = 1.2 * np.clip(1 - (sinogram.translation_mm / 0.3) ** 2, 0, None)
    np.testing.assert_allclose(sinogram.attenuation, np.tile(expected, (n_angles, 1)), atol=1e-5)


def test_a_half_acquisition_whose_first_half_lines_stop_short_keeps_them(tmp_path: Path) -> None:
    """The half acquisition above with its first half turn's lines two cells short at the
    air end (the red team's twin: three points short): those projections hold no air cell,
    their air mean and diode reference were NaN, and reduce wrote them NaN whole (2623
    frames of the twin), exit 0, "0 frames left out". They take the other projections'
    air now, with a warning; their attenuation is the disc's as in the whole scan, and the
    cells never measured stay NaN."""
    scan = _half_acquisition_scan(tmp_path / "half.h5", 12, 30.0, short=2)
    with pytest.warns(UserWarning, match=r"6 of the 12 projections hold no cell at the line ends"):
        report = run_reduce(scan, tmp_path / "run.h5", TINY)
    sinogram = read_sinogram(report.output)
    expected = 1.2 * np.clip(1 - (sinogram.translation_mm / 0.3) ** 2, 0, None)
    first_half = sinogram.rotation_angle_deg < 180.0
    np.testing.assert_allclose(
        sinogram.attenuation[first_half, :12], np.tile(expected[:12], (6, 1)), atol=1e-5
    )
    assert np.isnan(sinogram.attenuation[first_half, 12:]).all()
    assert np.isfinite(sinogram.data[first_half, :12]).all()
    assert np.isnan(sinogram.data[first_half, 12:]).all()
    assert report.missing_cells == 12


def test_a_half_turn_whose_first_line_end_lies_in_the_sample_is_not_air() -> None:
    """A half turn (0-176 deg) of a disk that reaches past the first line end near 90 deg:
    the two ends pooled passed as air, and the reduction subtracted the sample as air and
    measured the attenuation against it, exit 0 (only the reconstruction's note said the
    end lay in the sample, of data already changed). Each end is judged on its own now."""
    angles = np.arange(0.0, 180.0, 4.0)
    t = np.linspace(-1.0, 1.0, 120)
    centre = 0.7 * np.sin(np.deg2rad(angles))[:, None]  # never near the last end
    chord = 2 * np.sqrt(np.clip(0.5**2 - (t[None] + centre) ** 2, 0, None))
    total = 1.0 + 5.0 * chord + 0.01 * np.random.default_rng(0).standard_normal(chord.shape)
    sums = np.repeat(total[..., None] / 3, 3, axis=2)
    _, problem = _air_ends(sums, np.ones(total.shape), None, angles)
    assert problem is not None and problem.startswith("the first end of the lines")

"""`jellyroll reduce` end to end on the tiny twin: contract, pyFAI parity, missing frames,
resume, Dask identity, pre-integrated input."""

from __future__ import annotations

from pathlib import Path

import h5py
import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.io.poni import integrator_from_poni_text
from jellyroll.io.scans import open_scan
from jellyroll.phantom.twin import SAXS_Q_RANGE_A
from jellyroll.phantom.write import write_phantom
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.run import _in_index_order, run_reduce
from jellyroll.results import read_sinogram

SEED = 11
# The parity tests compare the plain integration (no outlier rejection) with pyFAI.
OPTIONS = ReduceOptions(
    npt=300, radial_range=(0.8, 5.2), block_frames=200, filter="none", spot_filter=False
)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("twin")
    write_phantom(out, preset="fresh_charged", size="tiny", seed=SEED, nxct=False)
    return out


@pytest.fixture(scope="module")
def reduced(phantom: Path, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("run") / "waxs_run.h5"
    run_reduce(phantom / "waxs_scan.h5", output, options=OPTIONS)
    return output


def test_run_file_contract(reduced: Path, phantom: Path) -> None:
    reader = open_scan(phantom / "waxs_scan.h5")
    n_frames, monitor = reader.info.n_frames, reader.info.monitor
    reader.close()
    sinogram = read_sinogram(reduced)
    n_a, n_t, n_q = sinogram.data.shape
    assert (n_a, n_q) == (36, 300) and n_t == 104
    assert sinogram.errors.shape == sinogram.data.shape
    assert np.all(np.diff(sinogram.rotation_angle_deg) > 0)
    assert np.all(np.diff(sinogram.translation_mm) > 0)
    missing = np.isnan(sinogram.data).all(axis=2)
    assert missing.sum() == n_a * n_t - n_frames  # every dropped frame is a NaN cell
    assert sinogram.attenuation.shape == (n_a, n_t)
    with h5py.File(reduced, "r") as f:
        assert f["/entry/sinogram/data"].dtype == np.float32
        assert f["/entry/sinogram/q"].attrs["units"] == "1/angstrom"
        assert f.attrs["default"] == "entry" and "reduce" in f["/entry/provenance"]
        assert "checkpoint" not in f
        assert f["/entry/sinogram"].attrs["air_subtracted"]  # air beside the cell: subtracted
        # the intensities are counts at this monitor reading (every frame kept): another
        # scan's, at another flux, compare after scaling by the two readings' ratio
        reference = f["/entry/sinogram/data"].attrs["monitor_reference"]
        assert reference == pytest.approx(np.median(monitor), rel=1e-12)


def test_the_spot_filter_replaces_only_the_spots(
    reduced: Path, phantom: Path, tmp_path: Path
) -> None:
    """The twin's raw WAXS frames carry single-crystal spots (2 % of frames): the default
    spot filter replaces some hundreds of cells, each by a lower value, and leaves every
    other cell as the plain reduction wrote it."""
    output = tmp_path / "spots.h5"
    run_reduce(phantom / "waxs_scan.h5", output, OPTIONS.model_copy(update={"spot_filter": True}))
    plain, filtered = read_sinogram(reduced), read_sinogram(output)
    replaced = int(filtered.attrs["spot_cells_replaced"])
    changed = ~np.isclose(plain.data, filtered.data, rtol=0, atol=0, equal_nan=True)
    assert 100 <= replaced == changed.sum() <= 0.001 * changed.size
    assert np.all(filtered.data[changed] < plain.data[changed])


def test_rotation_centre_found(reduced: Path, phantom: Path) -> None:
    """Within a quarter of a translation step of the twin's true axis."""
    with h5py.File(phantom / "truth.h5", "r") as f:
        true_centre = f["/entry/scan/rotation_centre_mm"][()]
        pixel_um = f["/entry/scan/pixel_size_um"][()]
    sinogram = read_sinogram(reduced)
    assert abs(sinogram.rotation_centre_mm - true_centre) < 0.25 * pixel_um / 1000


@pytest.mark.parametrize("split", ["bbox", "no"])
def test_cells_equal_pyfai_of_their_frames(phantom: Path, tmp_path: Path, split: str) -> None:
    """Without air subtraction, a cell holds pyFAI integrate1d of its frame normalised by
    monitor / median monitor (1e-4 relative: the engine's parity target), with the pixel
    splitting asked for."""
    output = tmp_path / "no_air.h5"
    options = OPTIONS.model_copy(update={"subtract_air": False, "split": split})
    run_reduce(phantom / "waxs_scan.h5", output, options=options)
    sinogram = read_sinogram(output)
    with h5py.File(phantom / "waxs_scan.h5", "r") as f:
        angles = f["/entry/sample/rotation_angle"][()]
        translations = f["/entry/sample/translation"][()]
        monitor = f["/entry/monitor/data"][()]
        mask = f["/entry/instrument/detector/mask"][()] > 0
        integrator = integrator_from_poni_text(f["/entry/instrument/detector/poni"].asstr()[()])
        index = int(np.argmin(np.abs(translations - np.median(translations))))
        frame = f["/entry/instrument/detector/data"][index].astype(np.float32)
    result = integrator.integrate1d(
        frame, 300, unit="q_A^-1", radial_range=(0.8, 5.2), mask=mask | (frame < 0),
        correctSolidAngle=True, polarization_factor=0.99,
        normalization_factor=monitor[index] / np.median(monitor),
        error_model="poisson", method=(split, "csr", "cython"),
    )  # fmt: skip
    a = int(np.argmin(np.abs(sinogram.rotation_angle_deg - angles[index])))
    t = int(np.argmin(np.abs(sinogram.translation_mm - translations[index])))
    peak = result.intensity.max()
    assert np.allclose(sinogram.data[a, t], result.intensity, rtol=1e-4, atol=1e-6 * peak)
    assert np.allclose(sinogram.errors[a, t], result.sigma, rtol=1e-3, atol=1e-6 * peak)


def _interrupted_after_two_blocks(phantom: Path, output: Path) -> None:
    """Reduce the twin's WAXS scan into ``output`` and stop it after its second block (its
    work file left beside ``output``)."""
    calls = []

    def stop_after_two_blocks(n_frames: int, total: int) -> None:
        calls.append(n_frames)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_reduce(
            phantom / "waxs_scan.h5", output, options=OPTIONS, on_block=stop_after_two_blocks
        )


def test_interrupted_run_resumes_to_the_same_result(reduced: Path, phantom: Path, tmp_path: Path):
    output = tmp_path / "resumed.h5"
    _interrupted_after_two_blocks(phantom, output)
    assert not output.exists() and output.with_name(output.name + ".partial").exists()
    # threads change the speed only: the run resumes, and gives the same numbers, with
    # two decoding threads and one integrating (the first run had the default split)
    other_threads = OPTIONS.model_copy(update={"threads": 3, "decode_threads": 2})
    report = run_reduce(phantom / "waxs_scan.h5", output, options=other_threads)
    assert report.blocks_done_before == 2
    expected, got = read_sinogram(reduced), read_sinogram(output)
    assert np.array_equal(expected.data, got.data, equal_nan=True)
    assert np.array_equal(expected.errors, got.errors, equal_nan=True)
    assert not output.with_name(output.name + ".partial").exists()


@pytest.mark.parametrize("cut", ["cells lost", "frames counted, not marked"])
def test_a_work_file_cut_within_a_write_is_reduced_again(
    reduced: Path, phantom: Path, tmp_path: Path, cut: str
) -> None:
    """A kill -9 within an HDF5 flush leaves any part of the work file on disk. The red
    team's left frames marked placed whose cells never reached the file: the resume skipped
    them, 38 cells NaN and 3762 values up to 120 % off (the spot filter and air mean moved),
    exit 0. Both such states (cells of placed frames lost; a block's cells and counts
    written, its frames not marked) are found on resume, and the scan reduced again."""
    output = tmp_path / "resumed.h5"
    _interrupted_after_two_blocks(phantom, output)
    with h5py.File(output.with_name(output.name + ".partial"), "r+") as work:
        count = work["checkpoint/count"][()]
        row = int(np.flatnonzero(count.any(axis=1))[0])
        if cut == "cells lost":
            cells = work["entry/sinogram/data"][row]
            cells[count[row] > 0] = np.nan
            work["entry/sinogram/data"][row] = cells
        else:
            work["checkpoint/placed"][...] = False
    with pytest.warns(UserWarning, match=r"cut while it was written .* reducing again"):
        report = run_reduce(phantom / "waxs_scan.h5", output, options=OPTIONS)
    assert report.blocks_done_before == 0
    expected, got = read_sinogram(reduced), read_sinogram(output)
    assert np.array_equal(expected.data, got.data, equal_nan=True)
    assert np.array_equal(expected.errors, got.errors, equal_nan=True)


def test_threads_split_the_cores_between_decoding_and_integration() -> None:
    plain = ReduceOptions(filter="none")
    assert plain.thread_split(2) == (1, 1)
    assert plain.thread_split(16) == (8, 8)
    assert plain.model_copy(update={"threads": 6, "decode_threads": 4}).thread_split(2) == (4, 2)
    assert plain.model_copy(update={"threads": 1}).thread_split(16) == (1, 1)  # one core: shared
    # a filter costs several times the decoding: its kernel takes every core, decoding shares
    assert ReduceOptions().thread_split(2) == (1, 2)
    assert ReduceOptions().thread_split(16) == (4, 16)
    assert ReduceOptions(threads=6, decode_threads=2).thread_split(2) == (2, 6)
    with pytest.raises(ValueError, match=r"decode_threads \(2\) must be less than threads"):
        ReduceOptions(threads=2, decode_threads=2)


def test_dask_cluster_gives_the_local_result(reduced: Path, phantom: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        output = tmp_path / "dask.h5"
        run_reduce(
            phantom / "waxs_scan.h5", output, options=OPTIONS, scheduler=cluster.scheduler_address
        )
    expected, got = read_sinogram(reduced), read_sinogram(output)
    assert np.array_equal(expected.data, got.data, equal_nan=True)
    assert np.array_equal(expected.errors, got.errors, equal_nan=True)


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(
    st.permutations(list(range(7))), st.lists(st.integers(0, 6), unique=True, min_size=1)
)
def test_blocks_from_a_cluster_are_placed_in_index_order(arrival: list[int], pending) -> None:
    """Frames of one cell are summed in float32 in the order their blocks are placed: as
    the cluster finished them, two runs of a scan measured three times a line gave sums
    3e-4 apart, and neither the local one (the red team's). Whatever order they finish in,
    the blocks pending come out in index order, each once."""
    pending = sorted(pending)
    finished = [(i, f"block {i}") for i in arrival if i in pending]
    assert [block[0] for block in _in_index_order(iter(finished), pending)] == pending


def test_a_scheduler_that_is_no_address_is_named(phantom: Path, tmp_path: Path) -> None:
    """`--scheduler local` (what a run's [dask] section takes) gave dask's "missing port
    number in address 'local'", naming neither the option nor what to give."""
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match=r"--scheduler local: no dask scheduler answers there"):
        run_reduce(phantom / "waxs_scan.h5", tmp_path / "r.h5", options=OPTIONS, scheduler="local")


def test_preintegrated_scan_reduces(tmp_path: Path) -> None:
    out = tmp_path / "twin"
    write_phantom(out, preset="aged_charged", size="tiny", seed=1, raw=False, nxct=False)
    report = run_reduce(out / "saxs_scan.h5", tmp_path / "saxs_run.h5")
    sinogram = read_sinogram(report.output)
    assert sinogram.data.shape[2] == 500 and np.isnan(sinogram.errors).all()  # the SAXS grid
    # the integration cannot change the axis of patterns integrated already: a q range asked
    # for kept the file's whole axis (500 channels), exit 0
    for given, named in (
        ({"radial_range": (0.02, 0.08)}, "q range of 0.02-0.08"),
        ({"npt": 300}, "--npt 300"),
        ({"unit": "2th_deg"}, "--unit 2th_deg"),
    ):
        with pytest.raises(ValueError, match=rf"integrated already.*{named}"):
            run_reduce(out / "saxs_scan.h5", tmp_path / "other.h5", ReduceOptions(**given))
    # options that agree with its axis pass (`jellyroll run` gives every cell the same)
    same = ReduceOptions(npt=500, radial_range=SAXS_Q_RANGE_A, filter="none", unit="q_nm^-1")
    with pytest.raises(ValueError, match="q range"):  # the same numbers read in 1/nm
        run_reduce(out / "saxs_scan.h5", tmp_path / "same.h5", same)
    # a polarisation correction cannot act on them: said, not silently ignored
    with pytest.warns(UserWarning, match=r"integrated already.*--polarization-factor 0\.5"):
        run_reduce(
            out / "saxs_scan.h5", tmp_path / "polarised.h5", ReduceOptions(polarization_factor=0.5)
        )
    nm = tuple(10 * value for value in SAXS_Q_RANGE_A)
    run_reduce(
        out / "saxs_scan.h5", tmp_path / "same.h5", same.model_copy(update={"radial_range": nm})
    )


def test_integrated_patterns_refuse_a_poni_or_a_mask(tmp_path: Path) -> None:
    """A mask hiding every pixel, or a PONI, given with patterns integrated already were
    ignored: the sinogram held the file's patterns as they were, exit 0."""
    scan = tmp_path / "integrated.h5"
    with h5py.File(scan, "w") as f:
        f["entry/integrated/intensity"] = np.ones((12, 8))
        f["entry/integrated/q"] = np.linspace(1.0, 2.0, 8)
        f["entry/sample/rotation_angle"] = np.repeat([0.0, 60.0, 120.0], 4)
        f["entry/sample/translation"] = np.tile(np.arange(4) * 0.01, 3)
    np.save(tmp_path / "mask.npy", np.ones((4, 4), np.uint8))
    (tmp_path / "geometry.poni").write_text("Distance: 0.1\n")
    for given, named in (
        ({"mask_path": "mask.npy"}, "a mask"),
        ({"poni_path": "geometry.poni"}, "a PONI"),
    ):
        files = {key: tmp_path / name for key, name in given.items()}
        with pytest.raises(ValueError, match=rf"integrated already.*{named} \({tmp_path}"):
            run_reduce(scan, tmp_path / "run.h5", **files)
        assert not (tmp_path / "run.h5").exists()


def test_cli_reduce(phantom: Path, tmp_path: Path) -> None:
    output = tmp_path / "cli_run.h5"
    result = CliRunner().invoke(
        app, ["reduce", str(phantom / "saxs_scan.h5"), "-o", str(output), "--npt", "300",
              "--q-min", "0.008", "--q-max", "0.3", "--filter", "sigma-clip"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rotation centre" in result.output
    assert read_sinogram(output).data.shape[2] == 300


def test_cli_refuses_to_overwrite_its_input(phantom: Path) -> None:
    result = CliRunner().invoke(
        app, ["reduce", str(phantom / "waxs_scan.h5"), "-o", str(phantom / "waxs_scan.h5")]
    )
    assert result.exit_code != 0


def test_files_named_as_the_runs_stage_files_are_not_replaced(
    phantom: Path, tmp_path: Path
) -> None:
    """`reduce -o scan.h5` beside a raw scan saved as `scan.sinogram.h5` and another file
    named `scan.reconstruction.h5`: the first was replaced by the sinogram, the second
    deleted as stale, exit 0. Both are refused, named, before any frame is read; a run's
    own stage files are replaced as before."""
    raw, other = tmp_path / "scan.sinogram.h5", tmp_path / "scan.reconstruction.h5"
    raw.write_bytes((phantom / "saxs_scan.h5").read_bytes())
    other.write_text("a note")
    before = raw.read_bytes()
    args = ["reduce", str(phantom / "waxs_scan.h5"), "-o", str(tmp_path / "scan.h5")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "scan.sinogram.h5 is where the run scan.h5 keeps its sinogram" in result.output
    assert raw.read_bytes() == before and not (tmp_path / "scan.h5").exists()
    raw.unlink()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "scan.reconstruction.h5 is where" in result.output
    assert other.read_text() == "a note"
    other.unlink()
    assert CliRunner().invoke(app, args).exit_code == 0
    assert CliRunner().invoke(app, args).exit_code == 0  # its own sinogram replaced


def test_the_python_api_does_not_replace_a_file_where_the_runs_index_goes(
    phantom: Path, tmp_path: Path
) -> None:
    """``run_reduce`` (as `jellyroll operando` and other drivers call it, past the command
    line's check of ``-o``) onto another raw scan: replaced by the run's index, exit 0. It
    is refused, named; an earlier run's index is replaced as before."""
    other = tmp_path / "other_scan.h5"
    other.write_bytes((phantom / "saxs_scan.h5").read_bytes())
    before = other.read_bytes()
    with pytest.raises(ValueError, match=r"other_scan\.h5 is where the run's index file goes"):
        run_reduce(phantom / "waxs_scan.h5", other)
    assert other.read_bytes() == before
    run = tmp_path / "run.h5"
    run_reduce(phantom / "waxs_scan.h5", run)
    run_reduce(phantom / "waxs_scan.h5", run, ReduceOptions(npt=64))
    assert read_sinogram(run, errors=False).q_A.size == 64


def test_duplicate_frames_of_a_cell_are_averaged(phantom: Path, tmp_path: Path) -> None:
    """A cell measured twice (frame k, and a copy with doubled counts in a later block) holds
    the mean of the two frames' patterns, as `jellyroll.sinogram.place` averages, whatever
    the block order; its error is that of a mean, sqrt(s1^2 + s2^2) / 2."""
    from jellyroll.io.raw_scan import RawScanWriter

    with h5py.File(phantom / "waxs_scan.h5", "r") as f:
        frames = f["/entry/instrument/detector/data"][:40]
        angles = f["/entry/sample/rotation_angle"][:40]
        translations = f["/entry/sample/translation"][:40]
        poni = f["/entry/instrument/detector/poni"].asstr()[()]
        mask = f["/entry/instrument/detector/mask"][()]
    k = 5
    doubled = frames.copy()
    doubled[k] *= 2
    extra = slice(k, k + 1)
    options = ReduceOptions(
        npt=100, radial_range=(0.8, 5.2), block_frames=16, subtract_air=False, filter="none"
    )
    runs, reports = {}, {}
    for name, first, second in (
        ("single", frames, frames[:0]),
        ("doubled", doubled, frames[:0]),
        ("twice", frames, doubled[extra]),
    ):
        scan, run = tmp_path / f"{name}.h5", tmp_path / f"{name}_run.h5"
        with RawScanWriter(scan, frames.shape[1:], poni=poni, mask=mask) as writer:
            writer.append(first, angles, translations)
            n = second.shape[0]
            writer.append(second, angles[extra][:n], translations[extra][:n])
        reports[name] = run_reduce(scan, run, options=options)
        runs[name] = read_sinogram(run)
    assert reports["twice"].duplicate_frames == 1
    one, two, both = runs["single"], runs["doubled"], runs["twice"]
    a = int(np.argmin(np.abs(one.rotation_angle_deg - angles[k])))
    t = int(np.argmin(np.abs(one.translation_mm - translations[k])))
    # float32 sums of two patterns: 1e-5 relative
    mean = (one.data[a, t] + two.data[a, t]) / 2
    assert np.allclose(both.data[a, t], mean, rtol=1e-5, equal_nan=True)
    error = np.sqrt(one.errors[a, t] ** 2 + two.errors[a, t] ** 2) / 2
    assert np.allclose(both.errors[a, t], error, rtol=1e-5, equal_nan=True)
    others = np.ones(one.data.shape[:2], bool)
    others[a, t] = False
    assert np.array_equal(both.data[others], one.data[others], equal_nan=True)


def test_the_work_key_follows_what_the_mapping_says(tmp_path: Path) -> None:
    """A Bliss reduction interrupted, its mapping then edited to name the other detector's
    dataset (same shapes, same file): the work file's key held the mapping's path, not its
    content, and the rerun resumed the old frames (a first row of 10.3 for 1000.1), exit 0."""
    import time

    from jellyroll.reduce.run import ScanSpec, _fingerprint

    path = tmp_path / "bliss.h5"
    with h5py.File(path, "w") as f:
        entry = f.create_group("1.1")
        entry["measurement/one"] = np.ones((4, 5, 7), np.int32)
        entry["measurement/other"] = np.full((4, 5, 7), 100, np.int32)
        entry["instrument/positioners/rot"] = 0.0
        entry["measurement/ty"] = np.arange(4) * 10.0
    mapping = tmp_path / "map.toml"
    text = (
        '[bliss]\nframes = "measurement/{}"\nrotation_angle = "instrument/positioners/rot"\n'
        'translation = "measurement/ty"\ntranslation_unit = "um"\n'
    )

    def key(detector: str) -> str:
        mapping.write_text(text.format(detector))
        spec = ScanSpec.of(path, mapping)
        reader = spec.open()
        try:
            return _fingerprint(reader.info, ReduceOptions(), spec)
        finally:
            reader.close()

    first = key("one")
    time.sleep(0.01)  # a file time that can tell the edit
    assert key("other") != first


def test_bliss_motors_are_read_in_their_units(tmp_path: Path) -> None:
    """The Bliss reader ignored the motors' @units: a translation in um (@units "um") was
    read as mm (steps of 10 mm, a map pixel 1000 times too large; reduce exit 0) and an
    angle in rad (@units "rad") as degrees. A mapping's translation_unit that contradicts
    @units is refused."""
    from jellyroll.io.scans import ScanFormatError

    path = tmp_path / "bliss.h5"
    with h5py.File(path, "w") as f:
        for k, angle in enumerate([0.0, 90.0]):
            entry = f.create_group(f"{k + 1}.1")
            entry["measurement/pilatus"] = np.ones((4, 5, 7), np.int32)
            entry["instrument/positioners/rot"] = np.deg2rad(angle)
            entry["instrument/positioners/rot"].attrs["units"] = "rad"
            entry["measurement/ty"] = np.arange(4) * 10.0
            entry["measurement/ty"].attrs["units"] = "um"
    text = (
        '[bliss]\nframes = "measurement/pilatus"\nrotation_angle = "instrument/positioners/rot"\n'
        'translation = "measurement/ty"\n'
    )
    mapping = tmp_path / "map.toml"
    mapping.write_text(text)
    reader = open_scan(path, mapping=mapping)
    # exact up to the float conversions of the units (1e-12)
    np.testing.assert_allclose(reader.info.translation_mm, np.tile([0, 0.01, 0.02, 0.03], 2))
    np.testing.assert_allclose(reader.info.rotation_angle_deg, np.repeat([0.0, 90.0], 4))
    reader.close()
    mapping.write_text(text + 'translation_unit = "um"\n')  # agrees: taken
    open_scan(path, mapping=mapping).close()
    mapping.write_text(text + 'translation_unit = "mm"\n')
    with pytest.raises(ScanFormatError, match=r"map\.toml: translation_unit = 'mm', but .*'um'"):
        open_scan(path, mapping=mapping)


def test_angles_read_in_two_turns_keep_the_attenuation(tiny_twin_files: Path, tmp_path: Path):
    """The twin's angles 90-180 deg written as -270 to -180 (the same projections, read a
    turn apart): half the grid's rows hold no frame, and the diode's attenuation, judged on
    every cell of the grid, was dropped ("50 % of the cells"), and with it the self-absorption
    correction (SAXS map 19 % off the plain scan's, exit 0). The share is of the cells
    measured, in the reduction and in the reconstruction."""
    from jellyroll.recon.options import ReconstructOptions
    from jellyroll.recon.run import run_reconstruct

    scan = tmp_path / "wrapped.h5"
    scan.write_bytes((tiny_twin_files / "saxs_scan.h5").read_bytes())
    with h5py.File(scan, "r+") as f:
        angle = f["/entry/sample/rotation_angle"]
        angle[...] = np.where(angle[()] >= 90, angle[()] - 360, angle[()])
    run_reduce(tiny_twin_files / "saxs_scan.h5", tmp_path / "plain.h5")
    run_reduce(scan, tmp_path / "run.h5")
    plain, wrapped = read_sinogram(tmp_path / "plain.h5"), read_sinogram(tmp_path / "run.h5")
    assert wrapped.attenuation is not None
    measured = np.isfinite(wrapped.attenuation).any(axis=1)
    turned = np.mod(wrapped.rotation_angle_deg[measured], 360.0)
    rows = np.argmin(np.abs(plain.rotation_angle_deg[:, None] - turned[None]), axis=0)
    # the same diode readings, normalised by the same line ends: float32 rounding only
    np.testing.assert_allclose(
        wrapped.attenuation[measured], plain.attenuation[rows], rtol=1e-6, atol=1e-6
    )
    result = run_reconstruct(tmp_path / "run.h5", ReconstructOptions(method="fbp"))
    assert result.attenuation


def test_subsets_read_on_successive_turns_reduce_to_the_single_turn_scan(
    tiny_twin_files: Path, tmp_path: Path
) -> None:
    """The twin's third interlaced subset read a turn later (its angles + 360 deg, as the
    encoder of a continuously rotating stage gives them): the gapped comb of the readings
    made a grid of 6.6 deg for 5, 1247 frames were left out "off the grid" and the SAXS map
    came out 26 % off the plain scan's, exit 0. Folded by whole turns, the run is the plain
    one: the same angles (up to the rounding of 360 deg taken off, 1e-9 deg), the same
    cells (each the one frame of the plain cell: float32 rounding only), and so the same
    map (the same FBP of the same numbers: float32 rounding, 1e-5 of its largest value)."""
    from jellyroll.recon.options import ReconstructOptions
    from jellyroll.recon.run import run_reconstruct
    from jellyroll.results import read_reconstruction

    scan = tmp_path / "turned_scan.h5"
    scan.write_bytes((tiny_twin_files / "saxs_scan.h5").read_bytes())
    with h5py.File(scan, "r+") as f:
        angle = f["/entry/sample/rotation_angle"]
        values = angle[()]
        step = 180.0 / np.unique(values).size  # 3 interlaced subsets over 180 deg
        subset = np.round(values / step).astype(int) % 3
        angle[...] = np.where(subset == 2, values + 360.0, values)
    runs = {"plain": tiny_twin_files / "saxs_scan.h5", "turned": scan}
    for name, source in runs.items():
        run_reduce(source, tmp_path / f"{name}.h5")
        run_reconstruct(tmp_path / f"{name}.h5", ReconstructOptions(method="fbp"))
    plain, turned = (read_sinogram(tmp_path / f"{name}.h5") for name in runs)
    assert turned.data.shape == plain.data.shape
    np.testing.assert_allclose(turned.rotation_angle_deg, plain.rotation_angle_deg, atol=1e-9)
    np.testing.assert_allclose(turned.data, plain.data, rtol=1e-6, atol=0)
    maps = [np.asarray(read_reconstruction(tmp_path / f"{name}.h5").data) for name in runs]
    np.testing.assert_allclose(maps[1], maps[0], rtol=0, atol=1e-5 * np.nanmax(np.abs(maps[0])))


def test_a_work_file_of_another_jellyroll_version_is_not_resumed(
    phantom: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The work key held no version: a reduction interrupted, jellyroll upgraded (a fix of
    the integration), the rerun resumed the old version's rows and added the new one's: one
    sinogram made by two versions, exit 0."""
    from jellyroll.reduce.run import ScanSpec, _fingerprint

    spec = ScanSpec.of(phantom / "waxs_scan.h5")

    def key() -> str:
        reader = spec.open()
        try:
            return _fingerprint(reader.info, ReduceOptions(), spec)
        finally:
            reader.close()

    before = key()
    assert key() == before
    monkeypatch.setattr("jellyroll.reduce.run.__version__", "99.0.0")
    assert key() != before

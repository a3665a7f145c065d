"""Stage keys cover every file a stage reads: a file named inside another input (a Bliss
mapping's PONI and mask) or reached through an external link (an imported sinogram's data,
an operando scan's patterns) changes the key when it changes, so `jellyroll run` reruns
the stage instead of keeping a result of the old file."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from jellyroll.operando.options import OperandoOptions
from jellyroll.operando.run import operando_key
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.run import ScanSpec, reduce_key, run_reduce
from jellyroll.results.store import is_up_to_date, stage_file

PONI = (
    "poni_version: 2.1\nDetector: Detector\n"
    'Detector_config: {"pixel1": 0.000172, "pixel2": 0.000172, "max_shape": [5, 7]}\n'
    "Distance: 0.245\nPoni1: 0.0004\nPoni2: 0.0006\nRot1: 0.0\nRot2: 0.0\nRot3: 0.0\n"
    "Wavelength: 1.61e-11\n"
)


def _rewrite(path: Path, text: str) -> None:
    """Replace a file's text, keeping its size and modification time apart from the edit
    (a fingerprint by the file's own size and time sees the change)."""
    path.write_text(text)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))


def _bliss_scan(folder: Path) -> tuple[Path, Path]:
    """A Bliss-style file of three lines and its mapping, which names a PONI and a mask."""
    rng = np.random.default_rng(0)
    scan = folder / "bliss.h5"
    with h5py.File(scan, "w") as f:
        for k, angle in enumerate([0.0, 60.0, 120.0]):
            entry = f.create_group(f"{k + 1}.1")
            entry["measurement/pilatus"] = rng.integers(0, 50, size=(4, 5, 7)).astype(np.int32)
            entry["instrument/positioners/rot"] = angle
            entry["measurement/ty"] = np.arange(4) * 0.01
    (folder / "geometry.poni").write_text(PONI)
    np.save(folder / "mask.npy", np.zeros((5, 7), np.uint8))
    mapping = folder / "map.toml"
    mapping.write_text(
        '[bliss]\nframes = "measurement/pilatus"\nrotation_angle = "instrument/positioners/rot"'
        '\ntranslation = "measurement/ty"\nponi = "geometry.poni"\nmask = "mask.npy"\n'
    )
    return scan, mapping


def test_the_poni_and_mask_a_bliss_mapping_names_are_in_the_reduce_key(tmp_path: Path) -> None:
    """A recalibrated PONI named by the mapping kept the sinogram of the old geometry (CeO2
    lines 8 % off in q), `jellyroll run` exit 0 with the reduction "up to date"."""
    scan, mapping = _bliss_scan(tmp_path)
    spec, options = ScanSpec.of(scan, mapping), ReduceOptions(npt=20)
    before = reduce_key(spec, options)
    _rewrite(tmp_path / "geometry.poni", PONI.replace("0.245", "0.265"))
    after_poni = reduce_key(spec, options)
    assert after_poni != before
    mask = np.zeros((5, 7), np.uint8)
    mask[0] = 1
    np.save(tmp_path / "mask.npy", mask)
    assert reduce_key(spec, options) != after_poni


def _linked_sinogram(folder: Path) -> tuple[Path, Path]:
    """A SPEC section 6 sinogram written by another program, its data in another file."""
    rng = np.random.default_rng(1)
    n_angle, n_translation, n_q = 6, 9, 4
    sinogram, data = folder / "sinogram.h5", folder / "data.h5"
    with h5py.File(data, "w") as d:
        d["data"] = rng.uniform(1.0, 2.0, (n_angle, n_translation, n_q))
    with h5py.File(sinogram, "w") as f:
        group = f.create_group("/entry/sinogram")
        group["data"] = h5py.ExternalLink(data.name, "/data")
        group["errors"] = np.full((n_angle, n_translation, n_q), 0.1)
        group["rotation_angle"] = np.linspace(0.0, 150.0, n_angle)
        group["rotation_angle"].attrs["units"] = "deg"
        group["translation"] = np.linspace(-0.4, 0.4, n_translation)
        group["translation"].attrs["units"] = "mm"
        group["q"] = np.linspace(1.0, 2.0, n_q)
        group["q"].attrs["units"] = "1/angstrom"
    return sinogram, data


def _imported(folder: Path) -> tuple[ScanSpec, Path, Path]:
    """:func:`_linked_sinogram` imported by `jellyroll reduce` into ``folder/run.h5``:
    its spec, the run and the linked data file."""
    sinogram, data = _linked_sinogram(folder)
    spec, run = ScanSpec.of(sinogram), folder / "run.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no rotation centre: estimated later, not tested
        run_reduce(sinogram, run)
    return spec, run, data


def test_an_imported_sinogram_is_keyed_by_the_file_its_data_are_linked_to(
    tmp_path: Path,
) -> None:
    """The data file behind the link rewritten: the imported sinogram stayed "up to date"
    with the old data (and so did its reconstruction and maps)."""
    spec, run, data = _imported(tmp_path)
    assert is_up_to_date(stage_file(run, "reduce"), reduce_key(spec, ReduceOptions()))
    with h5py.File(data, "a") as d:
        d["data"][...] = d["data"][()] * 2.0
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 10**9))
    assert not is_up_to_date(stage_file(run, "reduce"), reduce_key(spec, ReduceOptions()))


def test_an_imported_sinogram_up_to_date_refuses_an_option_given_later(tmp_path: Path) -> None:
    """A q range added to the run's [saxs] table once the sinogram was imported: the key
    (its files only) still matched, the stage was skipped, the range never applied, exit 0.
    A speed option cannot matter and keeps the result."""
    spec, run, _ = _imported(tmp_path)
    assert is_up_to_date(stage_file(run, "reduce"), reduce_key(spec, ReduceOptions(threads=1)))
    with pytest.raises(ValueError, match=r"a sinogram reduced already.*q range of 1.2-1.5"):
        reduce_key(spec, ReduceOptions(radial_range=(1.2, 1.5)))
    with pytest.raises(ValueError, match=r"a mask"):
        reduce_key(ScanSpec.of(spec.path, mask_path=spec.path), ReduceOptions())


def _linked_step(folder: Path, k: int) -> tuple[Path, Path]:
    """An operando step of integrated patterns whose intensities lie in a detector file."""
    n, n_q = 8, 5
    scan, patterns = folder / f"step_{k}.h5", folder / "detector" / f"step_{k}.h5"
    patterns.parent.mkdir(exist_ok=True)
    with h5py.File(patterns, "w") as d:
        d["data"] = np.full((n, n_q), float(k + 1))
    with h5py.File(scan, "w") as f:
        f["entry/integrated/intensity"] = h5py.ExternalLink(f"detector/{patterns.name}", "/data")
        f["entry/integrated/q"] = np.linspace(1.0, 2.0, n_q)
        f["entry/sample/rotation_angle"] = np.repeat([0.0, 90.0], n // 2)
        f["entry/sample/translation"] = np.tile(np.arange(n // 2) * 0.01, 2)
        f["entry/start_time"] = f"2024-01-01T0{k}:00:00"
    return scan, patterns


def test_the_operando_key_covers_the_files_a_scans_patterns_are_linked_to(
    tmp_path: Path,
) -> None:
    """A step's detector file replaced: operando.h5 stayed "up to date" with shares, zones
    and curves of the old patterns."""
    steps = [_linked_step(tmp_path, k) for k in range(2)]
    scans = [scan for scan, _ in steps]
    before = operando_key(scans, OperandoOptions())
    patterns = steps[0][1]
    with h5py.File(patterns, "a") as d:
        d["data"][...] = 7.0
    os.utime(patterns, ns=(patterns.stat().st_atime_ns, patterns.stat().st_mtime_ns + 10**9))
    assert operando_key(scans, OperandoOptions()) != before


def test_the_operando_key_leaves_the_reductions_speed_options_out(tmp_path: Path) -> None:
    """``[waxs] threads`` or ``block_frames`` changed only the speed of the steps'
    reduction, yet ``jellyroll run`` computed the whole operando series again (its key held
    every reduce option)."""
    scans = [_linked_step(tmp_path, k)[0] for k in range(2)]
    keys = {
        operando_key(scans, OperandoOptions(), reduce_options=ReduceOptions(**speed))
        for speed in ({}, {"threads": 1}, {"threads": 4, "decode_threads": 2}, {"block_frames": 64})
    }
    assert len(keys) == 1
    other = operando_key(scans, OperandoOptions(), reduce_options=ReduceOptions(npt=400))
    assert other not in keys


def test_a_result_of_another_jellyroll_version_is_not_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keys held no version: after an upgrade that fixed a stage, `jellyroll run` kept
    the older version's results as "up to date" (with the wrong figures that the fix
    corrects), exit 0."""
    spec, run, _ = _imported(tmp_path)
    assert is_up_to_date(stage_file(run, "reduce"), reduce_key(spec, ReduceOptions()))
    monkeypatch.setattr("jellyroll.results.store.__version__", "99.0.0")
    assert not is_up_to_date(stage_file(run, "reduce"), reduce_key(spec, ReduceOptions()))


def _doubled_copy(scan: Path, target: Path) -> Path:
    """A copy of the Bliss ``scan`` at ``target`` with its frames doubled (the final file of
    an acquisition that replaces the scan)."""
    with h5py.File(scan, "r") as f, h5py.File(target, "w") as g:
        for name in f:
            f.copy(f[name], g)
        for name in g:
            g[f"{name}/measurement/pilatus"][...] = g[f"{name}/measurement/pilatus"][()] * 2
    return target


def _pipeline_stage(path: Path, key, action) -> None:
    from jellyroll.pipeline.stages import StageLog

    StageLog().run("reduce", path, key, action)


def _operando_step(path: Path, key, action) -> None:
    from jellyroll.operando.run import _stage

    _stage([], "step 0 reduce", path, key, action)


@pytest.mark.parametrize("stage", [_pipeline_stage, _operando_step], ids=["run", "operando"])
def test_a_scan_replaced_while_it_is_reduced_is_never_taken_for_up_to_date(
    tmp_path: Path, stage
) -> None:
    """The scan replaced (its frames doubled: the acquisition's final file) while the
    reduction read it: the stage file recorded the key of the new file over the sinogram of
    the old frames, and the next `jellyroll run` (or operando step) skipped it as up to
    date (sinogram mean 25.9 kept where the file now gives 51.8), exit 0. Now the stage is
    refused and its file removed; the rerun reduces the new frames: equal to a fresh
    reduction of them (rtol 1e-6, float32 rounding of one and the same computation)."""
    from jellyroll.results.run import read_sinogram
    from jellyroll.results.store import InputsChangedError

    scan, mapping = _bliss_scan(tmp_path)
    doubled = _doubled_copy(scan, tmp_path / "doubled.h5")
    spec, options = ScanSpec.of(scan, mapping), ReduceOptions(npt=20)
    run, fresh = tmp_path / "run.h5", tmp_path / "fresh.h5"
    sinogram = stage_file(run, "reduce")

    def reduce(target: Path, on_block=None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a tiny scan: no rotation centre, not tested
            run_reduce(spec.path, target, options, mapping=spec.mapping, on_block=on_block)

    def replace(*_) -> None:
        if doubled.exists():
            os.replace(doubled, scan)

    def key() -> str:
        return reduce_key(spec, options)

    with pytest.raises(InputsChangedError, match="inputs changed while it ran"):
        stage(sinogram, key, lambda: reduce(run, replace))
    assert not sinogram.exists()
    stage(sinogram, key, lambda: reduce(run))
    reduce(fresh)
    np.testing.assert_allclose(
        read_sinogram(run).data, read_sinogram(fresh).data, rtol=1e-6, equal_nan=True
    )


def test_a_standalone_reduction_records_the_key_of_the_scan_it_read(tmp_path: Path) -> None:
    """`jellyroll reduce` with the scan replaced while it read the frames recorded the key
    of the new file (taken at its end) over the sinogram of the old frames: a later
    `jellyroll run` writing to the same run file skipped the reduction as up to date, exit
    0. The key is now taken before the scan is opened, so the new file is not up to date."""
    from jellyroll.results.store import is_up_to_date

    scan, mapping = _bliss_scan(tmp_path)
    replacement = _doubled_copy(scan, tmp_path / "replacement.h5")
    spec, options = ScanSpec.of(scan, mapping), ReduceOptions(npt=20)
    run = tmp_path / "run.h5"

    def replace(*_) -> None:
        if replacement.exists():
            os.replace(replacement, scan)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny scan: no rotation centre, not tested
        run_reduce(spec.path, run, options, mapping=spec.mapping, on_block=replace)
    assert not replacement.exists()  # replaced during the reduction
    assert not is_up_to_date(stage_file(run, "reduce"), reduce_key(spec, options))

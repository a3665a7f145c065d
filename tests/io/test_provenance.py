"""File fingerprints: what makes a result stale."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.io.provenance import (
    OutputWouldOverwriteInputError,
    atomic_output,
    data_files,
    file_fingerprint,
    json_text,
    provenance_record,
    refuse_overwrite,
    sha256_file,
)


def test_an_edit_with_its_time_restored_changes_the_fingerprint(tmp_path: Path) -> None:
    """A PONI edited in place at the same size, its modification time put back (as ``cp -p``
    or ``touch -r`` do), kept its fingerprint: the reduction stayed up to date with the old
    geometry. Reading the file changes nothing."""
    path = tmp_path / "calibration.poni"
    path.write_text("Distance: 0.5439\n")
    before = file_fingerprint(path)
    path.read_text()
    assert file_fingerprint(path) == before
    stat = path.stat()
    time.sleep(0.01)  # the status-change clock must move on (ns resolution on ext4, tmpfs)
    path.write_text("Distance: 0.5440\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size
    assert file_fingerprint(path) != before


def test_the_raw_files_of_external_storage_are_data_files(tmp_path: Path, monkeypatch) -> None:
    """Frames in HDF5 external raw storage (a .bin the scan file wraps): the .bin rewritten
    with every frame doubled, same size and time, kept the reduce key and was missing from
    the provenance, so the sinogram of the old frames stayed "up to date" (median 0.60 kept,
    1.19 from the frames now), exit 0. Relative names are found from the working folder,
    as HDF5 reads them."""
    frames = np.arange(24, dtype="<i4").reshape(2, 3, 4)
    (tmp_path / "frames.bin").write_bytes(frames.tobytes())
    scan = tmp_path / "scan.h5"
    with h5py.File(scan, "w") as f:
        f.create_dataset("data", shape=(2, 3, 4), dtype="<i4", external=[("frames.bin", 0, 96)])
    monkeypatch.chdir(tmp_path)
    with h5py.File(scan, "r") as f:
        assert np.array_equal(f["data"][()], frames)  # HDF5 reads it from the working folder
        found = data_files(scan, [f["data"]])
    assert [p.resolve() for p in found] == [scan, tmp_path / "frames.bin"]
    record = provenance_record({}, found)
    assert set(record["inputs"]) == {str(scan), str(tmp_path / "frames.bin")}


def test_inputs_are_named_by_absolute_path(tmp_path: Path, monkeypatch) -> None:
    """`jellyroll diagnose waxs_run.h5 saxs_run.h5 -o elsewhere/results.h5` recorded its inputs
    as bare names: read from the results' folder they named no file, and the checksums
    could be checked against nothing."""
    (tmp_path / "poni.txt").write_text("Distance: 0.245\n")
    monkeypatch.chdir(tmp_path)
    record = provenance_record({}, ["poni.txt"])
    assert list(record["inputs"]) == [str(tmp_path / "poni.txt")]


def test_a_record_holds_the_files_an_hdf5_input_is_linked_to(tmp_path: Path) -> None:
    """A sinogram imported by `jellyroll reduce`, its data an external link into another
    file: the record held only the checksum of the file named, so two results of different
    data recorded the same inputs. A soft link back to a parent group is walked once."""
    data = tmp_path / "data.h5"
    with h5py.File(data, "w") as d:
        d["data"] = np.ones((2, 3, 4))
    sinogram = tmp_path / "sinogram.h5"
    with h5py.File(sinogram, "w") as f:
        f["entry/sinogram/data"] = h5py.ExternalLink(data.name, "/data")
        f["entry/sinogram/q"] = np.arange(4.0)
        f["entry/sinogram/loop"] = h5py.SoftLink("/entry")
        f["entry/sinogram/gone"] = h5py.ExternalLink("missing.h5", "/data")
    record = provenance_record({}, [sinogram])
    assert sorted(Path(p).name for p in record["inputs"]) == ["data.h5", "sinogram.h5"]
    assert record["inputs"][str(data)] == f"sha256:{sha256_file(data)}"


def test_an_output_naming_an_input_by_another_path_is_refused(tmp_path: Path) -> None:
    """`jellyroll reduce a/scan.h5 -o b/scan.h5` with b a bind mount of a: the paths resolve
    apart, so the run index was written over the raw scan (frames gone, exit 1 only when
    the scan was opened again). A hard link stands in here for every second name of one
    file (bind mounts, case-only differences on macOS / Windows)."""
    scan = tmp_path / "a" / "scan.h5"
    scan.parent.mkdir()
    scan.write_bytes(b"raw frames")
    other = tmp_path / "b" / "scan.h5"
    other.parent.mkdir()
    os.link(scan, other)
    with pytest.raises(OutputWouldOverwriteInputError, match="one of the inputs"):
        refuse_overwrite([other], [scan])
    with pytest.raises(OutputWouldOverwriteInputError), atomic_output(other, inputs=[scan]):
        pass
    assert scan.read_bytes() == b"raw frames"
    refuse_overwrite([tmp_path / "b" / "run.h5"], [scan])  # a new file is no input


def test_a_virtual_source_found_in_the_working_folder_is_a_data_file(
    tmp_path: Path, monkeypatch
) -> None:
    """A scan's frames, a virtual dataset over ``part.h5`` that HDF5 finds in the working
    folder (or under HDF5_VDS_PREFIX, as the message for a missing source advises), not
    beside the scan: the reduce key and the provenance named the absent
    ``scans/part.h5``, so ``part.h5`` rewritten with every frame doubled kept the key and
    the sinogram of the old frames stayed "up to date", exit 0."""
    from jellyroll.reduce.options import ReduceOptions
    from jellyroll.reduce.run import ScanSpec, reduce_key

    frames = np.arange(6 * 5 * 7, dtype=np.int32).reshape(6, 5, 7)
    (tmp_path / "scans").mkdir()
    (tmp_path / "work").mkdir()
    part = tmp_path / "work" / "part.h5"
    with h5py.File(part, "w") as f:
        f["data"] = frames
    layout = h5py.VirtualLayout(shape=frames.shape, dtype=np.int32)
    layout[:] = h5py.VirtualSource("part.h5", "data", shape=frames.shape)
    scan = tmp_path / "scans" / "master.h5"
    with h5py.File(scan, "w") as f:
        f.create_virtual_dataset("/entry/instrument/detector/data", layout)
        f["/entry/sample/rotation_angle"] = np.repeat([0.0, 90.0], 3)
        f["/entry/sample/translation"] = np.tile([0.0, 0.01, 0.02], 2)
    (tmp_path / "geometry.poni").write_text(
        "poni_version: 2.1\nDetector: Detector\nDetector_config: "
        '{"pixel1": 0.000172, "pixel2": 0.000172, "max_shape": [5, 7]}\nDistance: 0.245\n'
        "Poni1: 0.0004\nPoni2: 0.0006\nRot1: 0.0\nRot2: 0.0\nRot3: 0.0\nWavelength: 1.61e-11\n"
    )
    monkeypatch.chdir(tmp_path / "work")
    with h5py.File(scan, "r") as f:  # HDF5 reads the working folder's part.h5
        assert np.array_equal(f["/entry/instrument/detector/data"][()], frames)
    record = provenance_record({}, [scan])
    assert set(record["inputs"]) == {str(scan), str(part)}
    spec, options = ScanSpec.of(scan, poni_path=tmp_path / "geometry.poni"), ReduceOptions(npt=20)
    before = reduce_key(spec, options)
    time.sleep(0.01)  # the status-change clock must move on
    with h5py.File(part, "r+") as f:
        f["data"][...] = frames * 2
    assert reduce_key(spec, options) != before


def test_the_small_inputs_of_a_large_scan_keep_their_checksums(tmp_path: Path) -> None:
    """A scan over the hashing budget (every real one: ~3 TB) made every input of the record
    a fingerprint, the 16-byte PONI too: the reduction's record held no checksum of the
    calibration that made its q axis. Now the small files are hashed within the budget and
    only what exceeds it is fingerprinted."""
    scan, poni, mask = tmp_path / "scan.h5", tmp_path / "ceo2.poni", tmp_path / "mask.npy"
    scan.write_bytes(b"x" * 4096)
    poni.write_text("Distance: 0.245\n")
    mask.write_bytes(b"\0" * 100)
    record = provenance_record({}, [scan, poni, mask], hash_limit_bytes=1024)["inputs"]
    assert record[str(poni)] == f"sha256:{sha256_file(poni)}"
    assert record[str(mask)] == f"sha256:{sha256_file(mask)}"
    assert record[str(scan)] == f"fingerprint:{file_fingerprint(scan)}"
    everything = provenance_record({}, [scan, poni], hash_limit_bytes=10**6)["inputs"]
    assert all(value.startswith("sha256:") for value in everything.values())


def _refuse_constant(name: str) -> None:
    raise ValueError(f"not strict JSON: {name}")


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=20,
)


def _finite_or_none(value):
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value


@settings(max_examples=200, deadline=None)
@given(_values)
def test_json_text_is_strict_json_with_null_for_what_is_not_finite(value) -> None:
    """Any nesting of numbers (NaN and infinities too), text, lists and dicts reads back
    with a strict reader (no bare NaN or Infinity, which JavaScript's JSON.parse and jq
    refuse; every reconstruction's provenance held one) as itself, NaN and infinities as
    null; NumPy arrays and scalars as lists and numbers."""
    text = json_text(value)
    assert json.loads(text, parse_constant=_refuse_constant) == _finite_or_none(value)
    array = np.array([1.5, np.nan, -np.inf])
    assert json.loads(json_text({"a": array, "b": np.float32(np.nan), "c": np.int64(3)})) == {
        "a": [1.5, None, None], "b": None, "c": 3
    }  # fmt: skip

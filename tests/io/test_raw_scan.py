"""Raw-scan HDF5 writers: SPEC section 6 layout, compression, atomicity and streaming."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jellyroll.io.raw_scan import (
    IntegratedScanWriter,
    RawScanWriter,
    write_integrated_scan,
)
from jellyroll.io.scans import ScanFormatError, open_scan

SHAPE = (12, 17)
PONI = "Detector: Detector\nDistance: 0.15\nPoni1: 0.001\nPoni2: 0.002\nWavelength: 1.61e-11\n"
FILTER_IDS = {
    "bitshuffle-lz4": hdf5plugin.BSHUF_ID,
    "lz4": hdf5plugin.LZ4_ID,
    "zstd": hdf5plugin.ZSTD_ID,
    "gzip": h5py.h5z.FILTER_DEFLATE,
}


def scan(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "frames": rng.integers(-2, 5000, size=(n, *SHAPE), dtype=np.int32),
        "rotation_angle_deg": rng.uniform(0, 180, n),
        "translation_mm": rng.uniform(-5, 5, n),
        "monitor": rng.uniform(1e5, 2e5, n),
        "diode": rng.uniform(1e3, 2e3, n),
    }


def filter_ids(dataset: h5py.Dataset) -> set[int]:
    plist = dataset.id.get_create_plist()
    return {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}


def file_content(path: Path) -> dict[str, tuple[np.ndarray, dict]]:
    """Every dataset and group of a file with its attributes, except the provenance record
    (it holds a creation time)."""
    content: dict[str, tuple[np.ndarray, dict]] = {}

    def visit(name: str, obj: h5py.Group | h5py.Dataset) -> None:
        if name == "entry/provenance":
            return
        value = obj[()] if isinstance(obj, h5py.Dataset) else None
        content[name] = (value, {k: np.asarray(v).tolist() for k, v in obj.attrs.items()})

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    return content


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_raw_scan_layout(tmp_path):
    data = scan(7)
    mask = np.zeros(SHAPE, bool)
    mask[3, 4] = True
    path = tmp_path / "scan.h5"
    config = {"seed": 0, "note": "layout"}
    with RawScanWriter(
        path, SHAPE, poni=PONI, mask=mask, n_frames_hint=4, configuration=config
    ) as writer:
        writer.append(data["frames"][:3], *(data[k][:3] for k in list(data)[1:]))
        writer.append(data["frames"][3:], *(data[k][3:] for k in list(data)[1:]))
    assert leftovers(tmp_path) == ["scan.h5"]
    with h5py.File(path, "r") as f:
        frames = f["/entry/instrument/detector/data"]
        assert frames.shape == (7, *SHAPE) and frames.dtype == np.int32
        assert frames.maxshape == (None, *SHAPE)
        assert frames.chunks == (1, *SHAPE)
        assert frames.attrs["units"] == "counts"
        assert hdf5plugin.BSHUF_ID in filter_ids(frames)
        np.testing.assert_array_equal(frames[()], data["frames"])
        assert f["/entry/instrument/detector/poni"].asstr()[()] == PONI
        stored_mask = f["/entry/instrument/detector/mask"]
        assert stored_mask.shape == SHAPE
        np.testing.assert_array_equal(stored_mask[()] != 0, mask)
        for path_, key, units in [
            ("/entry/sample/rotation_angle", "rotation_angle_deg", "deg"),
            ("/entry/sample/translation", "translation_mm", "mm"),
            ("/entry/monitor/data", "monitor", "counts"),
            ("/entry/instrument/diode/data", "diode", "counts"),
        ]:
            dataset = f[path_]
            assert dataset.shape == (7,) and dataset.dtype == np.float64
            assert dataset.attrs["units"] == units
            np.testing.assert_array_equal(dataset[()], data[key])
        for group, nx_class in [
            ("/entry", "NXentry"),
            ("/entry/instrument", "NXinstrument"),
            ("/entry/instrument/detector", "NXdetector"),
            ("/entry/sample", "NXsample"),
            ("/entry/monitor", "NXmonitor"),
            ("/entry/data", "NXdata"),
        ]:
            assert f[group].attrs["NX_class"] == nx_class
        # The NXdata view is the frames dataset itself (a hard link), not a copy.
        assert f["/entry/data/data"].id == frames.id
        assert f["/entry"].attrs["default"] == "data"
        record = json.loads(f["/entry/provenance"].asstr()[()])
        assert record["configuration"] == config
        assert "h5py" in record["versions"]


@pytest.mark.parametrize("compression", ["bitshuffle-lz4", "lz4", "zstd", "gzip", "none"])
def test_compression_filter_applied_and_lossless(tmp_path, compression):
    data = scan(3, seed=1)
    path = tmp_path / f"{compression}.h5"
    with RawScanWriter(path, SHAPE, poni=PONI, compression=compression) as writer:
        writer.append(data["frames"], data["rotation_angle_deg"], data["translation_mm"])
    with h5py.File(path, "r") as f:
        frames = f["/entry/instrument/detector/data"]
        ids = filter_ids(frames)
        if compression == "none":
            assert ids == set()
        else:
            assert FILTER_IDS[compression] in ids
        np.testing.assert_array_equal(frames[()], data["frames"])
        assert "monitor" not in f["/entry"] and "diode" not in f["/entry/instrument"]
        assert "mask" not in f["/entry/instrument/detector"]


def test_failed_write_leaves_nothing(tmp_path):
    data = scan(2)
    path = tmp_path / "scan.h5"
    with pytest.raises(RuntimeError, match="beam lost"):
        with RawScanWriter(path, SHAPE, poni=PONI) as writer:
            writer.append(data["frames"], data["rotation_angle_deg"], data["translation_mm"])
            raise RuntimeError("beam lost")
    assert leftovers(tmp_path) == []


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "scan.h5"
    path.write_bytes(b"previous")
    with pytest.raises(ValueError, match="frames of shape"):
        with RawScanWriter(path, SHAPE, poni=PONI) as writer:
            writer.append(np.zeros((1, 3, 3), np.int32), [0.0], [0.0])
    assert path.read_bytes() == b"previous"
    assert leftovers(tmp_path) == ["scan.h5"]


def test_append_validation(tmp_path):
    data = scan(2)
    with RawScanWriter(tmp_path / "scan.h5", SHAPE, poni=PONI) as writer:
        with pytest.raises(TypeError):
            writer.append(data["frames"].astype(float), [0, 1], [0, 1])
        with pytest.raises(ValueError, match="translation"):
            writer.append(data["frames"], [0, 1], [0])
        writer.append(data["frames"][0], [0], [0], monitor=[1.0])  # one (H, W) frame
        with pytest.raises(ValueError, match="monitor"):
            writer.append(data["frames"][1], [0], [0])
        assert writer.n_frames == 1


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
def test_invalid_pixels_of_unsigned_frames_stay_invalid(tmp_path, dtype):
    """Eiger marks invalid pixels with the dtype's largest value; stored as int32 they read
    back as 65535 (or 2^32 - 1, refused as not fitting) counts, integrated as data. Stored
    as -1 they are masked, as the unsigned frame itself is."""
    frames = np.full((2, *SHAPE), 100, dtype)
    frames[0, 3, 4] = frames[1, :, 0] = np.iinfo(dtype).max
    with RawScanWriter(tmp_path / "scan.h5", SHAPE, poni=PONI) as writer:
        writer.append(frames, [0, 1], [0, 0])
    back = open_scan(tmp_path / "scan.h5").read(0, 2).data
    np.testing.assert_array_equal(back, np.where(frames == np.iinfo(dtype).max, -1, 100))


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(st.integers(0, 6), min_size=1, max_size=6),
    hint=st.one_of(st.none(), st.integers(0, 40)),
)
def test_append_in_blocks_equals_one_append(sizes, hint):
    n = sum(sizes)
    data = scan(n, seed=n)
    keys = list(data)
    with tempfile.TemporaryDirectory() as tmp:
        whole, pieces = Path(tmp) / "whole.h5", Path(tmp) / "pieces.h5"
        with RawScanWriter(whole, SHAPE, poni=PONI) as writer:
            writer.append(*(data[k] for k in keys))
        with RawScanWriter(pieces, SHAPE, poni=PONI, n_frames_hint=hint) as writer:
            start = 0
            for size in sizes:
                writer.append(*(data[k][start : start + size] for k in keys))
                start += size
        a, b = file_content(whole), file_content(pieces)
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name][0], b[name][0], err_msg=name)
            assert a[name][1] == b[name][1], name


@pytest.mark.parametrize(("units", "factor"), [("1/nm", 0.1), ("A^-1", 1.0), (None, 1.0)])
def test_integrated_q_is_read_in_inverse_angstrom(tmp_path, units, factor):
    """Integrated patterns with q in 1/nm were taken for 1/angstrom (d* 10 times off);
    without @units q is in 1/angstrom, as SPEC section 6 says."""
    q = np.linspace(0.8, 5.2, 9)
    path = write_integrated_scan(
        tmp_path / "scan.h5", q, np.ones((4, 9), np.float32), np.zeros(4), np.zeros(4)
    )
    with h5py.File(path, "r+") as f:
        if units is None:
            del f["/entry/integrated/q"].attrs["units"]
        else:
            f["/entry/integrated/q"].attrs["units"] = units
    scan = open_scan(path)
    try:
        np.testing.assert_allclose(scan.info.q_A, factor * q)
    finally:
        scan.close()


def test_integrated_patterns_not_in_q_are_refused(tmp_path):
    path = write_integrated_scan(
        tmp_path / "scan.h5", np.linspace(5, 40, 9), np.ones((4, 9), np.float32), np.zeros(4),
        np.zeros(4),
    )  # fmt: skip
    with h5py.File(path, "r+") as f:
        f["/entry/integrated/q"].attrs["units"] = "deg"
    with pytest.raises(ScanFormatError, match=r"scan\.h5.*'deg', not a unit of q"):
        open_scan(path)


def test_integrated_scan_streams_blocks(tmp_path):
    rng = np.random.default_rng(5)
    n, n_q = 50, 33
    q = np.linspace(0.8, 5.2, n_q)
    intensity = rng.random((n, n_q)).astype(np.float32)
    rotation, translation = rng.uniform(0, 180, n), rng.uniform(-5, 5, n)
    monitor = rng.uniform(1, 2, n)
    consumed = []

    def blocks():
        for start, stop in [(0, 7), (7, 8), (8, 30), (30, 50)]:
            consumed.append(stop)
            yield intensity[start:stop]

    from_blocks = write_integrated_scan(
        tmp_path / "blocks.h5", q, blocks(), rotation, translation, monitor, poni=PONI
    )
    from_array = write_integrated_scan(
        tmp_path / "array.h5", q, intensity, rotation, translation, monitor, poni=PONI,
        block_rows=16,
    )  # fmt: skip
    assert consumed == [7, 8, 30, 50]
    assert file_content(from_blocks).keys() == file_content(from_array).keys()
    with h5py.File(from_blocks, "r") as f:
        data = f["/entry/integrated/intensity"]
        assert data.shape == (n, n_q) and data.dtype == np.float32
        assert data.maxshape == (None, n_q)
        assert hdf5plugin.BSHUF_ID in filter_ids(data)
        np.testing.assert_array_equal(data[()], intensity)
        assert f["/entry/integrated/q"].attrs["units"] == "1/angstrom"
        np.testing.assert_array_equal(f["/entry/integrated/q"][()], q)
        assert f["/entry/integrated"].attrs["NX_class"] == "NXdata"
        assert f["/entry/integrated"].attrs["signal"] == "intensity"
        assert f["/entry"].attrs["default"] == "integrated"
        assert f["/entry/sample/rotation_angle"].attrs["units"] == "deg"
        np.testing.assert_array_equal(f["/entry/sample/translation"][()], translation)
        np.testing.assert_array_equal(f["/entry/monitor/data"][()], monitor)
        assert "diode" not in f["/entry/instrument"]
        assert f["/entry/instrument/detector/poni"].asstr()[()] == PONI
        assert "/entry/instrument/detector/data" not in f


def test_integrated_scan_row_count_mismatch_leaves_nothing(tmp_path):
    q = np.linspace(1, 2, 4)
    with pytest.raises(ValueError, match="rows"):
        write_integrated_scan(tmp_path / "bad.h5", q, np.ones((3, 4)), np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="more than"):
        write_integrated_scan(tmp_path / "bad.h5", q, np.ones((6, 4)), np.zeros(5), np.zeros(5))
    assert leftovers(tmp_path) == []


def test_integrated_scan_with_q_out_of_order_is_refused(tmp_path):
    """A q axis with two bins swapped was written without a word; the scan reader refuses
    it now, so the writer does too, before any pattern, leaving nothing."""
    q = np.linspace(1, 2, 4)[[0, 2, 1, 3]]
    with pytest.raises(ValueError, match=r"bad\.h5: q_A is not finite and strictly monotonic"):
        write_integrated_scan(tmp_path / "bad.h5", q, np.ones((5, 4)), np.zeros(5), np.zeros(5))
    assert leftovers(tmp_path) == []


def test_integrated_writer_append(tmp_path):
    q = np.linspace(1, 2, 4)
    with IntegratedScanWriter(tmp_path / "w.h5", q, compression="none") as writer:
        writer.append(np.ones(4), [1.0], [2.0], diode=[3.0])
        writer.append(np.zeros((2, 4)), [4.0, 5.0], [6.0, 7.0], diode=[8.0, 9.0])
    with h5py.File(tmp_path / "w.h5", "r") as f:
        assert f["/entry/integrated/intensity"].shape == (3, 4)
        np.testing.assert_array_equal(f["/entry/instrument/diode/data"][()], [3.0, 8.0, 9.0])
        assert f["/entry/instrument/diode"].attrs["NX_class"] == "NXdetector"


def _split_scan(folder: Path, seed: int, how: str) -> Path:
    """A raw scan whose frames live in ``folder/frames.h5``, reached from ``master.h5`` by an
    external link or as a virtual dataset (SPEC section 6 allows both)."""
    whole = folder / "whole.h5"
    data = scan(3, seed=seed)
    with RawScanWriter(whole, SHAPE, poni=PONI) as writer:
        writer.append(data["frames"], data["rotation_angle_deg"], data["translation_mm"])
    with h5py.File(folder / "frames.h5", "w") as frames:
        frames["data"] = data["frames"]
    master = folder / "master.h5"
    if not master.exists():
        with h5py.File(whole, "r") as source, h5py.File(master, "w") as f:
            source.copy(source["entry"], f)
            del f["entry/instrument/detector/data"]
            if how == "link":
                f["entry/instrument/detector/data"] = h5py.ExternalLink("frames.h5", "/data")
            else:
                layout = h5py.VirtualLayout(shape=data["frames"].shape, dtype=np.int32)
                layout[:] = h5py.VirtualSource("frames.h5", "data", shape=data["frames"].shape)
                f["entry/instrument/detector"].create_virtual_dataset("data", layout)
    whole.unlink()
    return master


@pytest.mark.parametrize("how", ["link", "virtual"])
def test_frames_in_another_file_are_part_of_the_scan_key(tmp_path, how):
    """Frames behind an external link were not part of the reduce stage's key: replacing
    them left the sinogram "up to date" (a fresh cell's maps kept for an aged one)."""
    from jellyroll.reduce.options import ReduceOptions
    from jellyroll.reduce.run import ScanSpec, reduce_key

    master = _split_scan(tmp_path, 0, how)
    reader = open_scan(master)
    files = {p.resolve() for p in reader.info.files}
    reader.close()
    del reader  # its frames dataset holds frames.h5 open
    assert files == {master.resolve(), (tmp_path / "frames.h5").resolve()}
    before = reduce_key(ScanSpec.of(master), ReduceOptions())
    _split_scan(tmp_path, 1, how)  # other frames, the same master file
    assert reduce_key(ScanSpec.of(master), ReduceOptions()) != before

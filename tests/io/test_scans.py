"""Scan readers: raw HDF5, pre-integrated, Bliss + TOML, CBF/EDF series; clear errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fabio
import h5py
import hdf5plugin
import numpy as np
import pytest

from jellyroll.io.scans import (
    ANGLE,
    FRAMES,
    ScanFormatError,
    open_scan,
    read_mask,
    write_frame_table,
)


def _raw_scan(path: Path, n: int = 12, shape=(6, 8), compression="gzip") -> np.ndarray:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 100, size=(n, *shape)).astype(np.int32)
    with h5py.File(path, "w") as f:
        f.create_dataset(FRAMES, data=frames, chunks=(1, *shape), compression=compression)
        f["/entry/instrument/detector/poni"] = "poni_version: 2.1\n"
        f["/entry/instrument/detector/mask"] = np.zeros(shape, np.uint8)
        f[ANGLE] = np.repeat([0.0, 60.0, 120.0], n // 3)
        f["/entry/sample/translation"] = np.tile(np.arange(n // 3) * 0.01, 3)
        f["/entry/monitor/data"] = np.full(n, 1e5)
    return frames


def test_raw_scan_reads_blocks_and_metadata(tmp_path: Path) -> None:
    frames = _raw_scan(tmp_path / "scan.h5")
    reader = open_scan(tmp_path / "scan.h5")
    assert reader.info.kind == "frames" and reader.info.n_frames == 12
    assert reader.info.frame_shape == (6, 8)
    assert reader.info.diode is None and reader.info.monitor is not None
    block = reader.read(3, 9)
    assert np.array_equal(block.data, frames[3:9]) and block.valid.all()
    reader.close()


def test_missing_dataset_is_named(tmp_path: Path) -> None:
    path = tmp_path / "scan.h5"
    _raw_scan(path)
    with h5py.File(path, "a") as f:
        del f[ANGLE]
    with pytest.raises(ScanFormatError, match=r"scan\.h5.*rotation_angle.*missing"):
        open_scan(path)


def test_length_mismatch_is_named(tmp_path: Path) -> None:
    path = tmp_path / "scan.h5"
    _raw_scan(path)
    with h5py.File(path, "a") as f:
        del f["/entry/monitor/data"]
        f["/entry/monitor/data"] = np.ones(5)
    with pytest.raises(
        ScanFormatError, match=r"monitor/data has shape \(5,\) \(5 values\) but there are 12"
    ):
        open_scan(path)


def test_text_where_numbers_go_is_named(tmp_path: Path) -> None:
    """Text in a per-frame dataset gave NumPy's "could not convert string to float: b'abc'",
    naming neither the file nor the dataset."""
    path = tmp_path / "scan.h5"
    _raw_scan(path)
    with h5py.File(path, "a") as f:
        del f[ANGLE]
        f[ANGLE] = ["abc"] * 12
    with pytest.raises(ScanFormatError, match=r"scan\.h5: dataset .*rotation_angle holds text"):
        open_scan(path)


def test_not_a_scan(tmp_path: Path) -> None:
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ScanFormatError, match="not a readable HDF5"):
        open_scan(tmp_path / "junk.h5")
    with pytest.raises(ScanFormatError, match="no such scan file"):
        open_scan(tmp_path / "absent.h5")


def test_corrupt_chunk_marks_only_that_frame_missing(tmp_path: Path) -> None:
    path = tmp_path / "scan.h5"
    frames = _raw_scan(path)
    with h5py.File(path, "r") as f:
        info = f[FRAMES].id.get_chunk_info(4)
    with open(path, "r+b") as handle:  # overwrite the compressed bytes of frame 4
        handle.seek(info.byte_offset)
        handle.write(b"\xff" * info.size)
    reader = open_scan(path)
    block = reader.read(0, 12)
    assert block.valid.tolist() == [i != 4 for i in range(12)]
    assert np.array_equal(block.data[block.valid], frames[block.valid])
    assert "[4] unreadable" in block.problems[0] and "scan.h5" in block.problems[0]


def test_a_damaged_chunk_index_is_named(tmp_path: Path) -> None:
    """A scan whose frames' chunk index (a B-tree) is damaged: reduce stopped with HDF5's
    bare "Can't get number of chunks (wrong B-tree signature)", naming no file."""
    path = tmp_path / "scan.h5"
    _raw_scan(path)
    content = bytearray(path.read_bytes())
    at = content.find(b"TREE\x01")  # the B-tree node of raw-data chunks (node type 1)
    assert at > 0
    content[at : at + 4] = b"XXXX"
    path.write_bytes(bytes(content))
    with pytest.raises(ScanFormatError, match=r"scan\.h5: the index of the chunks of /entry"):
        open_scan(path)


@pytest.mark.parametrize(
    ("layout", "chunks"),
    [("bitshuffle, one frame per chunk", (1, 6, 8)), ("gzip, two frames per chunk", (2, 6, 8)),
     ("gzip, frames in tiles", (1, 3, 4)), ("integrated patterns", (2, 10))],
)  # fmt: skip
def test_frames_never_written_are_missing_not_zero(
    tmp_path: Path, layout: str, chunks: tuple[int, ...]
) -> None:
    """A pre-allocated dataset whose acquisition stopped early: h5py reads the frames never
    written as the fill value, 0 counts, which were integrated and placed as a measured
    cell of zero intensity with no warning."""
    path = tmp_path / "scan.h5"
    integrated = len(chunks) == 2
    name = "/entry/integrated/intensity" if integrated else FRAMES
    filters = dict(hdf5plugin.Bitshuffle()) if "bitshuffle" in layout else {"compression": "gzip"}
    tiles = chunks == (1, 3, 4)
    with h5py.File(path, "w") as f:
        shape = (8, 10) if integrated else (8, 6, 8)
        data = f.create_dataset(name, shape=shape, dtype=np.int32, chunks=chunks, **filters)
        data[0:3] = 7  # frames 4-7 never written; with tiles, frame 3 in part only
        if tiles:
            data[3, :3, :4] = 7
        else:
            data[3] = 7
        if integrated:
            f["/entry/integrated/q"] = np.linspace(1, 2, 10)
        f[ANGLE] = np.zeros(8)
        f["/entry/sample/translation"] = np.arange(8) * 0.01
    reader = open_scan(path)
    with ThreadPoolExecutor(2) as pool:
        block = reader.start_read(0, 8, pool).result()
    written = 3 if tiles else 4
    assert block.valid.tolist() == [i < written for i in range(8)]
    assert (block.data[:written] == 7).all()
    assert len(block.problems) == 8 - written and "never written" in block.problems[0]


def test_preintegrated_scan(tmp_path: Path) -> None:
    path = tmp_path / "integrated.h5"
    with h5py.File(path, "w") as f:
        f["/entry/integrated/intensity"] = np.ones((6, 10), np.float32)
        f["/entry/integrated/q"] = np.linspace(1, 2, 10)
        f[ANGLE] = np.zeros(6)
        f["/entry/sample/translation"] = np.arange(6) * 0.01
    reader = open_scan(path)
    assert reader.info.kind == "integrated" and reader.info.q_A.size == 10
    assert reader.read(0, 6).data.shape == (6, 10)


@pytest.mark.parametrize("chunked", [False, True])
def test_bliss_file_with_toml_mapping(tmp_path: Path, chunked: bool) -> None:
    """One entry per line, angle as a scalar per entry, translation in um; frames stored
    whole (h5py reads them) or one bitshuffle-LZ4 chunk each (decoded directly)."""
    rng = np.random.default_rng(1)
    path = tmp_path / "bliss.h5"
    lines = []
    with h5py.File(path, "w") as f:
        for k, angle in enumerate([0.0, 1.8, 3.6]):
            frames = rng.integers(0, 50, size=(4, 5, 7)).astype(np.int32)
            lines.append(frames)
            entry = f.create_group(f"{k + 1}.1")
            storage = {"chunks": (1, 5, 7), **hdf5plugin.Bitshuffle()} if chunked else {}
            entry.create_dataset("measurement/pilatus", data=frames, **storage)
            entry["instrument/positioners/rot"] = angle
            entry["measurement/ty"] = np.arange(4) * 10.0  # um
            entry["measurement/mon"] = np.full(4, 2.0)
        f.create_group("99.2")  # another scan type, not matched
    (tmp_path / "geometry.poni").write_text("poni_version: 2.1\n")
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[bliss]\nframes = "measurement/pilatus"\nrotation_angle = "instrument/positioners/rot"\n'
        'translation = "measurement/ty"\nmonitor = "measurement/mon"\n'
        'translation_unit = "um"\nponi = "geometry.poni"\n'
    )
    reader = open_scan(path, mapping=mapping)
    assert reader.info.n_frames == 12
    assert np.allclose(reader.info.translation_mm[:4], [0, 0.01, 0.02, 0.03])
    assert np.allclose(reader.info.rotation_angle_deg, np.repeat([0, 1.8, 3.6], 4))
    assert reader.info.poni.startswith("poni_version")
    block = reader.read(2, 10)  # spans three entries
    assert np.array_equal(block.data, np.concatenate(lines)[2:10])
    with ThreadPoolExecutor(2) as pool:
        assert np.array_equal(reader.start_read(2, 10, pool).result().data, block.data)


def test_bliss_mapping_rejects_unknown_keys(tmp_path: Path) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[bliss]\nframes = "a"\nrotation_angle = "b"\ntranslation = "c"\nfrmaes = "x"\n'
    )
    (tmp_path / "f.h5").write_bytes(b"")
    with pytest.raises(ScanFormatError, match=r"unknown keys.*frmaes"):
        open_scan(tmp_path / "f.h5", mapping=mapping)


@pytest.mark.parametrize("suffix", ["edf", "cbf"])
def test_frame_series_with_position_table(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 1000, size=(5, 9, 11)).astype(np.int32)
    names = []
    for i, frame in enumerate(frames):
        name = f"frame_{i:04d}.{suffix}"
        image = (
            fabio.edfimage.EdfImage(data=frame)
            if suffix == "edf"
            else fabio.cbfimage.CbfImage(data=frame)
        )
        image.write(str(tmp_path / name))
        names.append(name)
    names[3] = "absent.cbf"  # a frame that never arrived
    table = write_frame_table(tmp_path / "frames.csv", names, np.arange(5.0), np.full(5, 1.5))
    reader = open_scan(table)
    assert reader.info.n_frames == 5 and reader.info.frame_shape == (9, 11)
    with ThreadPoolExecutor(2) as pool:  # files read and decoded on a pool, ahead of use
        pending = reader.start_read(0, 5, pool)
        block = pending.result()
    assert block.valid.tolist() == [True, True, True, False, True]
    assert np.array_equal(block.data[block.valid], frames[[0, 1, 2, 4]])
    assert len(block.problems) == 1 and "absent.cbf" in block.problems[0]
    again = reader.read(0, 5)
    assert np.array_equal(again.data, block.data) and again.problems == block.problems


def _edf_series(folder: Path, n: int) -> list[str]:
    """``n`` small EDF frames in ``folder``, their names."""
    names = [f"frame_{i:02d}.edf" for i in range(n)]
    for name in names:
        fabio.edfimage.EdfImage(data=np.ones((4, 5), np.int32)).write(str(folder / name))
    return names


def test_a_frame_tables_columns_are_read_without_case_and_spaces(tmp_path: Path) -> None:
    """A header's `` monitor`` or ``Monitor`` was left out without a word: no frame was
    normalised by its monitor (up to 4 times off), exit 0. Another column is warned about."""
    names = _edf_series(tmp_path, 3)
    table = tmp_path / "frames.csv"
    rows = [f"{name},{k * 0.01},0,{k + 1.0},x" for k, name in enumerate(names)]
    table.write_text("File, translation,Rotation_Angle, Monitor ,note\n" + "\n".join(rows))
    with pytest.warns(UserWarning, match=r"frames\.csv: the frame table's columns \['note'\]"):
        reader = open_scan(table)
    np.testing.assert_array_equal(reader.info.monitor, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(reader.info.translation_mm, [0.0, 0.01, 0.02])


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [("rotation_angle", np.linspace(0, np.pi, 9), "radians.*write the column in degrees"),
     ("translation", np.arange(9) * 20.0 + 9000, "micrometres.*in millimetres")],
)  # fmt: skip
def test_a_frame_table_in_other_units_is_refused(
    tmp_path: Path, column: str, values: np.ndarray, message: str
) -> None:
    """A table's angles in radians or translations in um were read as degrees and mm, exit
    0 (the CSV holds no unit: its columns are in deg and mm)."""
    names = _edf_series(tmp_path, 9)
    motors = {"rotation_angle": np.zeros(9), "translation": np.arange(9) * 0.02, column: values}
    table = write_frame_table(tmp_path / "t.csv", names, **{
        "rotation_angle_deg": motors["rotation_angle"], "translation_mm": motors["translation"]
    })  # fmt: skip
    with pytest.raises(
        ScanFormatError, match=rf"t\.csv: column {column} states no unit.*{message}"
    ):
        open_scan(table)


@pytest.mark.parametrize("motor", ["angle", "translation"])
def test_bliss_motors_in_other_units_without_units_are_refused(tmp_path: Path, motor: str) -> None:
    """Bliss lines whose one angle each spans a half turn in radians, or whose translations
    are in um, without @units (nor the mapping's translation_unit): read as degrees and mm,
    exit 0, where the raw-scan layout refuses them."""
    path = tmp_path / "bliss.h5"
    with h5py.File(path, "w") as f:
        for k in range(10):
            entry = f.create_group(f"{k + 1}.1")
            entry["measurement/pilatus"] = np.ones((4, 5, 7), np.int32)
            entry["rot"] = k * 18.0
            entry["ty"] = np.arange(4) * (50.0 if motor == "translation" else 0.05) + 10
    (tmp_path / "geometry.poni").write_text("poni_version: 2.1\n")
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[bliss]\nframes = "measurement/pilatus"\nrotation_angle = "rot"\n'
        'translation = "ty"\nponi = "geometry.poni"\n'
    )
    if motor == "angle":
        open_scan(path, mapping=mapping)  # in degrees
        with h5py.File(path, "a") as f:  # one angle per entry, a half turn in radians
            for k in range(10):
                f[f"{k + 1}.1/rot"][...] = k * np.pi / 10
    with pytest.raises(ScanFormatError, match=r"bliss\.h5: (rot|ty) states no unit"):
        open_scan(path, mapping=mapping)


def test_real_pilatus_mask_reads(shared_real: Path) -> None:
    mask = read_mask(shared_real / "pilatus2m_mask.edf")
    assert mask.shape == (1679, 1475) and mask.dtype == bool and 0 < mask.mean() < 0.2


def test_float_edf_frames_are_not_truncated(tmp_path: Path) -> None:
    """Corrected EDF frames hold fractional values: they must reach the integrator as floats."""
    frames = np.random.default_rng(3).random((3, 9, 11)).astype(np.float32) * 10
    names = []
    for i, frame in enumerate(frames):
        names.append(f"frame_{i}.edf")
        fabio.edfimage.EdfImage(data=frame).write(str(tmp_path / names[-1]))
    table = write_frame_table(tmp_path / "frames.csv", names, np.arange(3.0), np.zeros(3))
    block = open_scan(table).read(0, 3)
    assert np.array_equal(block.data, frames)  # float32 in, float32 out: exact


@pytest.mark.parametrize("units", ["rad", "deg", None])
def test_rotation_angle_units_are_converted(tmp_path: Path, units: str | None) -> None:
    path = tmp_path / "scan.h5"
    _raw_scan(path)
    with h5py.File(path, "a") as f:
        angles = f[ANGLE][()]
        if units == "rad":
            f[ANGLE][...] = np.deg2rad(angles)
        if units is not None:
            f[ANGLE].attrs["units"] = units
    # a scan in radians was read as 0-2 deg: every map came out 0, exit 0
    assert np.allclose(open_scan(path).info.rotation_angle_deg, angles)


@pytest.mark.parametrize(("units", "factor"), [("um", 1e3), ("µm", 1e3), ("m", 1e-3)])
def test_translation_units_are_converted(tmp_path: Path, units: str, factor: float) -> None:
    path = tmp_path / "scan.h5"
    _raw_scan(path)
    with h5py.File(path, "a") as f:
        mm = f["/entry/sample/translation"][()]
        f["/entry/sample/translation"][...] = mm * factor
        f["/entry/sample/translation"].attrs["units"] = units
    assert np.allclose(open_scan(path).info.translation_mm, mm)


@pytest.mark.parametrize(
    ("motor", "values", "message"),
    [(ANGLE, np.linspace(0, np.pi, 12, endpoint=False), r"radians.*@units = \"rad\""),
     ("/entry/sample/translation", np.arange(12) * 20.0 + 9000, r"micrometres.*\"um\"")],
)  # fmt: skip
def test_motor_readings_in_another_unit_without_units_are_refused(
    tmp_path: Path, motor: str, values: np.ndarray, message: str
) -> None:
    """Angles in radians or translations in micrometres, without ``@units``: reduced whole
    as 0-3 deg and metres-wide lines, exit 0, refused only by `jellyroll reconstruct`."""
    path = tmp_path / "scan.h5"
    _raw_scan(path)
    with h5py.File(path, "a") as f:
        f[motor][...] = values
    with pytest.raises(ScanFormatError, match=rf"scan\.h5: {motor} states no unit.*{message}"):
        open_scan(path)
    with h5py.File(path, "a") as f:  # stated, they are read
        f[motor].attrs["units"] = "rad" if motor == ANGLE else "um"
    open_scan(path)


def test_unknown_motor_units_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "scan.h5"
    _raw_scan(path)
    with h5py.File(path, "a") as f:
        f["/entry/sample/translation"].attrs["units"] = "furlong"
    with pytest.raises(ScanFormatError, match=r"scan\.h5.*translation.*'furlong'.*mm"):
        open_scan(path)


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY\x01\x00"])
def test_an_empty_or_cut_npy_mask_is_named(tmp_path: Path, content: bytes) -> None:
    """An empty .npy mask ended in click's bare "Aborted." (np.load's EOFError), a cut one
    in NumPy's message without the file: both name the file now."""
    path = tmp_path / "mask.npy"
    path.write_bytes(content)
    with pytest.raises(ScanFormatError, match=r"mask\.npy: not a readable mask"):
        read_mask(path)


@pytest.mark.parametrize("fault", ["swapped", "repeated", "nan"])
def test_a_preintegrated_q_out_of_order_is_refused(tmp_path: Path, fault: str) -> None:
    """An integrated scan whose q axis had two bins swapped, a repeated value or a NaN was
    read without a word and its patterns reduced and reconstructed channel by channel; the
    sinogram import refuses such an axis because only the maps did so otherwise, after the
    reconstruction and naming no file. The reader now refuses it, naming the dataset.
    A descending axis stays accepted (it is ordered)."""
    q = np.linspace(1, 2, 10)
    if fault == "swapped":
        q[[4, 5]] = q[[5, 4]]
    elif fault == "repeated":
        q[5] = q[4]
    else:
        q[5] = np.nan
    for axis, refused in ((q, True), (np.linspace(2, 1, 10), False)):
        path = tmp_path / f"integrated_{refused}.h5"
        with h5py.File(path, "w") as f:
            f["/entry/integrated/intensity"] = np.ones((6, 10), np.float32)
            f["/entry/integrated/q"] = axis
            f[ANGLE] = np.zeros(6)
            f["/entry/sample/translation"] = np.arange(6) * 0.01
        if refused:
            with pytest.raises(ScanFormatError, match=r"integrated/q is not finite and strictly"):
                open_scan(path)
        else:
            assert open_scan(path).info.q_A[0] == 2.0


@pytest.mark.parametrize("name", ["unit", "Units"])
def test_units_spelt_otherwise_are_read(tmp_path: Path, name: str) -> None:
    """Only ``@units`` was looked at: a rotation in radians under ``@unit = "rad"`` read as
    0-2.1 deg for 0-120, a translation in um under ``@unit = "um"`` 1000 times too large and
    a q axis in 1/nm under ``@unit`` 10 times too large, exit 0. Tolerances: float64
    round-off of one conversion."""
    path = tmp_path / "scan.h5"
    _raw_scan(path)
    with h5py.File(path, "a") as f:
        angles, mm = f[ANGLE][()], f["/entry/sample/translation"][()]
        f[ANGLE][...] = np.deg2rad(angles)
        f[ANGLE].attrs[name] = "rad"
        f["/entry/sample/translation"][...] = mm * 1e3
        f["/entry/sample/translation"].attrs[name] = "um"
    info = open_scan(path).info
    np.testing.assert_allclose(info.rotation_angle_deg, angles, atol=1e-12)
    np.testing.assert_allclose(info.translation_mm, mm, atol=1e-15)
    integrated = tmp_path / "integrated.h5"
    with h5py.File(integrated, "w") as f:
        f["/entry/integrated/intensity"] = np.ones((3, 10), np.float32)
        f["/entry/integrated/q"] = np.linspace(10, 20, 10)
        f["/entry/integrated/q"].attrs[name] = "1/nm"
        f[ANGLE] = np.zeros(3)
        f["/entry/sample/translation"] = np.arange(3) * 0.01
    np.testing.assert_allclose(open_scan(integrated).info.q_A, np.linspace(1, 2, 10), rtol=1e-15)


def test_two_different_units_of_a_motor_are_refused(tmp_path: Path) -> None:
    """``@units = "deg"`` beside ``@unit = "rad"``: which one holds cannot be told."""
    path = tmp_path / "scan.h5"
    _raw_scan(path)
    with h5py.File(path, "a") as f:
        f[ANGLE].attrs["units"] = "deg"
        f[ANGLE].attrs["unit"] = "rad"
    with pytest.raises(ScanFormatError, match=r"rotation_angle states its unit twice"):
        open_scan(path)

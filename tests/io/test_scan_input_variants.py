"""Scan inputs that beamlines write in more than one way: 16-bit frame series with invalid
pixels, Bliss translations in other length units, PONI text stored as string arrays."""

from __future__ import annotations

from pathlib import Path

import fabio
import h5py
import numpy as np
import pytest

from jellyroll.io.scans import (
    ANGLE,
    FRAMES,
    PONI,
    TRANSLATION,
    ScanFormatError,
    open_scan,
    write_frame_table,
)

POINT = "Distance: 0.5\nPoni1: 0.01\nPoni2: 0.02\n"


@pytest.mark.parametrize("kind", ["edf", "tif"])
def test_invalid_pixels_of_16_bit_series_stay_invalid(tmp_path: Path, kind: str) -> None:
    """A uint16 EDF/TIFF frame marks invalid pixels 65535 (Eiger's 2^16 - 1). The series
    reader cast it to int32, where 65535 is a count: on the real CeO2 frame with 1 % of such
    pixels the patterns came out 2.6 times too bright (median), with exit 0. The integration
    masks them in unsigned HDF5 frames; the series reader now hands them over as -1."""
    frame = np.arange(6 * 8, dtype=np.uint16).reshape(6, 8) * 100
    frame[2, 3] = frame[4, 7] = 65535
    image = fabio.edfimage.EdfImage if kind == "edf" else fabio.tifimage.TifImage
    image(data=frame).write(str(tmp_path / f"f.{kind}"))
    table = write_frame_table(tmp_path / "t.csv", [f"f.{kind}"] * 2, np.zeros(2), [0.0, 1.0])
    block = open_scan(table, poni=POINT).read(0, 2)
    expected = np.where(frame == 65535, -1, frame.astype(np.int32))
    assert block.valid.all()
    np.testing.assert_array_equal(block.data[0], expected)  # exact: integer values


def _bliss(path: Path) -> None:
    with h5py.File(path, "w") as f:
        for k, angle in enumerate([0.0, 1.8]):
            entry = f.create_group(f"{k + 1}.1")
            entry["measurement/pilatus"] = np.ones((4, 5, 7), np.int32)
            entry["instrument/positioners/rot"] = angle
            entry["measurement/ty"] = np.arange(4) * 10.0


def _mapping(path: Path, unit: str, rotation: str = "instrument/positioners/rot") -> Path:
    path.write_text(
        f'[bliss]\nframes = "measurement/pilatus"\nrotation_angle = "{rotation}"\n'
        f'translation = "measurement/ty"\ntranslation_unit = "{unit}"\n'
    )
    return path


@pytest.mark.parametrize(
    ("unit", "mm"), [("um", 1e-3), ("µm", 1e-3), ("nm", 1e-6), ("m", 1e3), ("mm", 1.0)]
)
def test_bliss_translation_units_are_converted(tmp_path: Path, unit: str, mm: float) -> None:
    """Any translation_unit but "um" was read as mm: "µm" gave translations 1000 times too
    large (and with them the map's pixel size and every defect size)."""
    _bliss(tmp_path / "b.h5")
    reader = open_scan(tmp_path / "b.h5", mapping=_mapping(tmp_path / "m.toml", unit))
    np.testing.assert_allclose(reader.info.translation_mm[:4], np.arange(4) * 10.0 * mm)
    reader.close()


def test_bliss_unknown_unit_and_missing_rotation_are_named(tmp_path: Path) -> None:
    _bliss(tmp_path / "b.h5")
    with pytest.raises(ScanFormatError, match=r"m\.toml: translation_unit 'inch'"):
        open_scan(tmp_path / "b.h5", mapping=_mapping(tmp_path / "m.toml", "inch"))
    # a rotation dataset that is not there raised h5py's KeyError naming neither file
    missing = _mapping(tmp_path / "n.toml", "um", rotation="instrument/positioners/srot")
    with pytest.raises(ScanFormatError, match=r"b\.h5:/1\.1: dataset .*srot missing"):
        open_scan(tmp_path / "b.h5", mapping=missing)


@pytest.mark.parametrize(
    "stored",
    [
        np.array([POINT], dtype=h5py.string_dtype()),  # (1,) variable-length string
        np.array([POINT.encode()]),  # (1,) fixed-length bytes
        np.array(POINT.splitlines(), dtype=h5py.string_dtype()),  # one line per element
    ],
)
def test_poni_stored_as_a_string_array(tmp_path: Path, stored: np.ndarray) -> None:
    """A PONI dataset of shape (1,) (as many NeXus writers store strings) was read as the
    text "[b'Distance: ...']": the reduction said the PONI lacked Distance, Poni1, Poni2."""
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f[FRAMES] = np.zeros((2, 3, 4), np.int32)
        f[PONI] = stored
        f[ANGLE] = [0.0, 0.0]
        f[TRANSLATION] = [0.0, 1.0]
    reader = open_scan(path)
    assert reader.info.poni.splitlines() == POINT.splitlines()
    reader.close()


def test_invalid_pixels_of_bliss_lines_in_different_dtypes_stay_invalid(tmp_path: Path) -> None:
    """An Eiger switches between 16- and 32-bit frames with the count time, so the lines of
    a Bliss scan may differ in dtype. Their frames were concatenated into one block of the
    wider dtype (uint32) before the integration flags the dtype's largest value: the uint16
    line's invalid pixels (65535) became 65535 counts, exit 0. Each line's invalid pixels
    are now flagged (-1) before the cast; exact, integer values."""
    path = tmp_path / "b.h5"
    lines = []
    with h5py.File(path, "w") as f:
        for k, dtype in enumerate([np.uint16, np.uint32]):
            entry = f.create_group(f"{k + 1}.1")
            frames = np.full((2, 5, 7), 10 + k, dtype)
            frames[:, 2, 3] = np.iinfo(dtype).max
            lines.append(np.where(frames == np.iinfo(dtype).max, -1, frames.astype(np.int64)))
            entry["measurement/eiger"] = frames
            entry["instrument/positioners/rot"] = 0.0
            entry["measurement/ty"] = np.arange(2) * 1.0
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        '[bliss]\nframes = "measurement/eiger"\nrotation_angle = "instrument/positioners/rot"\n'
        'translation = "measurement/ty"\n'
    )
    reader = open_scan(path, mapping=mapping)
    block = reader.read(0, 4)
    reader.close()
    np.testing.assert_array_equal(block.data, np.concatenate(lines))


def test_a_multi_frame_file_in_a_frame_table_is_refused(tmp_path: Path) -> None:
    """fabio reads a multi-frame EDF's first frame only: a table naming it on each of its 3
    rows gave frame 0 at all 3 positions (counts 1, 1, 1 for 1, 2, 3), exit 0."""
    image = fabio.edfimage.EdfImage(data=np.full((4, 5), 1, np.int32))
    for value in (2, 3):
        image.append_frame(data=np.full((4, 5), value, np.int32))
    image.write(str(tmp_path / "stack.edf"))
    table = write_frame_table(tmp_path / "t.csv", ["stack.edf"] * 3, np.arange(3.0), np.zeros(3))
    with pytest.raises(ScanFormatError, match=r"stack\.edf: holds 3 frames.*one file per frame"):
        open_scan(table, poni=POINT)


@pytest.mark.parametrize("row", ["f.edf,1,0,5", "f.edf,1"])
def test_a_frame_table_row_with_a_stray_comma_is_refused(tmp_path: Path, row: str) -> None:
    """A row with one value too many (``f.edf,1,0,5``: translation 0.5 typed with a comma)
    was read as translation 0 with the 5 dropped, exit 0; one value too few raised a bare
    TypeError. Both are refused, naming the line."""
    fabio.edfimage.EdfImage(data=np.ones((4, 5), np.int32)).write(str(tmp_path / "f.edf"))
    table = tmp_path / "t.csv"
    table.write_text(f"file,rotation_angle,translation\nf.edf,0,0\n{row}\n")
    with pytest.raises(ScanFormatError, match=r"t\.csv, line 3: 3 columns in the header"):
        open_scan(table, poni=POINT)


def test_a_corrected_float_frame_in_a_series_of_counts_is_not_truncated(tmp_path: Path) -> None:
    """The series buffer takes the first frame's dtype (int32 counts); a later float frame
    of 0.4 was cast into it and read as 0 counts, valid, exit 0. Now it is marked missing
    with the reason; a float frame holding whole counts (NaN gaps masked, -1) still reads
    exactly."""
    fabio.edfimage.EdfImage(data=np.full((4, 5), 7, np.int32)).write(str(tmp_path / "a.edf"))
    fabio.edfimage.EdfImage(data=np.full((4, 5), 0.4, np.float32)).write(str(tmp_path / "b.edf"))
    whole = np.full((4, 5), 3.0, np.float32)
    whole[1, 2] = np.nan
    fabio.edfimage.EdfImage(data=whole).write(str(tmp_path / "c.edf"))
    names = ["a.edf", "b.edf", "c.edf"]
    table = write_frame_table(tmp_path / "t.csv", names, np.arange(3.0), np.zeros(3))
    block = open_scan(table, poni=POINT).read(0, 3)
    assert block.valid.tolist() == [True, False, True]
    assert len(block.problems) == 1 and "b.edf: float frame with fractional" in block.problems[0]
    expected = np.where(np.isnan(whole), -1, whole).astype(np.int32)
    np.testing.assert_array_equal(block.data[2], expected)  # exact: whole counts


def test_bliss_motor_units_under_unit_are_read(tmp_path: Path) -> None:
    """A Bliss rotation in radians under ``@unit`` (not ``@units``) was read as degrees:
    1.8 deg came out 0.0314, exit 0. Tolerance: float64 round-off."""
    _bliss(tmp_path / "b.h5")
    with h5py.File(tmp_path / "b.h5", "a") as f:
        for name in ("1.1", "2.1"):
            rotation = f[f"{name}/instrument/positioners/rot"]
            rotation[()] = np.deg2rad(rotation[()])
            rotation.attrs["unit"] = "rad"
            f[f"{name}/measurement/ty"].attrs["unit"] = "um"
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        '[bliss]\nframes = "measurement/pilatus"\nrotation_angle = "instrument/positioners/rot"\n'
        'translation = "measurement/ty"\n'
    )
    info = open_scan(tmp_path / "b.h5", mapping=mapping).info
    np.testing.assert_allclose(info.rotation_angle_deg, np.repeat([0.0, 1.8], 4), atol=1e-12)
    np.testing.assert_allclose(info.translation_mm, np.tile(np.arange(4) * 0.01, 2), atol=1e-15)


def test_a_frame_table_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Spreadsheet programs save CSV as UTF-8 with a byte order mark: its first column was
    read as '\\ufefffile' and the table refused as lacking a 'file' column."""
    fabio.edfimage.EdfImage(data=np.ones((4, 5), np.int32)).write(str(tmp_path / "f.edf"))
    table = tmp_path / "t.csv"
    table.write_text("file,rotation_angle,translation\nf.edf,0,0\nf.edf,0,1\n", "utf-8-sig")
    assert open_scan(table, poni=POINT).info.n_frames == 2

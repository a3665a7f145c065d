"""Direct chunk reads: every filter decoded here gives h5py's frames bit for bit; layouts and
filters not handled stay with h5py; a corrupt chunk marks only its frame missing, named."""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jellyroll.io import chunks
from jellyroll.io.chunks import ChunkDecodeError, ChunkFrames, _block_offsets
from jellyroll.io.raw_scan import RawScanWriter
from jellyroll.io.scans import FRAMES, _chunk_frame_reader, open_scan

FILTERS = {
    "bitshuffle-lz4": dict(hdf5plugin.Bitshuffle(cname="lz4")),
    "lz4": dict(hdf5plugin.LZ4()),
    "zstd": dict(hdf5plugin.Zstd()),
    "blosc": dict(hdf5plugin.Blosc(cname="lz4", shuffle=hdf5plugin.Blosc.SHUFFLE)),
    "gzip": {"compression": "gzip"},
    "shuffle-gzip": {"compression": "gzip", "shuffle": True},
    "shuffle-lz4": {"shuffle": True, **dict(hdf5plugin.LZ4())},
    "none": {},
}


def _frames(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    """Counts with Pilatus-like negative gaps (signed types), one distinct value per pixel."""
    rng = np.random.default_rng(seed)
    frames = rng.poisson(50.0, size=shape).astype(dtype)
    if np.dtype(dtype).kind != "u":
        frames[:, :, :2] = -1
    return frames


def _dataset(path: Path, frames: np.ndarray, filters: dict) -> h5py.Dataset:
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=frames, chunks=(1, *frames.shape[1:]), **filters)
    return h5py.File(path, "r")["d"]


@pytest.mark.parametrize("name", sorted(FILTERS))
@pytest.mark.parametrize("dtype", ["int32", "uint16", "float32", ">i4"])
def test_each_filter_decodes_as_h5py(tmp_path: Path, name: str, dtype: str) -> None:
    # 37 x 53 pixels: not a multiple of 8 elements, so bitshuffle's copied tail is exercised
    frames = _frames((3, 37, 53), dtype)
    dataset = _dataset(tmp_path / "f.h5", frames, FILTERS[name])
    direct = ChunkFrames.of(dataset)
    assert direct is not None
    for i in range(3):
        out = np.empty(frames.shape[1:], dataset.dtype)
        direct.read_into(i, out)
        assert out.tobytes() == dataset[i].tobytes()


@settings(max_examples=15, deadline=None)
@example(height=4, width=13, itemsize=1)
@given(
    height=st.integers(1, 70),
    width=st.integers(1, 70),
    itemsize=st.sampled_from([1, 2, 4, 8]),
)
def test_bitshuffle_lz4_any_shape(
    tmp_path_factory: pytest.TempPathFactory, height: int, width: int, itemsize: int
) -> None:
    """Any element count (tail of 0-7 elements, partial last block) and item size: the
    direct decoder gives the frame, or refuses a block LZ4 left stored raw (bitshuffle's
    own escape, which imagecodecs cannot tell apart) and the scan reader's h5py fallback
    gives it (4 x 13 bytes is such a frame)."""
    frames = _frames((2, height, width), f"u{itemsize}", seed=height * width)
    path = tmp_path_factory.mktemp("bs") / "f.h5"
    dataset = _dataset(path, frames, FILTERS["bitshuffle-lz4"])
    out = np.empty(frames.shape[1:], dataset.dtype)
    try:
        ChunkFrames.of(dataset).read_into(1, out)  # type: ignore[union-attr]
    except ChunkDecodeError as error:
        assert "left to h5py" in str(error)
    else:
        assert np.array_equal(out, frames[1])
    out[...] = 0
    assert _chunk_frame_reader(dataset, path, None)(1, out) is None  # type: ignore[misc]
    assert np.array_equal(out, frames[1])


@pytest.mark.parametrize("piece_bytes", [1, 3 * 8192, 1 << 18, None])
def test_bitshuffle_lz4_decoded_piece_by_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece_bytes: int | None
) -> None:
    """A frame of many blocks (67 of 8 KB, a partial last one and a 5-element tail) decoded in
    pieces of one block, three blocks, 32 blocks or the default (the whole frame): bit for bit
    h5py's, whatever the piece boundaries (each piece's header is written over blocks already
    decoded)."""
    if piece_bytes is not None:
        monkeypatch.setattr(chunks, "_PIECE_BYTES", piece_bytes)
    frames = _frames((2, 301, 457), "int32", seed=3)
    dataset = _dataset(tmp_path / "f.h5", frames, FILTERS["bitshuffle-lz4"])
    direct = ChunkFrames.of(dataset)
    assert direct is not None
    out = np.empty(frames.shape[1:], np.int32)
    for index in (1, 0, 1):  # the reused chunk and piece buffers hold the previous frame
        direct.read_into(index, out)
        assert np.array_equal(out, frames[index])


@pytest.mark.parametrize(
    "layout",
    [
        {"chunks": (2, 37, 53), "compression": "gzip"},  # two frames per chunk
        {"chunks": (1, 37, 53), "compression": "gzip", "fletcher32": True},  # a checksum
        {"chunks": None},  # contiguous
    ],
)
def test_other_layouts_stay_with_h5py(tmp_path: Path, layout: dict) -> None:
    frames = _frames((4, 37, 53), "int32")
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset(FRAMES, data=frames, **layout)
        f["/entry/sample/rotation_angle"] = np.zeros(4)
        f["/entry/sample/translation"] = np.arange(4.0)
    with h5py.File(tmp_path / "f.h5", "r") as f:
        assert ChunkFrames.of(f[FRAMES]) is None
    reader = open_scan(tmp_path / "f.h5")
    with ThreadPoolExecutor(2) as pool:
        block = reader.start_read(1, 4, pool).result()
    assert np.array_equal(block.data, frames[1:4]) and block.valid.all()


def _pilatus_like_scan(path: Path, n: int = 10) -> np.ndarray:
    frames = _frames((n, 37, 53), "int32", seed=5)
    with RawScanWriter(path, (37, 53), poni="poni_version: 2.1\n") as writer:
        writer.append(frames, np.zeros(n), np.arange(n) * 0.01)
    return frames


def test_threaded_reads_into_reused_buffers_equal_h5py(tmp_path: Path) -> None:
    frames = _pilatus_like_scan(tmp_path / "scan.h5")
    reader = open_scan(tmp_path / "scan.h5")
    buffer = np.full((4, 37, 53), 7, np.int32)
    with ThreadPoolExecutor(3) as pool:
        parts = [reader.start_read(lo, min(lo + 4, 10), pool) for lo in (0, 4)]
        first, second = (part.result() for part in parts)
        last = reader.start_read(8, 10, pool, out=buffer).result()
    assert np.array_equal(np.concatenate([first.data, second.data, last.data]), frames)
    assert last.data.base is buffer or last.data is buffer
    assert first.valid.all() and second.valid.all() and last.valid.all()


def test_a_corrupt_bitshuffle_chunk_marks_only_its_frame_missing(tmp_path: Path) -> None:
    path = tmp_path / "scan.h5"
    frames = _pilatus_like_scan(path)
    with h5py.File(path, "r") as f:
        assert ChunkFrames.of(f[FRAMES]) is not None  # the direct path is the one tested
        info = f[FRAMES].id.get_chunk_info(6)
    with open(path, "r+b") as handle:  # keep the header, spoil the LZ4 blocks of frame 6
        handle.seek(info.byte_offset + 16)
        handle.write(b"\xff" * (info.size - 16))
    reader = open_scan(path)
    with ThreadPoolExecutor(2) as pool:
        block = reader.start_read(0, 10, pool).result()
    assert block.valid.tolist() == [i != 6 for i in range(10)]
    assert np.array_equal(block.data[block.valid], frames[block.valid])
    assert np.all(block.data[6] == 0)
    assert len(block.problems) == 1
    assert "scan.h5" in block.problems[0] and f"{FRAMES}[6] unreadable" in block.problems[0]


def test_a_bitshuffle_block_as_long_as_its_data_is_left_to_h5py() -> None:
    """imagecodecs' lz4h5 framing takes a block whose compressed size equals its size as
    stored raw; bitshuffle never stores raw, so such a chunk must go to h5py."""
    header = struct.pack(">QI", 21, 16)  # 21 bytes framed in blocks of 16: 16 + 5
    plain = header + struct.pack(">I", 3) + b"abc" + struct.pack(">I", 4) + b"defg"
    # blocks start after the 12-byte header, at 12 and 12 + 4 + 3; the last ends at 27
    assert _block_offsets(np.frombuffer(plain, np.uint8), 21, 16).tolist() == [12, 19, 27]
    full = header + struct.pack(">I", 16) + bytes(16) + struct.pack(">I", 4) + b"defg"
    assert _block_offsets(np.frombuffer(full, np.uint8), 21, 16).size == 0
    last = header + struct.pack(">I", 3) + b"abc" + struct.pack(">I", 5) + b"defgh"
    assert _block_offsets(np.frombuffer(last, np.uint8), 21, 16).size == 0
    truncated = plain[:-6]
    assert _block_offsets(np.frombuffer(truncated, np.uint8), 21, 16).size == 0

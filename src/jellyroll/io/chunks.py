"""Frames of an HDF5 dataset read as compressed chunks and decoded outside h5py, in threads.

h5py runs every call under one lock, so frames that h5py decompresses use one core whatever
the number of threads. Here the compressed chunk of a frame is read with
``Dataset.id.read_direct_chunk`` (a short call under that lock) and decoded by imagecodecs,
whose codecs release the GIL, so several frames decode at once on several cores.

Filter pipelines decoded (HDF5 filter ids): bitshuffle with LZ4 (32008, the Pilatus/Eiger
format), LZ4 (32004), Zstandard (32015), Blosc (32001) and deflate/gzip (1), each alone, and
byte shuffle (2) before LZ4, Zstandard or deflate; chunks without filters too. Anything else
(other filters, checksums, chunks that are not one whole frame, non-numeric types) gives no
:class:`ChunkFrames` and stays with h5py's own reading.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

import h5py
import imagecodecs
import numpy as np
from numba import njit

BITSHUFFLE, LZ4, ZSTD, BLOSC = 32008, 32004, 32015, 32001
DEFLATE, SHUFFLE = h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE
_BITSHUFFLE_LZ4 = 2  # bitshuffle's cd_values[4] for LZ4 compression of its blocks
_BITSHUFFLE_HEADER = struct.Struct(">QI")  # uncompressed bytes, block size in bytes
_BITSHUFFLE_HEADER_BYTES = 12

Decode = Callable[[memoryview, np.ndarray | None], np.ndarray]
"""A codec: compressed bytes (overwritten at will when writable: a reader's scratch buffer), and
the output bytes (uint8) to fill or None -> decoded bytes."""


class ChunkDecodeError(RuntimeError):
    """A chunk that cannot be decoded here (h5py then reads the frame itself)."""


_scratch = threading.local()


def _scratch_buffer(name: str, size: int) -> np.ndarray:
    """A per-thread reusable byte buffer of at least ``size`` bytes (its first ``size``)."""
    buffer = getattr(_scratch, name, None)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, np.uint8)
        setattr(_scratch, name, buffer)
    return buffer[:size]


@njit(nogil=True, cache=True)
def _block_offsets(chunk: np.ndarray, framed_bytes: int, block_bytes: int) -> np.ndarray:
    """Where the blocks of a bitshuffle-LZ4 chunk (bytes, header included) start (their size
    field), and where the last one ends: (blocks + 1,) offsets. Empty when the chunk ends early
    or a block has a compressed size equal to its uncompressed size: the HDF5 LZ4 framing that
    ``lz4h5`` decodes takes such a block as stored uncompressed; bitshuffle never stores one,
    so it would be decoded wrong."""
    n_blocks = (framed_bytes + block_bytes - 1) // block_bytes
    offsets = np.empty(n_blocks + 1, np.int64)
    offset = _BITSHUFFLE_HEADER_BYTES
    remaining = framed_bytes
    for block in range(n_blocks):
        offsets[block] = offset
        if offset + 4 > chunk.size:
            return offsets[:0]
        size = np.int64(0)
        for k in range(4):  # big-endian uint32
            size = (size << 8) | np.int64(chunk[offset + k])
        if size == min(block_bytes, remaining):
            return offsets[:0]
        offset += 4 + size
        remaining -= block_bytes
    offsets[n_blocks] = offset
    return offsets if offset <= chunk.size else offsets[:0]


_PIECE_BYTES = 1 << 20
"""Decoded bytes per LZ4-then-unshuffle step: the LZ4 output is unshuffled while it is still in
the core's 1 MB L2 cache. CPU time per Pilatus 2M frame (10 MB) on the 2-core machine, under
load: 4.4-4.6 ms in 1 MB pieces, 4.6-4.7 in 512 KB, 4.8-5.0 in 256 KB, 5.2 whole."""


def _bitshuffle_lz4(itemsize: int) -> Decode:
    """Decoder of bitshuffle's HDF5 chunks with LZ4: a 12-byte header (uncompressed bytes,
    block bytes, big-endian), then per block a 4-byte big-endian size and its LZ4 data, and
    the last ``n % 8`` elements copied as they are. The blocks are framed as the HDF5 LZ4
    filter frames its own, so imagecodecs' ``lz4h5`` decodes a run of them given a header
    before it (written over the bytes of the blocks already decoded); the output is then
    bit-unshuffled a megabyte (:data:`_PIECE_BYTES`) at a time, block boundaries being those
    of the bit shuffle too."""

    def decode(chunk: memoryview, out: np.ndarray | None) -> np.ndarray:
        if len(chunk) < _BITSHUFFLE_HEADER.size:
            raise ChunkDecodeError(f"bitshuffle chunk of {len(chunk)} bytes has no header")
        total, block_bytes = _BITSHUFFLE_HEADER.unpack_from(chunk)
        if total % itemsize or block_bytes % itemsize or not 0 < block_bytes:
            raise ChunkDecodeError(f"bitshuffle header ({total}, {block_bytes}) is not valid")
        tail = (total // itemsize % 8) * itemsize
        if tail > len(chunk) - _BITSHUFFLE_HEADER.size:
            raise ChunkDecodeError("bitshuffle chunk shorter than its uncompressed tail")
        data = np.frombuffer(chunk, np.uint8)
        if chunk.readonly:
            data = _scratch_buffer("framed", data.size)
            data[:] = np.frombuffer(chunk, np.uint8)
        offsets = _block_offsets(data, total - tail, block_bytes)
        if not offsets.size:
            raise ChunkDecodeError("an LZ4 block as long as its data, or cut short: left to h5py")
        unsigned = np.dtype(f"u{itemsize}")
        target = np.empty(total, np.uint8) if out is None else out
        n_blocks = offsets.size - 1
        per_piece = max(1, _PIECE_BYTES // block_bytes)
        shuffled = _scratch_buffer("shuffled", per_piece * block_bytes + tail)
        for first in range(0, max(n_blocks, 1), per_piece):
            last = min(first + per_piece, n_blocks)
            start = first * block_bytes
            size = min(last * block_bytes, total - tail) - start
            extra = tail if last == n_blocks else 0
            piece = shuffled[: size + extra]
            if size:
                head = offsets[first] - _BITSHUFFLE_HEADER.size
                _BITSHUFFLE_HEADER.pack_into(data, head, size, block_bytes)
                decoded = imagecodecs.lz4h5_decode(data[head : offsets[last]], out=piece[:size])
                if len(decoded) != size:
                    raise ChunkDecodeError(f"LZ4 blocks gave {len(decoded)} bytes, not {size}")
            piece[size:] = data[data.size - extra :]
            imagecodecs.bitshuffle_decode(
                piece.view(unsigned), itemsize=itemsize, blocksize=block_bytes // itemsize,
                out=target[start : start + size + extra].view(unsigned),
            )  # fmt: skip
        return target

    return decode


def _unshuffle(itemsize: int) -> Decode:
    """HDF5's byte shuffle undone: byte j of element i was stored at ``j * n + i``."""

    def decode(chunk: memoryview, out: np.ndarray | None) -> np.ndarray:
        data = np.frombuffer(chunk, np.uint8)
        if data.size % itemsize:
            raise ChunkDecodeError(f"{data.size} shuffled bytes for {itemsize}-byte items")
        target = np.empty(data.size, np.uint8) if out is None else out
        if target.size != data.size:
            raise ChunkDecodeError(f"shuffled chunk of {data.size} bytes, not {target.size}")
        target.reshape(-1, itemsize)[:] = data.reshape(itemsize, -1).T
        return target

    return decode


def _codec(function: Callable[..., np.ndarray]) -> Decode:
    def decode(chunk: memoryview, out: np.ndarray | None) -> np.ndarray:
        return np.frombuffer(function(chunk, out=out), np.uint8)

    return decode


def _copy(chunk: memoryview, out: np.ndarray | None) -> np.ndarray:
    data = np.frombuffer(chunk, np.uint8)
    if out is None:
        return data.copy()
    if out.size != data.size:
        raise ChunkDecodeError(f"chunk of {data.size} bytes, not {out.size}")
    out[:] = data
    return out


def _pipeline_decoders(filters: list[tuple[int, tuple[int, ...]]], itemsize: int):
    """Decoders of a filter pipeline in decoding (reverse) order, or None if not supported."""
    codes = [code for code, _ in filters]
    if not filters:
        return [_copy]
    if len(filters) == 1:
        code, values = filters[0]
        if code == BITSHUFFLE and len(values) > 4 and values[4] == _BITSHUFFLE_LZ4:
            return [_bitshuffle_lz4(itemsize)]
        single = {LZ4: imagecodecs.lz4h5_decode, ZSTD: imagecodecs.zstd_decode,
                  BLOSC: imagecodecs.blosc_decode, DEFLATE: imagecodecs.zlib_decode}  # fmt: skip
        return [_codec(single[code])] if code in single else None
    if len(filters) == 2 and codes[0] == SHUFFLE and codes[1] in (LZ4, ZSTD, DEFLATE):
        inner = {LZ4: imagecodecs.lz4h5_decode, ZSTD: imagecodecs.zstd_decode,
                 DEFLATE: imagecodecs.zlib_decode}[codes[1]]  # fmt: skip
        return [_codec(inner), _unshuffle(itemsize)]
    return None


class ChunkFrames:
    """Frame ``i`` of an (N, H, W) dataset stored one frame per chunk, decoded here.

    Build it with :meth:`of` (None when the dataset's layout or filters are not handled);
    :meth:`read_into` may be called from several threads at once.
    """

    def __init__(self, dataset: h5py.Dataset, decoders: list[Decode]) -> None:
        self._id = dataset.id
        self._decoders = decoders
        self.frame_bytes = int(np.prod(dataset.shape[1:])) * dataset.dtype.itemsize

    @classmethod
    def of(cls, dataset: h5py.Dataset) -> ChunkFrames | None:
        """The direct reader of ``dataset``, or None if h5py must read it."""
        dtype = dataset.dtype
        if (
            dataset.ndim != 3
            or dataset.chunks != (1, *dataset.shape[1:])
            or dtype.kind not in "iuf"
            or dataset.external
            or dataset.is_virtual
        ):
            return None
        plist = dataset.id.get_create_plist()
        filters = []
        for i in range(plist.get_nfilters()):
            code, _flags, values, _name = plist.get_filter(i)
            filters.append((int(code), tuple(int(v) for v in values)))
        decoders = _pipeline_decoders(filters, dtype.itemsize)
        return None if decoders is None else cls(dataset, decoders)

    def read_into(self, index: int, out: np.ndarray) -> None:
        """Decode frame ``index`` into ``out`` (H, W) C-contiguous of the dataset's dtype.

        Raises :class:`ChunkDecodeError` (or the codec's error) when the chunk is absent,
        stored with a filter skipped, or does not decode to exactly one frame.
        """
        # read into a reused buffer: a fresh bytes object of the chunk's size costs more (its
        # pages faulted in every frame) than the copy itself
        stored = self._id.get_chunk_info_by_coord((index, 0, 0)).size or 0
        buffer = _scratch_buffer("chunk", max(stored, 1))
        mask, chunk = self._id.read_direct_chunk((index, 0, 0), out=buffer)
        if mask:
            raise ChunkDecodeError(f"chunk stored with filters skipped (mask {mask:#x})")
        target = out.reshape(-1).view(np.uint8)
        data = chunk
        for decode in self._decoders[:-1]:
            data = memoryview(decode(data, None))
        decoded = self._decoders[-1](data, target)
        if decoded.size != self.frame_bytes or not np.shares_memory(decoded, target):
            raise ChunkDecodeError(f"chunk decoded to {decoded.size} bytes, not one frame")

"""Volumes too large to hold: an HDF5 dataset in a hidden temporary file beside the output,
removed when the work is done."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

IN_MEMORY_BYTES = 2 * 2**30
"""Largest volume made, or read whole, in memory: a larger one (8.4 GB for the study's
1024 x 1024 x 2000 reconstruction) goes to a scratch file, or stays in its file and is
read by row slabs (``jellyroll maps``)."""
CHUNK_BYTES = 4 * 2**20
"""About the size of a scratch chunk: whole channel blocks of a few rows."""

VolumeFactory = Callable[[tuple[int, ...]], "np.ndarray | h5py.Dataset"]
"""Makes a zero-filled float32 volume of the given shape, channels last."""


@contextmanager
def scratch_volumes(output: str | os.PathLike[str], channel_block: int) -> Iterator[VolumeFactory]:
    """A factory of zero-filled float32 volumes (..., nc): an ndarray up to
    :data:`IN_MEMORY_BYTES`, else a dataset in a hidden temporary file beside ``output``
    (the file the work writes), chunked by ``channel_block`` channels (a writer of channel
    blocks fills whole chunks) and a few rows (a reader of row slabs reads whole chunks).
    The files are removed on leaving, whatever happens; one a killed process left (up to
    gigabytes) is named as ``output``'s leftovers (``.<stem>.scratch-<...>.part``), which
    the next writer of ``output`` removes when it takes over the dead one's lock."""
    output = Path(output)
    opened: list[tuple[h5py.File, str]] = []

    def make(shape: tuple[int, ...]) -> np.ndarray | h5py.Dataset:
        if math.prod(shape) * 4 <= IN_MEMORY_BYTES:
            return np.zeros(shape, np.float32)
        handle, name = tempfile.mkstemp(
            prefix=f".{output.stem}.scratch-", suffix=".part", dir=output.parent
        )
        os.close(handle)
        file = h5py.File(name, "w")
        opened.append((file, name))
        block = min(shape[-1], channel_block)
        rows = max(1, CHUNK_BYTES // (4 * block * math.prod(shape[1:-1])))
        chunks = (min(shape[0], rows), *shape[1:-1], block)
        return file.create_dataset("volume", shape, np.float32, chunks=chunks, fillvalue=0)

    try:
        yield make
    finally:
        for file, name in opened:
            file.close()
            Path(name).unlink(missing_ok=True)

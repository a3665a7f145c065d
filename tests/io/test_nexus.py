"""NeXus helpers (jellyroll.io.nexus): signals written by row slabs."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.io.nexus import write_nxdata, write_row_slabs


class _Recorder:
    """An array read by row slabs that records the slices asked for."""

    def __init__(self, values: np.ndarray) -> None:
        self.values, self.shape, self.dtype, self.ndim = values, values.shape, values.dtype, 3
        self.asked: list[slice] = []

    def __getitem__(self, rows: slice) -> np.ndarray:
        self.asked.append(rows)
        return self.values[rows]


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 40), st.integers(1, 6), st.integers(1, 7)),
    chunk_rows=st.integers(1, 9),
    slab_bytes=st.integers(1, 3000),
)
def test_row_slabs_fill_the_dataset_by_whole_chunk_rows(
    tmp_path_factory, shape: tuple[int, int, int], chunk_rows: int, slab_bytes: int
) -> None:
    """Every value arrives, each slab starts on a chunk boundary (a slab that cut a
    compressed chunk would rewrite it) and holds at most the larger of slab_bytes and one
    chunk row."""
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    source = _Recorder(values)
    path = tmp_path_factory.mktemp("slabs") / "slabs.h5"
    chunks = (min(chunk_rows, shape[0]), *shape[1:])
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset("d", shape=shape, dtype=np.float32, chunks=chunks)
        write_row_slabs(dataset, source, slab_bytes=slab_bytes)
        np.testing.assert_array_equal(dataset[()], values)
    row_bytes = 4 * shape[1] * shape[2]
    largest = max(chunks[0], slab_bytes // row_bytes // chunks[0] * chunks[0])
    assert [rows.start for rows in source.asked] == list(range(0, shape[0], largest))
    assert all(rows.stop - rows.start <= largest for rows in source.asked)


def test_a_signal_read_by_slabs_is_written_like_an_array(tmp_path: Path) -> None:
    """Same values, compression and chunks as the array written at once."""
    values = np.random.default_rng(0).random((30, 5, 4)).astype(np.float32)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        whole = write_nxdata(f, "whole", values)["data"]
        slabs = write_nxdata(f, "slabs", _Recorder(values))["data"]
        np.testing.assert_array_equal(slabs[()], values)
        assert (slabs.chunks, slabs.compression) == (whole.chunks, whole.compression)

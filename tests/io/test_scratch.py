"""Scratch volumes (jellyroll.io.scratch): in memory when small, on disk when large."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from jellyroll.io import scratch
from jellyroll.io.scratch import scratch_volumes


def test_small_volumes_are_arrays_and_large_ones_hidden_files_removed_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with scratch_volumes(tmp_path / "run.h5", channel_block=8) as make:
        small = make((4, 5, 20))
        assert isinstance(small, np.ndarray) and not small.any()
        monkeypatch.setattr(scratch, "IN_MEMORY_BYTES", 0)
        monkeypatch.setattr(scratch, "CHUNK_BYTES", 4 * 5 * 8 * 2)
        large = make((4, 5, 20))
        assert isinstance(large, h5py.Dataset) and large.dtype == np.float32
        # whole channel blocks of a few rows: a writer of 8 channels fills whole chunks
        assert large.chunks == (2, 5, 8) and not large[()].any()
        large[..., 8:16] = 1.0
        assert large[()].sum() == 4 * 5 * 8
        files = list(tmp_path.iterdir())
        assert len(files) == 1 and files[0].name.startswith(".")
    assert not list(tmp_path.iterdir())


def test_scratch_files_are_removed_when_the_work_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scratch, "IN_MEMORY_BYTES", 0)
    with pytest.raises(RuntimeError), scratch_volumes(tmp_path / "run.h5", channel_block=4) as make:
        make((3, 3, 3))
        raise RuntimeError("interrupted")
    assert not list(tmp_path.iterdir())


def test_a_scratch_file_a_killed_process_left_is_removed_by_the_next_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reconstruction killed in its sweeps left its scratch volume (gigabytes at the
    study's size) as ``.jellyroll-scratch-*.h5``, which nothing ever removed. It is named as
    the run's leftovers, which the next writer of the run removes with the dead one's lock."""
    from jellyroll.io.lock import _remove_leftovers

    monkeypatch.setattr(scratch, "IN_MEMORY_BYTES", 0)
    output = tmp_path / "run.h5"
    with scratch_volumes(output, channel_block=4) as make:
        make((3, 3, 3))
        (left,) = tmp_path.iterdir()
        assert left.name.startswith(".run.scratch-")
        _remove_leftovers(output, ())  # as when the lock of a killed process is taken over
        assert not left.exists()

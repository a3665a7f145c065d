"""A static mask of the opposite convention (non-zero = valid) that leaves some live pixels
open: with the real Pilatus 2M mask inverted, the CeO2 frame integrated to patterns of its
beamstop and edge pixels (86 % of the q bins filled, the (111) line at 1.0e4 instead of
2.8e4, median 168 instead of 405) and the reduction exited 0. It is now refused before any
frame is integrated, naming the mask file."""

from __future__ import annotations

from pathlib import Path

import fabio
import numpy as np
import pytest

from jellyroll.io.scans import write_frame_table
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.run import ScanSpec, run_reduce


def _series(shared_real: Path, tmp_path: Path) -> Path:
    frame = str(shared_real / "ceo2_pilatus2m.cbf")
    translations = [0.0, 0.01, 0.02, 0.03]
    return write_frame_table(tmp_path / "frames.csv", [frame] * 4, np.zeros(4), translations)


def test_an_inverted_mask_is_refused(shared_real: Path, tmp_path: Path) -> None:
    mask = fabio.open(str(shared_real / "pilatus2m_mask.edf")).data != 0
    np.save(tmp_path / "inverted.npy", (~mask).astype(np.uint8))
    with pytest.raises(ValueError, match=r"inverted\.npy: the mask leaves open .* looks inverted"):
        run_reduce(
            _series(shared_real, tmp_path),
            tmp_path / "run.h5",
            ReduceOptions(npt=100, filter="none", spot_filter=False),
            poni_path=shared_real / "ceo2_pilatus2m.poni",
            mask_path=tmp_path / "inverted.npy",
        )
    assert not (tmp_path / "run.h5").exists()


def test_the_real_mask_and_a_mask_without_gaps_pass(shared_real: Path, tmp_path: Path) -> None:
    """The real mask (gaps included), and one that hides only a corner (the gaps, 8.6 % of
    the pixels, left to the per-frame masking) are not taken for inverted ones."""
    from jellyroll.reduce.run import _check_mask_convention

    np.save(tmp_path / "corner.npy", np.pad(np.ones((100, 100), np.uint8), ((0, 1579), (0, 1375))))
    for mask in (shared_real / "pilatus2m_mask.edf", tmp_path / "corner.npy"):
        spec = ScanSpec.of(_series(shared_real, tmp_path), mask_path=mask)
        reader = spec.open()
        try:
            _check_mask_convention(reader, reader.info)
        finally:
            reader.close()

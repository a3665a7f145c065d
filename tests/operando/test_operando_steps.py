"""A step of an operando series whose q axis misses the channels is named by its scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jellyroll.operando.options import OperandoOptions
from jellyroll.operando.run import _reconstruct_step
from jellyroll.recon.options import ReconstructOptions
from jellyroll.results import Sinogram, write_sinogram


def test_a_saxs_scan_among_the_steps_is_named(tmp_path: Path) -> None:
    """`operando WAXS_SCAN SAXS_SCAN` ended in "no q channel within 1.58:2.0,4.40:4.68",
    naming neither the scan nor what to give."""
    n, angles = 8, np.linspace(0.0, 180.0, 6, endpoint=False)
    q = np.linspace(0.01, 0.3, 5)  # a SAXS q axis
    data = np.ones((angles.size, n, q.size), np.float32)
    sinogram = Sinogram(
        data=data,
        errors=np.full_like(data, 0.01),
        rotation_angle_deg=angles,
        translation_mm=3.0 + (np.arange(n) - (n - 1) / 2) * 0.01,
        q_A=q,
        rotation_centre_mm=3.0,
    )
    run = tmp_path / "step_001.h5"
    write_sinogram(run, sinogram, {"stage": "test"})
    options = ReconstructOptions(method="fbp", channels=OperandoOptions().channels)
    scan = tmp_path / "saxs_scan.h5"
    with pytest.raises(ValueError, match=r"saxs_scan\.h5: no q channel within .*WAXS scan"):
        _reconstruct_step(scan, run, options)

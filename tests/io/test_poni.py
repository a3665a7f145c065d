"""PONI text to a pyFAI integrator: the same geometry as pyFAI's own reader; unit slips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyFAI
import pytest

from jellyroll.io.poni import implausible_geometry, integrator_from_poni_text, poni_text

GEOMETRY = "Distance: 0.2\nPoni1: 0.03\nPoni2: 0.04\nRot1: 0.01\nRot2: 0.02\nRot3: 0.03\n"
DETECTORS = {
    "v1": "Detector: Pilatus1M\nPixelSize1: 0.000172\nPixelSize2: 0.000172\n",
    "v2": "poni_version: 2\nDetector: Pilatus1M\nDetector_config: {}\n",
    "v2.1": 'poni_version: 2.1\nDetector: Pilatus1M\nDetector_config: {"orientation": 1}\n',
}


@pytest.mark.parametrize("version", sorted(DETECTORS))
def test_the_geometry_is_pyfais_own(tmp_path: Path, version: str) -> None:
    """PONI v1, v2 and v2.1 (detector orientation 1, not pyFAI's default 3) give the q of
    every pixel that ``pyFAI.load`` of the same file gives, and survive a write and a read.
    Exact: the same parser and the same arithmetic."""
    text = DETECTORS[version] + GEOMETRY + "Wavelength: 1e-10\n"
    (tmp_path / "g.poni").write_text(text)
    reference = pyFAI.load(str(tmp_path / "g.poni"))
    mine = integrator_from_poni_text(text)
    again = integrator_from_poni_text(poni_text(mine))
    shape = reference.detector.max_shape
    expected = reference.array_from_unit(shape, "center", "q_A^-1")
    for integrator in (mine, again):
        assert integrator.detector.orientation == reference.detector.orientation
        np.testing.assert_array_equal(
            integrator.array_from_unit(shape, "center", "q_A^-1"), expected
        )


def test_a_pixel_size_rounded_to_zero_is_refused() -> None:
    """172 um written ``0.000`` (metres to three decimals) lay in the old range 0-2 cm with
    its end included: pyFAI put every row of pixels at one height and the integration ran
    (a 100 x 120 frame 0.1 m away: q axis 0.316-0.488 1/A for 0.005-0.485), exit 0."""
    text = "Detector: Detector\nPixelSize1: 0.000\nPixelSize2: 0.0001\n" + GEOMETRY
    problem = implausible_geometry(integrator_from_poni_text(text))
    assert problem is not None and problem.startswith("PONI PixelSize1 is 0, it must be > 0")
    fine = text.replace("PixelSize1: 0.000", "PixelSize1: 0.0001")
    assert implausible_geometry(integrator_from_poni_text(fine)) is None

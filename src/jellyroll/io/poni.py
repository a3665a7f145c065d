"""PONI text (pyFAI's detector geometry format) to and from a pyFAI integrator."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from pyFAI.io.ponifile import PoniFile


def poni_text(integrator: AzimuthalIntegrator) -> str:
    """PONI file text of a geometry (as stored in ``/entry/instrument/detector/poni``).

    Written by pyFAI's own writer; its "Calibration done on <date>" comment is dropped so the
    same geometry always gives the same text.
    """
    buffer = io.StringIO()
    PoniFile(integrator).write(buffer)
    lines = [ln for ln in buffer.getvalue().splitlines() if not ln.startswith("# Calibration")]
    return "\n".join(lines) + "\n"


def integrator_from_poni_text(text: str) -> AzimuthalIntegrator:
    """pyFAI integrator from PONI file text.

    pyFAI parses PONI only from files, so the text goes through a temporary file and pyFAI's own
    parser (for multi-block files the last value of each key wins, as in pyFAI).
    """
    with tempfile.TemporaryDirectory(prefix="jellyroll-poni-") as tmp:
        path = Path(tmp) / "geometry.poni"
        path.write_text(text)
        poni = PoniFile(str(path))
    integrator = AzimuthalIntegrator()
    integrator.load(poni)
    return integrator

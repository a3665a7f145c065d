"""PONI text (pyFAI's detector geometry format) to and from a pyFAI integrator."""

from __future__ import annotations

import io
import math
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


class PoniError(ValueError):
    """What is wrong with a PONI geometry: the PONI file (or dataset) is what to fix."""


PLAUSIBLE_SI = {
    "Wavelength": (1e-13, 1e-8),  # 0.001-100 A: hard X-rays to very cold neutrons
    "Distance": (0.0, 100.0),  # the longest SAXS flight tubes are ~40 m
    "PixelSize": (0.0, 0.02),  # counting/CCD pixels 10 um-1 mm, neutron tubes ~8 mm
    "Poni": (-10.0, 10.0),  # the beam meets the detector plane near the detector
    "Rot": (-2 * math.pi, 2 * math.pi),  # radians; one full turn at most
}
"""Ranges (SI units, metres and radians as PONI files give them) outside which a PONI value
is a unit mistake (Angstrom, mm, um or degrees written where pyFAI reads metres or radians),
never a real geometry."""

_POSITIVE = {"Distance", "PixelSize"}
"""Kinds whose range excludes its lower end, 0: a pixel size of 0 (172 um rounded to
``0.000`` m) put every row of pixels at one height, and pyFAI integrated it, exit 0."""

_WRONG_UNIT = {
    "Wavelength": "metres (e.g. 0.1746 A is 1.746e-11)",
    "Distance": "metres (e.g. 543.9 mm is 0.5439)",
    "PixelSize": "metres (e.g. 172 um is 0.000172)",
    "Poni": "metres (e.g. 144.7 mm is 0.1447)",
    "Rot": "radians (e.g. 30 deg is 0.5236)",
}


def implausible_geometry(integrator: AzimuthalIntegrator) -> str | None:
    """What is wrong with a geometry whose values lie outside :data:`PLAUSIBLE_SI` (their
    lower end 0 excluded for :data:`_POSITIVE` kinds; None when they all lie inside): pyFAI
    reads metres and radians and integrates a wavelength in Angstrom or a distance in mm
    without complaint, onto a q axis off by 10^10 or 10^3."""
    detector = integrator.detector
    values = [
        ("Wavelength", "Wavelength", integrator.wavelength),
        ("Distance", "Distance", integrator.dist),
        ("PixelSize1", "PixelSize", detector.pixel1),
        ("PixelSize2", "PixelSize", detector.pixel2),
        ("Poni1", "Poni", integrator.poni1),
        ("Poni2", "Poni", integrator.poni2),
        ("Rot1", "Rot", integrator.rot1),
        ("Rot2", "Rot", integrator.rot2),
        ("Rot3", "Rot", integrator.rot3),
    ]
    for key, kind, value in values:
        low, high = PLAUSIBLE_SI[kind]
        if value is None:
            continue
        value = float(value)
        if kind in _POSITIVE and value == low:
            return (
                f"PONI {key} is {value:g}, it must be > {low:g}: PONI files give it in "
                f"{_WRONG_UNIT[kind]}; write it in those units, with all its digits"
            )
        if not low <= value <= high:
            return (
                f"PONI {key} is {value:g}, outside {low:g}..{high:g}: PONI files give "
                f"it in {_WRONG_UNIT[kind]}; write it in those units"
            )
    return None

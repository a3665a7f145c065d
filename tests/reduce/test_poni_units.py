"""PONI values written in the wrong unit: pyFAI reads metres and radians and integrates a
wavelength in Angstrom or a distance in mm without complaint. On the real CeO2 frame a
wavelength of 0.1746 (A) gave a q axis of 4.7e-11-1.2e-9 A^-1 and a distance of 543.9 (mm)
one of 0.015-0.037 A^-1 (a plausible SAXS range), both with exit 0; each is now refused with
the key, its value and the unit to write it in, naming the PONI file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from jellyroll.io.poni import poni_text
from jellyroll.io.scans import write_frame_table
from jellyroll.phantom.detector import make_integrator
from jellyroll.reduce import IntegrationSetup, Integrator
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.run import run_reduce

SHAPE = (40, 48)


@pytest.fixture(scope="module")
def poni() -> str:
    ai = make_integrator(
        SHAPE, distance_m=0.15, wavelength_A=0.161, beam_centre_px=(-5.0, 20.0), rot=(0.02, 0, 0)
    )
    return poni_text(ai)


def _with(text: str, key: str, value: str) -> str:
    """``text`` with ``key`` set to ``value`` (pixel sizes live in Detector_config)."""
    if key.startswith("PixelSize"):
        name = "pixel" + key[-1]
        return re.sub(rf'"{name}": [^,]+,', f'"{name}": {value},', text)
    return re.sub(rf"^{key}:.*$", f"{key}: {value}", text, flags=re.M)


@pytest.mark.parametrize(
    ("key", "value", "unit"),
    [
        ("Wavelength", "0.161", "metres"),  # Angstrom
        ("Wavelength", "0.0161", "metres"),  # nm
        ("Distance", "150", "metres"),  # mm
        ("PixelSize1", "172", "metres"),  # um
        ("Poni1", "12.5", "metres"),  # mm
        ("Rot1", "30", "radians"),  # degrees
    ],
)
def test_a_value_in_the_wrong_unit_is_refused(poni: str, key: str, value: str, unit: str) -> None:
    text = _with(poni, key, value)
    assert text != poni  # the edit took
    with pytest.raises(ValueError, match=rf"PONI {key} is {value}, .*give it in {unit}"):
        Integrator(IntegrationSetup(poni=text, shape=SHAPE, npt=50))


def test_plausible_geometries_still_integrate(poni: str) -> None:
    """A 38 m SAXS distance (the full-size twin's), a 0.03 A wavelength and a 60 deg
    detector rotation are real geometries, not unit mistakes."""
    for key, value in (("Distance", "38.0"), ("Wavelength", "3e-12"), ("Rot3", "1.047")):
        integ = Integrator(IntegrationSetup(poni=_with(poni, key, value), shape=SHAPE, npt=50))
        assert np.isfinite(integ.radial).all()


def test_the_poni_file_is_named(shared_real: Path, tmp_path: Path) -> None:
    """With --poni, the error named only the scan table; the file to fix is the PONI."""
    frame = shared_real / "ceo2_pilatus2m.cbf"
    table = write_frame_table(tmp_path / "frames.csv", [str(frame)] * 2, np.zeros(2), [0.0, 1.0])
    text = (shared_real / "ceo2_pilatus2m.poni").read_text()
    bad = tmp_path / "calibration.poni"
    bad.write_text(text.replace("Wavelength: 1.74625623831e-11", "Wavelength: 0.174625623831"))
    with pytest.raises(ValueError, match=r"calibration\.poni \(the geometry of .*frames\.csv\)"):
        run_reduce(table, tmp_path / "run.h5", ReduceOptions(npt=100), poni_path=bad)
    assert not (tmp_path / "run.h5").exists()


def test_q_in_inverse_nm_is_written_in_inverse_angstrom(shared_real: Path, tmp_path: Path):
    """SPEC section 6: /entry/sinogram/q is in A^-1, for tools that read the file without
    jellyroll. With --unit q_nm^-1 the axis was written in 1/nm (10 times the A^-1 values);
    it is now converted, and the patterns equal those integrated in A^-1 (the same bins)."""
    import h5py

    frame = str(shared_real / "ceo2_pilatus2m.cbf")
    table = write_frame_table(tmp_path / "frames.csv", [frame] * 2, np.zeros(2), [0.0, 1.0])
    runs = {}
    for unit in ("q_A^-1", "q_nm^-1"):
        out = tmp_path / f"{unit.replace('^', '').replace('/', '')}.h5"
        options = ReduceOptions(npt=200, unit=unit, spot_filter=False, subtract_air=False)
        run_reduce(table, out, options, poni_path=shared_real / "ceo2_pilatus2m.poni")
        with h5py.File(out) as f:
            group = f["/entry/sinogram"]
            runs[unit] = (group["q"][()], group["q"].attrs["units"], group["data"][()])
    (q_a, units_a, data_a), (q_nm, units_nm, data_nm) = runs.values()
    assert units_a == units_nm == "1/angstrom"
    np.testing.assert_allclose(q_nm, q_a, rtol=1e-9)  # bin edges scaled by exactly 10
    np.testing.assert_allclose(data_nm, data_a, rtol=1e-5)  # float32 sums of the same pixels

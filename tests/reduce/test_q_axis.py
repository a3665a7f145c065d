"""A q axis written without ``@units`` is read in 1/angstrom (SPEC section 6); pyFAI's
default unit is 1/nm. Where reading it in 1/nm would give maps too, the reduction checks
the reading on the anode's graphite (002) line, or warns (jellyroll.reduce.q_axis)."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from jellyroll.io.scans import ScanFormatError, open_scan
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.q_axis import check_unitless_q
from jellyroll.reduce.run import run_reduce

ANGLE = "/entry/sample/rotation_angle"

LONG_CAMERA_A = np.linspace(0.0022, 0.2, 500)
"""A long SAXS camera's q (1/A): written in 1/nm, 0.022-2.0, it covers the SAXS window
0.025-0.1 read in 1/A too."""


def _integrated_scan(path: Path, q: np.ndarray, patterns: np.ndarray, units: str | None) -> Path:
    """A pre-integrated scan of ``patterns`` (N, n_q) on ``q`` with ``@units`` (None: none)."""
    n = patterns.shape[0]
    with h5py.File(path, "w") as f:
        f["/entry/integrated/intensity"] = patterns.astype(np.float32)
        f["/entry/integrated/q"] = q
        if units is not None:
            f["/entry/integrated/q"].attrs["units"] = units
        f[ANGLE] = np.repeat([0.0, 90.0], n // 2)
        f["/entry/sample/translation"] = np.tile(np.arange(n // 2) * 0.01, 2)
    return path


def _saxs_patterns(q_A: np.ndarray, n: int = 20, line: float = 0.0) -> np.ndarray:
    """Poisson-noisy SAXS profiles on ``q_A`` (1/A): a Guinier shoulder (radius of gyration
    60 A) on a q^-3.6 law, plus a graphite (002) line at 1.87 1/A of ``line`` times the
    profile there (as a detector reaching the wide angles sees the anode)."""
    rng = np.random.default_rng(3)
    profile = 100 * np.exp(-(q_A**2) * 60.0**2 / 3) + 1e-3 * q_A**-3.6
    profile = profile + line * np.interp(1.87, q_A, profile) * np.exp(
        -0.5 * ((q_A - 1.87) / 0.01) ** 2
    )
    return rng.poisson(np.outer(rng.uniform(50, 100, n), profile / profile.min())) / 1.0


def _mean_of(patterns: np.ndarray):
    return lambda channels: patterns[:, channels].mean(axis=0)


def test_integrated_q_in_nm_without_units_is_refused_by_the_graphite_line(tmp_path) -> None:
    """SAXS patterns integrated by pyFAI in its default unit (q_nm^-1) and written without
    ``@units`` were read in 1/A (SPEC section 6), 10 times too large: the long camera's
    0.0022-0.2 1/A as 0.022-2.0, which covers the SAXS window too, and the twin's d* came
    out 1.16 nm for 11.6 nm, exit 0. Read in 1/A that axis spans the anode's graphite
    (002) line, which its patterns lack: the reduction refuses, naming the file and the
    dataset and saying to add @units, and writes nothing. With @units = "q_nm^-1" it is
    read (float64 round-off of one conversion), and an axis truly in 1/A over the same
    values, whose patterns show the line (at 3 times the profile, weaker than any
    anode's), passes without @units."""
    nm = _integrated_scan(
        tmp_path / "nm.h5", 10 * LONG_CAMERA_A, _saxs_patterns(LONG_CAMERA_A), None
    )
    with pytest.raises(ValueError, match=r'nm\.h5:/entry/integrated/q has no @units.*"1/nm"'):
        run_reduce(nm, tmp_path / "run.h5", ReduceOptions())
    assert not (tmp_path / "run.h5").exists()
    with h5py.File(nm, "a") as f:
        f["/entry/integrated/q"].attrs["units"] = "q_nm^-1"  # as pyFAI writes it
    np.testing.assert_allclose(open_scan(nm).info.q_A, LONG_CAMERA_A, rtol=1e-15)
    q = 10 * LONG_CAMERA_A
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_unitless_q("wide.h5", q, _mean_of(_saxs_patterns(q, line=3.0)))


def test_a_sinogram_in_nm_without_units_is_refused_on_import(tmp_path) -> None:
    """The same axis in a sinogram written by another program (SPEC section 6 layout, no
    ``@units`` on /entry/sinogram/q): imported as 1/A. Now refused the same way."""
    q = 10 * LONG_CAMERA_A
    patterns = _saxs_patterns(LONG_CAMERA_A, n=6 * 5).reshape(6, 5, -1)
    path = tmp_path / "sino.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("/entry/sinogram")
        group["data"] = patterns.astype(np.float32)
        group["errors"] = np.sqrt(patterns).astype(np.float32)
        group["rotation_angle"] = np.linspace(0.0, 150.0, 6)
        group["translation"] = np.linspace(-0.02, 0.02, 5)
        group["q"] = q
    with pytest.raises(ValueError, match=r'sino\.h5:/entry/sinogram/q has no @units.*"1/nm"'):
        run_reduce(path, tmp_path / "run.h5", ReduceOptions())


def test_integrated_q_without_units_that_1_nm_would_also_map_is_warned_of(tmp_path) -> None:
    """An axis without ``@units`` that gives maps read in 1/A and in 1/nm alike, and does
    not reach the graphite line (0.024-1.2): nothing in the patterns tells the two apart.
    Before, it was read in 1/A without a word; now a warning names the file and says to
    add @units. An axis that only 1/A can map (the twin's WAXS 0.8-5.2) is read silently."""
    q = np.linspace(0.024, 1.2, 400)
    with pytest.warns(UserWarning, match=r'either\.h5 has no @units.*"1/nm"'):
        check_unitless_q("either.h5", q, _mean_of(_saxs_patterns(q)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_unitless_q("waxs.h5", np.linspace(0.8, 5.2, 300), _mean_of(np.ones((4, 300))))


@pytest.mark.parametrize(
    ("units", "factor"),
    [("q_nm^-1", 0.1), ("nm^-1", 0.1), ("1/nm", 0.1), ("q_A^-1", 1.0), ("1/A", 1.0)],
)
def test_pyfai_spellings_of_q_are_read(tmp_path: Path, units: str, factor: float) -> None:
    """The units pyFAI writes (its unit names, its NXcanSAS ``1/nm``): float64 round-off of
    one conversion."""
    q = np.linspace(0.1, 3.0, 50)
    path = _integrated_scan(tmp_path / "scan.h5", q, np.ones((4, 50)), units)
    np.testing.assert_allclose(open_scan(path).info.q_A, q * factor, rtol=1e-15)


@pytest.mark.parametrize("units", ["2th_deg", "2th_rad", "r_mm", "1/m"])
def test_a_radial_unit_read_as_no_q_is_refused(tmp_path: Path, units: str) -> None:
    """pyFAI's other radial units are no q (and 1/m is not one jellyroll reads): refused,
    naming the dataset and the units to write."""
    path = _integrated_scan(tmp_path / "scan.h5", np.linspace(1, 8, 50), np.ones((4, 50)), units)
    with pytest.raises(ScanFormatError, match=r"integrated/q is in .*not a unit of q.*1/nm"):
        open_scan(path)

"""Sinograms written by another program (SPEC section 6 layout, plain h5py) through
``jellyroll reduce`` (import) and ``jellyroll reconstruct``: what is not the contract is
refused naming the dataset, never reconstructed into a wrong number."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from test_recon_cli import CENTRE_MM, _run_file
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.recon import ParallelGeometry, forward
from jellyroll.recon.qwindows import NoChannelError, select_channels
from jellyroll.results import read_reconstruction, read_sinogram

UNITS = {"rotation_angle": "deg", "translation": "mm", "q": "1/angstrom", "rotation_centre": "mm"}


def _canonical(tmp_path: Path, noise: float = 0.0) -> dict:
    """The datasets of a 40 x 40 pencil-beam scan (36 angles, 30 q channels, a disk
    attenuating up to 27 %) with white ``noise``, as another program would write them, and
    the truth."""
    truth = _run_file(tmp_path / "source.h5", noise=noise)
    sinogram = read_sinogram(tmp_path / "source.h5")
    datasets = {
        "data": sinogram.data,
        "errors": np.full_like(sinogram.data, 0.01),
        "rotation_angle": sinogram.rotation_angle_deg,
        "translation": sinogram.translation_mm,
        "q": sinogram.q_A,
        "attenuation": sinogram.attenuation,
        "rotation_centre": CENTRE_MM,
    }
    return {"datasets": datasets, **truth}


def _foreign(path: Path, datasets: dict, units: dict = UNITS) -> Path:
    with h5py.File(path, "w") as f:
        group = f.create_group("entry/sinogram")
        for name, value in datasets.items():
            group[name] = value
            if name in units:
                group[name].attrs["units"] = units[name]
    return path


def _chain(tmp_path: Path, datasets: dict, *options: str, units: dict = UNITS):
    """reduce (import) then reconstruct; the first result that failed, or the last."""
    run = tmp_path / "run.h5"
    source = _foreign(tmp_path / "other.h5", datasets, units)
    result = CliRunner().invoke(app, ["reduce", str(source), "-o", str(run)])
    if result.exit_code == 0:
        result = CliRunner().invoke(app, ["reconstruct", str(run), "--iterations", "5", *options])
    return result, run


def test_translations_in_micrometres_without_units_are_refused(tmp_path: Path) -> None:
    """40 steps of 10 um written in um, no @units: read as mm they made 10 mm pixels and
    channels 1000 times too small (relative RMSE 0.999 against the truth), exit 0."""
    datasets = _canonical(tmp_path)["datasets"]
    datasets["translation"] = datasets["translation"] * 1000.0
    del datasets["rotation_centre"]
    units = {k: v for k, v in UNITS.items() if k != "translation"}
    result, _ = _chain(tmp_path, datasets, units=units)
    assert result.exit_code == 1
    assert "other.h5: /entry/sinogram/translation spans 390 mm" in result.stderr
    assert "divide them" in result.stderr


def test_translations_in_millimetres_labelled_micrometres_are_refused(tmp_path: Path) -> None:
    """The opposite slip: mm values with @units "um" (the tiny twin's raw scan so: its map
    on 0.02 um pixels, the attenuation 1000 times too large, exit 0 until the diagnosis).
    Refused: no pencil-beam scan of a cell steps by less than 0.1 um."""
    datasets = _canonical(tmp_path)["datasets"]
    result, _ = _chain(tmp_path, datasets, units={**UNITS, "translation": "um"})
    assert result.exit_code == 1
    assert "translation steps by 0.01 um (less than 0.1 um)" in result.stderr
    assert "@units must say mm" in result.stderr


def test_a_rotation_centre_of_one_element_is_read_and_of_two_refused(tmp_path: Path) -> None:
    """h5py writes a centre given as a list as a (1,) dataset: it crashed the import with a
    bare TypeError traceback."""
    case = _canonical(tmp_path)
    datasets = {**case["datasets"], "rotation_centre": [CENTRE_MM]}
    result, run = _chain(tmp_path, datasets)
    assert result.exit_code == 0, result.output
    assert read_reconstruction(run).attrs["rotation_centre_mm"] == pytest.approx(CENTRE_MM)
    datasets["rotation_centre"] = [CENTRE_MM, CENTRE_MM]
    result, _ = _chain(tmp_path, datasets)
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert "/entry/sinogram/rotation_centre holds 2 values" in result.stderr


def test_an_attenuation_without_values_is_left_out_not_used(tmp_path: Path) -> None:
    """An all-NaN attenuation (no diode) reconstructed into mu = 0 everywhere, an
    attenuation map of zeros and "self_absorption_corrected" true, exit 0."""
    datasets = _canonical(tmp_path)["datasets"]
    datasets["attenuation"] = np.full_like(datasets["attenuation"], np.nan)
    result, run = _chain(tmp_path, datasets)
    assert result.exit_code == 0, result.output
    assert "holds a value in 0% of the cells measured only" in " ".join(result.output.split())
    # the diode is there: it is not called missing beside the note that leaves it out
    assert "no diode" not in " ".join(result.output.split())
    recon = read_reconstruction(run)
    assert recon.attenuation is None and not recon.attrs["self_absorption_corrected"]
    result, _ = _chain(tmp_path, datasets, "--self-absorption")
    assert result.exit_code == 1 and "no usable /entry/sinogram/attenuation" in result.stderr


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        ("transmission", "reads like the transmission"),
        ("ln", "reads like the transmission"),
        ("gain", "its line ends (air) read 0.5, not 0"),
    ],
)
def test_an_attenuation_that_is_not_minus_ln_t_relative_to_air_is_refused(
    tmp_path: Path, kind: str, what: str
) -> None:
    """diode / monitor (air 1), ln(T), or -ln(diode / monitor) offset by a diode gain: exit
    0 with mu 5.5, 1.0 and 3.0 off and the channels 0.87, 0.22 and 0.66 off (relative RMSE
    to the truth, 0.065 with -ln T; tiny phantom, /tmp/audit_sino)."""
    case = _canonical(tmp_path)
    datasets = case["datasets"]
    attenuation = datasets["attenuation"]
    datasets["attenuation"] = {
        "transmission": np.exp(-attenuation),
        "ln": -attenuation,
        "gain": attenuation + 0.5,
    }[kind]
    result, _ = _chain(tmp_path, datasets)
    assert result.exit_code == 1
    assert "run.h5: /entry/sinogram/attenuation is not -ln(diode / monitor)" in result.stderr
    assert what in result.stderr
    # the same file with -ln T relative to air reconstructs: the check lets it through
    datasets["attenuation"] = attenuation
    result, run = _chain(tmp_path, datasets)
    assert result.exit_code == 0, result.output
    mu = read_reconstruction(run).attenuation
    # SART 5 on 36 angles: mu within 5 % of the disk's 1e-3 / um (measured 2.6 %)
    assert np.sqrt(np.mean((mu - case["mu"]) ** 2)) < 0.05 * 1e-3


def test_infinite_errors_are_unknown_errors(tmp_path: Path) -> None:
    """Errors written as inf ("unknown") stopped the default reconstruction of a noisy
    sinogram (the noise rule) with "every error is 0 or missing", naming no file; now they
    read as NaN errors do."""
    datasets = _canonical(tmp_path, noise=0.05)["datasets"]
    datasets["errors"] = np.full_like(datasets["data"], np.nan)
    result, run = _chain(tmp_path, datasets)
    assert result.exit_code == 0, result.output
    expected = read_reconstruction(run).data
    datasets["errors"] = np.full_like(datasets["data"], np.inf)
    result, run = _chain(tmp_path, datasets)
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_reconstruction(run).data, expected)


def test_a_recorded_centre_in_another_convention_is_refused(tmp_path: Path) -> None:
    """A centre written in another convention that still falls inside the scan (here the
    translation of index 2) reconstructed a map 3 times off the truth (relative RMSE), exit
    0; it lies 17 steps from the axis the projections' centres of mass give, and is refused
    naming both. Given as an option, the same centre is the user's choice and is used, with
    a warning and a note that name the data's own (it was used without a word)."""
    datasets = _canonical(tmp_path)["datasets"]
    datasets["rotation_centre"] = float(datasets["translation"][2])
    result, run = _chain(tmp_path, datasets)
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "/entry/sinogram/rotation_centre is" in message and "--rotation-centre" in message
    # the recorded centre off by one step (within the data's own estimate) is used as it is
    datasets["rotation_centre"] = CENTRE_MM + float(np.diff(datasets["translation"][:2])[0])
    result, run = _chain(tmp_path, datasets)
    assert result.exit_code == 0, result.output
    centre = float(datasets["translation"][2])
    result = CliRunner().invoke(
        app, ["reconstruct", str(run), "--iterations", "5", "--rotation-centre", str(centre)]
    )
    assert result.exit_code == 0, result.output
    assert read_reconstruction(run).attrs["rotation_centre_mm"] == pytest.approx(centre)
    assert "as given (--rotation-centre), but the rotation axis" in " ".join(result.output.split())


def test_channels_outside_the_q_axis_are_named_with_the_run(tmp_path: Path) -> None:
    """`reconstruct --channels 7:8` said only "no q channel within 7:8", naming neither the
    run nor the q the sinogram holds."""
    datasets = _canonical(tmp_path)["datasets"]
    result, _ = _chain(tmp_path, datasets, "--channels", "7:8")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "run.h5: /entry/sinogram/q: no q channel within 7:8 (the q axis spans" in message


def test_a_channel_range_beside_the_q_axis_is_refused_beside_one_that_holds_channels() -> None:
    """`--channels 0.5:0.8,7:8` on a 0.5-2 A^-1 axis reconstructed the channels of 0.5-0.8
    alone, exit 0: the range 7:8 was dropped because the other held channels. Each range
    must hold a channel; the refusal names the empty one and the axis span."""
    q = np.linspace(0.5, 2.0, 16)
    with pytest.raises(NoChannelError, match=r"within 7:8 \(of 0\.5:0\.8,7:8\).*spans 0\.5-2"):
        select_channels(q, "0.5:0.8,7:8")
    assert list(select_channels(q, "0.5:0.8,1.9:2")) == [0, 1, 2, 3, 14, 15]


@pytest.mark.parametrize("swapped", [False, True])
def test_projections_whose_totals_vary_with_the_angle_are_noted(
    tmp_path: Path, swapped: bool
) -> None:
    """Data written (translations, angles, q) with as many translations as angles passed
    every shape check and, with the centre given, reconstructed with exit 0 (relative error
    1.27). A sample inside the field gives every projection the same total: 0.3-1.2 % spread
    on the demo twins, 35-60 % with the axes swapped; over 10 % the reconstruction says so."""
    datasets = _canonical(tmp_path)["datasets"]
    keep = slice(2, 38)  # 36 translations for 36 angles, the disk inside
    datasets["translation"] = datasets["translation"][keep]
    for name in ("data", "errors"):
        cube = datasets[name][:, keep]
        datasets[name] = np.ascontiguousarray(cube.transpose(1, 0, 2)) if swapped else cube
    del datasets["attenuation"], datasets["rotation_centre"]
    centre = str(CENTRE_MM)
    result, run = _chain(tmp_path, datasets, "--rotation-centre", centre)
    assert result.exit_code == 0, result.output
    said = "the projections' totals vary" in " ".join(result.output.split())
    assert said == swapped, result.output
    spread = read_reconstruction(run).attrs["projection_totals_spread"]
    assert (spread > 0.3) if swapped else (spread < 0.02)  # for the maps' note and the report


HALF_CHANNELS = np.array([1.0, 2.0, 0.5], np.float32)
"""The disk's level in each q channel of :func:`_half_acquisition` (x 1e-3 per um)."""


def _half_acquisition(angles: np.ndarray, channels: np.ndarray = HALF_CHANNELS) -> dict:
    """Datasets of a sinogram file: a disk of radius 30 pixels (10 um; 1e-3 per um times each
    of ``channels``, q 1.0, 1.5, 2.0 1/A) scanned at ``angles`` (deg) along 40 translations
    whose axis lies 6 from one end (3 mm on the stage), the disk reaching 34 pixels on the
    long side; no centre recorded."""
    n, step_um = 72, 10.0
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    disk = xx**2 + yy**2 < 30**2
    t_um = (np.arange(40) - 6) * step_um + step_um / 2
    geometry = ParallelGeometry(angles, t_um[0], step_um, t_um.size, (n, n), step_um)
    projections = forward(geometry, (disk * 1e-3)[..., None].astype(np.float32))
    data = projections * channels
    return {
        "data": data,
        "errors": np.full_like(data, 0.01),
        "rotation_angle": angles,
        "translation": 3.0 + t_um / 1000.0,
        "q": np.array([1.0, 1.5, 2.0])[: channels.size],
    }


def _assert_the_long_sides_disk(run: Path) -> None:
    """The reconstruction of :func:`_half_acquisition` in ``run``: its axis at 3 mm (a tenth
    of a step), the map the long side's disk (68 pixels), the disk's level in each channel
    inside it (mean within 2 %: SART after 10 sweeps, FBP's pixelation)."""
    found = read_reconstruction(run)
    assert found.attrs["rotation_centre_mm"] == pytest.approx(3.0, abs=0.001)
    assert found.data.shape == (68, 68, 3)
    yy, xx = np.mgrid[:68, :68] - 33.5
    inside = xx**2 + yy**2 < 27**2
    np.testing.assert_allclose(found.data[inside].mean(axis=0) / 1e-3, HALF_CHANNELS, rtol=0.02)


@pytest.mark.parametrize("method", ["fbp", "sart"])
def test_a_half_acquisition_without_a_centre_is_reconstructed(tmp_path: Path, method) -> None:
    """A full turn whose axis lies 6 translations from one end of 40 (half acquisition;
    the disk of radius 30 pixels reaches 34 pixels on the long side), no centre recorded:
    the centre of mass put the axis 9.6 steps off, the map was the scanned width about it
    (the disk cut off) and FBP summed the rays modulo 180 deg; the maps were noise, exit 0.
    Now the axis comes from the conjugate projections, the map covers the long side's disk
    (68 pixels), and both methods give the disk's level inside it: mean within 2 % (SART
    after 10 sweeps, FBP's pixelation), no note that the sample leaves the field."""
    datasets = _half_acquisition(np.arange(0.0, 360.0, 3.0))
    result, run = _chain(tmp_path, datasets, "--method", method, "--iterations", "10")
    assert result.exit_code == 0, result.output
    assert "the projections' totals vary" not in " ".join(result.output.split())
    _assert_the_long_sides_disk(run)


@pytest.mark.parametrize("method", ["fbp", "sart"])
def test_a_half_acquisition_with_a_gap_is_reconstructed_or_refused(tmp_path: Path, method) -> None:
    """The half acquisition above with its last 33 deg lost (0-327 deg, no full turn): the
    centre of mass put the axis 9.6 steps off, the map was the scanned width about it (40
    pixels) and within 14 pixels of its middle SART read 1.41 times the level, FBP 1.52,
    exit 0. Now the axis comes from the
    conjugates, SART maps the long side's disk (mean within 2 %, as above), and FBP, whose
    lines beyond the short side lack the gap's directions, is refused naming the run file
    and SART."""
    datasets = _half_acquisition(np.arange(0.0, 330.0, 3.0))
    result, run = _chain(tmp_path, datasets, "--method", method, "--iterations", "10")
    if method == "fbp":
        assert result.exit_code != 0
        said = " ".join(result.output.split())
        assert "run.h5" in said and "gap of 33 deg" in said and "sart" in said, said
        return
    assert result.exit_code == 0, result.output
    _assert_the_long_sides_disk(run)


def test_a_half_turn_whose_sample_reaches_past_one_end_of_the_lines_is_said(
    tmp_path: Path,
) -> None:
    """The disk above scanned over a half turn (0-177 deg) with the axis 6 rays from one end
    of 40: the sample leaves the field at every angle (the first line end in it). Symmetric,
    it gives every projection the same total, so only the centre given was said to lie 9.6
    steps from the projections' centre of mass (which the cut moves), and the maps read
    1.3-2.5 times the level (FBP) or 0.7-1.8 (SART), exit 0. The reconstruction now says
    that the first end of the lines lies in the sample (a note and a warning)."""
    datasets = _half_acquisition(np.arange(0.0, 180.0, 3.0), np.ones(1, np.float32))
    result, _ = _chain(tmp_path, datasets, "--rotation-centre", "3.0")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "the first end of the lines lies in the sample" in said, said

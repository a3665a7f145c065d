"""`jellyroll run` on scans as real beamlines deliver them: no diode and no monitor (no
attenuation map), and sinograms written by another program with only the SPEC section 6
datasets (no rotation centre)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.conventions import px_to_um
from jellyroll.phantom.write import write_phantom
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.run import SINOGRAM, run_reduce
from jellyroll.results import RunFileError, read_diagnosis, read_sinogram
from jellyroll.unroll import find_cell

CHANNELS = "1.55:2.05,3.0:3.2,4.38:4.7,0.008:0.3"
"""q (1/A) of the Table 1 windows and their background, the housing ring, the SAXS range."""
SPEC_SINOGRAM = ("data", "errors", "rotation_angle", "translation", "q")
"""The datasets of /entry/sinogram that SPEC section 6 requires (attenuation is optional)."""


def _strip_counters(scan: Path, copy: Path) -> Path:
    """A copy of ``scan`` without its diode and monitor readings."""
    shutil.copy(scan, copy)
    with h5py.File(copy, "a") as f:
        del f["/entry/instrument/diode"], f["/entry/monitor"]
    return copy


def _spec_only_sinogram(scan: Path, folder: Path) -> Path:
    """The sinogram of ``scan`` as another program would write it: the SPEC section 6
    datasets with their units and nothing else (no rotation centre, no attenuation)."""
    run = run_reduce(scan, folder / f"{scan.stem}_reduced.h5").output
    path = folder / f"{scan.stem}_sinogram.h5"
    with h5py.File(run, "r") as source, h5py.File(path, "w") as target:
        for dataset in SPEC_SINOGRAM:
            item = source[f"/entry/sinogram/{dataset}"]
            target[f"/entry/sinogram/{dataset}"] = item[()]
            if "units" in item.attrs:
                target[f"/entry/sinogram/{dataset}"].attrs["units"] = item.attrs["units"]
    return path


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict:
    """One cell of a tiny aged twin as a beamline without diode and monitor gives it: the
    WAXS scan stripped of both, the SAXS scan as a SPEC-only sinogram written by another
    program (no attenuation, no rotation centre); run once through `jellyroll run`."""
    out = tmp_path_factory.mktemp("real")
    twin = out / "twin"
    write_phantom(twin, preset="aged_charged", size="tiny", seed=2, nxct=False, raw=False)
    waxs = _strip_counters(twin / "waxs_scan.h5", out / "waxs.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reduction's own warnings: not what is tested
        saxs = _spec_only_sinogram(_strip_counters(twin / "saxs_scan.h5", out / "saxs.h5"), out)
    config = out / "real.toml"
    config.write_text(
        # fbp on the channels the maps use, study maps (no denoising): fast, and the same
        # code paths as the defaults where it matters here
        'output = "run"\n[maps]\nanalysis = "study"\n[reconstruct]\nmethod = "fbp"\n'
        f'channels = "{CHANNELS}"\n'
        f'[[cells]]\nname = "bare"\nwaxs = "{waxs}"\nsaxs = "{saxs}"\n'
    )
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0, result.output
    return {"out": out / "run", "twin": twin, "output": result.output}


def _truth_cell(twin: Path) -> tuple[float, float, float]:
    """(x_um, y_um, radius_um) of the casing in the twin's true attenuation map."""
    with h5py.File(twin / "truth.h5", "r") as f:
        group = f["/entry/maps/attenuation"]
        image, x_um = group["data"][()], group["x_um"][()]
    cell = find_cell(image)
    pixel = float(x_um[1] - x_um[0])
    n = x_um.size
    return float(px_to_um(cell.x, n, pixel)), float(px_to_um(cell.y, n, pixel)), cell.radius * pixel


def test_without_diode_the_cell_is_found_from_the_housing_ring(real: dict) -> None:
    found = read_diagnosis(real["out"] / "bare" / "results.h5")
    assert "attenuation" not in found.maps and "housing" in found.maps
    assert any("cell found from the WAXS housing ring" in n for n in found.notes), found.notes
    assert any("self-absorption not corrected" in n for n in found.notes), found.notes
    assert not any("q does not cover" in n for n in found.notes)  # the pair covers both
    x_um, y_um, radius_um = _truth_cell(real["twin"])
    pixel = found.maps.pixel_size_um
    # one pixel: the casing edge is located to a fraction of a pixel in either map
    assert found.cell is not None
    assert abs(found.cell.centre_x_um - x_um) <= pixel
    assert abs(found.cell.centre_y_um - y_um) <= pixel
    assert abs(found.cell.radius_um - radius_um) <= pixel
    assert len(found.agglomerates) >= 1 and found.unrolled
    report = (real["out"] / "report.html").read_text()
    assert "cell found from the WAXS housing ring" in report and "analysis used" in report


def test_a_spec_only_sinogram_gets_its_rotation_centre_estimated(real: dict) -> None:
    with h5py.File(real["twin"] / "truth.h5", "r") as f:
        true_centre_mm = float(f["/entry/scan/rotation_centre_mm"][()])
        pixel_mm = float(f["/entry/scan/pixel_size_um"][()]) / 1000
    sources = {
        "saxs": "estimated from the summed scattering",  # here, by the reconstruction
        "waxs": "/entry/sinogram/rotation_centre",  # by the reduction, from the same sum
    }
    for kind, source in sources.items():
        with h5py.File(real["out"] / "bare" / f"{kind}_run.h5", "r") as f:
            attrs = f["/entry/reconstruction"].attrs
            centre = float(attrs["rotation_centre_mm"])
            assert attrs["rotation_centre_source"] == source
        # the summed scattering carries self-absorption (no diode to correct it): half a
        # pixel, against a quarter for an attenuation sinogram (tests/test_sinogram.py)
        assert abs(centre - true_centre_mm) <= 0.5 * pixel_mm, (kind, centre, true_centre_mm)
    # said once, as a line of the run's output (not Python's warning lines on stderr)
    assert real["output"].count("rotation_centre is missing") == 1
    assert "warning: " in real["output"]
    found = read_diagnosis(real["out"] / "bare" / "results.h5")
    assert any("mm estimated from the summed scattering" in n for n in found.notes)


def test_a_sinogram_with_unsorted_axes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other_program.h5"
    with h5py.File(path, "w") as f:
        f["/entry/sinogram/data"] = np.zeros((3, 4, 5), np.float32)
        f["/entry/sinogram/errors"] = np.ones((3, 4, 5), np.float32)
        f["/entry/sinogram/rotation_angle"] = [0.0, 60.0, 120.0]
        f["/entry/sinogram/translation"] = [0.3, 0.2, 0.1, 0.0]  # descending
        f["/entry/sinogram/q"] = np.linspace(0.01, 0.3, 5)
    with pytest.raises(RunFileError, match=r"translation is not finite and strictly ascending"):
        run_reduce(path, tmp_path / "run.h5")
    assert not (tmp_path / "run.h5").exists()


def _other_program_sinogram(path: Path, n_q: int = 20, axes: list[str] | None = None) -> Path:
    """A SPEC section 6 sinogram of 6 angles x 6 translations x ``n_q`` channels on q =
    1-2 1/angstrom (bins 1/(n_q - 1) wide), as another program writes it; ``axes``: its
    NXdata @axes."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        group = f.create_group("/entry/sinogram")
        group["data"] = rng.random((6, 6, n_q)).astype(np.float32) + 1.0
        group["errors"] = np.full((6, 6, n_q), 0.1, np.float32)
        group["rotation_angle"] = np.linspace(0.0, 150.0, 6)
        group["translation"] = np.linspace(-0.25, 0.25, 6)
        group["q"] = np.linspace(1.0, 2.0, n_q)
        group["q"].attrs["units"] = "1/angstrom"
        if axes is not None:
            group.attrs["axes"] = axes
    return path


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"radial_range": (1.2, 1.5)}, "q range of 1.2-1.5"),
        ({"npt": 500}, "--npt 500"),
        ({"unit": "2th_deg"}, "--unit 2th_deg"),
        ({"poni_path": "geometry.poni"}, "a PONI"),
        ({"mask_path": "mask.npy"}, "a mask"),
    ],
)
def test_a_sinogram_file_refuses_what_it_cannot_take(
    tmp_path: Path, given: dict, named: str
) -> None:
    """A q range, bins, unit, a PONI or a mask given with a sinogram file were ignored:
    a q range of 1.2-1.5 kept the whole 1-2 axis (20 bins), a mask named hid nothing,
    exit 0."""
    path = _other_program_sinogram(tmp_path / "other_program.h5")
    (tmp_path / "geometry.poni").write_text("Distance: 0.1\n")
    np.save(tmp_path / "mask.npy", np.zeros((4, 4), np.uint8))
    files = {k: tmp_path / v for k, v in given.items() if k in ("poni_path", "mask_path")}
    options = ReduceOptions(**{k: v for k, v in given.items() if k not in files})
    with pytest.raises(ValueError, match=rf"{path}: a sinogram reduced already.*{named}"):
        run_reduce(path, tmp_path / "run.h5", options, **files)
    assert not (tmp_path / "run.h5").exists()


def test_a_sinogram_file_is_imported_with_a_warning_of_the_pixel_options(tmp_path: Path) -> None:
    """Corrections of a frame's pixels cannot act on a sinogram: they were ignored without a
    word. They are named in a warning (not refused: `jellyroll run` gives one [waxs] table
    to every cell, a sinogram among cells of frames could not run else)."""
    path = _other_program_sinogram(tmp_path / "other_program.h5")
    given = ReduceOptions(
        polarization_factor=0.5, filter="trimmed-mean", split="full", spot_filter=True,
        subtract_air=True,
    )  # fmt: skip
    with pytest.warns(UserWarning) as caught:
        run_reduce(path, tmp_path / "run.h5", given)
    said = " ".join(str(w.message) for w in caught)
    for flag in ("--polarization-factor 0.5", "--filter trimmed-mean", "--split full",
                 "--spot-filter", "--air"):  # fmt: skip
        assert flag in said, flag
    with h5py.File(path, "r") as f:
        assert np.array_equal(read_sinogram(tmp_path / "run.h5").data, f[SINOGRAM][()])


def test_a_sinogram_file_takes_options_that_agree_with_it(tmp_path: Path) -> None:
    """Its own bins and q range (to a bin), q in 1/nm, no filter, no polarisation, --no-air,
    --no-spot-filter and the speed options change nothing: imported, as with no option."""
    path = _other_program_sinogram(tmp_path / "other_program.h5", n_q=21)  # bins 0.05 wide
    same = ReduceOptions(
        npt=21, radial_range=(0.975, 2.025), spot_filter=False, subtract_air=False, threads=1
    )
    in_nm = ReduceOptions(
        unit="q_nm^-1",
        radial_range=(9.75, 20.25),
        filter="none",
        polarization_factor=None,
        block_frames=16,
    )
    for k, options in enumerate((same, in_nm)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # imported as it is, no rotation centre
            run_reduce(path, tmp_path / f"run_{k}.h5", options)
        with h5py.File(path, "r") as f:
            assert np.array_equal(read_sinogram(tmp_path / f"run_{k}.h5").data, f[SINOGRAM][()])


def test_a_sinogram_whose_axes_say_another_order_is_refused(tmp_path: Path) -> None:
    """@axes = translation, rotation_angle, q on a square (6 x 6) sinogram: read as angles x
    translations, every projection was a column of the file, exit 0."""
    path = _other_program_sinogram(
        tmp_path / "nexus.h5", axes=["translation", "rotation_angle", "q"]
    )
    with pytest.raises(RunFileError, match=r"@axes.*translation, rotation_angle, q"):
        run_reduce(path, tmp_path / "run.h5")
    assert not (tmp_path / "run.h5").exists()
    fine = _other_program_sinogram(
        tmp_path / "fine.h5", axes=["rotation_angle", "translation", "q"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # imported as it is, no rotation centre
        run_reduce(fine, tmp_path / "fine_run.h5")


@pytest.mark.parametrize("bad", [np.nan, 1.0])  # a NaN; a repeat of the first q
def test_a_sinogram_whose_q_is_not_monotonic_is_refused_at_import(
    tmp_path: Path, bad: float
) -> None:
    """A q axis with a NaN or a repeated value was imported and reconstructed, and refused
    only by the maps, naming no file. Refused at import now, naming the file's dataset."""
    path = _other_program_sinogram(tmp_path / "other_program.h5")
    with h5py.File(path, "r+") as f:
        f["/entry/sinogram/q"][1] = bad
    with pytest.raises(RunFileError, match=rf"{path}: /entry/sinogram/q is not finite and"):
        run_reduce(path, tmp_path / "run.h5")
    assert not (tmp_path / "run.h5").exists()


@pytest.mark.parametrize("reading", [50311.5, None])
def test_an_imported_sinogram_keeps_the_monitor_reading_its_counts_are_at(
    tmp_path: Path, reading: float | None
) -> None:
    """A sinogram file stating the monitor reading its intensities are counts at
    (``data@monitor_reference``) lost it on import: its cell's diagnosis recorded NaN, and
    the report drew it on one SAXS colour scale with a cell at twice its flux, exit 0. Kept
    now; a file without one is imported without one."""
    path = _other_program_sinogram(tmp_path / "other_program.h5")
    if reading is not None:
        with h5py.File(path, "r+") as f:
            f[SINOGRAM].attrs["monitor_reference"] = reading
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # imported as it is, no rotation centre
        run_reduce(path, tmp_path / "run.h5")
    assert read_sinogram(tmp_path / "run.h5").monitor_reference == reading


@pytest.mark.parametrize("bad", [-1.0, np.nan, "lots"])
def test_a_monitor_reading_that_is_no_positive_number_is_refused(tmp_path: Path, bad) -> None:
    path = _other_program_sinogram(tmp_path / "other_program.h5")
    with h5py.File(path, "r+") as f:
        f[SINOGRAM].attrs["monitor_reference"] = bad
    with pytest.raises(RunFileError, match=r"data@monitor_reference is .* not a positive number"):
        run_reduce(path, tmp_path / "run.h5")
    assert not (tmp_path / "run.h5").exists()


def test_a_sinogram_in_other_units_is_read_in_degrees_and_millimetres(tmp_path: Path) -> None:
    """Angles in "rad", translations and the centre in "um", units as bytes (other programs
    write them so): refused before ("is in 'rad'", "is in \"b'mm'\""), though the units say
    what the numbers are. Converted now: the same sinogram as in deg and mm. A unit of
    another quantity (angles in "mm") is still refused, naming the dataset."""
    reference = _other_program_sinogram(tmp_path / "deg_mm.h5")
    other = _other_program_sinogram(tmp_path / "rad_um.h5")
    with h5py.File(other, "r+") as f:
        group = f["/entry/sinogram"]
        angles, translations = group["rotation_angle"][()], group["translation"][()]
        del group["rotation_angle"], group["translation"]
        group["rotation_angle"] = np.deg2rad(angles)
        group["rotation_angle"].attrs["units"] = np.bytes_(b"rad")
        group["translation"] = translations * 1000.0
        group["translation"].attrs["units"] = np.bytes_(b"um")
        group["rotation_centre"] = 12.5
        group["rotation_centre"].attrs["units"] = "um"
    found, expected = read_sinogram(other), read_sinogram(reference)
    np.testing.assert_allclose(found.rotation_angle_deg, expected.rotation_angle_deg, atol=1e-12)
    np.testing.assert_allclose(found.translation_mm, expected.translation_mm, atol=1e-12)
    assert found.rotation_centre_mm == pytest.approx(0.0125)
    with h5py.File(other, "r+") as f:
        f["/entry/sinogram/rotation_angle"].attrs["units"] = "mm"
    with pytest.raises(RunFileError, match=r"rotation_angle is in 'mm'; SPEC section 6 says deg"):
        read_sinogram(other)

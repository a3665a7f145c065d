"""`jellyroll phantom` end to end on the tiny twin: files, layout, and a pyFAI round trip."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (compression filters)
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.io.nexus import read_table
from jellyroll.io.poni import integrator_from_poni_text
from jellyroll.io.volumes import read_volume
from jellyroll.phantom.detector import detector_model, expected_counts
from jellyroll.phantom.scan import project_twin, scan_geometry, simulate_acquisition
from jellyroll.phantom.twin import SAXS_Q_RANGE_A, WAXS_Q_RANGE_A, make_twin
from jellyroll.phantom.write import detector_setups

SEED = 5


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    result = CliRunner().invoke(
        app,
        ["phantom", "--preset", "aged_charged", "--size", "tiny", "--seed", str(SEED),
         "-o", str(out), "--operando-steps", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_all_files_written(phantom_dir: Path) -> None:
    for name in (
        "waxs_scan.h5",
        "saxs_scan.h5",
        "xct.tif",
        "nct.tif",
        "truth.h5",
        "agglomerates.csv",
    ):
        assert (phantom_dir / name).is_file(), name
    assert len(list((phantom_dir / "operando").glob("step_*_waxs.h5"))) == 3
    assert not list(phantom_dir.rglob("*.part"))  # atomic writes leave no temporaries


@pytest.mark.parametrize("kind", ["waxs", "saxs"])
def test_raw_scan_layout(phantom_dir: Path, kind: str) -> None:
    """The SPEC section 6 raw-scan contract, readable without jellyroll."""
    with h5py.File(phantom_dir / f"{kind}_scan.h5", "r") as f:
        data = f["/entry/instrument/detector/data"]
        n, height, width = data.shape
        assert data.dtype == np.int32
        assert (height, width) == make_twin("aged_charged", "tiny").size.__getattribute__(
            f"{kind}_detector_shape"
        )
        assert f["/entry/instrument/detector/mask"].shape == (height, width)
        assert f["/entry/sample/rotation_angle"].shape == (n,)
        assert f["/entry/sample/rotation_angle"].attrs["units"] == "deg"
        assert f["/entry/sample/translation"].attrs["units"] == "mm"
        assert f["/entry/monitor/data"].shape == (n,)
        assert f["/entry/instrument/diode/data"].shape == (n,)
        assert f["/entry"].attrs["NX_class"] == "NXentry"
        integrator_from_poni_text(f["/entry/instrument/detector/poni"].asstr()[()])
        angles = f["/entry/sample/rotation_angle"][()]
        translations = f["/entry/sample/translation"][()]
    size = make_twin("aged_charged", "tiny").size
    assert np.unique(angles).size == 3 * size.angles_per_subset
    assert np.unique(translations).size == size.n_translations
    full = 3 * size.angles_per_subset * size.n_translations
    assert 0 < full - n <= 0.01 * full  # a few dropped frames
    # zigzag: consecutive lines run in opposite directions
    first_line = translations[: size.n_translations]
    assert (
        first_line[0] < first_line[-1]
        and translations[size.n_translations] > translations[size.n_translations + 1]
    )


@pytest.mark.parametrize(("kind", "q_range"), [("waxs", WAXS_Q_RANGE_A), ("saxs", SAXS_Q_RANGE_A)])
def test_pyfai_recovers_the_true_pattern_of_a_raw_frame(
    phantom_dir: Path, kind: str, q_range
) -> None:
    """pyFAI's own integrate1d on a written frame gives the twin's pattern of that frame.

    Noise: against the integration of the noise-free expected frame, z = difference / sigma
    is standard normal, so the median |z| is 0.674; single-crystal spots and zingers touch
    a few bins only, so it stays within 0.5-0.85. Fidelity: the noise-free integration
    equals the true pattern averaged over the pixels' q spans, which differs from the
    point-sampled pattern only near sharp lines: smooth SAXS agrees within 3 % away from
    the two partially covered edge bins at each end; WAXS conserves the integrated
    intensity (3 %) and keeps every line at its bin.
    """
    twin = make_twin("aged_charged", "tiny", seed=SEED)
    projections = project_twin(twin, scan_geometry(twin))
    schedule, counters = simulate_acquisition(projections, seed=SEED)
    present = np.flatnonzero(~schedule.missing)
    setup = detector_setups(twin)[kind]
    with h5py.File(phantom_dir / f"{kind}_scan.h5", "r") as f:
        translations = f["/entry/sample/translation"][()]
        index = int(np.argmin(np.abs(translations - np.median(translations))))
        frame = f["/entry/instrument/detector/data"][index].astype(np.float32)
        mask = f["/entry/instrument/detector/mask"][()] > 0
        integrator = integrator_from_poni_text(f["/entry/instrument/detector/poni"].asstr()[()])
    frame_number = present[index]
    a, t = schedule.angle_index[frame_number], schedule.translation_index[frame_number]
    truth = (
        projections.sinogram(kind)[a, t] * counters.monitor[frame_number] / counters.monitor.mean()
    )
    q = getattr(twin.q, kind)
    model = detector_model(integrator, gaps=mask)
    expected = np.zeros(frame.shape, np.float32)
    expected[model.rows, model.cols] = expected_counts(
        q, truth, model, counts_per_unit=setup.counts_per_unit
    )[0]

    def integrate(image: np.ndarray):
        return integrator.integrate1d(
            image, q.size, unit="q_A^-1", radial_range=q_range, mask=mask | (frame < 0),
            correctSolidAngle=True, polarization_factor=0.99, error_model="poisson",
            method=("bbox", "csr", "cython"),
        )  # fmt: skip

    measured, ideal = integrate(frame), integrate(expected)
    assert np.allclose(measured.radial, q, atol=1e-9)
    valid = measured.sigma > 0
    z = (measured.intensity - ideal.intensity)[valid] / measured.sigma[valid]
    assert valid.mean() > 0.9
    assert 0.5 < np.median(np.abs(z)) < 0.85
    ideal_pattern = ideal.intensity / setup.counts_per_unit
    if kind == "saxs":
        assert np.allclose(ideal_pattern[2:-2], truth[2:-2], rtol=0.03)
    else:
        inner = (q > 1.0) & (q < 5.0)
        assert ideal_pattern[inner].sum() == pytest.approx(truth[inner].sum(), rel=0.03)
        for lo, hi in [(1.6, 1.75), (1.75, 1.83), (1.83, 1.95), (4.4, 4.53), (4.53, 4.7)]:
            window = np.flatnonzero((q >= lo) & (q <= hi))
            assert abs(np.argmax(ideal_pattern[window]) - np.argmax(truth[window])) <= 1


def test_truth_file_contract(phantom_dir: Path) -> None:
    with h5py.File(phantom_dir / "truth.h5", "r") as f:
        assert f.attrs["default"] == "entry"
        maps = f["/entry/maps"]
        spec_names = ("lic6", "lic12", "graphite_poor", "nmc_lithiated", "nmc_delithiated",
                      "saxs_intensity", "d_star_nm", "attenuation")  # fmt: skip
        for name in (*spec_names, "collector_displacement_um"):
            group = maps[name]
            assert group.attrs["NX_class"] == "NXdata"
            assert group["x_um"].attrs["units"] == "um"
            assert group["data"].ndim == 2
        table = read_table(f["/entry/agglomerates"])
        assert f["/entry/scan/rotation_centre_mm"][()] > 0
        assert f["/entry/nxct/neutron_to_world"].shape == (4, 4)
        nxct = f["/entry/nxct"]
        nct_to_xct = nxct["nct_to_xct"][()]
        assert nct_to_xct.shape == (4, 4) and nct_to_xct.dtype == np.float64
        np.testing.assert_allclose(
            nct_to_xct, np.linalg.inv(nxct["xray_to_world"][()]) @ nxct["neutron_to_world"][()]
        )
        assert nxct.attrs["xray_voxel_um"] == 2 * nxct.attrs["neutron_voxel_um"]
        labels = nxct["labels"]
        assert (
            labels.dtype == np.uint8
            and labels.shape == read_volume(phantom_dir / "xct.tif")[0].shape
        )
        names = json.loads(labels.attrs["names"])
        assert set(names.values()) >= {"void", "casing", "cu", "al", "anode", "cathode"}
        assert set(np.unique(labels[()])) <= {int(k) for k in names}
        bends = read_table(nxct["bends"])
        assert {"id", "z_um", "y_um", "x_um", "turn", "amplitude_um", "extent_axial_um",
                "extent_arc_um"} <= set(bends.columns)  # fmt: skip
    csv = pd.read_csv(phantom_dir / "agglomerates.csv")
    assert {"x_um", "y_um", "equivalent_diameter_um", "case"} <= set(csv.columns)
    assert np.allclose(csv["equivalent_diameter_um"], table["equivalent_diameter_um"])


def test_truth_scalars_and_saxs_intensity_carry_their_units(phantom_dir: Path) -> None:
    """Every number of the truth's scan and NXCT groups says its unit, and the SAXS
    intensity, a q integral (A^-1) of patterns per um, says both (as the maps stage writes
    it); it said only "/ um" and the scalars said nothing."""
    with h5py.File(phantom_dir / "truth.h5", "r") as f:
        units = f["/entry/maps/saxs_intensity/data"].attrs["units"]
        assert "/ um" in units and "1/angstrom" in units
        expected = {"scan/beam_fwhm_um": "um", "scan/pixel_size_um": "um",
                    "scan/wavelength_A": "angstrom", "scan/translation_mm": "mm",
                    "scan/rotation_centre_mm": "mm", "scan/rotation_angle_deg": "deg",
                    "nxct/xray_voxel_um": "um", "nxct/neutron_voxel_um": "um"}  # fmt: skip
        for name, unit in expected.items():
            assert f["/entry"][name].attrs.get("units") == unit, name


def test_volumes_carry_their_voxel_size(phantom_dir: Path) -> None:
    xct, xray_voxel = read_volume(phantom_dir / "xct.tif")
    nct, neutron_voxel = read_volume(phantom_dir / "nct.tif")
    assert xray_voxel == pytest.approx(2 * neutron_voxel)
    assert xct.shape[1] * xray_voxel == pytest.approx(nct.shape[1] * neutron_voxel, rel=0.05)


def test_cli_help_and_version() -> None:
    runner = CliRunner()
    assert "jellyroll" in runner.invoke(app, ["--version"]).output
    for command in ([], ["phantom"], ["demo"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_cli_rejects_unknown_preset(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["phantom", "--preset", "half_charged", "-o", str(tmp_path)])
    assert result.exit_code != 0
    assert "fresh_discharged" in result.output

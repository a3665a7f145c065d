"""``jellyroll reconstruct`` on small run files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.io import scratch
from jellyroll.io.scratch import scratch_volumes
from jellyroll.recon import ParallelGeometry, forward, reconstruct
from jellyroll.recon import run as recon_run
from jellyroll.recon.options import ReconstructOptions
from jellyroll.recon.run import run_reconstruct
from jellyroll.results import (
    Map,
    MapSet,
    Sinogram,
    read_reconstruction,
    read_sinogram,
    write_map_set,
    write_sinogram,
)

N = 40
CENTRE_MM = 3.0 + 0.37 * 0.01


def _run_file(
    path: Path, *, centre: float | None = CENTRE_MM, diode: bool = True, noise: float = 0.0
) -> dict:
    """Run file of three smooth maps mixed into 30 q channels, 10 um steps, 36 angles,
    attenuated by a disk of mu = 1e-3 / um (up to 27 % absorbed); with ``noise`` white
    noise of that sigma, and errors saying so."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:N, :N] - (N - 1) / 2
    disk = (xx**2 + yy**2 < (0.4 * N) ** 2).astype(np.float32)
    maps = gaussian_filter(rng.random((N, N, 3)), (2, 2, 0)).astype(np.float32) * disk[..., None]
    q = np.linspace(0.5, 2.0, 30)
    volume = maps @ rng.random((3, 30)).astype(np.float32)
    translations = 3.0 + (np.arange(N) - (N - 1) / 2) * 0.01
    angles = np.linspace(0.0, 180.0, 36, endpoint=False)
    geometry = ParallelGeometry.from_scan(angles, translations, CENTRE_MM)
    mu = 1e-3 * disk
    attenuation = forward(geometry, mu)
    data = forward(geometry, volume) * np.exp(-attenuation)[..., None]
    data += noise * rng.standard_normal(data.shape).astype(np.float32)
    data[4, 10] = np.nan  # a dropped frame
    sinogram = Sinogram(
        data=data,
        errors=np.full_like(data, noise),
        rotation_angle_deg=angles,
        translation_mm=translations,
        q_A=q,
        attenuation=attenuation if diode else None,
        rotation_centre_mm=centre,
    )
    write_sinogram(path, sinogram, {"stage": "test"})
    axis = geometry.x_um
    write_map_set(path, MapSet({"lic6": Map(np.ones((N, N)), "fraction")}, axis, axis), {})
    return {"volume": volume, "mu": mu, "q": q}


def _invoke(*args: str):
    return CliRunner().invoke(app, ["reconstruct", *args])


def test_noisy_run_files_get_the_noise_rank_by_default(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _run_file(path, noise=0.05)  # the maps' sinogram values are ~1-5
    result = _invoke(str(path), "--method", "fbp")
    assert result.exit_code == 0, result.output
    assert "low-rank: 3 components, above the noise floor" in result.output
    attrs = read_reconstruction(path).attrs
    assert attrs["low_rank"] == 3 and attrs["low_rank_rule"] == "noise"
    assert attrs["low_rank_noise_from"] == "errors"
    # what the 3 components leave out is the noise of the other 27 directions: 27/30 of
    # the noise energy the errors predict (the noise-free part is exactly rank 3)
    ratio = attrs["low_rank_discarded_energy"] / attrs["low_rank_noise_energy"]
    assert ratio == pytest.approx(27 / 30, rel=0.05)
    assert attrs["low_rank_noise_floor"] > 0
    # asked for, the energy rule keeps the noise: every channel
    assert _invoke(str(path), "--method", "fbp", "--rank", "energy").exit_code == 0
    assert read_reconstruction(path).attrs["low_rank"] == -1
    assert _invoke(str(path), "--method", "fbp", "--rank", "2").exit_code == 0
    assert read_reconstruction(path).attrs["low_rank"] == 2
    bad = _invoke(str(path), "--rank", "many")
    assert bad.exit_code != 0 and "rank" in bad.output


def test_a_low_rank_result_is_written_without_holding_the_volume(tmp_path: Path) -> None:
    """The stage keeps the components and writes the channels expanded row slab by row
    slab (the (y, x, q) volume is 8 GB at the study's size): the file holds what the engine
    returns expanded, and nothing more than the component maps stays in memory."""
    path = tmp_path / "run.h5"
    _run_file(path, noise=0.05)
    done = run_reconstruct(path, ReconstructOptions(method="fbp", self_absorption=False))
    assert done.result.basis is not None and done.result.data.shape == (N, N, 3)
    sinogram = read_sinogram(path, errors=True)
    geometry = ParallelGeometry.from_scan(
        sinogram.rotation_angle_deg, sinogram.translation_mm, CENTRE_MM
    )
    expected = reconstruct(sinogram.data, geometry, "fbp", errors=sinogram.errors).data
    written = read_reconstruction(path).data
    # the same maps and basis; only the float32 sums of the expansion are blocked otherwise
    np.testing.assert_allclose(written, expected, rtol=0, atol=1e-6 * np.abs(expected).max())


def test_a_volume_too_large_to_hold_is_reconstructed_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every channel reconstructed (no low rank; the study's cube is 8.4 GB) into a scratch
    file beside the run, a block of channels at a time, and written from it by row slabs:
    the same file as the volume held in memory, the scratch file removed, the channels
    without data NaN."""
    held, on_disk = tmp_path / "held" / "run.h5", tmp_path / "disk" / "run.h5"
    for path in (held, on_disk):
        path.parent.mkdir()
        _run_file(path, noise=0.05)
        sinogram = read_sinogram(path)
        sinogram.data[..., 3] = np.nan
        write_sinogram(path, sinogram, {})
    options = ReconstructOptions(iterations=2, rank="energy", self_absorption=False)
    # several blocks of channels; the same for both (SART's lanes follow the block's width,
    # and with them the float32 rounding)
    monkeypatch.setattr(recon_run, "CHUNK_CHANNELS", 7)
    expected = run_reconstruct(held, options)
    monkeypatch.setattr(scratch, "IN_MEMORY_BYTES", 0)
    made = []
    original = scratch_volumes

    def recorded(output, channel_block):
        made.append(channel_block)
        return original(output, channel_block)

    monkeypatch.setattr(recon_run, "scratch_volumes", recorded)
    done = run_reconstruct(on_disk, options)
    assert made == [7] and done.result.rank is None
    assert done.result.shape == expected.result.shape == (N, N, 30)
    assert sorted(p.name for p in on_disk.parent.iterdir()) == sorted(
        p.name for p in held.parent.iterdir()
    )  # no scratch file left
    written, reference = read_reconstruction(on_disk).data, read_reconstruction(held).data
    assert np.isnan(written[..., 3]).all()
    np.testing.assert_array_equal(written, reference)


def test_reconstruct_writes_volume_and_attenuation_map(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    truth = _run_file(path)
    assert _invoke(str(path), "--iterations", "20", "--no-self-absorption").exit_code == 0
    uncorrected = read_reconstruction(path).data
    result = _invoke(str(path), "--iterations", "20", "--self-absorption")
    assert result.exit_code == 0, result.output
    assert "low-rank: 3 components" in result.output
    recon = read_reconstruction(path)
    assert recon.data.shape == (N, N, 30)
    np.testing.assert_allclose(recon.x_um, (np.arange(N) - (N - 1) / 2) * 10.0)
    assert recon.attrs["method"] == "sart" and recon.attrs["low_rank"] == 3
    assert bool(recon.attrs["self_absorption_corrected"])

    def error(volume: np.ndarray) -> float:
        volume_truth = truth["volume"]
        return float(np.sqrt(np.mean((volume - volume_truth) ** 2) / np.mean(volume_truth**2)))

    # 36 angles for ~1000 pixels: SART 20 leaves ~10 % (measured 0.098, the same as with
    # the exact transmission); without the correction the absorption costs 0.27
    assert error(recon.data) < 0.12
    assert error(uncorrected) > 2 * error(recon.data)
    mu = recon.attenuation
    assert mu.shape == (N, N) and mu.min() >= 0
    assert np.sqrt(np.mean((mu - truth["mu"]) ** 2)) < 0.05 * 1e-3  # measured 2.5 %
    with h5py.File(path) as f:
        # the maps of the earlier volume no longer follow from the run: deleted, not kept
        assert "maps" not in f["entry"]
        assert f["entry/reconstruction/attenuation"].attrs["units"] == "1/um"
        assert "reconstruction" in f["entry/provenance"]


@pytest.mark.parametrize("method", ["fbp", "sirt"])
def test_self_absorption_takes_the_transmission_of_a_sart_map(tmp_path: Path, method) -> None:
    """The transmission the channels are divided by is reprojected from a SART attenuation
    map whatever the method: FBP's holds 0.3-0.45 of the sample's mu in the corners beyond
    the detector's circle, which the rays through them read as attenuation. A disk in a
    casing absorbing up to 69 %: FBP's channels came out 6.0 % above those divided by the
    exact transmission (SIRT's 0.64 %), exit 0; now 0.01 %. The tolerance, 0.2 %, leaves
    the SART map's reprojection error (1 % at most on any ray) room on the average."""
    n, step = 48, 10.0
    yy, xx = (np.mgrid[:n, :n] - (n - 1) / 2) * step
    r = np.hypot(xx, yy)
    scattering = np.where(r < 200, 1.0 + 0.5 * (xx > 0), 0.0).astype(np.float32)
    mu = np.where(r < 200, 1e-3, 0.0) + np.where((r >= 200) & (r < 225), 6e-3, 0.0)
    angles = np.linspace(0.0, 180.0, 60, endpoint=False)
    translations = 3.0 + (np.arange(n) - (n - 1) / 2) * step / 1000
    geometry = ParallelGeometry.from_scan(angles, translations, 3.0037)
    attenuation = forward(geometry, mu.astype(np.float32))
    exact = np.repeat(forward(geometry, scattering)[..., None], 4, axis=2)
    data = exact * np.exp(-attenuation)[..., None]
    path = tmp_path / "run.h5"
    sinogram = Sinogram(
        data=data,
        errors=np.zeros_like(data),
        rotation_angle_deg=angles,
        translation_mm=translations,
        q_A=np.linspace(1.0, 2.0, 4),
        attenuation=attenuation,
        rotation_centre_mm=3.0037,
    )
    write_sinogram(path, sinogram, {"stage": "test"})
    options = ReconstructOptions(method=method)
    run_reconstruct(path, options)
    written = read_reconstruction(path).data[..., 0]
    expected = reconstruct(exact[..., 0], geometry, method, options.sweeps).data[..., 0]
    inside = r < 190
    assert written[inside].mean() == pytest.approx(expected[inside].mean(), rel=2e-3)


def test_channel_ranges_backend_and_method(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    truth = _run_file(path, diode=False)
    result = _invoke(
        str(path), "--method", "fbp", "--backend", "astra", "--channels", "0.5:0.8,1.9:2.0"
    )
    assert result.exit_code == 0, result.output
    recon = read_reconstruction(path)
    picked = ((truth["q"] <= 0.8) | (truth["q"] >= 1.9)).sum()
    assert recon.data.shape == (N, N, picked)
    assert recon.q_A.min() == pytest.approx(0.5) and recon.attrs["backend"] == "astra"
    with h5py.File(path) as f:
        assert "attenuation" not in f["entry/reconstruction"]


def test_q_ranges_on_an_axis_that_is_not_q_are_refused(tmp_path: Path) -> None:
    """A scan reduced to 2theta (deg): `--channels 1.0:1.2` (q in 1/angstrom) picked the
    channels of 2theta 1.0-1.2 deg and reconstructed them, exit 0. All channels still go."""
    path = tmp_path / "run.h5"
    _run_file(path, diode=False)
    with h5py.File(path, "r+") as f:
        f["entry/sinogram/q"].attrs["units"] = "deg"
    result = _invoke(str(path), "--channels", "1.0:1.2", "--iterations", "2")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "run.h5: /entry/sinogram/q is in 'deg', not 1/angstrom" in message
    assert _invoke(str(path), "--iterations", "2").exit_code == 0


def test_errors_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _run_file(path, centre=None, diode=False)
    assert (
        _invoke(str(path), "--rotation-centre", str(CENTRE_MM), "--self-absorption").exit_code == 1
    )
    assert (
        _invoke(str(path), "--rotation-centre", str(CENTRE_MM), "--self-absorption").exit_code == 1
    )
    assert (
        _invoke(str(path), "--rotation-centre", str(CENTRE_MM), "--iterations", "2").exit_code == 0
    )
    assert _invoke(str(path), "--method", "art").exit_code == 2
    assert _invoke(str(path), "--channels", "7:8").exit_code == 1
    assert _invoke(str(tmp_path / "missing.h5")).exit_code == 1


@pytest.mark.parametrize(
    ("diode", "source"), [(True, "attenuation sinogram"), (False, "summed scattering")]
)
def test_a_missing_rotation_centre_is_estimated_said_and_recorded(
    tmp_path: Path, diode: bool, source: str
) -> None:
    """A sinogram without /entry/sinogram/rotation_centre (written by another program): the
    centre from the attenuation, or else the summed scattering, within a tenth of a step
    of the true one (the object stays in the field of view; Helgason-Ludwig order 1)."""
    path = tmp_path / "run.h5"
    _run_file(path, centre=None, diode=diode)
    result = _invoke(str(path), "--iterations", "2")
    assert result.exit_code == 0, result.output
    assert f"estimated from the {source}" in result.output
    with h5py.File(path, "r") as f:
        attrs = f["/entry/reconstruction"].attrs
        assert attrs["rotation_centre_source"] == f"estimated from the {source}"
        assert abs(attrs["rotation_centre_mm"] - CENTRE_MM) < 0.1 * 0.01


def test_channels_without_data_are_nan_and_a_cube_without_data_an_error(tmp_path: Path) -> None:
    """A channel whose sinogram is all NaN (no pixel in its q bin) reconstructs to NaN with
    a note, not to 0; a sinogram without any value is refused."""
    path = tmp_path / "run.h5"
    _run_file(path)
    sinogram = read_sinogram(path)
    sinogram.data[..., 3] = np.nan
    write_sinogram(path, sinogram, {})
    result = _invoke(str(path), "--iterations", "2")
    assert result.exit_code == 0, result.output
    assert "1 channels without data" in result.output
    recon = read_reconstruction(path)
    assert np.isnan(recon.data[..., 3]).all() and np.isfinite(recon.data[..., 2]).all()
    sinogram.data[:] = np.nan
    write_sinogram(path, sinogram, {})
    result = _invoke(str(path), "--iterations", "2")
    assert result.exit_code == 1 and "no finite value" in result.stderr


def test_default_chain_on_raw_frames(tmp_path: Path) -> None:
    """phantom (raw frames) -> reduce -> reconstruct, every option at its default. The
    reduction's sigma-clip reports an error of 0 for bins whose pixels all read the same
    (no count): the noise-aware rank once took those as exact and failed ("Eigenvalues did
    not converge") on this very chain."""
    runner = CliRunner()
    cell, run = tmp_path / "twin", tmp_path / "run.h5"
    for args in (
        ["phantom", "--size", "tiny", "--raw", "--no-nxct", "--seed", "3", "-o", str(cell)],
        ["reduce", str(cell / "waxs_scan.h5"), "-o", str(run)],
        ["reconstruct", str(run)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    reconstruction = read_reconstruction(run)
    assert reconstruction.attrs["low_rank_rule"] == "noise"  # the rule that failed
    assert np.isfinite(reconstruction.data).any() and np.nanmax(np.abs(reconstruction.data)) > 0

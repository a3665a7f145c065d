"""``analysis = "study"``: the study's plain Table 1 window integrals and raw per-voxel d*,
checked against the same numbers computed by hand; ``"jellyroll"``: background and
denoising."""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.special import erf
from test_cli_maps import placeholder_sinogram
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.maps.core import bright_level, compute_maps
from jellyroll.maps.options import MapsOptions
from jellyroll.phantom.patterns import waxs_pattern
from jellyroll.phases import GRAPHITE_OVERVIEW_WINDOW, TABLE1_WINDOWS, QWindow, window_integrals
from jellyroll.results import Reconstruction, write_reconstruction, write_sinogram
from jellyroll.saxs import LOW_INTENSITY, NOT_MEASURED, departure_dstar, departure_dstar_map

STUDY = MapsOptions(analysis="study")
WAXS_COMPONENTS = ("lic6", "lic12", "graphite_poor", "nmc_lithiated", "nmc_delithiated",
                   "electrolyte", "binder_carbon")  # fmt: skip
"""The phases of Table 1 and two broad halos under their lines."""


def _axes(n: int) -> np.ndarray:
    return (np.arange(n) - (n - 1) / 2) * 20.0


@pytest.fixture(scope="module")
def waxs() -> Reconstruction:
    """(24, 24) voxels of random mixtures of the twin's WAXS component patterns, Poisson
    noise of ~1000 counts at the strongest line, on the twin's WAXS q grid."""
    rng = np.random.default_rng(4)
    q = np.linspace(0.8, 5.2, 301)[:-1] + 4.4 / 600  # bin centres of 300 bins
    bases = np.stack([waxs_pattern(name, q) for name in WAXS_COMPONENTS])
    mixtures = np.einsum("yxc,cq->yxq", rng.random((24, 24, len(WAXS_COMPONENTS))), bases)
    noisy = rng.poisson(1000 * mixtures / mixtures.max()) / 1000
    return Reconstruction(noisy.astype(np.float32), q, _axes(24), _axes(24))


@pytest.fixture(scope="module")
def saxs() -> Reconstruction:
    """(12, 12) voxels of a Guinier shoulder (radius of gyration 40-120 A) on a q^-3.6 power
    law, amplitudes 0.05-1 (some below the map's intensity threshold), Poisson noise."""
    rng = np.random.default_rng(5)
    q = np.linspace(0.008, 0.30, 501)[:-1] + 0.292 / 1000
    rg = rng.uniform(40.0, 120.0, (12, 12, 1))
    amplitude = rng.uniform(0.05, 1.0, (12, 12, 1))
    profiles = amplitude * (100 * np.exp(-(q**2) * rg**2 / 3) + 1e-3 * q**-3.6)
    noisy = rng.poisson(50 * profiles) / 50
    return Reconstruction(noisy.astype(np.float32), q, _axes(12), _axes(12))


def test_study_windows_are_the_plain_integrals_of_the_channels(waxs: Reconstruction) -> None:
    recon = waxs
    study = compute_maps(recon, STUDY)
    own = compute_maps(recon, MapsOptions())
    windows = {**TABLE1_WINDOWS, **GRAPHITE_OVERVIEW_WINDOW}
    for name, window in windows.items():
        inside = (recon.q_A >= window.q_min) & (recon.q_A <= window.q_max)
        by_hand = np.trapezoid(recon.data[..., inside].astype(np.float64), recon.q_A[inside])
        # float32 maps of a float32 volume: equal to the float64 sum to float32 rounding
        np.testing.assert_allclose(study[name], by_hand, rtol=1e-5, atol=1e-6 * abs(by_hand).max())
        # jellyroll's maps integrate to the window's exact edges, then subtract a
        # background: lower than that integral where the halo sits under the line
        whole = QWindow(window.q_min, window.q_max, exact_edges=True)
        plain = window_integrals(recon.q_A, recon.data, {name: whole}, shoulder_bins=0)
        assert np.nansum(own[name]) < np.nansum(plain)
    assert any("analysis used: study" in note for note in study.notes)
    assert any("analysis used: jellyroll" in note for note in own.notes)


def test_study_dstar_is_departure_dstar_of_each_raw_voxel(saxs: Reconstruction) -> None:
    recon = saxs
    maps = compute_maps(recon, STUDY)
    d_star, reason = maps["d_star_nm"], maps["d_star_reason"]
    measured = np.argwhere(reason != LOW_INTENSITY)
    picked = measured[np.random.default_rng(0).permutation(len(measured))[:60]]
    for iy, ix in picked:  # departure_dstar takes ~20 ms a profile: 60 of them
        expected = departure_dstar(recon.q_A, recon.data[iy, ix])
        # the same deterministic method on the same raw profile: bit for bit
        assert reason[iy, ix] == expected.reason_code
        assert np.array_equal(d_star[iy, ix], np.float32(expected.d_star_nm), equal_nan=True)
    assert len(picked) == 60 and np.isfinite(d_star[tuple(picked.T)]).sum() >= 40
    denoised = compute_maps(recon, MapsOptions())["d_star_nm"]
    assert not np.array_equal(denoised, d_star, equal_nan=True)


def test_voxels_without_a_value_are_said_not_measured(saxs: Reconstruction) -> None:
    """Voxels whose profile is NaN (not measured, outside the reconstruction) carried the
    reason "integrated SAXS intensity below the map's threshold", as if measured weak."""
    data = np.array(saxs.data, copy=True)
    data[:3, :4] = np.nan
    maps = compute_maps(replace(saxs, data=data), STUDY)
    assert (maps["d_star_reason"][:3, :4] == NOT_MEASURED).all()
    assert np.isnan(maps["d_star_nm"][:3, :4]).all()
    assert NOT_MEASURED not in maps["d_star_reason"][3:]


def test_study_refuses_denoising() -> None:
    with pytest.raises(ValueError, match="analysis 'study' uses the raw"):
        MapsOptions(analysis="study", denoise=True)
    assert not MapsOptions(analysis="study").denoised and MapsOptions().denoised


def test_maps_command_records_the_analysis(tmp_path: Path, waxs: Reconstruction) -> None:
    run = tmp_path / "waxs_run.h5"
    write_sinogram(run, placeholder_sinogram(waxs.q_A, waxs.x_um), {"test": "placeholder"})
    write_reconstruction(run, waxs, {})
    result = CliRunner().invoke(app, ["maps", str(run), "--analysis", "study"])
    assert result.exit_code == 0, result.output
    assert "analysis used: study" in result.output
    with h5py.File(run, "r") as f:
        record = json.loads(f["/entry/provenance/maps"].asstr()[()])
        assert "analysis used: study" in f["/entry/maps"].attrs["notes"]
    assert record["configuration"]["analysis"] == "study"
    bad = CliRunner().invoke(app, ["maps", str(run), "--analysis", "paper"])
    assert bad.exit_code == 2 and "analysis" in bad.stderr


def test_a_q_axis_that_gives_no_map_says_which_window_is_short(waxs: Reconstruction) -> None:
    """Only the graphite lines reconstructed: 'q range [1.55, 2.05] gives no map' named
    neither the missing windows nor why."""
    keep = (waxs.q_A > 1.55) & (waxs.q_A < 2.05)
    lines = Reconstruction(waxs.data[..., keep], waxs.q_A[keep], waxs.x_um, waxs.y_um)
    with pytest.raises(ValueError, match=r"gives no map: for the phase maps, .*\] A\^-1"):
        compute_maps(lines, MapsOptions())


def test_a_radial_axis_not_in_inverse_angstrom_is_refused(waxs: Reconstruction) -> None:
    """compute_maps took any reconstruction's axis for q in 1/A: the same values as 2theta
    in degrees (q_units "2th_deg") covered the Table 1 windows and gave every phase map,
    of 1.67-4.62 degrees, exit 0 (only run_maps checked the unit)."""
    degrees = Reconstruction(waxs.data, waxs.q_A, waxs.x_um, waxs.y_um, q_units="2th_deg")
    with pytest.raises(ValueError, match=r"'2th_deg', not 1/angstrom"):
        compute_maps(degrees, STUDY)


@pytest.mark.parametrize("kind", ["waxs", "saxs"])
def test_channels_without_a_value_are_left_out_with_a_note(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """reconstruct leaves the channels nothing measured NaN. One such channel in a graphite
    background anchor made every graphite map NaN and every label "none", exit 0; three at
    high q failed the SAXS denoising with "fewer than 2 profiles with finite values"."""
    recon: Reconstruction = request.getfixturevalue(kind)
    q = recon.q_A
    lost = [int(np.argmin(np.abs(q - 1.951)))] if kind == "waxs" else [q.size - 3, q.size - 2]
    data = recon.data.copy()
    data[..., lost] = np.nan
    maps = compute_maps(Reconstruction(data, q, recon.x_um, recon.y_um), MapsOptions())
    whole = compute_maps(recon, MapsOptions())
    assert any(note.startswith(f"{len(lost)} q channels hold no value") for note in maps.notes)
    name = "lic6" if kind == "waxs" else "saxs_intensity"
    assert np.isfinite(maps[name]).all()
    if kind == "saxs":  # two bins outside the SAXS window: the same integral
        np.testing.assert_array_equal(maps[name], whole[name])
    else:  # one anchor bin of five: the background line moves by a fraction of the noise
        np.testing.assert_allclose(maps[name], whole[name], atol=0.02 * whole[name].max())


def test_a_few_hot_voxels_do_not_blank_the_d_star_map(saxs: Reconstruction) -> None:
    """The d* threshold was a fraction of the intensity's 99th percentile: hot voxels
    (1 % of the map, 50 times the brightest) raised it above every real voxel, whose d*
    was blanked as weak (1371 values to 54 on the tiny twin), exit 0."""
    data = saxs.data.copy()
    data[0, :2] *= 50 * data.max() / data[0, :2].max(axis=-1, keepdims=True)
    # the study's raw profiles: the hot voxels change no other voxel's profile
    hot = compute_maps(Reconstruction(data, saxs.q_A, saxs.x_um, saxs.y_um), STUDY)
    clean = compute_maps(saxs, STUDY)
    valid = np.isfinite(clean["d_star_nm"])
    valid[0, :2] = False
    assert valid.sum() > 20
    # the clean map's valid voxels keep their d* (the hot voxels are 1 % of the positive
    # values: the threshold moves by a fraction of a percentile)
    assert np.array_equal(hot["d_star_nm"][valid], clean["d_star_nm"][valid])


def test_d_star_set_by_one_points_noise_is_noted(saxs: Reconstruction) -> None:
    """The study's rule walks down from the point below the fit window; on raw noisy
    profiles that first point already departs by 3 % (69 % of the tiny twin's voxels, d*
    5.9 nm off), and the map said nothing. The edge flag is checked against the per-profile
    fit window of departure_dstar."""
    raw = compute_maps(saxs, STUDY)
    denoised = compute_maps(saxs, MapsOptions())
    edge = [note for note in raw.notes if "first point below the fit window" in note]
    assert len(edge) == 1
    assert not any("first point below the fit window" in note for note in denoised.notes)
    flags = departure_dstar_map(saxs.q_A, saxs.data)
    qs = np.sort(saxs.q_A)
    picked = np.argwhere(flags.valid)[:30]
    for iy, ix in picked:
        single = departure_dstar(saxs.q_A, saxs.data[iy, ix])
        first_below = qs[np.searchsorted(qs, single.fit_q_range[0]) - 1]
        assert flags.at_window_edge[iy, ix] == (single.q_star == first_below)
    assert 0 < flags.at_window_edge[tuple(picked.T)].sum() < len(picked)  # both kinds met


def test_the_bright_level_of_a_small_bright_anode_is_its_99th_percentile() -> None:
    """Control: an anode of 5 % of the map (intensity 10 +- 1, cathode 1, noise 0.3) has no
    hot voxels; leaving out all above 3x the 90th percentile (a first fix) took the
    cathode's level as the reference and gave cathode and noise voxels a d* (34.6 % of the
    map kept against 5 %)."""
    rng = np.random.default_rng(0)
    n = 160_000
    values = np.concatenate(
        [
            rng.normal(10, 1, n // 20),
            rng.normal(1, 0.2, 3 * n // 20),
            rng.normal(0, 0.3, 4 * n // 5),
        ]
    )
    positive = values[values > 0]
    assert bright_level(positive) == np.percentile(positive, 99)
    hot = np.concatenate([positive, np.full(positive.size // 80, 500.0)])  # 1.25 % hot
    assert bright_level(hot) == pytest.approx(np.percentile(positive, 99), rel=0.02)


def test_a_saxs_window_covered_but_for_a_few_percent_is_mapped_with_a_note(
    saxs: Reconstruction,
) -> None:
    """An axis from 0.027 1/A (1.9 % of the window short of 0.025, beyond one bin) is one
    detector's reach: mapped, and the notes say what the integral misses (2.6 %: it stops
    at the first bin centre, 0.02698 1/A)."""
    keep = saxs.q_A >= 0.0265
    cut = Reconstruction(saxs.data[..., keep], saxs.q_A[keep], saxs.x_um, saxs.y_um)
    maps = compute_maps(cut, STUDY)
    assert "saxs_intensity" in maps
    assert any("covers part of saxs [0.025, 0.1] 2.6% short" in note for note in maps.notes)


def test_a_channel_of_zeros_is_left_out_like_one_without_a_value(waxs: Reconstruction) -> None:
    """A channel that holds 0 in every pixel was measured by nothing (a detector gap
    integrated as 0 rather than NaN; no measured channel is 0 everywhere). Before, its
    zeros were integrated: the one at 1.805 1/A took 29 % off the tiny twin's LiC12 map,
    exit 0, with no note (on these mixtures, 0.0068 for 0.0112 in the first voxel). Now it
    is left out as a NaN channel is (the same maps, bit for bit), and the notes name it and
    the window that interpolates across it."""
    q = waxs.q_A
    lost = int(np.argmin(np.abs(q - 1.80)))
    zeros, nans = waxs.data.copy(), waxs.data.copy()
    zeros[..., lost], nans[..., lost] = 0.0, np.nan
    zeroed = compute_maps(Reconstruction(zeros, q, waxs.x_um, waxs.y_um), MapsOptions())
    missing = compute_maps(Reconstruction(nans, q, waxs.x_um, waxs.y_um), MapsOptions())
    for name in ("lic12", "lic6", "graphite_poor", "graphite_label"):
        np.testing.assert_array_equal(zeroed[name], missing[name], err_msg=name)
    assert any(note.startswith("1 q channels hold 0 in every pixel") for note in zeroed.notes)
    assert any("inside lic12 [1.78, 1.82]" in note for note in zeroed.notes)
    assert any("inside lic12 [1.78, 1.82]" in note for note in missing.notes)
    # a channel with one zero pixel is measured
    one = waxs.data.copy()
    one[0, 0, lost] = 0.0
    assert not any(
        "hold 0" in n
        for n in compute_maps(Reconstruction(one, q, waxs.x_um, waxs.y_um), MapsOptions()).notes
    )


def test_channels_without_a_value_are_skipped_without_a_copy_of_the_cube(
    waxs: Reconstruction,
) -> None:
    """Leaving them out by indexing copied the whole cube (8 GB more at the study's
    1024 x 1024 x 2000); the window integrals now read only the channels they use."""
    data = waxs.data.copy()
    data[..., 100] = np.nan
    recon = Reconstruction(data, waxs.q_A, waxs.x_um, waxs.y_um)
    tracemalloc.start()
    try:
        compute_maps(recon, STUDY)
        peak = tracemalloc.get_traced_memory()[1]
        print(f"peak {peak / data.nbytes:.2f} of the cube")
    finally:
        tracemalloc.stop()
    # measured 0.14: the per-window channels and the isfinite mask of the empty-channel scan
    assert peak < 0.6 * data.nbytes


@pytest.mark.parametrize("factor", [1.0, 0.98, 1.05])
def test_a_q_axis_stretched_by_a_wrong_geometry_is_refused(factor: float) -> None:
    """A PONI distance 2 % long (axis x 0.98) put the LiC12 line into the LiC6 window and
    every phase map was wrong, exit 0; x 1.05 put each graphite line on its neighbour's
    place. The casing's and collectors' lines in the mean pattern give the factor."""
    rng = np.random.default_rng(6)
    q = np.linspace(0.8, 5.2, 301)[:-1] + 4.4 / 600  # the twin's bin centres
    names = (*WAXS_COMPONENTS, "steel", "cu", "al")
    # the patterns of the true axis q / factor drawn on q
    bases = np.stack([waxs_pattern(name, q / factor) for name in names])
    mixtures = np.einsum("yxc,cq->yxq", rng.random((12, 12, len(names))), bases)
    noisy = rng.poisson(1000 * mixtures / mixtures.max()) / 1000
    recon = Reconstruction(noisy.astype(np.float32), q, _axes(12), _axes(12))
    if factor == 1.0:
        notes = compute_maps(recon, MapsOptions()).notes
        assert any("q axis checked against 7 lines" in note for note in notes), notes
        return
    with pytest.raises(ValueError, match=r"off by a factor (\d\.\d+).*Cu \(111\) at.*PONI") as e:
        compute_maps(recon, MapsOptions())
    # the vertex of a parabola through three bins of 1.7-bin-wide lines: 0.03 % at most
    # on the twin's patterns, and the median of 6-7 lines
    assert float(e.value.args[0].split("factor ")[1].split(" ")[0]) == pytest.approx(
        factor, abs=5e-4
    )
    assert "graphite" in compute_maps(recon, MapsOptions(q_check=False))


def test_a_pattern_without_the_metal_lines_is_mapped_with_a_note(waxs: Reconstruction) -> None:
    """No casing or collector in the scan (a powder of the phases): nothing to check the
    axis with, which the notes say; no refusal."""
    notes = compute_maps(waxs, MapsOptions()).notes
    assert any("lines are not found in the mean pattern" in note for note in notes), notes


def test_d_star_is_not_found_across_channels_without_a_value() -> None:
    """Channels 0.011-0.0245 1/A without a value (not reconstructed), outside the SAXS
    intensity window, which is checked for gaps: d* walked over them and found its departure
    below them, 59.7 nm for a profile of 37.5 nm (q* in the gap), exit 0. Now no value,
    with the reason code of a gap (8)."""
    q = np.linspace(0.005, 0.35, 500)
    rg = 300.0  # A: a Beaucage level, shoulder at q ~ 0.017 1/A
    profile = 100 * np.exp(-(q**2) * rg**2 / 3) + 1e-3 * (erf(q * rg / 6**0.5) ** 3 / q) ** 4
    cube = np.broadcast_to(profile, (4, 4, q.size)).astype(np.float32).copy()
    whole = compute_maps(Reconstruction(cube, q, _axes(4), _axes(4)), STUDY)
    assert np.isfinite(whole["d_star_nm"]).all()
    q_star = 2 * np.pi / (10 * float(whole["d_star_nm"][0, 0]))
    assert 0.011 < q_star < 0.0245
    cube[..., (q > 0.011) & (q < 0.0245)] = np.nan
    gapped = compute_maps(Reconstruction(cube, q, _axes(4), _axes(4)), STUDY)
    assert np.isnan(gapped["d_star_nm"]).all()
    assert (gapped["d_star_reason"] == 8).all()

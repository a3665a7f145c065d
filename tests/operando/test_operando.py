"""The operando stage against the twin's truth and the potentiostat log's edge cases."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from scipy import ndimage
from typer.testing import CliRunner

from jellyroll import conventions, phases
from jellyroll.cli import app
from jellyroll.io.nexus import read_table, write_table
from jellyroll.maps.options import MapsOptions
from jellyroll.maps.run import maps_key
from jellyroll.operando import core
from jellyroll.operando.options import OperandoOptions
from jellyroll.operando.run import (
    _left_out_note,
    _order_note,
    _saxs_zones,
    operando_key,
    profile_on,
    run_operando,
    series_scans,
)
from jellyroll.operando.timeline import build_timeline, read_potentiostat_log, soc_from_log
from jellyroll.phantom.parameters import SIZES
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import _write_operando
from jellyroll.pipeline import load_config
from jellyroll.recon.options import ReconstructOptions
from jellyroll.report.html import Report
from jellyroll.report.run import _operando_section
from jellyroll.results.operando import PHASES, OperandoResult, read_operando
from jellyroll.results.store import is_up_to_date, stage_file
from jellyroll.unroll import SpiralTrace

N_STEPS = 3


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny twin's charge series (3 steps), analysed once (FBP: fast)."""
    folder = tmp_path_factory.mktemp("operando")
    twin = make_twin("aged_charged", SIZES["tiny"], seed=0)
    _write_operando(folder / "series", twin, N_STEPS, 0, Console(quiet=True))
    output = folder / "op.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_operando(
            folder / "series",
            output,
            reconstruct_options=ReconstructOptions(method="fbp"),
        )
    return folder / "series", output


def _truth_curve(truth: Path, mask_of) -> np.ndarray:
    with h5py.File(truth) as f:
        fractions = np.stack([f[f"entry/{p}/data"][()] for p in PHASES], axis=-1)
        zones = f["entry/zone_id/data"][()]
    mask = mask_of(fractions.sum(-1)[0], zones)
    amounts = fractions[:, mask].sum(axis=1)
    return amounts / amounts.sum(axis=1, keepdims=True)


def test_anode_share_curves_follow_the_truth(series: tuple[Path, Path]) -> None:
    """Within 0.05 at every step (the issue's bar): the line-shape crosstalk correction
    removes the LiC12 window's edge loss (up to 0.16 with plain Table 1 integrals)."""
    folder, output = series
    result = read_operando(output)
    truth = _truth_curve(folder / "truth.h5", lambda g, z: (g > 0.05) & (z == 0))
    assert np.abs(result.curves["anode"] - truth).max() < 0.05
    np.testing.assert_allclose(result.soc, np.linspace(0, 1, N_STEPS))
    present = np.isfinite(result.shares).all(axis=-1)
    np.testing.assert_allclose(result.shares[present].sum(axis=-1), 1.0, atol=1e-6)


def test_the_twins_truth_beside_the_steps_is_no_left_out_scan(series: tuple[Path, Path]) -> None:
    """The operando tutorial's twin writes its truth.h5 among the steps: every user was
    warned that it was taken for no step. It is marked as a twin's truth and not named;
    another HDF5 file there still is."""
    from jellyroll.operando.run import _left_out_note, series_scans

    folder, _ = series
    scans = series_scans(folder)
    assert _left_out_note(folder, scans) is None
    with h5py.File(folder / "notes.h5", "w") as f:
        f["text"] = "not a scan"
    try:
        said = _left_out_note(folder, scans)
        assert "taken for no step" in said and "notes.h5" in said and "truth" not in said
    finally:
        (folder / "notes.h5").unlink()


def test_the_damaged_zone_is_found_and_lags(series: tuple[Path, Path]) -> None:
    """The tiny twin's case-B zone: found within 60 um (1.5 map pixels) of the truth's core
    centre, lagging the anode by more than 0.1 of the charge (truth ~0.2), its core area
    within 25 % of the truth at every step where the core exceeds 4 map pixels (the
    issue's bar)."""
    folder, output = series
    result = read_operando(output)
    with h5py.File(folder / "truth.h5") as f:
        truth = read_table(f["entry/cores"])
    table = result.zones_table
    distance = np.hypot(
        table["x_um"] - truth["x_um"].iloc[0], table["y_um"] - truth["y_um"].iloc[0]
    )
    assert distance.min() < 60.0
    match = int(np.argmin(distance))
    assert table["lag_soc"].iloc[match] > 0.1
    assert result.cores["area_um2"].shape == (len(table), N_STEPS)
    true_area = truth["area_um2"].to_numpy()[truth["zone_id"] == truth["zone_id"].iloc[0]]
    big = true_area > 4 * (result.x_um[1] - result.x_um[0]) ** 2
    assert big.any()
    np.testing.assert_allclose(result.cores["area_um2"][match][big], true_area[big], rtol=0.25)
    for suffix in ("_contact_sheet.png", "_curves.png", "_cores.png", "_charge.gif"):
        assert output.with_name(output.stem + suffix).stat().st_size > 0


def test_a_rerun_redoes_only_the_steps_that_changed(series: tuple[Path, Path]) -> None:
    """One step's maps deleted: only they are made again, every other step file is kept."""
    folder, output = series
    stage_file(output.with_name("op_steps") / "step_001.h5", "maps").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recon = ReconstructOptions(method="fbp")
        done = run_operando(folder, output, reconstruct_options=recon, figures=False)
    assert done.ran == ["step 1 maps"]


def test_the_steps_are_mapped_with_the_maps_options_given(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """``[maps] analysis = "study"`` was ignored for the operando steps: their phase maps
    were the jellyroll window integrals (a linear background under each window) while the
    cell's own slice had the study's plain integrals, exit 0. Every step is now mapped with
    the options given, and a change of them is a change of the operando key."""
    study = MapsOptions(analysis="study")
    output = tmp_path / "op.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_operando(
            series[0], output, reconstruct_options=ReconstructOptions(method="fbp"),
            maps_options=study, figures=False,
        )  # fmt: skip
    steps = sorted(output.with_name("op_steps").glob("step_*.h5"))
    steps = [step for step in steps if step.name.count(".") == 1]
    assert steps
    for step in steps:
        assert is_up_to_date(stage_file(step, "maps"), maps_key(step, study))
    assert operando_key(series[0], OperandoOptions()) != operando_key(
        series[0], OperandoOptions(), maps_options=study
    )


def _log(tmp_path: Path, minutes: list[float]) -> Path:
    start = datetime(2026, 1, 1, 8, 0, tzinfo=UTC).timestamp()
    lines = ["time,voltage,current,charge"]
    for m in minutes:
        stamp = datetime.fromtimestamp(start + 60 * m, UTC).isoformat()
        lines.append(f"{stamp},3.7,1.0,{m / 60:.6f}")
    path = tmp_path / "log.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_log_gap_and_scan_outside_give_nan_and_a_message(tmp_path: Path) -> None:
    """Scans at 10 min (inside), 45 min (in a 30-min gap) and 200 min (after the log):
    the first gets 10/120 of the charge, the others NaN with a message naming the step."""
    minutes = [*range(0, 31), *range(61, 121)]
    log = read_potentiostat_log(_log(tmp_path, [float(m) for m in minutes]))
    t0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC).timestamp()
    starts = t0 + 60 * np.array([10.0, 45.0, 200.0])
    soc, notes = soc_from_log(log, starts, capacity_mah=None, max_gap_s=300)
    assert soc[0] == pytest.approx(10 / 120, rel=1e-4)  # charge written to 6 decimals
    assert np.isnan(soc[1:]).all()
    assert "step 1" in notes[0] and "gap" in notes[0]
    assert "step 2" in notes[1] and "outside the log" in notes[1]


def test_mpt_export_is_read(tmp_path: Path) -> None:
    path = tmp_path / "charge.mpt"
    header = [
        "EC-Lab ASCII FILE",
        "Nb header lines : 4",
        "Acquisition started on : 01/02/2026 08:00:00.000",
        "mode\ttime/s\tEwe/V\tI/mA\t(Q-Qo)/mA.h",
    ]
    rows = [f"1\t{t:.1f}\t3,7\t1,0\t{t / 3600:.6f}" for t in (0.0, 60.0, 120.0)]
    path.write_text("\n".join(header + rows) + "\n", encoding="latin-1")
    log = read_potentiostat_log(path)
    assert log.time_s[0] == datetime(2026, 1, 2, 8, 0, tzinfo=UTC).timestamp()
    np.testing.assert_allclose(log.charge_mAh, [0.0, 1 / 60, 2 / 60], atol=1e-6)  # 6 decimals


def test_line_crosstalk_recovers_known_shares() -> None:
    """Patterns made of three pseudo-Voigt lines with known heights: the fitted line shape
    and the inverted crosstalk give the heights' shares back to 1e-3."""
    q = np.linspace(1.5, 2.1, 150)
    truth = phases.LineShape((1.698, 1.790, 1.873), 0.025, 0.3)
    heights = np.array([[0.0, 0.2, 0.8], [0.1, 0.6, 0.3], [0.5, 0.5, 0.0]])
    patterns = heights @ truth.lines(q) + 0.05
    fitted = phases.fit_graphite_lines(q, patterns)
    from jellyroll.phases import GRAPHITE_PHASES, TABLE1_WINDOWS, window_integrals

    windows = {name: TABLE1_WINDOWS[name] for name in GRAPHITE_PHASES}
    integrals = window_integrals(q, patterns, windows)
    shares = core.shares(phases.graphite_amounts(integrals, fitted.crosstalk(q)))
    np.testing.assert_allclose(shares, heights / heights.sum(1, keepdims=True), atol=1e-3)


@pytest.mark.parametrize("stretch", [0.975, 1.025])
def test_graphite_lines_off_their_positions_are_refused(stretch: float) -> None:
    """The patterns of the test above on a q axis 2.5 % off (a detector distance 2-3 %
    off): every line sat at the edge of its 0.02 1/A and the tiny twin's anode reached half
    lithiation at 0.69 instead of 0.55 (no damaged zone at 3 %), exit 0. Refused; the
    positions 1 % off (0.018 1/A, within the freedom) are still fitted."""
    q = np.linspace(1.5, 2.1, 150)
    truth = phases.LineShape((1.698, 1.790, 1.873), 0.025, 0.3)
    heights = np.array([[0.0, 0.2, 0.8], [0.1, 0.6, 0.3], [0.5, 0.5, 0.0]])
    with pytest.raises(ValueError, match=r"edge of the 0\.02 1/A .*PONI distance"):
        phases.fit_graphite_lines(q, heights @ truth.lines(q / stretch) + 0.05)
    fitted = phases.fit_graphite_lines(q, heights @ truth.lines(q / 1.01) + 0.05)
    np.testing.assert_allclose(fitted.centres_A, 1.01 * np.array(truth.centres_A), atol=1e-3)


def test_a_line_absent_from_the_series_may_sit_anywhere() -> None:
    """A charge stopped before LiC6 forms: its line has no height, and noise may put it at
    the edge of its freedom; only a line that carries signal is held to its position
    (noise 4 % of the strongest line per bin, as at the edge of what the check tolerates)."""
    q = np.linspace(1.5, 2.1, 150)
    truth = phases.LineShape((1.698, 1.790, 1.873), 0.025, 0.3)
    heights = np.array([[0.0, 0.0, 1.0], [0.0, 0.5, 0.5], [0.0, 0.9, 0.1]])
    rng = np.random.default_rng(0)
    for _ in range(5):
        noise = 0.04 * rng.standard_normal((3, q.size))
        phases.fit_graphite_lines(q, heights @ truth.lines(q) + 0.05 + noise)


def test_shared_centre_ignores_drift() -> None:
    """Two steps of a point object at different places: one axis for both."""
    angles = np.linspace(0, 180, 30, endpoint=False)
    t = np.linspace(-1, 1, 101)
    sinograms = []
    for x0, y0 in ((0.2, -0.1), (0.35, 0.05)):
        theta = np.deg2rad(angles)[:, None]
        centre = 0.03 + x0 * np.cos(theta) + y0 * np.sin(theta)
        sinograms.append(np.exp(-((t[None] - centre) ** 2) / 0.002))
    assert core.shared_rotation_centre(sinograms, [angles, angles], t) == pytest.approx(
        0.03, abs=1e-3
    )


def test_soc_at_half_interpolates() -> None:
    """Half-way between first (0) and last (0.6) is 0.3: a quarter of the way from 0.2 to
    0.6, so a quarter of the way from SOC 0.5 to 1."""
    assert core.soc_at_half(np.array([0, 0.5, 1.0]), np.array([0, 0.2, 0.6])) == pytest.approx(
        0.625
    )
    assert np.isnan(core.soc_at_half(np.array([0, 1.0]), np.array([0.5, 0.5])))


def test_a_cell_of_jellyroll_run_may_name_an_operando_series(tmp_path: Path) -> None:
    """Paths resolve against the configuration's folder; the [operando] table validates."""
    path = tmp_path / "run.toml"
    path.write_text(
        '[[cells]]\nname = "a"\nwaxs = "w.h5"\nsaxs = "s.h5"\noperando = "series"\n'
        'operando_log = "log.csv"\n[operando]\nring_width_um = 60.0\n'
    )
    config = load_config(path)
    assert config.cells[0].operando == (tmp_path / "series").resolve()
    assert config.cells[0].operando_log == (tmp_path / "log.csv").resolve()
    assert config.operando.ring_width_um == 60.0


def test_turn_labels_follow_an_archimedean_spiral() -> None:
    """A traced spiral r = 10 + 8 w / 2 pi (px) over 3 turns: every pixel on the layer
    gets the turn its winding angle says."""
    winding = np.linspace(0.0, 6 * np.pi, 2000)
    trace = SpiralTrace(
        centre=(50.0, 50.0), pixel_size_um=1.0, pitch_um=8.0, direction=1,
        winding_rad=winding, radius_px=10 + 8 * winding / (2 * np.pi),
        strength=np.ones_like(winding),
    )  # fmt: skip
    labels = core.turn_labels((101, 101), trace)
    on_layer = trace.xy_px[::7].round().astype(int)
    expected = np.floor(winding[::7] / (2 * np.pi)).astype(int)
    got = labels[on_layer[:, 1], on_layer[:, 0]]
    interior = (winding[::7] % (2 * np.pi) > 0.2) & (winding[::7] % (2 * np.pi) < 6.0)
    np.testing.assert_array_equal(got[interior], expected[interior])


def test_drift_is_measured_and_undone() -> None:
    """A smooth slice moved by (1.3, -0.7) px: the shift is found to 0.05 px and undoing it
    brings the image back (interior within 2 % of its range; the edges were cut off)."""
    rows, cols = np.indices((64, 64))
    image = np.exp(-((rows - 30) ** 2 + (cols - 34) ** 2) / 60.0) + 0.5 * np.exp(
        -((rows - 20) ** 2 + (cols - 44) ** 2) / 20.0
    )
    moved = core.apply_shift(image, np.array([1.3, -0.7]))
    shifts = core.drift_shifts(np.stack([image, moved]))
    np.testing.assert_allclose(shifts[1], [-1.3, 0.7], atol=0.05)
    back = core.apply_shift(moved, shifts[1])
    assert np.abs(back - image)[8:-8, 8:-8].max() < 0.02 * image.max()


def test_saxs_zones_are_disks_of_1_5_equivalent_radii() -> None:
    """A 60 um agglomerate on a 10 um grid: a disk of 45 um radius, area within one ring of
    pixels of pi 45^2."""
    axis = (np.arange(41) - 20) * 10.0
    table = pd.DataFrame({"x_um": [0.0], "y_um": [50.0], "equivalent_diameter_um": [60.0]})
    zones = core.disk_zones(table, axis, axis)
    assert abs(zones.sum() * 100.0 - np.pi * 45**2) < 2 * np.pi * 45 * 10
    rows, cols = np.nonzero(zones)
    assert axis[cols].mean() == pytest.approx(0.0) and axis[rows].mean() == pytest.approx(50.0)


def test_a_series_of_one_scan_is_refused_in_one_line(series: tuple[Path, Path], tmp_path) -> None:
    """Exit code 1 and one line naming the folder and what a series needs."""
    folder, _ = series
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "step_000_waxs.h5").write_bytes((folder / "step_000_waxs.h5").read_bytes())
    result = CliRunner().invoke(app, ["operando", str(lone), "-o", str(tmp_path / "o.h5")])
    assert result.exit_code == 1
    assert "needs at least two scans" in result.output and str(lone) in result.output


def test_the_report_shows_the_charge_series(series: tuple[Path, Path]) -> None:
    """The report's operando section: the contact sheet, the curves and the cores, each a
    figure of its own, and the zone table."""
    report = Report("operando")
    _operando_section(report, "aged <charged>", series[1])
    page = report.render()
    for name in ("operando_sheet", "operando_curves", "operando_cores"):
        assert f'data-name="{name}"' in page
    assert "aged &lt;charged&gt;" in page and "<table>" in page


ANODE_POOR_SHARES = (1.0, 0.8, 0.5, 0.2, 0.0)
"""The regular anode's poorly lithiated share at the steps of the synthetic charge."""
CORE_RADII = (1.0, 1.0, 0.9, 0.7, 0.5)
"""The zone's poorly lithiated core at those steps, in radii of the zone."""


def _shrinking_zone(
    centre_px: tuple[float, float],
    semi_axes_px: tuple[float, float],
    angle_deg: float,
    blur_px: float,
    noise: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Amounts (5, 40, 40, 3) of a coating filling every pixel, holding an elliptical zone
    (``centre_px`` in columns, rows of the fine grid) whose core shrinks while the anode
    lithiates, blurred by a Gaussian of ``blur_px`` and noised; and the true core area (px:
    the zone's area weighted by its poorly lithiated share) per step."""
    n, sub = 40, 8
    fine = (np.arange(n * sub) + 0.5) / sub
    rows, cols = np.meshgrid(fine, fine, indexing="ij")
    angle = np.deg2rad(angle_deg)
    dx, dy = cols - centre_px[0], rows - centre_px[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    radius = np.hypot(u / semi_axes_px[0], v / semi_axes_px[1])
    amounts, truth = [], []
    for anode_poor, core_radius in zip(ANODE_POOR_SHARES, CORE_RADII, strict=True):
        poor_fine = np.where(radius < core_radius, 1.0, anode_poor)
        truth.append(np.where(radius < 1.0, poor_fine, 0.0).sum() / sub**2)
        poor = poor_fine.reshape(n, sub, n, sub).mean(axis=(1, 3))
        step = np.stack([np.zeros_like(poor), 1.0 - poor, poor], axis=-1)
        blurred = ndimage.gaussian_filter(step, (blur_px, blur_px, 0))
        amounts.append(blurred + rng.normal(0.0, noise, step.shape))
    return np.asarray(amounts), np.asarray(truth)


def _measured_cores(amounts: np.ndarray, zone: np.ndarray, ring_px: int) -> list[core.Core]:
    """The cores of ``zone`` summed over it and a ring of ``ring_px``, against the anode in
    the next 2 pixels (40 um pixels)."""
    footprint = ndimage.generate_binary_structure(2, 2)
    near = ndimage.binary_dilation(zone, footprint, iterations=ring_px)
    around = ndimage.binary_dilation(near, footprint, iterations=2) & ~near
    axis = np.arange(zone.shape[0]) * 40.0
    scale = core.filling_scale(amounts.sum(axis=-1).mean(axis=0), np.ones(zone.shape, bool))
    return core.zone_cores(amounts, near, around, scale, axis, axis)


@pytest.mark.parametrize("blur_px", [0.7, 1.5])
def test_core_area_is_kept_by_the_blur(blur_px: float) -> None:
    """A zone of 14 px (ellipse of 2.5 x 1.8 px semi-axes, partly covering its edge
    pixels) whose core shrinks while the anode lithiates, blurred by a Gaussian of
    ``blur_px`` and noised (0.01 of a full pixel), the zone found from its lag: the core area
    (the zone's area weighted by its poorly lithiated share) within 10 % at every step
    (measured: 1-8 % over three noise draws and blurs of 0.7-1.5 px; the rest is the noise
    of the zone's graphite, weighed where the anode has lithiated by 0.2 only), its centre
    within a quarter pixel. The share summed over the thresholded zone's pixels is 43-49 %
    off here."""
    rng = np.random.default_rng(1)
    amounts, truth = _shrinking_zone((19.3, 20.6), (2.5, 1.8), 30.0, blur_px, 0.01, rng)
    soc = np.linspace(0.0, 1.0, len(truth))
    everywhere = np.ones(amounts.shape[1:3], bool)
    lag = core.lag_map(core.shares(amounts)[..., 2], soc, everywhere)
    cores = _measured_cores(amounts, core.zone_labels(lag, 0.1, 2) == 1, ring_px=3)
    area_px = np.array([c.area_um2 for c in cores]) / 40.0**2
    np.testing.assert_allclose(area_px, truth, rtol=0.10)
    # pixel k spans [k, k + 1) of the fine grid: the centre sits at (18.8, 20.1) px
    for found in cores:
        assert abs(found.x_um - 18.8 * 40) < 10 and abs(found.y_um - 20.1 * 40) < 10


def test_a_core_first_weighed_late_in_the_charge_gives_the_steps_before_no_area() -> None:
    """The same zone at the first and last steps only: the last step weighed its core, and
    step 0 was given the same area for the whole zone (0.22 of its true area), exit 0. A
    first weighing step with the anode over half lithiated leaves the steps before it
    without an area; one at 0.2 (the 5-step series) weighs them as before."""
    amounts, truth = _shrinking_zone(
        (19.3, 20.6), (2.5, 1.8), 30.0, 0.7, 0.0, np.random.default_rng(1)
    )
    zone = np.zeros(amounts.shape[1:3], bool)
    zone[18:23, 16:22] = True
    ends = _measured_cores(amounts[[0, -1]], zone, ring_px=3)
    assert np.isnan(ends[0].area_um2)
    assert ends[1].area_um2 / 1600 == pytest.approx(truth[-1], rel=0.1)
    early = _measured_cores(amounts[[0, 1, -1]], zone, ring_px=3)
    assert early[0].area_um2 / 1600 == pytest.approx(truth[0], rel=0.1)
    assert np.isnan(core.shrink_rate(np.array([0.0, 1.0]), np.array([c.area_um2 for c in ends])))


@settings(max_examples=20, deadline=None)
@given(
    centre=st.tuples(st.floats(17.0, 23.0), st.floats(17.0, 23.0)),
    semi_axes=st.tuples(st.floats(1.0, 4.0), st.floats(1.0, 4.0)),
    angle=st.floats(-90.0, 90.0),
    blur_px=st.floats(0.0, 1.5),
)
def test_core_area_does_not_depend_on_the_blur(
    centre: tuple[float, float], semi_axes: tuple[float, float], angle: float, blur_px: float
) -> None:
    """Without noise, any ellipse of 1-4 px semi-axes anywhere in its pixels, any blur up to
    1.5 px, summed over a neighbourhood 4 px beyond it: the core area within 2 % of a full
    pixel plus 2 % of the truth at every step (what the Gaussian's tail beyond 4 px and
    the pixels' partial cover leave)."""
    amounts, truth = _shrinking_zone(
        centre, semi_axes, angle, blur_px, 0.0, np.random.default_rng()
    )
    fine_centre = (np.array(centre) - 0.5).round().astype(int)
    zone = np.zeros(amounts.shape[1:3], bool)
    zone[fine_centre[1], fine_centre[0]] = True
    zone = ndimage.binary_dilation(zone, iterations=int(np.ceil(max(semi_axes))))
    area_px = np.array([c.area_um2 for c in _measured_cores(amounts, zone, ring_px=4)]) / 1600
    np.testing.assert_allclose(area_px, truth, rtol=0.02, atol=0.02)


def _stamped_scans(folder: Path, names_minutes: dict[str, float]) -> list[Path]:
    """Empty HDF5 scans recording only ``/entry/start_time`` (minutes after 8:00)."""
    folder.mkdir()
    start = datetime(2026, 1, 1, 8, 0, tzinfo=UTC).timestamp()
    paths = []
    for name, minute in names_minutes.items():
        path = folder / name
        with h5py.File(path, "w") as f:
            f["entry/start_time"] = datetime.fromtimestamp(start + 60 * minute, UTC).isoformat()
            f["entry/instrument/detector/data"] = np.zeros((1, 2, 2), np.float32)
        paths.append(path)
    return paths


def test_steps_run_in_time_order(tmp_path: Path) -> None:
    """A folder sorted by name put op_10 before op_2: the curves ran along a shuffled time
    axis (half lithiation 0.18 instead of 0.31, a lag of the wrong sign), exit 0."""
    scans = _stamped_scans(tmp_path / "op", {"op_1.h5": 0, "op_2.h5": 20, "op_10.h5": 40})
    assert [p.name for p in series_scans(tmp_path / "op")] == ["op_1.h5", "op_2.h5", "op_10.h5"]
    with pytest.raises(ValueError, match=r"op_2\.h5 \(step 2\) started before .*op_10\.h5"):
        series_scans([scans[0], scans[2], scans[1]])
    with pytest.raises(ValueError, match="given twice"):
        series_scans([scans[0], scans[0]])
    # names that disagree with the recorded times: the times win, and a note says so
    _stamped_scans(tmp_path / "renamed", {"b_1.h5": 40, "b_2.h5": 0, "b_3.h5": 20})
    renamed = series_scans(tmp_path / "renamed")
    assert [p.name for p in renamed] == ["b_2.h5", "b_3.h5", "b_1.h5"]
    note = _order_note(tmp_path / "renamed", renamed)
    assert note is not None and "by their recorded start times" in note
    assert "step 0 is b_2.h5, by name b_1.h5" in note
    assert _order_note(tmp_path / "op", series_scans(tmp_path / "op")) is None
    assert _left_out_note(tmp_path / "op", series_scans(tmp_path / "op")) is None


def test_every_hdf5_step_of_a_folder_is_taken_and_the_others_named(tmp_path: Path) -> None:
    """A step named .H5 was left out of the series (the suffix compared in lower case), and
    an HDF5 file of the folder that holds no step (a truth file, a scan still being
    written) without a word: one step fewer, exit 0. Now every step is taken, and a note
    names the files taken for none."""
    folder = tmp_path / "op"
    _stamped_scans(folder, {"op_1.h5": 0, "op_2.H5": 20, "op_3.hdf5": 40})
    with h5py.File(folder / "truth.h5", "w") as f:
        f["entry/title"] = "not a step"
    assert [p.name for p in series_scans(folder)] == ["op_1.h5", "op_2.H5", "op_3.hdf5"]
    note = _left_out_note(folder, series_scans(folder))
    assert note is not None and note.endswith("patterns): truth.h5")


def test_a_list_of_steps_out_of_name_order_is_noted(tmp_path: Path) -> None:
    """A folder whose scans' names contradict their start times was ordered by the times,
    and a list without start times in a shell glob's order (op_1, op_10, op_2) was taken
    as given, both without a word: the order stands (the only one along the times; a
    list's is the user's), and a note names the first step out of name order."""
    scans = [tmp_path / name for name in ("op_1.h5", "op_10.h5", "op_2.h5")]
    note = _order_note([str(p) for p in scans], scans)
    assert note is not None and "in the order given" in note
    assert "step 1 is op_10.h5, by name op_2.h5" in note
    assert _order_note(scans, [scans[0], scans[2], scans[1]]) is None


@pytest.mark.parametrize(("charge_sign", "capacity"), [(-1.0, None), (1.0, 0.1)])
def test_a_state_of_charge_outside_0_1_is_refused(
    tmp_path: Path, charge_sign: float, capacity: float | None
) -> None:
    """A log counting charge negative (0 -> -1), or a capacity in Ah given as mAh (up to
    20), ran every curve along a wrong axis with exit 0."""
    log = read_potentiostat_log(_log(tmp_path, [float(m) for m in range(121)]))
    log = type(log)(
        log.source, log.time_s, log.voltage_V, log.current_mA, charge_sign * log.charge_mAh
    )
    starts = datetime(2026, 1, 1, 8, 0, tzinfo=UTC).timestamp() + 60 * np.array([10.0, 90.0])
    with pytest.raises(ValueError, match=r"log\.csv: the state of charge .* within 0-1"):
        soc_from_log(log, starts, capacity_mah=capacity, max_gap_s=300)


def test_an_output_over_an_input_is_refused_leaving_nothing(tmp_path: Path) -> None:
    """-o one of the scans was refused, but only after its steps folder was made."""
    scans = _stamped_scans(tmp_path / "op", {"op_1.h5": 0, "op_2.h5": 20})
    with pytest.raises(ValueError, match=r"refusing to write .*op_2\.h5: it is one of the inputs"):
        run_operando(scans, scans[1], figures=False)
    assert not (tmp_path / "op" / "op_2_steps").exists()


def test_a_file_that_is_no_hdf5_in_the_series_or_as_saxs_maps_is_named(tmp_path: Path) -> None:
    """An empty file among the steps was counted as a scan without a start time ("bad: 1 of
    the 2 scans ... has a state of charge"), and a PNG given as --saxs failed after every
    step was reconstructed, naming no file. Both are named before any work."""
    scans = _stamped_scans(tmp_path / "op", {"op_1.h5": 0, "op_2.h5": 20})
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.h5 \(step 0\): not a readable HDF5 scan"):
        run_operando([empty, scans[1]], tmp_path / "a.h5", figures=False)
    with pytest.raises(ValueError, match=r"empty\.h5 \(--saxs\): not a readable HDF5 file"):
        run_operando(scans, tmp_path / "b.h5", saxs_maps=empty, figures=False)
    assert not (tmp_path / "b_steps").exists()


def test_scans_where_the_steps_runs_go_are_refused_leaving_them(tmp_path: Path) -> None:
    """Scans numbered from 1 in the steps folder (``op_steps/step_001.h5`` ...): step 0's run
    replaced scan 1 and step 1's scan 2, exit 0 until a later step failed. A file there that
    is no input and no run is refused as well (it would be replaced)."""
    scans = _stamped_scans(tmp_path / "op_steps", {f"step_00{k}.h5": 20 * k for k in (1, 2, 3)})
    before = [path.read_bytes() for path in scans]
    with pytest.raises(ValueError, match=r"op_steps is where the run files of the steps go"):
        run_operando(tmp_path / "op_steps", tmp_path / "op.h5", figures=False)
    other = _stamped_scans(tmp_path / "x_steps", {"step_000.h5": 0})[0]
    with pytest.raises(ValueError, match=r"step_000\.h5 is where the run's index file goes"):
        run_operando(tmp_path / "op_steps", tmp_path / "x.h5", figures=False)
    assert [path.read_bytes() for path in scans] == before
    assert h5py.File(other)["entry/start_time"][()]


def test_damaged_zones_from_a_negated_saxs_map_are_refused(tmp_path: Path, saxs_maps_run) -> None:
    """A negated SAXS map's holes were taken as case-B agglomerates: damaged zones where the
    anode is sound, exit 0. The message names the file."""
    y, x = np.mgrid[:40, :40] - 19.5
    negated = -((np.hypot(x, y) < 16) + 4.0 * (np.hypot(x - 5, y) < 3))
    run = saxs_maps_run(tmp_path, negated.astype(float))
    axis = (np.arange(40) - 19.5) * 20.0
    with pytest.raises(ValueError, match=r"saxs\.h5.*mostly below zero"):
        _saxs_zones(run, axis, axis)


def test_scans_that_record_one_start_time_are_refused(tmp_path: Path) -> None:
    """Scans that all recorded one start time (a template's) were matched to one moment of
    the potentiostat log: every state of charge 0, half lithiation at 0 and no damaged
    zone on the tiny twin (one zone, lag 0.19, with their own times), exit 0."""
    scans = _stamped_scans(tmp_path / "op", {"op_1.h5": 0, "op_2.h5": 20, "op_3.h5": 20})
    with pytest.raises(ValueError, match=r"op_3\.h5 \(step 2\) and .*op_2\.h5 .* same"):
        series_scans(tmp_path / "op")
    with pytest.raises(ValueError, match=r"same /entry/start_time"):
        series_scans(scans)


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_a_state_of_charge_recorded_in_percent_is_refused(tmp_path: Path, scale: float) -> None:
    """Scans recording the state of charge in percent (0, 50, 100) ran the curves along an
    axis 100 times too long: on the tiny twin 36 damaged zones instead of one, lags of
    0.4-19 labelled fractions of full charge, exit 0. Fractions (scale 1) still pass."""
    scans = _stamped_scans(tmp_path / "op", {"op_1.h5": 0, "op_2.h5": 20, "op_3.h5": 40})
    for scan, soc in zip(scans, [0.0, 0.5, 1.0], strict=True):
        with h5py.File(scan, "r+") as f:
            f["entry/sample/state_of_charge"] = scale * soc
    if scale == 1.0:
        timeline = build_timeline(scans, None, capacity_mah=None, max_gap_s=300)
        np.testing.assert_array_equal(timeline.soc, [0.0, 0.5, 1.0])
        return
    with pytest.raises(
        ValueError, match=r"op_2\.h5::/entry/sample/state_of_charge is 50 .*percent"
    ):
        build_timeline(scans, None, capacity_mah=None, max_gap_s=300)


def _axis_moved(scan: Path, steps: int) -> None:
    """Move ``scan``'s rotation axis by ``steps`` translation steps, its translation grid
    unchanged (every line of frames shifted along the translations; edges repeat)."""
    with h5py.File(scan, "r+") as f:
        angle = f["entry/sample/rotation_angle"][()]
        translation = np.round(f["entry/sample/translation"][()], 6)
        for name in ("integrated/intensity", "instrument/diode/data", "monitor/data"):
            data = f[f"entry/{name}"][()]
            moved = data.copy()
            for value in np.unique(angle):
                line = np.flatnonzero(angle == value)
                line = line[np.argsort(translation[line])]
                moved[line] = data[line[np.clip(np.arange(line.size) - steps, 0, line.size - 1)]]
            f[f"entry/{name}"][...] = moved


def _scans_copied(series: tuple[Path, Path], folder: Path) -> list[Path]:
    """Copies in ``folder`` of the series' scans, for a test that edits them."""
    scans = []
    for source in sorted(series[0].glob("step_*_waxs.h5")):
        scans.append(folder / source.name)
        scans[-1].write_bytes(source.read_bytes())
    return scans


def _refused(scans: list[Path], folder: Path, said: str) -> None:
    """The series of ``scans`` (FBP, no figures) is refused with a message matching ``said``."""
    with pytest.raises(ValueError, match=said):
        run_operando(
            scans,
            folder / "op.h5",
            reconstruct_options=ReconstructOptions(method="fbp"),
            figures=False,
        )


def test_a_step_integrated_on_a_wrong_q_axis_is_refused_naming_its_scan(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """One step's patterns integrated with a wavelength 1 % off: the refusal named the
    step's run file (OUTPUT_steps/step_002.h5) and advised `jellyroll reduce --poni`, which
    the operando refuses for patterns integrated already. It names the scan and says to
    integrate its frames again."""
    scans = _scans_copied(series, tmp_path)
    with h5py.File(scans[2], "r+") as f:
        f["entry/integrated/q"][...] = f["entry/integrated/q"][()] * 1.01
    said = r"step_002_waxs\.h5 \(step 2\): the q axis is off .*integrate its frames again"
    _refused(scans, tmp_path, said)


def test_a_step_scanned_at_fewer_angles_is_refused(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """One step keeping a third of its angles: its reconstruction's streaks carried its
    graphite signal off the anode (0.70 of the others' over it), a note blamed the beam,
    and the step was scaled up: the zones' cores read 30 % low, exit 0. Refused, naming
    the step and its angles."""
    scans = _scans_copied(series, tmp_path)
    with h5py.File(scans[1], "r+") as f:
        angles = f["entry/sample/rotation_angle"][()]
        kept = np.isin(angles, np.unique(angles)[::3])
        frames = []
        f.visititems(
            lambda name, obj: (
                frames.append(name)
                if isinstance(obj, h5py.Dataset) and obj.shape[:1] == angles.shape
                else None
            )
        )
        for name in frames:
            values, attrs = f[name][()][kept], dict(f[name].attrs)
            del f[name]
            f[name] = values
            f[name].attrs.update(attrs)
    said = r"step_001\.h5 \(step 1\): scanned at \d+ angles, the series' median \d+"
    _refused(scans, tmp_path, said)


def test_a_rotation_axis_that_moves_between_steps_is_refused(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """The axis of two of three steps moved by 2 translation steps (80 um): the one shared
    axis sat between them, the maps of every step were blurred and the damaged zone's lag
    read 0.13 instead of 0.19 (13 pixels instead of 6), exit 0. Fitted alone the steps'
    axes agree within 0.06 steps when nothing moved, so 0.5 steps tells them apart."""
    scans = _scans_copied(series, tmp_path)
    for scan in scans[1:]:
        _axis_moved(scan, 2)
    _refused(scans, tmp_path, r"step_000_waxs\.h5 \(step 0\): its rotation axis")


def test_steps_on_other_translation_grids_are_refused_naming_the_scan(tmp_path: Path) -> None:
    """The refusal named the intermediate OPERANDO_steps/step_NNN.h5, a file the user never
    gave; it now names the scans."""
    from jellyroll.operando.run import _shared_centre
    from jellyroll.results.run import Sinogram, write_sinogram

    runs, scans = [], []
    for k, step_mm in enumerate((0.01, 0.02)):
        data = np.ones((4, 20, 2), np.float32)
        sinogram = Sinogram(
            data, data, np.arange(4) * 45.0, np.arange(20) * step_mm, np.array([1.0, 2.0])
        )
        runs.append(write_sinogram(tmp_path / f"step_{k:03d}.h5", sinogram, {}))
        scans.append(tmp_path / f"op_{k}.h5")
    with pytest.raises(ValueError, match=r"op_1\.h5: its translations differ from those of .*op_0"):
        _shared_centre(runs, scans)


def _mpt_log(path: Path, started: str, hours: float) -> Path:
    """An EC-Lab export of a constant-current charge over ``hours`` from ``started``
    (local time, as EC-Lab writes it)."""
    header = [
        "EC-Lab ASCII FILE",
        "Nb header lines : 4",
        f"Acquisition started on : {started}",
        "mode\ttime/s\tEwe/V\tI/mA\t(Q-Qo)/mA.h",
    ]
    seconds = np.arange(0.0, hours * 3600 + 1, 60.0)
    rows = [f"1\t{t:.1f}\t3.7\t1.0\t{t / 3600:.6f}" for t in seconds]
    path.write_text("\n".join(header + rows) + "\n", encoding="latin-1")
    return path


def _zoned_scans(folder: Path, stamps: list[str]) -> list[Path]:
    """Scans recording ``/entry/start_time`` (as given) and one frame."""
    folder.mkdir()
    paths = []
    for k, stamp in enumerate(stamps):
        path = folder / f"op_{k}.h5"
        with h5py.File(path, "w") as f:
            f["entry/start_time"] = stamp
            f["entry/instrument/detector/data"] = np.zeros((1, 2, 2), np.float32)
        paths.append(path)
    return paths


def test_a_log_without_time_zone_is_read_on_the_scans_clock(tmp_path: Path) -> None:
    """EC-Lab writes local time without a zone; read as UTC beside scans at -02:00, the
    scans at 10:00 and 11:00 local sat 3 and 4 h into a 4 h charge instead of 1 and 2 h:
    states of charge 0.75 and 1.0 for 0.25 and 0.5, exit 0. The log now takes the scans'
    offset, and says so; a zoned log beside scans without a zone is refused."""
    log = read_potentiostat_log(_mpt_log(tmp_path / "c.mpt", "01/02/2026 09:00:00", 4.0))
    scans = _zoned_scans(
        tmp_path / "op", ["2026-01-02T10:00:00-02:00", "2026-01-02T11:00:00-02:00"]
    )
    timeline = build_timeline(scans, log, capacity_mah=None, max_gap_s=300)
    np.testing.assert_allclose(timeline.soc, [0.25, 0.5], atol=1e-5)  # charge to 6 decimals
    assert any("UTC offset -2 h" in note for note in timeline.warnings)
    # scans without a zone beside a local log: one clock, read as it is
    naive = _zoned_scans(tmp_path / "naive", ["2026-01-02T10:00:00", "2026-01-02T11:00:00"])
    soc = build_timeline(naive, log, capacity_mah=None, max_gap_s=300).soc
    np.testing.assert_allclose(soc, [0.25, 0.5], atol=1e-5)
    zoned = log.at_offset(0.0)  # as from Unix seconds
    with pytest.raises(ValueError, match=r"times carry a time zone .* scans' start times do not"):
        build_timeline(naive, zoned, capacity_mah=None, max_gap_s=300)


@pytest.mark.parametrize(
    ("started", "scan_day", "said"),
    [
        ("04/01/2026 09:00:00.000", "2026-01-04", "read day first"),
        ("04/01/2026 09:00:00", "2026-04-01", None),
        ("13/01/2026 09:00:00", "2026-01-13", None),
    ],
)
def test_an_mpt_date_is_read_in_the_order_that_places_it_at_the_scans(
    tmp_path: Path, started: str, scan_day: str, said: str | None
) -> None:
    """EC-Lab writes the start date in the PC's order. 04/01/2026 of a charge on 4
    January was read as 1 April, and the refusal blamed summer time; day first without a
    fraction of a second (13/01/2026 09:00:00) was refused as no EC-Lab date. The reading
    that places the log at the scans is taken (day first with a note); where both or
    neither do, the order is refused as unknown."""
    log = read_potentiostat_log(_mpt_log(tmp_path / "c.mpt", started, 4.0))
    stamps = [f"{scan_day}T10:00:00+01:00", f"{scan_day}T11:00:00+01:00"]
    timeline = build_timeline(
        _zoned_scans(tmp_path / "op", stamps), log, capacity_mah=None, max_gap_s=300
    )
    np.testing.assert_allclose(timeline.soc, [0.25, 0.5], atol=1e-5)
    if said:
        assert any(said in note for note in timeline.warnings)
        elsewhere = _zoned_scans(tmp_path / "far", ["2026-07-04T10:00:00+01:00"])
        with pytest.raises(ValueError, match=r"neither places the log within a day of the scans"):
            build_timeline(elsewhere, log, capacity_mah=None, max_gap_s=300)


def test_a_scan_without_a_start_time_keeps_the_state_of_charge_it_records(
    tmp_path: Path,
) -> None:
    """Beside a log, a scan recording its state of charge (0.75) but no start time was kept
    with none, and the note said it had none. Its recorded value is taken, with a note."""
    log = read_potentiostat_log(_mpt_log(tmp_path / "c.mpt", "01/02/2026 09:00:00", 4.0))
    stamps = ["2026-01-02T10:00:00+01:00", "2026-01-02T11:00:00+01:00", "dropped"]
    scans = _zoned_scans(tmp_path / "op", stamps)
    with h5py.File(scans[2], "r+") as f:
        del f["entry/start_time"]
        f["entry/sample/state_of_charge"] = 0.75
    timeline = build_timeline(scans, log, capacity_mah=None, max_gap_s=300)
    np.testing.assert_allclose(timeline.soc, [0.25, 0.5, 0.75], atol=1e-5)
    assert any("the state of charge it records (0.75" in note for note in timeline.warnings)
    assert not any("no state of charge" in note for note in timeline.warnings)


def test_the_graphite_mask_follows_each_step_and_its_profile_is_read_by_slabs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The steps' mean graphite profiles were read at the mask of the registered series
    on each step's own, unregistered pixels (a step drifted by 3 px had 3 px of its mask
    off the coating), and from the step's whole (y, x, q) cube. The mask now moves back
    by the step's shift, and the profile is summed slab by slab from the file."""
    yy, xx = np.mgrid[:48, :48]
    first = ((yy - 24) ** 2 + (xx - 24) ** 2 < 12**2).astype(np.float64)
    moved = core.apply_shift(first, np.array([3.0, -2.0]))  # the step drifted
    shift = core.drift_shifts(np.stack([first, moved]))[1]
    on_step = core.mask_on_step(first > 0.5, shift)
    # the registered mask lands on the drifted disk, pixel for pixel but its rim
    assert np.count_nonzero(on_step != (moved > 0.5)) <= 4
    assert np.count_nonzero((first > 0.5) != (moved > 0.5)) > 100  # unmoved: its rim off
    cube = np.random.default_rng(0).random((48, 48, 5)).astype(np.float32)
    cube[..., 2] = np.nan
    cube[30, 20, 0] = np.nan
    with h5py.File(tmp_path / "cube.h5", "w") as f:
        dataset = f.create_dataset("d", data=cube, chunks=(4, 48, 5))
        monkeypatch.setattr(conventions, "SLAB_BYTES", 1)  # slabs of one chunk row
        found = conventions.masked_mean_profiles(dataset, {"graphite": on_step})["graphite"]
    expected = np.nanmean(np.where(on_step[..., None], cube, np.nan).reshape(-1, 5), axis=0)
    np.testing.assert_allclose(found[[0, 1, 3, 4]], expected[[0, 1, 3, 4]], rtol=1e-6)
    assert np.isnan(found[2])


def test_a_scan_that_records_its_end_is_read_at_its_middle(tmp_path: Path) -> None:
    """A scan integrates over its whole duration, but the log was read at its start: two
    30-minute scans during a 4 h charge read 0.25 and 0.5 where the scans saw 0.3125 and
    0.5625 on average, exit 0. With ``/entry/end_time`` they are read at their middle;
    without, at their start, with a note."""
    log = read_potentiostat_log(_mpt_log(tmp_path / "c.mpt", "01/02/2026 09:00:00", 4.0))
    scans = _zoned_scans(tmp_path / "op", ["2026-01-02T10:00:00", "2026-01-02T11:00:00"])
    for path, end in zip(scans, ["2026-01-02T10:30:00", "2026-01-02T11:30:00"], strict=True):
        with h5py.File(path, "a") as f:
            f["entry/end_time"] = end
    timeline = build_timeline(scans, log, capacity_mah=None, max_gap_s=300)
    np.testing.assert_allclose(timeline.soc, [0.3125, 0.5625], atol=1e-5)  # charge to 6 dp
    np.testing.assert_allclose(timeline.time_s, [900.0, 4500.0])
    assert not any("end_time" in note for note in timeline.warnings)
    with h5py.File(scans[1], "a") as f:
        del f["entry/end_time"]
    timeline = build_timeline(scans, log, capacity_mah=None, max_gap_s=300)
    np.testing.assert_allclose(timeline.soc, [0.3125, 0.5], atol=1e-5)
    assert any("1 of 2 scans record no /entry/end_time" in note for note in timeline.warnings)
    with h5py.File(scans[1], "a") as f:
        f["entry/end_time"] = "2026-01-02T10:59:00"
    with pytest.raises(ValueError, match=r"op_1\.h5: /entry/end_time .* is before"):
        build_timeline(scans, log, capacity_mah=None, max_gap_s=300)


def test_start_times_mixing_a_utc_offset_and_none_are_refused(tmp_path: Path) -> None:
    """Scans at 10:00+02:00, 11:00 (no offset) and 12:00+02:00 beside a local log from
    9:00: the second was read as 11:00 UTC, two hours late. The folder ordered it last
    (time 3 h) and the log gave it a state of charge of 1.0 instead of 0.5, exit 0."""
    log = read_potentiostat_log(_mpt_log(tmp_path / "c.mpt", "01/02/2026 09:00:00", 4.0))
    stamps = ["2026-01-02T10:00:00+02:00", "2026-01-02T11:00:00", "2026-01-02T12:00:00+02:00"]
    scans = _zoned_scans(tmp_path / "op", stamps)
    with pytest.raises(ValueError, match=r"op_1\.h5::/entry/start_time .* no UTC offset"):
        build_timeline(scans, log, capacity_mah=None, max_gap_s=300)
    with pytest.raises(ValueError, match=r"op_1\.h5::/entry/start_time .* no UTC offset"):
        series_scans(tmp_path / "op")


def _edited_series_result(
    folder: Path, tmp_path: Path, edit: Callable[[int, h5py.File], None]
) -> OperandoResult:
    """The twin series' WAXS scans copied into ``tmp_path``, step ``k``'s file open for
    ``edit(k, file)``, analysed by FBP without figures (warnings silenced)."""
    scans = []
    for k, scan in enumerate(sorted(folder.glob("step_*_waxs.h5"))):
        scans.append(tmp_path / scan.name)
        scans[-1].write_bytes(scan.read_bytes())
        with h5py.File(scans[-1], "r+") as f:
            edit(k, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_operando(
            scans, tmp_path / "op.h5", reconstruct_options=ReconstructOptions(method="fbp"),
            figures=False,
        ).result  # fmt: skip


def test_a_step_without_a_diode_is_registered_like_the_others(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """The middle step's scan without its diode: its graphite map was cross-correlated with
    the first step's attenuation map, a shift of 5.25 px was applied to a cell that had not
    moved and 15 damaged zones were found instead of one, exit 0. Every step is now
    registered on one kind of map (the tiny twin does not drift: shifts within 0.5 px)."""

    def without_diode(k: int, f: h5py.File) -> None:
        if k == 1:
            del f["entry/instrument/diode"]

    result = _edited_series_result(series[0], tmp_path, without_diode)
    assert np.abs(result.shift_px).max() < 0.5
    assert int(result.zones.max()) == 1
    assert any("steps [1] have no attenuation map" in note for note in result.notes)


def test_steps_integrated_on_other_q_grids_are_unmixed_on_their_own(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """The last step integrated on bins 2 % wider (the detector moved: pyFAI's range over
    the whole detector changes): its graphite channels held 28 bins, not 29, and the
    analysis ended in NumPy's "inhomogeneous shape" error; on a grid of as many bins, its
    profile was read on the last step's q. Each step is now unmixed on its own q: the
    anode's curves within 0.05 of the truth at every step (the bar of the first test)."""

    def wider_bins(k: int, f: h5py.File) -> None:
        if k == N_STEPS - 1:
            q, data = f["entry/integrated/q"][()], f["entry/integrated/intensity"][()]
            wide = q[0] + 1.02 * (q - q[0])
            wide = wide[wide <= q[-1]]
            resampled = np.stack([np.interp(wide, q, row) for row in data])
            del f["entry/integrated/q"], f["entry/integrated/intensity"]
            f["entry/integrated/q"] = wide
            f["entry/integrated/intensity"] = resampled.astype(data.dtype)

    result = _edited_series_result(series[0], tmp_path, wider_bins)
    truth = _truth_curve(series[0] / "truth.h5", lambda g, z: (g > 0.05) & (z == 0))
    assert np.abs(result.curves["anode"] - truth).max() < 0.05


def test_a_series_without_times_is_refused_before_its_steps_are_made(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """The twin's scans without their start times and states of charge, no log, no SAXS
    maps: every step was reduced and reconstructed, then the lagging zones ended in
    NumPy's "zero-size array to reduction operation". Now refused at once, naming the
    folder and what to give, and no steps folder is left."""
    folder = tmp_path / "op"
    folder.mkdir()
    scans = []
    for scan in sorted(series[0].glob("step_*_waxs.h5")):
        scans.append(folder / scan.name)
        scans[-1].write_bytes(scan.read_bytes())
        with h5py.File(scans[-1], "r+") as f:
            del f["entry/start_time"], f["entry/sample/state_of_charge"]
    with pytest.raises(ValueError, match=r"op: 0 of the 3 scans .*\(--log\)"):
        run_operando(scans, tmp_path / "out.h5", figures=False)
    assert not (tmp_path / "out_steps").exists()


def test_lags_along_time_are_labelled_in_hours(series: tuple[Path, Path], tmp_path: Path) -> None:
    """The twin's scans without their states of charge (start times 20 min apart), no log:
    the curves run along time, and the CLI printed the anode's half lithiation at 0.369 h
    under "SOC at half lithiation" (its state of charge there is 0.56) and the file's
    defects/lag_soc held 0.09 h with no units. Both now say hours."""
    folder = tmp_path / "op"
    folder.mkdir()
    for scan in sorted(series[0].glob("step_*_waxs.h5")):
        (folder / scan.name).write_bytes(scan.read_bytes())
        with h5py.File(folder / scan.name, "r+") as f:
            del f["entry/sample/state_of_charge"]
    output = tmp_path / "op.h5"
    done = CliRunner().invoke(app, ["operando", str(folder), "-o", str(output), "--no-register"])
    assert done.exit_code == 0, done.output
    assert "time at half lithiation (h)" in done.output
    assert "SOC at half lithiation" not in done.output
    with h5py.File(output) as f:
        group = f["entry/operando"]
        assert group["soc"].attrs["units"] == "h"
        assert group["defects/lag_soc"].attrs["units"] == "h"
        assert group["regions/anode"].attrs["soc_units"] == "h"
        # every core field says its unit; the steps are found from any folder (they were
        # written relative to where the command ran)
        assert group["defects/core_area_um2"].attrs["units"] == "um^2"
        assert group["defects/core_orientation_deg"].attrs["units"] == "deg"
        assert all(Path(step.decode()).is_absolute() for step in group["steps"][()])
    report = Report("operando")
    _operando_section(report, "along time", output)
    page = report.render()
    assert "against the time (h)" in page
    assert "<th>lag (h)</th>" in page and "lag_soc" not in page


def test_a_state_of_charge_that_falls_along_the_series_is_refused(tmp_path: Path) -> None:
    """Scans without start times given in a shuffled list (states of charge 1, 0, 0.5), or
    a discharge in time order (1, 0.5, 0), ran the lags along a falling axis: no damaged
    zone on the tiny twin (one, lag 0.19, in order) and no half lithiation, exit 0. A log
    whose charge falls between the scans (a discharge) is refused too; a drift of the
    charge counter under 0.01 of the charge is not."""
    scans = _stamped_scans(tmp_path / "op", {"op_1.h5": 0, "op_2.h5": 20, "op_3.h5": 40})
    for scan, soc in zip(scans, [1.0, 0.5, 0.0], strict=True):
        with h5py.File(scan, "r+") as f:
            f["entry/sample/state_of_charge"] = soc
    with pytest.raises(ValueError, match=r"op_2\.h5 \(step 1\) has a state of charge of 0\.5"):
        build_timeline(scans, None, capacity_mah=None, max_gap_s=300)
    for scan in scans:
        with h5py.File(scan, "r+") as f:
            del f["entry/start_time"]
    with pytest.raises(ValueError, match=r"op_3\.h5 \(step 1\) .* less than the 1 of .*op_1"):
        build_timeline([scans[0], scans[2], scans[1]], None, capacity_mah=None, max_gap_s=300)
    timeline = build_timeline(scans[::-1], None, capacity_mah=None, max_gap_s=300)
    np.testing.assert_array_equal(timeline.soc, [0.0, 0.5, 1.0])
    # a log charging for 60 min, then discharging: the scans at 30, 60 and 90 min
    minutes = np.arange(121.0)
    charge = np.where(minutes <= 60, minutes, 120 - minutes) / 60
    lines = ["time,voltage,current,charge"]
    for m, q in zip(minutes, charge, strict=True):
        stamp = datetime(2026, 1, 1, 8, 0, tzinfo=UTC).timestamp() + 60 * m
        lines.append(f"{datetime.fromtimestamp(stamp, UTC).isoformat()},3.7,1.0,{q:.6f}")
    (tmp_path / "cycle.csv").write_text("\n".join(lines) + "\n")
    log = read_potentiostat_log(tmp_path / "cycle.csv")
    timed = _stamped_scans(tmp_path / "timed", {"a.h5": 30, "b.h5": 60, "c.h5": 90})
    with pytest.raises(ValueError, match=r"c\.h5 \(step 2\) .* \(from the log .*cycle\.csv\)"):
        build_timeline(timed, log, capacity_mah=None, max_gap_s=300)
    drift = type(log)(log.source, log.time_s, log.voltage_V, log.current_mA,
                      np.minimum(log.charge_mAh, 0.5) - 0.004 * (minutes >= 90))  # fmt: skip
    soc = build_timeline(timed, drift, capacity_mah=None, max_gap_s=300).soc
    np.testing.assert_allclose(soc, [1.0, 1.0, 0.992], atol=1e-6)


def test_two_steps_place_no_half_lithiation() -> None:
    """Between two steps the half-way point of any rising share is their midpoint: the
    tiny twin's first and last steps gave every region half lithiation at 0.5 and its
    damaged zone (found by its lag) a lag of 0.0, exit 0. Now NaN."""
    assert np.isnan(core.soc_at_half(np.array([0.0, 1.0]), np.array([0.0, 0.6])))
    assert np.isnan(core.soc_at_half(np.array([0.0, np.nan, 1.0]), np.array([0.0, 0.2, 0.6])))


def test_saxs_zones_off_the_grid_get_no_label(tmp_path: Path) -> None:
    """A case-B agglomerate of the diagnosis outside the operando maps' field (a narrower
    scan than the cell's) was labelled zone 1 with no pixel: its row held NaN and 0
    pixels, and the contact sheet ended in "cannot convert float NaN to integer" after
    the results file was written. Labels now run over the zones with pixels, and a note
    says how many agglomerates are not followed."""
    axis = (np.arange(41) - 20) * 10.0
    table = pd.DataFrame(
        {
            "x_um": [5000.0, 0.0, 5.0],
            "y_um": [0.0, 50.0, 50.0],
            "equivalent_diameter_um": [60.0, 60.0, 10.0],
            "case": ["B", "B", "B"],
        }
    )
    zones = core.disk_zones(table, axis, axis)
    assert int(zones.max()) == 1 and (zones == 1).sum() > 50
    with h5py.File(tmp_path / "diag.h5", "w") as f:
        write_table(f.create_group("entry/defects"), "agglomerates", table)
    notes: list[str] = []
    _saxs_zones(tmp_path / "diag.h5", axis, axis, notes)
    assert "2 of the 3 case-B agglomerates" in notes[0]


@pytest.mark.parametrize("attenuation", [True, False])
def test_saxs_zones_follow_a_cell_remounted_before_the_series(
    tmp_path: Path, attenuation: bool
) -> None:
    """The cell remounted 80 um off between its SAXS scan and the series: the zones from its
    diagnosis were followed 80 um beside its damage (the tiny twin: lag 0.09 for 0.14,
    poorly lithiated share 0.74 for 0.82 at the half-charged step), exit 0. The diagnosis's
    attenuation map against the first step's gives the shift (here 3 pixels of 10 um along
    y); without an attenuation map a note says the zones were not checked."""
    from jellyroll.results import Map, MapSet
    from jellyroll.results.run import write_maps_group

    axis = (np.arange(41) - 20) * 10.0
    y, x = np.meshgrid(axis, axis, indexing="ij")
    cell = ((np.hypot(x, y) < 170) + 2.0 * (np.hypot(x - 60, y + 40) < 30)).astype(float)
    table = pd.DataFrame({"x_um": [0.0], "y_um": [50.0], "equivalent_diameter_um": [60.0],
                          "case": ["B"]})  # fmt: skip
    with h5py.File(tmp_path / "diag.h5", "w") as f:
        write_table(f.create_group("entry/defects"), "agglomerates", table)
        if attenuation:
            write_maps_group(f["entry"], MapSet({"attenuation": Map(cell, "1/um")}, axis, axis))
    notes: list[str] = []
    zones = _saxs_zones(tmp_path / "diag.h5", axis, axis, notes, np.roll(cell, 3, axis=0))
    rows, cols = np.nonzero(zones == 1)
    moved = 30.0 if attenuation else 0.0
    assert axis[rows].mean() == pytest.approx(50.0 + moved, abs=0.5)
    assert axis[cols].mean() == pytest.approx(0.0, abs=0.5)
    said = "moved by +0.0 um along x and +30.0 um along y" if attenuation else "not checked"
    assert any(said in note for note in notes), notes


def test_a_log_charge_in_ah_or_coulombs_beside_a_capacity_in_mah_is_refused(
    tmp_path: Path,
) -> None:
    """A CSV log with its charge in Ah beside --capacity-mah in mAh ran the states of
    charge 0-0.001 (within 0-1): no damaged zone on the tiny twin and the anode's half
    lithiation at 0.0006, exit 0. A log passing under 5 % of the capacity is refused. In
    coulombs (3.6 C a mAh, the log's 1 mA integrated over its time says so) beside
    --capacity-mah 8, scans 10 and 90 min into the charge read 0.075 and 0.675 for 0.021
    and 0.1875 (within 0-1), exit 0: refused. Without a capacity the charge is counted
    over the log's own, in any unit: right to the 6 decimals written."""
    log = read_potentiostat_log(_log(tmp_path, [float(m) for m in range(121)]))  # 2 mAh
    in_ah = type(log)(log.source, log.time_s, log.voltage_V, log.current_mA, log.charge_mAh / 1e3)
    starts = datetime(2026, 1, 1, 8, 0, tzinfo=UTC).timestamp() + 60 * np.array([10.0, 90.0])
    with pytest.raises(ValueError, match=r"log\.csv: the charge passed .* in mAh \(not Ah\)"):
        soc_from_log(in_ah, starts, capacity_mah=2.0, max_gap_s=300)
    soc, _ = soc_from_log(log, starts, capacity_mah=2.0, max_gap_s=300)
    np.testing.assert_allclose(soc, [10 / 120, 90 / 120], rtol=1e-4)  # 6 decimals
    in_c = type(log)(log.source, log.time_s, log.voltage_V, log.current_mA, log.charge_mAh * 3.6)
    with pytest.raises(ValueError, match=r"log\.csv: .* 3\.6 times .* in coulombs"):
        soc_from_log(in_c, starts, capacity_mah=8.0, max_gap_s=300)
    soc, _ = soc_from_log(in_c, starts, capacity_mah=None, max_gap_s=300)
    np.testing.assert_allclose(soc, [10 / 120, 90 / 120], rtol=1e-4)


def test_the_graphite_mask_stays_inside_the_cell(series: tuple[Path, Path]) -> None:
    """The noise of the tiny twin's phase maps passed the graphite threshold outside the
    cell, up to the map's corners (1440 um from the axis for a casing of 890 um): a
    quarter of the "regular anode" was noise, and on 9 steps two corner pixels were
    reported as a damaged zone lagging by 0.2, exit 0. The mask is now cut to the cell
    found on the attenuation map: every graphite pixel within the casing's outer radius
    (890 um around (37, -23) um, the twin's parameters) plus two map pixels (the casing's
    edge is found half-way up its blurred rise)."""
    result = read_operando(series[1])
    rows, cols = np.nonzero(np.isfinite(result.shares[0, ..., 0]))
    distance = np.hypot(result.x_um[cols] - 37.0, result.y_um[rows] + 23.0)
    assert distance.max() <= 890.0 + 2 * abs(result.x_um[1] - result.x_um[0])


def _copied_steps(series: tuple[Path, Path], folder: Path) -> list[Path]:
    """The analysed series' step run files (with their stage files) copied into ``folder``."""
    steps = series[1].with_name(f"{series[1].stem}_steps")
    folder.mkdir()
    for path in steps.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return sorted(folder.glob("step_[0-9][0-9][0-9].h5"))


def _analysed(series: tuple[Path, Path], runs: list[Path]) -> OperandoResult:
    """:func:`analyse` of ``runs`` along the series' own states of charge (warnings silenced)."""
    from jellyroll.operando.run import analyse

    scans = sorted(series[0].glob("step_*_waxs.h5"))
    timeline = build_timeline(scans, None, capacity_mah=None, max_gap_s=300.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyse(runs, timeline, OperandoOptions(), 0.0)


def _edit_maps(run: Path, edit: Callable[[str, h5py.Group], None]) -> None:
    """``edit(name, group)`` for every map group of ``run``'s maps stage file."""
    with h5py.File(stage_file(run, "maps"), "r+") as f:
        for name in list(f["entry/maps"]):
            edit(name, f["entry/maps"][name])


def test_steps_on_another_grid_or_unmeasured_are_refused(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """:func:`analyse` stacked the steps' maps pixel by pixel and took the last step's
    axes for all: the tiny twin's last step on 80 um pixels beside 40 um ones (same shape)
    put its damaged zone at twice its distance from the axis and its core at 66409 um2 for
    21633; the middle step's maps NaN over the zone (a hole in its reconstruction) read
    there as an empty anode: no damaged zone (one, lag 0.22), exit 0. Both are refused,
    naming the step; the intact copy still finds its one zone."""
    runs = _copied_steps(series, tmp_path / "steps")
    assert int(_analysed(series, runs).zones.max()) == 1

    def coarse(name: str, group: h5py.Group) -> None:
        for axis in ("x_um", "y_um"):
            group[axis][...] = 2.0 * group[axis][()]

    _edit_maps(runs[2], coarse)
    with pytest.raises(ValueError, match=r"step 2\): its maps lie on a 52 x 52 grid of 80 um"):
        _analysed(series, runs)
    runs = _copied_steps(series, tmp_path / "holes")
    zone = read_operando(series[1]).zones > 0
    near = ndimage.binary_dilation(zone, iterations=3)

    def holed(name: str, group: h5py.Group) -> None:
        if name in PHASES:
            group["data"][...] = np.where(near, np.nan, group["data"][()])

    _edit_maps(runs[1], holed)
    with pytest.raises(ValueError, match=rf"step 1\): .* not measured .* at {near.sum()} pixels"):
        _analysed(series, runs)


def test_a_step_measured_with_another_gain_weighs_the_same_cores(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """The middle step's phase maps at 1.3 times the others' gain (a beam without a
    monitor, a detector setting changed): shares are ratios and stayed, but the cores were
    weighed in each step's own units, 11610, 11610, 1964 um2 for 9853, 9853, 2171 (shrink
    rate 26 % high), exit 0. A step whose graphite signal differs from the series' median
    by over 5 % is now scaled to it, with a note: the cores are those of the series as
    measured within 0.5 % (0.13 % measured: the step now weighs the median signal, the
    twin's steps lie within 0.2 % of each other; the graphite mask does not move at this
    gain)."""
    runs = _copied_steps(series, tmp_path / "steps")

    def gained(name: str, group: h5py.Group) -> None:
        if name in PHASES:
            group["data"][...] = 1.3 * group["data"][()]

    _edit_maps(runs[1], gained)
    result = _analysed(series, runs)
    expected = read_operando(series[1])
    np.testing.assert_allclose(result.cores["area_um2"], expected.cores["area_um2"], rtol=0.005)
    assert any("steps 1 (1.30) differs" in note for note in result.notes)


def test_a_step_at_a_far_other_gain_is_refused_by_name(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """The middle step at 2.5 times the others' gain (its frames not normalised by the
    monitor): the signal was judged against the series' largest, so the healthy first step
    was refused as one whose windows hold no graphite, its PONI blamed. Judged against the
    median, the step refused is the one at the other gain."""
    runs = _copied_steps(series, tmp_path / "steps")

    def gained(name: str, group: h5py.Group) -> None:
        if name in PHASES:
            group["data"][...] = 2.5 * group["data"][()]

    _edit_maps(runs[1], gained)
    with pytest.raises(
        ValueError, match=r"step_001\.h5 \(step 1\).* 2\.50 times the series' median"
    ):
        _analysed(series, runs)


def test_a_series_without_a_diode_refuses_a_step_turned_by_a_few_degrees(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """Steps without an attenuation map (no diode) were registered on their graphite
    overview map, whose window the charge empties, and only the grid search (from 3 deg)
    looked for a turn: the demo twin's series with its middle step's angles offset by 1 or
    2 deg passed with 5 or 13 damaged zones for 3, exit 0. Every step is now registered and
    checked on its three graphite phase maps summed (the graphite whatever the charge), the
    fine turn included. The tiny twin's maps without attenuation: unturned, its one zone;
    the middle step's maps turned by 2 deg about the axis passed (0.7 px at the outer
    graphite, 19 px out; the bar 0.5 px), refused now and named as the turn back, -2.1
    deg (the grid search's best was -12 deg, a spiral turned being nearly itself: the fine
    turn is measured from 0 too; 0.15 deg of slack for the turn's interpolation blur)."""
    runs = _copied_steps(series, tmp_path / "steps")

    def without_attenuation(name: str, group: h5py.Group) -> None:
        if name == "attenuation":
            del group.parent[name]

    for run in runs:
        _edit_maps(run, without_attenuation)
    result = _analysed(series, runs)
    assert int(result.zones.max()) == 1
    assert any("registered on its graphite phase maps summed" in n for n in result.notes)

    def turned(name: str, group: h5py.Group) -> None:
        data = np.nan_to_num(group["data"][()])
        group["data"][...] = ndimage.rotate(data, 2.0, reshape=False, order=1, mode="nearest")

    _edit_maps(runs[1], turned)
    with pytest.raises(ValueError, match=r"step 1\): .* turned by about -2\.[0-2] deg"):
        _analysed(series, runs)


def test_a_ring_artefact_does_not_shrink_the_turn_check(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """How far a turn moves the maps was measured at the farthest pixel of the first
    attenuation map at half its p99: a bright ring artefact about the axis (r = 4 px, 44
    pixels, in every step) made that 4.7 px, and the middle step's maps turned by 3 deg
    passed (the zone's lag 0.150 for 0.176, its shrink rate 16 % high), exit 0 (the noise
    of the intact maps put it in the corners instead, 35.4 px for a casing 23.7 px out).
    The radius is now the cell found's edge when it holds the strong graphite, else the
    farthest strong graphite (here the ring is found: 18.7 px, the outer turn), and the
    turn, measured at -2.2 deg (0.7 px), is refused; unturned, the series passes."""
    runs = _copied_steps(series, tmp_path / "steps")
    rows, cols = np.indices((52, 52))
    ring = np.abs(np.hypot(rows - 25.5, cols - 25.5) - 4.0) < 0.8

    def ringed(name: str, group: h5py.Group) -> None:
        if name == "attenuation":
            data = np.nan_to_num(group["data"][()])
            group["data"][...] = np.where(ring, 10 * np.percentile(data, 99), data)

    def turned(name: str, group: h5py.Group) -> None:
        data = np.nan_to_num(group["data"][()])
        group["data"][...] = ndimage.rotate(data, 3.0, reshape=False, order=1, mode="nearest")

    _edit_maps(runs[1], turned)
    for run in runs:
        _edit_maps(run, ringed)
    refused = r"step 1\): .* -2\.\d deg .* at the outer graphite, 19 px"
    with pytest.raises(ValueError, match=refused):
        _analysed(series, runs)
    runs = _copied_steps(series, tmp_path / "unturned")
    for run in runs:
        _edit_maps(run, ringed)
    assert int(_analysed(series, runs).zones.max()) == 1


def test_a_step_whose_data_repeat_another_is_refused_naming_both(
    series: tuple[Path, Path], tmp_path: Path
) -> None:
    """One scan given twice under two names (a copy; without start times, at one recorded
    state of charge) passed: the tiny twin's middle step twice weighed double in the
    shrink-rate fit (15197 um2 per unit charge for 15363), exit 0. A step whose reduced
    data equal another's is refused, naming both scans."""
    from jellyroll.operando.run import _shared_centre

    runs = _copied_steps(series, tmp_path / "steps")
    scans = [tmp_path / f"op_{k}.h5" for k in range(len(runs))]
    _shared_centre(runs, scans)  # distinct steps pass
    with h5py.File(stage_file(runs[1], "reduce"), "r") as f:
        data = f["entry/sinogram/data"][()]
    with h5py.File(stage_file(runs[2], "reduce"), "r+") as f:
        f["entry/sinogram/data"][...] = data
    with pytest.raises(ValueError, match=r"op_2\.h5 \(step 2\) holds the same data as .*op_1\.h5"):
        _shared_centre(runs, scans)


@given(st.integers(5, 60), st.booleans())
def test_a_steps_profile_reads_the_same_on_a_descending_q_axis(n: int, descending: bool) -> None:
    """A step's mean graphite profile is put on the first step's q whatever the order of its
    own axis (an imported sinogram may store q descending, which reduce accepts): np.interp
    on a descending axis returned a wrong profile (the lines fitted and every step's shares
    with it), exit 0. Equal to the ascending reading to float rounding; NaN beyond the axis."""
    q_step = np.linspace(1.6, 2.0, n)
    profile = np.sin(7 * q_step) + q_step
    q = np.linspace(1.55, 2.05, 41)
    expected = np.interp(q, q_step, profile, left=np.nan, right=np.nan)
    given_q, given_profile = (q_step[::-1], profile[::-1]) if descending else (q_step, profile)
    np.testing.assert_allclose(profile_on(q, given_q, given_profile), expected, rtol=1e-12)

"""Operando inputs that gave wrong numbers with exit 0: potentiostat logs across summer
time or starting with a discharge, logs on another clock, steps mapped with the study's
plain integrals, damaged zones off the anode."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from scipy import ndimage
from test_operando import _mpt_log, _zoned_scans

from jellyroll.io.nexus import read_table, write_table
from jellyroll.maps.options import MapsOptions
from jellyroll.operando import core
from jellyroll.operando.run import run_operando
from jellyroll.operando.timeline import build_timeline, read_potentiostat_log, soc_from_log
from jellyroll.phantom.parameters import SIZES
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import _write_operando
from jellyroll.recon.options import ReconstructOptions
from jellyroll.results.operando import PHASES, OperandoResult

CET, CEST = timedelta(hours=1), timedelta(hours=2)


def _scans(folder: Path, stamps: list[datetime]) -> list[Path]:
    """Scans recording ``/entry/start_time`` (ISO 8601 with the stamps' UTC offsets)."""
    return _zoned_scans(folder, [stamp.isoformat() for stamp in stamps])


def _local(moment: datetime, switch: datetime, before: timedelta, after: timedelta) -> datetime:
    """``moment`` (UTC) on a clock at UTC + ``before`` until ``switch`` (UTC), then at
    UTC + ``after``: an aware datetime at that offset."""
    offset = before if moment < switch else after
    return moment.astimezone(timezone(offset))


def _wall_clock_csv(path: Path, start: datetime, switch: datetime, forward: bool) -> Path:
    """A CSV log of a 4 h charge at 1 mA from ``start`` (UTC), one record a minute, its
    times the local wall clock (no offset) of a place whose summer time begins (``forward``)
    or ends at ``switch`` (UTC)."""
    before, after = (CET, CEST) if forward else (CEST, CET)
    lines = ["time,voltage,current,charge"]
    for minute in range(241):
        moment = start + timedelta(minutes=minute)
        wall = _local(moment, switch, before, after).replace(tzinfo=None)
        lines.append(f"{wall.isoformat()},3.7,1.0,{minute / 60:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_local_csv_log_across_the_start_of_summer_time(tmp_path: Path) -> None:
    """A CSV log on a PC's local clock (no offset) over a 4 h charge through the start of
    summer time (2026-03-29, 01:00 UTC), scans at 30, 90, 150 and 210 min recording +01:00,
    then +02:00. The log was placed at the first scan's offset: the second scan fell in the
    log's one-hour jump (no state of charge) and the last two read 0.375 and 0.625 for
    0.625 and 0.875, exit 0. Each scan is now read at its own local time (to the 6 decimals
    the charge is written with)."""
    start = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    switch = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    log = read_potentiostat_log(_wall_clock_csv(tmp_path / "log.csv", start, switch, True))
    minutes = [30, 90, 150, 210]
    stamps = [_local(start + timedelta(minutes=m), switch, CET, CEST) for m in minutes]
    timeline = build_timeline(_scans(tmp_path / "op", stamps), log, capacity_mah=None,
                              max_gap_s=300)  # fmt: skip
    np.testing.assert_allclose(timeline.soc, np.array(minutes) / 240, atol=1e-5)
    assert any("its own local time" in note for note in timeline.warnings)


def test_scans_at_two_offsets_without_a_clock_change_between_them_are_refused(
    tmp_path: Path,
) -> None:
    """A January charge (no clock changes its offset then) beside a CSV on a local clock,
    its last scan written at +02:00 for the same instant as +01:00: read at its own local
    time, an hour of the charge late (0.583 for 0.333 of a 4 h charge), and a lagging zone
    found, exit 0. Refused, naming both scans; the same offsets across the start of summer
    time are read as before (the test above)."""
    start = datetime(2026, 1, 14, 8, 0, tzinfo=UTC)
    never = datetime(2027, 1, 1, tzinfo=UTC)
    log = read_potentiostat_log(_wall_clock_csv(tmp_path / "log.csv", start, never, True))
    stamps = [(start + timedelta(minutes=m)).astimezone(timezone(CET)) for m in (0, 20, 40)]
    stamps[-1] = stamps[-1].astimezone(timezone(CEST))
    scans = _scans(tmp_path / "op", stamps)
    said = r"op_2\.h5::/entry/start_time, the next scan, at \+2 h, but no place's clock"
    with pytest.raises(ValueError, match=said):
        build_timeline(scans, log, capacity_mah=None, max_gap_s=300)


@pytest.mark.parametrize("blank", [False, True])
def test_a_local_csv_log_whose_clock_goes_back_is_refused(tmp_path: Path, blank: bool) -> None:
    """The same log through the end of summer time (2026-10-25, 01:00 UTC): its local times
    repeat an hour, and sorted, the two hours' records interleaved; the scans at 90 and
    150 min read 0.625 and 0.875 for 0.375 and 0.625, the last none, exit 0. Refused,
    naming the line where the clock goes back (with a blank line above it, one line
    further: the records were counted from line 2, and the line above was named)."""
    start = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    switch = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    path = _wall_clock_csv(tmp_path / "log.csv", start, switch, False)
    if blank:
        lines = path.read_text().splitlines()
        path.write_text("\n".join([*lines[:10], "", *lines[10:]]) + "\n")
    line = 123 if blank else 122
    said = rf"log\.csv, line {line}: time 2026-10-25T02:00:00 local is before .* clock was set"
    with pytest.raises(ValueError, match=said):
        read_potentiostat_log(path)


def test_an_mpt_log_across_summer_time_is_placed_at_its_start(tmp_path: Path) -> None:
    """EC-Lab counts seconds from its start (local, before the first scan): through the
    start of summer time it stays at the first scan's offset, and every scan is read right
    (the rule a CSV's wall clock does not follow)."""
    header = [
        "EC-Lab ASCII FILE",
        "Nb header lines : 4",
        "Acquisition started on : 03/29/2026 01:00:00.000",  # 00:00 UTC at +01:00
        "mode\ttime/s\tEwe/V\tI/mA\t(Q-Qo)/mA.h",
    ]
    rows = [f"1\t{t:.1f}\t3.7\t1.0\t{t / 3600:.6f}" for t in np.arange(0.0, 4 * 3600 + 1, 60.0)]
    (tmp_path / "c.mpt").write_text("\n".join(header + rows) + "\n", encoding="latin-1")
    log = read_potentiostat_log(tmp_path / "c.mpt")
    start = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    switch = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    minutes = [30, 90, 150, 210]
    stamps = [_local(start + timedelta(minutes=m), switch, CET, CEST) for m in minutes]
    timeline = build_timeline(_scans(tmp_path / "op", stamps), log, capacity_mah=None,
                              max_gap_s=300)  # fmt: skip
    np.testing.assert_allclose(timeline.soc, np.array(minutes) / 240, atol=1e-5)


def _utc_csv(path: Path, charge_mah: list[float]) -> tuple[Path, float]:
    """A CSV log (UTC times), one record a minute from 2026-01-01 08:00 with the charges
    given (mAh); and its start (s since the epoch)."""
    start = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    lines = ["time,voltage,current,charge"]
    for minute, charge in enumerate(charge_mah):
        lines.append(f"{(start + timedelta(minutes=minute)).isoformat()},3.7,1.0,{charge:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path, start.timestamp()


def test_a_log_that_starts_after_the_first_scan_says_so(tmp_path: Path) -> None:
    """A 2 h charge at 1 mA whose log starts 30 min late: the scans at 10, 60 and 90 min
    of the charge read no state of charge, 0.333 and 0.667 for 0.5 and 0.75, with a note
    for the first only (outside the log), exit 0: the charge before the log's first record
    is not counted. The log cannot tell a late
    start from a cell at rest, so the states of charge stand, and a note now says that
    the log starts after a scan and how it counts."""
    path, start = _utc_csv(tmp_path / "log.csv", [m / 60 for m in range(121)])
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], *lines[31:]]) + "\n")  # from 08:30 on
    log = read_potentiostat_log(path)
    scans = start + 60 * np.array([10.0, 60.0, 90.0])
    soc, notes = soc_from_log(log, scans, capacity_mah=None, max_gap_s=300)
    assert np.isnan(soc[0])
    np.testing.assert_allclose(soc[1:], [1 / 3, 2 / 3], rtol=1e-4)  # 6 decimals
    assert any("starts after 1 of the scans (from step 0)" in note for note in notes)
    soc, notes = soc_from_log(log, scans[1:], capacity_mah=None, max_gap_s=300)
    assert not any("starts after" in note for note in notes)


@pytest.mark.parametrize("capacity", [None, 2.0])
def test_a_discharge_before_the_charge_is_not_counted(
    tmp_path: Path, capacity: float | None
) -> None:
    """A log that first empties the half-charged 2 mAh cell (60 min at 1 mA, -1 mAh), then
    charges it full (120 min): the scans at 120, 150 and 180 min (0.5, 0.75 and 1.0 of the
    charge) read 0, 0.5 and 1.0 (0, 0.25 and 0.5 with the capacity given), the log's start
    taken as the empty cell, exit 0. The empty cell is now the lowest charge before the
    first scan, and a note says so (6 decimals of charge)."""
    charge = [-m / 60 if m <= 60 else -1 + (m - 60) / 60 for m in range(181)]
    path, start = _utc_csv(tmp_path / "log.csv", charge)
    starts = start + 60 * np.array([120.0, 150.0, 180.0])
    soc, notes = soc_from_log(
        read_potentiostat_log(path), starts, capacity_mah=capacity, max_gap_s=300
    )
    np.testing.assert_allclose(soc, [0.5, 0.75, 1.0], atol=1e-5)
    assert any("discharges by 1 mAh before the first scan" in note for note in notes)


def test_a_charge_counter_that_restarts_is_refused(tmp_path: Path) -> None:
    """A log whose charge restarts at 0 halfway through the charge (a potentiostat's
    capacity per step) read the scans at 0.25, 0.5 and 1 of the charge as 0.5, 0 and 1,
    exit 0. Refused, naming where it jumps; a gap of the log (the charge rising at its usual
    rate across it), a counter restarted before the charge (the empty cell) and a sparse
    log's large steps while the current flows still pass."""
    charge = [m / 60 for m in range(61)] + [m / 60 for m in range(61)]
    path, start = _utc_csv(tmp_path / "log.csv", charge)
    scans = start + 60 * np.array([30.0, 61.0, 121.0])
    with pytest.raises(
        ValueError,
        match=r"log\.csv: the charge jumps from 1 to 0 between "
        r"2026-01-01T09:00:00\+00:00 and 2026-01-01T09:01:00.*cumulative",
    ):
        soc_from_log(read_potentiostat_log(path), scans, capacity_mah=None, max_gap_s=300)
    # a 40 min gap: one record a minute, then none from 08:40 to 09:20
    path, start = _utc_csv(tmp_path / "gap.csv", [m / 60 for m in range(121)])
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:42] + lines[81:]) + "\n")
    soc, _ = soc_from_log(read_potentiostat_log(path), scans[:1], capacity_mah=None,
                          max_gap_s=300)  # fmt: skip
    np.testing.assert_allclose(soc, [0.25], atol=1e-5)
    # a discharge counted 0 to 1 mAh, then the charge counted from 0 again
    path, start = _utc_csv(tmp_path / "step.csv", charge)
    soc, _ = soc_from_log(read_potentiostat_log(path), start + 60 * np.array([76.0, 91.0, 121.0]),
                          capacity_mah=None, max_gap_s=300)  # fmt: skip
    np.testing.assert_allclose(soc, [0.25, 0.5, 1.0], atol=1e-5)
    # a sparse log: 1 mA for 60 min, a record each 10 (a sixth of the charge each), then a
    # constant-voltage tail, 0.1 mA fading, a record each 2 min (its rate 20 times lower)
    minutes = [*range(0, 60, 10), *range(60, 181, 2)]
    current = [1.0 if m < 60 else 0.1 * np.exp(-(m - 60) / 60) for m in minutes]
    passed = np.concatenate([[0.0], np.cumsum(np.diff(minutes) * np.array(current[:-1]) / 60)])
    lines = ["time,voltage,current,charge"] + [
        f"{datetime.fromtimestamp(start + 60 * m, UTC).isoformat()},3.7,{i:.6f},{q:.6f}"
        for m, i, q in zip(minutes, current, passed, strict=True)
    ]
    (tmp_path / "sparse.csv").write_text("\n".join(lines) + "\n")
    soc, _ = soc_from_log(read_potentiostat_log(tmp_path / "sparse.csv"),
                          start + 60 * np.array([20.0, 50.0, 150.0]), capacity_mah=None,
                          max_gap_s=900)  # fmt: skip
    np.testing.assert_allclose(soc, np.interp([20, 50, 150], minutes, passed) / passed[-1],
                               rtol=1e-5)  # fmt: skip


def test_a_log_that_covers_none_of_the_scans_is_refused(tmp_path: Path) -> None:
    """A CSV log timed in seconds since its start (0, 60, ...) was read as Unix seconds
    (1970): every scan lay outside it and was kept with no state of charge, the curves
    falling back to time, exit 0. Refused, naming where the log and the scans lie."""
    lines = ["time,voltage,current,charge"]
    lines += [f"{60 * m},3.7,1.0,{m / 60:.6f}" for m in range(121)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    log = read_potentiostat_log(tmp_path / "log.csv")
    starts = datetime(2026, 1, 1, 8, 0, tzinfo=UTC).timestamp() + 60 * np.array([10.0, 90.0])
    with pytest.raises(ValueError, match=r"log\.csv: the log runs from 1970-01-01.*covers none"):
        soc_from_log(log, starts, capacity_mah=None, max_gap_s=300)


# --- the tiny twin's series -------------------------------------------------------------


@pytest.fixture(scope="module")
def twin_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny twin's charge series (3 steps), its WAXS scans and truth."""
    folder = tmp_path_factory.mktemp("operando_audit")
    twin = make_twin("aged_charged", SIZES["tiny"], seed=0)
    _write_operando(folder / "series", twin, 3, 0, Console(quiet=True))
    return folder / "series"


def _run(series: Path, output: Path, **kwargs: object) -> OperandoResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_operando(
            series, output, reconstruct_options=ReconstructOptions(method="fbp"),
            figures=False, **kwargs,
        ).result  # fmt: skip


def _truth_half(series: Path) -> float:
    """The state of charge at half lithiation of the twin's regular anode (its truth)."""
    with h5py.File(series / "truth.h5") as f:
        fractions = np.stack([f[f"entry/{p}/data"][()] for p in PHASES], axis=-1)
        zones = f["entry/zone_id/data"][()]
    anode = (fractions.sum(-1)[0] > 0.05) & (zones == 0)
    amounts = fractions[:, anode].sum(axis=1)
    poor = amounts[:, 2] / amounts.sum(axis=1)
    return core.soc_at_half(np.linspace(0.0, 1.0, len(poor)), 1.0 - poor)


def test_steps_mapped_with_the_study_plain_integrals_are_unmixed_over_them(
    twin_series: Path, tmp_path: Path
) -> None:
    """Steps mapped with ``[maps] analysis = "study"`` (plain Table 1 integrals) were
    unmixed with the crosstalk of the background-subtracted windows: the regular anode
    reached half lithiation at 0.614 instead of 0.555 (its LiC12 share at the last step
    0.74 for 0.90), exit 0. The crosstalk is now taken over the windows the maps used:
    0.557 (the background under the plain windows, counted as graphite, is what is left;
    the jellyroll windows give 0.555), and a note says so."""
    result = _run(twin_series, tmp_path / "op.h5", maps_options=MapsOptions(analysis="study"))
    assert result.soc_half["anode"] == pytest.approx(_truth_half(twin_series), abs=0.01)
    assert any("plain Table 1 integrals" in note for note in result.notes)


def test_a_damaged_zone_without_graphite_is_not_followed(twin_series: Path, tmp_path: Path) -> None:
    """Case-B agglomerates of the diagnosis where the operando maps hold no graphite pixel
    (beyond the casing, 890 um from the cell's axis) got zones whose curves summed what
    the phase maps hold there: half lithiation at 0.52 and 0.40, lags of -0.04 and -0.16
    reported beside the true zone's, exit 0. They are now left out with a note placing
    them; the true zone (lag 0.17) is kept."""
    with h5py.File(twin_series / "truth.h5") as f:
        cores = read_table(f["entry/cores"])
    true_x, true_y = float(cores["x_um"].iloc[0]), float(cores["y_um"].iloc[0])
    table = pd.DataFrame(
        {
            "x_um": [true_x, 1000.0, 0.0],
            "y_um": [true_y, 0.0, 1000.0],
            "equivalent_diameter_um": [60.0, 60.0, 60.0],
            "case": ["B", "B", "B"],
        }
    )
    with h5py.File(tmp_path / "diag.h5", "w") as f:
        write_table(f.create_group("entry/defects"), "agglomerates", table)
    result = _run(twin_series, tmp_path / "op.h5", saxs_maps=tmp_path / "diag.h5")
    assert len(result.zones_table) == 1
    assert result.zones_table["lag_soc"].iloc[0] > 0.1
    assert any("2 damaged zones hold no graphite pixel" in note for note in result.notes)


def _turned_copy(series: Path, folder: Path, turns_deg: list[float]) -> Path:
    """The series' WAXS scans copied into ``folder``, step k's rotation angles offset by
    ``turns_deg[k]`` (deg): its maps turned in the plane about the rotation axis."""
    folder.mkdir()
    for scan, turn in zip(sorted(series.glob("step_*_waxs.h5")), turns_deg, strict=True):
        copy = folder / scan.name
        copy.write_bytes(scan.read_bytes())
        with h5py.File(copy, "r+") as f:
            f["entry/sample/rotation_angle"][...] += turn
    return folder


def test_a_step_turned_in_the_plane_is_refused(twin_series: Path, tmp_path: Path) -> None:
    """One step's rotation angles offset by 30 deg (the stage's zero moved): its maps are
    turned, which the registration (a shift) cannot undo; on the tiny twin (seed 2, 4
    steps) the zone's core at that step weighed 9990 um2 instead of 21640, and offset by
    90 deg, 6 damaged zones were found instead of one, exit 0. Refused, naming the step
    and the turn (the search runs every 2 deg: 30 is on its grid)."""
    folder = _turned_copy(twin_series, tmp_path / "series", [0.0, 30.0, 0.0])
    with pytest.raises(
        ValueError, match=r"step 1\): its maps match .* turned by about \+(29|30)\.\d deg"
    ):
        _run(folder, tmp_path / "op.h5")


def test_every_step_turned_turns_the_zones(twin_series: Path, tmp_path: Path) -> None:
    """Every step's angles offset by 90 deg: the maps turn as one, nothing to register
    (shifts 0), and the one damaged zone is found at the truth's core centre turned by 90
    deg about the axis, (x, y) -> (-y, x), within 60 um (1.5 map pixels, the bar of the
    untouched series)."""
    folder = _turned_copy(twin_series, tmp_path / "series", [90.0] * 3)
    result = _run(folder, tmp_path / "op.h5")
    with h5py.File(twin_series / "truth.h5") as f:
        cores = read_table(f["entry/cores"])
    x, y = float(cores["x_um"].iloc[0]), float(cores["y_um"].iloc[0])
    assert np.abs(result.shift_px).max() < 0.05
    assert len(result.zones_table) == 1
    row = result.zones_table.iloc[0]
    assert np.hypot(row["x_um"] + y, row["y_um"] - x) < 60.0
    assert row["lag_soc"] > 0.1


def test_saxs_zones_of_another_cell_are_refused(twin_series: Path, tmp_path: Path) -> None:
    """The diagnosis of another cell (its case-B agglomerate at (9, 425) um, where this
    one has none) beside the tiny twin's series: the zone was followed where the anode
    does not lag (seed 2: lag -0.02, core 391, 0, 0, 391 um2) and the zone that lags by
    0.2 was left out, exit 0. Refused when no SAXS zone lies near a lagging zone; the
    cell's own diagnosis is still followed (the test above)."""
    table = pd.DataFrame(
        {"x_um": [9.4], "y_um": [424.5], "equivalent_diameter_um": [60.0], "case": ["B"]}
    )
    with h5py.File(tmp_path / "other.h5", "w") as f:
        write_table(f.create_group("entry/defects"), "agglomerates", table)
    with pytest.raises(ValueError, match=r"other\.h5: none of its 1 damaged zones lies where"):
        _run(twin_series, tmp_path / "op.h5", saxs_maps=tmp_path / "other.h5")


def test_a_series_that_does_not_cover_the_charge_says_so() -> None:
    """Half-lithiation points are half-way between each region's first and last shares: the
    tiny twin's series without its last step (states of charge 0 to 0.67) put the damaged
    zone's lag at 0.055 instead of 0.217, with no word. A series from empty to full (within
    0.1) needs none; curves along time cannot tell."""
    from jellyroll.operando.run import _partial_charge_note
    from jellyroll.operando.timeline import SOC_UNITS

    assert _partial_charge_note(np.array([0.0, 1 / 3, 2 / 3, 1.0]), SOC_UNITS) is None
    cut = _partial_charge_note(np.array([0.0, 1 / 3, 2 / 3]), SOC_UNITS)
    assert cut is not None and "0.00 to 0.67" in cut
    assert _partial_charge_note(np.array([0.0, 1.0, 2.0]), "h") is None


def _roll_map(turn_deg: float, size: int = 64, seed: int = 0) -> np.ndarray:
    """A jelly roll's attenuation map (``size`` px a side): a spiral of 4 px pitch inside a
    casing 28 px from the centre, with two local features (the parts a small turn visibly
    moves: a spiral turned is nearly itself), turned by ``turn_deg`` about the map centre
    by :func:`scipy.ndimage.rotate` (cubic), plus 1 % noise."""
    rows, cols = np.indices((size, size)) - (size - 1) / 2
    radius, theta = np.hypot(rows, cols), np.arctan2(rows, cols)
    image = (0.5 + 0.5 * np.cos(2 * np.pi * (radius / 4.0 - theta / (2 * np.pi)))) * (radius < 26)
    image += 2.0 * ((radius >= 26.5) & (radius < 28.5))
    for x, y in [(15.0, 6.0), (-8.0, -17.0)]:
        image += np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 8.0)
    image = ndimage.gaussian_filter(image, 0.7)
    if turn_deg:
        image = ndimage.rotate(image, turn_deg, reshape=False, order=3, mode="nearest")
    return image + np.random.default_rng(seed).normal(0.0, 0.01, image.shape)


def test_a_step_turned_by_a_few_degrees_is_refused() -> None:
    """A step's maps turned by 2 or 3 deg (its rotation angles offset): the grid search
    (every 2 deg, coarse every 6) found 2 deg and refused only from 3, and the step passed,
    its features 1.0 and 1.5 px off at the casing (28 px from the axis; at the study's 200
    px, 3 deg is 10 px), each pixel's series mixing its neighbours', exit 0. The turn is
    now measured finely (Gauss-Newton on the maps, here within 0.02 deg: the message's turn
    to 0.1 deg, 0.05 px at the casing) and refused from 0.5 px at the casing; an unturned
    step and one turned by 0.5 deg (0.25 px) pass. The turn named is the one that turns the
    step back (the opposite of the turn applied)."""
    from jellyroll.operando.run import _check_turns, _turn_radius
    from jellyroll.unroll import find_cell

    runs = [Path("step_000.h5"), Path("step_001.h5")]
    first = _roll_map(0.0)
    radius, at = _turn_radius(find_cell(first), first)
    assert 28.0 <= radius <= 29.5  # the casing ends 28.5 px out; its blurred edge, 28.9
    for turn, refused in [(0.0, False), (0.5, False), (2.0, True), (-3.0, True)]:
        maps = np.array([first, _roll_map(turn, seed=1)])
        shifts = core.drift_shifts(maps)
        if refused:
            with pytest.raises(ValueError, match=rf"step 1\): .* turned by about \{-turn:+.0f}\.0"):
                _check_turns(runs, maps, shifts, radius, at)
        else:
            _check_turns(runs, maps, shifts, radius, at)


@pytest.mark.parametrize("turns", [0, 1])
def test_a_step_whose_angles_run_the_other_way_is_refused(turns: int) -> None:
    """A step's rotation angles written as C - angle: its maps are the cell mirrored about a
    line through the axis (a mirror, and a turn for C other than 0), which no turn or shift
    undoes. On the tiny twin (C = 180 deg) it correlated 0.83 with the first step after
    registration (0.99 for the others), its zone was lost and two false ones found, exit 0.
    Refused (here mirrored, and mirrored and turned by 90 deg); the same map unmirrored
    passes."""
    from jellyroll.operando.run import _check_turns, _turn_radius
    from jellyroll.unroll import find_cell

    runs = [Path("step_000.h5"), Path("step_001.h5")]
    first = _roll_map(0.0)
    radius, at = _turn_radius(find_cell(first), first)
    mirrored = np.rot90(_roll_map(0.0, seed=1)[:, ::-1], turns)
    maps = np.array([first, mirrored])
    with pytest.raises(ValueError, match=r"step 1\): its maps match the first step's mirrored"):
        _check_turns(runs, maps, core.drift_shifts(maps), radius, at)
    maps = np.array([first, _roll_map(0.0, seed=1)])
    _check_turns(runs, maps, core.drift_shifts(maps), radius, at)


@pytest.mark.parametrize("zoned", [True, False])
def test_an_mpt_log_started_before_summer_time_began_is_refused(
    tmp_path: Path, zoned: bool
) -> None:
    """An EC-Lab log started at 01:30 in winter time (00:30 UTC, 2026-03-29; summer time
    from 01:00 UTC), a 4 h charge at 1 mA, scans at 03:30, 04:30 and 05:30 summer time
    (+02:00, or without an offset): placed at the scans' offset (or read beside their
    local times), the log started an hour early, and the scans read 0.5, 0.75 and 1.0 for
    0.25, 0.5 and 0.75, exit 0. Where the clock has no summer time those would be right,
    and the files do not say which: refused, naming a zone whose offset changed; scans
    without an offset (their place unknown, and some place changes its clock in a few weeks
    of every year) get a note naming it instead. A log
    started at 04:10, after the changes of 01:00 UTC (02:00 to 03:00 local in central,
    03:00 to 04:00 in eastern Europe), is read as before (so is the log of
    test_an_mpt_log_across_summer_time_is_placed_at_its_start, which starts and is placed
    at the first scan's winter offset)."""
    suffix = "+02:00" if zoned else ""
    stamps = [f"2026-03-29T0{h}:30:00{suffix}" for h in (3, 4, 5)]
    scans = _zoned_scans(tmp_path / "op", stamps)
    log = read_potentiostat_log(_mpt_log(tmp_path / "c.mpt", "03/29/2026 01:30:00", 4.0))
    said = r"c\.mpt: EC-Lab counts .* changed their UTC offset"
    if zoned:
        with pytest.raises(ValueError, match=said):
            build_timeline(scans, log, capacity_mah=4.0, max_gap_s=300)
    else:
        timeline = build_timeline(scans, log, capacity_mah=4.0, max_gap_s=300)
        assert any(re.search(said + ".*an hour of the charge off", n) for n in timeline.warnings)
    later = read_potentiostat_log(_mpt_log(tmp_path / "d.mpt", "03/29/2026 04:10:00", 4.0))
    stamps = [f"2026-03-29T0{h}:{m}:00{suffix}" for h, m in ((4, 30), (5, "00"), (5, 30))]
    scans = _zoned_scans(tmp_path / "later", stamps)
    timeline = build_timeline(scans, later, capacity_mah=4.0, max_gap_s=300)
    np.testing.assert_allclose(timeline.soc, np.array([20, 50, 80]) / 240, atol=1e-5)


def test_scans_in_utc_beside_a_log_without_a_zone_are_refused(tmp_path: Path) -> None:
    """Scans whose start times a writer records in UTC (09:00, 10:00, 11:00+00:00) beside an
    EC-Lab log started on a Berlin PC at 09:00 local (08:00 UTC), a 4 h charge: the log was
    read at the scans' offset +0 and the scans at 0, 0.25 and 0.5 for 0.25, 0.5 and 0.75,
    exit 0 (a note only). Refused unless the log's offset is given (``--log-utc-offset-h``):
    +1 h reads the truth (the charge written to 6 decimals)."""
    scans = _zoned_scans(tmp_path / "op", [f"2026-01-02T{h:02d}:00:00+00:00" for h in (9, 10, 11)])
    log = read_potentiostat_log(_mpt_log(tmp_path / "c.mpt", "01/02/2026 09:00:00", 4.0))
    with pytest.raises(ValueError, match=r"c\.mpt: its times carry no time zone, and the scans"):
        build_timeline(scans, log, capacity_mah=4.0, max_gap_s=300)
    timeline = build_timeline(scans, log, capacity_mah=4.0, max_gap_s=300, log_utc_offset_h=1.0)
    np.testing.assert_allclose(timeline.soc, [0.25, 0.5, 0.75], atol=1e-5)
    assert any("read at the UTC offset given, +1 h" in note for note in timeline.warnings)


def test_an_mpt_log_whose_seconds_restart_is_refused(tmp_path: Path) -> None:
    """An EC-Lab export whose time/s restarts at 0 after 2 h (two runs pasted together, 0-2
    then 2-4 mAh): sorted by time, the two runs' records interleaved and scans 30, 60 and
    90 min into the first read states of charge 0.625, 0.75, 0.875 (of 4 mAh) for 0.125,
    0.25, 0.375, exit 0. Refused, naming the line where the seconds go back."""
    header = [
        "EC-Lab ASCII FILE",
        "Nb header lines : 4",
        "Acquisition started on : 01/02/2026 09:00:00",
        "mode\ttime/s\tEwe/V\tI/mA\t(Q-Qo)/mA.h",
    ]
    seconds = np.arange(0.0, 7201.0, 60.0)
    rows = [f"1\t{t:.1f}\t3.7\t1.0\t{offset + t / 3600:.6f}" for offset in (0, 2) for t in seconds]
    path = tmp_path / "c.mpt"
    path.write_text("\n".join(header + rows[: seconds.size]) + "\n", encoding="latin-1")
    stamps = [f"2026-01-02T{t}:00" for t in ("09:30", "10:00", "10:30")]
    scans = _zoned_scans(tmp_path / "op", stamps)
    timeline = build_timeline(scans, read_potentiostat_log(path), capacity_mah=4.0, max_gap_s=300)
    np.testing.assert_allclose(timeline.soc, [0.125, 0.25, 0.375], atol=1e-5)
    path.write_text("\n".join(header + rows) + "\n", encoding="latin-1")
    said = r"c\.mpt, line 126: time/s 0 is before the time/s 7200 of line 125: .* more than one"
    with pytest.raises(ValueError, match=said):
        read_potentiostat_log(path)


def test_a_log_offset_given_for_a_local_csv_across_summer_time_is_refused(
    tmp_path: Path,
) -> None:
    """A CSV log on a local clock (no offset) through the start of summer time, with its
    offset at its start given (``--log-utc-offset-h 1``): that one offset was applied to
    every record, and the scans at 90, 150 and 210 min of a 4 h charge read no state of
    charge (in the log's jump), 0.375 and 0.625 for 0.375, 0.625 and 0.875, exit 0.
    Refused; the same log a week later (no change) is read at the offset given, to the 6
    decimals the charge is written with."""
    minutes = [30, 90, 150, 210]
    for day, refused in [(29, True), (22, False)]:
        start = datetime(2026, 3, day, 0, 0, tzinfo=UTC)
        switch = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
        folder = tmp_path / str(day)
        folder.mkdir()
        log = read_potentiostat_log(_wall_clock_csv(folder / "log.csv", start, switch, True))
        stamps = [_local(start + timedelta(minutes=m), switch, CET, CEST) for m in minutes]
        scans = _scans(folder / "op", stamps)
        kwargs = {"capacity_mah": None, "max_gap_s": 300, "log_utc_offset_h": 1.0}
        if refused:
            with pytest.raises(ValueError, match=r"log\.csv: .* at the offset given \(\+1 h\)"):
                build_timeline(scans, log, **kwargs)
        else:
            timeline = build_timeline(scans, log, **kwargs)
            np.testing.assert_allclose(timeline.soc, np.array(minutes) / 240, atol=1e-5)


def test_a_log_record_without_a_charge_is_named(tmp_path: Path) -> None:
    """A CSV log with one record's charge "nan": refused as "no charge passes in the log"
    (without --capacity-mah) or "the charge passed ... is nan, nan %" (with it), which
    pointed at the units; now the record is named."""
    path, _ = _utc_csv(tmp_path / "log.csv", [m / 60 for m in range(241)])
    lines = path.read_text().splitlines()
    lines[61] = lines[61].rsplit(",", 1)[0] + ",nan"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"log\.csv: record 61 \(of 241, 1 in all\) holds no ch"):
        read_potentiostat_log(path)


def _scans_recording(
    folder: Path, stamps: list[str], socs: list[float | None], ends: list[str] | None
) -> list[Path]:
    """Scans recording ``/entry/start_time`` (as given), ``/entry/sample/state_of_charge``
    (None: not recorded) and, where given, ``/entry/end_time``."""
    scans = _zoned_scans(folder, stamps)
    for k, (scan, soc) in enumerate(zip(scans, socs, strict=True)):
        with h5py.File(scan, "a") as f:
            if soc is not None:
                f["entry/sample/state_of_charge"] = soc
            if ends is not None:
                f["entry/end_time"] = ends[k]
    return scans


# 0.5, 2 and 4 h into a 5 h charge whose log starts at 09:00 on a clock at +01:00
AT_1 = ["2026-01-02T09:30:00+01:00", "2026-01-02T11:00:00+01:00", "2026-01-02T13:00:00+01:00"]
ENDS = ["2026-01-02T09:45:00+01:00", "2026-01-02T11:15:00+01:00", "2026-01-02T13:15:00+01:00"]
# the same instants on a beamline clock two hours east of the log's
AT_3 = ["2026-01-02T11:30:00+03:00", "2026-01-02T13:00:00+03:00", "2026-01-02T15:00:00+03:00"]
TWO_HOURS = (
    r"op_0\.h5::/entry/sample/state_of_charge records 0\.1 \(step 0\) and the log .*c\.mpt "
    r"reads 0\.5 there: of the 2 scans .* 2 differ .* Read 2 h earlier on the log, every one "
    r"agrees: .* give --log-utc-offset-h \+1 if"
)
TWICE = (
    r"op_1\.h5::.* records 0\.4 \(step 1\) and the log .* reads 0\.2 there: .* With "
    r"--capacity-mah 5 every one agrees"
)


@pytest.mark.parametrize(
    ("stamps", "socs", "ends", "capacity", "said"),
    [
        (AT_1, [0.1, 0.4, 0.8], None, 5.0, None),
        (AT_1, [0.14, 0.36, 0.8], None, None, None),  # within 0.05
        (AT_1, [0.1, 0.4, 0.8], ENDS, 5.0, None),  # read at the start, the log at the middle
        (AT_3, [0.1, 0.4, 0.8], None, 5.0, TWO_HOURS),
        (AT_3, [0.1, None, 0.8], None, 5.0, r"of the 1 scans .* 1 differs .* 2 h earlier"),
        (AT_1, [0.1, 0.4, 0.8], None, 10.0, TWICE),
    ],
)
def test_a_log_the_scans_contradict_is_refused(
    tmp_path: Path,
    stamps: list[str],
    socs: list[float | None],
    ends: list[str] | None,
    capacity: float | None,
    said: str | None,
) -> None:
    """Scans recording their state of charge (0.1, 0.4 and 0.8 of a 5 h charge of 5 mAh)
    beside a log: the log's values were used and the scans' never read. With the log's
    clock 2 h off the scans' (a PC at +01:00, scans at +03:00) the series read 0.5, 0.8
    and none (past the log's end) for 0.1, 0.4 and 0.8, and with --capacity-mah 10 0.05,
    0.2 and 0.4, exit 0. Refused where they differ by more than 0.05 (SOC_SLACK: a
    writer's value rounded, or counted over the nominal capacity, 5 % off at full charge;
    two hours of a 5 h charge are 0.4), naming the scan, both values, and the whole-hour
    shift or the capacity that makes them agree; the scans' value is compared with the
    log's over the scan (from start to end: a writer may read it at the start, where the
    log is read at the middle) and only where it is recorded."""
    log = read_potentiostat_log(_mpt_log(tmp_path / "c.mpt", "01/02/2026 09:00:00", 5.0))
    scans = _scans_recording(tmp_path / "op", stamps, socs, ends)
    if said is None:
        timeline = build_timeline(scans, log, capacity_mah=capacity, max_gap_s=300)
        middle = 0.025 if ends else 0.0
        np.testing.assert_allclose(timeline.soc, np.array([0.1, 0.4, 0.8]) + middle, atol=1e-5)
    else:
        with pytest.raises(ValueError, match=said):
            build_timeline(scans, log, capacity_mah=capacity, max_gap_s=300)


def test_two_untimed_steps_at_one_state_of_charge_are_noted(tmp_path: Path) -> None:
    """One scan given twice (re-exported, its values 0.1 % off: not refused as a copy),
    the scans recording their state of charge and no start time: it counted twice in the
    curves and the cores' shrink rate (18889 um2 per unit charge for 18757), exit 0. A note
    names the two steps; with start times apart (two scans at rest) none."""
    folder = tmp_path / "untimed"
    folder.mkdir()
    scans = []
    for k, soc in enumerate([0.0, 0.5, 0.5, 1.0]):
        scans.append(folder / f"op_{k}.h5")
        with h5py.File(scans[-1], "w") as f:
            f["entry/sample/state_of_charge"] = soc
            f["entry/instrument/detector/data"] = np.zeros((1, 2, 2), np.float32)
    notes = build_timeline(scans, None, capacity_mah=None, max_gap_s=300).warnings
    assert [n for n in notes if "one state of charge" in n] == [
        "steps 1 and 2 (op_1.h5, op_2.h5) record one state of charge (0.5) and no start time "
        "to tell them apart: one scan given twice? Each counts in the curves and the cores' "
        "rates"
    ]
    timed = _scans_recording(tmp_path / "timed", AT_1, [0.0, 0.5, 0.5], None)
    notes = build_timeline(timed, None, capacity_mah=None, max_gap_s=300).warnings
    assert not [n for n in notes if "one state of charge" in n]


def test_a_runs_waxs_axis_options_do_not_reach_integrated_steps(
    twin_series: Path, tmp_path: Path
) -> None:
    """`jellyroll run` with `[waxs] npt = 800` (for the cell's frame scan) and a series of
    patterns integrated already: the steps were refused (`--npt 800 ... Leave them out`),
    and nothing in the TOML could leave them out for the series alone. The run now passes
    the series its `[waxs]` options but the axis ones; the other options still reach it."""
    from jellyroll.pipeline.run import operando_reduce_options
    from jellyroll.reduce.options import ReduceOptions

    options = ReduceOptions(npt=800, filter="none")
    with pytest.raises(ValueError, match=r"--npt 800 \(it has \d+ bins\)"):
        _run(twin_series, tmp_path / "as_given.h5", reduce_options=options)
    passed = operando_reduce_options(options, framed=False)
    assert passed.model_fields_set == {"filter"} and passed.filter == "none"
    assert operando_reduce_options(options, framed=True) is options
    result = _run(twin_series, tmp_path / "op.h5", reduce_options=passed)
    assert len(result.steps) == 3


def test_a_binary_file_given_as_the_log_is_named_as_such(tmp_path: Path) -> None:
    """A PNG or an HDF5 file given as --log was read as a CSV: "missing time, voltage,
    current, charge (found png)"."""
    path = tmp_path / "pic.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ValueError, match=r"pic\.png: a binary file .*not a potentiostat log"):
        read_potentiostat_log(path)

"""Sinogram assembly: placement by motor positions, attenuation, rotation centre."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.phantom.acquisition import acquisition_schedule, interlaced_angles
from jellyroll.phantom.scan import project_twin, scan_geometry, simulate_acquisition
from jellyroll.phantom.twin import make_twin
from jellyroll.recon import ParallelGeometry, forward
from jellyroll.sinogram import (
    UNPLACED,
    air_columns_problem,
    air_reference,
    attenuation_sinogram,
    cluster_positions,
    estimate_rotation_centre,
    frame_readings_problems,
    monitor_scale,
    place,
    projection_totals_spread,
    sinogram_layout,
)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 60),
    step=st.floats(0.001, 5.0),
    offset=st.floats(-100, 100),
    seed=st.integers(0, 2**31),
)
def test_cluster_positions_recovers_a_jittered_grid(n: int, step: float, offset: float, seed: int):
    """Readings within +-10 % of a step of their grid point cluster back to that point."""
    rng = np.random.default_rng(seed)
    grid = offset + step * np.arange(n)
    index = rng.integers(0, n, size=5 * n)
    index[:n] = np.arange(n)  # every position read at least once
    readings = grid[index] + rng.uniform(-0.1, 0.1, index.size) * step
    positions, found = cluster_positions(readings)
    assert positions.size == n
    assert np.allclose(positions, grid, atol=0.1 * step)
    assert np.array_equal(found, index)


def test_layout_of_an_interlaced_zigzag_scan_with_jitter() -> None:
    rng = np.random.default_rng(0)
    angles = interlaced_angles(3, 20)
    translations = 10.0 + 0.01 * np.arange(50)
    schedule = acquisition_schedule(
        angles, translations, zigzag=True, missing_fraction=0.05, rng=rng
    )
    present = ~schedule.missing
    jitter_angle = rng.normal(0, 0.002, schedule.n_frames)  # encoder noise, deg
    jitter_t = rng.normal(0, 2e-5, schedule.n_frames)  # 20 nm
    layout = sinogram_layout(
        (schedule.angle_deg + jitter_angle)[present],
        (schedule.translation_mm + jitter_t)[present],
    )
    assert np.allclose(layout.rotation_angle_deg, np.sort(angles.ravel()), atol=0.01)
    assert np.array_equal(layout.angle_index, schedule.angle_index[present])
    assert np.array_equal(layout.translation_index, schedule.translation_index[present])
    values = np.arange(schedule.n_frames, dtype=float)[present]
    placed = place(layout, values)
    assert np.isnan(placed).sum() == schedule.missing.sum()
    cells = (schedule.angle_index[present], schedule.translation_index[present])
    assert np.array_equal(placed[cells], values)


def test_place_averages_duplicates() -> None:
    layout = sinogram_layout(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0, 1.0]))
    placed = place(layout, np.array([[1.0], [3.0], [5.0], [7.0]]))
    assert placed.shape == (2, 2, 1)
    assert placed[0, 0, 0] == 2.0 and np.isnan(placed[0, 1, 0])
    assert layout.occupancy().max() == 2


def test_a_line_of_two_translations_is_placed() -> None:
    """Two readings: the grid's outer-2 % cut left none of them and the step search failed
    with numpy's 'zero-size array to reduction operation minimum'."""
    layout = sinogram_layout(np.zeros(2), np.array([0.0, 1.0]))
    np.testing.assert_allclose(layout.translation_mm, [0.0, 1.0], atol=1e-4)  # 1e-4 of the step
    assert layout.placed.all()


def _jittered_scan(
    per_subset: int = 12, n_translations: int = 104, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 3-subset interlaced zigzag scan over 0-180 deg (step 5 deg) and 104 translations
    of 20 um, readings jittered by up to 10 % of a step: (angles, translations, true cells)."""
    rng = np.random.default_rng(seed)
    translations = 5.0 + 0.02 * np.arange(n_translations)
    schedule = acquisition_schedule(interlaced_angles(3, per_subset), translations, zigzag=True)
    n = schedule.n_frames
    angle = schedule.angle_deg + rng.uniform(-0.5, 0.5, n)
    translation = schedule.translation_mm + rng.uniform(-0.002, 0.002, n)
    return angle, translation, schedule.angle_index, schedule.translation_index


def test_lost_projections_leave_empty_rows() -> None:
    """All frames of two neighbouring projections lost: the hole is not taken for the step."""
    angle, translation, rows, _columns = _jittered_scan()
    keep = ~np.isin(rows, [10, 11])
    layout = sinogram_layout(angle[keep], translation[keep])
    assert layout.shape == (36, 104)
    assert layout.placed.all() and not layout.rejected
    occupancy = layout.occupancy()
    assert np.flatnonzero(occupancy.sum(axis=1) == 0).tolist() == [10, 11]
    assert np.array_equal(layout.angle_index, rows[keep])
    # the empty rows keep their nominal angles (exact grid: step 5 deg)
    np.testing.assert_allclose(layout.rotation_angle_deg[[10, 11]], [50.0, 55.0], atol=0.05)


def test_lost_translation_steps_leave_empty_columns() -> None:
    angle, translation, _rows, columns = _jittered_scan()
    keep = ~np.isin(columns, [40, 41, 42, 43])
    layout = sinogram_layout(angle[keep], translation[keep])
    assert layout.shape == (36, 104)
    assert np.array_equal(layout.translation_index, columns[keep])
    assert np.flatnonzero(layout.occupancy().sum(axis=0) == 0).tolist() == [40, 41, 42, 43]


@pytest.mark.parametrize(
    "angles",
    [
        np.r_[np.arange(270.0, 360.0), np.arange(0.0, 90.0)],  # -90..90 read modulo 360
        np.r_[np.arange(0.0, 45.0), np.arange(135.0, 180.0)],  # the middle half lost
    ],
    ids=["modulo-360", "middle-lost"],
)
def test_two_runs_of_projections_are_not_taken_for_two_cells(angles: np.ndarray) -> None:
    """Projections in two runs far apart made a strong spectral peak at their distance: the
    grid took it for the step, and every run of 45-90 projections was averaged into one
    cell (a sinogram of 2 angles, nothing rejected, exit 0). Each projection keeps its cell
    and its angle (jitter 0.01 deg: the placed angles match within 5 sigma)."""
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(angles.size), 8)
    angle = angles[rows] + rng.normal(0.0, 0.01, rows.size)
    translation = 1.0 + 0.01 * np.tile(np.arange(8), angles.size)
    layout = sinogram_layout(angle, translation)
    assert not layout.rejected
    assert layout.occupancy().max() == 1
    assert (layout.occupancy().sum(axis=1) > 0).sum() == angles.size
    placed = layout.rotation_angle_deg[layout.angle_index]
    np.testing.assert_allclose(placed, angles[rows], atol=0.05)
    # one grid of 1 deg across the hole (a step between means of 8 readings: sigma 0.005)
    np.testing.assert_allclose(np.diff(layout.rotation_angle_deg), 1.0, atol=0.03)


@pytest.mark.parametrize(
    "turns",
    [(0, 0, 1), (0, -1, 0), (0, 1, 2)],
    ids=["third-subset-next-turn", "second-subset-turn-before", "a-turn-each"],
)
def test_interlaced_subsets_read_on_successive_turns_make_the_single_turn_grid(
    turns: tuple[int, int, int],
) -> None:
    """Subsets recorded on successive turns of a continuously rotating stage (0, 15, ...
    and 370, 385, ... deg as the encoder reads them) are the projections of one turn: the
    gapped comb of their readings made a step of 6.6 deg instead of 5 (82 rows, 1247 of 3744
    frames left out "off the grid", a SAXS map 26 % off, exit 0). Folded by whole turns,
    the readings give the single-turn layout: the same cells, and the same angles up to the
    rounding of a whole turn taken off a reading (1e-9 deg)."""
    angle, translation, rows, columns = _jittered_scan()
    single = sinogram_layout(angle, translation)
    turned = angle + 360.0 * np.asarray(turns)[rows % 3]  # subset k holds rows k, k + 3, ...
    layout = sinogram_layout(turned, translation)
    assert layout.shape == (36, 104) and not layout.rejected
    np.testing.assert_array_equal(layout.angle_index, rows)
    np.testing.assert_array_equal(layout.translation_index, columns)
    np.testing.assert_allclose(layout.rotation_angle_deg, single.rotation_angle_deg, atol=1e-9)


def test_a_projection_read_on_two_turns_is_one_cell_its_frames_averaged() -> None:
    """Two turns of 72 projections of 5 deg (0-355 and 360-715 deg) are 72 projections read
    twice: each cell averages its two frames, as duplicates are; the angles of the turn
    that holds the lowest reading are kept."""
    angles = 5.0 * np.arange(144)
    rows = np.repeat(np.arange(144), 4)
    translation = 1.0 + 0.01 * np.tile(np.arange(4), 144)
    layout = sinogram_layout(angles[rows], translation)
    assert layout.shape == (72, 4) and not layout.rejected
    np.testing.assert_array_equal(layout.angle_index, rows % 72)
    np.testing.assert_allclose(layout.rotation_angle_deg, 5.0 * np.arange(72), atol=1e-9)
    assert np.all(layout.occupancy() == 2)
    placed = place(layout, np.where(rows < 72, 1.0, 3.0))  # first turn 1, second 3
    np.testing.assert_array_equal(placed, 2.0)


def test_turns_of_no_whole_number_of_steps_are_not_folded() -> None:
    """A continuous rotation in steps of 7 deg over two turns (0-714 deg) reads a new
    projection at every step (360 deg is 51.4 steps): folded, the second turn's readings
    would lie 3 deg off the first's grid. Each frame keeps its own cell and angle."""
    angles = 7.0 * np.arange(103)
    rows = np.repeat(np.arange(103), 4)
    layout = sinogram_layout(angles[rows], 1.0 + 0.01 * np.tile(np.arange(4), 103))
    assert layout.shape == (103, 4) and not layout.rejected
    np.testing.assert_array_equal(layout.angle_index, rows)
    np.testing.assert_allclose(layout.rotation_angle_deg, angles, atol=1e-9)


@settings(max_examples=80, deadline=None)
@given(
    subsets=st.integers(1, 4),
    per_subset=st.integers(4, 30),
    turn_deg=st.sampled_from([180.0, 360.0]),
    turns=st.lists(st.integers(-1, 2), min_size=4, max_size=4),
    origin=st.floats(-180.0, 180.0),
    jitter=st.floats(0.0, 0.1),
    n_t=st.integers(2, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_subsets_read_on_any_turns_land_on_one_grid(
    subsets: int,
    per_subset: int,
    turn_deg: float,
    turns: list[int],
    origin: float,
    jitter: float,
    n_t: int,
    seed: int,
) -> None:
    """Interlaced subsets over 180 or 360 deg (a turn a whole number of steps), each read on
    a turn of its own (-1 to 2), jittered within +-``jitter`` of a step, in any order: one
    grid of the fine step, each projection one cell at its angle modulo a turn (within the
    jitter), nothing rejected."""
    rng = np.random.default_rng(seed)
    fine = turn_deg / (subsets * per_subset)
    index = np.concatenate([s + subsets * np.arange(per_subset) for s in range(subsets)])
    turn = np.repeat(np.asarray(turns[:subsets]), per_subset)
    ia, it = np.repeat(index, n_t), np.tile(np.arange(n_t), index.size)
    angle = origin + fine * ia + 360.0 * np.repeat(turn, n_t)
    angle += rng.uniform(-jitter, jitter, ia.size) * fine
    order = rng.permutation(ia.size)
    ia, it, angle = ia[order], it[order], angle[order]
    layout = sinogram_layout(angle, 1.0 + 0.01 * it)
    assert layout.shape == (index.size, n_t) and not layout.rejected
    cells = np.unique(np.stack([ia, layout.angle_index]), axis=1)
    assert cells.shape[1] == index.size == np.unique(cells[1]).size  # one cell a projection
    off = layout.rotation_angle_deg[layout.angle_index] - (origin + fine * ia)
    off = (off + 180.0) % 360.0 - 180.0  # modulo a turn
    assert np.abs(off).max() <= jitter * fine + 1e-9


def test_a_stray_angle_reading_is_reported_not_placed() -> None:
    angle, translation, rows, columns = _jittered_scan()
    angle[123] = -37.0
    layout = sinogram_layout(angle, translation)
    assert layout.shape == (36, 104)
    assert layout.angle_index[123] == UNPLACED and layout.translation_index[123] == UNPLACED
    assert np.flatnonzero(~layout.placed).tolist() == [123]
    (rejected,) = layout.rejected
    assert (rejected.frame, rejected.axis, rejected.reading) == (123, "rotation_angle", -37.0)
    others = layout.placed
    assert np.array_equal(layout.angle_index[others], rows[others])
    placed = place(layout, np.ones(angle.size))
    assert np.isnan(placed[rows[123], columns[123]])  # its cell had no other frame


def test_a_stray_far_on_the_grid_extension_does_not_extend_the_grid() -> None:
    """-40 deg is on the 5-deg grid, 8 cells below the scan: one frame there is a stray."""
    angle, translation, _rows, _columns = _jittered_scan()
    angle[7] = -40.0
    layout = sinogram_layout(angle, translation)
    assert layout.shape == (36, 104)
    assert [item.frame for item in layout.rejected] == [7]
    assert "outside the scanned range" in layout.rejected[0].reason


@pytest.mark.parametrize("axis", ["angle", "translation"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_readings_are_reported_not_placed(axis: str, bad: float) -> None:
    angle, translation, _rows, _columns = _jittered_scan()
    (angle if axis == "angle" else translation)[[3, 500]] = bad
    layout = sinogram_layout(angle, translation)
    assert layout.shape == (36, 104)
    assert np.all(np.isfinite(layout.rotation_angle_deg))
    assert np.all(np.isfinite(layout.translation_mm))
    assert np.flatnonzero(~layout.placed).tolist() == [3, 500]
    assert [(item.frame, item.reason) for item in layout.rejected] == [
        (3, "is not finite"),
        (500, "is not finite"),
    ]
    assert layout.occupancy().sum() == angle.size - 2


def test_duplicates_are_averaged_and_unplaced_frames_left_out() -> None:
    """A frame repeated in its cell (0.1 deg further off, well within tolerance) is averaged."""
    angle, translation, rows, columns = _jittered_scan()
    angle = np.r_[angle, angle[:10] + 0.1, 999.0]
    translation = np.r_[translation, translation[:10], translation[0]]
    values = np.r_[np.zeros(rows.size), np.full(10, 2.0), 5.0]
    layout = sinogram_layout(angle, translation)
    assert layout.shape == (36, 104)
    assert not layout.placed[-1]
    placed = place(layout, values)
    duplicated = (rows[:10], columns[:10])
    assert np.all(placed[duplicated] == 1.0) and layout.occupancy()[duplicated].tolist() == [2] * 10
    assert np.nansum(placed) == 10.0


def test_tolerance_and_step_hint() -> None:
    """A reading 1.2 deg off its cell is within the default tolerance (a third of 5 deg)
    but not within an explicit 1 deg; the step hint gives the same grid."""
    angle, translation, rows, _columns = _jittered_scan()
    angle[0] = 1.2
    assert sinogram_layout(angle, translation).placed[0]
    strict = sinogram_layout(angle, translation, angle_tolerance_deg=1.0)
    assert not strict.placed[0] and strict.shape == (36, 104)
    hinted = sinogram_layout(angle, translation, angle_step_deg=5.0)
    np.testing.assert_array_equal(hinted.angle_index, rows)
    with pytest.raises(ValueError, match="tolerance"):
        sinogram_layout(angle, translation, angle_tolerance_deg=3.0)


@pytest.mark.parametrize(
    ("keyword", "hint"),
    [("angle_step_deg", -6.0), ("angle_step_deg", 0.0), ("translation_step_mm", np.nan)],
)
def test_a_step_hint_that_is_no_step_is_refused(keyword: str, hint: float) -> None:
    """``angle_step_deg=-6`` (a scan read from 180 to 0 deg) or 0 took the axis for one
    position: 30 projections of 0-174 deg averaged into one at 87 deg, shape (1, 5), no
    frame rejected, exit 0. A step hint must be finite and positive."""
    angle = np.repeat(np.arange(0.0, 180.0, 6.0), 5)
    translation = np.tile(0.01 * np.arange(5), 30)
    with pytest.raises(ValueError, match=f"{keyword} .* is not a step"):
        sinogram_layout(angle, translation, **{keyword: hint})
    assert sinogram_layout(angle, translation, angle_step_deg=6.0).shape == (30, 5)


def test_lost_last_projections_shorten_the_grid() -> None:
    """Without metadata the nominal count is unknown: lost ends shorten the grid."""
    angle, translation, rows, _columns = _jittered_scan()
    keep = rows < 33
    layout = sinogram_layout(angle[keep], translation[keep])
    assert layout.shape == (33, 104)
    assert np.array_equal(layout.angle_index, rows[keep])


def test_frame_readings_problems() -> None:
    angle = np.array([0.0, np.nan, 2.0, 3.0, 4.0])
    translation = np.array([0.0, 1.0, np.inf, 1.0, 1.0])
    monitor = np.array([1.0, 1.0, 1.0, 0.0, np.nan])
    diode = np.array([1.0, 1.0, -1.0, 1.0, 1.0])
    valid, messages = frame_readings_problems(angle, translation, monitor, diode)
    assert valid.tolist() == [True, False, False, False, False]
    assert messages == [
        "rotation angle (deg) is not finite at 1 frame(s): frame 1: nan",
        "translation (mm) is not finite at 1 frame(s): frame 2: inf",
        "monitor is not finite or not positive at 2 frame(s): frame 3: 0, frame 4: nan",
        "diode is not finite or negative at 1 frame(s): frame 2: -1",
    ]
    valid, messages = frame_readings_problems(np.full(20, np.nan), np.zeros(20), max_listed=2)
    assert not valid.any()
    assert messages == ["rotation angle (deg) is not finite at 20 frame(s): "
                        "frame 0: nan, frame 1: nan and 18 more"]  # fmt: skip
    assert frame_readings_problems(angle[:1], translation[:1]) == (np.array([True]), [])


def test_a_monitor_glitch_is_left_out_and_rescales_no_other_frame() -> None:
    """A counter glitch of 1e4 times the monitor put its frame's pattern near 0 (a dark cell
    that passes for a void) and, through the mean, scaled every other frame by 1/1.1 (100
    frames): the frame is now left out, and the scale is the median's."""
    monitor = np.full(100, 1000.0)
    monitor[7] = 1e7
    valid, messages = frame_readings_problems(np.zeros(100), np.zeros(100), monitor)
    assert np.flatnonzero(~valid).tolist() == [7]
    assert messages == ["monitor is above 10 times its median 1000 (glitch?) at 1 frame(s): "
                        "frame 7: 1e+07"]  # fmt: skip
    np.testing.assert_array_equal(monitor_scale(monitor, valid)[valid], 1.0)
    # the median holds even where the glitch is let through
    np.testing.assert_array_equal(monitor_scale(monitor, np.ones(100, bool))[valid], 1.0)


def test_monitor_scale_ignores_invalid_frames() -> None:
    monitor = np.array([1.0, 3.0, np.nan, -2.0])
    valid = np.array([True, True, False, False])
    np.testing.assert_array_equal(monitor_scale(monitor, valid), [0.5, 1.5, np.nan, np.nan])
    np.testing.assert_array_equal(monitor_scale(None, valid), [1.0, 1.0, np.nan, np.nan])
    with pytest.raises(ValueError):
        monitor_scale(monitor, np.zeros(4, bool))


@pytest.mark.parametrize(("preset", "size", "seed"), [
    ("aged_charged", "tiny", 0), ("fresh_discharged", "tiny", 3), ("aged_discharged", "small", 1),
])  # fmt: skip
def test_rotation_centre_within_a_quarter_pixel(preset: str, size: str, seed: int) -> None:
    """From the noisy diode/monitor attenuation sinogram with dropped frames, the centre
    is found within 0.25 translation steps of the twin's true rotation axis."""
    twin = make_twin(preset, size, seed=seed)
    geometry = scan_geometry(twin)
    projections = project_twin(twin, geometry)
    schedule, counters = simulate_acquisition(projections, missing_fraction=0.01, seed=seed)
    present = ~schedule.missing
    layout = sinogram_layout(schedule.angle_deg[present], schedule.translation_mm[present])
    ratio = place(layout, counters.diode[present] / counters.monitor[present])
    attenuation = attenuation_sinogram(ratio)
    centre = estimate_rotation_centre(attenuation, layout.rotation_angle_deg, layout.translation_mm)
    step_mm = twin.pixel_size_um / 1000
    assert abs(centre - geometry.rotation_centre_mm) < 0.25 * step_mm
    # the attenuation sinogram is the true mu line integral within the diode noise
    truth = projections.attenuation
    finite = np.isfinite(attenuation)
    assert np.median(np.abs(attenuation - truth)[finite]) < 0.02


def _air_scan(n_a: int = 6, n_t: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Totals and diode ratios of a sample in the middle 30 columns, air on both sides."""
    total = np.full((n_a, n_t), 2.0)
    total[:, 10:40] = 100.0
    transmission = np.ones((n_a, n_t))
    transmission[:, 10:40] = 0.2
    return total, transmission


def test_air_at_the_line_ends_is_air() -> None:
    total, transmission = _air_scan()
    total[0, :3] = np.nan  # a few missing cells do not matter
    assert air_columns_problem(total, transmission) is None
    assert air_columns_problem(total, None) is None


def test_line_ends_inside_the_sample_are_not_air() -> None:
    total, transmission = _air_scan()
    # the scan saw only the sample: its ends scatter as much as its middle
    assert "scatter 100%" in air_columns_problem(total[:, 12:38], None)  # type: ignore[operator]
    # the ends scatter little, but the diode reads them attenuated against the scan's
    # clearest beam (here a hollow core in the middle): the scattering test alone would pass
    attenuated = transmission.copy()
    attenuated[:, :10] = attenuated[:, 40:] = 0.3
    attenuated[:, 20:30] = 1.0
    assert air_columns_problem(total, None) is None
    assert "diode reads 30%" in air_columns_problem(total, attenuated)  # type: ignore[operator]
    # the ends scatter half as much as the middle: still not air (the bar is 50 %)
    half = total.copy()
    half[:, :10] = half[:, 40:] = 50.0
    assert air_columns_problem(half, None) is not None
    half[:, :10] = half[:, 40:] = 49.0
    assert air_columns_problem(half, None) is None


def test_a_centre_fitted_outside_the_translations_is_refused() -> None:
    """Angles in radians read as degrees (0-3 deg) fit the axis 586 mm away: the reduction
    wrote it and every map came out empty. A centre outside the scan is no centre."""
    translations = np.linspace(9.0, 11.0, 104)
    angles = np.linspace(0.0, 180.0, 36, endpoint=False)
    track = 10.03 + 0.4 * np.cos(np.deg2rad(angles)) + 0.2 * np.sin(np.deg2rad(angles))
    blob = np.exp(-0.5 * ((translations[None] - track[:, None]) / 0.1) ** 2)
    assert estimate_rotation_centre(blob, angles, translations) == pytest.approx(10.03, abs=1e-6)
    with pytest.raises(ValueError, match=r"outside the scanned 9 to 11 mm"):
        estimate_rotation_centre(blob, np.deg2rad(angles), translations)


def test_a_level_under_the_whole_line_does_not_pull_the_centre() -> None:
    """A background under every line (air scattering not subtracted, 20 % of the peak)
    pulled the centre of mass towards the scan's middle: with the axis 10 steps off it, the
    centre came out 3.2 steps off, exit 0 (a blurred map, or a right recorded centre
    refused). The lines' level is taken off first: the error is that of the level-free
    sinogram (0.07 steps here, from the pixelated disk), under a tenth of a step."""
    n, step = 64, 0.01
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    disk = ((xx - 4) ** 2 + (yy + 3) ** 2 < (0.3 * n) ** 2).astype(np.float32)
    angles = np.linspace(0.0, 180.0, 60, endpoint=False)
    translations = 3.0 + (np.arange(n) - (n - 1) / 2) * step
    centre = 3.0 + 10.3 * step
    projections = forward(ParallelGeometry.from_scan(angles, translations, centre), disk)
    found = estimate_rotation_centre(projections + 0.2 * projections.max(), angles, translations)
    assert abs(found - centre) < 0.1 * step


@st.composite
def _scans(draw) -> dict:
    """A raster scan's readings: n_angles x n_translations cells on regular grids of random
    step and origin, optionally interlaced (the angles of k subsets, each offset by step/k,
    acquired one subset after another), each frame jittered within +-``jitter`` of a step,
    some inner cells lost (never a whole first or last row or column, which would shorten
    the grid as documented), some read twice, the frames in any order."""
    n_a, n_t = draw(st.integers(3, 24)), draw(st.integers(3, 24))
    a_step = draw(st.floats(0.2, 12.0))
    t_step = draw(st.floats(1e-3, 0.2))
    a0, t0 = draw(st.floats(-180.0, 180.0)), draw(st.floats(-20.0, 20.0))
    # grid_step's documented weakness is jitter near a quarter step; 10 % keeps clear of it
    jitter = draw(st.floats(0.0, 0.1))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ia, it = (g.ravel() for g in np.meshgrid(np.arange(n_a), np.arange(n_t), indexing="ij"))
    inner = (ia > 0) & (ia < n_a - 1) & (it > 0) & (it < n_t - 1)
    lost = inner & (rng.random(ia.size) < draw(st.floats(0.0, 0.2)))
    twice = rng.random(ia.size) < draw(st.floats(0.0, 0.1))
    keep = np.r_[np.flatnonzero(~lost), np.flatnonzero(~lost & twice)]
    keep = rng.permutation(keep)
    ia, it = ia[keep], it[keep]
    angle = a0 + a_step * ia + rng.uniform(-jitter, jitter, ia.size) * a_step
    translation = t0 + t_step * it + rng.uniform(-jitter, jitter, it.size) * t_step
    return {
        "angle": angle,
        "translation": translation,
        "ia": ia,
        "it": it,
        "shape": (n_a, n_t),
        "steps": (a_step, t_step),
        "jitter": jitter,
    }


@settings(max_examples=120, deadline=None)
@given(_scans())
def test_every_frame_of_a_jittered_gappy_shuffled_scan_lands_in_its_cell(scan: dict) -> None:
    """The grid of any such scan is found whole: its shape, its ascending axes within the
    jitter of the nominal grid, every frame placed in the cell it was read in (never a
    coarser grid that merges cells), nothing rejected."""
    layout = sinogram_layout(scan["angle"], scan["translation"])
    assert layout.shape == scan["shape"]
    assert not layout.rejected
    assert np.array_equal(layout.angle_index, scan["ia"])
    assert np.array_equal(layout.translation_index, scan["it"])
    for axis, step in zip(
        (layout.rotation_angle_deg, layout.translation_mm), scan["steps"], strict=True
    ):
        assert np.all(np.diff(axis) > 0)
        # a cell's position is the mean of its readings, or nominal where empty (the fitted
        # step is off by at most the jitter over the span, so within one jitter + rounding)
        np.testing.assert_allclose(np.diff(axis), step, atol=2 * scan["jitter"] * step + 1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 4),
    st.integers(4, 30),
    st.floats(0.5, 10.0),
    st.floats(-90.0, 90.0),
    st.integers(0, 2**32 - 1),
)
def test_interlaced_subsets_make_one_grid_of_the_fine_step(
    subsets: int, per_subset: int, coarse_step: float, origin: float, seed: int
) -> None:
    """k interlaced subsets of angles, each on the coarse grid shifted by coarse/k, acquired
    in turn and jittered by 2 % of the fine step, make one grid of the fine step: k times as
    many angles, each frame at its own angle."""
    rng = np.random.default_rng(seed)
    fine = coarse_step / subsets
    index = np.concatenate([s + subsets * np.arange(per_subset) for s in range(subsets)])
    n_t = 5
    ia = np.repeat(index, n_t)
    it = np.tile(np.arange(n_t), index.size)
    angle = origin + fine * ia + rng.uniform(-0.02, 0.02, ia.size) * fine
    layout = sinogram_layout(angle, 1.0 + 0.05 * it)
    assert layout.shape == (subsets * per_subset, n_t)
    assert np.array_equal(layout.angle_index, ia)


def test_an_air_reference_of_zero_gives_nan_not_minus_infinity() -> None:
    """A diode reading 0 in most air columns of one projection (a counter that read nothing
    for a few frames) made that projection's air reference 0 and every one of its cells
    -inf (NaN where the ratio was 0 too), exit 0: the share check of the reduction counts
    finite cells only and wrote it. That projection is now NaN (missing); the others keep
    their values exactly (-ln(0.1 / 0.3) in the middle)."""
    ratio = np.full((3, 10), 0.3)
    ratio[:, 3:7] = 0.1
    ratio[1, [0, 1, 8]] = 0.0  # 3 of the 4 air cells of projection 1
    attenuation = attenuation_sinogram(ratio)
    assert not np.isinf(attenuation).any()
    assert np.isnan(attenuation[1]).all()
    np.testing.assert_allclose(attenuation[[0, 2], 3:7], np.log(3.0), rtol=1e-12)
    np.testing.assert_allclose(attenuation[[0, 2]][:, [0, 1, 2, 7, 8, 9]], 0.0, atol=1e-12)


HALF_STEP_UM = 10.0


def _half_acquisition(axis_ray: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A full turn (3 deg steps) of a 60-pixel disk with an inclusion (1e-3 and 2e-3 /um)
    by 40 rays :data:`HALF_STEP_UM` apart, the axis ``axis_ray`` rays from the first end:
    its (120, 40) sinogram, angles (deg) and rays (um from the axis)."""
    n = 72
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    truth = (xx**2 + yy**2 < 30**2) * 1e-3 + ((xx - 14) ** 2 + (yy + 7) ** 2 < 7**2) * 2e-3
    angles = np.arange(0.0, 360.0, 3.0)
    t_um = (np.arange(40) - axis_ray) * HALF_STEP_UM + HALF_STEP_UM / 2
    geometry = ParallelGeometry(angles, t_um[0], HALF_STEP_UM, t_um.size, (n, n), HALF_STEP_UM)
    return forward(geometry, truth[..., None].astype(np.float32))[..., 0], angles, t_um


@pytest.mark.parametrize("axis_ray", [3, 6, 12])
def test_the_centre_of_a_half_acquisition_comes_from_its_conjugate_projections(
    axis_ray: int,
) -> None:
    """A full turn whose axis lies ``axis_ray`` rays from one end of 40 (half acquisition:
    a 60-pixel disk with an inclusion sticks out of every line at half the angles): the
    centre of mass, which assumes the sample stays in the field, put the axis 6.8, 7.3 and
    5.8 steps off, and the maps were noise, exit 0. Each projection mirrored now matches the
    one half a turn on; with 2 % Poisson-like noise the centre is within 0.1 step (the
    parabola through the pooled correlation's peak)."""
    sinogram, angles, t_um = _half_acquisition(axis_ray)
    rng = np.random.default_rng(axis_ray)
    noisy = sinogram + 0.02 * sinogram.max() * rng.standard_normal(sinogram.shape)
    translations_mm = 5.0 + t_um / 1000.0  # the axis at 5 mm on the stage
    centre = estimate_rotation_centre(noisy, angles, translations_mm)
    assert centre == pytest.approx(5.0, abs=0.1 * HALF_STEP_UM / 1000.0)


@pytest.mark.parametrize("n_angles", [121, 241])
def test_a_half_acquisition_whose_half_turn_is_no_whole_number_of_steps_is_placed(
    n_angles: int,
) -> None:
    """An odd number of angles over a turn (180 deg is a whole number of steps and a half):
    each projection was matched with the one nearest half a turn on, half a step off, and a
    grain 80 rays from the axis (a half acquisition, the axis 12 rays from one end of 120;
    analytic disks) turned by that much moved the match: the axis came out 0.84 and 0.54
    steps off, exit 0. The conjugate is interpolated in angle now: within 0.15 step (0.07
    and 0.01 measured: linear interpolation leaves an error growing with how far the grain
    moves between steps, 4 and 2 rays here)."""
    angles = np.linspace(0.0, 360.0, n_angles, endpoint=False)
    t_um = (np.arange(120) - 11.5) * HALF_STEP_UM
    theta = np.deg2rad(angles)[:, None]
    sinogram = np.zeros((n_angles, t_um.size))
    for x, y, radius, level in ((800.0, 240.0, 80.0, 1.0), (0.0, 0.0, 1060.0, 0.05)):
        chord = radius**2 - (t_um - x * np.cos(theta) - y * np.sin(theta)) ** 2
        sinogram += level * 2.0 * np.sqrt(np.clip(chord, 0.0, None))
    centre = estimate_rotation_centre(sinogram, angles, 5.0 + t_um / 1000.0)
    assert centre == pytest.approx(5.0, abs=0.15 * HALF_STEP_UM / 1000.0)


@pytest.mark.parametrize("axis_ray", [3, 6, 12])
def test_a_half_acquisition_keeps_its_totals_over_each_pair_of_conjugates(axis_ray: int) -> None:
    """The projections of a half acquisition (as above, noise-free) each see part of the
    sample: their totals alone vary by 5-8 % here and by 30-40 % for a sample that fills the
    long side, where the maps said "the sample leaves the field". Each ray weighted by its
    share of the line, a projection and its conjugate sum to the same total at every angle
    (0.03-0.05 % here, from the pixelated disk; the note starts at 10 %)."""
    sinogram, angles, t_um = _half_acquisition(axis_ray)
    assert projection_totals_spread(sinogram[:60], angles[:60], t_um) > 0.04  # alone
    assert projection_totals_spread(sinogram, angles, t_um) < 0.001


def test_a_half_acquisition_whose_conjugates_do_not_place_the_axis_is_refused() -> None:
    """A featureless disk centred on the axis, 10 rays from one end of 100 (2 % noise): its
    mirrored conjugates match at any shift about as well (pooled correlation under 0.2), and
    the centre of mass, which assumes the sample in the field, put the axis far off (224
    steps at the study's 1024 translations), exit 0. Refused now: one line end lies in the
    sample, so neither estimate holds; the user gives the centre."""
    n, step = 140, 10.0
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    disk = ((xx**2 + yy**2) < 60**2).astype(np.float32) * 1e-3
    angles = np.arange(0.0, 360.0, 3.0)
    t_um = (np.arange(100) - 10) * step + step / 2
    geometry = ParallelGeometry(angles, t_um[0], step, t_um.size, (n, n), step)
    sinogram = forward(geometry, disk[..., None])[..., 0]
    noisy = sinogram + 0.02 * sinogram.max() * np.random.default_rng(0).standard_normal(
        sinogram.shape
    )
    with pytest.raises(ValueError, match=r"too weakly to place the axis.*half acquisition"):
        estimate_rotation_centre(noisy, angles, 5.0 + t_um / 1000.0)


@pytest.mark.parametrize("short", [60, 90])
def test_a_half_acquisition_whose_second_half_lines_are_one_cell_short_is_placed(
    short: int,
) -> None:
    """The half acquisition above (axis 6 rays from the first end) whose last ``short`` of
    120 projections each lack their first cell (lines a cell shorter on the way back): the
    complete ones then span one half turn only, and the centre of mass, which assumes the
    sample in the field, placed the axis 5.3-10.8 steps off (the red team's analytic disks
    and its reduced twin), the maps noise, exit 0. The gaps are filled and the conjugates
    place it as in the complete turn (within 0.1 step at 2 % noise)."""
    sinogram, angles, t_um = _half_acquisition(6)
    rng = np.random.default_rng(short)
    noisy = sinogram + 0.02 * sinogram.max() * rng.standard_normal(sinogram.shape)
    noisy[-short:, 0] = np.nan
    centre = estimate_rotation_centre(noisy, angles, 5.0 + t_um / 1000.0)
    assert centre == pytest.approx(5.0, abs=0.1 * HALF_STEP_UM / 1000.0)


def test_a_half_turn_cut_by_one_end_of_its_lines_is_refused_a_centre() -> None:
    """Half a turn (0-177 deg) of the disk above with the axis 6 rays from the first end:
    the sample leaves the field at every angle, and the centre of mass placed the axis 5.6
    steps off (the red team's twin: 10.139 mm for 10.027), exit 0 with a note on biased
    maps only. No centre is estimated; the user is told to give one."""
    sinogram, angles, t_um = _half_acquisition(6)
    half = angles < 180.0
    with pytest.raises(ValueError, match=r"first end of the lines lies in the sample.*centre of"):
        estimate_rotation_centre(sinogram[half], angles[half], 5.0 + t_um / 1000.0)


def test_angles_without_an_air_cell_take_the_others_air() -> None:
    """A full turn whose first half's lines stop before the last columns (the air end of a
    half acquisition): the air mean and the diode's air reference of those angles were NaN,
    and their projections were written as NaN whole, exit 0 (2623 frames of the red team's
    twin). They take the median of the other angles' air now; the measured cells keep
    their values."""
    rng = np.random.default_rng(0)
    data = 1.0 + rng.random((6, 12, 3))
    data[:, 8:] = 0.5  # the air end: every angle's air scatters 0.5
    data[:3, 10:] = np.nan  # half the lines stop two steps short
    reference = air_reference(data[:, 10:12], np.full((6, 2, 3), 0.1))
    subtracted = data - reference.mean[:, None]  # as the reduction takes it off each line
    np.testing.assert_allclose(subtracted[:3, :10], data[:3, :10] - 0.5, rtol=1e-12)
    assert np.isnan(subtracted[:3, 10:]).all()  # never measured, never invented
    errors = np.sqrt(0.1**2 + reference.variance[:, None])
    np.testing.assert_allclose(errors[:3, :10], np.sqrt(0.01 + 0.01 / 2), rtol=1e-6)
    ratio = np.full((6, 12), 0.8)
    ratio[:, :8] = 0.2
    ratio[:3, 10:] = np.nan
    attenuation = attenuation_sinogram(ratio, np.arange(10, 12))
    np.testing.assert_allclose(attenuation[:, :8], np.log(4.0), rtol=1e-12)


@pytest.mark.parametrize("axis_ray", [3, 6, 12])
def test_a_half_acquisition_with_a_gap_is_placed_by_its_conjugates(axis_ray: int) -> None:
    """The half acquisition above with its last 33 deg lost (0-327 deg: a gap of 11 steps,
    no full turn): the centre of mass, which assumes the sample in the field, put the axis
    10.8, 9.3 and 4.3 steps off (noise-free) and the totals' spread read 4-8 %, exit 0. The
    conjugate pairs of the 0-147 deg projections place it as in the full turn (within 0.1
    step at 2 % noise, as there) and keep the totals within 0.1 % (0.03-0.05 % measured)."""
    sinogram, angles, t_um = _half_acquisition(axis_ray)
    keep = angles < 330.0
    rng = np.random.default_rng(axis_ray)
    noisy = sinogram + 0.02 * sinogram.max() * rng.standard_normal(sinogram.shape)
    centre = estimate_rotation_centre(noisy[keep], angles[keep], 5.0 + t_um / 1000.0)
    assert centre == pytest.approx(5.0, abs=0.1 * HALF_STEP_UM / 1000.0)
    assert projection_totals_spread(sinogram[keep], angles[keep], t_um) < 0.001

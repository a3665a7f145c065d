"""Sinogram assembly: placement by motor positions, attenuation, rotation centre."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.phantom.acquisition import acquisition_schedule, interlaced_angles
from jellyroll.phantom.scan import project_twin, scan_geometry, simulate_acquisition
from jellyroll.phantom.twin import make_twin
from jellyroll.sinogram import (
    attenuation_sinogram,
    cluster_positions,
    estimate_rotation_centre,
    place,
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

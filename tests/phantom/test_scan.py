"""The simulated pencil-beam scan against direct computation from the twin's truth."""

from __future__ import annotations

import numpy as np
import pytest

from jellyroll.phantom.acquisition import project
from jellyroll.phantom.scan import (
    CENTRE_OFFSET_PX,
    iter_frame_patterns,
    project_twin,
    scan_geometry,
    simulate_acquisition,
)
from jellyroll.phantom.twin import make_twin


@pytest.fixture(scope="module")
def scanned():
    twin = make_twin("fresh_charged", "tiny", seed=2)
    geometry = scan_geometry(twin)
    return twin, geometry, project_twin(twin, geometry)


@pytest.mark.parametrize("kind", ["waxs", "saxs"])
def test_sinogram_is_transmission_times_projected_patterns(scanned, kind: str) -> None:
    """Projecting the maps then mixing equals mixing per pixel then projecting: the
    linear model is exact. float32 accumulation limits agreement to ~1e-5 relative."""
    twin, geometry, projections = scanned
    q = getattr(twin.q, kind)
    channels = np.linspace(0, q.size - 1, 7).astype(int)
    per_pixel = np.moveaxis(twin.patterns(kind)[..., channels], -1, 0)
    direct = project(
        per_pixel,
        twin.pixel_size_um,
        geometry.sorted_angles_deg,
        geometry.translations_mm,
        rotation_centre_mm=geometry.rotation_centre_mm,
    )
    mu = project(
        twin.mu_xray_per_um,
        twin.pixel_size_um,
        geometry.sorted_angles_deg,
        geometry.translations_mm,
        rotation_centre_mm=geometry.rotation_centre_mm,
    )
    expected = direct * np.exp(-mu)[..., None]
    simulated = projections.sinogram(kind)[..., channels]
    assert np.allclose(simulated, expected, rtol=1e-4, atol=1e-5 * expected.max())


def test_scan_geometry_matches_the_study(scanned) -> None:
    twin, geometry, _ = scanned
    step = np.diff(geometry.translations_mm)
    assert np.allclose(step, twin.pixel_size_um / 1000.0)
    middle = geometry.translations_mm.mean()
    assert (geometry.rotation_centre_mm - middle) * 1000 / twin.pixel_size_um == pytest.approx(
        CENTRE_OFFSET_PX
    )
    angles = geometry.sorted_angles_deg
    assert angles.size == 3 * twin.size.angles_per_subset
    assert np.allclose(np.diff(angles), 180.0 / angles.size)


def test_attenuation_is_zero_outside_the_cell(scanned) -> None:
    twin, geometry, projections = scanned
    t_um = 1000 * (geometry.translations_mm - geometry.rotation_centre_mm)
    outside = np.abs(t_um) > twin.geometry.params.outer_radius_um + 250  # cell offset + beam
    assert np.all(projections.attenuation[:, outside] < 1e-6)
    assert projections.attenuation.max() > 0.1  # steel and Cu at 77 keV over a 1.6 mm cell


def test_frame_patterns_follow_monitor_and_skip_missing_frames(scanned) -> None:
    _, _, projections = scanned
    schedule, counters = simulate_acquisition(projections, missing_fraction=0.01, seed=0)
    seen = []
    for frames, patterns in iter_frame_patterns(
        projections, schedule, counters, "waxs", block_frames=100
    ):
        seen.append(frames)
        base = projections.sinogram("waxs")[
            schedule.angle_index[frames], schedule.translation_index[frames]
        ]
        scale = counters.monitor[frames] / counters.monitor.mean()
        assert np.allclose(patterns, base * scale[:, None], rtol=1e-5, atol=1e-6 * base.max())
    seen = np.concatenate(seen)
    assert np.array_equal(seen, np.flatnonzero(~schedule.missing))
    assert schedule.missing.sum() == round(0.01 * schedule.n_frames)
    # the diode sees the transmitted beam: lower behind the cell than in air
    mu = projections.attenuation[schedule.angle_index, schedule.translation_index]
    ratio = counters.diode / counters.monitor
    assert ratio[mu > 0.5 * mu.max()].mean() < ratio[mu < 1e-6].mean()

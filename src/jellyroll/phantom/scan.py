"""Pencil-beam SWAXS-CT of the twin: sinograms, monitor, diode and per-frame patterns.

Model: the pattern recorded at (angle, translation) is the beam-weighted line integral of
the per-pixel patterns (linear in the projection maps of :class:`~jellyroll.phantom.twin.Twin`),
times the transmission exp(-integral mu dl) of the whole ray at 77 keV, times the incident
monitor relative to its mean. Using the full-ray transmission for every scattering point
is exact for forward scattering and a good approximation at 77 keV for WAXS angles below
~15 deg, where in- and outgoing paths nearly coincide; it is the usual absorption model of
pencil-beam XRD-CT.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from jellyroll.phantom.acquisition import (
    Schedule,
    acquisition_schedule,
    interlaced_angles,
    project,
    simulate_diode,
    simulate_monitor,
)
from jellyroll.phantom.patterns import patterns_from_maps
from jellyroll.phantom.twin import Twin

STAGE_CENTRE_MM = 10.0
"""Stage reading at the middle of the translation range (arbitrary, as on a beamline)."""
CENTRE_OFFSET_PX = 1.37
"""Rotation axis offset from the middle of the translation range, in translation steps."""


@dataclass(frozen=True)
class ScanGeometry:
    """Angles (deg, (n_subsets, per_subset)), stage positions (mm), true rotation centre."""

    angles_deg: np.ndarray
    translations_mm: np.ndarray
    rotation_centre_mm: float
    beam_fwhm_um: float = 20.0

    @property
    def sorted_angles_deg(self) -> np.ndarray:
        return np.unique(self.angles_deg)


def scan_geometry(twin: Twin, *, beam_fwhm_um: float = 20.0) -> ScanGeometry:
    """The study's interlaced pencil-beam scan for the twin's size preset.

    The translation step equals the map pixel size; the rotation axis sits
    :data:`CENTRE_OFFSET_PX` steps off the middle of the range.
    """
    size = twin.size
    step_mm = twin.pixel_size_um / 1000.0
    n = size.n_translations
    translations = STAGE_CENTRE_MM + (np.arange(n) - (n - 1) / 2.0) * step_mm
    return ScanGeometry(
        angles_deg=interlaced_angles(size.n_subsets, size.angles_per_subset),
        translations_mm=translations,
        rotation_centre_mm=STAGE_CENTRE_MM + CENTRE_OFFSET_PX * step_mm,
        beam_fwhm_um=beam_fwhm_um,
    )


@dataclass
class Projections:
    """Projections of the twin's maps: ``values`` (n_angles, n_translations, n_maps)."""

    geometry: ScanGeometry
    values: np.ndarray
    names: list[str]
    bases: dict[str, np.ndarray]
    q: dict[str, np.ndarray]

    @property
    def attenuation(self) -> np.ndarray:
        """Line integral of mu at 77 keV (dimensionless), (n_angles, n_translations)."""
        return self.values[..., self.names.index("mu")]

    def sinogram(self, kind: str, angle_rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """Noise-free patterns per unit monitor, (n_angles, n_translations, n_q), float32."""
        return patterns_from_maps(
            self.values[angle_rows], self.names, self.bases[kind], attenuate=True
        )


def project_twin(twin: Twin, geometry: ScanGeometry) -> Projections:
    """Project all maps of the twin once, for every sorted angle and translation."""
    maps, names = twin.projection_maps()
    values = project(
        maps,
        twin.pixel_size_um,
        geometry.sorted_angles_deg,
        geometry.translations_mm,
        rotation_centre_mm=geometry.rotation_centre_mm,
        beam_fwhm_um=geometry.beam_fwhm_um,
    )
    q = {"waxs": twin.q.waxs, "saxs": twin.q.saxs}
    return Projections(geometry, values, names, twin.pattern_bases(), q)


@dataclass(frozen=True)
class Counters:
    """Per-frame incident monitor and transmitted diode counts, acquisition order."""

    monitor: np.ndarray
    diode: np.ndarray


def simulate_acquisition(
    projections: Projections,
    *,
    missing_fraction: float = 0.002,
    monitor_counts: float = 1e5,
    seed: int = 0,
) -> tuple[Schedule, Counters]:
    """Acquisition order (zigzag lines, interlaced subsets, dropped frames) and counters."""
    rng = np.random.default_rng(seed + 104729)
    geometry = projections.geometry
    schedule = acquisition_schedule(
        geometry.angles_deg,
        geometry.translations_mm,
        zigzag=True,
        missing_fraction=missing_fraction,
        rng=rng,
    )
    monitor = simulate_monitor(schedule.n_frames, mean_counts=monitor_counts, rng=rng)
    mu_line = projections.attenuation[schedule.angle_index, schedule.translation_index]
    diode = simulate_diode(monitor, mu_line, rng=rng)
    return schedule, Counters(monitor=monitor, diode=diode)


def iter_frame_patterns(
    projections: Projections,
    schedule: Schedule,
    counters: Counters,
    kind: str,
    *,
    block_frames: int = 512,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Noise-free patterns of the present frames in acquisition order, in blocks.

    Yields (frame indices into ``schedule``, patterns (k, n_q)) where patterns are the
    sinogram values times monitor / mean monitor; dropped frames are skipped. Memory
    holds one block, never the whole scan.
    """
    present = np.flatnonzero(~schedule.missing)
    mean_monitor = float(np.mean(counters.monitor))
    for start in range(0, present.size, block_frames):
        frames = present[start : start + block_frames]
        values = projections.values[
            schedule.angle_index[frames], schedule.translation_index[frames]
        ]
        patterns = patterns_from_maps(
            values, projections.names, projections.bases[kind], attenuate=True
        )
        patterns *= counters.monitor[frames, None] / mean_monitor
        yield frames, patterns

"""Pencil-beam parallel geometry of a reconstruction (the convention of
:mod:`jellyroll.phantom.acquisition`).

A map has shape ``(ny, nx)`` with square pixels of side ``pixel_size_um``; pixel
``(iy, ix)`` is centred at ``x = (ix - (nx - 1) / 2) p``, ``y = (iy - (ny - 1) / 2) p``
(um), the rotation axis at the map centre. At rotation angle ``theta`` the ray at lateral
position ``t`` is the line ``x cos(theta) + y sin(theta) = t``; a stage reading ``s`` (mm)
puts it at ``t = 1000 (s - rotation_centre_mm)``. Rays are equally spaced:
``t_j = t0_um + j * t_step_um``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from jellyroll.conventions import pixel_centres_um, sees_both_sides

__all__ = ["ParallelGeometry"]

UNIFORM_TOLERANCE = 0.05
"""Largest deviation of a stage reading from the fitted equally spaced grid, in steps.
Reduction places patterns on clustered motor positions, so the grid is uniform up to
encoder jitter averaged over a line; larger deviations mean a broken scan."""


MIN_COVERAGE_DEG = 90.0
"""Least angular range (deg) of a slice's projections: a parallel-beam slice needs 180."""
MAX_SPAN_DEG = 720.0
"""Widest span (deg) of a slice's rotation angles: two turns."""


def check_angular_coverage(angles_deg: np.ndarray) -> None:
    """ValueError unless the projections cover at least :data:`MIN_COVERAGE_DEG` modulo
    180 deg (at least 2 distinct angles) within :data:`MAX_SPAN_DEG`: what a few degrees
    of rotation give is no slice, and a scan recorded in radians reads as one."""
    finite = angles_deg[np.isfinite(angles_deg)]
    span = float(np.ptp(finite)) if finite.size else 0.0
    if span > MAX_SPAN_DEG:
        raise ValueError(
            f"the rotation angles span {span:.6g} deg, more than {MAX_SPAN_DEG:g}: check that "
            "they are in degrees (a scan in degrees labelled radians reads as this)"
        )
    folded = np.unique(np.mod(finite, 180.0))
    if folded.size < 2:
        raise ValueError(
            f"the projections hold {folded.size} distinct rotation angle(s); a slice needs "
            "angles over 180 deg"
        )
    coverage = angular_coverage_deg(folded)
    if coverage < MIN_COVERAGE_DEG:
        raise ValueError(
            f"the {folded.size} rotation angles cover {coverage:.3g} deg; a slice needs 180 "
            f"(at least {MIN_COVERAGE_DEG:g}): check that they are in degrees, not radians"
        )


def angular_coverage_deg(angles_deg: np.ndarray) -> float:
    """The range (deg, modulo 180) that the finite ``angles_deg`` cover: 180 less the
    widest gap between neighbours, plus their median step; 0 for fewer than 2 angles."""
    folded = np.unique(np.mod(angles_deg[np.isfinite(angles_deg)], 180.0))
    if folded.size < 2:
        return 0.0
    gaps = np.diff(np.r_[folded, folded[0] + 180.0])
    return 180.0 - float(gaps.max()) + float(np.median(gaps))


@dataclass(frozen=True)
class ParallelGeometry:
    """Rays and map grid of one slice.

    ``angles_deg`` ``(n_angles,)``; rays ``t0_um + j * t_step_um`` for ``j < n_t``;
    ``shape`` ``(ny, nx)``; ``pixel_size_um`` the map pixel side.
    """

    angles_deg: np.ndarray
    t0_um: float
    t_step_um: float
    n_t: int
    shape: tuple[int, int]
    pixel_size_um: float

    def __post_init__(self) -> None:
        angles = np.ascontiguousarray(self.angles_deg, dtype=np.float64)
        if angles.ndim != 1 or angles.size == 0 or not np.all(np.isfinite(angles)):
            raise ValueError("angles_deg must be a non-empty 1D array of finite values")
        if not (self.t_step_um > 0 and self.pixel_size_um > 0 and self.n_t >= 1):
            raise ValueError("t_step_um, pixel_size_um and n_t must be positive")
        ny, nx = (int(v) for v in self.shape)
        if ny < 1 or nx < 1:
            raise ValueError("shape must be two positive integers")
        object.__setattr__(self, "angles_deg", angles)
        object.__setattr__(self, "t0_um", float(self.t0_um))
        object.__setattr__(self, "t_step_um", float(self.t_step_um))
        object.__setattr__(self, "n_t", int(self.n_t))
        object.__setattr__(self, "shape", (ny, nx))
        object.__setattr__(self, "pixel_size_um", float(self.pixel_size_um))

    @classmethod
    def from_scan(
        cls,
        angles_deg: np.ndarray,
        translations_mm: np.ndarray,
        rotation_centre_mm: float,
        *,
        pixel_size_um: float | None = None,
        shape: tuple[int, int] | None = None,
        measured: np.ndarray | None = None,
    ) -> ParallelGeometry:
        """Geometry of a scan with stage readings ``translations_mm`` (ascending, mm).
        ``measured`` (n_angles,) bool: the projections holding a measured ray (default:
        all), those whose angles say whether the scan is a full turn (rows left empty
        between two quarter turns, -270 to -185 and 0 to 85 deg, made one, its map 3
        pixels wider and its sizes off, exit 0).

        The readings are fitted by an equally spaced grid (ValueError when one is off by
        more than :data:`UNIFORM_TOLERANCE` steps). Defaults: pixel = translation step,
        ``ny = nx = n_translations``, so maps match the twin's truth pixel by pixel; with
        another pixel, as many as cover the scanned width (a map narrower than the rays
        took in what lay outside it: 5 um pixels on 10 um steps read 1.6 times the mean).
        """
        t = 1000.0 * (np.asarray(translations_mm, dtype=np.float64) - rotation_centre_mm)
        if t.ndim != 1 or t.size < 2:
            raise ValueError("translations_mm must hold at least two readings")
        if not np.isfinite(rotation_centre_mm):
            raise ValueError(f"the rotation centre must be a number (mm), got {rotation_centre_mm}")
        low, high = float(np.min(translations_mm)), float(np.max(translations_mm))
        if not low <= rotation_centre_mm <= high:
            raise ValueError(
                f"the rotation centre {rotation_centre_mm:g} mm lies outside the scanned "
                f"translations ({low:g} to {high:g} mm): no ray would cross the axis and the "
                "map would hold nothing of the sample; give a centre within them, in mm"
            )
        check_angular_coverage(np.asarray(angles_deg, dtype=np.float64))
        j = np.arange(t.size)
        step, t0 = np.polyfit(j, t, 1)
        if not step > 0:
            raise ValueError("translations_mm must be ascending")
        if np.max(np.abs(t - (t0 + j * step))) > UNIFORM_TOLERANCE * step:
            raise ValueError("translations are not equally spaced; resample the sinogram")
        pixel = step if pixel_size_um is None else float(pixel_size_um)
        if shape is None:  # the scanned width t.size * step, to rounding of the fitted step
            width = t.size * step
            angles = np.asarray(angles_deg, dtype=np.float64)
            if sees_both_sides(angles if measured is None else angles[measured]):
                # a half acquisition sees the disk of its longer side: the scanned width
                # centred on the axis cut it off (its map 4 times the truth, exit 0)
                width = max(width, 2.0 * max(-t0, t0 + (t.size - 1) * step) + step)
            side = t.size
            if pixel_size_um is not None or width > t.size * step:
                side = int(np.ceil(width / pixel - 1e-6)) if pixel > 0 else side
            shape = (side, side)
        return cls(
            angles_deg=np.asarray(angles_deg, dtype=np.float64),
            t0_um=t0,
            t_step_um=step,
            n_t=t.size,
            shape=shape,
            pixel_size_um=pixel,
        )

    def subset(self, keep: np.ndarray) -> ParallelGeometry:
        """The same geometry with only the projections selected by ``keep`` (index or mask)."""
        return replace(self, angles_deg=self.angles_deg[keep])

    @property
    def n_angles(self) -> int:
        return int(self.angles_deg.size)

    @property
    def t_um(self) -> np.ndarray:
        """Ray positions (um), ``(n_t,)``."""
        return self.t0_um + np.arange(self.n_t) * self.t_step_um

    @property
    def x_um(self) -> np.ndarray:
        """Pixel centre x (um), ``(nx,)``."""
        return pixel_centres_um(self.shape[1], self.pixel_size_um)

    @property
    def y_um(self) -> np.ndarray:
        """Pixel centre y (um), ``(ny,)``."""
        return pixel_centres_um(self.shape[0], self.pixel_size_um)

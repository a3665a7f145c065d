"""Sinograms from patterns placed by motor positions, never by frame index.

Interlaced subsets, zigzag lines, encoder jitter, duplicate and missing frames all reduce
to one rule: cluster the rotation angles and the translations on their own grids, and put
each frame at its (angle, translation) cell. Missing cells stay NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SinogramLayout:
    """Sorted axes and, for every frame, its cell: ``angle_index`` and ``translation_index``."""

    rotation_angle_deg: np.ndarray  # (n_angles,) ascending
    translation_mm: np.ndarray  # (n_translations,) ascending
    angle_index: np.ndarray  # (N,)
    translation_index: np.ndarray  # (N,)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rotation_angle_deg.size, self.translation_mm.size

    def occupancy(self, valid: np.ndarray | None = None) -> np.ndarray:
        """Frames per cell, (n_angles, n_translations); 0 = missing, > 1 = duplicates."""
        keep = slice(None) if valid is None else valid
        counts = np.zeros(self.shape, dtype=np.int32)
        np.add.at(counts, (self.angle_index[keep], self.translation_index[keep]), 1)
        return counts


def cluster_positions(
    values: np.ndarray, tolerance: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Group readings of one motor into grid positions.

    Readings closer than ``tolerance`` belong to one position, whose value is their mean.
    By default the tolerance separates the two populations of gaps between sorted readings,
    jitter within a position and steps between positions (see :func:`_gap_threshold`);
    without such a separation every distinct reading is its own position.
    Returns (positions ascending, index of each reading's position).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values.copy(), np.zeros(0, dtype=np.intp)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    gaps = np.diff(ordered)
    if tolerance is None:
        tolerance = _gap_threshold(gaps, scale=max(float(np.ptp(ordered)), 1.0))
    starts = np.r_[True, gaps > tolerance]
    group_of_sorted = np.cumsum(starts) - 1
    n_groups = int(group_of_sorted[-1]) + 1
    positions = np.bincount(group_of_sorted, weights=ordered, minlength=n_groups) / np.bincount(
        group_of_sorted, minlength=n_groups
    )
    index = np.empty(values.size, dtype=np.intp)
    index[order] = group_of_sorted
    return positions, index


def _gap_threshold(gaps: np.ndarray, scale: float, max_spread: float = 10.0) -> float:
    """Threshold between jitter gaps and step gaps of sorted motor readings.

    Candidate splits lie between consecutive sorted gaps; a valid split leaves above it
    gaps within ``max_spread`` of each other (a grid, holes of up to ``max_spread`` steps
    allowed) and jumps by at least 3x. The best separated valid split wins.
    """
    distinct = np.sort(gaps[gaps > 1e-9 * scale])
    if distinct.size == 0:
        return 0.0
    ratios = distinct[1:] / distinct[:-1]
    candidates = np.where((ratios >= 3.0) & (distinct[-1] <= max_spread * distinct[1:]), ratios, 0)
    if candidates.size == 0 or candidates.max() == 0:
        return 0.5 * float(distinct[0])
    j = int(np.argmax(candidates))
    return float(np.sqrt(distinct[j] * distinct[j + 1]))


def sinogram_layout(
    rotation_angle_deg: np.ndarray,
    translation_mm: np.ndarray,
    *,
    angle_tolerance_deg: float | None = None,
    translation_tolerance_mm: float | None = None,
) -> SinogramLayout:
    """Layout of a scan from the motor readings of its frames (any order)."""
    angles, angle_index = cluster_positions(rotation_angle_deg, angle_tolerance_deg)
    translations, translation_index = cluster_positions(translation_mm, translation_tolerance_mm)
    return SinogramLayout(angles, translations, angle_index, translation_index)


def place(
    layout: SinogramLayout, values: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Per-frame values (N, ...) into a (n_angles, n_translations, ...) array; NaN where missing.

    Duplicate frames of one cell are averaged.
    """
    values = np.asarray(values, dtype=np.float64)
    keep = np.ones(values.shape[0], bool) if valid is None else np.asarray(valid, bool)
    sums = np.zeros((*layout.shape, *values.shape[1:]))
    cells = (layout.angle_index[keep], layout.translation_index[keep])
    np.add.at(sums, cells, values[keep])
    counts = layout.occupancy(keep).reshape(*layout.shape, *([1] * (values.ndim - 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def edge_columns(n_translations: int, fraction: float = 0.04) -> np.ndarray:
    """Indices of the outermost translations on both sides (air beside the sample)."""
    n_edge = max(2, round(fraction * n_translations))
    return np.r_[np.arange(n_edge), np.arange(n_translations - n_edge, n_translations)]


def attenuation_sinogram(ratio: np.ndarray, air_columns: np.ndarray | None = None) -> np.ndarray:
    """-ln(T) from diode/monitor ratios (n_angles, n_translations), T relative to air.

    Each angle is normalised by the median ratio of its ``air_columns`` (default: the
    outer 4 % of translations on each side), which removes the diode gain and slow beam
    drifts. Non-positive ratios give NaN.
    """
    columns = edge_columns(ratio.shape[1]) if air_columns is None else air_columns
    air = np.nanmedian(ratio[:, columns], axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        transmission = ratio / air
        return np.where(transmission > 0, -np.log(transmission), np.nan)


def subtract_air(data: np.ndarray, air_columns: np.ndarray | None = None) -> np.ndarray:
    """Subtract, per angle and q, the mean pattern of the air columns: (n_a, n_t, n_q)."""
    columns = edge_columns(data.shape[1]) if air_columns is None else air_columns
    return data - np.nanmean(data[:, columns], axis=1, keepdims=True)


def estimate_rotation_centre(
    sinogram: np.ndarray, rotation_angle_deg: np.ndarray, translation_mm: np.ndarray
) -> float:
    """Rotation axis position in stage coordinates (mm), sub-pixel.

    For parallel-beam line integrals of an object that stays inside the field of view,
    the centre of mass of each projection follows c + x0 cos(theta) + y0 sin(theta), where
    c is the rotation axis and (x0, y0) the object's centroid (Helgason-Ludwig consistency,
    order 1). A least-squares fit over all complete angles gives c; the symmetric beam
    profile does not move the centre of mass. ``sinogram`` (n_angles, n_translations) is an
    attenuation or total-intensity sinogram; angles with missing values are skipped.
    """
    complete = np.all(np.isfinite(sinogram), axis=1)
    if complete.sum() < 3:
        raise ValueError("need at least 3 complete projections to find the rotation centre")
    weights = np.clip(sinogram[complete], 0.0, None)
    mass = weights.sum(axis=1)
    if np.any(mass <= 0):
        raise ValueError("a projection has no signal; cannot find the rotation centre")
    centre_of_mass = weights @ translation_mm / mass
    theta = np.deg2rad(rotation_angle_deg[complete])
    design = np.column_stack([np.ones_like(theta), np.cos(theta), np.sin(theta)])
    coefficients, *_ = np.linalg.lstsq(design, centre_of_mass, rcond=None)
    return float(coefficients[0])

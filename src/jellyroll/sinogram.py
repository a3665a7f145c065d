"""Sinograms from patterns placed by motor positions, never by frame index.

Interlaced subsets, zigzag lines, encoder jitter, duplicate, missing and stray frames all
reduce to one rule: fit each motor's readings to a regular grid ``origin + k * step`` and
put each frame at the (angle, translation) cell within a tolerance of its readings (angles
read on several turns folded onto one turn: an angle and the same a turn further are one
projection). The step comes from the periodicity of all the readings (so a hole of lost
projections is not taken for a step, and the union of interlaced subsets is one grid of the
fine step), the count from the span of the cells that hold frames. Frames outside every
cell are reported, not placed; missing cells stay NaN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit, prange

from jellyroll.conventions import (
    conjugate_projections,
    parabola_vertex,
    redundancy_weights,
    sees_both_sides,
)

UNPLACED = -1
"""``angle_index`` and ``translation_index`` of a frame that is not placed (both axes)."""

_HIST_BINS = 2**15  # readings are binned at span / 2**15 to find the step: up to ~2000 cells
_PAD = 4  # zero padding of the spectrum: 4 samples per half-width of a peak
_STRONG = 0.6  # the step's peak is >= 0.6 of the highest (harmonics of a jittered grid less)
_FLOOR = 0.3  # and >= 0.3 of the readings' weight (a quarter-step jitter leaves 0.64)


@dataclass(frozen=True)
class RejectedFrame:
    """A frame left out of the sinogram: the reading that put it off the grid, and why."""

    frame: int
    axis: str  # "rotation_angle" (deg) or "translation" (mm)
    reading: float
    reason: str

    def __str__(self) -> str:
        return f"frame {self.frame}: {self.axis} reading {self.reading:g} {self.reason}"


@dataclass(frozen=True)
class SinogramLayout:
    """Axes of the grid and, for every frame, its cell: ``angle_index`` and
    ``translation_index`` (``UNPLACED`` = -1 on both for a frame that is not placed).

    ``rejected`` lists the frames left out, one entry per offending axis reading.
    """

    rotation_angle_deg: np.ndarray  # (n_angles,) ascending
    translation_mm: np.ndarray  # (n_translations,) ascending
    angle_index: np.ndarray  # (N,)
    translation_index: np.ndarray  # (N,)
    rejected: tuple[RejectedFrame, ...] = field(default=())

    @property
    def shape(self) -> tuple[int, int]:
        return self.rotation_angle_deg.size, self.translation_mm.size

    @property
    def placed(self) -> np.ndarray:
        """(N,) bool: the frame has a cell."""
        return (self.angle_index != UNPLACED) & (self.translation_index != UNPLACED)

    def occupancy(self, valid: np.ndarray | None = None) -> np.ndarray:
        """Frames per cell, (n_angles, n_translations); 0 = missing, > 1 = duplicates.

        Only placed frames count (and of those only ``valid`` ones when given).
        """
        keep = self._kept(valid)
        counts = np.zeros(self.shape, dtype=np.int32)
        np.add.at(counts, (self.angle_index[keep], self.translation_index[keep]), 1)
        return counts

    def _kept(self, valid: np.ndarray | None) -> np.ndarray:
        placed = self.placed
        return placed if valid is None else placed & np.asarray(valid, dtype=bool)


def cluster_positions(
    values: np.ndarray, tolerance: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Group readings of one motor into grid positions (by gaps; :func:`sinogram_layout`
    fits a regular grid instead, which survives lost positions and strays).

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


@dataclass(frozen=True)
class _AxisFit:
    """One motor's readings on its grid: positions (n,), cell of each reading (N,) or
    ``UNPLACED``, the reason for each unplaced reading, and the fitted grid
    ``first + k * step`` (step None: one position)."""

    positions: np.ndarray
    index: np.ndarray
    reasons: dict[int, str]
    first: float = 0.0
    step: float | None = None


def grid_step(values: np.ndarray) -> float | None:
    """Step of the regular grid that jittered readings of one motor sit on (same unit).

    The spectrum ``|sum_i exp(2 pi i f x_i)|`` of the readings peaks at ``f = 1 / step``
    and its harmonics; holes and stray readings only lower the peaks a little, and a
    jitter of up to a quarter step keeps the fundamental at >= 0.64 of the number of
    readings, its harmonics lower. The step is the lowest frequency past the
    zero-frequency lobe whose peak reaches 0.6 of the highest, so the union of interlaced
    subsets gives its fine step. The outer 2 % of the readings are left out (far strays
    would stretch the binning); steps shorter than the span over the number of readings
    are not considered (there, few readings make peaks of noise). None when the readings
    show no grid (one position). Tens of readings jittered by nearly a quarter step can
    mislead it (about once in a thousand scans of 6 x 8 frames): give the step then.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return None
    low, high = np.quantile(values, [0.02, 0.98])
    for sample in (values[(values >= low) & (values <= high)], values):
        if sample.size < 2:  # two or three readings: the quantiles leave out all but one
            continue
        low, high = float(sample.min()), float(sample.max())
        span = high - low
        if not span > 1e-12 * max(abs(low), abs(high), 1.0):
            continue
        counts, _ = np.histogram(sample, bins=_HIST_BINS, range=(low, high))
        spectrum = np.abs(np.fft.rfft(counts, n=_PAD * _HIST_BINS)) / sample.size
        spectrum = spectrum[: _PAD * sample.size + 2]  # steps >= span / number of readings
        rising = np.flatnonzero(np.diff(spectrum) > 0)
        if rising.size == 0:
            continue
        lobe_end = int(rising[0])  # first minimum after zero frequency
        s = spectrum[lobe_end:]
        peaks = np.flatnonzero((s[1:-1] >= s[:-2]) & (s[1:-1] >= s[2:])) + 1
        if peaks.size == 0 or s[peaks].max() < _FLOOR:
            continue
        strong = lobe_end + peaks[s[peaks] >= _STRONG * s[peaks].max()]
        finest = 1.0 / _peak_frequency(spectrum, int(lobe_end + peaks[np.argmax(s[peaks])]), span)
        for j in strong:  # ascending frequency; the highest peak's own grid merges nothing
            step = 1.0 / _peak_frequency(spectrum, int(j), span)
            if _is_side_lobe(step, finest):
                continue
            if not _merges_positions(sample - low, step, finest):
                return _refined_step(sample, step)
    return None


_SIDE_LOBE = 0.25
"""A strong peak whose step lies further than this share of the finest step from every
whole multiple of it is a side lobe, not a grid of the readings."""


def _is_side_lobe(step: float, finest: float) -> bool:
    """Whether ``step`` is a side lobe of the spectrum, not a grid of the readings: every
    grid of readings that the finest grid (the highest peak) holds is a whole multiple of
    it, while readings in runs far apart (interlaced subsets recorded a turn apart: 0-175
    deg in steps of 15 deg from 0 and 5, 370-535 deg from 370) make lobes beside the
    multiples that reach 0.67 of the highest peak (7.43 deg for a 5-deg grid), and their
    grid left 1247 frames of a twin off the grid."""
    return abs(step - max(round(step / finest), 1) * finest) > _SIDE_LOBE * finest


def _refined_step(x: np.ndarray, step: float) -> float:
    """``step`` refined on the distances between neighbouring positions of readings ``x``
    (:func:`cluster_positions`) that lie within a third of 1 to 3 steps: the spectrum's
    peak is only as sharp as a run of readings without a hole, and a step off by 1 % left
    the cells beyond a hole of a hundred steps misnumbered."""
    positions, _ = cluster_positions(x, tolerance=step / 3)
    gaps = np.diff(positions)
    steps = np.round(gaps / step)
    near = (steps >= 1) & (steps <= 3) & (np.abs(gaps - steps * step) < step / 3)
    return float(gaps[near].sum() / steps[near].sum()) if near.any() else float(step)


def _peak_frequency(spectrum: np.ndarray, j: int, span: float) -> float:
    """Frequency (1 / reading unit) of the peak at sample ``j`` of a spectrum zero-padded
    :data:`_PAD` times over ``span``, by parabolic interpolation between its samples."""
    left, centre, right = spectrum[j - 1 : j + 2]
    shift = 0.5 * (left - right) / (left - 2 * centre + right) if left + right < 2 * centre else 0
    return (j + shift) / (_PAD * span)


_MERGED_SHARE = 0.25
"""A grid merges positions when more than this share of the readings lie outside the cell
of the finest strong grid that most readings of their cell lie in."""


def _merges_positions(x: np.ndarray, step: float, finest: float) -> bool:
    """Whether the grid of ``step`` puts readings ``x`` that lie in distinct cells of the
    grid of ``finest`` step (the highest peak of their spectrum) into one cell: the two ends
    of a scan that lost its middle, or angles read modulo 360 deg (270-360 and 0-90), make
    a strong peak at their distance, which taken for the step averaged each end into one
    projection."""
    coarse, fine = (_grid_cells(x, s) for s in (step, finest))
    pairs, counts = np.unique(np.stack([coarse, fine]), axis=1, return_counts=True)
    modal = np.zeros(int(coarse.max() - coarse.min()) + 1, dtype=np.intp)
    np.maximum.at(modal, pairs[0] - coarse.min(), counts)
    if modal.sum() < (1.0 - _MERGED_SHARE) * x.size:
        return True
    # a fine position held by half as many readings as the modal ones is a column, not
    # strays: a 3-column scan whose middle column kept 2 of its 4 cells had them left out
    minority = counts < modal[pairs[0] - coarse.min()]
    return bool(minority.any() and counts[minority].max() >= max(2, 0.5 * np.median(modal)))


def _grid_cells(x: np.ndarray, step: float) -> np.ndarray:
    """Cell index of every reading ``x`` on the grid of ``step`` whose origin is their
    circular mean."""
    origin = float(np.angle(np.sum(np.exp(2j * np.pi * x / step)))) / (2 * np.pi) * step
    return np.round((x - origin) / step).astype(np.intp)


def _fit_axis(
    values: np.ndarray,
    step: float | None,
    tolerance: float | None,
    max_hole: int,
) -> _AxisFit:
    """Readings of one motor (N,) on the grid ``origin + k * step``, k = 0..n-1.

    ``step`` is a hint (refined by the fit), found from the readings when None; the
    ``tolerance`` (default a third of the step) must stay under half a step so that cells
    do not overlap. A run of cells holding frames that is separated from the others by more
    than ``max_hole`` empty cells and holds on average fewer frames per cell than half a
    typical cell is taken for strays, so stray readings do not extend the grid.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    reasons = {int(i): "is not finite" for i in np.flatnonzero(~finite)}
    index = np.full(values.size, UNPLACED, dtype=np.intp)
    if step is None:
        step = grid_step(values[finite])
    if step is None or not step > 0:  # one position (or none): every finite reading on it
        index[finite] = 0
        positions = values[finite].mean(keepdims=True) if finite.any() else np.zeros(0)
        return _AxisFit(positions, index, reasons, float(positions[0]) if finite.any() else 0.0)
    tolerance = step / 3 if tolerance is None else float(tolerance)
    if not 0 < tolerance < step / 2:
        raise ValueError(f"tolerance {tolerance:g} must be within (0, half the step {step:g})")
    x = values[finite]
    origin = float(np.angle(np.sum(np.exp(2j * np.pi * x / step)))) / (2 * np.pi) * step
    # refine step and origin on every reading of the scanned cells (its nearest cell): a
    # fit on the readings within tolerance only would be biased by the jitter it cuts off
    for _ in range(3):
        k = np.round((x - origin) / step)
        first, last = _scanned_range(k, np.ones(x.size, dtype=bool), max_hole)
        inside = (k >= first) & (k <= last)
        if first == last:
            break
        step, origin = np.polyfit(k[inside], x[inside], 1)
    k = np.round((x - origin) / step).astype(np.intp)
    near = np.abs(x - origin - k * step) <= tolerance
    if not near.any():
        raise ValueError(f"no reading within {tolerance:g} of the grid of step {step:g}")
    first, last = _scanned_range(k, near, max_hole)
    on_grid = near & (k >= first) & (k <= last)
    where = np.flatnonzero(finite)
    index[where[on_grid]] = k[on_grid] - first
    n = last - first + 1
    sums = np.bincount(k[on_grid] - first, weights=x[on_grid], minlength=n)
    frames = np.bincount(k[on_grid] - first, minlength=n)
    nominal = origin + step * np.arange(first, last + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        positions = np.where(frames > 0, sums / frames, nominal)
    for i in where[~near]:
        reasons[int(i)] = f"is off the grid (step {step:.6g}, tolerance {tolerance:.3g})"
    for i in where[near & ~on_grid]:
        reasons[int(i)] = f"lies outside the scanned range [{nominal[0]:.6g}, {nominal[-1]:.6g}]"
    return _AxisFit(positions, index, reasons, float(nominal[0]), float(step))


def _scanned_range(k: np.ndarray, use: np.ndarray, max_hole: int) -> tuple[int, int]:
    """First and last cell of the scan among the cells ``k`` (N,) of the readings ``use``.

    Cells holding readings split into runs at holes of more than ``max_hole`` empty cells;
    a run whose cells hold on average fewer readings than half a typical cell is strays
    (its cells are left out). The typical cell is the one of the median reading, not the
    median cell: scattered strays make many cells of one reading each.
    """
    cells, counts = np.unique(k[use], return_counts=True)
    runs = np.split(np.arange(cells.size), np.flatnonzero(np.diff(cells) > max_hole + 1) + 1)
    typical = np.median(np.repeat(counts, counts))
    dense = [run for run in runs if counts[run].mean() >= 0.5 * typical]
    kept = np.concatenate(dense or [max(runs, key=lambda run: counts[run].sum())])
    return int(cells[kept].min()), int(cells[kept].max())


TURN_DEG = 360.0
"""A rotation angle and the same angle a turn further are one projection (parallel beam)."""

_TURN_CELLS = 1 / 3
"""A turn may be a whole number of steps when the step fitted to the readings modulo a
turn makes one within this share of a step (fitted on half a turn of readings jittered by
10 % of a step, 72 steps add up a few tenths of a step off); the fold then decides
(:data:`_FOLD_SPREAD`)."""

_FOLD_SPREAD = 1.1
"""The fold is taken where it leaves the readings at most this much further (rms) from
their cells than the grid as read: a turn that is a whole number of steps leaves them where
they were, one that is not (a continuous rotation in steps of 6.25 deg) puts each turn's
readings its remainder off the first's (accepted below half their rms jitter), and a grid
misled by a gapped comb holds readings far from its cells."""


def _spread(values: np.ndarray, fit: _AxisFit) -> float:
    """Root mean square distance of the placed ``values`` from their cell on the fitted grid
    (not from the cell's mean, which follows the readings of a turn put off the grid)."""
    placed = fit.index != UNPLACED
    if not placed.any():
        return 0.0
    cells = fit.first + (fit.step or 0.0) * fit.index[placed]
    return float(np.sqrt(np.mean((values[placed] - cells) ** 2)))


def _fit_angles(
    values: np.ndarray, step: float | None, tolerance: float | None, max_hole: int
) -> _AxisFit:
    """Rotation angles (deg) on their grid (``_fit_axis``), those read on several turns of
    the stage folded onto one turn first when a turn is a whole number of steps: a
    projection read twice is then one cell (its frames averaged as duplicates), and
    interlaced subsets recorded on successive turns (0, 15, ... and 370, 385, ... deg) one
    grid, the one of a single turn. The turn starts after the widest gap between the
    folded cells, the one that holds most readings (the lowest of such) keeping them; the
    fold is taken where it places as many frames as the readings as they are, or more, no
    further from their cells (:data:`_FOLD_SPREAD`). Readings within one turn (their outer
    2 %, strays, left aside) are fitted as they are."""
    plain = _fit_axis(values, step, tolerance, max_hole)
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    x = np.sort(values[finite])
    if x.size < 2 or np.subtract(*np.quantile(x, [0.98, 0.02])) <= TURN_DEG:
        return plain
    # the step of the readings read modulo a turn, cut at the widest gap between them (cut
    # at 0 deg, a scan over -90 to 90 deg is two runs, whose span hid a step of 2 deg)
    turn = np.sort(np.mod(x, TURN_DEG))
    gaps = np.diff(np.r_[turn, turn[0] + TURN_DEG])
    cut = turn[np.argmax(gaps)] + 0.5 * gaps.max()
    turn_step = _fit_axis(np.mod(x - cut, TURN_DEG), step, None, max_hole).step
    if turn_step is None or not turn_step > 0:
        return plain
    cells = round(TURN_DEG / turn_step)
    if cells < 1 or abs(cells * turn_step - TURN_DEG) > _TURN_CELLS * turn_step:
        return plain
    turn_step = TURN_DEG / cells
    # the turn starts half a step below a cell (where no jittered reading lies) that follows
    # the widest gap between the cells of the folded readings: the folded cells in one run
    origin = float(np.angle(np.sum(np.exp(2j * np.pi * x / turn_step)))) / (2 * np.pi)
    k = np.round(x / turn_step - origin).astype(np.int64)
    occupied = np.unique(np.mod(k, cells))
    gaps = np.diff(np.r_[occupied, occupied[0] + cells])
    after_gap = np.roll(occupied, -1)[gaps == gaps.max()]
    starts = (origin + np.unique(k[np.isin(np.mod(k, cells), after_gap)]) - 0.5) * turn_step
    held = np.searchsorted(x, starts + TURN_DEG) - np.searchsorted(x, starts)
    start = float(starts[np.argmax(held)])
    within = values.copy()
    within[finite] -= TURN_DEG * np.floor((values[finite] - start) / TURN_DEG)  # whole turns
    try:
        folded = _fit_axis(within, turn_step, tolerance, max_hole)
    except ValueError:  # a tolerance given for the grid as read, over half this step
        return plain
    lost = np.sum(folded.index == UNPLACED) > np.sum(plain.index == UNPLACED)
    spread, plain_spread = _spread(within, folded), _spread(values, plain)
    if lost or spread > _FOLD_SPREAD * plain_spread + 1e-9 * turn_step:
        return plain
    reasons = {
        i: reason if reason == "is not finite" else f"{reason} (read modulo {TURN_DEG:g} deg)"
        for i, reason in folded.reasons.items()
    }
    return _AxisFit(folded.positions, folded.index, reasons, folded.first, folded.step)


def sinogram_layout(
    rotation_angle_deg: np.ndarray,
    translation_mm: np.ndarray,
    *,
    angle_tolerance_deg: float | None = None,
    translation_tolerance_mm: float | None = None,
    angle_step_deg: float | None = None,
    translation_step_mm: float | None = None,
    max_hole: int = 2,
) -> SinogramLayout:
    """Layout of a scan from the motor readings of its frames, (N,) each, in any order.

    Each axis is the regular grid its readings fit (see :func:`grid_step` and
    ``_fit_axis``); a position is the mean reading of its cell's frames, or the nominal
    grid value where the cell is empty. The tolerances (default a third of the step) say
    how far a reading may lie from its cell; the step hints, when given, replace the
    estimate from the readings as the start of the fit. Lost projections or lines at the
    ends of the scan shorten the grid (its nominal count is not in the readings).
    A frame with a non-finite reading, a reading off the grid or beyond the scanned range
    is not placed (``UNPLACED``) and is listed in ``rejected``; readings in cells separated
    from the scan by more than ``max_hole`` empty cells, too sparse to be projections or
    lines, are beyond it. Angles read on several turns of the stage are folded onto one
    turn where a turn is a whole number of steps (a projection read on two turns is one
    cell; see ``_fit_angles``). A step hint must be finite and positive (ValueError): a
    step of 0 or below took the axis for one position, every projection averaged into one.
    """
    for name, hint in (
        ("angle_step_deg", angle_step_deg),
        ("translation_step_mm", translation_step_mm),
    ):
        if hint is not None and not (np.isfinite(hint) and hint > 0):
            raise ValueError(
                f"{name} {hint:g} is not a step: give a finite, positive step, or None to "
                "find it from the readings"
            )
    angles = _fit_angles(rotation_angle_deg, angle_step_deg, angle_tolerance_deg, max_hole)
    translations = _fit_axis(
        translation_mm, translation_step_mm, translation_tolerance_mm, max_hole
    )
    readings = {
        "rotation_angle": np.asarray(rotation_angle_deg, dtype=np.float64),
        "translation": np.asarray(translation_mm, dtype=np.float64),
    }
    rejected = [
        RejectedFrame(frame, axis, float(readings[axis][frame]), reason)
        for axis, fit in (("rotation_angle", angles), ("translation", translations))
        for frame, reason in fit.reasons.items()
    ]
    rejected.sort(key=lambda item: item.frame)
    placed = (angles.index != UNPLACED) & (translations.index != UNPLACED)
    return SinogramLayout(
        angles.positions,
        translations.positions,
        np.where(placed, angles.index, UNPLACED),
        np.where(placed, translations.index, UNPLACED),
        tuple(rejected),
    )


def place(
    layout: SinogramLayout, values: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Per-frame values (N, ...) into a (n_angles, n_translations, ...) array; NaN where missing.

    Duplicate frames of one cell are averaged; unplaced frames (and invalid ones when
    ``valid`` (N,) is given) are left out.
    """
    values = np.asarray(values, dtype=np.float64)
    keep = layout._kept(valid)
    sums = np.zeros((*layout.shape, *values.shape[1:]))
    cells = (layout.angle_index[keep], layout.translation_index[keep])
    np.add.at(sums, cells, values[keep])
    counts = layout.occupancy(keep).reshape(*layout.shape, *([1] * (values.ndim - 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


MIN_MONITOR_FRACTION = 0.01
"""A frame whose monitor reads below this fraction of the scan's median saw no beam: its
normalised pattern would be its noise times 1/monitor (one such frame put 1e10 in a
sinogram whose cells reach 376)."""

MAX_MONITOR_FACTOR = 10.0
"""A frame whose monitor reads above this multiple of the scan's median is a counter glitch
(no beam current changes that much within a scan): normalised by it, its pattern would be
near 0, a dark cell that passes for a void."""


def frame_readings_problems(
    rotation_angle_deg: np.ndarray,
    translation_mm: np.ndarray,
    monitor: np.ndarray | None = None,
    diode: np.ndarray | None = None,
    max_listed: int = 10,
) -> tuple[np.ndarray, list[str]]:
    """Frames whose counter or motor readings (N,) each are impossible.

    A non-finite motor reading, a monitor that is not finite, not positive, below
    :data:`MIN_MONITOR_FRACTION` of its median or above :data:`MAX_MONITOR_FACTOR` times it,
    a diode that is not finite or negative make
    the frame invalid. Returns the valid mask (N,)
    and one message per kind of problem naming the frames and readings (at most
    ``max_listed`` of them); the caller prefixes the file name.
    """
    angle = np.asarray(rotation_angle_deg, dtype=np.float64)
    translation = np.asarray(translation_mm, dtype=np.float64)
    checks = [
        ("rotation angle (deg) is not finite", angle, ~np.isfinite(angle)),
        ("translation (mm) is not finite", translation, ~np.isfinite(translation)),
    ]
    if monitor is not None:
        monitor = np.asarray(monitor, dtype=np.float64)
        bad = ~(np.isfinite(monitor) & (monitor > 0))
        checks.append(("monitor is not finite or not positive", monitor, bad))
        if (~bad).any():
            typical = float(np.median(monitor[~bad]))
            low = ~bad & (monitor < MIN_MONITOR_FRACTION * typical)
            what = (
                f"monitor is below {MIN_MONITOR_FRACTION:.0%} of its median {typical:g} "
                "(beam lost?)"
            )
            checks.append((what, monitor, low))
            high = ~bad & (monitor > MAX_MONITOR_FACTOR * typical)
            what = f"monitor is above {MAX_MONITOR_FACTOR:g} times its median {typical:g} (glitch?)"
            checks.append((what, monitor, high))
    if diode is not None:
        diode = np.asarray(diode, dtype=np.float64)
        checks.append(
            ("diode is not finite or negative", diode, ~(np.isfinite(diode) & (diode >= 0)))
        )
    valid = np.ones(angle.size, dtype=bool)
    messages = []
    for what, reading, bad in checks:
        frames = np.flatnonzero(bad)
        if frames.size == 0:
            continue
        valid[frames] = False
        listed = ", ".join(f"frame {i}: {reading[i]:g}" for i in frames[:max_listed])
        more = f" and {frames.size - max_listed} more" if frames.size > max_listed else ""
        messages.append(f"{what} at {frames.size} frame(s): {listed}{more}")
    return valid, messages


def monitor_reference(monitor: np.ndarray, valid: np.ndarray) -> float:
    """The monitor reading the frames are normalised to: the median over the ``valid``
    frames (one frame's glitch does not rescale the others). Intensities are counts at this
    reading: two scans' compare after scaling by their references' ratio."""
    return float(np.median(np.asarray(monitor, dtype=np.float64)[np.asarray(valid, bool)]))


def monitor_scale(monitor: np.ndarray | None, valid: np.ndarray) -> np.ndarray:
    """Per-frame normalisation factor (N,): monitor / :func:`monitor_reference`.

    NaN for invalid frames (so that they never reach a sinogram); 1 for valid frames
    without a monitor. Raises ValueError when no frame is valid.
    """
    valid = np.asarray(valid, dtype=bool)
    if not valid.any():
        raise ValueError("no valid frame to normalise by")
    if monitor is None:
        return np.where(valid, 1.0, np.nan)
    monitor = np.asarray(monitor, dtype=np.float64)
    return np.where(valid, monitor / monitor_reference(monitor, valid), np.nan)


def edge_columns(n_translations: int, fraction: float = 0.04) -> np.ndarray:
    """Indices of the outermost translations on both sides (air beside the sample)."""
    n_edge = max(2, round(fraction * n_translations))
    return np.r_[np.arange(n_edge), np.arange(n_translations - n_edge, n_translations)]


def attenuation_sinogram(ratio: np.ndarray, air_columns: np.ndarray | None = None) -> np.ndarray:
    """-ln(T) from diode/monitor ratios (n_angles, n_translations), T relative to air.

    Each angle is normalised by the median ratio of its ``air_columns`` (default: the
    outer 4 % of translations on each side), which removes the diode gain and slow beam
    drifts; an angle without any air cell measured takes the median of the others'
    (:func:`borrowed_air`). Non-positive ratios give NaN, and so does a whole angle whose
    air reference is not positive (a diode reading 0 in most of its air columns gave -inf
    everywhere).
    """
    columns = edge_columns(ratio.shape[1]) if air_columns is None else air_columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a projection lost whole: NaN row
        air = np.nanmedian(ratio[:, columns], axis=1)
    air = borrowed_air(air)[:, None]
    air = np.where(air > 0, air, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        transmission = ratio / air
        return np.where(transmission > 0, -np.log(transmission), np.nan)


def borrowed_air(reference: np.ndarray) -> np.ndarray:
    """``reference`` (n_angles, ...), an air level per angle, with every angle that holds no
    value at all given the median of the angles that do (per element): a half acquisition
    whose short lines stop before the air end of the long ones (a full turn with one end
    air) lost those projections whole, NaN in the sinogram and the attenuation, exit 0."""
    reference = np.array(reference, dtype=np.result_type(reference, np.float32))
    flat = reference.reshape(reference.shape[0], -1)
    held = np.isfinite(flat).any(axis=1)
    if held.any() and not held.all():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an element no angle holds
            flat[~held] = np.nanmedian(flat[held], axis=0)
    return reference


@dataclass(frozen=True)
class AirReference:
    """The air pattern taken off each angle's line: ``mean`` (n_angles, n_q) of its air
    cells, ``variance`` (n_angles, n_q) of that mean (the summed squared errors of the m
    cells holding a value, over m^2), both :func:`borrowed_air` where an angle holds no air
    cell."""

    mean: np.ndarray
    variance: np.ndarray


def air_reference(cells: np.ndarray, errors: np.ndarray | None = None) -> AirReference:
    """:class:`AirReference` of the air ``cells`` (n_angles, n_air, n_q), NaN where missing,
    and their one-sigma ``errors`` (same shape; None: variance 0)."""
    measured = np.isfinite(cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an angle without any air cell
        mean = np.nanmean(cells, axis=1)
    if errors is None:
        variance = np.zeros_like(mean)
    else:
        squares = np.where(measured, np.square(errors), 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = squares / np.square(measured.sum(axis=1))
    return AirReference(borrowed_air(mean), borrowed_air(variance))


AIR_TRANSMISSION = 0.9
"""Line ends whose diode reads less than this fraction of the scan's clearest beam are not air."""
AIR_SCATTERING = 0.5
"""Line ends that scatter at least this fraction of what the middle scatters are not air."""


def air_columns_problem(
    total: np.ndarray, transmission: np.ndarray | None, air_columns: np.ndarray | None = None
) -> str | None:
    """Why the ``air_columns`` (default: :func:`edge_columns`) of a scan are not air, or None.

    ``total`` (n_angles, n_translations) is the scattering of each cell summed over q, NaN
    where missing; ``transmission`` the diode / monitor ratio of each cell, or None. The ends
    are not air when the diode says the beam is attenuated there (their median below
    ``AIR_TRANSMISSION`` of the scan's 99th percentile, its clearest beam), or when they
    scatter as strongly as the middle (their median total at least ``AIR_SCATTERING`` of the
    median over the central half of the translations).
    """
    n_t = total.shape[1]
    columns = edge_columns(n_t) if air_columns is None else air_columns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN parts give NaN, no verdict
        if transmission is not None:
            ends = np.nanmedian(transmission[:, columns])
            clearest = np.nanpercentile(transmission, 99)
            if ends < AIR_TRANSMISSION * clearest:
                return (
                    f"the diode reads {ends / clearest:.0%} of the clearest beam there, "
                    "so the beam crosses the sample"
                )
        ends = np.nanmedian(total[:, columns])
        middle = np.nanmedian(total[:, n_t // 4 : n_t - n_t // 4])
    if ends >= AIR_SCATTERING * middle > 0:
        return f"they scatter {ends / middle:.0%} as much as the middle of the lines"
    return None


def line_end_problems(
    total: np.ndarray, transmission: np.ndarray | None = None
) -> list[tuple[np.ndarray, str | None]]:
    """Each end of the lines (the first, then the last half of :func:`edge_columns`) as
    translation indices, with why it is not air (:func:`air_columns_problem` on that end
    alone of ``total`` and ``transmission``, (n_angles, n_translations)), None when it is."""
    ends = edge_columns(total.shape[1])
    half = ends.size // 2
    return [
        (end, air_columns_problem(total, transmission, end)) for end in (ends[:half], ends[half:])
    ]


def estimate_rotation_centre(
    sinogram: np.ndarray,
    rotation_angle_deg: np.ndarray,
    translation_mm: np.ndarray,
    max_missing: float = 0.1,
) -> float:
    """Rotation axis position in stage coordinates (mm), sub-pixel.

    For parallel-beam line integrals of an object that stays inside the field of view,
    the centre of mass of each projection follows c + x0 cos(theta) + y0 sin(theta), where
    c is the rotation axis and (x0, y0) the object's centroid (Helgason-Ludwig consistency,
    order 1). A least-squares fit over all complete angles gives c; the symmetric beam
    profile does not move the centre of mass, and the level of each projection's line ends
    (the lower of their medians, :func:`edge_columns`) is taken off it first, so that a
    background under the whole line does not either. ``sinogram`` (n_angles,
    n_translations) is an attenuation or total-intensity sinogram. The complete angles are
    used when at least a quarter of them (and 3) are complete; otherwise (lost translation
    steps leave every projection with holes) projections with at most ``max_missing`` of
    their cells missing are used with the holes filled by linear interpolation along the
    translation.
    A full turn, or one with a gap (:func:`~jellyroll.conventions.sees_both_sides`: a
    half acquisition whose last 33 deg were lost had its axis put 5.8 steps off by the
    centre of mass, exit 0), is not assumed to keep the
    sample inside the field (a half acquisition, the axis near one end of the lines, sees
    it from both sides in turn): its centre is where each projection matches the one
    180 deg on, mirrored (:func:`_conjugate_centre`); the centre of mass put a half
    acquisition's axis 8 steps off, and its maps were noise, exit 0.
    ValueError when no centre can be fitted, or the fit falls outside the translations.
    """
    angles = np.asarray(rotation_angle_deg)
    turn = sees_both_sides(angles[np.isfinite(sinogram).any(axis=1)])
    complete = np.all(np.isfinite(sinogram), axis=1)
    if complete.sum() < max(3, complete.size / 4) or (
        turn and not sees_both_sides(angles[complete])
    ):
        # a turn whose complete projections are one half of it (the other half's lines
        # each one cell short) was placed by the centre of mass: a half acquisition's axis
        # 11 steps off, its maps noise, exit 0
        sinogram, complete = _gaps_filled(sinogram, max_missing)
    if complete.sum() < 3:
        raise ValueError(
            "need at least 3 projections without missing cells (or with at most "
            f"{max_missing:.0%} missing) to find the rotation centre"
        )
    if turn:
        centre = _conjugate_centre(sinogram, complete, rotation_angle_deg, translation_mm)
        if centre is not None:
            return centre
    # the centre of mass assumes the sample in the field at every angle: a line end inside
    # it (a half acquisition) put the axis anywhere (a featureless disk: 224 steps off of
    # 1024); a half turn cut by one end of its lines 5.6 steps off
    ends = line_end_problems(sinogram[complete])
    for side, (_, problem) in zip(("first", "last"), ends, strict=True):
        if problem is not None:
            matched = (
                "the projections of this full turn match their conjugates half a turn on too "
                "weakly to place the axis, and "
                if turn
                else ""
            )
            raise ValueError(
                f"{matched}the {side} end of the lines lies in the sample ({problem}"
                f"{': a half acquisition?' if turn else ''}), so the projections' centre of "
                "mass cannot place the axis (the sample leaves the field)"
            )
    rows = sinogram[complete]
    ends = edge_columns(rows.shape[1])
    if rows.shape[1] > 2 * ends.size:  # line ends apart from the middle
        # a level under the whole line (air scattering left in, a diode gain) pulls the
        # centre of mass towards the scan's middle: 5 % of the peak moved it 1 step for an
        # axis 10 steps off the middle; the lower of the two line ends' medians is that level
        half = ends.size // 2
        left, right = (np.median(rows[:, side], axis=1) for side in (ends[:half], ends[half:]))
        rows = rows - np.minimum(left, right)[:, None]
    weights = np.clip(rows, 0.0, None)
    mass = weights.sum(axis=1)
    if np.any(mass <= 0):
        raise ValueError("a projection has no signal; cannot find the rotation centre")
    centre_of_mass = weights @ translation_mm / mass
    theta = np.deg2rad(rotation_angle_deg[complete])
    design = np.column_stack([np.ones_like(theta), np.cos(theta), np.sin(theta)])
    coefficients, *_ = np.linalg.lstsq(design, centre_of_mass, rcond=None)
    centre = float(coefficients[0])
    low, high = float(np.min(translation_mm)), float(np.max(translation_mm))
    if not low <= centre <= high:  # also NaN; angles read in the wrong unit fit such centres
        raise ValueError(f"the fit gave {centre:g} mm, outside the scanned {low:g} to {high:g} mm")
    return centre


MIN_CONJUGATE_CORRELATION = 0.2
"""Least pooled correlation of the projections with their mirrored conjugates at the best
shift for it to place the axis. Half acquisitions at 2 % noise, 1024 translations: a
spiral cell with the axis 100 or 300 rays from the end, 0.27 and 0.74 (right to 0.02 step);
20 rays from the end, 0.10 at a shift 73 steps off; a featureless disk, 0.05, 918 steps
off. Under it the centre is not taken from the conjugates."""
CONJUGATE_OVERLAP = 4
"""Fewest translations a projection and its mirrored conjugate must share for their match
to place the axis."""


def _conjugate_centre(
    sinogram: np.ndarray,
    complete: np.ndarray,
    rotation_angle_deg: np.ndarray,
    translation_mm: np.ndarray,
) -> float | None:
    """The rotation axis (mm) of a full turn from its conjugate projections: the line at
    translation x and angle theta is the line at 2c - x and theta + 180 deg, so each
    complete projection mirrored matches the one half a turn on, shifted by ``2c - (x_0 +
    x_last)``. The shift is the maximum of the correlation pooled over every pair (at
    least :data:`CONJUGATE_OVERLAP` translations shared), refined by a parabola. None when
    no pair or no peak is found (the caller falls back to the centre of mass)."""
    pairs = _conjugate_pairs(complete, rotation_angle_deg)
    n = sinogram.shape[1]
    if not len(pairs) or n < 2 * CONJUGATE_OVERLAP:
        return None
    first = np.asarray(sinogram[pairs[:, 0]], dtype=np.float64)
    mirrored = _half_turn_projections(sinogram, complete, rotation_angle_deg, pairs)[:, ::-1]
    shifts = np.arange(-(n - 2), n - 1)  # 2 translations shared at least: a neighbour's score
    score = np.array([_pooled_correlation(first, mirrored, int(k)) for k in shifts])
    eligible = (n - np.abs(shifts) >= CONJUGATE_OVERLAP) & np.isfinite(score)
    if not eligible.any():
        return None
    best = int(np.argmax(np.where(eligible, score, -np.inf)))
    if not score[best] >= MIN_CONJUGATE_CORRELATION:
        return None
    if not np.isfinite(score[best - 1 : best + 2]).all():
        return None
    shift = shifts[best] + float(parabola_vertex(*score[best - 1 : best + 2]))
    step_mm = (translation_mm[-1] - translation_mm[0]) / (n - 1)
    return float(0.5 * (translation_mm[0] + translation_mm[-1] + shift * step_mm))


def _conjugate_pairs(complete: np.ndarray, rotation_angle_deg: np.ndarray) -> np.ndarray:
    """(n_pairs, 2) indices of the ``complete`` projections and of the complete projection
    half a turn on from each (:func:`~jellyroll.conventions.conjugate_projections` among
    the complete ones), each pair once."""
    rows = np.flatnonzero(complete)
    conjugate = conjugate_projections(np.asarray(rotation_angle_deg)[rows])
    first = np.flatnonzero(conjugate > np.arange(rows.size))
    return np.column_stack([rows[first], rows[conjugate[first]]])


def _half_turn_projections(
    sinogram: np.ndarray, complete: np.ndarray, rotation_angle_deg: np.ndarray, pairs: np.ndarray
) -> np.ndarray:
    """The projection (n_pairs, n_translations) exactly half a turn from each pair's first
    (:func:`_conjugate_pairs`): linear in angle between the pair's second and the nearest
    complete projection on the other side of that direction when the two lie within two
    median steps, the pair's second alone otherwise (a gap beside it). A turn whose 180
    deg is no whole number of steps pairs projections up to half a step from half a turn,
    and the sample turned by that much shifts the match: a grain 350 rays from the axis
    put it 1.6 steps off with 361 angles over a turn and 0.3 with 0.7 deg steps, exit 0."""
    angles = np.mod(np.asarray(rotation_angle_deg, dtype=np.float64), 360.0)
    rows = np.flatnonzero(complete)
    step = float(np.median(np.diff(np.unique(angles[rows]))))
    # signed angle (deg) of each complete projection, and of each pair's second, past the
    # direction half a turn from the pair's first
    past = np.mod(angles[rows][None, :] - angles[pairs[:, :1]], 360.0) - 180.0
    near = np.mod(angles[pairs[:, 1]] - angles[pairs[:, 0]], 360.0) - 180.0
    beyond = np.where(np.sign(past) == -np.sign(near)[:, None], np.abs(past), np.inf)
    other = rows[np.argmin(beyond, axis=1)]
    span = np.abs(near) + beyond.min(axis=1)
    projections = np.asarray(sinogram[pairs[:, 1]], dtype=np.float64)
    blend = (near != 0) & (span <= 2.0 * step)
    weight = (np.abs(near[blend]) / span[blend])[:, None]
    projections[blend] = (1.0 - weight) * projections[blend] + weight * sinogram[other[blend]]
    return projections


def _pooled_correlation(first: np.ndarray, mirrored: np.ndarray, shift: int) -> float:
    """Pearson correlation of ``first[:, k + shift]`` with ``mirrored[:, k]`` (pairs,
    translations) over the translations both hold, pooled over the pairs."""
    n = first.shape[1]
    a = first[:, max(shift, 0) : n + min(shift, 0)]
    b = mirrored[:, max(-shift, 0) : n + min(-shift, 0)]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else float("nan")


def _gaps_filled(sinogram: np.ndarray, max_missing: float) -> tuple[np.ndarray, np.ndarray]:
    """Projections with at most ``max_missing`` of their cells missing, holes filled by
    linear interpolation along the translation; (filled copy, usable rows)."""
    filled = np.array(sinogram, dtype=np.float64)
    finite = np.isfinite(filled)
    usable = (finite.mean(axis=1) >= 1 - max_missing) & (finite.sum(axis=1) >= 2)
    columns = np.arange(filled.shape[1])
    for row in np.flatnonzero(usable & ~finite.all(axis=1)):
        known = finite[row]
        filled[row, ~known] = np.interp(columns[~known], columns[known], filled[row, known])
    return filled, usable


@dataclass(frozen=True)
class SpotFilterResult:
    """A sinogram with its single-crystal spots replaced, and where they were."""

    data: np.ndarray  # (n_angles, n_translations, n_q), the input's dtype
    replaced: np.ndarray  # (n_angles, n_translations, n_q) bool


def suppress_spots(
    data: np.ndarray,
    errors: np.ndarray | None = None,
    *,
    n_sigma: float = 6.0,
    angle_reach: int = 1,
    translation_reach: int = 2,
    max_channel_fraction: float = 0.1,
    chunk: int = 32,
) -> SpotFilterResult:
    """Replace isolated bright outliers of a sinogram (n_angles, n_translations, n_q), per q
    channel, by the median of their neighbours.

    A single-crystal spot (or a zinger) brightens one frame: one (angle, translation) cell
    in the few channels of its q. The projection of any real structure also shows in the
    neighbouring translations or in the next angles, where its trace has moved by at most
    ``translation_reach`` cells. A cell is a spot where it exceeds the largest of its
    neighbours (``angle_reach`` angles and ``translation_reach`` translations either side,
    in the same channel) by more than ``n_sigma`` times its noise: the larger of its
    one-sigma ``errors`` and the local noise estimated from the steps along the translation
    (1.4826 x their median over 3 angles x 7 translations, at least over the channel,
    / sqrt 2). A spot is narrow in
    q: where more than ``max_channel_fraction`` of a frame's channels (and more than one)
    stand out, the frame holds a real feature (a bright compact object whose trace moves
    fast, e.g. an agglomerate far from the axis in SAXS) and none of its cells is replaced.
    NaN cells are neither flagged nor used. Works on ``chunk`` channels at a time (memory:
    a few float64 copies of that many channels, besides the result).
    """
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"a sinogram (n_angles, n_translations, n_q) is needed, got {data.shape}")
    cleaned = data.copy()
    replaced = np.zeros(data.shape, dtype=bool)
    suppress_spots_in_place(
        cleaned,
        errors,
        n_sigma=n_sigma,
        angle_reach=angle_reach,
        translation_reach=translation_reach,
        max_channel_fraction=max_channel_fraction,
        chunk=chunk,
        replaced=replaced,
    )
    return SpotFilterResult(cleaned, replaced)


SPOT_SLAB_BYTES = 1 << 28
"""Bytes of sinogram channels :func:`suppress_spots_in_place` reads at a time (256 MiB)."""


def suppress_spots_in_place(
    data: Any,
    errors: Any = None,
    *,
    n_sigma: float = 6.0,
    angle_reach: int = 1,
    translation_reach: int = 2,
    max_channel_fraction: float = 0.1,
    chunk: int = 32,
    slab_bytes: int | None = None,
    replaced: np.ndarray | None = None,
) -> int:
    """:func:`suppress_spots` on ``data`` (an array or an h5py dataset (n_angles,
    n_translations, n_q)) in place, streamed: it reads slabs of channels (about
    ``slab_bytes``, default :data:`SPOT_SLAB_BYTES`) twice, first to find the outstanding
    cells (kept as bits), then to replace the spots, and never holds the whole sinogram.
    Returns how many cells were replaced; ``replaced`` (a bool array of ``data``'s shape),
    when given, is set to where."""
    shape = tuple(data.shape)
    if len(shape) != 3:
        raise ValueError(f"a sinogram (n_angles, n_translations, n_q) is needed, got {shape}")
    if errors is not None and tuple(np.shape(errors)) != shape:
        raise ValueError(f"errors have shape {np.shape(errors)}, the sinogram {shape}")
    footprint = np.ones((2 * angle_reach + 1, 2 * translation_reach + 1, 1), dtype=bool)
    footprint[angle_reach, translation_reach, 0] = False
    n_q = shape[2]
    per_channel = shape[0] * shape[1] * np.dtype(data.dtype).itemsize
    slab_bytes = SPOT_SLAB_BYTES if slab_bytes is None else slab_bytes
    slab = max(chunk, slab_bytes // max(per_channel, 1) // chunk * chunk)
    slabs = [slice(s, min(s + slab, n_q)) for s in range(0, n_q, slab)]
    # pass 1: the outstanding cells of every channel (as bits) and the finite channels
    outstanding: list[np.ndarray] = []
    finite_channels = np.zeros(shape[:2], dtype=np.int64)
    counts = np.zeros(shape[:2], dtype=np.int64)
    for part in slabs:
        values = np.asarray(data[..., part])
        found = np.zeros(values.shape, dtype=bool)
        for start in range(0, values.shape[2], chunk):
            block = np.asarray(values[..., start : start + chunk], dtype=np.float64)
            begin = part.start + start
            sigma = None if errors is None else np.asarray(errors[..., begin : begin + chunk])
            found[..., start : start + chunk] = _outstanding(block, sigma, footprint, n_sigma)
            finite_channels += np.isfinite(block).sum(axis=2)
        counts += found.sum(axis=2)
        outstanding.append(np.packbits(found, axis=2))
    broad = counts > np.maximum(max_channel_fraction * finite_channels, 1)
    # pass 2: each slab's spots by the median of their neighbours (same channel)
    total = 0
    for part, bits in zip(slabs, outstanding, strict=True):
        here = np.unpackbits(bits, axis=2, count=part.stop - part.start).astype(bool)
        here &= ~broad[..., None]
        if replaced is not None:
            replaced[..., part] = here
        if not here.any():
            continue
        values = np.asarray(data[..., part])
        cells = np.argwhere(here)
        values[here] = _neighbour_medians(values, cells, footprint)
        data[..., part] = values
        total += len(cells)
    return total


def _outstanding(
    block: np.ndarray, errors: np.ndarray | None, footprint: np.ndarray, n_sigma: float
) -> np.ndarray:
    """Cells of ``block`` (n_angles, n_t, n_channels) above all their ``footprint``
    neighbours by more than ``n_sigma`` noise (see :func:`suppress_spots`)."""
    from scipy import ndimage

    finite = np.isfinite(block)
    # local noise: the median step along the translation around each cell (Poisson noise
    # grows with the signal, so one figure per channel would be too low inside the sample)
    steps = np.abs(np.diff(block, axis=1))
    steps = np.concatenate([steps, steps[:, -1:]], axis=1)
    steps = np.where(np.isfinite(steps), steps, np.nan)
    local = window_median(np.nan_to_num(steps, nan=0.0), 1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # channels without data: NaN noise
        # the channel's median step as a floor: at a few counts the local median is 0
        floor = np.nan_to_num(np.nanmedian(steps.reshape(-1, block.shape[2]), axis=0))
    noise = 1.4826 * np.maximum(local, floor) / np.sqrt(2.0)
    sigma = noise if errors is None else np.maximum(noise, np.nan_to_num(errors))
    lowest = np.finfo(np.float64).min
    neighbours = ndimage.maximum_filter(
        np.where(finite, block, lowest), footprint=footprint, mode="constant", cval=lowest
    )
    return finite & (neighbours > lowest) & (block - neighbours > n_sigma * sigma)


@njit(cache=True, inline="always")
def _insert_sorted(window: np.ndarray, k: int, value: float) -> None:
    """Insert ``value`` into the ascending ``window[:k]`` (``window[k]`` is free)."""
    j = k
    while j > 0 and window[j - 1] > value:
        window[j] = window[j - 1]
        j -= 1
    window[j] = value


@njit(cache=True, inline="always")
def _remove_sorted(window: np.ndarray, k: int, value: float) -> None:
    """Remove one ``value`` from the ascending ``window[:k]``."""
    j = 0
    while j < k - 1 and window[j] != value:
        j += 1
    while j < k - 1:
        window[j] = window[j + 1]
        j += 1


@njit(parallel=True, cache=True)
def window_median(values: np.ndarray, reach_a: int, reach_t: int) -> np.ndarray:
    """Median of each cell's (2 reach_a + 1) x (2 reach_t + 1) neighbourhood along the first
    two axes of finite ``values`` (n_a, n_t, n_c), channel by channel, edges repeated: what
    ``scipy.ndimage.median_filter(values, size=(2 reach_a + 1, 2 reach_t + 1, 1),
    mode="nearest")`` gives, 5 times faster on one core. The window slides along the
    second axis, a sorted copy updated by the column leaving and the one entering (T. S.
    Huang, G. J. Yang and G. Y. Tang, IEEE Trans. ASSP 27 (1979) 13)."""
    n_a, n_t, n_c = values.shape
    out = np.empty_like(values)
    size = (2 * reach_a + 1) * (2 * reach_t + 1)
    for a in prange(n_a):
        window = np.empty(size, dtype=values.dtype)
        for c in range(n_c):
            k = 0
            for da in range(-reach_a, reach_a + 1):
                row = min(max(a + da, 0), n_a - 1)
                for dt in range(-reach_t, reach_t + 1):
                    _insert_sorted(window, k, values[row, min(max(dt, 0), n_t - 1), c])
                    k += 1
            out[a, 0, c] = window[size // 2]
            for t in range(1, n_t):
                leaving = min(max(t - 1 - reach_t, 0), n_t - 1)
                entering = min(t + reach_t, n_t - 1)
                for da in range(-reach_a, reach_a + 1):
                    row = min(max(a + da, 0), n_a - 1)
                    _remove_sorted(window, size, values[row, leaving, c])
                    _insert_sorted(window, size - 1, values[row, entering, c])
                out[a, t, c] = window[size // 2]
    return out


def _neighbour_medians(data: np.ndarray, cells: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Median of the finite neighbours (``footprint`` around each cell, same channel) of
    ``cells`` (n, 3) of ``data``."""
    reach = (np.array(footprint.shape[:2]) - 1) // 2
    offsets = np.argwhere(footprint[..., 0]) - reach
    rows = cells[:, None, 0] + offsets[None, :, 0]
    cols = cells[:, None, 1] + offsets[None, :, 1]
    inside = (rows >= 0) & (rows < data.shape[0]) & (cols >= 0) & (cols < data.shape[1])
    values = data[np.clip(rows, 0, data.shape[0] - 1), np.clip(cols, 0, data.shape[1] - 1),
                  cells[:, None, 2]]  # fmt: skip
    values = np.where(inside, values, np.nan)
    return np.nanmedian(values, axis=1)


TOTALS_SPREAD = 0.1
"""Relative spread (standard deviation over mean) of the projections' totals above which a
reconstruction says the sample leaves the field or the axes are swapped: 0.3-1.2 % on the
demo twins (attenuation and summed scattering), 35-60 % with the axes swapped."""


def projection_totals_spread(
    image: np.ndarray, rotation_angle_deg: np.ndarray, t_um: np.ndarray
) -> float:
    """Standard deviation over mean of the totals of the complete projections of ``image``
    (n_angles, n_t; rays at ``t_um`` from the axis): a sample inside the scanned field gives
    every angle the same total (the zeroth Helgason-Ludwig condition). In a full turn (or
    one with a gap, :func:`~jellyroll.conventions.sees_both_sides`), each
    projection's rays weighted by their share of the line
    (:func:`~jellyroll.conventions.redundancy_weights`), summed with the projection's
    conjugate half a turn on: a half acquisition sees part of the sample at each angle and
    the rest half a turn later (its totals alone varied by 30-40 %, and the maps said the
    sample left the field). 0 with fewer than 3 complete projections or pairs, or a total
    that is not positive."""
    complete = np.isfinite(image).all(axis=1)
    if sees_both_sides(np.asarray(rotation_angle_deg)[np.isfinite(image).any(axis=1)]):
        shares = np.nansum(image * redundancy_weights(t_um)[None, :], axis=1)
        pairs = _conjugate_pairs(complete, rotation_angle_deg)
        totals, complete = shares[pairs[:, 0]] + shares[pairs[:, 1]], np.ones(len(pairs), bool)
    else:
        totals = image.sum(axis=1)
    if complete.sum() < 3:
        return 0.0
    totals = totals[complete]
    mean = float(totals.mean())
    return float(totals.std() / mean) if mean > 0 else 0.0


def totals_spread_note(spread: float) -> str:
    """What a spread of the projections' totals over :data:`TOTALS_SPREAD` means ("" below):
    data written (translations, angles, q) with as many translations as angles passed every
    shape check and reconstructed into noise, exit 0."""
    if not spread > TOTALS_SPREAD:
        return ""
    return (
        f"the projections' totals vary by {spread:.0%} between angles (a sample inside the "
        "scanned field gives the same total at every angle): the sample leaves the field, and "
        "the maps are biased, or the angle and translation axes of /entry/sinogram/data are "
        "swapped"
    )

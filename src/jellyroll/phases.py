"""Phase maps from WAXS: q-window integrals with a linear background, labels and composites.

The reference study (Lübke et al., Energy Environ. Sci. 2024, 17, 5048, Table 1) maps the
lithiation of graphite and NMC622 by integrating each phase's Bragg line over a fixed q
window. Here a straight line is subtracted first, so that smooth backgrounds (amorphous
halos, electrolyte, air) do not count as phase; it is anchored on given q ranges (for Table 1,
shared by each family and clear of all its lines) or on a few bins just outside each window
edge (the "shoulders").

Everything is one fixed linear map of the pattern, ``integrals = pattern @ weights``
(:func:`window_weights`), so it applies equally to reconstructed volumes ``(y, x, q)`` and to
sinograms ``(angle, translation, q)``: integrating windows in sinogram space and
reconstructing the few window channels (the fast path) equals integrating the reconstructed
volume, for any linear reconstruction.

Units: q in inverse angstrom (A^-1); intensities in arbitrary units; window integrals in
intensity x A^-1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from jellyroll.conventions import pseudo_voigt

__all__ = [
    "GRAPHITE_BACKGROUND",
    "GRAPHITE_OVERVIEW_WINDOW",
    "GRAPHITE_PHASES",
    "HOUSING_WINDOW",
    "NMC_BACKGROUND",
    "NMC_PHASES",
    "NO_PHASE",
    "NO_VALUE",
    "TABLE1_WINDOWS",
    "LineShape",
    "PhaseLabels",
    "QWindow",
    "covers",
    "fit_graphite_lines",
    "graphite_amounts",
    "graphite_composite",
    "nmc_composite",
    "phase_labels",
    "phase_maps",
    "rgb_composite",
    "window_centroids",
    "window_integrals",
    "window_weights",
]

DEFAULT_SHOULDER_BINS = 2

NO_PHASE = -1
"""Phase label of a pixel where the family is absent (its total below the threshold)."""
NO_VALUE = -2
"""Phase label of a pixel where a window integral of the family has no value (NaN): nothing
can be said there, which is not the same as a pixel without the phase."""


@dataclass(frozen=True)
class QWindow:
    """An integration window [q_min, q_max] (A^-1) and where its linear background is
    anchored: ``background`` = ((lo, hi), (lo, hi)), the q ranges (A^-1) whose mean
    intensities fix the line on the low-q and high-q side; None anchors it on the
    ``shoulder_bins`` bins just outside the window. ``exact_edges``: integrate the pattern
    interpolated linearly between the bins from q_min to q_max exactly (the bins beside
    each edge take a share) rather than from the first to the last bin centre inside (the
    study's rule: up to two bins short of the window, by an amount that moves with the
    axis's offset)."""

    q_min: float
    q_max: float
    background: tuple[tuple[float, float], tuple[float, float]] | None = None
    exact_edges: bool = False


WindowSpec = QWindow | tuple[float, float]
"""A window as a :class:`QWindow` or a plain (q_min, q_max) pair (A^-1)."""


GRAPHITE_BACKGROUND: tuple[tuple[float, float], tuple[float, float]] = ((1.60, 1.65), (1.93, 1.98))
"""Background anchors (A^-1) shared by the graphite windows: clear of the LiC6 (1.70),
LiC12 (1.79) and graphite (1.87) lines, so that no window's line is taken for background
under its neighbour (the Table 1 windows touch each other)."""
NMC_BACKGROUND: tuple[tuple[float, float], tuple[float, float]] = ((4.42, 4.445), (4.625, 4.66))
"""Background anchors (A^-1) shared by the NMC622 windows, outside both lines."""

TABLE1_WINDOWS: dict[str, QWindow] = {
    "nmc_lithiated": QWindow(4.57, 4.62, NMC_BACKGROUND, exact_edges=True),
    "nmc_delithiated": QWindow(4.45, 4.50, NMC_BACKGROUND, exact_edges=True),
    "lic6": QWindow(1.67, 1.73, GRAPHITE_BACKGROUND, exact_edges=True),
    "lic12": QWindow(1.78, 1.82, GRAPHITE_BACKGROUND, exact_edges=True),
    "graphite_poor": QWindow(1.82, 1.90, GRAPHITE_BACKGROUND, exact_edges=True),
}
"""q windows (A^-1) of reference Table 1, keyed by the SPEC section 6 map names; integrated
to their exact edges: the bin centres inside the LiC12 window (0.04 A^-1, 2.7 bins of the
twin's 0.0147 A^-1 axis) span 1 or 2 bins of it as the axis's offset moves them, and a
quarter-bin shift moved the anode's LiC12 share of the graphite integrals from 0.40 to
0.29, exit 0."""

GRAPHITE_OVERVIEW_WINDOW: dict[str, QWindow] = {
    "graphite": QWindow(1.82, 1.92, GRAPHITE_BACKGROUND, exact_edges=True)
}
"""The graphite overview map of the study (its Fig. 1d), A^-1."""

HOUSING_WINDOW: dict[str, QWindow] = {"housing": QWindow(3.07, 3.13)}
"""The (110) line of the ferritic steel casing (bcc Fe, a = 2.8665 A: q = 3.100 A^-1), A^-1,
background on the bins beside it: the housing ring that locates the cell when the scan has
no diode (SPEC section 2, step 6). The Al collector's (200) line falls in it too (a / sqrt 2
of fcc Al = 2.863 A), but the collector is a spiral inside the casing's full circle."""

GRAPHITE_PHASES: tuple[str, ...] = ("lic6", "lic12", "graphite_poor")
"""Graphite family, in label order: 0 LiC6, 1 LiC12, 2 graphite / poorly lithiated."""
NMC_PHASES: tuple[str, ...] = ("nmc_lithiated", "nmc_delithiated")
"""NMC family, in label order: 0 lithiated, 1 delithiated."""


def _as_window(spec: WindowSpec) -> QWindow:
    return spec if isinstance(spec, QWindow) else QWindow(float(spec[0]), float(spec[1]))


def _bins_in(q: np.ndarray, lo: float, hi: float, what: str) -> np.ndarray:
    """Positions of the ascending ``q`` bins with lo <= q <= hi."""
    if not lo < hi:
        raise ValueError(f"{what} [{lo}, {hi}] must have q_min < q_max")
    return np.flatnonzero((q >= lo) & (q <= hi))


def _anchors(
    q: np.ndarray, window: QWindow, inside: np.ndarray, shoulder_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the bins anchoring the background on each side of a window."""
    if window.background is not None:
        sides = [_bins_in(q, lo, hi, "background range") for lo, hi in window.background]
        if min(s.size for s in sides) == 0:
            raise ValueError(
                f"background ranges {window.background} A^-1 of window "
                f"[{window.q_min}, {window.q_max}] need >= 1 q bin each"
            )
        return sides[0], sides[1]
    if inside[0] < shoulder_bins or inside[-1] + shoulder_bins >= q.size:
        raise ValueError(
            f"window [{window.q_min}, {window.q_max}] A^-1 needs {shoulder_bins} q bins beyond "
            f"each edge for its background; the q axis spans [{q[0]:.4g}, {q[-1]:.4g}]"
        )
    return (
        np.arange(inside[0] - shoulder_bins, inside[0]),
        np.arange(inside[-1] + 1, inside[-1] + 1 + shoulder_bins),
    )


PARTIAL_SHARE = 0.05
"""Largest share of a window's width that the q axis may leave uncovered (beyond one bin,
the grid's own offset) for the window to be integrated, with a note: a SAXS axis from 0.0262
1/A, 1.6 % short of 0.025, is one detector's reach; one from 0.06 (47 % short) integrated a
part of the window (0.07 times the intensity, d* 5.6 nm for 14.2) as if it were whole."""


HOLE_STEPS = 4.0
"""Width, in steps of the axis, above which a gap between two bins is a hole (channels not
reconstructed, or without a value) rather than the grid's own spacing: wider than this many
typical steps about the window and this many of each step beside it (a change of bin width
is not a hole). ``--channels 1.5:1.84,1.89:2.1`` bridged the graphite line at 1.87 1/A and
gave 0.17 times its window integral, exit 0."""


def steps_beside(steps: np.ndarray, pad: float) -> tuple[np.ndarray, np.ndarray]:
    """The step beside each of ``steps`` (n,) on its low-q and on its high-q side, each the
    smaller of the two nearest on that side (``pad`` beyond the axis's ends): a gap is
    measured against these, so that two gaps split by one channel (each the other's
    neighbour) are still gaps, while a change of bin width (steps alike on one side) is
    none."""
    padded = np.r_[pad, pad, steps, pad, pad]
    below = np.minimum(padded[1:-3], padded[:-4])
    above = np.minimum(padded[3:-1], padded[4:])
    return below, above


def window_shortfall(q: np.ndarray, q_min: float, q_max: float, *, edge_bin: bool = True) -> float:
    """Share of the window [q_min, q_max] (A^-1) that the axis ``q`` (any order, >= 2 bins)
    leaves uncovered: beyond its ends, less one bin at each end with ``edge_bin`` (a bin
    centre within a bin of an edge covers it, for the refusal; without, the part the
    integral misses, which stops at the last bin centre), and in its holes (gaps of more
    than :data:`HOLE_STEPS` steps: the median step of the window's bins and one bin beyond
    each edge, and the steps beside the gap), less the step beside each side of a hole."""
    qs = np.sort(np.asarray(q, dtype=np.float64))
    low = max(0.0, qs[0] - q_min - (qs[1] - qs[0] if edge_bin else 0.0))
    high = max(0.0, q_max - qs[-1] - (qs[-1] - qs[-2] if edge_bin else 0.0))
    steps = np.diff(qs)
    first = max(int(np.searchsorted(qs, q_min)) - 1, 0)
    last = min(int(np.searchsorted(qs, q_max, side="right")), qs.size - 1)
    typical = float(np.median(steps[first:last])) if last > first else float(np.median(steps))
    below, above = steps_beside(steps, typical)
    hole = steps > HOLE_STEPS * np.maximum(typical, np.maximum(below, above))
    starts = np.maximum(qs[:-1][hole] + below[hole], q_min)
    stops = np.minimum(qs[1:][hole] - above[hole], q_max)
    holes = float(np.clip(stops - starts, 0.0, None).sum())
    return (low + high + holes) / (q_max - q_min)


def _check_reaches_edges(q: np.ndarray, window: QWindow) -> None:
    """Refuse a window the ascending ``q`` axis leaves more than :data:`PARTIAL_SHARE` of
    uncovered (beyond its ends or in a hole): its integral would be a part of it."""
    short = window_shortfall(q, window.q_min, window.q_max)
    if short > PARTIAL_SHARE:
        raise ValueError(
            f"the q axis [{q[0]:.4g}, {q[-1]:.4g}] A^-1 leaves {short:.0%} of the window "
            f"[{window.q_min}, {window.q_max}] uncovered (beyond its ends or in a gap between "
            "its channels): its integral would miss it; reconstruct every channel of the "
            "window (--channels), or find why some hold no value"
        )


def _interpolated_weights(qs: np.ndarray, q_min: float, q_max: float, moment: int) -> np.ndarray:
    """Weights (n_q,) of the integral of q^moment times the pattern on the ascending axis
    ``qs`` (A^-1), interpolated linearly between its bins, from q_min to q_max (held to
    the axis's ends). Simpson's rule on each piece: exact for its polynomial of degree 2."""
    lo, hi = qs[:-1], qs[1:]
    start, stop = np.maximum(lo, q_min), np.minimum(hi, q_max)
    length = np.clip(stop - start, 0.0, None)
    weights = np.zeros(qs.size)
    for node, factor in ((start, 1.0), (0.5 * (start + stop), 4.0), (stop, 1.0)):
        share = factor / 6.0 * length * node**moment
        weights[:-1] += share * (hi - node) / (hi - lo)
        weights[1:] += share * (node - lo) / (hi - lo)
    return weights


def window_weights(
    q: np.ndarray,
    windows: Mapping[str, WindowSpec],
    *,
    shoulder_bins: int = DEFAULT_SHOULDER_BINS,
    moment: int = 0,
    channels: np.ndarray | None = None,
) -> np.ndarray:
    """Weights ``(n_q, n_windows)`` such that ``pattern @ weights`` are the window integrals.

    For each window [q_min, q_max] (A^-1) the bins whose centre lies inside (inclusive) are
    integrated with the trapezoid rule (a :class:`QWindow` with ``exact_edges``: the
    pattern interpolated linearly between the bins, from q_min to q_max exactly), after
    subtracting the straight line through the mean (q, I) of the low-q anchor bins and the
    mean (q, I) of the high-q anchor bins.
    Anchors are the window's ``background`` ranges, or else the ``shoulder_bins`` bins just
    outside each edge; ``shoulder_bins`` = 0 leaves such windows without background.
    ``moment`` 1 weights the integrand by q (A^-1), for centroids. ``q`` (n_q,) may be in
    any order. ``channels`` (n_q,) bool: the channels to use (None: all); the others get
    weight 0, as if the axis did not hold them (e.g. channels without any value).
    """
    if channels is not None:
        keep = np.asarray(channels, dtype=bool)
        full = np.zeros((np.size(q), len(windows)))
        full[keep] = window_weights(
            np.asarray(q)[keep], windows, shoulder_bins=shoulder_bins, moment=moment
        )
        return full
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 1 or not np.all(np.isfinite(q)):
        raise ValueError("q must be a one-dimensional array of finite values")
    if int(shoulder_bins) != shoulder_bins or shoulder_bins < 0:
        raise ValueError(f"shoulder_bins must be an integer >= 0, got {shoulder_bins}")
    if moment not in (0, 1):
        raise ValueError(f"moment must be 0 or 1, got {moment}")
    order = np.argsort(q, kind="stable")
    qs = q[order]
    if np.any(np.diff(qs) <= 0):
        raise ValueError("q values must be distinct")
    weights = np.zeros((q.size, len(windows)))
    for w, spec in enumerate(windows.values()):
        window = _as_window(spec)
        inside = _bins_in(qs, window.q_min, window.q_max, "window")
        if inside.size < 2:
            raise ValueError(
                f"window [{window.q_min}, {window.q_max}] A^-1 holds {inside.size} q bins; "
                "need >= 2"
            )
        _check_reaches_edges(qs, window)
        if window.exact_edges:
            column = _interpolated_weights(qs, window.q_min, window.q_max, moment)
        else:
            qw = qs[inside]
            column = np.zeros(q.size)
            column[inside[1:]] += 0.5 * np.diff(qw)
            column[inside[:-1]] += 0.5 * np.diff(qw)
            column *= qs**moment
        integral = column.copy()
        if window.background is not None or shoulder_bins:
            left, right = _anchors(qs, window, inside, shoulder_bins)
            q_left, q_right = qs[left].mean(), qs[right].mean()
            if not q_left < q_right:
                raise ValueError(f"background anchors of {window} must lie low-q then high-q")
            # bg(q) = I_left (q_right - q) / span + I_right (q - q_left) / span, with I_left
            # and I_right the anchor means: linear in the pattern like the integral.
            span = q_right - q_left
            np.subtract.at(column, left, np.sum(integral * (q_right - qs)) / span / left.size)
            np.subtract.at(column, right, np.sum(integral * (qs - q_left)) / span / right.size)
        weights[order, w] = column
    return weights


def window_integrals(
    q: np.ndarray,
    data: np.ndarray,
    windows: Mapping[str, WindowSpec] = TABLE1_WINDOWS,
    *,
    shoulder_bins: int = DEFAULT_SHOULDER_BINS,
    moment: int = 0,
    channels: np.ndarray | None = None,
) -> np.ndarray:
    """Background-subtracted window integrals of ``data`` (..., n_q): shape (..., n_windows).

    ``data`` is any stack of patterns on ``q`` (n_q,) A^-1: a reconstructed volume
    (y, x, q) or a sinogram (angle, translation, q); the result's last axis follows the
    order of ``windows`` (name -> :class:`QWindow` or (q_min, q_max), A^-1). Units:
    intensity x A^-1. A window is
    NaN where one of the bins it uses is NaN (other windows are unaffected). See
    :func:`window_weights` for the background, ``moment`` and ``channels`` (the channels
    left out are never read).
    """
    weights = window_weights(
        q, windows, shoulder_bins=shoulder_bins, moment=moment, channels=channels
    )
    data = np.asarray(data)
    if data.ndim == 0 or data.shape[-1] != weights.shape[0]:
        raise ValueError(f"data must have shape (..., {weights.shape[0]}), got {data.shape}")
    dtype = np.result_type(data.dtype, np.float32)
    out = np.empty((*data.shape[:-1], weights.shape[1]), dtype=dtype)
    for w in range(weights.shape[1]):
        # only the bins a window uses, so that NaN elsewhere does not reach it
        used = np.flatnonzero(weights[:, w])
        out[..., w] = data[..., used] @ weights[used, w].astype(dtype)
    return out


def window_centroids(
    q: np.ndarray,
    data: np.ndarray,
    windows: Mapping[str, WindowSpec],
    *,
    shoulder_bins: int = DEFAULT_SHOULDER_BINS,
) -> np.ndarray:
    """Centroid q (A^-1) of the background-subtracted intensity in each window, (..., n_w).

    The ratio of the first to the zeroth moment; NaN where the window integral is <= 0.
    """
    m0 = window_integrals(q, data, windows, shoulder_bins=shoulder_bins, moment=0)
    m1 = window_integrals(q, data, windows, shoulder_bins=shoulder_bins, moment=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m0 > 0, m1 / m0, np.nan)


def uncovered(
    q: np.ndarray,
    windows: Mapping[str, WindowSpec],
    *,
    shoulder_bins: int = DEFAULT_SHOULDER_BINS,
) -> str | None:
    """Why a window or its background anchors do not fit on the q axis (A^-1); None when
    every one does."""
    try:
        window_weights(q, windows, shoulder_bins=shoulder_bins)
    except ValueError as error:
        return str(error)
    return None


def partly_covered(q: np.ndarray, windows: Mapping[str, WindowSpec]) -> str | None:
    """Which windows the q axis (A^-1) covers only in part (within :data:`PARTIAL_SHARE`,
    so integrated), in words; None when it covers every one whole. An axis whose end lies
    inside a window, by less than a bin too, cuts it: the integral stops at the last bin
    centre (an axis from 0.0262 1/A in bins of 0.0014 held 0.87 of the SAXS intensity of a
    q^-3.7 law over 0.025-0.1, and no note said so)."""
    short = {}
    for name, spec in windows.items():
        window = _as_window(spec)
        share = window_shortfall(q, window.q_min, window.q_max, edge_bin=False)
        if share > 0:
            short[name] = f"{name} [{window.q_min}, {window.q_max}] {share:.1%} short"
    if not short:
        return None
    return (
        f"the q axis [{np.min(q):.4g}, {np.max(q):.4g}] 1/A covers part of "
        f"{', '.join(short.values())}: those integrals miss the rest"
    )


def covers(
    q: np.ndarray,
    windows: Mapping[str, WindowSpec],
    *,
    shoulder_bins: int = DEFAULT_SHOULDER_BINS,
) -> bool:
    """True when every window and its background anchors fit on the q axis (A^-1)."""
    return uncovered(q, windows, shoulder_bins=shoulder_bins) is None


def phase_maps(
    q: np.ndarray,
    data: np.ndarray,
    windows: Mapping[str, WindowSpec] = TABLE1_WINDOWS,
    *,
    shoulder_bins: int = DEFAULT_SHOULDER_BINS,
    channels: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Window integral map of each window: name -> array of shape ``data.shape[:-1]``
    (``channels``: see :func:`window_weights`)."""
    integrals = window_integrals(q, data, windows, shoulder_bins=shoulder_bins, channels=channels)
    return {name: integrals[..., k] for k, name in enumerate(windows)}


PRESENT_SIGMAS = 3.0
"""A family is present in a pixel only where its summed (signed) integrals stand this many
noise sigmas above 0 (:func:`family_noise`). The clipped sum of noise alone is positive:
on the tiny twin, 174 of the 9266 pixels without graphite (cathode pixels, whose NMC
scattering brings the most noise) passed 5 % of the anode's 99th percentile and were
labelled LiC6, LiC12 or poorly lithiated, exit 0; with this test 1."""
MIN_NOISE_PIXELS = 10
"""Fewest pixels with a negative family sum for :func:`family_noise` to estimate it."""


def family_noise(signed: np.ndarray) -> float:
    """One-sigma noise of a family's summed window integrals (intensity x A^-1) from the
    pixels where that sum is negative, as in pixels without the family (their sums scatter
    about 0; the negative half gives the RMS): 0 where fewer than
    :data:`MIN_NOISE_PIXELS` are (plain integrals of the study, without background, are
    never negative)."""
    negative = np.asarray(signed, dtype=np.float64)
    negative = negative[negative < 0]
    if negative.size < MIN_NOISE_PIXELS:
        return 0.0
    return float(np.sqrt(np.mean(negative**2)))


@dataclass(frozen=True)
class PhaseLabels:
    """Phase label and fractions of every pixel of a family of phases.

    ``label`` int8 (...): index of the dominant phase in the family order, :data:`NO_PHASE`
    (-1) where the family is absent, :data:`NO_VALUE` (-2) where one of its integrals is NaN;
    ``fractions`` (..., n_phases): each phase's share of the family's clipped integrals (NaN
    where the label is negative); ``total`` (...): the family's summed clipped integrals
    (intensity x A^-1, divided by the sensitivities when given; NaN where the label is -2).
    """

    label: np.ndarray
    fractions: np.ndarray
    total: np.ndarray


def phase_labels(
    maps: Mapping[str, np.ndarray],
    family: Sequence[str] = GRAPHITE_PHASES,
    *,
    threshold: float = 0.05,
    robust_percentile: float = 99.0,
    sensitivity: Mapping[str, float] | None = None,
) -> PhaseLabels:
    """Fractions and argmax label of the phases ``family`` from their window-integral maps.

    Negative integrals (noise, over-subtracted background) count as 0. Pixels whose family
    total is below ``threshold`` times the ``robust_percentile`` percentile of the totals
    (the map's robust maximum), or whose signed sum is within :data:`PRESENT_SIGMAS` of the
    noise (:func:`family_noise`), have no such phase: label -1; pixels where one of the maps
    is NaN have no value: label -2. ``sensitivity`` (name ->
    window integral per unit amount of that phase, e.g. from a pure-phase pattern) divides
    each map first, so that fractions estimate amounts rather than intensities; without it
    the study's plain integrals are compared.
    """
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be within [0, 1), got {threshold}")
    factors = [1.0 if sensitivity is None else float(sensitivity[name]) for name in family]
    if not all(f > 0 for f in factors):
        raise ValueError(f"sensitivities must be > 0, got {factors}")
    stack = np.stack(
        [
            np.asarray(maps[name], dtype=np.float64) / f
            for name, f in zip(family, factors, strict=True)
        ],
        axis=-1,
    )
    clipped = np.clip(np.nan_to_num(stack, nan=0.0), 0.0, None)
    total = clipped.sum(axis=-1)
    finite = np.isfinite(stack).all(axis=-1)
    positive = total[finite & (total > 0)]
    robust_max = float(np.percentile(positive, robust_percentile)) if positive.size else 0.0
    signed = np.nan_to_num(stack, nan=0.0).sum(axis=-1)
    present = (
        finite
        & (total > 0)
        & (total >= threshold * robust_max)
        & (signed > PRESENT_SIGMAS * family_noise(signed[finite]))
    )
    label = np.where(present, clipped.argmax(axis=-1), NO_PHASE)
    label = np.where(finite, label, NO_VALUE).astype(np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        fractions = np.where(present[..., None], clipped / total[..., None], np.nan)
    total = np.where(finite, total, np.nan)
    return PhaseLabels(label=label, fractions=fractions, total=total)


def rgb_composite(
    red: np.ndarray | None,
    green: np.ndarray | None,
    blue: np.ndarray | None,
    *,
    percentile: float = 99.5,
) -> np.ndarray:
    """RGB image (ny, nx, 3) in 0..1 from up to three maps (None: a dark channel).

    The channels share one scale, the ``percentile`` of all their positive finite values,
    so that colours compare intensities; negative and NaN values are black.
    """
    shape = next(np.shape(c) for c in (red, green, blue) if c is not None)
    channels = [
        np.zeros(shape) if c is None else np.nan_to_num(np.asarray(c, np.float64), nan=0.0)
        for c in (red, green, blue)
    ]
    rgb = np.clip(np.stack(channels, axis=-1), 0.0, None)
    positive = rgb[rgb > 0]
    scale = float(np.percentile(positive, percentile)) if positive.size else 1.0
    return np.clip(rgb / scale, 0.0, 1.0).astype(np.float32)


def graphite_composite(
    lic6: np.ndarray, lic12: np.ndarray, poor: np.ndarray, *, percentile: float = 99.5
) -> np.ndarray:
    """Graphite composite of the study: LiC6 green, LiC12 blue, poorly lithiated red
    (colour scale: :func:`rgb_composite`)."""
    return rgb_composite(poor, lic6, lic12, percentile=percentile)


def nmc_composite(
    lithiated: np.ndarray, delithiated: np.ndarray, *, percentile: float = 99.5
) -> np.ndarray:
    """NMC composite of the study: lithiated green, delithiated red."""
    return rgb_composite(delithiated, lithiated, None, percentile=percentile)


GRAPHITE_D_SPACINGS_A: dict[str, float] = {
    "lic6": 3.70,
    "lic12": 3.51,
    "graphite_poor": 3.354,
}
"""(00l) d-spacings (A) of the graphite phases, SPEC section 5."""
LINE_FIT_RANGE_A = (1.60, 1.98)
"""q range (A^-1) of the line fit: the three lines and the Table 1 background anchors."""
POSITION_FREEDOM_A = 0.02
"""How far (A^-1) a fitted line may sit from its literature position."""
PINNED_LINE_SIGNAL = 0.3
"""Least height of a line (at its strongest step, as a fraction of the strongest line of
the series) that cannot sit at the edge of its :data:`POSITION_FREEDOM_A`."""


@dataclass(frozen=True)
class LineShape:
    """Fitted graphite lines: centres (A^-1) in :data:`GRAPHITE_PHASES` order, FWHM (A^-1)
    and Lorentzian share ``eta`` of a pseudo-Voigt."""

    centres_A: tuple[float, float, float]
    fwhm_A: float
    eta: float

    def lines(self, q: np.ndarray) -> np.ndarray:
        """(3, n_q) unit-height lines on ``q`` (A^-1)."""
        return np.stack([pseudo_voigt(q, c, self.fwhm_A, self.eta) for c in self.centres_A])

    def crosstalk(
        self, q: np.ndarray, windows: Mapping[str, WindowSpec] | None = None
    ) -> np.ndarray:
        """(3 phases, 3 windows): the integrals of each unit line over ``windows`` (the
        graphite phases' windows, as the phase maps were made with: with their background,
        Table 1's by default, or plain), integrated as the maps are (no shoulder bins)."""
        if windows is None:
            windows = {name: TABLE1_WINDOWS[name] for name in GRAPHITE_PHASES}
        return window_integrals(q, self.lines(q), windows, shoulder_bins=0)


def fit_graphite_lines(q: np.ndarray, patterns: np.ndarray) -> LineShape:
    """Fit the graphite lines to mean patterns ``patterns`` (n_steps, n_q) on ``q`` (A^-1).

    Every step has its own three heights and linear background; the line shape (positions,
    width, Lorentzian share) is shared. Raises ValueError when q does not cover
    :data:`LINE_FIT_RANGE_A` or the patterns hold no finite value there, and when a line
    that carries signal (:data:`PINNED_LINE_SIGNAL`) is fitted at the edge of its
    :data:`POSITION_FREEDOM_A`: the q axis is off by more than it (a detector distance 2 %
    off put every line at its edge and the anode's half lithiation at 0.69 instead of 0.55;
    3 % found no damaged zone), and the windows hold the wrong lines.
    """
    q = np.asarray(q, np.float64)
    used = (q >= LINE_FIT_RANGE_A[0]) & (q <= LINE_FIT_RANGE_A[1])
    if used.sum() < 16 or q.min() > LINE_FIT_RANGE_A[0] or q.max() < LINE_FIT_RANGE_A[1]:
        low, high = LINE_FIT_RANGE_A
        raise ValueError(
            f"the graphite lines need q over {low}-{high} 1/A with at least 16 bins, and the "
            f"channels reconstructed start at {q.min():.3f} and end at {q.max():.3f} 1/A, "
            f"{used.sum()} bins within: reconstruct channels reaching past both ends, e.g. "
            f"{low - 0.02:g}:{high + 0.02:g} (--channels; their bins' centres must pass them)"
        )
    data = np.asarray(patterns, np.float64)[:, used]
    finite = np.isfinite(data).all(axis=1)
    if not finite.any():
        raise ValueError("no step has a finite mean graphite pattern")
    data, qs = data[finite], q[used]
    n = data.shape[0]
    literature = np.array([2 * np.pi / GRAPHITE_D_SPACINGS_A[p] for p in GRAPHITE_PHASES])
    scale = float(np.nanmax(np.abs(data))) or 1.0
    data = data / scale

    def residuals(p: np.ndarray) -> np.ndarray:
        lines = np.stack([pseudo_voigt(qs, c, p[3], p[4]) for c in p[:3]])
        per_step = p[5:].reshape(n, 5)
        model = per_step[:, :3] @ lines + per_step[:, 3:4] + per_step[:, 4:5] * (qs - 1.8)
        return (model - data).ravel()

    start = np.r_[literature, 0.03, 0.3, np.tile([0.3, 0.3, 0.3, 0.0, 0.0], n)]
    low = np.r_[
        literature - POSITION_FREEDOM_A, 0.003, 0.0, np.tile([0, 0, 0, -np.inf, -np.inf], n)
    ]
    high = np.r_[literature + POSITION_FREEDOM_A, 0.15, 1.0, np.tile([np.inf] * 5, n)]
    fit = least_squares(residuals, start, bounds=(low, high))
    heights = fit.x[5:].reshape(n, 5)[:, :3].max(axis=0)
    offset = fit.x[:3] - literature
    pinned = (np.abs(offset) > 0.999 * POSITION_FREEDOM_A) & (
        heights >= PINNED_LINE_SIGNAL * max(float(heights.max()), 0.0)
    )
    if pinned.any() and heights.max() > 0:
        named = ", ".join(
            f"{GRAPHITE_PHASES[j]} at {fit.x[j]:.3f} (literature {literature[j]:.3f})"
            for j in np.flatnonzero(pinned)
        )
        raise ValueError(
            f"the graphite lines are fitted at the edge of the {POSITION_FREEDOM_A} 1/A they "
            f"may move ({named} 1/A): the steps' q axis is off, and the Table 1 windows hold "
            "the wrong lines; check the detector geometry (PONI distance, wavelength) the "
            "steps were integrated with"
        )
    return LineShape(tuple(float(c) for c in fit.x[:3]), float(fit.x[3]), float(fit.x[4]))


def graphite_amounts(integrals: np.ndarray, crosstalk: np.ndarray) -> np.ndarray:
    """Line heights (..., 3) from Table 1 window integrals (..., 3): the inverse of the
    crosstalk (``integrals = heights @ crosstalk``)."""
    return np.asarray(integrals, np.float64) @ np.linalg.inv(crosstalk)

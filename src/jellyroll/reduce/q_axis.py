"""Is a q axis written without ``@units`` in 1/angstrom, as SPEC section 6 reads it?

pyFAI integrates in 1/nm (``q_nm^-1``) by default, so patterns or sinograms integrated by
another program and written without ``@units`` may hold q ten times too large for the
1/angstrom they are read in. A SAXS profile has no line to check its axis by: a long
camera's 0.0022-0.2 1/A written in 1/nm read as 0.022-2.0 1/A, covered the SAXS window
all the same, and gave d* 1.16 nm for 11.6 nm, exit 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy.signal import find_peaks

from jellyroll.conventions import MAD_TO_SIGMA
from jellyroll.phases import PARTIAL_SHARE, TABLE1_WINDOWS
from jellyroll.saxs import SAXS_Q_RANGE

TABLE1_SPAN_A: tuple[float, float] = (
    min(w.q_min for w in TABLE1_WINDOWS.values()),
    max(w.q_max for w in TABLE1_WINDOWS.values()),
)
"""The span (1/A) of the Table 1 windows."""
GRAPHITE_LINE_A: tuple[float, float] = (
    TABLE1_WINDOWS["lic6"].q_min,
    TABLE1_WINDOWS["graphite_poor"].q_max,
)
"""Where the anode's graphite (002) line lies (1/A) at any state of charge: LiC6 1.70,
LiC12 1.79, graphite 1.87 (the Table 1 windows)."""
GRAPHITE_REACH = 0.03
"""Share of the line's range an axis must reach beyond it on each side to be searched."""
SAMPLED_PATTERNS = 256
"""Patterns (spread over the scan) whose mean is searched for the graphite line."""
LINE_SIGMA = 10.0
"""A line stands this many noise sigmas above its surroundings in that mean ..."""
LINE_SHARE = 0.02
"""... and this share of the mean pattern's level there (the noise of a mean of many
smooth profiles is tiny: a rounding ripple is no line)."""

MeanPattern = Callable[[np.ndarray], np.ndarray]
"""The mean of up to :data:`SAMPLED_PATTERNS` patterns spread over the data, at the given
channel indices (n,) -> (n,), NaN where none holds a value."""


def _spans(q: np.ndarray, window: tuple[float, float], share: float = 0.0) -> bool:
    """True when the ascending axis ``q`` reaches both ends of ``window``, or within
    ``share`` of its width."""
    slack = share * (window[1] - window[0])
    return bool(q[0] <= window[0] + slack and q[-1] >= window[1] - slack)


def _mapped(q: np.ndarray) -> bool:
    """Whether the ascending axis ``q`` (1/A) covers the SAXS window or the Table 1 span."""
    return any(_spans(q, window, PARTIAL_SHARE) for window in (SAXS_Q_RANGE, TABLE1_SPAN_A))


def check_unitless_q(where: str, q_A: np.ndarray, mean_pattern: MeanPattern) -> None:
    """Check the axis ``q_A`` (n_q,) of data written without ``@units`` (``where``: file and
    dataset), read in 1/A, where reading it in 1/nm would give maps too. Where the axis
    spans the anode's graphite (002) line (:data:`GRAPHITE_LINE_A`, at any state of
    charge), the mean pattern must show it, else ValueError (a SAXS profile read 10 times
    too far out shows none); elsewhere a warning, naming ``where``."""
    axis = np.sort(np.asarray(q_A, dtype=np.float64))
    if not _mapped(axis / 10):  # read in 1/nm it would give no map
        return
    hint = (
        "pyFAI integrates in 1/nm (q_nm^-1) by default: if these q are in 1/nm, every q is "
        "read 10 times too large (d* comes out 10 times too small, the Table 1 windows fall "
        f'on other lines); write @units = "1/nm" on {where} (or @units = "1/angstrom" if '
        "they are in 1/angstrom)"
    )
    read = f"{where} has no @units, so it is read as 1/angstrom (SPEC section 6)"
    lo, hi = GRAPHITE_LINE_A
    if _spans(axis, (lo * (1 - GRAPHITE_REACH), hi * (1 + GRAPHITE_REACH))):
        if not _graphite_line_shown(q_A, mean_pattern):
            raise ValueError(
                f"{read}: {axis[0]:.4g} to {axis[-1]:.4g} 1/A, which spans the anode's "
                f"graphite (002) line ({lo}-{hi} 1/A at any state of charge), yet the mean "
                f"pattern shows no line there. {hint}"
            )
        return
    reading = (
        "gives maps too, and the two cannot be told apart"
        if _mapped(axis)
        else "would give maps, read in 1/angstrom it gives none"
    )
    warnings.warn(
        f"{read}, {axis[0]:.4g} to {axis[-1]:.4g} 1/A; read in 1/nm it {reading}. {hint}",
        stacklevel=3,
    )


def _graphite_line_shown(q_A: np.ndarray, mean_pattern: MeanPattern) -> bool:
    """Whether the mean pattern on ``q_A`` (n_q,) shows a line inside
    :data:`GRAPHITE_LINE_A` that stands :data:`LINE_SIGMA` noise sigmas and
    :data:`LINE_SHARE` of its level above its surroundings (True when too few channels
    hold a value to judge)."""
    order = np.argsort(q_A)
    lo, hi = GRAPHITE_LINE_A
    near = (q_A[order] >= lo * (1 - GRAPHITE_REACH)) & (q_A[order] <= hi * (1 + GRAPHITE_REACH))
    channels = order[near]
    mean = np.asarray(mean_pattern(channels), dtype=np.float64)
    kept = np.isfinite(mean)
    axis, mean = q_A[channels][kept], mean[kept]
    if mean.size < 5:
        return True
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(np.diff(mean, 2)))) / math.sqrt(6)
    level = float(np.median(np.abs(mean)))
    peaks = find_peaks(mean, prominence=max(LINE_SIGMA * sigma, LINE_SHARE * level, 1e-300))[0]
    return bool(np.any((axis[peaks] >= lo) & (axis[peaks] <= hi)))


def sampled_rows(n_rows: int, usable: np.ndarray | None = None) -> np.ndarray:
    """Up to :data:`SAMPLED_PATTERNS` row indices spread evenly over ``n_rows`` rows, among
    the ``usable`` ones ((n_rows,) bool; None: all)."""
    rows = np.arange(n_rows) if usable is None else np.flatnonzero(usable)
    if rows.size == 0:
        return rows
    picks = np.linspace(0, rows.size - 1, min(rows.size, SAMPLED_PATTERNS)).astype(int)
    return np.unique(rows[picks])


def nan_mean_rows(rows: np.ndarray) -> np.ndarray:
    """The mean over the rows of ``rows`` (n, m), NaN in columns without a finite value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # columns without a value
        return np.nanmean(np.asarray(rows, dtype=np.float64), axis=0)

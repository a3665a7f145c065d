"""Check of a WAXS q axis against lines whose positions do not depend on the state of charge.

A scan integrated with a wrong geometry (a PONI distance a few percent off, the wrong
wavelength) stretches its q axis by a common factor: q_measured = factor x q_true, the same
for every line (exactly for the wavelength; to 0.03 % over the twin's 8 degrees of 2 theta for
the distance). The Table 1 windows are 0.04-0.08 1/A wide and the graphite lines lie about
5 % apart, so such an axis integrates the wrong lines and every phase map is wrong: a
distance x 1.02 moved the operando half-lithiation from 0.55 to 0.69, and x 1.05 put each
graphite line onto its neighbour's position. The lines of the cell's metals (casing and
current collectors) sit where their lattices put them whatever the charge: their positions
in the cell's mean pattern give the factor.

Literature lattice constants (room temperature), q = 2 pi sqrt(h^2 + k^2 + l^2) / a:

- Cu, fcc, a = 3.6150 A (Swanson & Tatge, NBS Circular 539 vol. 1 (1953) p. 15; PDF 04-0836);
- Al, fcc, a = 4.0494 A (same, p. 11; PDF 04-0787);
- alpha-Fe (ferritic steel of the casing), bcc, a = 2.8664 A (NBS Circular 539 vol. 4
  (1955) p. 3; PDF 06-0696).

Two pairs of them lie within 0.11 % of each other (Fe (110) and Al (200), Fe (200) and
Al (220)): each pair is one reference at the mean of its two positions. An austenitic
(fcc, a ~ 3.59 A) casing would put lines 0.7 % above Cu (111) and Cu (200): such a cell
needs the check skipped.

Units: q in 1/A.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from jellyroll.conventions import MAD_TO_SIGMA
from jellyroll.phases import TABLE1_WINDOWS

CU_A = 3.6150
AL_A = 4.0494
FE_A = 2.8664


def cubic_q(a_A: float, hkl: tuple[int, int, int]) -> float:
    """Position q (1/A) of the (hkl) line of a cubic lattice of constant ``a_A`` (A)."""
    return 2 * math.pi * math.sqrt(sum(i * i for i in hkl)) / a_A


@dataclass(frozen=True)
class ReferenceLine:
    """A line whose position (q, 1/A) does not depend on the state of charge."""

    name: str
    q_A: float


REFERENCE_LINES: tuple[ReferenceLine, ...] = (
    ReferenceLine("Al (111)", cubic_q(AL_A, (1, 1, 1))),
    ReferenceLine("Cu (111)", cubic_q(CU_A, (1, 1, 1))),
    ReferenceLine("Fe (110) / Al (200)", (cubic_q(FE_A, (1, 1, 0)) + cubic_q(AL_A, (2, 0, 0))) / 2),
    ReferenceLine("Cu (200)", cubic_q(CU_A, (2, 0, 0))),
    ReferenceLine("Fe (200) / Al (220)", (cubic_q(FE_A, (2, 0, 0)) + cubic_q(AL_A, (2, 2, 0))) / 2),
    ReferenceLine("Cu (220)", cubic_q(CU_A, (2, 2, 0))),
    ReferenceLine("Al (311)", cubic_q(AL_A, (3, 1, 1))),
)
"""The casing's and the collectors' lines (1/A): 2.687 to 5.146."""

Q_TOLERANCE = 0.003
"""Largest accepted departure of the axis factor from 1. A correct calibration gives
within 0.03 % (the twin's raw frames reduced with their own PONI; the real CeO2 frame of
``shared/data/real`` with its PONI, against a = 5.4116 A); a factor of 0.995 already moved
the tiny twin's anode LiC6 share from 0.116 to 0.161, 0.997 to 0.137."""
SEARCH_REACH = 0.02
"""A line is searched where the axis holds bins within this share of it on both sides."""
MAX_OFFSET = 0.20
"""Largest departure searched (a 20 % wrong wavelength). At 12 % the Al lines fall on the
Cu lines (a_Al / a_Cu = 1.120): searched up to 10 %, an axis 12 % long (or 11 % short)
found only that false match, 4 of 7 lines at 0.9994 (0.9975), and was accepted as
checked, exit 0; searched beyond it, the true factor, which matches more lines, wins.
Not much farther: the fcc CeO2 calibrant's lines fall on the Al lines at 0.748."""
MATCH = 0.002
"""Relative distance within which a peak is taken for a reference line at a trial factor
(the blended pairs differ by 0.11 %)."""
MIN_LINES = 3
"""Lines that must agree on one factor, and more than half of those the axis holds: the
lines of any one cubic phase fall on those of another at some factor (the real CeO2
frame's (220), (400) and (331) on Cu (200), Cu (220) and Fe (110) / Al (200) at 0.945), and
a single peak could be any phase's."""
PRESENT_SIGMA = 10.0
"""A peak is present when it stands this many noise sigmas above its surroundings."""
WINDOW_RANGE: tuple[float, float] = (
    min(window.q_min for window in TABLE1_WINDOWS.values()),
    max(window.q_max for window in TABLE1_WINDOWS.values()),
)
"""The q range (1/A) of the Table 1 windows, 1.67-4.62: the axis is also judged there, by
the straight line through the lines' measured and literature positions. An axis read with
an offset (q measured = q true + c) has no common factor, and the median ratio of lines at
2.69-5.15 1/A hid it: c = -0.01 1/A (0.6 % at the graphite lines) gave a factor 0.9972,
accepted, and moved the tiny twin's anode LiC6 share from 0.117 to 0.166, exit 0 (a factor
0.995, refused, moves it as far)."""
POSITION_SIGMA = 3e-4
"""Smallest relative one-sigma error of a line's measured position (the parabola vertex of
lines 1.7 bins wide sits up to 0.03 % off): the floor of the straight line's error."""


CALIBRATION = "the PONI distance and beam centre, the radial axis's zero, the wavelength or energy"
"""What sets a WAXS q axis, in words."""
SKIP_Q_CHECK = (
    "skip this check (jellyroll maps or operando --no-q-check, q_check = false in [maps] of "
    "jellyroll run)"
)


class QAxisError(ValueError):
    """A WAXS q axis whose reference lines lie off their places (:func:`q_axis_note`):
    ``finding`` says where, the message adds what to do with `jellyroll maps`."""

    def __init__(self, finding: str) -> None:
        self.finding = finding
        super().__init__(
            f"{finding}. Check the calibration ({CALIBRATION}) and reduce the scan again "
            "with the right one (jellyroll reduce --poni); for a sample whose lines these are "
            f"not, {SKIP_Q_CHECK}"
        )


@dataclass(frozen=True)
class QAxisCheck:
    """What the reference lines say of a q axis: ``found`` (name, literature q, measured
    q, 1/A) of the lines that agree on one factor; ``factor`` (q_measured / q_true, their
    median; None when fewer than :data:`MIN_LINES` lines agree)."""

    found: tuple[tuple[str, float, float], ...]
    factor: float | None
    searched: tuple[str, ...]
    slope: float = 1.0
    offset_A: float = 0.0
    window_q: float = WINDOW_RANGE[0]
    window_ratio: float = 1.0
    window_margin: float = 0.0
    """The straight line q measured = ``slope`` x q true + ``offset_A`` (1/A) through the
    lines found; ``window_q`` (1/A), the edge of :data:`WINDOW_RANGE` where its ratio q
    measured / q true departs most from 1 (beyond its error), ``window_ratio`` that ratio
    and ``window_margin`` twice its one-sigma error."""

    def offset_at_windows(self, tolerance: float = Q_TOLERANCE) -> bool:
        """True when the lines' straight line puts the Table 1 windows farther than
        ``tolerance`` from a ratio of 1, beyond its error."""
        return self.factor is not None and (
            abs(self.window_ratio - 1) - self.window_margin > tolerance
        )

    def within(self, tolerance: float = Q_TOLERANCE) -> bool:
        """True unless a factor was found farther than ``tolerance`` from 1, or the lines'
        straight line puts the Table 1 windows farther (:meth:`offset_at_windows`)."""
        if self.factor is None:
            return True
        return abs(self.factor - 1) <= tolerance and not self.offset_at_windows(tolerance)

    def lines_text(self) -> str:
        """The lines found, their literature and measured positions, in words."""
        return ", ".join(
            f"{name} at {measured:.4f} 1/A (literature {true:.4f}, ratio {measured / true:.4f})"
            for name, true, measured in self.found
        )


def pattern_noise(pattern: np.ndarray) -> float:
    """Robust one-sigma noise of a pattern from its second differences (a few peaks and a
    smooth background barely move their median)."""
    second = np.abs(np.diff(pattern, 2))
    sigma = MAD_TO_SIGMA * float(np.median(second)) / math.sqrt(6) if second.size else 0.0
    return max(sigma, 1e-9 * float(np.max(np.abs(pattern), initial=0.0)))


def pattern_peaks(q: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Positions (1/A, vertex of the parabola through the top three bins) of the peaks of
    ``pattern`` that stand :data:`PRESENT_SIGMA` noise sigmas above their surroundings."""
    noise = pattern_noise(pattern)
    index = find_peaks(pattern, prominence=PRESENT_SIGMA * noise)[0]
    index = index[(index > 0) & (index < q.size - 1)]
    left, top, right = pattern[index - 1], pattern[index], pattern[index + 1]
    curvature = left - 2 * top + right
    shift = 0.5 * (left - right) / np.where(curvature < 0, curvature, -np.inf)
    step_left, step_right = q[index] - q[index - 1], q[index + 1] - q[index]
    return q[index] + np.where(shift > 0, shift * step_right, shift * step_left)


def check_q_axis(
    q: np.ndarray,
    pattern: np.ndarray,
    lines: Sequence[ReferenceLine] = REFERENCE_LINES,
) -> QAxisCheck:
    """The common factor q_measured / q_true of the ``lines`` found in ``pattern`` (n_q,)
    on the ascending axis ``q`` (1/A): every factor within :data:`MAX_OFFSET` of 1 that puts
    a peak on one line is tried, and the one under which most lines find a peak within
    :data:`MATCH` wins (ties: the closest to 1); it needs :data:`MIN_LINES` lines and more
    than half of those inside the axis, or no factor is given. Channels that are not finite
    are left out."""
    q, pattern = np.asarray(q, np.float64), np.asarray(pattern, np.float64)
    finite = np.isfinite(q) & np.isfinite(pattern)
    # ascending: on a descending axis no line was found, and a 2 % stretch passed unchecked
    order = np.argsort(q[finite], kind="stable")
    q, pattern = q[finite][order], pattern[finite][order]
    if q.size < 5:
        return QAxisCheck((), None, ())
    lo, hi = float(q[0]), float(q[-1])
    # a line is searched where bins lie on both sides of it (not in a gap between the
    # channels picked for the reconstruction)
    searched = tuple(
        line
        for line in lines
        if np.any((q < line.q_A) & (q > line.q_A * (1 - SEARCH_REACH)))
        and np.any((q > line.q_A) & (q < line.q_A * (1 + SEARCH_REACH)))
    )
    names = tuple(line.name for line in searched)
    if len(searched) < MIN_LINES:
        return QAxisCheck((), None, names)
    positions = pattern_peaks(q, pattern)
    trials = sorted(
        {
            float(p / line.q_A)
            for line in searched
            for p in positions
            if abs(p / line.q_A - 1) <= MAX_OFFSET
        },
        key=lambda f: abs(f - 1),
    )
    best: list[tuple[ReferenceLine, float]] = []
    for factor in trials:
        matched = []
        for line in searched:
            expected = factor * line.q_A
            if not lo < expected < hi:
                continue
            nearest = positions[np.argmin(np.abs(positions - expected))]
            if abs(nearest / expected - 1) <= MATCH:
                matched.append((line, float(nearest)))
        if len(matched) > len(best):
            best = matched
    if len(best) < max(MIN_LINES, len(searched) // 2 + 1):
        return QAxisCheck((), None, names)
    found = tuple((line.name, line.q_A, measured) for line, measured in best)
    factor = float(np.median([measured / line.q_A for line, measured in best]))
    return QAxisCheck(found, factor, names, *_straight_line(found))


def _straight_line(
    found: Sequence[tuple[str, float, float]],
) -> tuple[float, float, float, float, float]:
    """Slope and offset (1/A) of q measured = slope x q true + offset through the ``found``
    lines (name, literature q, measured q, 1/A; >= 3), and where in :data:`WINDOW_RANGE`
    its ratio q measured / q true departs most from 1 beyond its error: that q, the ratio
    and twice its one-sigma error (from the lines' scatter about the line, at least
    :data:`POSITION_SIGMA` of each position; large where a few lines bunch far from the
    windows, so that their noise extrapolated is not taken for an offset)."""
    true = np.array([t for _, t, _ in found])
    measured = np.array([m for _, _, m in found])
    slope, offset = (float(v) for v in np.polyfit(true, measured, 1))
    residual = measured - (slope * true + offset)
    dof = true.size - 2
    scatter = math.sqrt(float(residual @ residual) / dof) if dof > 0 else 0.0
    sigma = max(scatter, POSITION_SIGMA * float(measured.mean()))
    spread = float(np.sum((true - true.mean()) ** 2))
    worst = (WINDOW_RANGE[0], 1.0, 0.0, -math.inf)
    for q_w in WINDOW_RANGE:
        ratio = slope + offset / q_w
        error = sigma * math.sqrt(1 / true.size + (q_w - true.mean()) ** 2 / spread) / q_w
        excess = abs(ratio - 1) - 2 * error
        if excess > worst[3]:
            worst = (q_w, ratio, 2 * error, excess)
    return slope, offset, worst[0], worst[1], worst[2]


def q_axis_note(
    q: np.ndarray,
    pattern: np.ndarray,
    *,
    tolerance: float = Q_TOLERANCE,
    wider: Callable[[], tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> str:
    """What :func:`check_q_axis` says of the WAXS axis ``q`` (1/A) from the cell's mean
    ``pattern`` (n_q,), as a note of the maps. When ``q`` holds fewer than
    :data:`MIN_LINES` lines (a reconstruction of a few channels, e.g. an operando step's),
    ``wider()`` gives a pattern of the same scan over more channels (the sinogram's mean
    pattern: q, pattern) to check instead, or None.

    Raises ValueError when the lines agree on a factor farther than ``tolerance`` from 1:
    every Table 1 window would integrate the wrong line.
    """
    check = check_q_axis(q, pattern)
    source = "mean pattern"
    found = wider() if wider is not None and len(check.searched) < MIN_LINES else None
    if found is not None:
        check, source = check_q_axis(*found), "sinogram's mean pattern"
    unchecked = "the q axis calibration (PONI distance, wavelength) is not checked"
    if len(check.searched) < MIN_LINES:
        held = f" ({', '.join(check.searched)})" if check.searched else ""
        return (
            f"the q channels hold {len(check.searched)} of the casing's and current "
            f"collectors' lines{held}, {MIN_LINES} needed: {unchecked} (reconstruct every "
            "channel to check it)"
        )
    if check.factor is None:
        return (
            f"the casing's and current collectors' lines are not found in the {source} "
            f"(searched: {', '.join(check.searched)}; {MIN_LINES} and more than half of "
            f"them must agree on one factor): {unchecked}"
        )
    if abs(check.factor - 1) <= tolerance and check.offset_at_windows(tolerance):
        raise QAxisError(
            f"the q axis is off by an offset: in the {source} the casing's and current "
            f"collectors' lines lie at {check.lines_text()}, on the line q measured = "
            f"{check.slope:.4f} q true {check.offset_A:+.4f} 1/A, which gives q measured / "
            f"q true = {check.window_ratio:.4f} at {check.window_q:g} 1/A, a Table 1 window "
            f"edge (accepted 1 +- {tolerance:g}, beyond the lines' error "
            f"{check.window_margin:.4f}), so the Table 1 windows integrate the wrong lines"
        )
    if not check.within(tolerance):
        raise QAxisError(
            f"the q axis is off by a factor {check.factor:.4f} (q measured / q true; "
            f"accepted 1 +- {tolerance:g}): in the {source} the casing's and current "
            f"collectors' lines lie at {check.lines_text()}, so every Table 1 window "
            "integrates the wrong lines"
        )
    return (
        f"q axis checked against {len(check.found)} lines of the casing and current "
        f"collectors in the {source} ({', '.join(name for name, _, _ in check.found)}): factor "
        f"{check.factor:.4f} (accepted 1 +- {tolerance:g})"
    )

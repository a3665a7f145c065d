"""Trace one electrode layer along the winding and unroll the cell along it.

A wound layer is close to an Archimedean spiral: at winding angle ``t`` (radians, growing
outwards along the layer) it lies at radius ``r(t) ~ r0 + pitch * t / 2 pi`` and at image
angle ``direction * t`` (mod 2 pi; ``direction`` +1 when the image angle grows outwards,
i.e. the layer winds outwards clockwise on screen; pixel and angle conventions:
:mod:`jellyroll.unroll.polar`). :func:`trace_spiral` finds it in four steps:

1. polar resampling around the centre and a radial band-pass, so layers become ridges;
2. the radial layer period from the autocorrelation, the winding direction (and whether
   the layers form one or two interleaved spirals) from the winding number of its phase
   round the centre, the pitch from a harmonic spiral transform (:func:`_winding`); the
   traced layer is the strongest ridge of the polar image sheared along that spiral;
3. dynamic programming follows the ridge one revolution at a time, inside a window of
   +-0.45 pitch around the previous revolution's path moved by one pitch. Bends, ovality
   and buckled cores are followed as long as neighbouring turns differ by less than that;
4. the layer ends where its ridge fades (below 0.4 of its median strength), and a pixel
   short of the image's edge and of the searched radii's (:data:`_EDGE`).

:func:`unroll_spiral` resamples maps along the traced layer: arc length along the layer
times depth, the radial offset from the layer (positive outwards). The radial direction
differs from the layer normal by atan(pitch / 2 pi r), under 3 deg beyond three pitches
from the centre, and keeps the mapping one-to-one. :func:`spiral_deviation` gives the
layer's radial deviation from a smooth spiral (bent collectors show as bumps).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numba import njit
from scipy import ndimage as ndi
from scipy import signal

from jellyroll.conventions import parabola_vertex, robust_sigma
from jellyroll.unroll._sampling import (
    bilinear,
    checked_radius_range,
    finite_centre,
    polar_samples,
    positive_length,
    positive_pixel_size,
    row_quantile,
)
from jellyroll.unroll.cell import Cell

_DR = 0.5  # px, radial step of the polar image
_WINDOW = 0.45  # half-width of the tracking window, in pitches
_END_STRENGTH = 0.4  # the layer ends where its ridge falls below this fraction of its median
_SAME_LAYER = 0.85  # ridge strength ratio across a jump above which it is one layer (a bend)
_GOES_ON = 0.6
"""A piece of the path beyond a traced end, on the layer's spiral, whose ridge is this
fraction of the layer's or more is the wound layer going on: the end is a cut. A blurred
or coarsely sampled map fades the second turn beside the innermost layer's tail, and the
innermost turn left beyond it is 0.72-0.79 of the rest's ridge (the real 18650 slice
blurred by 2 px, or at 3x coarser pixels); at :data:`_SAME_LAYER` it was not seen, and
17.7-17.9 of its 18.99 turns were counted from an inner end not marked cut."""
_EDGE = 1.0
"""px: no layer is located this near the edges of the searched radii or of the image. There a
layer just beyond the edge shows as a ridge along it (the band-pass is reflected at the
radii's edges; the image's edge holds the tail of the layer's blur): a radius range cutting
through a roll of 12 px pitch had the trace ride it for 45 deg, 1.7 px off the layer; an
image edge cutting the roll, for 25 deg, 1.4 px off."""

_OFF_IMAGE_ARC_PX = 4.0
"""px: a traced layer whose end, continued this far along its circle, leaves the pixels
where a layer is located (:data:`_EDGE` inside the image) runs off the image there: the end
is a cut (:attr:`SpiralTrace.cut_ends`). The layer's ridge fades a pixel or two before the
edge (its blur reaches beyond): a real 18650 slice cropped 15 px into its casing ended a
pixel from the edge, 18.71 of 18.99 turns and 600.6 of 615.7 mm, its ends not cuts."""


MIN_STEP_PIXELS = 0.1
"""Finest sampling step of :func:`unroll_spiral`, in the trace's pixels."""

ARC_SMOOTH_PX = 2.0
"""Arc (px, at the trace's median radius) over which the radius is smoothed for the radial
part of the arc length: what a map resolves along the layer, so a bend of a few pixels keeps
its length while the trace's jitter does not add to it."""


@dataclass(frozen=True)
class SpiralTrace:
    """A traced layer: radius (px) against winding angle, uniformly sampled.

    ``winding_rad`` (n,) ascending, from the layer's inner end to its outer end; the image
    angle of a sample is ``direction * winding_rad`` (mod 2 pi). ``strength`` is the ridge
    strength relative to the layer's median (about 1 along the layer). ``image_shape``
    (ny, nx) of the map it was traced on (None: not known), so that its pixel positions
    are not read on another grid (:meth:`grid_problem`). ``cut_ends`` (inner, outer): True
    where the trace ends although the layer goes on (the path lost it across a tear, a bend
    deeper than the tracking window or a jump onto another layer, and the longest stretch
    was kept; or the layer runs off the image there: :data:`_OFF_IMAGE_ARC_PX`): arc lengths
    and turns then count from the cut, not from the layer's end, and the path's last
    samples before the cut are no measure of the layer's course.
    ``at_window_edge`` (n,) bool (None: not known): the path sat at the edge of its
    tracking window (:data:`_WINDOW` of a pitch from the previous revolution's course), so
    the layer may lie further out or in there: a bend's depth is then a lower bound.
    """

    centre: tuple[float, float]
    pixel_size_um: float
    pitch_um: float
    direction: int
    winding_rad: np.ndarray
    radius_px: np.ndarray
    strength: np.ndarray
    image_shape: tuple[int, int] | None = None
    cut_ends: tuple[bool, bool] = (False, False)
    at_window_edge: np.ndarray | None = None

    def grid_problem(self, shape: tuple[int, ...], pixel_size_um: float) -> str | None:
        """Why the trace's pixel positions cannot be read on a map of ``shape`` (ny, nx)
        and ``pixel_size_um``, or None: it was traced on a map of other pixels (its centre
        and radii, in pixels, would land elsewhere)."""
        if not np.isclose(self.pixel_size_um, pixel_size_um, rtol=1e-6, atol=0.0):
            return (
                f"the trace is on {self.pixel_size_um:g} um pixels, the map on {pixel_size_um:g} um"
            )
        if self.image_shape is not None and tuple(self.image_shape) != tuple(shape):
            return (
                f"the trace is on a map of shape {tuple(self.image_shape)}, this map has "
                f"shape {tuple(shape)}"
            )
        return None

    @property
    def n_turns(self) -> float:
        """Length of the layer in turns."""
        return float((self.winding_rad[-1] - self.winding_rad[0]) / (2 * np.pi))

    @property
    def angle_rad(self) -> np.ndarray:
        """(n,) image angle of each sample, in [0, 2 pi)."""
        return np.mod(self.direction * self.winding_rad, 2 * np.pi)

    @property
    def xy_px(self) -> np.ndarray:
        """(n, 2) the layer as an (x, y) polyline in pixels."""
        a = self.angle_rad
        return np.column_stack(
            [
                self.centre[0] + self.radius_px * np.cos(a),
                self.centre[1] + self.radius_px * np.sin(a),
            ]
        )

    @cached_property
    def arc_um(self) -> np.ndarray:
        """(n,) arc length along the layer from its inner end (um): the tangential steps
        at the mean radius of neighbouring samples, and the radial ones of the radius
        smoothed over :data:`ARC_SMOOTH_PX` of arc (the sample-to-sample jitter of a trace
        on a noisy map, 0.37 px rms, lengthened a 9-turn layer by 3 %)."""
        radius, winding = self.radius_px, self.winding_rad
        if radius.size < 2:
            return np.zeros(radius.size)
        step_rad = float(np.median(np.diff(winding)))
        sigma = ARC_SMOOTH_PX / max(float(np.median(radius)) * step_rad, 1e-9)
        radial = np.diff(ndi.gaussian_filter1d(radius, sigma, mode="nearest"))
        tangential = 0.5 * (radius[1:] + radius[:-1]) * np.diff(winding)
        steps = np.hypot(tangential, radial) * self.pixel_size_um
        return np.concatenate([[0.0], np.cumsum(steps)])

    def crossings(self, angle_deg: float) -> np.ndarray:
        """Radii (px, ascending) where the layer crosses the ray at ``angle_deg``."""
        t0, t1 = self.winding_rad[0], self.winding_rad[-1]
        base = self.direction * np.deg2rad(angle_deg)
        k = np.arange(np.ceil((t0 - base) / (2 * np.pi)), np.floor((t1 - base) / (2 * np.pi)) + 1)
        return np.sort(np.interp(base + 2 * np.pi * k, self.winding_rad, self.radius_px))


PITCH_TOLERANCE = 0.3
"""Largest relative difference between the mean pitch along a traced layer and the pitch of
the radial pattern's winding: within 6 % on the real 18650 slice and the tiny twin; a trace
that left the collector (the casing's arc, followed from a centre a few pixels off) reads
0.02-0.71 of it, over 0.4 turns."""


def trace_spiral(
    image: np.ndarray,
    cell: Cell | tuple[float, float],
    pixel_size_um: float = 1.0,
    *,
    layer: str = "bright",
    radius_range_um: tuple[float, float] | None = None,
    pitch_um: float | None = None,
    n_angles: int | None = None,
) -> SpiralTrace:
    """Trace the strongest wound layer of a 2D map (ny, nx) around the cell centre.

    ``image`` is an attenuation map or CT slice (the Cu collector is bright in X-rays), a
    component map (e.g. a Cu fraction) or a binary layer mask; ``layer="dark"`` traces a
    dark layer instead. ``cell`` is a :class:`Cell` (the search stops inside its casing)
    or an (x, y) pixel centre, which needs ``radius_range_um``. ``pitch_um`` (the radial
    layer repeat the layer is followed with) is measured when not given; the pitch reported
    is the traced layer's mean either way (a given 450 um was reported for a layer of 360
    um), within :data:`PITCH_TOLERANCE` of it. ``n_angles`` samples per turn default to one
    pixel of arc at the outer radius. Raises ``ValueError`` when no wound layers are found,
    or when the image holds pixels not measured (NaN, inf: fill them with
    :func:`~jellyroll.unroll.fill_unmeasured` first; their polar samples took the median,
    which cut the trace or drew bends across a band of them, without a word).
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"trace_spiral needs a 2D image, got shape {image.shape}")
    unmeasured = int(np.count_nonzero(~np.isfinite(image)))
    if unmeasured:
        raise ValueError(
            f"trace_spiral: {unmeasured} pixels of the image are not measured (NaN or inf); "
            "fill them along the turns first (jellyroll.unroll.fill_unmeasured)"
        )
    if layer not in ("bright", "dark"):
        raise ValueError(f"layer must be 'bright' or 'dark', got {layer!r}")
    pixel_size_um = positive_pixel_size(pixel_size_um, "trace_spiral")
    centre = finite_centre(cell.centre if isinstance(cell, Cell) else cell, "trace_spiral")
    if pitch_um is not None:
        pitch_um = positive_length(pitch_um, "trace_spiral", "pitch_um")
    if radius_range_um is not None:
        r_lo, r_hi = (
            v / pixel_size_um for v in checked_radius_range(radius_range_um, "trace_spiral")
        )
    elif isinstance(cell, Cell):
        r_lo, r_hi = 0.0, _inside_casing(image, cell)
    else:
        raise ValueError("give radius_range_um when cell is a bare (x, y) centre")
    if not r_hi - r_lo > 2 * _DR:
        raise ValueError(
            "no wound layers found: no room inside the casing (or no contrast) to search"
        )
    if n_angles is None:
        n_angles = max(360, int(np.ceil(2 * np.pi * r_hi)))
    radii = np.arange(r_lo, r_hi + _DR / 2, _DR)
    angles = 2 * np.pi * np.arange(n_angles) / n_angles
    polar = polar_samples(image, centre, radii, angles)
    if layer == "dark":
        polar = -polar
    polar = np.where(np.isfinite(polar), polar, np.nanmedian(polar))
    period = _radial_period(polar) if pitch_um is None else pitch_um / pixel_size_um
    background = _radial_smooth(polar, 0.3 * period / _DR)
    ridge = _band_pass(polar, background, 0.6)
    direction, pitch = _winding(ridge, r_lo, period)
    if pitch_um is not None:
        pitch = pitch_um / pixel_size_um
    phase, width = _layer_phase(ridge, r_lo, pitch, direction)
    if 0.3 * width > 0.6:  # wide layers (masks): smooth to their scale so the ridge is centred
        ridge = _band_pass(polar, background, 0.3 * width)
    winding, radius, strength, at_edge, cut_ends = _follow(ridge, r_lo, pitch, direction, phase)
    winding, radius, strength, at_edge, off_image = _located(
        winding, radius, strength, at_edge, centre, direction, image.shape, (r_lo, r_hi)
    )
    # the winding seen further out than the path's end by over a pitch: the path lost the
    # layer (an oval cell's trace left for the Al foil and ended after 1.2 of 3 turns, no
    # cut said, no bend beyond it, exit 0)
    short = bool(radius[-1] < _winding_reach(ridge, r_lo, pitch) - pitch)
    cut_ends = (cut_ends[0] or off_image[0], cut_ends[1] or off_image[1] or short)
    turns = (winding[-1] - winding[0]) / (2 * np.pi)
    if turns < 1:  # e.g. the casing's arc followed from a centre a few pixels off
        raise ValueError(
            f"the traced layer covers {turns:.2f} turns: no wound collector followed around "
            "the cell (is the centre off, or the roll unresolved?)"
        )
    wound = pitch  # the radial pattern's, or the given pitch_um
    pitch = 2 * np.pi * np.polyfit(winding, radius, 1)[0]  # the mean along the traced layer
    if not pitch > 0:  # the trace wandered inwards: it lost the layer
        raise ValueError(
            f"the traced layer does not wind outwards (mean pitch {pitch * pixel_size_um:.3g}"
            " um): no wound collector found on this image"
        )
    if abs(pitch / wound - 1) > PITCH_TOLERANCE:
        expected, why = (
            ("the radial pattern's", "it left the collector")
            if pitch_um is None
            else ("the pitch_um given", "the pitch given is not the roll's")
        )
        raise ValueError(
            f"the traced layer's pitch ({pitch * pixel_size_um:.3g} um) is not {expected} "
            f"({wound * pixel_size_um:.3g} um): {why}"
        )
    return SpiralTrace(
        centre=centre,
        pixel_size_um=float(pixel_size_um),
        pitch_um=float(pitch * pixel_size_um),
        direction=direction,
        winding_rad=winding,
        radius_px=radius,
        strength=strength,
        image_shape=(int(image.shape[0]), int(image.shape[1])),
        cut_ends=cut_ends,
        at_window_edge=at_edge,
    )


WINDING_SPREAD = 0.25
"""Share of its largest value down to which the spread over the angles of the band-passed
polar image (smoothed over a pitch) shows the winding: a wound layer crosses every radius
at some angle, a ring (the casing, a can's wall) or the hollow does not."""


def _winding_reach(ridge: np.ndarray, r_lo: float, pitch: float) -> float:
    """The outermost radius (px) of the band-passed polar image ``ridge`` (n_radii, n_angles)
    from ``r_lo`` in steps of :data:`_DR` where the winding shows
    (:data:`WINDING_SPREAD`)."""
    spread = ndi.uniform_filter1d(np.std(ridge, axis=1), max(1, round(pitch / _DR)))
    wound = np.flatnonzero(spread >= WINDING_SPREAD * spread.max())
    return r_lo + float(wound[-1]) * _DR if wound.size else r_lo


def _located(
    winding: np.ndarray,
    radius: np.ndarray,
    strength: np.ndarray,
    at_edge: np.ndarray,
    centre: tuple[float, float],
    direction: int,
    shape: tuple[int, ...],
    radius_range: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[bool, bool]]:
    """The traced layer (winding, radius px, strength, at the window's edge) without its ends
    that lie within :data:`_EDGE` of the searched ``radius_range`` (px) or of the image's
    edge (``shape``), where the path may follow a layer beyond them, or where its ridge is
    weak (the path from the layer's end to the edge: a bend of 34 um at the end of a twin's
    collector); the winding restarted in [0, 2 pi). Pieces of ridge shorter than the gaps
    :func:`_layer_extent` bridges (10 deg) are no ends either: noise beside the layer's end,
    joined to it across such a gap (a noisy spiral's trace began 2.3 px inside the layer and
    gave a bend of -16 um there). Last, whether each end (inner, outer) runs off the image:
    the layer, continued along its circle for :data:`_OFF_IMAGE_ARC_PX`, leaves the pixels
    where a layer is located, so it may go on beyond the image."""

    def in_image(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (
            (x >= _EDGE) & (x <= shape[1] - 1 - _EDGE) & (y >= _EDGE) & (y <= shape[0] - 1 - _EDGE)
        )

    angle = direction * winding
    inside = (
        (strength >= _END_STRENGTH)
        & (radius > radius_range[0] + _EDGE)
        & (radius < radius_range[1] - _EDGE)
        & in_image(centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle))
    )
    if not inside.any():
        raise ValueError(
            "no wound layers found: the traced ridge lies along the edge of the image or of "
            "the searched radii"
        )
    pieces = [b[0] for b in ndi.find_objects(ndi.label(inside)[0])]
    per_turn = 2 * np.pi / float(np.median(np.diff(winding))) if winding.size > 1 else 36.0
    long = [b for b in pieces if b.stop - b.start >= max(1, round(per_turn) // 36)] or pieces
    keep = slice(long[0].start, long[-1].stop)
    start = 2 * np.pi * np.floor(winding[keep][0] / (2 * np.pi))
    arc = np.linspace(0.0, _OFF_IMAGE_ARC_PX, 9)
    off_image = []
    for end, sign in ((keep.start, -1), (keep.stop - 1, 1)):  # inwards, outwards
        on = angle[end] + sign * direction * arc / max(float(radius[end]), 1.0)
        on_circle = in_image(
            centre[0] + radius[end] * np.cos(on), centre[1] + radius[end] * np.sin(on)
        )
        off_image.append(not on_circle.all())
    return (
        winding[keep] - start,
        radius[keep],
        strength[keep],
        at_edge[keep],
        (off_image[0], off_image[1]),
    )


def _inside_casing(image: np.ndarray, cell: Cell) -> float:
    """Radius (px) just inside the casing: where the ring that is bright at 90 % of the angles
    near the cell radius fades to half-way to the roll's level; the cell radius if the map
    shows no casing (e.g. a layer mask)."""
    radii = np.arange(0.0, cell.radius, _DR)
    polar = polar_samples(image, cell.centre, radii, np.linspace(0, 2 * np.pi, 360, endpoint=False))
    level = row_quantile(polar, 0.1)
    near = radii > 0.8 * cell.radius
    if not np.isfinite(level[near]).any():
        raise ValueError(
            f"trace_spiral: the cell's casing (centre {cell.centre} px, radius {cell.radius:.4g} "
            f"px) lies outside the image of shape {image.shape}"
        )
    peak = int(np.flatnonzero(near)[np.nanargmax(level[near])])
    roll = np.nanmedian(level[(radii > 0.3 * cell.radius) & ~near])
    if level[peak] - roll < 0.25 * (np.nanmax(polar) - np.nanmin(polar)):
        return float(radii[-1])
    half = 0.5 * (level[peak] + roll)
    inner = peak
    while inner > 0 and level[inner - 1] >= half:
        inner -= 1
    return float(radii[inner] - 1.0)


def _radial_period(polar: np.ndarray) -> float:
    """Layer repeat (px) along the radius: highest peak of the mean radial autocorrelation."""
    n_r, n = polar.shape
    columns = polar[:, :: max(1, n // 180)]
    detrended = columns - ndi.gaussian_filter1d(columns, max(4.0, n_r * _DR / 15) / _DR, axis=0)
    spectrum = np.fft.rfft(detrended, 2 * n_r, axis=0)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=0)[:n_r].mean(axis=1)
    negative = np.flatnonzero(acf < 0)
    if acf[0] <= 0 or negative.size == 0 or negative[0] >= n_r // 2 - 1:
        raise ValueError("no wound layers found: no radial periodicity around the centre")
    lag = negative[0] + int(np.argmax(acf[negative[0] : n_r // 2]))
    if acf[lag] <= 0.05 * acf[0]:
        raise ValueError("no wound layers found: no radial periodicity around the centre")
    return (lag + float(parabola_vertex(acf[lag - 1], acf[lag], acf[lag + 1]))) * _DR


def _radial_smooth(polar: np.ndarray, sigma: float) -> np.ndarray:
    """``ndi.gaussian_filter1d(polar, sigma, axis=0)`` (reflected edges, the kernel cut at
    4 sigma) as an FFT convolution (scipy.signal): the same to rounding, and at the
    kernel widths of fine voxels (sigma ~50 rows for a 250 um pitch in 3 um pixels) many
    times faster."""
    radius = int(4.0 * sigma + 0.5)
    if radius < 16:  # short kernels: direct
        return ndi.gaussian_filter1d(polar, sigma, axis=0)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    padded = np.pad(polar, ((radius, radius), (0, 0)), mode="symmetric")
    return signal.fftconvolve(padded, (kernel / kernel.sum())[:, None], mode="valid", axes=0)


def _band_pass(polar: np.ndarray, background: np.ndarray, sigma_px: float) -> np.ndarray:
    """Radial difference of Gaussians (``sigma_px`` minus ``background``, the polar image
    smoothed over 0.3 of the layer period: layers become ridges), smoothed along the angle
    and scaled to unit robust spread."""
    out = ndi.gaussian_filter1d(polar, sigma_px / _DR, axis=0) - background
    out = ndi.gaussian_filter1d(out, 1.5, axis=1, mode="wrap")
    spread = robust_sigma(out)
    return out / spread if spread > 0 else out


def _shear_profile(
    ridge: np.ndarray, pitch: float, direction: int, n_cols: int = 256
) -> np.ndarray:
    """Mean over angles of the ridge image sheared along ``direction`` spirals of ``pitch``."""
    n_r, n = ridge.shape
    cols = np.arange(0, n, max(1, n // n_cols))
    shift = direction * pitch * cols / n / _DR  # rows
    lo, hi = max(0.0, -shift.min()), n_r - 1 - max(0.0, shift.max())
    rows = np.arange(np.ceil(lo), np.floor(hi) + 1)
    if rows.size < 2:
        return np.zeros(1)
    coords = [rows[:, None] + shift[None, :], np.broadcast_to(cols, (rows.size, cols.size))]
    return bilinear(ridge, *coords, 0.0).mean(axis=1)


def _winding(ridge: np.ndarray, r_lo: float, period: float) -> tuple[int, float]:
    """Winding direction and pitch (px) of the layers in the ridge image.

    Direction: along each ray take the component of the autocorrelation's radial
    ``period``; as the angle goes once round, the layers move out by one pitch and its
    phase turns by -2 pi per spiral arm and direction. That winding number is an integer
    that periodic distortions (an off-centre roll, ovality, a buckled core) cannot change,
    whereas they spread a Fourier analysis over neighbouring angular orders. It is +-1 for
    one spiral and +-2 when two similar layers alternate (the period is then half the pitch).
    Harmonic q winds q times as much; the one whose amplitude dips least is used.

    Pitch: the ``h`` within 30 % of arms x period for which the rays add up coherently,
    summed over the radial harmonics h / q the pixels resolve (the fundamental alone can
    nearly vanish, e.g. for a bright Cu foil between two bright cathode coatings).
    """
    n_r, n = ridge.shape
    radii = r_lo + np.arange(n_r) * _DR
    best = (-1.0, 0)  # (reliability, winding)
    for q in range(1, 4):  # the fundamental, or a harmonic where the fundamental is weak
        if period / q < 2.5:
            break
        wave = 2 * np.pi * q * radii / period  # real products: no complex copy of the ridge
        curve = ndi.gaussian_filter1d(np.cos(wave) @ ridge, 2.0, mode="wrap") - 1j * (
            ndi.gaussian_filter1d(np.sin(wave) @ ridge, 2.0, mode="wrap")
        )
        phase = np.unwrap(np.angle(np.append(curve, curve[0])))
        turns = round((phase[-1] - phase[0]) / (2 * np.pi))
        # the phase is reliable where the component never nearly vanishes along the angle
        reliability = np.abs(curve).min() / np.median(np.abs(curve))
        if turns % q == 0 and reliability > best[0]:
            best = (reliability, turns // q)
    winding = best[1]
    if winding not in (-2, -1, 1, 2):
        raise ValueError("no wound layers found: the radial pattern does not wind round once")
    direction = -int(np.sign(winding))
    # [r, q - 1]: sum over angles of ridge * exp(-i k theta) at the orders k = -q direction
    # used below (8 of them: a product, not a whole FFT along the angle)
    orders = -direction * np.arange(1, 9)
    angle = 2 * np.pi * np.outer(np.arange(n), orders) / n
    angular = ridge @ np.cos(angle) - 1j * (ridge @ np.sin(angle))
    pitches = abs(winding) * period * np.geomspace(0.7, 1.4, 141)
    power = np.zeros(pitches.size)
    for q in range(1, 9):
        resolved = pitches / q >= 2.5  # px, well above the pixel Nyquist period
        if not resolved.any():
            break
        waves = np.exp(-2j * np.pi * q * radii[None, :] / pitches[resolved, None])
        power[resolved] += np.abs(waves @ angular[:, q - 1]) ** 2
    i = int(np.argmax(power))
    if 0 < i < pitches.size - 1:
        step = np.log(pitches[1] / pitches[0])
        return direction, float(
            pitches[i] * np.exp(float(parabola_vertex(*power[i - 1 : i + 2])) * step)
        )
    return direction, float(pitches[i])


def _layer_phase(
    ridge: np.ndarray, r_lo: float, pitch: float, direction: int
) -> tuple[float, float]:
    """Radius (px) at angle 0 of the strongest ridge of the sheared profile, and its width."""
    profile = _shear_profile(ridge, pitch, direction)
    n = ridge.shape[1]
    first_row = np.ceil(max(0.0, -direction * pitch * (n - 1) / n / _DR))
    peak = int(np.argmax(profile))
    if 0 < peak < profile.size - 1:
        offset = float(parabola_vertex(profile[peak - 1], profile[peak], profile[peak + 1]))
    else:
        offset = 0.0
    below = np.flatnonzero(profile < 0.5 * (profile[peak] + np.median(profile)))
    left, right = below[below < peak], below[below > peak]
    width = (right.min() if right.size else profile.size) - (left.max() if left.size else -1) - 1
    return r_lo + (first_row + peak + offset) * _DR, width * _DR


def _follow(
    ridge: np.ndarray, r_lo: float, pitch: float, direction: int, phase: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[bool, bool]]:
    """Track the layer revolution by revolution: winding (rad), radius (px), strength,
    whether the path sat at its window's edge, and whether each end is a cut where the
    layer goes on (:func:`_layer_extent`)."""
    n_r, n = ridge.shape
    r_hi = r_lo + (n_r - 1) * _DR
    half = int(_WINDOW * pitch / _DR)
    offsets = np.arange(-half, half + 1) * _DR
    prior = (offsets / pitch) ** 2  # weak pull towards the expected position
    # limit the layer's slope against the circle to about 45 deg at the outer radius
    max_step = max(1, round(2 * np.pi * r_hi / n / _DR))

    def scores(js: np.ndarray, ref: np.ndarray) -> np.ndarray:
        rows = (ref[:, None] + offsets[None, :] - r_lo) / _DR
        cols = np.mod(direction * js, n)[:, None]
        return bilinear(ridge, rows, cols, 0.0)

    def track(
        js: np.ndarray, ref: np.ndarray, start: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        s = scores(js, ref)
        allowed = np.ones(offsets.size, dtype=bool)
        if start is not None:
            allowed = np.abs(ref[0] + offsets - start) <= (max_step + 0.5) * _DR
        path = _viterbi(s - prior, allowed, max_step, 0.05)
        rows = np.arange(js.size)
        mid = s[rows, path]
        left = s[rows, np.maximum(path - 1, 0)]
        right = s[rows, np.minimum(path + 1, offsets.size - 1)]
        at_edge = (path == 0) | (path == offsets.size - 1)
        return ref + offsets[path] + parabola_vertex(left, mid, right) * _DR, at_edge

    # start on the revolution where the ideal spiral runs along the strongest ridge
    j_lo = int(np.floor((r_lo - phase) * n / pitch))
    j_all = np.arange(j_lo, int(np.ceil((r_hi - phase) * n / pitch)) + 1)
    ideal = phase + pitch * j_all / n
    along = scores(j_all, ideal)[:, half]
    window = min(n, along.size)
    start = (
        j_all[int(np.argmax(ndi.uniform_filter1d(along, window, mode="constant")))] - window // 2
    )
    js = np.arange(start, start + n)
    radius, edges = {}, {}
    radius[int(start)], edges[int(start)] = track(js, phase + pitch * js / n, None)
    typical = np.median(scores(js, radius[start])[:, half])
    if typical <= 0:
        raise ValueError("no wound layers found: no ridge along the spiral")
    for step in (1, -1):  # outwards, then inwards
        key = start
        while True:
            prev = radius[key]
            key = key + step * n
            js = np.arange(key, key + n)
            ref = prev + step * pitch
            if step < 0:  # walk inwards from the outer end of the revolution
                js, ref = js[::-1], ref[::-1]
                edge = radius[key + n][0] - pitch / n
            else:
                edge = prev[-1] + pitch / n
            if ref.min() > r_hi + half * _DR or ref.max() < r_lo - half * _DR:
                break
            traced, at_edge = track(js, ref, edge)
            radius[key], edges[key] = traced[::step], at_edge[::step]
            strength = scores(np.arange(key, key + n), radius[key])[:, half] / typical
            if ndi.median_filter(strength, 9).max() < _END_STRENGTH:
                break
    keys = sorted(radius)
    j = np.arange(keys[0], keys[-1] + n)
    r = np.concatenate([radius[k] for k in keys])
    strength = scores(j, r)[:, half] / typical
    at_edge = np.concatenate([edges[k] for k in keys])
    keep, cut = _layer_extent(strength, r, n, pitch)
    turns_before = np.floor(j[keep][0] / n)  # start the winding angle in [0, 2 pi)
    winding = 2 * np.pi * (j[keep] / n - turns_before)
    return winding, ndi.gaussian_filter1d(r, 1.0)[keep], strength[keep], at_edge[keep], cut


def _layer_extent(
    strength: np.ndarray, radius: np.ndarray, n: int, pitch: float
) -> tuple[slice, tuple[bool, bool]]:
    """Samples of the traced layer, from its inner to its outer end, and whether each end
    is a cut where the layer goes on (see :attr:`SpiralTrace.cut_ends`).

    The ridge must stay strong (gaps under 10 deg are bridged, e.g. dark spots). Where the
    path moves by more than a quarter pitch within half a pitch of arc it has left the
    layer for another (a layer that ends next to one that goes on); it is cut there unless
    the ridge is as strong on both sides, within half a revolution of the jump, and strong
    all through the jump (then it was a sharp bend). An end is a cut where a piece of the
    path beyond it, a quarter revolution long or more, is nearly as strong as the layer
    kept (:data:`_GOES_ON`) and on its spiral or a whole pitch from it, or such a piece a
    twelfth of a revolution long lies right past the end on its very spiral: the wound
    layer, lost across a tear, a bend deeper than the tracking window or a faded turn.
    """
    filtered = ndi.median_filter(strength, max(3, n // 120) | 1) >= _END_STRENGTH
    strong = ndi.binary_closing(filtered, np.ones(max(1, n // 36), dtype=bool))
    index = np.arange(radius.size)
    span = np.maximum(1, (0.5 * pitch * n / (2 * np.pi * np.maximum(radius, pitch))).astype(int))
    ahead = np.minimum(index + span, radius.size - 1)
    jumping = ndi.label(
        np.abs(radius[ahead] - radius - pitch * (ahead - index) / n) > 0.25 * pitch
    )[0]
    steepness = np.abs(np.gradient(radius) - pitch / n)
    steep = steepness > 0.3 * 2 * np.pi * np.maximum(radius, pitch) / n  # slope > ~17 deg
    cut = strong.copy()
    for run in ndi.find_objects(jumping):  # cut out the steep stretch through each jump
        lo = hi = run[0].start + int(np.argmax(steepness[run[0]]))
        while lo > 0 and steep[lo - 1]:
            lo -= 1
        while hi < radius.size - 1 and steep[hi + 1]:
            hi += 1
        cut[lo : hi + 1] = False
    pieces, count = ndi.label(cut)
    sizes = np.bincount(pieces.ravel())
    pieces, count = ndi.label(cut & (sizes[pieces] >= n // 36))  # drop slivers between cuts
    if count == 0:
        raise ValueError("no wound layers found: the traced ridge is weak everywhere")
    spans = [b[0] for b in ndi.find_objects(pieces)]
    core = int(np.argmax([strength[b].sum() for b in spans]))

    def joins(a: int, b: int) -> bool:  # pieces a < b: one layer if only a jump separates
        # them, the ridge is as strong on both sides within half a revolution of the jump
        # (the ridge strength changes along a layer, e.g. it is higher on the outermost
        # turn: over a whole revolution, a bend just past such a change looked like a
        # change of layer) and both sides lie on one spiral (a bend comes back to it; the
        # edge of the hollow, followed for a turn, joined the Cu collector 0.37 pitch
        # further in as a pair of bends of +45 and -34 um)
        # ... and the path crosses no gap in the ridge on its way (bridged for a layer that
        # stays on its course, not for a jump: a collector torn over 12 deg, beside a layer
        # of 0.6 its brightness half a pitch out, was followed across on that layer and
        # joined as a bend of +53 um)
        if not filtered[spans[a].stop : spans[b].start].all():
            return False
        reach = max(1, n // 2)
        near_a = slice(max(spans[a].start, spans[a].stop - reach), spans[a].stop)
        near_b = slice(spans[b].start, min(spans[b].stop, spans[b].start + reach))
        before, after = np.median(strength[near_a]), np.median(strength[near_b])
        # over half a revolution either side of the gap, past other cuts (a dent's inner
        # piece is short): the radius less the climb of the spiral, constant on one layer
        spiral = radius - pitch * index / n
        moved = abs(
            np.median(spiral[spans[b].start : spans[b].start + reach])
            - np.median(spiral[max(0, spans[a].stop - reach) : spans[a].stop])
        )
        return bool(
            min(before, after) >= _SAME_LAYER * max(before, after) and moved <= 0.25 * pitch
        )

    first = last = core
    while first > 0 and joins(first - 1, first):
        first -= 1
    while last < count - 1 and joins(last, last + 1):
        last += 1
    level = _GOES_ON * float(np.median(strength[spans[first].start : spans[last].stop]))
    spiral = radius - pitch * index / n

    def winds(b: slice) -> bool:
        # a piece of a wound layer keeps to one spiral; a circle (the casing, a ring the
        # path followed past the layer's outer end) drifts off it by a pitch per revolution
        part = max(1, (b.stop - b.start) // 4)
        drift = np.median(spiral[b.stop - part : b.stop]) - np.median(
            spiral[b.start : b.start + part]
        )
        return bool(abs(drift) <= 0.5 * pitch * (b.stop - b.start - part) / n)

    def goes_on(others: list[slice], end: slice, at: int) -> bool:
        # the wound layer beyond the end (at sample ``at``): nearly as strong, on the
        # spiral of the end's stretch or a whole pitch from it (not the hollow's edge, nor
        # a layer between two turns), a quarter revolution long; or, right past the end (a
        # gap of 20 deg at most) and on its very spiral, a twelfth (the link twin's X-ray:
        # a trace began past a gap of 10 deg, a piece of 0.22 turn before it, unmarked)
        here = float(np.median(spiral[end]))

        def beyond(b: slice) -> bool:
            offset = (np.median(spiral[b]) - here) / pitch
            if abs(np.remainder(offset + 0.5, 1.0) - 0.5) > 0.25 or not winds(b):
                return False
            if b.stop - b.start >= n // 4:
                return True
            next_to = min(abs(b.stop - at), abs(b.start - at)) <= n // 18
            return next_to and abs(offset) <= 0.25 and b.stop - b.start >= n // 12

        return any(np.median(strength[b]) >= level and beyond(b) for b in others)

    start, stop = spans[first].start, spans[last].stop
    reach = max(1, n // 2)
    cut = (
        goes_on(spans[:first], slice(start, min(stop, start + reach)), start),
        goes_on(spans[last + 1 :], slice(max(start, stop - reach), stop), stop),
    )
    return slice(start, stop), cut


@njit(cache=True)
def _viterbi(
    scores: np.ndarray, allowed: np.ndarray, max_step: int, step_cost: float
) -> np.ndarray:
    """Best path through ``scores`` (n_steps, n_states) moving at most ``max_step`` states
    per step, paying ``step_cost`` per state moved; starts in an ``allowed`` state."""
    n, m = scores.shape
    acc = np.where(allowed, scores[0], -np.inf)
    back = np.zeros((n, m), dtype=np.int64)
    new = np.empty(m)
    for j in range(1, n):
        for k in range(m):
            best = -np.inf
            arg = k
            for d in range(-max_step, max_step + 1):
                i = k - d
                if 0 <= i < m:
                    v = acc[i] - step_cost * abs(d)
                    if v > best:
                        best = v
                        arg = i
            new[k] = best + scores[j, k]
            back[j, k] = arg
        acc[:] = new
    path = np.empty(n, dtype=np.int64)
    path[n - 1] = np.argmax(acc)
    for j in range(n - 1, 0, -1):
        path[j - 1] = back[j, path[j]]
    return path


@dataclass(frozen=True)
class SpiralView:
    """Maps unrolled along a traced layer: one long strip, (..., n_depth, n_arc).

    Columns follow the layer from its inner end (``arc_um``, arc length along the layer);
    rows are the depth (``depth_um``, radial offset from the layer, positive outwards,
    ascending). NaN marks samples outside the image.
    """

    data: np.ndarray
    arc_um: np.ndarray
    depth_um: np.ndarray
    trace: SpiralTrace

    @property
    def turn_start_arc_um(self) -> np.ndarray:
        """Arc positions (um) where the layer completes each full turn from its inner end."""
        tr = self.trace
        starts = tr.winding_rad[0] + 2 * np.pi * np.arange(1, int(np.floor(tr.n_turns)) + 1)
        return np.interp(starts, tr.winding_rad, tr.arc_um)

    def turn_strips(self) -> list[np.ndarray]:
        """The strip cut into one (..., n_depth, n_arc_k) piece per turn, inner turn first;
        a turn that would start at the strip's end (a layer of whole turns) is none (it
        gave an empty ninth piece for 8 turns)."""
        edges = np.searchsorted(self.arc_um, self.turn_start_arc_um)
        return np.split(self.data, edges[edges < self.arc_um.size], axis=-1)

    def to_xy(self, arc_um: np.ndarray, depth_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image position (x_px, y_px) of unrolled points (broadcast shapes)."""
        tr = self.trace
        arc = np.asarray(arc_um, dtype=float)
        t = np.interp(arc, tr.arc_um, tr.winding_rad)
        r = np.interp(arc, tr.arc_um, tr.radius_px) + np.asarray(depth_um) / tr.pixel_size_um
        a = tr.direction * t
        return tr.centre[0] + r * np.cos(a), tr.centre[1] + r * np.sin(a)

    def from_xy(self, x_px: np.ndarray, y_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unrolled position (arc_um, depth_um) of image points: on the nearest turn of the
        layer along the ray from the centre (NaN arc where the ray misses the layer)."""
        tr = self.trace
        dx = np.asarray(x_px, dtype=float) - tr.centre[0]
        dy = np.asarray(y_px, dtype=float) - tr.centre[1]
        r = np.hypot(dx, dy)[..., None]
        base = np.mod(tr.direction * np.arctan2(dy, dx), 2 * np.pi)[..., None]
        t0, t1 = tr.winding_rad[0], tr.winding_rad[-1]
        k = np.arange(np.floor((t0 - 2 * np.pi) / (2 * np.pi)), np.ceil(t1 / (2 * np.pi)) + 1)
        t = base + 2 * np.pi * k
        on_layer = (t >= t0 - 1e-9) & (t <= t1 + 1e-9)  # rounding at the layer's ends
        t = np.clip(t, t0, t1)
        layer_r = np.where(on_layer, np.interp(t, tr.winding_rad, tr.radius_px), np.inf)
        best = np.argmin(np.abs(r - layer_r), axis=-1)[..., None]
        t_best = np.take_along_axis(t, best, axis=-1)[..., 0]
        missed = ~np.take_along_axis(on_layer, best, axis=-1)[..., 0]
        depth = (r[..., 0] - np.take_along_axis(layer_r, best, axis=-1)[..., 0]) * tr.pixel_size_um
        arc = np.interp(t_best, tr.winding_rad, tr.arc_um)
        return np.where(missed, np.nan, arc), np.where(missed, np.nan, depth)


def unroll_spiral(
    maps: np.ndarray,
    trace: SpiralTrace,
    *,
    depth_range_um: tuple[float, float] | None = None,
    step_um: float | None = None,
    order: int = 1,
) -> SpiralView:
    """Resample a map or stack of maps (..., ny, nx) along a traced layer.

    The depth range defaults to +-half a pitch, so that the turns of the strip tile the
    roll once; ``step_um`` (default one pixel) is the sampling step along both axes;
    ``order`` is the spline interpolation order. The maps must lie on the grid the layer
    was traced on (its pixel positions would land elsewhere on another).
    """
    maps = np.asarray(maps)
    if maps.ndim < 2:
        raise ValueError(f"maps must be (..., ny, nx), got shape {maps.shape}")
    problem = trace.grid_problem(maps.shape[-2:], trace.pixel_size_um)
    if problem is not None:
        raise ValueError(f"maps: {problem}: trace the layer on a map of the maps' grid")
    step = trace.pixel_size_um
    if step_um is not None:
        step = positive_length(step_um, "unroll_spiral", "step_um")
        if step < MIN_STEP_PIXELS * trace.pixel_size_um:  # 1e-3 um: a MemoryError of 1.6 PiB
            raise ValueError(
                f"unroll_spiral: step_um {step:g} is under {MIN_STEP_PIXELS:g} of the trace's "
                f"{trace.pixel_size_um:g} um pixel: finer samples add no detail (is it in mm "
                "rather than um?); give a step of a pixel or a few tenths of one"
            )
    lo, hi = depth_range_um or (-0.5 * trace.pitch_um, 0.5 * trace.pitch_um)
    if not lo < hi:  # else an empty strip, or NumPy's "Number of samples, -4"
        raise ValueError(f"depth_range_um must satisfy start < stop, got {depth_range_um}")
    depth_um = np.linspace(lo, hi, round((hi - lo) / step) + 1)
    arc_um = np.arange(0.0, trace.arc_um[-1], step)
    view = SpiralView(np.empty(0), arc_um, depth_um, trace)
    x, y = view.to_xy(arc_um[None, :], depth_um[:, None])
    flat = maps.reshape(-1, *maps.shape[-2:]).astype(np.float64)
    data = np.stack(
        [ndi.map_coordinates(m, [y, x], order=order, mode="constant", cval=np.nan) for m in flat]
    )
    return SpiralView(data.reshape(*maps.shape[:-2], *x.shape), arc_um, depth_um, trace)


@dataclass(frozen=True)
class LayerDeviation:
    """Radial deviation of a traced layer from a smooth spiral, per trace sample.

    ``deviation_um`` is positive outwards; ``reference_radius_um`` is the smooth spiral.
    """

    arc_um: np.ndarray
    deviation_um: np.ndarray
    reference_radius_um: np.ndarray


def spiral_deviation(
    trace: SpiralTrace, *, window_um: float | None = None, exclude: np.ndarray | None = None
) -> LayerDeviation:
    """Deviation (um) of the traced layer from a smooth fitted spiral, along its arc.

    The reference is the best Archimedean spiral (radius linear in the winding angle) plus
    a running median of the residual over ``window_um`` of arc (default four pitches), so
    ovality and slow winding irregularities stay in the reference while local bends (a
    collector bent by an agglomerate, typically 0.1-0.5 mm long) stand out as bumps.
    ``exclude`` (n,) bool: samples left out of the reference (bends already found, so they
    do not pull it towards themselves); it is interpolated across them.
    """
    ps = trace.pixel_size_um
    if window_um is None:
        window = 4 * trace.pitch_um
    else:  # 0 or below was read as a 3-sample median: the reference followed every bend
        window = positive_length(window_um, "spiral_deviation", "window_um")
    radius_um = trace.radius_px * ps
    keep = np.ones(radius_um.size, bool) if exclude is None else ~np.asarray(exclude, bool)
    if keep.shape != radius_um.shape:
        raise ValueError(
            f"spiral_deviation: exclude must be ({radius_um.size},) bool, one per trace "
            f"sample, got shape {keep.shape}"
        )
    if keep.sum() < 2:
        keep[:] = True
    line = np.polyfit(trace.winding_rad[keep], radius_um[keep], 1)
    fit = np.polyval(line, trace.winding_rad)
    grid = np.arange(0.0, trace.arc_um[-1] + ps, ps)
    residual = np.interp(grid, trace.arc_um[keep], (radius_um - fit)[keep])
    size = max(3, round(window / ps) | 1)
    smooth = ndi.gaussian_filter1d(ndi.median_filter(residual, size, mode="nearest"), size / 6)
    reference = fit + np.interp(trace.arc_um, grid, smooth)
    return LayerDeviation(trace.arc_um, radius_um - reference, reference)

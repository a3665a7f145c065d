"""Silicon agglomerates: bright excess spots of the SAXS intensity map.

The reference study (Lübke et al., Energy Environ. Sci. 2024, 17, 5048, Fig. 6) segmented
them by hand; here they are found automatically:

1. silicon support: where the map is above half the typical anode level
   (:func:`silicon_mask`);
2. local background: the map with every spot smaller than a window removed, following the
   thin curved anode layers (:func:`local_background`), estimated again without the
   pixels that stood out the first time;
3. significance: the excess over the background, smoothed by the beam, in units of its
   robust (MAD) noise inside the support;
4. seeds: maxima that rise ``prominence`` noise units above the saddle towards any
   brighter one (h-maxima) and reach ``threshold``; watershed regions around them;
5. size: per spot, a uniform ellipse blurred by the known point-spread function of the map
   is fitted to the excess, alone or on a wider plateau (the damaged zone around a large
   agglomerate). Blur enlarges small spots; the fit undoes it, so the equivalent diameter
   2 sqrt(a b) is that of the agglomerate itself;
6. shape: a fit longer than :data:`MAX_ELONGATION` times its width, a width under the
   map's resolution counting as that resolution, is a line (a reconstruction streak, a
   layer's bright edge), not an agglomerate, and is dropped.

Lengths are in micrometres, map coordinates follow :mod:`jellyroll.phantom.acquisition`:
pixel ``(iy, ix)`` is centred at ``x = (ix - (nx - 1) / 2) p``, ``y = (iy - (ny - 1) / 2) p``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage, optimize, special
from skimage.filters import threshold_otsu
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from jellyroll.conventions import (
    FWHM_TO_SIGMA,
    finite_gaussian,
    finite_median,
    pixel_centres_um,
    robust_sigma,
    um_to_px,
)
from jellyroll.defects._common import (
    beyond,
    check_same_grid,
    disk_reach_um,
    disk_union,
    near_um,
    within,
)
from jellyroll.defects.bends import locate_on_layer
from jellyroll.defects.options import STUDY_CRITICAL_DIAMETER_UM
from jellyroll.unroll import SpiralTrace

__all__ = [
    "MAX_ELONGATION",
    "RESOLVED_PIXELS",
    "UNRESOLVED",
    "find_agglomerates",
    "local_background",
    "median_radius_um",
    "saxs_map_problem",
    "silicon_mask",
    "size_class",
    "size_histogram",
]


RESOLVED_PIXELS = 3.0
"""Smallest equivalent diameter (pixels) whose size the map resolves: below it the blur
of the beam dominates the fitted size (a 40 um spot in 20 um pixels can fit as 55 um)."""
UNRESOLVED = "unresolved"
"""The ``case`` of an agglomerate whose class an unresolved size would decide."""
MAX_ELONGATION = 2.5
"""Longest an agglomerate is for its width: a fitted semi-major axis beyond this many
times the semi-minor one, or than half the smallest resolved size (:func:`_is_line`) where
the width is below that, is a line (a reconstruction streak, the bright edge of a layer),
not an agglomerate. The twin's in-slice axis ratios are log-normal with 0.3 spread (3
sigma: 2.46); on its reconstructions true agglomerates fit up to 2.1 and lines 2.9-4.2
at 10 um pixels, 1.4 and 3.1-3.3 at 20 um (a 187 x 8 um streak along a layer's edge on
the tiny twin, significance 6.3)."""


def _is_line(
    semi_major_um: float, semi_minor_um: float, pixel_size_um: float, psf_fwhm_um: float
) -> bool:
    """Whether a fitted ellipse (semi-axes, um) is too elongated to be an agglomerate.

    Its width counts as at least the smallest size the map resolves, :data:`RESOLVED_PIXELS`
    pixels or the point-spread function's FWHM: narrower, the fit cannot tell it from
    zero (a fitted width at its lower bound, 0.2 pixel, is common for small spots), and a
    short unresolved spot is a small agglomerate. Longer than :data:`MAX_ELONGATION` times
    that width, or its own, it is a line: no compact object shows so.
    """
    resolved_half_um = 0.5 * max(RESOLVED_PIXELS * pixel_size_um, psf_fwhm_um)
    return bool(semi_major_um > MAX_ELONGATION * max(semi_minor_um, resolved_half_um))


def saxs_map_problem(saxs_intensity_map: np.ndarray) -> str | None:
    """Why no agglomerate can be told from a SAXS intensity map ``(ny, nx)``, or None.

    Refused: no finite value; one value only; a map mostly below zero, whose 1st
    percentile lies further below 0 than its 99th above (a negated map, or a background
    subtracted twice: its holes would be found as bright spots). A reconstruction's noise
    dips below 0 around the cell, but the silicon of the anode holds the bright end.
    """
    finite = np.asarray(saxs_intensity_map, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return "has no finite value"
    if not np.ptp(finite) > 0:
        return f"has one value ({finite[0]:g}) only"
    low, high = np.percentile(finite, [1, 99])
    if -low > high:
        return (
            f"is mostly below zero (1st percentile {low:.3g}, 99th {high:.3g}): is it negated, "
            "or its background subtracted twice?"
        )
    return None


def size_class(
    equivalent_diameter_um: np.ndarray,
    critical_diameter_um: float,
    pixel_size_um: float,
    truncated: np.ndarray | None = None,
) -> np.ndarray:
    """Case per agglomerate: "A" up to the critical diameter, "B" above it.

    A spot measured below :data:`RESOLVED_PIXELS` pixels is only known to be about that
    small: it is case A when the critical diameter is at least that resolved size, and
    :data:`UNRESOLVED` (never A or B) when the critical diameter itself is below 3
    pixels, so that its class would rest on an unresolved size. NaN: unresolved.
    ``truncated`` (bool per agglomerate): the map shows only part of it (its edge or
    pixels without value cut it), so its measured size is a lower bound: above the
    critical diameter it is case B all the same, up to it :data:`UNRESOLVED`.
    """
    diameter = np.asarray(equivalent_diameter_um, dtype=float)
    resolved_um = RESOLVED_PIXELS * pixel_size_um
    case = np.where(diameter > critical_diameter_um, "B", "A").astype(object)
    unresolved = ~(diameter >= resolved_um) & (not critical_diameter_um >= resolved_um)
    if truncated is not None:
        unresolved = unresolved | (np.asarray(truncated, dtype=bool) & (case == "A"))
    case[unresolved | np.isnan(diameter)] = UNRESOLVED
    return case


def silicon_mask(
    saxs_intensity_map: np.ndarray, pixel_size_um: float, psf_fwhm_um: float = 20.0
) -> np.ndarray:
    """Pixels holding silicon, (ny, nx) bool: the anode layers of a SAXS intensity map.

    The map is smoothed by the point-spread function, the anode level is the median of
    the pixels above Otsu's threshold, and the mask keeps what exceeds half-way from the
    map's floor to it (the half-maximum edge of the layers). The floor is the median of
    the lower class (Otsu's threshold again) of the pixels below the layers: the air
    around the cell and in its hollow. A constant offset (a SAXS background left in, or
    subtracted twice) moves the edge with the map; measured from 0, an offset of 2/3 of
    the anode's level took the whole map as anode (on the small twin 351 agglomerates,
    115 of case B, for 12).
    """
    smooth = finite_gaussian(
        np.asarray(saxs_intensity_map, dtype=np.float64),
        psf_fwhm_um * FWHM_TO_SIGMA / pixel_size_um,
    )
    values = smooth[np.isfinite(smooth)]
    if values.size == 0 or not np.ptp(values) > 0:
        return np.zeros(smooth.shape, bool)
    # a hot pixel far above the layers would take Otsu's threshold (and every layer) with it
    clipped = np.minimum(values, np.percentile(values, 99.5))
    threshold = threshold_otsu(clipped)
    level = float(np.median(values[values > threshold]))
    low = values[values <= threshold]
    floor = float(np.median(low[low <= threshold_otsu(low)]))
    return smooth > floor + 0.5 * (level - floor)


def _line_offsets(length_px: int, angle_rad: float) -> np.ndarray:
    """Distinct integer (row, column) offsets of a centred line of ``length_px`` pixels."""
    half = length_px // 2
    steps = np.linspace(-half, half, 4 * length_px)
    offsets = np.round(np.column_stack([steps * math.sin(angle_rad), steps * math.cos(angle_rad)]))
    return np.unique(offsets.astype(int), axis=0)


def _segment_medians(flat: np.ndarray, steps: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Median of the finite values of the flattened map ``flat`` at ``pixels + steps`` for
    each pixel ((n,) and (L,) flat indices), the mean of the two middle ones; NaN if none."""
    values = np.sort(np.take(flat, pixels[:, None] + steps), axis=1)  # NaN sorts last
    # every value finite where both ends are (-inf sorts first, inf and NaN last): counted
    # only elsewhere (the count of every row took a fifth of the 1024^2 diagnosis's search)
    count = np.full(values.shape[0], values.shape[1])
    partial = np.flatnonzero(~(np.isfinite(values[:, 0]) & np.isfinite(values[:, -1])))
    count[partial] = np.isfinite(values[partial]).sum(axis=1)
    rows = np.arange(values.shape[0])
    low, high = values[rows, np.maximum(count - 1, 0) // 2], values[rows, count // 2]
    return np.where(count > 0, 0.5 * (low + high), np.nan)


ORIENTATIONS = 16
"""Directions of the line segments of :func:`local_background`, over 180 degrees."""
_BLOCK_PIXELS = 2**16
"""Pixels whose segments :func:`_background` gathers at once: about 25 bytes per pixel
and segment pixel, 40 MB for segments of 25 pixels (the old whole-map stacks took 0.8 GB
on a 1024 x 1024 map)."""


def _window_px(window_um: float, pixel_size_um: float) -> int:
    """Pixels of the background's line segments: odd, at least 3."""
    return max(3, round(window_um / pixel_size_um) | 1)


def local_background(
    image: np.ndarray,
    pixel_size_um: float,
    window_um: float,
    *,
    exclude: np.ndarray | None = None,
    orientations: int = ORIENTATIONS,
    levels: tuple[float, float] | None = None,
) -> np.ndarray:
    """Background of compact bright spots in a map of thin curved layers, (ny, nx).

    Per pixel, the median along a line segment of ``window_um`` through it, for
    ``orientations`` directions, and the largest of these medians. Along a layer the
    median ignores any spot shorter than half the window, so the layer is kept (with its
    partial-volume edges) and the spots removed; across a layer the median is lower and
    the maximum discards it. Layers must be straight to within their half thickness over
    the window (curvature radius >~ window**2 / (4 thickness)). Pixels in ``exclude`` (and
    non-finite ones) are left out of the medians; NaN where a pixel sees none.

    ``levels`` (map units: the air's, the layers'): the background of a layer's end. Near
    it less than half of any segment lies on the (curved) layer, so the centred medians
    dropped towards the air and the end stood out as a spot (on a tiny twin, SART, a
    96 x 52 um "agglomerate" of case B at the anode's inner end; an agglomerate beside the
    end took part of it: 60 um read 121 um). A pixel standing half the layers' contrast
    above those medians that is no brighter than the layers takes the median of the
    brighter half of a segment, of those along which the medians rise, if that half's
    median is a layer's (within half the contrast of the layers' level) and exceeds the
    other half's by half the contrast: a step along the layer, not across it (there the
    layer's edge has its own level along the layer), nor a spot (brighter than the
    layers, its excess is kept). The result never exceeds the pixel itself.
    """
    return _background(image, _window_px(window_um, pixel_size_um), orientations, exclude, levels)


def _background(
    image: np.ndarray,
    length_px: int,
    orientations: int,
    exclude: np.ndarray | None,
    levels: tuple[float, float] | None,
    unexcluded: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`local_background` with segments of ``length_px`` pixels. ``unexcluded``: its
    result for the same image, segments and orientations without ``exclude``, kept where
    no segment reaches an excluded pixel (its medians there are the same)."""
    data = np.array(image, dtype=np.float64)
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        data[exclude] = np.nan
    level = np.asarray(image, dtype=np.float64)
    lines = [_line_offsets(length_px, math.pi * k / orientations) for k in range(orientations)]
    reach = max(int(np.abs(offsets).max()) for offsets in lines)
    width = data.shape[1] + 2 * reach
    flat = np.pad(data, reach, constant_values=np.nan).ravel()

    def medians(offsets: np.ndarray, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
        steps, pixels = offsets[:, 0] * width + offsets[:, 1], (iy + reach) * width + ix + reach
        found = np.empty(pixels.size)
        for start in range(0, pixels.size, _BLOCK_PIXELS):
            block = slice(start, start + _BLOCK_PIXELS)
            found[block] = _segment_medians(flat, steps, pixels[block])
        return found

    def largest(iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
        found = np.full(iy.size, np.nan)
        for offsets in lines:
            found = np.fmax(found, medians(offsets, iy, ix))  # NaN where all are
        return found

    if unexcluded is None or exclude is None:
        background = largest(*np.indices(data.shape).reshape(2, -1)).reshape(data.shape)
    else:
        background = np.array(unexcluded, dtype=np.float64)
        reached = ndimage.maximum_filter(exclude, size=2 * reach + 1, mode="constant")
        iy, ix = np.nonzero(reached)
        background[iy, ix] = largest(iy, ix)
    if levels is None:
        return background
    step = 0.5 * (levels[1] - levels[0])
    with np.errstate(invalid="ignore"):
        iy, ix = np.nonzero(level > background + step)
    # only a pixel standing out can be a layer's end: its segments' halves there only
    near = background[iy, ix]
    ended_level = np.full(iy.size, np.nan)
    for k, offsets in enumerate(lines):
        angle = math.pi * k / orientations
        along = offsets @ np.array([math.sin(angle), math.cos(angle)])
        halves = [medians(offsets[side], iy, ix) for side in (along >= 0, along <= 0)]
        ended = _layer_end(level[iy, ix], *halves, *levels)
        with np.errstate(invalid="ignore"):
            rising = np.where(medians(offsets, iy, ix) >= near - step, ended, np.nan)
        ended_level = np.fmax(ended_level, rising)
    background[iy, ix] = np.fmax(near, ended_level)
    return background


def _layer_end(
    level: np.ndarray, first: np.ndarray, second: np.ndarray, air: float, layer: float
) -> np.ndarray:
    """Per pixel, the median of the brighter half of a segment (``first``, ``second``: the
    medians of its halves) capped at the pixel's own ``level`` where the segment crosses a
    layer's end, else NaN: the halves differ by more than half the contrast ``layer -
    air``, the brighter is within half of it from the ``layer`` level, and the pixel is
    no brighter than that half by as much (a spot is)."""
    step = 0.5 * (layer - air)
    higher = np.fmax(first, second)
    with np.errstate(invalid="ignore"):
        crossed = (
            (higher - np.fmin(first, second) > step)
            & (np.abs(higher - layer) <= step)
            & (level <= higher + step)
        )
    return np.where(crossed, np.fmin(higher, level), np.nan)


class _BlurredEllipses:
    """Pixel-averaged uniform ellipses blurred by a Gaussian, on a window of a map.

    Evaluated in Fourier space on a grid ``supersample`` times finer than the pixels
    (exact ellipse transform, so its edges do not alias), then averaged per pixel. The
    grid is periodic: it pads the window by the blur's reach and ``reach_um``, and an
    ellipse reaching further past the window than ``reach_um`` comes back in from the
    opposite side. A case-B neighbour 220 um below a spot's window, its plateau outside
    the padding, was subtracted from the window's top: the spot's refit became a 440 um
    ellipse 56 um off it (the true agglomerate missed, a false case B found).
    """

    def __init__(
        self,
        x_um: np.ndarray,
        y_um: np.ndarray,
        pixel_size_um: float,
        sigma_um: float,
        reach_um: float = 0.0,
    ):
        self.s = max(1, math.ceil(1.4 * pixel_size_um / max(sigma_um, 1e-6)))
        self.pad = math.ceil((3.0 * sigma_um + max(reach_um, 0.0)) / pixel_size_um) + 1
        self.shape = (y_um.size, x_um.size)
        self.step = pixel_size_um / self.s
        self.padded = tuple(n + 2 * self.pad for n in self.shape)
        self.fine = tuple(n * self.s for n in self.padded)
        corner = self.pad * pixel_size_um + 0.5 * pixel_size_um - 0.5 * self.step
        self.x0, self.y0 = x_um[0] - corner, y_um[0] - corner
        self.fy = np.fft.fftfreq(self.fine[0], d=self.step)[:, None]
        self.fx = np.fft.rfftfreq(self.fine[1], d=self.step)[None, :]
        self.blur = np.exp(-2.0 * math.pi**2 * sigma_um**2 * (self.fx**2 + self.fy**2))
        self.blur /= self.step**2
        # the fine samples of the window's pixels (the padding's are not returned)
        start = self.pad * self.s
        self.window = tuple(slice(start, start + n * self.s) for n in self.shape)
        self._spectra: dict[tuple[float, float, float], np.ndarray] = {}

    def _ellipse(self, a: float, b: float, phi: float) -> np.ndarray:
        """The transform of the unit ellipse (semi-axes ``a``, ``b`` um, at ``phi`` rad)
        centred on the grid's origin; the last few kept: a fit's steps in the centre alone
        (its Jacobian's, by finite differences) reuse them."""
        key = (a, b, phi)
        if key not in self._spectra:
            c, s = math.cos(phi), math.sin(phi)
            fu = self.fx * c + self.fy * s
            fv = -self.fx * s + self.fy * c
            rho = 2.0 * math.pi * np.sqrt((a * fu) ** 2 + (b * fv) ** 2)
            safe = np.where(rho > 0, rho, 1.0)
            if len(self._spectra) >= 8:
                del self._spectra[next(iter(self._spectra))]
            self._spectra[key] = np.where(rho > 0, 2.0 * special.j1(safe) / safe, 1.0) * (
                math.pi * a * b
            )
        return self._spectra[key]

    def __call__(
        self, cx: float, cy: float, phi: float, axes: list[tuple[float, float]]
    ) -> list[np.ndarray]:
        """Unit-height ellipses centred at (cx, cy) um, major axis ``a`` at ``phi`` rad."""
        # the shift's phase is separable: two 1D exponentials, not one over the grid
        shift_x = np.exp(-2j * math.pi * (cx - self.x0) * self.fx)
        shift_y = np.exp(-2j * math.pi * (cy - self.y0) * self.fy)
        common = self.blur * shift_x * shift_y
        out = []
        ny, nx = self.shape
        for a, b in axes:
            spectrum = self._ellipse(a, b, phi) * common
            fine = np.fft.irfft2(spectrum, s=self.fine)[self.window]
            out.append(fine.reshape(ny, self.s, nx, self.s).mean(axis=(1, 3)))
        return out


PLATEAU_GAIN = 0.2
"""Share of the residual a plateau under a spot must explain to be kept. On twins (seeds
11-16, every state, 10 and 20 um pixels) plateaus remove 0.27-0.78 of it around case-B
agglomerates at 10 um pixels (0.15-0.7 at 20 um, where a single ellipse is within a pixel
anyway) and up to 0.26 under case-A spots, where their height is negligible."""


def _fit_spot(
    excess: np.ndarray,
    use: np.ndarray,
    region: np.ndarray,
    x_um: np.ndarray,
    y_um: np.ndarray,
    pixel_size_um: float,
    sigma_um: float,
    blur_fwhm_um: float,
) -> np.ndarray | None:
    """The agglomerate of one spot, deconvolved; None if the fit fails.

    Two models of the excess on the ``use`` pixels, each blurred by the point-spread
    function: an ellipse plus a constant, and the same with a concentric, larger plateau
    ellipse under it (the compacted, damaged zone around a large agglomerate is less
    silicon-rich than the agglomerate but more than the anode), centred on the spot's
    ``region`` (its bounding box grown by half a pixel). Heights are solved
    linearly inside the non-linear fit of centre, axes and orientation (variable
    projection), non-negative. The plateau model is kept when it removes at least
    :data:`PLATEAU_GAIN` of the residual sum of squares and its core stays resolved (not
    narrower than the blur's FWHM). Returns (mean excess inside, cx, cy, a, b, phi,
    plateau equivalent diameter or NaN, plateau height (0 without), plateau semi-axes),
    lengths in um.
    """
    weights = np.clip(excess, 0, None) * region
    total = weights.sum()
    if total <= 0:
        return None
    yy, xx = np.meshgrid(y_um, x_um, indexing="ij")
    cx, cy = (weights * xx).sum() / total, (weights * yy).sum() / total
    peak = float(excess[region].max())
    half = np.count_nonzero(region & (excess >= 0.5 * peak))
    radius = max(math.sqrt(half / math.pi) * pixel_size_um, 0.5 * pixel_size_um)
    model = _BlurredEllipses(x_um, y_um, pixel_size_um, sigma_um)
    # in units of the peak: the optimiser's gradient tolerance is absolute, so a map in
    # other units (x 1e3) stopped it elsewhere (diameters 9-26 um apart)
    target = excess[use] / peak
    ones = np.ones(target.size)

    def solve(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cx, cy, log_a, log_b, phi, *grow = q
        a, b = math.exp(log_a), math.exp(log_b)
        axes = [(a, b)] + ([(a + math.exp(grow[0]), b + math.exp(grow[1]))] if grow else [])
        design = np.column_stack([m[use] for m in model(cx, cy, phi, axes)] + [ones])
        solution, *_ = np.linalg.lstsq(design, target, rcond=None)
        solution[:-1] = np.maximum(solution[:-1], 0.0)
        return solution, design @ solution - target

    extent = math.log(pixel_size_um * max(excess.shape))
    smallest = math.log(0.2 * pixel_size_um)
    start = np.array([cx, cy, math.log(radius), math.log(radius), 0.0])
    # the centre stays on the spot's region (its box, grown by half a pixel, within the
    # window's pixel centres): bounded by the window only, a 2-pixel spot on the anode's
    # edge at 40 um pixels (a 34 um agglomerate) was fitted as a 123 um ellipse (case B)
    # centred 140 um away, over the air, whose pixels the fit does not use
    rows, cols = np.nonzero(region)
    half_px = 0.5 * pixel_size_um
    low_x, high_x = (
        max(x_um[cols.min()] - half_px, x_um[0]),
        min(x_um[cols.max()] + half_px, x_um[-1]),
    )
    low_y, high_y = (
        max(y_um[rows.min()] - half_px, y_um[0]),
        min(y_um[rows.max()] + half_px, y_um[-1]),
    )
    lower = np.array([low_x, low_y, smallest, smallest, -np.inf])
    upper = np.array([high_x, high_y, extent, extent, np.inf])
    # steps in pixels for the centre, in e-folds and radians for the rest. Scaled by the
    # Jacobian ("jac"), the orientation of a near-round ellipse (whose residual hardly
    # depends on it) took steps of 1e5-1e7 rad; the step test, relative to |q|, then
    # stopped the fit wherever it stood: a 2-pixel spot fitted as 23 or 77 um (case B) on
    # the same map up to rounding, a 41 um one as 29 or 35 um. Tolerances 1e-6: within
    # 0.013 px of SciPy's 1e-8 (8 noisy tiny twins, the same cases), a quarter less time
    fits = []
    for extra in (0, 2):
        bounds = (np.r_[lower, [smallest] * extra], np.r_[upper, [extent] * extra])
        q0 = np.r_[fits[0][0] if fits else start, [math.log(radius)] * extra]
        scale = np.r_[pixel_size_um, pixel_size_um, [1.0] * (3 + extra)]
        try:
            result = optimize.least_squares(
                lambda q: solve(q)[1],
                np.clip(q0, *bounds),
                bounds=bounds,
                x_scale=scale,
                xtol=1e-6,
                ftol=1e-6,
            )
        except (ValueError, np.linalg.LinAlgError):
            return None
        fits.append((result.x, *solve(result.x)))
    (q1, heights1, residual1), (q2, heights2, residual2) = fits
    cx, cy, log_a, log_b, phi, grow_a, grow_b = q2
    a, b = math.exp(log_a), math.exp(log_b)
    if (
        np.sum(residual2**2) <= (1.0 - PLATEAU_GAIN) * np.sum(residual1**2)
        and 2.0 * math.sqrt(a * b) >= blur_fwhm_um
        and heights2[0] > 0
    ):
        wide_a, wide_b = a + math.exp(grow_a), b + math.exp(grow_b)
        plateau = 2.0 * math.sqrt(wide_a * wide_b)
        amplitude, wide_height = peak * (heights2[0] + heights2[1]), peak * heights2[1]
        return np.array([amplitude, cx, cy, a, b, phi, plateau, wide_height, wide_a, wide_b])
    if heights1[0] <= 0:
        return None
    cx, cy, log_a, log_b, phi = q1
    a, b = math.exp(log_a), math.exp(log_b)
    return np.array([peak * heights1[0], cx, cy, a, b, phi, np.nan, 0.0, a, b])


def background_window(critical_diameter_um: float) -> float:
    """The default background window (um): 5 critical diameters, at least 5 of the
    study's (:func:`find_agglomerates`)."""
    return 5.0 * max(critical_diameter_um, STUDY_CRITICAL_DIAMETER_UM)


def find_agglomerates(
    saxs_intensity_map: np.ndarray,
    pixel_size_um: float,
    critical_diameter_um: float = STUDY_CRITICAL_DIAMETER_UM,
    *,
    anode_mask: np.ndarray | None = None,
    psf_fwhm_um: float = 20.0,
    background_window_um: float | None = None,
    threshold: float = 5.0,
    prominence: float = 3.0,
    d_star_map: np.ndarray | None = None,
    layer_map: np.ndarray | None = None,
    trace: SpiralTrace | None = None,
    ring_width_um: float | None = None,
) -> pd.DataFrame:
    """Silicon agglomerates of a SAXS intensity map ``(ny, nx)`` (pixels of ``pixel_size_um``).

    ``psf_fwhm_um``: blur of the map relative to the pixel-averaged object; for filtered
    backprojection of a pencil-beam scan it is the beam profile (20 um in the study).
    ``background_window_um`` must exceed twice the largest spot; its default, 5 critical
    diameters and at least 5 of the study's (250 um), does not shrink with a smaller
    critical diameter, which only classifies: at 10 um, a 60 um case-B agglomerate was
    lost in its own background (an empty table, read as "no agglomerate"). A spot is kept
    when its smoothed excess reaches ``threshold`` robust noise units and rises
    ``prominence`` units above the saddle towards any brighter one.
    ``anode_mask`` defaults to :func:`silicon_mask`.

    Optional inputs add columns: ``d_star_map`` (same grid, nm, NaN = no value) gives
    ``d_star_inside_nm`` (median over the equivalent disk's core, :func:`_inside_and_ring`)
    and ``d_star_ring_nm`` (over a ring of ``ring_width_um`` around the disk, default one
    critical diameter); ``layer_map``
    (same grid, e.g. a turn index per pixel) gives ``layer`` at the centre; ``trace`` (the
    Cu layer from :func:`jellyroll.unroll.trace_spiral`) gives the unrolled position
    ``turn``, ``arc_um`` and ``depth_um`` (:func:`~jellyroll.defects.locate_on_layer`).

    Returns one row per agglomerate, ordered by position: ``id`` (1...), ``x_um``, ``y_um``
    (centre), ``equivalent_diameter_um`` (2 sqrt(a b) of the deconvolved ellipse),
    ``area_um2``, ``semi_major_um``, ``semi_minor_um``, ``orientation_deg`` (major axis,
    from +x towards +y), ``excess_intensity`` (mean excess over the background inside,
    map units), ``integrated_excess`` (map units x um^2), ``significance`` (peak, noise
    units), ``plateau_diameter_um`` (equivalent diameter of a fainter plateau around it,
    the damaged zone of a case-B agglomerate; NaN when none), ``truncated`` (the fitted
    ellipse reaches the map's edge or a pixel without value, or its region holds or borders
    pixels without value: the map shows part of it, its size is uncertain) and ``case``
    ("A" up to the critical diameter, "B" above, "unresolved" below 3 pixels when the
    critical diameter is below 3 pixels too, or when a truncated one measures up to the
    critical diameter: :func:`size_class`).

    Raises ``ValueError`` when the background window or the point-spread function is
    longer than the map, or the critical diameter under a pixel (lengths not in
    micrometres: a pixel size given in mm, a critical diameter in nm).
    """
    image = np.asarray(saxs_intensity_map, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError("saxs_intensity_map must be 2D (ny, nx)")
    if not pixel_size_um > 0 or not psf_fwhm_um >= 0:
        raise ValueError("pixel_size_um must be positive and psf_fwhm_um >= 0")
    problem = saxs_map_problem(image)
    if problem is not None:
        raise ValueError(f"saxs_intensity_map {problem}")
    block = _repeated_block(image)
    if block > 1:
        raise ValueError(
            f"saxs_intensity_map repeats each value over {block} x {block} pixels: it was "
            f"upsampled from pixels of {block * pixel_size_um:g} um, whose sizes and classes it "
            f"cannot resolve at {pixel_size_um:g} um (a 49 um agglomerate, case A, measured 54 "
            f"um, case B). Give the map at its measured pixels (pixel_size_um "
            f"{block * pixel_size_um:g})"
        )
    maps = {"anode_mask": anode_mask, "d_star_map": d_star_map, "layer_map": layer_map}
    check_same_grid("find_agglomerates", {"saxs_intensity_map": image, **maps})
    problem = None if trace is None else trace.grid_problem(image.shape, pixel_size_um)
    if problem is not None:  # each agglomerate was placed at turn -1 ("not on the layer")
        raise ValueError(
            f"trace: {problem}: trace the Cu layer on a map of the SAXS map's grid (or "
            "resample that map onto it first)"
        )
    finite = np.isfinite(image)
    image = np.where(finite, image, np.nan)  # inf as NaN: no value
    p = float(pixel_size_um)
    sigma_um = max(psf_fwhm_um * FWHM_TO_SIGMA, 0.25 * p)
    window = (
        background_window(critical_diameter_um)
        if background_window_um is None
        else background_window_um
    )
    # before any smoothing: a beam in um on a map in mm is thousands of pixels wide
    _check_lengths(
        image.shape, p, window, critical_diameter_um, background_window_um is None, psf_fwhm_um
    )
    mask = silicon_mask(image, p, psf_fwhm_um) if anode_mask is None else np.asarray(anode_mask)
    mask = mask.astype(bool) & finite
    if anode_mask is not None and not mask.any():
        raise ValueError(
            "anode_mask selects no pixel with a value of the saxs_intensity_map: no agglomerate "
            "could be found (an empty table would read as none); pass the anode's pixels, or "
            "no anode_mask (the silicon-rich layers of the map)"
        )
    rows = _spots(image, mask, p, sigma_um, psf_fwhm_um, window, threshold, prominence)
    table = _distinct(pd.DataFrame(rows)) if rows else _empty_table()
    table = table.sort_values(["y_um", "x_um"], ignore_index=True)
    table.insert(0, "id", np.arange(1, len(table) + 1))
    table["case"] = size_class(
        table["equivalent_diameter_um"].to_numpy(), critical_diameter_um, p,
        table["truncated"].to_numpy(dtype=bool),
    )  # fmt: skip
    ring = critical_diameter_um if ring_width_um is None else ring_width_um
    if d_star_map is not None:
        inside, around = _inside_and_ring(table, np.asarray(d_star_map, float), p, ring)
        table["d_star_inside_nm"] = inside
        table["d_star_ring_nm"] = around
    if layer_map is not None:
        table["layer"] = _sample(np.asarray(layer_map), table, p)
    if trace is not None:
        place = locate_on_layer(table["x_um"], table["y_um"], trace, image.shape)
        table[list(place.columns)] = place.to_numpy()
        table["turn"] = table["turn"].astype(int)
    return table


def _repeated_block(image: np.ndarray) -> int:
    """k when every aligned k x k block of ``image`` holds one value (k = 2...4; a map
    upsampled by repeating its pixels: exact copies, which no measurement gives), else 1."""
    ny, nx = image.shape
    for k in (2, 3, 4):
        if ny >= 2 * k and nx >= 2 * k:
            blocks = image[: ny // k * k, : nx // k * k].reshape(ny // k, k, nx // k, k)
            corner = np.broadcast_to(blocks[:, :1, :, :1], blocks.shape)
            if np.array_equal(blocks, corner, equal_nan=True):
                return k
    return 1


def _check_lengths(
    shape: tuple[int, ...],
    p: float,
    window_um: float,
    critical_um: float,
    default: bool,
    psf_um: float = 0.0,
) -> None:
    """Refuse a background window longer than the map: no background can be told from
    the map, and the lengths are most likely not in micrometres. A pixel size in mm (0.02
    for 20 um: the map then spans 3 um and the beam 1000 pixels) ran 11 minutes and gave
    one agglomerate of 0.23 um, case A; a critical diameter in nm (50000 for 50 um) gave
    every agglomerate, all six of case B among them, as case A; exit 0 both. A critical
    diameter under one pixel is refused too: in mm (0.05 for 50 um) it made every resolved
    agglomerate case B, with a background window of a fraction of a pixel. A point-spread
    function wider than the map is refused as well: with the pixel and the window in mm
    (0.01 and 0.25) and the beam left at its 20 um, a 60 um agglomerate of case B gave an
    empty table, exit 0. So is a window under twice the critical diameter (or 3 pixels)."""
    if not critical_um >= p:
        raise ValueError(
            f"critical_diameter_um ({critical_um:g} um) is less than one pixel of the map "
            f"({p:g} um): no agglomerate can be classified against it. Is it in mm? Give it "
            "in um (the study's 50)"
        )
    extent_um = max(shape) * p
    if psf_um > extent_um:
        raise ValueError(
            f"psf_fwhm_um ({psf_um:g} um) is wider than the map, which spans {shape[0]} x "
            f"{shape[1]} pixels of {p:g} um ({extent_um:g} um at most): are the lengths in "
            "micrometres? pixel_size_um is the map's pixel in um (a translation step of "
            "0.01 mm is 10), psf_fwhm_um the beam's FWHM in um (the study's 20)"
        )
    if window_um > extent_um:
        why = (
            f"5 critical diameters of {max(critical_um, STUDY_CRITICAL_DIAMETER_UM):g} um"
            if default
            else "background_window_um"
        )
        raise ValueError(
            f"the background window ({window_um:g} um: {why}) is longer than the map, "
            f"which spans {shape[0]} x {shape[1]} pixels of {p:g} um ({extent_um:g} um at "
            "most): are the lengths in micrometres? pixel_size_um is the map's pixel in um "
            "(a translation step of 0.01 mm is 10), critical_diameter_um in um (the "
            "study's 50)"
        )
    least = max(2 * critical_um, 3 * p)
    if window_um < least:
        # the median background then follows the spots themselves: a 10 um window on the
        # tiny twin's 20 um map gave 38 agglomerates for its 4 (and 40 um as many), exit 0
        raise ValueError(
            f"the background window ({window_um:g} um) is shorter than {least:g} um, twice the "
            f"critical diameter ({critical_um:g} um) and at least 3 pixels of {p:g} um: the "
            "background then follows the spots, and an agglomerate of the critical size "
            "sinks into it. It must exceed twice the largest agglomerate; give at least "
            f"{least:g} um (is it in mm?), or leave it out (5 critical diameters)"
        )


def _spots(
    image: np.ndarray,
    mask: np.ndarray,
    p: float,
    sigma_um: float,
    blur_fwhm_um: float,
    window_um: float,
    threshold: float,
    prominence: float,
) -> list[dict]:
    """Seeds, regions and deconvolved fits: one dict of table columns per spot.

    A spot is seeded and grown over the pixels without value it surrounds (its fit uses only
    the pixels with a value): a 3 x 3 hole over a 60 um agglomerate's centre split it into
    4 spots of 10-20 um, a NaN row into two of 36 um, case A. Holes up to a fifth of the
    window across (the critical diameter, by default) are bridged; across a wider band the
    spots on either side stay apart. A bridged region whose spot fits as a line joined two
    spots across a band hiding the gap between them (dropped as a streak: both lost, exit
    0): it is seeded again without the bridge. A spot whose region holds or borders pixels
    without value is ``truncated``: the map does not show it whole (the band took a 30 um
    agglomerate's flank, measured 19 um, unflagged)."""
    excess, significance = _excess(image, mask, p, sigma_um, window_um, threshold)
    if excess is None:
        return []
    unknown = ~np.isfinite(excess)
    seeding = _raised_over_holes(significance, unknown, _window_px(window_um, p) // 10 + 1)
    labels = _regions(seeding, significance, mask, threshold, prominence)
    fit = (image, excess, significance, unknown, mask, p, sigma_um, blur_fwhm_um)
    rows, lines = _fitted_spots(labels, *fit)
    bridged_lines = [index for index in lines if (unknown & (labels == index)).any()]
    if not bridged_lines:
        return rows
    plain = _regions(significance, significance, mask, threshold, prominence)
    offset = int(labels.max())
    for index in bridged_lines:
        region = labels == index
        labels[region] = np.where(plain[region] > 0, plain[region] + offset, 0)
    return _fitted_spots(labels, *fit)[0]


def _regions(
    seeding: np.ndarray,
    significance: np.ndarray,
    mask: np.ndarray,
    threshold: float,
    prominence: float,
) -> np.ndarray:
    """Label map (ny, nx) of the spots: seeds at the maxima of ``seeding`` rising
    ``prominence`` above their saddles where ``significance`` passes ``threshold`` in
    ``mask``, grown by watershed over ``seeding`` down to the lower of the two."""
    peaks = h_maxima(np.clip(seeding, 0, None), prominence).astype(bool)
    markers, _ = ndimage.label(peaks & (significance >= threshold) & mask)
    support = (seeding >= min(prominence, threshold)) | (markers > 0)
    return watershed(-seeding, markers, mask=support)


def _fitted_spots(
    labels: np.ndarray,
    image: np.ndarray,
    excess: np.ndarray,
    significance: np.ndarray,
    unknown: np.ndarray,
    mask: np.ndarray,
    p: float,
    sigma_um: float,
    blur_fwhm_um: float,
) -> tuple[list[dict], list[int]]:
    """The table rows of the spots of ``labels`` (deconvolved fits of ``excess`` over the
    map ``image``), and the labels of the spots dropped as lines (:func:`_is_line`)."""
    ny, nx = labels.shape
    y_axis, x_axis = pixel_centres_um(ny, p), pixel_centres_um(nx, p)
    margin = math.ceil(3.0 * sigma_um / p) + 1
    spots = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        window_box = tuple(
            slice(max(0, b.start - margin), min(n, b.stop + margin))
            for b, n in zip(box, labels.shape, strict=True)
        )
        known = ~unknown[window_box]  # a pixel whose background saw nothing
        region = (labels[window_box] == index) & known
        use = region | (mask[window_box] & (labels[window_box] == 0) & known)
        # its region reaches or borders pixels without value: part of it may lie there
        holed = bool((ndimage.binary_dilation(labels[window_box] == index) & ~known).any())
        spots.append((window_box, np.where(known, excess[window_box], 0.0), region, use,
                      index, holed))  # fmt: skip

    def fit(spot: tuple, neighbours: np.ndarray | float = 0.0) -> np.ndarray | None:
        window_box, local_excess, region, use = spot[:4]
        return _fit_spot(
            local_excess - neighbours, use, region, x_axis[window_box[1]],
            y_axis[window_box[0]], p, sigma_um, blur_fwhm_um,
        )  # fmt: skip

    fits = [fit(spot) for spot in spots]
    # a spot's region holds the blurred tail of a touching neighbour: fitted alone, two
    # 60 um agglomerates 70 um apart (10 um pixels) gave one as a 40 um core on a 62 um
    # "plateau", case A. Each is fitted again without its neighbours' fitted models.
    fits = [
        fit(spot, neighbours) if fits[i] is not None and np.any(neighbours) else fits[i]
        for i, spot in enumerate(spots)
        for neighbours in [_neighbours(spots[i][0], fits, i, x_axis, y_axis, p, sigma_um)]
    ]
    rows, lines = [], []
    for (window_box, _, region, _, index, holed), found in zip(spots, fits, strict=True):
        if found is None:
            continue
        amplitude, cx, cy, a, b, phi, plateau = found[:7]
        if _is_line(max(a, b), min(a, b), p, blur_fwhm_um):
            lines.append(index)
            continue  # a streak or a layer's edge (its model still left the neighbours)
        truncated = holed or _reaches_unseen(image, x_axis, y_axis, p, cx, cy, a, b, phi)
        rows.append(
            {
                "x_um": cx,
                "y_um": cy,
                "equivalent_diameter_um": 2.0 * math.sqrt(a * b),
                "area_um2": math.pi * a * b,
                "semi_major_um": max(a, b),
                "semi_minor_um": min(a, b),
                "orientation_deg": math.degrees(phi if a >= b else phi + math.pi / 2) % 180.0,
                "excess_intensity": amplitude,
                "integrated_excess": amplitude * math.pi * a * b,
                "significance": float(significance[window_box][region].max()),
                "plateau_diameter_um": plateau,
                "truncated": truncated,
            }
        )
    return rows, lines


def _raised_over_holes(values: np.ndarray, unknown: np.ndarray, depth_px: int) -> np.ndarray:
    """``values`` (ny, nx) with its ``unknown`` pixels up to ``depth_px`` pixels (chessboard)
    from a known one set to the largest known value that near, the others 0. A hole inside
    a spot then rises to the spot's top and joins its sides into one regional maximum (a
    low hole left each side of it its own); a hole's pixels beyond the depth stay low, so
    spots on either side of a wide band without value stay apart."""
    filled = np.where(unknown, -np.inf, values)
    todo = np.asarray(unknown, dtype=bool).copy()
    for _ in range(depth_px):
        if not todo.any():
            break
        grown = ndimage.grey_dilation(filled, size=3)
        reached = todo & np.isfinite(grown)
        filled[reached] = grown[reached]
        todo &= ~reached
    filled[todo] = 0.0
    return filled


def _neighbours(
    window_box: tuple[slice, slice],
    fits: list[np.ndarray | None],
    own: int,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    p: float,
    sigma_um: float,
) -> np.ndarray | float:
    """The blurred fitted models (:func:`_fit_spot`: core and plateau) of every spot but
    ``fits[own]`` reaching the ``window_box`` of the map, summed; 0.0 when none does."""
    x, y = x_axis[window_box[1]], y_axis[window_box[0]]
    reach = 3.0 * sigma_um + p
    total: np.ndarray | float = 0.0
    for k, found in enumerate(fits):
        if k == own or found is None:
            continue
        amplitude, cx, cy, a, b, phi, _, plateau_height, wide_a, wide_b = found
        largest = max(a, b, wide_a, wide_b)
        extent = largest + reach
        if not (x[0] - extent <= cx <= x[-1] + extent and y[0] - extent <= cy <= y[-1] + extent):
            continue
        # how far the neighbour reaches past the window: padded by it, none of it wraps
        beyond = max(
            cx + largest - x[-1], x[0] - cx + largest, cy + largest - y[-1], y[0] - cy + largest
        )
        model = _BlurredEllipses(x, y, p, sigma_um, reach_um=beyond + p)
        core, wide = model(cx, cy, phi, [(a, b), (wide_a, wide_b)])
        total = total + (amplitude - plateau_height) * core + plateau_height * wide
    return total


def _reaches_unseen(
    image: np.ndarray,
    x_axis: np.ndarray,
    y_axis: np.ndarray,
    p: float,
    cx: float,
    cy: float,
    a: float,
    b: float,
    phi: float,
) -> bool:
    """Whether a fitted ellipse (centre, semi-axes, orientation; um), grown by half a
    pixel, reaches past the map's outer edge or over a pixel of ``image`` without value:
    the map then shows part of the agglomerate only. Cut by the map's edge one pixel past
    its centre, a 58 um (case B) agglomerate at 10 um pixels measured 46 um, case A."""
    c, s = math.cos(phi), math.sin(phi)
    grown_a, grown_b = a + 0.5 * p, b + 0.5 * p
    half_x, half_y = math.hypot(grown_a * c, grown_b * s), math.hypot(grown_a * s, grown_b * c)
    if (
        cx - half_x < x_axis[0] - 0.5 * p
        or cx + half_x > x_axis[-1] + 0.5 * p
        or cy - half_y < y_axis[0] - 0.5 * p
        or cy + half_y > y_axis[-1] + 0.5 * p
    ):
        return True
    columns = np.flatnonzero(np.abs(x_axis - cx) <= half_x)
    rows = np.flatnonzero(np.abs(y_axis - cy) <= half_y)
    dx, dy = x_axis[None, columns] - cx, y_axis[rows, None] - cy
    inside = ((dx * c + dy * s) / grown_a) ** 2 + ((dy * c - dx * s) / grown_b) ** 2 <= 1.0
    return bool(np.any(inside & ~np.isfinite(image[np.ix_(rows, columns)])))


def _distinct(table: pd.DataFrame) -> pd.DataFrame:
    """Drop fits centred inside a more significant one: one spot seeded twice (noise on
    the flat top of a large spot can make two maxima)."""
    order = table.sort_values("significance", ascending=False).index
    kept: list[int] = []
    for i in order:
        row = table.loc[i]
        if not any(
            np.hypot(row.x_um - table.at[k, "x_um"], row.y_um - table.at[k, "y_um"])
            < min(row.semi_minor_um, table.at[k, "semi_minor_um"])
            for k in kept
        ):
            kept.append(i)
    return table.loc[sorted(kept)]


def _excess(
    image: np.ndarray,
    mask: np.ndarray,
    p: float,
    sigma_um: float,
    window_um: float,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """Excess over the local background and its smoothed significance (noise units).

    The background is estimated again leaving out the pixels above 2 noise units (and
    their neighbours) of the spots reaching ``threshold`` (:func:`_spot_parts`), so that
    clusters of spots and the plateaus around large ones do not lift it; where that leaves
    nothing, the first estimate stays. That second estimate follows the layers to their
    ends (``levels`` of :func:`local_background`: the medians of the map outside and
    inside ``mask``).
    """

    def significance(background: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        excess = image - background
        smooth = finite_gaussian(excess, sigma_um / p)
        noise = robust_sigma(smooth[mask & np.isfinite(smooth)])
        return excess, (np.nan_to_num(smooth / noise) if noise > 0 else None)

    length = _window_px(window_um, p)
    first = _background(image, length, ORIENTATIONS, None, None)
    _, score = significance(first)
    if score is None:
        return None, None
    spots = _spot_parts(ndimage.binary_dilation(score >= 2.0), score >= threshold, length)
    # the levels of the air and of the layers: the background at a layer's end
    finite = np.isfinite(image)
    levels = (finite_median(image[~mask & finite]), finite_median(image[mask & finite]))
    if not levels[1] > levels[0]:
        levels = None
    # the first estimate stays where no segment reaches a spot's pixel
    second = _background(image, length, ORIENTATIONS, spots, levels, unexcluded=first)
    excess, score = significance(np.where(np.isfinite(second), second, first))
    return (excess, score) if score is not None else (None, None)


def _spot_parts(pixels: np.ndarray, seeds: np.ndarray, length_px: int) -> np.ndarray:
    """The pixels of the connected parts of ``pixels`` ((ny, nx) bool) holding a pixel of
    ``seeds``, within a quarter of ``length_px`` (the background's line segments) of one.

    Only spots may leave the background's lines. A part without a seed is a step of a
    layer; so is the far end of a long part (a spot joined to the layer's steps on a map
    without noise). Left out, they take the layer out of the lines along it, and the
    background drops to the gaps between layers: at 40 um pixels, noise-free, the 3-pixel
    layers' partial-volume steps and ends came back as 140-250 um "agglomerates" of case B
    (three on one tiny twin, none real). A quarter of the lines keeps half of each line
    through a seed along its layer."""
    labels, count = ndimage.label(pixels)
    keep = np.zeros(count + 1, bool)
    keep[np.unique(labels[seeds & pixels])] = True
    keep[0] = False
    near = ndimage.distance_transform_edt(~(seeds & pixels)) <= length_px / 4
    return keep[labels] & near


_FIT_COLUMNS = (
    "x_um", "y_um", "equivalent_diameter_um", "area_um2", "semi_major_um", "semi_minor_um",
    "orientation_deg", "excess_intensity", "integrated_excess", "significance",
    "plateau_diameter_um",
)  # fmt: skip


def _empty_table() -> pd.DataFrame:
    table = pd.DataFrame({name: pd.Series(dtype=float) for name in _FIT_COLUMNS})
    table["truncated"] = pd.Series(dtype=bool)
    return table


def _pixel_of(table: pd.DataFrame, shape: tuple[int, int], p: float) -> tuple[np.ndarray, ...]:
    """Pixel (iy, ix) nearest to each centre of the table, clipped to a ``shape`` map."""
    iy = np.clip(np.round(um_to_px(table["y_um"], shape[0], p)), 0, shape[0] - 1)
    ix = np.clip(np.round(um_to_px(table["x_um"], shape[1], p)), 0, shape[1] - 1)
    return iy.astype(int), ix.astype(int)


def _sample(values: np.ndarray, table: pd.DataFrame, p: float) -> np.ndarray:
    """Values of a map at the pixels holding the table's centres."""
    return values[_pixel_of(table, values.shape, p)]


def _inside_and_ring(
    table: pd.DataFrame, values: np.ndarray, p: float, ring_width_um: float
) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware medians of ``values`` inside each equivalent disk and in a ring around it.

    Inside, only the pixels whose centre lies half a pixel within the disk's edge count (at
    least the centre pixel; the whole disk where those hold no value): a rim pixel holds the
    surroundings too (the median over agglomerates within 0.1 nm of the twin's defect d* on
    six reconstructed twins at 10 and 20 um pixels; on a twin whose pixels hold exact area
    shares the whole disk read up to 0.6 nm high at 20 um pixels, the core 0.14 nm). The
    ring leaves out every agglomerate's disk (a neighbour's d* is not the surroundings')."""
    inside, around = [], []
    radii = table["equivalent_diameter_um"].to_numpy(dtype=float) / 2
    disks = disk_union(values.shape, p, table, radii)
    for row, radius in zip(table.itertuples(), radii, strict=True):
        reach = disk_reach_um(radius, p) + ring_width_um
        window, distance = near_um(values.shape, p, row.x_um, row.y_um, reach)
        near = values[window]
        core_value = finite_median(near[within(distance, radius - p / 2, p)])
        if not np.isfinite(core_value):
            core_value = finite_median(near[within(distance, radius, p)])
        inside.append(core_value)
        ring = beyond(distance, radius, ring_width_um) & ~disks[window]
        around.append(finite_median(near[ring]))
    return np.array(inside), np.array(around)


def size_histogram(
    table: pd.DataFrame, bins: int | Sequence[float] = 10, *, column: str = "equivalent_diameter_um"
) -> pd.DataFrame:
    """Histogram of agglomerate sizes (um): ``lower_um``, ``upper_um``, ``count`` per bin."""
    counts, edges = np.histogram(table[column].to_numpy(dtype=float), bins=bins)
    return pd.DataFrame({"lower_um": edges[:-1], "upper_um": edges[1:], "count": counts})


def median_radius_um(table: pd.DataFrame) -> float:
    """Median equivalent radius (um) of the agglomerates in ``table`` that the map shows
    whole (a ``truncated`` one's size is a lower bound; NaN when none)."""
    whole = ~table["truncated"].to_numpy(dtype=bool) if "truncated" in table else slice(None)
    diameters = table["equivalent_diameter_um"].to_numpy(dtype=float)[whole]
    return float(np.median(diameters) / 2) if diameters.size else float("nan")

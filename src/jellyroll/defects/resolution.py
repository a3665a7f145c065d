"""Resolution of a SAXS intensity map, measured on the map itself.

The agglomerate fit (:func:`jellyroll.defects.find_agglomerates`) undoes the blur of the
map, so it needs that blur: the effective point-spread function (PSF) of the
reconstruction, which is not the beam's alone (the study's 20 um beam reconstructed by
10 SART sweeps of 90 angles blurs a twin's map by 25-30 um FWHM). It is measured here
with the edge-spread / line-spread function method of imaging (the profile across a sharp
edge is the edge blurred by the line-spread function, the PSF's projection; for CT: P. F.
Judy, Med. Phys. 3, 233 (1976); the slanted-edge method of ISO 12233, whose edge crosses
the pixels at every sub-pixel offset): the anode layers of a cell are bands of silicon with
sharp edges, so across a layer the map is a box blurred by the PSF. On short radial
profiles of each layer (pixels of a narrow sector around the cell centre, each at its own
exact radius, so the profile is sampled finer than the pixels and not interpolated), a
box of free centre and width, with the dip of the Cu collector inside it and a sloped
floor, is blurred by a Gaussian of free width and fitted; the median over every layer
crossing is the PSF's.

The layers measure the blur across them (radially): on an undersampled scan the
tangential blur grows with the radius and can be larger (radial 23-29 um, tangential
27-37 um around a demo twin's agglomerates), so the estimate is a lower bound of the
blur of a round spot there. Lengths in micrometres; pixels follow
:mod:`jellyroll.unroll.polar` (pixel ``(i, j)`` centred at ``(x, y) = (j, i)``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from jellyroll.conventions import FWHM_TO_SIGMA, robust_sigma
from jellyroll.defects.options import STUDY_PSF_FWHM_UM

__all__ = ["STUDY_PSF_FWHM_UM", "PsfEstimate", "estimate_psf"]

MIN_CROSSINGS = 24
"""Fewest layer crossings whose fits make an estimate."""
MAX_RELATIVE_ERROR = 0.1
"""Largest standard error of the median FWHM, relative to it, of an estimate."""
MIN_EDGE_SNR = 5.0
"""Smallest height of a layer over the rms residual of its fit for the crossing to count."""
MAX_SIGMA_ERROR = 0.3
"""Largest relative standard error of one crossing's fitted blur for it to count."""
SECTOR_ARC_PX = 4.0
"""Width (pixels of arc at the median anode radius) of the sectors the profiles are cut
from: wide enough for a few pixels per radial step, narrow enough that a spiral layer's
radius changes by well under a pixel across it."""
MAX_SECTORS = 64
"""Sectors fitted at most, spread evenly around the cell: the study's 1024^2 map cut into
all its ~390 sectors gave 4012 crossings (median known to 0.01 um) in 15 s, on every
diagnosis; a few hundred crossings know it to a few hundredths of a um."""
_ERF = 1.0 / math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)


@dataclass(frozen=True)
class PsfEstimate:
    """The PSF of a map measured on its layer edges.

    ``fwhm_um``: median FWHM over the crossings kept (NaN when none); ``error_um`` its
    standard error; ``crossings``: layer crossings fitted and kept; ``problem``: why the
    estimate is not to be used (too few crossings, too scattered), None when it is.
    """

    fwhm_um: float
    error_um: float
    crossings: int
    problem: str | None

    @property
    def reliable(self) -> bool:
        return self.problem is None


def estimate_psf(
    saxs_intensity_map: np.ndarray,
    pixel_size_um: float,
    anode_mask: np.ndarray,
    *,
    centre_px: tuple[float, float] | None = None,
) -> PsfEstimate:
    """The FWHM (um) of the Gaussian PSF of a SAXS intensity map ``(ny, nx)``, relative to
    the pixel-averaged object (as :func:`~jellyroll.defects.find_agglomerates` takes it).

    ``anode_mask`` ((ny, nx) bool, e.g. :func:`~jellyroll.defects.silicon_mask`) locates
    the layers; ``centre_px`` (x, y pixels: the cell's centre) defaults to the mask's
    centroid (an error of a few pixels tilts the layers by a few degrees only). Pixel
    averaging adds ``p**2 / 12`` to each fitted variance and is taken off.
    """
    image = np.asarray(saxs_intensity_map, dtype=np.float64)
    mask = np.asarray(anode_mask, dtype=bool) & np.isfinite(image)
    p = float(pixel_size_um)
    if not mask.any():
        return PsfEstimate(math.nan, math.nan, 0, "no anode layer in the map")
    rows, columns = np.nonzero(np.isfinite(image))
    if centre_px is None:
        ys, xs = np.nonzero(mask)
        centre_px = (float(xs.mean()), float(ys.mean()))
    dx, dy = columns - centre_px[0], rows - centre_px[1]
    radius = np.hypot(dx, dy) * p
    angle = np.mod(np.arctan2(dy, dx), 2 * math.pi)
    inside = mask[rows, columns]
    median_radius = float(np.median(radius[inside]))
    sectors = max(8, round(2 * math.pi * median_radius / (SECTOR_ARC_PX * p)))
    sector = np.minimum((angle / (2 * math.pi) * sectors).astype(int), sectors - 1)
    stride = math.ceil(sectors / MAX_SECTORS)
    fitted = np.flatnonzero(sector % stride == 0)  # pixels of the sectors fitted
    order = fitted[np.argsort(sector[fitted], kind="stable")]
    bounds = np.searchsorted(sector[order], np.arange(0, sectors + stride, stride))
    values = image[rows, columns]
    fwhms = []
    for first, stop in itertools.pairwise(bounds):
        picked = order[first:stop]
        for crossing in _crossings(radius[picked], values[picked], inside[picked], p):
            sigma = _fit_crossing(*crossing, p)
            if sigma is not None:
                fwhms.append(math.sqrt(max(sigma**2 - p**2 / 12, 0.0)) / FWHM_TO_SIGMA)
    return _summarise(np.array(fwhms))


def _summarise(fwhms: np.ndarray) -> PsfEstimate:
    """Median and its standard error over the crossings, and why it is unusable, if so."""
    n = fwhms.size
    if n == 0:
        return PsfEstimate(math.nan, math.nan, 0, "no layer edge could be fitted")
    fwhm = float(np.median(fwhms))
    error = math.sqrt(math.pi / 2) * robust_sigma(fwhms) / math.sqrt(n)
    problem = None
    if n < MIN_CROSSINGS:
        problem = f"{n} layer crossings fitted, fewer than {MIN_CROSSINGS}"
    elif not error <= MAX_RELATIVE_ERROR * fwhm:
        problem = (
            f"the layer crossings disagree: {fwhm:.3g} +- {error:.2g} um "
            f"(more than {MAX_RELATIVE_ERROR:.0%})"
        )
    return PsfEstimate(fwhm, error, n, problem)


def _crossings(
    radius: np.ndarray, values: np.ndarray, inside: np.ndarray, p: float
) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    """(radii, values, centre, width) of the pixels around each layer crossed by one
    sector's pixels, and the layer's centre and width (um) in the mask.

    A layer is a run of radial steps of one pixel where most pixels are in the anode, at
    least 3 pixels wide; its profile reaches half-way to the next layer on each side, at
    most 60 um or 3 pixels past its edges (the blurred edge's tail, not the next layer's).
    """
    if radius.size == 0:
        return []
    start = radius.min()
    step = ((radius - start) / p).astype(int)
    count = np.bincount(step)
    share = np.bincount(step, weights=inside) / np.maximum(count, 1)
    layer = (share >= 0.5) & (count > 0)
    edges = np.flatnonzero(np.diff(np.r_[0, layer.astype(int), 0]))
    runs = list(zip(edges[::2], edges[1::2], strict=True))  # [first, stop) steps
    margin = max(60.0, 3 * p) / p
    out = []
    for i, (first, stop) in enumerate(runs):
        if stop - first < 3:
            continue
        before = first - (runs[i - 1][1] if i else -np.inf)
        after = (runs[i + 1][0] if i + 1 < len(runs) else np.inf) - stop
        lo, hi = first - min(margin, before / 2), stop + min(margin, after / 2)
        if lo < 0 or hi > step.max() + 1 or min(first - lo, hi - stop) < 2:
            continue  # the profile is cut by the map's edge, or the layers touch
        near = (step >= lo) & (step < hi)
        out.append((radius[near], values[near], start + (first + stop) / 2 * p, (stop - first) * p))
    return out


def _profile(x: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The blurred box and Cu line of one crossing at ``x`` (um from the profile's middle)
    for ``q = (shift, width, sigma, place)``, and their derivatives ``(n, 4)`` in ``q``.

    Box: a unit box of ``width`` at ``shift`` blurred by a Gaussian of ``sigma``; line: the
    unit Gaussian of ``sigma`` at ``shift + place * width``.
    """
    shift, width, sigma, place = q
    near, far = (x - shift + width / 2) * _ERF / sigma, (x - shift - width / 2) * _ERF / sigma
    box = 0.5 * (special.erf(near) - special.erf(far))
    g_near, g_far = np.exp(-(near**2)) / _SQRT_PI, np.exp(-(far**2)) / _SQRT_PI
    u = (x - shift - place * width) / sigma
    line = np.exp(-0.5 * u**2)
    slope = u * line / sigma  # d line / d shift
    box_d = np.column_stack(
        [
            (g_far - g_near) * _ERF / sigma,
            (g_near + g_far) * _ERF / (2 * sigma),
            (g_far * far - g_near * near) / sigma,
            np.zeros_like(x),
        ]
    )
    line_d = np.column_stack([slope, place * slope, u * slope, width * slope])
    return box, line, box_d, line_d


def _projected_fit(
    x: np.ndarray, target: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heights ``(4,)`` (floor, its slope, box, line depth >= 0; linear least squares),
    residual ``(n,)`` and its Jacobian ``(n, 4)`` in ``q`` of the variable-projection fit
    of one crossing (:func:`_profile`). The Jacobian is the exact one of the projected
    residual, the heights following ``q`` (Golub & Pereyra, SIAM J. Numer. Anal. 10, 413
    (1973)): finite differences took 4 more solves per step for the same fit."""
    box, line, box_d, line_d = _profile(x, q)
    design = np.column_stack([np.ones_like(x), x, box, -line])
    for columns in (4, 3):  # without the line when its depth comes out negative
        u, s, vt = np.linalg.svd(design[:, :columns], full_matrices=False)
        rank = s > np.finfo(float).eps * max(x.size, columns) * s[0]  # as numpy's lstsq
        u, s, vt = u[:, rank], s[rank], vt[rank]
        heights = np.zeros(4)
        heights[:columns] = vt.T @ (u.T @ target / s)
        if heights[3] >= 0:
            break
    residual = design @ heights - target
    moved = box_d * heights[2] - line_d * heights[3]  # d(design) @ heights, per parameter
    turned = np.vstack([np.zeros((2, 4)), box_d.T @ residual, -line_d.T @ residual])
    turned = turned[:columns]  # d(design)^T @ residual, per parameter
    jacobian = moved - u @ (u.T @ moved + vt @ turned / s[:, None])
    return heights, residual, jacobian


def _fit_crossing(
    r: np.ndarray, v: np.ndarray, centre: float, width: float, p: float
) -> float | None:
    """Gaussian blur (sigma, um) of one layer crossing; None when the fit is not sharp.

    Model: floor ``b0 + b1 (r - c)`` plus a box (centre ``c``, width ``w``) minus a line
    inside it (the Cu collector between the two anode coatings, thinner than the blur),
    both blurred by the same Gaussian; heights by linear least squares inside the fit of
    ``c, w, sigma`` and the line's place (variable projection, :func:`_projected_fit`),
    the line's depth >= 0. Kept when the box stands :data:`MIN_EDGE_SNR` residual rms
    above the floor, is wider than its blur's FWHM (narrower, width and blur trade off)
    and the blur is known to :data:`MAX_SIGMA_ERROR`.
    """
    order = np.argsort(r)
    r, v = r[order], v[order]
    r0, r1 = float(r[0]), float(r[-1])
    scale = float(np.ptp(v)) or 1.0
    target = v / scale
    mid = 0.5 * (r0 + r1)
    x = r - mid
    last: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def solve(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = np.asarray(q, dtype=np.float64).tobytes()
        if key not in last:  # the optimiser asks for the residual, then the Jacobian
            last.clear()
            last[key] = _projected_fit(x, target, q)
        return last[key]

    span = r1 - r0
    lower = [-0.5 * span, p, 0.1 * p, -0.25]
    upper = [0.5 * span, span, 0.5 * span, 0.25]
    start = np.clip([centre - mid, width, p, 0.0], lower, upper)
    try:
        fit = optimize.least_squares(
            lambda q: solve(q)[1], start, jac=lambda q: solve(q)[2], bounds=(lower, upper),
            x_scale=[p, p, p, 0.1], xtol=1e-5, max_nfev=200,
        )  # fmt: skip
    except (ValueError, np.linalg.LinAlgError):
        return None
    _, width, sigma, _ = fit.x
    heights, residual, _ = solve(fit.x)
    rms = math.sqrt(float(np.mean(residual**2)))
    if not heights[2] >= MIN_EDGE_SNR * rms or width < sigma / FWHM_TO_SIGMA:
        return None
    if not lower[2] < sigma < 0.99 * upper[2]:
        return None  # at a bound: no edge in the profile
    dof = max(r.size - 8, 1)
    try:
        covariance = np.linalg.inv(fit.jac.T @ fit.jac) * np.sum(residual**2) / dof
    except np.linalg.LinAlgError:
        return None
    if not math.sqrt(max(covariance[2, 2], 0.0)) <= MAX_SIGMA_ERROR * sigma:
        return None
    return float(sigma)

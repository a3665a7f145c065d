"""Find a cylindrical cell's centre and radius from the ring of its casing.

A Hough transform (OpenCV) proposes centres; around each, the casing is taken as the
outermost ring that is bright at most angles (the jelly roll's own layers are spirals and
lie inside it), and a least-squares circle fitted to the ring's outer edge points refines
centre and radius. Pixel and angle conventions: :mod:`jellyroll.unroll.polar`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

from jellyroll.conventions import MAD_TO_SIGMA
from jellyroll.unroll._sampling import polar_samples, row_quantile

_HOUGH_SIZE = 256  # px: Hough runs on a copy this large; it only proposes centres
_RADIAL_STEP = 0.25  # px, sampling of the edge profiles
_STRONG = 0.6  # a ring is "strong" above this fraction of the brightest ring


@dataclass(frozen=True)
class Cell:
    """Cell centre (x, y) and outer casing radius, in pixels; unpacks as (x, y, radius)."""

    x: float
    y: float
    radius: float

    def __iter__(self) -> Iterator[float]:
        return iter((self.x, self.y, self.radius))

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x, self.y)

    def disk(self, shape: tuple[int, ...]) -> np.ndarray:
        """(ny, nx) bool: the pixels of a map of ``shape`` whose centre lies within the
        casing."""
        return self._outside(shape) <= 0.0

    def rim(self, shape: tuple[int, ...], inner: float = 1.0, outer: float = 3.0) -> np.ndarray:
        """(ny, nx) bool: the pixels of a map of ``shape`` whose centre lies ``inner`` to
        ``outer`` pixels outside the casing."""
        outside = self._outside(shape)
        return (outside >= inner) & (outside <= outer)

    def _outside(self, shape: tuple[int, ...]) -> np.ndarray:
        """(ny, nx) distance (pixels) of each pixel centre outside the casing (negative
        inside)."""
        y, x = np.ogrid[: shape[0], : shape[1]]
        return np.hypot(x - self.x, y - self.y) - self.radius


def find_cell(
    image: np.ndarray,
    *,
    radius_range: tuple[float, float] | None = None,
    n_angles: int = 720,
) -> Cell:
    """Centre and radius (pixels) of the casing ring in a 2D map (ny, nx).

    Works on attenuation maps and CT slices (bright casing) and on any map where the
    housing is a bright ring, e.g. the intensity of a housing diffraction ring in WAXS-CT.
    The radius is that of the ring's outer edge (half-way between the ring's and the
    outside's levels). ``radius_range`` (pixels) restricts the rings considered, e.g. to
    exclude a bright reconstruction-circle edge outside the cell; by default any ring from
    5 % of the image size outwards is. The cell may be off-centre or partly outside the
    image. Raises ``ValueError`` when no ring is found.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"find_cell needs a 2D image, got shape {image.shape}")
    norm = _normalise(image)
    ny, nx = norm.shape
    r_min, r_max = radius_range or (0.05 * min(ny, nx), float(np.hypot(ny, nx)))
    smooth = ndi.gaussian_filter(norm, 0.7)
    best: tuple[float, Cell] | None = None
    refined: list[Cell] = []
    for x, y in _hough_centres(norm, r_min):
        if any(np.hypot(x - c.x, y - c.y) < 0.03 * max(ny, nx) for c in refined):
            continue  # would converge to a circle already found
        fitted = _refine(smooth, (x, y), (r_min, r_max), n_angles)
        if fitted is None:
            continue
        refined.append(fitted[1])
        if best is None or fitted[0] > best[0]:
            best = fitted
    if best is None:
        raise ValueError("no casing ring found: no circle bright at most angles around any centre")
    return best[1]


def _normalise(image: np.ndarray) -> np.ndarray:
    finite = np.isfinite(image)
    if not finite.any():
        raise ValueError("no casing ring found: the image has no finite values")
    lo, hi = np.percentile(image[finite], [0.5, 99.5])
    if hi <= lo:
        raise ValueError("no casing ring found: the image has no contrast")
    return np.where(finite, np.clip((image - lo) / (hi - lo), 0.0, 1.0), 0.0)


def _hough_centres(norm: np.ndarray, r_min: float, n_max: int = 3) -> list[tuple[float, float]]:
    """Up to ``n_max`` candidate centres (x, y) in pixels, best first."""
    scale = min(1.0, _HOUGH_SIZE / max(norm.shape))
    small = cv2.resize(
        norm.astype(np.float32), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
    )
    u8 = cv2.GaussianBlur((small * 255).astype(np.uint8), (0, 0), 1.0)
    for votes in (30, 15, 8):
        # maxRadius < 0: centres only (the radius comes from the ring profile)
        found = cv2.HoughCircles(
            u8,
            cv2.HOUGH_GRADIENT,
            dp=1,
            minDist=max(u8.shape) / 8,
            param1=100,
            param2=votes,
            minRadius=max(2, int(r_min * scale)),
            maxRadius=-1,
        )
        if found is not None:
            # pixel centres: x_full + 0.5 = (x_small + 0.5) / scale
            return [
                ((x + 0.5) / scale - 0.5, (y + 0.5) / scale - 0.5) for x, y, _ in found[0][:n_max]
            ]
    return []


def _refine(
    smooth: np.ndarray,
    centre: tuple[float, float],
    radius_range: tuple[float, float],
    n_angles: int,
) -> tuple[float, Cell] | None:
    """Fit the outermost strong ring around ``centre``: (score, cell) or None."""
    angles = np.linspace(0.0, 2 * np.pi, n_angles, endpoint=False)
    # tolerance (px) on the ring position along a ray, first for the Hough centre's error
    slack = max(2.0, 0.03 * max(smooth.shape))
    cx, cy = centre
    for _ in range(2):  # the second pass re-selects the ring around the refined centre
        ring = _outermost_ring(smooth, (cx, cy), radius_range, slack, angles[::2])
        if ring is None:
            return None
        radius, threshold = ring
        for _ in range(6):
            theta, r = _edge_points(smooth, (cx, cy), radius, slack, threshold, angles)
            fit = _fit_circle(cx + r * np.cos(theta), cy + r * np.sin(theta))
            if theta.size < 0.2 * n_angles or fit is None:
                return None
            (new_x, new_y, radius), inliers = fit
            shift = float(np.hypot(new_x - cx, new_y - cy))
            cx, cy = new_x, new_y
            slack = max(1.5, min(slack, 2 * shift + 1.5))
            if shift < 0.01:
                break
    # contrast across the fitted edge: a ring at least 1.5 px thick against its outside
    inside = polar_samples(smooth, (cx, cy), radius - np.array([1.5, 1.0, 0.5]), angles)
    outside = polar_samples(smooth, (cx, cy), radius + np.array([0.5, 1.25, 2.0]), angles)
    contrast = float(np.nanmedian(inside) - np.nanmedian(outside))
    if not radius_range[0] <= radius <= radius_range[1] or not contrast >= 0.15:
        return None
    return contrast * inliers.sum() / n_angles, Cell(float(cx), float(cy), float(radius))


def _outermost_ring(
    smooth: np.ndarray,
    centre: tuple[float, float],
    radius_range: tuple[float, float],
    slack: float,
    angles: np.ndarray,
) -> tuple[float, float] | None:
    """Outer edge radius (px) and half-level threshold of the outermost strong ring."""
    step = 0.5
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]) * (np.array(smooth.shape[::-1]) - 1)
    farthest = np.hypot(*(corners - np.asarray(centre)).T).max()
    radii = np.arange(0.0, min(radius_range[1] + 2 * slack, farthest) + 4, step)
    polar = polar_samples(smooth, centre, radii, angles)
    finite = np.isfinite(polar)
    # a radial max filter keeps the ring bright at all angles despite the centre's error
    widened = ndi.maximum_filter1d(
        np.where(finite, polar, -np.inf), int(2 * slack / step) + 1, axis=0
    )
    widened[~finite] = np.nan
    usable = finite.mean(axis=1) >= 0.3
    if not usable.any():
        return None
    level = row_quantile(widened, 0.25)  # bright at >= 75 % of the angles inside the image
    level[~usable] = np.nan
    in_range = usable & (radii >= radius_range[0]) & (radii <= radius_range[1] + slack)
    if not in_range.any():
        return None
    strong = np.flatnonzero(in_range & (level >= _STRONG * np.nanmax(level[in_range])))
    outer = strong[-1]
    outside = polar[outer + 1 : outer + 2 + int(2 * slack / step)]
    if outside.size == 0 or np.isfinite(outside).mean() < 0.1:
        return None  # no "outside" left in the image: not a ring
    ring_level = np.nanmax(level[max(0, outer - int(4 * slack / step)) : outer + 1])
    return float(radii[outer] - slack), 0.5 * (ring_level + float(np.nanmedian(outside)))


def _edge_points(
    smooth: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    slack: float,
    threshold: float,
    angles: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(angles, radii) of the outermost threshold crossing near ``radius`` along each ray."""
    radii = np.arange(max(0.0, radius - 2 * slack - 2), radius + 2 * slack + 2, _RADIAL_STEP)
    polar = polar_samples(smooth, centre, radii, angles)
    above = np.nan_to_num(polar, nan=-np.inf) >= threshold
    last = radii.size - 1 - np.argmax(above[::-1], axis=0)
    ok = above.any(axis=0) & (last < radii.size - 1) & np.isfinite(polar).all(axis=0)
    cols = np.flatnonzero(ok)
    inner, outer = polar[last[cols], cols], polar[last[cols] + 1, cols]
    r = radii[last[cols]] + (inner - threshold) / (inner - outer) * _RADIAL_STEP
    return angles[cols], r


def _fit_circle(
    x: np.ndarray, y: np.ndarray
) -> tuple[tuple[float, float, float], np.ndarray] | None:
    """Algebraic (Kasa) least-squares circle with iterative outlier rejection.

    Returns ((x_c, y_c, radius), inlier mask) or None if the points fit no circle.
    """
    keep = np.ones(x.size, dtype=bool)
    for _ in range(4):
        if keep.sum() < 5:
            return None
        a = np.column_stack([x[keep], y[keep], np.ones(keep.sum())])
        (d, e, f), *_ = np.linalg.lstsq(a, -(x[keep] ** 2 + y[keep] ** 2), rcond=None)
        xc, yc = -d / 2, -e / 2
        r2 = xc**2 + yc**2 - f
        if r2 <= 0:
            return None
        radius = float(np.sqrt(r2))
        residual = np.abs(np.hypot(x - xc, y - yc) - radius)
        inliers = residual <= max(0.5, 3 * MAD_TO_SIGMA * np.median(residual[keep]))
        if np.array_equal(inliers, keep):
            break
        keep = inliers
    if inliers.sum() < 5 or np.sqrt(np.mean(residual[inliers] ** 2)) > max(1.0, 0.02 * radius):
        return None
    return (float(xc), float(yc), radius), inliers

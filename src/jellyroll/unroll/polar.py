"""Polar resampling of maps around a cell centre, with physical axes.

Conventions (used throughout :mod:`jellyroll.unroll`): an image is indexed ``[row, column]``
with ``x`` = column and ``y`` = row, in pixels, and pixel ``(i, j)`` has its centre at
``(x, y) = (j, i)``. Polar angles are ``atan2(y - y_c, x - x_c)``: 0 deg points along +x
(right), 90 deg along +y (down the rows), so angles increase clockwise on a display with
row 0 at the top. Radii grow outwards from the centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jellyroll.unroll._sampling import (
    checked_radius_range,
    finite_centre,
    polar_samples,
    positive_length,
    positive_pixel_size,
)
from jellyroll.unroll.cell import Cell


@dataclass(frozen=True)
class PolarView:
    """Maps resampled on a polar grid around a cell centre.

    ``data`` is (..., n_radius, n_angle): radius grows down the rows (``radius_um``,
    ascending), the angle along the columns (``angle_deg`` in [0, 360), ascending, i.e.
    clockwise on screen; see the module conventions). ``arc_length_um`` is the arc length
    at ``arc_radius_um`` for each angle column. NaN marks samples outside the image.
    """

    data: np.ndarray
    radius_um: np.ndarray
    angle_deg: np.ndarray
    arc_radius_um: float
    centre: tuple[float, float]
    pixel_size_um: float

    @property
    def arc_length_um(self) -> np.ndarray:
        """(n_angle,) arc length (um) along the circle of radius ``arc_radius_um``."""
        return self.arc_radius_um * np.deg2rad(self.angle_deg)

    def to_xy(self, radius_um: np.ndarray, angle_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image position (x_px, y_px) of polar points (broadcast shapes)."""
        r = np.asarray(radius_um, dtype=float) / self.pixel_size_um
        a = np.deg2rad(np.asarray(angle_deg, dtype=float))
        return self.centre[0] + r * np.cos(a), self.centre[1] + r * np.sin(a)


def unroll_polar(
    maps: np.ndarray,
    centre: Cell | tuple[float, float],
    pixel_size_um: float = 1.0,
    *,
    radius_range_um: tuple[float, float] | None = None,
    n_radii: int | None = None,
    n_angles: int | None = None,
    arc_radius_um: float | None = None,
    order: int = 1,
) -> PolarView:
    """Unroll a map or a stack of maps (..., ny, nx) by a polar transform around ``centre``.

    ``centre`` is a :class:`Cell` or an (x, y) pixel position. The radius range defaults
    to 0 .. the cell radius (a ``Cell``) or to the largest radius inside the image. By
    default there is one radius sample per pixel size and ``n_angles`` is chosen so that
    the angular step is one pixel of arc at ``arc_radius_um`` (default: the outer radius
    of the range). ``order`` is the spline interpolation order (0 nearest, 1 linear).
    """
    maps = np.asarray(maps)
    if maps.ndim < 2:
        raise ValueError(f"maps must be (..., ny, nx), got shape {maps.shape}")
    pixel_size_um = positive_pixel_size(pixel_size_um, "unroll_polar")
    ny, nx = maps.shape[-2:]
    cx, cy = finite_centre(centre.centre if isinstance(centre, Cell) else centre, "unroll_polar")
    if radius_range_um is None:
        if isinstance(centre, Cell):
            r_max_px = centre.radius
        else:
            r_max_px = min(cx, cy, nx - 1 - cx, ny - 1 - cy)
        radius_range_um = (0.0, max(r_max_px, 1.0) * pixel_size_um)
    r0, r1 = checked_radius_range(radius_range_um, "unroll_polar")
    if arc_radius_um is None:
        arc_radius_um = r1
    else:  # a negative one gave negative arc lengths
        arc_radius_um = positive_length(arc_radius_um, "unroll_polar", "arc_radius_um")
    if n_radii is None:
        n_radii = int(np.floor((r1 - r0) / pixel_size_um)) + 1
    if n_angles is None:
        n_angles = max(8, int(np.ceil(2 * np.pi * arc_radius_um / pixel_size_um)))
    if not (n_radii >= 1 and n_angles >= 1):  # else an empty view, or a division by zero
        raise ValueError(
            f"unroll_polar: n_radii and n_angles must be at least 1, got {n_radii}, {n_angles}"
        )
    radius_um = np.linspace(r0, r1, n_radii)
    angle_deg = np.arange(n_angles) * (360.0 / n_angles)
    radii_px = radius_um / pixel_size_um
    angles = np.deg2rad(angle_deg)
    flat = maps.reshape(-1, ny, nx)
    out = np.stack([polar_samples(m, (cx, cy), radii_px, angles, order=order) for m in flat])
    return PolarView(
        data=out.reshape(*maps.shape[:-2], n_radii, n_angles),
        radius_um=radius_um,
        angle_deg=angle_deg,
        arc_radius_um=arc_radius_um,
        centre=(cx, cy),
        pixel_size_um=float(pixel_size_um),
    )

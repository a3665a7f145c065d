"""Per-defect regions shared by the defect modules.

Map coordinates in um as defined in :mod:`jellyroll.conventions`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from jellyroll.conventions import pixel_centres_um, um_to_px

Window = tuple[slice, slice]
"""Rows and columns of a rectangle of a map."""


def distance_um(
    shape: tuple[int, int], pixel_size_um: float, x_um: float, y_um: float
) -> np.ndarray:
    """Distance (um) of each pixel centre of a ``shape`` map from (x_um, y_um), (ny, nx)."""
    return _distances(shape, pixel_size_um, x_um, y_um, (slice(None), slice(None)))


def _distances(
    shape: tuple[int, int], pixel_size_um: float, x_um: float, y_um: float, window: Window
) -> np.ndarray:
    """:func:`distance_um` over the rectangle ``window`` of the map only."""
    rows, columns = window
    return np.hypot(
        pixel_centres_um(shape[1], pixel_size_um)[None, columns] - x_um,
        pixel_centres_um(shape[0], pixel_size_um)[rows, None] - y_um,
    )


def near_um(
    shape: tuple[int, int], pixel_size_um: float, x_um: float, y_um: float, reach_um: float
) -> tuple[Window, np.ndarray]:
    """The rectangle of a ``shape`` map that holds every pixel centre within ``reach_um``
    of (x_um, y_um), and the distance (um) of each of its pixel centres from that point.

    The distances are those of :func:`distance_um` over the rectangle, so masks made from
    them are the whole map's, cut: one defect costs its neighbourhood, not the map (300
    defects on a 1024^2 map took seconds). Empty (0 rows or columns) off the map, or where
    the centre or the reach is not a number (a defect without a fit).
    """
    bounds = []
    for n, centre_um in zip(shape, (y_um, x_um), strict=True):
        centre, reach = float(um_to_px(centre_um, n, pixel_size_um)), reach_um / pixel_size_um
        if not (math.isfinite(centre) and reach >= 0):  # no centre or no size: no pixel
            bounds.append((0, 0))
            continue
        low = int(np.clip(np.floor(centre - reach), 0, n))
        bounds.append((low, int(np.clip(np.ceil(centre + reach) + 1, low, n))))
    (y0, y1), (x0, x1) = bounds
    window = (slice(y0, y1), slice(x0, x1))
    return window, _distances(shape, pixel_size_um, x_um, y_um, window)


def disk_reach_um(radius_um: float, pixel_size_um: float) -> float:
    """Farthest a pixel centre of :func:`within`'s disk lies from its centre (um)."""
    return max(radius_um, 0.5 * pixel_size_um)


def within(distance_um: np.ndarray, radius_um: float, pixel_size_um: float) -> np.ndarray:
    """The pixels of a disk, from their centres' ``distance_um`` to its centre: within
    ``radius_um``, or within half a pixel when the radius is smaller (at least the pixel
    holding the centre)."""
    return distance_um <= disk_reach_um(radius_um, pixel_size_um)


def disk_union(
    shape: tuple[int, int], pixel_size_um: float, table: pd.DataFrame, radius_um: np.ndarray
) -> np.ndarray:
    """(ny, nx) bool: the union of :func:`within`'s disks of ``radius_um`` (one per row)
    around the centres ``x_um``, ``y_um`` of ``table``."""
    union = np.zeros(shape, dtype=bool)
    for x_um, y_um, radius in zip(table["x_um"], table["y_um"], radius_um, strict=True):
        reach = disk_reach_um(radius, pixel_size_um)
        window, distance = near_um(shape, pixel_size_um, x_um, y_um, reach)
        union[window] |= within(distance, radius, pixel_size_um)
    return union


def phase_amounts(phase_maps: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(n_phases, ny, nx) amounts of ``phase_maps`` (name -> (ny, nx) map, one grid), and
    the (ny, nx) bool pixels where every phase has a value: elsewhere (NaN or inf in any
    phase) every amount is 0 (a pixel with LiC6 unknown and LiC12 known counted as pure
    LiC12 in the phases' shares). Negative values are kept: a region's sums are clipped at
    0, not its pixels (clipped pixel by pixel, the zero-mean noise of a reconstruction is
    added to every phase: noise of 0.3 times the signal gave a phase absent from a ring a
    0.10 share)."""
    stack = np.stack([np.asarray(values, dtype=np.float64) for values in phase_maps.values()])
    valued = np.isfinite(stack).all(axis=0)
    return np.where(valued, stack, 0.0), valued


def beyond(distance_um: np.ndarray, radius_um: float, ring_width_um: float) -> np.ndarray:
    """The pixels of the ring of ``ring_width_um`` beyond a disk of ``radius_um``, from
    their centres' ``distance_um`` to its centre."""
    return (distance_um > radius_um) & (distance_um <= radius_um + ring_width_um)


def check_same_grid(what: str, maps: Mapping[str, object]) -> tuple[int, int]:
    """The common (ny, nx) shape of ``maps`` (name -> 2D array or None, None skipped);
    ``ValueError`` naming the first that differs from the first map, and every shape, for
    ``what`` (the function refusing). Maps of another grid were read at the wrong pixels,
    exit 0: a d* map of 2x the pixels (an agglomerate's 20 nm read as the anode's 12 nm), a
    layer map of half the pixels clipped to its edge, a lithiation mask of 2x the pixels
    (its upper-left quarter read as the maps' mask: a defect of 0 pixels)."""
    shapes = {name: np.shape(values) for name, values in maps.items() if values is not None}
    first, reference = next(iter(shapes.items()), ("", ()))
    odd = [(name, shape) for name, shape in shapes.items() if shape != reference]
    if odd:
        name, shape = odd[0]
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(
            f"{what}: {name} has shape {shape}, the {first} {reference}: the maps and masks "
            f"must be on one grid of pixel_size_um pixels ({listed}); resample them onto one "
            "grid first"
        )
    if len(reference) != 2:
        raise ValueError(f"{what}: maps must be 2D (ny, nx), got shape {reference}")
    return reference

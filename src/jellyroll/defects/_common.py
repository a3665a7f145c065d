"""Per-defect regions shared by the defect modules.

Map coordinates in um as defined in :mod:`jellyroll.conventions`.
"""

from __future__ import annotations

import numpy as np

from jellyroll.conventions import pixel_centres_um


def distance_um(
    shape: tuple[int, int], pixel_size_um: float, x_um: float, y_um: float
) -> np.ndarray:
    """Distance (um) of each pixel centre of a ``shape`` map from (x_um, y_um), (ny, nx)."""
    return np.hypot(
        pixel_centres_um(shape[1], pixel_size_um)[None, :] - x_um,
        pixel_centres_um(shape[0], pixel_size_um)[:, None] - y_um,
    )


def disk_and_ring(
    shape: tuple[int, int],
    pixel_size_um: float,
    x_um: float,
    y_um: float,
    radius_um: float,
    ring_width_um: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of a disk around (x_um, y_um) and of the ring of ``ring_width_um`` beyond it.

    The disk holds the pixel centres within ``radius_um``, or within half a pixel when the
    radius is smaller; the ring those farther than ``radius_um`` and at most
    ``radius_um + ring_width_um`` away. Two (ny, nx) bool masks.
    """
    distance = distance_um(shape, pixel_size_um, x_um, y_um)
    return within(distance, radius_um, pixel_size_um), beyond(distance, radius_um, ring_width_um)


def within(distance_um: np.ndarray, radius_um: float, pixel_size_um: float) -> np.ndarray:
    """The pixels of a disk, from their centres' ``distance_um`` to its centre: within
    ``radius_um``, or within half a pixel when the radius is smaller (at least the pixel
    holding the centre)."""
    return distance_um <= max(radius_um, 0.5 * pixel_size_um)


def beyond(distance_um: np.ndarray, radius_um: float, ring_width_um: float) -> np.ndarray:
    """The pixels of the ring of ``ring_width_um`` beyond a disk of ``radius_um``, from
    their centres' ``distance_um`` to its centre."""
    return (distance_um > radius_um) & (distance_um <= radius_um + ring_width_um)

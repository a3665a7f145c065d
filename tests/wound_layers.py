"""Synthetic wound layers on a 301 x 301 image for the tests of the collector tracker and
the bend finder: a 9-turn bright layer (pitch 12 px from a radius of 30 px, Gaussian
profile of sigma 1.2 px) around (150.3, 149.6), with what each test needs at 4.3 turns."""

from __future__ import annotations

import numpy as np

CENTRE = (150.3, 149.6)
"""px (x, y): the spiral's centre."""


def wound_layers(
    *,
    bend_px: float = 0.0,
    bend_width_rad: float = 0.05,
    tear_rad: float = 0.0,
    second_layer: float = 0.0,
    casing: bool = False,
) -> np.ndarray:
    """(301, 301) the layer bent outwards by ``bend_px`` (Gaussian in the winding angle,
    sigma ``bend_width_rad``) at 4.3 turns on that turn only, torn over +-``tear_rad``
    there (none at 0), with a layer of ``second_layer`` its brightness half a pitch
    outwards (none at 0), and a casing ring one pitch beyond the last turn."""
    r0, pitch = 30.0, 12.0
    y, x = np.mgrid[0:301, 0:301].astype(float)
    r = np.hypot(x - CENTRE[0], y - CENTRE[1])
    t = np.mod(np.arctan2(y - CENTRE[1], x - CENTRE[0]), 2 * np.pi)
    image = np.zeros(r.shape)
    for k in range(10):
        winding = t + 2 * np.pi * k
        turn = winding / (2 * np.pi)
        layer = r0 + pitch * turn
        layer += bend_px * np.exp(-0.5 * ((winding - 2 * np.pi * 4.3) / bend_width_rad) ** 2)
        on = turn <= 9.0
        cu = on * np.exp(-0.5 * ((r - layer) / 1.2) ** 2)
        if tear_rad > 0:
            cu *= 1 - np.exp(-0.5 * ((2 * np.pi * (turn - 4.3)) / tear_rad) ** 8)
        if second_layer > 0:
            other = second_layer * on * np.exp(-0.5 * ((r - r0 - pitch * (turn + 0.5)) / 1.2) ** 2)
            cu = np.maximum(cu, other)
        image = np.maximum(image, cu)
    if casing:
        edge = r0 + pitch * 10.0
        image = np.maximum(image, 2.0 * ((r > edge) & (r < edge + 4)))
    return image

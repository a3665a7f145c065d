"""The attenuation slice from the diode sinogram, and self-absorption correction.

The diode sinogram ``-ln(diode / monitor)`` (air level removed by the reduction) is the
line integral of the linear attenuation coefficient: reconstructed like any channel it
gives ``mu`` in 1/um.

Self-absorption model (the twin's, :mod:`jellyroll.phantom.scan`): a pattern scattered
anywhere along a ray leaves the sample attenuated by the whole ray,
``I_measured = exp(-integral mu dl) * integral f dl``. It is exact for forward scattering
and good at 77 keV, where WAXS angles stay small: the exit path, tilted by 2theta from the
beam line, is longer by about ``1 / cos 2theta - 1`` (0.9 % at q = 5 A^-1, 3.4 % at
q = 10 A^-1), which the model neglects. The correction divides every channel of a ray by the ray's
transmission, taken from the reprojected attenuation slice (smoother than the diode and
defined where diode readings are missing) or given directly.
"""

from __future__ import annotations

import numpy as np

from jellyroll.recon.engine import reconstruct
from jellyroll.recon.geometry import ParallelGeometry
from jellyroll.recon.projector import forward

__all__ = ["attenuation_map", "correct_self_absorption", "transmission"]


def attenuation_map(
    attenuation: np.ndarray,
    geometry: ParallelGeometry,
    method: str = "sart",
    iterations: int = 10,
    *,
    nonnegative: bool = True,
    backend: str = "auto",
) -> np.ndarray:
    """``mu`` (1/um) ``(ny, nx)`` float32 from the attenuation sinogram ``(n_angles, n_t)``
    (dimensionless line integrals, NaN = missing). Clipped at 0 by default: ``mu`` is."""
    result = reconstruct(
        attenuation, geometry, method, iterations, nonnegative=nonnegative, backend=backend
    )
    return result.data[..., 0]


def transmission(geometry: ParallelGeometry, mu_per_um: np.ndarray) -> np.ndarray:
    """Transmission ``exp(-A mu)`` of every ray through the map ``(ny, nx)`` (1/um),
    ``(n_angles, n_t)``."""
    return np.exp(-forward(geometry, mu_per_um))


def correct_self_absorption(sinogram: np.ndarray, ray_transmission: np.ndarray) -> np.ndarray:
    """Scattering sinogram ``(n_angles, n_t, nc)`` divided by ``ray_transmission``
    ``(n_angles, n_t)`` (from :func:`transmission`, or ``exp(-attenuation sinogram)``)."""
    if ray_transmission.shape != sinogram.shape[:2]:
        raise ValueError("transmission must be (n_angles, n_t) like the sinogram")
    if np.any(ray_transmission <= 0):
        raise ValueError("transmission must be positive")
    # float32 divisor: no float64 temporary of the cube (GBs at the study's size)
    return np.divide(sinogram, ray_transmission[..., None].astype(np.float32), dtype=np.float32)

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
defined where diode readings are missing) or given directly. The slice reprojected is
SART's (:func:`self_absorption_transmission`), whatever the method of the channels: only a
map fitted to the measured rays reprojects onto them.
"""

from __future__ import annotations

import warnings

import numpy as np

from jellyroll.recon.engine import reconstruct
from jellyroll.recon.geometry import ParallelGeometry
from jellyroll.recon.projector import forward
from jellyroll.sinogram import edge_columns

__all__ = [
    "attenuation_map",
    "attenuation_sinogram_problem",
    "correct_self_absorption",
    "self_absorption_transmission",
    "transmission",
]

MIN_FINITE_SHARE = 0.5
"""Least share of cells with a value for an attenuation sinogram to be used (the reduction
writes none below it)."""
INVERTED_RATIO = 2.0
"""An attenuation sinogram reaching this many times further below its line ends than above
them reads lower in the sample than in air: T or ln T, not -ln T."""
AIR_OFFSET_SHARE = 0.1
"""Largest level of the line ends (air), as a share of the sample's 99th percentile above
it, of an attenuation sinogram taken as relative to air."""


def attenuation_sinogram_problem(attenuation: np.ndarray) -> str | None:
    """Why ``attenuation`` ``(n_angles, n_t)`` is not ``-ln(T)`` relative to air (0 at the
    line ends, :func:`jellyroll.sinogram.edge_columns`, positive in the sample), or None.

    A transmission ``diode / monitor`` (air 1, the sample below it), ``ln(T)`` (the sample
    negative) or ``-ln(diode / monitor)`` without its air level (a diode gain: every ray
    offset) reconstructed, exit 0, into a ``mu`` 3 to 6 times off, and the self-absorption
    correction made the channels 0.66-0.87 off (relative RMSE) instead of 0.07.
    """
    values = attenuation[np.isfinite(attenuation)]
    if values.size == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a projection without line ends
        air = float(
            np.nanmedian(np.nanmedian(attenuation[:, edge_columns(attenuation.shape[1])], axis=1))
        )
    if not np.isfinite(air):
        return None
    above = float(np.percentile(values, 99)) - air
    below = air - float(np.percentile(values, 1))
    if below > INVERTED_RATIO * max(above, 0.0):
        return (
            f"it falls inside the sample to {below:.3g} below its line ends (air, "
            f"{air:.3g}) and rises {max(above, 0.0):.3g} above them: it reads like the "
            "transmission diode / monitor or ln(T), not -ln(diode / monitor)"
        )
    if abs(air) > AIR_OFFSET_SHARE * above:
        return (
            f"its line ends (air) read {air:.3g}, not 0, against {above:.3g} above them in "
            "the sample: -ln(diode / monitor) is not relative to air; divide diode / monitor "
            "by its value in air (the reduction takes the line ends) before taking -ln"
        )
    return None


def attenuation_map(
    attenuation: np.ndarray,
    geometry: ParallelGeometry,
    method: str = "sart",
    iterations: int | None = None,
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


TRANSMISSION_SWEEPS = 10
"""Least SART sweeps of the attenuation map the self-absorption's transmission is
reprojected from (the study's 10: its reprojection is within 1 % of the measured
transmission on an 8 mm cell-like slice, 150 angles)."""


def self_absorption_transmission(
    attenuation: np.ndarray,
    geometry: ParallelGeometry,
    mu_per_um: np.ndarray | None = None,
    method: str = "sart",
    iterations: int = 10,
    *,
    backend: str = "auto",
) -> np.ndarray:
    """Transmission ``(n_angles, n_t)`` of every ray for :func:`correct_self_absorption`:
    the reprojection (:func:`transmission`) of a SART map of the attenuation sinogram
    ``(n_angles, n_t)`` of at least :data:`TRANSMISSION_SWEEPS` sweeps. ``mu_per_um``
    ``(ny, nx)``, the map the stage made with ``method`` and ``iterations``, is that map when
    it is SART's of that many sweeps; otherwise one is reconstructed here.

    An FBP map does not reproject onto the rays it came from: where no ray passes at every
    angle (the corners beyond the detector's circle) it holds 0.3-0.45 of the sample's mu,
    and the rays through them read too little transmission (an 8 mm cell-like slice at
    77 keV: 7 % in the median, up to 25 %), so `reconstruct --method fbp` over-corrected
    the channels (a 48-pixel slice: 6 % too high on average, exit 0). SIRT's map after 10
    iterations, or SART's after one sweep, missed the transmission by up to 40 % along the
    casing."""
    sweeps = max(iterations, TRANSMISSION_SWEEPS) if method == "sart" else TRANSMISSION_SWEEPS
    if mu_per_um is None or method != "sart" or iterations < sweeps:
        mu_per_um = attenuation_map(attenuation, geometry, "sart", sweeps, backend=backend)
    return transmission(geometry, mu_per_um)


def correct_self_absorption(
    sinogram: np.ndarray, ray_transmission: np.ndarray, *, in_place: bool = False
) -> np.ndarray:
    """Scattering sinogram ``(n_angles, n_t, nc)`` divided by ``ray_transmission``
    ``(n_angles, n_t)`` (from :func:`transmission`, or ``exp(-attenuation sinogram)``).

    ``in_place`` divides a writable float32 ``sinogram`` itself and returns it (the same
    values, without a second cube: 2.5 GB at the study's size); other inputs are copied."""
    if ray_transmission.shape != sinogram.shape[:2]:
        raise ValueError("transmission must be (n_angles, n_t) like the sinogram")
    if np.any(ray_transmission <= 0):
        raise ValueError("transmission must be positive")
    # float32 divisor: no float64 temporary of the cube (GBs at the study's size)
    divisor = ray_transmission[..., None].astype(np.float32)
    if in_place and sinogram.dtype == np.float32 and sinogram.flags.writeable:
        return np.divide(sinogram, divisor, out=sinogram, dtype=np.float32)
    return np.divide(sinogram, divisor, dtype=np.float32)

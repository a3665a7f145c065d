"""Fast path for maps: integrate q windows in sinogram space, then reconstruct.

For a linear reconstruction ``R`` (FBP, SART/SIRT without clipping) and integration
weights ``w``, ``sum_q w_q R(P_q) = R(sum_q w_q P_q)``: one reconstruction per window
gives exactly the window integral of the reconstructed volume. The integral is the
trapezoid rule over the q points inside the window, the rule the twin's truth uses.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from jellyroll.recon.engine import reconstruct
from jellyroll.recon.geometry import ParallelGeometry

__all__ = ["integrate_q", "q_window_weights", "reconstruct_q_windows", "select_channels"]


def q_window_weights(q: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Trapezoid weights ``(n_q,)`` (A^-1) of the points of ascending ``q`` within
    ``[lo, hi]``; ValueError when fewer than two points fall inside."""
    q = np.asarray(q, dtype=np.float64)
    inside = np.flatnonzero((q >= lo) & (q <= hi))
    if inside.size < 2:
        raise ValueError(f"q window {lo:g}-{hi:g} holds {inside.size} q point(s); need 2")
    weights = np.zeros(q.size)
    half = 0.5 * np.diff(q[inside])
    weights[inside[:-1]] += half
    weights[inside[1:]] += half
    return weights


def integrate_q(
    sinogram: np.ndarray, q: np.ndarray, windows: Mapping[str, tuple[float, float]]
) -> np.ndarray:
    """Window integrals ``(n_angles, n_t, n_windows)`` of ``(n_angles, n_t, n_q)`` (value x
    A^-1); a ray is NaN in a window where a channel inside it is NaN."""
    out = np.empty((*sinogram.shape[:2], len(windows)), dtype=np.float32)
    for k, (lo, hi) in enumerate(windows.values()):
        weights = q_window_weights(q, lo, hi)
        used = np.flatnonzero(weights)
        out[..., k] = sinogram[..., used] @ weights[used].astype(np.float32)
    return out


def reconstruct_q_windows(
    sinogram: np.ndarray,
    q: np.ndarray,
    windows: Mapping[str, tuple[float, float]],
    geometry: ParallelGeometry,
    method: str = "sart",
    iterations: int = 10,
    **options,
) -> dict[str, np.ndarray]:
    """Map ``(ny, nx)`` of the q integral of every window ``name -> (lo, hi)`` (A^-1),
    reconstructed from the integrated sinogram; ``options`` go to
    :func:`~jellyroll.recon.engine.reconstruct`."""
    integrated = integrate_q(sinogram, q, windows)
    result = reconstruct(integrated, geometry, method, iterations, **options)
    return {name: result.data[..., k] for k, name in enumerate(windows)}


def select_channels(q: np.ndarray, ranges: str) -> np.ndarray:
    """Indices of the channels of ``q`` picked by ``"all"`` or ``"lo:hi,lo:hi,..."`` (A^-1)."""
    q = np.asarray(q)
    if ranges.strip().lower() == "all":
        return np.arange(q.size)
    picked = np.zeros(q.size, dtype=bool)
    for item in ranges.split(","):
        try:
            lo, hi = (float(v) for v in item.split(":"))
        except ValueError as error:
            raise ValueError(f"bad q range {item!r}; write lo:hi in 1/angstrom") from error
        picked |= (q >= min(lo, hi)) & (q <= max(lo, hi))
    if not picked.any():
        raise ValueError(f"no q channel within {ranges}")
    return np.flatnonzero(picked)

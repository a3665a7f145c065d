"""Fast path for maps: integrate q windows in sinogram space, then reconstruct.

For a linear reconstruction ``R`` (FBP, SART/SIRT without clipping) and integration
weights ``w``, ``sum_q w_q R(P_q) = R(sum_q w_q P_q)``: one reconstruction per window
gives exactly the window integral of the reconstructed volume. The weights are those of
the maps stage (:func:`jellyroll.phases.window_weights`: trapezoid rule with the window's
linear background), so the fast path and ``jellyroll maps`` give the same maps.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from jellyroll.phases import TABLE1_WINDOWS, WindowSpec, window_integrals
from jellyroll.recon.engine import reconstruct
from jellyroll.recon.geometry import ParallelGeometry
from jellyroll.recon.options import q_ranges

__all__ = ["reconstruct_q_windows", "select_channels"]


def reconstruct_q_windows(
    sinogram: np.ndarray,
    q: np.ndarray,
    geometry: ParallelGeometry,
    windows: Mapping[str, WindowSpec] = TABLE1_WINDOWS,
    method: str = "sart",
    iterations: int | None = None,
    *,
    shoulder_bins: int = 0,
    **options,
) -> dict[str, np.ndarray]:
    """Map ``(ny, nx)`` of the q integral of every window ``name -> QWindow | (lo, hi)``
    (A^-1), reconstructed from the integrated sinogram (see
    :func:`jellyroll.phases.window_integrals` for the background and ``shoulder_bins``:
    0 by default, as the maps stage, so a plain (lo, hi) window has no background; with
    the phases' default of 2 a plain window's map was 22-88 % off the maps stage's);
    ``options`` go to :func:`~jellyroll.recon.engine.reconstruct`. A window without any
    measured ray (a bin it uses holds no value anywhere) is NaN, as ``jellyroll maps``
    makes it from the channels; the engine leaves such a channel 0, a map of no phase."""
    integrated = window_integrals(q, sinogram, windows, shoulder_bins=shoulder_bins)
    result = reconstruct(integrated, geometry, method, iterations, **options)
    measured = np.isfinite(integrated).any(axis=(0, 1))
    return {
        name: result.data[..., k] if measured[k] else np.full(geometry.shape, np.nan, np.float32)
        for k, name in enumerate(windows)
    }


class NoChannelError(ValueError):
    """No q channel of the axis lies within the ranges asked for."""


def select_channels(q: np.ndarray, ranges: str) -> np.ndarray:
    """Indices of the channels of ``q`` picked by ``"all"`` or ``"lo:hi,lo:hi,..."`` (A^-1).

    Every range must hold a channel (NoChannelError naming it and the axis span otherwise):
    a range beside the axis was dropped while another held channels (``0.5:0.8,7:8`` on a
    0.5-2 A^-1 axis reconstructed 0.5-0.8 alone, exit 0)."""
    q = np.asarray(q)
    parsed = q_ranges(ranges)
    if parsed is None:
        return np.arange(q.size)
    span = f"{np.nanmin(q):.4g}-{np.nanmax(q):.4g}" if np.isfinite(q).any() else "no value"
    picked = np.zeros(q.size, dtype=bool)
    empty = []
    for item, (lo, hi) in zip(ranges.split(","), parsed, strict=True):
        here = (q >= lo) & (q <= hi)
        if not here.any():
            empty.append(item.strip())
        picked |= here
    if empty:
        raise NoChannelError(
            f"no q channel within {','.join(empty)}"
            + (f" (of {ranges})" if picked.any() else "")
            + f" (the q axis spans {span} 1/angstrom)"
        )
    return np.flatnonzero(picked)

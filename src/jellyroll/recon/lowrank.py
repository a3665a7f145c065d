"""Low-rank compression of a sinogram cube along its channel axis.

The cube ``Y`` ``(n_rays, nc)`` (rays = angle x translation, missing rays zeroed) is
written ``Y = Z V^T + E`` with ``V`` ``(nc, r)`` orthonormal (the leading right singular
vectors) and ``Z = Y V``. A reconstruction ``R`` that is linear in the data (FBP, or
SART/SIRT without clipping, for a fixed ray mask and number of iterations) satisfies
``R(Y) = R(Z) V^T + R(E)``: reconstructing the ``r`` columns of ``Z`` and expanding gives
every channel, off by ``R(E)`` only.

``V`` comes from a randomised range finder (Halko, Martinsson & Tropp 2011): the channel
space is probed with ``k`` Gaussian vectors through ``Y^T Y`` (one power step), and the
exact SVD of ``Y`` restricted to that space gives the singular vectors. ``r`` is the
smallest rank whose components hold the requested fraction ``energy`` of ``||Y||^2``; the
probe doubles until it finds one or reaches ``max_rank``. The reported
``residual = ||E|| / ||Y||`` is measured on the data, not estimated. Every pass reads the
cube in blocks of rays, so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_ENERGY", "LowRank", "compress", "expand"]

DEFAULT_ENERGY = 1.0 - 1e-8
"""Fraction of the squared norm kept by default: the dropped part is 1e-4 of the data in
norm, far below the reconstruction error, so the result equals the per-channel one."""

_BLOCK_RAYS = 8192
_OVERSAMPLE = 8


@dataclass(frozen=True)
class LowRank:
    """``components`` ``(n_angles, n_t, r)`` float32 ``= Y V``; ``basis`` ``(nc, r)``
    float32 with orthonormal columns; ``residual`` the relative norm of the dropped part
    ``||Y - Z V^T|| / ||Y||``; ``reached`` whether it holds the requested energy."""

    components: np.ndarray
    basis: np.ndarray
    residual: float
    reached: bool

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])


def _blocks(rays: np.ndarray):
    for start in range(0, rays.shape[0], _BLOCK_RAYS):
        yield slice(start, start + _BLOCK_RAYS), rays[start : start + _BLOCK_RAYS]


def _singular_space(rays: np.ndarray, k: int, rng: np.random.Generator) -> tuple:
    """Leading right singular vectors ``(nc, k)`` and squared singular values ``(k,)``."""
    nc = rays.shape[1]
    probe = rng.standard_normal((nc, k)).astype(np.float32)
    sketch = np.zeros((nc, k))
    for _, block in _blocks(rays):
        sketch += block.T @ (block @ probe)
    space = np.linalg.qr(sketch)[0]
    gram = np.zeros((k, k))
    for _, block in _blocks(rays):
        # float64: the energies decide the rank down to 1e-8 of the total
        projected = block.astype(np.float64) @ space
        gram += projected.T @ projected
    values, rotation = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1]
    vectors = space @ rotation[:, order]
    return vectors, np.clip(values[order], 0.0, None)


def compress(
    sinogram: np.ndarray,
    *,
    energy: float = DEFAULT_ENERGY,
    max_rank: int | None = None,
    seed: int = 0,
) -> LowRank:
    """Compress ``(n_angles, n_t, nc)`` (finite values) to the fewest components holding
    the fraction ``energy`` of its squared norm, searching up to ``max_rank`` (default
    ``nc``); ``reached`` is False when even ``max_rank`` components fall short."""
    if not 0.0 < energy <= 1.0:
        raise ValueError("energy must be within (0, 1]")
    n_a, n_t, nc = sinogram.shape
    limit = nc if max_rank is None else max(1, min(max_rank, nc))
    rays = sinogram.reshape(-1, nc)
    total = sum(float(np.sum(np.square(block, dtype=np.float64))) for _, block in _blocks(rays))
    rng = np.random.default_rng(seed)
    k = min(limit, 16)
    while True:
        vectors, values = _singular_space(rays, min(nc, k + _OVERSAMPLE), rng)
        held = np.cumsum(values) / total if total > 0 else np.ones(values.size)
        enough = np.flatnonzero(held >= energy * (1 - 1e-12))
        if enough.size and enough[0] < limit:
            rank = int(enough[0]) + 1
            break
        if k >= limit:
            rank = limit
            break
        k = min(limit, 2 * k)
    basis = np.ascontiguousarray(vectors[:, :rank], dtype=np.float32)
    components = np.empty((rays.shape[0], rank), dtype=np.float32)
    dropped = 0.0
    for rows, block in _blocks(rays):
        components[rows] = block @ basis
        dropped += float(np.sum(np.square(block - components[rows] @ basis.T, dtype=np.float64)))
    residual = float(np.sqrt(dropped / total)) if total > 0 else 0.0
    reached = residual**2 <= (1.0 - energy) * 1.01 + 1e-14
    return LowRank(components.reshape(n_a, n_t, rank), basis, residual, bool(reached))


def expand(maps: np.ndarray, basis: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[..., c] = maps @ basis[c]``: components ``(ny, nx, r)`` -> ``(ny, nx, nc)``."""
    flat = maps.reshape(-1, maps.shape[-1])
    target = out.reshape(-1, out.shape[-1])
    for rows, block in _blocks(flat):
        np.matmul(block, basis.T, out=target[rows])
    return out

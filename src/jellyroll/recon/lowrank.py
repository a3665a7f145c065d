"""Low-rank compression of a sinogram cube along its channel axis.

The cube ``Y`` ``(n_rays, nc)`` (rays = angle x translation, missing rays zeroed) is
written ``Y = Z B^T + E`` with ``B`` ``(nc, r)`` and ``Z = Y A`` (``A``, ``B`` the leading
right singular vectors of the cube with scaled channels, scaled back). A reconstruction
``R`` that is linear in the data (FBP, or SART/SIRT without clipping, for a fixed ray mask
and number of iterations) satisfies ``R(Y) = R(Z) B^T + R(E)``: reconstructing the ``r``
columns of ``Z`` and expanding gives every channel, off by ``R(E)`` only.

Energy rule (:func:`compress`): every channel is scaled to unit norm, ``W = Y / ||Y_j||``,
so that each weighs the same (on the raw cube a SAXS channel at high q, 1e-6 of the
strongest in intensity, held < 1e-8 of ``||Y||^2`` and was dropped whole). The leading right
singular vectors ``V`` of ``W`` come from a randomised range finder (Halko, Martinsson &
Tropp 2011): the channel space is probed with ``k`` Gaussian vectors through ``W^T W`` (one
power step), and the exact SVD of ``W`` restricted to that space gives the singular
vectors; ``A = V / ||Y_j||``, ``B = V ||Y_j||``. ``r`` is the smallest rank at which every
channel keeps the requested fraction ``energy`` of its squared norm (``sum_k s_k^2 V_jk^2``
over the leading ``k`` of ``W``'s singular values ``s``); the probe doubles until it finds
one or reaches ``max_rank``. The rule is ``reached`` when every channel keeps that fraction
measured on the data, as is the reported ``residual = ||E|| / ||Y||`` of the whole cube.
Every pass reads the cube in blocks of rays, so memory stays bounded.

Noisy cubes (:func:`compress_noisy`): the energy rule keeps the noise, which spreads over
every channel. There the rank is the number of components standing above the noise. The
cube is biwhitened (Landa, Zhang & Kluger 2022, "Biwhitening reveals the rank of a count
matrix", SIAM J. Math. Data Sci. 4, 1420): ray and channel scales ``a``, ``b`` are fitted
(Sinkhorn iterations) to the noise variance ``s_ij^2`` so that ``s_ij^2 / (a_i b_j)`` has
mean 1 along every ray and every channel; the noise of ``W = Y_ij / sqrt(a_i b_j)`` then has
the spectrum of a matrix of unit-variance entries, whose squared singular values end at
the Marchenko-Pastur edge ``(sqrt(n_rays) + sqrt(nc))^2`` (Marchenko & Pastur 1967). Only
the components of ``W`` above that edge are signal that the data can tell from the noise
(the detection threshold of spiked models; Gavish & Donoho 2014, "The optimal hard
threshold for singular values is 4/sqrt(3)", IEEE Trans. Inf. Theory 60, 5040, for the
choice among such thresholds). With ``V`` those channel vectors of ``W``, ``Y`` is kept as
``Z B^T``, ``B = sqrt(b) V`` and ``Z = Y (V / sqrt(b))``: the ray scales cancel, so a
linear reconstruction still expands exactly. Reconstructing ``r`` components instead of
every channel is the subspace approach of hyperspectral tomography (e.g. Zhang et al.,
DLSR). ``s`` is the sinogram's one-sigma error where known; otherwise it is estimated from
the data: the second difference along the channels, ``Y_j - (Y_(j-1) + Y_(j+1)) / 2``,
has variance ``1.5 s^2`` for white noise and is small for a spectrum smooth in q (what
signal it keeps raises the estimate, so it only makes the rank smaller).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_ENERGY",
    "LowRank",
    "biwhitening_scales",
    "compress",
    "compress_noisy",
    "expand",
]

DEFAULT_ENERGY = 1.0 - 1e-8
"""Fraction of every channel's squared norm kept by default: the dropped part is 1e-4 of
each channel in norm, far below the reconstruction error, so the result equals the
per-channel one."""

_BLOCK_RAYS = 8192
_BLOCK_BYTES = 64 * 2**20
"""A block holds at most :data:`_BLOCK_RAYS` rays and about this many bytes in float64 (the
passes make a few float64 copies of a block: at 4000 channels 8192 rays took 262 MB each)."""
_OVERSAMPLE = 8
_SINKHORN_ITERATIONS = 50
_SINKHORN_TOLERANCE = 1e-3
"""Largest relative change of a channel scale at convergence: 0.1 % moves the edge by less."""
_NOISE_POWER_STEPS = 4
"""Power steps of the noise rule: components a few times above a noise bulk need them to
be measured within a few % (one step underestimates them, and they drop below the edge)."""


@dataclass(frozen=True)
class LowRank:
    """``components`` ``(n_angles, n_t, r)`` float32 ``Z`` and ``basis`` ``(nc, r)`` float32
    ``B`` with ``Y ~ Z B^T``; ``residual`` the relative norm of the dropped part
    ``||Y - Z B^T|| / ||Y||``; ``reached`` whether the rule was met. ``rule`` is
    ``energy`` or ``noise``; for ``noise``, ``noise_floor`` is the Marchenko-Pastur edge
    of the biwhitened cube (squared singular value, unit noise), ``noise_energy`` the
    fraction of ``||Y||^2`` the noise is expected to hold and ``noise_from`` where the
    noise came from (``errors`` or ``data``)."""

    components: np.ndarray
    basis: np.ndarray
    residual: float
    reached: bool
    rule: str = "energy"
    noise_floor: float = float("nan")
    noise_energy: float = float("nan")
    noise_from: str = ""

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])


def _blocks(rays: np.ndarray):
    step = max(1, min(_BLOCK_RAYS, _BLOCK_BYTES // (8 * max(1, rays.shape[1]))))
    for start in range(0, rays.shape[0], step):
        yield slice(start, start + step), rays[start : start + step]


def _scaled_blocks(
    rays: np.ndarray, ray_scale: np.ndarray | None, channel_scale: np.ndarray | None
):
    """Blocks of ``ray_scale[:, None] * rays * channel_scale`` (no scaling where None)."""
    for rows, block in _blocks(rays):
        if ray_scale is not None:
            block = block * ray_scale[rows, None]
        if channel_scale is not None:
            block = block * channel_scale
        yield rows, block


def _singular_space(
    rays: np.ndarray,
    k: int,
    rng: np.random.Generator,
    ray_scale: np.ndarray | None = None,
    channel_scale: np.ndarray | None = None,
    power_steps: int = 1,
) -> tuple:
    """Leading right singular vectors ``(nc, k)`` and squared singular values ``(k,)`` of
    the rays scaled as in :func:`_scaled_blocks`, after ``power_steps`` products with
    ``Y^T Y`` (more steps: sharper values where the spectrum is flat, as in a noise bulk)."""
    nc = rays.shape[1]
    space = rng.standard_normal((nc, k))
    for _ in range(power_steps):
        sketch = np.zeros((nc, k))
        for _, block in _scaled_blocks(rays, ray_scale, channel_scale):
            # float64: the channels' shares are needed down to 1e-8 of a channel's norm,
            # and a float32 sketch loses the directions under 1e-7 of the leading one
            block = block.astype(np.float64, copy=False)
            sketch += block.T @ (block @ space)
        space = np.linalg.qr(sketch)[0]
    gram = np.zeros((k, k))
    for _, block in _scaled_blocks(rays, ray_scale, channel_scale):
        # float64: the energies decide the rank down to 1e-8 of the total
        projected = block.astype(np.float64, copy=False) @ space
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
    errors: np.ndarray | None = None,
) -> LowRank:
    """Compress ``(n_angles, n_t, nc)`` (finite values) to the fewest components holding
    the fraction ``energy`` (module docstring), searching up to ``max_rank`` (default
    ``nc``); ``reached`` is False when the data lose more (e.g. even ``max_rank``
    components fall short).

    Without ``errors`` every channel keeps ``energy`` of its own squared norm (the
    channels scaled to one norm): nothing tells a weak channel's structure from noise, and
    on the raw cube a channel at 1e-5 of the strongest held 1e-10 of the squared norm and
    was dropped whole, read as the strong channels' map scaled, exit 0. With ``errors``
    (one-sigma, same shape) the cube keeps ``energy`` of its squared norm, and no channel
    may lose more than :data:`NOISE_GUARD` times its noise (the sum of its squared errors)
    beyond ``1 - energy`` of its own norm: the few components of the whole cube are what
    denoises weak channels, as long as what they drop of one is noise."""
    if not 0.0 < energy <= 1.0:
        raise ValueError("energy must be within (0, 1]")
    n_a, n_t, nc = sinogram.shape
    limit = nc if max_rank is None else max(1, min(max_rank, nc))
    rays = sinogram.reshape(-1, nc)
    norms = _channel_energies(rays)
    live = norms > 0
    norm = np.sqrt(norms)
    total = float(norms.sum())
    # float64: the scaled channels' norms are 1 to 1e-16, the shares below need 1e-8
    channel_scale = np.divide(1.0, norm, out=np.zeros(nc), where=live) if errors is None else None
    rng = np.random.default_rng(seed)
    k = min(limit, 16)
    while True:
        vectors, values = _singular_space(
            rays, min(nc, k + _OVERSAMPLE), rng, channel_scale=channel_scale
        )
        if channel_scale is None:
            held = np.cumsum(values) / total if total > 0 else np.ones(values.size)
        else:
            # the share of its unit norm each channel keeps: sum_k s_k^2 v_jk^2 over the
            # leading k (exact for singular vectors); the rank is that of the worst channel
            shares = np.cumsum(values[:, None] * np.square(vectors[live].T), axis=0)
            held = shares.min(axis=1, initial=1.0)  # a cube of zeros keeps all it has
        enough = np.flatnonzero(held >= energy * (1 - 1e-12))
        if enough.size and enough[0] < limit:
            rank = int(enough[0]) + 1
            break
        if k >= limit:
            rank = limit
            break
        k = min(limit, 2 * k)
    leading = vectors[:, :rank]
    if channel_scale is None:
        analysis = basis = np.ascontiguousarray(leading, dtype=np.float32)
    else:
        analysis = np.ascontiguousarray(leading * channel_scale[:, None], dtype=np.float32)
        basis = np.ascontiguousarray(leading * norm[:, None], dtype=np.float32)
    components, dropped = _project(rays, analysis, basis)
    residual = _relative(dropped, norms)
    # 1 % over the allowance, and float32 rounding of the components
    allowed = (1.0 - energy) * norms
    reached = True
    if errors is not None:
        allowed = np.maximum(allowed, NOISE_GUARD * _channel_noise(errors.reshape(-1, nc)))
        reached = residual**2 <= (1.0 - energy) * 1.01 + 1e-14
    reached = reached and np.all(dropped <= 1.01 * allowed + 1e-12 * norms)
    return LowRank(components.reshape(n_a, n_t, rank), basis, residual, bool(reached))


NOISE_GUARD = 4.0
"""How many times its noise (the sum of its squared errors) a channel may lose to the
energy rule's components. The errors of a reduction understate the noise of the corrected
cube (e.g. self-absorption divided by a noisy transmission): the demo's aged SAXS cube,
whose 7 components give d* within 0.2 nm of the truth, loses 0.96 (median) to 1.18 times
its errors' noise per channel, the SAXS chain test's cube (11 components) 1.03 to 2.29 at
its high-q end; sent to the noise rule (100 components) its d* fell from ~14 nm to 7.6
nm. A weak channel's own structure dropped whole loses 290-1600 times its noise at 1e8
counts per unit (3-16 times at 1e6, where it barely stands out)."""


def _channel_noise(errors: np.ndarray) -> np.ndarray:
    """Sum over the rays of the squared finite errors of every channel ``(nc,)``."""
    noise = np.zeros(errors.shape[1])
    for _, block in _blocks(errors):
        variance = np.square(block, dtype=np.float64)
        noise += np.where(np.isfinite(variance), variance, 0.0).sum(axis=0)
    return noise


def _channel_energies(rays: np.ndarray) -> np.ndarray:
    """Squared norm of every channel ``(nc,)``, float64."""
    energies = np.zeros(rays.shape[1])
    for _, block in _blocks(rays):
        energies += np.sum(np.square(block, dtype=np.float64), axis=0)
    return energies


def _relative(dropped: np.ndarray, energies: np.ndarray) -> float:
    """``sqrt(sum dropped / sum energies)``: the relative norm of the dropped part."""
    total = float(energies.sum())
    return float(np.sqrt(dropped.sum() / total)) if total > 0 else 0.0


def _project(
    rays: np.ndarray, analysis: np.ndarray, basis: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Components ``Z = Y analysis`` ``(n_rays, r)`` and the squared norm of every channel
    of ``Y - Z basis^T`` ``(nc,)``."""
    components = np.empty((rays.shape[0], basis.shape[1]), dtype=np.float32)
    dropped = np.zeros(rays.shape[1])
    for rows, block in _blocks(rays):
        components[rows] = block @ analysis
        dropped += np.sum(np.square(block - components[rows] @ basis.T, dtype=np.float64), 0)
    return components, dropped


def _variance_blocks(rays: np.ndarray, errors: np.ndarray | None):
    """Blocks of the noise variance of every ray and channel, float64, 0 where unknown:
    the squared errors, or the estimate from the second difference along the channels."""
    for rows, block in _blocks(rays):
        if errors is not None:
            variance = np.square(errors[rows], dtype=np.float64)
        else:
            data = block.astype(np.float64)
            variance = np.empty_like(data)
            variance[:, 1:-1] = np.square(data[:, 1:-1] - 0.5 * (data[:, :-2] + data[:, 2:])) / 1.5
            # the end channels have one neighbour: Y_0 - Y_1 has variance 2 s^2
            variance[:, 0] = np.square(data[:, 0] - data[:, 1]) / 2.0
            variance[:, -1] = np.square(data[:, -1] - data[:, -2]) / 2.0
        yield rows, np.where(np.isfinite(variance), variance, 0.0)


def _count_units(
    rays: np.ndarray, errors: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per channel (nc,), the value of one count ``u = sum v / sum |y|`` over its known
    (non-zero) variances ``v`` and their values ``y`` (counting noise has ``v = u |y|``), and
    the smallest variance an unknown one may take: that of one count, ``u^2``, at most the
    mean known variance (errors that are not counting noise). Interpolated in log along the
    channels where none is known. None where no variance is known at all."""
    nc = rays.shape[1]
    variance_sum = np.zeros(nc)
    value_sum = np.zeros(nc)
    known = np.zeros(nc)
    for rows, variance in _variance_blocks(rays, errors):
        measured = variance > 0
        variance_sum += variance.sum(axis=0)
        value_sum += np.where(measured, np.abs(rays[rows].astype(np.float64)), 0.0).sum(0)
        known += measured.sum(axis=0)
    seen = (known > 0) & (value_sum > 0)
    if not seen.any():
        return None
    unit = variance_sum[seen] / value_sum[seen]
    least = np.minimum(np.square(unit), variance_sum[seen] / known[seen])
    channels = np.arange(nc)

    def spread(values: np.ndarray) -> np.ndarray:
        return np.exp(np.interp(channels, channels[seen], np.log(values)))

    return spread(unit), spread(least)


def biwhitening_scales(
    rays: np.ndarray, errors: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Ray and channel variance scales ``a`` ``(n_rays,)``, ``b`` ``(nc,)`` with
    ``mean_j v_ij / (a_i b_j) = mean_i v_ij / (a_i b_j) = 1`` over the rays with noise
    (Sinkhorn iterations; ``a_i = 0`` for rays without any), and the total variance.

    A variance of 0 is unknown, not exact (an azimuthal error is 0 where every pixel of a
    bin reads the same, e.g. no count at all). In a ray with noise it takes the counting
    variance of its value, at least that of one count (:func:`_count_units`). Taken as
    exact, a channel known on a few rays only weighed without bound: one reduced tiny twin
    drove a channel's variance to 1e-83 and overflowed the whitened cube. The total counts
    known variances only.
    """
    n_rays, nc = rays.shape
    ray_var = np.zeros(n_rays)
    channel_var = np.ones(nc)
    total = 0.0
    units = None  # the fill of unknown variances, once the first pass has met one
    gaps = False  # a ray with noise and an unknown variance: most cubes have none
    for iteration in range(_SINKHORN_ITERATIONS):
        column_sum = np.zeros(nc)
        total = 0.0
        for rows, variance in _variance_blocks(rays, errors):
            total += float(variance.sum())
            if units is not None:
                unit, least = units
                unknown = (variance == 0) & (variance > 0).any(axis=1, keepdims=True)
                counting = np.maximum(np.abs(rays[rows].astype(np.float64)) * unit, least)
                variance = np.where(unknown, counting, variance)
            elif iteration == 0 and not gaps:
                per_ray = np.count_nonzero(variance, axis=1)
                gaps = bool(np.any((per_ray > 0) & (per_ray < nc)))
            ray_var[rows] = variance @ (1.0 / channel_var) / nc
            inverse = np.divide(
                1.0, ray_var[rows], out=np.zeros(variance.shape[0]), where=ray_var[rows] > 0
            )
            column_sum += inverse @ variance
        if not ray_var.any():  # no variance known: no ray has noise
            return ray_var, channel_var, total
        if gaps and units is None:  # this pass took the unknowns as exact: fill, start over
            units, gaps = _count_units(rays, errors), False
            if units is not None:
                continue
        updated = column_sum / int(np.count_nonzero(ray_var))
        change = float(np.max(np.abs(updated / channel_var - 1.0)))
        channel_var = updated
        if change < _SINKHORN_TOLERANCE:
            break
    return ray_var, channel_var, total


def compress_noisy(
    sinogram: np.ndarray,
    errors: np.ndarray | None = None,
    *,
    max_rank: int | None = None,
    seed: int = 0,
) -> LowRank:
    """Compress ``(n_angles, n_t, nc)`` (finite values) to its components above the noise
    (module docstring): ``errors`` the one-sigma errors of the same shape (NaN or 0 where
    unknown), or None to estimate the noise from the data (needs >= 3 channels). At most
    ``max_rank`` components (default ``nc``); ``reached`` is False when more stand above
    the noise."""
    n_a, n_t, nc = sinogram.shape
    if errors is not None and errors.shape != sinogram.shape:
        raise ValueError(f"errors are {errors.shape}, the sinogram {sinogram.shape}")
    if errors is None and nc < 3:
        raise ValueError(
            "the noise-aware rank needs the sinogram's errors or >= 3 channels to estimate "
            "the noise from"
        )
    rays = sinogram.reshape(-1, nc)
    error_rays = None if errors is None else errors.reshape(-1, nc)
    ray_var, channel_var, noise_total = biwhitening_scales(rays, error_rays)
    energies = _channel_energies(rays)
    total = float(energies.sum())
    noisy_rays = int(np.count_nonzero(ray_var))
    if noisy_rays == 0:
        raise ValueError("the noise-aware rank needs noise: every error is 0 or missing")
    ray_scale = np.divide(1.0, np.sqrt(ray_var), out=np.zeros_like(ray_var), where=ray_var > 0)
    channel_scale = 1.0 / np.sqrt(channel_var)
    edge = (np.sqrt(noisy_rays) + np.sqrt(nc)) ** 2
    limit = nc if max_rank is None else max(1, min(max_rank, nc))
    rng = np.random.default_rng(seed)
    k = min(limit, 16)
    while True:
        probes = min(nc, k + _OVERSAMPLE)
        vectors, values = _singular_space(
            rays,
            probes,
            rng,
            ray_scale.astype(np.float32),
            channel_scale.astype(np.float32),
            _NOISE_POWER_STEPS,
        )
        above = int(np.count_nonzero(values > edge))
        if above < probes or k >= limit:
            break
        k = min(limit, 2 * k)
    rank = max(1, min(above, limit))
    whitened = vectors[:, :rank]
    analysis = np.ascontiguousarray(whitened * channel_scale[:, None], dtype=np.float32)
    basis = np.ascontiguousarray(whitened / channel_scale[:, None], dtype=np.float32)
    components, dropped = _project(rays, analysis, basis)
    return LowRank(
        components.reshape(n_a, n_t, rank),
        basis,
        _relative(dropped, energies),
        above <= limit,
        rule="noise",
        noise_floor=float(edge),
        noise_energy=noise_total / total if total > 0 else float("inf"),
        noise_from="data" if errors is None else "errors",
    )


def expand(maps: np.ndarray, basis: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[..., c] = maps @ basis[c]``: components ``(ny, nx, r)`` -> ``(ny, nx, nc)``."""
    flat = maps.reshape(-1, maps.shape[-1])
    target = out.reshape(-1, out.shape[-1])
    for rows, block in _blocks(flat):
        np.matmul(block, basis.T, out=target[rows])
    return out

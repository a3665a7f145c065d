"""Reconstruct every channel of an (angle, translation, channel) sinogram.

Backends: ``jellyroll`` (the multi-channel engine: one projector pass serves a chunk of
channels, and linear methods run on the leading components of the cube, see
:mod:`jellyroll.recon.lowrank` and :data:`RANK_RULES`) and ``astra`` (astra-toolbox, one
channel at a time, the study's method). ``auto`` is ``jellyroll``, the faster on CPU.

Missing rays (NaN) are taken out of the reconstruction, per channel: channels are grouped
by their pattern of missing rays (usually one group: a dropped frame is missing in every
channel) and projections without any measured ray are left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import h5py
import numpy as np

from jellyroll.conventions import row_slabs
from jellyroll.io.scratch import VolumeFactory
from jellyroll.recon.astra_backend import astra_reconstruct
from jellyroll.recon.fbp import check_gapped_turn, fbp, is_gapped_turn
from jellyroll.recon.geometry import MIN_COVERAGE_DEG, ParallelGeometry, angular_coverage_deg
from jellyroll.recon.iterative import check_relaxation, sart, sirt
from jellyroll.recon.lowrank import DEFAULT_ENERGY, LowRank, compress, compress_noisy, expand
from jellyroll.recon.options import BackendName, MethodName, RankRule, iterations_of
from jellyroll.recon.projector import as_block

__all__ = [
    "BACKENDS",
    "METHODS",
    "RANK_RULES",
    "FactoredChannels",
    "ReconstructionResult",
    "reconstruct",
]

METHODS: tuple[str, ...] = get_args(MethodName)
BACKENDS: tuple[str, ...] = get_args(BackendName)
RANK_RULES: tuple[str, ...] = get_args(RankRule)
"""How the low-rank step picks its components (or give a number of components):

* ``energy``: the fewest holding the fraction ``energy`` of every channel's squared norm
  (of the cube's when the errors are given, no channel losing more than its noise; see
  :func:`~jellyroll.recon.lowrank.compress`), used when at most a quarter of the channels
  suffice (otherwise every channel, exactly).
* ``noise``: those above the noise floor (:func:`~jellyroll.recon.lowrank.compress_noisy`),
  from the sinogram's errors, or estimated from the data without them.
* ``auto``: ``energy`` when ``energy`` is given; otherwise ``energy`` (default fraction) if
  it needs at most :data:`AUTO_ENERGY_RANK` components and a quarter of the channels
  (noise-free, low-rank cubes: the result equals the per-channel one), else ``noise`` when
  the errors are given (noise spreads the energy over every channel, so the energy rule
  would reconstruct them all, noise included), else every channel: without errors, noise
  and fine structure along q (or channels picked from separate q windows) look alike.
"""
AUTO_ENERGY_RANK = 64

CHUNK_CHANNELS = 128
"""Channels reconstructed (or expanded) at a time by default: what bounds the working
memory of a volume that is not factored."""

Progress = Callable[[float], None]
"""Called with the fraction of the work done, in [0, 1]."""


@dataclass
class ReconstructionResult:
    """``data`` ``(ny, nx, nc)`` float32 (sinogram units / um) on ``geometry``'s grid (an
    HDF5 dataset when :func:`reconstruct`'s ``volume`` made one).

    ``rank`` is the largest number of components reconstructed for a channel group (None:
    every channel reconstructed on its own) and ``residual`` the largest relative norm of
    the sinogram part the truncation dropped (0 when exact). ``rank_rule``, ``noise_floor``,
    ``noise_energy`` and ``noise_from`` are those of the largest group's
    :class:`~jellyroll.recon.lowrank.LowRank` (empty / NaN without low rank or noise rule).
    With ``basis`` ``(nc, r)`` (a factored result) ``data`` holds the ``r`` component maps
    ``(ny, nx, r)`` instead: :meth:`channels` expands them.
    """

    data: np.ndarray | h5py.Dataset
    geometry: ParallelGeometry
    method: str
    iterations: int
    backend: str
    nonnegative: bool
    n_channels: int
    rank: int | None = None
    residual: float = 0.0
    seconds: float = 0.0
    groups: int = 1
    rank_rule: str = ""
    noise_floor: float = float("nan")
    noise_energy: float = float("nan")
    noise_from: str = ""
    basis: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(ny, nx, nc)`` of the channels, expanded or not (known once ``data``'s scratch
        file is closed)."""
        return (*self.geometry.shape, self.n_channels)

    @property
    def x_um(self) -> np.ndarray:
        return self.geometry.x_um

    @property
    def y_um(self) -> np.ndarray:
        return self.geometry.y_um

    def channels(self, picked: np.ndarray | slice) -> np.ndarray:
        """The channels ``picked`` ``(ny, nx, k)`` float32, expanded if factored."""
        if self.basis is None:
            return self.data[..., picked]
        return _expanded(self.data, self.basis[picked])

    def cube(self) -> np.ndarray | FactoredChannels:
        """Every channel ``(ny, nx, nc)``: ``data``, or the factored result as an array-like
        expanded row slab by row slab when read (:class:`FactoredChannels`)."""
        return self.data if self.basis is None else FactoredChannels(self.data, self.basis)

    def blank(self, channels: np.ndarray) -> None:
        """Set the ``channels`` (nc,) bool to NaN (those without any measured value)."""
        if self.basis is None:  # indices: an HDF5 dataset takes no boolean mask here
            self.data[..., np.flatnonzero(channels)] = np.nan
        else:
            self.basis[channels] = np.nan

    def attrs(self) -> dict:
        """Scalars describing the reconstruction, for the run file."""
        return {
            "method": self.method,
            "iterations": self.iterations if self.method != "fbp" else 0,
            "backend": self.backend,
            "nonnegative": self.nonnegative,
            "pixel_size_um": self.geometry.pixel_size_um,
            "low_rank": self.rank if self.rank is not None else -1,
            "low_rank_residual": self.residual,
            "low_rank_rule": self.rank_rule,
            "low_rank_discarded_energy": self.residual**2,
            "low_rank_noise_floor": self.noise_floor,
            "low_rank_noise_energy": self.noise_energy,
            "low_rank_noise_from": self.noise_from,
            "mask_groups": self.groups,
            "seconds": self.seconds,
        }


def _expanded(maps: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Channels ``(..., nc)`` float32 of component ``maps`` ``(..., r)`` on ``basis`` (nc, r)."""
    basis = np.ascontiguousarray(basis)
    return expand(maps, basis, np.empty((*maps.shape[:-1], basis.shape[0]), np.float32))


class FactoredChannels:
    """The channels ``(ny, nx, nc)`` float32 of a factored result, never held whole:
    ``[rows]`` (a slice of the first axis) expands those rows only, so a writer that takes
    row slabs (:func:`jellyroll.io.nexus.write_nxdata`) stores the cube in bounded memory."""

    dtype = np.dtype(np.float32)
    ndim = 3

    def __init__(self, maps: np.ndarray, basis: np.ndarray) -> None:
        self.maps, self.basis = maps, np.ascontiguousarray(basis, dtype=np.float32)
        self.shape = (*maps.shape[:2], self.basis.shape[0])

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice):
            raise TypeError("a factored cube is read by slices of its rows")
        return _expanded(self.maps[rows], self.basis)


def _check_measured_coverage(angles_deg: np.ndarray, measured: np.ndarray) -> None:
    """ValueError unless the projections with a measured ray (``measured`` (n_angles,)
    bool) cover :data:`MIN_COVERAGE_DEG`: a scan whose frames past the first 8 of 180 deg
    were never written reconstructed its 5 projections, exit 0."""
    coverage = angular_coverage_deg(angles_deg[measured])
    if coverage < MIN_COVERAGE_DEG:
        raise ValueError(
            f"{int(measured.sum())} of the {measured.size} projections hold a measured ray "
            f"(the others are missing): they cover {coverage:.3g} deg, a slice needs 180 (at "
            f"least {MIN_COVERAGE_DEG:g}); reduce the scan again and check its warnings "
            "(frames missing), or measure the angles that lack"
        )


def _unmeasured_set(
    values: np.ndarray, measured: np.ndarray, fill: float, in_place: bool
) -> np.ndarray:
    """``values`` (n_angles, n_t, n) with the rays not ``measured`` (n_angles, n_t) set to
    ``fill``: in place when ``in_place`` (a dropped frame otherwise copies the cube: 2.4 GB,
    and as much for its errors, at the study's size), else a copy."""
    if not in_place:
        return np.where(measured[..., None], values, values.dtype.type(fill))
    values[~measured] = fill
    return values


def _mask_groups(finite: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Channels sharing one pattern of measured rays: [(ray mask, channel indices)]."""
    nc = finite.shape[2]
    if finite.all():
        return [(np.ones(finite.shape[:2], dtype=bool), np.arange(nc))]
    packed = np.packbits(finite.reshape(-1, nc), axis=0)
    _, first, inverse = np.unique(packed.T, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    return [(finite[..., k], np.flatnonzero(inverse == g)) for g, k in enumerate(first)]


@dataclass
class _Job:
    """One group of channels with a common ray mask, on its own (sub)geometry."""

    engine: str
    geometry: ParallelGeometry
    mask: np.ndarray  # (n_angles kept, n_t)
    method: str
    iterations: int
    relaxation: float
    nonnegative: bool
    report: Callable[[float], None]  # fraction of this job done

    def solve(self, block: np.ndarray, share: float, before: float) -> np.ndarray:
        """Reconstruct ``block`` ``(n_angles kept, n_t, n)``; it is ``share`` of the job."""
        if self.engine == "astra":
            return astra_reconstruct(
                self.geometry,
                block,
                self.method,
                self.iterations,
                mask=self.mask,
                relaxation=self.relaxation,
                nonnegative=self.nonnegative,
                callback=lambda k: self.report(before + share * k / block.shape[2]),
            )
        if self.method == "fbp":  # linear: :func:`reconstruct` clips the channels once
            result = fbp(self.geometry, block, mask=self.mask)
            self.report(before + share)
            return result
        solver = sart if self.method == "sart" else sirt
        return solver(
            self.geometry,
            block,
            self.iterations,
            mask=self.mask,
            relaxation=self.relaxation,
            nonnegative=self.nonnegative,
            callback=lambda k: self.report(before + share * k / self.iterations),
        )

    def chunked(
        self, data: np.ndarray, chunk: int, out: np.ndarray | h5py.Dataset
    ) -> np.ndarray | h5py.Dataset:
        """Reconstruct the channels of ``data`` into ``out`` ``(ny, nx, n)``, ``chunk`` at
        a time."""
        n = data.shape[2]
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            block = np.ascontiguousarray(data[..., lo:hi])
            out[..., lo:hi] = self.solve(block, (hi - lo) / n, lo / n)
        return out


def _low_rank(
    data: np.ndarray,
    errors: np.ndarray | None,
    rank: str | int,
    energy: float | None,
    max_rank: int | None,
) -> LowRank | None:
    """The components to reconstruct instead of the channels of ``data``, or None when
    every channel is to be reconstructed (see :data:`RANK_RULES`)."""
    nc = data.shape[2]
    if not isinstance(rank, str):
        return compress(data, energy=1.0, max_rank=rank, errors=errors)
    if max_rank is not None:  # a cap used as is
        return compress(data, energy=energy or DEFAULT_ENERGY, max_rank=max_rank, errors=errors)
    quarter = max(1, nc // 4)
    if rank == "energy" or (rank == "auto" and energy is not None):
        found = compress(data, energy=energy or DEFAULT_ENERGY, max_rank=quarter, errors=errors)
        return found if found.reached else None
    if rank == "auto":
        found = compress(
            data, energy=DEFAULT_ENERGY, max_rank=min(quarter, AUTO_ENERGY_RANK), errors=errors
        )
        if found.reached:
            return found
        # noise is told from fine structure along q by its errors only
        if errors is None or not any(np.any(rows > 0) for rows in errors):  # by angle
            return None
    found = compress_noisy(data, errors)
    return found if found.rank < nc else None


def check_method(method: str, backend: str, iterations: int) -> None:
    """Raise ValueError for an unknown method or backend, or < 1 iteration of SART/SIRT."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if method != "fbp" and iterations < 1:
        raise ValueError("iterations must be >= 1")


def check_rank(rank: str | int) -> None:
    """Raise ValueError for a rank that is neither a rule of :data:`RANK_RULES` nor >= 1."""
    if isinstance(rank, str):
        if rank not in RANK_RULES:
            raise ValueError(
                f"unknown rank {rank!r}; choose one of {', '.join(RANK_RULES)} or a number"
            )
    elif int(rank) != rank or rank < 1:
        raise ValueError(f"rank must be a rule or a number of components >= 1, got {rank!r}")


def reconstruct(
    sinogram: np.ndarray,
    geometry: ParallelGeometry,
    method: str = "sart",
    iterations: int | None = None,
    *,
    backend: str = "auto",
    nonnegative: bool = False,
    relaxation: float = 1.0,
    low_rank: bool = True,
    rank: str | int = "auto",
    energy: float | None = None,
    max_rank: int | None = None,
    errors: np.ndarray | None = None,
    chunk_channels: int = CHUNK_CHANNELS,
    factored: bool = False,
    volume: VolumeFactory | None = None,
    overwrite_input: bool = False,
    progress: Progress | None = None,
) -> ReconstructionResult:
    """Reconstruct ``sinogram`` ``(n_angles, n_t, nc)`` (value x um, NaN = missing) into
    ``(ny, nx, nc)`` (value / um).

    ``method`` ``fbp``, ``sart`` or ``sirt`` (``iterations`` sweeps, from zero, of the two
    :func:`~jellyroll.recon.iterative.sweep_strings`; default the method's
    :data:`~jellyroll.recon.options.DEFAULT_ITERATIONS`); ``nonnegative`` clips at 0
    after every update. With the ``jellyroll`` backend, ``low_rank`` reconstructs only the
    leading components of the cube, then expands them (linear methods only, so not with
    ``nonnegative``): ``rank`` is a rule of :data:`RANK_RULES` or a number of components;
    ``energy`` the fraction of the squared norm kept by the energy rule (default
    :data:`~jellyroll.recon.lowrank.DEFAULT_ENERGY`); ``max_rank`` caps the components of
    the energy rule, used as is; ``errors`` the sinogram's one-sigma errors (same shape),
    which the noise rule whitens by (without them it estimates the noise from the data).
    Channels are processed ``chunk_channels`` at a time, which bounds the working memory.
    ``factored`` keeps a low-rank result as component maps and basis (without the
    ``(ny, nx, nc)`` volume, 8 GB at the study's size) when one channel group holds every
    measured ray (channels with none get basis rows of 0); otherwise the volume is
    returned as usual. ``volume`` makes that volume, zero-filled (default: an ndarray; an
    HDF5 dataset from :func:`jellyroll.io.scratch.scratch_volumes` keeps it out of memory:
    the channels are written into it ``chunk_channels`` at a time). ``overwrite_input``
    lets the missing rays of ``sinogram`` and ``errors`` be set (to 0 and NaN) in place
    instead of in copies of the cube, when the caller no longer needs them.
    """
    check_method(method, backend, 1 if iterations is None else iterations)
    iterations = iterations_of(method, iterations)
    check_rank(rank)
    if method != "fbp":  # before any work: a group's job would refuse it only then
        check_relaxation(relaxation)
    if chunk_channels < 1:  # a negative one reconstructed nothing and returned zeros
        raise ValueError(f"chunk_channels must be >= 1, got {chunk_channels}")
    if errors is not None and np.shape(errors) != np.shape(sinogram):
        raise ValueError(f"errors are {np.shape(errors)}, the sinogram {np.shape(sinogram)}")
    sino, _ = as_block(sinogram, 3, "sinogram")
    if errors is not None:  # with the channel axis of a single-channel sinogram too
        errors, _ = as_block(errors, 3, "errors")
    if sino.shape[:2] != (geometry.n_angles, geometry.n_t):
        wanted = (geometry.n_angles, geometry.n_t)
        raise ValueError(f"sinogram is {sino.shape}, the geometry wants ({wanted}, nc)")
    if method == "fbp" and is_gapped_turn(geometry.angles_deg):  # before any work
        # the channels with a value summed, a slab of rows at a time (a plain sum: one empty
        # channel made every total NaN, no projection was left, and the check passed)
        totals = np.zeros(sino.shape[:2])
        measured = np.zeros(sino.shape[0], bool)  # rows of missing frames left out
        for rows, slab in row_slabs(sino):
            totals[rows] = np.nansum(slab, axis=2, dtype=np.float64)
            measured[rows] = np.isfinite(slab).any(axis=(1, 2))
        check_gapped_turn(geometry.subset(measured), totals[measured])
    engine = "jellyroll" if backend == "auto" else backend
    # FBP is linear and its clipping a last step (done once, below); SART/SIRT clip every update
    clip_updates = nonnegative and method != "fbp"
    start = time.perf_counter()
    nc = sino.shape[2]
    groups = _mask_groups(np.isfinite(sino))
    # factored: one group with measured rays (channels without any stay 0), and no
    # clipping (it would act on the expanded channels)
    measured_groups = sum(1 for mask, _ in groups if mask.any())
    factored = factored and measured_groups == 1 and engine == "jellyroll" and not nonnegative
    made: list[np.ndarray | h5py.Dataset] = []

    def whole_volume() -> np.ndarray | h5py.Dataset:
        """The (ny, nx, nc) result, made on first use (never, for a factored one)."""
        if not made:
            shape = (*geometry.shape, nc)
            made.append(volume(shape) if volume is not None else np.zeros(shape, np.float32))
        return made[0]

    components: np.ndarray | None = None  # the maps of a factored result
    basis = None
    ranks: list[int] = []
    residual = 0.0
    largest: LowRank | None = None
    done = 0
    for mask, channels in groups:
        keep = mask.any(axis=1)
        whole = channels.size == nc
        weight, base = channels.size / nc, done / nc
        done += channels.size

        def report(fraction: float, weight: float = weight, base: float = base) -> None:
            if progress is not None:
                progress(base + weight * fraction)

        if not keep.any():  # nothing measured: these channels stay 0
            report(1.0)
            continue
        if not keep.all():  # the angles were checked with every projection in them
            _check_measured_coverage(geometry.angles_deg, keep)
        # views of the input where possible: a cube can take much of the memory
        data = sino if keep.all() else sino[keep]
        data = data if whole else data[..., channels]
        measured = mask[keep]
        sigma = None
        if errors is not None:
            sigma = errors if keep.all() else errors[keep]
            sigma = sigma if whole else sigma[..., channels]
        if not measured.all():
            # a view of the input is written only when allowed; the other cases are copies
            own = overwrite_input or not (keep.all() and whole)
            data = _unmeasured_set(data, measured, 0.0, own)
            if sigma is not None:
                sigma = _unmeasured_set(sigma, measured, np.nan, own)
        job = _Job(
            engine,
            geometry.subset(keep),
            measured,
            method,
            iterations,
            relaxation,
            clip_updates,
            report,
        )
        compressed = None
        if engine != "astra" and low_rank and not clip_updates and channels.size > 1:
            compressed = _low_rank(data, sigma, rank, energy, max_rank)
        if compressed is not None:
            ranks.append(compressed.rank)
            residual = max(residual, compressed.residual)
            if largest is None or channels.size > largest.basis.shape[0]:
                largest = compressed
            maps = np.empty((*geometry.shape, compressed.rank), dtype=np.float32)
            job.chunked(compressed.components, chunk_channels, maps)
            if factored:
                components, basis = maps, np.zeros((nc, compressed.rank), np.float32)
                basis[channels] = compressed.basis
                continue
        # a group of every channel goes straight into the volume (its indices are 0..nc-1),
        # chunk_channels at a time
        target = whole_volume() if whole else np.empty((*geometry.shape, channels.size), np.float32)
        if compressed is not None:
            for lo in range(0, channels.size, chunk_channels):
                part = slice(lo, lo + chunk_channels)
                target[..., part] = _expanded(maps, compressed.basis[part])
        else:
            job.chunked(data, chunk_channels, target)
        if not whole:
            whole_volume()[..., channels] = target
    # (a volume of 0 when nothing was measured)
    result = components if components is not None else whole_volume()
    if nonnegative and method == "fbp":
        for rows, slab in row_slabs(result):
            result[rows] = np.maximum(slab, 0)
    return ReconstructionResult(
        data=result,
        geometry=geometry,
        method=method,
        iterations=iterations,
        backend=engine,
        nonnegative=nonnegative,
        n_channels=nc,
        rank=max(ranks) if ranks else None,
        residual=residual,
        seconds=time.perf_counter() - start,
        groups=len(groups),
        basis=basis,
        rank_rule=largest.rule if largest is not None else "",
        noise_floor=largest.noise_floor if largest is not None else float("nan"),
        noise_energy=largest.noise_energy if largest is not None else float("nan"),
        noise_from=largest.noise_from if largest is not None else "",
    )

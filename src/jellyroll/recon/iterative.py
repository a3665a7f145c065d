"""SART and SIRT on all channels at once (jellyroll's engine).

Both solve ``A x = P`` for the line model ``A`` (:mod:`jellyroll.recon.projector`) with
the usual normalisations: ``R = 1 / (ray length inside the map)`` per measured ray
(0 for missing rays, which therefore never enter an update) and ``C = 1 / (A^T m)`` per
pixel, ``m`` the measured-ray mask.

* SIRT: ``x <- x + lambda C A^T R (P - A x)`` per iteration.
* SART: the same, one projection at a time, ``C`` restricted to that projection; one
  iteration is one sweep over all projections, in ``order``; by default two strings of
  the projections (:func:`sweep_strings`), each swept from the same map, the maps then
  averaged (string averaging), so that the map does not depend on the sense of rotation
  (a mirrored scan gives the mirrored map). Channels are split into one
  block per thread, each swept independently; with fewer than
  :data:`CHANNELS_PER_THREAD` channels per thread, bands of rows of the map are swept in
  parallel instead (the same updates; the projections' sums differ by float32 rounding).
  SIRT's projector passes are parallel over tiles of the map whatever the channels.

Without ``nonnegative`` (which clips at 0 after every update) both are linear in ``P``
for a fixed mask and number of iterations: channels may be combined before and after.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jellyroll.recon.geometry import ParallelGeometry
from jellyroll.recon.projector import (
    COPIES,
    AngleTable,
    as_block,
    compiled_sart_sweep,
    footprint_taps,
    gather,
    n_parts,
    ray_lengths,
    scatter,
)

__all__ = [
    "check_relaxation",
    "projection_order",
    "sart",
    "sirt",
    "sweep_order",
    "sweep_strings",
]

Callback = Callable[[int], None]
"""Called with the number of iterations done."""


def projection_order(n_angles: int) -> np.ndarray:
    """SART's default order: successive projections far apart (golden-ratio sequence).

    ``order[k]`` is the rank of ``frac(k * 0.618...)``; on a sorted, equally spaced angle
    axis consecutive projections are ~0.38 x 180 deg apart, and every stretch of the
    sweep covers the half circle evenly.
    """
    golden = (np.sqrt(5.0) - 1.0) / 2.0
    return np.argsort(np.argsort(np.mod(np.arange(n_angles) * golden, 1.0), kind="stable"))


def sweep_order(angles_deg: np.ndarray) -> np.ndarray:
    """SART's order of the projections ``angles_deg`` ``(n_angles,)`` given in any order:
    :func:`projection_order` over the angles sorted ascending, as indices into
    ``angles_deg`` (the same order for sorted angles). Over the rows as given, a sinogram
    whose angles were not sorted swept them in no particular order and reconstructed other
    maps (10 sweeps: 11-18 % of the largest value apart); the order of each of
    :func:`sweep_strings`."""
    by_angle = np.argsort(np.asarray(angles_deg), kind="stable")
    return by_angle[projection_order(by_angle.size)]


SECTOR_DEG = 11.25
"""Width of the sectors of folded angles (modulo 180 deg) that alternate between SART's
two strings (:func:`sweep_strings`): 180 / 16, an even number of sectors, so that the
mirror ``theta -> -theta`` takes every sector to one of the other parity."""
EDGE_DEG = 1e-6
"""Angles within this of a sector's edge (deg) are taken as on it: the mirror of an edge
is an edge, so which side they fall on is not left to rounding."""


def _string(angles_deg: np.ndarray) -> np.ndarray:
    """The projections of the even sectors of :data:`SECTOR_DEG` (modulo 180 deg), in
    :func:`sweep_order`, as indices into ``angles_deg``. On an edge: those under 90 deg,
    and 0 and 90 deg (their own mirrors) always."""
    folded = np.mod(angles_deg, 180.0)
    offset = np.mod(folded, SECTOR_DEG)
    edge = np.minimum(offset, SECTOR_DEG - offset) <= EDGE_DEG
    own_mirror = np.min(np.abs(folded[:, None] - [0.0, 90.0, 180.0]), axis=1) <= EDGE_DEG
    even = np.floor(folded / SECTOR_DEG).astype(np.int64) % 2 == 0
    taken = np.where(edge, (folded < 90.0) | own_mirror, even)
    order = sweep_order(angles_deg)
    return order[taken[order]]


def sweep_strings(angles_deg: np.ndarray, whole: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """SART's two strings of the projections ``angles_deg`` ``(n_angles,)`` (deg), indices
    into it: those of the even sectors of :data:`SECTOR_DEG` (modulo 180 deg) in
    :func:`sweep_order` of the angles, and by the mirror of that rule those whose negated
    angle lies in an even sector (the odd sectors) in :func:`sweep_order` of the negated
    angles. On a sector's edge a projection goes to the string where its angle is under
    90 deg; 0 and 90 deg, their own mirrors, to both. Either string may be empty (SART is
    then a plain sweep). ``whole``: every projection in both strings, in those two orders
    (for SART clipped at 0, which converges at half the speed when each projection's
    update is shared between two strings: the attenuation map of a disk 0.0497 of its
    level from the truth after 5 sweeps, rms, against 0.0398 for one sweep and 0.0402
    for whole strings).

    The mirrored scan (angles negated) swaps the two strings, so SART's map mirrors with
    the sample: a sweep in one order is no mirror of the sweep over the negated angles
    (the last projections weigh most), and a scan taken with the stage turning the other
    way reconstructed to a map 4-8 % (rms, of the map's rms) from the mirror of the
    first, exit 0."""
    angles = np.asarray(angles_deg, dtype=np.float64)
    if whole:
        return sweep_order(angles), sweep_order(-angles)
    return _string(angles), _string(-angles)


def check_relaxation(relaxation: float) -> None:
    """ValueError unless ``0 < relaxation < 2``: SART and SIRT converge there only (0 left
    the map at 0, and 2.5 or a negative value diverged to NaN, all without an error)."""
    if not 0.0 < relaxation < 2.0:
        raise ValueError(f"relaxation must be within (0, 2), got {relaxation!r}")


def _prepare(
    geometry: ParallelGeometry, sinogram: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(zero-filled data, ray mask as float32, R = mask / ray length, single channel)."""
    sino, single = as_block(sinogram, 3, "sinogram")
    if sino.shape[:2] != (geometry.n_angles, geometry.n_t):
        raise ValueError(
            f"sinogram is {sino.shape[:2]}, the geometry wants {geometry.n_angles, geometry.n_t}"
        )
    finite = np.isfinite(sino)
    if mask is None:
        mask = finite.all(axis=2)
    data = np.where(mask[..., None] & finite, sino, np.float32(0))
    lengths = ray_lengths(geometry)
    measured = mask & (lengths > 0)
    inv_length = np.zeros_like(lengths)
    inv_length[measured] = 1.0 / lengths[measured]
    return data, measured.astype(np.float32), inv_length, single


def sirt(
    geometry: ParallelGeometry,
    sinogram: np.ndarray,
    iterations: int,
    *,
    mask: np.ndarray | None = None,
    relaxation: float = 1.0,
    nonnegative: bool = False,
    callback: Callback | None = None,
) -> np.ndarray:
    """SIRT from zero: ``(n_angles, n_t[, nc])`` (value x um) -> ``(ny, nx[, nc])`` (value / um).

    ``mask`` ``(n_angles, n_t)`` marks measured rays (default: finite in every channel).
    """
    check_relaxation(relaxation)
    data, measured, inv_length, single = _prepare(geometry, sinogram, mask)
    table = AngleTable(geometry)
    nc = data.shape[2]
    coverage = np.zeros((*geometry.shape, 1), dtype=np.float32)
    gather(measured[..., None], table.values, *table.grid, coverage)
    inv_coverage = np.divide(
        np.float32(relaxation), coverage, out=np.zeros_like(coverage), where=coverage > 0
    )
    x = np.zeros((*geometry.shape, nc), dtype=np.float32)
    parts = np.empty((n_parts(), geometry.n_angles, geometry.n_t, nc), dtype=np.float32)
    update = np.empty_like(x)
    for done in range(1, iterations + 1):
        parts[:] = 0
        scatter(x, table.values, *table.grid, parts)
        residual = (data - parts.sum(axis=0)) * inv_length[..., None]
        update[:] = 0
        gather(residual, table.values, *table.grid, update)
        x += update * inv_coverage
        if nonnegative:
            np.maximum(x, 0, out=x)
        if callback is not None:
            callback(done)
    return x[..., 0] if single else x


CHANNELS_PER_THREAD = 8
"""With fewer channels per thread SART sweeps bands of rows in parallel (all channels in
each), not a block of channels per thread: the threads then share the per-pixel geometry
work instead of each repeating it for a handful of channels."""
BAND_MIN_PIXELS = 256 * 256
"""Bands only for maps of at least this many pixels: the threads meet after every
projection, which costs more than a small map's pass when the machine is busy (measured:
~20 ms per meeting against a few ms per pass at 104 x 104 on 2 busy cores)."""
BANDS_PER_THREAD = 4
"""Bands of rows per thread: some slack for threads that the machine slows down."""
LANES = (4, 16)
"""Widths of SART's vector operations (:mod:`jellyroll.recon.lanes`), in float32: a group
of channels is padded to the first that holds it, or to a multiple of the last. A pixel's
work costs about the same for 1 to 4 channels (one SSE vector) and for 16 (one AVX-512
vector); each width is a kernel compiled on first use (~15 s, then cached on disk)."""


def sart_lanes(width: int) -> int:
    """Lanes for a group of ``width`` channels (:data:`LANES`)."""
    return next((lanes for lanes in LANES if width <= lanes), LANES[-1])


def sart(
    geometry: ParallelGeometry,
    sinogram: np.ndarray,
    iterations: int,
    *,
    mask: np.ndarray | None = None,
    relaxation: float = 1.0,
    nonnegative: bool = False,
    order: np.ndarray | None = None,
    callback: Callback | None = None,
) -> np.ndarray:
    """SART from zero, ``iterations`` sweeps: ``(n_angles, n_t[, nc])`` -> ``(ny, nx[, nc])``.

    Each sweep runs over the projections in ``order`` when given; by default it sweeps
    each of the two :func:`sweep_strings` (``whole`` when ``nonnegative``) from the same
    map and takes their maps' mean, weighted by the strings' numbers of projections
    (string averaging: the work of one sweep, of two when ``nonnegative``, and one more
    map in memory), which gives the mirrored map for a mirrored scan to float32 rounding
    and does not depend on the order of the sinogram's rows.

    ``mask`` as for :func:`sirt`.
    """
    check_relaxation(relaxation)
    data, measured, inv_length, single = _prepare(geometry, sinogram, mask)
    table = AngleTable(geometry)
    if order is None:
        strings = [s for s in sweep_strings(geometry.angles_deg, nonnegative) if s.size]
    else:
        strings = [np.asarray(order)]
    nc = data.shape[2]
    threads = n_parts()
    pixels = geometry.shape[0] * geometry.shape[1]
    if nc < CHANNELS_PER_THREAD * threads and pixels >= BAND_MIN_PIXELS:
        # few channels: every thread sweeps a band of rows of the map, all channels in each
        groups, bands = 1, max(1, min(geometry.shape[0], BANDS_PER_THREAD * threads))
    else:
        groups, bands = min(threads, nc), 1
    lanes = sart_lanes(-(-nc // groups))
    width = -(-nc // (groups * lanes)) * lanes
    # channels split into one contiguous block per group, zero-padded to equal widths
    blocks = np.zeros((groups, geometry.n_angles, geometry.n_t, width), dtype=np.float32)
    for g in range(groups):
        part = data[..., g * width : (g + 1) * width]
        blocks[g, ..., : part.shape[2]] = part
    maps = [np.zeros((groups, *geometry.shape, width), dtype=np.float32) for _ in strings]
    x = maps[0]
    parts = np.zeros((groups, bands * COPIES, geometry.n_t, width), dtype=np.float32)
    taps = footprint_taps(table, geometry.n_t)
    calls = []
    for own, string in zip(maps, strings, strict=True):
        args = (own, blocks, measured, inv_length, table.values, string.astype(np.int64))
        args += (*table.grid, taps, relaxation, nonnegative, parts, lanes)
        args += (taps == 2 and width == lanes,)
        calls.append(args)
    sweep = compiled_sart_sweep(calls[0])  # the same types for every string
    if len(calls) == 1:
        _sweeps(lambda: sweep(*calls[0]), iterations, callback)
    else:
        share = np.float32(strings[1].size / (strings[0].size + strings[1].size))

        def averaged() -> None:
            first, other = maps
            other[:] = first
            for args in calls:
                sweep(*args)
            other -= first  # in place: no temporary the size of the chunk's maps
            other *= share
            first += other

        _sweeps(averaged, iterations, callback)
    out = np.moveaxis(x, 0, 2).reshape(*geometry.shape, groups * width)[..., :nc]
    return out[..., 0] if single else np.ascontiguousarray(out)


def _sweeps(sweep: Callable[[], None], iterations: int, callback: Callback | None) -> None:
    """Run ``sweep`` ``iterations`` times, reporting each to ``callback``."""
    for done in range(1, iterations + 1):
        sweep()
        if callback is not None:
            callback(done)

"""Numba kernels of the integration engine: one sparse matrix applied to blocks of frames.

Two layouts of the same pyFAI matrix are used:

* pixel-major (:func:`scatter_group`) for the plain weighted average: frames are read once, in
  memory order, ``GROUP`` frames side by side, and each pixel adds its value to its few bins.
  The sums of all ``GROUP`` frames of a bin sit next to each other, so the inner loop is a
  vector update; per-thread copies of the sums avoid write conflicts.
* bin-major (:func:`clip_group`, :func:`trim_group`) for the outlier filters, which need all
  pixels of a bin together. ``LANES`` frames are first copied, in memory order, into rows
  of LANES values per pixel (:func:`transpose_group`), the rows ordered by the pixel's first
  bin, so a bin's entries read nearby rows instead of single values scattered over LANES
  frames; the sigma clip then runs the LANES frames through each bin as vector lanes.

Raw values are read in their own dtype and rounded to float32 (as pyFAI's preprocessing does);
sums are float64. A value is valid when finite and >= 0 (Pilatus gaps read -1, bad pixels -2).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

GROUP = 32
"""Frames per kernel call: the cost of finding an entry's bin is shared by GROUP frames. With
both sums of a bin in one row, 32 frames took 4.05-4.09 ms of CPU per Pilatus 2M frame against
4.25-4.69 for 16 (2-core machine, under load), though the per-thread sums of 2000 bins (1 MB)
no longer fit the L2 cache: neighbouring pixels add into neighbouring bins."""
LANES = 32
"""Frames per call of the filter kernels: the sigma clip's lane loops run as four 8-wide
vectors; measured 25 % less CPU per frame than 16 lanes on the 2-core machine, and no gain
from 64."""
CHUNK = 128
"""Pixels read per frame at a time into the (CHUNK, GROUP) tile (8 KB, stays in L1)."""
_INVALID = np.float32(-1.0)
_LANE, _ROW = np.uint64(GROUP), np.uint64(2 * GROUP)


@njit(parallel=True, nogil=True, fastmath=False, cache=True)
def scatter_group(
    frames: np.ndarray,
    run_start: np.ndarray,
    run_first: np.ndarray,
    run_len: np.ndarray,
    thread_runs: np.ndarray,
    pix_ptr: np.ndarray,
    bins: np.ndarray,
    coefs: np.ndarray,
    sums: np.ndarray,
    run_masked: np.ndarray,
) -> None:
    """Add up to ``GROUP`` frames into per-thread sums (Poisson variance, pyFAI's model).

    ``frames`` (k <= GROUP, N) raw values, any dtype. Active pixels (those with matrix entries)
    come as runs of consecutive flat indices: run r covers pixels ``run_start[r] + [0,
    run_len[r])``, which are active pixels ``run_first[r] + [0, run_len[r])``; active pixel p
    owns entries ``pix_ptr[p]:pix_ptr[p + 1]`` of ``bins`` and ``coefs``. Thread t handles runs
    ``thread_runs[t]:thread_runs[t + 1]`` and adds into ``sums[t]`` (npt, 2 * GROUP), zeroed by
    the caller: per bin the sums of c * raw (first GROUP) and c^2 * max(raw, 1) (last GROUP)
    over valid values. Invalid values add nothing; their runs are flagged in ``run_masked``
    (for :func:`masked_shares`, kept out of this loop: its code alone slows the loop by a
    quarter).
    """
    k = frames.shape[0]
    for t in prange(thread_runs.size - 1):
        tile = np.empty((CHUNK, GROUP), np.float32)
        # both sums of a bin in one row of one flat array, indexed by unsigned offsets: the
        # compiler then checks one pair of arrays for overlap per entry instead of three, and
        # skips the negative-index wrap-around (measured 20 % less CPU per frame)
        acc = sums[t].reshape(-1)
        for r in range(thread_runs[t], thread_runs[t + 1]):
            start = run_start[r]
            length = run_len[r]
            for offset in range(0, length, CHUNK):
                n = min(CHUNK, length - offset)
                n_masked = 0
                for f in range(GROUP):
                    if f < k:
                        row = frames[f, start + offset : start + offset + n]
                        for q in range(n):
                            v = np.float32(row[q])
                            valid = v >= 0 and v < np.inf
                            tile[q, f] = v if valid else _INVALID
                            n_masked += not valid
                    else:  # padding lanes: valid zeros, discarded by the caller
                        for q in range(n):
                            tile[q, f] = 0.0
                if n_masked:
                    run_masked[r] = True
                for q in range(n):
                    p = run_first[r] + offset + q
                    x = tile[q]
                    for e in range(pix_ptr[p], pix_ptr[p + 1]):
                        c = np.float64(coefs[e])
                        c2 = c * c
                        row = np.uint64(bins[e]) * _ROW
                        for f in range(_LANE):
                            xf = np.float64(x[f])
                            acc[row + f] += c * max(xf, 0.0)
                            acc[row + _LANE + f] += c2 * (max(xf, 1.0) if xf >= 0.0 else 0.0)


@njit(nogil=True, fastmath=False, cache=True)
def masked_shares(
    frames: np.ndarray,
    runs: np.ndarray,
    run_start: np.ndarray,
    run_first: np.ndarray,
    run_len: np.ndarray,
    pix_ptr: np.ndarray,
    bins: np.ndarray,
    coefs: np.ndarray,
    pix_norm: np.ndarray,
    pix_dark: np.ndarray,
    out: np.ndarray,
) -> None:
    """Static-sum shares of the invalid values in ``runs`` (see :func:`scatter_group`).

    Adds, for each invalid value of frame f in a pixel's bins b, c * norm, c, c * dark and 1
    to ``out[0..3, b, f]`` (4, npt, GROUP), to be taken off the all-valid sums.
    """
    k = frames.shape[0]
    for r in runs:
        for i in range(run_len[r]):
            p = run_first[r] + i
            for f in range(k):
                v = np.float32(frames[f, run_start[r] + i])
                if v >= 0 and v < np.inf:
                    continue
                for e in range(pix_ptr[p], pix_ptr[p + 1]):
                    b = bins[e]
                    c = np.float64(coefs[e])
                    out[0, b, f] += c * pix_norm[p]
                    out[1, b, f] += c
                    out[2, b, f] += c * pix_dark[p]
                    out[3, b, f] += 1.0


@njit(parallel=True, nogil=True, fastmath=False, cache=True)
def transpose_group(frames: np.ndarray, row_of: np.ndarray, lanes: np.ndarray) -> None:
    """Copy frames (k <= LANES, N) as float32 into ``lanes`` (rows, LANES), read in memory
    order: pixel p's k values go to row ``row_of[p]`` (< 0: a pixel without matrix entries).

    Rows are ordered by the pixel's first bin, so the bin-major filter kernels read the few
    rows of a bin and its neighbours, two cache lines (the LANES frames) at a time, instead of
    gathering single values from k frames spread over the detector.
    """
    k, n = frames.shape
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        lo = chunk * CHUNK
        hi = min(lo + CHUNK, n)
        for f in range(k):
            frame = frames[f]
            for p in range(lo, hi):
                row = row_of[p]
                if row >= 0:
                    lanes[row, f] = np.float32(frame[p])


@njit(fastmath=False, cache=True)
def _load_bin(lanes, rows, f, lo, hi, coefs, norm, dark, sig, var, nrm, cnt, x, keep):
    """Per-entry signal c*(raw-dark), variance c^2*max(raw,1), c*norm, c and pixel value x =
    (raw-dark)/norm of entries ``lo:hi`` in frame f (float32 arithmetic as pyFAI). Returns
    the number of valid entries; ``keep`` marks them."""
    n_valid = 0
    for j in range(hi - lo):
        e = lo + j
        raw = lanes[rows[e], f]
        if raw >= 0 and raw < np.inf:
            s = np.float32(raw - dark[e])
            c = np.float64(coefs[e])
            sig[j] = c * s
            var[j] = c * c * max(raw, np.float32(1.0))
            nrm[j] = c * norm[e]
            cnt[j] = c
            x[j] = np.float64(s) / np.float64(norm[e])
            keep[j] = True
            n_valid += 1
        else:
            keep[j] = False
    return n_valid


# rows of the per-lane accumulators of the clip kernels: one flat array, constant offsets, so
# that the compiler sees the rows cannot overlap and runs the lanes as vectors. The lane loops
# run to x.shape[1] (= LANES), not to the constant: a constant trip count gets them unrolled
# into scalar code before the loop vectorizer sees them.
_S, _V, _W, _W2, _C, _MEAN, _LIMIT, _DROPPED = (i * LANES for i in range(8))
_ROWS = 8


@njit(fastmath=False, error_model="numpy", cache=True)
def _lane_sums(lanes, rows, lo, n, coefs, norm, dark, x, load, azimuthal, acc):
    """Sums of signal, variance, norm, norm^2 and count over the kept entries of every lane,
    in entry order, into the rows of ``acc`` (see ``_S``...). With ``load``, first sets the
    pixel values x (n, LANES) of entries ``lo:lo+n``: (raw-dark)/norm (float32 difference as
    pyFAI, float64 quotient), NaN for an invalid raw value; a clipped entry is set to NaN
    later, so x is finite exactly where the entry is kept. Each lane does exactly the float
    operations of a scalar loop over its frame (selects, not branches, so that the lanes run
    as vectors): with ``azimuthal`` the variance is pyFAI's running weighted spread of x,
    whose update uses the mean before and after each entry (``_MEAN`` carries s / w from one
    entry to the next), otherwise the Poisson sum c^2 * max(raw, 1)."""
    acc[: _MEAN + LANES] = 0.0
    for j in range(n):
        e = lo + j
        values = lanes[rows[e]]
        coef = np.float64(coefs[e])
        omega = coef * norm[e]
        omega2 = omega * omega
        norm_e = np.float64(norm[e])
        dark_e = dark[e]
        x_j = x[j]
        for f in range(x.shape[1]):  # a bound unknown to the compiler: see _ROWS
            raw = values[f]
            difference = np.float32(raw - dark_e)
            if load:
                x_f = np.float64(difference) / norm_e
                x_f = x_f if raw >= 0 and raw < np.inf else np.nan
                x_j[f] = x_f
            else:
                x_f = x_j[f]
            kept = x_f == x_f
            s_after = acc[_S + f] + coef * difference
            w_after = acc[_W + f] + omega
            v = acc[_V + f]
            if azimuthal:
                mean_after = s_after / w_after
                grown = v + omega2 * (acc[_MEAN + f] - x_f) * (mean_after - x_f)
                acc[_V + f] = grown if kept and acc[_W2 + f] > 0.0 else v
                acc[_MEAN + f] = mean_after if kept else acc[_MEAN + f]
            else:
                grown = v + coef * coef * max(raw, np.float32(1.0))
                acc[_V + f] = grown if kept else v
            acc[_S + f] = s_after if kept else acc[_S + f]
            acc[_W + f] = w_after if kept else acc[_W + f]
            acc[_W2 + f] = acc[_W2 + f] + omega2 if kept else acc[_W2 + f]
            acc[_C + f] = acc[_C + f] + coef if kept else acc[_C + f]


@njit(fastmath=False, error_model="numpy", cache=True)
def _lane_clip(n, x, acc):
    """Set x to NaN (drop) where the kept x deviates from ``_MEAN`` by more than ``_LIMIT``
    (NaN: the lane is done, nothing dropped); counts the drops per lane in ``_DROPPED``."""
    acc[_DROPPED : _DROPPED + LANES] = 0.0
    for j in range(n):
        x_j = x[j]
        for f in range(x.shape[1]):  # a bound unknown to the compiler: see _ROWS
            out_of_range = abs(x_j[f] - acc[_MEAN + f]) > acc[_LIMIT + f]
            x_j[f] = np.nan if out_of_range else x_j[f]
            acc[_DROPPED + f] += 1.0 if out_of_range else 0.0


@njit(parallel=True, nogil=True, fastmath=False, error_model="numpy", cache=True)
def clip_group(
    lanes: np.ndarray,
    k: int,
    part_bins: np.ndarray,
    indptr: np.ndarray,
    rows: np.ndarray,
    coefs: np.ndarray,
    norm: np.ndarray,
    dark: np.ndarray,
    cutoff: float,
    max_iter: int,
    azimuthal: bool,
    out: np.ndarray,
) -> None:
    """Iterative sigma clipping per bin, with pyFAI's ``sigma_clip_ng`` rules.

    ``lanes`` (rows, LANES) holds k frames (:func:`transpose_group`). Bin b owns entries
    ``indptr[b]:indptr[b + 1]`` (row in ``lanes``, coefficient, static normalisation, dark);
    part t (one task) is bins ``part_bins[t]:part_bins[t + 1]``. Each cycle drops the entries
    whose pixel value x deviates from the bin's mean by more than max(cutoff, Chauvenet's
    sqrt(2 ln(n / sqrt(2 pi)))) standard deviations, n = max(3, sum of kept coefficients); a
    frame stops after ``max_iter`` cycles or when nothing is dropped. The LANES frames go
    through a bin side by side (vector lanes), each with the arithmetic of a frame alone.
    ``out`` (k, npt, 4) receives the final sums: signal, variance, normalisation, count.
    """
    for t in prange(part_bins.size - 1):
        first, last = part_bins[t], part_bins[t + 1]
        longest = 0
        for b in range(first, last):
            longest = max(longest, indptr[b + 1] - indptr[b])
        x = np.empty((longest, LANES))
        acc = np.empty(_ROWS * LANES)
        for b in range(first, last):
            lo = indptr[b]
            n = indptr[b + 1] - lo
            _lane_sums(lanes, rows, lo, n, coefs, norm, dark, x, True, azimuthal, acc)
            acc[_DROPPED : _DROPPED + LANES] = 1.0  # every lane running
            for _ in range(max_iter):
                running = False
                for f in range(LANES):
                    s, v, w = acc[_S + f], acc[_V + f], acc[_W + f]
                    w2, c = acc[_W2 + f], acc[_C + f]
                    if f >= k or acc[_DROPPED + f] == 0.0 or w == 0.0 or c == 0.0:
                        acc[_LIMIT + f] = np.nan  # this frame is done
                        continue
                    chauvenet = math.sqrt(2.0 * math.log(max(3.0, c) / math.sqrt(2 * math.pi)))
                    acc[_MEAN + f] = s / w
                    acc[_LIMIT + f] = max(cutoff, chauvenet) * math.sqrt(v / w2)
                    running = True
                if not running:
                    break
                _lane_clip(n, x, acc)
                if not acc[_DROPPED : _DROPPED + LANES].any():
                    break
                _lane_sums(lanes, rows, lo, n, coefs, norm, dark, x, False, azimuthal, acc)
            for f in range(k):
                out[f, b, 0] = acc[_S + f]
                out[f, b, 1] = acc[_V + f]
                out[f, b, 2] = acc[_W + f]
                out[f, b, 3] = acc[_C + f]


@njit(parallel=True, nogil=True, fastmath=False, cache=True)
def trim_group(
    lanes: np.ndarray,
    k: int,
    indptr: np.ndarray,
    rows: np.ndarray,
    coefs: np.ndarray,
    norm: np.ndarray,
    dark: np.ndarray,
    quant_min: float,
    quant_max: float,
    out: np.ndarray,
) -> None:
    """Mean over a quantile range per bin, with pyFAI's ``medfilt1d_ng`` rules.

    The valid entries of a bin are sorted by pixel value x; with W the running sum of c * norm
    (the weight) in that order, an entry is kept when its weight interval [W_before, W_after]
    lies inside [quant_min, quant_max] * W_total, or contains that whole range (a single
    quantile, e.g. the median). Weights and limits are compared in float32, as pyFAI stores
    them. ``lanes``, ``rows`` and ``out`` (k, npt, 4) as in :func:`clip_group`.
    """
    for b in prange(indptr.size - 1):
        lo, hi = indptr[b], indptr[b + 1]
        n = hi - lo
        sig, var, nrm, cnt, x = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        keep = np.empty(n, np.bool_)
        for f in range(k):
            n_valid = _load_bin(
                lanes, rows, f, lo, hi, coefs, norm, dark, sig, var, nrm, cnt, x, keep
            )
            valid = np.flatnonzero(keep)
            key = np.empty(n_valid, np.float32)
            for i in range(n_valid):
                key[i] = x[valid[i]]
            order = valid[np.argsort(key)]
            total = 0.0
            for j in order:
                total += np.float64(np.float32(nrm[j]))
            q_lo = np.float32(quant_min * total)
            q_hi = np.float32(quant_max * total)
            s = v = w = c = 0.0
            before = np.float32(0.0)
            running = 0.0
            for j in order:
                running += np.float64(np.float32(nrm[j]))
                after = np.float32(running)
                if (q_lo <= before and after <= q_hi) or (q_lo >= before and after >= q_hi):
                    s += np.float32(sig[j])
                    v += np.float32(var[j])
                    w += np.float32(nrm[j])
                    c += cnt[j]
                before = after
            out[f, b, 0] = s
            out[f, b, 1] = v
            out[f, b, 2] = w
            out[f, b, 3] = c

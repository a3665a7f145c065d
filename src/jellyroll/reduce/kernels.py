"""Numba kernels of the integration engine: one sparse matrix applied to blocks of frames.

Two layouts of the same pyFAI matrix are used:

* pixel-major (:func:`scatter_group`) for the plain weighted average: frames are read once, in
  memory order, ``GROUP`` frames side by side, and each pixel adds its value to its few bins.
  The sums of all ``GROUP`` frames of a bin sit next to each other, so the inner loop is a
  vector update; per-thread copies of the sums avoid write conflicts.
* bin-major (:func:`clip_group`, :func:`trim_group`) for the outlier filters, which need all
  pixels of a bin together.

Raw values are read in their own dtype and rounded to float32 (as pyFAI's preprocessing does);
sums are float64. A value is valid when finite and >= 0 (Pilatus gaps read -1, bad pixels -2).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

GROUP = 16
"""Frames per kernel call. 16 float64 sums (two AVX-512 vectors) per bin: measured fastest on
the 2-core machine; 32 overflows the L2 cache with the per-thread sums of 2000 bins."""
CHUNK = 128
"""Pixels read per frame at a time into the (CHUNK, GROUP) tile (8 KB, stays in L1)."""
_INVALID = np.float32(-1.0)


@njit(parallel=True, fastmath=False, cache=True)
def scatter_group(
    frames: np.ndarray,
    run_start: np.ndarray,
    run_first: np.ndarray,
    run_len: np.ndarray,
    thread_runs: np.ndarray,
    pix_ptr: np.ndarray,
    bins: np.ndarray,
    coefs: np.ndarray,
    sig: np.ndarray,
    var: np.ndarray,
    run_masked: np.ndarray,
) -> None:
    """Add up to ``GROUP`` frames into per-thread sums (Poisson variance, pyFAI's model).

    ``frames`` (k <= GROUP, N) raw values, any dtype. Active pixels (those with matrix entries)
    come as runs of consecutive flat indices: run r covers pixels ``run_start[r] + [0,
    run_len[r])``, which are active pixels ``run_first[r] + [0, run_len[r])``; active pixel p
    owns entries ``pix_ptr[p]:pix_ptr[p + 1]`` of ``bins`` and ``coefs``. Thread t handles runs
    ``thread_runs[t]:thread_runs[t + 1]`` and adds into ``sig[t]`` and ``var[t]`` (npt, GROUP),
    zeroed by the caller: the sums of c * raw and c^2 * max(raw, 1) over valid values. Invalid
    values add nothing; their runs are flagged in ``run_masked`` (for :func:`masked_shares`,
    kept out of this loop: its code alone slows the loop by a quarter).
    """
    k = frames.shape[0]
    for t in prange(thread_runs.size - 1):
        tile = np.empty((CHUNK, GROUP), np.float32)
        acc_s = sig[t]
        acc_v = var[t]
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
                        rs = acc_s[bins[e]]
                        rv = acc_v[bins[e]]
                        for f in range(GROUP):
                            xf = np.float64(x[f])
                            rs[f] += c * max(xf, 0.0)
                            rv[f] += c2 * (max(xf, 1.0) if xf >= 0.0 else 0.0)


@njit(fastmath=False, cache=True)
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


@njit(fastmath=False, cache=True)
def _load_bin(frames, f, lo, hi, pixels, coefs, norm, dark, sig, var, nrm, cnt, x, keep):
    """Per-entry signal c*(raw-dark), variance c^2*max(raw,1), c*norm, c and pixel value x =
    (raw-dark)/norm of entries ``lo:hi`` in frame f (float32 arithmetic as pyFAI). Returns
    the number of valid entries; ``keep`` marks them."""
    n_valid = 0
    for j in range(hi - lo):
        e = lo + j
        raw = np.float32(frames[f, pixels[e]])
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


@njit(fastmath=False, cache=True)
def _sums(n, sig, var, nrm, cnt, x, keep, azimuthal):
    """Sums (signal, variance, norm, norm^2, count) over kept entries; with ``azimuthal`` the
    variance is pyFAI's running weighted spread of x instead of the Poisson sum."""
    s = v = w = w2 = c = 0.0
    for j in range(n):
        if not keep[j]:
            continue
        if azimuthal and w2 > 0.0:
            omega = nrm[j]
            delta_before = s / w - x[j]
            s += sig[j]
            w += omega
            delta_after = s / w - x[j]
            v += omega * omega * delta_before * delta_after
        else:
            s += sig[j]
            w += nrm[j]
            if not azimuthal:
                v += var[j]
        w2 += nrm[j] * nrm[j]
        c += cnt[j]
    return s, v, w, w2, c


@njit(parallel=True, fastmath=False, cache=True)
def clip_group(
    frames: np.ndarray,
    indptr: np.ndarray,
    pixels: np.ndarray,
    coefs: np.ndarray,
    norm: np.ndarray,
    dark: np.ndarray,
    cutoff: float,
    max_iter: int,
    azimuthal: bool,
    out: np.ndarray,
) -> None:
    """Iterative sigma clipping per bin, with pyFAI's ``sigma_clip_ng`` rules.

    Bin b owns entries ``indptr[b]:indptr[b + 1]`` (flat pixel index, coefficient, static
    normalisation, dark). Each cycle drops the entries whose pixel value x deviates from the
    bin's mean by more than max(cutoff, Chauvenet's sqrt(2 ln(n / sqrt(2 pi)))) standard
    deviations, n = max(3, sum of kept coefficients); it stops after ``max_iter`` cycles or
    when nothing is dropped. ``out`` (k, npt, 4) receives the final sums: signal, variance,
    normalisation, count.
    """
    k = frames.shape[0]
    for b in prange(indptr.size - 1):
        lo, hi = indptr[b], indptr[b + 1]
        n = hi - lo
        sig, var, nrm, cnt, x = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        keep = np.empty(n, np.bool_)
        for f in range(k):
            _load_bin(frames, f, lo, hi, pixels, coefs, norm, dark, sig, var, nrm, cnt, x, keep)
            s, v, w, w2, c = _sums(n, sig, var, nrm, cnt, x, keep, azimuthal)
            for _ in range(max_iter):
                if w == 0.0 or c == 0.0:
                    break
                mean = s / w
                std = math.sqrt(v / w2)
                threshold = max(
                    cutoff, math.sqrt(2.0 * math.log(max(3.0, c) / math.sqrt(2 * math.pi)))
                )
                dropped = 0
                for j in range(n):
                    if keep[j] and abs(x[j] - mean) > threshold * std:
                        keep[j] = False
                        dropped += 1
                if dropped == 0:
                    break
                s, v, w, w2, c = _sums(n, sig, var, nrm, cnt, x, keep, azimuthal)
            out[f, b, 0] = s
            out[f, b, 1] = v
            out[f, b, 2] = w
            out[f, b, 3] = c


@njit(parallel=True, fastmath=False, cache=True)
def trim_group(
    frames: np.ndarray,
    indptr: np.ndarray,
    pixels: np.ndarray,
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
    them. ``out`` (k, npt, 4) as in :func:`clip_group`.
    """
    k = frames.shape[0]
    for b in prange(indptr.size - 1):
        lo, hi = indptr[b], indptr[b + 1]
        n = hi - lo
        sig, var, nrm, cnt, x = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        keep = np.empty(n, np.bool_)
        for f in range(k):
            n_valid = _load_bin(
                frames, f, lo, hi, pixels, coefs, norm, dark, sig, var, nrm, cnt, x, keep
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

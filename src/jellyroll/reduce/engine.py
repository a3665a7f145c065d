"""Azimuthal integration of blocks of raw frames, with pyFAI's geometry, matrix and semantics.

pyFAI builds the sparse integration matrix once (the same call and arguments as its
``integrate1d``); jellyroll applies it to blocks of frames with its own kernels
(:mod:`jellyroll.reduce.kernels`), reading the raw frames in their own dtype.

Per pixel, as pyFAI's ``integrate1d(..., error_model="poisson")``::

    signal = raw - dark            variance = max(raw, 1)
    norm   = flat * polarisation * solid_angle

and per bin, with the matrix coefficients c and the monitor m of the frame::

    I     = sum(c * signal) / (m * sum(c * norm))
    sigma = sqrt(sum(c^2 * variance)) / (m * sum(c * norm))

A pixel is masked when the static mask says so (``setup.mask`` and pyFAI's detector mask, the
module gaps of a named detector, together), when its dark or norm is not finite or its norm
is 0, and, per frame, when its raw value is negative or not finite (Pilatus gaps read -1, bad
pixels -2) or, in unsigned frames, the dtype's largest value (Eiger's invalid pixels). A bin
without any valid
pixel in a frame gives NaN intensity and sigma (pyFAI writes its ``empty`` value, 0, there).

The outlier filters follow pyFAI's ``sigma_clip_ng`` (filter "sigma-clip") and
``medfilt1d_ng`` with a percentile pair (filter "trimmed-mean"); their sigma is the standard
error of the mean, as pyFAI's. With pixel splitting ("bbox", "full") a pixel dropped by the
sigma clip is dropped from that bin only (pyFAI drops it from every bin processed after it, in
an order that depends on its threads): use ``split="no"``, pyFAI's default for sigma clipping,
for exact parity.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numba
import numpy as np
from pyFAI import units
from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from scipy import sparse

from jellyroll.io.poni import PoniError, implausible_geometry, integrator_from_poni_text
from jellyroll.io.scans import flag_unsigned_invalid
from jellyroll.reduce.kernels import (
    GROUP,
    LANES,
    clip_group,
    masked_shares,
    scatter_group,
    transpose_group,
    trim_group,
)
from jellyroll.reduce.options import FilterName, SplitName

FILTERS: tuple[str, ...] = get_args(FilterName)
_SPLITS: tuple[str, ...] = get_args(SplitName)
_CLIP_MODELS = ("poisson", "azimuthal")
_NO_WAVELENGTH_SPACES = ("r", "2th")
_PARALLEL_KERNEL = threading.Lock()
"""Held while a parallel kernel runs. The kernels release the GIL (so that decoding threads run
beside them), but numba's workqueue threading layer, used where OpenMP and TBB are missing,
aborts the process when two threads launch parallel kernels at once: one runs at a time, as
when the GIL serialised them."""
FILTER_PARTS = 64
"""Tasks of the filter kernels: bin ranges with equal numbers of matrix entries, enough of
them that threads stay busy when bins differ in size."""


@dataclass(frozen=True, eq=False)
class IntegrationSetup:
    """Everything that defines an integration; picklable, hashable and compared by content.

    ``shape`` (H, W) of the frames; ``mask``, ``dark``, ``flat`` (H, W) arrays (mask non-zero =
    masked, added to pyFAI's detector mask; None: no dark/flat). ``radial_range`` in ``unit``.
    ``split`` is pyFAI's pixel splitting of the CSR matrix. Filters: ``clip_sigma`` and
    ``max_iterations`` are pyFAI's ``thres`` and ``max_iter`` of ``sigma_clip_ng`` (defaults 5
    and 5) and ``clip_error_model`` its ``error_model``: "azimuthal" (the spread of the bin's
    pixels) by default, as a spot much brighter than its ring defeats the "poisson" model (the
    spot drags the first mean up and the ring is clipped instead). ``percentile`` is the (low,
    high) range in percent of ``medfilt1d_ng`` (one number gives that quantile, 50 the
    median). Arrays are copied and made read-only.
    """

    poni: str
    shape: tuple[int, int]
    npt: int = 2000
    unit: str = "q_A^-1"
    radial_range: tuple[float, float] | None = None
    mask: np.ndarray | None = None
    polarization_factor: float | None = 0.99
    correct_solid_angle: bool = True
    dark: np.ndarray | None = None
    flat: np.ndarray | None = None
    split: SplitName = "bbox"
    filter: FilterName = "none"
    clip_sigma: float = 5.0
    max_iterations: int = 5
    clip_error_model: Literal["poisson", "azimuthal"] = "azimuthal"
    percentile: float | tuple[float, float] = (10.0, 90.0)

    def __post_init__(self) -> None:
        if not isinstance(self.poni, str):
            raise ValueError(f"poni must be the PONI file text (str), not {type(self.poni)}")
        if len(self.shape) != 2 or any(int(s) < 1 for s in self.shape):
            raise ValueError(f"shape must be (H, W) with positive sizes, got {self.shape}")
        shape = (int(self.shape[0]), int(self.shape[1]))
        object.__setattr__(self, "shape", shape)
        if int(self.npt) < 1:
            raise ValueError(f"npt must be >= 1, got {self.npt}")
        object.__setattr__(self, "npt", int(self.npt))
        if self.radial_range is not None:
            low, high = (float(v) for v in self.radial_range)
            if not (np.isfinite(low) and np.isfinite(high) and low < high):
                raise ValueError(
                    f"radial_range must be finite (low, high), got {self.radial_range}"
                )
            object.__setattr__(self, "radial_range", (low, high))
        for name, allowed in (
            ("filter", FILTERS),
            ("split", _SPLITS),
            ("clip_error_model", _CLIP_MODELS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not self.clip_sigma >= 0:
            raise ValueError(f"clip_sigma must be >= 0, got {self.clip_sigma}")
        if int(self.max_iterations) < 0:
            raise ValueError(f"max_iterations must be >= 0, got {self.max_iterations}")
        low, high = sorted(np.broadcast_to(np.asarray(self.percentile, float), (2,)))
        if not 0.0 <= low <= high <= 100.0:
            raise ValueError(f"percentile must lie in [0, 100], got {self.percentile}")
        object.__setattr__(self, "percentile", (float(low), float(high)))
        for name, dtype in (("mask", bool), ("dark", np.float32), ("flat", np.float32)):
            value = getattr(self, name)
            if value is None:
                continue
            array = np.asarray(value)
            if array.shape != shape:
                raise ValueError(f"{name} has shape {array.shape}, frames have {shape}")
            array = (array != 0) if dtype is bool else array.astype(dtype)
            array.flags.writeable = False
            object.__setattr__(self, name, array)
        object.__setattr__(self, "_digest", self._content_digest())

    def _content_digest(self) -> str:
        digest = hashlib.sha256()
        for name, value in sorted(vars(self).items()):
            if isinstance(value, np.ndarray):
                digest.update(f"{name}:{value.dtype}:".encode() + value.tobytes())
            elif name != "_digest":
                digest.update(f"{name}={value!r};".encode())
        return digest.hexdigest()

    def __setstate__(self, state: dict) -> None:
        for value in state.values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False  # unpickled arrays come back writable
        self.__dict__.update(state)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntegrationSetup):
            return NotImplemented
        return self._digest == other._digest  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._digest)  # type: ignore[attr-defined]


@dataclass
class IntegrationResult:
    """Integrated patterns of k frames on the ``radial`` grid (npt,) in ``unit``.

    ``intensity`` and ``sigma`` (k, npt) float32, NaN in bins without a valid pixel;
    ``count`` (k, npt) float32, the sum of the matrix coefficients of the valid (kept) pixels
    of each bin (pyFAI's ``count``).
    """

    radial: np.ndarray
    unit: str
    intensity: np.ndarray
    sigma: np.ndarray
    count: np.ndarray


def geometry_from_setup(setup: IntegrationSetup) -> AzimuthalIntegrator:
    """pyFAI integrator of ``setup.poni``, checked against ``setup.shape`` and ``setup.unit``
    (:class:`~jellyroll.io.poni.PoniError` naming what is wrong with the PONI)."""
    keys = {
        line.split(":", 1)[0].strip().lower()
        for line in setup.poni.splitlines()
        if ":" in line and not line.lstrip().startswith("#")
    }
    missing = [key for key in ("distance", "poni1", "poni2") if key not in keys]
    if missing:
        raise PoniError(
            f"PONI text lacks the key(s) {', '.join(missing)}: a PONI file holds "
            "`Key: value` lines as pyFAI writes them (Distance: 0.245, Poni1: ..., Poni2: ...)"
        )
    try:
        ai = integrator_from_poni_text(setup.poni)
    except Exception as exc:
        raise PoniError(f"PONI text could not be read by pyFAI: {exc!r}") from exc
    if not ai.dist > 0:
        raise PoniError(f"PONI Distance must be > 0 m, got {ai.dist}")
    if ai.detector.pixel1 is None or ai.detector.pixel2 is None:
        raise PoniError("PONI text defines no detector pixel size (Detector or PixelSize1/2)")
    unit = _radial_unit(setup.unit)
    if ai.wavelength is None and unit.space not in _NO_WAVELENGTH_SPACES:
        raise PoniError(f"PONI text has no Wavelength, needed for the unit {setup.unit}")
    if ai.wavelength is not None and not ai.wavelength > 0:
        raise PoniError(f"PONI Wavelength must be > 0 m, got {ai.wavelength}")
    problem = implausible_geometry(ai)
    if problem is not None:
        raise PoniError(problem)
    # a binned detector's frames have its binned shape (``shape``), not its full one
    binning = _binning(ai.detector)
    if ai.detector.max_shape is None:
        ai.detector.max_shape = tuple(n * b for n, b in zip(setup.shape, binning, strict=True))
    elif tuple(ai.detector.shape) != setup.shape:
        binned = f", {binning[0]} x {binning[1]} binned" if binning != (1, 1) else ""
        raise PoniError(
            f"frame shape {setup.shape} does not match the PONI detector "
            f"{ai.detector.name} of shape {tuple(ai.detector.shape)}{binned}: give the PONI "
            "of the detector and binning the frames were taken with"
        )
    return ai


def _binning(detector: Any) -> tuple[int, int]:
    """A pyFAI detector's binning (rows, columns); (1, 1) when it records none."""
    return tuple(int(b) for b in (detector.binning or (1, 1)))


def detector_mask(detector: Any) -> np.ndarray | None:
    """pyFAI ``detector``'s own mask (module gaps, dead pixels), bool at its (binned) shape,
    or None. A binned pixel is masked where any pixel it sums is: pyFAI's own binned mask
    fails where the full size is no multiple of the binning (a 2 x 2 binned Pilatus 2M)."""
    binning = _binning(detector)
    if binning == (1, 1):
        return None if detector.mask is None else np.asarray(detector.mask) != 0
    full = detector.calc_mask()
    if full is None:
        return None
    ny, nx = detector.shape
    cut = np.asarray(full)[: ny * binning[0], : nx * binning[1]] != 0
    return cut.reshape(ny, binning[0], nx, binning[1]).any(axis=(1, 3))


def _radial_unit(name: str) -> units.Unit:
    unit = units.RADIAL_UNITS.get(name) if isinstance(name, str) else None
    if unit is None:
        raise ValueError(f"unknown radial unit {name!r}; e.g. q_A^-1, q_nm^-1, 2th_deg, r_mm")
    return unit


class SparseEngine:
    """Applies a sparse integration matrix (npt, N) to blocks of flat frames (k, N).

    ``norm`` and ``dark`` (N,) are the static per-pixel normalisation and dark; entries of
    pixels whose norm is 0 or not finite, or whose dark is not finite, and zero coefficients
    are dropped. ``filter`` and its parameters as in :class:`IntegrationSetup` (``percentile``
    as a (low, high) pair). Independent of pyFAI: :class:`Integrator` feeds it pyFAI's matrix.
    """

    def __init__(
        self,
        matrix: sparse.csr_matrix,
        norm: np.ndarray,
        dark: np.ndarray,
        *,
        filter: FilterName = "none",
        clip_sigma: float = 5.0,
        max_iterations: int = 5,
        clip_error_model: Literal["poisson", "azimuthal"] = "azimuthal",
        percentile: tuple[float, float] = (10.0, 90.0),
    ) -> None:
        matrix = sparse.csr_matrix(matrix)
        self.npt, self.n_pixels = matrix.shape
        norm = np.asarray(norm, np.float32).reshape(-1)
        dark = np.asarray(dark, np.float32).reshape(-1)
        if norm.shape != (self.n_pixels,) or dark.shape != (self.n_pixels,):
            raise ValueError(f"norm and dark must have {self.n_pixels} values (matrix columns)")
        usable = np.isfinite(norm) & (norm != 0) & np.isfinite(dark)
        keep = usable[matrix.indices] & (matrix.data != 0)
        indptr = np.concatenate([[0], np.cumsum(keep)])[matrix.indptr].astype(np.int64)
        self.matrix = sparse.csr_matrix(
            (matrix.data[keep].astype(np.float32), matrix.indices[keep].astype(np.int64), indptr),
            shape=matrix.shape,
        )
        self.nnz = int(self.matrix.nnz)
        self._norm = np.where(usable, norm, 0).astype(np.float32)
        self._dark = np.where(usable, dark, 0).astype(np.float32)
        self.filter = filter
        self._clip = (float(clip_sigma), int(max_iterations), clip_error_model == "azimuthal")
        self._quantiles = (percentile[0] / 100.0, percentile[1] / 100.0)
        # frames per kernel call: blocks of frames are best given in multiples of it
        self.group = GROUP if filter == "none" else LANES
        if filter == "none":
            self._build_pixel_major()
        else:
            self._build_bin_major()
        self._threads: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def nbytes(self) -> int:
        """Bytes of the matrix layout the kernels read for every group of frames."""
        if self.filter == "none":
            parts = (
                self._bins,
                self._coefs,
                self._pix_ptr,
                self._run_start,
                self._run_first,
                self._run_len,
            )
        else:
            parts = (
                self.matrix.indptr,
                self._entry_rows,
                self.matrix.data,
                self._entry_norm,
                self._entry_dark,
                self._row_of,
            )
        return int(sum(part.nbytes for part in parts))

    def _build_pixel_major(self) -> None:
        """The transposed matrix as runs of consecutive active pixels, and the static sums."""
        matrix = self.matrix
        by_pixel = matrix.tocsc()
        by_pixel.sort_indices()
        per_pixel = np.diff(by_pixel.indptr)
        active = np.flatnonzero(per_pixel > 0)
        self._pix_ptr = np.concatenate([[0], np.cumsum(per_pixel[active])]).astype(np.int64)
        self._bins = by_pixel.indices.astype(np.int32)
        self._coefs = by_pixel.data.astype(np.float32)
        self._pix_norm = self._norm[active].astype(np.float64)
        self._pix_dark = self._dark[active].astype(np.float64)
        # a run starts wherever the active pixel does not follow the previous one
        self._run_first = np.flatnonzero(np.diff(active, prepend=-2) != 1).astype(np.int64)
        self._run_start = active[self._run_first].astype(np.int64)
        self._run_len = np.diff(np.append(self._run_first, active.size)).astype(np.int64)
        coefs = matrix.data.astype(np.float64)
        pixels = matrix.indices
        rows = np.repeat(np.arange(self.npt), np.diff(matrix.indptr))
        self._static_norm = np.bincount(rows, coefs * self._norm[pixels], self.npt)
        self._static_count = np.bincount(rows, coefs, self.npt)
        self._static_dark = np.bincount(rows, coefs * self._dark[pixels], self.npt)
        self._static_entries = np.diff(matrix.indptr).astype(np.float64)

    def _build_bin_major(self) -> None:
        """Per entry its static norm, dark and row in the frames' lanes (:func:`transpose_group`:
        pixels in the order of their first bin), and bin parts of equal numbers of entries."""
        indices = self.matrix.indices
        self._entry_norm = self._norm[indices]
        self._entry_dark = self._dark[indices]
        active, first_entry = np.unique(indices, return_index=True)
        self._row_of = np.full(self.n_pixels, -1, np.int64)
        self._row_of[active[np.argsort(first_entry, kind="stable")]] = np.arange(active.size)
        self._entry_rows = self._row_of[indices]
        targets = np.linspace(0, self.nnz, FILTER_PARTS + 1)
        self._part_bins = np.unique(np.searchsorted(self.matrix.indptr, targets)).astype(np.int64)
        self._part_bins[0], self._part_bins[-1] = 0, self.npt

    def _lanes(self) -> np.ndarray:
        """This thread's (rows, LANES) float32 buffer of frames for the filters (reused: a
        fresh one per group would be page-faulted in each time)."""
        lanes = getattr(self._local, "lanes", None)
        if lanes is None:
            rows = int(self._row_of.max()) + 1
            lanes = self._local.lanes = np.zeros((rows, LANES), np.float32)
        return lanes

    def _thread_runs(self, n_threads: int) -> np.ndarray:
        """Run ranges of ``n_threads`` partial sums, with equal numbers of matrix entries."""
        with self._lock:
            if n_threads not in self._threads:
                entries_before = self._pix_ptr[self._run_first]
                targets = np.linspace(0, self._pix_ptr[-1], n_threads + 1)
                bounds = np.searchsorted(entries_before, targets).astype(np.int64)
                bounds[0], bounds[-1] = 0, self._run_first.size
                self._threads[n_threads] = bounds
            return self._threads[n_threads]

    def sums(self, frames: np.ndarray) -> np.ndarray:
        """Per-bin sums (k, npt, 4) of frames (k, N): signal sum(c * (raw - dark)), variance
        sum(c^2 * max(raw, 1)), normalisation sum(c * norm) and count sum(c), over the valid
        (and, with a filter, kept) pixels; normalisation and count are 0 in empty bins."""
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[1] != self.n_pixels:
            raise ValueError(f"frames must be (k, {self.n_pixels}), got {frames.shape}")
        out = np.empty((frames.shape[0], self.npt, 4))
        for start in range(0, frames.shape[0], self.group):
            group = np.ascontiguousarray(frames[start : start + self.group])
            out[start : start + group.shape[0]] = self._group_sums(group)
        return out

    def _group_sums(self, group: np.ndarray) -> np.ndarray:
        """:meth:`sums` of n <= ``group`` contiguous frames."""
        n = group.shape[0]
        if self.filter != "none":
            out = np.zeros((n, self.npt, 4))
            lanes = self._lanes()
            matrix = (self.matrix.indptr, self._entry_rows, self.matrix.data)
            statics = (self._entry_norm, self._entry_dark)
            with _PARALLEL_KERNEL:
                transpose_group(group, self._row_of, lanes)
                # parts handed out one at a time: a thread held up (by the decoding threads of
                # a reduction) leaves its parts to the others instead of keeping them waiting
                with numba.parallel_chunksize(1):
                    if self.filter == "sigma-clip":
                        clip_group(lanes, n, self._part_bins, *matrix, *statics, *self._clip, out)
                    else:
                        trim_group(lanes, n, *matrix, *statics, *self._quantiles, out)
            return out
        # one partial sum per possible thread, however many run: the result does not depend
        # on the threads given to the integration (numba.set_num_threads)
        n_parts = numba.config.NUMBA_NUM_THREADS
        partial = np.zeros((n_parts, self.npt, 2 * GROUP))  # signal | variance sums
        run_masked = np.zeros(self._run_first.size, np.bool_)
        runs = (self._run_start, self._run_first, self._run_len)
        matrix = (self._pix_ptr, self._bins, self._coefs)
        thread_runs = self._thread_runs(n_parts)
        with _PARALLEL_KERNEL:
            scatter_group(group, *runs, thread_runs, *matrix, partial, run_masked)
        sig, var = partial[..., :GROUP], partial[..., GROUP:]
        shares = np.zeros((4, self.npt, GROUP))
        if run_masked.any():
            masked_shares(
                group,
                np.flatnonzero(run_masked),
                *runs,
                *matrix,
                self._pix_norm,
                self._pix_dark,
                shares,
            )
        masked = shares[:, :, :n].transpose(0, 2, 1)  # (4, n, npt)
        entries = self._static_entries - masked[3]
        out = np.empty((n, self.npt, 4))
        out[..., 0] = sig.sum(axis=0)[:, :n].T - (self._static_dark - masked[2])
        out[..., 1] = var.sum(axis=0)[:, :n].T
        out[..., 2] = np.where(entries > 0, self._static_norm - masked[0], 0.0)
        out[..., 3] = np.where(entries > 0, self._static_count - masked[1], 0.0)
        return out


class Integrator:
    """Integrates blocks of frames for one :class:`IntegrationSetup` (built once, reused).

    ``radial`` (npt,) bin centres in ``setup.unit``; ``ai`` the pyFAI integrator of the
    geometry (for comparisons); ``engine`` the :class:`SparseEngine` of its matrix. Pickles as
    its setup (rebuilt on the other side).
    """

    def __init__(self, setup: IntegrationSetup) -> None:
        self.setup = setup
        self.ai = geometry_from_setup(setup)
        unit = _radial_unit(setup.unit)
        shape = setup.shape
        # the file's (and a given) mask adds to the detector's own (module gaps), as with no
        # mask, where pyFAI's integrate1d(mask=...) replaces it: gaps a converter wrote as 0
        # counted as data beside a beamstop mask (the real CeO2 frame 7.5 % low, exit 0)
        masks = (setup.mask, detector_mask(self.ai.detector))
        given = [np.asarray(m) != 0 for m in masks if m is not None]
        mask = np.ascontiguousarray(np.logical_or.reduce(given), np.int8) if given else None
        radial_range = None
        if setup.radial_range is not None:
            radial_range = tuple(v / unit.scale for v in setup.radial_range)
        # the same call and arguments as pyFAI's integrate1d, for the same matrix and bins
        csr = self.ai.setup_sparse_integrator(
            shape,
            setup.npt,
            mask=mask,
            pos0_range=radial_range,
            unit=unit,
            split=setup.split,
            algo="CSR",
            scale=False,
        )
        self.radial = np.asarray(csr.bin_centers, dtype=np.float64) * unit.scale
        self.npt = setup.npt
        matrix = sparse.csr_matrix(csr.lut, shape=(setup.npt, shape[0] * shape[1]))
        if matrix.nnz == 0:
            covered = self.ai.array_from_unit(shape, "center", unit, scale=True)
            hidden = 0.0 if mask is None else float(np.mean(mask != 0))
            where = (
                "any radial range"
                if setup.radial_range is None
                else "the radial range "
                f"{setup.radial_range[0]:g}-{setup.radial_range[1]:g} {setup.unit}"
            )
            raise ValueError(
                f"no unmasked detector pixel falls in {where}: the detector covers "
                f"{np.nanmin(covered):.4g}-{np.nanmax(covered):.4g} {setup.unit}, and the "
                f"mask hides {hidden:.1%} of its pixels; choose a range inside it, or check "
                "the mask (non-zero = masked: one that hides nearly every pixel is inverted)"
            )
        norm, dark = self._pixel_corrections()
        self.engine = SparseEngine(
            matrix,
            norm,
            dark,
            filter=setup.filter,
            clip_sigma=setup.clip_sigma,
            max_iterations=setup.max_iterations,
            clip_error_model=setup.clip_error_model,
            percentile=setup.percentile,  # type: ignore[arg-type]
        )

    def __reduce__(self) -> tuple[type, tuple[IntegrationSetup]]:
        return (Integrator, (self.setup,))

    def _pixel_corrections(self) -> tuple[np.ndarray, np.ndarray]:
        """Static float32 norm (flat x polarisation x solid angle) and dark, flat (H*W,)."""
        setup, shape = self.setup, self.setup.shape
        norm = np.ones(shape, np.float32)
        if setup.flat is not None:
            norm = norm * setup.flat
        if setup.polarization_factor is not None:
            norm = norm * self.ai.polarization(shape, factor=setup.polarization_factor)
        if setup.correct_solid_angle:
            norm = norm * self.ai.solidAngleArray(shape, True)
        dark = setup.dark if setup.dark is not None else np.zeros(shape, np.float32)
        return norm.astype(np.float32).ravel(), dark.astype(np.float32).ravel()

    def integrate(self, frames: np.ndarray, monitor: np.ndarray | None = None) -> IntegrationResult:
        """Integrate frames (k, H, W) or one frame (H, W), any integer or float dtype.

        ``monitor`` (k,) divides each frame (pyFAI's ``normalization_factor``); a frame with a
        monitor that is not finite and > 0 gives NaN. Frames are processed a kernel group at a
        time, so temporary memory does not grow with k.
        """
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3 or frames.shape[1:] != self.setup.shape:
            raise ValueError(
                f"frames must be (k, {self.setup.shape[0]}, {self.setup.shape[1]}) "
                f"or one (H, W) frame, got shape {frames.shape}"
            )
        if frames.dtype.kind not in "iuf":
            raise ValueError(f"frames must have an integer or float dtype, got {frames.dtype}")
        if frames.dtype.kind == "f" and frames.dtype.itemsize < 4:
            frames = frames.astype(np.float32)  # float16: no kernel reads it
        elif not frames.dtype.isnative:
            frames = frames.astype(frames.dtype.newbyteorder("="))  # big-endian HDF5 frames
        frames = flag_unsigned_invalid(frames)
        k = frames.shape[0]
        if monitor is None:
            scale = np.ones(k)
        else:
            scale = np.asarray(monitor, dtype=np.float64).reshape(-1)
            if scale.shape != (k,):
                raise ValueError(f"monitor must have one value per frame ({k}), got {scale.shape}")
            scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.nan)
        intensity = np.empty((k, self.npt), np.float32)
        sigma = np.empty((k, self.npt), np.float32)
        count = np.empty((k, self.npt), np.float32)
        for start in range(0, k, self.engine.group):
            stop = min(start + self.engine.group, k)
            group = np.ascontiguousarray(frames[start:stop]).reshape(stop - start, -1)
            self._finish(
                self.engine.sums(group), scale[start:stop],
                intensity[start:stop], sigma[start:stop], count[start:stop],
            )  # fmt: skip
        return IntegrationResult(self.radial, self.setup.unit, intensity, sigma, count)

    @staticmethod
    def _finish(
        sums: np.ndarray,
        scale: np.ndarray,
        intensity: np.ndarray,
        sigma: np.ndarray,
        count: np.ndarray,
    ) -> None:
        """Write I, sigma and count (n, npt) of the sums (n, npt, 4) of n frames."""
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = np.where(sums[..., 2] > 0, sums[..., 2] * scale[:, None], np.nan)
            intensity[:] = sums[..., 0] / norm
            sigma[:] = np.sqrt(sums[..., 1]) / norm
        count[:] = sums[..., 3]

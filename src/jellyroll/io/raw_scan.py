"""Streaming writers of raw-scan HDF5 files (SPEC section 6 layout), frames or integrated.

Layout written (NeXus classes in brackets)::

    /entry                                  [NXentry]   @default
    /entry/instrument                       [NXinstrument]
    /entry/instrument/detector              [NXdetector]
    /entry/instrument/detector/data         (N, H, W) int32 frames, @units "counts"
    /entry/instrument/detector/poni         str, pyFAI PONI text
    /entry/instrument/detector/mask         (H, W) uint8, non-zero = masked (if given)
    /entry/sample                           [NXsample]
    /entry/sample/rotation_angle            (N,) float64, @units "deg"
    /entry/sample/translation               (N,) float64, @units "mm"
    /entry/monitor                          [NXmonitor]
    /entry/monitor/data                     (N,) float64, @units "counts" (if given)
    /entry/instrument/diode                 [NXdetector]
    /entry/instrument/diode/data            (N,) float64, @units "counts" (if given)
    /entry/data                             [NXdata] hard link to the frames, for viewers
    /entry/provenance                       str, JSON provenance record

or, for pre-integrated scans, instead of the frames::

    /entry/integrated                       [NXdata] @signal "intensity", @axes [".", "q"]
    /entry/integrated/intensity             (N, n_q) float32
    /entry/integrated/q                     (n_q,) float64, @units "1/angstrom"

Files are written to a temporary path beside the target and renamed into place on a clean
close; on an exception inside the ``with`` block nothing is left behind. Datasets grow in
chunks (``maxshape=(None, ...)``), so memory does not depend on the number of frames.
String datasets read back as bytes in h5py; use ``dset.asstr()[()]``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import h5py
import hdf5plugin
import numpy as np

from jellyroll.io.nexus import nx_group
from jellyroll.io.provenance import atomic_output, provenance_json, provenance_record
from jellyroll.io.scans import flag_unsigned_invalid

Compression = Literal["bitshuffle-lz4", "lz4", "zstd", "gzip", "none"]

_POSITION_CHUNK = 16384
_INTEGRATED_CHUNK_BYTES = 1 << 20
_INT32 = np.iinfo(np.int32)


def compression_options(compression: Compression) -> dict[str, Any]:
    """``create_dataset`` keyword arguments for a compression name (hdf5plugin filters)."""
    if compression == "bitshuffle-lz4":
        return dict(hdf5plugin.Bitshuffle(cname="lz4"))
    if compression == "lz4":
        return dict(hdf5plugin.LZ4())
    if compression == "zstd":
        return dict(hdf5plugin.Zstd())
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    if compression == "none":
        return {}
    raise ValueError(
        f"unknown compression {compression!r}; use bitshuffle-lz4, lz4, zstd, gzip or none"
    )


def _string(parent: h5py.Group, name: str, text: str) -> h5py.Dataset:
    return parent.create_dataset(name, data=text, dtype=h5py.string_dtype("utf-8"))


def _grow(dataset: h5py.Dataset, needed: int) -> None:
    """Make room for ``needed`` rows; capacity doubles so resizes stay rare (trimmed on close)."""
    if dataset.shape[0] < needed:
        dataset.resize(max(needed, 2 * dataset.shape[0]), axis=0)


def _vector(values: Any, n: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size != n:
        raise ValueError(f"{name} has {array.size} values for {n} frames")
    return array


class _ScanWriter:
    """Shared part of the scan writers: atomic file, sample motors, monitor, diode, provenance.

    Subclasses create their signal dataset in ``__init__`` and call :meth:`_append_rows`.
    """

    _default: str = "data"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_frames_hint: int | None = None,
        inputs_for_provenance: Iterable[str | os.PathLike[str]] = (),
        configuration: dict[str, Any] | None = None,
        start_time: str | None = None,
        state_of_charge: float | None = None,
    ) -> None:
        self.path = Path(path)
        self._inputs = [Path(p) for p in inputs_for_provenance]
        self._configuration = dict(configuration or {})
        self._capacity = max(int(n_frames_hint or 0), 0)
        self._n = 0
        self._closed = False
        self._optional: dict[str, bool | None] = {"monitor": None, "diode": None}
        self._stack = contextlib.ExitStack()
        try:
            tmp = self._stack.enter_context(atomic_output(self.path, inputs=self._inputs))
            # Entered after atomic_output, so it is closed before the rename (LIFO).
            self._file = self._stack.enter_context(h5py.File(tmp, "w"))
            root = self._file
            root.attrs["default"] = "entry"
            root.attrs["creator"] = "jellyroll"
            self._entry = nx_group(root, "entry", "NXentry")
            self._entry.attrs["default"] = self._default
            self._instrument = nx_group(self._entry, "instrument", "NXinstrument")
            sample = nx_group(self._entry, "sample", "NXsample")
            self._rotation = self._position_dataset(sample, "rotation_angle", "deg")
            self._translation = self._position_dataset(sample, "translation", "mm")
            if start_time is not None:  # NXentry/start_time, ISO 8601
                _string(self._entry, "start_time", start_time)
            if state_of_charge is not None:
                sample["state_of_charge"] = float(state_of_charge)
                sample["state_of_charge"].attrs["units"] = "fraction of full charge"
            self._monitor: h5py.Dataset | None = None
            self._diode: h5py.Dataset | None = None
        except BaseException:
            self._stack.close()
            raise

    @property
    def n_frames(self) -> int:
        """Number of frames (rows) appended so far."""
        return self._n

    def _position_dataset(self, group: h5py.Group, name: str, units: str) -> h5py.Dataset:
        dataset = group.create_dataset(
            name,
            shape=(self._capacity,),
            maxshape=(None,),
            dtype=np.float64,
            chunks=(_POSITION_CHUNK,),
        )
        dataset.attrs["units"] = units
        return dataset

    def _optional_dataset(self, kind: str, given: bool) -> h5py.Dataset | None:
        """Monitor/diode datasets exist if the first append gave them; later ones must agree."""
        if self._optional[kind] is None:
            self._optional[kind] = given
            if given and kind == "monitor":
                group = nx_group(self._entry, "monitor", "NXmonitor")
                self._monitor = self._position_dataset(group, "data", "counts")
            elif given:
                group = nx_group(self._instrument, "diode", "NXdetector")
                self._diode = self._position_dataset(group, "data", "counts")
        elif self._optional[kind] != given:
            raise ValueError(f"{kind} must be given with every append or with none")
        return self._monitor if kind == "monitor" else self._diode

    def _append_rows(
        self,
        signal: h5py.Dataset,
        rows: np.ndarray,
        rotation_angle_deg: Any,
        translation_mm: Any,
        monitor: Any,
        diode: Any,
    ) -> None:
        if self._closed:
            raise RuntimeError(f"{self.path}: writer is closed")
        k = rows.shape[0]
        columns = [
            (self._rotation, _vector(rotation_angle_deg, k, "rotation_angle_deg")),
            (self._translation, _vector(translation_mm, k, "translation_mm")),
        ]
        for kind, values in (("monitor", monitor), ("diode", diode)):
            dataset = self._optional_dataset(kind, values is not None)
            if dataset is not None:
                columns.append((dataset, _vector(values, k, kind)))
        if k == 0:
            return
        stop = self._n + k
        for dataset, values in [(signal, rows), *columns]:
            _grow(dataset, stop)
            dataset[self._n : stop] = values
        self._n = stop

    def _finish(self) -> None:
        """Trim the datasets to the frames written and write the provenance record."""
        for dataset in self._growing():
            dataset.resize(self._n, axis=0)
        record = provenance_record(self._configuration, self._inputs)
        _string(self._entry, "provenance", provenance_json(record))

    def _growing(self) -> list[h5py.Dataset]:
        datasets = [self._rotation, self._translation, self._monitor, self._diode]
        return [d for d in datasets if d is not None]

    def close(self) -> None:
        """Finish the file and rename it into place (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._finish()
        except BaseException as error:
            self._stack.__exit__(type(error), error, error.__traceback__)
            raise
        self._stack.close()

    def abort(self) -> None:
        """Discard the file being written (nothing is left on disk; idempotent)."""
        if self._closed:
            return
        self._closed = True
        error = RuntimeError("scan writing aborted")
        with contextlib.suppress(RuntimeError):
            self._stack.__exit__(RuntimeError, error, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class RawScanWriter(_ScanWriter):
    """Stream 2D detector frames and motor positions into a SPEC raw-scan HDF5 file.

    ``frame_shape`` (H, W); ``poni`` the pyFAI PONI text; ``mask`` (H, W) non-zero = masked;
    ``compression`` an hdf5plugin filter name (or gzip, none); ``chunk`` the HDF5 chunk of the
    frame stack (default one frame). Use as a context manager::

        with RawScanWriter(path, (H, W), poni=text, mask=None) as writer:
            writer.append(frames, rotation_angle_deg, translation_mm, monitor, diode)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        frame_shape: tuple[int, int],
        *,
        poni: str,
        mask: np.ndarray | None = None,
        n_frames_hint: int | None = None,
        compression: Compression = "bitshuffle-lz4",
        chunk: tuple[int, int, int] | None = None,
        inputs_for_provenance: Iterable[str | os.PathLike[str]] = (),
        configuration: dict[str, Any] | None = None,
    ) -> None:
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        filters = compression_options(compression)
        if mask is not None and np.shape(mask) != self.frame_shape:
            raise ValueError(f"mask shape {np.shape(mask)} != frame shape {self.frame_shape}")
        super().__init__(
            path,
            n_frames_hint=n_frames_hint,
            inputs_for_provenance=inputs_for_provenance,
            configuration=configuration,
        )
        try:
            detector = nx_group(self._instrument, "detector", "NXdetector")
            self._frames = detector.create_dataset(
                "data",
                shape=(self._capacity, *self.frame_shape),
                maxshape=(None, *self.frame_shape),
                dtype=np.int32,
                chunks=chunk or (1, *self.frame_shape),
                **filters,
            )
            self._frames.attrs["units"] = "counts"
            self._frames.attrs["interpretation"] = "image"
            _string(detector, "poni", poni)
            if mask is not None:
                detector.create_dataset(
                    "mask", data=(np.asarray(mask) != 0).astype(np.uint8), compression="gzip"
                )
            view = nx_group(self._entry, "data", "NXdata")
            view.attrs["signal"] = "data"
            view["data"] = self._frames
        except BaseException:
            self.abort()
            raise

    def append(
        self,
        frames: np.ndarray,
        rotation_angle_deg: Sequence[float] | np.ndarray,
        translation_mm: Sequence[float] | np.ndarray,
        monitor: Sequence[float] | np.ndarray | None = None,
        diode: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        """Append frames (k, H, W) or one frame (H, W), integer counts, with k positions each.

        In unsigned frames the dtype's largest value (Eiger's invalid pixel) is stored as -1,
        which the readers mask: as an int32 it would read as 65535 (or 2^32 - 1) counts."""
        array = np.asarray(frames)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or array.shape[1:] != self.frame_shape:
            raise ValueError(f"frames of shape {array.shape}, expected (k, *{self.frame_shape})")
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"frames must be integer counts, got {array.dtype}")
        array = flag_unsigned_invalid(array)
        if array.dtype != np.int32:
            if array.size and (array.min() < _INT32.min or array.max() > _INT32.max):
                raise ValueError("frame values do not fit in int32")
            array = array.astype(np.int32)
        self._append_rows(self._frames, array, rotation_angle_deg, translation_mm, monitor, diode)

    def _growing(self) -> list[h5py.Dataset]:
        return [self._frames, *super()._growing()]


class IntegratedScanWriter(_ScanWriter):
    """Stream pre-integrated patterns I(q) (k, n_q) and motor positions into a scan file.

    ``q_A`` (n_q,) bin centres in A^-1; ``poni`` optional PONI text of the geometry that was
    integrated; patterns are stored as ``dtype`` (float32 by default) in chunks of ~1 MB.
    """

    _default = "integrated"

    def __init__(
        self,
        path: str | os.PathLike[str],
        q_A: np.ndarray,
        *,
        poni: str | None = None,
        n_frames_hint: int | None = None,
        compression: Compression = "bitshuffle-lz4",
        dtype: Any = np.float32,
        inputs_for_provenance: Iterable[str | os.PathLike[str]] = (),
        configuration: dict[str, Any] | None = None,
        start_time: str | None = None,
        state_of_charge: float | None = None,
    ) -> None:
        q = np.asarray(q_A, dtype=np.float64).reshape(-1)
        steps = np.diff(q)
        if not (np.all(np.isfinite(q)) and (np.all(steps > 0) or np.all(steps < 0))):
            # the scan readers refuse such a q axis: refused here, before any pattern
            raise ValueError(
                f"{path}: q_A is not finite and strictly monotonic (a NaN, a repeated or an "
                "out-of-order value); give each pattern bin its own finite q, in order"
            )
        self.n_q = q.size
        filters = compression_options(compression)
        super().__init__(
            path,
            n_frames_hint=n_frames_hint,
            inputs_for_provenance=inputs_for_provenance,
            configuration=configuration,
            start_time=start_time,
            state_of_charge=state_of_charge,
        )
        try:
            integrated = nx_group(self._entry, "integrated", "NXdata")
            integrated.attrs["signal"] = "intensity"
            integrated.attrs["axes"] = [".", "q"]
            rows = max(1, min(4096, _INTEGRATED_CHUNK_BYTES // max(4 * self.n_q, 1)))
            self._intensity = integrated.create_dataset(
                "intensity",
                shape=(self._capacity, self.n_q),
                maxshape=(None, self.n_q),
                dtype=dtype,
                chunks=(rows, self.n_q),
                **filters,
            )
            q_dataset = integrated.create_dataset("q", data=q)
            q_dataset.attrs["units"] = "1/angstrom"
            if poni is not None:
                detector = nx_group(self._instrument, "detector", "NXdetector")
                _string(detector, "poni", poni)
        except BaseException:
            self.abort()
            raise

    def append(
        self,
        intensity: np.ndarray,
        rotation_angle_deg: Sequence[float] | np.ndarray,
        translation_mm: Sequence[float] | np.ndarray,
        monitor: Sequence[float] | np.ndarray | None = None,
        diode: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        """Append patterns (k, n_q) or one pattern (n_q,) with k positions each."""
        array = np.asarray(intensity)
        if array.ndim == 1:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != self.n_q:
            raise ValueError(f"intensity of shape {array.shape}, expected (k, {self.n_q})")
        self._append_rows(
            self._intensity, array, rotation_angle_deg, translation_mm, monitor, diode
        )

    def _growing(self) -> list[h5py.Dataset]:
        return [self._intensity, *super()._growing()]


def write_integrated_scan(
    path: str | os.PathLike[str],
    q_A: np.ndarray,
    intensity: np.ndarray | Iterable[np.ndarray],
    rotation_angle_deg: np.ndarray,
    translation_mm: np.ndarray,
    monitor: np.ndarray | None = None,
    diode: np.ndarray | None = None,
    *,
    poni: str | None = None,
    compression: Compression = "bitshuffle-lz4",
    block_rows: int = 4096,
    inputs_for_provenance: Iterable[str | os.PathLike[str]] = (),
    configuration: dict[str, Any] | None = None,
) -> Path:
    """Write a pre-integrated scan: ``intensity`` (N, n_q) array or an iterable of (k, n_q)
    blocks (streamed, never held whole), positions and monitor/diode as (N,) arrays.

    Returns the final path. Raises ValueError (leaving no file) when the blocks do not add up
    to N rows.
    """
    rotation = np.asarray(rotation_angle_deg, dtype=np.float64).reshape(-1)
    translation = np.asarray(translation_mm, dtype=np.float64).reshape(-1)
    n_total = rotation.size
    extras = [
        None if v is None else np.asarray(v, np.float64).reshape(-1) for v in (monitor, diode)
    ]
    if translation.size != n_total or any(v is not None and v.size != n_total for v in extras):
        raise ValueError("rotation, translation, monitor and diode must have the same length")
    if isinstance(intensity, np.ndarray) or hasattr(intensity, "shape"):
        blocks: Iterable[np.ndarray] = (
            intensity[i : i + block_rows] for i in range(0, len(intensity), block_rows)
        )
    else:
        blocks = intensity
    with IntegratedScanWriter(
        path,
        q_A,
        poni=poni,
        n_frames_hint=n_total,
        compression=compression,
        inputs_for_provenance=inputs_for_provenance,
        configuration=configuration,
    ) as writer:
        for block in blocks:
            array = np.asarray(block)
            if array.ndim == 1:
                array = array[None]
            start, stop = writer.n_frames, writer.n_frames + array.shape[0]
            if stop > n_total:
                raise ValueError(f"intensity blocks give more than the {n_total} positions")
            writer.append(
                array,
                rotation[start:stop],
                translation[start:stop],
                *(None if v is None else v[start:stop] for v in extras),
            )
        if writer.n_frames != n_total:
            raise ValueError(f"intensity has {writer.n_frames} rows for {n_total} positions")
    return writer.path

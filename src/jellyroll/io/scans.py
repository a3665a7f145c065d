"""Readers for every scan input of SPEC section 6, behind one block-reading interface.

- raw-scan HDF5 (``/entry/instrument/detector/data`` + PONI, mask, motors, monitor, diode);
- pre-integrated HDF5 (``/entry/integrated/intensity`` and ``/entry/integrated/q``);
- Bliss-style HDF5 with one scan entry per line, described by a small TOML mapping;
- CBF/EDF frame series (fabio) with a CSV table of motor positions.

Frames are read in blocks; unreadable frames are reported and flagged missing, never
silently zero. A read can be started on a pool of threads and collected later
(:meth:`ScanReader.start_read`), so the next frames are read and decoded while the present
ones are integrated: HDF5 frames stored one per chunk are then decoded in parallel outside
h5py (:mod:`jellyroll.io.chunks`), CBF/EDF files read and decoded by fabio in parallel.
"""

from __future__ import annotations

import csv
import math
import os
import re
import tomllib
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import fabio
import h5py
import hdf5plugin  # noqa: F401  (registers the HDF5 compression filters)
import numpy as np

from jellyroll.conventions import MAX_TRANSLATION_SPAN_MM, deg_per, mm_per, per_angstrom, unit_text
from jellyroll.io.chunks import ChunkFrames
from jellyroll.io.provenance import data_files

FRAMES = "/entry/instrument/detector/data"
PONI = "/entry/instrument/detector/poni"
MASK = "/entry/instrument/detector/mask"
ANGLE = "/entry/sample/rotation_angle"
TRANSLATION = "/entry/sample/translation"
MONITOR = "/entry/monitor/data"
DIODE = "/entry/instrument/diode/data"
INTEGRATED = "/entry/integrated/intensity"
INTEGRATED_Q = "/entry/integrated/q"
SCAN_DATASETS = (FRAMES, INTEGRATED, INTEGRATED_Q, PONI, MASK, ANGLE, TRANSLATION, MONITOR, DIODE)
"""Every dataset of a SPEC scan file that a reduction reads."""


class ScanFormatError(ValueError):
    """An input scan is unusable; the message names the file, the dataset and the remedy."""


def _require_file(path: Path) -> None:
    """ScanFormatError naming ``path`` unless it is a file (a folder was said to be missing)."""
    if path.is_dir():
        raise ScanFormatError(f"{path} is a folder, not a scan file; give the scan's file")
    if not path.is_file():
        raise ScanFormatError(f"{path}: no such scan file")


@dataclass
class ScanInfo:
    """What a scan holds, per frame in file order (all (N,) arrays)."""

    source: str
    kind: Literal["frames", "integrated"]
    n_frames: int
    rotation_angle_deg: np.ndarray
    translation_mm: np.ndarray
    monitor: np.ndarray | None = None
    diode: np.ndarray | None = None
    frame_shape: tuple[int, int] | None = None
    poni: str | None = None
    mask: np.ndarray | None = None
    q_A: np.ndarray | None = None
    q_unit_stated: bool = True  # False: integrated q without @units, read as 1/A (SPEC)
    files: list[Path] = field(default_factory=list)
    poni_source: str | None = None  # where ``poni`` came from: a file, or file:dataset
    mask_source: str | None = None  # where ``mask`` came from: a file, or file:dataset


@dataclass
class Block:
    """Frames ``start:stop`` of a scan; ``valid[i]`` False where frame i could not be read."""

    start: int
    stop: int
    data: np.ndarray  # (k, H, W) frames or (k, n_q) integrated patterns
    valid: np.ndarray
    problems: list[str] = field(default_factory=list)


class PendingBlock(Protocol):
    def result(self) -> Block: ...


class ScanReader(Protocol):
    info: ScanInfo

    def read(self, start: int, stop: int) -> Block: ...

    def start_read(
        self, start: int, stop: int, pool: Executor | None, out: np.ndarray | None = None
    ) -> PendingBlock: ...

    def close(self) -> None: ...


FrameRead = Callable[[int, np.ndarray], str | None]
"""Reads frame i into an (H, W) array; returns None, or the problem that left it unread."""


@dataclass
class _Ready:
    block: Block

    def result(self) -> Block:
        return self.block


@dataclass
class _Frames:
    """Frames ``start:stop`` read one by one into ``data``, by tasks on a pool."""

    start: int
    stop: int
    data: np.ndarray
    tasks: list[Future]

    def result(self) -> Block:
        problems = [task.result() for task in self.tasks]
        valid = np.array([problem is None for problem in problems], dtype=bool)
        return Block(self.start, self.stop, self.data, valid, [p for p in problems if p])


def _read_frames(
    start: int,
    stop: int,
    read_frame: FrameRead,
    shape: tuple[int, ...],
    dtype: np.dtype,
    pool: Executor | None,
    out: np.ndarray | None,
) -> PendingBlock:
    """Frames ``start:stop`` read by ``read_frame``, on ``pool`` if given, into ``out``
    ((>= stop - start, *shape) of ``dtype``, reused by the caller) or a new array."""
    k = stop - start
    if out is not None and (out.shape[0] < k or out.shape[1:] != shape or out.dtype != dtype):
        raise ValueError(f"out {out.shape} {out.dtype} cannot hold ({k}, *{shape}) {dtype}")
    data = np.empty((k, *shape), dtype) if out is None else out[:k]
    if pool is None:
        problems = [read_frame(i, data[i - start]) for i in range(start, stop)]
        valid = np.array([problem is None for problem in problems], dtype=bool)
        return _Ready(Block(start, stop, data, valid, [p for p in problems if p]))
    tasks = [pool.submit(read_frame, i, data[i - start]) for i in range(start, stop)]
    return _Frames(start, stop, data, tasks)


def _chunk_frame_reader(
    dataset: h5py.Dataset, path: Path, unwritten: np.ndarray | None
) -> FrameRead | None:
    """Frame reader decoding the chunks of ``dataset`` outside h5py (None: not possible);
    a chunk it cannot decode is read by h5py, the judge of what is unreadable, unless it
    was never written (``unwritten``: :func:`_unwritten_rows` of the dataset)."""
    direct = ChunkFrames.of(dataset)
    if direct is None:
        return None

    def read_frame(i: int, out: np.ndarray) -> str | None:
        try:
            direct.read_into(i, out)
            return None
        except Exception:  # any codec error: h5py decides below, with its own message
            pass
        if unwritten is not None and unwritten[i]:
            out[...] = 0
            return _unwritten_problem(path, dataset, i)
        try:
            out[...] = dataset[i]
            return None
        except (OSError, RuntimeError, ValueError) as error:
            out[...] = 0
            return f"{path}: {dataset.name}[{i}] unreadable ({error}); frame marked missing"

    return read_frame


def _stated_units(dataset: h5py.Dataset, where: Path | str) -> object | None:
    """The unit a dataset states: its ``@units``, or the same attribute spelt ``@unit`` or
    in other capitals (``@Units``), which writers use too (None when it states none). A
    rotation in radians under ``@unit = "rad"`` was read as degrees, 0-2.4 deg for
    0-135, exit 0. ScanFormatError when two of them disagree."""
    stated = {
        name: unit_text(value)
        for name, value in dataset.attrs.items()
        if name.lower() in ("units", "unit")
    }
    if len(set(stated.values())) > 1:
        raise ScanFormatError(
            f"{where}: {dataset.name} states its unit twice, differently "
            f"({', '.join(f'@{k} = {v!r}' for k, v in sorted(stated.items()))}); keep the "
            "right one, as @units"
        )
    if "units" in dataset.attrs:
        return dataset.attrs["units"]
    return next(iter(stated.values()), None)


def _q_factor(f: h5py.File, path: Path) -> float | None:
    """Inverse angstroms per unit of the integrated patterns' q; None when ``@units`` is
    absent (SPEC: 1/angstrom; the reduction checks that reading). ScanFormatError for a
    unit jellyroll does not read as one of q."""
    units = _stated_units(f[INTEGRATED_Q], path)
    if units is None:
        return None
    factor = per_angstrom(units)
    if factor is None:
        raise ScanFormatError(
            f"{path}: {INTEGRATED_Q} is in {unit_text(units)!r}, not a unit of q that jellyroll "
            "reads (1/angstrom, 1/nm, pyFAI's q_A^-1 and q_nm^-1); integrate the patterns in "
            'q, or write its unit as @units = "1/angstrom" or "1/nm"'
        )
    return factor


def _require(f: h5py.File, path: Path, name: str) -> h5py.Dataset:
    if name not in f:
        raise ScanFormatError(
            f"{path}: dataset {name} is missing; a raw scan needs it (see SPEC section 6)"
        )
    return f[name]


def _vector(f: h5py.File, path: Path, name: str, n: int, *, optional: bool = False):
    if name not in f:
        if optional:
            return None
        _require(f, path, name)
    dataset = f[name]
    if dataset.dtype.kind not in "biuf":
        raise ScanFormatError(
            f"{path}: dataset {name} holds {_kind(dataset)} (e.g. {_first(dataset)!r}), not "
            "numbers; write one number per frame"
        )
    values = np.asarray(dataset[()], dtype=np.float64).ravel()
    if values.size != n:
        raise ScanFormatError(
            f"{path}: dataset {name} has shape {dataset.shape} ({values.size} values) but "
            f"there are {n} frames; every per-frame dataset must have one value per frame"
        )
    return values


def _kind(dataset: h5py.Dataset) -> str:
    """What a dataset that is not numbers holds, in words."""
    return "text" if h5py.check_string_dtype(dataset.dtype) else f"{dataset.dtype} values"


def _first(dataset: h5py.Dataset) -> object:
    """The first value of ``dataset`` (text decoded), to show in a message."""
    value = dataset[()] if dataset.ndim == 0 else dataset[(0,) * dataset.ndim]
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _motor(
    f: h5py.File, path: Path, name: str, n: int, per: Callable[[object], float | None], unit: str
) -> np.ndarray:
    """A per-frame motor position in ``unit``, converted by ``per`` from its ``@units``
    (``unit`` when absent, as SPEC section 6 says); an unknown unit is refused, never read
    as ``unit``."""
    values = _vector(f, path, name, n)
    stated = _stated_units(f[name], path)
    given = unit_text(unit if stated is None else stated)
    factor = per(given)
    if factor is None:
        raise ScanFormatError(
            f"{path}: {name} is in {given!r}, a unit jellyroll does not know; give it in "
            f"{unit} (SPEC section 6) or a unit convertible to it"
        )
    if stated is None:
        _refuse_other_unit_unstated(path, name, values, unit)
    return values * factor


_STATE_THE_UNIT = {
    "deg": 'give it @units = "rad" (or "deg")',
    "mm": 'give it @units = "um" (or "mm")',
}
"""What to do about motor readings without a unit that cannot be in the default one."""


def _refuse_other_unit_unstated(
    path: Path, name: str, values: np.ndarray, unit: str, remedy: str | None = None
) -> None:
    """ScanFormatError for motor readings without a stated unit that read as their default
    ``unit`` cannot be: rotation angles of at least 8 positions spanning 1.5 to 6.35 (a
    turn in radians; in degrees a slice of a few degrees), translations spanning more than
    :data:`MAX_TRANSLATION_SPAN_MM` (micrometres). Both were reduced whole, exit 0, and
    refused only by `jellyroll reconstruct`. ``remedy``: what to do (default: state the
    dataset's ``@units``)."""
    finite = values[np.isfinite(values)]
    span = float(np.ptp(finite)) if finite.size else 0.0
    remedy = remedy or _STATE_THE_UNIT[unit]
    if unit == "deg" and np.unique(finite).size >= 8 and 1.5 < span <= 2.02 * math.pi:
        raise ScanFormatError(
            f"{path}: {name} states no unit and spans {span:.4g}, as a scan in radians would "
            f"(read as degrees, the default, it covers {span:.2g} deg); {remedy}"
        )
    if unit == "mm" and span > MAX_TRANSLATION_SPAN_MM:
        raise ScanFormatError(
            f"{path}: {name} states no unit and spans {span:.6g}, as micrometres would (read "
            f"as millimetres, the default, more than {MAX_TRANSLATION_SPAN_MM:g} mm for one "
            f"slice); {remedy}"
        )


def _text(value: Any) -> str:
    """A string dataset's text: a scalar, or a (1,) array or an array of lines (as NeXus
    writers often store strings), joined by newlines."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return "\n".join(_text(item) for item in value.ravel())
    return value.decode() if isinstance(value, bytes) else str(value)


def read_poni_text(path: str | Path) -> str:
    """Text of a PONI file (clear error if missing)."""
    path = Path(path)
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "not found"
        raise ScanFormatError(f"{path}: PONI file {state}; pass the calibration with --poni")
    try:
        return path.read_text()
    except UnicodeDecodeError as error:
        raise ScanFormatError(
            f"{path}: not a PONI file (binary, not the text pyFAI writes: {error.reason} at "
            f"byte {error.start}); pass the calibration's .poni file with --poni"
        ) from error


def read_mask(path: str | Path) -> np.ndarray:
    """A detector mask (non-zero = masked) from EDF/CBF/TIFF (fabio) or .npy (no pickles)."""
    path = Path(path)
    if not path.is_file():
        raise ScanFormatError(f"{path}: mask file not found")
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False) != 0
        return fabio.open(str(path)).data != 0
    except Exception as error:  # fabio raises many types; np.load EOFError when empty
        raise ScanFormatError(f"{path}: not a readable mask image ({error})") from error


class Hdf5ScanReader:
    """SPEC section 6 raw-scan or pre-integrated HDF5 file (external links allowed)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _require_file(self.path)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as error:
            raise ScanFormatError(f"{self.path}: not a readable HDF5 file ({error})") from error
        f = self._file
        if FRAMES in f:
            self._data = f[FRAMES]
            if self._data.ndim != 3:
                raise ScanFormatError(
                    f"{self.path}: {FRAMES} has shape {self._data.shape}; expected (N, H, W)"
                )
            kind: Literal["frames", "integrated"] = "frames"
        elif INTEGRATED in f:
            self._data = f[INTEGRATED]
            kind = "integrated"
        else:
            raise ScanFormatError(
                f"{self.path}: neither {FRAMES} (raw frames) nor {INTEGRATED} (integrated "
                "patterns) exists; for Bliss files give a TOML mapping of the dataset paths"
            )
        for name in SCAN_DATASETS:
            if name in f and isinstance(f[name], h5py.Dataset):
                _check_virtual_sources(self.path, f[name])
        n = int(self._data.shape[0])
        self.info = ScanInfo(
            source=str(self.path),
            kind=kind,
            n_frames=n,
            rotation_angle_deg=_motor(f, self.path, ANGLE, n, deg_per, "deg"),
            translation_mm=_motor(f, self.path, TRANSLATION, n, mm_per, "mm"),
            monitor=_vector(f, self.path, MONITOR, n, optional=True),
            diode=_vector(f, self.path, DIODE, n, optional=True),
            files=data_files(self.path, (f[name] for name in SCAN_DATASETS if name in f)),
        )
        factor: float | None = 1.0  # inverse angstroms per unit of q; None: not stated
        if kind == "frames":
            self.info.frame_shape = tuple(int(s) for s in self._data.shape[1:])  # type: ignore[assignment]
            self.info.poni = _text(f[PONI][()]) if PONI in f else None
            self.info.poni_source = f"{self.path}:{PONI}" if PONI in f else None
            if MASK in f:
                mask = f[MASK][()]
                if mask.shape != self.info.frame_shape:
                    raise ScanFormatError(
                        f"{self.path}: {MASK} has shape {mask.shape}, frames are "
                        f"{self.info.frame_shape}"
                    )
                self.info.mask = mask != 0
                self.info.mask_source = f"{self.path}:{MASK}"
        else:
            q = _require(f, self.path, INTEGRATED_Q)[()]
            if q.shape != (self._data.shape[1],):
                raise ScanFormatError(
                    f"{self.path}: {INTEGRATED_Q} has {q.size} values, patterns have "
                    f"{self._data.shape[1]} bins"
                )
            factor = _q_factor(f, self.path)
            self.info.q_A = np.asarray(q, dtype=np.float64) * (factor or 1.0)
            steps = np.diff(self.info.q_A)
            if not (np.all(np.isfinite(q)) and (np.all(steps > 0) or np.all(steps < 0))):
                # else reduced and reconstructed, then refused by the maps, naming no file
                raise ScanFormatError(
                    f"{self.path}: {INTEGRATED_Q} is not finite and strictly monotonic (a "
                    "NaN, a repeated or an out-of-order value); give each pattern bin its own "
                    "finite q, in order"
                )
        self.info.q_unit_stated = factor is not None
        self._unwritten = _unwritten_rows(self._data, self.path)
        frames = kind == "frames"
        self._read_frame = (
            _chunk_frame_reader(self._data, self.path, self._unwritten) if frames else None
        )

    def read(self, start: int, stop: int) -> Block:
        return self.start_read(start, stop, None).result()

    def start_read(
        self, start: int, stop: int, pool: Executor | None, out: np.ndarray | None = None
    ) -> PendingBlock:
        """Start reading frames ``start:stop`` on ``pool`` (None: read now); frames stored one
        per chunk are decoded in parallel into ``out`` if given (see :func:`_read_frames`)."""
        if self._read_frame is not None:
            shape = tuple(self._data.shape[1:])
            return _read_frames(start, stop, self._read_frame, shape, self._data.dtype, pool, out)
        read = (self._data, self.path, start, stop, self._unwritten)
        return _Ready(_read_block(*read)) if pool is None else pool.submit(_read_block, *read)

    def close(self) -> None:
        self._file.close()


def _unwritten_rows(dataset: h5py.Dataset, path: Path) -> np.ndarray | None:
    """Which rows (frames or patterns) of a chunked dataset lie, wholly or in part, in a
    chunk the file does not hold: never written (a pre-allocated dataset of an aborted
    acquisition). h5py reads them as the fill value, 0 counts, a frame like any other.
    (n,) bool, or None when every chunk is stored (and for contiguous and virtual
    datasets). One count of the chunks, and one pass over their index where some are
    missing (0.1 s for 1e5 chunks; a look-up per chunk took 0.4 ms each). ScanFormatError
    naming ``path`` and the dataset when the chunk index is damaged (HDF5's bare "Can't
    get number of chunks (wrong B-tree signature)" before): no frame can be found."""
    chunks = dataset.chunks
    if chunks is None or dataset.is_virtual:
        return None
    per_axis = [-(-n // c) for n, c in zip(dataset.shape, chunks, strict=True)]
    try:
        if dataset.id.get_num_chunks() == math.prod(per_axis):
            return None
    except (OSError, RuntimeError) as error:
        raise ScanFormatError(
            f"{path}: the index of the chunks of {dataset.name} is damaged ({error}), so no "
            "frame can be found; copy the file again from where it was written"
        ) from error
    stored = np.zeros(per_axis[0], dtype=np.int64)  # chunks stored per chunk of rows

    def count(info: Any) -> None:
        stored[info.chunk_offset[0] // chunks[0]] += 1

    dataset.id.chunk_iter(count)
    partial = np.repeat(stored < math.prod(per_axis[1:]), chunks[0])
    return partial[: dataset.shape[0]]


def _virtual_source_files(holder: Path, name: str, prefix: str) -> list[Path]:
    """Where HDF5 looks for the source file ``name`` of a virtual dataset in ``holder``, in
    its order: the name as given (absolute), then the name (its last part, for an absolute
    one) under ``HDF5_VDS_PREFIX``, the dataset's virtual prefix, the holder's folder and
    the working folder (``${ORIGIN}`` is the holder's folder)."""
    given = Path(name)
    if name == ".":
        return [holder]
    relative = Path(given.name) if given.is_absolute() else given
    prefixes = [os.environ.get("HDF5_VDS_PREFIX", ""), prefix, str(holder.parent), "."]
    found = [given] if given.is_absolute() else []
    for base in prefixes:
        if base:
            found.append(Path(base.replace("${ORIGIN}", str(holder.parent))) / relative)
    return list(dict.fromkeys(found))


def _mapped_rows(space: h5py.h5s.SpaceID) -> tuple[int, int] | None:
    """First and last row of a virtual dataset that a mapping's selection covers (None when
    the selection is not a hyperslab or all)."""
    kind = space.get_select_type()
    if kind == h5py.h5s.SEL_ALL:
        return 0, int(space.shape[0]) - 1
    if kind != h5py.h5s.SEL_HYPERSLABS:
        return None
    blocks = space.get_select_hyper_blocklist()
    return int(blocks[:, 0, 0].min()), int(blocks[:, 1, 0].max())


def _source_problem(
    files: list[Path], dataset_name: str, space: h5py.h5s.SpaceID, n_mapped: int
) -> str | None:
    """Why the source ``dataset_name`` (in the first of ``files`` that exists) cannot give
    what the mapping's source selection ``space`` reads (``n_mapped`` elements), or None."""
    source = next((file for file in files if file.is_file()), None)
    if source is None:
        return "which is not there"
    try:
        with h5py.File(source, "r") as f:
            if dataset_name not in f:
                return f"which exists but holds no dataset {dataset_name}"
            shape = f[dataset_name].shape
    except OSError as error:
        return f"which cannot be read ({error})"
    short = f"whose dataset has shape {shape}, shorter than the part mapped"
    if space.get_select_type() == h5py.h5s.SEL_ALL and math.prod(shape) < n_mapped:
        return short
    if space.get_select_type() == h5py.h5s.SEL_HYPERSLABS:
        end = space.get_select_hyper_blocklist()[:, 1].max(axis=0)
        if len(end) == len(shape) and any(e >= n for e, n in zip(end, shape, strict=True)):
            return short
    return None


def _check_virtual_sources(path: Path, dataset: h5py.Dataset) -> None:
    """ScanFormatError when a source of the virtual ``dataset`` (e.g. the frames of a
    multi-file scan) is missing, lacks its dataset or is shorter than mapped: HDF5 reads
    those rows as the fill value (0 counts), frames like any other, without an error (half
    a scan's data files missing gave a SAXS map 149 % off the full one's, exit 0)."""
    if not dataset.is_virtual:
        return
    holder = Path(dataset.file.filename)
    prefix = os.fsdecode(dataset.id.get_access_plist().get_virtual_prefix() or b"")
    plist = dataset.id.get_create_plist()
    for j in range(plist.get_virtual_count()):
        name, dataset_name = plist.get_virtual_filename(j), plist.get_virtual_dsetname(j)
        files = _virtual_source_files(holder, name, prefix)
        space = plist.get_virtual_vspace(j)
        n_mapped = int(space.get_select_npoints())
        problem = _source_problem(files, dataset_name, plist.get_virtual_srcspace(j), n_mapped)
        if problem is None:
            continue
        rows = _mapped_rows(space)
        where = f"rows {rows[0]} to {rows[1]}" if rows else "part of it"
        raise ScanFormatError(
            f"{path}: {dataset.name} is a virtual dataset whose {where} come from {name}:"
            f"{dataset_name}, {problem} (looked for {', '.join(map(str, files))}); HDF5 would "
            "read them as its fill value, as if measured. Put that file beside the scan "
            "(or set HDF5_VDS_PREFIX to its folder)"
        )


def _unwritten_problem(path: Path, dataset: h5py.Dataset, i: int) -> str:
    return (
        f"{path}: {dataset.name}[{i}] was never written (its chunk is not in the file: an "
        "aborted acquisition?); frame marked missing, not read as zero counts"
    )


def _read_block(
    dataset: h5py.Dataset, path: Path, start: int, stop: int, unwritten: np.ndarray | None
) -> Block:
    """Rows ``start:stop`` of ``dataset``; ``unwritten``: :func:`_unwritten_rows` of it."""
    unwritten = np.zeros(stop - start, bool) if unwritten is None else unwritten[start:stop]
    problems = [_unwritten_problem(path, dataset, start + k) for k in np.flatnonzero(unwritten)]
    try:
        data = dataset[start:stop]
        return Block(start, stop, data, ~unwritten, problems)
    except (OSError, RuntimeError, ValueError):
        pass
    # one bad chunk must not cost the block: retry frame by frame
    shape = (stop - start, *dataset.shape[1:])
    data = np.zeros(shape, dtype=dataset.dtype)
    valid = ~unwritten
    for i in np.flatnonzero(valid) + start:
        try:
            data[i - start] = dataset[i]
        except (OSError, RuntimeError, ValueError) as error:
            valid[i - start] = False
            problems.append(
                f"{path}: {dataset.name}[{i}] unreadable ({error}); frame marked missing"
            )
    return Block(start, stop, data, valid, problems)


@dataclass(frozen=True)
class BlissMapping:
    """Dataset paths of a Bliss-style file, one scan entry per line (TOML ``[bliss]`` table).

    ``frames``, ``translation`` and optional ``monitor``/``diode`` are per-frame datasets
    inside each entry; ``rotation_angle`` is per frame or one value per entry. ``entries``
    is a regular expression on the top-level entry names (default: numbered scans ``N.1``).
    ``translation_unit`` (um, µm, nm or m are converted, another unit is refused; by
    default the dataset's ``@units``, else mm; one that contradicts ``@units`` is refused)
    and ``poni``/``mask`` file paths (relative to the TOML file) complete it. The rotation
    angle is read in its ``@units`` (degrees when absent).
    """

    frames: str
    rotation_angle: str
    translation: str
    monitor: str | None = None
    diode: str | None = None
    entries: str = r"^\d+\.1$"
    translation_unit: str | None = None
    poni: str | None = None
    mask: str | None = None
    source: str = "the [bliss] mapping"  # the TOML file, for messages

    @classmethod
    def from_toml(cls, path: str | Path) -> BlissMapping:
        path = Path(path)
        try:
            table = tomllib.loads(path.read_text()).get("bliss")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ScanFormatError(f"{path}: not a readable TOML mapping ({error})") from error
        if not isinstance(table, dict):
            raise ScanFormatError(f"{path}: needs a [bliss] table of dataset paths")
        known = set(cls.__dataclass_fields__) - {"source"}
        unknown = set(table) - known
        if unknown:
            raise ScanFormatError(
                f"{path}: unknown keys {sorted(unknown)} in [bliss]; known: {sorted(known)}"
            )
        missing = {"frames", "rotation_angle", "translation"} - set(table)
        if missing:
            raise ScanFormatError(f"{path}: [bliss] lacks {sorted(missing)}")
        for key in ("poni", "mask"):
            if key in table:
                table[key] = str((path.parent / table[key]).resolve())
        return cls(**table, source=str(path))


def _bliss_factor(
    dataset: h5py.Dataset,
    where: str,
    per: Callable[[object], float | None],
    unit: str,
    mapping: BlissMapping | None = None,
) -> float:
    """``unit`` per unit of a Bliss motor ``dataset``: its ``@units``, or the mapping's
    ``translation_unit`` (given ``mapping``), else ``unit``. ScanFormatError for a unit
    jellyroll does not know and for a mapping's unit that contradicts ``@units`` (a
    translation in um read as mm gave a map pixel of 20 mm, exit 0 from the reduction)."""
    stated = _stated_units(dataset, where)
    own = None if stated is None else per(unit_text(stated))
    if stated is not None and own is None:
        raise ScanFormatError(
            f"{where}: {dataset.name} is in {unit_text(stated)!r} (its @units), a unit "
            f"jellyroll does not know; give it in {unit} or a unit convertible to it"
        )
    if mapping is None or mapping.translation_unit is None:
        return 1.0 if own is None else own
    mapped = mapping.translation_unit
    factor = per(mapped)
    if factor is None:
        raise ScanFormatError(
            f"{mapping.source}: translation_unit {mapped!r} is not a unit jellyroll knows; "
            "write it as mm, um, nm or m"
        )
    if own is not None and not math.isclose(own, factor):
        raise ScanFormatError(
            f"{mapping.source}: translation_unit = {mapped!r}, but {where}:{dataset.name} "
            f"says its values are in {unit_text(stated)!r} (@units): drop translation_unit "
            "to read the dataset's unit, or correct one of them"
        )
    return factor


def flag_unsigned_invalid(frames: np.ndarray) -> np.ndarray:
    """Unsigned frames with their dtype's largest value (Eiger's invalid pixel: 2^32 - 1,
    2^16 - 1; a saturated one elsewhere) as -1, masked like a Pilatus gap; copied (int64)
    only when a frame holds one (else 4.3e9 counts passed as data under ``filter="none"``)."""
    if frames.dtype.kind != "u":
        return frames
    flagged = frames == np.iinfo(frames.dtype).max
    if not flagged.any():
        return frames
    return np.where(flagged, -1, frames.astype(np.int64))


def invalid_pixels(frame: np.ndarray) -> np.ndarray:
    """Where a raw frame holds no measurement (bool, the frame's shape): negative values
    (Pilatus module gaps), NaN and the unsigned dtype's largest value, as the integration
    masks them per frame."""
    frame = flag_unsigned_invalid(np.asarray(frame))
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(frame) & (frame >= 0))


def natural_key(text: str) -> list[Any]:
    """Sort key of names with numbers in natural order, case-insensitive: ``f2 < F10``.

    The runs of decimal digits are the odd parts of the split: ``str.isdigit`` also holds
    for a lone ``\u00b2`` that ``int`` refuses (``x1\u00b2`` raised ValueError)."""
    parts = re.split(r"(\d+)", text)
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(parts)]


class BlissScanReader:
    """Bliss-style HDF5: each line of the scan is one entry; frames are concatenated."""

    def __init__(self, path: str | Path, mapping: BlissMapping) -> None:
        self.path = Path(path)
        _require_file(self.path)
        self._file = h5py.File(self.path, "r")
        pattern = re.compile(mapping.entries)
        names = sorted((k for k in self._file if pattern.search(k)), key=natural_key)
        if not names:
            raise ScanFormatError(
                f"{self.path}: no entry matches {mapping.entries!r}; set `entries` in the mapping"
            )
        self._datasets: list[h5py.Dataset] = []
        angles, translations, monitors, diodes = [], [], [], []
        stated = {"angle": False, "translation": mapping.translation_unit is not None}
        for name in names:
            entry = self._file[name]
            where = f"{self.path}:/{name}"
            for key in ("frames", "rotation_angle", "translation"):
                if getattr(mapping, key) not in entry:
                    raise ScanFormatError(f"{where}: dataset {getattr(mapping, key)} missing")
            frames = entry[mapping.frames]
            _check_virtual_sources(self.path, frames)
            n = frames.shape[0]
            self._datasets.append(frames)
            rotation = entry[mapping.rotation_angle]
            angle = np.asarray(rotation[()], dtype=float).ravel()
            if angle.size not in (1, n):
                raise ScanFormatError(
                    f"{where}: {mapping.rotation_angle} has {angle.size} values for {n} frames"
                )
            degrees = _bliss_factor(rotation, where, deg_per, "deg")
            angles.append(np.broadcast_to(angle * degrees, (n,)))
            stated["angle"] |= _stated_units(rotation, where) is not None
            stated["translation"] |= _stated_units(entry[mapping.translation], where) is not None
            scale = _bliss_factor(entry[mapping.translation], where, mm_per, "mm", mapping)
            translations.append(self._per_frame(entry, mapping.translation, n, where) * scale)
            for target, key in ((monitors, mapping.monitor), (diodes, mapping.diode)):
                if key is not None:
                    target.append(self._per_frame(entry, key, n, where))
        shapes = {d.shape[1:] for d in self._datasets}
        if len(shapes) != 1:
            raise ScanFormatError(f"{self.path}: entries have different frame shapes {shapes}")
        # the lines' angles together: one per entry reads as no scan in any single entry
        if not stated["angle"]:
            _refuse_other_unit_unstated(
                self.path, mapping.rotation_angle, np.concatenate(angles), "deg"
            )
        if not stated["translation"]:
            _refuse_other_unit_unstated(
                self.path, mapping.translation, np.concatenate(translations), "mm",
                f"{_STATE_THE_UNIT['mm']}, or translation_unit in the mapping",
            )  # fmt: skip
        self._offsets = np.cumsum([0] + [d.shape[0] for d in self._datasets])
        self._unwritten = [_unwritten_rows(d, self.path) for d in self._datasets]
        self._frame_readers = [
            _chunk_frame_reader(d, self.path, unwritten)
            for d, unwritten in zip(self._datasets, self._unwritten, strict=True)
        ]
        self.info = ScanInfo(
            source=str(self.path),
            kind="frames",
            n_frames=int(self._offsets[-1]),
            rotation_angle_deg=np.concatenate(angles),
            translation_mm=np.concatenate(translations),
            monitor=np.concatenate(monitors) if monitors else None,
            diode=np.concatenate(diodes) if diodes else None,
            frame_shape=tuple(int(s) for s in shapes.pop()),  # type: ignore[arg-type]
            poni=read_poni_text(mapping.poni) if mapping.poni else None,
            poni_source=mapping.poni,
            mask_source=mapping.mask,
            mask=read_mask(mapping.mask) if mapping.mask else None,
            files=data_files(self.path, self._datasets),
        )

    @staticmethod
    def _per_frame(entry: h5py.Group, key: str, n: int, where: str) -> np.ndarray:
        if key not in entry:
            raise ScanFormatError(f"{where}: dataset {key} missing")
        values = np.asarray(entry[key][()], dtype=float).ravel()
        if values.size != n:
            raise ScanFormatError(f"{where}: {key} has {values.size} values for {n} frames")
        return values

    def read(self, start: int, stop: int) -> Block:
        return self.start_read(start, stop, None).result()

    def start_read(
        self, start: int, stop: int, pool: Executor | None, out: np.ndarray | None = None
    ) -> PendingBlock:
        """As :meth:`Hdf5ScanReader.start_read`; frames are decoded in parallel when every
        entry stores them one per chunk with a filter decoded here, in one dtype."""
        readers = self._frame_readers
        if all(readers) and len({d.dtype for d in self._datasets}) == 1:

            def read_frame(i: int, frame: np.ndarray) -> str | None:
                entry = int(np.searchsorted(self._offsets, i, side="right")) - 1
                return readers[entry](i - int(self._offsets[entry]), frame)  # type: ignore[misc]

            shape = tuple(self._datasets[0].shape[1:])
            dtype = self._datasets[0].dtype
            return _read_frames(start, stop, read_frame, shape, dtype, pool, out)
        if pool is None:
            return _Ready(self._read_slabs(start, stop))
        return pool.submit(self._read_slabs, start, stop)

    def _read_slabs(self, start: int, stop: int) -> Block:
        parts = []
        for i, dataset in enumerate(self._datasets):
            lo, hi = max(start, self._offsets[i]), min(stop, self._offsets[i + 1])
            if lo < hi:
                first, last = lo - self._offsets[i], hi - self._offsets[i]
                part = _read_block(dataset, self.path, first, last, self._unwritten[i])
                parts.append(part)
        data = [p.data for p in parts]
        if len({d.dtype for d in data}) > 1:
            # entries of several dtypes (an Eiger line in 16 bits, the next in 32) are cast
            # to one: flag each entry's invalid pixels (its dtype's largest value) first,
            # else 65535 of a uint16 line read as counts in the uint32 block, exit 0
            data = [flag_unsigned_invalid(d) for d in data]
        return Block(
            start,
            stop,
            np.concatenate(data),
            np.concatenate([p.valid for p in parts]),
            [msg for p in parts for msg in p.problems],
        )

    def close(self) -> None:
        self._file.close()


FRAME_TABLE_COLUMNS = ("file", "rotation_angle", "translation", "monitor", "diode")
"""The columns of a CBF/EDF frame table (:class:`FrameSeriesReader`)."""


class FrameSeriesReader:
    """CBF/EDF frames read with fabio, positions from a CSV table.

    The CSV has a header with ``file``, ``rotation_angle`` (deg), ``translation`` (mm) and
    optionally ``monitor`` and ``diode`` (names read without case and spaces around them;
    another column is warned about: a header's `` monitor`` or ``Monitor`` was left out
    without a word, the frames not normalised); ``file`` is relative to the CSV's folder.
    """

    def __init__(self, table: str | Path, *, poni: str | None = None, mask=None) -> None:
        self.path = Path(table)
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as handle:
                rows = self._rows(csv.DictReader(handle))
        except OSError as error:
            raise ScanFormatError(f"{self.path}: cannot read the frame table ({error})") from error
        if not rows:
            raise ScanFormatError(f"{self.path}: the frame table is empty")
        missing = {"file", "rotation_angle", "translation"} - set(rows[0])
        if missing:
            raise ScanFormatError(f"{self.path}: the frame table lacks columns {sorted(missing)}")
        unread = [name for name in rows[0] if name not in FRAME_TABLE_COLUMNS]
        if unread:
            warnings.warn(
                f"{self.path}: the frame table's columns {unread} are not read (jellyroll "
                f"reads {', '.join(FRAME_TABLE_COLUMNS)}); rename a monitor or diode column "
                "to be used",
                stacklevel=2,
            )
        self.files = [self.path.parent / row["file"] for row in rows]

        def column(name: str) -> np.ndarray | None:
            if name not in rows[0]:
                return None
            try:
                return np.array([float(row[name]) for row in rows])
            except ValueError as error:
                raise ScanFormatError(f"{self.path}: column {name}: {error}") from error

        motors = {"rotation_angle": column("rotation_angle"), "translation": column("translation")}
        for (name, values), unit, written in zip(
            motors.items(), ("deg", "mm"), ("degrees", "millimetres"), strict=True
        ):
            _refuse_other_unit_unstated(
                self.path,
                f"column {name}",
                values,  # type: ignore[arg-type]
                unit,
                f"write the column in {written}",
            )
        first = self._open(0)
        # counting detectors give integers; a float frame (e.g. a corrected EDF) stays float
        self._dtype = first.dtype if first.dtype.kind == "f" else np.dtype(np.int32)
        self.info = ScanInfo(
            source=str(self.path),
            kind="frames",
            n_frames=len(rows),
            rotation_angle_deg=motors["rotation_angle"],  # type: ignore[arg-type]
            translation_mm=motors["translation"],  # type: ignore[arg-type]
            monitor=column("monitor"),
            diode=column("diode"),
            frame_shape=tuple(first.shape),  # type: ignore[arg-type]
            poni=poni,
            mask=mask,
            files=[self.path, *self.files],
        )

    def _rows(self, reader: csv.DictReader) -> list[dict[str, str]]:
        """The table's rows, each with one value per header column: a row with more or
        fewer (a stray comma: ``f.cbf,1,0,5`` read as translation 0, its 5 dropped, exit 0)
        is refused, naming its line."""
        rows = []
        for row in reader:
            if None in row or None in row.values():
                raise ScanFormatError(
                    f"{self.path}, line {reader.line_num}: {len(reader.fieldnames or ())} "
                    "columns in the header but not in this row; write one value per column "
                    "(a stray or missing comma?)"
                )
            rows.append({name.strip().lower(): value for name, value in row.items()})
        return rows

    def _open(self, i: int) -> np.ndarray:
        """Frame of row i, (H, W); ScanFormatError for an unreadable or multi-frame file."""
        try:
            image = fabio.open(str(self.files[i]))
            frame, n_frames = image.data, int(getattr(image, "nframes", 1) or 1)
        except Exception as error:  # fabio raises many types for unreadable files
            raise ScanFormatError(f"{self.files[i]}: unreadable frame ({error})") from error
        if n_frames > 1:
            # fabio gives the first frame only: a file named on every row read its first
            # frame at every position, exit 0
            raise ScanFormatError(
                f"{self.files[i]}: holds {n_frames} frames, the frame table takes one "
                "single-frame file per row (only the first frame would be read); split it "
                "into one file per frame, or write the scan as a raw-scan HDF5 file"
            )
        return frame

    def _read_frame(self, i: int, out: np.ndarray) -> str | None:
        try:
            frame = self._open(i)
            if frame.shape != out.shape:
                raise ScanFormatError(f"{self.files[i]}: shape {frame.shape}, expected {out.shape}")
            if out.dtype.kind != "f" and frame.dtype.kind == "f":
                frame = self._float_as_counts(i, frame)
            # flagged before the int32 buffer loses the file's dtype: 65535 read as counts
            out[...] = flag_unsigned_invalid(frame)
            return None
        except ScanFormatError as error:
            out[...] = 0
            return f"{error}; frame marked missing"

    def _float_as_counts(self, i: int, frame: np.ndarray) -> np.ndarray:
        """A float frame of a series of integer counts (its first frame's), as int64 with
        non-finite pixels -1 (masked); ScanFormatError where it holds fractional values
        (a corrected frame: cast to the series' int32, 0.4 counts read as 0, exit 0)."""
        finite = np.isfinite(frame)
        values = frame[finite]
        if np.any(values != np.round(values)):
            raise ScanFormatError(
                f"{self.files[i]}: float frame with fractional values in a series whose "
                f"first frame ({self.files[0]}) holds integer counts; give a table of raw "
                "frames only, or of corrected (float) frames only"
            )
        return np.where(finite, frame, -1).astype(np.int64)

    def read(self, start: int, stop: int) -> Block:
        return self.start_read(start, stop, None).result()

    def start_read(
        self, start: int, stop: int, pool: Executor | None, out: np.ndarray | None = None
    ) -> PendingBlock:
        """As :meth:`Hdf5ScanReader.start_read`: files are read and decoded by fabio on the
        pool's threads, ahead of their use."""
        shape = tuple(self.info.frame_shape or ())
        return _read_frames(start, stop, self._read_frame, shape, self._dtype, pool, out)

    def close(self) -> None:
        pass


def open_scan(
    path: str | Path,
    *,
    mapping: str | Path | None = None,
    poni: str | None = None,
    mask: np.ndarray | None = None,
) -> ScanReader:
    """Open any supported scan input (by extension and content) for block reading.

    ``mapping`` is a TOML file for Bliss-style HDF5; a ``.csv`` path is a CBF/EDF series
    table. ``poni`` (text) overrides the geometry the file holds; ``mask`` (H, W) hides
    its pixels besides those the file's own mask hides (a mask given for one detector
    position replaced the other's stored beamstop mask: the beamstop was integrated).
    """
    path = Path(path)
    reader: ScanReader
    if path.suffix.lower() == ".csv":
        reader = FrameSeriesReader(path, poni=poni, mask=mask)
    elif mapping is not None:
        reader = BlissScanReader(path, BlissMapping.from_toml(mapping))
    else:
        reader = Hdf5ScanReader(path)
    if poni is not None:
        reader.info.poni = poni
    if mask is not None:
        given, stored = np.asarray(mask) != 0, reader.info.mask
        joinable = stored is not None and stored.shape == given.shape
        reader.info.mask = given | stored if joinable else given  # other shape: caller refuses
    return reader


def write_frame_table(
    path: str | Path,
    files: Sequence[str],
    rotation_angle_deg: np.ndarray,
    translation_mm: np.ndarray,
    monitor: np.ndarray | None = None,
    diode: np.ndarray | None = None,
) -> Path:
    """Write the CSV table that :class:`FrameSeriesReader` reads (one row per frame)."""
    path = Path(path)
    columns = {
        "file": list(files),
        "rotation_angle": rotation_angle_deg,
        "translation": translation_mm,
    }
    if monitor is not None:
        columns["monitor"] = monitor
    if diode is not None:
        columns["diode"] = diode
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in zip(*columns.values(), strict=True):
            writer.writerow(row)
    return path

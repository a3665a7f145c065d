"""``jellyroll reduce``: a raw scan to the sinogram of its run file, in resumable blocks.

Blocks of frames are read, integrated (:mod:`jellyroll.reduce.engine`) and placed by their
motor positions straight into a work file ``<RUN>.partial`` that records which blocks are
done. An interrupted run resumes from it when the inputs and settings are unchanged; the
finished file is renamed into place as the run's sinogram file (see
:mod:`jellyroll.results.store`), so it is never half-written. With a Dask scheduler address
the blocks run on a ``dask.distributed`` cluster; the result is the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import h5py
import numba
import numpy as np

from jellyroll import __version__
from jellyroll.conventions import per_angstrom, sees_both_sides, unit_text
from jellyroll.io.nexus import nx_group, set_default
from jellyroll.io.poni import PoniError, integrator_from_poni_text
from jellyroll.io.provenance import (
    data_files,
    file_fingerprint,
    provenance_record,
    refuse_overwrite,
)
from jellyroll.io.scans import (
    FRAMES,
    INTEGRATED,
    INTEGRATED_Q,
    Block,
    ScanFormatError,
    ScanInfo,
    ScanReader,
    invalid_pixels,
    open_scan,
    read_mask,
    read_poni_text,
)
from jellyroll.reduce.engine import IntegrationSetup, Integrator
from jellyroll.reduce.kernels import GROUP
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.q_axis import check_unitless_q, nan_mean_rows, sampled_rows
from jellyroll.results.run import Q_UNITS, read_sinogram, write_sinogram
from jellyroll.results.store import (
    RunFileError,
    invalidate_run,
    run_lock,
    stage_file,
    stage_key,
    write_index,
    write_stage_file,
)
from jellyroll.sinogram import (
    AirReference,
    SinogramLayout,
    air_columns_problem,
    air_reference,
    attenuation_sinogram,
    edge_columns,
    estimate_rotation_centre,
    frame_readings_problems,
    line_end_problems,
    monitor_reference,
    monitor_scale,
    place,
    sinogram_layout,
    suppress_spots,
    suppress_spots_in_place,
)

_AXIS_UNITS = {"2th_deg": "deg", "2th_rad": "rad"}
"""NeXus units of the radial axis for pyFAI's unit names other than q (others keep their
pyFAI name)."""

CHECKPOINT_VERSION = 3  # 2: cells hold sums until the end (duplicates averaged); 3: row totals


@dataclass(frozen=True)
class ScanSpec:
    """How to open a scan (picklable, so that Dask workers can open it themselves)."""

    path: str
    mapping: str | None = None
    poni_path: str | None = None
    mask_path: str | None = None

    def open(self) -> ScanReader:
        mask = read_mask(self.mask_path) if self.mask_path else None
        reader = open_scan(
            self.path,
            mapping=self.mapping,
            poni=read_poni_text(self.poni_path) if self.poni_path else None,
            mask=mask,
        )
        if self.poni_path:
            reader.info.poni_source = self.poni_path
        if self.mask_path:
            reader.info.mask_source = self.mask_path
        frame_shape = reader.info.frame_shape
        if mask is not None and frame_shape is not None and mask.shape != tuple(frame_shape):
            reader.close()
            raise ScanFormatError(
                f"{self.mask_path}: the mask is {' x '.join(map(str, mask.shape))} pixels, "
                f"the frames of {self.path} {frame_shape[0]} x {frame_shape[1]}; give the "
                "2D mask of this detector (rows x columns as the frames)"
            )
        return reader

    def q_reach_A(self) -> float | None:
        """The highest q (1/A) the scan measures: its integrated axis's end, or that of its
        detector's farthest corner under its geometry; None when the scan cannot be opened
        or says neither (the stage that reads it then says why)."""
        try:
            reader = self.open()
        except (ValueError, OSError, KeyError):
            return None
        try:
            info = reader.info
            if info.q_A is not None:
                q = np.asarray(info.q_A, dtype=np.float64)
                return float(np.nanmax(q)) if np.isfinite(q).any() else None
            if info.poni is None or info.frame_shape is None:
                return None
            integrator = integrator_from_poni_text(info.poni)
            height, width = info.frame_shape
            corners = np.array([0, 0, height - 1, height - 1]), np.array([0, width - 1] * 2)
            two_theta = integrator.tth(*corners)
            wavelength_A = integrator.wavelength * 1e10
            return float(np.max(4 * np.pi * np.sin(np.asarray(two_theta) / 2) / wavelength_A))
        except (ValueError, OSError, PoniError):
            return None
        finally:
            reader.close()

    @property
    def files(self) -> list[str]:
        """The files given (scan, mapping, PONI, mask)."""
        return [p for p in (self.path, self.mapping, self.poni_path, self.mask_path) if p]

    @classmethod
    def of(
        cls,
        scan: str | Path,
        mapping: str | Path | None = None,
        poni_path: str | Path | None = None,
        mask_path: str | Path | None = None,
    ) -> ScanSpec:
        def text(path: str | Path | None) -> str | None:
            return str(Path(path).resolve()) if path else None

        return cls(str(Path(scan).resolve()), text(mapping), text(poni_path), text(mask_path))


def reduce_key(spec: ScanSpec, options: ReduceOptions) -> str:
    """Key of the sinogram of ``spec`` reduced with ``options``: every input file (the frame
    files of a CBF/EDF series too) by :func:`~jellyroll.io.provenance.file_fingerprint`
    (path, size and times, cheap for TB-sized scans); the block size is left out (it
    changes memory, not the result). The PONI and mask files a Bliss mapping names are
    inputs too. An already reduced sinogram (:func:`is_sinogram_file`) is keyed by
    :func:`imported_key`: it is imported, not reduced (what it cannot take is refused
    first, :func:`_refuse_import_options`; what it takes changes nothing)."""
    if spec.mapping is None and is_sinogram_file(spec.path):
        _refuse_import_options(spec, options)  # else an up-to-date import skips them
        return imported_key(spec.path)
    reader = spec.open()
    try:
        files = _input_files(spec, reader.info)
    finally:
        reader.close()
    return stage_key("reduce", options.key_payload(), [_file_key(path) for path in files])


def _input_files(spec: ScanSpec, info: ScanInfo) -> list[str]:
    """Every file a reduction reads: those given (scan, mapping, PONI, mask), the scan's
    data files and the PONI and mask a mapping names (files the scan does not link to)."""
    named = [s for s in (info.poni_source, info.mask_source) if s and Path(s).is_file()]
    return sorted({*spec.files, *map(str, info.files), *named})


SINOGRAM_GROUP = "/entry/sinogram"
SINOGRAM = f"{SINOGRAM_GROUP}/data"
"""A file holding this and no scan data is a sinogram already reduced (SPEC section 6)."""


def imported_key(path: str | os.PathLike[str]) -> str:
    """Key of a sinogram imported as it is: the fingerprints of its file and of every file
    its ``/entry/sinogram`` datasets are read from (external links, virtual datasets)."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        group = f["/entry/sinogram"]
        datasets = [group[name] for name in group if isinstance(group.get(name), h5py.Dataset)]
        files = data_files(path, datasets)
    # checks 2: imports made before the dimension order was checked are made again
    payload = {"imported": "sinogram", "checks": 2}
    return stage_key("reduce", payload, [_file_key(file) for file in files])


def is_sinogram_file(path: str | Path) -> bool:
    """Whether ``path`` is an HDF5 file with a reduced sinogram (``/entry/sinogram``, e.g.
    written by another program) and neither raw frames nor integrated patterns."""
    path = Path(path)
    if path.suffix.lower() == ".csv" or not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return SINOGRAM in f and FRAMES not in f and INTEGRATED not in f
    except OSError:
        return False


def holds_pixels(path: str | Path) -> bool:
    """Whether the scan ``path`` holds detector frames for a PONI and a mask to act on: not
    a sinogram file (:func:`is_sinogram_file`) nor an HDF5 file of patterns integrated
    already (a CSV table of CBF/EDF frames, a raw HDF5 scan: yes)."""
    path = Path(path)
    if is_sinogram_file(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return not (INTEGRATED in f and FRAMES not in f)
    except OSError:  # not HDF5 (a CSV table of frame files) or unreadable: opened later
        return True


AS_IS_OPTIONS: dict[str, tuple[str, object]] = {
    "filter": ("--filter", "none"),
    "split": ("--split", None),  # never None: every splitting shares pixels between bins
    "polarization_factor": ("--polarization-factor", None),
    "spot_filter": ("--spot-filter", False),
    "subtract_air": ("--air", False),
}
"""Options that would change a frame's pixels or a reduced sinogram: their command-line
names and the value that leaves a sinogram imported as it is."""


def _refuse_import_options(spec: ScanSpec, options: ReduceOptions) -> None:
    """ValueError naming the sinogram file ``spec.path`` when it is given with a PONI, a
    mask or options that ask for another axis: it is imported as it is, and they were
    ignored (a q range asked for kept the file's whole axis, a mask named hid nothing, exit
    0). Options that agree with its axis, the speed options and the defaults (``jellyroll
    run`` gives every cell its ``[waxs]``/``[saxs]`` table) pass; those that would change
    its pixels (:data:`AS_IS_OPTIONS`) are warned of."""
    problems = _given_calibration(spec)
    with h5py.File(spec.path, "r") as f:
        axis = f.get(f"{SINOGRAM_GROUP}/q")
        if isinstance(axis, h5py.Dataset):  # else read_sinogram refuses the file
            units = unit_text(axis.attrs.get("units", Q_UNITS))
            factor = per_angstrom(units)
            q = np.asarray(axis[()], dtype=np.float64).ravel() * (factor or 1.0)
            problems += _axis_problems(q, Q_UNITS if factor is not None else units, options)
            data = f.get(SINOGRAM)
            if "units" not in axis.attrs and isinstance(data, h5py.Dataset) and data.ndim == 3:
                check_unitless_q(f"{spec.path}:{axis.name}", q, _sinogram_mean(data))
    _warn_unused(spec.path, "a sinogram reduced already", options)
    if problems:
        raise ValueError(
            f"{spec.path}: a sinogram reduced already ({SINOGRAM}), imported as it is, cannot "
            f"take {'; '.join(problems)}. Leave them out (pick q channels later with "
            "`jellyroll reconstruct --channels`), or reduce the raw frames with them"
        )


SAMPLED_PROJECTIONS = 16
"""Projections of a sinogram whose mean pattern checks an axis without units."""


def _sinogram_mean(data: h5py.Dataset) -> Callable[[np.ndarray], np.ndarray]:
    """The mean pattern of up to :data:`SAMPLED_PROJECTIONS` projections spread over the
    sinogram ``data`` (n_angles, n_t, n_q), at the channels asked for."""

    def mean(channels: np.ndarray) -> np.ndarray:
        rows = np.linspace(0, data.shape[0] - 1, min(data.shape[0], SAMPLED_PROJECTIONS))
        patterns = [data[int(row)][:, channels] for row in np.unique(rows.astype(int))]
        return nan_mean_rows(np.concatenate(patterns))

    return mean


def _scan_mean(reader: ScanReader) -> Callable[[np.ndarray], np.ndarray]:
    """The mean of up to :func:`~jellyroll.reduce.q_axis.sampled_rows` integrated patterns
    of ``reader`` spread over the scan, at the channels asked for (unreadable ones left
    out)."""

    def mean(channels: np.ndarray) -> np.ndarray:
        blocks = [reader.read(int(row), int(row) + 1) for row in sampled_rows(reader.info.n_frames)]
        kept = [b.data[0, channels] for b in blocks if b.valid[0]]
        return nan_mean_rows(np.array(kept)) if kept else np.full(channels.size, np.nan)

    return mean


SINOGRAM_AXES = ("rotation_angle", "translation", "q")
"""The order of the sinogram's dimensions (SPEC section 6)."""


def _check_axes_order(source: Path, attrs: dict[str, Any]) -> None:
    """RunFileError when the sinogram's NXdata ``@axes`` name its dimensions in another order
    than :data:`SINOGRAM_AXES`: a square sinogram written as (translation, angle, q) was
    read as its transpose, every projection a column of the file, exit 0."""
    stated = attrs.get("axes")
    if stated is None:
        return
    names = [unit_text(name) for name in np.atleast_1d(stated)]
    if len(names) == 1:  # one string: "rotation_angle:translation:q" (older NeXus)
        names = re.split(r"[\s:,]+", names[0])
    position = {name: k for k, name in enumerate(names)}
    if any(position.get(name, k) != k for k, name in enumerate(SINOGRAM_AXES)):
        raise RunFileError(
            f"{source}: {SINOGRAM_GROUP}@axes is {', '.join(names)}; SPEC section 6 orders "
            f"the sinogram ({', '.join(SINOGRAM_AXES)}): transpose its data and errors (and "
            "attenuation) to that order and set @axes so before importing it"
        )


def import_sinogram(
    source: str | Path, output: Path, configuration: dict[str, Any] | None = None
) -> ReduceReport:
    """Store the SPEC section 6 sinogram of ``source`` (data, errors, rotation_angle,
    translation, q; attenuation and rotation_centre when present) as the sinogram of the
    run file ``output``, after checking its axes; nothing is integrated."""
    source = Path(source).resolve()
    found = read_sinogram(source)
    _check_axes_order(source, found.attrs)
    for name, axis in (
        ("rotation_angle", found.rotation_angle_deg),
        ("translation", found.translation_mm),
    ):
        if not (np.all(np.isfinite(axis)) and np.all(np.diff(axis) > 0)):
            raise RunFileError(
                f"{source}: /entry/sinogram/{name} is not finite and strictly ascending "
                "(SPEC section 6); sort the sinogram along that axis before importing it"
            )
    steps = np.diff(found.q_A)
    if not (np.all(np.isfinite(found.q_A)) and (np.all(steps > 0) or np.all(steps < 0))):
        # else refused only by the maps, after the reconstruction, naming no file
        raise RunFileError(
            f"{source}: /entry/sinogram/q is not finite and strictly monotonic (a NaN or a "
            "repeated value); give each q channel its own finite q before importing it"
        )
    sinogram = replace(found, attrs={"imported_from": str(source)})
    record = provenance_record(
        {"imported": "sinogram", "source": str(source), **(configuration or {})},
        inputs=[source],
    )
    write_sinogram(output, sinogram, record, key=imported_key(source), inputs=[source])
    missing = int(np.sum(~np.isfinite(found.data).any(axis=2)))
    problems = [f"{source}: an already reduced sinogram, imported as it is (no integration)"]
    if found.rotation_centre_mm is None:
        problems.append(
            f"{source}: no /entry/sinogram/rotation_centre; the reconstruction will estimate it"
        )
    return ReduceReport(
        output=output,
        n_frames=found.data.shape[0] * found.data.shape[1],
        shape=found.shape,
        missing_cells=missing,
        unreadable_frames=0,
        duplicate_frames=0,
        blocks_done_before=0,
        rotation_centre_mm=found.rotation_centre_mm,
        problems=problems,
    )


@dataclass
class ReduceReport:
    """What a reduction did: where, how many frames, what was missing, the centre found."""

    output: Path
    n_frames: int
    shape: tuple[int, int, int]
    missing_cells: int
    unreadable_frames: int
    duplicate_frames: int
    blocks_done_before: int
    rotation_centre_mm: float | None
    problems: list[str] = field(default_factory=list)
    unplaced_frames: int = 0


def integration_setup(info: ScanInfo, options: ReduceOptions) -> IntegrationSetup:
    """The engine's setup for a frame scan (PONI and mask from the file or the overrides)."""
    if info.poni is None:
        raise ValueError(
            f"{info.source}: no PONI geometry in the file; pass the calibration with --poni"
        )
    return IntegrationSetup(
        poni=info.poni,
        shape=info.frame_shape,  # type: ignore[arg-type]
        npt=options.npt,
        unit=options.unit,
        radial_range=options.radial_range,
        mask=info.mask,
        polarization_factor=options.polarization_factor,
        split=options.split,
        filter=options.filter,
    )


def _file_key(path: str | os.PathLike[str]) -> str:
    """A file's fingerprint; a frame file gone missing is a frame left out (with a warning
    from the reader), not a crash."""
    return file_fingerprint(path) if Path(path).is_file() else f"missing:{path}"


def _fingerprint(info: ScanInfo, options: ReduceOptions, spec: ScanSpec) -> str:
    """Key of a reduction's work file: settings, the sizes and times of every file read
    (a mapping edited to name the other detector's dataset resumed the old work file: its
    first row 10.3 for 1000.1, exit 0), the motor readings and the jellyroll version (a
    work file of another version is not resumed: one sinogram, two versions' rows)."""
    digest = hashlib.sha256()
    # the work file holds its rows block by block: resumed only with the same blocks
    settings = {**options.key_payload(), "block_frames": options.block_frames}
    payload = [settings, asdict(spec), CHECKPOINT_VERSION, __version__]
    digest.update(json.dumps(payload).encode())
    for path in _input_files(spec, info):
        digest.update(_file_key(path).encode())
    for array in (info.rotation_angle_deg, info.translation_mm, info.monitor, info.diode):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    if info.mask is not None:
        digest.update(np.packbits(info.mask).tobytes())
    digest.update((info.poni or "").encode())
    return digest.hexdigest()


INVERTED_MASK_SHARE = 0.5
"""A static mask looks inverted when more than this share of the pixels it leaves open read
invalid in the first frame (module gaps) and more than this share of those it hides hold
counts."""


def _check_mask_convention(reader: ScanReader, info: ScanInfo) -> None:
    """Refuse a static mask of the opposite convention (non-zero = valid) that still leaves a
    few live pixels open: with the real Pilatus 2M mask inverted, the CeO2 frame integrated to
    patterns of its beamstop and edge pixels, 86 % of the q bins filled, exit 0. Judged on
    the first frame (skipped when it is unreadable); a mask that leaves only invalid pixels
    open is refused after the integration (every frame integrates to no value)."""
    if info.mask is None or info.n_frames == 0:
        return
    block = reader.read(0, 1)
    if not block.valid[0]:
        return
    invalid = invalid_pixels(block.data[0])
    hidden = np.asarray(info.mask, bool)
    open_invalid, hidden_live = invalid[~hidden], ~invalid[hidden]
    if open_invalid.size == 0 or hidden_live.size == 0 or open_invalid.all():
        return
    if open_invalid.mean() > INVERTED_MASK_SHARE and hidden_live.mean() > INVERTED_MASK_SHARE:
        where = info.mask_source or f"{info.source} (its mask)"
        raise ValueError(
            f"{where}: the mask leaves open {open_invalid.size} pixels, "
            f"{open_invalid.mean():.0%} of which read as invalid (module gaps: negative, NaN "
            f"or the dtype's largest value) in frame 0 of {info.source}, and hides "
            f"{hidden_live.mean():.0%} of the pixels that hold counts: it looks inverted. "
            "Non-zero must mean masked; give the mask with its values swapped (mask == 0)"
        )


CORRECTED_SHARE = 0.01
"""Frames whose open pixels read between -0.5 and 0 in more than this share were corrected
already (dark subtracted: read noise about a low signal); detector gaps read -1 or -2."""


def _check_uncorrected(reader: ScanReader, info: ScanInfo) -> None:
    """Refuse frames whose first frame holds many values between -0.5 and 0 (more than
    :data:`CORRECTED_SHARE` of the pixels the mask leaves open): dark-subtracted frames,
    whose negative pixels the integration masks as detector gaps, keeping the positive half
    of the noise only (a signal of 2 counts under a read noise of 5 integrated to 5.1,
    pyFAI's integrate1d 2.2, exit 0). Whole negative values (Pilatus gaps -1, bad pixels
    -2) and counts are never refused. Skipped when frame 0 is unreadable."""
    if info.n_frames == 0:
        return
    block = reader.read(0, 1)
    if not block.valid[0] or block.data.dtype.kind != "f":
        return
    frame = np.asarray(block.data[0])
    open_pixels = np.ones(frame.shape, bool) if info.mask is None else ~np.asarray(info.mask)
    values = frame[open_pixels]
    if values.size == 0:
        return
    with np.errstate(invalid="ignore"):
        share = float(np.mean((values > -0.5) & (values < 0)))
    if share > CORRECTED_SHARE:
        raise ValueError(
            f"{info.source}: {share:.1%} of the open pixels of frame 0 read between -0.5 and "
            "0: the frames look dark-subtracted already. The integration masks negative "
            "pixels (detector gaps) and would keep only the positive half of their noise, "
            "biasing every pattern up; reduce the raw detector counts (Poisson errors need "
            "them too), with the gaps negative or in the mask"
        )


MAX_LISTED_REJECTIONS = 10
"""Frames left out for their motor readings that a reduction names one by one."""


def _check_layout(info: ScanInfo, layout: SinogramLayout) -> None:
    """Refuse a scan whose frames fill fewer than 2 translations: no sinogram line (one
    angle is taken, for a quick look at a line; `jellyroll reconstruct` refuses it)."""
    if layout.translation_mm.size < 2:
        raise ValueError(
            f"{info.source}: the frames' translations fill {layout.translation_mm.size} "
            "position(s); a sinogram needs a line of translations across the cell (check "
            "the translation motor's dataset)"
        )


def _frame_checks(info: ScanInfo, layout: SinogramLayout) -> tuple[np.ndarray, list[str]]:
    """Per-frame monitor factor (NaN = frame left out) and the warnings that name the frames
    left out: non-finite or impossible motor, monitor or diode readings, readings off the
    scan's grid."""
    readings_ok, notes = frame_readings_problems(
        info.rotation_angle_deg, info.translation_mm, info.monitor, info.diode
    )
    rejected = [str(item) for item in layout.rejected if readings_ok[item.frame]]
    if len(rejected) > MAX_LISTED_REJECTIONS:
        more = len(rejected) - MAX_LISTED_REJECTIONS
        rejected = [*rejected[:MAX_LISTED_REJECTIONS], f"and {more} more frames off the grid"]
    messages = [f"{info.source}: {note} (left out)" for note in [*notes, *rejected]]
    try:
        scale = monitor_scale(info.monitor, readings_ok & layout.placed)
    except ValueError as error:
        raise ValueError(f"{info.source}: no frame has usable readings ({error})") from error
    return scale, messages


@lru_cache(maxsize=4)
def _worker_context(spec: ScanSpec, setup_key: str, setup: IntegrationSetup | None):
    """A reader and integrator per Dask worker process, reused for every block it handles."""
    reader = spec.open()
    return reader, (Integrator(setup) if setup is not None else None)


def reduce_block(
    spec: ScanSpec,
    setup: IntegrationSetup | None,
    setup_key: str,
    scale: np.ndarray,
    start: int,
    stop: int,
) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Read and integrate frames ``start:stop``: (start, stop, patterns, errors, valid, notes).

    Runs in the driver or on a Dask worker; ``scale`` is the monitor factor of these frames.
    """
    reader, integrator = _worker_context(spec, setup_key, setup)
    block = reader.read(start, stop)
    return (start, stop, *_integrate_block(block, integrator, scale), block.problems)


def _refuse_integration_options(info: ScanInfo, options: ReduceOptions, spec: ScanSpec) -> None:
    """ValueError when a PONI or a mask is given with a scan of patterns integrated already,
    or options that ask for an axis it does not hold (:func:`_axis_problems`): they were
    ignored, a mask hiding every pixel or a q range asked for kept the file's patterns,
    exit 0. Options that agree with its axis (``jellyroll run`` gives every cell the same)
    pass."""
    _warn_unused(info.source, "patterns integrated already", options)
    problems = _given_calibration(spec)
    problems += _axis_problems(np.asarray(info.q_A, dtype=np.float64), Q_UNITS, options)
    if problems:
        raise ValueError(
            f"{info.source}: holds patterns integrated already ({INTEGRATED}), which the "
            f"integration's geometry, mask and axis cannot change: {'; '.join(problems)}. "
            "Leave them out, or pick q channels later (`jellyroll reconstruct --channels`)"
        )


def _warn_unused(source: object, what: str, options: ReduceOptions) -> None:
    """Warn, naming ``source`` (``what`` it holds), of the options of :data:`AS_IS_OPTIONS`
    given with a value that would change its data: they cannot act on it. A warning, not a
    refusal: ``jellyroll run`` gives one ``[waxs]``/``[saxs]`` table to every cell, and a
    cell of integrated data among cells of frames could not run otherwise."""
    given = options.model_fields_set
    unused = []
    for name, (flag, as_is) in AS_IS_OPTIONS.items():
        value = getattr(options, name)
        if name in given and value != as_is:
            unused.append(flag if isinstance(value, bool) else f"{flag} {value}")
    if unused:
        warnings.warn(
            f"{source}: holds {what}, taken as it is: {', '.join(unused)} did not act on it",
            stacklevel=3,
        )


def _given_calibration(spec: ScanSpec) -> list[str]:
    """``a PONI (path)``, ``a mask (path)`` for those given with ``spec``."""
    given = (("PONI", spec.poni_path), ("mask", spec.mask_path))
    return [f"a {what} ({path})" for what, path in given if path]


def _axis_problems(axis: np.ndarray, units: str, options: ReduceOptions) -> list[str]:
    """The options given that ask for a radial axis other than ``axis`` (in ``units``; q in
    1/angstrom) of patterns integrated already: another unit, number of bins or range (to a
    bin at each end). Options left at their defaults ask for nothing."""
    axis = np.sort(axis)
    given = options.model_fields_set
    factor = per_angstrom(options.unit)
    asked = Q_UNITS if factor is not None else _AXIS_UNITS.get(options.unit, options.unit)
    problems = []
    if "unit" in given and asked != units:
        its = "q, 1/angstrom" if units == Q_UNITS else units
        problems.append(f"--unit {options.unit} (its axis is {its})")
    if "npt" in given and options.npt != axis.size:
        problems.append(f"--npt {options.npt} (it has {axis.size} bins)")
    if "radial_range" in given and options.radial_range is not None and asked == units:
        step = float(np.median(np.diff(axis))) if axis.size > 1 else 0.0
        edges = (axis[0] - step / 2, axis[-1] + step / 2)
        wanted = [value * (factor or 1.0) for value in options.radial_range]
        if any(abs(a - e) > step for a, e in zip(wanted, edges, strict=True)):
            name = "q range" if units == Q_UNITS else "range"
            problems.append(
                f"a {name} of {wanted[0]:.4g}-{wanted[1]:.4g} {units} (it spans "
                f"{edges[0]:.4g}-{edges[1]:.4g})"
            )
    return problems


def _radial_axis(
    integrator: Integrator | None, info: ScanInfo, unit: str
) -> tuple[np.ndarray, str]:
    """The sinogram's radial axis and its NeXus unit: q in any unit of q is written in
    1/angstrom, as SPEC section 6 says (other tools read the file without jellyroll); other
    radial units (2theta, r) as integrated, with their unit."""
    if integrator is None:
        return info.q_A, "1/angstrom"
    factor = per_angstrom(unit)
    if factor is not None:
        return integrator.radial * factor, "1/angstrom"
    return integrator.radial, _AXIS_UNITS.get(unit, unit)


def _integrate_block(
    block: Block, integrator: Integrator | None, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    valid = block.valid & np.isfinite(scale)
    scale = np.where(valid, scale, 1.0)  # frames left out: any finite factor, NaN below
    if integrator is None:  # pre-integrated patterns: normalise only; errors unknown
        patterns = block.data.astype(np.float32) / scale[:, None].astype(np.float32)
        errors = np.full_like(patterns, np.nan)
    else:
        result = integrator.integrate(block.data, monitor=scale)
        patterns, errors = result.intensity, result.sigma
    patterns[~valid] = np.nan
    errors[~valid] = np.nan
    return patterns, errors, valid


def run_reduce(
    scan: str | Path,
    output: str | Path,
    options: ReduceOptions | None = None,
    *,
    mapping: str | Path | None = None,
    poni_path: str | Path | None = None,
    mask_path: str | Path | None = None,
    scheduler: str | None = None,
    on_block: Callable[[int, int], None] | None = None,
    configuration: dict[str, Any] | None = None,
) -> ReduceReport:
    """Reduce a scan into the run file ``output`` (see the module docstring); the run's
    later stages (reconstruction, maps), now stale, are deleted.

    ``on_block(n_frames, total_frames)`` is called after every placed block (progress). Raising
    from it (or any interruption) leaves a resumable ``<output>.partial``.
    """
    options = options or ReduceOptions()
    spec = ScanSpec.of(scan, mapping, poni_path, mask_path)
    output = Path(output).resolve()
    if output.is_dir():
        raise ValueError(f"{output} is a folder; give a file name, e.g. {output / 'run.h5'}")
    with run_lock(output):
        if spec.mapping is None and is_sinogram_file(spec.path):
            _refuse_import_options(spec, options)
            report = import_sinogram(spec.path, output, configuration)
            for message in report.problems:
                warnings.warn(message, stacklevel=2)
            return report
        # before any frame is read: taken at the end, a scan replaced meanwhile (the
        # acquisition's final file) recorded the new file's key over a sinogram of the old
        # frames, which `jellyroll run` then kept as up to date, exit 0
        key = reduce_key(spec, options)
        reader = spec.open()
        try:
            return _reduce(reader, spec, output, options, key, scheduler, on_block, configuration)
        finally:
            reader.close()


def _reduce(
    reader: ScanReader,
    spec: ScanSpec,
    output: Path,
    options: ReduceOptions,
    stage_key: str,
    scheduler: str | None,
    on_block: Callable[[int, int], None] | None,
    configuration: dict[str, Any] | None,
) -> ReduceReport:
    """:func:`run_reduce` on an open reader; ``stage_key``: the inputs' stage key
    (:func:`reduce_key`), taken before the scan was opened."""
    info = reader.info
    refuse_overwrite([output, stage_file(output, "reduce")], info.files)
    if info.kind == "integrated":
        _refuse_integration_options(info, options, spec)
        if not info.q_unit_stated:
            check_unitless_q(f"{info.source}:{INTEGRATED_Q}", info.q_A, _scan_mean(reader))
    setup = integration_setup(info, options) if info.kind == "frames" else None
    setup_key = _fingerprint(info, options, spec)
    try:
        integrator = Integrator(setup) if setup is not None else None
    except PoniError as error:  # names the PONI file (or dataset) to fix
        where = info.poni_source or info.source
        if info.source not in where:
            where = f"{where} (the geometry of {info.source})"
        raise ValueError(f"{where}: {error}") from error
    except ValueError as error:
        raise ValueError(f"{info.source}: {error}") from error
    if integrator is not None:
        _check_mask_convention(reader, info)
        _check_uncorrected(reader, info)
    q, q_units = _radial_axis(integrator, info, options.unit)
    layout = sinogram_layout(info.rotation_angle_deg, info.translation_mm)
    _check_layout(info, layout)
    scale, frame_notes = _frame_checks(info, layout)
    partial = output.with_name(output.name + ".partial")
    _check_free_space(partial, 2 * 2 * 4 * layout.shape[0] * layout.shape[1] * q.size)
    blocks = [
        (start, min(start + options.block_frames, info.n_frames))
        for start in range(0, info.n_frames, options.block_frames)
    ]
    with _open_work_file(partial, layout, q, q_units, setup_key, len(blocks)) as work:
        done = work["checkpoint/done"]
        done_before = int(np.sum(done[()]))
        pending = [i for i, ok in enumerate(done[()]) if not ok]
        problems: list[str] = frame_notes
        valid = work["checkpoint/valid"]
        if scheduler:
            finished = _run_blocks_on_cluster(
                scheduler, spec, setup, setup_key, scale, blocks, pending
            )
        else:
            finished = _run_blocks_here(reader, integrator, scale, blocks, pending, options)
        for index, start, stop, patterns, errors, block_valid, notes in finished:
            placed, totals = _place_block(work, layout, start, stop, patterns, errors)
            # the cells reach the file before the checkpoint that counts them: a kill in
            # between redoes the block, and one within a flush is found on resume
            # (:func:`_work_file_problem`)
            work.flush()
            flags = work["checkpoint/placed"][start:stop]
            flags[placed - start] = True
            work["checkpoint/placed"][start:stop] = flags
            for row, total in totals.items():
                work["checkpoint/row_total"][row] = total
            valid[start:stop] = block_valid
            done[index] = True
            work.flush()
            problems.extend(notes)
            if on_block is not None:
                on_block(stop - start, info.n_frames)
        report = _finish(
            work, info, layout, valid[()], options, setup_key, configuration, spec, output,
            left_out=~np.isfinite(scale), stage_key=stage_key,
        )  # fmt: skip
    partial.unlink()
    write_index(output)
    report.blocks_done_before = done_before
    report.problems = problems
    for message in problems:
        warnings.warn(message, stacklevel=2)
    return report


def _check_free_space(path: Path, needed_bytes: int) -> None:
    """Refuse to start when the folder cannot hold the work file and the sinogram file
    (``needed_bytes``, data and errors of both) rather than fail mid-way on a full disk."""
    free = shutil.disk_usage(path.parent).free
    if path.exists():
        free += path.stat().st_size  # a resumed work file is already counted
    if free < needed_bytes:
        raise OSError(
            f"{path.parent}: {free / 2**30:.2f} GiB free, the reduction needs about "
            f"{needed_bytes / 2**30:.2f} GiB (work file and sinogram); free space or choose "
            "another output folder"
        )


def _open_work_file(
    partial: Path, layout: SinogramLayout, q: np.ndarray, q_units: str, key: str, n_blocks: int
) -> h5py.File:
    """The work file: resumed if its key matches, else created afresh."""
    if partial.exists():
        try:
            work = h5py.File(partial, "r+")
            if work.attrs.get("reduce_key") == key and work["checkpoint/done"].shape == (n_blocks,):
                problem = _work_file_problem(work, layout)
                if problem is None:
                    return work
                warnings.warn(
                    f"{partial}: the work file of the interrupted reduction was cut while it "
                    f"was written ({problem}); reducing again from the first frame",
                    stacklevel=4,
                )
            work.close()
        except (OSError, KeyError):
            pass  # an unreadable leftover: start again
        partial.unlink()
    work = h5py.File(partial, "w")
    work.attrs["reduce_key"] = key
    n_a, n_t = layout.shape
    shape = (n_a, n_t, q.size)
    entry = nx_group(work, "entry", "NXentry")
    group = nx_group(entry, "sinogram", "NXdata")
    for name in ("data", "errors"):
        group.create_dataset(
            name, shape=shape, dtype=np.float32, chunks=(1, n_t, q.size), fillvalue=np.nan
        )
    group["data"].attrs["units"] = "arb. units"
    for name, values, units in (
        ("rotation_angle", layout.rotation_angle_deg, "deg"),
        ("translation", layout.translation_mm, "mm"),
        ("q", q, q_units),
    ):
        group[name] = values
        group[name].attrs["units"] = units
    group.attrs["signal"] = "data"
    group.attrs["axes"] = ["rotation_angle", "translation", "q"]
    checkpoint = work.create_group("checkpoint")
    checkpoint.create_dataset("done", shape=(n_blocks,), dtype=bool, fillvalue=False)
    for name in ("valid", "placed"):
        checkpoint.create_dataset(
            name, shape=(layout.angle_index.size,), dtype=bool, fillvalue=False
        )
    checkpoint.create_dataset("count", shape=(n_a, n_t), dtype=np.int32, fillvalue=0)
    checkpoint.create_dataset("row_total", shape=(n_a,), dtype=np.float64, fillvalue=0.0)
    return work


def _work_file_problem(work: h5py.File, layout: SinogramLayout) -> str | None:
    """Why the cells of a resumed work file disagree with its checkpoint, or None. A kill
    within a flush leaves any part of it on disk: frames marked placed whose cells never
    reached the file were skipped on resume, their cells NaN and the spot filter and air
    mean moved by it, exit 0 (the red team's kill -9: 38 cells lost, 3762 values up to
    120 % off). Every cell's frame count must be that of the frames marked placed there,
    every counted cell hold a value and no other, and each row's cells sum to the total
    recorded with the checkpoint (the same float32 cells summed alike: equal exactly)."""
    placed = work["checkpoint/placed"][()]
    expected = np.zeros(layout.shape, np.int64)
    frames = placed & layout.placed
    np.add.at(expected, (layout.angle_index[frames], layout.translation_index[frames]), 1)
    count = work["checkpoint/count"][()]
    if not np.array_equal(count, expected):
        return f"{int(np.sum(count != expected))} cells count other frames than those marked"
    data, totals = work["entry/sinogram/data"], work["checkpoint/row_total"][()]
    for row in range(layout.shape[0]):
        cells = data[row]
        held = np.isfinite(cells).any(axis=1)
        if not np.array_equal(held, count[row] > 0):
            return f"angle row {row} holds other cells than its frames"
        if np.nansum(cells, dtype=np.float64) != totals[row]:
            return f"angle row {row} sums to another total than its checkpoint's"
    return None


def _run_blocks_on_cluster(
    scheduler: str,
    spec: ScanSpec,
    setup: IntegrationSetup | None,
    key: str,
    scale: np.ndarray,
    blocks: list[tuple[int, int]],
    pending: list[int],
) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray, np.ndarray, list[str]]]:
    """Yield (block index, start, stop, patterns, errors, valid, notes) of the blocks
    reduced on a dask.distributed cluster (each worker opens the scan once), in index order
    (:func:`_in_index_order`)."""
    from distributed import Client, as_completed

    try:
        client = Client(scheduler)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(
            f"--scheduler {scheduler}: no dask scheduler answers there ({error}); give the "
            "address of a running one (tcp://host:8786), or leave --scheduler out"
        ) from error
    with client:
        futures = {}
        for i in pending:
            start, stop = blocks[i]
            future = client.submit(
                reduce_block, spec, setup, key, scale[start:stop], start, stop, pure=False
            )
            futures[future] = i
        finished = ((futures[future], *future.result()) for future in as_completed(futures))
        yield from _in_index_order(finished, pending)


def _in_index_order(finished: Iterable[tuple], pending: list[int]) -> Iterator[tuple]:
    """The ``finished`` blocks (block index first) in the order of ``pending``, those that
    finish early held until the blocks before them: frames of one cell are summed in
    float32 in the order they arrive, so blocks placed as a cluster finished them gave
    sums 3e-4 apart between two runs of a scan measured three times a line (the red
    team's), and a run differed from the local one."""
    order = iter(pending)
    expected = next(order, None)
    held: dict[int, tuple] = {}
    for block in finished:
        held[block[0]] = block
        while expected is not None and expected in held:
            yield held.pop(expected)
            expected = next(order, None)


PART_BYTES = 64 << 20
"""Frames are read, decoded and integrated in parts of about this size, in whole kernel groups
(at least one: 32 frames, whatever their size)."""
PARTS_AHEAD = 2
"""Parts read and decoded ahead of the one being integrated: memory holds PARTS_AHEAD + 1."""


def available_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _run_blocks_here(
    reader: ScanReader,
    integrator: Integrator | None,
    scale: np.ndarray,
    blocks: list[tuple[int, int]],
    pending: list[int],
    options: ReduceOptions,
) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray, np.ndarray, list[str]]]:
    """The same, in this process, as a pipeline: a pool of threads reads and decodes the
    frames of the next parts while this thread integrates the present one (numba threads)
    and places the finished blocks. Parts in flight are bounded (``PARTS_AHEAD``) and their
    frame buffers reused, so memory does not grow with the scan."""
    info = reader.info
    frame_bytes = 4 * int(np.prod(info.frame_shape or (1,)))  # as int32/float32 frames
    group = integrator.engine.group if integrator is not None else GROUP
    groups = max(1, -(-PART_BYTES // (group * frame_bytes)))
    part = min(group * groups, options.block_frames)
    parts = [
        (i, lo, min(lo + part, blocks[i][1]))
        for i in pending
        for lo in range(blocks[i][0], blocks[i][1], part)
    ]
    decode_threads, integrate_threads = options.thread_split(available_cores())
    integrate_threads = min(integrate_threads, numba.config.NUMBA_NUM_THREADS)
    in_flight: deque = deque()
    spare: list[np.ndarray] = []
    queued = iter(parts)
    threads_before = numba.get_num_threads()
    pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="jellyroll-decode")
    try:
        numba.set_num_threads(integrate_threads)  # this thread's setting only
        outputs: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]] = []
        for _ in range(len(parts)):
            while len(in_flight) <= PARTS_AHEAD and (item := next(queued, None)):
                out = spare.pop() if spare else None
                in_flight.append((item, reader.start_read(item[1], item[2], pool, out)))
            (i, lo, hi), read = in_flight.popleft()
            block = read.result()
            outputs.append((*_integrate_block(block, integrator, scale[lo:hi]), block.problems))
            if info.kind == "frames" and block.data.shape[0] == part:
                spare.append(block.data)  # integrated: its buffer takes the next frames
            if hi == blocks[i][1]:
                patterns, errors, valid, notes = zip(*outputs, strict=True)
                outputs = []
                yield (
                    i, blocks[i][0], hi,
                    np.concatenate(patterns), np.concatenate(errors), np.concatenate(valid),
                    [note for part_notes in notes for note in part_notes],
                )  # fmt: skip
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        numba.set_num_threads(threads_before)


def _place_block(
    work: h5py.File,
    layout: SinogramLayout,
    start: int,
    stop: int,
    patterns: np.ndarray,
    errors: np.ndarray,
) -> tuple[np.ndarray, dict[int, float]]:
    """Add a block's patterns (and squared errors) into their sinogram cells, one angle row
    at a time; :func:`_finish` divides by the frames per cell, so duplicate frames of a cell
    are averaged as :func:`jellyroll.sinogram.place` does, whatever order blocks finish in.
    Returns the frames added (indices of the scan) and the total of each row's cells after
    (float64), which the caller records in the checkpoint once the cells are written.

    Frames already placed (a resumed run) are skipped, so a block is never added twice.
    """
    data, sigma = work["entry/sinogram/data"], work["entry/sinogram/errors"]
    count, placed = work["checkpoint/count"], work["checkpoint/placed"]
    rows = layout.angle_index[start:stop]
    columns = layout.translation_index[start:stop]
    keep = np.isfinite(patterns).any(axis=1) & ~placed[start:stop] & layout.placed[start:stop]
    added, totals = [], {}
    for row in np.unique(rows[keep]):
        pick = np.flatnonzero((rows == row) & keep)
        row_data, row_sigma, row_count = data[row], sigma[row], count[row]
        cells = columns[pick]
        first = row_count[cells] == 0  # cells start as NaN: the first frame sets them
        row_data[cells[first]] = 0.0
        row_sigma[cells[first]] = 0.0
        np.add.at(row_data, cells, patterns[pick])
        np.add.at(row_sigma, cells, np.square(errors[pick]))
        np.add.at(row_count, cells, 1)
        data[row], sigma[row], count[row] = row_data, row_sigma, row_count
        added.append(start + pick)
        totals[int(row)] = float(np.nansum(row_data, dtype=np.float64))
    return (np.concatenate(added) if added else np.zeros(0, np.intp)), totals


def _air_ends(
    sums: h5py.Dataset,
    count: h5py.Dataset,
    transmission: np.ndarray | None,
    rotation_angle_deg: np.ndarray,
) -> tuple[np.ndarray, str | None]:
    """The line ends taken as air (translation indices) and why they are not air
    (:func:`air_columns_problem`; None when they are): the air subtraction and the
    attenuation's reference both take them as air. Both ends (:func:`edge_columns`); in a
    full turn (or one with a gap the reconstruction maps whole,
    :func:`~jellyroll.conventions.sees_both_sides`) one end alone when only that one is
    air (:func:`line_end_problems`): a half acquisition (the axis near the other end, which
    lies in the sample) lost its attenuation and air subtraction. A scan that does not see
    both sides needs each end to be air on its own."""
    total = np.empty(count.shape)
    for row in range(count.shape[0]):
        with np.errstate(invalid="ignore", divide="ignore"):
            total[row] = np.sum(sums[row], axis=1) / count[row]  # NaN: missing cell
    both = edge_columns(count.shape[1])
    problem = air_columns_problem(total, transmission, both)
    ends = line_end_problems(total, transmission)
    if sees_both_sides(rotation_angle_deg):
        if problem is None:
            return both, None
        return next(((end, None) for end, why in ends if why is None), (both, problem))
    # each end on its own: pooled, a disk past the first end (on 100 rays of a half turn)
    # passed as air, and was subtracted as air, without a word
    for side, (_, why) in zip(("first", "last"), ends, strict=True):
        if problem is None and why is not None:
            problem = f"the {side} end of the lines: {why}"
    return both, problem


def air_cell_spots(
    sums: h5py.Dataset, squares: h5py.Dataset, count: h5py.Dataset, air: np.ndarray
) -> tuple[np.ndarray, np.ndarray, AirReference]:
    """The air cells' patterns (n_angles, n_air, n_q) with their spots and zingers replaced
    by the median of their translation's air cells over the angles, where they were
    (bool, same shape), and the air reference of every angle taken from them
    (:func:`~jellyroll.sinogram.air_reference`).

    ``sums`` (n_angles, n_translations, n_q) summed patterns of each cell's ``count``
    (n_angles, n_translations) frames, ``squares`` their summed squared errors; ``air`` the
    translation indices taken as air. The air mean taken off every cell of a line is not
    robust: a zinger in one air frame (1e5 counts in a pixel, which the integration's sigma clip
    keeps in a q bin of fewer than 27 pixels, where one pixel can not stand 5 sigma out
    of its bin's spread) went, over m, into that channel of the whole line, and the spot
    filter, run after the subtraction, only mends the cell it was in. :func:`suppress_spots`
    on the air cells alone finds such an outlier before the mean is taken. It is replaced
    by the median over the angles of its own translation (air scatters alike at every
    angle), not by its neighbours' median: beside the sample an air cell can scatter twice
    as much as the next one out (a sample's beam tail), which moved the air mean by that
    difference over m."""
    # the cells' means as the line's cells are read (float64), for the air reference; the
    # spot search and its replacements in float32, as the sums
    exact = np.empty((count.shape[0], len(air), sums.shape[2]), np.float64)
    errors = np.empty_like(exact)
    columns, back = np.unique(air, return_inverse=True)  # read each once (air may repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a missing cell: NaN
        for row in range(count.shape[0]):  # a row at a time, its air cells only
            frames = np.maximum(count[row, list(columns)], 1)[:, None]
            exact[row] = (sums[row, list(columns)] / frames)[back]
            errors[row] = (np.sqrt(squares[row, list(columns)]) / frames)[back]
    cells = exact.astype(np.float32)
    spots = suppress_spots(cells).replaced
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a translation missing at every angle
        typical = np.nanmedian(np.where(spots, np.nan, cells), axis=0)
    cells = np.where(spots, typical[None], cells)
    return cells, spots, air_reference(np.where(spots, cells, exact), errors)


def _minus_air(
    values: np.ndarray, errors: np.ndarray, reference: AirReference, row: int
) -> tuple[np.ndarray, np.ndarray]:
    """The patterns (n_translations, n_q) of line ``row`` and their errors with its air
    pattern taken off (the air mean's error added in quadrature)."""
    variance = np.square(errors) + reference.variance[row]
    return values - reference.mean[row], np.sqrt(variance)


def _warn_lines_without_air(source: str, occupancy: np.ndarray, air: np.ndarray) -> None:
    """Warn when some measured angles hold no cell at the ``air`` translations (their air
    pattern and diode reference are then the other angles' median): a half acquisition
    whose short lines stop before the air end of the long ones lost those projections whole
    without a word."""
    measured = occupancy.any(axis=1)
    without = measured & ~(occupancy[:, air] > 0).any(axis=1)
    if without.any():
        warnings.warn(
            f"{source}: {int(without.sum())} of the {int(measured.sum())} projections hold no "
            "cell at the line ends taken as air (their lines stop short): their air "
            "reference is the other projections' median (a beam that drifted between them "
            "is not followed)",
            stacklevel=4,
        )


def _finish(
    work: h5py.File,
    info: ScanInfo,
    layout: SinogramLayout,
    valid: np.ndarray,
    options: ReduceOptions,
    key: str,
    configuration: dict[str, Any] | None,
    spec: ScanSpec,
    output: Path,
    *,
    left_out: np.ndarray,
    stage_key: str,
) -> ReduceReport:
    """Write the run's sinogram file from the complete work file: cell means (duplicates
    averaged), air subtraction, attenuation, rotation centre and provenance.

    The work file is only read, and the sinogram file is written whole into a temporary
    file and renamed into place: a kill at any point of this pass leaves the work file as
    it was, and running again redoes the pass from it. ``key``: the work's fingerprint;
    ``stage_key``: the stage file's key.
    """
    sums, squares = work["entry/sinogram/data"], work["entry/sinogram/errors"]
    count = work["checkpoint/count"]
    occupancy = layout.occupancy(valid)
    unreadable = int(np.sum(~valid & ~left_out))  # frames left out for readings are counted apart
    if not occupancy.any():
        raise ValueError(
            f"{info.source}: none of its {info.n_frames} frames could be read and placed; "
            "nothing to write (check the file and the warnings above)"
        )
    ratio = None
    readings = None if info.diode is None else np.asarray(info.diode)[valid]
    if readings is not None and readings.size and np.ptp(readings) == 0:
        # a stuck diode gave a flat attenuation whose centre of mass is the grid's: an
        # operando series' shared rotation axis was pulled off and another step blamed
        warnings.warn(
            f"{info.source}: the diode reads {readings[0]:g} on every frame (stuck, or not "
            "connected): no attenuation sinogram is written, and the reconstruction will not "
            "correct self-absorption; check the diode's dataset",
            stacklevel=3,
        )
        readings = None
    if readings is not None:
        # without a monitor the beam is taken as constant, as the frames are (not
        # normalised): the attenuation is then -ln(diode) relative to the air columns
        # (SPEC section 6 writes it "if a diode exists"; none was written, without a word)
        incident = 1.0 if info.monitor is None else info.monitor
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = place(layout, info.diode / incident, valid)  # valid: readings too
    attenuation = None if ratio is None else attenuation_sinogram(ratio)
    # the share among the cells measured: angles read in two turns (0-90 and -270 to -180
    # deg) leave half the grid's rows without a frame, and that half dropped a sound diode
    share = 0.0 if attenuation is None else float(np.isfinite(attenuation[occupancy > 0]).mean())
    if attenuation is not None and not share >= 0.5:
        warnings.warn(
            f"{info.source}: the diode readings give an attenuation in {share:.0%} of the "
            "cells measured only (a diode reading 0 on every frame gives none): no "
            "attenuation sinogram is written, and the reconstruction will not correct "
            "self-absorption; check the diode's dataset",
            stacklevel=3,
        )
        attenuation = None
    air = edge_columns(layout.shape[1])
    problem = None
    if options.subtract_air or attenuation is not None:
        rows = layout.rotation_angle_deg[occupancy.any(axis=1)]  # the angles measured
        air, problem = _air_ends(sums, count, ratio, rows)
        if attenuation is not None and air.size < edge_columns(layout.shape[1]).size:
            attenuation = attenuation_sinogram(ratio, air)  # relative to the air end alone
    if problem is not None and options.subtract_air:
        # rather than subtract the sample from itself
        warnings.warn(
            f"{info.source}: the line ends are not air ({problem}); air NOT subtracted. "
            "Scan past the sample's edges, or pass --no-air (subtract_air = false) to "
            "reduce without air subtraction",
            stacklevel=4,
        )
    if problem is not None and attenuation is not None:
        # relative to them, every cell was off by their own attenuation (with --no-air
        # without a word): 0.66 too low on a scan whose lines stayed inside the sample
        warnings.warn(
            f"{info.source}: the line ends are not air ({problem}): the attenuation, "
            "-ln(diode / monitor) relative to them, would miss their own attenuation at "
            "every angle; no attenuation sinogram is written, and the reconstruction will "
            "not correct self-absorption. Scan past the sample's edges",
            stacklevel=4,
        )
        attenuation = None
    subtract = options.subtract_air and problem is None
    if subtract or attenuation is not None:
        _warn_lines_without_air(info.source, occupancy, air)
    air_cells, air_spots, reference = (
        air_cell_spots(sums, squares, count, air) if subtract else (None, None, None)
    )
    centre: list[float | None] = [None]
    missing = [0]  # cells without a value, counted while writing

    def fill(entry: h5py.Group) -> None:
        group = nx_group(entry, "sinogram", "NXdata")
        for name in ("data", "errors"):
            group.create_dataset(name, shape=sums.shape, dtype=np.float32, chunks=sums.chunks)
        group["data"].attrs["units"] = "arb. units"
        for name in ("rotation_angle", "translation", "q"):
            group[name] = work[f"entry/sinogram/{name}"][()]
            group[name].attrs["units"] = work[f"entry/sinogram/{name}"].attrs["units"]
        group.attrs["signal"] = "data"
        group.attrs["axes"] = ["rotation_angle", "translation", "q"]
        total = np.empty(layout.shape)
        measured = np.zeros(layout.shape, bool)  # cells whose pattern holds a value
        for row in range(layout.shape[0]):
            # sums of the frames of each cell -> their mean (errors: root of summed squares)
            frames = np.maximum(count[row], 1)[:, None]
            values = sums[row] / frames
            errors = np.sqrt(squares[row]) / frames
            if subtract:
                values[air] = np.where(air_spots[row], air_cells[row], values[air])
                values, errors = _minus_air(values, errors, reference, row)
            group["data"][row] = values
            group["errors"][row] = errors
            total[row] = np.sum(values, axis=1)
            measured[row] = np.isfinite(values).any(axis=1)
        if not measured.any():
            raise ValueError(
                f"{info.source}: every frame integrated to no value (NaN in every q bin): no "
                "unmasked detector pixel fell in the q range; check the mask (non-zero = "
                "masked), --q-min/--q-max and --unit"
            )
        group.attrs["air_subtracted"] = subtract
        if info.monitor is not None:  # the intensities are counts at this monitor reading
            group["data"].attrs["monitor_reference"] = monitor_reference(info.monitor, ~left_out)
        if subtract:
            group.attrs["air_spots_replaced"] = int(air_spots.sum())
        if options.spot_filter:
            # after the air subtraction: the outliers stand out of the sample's signal alone
            # streamed over slabs of channels: the sinogram is never held whole
            group.attrs["spot_cells_replaced"] = suppress_spots_in_place(group["data"])
        if attenuation is not None:
            group["attenuation"] = attenuation.astype(np.float32)
            group["attenuation"].attrs["long_name"] = "-ln(diode / monitor), relative to air"
        centre_source = attenuation if attenuation is not None else total
        try:
            centre[0] = estimate_rotation_centre(
                centre_source, layout.rotation_angle_deg, layout.translation_mm
            )
            group["rotation_centre"] = centre[0]
            group["rotation_centre"].attrs["units"] = "mm"
        except ValueError as error:
            centre[0] = None
            warnings.warn(f"{info.source}: rotation centre not estimated ({error})", stacklevel=4)
        missing[0] = int(np.sum(~measured))
        group.attrs["missing_cells"] = missing[0]
        group.attrs["unreadable_frames"] = unreadable
        group.attrs["unplaced_frames"] = int(np.sum(~layout.placed | left_out))
        set_default(entry, "sinogram")

    record = provenance_record(
        {
            "options": options.model_dump(mode="json"),
            "scan": asdict(spec),
            "reduce_key": key,
            **(configuration or {}),
        },
        inputs=[p for p in _input_files(spec, info) if Path(p).is_file()],
    )
    invalidate_run(output, after="reduce")  # later stages first (see write_run_stage)
    write_stage_file(
        stage_file(output, "reduce"),
        fill,
        stage="reduce",
        key=stage_key,
        upstream="",
        provenance=record,
        provenance_name="reduce",
        inputs=[Path(p) for p in info.files if Path(p).is_file()],
    )
    return ReduceReport(
        output=output,
        n_frames=info.n_frames,
        shape=sums.shape,
        missing_cells=missing[0],
        unreadable_frames=unreadable,
        duplicate_frames=int(np.sum(np.maximum(occupancy - 1, 0))),
        blocks_done_before=0,
        rotation_centre_mm=centre[0],
        unplaced_frames=int(np.sum(~layout.placed | left_out)),
    )


__all__ = ["ReduceOptions", "ReduceReport", "ScanSpec", "reduce_block", "reduce_key", "run_reduce"]

"""``jellyroll reduce``: a raw scan to the sinogram of its run file, in resumable blocks.

Blocks of frames are read, integrated (:mod:`jellyroll.reduce.engine`) and placed by their
motor positions straight into a work file ``<RUN>.partial`` that records which blocks are
done. An interrupted run resumes from it when the inputs and settings are unchanged; the
finished file is renamed into place, so ``RUN.h5`` is never half-written. With a Dask
scheduler address the blocks run on a ``dask.distributed`` cluster; the result is the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from jellyroll.io.nexus import nx_group, set_default
from jellyroll.io.provenance import (
    OutputWouldOverwriteInputError,
    provenance_json,
    provenance_record,
    sha256_file,
)
from jellyroll.io.scans import Block, ScanInfo, ScanReader, open_scan, read_mask, read_poni_text
from jellyroll.reduce.engine import IntegrationSetup, Integrator
from jellyroll.sinogram import (
    SinogramLayout,
    attenuation_sinogram,
    edge_columns,
    estimate_rotation_centre,
    place,
    sinogram_layout,
)

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class ReduceOptions:
    """Settings of a reduction (those of :class:`IntegrationSetup` plus placement)."""

    npt: int = 2000
    unit: str = "q_A^-1"
    radial_range: tuple[float, float] | None = None
    filter: str = "none"
    polarization_factor: float | None = 0.99
    block_frames: int = 256
    subtract_air: bool = True


@dataclass(frozen=True)
class ScanSpec:
    """How to open a scan (picklable, so that Dask workers can open it themselves)."""

    path: str
    mapping: str | None = None
    poni_path: str | None = None
    mask_path: str | None = None

    def open(self) -> ScanReader:
        return open_scan(
            self.path,
            mapping=self.mapping,
            poni=read_poni_text(self.poni_path) if self.poni_path else None,
            mask=read_mask(self.mask_path) if self.mask_path else None,
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
        filter=options.filter,  # type: ignore[arg-type]
    )


def _fingerprint(info: ScanInfo, options: ReduceOptions, spec: ScanSpec) -> str:
    """Key of a reduction: settings, file sizes and times, and the motor readings."""
    digest = hashlib.sha256()
    digest.update(json.dumps([asdict(options), asdict(spec), CHECKPOINT_VERSION]).encode())
    for path in info.files:
        stat = os.stat(path)
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for array in (info.rotation_angle_deg, info.translation_mm, info.monitor, info.diode):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    if info.mask is not None:
        digest.update(np.packbits(info.mask).tobytes())
    digest.update((info.poni or "").encode())
    return digest.hexdigest()


def _checksum(path: Path, key: str, limit_bytes: int = 1 << 30) -> str:
    """SHA-256 of an input up to ``limit_bytes``; larger raw scans (TB) get the fingerprint
    of sizes, times, motors and settings instead, marked as such."""
    if path.stat().st_size <= limit_bytes:
        return f"sha256:{sha256_file(path)}"
    return f"fingerprint:{key}"


def _monitor_scale(info: ScanInfo) -> np.ndarray:
    """Per-frame normalisation factor: monitor / its mean (1 without a monitor)."""
    if info.monitor is None:
        return np.ones(info.n_frames)
    monitor = np.asarray(info.monitor, dtype=np.float64)
    if np.any(monitor <= 0):
        bad = np.flatnonzero(monitor <= 0)[:5]
        raise ValueError(f"{info.source}: monitor is not positive at frames {bad.tolist()}...")
    return monitor / monitor.mean()


@lru_cache(maxsize=4)
def _worker_context(spec: ScanSpec, setup_key: str, setup: IntegrationSetup | None):
    """A reader and integrator per process, reused for every block it handles."""
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


def _integrate_block(
    block: Block, integrator: Integrator | None, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    valid = block.valid.copy()
    if integrator is None:  # pre-integrated patterns: normalise only; errors unknown
        patterns = block.data.astype(np.float32) / scale[:, None].astype(np.float32)
        errors = np.full_like(patterns, np.nan)
    else:
        result = integrator.integrate(block.data, monitor=scale)
        patterns, errors = result.intensity, result.sigma
    patterns[~valid] = np.nan
    errors[~valid] = np.nan
    return patterns, errors, valid


def reduce_scan(
    scan: str | Path,
    output: str | Path,
    *,
    options: ReduceOptions = ReduceOptions(),
    mapping: str | Path | None = None,
    poni_path: str | Path | None = None,
    mask_path: str | Path | None = None,
    scheduler: str | None = None,
    on_block: Callable[[int, int], None] | None = None,
    configuration: dict[str, Any] | None = None,
) -> ReduceReport:
    """Reduce a scan into the run file ``output`` (see the module docstring).

    ``on_block(n_frames, total_frames)`` is called after every placed block (progress). Raising
    from it (or any interruption) leaves a resumable ``<output>.partial``.
    """
    spec = ScanSpec(
        str(Path(scan).resolve()),
        str(mapping) if mapping else None,
        str(poni_path) if poni_path else None,
        str(mask_path) if mask_path else None,
    )
    output = Path(output).resolve()
    reader = spec.open()
    info = reader.info
    for item in info.files:
        if Path(item).resolve() == output:
            raise OutputWouldOverwriteInputError(f"refusing to write {output}: it is an input")
    setup = integration_setup(info, options) if info.kind == "frames" else None
    setup_key = _fingerprint(info, options, spec)
    if setup is not None:
        q = Integrator(setup).radial
    else:
        q = info.q_A
    layout = sinogram_layout(info.rotation_angle_deg, info.translation_mm)
    scale = _monitor_scale(info)
    partial = output.with_name(output.name + ".partial")
    blocks = [
        (start, min(start + options.block_frames, info.n_frames))
        for start in range(0, info.n_frames, options.block_frames)
    ]
    with _open_work_file(partial, layout, q, setup_key, len(blocks)) as work:
        done = work["checkpoint/done"]
        done_before = int(np.sum(done[()]))
        pending = [i for i, ok in enumerate(done[()]) if not ok]
        problems: list[str] = []
        valid = work["checkpoint/valid"]
        for index, start, stop, patterns, errors, block_valid, notes in _run_blocks(
            spec, setup, setup_key, scale, blocks, pending, scheduler
        ):
            _place_block(work, layout, start, stop, patterns, errors)
            valid[start:stop] = block_valid
            done[index] = True
            work.flush()
            problems.extend(notes)
            if on_block is not None:
                on_block(stop - start, info.n_frames)
        report = _finish(work, info, layout, valid[()], options, setup_key, configuration, spec)
    reader.close()
    os.replace(partial, output)
    report.output = output
    report.blocks_done_before = done_before
    report.problems = problems
    for message in problems:
        warnings.warn(message, stacklevel=2)
    return report


def _open_work_file(
    partial: Path, layout: SinogramLayout, q: np.ndarray, key: str, n_blocks: int
) -> h5py.File:
    """The work file: resumed if its key matches, else created afresh."""
    if partial.exists():
        try:
            work = h5py.File(partial, "r+")
            if work.attrs.get("reduce_key") == key and work["checkpoint/done"].shape == (n_blocks,):
                return work
            work.close()
        except OSError:
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
        ("q", q, "1/angstrom"),
    ):
        group[name] = values
        group[name].attrs["units"] = units
    group.attrs["signal"] = "data"
    group.attrs["axes"] = ["rotation_angle", "translation", "q"]
    checkpoint = work.create_group("checkpoint")
    checkpoint.create_dataset("done", shape=(n_blocks,), dtype=bool, fillvalue=False)
    checkpoint.create_dataset(
        "valid", shape=(layout.angle_index.size,), dtype=bool, fillvalue=False
    )
    return work


def _run_blocks(
    spec: ScanSpec,
    setup: IntegrationSetup | None,
    key: str,
    scale: np.ndarray,
    blocks: list[tuple[int, int]],
    pending: list[int],
    scheduler: str | None,
) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray, np.ndarray, list[str]]]:
    """Yield (block index, start, stop, patterns, errors, valid, notes) as blocks finish."""
    if scheduler:
        from distributed import Client, as_completed

        with Client(scheduler) as client:
            futures = {}
            for i in pending:
                start, stop = blocks[i]
                future = client.submit(
                    reduce_block, spec, setup, key, scale[start:stop], start, stop, pure=False
                )
                futures[future] = i
            for future in as_completed(futures):
                yield (futures[future], *future.result())
        return
    # locally: read the next block in a thread while this one is integrated (one ahead,
    # so memory holds two blocks at most)
    reader, integrator = _worker_context(spec, key, setup)
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        upcoming = prefetch.submit(reader.read, *blocks[pending[0]]) if pending else None
        for n, i in enumerate(pending):
            block = upcoming.result()  # type: ignore[union-attr]
            if n + 1 < len(pending):
                upcoming = prefetch.submit(reader.read, *blocks[pending[n + 1]])
            start, stop = blocks[i]
            patterns, errors, valid = _integrate_block(block, integrator, scale[start:stop])
            yield i, start, stop, patterns, errors, valid, block.problems


def _place_block(
    work: h5py.File,
    layout: SinogramLayout,
    start: int,
    stop: int,
    patterns: np.ndarray,
    errors: np.ndarray,
) -> None:
    """Write a block's patterns into their sinogram cells, one angle row at a time."""
    data, sigma = work["entry/sinogram/data"], work["entry/sinogram/errors"]
    rows = layout.angle_index[start:stop]
    columns = layout.translation_index[start:stop]
    keep = np.isfinite(patterns).any(axis=1)
    for row in np.unique(rows[keep]):
        pick = (rows == row) & keep
        row_data, row_sigma = data[row], sigma[row]
        row_data[columns[pick]] = patterns[pick]
        row_sigma[columns[pick]] = errors[pick]
        data[row], sigma[row] = row_data, row_sigma


def _finish(
    work: h5py.File,
    info: ScanInfo,
    layout: SinogramLayout,
    valid: np.ndarray,
    options: ReduceOptions,
    key: str,
    configuration: dict[str, Any] | None,
    spec: ScanSpec,
) -> ReduceReport:
    """Attenuation, air subtraction, rotation centre and provenance of a complete sinogram."""
    group = work["entry/sinogram"]
    data = group["data"]
    occupancy = layout.occupancy(valid)
    attenuation = None
    if info.diode is not None and info.monitor is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = place(layout, info.diode / info.monitor, valid)
        attenuation = attenuation_sinogram(ratio)
        if "attenuation" in group:
            del group["attenuation"]
        group["attenuation"] = attenuation.astype(np.float32)
        group["attenuation"].attrs["long_name"] = "-ln(diode / monitor), relative to air"
    air = edge_columns(layout.shape[1])
    air_done = work.require_dataset(
        "checkpoint/air_done", shape=(layout.shape[0],), dtype=bool, fillvalue=False
    )
    total = np.empty(layout.shape)
    for row in range(layout.shape[0]):
        values = data[row]
        if options.subtract_air and not air_done[row]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing edge
                values = values - np.nanmean(values[air], axis=0, keepdims=True)
            data[row] = values
            air_done[row] = True
        total[row] = np.sum(values, axis=1)
    group.attrs["air_subtracted"] = options.subtract_air
    centre_source = attenuation if attenuation is not None else total
    try:
        centre = estimate_rotation_centre(
            centre_source, layout.rotation_angle_deg, layout.translation_mm
        )
        group["rotation_centre"] = centre
        group["rotation_centre"].attrs["units"] = "mm"
    except ValueError as error:
        warnings.warn(f"{info.source}: rotation centre not estimated ({error})", stacklevel=3)
        centre = None
    missing = int(np.sum(occupancy == 0))
    group.attrs["missing_cells"] = missing
    group.attrs["unreadable_frames"] = int(np.sum(~valid))
    record = provenance_record(
        {
            "options": asdict(options),
            "scan": asdict(spec),
            "reduce_key": key,
            **(configuration or {}),
        },
        inputs=[],
    )
    record["inputs"] = {str(p): _checksum(Path(p), key) for p in info.files}
    entry = work["entry"]
    entry["provenance/reduce"] = provenance_json(record)
    set_default(work, "entry")
    set_default(entry, "sinogram")
    del work["checkpoint"]
    del work.attrs["reduce_key"]
    return ReduceReport(
        output=Path(),
        n_frames=info.n_frames,
        shape=data.shape,
        missing_cells=missing,
        unreadable_frames=int(np.sum(~valid)),
        duplicate_frames=int(np.sum(np.maximum(occupancy - 1, 0))),
        blocks_done_before=0,
        rotation_centre_mm=centre,
    )


__all__ = ["ReduceOptions", "ReduceReport", "ScanSpec", "reduce_block", "reduce_scan"]

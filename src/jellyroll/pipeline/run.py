"""``jellyroll run CONFIG.toml``: raw WAXS and SAXS scans of one slice per cell to a report.

Per cell and scan: :func:`~jellyroll.reduce.run.run_reduce`,
:func:`~jellyroll.recon.run.run_reconstruct`, :func:`~jellyroll.maps.run.run_maps`; per
cell :func:`~jellyroll.defects.run.run_diagnose` into ``<output>/<cell>/results.h5``; then
:func:`~jellyroll.report.run.run_report` for all cells. Each stage is skipped when its
output records the key of its options and inputs (:mod:`jellyroll.pipeline.stages`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from rich.console import Console

from jellyroll.defects.run import diagnose_key, run_diagnose
from jellyroll.io.images import written_by_jellyroll
from jellyroll.io.lock import OutputLockedError, output_lock
from jellyroll.locate.link_run import link_key, run_link
from jellyroll.locate.run import locate_key, run_locate
from jellyroll.maps.run import maps_key, run_maps
from jellyroll.nxct.run import nxct_key, run_nxct
from jellyroll.operando.run import operando_key, run_operando, series_scans
from jellyroll.pipeline.config import (
    PREVIOUS_REPORT,
    REPORT,
    RUN_LOCK,
    SCAN_INPUTS,
    CellInput,
    ConfigError,
    DaskOptions,
    RunConfig,
    require_inputs,
    written_by_the_run,
)
from jellyroll.pipeline.stages import StageLog
from jellyroll.progress import fraction_progress, frame_progress
from jellyroll.recon.options import ReconstructOptions
from jellyroll.recon.qwindows import NoChannelError, select_channels
from jellyroll.recon.run import reconstruct_key, run_reconstruct
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.run import ScanSpec, holds_pixels, reduce_key, run_reduce
from jellyroll.report.html import is_report
from jellyroll.report.options import ReportOptions
from jellyroll.report.run import run_report
from jellyroll.results import Diagnosis, read_diagnosis
from jellyroll.results.store import (
    RUN_STAGES,
    index_is_current,
    stage_file,
    write_index,
    written_by_stage,
)

TECHNIQUES = ("waxs", "saxs")
"""The two scans of a slice, in the order they are processed."""
SCAN_STAGES = tuple(spec.stage for spec in RUN_STAGES)
"""The stages of one scan, in chain order: reduce, reconstruct, maps."""


@dataclass
class PipelineResult:
    """Where everything went, and how long each stage took."""

    report: Path
    cells: dict[str, Diagnosis]
    log: StageLog = field(default_factory=StageLog)
    seconds: float = 0.0


def _scan_spec(cell: CellInput, kind: str) -> ScanSpec:
    """How the cell's ``kind`` scan ("waxs" or "saxs") is opened: its mapping, PONI, mask."""
    poni = getattr(cell, f"poni_{kind}")
    return ScanSpec.of(getattr(cell, kind), cell.mapping, poni, _scan_mask(cell, kind))


def _scan_mask(cell: CellInput, kind: str) -> Path | None:
    """The cell's mask for its ``kind`` scan: none for a scan without frames (a sinogram
    file, integrated patterns) while the cell's other scan has them (the mask is theirs);
    else the cell's mask (refused with a scan without frames: no pixel left to hide)."""
    if cell.mask is None or cell.mapping is not None:
        return cell.mask
    pixels = {name: holds_pixels(getattr(cell, name)) for name in TECHNIQUES}
    return None if not pixels[kind] and any(pixels.values()) else cell.mask


def _scan_stages(
    cell: CellInput,
    kind: str,
    config: RunConfig,
    folder: Path,
    log: StageLog,
    console: Console,
    scheduler: str | None,
    earlier: Sequence[Path] = (),
) -> Path:
    """Reduce, reconstruct and map one scan of a cell; returns its run file. ``earlier``:
    the run files of the cell's scans done before this one (:func:`_scan_channels`)."""
    run = folder / f"{kind}_run.h5"
    options = getattr(config, kind)
    spec = _scan_spec(cell, kind)
    label = f"{cell.name} {kind}"

    def reduce() -> None:
        with frame_progress(console, f"{label} reduce", None, transient=True) as advance:
            run_reduce(
                spec.path,
                run,
                options,
                mapping=spec.mapping,
                poni_path=spec.poni_path,
                mask_path=spec.mask_path,
                scheduler=scheduler,
                on_block=advance,
                configuration={"cell": cell.name, "technique": kind},
            )

    last = kind == TECHNIQUES[-1]

    def reconstruct() -> None:
        with fraction_progress(console, f"{label} reconstruction", transient=True) as update:
            options = _scan_channels(config.reconstruct, run, earlier if last else None)
            run_reconstruct(run, options, progress=update)

    def maps() -> None:
        with console.status(f"{label} maps"):
            run_maps(run, config.maps)

    log.run(f"{label} reduce", stage_file(run, "reduce"), lambda: reduce_key(spec, options), reduce)
    log.run(
        f"{label} reconstruct",
        stage_file(run, "reconstruct"),
        lambda: reconstruct_key(run, _scan_channels(config.reconstruct, run)),
        reconstruct,
    )
    log.run(f"{label} maps", stage_file(run, "maps"), lambda: maps_key(run, config.maps), maps)
    if not index_is_current(run):  # deleted or stale while every stage file is up to date
        write_index(run)
    return run


def _sinogram_q(run: Path) -> np.ndarray:
    """The q axis (n_q,) of the run's sinogram (its reduce stage file)."""
    with h5py.File(stage_file(run, "reduce"), "r") as f:
        return np.asarray(f["/entry/sinogram/q"][()], dtype=np.float64)


def _scan_channels(
    options: ReconstructOptions, run: Path, others: Sequence[Path] | None = None
) -> ReconstructOptions:
    """``options`` for one scan of a cell: ``[reconstruct] channels`` is one list for both
    scans (the WAXS windows and the SAXS range), so each scan keeps the q ranges that hold
    a channel of its own sinogram (all of them when none does: the reconstruction then
    refuses them, naming them). The reconstruction refuses a range beside its q axis (it
    was dropped while another range held channels), and the WAXS scan of a run
    configured with both scans' ranges was refused. ``others`` given (the cell's other
    runs, checked at its last scan): a range holding a channel of none of the cell's
    scans is refused (a typo was dropped from both)."""
    if options.channels.strip().lower() == "all":
        return options
    ranges = [item.strip() for item in options.channels.split(",")]

    def holds(item: str, q: np.ndarray) -> bool:
        try:
            select_channels(q, item)
        except NoChannelError:
            return False
        return True  # a malformed range is refused by the reconstruction itself

    q = _sinogram_q(run)
    kept = [item for item in ranges if holds(item, q)]
    if others is not None:
        axes = [q, *(_sinogram_q(other) for other in others)]
        unused = [item for item in ranges if not any(holds(item, axis) for axis in axes)]
        if unused:
            spans = ", ".join(f"{np.nanmin(a):.4g}-{np.nanmax(a):.4g}" for a in axes)
            raise ConfigError(
                f"[reconstruct] channels: no q channel of any scan of the cell within "
                f"{','.join(unused)} (the scans' q axes span {spans} 1/angstrom); give q "
                "ranges in 1/angstrom within them"
            )
    if not kept or len(kept) == len(ranges):
        return options
    return options.model_copy(update={"channels": ",".join(kept)})


AXIS_OPTIONS = {"npt", "radial_range", "unit"}
"""The ``[waxs]`` options that set the integration's radial axis."""


def operando_reduce_options(waxs: ReduceOptions, framed: bool) -> ReduceOptions:
    """The ``[waxs]`` options an operando series is reduced with: all of them for steps of
    raw frames; for patterns integrated already, all but the axis options
    (:data:`AXIS_OPTIONS`), which are the cell's frame scans' (a ``[waxs] npt`` for them
    was refused for the steps, with no way round in the TOML)."""
    if framed:
        return waxs
    return ReduceOptions(**waxs.model_dump(exclude_unset=True, exclude=AXIS_OPTIONS))


def _operando_stage(
    cell: CellInput,
    results: Path,
    config: RunConfig,
    folder: Path,
    log: StageLog,
    console: Console,
    waxs_run: Path,
) -> Path:
    """The cell's operando series; its damaged zones are the case-B agglomerates of the
    cell's diagnosis (``results``). Steps of raw frames are integrated with the cell's
    ``poni_waxs`` and ``mask`` and its ``[waxs]`` options, as its WAXS scan (with the
    geometry their files held, a recalibrated distance moved the q axis of every step, exit
    0); a series of patterns integrated already takes neither, nor the ``[waxs]`` axis
    options (:data:`AXIS_OPTIONS`: they are the cell's frame scans'). The steps are
    WAXS scans: they reconstruct the ``[reconstruct] channels`` that the cell's WAXS run
    ``waxs_run`` holds (:func:`_scan_channels`)."""
    output = folder / "operando.h5"
    options = config.operando
    reconstruct = _scan_channels(config.reconstruct, waxs_run)
    framed = any(holds_pixels(scan) for scan in series_scans(cell.operando))
    poni, mask = (cell.poni_waxs, cell.mask) if framed else (None, None)
    reduce = operando_reduce_options(config.waxs, framed)
    args = (
        cell.operando,
        options,
        cell.operando_log,
        results,
        reduce,
        reconstruct,
        config.maps,
    )

    def operando() -> None:
        run_operando(
            cell.operando,
            output,
            options,
            log=cell.operando_log,
            saxs_maps=results,
            reduce_options=reduce,
            reconstruct_options=reconstruct,
            maps_options=config.maps,
            poni_path=poni,
            mask_path=mask,
            console=console,
        )

    def key() -> str:
        return operando_key(*args, poni_path=poni, mask_path=mask)

    log.run(f"{cell.name} operando", output, key, operando)
    return output


def _nxct_stage(
    cell: CellInput, config: RunConfig, folder: Path, log: StageLog, console: Console
) -> Path:
    """Register, fuse, segment and find the 3D bends of the cell's NXCT volumes."""
    output = folder / "nxct.h5"
    xct, nct = str(cell.xct), str(cell.nct)

    def nxct() -> None:
        with fraction_progress(console, f"{cell.name} nxct", transient=True) as update:
            run_nxct(xct, nct, output, config.nxct, progress=update)

    log.run(f"{cell.name} nxct", output, lambda: nxct_key(xct, nct, config.nxct), nxct)
    return output


def _locate_stage(
    cell: CellInput,
    run: Path,
    nxct: Path,
    config: RunConfig,
    folder: Path,
    log: StageLog,
    console: Console,
) -> Path:
    """The slice's place in the cell's X-ray volume: the cell's own LOCATION.h5 when it names
    one, else found from the WAXS run's map (``jellyroll locate``)."""
    if cell.location is not None:
        return cell.location
    output = folder / "location.h5"
    xct, nct = str(cell.xct), str(cell.nct)

    def locate() -> None:
        with fraction_progress(console, f"{cell.name} locate", transient=True) as update:
            run_locate(run, xct, output, config.locate, nct=nct, nxct=nxct, progress=update)

    log.run(
        f"{cell.name} locate",
        output,
        lambda: locate_key(str(run), xct, nct, config.locate, str(nxct)),
        locate,
    )
    return output


def _link_stage(
    cell: CellInput,
    results: Path,
    nxct: Path,
    location: Path,
    config: RunConfig,
    folder: Path,
    log: StageLog,
) -> Path:
    """The cell's agglomerates linked to its 3D bends through the slice's ``location``,
    with the dossiers."""
    output = folder / "link.h5"
    inputs = (results, cell.xct, nxct, location)

    def link() -> None:
        run_link(*inputs, output, config.link, nct=cell.nct)

    log.run(f"{cell.name} link", output, lambda: link_key(*inputs, config.link, cell.nct), link)
    return output


@contextlib.contextmanager
def dask_scheduler(options: DaskOptions) -> Iterator[str | None]:
    """The scheduler address the stages get: None (in process), a local or SLURM cluster
    started for the run (closed after it), or a given address."""
    name = options.scheduler
    if name is None or "://" in name:
        yield name
        return
    if name == "slurm":
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError as error:
            raise RuntimeError(
                "[dask] scheduler = 'slurm' needs dask-jobqueue: pip install dask-jobqueue"
            ) from error
        with SLURMCluster(**options.slurm) as cluster:
            cluster.scale(jobs=options.workers)
            yield cluster.scheduler_address
        return
    from distributed import LocalCluster

    # "local" or "local:N" (DaskOptions refuses any other name)
    workers = int(name.split(":")[1]) if ":" in name else options.workers
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster:
        yield cluster.scheduler_address


DIAGNOSIS_CELL_FIELDS = ("name", "label", *SCAN_INPUTS)
"""What of a cell's entry its diagnosis is made from (:func:`_diagnosis_configuration`)."""
DIAGNOSIS_SECTIONS = ("waxs", "saxs", "reconstruct", "maps", "defects")
"""The option sections of a run configuration its diagnoses are made with."""


def _diagnosis_configuration(config: RunConfig, cell: CellInput) -> dict[str, Any]:
    """The part of ``config`` that makes ``cell``'s diagnosis: its scans and calibrations
    and the chain's options up to the diagnosis, each of which reruns it when changed
    (its key, or its runs'). The whole configuration was recorded: a run that added an
    operando series and changed the title skipped the diagnosis (up to date), and its
    results file went on recording the title and operando options of the run before."""
    return {
        "cell": cell.model_dump(mode="json", include=set(DIAGNOSIS_CELL_FIELDS)),
        **config.model_dump(mode="json", include=set(DIAGNOSIS_SECTIONS)),
    }


def run_pipeline(config: RunConfig, console: Console | None = None) -> PipelineResult:
    """Run every stage for every cell of ``config`` and write the report (:data:`REPORT`;
    the one before lies as :data:`PREVIOUS_REPORT` while the run goes).

    One run at a time per output folder (:data:`RUN_LOCK`): each stage locks only its own
    file, so a second run with other options, its stages falling between this one's, made
    this run go on from the other's files (its report stated npt 400 over maps of a
    300-bin sinogram, exit 0)."""
    console = console or Console(quiet=True)
    require_inputs(config)
    _refuse_swapped_scans(config)
    _refuse_foreign_outputs(config)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(output_lock(config.output / RUN_LOCK))
        except OutputLockedError as error:
            raise OutputLockedError(
                f"{config.output}: another `jellyroll run` writes into this output folder ({error})"
            ) from None
        report = config.output / REPORT
        if report.exists():  # until this run's report is written, none stands for it
            report.replace(report.with_name(PREVIOUS_REPORT))
        result = _run_pipeline(config, console)
        report.with_name(PREVIOUS_REPORT).unlink(missing_ok=True)
        return result


def _refuse_swapped_scans(config: RunConfig) -> None:
    """ConfigError naming each cell whose WAXS scan reaches a lower q than its SAXS scan
    (:meth:`~jellyroll.reduce.run.ScanSpec.q_reach_A`): the two given the wrong way round
    were refused only once both had been reduced, reconstructed and mapped."""
    problems = []
    for cell in config.cells:
        reach = {kind: _scan_spec(cell, kind).q_reach_A() for kind in ("waxs", "saxs")}
        if None not in reach.values() and reach["waxs"] < reach["saxs"]:
            problems.append(
                f"cell {cell.name}: its waxs scan {cell.waxs} reaches q = {reach['waxs']:.3g} "
                f"1/A, its saxs scan {cell.saxs} q = {reach['saxs']:.3g} 1/A: they are the "
                "wrong way round; swap waxs and saxs (and poni_waxs and poni_saxs)"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def _refuse_foreign_outputs(config: RunConfig) -> None:
    """ConfigError naming each file where the run writes that jellyroll did not write: a
    report of the output folder that is no jellyroll report, an HDF5 file of a cell's
    folder named as the run's (:func:`written_by_the_run`) that records no jellyroll stage,
    a PNG or GIF there without jellyroll's mark. `jellyroll run` and `demo` replaced a
    hand-written ``report.html`` and the user's own files there, exit 0."""
    problems = []
    for report in (config.output / REPORT, config.output / PREVIOUS_REPORT):
        if report.is_file() and report.stat().st_size and not is_report(report):
            problems.append(f"{report} is where the run writes its report, but it is no report")
    for cell in config.cells:
        folder = config.output / cell.name
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not (path.is_file() and written_by_the_run(path.name)):
                continue
            if path.suffix == ".h5" and not _jellyroll_h5(path):
                problems.append(
                    f"{path} is where the run writes cell {cell.name}'s results, but it is no "
                    "jellyroll file"
                )
            elif path.suffix in (".png", ".gif") and not written_by_jellyroll(path):
                problems.append(
                    f"{path} is where the run draws cell {cell.name}'s figures, but jellyroll "
                    "did not draw it"
                )
    if problems:
        raise ConfigError(
            "\n".join(problems) + "\nthe run would replace them: move them out of the way, or "
            "give another output folder"
        )


def _jellyroll_h5(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file recording a jellyroll stage or run index (an empty
    file counts: an interrupted write's)."""
    return path.stat().st_size == 0 or written_by_stage(path) is not None


def _run_pipeline(config: RunConfig, console: Console) -> PipelineResult:
    """:func:`run_pipeline` under the output folder's lock."""
    start = time.perf_counter()
    log = StageLog()
    cells: dict[str, Diagnosis] = {}
    nxct_files: dict[str, Path] = {}
    link_files: dict[str, Path] = {}
    operando_files: dict[str, Path] = {}
    with dask_scheduler(config.dask) as scheduler:
        for cell in config.cells:
            folder = config.output / cell.name
            folder.mkdir(parents=True, exist_ok=True)
            runs: dict[str, Path] = {}
            for kind in TECHNIQUES:
                runs[kind] = _scan_stages(
                    cell, kind, config, folder, log, console, scheduler, list(runs.values())
                )
            results = folder / "results.h5"
            label = cell.label or cell.name

            def diagnose(cell=cell, runs=runs, results=results, label=label) -> None:
                with console.status(f"{cell.name}: diagnosis"):
                    run_diagnose(
                        runs,
                        results,
                        config.defects,
                        name=cell.name,
                        label=label,
                        configuration={"config": _diagnosis_configuration(config, cell)},
                    )

            log.run(
                f"{cell.name} diagnosis",
                results,
                lambda runs=runs, cell=cell, label=label: diagnose_key(
                    runs, config.defects, cell.name, label
                )[0],
                diagnose,
            )
            cells[cell.name] = read_diagnosis(results)
            if cell.xct is not None and cell.nct is not None:
                nxct = nxct_files[cell.name] = _nxct_stage(cell, config, folder, log, console)
                location = _locate_stage(cell, runs["waxs"], nxct, config, folder, log, console)
                with console.status(f"{cell.name}: link to the 3D bends, dossiers"):
                    link_files[cell.name] = _link_stage(
                        cell, results, nxct, location, config, folder, log
                    )
            if cell.operando is not None:
                operando_files[cell.name] = _operando_stage(
                    cell, results, config, folder, log, console, runs["waxs"]
                )
    settings = {k: v for k, v in config.model_dump(mode="json").items() if k != "cells"}
    # each cell's files: the report named none of its scans, so a cell given another
    # cell's scan could not be told from its page
    inputs = {
        cell.name: {k: v for k, v in cell.model_dump(mode="json").items() if v and k != "name"}
        for cell in config.cells
    }
    facts = {"settings": settings, "cells": inputs, "output": str(config.output)}
    report = run_report(
        [result.path for result in cells.values() if result.path is not None],
        config.output / REPORT,
        ReportOptions(title=config.title),
        stages=log.entries,
        run_facts=facts,
        nxct=nxct_files,
        link=link_files,
        truth={cell.name: cell.truth for cell in config.cells if cell.truth is not None},
        operando=operando_files,
    )
    return PipelineResult(report, cells, log, time.perf_counter() - start)

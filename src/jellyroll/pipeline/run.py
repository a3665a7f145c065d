"""``jellyroll run CONFIG.toml``: raw WAXS and SAXS scans of one slice per cell to a report.

Per cell: reduce both scans (:mod:`jellyroll.reduce`), reconstruct them
(:mod:`jellyroll.recon`), compute the maps (:mod:`jellyroll.maps`), then the diagnosis
(:mod:`jellyroll.pipeline.diagnosis`) into ``<output>/<cell>/results.h5``; finally one
HTML report for all cells. Every stage is skipped when its output is up to date.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from jellyroll.io.provenance import file_fingerprint
from jellyroll.maps import MapsOptions, write_run_maps
from jellyroll.pipeline.config import CellInput, ReduceSettings, RunConfig
from jellyroll.pipeline.diagnosis import CellResults, diagnose_cell
from jellyroll.pipeline.stages import StageLog, stage_key
from jellyroll.progress import fraction_progress, frame_progress
from jellyroll.recon.run import reconstruct_run
from jellyroll.reduce.pipeline import ReduceOptions, reduce_scan


@dataclass
class PipelineResult:
    """Where everything went, and how long each stage took."""

    report: Path
    cells: dict[str, CellResults]
    log: StageLog = field(default_factory=StageLog)
    seconds: float = 0.0


def _reduce_options(settings: ReduceSettings) -> ReduceOptions:
    return ReduceOptions(
        npt=settings.npt,
        radial_range=settings.q_range,
        filter=settings.filter,
        block_frames=settings.block_frames,
        subtract_air=settings.subtract_air,
    )


def _scan_stages(
    cell: CellInput, kind: str, config: RunConfig, folder: Path, log: StageLog, console: Console
) -> Path:
    """Reduce, reconstruct and map one scan of a cell; returns its run file."""
    scan = getattr(cell, kind)
    poni = getattr(cell, f"poni_{kind}")
    settings: ReduceSettings = getattr(config, kind)
    run = folder / f"{kind}_run.h5"
    inputs = [file_fingerprint(p) for p in (scan, poni, cell.mask, cell.mapping) if p]
    key = stage_key("reduce", settings.model_dump(mode="json"), inputs)

    def reduce() -> None:
        label = f"{cell.name} {kind.upper()}"
        with frame_progress(console, label, None, transient=True) as advance:
            reduce_scan(
                scan,
                run,
                options=_reduce_options(settings),
                mapping=cell.mapping,
                poni_path=poni,
                mask_path=cell.mask,
                on_block=advance,
                configuration={"cell": cell.name, "technique": kind},
            )

    log.run(f"{cell.name} {kind} reduce", run, "reduce", key, reduce)
    recon = config.reconstruct
    key = stage_key("reconstruct", recon.model_dump(mode="json"), [key])

    def reconstruct() -> None:
        label = f"{cell.name} {kind.upper()} reconstruction"
        with fraction_progress(console, label, transient=True) as update:
            reconstruct_run(
                run,
                method=recon.method,
                iterations=recon.iterations,
                backend=recon.backend,
                nonnegative=recon.nonnegative,
                self_absorption=recon.self_absorption,
                progress=update,
            )

    log.run(f"{cell.name} {kind} reconstruct", run, "reconstruct", key, reconstruct)
    options = MapsOptions()
    key = stage_key("maps", asdict(options), [key])

    def maps() -> None:
        with console.status(f"{cell.name}: {kind.upper()} maps"):
            write_run_maps(run, options)

    log.run(f"{cell.name} {kind} maps", run, "maps", key, maps)
    return run


def run_pipeline(config: RunConfig, console: Console | None = None) -> PipelineResult:
    """Run every stage for every cell of ``config`` and write the report."""
    from jellyroll.pipeline.report import write_report

    console = console or Console(quiet=True)
    start = time.perf_counter()
    log = StageLog()
    cells: dict[str, CellResults] = {}
    for cell in config.cells:
        folder = config.output / cell.name
        folder.mkdir(parents=True, exist_ok=True)
        runs = {
            kind: _scan_stages(cell, kind, config, folder, log, console)
            for kind in ("waxs", "saxs")
        }
        with console.status(f"{cell.name}: diagnosis"):
            cells[cell.name] = diagnose_cell(cell, runs, config, folder, log)
    report = write_report(config, cells, log, config.output / "report.html")
    return PipelineResult(report, cells, log, time.perf_counter() - start)

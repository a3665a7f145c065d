"""``jellyroll operando``: a charge series of WAXS scans of one slice to ``/entry/operando``.

Every step becomes a run file ``<OUTPUT stem>_steps/step_NNN.h5`` through the same stages as
one scan (:func:`~jellyroll.reduce.run.run_reduce`,
:func:`~jellyroll.recon.run.run_reconstruct`, :func:`~jellyroll.maps.run.run_maps`), each
skipped when its file already records the key of its inputs and options, so an interrupted
series resumes step by step. All steps are reduced first; the rotation centre is then fitted
once on all of them (:func:`~jellyroll.operando.core.shared_rotation_centre`) and every step
is reconstructed with it. The analysis (:mod:`jellyroll.operando.core`) reads the steps' maps
and reconstructions and writes the results file and its figures.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from rich.console import Console
from scipy import ndimage

from jellyroll.conventions import interp_in_any_order, map_shift_px, masked_mean_profiles
from jellyroll.defects import find_agglomerates
from jellyroll.defects.agglomerates import saxs_map_problem
from jellyroll.io.images import refuse_foreign_images
from jellyroll.io.nexus import TWIN_TRUTH, read_table
from jellyroll.io.provenance import (
    OutputWouldOverwriteInputError,
    file_fingerprint,
    provenance_record,
    refuse_overwrite,
)
from jellyroll.io.scans import natural_key
from jellyroll.maps.calibration import CALIBRATION, SKIP_Q_CHECK, QAxisError
from jellyroll.maps.core import analysis_note, graphite_windows_of
from jellyroll.maps.options import MapsOptions
from jellyroll.maps.run import maps_key, run_maps
from jellyroll.operando import core
from jellyroll.operando.figures import figure_paths, write_figures
from jellyroll.operando.options import OperandoOptions
from jellyroll.operando.timeline import (
    SOC_UNITS,
    Timeline,
    build_timeline,
    read_potentiostat_log,
    scan_times,
)
from jellyroll.phases import fit_graphite_lines, graphite_amounts
from jellyroll.progress import frame_progress
from jellyroll.recon.options import ReconstructOptions
from jellyroll.recon.qwindows import NoChannelError
from jellyroll.recon.run import reconstruct_key, run_reconstruct
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.run import ScanSpec, holds_pixels, reduce_key, run_reduce
from jellyroll.results import (
    MapName,
    MapSet,
    RunFileError,
    read_map_set,
    read_sinogram,
)
from jellyroll.results.operando import CORE_FIELDS, PHASES, OperandoResult, write_operando
from jellyroll.results.run import open_reconstruction, resample_map
from jellyroll.results.store import (
    refuse_foreign_run_files,
    run_files,
    run_if_stale,
    run_stage_key,
    stage_file,
    stage_key,
)
from jellyroll.unroll import Cell, find_cell, trace_spiral

SCAN_SUFFIXES = (".h5", ".hdf5", ".nxs")
AGGLOMERATES = "entry/defects/agglomerates"


@dataclass
class OperandoRun:
    """What :func:`run_operando` wrote: the result, its file, the figures, and the step
    stages that ran (the others were up to date)."""

    path: Path
    result: OperandoResult
    figures: list[Path]
    ran: list[str]


def series_scans(series: str | os.PathLike[str] | list[str | os.PathLike[str]]) -> list[Path]:
    """The scans of a series in time order: a folder's HDF5 scans by their recorded start
    times (``/entry/start_time``) where every one has one, else by name in natural order
    (``op_2`` before ``op_10``); a list in the order given. Refused: a scan given twice, or
    recorded start times that go backwards in the order taken."""
    if isinstance(series, str | os.PathLike):
        folder = Path(series)
        if not folder.is_dir():
            raise ValueError(f"{folder}: not a folder; give a folder or a list of scans")
        found = [p for p in _hdf5_files(folder) if _is_scan(p)]
        scans = sorted(found, key=lambda p: natural_key(p.name))
        start = scan_times(scans).start_s
        if np.isfinite(start).all():
            order = np.argsort(start, kind="stable")
            scans, start = [scans[k] for k in order], start[order]
    else:
        scans = [Path(p) for p in series]
        missing = [str(p) for p in scans if not p.is_file()]
        if missing:
            raise ValueError(f"scan not found: {', '.join(missing)}")
        for k, scan in enumerate(scans):
            if not h5py.is_hdf5(scan):  # counted as "no start time" before, unnamed
                raise ValueError(
                    f"{scan} (step {k}): not a readable HDF5 scan; give the series' WAXS scans"
                )
        seen: dict[Path, Path] = {}
        for scan in scans:
            first = seen.setdefault(scan.resolve(), scan)
            if first is not scan:
                raise ValueError(f"{scan} is given twice in the series (also as {first})")
        start = scan_times(scans).start_s
    if len(scans) < 2:
        given = ", ".join(map(str, scans)) if isinstance(series, list) else str(series)
        raise ValueError(f"{given}: an operando series needs at least two scans")
    _check_time_order(scans, start)
    return scans


def _order_note(
    series: str | os.PathLike[str] | list[str | os.PathLike[str]], scans: list[Path]
) -> str | None:
    """A note when ``scans`` (the steps of ``series``, in the order taken) are not in their
    names' natural order: a folder ordered by the scans' start times, which the names
    contradict (a start time wrong, or the scans misnamed?), or a list in another order
    (a shell's glob sorts op_10 before op_2). Taken without a word before; the order taken
    stands: the only one along the recorded times (another is refused when the times go
    backwards), and a list's order is the user's."""
    named = sorted(scans, key=lambda p: natural_key(p.name))
    if named == scans:
        return None
    k = next(i for i, (a, b) in enumerate(zip(scans, named, strict=True)) if a != b)
    how = (
        "by their recorded start times (/entry/start_time)"
        if isinstance(series, str | os.PathLike)
        else "in the order given"
    )
    return (
        f"the steps are taken {how}, not in their names' order: step {k} is {scans[k].name}, "
        f"by name {named[k].name}; check that this is the order the scans were taken in"
    )


def _hdf5_files(folder: Path) -> list[Path]:
    """The files of ``folder`` named as HDF5 files (:data:`SCAN_SUFFIXES`, in any case: a
    step named ``.H5`` was left out of the series without a word)."""
    return [p for p in folder.iterdir() if p.suffix.lower() in SCAN_SUFFIXES]


def _left_out_note(
    series: str | os.PathLike[str] | list[str | os.PathLike[str]], scans: list[Path]
) -> str | None:
    """A note naming the HDF5 files of a series' folder taken for no step of ``scans`` (the
    steps :func:`series_scans` took: neither frames nor integrated patterns; a truth file,
    or a scan still being written, whose step was left out without a word)."""
    if not isinstance(series, str | os.PathLike):
        return None
    taken = set(scans)
    others = sorted(
        p.name for p in _hdf5_files(Path(series)) if p not in taken and not _twin_truth(p)
    )
    if not others:
        return None
    return (
        f"HDF5 files of the series folder taken for no step (neither frames nor integrated "
        f"patterns): {', '.join(others)}"
    )


def _twin_truth(path: Path) -> bool:
    """Whether ``path`` is a digital twin's truth file (:data:`TWIN_TRUTH`): `jellyroll
    phantom --operando-steps` writes it beside the steps, where the note on files taken
    for no step named it to every user of the tutorial."""
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get(TWIN_TRUTH, False))
    except OSError:
        return False


def _check_time_order(scans: list[Path], start_s: np.ndarray) -> None:
    """Refuse steps whose recorded start times go backwards: the curves would run along
    a shuffled time axis and every lag would be wrong; and two steps that record the same
    start time (a template's, copied into every scan): matched to one moment of the
    potentiostat log they all got one state of charge, and no zone was found, exit 0."""
    known = np.flatnonzero(np.isfinite(start_s))
    for before, after in itertools.pairwise(known):
        if start_s[after] == start_s[before]:
            raise ValueError(
                f"{scans[after]} (step {after}) and {scans[before]} (step {before}) record the "
                "same /entry/start_time: two scans of a series cannot start at one moment; "
                "correct their start times (the state of charge is read from the log at them)"
            )
        if start_s[after] < start_s[before]:
            raise ValueError(
                f"{scans[after]} (step {after}) started before {scans[before]} (step "
                f"{before}) by their /entry/start_time: give the scans in time order, or a "
                "folder (ordered by start time)"
            )


def operando_key(
    series: str | os.PathLike[str] | list[str | os.PathLike[str]],
    options: OperandoOptions,
    log: str | os.PathLike[str] | None = None,
    saxs_maps: str | os.PathLike[str] | None = None,
    reduce_options: ReduceOptions | None = None,
    reconstruct_options: ReconstructOptions | None = None,
    maps_options: MapsOptions | None = None,
    *,
    poni_path: str | os.PathLike[str] | None = None,
    mask_path: str | os.PathLike[str] | None = None,
) -> str:
    """Key of the operando results of these inputs and options: every scan (with the files
    its data are linked to), the PONI and mask its steps are reduced with, the log and the
    SAXS maps by fingerprint (the SAXS run by the key of its maps)."""
    payload = {
        "operando": options.key_payload(),
        "reduce": (reduce_options or ReduceOptions()).key_payload(),
        "reconstruct": (reconstruct_options or ReconstructOptions()).key_payload(),
        "maps": (maps_options or MapsOptions()).key_payload(),
    }
    upstream = []
    for scan in series_scans(series):
        # a scan's frames may lie in other files
        reader = ScanSpec.of(scan, None, poni_path, mask_path).open()
        try:
            upstream += [file_fingerprint(path) for path in reader.info.files]
        finally:
            reader.close()
    upstream += [file_fingerprint(path) for path in (poni_path, mask_path) if path is not None]
    if log is not None:
        upstream.append(file_fingerprint(log))
    if saxs_maps is not None:
        upstream.append(run_stage_key(saxs_maps, "maps") or file_fingerprint(saxs_maps))
    return stage_key("operando", payload, upstream)


def _is_scan(path: Path) -> bool:
    """Whether an HDF5 file holds frames or integrated patterns (SPEC section 6 layout);
    other files of the folder (a potentiostat export, a truth file) are not steps."""
    if not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as f:
        return "entry/integrated/intensity" in f or "entry/instrument/detector/data" in f


def run_operando(
    series: str | os.PathLike[str] | list[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    options: OperandoOptions | None = None,
    *,
    log: str | os.PathLike[str] | None = None,
    saxs_maps: str | os.PathLike[str] | None = None,
    reduce_options: ReduceOptions | None = None,
    reconstruct_options: ReconstructOptions | None = None,
    maps_options: MapsOptions | None = None,
    poni_path: str | os.PathLike[str] | None = None,
    mask_path: str | os.PathLike[str] | None = None,
    console: Console | None = None,
    figures: bool = True,
) -> OperandoRun:
    """Reduce, reconstruct, map and analyse every step of ``series``; write ``output``.

    ``log``: a potentiostat log (``.mpt`` or CSV) for the state of charge; ``saxs_maps``: a
    run or results file of the same slice with ``/entry/maps/saxs_intensity``, whose case-B
    agglomerates give the damaged zones (else the zones are the pixels that lag the anode).
    ``poni_path`` and ``mask_path``: the PONI (instead of the one each scan holds) and the
    detector mask every step's frames are integrated with; refused when a step holds no
    frames (patterns integrated already, a sinogram), which they could not change.
    ``figures``: also draw the contact sheet, curves, cores and GIF beside ``output``.
    ``reduce_options``, ``reconstruct_options`` and ``maps_options`` make every step, as they
    make the cell's own slice (its phase maps with the same window analysis).
    """
    options = options or OperandoOptions()
    maps_options = maps_options or MapsOptions()
    reduce_options = reduce_options or ReduceOptions()
    recon = (reconstruct_options or ReconstructOptions()).model_copy(
        update={"channels": options.channels}
    )
    console = console or Console(quiet=True)
    scans = series_scans(series)
    output = Path(output)
    given = [Path(p) for p in (poni_path, mask_path, log, saxs_maps) if p is not None]
    folder = output.with_name(f"{output.stem}_steps")
    runs = [folder / f"step_{k:03d}.h5" for k in range(len(scans))]
    # before the steps folder is made: a refused run leaves nothing behind, and no step's
    # run replaces another step's scan (scans numbered from 1 in the steps folder were)
    refuse_overwrite([output], [*scans, *given])
    if saxs_maps is not None and not h5py.is_hdf5(saxs_maps):  # found after every step before
        raise ValueError(
            f"{saxs_maps} (--saxs): not a readable HDF5 file; give the slice's SAXS run file "
            "or its diagnosis results file"
        )
    try:
        refuse_overwrite([path for run in runs for path in run_files(run)], [*scans, *given])
    except OutputWouldOverwriteInputError as error:
        raise OutputWouldOverwriteInputError(
            f"{error}: {folder} is where the run files of the steps go (step_000.h5, ...), "
            f"named after the output {output.name}; give the output (-o) another name, or "
            f"move the scans out of {folder}"
        ) from None
    for run in runs:
        refuse_foreign_run_files(run)
    if figures:
        refuse_foreign_images(figure_paths(output).values())
    _check_calibration(scans, poni_path, mask_path)
    potentiostat = read_potentiostat_log(log) if log is not None else None
    timeline = build_timeline(
        scans,
        potentiostat,
        capacity_mah=options.capacity_mah,
        max_gap_s=options.max_log_gap_s,
        log_utc_offset_h=options.log_utc_offset_h,
    )
    timeline.warnings.extend(
        filter(None, [_order_note(series, scans), _left_out_note(series, scans)])
    )
    placed = int(np.isfinite(timeline.axis()[0]).sum())
    if saxs_maps is None and placed < 2:
        # the lag map failed after every step was reconstructed, in NumPy ("zero-size array")
        raise ValueError(
            f"{scans[0].parent}: {placed} of the {len(scans)} scans of the series has a state "
            "of charge or a time (/entry/sample/state_of_charge, /entry/start_time, a log "
            "covering it): the lagging zones need at least two; record the scans' start "
            "times, give a potentiostat log (--log), or the slice's SAXS maps (--saxs)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    ran: list[str] = []
    for message in timeline.warnings:
        warnings.warn(message, stacklevel=2)
    with frame_progress(console, "operando: reduce steps", len(scans)) as advance:
        for k, (scan, run) in enumerate(zip(scans, runs, strict=True)):
            spec = ScanSpec.of(scan, None, poni_path, mask_path)
            _stage(
                ran,
                f"step {k} reduce",
                stage_file(run, "reduce"),
                lambda spec=spec: reduce_key(spec, reduce_options),
                lambda spec=spec, run=run, k=k: run_reduce(
                    spec.path,
                    run,
                    reduce_options,
                    poni_path=spec.poni_path,
                    mask_path=spec.mask_path,
                    configuration={"operando_step": k},
                ),
            )
            advance(1)
    centre = _shared_centre(runs, scans)
    recon = recon.model_copy(update={"rotation_centre_mm": centre})
    with frame_progress(console, "operando: reconstruct steps", len(scans)) as advance:
        for k, run in enumerate(runs):
            _stage(
                ran,
                f"step {k} reconstruct",
                stage_file(run, "reconstruct"),
                lambda run=run: reconstruct_key(run, recon),
                lambda run=run, scan=scans[k]: _reconstruct_step(scan, run, recon),
            )
            _stage(
                ran,
                f"step {k} maps",
                stage_file(run, "maps"),
                lambda run=run: maps_key(run, maps_options),
                lambda run=run, scan=scans[k], k=k: _maps_step(scan, k, run, maps_options),
            )
            advance(1)
    with console.status("operando: analysis"):
        result = analyse(runs, timeline, options, centre, saxs_maps=saxs_maps)
    key = operando_key(
        series,
        options,
        log,
        saxs_maps,
        reduce_options,
        reconstruct_options,
        maps_options,
        poni_path=poni_path,
        mask_path=mask_path,
    )
    configuration = {
        "stage": "operando",
        **options.key_payload(),
        "reconstruct": recon.key_payload(),
        "maps": maps_options.key_payload(),
        # the SAXS file the zones came from: the report checks the cell it is shown for
        "zones_from": None if saxs_maps is None else str(Path(saxs_maps).resolve()),
    }
    inputs = [*scans, *given]
    record = provenance_record(configuration, inputs=inputs)
    write_operando(output, result, record, key=key, inputs=inputs)
    drawn = write_figures(result, output) if figures else []
    return OperandoRun(output, result, drawn, ran)


def _check_calibration(
    scans: list[Path],
    poni_path: str | os.PathLike[str] | None,
    mask_path: str | os.PathLike[str] | None,
) -> None:
    """ValueError naming the first step without detector frames (patterns integrated
    already, a sinogram) when a PONI or a mask is given: they cannot change its data, and
    its q axis and pixels would be the file's, not those of the geometry given. Every step
    is opened with them, so a mask of another detector is refused before any step is made."""
    calibration = (("PONI", poni_path), ("mask", mask_path))
    given = [f"a {what} ({path})" for what, path in calibration if path is not None]
    if not given:
        return
    for k, scan in enumerate(scans):
        if not holds_pixels(scan):
            raise ValueError(
                f"{scan} (step {k}): holds no detector frames (patterns integrated already, "
                f"or a sinogram), which {' and '.join(given)} cannot change; leave them out "
                "for such a series, or give the steps' raw frames"
            )
        ScanSpec.of(scan, None, poni_path, mask_path).open().close()


def _reconstruct_step(scan: Path, run: Path, options: ReconstructOptions) -> None:
    """:func:`run_reconstruct` of one step; a q axis without the channels is named by its
    scan (it said only "no q channel within 1.58:2.0,4.40:4.68", e.g. for a SAXS scan
    given among the WAXS steps)."""
    try:
        run_reconstruct(run, options)
    except RunFileError as error:
        if not isinstance(error.__cause__, NoChannelError):
            raise
        raise ValueError(
            f"{scan}: {error.__cause__}; every step must be a WAXS scan whose q covers the channels"
        ) from None


def _maps_step(scan: Path, k: int, run: Path, options: MapsOptions) -> None:
    """:func:`run_maps` of step ``k``; a q axis off its reference lines is named by its scan
    with what to do for a series (it named the step's run file, and advised `jellyroll
    reduce --poni`, which the operando refuses for a step integrated already)."""
    try:
        run_maps(run, options, figures=False)
    except RunFileError as error:
        if not isinstance(error.__cause__, QAxisError):
            raise
        redo = (
            "give the right PONI (--poni, every step is then integrated with it)"
            if holds_pixels(scan)
            else "integrate its frames again with the right one"
        )
        raise ValueError(
            f"{scan} (step {k}): {error.__cause__.finding}. Check that scan's calibration "
            f"({CALIBRATION}) and {redo}; for a sample whose lines these are not, {SKIP_Q_CHECK}"
        ) from None


def _stage(
    ran: list[str], label: str, path: Path, key: Callable[[], str], action: Callable[[], object]
) -> None:
    """Run ``action`` unless ``path`` records ``key()`` (the step's file is up to date;
    :func:`~jellyroll.results.store.run_if_stale`), ``label`` added to ``ran`` when it ran."""
    if run_if_stale(f"operando {label}", path, key, action):
        ran.append(label)


AXIS_TOLERANCE_STEPS = 0.5
"""How far (translation steps) a step's own rotation axis may lie from the series' shared
one. Fitted alone, the steps of the tiny twin's series agree within 0.06 steps."""


def _step_sinograms(
    runs: list[Path], scans: list[Path]
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per step (``runs``, reduced from ``scans``): its attenuation (else total intensity)
    sinogram (n_angles, n_translations) and rotation angles (deg); and the translations
    (mm) they share.

    Refused: a step on other translations than the first's; a step whose reduced data
    equal another's (the same scan twice under two names: a copy, a link). Without start
    times, at one recorded state of charge, the tiny twin's middle step given twice passed
    and weighed double in the shrink-rate fit (15197 um2 per unit charge for 15363), exit 0."""
    sinograms, angles, translation = [], [], None
    seen: dict[str, int] = {}
    for k, (run, scan) in enumerate(zip(runs, scans, strict=True)):
        sinogram = read_sinogram(run, errors=False)
        image = sinogram.attenuation
        if image is None:
            image = np.nansum(sinogram.data, axis=2)
            image[~np.isfinite(sinogram.data).any(axis=2)] = np.nan
        if translation is not None and not (
            translation.shape == sinogram.translation_mm.shape
            and np.allclose(translation, sinogram.translation_mm)
        ):
            raise ValueError(
                f"{scan}: its translations differ from those of {scans[0]} (the first step): "
                "every step of a series must be scanned on the same grid"
            )
        digest = hashlib.blake2b(np.ascontiguousarray(sinogram.data)).hexdigest()
        first = seen.setdefault(digest, k)
        if first != k:
            raise ValueError(
                f"{scan} (step {k}) holds the same data as {scans[first]} (step {first}): "
                "one scan given twice (a copy or a link) would weigh double in the fits "
                "along the charge; leave the repeat out of the series"
            )
        translation = sinogram.translation_mm
        sinograms.append(image)
        angles.append(sinogram.rotation_angle_deg)
    return sinograms, angles, translation


def _shared_centre(runs: list[Path], scans: list[Path]) -> float:
    """The rotation centre (mm) fitted once on the attenuation (else total intensity)
    sinograms of every step (``runs``, reduced from ``scans``; :func:`_step_sinograms`).

    Refused when a step's own axis (fitted on that step alone) lies more than
    :data:`AXIS_TOLERANCE_STEPS` translation steps from the shared one: the axis moved
    between steps (the stage re-aligned) and one axis for all would blur the maps of some
    (tiny twin, axis moved by 2 steps for two of three steps: the zone's lag 0.13 instead
    of 0.19 and 13 pixels instead of 6; by 4 steps, two false zones), exit 0.
    """
    sinograms, angles, translation = _step_sinograms(runs, scans)
    centre = core.shared_rotation_centre(sinograms, angles, translation)
    step_mm = float(np.median(np.abs(np.diff(translation))))
    for k, (sinogram, angle) in enumerate(zip(sinograms, angles, strict=True)):
        try:
            own = core.shared_rotation_centre([sinogram], [angle], translation)
        except ValueError:  # too few complete projections alone: the shared fit holds it
            continue
        if abs(own - centre) > AXIS_TOLERANCE_STEPS * step_mm:
            raise ValueError(
                f"{scans[k]} (step {k}): its rotation axis lies at {own:.4f} mm, "
                f"{(own - centre) / step_mm:+.2f} translation steps from the axis shared by the "
                f"series ({centre:.4f} mm): the axis moved between steps (stage re-aligned?), "
                "and one axis for every step would blur some of their maps; analyse the steps "
                "before and after the move as separate series"
            )
    return centre


def analyse(
    runs: list[Path],
    timeline: Timeline,
    options: OperandoOptions,
    rotation_centre_mm: float,
    *,
    saxs_maps: str | os.PathLike[str] | None = None,
) -> OperandoResult:
    """Shares, regions, curves and cores of the mapped steps ``runs`` (see the module)."""
    integrals, references, means = [], [], []
    x_um = y_um = None
    map_sets = [read_map_set(run) for run in runs]
    # one kind of map registers every step: a step without a diode registered by its
    # graphite map onto the others' attenuation was moved 5 px (15 false zones, tiny twin)
    kind = (
        MapName.ATTENUATION
        if all(MapName.ATTENUATION in maps for maps in map_sets)
        else MapName.GRAPHITE
    )
    _check_step_maps(runs, map_sets, kind)
    for maps in map_sets:
        x_um, y_um = maps.x_um, maps.y_um
        integrals.append(np.stack([maps[p] for p in PHASES], axis=-1))
        if kind == MapName.ATTENUATION:
            references.append(maps[kind])
    stack = np.asarray(integrals, np.float64)  # (n_steps, ny, nx, 3)
    if kind != MapName.ATTENUATION:
        # the graphite overview window (1.82-1.92 1/A) changes along the charge (the demo
        # twin's last step correlates 0.59 with its first) and its turns went unchecked;
        # the three phase windows summed hold all of the graphite at every step
        references = list(stack.sum(axis=-1))
    notes: list[str] = list(timeline.warnings)
    if kind != MapName.ATTENUATION:
        lacking = [k for k, maps in enumerate(map_sets) if MapName.ATTENUATION not in maps]
        notes.append(
            f"steps {lacking} have no attenuation map (no diode): every step registered on "
            "its graphite phase maps summed"
        )
    measured = core.drift_shifts(np.asarray(references))
    shifts = measured if options.register_steps else np.zeros((len(runs), 2))
    if options.register_steps:
        stack = np.stack([core.apply_shift(s, d) for s, d in zip(stack, shifts, strict=True)])
        moved = np.abs(shifts).max()
        if moved >= 0.05:
            notes.append(f"steps registered to the first (largest shift {moved:.2f} px)")
    overview = np.nansum(np.clip(stack, 0, None), axis=-1).mean(axis=0)
    first = map_sets[0]  # the cell is found on the first step's attenuation, if it has one
    on_attenuation = MapName.ATTENUATION in first
    cell = _cell(first[MapName.ATTENUATION if on_attenuation else kind], notes)
    casing, kept = _casing(cell, overview)
    _check_turns(runs, np.asarray(references), measured, *_turn_radius(casing, overview))
    graphite = core.graphite_mask(overview, options.graphite_fraction)
    if cell is not None and on_attenuation:
        # outside the cell the noise of the phase maps passed the graphite threshold (a
        # quarter of the tiny twin's graphite mask, up to the map's corners), and two such
        # pixels were reported as a damaged zone lagging by 0.2
        if casing is not None:
            graphite = graphite & casing.disk(graphite.shape)
        else:
            notes.append(
                f"the cell found (radius {cell.radius:.1f} px) holds {100 * kept:.0f} % of "
                "the strong graphite pixels: not the casing; graphite taken anywhere on the "
                "maps"
            )
    qs = []
    for run, shift in zip(runs, shifts, strict=True):
        with open_reconstruction(run) as recon:
            # the mask is in the first step's frame; the cube holds this step's own pixels
            qs.append(np.asarray(recon.q_A, np.float64))
            on_step = {"graphite": core.mask_on_step(graphite, shift)}
            found = masked_mean_profiles(recon.data, on_step)
            means.append(found.get("graphite", np.full(qs[-1].size, np.nan)))
    # steps may be integrated on other q grids (the detector moved): one line shape fitted
    # on the first step's q, each step's window integrals unmixed on its own q
    q = qs[0]
    profiles = [profile_on(q, q_k, m) for q_k, m in zip(qs, means, strict=True)]
    lines = fit_graphite_lines(q, np.asarray(profiles))
    windows = [graphite_windows_of(maps) for maps in map_sets]
    amounts = np.stack(
        [
            graphite_amounts(s, lines.crosstalk(q_k, w))
            for s, q_k, w in zip(stack, qs, windows, strict=True)
        ]
    )
    study = analysis_note(MapsOptions(analysis="study"))
    plain = [k for k, maps in enumerate(map_sets) if study in maps.notes]
    if plain:
        notes.append(
            f"steps {plain} were mapped with the study's plain Table 1 integrals (maps "
            "analysis study): the lines are unmixed over those windows, and the background "
            "under each window counts as graphite of its phase"
        )
    amounts = _equal_graphite(runs, amounts, graphite, notes)
    shares = core.shares(amounts)
    shares[:, ~graphite] = np.nan  # shares only where graphite is (noise elsewhere)
    soc, units = timeline.axis()
    if units != SOC_UNITS:
        notes.append("fewer than two steps have a state of charge: curves against time (h)")
    pixel = abs(float(x_um[1] - x_um[0]))
    ring_px = max(round(options.ring_width_um / pixel), 1)
    known = soc[np.isfinite(soc)]
    lagging = None  # the zones of the pixels lagging the regular anode
    if known.size >= 2:
        # without a state of charge, lags are in fractions of the series' duration
        progress = soc if units == SOC_UNITS else (soc - known.min()) / np.ptp(known)
        lag = core.lag_map(shares[..., 2], progress, graphite)
        lagging = core.zone_labels(lag, options.min_lag_soc, options.min_zone_pixels)
    if saxs_maps is not None:
        reference = first[MapName.ATTENUATION] if on_attenuation else None
        zones = _saxs_zones(saxs_maps, x_um, y_um, notes, reference)
        zones = _on_graphite(zones, graphite, x_um, y_um, notes)
        if lagging is not None:
            _check_saxs_zones_lag(saxs_maps, zones, lagging, ring_px, x_um, y_um, notes)
        source = f"SAXS map {saxs_maps}"
    else:
        if lagging is None:  # run_operando refuses such a series before
            raise ValueError("fewer than two steps have a state of charge or a time: no lag")
        zones = lagging
        source = "pixels lagging the regular anode"
    notes.append(f"{int(zones.max())} damaged zones from the {source}")
    turns = _turns(cell, overview, pixel, notes)
    regions = core.build_regions(graphite, zones, ring_px, turns)
    curves = core.region_curves(amounts, regions.masks)
    soc_half = {name: core.soc_at_half(soc, 1.0 - c[:, 2]) for name, c in curves.items()}
    if np.isfinite(soc).sum() < core.MIN_HALF_STEPS:
        notes.append(
            f"fewer than {core.MIN_HALF_STEPS} steps along the axis: no half-lithiation "
            "point and no lag (between two steps it is their midpoint for every region)"
        )
    notes.extend(filter(None, [_partial_charge_note(known, units)]))
    total = np.clip(np.nan_to_num(amounts), 0, None).sum(axis=-1).mean(axis=0)
    scale = core.filling_scale(total, graphite)
    footprint = ndimage.generate_binary_structure(2, 2)
    n_zones, n_steps = int(zones.max()), len(runs)
    cores = {name: np.full((n_zones, n_steps), np.nan) for name in CORE_FIELDS}
    rows = []
    for i in range(1, n_zones + 1):
        zone = zones == i
        near = zone | regions.masks[f"ring_{i}"]
        around = ndimage.binary_dilation(near, footprint, iterations=ring_px) & regions.anode
        found = core.zone_cores(amounts, near, around, scale, x_um, y_um)
        weighed = np.flatnonzero([np.isfinite(step.area_um2) for step in found])
        if not weighed.size:
            notes.append(f"zone {i}: the anode never lithiates enough to weigh its core")
        elif weighed[0] > 0:
            notes.append(
                f"zone {i}: the first step that weighs its core (step {weighed[0]}) has the "
                f"anode over {core.MAX_WHOLE_CONTRAST:.0%} lithiated, when the zone's core "
                "may have shrunk already: no core area at the steps before it (a step earlier "
                "in the charge weighs the zone whole)"
            )
        for k, step in enumerate(found):
            for name in CORE_FIELDS:
                cores[name][i - 1, k] = getattr(step, name)
        yy, xx = np.nonzero(zone)
        rows.append(
            {
                "id": i,
                "x_um": float(x_um[xx].mean()),
                "y_um": float(y_um[yy].mean()),
                "soc_half": soc_half[f"zone_{i}"],
                "lag_soc": soc_half[f"zone_{i}"] - soc_half["anode"],
                "shrink_rate_um2_per_soc": core.shrink_rate(soc, cores["area_um2"][i - 1]),
                "pixels": int(zone.sum()),
            }
        )
    columns = ["id", "x_um", "y_um", "soc_half", "lag_soc", "shrink_rate_um2_per_soc", "pixels"]
    return OperandoResult(
        soc=soc,
        soc_units=units,
        time_s=timeline.time_s,
        soc_source=timeline.source,
        steps=[str(Path(run).resolve()) for run in runs],  # not relative to where it ran
        x_um=x_um,
        y_um=y_um,
        shares=shares,
        zones=zones,
        curves=curves,
        soc_half=soc_half,
        pixels={name: int(mask.sum()) for name, mask in regions.masks.items()},
        zones_table=pd.DataFrame(rows, columns=columns),
        cores=cores,
        shift_px=shifts,
        rotation_centre_mm=rotation_centre_mm,
        notes=notes,
    )


def profile_on(q: np.ndarray, q_step: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """``profile`` (on ``q_step``, 1/A, in any order: an imported sinogram's q may descend)
    interpolated linearly onto ``q`` (1/A), NaN beyond ``q_step``'s range. np.interp on a
    descending axis returned a wrong profile without a word, and with it the graphite lines
    fitted and every step's unmixed shares."""
    return interp_in_any_order(q, q_step, profile, left=np.nan, right=np.nan)


def _check_step_maps(runs: list[Path], map_sets: list[MapSet], kind: str) -> None:
    """Refuse steps whose maps (``map_sets``, one per run of ``runs``) the analysis cannot
    stack pixel by pixel: a step without the three graphite phase maps or the map ``kind``
    that registers the series; a step on another grid than the first's (shape, x_um,
    y_um); a step whose phase or ``kind`` map is not measured (NaN, inf) at pixels where
    another step's maps are.

    On the tiny twin, a last step on 80 um pixels beside 40 um ones put the damaged zone
    at twice its distance from the axis ((229, -1095) um for (115, -547)) and its core
    at 66409 um2 for 21633 (the last step's axes were taken for all), and a step NaN over
    the zone (a hole in its reconstruction) read there as an empty anode: no damaged zone
    found (one, lag 0.22), exit 0."""
    first = map_sets[0]
    names = [*PHASES, kind]
    measured = []
    for k, (run, maps) in enumerate(zip(runs, map_sets, strict=True)):
        missing = [name for name in names if name not in maps]
        if missing:
            raise ValueError(
                f"{run} (step {k}): no /entry/maps/{', '.join(missing)}; every step of a "
                f"series needs the maps {', '.join(names)}: map it again (jellyroll maps)"
            )
        if not maps.same_grid(first):
            raise ValueError(
                f"{run} (step {k}): its maps lie on a {maps.y_um.size} x {maps.x_um.size} grid "
                f"of {maps.pixel_size_um:g} um pixels from x = {maps.x_um[0]:g} um, those of "
                f"{runs[0]} (step 0) on {first.y_um.size} x {first.x_um.size} of "
                f"{first.pixel_size_um:g} um from x = {first.x_um[0]:g} um: every step must "
                "be reconstructed on one grid (same translations and reconstruction options)"
            )
        measured.append(np.all([np.isfinite(maps[name]) for name in names], axis=0))
    measured = np.asarray(measured)
    count = measured.sum(axis=0)
    for k, (run, own) in enumerate(zip(runs, measured, strict=True)):
        holes = ~own & (count - own > 0)
        if holes.any():
            raise ValueError(
                f"{run} (step {k}): its maps {', '.join(names)} are not measured (NaN or inf) "
                f"at {int(holes.sum())} pixels where other steps' are: those pixels would read "
                "as an empty anode at that step (a damaged zone there lost). Reconstruct the "
                "step again, or leave it out of the series"
            )


PARTIAL_CHARGE = 0.1
"""How far (fraction of full charge) the series may start above empty or end below full
before its half-lithiation points are said to be the series' own."""


def _partial_charge_note(soc: np.ndarray, units: str) -> str | None:
    """A note when the states of charge ``soc`` (finite, of the steps) do not run from
    empty to full (within :data:`PARTIAL_CHARGE`): each region's half-lithiation point is
    half-way between its first and last steps' shares, so a series cut short puts it, and
    the lags, within the part it covers (the tiny twin without its last step: the damaged
    zone's lag 0.055 instead of 0.217, with no word)."""
    if units != SOC_UNITS or soc.size < 2:
        return None
    low, high = float(soc.min()), float(soc.max())
    if low <= PARTIAL_CHARGE and high >= 1.0 - PARTIAL_CHARGE:
        return None
    return (
        f"the series covers the states of charge {low:.2f} to {high:.2f}, not the whole "
        "charge: half-lithiation points and lags are those of that part (half-way between "
        "each region's first and last shares), not of the charge"
    )


MIN_TURN_DEG = 3.0
"""Least in-plane turn (deg) of a step's maps against the first's, the best of
:func:`core.step_turns` (its grid search every 2 deg, or its fine turn where that matches
better), that is refused when it wins back :data:`MIN_TURN_RECOVERED`."""
MIN_TURN_RECOVERED = 0.15
"""Least share of the decorrelation of a step's map from the first's (1 - its correlation
as it is) that a turn must win back to be refused. Tiny twin, one step's angles offset
(correlation as it is, turned back): by 90 deg 0.845, 0.990 (94 %); by 30 deg 0.895, 0.933
(36 %); by 15 deg 0.908, 0.928 (22 %); by 5 deg 0.921, 0.930 (11 %, its zone's lag 0.20 for
0.22). The turn's interpolation blurs the map's fine layers, so turned back it stays below
the 0.988 of the unturned steps."""
MIN_MIRROR_GAIN = 0.05
"""How much better (correlation) a step's maps must match the first step's mirrored and
turned (:func:`core.mirrored_matches`) than turned alone to be refused as mirrored. Tiny
twin, one step's angles written 180 - angle: 0.83 as it is after registration, against
0.99 for the unchanged steps; its zone lost and two false ones found, exit 0."""
MAX_TURN_PX = 0.5
"""Most that a step's turn (:func:`core.fine_turn`, on the attenuation maps, else the
graphite phase maps summed) may move the casing, about the outer turn (:func:`_turn_radius`),
before it is refused (px). Demo twin (150 px, casing
70.6 px from the axis): unturned steps 0.004-0.09 px; one step's angles offset by 0.3 deg
measures 0.36 deg (0.45 px) and passes, its zones' lags within 0.008 and shrink rates
within 1.5 % of the unturned series'; by 0.6 deg, 0.77 deg (0.95 px), refused; summed
phase maps 0.00-0.04 px unturned, 0.27 deg for 0.3.
Tiny twin (52 px, casing 23.7 px from the axis): unturned steps measure 0.10-0.12 deg
(0.05 px); one step's angles offset by 3 deg measures 2.3 deg (0.9 px: the 18 angles of
its reconstruction are not those of the others turned), by 1 deg (0.4 px) it passes."""


def _turn_radius(casing: Cell | None, overview: np.ndarray) -> tuple[float, str]:
    """Distance (px) from the map centre (the rotation axis) at which :func:`_check_turns`
    measures how far a turn moves the maps, and what lies there: the far edge of the
    ``casing`` (:func:`_casing`) where there is one; else the farthest strong graphite pixel
    of ``overview`` (ny, nx), the outer turn.

    The farthest pixel of the first attenuation map at half its p99 was taken before:
    the noise put it in the tiny twin's corners (35.4 px for a casing 23.7 px out, a turn
    1.5 times too large), and a bright ring artefact about the axis (r = 4 px) shrank it to
    4.7 px: a step turned by 2 or 3 deg passed, the zone's lag 0.157 or 0.150 for 0.176
    and its shrink rate 13-16 % high, exit 0."""
    if casing is not None:
        ny, nx = overview.shape
        offset = np.hypot(casing.x - (nx - 1) / 2, casing.y - (ny - 1) / 2)
        return float(offset + casing.radius), "the edge of the cell found"
    strong = core.graphite_mask(overview, STRONG_GRAPHITE)
    rows, cols = np.indices(overview.shape)
    radius = np.hypot(rows - (overview.shape[0] - 1) / 2, cols - (overview.shape[1] - 1) / 2)
    return float(radius[strong].max() if strong.any() else radius.max()), "the outer graphite"


def _check_turns(
    runs: list[Path], references: np.ndarray, shifts: np.ndarray, radius: float, at: str
) -> None:
    """Refuse a step whose maps (``references`` (n_steps, ny, nx), registered by ``shifts``
    (n_steps, 2) px; maps the charge does not change: attenuation, or the graphite phase
    maps summed) are turned in the plane against the first step's: its rotation angles
    are offset (the stage's zero moved), which the registration (a translation) cannot
    undo. Refused: a best turn (:func:`core.step_turns`) of at least :data:`MIN_TURN_DEG`
    that wins back :data:`MIN_TURN_RECOVERED` of the decorrelation; a turn measured
    finely that moves ``at`` (what lies ``radius`` px from the axis, :func:`_turn_radius`)
    by more than :data:`MAX_TURN_PX`. The tiny
    twin with one step's angles offset by 90 deg was shifted by 1.6 px instead, and 6
    damaged zones were found instead of one; by 30 deg, the zone's core at that step
    weighed 9990 um2 instead of 21640, exit 0. The grid search alone let turns under about
    4 deg pass (and 10 deg, off its grid): at the study's outer turn (about 200 map pixels
    from the axis) a 3 deg turn moves the pixels by 10, mixing the time series of
    neighbouring layers. Refused as well: a step that matches the first mirrored (and
    turned) by :data:`MIN_MIRROR_GAIN` better than turned alone (its angles run the other
    way)."""
    turns = core.step_turns(references, shifts)
    mirrored = core.mirrored_matches(references)
    for k, (angle, turned, plain, measured) in enumerate(turns):
        if mirrored[k] > turned + MIN_MIRROR_GAIN:
            raise ValueError(
                f"{runs[k]} (step {k}): its maps match the first step's mirrored "
                f"(correlation {mirrored[k]:.3f}, against {turned:.3f} turned or as they are): "
                "its rotation angles run the other way (written as a constant minus the "
                "angle?), a mirror that no turn or shift undoes. Negate its scan's "
                "/entry/sample/rotation_angle, or analyse it apart"
            )
        recovered = (turned - plain) / max(1.0 - plain, 1e-12)
        moved = abs(np.deg2rad(measured)) * radius
        coarse = abs(angle) >= MIN_TURN_DEG and recovered >= MIN_TURN_RECOVERED
        if not (coarse or moved > MAX_TURN_PX):
            continue
        # the grid's turn where the fine one ran to another (its steps start from it)
        near = np.isfinite(measured) and abs(measured - angle) <= 3.0
        shown = measured if near or (np.isfinite(measured) and not coarse) else angle
        raise ValueError(
            f"{runs[k]} (step {k}): its maps match the first step's turned by about "
            f"{shown:+.1f} deg about the rotation axis (correlation {plain:.3f} as they "
            f"are, {turned:.3f} turned; at {at}, {radius:.0f} px from the axis, "
            f"{abs(np.deg2rad(shown)) * radius:.1f} px; more than {MAX_TURN_PX:g} px is "
            "refused): its rotation angles are offset (the stage's zero moved?), which the "
            "registration (a shift) cannot undo. Subtract the turn from its scan's "
            "/entry/sample/rotation_angle, or analyse it apart"
        )


MIN_STEP_GRAPHITE = 0.5
"""Least graphite signal of a step (its three lines summed over the graphite mask), as a
fraction of the series' median, and the inverse of the most: a charge moves lithium into the
graphite, not graphite away (tiny twin: the steps within 0.2 % of each other)."""
STEP_GAIN_LIMIT = 0.05
"""How far (fraction) a step's graphite signal may differ from the series' median and be
taken as measured: the graphite lines of the phases need not scatter alike per unit of
graphite, so the signal may drift a little with the charge; beyond, the step is scaled to
the median, with a note."""


def _equal_graphite(
    runs: list[Path], amounts: np.ndarray, graphite: np.ndarray, notes: list[str]
) -> np.ndarray:
    """``amounts`` (n_steps, ny, nx, 3) with each step whose graphite signal (its amounts
    summed over ``graphite`` (ny, nx)) differs from the series' median by more than
    :data:`STEP_GAIN_LIMIT` scaled to that median, with a note naming it: a charge moves
    lithium into the graphite, not graphite away, so such a step was measured with another
    gain (a beam without a monitor, a detector or monitor setting changed). Shares are
    ratios and stay; the cores were weighed in each step's own units: one step of the tiny
    twin at 1.3 times the others' gain gave core areas 11610, 11610, 1964 um2 for 9853,
    9853, 2171 and a shrink rate 26 % high, exit 0. The other steps are taken as measured.

    Refused, naming the step: a signal below :data:`MIN_STEP_GRAPHITE` of the series'
    median (its Table 1 windows do not hold its graphite lines: steps integrated with a
    detector distance 10 % long, LiC6 out of the fit's q range, gave signals of 114, -66
    and -284, the anode's curve NaN at the last step, no half lithiation, and 37 damaged
    zones of noise, exit 0), or above its inverse (a gain no rescaling should hide); a step
    off the median that was scanned at fewer angles (:data:`FEWER_ANGLES`). Judged
    against the largest, one step at 2.5 times the others' gain had the healthy first step
    refused as the one without graphite."""
    signal = np.nansum(amounts[:, graphite], axis=(1, 2))
    # the median, or where most steps hold no graphite the largest (the one step that does)
    median = float(np.median(signal))
    against, scale = ("median", median) if median > 0 else ("largest", float(signal.max()))
    ratio = signal / scale if scale > 0 else np.zeros_like(signal)
    low = np.flatnonzero(~(ratio >= MIN_STEP_GRAPHITE))
    if low.size:
        k = int(low[0])
        raise ValueError(
            f"{runs[k]} (step {k}): its graphite signal (the three graphite lines summed over "
            f"the anode) is {signal[k]:.3g}, the series' {against} {scale:.3g}: a charge does "
            "not remove graphite, so its Table 1 windows do not hold its lines. Check the "
            "detector geometry (PONI distance, wavelength) its scan was integrated with, and "
            "that it is a scan of this slice"
        )
    high = np.flatnonzero(ratio > 1 / MIN_STEP_GRAPHITE)
    if high.size:
        k = int(high[0])
        raise ValueError(
            f"{runs[k]} (step {k}): its graphite signal (the three graphite lines summed over "
            f"the anode) is {ratio[k]:.2f} times the series' {against}: a charge does not add "
            "graphite, so it was measured at another gain. Check that its frames were "
            "normalised by the monitor and taken with the others' detector settings, and "
            "that it is a scan of this slice"
        )
    off = np.abs(ratio - 1.0) > STEP_GAIN_LIMIT
    if not off.any():
        return amounts
    angles = np.array([_n_angles(run) for run in runs])
    fewer = np.flatnonzero(off & (angles < FEWER_ANGLES * np.median(angles)))
    if fewer.size:
        k = int(fewer[0])
        raise ValueError(
            f"{runs[k]} (step {k}): scanned at {angles[k]} angles, the series' median "
            f"{np.median(angles):g}: its reconstruction streaks the graphite signal off the "
            f"anode ({ratio[k]:.2f} of the series' over it), and the damaged zones' cores, "
            "weighed across the steps, would be those of a blurred step. Leave this step out "
            "of the series (give the other scans), or scan it at the others' angles"
        )
    listed = ", ".join(f"{k} ({ratio[k]:.2f})" for k in np.flatnonzero(off))
    notes.append(
        f"the graphite signal of steps {listed} differs from the series' median by more "
        f"than {100 * STEP_GAIN_LIMIT:g} % (the beam or the detector's gain changed?): those "
        "steps scaled to the median, as a charge does not change the graphite"
    )
    return amounts / np.where(off, ratio, 1.0)[:, None, None, None]


FEWER_ANGLES = 0.9
"""A step scanned at fewer than this share of the series' median number of angles, its
graphite signal off the median (:func:`_equal_graphite`), is refused: its reconstruction's
streaks carry the signal off the anode (a third of the angles: 0.70 of the others' over the
anode, the attenuation's total unchanged), no gain to scale away. Scaled, the tiny twin's
cores read 30 % low at steps 0-2 and a note blamed the beam, exit 0; left as it was, the
zones' cores, weighed across the steps, read 29 % low at steps 0-1 and 20 % high at 3."""


def _n_angles(run: Path) -> int:
    """The rotation angles of a step's sinogram (its run's reduce stage)."""
    with h5py.File(stage_file(run, "reduce"), "r") as f:
        return int(f["entry/sinogram/rotation_angle"].shape[0])


def _cell(reference: np.ndarray, notes: list[str]) -> Cell | None:
    """The cell found on the reference (attenuation) map; None, with a note, when it is
    not found."""
    try:
        return find_cell(np.nan_to_num(reference))
    except ValueError as error:
        notes.append(f"no cell found (graphite anywhere on the maps, no turn regions): {error}")
        return None


STRONG_GRAPHITE = 0.5
"""Fraction of the p99 of the graphite signal from which a pixel is strong graphite (no
noise): what the casing found must hold (:data:`CELL_STRONG_KEPT`)."""
CELL_STRONG_KEPT = 0.9
"""Least share of the strong graphite pixels (:data:`STRONG_GRAPHITE`) inside the cell
found for the graphite mask to be cut to it and its edge taken as the casing (tiny twin:
1.0)."""


def _casing(cell: Cell | None, overview: np.ndarray) -> tuple[Cell | None, float]:
    """``cell`` (found on the first step's map) when it holds :data:`CELL_STRONG_KEPT` of
    the strong graphite pixels of ``overview`` (ny, nx): the casing; else None (a ring that
    is not the casing, or none found); and that share (0 without a cell)."""
    if cell is None:
        return None, 0.0
    strong = core.graphite_mask(overview, STRONG_GRAPHITE)
    kept = float((strong & cell.disk(strong.shape)).sum() / max(int(strong.sum()), 1))
    return (cell if kept >= CELL_STRONG_KEPT else None), kept


def _turns(
    cell: Cell | None, graphite: np.ndarray, pixel_size_um: float, notes: list[str]
) -> np.ndarray | None:
    """Turn of every pixel from the spiral traced on the graphite map around ``cell``;
    None, with a note, when either is not found."""
    if cell is None:
        return None
    try:
        trace = trace_spiral(graphite, cell, pixel_size_um)
    except ValueError as error:
        notes.append(f"no turn regions: {error}")
        return None
    return core.turn_labels(graphite.shape, trace)


def _on_graphite(
    zones: np.ndarray,
    graphite: np.ndarray,
    x_um: np.ndarray,
    y_um: np.ndarray,
    notes: list[str],
) -> np.ndarray:
    """Zone labels (ny, nx) without the zones that hold no graphite pixel (``graphite``
    (ny, nx) bool), relabelled 1..n, with a note placing them (um, on the axes ``x_um``
    (nx,) and ``y_um`` (ny,)). A SAXS agglomerate off the anode (outside the cell, in the
    mandrel's hole) has no lithiation to follow: its zone's curve summed what the phase
    maps hold there, and on the tiny twin two such zones beyond the casing were reported
    with half lithiation at 0.40 and 0.52 (lags -0.16 and -0.04), exit 0."""
    out = np.zeros(zones.shape, np.int32)
    dropped = []
    for label in range(1, int(zones.max()) + 1):
        zone = zones == label
        if (zone & graphite).any():
            out[zone] = int(out.max()) + 1
        elif zone.any():
            yy, xx = np.nonzero(zone)
            dropped.append(f"({x_um[xx].mean():.0f}, {y_um[yy].mean():.0f})")
    if dropped:
        notes.append(
            f"{len(dropped)} damaged zones hold no graphite pixel and are not followed (no "
            f"anode to lithiate there) at (x, y) = {', '.join(dropped)} um"
        )
    return out


ZONES_SHIFT_PX = 0.25
"""Shift (operando map pixels) between the SAXS maps' attenuation and the first step's above
which the damaged zones are moved by it (:func:`_zones_shift_um`)."""


def _zones_shift_um(
    source: str | os.PathLike[str],
    maps: MapSet | None,
    reference: np.ndarray | None,
    x_um: np.ndarray,
    y_um: np.ndarray,
    notes: list[str],
) -> tuple[float, float]:
    """(x, y) shift (um) that moves the SAXS maps ``maps`` (of ``source``) onto the operando
    maps: their attenuation map resampled on the operando grid (``x_um``, ``y_um``) against
    the first step's ``reference`` (:func:`~jellyroll.conventions.map_shift_px`); (0, 0)
    under :data:`ZONES_SHIFT_PX`, and with a note where either lacks an attenuation map. The
    cell remounted 80 um off between the SAXS scan and the series: its damaged zone was
    followed 80 um beside its lagging pixels (lag 0.09 for 0.14, poorly lithiated share
    0.74 for 0.82 at the half-charged step), exit 0."""
    if reference is None or maps is None or MapName.ATTENUATION not in maps:
        notes.append(
            f"the damaged zones of {source} are placed by their coordinates, not checked "
            "against the operando maps (no attenuation map in both): a cell remounted between "
            "the SAXS scan and the series would put them beside the damage"
        )
        return 0.0, 0.0
    grid = MapSet({}, x_um, y_um)
    moving = resample_map(maps.maps[MapName.ATTENUATION], maps, grid).values
    shift_px = map_shift_px(reference, moving)
    if not np.hypot(*shift_px) > ZONES_SHIFT_PX:
        return 0.0, 0.0
    pixel = abs(float(x_um[1] - x_um[0]))
    dy_um, dx_um = (float(v) * pixel for v in shift_px)
    notes.append(
        f"the damaged zones of {source} moved by {dx_um:+.1f} um along x and {dy_um:+.1f} um "
        "along y onto the operando maps, where its attenuation map matches the first "
        "step's (the cell remounted, or the axes of the scans differ)"
    )
    return dx_um, dy_um


def _check_saxs_zones_lag(
    source: str | os.PathLike[str],
    zones: np.ndarray,
    lagging: np.ndarray,
    ring_px: int,
    x_um: np.ndarray,
    y_um: np.ndarray,
    notes: list[str],
) -> None:
    """Refuse the SAXS maps' damaged zones ``zones`` (ny, nx labels) when the anode lags
    (``lagging``: the zones of the pixels lagging the regular anode, :func:`core.zone_labels`)
    but none of them lies within ``ring_px`` of a SAXS zone: the SAXS maps are not of this
    slice. The SAXS map of another twin cell (seed 7) beside the tiny twin's series (seed 2)
    put a zone where the cell has none (lag -0.02, core 391, 0, 0, 391 um2) and left out
    the one that lags by 0.22, exit 0. A note when the SAXS maps give no zone but the anode
    lags somewhere."""
    if not lagging.any():
        return
    places = []
    for label in range(1, int(lagging.max()) + 1):
        yy, xx = np.nonzero(lagging == label)
        places.append(f"({x_um[xx].mean():.0f}, {y_um[yy].mean():.0f})")
    if not zones.any():
        notes.append(
            f"{source} gives no damaged zone, but the anode lags at (x, y) = "
            f"{', '.join(places)} um: run without --saxs to follow those pixels"
        )
        return
    footprint = ndimage.generate_binary_structure(2, 2)
    near = ndimage.binary_dilation(zones > 0, footprint, iterations=ring_px)
    if (near & (lagging > 0)).any():
        return
    raise ValueError(
        f"{source}: none of its {int(zones.max())} damaged zones lies where the anode lags "
        f"(pixels lagging the regular anode at (x, y) = {', '.join(places)} um, none within "
        f"{ring_px} px of a SAXS zone): the SAXS maps are not of this slice (another cell, "
        "another height, or turned); give the SAXS maps of the slice the series scans, or "
        "leave --saxs out to take the zones from the lag"
    )


def _saxs_zones(
    source: str | os.PathLike[str],
    x_um: np.ndarray,
    y_um: np.ndarray,
    notes: list[str] | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Zone labels on the operando grid from the case-B agglomerates of the slice: the table
    of a results file of ``jellyroll diagnose`` when ``source`` is one, else those found on
    the SAXS intensity map of a run file; placed where ``source``'s attenuation map matches
    ``reference`` (the first step's attenuation on the operando grid,
    :func:`_zones_shift_um`). A note in ``notes`` for the agglomerates whose zone has no
    pixel on the grid (outside the operando maps' field)."""
    notes = [] if notes is None else notes
    with h5py.File(source, "r") as f:
        table = read_table(f["entry/defects/agglomerates"]) if AGGLOMERATES in f else None
        mapped = "entry/maps" in f
    maps = read_map_set(source) if mapped or table is None else None
    if table is None:
        if MapName.SAXS_INTENSITY not in maps:
            raise ValueError(
                f"{source}: neither /{AGGLOMERATES} nor /entry/maps/saxs_intensity; give the "
                "cell's results file or its SAXS run file"
            )
        problem = saxs_map_problem(maps[MapName.SAXS_INTENSITY])
        if problem is not None:
            raise ValueError(
                f"{source}: /entry/maps/saxs_intensity {problem}: no damaged zone can be told "
                "from it; give the cell's results file or a SAXS run file with a valid map"
            )
        table = find_agglomerates(maps[MapName.SAXS_INTENSITY], maps.pixel_size_um)
    case_b = table[table["case"] == "B"].copy()
    placed: list[str] = []  # said after the zones' own notes
    dx_um, dy_um = _zones_shift_um(source, maps, reference, x_um, y_um, placed)
    case_b["x_um"] += dx_um
    case_b["y_um"] += dy_um
    zones = core.disk_zones(case_b, x_um, y_um)
    if int(zones.max()) < len(case_b):
        notes.append(
            f"{len(case_b) - int(zones.max())} of the {len(case_b)} case-B agglomerates of "
            f"{source} have no pixel of their own on the operando maps (outside their field, "
            "or inside an earlier zone): not followed"
        )
    notes.extend(placed)
    return zones

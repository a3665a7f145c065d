"""``jellyroll diagnose``: the diagnosis of one cell from the maps of its WAXS and SAXS run
files into its results file (:mod:`jellyroll.results.diagnosis`): find the cell, unroll the
main maps around it, find the agglomerates, the collector bends and the lithiation around
each defect, and summarise."""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from scipy import ndimage

from jellyroll.conventions import (
    block_mean,
    finite_median,
    map_shift_px,
    masked_mean_profiles,
    parabola_vertex,
    pearson,
    px_to_um,
    robust_sigma,
)
from jellyroll.defects._common import phase_amounts
from jellyroll.defects.agglomerates import (
    UNRESOLVED,
    background_window,
    find_agglomerates,
    median_radius_um,
    saxs_map_problem,
    silicon_mask,
)
from jellyroll.defects.bends import find_bends, link_bends
from jellyroll.defects.lithiation import defect_lithiation
from jellyroll.defects.options import DiagnoseOptions
from jellyroll.defects.regions import defect_share, region_masks, region_profiles
from jellyroll.defects.resolution import STUDY_PSF_FWHM_UM, estimate_psf
from jellyroll.io.lock import output_lock
from jellyroll.io.provenance import provenance_record
from jellyroll.maps.core import UNCOVERED, dstar_keywords, graphite_windows_of
from jellyroll.maps.options import DstarOptions, MapsOptions
from jellyroll.phases import fit_graphite_lines
from jellyroll.results import (
    GRAPHITE_PHASE_MAPS,
    NMC_PHASE_MAPS,
    Diagnosis,
    FoundCell,
    Map,
    MapName,
    MapSet,
    Reconstruction,
    RunFileError,
    Unrolled,
    read_diagnosis,
    read_map_set,
    write_diagnosis,
)
from jellyroll.results.run import open_reconstruction, sinogram_monitor_reference
from jellyroll.results.store import run_files, run_stage_key, stage_file, stage_key
from jellyroll.saxs import CLIPPED_CAUSE, clipped_reconstruction
from jellyroll.unroll import (
    Cell,
    SpiralTrace,
    fill_unmeasured,
    find_cell,
    trace_spiral,
    unroll_polar,
    unroll_spiral,
)

UNROLLED_MAPS = (
    *GRAPHITE_PHASE_MAPS, *NMC_PHASE_MAPS,
    MapName.SAXS_INTENSITY, MapName.D_STAR, MapName.ATTENUATION,
)  # fmt: skip
"""The maps unrolled (along the traced Cu collector, else around the cell centre) for the
report, when present: every modality at the same arc position (the study's Fig. 2)."""


def diagnose_key(
    runs: dict[str, Path], options: DiagnoseOptions, name: str, label: str
) -> tuple[str, str]:
    """(key, upstream) of the diagnosis of the maps of ``runs`` (technique -> run file)."""
    upstream = "+".join(run_stage_key(runs[kind], "maps") or "" for kind in sorted(runs))
    payload = {**options.key_payload(), "name": name, "label": label}
    return stage_key("diagnose", payload, [upstream]), upstream


def run_diagnose(
    runs: dict[str, Path],
    output: str | os.PathLike[str],
    options: DiagnoseOptions | None = None,
    *,
    name: str = "cell",
    label: str = "",
    configuration: dict[str, Any] | None = None,
) -> Diagnosis:
    """Diagnose the cell whose maps are in ``runs`` (``{"waxs": RUN, "saxs": RUN}``) and
    write ``output``; returns the diagnosis as read back from ``output``.

    ``configuration`` (e.g. the whole run configuration of ``jellyroll run``) is recorded
    in the provenance beside the options.
    """
    options = options or DiagnoseOptions()
    output = Path(output)
    # the key first: maps rewritten while this runs then make the result stale, not wrongly
    # up to date
    key, upstream = diagnose_key(runs, options, name, label or name)
    read = {kind: read_map_set(runs[kind]) for kind in sorted(runs)}
    maps = _gather_maps(runs, read)
    crosstalk, unmixing_note = _graphite_crosstalk(runs, read.get("waxs"))
    with _saxs_reconstruction(runs) as saxs:
        diagnosis = diagnose(
            maps,
            options,
            name=name,
            label=label or name,
            saxs=saxs,
            graphite_crosstalk=crosstalk,
        )
    diagnosis.notes.extend(filter(None, [unmixing_note]))
    diagnosis.dstar_parameters = _maps_dstar_parameters(runs)
    if "saxs" in runs:  # what its SAXS intensities count at, to compare them with another's
        reference = sinogram_monitor_reference(stage_file(runs["saxs"], "reduce"))
        diagnosis.summary["saxs_monitor_reference"] = reference
    if saxs is None:
        diagnosis.notes.append(
            "no SAXS reconstruction beside the maps: no region-averaged SAXS profiles"
        )
    record = provenance_record(
        {
            "stage": "diagnose",
            "options": options.key_payload(),
            "name": name,
            "label": label,
            **(configuration or {}),
        },
        inputs=[
            *(stage_file(run, "maps") for run in runs.values()),
            *([stage_file(runs["saxs"], "reconstruct")] if saxs is not None else []),
            # the graphite lines' crosstalk and the SAXS intensities' monitor reading
            *(
                path
                for path in (stage_file(runs[k], stage) for k, stage in READ_BESIDE if k in runs)
                if path.is_file()
            ),
        ],
    )
    record["runs"] = {kind: str(Path(path).resolve()) for kind, path in runs.items()}
    inputs = [path for run in runs.values() for path in run_files(run)]
    with output_lock(output):
        write_diagnosis(output, diagnosis, record, key=key, upstream=upstream, inputs=inputs)
    return read_diagnosis(output)


def _maps_dstar_parameters(runs: dict[str, Path]) -> dict[str, float | int] | None:
    """The keywords of the d* method the SAXS run's d* map was made with (its maps stage's
    provenance, through :func:`~jellyroll.maps.core.dstar_keywords`: the overrides and the
    analysis's lasting rule), for the d* of the region-averaged profiles: fitted with the
    study's instead, the demo's aged regular anode read 13.8 nm beside a median d* of
    21.0 nm made at a tolerance of 8 %; with the overrides alone the regions took the
    study's single-point departure beside a map made with the lasting one. None when the
    record does not say (or there is no maps stage file: a run file another program wrote
    failed on a `.maps.h5` never given)."""
    path = stage_file(runs["saxs"], "maps") if "saxs" in runs else None
    if path is None or not path.is_file():
        return None
    with h5py.File(path, "r") as f:
        item = f.get("/entry/provenance/maps")
        try:
            record = json.loads(item.asstr()[()]) if isinstance(item, h5py.Dataset) else {}
        except (TypeError, ValueError):
            record = {}
    made = record.get("configuration", {}) if isinstance(record, dict) else {}
    if "dstar" not in made:
        return None
    analysis = made.get("analysis", MapsOptions.model_fields["analysis"].default)
    return dstar_keywords(MapsOptions(analysis=analysis, dstar=DstarOptions(**made["dstar"])))


def _graphite_crosstalk(
    runs: dict[str, Path], waxs: MapSet | None
) -> tuple[np.ndarray | None, str | None]:
    """The (3 lines, 3 windows) crosstalk of the graphite lines over the windows the WAXS
    run's phase maps (``waxs``, as read) were integrated over
    (:func:`~jellyroll.maps.core.graphite_windows_of`), from one line shape fitted to the
    mean pattern of its graphite-labelled pixels (:func:`~jellyroll.phases.fit_graphite_lines`,
    as the operando stage unmixes its steps), and a note when there is none (no WAXS
    reconstruction or labels, or no fit: the shares are then the window integrals')."""
    if waxs is None or not stage_file(runs["waxs"], "reconstruct").is_file():
        return None, None
    if MapName.GRAPHITE_LABEL not in waxs:
        return None, None
    graphite = np.asarray(waxs[MapName.GRAPHITE_LABEL]) >= 0
    with open_reconstruction(runs["waxs"]) as recon:
        if recon.data.shape[:2] != graphite.shape or not graphite.any():
            return None, None
        q = np.asarray(recon.q_A, np.float64)
        profile = masked_mean_profiles(recon.data, {"graphite": graphite})["graphite"]
    try:
        lines = fit_graphite_lines(q, profile[None])
    except ValueError as error:
        return None, (
            f"graphite lines not unmixed ({error}): the graphite shares and lithiation "
            "fractions are those of the Table 1 window integrals, which leak each line "
            "into its neighbour's window"
        )
    return lines.crosstalk(q, graphite_windows_of(waxs)), None


def _unmixed_graphite(maps: MapSet, crosstalk: np.ndarray) -> MapSet:
    """``maps`` with its graphite phase maps (window integrals) replaced by the heights of
    the graphite lines they hold (``integrals = heights @ crosstalk``, pixel by pixel:
    linear, so a region's sum unmixes as its pixels do)."""
    stack = np.stack([np.asarray(maps[name], np.float64) for name in GRAPHITE_PHASE_MAPS], -1)
    heights = stack @ np.linalg.inv(crosstalk)
    unmixed = {
        name: Map(heights[..., k].astype(np.float32), maps.maps[name].units)
        for k, name in enumerate(GRAPHITE_PHASE_MAPS)
    }
    return dataclasses.replace(maps, maps={**maps.maps, **unmixed})


READ_BESIDE = (("waxs", "reconstruct"), ("saxs", "reduce"))
"""Stage files a diagnosis reads beside the maps, where they exist (its provenance lists
them): the WAXS reconstruction (:func:`_graphite_crosstalk`) and the SAXS sinogram (its
monitor reading)."""


@contextmanager
def _saxs_reconstruction(runs: dict[str, Path]) -> Iterator[Reconstruction | None]:
    """The SAXS run's reconstruction (for the region-averaged profiles), None without one.
    Its data stay on disk, read a few rows at a time (the cube is 8 GB at the study's size)."""
    if "saxs" not in runs or not stage_file(runs["saxs"], "reconstruct").is_file():
        yield None
        return
    with open_reconstruction(runs["saxs"]) as reconstruction:
        yield reconstruction


def _gather_maps(runs: dict[str, Path], read: dict[str, MapSet]) -> MapSet:
    """The maps of every run (``read``: each run's map set, as read), on one grid (refused
    if the grids differ)."""
    _refuse_swapped_runs(runs, read)
    registration_note = _register_runs(runs, read)
    _keep_saxs_maps_of_the_saxs_run(read)
    gathered: MapSet | None = None
    for kind, maps in read.items():
        gathered = maps if gathered is None else gathered.joined(maps, source=str(runs[kind]))
    if gathered is None:
        raise RunFileError("no run files to diagnose")
    if registration_note:
        gathered.notes.append(registration_note)
    # each scan's "q does not cover ...: no ... maps" is the other scan's part of the pair
    gathered.notes = [note for note in gathered.notes if not note.startswith(UNCOVERED)]
    for needed in (MapName.SAXS_INTENSITY, MapName.D_STAR):
        if needed not in gathered:
            raise RunFileError(
                f"{', '.join(map(str, runs.values()))}: no {needed} map; the diagnosis needs "
                "the SAXS scan's maps (`jellyroll maps SAXS_RUN`)"
            )
    d_star = gathered.maps[MapName.D_STAR]
    impossible = np.isfinite(d_star.values) & (d_star.values <= 0)
    if impossible.any():  # a map padded with 0 for "no value": a median d* of 0 nm, exit 0
        values = np.where(impossible, np.nan, d_star.values)
        gathered.maps[MapName.D_STAR] = Map(values, d_star.units)
        gathered.notes.append(
            f"d* <= 0 nm in {int(impossible.sum())} pixels (no domain has such a size; "
            "0 written for no value?): read as no value"
        )
    problem = saxs_map_problem(gathered[MapName.SAXS_INTENSITY])
    if problem is not None:
        raise RunFileError(
            f"{', '.join(map(str, runs.values()))}: /entry/maps/{MapName.SAXS_INTENSITY} "
            f"{problem}: no agglomerate can be told from it; check the SAXS scan's reduction "
            "and reconstruction (`jellyroll maps SAXS_RUN` again)"
        )
    return gathered


def _refuse_swapped_runs(runs: dict[str, Path], read: dict[str, MapSet]) -> None:
    """Refuse a WAXS run given as the SAXS one while the other run holds the SAXS maps:
    the region-averaged SAXS profiles would be read from the WAXS reconstruction. Refuse as
    well a "WAXS" run that holds SAXS maps and no phase map (a SAXS run given as the WAXS
    one): the cell was diagnosed without its phase shares."""
    if "saxs" in runs and MapName.SAXS_INTENSITY not in read["saxs"]:
        holders = [kind for kind, maps in read.items() if MapName.SAXS_INTENSITY in maps]
        if holders:
            raise RunFileError(
                f"{runs['saxs']}: given as the SAXS run, but it holds no "
                f"/entry/maps/{MapName.SAXS_INTENSITY}, while {runs[holders[0]]} (given as the "
                f"{holders[0].upper()} run) does: the runs are the wrong way round; give the "
                "WAXS run first, then the SAXS run (in a run configuration: waxs = ..., saxs = "
                "...)"
            )
    if "waxs" in runs and "saxs" in runs:
        waxs = read["waxs"]
        phases = [name for name in (*GRAPHITE_PHASE_MAPS, *NMC_PHASE_MAPS) if name in waxs]
        if not phases and MapName.SAXS_INTENSITY in waxs:
            raise RunFileError(
                f"{runs['waxs']}: given as the WAXS run, but it holds SAXS maps and no phase "
                "map (lic6, lic12, NMC): a SAXS run? Give the WAXS run first, then the SAXS "
                "run of the same cell"
            )


SAXS_MAPS = (MapName.SAXS_INTENSITY, MapName.D_STAR, MapName.D_STAR_REASON)


def _keep_saxs_maps_of_the_saxs_run(read: dict[str, MapSet]) -> None:
    """Leave out the SAXS maps of the WAXS run when the SAXS run has its own: joined, the
    WAXS run's won on equal names (a WAXS q range that reaches 0.025-0.1 1/A, or another
    SAXS run given as the WAXS one, replaced the SAXS run's intensity and d*: the tiny
    twin's one agglomerate was not found, exit 0)."""
    if "waxs" not in read or "saxs" not in read:
        return
    saxs, waxs = read["saxs"], read["waxs"]
    shared = [name for name in SAXS_MAPS if name in waxs and name in saxs]
    if shared:
        kept = {name: item for name, item in waxs.maps.items() if name not in shared}
        read["waxs"] = dataclasses.replace(waxs, maps=kept)


REGISTRATION_MARGIN = 0.2
"""Correlation by which the SAXS attenuation map turned or mirrored must fit the WAXS one
better than as given for the runs to be refused as misregistered (as given, the tiny twin's
maps correlate 1.00 and turned by 15 deg still 0.91: only gross turns stand out)."""
REGISTRATION_STEP_DEG = 15.0
"""Step (deg) of the turns tried by :func:`registration_fits`."""
REGISTRATION_MAX_PX = 200
"""Longest side (px) the maps are block-averaged down to for :func:`registration_fits`."""


def _inscribed_disk(shape: tuple[int, ...], margin_px: float = 1.0) -> np.ndarray:
    """(ny, nx) bool: the pixels within ``margin_px`` inside the disk inscribed in a grid of
    ``shape``, about its centre."""
    y, x = np.indices(shape[:2])
    radius = np.hypot(y - (shape[0] - 1) / 2, x - (shape[1] - 1) / 2)
    return radius <= min(shape[:2]) / 2 - margin_px


def registration_fits(
    reference: np.ndarray, moving: np.ndarray, step_deg: float = REGISTRATION_STEP_DEG
) -> list[tuple[float, bool, float]]:
    """Correlation of ``moving`` (ny, nx) with ``reference`` (same grid, centred on the
    rotation axis) turned about the grid centre by 0, ``step_deg``, ... deg, first without
    then with its columns mirrored: ``(correlation, mirrored, turn_deg)``, the first entry
    as given. Over the disk inscribed in the grid (a turn brings no corner in); NaN (no
    value) as 0. Not at each turn's best shift: shifted, a cell with its tab elsewhere fit
    a turn of 30 deg (0.86, as given 0.48)."""
    block = max(1, int(np.ceil(max(reference.shape) / REGISTRATION_MAX_PX)))
    a = block_mean(np.nan_to_num(np.asarray(reference, dtype=np.float64)), block)
    b = block_mean(np.nan_to_num(np.asarray(moving, dtype=np.float64)), block)
    disk = _inscribed_disk(a.shape)
    fits = []
    for mirrored in (False, True):
        source = a[:, ::-1] if mirrored else a
        for turn in np.arange(0.0, 360.0, step_deg):
            turned = (
                ndimage.rotate(source, turn, reshape=False, order=1, mode="constant", cval=0.0)
                if turn
                else source
            )
            fits.append((pearson(turned[disk], b[disk]), mirrored, float(turn)))
    return fits


def _correlation_at_best_shift(
    a: np.ndarray, b: np.ndarray, within: np.ndarray, upsample: int = 20
) -> float:
    """Pearson correlation of the maps ``a`` and ``b`` (one grid) over ``within`` once each
    is moved by half their shift (:func:`~jellyroll.conventions.map_shift_px`, to
    1/``upsample`` pixel) towards the other, both interpolated alike."""
    shift = map_shift_px(b, a, upsample) / 2
    a, b = ndimage.shift(a, shift, order=1), ndimage.shift(b, -shift, order=1)
    within = within & _inscribed_disk(a.shape, 1.0 + float(np.hypot(*shift)))
    return pearson(a[within], b[within])


TURN_SEARCH_DEG = 30.0
"""Half range (deg) of the fine search for a turn between the WAXS and SAXS attenuation maps
(:func:`fine_turn`): twice the coarse step of :func:`registration_fits`."""
TURN_RIM_PX = 1.0
"""How far (map pixels) a turn between the WAXS and SAXS maps may move the rim of the grid's
inscribed disk before the runs are refused (:func:`_register_runs`)."""
TURN_GAIN = 0.0005
"""Correlation the found turn must add to the maps' as given (each at its best shift) to be
taken for one. The tiny twin's pairs with no turn (red teams M and T2: noise, dropped frames,
half the angles, FBP against SART, shifts, another grid): at most 0.00036 (-0.34 deg, a
third of a pixel at the rim); angles offset by 2 deg: 0.00099 and 0.00101."""
TURN_OFFSET_DEG = 17.3
"""Turn (deg) both maps are given before :func:`fine_turn` compares them, so that both are
interpolated alike at every turn tried: the turned map alone was, and its smoothing raised
its correlation with a noisy map (a noisy pair with no turn: +0.88 deg, +0.008)."""
TURN_SMOOTH_PX = 1.0
"""Gaussian sigma (px) both maps are smoothed by before :func:`fine_turn` (the same end:
2 px smoothed the real turns' gains away too, 2 deg adding 0.0004)."""


def fine_turn(reference: np.ndarray, moving: np.ndarray) -> tuple[float, float, float]:
    """The turn (deg) of ``reference`` (ny, nx, centred on the rotation axis) about the grid
    centre within :data:`TURN_SEARCH_DEG` that fits ``moving`` (same grid) best, each turn
    at its best shift (:func:`_correlation_at_best_shift`): ``(turn_deg, correlation,
    correlation as given)``, over the inscribed disk. Steps of 1 deg, then 0.1 deg about the
    best, refined by a parabola. Both maps are smoothed by one pixel and turned by
    :data:`TURN_OFFSET_DEG` more: the linear interpolation of a turn smooths the map turned,
    which alone raised its correlation with the other at every turn but 0. NaN (no value)
    as 0."""
    block = max(1, int(np.ceil(max(reference.shape) / REGISTRATION_MAX_PX)))
    a, b = (
        ndimage.gaussian_filter(
            block_mean(np.nan_to_num(np.asarray(m, np.float64)), block), TURN_SMOOTH_PX
        )
        for m in (reference, moving)
    )
    disk = _inscribed_disk(a.shape)
    b = ndimage.rotate(b, TURN_OFFSET_DEG, reshape=False, order=1)

    def fit(turn: float, upsample: int = 20) -> float:
        turned = ndimage.rotate(a, turn + TURN_OFFSET_DEG, reshape=False, order=1)
        return _correlation_at_best_shift(turned, b, disk, upsample)

    # the 1 deg steps with shifts to a quarter pixel (to a twentieth: 2.5 s a diagnosis of
    # the demo's 300 x 300 maps, 1.2 s so)
    coarse = np.arange(-TURN_SEARCH_DEG, TURN_SEARCH_DEG + 0.5)
    best = float(coarse[int(np.argmax([fit(t, 4) for t in coarse]))])
    fine = best + np.arange(-1.0, 1.05, 0.1)
    scores = np.array([fit(t) for t in fine])
    k = int(np.clip(np.argmax(scores), 1, len(fine) - 2))
    turn = float(fine[k] + 0.1 * parabola_vertex(*scores[k - 1 : k + 2]))
    return turn, float(scores.max()), fit(0.0)


def _shift_explains(both: MapSet, turned: float) -> bool:
    """Whether the WAXS attenuation map of ``both`` moved onto the SAXS one (no turn) fits
    it within half :data:`REGISTRATION_MARGIN` of the best turn's fit ``turned``: a sample
    moved 1.7 pixels between the scans lowered the fit as given so far that a turn of 315
    deg beat it (0.83 for 0.63; moved, 0.92), and the pair was refused as turned (red team
    T2). Moved, a turned pair fits better too (turned 90 deg: 0.25 as given, 0.83 moved,
    1.00 turned), hence only within half the margin."""
    shift = map_shift_px(both["saxs"], both["waxs"])
    moved = ndimage.shift(np.nan_to_num(both["waxs"]), shift, order=1)
    return registration_fits(both["saxs"], moved)[0][0] + REGISTRATION_MARGIN / 2 >= turned


REGISTRATION_SHIFT_PX = 0.25
"""Shift (SAXS map pixels) between the WAXS and SAXS attenuation maps above which the WAXS
maps are moved onto the SAXS ones (:func:`_register_runs`); below it, they are taken as
registered (the twins' runs: under 0.05 px)."""


def _register_runs(runs: dict[str, Path], read: dict[str, MapSet]) -> str:
    """Check that the WAXS and SAXS runs show the cell the same way round and in the same
    place, by their attenuation maps (both scans had a diode); returns the note to keep
    ("" when there is nothing to say). The lithiation around each agglomerate of the SAXS
    map is read at the same place in the WAXS maps.

    Refused: the cell turned or mirrored (:func:`registration_fits`): the two scans'
    rotation angles differ by an offset or a sign (a stage homed again between them, angles
    written the other way); the WAXS angles + 90 deg gave the case-B agglomerate 0.03
    poorly lithiated graphite inside for 0.37, exit 0. Moved onto the SAXS grid, with a
    note: the WAXS maps shifted by more than :data:`REGISTRATION_SHIFT_PX` (cross-
    correlation of the attenuation maps, to a twentieth of a pixel; the sample moved between
    the scans, or their rotation axes differ): 4 pixels (80 um) read the small twin's
    case-B agglomerate 0.07 poorly lithiated inside and 0.17 in its ring for 0.25 and
    0.06, the ring's finding reversed, exit 0; one pixel already 0.21 and 0.09. Without an
    attenuation map in both runs nothing is checked, and the note says so."""
    if not {"waxs", "saxs"} <= read.keys():
        return ""
    lacking = [kind.upper() for kind in ("waxs", "saxs") if MapName.ATTENUATION not in read[kind]]
    if lacking:
        return (
            f"the WAXS and SAXS maps were not checked against each other: no attenuation map "
            f"in the {' and '.join(lacking)} run (no diode); a turn, mirror or shift of the "
            "cell between the two scans would go unseen, and the lithiation around each "
            "agglomerate be read elsewhere"
        )
    saxs, waxs = read["saxs"], read["waxs"]
    try:  # on the SAXS grid; grids that cannot be joined are refused by the join itself
        both = MapSet({"saxs": saxs.maps[MapName.ATTENUATION]}, saxs.x_um, saxs.y_um).joined(
            MapSet({"waxs": waxs.maps[MapName.ATTENUATION]}, waxs.x_um, waxs.y_um)
        )
    except RunFileError:
        return ""
    fits = registration_fits(both["saxs"], both["waxs"])
    given = fits[0][0]
    best, mirrored, turn = max(fits[1:])
    if best > 0.5 and best > given + REGISTRATION_MARGIN and not _shift_explains(both, best):
        how = f"turned by {turn:g} deg" + (" and mirrored" if mirrored else "")
        raise RunFileError(
            f"{runs['waxs']}, {runs['saxs']}: the WAXS and SAXS attenuation maps do not show "
            f"the cell the same way round: the SAXS map {how} matches the WAXS one "
            f"(correlation {best:.2f}, as given {given:.2f}); the scans' rotation angles "
            "differ by an offset or a sign (stage homed again, angles written the other "
            "way, another unit): correct the rotation angles of one scan and reduce it again"
        )
    turn, turned, as_given = fine_turn(both["saxs"], both["waxs"])
    rim_px = np.deg2rad(abs(turn)) * min(both["saxs"].shape) / 2
    if rim_px > TURN_RIM_PX and turned > as_given + TURN_GAIN:
        raise RunFileError(
            f"{runs['waxs']}, {runs['saxs']}: the SAXS attenuation map turned by {turn:+.1f} "
            f"deg about the rotation axis matches the WAXS one (correlation {turned:.3f}, as "
            f"given {as_given:.3f}; the turn moves the map's rim by {rim_px:.1f} pixels): the "
            "scans' rotation angles differ by an offset (stage homed again between them?), "
            "and each agglomerate's lithiation would be read elsewhere; correct the rotation "
            "angles of one scan and reduce it again"
        )
    shift_px = map_shift_px(both["saxs"], both["waxs"])
    notes = [_same_slice_note(runs, both["saxs"], both["waxs"], shift_px)]
    if np.hypot(*shift_px) > REGISTRATION_SHIFT_PX:
        dy_um, dx_um = (float(v) * saxs.pixel_size_um for v in shift_px)
        read["waxs"] = dataclasses.replace(waxs, x_um=waxs.x_um + dx_um, y_um=waxs.y_um + dy_um)
        notes.append(
            f"the WAXS maps were moved by {dx_um:+.1f} um along x and {dy_um:+.1f} um along y "
            f"({np.hypot(*shift_px):.1f} pixels) onto the SAXS maps, where their attenuation "
            "maps match (cross-correlation): the sample moved between the two scans, or their "
            "rotation axes differ"
        )
    return "; ".join(note for note in notes if note)


SAME_SLICE_MARGIN = 0.01
"""How far the registered WAXS and SAXS attenuation maps may correlate below what their
noise allows (:func:`_noise_limited_correlation`) for the two scans to pass as one slice of
one cell. The tiny twins' pairs: 1.000 (0.998 and 0.990 with noise of 5 and 10 % of the
maps' spread added to each; allowed 0.991 and 0.973); the WAXS scan of one twin with the
SAXS scan of another (the same winding, another preset and seed): 0.963, 0.961 and 0.954
(allowed 0.999, 0.991, 0.973). Under noise of 20 % of the spread the two cannot be told
apart (0.926 crossed, allowed 0.927)."""


def _noise_limited_correlation(maps: tuple[np.ndarray, ...], within: np.ndarray) -> float:
    """The correlation two maps of one object with independent noise can reach over the
    pixels ``within`` (bool, the maps' shape): the product over ``maps`` of sqrt(1 - noise
    variance / variance), the noise variance taken from the robust spread of neighbouring
    pixels' differences (over 2; edges between them count as noise, which lowers the bound:
    the check errs towards passing)."""
    bound = 1.0
    for values in maps:
        values = np.nan_to_num(np.asarray(values, dtype=np.float64))
        variance = float(np.var(values[within]))
        noise = robust_sigma(np.diff(values, axis=1)) ** 2 / 2
        bound *= np.sqrt(max(variance - noise, 0.0) / variance) if variance > 0 else 0.0
    return float(bound)


def _same_slice_note(
    runs: dict[str, Path], saxs: np.ndarray, waxs: np.ndarray, shift_px: np.ndarray
) -> str:
    """A note (and warning) when the attenuation maps ``saxs`` and ``waxs`` (ny, nx, one
    grid), ``waxs`` moved by ``shift_px``, correlate over the disk inscribed in the grid
    more than :data:`SAME_SLICE_MARGIN` below what their noise allows; "" otherwise. A
    cell's WAXS scan paired with another cell's SAXS scan was diagnosed without a word: the
    lithiation around each agglomerate read in a slice that does not hold it, exit 0."""
    moved = ndimage.shift(np.nan_to_num(waxs), shift_px, order=1, mode="constant")
    disk = _inscribed_disk(saxs.shape, margin_px=1.0 + float(np.hypot(*shift_px)))
    agreement = pearson(np.nan_to_num(saxs)[disk], moved[disk])
    allowed = _noise_limited_correlation((saxs, waxs), disk)
    if not agreement < allowed - SAME_SLICE_MARGIN:
        return ""
    note = (
        f"the WAXS and SAXS attenuation maps correlate {agreement:.3f} once registered, where "
        f"two scans of one slice with their noise reach {allowed:.3f}: are {runs['waxs']} and "
        f"{runs['saxs']} of the same cell and slice? The lithiation around each agglomerate "
        "is read in the WAXS maps where the SAXS map places it"
    )
    warnings.warn(note, stacklevel=4)
    return note


def diagnose(
    maps: MapSet,
    options: DiagnoseOptions,
    *,
    name: str,
    label: str,
    saxs: Reconstruction | None = None,
    graphite_crosstalk: np.ndarray | None = None,
) -> Diagnosis:
    """The diagnosis of one cell from its map set (pure: no files); ``saxs`` (the SAXS
    reconstruction on the maps' grid) adds the region-averaged SAXS profiles.
    ``graphite_crosstalk`` (3 lines, 3 windows; :func:`_graphite_crosstalk`) unmixes the
    graphite phase maps before the slice's shares and each defect's lithiation fractions
    are taken: the Table 1 windows touch and leak each line into its neighbour's (the tiny
    twin's charged anode read 0.105 poorly lithiated for a true 0.007, and 0.766 LiC12 for
    0.898, exit 0); they are then line-intensity shares, amount shares where the phases
    scatter alike per unit of graphite. The maps themselves stay window integrals."""
    pixel = maps.pixel_size_um
    notes = [*maps.notes]
    attenuation = maps.maps.get(MapName.ATTENUATION)
    image = None if attenuation is None else attenuation.values
    cell, cell_source = _located_cell(maps, notes)
    psf, psf_summary = _psf(maps, options, cell, notes)
    agglomerates = find_agglomerates(
        maps[MapName.SAXS_INTENSITY],
        pixel,
        options.critical_diameter_um,
        psf_fwhm_um=psf,
        background_window_um=options.background_window_um,
        d_star_map=maps[MapName.D_STAR],
    )
    bends = pd.DataFrame()
    trace = None
    bends_measured = False
    if image is None:
        notes.append("no attenuation map (no diode): collector not traced, no bends")
    elif cell is not None and cell_source != MapName.ATTENUATION:
        # a map that does not show the casing (e.g. negated, ln(I/I0)) shows no collector
        notes.append("collector not traced: the attenuation map does not show the cell")
    if cell is not None and image is not None and cell_source == MapName.ATTENUATION:
        try:
            # pixels not measured filled along the turns; no bend reaches the samples near
            # them (read as 0, three NaN rows drew 10 false bends, exit 0)
            trace = trace_spiral(fill_unmeasured(image, cell)[0], cell, pixel)
            bends = find_bends(image, pixel, trace=trace)
            bends_measured = True
        except ValueError as error:
            notes.append(f"collector not traced: {error}")
        if unmeasured_runs := int(bends.attrs.get("unmeasured_runs", 0)):
            notes.append(
                f"{unmeasured_runs} departure(s) of the collector past the bend threshold "
                "reach pixels of the attenuation map without a value (NaN): not reported as "
                "bends, the layer's course there is not measured; a bend may lie there"
            )
    if len(bends) and "depth_limited" in bends and bends.depth_limited.astype(bool).any():
        limited = bends.id[bends.depth_limited.astype(bool)].astype(int).tolist()
        notes.append(
            f"bend(s) {', '.join(map(str, limited))} reach the edge of the collector "
            "tracker's window (0.45 of a pitch from the previous turn): their depths are "
            "lower bounds"
        )
    if trace is not None and any(trace.cut_ends):
        named = zip(("inner", "outer"), trace.cut_ends, strict=True)
        ends = " and ".join(end for end, cut in named if cut)
        notes.append(
            f"the collector's trace was cut at its {ends} end where the layer goes on (a "
            "tear, a bend deeper than half a pitch, a jump to another layer, a turn faded "
            "on a blurred or coarse map, or the image's edge): turns and arc lengths count "
            "from the cut, no bend is reported within a pitch of it, and the layer beyond "
            "it is not unrolled"
        )
    if len(bends) and len(agglomerates):
        bends, agglomerates = link_bends(agglomerates, bends)
    if len(bends):
        notes.extend(_bends_without_agglomerate(bends, agglomerates, options))
    unmixed = maps
    if graphite_crosstalk is not None and all(n in maps for n in GRAPHITE_PHASE_MAPS):
        unmixed = _unmixed_graphite(maps, graphite_crosstalk)
        notes.append(
            "graphite shares and lithiation fractions: the graphite lines unmixed from the "
            "Table 1 window integrals (one line shape fitted to the anode's mean pattern)"
        )
    phases = {str(n): unmixed[n] for n in GRAPHITE_PHASE_MAPS if n in unmixed}
    anode = _anode(maps, psf)
    lithiation = pd.DataFrame()
    if len(agglomerates) and phases:
        # in the anode only: a ring reaching into the separator or the cathode took their
        # noise, clipped at 0 and alike in every phase, for graphite
        lithiation = defect_lithiation(agglomerates, phases, pixel, mask=anode)
        lithiation = lithiation.merge(agglomerates[["id", "case"]], on="id")
    regions = region_masks(anode, agglomerates, bends, pixel, options.critical_diameter_um)
    profiles = pd.DataFrame()
    if saxs is not None and clipped_reconstruction(saxs.attrs):
        notes.append(f"no region-averaged SAXS profiles: {CLIPPED_CAUSE}")
    elif saxs is not None and saxs.data.shape[:2] == anode.shape:
        profiles = region_profiles(saxs.data, saxs.q_A, regions)
    elif saxs is not None:
        notes.append(
            f"SAXS reconstruction {saxs.data.shape[:2]} is not on the maps' grid "
            f"{anode.shape}: no region-averaged SAXS profiles"
        )
    return Diagnosis(
        name=name,
        label=label,
        maps=maps,
        agglomerates=agglomerates,
        bends=bends,
        lithiation=lithiation,
        cell=None if cell is None else _found(cell, maps),
        unrolled=_unrolled(maps, cell, trace),
        summary={
            **summary(unmixed, agglomerates, bends if bends_measured else None),
            "critical_diameter_um": options.critical_diameter_um,
            **psf_summary,
            "defect_share": defect_share(anode, regions["agglomerate"]),
        },
        notes=notes,
        saxs_profiles=profiles,
        saxs_profile_units=saxs.units if saxs is not None else Diagnosis.saxs_profile_units,
    )


def _bends_without_agglomerate(
    bends: pd.DataFrame, agglomerates: pd.DataFrame, options: DiagnoseOptions
) -> list[str]:
    """A note naming the bends at least half a critical diameter deep under no agglomerate
    found: an agglomerate over half the background window is taken for background (the
    tiny twin's 150 um one, its bend 73 um deep: not found, no case B, the defect share
    0.006 for 0.039, exit 0 without a word), or it lies off the slice. Shallower ones are
    left out: the twins' traces give a few of 5-10 um with no agglomerate. And one naming
    such bends under case-A agglomerates only (:func:`_deep_bends_under_case_a`)."""
    linked = bends.get("agglomerate_ids", pd.Series([()] * len(bends), index=bends.index))
    deep = bends.amplitude_um.abs() >= options.critical_diameter_um / 2
    held = np.array([len(ids) > 0 for ids in linked], dtype=bool)
    notes = _deep_bends_under_case_a(bends[deep & held], agglomerates)
    alone = bends[deep & ~held]
    if alone.empty:
        return notes
    window = options.background_window_um or background_window(options.critical_diameter_um)
    listed = ", ".join(
        f"{int(b.id)} ({abs(b.amplitude_um):.0f} um deep)" for b in alone.itertuples()
    )
    return [
        *notes,
        f"bend(s) {listed} lie under no agglomerate found in the slice, deep enough for a case "
        "B agglomerate's: an agglomerate above "
        "or below the slice bent it, or one wider than half the background window "
        f"({window / 2:.0f} um), which the background takes in and no spot shows; for the "
        "latter, diagnose again with a background window (background_window_um) over twice "
        "its size",
    ]


def _deep_bends_under_case_a(deep: pd.DataFrame, agglomerates: pd.DataFrame) -> list[str]:
    """A note naming the ``deep`` bends (linked, at least half a critical diameter deep)
    whose agglomerates are all case A: a 116 um agglomerate found as 40 um (case A) 59 um
    from its 68 um bend was counted case A without a word (the red team's cell of four
    large agglomerates)."""
    if deep.empty or "case" not in agglomerates:
        return []
    case = dict(zip(agglomerates.id.astype(int), agglomerates.case, strict=True))
    only_a = [
        bend
        for bend in deep.itertuples()
        if all(case.get(int(i)) == "A" for i in bend.agglomerate_ids)
    ]
    if not only_a:
        return []
    listed = ", ".join(f"{int(b.id)} ({abs(b.amplitude_um):.0f} um deep)" for b in only_a)
    return [
        f"bend(s) {listed} lie under case-A agglomerates only, deep enough for a case-B "
        "agglomerate's: one measured small (part of its rim taken for background or a "
        "plateau), or a case-B one above or below the slice, bent it; see their sizes"
    ]


def _anode(maps: MapSet, psf_fwhm_um: float) -> np.ndarray:
    """The anode, (ny, nx) bool: the silicon-rich layers of the SAXS map, the mask the
    agglomerate search uses (the WAXS phase labels also light up along the streaks of
    single-crystal spots, so they do not delimit the anode)."""
    return silicon_mask(maps[MapName.SAXS_INTENSITY], maps.pixel_size_um, psf_fwhm_um)


PSF_DISAGREEMENT = 0.25
"""Relative difference between a given PSF and the one measured on the map above which
the diagnosis notes it."""


def _psf(
    maps: MapSet, options: DiagnoseOptions, cell: Cell | None, notes: list[str]
) -> tuple[float, dict[str, float]]:
    """The FWHM (um) of the SAXS map's PSF that agglomerate sizes are deconvolved by, and
    its summary values: ``psf_fwhm_um`` (used), ``psf_measured_fwhm_um`` (measured on the
    map's layer edges, :func:`~jellyroll.defects.resolution.estimate_psf`; NaN when they
    do not give it) and ``psf_measured`` (1 when the one used is the measured one, 0 when
    given or the study's beam). Why the measured one is not used, appended to ``notes``.

    Measured every time: a given PSF far from the map's is noted (a beam's FWHM given for
    a reconstruction that blurs more sizes its spots too large)."""
    saxs = maps[MapName.SAXS_INTENSITY]
    pixel = maps.pixel_size_um
    estimate = estimate_psf(
        saxs, pixel, silicon_mask(saxs, pixel), centre_px=None if cell is None else cell.centre
    )
    measured = estimate.fwhm_um if estimate.reliable else float("nan")
    if options.psf_fwhm_um != "auto":
        used = float(options.psf_fwhm_um)
        if estimate.reliable and abs(measured - used) > PSF_DISAGREEMENT * max(used, pixel):
            notes.append(
                f"PSF given as {used:g} um FWHM, but the SAXS map's layer edges measure "
                f"{measured:.3g} +- {estimate.error_um:.1g} um: the agglomerate sizes are "
                "deconvolved by the PSF given"
            )
    elif estimate.reliable:
        used = measured
    else:
        used = STUDY_PSF_FWHM_UM
        notes.append(
            f"PSF of the SAXS map not measured ({estimate.problem} on its anode layers' "
            f"edges): agglomerate sizes deconvolved by the study's {used:g} um beam; give "
            "psf_fwhm_um if the map is blurred otherwise"
        )
    summary = {
        "psf_fwhm_um": used,
        "psf_measured_fwhm_um": measured,
        "psf_measured": int(options.psf_fwhm_um == "auto" and estimate.reliable),
    }
    return used, summary


CELL_SOURCES = (
    (MapName.ATTENUATION, "the attenuation map"),
    (MapName.HOUSING, "the WAXS housing ring (steel (110), 3.07-3.13 1/A)"),
)
"""The maps the cell is found in, in order of preference: the casing is a full bright
circle in both."""


CUT_SHARE = 0.01
"""Share of the cell's cross-section outside the map above which the diagnosis says that
the cell is cut (a trace of the real 18650 slice cut 10 % on one side followed 15.2 of its 19
turns, with no word of it)."""


def _share_outside(cell: Cell, shape: tuple[int, ...]) -> float:
    """Share of the disk of ``cell`` (pixels) that lies outside a map of ``shape`` (ny, nx)."""
    inside = int(np.count_nonzero(cell.disk(shape)))
    return max(0.0, 1.0 - inside / (np.pi * cell.radius**2))


UNMEASURED_RIM = 0.5
"""Share of the ring just outside a cell's outline (1-3 pixels out) without a value above
which the outline is taken for the edge of the measured region
(:func:`_refuse_outline_at_unmeasured_edge`)."""


def _refuse_outline_at_unmeasured_edge(
    cell: Cell, image: np.ndarray, words: str, pixel_um: float
) -> None:
    """Refuse a cell whose outline runs along the edge of the map's measured region: over
    :data:`UNMEASURED_RIM` of the ring 1-3 pixels outside it without a value (NaN). The
    chain's maps hold air beyond the casing (the scan's line ends, needed for the
    attenuation's reference); a map measured only inside a circle within the cell (a
    reconstruction masked to a field smaller than the cell) gave the small twin a cell of
    993 um radius for 1370 um, its last layer taken for the casing, and two agglomerates,
    a bend and its outer turns left out, exit 0."""
    rim = cell.rim(image.shape)
    if not rim.any():
        return
    unmeasured = float(np.mean(~np.isfinite(image[rim])))
    if unmeasured > UNMEASURED_RIM:
        raise RunFileError(
            f"the cell's outline found in {words} (radius {cell.radius * pixel_um:.0f} um) "
            f"runs along the edge of the map's measured region ({unmeasured:.0%} of the ring "
            "just outside it holds no value): the casing is not in the measured field (a "
            "reconstruction masked to a circle inside the cell?), and the cell's size, its "
            "outer turns and what lies in them would be wrong. Reconstruct a field that holds "
            "the whole cell with air around it"
        )


def _located_cell(maps: MapSet, notes: list[str]) -> tuple[Cell | None, str | None]:
    """The cell (casing centre and radius) in the first map of :data:`CELL_SOURCES` that
    shows it, and that map's name; what was used or why none, appended to ``notes``."""
    tried = []
    for name, words in CELL_SOURCES:
        if name not in maps:
            continue
        try:
            cell = find_cell(np.nan_to_num(maps[name]))
        except ValueError as error:
            tried.append(f"not in {words}: {error}")
            continue
        notes.extend(f"cell {reason}" for reason in tried)
        _refuse_outline_at_unmeasured_edge(cell, maps[name], words, maps.pixel_size_um)
        outside = _share_outside(cell, maps[name].shape)
        if outside > CUT_SHARE:
            notes.append(
                f"the cell is cut by the map's edge ({outside:.0%} of its cross-section "
                "outside): agglomerates, bends and turns are counted on the part inside only"
            )
        if name != MapName.ATTENUATION:
            why = "" if MapName.ATTENUATION in maps else "no attenuation map (no diode): "
            notes.append(f"{why}cell found from {words}")
        return cell, name
    notes.extend(f"cell {reason}" for reason in tried)
    if not tried:
        notes.append("no attenuation map (no diode) and no WAXS housing map: cell not located")
    return None, None


def _found(cell: Cell, maps: MapSet) -> FoundCell:
    pixel = maps.pixel_size_um
    return FoundCell(
        float(px_to_um(cell.x, maps.x_um.size, pixel)),
        float(px_to_um(cell.y, maps.y_um.size, pixel)),
        float(cell.radius * pixel),
    )


def _unrolled(maps: MapSet, cell: Cell | None, trace: SpiralTrace | None) -> dict[str, Unrolled]:
    """The main maps unrolled along the traced layer (one pitch deep around it), or around
    the cell centre (polar) when no layer was traced."""
    names = [name for name in UNROLLED_MAPS if name in maps]
    if cell is None or not names:
        return {}
    # NaN (no value, e.g. d* on a weak voxel) stays NaN: linear interpolation spreads it to
    # the samples it touches instead of mixing a 0 into them
    stack = np.stack([maps[name] for name in names])
    units = [maps.maps[name].units for name in names]
    if trace is not None:
        view = unroll_spiral(stack, trace)
        return {
            str(name): Unrolled(view.data[i], view.depth_um, view.arc_um, "spiral", units[i])
            for i, name in enumerate(names)
        }
    polar = unroll_polar(stack, cell, maps.pixel_size_um)
    return {
        str(name): Unrolled(polar.data[i], polar.radius_um, polar.arc_length_um, "polar", units[i])
        for i, name in enumerate(names)
    }


def summary(
    maps: MapSet, agglomerates: pd.DataFrame, bends: pd.DataFrame | None
) -> dict[str, float]:
    """Counts (all, per case), median radius, median d* and the graphite and NMC phase
    shares of the whole slice (``<phase>_share``, each family where its maps exist; over
    the pixels where every phase of the family has a value; NaN without any signal of it);
    ``bends`` None when the collector was not traced (count NaN: not measured, which is
    not none found)."""
    cases = agglomerates.get("case", pd.Series(dtype=str))
    values: dict[str, float] = {
        "agglomerates": len(agglomerates),
        "case_a": int((cases == "A").sum()),
        "case_b": int((cases == "B").sum()),
        "unresolved": int((cases == UNRESOLVED).sum()),
        "median_radius_um": median_radius_um(agglomerates),
        "bends": np.nan if bends is None else len(bends),
        "median_d_star_nm": finite_median(maps[MapName.D_STAR]),
    }
    for family in (GRAPHITE_PHASE_MAPS, NMC_PHASE_MAPS):
        if all(name in maps for name in family):
            values.update(_phase_shares(maps, family))
    return values


def _phase_shares(maps: MapSet, family: tuple[MapName, ...]) -> dict[str, float]:
    """``<phase>_share`` of each phase of ``family`` over the slice: each phase summed,
    the sums clipped at 0 (not the pixels: clipped pixel by pixel, a reconstruction's
    zero-mean noise is added to every phase; a delithiated cathode read 0.10 lithiated)."""
    phases, _ = phase_amounts({name: maps[name] for name in family})
    amounts = np.clip(phases.sum(axis=(1, 2)), 0.0, None)
    total = amounts.sum()
    return {
        f"{name}_share": float(amount / total) if total > 0 else float("nan")
        for name, amount in zip(family, amounts, strict=True)
    }

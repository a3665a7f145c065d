"""The maps of a reconstruction, on arrays: Table 1 phase maps and labels, SAXS intensity
and d* (SPEC sections 2 and 3). Pure functions: a :class:`Reconstruction` in, a
:class:`MapSet` out."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from jellyroll.conventions import RowSliced, row_slabs, unusable_channels
from jellyroll.maps.calibration import q_axis_note
from jellyroll.maps.options import MapsOptions
from jellyroll.phases import (
    GRAPHITE_OVERVIEW_WINDOW,
    GRAPHITE_PHASES,
    HOUSING_WINDOW,
    NMC_PHASES,
    TABLE1_WINDOWS,
    QWindow,
    WindowSpec,
    covers,
    partly_covered,
    phase_labels,
    phase_maps,
    uncovered,
)
from jellyroll.results import Map, MapName, MapSet, Reconstruction
from jellyroll.saxs import (
    CLIPPED,
    CLIPPED_NOTE,
    DSTAR_MIN_Q_MAX_A,
    EXCURSION_SHARE,
    LOW_INTENSITY,
    NOISY_WALK,
    NOT_MEASURED,
    REASONS,
    SAXS_Q_RANGE,
    SHORT_Q_RANGE,
    SUSTAIN_FRACTION,
    VALID,
    DStarMap,
    clipped_reconstruction,
    denoise_profile_blocks,
    departure_dstar_map,
    dstar_parameters,
    reaches_dstar_range,
    saxs_intensity_map,
)
from jellyroll.sinogram import totals_spread_note

GRAPHITE_LABELS = "0 LiC6, 1 LiC12, 2 poorly lithiated, -1 none, -2 no value"
NMC_LABELS = "0 lithiated, 1 delithiated, -1 none, -2 no value"
WINDOWS = {**TABLE1_WINDOWS, **GRAPHITE_OVERVIEW_WINDOW}
PLAIN_WINDOWS = {name: (window.q_min, window.q_max) for name, window in WINDOWS.items()}
"""The same windows without background: the study's plain integrals (analysis "study")."""


UNCOVERED = "q does not cover"
"""How the notes of maps that a scan's q range cannot give begin."""


def analysis_windows(options: MapsOptions) -> dict[str, WindowSpec]:
    """The windows of ``options.analysis`` (A^-1): with their linear background (jellyroll)
    or plain (study)."""
    return dict(PLAIN_WINDOWS if options.analysis == "study" else WINDOWS)


def graphite_windows_of(maps: MapSet) -> dict[str, WindowSpec]:
    """The graphite phases' windows (1/A) that the phase maps of ``maps`` were integrated
    over: plain (their notes say analysis study) or above a linear background. Line
    unmixing must take its crosstalk over them: the background-subtracted windows' crosstalk
    inverted on the study's plain integrals read the tiny twin's unlithiated anode as 0.06
    LiC6 and put its half lithiation at 0.614 instead of 0.555, exit 0."""
    plain = analysis_note(MapsOptions(analysis="study")) in maps.notes
    windows = analysis_windows(MapsOptions(analysis="study" if plain else "jellyroll"))
    return {name: windows[name] for name in GRAPHITE_PHASES}


def analysis_note(options: MapsOptions) -> str:
    """What ``options.analysis`` means, in words, for the maps' notes and the report."""
    if options.analysis == "study":
        return (
            "analysis used: study (plain Table 1 window integrals, d* of the raw per-voxel "
            "SAXS profiles)"
        )
    smoothing = "denoised" if options.denoised else "raw"
    return (
        "analysis used: jellyroll (Table 1 window integrals above a linear background, "
        f"d* of the {smoothing} SAXS profiles, a departure lasting from q* to "
        f"{1 - SUSTAIN_FRACTION:g} q*)"
    )


def dstar_keywords(options: MapsOptions) -> dict[str, float | int]:
    """The keywords of :func:`~jellyroll.saxs.departure_dstar_map` for ``options``: the d*
    overrides, and with the jellyroll analysis a departure that must last
    (:data:`~jellyroll.saxs.SUSTAIN_FRACTION`; the study's rule tests single points)."""
    sustain = 0.0 if options.analysis == "study" else SUSTAIN_FRACTION
    return {**options.dstar.overrides(), "sustain_fraction": sustain}


def compute_maps(
    recon: Reconstruction,
    options: MapsOptions,
    sinogram_pattern: Callable[[], tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> MapSet:
    """Phase maps when q covers the Table 1 windows, SAXS intensity and d* when it covers
    0.025-0.1 A^-1, and the attenuation map when the reconstruction has one. The cube
    ``recon.data`` may be on disk (an h5py dataset): it is read by row slabs
    (:func:`~jellyroll.conventions.row_slabs`), never whole. With ``options.q_check`` the WAXS
    axis is checked against the casing's and collectors' lines in the mean pattern
    (:mod:`jellyroll.maps.calibration`); when the reconstructed channels hold too few of
    those lines, ``sinogram_pattern()`` (q in 1/A, the scan's mean pattern over every
    channel, or None) is checked instead.

    Raises ValueError when q covers neither (no map to make), when the lines put the
    WAXS axis off (a wrong PONI distance or wavelength), or when ``recon.q_units`` is not
    1/angstrom: a 2theta axis in degrees (0.8-5.2 deg) covered the Table 1 windows and gave
    phase maps of 1.67-4.62 degrees, exit 0.
    """
    recon.require_q_in_inverse_angstrom("the reconstruction")  # run_maps names its file
    q, data, units = recon.q_A, recon.data, recon.units
    maps: dict[str, Map] = {}
    notes: list[str] = [analysis_note(options)]
    empty, zero = unusable_channels(data)
    if empty.any():  # reconstruct leaves the channels nothing measured NaN
        notes.append(
            f"{int(empty.sum())} q channels hold no value (nothing measured) and are left out: "
            f"q = {', '.join(f'{value:.4g}' for value in q[empty])} 1/A"
        )
    if zero.any():
        notes.append(
            f"{int(zero.sum())} q channels hold 0 in every pixel (nothing measured, written as "
            "0 rather than NaN: no measured channel is 0 everywhere) and are left out: "
            f"q = {', '.join(f'{value:.4g}' for value in q[zero])} 1/A"
        )
    keep = ~(empty | zero)  # the stages below skip the other channels without copying the cube
    if keep.sum() < 2:
        raise ValueError("fewer than 2 q channels hold a value: no map can be made")
    notes.extend(filter(None, [bridged_windows(q[~keep], options)]))
    q_kept = q[keep]
    default = None
    waxs_gap = uncovered(q_kept, analysis_windows(options), shoulder_bins=0)
    if waxs_gap is None:
        waxs, mean = waxs_maps(q, data, units, options, keep)
        maps.update(waxs)
        default = MapName.GRAPHITE
        notes.extend(filter(None, [partly_covered(q_kept, analysis_windows(options))]))
        notes.append(
            q_axis_note(q_kept, mean, wider=sinogram_pattern)
            if options.q_check
            else "q axis check skipped"
        )
    else:
        notes.append(f"{UNCOVERED} the Table 1 windows ({waxs_gap}): no phase maps")
    saxs_gap = uncovered(q_kept, {"saxs": SAXS_Q_RANGE}, shoulder_bins=0)
    if saxs_gap is None:
        clipped = clipped_reconstruction(recon.attrs)
        saxs, saxs_notes = saxs_maps(q, data, units, options, keep, clipped)
        maps.update(saxs)
        notes.extend(filter(None, [partly_covered(q_kept, {"saxs": SAXS_Q_RANGE}), *saxs_notes]))
        default = default or MapName.SAXS_INTENSITY
    else:
        notes.append(f"{UNCOVERED} {SAXS_Q_RANGE} 1/A ({saxs_gap}): no SAXS maps")
    if not maps:
        raise ValueError(
            f"q range [{q_kept.min():.3g}, {q_kept.max():.3g}] 1/A gives no map: for the phase "
            f"maps, {waxs_gap}; for the SAXS maps, {saxs_gap}{nm_hint(q_kept, options)}"
        )
    if recon.attenuation is not None:
        maps[MapName.ATTENUATION] = Map(recon.attenuation, "1/um")
    elif recon.attrs.get("self_absorption_corrected") is not None:
        notes.append("no attenuation sinogram (no diode): self-absorption not corrected")
    notes.extend(filter(None, [totals_spread_note(recon.attrs.get("projection_totals_spread", 0))]))
    source = str(recon.attrs.get("rotation_centre_source", ""))
    if source.startswith("estimated"):
        centre = float(recon.attrs["rotation_centre_mm"])
        notes.append(f"no rotation centre in the sinogram: {centre:.4f} mm {source}")
    return MapSet(maps, recon.x_um, recon.y_um, notes, default)


def _spans(q: np.ndarray, windows: Mapping[str, WindowSpec]) -> bool:
    """Whether the axis ``q`` (1/A) runs from below the lowest of ``windows`` to above the
    highest: then what leaves one uncovered is a hole, not the axis' unit (NaN channels
    across the LiC6 line of a scan reduced from frames were told to be 1/nm)."""
    edges = [
        (spec.q_min, spec.q_max) if isinstance(spec, QWindow) else spec for spec in windows.values()
    ]
    return float(np.min(q)) <= min(lo for lo, _ in edges) and float(np.max(q)) >= max(
        hi for _, hi in edges
    )


def nm_hint(q: np.ndarray, options: MapsOptions) -> str:
    """A hint, for the refusal of an axis ``q`` (1/A) that gives no map, when the same
    values in 1/nm would give maps: pre-integrated patterns written in pyFAI's default unit
    (q_nm^-1) without ``@units`` are read in 1/A (SPEC section 6), 10 times too large."""
    in_nm = q / 10
    families: list[dict[str, WindowSpec]] = [analysis_windows(options), {"saxs": SAXS_Q_RANGE}]
    if any(_spans(q, windows) for windows in families):  # a hole in the axis, not its unit
        return ""
    if all(uncovered(in_nm, windows, shoulder_bins=0) is not None for windows in families):
        return ""
    return (
        f". Read in 1/nm the same values ({in_nm.min():.3g}-{in_nm.max():.3g} 1/A) would give "
        "maps: if the scan's patterns were integrated already (pyFAI's default unit is "
        "q_nm^-1) and /entry/integrated/q has no @units, they were read as 1/angstrom; "
        'write @units = "1/nm" on it and reduce the scan again'
    )


def bridged_windows(left_out: np.ndarray, options: MapsOptions) -> str | None:
    """Which windows (A^-1) hold channels left out (``left_out``, q in 1/A), in words: their
    integrals interpolate linearly across them (a LiC12 channel left out at 1.805 1/A, on
    the line's flank, gave the tiny twin's LiC12 map 9 % more), None when none does."""
    windows = {**analysis_windows(options), "saxs_intensity": SAXS_Q_RANGE}
    inside = []
    for name, spec in windows.items():
        lo, hi = (spec.q_min, spec.q_max) if isinstance(spec, QWindow) else spec
        if np.any((left_out >= lo) & (left_out <= hi)):
            inside.append(f"{name} [{lo:g}, {hi:g}]")
    if not inside:
        return None
    return (
        f"channels left out lie inside {', '.join(inside)} 1/A: those integrals interpolate "
        "linearly across them (a line's top or flank among them is not measured)"
    )


MEAN_CHANNELS = 16
"""Channels of a slab summed at once into the mean pattern (the copies stay small)."""


def waxs_maps(
    q: np.ndarray, data: RowSliced, units: str, options: MapsOptions, channels: np.ndarray
) -> tuple[dict[str, Map], np.ndarray]:
    """Window integrals of Table 1 and the graphite overview, the phase labels, and the
    housing ring's map when q covers it (to find the cell without a diode); from the
    ``channels`` (n_q,) bool of ``data`` only. With them, from the same read, the mean
    pattern of the pixels over those channels (n_kept,), NaN where no pixel holds a
    value."""
    windows = analysis_windows(options)
    housing = covers(q[channels], HOUSING_WINDOW)
    kept = np.flatnonzero(channels)
    total, count = np.zeros(kept.size), np.zeros(kept.size)

    def slab_maps(slab: np.ndarray) -> dict[str, np.ndarray]:
        # the jellyroll windows carry their own background anchors; no shoulders for either
        found = phase_maps(q, slab, windows, shoulder_bins=0, channels=channels)
        if housing:
            found.update(phase_maps(q, slab, HOUSING_WINDOW, channels=channels))
        # a few channels at a time: a copy of the slab's kept channels was 2.4 times the
        # tiny cube's bytes
        for start in range(0, kept.size, MEAN_CHANNELS):
            part = slab[..., kept[start : start + MEAN_CHANNELS]]
            finite = np.isfinite(part)
            total[start : start + part.shape[-1]] += np.where(finite, part, 0).sum(
                axis=tuple(range(part.ndim - 1)), dtype=np.float64
            )
            count[start : start + part.shape[-1]] += finite.sum(axis=tuple(range(part.ndim - 1)))
        return found

    parts = [slab_maps(slab) for _, slab in row_slabs(data)]
    integrals = {name: np.concatenate([part[name] for part in parts]) for name in windows}
    out = {name: Map(values, f"{units} x 1/angstrom") for name, values in integrals.items()}
    if housing:
        values = np.concatenate([part["housing"] for part in parts])
        out[MapName.HOUSING] = Map(values, f"{units} x 1/angstrom")
    for name, family, meaning in (
        (MapName.GRAPHITE_LABEL, GRAPHITE_PHASES, GRAPHITE_LABELS),
        (MapName.NMC_LABEL, NMC_PHASES, NMC_LABELS),
    ):
        labels = phase_labels(integrals, family, threshold=options.label_threshold)
        out[name] = Map(labels.label, meaning)
    with np.errstate(invalid="ignore", divide="ignore"):
        return out, total / count


EDGE_SHARE = 0.25
"""Share of the d* values departing at the first point below the fit window above which
the maps say so: 69 % of the tiny twin's raw profiles (the study's analysis; d* 5.9 nm off),
none of its denoised ones."""


def saxs_maps(
    q: np.ndarray,
    data: RowSliced,
    units: str,
    options: MapsOptions,
    channels: np.ndarray,
    clipped: bool = False,
) -> tuple[dict[str, Map], list[str]]:
    """SAXS intensity, d* and the reason code of each voxel without one, from the
    ``channels`` (n_q,) bool of ``data`` only; notes on the denoising and on d* set by one
    point's noise. ``clipped``: the reconstruction was clipped at 0, and gets no d*
    (:func:`~jellyroll.saxs.clipped_reconstruction`)."""
    notes = []
    # d* leaves out the channels whose q is not finite
    q_used = np.where(channels, q, np.nan)
    notes.extend(filter(None, [_segment_note(int(channels.sum()), options)]))
    unmeasurable = None  # (reason code, note) of a map without any d*
    if not reaches_dstar_range(q_used):
        q_end = float(np.nanmax(q_used)) if channels.any() else float("nan")
        note = (
            f"no d*: the SAXS profiles end at q = {q_end:.3g} 1/A, below the "
            f"{DSTAR_MIN_Q_MAX_A:g} 1/A the d* rule needs (its fit window lies at shares of "
            "the q span: ending lower, it falls on the shoulder, and d* read 2.3 times the "
            "truth on the twin ending at 0.12); reduce and reconstruct the SAXS scan to a q "
            f"of {DSTAR_MIN_Q_MAX_A:g} 1/A or more"
        )
        unmeasurable = SHORT_Q_RANGE, note
    elif clipped:
        unmeasurable = CLIPPED, CLIPPED_NOTE
    intensities, parts = [], []
    for _, slab in row_slabs(data):
        intensities.append(saxs_intensity_map(q, slab, channels=channels))
        if unmeasurable is None and not options.denoised:  # d* of the raw profiles, same read
            parts.append(departure_dstar_map(q_used, slab, **dstar_keywords(options)))
    intensity = np.concatenate(intensities)
    if unmeasurable is not None:
        reason, note = unmeasurable
        notes.append(note)
        shape = data.shape[:-1]
        return _saxs_map_set(
            intensity, units, np.full(shape, np.nan, np.float32),
            np.full(shape, reason, dtype=np.int8),
        ), notes  # fmt: skip
    if options.denoised:
        denoised = denoise_profile_blocks(data, rank=options.rank, channels=channels)
        n_q = int(channels.sum())
        notes.append(denoising_note(denoised.rank, n_q, chosen=options.rank is not None))
        # d* of each denoised block as it comes: no denoised copy of the cube is kept
        parts = [
            departure_dstar_map(q_used, block, **dstar_keywords(options))
            for _, block in denoised.blocks
        ]
    result = _joined(parts, data.shape[:-1])
    d_star, reason = result.d_star_nm.astype(np.float32), result.reason_code
    # Weak voxels (no silicon: cathode, separator, outside) hold noise, not a d*.
    positive = intensity[np.isfinite(intensity) & (intensity > 0)]
    if positive.size:
        weak = ~(intensity >= options.dstar_min_intensity * bright_level(positive))
        d_star[weak] = np.nan
        reason[weak] = LOW_INTENSITY
    # without a value (outside the reconstruction, NaN profiles): not "low intensity"
    reason[~np.isfinite(intensity)] = NOT_MEASURED
    kept = np.isfinite(d_star)
    notes.extend(filter(None, [_dstar_value_note(kept, reason, result.q_star)]))
    noisy = int(np.count_nonzero(reason == NOISY_WALK))
    if noisy:
        notes.append(
            f"no d* in {noisy} voxels ({noisy / (noisy + kept.sum()):.0%} of those with a "
            f"departure, reason code {NOISY_WALK}): more than {EXCURSION_SHARE:.0%} of the "
            "points walked depart from the power law without lasting (noise at the tolerance)"
        )
    edge = float(result.at_window_edge[kept].mean()) if kept.any() else 0.0
    if edge > EDGE_SHARE:
        notes.append(
            f"d* of {edge:.0%} of the voxels departs at the first point below the fit window: "
            "one point's noise sets it (the profiles are too noisy for the 3 % rule; "
            "--analysis jellyroll denoises them)"
        )
    return _saxs_map_set(intensity, units, d_star, reason), notes


def _saxs_map_set(
    intensity: np.ndarray, units: str, d_star: np.ndarray, reason: np.ndarray
) -> dict[str, Map]:
    """The SAXS maps: intensity (in ``units`` x 1/A), d* (nm) and d*'s reason codes (their
    units say what each code means)."""
    reasons = ", ".join(f"{code} {text}" for code, text in REASONS.items())
    return {
        MapName.SAXS_INTENSITY: Map(intensity, f"{units} x 1/angstrom"),
        MapName.D_STAR: Map(d_star, "nm"),
        MapName.D_STAR_REASON: Map(reason, reasons),
    }


def _segment_note(n_channels: int, options: MapsOptions) -> str | None:
    """Why no voxel can have a d* when the ``n_channels`` q channels used are fewer than the
    d* method's ``min_points`` (its segment of contiguous channels must hold that many), in
    words; None when they are not. ValueError when ``min_points`` was given in the options:
    min_points 600 on 500 channels gave a d* map without a value, exit 0, and no note."""
    min_points = int(dstar_parameters(**options.dstar.overrides())["min_points"])
    if n_channels >= min_points:
        return None
    if options.dstar.min_points is not None:
        raise ValueError(
            f"d* min_points {min_points} (the maps' dstar options) exceeds the {n_channels} q "
            "channels of the reconstruction that hold a value: no profile can give a d*; "
            f"give min_points <= {n_channels}, or reconstruct more channels"
        )
    return (
        f"no d*: the method needs {min_points} contiguous q channels (min_points) and the "
        f"reconstruction holds {n_channels}; reconstruct more channels (--channels), or lower "
        "min_points in the maps' dstar options"
    )


DSTAR_NM_Q_STAR = 0.3
"""Median q* (1/A) above which the maps say that q may be in 1/nm read as 1/A: d* under
2.1 nm lies far below the study's 9-15 nm and near the atomic scale, where no SAXS power
law holds; a SAXS scan integrated in 1/nm (pyFAI's default) without @units gave the long
camera's d* 1.16 nm for 11.6 nm, exit 0. A note, not a refusal: small domains exist."""


def _dstar_value_note(valid: np.ndarray, reason: np.ndarray, q_star: np.ndarray) -> str | None:
    """What the d* map's values say, in words: why none has a value (the count of each
    reason code of ``reason``, any shape), or that their median q* (``q_star``, 1/A, over
    the ``valid`` voxels) lies above :data:`DSTAR_NM_Q_STAR`; None otherwise."""
    if not valid.any():
        codes, counts = np.unique(reason[reason != VALID], return_counts=True)
        why = ", ".join(
            f"{count} {REASONS[int(code)]}"
            for code, count in sorted(zip(codes, counts, strict=True), key=lambda c: -c[1])
        )
        return f"no voxel has a d* ({why or 'no voxel'})"
    median = float(np.median(q_star[valid]))
    if median <= DSTAR_NM_Q_STAR:
        return None
    return (
        f"median d* {2 * math.pi / median / 10:.3g} nm (q* {median:.3g} 1/A): if the scan's "
        "patterns were integrated already in 1/nm (pyFAI's default, q_nm^-1) with no @units on "
        "/entry/integrated/q, every q was read 10 times too large and d* is 10 times too "
        'small: write @units = "1/nm" on it and reduce the scan again'
    )


HOT_SHARE = 0.02
"""Share of a map's brightest positive SAXS intensities searched for hot voxels."""
HOT_GAP = 3.0
"""Ratio between consecutive values of that brightest share that sets hot voxels apart:
real intensities rise smoothly to their maximum, a cluster of hot voxels stands off."""


def _joined(parts: list[DStarMap], shape: tuple[int, ...]) -> DStarMap:
    """One :class:`DStarMap` of ``shape`` from those of consecutive blocks of its profiles."""
    fields = ("d_star_nm", "q_star", "slope", "reason_code", "at_window_edge")
    joined = {name: np.concatenate([getattr(p, name) for p in parts]) for name in fields}
    return DStarMap(**{name: values.reshape(shape) for name, values in joined.items()})


def bright_level(positive: np.ndarray) -> float:
    """The bright level of a map's positive SAXS intensities, the reference of the d*
    threshold: their 99th percentile, without the hot voxels, the values above the first
    jump by more than :data:`HOT_GAP` among the brightest :data:`HOT_SHARE` (54 hot voxels
    at 50 times the brightest, 1.3 % of the tiny twin's positive values, raised the plain
    99th percentile above every real voxel, whose d* was blanked). A bright anode of a few
    percent of the map, with no such jump, keeps its own 99th percentile."""
    ordered = np.sort(np.asarray(positive, dtype=np.float64).ravel())
    top = ordered[-max(2, math.ceil(HOT_SHARE * ordered.size)) :]
    jumps = np.flatnonzero(top[1:] > HOT_GAP * top[:-1])
    if jumps.size:
        ordered = ordered[: ordered.size - top.size + jumps[0] + 1]
    return float(np.percentile(ordered, 99))


def denoising_note(rank: int, n_q: int, *, chosen: bool) -> str:
    """What the low-rank denoising did, in words; warns when the automatic rank kept so many
    components that the profiles were barely denoised."""
    note = f"SAXS profiles denoised with {rank} of {n_q} components"
    if chosen or rank <= max(8, n_q // 10):
        return note
    return (
        f"{note}: barely denoised, the profiles do not split into a few components above a "
        "noise floor (reconstruction artefacts, or noise not proportional to |I|); "
        "choose the number of components with --rank"
    )

"""``jellyroll report``: the HTML report of one or more cells' results files.

It assembles the results and the figures of :mod:`jellyroll.figures`; every number it shows
was computed by a stage and read from its results file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jellyroll import __version__, figures
from jellyroll.defects.agglomerates import RESOLVED_PIXELS, UNRESOLVED
from jellyroll.defects.regions import REGIONS
from jellyroll.defects.truth import (
    compare_with_truth,
    read_true_agglomerates,
    true_defect_share,
)
from jellyroll.figures import beside_threshold
from jellyroll.io.lock import output_lock
from jellyroll.io.provenance import (
    file_checksum,
    package_versions,
    read_provenance,
    refuse_overwrite,
)
from jellyroll.locate.link import size_bin_text
from jellyroll.locate.link_run import read_link
from jellyroll.operando.timeline import SOC_UNITS
from jellyroll.report.html import NO_VALUE, Report
from jellyroll.report.options import ReportOptions
from jellyroll.results import (
    GRAPHITE_PHASE_MAPS,
    NMC_PHASE_MAPS,
    Diagnosis,
    MapName,
    require_diagnosis,
)
from jellyroll.results.nxct import read_displacement, read_fused_cuts, read_nxct
from jellyroll.results.operando import read_operando
from jellyroll.results.store import RunFileError
from jellyroll.saxs import (
    DEPARTURE_TOLERANCE,
    NO_DSTAR_SHORT_Q,
    DStarResult,
    departure_dstar,
    reaches_dstar_range,
)

AGGLOMERATE_COLUMNS = (
    "id", "x_um", "y_um", "equivalent_diameter_um", "case", "truncated", "excess_intensity",
    "d_star_inside_nm", "d_star_ring_nm", "bend_id",
)  # fmt: skip
"""Columns of the agglomerate table in the report (``truncated``: its diameter is a lower
bound; without it a 70 um case-B agglomerate cut by the map read as measured whole)."""


NOT_RECORDED = "not recorded"
"""Shown for a summary value the results file lacks (written by an older version)."""


def summary_table(cells: Iterable[Diagnosis]) -> pd.DataFrame:
    """One row per cell, from each diagnosis's summary; a value the summary lacks is
    shown as not recorded, never as 0."""
    cells = list(cells)
    critical = _critical_diameters(cells)
    shared = len(set(critical)) == 1
    case_b = (
        f"above {critical[0]:g} um (case B)" if shared else "above the critical diameter (case B)"
    )
    rows = []
    for result, diameter in zip(cells, critical, strict=True):
        values = result.summary

        def value(key: str, scale: float = 1.0, values=values) -> float | str:
            return scale * values[key] if key in values else NOT_RECORDED

        rows.append(
            {
                "cell": result.label,
                "agglomerates": value("agglomerates"),
                "case A": value("case_a"),
                case_b: value("case_b"),
                **({} if shared else {"critical diameter (um)": diameter}),
                f"unresolved (< {RESOLVED_PIXELS:g} px or cut by the map)": value("unresolved"),
                "defect share of anode (%)": value("defect_share", 100.0),
                "median radius (um)": value("median_radius_um"),
                "bends": _bends(value("bends")),
                "median d* (nm)": value("median_d_star_nm"),
                **{
                    f"{figures.GRAPHITE_NAMES[name]} share": value(f"{name}_share")
                    for name in GRAPHITE_PHASE_MAPS
                },
            }
        )
    return pd.DataFrame(rows, dtype=object)


NOT_TRACED = "collector not traced"
"""Shown for the bends of a cell whose Cu collector was not traced (NaN in its summary):
not measured, which is not none found."""


def _bends(count: float | str) -> float | str:
    return NOT_TRACED if isinstance(count, float) and np.isnan(count) else count


def _critical_diameters(cells: list[Diagnosis]) -> list[float]:
    """The critical diameter (um) each cell's diagnosis classified with, in the order of
    ``cells`` (not by cell name: two diagnoses of one cell, with other critical diameters,
    are compared side by side); a results file that does not record it is refused (its
    case A / B counts cannot be read without it)."""
    found = []
    for result in cells:
        if "critical_diameter_um" not in result.summary:
            raise RunFileError(
                f"{result.path}: its summary does not record critical_diameter_um (written by "
                "an older jellyroll?), so its case A / B counts cannot be shown; diagnose its "
                "run files again (`jellyroll diagnose`)"
            )
        found.append(float(result.summary["critical_diameter_um"]))
    return found


def _critical_note(cells: list[Diagnosis], critical: list[float]) -> str:
    """'50 um' when every cell used the same critical diameter, else one per cell."""
    if len(set(critical)) == 1:
        return f"{critical[0]:g} um"
    return ", ".join(f"{d:g} um for {c.label}" for c, d in zip(cells, critical, strict=True))


def distinct_labels(cells: list[Diagnosis]) -> list[Diagnosis]:
    """``cells`` with labels that tell them apart: a label shared by several cells gets the
    cell's name, or its results file where the names are shared too (two diagnoses of one
    cell), in brackets. A results file given twice is refused."""
    paths = [c.path.resolve() for c in cells if c.path is not None]
    twice = sorted({str(p) for p in paths if paths.count(p) > 1})
    if twice:
        raise ValueError(f"{', '.join(twice)}: given twice; give each results file once")
    labels = [c.label for c in cells]
    shown = []
    for result in cells:
        if labels.count(result.label) == 1:
            shown.append(result)
            continue
        same = [c for c in cells if c.label == result.label]
        names = [c.name for c in same]
        tag = result.name if names.count(result.name) == 1 else _path_tag(result, same)
        shown.append(dataclasses.replace(result, label=f"{result.label} ({tag})"))
    return shown


def _path_tag(result: Diagnosis, same: list[Diagnosis]) -> str:
    """The part of ``result``'s results file path that differs from the others in ``same``
    (``runA`` of ``runA/fresh/results.h5`` and ``runB/fresh/results.h5``)."""
    parts = [Path(c.path or "").resolve().parts for c in same]
    mine = Path(result.path or "").resolve().parts
    head = len(Path(os.path.commonpath([Path(*p) for p in parts])).parts)
    tail = 0
    while tail < min(map(len, parts)) - head and len({p[len(p) - 1 - tail] for p in parts}) == 1:
        tail += 1
    return "/".join(mine[head : len(mine) - tail]) or str(result.path)


def mathtext_escaped(text: str) -> str:
    """``text`` shown as written by matplotlib: a ``$`` would start mathtext."""
    return text.replace("$", r"\$")


def run_report(
    results: Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    options: ReportOptions | None = None,
    *,
    stages: list[dict[str, Any]] | None = None,
    run_facts: Mapping[str, Any] | None = None,
    nxct: Mapping[str, str | os.PathLike[str]] | None = None,
    link: Mapping[str, str | os.PathLike[str]] | None = None,
    truth: Mapping[str, str | os.PathLike[str]] | None = None,
    operando: Mapping[str, str | os.PathLike[str]] | None = None,
) -> Path:
    """Write the self-contained HTML report of the cells' results files to ``output``.

    ``stages`` (stage, status, seconds) and ``run_facts`` (settings of a pipeline run) are
    shown in the report's run section when given; ``nxct`` (cell name -> NXCT file of
    ``jellyroll nxct``) adds each cell's fused views, collector displacement and 3D bends;
    ``link`` (cell name -> link file of :func:`jellyroll.locate.link_run.run_link`) adds
    the slice in the volume, the agglomerates linked to the 3D bends and the dossiers;
    ``truth`` (cell name -> truth.h5 of a digital twin) adds found-vs-truth per cell.
    ``operando`` (cell name -> file of ``jellyroll operando``) its charge series.
    """
    options = options or ReportOptions()
    results = list(results)
    inputs = [
        *results,
        *(path for files in (nxct, link, truth, operando) if files for path in files.values()),
    ]
    refuse_overwrite([output], inputs)
    cells = distinct_labels([require_diagnosis(path) for path in results])
    _refuse_files_made_from_others(cells, link, operando)
    critical = _critical_diameters(cells)
    report = Report(options.title)
    overview = report.section("Summary")
    overview.table(summary_table(cells), "per cell")
    overview.note(
        "Agglomerates are bright excess spots of the SAXS intensity map; case B (above the "
        f"critical equivalent diameter of {_critical_note(cells, critical)}) bend the Cu "
        "collector and are "
        "surrounded by compacted, poorly lithiated anode (Lübke et al., Energy Environ. Sci. "
        f"2024, 17, 5048). Below {RESOLVED_PIXELS:g} pixels a size is not resolved: where the "
        f"critical diameter is below {RESOLVED_PIXELS:g} pixels too, such spots are counted as "
        "unresolved, never as case A or B."
    )
    if len(cells) > 1:
        _comparison_section(report, cells)
    for note in (monitor_mismatch(cells), pixel_mismatch(cells)):
        if note:
            overview.note(note)
    for result, diameter, limits in zip(cells, critical, shared_colour_limits(cells), strict=True):
        _cell_section(report, result, diameter, limits)
        if truth and result.name in truth:
            _truth_section(report, result, Path(truth[result.name]), diameter)
        if nxct and result.name in nxct:
            _nxct_section(report, result.label, Path(nxct[result.name]))
        if link and result.name in link:
            _link_section(report, result.label, Path(link[result.name]), diameter)
        if operando and result.name in operando:
            _operando_section(report, result.label, Path(operando[result.name]))
    run = report.section("Run")
    run.facts({"jellyroll": __version__, "cells": ", ".join(c.name for c in cells)})
    if stages:
        run.table(pd.DataFrame(stages), "stages (skipped ones were up to date)")
    run.table(
        pd.DataFrame([{"cell": c.name, "results": str(c.path)} for c in cells]), "results files"
    )
    if run_facts:
        run.facts(run_facts)
    run.facts(package_versions())
    with output_lock(output):
        return report.write(output, inputs=inputs)


MONITOR_MATCH = 1.05
"""Largest ratio of two cells' SAXS monitor references (``saxs_monitor_reference`` of their
summaries) at which their SAXS intensities share one colour scale."""


def shared_colour_limits(cells: Iterable[Diagnosis]) -> list[dict[str, tuple[float, float]]]:
    """Per cell, one colour scale per quantity over every cell's maps and unrolled maps
    (:func:`jellyroll.figures.colour_limits`), for the cells shown one beside the other;
    but the SAXS intensity's the cell's own where the cells' intensities are counts at
    monitor readings more than :data:`MONITOR_MATCH` apart (:func:`monitor_mismatch`): at
    half the flux, the same cell drew half as bright."""
    cells = list(cells)
    pooled = [_colour_maps(c) for c in cells]
    shared = figures.colour_limits([m for maps in pooled for m in maps])
    if not monitor_mismatch(cells):
        return [shared for _ in cells]
    return [
        {**shared, "saxs_intensity": figures.colour_limits(maps)["saxs_intensity"]}
        for maps in pooled
    ]


def _colour_maps(cell: Diagnosis) -> list[dict[str, np.ndarray]]:
    """A cell's maps and unrolled maps by name, for :func:`jellyroll.figures.colour_limits`."""
    return [{str(n): i.values for n, i in cell.maps.maps.items()},
            {str(n): v.data for n, v in cell.unrolled.items()}]  # fmt: skip


def pixel_mismatch(cells: list[Diagnosis]) -> str:
    """A note when the cells' maps have different pixel sizes (more than 1 % apart), else
    "": the agglomerates resolved, their case counts and the defect share then differ by
    the measurement. One cell mapped at 20 and at 10 um read 0 and 9 case A, 10 and 0
    unresolved, a share of 1.69 and 1.38 % side by side, with no word of it."""
    sizes = [float(c.pixel_size_um) for c in cells]
    if len(sizes) < 2 or max(sizes) <= 1.01 * min(sizes):
        return ""
    listed = ", ".join(f"{c.label} {size:g} um" for c, size in zip(cells, sizes, strict=True))
    return (
        f"The cells' maps have different pixel sizes ({listed}): what each resolves differs "
        f"(a spot under {RESOLVED_PIXELS:g} pixels is unresolved: {RESOLVED_PIXELS:g} times "
        "each pixel size), and so do the case counts, the bends found and the defect share "
        "by the measurement alone. Compare cells mapped alike."
    )


def monitor_mismatch(cells: list[Diagnosis]) -> str:
    """What to say where the cells' SAXS intensities are counts at monitor readings more
    than :data:`MONITOR_MATCH` apart (each reduction normalises to its scan's median
    monitor), else ""."""
    references = [float(c.summary.get("saxs_monitor_reference", np.nan)) for c in cells]
    known = [r for r in references if np.isfinite(r) and r > 0]
    if len(known) < 2 or max(known) <= MONITOR_MATCH * min(known):
        return ""
    readings = ", ".join(
        f"{c.label} {r:.4g}" for c, r in zip(cells, references, strict=True) if np.isfinite(r)
    )
    return (
        f"The cells' SAXS intensities are counts at different monitor readings ({readings}): "
        "each cell's SAXS intensity map has its own colour scale; to compare their "
        "brightness, scale each by its reading's ratio to the other's, and so each "
        "agglomerate's excess intensity (in its map's units). Every ratio (phase shares, "
        "d*, the agglomerates' sizes and cases) compares as it is."
    )


def _cell_section(
    report: Report, result: Diagnosis, critical: float, limits: Mapping[str, tuple[float, float]]
) -> None:
    """One cell's figures and tables; ``limits``: the colour limits shared by every cell
    (:func:`jellyroll.figures.colour_limits`)."""
    maps = {name: item.values for name, item in result.maps.maps.items()}
    x_um, y_um = result.maps.x_um, result.maps.y_um
    pixel = result.pixel_size_um
    section = report.section(f"Cell {result.label}")
    share = result.summary.get("defect_share")
    section.facts(
        {
            "pixel (translation step)": f"{pixel:g} um",
            "agglomerates": _case_counts(result.summary),
            "defect share of the anode": NOT_RECORDED
            if share is None
            else f"{_percent(share, 1)} (the study: < 10 %)",
            "agglomerates deconvolved by (PSF FWHM)": _psf(result.summary),
        }
    )
    if all(name in maps for name in (*GRAPHITE_PHASE_MAPS, MapName.NMC_LITHIATED)):
        section.figure(
            figures.composites_figure(maps, x_um, y_um),
            "Phase composites (Table 1 windows)",
            name="composites",
        )
    section.figure(
        figures.saxs_figure(
            maps[MapName.SAXS_INTENSITY],
            maps[MapName.D_STAR],
            x_um,
            y_um,
            result.agglomerates,
            limits,
        ),
        "SAXS intensity with the agglomerates (cyan: case A, red: case B, grey: unresolved) "
        "and the d* map (white: no valid d*)",
        name="saxs",
    )
    if result.unrolled:
        view = next(iter(result.unrolled.values()))
        along = (
            "along the Cu collector traced in the attenuation map (rows: radial offset from "
            "it, one pitch deep)"
            if view.along == "spiral"
            else "around the cell centre (polar: the collector was not traced)"
        )
        section.figure(
            figures.unrolled_figure(
                {name: v.data for name, v in result.unrolled.items()},
                view.arc_length_um,
                view.radius_um,
                view.along,
                limits,
            ),
            f"Every modality unrolled at the same arc positions, {along} (study Fig. 2)",
            name="unrolled",
        )
    if len(result.saxs_profiles):
        _saxs_profiles(section, result)
    section.figure(
        figures.histogram_figure(
            result.agglomerates, critical, maps[MapName.D_STAR], maps[MapName.SAXS_INTENSITY], pixel
        ),
        "Agglomerate sizes per case with the critical diameter, insets: the largest "
        "agglomerates in the SAXS map with their fitted ellipses (study Fig. 6); d* "
        "distribution",
        name="histogram",
    )
    if critical < RESOLVED_PIXELS * pixel:
        section.note(
            f"The critical diameter ({critical:g} um) is only {critical / pixel:.1f} "
            f"pixels of {pixel:g} um here: agglomerates below {RESOLVED_PIXELS:g} pixels "
            f"({RESOLVED_PIXELS * pixel:g} um) are reported as unresolved. Scan with a "
            "translation step of at most a third of the critical diameter to classify them."
        )
    columns = [c for c in AGGLOMERATE_COLUMNS if c in result.agglomerates.columns]
    section.table(
        result.agglomerates[columns] if columns else result.agglomerates,
        "agglomerates (truncated: cut by the map's edge or by pixels without value, its "
        "diameter a lower bound)",
        formats={"equivalent_diameter_um": beside_threshold(critical, "{:.3g}")},
    )
    if len(result.bends):
        section.table(result.bends, f"bends of the Cu collector ({BEND_SIGN})")
    section.figure(
        figures.lithiation_figure(result.lithiation),
        "Lithiation inside each defect (left bar) and in the ring around it (right bar, pale)",
        name="lithiation",
    )
    for note in result.notes:
        section.note(note)


BEND_SIGN = "amplitude: outwards positive; depth limited: the amplitude a lower bound"
"""How to read a bend table's amplitude (:func:`jellyroll.defects.bends.find_bends`)."""


def _case_counts(summary: Mapping[str, Any]) -> str:
    """'12: 9 case A, 2 case B, 1 unresolved' from a diagnosis summary; a count it lacks
    is said to be not recorded."""
    parts = [
        f"{summary[key]} {title}" if key in summary else f"{title} {NOT_RECORDED}"
        for key, title in (("case_a", "case A"), ("case_b", "case B"), ("unresolved", UNRESOLVED))
    ]
    return f"{summary.get('agglomerates', NOT_RECORDED)}: " + ", ".join(parts)


WINDOW_EDGE_NOTE = (
    "departs at the first point below the fit window: one point's noise, or a profile that "
    "bends all along the window, can set it"
)


def _region_dstar(
    q: np.ndarray, profile: np.ndarray, overrides: dict[str, float | int] | None
) -> DStarResult:
    """d* of a region's averaged profile, its channels without a value left out of the q
    grid as the maps stage leaves out the cube's empty channels (a NaN intensity breaks the
    run instead: one empty channel at q 0.21 moved the fit window and gave 9.85 nm where
    the d* map gave 9.64 for the same profile, exit 0). None where the q axis ends short of
    the d* range, as the maps stage (:func:`~jellyroll.saxs.reaches_dstar_range`)."""
    q = np.where(np.isfinite(profile), q, np.nan)
    if not reaches_dstar_range(q):
        return NO_DSTAR_SHORT_Q
    return departure_dstar(q, profile, **(overrides or {}))


def _saxs_profiles(section, result: Diagnosis) -> None:
    """Region-averaged SAXS profiles with their power-law fits and d* (study Fig. 4), with
    the d* parameters the cell's d* map was made with (recorded by the diagnosis)."""
    profiles = result.saxs_profiles
    q = profiles["q_A"].to_numpy(dtype=float)
    regions = [name for name in REGIONS if name in profiles]
    overrides = result.dstar_parameters
    fits = {
        name: _region_dstar(q, profiles[name].to_numpy(dtype=float), overrides) for name in regions
    }
    given = ", ".join(f"{name} {value:g}" for name, value in (overrides or {}).items())
    section.figure(
        figures.saxs_profiles_figure(
            profiles, fits, tolerance=(overrides or {}).get("tolerance", DEPARTURE_TOLERANCE)
        ),
        "SAXS profiles averaged over the regular anode, the agglomerates and the bent "
        "collector regions, with the power-law fit and q* of the departure method "
        f"(jellyroll.saxs.departure_dstar, the study's parameters{'; ' + given if given else ''}"
        "; study Fig. 4)",
        name="saxs_profiles",
    )
    if overrides is None:
        section.note(
            "The d* parameters the d* map was made with are not recorded with this results "
            "file: the region-averaged d* use the study's, which [maps.dstar] may have changed"
        )
    section.table(
        pd.DataFrame(
            [
                {
                    "region": name,
                    "d* (nm)": fit.d_star_nm,
                    "q* (1/A)": fit.q_star,
                    "power-law exponent": fit.slope,
                    "note": fit.reason or (WINDOW_EDGE_NOTE if fit.at_window_edge else ""),
                }
                for name, fit in fits.items()
            ]
        ),
        "d* of the region-averaged profiles",
    )


def _comparison_section(report: Report, cells: list[Diagnosis]) -> None:
    """The states side by side on one page: phases, agglomerates, defect share, d*."""
    rows = []
    for result in cells:
        maps = result.maps
        rows.append(
            {
                "label": mathtext_escaped(result.label),
                "graphite": {
                    str(n): float(result.summary.get(f"{n}_share", np.nan))
                    for n in GRAPHITE_PHASE_MAPS
                },
                "nmc": {  # a cell without NMC maps has no shares: no bar, not a share of 1
                    str(n): float(result.summary[f"{n}_share"])
                    for n in NMC_PHASE_MAPS
                    if f"{n}_share" in result.summary
                },
                "cases": {  # a count the summary lacks is left out, not drawn as 0
                    case: result.summary[key]
                    for case, key in (("A", "case_a"), ("B", "case_b"), (UNRESOLVED, "unresolved"))
                    if key in result.summary
                },
                "defect_share": float(result.summary.get("defect_share", np.nan)),
                "d_star": maps[MapName.D_STAR],
            }
        )
    section = report.section("States compared")
    section.figure(
        figures.comparison_figure(rows),
        "The cells side by side: graphite and NMC phase shares, agglomerates per case with "
        "the defect share of the anode, and the d* distributions",
        name="comparison",
    )


def _truth_section(report: Report, result: Diagnosis, path: Path, critical: float) -> None:
    """Found vs the digital twin's true agglomerates: recall, precision, size, A/B;
    ``critical``: the diameter (um) the cell's found cases were classified at."""
    truth = read_true_agglomerates(path)
    # the true case at the diameter the cell was classified at (a truth file without
    # nominal diameters keeps the twin's own)
    at = critical if "nominal_diameter_um" in truth else None
    found = compare_with_truth(result.agglomerates, truth, result.pixel_size_um, at)
    section = report.section(f"Cell {result.label}: found vs truth (digital twin)")
    section.facts(
        {
            "truth": str(path),
            "true agglomerates in the slice": len(truth),
            "found": found.n_found,
            "recall (true ones found)": _percent(found.recall, 0),
            "precision (found ones true)": _percent(found.precision, 0),
            "median size error": _percent(found.median_size_error, 1),
            "class agreement (found case = true case)": _percent(found.class_agreement, 0),
            "defect share of the anode, found / true": (
                f"{_percent(result.summary.get('defect_share'))} / "
                f"{_percent(true_defect_share(path))}"
            ),
        }
    )
    section.table(
        found.confusion.reset_index(names="true case"),
        "true case (rows) against found case (columns)",
    )
    section.table(
        found.pairs,
        "true agglomerates and their matches",
        float_format="{:.1f}",
        # a found 50.04 um case B read "50.0" beside a critical diameter of 50 (case A's)
        formats={"found_diameter_um": beside_threshold(critical, "{:.1f}")},
    )


def _nxct_section(report: Report, label: str, path: Path) -> None:
    """The fused X-ray / neutron views, the collector displacement and the 3D bends."""
    found = read_nxct(path)
    nz, ny, nx = found.shape
    displacement = read_displacement(path)
    section = report.section(f"Cell {label}: neutron and X-ray CT")
    section.figure(
        figures.orthogonal_views_figure(*read_fused_cuts(path), found.voxel_um),
        "Registered NXCT fused as RGB (red: X-ray, cyan: neutron), cuts through the centre",
        name="nxct_views",
    )
    if displacement is not None:
        section.figure(
            figures.bends_figure(*displacement),
            "Cu collector displacement off its smooth spiral, unrolled along the layer",
            name="nxct_bends",
        )
    section.facts(
        {
            "registration": f"{found.metric} {found.metric_value:.4g} in {found.seconds:.1f} s",
            "grid": f"{nz} x {ny} x {nx} voxels of {found.voxel_um:g} um",
        }
    )
    if len(found.bends):
        section.table(found.bends, f"bends of the Cu collector in 3D (X-ray frame; {BEND_SIGN})")
    for note in found.notes:
        section.note(note)


LINK_TABLE_COLUMNS = (
    "id", "case", "equivalent_diameter_um", "bend3d_id", "bend3d_distance_um",
    "bend3d_amplitude_um", "bend3d_extent_axial_um", "bend3d_extent_arc_um",
)  # fmt: skip
"""Columns of the linked table in the report."""


def size_bins_table(bins: pd.DataFrame) -> pd.DataFrame:
    """The size bins of :func:`jellyroll.locate.link.bend_fraction_by_size` as the report
    shows them: one column of bin text, the counts and the fraction on a bend."""
    return pd.DataFrame(
        {
            "equivalent diameter": [
                size_bin_text(lower, upper)
                for lower, upper in zip(bins["lower_um"], bins["upper_um"], strict=True)
            ],
            "agglomerates": bins["count"],
            "on a bend": bins["on_bend"],
            "fraction on a bend": bins["fraction"],
        }
    )


def _refuse_files_made_from_others(
    cells: Iterable[Diagnosis],
    link: Mapping[str, str | os.PathLike[str]] | None,
    operando: Mapping[str, str | os.PathLike[str]] | None,
) -> None:
    """ValueError where a cell's link file, or its operando file whose zones came from a
    SAXS file, was not made from that cell's results file as it is now: another cell's link
    file was shown under this cell's name, its agglomerates, bends and threshold as this
    cell's, exit 0. A link file records the results file it was made from; an operando file
    its SAXS file (the results file, or the SAXS run the results were made from: any file
    the results file's own record lists passes). Matched by checksum: a copy passes. A file
    without a record, or an operando file made without a SAXS file, is not checked."""
    for cell in cells:
        if cell.path is None:
            continue
        checksum = ""  # taken once, where a file is checked
        for command, files in (("link", link or {}), ("operando", operando or {})):
            if cell.name not in files:
                continue
            path = Path(files[cell.name])
            record = read_provenance(path, command)
            if record is None:
                continue
            marks = {checksum := checksum or file_checksum(cell.path)}
            if command == "operando":
                if not record.get("configuration", {}).get("zones_from"):
                    continue  # no zones: nothing of the results file in it
                marks |= set((read_provenance(cell.path, "run") or {}).get("inputs", {}).values())
            if marks.isdisjoint(record.get("inputs", {}).values()):
                raise ValueError(
                    f"{path} (given with --{command} for cell {cell.name!r}) was not made "
                    f"from the results file {cell.path} as it is now: its record "
                    f"(/entry/provenance/{command}) lists neither that file's checksum nor "
                    "those of the files it was made from. It is another cell's, or the "
                    f"results file was made again since; give this cell's own {command} file "
                    f"(--{command} {cell.name}=PATH), or run `jellyroll {command}` again for "
                    "this cell"
                )


def _link_section(report: Report, label: str, path: Path, critical: float) -> None:
    """The slice in the X-ray volume, the agglomerates linked to the 3D bends, the share on
    a bend per size bin with the measured threshold, and the dossiers (study Fig. 1e, 3);
    ``critical``: the diameter (um) the cell's cases were classified at."""
    found = read_link(path)
    section = report.section(f"Cell {label}: the slice in the volume, defects in 3D")
    figures = found.figures
    if "slice" in figures:
        section.png(
            figures["slice"].read_bytes(),
            "The SWAXS-CT slice (orange line) in a vertical cut of the X-ray volume through "
            "the map's centre, heights above the slice, with the similarity against the "
            "height of the map's origin in the X-ray frame when the location recorded it "
            "(study Fig. 1e)",
            name="slice_in_volume",
        )
    linked = found.linked
    on_bend = int((linked["bend3d_id"] > 0).sum())
    section.facts(
        {
            "agglomerates on a 3D bend": f"{on_bend} of {len(linked)}",
            "threshold measured (bent above, none below)": (
                f"{found.threshold_um:.1f} um, {found.misclassified} on the wrong side"
                if np.isfinite(found.threshold_um)
                else "not measurable (all agglomerates on one side)"
            ),
        }
    )
    columns = [c for c in LINK_TABLE_COLUMNS if c in linked.columns]
    section.table(
        linked[columns],
        "agglomerates and the 3D bend each sits on (0: none)",
        float_format="{:.1f}",
        formats={"equivalent_diameter_um": beside_threshold(critical, "{:.1f}")},
    )
    section.table(
        size_bins_table(found.size_bins),
        "share of agglomerates on a bent collector per size bin (a bin holds its lower edge, "
        "not its upper, except the last)",
    )
    if "fractions" in figures:
        section.png(
            figures["fractions"].read_bytes(),
            "Share of agglomerates on a bent collector per size bin, with the assumed critical "
            "diameter and the threshold measured from the volume",
            name="bend_fractions",
        )
    bent = set(linked.loc[linked["bend3d_id"] > 0, "id"].astype(int))
    for name, png in figures.items():
        if name.startswith("dossier_"):
            defect = int(name.removeprefix("dossier_"))
            # a defect on no 3D bend has no X-ray slices in its dossier
            through = "; X-ray slices through its 3D bend" if defect in bent else ""
            section.png(
                png.read_bytes(),
                f"Defect {defect} through every modality, unrolled along the Cu collector, "
                f"with profiles across the layer{through} (study Fig. 3)",
                name=name,
            )
    for note in found.notes:
        section.note(note)


def _operando_section(report: Report, label: str, path: Path) -> None:
    """The charge series: composites per step, share curves, cores, zone table."""
    from jellyroll.operando import figures as operando_figures

    found = read_operando(path)
    section = report.section(f"Cell {label}: operando charge")
    section.figure(
        operando_figures.contact_sheet(found),
        "Graphite phases per step (LiC6 green, LiC12 blue, poorly lithiated red), zones outlined",
        name="operando_sheet",
    )
    # without a state of charge the curves, half-way points and lags run along time
    by_soc = found.soc_units == SOC_UNITS
    section.figure(
        operando_figures.curves_figure(found),
        "Share of each graphite phase per region against the "
        + ("state of charge" if by_soc else f"time ({found.soc_units})"),
        name="operando_curves",
    )
    section.figure(
        operando_figures.core_figure(found),
        "Poorly lithiated core of each zone",
        name="operando_cores",
    )
    section.facts({"state of charge from": found.soc_source, "steps": str(len(found.steps))})
    if len(found.zones_table):
        # along time, a lag of 0.09 h read as 0.09 of the charge and a core shrinking by
        # 1234 um^2 per hour as per state of charge: the headings name the axis
        along = "state of charge" if by_soc else found.soc_units
        zones = found.zones_table.rename(
            columns={
                "soc_half": f"half lithiation ({along})",
                "lag_soc": f"lag ({along})",
                "shrink_rate_um2_per_soc": f"core shrink rate (um^2 per {along})",
            }
        )
        section.table(zones, "damaged zones: lag behind the regular anode")
    for note in found.notes:
        section.note(note)


def _psf(summary: Mapping[str, Any]) -> str:
    """The PSF the agglomerate sizes were deconvolved by, and the one the map measures."""
    used = summary.get("psf_fwhm_um")
    if used is None:
        return NOT_RECORDED
    measured = float(summary.get("psf_measured_fwhm_um", np.nan))
    how = "measured on the map" if summary.get("psf_measured") else "given"
    seen = f", the map's layers measure {measured:.3g} um" if np.isfinite(measured) else ""
    return f"{used:.3g} um ({how}{'' if summary.get('psf_measured') else seen})"


def _percent(fraction: float | None, digits: int = 2) -> str:
    """'3.14 %' of a fraction, not recorded (None) or no value (NaN: no anode pixel)."""
    if fraction is None:
        return NOT_RECORDED
    return f"{100 * fraction:.{digits}f} %" if np.isfinite(fraction) else NO_VALUE

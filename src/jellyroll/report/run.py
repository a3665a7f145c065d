"""``jellyroll report``: the HTML report of one or more cells' results files.

It assembles the results and the figures of :mod:`jellyroll.figures`; every number it shows
was computed by a stage and read from its results file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jellyroll import __version__, figures
from jellyroll.io.lock import output_lock
from jellyroll.io.provenance import package_versions
from jellyroll.report.html import Report
from jellyroll.report.options import ReportOptions
from jellyroll.results import GRAPHITE_PHASE_MAPS, Diagnosis, MapName, require_diagnosis
from jellyroll.results.nxct import read_displacement, read_fused_cuts, read_nxct
from jellyroll.results.operando import read_operando

PHASE_TITLES = ("LiC6", "LiC12", "poorly lithiated")
"""Report names of :data:`jellyroll.results.GRAPHITE_PHASE_MAPS`, in their order."""
AGGLOMERATE_COLUMNS = (
    "id", "x_um", "y_um", "equivalent_diameter_um", "case", "excess_intensity",
    "d_star_inside_nm", "d_star_ring_nm", "bend_id",
)  # fmt: skip


def summary_table(cells: Iterable[Diagnosis], critical_diameter_um: float) -> pd.DataFrame:
    """One row per cell, from each diagnosis's summary."""
    rows = []
    for result in cells:
        values = result.summary
        rows.append(
            {
                "cell": result.label,
                "agglomerates": values["agglomerates"],
                f"above {critical_diameter_um:g} um (case B)": values["case_b"],
                "median radius (um)": values["median_radius_um"],
                "bends": values["bends"],
                "median d* (nm)": values["median_d_star_nm"],
                **{
                    f"{title} share": values.get(f"{name}_share", np.nan)
                    for name, title in zip(GRAPHITE_PHASE_MAPS, PHASE_TITLES, strict=True)
                },
            }
        )
    return pd.DataFrame(rows)


def _critical_diameter(cells: list[Diagnosis]) -> float:
    values = {float(c.summary["critical_diameter_um"]) for c in cells}
    return values.pop() if len(values) == 1 else float("nan")


def run_report(
    results: Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    options: ReportOptions | None = None,
    *,
    stages: list[dict[str, Any]] | None = None,
    run_facts: Mapping[str, Any] | None = None,
    nxct: Mapping[str, str | os.PathLike[str]] | None = None,
    operando: Mapping[str, str | os.PathLike[str]] | None = None,
) -> Path:
    """Write the self-contained HTML report of the cells' results files to ``output``.

    ``stages`` (stage, status, seconds) and ``run_facts`` (settings of a pipeline run) are
    shown in the report's run section when given; ``nxct`` (cell name -> NXCT file of
    ``jellyroll nxct``) adds each cell's fused views, collector displacement and 3D bends;
    ``operando`` (cell name -> file of ``jellyroll operando``) its charge series.
    """
    options = options or ReportOptions()
    cells = [require_diagnosis(path) for path in results]
    critical = _critical_diameter(cells)
    report = Report(options.title)
    overview = report.section("Summary")
    overview.table(summary_table(cells, critical), "per cell")
    overview.note(
        "Agglomerates are bright excess spots of the SAXS intensity map; case B (above the "
        f"critical equivalent diameter of {critical:g} um) bend the Cu collector and are "
        "surrounded by compacted, poorly lithiated anode (Lübke et al., Energy Environ. Sci. "
        "2024, 17, 5048)."
    )
    for result in cells:
        _cell_section(report, result, float(result.summary["critical_diameter_um"]))
        if nxct and result.name in nxct:
            _nxct_section(report, result.label, Path(nxct[result.name]))
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
        return report.write(output)


def _cell_section(report: Report, result: Diagnosis, critical: float) -> None:
    maps = {name: item.values for name, item in result.maps.maps.items()}
    x_um, y_um = result.maps.x_um, result.maps.y_um
    section = report.section(f"Cell {result.label}")
    if all(name in maps for name in (*GRAPHITE_PHASE_MAPS, MapName.NMC_LITHIATED)):
        section.figure(
            figures.composites_figure(maps, x_um, y_um),
            "Phase composites (Table 1 windows)",
            name="composites",
        )
    section.figure(
        figures.saxs_figure(
            maps[MapName.SAXS_INTENSITY], maps[MapName.D_STAR], x_um, y_um, result.agglomerates
        ),
        "SAXS intensity with the agglomerates (cyan: case A, red: case B) and the d* map",
        name="saxs",
    )
    if result.unrolled:
        images = {
            name: (view.data, _extent_mm(view.arc_length_um, view.radius_um))
            for name, view in result.unrolled.items()
        }
        section.figure(
            figures.unrolled_figure(images),
            "Unrolled around the cell centre (polar)",
            name="unrolled",
        )
    section.figure(
        figures.histogram_figure(result.agglomerates, critical, maps[MapName.D_STAR]),
        "Agglomerate sizes with the critical diameter; d* distribution",
        name="histogram",
    )
    pixel = result.pixel_size_um
    if critical < 3 * pixel:
        section.note(
            f"The critical diameter ({critical:g} um) is only {critical / pixel:.1f} "
            f"pixels of {pixel:g} um here: sizes below 3 pixels "
            f"({3 * pixel:g} um) are not resolved, so case A/B near the "
            "threshold is unreliable. Scan with a translation step of at most a third of "
            "the critical diameter to classify."
        )
    columns = [c for c in AGGLOMERATE_COLUMNS if c in result.agglomerates.columns]
    section.table(result.agglomerates[columns] if columns else result.agglomerates, "agglomerates")
    if len(result.bends):
        section.table(result.bends, "bends of the Cu collector")
    section.figure(
        figures.lithiation_figure(result.lithiation),
        "Lithiation inside each defect and in the ring around it",
        name="lithiation",
    )
    for note in result.notes:
        section.note(note)


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
        section.table(found.bends, "bends of the Cu collector in 3D (X-ray frame)")


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
    section.figure(
        operando_figures.curves_figure(found),
        "Share of each graphite phase per region against the state of charge",
        name="operando_curves",
    )
    section.figure(
        operando_figures.core_figure(found),
        "Poorly lithiated core of each zone",
        name="operando_cores",
    )
    section.facts({"state of charge from": found.soc_source, "steps": str(len(found.steps))})
    if len(found.zones_table):
        section.table(found.zones_table, "damaged zones: lag behind the regular anode")
    for note in found.notes:
        section.note(note)


def _extent_mm(arc_um: np.ndarray, radius_um: np.ndarray) -> list[float]:
    """imshow extent [arc0, arc1, r1, r0] (mm) of an unrolled view."""
    return [arc_um[0] / 1000, arc_um[-1] / 1000, radius_um[-1] / 1000, radius_um[0] / 1000]

"""The HTML report of a pipeline run: per cell maps, unrolled views, defects; comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from jellyroll import __version__
from jellyroll.conventions import finite_median
from jellyroll.defects import median_radius_um
from jellyroll.io.provenance import package_versions
from jellyroll.pipeline import figures
from jellyroll.pipeline.config import RunConfig
from jellyroll.pipeline.diagnosis import CellResults
from jellyroll.pipeline.stages import StageLog
from jellyroll.report import Report

AGGLOMERATE_COLUMNS = (
    "id", "x_um", "y_um", "equivalent_diameter_um", "case", "excess_intensity",
    "d_star_inside_nm", "d_star_ring_nm", "bend_id",
)  # fmt: skip


def summary_table(cells: dict[str, CellResults], critical_diameter_um: float) -> pd.DataFrame:
    """One row per cell: agglomerate counts, median radius, d*, graphite phase shares."""
    rows = []
    for result in cells.values():
        table = result.agglomerates
        maps = result.maps
        phases = np.stack(
            [
                np.clip(np.nan_to_num(maps[n][0]), 0, None)
                for n in ("lic6", "lic12", "graphite_poor")
            ]
        )
        shares = phases.sum(axis=(1, 2)) / max(phases.sum(), 1e-12)
        rows.append(
            {
                "cell": result.label,
                "agglomerates": len(table),
                f"above {critical_diameter_um:g} um (case B)": int(
                    (table.get("case", pd.Series()) == "B").sum()
                ),
                "median radius (um)": median_radius_um(table),
                "bends": len(result.bends),
                "median d* (nm)": finite_median(maps["d_star_nm"][0]),
                "LiC6 share": float(shares[0]),
                "LiC12 share": float(shares[1]),
                "poorly lithiated share": float(shares[2]),
            }
        )
    return pd.DataFrame(rows)


def _unrolled_images(result: CellResults) -> dict[str, tuple[np.ndarray, list[float]]]:
    images = {}
    for name, view in result.unrolled.items():
        arc = view.arc_length_um / 1000
        radius = view.radius_um / 1000
        images[name] = (view.data, [arc[0], arc[-1], radius[-1], radius[0]])
    return images


def write_report(
    config: RunConfig, cells: dict[str, CellResults], log: StageLog, path: Path
) -> Path:
    """Write the self-contained HTML report of a run and return its path."""
    critical = config.defects.critical_diameter_um
    report = Report(config.title)
    overview = report.section("Summary")
    overview.table(summary_table(cells, critical), "per cell")
    overview.note(
        "Agglomerates are bright excess spots of the SAXS intensity map; case B (above the "
        f"critical equivalent diameter of {critical:g} um) bend the Cu collector and are "
        "surrounded by compacted, poorly lithiated anode (Lübke et al., Energy Environ. Sci. "
        "2024, 17, 5048)."
    )
    for result in cells.values():
        maps = {name: values for name, (values, _) in result.maps.items()}
        section = report.section(f"Cell {result.label}")
        section.figure(
            figures.composites_figure(maps, result.x_um, result.y_um),
            "Phase composites (Table 1 windows)",
            name="composites",
        )
        section.figure(
            figures.saxs_figure(
                maps["saxs_intensity"],
                maps["d_star_nm"],
                result.x_um,
                result.y_um,
                result.agglomerates,
            ),
            "SAXS intensity with the agglomerates (cyan: case A, red: case B) and the d* map",
            name="saxs",
        )
        if result.unrolled:
            section.figure(
                figures.unrolled_figure(_unrolled_images(result)),
                "Unrolled around the cell centre (polar)",
                name="unrolled",
            )
        section.figure(
            figures.histogram_figure(result.agglomerates, critical, maps["d_star_nm"]),
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
        section.table(
            result.agglomerates[columns] if columns else result.agglomerates, "agglomerates"
        )
        if len(result.bends):
            section.table(result.bends, "bends of the Cu collector")
        section.figure(
            figures.lithiation_figure(result.lithiation),
            "Lithiation inside each defect and in the ring around it",
            name="lithiation",
        )
        for note in result.notes:
            section.note(note)
    run = report.section("Run")
    run.facts({"jellyroll": __version__, "output": str(config.output), "cells": ", ".join(cells)})
    run.table(pd.DataFrame(log.entries), "stages (skipped ones were up to date)")
    inputs = pd.DataFrame(
        [{"cell": c.name, "waxs": str(c.waxs), "saxs": str(c.saxs)} for c in config.cells]
    )
    run.table(inputs, "inputs")
    run.facts(
        {f"settings: {k}": v for k, v in config.model_dump(mode="json").items() if k != "cells"}
    )
    run.facts(package_versions())
    return report.write(path)

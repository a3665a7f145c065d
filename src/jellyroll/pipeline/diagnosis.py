"""The diagnosis of one cell: gather its maps, find the cell, unroll, find the defects, and
write ``results.h5`` (SPEC section 6: ``/entry/maps/<name>``, ``/entry/defects/...``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from jellyroll.conventions import px_to_um, um_to_px
from jellyroll.defects import defect_lithiation, find_agglomerates, find_bends, link_bends
from jellyroll.io.nexus import nx_group, read_table, set_default, write_nxdata, write_table
from jellyroll.io.provenance import atomic_output, provenance_json, provenance_record
from jellyroll.io.runfile import open_run
from jellyroll.pipeline.config import CellInput, RunConfig
from jellyroll.pipeline.stages import StageLog, recorded_keys, stage_key
from jellyroll.unroll import Cell, PolarView, find_cell, trace_spiral, unroll_polar

WAXS_MAPS = ("lic6", "lic12", "graphite_poor", "nmc_lithiated", "nmc_delithiated", "graphite")
SAXS_MAPS = ("saxs_intensity", "d_star_nm")
LABEL_MAPS = ("graphite_label", "nmc_label")


@dataclass
class CellResults:
    """Everything the report shows of one cell."""

    name: str
    label: str
    path: Path
    maps: dict[str, tuple[np.ndarray, str]]
    x_um: np.ndarray
    y_um: np.ndarray
    agglomerates: pd.DataFrame
    bends: pd.DataFrame
    lithiation: pd.DataFrame
    cell: Cell | None
    unrolled: dict[str, PolarView] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def pixel_size_um(self) -> float:
        return float(abs(self.x_um[1] - self.x_um[0]))


def _read_maps(run: Path, names: tuple[str, ...]) -> tuple[dict, np.ndarray, np.ndarray]:
    maps = {}
    with open_run(run) as f:
        group = f["/entry/maps"]
        for name in (*names, "attenuation"):
            if name in group:
                data = group[name]["data"]
                maps[name] = (data[()], str(data.attrs.get("units", "")))
        x_um = f["/entry/reconstruction/x_um"][()]
        y_um = f["/entry/reconstruction/y_um"][()]
    return maps, x_um, y_um


def diagnose_cell(
    cell: CellInput, runs: dict[str, Path], config: RunConfig, folder: Path, log: StageLog
) -> CellResults:
    """Diagnosis of one cell from its WAXS and SAXS run files (loaded when up to date)."""
    path = folder / "results.h5"
    upstream = [recorded_keys(runs[k]).get("maps", "") for k in ("waxs", "saxs")]
    key = stage_key("diagnosis", config.defects.model_dump(mode="json"), upstream)
    built: list[CellResults] = []  # what the action diagnosed, when log.run runs it
    ran = log.run(
        f"{cell.name} diagnosis",
        path,
        "diagnosis",
        key,
        lambda: built.append(_diagnose(cell, runs, config, path)),
    )
    return _unroll(built[0] if ran else _load(path, cell))


def _unroll(results: CellResults) -> CellResults:
    """Polar views of the main maps around the cell (for the report)."""
    if results.cell is not None:
        maps = results.maps
        names = [n for n in ("saxs_intensity", "d_star_nm", "graphite", "attenuation") if n in maps]
        stack = np.stack([np.nan_to_num(maps[n][0]) for n in names])
        view = unroll_polar(stack, results.cell, results.pixel_size_um)
        results.unrolled = {name: _select(view, i) for i, name in enumerate(names)}
    return results


def _diagnose(cell: CellInput, runs: dict[str, Path], config: RunConfig, path: Path) -> CellResults:
    """Read the cell's maps, find the cell and its defects, and write them to ``path``."""
    waxs, x_um, y_um = _read_maps(runs["waxs"], WAXS_MAPS + LABEL_MAPS)
    saxs, _, _ = _read_maps(runs["saxs"], SAXS_MAPS)
    maps = {**waxs, **{k: v for k, v in saxs.items() if k != "attenuation"}}
    results = CellResults(
        cell.name, cell.label or cell.name, path, maps, x_um, y_um,
        pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), None,
    )  # fmt: skip
    pixel = results.pixel_size_um
    attenuation = np.nan_to_num(maps["attenuation"][0])
    try:
        results.cell = find_cell(attenuation)
    except ValueError as error:
        results.notes.append(f"cell not found in the attenuation map: {error}")
    critical = config.defects.critical_diameter_um
    agglomerates = find_agglomerates(
        maps["saxs_intensity"][0], pixel, critical, d_star_map=maps["d_star_nm"][0]
    )
    try:
        trace = trace_spiral(attenuation, results.cell, pixel) if results.cell else None
        bends = find_bends(attenuation, pixel, trace=trace) if trace is not None else pd.DataFrame()
    except ValueError as error:
        results.notes.append(f"collector not traced: {error}")
        bends = pd.DataFrame()
    if len(bends) and len(agglomerates):
        bends, agglomerates = link_bends(agglomerates, bends)
    phases = {n: maps[n][0] for n in ("lic6", "lic12", "graphite_poor") if n in maps}
    lithiation = (
        defect_lithiation(agglomerates, phases, pixel) if len(agglomerates) else pd.DataFrame()
    )
    if len(lithiation):
        lithiation = lithiation.merge(agglomerates[["id", "case"]], on="id")
    results.agglomerates, results.bends, results.lithiation = agglomerates, bends, lithiation
    _write(results, config, cell, runs)
    return results


def _load(path: Path, cell: CellInput) -> CellResults:
    """A results file written by :func:`_write`, back into memory."""
    with h5py.File(path, "r") as f:
        entry = f["entry"]
        maps = {
            name: (group["data"][()], str(group["data"].attrs.get("units", "")))
            for name, group in entry["maps"].items()
        }
        any_map = next(iter(entry["maps"].values()))
        x_um, y_um = any_map["x_um"][()], any_map["y_um"][()]
        tables = [read_table(entry["defects"][n]) for n in ("agglomerates", "bends", "lithiation")]
        found = None
        if "cell" in entry:
            pixel = float(abs(x_um[1] - x_um[0]))
            ny, nx = any_map["data"].shape
            found = Cell(
                float(um_to_px(entry["cell/centre_x_um"][()], nx, pixel)),
                float(um_to_px(entry["cell/centre_y_um"][()], ny, pixel)),
                float(entry["cell/radius_um"][()]) / pixel,
            )
    return CellResults(cell.name, cell.label or cell.name, path, maps, x_um, y_um, *tables, found)


def _select(view: PolarView, index: int) -> PolarView:
    return PolarView(
        view.data[index], view.radius_um, view.angle_deg, view.arc_radius_um, view.centre,
        view.pixel_size_um,
    )  # fmt: skip


def _write(results: CellResults, config: RunConfig, cell: CellInput, runs: dict[str, Path]) -> None:
    """The results file of one cell (atomic)."""
    record = provenance_record(
        {"config": config.model_dump(mode="json"), "cell": cell.name}, inputs=[]
    )
    record["inputs"] = {
        str(getattr(cell, k)): "see the run files' provenance" for k in ("waxs", "saxs")
    }
    record["runs"] = {k: str(v) for k, v in runs.items()}
    axes = [("y_um", results.y_um, "um"), ("x_um", results.x_um, "um")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        with atomic_output(results.path) as tmp, h5py.File(tmp, "w") as f:
            entry = nx_group(f, "entry", "NXentry")
            set_default(f, "entry")
            maps = nx_group(entry, "maps", "NXcollection")
            for name, (values, units) in results.maps.items():
                write_nxdata(maps, name, values, axes, units=units)
            set_default(maps, "saxs_intensity")
            set_default(entry, "maps/saxs_intensity")
            defects = nx_group(entry, "defects", "NXcollection")
            write_table(defects, "agglomerates", _flat(results.agglomerates))
            write_table(defects, "bends", _flat(results.bends))
            write_table(defects, "lithiation", _flat(results.lithiation))
            if results.cell is not None:
                found = nx_group(entry, "cell", "NXcollection")
                pixel = results.pixel_size_um
                ny, nx = results.maps["attenuation"][0].shape
                found["centre_x_um"] = px_to_um(results.cell.x, nx, pixel)
                found["centre_y_um"] = px_to_um(results.cell.y, ny, pixel)
                found["radius_um"] = results.cell.radius * pixel
            entry["provenance/run"] = provenance_json(record)


def _flat(table: pd.DataFrame) -> pd.DataFrame:
    """Tuple-valued columns (linked ids) as text, so HDF5 can store them."""
    table = table.copy()
    for column in table.columns:
        if (
            table[column].dtype == object
            and len(table)
            and isinstance(table[column].iloc[0], tuple)
        ):
            table[column] = [" ".join(map(str, v)) for v in table[column]]
    return table

"""The diagnosis of one cell (``results.h5``): its maps, the cell found, unrolled views, the
defect tables and a summary; one writer and one reader, so a diagnosis computed now and one
loaded from disk are the same object.

    /entry/maps/<name>/data          (n_y, n_x) every map of the cell (WAXS and SAXS scans)
    /entry/defects/agglomerates      table: id, x_um, y_um, equivalent_diameter_um, case, ...
    /entry/defects/bends             table of collector bends (map frame)
    /entry/defects/lithiation        per-defect phase fractions inside vs around
    /entry/cell                      centre_x_um, centre_y_um, radius_um (when found)
    /entry/unrolled/<name>           NXdata (depth_um, arc_length_um) along the traced Cu
                                     collector, or (radius_um, arc_length_um) around the
                                     cell centre; attribute ``along``: spiral or polar
    /entry/saxs_profiles             table: q_A and the mean SAXS profile of each anode
                                     region (regular, agglomerate, bent)
    /entry/summary                   attributes: counts, median radius, d*, phase shares;
                                     the d* parameters of the maps (JSON, when known)
    /entry/notes                     what the diagnosis could not do, one line each
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from jellyroll.conventions import unit_text
from jellyroll.io.nexus import nx_group, read_table, set_default, write_nxdata, write_table
from jellyroll.io.provenance import json_text
from jellyroll.results.run import Q_UNITS, MapName, MapSet, _map_set, write_maps_group
from jellyroll.results.store import RunFileError, open_run, require, write_stage_file

DEFECT_TABLES = ("agglomerates", "bends", "lithiation")


@dataclass(frozen=True)
class FoundCell:
    """The cell's centre (map frame, um) and outer radius (um)."""

    centre_x_um: float
    centre_y_um: float
    radius_um: float


@dataclass
class Unrolled:
    """A map unrolled: ``data`` (n_rows, n_arc), the arc length (um) along the columns.

    ``along="spiral"``: along the traced Cu collector, rows at ``radius_um`` = the radial
    offset from the collector (um, positive outwards); ``"polar"``: around the cell
    centre, rows at ``radius_um`` from it. Ascending down the rows either way. ``units``:
    those of the map unrolled.
    """

    data: np.ndarray
    radius_um: np.ndarray
    arc_length_um: np.ndarray
    along: str = "polar"
    units: str = ""


@dataclass
class Diagnosis:
    """Everything the report shows of one cell."""

    name: str
    label: str
    maps: MapSet
    agglomerates: pd.DataFrame
    bends: pd.DataFrame
    lithiation: pd.DataFrame
    cell: FoundCell | None = None
    unrolled: dict[str, Unrolled] = field(default_factory=dict)
    summary: dict[str, float | int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    path: Path | None = None
    saxs_profiles: pd.DataFrame = field(default_factory=pd.DataFrame)
    saxs_profile_units: str = "arb. units / um"
    """Units of the region columns of :attr:`saxs_profiles` (the SAXS reconstruction's)."""
    dstar_parameters: dict[str, float | int] | None = None
    """Overrides of the study's d* parameters the d* map was made with ({}: none; None:
    not recorded), for the d* of :attr:`saxs_profiles`."""

    @property
    def pixel_size_um(self) -> float:
        return self.maps.pixel_size_um


def write_diagnosis(
    path: str | os.PathLike[str],
    diagnosis: Diagnosis,
    provenance: Mapping[str, Any],
    *,
    key: str,
    upstream: str,
    inputs: Iterable[Path] = (),
) -> Path:
    """Write the results file of one cell atomically (its key and upstream key inside)."""

    def fill(entry: h5py.Group) -> None:
        entry["name"] = diagnosis.name
        entry["label"] = diagnosis.label
        maps = write_maps_group(entry, diagnosis.maps)
        default = MapName.SAXS_INTENSITY if MapName.SAXS_INTENSITY in diagnosis.maps else None
        if default:
            set_default(maps, default)
            set_default(entry, f"maps/{default}")
        defects = nx_group(entry, "defects", "NXcollection")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
            for name in DEFECT_TABLES:
                table = _flat(getattr(diagnosis, name))
                write_table(defects, name, table, defect_units(diagnosis, table))
        if diagnosis.cell is not None:
            found = nx_group(entry, "cell", "NXcollection")
            for key, value in vars(diagnosis.cell).items():
                found[key] = value
                found[key].attrs["units"] = "um"
        unrolled = nx_group(entry, "unrolled", "NXcollection")
        unrolled.attrs["order"] = json.dumps(list(diagnosis.unrolled))  # HDF5 sorts names
        for name, view in diagnosis.unrolled.items():
            axes = [
                (_ROWS[view.along], view.radius_um, "um"),
                ("arc_length_um", view.arc_length_um, "um"),
            ]
            group = write_nxdata(
                unrolled, name, view.data.astype(np.float32), axes, units=view.units
            )
            group.attrs["along"] = view.along
        if len(diagnosis.saxs_profiles):
            columns = map(str, diagnosis.saxs_profiles.columns)
            units = {c: Q_UNITS if c == "q_A" else diagnosis.saxs_profile_units for c in columns}
            write_table(entry, "saxs_profiles", diagnosis.saxs_profiles, units)
        summary = nx_group(entry, "summary", "NXcollection")
        summary.attrs["values"] = json_text(diagnosis.summary)
        if diagnosis.dstar_parameters is not None:
            summary.attrs["dstar_parameters"] = json_text(diagnosis.dstar_parameters)
        entry["notes"] = "\n".join(diagnosis.notes)

    return write_stage_file(
        Path(path),
        fill,
        stage="diagnose",
        key=key,
        upstream=upstream,
        provenance=provenance,
        provenance_name="run",
        inputs=inputs,
    )


SHARE_COLUMNS = ("_inside", "_ring")
"""Endings of the lithiation table's columns of phase shares (each phase's share of the
graphite phases' signal inside an agglomerate and in the ring around it: unit 1)."""


def defect_units(diagnosis: Diagnosis, table: pd.DataFrame) -> dict[str, str]:
    """The ``@units`` of the defect tables' columns their names do not give: the excess
    intensities in the SAXS map's units (the integrated one over um^2), significances and
    phase shares 1 (every column of the results file then states its unit)."""
    saxs = diagnosis.maps.maps.get(MapName.SAXS_INTENSITY)
    level = saxs.units if saxs is not None and saxs.units else "arb. units"
    units = {"excess_intensity": level, "integrated_excess": f"{level} x um^2", "significance": "1"}
    for column in map(str, table.columns):
        if column.endswith(SHARE_COLUMNS) and not column.startswith(("pixels", "d_star")):
            units[column] = "1"
    return units


def read_diagnosis(path: str | os.PathLike[str]) -> Diagnosis:
    """Load a results file written by :func:`write_diagnosis`."""
    hint = "diagnose the cell with `jellyroll diagnose` or `jellyroll run`"
    with open_run(path, "results file", "`jellyroll diagnose` or `jellyroll run`") as f:
        entry = require(f, path, "/entry", hint)
        for name in ("maps", "defects", "summary", "unrolled", "name"):
            require(f, path, f"/entry/{name}", hint)
        tables = [read_table(entry["defects"][name]) for name in DEFECT_TABLES]
        found = None
        if "cell" in entry:
            found = FoundCell(**{k: float(v[()]) for k, v in entry["cell"].items()})
        views = entry["unrolled"]
        unrolled = {
            name: _read_unrolled(views[name])
            for name in json.loads(views.attrs.get("order", "[]")) or list(views)
        }
        notes = entry["notes"].asstr()[()]
        return Diagnosis(
            name=entry["name"].asstr()[()],
            label=entry["label"].asstr()[()],
            maps=_map_set(entry["maps"]),
            agglomerates=tables[0],
            bends=tables[1],
            lithiation=tables[2],
            cell=found,
            unrolled=unrolled,
            summary={  # NaN written as null (strict JSON)
                key: np.nan if value is None else value
                for key, value in json.loads(entry["summary"].attrs["values"]).items()
            },
            notes=[line for line in notes.split("\n") if line],
            path=Path(path),
            **_saxs_profiles(entry),
            dstar_parameters=_dstar_parameters(entry),
        )


def _saxs_profiles(entry: h5py.Group) -> dict[str, Any]:
    """The ``saxs_profiles`` table and the units of its region columns, as
    :class:`Diagnosis` fields (none when the file holds no profiles)."""
    if "saxs_profiles" not in entry:
        return {}
    group = entry["saxs_profiles"]
    regions = [group[name] for name in group if name != "q_A" and "units" in group[name].attrs]
    units = {"saxs_profile_units": unit_text(regions[0].attrs["units"])} if regions else {}
    return {"saxs_profiles": read_table(group), **units}


def _dstar_parameters(entry: h5py.Group) -> dict[str, float | int] | None:
    """The d* parameters recorded with the summary; None when not recorded."""
    text = entry["summary"].attrs.get("dstar_parameters")
    return None if text is None else json.loads(text)


_ROWS = {"spiral": "depth_um", "polar": "radius_um"}
"""Name of the row axis of an unrolled view, by how it was unrolled."""


def _read_unrolled(group: h5py.Group) -> Unrolled:
    along = str(group.attrs.get("along", "polar"))
    if along not in _ROWS:
        raise ValueError(f"unrolled view {group.name}: along = {along!r}, not spiral or polar")
    data = group["data"]
    units = str(data.attrs.get("units", ""))
    return Unrolled(data[()], group[_ROWS[along]][()], group["arc_length_um"][()], along, units)


def require_diagnosis(path: str | os.PathLike[str]) -> Diagnosis:
    """:func:`read_diagnosis`, with a clear error for a file that is not a results file."""
    try:
        return read_diagnosis(path)
    except (KeyError, ValueError, TypeError) as error:
        if isinstance(error, RunFileError):
            raise
        raise RunFileError(f"{path}: not a jellyroll results file ({error})") from error


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

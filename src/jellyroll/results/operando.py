"""The operando results file (SPEC section 6), one reader and one writer:

/entry/operando/soc                       (n_steps,) state of charge (NaN = unknown)
/entry/operando/time_s                    (n_steps,) s since the first scan's start
/entry/operando/regions/<region>/<phase>  (n_steps,) share of lic6, lic12, graphite_poor
/entry/operando/regions/<region>          attrs soc_half, lag_soc, pixels
/entry/operando/defects                   table per zone: id, x_um, y_um, soc_half,
                                          lag_soc, shrink_rate_um2_per_soc, pixels
/entry/operando/defects/core_*            (n_zones, n_steps) core area and ellipse
/entry/operando/shares                    NXdata (n_steps, ny, nx, 3) per-pixel shares
/entry/operando/zones                     NXdata (ny, nx) zone labels (0 = none)
/entry/operando/shift_px                  (n_steps, 2) registration shift (rows, cols)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from jellyroll.conventions import unit_text
from jellyroll.io.nexus import nx_group, read_table, set_default, write_nxdata, write_table
from jellyroll.results.store import RunFileError, require, write_stage_file

PHASES = ("lic6", "lic12", "graphite_poor")
CORE_FIELDS = ("area_um2", "x_um", "y_um", "major_axis_um", "minor_axis_um", "orientation_deg")
"""Per zone and step: the poorly lithiated core's area and ellipse (``core_<field>``)."""
CORE_UNITS = {
    "area_um2": "um^2",
    "x_um": "um",
    "y_um": "um",
    "major_axis_um": "um",
    "minor_axis_um": "um",
    "orientation_deg": "deg",
}
"""The units of each core field (its dataset's ``@units``)."""


@dataclass
class OperandoResult:
    """An analysed charge series; see the module docstring for shapes and units.

    ``curves``: region -> (n_steps, 3) shares; ``soc_half``: region -> state of charge at
    half lithiation; ``zones_table``: one row per zone; ``cores``: field -> (n_zones,
    n_steps).
    """

    soc: np.ndarray
    soc_units: str
    time_s: np.ndarray
    soc_source: str
    steps: list[str]
    x_um: np.ndarray
    y_um: np.ndarray
    shares: np.ndarray
    zones: np.ndarray
    curves: dict[str, np.ndarray]
    soc_half: dict[str, float]
    pixels: dict[str, int]
    zones_table: pd.DataFrame
    cores: dict[str, np.ndarray]
    shift_px: np.ndarray
    rotation_centre_mm: float
    notes: list[str] = field(default_factory=list)

    def lag(self, region: str) -> float:
        """State of charge at half lithiation of ``region`` minus the regular anode's."""
        return self.soc_half[region] - self.soc_half["anode"]


def write_operando(
    path: str | os.PathLike[str],
    result: OperandoResult,
    provenance: dict[str, Any],
    *,
    key: str,
    inputs: list[Path],
) -> Path:
    """Write ``result`` to ``path`` atomically (with ``key`` and the provenance record)."""

    def fill(entry: h5py.Group) -> None:
        group = nx_group(entry, "operando", "NXcollection")
        group["soc"] = result.soc
        group["soc"].attrs["units"] = result.soc_units
        group["soc"].attrs["source"] = result.soc_source
        group["time_s"] = result.time_s
        group["time_s"].attrs["units"] = "s"
        group["steps"] = np.array(result.steps, dtype=object)
        group["shift_px"] = result.shift_px
        group["shift_px"].attrs["description"] = "(rows, columns) that registered each step"
        group["rotation_centre_mm"] = result.rotation_centre_mm
        group["rotation_centre_mm"].attrs["units"] = "mm"
        group["notes"] = np.array(result.notes or [""], dtype=object)
        regions = nx_group(group, "regions", "NXcollection")
        for name, curve in result.curves.items():
            region = nx_group(regions, name, "NXcollection")
            for k, phase in enumerate(PHASES):
                region[phase] = curve[:, k].astype(np.float64)
            region.attrs["soc_half"] = result.soc_half[name]
            region.attrs["lag_soc"] = result.lag(name)
            region.attrs["soc_units"] = result.soc_units  # of soc_half and lag_soc
            region.attrs["pixels"] = result.pixels[name]
        table = write_table(group, "defects", result.zones_table)
        # soc_half and lag_soc run along the curves' axis: hours when the steps have no
        # state of charge (a lag of 0.09 h read as 0.09 of the charge)
        units = {
            "x_um": "um",
            "y_um": "um",
            "soc_half": result.soc_units,
            "lag_soc": result.soc_units,
            "shrink_rate_um2_per_soc": f"um^2 per ({result.soc_units})",
        }
        for column, unit in units.items():
            if column in table:
                table[column].attrs["units"] = unit
        for name, values in result.cores.items():
            table[f"core_{name}"] = values
            table[f"core_{name}"].attrs["units"] = CORE_UNITS[name]
        axes = [("y_um", result.y_um, "um"), ("x_um", result.x_um, "um")]
        write_nxdata(
            group,
            "shares",
            result.shares.astype(np.float32),
            [("step", np.arange(len(result.steps)), ""), *axes, ("phase", np.arange(3), "")],
            units="share of the graphite signal: lic6, lic12, graphite_poor",
        )
        write_nxdata(group, "zones", result.zones, axes, units="zone label, 0 = none")
        set_default(entry, "operando/zones")

    return write_stage_file(
        Path(path),
        fill,
        stage="operando",
        key=key,
        upstream="",
        provenance=provenance,
        provenance_name="operando",
        inputs=inputs,
    )


def read_operando(path: str | os.PathLike[str]) -> OperandoResult:
    """Read what :func:`write_operando` wrote; a missing group is a :class:`RunFileError`."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        hint = "run jellyroll operando first"
        group = require(f, path, "/entry/operando", hint)
        curves, soc_half, pixels = {}, {}, {}
        for name, region in group["regions"].items():
            curves[name] = np.stack([region[p][()] for p in PHASES], axis=1)
            soc_half[name] = float(region.attrs["soc_half"])
            pixels[name] = int(region.attrs["pixels"])
        defects = group["defects"]
        cores = {name: defects[f"core_{name}"][()] for name in CORE_FIELDS}
        notes = [n.decode() if isinstance(n, bytes) else str(n) for n in group["notes"][()]]
        try:
            return OperandoResult(
                soc=group["soc"][()],
                soc_units=unit_text(group["soc"].attrs["units"]),
                time_s=group["time_s"][()],
                soc_source=str(group["soc"].attrs["source"]),
                steps=[s.decode() if isinstance(s, bytes) else str(s) for s in group["steps"][()]],
                x_um=group["shares/x_um"][()],
                y_um=group["shares/y_um"][()],
                shares=group["shares/data"][()],
                zones=group["zones/data"][()],
                curves=curves,
                soc_half=soc_half,
                pixels=pixels,
                zones_table=read_table(defects),
                cores=cores,
                shift_px=group["shift_px"][()],
                rotation_centre_mm=float(group["rotation_centre_mm"][()]),
                notes=[n for n in notes if n],
            )
        except KeyError as error:
            raise RunFileError(f"{path}: /entry/operando is incomplete ({error})") from error

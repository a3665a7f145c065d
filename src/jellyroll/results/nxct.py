"""The correlative NXCT result (``jellyroll nxct XCT NCT -o NXCT.h5``, SPEC section 6):

    /entry/registration/nct_to_xct    (4, 4) float64: neutron frame -> X-ray frame (um)
                                      attrs: metric, metric_value, seconds, ...
    /entry/fused/data                 (nz, ny, nx, 3) uint8 RGB on the common grid
                                      (red = X-ray, green = blue = neutron); z_um, y_um, x_um;
                                      attrs grid ("xct" or "nct": whose grid and frame)
    /entry/segmentation/labels        (nz, ny, nx) uint8; attrs names (JSON label -> name)
    /entry/bends                      table: id, z_um, y_um, x_um, turn, amplitude_um,
                                      extent_axial_um, extent_arc_um (X-ray frame)
    /entry/displacement               collector displacement (n_slices, n_arc), um

The fused volume and labels are written slab by slab by the stage's driver into datasets
made here (:func:`create_volume_datasets`); the reader returns the small parts and leaves
the volumes on disk (:func:`read_fused_slab`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from jellyroll.conventions import pixel_centres_um, um_per
from jellyroll.io.nexus import nx_group, read_table, set_default, write_nxdata, write_table
from jellyroll.io.provenance import json_text
from jellyroll.results.store import open_run, require, unit_factor

GRIDS = ("xct", "nct")
"""The common grids of an NXCT file's volumes: the X-ray or the neutron volume's."""


@dataclass
class NXCTResult:
    """What an NXCT file holds, volumes left on disk: the registration, the common grid
    (``shape`` (nz, ny, nx), ``voxel_um``; ``grid``: "xct" or "nct", the volume whose grid
    and centred frame it is), the contrast windows, label names, bends and the run's
    ``notes`` (its warnings: ``/entry/notes``, one per line)."""

    nct_to_xct: np.ndarray
    metric: str
    metric_value: float
    seconds: float
    shape: tuple[int, int, int]
    voxel_um: float
    grid: str
    windows: dict[str, list[float]]
    label_names: dict[int, str]
    bends: pd.DataFrame
    attrs: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    notes: list[str] = field(default_factory=list)


def write_registration_group(
    entry: h5py.Group,
    nct_to_xct: np.ndarray,
    *,
    metric: str,
    metric_value: float,
    seconds: float,
    attrs: dict[str, Any] | None = None,
) -> None:
    """``/entry/registration`` with the matrix and the metric as attributes."""
    group = nx_group(entry, "registration", "NXcollection")
    group["nct_to_xct"] = np.asarray(nct_to_xct, dtype=np.float64)
    group["nct_to_xct"].attrs["description"] = (
        "maps (z, y, x, 1) in um of the neutron volume frame to the X-ray volume frame; "
        "frames centred on their grids (SPEC section 6)"
    )
    group.attrs.update({"metric": metric, "metric_value": metric_value, "seconds": seconds})
    for key, value in (attrs or {}).items():
        group.attrs[key] = json_text(value) if isinstance(value, dict | list) else value


def create_volume_datasets(
    entry: h5py.Group,
    shape: tuple[int, int, int],
    voxel_um: float,
    *,
    grid: str,
    label_names: dict[int, str] | None,
    windows: dict[str, list[float]],
    chunk: int = 16,
) -> tuple[h5py.Dataset, h5py.Dataset | None]:
    """The fused RGB dataset (and the labels dataset when ``label_names``), chunked by slabs
    of ``chunk`` slices, for the driver to fill; NXdata groups with their axes. ``grid``:
    "xct" or "nct", whose grid (and centred frame) the volumes lie on."""
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
    axes = [
        (name, pixel_centres_um(n, voxel_um), "um")
        for name, n in zip(("z_um", "y_um", "x_um"), shape, strict=True)
    ]
    chunks = (min(chunk, shape[0]), min(256, shape[1]), min(256, shape[2]))
    fused = nx_group(entry, "fused", "NXdata")
    # gzip level 1: the noisy RGB barely compresses (0.75-0.8 of its size at any level), and
    # level 1 writes it 1.7x faster than h5py's default 4 (3 GiB at 1024^3)
    data = fused.create_dataset(
        "data",
        shape=(*shape, 3),
        dtype=np.uint8,
        chunks=(*chunks, 3),
        compression="gzip",
        compression_opts=1,
    )
    data.attrs["interpretation"] = "rgb-image"
    _axes(fused, axes, signal="data", extra=1)
    fused.attrs["windows"] = json_text(windows)
    fused.attrs["grid"] = grid
    set_default(entry, "fused")
    labels = None
    if label_names is not None:
        segmentation = nx_group(entry, "segmentation", "NXdata")
        labels = segmentation.create_dataset(
            "labels", shape=shape, dtype=np.uint8, chunks=chunks, compression="gzip"
        )
        labels.attrs["names"] = json.dumps({str(k): v for k, v in label_names.items()})
        _axes(segmentation, axes, signal="labels")
    return data, labels


def _axes(group: h5py.Group, axes: list, *, signal: str, extra: int = 0) -> None:
    for name, values, units in axes:
        group.create_dataset(name, data=values)
        group[name].attrs["units"] = units
    group.attrs["signal"] = signal
    group.attrs["axes"] = [name for name, _, _ in axes] + ["."] * extra


def write_bends_group(entry: h5py.Group, bends: pd.DataFrame, displacement=None) -> None:
    """``/entry/bends`` (table) and, when given, ``/entry/displacement`` (NXdata)."""
    write_table(entry, "bends", bends)
    if displacement is not None and displacement.displacement_um.size:
        write_nxdata(
            entry,
            "displacement",
            displacement.displacement_um.astype(np.float32),
            [("z_um", displacement.z_um, "um"), ("arc_um", displacement.arc_um, "um")],
            units="um",
        )
        entry["displacement/turn"] = displacement.turn


def read_nxct(path: str | os.PathLike[str]) -> NXCTResult:
    """The registration, grid, windows, label names and bends of an NXCT file."""
    hint = "make it with `jellyroll nxct`"
    with open_run(path, "NXCT file", "`jellyroll nxct`") as f:
        registration = require(f, path, "/entry/registration/nct_to_xct", hint)
        group = f["/entry/registration"]
        fused = require(f, path, "/entry/fused/data", hint)
        z = _axis_um(path, f["/entry/fused/z_um"])
        voxel = float(abs(z[1] - z[0])) if z.size > 1 else _x_step_um(path, f)
        names: dict[int, str] = {}
        if "/entry/segmentation/labels" in f:
            raw = json.loads(f["/entry/segmentation/labels"].attrs["names"])
            names = {int(k): v for k, v in raw.items()}
        bends = read_table(f["/entry/bends"]) if "bends" in f["entry"] else pd.DataFrame()
        notes = f["/entry/notes"].asstr()[()].split("\n") if "notes" in f["entry"] else []
        return NXCTResult(
            nct_to_xct=registration[()],
            metric=str(group.attrs.get("metric", "")),
            metric_value=float(group.attrs.get("metric_value", np.nan)),
            seconds=float(group.attrs.get("seconds", np.nan)),
            shape=tuple(fused.shape[:3]),  # type: ignore[arg-type]
            voxel_um=voxel,
            grid=_grid_of(f, path),
            windows=json.loads(f["/entry/fused"].attrs.get("windows", "{}")),
            label_names=names,
            bends=bends,
            attrs={k: v for k, v in group.attrs.items()},
            path=Path(path),
            notes=[note for note in notes if note],
        )


def _axis_um(path: str | os.PathLike[str], dataset: h5py.Dataset) -> np.ndarray:
    """A volume axis (voxel centres) in um, from its ``@units`` (um without it): another
    program's axes in mm read as um gave a voxel 1000 times too small, exit 0."""
    factor = unit_factor(path, dataset, "um", um_per, quantity="length")
    return np.asarray(dataset[()], dtype=np.float64).ravel() * factor


def _x_step_um(path: str | os.PathLike[str], f: h5py.File) -> float:
    """The voxel (um) from the x axis of the fused volume (a volume of one slice)."""
    x = _axis_um(path, f["/entry/fused/x_um"])
    return float(abs(x[1] - x[0]))


def _grid_of(f: h5py.File, path: str | os.PathLike[str]) -> str:
    """``/entry/fused@grid``, else the grid option of the file's provenance (older files)."""
    grid = f["/entry/fused"].attrs.get("grid")
    if grid is None and "/entry/provenance/nxct" in f:
        record = json.loads(f["/entry/provenance/nxct"][()])
        grid = record.get("configuration", {}).get("options", {}).get("grid")
    if grid not in GRIDS:
        raise ValueError(
            f"{path}: /entry/fused does not say whose grid it lies on (attribute grid: "
            f"{grid!r}); make the file again with `jellyroll nxct`"
        )
    return str(grid)


def read_fused_cuts(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fused RGB volume cut through its centre: the axial slice (ny, nx, 3) and the
    vertical cuts (nz, nx, 3) and (nz, ny, 3); only those voxels are read."""
    with open_run(path, "NXCT file", "`jellyroll nxct`") as f:
        data = require(f, path, "/entry/fused/data", "make it with `jellyroll nxct`")
        nz, ny, nx = data.shape[:3]
        return data[nz // 2], data[:, ny // 2], data[:, :, nx // 2]


def read_displacement(
    path: str | os.PathLike[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The collector displacement ((n_slices, n_arc) um, arc_um, z_um), None when absent."""
    with open_run(path) as f:
        if "displacement" not in f["entry"]:
            return None
        group = f["/entry/displacement"]
        return group["data"][()], group["arc_um"][()], group["z_um"][()]

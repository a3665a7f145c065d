"""The NeXus "run file" of one scan (SPEC section 6): sinogram, reconstruction and maps.

Paths (readable without jellyroll):

    /entry/sinogram/data              (n_angles, n_translations, n_q) float32, NaN = missing
    /entry/sinogram/errors            same shape, one sigma
    /entry/sinogram/rotation_angle    (n_angles,) deg, ascending
    /entry/sinogram/translation       (n_translations,) mm, ascending
    /entry/sinogram/q                 (n_q,) 1/angstrom
    /entry/sinogram/attenuation       (n_angles, n_translations) -ln(diode/monitor), optional
    /entry/reconstruction/data        (n_y, n_x, n_q) float32; q, x_um, y_um
    /entry/maps/<name>/data           (n_y, n_x); y_um, x_um

Each stage writes its own group; groups of later stages are replaced when a stage reruns.
Updates are atomic: the new file is assembled beside the old one and renamed into place.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (registers compression filters for reading raw data)
import numpy as np

from jellyroll.io.nexus import nx_group, set_default, write_nxdata
from jellyroll.io.provenance import atomic_output, provenance_json


class RunFileError(ValueError):
    """A run file lacks what a stage needs; the message names the file and dataset."""


@dataclass
class Sinogram:
    """A reduced scan: patterns placed by motor positions.

    ``data`` and ``errors`` are (n_angles, n_translations, n_q); NaN marks missing frames.
    ``attenuation`` is -ln(diode / monitor), (n_angles, n_translations), when a diode exists.
    """

    data: np.ndarray
    errors: np.ndarray
    rotation_angle_deg: np.ndarray
    translation_mm: np.ndarray
    q_A: np.ndarray
    attenuation: np.ndarray | None = None
    rotation_centre_mm: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape  # type: ignore[return-value]


@dataclass
class Reconstruction:
    """Reconstructed channels (n_y, n_x, n_q) on a square grid of ``pixel_size_um``."""

    data: np.ndarray
    q_A: np.ndarray
    x_um: np.ndarray
    y_um: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)


def write_sinogram(
    path: str | Path, sinogram: Sinogram, provenance: Mapping[str, Any], *, inputs=()
) -> Path:
    """Create a run file holding ``sinogram`` (any existing file at ``path`` is replaced)."""
    path = Path(path)
    with atomic_output(path, inputs=inputs) as tmp, h5py.File(tmp, "w") as f:
        entry = nx_group(f, "entry", "NXentry")
        set_default(f, "entry")
        _write_sinogram_group(entry, sinogram)
        entry["provenance/reduce"] = provenance_json(dict(provenance))
        set_default(entry, "sinogram")
    return path


def _write_sinogram_group(entry: h5py.Group, sinogram: Sinogram) -> None:
    axes = [
        ("rotation_angle", sinogram.rotation_angle_deg, "deg"),
        ("translation", sinogram.translation_mm, "mm"),
        ("q", sinogram.q_A, "1/angstrom"),
    ]
    chunks = (1, sinogram.data.shape[1], sinogram.data.shape[2])
    group = write_nxdata(
        entry,
        "sinogram",
        sinogram.data.astype(np.float32, copy=False),
        axes,
        units="arb. units",
        errors=sinogram.errors.astype(np.float32, copy=False),
        chunks=chunks,
    )
    if sinogram.attenuation is not None:
        group.create_dataset("attenuation", data=sinogram.attenuation.astype(np.float32))
        group["attenuation"].attrs["long_name"] = "-ln(diode / monitor)"
    if sinogram.rotation_centre_mm is not None:
        group["rotation_centre"] = float(sinogram.rotation_centre_mm)
        group["rotation_centre"].attrs["units"] = "mm"
    for key, value in sinogram.attrs.items():
        group.attrs[key] = value


def read_sinogram(path: str | Path, *, errors: bool = True) -> Sinogram:
    """Load the sinogram of a run file (whole arrays; see :func:`open_run` for lazy access).

    ``errors=False`` skips the one-sigma cube (``Sinogram.errors`` is then empty), halving
    the memory of stages that do not use it.
    """
    with open_run(path) as f:
        group = _require(f, path, "/entry/sinogram")
        return Sinogram(
            data=_require(f, path, "/entry/sinogram/data")[()],
            errors=_require(f, path, "/entry/sinogram/errors")[()] if errors else np.empty(0),
            rotation_angle_deg=_require(f, path, "/entry/sinogram/rotation_angle")[()],
            translation_mm=_require(f, path, "/entry/sinogram/translation")[()],
            q_A=_require(f, path, "/entry/sinogram/q")[()],
            attenuation=group["attenuation"][()] if "attenuation" in group else None,
            rotation_centre_mm=float(group["rotation_centre"][()])
            if "rotation_centre" in group
            else None,
            attrs=dict(group.attrs),
        )


def open_run(path: str | Path, mode: str = "r") -> h5py.File:
    """Open a run file, with a clear error when it is missing or not HDF5."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such run file; create it with `jellyroll reduce`")
    try:
        return h5py.File(path, mode)
    except OSError as error:
        raise RunFileError(f"{path}: not a readable HDF5 run file ({error})") from error


def _require(f: h5py.File, path: str | Path, name: str) -> Any:
    if name not in f:
        raise RunFileError(f"{path}: dataset {name} is missing; run the stage that writes it")
    return f[name]


def update_run(
    path: str | Path,
    group_name: str,
    writer,
    provenance: Mapping[str, Any],
    *,
    default: str | None = None,
    keep_existing: bool = False,
) -> Path:
    """Atomically replace group ``/entry/<group_name>`` of a run file.

    The file is copied beside itself, ``writer(entry_group)`` fills the new group, the
    provenance is stored under ``/entry/provenance/<group_name>``, and the copy is renamed
    over the original. A failure leaves the original untouched. ``keep_existing`` hands the
    writer the group as it is, for writers that replace only some of its members.
    """
    path = Path(path)
    with open_run(path):
        pass
    with atomic_output(path) as tmp:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as f:
            entry = f["entry"]
            if group_name in entry and not keep_existing:
                del entry[group_name]
            writer(entry)
            record = f"provenance/{group_name}"
            if record in entry:
                del entry[record]
            entry[record] = provenance_json(dict(provenance))
            if default:
                set_default(entry, default)
    return path


def write_reconstruction(
    path: str | Path, reconstruction: Reconstruction, provenance: Mapping[str, Any]
) -> Path:
    """Store ``/entry/reconstruction`` in the run file at ``path``."""
    return update_run(
        path,
        "reconstruction",
        lambda entry: write_reconstruction_group(entry, reconstruction),
        provenance,
    )


def write_reconstruction_group(entry: h5py.Group, reconstruction: Reconstruction) -> h5py.Group:
    """The NXdata ``reconstruction`` of ``entry`` (y_um, x_um, q axes), for writers that
    store more in the same :func:`update_run`."""
    group = write_nxdata(
        entry,
        "reconstruction",
        reconstruction.data.astype(np.float32, copy=False),
        [
            ("y_um", reconstruction.y_um, "um"),
            ("x_um", reconstruction.x_um, "um"),
            ("q", reconstruction.q_A, "1/angstrom"),
        ],
        units="arb. units / um",
    )
    group.attrs.update(reconstruction.attrs)
    return group


def read_reconstruction(path: str | Path) -> Reconstruction:
    with open_run(path) as f:
        group = _require(f, path, "/entry/reconstruction")
        return Reconstruction(
            data=_require(f, path, "/entry/reconstruction/data")[()],
            q_A=group["q"][()],
            x_um=group["x_um"][()],
            y_um=group["y_um"][()],
            attrs=dict(group.attrs),
        )


def write_maps(
    path: str | Path,
    maps: Mapping[str, tuple[np.ndarray, str]],
    x_um: np.ndarray,
    y_um: np.ndarray,
    provenance: Mapping[str, Any],
    *,
    default: str | None = None,
) -> Path:
    """Store one NXdata per map, ``maps[name] = (array (n_y, n_x), units)``, under
    ``/entry/maps``; maps of other names already there are kept."""
    return update_run(
        path,
        "maps",
        lambda entry: write_maps_group(entry, maps, x_um, y_um, default=default),
        provenance,
        default="maps" if default else None,
        keep_existing=True,
    )


def write_maps_group(
    entry: h5py.Group,
    maps: Mapping[str, tuple[np.ndarray, str]],
    x_um: np.ndarray,
    y_um: np.ndarray,
    *,
    default: str | None = None,
) -> h5py.Group:
    """The maps of :func:`write_maps` into ``entry/maps`` (created if missing), replacing
    those of the same names, for writers that store more in the same :func:`update_run`."""
    group = nx_group(entry, "maps", "NXcollection")
    axes = [("y_um", y_um, "um"), ("x_um", x_um, "um")]
    for name, (values, units) in maps.items():
        if name in group:
            del group[name]
        write_nxdata(group, name, values, axes, units=units)
    if default:
        set_default(group, default)
    return group


def read_map(path: str | Path, name: str) -> np.ndarray:
    with open_run(path) as f:
        return _require(f, path, f"/entry/maps/{name}/data")[()]

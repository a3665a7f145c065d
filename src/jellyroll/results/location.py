"""The slice location file (``jellyroll locate``, SPEC section 6 ``/entry/location``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from jellyroll.conventions import deg_per, um_per
from jellyroll.io.nexus import nx_group, set_default, write_nxdata
from jellyroll.results.store import RunFileError, open_run, require, unit_factor

FRAMES = "um, (z, y, x, 1) homogeneous; SWAXS map frame (z = 0 on the slice) -> X-ray frame"
PARAMETERS = {
    "height_um": "um", "shift_y_um": "um", "shift_x_um": "um", "rotation_deg": "deg",
    "tilt_deg": "deg", "tilt_azimuth_deg": "deg",
}  # fmt: skip
"""The placement's parameters (:func:`jellyroll.locate.core.pose_parameters`) and units."""


@dataclass
class LocationResult:
    """What a location file holds, resampled volumes left on disk: ``map_to_xct`` (4x4),
    ``z_um`` (height of the map grid's centre in the X-ray frame), the parameters, the
    similarity at the optimum and its height profile, the map used and the grid; the
    interval of heights (of the map origin, um) the data allow, the number of defects the
    height rests on, and the warning when the interval is wider than half a voxel (else
    empty); the X-ray voxel size (um) the placement was found with (NaN where not
    recorded); how far the whole cell alone moves the rotation (deg) and shift (um) from
    where the defects draw them (NaN where they did not), and the warning when too far."""

    @property
    def height_uncertainty_um(self) -> float:
        """Largest distance (um) from the height found to an end of ``height_interval_um``."""
        low, high = self.height_interval_um
        height = self.parameters["height_um"]
        return max(height - low, high - height)

    map_to_xct: np.ndarray
    z_um: float
    parameters: dict[str, float]
    similarity: float
    profile_height_um: np.ndarray
    profile_similarity: np.ndarray
    map_name: str
    offsets_um: np.ndarray
    height_interval_um: tuple[float, float] = (np.nan, np.nan)
    height_defects: float = np.nan
    height_warning: str = ""
    xct_voxel_um: float = np.nan
    in_plane_rotation_deg: float = np.nan
    in_plane_shift_um: float = np.nan
    rotation_uncertainty_deg: float = np.nan
    in_plane_warning: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def write_location_group(
    entry: h5py.Group,
    result: LocationResult,
    y_um: np.ndarray,
    x_um: np.ndarray,
    on_map: dict[str, np.ndarray],
) -> h5py.Group:
    """``entry/location``: the transform (``swaxs_to_xct``, SPEC, with ``map_to_xct`` a hard
    link to it), ``z_um``, the parameters, ``score`` (NXdata: similarity vs height, the
    optimum as ``@optimum``) and each volume on the map grid (``xct_on_map``, ...)."""
    group = nx_group(entry, "location", "NXcollection")
    group["swaxs_to_xct"] = np.asarray(result.map_to_xct, dtype=np.float64)
    group["swaxs_to_xct"].attrs["units"] = FRAMES
    group["map_to_xct"] = group["swaxs_to_xct"]
    group["z_um"] = float(result.z_um)
    group["z_um"].attrs["units"] = "um"
    group["z_um"].attrs["description"] = "height of the map grid's centre in the X-ray frame"
    for name, units in PARAMETERS.items():
        group[name] = float(result.parameters[name])
        group[name].attrs["units"] = units
    group["height_interval_um"] = np.asarray(result.height_interval_um, dtype=np.float64)
    group["height_interval_um"].attrs["units"] = "um"
    group["height_interval_um"].attrs["description"] = (
        "lowest and highest height of the map origin the data allow (jellyroll.locate.core."
        "_height_support); height_uncertainty_um: the larger distance from height_um to them"
    )
    group["height_uncertainty_um"] = float(result.height_uncertainty_um)
    group["height_uncertainty_um"].attrs["units"] = "um"
    group["height_defects"] = float(result.height_defects)
    group["height_defects"].attrs["description"] = (
        "effective number of defects the height rests on (under 1.5: one defect, whose "
        "mirror plane about its equator looks alike)"
    )
    group.attrs["height_warning"] = result.height_warning
    group.attrs["in_plane_rotation_deg"] = float(result.in_plane_rotation_deg)
    group.attrs["in_plane_shift_um"] = float(result.in_plane_shift_um)
    group.attrs["rotation_uncertainty_deg"] = float(result.rotation_uncertainty_deg)
    group.attrs["in_plane_warning"] = result.in_plane_warning
    if np.isfinite(result.xct_voxel_um):
        group.attrs["xct_voxel_um"] = float(result.xct_voxel_um)  # the scale of map_to_xct
    score = write_nxdata(
        group, "score", np.asarray(result.profile_similarity, dtype=np.float64),
        [("height_um", np.asarray(result.profile_height_um), "um")],
    )  # fmt: skip
    score.attrs["optimum"] = float(result.similarity)
    score.attrs["metric"] = "normalised cross-correlation of ranks (map vs volume plane)"
    group.attrs["map"] = result.map_name
    axes = [("offset_um", np.asarray(result.offsets_um), "um"), ("y_um", y_um, "um"),
            ("x_um", x_um, "um")]  # fmt: skip
    for name, stack in on_map.items():
        data = write_nxdata(
            group, name, stack.astype(np.float32), axes, chunks=(1, *stack.shape[1:])
        )
        data["data"].attrs["description"] = (
            "the volume on the map grid, planes at offset_um along the map's normal; NaN outside"
        )
    if "xct_on_map" in on_map:
        set_default(group, "xct_on_map")
        set_default(entry, "location")
    return group


def write_nxct_on_map(
    group: h5py.Group, rgb: np.ndarray, labels: np.ndarray | None, label_names: dict[int, str]
) -> None:
    """``fused_on_map`` ((ny, nx, 3) uint8) and ``labels_on_map`` ((ny, nx) uint8, attrs
    names) in the location ``group``: an NXCT file's volumes on the map grid at the slice."""
    group["fused_on_map"] = np.asarray(rgb, dtype=np.uint8)
    group["fused_on_map"].attrs["interpretation"] = "rgb-image"
    group["fused_on_map"].attrs["description"] = (
        "NXCT fused RGB (red X-ray, green = blue neutron) on the map grid at the slice, "
        "linear; 0 outside the volume"
    )
    if labels is not None:
        group["labels_on_map"] = np.asarray(labels, dtype=np.uint8)
        group["labels_on_map"].attrs["names"] = json.dumps(
            {str(k): v for k, v in label_names.items()}
        )
        group["labels_on_map"].attrs["description"] = (
            "NXCT segmentation labels on the map grid at the slice, nearest; 0 outside"
        )


def read_location(path: str | os.PathLike[str]) -> LocationResult:
    """The placement of a location file (``/entry/location``)."""
    hint = "make it with `jellyroll locate`"
    with open_run(path, "location file", "`jellyroll locate`") as f:
        group = require(f, path, "/entry/location", hint)
        score = require(f, path, "/entry/location/score", hint)
        matrix = require(f, path, "/entry/location/swaxs_to_xct", hint)
        if matrix.shape != (4, 4):
            raise RunFileError(
                f"{path}: {matrix.name} has shape {matrix.shape}, not (4, 4) (SPEC section 6); "
                f"{hint}"
            )
        return LocationResult(
            map_to_xct=matrix[()],
            z_um=_in_units(path, group["z_um"], "um")[0],
            parameters={
                name: _in_units(path, group[name], PARAMETERS[name])[0] for name in PARAMETERS
            },
            similarity=float(score.attrs["optimum"]),
            profile_height_um=_in_units(path, score["height_um"], "um"),
            profile_similarity=score["data"][()],
            map_name=str(group.attrs["map"]),
            offsets_um=group["xct_on_map/offset_um"][()] if "xct_on_map" in group else np.empty(0),
            height_interval_um=tuple(
                float(h) for h in _in_units(path, group["height_interval_um"], "um")
            )
            if "height_interval_um" in group
            else (np.nan, np.nan),
            height_defects=float(group["height_defects"][()])
            if "height_defects" in group
            else np.nan,
            height_warning=str(group.attrs.get("height_warning", "")),
            xct_voxel_um=float(group.attrs.get("xct_voxel_um", np.nan)),
            in_plane_rotation_deg=float(group.attrs.get("in_plane_rotation_deg", np.nan)),
            in_plane_shift_um=float(group.attrs.get("in_plane_shift_um", np.nan)),
            rotation_uncertainty_deg=float(group.attrs.get("rotation_uncertainty_deg", np.nan)),
            in_plane_warning=str(group.attrs.get("in_plane_warning", "")),
            path=Path(path),
        )


def _in_units(path: str | os.PathLike[str], dataset: h5py.Dataset, expected: str) -> np.ndarray:
    """``dataset``'s values (float64, flat) in ``expected`` ("um" or "deg") from its
    ``@units`` (:func:`~jellyroll.results.store.unit_factor`): a height in mm or an angle
    in rad was read as um or deg, exit 0."""
    factor = unit_factor(path, dataset, expected, um_per if expected == "um" else deg_per)
    return np.asarray(dataset[()], dtype=np.float64).ravel() * factor

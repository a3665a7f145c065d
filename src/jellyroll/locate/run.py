"""``jellyroll locate RUN.h5 XCT -o LOCATION.h5``: place the SWAXS-CT slice of a run file in
the lab X-ray CT volume of the same cell, and resample the X-ray (and neutron) volume on the
map grid at the slice and a few um above and below it; with an NXCT file, its fused RGB and
segmentation labels on the map grid at the slice too.

The map matched (:class:`LocateOptions` ``map``): the diode's attenuation map, else the WAXS
housing ring's map, else the summed scattering of the reconstruction. The X-ray volume is
read slab by slab (:func:`jellyroll.io.volumes.open_volume`); the neutron volume is placed
through ``nct_to_xct`` of an NXCT file when one is given, else registered here
(:func:`jellyroll.nxct.register.register_volumes`).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jellyroll.conventions import row_slabs
from jellyroll.io.lock import output_lock
from jellyroll.io.provenance import provenance_record, refuse_overwrite
from jellyroll.io.volumes import (
    VolumeSource,
    open_volume,
    planes_digest,
    refuse_same_volume,
    split_dataset,
    volume_files,
    volume_fingerprints,
)
from jellyroll.locate.core import (
    MAX_IN_PLANE_DISAGREEMENT_DEG,
    MAX_ROTATION_UNCERTAINTY_DEG,
    MIN_DEFECTS,
    Location,
    NoAngleError,
    locate_slice,
    pose_parameters,
)
from jellyroll.locate.dossier import volume_on_map
from jellyroll.locate.options import LocateOptions
from jellyroll.nxct.register import register_volumes
from jellyroll.nxct.segment import check_modality_order, check_xray_contrast
from jellyroll.results.location import (
    LocationResult,
    read_location,
    write_location_group,
    write_nxct_on_map,
)
from jellyroll.results.nxct import read_nxct
from jellyroll.results.run import MapName, map_axis, read_map_set
from jellyroll.results.store import (
    RunFileError,
    open_run,
    require,
    run_files,
    stage_key,
    write_stage_file,
)

_NCT_HINT = "give it with --nct-voxel-um"


def locate_key(
    run: str, xct: str, nct: str | None, options: LocateOptions, nxct: str | None = None
) -> str:
    """Key of a location result of its inputs (by fingerprint) with ``options``."""
    paths = [run, xct, *(path for path in (nct, nxct) if path)]
    return stage_key("locate", options.key_payload(), volume_fingerprints(paths))


def read_slice_map(
    run: str | os.PathLike[str], choice: str = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The map to place: (image (ny, nx), y_um, x_um, name) of the run file's ``choice``
    (``auto``: attenuation, else housing, else the summed scattering). ``auto`` goes on to
    the summed scattering when the run has no maps, never past maps it refuses: maps whose
    axes were in mm were passed over for the summed scattering, placed 62 um and 1.3 deg
    off, exit 0."""
    if choice != "summed":
        maps = read_map_set(run) if choice != "auto" or _has_maps(run) else None
        for name in (MapName.ATTENUATION, MapName.HOUSING):
            if maps is not None and choice in ("auto", str(name)) and name in maps:
                return maps[name], maps.y_um, maps.x_um, str(name)
        if choice != "auto":
            raise RunFileError(
                f"{run}: /entry/maps/{choice} is missing (no diode, or q not covering the "
                "housing ring); give another map with --map (e.g. --map summed)"
            )
    return (*_summed_scattering(run), "summed")


def _has_maps(run: str | os.PathLike[str]) -> bool:
    """Whether the run file holds ``/entry/maps`` (a stage file linked, or its own group)."""
    with open_run(run) as f:
        return "entry" in f and "maps" in f["entry"]


def _summed_scattering(run: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reconstruction summed over q, (ny, nx), read by row slabs."""
    hint = "reconstruct it with `jellyroll reconstruct`"
    with open_run(run) as f:
        data = require(f, run, "/entry/reconstruction/data", hint)
        total = np.empty(data.shape[:2], np.float32)
        for rows, slab in row_slabs(data):
            total[rows] = np.nansum(slab, axis=-1)
        group = require(f, run, "/entry/reconstruction", hint)
        y_um, x_um = map_axis(group, "y_um"), map_axis(group, "x_um")
    if not np.isclose(x_um[1] - x_um[0], y_um[1] - y_um[0], rtol=1e-3):
        raise RunFileError(
            f"{run}: /entry/reconstruction has {x_um[1] - x_um[0]:g} um steps along x but "
            f"{y_um[1] - y_um[0]:g} um along y; locate needs square pixels: resample it"
        )
    return total, y_um, x_um


def _grid(y_um: np.ndarray, x_um: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Pixel size (um) of a map grid and (y, x) of its centre in the map frame (um)."""
    centre = (float(y_um[0] + y_um[-1]) / 2, float(x_um[0] + x_um[-1]) / 2)
    return float(abs(x_um[1] - x_um[0])), centre


def _locate(image, y_um, x_um, xray: VolumeSource, arguments: dict):
    pixel_um, centre = _grid(y_um, x_um)
    return locate_slice(image, pixel_um, xray, xray.voxel_um, centre_um=centre, **arguments)


def volumes_on_map(
    source: VolumeSource,
    map_to_volume: np.ndarray,
    y_um: np.ndarray,
    x_um: np.ndarray,
    offsets_um: np.ndarray,
) -> np.ndarray:
    """The volume at the map's pixels (regular axes y_um, x_um) on planes ``offsets_um``
    along the map's normal, (k, ny, nx) float32, linear, NaN outside
    (:func:`jellyroll.locate.dossier.volume_on_map` per plane)."""
    pixel_um, centre = _grid(y_um, x_um)
    grid_to_map = np.eye(4)
    grid_to_map[1:3, 3] = centre  # the map's centred grid -> its own axes
    to_volume = np.asarray(map_to_volume, dtype=np.float64) @ grid_to_map
    return np.stack(
        [
            volume_on_map(
                source, source.voxel_um, to_volume, (y_um.size, x_um.size), pixel_um,
                height_um=float(offset),
            )
            for offset in offsets_um
        ]
    )  # fmt: skip


class _Channel:
    """One channel of an (nz, ny, nx, c) array-like as an (nz, ny, nx) one (read per box)."""

    def __init__(self, data, channel: int) -> None:
        self.data, self.channel = data, channel
        self.shape = tuple(int(n) for n in data.shape[:3])

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray:
        return self.data[(*box, self.channel)]


def nxct_on_map(
    nxct: str | os.PathLike[str], map_to_xct: np.ndarray, y_um: np.ndarray, x_um: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, dict[int, str]]:
    """The NXCT file's fused RGB ((ny, nx, 3) uint8, linear per channel, 0 outside) and
    segmentation labels ((ny, nx) uint8, nearest, 0 = void outside; None when the file has
    none) on the map grid at the slice, and the label names. The volumes lie on the grid of
    the X-ray or the neutron volume (``/entry/fused@grid``), each in its centred frame."""
    found = read_nxct(nxct)
    grid_to_xct = np.eye(4) if found.grid == "xct" else found.nct_to_xct
    map_to_grid = np.linalg.inv(grid_to_xct) @ np.asarray(map_to_xct, dtype=np.float64)
    pixel_um, centre = _grid(y_um, x_um)
    grid_to_map = np.eye(4)
    grid_to_map[1:3, 3] = centre
    to_grid, shape = map_to_grid @ grid_to_map, (y_um.size, x_um.size)

    def plane(source, order: int) -> np.ndarray:
        values = volume_on_map(source, found.voxel_um, to_grid, shape, pixel_um, order=order)
        return np.rint(np.nan_to_num(values, nan=0.0)).clip(0, 255).astype(np.uint8)

    with open_run(nxct, "NXCT file", "`jellyroll nxct`") as f:
        fused = f["/entry/fused/data"]
        rgb = np.stack([plane(_Channel(fused, c), 1) for c in range(3)], axis=-1)
        labels = None
        if "/entry/segmentation/labels" in f:
            labels = plane(f["/entry/segmentation/labels"], 0)
    return rgb, labels, found.label_names


def nxct_voxels(
    nxct: str | os.PathLike[str], options: LocateOptions
) -> tuple[float | None, float | None]:
    """The X-ray and neutron voxel sizes (um) to read the volumes at with ``--nxct``: those
    given, else those the NXCT file was registered at (its ``nct_to_xct`` is in um at them;
    a neutron volume read at its header's size instead was put on the map at the wrong
    scale, exit 0); None where neither says (the volume's metadata then). ValueError when a
    size given differs from the file's."""
    with open_run(nxct, "NXCT file", "`jellyroll nxct`") as f:
        hint = "make it with `jellyroll nxct`, or leave --nxct out"
        attrs = require(f, nxct, "/entry/registration", hint).attrs
        recorded = [attrs.get(f"{name}_voxel_um") for name in ("xct", "nct")]
    sizes = []
    for name, given, found in zip(
        ("xct", "nct"), (options.xct_voxel_um, options.nct_voxel_um), recorded, strict=True
    ):
        found = None if found is None else float(found)
        if given is not None and found is not None and not np.isclose(given, found, rtol=1e-3):
            raise ValueError(
                f"--{name}-voxel-um {given:g} um, but {nxct} registered the volumes with "
                f"{found:g} um {name.upper()} voxels: give the size the NXCT file was made "
                f"with, or make it again with --{name}-voxel-um {given:g}"
            )
        sizes.append(given if given is not None else found)
    return sizes[0], sizes[1]


def check_location_volume(location: str | os.PathLike[str], xray: VolumeSource) -> None:
    """ValueError when the X-ray volume given with ``location`` is not the one the slice was
    located in (another shape than its ``xct_shape``, or other values in its first, middle
    and last planes than its ``xct_digest``; a location file without them is not checked).
    Another cell's location file placed the map in a volume it was not found in, and
    `jellyroll link` put every case-B agglomerate on no bend, exit 0 (five cells of six)."""
    with open_run(location, "location file", "`jellyroll locate`") as f:
        group = f.get("/entry/location")
        attrs = {} if group is None else dict(group.attrs)
    if _differs(xray, attrs.get("xct_shape"), attrs.get("xct_digest")):
        raise ValueError(
            f"{location} places the slice in another X-ray volume than {xray.name} (its "
            "shape or its first, middle and last planes differ: another cell's, crop or "
            "export): give the location made for this volume (`jellyroll locate RUN XCT`)"
        )


def _differs(volume: VolumeSource, shape: Any, digest: Any) -> str | None:
    """How ``volume`` differs from the one a file recorded: "shape" (its ``shape``) or
    "planes" (its first, middle and last planes' ``digest``,
    :func:`~jellyroll.io.volumes.planes_digest`); None where it does not, or nothing is
    recorded."""
    if shape is not None and tuple(int(n) for n in np.ravel(shape)) != tuple(volume.shape):
        return "shape"
    if digest is not None and planes_digest(volume) != str(digest):
        return "planes"
    return None


def check_nxct_volumes(nxct: str | os.PathLike[str], volumes: dict[str, VolumeSource]) -> None:
    """ValueError when a volume given with ``nxct`` (``volumes``: "xct" or "nct" -> the
    volume) is not the one the NXCT file was made from: another shape than its
    ``xct_shape`` / ``nct_shape`` (else its fused grid's for the volume whose grid it is), or
    other values in its first, middle and last planes (``xct_digest`` / ``nct_digest``,
    :func:`~jellyroll.io.volumes.planes_digest`). nct_to_xct and the fused volume lie in the
    centred frames of those volumes: an X-ray volume with two empty slices more put the
    fused RGB, labels and neutron plane a slice off the map, and the neutron volume turned by
    90 deg in its plane (its shape the same) was resampled on the map turned, exit 0."""
    with open_run(nxct, "NXCT file", "`jellyroll nxct`") as f:
        hint = "make it with `jellyroll nxct`, or leave --nxct out"
        attrs = dict(require(f, nxct, "/entry/registration", hint).attrs)
        fused = f.get("/entry/fused/data")
        grid = None if fused is None else f["/entry/fused"].attrs.get("grid")
        grid_shape = None if fused is None else fused.shape[:3]
    for name, volume in volumes.items():
        which = "X-ray" if name == "xct" else "neutron"
        again = (
            f"give the {which} volume the NXCT file was made with (not another crop or "
            "export), or make the NXCT file again with this one"
        )
        recorded = attrs.get(f"{name}_shape")
        if recorded is None and grid == name:
            recorded = grid_shape
        differs = _differs(volume, recorded, attrs.get(f"{name}_digest"))
        if differs == "shape":
            raise ValueError(
                f"the {which} volume given is {tuple(volume.shape)} voxels, but {nxct} was "
                f"made with one of {tuple(int(n) for n in np.ravel(recorded))}: its "
                "registration and fused volume lie in the frame of that volume (centred on "
                f"its grid); {again}"
            )
        if differs == "planes":
            raise ValueError(
                f"the {which} volume given ({volume.name}) is not the one {nxct} was made with: "
                f"its shape is the same, but its first, middle and last planes hold other "
                f"values (turned, flipped, filtered or another scan?); {again}"
            )


def height_warning(location: Location, voxel_um: float) -> str:
    """Why the height found is not to be trusted to half a voxel (``voxel_um``), else ""."""
    uncertainty = location.height_uncertainty_um
    if not uncertainty > 0.5 * voxel_um:
        return ""
    low, high = location.height_interval_um
    if not location.height_defects > 0:
        why = "nothing in the volume changes along z (no defect to hold it)"
    elif location.height_defects < MIN_DEFECTS:
        why = "it rests on one defect, and a plane off its equator looks like its mirror plane"
    else:
        why = (
            "the defects it rests on may all lie off the slice alike (a plane off a defect's "
            "equator looks like its mirror plane) or disagree"
        )
    return (
        f"the height is uncertain by {uncertainty:.1f} um (more than half a {voxel_um:g} um "
        f"voxel): the data allow the map origin anywhere from {low:.1f} to {high:.1f} um; "
        f"{why}; finer slices alone do not resolve that: check it by eye in the similarity "
        "profile (/entry/location/score) and the vertical cut of the report, against what "
        "you know of the slice's height (the stage's position)"
    )


def in_plane_warning(location: Location, pixel_um: float, map_name: str = "attenuation") -> str:
    """Why the rotation and shift found are not to be trusted, else "": the rotation's
    standard error over :data:`~jellyroll.locate.core.MAX_ROTATION_UNCERTAINTY_DEG`
    (:func:`jellyroll.locate.core._rotation_uncertainty`), or the whole-cell correlation
    alone moves them by more than
    :data:`~jellyroll.locate.core.MAX_IN_PLANE_DISAGREEMENT_DEG` or one map pixel
    (``pixel_um``; :func:`jellyroll.locate.core._in_plane_disagreement`). The causes and
    remedies named are those of the map placed, ``map_name`` (the attenuation map was told
    to place the attenuation map)."""
    rotation, shift = location.in_plane_rotation_deg, location.in_plane_shift_um
    uncertainty = location.rotation_uncertainty_deg
    why = []
    if uncertainty > MAX_ROTATION_UNCERTAINTY_DEG:
        why.append(
            f"the map follows the X-ray plane too loosely to fix the rotation (its standard "
            f"error {uncertainty:.2f} deg, at most {MAX_ROTATION_UNCERTAINTY_DEG:g} deg)"
        )
    if rotation > MAX_IN_PLANE_DISAGREEMENT_DEG or shift > pixel_um:
        why.append(
            f"the whole cell alone places the map {rotation:.2f} deg and {shift:.1f} um from "
            f"where its defects draw it (at most {MAX_IN_PLANE_DISAGREEMENT_DEG:g} deg and one "
            f"{pixel_um:g} um pixel)"
        )
    if not why:
        return ""
    attenuation = map_name == "attenuation"
    cause = "a map of another state" if attenuation else (
        "another modality's map, --map summed or housing, or a map of another state"
    )  # fmt: skip
    return (
        f"the rotation and shift are uncertain: {'; '.join(why)}: the map shows the cell "
        f"otherwise than the X-ray volume ({cause}), and a jelly roll turned by a degree looks "
        "the same; check the placement by eye on the X-ray plane on the map grid "
        "(/entry/location/xct_on_map)"
        + ("" if attenuation else ", or place the attenuation map (--map attenuation)")
    )


def run_locate(
    run: str | os.PathLike[str],
    xct: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: LocateOptions | None = None,
    *,
    nct: str | os.PathLike[str] | None = None,
    nxct: str | os.PathLike[str] | None = None,
    progress: Callable[[float], None] | None = None,
) -> LocationResult:
    """Place the slice of ``run`` in the X-ray volume ``xct`` and write ``output`` (module
    docstring); ``nct`` (with ``nxct``, an NXCT file of the pair, when at hand) adds the
    neutron volume on the map grid, ``nxct`` its fused RGB and labels (:func:`nxct_on_map`).
    ``progress(fraction)`` follows the whole run."""
    options = options or LocateOptions()
    output = Path(output).resolve()
    say = progress or (lambda fraction: None)
    given = [*run_files(run), *(split_dataset(p)[0] for p in (xct, nct, nxct) if p is not None)]
    refuse_overwrite([output], given)
    if nct is not None:
        refuse_same_volume(xct, nct)
    xct_voxel_um, nct_voxel_um = options.xct_voxel_um, options.nct_voxel_um
    if nxct is not None:
        xct_voxel_um, nct_voxel_um = nxct_voxels(nxct, options)
    image, y_um, x_um, map_name = read_slice_map(run, options.map)
    if y_um.size != image.shape[0] or x_um.size != image.shape[1] or min(image.shape) < 2:
        raise RunFileError(f"{run}: the map {map_name} and its y_um / x_um axes disagree")
    offsets = np.asarray(options.offsets_um, dtype=np.float64)
    arguments = {
        "max_voxels": options.max_voxels, "max_points": options.max_points,
        "max_tilt_deg": options.max_tilt_deg, "min_similarity": options.min_similarity,
        "progress": lambda fraction: say(0.7 * fraction),
    }  # fmt: skip
    start = time.perf_counter()
    with (
        output_lock(output),
        open_volume(xct, xct_voxel_um, voxel_hint="give it with --xct-voxel-um") as xray,
    ):
        if nxct is not None:
            check_nxct_volumes(nxct, {"xct": xray})
        try:
            location = _locate(image, y_um, x_um, xray, arguments)
        except NoAngleError:
            if options.map != "auto" or map_name == "summed":
                raise
            # the housing ring gives the centre and scale, not the angle: the whole scattering
            image, y_um, x_um = _summed_scattering(run)
            map_name = "summed (the housing ring has no angle)"
            location = _locate(image, y_um, x_um, xray, arguments)
        warning = height_warning(location, xray.voxel_um)
        in_plane = in_plane_warning(location, _grid(y_um, x_um)[0], map_name)
        if warning and options.strict_height:
            raise ValueError(f"{warning} (--strict-height): no placement written to {output}")
        on_map = {"xct_on_map": volumes_on_map(xray, location.map_to_xct, y_um, x_um, offsets)}
        outside = offsets[~np.isfinite(on_map["xct_on_map"]).any(axis=(1, 2))]
        if outside.size:  # --offset-um 1e9 wrote a plane of NaN without a word
            warnings.warn(
                f"the planes at {', '.join(f'{o:g}' for o in outside)} um from the slice lie "
                f"outside the X-ray volume ({xct}): written as NaN; give offsets within its "
                "height",
                stacklevel=2,
            )
        if options.check_order and nct is None and map_name == "attenuation":
            # a neutron volume given alone as the X-ray one was placed and written, exit 0
            at_slice = on_map["xct_on_map"][int(np.argmin(np.abs(offsets)))]
            check_xray_contrast(at_slice, image, str(xct))
        say(0.8)
        nct_to_xct = None
        if nct is not None:
            with open_volume(nct, nct_voxel_um, voxel_hint=_NCT_HINT) as neutron:
                if nxct is not None:
                    check_nxct_volumes(nxct, {"nct": neutron})
                    with open_run(nxct, "NXCT file", "`jellyroll nxct`") as f:
                        hint = "make it with `jellyroll nxct`, or leave --nxct out"
                        nct_to_xct = require(f, nxct, "/entry/registration/nct_to_xct", hint)[()]
                else:
                    nct_to_xct = register_volumes(
                        xray, xray.voxel_um, neutron, neutron.voxel_um
                    ).nct_to_xct
                map_to_nct = np.linalg.inv(nct_to_xct) @ location.map_to_xct
                on_map["nct_on_map"] = volumes_on_map(neutron, map_to_nct, y_um, x_um, offsets)
            if options.check_order:
                # the pair on the map grid: the neutron volume placed as the X-ray one put
                # the slice 68 um off on the tiny twin, exit 0
                pair = np.column_stack(
                    [on_map[name].ravel() for name in ("xct_on_map", "nct_on_map")]
                )
                check_modality_order(pair, (str(xct), str(nct)))
        rgb_labels = None if nxct is None else nxct_on_map(nxct, location.map_to_xct, y_um, x_um)
        say(0.95)
        pixel_um, centre = _grid(y_um, x_um)
        centre_xct = location.map_to_xct @ np.array([0.0, *centre, 1.0])
        result = LocationResult(
            map_to_xct=location.map_to_xct,
            z_um=float(centre_xct[0]),
            parameters=pose_parameters(location.map_to_xct),
            similarity=location.similarity,
            profile_height_um=location.profile_height_um,
            profile_similarity=location.profile_similarity,
            map_name=map_name,
            offsets_um=offsets,
            height_interval_um=location.height_interval_um,
            height_defects=location.height_defects,
            height_warning=warning,
            xct_voxel_um=xray.voxel_um,
            in_plane_rotation_deg=location.in_plane_rotation_deg,
            in_plane_shift_um=location.in_plane_shift_um,
            rotation_uncertainty_deg=location.rotation_uncertainty_deg,
            in_plane_warning=in_plane,
        )
        configuration = {
            "stage": "locate",
            "options": options.key_payload(),
            "map": map_name,
            "map_pixel_um": pixel_um,
            "xct_voxel_um": xray.voxel_um,
            "nct_to_xct": None if nct_to_xct is None else nct_to_xct.tolist(),
            "nct_to_xct_from": None if nct is None else str(nxct or "registered here"),
            "in_plane_rotation_deg": location.in_plane_rotation_deg,
            "in_plane_shift_um": location.in_plane_shift_um,
            "rotation_uncertainty_deg": location.rotation_uncertainty_deg,
            "seconds": time.perf_counter() - start,
        }
        files = [file for path in given for file in volume_files(path) if file.is_file()]

        digest = planes_digest(xray)

        def fill(entry) -> None:
            group = write_location_group(entry, result, y_um, x_um, on_map)
            # which volume the placement lies in, for `jellyroll link` to check
            group.attrs.update(xct_shape=np.asarray(xray.shape), xct_digest=digest)
            if rgb_labels is not None:
                write_nxct_on_map(group, *rgb_labels)

        write_stage_file(
            output,
            fill,
            stage="locate",
            key=locate_key(
                str(run),
                str(xct),
                None if nct is None else str(nct),
                options,
                None if nxct is None else str(nxct),
            ),
            upstream="",
            provenance=provenance_record(configuration, inputs=files),
            provenance_name="locate",
            inputs=files,
        )
    say(1.0)
    return read_location(output)

"""The 2D-3D link of one cell: its diagnosis (the SAXS map's agglomerates and every map), its
CT volumes with their NXCT file (3D bends, registration, contrast windows) and the slice's
place in the X-ray volume (``map_to_xct``) into a link file and PNG figures beside it.

The link file (HDF5): ``/entry/link/agglomerates`` (the defect table with
:data:`jellyroll.locate.link.LINK_COLUMNS`), ``/entry/link/size_bins`` (the fraction on a bend
per size bin), ``/entry/link/map_to_xct`` (4x4, the placement used), attributes
``threshold_um``, ``threshold_misclassified``, ``critical_diameter_um``, ``location``,
``figures`` (JSON: name -> PNG file beside it), ``notes`` (JSON list), ``profile_height_um`` and
``profile_similarity`` datasets when the location recorded them, and ``/entry/provenance``.
``/entry/link/fraction_on_bend`` (NXdata, the default view: the share on a bend against each
size bin's lower edge) shows the table's columns.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from scipy.stats import rankdata

from jellyroll.conventions import um_per, unit_text
from jellyroll.io.images import refuse_foreign_images, save_png
from jellyroll.io.lock import output_lock
from jellyroll.io.nexus import nx_group, read_table, set_default, write_table
from jellyroll.io.provenance import file_fingerprint, provenance_record
from jellyroll.io.volumes import open_volume, volume_files, volume_fingerprints
from jellyroll.locate.dossier import defect_dossiers, select_defects, vertical_cut, volume_on_map
from jellyroll.locate.link import (
    bend_fraction_by_size,
    check_map_to_xct,
    link_to_bends,
    measured_bend_threshold,
)
from jellyroll.locate.link_figures import (
    bend_fraction_figure,
    dossier_figure,
    slice_in_volume_figure,
)
from jellyroll.locate.link_options import LinkOptions
from jellyroll.locate.run import check_location_volume, check_nxct_volumes
from jellyroll.nxct.fuse import fuse_rgb
from jellyroll.phases import graphite_composite
from jellyroll.results import (
    GRAPHITE_PHASE_MAPS,
    MapName,
    MapSet,
    RunFileError,
    defect_units,
    require_diagnosis,
)
from jellyroll.results.location import FRAMES, read_location
from jellyroll.results.nxct import NXCTResult, read_nxct
from jellyroll.results.store import open_run, recorded_key, stage_key, write_stage_file
from jellyroll.unroll import fill_unmeasured, trace_spiral

LOCATION_PATHS = ("/entry/location/swaxs_to_xct", "/entry/nxct/map_to_xct")
"""Where a placement is read, first found wins: a location file of ``jellyroll locate``
(``swaxs_to_xct``: the name SPEC section 6 gives it), or a digital twin's truth.h5 (its true
placement)."""
_VOXEL_HINT = (
    "make the location and NXCT files again, giving it with --xct-voxel-um / --nct-voxel-um"
)
ORIENTATION_MARGIN = 0.05
"""Rank correlation by which the diagnosis's attenuation map, turned or mirrored, may beat
the map as given against the X-ray plane at the placement before the link refuses the pair
(:func:`check_map_orientation`). The twins' maps as given: 0.87 (small) and 0.82 (tiny),
their best turned or mirrored copy 0.73 and 0.64 (a margin of 0.14 to 0.18); a diagnosis
whose maps were turned 90 deg after the location: 0.54 as given, 0.87 turned back."""
ORIENTATION_MATCH = 0.5
"""Rank correlation the better turned or mirrored copy must reach for the refusal: maps that
match the X-ray plane in no orientation (no attenuation contrast, another cell) are left
to the placement's own checks, not refused by chance differences between poor matches."""
PANEL_TITLES = {
    "xray": "X-ray CT at the slice",
    "neutron": "neutron CT at the slice",
    "fused": "NXCT fused: red X-ray, cyan neutron",
    "graphite": "graphite: LiC6 green, LiC12 blue, poorly lithiated red",
    str(MapName.SAXS_INTENSITY): "SAXS intensity",
    str(MapName.D_STAR): "d* (nm)",
}


@dataclass
class Placement:
    """The slice's place in the X-ray volume: ``map_to_xct`` (4x4, um), the file it came
    from, the similarity-vs-height profile when that file holds one, and its warning that
    the data do not fix the height (empty: none), and the X-ray voxel size (um) it was found
    with (None where the file does not record it: the volume's metadata then), and its
    warning that the rotation and shift are uncertain (empty: none)."""

    map_to_xct: np.ndarray
    source: Path
    profile_height_um: np.ndarray = field(default_factory=lambda: np.empty(0))
    profile_similarity: np.ndarray = field(default_factory=lambda: np.empty(0))
    height_warning: str = ""
    xct_voxel_um: float | None = None
    in_plane_warning: str = ""


def read_placement(path: str | os.PathLike[str]) -> Placement:
    """The placement in a location file of ``jellyroll locate`` (with its similarity-vs-height
    profile) or a digital twin's truth.h5 (``/entry/nxct/map_to_xct``, no profile)."""
    if not Path(path).is_file():
        raise RunFileError(f"{path}: no such location file; make it with `jellyroll locate`")
    with open_run(path, "location file", "`jellyroll locate`") as f:
        name = next((p for p in LOCATION_PATHS if p in f), None)
        if name is None:
            raise RunFileError(
                f"{path}: no /entry/location/swaxs_to_xct (4x4); give the LOCATION.h5 that "
                "`jellyroll locate` wrote (or a digital twin's truth.h5)"
            )
        matrix = check_map_to_xct(f[name][()], f"{path}: {name}", rigid=True)
        _check_placement_units(f[name].attrs.get("units"), f"{path}: {name}")
        located = "/entry/location/score" in f
    if not located:
        return Placement(matrix, Path(path), np.empty(0), np.empty(0))
    location = read_location(path)
    voxel = location.xct_voxel_um
    return Placement(
        matrix, Path(path), location.profile_height_um, location.profile_similarity,
        location.height_warning, voxel if np.isfinite(voxel) else None,
        location.in_plane_warning,
    )  # fmt: skip


def _check_placement_units(units: object, source: str) -> None:
    """RunFileError when a placement's ``@units`` name a length other than um (its first
    word: ``jellyroll locate`` writes "um, (z, y, x, 1) homogeneous; ..."): a matrix whose
    shift is in mm was read as um, the map put 1000 times too near the volume's centre and
    every agglomerate linked or not by the wrong distances, exit 0. No units: um."""
    if units is None:
        return
    first = re.split(r"[\s,;(]+", unit_text(units), maxsplit=1)[0]
    factor = um_per(first) if first else None
    if factor is not None and factor != 1.0:
        raise RunFileError(
            f"{source} is in {first!r} (@units {unit_text(units)!r}), not um (SPEC section "
            "6): give the placement in um, or make it again with `jellyroll locate`"
        )


def recorded_voxels(
    placement: Placement, found: NXCTResult, nxct: str | os.PathLike[str]
) -> tuple[float | None, float | None]:
    """The X-ray and neutron voxel sizes (um) the location and the NXCT file were made with
    (None where neither records one: the volumes' metadata then), so that the volumes are
    read at the scale the placement and the registration were found at (a size given to
    `locate` or `nxct` over wrong metadata was lost here). ValueError when the two files
    read the X-ray volume at different scales."""
    registered = found.attrs.get("xct_voxel_um")
    registered = float(registered) if registered is not None else None
    xct = placement.xct_voxel_um if placement.xct_voxel_um is not None else registered
    if registered is not None and not np.isclose(xct, registered, rtol=1e-3):
        raise ValueError(
            f"{placement.source} placed the slice in the X-ray volume read with {xct:g} um "
            f"voxels, {nxct} registered it with {registered:g} um voxels: make both with the "
            "same X-ray voxel size (--xct-voxel-um)"
        )
    neutron = found.attrs.get("nct_voxel_um")
    return xct, float(neutron) if neutron is not None else None


def link_key(
    diagnosis: str | os.PathLike[str],
    xct: str | os.PathLike[str],
    nxct: str | os.PathLike[str],
    location: str | os.PathLike[str],
    options: LinkOptions,
    nct: str | os.PathLike[str] | None = None,
) -> str:
    """Key of a link result: the diagnosis's and NXCT file's keys, the volumes' and the
    location's fingerprints, the options."""
    upstream = [recorded_key(diagnosis) or "", recorded_key(nxct) or ""]
    upstream += volume_fingerprints(v for v in (xct, nct) if v is not None)
    upstream.append(file_fingerprint(location))
    return stage_key("link", options.key_payload(), upstream)


@dataclass
class LinkResult:
    """What :func:`run_link` wrote: the linked table, the size bins, the threshold."""

    linked: pd.DataFrame
    size_bins: pd.DataFrame
    threshold_um: float
    misclassified: int
    figures: dict[str, Path]
    path: Path
    notes: list[str] = field(default_factory=list)


def _refuse_swapped(nxct: Path, location: Path) -> None:
    """ValueError when the file given as the NXCT file is a location file (the two swapped:
    it said the location file lacked ``nct_to_xct`` and to make it with `jellyroll nxct`,
    which the user had)."""
    try:
        with h5py.File(nxct, "r") as f:
            swapped = "entry/location" in f
    except OSError:
        return
    if swapped:
        raise ValueError(
            f"{nxct}, given as the NXCT file, is a location file (of `jellyroll locate`); give "
            f"the NXCT file (of `jellyroll nxct`) first, then the location file (are it and "
            f"{location} swapped?)"
        )


def _figure_path(output: Path, name: str) -> Path:
    """The PNG of figure ``name`` beside the link file ``output``: ``<stem>_<name>.png``."""
    return output.with_name(f"{output.stem}_{name}.png")


def run_link(
    diagnosis: str | os.PathLike[str],
    xct: str | os.PathLike[str],
    nxct: str | os.PathLike[str],
    location: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: LinkOptions | None = None,
    *,
    nct: str | os.PathLike[str] | None = None,
) -> LinkResult:
    """Link the agglomerates of ``diagnosis`` to the 3D bends of ``nxct`` through the
    placement in ``location``, write ``output`` and its figures (``<stem>_*.png``)."""
    options = options or LinkOptions()
    output = Path(output).resolve()
    cell = require_diagnosis(diagnosis)
    _refuse_swapped(Path(nxct), Path(location))
    found = read_nxct(nxct)
    placement = read_placement(location)
    pixel = cell.pixel_size_um
    shape = cell.maps[MapName.SAXS_INTENSITY].shape
    linked = link_to_bends(
        cell.agglomerates,
        found.bends,
        placement.map_to_xct,
        registration_error_um=options.registration_error_um,
    )
    selected = select_defects(linked, options.largest_case_a)
    names = ["slice", "fractions", *(f"dossier_{int(i)}" for i in selected["id"])]
    refuse_foreign_images(_figure_path(output, name) for name in names)
    bins = bend_fraction_by_size(linked)
    threshold = measured_bend_threshold(linked)
    critical = float(cell.summary.get("critical_diameter_um", np.nan))
    figures: dict[str, Path] = {}
    xct_voxel_um, nct_voxel_um = recorded_voxels(placement, found, nxct)
    drawn = [_figure_path(output, name).name for name in names]
    with (
        output_lock(output, figures=drawn),
        open_volume(xct, xct_voxel_um, voxel_hint=_VOXEL_HINT) as xray,
    ):
        # the figures are drawn before the link file is written: a run stopped in between
        # must not leave the link file of other inputs, found up to date beside new figures
        check_nxct_volumes(nxct, {"xct": xray})
        check_location_volume(location, xray)
        output.unlink(missing_ok=True)
        planes = {"xray": volume_on_map(xray, xray.voxel_um, placement.map_to_xct, shape, pixel)}
        if not np.isfinite(planes["xray"]).any():
            raise ValueError(
                f"{location}: the SWAXS map placed by it misses the X-ray volume {xct}; "
                "give the location made for this volume"
            )
        check_map_orientation(cell.maps, planes["xray"], diagnosis, location)
        if nct is not None:
            with open_volume(nct, nct_voxel_um, voxel_hint=_VOXEL_HINT) as neutron:
                check_nxct_volumes(nxct, {"nct": neutron})
                to_nct = np.linalg.inv(found.nct_to_xct) @ placement.map_to_xct
                planes["neutron"] = volume_on_map(neutron, neutron.voxel_um, to_nct, shape, pixel)
        maps = _dossier_maps(cell, planes, found.windows)
        notes = [
            f"the slice's {what}: {warning}"
            for what, warning in (
                ("height", placement.height_warning),
                ("rotation and shift", placement.in_plane_warning),
            )
            if warning
        ]
        try:
            # NaN where the map leaves the volume or the volume was not measured: read as
            # 0 (black material), a NaN band cut the trace of a 9-turn roll to 6.7 turns
            trace = trace_spiral(*fill_unmeasured(planes["xray"]), pixel)
        except ValueError as error:
            trace = None
            notes.append(f"no dossiers: the Cu collector was not traced in the X-ray plane at "
                         f"the slice ({error})")  # fmt: skip
        dossiers = [] if trace is None else defect_dossiers(
            maps, pixel, trace, selected,
            half_width_um=options.dossier_half_width_um, xray=xray, xray_voxel_um=xray.voxel_um,
        )  # fmt: skip
        missing = sorted(set(selected["id"].astype(int)) - {int(d.defect["id"]) for d in dossiers})
        if trace is not None and missing:
            notes.append(f"no dossier for defect(s) {', '.join(map(str, missing))}: off the Cu "
                         "collector traced in the X-ray plane at the slice")  # fmt: skip
        width = shape[1] * pixel
        cut = vertical_cut(xray, xray.voxel_um, placement.map_to_xct, width)
        figures["slice"] = save_png(
            slice_in_volume_figure(
                *cut,
                placement.profile_height_um,
                placement.profile_similarity,
                slice_height_um=float(placement.map_to_xct[0, 3]),
            ),
            _figure_path(output, "slice"),
        )
        figures["fractions"] = save_png(
            bend_fraction_figure(bins, critical, threshold.diameter_um),
            _figure_path(output, "fractions"),
        )
        for dossier in dossiers:
            name = f"dossier_{int(dossier.defect['id'])}"
            figures[name] = save_png(
                dossier_figure(dossier, PANEL_TITLES), _figure_path(output, name)
            )
        # the volumes' own files too (the slices of a folder): the link was made from them
        volumes = [xct] if nct is None else [xct, nct]
        files = [Path(diagnosis), Path(nxct), Path(location)]
        files += [file for given in volumes for file in volume_files(given)]
        record = provenance_record(
            {"stage": "link", "options": options.key_payload()}, inputs=files
        )

        def fill(entry: h5py.Group) -> None:
            group = nx_group(entry, "link", "NXcollection")
            write_table(group, "agglomerates", linked, defect_units(cell, linked))
            by_size = write_table(
                group, "size_bins", bins, dict.fromkeys(("count", "on_bend", "fraction"), "1")
            )
            # what silx and h5web show first: the share on a bend per size bin (the
            # threshold), its datasets those of the table (hard links, one copy)
            plot = nx_group(group, "fraction_on_bend", "NXdata")
            plot["fraction"], plot["lower_um"] = by_size["fraction"], by_size["lower_um"]
            by_size["lower_um"].attrs["units"] = "um"
            plot.attrs.update({"signal": "fraction", "axes": ["lower_um"]})
            set_default(group, "fraction_on_bend")
            set_default(entry, "link")
            group["map_to_xct"] = placement.map_to_xct
            group["profile_height_um"] = placement.profile_height_um
            group["profile_similarity"] = placement.profile_similarity
            units = {"map_to_xct": FRAMES, "profile_height_um": "um", "profile_similarity": "1"}
            for key, unit in units.items():
                group[key].attrs["units"] = unit
            group.attrs.update(
                {
                    "threshold_um": threshold.diameter_um,
                    "threshold_misclassified": threshold.misclassified,
                    "critical_diameter_um": critical,
                    "location": str(placement.source),
                    "figures": json.dumps({k: p.name for k, p in figures.items()}),
                    "notes": json.dumps(notes),
                }
            )

        write_stage_file(
            output, fill, stage="link", key=link_key(diagnosis, xct, nxct, location, options, nct),
            upstream="", provenance=record, provenance_name="link",
            inputs=files,
        )  # fmt: skip
    return read_link(output)


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of two same-shape images over the pixels finite in both (NaN
    under 10 such pixels or without contrast)."""
    finite = np.isfinite(a) & np.isfinite(b)
    if finite.sum() < 10:
        return float("nan")
    ra, rb = rankdata(a[finite]), rankdata(b[finite])
    if not (np.ptp(ra) > 0 and np.ptp(rb) > 0):
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def check_map_orientation(
    maps: MapSet, xray_plane: np.ndarray, diagnosis: str | os.PathLike[str], location: object
) -> None:
    """ValueError when the diagnosis's attenuation map (``maps``, (ny, nx) on the map grid)
    matches the X-ray plane at the placement (``xray_plane``, same grid, NaN outside the
    volume) worse than a copy of it turned by 90, 180 or 270 deg or mirrored, by more than
    :data:`ORIENTATION_MARGIN` in rank correlation (that copy reaching
    :data:`ORIENTATION_MATCH`): the location was made from maps in another orientation
    than the diagnosis's (a diagnosis of the maps turned 90 deg, linked
    through the location of the maps as they were: every agglomerate carried to the wrong
    place, 0 of 12 on a bend instead of 3 and no threshold, exit 0). Without an attenuation
    map (nothing in the diagnosis to compare with the X-ray volume) nothing is checked."""
    if MapName.ATTENUATION not in maps:
        return
    image = np.asarray(maps[MapName.ATTENUATION], dtype=np.float64)
    if image.shape != np.shape(xray_plane):
        return
    turned = {
        "turned 180 deg": np.rot90(image, 2),
        "mirrored top to bottom": image[::-1],
        "mirrored left to right": image[:, ::-1],
    }
    if image.shape[0] == image.shape[1]:  # a square map turns by 90 deg onto its own grid
        turned |= {
            "turned 90 deg": np.rot90(image, 1),
            "turned 270 deg": np.rot90(image, 3),
            "transposed": image.T,
            "mirrored about its other diagonal": np.rot90(image, 2).T,
        }
    given = _rank_correlation(image, xray_plane)
    scores = {name: _rank_correlation(values, xray_plane) for name, values in turned.items()}
    best = max(scores, key=lambda name: -np.inf if np.isnan(scores[name]) else scores[name])
    convincing = scores[best] >= ORIENTATION_MATCH  # NaN: False
    if convincing and not given + ORIENTATION_MARGIN >= scores[best]:
        raise ValueError(
            f"{location}: the attenuation map of {diagnosis} matches the X-ray volume at this "
            f"placement worse (rank correlation {given:.2f}) than the same map {best} "
            f"({scores[best]:.2f}): the location was made from maps in another orientation "
            "than the diagnosis's, or of another cell. Locate the run file the diagnosis was "
            "made from (`jellyroll locate`), or diagnose the maps the location was made from"
        )


def _dossier_maps(cell, planes: dict[str, np.ndarray], windows: dict) -> dict[str, np.ndarray]:
    """The co-registered maps of the dossiers, in the study's order (Fig. 3b-e)."""
    maps = dict(planes)
    if "neutron" in planes and {"xray", "neutron"} <= set(windows):
        maps["fused"] = (
            fuse_rgb(planes["xray"], planes["neutron"], windows["xray"], windows["neutron"]).astype(
                np.float32
            )
            / 255.0
        )
    if all(name in cell.maps for name in GRAPHITE_PHASE_MAPS):
        maps["graphite"] = graphite_composite(*(cell.maps[n] for n in GRAPHITE_PHASE_MAPS))
    for name in (MapName.SAXS_INTENSITY, MapName.D_STAR):
        maps[str(name)] = cell.maps[name]
    return maps


def read_link(path: str | os.PathLike[str]) -> LinkResult:
    """A link file of :func:`run_link` (figures as paths beside it)."""
    hint = "make it with `jellyroll link`, or `jellyroll run` on a cell with xct and nct"
    with open_run(path, "link file", "`jellyroll link`") as f:
        if "/entry/link" not in f:
            raise RunFileError(f"{path}: /entry/link is missing; {hint}")
        group = f["/entry/link"]
        names = json.loads(group.attrs["figures"])
        return LinkResult(
            linked=read_table(group["agglomerates"]),
            size_bins=read_table(group["size_bins"]),
            threshold_um=float(group.attrs["threshold_um"]),
            misclassified=int(group.attrs["threshold_misclassified"]),
            figures={k: Path(path).with_name(v) for k, v in names.items()},
            path=Path(path),
            notes=json.loads(group.attrs.get("notes", "[]")),
        )

"""Typed results of a scan's run file (SPEC section 6), one reader and one writer each.

    /entry/sinogram/data              (n_angles, n_translations, n_q) float32, NaN = missing
    /entry/sinogram/errors            same shape, one sigma
    /entry/sinogram/rotation_angle    (n_angles,) deg, ascending
    /entry/sinogram/translation       (n_translations,) mm, ascending
    /entry/sinogram/q                 (n_q,) 1/angstrom (the unit it was integrated in)
    /entry/sinogram/attenuation       (n_angles, n_translations) -ln(diode/monitor), optional
    /entry/reconstruction/data        (n_y, n_x, n_q) float32; q, x_um, y_um
    /entry/reconstruction/attenuation (n_y, n_x) 1/um, when the sinogram has one
    /entry/reconstruction@low_rank*   the low-rank step: low_rank (components, -1: none),
                                      low_rank_rule (energy / noise), low_rank_residual and
                                      low_rank_discarded_energy (its square: fraction of the
                                      sinogram's squared norm dropped), low_rank_noise_floor
                                      (Marchenko-Pastur edge of the whitened cube),
                                      low_rank_noise_energy (the noise's expected fraction),
                                      low_rank_noise_from (errors / data)
    /entry/maps/<name>/data           (n_y, n_x); y_um, x_um

Readers check the contract (units of the axes, shapes) and name the file and dataset in
their errors; writers go through :mod:`jellyroll.results.store` (one file per stage).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np
from scipy import ndimage

from jellyroll.conventions import (
    MAX_TRANSLATION_SPAN_MM,
    RowSliced,
    deg_per,
    mm_per,
    per_angstrom,
    um_per,
    unit_text,
)
from jellyroll.io.nexus import nx_group, set_default, write_nxdata
from jellyroll.results.store import (
    RunFileError,
    open_run,
    require,
    unit_factor,
    write_run_stage,
)

Q_UNITS = "1/angstrom"
"""Units of a scattering-vector axis that the maps stage accepts."""


class MapName(StrEnum):
    """Names of the maps of a run file and a results file (SPEC section 6)."""

    LIC6 = "lic6"
    LIC12 = "lic12"
    GRAPHITE_POOR = "graphite_poor"
    NMC_LITHIATED = "nmc_lithiated"
    NMC_DELITHIATED = "nmc_delithiated"
    GRAPHITE = "graphite"
    GRAPHITE_LABEL = "graphite_label"
    NMC_LABEL = "nmc_label"
    SAXS_INTENSITY = "saxs_intensity"
    D_STAR = "d_star_nm"
    D_STAR_REASON = "d_star_reason"
    ATTENUATION = "attenuation"
    HOUSING = "housing"


GRAPHITE_PHASE_MAPS = (MapName.LIC6, MapName.LIC12, MapName.GRAPHITE_POOR)
"""The graphite phase maps, in the composite's colour order (green, blue, red)."""
NMC_PHASE_MAPS = (MapName.NMC_LITHIATED, MapName.NMC_DELITHIATED)
"""The NMC phase maps, lithiated first."""


@dataclass
class Sinogram:
    """A reduced scan: patterns placed by motor positions.

    ``data`` and ``errors`` are (n_angles, n_translations, n_q); NaN marks missing frames.
    ``attenuation`` is -ln(diode / monitor), (n_angles, n_translations), when a diode exists.
    ``q_units`` is the unit of the radial axis (``1/angstrom`` unless integrated otherwise).
    ``monitor_reference`` is the monitor reading the intensities are counts at, when known
    (``/entry/sinogram/data@monitor_reference``).
    """

    data: np.ndarray
    errors: np.ndarray
    rotation_angle_deg: np.ndarray
    translation_mm: np.ndarray
    q_A: np.ndarray
    attenuation: np.ndarray | None = None
    rotation_centre_mm: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    q_units: str = Q_UNITS
    monitor_reference: float | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape  # type: ignore[return-value]


@dataclass
class Reconstruction:
    """Reconstructed channels (n_y, n_x, n_q) on a square grid of the translation step;
    ``attenuation`` (n_y, n_x) in 1/um when the scan had a diode. To be written, ``data``
    may also be an array-like read by row slabs (:class:`~jellyroll.conventions.RowSliced`)."""

    data: np.ndarray | RowSliced
    q_A: np.ndarray
    x_um: np.ndarray
    y_um: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    attenuation: np.ndarray | None = None
    q_units: str = Q_UNITS
    units: str = "arb. units / um"

    def require_q_in_inverse_angstrom(self, source: str | os.PathLike[str]) -> None:
        """Refuse a radial axis that is not q in 1/angstrom (e.g. reduced with 2th_deg); any
        name of that unit passes ("A^-1" was refused, saying to reduce in q_A^-1)."""
        if per_angstrom(self.q_units) != 1.0:
            raise RunFileError(
                f"{source}: /entry/reconstruction/q is in {self.q_units!r}, not {Q_UNITS}; "
                "the phase windows and d* need q: reduce the scan again with --unit q_A^-1"
            )


class Map(NamedTuple):
    """One map (n_y, n_x) with its units (a label map's units say what its values mean)."""

    values: np.ndarray
    units: str


@dataclass
class MapSet:
    """The maps of one scan on one grid (y_um (n_y,), x_um (n_x,), um); ``default`` is the
    map silx and h5web show first; ``notes`` say what the stage did or skipped."""

    maps: dict[str, Map]
    x_um: np.ndarray
    y_um: np.ndarray
    notes: list[str] = field(default_factory=list)
    default: str | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.maps[name].values

    def __contains__(self, name: object) -> bool:
        return name in self.maps

    @property
    def pixel_size_um(self) -> float:
        return float(abs(self.x_um[1] - self.x_um[0]))

    def same_grid(self, other: MapSet) -> bool:
        """Whether ``other`` lies on this set's grid (its shape, and its axes to 1e-3 um)."""
        return (
            self.x_um.shape == other.x_um.shape
            and self.y_um.shape == other.y_um.shape
            and np.allclose(self.x_um, other.x_um, atol=1e-3)
            and np.allclose(self.y_um, other.y_um, atol=1e-3)
        )

    def joined(self, other: MapSet, source: str = "") -> MapSet:
        """This set and ``other``'s maps on this set's grid (``other`` wins on equal names
        on the same grid).

        ``other`` on another regular grid is resampled onto this one (bilinear for values,
        nearest for integer label maps, NaN / -1 outside it) when its extent covers at least
        :data:`MIN_GRID_OVERLAP` of this grid, with a note; refused otherwise. A resampled
        map never replaces one of this set's own: the WAXS attenuation, blurred by the
        resampling, replaced the SAXS run's and the collector was traced on it (a trace
        that jumped layers, two false bends).
        """
        notes = [*self.notes, *(n for n in other.notes if n not in self.notes)]
        if self.same_grid(other):
            return MapSet({**self.maps, **other.maps}, self.x_um, self.y_um, notes, self.default)
        for maps in (self, other):
            if not (_regular(maps.x_um) and _regular(maps.y_um)):
                raise RunFileError(
                    f"{source}: the WAXS and SAXS maps are on different grids and one of them "
                    "has no regular pixel size (x_um / y_um not evenly spaced): cannot resample "
                    "one onto the other; reconstruct both scans with the same translations"
                )
        overlap = _overlap(other, self)
        if overlap < MIN_GRID_OVERLAP:
            raise RunFileError(
                f"{source}: the WAXS and SAXS maps are on different grids that overlap on "
                f"{overlap:.0%} of the {self.y_um.size} x {self.x_um.size} grid (at least "
                f"{MIN_GRID_OVERLAP:.0%} needed to resample); check that both scans are of "
                "the same slice and reconstruct them with the same translations"
            )
        resampled = {name: resample_map(item, other, self) for name, item in other.maps.items()}
        notes.append(
            f"maps of {source or 'the other scan'} resampled from their "
            f"{other.y_um.size} x {other.x_um.size} grid of {other.pixel_size_um:g} um onto "
            f"this {self.y_um.size} x {self.x_um.size} grid of {self.pixel_size_um:g} um "
            f"({overlap:.0%} covered)"
        )
        return MapSet({**resampled, **self.maps}, self.x_um, self.y_um, notes, self.default)


MIN_GRID_OVERLAP = 0.5
"""Least fraction of a grid that another map set must cover to be resampled onto it."""


def _regular(axis_um: np.ndarray) -> bool:
    """Whether an axis (um) has >= 2 points, ascending and evenly spaced (to 0.1 %)."""
    if axis_um.size < 2:
        return False
    steps = np.diff(axis_um)
    return bool(steps[0] > 0 and np.allclose(steps, steps[0], rtol=1e-3))


def _fractional_index(axis_um: np.ndarray, positions_um: np.ndarray) -> np.ndarray:
    """Positions (um) as fractional pixel indices of a regular ascending axis."""
    return (positions_um - axis_um[0]) / (axis_um[1] - axis_um[0])


def _overlap(source: MapSet, target: MapSet) -> float:
    """Fraction of ``target``'s pixels whose centre lies within ``source``'s pixels."""
    inside = [
        np.mean((index >= -0.5) & (index <= axis.size - 0.5))
        for index, axis in (
            (_fractional_index(source.x_um, target.x_um), source.x_um),
            (_fractional_index(source.y_um, target.y_um), source.y_um),
        )
    ]
    return float(inside[0] * inside[1])


def resample_map(item: Map, source: MapSet, target: MapSet) -> Map:
    """``item`` (a map of ``source``) on ``target``'s grid: bilinear for floating-point
    maps (NaN outside ``source``'s pixels), nearest for integer label maps (-1 outside; an
    unsigned one comes back signed, where uint8 wrapped -1 to the label 255)."""
    rows = _fractional_index(source.y_um, target.y_um)
    cols = _fractional_index(source.x_um, target.x_um)
    inside = np.logical_and.outer(
        (rows >= -0.5) & (rows <= source.y_um.size - 0.5),
        (cols >= -0.5) & (cols <= source.x_um.size - 0.5),
    )
    grid = np.meshgrid(rows, cols, indexing="ij")
    values = np.asarray(item.values)
    if values.dtype.kind in "iu":
        out = ndimage.map_coordinates(values, grid, order=0, mode="nearest")
        signed = np.promote_types(values.dtype, np.int8)
        return Map(np.where(inside, out.astype(signed), -1), item.units)
    out = ndimage.map_coordinates(values.astype(np.float64), grid, order=1, mode="nearest")
    return Map(np.where(inside, out, np.nan).astype(values.dtype), item.units)


def write_sinogram(
    path: str | os.PathLike[str],
    sinogram: Sinogram,
    provenance: Mapping[str, Any],
    *,
    key: str | None = None,
    inputs: Iterable[Path] = (),
) -> Path:
    """Store ``sinogram`` as the run file ``path`` (later stages of it are deleted)."""
    write_run_stage(
        path,
        "reduce",
        lambda entry: write_sinogram_group(entry, sinogram),
        provenance,
        key=key,
        upstream="",
        inputs=inputs,
    )
    return Path(path)


def write_sinogram_group(entry: h5py.Group, sinogram: Sinogram) -> h5py.Group:
    """The NXdata ``sinogram`` of ``entry`` (rotation_angle, translation, q axes)."""
    axes = [
        ("rotation_angle", sinogram.rotation_angle_deg, "deg"),
        ("translation", sinogram.translation_mm, "mm"),
        ("q", sinogram.q_A, sinogram.q_units),
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
        group["attenuation"].attrs["long_name"] = "-ln(diode / monitor), relative to air"
    if sinogram.rotation_centre_mm is not None:
        group["rotation_centre"] = float(sinogram.rotation_centre_mm)
        group["rotation_centre"].attrs["units"] = "mm"
    if sinogram.monitor_reference is not None:
        group["data"].attrs["monitor_reference"] = float(sinogram.monitor_reference)
    for key, value in sinogram.attrs.items():
        group.attrs[key] = value
    set_default(entry, "sinogram")
    return group


def read_sinogram(path: str | os.PathLike[str], *, errors: bool = True) -> Sinogram:
    """Load the sinogram of a run file, checking the axes against SPEC section 6.

    ``errors=False`` skips the one-sigma cube (``Sinogram.errors`` is then empty), halving
    the memory of stages that do not use it.
    """
    hint = "reduce the scan with `jellyroll reduce`"
    with open_run(path) as f:
        group = require(f, path, "/entry/sinogram", hint)
        data = require(f, path, "/entry/sinogram/data", hint)
        axes = {
            name: require(f, path, f"/entry/sinogram/{name}", hint)
            for name in ("rotation_angle", "translation", "q")
        }
        shape = data.shape
        if len(shape) != 3:
            raise RunFileError(f"{path}: /entry/sinogram/data is {len(shape)}D, not 3D")
        _refuse_other_axis_order(path, group, ("rotation_angle", "translation", "q"), hint)
        for axis, (name, dataset) in enumerate(axes.items()):
            if dataset.shape != (shape[axis],):
                raise RunFileError(
                    f"{path}: /entry/sinogram/{name} has shape {dataset.shape}, but the data "
                    f"have {shape[axis]} along that axis"
                )
        to_deg = unit_factor(path, axes["rotation_angle"], "deg", deg_per)
        to_mm = unit_factor(path, axes["translation"], "mm", mm_per)
        centre = group.get("rotation_centre")
        centre_to_mm = None if centre is None else unit_factor(path, centre, "mm", mm_per)
        if "attenuation" in group and group["attenuation"].shape != shape[:2]:
            raise RunFileError(
                f"{path}: /entry/sinogram/attenuation has shape {group['attenuation'].shape}; "
                f"it must be (angles, translations) = {shape[:2]} like the data"
            )
        q, q_units = _radial_axis(path, axes["q"])
        translation_mm = axes["translation"][()] * to_mm
        _check_translation_span(path, translation_mm)
        sigma = np.empty(0)
        if errors:
            stored = require(f, path, "/entry/sinogram/errors", hint)
            if stored.shape != shape:
                raise RunFileError(
                    f"{path}: /entry/sinogram/errors has shape {stored.shape}, the data "
                    f"{shape}; {hint}"
                )
            sigma = stored[()]
        return Sinogram(
            data=data[()],
            errors=sigma,
            rotation_angle_deg=axes["rotation_angle"][()] * to_deg,
            translation_mm=translation_mm,
            q_A=q,
            attenuation=group["attenuation"][()] if "attenuation" in group else None,
            rotation_centre_mm=None if centre is None else _scalar_mm(path, centre) * centre_to_mm,
            attrs=dict(group.attrs),
            q_units=q_units,
            monitor_reference=_monitor_reading(path, data),
        )


MEAN_PATTERN_ANGLES = 36
"""Angles, evenly spread, averaged into a sinogram's mean pattern: the line positions of a
cell's metals are the same at every angle, and 36 angles of the study's 300 read 12 % of
its 2.4 GB."""


def sinogram_mean_pattern(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """The mean pattern (n_q,) of the sinogram of the run stage file ``path`` over up to
    :data:`MEAN_PATTERN_ANGLES` angles (each read whole, NaN frames left out) and its q axis
    (1/A); None when ``path`` does not exist or its radial axis is not q."""
    if not Path(path).is_file():
        return None
    hint = "reduce the scan with `jellyroll reduce`"
    with open_run(path) as f:
        data = require(f, path, "/entry/sinogram/data", hint)
        q, q_units = _radial_axis(path, require(f, path, "/entry/sinogram/q", hint))
        if q_units != Q_UNITS or data.ndim != 3 or q.shape != data.shape[2:]:
            return None
        n_angles = data.shape[0]
        picked = np.unique(np.linspace(0, n_angles - 1, min(n_angles, MEAN_PATTERN_ANGLES)))
        total, count = np.zeros(q.size), np.zeros(q.size)
        for angle in picked.astype(int):
            frames = data[angle]
            finite = np.isfinite(frames)
            total += np.where(finite, frames, 0).sum(axis=0, dtype=np.float64)
            count += finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return q, total / count


def sinogram_monitor_reference(path: str | os.PathLike[str]) -> float:
    """The monitor reading the intensities of the sinogram of the run stage file ``path``
    are counts at (``/entry/sinogram/data@monitor_reference``); NaN where unknown (no such
    file, a scan without a monitor, a sinogram written elsewhere)."""
    if not Path(path).is_file():
        return float("nan")
    with open_run(path) as f:
        data = f.get("/entry/sinogram/data")
        value = None if data is None else _monitor_reading(path, data)
    return float("nan") if value is None else value


def _monitor_reading(path: str | os.PathLike[str], data: h5py.Dataset) -> float | None:
    """``data@monitor_reference`` of the sinogram of ``path``: None where absent; a
    RunFileError where it is not one finite positive number."""
    value = data.attrs.get("monitor_reference")
    if value is None:
        return None
    try:
        reading = float(np.asarray(value).item())
    except (TypeError, ValueError):
        reading = float("nan")
    if not (np.isfinite(reading) and reading > 0):
        raise RunFileError(
            f"{path}: /entry/sinogram/data@monitor_reference is {value!r}, not a positive "
            "number: give the monitor reading the intensities are counts at, or delete the "
            "attribute where it is not known"
        )
    return reading


def _refuse_other_axis_order(
    path: str | os.PathLike[str], group: h5py.Group, expected: tuple[str, ...], hint: str
) -> None:
    """Refuse an NXdata ``group`` whose ``@axes`` put its data in another dimension order
    than ``expected`` (SPEC section 6): another program's (x, y, q) cube with as many x as
    y was read as (y, x, q), every map transposed, exit 0."""
    if _transposed(group, expected) is not None:
        raise RunFileError(
            f"{path}: {group.name}@axes says its data are ({', '.join(nxdata_axes(group))}); "
            f"SPEC section 6 wants ({', '.join(expected)}): transpose the data (and @axes) "
            f"to that order; {hint}"
        )


def _radial_axis(path: str | os.PathLike[str], dataset: h5py.Dataset) -> tuple[np.ndarray, str]:
    """The radial axis and its unit: q in any unit of q converted to 1/angstrom (without
    ``@units``, 1/angstrom: SPEC section 6's contract, as the angles' degrees and the
    translations' millimetres); another unit (e.g. deg for 2theta) kept as it is, for the
    stages that need q to refuse."""
    units = unit_text(dataset.attrs.get("units", Q_UNITS))
    factor = per_angstrom(units)
    if factor is None:
        return dataset[()], units
    return np.asarray(dataset[()], dtype=np.float64) * factor, Q_UNITS


MIN_TRANSLATION_STEP_MM = 1e-4
"""Smallest step (mm) between a slice's translations, 0.1 um: a pencil beam of a few um
crossing a cell of mm (SPEC section 1: 5 x 20 um, 10-20 um steps); smaller readings are
millimetres labelled as micrometres (or nanometres)."""


def _check_translation_span(path: str | os.PathLike[str], translation_mm: np.ndarray) -> None:
    """Refuse translations (mm) spanning more than :data:`MAX_TRANSLATION_SPAN_MM`: 32
    steps of 10 um written in um without ``@units`` read as 10 mm steps, and the maps came
    out on 10 mm pixels with values 1000 times too small, exit 0. Or steps under
    :data:`MIN_TRANSLATION_STEP_MM`: the tiny twin's 20 um steps with ``@units`` "um" on
    their mm values were mapped on 0.02 um pixels, the attenuation 1000 times too large,
    exit 0 until the diagnosis."""
    finite = np.asarray(translation_mm, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    span = float(np.ptp(finite)) if finite.size else 0.0
    steps = np.abs(np.diff(np.unique(finite)))
    if span > MAX_TRANSLATION_SPAN_MM:
        raise RunFileError(
            f"{path}: /entry/sinogram/translation spans {span:.6g} mm (more than "
            f"{MAX_TRANSLATION_SPAN_MM:g} mm for one slice): SPEC section 6 gives it in mm; "
            "if these are micrometres, divide them (and rotation_centre) by 1000"
        )
    if steps.size and float(np.median(steps)) < MIN_TRANSLATION_STEP_MM:
        raise RunFileError(
            f"{path}: /entry/sinogram/translation steps by {1e3 * np.median(steps):.3g} um "
            f"(less than {1e3 * MIN_TRANSLATION_STEP_MM:g} um) as its @units read: if the "
            "values are millimetres labelled um, the scan's @units must say mm (or be left "
            "out); reduce it again"
        )


def _scalar_mm(path: str | os.PathLike[str], dataset: h5py.Dataset) -> float:
    """A one-number dataset (scalar or one element, e.g. written from a list) as a float;
    RunFileError naming it otherwise."""
    try:
        values = np.asarray(dataset[()], dtype=np.float64).ravel()
    except (TypeError, ValueError):
        values = None
    if values is None or values.size != 1:
        found = "not a number" if values is None else f"{values.size} values"
        raise RunFileError(
            f"{path}: {dataset.name} holds {found}; it must be one number, the rotation "
            "axis position in mm (or leave it out for the reconstruction to estimate it)"
        )
    return float(values[0])


def write_reconstruction(
    path: str | os.PathLike[str],
    reconstruction: Reconstruction,
    provenance: Mapping[str, Any],
    *,
    key: str | None = None,
) -> Path:
    """Store ``/entry/reconstruction`` of the run file ``path`` (its maps are deleted)."""
    write_run_stage(
        path,
        "reconstruct",
        lambda entry: write_reconstruction_group(entry, reconstruction),
        provenance,
        key=key,
    )
    return Path(path)


def write_reconstruction_group(entry: h5py.Group, reconstruction: Reconstruction) -> h5py.Group:
    """The NXdata ``reconstruction`` of ``entry`` (y_um, x_um, q axes) and its attenuation."""
    data = reconstruction.data
    group = write_nxdata(
        entry,
        "reconstruction",
        data.astype(np.float32, copy=False) if isinstance(data, np.ndarray) else data,
        [
            ("y_um", reconstruction.y_um, "um"),
            ("x_um", reconstruction.x_um, "um"),
            ("q", reconstruction.q_A, reconstruction.q_units),
        ],
        units=reconstruction.units,
    )
    if reconstruction.attenuation is not None:
        group.create_dataset(
            "attenuation", data=reconstruction.attenuation.astype(np.float32), compression="gzip"
        )
        group["attenuation"].attrs["units"] = "1/um"
    group.attrs.update(reconstruction.attrs)
    set_default(entry, "reconstruction")
    return group


def read_reconstruction(path: str | os.PathLike[str]) -> Reconstruction:
    """Load ``/entry/reconstruction`` of a run file."""
    with open_run(path) as f:
        return _reconstruction(f, path, lazy=False)


@contextmanager
def open_reconstruction(path: str | os.PathLike[str]) -> Iterator[Reconstruction]:
    """``/entry/reconstruction`` of a run file, checked as :func:`read_reconstruction`
    does, with ``data`` the (y, x, q) h5py dataset itself, open while the block runs: a
    reader that takes slabs of it never holds the cube (8 GB at the study's size). The
    file that holds the data (the stage file an index links to) is closed on leaving."""
    with open_run(path) as f:
        reconstruction = _reconstruction(f, path, lazy=True)
        try:
            yield reconstruction
        finally:
            reconstruction.data.file.close()


def _reconstruction(f: h5py.File, path: str | os.PathLike[str], *, lazy: bool) -> Reconstruction:
    """The reconstruction of the open run file ``f``; ``data`` read whole unless ``lazy``."""
    hint = "reconstruct it with `jellyroll reconstruct`"
    group = require(f, path, "/entry/reconstruction", hint)
    data = require(f, path, "/entry/reconstruction/data", hint)
    if data.ndim != 3:
        raise RunFileError(
            f"{path}: /entry/reconstruction/data is {data.ndim}D, not (y, x, q); {hint}"
        )
    _refuse_other_axis_order(path, group, ("y_um", "x_um", "q"), hint)
    # the maps of a data block whose axes disagree would be written, then refused
    # by every reader downstream: say so here, naming the dataset
    expected = {"y_um": (data.shape[0],), "x_um": (data.shape[1],), "q": (data.shape[2],)}
    if "attenuation" in group:
        expected["attenuation"] = data.shape[:2]
    for name, shape in expected.items():
        found = require(f, path, f"/entry/reconstruction/{name}", hint).shape
        if found != shape:
            raise RunFileError(
                f"{path}: /entry/reconstruction/{name} has shape {found}, the data "
                f"{data.shape} want {shape}; {hint}"
            )
    q, q_units = _radial_axis(path, group["q"])
    # the maps are written on these axes in um: axes in mm made 0.01 um pixels, exit 0
    x_um, y_um = map_axis(group, "x_um"), map_axis(group, "y_um")
    return Reconstruction(
        data=data if lazy else data[()],
        q_A=q,
        x_um=x_um,
        y_um=y_um,
        attrs={k: v for k, v in group.attrs.items() if k not in _NXDATA_ATTRS},
        attenuation=_per_um(path, group["attenuation"]) if "attenuation" in group else None,
        q_units=q_units,
        units=unit_text(data.attrs.get("units", "arb. units / um")),
    )


_NXDATA_ATTRS = {"NX_class", "signal", "axes", "default"}


def _per_um(path: str | os.PathLike[str], dataset: h5py.Dataset) -> np.ndarray:
    """An attenuation coefficient in 1/um (without ``@units``, 1/um): another inverse length
    (1/mm, cm^-1) converted, anything else refused; one in 1/cm became the attenuation map
    in 1/um, 10^4 times too large."""
    return np.asarray(dataset[()], dtype=np.float32) / np.float32(_um_per_inverse(path, dataset))


def _um_per_inverse(path: str | os.PathLike[str], dataset: h5py.Dataset) -> float:
    """um per unit of the inverse length in ``dataset``'s ``@units`` (1/mm: 1000; none or
    empty: 1/um); RunFileError for anything else."""
    units = unit_text(dataset.attrs.get("units", "")) or "1/um"
    text = units.replace(" ", "")
    if text.startswith("1/"):
        um = um_per(text[2:])
    else:
        um = um_per(text[:-2].removesuffix("^")) if text.endswith("-1") else None
    if um is None:
        raise RunFileError(
            f"{path}: {dataset.name} is in {units!r}, not an inverse length; it must be the "
            "linear attenuation coefficient in 1/um"
        )
    return um


def write_map_set(
    path: str | os.PathLike[str],
    maps: MapSet,
    provenance: Mapping[str, Any],
    *,
    key: str | None = None,
) -> Path:
    """Store the map set as ``/entry/maps`` of the run file ``path``."""
    write_run_stage(path, "maps", lambda entry: write_maps_group(entry, maps), provenance, key=key)
    return Path(path)


def write_maps_group(entry: h5py.Group, maps: MapSet) -> h5py.Group:
    """One NXdata per map under ``entry/maps`` (an NXcollection), notes as an attribute."""
    group = nx_group(entry, "maps", "NXcollection")
    axes = [("y_um", maps.y_um, "um"), ("x_um", maps.x_um, "um")]
    for name, item in maps.maps.items():
        write_nxdata(group, str(name), np.asarray(item.values), axes, units=item.units)
    group.attrs["notes"] = "\n".join(maps.notes)
    if maps.default:
        set_default(group, maps.default)
        set_default(entry, "maps")
    return group


def read_map_set(path: str | os.PathLike[str], group_path: str = "/entry/maps") -> MapSet:
    """The maps of a run file (or of a results file's ``/entry/maps``), every one of them."""
    hint = "compute them with `jellyroll maps`"
    with open_run(path) as f:
        group = require(f, path, group_path, hint)
        return _map_set(group)


def nxdata_axes(group: h5py.Group) -> list[str]:
    """The axis names of an NXdata ``group``'s ``@axes``, in the signal's dimension order:
    an array of names (str or bytes) or one string split at ``:``, ``,`` or spaces (older
    NeXus); [] without the attribute."""
    names = group.attrs.get("axes")
    if names is None:
        return []
    if isinstance(names, (str, bytes)):
        return [n for n in re.split(r"[:,\s]+", unit_text(names)) if n]
    return [unit_text(n) for n in np.asarray(names).ravel()]


def _transposed(group: h5py.Group, expected: tuple[str, ...]) -> tuple[int, ...] | None:
    """The permutation that brings ``group``'s signal to the dimension order ``expected``
    when its ``@axes`` name exactly those axes in another order; None when they are in
    that order, or do not name them all (index axes ".", no ``@axes``)."""
    names = nxdata_axes(group)
    if sorted(names) != sorted(expected) or tuple(names) == expected:
        return None
    return tuple(names.index(name) for name in expected)


def _map_set(group: h5py.Group) -> MapSet:
    maps: dict[str, Map] = {}
    x_um = y_um = np.empty(0)
    first = ""
    for name, item in group.items():
        data = item["data"]
        # another program's map stored (x, y) as its @axes say: read as (y, x), a square map
        # came back transposed (every value mirrored about the diagonal), exit 0
        order = _transposed(item, ("y_um", "x_um"))
        axes = map_axis(item, "x_um"), map_axis(item, "y_um")
        shape = data.shape if order is None else tuple(data.shape[i] for i in order)
        if shape != (axes[1].size, axes[0].size):
            raise RunFileError(
                f"{group.file.filename}: {data.name} has shape {shape} (y, x), but its axes "
                f"y_um and x_um hold {axes[1].size} and {axes[0].size} values; write the map "
                "with one axis value per row and column"
            )
        if not np.isclose(_step(axes[0]), _step(axes[1]), rtol=1e-3):
            raise RunFileError(
                f"{group.file.filename}: {item.name} has {_step(axes[0]):g} um steps along x "
                f"but {_step(axes[1]):g} um along y; jellyroll needs square pixels: resample "
                "the maps"
            )
        if maps and not MapSet({}, x_um, y_um).same_grid(MapSet({}, *axes)):
            # the set took the last map's axes: a map of the same shape on another grid
            # (pasted from another scan) was read on this one's pixels, exit 0
            raise RunFileError(
                f"{group.file.filename}: {item.name} lies on other x_um / y_um than "
                f"{group.name}/{first}; every map of a set shares one grid: resample the "
                "map onto it, or store it in its own run file"
            )
        x_um, y_um = axes
        first = first or name
        values = data[()] if order is None else np.ascontiguousarray(data[()].transpose(order))
        units = _map_units(data, name)
        if name == MapName.ATTENUATION:
            # in 1/um, as the maps stage writes it: another program's map in 1/mm (or
            # cm^-1) was read as 1/um, 1000 times too large, exit 0
            um = _um_per_inverse(group.file.filename, data)
            values, units = (values / um if um != 1.0 else values), "1/um"
        maps[name] = Map(values, units)
    _check_family_units(group, maps)
    notes = str(group.attrs.get("notes", ""))
    default = group.attrs.get("default")
    return MapSet(
        maps,
        x_um,
        y_um,
        [line for line in notes.split("\n") if line],
        None if default is None else str(default),
    )


def _check_family_units(group: h5py.Group, maps: dict[str, Map]) -> None:
    """Refuse phase maps of one family (graphite, NMC) in different units: their shares are
    ratios of their sums (one written per 1/nm beside the others per 1/angstrom weighed 10
    times the others, exit 0)."""
    for family in (GRAPHITE_PHASE_MAPS, NMC_PHASE_MAPS):
        units = {name: maps[name].units for name in family if name in maps}
        if len(set(units.values())) > 1:
            listed = ", ".join(f"{name} {unit!r}" for name, unit in units.items())
            raise RunFileError(
                f"{group.file.filename}: the phase maps of {group.name} are in different "
                f"units ({listed}); their shares compare their sums: write them in one unit"
            )


def _map_units(data: h5py.Dataset, name: str) -> str:
    """The ``@units`` of a map's values; for d* (its name says nm) a length unit other than
    nm is refused: a d* map written in angstrom was read as nm, 10 times too large."""
    units = unit_text(data.attrs.get("units", ""))
    if name == MapName.D_STAR and units and um_per(units) != 1e-3:
        raise RunFileError(
            f"{data.file.filename}: {data.name} is in {units!r}; {MapName.D_STAR} is d* in "
            "nm (SPEC section 3): convert the values to nm and set @units to nm"
        )
    return units


def _step(axis: np.ndarray) -> float:
    return float(axis[1] - axis[0])


def map_axis(item: h5py.Group, name: str) -> np.ndarray:
    """A map's (or a reconstruction's) pixel-centre axis (um): at least 2 finite values,
    ascending, evenly spaced, centred on 0; refused otherwise (a map in mm, or flipped, was
    read as um or mirrored, exit 0)."""
    dataset = item[name]
    where = f"{item.file.filename}: {dataset.name}"
    units = dataset.attrs.get("units", "um")
    if um_per(units) != 1.0:
        raise RunFileError(f"{where} is in {units!r}, not um (SPEC section 6): convert the axis")
    axis = np.asarray(dataset[()], dtype=np.float64).ravel()
    if axis.size < 2 or not np.isfinite(axis).all():
        raise RunFileError(f"{where} must hold at least 2 finite values, got {axis.size}")
    steps = np.diff(axis)
    if not (steps > 0).all():
        raise RunFileError(
            f"{where} must ascend (pixel centres ascending left to right, top to bottom): flip "
            "the map and its axis together"
        )
    if not np.allclose(steps, steps.mean(), rtol=1e-3):
        raise RunFileError(f"{where} is not evenly spaced; resample the map on a regular grid")
    middle = 0.5 * (axis[0] + axis[-1])
    if abs(middle) > 0.01 * steps.mean():
        # diagnose, link and the dossiers place everything on the centred grid of the map's
        # shape (jellyroll.conventions): an offset axis put every agglomerate 671 um off
        raise RunFileError(
            f"{where} is centred on {middle:.4g} um, not 0: a map's axes put the rotation axis "
            f"at 0 (pixel centres (i - (n - 1) / 2) x pixel); subtract {middle:.4g} um from it"
        )
    return axis


def read_map(path: str | os.PathLike[str], name: str) -> np.ndarray:
    """One map (n_y, n_x) of a run file, checked and converted as :func:`read_map_set`
    reads it (read raw, a map stored (x, y) came back transposed, an attenuation in 1/mm
    1000 times too large, exit 0)."""
    with open_run(path) as f:
        hint = "compute it with `jellyroll maps`"
        require(f, path, f"/entry/maps/{name}/data", hint)
        return _map_set(f["/entry/maps"])[name]

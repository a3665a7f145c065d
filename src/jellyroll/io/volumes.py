"""Reading and writing reconstructed volumes (multi-page TIFF, TIFF slice folders, HDF5).

Volumes are (nz, ny, nx) arrays with isotropic voxels whose size is carried in micrometres.
:func:`write_tiff_stack` writes an ImageJ-flavoured TIFF (Fiji shows the voxel size under
Image > Properties) that also holds a JSON description in the ImageJ "Info" property;
:func:`read_volume` reads that, other TIFFs, folders of slices and HDF5 datasets.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jellyroll.conventions import um_per, unit_text
from jellyroll.io.provenance import atomic_output, data_files, file_fingerprint, json_text
from jellyroll.io.scans import natural_key

_IMAGEJ_DTYPES = {np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.float32)}
_TIFF_SUFFIXES = (".tif", ".tiff")
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".nx5")
_JSON_KEY = "jellyroll_volume"
_HINT = "pass voxel_size_um (command line: --xct-voxel-um or --nct-voxel-um)"


def write_tiff_stack(
    path: str | os.PathLike[str],
    volume: np.ndarray,
    voxel_size_um: float,
    *,
    description: Mapping[str, Any] | None = None,
) -> Path:
    """Write a (nz, ny, nx) volume as one multi-page ImageJ TIFF, atomically; return the path.

    The voxel size goes into the ImageJ metadata (XY resolution = 1/voxel per um, ``spacing``,
    ``unit='um'``) and, with ``description``, into a JSON text in the ImageJ "Info" property.
    ImageJ stores only uint8, uint16, int16 and float32: bool is stored as uint8, float64 and
    float16 as float32 (rounded), other integers as float32 when exact (else a ValueError);
    :func:`read_volume` restores the original integer/bool dtype from the JSON.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"{path}: expected a (nz, ny, nx) volume, got shape {volume.shape}")
    voxel = _check_voxel(voxel_size_um, str(path))
    stored = _imagej_compatible(volume, str(path))
    info = {
        _JSON_KEY: 1,
        "voxel_size_um": voxel,
        "shape": list(volume.shape),
        "dtype": volume.dtype.str,
        "axes": "ZYX",
        "description": dict(description or {}),
    }
    import tifffile

    final = Path(path)
    with atomic_output(final) as tmp:
        tifffile.imwrite(
            tmp,
            stored[..., np.newaxis],  # explicit samples axis: a trailing nx == 1 stays X
            imagej=True,
            photometric="minisblack",
            resolution=(1.0 / voxel, 1.0 / voxel),
            metadata={
                "axes": "ZYXS",
                "spacing": voxel,
                "unit": "um",
                "Info": json_text(info),
            },
        )
    return final


def read_volume(
    path: str | os.PathLike[str],
    voxel_size_um: float | None = None,
    dataset: str | None = None,
) -> tuple[np.ndarray, float]:
    """Read a volume and its voxel size (um): ``(array (nz, ny, nx), voxel_size_um)``.

    ``path`` is a multi-page TIFF, a folder of single-slice TIFFs (sorted naturally by file
    name: ``s2`` before ``s10``) or an HDF5 file with ``dataset``. The voxel size comes from the
    metadata (jellyroll JSON, ImageJ spacing/unit, a centimetre TIFF resolution, or the HDF5
    attributes ``voxel_size_um`` or ``voxel_size`` + ``units``); the argument overrides it.
    A single 2D image is returned as one slice. Any problem raises a ValueError naming the file.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no such file or folder; check the path")
    strict = voxel_size_um is None  # a size given wins over the metadata, readable or not
    if p.is_dir():
        data, found = _read_folder(p, strict)
    elif p.suffix.lower() in _HDF5_SUFFIXES or _is_hdf5(p):
        data, found = _read_hdf5(p, dataset, strict)
    else:
        data, found = _read_tiff(p, strict)
    if voxel_size_um is not None:
        return data, _check_voxel(voxel_size_um, str(p))
    if found is None:
        where = f"{p}" if dataset is None else f"{p} (dataset {dataset!r})"
        raise ValueError(f"{where}: the voxel size is not recorded in the metadata; {_HINT}")
    return data, _check_voxel(found, str(p))


def _check_voxel(value: float, where: str) -> float:
    try:
        voxel = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: voxel size {value!r} is not a number") from None
    if not (math.isfinite(voxel) and voxel > 0):
        raise ValueError(f"{where}: voxel size must be a positive finite number, got {value!r}")
    return voxel


def _imagej_compatible(volume: np.ndarray, where: str) -> np.ndarray:
    if not volume.dtype.isnative:
        volume = volume.astype(volume.dtype.newbyteorder("="))
    dtype = volume.dtype
    if dtype in _IMAGEJ_DTYPES:
        return volume
    if dtype == np.bool_:
        return volume.astype(np.uint8)
    if dtype.kind == "f":
        return volume.astype(np.float32)
    if dtype.kind in "iu":
        as_float = volume.astype(np.float32)
        if volume.size and not np.array_equal(as_float.astype(dtype), volume):
            raise ValueError(
                f"{where}: {dtype} values beyond +-2^24 cannot be stored exactly in an ImageJ "
                "TIFF (uint8, uint16, int16 or float32); rescale or convert the volume first"
            )
        return as_float
    raise ValueError(f"{where}: cannot store data type {dtype} in a TIFF volume")


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89HDF\r\n\x1a\n"


def _as_volume(data: np.ndarray, where: str) -> np.ndarray:
    if data.ndim == 2:
        return data[np.newaxis]
    if data.ndim != 3:
        raise ValueError(
            f"{where}: expected a 3D (nz, ny, nx) volume or a 2D slice, got shape {data.shape}"
        )
    return data


def _tiff_voxel(tif: Any, strict: bool = True) -> tuple[float | None, dict[str, Any]]:
    """Voxel size (um) and the jellyroll JSON record (or {}) of one open TiffFile; a size
    that is not cubic is refused (``strict``) or read as none (a size given overrides it)."""
    ij = tif.imagej_metadata or {}
    info = ij.get("Info")
    calibrated = _calibration_voxel(tif, ij, strict)
    if isinstance(info, str):
        try:
            record = json.loads(info)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and record.get(_JSON_KEY):
            voxel = float(record["voxel_size_um"])
            if calibrated is None or np.isclose(calibrated, voxel, rtol=1e-3):
                return voxel, record
            # Fiji keeps the "Info" text through Image > Scale and updates the calibration
            if not strict:
                return None, {}
            raise ValueError(
                f"{tif.filehandle.path}: its jellyroll record says {voxel:g} um voxels, its "
                f"calibration (resolution, spacing) {calibrated:g} um: resampled in another "
                f"program after jellyroll wrote it? {_HINT} with the true size"
            )
    return calibrated, {}


def _calibration_voxel(tif: Any, ij: dict[str, Any], strict: bool) -> float | None:
    """Voxel size (um) of an open TiffFile's ImageJ calibration or centimetre resolution
    (see :func:`_tiff_voxel`), None when it records none."""
    page = tif.pages.first
    pixels_per_unit = _resolution(page, "XResolution")
    rows_per_unit = _resolution(page, "YResolution")
    if (
        pixels_per_unit
        and rows_per_unit
        and not np.isclose(pixels_per_unit, rows_per_unit, rtol=1e-3)
    ):
        if not strict:
            return None
        raise ValueError(
            f"{tif.filehandle.path}: the pixels are {1 / pixels_per_unit:g} wide but "
            f"{1 / rows_per_unit:g} tall (XResolution, YResolution, in the file's unit); "
            "jellyroll needs cubic voxels: resample the volume"
        )
    ome = _ome_voxel(tif, strict)
    if ome is not None or _ome_sizes(tif):  # the OME sizes, per axis, rule (None: unreadable)
        return ome
    if ij:
        scale = um_per(ij.get("unit", ""))
        if scale is not None and pixels_per_unit:
            size = scale / pixels_per_unit
            if "spacing" in ij and not np.isclose(scale * float(ij["spacing"]), size, rtol=1e-3):
                if not strict:
                    return None
                raise ValueError(
                    f"{tif.filename}: the slices are {scale * float(ij['spacing']):g} um apart "
                    f"but the pixels {size:g} um wide; jellyroll needs cubic voxels: resample "
                    "the volume"
                )
            return size
        if scale is not None and "spacing" in ij:
            return scale * float(ij["spacing"])
        return None
    # plain TIFF: trust only a centimetre resolution unit (inches mostly mean a 72 dpi default)
    unit = page.tags.get("ResolutionUnit")
    if unit is not None and int(unit.value) == 3 and pixels_per_unit:
        return 1e4 / pixels_per_unit
    return None


def _ome_sizes(tif: Any) -> dict[str, tuple[str, str]]:
    """The physical sizes an OME-TIFF's first image records, ``{"X": (value, unit), ...}``
    for X, Y and (in a stack of more than one plane) Z; {} when none (or not OME). The unit
    defaults to um, as in the OME schema."""
    xml = tif.ome_metadata if getattr(tif, "is_ome", False) else None
    if not xml:
        return {}
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return {}
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return {}
    axes = "XYZ" if int(pixels.get("SizeZ", "1") or 1) > 1 else "XY"
    return {
        a: (pixels.get(f"PhysicalSize{a}", ""), pixels.get(f"PhysicalSize{a}Unit", "µm"))
        for a in axes
        if pixels.get(f"PhysicalSize{a}") is not None
    }


def _ome_voxel(tif: Any, strict: bool) -> float | None:
    """Voxel size (um) of an OME-TIFF's ``PhysicalSizeX/Y/Z`` (:func:`_ome_sizes`), None when
    it records none; refused (``strict``, else None) when a size is not a number, in an
    unknown unit or not cubic. Before, an OME-TIFF's sizes were not read: its centimetre
    resolution tags (in-plane only) gave the voxel, a stack of 4.2 um pixels 8.4 um apart
    read as 4.2 um cubic voxels, exit 0."""
    sizes = _ome_sizes(tif)
    if not sizes:
        return None
    where = tif.filehandle.path
    found = {}
    for axis, (value, unit) in sizes.items():
        scale = um_per(unit)
        try:
            size = float(value) * scale if scale is not None else math.nan
        except ValueError:
            size = math.nan
        if not (math.isfinite(size) and size > 0):
            if not strict:
                return None
            raise ValueError(
                f"{where}: the OME metadata gives PhysicalSize{axis} = {value!r} {unit!r}, not "
                f"a length jellyroll reads (um, nm, mm, ...); {_HINT}"
            )
        found[axis] = size
    if "X" not in found or "Y" not in found:  # a size along one in-plane axis only
        if not strict:
            return None
        raise ValueError(
            f"{where}: the OME metadata gives the size along {', '.join(found)} only; {_HINT}"
        )
    if not np.allclose(list(found.values()), found["X"], rtol=1e-3):
        if not strict:
            return None
        listed = ", ".join(f"{a} {v:g} um" for a, v in found.items())
        raise ValueError(
            f"{where}: the OME metadata gives voxels of {listed}; jellyroll needs cubic "
            "voxels: resample the volume"
        )
    return found["X"]


def _resolution(page: Any, tag: str) -> float | None:
    """Pixels per resolution unit of a TIFF page's ``tag`` (XResolution or YResolution),
    None when absent or zero."""
    found = page.tags.get(tag)
    if found is None:
        return None
    num, den = found.value
    return num / den if den and num else None


def _read_tiff(path: Path, strict: bool = True) -> tuple[np.ndarray, float | None]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series
            if not series:
                raise ValueError(f"{path}: the TIFF holds no image data")
            if len(series) > 1:
                shapes = [s.shape for s in series]
                raise ValueError(
                    f"{path}: pages disagree in shape ({shapes}); write one slice shape per file"
                )
            _check_one_volume(series[0], path)
            data = series[0].asarray()
            voxel, record = _tiff_voxel(tif, strict)
    except tifffile.TiffFileError as error:
        raise ValueError(f"{path}: not a readable TIFF ({error})") from None
    shape = tuple(record.get("shape", ()))
    if len(shape) == 3 and data.size == np.prod(shape):
        data = data.reshape(shape)  # ImageJ drops singleton axes
    dtype = np.dtype(record.get("dtype", data.dtype))
    if dtype != data.dtype and dtype.kind in "biu":
        data = data.astype(dtype)
    return _as_volume(data, str(path)), voxel


def _check_one_volume(series: Any, path: Path) -> None:
    """ValueError naming the file when a TIFF series has more than one axis besides the
    slices' rows and columns (an ImageJ hyperstack of channels or time points, a 4D shaped
    TIFF): :func:`open_volume` read its pages as consecutive slices, the volumes interleaved
    (a 3-time-point TZYX stack of 4 slices as a 12-slice volume), exit 0."""
    stacked = [
        f"{a}={n}"
        for a, n in zip(series.axes, series.shape, strict=True)
        if n > 1 and a not in "YXS"
    ]
    if len(stacked) > 1:
        raise ValueError(
            f"{path}: the TIFF holds a {series.axes} series of shape {tuple(series.shape)} "
            f"({', '.join(stacked)}): more than one volume (channels or time points); save "
            "each volume as a stack of its own (ZYX) and give that"
        )


def _check_one_slice_per_series(series: Any, path: Path) -> None:
    """ValueError naming the file when a TIFF of several series (images written one after
    the other) holds one of more than one slice: two volumes of one slice shape, which
    :func:`open_volume` stacked into one (a 4-slice and a 3-slice volume read as 7 slices,
    exit 0). Series of one 2D page each (slices appended one by one) are one volume."""
    shapes = [tuple(s.shape) for s in series]
    if any(len(s.pages) > 1 for s in series):
        listed = ", ".join(map(str, shapes[:5])) + (" ..." if len(shapes) > 5 else "")
        raise ValueError(
            f"{path}: the TIFF holds {len(shapes)} images, not one stack ({listed}): more "
            "than one volume; save each volume as a stack of its own and give that"
        )


def _read_folder(folder: Path, strict: bool = True) -> tuple[np.ndarray, float | None]:
    import tifffile

    files = slice_files(folder)
    first = None
    slices = []
    voxel = None
    for index, name in enumerate(files):
        try:
            with tifffile.TiffFile(name) as tif:
                image = np.squeeze(tif.asarray())
                if index == 0:
                    voxel, _ = _tiff_voxel(tif, strict)
        except tifffile.TiffFileError as error:
            raise ValueError(f"{name}: not a readable TIFF ({error})") from None
        if image.ndim != 2:
            raise ValueError(f"{name}: expected one 2D slice per file, got shape {image.shape}")
        if first is None:
            first = image
        elif image.shape != first.shape or image.dtype != first.dtype:
            raise ValueError(
                f"{name}: slice shape {image.shape} {image.dtype} differs from "
                f"{first.shape} {first.dtype} of {files[0].name}; all slices must match"
            )
        slices.append(image)
    return np.stack(slices), voxel


def _read_hdf5(
    path: Path, dataset: str | None, strict: bool = True
) -> tuple[np.ndarray, float | None]:
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not a readable HDF5 file ({error})") from None
    with handle:
        node = handle.get(dataset) if dataset is not None else None
        if not isinstance(node, h5py.Dataset):
            names: list[str] = []

            def collect(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset) and obj.ndim in (2, 3):
                    names.append("/" + name)

            handle.visititems(collect)
            what = "no dataset given" if dataset is None else f"no dataset {dataset!r}"
            if not names:
                raise ValueError(
                    f"{path}: {what}, and the file holds no 2D or 3D dataset: not a CT "
                    "volume (a jellyroll run or results file?); give the volume's TIFF, "
                    "folder of slices or FILE.h5::/path/to/dataset"
                )
            listed = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise ValueError(
                f"{path}: {what}; name the volume as {path}::/path/to/dataset (Python: "
                f"dataset=), one of its 2D or 3D datasets: {listed}"
            )
        _refuse_other_axis_order(node)
        data = _as_volume(node[()], f"{path} (dataset {dataset!r})")
        return data, _hdf5_voxel(node, strict)


def _refuse_other_axis_order(node: Any) -> None:
    """ValueError when the NXdata group holding ``node`` as its signal names its axes
    (``@axes``: ``x``, ``y_um``, ...) in an order other than (z, y, x) or (y, x): a volume
    stored as (x, y, z) was read as (z, y, x) without a word, its slices across the cell's
    axis taken along it. Axes named otherwise (``.``, ``row``) are not judged."""
    group, name = node.parent, node.name.rsplit("/", 1)[-1]
    axes = group.attrs.get("axes")
    if axes is None or unit_text(group.attrs.get("signal", name)) != name:
        return
    names = [unit_text(name) for name in np.atleast_1d(axes)]
    letters = [name.lower().split("_")[0] for name in names]
    wanted = ["z", "y", "x"][3 - node.ndim :]
    if len(letters) != node.ndim or sorted(letters) != sorted(wanted) or letters == wanted:
        return
    raise ValueError(
        f"{node.file.filename}: {node.name} is stored with its axes in the order "
        f"({', '.join(names)}) (its group's @axes); jellyroll reads volumes as (z, y, x), z "
        "along the cell's axis: write the volume transposed to (z, y, x) (NumPy: "
        "volume.transpose(2, 1, 0) for (x, y, z))"
    )


def _hdf5_voxel(node: Any, strict: bool = True, hint: str = _HINT) -> float | None:
    """The voxel size (um) an HDF5 dataset records, None when none; refused (``strict``) when
    it is not a number, not cubic, or in an unknown unit (read as um, or collapsed to one
    axis, it once gave a wrong scale with exit 0), else read as none: a size given wins (a
    ``units`` attribute of the values, e.g. ``cm^-1``, blocked ``--xct-voxel-um``)."""
    attrs = node.attrs
    where = f"{node.file.filename}: {node.name}"
    for key, unit in (("voxel_size_um", "um"), ("voxel_size", None), ("pixel_size", None)):
        if key not in attrs:
            continue
        if unit is None:
            unit = attrs.get("units", attrs.get("unit", ""))
        scale = um_per(unit)
        if scale is None:
            if not strict:
                return None
            raise ValueError(
                f"{where}@{key} is in {unit!r}, a unit jellyroll does not know; give it in um, "
                f"nm or mm, or {hint}"
            )
        try:
            values = np.asarray(attrs[key], dtype=np.float64).ravel()
        except (TypeError, ValueError):
            if not strict:
                return None
            raise ValueError(f"{where}@{key} = {attrs[key]!r} is not a number; {hint}") from None
        if values.size == 0 or not np.allclose(values, values[0], rtol=1e-3):
            if not strict:
                return None
            raise ValueError(
                f"{where}@{key} = {values.tolist()}: jellyroll needs cubic voxels (one size "
                "along every axis); resample the volume"
            )
        return scale * float(values[0])
    return None


class VolumeSource:
    """A volume on disk read slab by slab: ``shape`` (nz, ny, nx), ``dtype``, ``voxel_um``;
    ``source[k]`` or ``source[a:b]`` (plus in-plane slices) reads only those slices.

    NaN and inf voxels read as NaN, "not measured" (a reconstruction's outside, a detector
    gap, unreconstructed end planes), which every reader leaves out. Read as 0 (data), they
    were black material to `jellyroll locate` and to the 3D bends: two NaN end planes of the
    tiny twin's X-ray placed the slice 14-45 um off, three NaN rows across the link twin's
    X-ray drew a 44 um bend where there is none or cut every slice's trace (no bend found);
    and a band of 8 NaN rows across its X-ray was labelled 34.5 % a component from the
    neutron alone; exit 0.

    Open with :func:`open_volume`; close (or use as a context manager) to release the file.
    """

    def __init__(self, name: str, shape, dtype, voxel_um: float, read, close=None) -> None:
        self.name = name
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.voxel_um = voxel_um
        self.ndim = 3
        self._read = read
        self._close = close

    def __getitem__(self, index) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        z, rest = index[0], index[1:]
        if isinstance(z, int | np.integer):
            k = range(self.shape[0])[int(z)]  # negative indices; IndexError when out of range
            return self._finite(self._read(slice(k, k + 1), rest)[0])
        return self._finite(self._read(z, rest))

    @staticmethod
    def _finite(data: np.ndarray) -> np.ndarray:
        """``data`` with its NaN and inf as NaN: not measured."""
        if data.dtype.kind == "f" and np.isinf(data).any():
            return np.where(np.isinf(data), np.nan, data).astype(data.dtype, copy=False)
        return data

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self._finite(self._read(slice(None), ()))
        return data if dtype is None else data.astype(dtype)

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def __enter__(self) -> VolumeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def planes_digest(volume: VolumeSource | np.ndarray) -> str:
    """``sha256:<hex>`` of the values of a volume's first, middle and last planes (as
    float64: the same volume exported as TIFF or HDF5, integers or floats, gives the same
    digest; a crop, turn, flip or another reconstruction does not). Three planes, not the
    whole volume: cheap at any size, and enough to tell an NXCT file's volumes from others
    of their shape."""
    digest = hashlib.sha256()
    n = int(volume.shape[0])
    for k in sorted({0, n // 2, n - 1}):
        plane = np.asarray(volume[k], dtype="<f8")
        digest.update((np.where(np.isfinite(plane), plane, np.nan) + 0.0).tobytes())  # -0 is 0
    return f"sha256:{digest.hexdigest()}"


def slice_files(folder: Path) -> list[Path]:
    """The .tif/.tiff slices of a folder volume, in natural order (slice_2 before slice_10);
    ValueError when there are none, or when their names are not one numbered series without
    gaps (:func:`_check_slice_numbers`)."""
    files = sorted(
        (f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in _TIFF_SUFFIXES),
        key=lambda f: natural_key(f.name),
    )
    if not files:
        raise ValueError(f"{folder}: the folder holds no .tif/.tiff slices")
    _check_slice_numbers(folder, files)
    return files


def _check_slice_numbers(folder: Path, files: list[Path]) -> None:
    """ValueError naming the folder unless the slices' names are one series ``PREFIX<n>SUFFIX``
    with consecutive numbers ``n``: a missing slice (slice_0003 of 0-6) closed the gap, every
    slice above it one voxel low, and a stray TIFF of the same shape (a projection,
    ``average.tif``) was read as a slice, with exit 0.

    ``n`` is the one run of digits that differs between the names, so the prefix and the
    suffix may hold digits too (``rec_0001_16bit.tif``: the last run of digits was taken
    for ``n`` and such a series refused)."""
    if len(files) < 2:
        return
    series: dict[tuple[str, ...], list[tuple[list[str], Path]]] = {}
    for file in files:
        parts = re.split(r"(\d+)", file.stem.lower())  # text, digits, text, ..., text
        series.setdefault(tuple(parts[::2]), []).append((parts[1::2], file))
    members = next(iter(series.values()))
    runs = len(members[0][0])
    varying = [j for j in range(runs) if len({digits[j] for digits, _ in members}) > 1]
    if len(series) > 1 or runs == 0 or len(varying) > 1:
        groups = sorted(series.values(), key=len, reverse=True)
        odd = [file.name for group in groups[1:] for _, file in group] or [files[1].name]
        raise ValueError(
            f"{folder}: the TIFF files are not one numbered series of slices "
            f"({groups[0][0][1].name} ... beside {', '.join(odd[:5])}"
            f"{' ...' if len(odd) > 5 else ''}); keep only the "
            "volume's slices, named with their index, in the folder"
        )
    number = varying[0] if varying else runs - 1
    numbers = np.array(sorted(int(digits[number]) for digits, _ in members))
    gaps = np.flatnonzero(np.diff(numbers) != 1)
    if gaps.size:
        jumps = ", ".join(f"{numbers[k]} to {numbers[k + 1]}" for k in gaps[:5])
        raise ValueError(
            f"{folder}: the slice numbers jump ({jumps}{' ...' if gaps.size > 5 else ''}; "
            f"{numbers.size} slices numbered {numbers[0]}-{numbers[-1]}): a missing or "
            "repeated slice moves every slice above it; give every slice once, or renumber "
            "them consecutively if they are adjacent"
        )


def volume_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files a volume is read from: the slices of a folder, the HDF5 file of
    ``file.h5::/path`` with the files its dataset is linked to (external links, virtual
    dataset sources), or the file itself. A folder's own time does not change when a slice
    is overwritten in place, so results keyed by it would stay "up to date"."""
    name, dataset = split_dataset(path)
    if name.is_dir():
        return slice_files(name)
    if dataset is None or not name.is_file():
        return [name]
    import h5py

    with h5py.File(name, "r") as f:  # its chunks may lie in other files (links, VDS)
        return data_files(name, [f[dataset]]) if dataset in f else [name]


def volume_fingerprints(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The fingerprints (:func:`~jellyroll.io.provenance.file_fingerprint`) of every file of
    each of ``paths`` (:func:`volume_files`), each with the dataset a ``file.h5::/path``
    names: a stage's key over its input volumes (two datasets of one file, or the X-ray and
    neutron ones swapped within it, gave one key: the stage stayed up to date)."""
    found = []
    for path in paths:
        _, dataset = split_dataset(path)
        found += [f"{file_fingerprint(file)}::{dataset or ''}" for file in volume_files(path)]
    return found


def split_dataset(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """``file.h5::/path`` -> (file, dataset); any other path -> (path, None)."""
    text = str(path)
    if "::" in text:
        name, dataset = text.split("::", 1)
        return Path(name), dataset
    return Path(text), None


def refuse_same_volume(xct: str | os.PathLike[str], nct: str | os.PathLike[str]) -> None:
    """ValueError when the X-ray and the neutron volume are one and the same (file, or file
    and dataset): ``jellyroll nxct XCT XCT`` registered a volume onto itself, exit 0."""
    (x_file, x_set), (n_file, n_set) = split_dataset(xct), split_dataset(nct)
    same_set = (x_set or "").strip("/") == (n_set or "").strip("/")
    same_file = x_file.resolve() == n_file.resolve() or (
        x_file.exists() and n_file.exists() and os.path.samefile(x_file, n_file)
    )  # a hard link is the same file under another name
    if same_file and same_set:
        raise ValueError(
            f"{xct} is given as both the X-ray and the neutron volume; give the neutron CT "
            "volume of the same cell as the neutron one (--nct, or nct = ... in a run "
            "configuration)"
        )


def open_volume(
    path: str | os.PathLike[str],
    voxel_size_um: float | None = None,
    dataset: str | None = None,
    *,
    voxel_hint: str = _HINT,
) -> VolumeSource:
    """A volume for slab-wise reading, without loading it: an HDF5 dataset
    (``file.h5::/path/to/data`` or ``dataset=``), a multi-page TIFF (pages read on demand)
    or a folder of TIFF slices. Voxel size as in :func:`read_volume` (the argument wins);
    ``voxel_hint`` says how to give it when the metadata lacks it."""
    p, named = split_dataset(path)
    dataset = dataset if dataset is not None else named
    if not p.exists():
        raise ValueError(f"{p}: no such file or folder; check the path")
    strict = voxel_size_um is None  # a size given wins over the metadata, readable or not
    if p.is_dir():
        source = _folder_source(p, strict)
    elif p.suffix.lower() in _HDF5_SUFFIXES or _is_hdf5(p):
        source = _hdf5_source(p, dataset, strict, voxel_hint)
    else:
        source = _tiff_source(p, strict)
    if voxel_size_um is not None:
        source.voxel_um = _check_voxel(voxel_size_um, str(p))
    elif source.voxel_um is None:
        source.close()
        where = f"{p}" if dataset is None else f"{p} (dataset {dataset!r})"
        raise ValueError(f"{where}: the voxel size is not recorded in the metadata; {voxel_hint}")
    else:
        source.voxel_um = _check_voxel(source.voxel_um, str(p))
    return source


def _hdf5_source(
    path: Path, dataset: str | None, strict: bool = True, hint: str = _HINT
) -> VolumeSource:
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not a readable HDF5 file ({error})") from None
    node = handle.get(dataset) if dataset is not None else None
    if not isinstance(node, h5py.Dataset) or node.ndim not in (2, 3):
        handle.close()
        _read_hdf5(path, dataset)  # raises the message listing the datasets
        raise ValueError(f"{path}: dataset {dataset!r} is not a 2D or 3D array")
    try:
        _refuse_other_axis_order(node)
    except ValueError:
        handle.close()
        raise
    shape = node.shape if node.ndim == 3 else (1, *node.shape)

    def read(z: slice, rest: tuple) -> np.ndarray:
        # in-plane slices go to HDF5: only the chunks of the box are read
        return node[(z, *rest)] if node.ndim == 3 else node[rest][None][z]

    return VolumeSource(
        f"{path}::{dataset}", shape, node.dtype, _hdf5_voxel(node, strict, hint), read, handle.close
    )


def _tiff_source(path: Path, strict: bool = True) -> VolumeSource:
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except tifffile.TiffFileError as error:
        raise ValueError(f"{path}: not a readable TIFF ({error})") from None
    try:
        if len(tif.series) == 1:
            _check_one_volume(tif.series[0], path)
        else:
            _check_one_slice_per_series(tif.series, path)
    except ValueError:
        tif.close()
        raise
    pages = tif.pages
    first = pages[0]
    if first.ndim != 2 or any(p.shape != first.shape for p in pages):  # type: ignore[union-attr]
        tif.close()
        data, voxel = _read_tiff(path, strict)  # ImageJ hyperstacks and odd layouts: read whole
        return VolumeSource(
            str(path), data.shape, data.dtype, voxel, lambda z, rest: data[(z, *rest)]
        )
    dtypes = [page.dtype for page in pages]  # type: ignore[union-attr]
    odd = next((k for k, dtype in enumerate(dtypes) if dtype != dtypes[0]), None)
    if odd is not None:
        tif.close()
        raise ValueError(
            f"{path}: page {odd} is {dtypes[odd]}, page 0 {dtypes[0]}; all slices must match "
            "(a page of another type may hold another scale): convert the stack to one data "
            "type"
        )
    try:
        voxel, _ = _tiff_voxel(tif, strict)
    except ValueError:
        tif.close()
        raise

    def read(z: slice, rest: tuple) -> np.ndarray:
        indices = range(len(pages))[z]
        planes = [pages[i].asarray()[rest] for i in indices]  # type: ignore[union-attr]
        return np.stack(planes) if planes else np.empty((0, *first.shape), first.dtype)[rest]

    return VolumeSource(str(path), (len(pages), *first.shape), first.dtype, voxel, read, tif.close)


def _folder_source(folder: Path, strict: bool = True) -> VolumeSource:
    import tifffile

    files = slice_files(folder)
    with tifffile.TiffFile(files[0]) as tif:
        first = np.squeeze(tif.asarray())
        voxel, _ = _tiff_voxel(tif, strict)
    if first.ndim != 2:
        raise ValueError(f"{files[0]}: expected one 2D slice per file, got shape {first.shape}")

    def read(z: slice, rest: tuple) -> np.ndarray:
        out = []
        for name in files[z]:
            image = np.squeeze(tifffile.imread(name))
            if image.shape != first.shape or image.dtype != first.dtype:
                raise ValueError(
                    f"{name}: slice {image.shape} {image.dtype} differs from {first.shape} "
                    f"{first.dtype} of {files[0].name}; all slices must match"
                )
            out.append(image[rest])
        return np.stack(out) if out else np.empty((0, *first.shape), first.dtype)[rest]

    return VolumeSource(str(folder), (len(files), *first.shape), first.dtype, voxel, read)

"""Atomic output files and provenance records (configuration, versions, input checksums)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import tempfile
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import h5py

TRACKED_PACKAGES: tuple[str, ...] = (
    "jellyroll",
    "numpy",
    "scipy",
    "pyFAI",
    "fabio",
    "h5py",
    "hdf5plugin",
    "numba",
    "scikit-image",
    "xraydb",
    "periodictable",
)


class OutputWouldOverwriteInputError(ValueError):
    """Raised when an output path names one of the inputs."""


def refuse_overwrite(
    outputs: Iterable[str | os.PathLike[str]], inputs: Iterable[str | os.PathLike[str]]
) -> None:
    """:class:`OutputWouldOverwriteInputError` when one of ``inputs`` is one of ``outputs``
    (compared as resolved paths, and as files where both exist: a folder bind-mounted
    elsewhere, a hard link, or a case-only difference on a case-insensitive file system
    names the same file by a path that resolves elsewhere): outputs never overwrite
    inputs."""
    outputs = [Path(path) for path in outputs]
    targets = {path.resolve(): path for path in outputs}
    files = {key: path for path in outputs if (key := _file_id(path)) is not None}
    for item in inputs:
        hit = targets.get(Path(item).resolve())
        if hit is None and (key := _file_id(item)) is not None:
            hit = files.get(key)
        if hit is not None:
            raise OutputWouldOverwriteInputError(
                f"refusing to write {hit}: it is one of the inputs ({item}); choose another "
                "output path"
            )


def _file_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of an existing file or folder; None when there is none."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


@contextlib.contextmanager
def atomic_output(
    final_path: str | os.PathLike[str], *, inputs: Iterable[Path] = ()
) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path``; rename it into place on success.

    On any exception the temporary file is removed and ``final_path`` is left untouched, so a
    crash never leaves a half-written result. Refuses to write over any of ``inputs``.
    """
    final = Path(final_path).resolve()
    refuse_overwrite([final], inputs)
    if final.is_dir():  # else found only at the rename, naming the temporary file
        raise IsADirectoryError(
            f"{final_path} is a folder; give a file name, e.g. {Path(final_path) / final.name}"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; results are for the whole team
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | os.PathLike[str], chunk_bytes: int = 1 << 22) -> str:
    """SHA-256 hex digest of a file, read in chunks (bounded memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` ("not installed" where missing)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


HASH_LIMIT_BYTES = 1 << 30
"""Bytes of input a provenance record reads for checksums: the smallest files are hashed
up to this total, the others fingerprinted (size and time): a raw scan of several TB would
otherwise be read a second time just for its checksum."""


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """Resolved path, size, modification time and status-change time of a file (cheap for
    TB-sized raw scans). The status-change time cannot be set back: a file edited in place
    at its size with its modification time restored (``cp -p``, ``touch -r``, ``os.utime``)
    kept its fingerprint, and every result made from it stayed up to date."""
    stat = os.stat(path)
    return f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"


def data_files(path: Path, datasets: Iterable[h5py.Dataset]) -> list[Path]:
    """``path`` and every other file the ``datasets`` of it are read from: the file an
    external link on their path leads to, the sources of a virtual dataset (found where
    HDF5 finds them, :func:`virtual_source_file`), and the raw files of a dataset in
    external storage (:func:`external_raw_files`). A scan's result must change when any of
    them does, not only when the file named on the command line does."""
    found = {path.resolve(): path}
    for dataset in datasets:
        holder = Path(dataset.file.filename)
        found.setdefault(holder.resolve(), holder)
        if dataset.is_virtual:
            prefix = os.fsdecode(dataset.id.get_access_plist().get_virtual_prefix() or b"")
            for source in dataset.virtual_sources():
                name = virtual_source_file(holder, source.file_name, prefix)
                found.setdefault(name.resolve(), name)
        for name in external_raw_files(dataset):
            found.setdefault(name.resolve(), name)
    return list(found.values())


def virtual_source_file(holder: Path, name: str, prefix: str = "") -> Path:
    """The file HDF5 reads the source ``name`` of a virtual dataset in ``holder`` from: the
    first that exists in HDF5's search order (the name as given when absolute, then under
    ``HDF5_VDS_PREFIX``, the dataset's virtual ``prefix``, the holder's folder, the working
    folder; named absolute); the one beside ``holder`` when none exists. Only the one
    beside it was named: a source found under ``HDF5_VDS_PREFIX`` (as a missing source's
    message advises) or in the working folder was missing from the reduce key and the
    provenance, and rewriting it kept the sinogram of the old frames "up to date"."""
    from jellyroll.io.scans import _virtual_source_files  # scans imports this module

    candidates = _virtual_source_files(holder, name, prefix)
    found = next((file for file in candidates if file.is_file()), None)
    if found is not None:
        return found.absolute()  # the working folder's: named as the file it is now
    return holder if name == "." else holder.parent / name


def external_raw_files(dataset: h5py.Dataset) -> list[Path]:
    """The raw binary files a dataset in HDF5 external storage is read from, found as HDF5
    finds them: a relative name after the dataset's external-file prefix
    (``HDF5_EXTFILE_PREFIX``; ``${ORIGIN}`` is the folder of the file holding it), else
    from the working folder. Empty for any other dataset."""
    if not dataset.external:
        return []
    prefix = os.fsdecode(dataset.id.get_access_plist().get_efile_prefix() or b"")
    prefix = prefix.replace("${ORIGIN}", str(Path(dataset.file.filename).parent))
    return [Path(prefix, os.fsdecode(name)) for name, _offset, _size in dataset.external]


def linked_files(path: str | os.PathLike[str]) -> list[Path]:
    """``path`` and, for an HDF5 file, every file its datasets are read from
    (:func:`data_files` of each dataset, its external links followed, each file and group
    visited once); ``[path]`` for any other file."""
    import h5py

    path = Path(path)
    if not h5py.is_hdf5(path):
        return [path]
    datasets: list[h5py.Dataset] = []
    with h5py.File(path, "r") as f:
        groups, seen = [f], set()  # seen by file and address: soft links may loop
        while groups:
            group = groups.pop()
            if group.id in seen:
                continue
            seen.add(group.id)
            for name in group:
                try:
                    item = group[name]
                except (KeyError, OSError):  # a dangling link: nothing is read from it
                    continue
                if isinstance(item, h5py.Dataset):
                    datasets.append(item)
                elif isinstance(item, h5py.Group):
                    groups.append(item)
        files = data_files(path, datasets)
    return [file for file in files if file == path or file.is_file()]


def provenance_record(
    configuration: dict[str, Any],
    inputs: Iterable[str | os.PathLike[str]] = (),
    *,
    hash_limit_bytes: int = HASH_LIMIT_BYTES,
) -> dict[str, Any]:
    """Everything needed to say how a result was made: configuration, versions, and the
    inputs' ``sha256:<hex>`` checksums, smallest first while they hold ``hash_limit_bytes``
    together, then ``fingerprint:<path:size:mtime:ctime>`` for the larger ones. (Every input
    was fingerprinted once they held more together: the record of a 3 TB scan's reduction
    held no checksum of its 1 kB PONI and mask, the calibration could not be checked.) An
    HDF5 input brings the files its data are read from (:func:`linked_files`: external
    links, virtual dataset sources, external storage): the record of a scan whose frames
    lie in another file must change when that file does. Inputs are named by absolute path:
    a path relative to the working folder named no file once the result was read from
    anywhere else."""
    found: dict[Path, Path] = {}
    for given in inputs:
        for path in linked_files(given):
            found.setdefault(path.resolve(), path)
    paths = list(found.values())
    sizes = {p: p.stat().st_size for p in paths}
    hashed: set[Path] = set()
    budget = hash_limit_bytes
    for path in sorted(paths, key=sizes.__getitem__):
        if sizes[path] > budget:
            break
        hashed.add(path)
        budget -= sizes[path]
    return {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "configuration": configuration,
        "versions": package_versions(),
        "inputs": {str(p.absolute()): _checksum(p, p in hashed) for p in paths},
    }


def _checksum(path: Path, hashed: bool) -> str:
    """``sha256:<hex>`` of ``path`` when ``hashed``, else its ``fingerprint:...``."""
    return file_checksum(path) if hashed else f"fingerprint:{file_fingerprint(path)}"


def read_provenance(path: str | os.PathLike[str], record: str) -> dict[str, Any] | None:
    """The provenance record ``/entry/provenance/<record>`` of the HDF5 file ``path``; None
    where it holds none."""
    import h5py

    with h5py.File(path, "r") as f:
        item = f.get(f"/entry/provenance/{record}")
        return json.loads(item.asstr()[()]) if isinstance(item, h5py.Dataset) else None


def file_checksum(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file, as a provenance record lists an input it hashed."""
    return f"sha256:{sha256_file(path)}"


def provenance_json(record: dict[str, Any]) -> str:
    """Provenance record as JSON text (see :func:`json_text`)."""
    return json_text(record, indent=1, sort_keys=True)


def json_text(value: Any, **options: Any) -> str:
    """``value`` as strict JSON (RFC 8259), which every reader parses: NaN and infinities
    as null, NumPy arrays and scalars as lists and numbers, anything else not JSON as its
    text. ``json.dumps`` writes bare ``NaN``, which JavaScript's ``JSON.parse`` and jq
    refuse: every reconstruction's provenance held one (an energy not measured).
    ``options``: those of ``json.dumps`` (indent, sort_keys)."""
    return json.dumps(_strict_json(value), allow_nan=False, **options)


def _strict_json(value: Any) -> Any:
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(item) for item in value]
    if value is None or isinstance(value, str | int):
        return value
    return str(value)

"""How a scan's results are stored: one file per stage, joined by a small index run file.

A run file ``RUN.h5`` is an index: its ``/entry/<group>`` are HDF5 external links to the
stage files beside it, so ``h5py``, silx and h5web read ``/entry/sinogram/data`` and
``/entry/maps/lic6/data`` through ``RUN.h5`` as if it held them:

    RUN.h5                    index: links, @default chain (rewritten atomically, tiny)
    RUN.sinogram.h5           /entry/sinogram, /entry/provenance/reduce
    RUN.reconstruction.h5     /entry/reconstruction, /entry/provenance/reconstruction
    RUN.maps.h5               /entry/maps, /entry/provenance/maps

Each stage file is written whole into a temporary file and renamed into place, and records
``jellyroll_stage``, ``jellyroll_key`` (the SHA-256 of the stage, its options and its
upstream key) and ``jellyroll_upstream`` (the key of the file it was computed from) as root
attributes, in the same atomic write as its content. Writing a stage deletes every stage
file after it (their content no longer follows from their inputs), then rewrites the index;
the index links a stage file only while its upstream key is that of the file before it.
No stage copies or edits another stage's file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (registers compression filters for reading)

from jellyroll import __version__
from jellyroll.conventions import unit_text
from jellyroll.io.lock import output_lock
from jellyroll.io.nexus import nx_group, set_default
from jellyroll.io.provenance import atomic_output, provenance_json, refuse_overwrite

KEY = "jellyroll_key"
UPSTREAM = "jellyroll_upstream"
INDEX_STAGES = "jellyroll_stages"
"""Attribute of the index run file: the stages it links, in order (JSON list)."""
STAGE = "jellyroll_stage"


class RunFileError(ValueError):
    """A run or results file lacks what a stage needs; the message names the file, the
    dataset and what to do."""


class InputsChangedError(RuntimeError):
    """A stage's inputs changed while it ran (its key before and after differ); its
    result was removed, so that no later run takes it for up to date: run again."""


def run_if_stale(
    label: str, path: str | os.PathLike[str], key: Callable[[], str], action: Callable[[], Any]
) -> bool:
    """Run ``action`` (the stage ``label``) unless ``path`` already records ``key()``; True
    when it ran.

    ``key`` is called before (to decide) and after (to check that the action wrote the
    result it was asked for). A key that changed meanwhile (an input rewritten while the
    stage read it: a scan still being written, a file replaced) is refused
    (:class:`InputsChangedError`) and ``path`` removed: a driver that took its inputs' key
    at its end recorded the new file's key over a result of the old one (the reduction
    did: a sinogram of the old frames), which every later run took for up to date, exit 0.
    """
    before = key()
    if is_up_to_date(path, before):
        return False
    action()
    after = key()
    if after != before:
        Path(path).unlink(missing_ok=True)
        raise InputsChangedError(
            f"{label}: its inputs changed while it ran (a file rewritten or replaced: a scan "
            f"still being written?), so {path} may hold a result of neither version; it was "
            "removed. Run again once the inputs are final"
        )
    if not is_up_to_date(path, after):
        raise RuntimeError(f"{label}: {path} does not record the key of its options")
    return True


def unit_factor(
    path: str | os.PathLike[str],
    dataset: h5py.Dataset,
    expected: str,
    per_unit: Callable[[object], float | None],
    *,
    quantity: str = "",
) -> float:
    """The factor from ``dataset``'s ``@units`` to ``expected`` (1 without ``@units``: SPEC
    section 6's unit), ``per_unit`` one of :mod:`jellyroll.conventions`' unit readers;
    RunFileError naming the file and dataset for a unit of another quantity (``quantity``
    named in it when given). Other programs write "degrees", "rad", "mm" or bytes (b"deg"
    was read as "b'deg'" and refused; a height in mm was read as um, exit 0)."""
    units = dataset.attrs.get("units")
    if units is None:
        return 1.0
    factor = per_unit(units)
    if factor is None:
        what = f", not a {quantity}" if quantity else ""
        raise RunFileError(
            f"{path}: {dataset.name} is in {unit_text(units)!r}{what}; SPEC section 6 says "
            f"{expected} (or give a unit of the same quantity in @units)"
        )
    return factor


@dataclass(frozen=True)
class StageGroup:
    """A stage's group in the run file, the name of its provenance record and the names of
    the PNG figures drawn from it beside the run file (:func:`stage_figures`)."""

    stage: str
    group: str
    provenance: str
    figures: tuple[str, ...] = ()


RUN_STAGES = (
    StageGroup("reduce", "sinogram", "reduce"),
    StageGroup("reconstruct", "reconstruction", "reconstruction"),
    StageGroup("maps", "maps", "maps", ("graphite_rgb", "nmc_rgb", "d_star")),
)
"""The stages that fill a run file, in chain order (each depends on the one before)."""

_BY_STAGE = {item.stage: item for item in RUN_STAGES}


@contextlib.contextmanager
def run_lock(run: str | os.PathLike[str]) -> Iterator[Path]:
    """The lock of a run file (:func:`~jellyroll.io.lock.output_lock`), whose takeover from
    a killed writer removes the temporary files of the index and of its stage files; a file
    where the index or a stage file goes that is none is refused before any work
    (:func:`refuse_foreign_run_files`)."""
    figures = [path.name for item in RUN_STAGES for path in stage_figures(run, item.stage).values()]
    with output_lock(run, derived=[item.group for item in RUN_STAGES], figures=figures) as lock:
        refuse_foreign_run_files(Path(run))
        yield lock


def refuse_foreign_run_files(run: Path) -> None:
    """RunFileError naming a file where the index or a stage file of ``run`` goes that is
    none (:func:`refuse_foreign_index`, :func:`refuse_foreign_stage_files`)."""
    refuse_foreign_index(run)
    refuse_foreign_stage_files(run, RUN_STAGES)


def stage_key(stage: str, options: Any, upstream: Iterable[str]) -> str:
    """Key of a stage's result: its name, options (JSON-able), upstream keys and the
    jellyroll version that computes it (a result of an older version, made before one of its
    fixes, stayed "up to date" after an upgrade: `jellyroll run` kept its wrong figures)."""
    payload = [stage, options, list(upstream), __version__]
    payload = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def manual_key() -> str:
    """A key for content written outside a stage driver (tests, other programs): unique,
    so nothing downstream of it is ever taken for up to date."""
    return f"manual:{uuid.uuid4().hex}"


def stage_file(run: str | os.PathLike[str], stage: str) -> Path:
    """The file of a run stage beside the index: ``RUN.<group>.h5``."""
    run = Path(run)
    return run.with_name(f"{run.stem}.{_BY_STAGE[stage].group}.h5")


def stage_figures(run: str | os.PathLike[str], stage: str) -> dict[str, Path]:
    """The PNG figures drawn from a run stage, by name: ``RUN_<name>.png`` beside the
    index."""
    run = Path(run)
    return {name: run.with_name(f"{run.stem}_{name}.png") for name in _BY_STAGE[stage].figures}


def run_files(run: str | os.PathLike[str]) -> list[Path]:
    """The index file of a run and every stage file beside it (existing or not): what an
    output must never replace (the index's links point into the stage files)."""
    return [Path(run), *(stage_file(run, spec.stage) for spec in RUN_STAGES)]


def refuse_not_a_run(path: str | os.PathLike[str], role: str, *, reads: str | None = None) -> None:
    """Raise :class:`RunFileError` when ``path``, given as ``role`` (an input run), is a file
    but no run index: not HDF5, a stage file (:func:`refuse_stage_file`), another command's
    result, or a file recording no stages (a raw scan). ``reads``: the stage a command only
    reads (``maps``), whose group linked to its stage file beside passes an index another
    program wrote. `reconstruct` of a raw scan was told to move its input away; `diagnose` of
    a results file or of the twin's truth named a ``.maps.h5`` never given."""
    path = Path(path)
    if not path.is_file():
        return
    refuse_stage_file(path, role)
    try:
        with h5py.File(path, "r") as f:
            stage = f.attrs.get(STAGE)
            linked = reads is not None and stage_file(path.resolve(), reads).is_file()
            if stage is None and (
                INDEX_STAGES in f.attrs or (linked and f"entry/{_BY_STAGE[reads].group}" in f)
            ):
                return
    except OSError as error:
        raise RunFileError(
            f"{path}: given as {role}, but it is not a readable HDF5 file ({error})"
        ) from error
    what = (
        f"a jellyroll {stage} result"
        if stage is not None
        else "no jellyroll run file (it records no stages: a raw scan, another program's file)"
    )
    raise RunFileError(
        f"{path}: given as {role}, but it is {what}; give a run file: `jellyroll reduce SCAN -o "
        "RUN.h5` makes one from a scan, then `reconstruct RUN.h5` and `maps RUN.h5`"
    )


def refuse_stage_file(path: str | os.PathLike[str], role: str) -> None:
    """Raise :class:`RunFileError` when ``path`` is an existing stage file of a run
    (``RUN.sinogram.h5``, ...) given as ``role`` where a run index is meant: a stage's
    files would be named after it (``RUN.sinogram.sinogram.h5``) and fail, or replace it."""
    path = Path(path)
    if not path.is_file():
        return
    try:
        with h5py.File(path, "r") as f:
            stage = f.attrs.get(STAGE)
    except (OSError, ValueError):
        return
    spec = _BY_STAGE.get(str(stage)) if stage is not None else None
    if spec is None:
        return
    ending = f".{spec.group}.h5"
    index = path.with_name(path.name.removesuffix(ending) + ".h5")
    raise RunFileError(
        f"{path}: given as {role}, but it is the {spec.group} stage file of the run "
        f"{index}; give the run file {index} (the index beside its RUN.*.h5 stage files)"
    )


def recorded_key(path: str | os.PathLike[str]) -> str | None:
    """The key a stage file (or results file) records; None when absent or unreadable."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get(KEY)
    except (OSError, ValueError):
        return None
    return None if value is None else str(value)


def run_stage_key(run: str | os.PathLike[str], stage: str) -> str | None:
    """The key of a run's stage, read from its own file (None when the stage is not there)."""
    return recorded_key(stage_file(run, stage))


def is_up_to_date(path: str | os.PathLike[str], key: str) -> bool:
    """Whether ``path`` holds the result described by ``key`` (recorded in its content)."""
    return recorded_key(path) == key


def write_stage_file(
    path: Path,
    fill: Callable[[h5py.Group], None],
    *,
    stage: str,
    key: str,
    upstream: str,
    provenance: Mapping[str, Any],
    provenance_name: str,
    inputs: Iterable[Path] = (),
) -> Path:
    """Write a whole stage or results file atomically: ``fill(entry)`` writes the content,
    then the provenance record and the keys are stored in the same temporary file."""
    with atomic_output(path, inputs=inputs) as tmp, h5py.File(tmp, "w") as f:
        entry = nx_group(f, "entry", "NXentry")
        set_default(f, "entry")
        fill(entry)
        records = nx_group(entry, "provenance", "NXcollection")
        records[provenance_name] = provenance_json(dict(provenance))
        f.attrs[STAGE] = stage
        f.attrs[KEY] = key
        f.attrs[UPSTREAM] = upstream
    return path


def write_run_stage(
    run: str | os.PathLike[str],
    stage: str,
    fill: Callable[[h5py.Group], None],
    provenance: Mapping[str, Any],
    *,
    key: str | None = None,
    upstream: str | None = None,
    inputs: Iterable[Path] = (),
) -> Path:
    """Store stage ``stage`` of the run file ``run``: its own file, atomically; every later
    stage's file is deleted (stale); the index is rewritten. Returns the stage file.

    ``upstream`` defaults to the key of the previous stage's file (none for ``reduce``);
    ``key`` to :func:`manual_key`.
    """
    run = Path(run)
    spec = _BY_STAGE[stage]
    position = RUN_STAGES.index(spec)
    if upstream is None:
        upstream = (run_stage_key(run, RUN_STAGES[position - 1].stage) or "") if position else ""
    inputs = list(inputs)
    refuse_overwrite(run_files(run), inputs)
    refuse_foreign_stage_files(run, [spec])  # the later ones: by invalidate_run
    # later stages go first: a kill at any point then leaves no result beside an input it
    # was not computed from
    invalidate_run(run, after=stage)
    path = stage_file(run, stage)
    write_stage_file(
        path,
        fill,
        stage=stage,
        key=key or manual_key(),
        upstream=upstream,
        provenance=provenance,
        provenance_name=spec.provenance,
        inputs=inputs,
    )
    write_index(run)
    return path


def _stage_attrs(path: Path) -> dict[str, Any]:
    """The attributes of the HDF5 file ``path`` (its stage, key and upstream key when a
    stage wrote it); empty when it cannot be read as HDF5."""
    try:
        with h5py.File(path, "r") as f:
            return dict(f.attrs)
    except OSError:
        return {}


def written_by_stage(path: Path) -> str | None:
    """The stage whose output the HDF5 file ``path`` is: the stage its root records,
    ``reduce`` for a run index; None for any other file (or one that cannot be read)."""
    attrs = _stage_attrs(path)
    if INDEX_STAGES in attrs:
        return "reduce"
    return None if attrs.get(STAGE) is None else str(attrs[STAGE])


def refuse_foreign_index(run: Path) -> None:
    """RunFileError when ``run`` is a file (not empty) that is no jellyroll run index (no
    ``@jellyroll_stages``): writing the run would replace it. `jellyroll operando` with its
    steps folder holding the user's scans numbered from 1 (``step_001.h5`` ...) wrote step
    0's run over scan 1 and step 1's over scan 2, exit 0 until a later step failed."""
    if not run.is_file() or run.stat().st_size == 0 or written_by_stage(run) == "reduce":
        return
    raise RunFileError(
        f"{run} is where the run's index file goes, but it is no jellyroll run file (it "
        "records no stages: a raw scan, another program's file): writing the run would "
        "replace it. Give a run made by `jellyroll reduce`, or a new run another name"
    )


def refuse_foreign_stage_files(run: Path, stages: Iterable[StageGroup]) -> None:
    """RunFileError naming the first file where a stage file of ``run`` goes
    (``RUN.<group>.h5``) that is not that stage's file of a jellyroll run (no
    ``@jellyroll_stage`` of that stage): writing the run would replace or delete it. A raw
    scan saved as ``scan.sinogram.h5`` was replaced by `reduce -o scan.h5`, and any file
    named ``scan.reconstruction.h5`` deleted as stale, exit 0."""
    for spec in stages:
        path = stage_file(run, spec.stage)
        if path.exists() and _stage_attrs(path).get(STAGE) != spec.stage:
            raise RunFileError(
                f"{path} is where the run {run.name} keeps its {spec.group}, but it is no "
                f"jellyroll {spec.group} file (it records no {spec.stage} stage): writing the "
                "run would replace or delete it. Move it away, or give the run another name"
            )


def invalidate_run(run: str | os.PathLike[str], after: str) -> None:
    """Delete the stage files after stage ``after``, and the figures drawn from them (a
    new reconstruction left the old maps' composites beside the run), and rewrite the
    index."""
    run = Path(run)
    later_stages = RUN_STAGES[RUN_STAGES.index(_BY_STAGE[after]) + 1 :]
    refuse_foreign_stage_files(run, later_stages)
    for later in later_stages:
        for path in (stage_file(run, later.stage), *stage_figures(run, later.stage).values()):
            path.unlink(missing_ok=True)
    write_index(run)


def linked_stages(run: str | os.PathLike[str]) -> list[StageGroup]:
    """The stages of a consistent chain from ``reduce``: each file present and computed
    from the file before it."""
    run = Path(run)
    chain: list[StageGroup] = []
    previous: str | None = ""
    for spec in RUN_STAGES:
        path = stage_file(run, spec.stage)
        attrs = _stage_attrs(path) if path.is_file() else {}
        if not attrs:
            break
        key, upstream = attrs.get(KEY), attrs.get(UPSTREAM)
        if chain and str(upstream) != previous:
            break
        chain.append(spec)
        previous = None if key is None else str(key)
    return chain


def write_index(run: str | os.PathLike[str]) -> Path:
    """(Re)write the index run file: a link per stage of the consistent chain, their
    provenance records, and ``@default`` pointing at the latest stage's group."""
    run = Path(run)
    chain = linked_stages(run)
    with atomic_output(run) as tmp, h5py.File(tmp, "w") as f:
        entry = nx_group(f, "entry", "NXentry")
        set_default(f, "entry")
        provenance = nx_group(entry, "provenance", "NXcollection")
        for spec in chain:
            target = stage_file(run, spec.stage).name  # relative: the folder can move
            entry[spec.group] = h5py.ExternalLink(target, f"/entry/{spec.group}")
            provenance[spec.provenance] = h5py.ExternalLink(
                target, f"/entry/provenance/{spec.provenance}"
            )
        if chain:
            set_default(entry, chain[-1].group)
        f.attrs[INDEX_STAGES] = json.dumps([spec.stage for spec in chain])
    return run


def index_is_current(run: str | os.PathLike[str]) -> bool:
    """Whether the index run file ``run`` exists and links the stages of the consistent
    chain beside it (the stage files decide the skips; the index is what users open)."""
    try:
        with h5py.File(run, "r") as f:
            recorded = json.loads(f.attrs[INDEX_STAGES])
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return recorded == [spec.stage for spec in linked_stages(run)]


def open_run(
    run: str | os.PathLike[str], what: str = "run file", made_by: str = "`jellyroll reduce`"
) -> h5py.File:
    """Open a run file (or another result file: ``what``, written by ``made_by``) for
    reading, with a clear error when it is missing or not HDF5 (an NXCT file given to
    `link` was called a run file, to be made with `jellyroll reduce`)."""
    run = Path(run)
    if run.is_dir():
        raise RunFileError(f"{run} is a folder, not a {what}; give the {what} (.h5)")
    if not run.is_file():
        raise RunFileError(f"{run}: no such {what}; make it with {made_by}")
    try:
        f = h5py.File(run, "r")
    except OSError as error:
        raise RunFileError(f"{run}: not a readable HDF5 {what} ({error})") from error
    try:
        _check_stage_links(f, run)
    except RunFileError:
        f.close()
        raise
    return f


def _check_stage_links(f: h5py.File, run: Path) -> None:
    """Refuse an index whose linked stage file is not beside it while a file of that name
    lies in the working folder: HDF5 would follow the link into that one and read another
    run's data. Without such a file the link dangles, and the stage counts as missing."""
    entry = f.get("entry")
    if not isinstance(entry, h5py.Group):
        return
    own_files = {spec.group: stage_file(run, spec.stage).name for spec in RUN_STAGES}
    for name in entry:
        link = entry.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink) and not Path(link.filename).is_absolute():
            own = own_files.get(name, link.filename)
            if link.filename != own:
                raise RunFileError(
                    f"{run}: its {name} is linked to {link.filename}, not {own}: the index was "
                    "copied or renamed apart from its stage files; copy or rename the whole "
                    "run (the index and every RUN.*.h5 beside it), or run the stages again"
                )
            beside = run.parent / link.filename
            elsewhere = Path.cwd() / link.filename
            if not beside.is_file() and elsewhere.is_file():
                raise RunFileError(
                    f"{run}: its {name} lives in {beside.name}, which is not beside it (the "
                    "index copied or moved without its stage files?), and HDF5 would read "
                    f"{elsewhere} of the working folder instead; move the stage files along, "
                    "or run the stages again"
                )


def require(f: h5py.File, path: str | os.PathLike[str], name: str, hint: str) -> Any:
    """``f[name]``, or a :class:`RunFileError` naming the file, the dataset and ``hint``
    (what to run to make it). Dangling links count as missing; a stage an index still links
    after its input was replaced is refused (:func:`_refuse_stale`)."""
    try:
        found = f[name]
    except KeyError:
        raise RunFileError(f"{path}: {name} is missing; {hint}") from None
    _refuse_stale(f, path, name)
    return found


def _refuse_stale(f: h5py.File, path: str | os.PathLike[str], name: str) -> None:
    """Refuse ``name`` of an index run file when its stage (or one before it) is no longer
    computed from the stage file before it (e.g. a reconstruction copied over the run's
    own): the index still linked the old maps, read beside the new reconstruction, exit 0."""
    parts = name.strip("/").split("/")
    groups = [spec.group for spec in RUN_STAGES]
    if INDEX_STAGES not in f.attrs or len(parts) < 2 or parts[1] not in groups:
        return
    run = Path(f.filename)
    chain = linked_stages(run)
    if not chain or groups.index(parts[1]) < len(chain):
        return
    stale, source = RUN_STAGES[len(chain)], chain[-1]
    if stage_file(run, stale.stage).is_file():
        raise RunFileError(
            f"{path}: /entry/{parts[1]} rests on {stage_file(run, stale.stage).name}, which "
            f"was not computed from the {source.group} {stage_file(run, source.stage).name} "
            f"now holds (a stage file replaced or copied in?); run `jellyroll {stale.stage} "
            f"{path}` and the stages after it again, or `jellyroll run`"
        )

"""The validated configuration of ``jellyroll run CONFIG.toml``: the stages' own options
models gathered, so every default lives once (in the stage's ``options.py``).

Unknown keys and bad values are errors that name the key: a typo never silently falls back
to a default. Paths are relative to the configuration file; ``~`` is the user's home.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from jellyroll.defects.options import DiagnoseOptions
from jellyroll.io.volumes import split_dataset
from jellyroll.locate.link_options import LinkOptions
from jellyroll.locate.options import LocateOptions
from jellyroll.maps.options import MapsOptions
from jellyroll.nxct.options import NXCTOptions
from jellyroll.operando.options import OperandoOptions
from jellyroll.options import validation_message
from jellyroll.recon.options import ReconstructOptions
from jellyroll.reduce.options import ReduceOptions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(ValueError):
    """A configuration file is unusable; the message names the file and the keys."""


class DaskOptions(_Strict):
    """Where the stages that can use Dask (the reduction) run their blocks.

    ``scheduler``: none (here, in this process), ``"local"`` or ``"local:N"`` (a local
    cluster of N worker processes started for the run), ``"slurm"`` (a dask-jobqueue
    SLURMCluster with ``workers`` jobs; needs dask-jobqueue), or the address of a running
    scheduler (``tcp://host:8786``).
    """

    scheduler: str | None = None
    workers: int = Field(2, ge=1)
    slurm: dict[str, str | int | float] = Field(default_factory=dict)

    @field_validator("scheduler")
    @classmethod
    def _known(cls, name: str | None) -> str | None:
        if name is None or name in ("local", "slurm") or "://" in name:
            return name
        count = name.removeprefix("local:")
        if name.startswith("local:") and count.isdigit() and int(count) >= 1:
            return name
        raise PydanticCustomError(
            "scheduler",
            "{name}: give 'local', 'local:N' (N >= 1 worker processes), 'slurm' or the "
            "address of a running scheduler such as 'tcp://host:8786'",
            {"name": repr(name)},
        )

    @model_validator(mode="after")
    def _read_by_the_scheduler(self) -> DaskOptions:
        # given alone, `workers = 8` ran every stage in this process, and the report listed
        # it among the run's settings
        given = "no scheduler" if self.scheduler is None else f"scheduler = {self.scheduler!r}"
        if "workers" in self.model_fields_set and self.scheduler not in ("local", "slurm"):
            raise PydanticCustomError(
                "workers_not_read",
                "workers is read only with scheduler = 'local' or 'slurm', not with {given} "
                "(none: every stage runs in this process; 'local:N': N workers; an address: "
                "the running cluster's); give scheduler = 'local', or leave workers out",
                {"given": given},
            )
        if self.slurm and self.scheduler != "slurm":
            raise PydanticCustomError(
                "slurm_not_read",
                "slurm is read only with scheduler = 'slurm', not with {given}; give "
                "scheduler = 'slurm', or leave slurm out",
                {"given": given},
            )
        return self


class CellInput(_Strict):
    """The two scans of one slice (WAXS and SAXS detector positions) of one cell."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
    waxs: Path
    saxs: Path
    label: str = ""
    mapping: Path | None = None
    poni_waxs: Path | None = None
    poni_saxs: Path | None = None
    mask: Path | None = Field(
        None,
        description="detector mask (non-zero = masked) of the cell's frame scans, added to "
        "the mask each scan file holds; a sinogram file or integrated patterns take none "
        "(refused when neither scan has frames)",
    )
    xct: Path | None = None
    nct: Path | None = None
    truth: Path | None = Field(
        None,
        description="truth.h5 of a digital twin (`jellyroll phantom`): the report then "
        "compares the agglomerates found with the true ones",
    )
    location: Path | None = Field(
        None,
        description="LOCATION.h5 of `jellyroll locate` (/entry/location/swaxs_to_xct): the "
        "slice's place in the X-ray volume; without it, a cell naming xct and nct is "
        "located by the run ([locate] options), then its agglomerates are linked to the "
        "3D bends and get dossiers",
    )
    operando: Path | None = None  # folder of the slice's WAXS scans during a charge
    operando_log: Path | None = None  # its potentiostat log (.mpt or CSV)

    @model_validator(mode="after")
    def _pair(self) -> CellInput:
        if (self.xct is None) != (self.nct is None):
            raise ValueError("give both xct and nct (an X-ray and a neutron CT volume), or neither")
        return self

    @field_validator("location")
    @classmethod
    def _located_in_volumes(cls, location: Path | None, info: ValidationInfo) -> Path | None:
        if location is not None and None in (info.data.get("xct"), info.data.get("nct")):
            raise PydanticCustomError(
                "location_without_volumes",
                "needs xct and nct: a location places the slice in the cell's CT volumes; "
                "name them, or leave location out",
            )
        return location

    @field_validator("operando_log")
    @classmethod
    def _log_of_a_series(cls, log: Path | None, info: ValidationInfo) -> Path | None:
        if log is not None and info.data.get("operando") is None:
            raise PydanticCustomError(
                "log_without_series",
                "needs operando: the log dates the scans of a charge series; name the "
                "series' folder as operando, or leave operando_log out",
            )
        return log

    @field_validator("name")
    @classmethod
    def _plain(cls, name: str) -> str:
        if set(name) <= {"."}:
            raise ValueError("a cell name is a plain folder name, not dots only")
        if name.casefold() in (REPORT, PREVIOUS_REPORT):  # its folder would be the report's
            raise ValueError(f"{name} is the name of the run's report; name the cell otherwise")
        return name


RUN_LOCK = "jellyroll-run"
"""Name of the lock (``.jellyroll-run.lock`` in the output folder) that one ``jellyroll run``
holds on its output folder from its first stage to its report."""
REPORT = "report.html"
"""The run's report, in its output folder."""
PREVIOUS_REPORT = "report.previous.html"
"""Where the report of the run before lies until this run's is written: a run that failed
left the report of another run's options and inputs as the folder's report, with nothing
on it to say so."""
CELL_OUTPUTS = ("waxs_run", "saxs_run", "results", "operando", "nxct", "location", "link")
"""What `jellyroll run` writes in a cell's output folder: files and folders named as one of
these, or beginning with one and "." or "_" (stage files, figures, an operando series'
steps)."""


def written_by_the_run(name: str) -> bool:
    """Whether a file or folder ``name`` in a cell's output folder is one the run writes
    (:data:`CELL_OUTPUTS`)."""
    return any(name == stem or name.startswith((f"{stem}.", f"{stem}_")) for stem in CELL_OUTPUTS)


SCAN_INPUTS = ("waxs", "saxs", "mapping", "poni_waxs", "poni_saxs", "mask")
"""A cell's files its WAXS and SAXS scans are reduced from."""


class RunConfig(_Strict):
    """A pipeline run: cells (fresh and aged, say), options of every stage, output folder."""

    title: str = "jellyroll report"
    output: Path = Path("out/run")
    cells: list[CellInput] = Field(min_length=1)
    waxs: ReduceOptions = ReduceOptions()
    saxs: ReduceOptions = ReduceOptions()
    reconstruct: ReconstructOptions = ReconstructOptions()
    maps: MapsOptions = MapsOptions()
    defects: DiagnoseOptions = DiagnoseOptions()
    nxct: NXCTOptions = NXCTOptions()
    locate: LocateOptions = LocateOptions()
    link: LinkOptions = LinkOptions()
    operando: OperandoOptions = OperandoOptions()
    dask: DaskOptions = DaskOptions()

    @field_validator("nxct", "locate", "link", "operando")
    @classmethod
    def _applies_to_a_cell(cls, options: BaseModel, info: ValidationInfo) -> BaseModel:
        """A section given for a stage that runs for no cell is refused (it was ignored
        without a word, and the report listed its options among the run's settings)."""
        cells: list[CellInput] = info.data.get("cells") or []
        volumes = [cell for cell in cells if cell.xct is not None]
        used, needs = {
            "operando": (any(c.operando for c in cells), "a cell naming an operando series"),
            "locate": (
                any(c.location is None for c in volumes),
                "a cell naming xct and nct and no location",
            ),
        }.get(info.field_name, (bool(volumes), "a cell naming xct and nct"))
        if cells and not used:
            raise PydanticCustomError(
                "section_applies_to_no_cell",
                "applies to no cell: its stage runs only for {needs}; remove the section, or "
                "name that cell's inputs",
                {"needs": needs},
            )
        return options

    @model_validator(mode="after")
    def _link_has_its_bends(self) -> RunConfig:
        """Refuse ``[nxct] bends = false`` when a cell names both volumes: the link stage
        that runs for it reads the 3D bends (it failed after the NXCT and location stages,
        leaving the link file of the run before)."""
        if not self.nxct.bends and any(cell.xct is not None for cell in self.cells):
            raise ValueError(
                "nxct.bends: false, but a cell names xct and nct, whose link stage links each "
                "agglomerate to the 3D bends: set bends = true (or leave it out)"
            )
        return self

    @field_validator("cells")
    @classmethod
    def _unique(cls, cells: list[CellInput]) -> list[CellInput]:
        names = [c.name for c in cells]
        if len(set(names)) != len(names):
            raise ValueError(f"cell names must be unique, got {names}")
        # one output folder per cell: "Fresh" and "fresh" are one folder on macOS / Windows
        folded = [name.casefold() for name in names]
        clash = [name for name, key in zip(names, folded, strict=True) if folded.count(key) > 1]
        if clash:
            raise ValueError(
                f"cell names {clash} differ only in case: on a case-insensitive file system "
                "(macOS, Windows) their output folders are one and each cell overwrites the "
                "other; rename one"
            )
        # the report tells the cells apart by label (its summary rows, sections, bars)
        labels = [c.label or c.name for c in cells]
        same = [label for label in labels if labels.count(label) > 1]
        if same:
            shared = ", ".join(
                f"{c.name!r}" for c, label in zip(cells, labels, strict=True) if label in same
            )
            raise ValueError(
                f"cells {shared} have the same label {sorted(set(same))} (a label defaults to "
                "the name): the report could not tell them apart; give each cell its own label"
            )
        return cells

    def resolved(self, base: Path) -> RunConfig:
        """Paths made absolute relative to ``base`` (the configuration file's folder)."""

        def absolute(path: Path | None) -> Path | None:
            # "~/data" is the user's home, as in a shell (else a folder named "~" here)
            return None if path is None else (base / path.expanduser()).resolve()

        cells = [
            cell.model_copy(
                update={
                    key: absolute(getattr(cell, key))
                    for key in (
                        *SCAN_INPUTS,
                        "xct",
                        "nct",
                        "truth",
                        "location",
                        "operando",
                        "operando_log",
                    )
                }
            )
            for cell in self.cells
        ]
        return self.model_copy(update={"cells": cells, "output": absolute(self.output)})


INPUT_FOLDERS = ("operando",)
"""Settings of a cell that name a folder (of the scans of a charge series)."""
INPUT_VOLUMES = ("xct", "nct")
"""Settings of a cell that name a volume: one TIFF stack, or a folder of TIFF slices."""


def _named_paths(config: RunConfig) -> Iterator[tuple[CellInput, str, str, Path]]:
    """(cell, setting, ``cells.N.KEY: PATH``, the file or folder) of every path the cells
    name, in the order of the settings; a volume given as ``file.h5::/path`` is its file."""
    for index, cell in enumerate(config.cells):
        for key in CellInput.model_fields:
            path = getattr(cell, key)
            if key != "name" and isinstance(path, Path):
                file = split_dataset(path)[0] if key in INPUT_VOLUMES else path
                yield cell, key, f"cells.{index}.{key}: {path}", file


def missing_inputs(config: RunConfig) -> list[str]:
    """``cells.N.KEY: PATH does not exist`` (or is not a file / folder) for each input the
    configuration names that cannot be read, in the order of the settings; empty when all
    are there."""
    problems = []
    for _, key, where, path in _named_paths(config):
        if not path.exists():
            problems.append(f"{where} does not exist")
        elif key in INPUT_FOLDERS and not path.is_dir():
            problems.append(f"{where} is not a folder (give the folder of the series' scans)")
        elif key not in (*INPUT_FOLDERS, *INPUT_VOLUMES) and not path.is_file():
            problems.append(f"{where} is not a file")
    return problems


def shared_inputs(config: RunConfig) -> list[str]:
    """``cells.N.KEY: ...`` for each cell whose WAXS and SAXS scans would be read from one
    file or integrated with one PONI (the two detector positions have two calibrations,
    CeO2 and silver behenate); empty when none is. A ``mapping`` that names a PONI gives it
    to each scan without its own ``poni_waxs`` / ``poni_saxs``: with neither given, the SAXS
    scan was integrated with the WAXS geometry (its q axis 12 times too large for 3 m
    against 0.245 m), exit 0. Reads each mapping (call it once the inputs exist)."""
    from jellyroll.io.scans import BlissMapping

    problems = []
    for index, cell in enumerate(config.cells):
        where = f"cells.{index}"
        if cell.waxs.resolve() == cell.saxs.resolve():
            problems.append(
                f"{where}.saxs: {cell.saxs} is the WAXS scan too; give the scan of each "
                "detector position"
            )
        mapped = BlissMapping.from_toml(cell.mapping).poni if cell.mapping else None
        ponis = {kind: getattr(cell, f"poni_{kind}") or mapped for kind in ("waxs", "saxs")}
        if None in ponis.values() or Path(ponis["waxs"]).resolve() != Path(ponis["saxs"]).resolve():
            continue
        given = [f"poni_{kind}" for kind in ("waxs", "saxs") if getattr(cell, f"poni_{kind}")]
        if len(given) < 2:
            given.append(f"mapping {cell.mapping} (its [bliss] poni)")
        verb = "give" if len(given) == 2 else "gives"
        problems.append(
            f"{where}: {' and '.join(given)} {verb} the WAXS and the SAXS scan one PONI "
            f"({ponis['waxs']}), but the two detector positions have two calibrations; give "
            "poni_waxs and poni_saxs (a mapping's poni serves only a scan without its own)"
        )
    return problems


def inputs_among_outputs(config: RunConfig) -> list[str]:
    """``cells.N.KEY: ...`` for each input that lies where the run writes: a report file of
    the output folder, or a file or folder of a cell's output folder named as the run's
    (:func:`written_by_the_run`); a cell's own ``location.h5`` given as its location is
    read, not written. A cell's raw WAXS scan named ``b/waxs_run.h5`` with the output
    folder ``.`` was replaced by cell b's run file, exit 0. Call it on a resolved
    configuration."""
    reports = {config.output / REPORT, config.output / PREVIOUS_REPORT}
    folders = {config.output / cell.name: cell for cell in config.cells}
    problems = []
    for cell, key, where, path in _named_paths(config):
        if path in reports:
            problems.append(f"{where} is the run's report file; move it out of the way")
            continue
        for folder, owner in folders.items():
            if not path.is_relative_to(folder) or path == folder:
                continue
            first = path.relative_to(folder).parts[0]
            own_location = key == "location" and owner is cell and first == "location.h5"
            if written_by_the_run(first) and not own_location:
                problems.append(
                    f"{where} is where the run writes cell {owner.name}'s {first}: it "
                    f"would be replaced. Move it out of {folder}, or give another output"
                )
    return problems


def require_inputs(config: RunConfig) -> None:
    """ConfigError listing every input of ``config`` that is missing (see
    :func:`missing_inputs`), or one file or PONI given for both scans of a cell (see
    :func:`shared_inputs`), or lying where the run writes (:func:`inputs_among_outputs`):
    checked before the first stage, so that a missing volume is not
    found only once every stage before it has run."""
    problems = missing_inputs(config)
    if not problems:
        problems = shared_inputs(config) + inputs_among_outputs(config)
    if problems:
        raise ConfigError("\n".join(problems))


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run configuration (errors name the file and the key)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration ({error})") from error
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from error
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as error:
        lines = "\n".join(f"  {line}" for line in validation_message(error).splitlines())
        raise ConfigError(f"{path}: invalid configuration\n{lines}") from error
    return config.resolved(path.parent)

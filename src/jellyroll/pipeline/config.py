"""The validated configuration of ``jellyroll run CONFIG.toml``: the stages' own options
models gathered, so every default lives once (in the stage's ``options.py``).

Unknown keys and bad values are errors that name the key: a typo never silently falls back
to a default. Paths are relative to the configuration file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jellyroll.defects.options import DiagnoseOptions
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


class CellInput(_Strict):
    """The two scans of one slice (WAXS and SAXS detector positions) of one cell."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
    waxs: Path
    saxs: Path
    label: str = ""
    mapping: Path | None = None
    poni_waxs: Path | None = None
    poni_saxs: Path | None = None
    mask: Path | None = None
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

    @field_validator("name")
    @classmethod
    def _plain(cls, name: str) -> str:
        if set(name) <= {"."}:
            raise ValueError("a cell name is a plain folder name, not dots only")
        return name


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

    @field_validator("cells")
    @classmethod
    def _unique(cls, cells: list[CellInput]) -> list[CellInput]:
        names = [c.name for c in cells]
        if len(set(names)) != len(names):
            raise ValueError(f"cell names must be unique, got {names}")
        return cells

    def resolved(self, base: Path) -> RunConfig:
        """Paths made absolute relative to ``base`` (the configuration file's folder)."""

        def absolute(path: Path | None) -> Path | None:
            return None if path is None else (base / path).resolve()

        cells = [
            cell.model_copy(
                update={
                    key: absolute(getattr(cell, key))
                    for key in (
                        "waxs",
                        "saxs",
                        "mapping",
                        "poni_waxs",
                        "poni_saxs",
                        "mask",
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


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run configuration (errors name the file and the key)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration ({error})") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from error
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as error:
        lines = "\n".join(f"  {line}" for line in validation_message(error).splitlines())
        raise ConfigError(f"{path}: invalid configuration\n{lines}") from error
    return config.resolved(path.parent)

"""The validated configuration of ``jellyroll run CONFIG.toml``.

Unknown keys and bad values are errors that name the key: a typo never silently falls back
to a default. Paths are relative to the configuration file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jellyroll.reduce.engine import FilterName


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(ValueError):
    """A configuration file is unusable; the message names the file and the keys."""


class ReduceSettings(_Strict):
    """Integration of one detector position (see ``jellyroll reduce``)."""

    npt: int = Field(1000, ge=16)
    q_range: tuple[float, float] | None = None
    filter: FilterName = "sigma-clip"
    block_frames: int = Field(256, ge=1)
    subtract_air: bool = True

    @field_validator("q_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] < value[1]:
            raise ValueError("q_range must be (low, high) with 0 <= low < high, in 1/angstrom")
        return value


class ReconstructSettings(_Strict):
    method: Literal["fbp", "sart", "sirt"] = "sart"
    iterations: int = Field(10, ge=1)
    backend: Literal["auto", "astra", "jellyroll"] = "auto"
    nonnegative: bool = False
    self_absorption: bool = True


class DefectSettings(_Strict):
    critical_diameter_um: float = Field(50.0, gt=0)


class CellInput(_Strict):
    """The two scans of one slice (WAXS and SAXS detector positions) of one cell."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    waxs: Path
    saxs: Path
    label: str = ""
    mapping: Path | None = None
    poni_waxs: Path | None = None
    poni_saxs: Path | None = None
    mask: Path | None = None


class RunConfig(_Strict):
    """A pipeline run: cells (fresh and aged, say), settings of every stage, output folder."""

    title: str = "jellyroll report"
    output: Path = Path("out/run")
    cells: list[CellInput] = Field(min_length=1)
    waxs: ReduceSettings = ReduceSettings(npt=1000)
    saxs: ReduceSettings = ReduceSettings(npt=500)
    reconstruct: ReconstructSettings = ReconstructSettings()
    defects: DefectSettings = DefectSettings()

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
                    for key in ("waxs", "saxs", "mapping", "poni_waxs", "poni_saxs", "mask")
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
        lines = [
            f"  {'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
        ]
        raise ConfigError(f"{path}: invalid configuration\n" + "\n".join(lines)) from error
    return config.resolved(path.parent)

"""Resumable stages: a stage is skipped when its output records the key of its inputs.

A key is the SHA-256 of the stage's settings and the keys (or file fingerprints) of what
it reads, so changing a setting or an input reruns that stage and everything after it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py

KEY_ATTRIBUTE = "jellyroll_stage_keys"


def stage_key(name: str, settings: Any, upstream: Iterable[str]) -> str:
    """Key of a stage: its name, settings (JSON-able) and upstream keys or fingerprints."""
    payload = json.dumps([name, settings, list(upstream)], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def recorded_keys(path: Path) -> dict[str, str]:
    """Stage keys stored in an HDF5 output (empty when the file is absent or unreadable)."""
    if not path.is_file():
        return {}
    try:
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs.get(KEY_ATTRIBUTE, "{}"))
    except (OSError, ValueError):
        return {}


def record_key(path: Path, stage: str, key: str) -> None:
    """Add a stage key to an HDF5 output (a small attribute update of a finished file)."""
    with h5py.File(path, "r+") as f:
        keys = json.loads(f.attrs.get(KEY_ATTRIBUTE, "{}"))
        keys[stage] = key
        f.attrs[KEY_ATTRIBUTE] = json.dumps(keys, sort_keys=True)


@dataclass
class StageLog:
    """Timings and skip decisions of a run, for the report's summary."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def run(self, label: str, path: Path, stage: str, key: str, action: Callable[[], Any]) -> bool:
        """Run ``action`` unless ``path`` already records ``key`` for ``stage``.

        Returns True when the stage ran.
        """
        if recorded_keys(path).get(stage) == key:
            self.entries.append({"stage": label, "status": "up to date", "seconds": 0.0})
            return False
        start = time.perf_counter()
        action()
        record_key(path, stage, key)
        elapsed = time.perf_counter() - start
        self.entries.append({"stage": label, "status": "done", "seconds": round(elapsed, 2)})
        return True

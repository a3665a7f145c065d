"""Resumable stages: a stage is skipped when its output records the key it would write.

The key (the SHA-256 of a stage's options and its upstream keys, see
:func:`jellyroll.results.store.stage_key`) is written by the stage's own driver inside the
file it writes, in the same atomic write as the content; so a result rewritten by another
command (a ``jellyroll reconstruct`` with other options, say) no longer matches and the
stage reruns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jellyroll.results.store import run_if_stale


@dataclass
class StageLog:
    """Timings and skip decisions of a run, in the order the stages were visited."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def run(
        self, label: str, path: Path, key: Callable[[], str], action: Callable[[], Any]
    ) -> bool:
        """Run ``action`` unless ``path`` already records ``key()``
        (:func:`~jellyroll.results.store.run_if_stale`); True when it ran."""
        start = time.perf_counter()
        if not run_if_stale(label, path, key, action):
            self.entries.append({"stage": label, "status": "up to date", "seconds": 0.0})
            return False
        elapsed = time.perf_counter() - start
        self.entries.append({"stage": label, "status": "done", "seconds": round(elapsed, 2)})
        return True

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

from jellyroll.results.store import InputsChangedError, is_up_to_date


@dataclass
class StageLog:
    """Timings and skip decisions of a run, in the order the stages were visited."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def run(
        self, label: str, path: Path, key: Callable[[], str], action: Callable[[], Any]
    ) -> bool:
        """Run ``action`` unless ``path`` already records ``key()``; True when it ran.

        ``key`` is called before (to decide) and after (to check that the action wrote
        the result it was asked for). A key that changed meanwhile (an input rewritten
        while the stage read it: a scan still being written, a file replaced) is refused
        and ``path`` removed: the stage's driver may record the key of the inputs as they
        are at its end over a result of what it read before (the reduction does), and
        that result was taken for up to date by every later run, exit 0.
        """
        before = key()
        if is_up_to_date(path, before):
            self.entries.append({"stage": label, "status": "up to date", "seconds": 0.0})
            return False
        start = time.perf_counter()
        action()
        after = key()
        if after != before:
            Path(path).unlink(missing_ok=True)
            raise InputsChangedError(
                f"{label}: its inputs changed while it ran (a file rewritten or replaced: a "
                f"scan still being written?), so {path} may hold a result of neither "
                "version; it was removed. Run again once the inputs are final"
            )
        if not is_up_to_date(path, after):
            raise RuntimeError(f"{label}: {path} does not record the key of its options")
        elapsed = time.perf_counter() - start
        self.entries.append({"stage": label, "status": "done", "seconds": round(elapsed, 2)})
        return True

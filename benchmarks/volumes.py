"""What the benches of whole commands on volumes share: the anchor of one streamed read of a
volume on disk, and the cost of one command run in its own process."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np


def streamed_read_seconds(path: Path, dataset: str = "data", slab: int = 16) -> float:
    """Seconds to read every plane of ``path::dataset`` once, ``slab`` planes at a time, and
    reduce each slab as float32 (the least a stage that streams the volume must do)."""
    start = time.perf_counter()
    with h5py.File(path, "r") as f:
        data = f[dataset]
        for k in range(0, data.shape[0], slab):
            np.asarray(data[k : k + slab], dtype=np.float32).mean()
    return time.perf_counter() - start


def command_cost(command: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS GiB) of ``command`` run to its end in a child
    process: that child's own figures (``os.wait4``), not the maximum and sum over every child
    the bench process has had, which ``getrusage(RUSAGE_CHILDREN)`` gives under `make bench`.
    Raises ``subprocess.CalledProcessError`` (with the child's stderr) when it fails."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            stderr.seek(0)
            raise subprocess.CalledProcessError(child.returncode, command, stderr=stderr.read())
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20

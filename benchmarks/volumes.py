"""What the volume benches share: the anchor of one streamed read of a volume on disk."""

from __future__ import annotations

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

"""Regions of the anode around the defects: regular anode, agglomerates, bent collector.

The study (Lübke et al., Energy Environ. Sci. 2024, 17, 5048, Fig. 4) compares SAXS
profiles averaged over these regions, and states the defects' share of the anode volume
(< 10 %). Maps are (ny, nx) with pixels of ``pixel_size_um``; lengths in micrometres.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jellyroll.conventions import RowSliced, masked_mean_profiles
from jellyroll.defects._common import disk_union

REGIONS = ("regular", "agglomerate", "bent")
"""Region names, in the order the report draws them."""


def region_masks(
    anode: np.ndarray,
    agglomerates: pd.DataFrame,
    bends: pd.DataFrame,
    pixel_size_um: float,
    margin_um: float,
) -> dict[str, np.ndarray]:
    """(ny, nx) bool masks of :data:`REGIONS` inside ``anode``.

    ``agglomerate``: within the equivalent radius of an agglomerate; ``bent``: within half
    the width of a collector bend (at least ``margin_um``) of its deepest point, outside the
    agglomerates; ``regular``: the rest of the anode farther than ``margin_um`` from both
    (the compacted ring around a defect is neither regular nor the defect).
    """
    anode = np.asarray(anode, dtype=bool)
    shape = anode.shape
    if len(agglomerates):
        radius = agglomerates["equivalent_diameter_um"].to_numpy(dtype=float) / 2
        agglomerate = disk_union(shape, pixel_size_um, agglomerates, radius)
        near_agglomerate = disk_union(shape, pixel_size_um, agglomerates, radius + margin_um)
    else:
        agglomerate = near_agglomerate = np.zeros(shape, dtype=bool)
    if len(bends):
        half_width = np.maximum(bends["width_um"].to_numpy(dtype=float) / 2, margin_um)
        bent = disk_union(shape, pixel_size_um, bends, half_width)
        near_bent = disk_union(shape, pixel_size_um, bends, half_width + margin_um)
    else:
        bent = near_bent = np.zeros(shape, dtype=bool)
    return {
        "regular": anode & ~near_agglomerate & ~near_bent,
        "agglomerate": anode & agglomerate,
        "bent": anode & bent & ~agglomerate,
    }


def region_profiles(cube: RowSliced, q_A: np.ndarray, masks: dict[str, np.ndarray]) -> pd.DataFrame:
    """Mean profile of ``cube`` (ny, nx, n_q) over each mask, leaving out non-finite
    values: a table with ``q_A`` (A^-1) and one column per region that has pixels (NaN at
    a q where none of its pixels has a value). Read by row slabs
    (:func:`~jellyroll.conventions.masked_mean_profiles`), so that no copy of the cube is
    made."""
    return pd.DataFrame({"q_A": np.asarray(q_A, dtype=float), **masked_mean_profiles(cube, masks)})


def defect_share(anode: np.ndarray, agglomerate: np.ndarray) -> float:
    """Fraction of the anode's area (in a slice: of its volume) held by agglomerates."""
    total = int(np.count_nonzero(anode))
    return float(np.count_nonzero(agglomerate & anode) / total) if total else float("nan")

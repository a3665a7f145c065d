"""Local lithiation around defects: phase fractions inside versus around, radial profiles.

The study (Lübke et al. 2024, Figs. 3 and 5) reads the graphite phases of a damaged zone
against its neighbours: its centre stays poorly lithiated (LixC6, x < 0.2) with a LiC12
rim while the rest of the cell is LiC6 (fresh) or LiC12 (aged) when charged. Inputs are
maps on the grid of the defect table (see :mod:`jellyroll.defects.agglomerates` for the
coordinates): phase fractions, or phase intensities of a WAXS-CT reconstruction, whose
ratios are then relative amounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from jellyroll.defects._common import (
    beyond,
    check_same_grid,
    disk_union,
    distance_um,
    near_um,
    phase_amounts,
    within,
)

__all__ = ["defect_lithiation", "radial_profiles"]


def defect_lithiation(
    table: pd.DataFrame,
    phase_maps: Mapping[str, np.ndarray],
    pixel_size_um: float,
    *,
    inside_scale: float = 1.5,
    ring_width_um: float = 60.0,
    mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Phase fractions inside each defect and in a ring around it.

    ``table``: defects with ``id``, ``x_um``, ``y_um`` and ``equivalent_diameter_um``
    (e.g. from :func:`~jellyroll.defects.find_agglomerates`); ``phase_maps``: name ->
    ``(ny, nx)`` map, e.g. ``lic6``, ``lic12``, ``graphite_poor``, each summed over a
    region before a negative sum counts as 0 (:func:`phase_amounts`). Inside is the disk
    of ``inside_scale`` times the equivalent radius (1.5 by default: a case-B damaged
    zone reaches beyond its agglomerate), the ring the next ``ring_width_um`` outside
    every defect's inside (the neighbours of the defect, not another defect's core).
    ``mask`` (e.g. the anode) restricts both. A pixel where any phase has no value (NaN)
    counts in neither.

    Returns one row per defect: ``id``, then ``<name>_inside`` and ``<name>_ring``, the
    share of each phase in the sum of all phases over the region (NaN where the region
    holds none), and ``pixels_inside`` / ``pixels_ring`` (the region's pixels with a
    value).
    """
    names = list(phase_maps)
    shape = check_same_grid("defect_lithiation", {**phase_maps, "mask": mask})
    stack, keep = phase_amounts({n: phase_maps[n] for n in names})
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool)
    # clamped before the calls so that the ring, too, starts beyond half a pixel
    radii = np.maximum(
        inside_scale * table["equivalent_diameter_um"].to_numpy(dtype=float) / 2,
        0.5 * pixel_size_um,
    )
    defects = disk_union(shape, pixel_size_um, table, radii)
    rows = []
    for defect, radius in zip(table.itertuples(), radii, strict=True):
        window, distance = near_um(
            shape, pixel_size_um, defect.x_um, defect.y_um, radius + ring_width_um
        )
        near, kept = stack[(slice(None), *window)], keep[window]
        regions = {
            "inside": kept & within(distance, radius, pixel_size_um),
            "ring": kept & beyond(distance, radius, ring_width_um) & ~defects[window],
        }
        row = {"id": defect.id}
        for where, region in regions.items():
            amounts = np.clip(near[:, region].sum(axis=1), 0.0, None)
            total = amounts.sum()
            for name, amount in zip(names, amounts, strict=True):
                row[f"{name}_{where}"] = amount / total if total > 0 else np.nan
            row[f"pixels_{where}"] = int(region.sum())
        rows.append(row)
    columns = ["id"] + [f"{n}_{w}" for w in ("inside", "ring") for n in names]
    return pd.DataFrame(rows, columns=[*columns, "pixels_inside", "pixels_ring"])


def radial_profiles(
    maps: Mapping[str, np.ndarray],
    centre_um: Sequence[float],
    pixel_size_um: float,
    max_radius_um: float,
    *,
    bin_um: float | None = None,
    mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Azimuthal means of every map in rings around ``centre_um`` (x, y).

    Rings of ``bin_um`` (default one pixel) out to ``max_radius_um``; ``mask`` keeps only
    some pixels; NaN pixels are skipped. Returns ``radius_um`` (ring centre), ``pixels``
    and one column per map (NaN for empty rings).
    """
    names = list(maps)
    shape = check_same_grid("radial_profiles", {**maps, "mask": mask})
    width = pixel_size_um if bin_um is None else bin_um
    edges = np.arange(0.0, max_radius_um + width, width)
    distance = distance_um(shape, pixel_size_um, centre_um[0], centre_um[1])
    ring = np.digitize(distance, edges) - 1
    inside = (ring >= 0) & (ring < edges.size - 1)
    if mask is not None:
        inside &= np.asarray(mask, dtype=bool)
    out = {"radius_um": 0.5 * (edges[1:] + edges[:-1])}
    n_rings = edges.size - 1
    for name in names:
        values = np.asarray(maps[name], dtype=np.float64)
        valid = inside & np.isfinite(values)
        sums = np.bincount(ring[valid], weights=values[valid], minlength=n_rings)
        counts = np.bincount(ring[valid], minlength=n_rings)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(counts > 0, sums / counts, np.nan)
    out["pixels"] = np.bincount(ring[inside], minlength=n_rings)
    return pd.DataFrame(out)[["radius_um", "pixels", *names]]

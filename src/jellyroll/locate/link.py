"""2D agglomerates linked to 3D collector bends: does each agglomerate of the SAXS map sit on
a bent Cu collector seen in the X-ray volume?

The study (Lübke et al., Energy Environ. Sci. 2024, 17, 5048, Fig. 7) classifies agglomerates
at ~50 um equivalent diameter: case A below (no bend), case B above (the collector bends).
Here that rule is measured instead of assumed: each agglomerate of the map is carried into the
X-ray volume frame with ``map_to_xct`` and matched to the 3D bends of
:func:`jellyroll.defects.bends3d.find_bends_3d`; per size bin, the share of agglomerates on a
bend, and the diameter that best separates bent from unbent.

Frames follow SPEC section 6: the map frame is (z, y, x) um with z = 0 on the map plane and
the origin at the map centre; ``map_to_xct`` (4x4) maps (z, y, x, 1) of it to the X-ray
volume frame (origin at the volume's centre).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jellyroll.defects.agglomerates import UNRESOLVED

__all__ = [
    "LINK_COLUMNS",
    "SIZE_BIN_EDGES_UM",
    "BendThreshold",
    "bend_fraction_by_size",
    "check_map_to_xct",
    "link_to_bends",
    "map_points_to_xct",
    "measured_bend_threshold",
]

SIZE_BIN_EDGES_UM: tuple[float, ...] = (0, 10, 20, 30, 40, 50, 60, 70, 80, 100, np.inf)
"""Equivalent-diameter bins (um) of the fraction on a bend: 10 um wide around the study's
50 um case A/B threshold (an edge), wider above where few agglomerates lie."""

LINK_COLUMNS = (
    "xct_z_um", "xct_y_um", "xct_x_um", "bend3d_id", "bend3d_distance_um",
    "bend3d_amplitude_um", "bend3d_extent_axial_um", "bend3d_extent_arc_um",
)  # fmt: skip
"""Columns :func:`link_to_bends` adds to the defect table."""

_AGGLOMERATE_COLUMNS = ("id", "x_um", "y_um", "equivalent_diameter_um")
_BEND_COLUMNS = ("id", "z_um", "y_um", "x_um", "amplitude_um", "extent_axial_um")


RIGID_TOLERANCE = 1e-3
"""Largest departure of a placement's linear part from a rotation (``R^T R`` from the
identity) taken as rigid: 1e-3 is a length off by 0.05 %, 2.5 um across a 5 mm map, a tenth
of its pixel; a placement of ``jellyroll locate`` or a twin is a rotation to 1e-12."""


def check_map_to_xct(
    map_to_xct: np.ndarray, source: str = "map_to_xct", *, rigid: bool = False
) -> np.ndarray:
    """``map_to_xct`` as a float64 4x4 affine matrix; a clear error naming ``source`` else.

    ``rigid``: a placement of the map in the X-ray volume, um to um, whose linear part must
    be a rotation (up to :data:`RIGID_TOLERANCE`): a matrix into X-ray voxel indices (20 um
    voxels: a 20th of every length) or from map pixels was taken as um to um, and the
    agglomerates were matched to the bends at a 20th of their distances, exit 0.
    """
    matrix = np.asarray(map_to_xct, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise ValueError(f"{source}: expected a 4x4 matrix, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)) or not np.allclose(matrix[3], (0, 0, 0, 1)):
        raise ValueError(
            f"{source}: not an affine map (non-finite values or last row not 0 0 0 1); give "
            "the map_to_xct that `jellyroll locate` wrote"
        )
    if abs(np.linalg.det(matrix[:3, :3])) < 1e-6:
        raise ValueError(f"{source}: singular matrix (the map plane collapses)")
    if rigid:
        linear = matrix[:3, :3]
        departure = float(np.abs(linear.T @ linear - np.eye(3)).max())
        if departure > RIGID_TOLERANCE:
            scales = np.linalg.svd(linear, compute_uv=False)
            raise ValueError(
                f"{source}: not a rigid placement (um to um): it scales lengths by "
                f"{scales.min():.4g} to {scales.max():.4g}; give the map_to_xct that "
                "`jellyroll locate` wrote (map frame in um to the X-ray frame in um, not to "
                "voxel indices or from map pixels)"
            )
    return matrix


def map_points_to_xct(
    x_um: Sequence[float] | np.ndarray,
    y_um: Sequence[float] | np.ndarray,
    map_to_xct: np.ndarray,
    z_um: float | np.ndarray = 0.0,
) -> np.ndarray:
    """Points (x_um, y_um) of the map (at height ``z_um`` above it) in the X-ray frame:
    (n, 3) array of (z, y, x) um; ``map_to_xct`` rigid (:func:`check_map_to_xct`)."""
    x, y = np.asarray(x_um, dtype=np.float64), np.asarray(y_um, dtype=np.float64)
    z = np.broadcast_to(np.asarray(z_um, dtype=np.float64), x.shape)
    points = np.column_stack([z, y, x, np.ones(x.size)])
    return (points @ check_map_to_xct(map_to_xct, rigid=True).T)[:, :3]


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks the columns {', '.join(missing)}")


def link_to_bends(
    agglomerates: pd.DataFrame,
    bends: pd.DataFrame,
    map_to_xct: np.ndarray,
    *,
    registration_error_um: float = 20.0,
    same_turn: bool = False,
) -> pd.DataFrame:
    """The defect table with each agglomerate's 3D bend (a copy with :data:`LINK_COLUMNS`).

    ``agglomerates``: the map's table (``id``, ``x_um``, ``y_um``,
    ``equivalent_diameter_um``); ``bends``: the 3D bends in the X-ray frame (``id``,
    ``z_um``, ``y_um``, ``x_um``, ``amplitude_um``, ``extent_axial_um``). An agglomerate
    that bent the collector lies against it: across the cell axis its centre is within
    ``|amplitude| + diameter + registration_error_um`` of the bend's deepest point (as
    :func:`jellyroll.defects.link_bends` in 2D), and along the axis the map plane cuts the
    bend, within ``extent_axial / 2 + registration_error_um``. The two offsets, each over
    its reach, must lie in the unit circle; with ``same_turn`` the ``turn`` columns of both
    tables must agree too (only when both count turns the same way: traces of one
    collector start at different inner ends, the twin's geometry turns differ from a
    trace's). Each bend goes to the candidate nearest in that scaled distance and each
    agglomerate to at most one bend (a small agglomerate beside a large one does not
    inherit its bend); a spot whose ``case`` is unresolved (under 3 pixels, or cut by the
    map) only when no resolved agglomerate reaches the bend (on the tiny twin a 26 um
    fleck 20 um from a bend took it from the 86 um agglomerate that made it, 85 um away).
    ``bend3d_id`` 0 and NaN where none; ``xct_*`` the centre in the X-ray frame;
    ``bend3d_distance_um`` the 3D distance to the bend.
    """
    _require(agglomerates, _AGGLOMERATE_COLUMNS, "the agglomerate table")
    _require(bends, _BEND_COLUMNS, "the bend table")
    bend_ids = _bend_ids(bends)
    _require_finite(agglomerates, ("x_um", "y_um"), "the agglomerate table", "agglomerate")
    _require_finite(bends, _BEND_COLUMNS[1:], "the bend table", "bend")
    if not registration_error_um >= 0:
        raise ValueError(f"registration_error_um must be >= 0, got {registration_error_um}")
    out = agglomerates.copy()
    centres = map_points_to_xct(out["x_um"], out["y_um"], map_to_xct)
    out["xct_z_um"], out["xct_y_um"], out["xct_x_um"] = centres.T
    bend_zyx = bends[["z_um", "y_um", "x_um"]].to_numpy(dtype=np.float64)
    offset = centres[:, None, :] - bend_zyx[None, :, :]  # (n_agglomerates, n_bends, 3)
    across = np.hypot(offset[..., 1], offset[..., 2])
    diameter = out["equivalent_diameter_um"].to_numpy(dtype=np.float64)
    amplitude = bends["amplitude_um"].to_numpy(dtype=np.float64)
    reach_across = np.abs(amplitude)[None, :] + diameter[:, None] + registration_error_um
    reach_axial = bends["extent_axial_um"].to_numpy(dtype=np.float64) / 2 + registration_error_um
    scaled = np.hypot(across / reach_across, offset[..., 0] / reach_axial[None, :])
    scaled = np.where(np.isfinite(scaled), scaled, np.inf)
    if same_turn:
        _require(out, ("turn",), "the agglomerate table (same_turn)")
        _require(bends, ("turn",), "the bend table (same_turn)")
        same = out["turn"].to_numpy()[:, None] == bends["turn"].to_numpy()[None, :]
        scaled = np.where(same, scaled, np.inf)
    chosen = np.full(len(out), -1)
    candidates = np.argwhere(scaled <= 1.0)
    unresolved = out["case"].to_numpy() == UNRESOLVED if "case" in out else np.zeros(len(out), bool)
    # resolved agglomerates first, each group nearest first
    order = np.lexsort((scaled[candidates[:, 0], candidates[:, 1]], unresolved[candidates[:, 0]]))
    taken: set[int] = set()
    for i, j in candidates[order]:
        if chosen[i] < 0 and j not in taken:
            chosen[i] = j
            taken.add(int(j))
    linked = chosen >= 0
    rows = np.arange(len(out))
    out["bend3d_id"] = 0
    out.loc[linked, "bend3d_id"] = bend_ids[chosen[linked]]
    distance = np.linalg.norm(offset, axis=-1)[rows[linked], chosen[linked]]
    for column, values in (
        ("bend3d_distance_um", distance),
        ("bend3d_amplitude_um", amplitude[chosen[linked]]),
        ("bend3d_extent_axial_um", bends["extent_axial_um"].to_numpy(float)[chosen[linked]]),
        ("bend3d_extent_arc_um", _column(bends, "extent_arc_um")[chosen[linked]]),
    ):
        out[column] = np.nan
        out.loc[linked, column] = values
    return out


def _require_finite(table: pd.DataFrame, columns: Sequence[str], what: str, row: str) -> None:
    """ValueError naming the ids of the rows of ``table`` with a non-finite value in
    ``columns``: such an agglomerate (no centre) or bend (no place, depth or extent) was
    matched to nothing, and the agglomerate counted as off any bend in its size bin (a
    70 um one on its bend: fraction 0 instead of 1), exit 0."""
    values = table[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        ids = ", ".join(map(str, table["id"].to_numpy()[bad][:8]))
        raise ValueError(
            f"{what}: {row}(s) {ids} lack a finite {' / '.join(columns)} and cannot be "
            "matched; drop them or give their values"
        )


def _bend_ids(bends: pd.DataFrame) -> np.ndarray:
    """The bend table's ``id`` as int64 (n,); ValueError unless they are distinct positive
    integers: ``bend3d_id`` 0 means "on no bend", so an agglomerate linked to a bend 0 (a
    table counted from 0) was counted as unbent in the size bins and the threshold while
    its distance and amplitude were filled in; an id of 1.5 was cut to 1."""
    ids = pd.to_numeric(bends["id"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(ids) & (ids >= 1) & (ids == np.round(ids)))
    if bad.any() or len(np.unique(ids)) != len(ids):
        shown = ", ".join(map(str, bends["id"].to_list()[:8]))
        raise ValueError(
            f"the bend table's ids must be distinct integers from 1 (bend3d_id 0 means no "
            f"bend), got {shown}{' ...' if len(ids) > 8 else ''}; number the bends 1, 2, ..."
        )
    return ids.astype(np.int64)


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    return table[name].to_numpy(dtype=float) if name in table else np.full(len(table), np.nan)


def size_bin_text(lower_um: float, upper_um: float) -> str:
    """'40-50 um' of a size bin of :func:`bend_fraction_by_size`, '100 um and more' of the
    last one (upper edge inf)."""
    if np.isinf(upper_um):
        return f"{lower_um:g} um and more"
    return f"{lower_um:g}-{upper_um:g} um"


def _resolved_diameters(linked: pd.DataFrame) -> np.ndarray:
    """The equivalent diameters (um) of ``linked``, NaN for an unresolved spot (``case``):
    its size is ill-determined (under 3 pixels, or cut by the map: docs/defects.md), and
    the tiny twins' 31-43 um case-A agglomerates, unresolved and measured at 50-60 um, read
    as agglomerates of that size on no bend, and moved the measured threshold to 67-81 um."""
    diameter = linked["equivalent_diameter_um"].to_numpy(dtype=float).copy()
    if "case" in linked:
        diameter[linked["case"].to_numpy() == UNRESOLVED] = np.nan
    return diameter


def bend_fraction_by_size(
    linked: pd.DataFrame, edges_um: Sequence[float] = SIZE_BIN_EDGES_UM
) -> pd.DataFrame:
    """Per equivalent-diameter bin of ``edges_um``, the agglomerates on a bent collector.

    ``linked``: a table of :func:`link_to_bends` (unresolved spots left out:
    :func:`_resolved_diameters`). Returns ``lower_um``, ``upper_um``, ``count``,
    ``on_bend`` and ``fraction`` (on_bend / count, NaN for an empty bin). Bins
    are half-open [lower, upper), the last closed; ValueError when an agglomerate's
    diameter lies outside the edges (edges 0 to 100 um left a 120 um case-B agglomerate on
    its bend out of every count, exit 0): end them with inf.
    """
    _require(linked, ("equivalent_diameter_um", "bend3d_id"), "the linked table")
    edges = np.asarray(edges_um, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"size bin edges must increase, got {list(edges_um)}")
    diameter = _resolved_diameters(linked)
    on_bend = linked["bend3d_id"].to_numpy() > 0
    known = np.isfinite(diameter)
    outside = known & ((diameter < edges[0]) | (diameter > edges[-1]))
    if outside.any():
        shown = ", ".join(f"{d:g}" for d in diameter[outside][:5])
        raise ValueError(
            f"size bin edges {edges[0]:g} to {edges[-1]:g} um leave out {int(outside.sum())} "
            f"agglomerate(s) (equivalent diameters {shown} um): widen them, e.g. end them "
            "with inf"
        )
    count, _ = np.histogram(diameter[known], bins=edges)
    bent, _ = np.histogram(diameter[known & on_bend], bins=edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(count > 0, bent / np.maximum(count, 1), np.nan)
    return pd.DataFrame(
        {"lower_um": edges[:-1], "upper_um": edges[1:], "count": count, "on_bend": bent,
         "fraction": fraction}
    )  # fmt: skip


@dataclass(frozen=True)
class BendThreshold:
    """The diameter (um) that best separates agglomerates on a bend (above) from those
    without (below): ``diameter_um`` halfway between the two diameters around the best cut
    (NaN when every agglomerate is on one side), ``misclassified`` agglomerates on the
    wrong side of it, ``below_um``/``above_um`` those two diameters, ``count`` in all."""

    diameter_um: float
    misclassified: int
    below_um: float
    above_um: float
    count: int


def measured_bend_threshold(linked: pd.DataFrame) -> BendThreshold:
    """The case A/B threshold as the volume shows it: the cut of the equivalent diameter
    with the fewest agglomerates on the wrong side (on a bend below, none above); among
    equally good cuts, the one with the widest gap. Unresolved spots are left out
    (:func:`_resolved_diameters`).

    Only between two different diameters: a cut between two agglomerates of the same
    diameter (a table rounded, or diameters from pixel areas) is no threshold, it split
    them by their order in the table (40, 50, 50, 60 um with one 50 um on a bend: 50 um
    with none on the wrong side, or 45 um with one, by the rows' order). When every known
    diameter is the same, NaN and the agglomerates on the wrong side of the better of the
    two cuts around them all."""
    _require(linked, ("equivalent_diameter_um", "bend3d_id"), "the linked table")
    diameter = _resolved_diameters(linked)
    known = np.isfinite(diameter)
    order = np.argsort(diameter[known], kind="stable")
    d = diameter[known][order]
    bent = (linked["bend3d_id"].to_numpy()[known] > 0)[order]
    n = d.size
    if n == 0 or bent.all() or not bent.any():
        return BendThreshold(float("nan"), 0, float("nan"), float("nan"), n)
    # cut after k sorted agglomerates: bent ones among the first k, unbent ones after
    errors = np.concatenate([[0], np.cumsum(bent)]) + np.concatenate(
        [np.cumsum((~bent)[::-1])[::-1], [0]]
    )
    cuts = np.arange(1, n)  # between two agglomerates
    gaps = d[cuts] - d[cuts - 1]
    cuts, gaps = cuts[gaps > 0], gaps[gaps > 0]  # of different diameters
    if cuts.size == 0:
        return BendThreshold(
            float("nan"), int(min(errors[0], errors[n])), float("nan"), float("nan"), n
        )
    best = cuts[np.lexsort((-gaps, errors[cuts]))[0]]
    return BendThreshold(
        float(0.5 * (d[best - 1] + d[best])),
        int(errors[best]),
        float(d[best - 1]),
        float(d[best]),
        n,
    )

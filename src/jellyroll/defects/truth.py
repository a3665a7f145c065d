"""Agglomerates found against a digital twin's truth (``truth.h5`` of ``jellyroll phantom``).

How far to trust a diagnosis: recall, precision, size error and the A/B classification
of the agglomerates found, against the twin's true in-slice agglomerates. Lengths in um.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import h5py
import numpy as np
import pandas as pd
from scipy import ndimage, optimize

from jellyroll.conventions import pixel_centres_um
from jellyroll.defects.agglomerates import UNRESOLVED
from jellyroll.io.nexus import read_table
from jellyroll.results.store import RunFileError

MISSED = "missed"
"""The found case of a true agglomerate that no detection matches."""


def read_true_agglomerates(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The twin's true agglomerates of the slice, centred on their in-slice centroids.

    Clipped by its coating, an agglomerate's cross-section need not be centred on its
    ellipsoid; a map shows the centroid of the cross-section (weights: the agglomerate's
    area fraction per pixel, ``/entry/maps/region_agglomerate``, over the pixels labelled
    with its id, ``/entry/maps/agglomerate_id``).
    """
    try:
        with h5py.File(path, "r") as f:
            table = read_table(f["/entry/agglomerates"])
            maps = f["/entry/maps"]
            labels = maps["agglomerate_id"]["data"][()].astype(int)
            weight = maps["region_agglomerate"]["data"][()].astype(float)
            pixel = float(f["/entry/scan/pixel_size_um"][()])
    except (OSError, KeyError) as error:
        raise RunFileError(
            f"{path}: not a digital-twin truth file (need /entry/agglomerates, "
            f"/entry/maps/agglomerate_id and region_agglomerate, /entry/scan/pixel_size_um: "
            f"{error}); give the truth.h5 that `jellyroll phantom` wrote"
        ) from error
    ids = table["id"].to_numpy(dtype=int)
    if ids.size:
        ny, nx = labels.shape
        y, x = np.meshgrid(pixel_centres_um(ny, pixel), pixel_centres_um(nx, pixel), indexing="ij")
        total = ndimage.sum_labels(weight, labels, ids)
        seen = total > 0
        for name, axis in (("x_um", x), ("y_um", y)):
            centroid = ndimage.sum_labels(weight * axis, labels, ids) / np.where(seen, total, 1)
            table[name] = np.where(seen, centroid, table[name].to_numpy(dtype=float))
    return table


def true_defect_share(path: str | os.PathLike[str]) -> float:
    """The twin's agglomerate area over its anode area in the slice (``region_agglomerate``
    over ``anode_mask`` of ``/entry/maps``); NaN when the file lacks them."""
    with h5py.File(path, "r") as f:
        maps = f["/entry/maps"]
        if "region_agglomerate" not in maps or "anode_mask" not in maps:
            return float("nan")
        anode = float(np.sum(maps["anode_mask"]["data"][()]))
        agglomerate = float(np.sum(maps["region_agglomerate"]["data"][()]))
    return agglomerate / anode if anode > 0 else float("nan")


def match_agglomerates(found: pd.DataFrame, truth: pd.DataFrame, pixel_size_um: float) -> pd.Series:
    """Per true agglomerate, the row position in ``found`` of its match (-1 if none).

    A detection matches when its centre lies within max(1.5 px, true radius) of the true
    centre (a pixel and a half: the centre of a blurred spot of a few pixels); one to one
    (one blob found between two close true agglomerates is one hit, not two; a second
    detection of one true agglomerate matches nothing): as many pairs as can be, and of
    those the nearest in all.
    """
    fx = found["x_um"].to_numpy(dtype=float)
    fy = found["y_um"].to_numpy(dtype=float)
    tx = truth["x_um"].to_numpy(dtype=float)
    ty = truth["y_um"].to_numpy(dtype=float)
    reach = np.maximum(1.5 * pixel_size_um, truth["equivalent_diameter_um"].to_numpy(float) / 2)
    distance = np.hypot(tx[:, None] - fx[None, :], ty[:, None] - fy[None, :])
    near = distance <= reach[:, None]  # False for NaN
    # each pair in reach costs under 1 (its distance over the farthest's), any other more
    # than all of them together: the assignment keeps the most pairs in reach first
    farthest = float(distance[near].max()) if near.any() else 0.0
    cost = np.where(near, distance / (farthest + 1.0), min(near.shape) + 1.0)
    true_rows, found_rows = optimize.linear_sum_assignment(cost)
    kept = near[true_rows, found_rows]
    out = np.full(len(truth), -1)
    out[true_rows[kept]] = found_rows[kept]
    return pd.Series(out, index=truth.index, dtype=int)


@dataclass(frozen=True)
class TruthComparison:
    """Found vs true agglomerates of one cell.

    ``pairs``: one row per true agglomerate (``true_id``, ``true_diameter_um`` (in the
    slice), ``true_nominal_diameter_um`` (3D, which ``true_case`` is of; NaN when the
    table lacks it), ``true_case``, ``found_id``, ``found_diameter_um``, ``found_case``:
    "missed" when nothing matched); ``confusion``: true case (rows) against found case (columns).
    """

    pairs: pd.DataFrame
    confusion: pd.DataFrame
    recall: float
    precision: float
    median_size_error: float
    class_agreement: float
    n_found: int


def compare_with_truth(
    found: pd.DataFrame,
    truth: pd.DataFrame,
    pixel_size_um: float,
    critical_diameter_um: float | None = None,
) -> TruthComparison:
    """Recall (true agglomerates matched), precision (detections matched: each matches
    one true agglomerate at most, :func:`match_agglomerates`),
    median relative size error of the matches, and class agreement: the share of true
    agglomerates whose found case equals the true one (a missed or "unresolved" one
    disagrees).

    The true case is the twin's: its agglomerate's nominal (3D) diameter against the
    critical one, the class that decides whether it bends the collector; a slice off its
    middle shows it smaller (``true_diameter_um``, in-slice, which the sizes are compared
    with), so a case-B agglomerate can show under the critical diameter. ``pairs`` gives
    both diameters. ``critical_diameter_um``: the one ``found`` was classified at (um);
    given, the true case is the nominal diameter against it (ValueError when ``truth``
    lacks ``nominal_diameter_um``); None keeps the twin's own (the twin's 50 um against
    a diagnosis at 40 um counted every 40-50 um agglomerate found as B as a disagreement).
    """
    true_case = truth["case"].to_numpy()
    if critical_diameter_um is not None:
        if "nominal_diameter_um" not in truth:
            raise ValueError(
                "compare_with_truth: the truth table has no nominal_diameter_um, so its "
                f"case cannot be told at the critical diameter {critical_diameter_um:g} um "
                "the agglomerates were classified at; read it with read_true_agglomerates "
                "from a twin's truth.h5, or pass critical_diameter_um=None"
            )
        nominal = truth["nominal_diameter_um"].to_numpy(dtype=float)
        true_case = np.where(nominal > critical_diameter_um, "B", "A").astype(object)
    matches = match_agglomerates(found, truth, pixel_size_um).to_numpy()
    hit = matches >= 0
    rows = found.iloc[matches[hit]]
    found_case = np.full(len(truth), MISSED, dtype=object)
    found_case[hit] = rows["case"].to_numpy()
    found_diameter = np.full(len(truth), np.nan)
    found_diameter[hit] = rows["equivalent_diameter_um"].to_numpy(dtype=float)
    found_id = np.full(len(truth), -1)
    found_id[hit] = rows["id"].to_numpy(dtype=int)
    true_diameter = truth["equivalent_diameter_um"].to_numpy(dtype=float)
    pairs = pd.DataFrame(
        {
            "true_id": truth["id"].to_numpy(dtype=int),
            "true_diameter_um": true_diameter,
            "true_nominal_diameter_um": truth["nominal_diameter_um"].to_numpy(dtype=float)
            if "nominal_diameter_um" in truth
            else np.full(len(truth), np.nan),
            "true_case": true_case,
            "found_id": found_id,
            "found_diameter_um": found_diameter,
            "found_case": found_case,
        }
    )
    columns = ["A", "B", UNRESOLVED, MISSED]
    confusion = pd.crosstab(pairs["true_case"], pairs["found_case"]).reindex(
        index=["A", "B"], columns=columns, fill_value=0
    )
    error = np.abs(found_diameter[hit] - true_diameter[hit]) / true_diameter[hit]
    n = len(truth)
    return TruthComparison(
        pairs=pairs,
        confusion=confusion.fillna(0).astype(int),
        recall=float(hit.sum() / n) if n else float("nan"),
        precision=float(hit.sum() / len(found)) if len(found) else float("nan"),
        median_size_error=float(np.median(error)) if error.size else float("nan"),
        class_agreement=float(np.mean(pairs["true_case"] == pairs["found_case"]))
        if n
        else float("nan"),
        n_found=len(found),
    )

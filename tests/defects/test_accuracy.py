"""Accuracy of the defect analysis on reconstructed maps of twins (see conftest.py).

Figures pool the accuracy set (four states at 10 um pixels, two at 20 um, one seed each,
none used in development) and must reach the issue's 0.95; each twin on its own may miss
at most 10 % (at least one), so one good case cannot hide a bad one. Evaluated: true
agglomerates of in-slice equivalent diameter >= 3 pixels (at 20 um only the case-B ones
reach it). Run with ``-s`` to see the per-case table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jellyroll.defects import median_radius_um, size_histogram

POOLED = 0.95  # the targets
PER_CASE_MISSES = 0.1  # a twin has 4-35 evaluated agglomerates


def _figures(case) -> dict:
    p = case.maps.pixel_size_um
    truth = case.truth[case.truth["equivalent_diameter_um"] >= 3 * p]
    hit = truth[truth["match"] >= 0]
    found = case.found.iloc[hit["match"].to_numpy()]
    error = np.abs(found["equivalent_diameter_um"].to_numpy() - hit["equivalent_diameter_um"])
    tolerance = np.maximum(0.1 * hit["equivalent_diameter_um"], p)
    # precision: detections of >= 3 px not matching any true agglomerate (of any size)
    claims = case.found[case.found["equivalent_diameter_um"] >= 3 * p]
    every = case.truth
    genuine = [
        bool(
            np.any(
                np.hypot(every["x_um"] - c.x_um, every["y_um"] - c.y_um)
                <= np.maximum(1.5 * p, every["equivalent_diameter_um"] / 2)
            )
        )
        for c in claims.itertuples()
    ]
    return {
        "case": f"{case.preset} {p:g}um seed {case.seed}",
        "evaluated": len(truth),
        "recalled": len(hit),
        "claims": len(claims),
        "genuine": int(np.sum(genuine)),
        "size_ok": int(np.sum(error <= tolerance)),
        "case_ok": int(np.sum(found["case"].to_numpy() == hit["case"].to_numpy())),
        "median_rel_error": float(np.median(error / hit["equivalent_diameter_um"])),
    }


@pytest.fixture(scope="module")
def figures(accuracy_cases) -> pd.DataFrame:
    table = pd.DataFrame([_figures(case) for case in accuracy_cases])
    table["recall"] = table["recalled"] / table["evaluated"]
    table["precision"] = table["genuine"] / table["claims"]
    table["size"] = table["size_ok"] / table["recalled"]
    table["classification"] = table["case_ok"] / table["recalled"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\n", table.round(3).to_string(index=False))
    return table


def _check(figures: pd.DataFrame, hits: str, of: str) -> None:
    pooled = figures[hits].sum() / figures[of].sum()
    assert pooled >= POOLED, f"pooled {hits}/{of} = {pooled:.3f}"
    misses = figures[of] - figures[hits]
    allowed = np.maximum(1, np.floor(PER_CASE_MISSES * figures[of]))
    assert (misses <= allowed).all(), figures.loc[misses > allowed, ["case", hits, of]]


def test_recall(figures):
    _check(figures, "recalled", "evaluated")


def test_precision(figures):
    _check(figures, "genuine", "claims")


def test_equivalent_diameter_within_10_percent_or_one_pixel(figures):
    _check(figures, "size_ok", "recalled")


def test_case_a_b(figures):
    _check(figures, "case_ok", "recalled")


def _true_displacement(case, x_um: float, y_um: float) -> float:
    """The twin's largest layer displacement (um) within a pixel of a point."""
    twin = case.maps.twin
    p = twin.pixel_size_um
    iy = round(y_um / p + (twin.shape[0] - 1) / 2)
    ix = round(x_um / p + (twin.shape[1] - 1) / 2)
    window = twin.raster.displacement_um[iy - 1 : iy + 2, ix - 1 : ix + 2]
    return float(window.flat[np.argmax(np.abs(window))])


def test_every_case_b_agglomerate_on_the_traced_collector_is_linked_to_its_bend(
    accuracy_cases,
):
    ratios, off_trace, total = [], 0, 0
    for case in accuracy_cases:
        truth = case.truth[(case.truth["case"] == "B") & (case.truth["match"] >= 0)]
        assert len(truth) >= 3
        bends = case.bends.set_index("id")
        layer = (
            case.trace.xy_px - (np.array(case.maps.twin.shape[::-1]) - 1) / 2
        ) * case.trace.pixel_size_um
        for row in truth.itertuples():
            total += 1
            gap = np.hypot(layer[:, 0] - row.x_um, layer[:, 1] - row.y_um).min()
            if gap > row.equivalent_diameter_um + row.bend_amplitude_um:
                off_trace += 1  # jellyroll.unroll did not follow the layer here
                continue
            detection = case.linked.iloc[row.match]
            assert detection["bend_id"] > 0, f"{case.preset} seed {case.seed}: agglomerate {row.id}"
            bend = bends.loc[detection["bend_id"]]
            ratios.append(
                bend["amplitude_um"] / _true_displacement(case, bend["x_um"], bend["y_um"])
            )
    assert off_trace == 0, f"{off_trace} of {total} case-B agglomerates off the trace"
    # the smooth reference takes up part of a wide bend (same sign, 0.5-1.1 of it here)
    assert min(ratios) >= 0.4
    assert np.median(ratios) >= 0.7


def test_size_distribution_matches_truth(accuracy_cases):
    for case in accuracy_cases:
        p = case.maps.pixel_size_um
        truth = case.truth[case.truth["match"] >= 0]
        found = case.found.iloc[truth["match"].to_numpy()]
        assert median_radius_um(found) == pytest.approx(median_radius_um(truth), rel=0.1, abs=p / 2)
        histogram = size_histogram(case.found, bins=np.arange(0, 120, 10))
        assert histogram["count"].sum() == (case.found["equivalent_diameter_um"] < 110).sum()

"""Size classes, found-vs-truth figures and anode regions on hand-made inputs."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jellyroll.defects import UNRESOLVED, size_class
from jellyroll.defects.regions import defect_share, region_masks, region_profiles
from jellyroll.defects.truth import (
    compare_with_truth,
    read_true_agglomerates,
    true_defect_share,
)
from jellyroll.io.nexus import write_nxdata, write_table
from jellyroll.results import RunFileError


@given(
    diameter=st.floats(0.0, 500.0),
    critical=st.floats(1.0, 200.0),
    pixel=st.floats(1.0, 50.0),
)
def test_size_class_is_never_a_or_b_when_an_unresolved_size_would_decide_it(
    diameter, critical, pixel
):
    (case,) = size_class(np.array([diameter]), critical, pixel)
    if diameter < 3 * pixel and critical < 3 * pixel:  # A or B would rest on < 3 px
        assert case == UNRESOLVED
    else:  # resolved, or below 3 px and so below a critical diameter of >= 3 px
        assert case == ("B" if diameter > critical else "A")


def test_the_demo_issue_unresolved_at_20_um_classified_at_10_um():
    """The fresh twin's 36-46 um agglomerates: at 20 um pixels (critical 50 um = 2.5 px)
    a fit of 55 um is not called B; at the study's 10 um a 28 um fit is case A."""
    assert size_class(np.array([55.0, 70.0]), 50.0, 20.0).tolist() == [UNRESOLVED, "B"]
    assert size_class(np.array([28.0, 45.0, 55.0]), 50.0, 10.0).tolist() == ["A", "A", "B"]


def test_size_class_of_nan_is_unresolved():
    assert size_class(np.array([np.nan]), 50.0, 10.0)[0] == UNRESOLVED


def _table(rows: list[tuple[float, float, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(1, len(rows) + 1),
            "x_um": [r[0] for r in rows],
            "y_um": [r[1] for r in rows],
            "equivalent_diameter_um": [r[2] for r in rows],
            "case": [r[3] for r in rows],
        }
    )


def test_comparison_counts_recall_precision_size_and_classes():
    truth = _table([(0, 0, 40, "A"), (500, 0, 80, "B"), (0, 500, 45, "A"), (900, 900, 30, "A")])
    found = _table(
        [
            (5, 0, 44, "A"),  # 5 um off, +10 % size: a match, right class
            (500, 20, 72, "B"),  # within the true radius (40 um): match, -10 %
            (0, 510, 55, "B"),  # match, wrong class
            (-900, 0, 60, "A"),  # nothing true there
        ]
    )
    result = compare_with_truth(found, truth, pixel_size_um=10.0)
    assert result.recall == pytest.approx(3 / 4)
    assert result.precision == pytest.approx(3 / 4)
    # relative errors 0.1, 0.1, 10/45: the median is 0.1
    assert result.median_size_error == pytest.approx(0.1)
    assert result.class_agreement == pytest.approx(2 / 4)  # the missed one disagrees
    assert result.confusion.loc["A", "A"] == 1 and result.confusion.loc["A", "B"] == 1
    assert result.confusion.loc["A", "missed"] == 1 and result.confusion.loc["B", "B"] == 1
    assert result.pairs["found_id"].tolist() == [1, 2, 3, -1]


def test_a_detection_beyond_reach_does_not_match():
    truth = _table([(0, 0, 20, "A")])  # reach max(1.5 px, 10 um) = 15 um
    found = _table([(16, 0, 20, "A")])
    result = compare_with_truth(found, truth, pixel_size_um=10.0)
    assert result.recall == 0 and result.precision == 0


def test_truth_centres_are_the_in_slice_centroids(tmp_path: Path):
    path = tmp_path / "truth.h5"
    p = 10.0
    ids = np.zeros((8, 10), int)
    ids[2:4, 6:9] = 7  # pixels iy 2-3, ix 6-8 -> centroid (ix 7, iy 2.5)
    weight = (ids > 0).astype(float)
    axes = [("y_um", (np.arange(8) - 3.5) * p, "um"), ("x_um", (np.arange(10) - 4.5) * p, "um")]
    with h5py.File(path, "w") as f:
        write_table(f.create_group("entry"), "agglomerates", _table([(100.0, 100.0, 30, "A")]))
        f["entry"]["agglomerates"]["id"][...] = [7]
        maps = f["entry"].create_group("maps")
        write_nxdata(maps, "agglomerate_id", ids, axes)
        write_nxdata(maps, "region_agglomerate", weight, axes)
        write_nxdata(maps, "anode_mask", np.ones((8, 10), np.uint8), axes)
        f["entry/scan/pixel_size_um"] = p
    assert true_defect_share(path) == pytest.approx(6 / 80)
    table = read_true_agglomerates(path)
    assert table["x_um"].iloc[0] == pytest.approx((7 - 4.5) * p)
    assert table["y_um"].iloc[0] == pytest.approx((2.5 - 3.5) * p)


def test_a_file_that_is_not_a_truth_file_is_refused(tmp_path: Path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["entry/x"] = 1
    with pytest.raises(RunFileError, match=r"other\.h5: not a digital-twin truth file"):
        read_true_agglomerates(path)


def test_regions_profiles_and_defect_share():
    p = 10.0
    anode = np.zeros((40, 40), bool)
    anode[10:30, :] = True  # 800 px
    agglomerates = _table([(0.0, 0.0, 60.0, "B")])  # disk of radius 30 um at the centre
    bends = pd.DataFrame({"x_um": [-150.0], "y_um": [0.0], "width_um": [40.0]})
    masks = region_masks(anode, agglomerates, bends, p, margin_um=20.0)
    # pixel centres (+-5, +-15, +-25 um) within 30 um of (0, 0), per quadrant: (5, 5),
    # (5, 15), (15, 5), (5, 25), (25, 5), (15, 15), (15, 25), (25, 15) -> 32 in all
    assert masks["agglomerate"].sum() == 32
    assert not (masks["regular"] & (masks["agglomerate"] | masks["bent"])).any()
    assert (masks["bent"] <= anode).all() and masks["bent"].sum() > 0
    assert defect_share(anode, masks["agglomerate"]) == pytest.approx(32 / 800)
    cube = np.zeros((40, 40, 3))
    cube[masks["agglomerate"]] = [1.0, 2.0, 3.0]
    cube[masks["regular"]] = [4.0, 5.0, np.nan]
    profiles = region_profiles(cube, np.array([0.01, 0.02, 0.03]), masks)
    assert profiles["agglomerate"].tolist() == [1.0, 2.0, 3.0]
    assert profiles["regular"].tolist()[:2] == [4.0, 5.0] and np.isnan(profiles["regular"][2])


def test_without_defects_the_whole_anode_is_regular():
    anode = np.ones((5, 5), bool)
    empty = pd.DataFrame()
    masks = region_masks(anode, empty, empty, 10.0, 20.0)
    assert masks["regular"].all() and not masks["agglomerate"].any()
    assert region_profiles(np.ones((5, 5, 2)), np.array([1.0, 2.0]), masks).columns.tolist() == [
        "q_A",
        "regular",
    ]


def test_one_detection_matches_one_true_agglomerate_at_most():
    """One blob found between two true agglomerates 40 um apart (each within the other's
    reach) was the match of both: recall 1.0 for one detection of two, exit 0; and two
    detections of one true agglomerate were both genuine: precision 1.0. Exact counts."""
    truth = _table([(0, 0, 60, "B"), (40, 0, 60, "B")])
    result = compare_with_truth(_table([(20, 0, 100, "B")]), truth, pixel_size_um=10.0)
    assert result.recall == 0.5 and result.precision == 1.0
    assert result.pairs["found_id"].tolist() == [1, -1]
    split = compare_with_truth(
        _table([(0, 0, 60, "B"), (10, 0, 60, "B")]), truth.iloc[:1], pixel_size_um=10.0
    )
    assert split.recall == 1.0 and split.precision == 0.5
    # the most pairs in reach: detection 1 (15 um) is nearer true 1 but also reaches true 2,
    # detection 2 (-25 um) reaches true 1 only
    both = compare_with_truth(_table([(15, 0, 60, "B"), (-25, 0, 60, "B")]), truth, 10.0)
    assert both.pairs["found_id"].tolist() == [2, 1] and both.recall == 1.0


def test_the_true_case_is_told_at_the_critical_diameter_the_cell_was_classified_at():
    """A diagnosis at a 40 um critical diameter against a twin classified at 50 um: the
    45 um agglomerate found (rightly, at 40 um) as B counted as a disagreement, class
    agreement 0.5 for 1.0, exit 0. Given the diagnosis' critical diameter, the true case is
    the nominal (3D) diameter against it; the in-slice diameter stays the one sizes are
    compared with, and both are in ``pairs``. Exact counts."""
    truth = _table([(0, 0, 30, "A"), (500, 0, 44, "A")])
    truth["nominal_diameter_um"] = [30.0, 45.0]
    found = _table([(0, 0, 30, "A"), (500, 0, 44, "B")])
    assert compare_with_truth(found, truth, 10.0).class_agreement == 0.5  # the twin's 50 um
    result = compare_with_truth(found, truth, 10.0, critical_diameter_um=40.0)
    assert result.class_agreement == 1.0
    assert result.pairs["true_case"].tolist() == ["A", "B"]
    assert result.pairs["true_nominal_diameter_um"].tolist() == [30.0, 45.0]
    assert result.pairs["true_diameter_um"].tolist() == [30.0, 44.0]
    with pytest.raises(ValueError, match="nominal_diameter_um"):
        compare_with_truth(found, truth.drop(columns="nominal_diameter_um"), 10.0, 40.0)

"""2D agglomerates linked to 3D bends on a twin whose true placement (map_to_xct) and true
bends are known: every case-B agglomerate on its own bend, no case-A one on any, and the
fraction on a bend per size bin jumps at the twin's critical diameter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.defects.agglomerates import UNRESOLVED
from jellyroll.locate import (
    bend_fraction_by_size,
    link_to_bends,
    map_points_to_xct,
    measured_bend_threshold,
)
from jellyroll.phantom.nxct import rigid_matrix
from jellyroll.phantom.twin import Twin
from jellyroll.phantom.write import TwinNXCT


def _check_cases(linked: pd.DataFrame, bend_of: dict[int, int]) -> None:
    """Every case-B agglomerate on its own bend (``bend_of``: agglomerate id -> bend id),
    no case-A one on any."""
    case_b = linked[linked.case == "B"]
    assert len(case_b) >= 3
    assert dict(zip(case_b.id, case_b.bend3d_id, strict=True)) == {i: bend_of[i] for i in case_b.id}
    assert (linked[linked.case == "A"].bend3d_id == 0).all()


def _check_threshold(twin: Twin, linked: pd.DataFrame) -> None:
    """The fraction on a bend is 0 in every bin below the critical diameter and 1 above;
    the measured threshold separates them without error and brackets the twin's."""
    critical = twin.geometry.params.agglomerates.critical_diameter_um
    fractions = bend_fraction_by_size(linked).dropna()
    # the in-slice diameter is within 3 % of the nominal one the twin classifies (the slice
    # cuts each ellipsoid within a quarter of its axial semi-axis): bins clear of 50 um
    assert (fractions[fractions.upper_um <= 0.97 * critical].fraction == 0).all()
    assert (fractions[fractions.lower_um >= critical].fraction == 1).all()
    threshold = measured_bend_threshold(linked)
    assert threshold.misclassified == 0 and threshold.count == len(linked)
    assert threshold.below_um <= critical <= threshold.above_um
    assert threshold.below_um < threshold.diameter_um < threshold.above_um


def test_true_bends_link_case_b_only(twin: Twin, twin_nxct: TwinNXCT) -> None:
    """With the twin's true bends and placement: case B on the bend it made, case A on none."""
    bends = twin_nxct.bends
    # both tables count turns on the twin's geometry: the turn must agree too
    linked = link_to_bends(twin.agglomerates, bends, twin_nxct.map_to_xct, same_turn=True)
    _check_cases(linked, dict(zip(bends.agglomerate_id, bends.id, strict=True)))
    _check_threshold(twin, linked)
    on = linked[linked.bend3d_id > 0]
    # the agglomerate lies against the foil it pushed: its push plus at most its radius
    assert (on.bend3d_distance_um < on.bend3d_amplitude_um + on.equivalent_diameter_um).all()


def test_measured_bends_link_case_b_only(
    twin: Twin, twin_nxct: TwinNXCT, measured_bends: pd.DataFrame
) -> None:
    """With the bends traced through the twin's X-ray volume (every other slice): the same."""
    bends = measured_bends
    linked = link_to_bends(twin.agglomerates, bends, twin_nxct.map_to_xct)
    truth = twin_nxct.bends
    bend_of = {}
    for bend in truth.itertuples():  # the measured bend nearest to each true one
        gap = np.hypot(bends.x_um - bend.x_um, bends.y_um - bend.y_um)
        assert gap.min() < 60.0  # within the foil's displacement of the true deepest point
        bend_of[bend.agglomerate_id] = int(bends.id[gap.idxmin()])
    _check_cases(linked, bend_of)
    _check_threshold(twin, linked)


def test_a_wrong_placement_links_nothing(twin: Twin, twin_nxct: TwinNXCT) -> None:
    """The map placed 200 um too high (beyond every bend's axial reach, ~60 um plus the
    registration error): no agglomerate finds a bend."""
    high = twin_nxct.map_to_xct @ rigid_matrix((0.0, 0.0, 0.0), (200.0, 0.0, 0.0))
    linked = link_to_bends(twin.agglomerates, twin_nxct.bends, high)
    assert (linked.bend3d_id == 0).all()


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    agglomerates = pd.DataFrame(
        {"id": [1, 2, 3], "x_um": [100.0, 100.0, -400.0], "y_um": [0.0, 60.0, 200.0],
         "equivalent_diameter_um": [70.0, 30.0, 40.0], "case": ["B", "A", "A"]}
    )  # fmt: skip
    bends = pd.DataFrame(
        {"id": [1, 2], "z_um": [10.0, 300.0], "y_um": [0.0, 200.0], "x_um": [160.0, -400.0],
         "amplitude_um": [40.0, 30.0], "extent_axial_um": [90.0, 90.0],
         "extent_arc_um": [140.0, 140.0]}
    )  # fmt: skip
    return agglomerates, bends


def test_one_bend_one_agglomerate_and_the_axial_reach() -> None:
    """A bend pushed out radially (+x) by a 70 um agglomerate: the 30 um one beside it along
    the layer (within reach too, but farther) does not inherit it; a bend 300 um above the
    map plane (beyond half its 90 um extent) is not under the third one."""
    agglomerates, bends = _tables()
    linked = link_to_bends(agglomerates, bends, np.eye(4))
    assert list(linked.bend3d_id) == [1, 0, 0]
    assert linked.bend3d_distance_um[0] == pytest.approx(np.hypot(60.0, 10.0))
    assert np.isnan(linked.bend3d_amplitude_um[1])
    none = link_to_bends(agglomerates, bends.iloc[:0], np.eye(4))
    assert (none.bend3d_id == 0).all()


def test_an_unresolved_fleck_does_not_take_the_bend_of_a_resolved_agglomerate() -> None:
    """The tiny twin's diagnosis: a 26 um unresolved fleck 20 um from the bend's deepest
    point took the bend from the 86 um case-B agglomerate that made it, 85 um away (nearer
    in the scaled distance: 0.3 against 0.6), and the threshold measured had 2 agglomerates
    on its wrong side, exit 0. Resolved agglomerates are served first; a fleck gets a bend
    that no resolved agglomerate reaches."""
    agglomerates = pd.DataFrame(
        {"id": [1, 2], "x_um": [140.0, 75.0], "y_um": [0.0, 0.0],
         "equivalent_diameter_um": [26.0, 86.0], "case": ["unresolved", "B"]}
    )  # fmt: skip
    bends = pd.DataFrame(
        {"id": [1], "z_um": [0.0], "y_um": [0.0], "x_um": [160.0], "amplitude_um": [40.0],
         "extent_axial_um": [90.0]}
    )  # fmt: skip
    assert list(link_to_bends(agglomerates, bends, np.eye(4)).bend3d_id) == [0, 1]
    alone = agglomerates.assign(x_um=[140.0, -400.0])  # the resolved one out of reach
    assert list(link_to_bends(alone, bends, np.eye(4)).bend3d_id) == [1, 0]
    without_cases = agglomerates.drop(columns="case")  # nearest in scaled distance, as before
    assert list(link_to_bends(without_cases, bends, np.eye(4)).bend3d_id) == [1, 0]


@settings(max_examples=30, deadline=None)
@given(
    angles=st.tuples(*[st.floats(-180, 180)] * 3),
    shift=st.tuples(*[st.floats(-5000, 5000)] * 3),
)
def test_links_do_not_depend_on_the_volume_frame(angles, shift) -> None:
    """Spinning and shifting the X-ray frame about its axis (bends and map_to_xct together)
    changes no link or distance; map_points_to_xct is the matrix product."""
    agglomerates, bends = _tables()
    spin = rigid_matrix((angles[0], 0.0, 0.0), shift)
    moved = bends.copy()
    zyx1 = np.column_stack([bends[["z_um", "y_um", "x_um"]], np.ones(len(bends))])
    moved[["z_um", "y_um", "x_um"]] = (zyx1 @ spin.T)[:, :3]
    a = link_to_bends(agglomerates, bends, np.eye(4))
    b = link_to_bends(agglomerates, moved, spin)
    assert list(a.bend3d_id) == list(b.bend3d_id)
    np.testing.assert_allclose(a.bend3d_distance_um, b.bend3d_distance_um, atol=1e-6)
    move = rigid_matrix(angles, shift)
    points = map_points_to_xct([1.0, 2.0], [3.0, 4.0], move)
    np.testing.assert_allclose(points, (np.array([[0, 3, 1, 1], [0, 4, 2, 1]]) @ move.T)[:, :3])


def test_bad_placement_is_refused() -> None:
    agglomerates, bends = _tables()
    with pytest.raises(ValueError, match="4x4"):
        link_to_bends(agglomerates, bends, np.eye(3))
    with pytest.raises(ValueError, match="non-finite"):
        link_to_bends(agglomerates, bends, np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="equivalent_diameter_um"):
        link_to_bends(agglomerates.drop(columns="equivalent_diameter_um"), bends, np.eye(4))


def test_a_threshold_never_cuts_between_two_agglomerates_of_one_diameter() -> None:
    """Equal diameters (a table rounded, or measured from pixel areas). Two 50 um
    agglomerates, one on a bend: the threshold was cut between them, 50 um with none on
    its wrong side (a separation no diameter makes), or 45 um with one, depending on the
    rows' order, exit 0. Now only between different diameters, whatever the order: 45 um
    with one on its wrong side (55 um is as good and as wide; the first is kept). Exact:
    halfway between two given diameters."""
    linked = pd.DataFrame(
        {"equivalent_diameter_um": [40.0, 50.0, 50.0, 60.0], "bend3d_id": [0, 0, 3, 4]}
    )
    for order in ([0, 1, 2, 3], [0, 2, 1, 3], [3, 2, 1, 0]):
        threshold = measured_bend_threshold(linked.iloc[order])
        assert threshold.diameter_um == 45.0 and threshold.misclassified == 1
        assert (threshold.below_um, threshold.above_um) == (40.0, 50.0)
    same = pd.DataFrame({"equivalent_diameter_um": [50.0] * 3, "bend3d_id": [0, 1, 2]})
    threshold = measured_bend_threshold(same)  # no cut between different diameters
    assert np.isnan(threshold.diameter_um) and threshold.misclassified == 1
    assert threshold.count == 3


def test_unresolved_spots_stay_out_of_the_size_bins_and_the_threshold() -> None:
    """An unresolved spot's size is ill-determined: the tiny twins' 31-43 um case-A
    agglomerates, unresolved and measured at 50-60 um on no bend, filled the 50-60 um bin
    with agglomerates on no bend and moved the measured threshold to 67-81 um (the twins'
    cut lies between 44 and 76 um). They are left out of both."""
    linked = pd.DataFrame(
        {
            "equivalent_diameter_um": [30.0, 40.0, 55.0, 58.0, 76.0, 90.0],
            "case": ["A", "A", UNRESOLVED, UNRESOLVED, "B", "B"],
            "bend3d_id": [0, 0, 0, 0, 1, 2],
        }
    )
    bins = bend_fraction_by_size(linked, [0.0, 50.0, 60.0, np.inf])
    assert bins["count"].tolist() == [2, 0, 2] and bins["on_bend"].tolist() == [0, 0, 2]
    threshold = measured_bend_threshold(linked)
    assert threshold.diameter_um == 58.0 and threshold.misclassified == 0
    assert threshold.count == 4


def test_a_bend_table_counted_from_zero_is_refused() -> None:
    """A bend with id 0 (a table counted from 0: SPEC section 6 names no start) linked to
    the 70 um agglomerate 61 um from it, which read bend3d_id 0 ("on no bend") with its
    distance and amplitude filled in: its size bin showed a fraction 0 instead of 1, exit
    0. Ids must be distinct integers from 1; a 1.5 was cut to 1."""
    agglomerates, bends = _tables()
    for ids in ([0, 1], [1, 1], [1.5, 2], [1, np.nan]):
        with pytest.raises(ValueError, match="distinct integers from 1"):
            link_to_bends(agglomerates, bends.assign(id=ids), np.eye(4))
    renumbered = link_to_bends(agglomerates, bends.assign(id=[7.0, 3.0]), np.eye(4))
    assert list(renumbered.bend3d_id) == [7, 0, 0]


@pytest.mark.parametrize("scale", [1 / 20, 20.0, 1.01])
def test_a_placement_that_scales_lengths_is_refused(scale: float) -> None:
    """map_to_xct into X-ray voxel indices of 20 um (every length a 20th) or from 20 um map
    pixels was taken as um to um: the 70 um agglomerate 61 um from its bend was carried 3
    'um' off the centre and linked to none (1/20), exit 0. A placement is rigid: its linear
    part a rotation to 1e-3 (a 1 % scale, 25 um across a 5 mm map, is refused; a rotation
    passes, test_links_do_not_depend_on_the_volume_frame)."""
    agglomerates, bends = _tables()
    matrix = np.diag([scale, scale, scale, 1.0])
    with pytest.raises(ValueError, match="not a rigid placement"):
        link_to_bends(agglomerates, bends, matrix)
    with pytest.raises(ValueError, match="not a rigid placement"):
        map_points_to_xct([0.0], [0.0], rigid_matrix((30.0, 5.0, 0.0), (1, 2, 3)) @ matrix)


def test_size_bins_that_leave_out_an_agglomerate_are_refused() -> None:
    """Edges 0 to 100 um left the 120 um agglomerate on its bend out of every bin (counts
    summing to 2 of 3), exit 0. Refused; edges ending with inf count it, each agglomerate
    in exactly one bin (a diameter on an edge in the bin above)."""
    linked = pd.DataFrame(
        {"equivalent_diameter_um": [30.0, 50.0, 60.0, 120.0], "bend3d_id": [0, 0, 1, 2]}
    )
    with pytest.raises(ValueError, match="leave out 1 agglomerate"):
        bend_fraction_by_size(linked, (0, 50, 100))
    bins = bend_fraction_by_size(linked, (0, 50, 100, np.inf))
    assert list(bins["count"]) == [1, 2, 1] and list(bins.on_bend) == [0, 1, 1]
    assert bins["count"].sum() == len(linked)
    assert np.isnan(bend_fraction_by_size(linked, (0, 10, np.inf)).fraction[0])  # empty bin


def test_an_agglomerate_or_bend_without_finite_values_is_refused() -> None:
    """An agglomerate without a centre (NaN x_um) or a bend without a depth (NaN
    amplitude) was matched to nothing: the 70 um agglomerate on its bend counted as off
    any bend in its size bin (fraction 0 instead of 1), exit 0. Refused, naming the row;
    a NaN diameter stays allowed (the size bins leave it out, as unknown)."""
    agglomerates, bends = _tables()
    with pytest.raises(ValueError, match=r"agglomerate\(s\) 2 lack a finite x_um"):
        link_to_bends(agglomerates.assign(x_um=[100.0, np.nan, -400.0]), bends, np.eye(4))
    for column in ("z_um", "amplitude_um", "extent_axial_um"):
        broken = bends.copy()
        broken.loc[0, column] = np.nan
        with pytest.raises(ValueError, match=rf"bend\(s\) 1 lack a finite .*{column}"):
            link_to_bends(agglomerates, broken, np.eye(4))
    unknown = agglomerates.assign(equivalent_diameter_um=[70.0, np.nan, 40.0])
    assert list(link_to_bends(unknown, bends, np.eye(4)).bend3d_id) == [1, 0, 0]

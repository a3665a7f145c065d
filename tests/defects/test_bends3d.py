"""Bends in 3D: per-slice bends joined along the axis; features along the whole height (the
winding itself) are not bends."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jellyroll.defects.bends3d import join_bends


def _slice_bend(k: int, arc: float, amplitude: float, turn: int = 1) -> dict:
    """A 2D bend of slice ``k``; turns 400 um (a pitch) apart in y."""
    return {"slice": k, "z_um": (k - 10) * 20.0, "arc_um": arc, "turn": turn, "width_um": 80.0,
            "amplitude_um": amplitude, "x_um": arc / 10, "y_um": 400.0 * turn}  # fmt: skip


def test_neighbouring_slices_join_into_one_bend_with_its_extent() -> None:
    """A bend seen in slices 8-11 at drifting arc positions (within its width) is one bend,
    80 um tall, its deepest slice giving the position; another turn, or the other side,
    stays apart."""
    rows = [_slice_bend(k, 1000.0 + 5 * k, 10.0 + (k == 9) * 5) for k in range(8, 12)]
    rows += [_slice_bend(9, 1000.0, 12.0, turn=2), _slice_bend(9, 1500.0, -8.0)]
    bends = join_bends(pd.DataFrame(rows), 20.0)
    assert len(bends) == 3
    main = bends[bends.slices == 4].iloc[0]
    assert main.extent_axial_um == 80.0 and main.amplitude_um == 15.0
    assert main.z_um == -20.0 and main.turn == 1


def test_slices_that_are_not_neighbours_stay_apart() -> None:
    rows = [_slice_bend(2, 1000.0, 10.0), _slice_bend(7, 1000.0, 10.0)]
    bends = join_bends(pd.DataFrame(rows), 20.0)
    assert len(bends) == 2 and set(bends.extent_axial_um) == {20.0}
    assert np.array_equal(bends.id, [1, 2])


def test_a_feature_along_the_whole_height_is_not_a_bend(monkeypatch) -> None:
    """A deviation at one place of the layer in 15 of 20 slices (the winding's inner end, a
    tracer artefact) is dropped; a local bend (3 slices) and its neighbours are kept."""
    from jellyroll.defects import bends3d

    rows = [_slice_bend(k, 300.0, -20.0, turn=0) for k in range(20) if k % 4]
    rows += [_slice_bend(k, 2000.0, 30.0) for k in (9, 10, 11)]
    monkeypatch.setattr(
        bends3d, "slice_bends", lambda *args: (pd.DataFrame(rows), bends3d._displacement([], 20))
    )
    bends, _ = bends3d.find_bends_3d(np.zeros((20, 4, 4)), 20.0)
    assert len(bends) == 1 and bends.iloc[0].amplitude_um == 30.0
    assert bends.iloc[0].extent_axial_um == 60.0

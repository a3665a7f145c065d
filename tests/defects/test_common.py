"""The per-defect neighbourhoods (:mod:`jellyroll.defects._common`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jellyroll.defects._common import distance_um, near_um


@settings(max_examples=200, deadline=None)
@given(
    ny=st.integers(1, 40),
    nx=st.integers(1, 40),
    pixel_um=st.floats(0.5, 30.0),
    x_px=st.floats(-20.0, 60.0),
    y_px=st.floats(-20.0, 60.0),
    reach_px=st.floats(0.0, 30.0),
)
def test_the_neighbourhood_is_the_whole_maps_distances_cut(
    ny: int, nx: int, pixel_um: float, x_px: float, y_px: float, reach_px: float
) -> None:
    """The window's distances are the whole map's, bit for bit, and no pixel centre within
    the reach lies outside it: masks made from it are the whole map's masks, cut
    (centres on and off the map, any reach)."""
    x_um, y_um = (x_px - (nx - 1) / 2) * pixel_um, (y_px - (ny - 1) / 2) * pixel_um
    reach_um = reach_px * pixel_um
    window, near = near_um((ny, nx), pixel_um, x_um, y_um, reach_um)
    whole = distance_um((ny, nx), pixel_um, x_um, y_um)
    np.testing.assert_array_equal(near, whole[window])
    outside = np.ones((ny, nx), bool)
    outside[window] = False
    assert not (outside & (whole <= reach_um)).any()


@pytest.mark.parametrize(
    ("x_um", "y_um", "reach_um"),
    [(np.nan, 0.0, 10.0), (0.0, np.nan, 10.0), (0.0, 0.0, np.nan), (0.0, 0.0, np.inf)],
)
def test_a_defect_without_centre_or_size_has_no_pixel_or_every_pixel(
    x_um: float, y_um: float, reach_um: float
) -> None:
    """As the whole map's distances do: NaN reaches nothing, an infinite reach everything."""
    window, near = near_um((6, 5), 2.0, x_um, y_um, reach_um)
    whole = distance_um((6, 5), 2.0, x_um, y_um)
    np.testing.assert_array_equal(near <= reach_um, (whole <= reach_um)[window])
    assert (whole <= reach_um).sum() == (near <= reach_um).sum()

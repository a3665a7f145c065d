"""The link's figures on tiny arrays (no twin): what a reader needs to read them is drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jellyroll.locate.dossier import BendViews, Dossier
from jellyroll.locate.link_figures import (
    bend_fraction_figure,
    dossier_figure,
    slice_in_volume_figure,
)


def _dossier() -> Dossier:
    """A case-B defect of 50.2 um on a bend: one scalar panel, one RGB panel, bend views."""
    arc, depth = np.arange(-50.0, 60.0, 10.0), np.arange(-30.0, 40.0, 10.0)
    ramp = np.add.outer(depth, arc)
    axis = np.arange(-40.0, 50.0, 10.0)
    cube = np.add.outer(axis, axis)
    bend = BendViews(cube, cube, cube, axis, axis, axis, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    defect = pd.Series(
        {"id": 3, "case": "B", "equivalent_diameter_um": 50.2, "bend3d_id": 1,
         "d_star_inside_nm": 11.2}
    )  # fmt: skip
    return Dossier(
        defect, 0.0, 0.0, arc, depth,
        panels={"saxs_intensity": ramp, "rgb": np.stack([ramp / ramp.max()] * 3, axis=-1)},
        profiles={"saxs_intensity": ramp[:, 5], "rgb": ramp[:, 5] / ramp.max()},
        profile_width_um=30.0, bend=bend,
    )  # fmt: skip


def test_the_dossier_has_colour_bars_units_and_z_up() -> None:
    """The dossier's scalar cutouts had no colour bar (each row has its own window: the
    rows read as one scale), its X-ray slices no axis labels, their vertical cuts z down
    (z up in the slice-in-volume cut and the NXCT views), and a 50.2 um case-B defect was
    titled "50 um" (the critical diameter, case A's), its d* inside "d* in nm" (read as
    the units). Read from the Figure, not pixels."""
    figure = dossier_figure(_dossier())
    images = [image for axis in figure.axes for image in axis.images]
    scalar = [image for image in images if image.get_array().ndim == 2]
    assert images[0].colorbar is not None  # the SAXS cutout
    assert images[1].get_array().ndim == 3 and images[1].colorbar is None  # RGB: no bar
    cuts = [axis for axis in figure.axes if axis.get_title().startswith("vertical cut")]
    assert len(cuts) == 2 and len(scalar) == 4  # one cutout and the bend's three slices
    for axis in cuts:
        bottom, top = axis.get_ylim()
        assert bottom < top and axis.get_ylabel() == "z (um)"
    assert all("(um" in axis.get_xlabel() for axis in cuts)
    assert "50.2 um" in figure.get_suptitle()
    info = "".join(text.get_text() for axis in figure.axes for text in axis.texts)
    assert "d* inside nm" in info


def test_an_empty_size_bin_draws_no_bar() -> None:
    """A size bin without agglomerates (share NaN) was drawn as a bar of 0, the same as a
    bin whose agglomerates are all off a bend; the measured threshold's legend rounded
    54.6 um to 55 beside the report's 54.6."""
    bins = pd.DataFrame(
        {"lower_um": [30.0, 40.0, 50.0, 60.0], "upper_um": [40.0, 50.0, 60.0, np.inf],
         "count": [3, 0, 2, 0], "on_bend": [0, 0, 1, 0],
         "fraction": [0.0, np.nan, 0.5, np.nan]}
    )  # fmt: skip
    axis = bend_fraction_figure(bins, 50.0, 54.6).axes[0]
    assert [bar.get_x() for bar in axis.patches] == [30.0, 50.0]
    assert "measured 54.6 um" in [text.get_text() for text in axis.get_legend().get_texts()]


def test_the_similarity_profile_shares_the_cut_s_height_axis() -> None:
    """The cut was drawn in heights above the slice, the similarity profile beside it in
    the X-ray frame: a slice found at z = -200 um (the profile's peak) was drawn 0.2 mm
    below the slice line (exit 0). The profile is now drawn above the slice's height on
    the cut's axis, its peak on the line; exact up to float rounding."""
    x_um, z_um = np.arange(-20.0, 30.0, 10.0), np.arange(-40.0, 50.0, 10.0)
    cut = np.zeros((z_um.size, x_um.size))
    heights = np.arange(-300.0, -90.0, 10.0)
    similarity = -np.abs(heights + 200.0)
    figure = slice_in_volume_figure(cut, x_um, z_um, heights, similarity, slice_height_um=-200.0)
    image_axis, profile_axis = figure.axes
    curve = profile_axis.lines[0]
    peak = curve.get_ydata()[np.argmax(curve.get_xdata())]
    assert peak == pytest.approx(0.0, abs=1e-12)  # on the slice line, not 0.2 mm below
    assert profile_axis.get_shared_y_axes().joined(image_axis, profile_axis)
    with pytest.raises(ValueError, match="slice_height_um"):
        slice_in_volume_figure(cut, x_um, z_um, heights, similarity)

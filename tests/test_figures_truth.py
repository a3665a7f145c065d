"""The figures show what their coordinates say: a bright pixel at a known position is read
back from the matplotlib Figure (image extent, origin and array), not from pixels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jellyroll import figures
from jellyroll.conventions import pixel_centres_um
from jellyroll.locate.link_figures import slice_in_volume_figure
from jellyroll.saxs import DStarResult


def _brightest(image) -> tuple[float, float]:
    """Data coordinates (x, y) of the centre of the brightest pixel of an ``AxesImage``."""
    values = np.asarray(image.get_array(), dtype=float)
    values = values.sum(axis=-1) if values.ndim == 3 else values
    iy, ix = np.unravel_index(np.nanargmax(values), values.shape)
    ny, nx = values.shape
    left, right, bottom, top = image.get_extent()
    y0, y1 = (top, bottom) if image.origin == "upper" else (bottom, top)
    return left + (ix + 0.5) * (right - left) / nx, y0 + (iy + 0.5) * (y1 - y0) / ny


def _spot_map(ny: int = 6, nx: int = 8, iy: int = 1, ix: int = 6) -> np.ndarray:
    spot = np.zeros((ny, nx))
    spot[iy, ix] = 1.0
    return spot


def test_maps_put_a_spot_at_its_map_coordinates_in_mm():
    # exact up to float rounding: the spot's pixel centre is a grid point
    p, spot = 10.0, _spot_map()
    x_um, y_um = pixel_centres_um(spot.shape[1], p), pixel_centres_um(spot.shape[0], p)
    truth = (x_um[6] / 1000, y_um[1] / 1000)
    maps = {name: spot for name in (*figures.GRAPHITE_COLOURS, *figures.NMC_COLOURS)}
    drawn = [
        figures.composites_figure(maps, x_um, y_um),
        figures.saxs_figure(spot, 10 + spot, x_um, y_um),
        figures.dstar_figure(10 + spot, x_um, y_um),
        figures.graphite_rgb_figure(maps, x_um, y_um),
    ]
    for figure in drawn:
        for axis in figure.axes:
            for image in axis.images:
                assert _brightest(image) == pytest.approx(truth, abs=1e-12)
                assert axis.get_xlabel() == "x (mm)" and axis.get_ylabel() == "y (mm)"


def test_unrolled_figure_extent_is_the_pixel_edges():
    # the extent was the first and last pixel centres: the first sample (arc 0, offset
    # -15 um) was drawn at 0.042 mm, -11.25 um; exact up to float rounding now
    arc_um, rows_um = np.arange(6) * 100.0, np.arange(4) * 10.0 - 15.0
    for iy, ix in ((0, 0), (3, 5), (2, 1)):
        spot = _spot_map(4, 6, iy, ix)
        figure = figures.unrolled_figure({"saxs_intensity": spot}, arc_um, rows_um)
        (image,) = figure.axes[0].images
        assert _brightest(image) == pytest.approx((arc_um[ix] / 1000, rows_um[iy]), abs=1e-9)
        assert figure.axes[0].get_ylabel() == figures.SPIRAL_OFFSET_LABEL


def test_bends_figure_puts_rows_at_their_heights_across_skipped_slices():
    # slices at z = 30, 40 um were not traced: the bend at z = 80 um was drawn at 72.2 um
    # (rows spread evenly); exact up to float rounding now, the skipped rows blank
    arc_um = np.arange(10) * 10.0
    z_um = np.array([0, 10, 20, 50, 60, 70, 80, 90, 100.0])
    displacement = np.zeros((z_um.size, arc_um.size))
    displacement[z_um == 80, 4] = 7.0
    figure = figures.bends_figure(displacement, arc_um, z_um)
    image = figure.axes[0].images[0]
    assert _brightest(image) == pytest.approx((0.040, 0.080), abs=1e-12)
    drawn = np.asarray(image.get_array(), dtype=float)
    assert drawn.shape == (11, 10) and np.isnan(drawn[3:5]).all()
    # untraced rows opaque grey: transparent showed the white background, the colour of 0
    assert image.cmap.get_bad()[-1] == 1.0 and image.cmap(np.nan) != image.cmap(image.norm(0.0))
    with pytest.raises(ValueError, match="regular grid"):
        figures.bends_figure(displacement, arc_um, z_um + np.r_[0, 0, 0, 3, 0, 0, 0, 0, 0])


def test_histograms_say_how_many_d_star_values_they_leave_out():
    # half the voxels at 24 nm, beyond the 6-20 nm histograms: they were dropped unsaid,
    # the comparison's density renormalised to the other half (area 1 instead of 0.5)
    d_star = np.full((10, 10), 24.0)
    d_star[:5] = 12.0
    agglomerates = pd.DataFrame(columns=["id", "x_um", "y_um", "equivalent_diameter_um", "case"])
    right = figures.histogram_figure(agglomerates, 50.0, d_star).axes[1]
    assert "50 of 100 outside 6-20 nm" in right.get_title()
    cell = {"label": "aged", "graphite": {}, "nmc": {}, "cases": {}, "d_star": d_star}
    axis = figures.comparison_figure([cell]).axes[3]
    (outline,) = axis.patches  # all 50 drawn values in one bin
    width = np.ptp(figures.DSTAR_RANGE_NM) / 60
    assert outline.get_xy()[:, 1].max() * width == pytest.approx(0.5, rel=1e-9)
    assert "50 of 100 outside" in axis.get_legend().get_texts()[0].get_text()


def _d_star_image(d_star: np.ndarray):
    x_um = pixel_centres_um(d_star.shape[0], 10.0)
    figure = figures.saxs_figure(np.ones(d_star.shape), d_star, x_um, x_um)
    return next(a for a in figure.axes if a.get_title().startswith("d*")).images[0]


def test_saxs_figure_d_star_window_holds_the_values():
    # d* of 24 nm was drawn in the fixed 8-16 nm window, i.e. as 16 nm, with a plain bar
    d_star = np.full((10, 10), 24.0)
    d_star[:5] = 12.0
    low, high = _d_star_image(d_star).get_clim()
    assert low <= 8.0 and high >= 24.0
    # a defect's few voxels beyond the window: the bar's arrow says they are clipped
    d_star = np.full((40, 40), 12.0)
    d_star[20:22, 20:22] = 24.0
    image = _d_star_image(d_star)
    assert image.get_clim() == (8.0, 16.0) and image.colorbar.extend == "max"
    assert _d_star_image(np.full((4, 4), 12.0)).colorbar.extend == "neither"


def test_slice_in_volume_places_the_cut_at_its_heights():
    # exact up to float rounding: rows outside the volume (NaN) are cropped, not shifted
    x_um, z_um = pixel_centres_um(8, 10.0), pixel_centres_um(9, 10.0)
    cut = np.full((9, 8), np.nan)
    cut[2:8] = 0.0
    cut[6, 1] = 1.0
    image = slice_in_volume_figure(cut, x_um, z_um).axes[0].images[0]
    assert _brightest(image) == pytest.approx((x_um[1] / 1000, z_um[6] / 1000), abs=1e-12)


def test_unresolved_legend_names_agglomerates_cut_by_the_map():
    # a 40 um agglomerate cut by the map's edge (4 px of 10 um, below the 50 um critical
    # diameter) is unresolved: the legends called every grey one "< 3 px"
    table = pd.DataFrame(
        [{"id": 1, "x_um": -45.0, "y_um": 0.0, "equivalent_diameter_um": 40.0,
          "semi_major_um": 20.0, "semi_minor_um": 20.0, "orientation_deg": 0.0,
          "case": figures.UNRESOLVED}]
    )  # fmt: skip
    x_um = pixel_centres_um(10, 10.0)
    saxs = np.ones((10, 10))
    legends = [
        figures.saxs_figure(saxs, saxs, x_um, x_um, table).axes[0].get_legend(),
        figures.histogram_figure(table, 50.0, saxs, saxs, 10.0).axes[0].get_legend(),
    ]
    for legend in legends:
        texts = [t.get_text() for t in legend.get_texts()]
        assert "unresolved (< 3 px or cut by the map)" in texts, texts


def _bar_heights(axis) -> np.ndarray:
    return np.array([patch.get_height() for patch in axis.patches], dtype=float)


def test_bars_without_a_value_say_so_instead_of_standing_empty():
    """A defect without graphite signal inside (lithiation NaN) and a cell without graphite
    shares (no graphite signal) or NMC maps drew empty slots, read as 0 of every phase,
    exit 0; they are now marked "no value" at their bar, the others drawn as before."""
    phases = ("lic6", "lic12", "graphite_poor")
    rows = [
        {"id": 1, "case": "A", **{f"{p}_{w}": 1 / 3 for p in phases for w in ("inside", "ring")}},
        {"id": 2, "case": "B", **{f"{p}_inside": np.nan for p in phases},
         **{f"{p}_ring": 1 / 3 for p in phases}},
    ]  # fmt: skip
    axis = figures.lithiation_figure(pd.DataFrame(rows)).axes[0]
    marks = [t for t in axis.texts if t.get_text() == figures.NO_VALUE]
    assert [t.get_position()[0] for t in marks] == pytest.approx([1 - 0.2])  # id 2, inside
    heights = _bar_heights(axis)
    assert np.nansum(heights) == pytest.approx(3.0)  # 3 bars of 1, the NaN one drawn as none
    cells = [
        {"label": "fresh", "graphite": {"lic6": 0.7, "lic12": 0.2, "graphite_poor": 0.1},
         "nmc": {"nmc_lithiated": 0.4, "nmc_delithiated": 0.6}, "cases": {"A": 2},
         "d_star": np.full(4, 12.0)},
        {"label": "dark", "graphite": dict.fromkeys(phases, np.nan), "nmc": {},
         "cases": {"A": 1}, "d_star": np.full(4, 12.0)},
    ]  # fmt: skip
    figure = figures.comparison_figure(cells)
    for axis in figure.axes[:2]:
        marks = [t for t in axis.texts if t.get_text() == figures.NO_VALUE]
        assert [t.get_position()[0] for t in marks] == [1]
        assert np.sum(_bar_heights(axis)) == pytest.approx(1.0)
    assert not [t for t in figure.axes[2].texts if t.get_text() == figures.NO_VALUE]
    # a cell without any d* value (a SAXS run clipped at 0): named in the d* panel's legend
    # as without a value; it was left out of that panel without a word
    cells[1]["d_star"] = np.full(4, np.nan)
    legend = figures.comparison_figure(cells).axes[3].get_legend().get_texts()
    assert [t.get_text() for t in legend] == ["fresh", f"dark: {figures.NO_VALUE}"]


def test_vertical_views_draw_height_upwards_at_its_coordinates():
    """The NXCT vertical cuts and the collector displacement drew the lowest slice at the
    top (z growing downwards): the cell stood upside down beside the slice-in-volume view
    (z up), its bends near the bottom drawn near the top. Height now grows upwards; the
    voxel lands at its centred-frame coordinates, exact up to float rounding."""
    nz, ny, nx, voxel = 6, 5, 4, 10.0
    volume = np.zeros((nz, ny, nx))
    volume[1, 2, 3] = 1.0  # near the bottom (z index 1), in the vertical cut (x)
    volume[3, 1, 0] = 1.0  # in the axial slice, off the vertical cuts
    z_um, y_um, x_um = (pixel_centres_um(n, voxel) for n in (nz, ny, nx))
    cuts = volume[nz // 2], volume[:, ny // 2], volume[:, :, nx // 2]
    axes = figures.orthogonal_views_figure(*cuts, voxel).axes
    assert _brightest(axes[0].images[0]) == pytest.approx((x_um[0] / 1e3, y_um[1] / 1e3))
    assert _brightest(axes[1].images[0]) == pytest.approx((x_um[3] / 1e3, z_um[1] / 1e3))
    for axis in axes[1:]:
        low, high = axis.get_ylim()
        assert low < high and axis.get_ylabel() == "z (mm)"
    low, high = axes[0].get_ylim()
    assert low > high  # the axial slice as the maps: y down
    z_um = np.arange(5) * 10.0
    displacement = np.zeros((5, 8))
    displacement[1, 2] = 9.0
    axis = figures.bends_figure(displacement, np.arange(8) * 10.0, z_um).axes[0]
    assert _brightest(axis.images[0]) == pytest.approx((0.020, 0.010), abs=1e-12)
    low, high = axis.get_ylim()
    assert low < high


def test_cells_side_by_side_share_their_colour_limits():
    """Each cell's maps had their own colour windows: a fresh cell's d* of 11-12.6 nm and an
    aged cell's 11.5-15.5 nm were drawn in the same colours beside each other (exit 0).
    The limits pooled over the cells (:func:`figures.colour_limits`) are now drawn by both
    cells' maps and unrolled maps; exact: percentiles of known values."""
    fresh = {"saxs_intensity": np.full((4, 5), 1.0), "d_star_nm": np.full((4, 5), 12.0)}
    aged = {"saxs_intensity": np.full((4, 5), 3.0), "d_star_nm": np.full((4, 5), 20.0)}
    aged["d_star_nm"][0, 0] = 0.0  # an unrolled map's "no value": not a d* of 0
    limits = figures.colour_limits([fresh, aged])
    assert limits["saxs_intensity"] == (0.0, pytest.approx(3.0))
    assert limits["d_star_nm"] == (8.0, pytest.approx(20.0))  # the study's window, widened
    x_um, rows_um = pixel_centres_um(5, 10.0), pixel_centres_um(4, 10.0)
    for cell in (fresh, aged):
        saxs = figures.saxs_figure(
            cell["saxs_intensity"], cell["d_star_nm"], x_um, rows_um, limits=limits
        )
        unrolled = figures.unrolled_figure(cell, x_um, rows_um, limits=limits)
        drawn = [image.get_clim() for f in (saxs, unrolled) for a in f.axes for image in a.images]
        assert drawn == [limits["saxs_intensity"], limits["d_star_nm"]] * 2


def test_unrolled_colour_bars_sit_beside_their_rows_and_say_the_offset_sign():
    """The composites' legend column stood between the scalar rows and their colour bars
    (far to the right), and the row axis said "offset (µm)" without its sign (positive
    outwards, :mod:`jellyroll.unroll.spiral`). The composites name their colours in the
    title now; a bar's gap to its row is under 3 % of the figure's width."""
    ones = np.ones((4, 6))
    maps = {name: ones for name in (*figures.GRAPHITE_COLOURS, "saxs_intensity")}
    figure = figures.unrolled_figure(maps, np.arange(6) * 100.0, np.arange(4) * 10.0 - 15.0)
    graphite, saxs = figure.axes[:2]
    assert graphite.get_legend() is None and graphite.get_title(loc="left").startswith(
        figures.GRAPHITE_TITLE
    )
    figure.draw_without_rendering()
    bar = saxs.images[0].colorbar.ax
    gap = bar.get_position().x0 - saxs.get_position().x1
    assert 0 <= gap < 0.03
    assert "+ outwards" in saxs.get_ylabel()


def test_histogram_counts_map_pixels_keeps_its_legend_clear_and_its_diameters_sides():
    """The d* histogram counted "voxels" of a 2D map; the size legend beside the axes left
    an empty band before the d* panel; a 50.2 um case-B agglomerate's inset read "50 µm",
    the critical diameter (case A's side). Now "map pixels", the legend above the axes
    (no wider than they), the diameter as the report's table writes it."""
    table = pd.DataFrame(
        [{"id": 8, "x_um": 0.0, "y_um": 0.0, "equivalent_diameter_um": 50.2,
          "semi_major_um": 25.0, "semi_minor_um": 25.0, "orientation_deg": 0.0, "case": "B"}]
    )  # fmt: skip
    saxs = np.ones((12, 12))
    figure = figures.histogram_figure(table, 50.0, saxs, saxs, 10.0, n_insets=1)
    left, right = figure.axes[:2]
    assert right.get_ylabel() == "map pixels"
    assert [a.get_title() for a in left.child_axes] == ["#8: 50.2 µm"]
    figure.draw_without_rendering()
    legend, box = left.get_legend().get_window_extent(), left.get_window_extent()
    assert legend.x1 <= box.x1 + 1 and legend.y0 >= box.y1 - 1  # above the axes, not beside
    assert figures.dstar_figure(saxs, np.arange(12.0), np.arange(12.0)).axes[1].get_ylabel() == (
        "map pixels"
    )


def test_comparison_legends_stay_inside_their_axes_and_off_the_data():
    """The agglomerates legend ran past its axes and covered a y tick, and the d* legend
    sat over the curves (fixed headroom of 1.45 times the tallest bar). Every legend now
    lies inside its axes and above every bar, curve and annotation (1 pixel of slack)."""
    cells = [
        {"label": label, "graphite": {"lic6": 0.8, "lic12": 0.2, "graphite_poor": 0.0},
         "nmc": {"nmc_lithiated": 0.5, "nmc_delithiated": 0.5},
         "cases": {"A": 9, "B": 3, figures.UNRESOLVED: 1}, "defect_share": 0.014,
         "d_star": np.r_[np.full(50, centre), 30.0]}
        for label, centre in (("fresh, charged", 12.1), ("aged, charged", 14.1))
    ]  # fmt: skip
    figure = figures.comparison_figure(cells)
    figure.draw_without_rendering()
    for axis in figure.axes:
        legend, box = axis.get_legend().get_window_extent(), axis.get_window_extent()
        assert box.x0 - 1 <= legend.x0 and legend.x1 <= box.x1 + 1 and legend.y1 <= box.y1 + 1
        drawn = [*axis.patches, *(t for t in axis.texts if hasattr(t, "xy"))]
        assert max(artist.get_window_extent().y1 for artist in drawn) <= legend.y0 + 1


def test_saxs_profiles_show_the_departure_over_the_fit():
    """On log axes over six decades the dashed fit lay on the data: the 3 % departure that
    sets q* could not be seen. A panel below draws intensity / fit, q* marked at its
    departure, the tolerance band when given; exact: a profile 5 % above its law at q*."""
    q = np.geomspace(0.01, 0.3, 40)
    law = 2.0 * q**-4.0
    profile = law * np.where(q < 0.05, 1.05, 1.0)
    q_star = float(q[q < 0.05][-1])
    fit = DStarResult(2 * np.pi / q_star / 10, q_star, 4.0, 2.0, (0.1, 0.25), None)
    frame = pd.DataFrame({"q_A": q, "regular": profile})
    figure = figures.saxs_profiles_figure(frame, {"regular": fit}, tolerance=0.03)
    ratio_axis = figure.axes[1]
    assert ratio_axis.get_ylabel() == "intensity / fit"
    marker = next(line for line in ratio_axis.lines if line.get_marker() == "o")
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == pytest.approx((q_star, 1.05))
    (band,) = ratio_axis.patches
    assert band.get_extents().height > 0 and "3 %" in ratio_axis.get_legend().texts[0].get_text()

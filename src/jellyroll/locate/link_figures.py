"""Figures of the 2D-3D link: each defect's dossier (the study's Fig. 3), the fraction of
agglomerates on a bent collector per size bin, and the slice drawn in a vertical cut of the
X-ray volume (the study's Fig. 1e). Matplotlib ``Figure`` objects, no pyplot state; save
with :func:`jellyroll.io.images.save_png`."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from jellyroll.conventions import pixel_extent
from jellyroll.figures import CASE_COLOURS, colorbar
from jellyroll.locate.dossier import Dossier


def _grey_window(image: np.ndarray) -> tuple[float, float] | tuple[None, None]:
    finite = image[np.isfinite(image)]
    if not finite.size:
        return None, None
    return float(np.percentile(finite, 1)), float(np.percentile(finite, 99.5))


def dossier_figure(dossier: Dossier, titles: dict[str, str] | None = None) -> Figure:
    """One row per modality: the unrolled cutout around the defect (arc along the layer,
    depth across it, the defect marked; a colour bar beside each scalar one) and its profile
    across the layer beside it; a last row with the three orthogonal X-ray slices (um, z up
    as in the vertical cut of :func:`slice_in_volume_figure`) through the 3D bend when there
    is one."""
    titles = titles or {}
    names = list(dossier.panels)
    rows = len(names) + (dossier.bend is not None)
    # a fixed grid: the constrained layout takes a second or more on this many axes
    figure = Figure(figsize=(11, 2.3 * rows))
    grid = figure.add_gridspec(
        rows, 3, width_ratios=[3, 1, 1.2], left=0.08, right=0.98, bottom=0.5 / rows,
        top=1 - 0.45 / rows, hspace=0.55, wspace=0.3,
    )  # fmt: skip
    defect = dossier.defect
    extent = pixel_extent(dossier.arc_axis_um - dossier.arc_um, dossier.depth_axis_um)
    colour = CASE_COLOURS.get(str(defect.get("case", "")), "yellow")
    for row, name in enumerate(names):
        panel = dossier.panels[name]
        image_axis = figure.add_subplot(grid[row, 0])
        if panel.ndim == 3:
            image_axis.imshow(np.clip(np.nan_to_num(panel), 0, 1), extent=extent, aspect="auto")
        else:
            low, high = _grey_window(panel)
            image = image_axis.imshow(
                panel, extent=extent, aspect="auto", cmap="viridis", vmin=low, vmax=high
            )
            # without one the rows' own colour windows read as one scale
            bar = colorbar(figure, image, cax=image_axis.inset_axes([1.01, 0, 0.015, 1]))
            bar.ax.tick_params(labelsize="x-small")
        image_axis.plot([0], [dossier.depth_um], "+", color=colour, markersize=12, mew=2)
        half = dossier.profile_width_um / 2
        for edge in (-half, half):
            image_axis.axvline(edge, color="white", lw=0.6, ls=":")
        image_axis.set_ylabel("depth (um)")
        image_axis.set_title(titles.get(name, name), fontsize="small", loc="left")
        if row == len(names) - 1:
            image_axis.set_xlabel("arc from the defect along the Cu collector (um)")
        profile_axis = figure.add_subplot(grid[row, 1])
        profile_axis.plot(dossier.profiles[name], dossier.depth_axis_um, color="k", lw=1)
        profile_axis.axhline(dossier.depth_um, color=colour, lw=0.8)
        profile_axis.set_ylim(extent[2], extent[3])  # the cutout's depth range, same way up
        what = "mean" if panel.ndim == 2 else "luminance"
        profile_axis.set_xlabel(f"{what} between the dotted lines", fontsize="small")
        # the depth reads on the cutout beside it; its labels would cover the colour bar's
        profile_axis.tick_params(labelsize="small", labelleft=False)
        profile_axis.xaxis.set_major_locator(MaxNLocator(3))  # "0.0001" labels ran together
    info = figure.add_subplot(grid[: len(names), 2])
    info.axis("off")
    info.text(0, 1, _defect_text(defect), va="top", family="monospace", fontsize="small")
    if dossier.bend is not None:
        bend = dossier.bend
        cz, cy, cx = bend.centre_zyx_um
        for column, (image, columns, rows_um, name, (mark_c, mark_r), labels) in enumerate(
            (
                (bend.axial, bend.x_um, bend.y_um, "X-ray axial slice", (cx, cy), "xy"),
                (bend.along_x, bend.x_um, bend.z_um, "vertical cut along x", (cx, cz), "xz"),
                (bend.along_y, bend.y_um, bend.z_um, "vertical cut along y", (cy, cz), "yz"),
            )
        ):
            axis = figure.add_subplot(grid[rows - 1, column])
            low, high = _grey_window(image)
            axis.imshow(
                image, extent=pixel_extent(columns, rows_um), cmap="gray", vmin=low, vmax=high
            )
            axis.plot([mark_c], [mark_r], "+", color=colour, markersize=10, mew=1.5)
            if labels[1] == "z":  # z up, as in every other vertical cut of the report
                axis.set_ylim(sorted(axis.get_ylim()))
            axis.set_xlabel(f"{labels[0]} (um, X-ray frame)", fontsize="small")
            axis.set_ylabel(f"{labels[1]} (um)", fontsize="small")
            axis.set_title(name, fontsize="small")
            axis.tick_params(labelsize="small")
    figure.suptitle(
        f"defect {int(defect['id'])}: case {defect.get('case', '?')}, "
        f"{float(defect['equivalent_diameter_um']):.1f} um"  # as its table: 50.2, not 50
    )
    return figure


def _defect_text(defect: pd.Series) -> str:
    lines = [f"{'id':<14}{int(defect['id'])}", f"{'case':<14}{defect.get('case', '?')}"]
    for column, label in (
        ("equivalent_diameter_um", "diameter um"),
        ("x_um", "x um"),
        ("y_um", "y um"),
        ("bend3d_id", "3D bend"),
        ("bend3d_distance_um", "to bend um"),
        ("bend3d_amplitude_um", "amplitude um"),
        ("bend3d_extent_axial_um", "axial um"),
        ("bend3d_extent_arc_um", "arc um"),
        ("d_star_inside_nm", "d* inside nm"),
        ("d_star_ring_nm", "d* ring nm"),
    ):
        if column in defect and pd.notna(defect[column]):
            value = defect[column]
            text = f"{int(value)}" if column == "bend3d_id" else f"{float(value):.1f}"
            lines.append(f"{label:<14}{text}")
    return "\n".join(lines)


def bend_fraction_figure(
    fractions: pd.DataFrame, critical_diameter_um: float, measured_um: float
) -> Figure:
    """Share of agglomerates on a bent collector per size bin (bars, counts written on
    them; a bin without agglomerates has no bar, not one of 0), the assumed critical
    diameter and the measured threshold."""
    figure = Figure(figsize=(8, 3.6), layout="constrained")
    axis = figure.subplots()
    upper = fractions["upper_um"].to_numpy(float)
    lower = fractions["lower_um"].to_numpy(float)
    finite_top = np.where(
        np.isfinite(upper), upper, lower + (lower[1] - lower[0] if len(lower) > 1 else 10)
    )
    widths = finite_top - lower
    counted = fractions["count"].to_numpy() > 0
    axis.bar(lower[counted], fractions["fraction"].to_numpy(float)[counted],
             width=widths[counted], align="edge", color="tab:purple", edgecolor="k")  # fmt: skip
    for left, width, count, on in zip(
        lower, widths, fractions["count"], fractions["on_bend"], strict=True
    ):
        if count:
            axis.text(left + width / 2, 1.02, f"{on}/{count}", ha="center", fontsize="small")
    axis.axvline(
        critical_diameter_um, color="k", ls="--", label=f"assumed {critical_diameter_um:g} um"
    )
    if np.isfinite(measured_um):
        axis.axvline(measured_um, color="tab:red", label=f"measured {measured_um:.1f} um")
    axis.set_ylim(0, 1.15)
    axis.set_xlabel("equivalent diameter (um)")
    axis.set_ylabel("fraction on a bent collector")
    axis.legend(fontsize="small", loc="center right")
    return figure


def slice_in_volume_figure(
    cut: np.ndarray,
    x_um: np.ndarray,
    z_um: np.ndarray,
    heights_um: np.ndarray | None = None,
    similarity: np.ndarray | None = None,
    slice_height_um: float | None = None,
) -> Figure:
    """A vertical cut of the X-ray volume through the map centre, in the map's (z, x)
    frame, with the SWAXS slice drawn as the line z = 0 (the study's Fig. 1e); beside it,
    on the same height axis, the similarity against the height of the map's centre
    (``heights_um``, X-ray frame) when the location recorded it, drawn above the slice's
    own height ``slice_height_um`` (X-ray frame, ``map_to_xct[0, 3]``; required with a
    profile: drawn in the X-ray frame beside the cut's heights above the slice, the
    profile's peak sat 0.2 mm off the slice line it found). Raises ``ValueError`` on a
    profile without ``slice_height_um``."""
    with_profile = heights_um is not None and similarity is not None and len(heights_um)
    if with_profile and slice_height_um is None:
        raise ValueError(
            "a similarity profile needs the slice's height in the X-ray frame "
            "(slice_height_um, map_to_xct[0, 3]) to be drawn against the cut's heights"
        )
    figure = Figure(figsize=(11 if with_profile else 8, 4), layout="constrained")
    axes = figure.subplots(1, 2 if with_profile else 1, squeeze=False, sharey=True,
                           width_ratios=[3, 1] if with_profile else [1])[0]  # fmt: skip
    measured = np.flatnonzero(np.isfinite(cut).any(axis=1))  # rows inside the volume
    if measured.size > 1:
        cut, z_um = cut[measured[0] : measured[-1] + 1], z_um[measured[0] : measured[-1] + 1]
    low, high = _grey_window(cut)
    half_x, half_z = (x_um[1] - x_um[0]) / 2000, (z_um[1] - z_um[0]) / 2000
    extent = [x_um[0] / 1000 - half_x, x_um[-1] / 1000 + half_x,
              z_um[0] / 1000 - half_z, z_um[-1] / 1000 + half_z]  # fmt: skip
    axes[0].imshow(cut, extent=extent, origin="lower", cmap="gray", vmin=low, vmax=high,
                   aspect="auto")  # fmt: skip
    axes[0].axhline(0.0, color="tab:orange", lw=1.5, label="SWAXS-CT slice")
    axes[0].set_xlabel("x along the map (mm)")
    axes[0].set_ylabel("z above the map plane (mm)")
    axes[0].legend(fontsize="small", loc="upper right")
    if with_profile:
        above = (np.asarray(heights_um, dtype=float) - slice_height_um) / 1000
        axes[1].plot(similarity, above, color="k")
        axes[1].axhline(0.0, color="tab:orange", lw=1.5)
        axes[1].set_xlabel("similarity")
        axes[1].set_title(
            f"slice at z = {slice_height_um / 1000:.3f} mm\nin the X-ray frame", fontsize="small"
        )
    return figure

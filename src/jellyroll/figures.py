"""Every figure jellyroll draws (matplotlib ``Figure`` objects, no pyplot state), one function
per figure, from results in physical units; stages save them with
:func:`jellyroll.io.images.save_png`, the report
embeds them. Colours follow the study: LiC6 green, LiC12 blue, poorly lithiated red; NMC
lithiated green, delithiated red; case A agglomerates cyan, case B red."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Ellipse, Patch
from matplotlib.ticker import MaxNLocator
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from numpy.typing import ArrayLike

from jellyroll.conventions import interp_in_any_order, map_extent_mm, pixel_extent
from jellyroll.defects.agglomerates import RESOLVED_PIXELS, UNRESOLVED
from jellyroll.phases import graphite_composite, nmc_composite
from jellyroll.saxs import DStarResult, dstar_histogram

GRAPHITE_TITLE = "graphite: LiC6 green, LiC12 blue, poorly lithiated red"
NMC_TITLE = "NMC622: lithiated green, delithiated red"
GRAPHITE_COLOURS = {"lic6": "green", "lic12": "blue", "graphite_poor": "red"}
"""Colour of each graphite phase (the study's composite)."""
GRAPHITE_NAMES = {"lic6": "LiC6", "lic12": "LiC12", "graphite_poor": "poorly lithiated"}
NMC_COLOURS = {"nmc_lithiated": "green", "nmc_delithiated": "red"}
NMC_NAMES = {"nmc_lithiated": "NMC lithiated", "nmc_delithiated": "NMC delithiated"}
CASE_COLOURS = {"A": "cyan", "B": "red", UNRESOLVED: "0.7"}
"""Colour of each agglomerate class: case A cyan, case B red, unresolved (under
:data:`~jellyroll.defects.agglomerates.RESOLVED_PIXELS`, or cut by the map and measured up
to the critical diameter) grey."""
CASE_NAMES = {
    "A": "case A",
    "B": "case B",
    UNRESOLVED: f"unresolved (< {RESOLVED_PIXELS:g} px or cut by the map)",
}
"""Legend of each agglomerate class (an unresolved one is not always under the pixels)."""
REGION_COLOURS = {"regular": "0.25", "agglomerate": "tab:orange", "bent": "tab:purple"}
"""Colour of each anode region of the SAXS profiles."""
MAP_PIXELS = "map pixels"
"""What a d* histogram counts: the pixels of a 2D map (not voxels)."""
ROBUST_PERCENTILE = 95.0
"""Colour window (percentile of the positive values) of composites that may hold the
streaks of single-crystal diffraction spots: a few very bright pixels do not dim the rest."""
_SCALE_STEPS_UM = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
DSTAR_RANGE_NM = (6.0, 20.0)
"""d* (nm) the histograms span; values outside are counted in the title, not dropped unsaid."""
DSTAR_WINDOW_NM = (8.0, 16.0)
"""Colour window (nm) of every d* map, widened to the 1-99 % of the d* values where they
reach beyond (a window that clipped them drew 24 nm as 16)."""
COLOUR_WINDOWS = {
    "saxs_intensity": (0.0, 99.8),
    "d_star_nm": (1.0, 99.0),
    "attenuation": (1.0, 99.5),
}
"""Colour window of each scalar map: percentiles (low, high) of its values with a value
(finite, not 0: an unrolled map's 0 lies outside the cell), a low of 0 meaning from 0;
d*'s widened to :data:`DSTAR_WINDOW_NM`."""


def colour_limits(cells: Iterable[Mapping[str, ArrayLike]]) -> dict[str, tuple[float, float]]:
    """(vmin, vmax) of each quantity of :data:`COLOUR_WINDOWS` over the maps of all the
    ``cells`` pooled (per cell: map name -> array; a cell may lack a quantity): cells drawn
    one beside the other share one colour scale (each with its own, a fresh cell's
    d* of 11-12.6 nm and an aged cell's 11.5-15.5 nm showed in the same colours)."""
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in COLOUR_WINDOWS}
    for cell in cells:
        for name, values in pooled.items():
            if name in cell:
                array = np.asarray(cell[name], dtype=float).ravel()
                values.append(array[np.isfinite(array) & (array != 0)])
    limits = {}
    for name, (low, high) in COLOUR_WINDOWS.items():
        values = np.concatenate(pooled[name]) if pooled[name] else np.empty(0)
        if not values.size:
            limits[name] = DSTAR_WINDOW_NM if name == "d_star_nm" else (0.0, 1.0)
            continue
        vmin, vmax = (float(v) for v in np.percentile(values, [low, high]))
        if name == "d_star_nm":
            vmin, vmax = min(DSTAR_WINDOW_NM[0], vmin), max(DSTAR_WINDOW_NM[1], vmax)
        limits[name] = (0.0 if low == 0 else vmin, vmax)
    return limits


def number_text(value: float, float_format: str) -> str:
    """``value`` in ``float_format``, but every integer digit where that would write it in
    powers of ten: an x_um of 4567.8 or an arc of 2254 um read "4.57e+03", "2.25e+03"."""
    text = float_format.format(value)
    return f"{value:.0f}" if "e" in text and 1 <= abs(value) < 1e9 else text


def beside_threshold(threshold: float, float_format: str) -> Callable[[float], str]:
    """A formatter that writes a value in ``float_format`` (as a table does), with more
    decimals where those digits would show it on the other side of ``threshold`` (sides:
    up to it, above it): a 50.04 um case-B diameter read "50" beside a critical diameter
    of 50, which is case A's."""

    def text(value: float) -> str:
        shown = number_text(value, float_format)
        for decimals in range(1, 7):
            if (float(shown) > threshold) == (value > threshold):
                return shown
            shown = f"{value:.{decimals}f}"
        return shown if (float(shown) > threshold) == (value > threshold) else repr(value)

    return text


def scale_bar(axis, width_um: float, per_um: float = 1e-3, colour: str = "white") -> None:
    """A scale bar of about a fifth of ``width_um`` (um) in the lower right; ``per_um``:
    data units per um (mm axes: 1e-3)."""
    length = max([s for s in _SCALE_STEPS_UM if s <= width_um / 5] or [_SCALE_STEPS_UM[0]])
    label = f"{length / 1000:g} mm" if length >= 1000 else f"{length:g} µm"
    bar = AnchoredSizeBar(
        axis.transData, length * per_um, label, "lower right", pad=0.4, color=colour,
        frameon=False, size_vertical=0, label_top=True,
    )  # fmt: skip
    axis.add_artist(bar)


def colorbar(figure: Figure, image, **kwargs):
    """The colour bar of ``image`` with an arrow at each end of its window that values pass:
    without one a clipped value (a defect's d* of 24 nm in an 8-16 nm window) reads as the
    window's end."""
    values = np.asarray(np.ma.filled(image.get_array(), np.nan), dtype=float)
    values = values[np.isfinite(values)]
    low, high = image.get_clim()
    below, above = bool((values < low).any()), bool((values > high).any())
    extend = {(False, False): "neither", (True, False): "min", (False, True): "max"}
    return figure.colorbar(image, extend=extend.get((below, above), "both"), **kwargs)


def _colour_legend(axis, colours: dict[str, str], names: dict[str, str], **kwargs) -> None:
    """A legend of colour patches (the channels of an RGB composite, the cases...)."""
    handles = [Patch(color=colours[key], label=names.get(key, key)) for key in colours]
    axis.legend(handles=handles, fontsize="small", framealpha=0.8, **kwargs)


def _axes(figure: Figure, n: int) -> list:
    axes = figure.subplots(1, n, squeeze=False)[0]
    for axis in axes:
        axis.set_xlabel("x (mm)")
        axis.set_ylabel("y (mm)")
    return list(axes)


def composites_figure(maps: dict[str, np.ndarray], x_um: np.ndarray, y_um: np.ndarray) -> Figure:
    """Graphite (LiC6 green, LiC12 blue, poor red) and NMC (lithiated green, delithiated red)."""
    figure = Figure(figsize=(11, 5), layout="constrained")
    left, right = _axes(figure, 2)
    extent = map_extent_mm(x_um, y_um)
    graphite = graphite_composite(
        maps["lic6"], maps["lic12"], maps["graphite_poor"], percentile=ROBUST_PERCENTILE
    )
    left.imshow(graphite, extent=extent)
    left.set_title("graphite phases")
    _colour_legend(left, GRAPHITE_COLOURS, GRAPHITE_NAMES, loc="upper left")
    nmc = nmc_composite(
        maps["nmc_lithiated"], maps["nmc_delithiated"], percentile=ROBUST_PERCENTILE
    )
    right.imshow(nmc, extent=extent)
    right.set_title("NMC622")
    _colour_legend(right, NMC_COLOURS, NMC_NAMES, loc="upper left")
    for axis in (left, right):
        scale_bar(axis, float(np.ptp(x_um)))
    return figure


def saxs_figure(
    saxs: np.ndarray,
    d_star: np.ndarray,
    x_um: np.ndarray,
    y_um: np.ndarray,
    agglomerates: pd.DataFrame | None = None,
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> Figure:
    """SAXS intensity with the agglomerates circled (case B in red), and the d* map;
    ``limits``: their colour limits (:func:`colour_limits`, shared by the cells of a
    report), else the maps' own."""
    limits = limits or colour_limits([{"saxs_intensity": saxs, "d_star_nm": d_star}])
    figure = Figure(figsize=(12, 5), layout="constrained")
    left, right = _axes(figure, 2)
    extent = map_extent_mm(x_um, y_um)
    low, high = limits["saxs_intensity"]
    image = left.imshow(saxs, extent=extent, cmap="magma", vmin=low, vmax=high)
    colorbar(figure, image, ax=left, shrink=0.8, label="arb. units")
    left.set_title("SAXS intensity, q = 0.025-0.1 1/A, agglomerates circled")
    if agglomerates is not None:
        for row in agglomerates.itertuples():
            colour = CASE_COLOURS.get(row.case, "white")
            radius_mm = max(row.equivalent_diameter_um / 2000, 0.02) * 1.6
            left.add_patch(
                Circle(
                    (row.x_um / 1000, row.y_um / 1000), radius_mm, fill=False, color=colour, lw=1
                )
            )
    if agglomerates is not None and len(agglomerates):
        _colour_legend(left, CASE_COLOURS, CASE_NAMES, loc="upper left")
    low, high = limits["d_star_nm"]
    image = right.imshow(d_star, extent=extent, cmap="viridis", vmin=low, vmax=high)
    colorbar(figure, image, ax=right, shrink=0.8, label="nm")
    right.set_title("d* (departure from the power law)")
    scale_bar(left, float(np.ptp(x_um)))
    scale_bar(right, float(np.ptp(x_um)), colour="black")  # d*: blank (white) outside
    return figure


def histogram_figure(
    agglomerates: pd.DataFrame,
    critical_diameter_um: float,
    d_star: np.ndarray,
    saxs: np.ndarray | None = None,
    pixel_size_um: float = 1.0,
    n_insets: int = 4,
) -> Figure:
    """Agglomerate size histogram per case with the critical diameter, insets of the
    ``n_insets`` largest agglomerates in the SAXS map ``saxs`` (study Fig. 6), and the d*
    histogram. Inset: the map around the agglomerate, its fitted ellipse outlined."""
    figure = Figure(figsize=(12, 4.6), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[1.6, 1])
    diameters = agglomerates["equivalent_diameter_um"].to_numpy(float) if len(agglomerates) else []
    top = max(float(np.max(diameters, initial=0.0)), critical_diameter_um) * 1.15
    bins = np.linspace(0, top, 25)
    cases = agglomerates["case"].to_numpy() if len(agglomerates) else np.array([])
    stacks = [
        (np.asarray(diameters)[cases == case], colour) for case, colour in CASE_COLOURS.items()
    ]
    left.hist(
        [d for d, _ in stacks], bins=bins, stacked=True, color=[c for _, c in stacks],
        edgecolor="0.3", linewidth=0.5,
    )  # fmt: skip
    left.axvline(critical_diameter_um, color="red", ls="--")
    left.set_xlabel("equivalent diameter (µm)")
    left.set_ylabel("agglomerates")
    handles = [Patch(color=c, label=CASE_NAMES[k]) for k, c in CASE_COLOURS.items()]
    # above the axes: beside them, the layout left an empty band before the d* panel
    left.legend(
        handles=[*handles, left.lines[0]],
        labels=[h.get_label() for h in handles] + ["critical diameter"],
        fontsize="small",
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncols=2,
    )
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    if saxs is not None and len(agglomerates):
        counts, _ = np.histogram(diameters, bins=bins)
        left.set_ylim(0, max(int(counts.max()), 1) * 2.3)
        largest = agglomerates.nlargest(n_insets, "equivalent_diameter_um")
        for k, row in enumerate(largest.itertuples()):
            inset = left.inset_axes([0.01 + 0.248 * k, 0.52, 0.23, 0.4])  # titles inside
            _agglomerate_inset(inset, saxs, pixel_size_um, row, critical_diameter_um)
    values = d_star[np.isfinite(d_star)]
    right.hist(values, bins=60, range=DSTAR_RANGE_NM, color="tab:green")
    right.set_title(_outside_dstar_range(values), fontsize="small")
    right.set_xlabel("d* (nm)")
    right.set_ylabel(MAP_PIXELS)
    return figure


def _outside_dstar_range(values: np.ndarray) -> str:
    """How many of the d* ``values`` (nm) fall outside :data:`DSTAR_RANGE_NM`, '' if none."""
    low, high = DSTAR_RANGE_NM
    outside = int(np.count_nonzero((values < low) | (values > high)))
    return f"{outside} of {values.size} outside {low:g}-{high:g} nm, not drawn" if outside else ""


def _agglomerate_inset(
    axis, saxs: np.ndarray, pixel_size_um: float, row, critical_diameter_um: float
) -> None:
    """The SAXS map around one agglomerate (axes in um from its centre), ellipse outlined,
    its diameter written as the report's table writes it (on its side of the critical
    diameter ``critical_diameter_um``: a case-B 50.2 um read "50")."""
    ny, nx = saxs.shape
    half = max(1.5 * row.equivalent_diameter_um, 5 * pixel_size_um)
    ix = row.x_um / pixel_size_um + (nx - 1) / 2
    iy = row.y_um / pixel_size_um + (ny - 1) / 2
    reach = half / pixel_size_um
    cols = slice(max(0, int(ix - reach)), min(nx, int(ix + reach) + 2))
    rows = slice(max(0, int(iy - reach)), min(ny, int(iy + reach) + 2))
    crop = saxs[rows, cols]
    x0 = (cols.start - (nx - 1) / 2 - 0.5) * pixel_size_um - row.x_um
    y0 = (rows.start - (ny - 1) / 2 - 0.5) * pixel_size_um - row.y_um
    extent = [x0, x0 + crop.shape[1] * pixel_size_um, y0 + crop.shape[0] * pixel_size_um, y0]
    finite = crop[np.isfinite(crop)]
    high = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    axis.imshow(crop, extent=extent, cmap="magma", vmin=0, vmax=high)
    axis.add_patch(
        Ellipse(
            (0, 0), 2 * row.semi_major_um, 2 * row.semi_minor_um, angle=row.orientation_deg,
            fill=False, color=CASE_COLOURS.get(row.case, "white"), lw=1,
        )
    )  # fmt: skip
    axis.set_xlim(-half, half)
    axis.set_ylim(half, -half)
    axis.set_xticks([])
    axis.set_yticks([])
    diameter = beside_threshold(critical_diameter_um, "{:.3g}")(row.equivalent_diameter_um)
    axis.set_title(f"#{row.id}: {diameter} µm", fontsize="small")
    scale_bar(axis, 2 * half, per_um=1.0)


def lithiation_figure(lithiation: pd.DataFrame) -> Figure:
    """Per-defect fractions of LiC6 / LiC12 / poorly lithiated, inside vs the ring around."""
    figure = Figure(figsize=(11, 4), layout="constrained")
    axis = figure.subplots()
    if lithiation.empty:
        axis.text(0.5, 0.5, "no agglomerates found", ha="center", transform=axis.transAxes)
        return figure
    ids = lithiation["id"].to_numpy()
    x = np.arange(ids.size)
    for offset, where in ((-0.2, "inside"), (0.2, "ring")):
        bottom = np.zeros(ids.size)
        known = np.zeros(ids.size, dtype=bool)
        for phase, colour in GRAPHITE_COLOURS.items():
            values = lithiation[f"{phase}_{where}"].to_numpy(dtype=float)
            known |= np.isfinite(values)
            axis.bar(
                x + offset,
                values,
                0.38,
                bottom=bottom,
                color=colour,
                alpha=1.0 if where == "inside" else 0.45,
            )
            bottom += np.nan_to_num(values)
        _no_value_marks(axis, x + offset, ~known)  # no graphite signal there: not 0
    axis.set_xticks(x, [f"{i}\n{c}" for i, c in zip(ids, lithiation["case"], strict=True)])
    axis.set_ylabel("fraction (left bar: inside, right: ring)")
    axis.set_xlabel("agglomerate id and case")
    _colour_legend(axis, GRAPHITE_COLOURS, GRAPHITE_NAMES, loc="upper left", bbox_to_anchor=(1, 1))
    return figure


NO_VALUE = "no value"
"""Written on a bar that has no value (NaN: a defect without graphite signal), which an
empty slot would show as 0."""


def _no_value_marks(axis, x: np.ndarray, where: np.ndarray) -> None:
    """:data:`NO_VALUE` written upright at the bars ``x`` (data units) where ``where``."""
    for xi in np.asarray(x)[np.asarray(where, dtype=bool)]:
        axis.text(
            xi, 0.02, NO_VALUE, rotation=90, ha="center", va="bottom", fontsize="x-small",
            color="0.4", transform=axis.get_xaxis_transform(),
        )  # fmt: skip


SPIRAL_OFFSET_LABEL = "offset (µm)\n+ outwards"
"""Row axis of a map unrolled along the traced Cu collector (radial offset, positive
outwards: :mod:`jellyroll.unroll.spiral`)."""


def unrolled_figure(
    maps: dict[str, np.ndarray],
    arc_um: np.ndarray,
    rows_um: np.ndarray,
    along: str = "spiral",
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> Figure:
    """Every modality unrolled at the same arc positions (the study's Fig. 2).

    ``maps``: map name -> (n_rows, n_arc) unrolled along the traced collector
    (``along="spiral"``, ``rows_um`` the radial offset from it, positive outwards) or
    around the centre (``"polar"``, ``rows_um`` the radius). Panels, when their maps are
    present: graphite and NMC composites (robust colour window, their colours in the
    title), SAXS intensity, d*, attenuation; ``limits``: the scalar panels' colour limits
    (:func:`colour_limits`, shared by the cells of a report), else the maps' own.
    """
    limits = limits or colour_limits([maps])
    panels = []
    if all(name in maps for name in GRAPHITE_COLOURS):
        rgb = graphite_composite(
            maps["lic6"], maps["lic12"], maps["graphite_poor"], percentile=ROBUST_PERCENTILE
        )
        panels.append((GRAPHITE_TITLE, rgb, None))
    if all(name in maps for name in NMC_COLOURS):
        rgb = nmc_composite(
            maps["nmc_lithiated"], maps["nmc_delithiated"], percentile=ROBUST_PERCENTILE
        )
        panels.append((NMC_TITLE, rgb, None))
    for name, title, cmap, units in (
        ("saxs_intensity", "SAXS intensity", "magma", "arb. units"),
        ("d_star_nm", "d*", "viridis", "nm"),
        ("attenuation", "X-ray attenuation", "gray", "1/µm"),
    ):
        if name in maps:
            panels.append((title, maps[name], (cmap, units, limits[name])))
    figure = Figure(figsize=(12, 1.5 * len(panels) + 0.6), layout="constrained")
    axes = figure.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    left, right, bottom, top = pixel_extent(np.asarray(arc_um), np.asarray(rows_um))
    extent = [left / 1000, right / 1000, bottom, top]  # arc in mm, rows in um
    for axis, (title, image, style) in zip(axes, panels, strict=True):
        if style is None:  # an RGB composite: its colours in the title, no legend column
            axis.imshow(image, extent=extent, aspect="auto", interpolation="nearest")
        else:
            cmap, units, (vmin, vmax) = style
            if units == "nm":  # d*: 0 where the map has no value, shown blank
                image = np.where(image > 0, image, np.nan)
            shown = axis.imshow(
                image, extent=extent, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                interpolation="nearest",
            )  # fmt: skip
            colorbar(figure, shown, ax=axis, label=units, pad=0.01, fraction=0.03)
        axis.set_title(title, fontsize="medium", loc="left")
        axis.set_ylabel(SPIRAL_OFFSET_LABEL if along == "spiral" else "radius (µm)")
    axes[-1].set_xlabel(
        "arc length along the Cu collector (mm)" if along == "spiral" else "arc length (mm)"
    )
    return figure


def saxs_profiles_figure(
    profiles: pd.DataFrame,
    fits: dict[str, DStarResult],
    counts: dict[str, int] | None = None,
    tolerance: float | None = None,
) -> Figure:
    """Region-averaged SAXS profiles (``q_A`` and one column per region) on log axes, each
    with its power-law fit over the fit window and q* marked (the study's Fig. 4); below,
    each profile over its fit (the few-% departure that sets q*, which the decades of the
    log axes hide), with the band 1 +- ``tolerance`` (the departure rule's) when given."""
    figure = Figure(figsize=(8, 7), layout="constrained")
    axis, ratio_axis = figure.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    q = profiles["q_A"].to_numpy(dtype=float)
    for name, colour in REGION_COLOURS.items():
        if name not in profiles:
            continue
        intensity = profiles[name].to_numpy(dtype=float)
        fit = fits[name]
        label = name if counts is None else f"{name} ({counts.get(name, 0)} px)"
        label += f": d* = {fit.d_star_nm:.1f} nm" if fit.valid else f": no d* ({fit.reason})"
        axis.loglog(q, intensity, color=colour, lw=1.2, label=label)
        if np.isfinite(fit.slope):
            lo = fit.q_star if fit.valid else fit.fit_q_range[0]
            grid = np.geomspace(lo, fit.fit_q_range[1], 50)
            axis.loglog(grid, fit.amplitude * grid**-fit.slope, color=colour, ls="--", lw=0.9)
            # up to the fit window's end: beyond it the law was not fitted
            shown = q <= fit.fit_q_range[1]
            law = fit.amplitude * q[shown] ** -fit.slope
            ratio_axis.semilogx(q[shown], intensity[shown] / law, color=colour, lw=1.2)
        for where in (axis, ratio_axis) if fit.valid else ():
            where.axvline(fit.q_star, color=colour, ls=":", lw=1)
        if fit.valid:
            at_q_star = interp_in_any_order(fit.q_star, q, intensity)
            axis.plot(fit.q_star, at_q_star, "o", color=colour)
            ratio = at_q_star / (fit.amplitude * fit.q_star**-fit.slope)
            ratio_axis.plot(fit.q_star, ratio, "o", color=colour)
    ratio_axis.axhline(1.0, color="k", ls="--", lw=0.9)
    if tolerance is not None:
        ratio_axis.axhspan(1 - tolerance, 1 + tolerance, color="0.85", zorder=0,
                           label=f"fit ± {100 * tolerance:g} %")  # fmt: skip
        ratio_axis.legend(fontsize="small", loc="upper right")
    axis.set_ylabel("mean intensity (arb. units / µm)")
    axis.set_title("dashed: power-law fit; dotted: q* where the profile departs from it")
    axis.legend(fontsize="small")
    ratio_axis.set_xlabel("q (1/Å)")
    ratio_axis.set_ylabel("intensity / fit")
    return figure


def comparison_figure(cells: list[dict]) -> Figure:
    """The cells side by side (fresh vs aged, discharged vs charged): graphite and NMC
    phase shares, agglomerates per case, defect share of the anode, d* distributions.

    ``cells``: per cell ``label``, ``graphite`` and ``nmc`` (phase name -> share),
    ``cases`` (case -> count), ``defect_share`` (fraction) and ``d_star`` (values, nm).
    """
    figure = Figure(figsize=(13, 4.2), layout="constrained")
    axes = figure.subplots(1, 4, width_ratios=[1, 1, 1, 1.3])
    labels = [c["label"] for c in cells]
    x = np.arange(len(cells))
    for axis, key, colours, names, title in (
        (axes[0], "graphite", GRAPHITE_COLOURS, GRAPHITE_NAMES, "graphite phase shares"),
        (axes[1], "nmc", NMC_COLOURS, NMC_NAMES, "NMC phase shares"),
        (axes[2], "cases", CASE_COLOURS, CASE_NAMES, "agglomerates"),
    ):  # fmt: skip
        bottom = np.zeros(len(cells))
        known = np.zeros(len(cells), dtype=bool)
        for name, colour in colours.items():
            values = np.array([c[key].get(name, np.nan) for c in cells], dtype=float)
            axis.bar(x, np.nan_to_num(values), 0.6, bottom=bottom, color=colour, label=names[name])
            bottom += np.nan_to_num(values)
            known |= np.isfinite(values)
        _no_value_marks(axis, x, ~known)  # no shares (no signal, no map): not an empty 0
        axis.set_xticks(x, labels, rotation=15)
        axis.set_title(title)
        axis.legend(fontsize="x-small", loc="upper left")
    axes[0].set_ylabel("share")
    axes[2].set_ylabel("count")
    axes[2].yaxis.set_major_locator(MaxNLocator(integer=True))
    totals = [sum(c["cases"].values()) for c in cells]
    for c, xi, total in zip(cells, x, totals, strict=True):
        share = c.get("defect_share", np.nan)
        if np.isfinite(share):
            axes[2].annotate(
                f"{100 * share:.1f} %\nof anode", (xi, total), xytext=(0, 2),
                textcoords="offset points", ha="center", va="bottom", fontsize="x-small",
            )  # fmt: skip
    for c in cells:
        values = np.asarray(c["d_star"], dtype=float)
        values = values[np.isfinite(values)]
        if values.size:  # density of all the values: those outside the range are not drawn
            width = np.ptp(DSTAR_RANGE_NM) / 60
            outside = _outside_dstar_range(values)
            axes[3].hist(
                values, bins=60, range=DSTAR_RANGE_NM, histtype="step",
                weights=np.full(values.size, 1.0 / (values.size * width)),
                label=f"{c['label']} ({outside})" if outside else c["label"],
            )  # fmt: skip
        else:  # named with no curve: a cell without d* was left out without a word
            axes[3].plot([], [], linestyle="none", label=f"{c['label']}: {NO_VALUE}")
    axes[3].set_xlabel("d* (nm)")
    axes[3].set_ylabel("density")
    axes[3].set_title("d* distributions")
    axes[3].legend(fontsize="x-small", loc="upper left")
    _below_legends(figure, axes)
    return figure


def _below_legends(figure: Figure, axes) -> None:
    """Set each of ``axes``' y range from 0 to where what it draws (bars, curves, and the
    annotations above them) ends below its legend, which sits in the axes' top corner:
    with a fixed headroom the legends covered the d* curves and ran past an axis."""
    figure.draw_without_rendering()  # places the legends and annotations
    for axis in axes:
        box = axis.get_window_extent()
        room = axis.get_legend().get_window_extent().y0 - box.y0 - 8.0  # pixels
        above = [  # an annotation's height above its point: fixed in points, not data
            text.get_window_extent().y1 - axis.transData.transform(text.xy)[1]
            for text in axis.texts
            if hasattr(text, "xy")
        ]
        top = max(float(axis.dataLim.y1), 1e-9)
        axis.set_ylim(0, top * box.height / max(room - max(above, default=0.0), 1.0))


def rgb_map_figure(rgb: np.ndarray, title: str, x_um: np.ndarray, y_um: np.ndarray) -> Figure:
    """One RGB composite (n_y, n_x, 3) on the map grid, axes in mm."""
    figure = Figure(figsize=(6, 6), layout="constrained")
    (axis,) = _axes(figure, 1)
    axis.imshow(rgb, extent=map_extent_mm(x_um, y_um))
    axis.set_title(title)
    return figure


def graphite_rgb_figure(maps: dict[str, np.ndarray], x_um: np.ndarray, y_um: np.ndarray) -> Figure:
    """The graphite phase composite alone."""
    rgb = graphite_composite(maps["lic6"], maps["lic12"], maps["graphite_poor"])
    return rgb_map_figure(rgb, GRAPHITE_TITLE, x_um, y_um)


def nmc_rgb_figure(maps: dict[str, np.ndarray], x_um: np.ndarray, y_um: np.ndarray) -> Figure:
    """The NMC phase composite alone."""
    rgb = nmc_composite(maps["nmc_lithiated"], maps["nmc_delithiated"])
    return rgb_map_figure(rgb, NMC_TITLE, x_um, y_um)


def dstar_figure(d_star: np.ndarray, x_um: np.ndarray, y_um: np.ndarray) -> Figure:
    """The d* map (colour window :data:`COLOUR_WINDOWS`) beside its histogram."""
    finite = d_star[np.isfinite(d_star)]
    low, high = colour_limits([{"d_star_nm": d_star}])["d_star_nm"]
    figure = Figure(figsize=(11, 5), layout="constrained")
    left, right = figure.subplots(1, 2)
    image = left.imshow(
        d_star, extent=map_extent_mm(x_um, y_um), cmap="viridis", vmin=low, vmax=high
    )
    colorbar(figure, image, ax=left, shrink=0.8, label="d* (nm)")
    left.set_title("d* (departure from power law); blank: no value")
    left.set_xlabel("x (mm)")
    left.set_ylabel("y (mm)")
    counts, edges = dstar_histogram(d_star, bins=60)
    right.stairs(counts, edges, fill=True)
    right.set_xlabel("d* (nm)")
    right.set_ylabel(MAP_PIXELS)
    mean = f", mean {finite.mean():.2f} nm" if finite.size else ""
    right.set_title(f"{finite.size} {MAP_PIXELS} with a value{mean}")
    return figure


def orthogonal_views_figure(
    xy: np.ndarray, xz: np.ndarray, yz: np.ndarray, voxel_um: float, title: str = ""
) -> Figure:
    """Three orthogonal cuts through the centre of a volume (RGB (..., 3) or grey), axes in
    mm of the centred frame: the axial slice (y, x), y down as in the maps, and the vertical
    cuts (z, x) and (z, y), height z up (row 0, the lowest z, at the bottom: drawn at the
    top, the cell stood upside down beside the slice-in-volume view)."""
    figure = Figure(figsize=(13, 4.6), layout="constrained")
    axes = figure.subplots(1, 3)
    for axis, image, (rows, columns), name in (
        (axes[0], xy, ("y", "x"), "axial slice"),
        (axes[1], xz, ("z", "x"), "vertical cut (x)"),
        (axes[2], yz, ("z", "y"), "vertical cut (y)"),
    ):
        n_rows, n_columns = image.shape[:2]
        half = voxel_um / 2000
        origin = "lower" if rows == "z" else "upper"
        low, high = -n_rows * half, n_rows * half
        extent = [
            -n_columns * half,
            n_columns * half,
            *((low, high) if rows == "z" else (high, low)),
        ]
        axis.imshow(image, extent=extent, origin=origin, cmap=None if image.ndim == 3 else "gray")
        axis.set_xlabel(f"{columns} (mm)")
        axis.set_ylabel(f"{rows} (mm)")
        axis.set_title(name)
    if title:
        figure.suptitle(title)
    return figure


def bends_figure(displacement_um: np.ndarray, arc_um: np.ndarray, z_um: np.ndarray) -> Figure:
    """The Cu collector's radial displacement off its smooth spiral, unrolled: arc length
    along the layer against height, z up (the study's Fig. 3b seen from the side)."""
    displacement_um, z_um = _rows_on_grid(displacement_um, z_um)
    figure = Figure(figsize=(12, 3.5), layout="constrained")
    axis = figure.subplots()
    finite = displacement_um[np.isfinite(displacement_um)]
    limit = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
    left, right, bottom, top = pixel_extent(np.asarray(arc_um), z_um)
    image = axis.imshow(
        displacement_um,
        extent=[left / 1000, right / 1000, top / 1000, bottom / 1000],  # lowest z at the bottom
        origin="lower",
        aspect="auto",
        cmap=colormaps["RdBu_r"].with_extremes(bad="0.6"),  # untraced: grey, not 0's white
        vmin=-limit,
        vmax=limit,
    )
    colorbar(figure, image, ax=axis, label="displacement (um, outwards +)")
    axis.set_xlabel("arc length along the Cu collector (mm)")
    axis.set_ylabel("height z (mm)")
    return figure


def _rows_on_grid(image: np.ndarray, rows_um: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (n_rows, n) whose rows lie at ``rows_um`` (n_rows,), the traced slices of a
    volume (any order, some skipped), placed on their regular grid (the smallest spacing)
    from the first to the last, NaN rows where none was: ``imshow`` spreads rows evenly,
    so a skipped slice moved every row after it. Returns the image and the grid (um).
    Raises ``ValueError`` when the heights repeat or are not on one grid."""
    rows_um = np.asarray(rows_um, dtype=float)
    order = np.argsort(rows_um)
    image, rows_um = np.asarray(image)[order], rows_um[order]
    if rows_um.size < 2:
        return image, rows_um
    step = float(np.diff(rows_um).min())
    index = np.rint((rows_um - rows_um[0]) / step).astype(int) if step > 0 else None
    if index is None or np.abs(index * step - (rows_um - rows_um[0])).max() > 1e-3 * step:
        raise ValueError(
            f"the slice heights z_um ({rows_um.min():g}..{rows_um.max():g} um, {rows_um.size} "
            "slices) repeat or are not on one regular grid: cannot draw the rows at their "
            "heights; give z_um on one grid of slices (as `jellyroll nxct` writes it)"
        )
    placed = np.full((int(index[-1]) + 1, *image.shape[1:]), np.nan)
    placed[index] = image
    return placed, rows_um[0] + step * np.arange(placed.shape[0])

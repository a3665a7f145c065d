"""Every figure jellyroll draws (matplotlib ``Figure`` objects, no pyplot state), one function
per figure, from results in physical units; stages save them with :func:`save_png`, the report
embeds them. Colours follow the study: LiC6 green, LiC12 blue, poorly lithiated red; NMC
lithiated green, delithiated red; case A agglomerates cyan, case B red."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from jellyroll.conventions import map_extent_mm
from jellyroll.io.provenance import atomic_output
from jellyroll.phases import graphite_composite, nmc_composite
from jellyroll.saxs import dstar_histogram

GRAPHITE_TITLE = "graphite: LiC6 green, LiC12 blue, poorly lithiated red"
NMC_TITLE = "NMC622: lithiated green, delithiated red"


def save_png(figure: Figure, path: Path, dpi: int = 110) -> Path:
    """Write ``figure`` as a PNG at ``path`` atomically."""
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png")
    return path


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
    left.imshow(
        graphite_composite(maps["lic6"], maps["lic12"], maps["graphite_poor"]), extent=extent
    )
    left.set_title(GRAPHITE_TITLE)
    right.imshow(nmc_composite(maps["nmc_lithiated"], maps["nmc_delithiated"]), extent=extent)
    right.set_title(NMC_TITLE)
    return figure


def saxs_figure(
    saxs: np.ndarray,
    d_star: np.ndarray,
    x_um: np.ndarray,
    y_um: np.ndarray,
    agglomerates: pd.DataFrame | None = None,
) -> Figure:
    """SAXS intensity with the agglomerates circled (case B in red), and the d* map."""
    figure = Figure(figsize=(12, 5), layout="constrained")
    left, right = _axes(figure, 2)
    extent = map_extent_mm(x_um, y_um)
    image = left.imshow(
        saxs, extent=extent, cmap="magma", vmin=0, vmax=np.nanpercentile(saxs, 99.8)
    )
    figure.colorbar(image, ax=left, shrink=0.8, label="arb. units")
    left.set_title("SAXS intensity, q = 0.025-0.1 1/A, agglomerates circled")
    if agglomerates is not None:
        for row in agglomerates.itertuples():
            colour = "red" if row.case == "B" else "cyan"
            radius_mm = max(row.equivalent_diameter_um / 2000, 0.02) * 1.6
            left.add_patch(
                Circle(
                    (row.x_um / 1000, row.y_um / 1000), radius_mm, fill=False, color=colour, lw=1
                )
            )
    image = right.imshow(d_star, extent=extent, cmap="viridis", vmin=8, vmax=16)
    figure.colorbar(image, ax=right, shrink=0.8, label="nm")
    right.set_title("d* (departure from the power law)")
    return figure


def histogram_figure(
    agglomerates: pd.DataFrame, critical_diameter_um: float, d_star: np.ndarray
) -> Figure:
    """Agglomerate size histogram with the critical diameter, and the d* histogram."""
    figure = Figure(figsize=(11, 4), layout="constrained")
    left, right = figure.subplots(1, 2)
    diameters = agglomerates["equivalent_diameter_um"].to_numpy() if len(agglomerates) else []
    top = max(float(np.max(diameters, initial=0.0)), critical_diameter_um) * 1.15
    left.hist(diameters, bins=np.linspace(0, top, 25), color="0.4")
    left.axvline(critical_diameter_um, color="red", ls="--", label="critical diameter")
    left.set_xlabel("equivalent diameter (um)")
    left.set_ylabel("agglomerates")
    left.legend()
    values = d_star[np.isfinite(d_star)]
    right.hist(values, bins=60, range=(6, 20), color="tab:green")
    right.set_xlabel("d* (nm)")
    right.set_ylabel("voxels")
    return figure


def lithiation_figure(lithiation: pd.DataFrame) -> Figure:
    """Per-defect fractions of LiC6 / LiC12 / poorly lithiated, inside vs the ring around."""
    figure = Figure(figsize=(11, 4), layout="constrained")
    axis = figure.subplots()
    if lithiation.empty:
        axis.text(0.5, 0.5, "no agglomerates found", ha="center", transform=axis.transAxes)
        return figure
    ids = lithiation["id"].to_numpy()
    x = np.arange(ids.size)
    colours = {"lic6": "green", "lic12": "blue", "graphite_poor": "red"}
    for offset, where in ((-0.2, "inside"), (0.2, "ring")):
        bottom = np.zeros(ids.size)
        for phase, colour in colours.items():
            values = lithiation[f"{phase}_{where}"].to_numpy()
            axis.bar(
                x + offset,
                values,
                0.38,
                bottom=bottom,
                color=colour,
                alpha=1.0 if where == "inside" else 0.45,
            )
            bottom += values
    axis.set_xticks(x, [f"{i}\n{c}" for i, c in zip(ids, lithiation["case"], strict=True)])
    axis.set_ylabel("fraction (left bar: inside, right: ring)")
    axis.set_xlabel("agglomerate id and case")
    return figure


def unrolled_figure(images: dict[str, tuple[np.ndarray, list[float]]]) -> Figure:
    """Unrolled maps (name -> (image (radius, arc), extent [arc0, arc1, r1, r0] in mm))."""
    figure = Figure(figsize=(12, 2.2 * len(images) + 0.5), layout="constrained")
    axes = figure.subplots(len(images), 1, squeeze=False)[:, 0]
    for axis, (name, (image, extent)) in zip(axes, images.items(), strict=True):
        axis.imshow(image, extent=extent, aspect="auto", cmap="magma" if image.ndim == 2 else None)
        axis.set_title(name)
        axis.set_ylabel("radius (mm)")
    axes[-1].set_xlabel("arc length (mm)")
    return figure


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
    """The d* map (1-99 % colour range) beside its histogram."""
    finite = d_star[np.isfinite(d_star)]
    low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    figure = Figure(figsize=(11, 5), layout="constrained")
    left, right = figure.subplots(1, 2)
    image = left.imshow(
        d_star, extent=map_extent_mm(x_um, y_um), cmap="viridis", vmin=low, vmax=high
    )
    figure.colorbar(image, ax=left, shrink=0.8, label="d* (nm)")
    left.set_title("d* (departure from power law); blank: no value")
    left.set_xlabel("x (mm)")
    left.set_ylabel("y (mm)")
    counts, edges = dstar_histogram(d_star, bins=60)
    right.stairs(counts, edges, fill=True)
    right.set_xlabel("d* (nm)")
    right.set_ylabel("voxels")
    mean = f", mean {finite.mean():.2f} nm" if finite.size else ""
    right.set_title(f"{finite.size} voxels with a value{mean}")
    return figure


def orthogonal_views_figure(
    xy: np.ndarray, xz: np.ndarray, yz: np.ndarray, voxel_um: float, title: str = ""
) -> Figure:
    """Three orthogonal cuts through the centre of a volume (RGB (..., 3) or grey), axes in
    mm: the axial slice (y, x), and the vertical cuts (z, x) and (z, y)."""
    figure = Figure(figsize=(13, 4.6), layout="constrained")
    axes = figure.subplots(1, 3)
    for axis, image, (rows, columns), name in (
        (axes[0], xy, ("y", "x"), "axial slice"),
        (axes[1], xz, ("z", "x"), "vertical cut (x)"),
        (axes[2], yz, ("z", "y"), "vertical cut (y)"),
    ):
        n_rows, n_columns = image.shape[:2]
        half = voxel_um / 2000
        extent = [
            -n_columns * half, n_columns * half, n_rows * half, -n_rows * half,
        ]  # fmt: skip
        axis.imshow(image, extent=extent, cmap=None if image.ndim == 3 else "gray")
        axis.set_xlabel(f"{columns} (mm)")
        axis.set_ylabel(f"{rows} (mm)")
        axis.set_title(name)
    if title:
        figure.suptitle(title)
    return figure


def bends_figure(displacement_um: np.ndarray, arc_um: np.ndarray, z_um: np.ndarray) -> Figure:
    """The Cu collector's radial displacement off its smooth spiral, unrolled: arc length
    along the layer against height (the study's Fig. 3b seen from the side)."""
    figure = Figure(figsize=(12, 3.5), layout="constrained")
    axis = figure.subplots()
    finite = displacement_um[np.isfinite(displacement_um)]
    limit = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
    image = axis.imshow(
        displacement_um,
        extent=[arc_um[0] / 1000, arc_um[-1] / 1000, z_um[-1] / 1000, z_um[0] / 1000],
        aspect="auto",
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
    )
    figure.colorbar(image, ax=axis, label="displacement (um, outwards +)")
    axis.set_xlabel("arc length along the Cu collector (mm)")
    axis.set_ylabel("height z (mm)")
    return figure

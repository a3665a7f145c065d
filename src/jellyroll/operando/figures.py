"""Figures of an operando series: the contact sheet of graphite composites per step with
the zones outlined (whole slice and zoom, the study's Fig. 5), the share curves, the core
area against state of charge, and an animated GIF of the charge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from skimage.segmentation import find_boundaries

from jellyroll.conventions import pixel_extent
from jellyroll.figures import GRAPHITE_NAMES, GRAPHITE_TITLE, scale_bar
from jellyroll.io.images import save_gif, save_png
from jellyroll.operando.timeline import SOC_UNITS
from jellyroll.results.operando import PHASES, OperandoResult

COLOURS = {"lic6": "tab:green", "lic12": "tab:blue", "graphite_poor": "tab:red"}
"""The study's colours: LiC6 green, LiC12 blue, poorly lithiated red."""


def composite(shares: np.ndarray, zones: np.ndarray | None = None) -> np.ndarray:
    """RGB (ny, nx, 3) of shares (ny, nx, 3): poorly lithiated red, LiC6 green, LiC12 blue;
    black without graphite; zone outlines white."""
    rgb = np.nan_to_num(shares[..., [2, 0, 1]], nan=0.0).clip(0.0, 1.0)
    if zones is not None and zones.any():
        rgb[find_boundaries(zones, mode="outer")] = 1.0
    return rgb


def _label(result: OperandoResult, k: int) -> str:
    soc = result.soc[k]
    if np.isfinite(soc) and result.soc_units == SOC_UNITS:
        return f"step {k}: SOC {soc:.2f}"
    return (
        f"step {k}: {result.time_s[k] / 60:.0f} min"
        if np.isfinite(result.time_s[k])
        else f"step {k}"
    )


def contact_sheet(result: OperandoResult, zoom_px: int = 12) -> Figure:
    """Row 1: the whole slice per step; row 2: a zoom on the first zone (when any); a
    scale bar on the first step of each row (the axes carry no ticks)."""
    n = len(result.steps)
    has_zone = result.zones.max() > 0
    rows = 2 if has_zone else 1
    figure = Figure(figsize=(2.0 * n, 2.1 * rows), layout="constrained")
    axes = figure.subplots(rows, n, squeeze=False)
    extent = pixel_extent(result.x_um, result.y_um)
    window = None
    if has_zone:
        yy, xx = np.nonzero(result.zones == 1)
        cy, cx = int(yy.mean()), int(xx.mean())
        window = (
            slice(max(cy - zoom_px, 0), cy + zoom_px),
            slice(max(cx - zoom_px, 0), cx + zoom_px),
        )
    for k in range(n):
        image = composite(result.shares[k], result.zones)
        axes[0, k].imshow(image, extent=extent)
        axes[0, k].set_title(_label(result, k), fontsize=8)
        if window is not None:
            zoom = pixel_extent(result.x_um[window[1]], result.y_um[window[0]])
            axes[1, k].imshow(image[window], extent=zoom, interpolation="nearest")
            axes[1, k].set_title("zone 1", fontsize=8)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax in axes[:, 0]:
        left, right = ax.get_xlim()
        scale_bar(ax, abs(right - left), per_um=1.0)
    figure.suptitle(f"{GRAPHITE_TITLE}; zones outlined")
    return figure


def _x(result: OperandoResult) -> tuple[np.ndarray, str]:
    units = "state of charge" if result.soc_units == SOC_UNITS else f"time ({result.soc_units})"
    return result.soc, units


def curves_figure(result: OperandoResult) -> Figure:
    """Share curves of the regular anode and of each zone and its ring."""
    names = [n for n in result.curves if not n.startswith("turn_")]
    figure = Figure(figsize=(3.2 * len(names), 3.0), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(names), sharey=True))
    x, label = _x(result)
    for ax, name in zip(axes, names, strict=True):
        for k, phase in enumerate(PHASES):
            ax.plot(x, result.curves[name][:, k], "o-", color=COLOURS[phase],
                    label=GRAPHITE_NAMES[phase])  # fmt: skip
        half = result.soc_half[name]
        title = name if not np.isfinite(half) else f"{name}: half at {half:.2f}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(label)
    axes[0].set_ylabel("share of the graphite signal")
    axes[0].legend(fontsize=7)
    return figure


def core_figure(result: OperandoResult) -> Figure:
    """Area of every zone's poorly lithiated core against state of charge."""
    figure = Figure(figsize=(4.0, 3.0), layout="constrained")
    ax = figure.subplots()
    x, label = _x(result)
    for i, area in enumerate(result.cores["area_um2"], start=1):
        ax.plot(x, area, "o-", label=f"zone {i}")
    ax.set_xlabel(label)
    ax.set_ylabel("poorly lithiated core (um$^2$)")
    if len(result.cores["area_um2"]):
        ax.legend(fontsize=7)
    return figure


def write_gif(result: OperandoResult, path: Path, scale: int = 4) -> Path:
    """Animated GIF of the composites, one frame per step (Pillow), written atomically."""
    frames = []
    for k in range(len(result.steps)):
        rgb = (composite(result.shares[k], result.zones) * 255).astype(np.uint8)
        image = Image.fromarray(rgb).resize(
            (rgb.shape[1] * scale, rgb.shape[0] * scale), Image.Resampling.NEAREST
        )
        frames.append(image)
    return save_gif(frames, path, duration_ms=600)


def figure_paths(output: Path) -> dict[str, Path]:
    """Every figure's file beside ``output``, by name: ``<stem>_contact_sheet.png``,
    ``_curves.png``, ``_cores.png`` and ``_charge.gif``."""
    stem = output.with_suffix("")
    names = ("contact_sheet.png", "curves.png", "cores.png", "charge.gif")
    return {name.split(".")[0]: Path(f"{stem}_{name}") for name in names}


def write_figures(result: OperandoResult, output: Path) -> list[Path]:
    """Every figure of :func:`figure_paths` beside ``output``."""
    paths = figure_paths(output)
    drawn = [
        save_png(contact_sheet(result), paths["contact_sheet"]),
        save_png(curves_figure(result), paths["curves"]),
        save_png(core_figure(result), paths["cores"]),
    ]
    drawn.append(write_gif(result, paths["charge"]))
    return drawn

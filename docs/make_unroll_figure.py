"""Draw the unrolling figure of the user guide: ``python docs/make_unroll_figure.py``.

Reads the real X-ray CT slice of an 18650 cell (``../shared/data/real/cell18650_slice.tif``
beside the checkout, or the folder given as the first argument) and writes
``docs/figures/unroll_18650.png``: the slice with the cell found and the traced layer, its
polar unrolling, the spiral unrolling with one row per turn, and the traced layer's
deviation from a smooth spiral. The slice has no stated voxel size; 35 um (an 18 mm cell
over ~510 px) is assumed for the axes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import tifffile

from jellyroll.unroll import (
    find_cell,
    spiral_deviation,
    trace_spiral,
    unroll_polar,
    unroll_spiral,
)

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
OUTPUT = ROOT / "docs" / "figures" / "unroll_18650.png"
PIXEL_UM = 35.0  # assumed (see the module docstring)


def main(real: Path = REAL) -> Path:
    image = tifffile.imread(real / "cell18650_slice.tif").astype(np.float64)
    cell = find_cell(image)
    trace = trace_spiral(image, cell, PIXEL_UM)
    polar = unroll_polar(image, cell, PIXEL_UM)
    strip = unroll_spiral(image, trace)
    deviation = spiral_deviation(trace)
    lo, hi = np.percentile(image, [1, 99.5])
    shade = {"cmap": "gray", "vmin": lo, "vmax": hi}

    fig = plt.figure(figsize=(13, 11), layout="constrained")
    grid = fig.add_gridspec(3, 2, height_ratios=[1.15, 1.0, 0.45])
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(image, **shade)
    ax.add_patch(plt.Circle(cell.centre, cell.radius, fill=False, color="tab:orange", lw=1))
    ax.plot(*trace.xy_px.T, color="tab:red", lw=0.4, alpha=0.8)
    ax.plot(*trace.xy_px[[0, -1]].T, "o", color="yellow", ms=4)
    ax.set_title(
        f"a  find_cell: centre ({cell.x:.1f}, {cell.y:.1f}) px, radius {cell.radius:.1f} px;\n"
        f"traced layer: {trace.n_turns:.2f} turns, pitch {trace.pitch_um:.0f} um",
        loc="left",
        fontsize=10,
    )
    ax.set_axis_off()

    ax = fig.add_subplot(grid[0, 1])
    ax.imshow(
        polar.data,
        **shade,
        aspect="auto",
        origin="lower",
        extent=(0, 360, polar.radius_um[0] / 1e3, polar.radius_um[-1] / 1e3),
    )
    ax.set_xlabel("angle (deg, clockwise from +x)")
    ax.set_ylabel("radius (mm)")
    ax.set_title("b  polar unrolling: a layer climbs one pitch per turn", loc="left", fontsize=10)

    ax = fig.add_subplot(grid[1, :])
    turns = strip.turn_strips()
    longest = max(t.shape[-1] for t in turns)
    stacked = np.full((len(turns) * strip.depth_um.size, longest), np.nan)
    for k, turn in enumerate(turns):  # row block k: turn k, inner turn at the bottom
        stacked[k * strip.depth_um.size : (k + 1) * strip.depth_um.size, : turn.shape[-1]] = turn
    ax.imshow(
        stacked,
        **shade,
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        extent=(0, longest * PIXEL_UM / 1e3, 0, len(turns)),
    )
    ax.set_xlabel("arc length along the traced layer within the turn (mm)")
    ax.set_ylabel("turn (inner to outer)")
    ax.set_title(
        "c  spiral unrolling: one strip per turn, depth +-half a pitch around the traced layer "
        "(its centre line), so every layer runs straight",
        loc="left",
        fontsize=10,
    )

    ax = fig.add_subplot(grid[2, :])
    ax.plot(deviation.arc_um / 1e3, deviation.deviation_um, lw=0.6, color="tab:red")
    for start in strip.turn_start_arc_um / 1e3:
        ax.axvline(start, color="0.8", lw=0.5, zorder=0)
    ax.set_xlim(0, deviation.arc_um[-1] / 1e3)
    ax.set_xlabel("arc length along the traced layer from its inner end (mm); grey: turns")
    ax.set_ylabel("deviation (um)")
    ax.set_title(
        "d  spiral_deviation: radial offset of the layer from a smooth fitted spiral",
        loc="left",
        fontsize=10,
    )

    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=110)
    plt.close(fig)
    return OUTPUT


if __name__ == "__main__":
    print(f"wrote {main(Path(sys.argv[1]) if len(sys.argv) > 1 else REAL)}")

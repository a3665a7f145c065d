"""Accuracy of ``locate_slice`` over random placements of twins, against their truth.

For each twin (``SIZE:SEED``), ``--placements`` placements (seeds 0, 1, ...) of its SWAXS
slice in a lab X-ray stack (:func:`jellyroll.phantom.write.placed_xray_stack`, as the locate
tests build them: 20 um voxels unless ``--voxel-um``, 0.7 voxel blur, noise 2 % of the range;
160 um tall for tiny twins, 480 um for larger ones), located from the twin's true attenuation
map. Printed per twin: the largest and median errors of height (um), in-plane rotation (deg)
and shift (um) against the locate issue's bars (half an X-ray voxel, 0.5 deg, one map
pixel), how many heights miss their bar, how many are flagged (an uncertainty over half a
voxel: the warning of ``jellyroll locate``), how many misses go unflagged (silent wrong
heights) and how many intervals cover the truth.

    python -m benchmarks.locate_placements tiny:3 tiny:5 small:6 --placements 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from jellyroll.locate.core import locate_slice, pose_errors
from jellyroll.locate.run import height_warning
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import placed_xray_stack

VOXEL_UM = 20.0
"""The stacks' X-ray voxel (um) by default: the tiny and small twins' map pixel."""
STACK_UM = {"tiny": 160.0}
"""Height of the X-ray stack (um) per twin size; 480 um for the others."""
ROTATION_BAR_DEG = 0.5


def sweep(size: str, twin_seed: int, placements: int, voxel_um: float) -> dict[str, float]:
    """Errors and flags of ``placements`` placements of one twin (see the module's doc)."""
    twin = make_twin("aged_charged", size, seed=twin_seed)
    n_slices = round(STACK_UM.get(size, 480.0) / voxel_um)
    rows = []
    for seed in range(placements):
        volume, truth = placed_xray_stack(twin, seed, n_slices, voxel_um)
        found = locate_slice(twin.mu_xray_per_um, twin.pixel_size_um, volume, voxel_um)
        height, rotation, shift = pose_errors(found.map_to_xct, truth)
        low, high = found.height_interval_um
        rows.append(
            (
                abs(height),
                rotation,
                shift,
                bool(height_warning(found, voxel_um)),
                low <= truth[0, 3] <= high,
            )
        )
    errors = np.asarray([r[:3] for r in rows])
    miss = errors[:, 0] > 0.5 * voxel_um
    flagged = np.asarray([r[3] for r in rows])
    return {
        "height_max": errors[:, 0].max(),
        "height_median": float(np.median(errors[:, 0])),
        "rotation_max": errors[:, 1].max(),
        "rotation_median": float(np.median(errors[:, 1])),
        "shift_max": errors[:, 2].max(),
        "shift_bar": twin.pixel_size_um,
        "misses": int(miss.sum()),
        "flagged": int(flagged.sum()),
        "silent": int((miss & ~flagged).sum()),
        "covers": sum(r[4] for r in rows),
    }


def run(
    twins: list[str],
    placements: int = 10,
    voxel_um: float = VOXEL_UM,
    console: Console | None = None,
) -> None:
    console = console or Console()
    table = Table(
        title=f"locate_slice over {placements} placements per twin, {voxel_um:g} um voxels "
        f"(bars: height {0.5 * voxel_um:g} um, rotation {ROTATION_BAR_DEG} deg, shift 1 pixel)"
    )
    for column in (
        "twin",
        "height max / median (um)",
        "rotation max / median (deg)",
        "shift max (um)",
        "height misses",
        "flagged",
        "misses unflagged",
        "interval covers",
        "s",
    ):
        table.add_column(column, justify="right")
    for spec in twins:
        size, seed = spec.split(":")
        start = time.perf_counter()
        r = sweep(size, int(seed), placements, voxel_um)
        table.add_row(
            spec,
            f"{r['height_max']:.1f} / {r['height_median']:.1f}",
            f"{r['rotation_max']:.2f} / {r['rotation_median']:.2f}",
            f"{r['shift_max']:.1f}",
            f"{r['misses']}",
            f"{r['flagged']}",
            f"{r['silent']}",
            f"{r['covers']} / {placements}",
            f"{time.perf_counter() - start:.0f}",
        )
        console.print(f"{spec} done", style="dim")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("twins", nargs="+", help="SIZE:SEED, e.g. tiny:5 small:6")
    parser.add_argument("--placements", type=int, default=10)
    parser.add_argument("--voxel-um", type=float, default=VOXEL_UM, help="X-ray voxel (um)")
    args = parser.parse_args()
    run(args.twins, args.placements, args.voxel_um, Console(width=160))


if __name__ == "__main__":
    main()

"""Single-crystal spots in the WAXS maps: the reduction's azimuthal outlier rejection
(reduce ``filter``) against the sinogram-domain spot filter
(:func:`jellyroll.sinogram.suppress_spots`), on the graphite overview map of a twin.

The raw WAXS frames of the twin carry spots (2 % of frames) and zingers (1 %); its
pre-integrated scan of the same slice carries neither. The anchor is the graphite overview
map reconstructed from that spot-free scan: each variant's map is compared with it inside
the cell (relative RMS difference) and outside it, where the truth is zero (streak energy:
the mean square there, relative to the anchor's mean square inside the cell).
"""

from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from unittest import mock

import h5py
import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import ndimage

import jellyroll.sinogram as sg
from jellyroll.phantom.write import write_phantom
from jellyroll.phases import GRAPHITE_OVERVIEW_WINDOW, window_integrals
from jellyroll.recon import ParallelGeometry, reconstruct
from jellyroll.reduce.options import ReduceOptions
from jellyroll.reduce.run import run_reduce
from jellyroll.results import read_sinogram
from jellyroll.unroll import find_cell

SIZE = "tiny"
WAXS = {"npt": 300, "q_range": (0.8, 5.2)}


def _graphite_map(sinogram, data: np.ndarray) -> np.ndarray:
    """The graphite overview map (SART, 10 sweeps) of a sinogram's cube ``data``."""
    geometry = ParallelGeometry.from_scan(
        sinogram.rotation_angle_deg, sinogram.translation_mm, sinogram.rotation_centre_mm
    )
    window = window_integrals(sinogram.q_A, data, GRAPHITE_OVERVIEW_WINDOW, shoulder_bins=0)
    return reconstruct(np.nan_to_num(window), geometry, "sart", 10).data[..., 0]


def run(console: Console | None = None, folder: Path | None = None) -> None:
    """Print the table; ``folder`` keeps the twins' scans between runs (written if absent)."""
    console = console or Console()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = folder or Path(tmp)
        for name, raw in (("raw", True), ("clean", False)):
            if not (folder / name / "truth.h5").is_file():
                write_phantom(folder / name, size=SIZE, seed=2, raw=raw, nxct=False)
        clean = folder / "clean" / "waxs_scan.h5"
        reference = read_sinogram(
            run_reduce(clean, folder / "clean.h5", ReduceOptions(spot_filter=False)).output
        )
        # false positives: the spot filter on the spot-free scan
        touched = read_sinogram(run_reduce(clean, folder / "clean_filtered.h5").output)
        anchor = _graphite_map(reference, reference.data)
        with h5py.File(folder / "clean" / "truth.h5", "r") as f:
            cell = find_cell(f["/entry/maps/attenuation/data"][()])  # same grid as the maps
        ny, nx = anchor.shape
        yy, xx = np.mgrid[:ny, :nx]
        r = np.hypot(xx - cell.x, yy - cell.y)
        inside, outside = r < cell.radius - 1, (r > cell.radius + 3) & (r < min(ny, nx) / 2)
        scale = np.mean(anchor[inside] ** 2)
        rows = []
        for name in ("none", "sigma-clip", "trimmed-mean"):
            for spot_filter in (False, True):
                options = ReduceOptions(filter=name, spot_filter=spot_filter, **WAXS)
                tracemalloc.start()
                start = time.perf_counter()
                report = run_reduce(folder / "raw" / "waxs_scan.h5", folder / f"{name}.h5", options)
                seconds = time.perf_counter() - start
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                sinogram = read_sinogram(report.output)
                replaced = int(sinogram.attrs.get("spot_cells_replaced", 0))
                graphite = _graphite_map(sinogram, sinogram.data)
                error = np.sqrt(np.mean((graphite - anchor)[inside] ** 2) / scale)
                streaks = np.mean(graphite[outside] ** 2) / scale
                label = f"reduce filter {name}" + (" + sinogram spot filter" if spot_filter else "")
                rows.append((label, error, streaks, seconds, replaced, peak))
        anchor_streaks = np.mean(anchor[outside] ** 2) / scale
        false_positives = int(touched.attrs["spot_cells_replaced"])
        touched_error = np.sqrt(
            np.mean((_graphite_map(touched, touched.data) - anchor)[inside] ** 2) / scale
        )
    table = Table(
        title=f"graphite overview map of the {SIZE} twin's raw WAXS scan (spots in 2 % of frames) "
        "against the same slice's spot-free scan"
    )
    for column in ("variant", "rel. RMS vs spot-free", "streak energy", "ratio to anchor",
                   "reduction time", "cells replaced", "reduction peak MB (traced)"):  # fmt: skip
        table.add_column(column)
    table.add_row("anchor: spot-free scan", "0", f"{anchor_streaks:.2e}", "1", "", "", "")
    table.add_row(
        "spot-free scan + sinogram spot filter", f"{touched_error:.2e}", "", "", "",
        f"{false_positives} of {reference.data.size}", "",
    )  # fmt: skip
    for label, error, streaks, seconds, replaced, peak in rows:
        table.add_row(
            label, f"{error:.4f}", f"{streaks:.2e}", f"{streaks / anchor_streaks:.2f}",
            f"{seconds:.2f} s", str(replaced), f"{peak / 2**20:.0f}",
        )  # fmt: skip
    console.print(table)
    run_filter_speed(console)


def run_filter_speed(console: Console, shape: tuple[int, int, int] = (300, 1024, 256)) -> None:
    """The sinogram spot filter's stage (:func:`jellyroll.sinogram.suppress_spots_in_place`)
    on a study-sized Poisson sinogram with its errors (300 angles x 1024 translations, 256
    of the 2000 channels), beside the same stage with scipy's median filter for the local
    noise (what the numba sliding median replaced; the same result)."""
    rng = np.random.default_rng(0)
    counts = rng.poisson(50.0, shape).astype(np.float32)
    errors = np.sqrt(np.maximum(counts, 1.0)).astype(np.float32)
    sg.window_median(counts[:2, :8, :1].astype(np.float64), 1, 3)  # compiled or cached first

    def scipy_median(values: np.ndarray, reach_a: int, reach_t: int) -> np.ndarray:
        size = (2 * reach_a + 1, 2 * reach_t + 1, 1)
        return ndimage.median_filter(values, size=size, mode="nearest")

    seconds = {}
    for label, median in (("jellyroll (numba)", sg.window_median), ("scipy", scipy_median)):
        data = counts.copy()
        with mock.patch.object(sg, "window_median", median):
            start = time.perf_counter()
            sg.suppress_spots_in_place(data, errors)
            seconds[label] = time.perf_counter() - start
    ours, theirs = seconds["jellyroll (numba)"], seconds["scipy"]
    console.print(
        f"sinogram spot filter on {' x '.join(map(str, shape))} (float32, with errors): "
        f"{ours:.1f} s, with scipy's median filter {theirs:.1f} s: {theirs / ours:.1f}x"
    )


if __name__ == "__main__":
    run(folder=Path(sys.argv[1]) if len(sys.argv) > 1 else None)

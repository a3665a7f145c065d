"""Digital-twin speed: the multi-map pencil-beam projector against astra's per-map loop,
and the time of ``jellyroll phantom --size small`` against its one-minute budget."""

from __future__ import annotations

import tempfile
import time

import astra
import numpy as np
from rich.console import Console
from rich.table import Table

from jellyroll.phantom.acquisition import project
from jellyroll.phantom.write import write_phantom
from jellyroll.recon.astra_backend import astra_geometries
from jellyroll.recon.geometry import ParallelGeometry


def _astra_per_map(maps: np.ndarray, angles_deg: np.ndarray, translations_mm: np.ndarray) -> float:
    """Seconds for astra's CPU line projector looped over the maps (ideal line beam), on the
    scan geometry that jellyroll projects (rotation centre 0)."""
    volume, geometry = astra_geometries(
        ParallelGeometry.from_scan(angles_deg, translations_mm, 0.0)
    )
    projector = astra.create_projector("line", geometry, volume)
    start = time.perf_counter()
    for image in maps:
        sinogram_id, _ = astra.create_sino(image, projector)
        astra.data2d.delete(sinogram_id)
    elapsed = time.perf_counter() - start
    astra.projector.delete(projector)
    return elapsed


def run(console: Console | None = None) -> None:
    console = console or Console()
    rng = np.random.default_rng(0)
    n, n_maps, pixel = 512, 28, 10.0  # the twin projects ~28 maps (components, shoulder, mu)
    maps = rng.random((n_maps, n, n), dtype=np.float32)
    angles = np.linspace(0, 180, 300, endpoint=False)
    translations = (np.arange(n) - (n - 1) / 2) * pixel / 1000
    project(maps[:1, :32, :32], pixel, angles[:2], translations[:32])  # JIT warm-up
    start = time.perf_counter()
    project(maps, pixel, angles, translations, beam_fwhm_um=20.0)
    ours = time.perf_counter() - start
    anchor = _astra_per_map(maps, angles, translations)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        write_phantom(scratch, preset="aged_charged", size="small")
        phantom_s = time.perf_counter() - start
    table = Table(title="digital twin")
    for column in ("measurement", "jellyroll", "anchor", "ratio"):
        table.add_column(column)
    table.add_row(
        f"project {n_maps} maps {n}^2, 300 angles x {n} translations (20 um beam)",
        f"{ours:.2f} s",
        f"astra line projector, per map, ideal beam: {anchor:.2f} s",
        f"{anchor / ours:.1f}x faster",
    )
    table.add_row(
        "jellyroll phantom --size small (raw WAXS+SAXS, NXCT, truth)",
        f"{phantom_s:.1f} s",
        "budget 60 s",
        f"{60.0 / phantom_s:.1f}x under budget",
    )
    console.print(table)

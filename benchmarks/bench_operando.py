"""Operando series: speed at the study's size and accuracy on the small twin.

1. Speed: the twin's paper-size cell on the study's operando grid (512 translations of
   20 um x 3 x 50 interlaced angles, pre-integrated WAXS, 10 steps), analysed whole by
   :func:`~jellyroll.operando.run.run_operando` (reduce, shared centre, SART of the
   operando channels, maps, analysis), against the study's method for the same
   reconstructions: astra-toolbox SART per channel, timed on a sample of channels of one
   step and scaled to every channel of every step. The series runs in a fresh process:
   its peak resident memory is the analysis' own.
2. Accuracy: the small twin, 7 steps, seeds 0, 1, 2 (and 3, 4, never tuned on), against
   its truth (the issue's bars: anode shares within 0.05 at every step; every case-B zone
   found, lag within 0.1, core area within 25 % wherever the true core exceeds 4 map
   pixels). The core's truth is the coating of the zone's pixels weighted by its poorly
   lithiated share; the damaged area alone so weighted (the truth's
   ``damaged_area_um2``, which leaves out the regular coating that shares the zone's
   pixels and its lithiation) is shown beside it.
"""

from __future__ import annotations

import multiprocessing
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
from rich.console import Console
from rich.table import Table

from jellyroll.io.nexus import read_table
from jellyroll.operando.core import soc_at_half
from jellyroll.operando.options import OperandoOptions
from jellyroll.operando.run import run_operando
from jellyroll.phantom.parameters import SIZES
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import _write_operando
from jellyroll.recon import ParallelGeometry, reconstruct
from jellyroll.recon.options import ReconstructOptions
from jellyroll.recon.qwindows import select_channels
from jellyroll.results import read_sinogram
from jellyroll.results.operando import PHASES, OperandoResult

STUDY_STEPS = 10
ACCURACY_SEEDS = (0, 1, 2, 3, 4)
ASTRA_SAMPLE = 4
"""Channels astra reconstructs (one step), scaled to every channel of every step."""
CACHE = Path(tempfile.gettempdir()) / "jellyroll-bench-operando"
"""Simulated series are kept here between runs (simulation is not what is timed)."""


def _series(name: str, size: str, seed: int, n_steps: int) -> Path:
    folder = CACHE / name
    if not (folder / "truth.h5").exists():
        twin = make_twin("aged_charged", SIZES[size], seed=seed)
        _write_operando(folder, twin, n_steps, seed, Console(quiet=True))
    return folder


def _analyse(series: Path, name: str) -> tuple[OperandoResult, float]:
    """(result, seconds) of a whole run from scratch."""
    out = CACHE / f"{name}_out"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = run_operando(series, out / "operando.h5")
    return done.result, time.perf_counter() - start


def _timed_in_child(series: Path, name: str) -> tuple[float, str, float]:
    """(seconds, first step's run file, peak RSS in MiB) of a whole run in a fresh process,
    so that the peak memory is the analysis' own (not the simulation's)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        seconds, first = pool.apply(_child, (str(series), name))
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, first, peak_mib


def _child(series: str, name: str) -> tuple[float, str]:
    result, seconds = _analyse(Path(series), name)
    return seconds, result.steps[0]


def _astra_seconds(run: Path, channels: str, n_steps: int) -> float:
    """astra SART per channel, as the study did, for every step's operando channels."""
    sinogram = read_sinogram(run, errors=False)
    picked = select_channels(sinogram.q_A, channels)
    sample = picked[np.linspace(0, picked.size - 1, ASTRA_SAMPLE).round().astype(int)]
    geometry = ParallelGeometry.from_scan(
        sinogram.rotation_angle_deg, sinogram.translation_mm, sinogram.rotation_centre_mm
    )
    data = np.nan_to_num(sinogram.data[..., sample])
    iterations = ReconstructOptions().iterations
    theirs = reconstruct(data, geometry, "sart", iterations, backend="astra")
    return theirs.seconds * picked.size / sample.size * n_steps


def _speed(console: Console) -> None:
    series = _series("study", "paper", 0, STUDY_STEPS)
    seconds, first, peak = _timed_in_child(series, "study")
    astra = _astra_seconds(Path(first), OperandoOptions().channels, STUDY_STEPS)
    table = Table(title="operando series at the study's size (512 x 3 x 50, 10 steps)")
    for column in ("jellyroll operando (whole series)", "astra SART per channel", "ratio"):
        table.add_column(column)
    table.add_row(
        f"{seconds:.0f} s, peak RSS {peak:.0f} MiB",
        f"{astra:.0f} s (reconstruction only; {ASTRA_SAMPLE} channels timed, scaled)",
        f"{astra / seconds:.1f}x faster",
    )
    console.print(table)


def _truth(folder: Path) -> tuple[np.ndarray, np.ndarray, object]:
    with h5py.File(folder / "truth.h5") as f:
        fractions = np.stack([f[f"entry/{p}/data"][()] for p in PHASES], axis=-1)
        zones = f["entry/zone_id/data"][()]
        cores = read_table(f["entry/cores"])
    return fractions, zones, cores


def _curve(fractions: np.ndarray, mask: np.ndarray) -> np.ndarray:
    amounts = fractions[:, mask].sum(axis=1)
    return amounts / amounts.sum(axis=1, keepdims=True)


def _accuracy(console: Console) -> None:
    table = Table(title="operando, small twin, 7 steps: measured against the truth")
    for column in ("seed", "anode |share - truth| max", "zones found", "lag error max",
                   "core area error max (true core > 4 px)",
                   "against the damaged area alone", "seconds"):  # fmt: skip
        table.add_column(column)
    for seed in ACCURACY_SEEDS:
        folder = _series(f"small_{seed}", "small", seed, 7)
        result, seconds = _analyse(folder, f"small_{seed}")
        fractions, zones, cores = _truth(folder)
        soc = np.linspace(0, 1, fractions.shape[0])
        anode = (fractions.sum(-1)[0] > 0.05) & (zones == 0)
        truth_anode = _curve(fractions, anode)
        anode_error = np.abs(result.curves["anode"] - truth_anode).max()
        half_anode = soc_at_half(soc, 1 - truth_anode[:, 2])
        pixel_area = float(abs(result.x_um[1] - result.x_um[0])) ** 2
        found, lag_errors, area_errors, damaged_errors = 0, [], [], []
        ids = np.unique(zones[zones > 0])
        for zone in ids:
            rows = cores[cores["zone_id"] == zone]
            distance = np.hypot(
                result.zones_table["x_um"] - rows["x_um"].iloc[0],
                result.zones_table["y_um"] - rows["y_um"].iloc[0],
            )
            if not len(distance) or distance.min() > 100.0:
                continue
            found += 1
            match = int(np.argmin(distance))
            truth_lag = soc_at_half(soc, 1 - _curve(fractions, zones == zone)[:, 2]) - half_anode
            lag_errors.append(abs(result.zones_table["lag_soc"].iloc[match] - truth_lag))
            measured = result.cores["area_um2"][match]
            for column, errors in (("area_um2", area_errors), ("damaged_area_um2", damaged_errors)):
                truth_area = rows[column].to_numpy()
                big = truth_area > 4 * pixel_area
                errors += list(np.abs(measured[big] / truth_area[big] - 1))
        table.add_row(
            str(seed),
            f"{anode_error:.3f}",
            f"{found} of {ids.size} (+{len(result.zones_table) - found} not true)",
            f"{max(lag_errors, default=np.nan):.3f}",
            f"{max(area_errors, default=np.nan):.0%}",
            f"{max(damaged_errors, default=np.nan):.0%}",
            f"{seconds:.0f}",
        )
    console.print(table)


def run(console: Console | None = None) -> None:
    console = console or Console()
    _accuracy(console)
    _speed(console)

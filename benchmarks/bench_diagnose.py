"""Diagnosis at the study's size: ``jellyroll diagnose WAXS.h5 SAXS.h5 -o OUT.h5`` on the
1024^2 maps (10 um) of the ``paper`` twin, in a subprocess: wall and CPU time, peak RSS of
the child, and the agglomerates found against the twin's truth (recall, precision, median
size error, as the report's truth section computes them), beside its anchor in the same
run: what a user's own script would do, :func:`skimage.feature.blob_log` on the same SAXS
map (read from the same run file), timed, compared with the same truth at skimage's
default threshold and at the best of a few (chosen against the truth: the anchor's best
case, which a user without the truth does not reach).

The run files (compressed HDF5, written by the project's own :func:`write_map_set`): the
SAXS intensity and attenuation maps are reconstructions of a noisy simulated scan of the
twin (the study's 3 x 100 interlaced angles, 20 um beam; ``reconstruct_twin`` of the
defect tests: the SAXS window's counting noise, 0.2 % of rays dropped, a 1e5-count
monitor, filtered backprojection), not the truth. The WAXS phase maps (LiC6, LiC12,
poorly lithiated graphite, both NMC phases) are the twin's projected volume fractions
reconstructed by the same filtered backprojection, without noise (a full reduction and
reconstruction of the 1000 WAXS channels would take hours here). The d* map is the twin's
true one (d* is fitted per pixel on the reconstructed SAXS patterns, which this bench does
not make). The attenuation map is written into both runs, as each scan's diode gives one.
Each run file is an index linking its maps stage file alone (no reduction or
reconstruction stage beside it: no region-averaged SAXS profiles, no graphite unmixing).
``truth.h5`` is the twin's, as ``jellyroll phantom`` writes it.

Given a folder (``python -m benchmarks.bench_diagnose FOLDER``) the files are kept there
and a rerun skips making them; ``--profile OUT.prof`` runs the command under cProfile.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import h5py
import numpy as np
import pandas as pd
from rich.console import Console
from skimage.feature import blob_log

from benchmarks.volumes import command_cost
from jellyroll.defects.options import DiagnoseOptions
from jellyroll.defects.truth import TruthComparison, compare_with_truth, read_true_agglomerates
from jellyroll.phantom.scan import project_twin, scan_geometry
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import _write_truth
from jellyroll.recon.fbp import fbp
from jellyroll.results import (
    GRAPHITE_PHASE_MAPS,
    NMC_PHASE_MAPS,
    Map,
    MapName,
    MapSet,
    read_diagnosis,
    read_map_set,
    write_map_set,
)

SEED = 3
PRESET = "aged_charged"
GENERATOR_VERSION = 2  # bump when the files change: a kept folder is then made again
DEFECT_SCANS = Path(__file__).resolve().parents[1] / "tests" / "defects" / "conftest.py"


def _defect_scans() -> ModuleType:
    """The defect tests' scan helpers, ``reconstruct_twin`` and ``recon_geometry`` (the one
    home of the noisy SAXS and monitor model of a reconstructed map; the tests are no
    package, so loaded from its file)."""
    spec = importlib.util.spec_from_file_location("defect_scans", DEFECT_SCANS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def write_runs(folder: Path, console: Console) -> None:
    """``waxs.h5``, ``saxs.h5`` (run files with their maps) and ``truth.h5`` in ``folder``
    (skipped when made by this version already)."""
    done = folder / f"made-v{GENERATOR_VERSION}"
    if done.is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    twin = make_twin(PRESET, "paper", seed=SEED)
    scans = _defect_scans()
    reconstructed = scans.reconstruct_twin(twin, SEED)
    geometry = scan_geometry(twin)
    projections = project_twin(twin, geometry)
    phases = [*GRAPHITE_PHASE_MAPS, *NMC_PHASE_MAPS]
    columns = [projections.names.index(str(name)) for name in phases]
    fractions = fbp(scans.recon_geometry(twin, geometry), projections.values[..., columns])
    y_um, x_um = twin.raster.axes_um()
    attenuation = Map(reconstructed.attenuation, "1/um")
    waxs = {name: Map(fractions[..., k], "volume fraction") for k, name in enumerate(phases)}
    saxs = {
        MapName.SAXS_INTENSITY: Map(reconstructed.saxs, "arb. units / um x 1/angstrom"),
        MapName.D_STAR: Map(twin.true_dstar_nm, "nm"),
    }
    for run, maps in (("waxs", waxs), ("saxs", saxs)):
        made = MapSet({**maps, MapName.ATTENUATION: attenuation}, x_um, y_um)
        write_map_set(folder / f"{run}.h5", made, {"bench": "bench_diagnose"})
        # no reduce or reconstruct stage to chain it to: an index linking the maps alone
        with h5py.File(folder / f"{run}.h5", "w") as index:
            index["entry/maps"] = h5py.ExternalLink(f"{run}.maps.h5", "/entry/maps")
    _write_truth(folder / "truth.h5", twin, geometry, {"bench": "bench_diagnose"}, None)
    done.touch()
    console.print(f"made the paper twin's run files in {time.perf_counter() - start:.0f} s")


DEFAULT_THRESHOLD = 0.2
"""skimage's default threshold of :func:`skimage.feature.blob_log`: the anchor timed."""
ANCHOR_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)
"""Thresholds of :func:`skimage.feature.blob_log` tried for the anchor's best (0.2: its
default, the one timed)."""


def blob_log_agglomerates(
    saxs: np.ndarray, pixel_um: float, critical_um: float, threshold: float = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """The anchor: Laplacian-of-Gaussian blobs (skimage's defaults but for the scale range,
    1-8 px, a few pixels to four times the study's 40 um) of the SAXS map scaled to its
    99.9th percentile; diameter 2 sqrt(2) sigma, case B above ``critical_um``."""
    image = np.nan_to_num(saxs) / np.nanpercentile(saxs, 99.9)
    blobs = blob_log(
        np.clip(image, 0, 1), min_sigma=1, max_sigma=8, num_sigma=8, threshold=threshold
    )
    ny, nx = saxs.shape
    diameter = 2 * np.sqrt(2) * blobs[:, 2] * pixel_um
    return pd.DataFrame(
        {
            "id": np.arange(1, len(blobs) + 1),
            "x_um": (blobs[:, 1] - (nx - 1) / 2) * pixel_um,
            "y_um": (blobs[:, 0] - (ny - 1) / 2) * pixel_um,
            "equivalent_diameter_um": diameter,
            "case": np.where(diameter > critical_um, "B", "A"),
        }
    )


def _f1(found: TruthComparison) -> float:
    """Harmonic mean of recall and precision (0 when either is 0 or NaN)."""
    recall, precision = np.nan_to_num([found.recall, found.precision])
    return 2 * recall * precision / (recall + precision) if recall * precision > 0 else 0.0


def _scores(found: TruthComparison) -> str:
    return (
        f"{found.n_found} found, recall {found.recall:.0%}, precision {found.precision:.0%}, "
        f"median size error {found.median_size_error:.0%}, class agreement "
        f"{found.class_agreement:.0%}"
    )


def run(
    console: Console | None = None, folder: Path | None = None, profile: Path | None = None
) -> None:
    console = console or Console()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        folder = folder or Path(tmp)
        write_runs(folder, console)
        output = folder / "DIAGNOSIS.h5"
        output.unlink(missing_ok=True)
        profiled = [] if profile is None else ["-m", "cProfile", "-o", str(profile)]
        python = [sys.executable, *profiled]
        command = [*python, "-m", "jellyroll.cli", "diagnose", str(folder / "waxs.h5"),
                   str(folder / "saxs.h5"), "-o", str(output)]  # fmt: skip
        seconds, cpu, peak = command_cost(command)
        if not output.is_file():  # cProfile exits 0 when the command fails
            raise RuntimeError(f"{output} not written: run without --profile to see why")
        result = read_diagnosis(output)
        critical = DiagnoseOptions().critical_diameter_um
        truth = read_true_agglomerates(folder / "truth.h5")
        ours = compare_with_truth(result.agglomerates, truth, result.pixel_size_um, critical)
        start, start_cpu = time.perf_counter(), time.process_time()
        maps = read_map_set(folder / "saxs.h5")
        blobs = blob_log_agglomerates(maps[MapName.SAXS_INTENSITY], maps.pixel_size_um, critical)
        anchor, anchor_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        theirs = compare_with_truth(blobs, truth, maps.pixel_size_um, critical)
        saxs, pixel = maps[MapName.SAXS_INTENSITY], maps.pixel_size_um
        tried = {
            threshold: theirs
            if threshold == DEFAULT_THRESHOLD
            else compare_with_truth(
                blob_log_agglomerates(saxs, pixel, critical, threshold), truth, pixel, critical
            )
            for threshold in ANCHOR_THRESHOLDS
        }
        # the command line and the modules the command imports when it runs
        imports = command_cost(
            [sys.executable, "-c", "import jellyroll.cli, jellyroll.defects.run"]
        )[0]
        best = max(tried, key=lambda threshold: _f1(tried[threshold]))
    ny, nx = maps[MapName.SAXS_INTENSITY].shape
    console.print(
        f"jellyroll diagnose, paper twin ({ny}x{nx} maps of {maps.pixel_size_um:g} um, "
        f"{len(truth)} true agglomerates in the slice): {seconds:.1f} s (CPU {cpu:.1f} s, the "
        f"machine's load apart), {seconds / anchor:.1f} x the anchor (skimage blob_log on the "
        f"SAXS map, read included: {anchor:.1f} s, CPU {anchor_cpu:.1f} s); peak RSS "
        f"{peak:.2f} GiB; {len(result.bends)} bends. Of its time, {imports:.1f} s is the "
        "interpreter's start and imports (the anchor runs in this process, imported); its run "
        "files hold the maps alone (no reconstruction stage: no region-averaged SAXS "
        "profiles, no graphite unmixing)"
    )
    console.print(f"  jellyroll diagnose: {_scores(ours)}")
    console.print(
        f"  anchor blob_log:    {_scores(theirs)} (threshold {DEFAULT_THRESHOLD:g}, its default)"
    )
    console.print(
        f"  anchor at its best threshold ({best:g} of {', '.join(map(str, ANCHOR_THRESHOLDS))},"
        f" chosen against the truth, which a user has not): {_scores(tried[best])}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=None, help="keep the files here")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output of the run")
    arguments = parser.parse_args()
    run(folder=arguments.folder, profile=arguments.profile)

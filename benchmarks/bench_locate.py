"""Slice location speed, memory and accuracy: ``jellyroll locate`` on a 1024^3 X-ray volume
(uint16 HDF5, chunked, streamed) with a 1024^2 attenuation map, timed beside its anchor, one
streamed read of the whole volume, in the same run; peak RSS of the locate process.

The twin: the study-sized ``paper`` cell (1024 translations of 10 um), its true attenuation
map at the SWAXS energy as the map, and a 60 keV lab X-ray volume of 1024 slices of 10 um
(``--n 512``: 512 slices of 20 um) rasterised slice by slice around the map plane placed at
random (:func:`jellyroll.phantom.write.twin_placement`), each slice blurred by 0.7 voxel,
with Gaussian noise of 2 % of the range, written as it is made (never held whole).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from rich.console import Console
from scipy import ndimage

from benchmarks.volumes import command_cost, streamed_read_seconds
from jellyroll.locate.core import pose_errors, pose_parameters
from jellyroll.phantom.materials import attenuation_map, mu_table
from jellyroll.phantom.twin import Twin, make_twin
from jellyroll.phantom.write import XRAY_LAB_ENERGY_KEV, nxct_fraction_slices, twin_placement
from jellyroll.results.location import read_location
from jellyroll.results.run import Map, MapSet, write_maps_group

SEED = 3
FIELD_OF_VIEW_UM = 10240.0


def _write_inputs(folder: Path, twin: Twin, n: int, console: Console) -> np.ndarray:
    """RUN.h5 with the map and xct.h5::/data (n^3 uint16); returns the true map_to_xct."""
    y_um, x_um = twin.raster.axes_um()
    with h5py.File(folder / "RUN.h5", "w") as f:
        maps = MapSet({"attenuation": Map(twin.mu_xray_per_um, "1/um")}, x_um, y_um)
        write_maps_group(f.create_group("entry"), maps)
    voxel = FIELD_OF_VIEW_UM / n
    map_to_xct, _ = twin_placement(SEED, (FIELD_OF_VIEW_UM,) * 3)
    mu = mu_table("xray", energy_keV=XRAY_LAB_ENERGY_KEV)
    top = 1.2 * max(mu.values())
    rng = np.random.default_rng(SEED)
    start = time.perf_counter()
    with h5py.File(folder / "xct.h5", "w") as f:
        data = f.create_dataset("data", (n, n, n), np.uint16, chunks=(1, n, n))
        data.attrs["voxel_size_um"] = voxel
        for k, _, fractions in nxct_fraction_slices(twin, n, voxel, map_to_xct):
            image = ndimage.gaussian_filter(attenuation_map(fractions, mu), 0.7)
            image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(0.02 * top)
            data[k] = np.clip(image / top * 60000 + 2000, 0, 65535).astype(np.uint16)
    console.print(f"wrote the {n}^3 volume in {time.perf_counter() - start:.0f} s")
    return map_to_xct


def run(console: Console | None = None, n: int = 1024) -> None:
    console = console or Console()
    twin = make_twin("aged_charged", "paper", seed=SEED)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        folder = Path(tmp)
        truth = _write_inputs(folder, twin, n, console)
        anchor = streamed_read_seconds(folder / "xct.h5")
        command = [sys.executable, "-m", "jellyroll.cli", "locate", str(folder / "RUN.h5"),
                   f"{folder / 'xct.h5'}::/data", "-o", str(folder / "LOCATION.h5")]  # fmt: skip
        seconds, cpu, peak = command_cost(command)
        found = read_location(folder / "LOCATION.h5")
    height, rotation, shift = pose_errors(found.map_to_xct, truth)
    true_height = pose_parameters(truth)["height_um"]
    voxel = FIELD_OF_VIEW_UM / n
    low, high = found.height_interval_um
    console.print(
        f"jellyroll locate, {n}^3 X-ray volume ({voxel:g} um voxels) with a 1024^2 map: "
        f"{seconds:.1f} s (target < 120 s; CPU time {cpu:.1f} s, the machine's load apart), "
        f"{seconds / anchor:.1f} x one streamed read of the volume ({anchor:.1f} s); peak RSS "
        f"{peak:.2f} GiB"
    )
    console.print(
        f"placement error: height {height:+.1f} um ({height / voxel:+.2f} voxel), rotation "
        f"{rotation:.2f} deg, shift {shift:.1f} um ({shift / twin.pixel_size_um:.2f} map pixel); "
        f"correlation {found.similarity:.3f}; height uncertain by "
        f"{found.height_uncertainty_um:.1f} um ({found.height_defects:.1f} effective defects)"
        f"{', flagged' if found.height_warning else ''}; its interval "
        f"{'covers' if low <= true_height <= high else 'misses'} the truth "
        f"({low - true_height:+.1f} to {high - true_height:+.1f} um about it)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="slices per side of the volume")
    run(n=parser.parse_args().n)

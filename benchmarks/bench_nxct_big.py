"""NXCT out of core: ``jellyroll nxct`` end to end (registration, resampling, fusion,
segmentation, bends) on a 2048^3 uint16 neutron volume (16 GiB) and a 1024^3 X-ray volume,
in a subprocess: wall and CPU time, peak RSS of the child, registration error against the
truth, beside its anchor (one streamed read of the neutron volume) in the same run.

The pair (``--n N``: an N^3 neutron and an (N/2)^3 X-ray volume; ``JELLYROLL_BENCH_NXCT_N``
under ``make bench``): the small twin (seed 3, the 2.7 mm cell of ``bench_nxct``) in a
3.2 mm cube, its X-ray (60 keV) and neutron attenuation rasterised slice by slice into a
scratch file on the X-ray grid, or on 512^3 (6.25 um) where the X-ray grid is finer
(:func:`world_planes`). The X-ray volume is the X-ray attenuation interpolated onto its grid
(3.2 mm / (N/2) voxels), blurred by 0.7 voxel in-plane, with 2 % noise; the neutron one,
twice finer, the neutron attenuation resampled slab by slab through the twin's random
remount (any angle, tilt <= 5 deg, shifts), blurred by 1 voxel in-plane, with 3 % noise.
Both uint16, chunked HDF5 compressed with Blosc LZ4, written as they are made: never held
whole. They are cached under ``$JELLYROLL_BENCH_CACHE`` (default ``~/.cache/jellyroll/bench``)
in a folder named by the parameters, so a rerun skips the generation (delete the folder to
make them again).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
from rich.console import Console
from scipy import ndimage

from benchmarks.volumes import command_cost, streamed_read_seconds
from jellyroll.nxct.register import rms_error, rms_error_along
from jellyroll.nxct.resample import resample_slabs
from jellyroll.phantom.materials import attenuation_map, mu_table
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import (
    NEUTRON_WAVELENGTH_A,
    XRAY_LAB_ENERGY_KEV,
    nxct_fraction_slices,
    twin_placement,
    twin_remount,
)
from jellyroll.results.nxct import read_nxct

SEED = 3
GENERATOR_VERSION = 1  # bump when the generated pair changes: the cache folder changes with it
SLAB = 16
WORLD_MAX = 512


def world_planes(n: int) -> int:
    """Side of the grid the twin is rasterised on for an N^3 neutron volume: the X-ray grid,
    at most :data:`WORLD_MAX` (the rasteriser's ~3 s per 1024^2 slice would take most of an
    hour at N = 2048); both volumes are interpolated from it."""
    return min(n // 2, WORLD_MAX)


def cache_folder(n: int) -> Path:
    """Where the N^3 pair is cached (never in the repository)."""
    root = Path(os.environ.get("JELLYROLL_BENCH_CACHE", Path.home() / ".cache/jellyroll/bench"))
    return root / f"nxct-n{n}-w{world_planes(n)}-seed{SEED}-v{GENERATOR_VERSION}"


def _to_uint16(image: np.ndarray, top: float, noise: float, rng: np.random.Generator):
    """Attenuation (1/um) plus Gaussian noise of ``noise`` x ``top``, as uint16 grey levels."""
    image = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(noise * top)
    return np.clip(image * np.float32(50000 / top) + 10000, 0, 65535).astype(np.uint16)


def _create(f: h5py.File, n: int, voxel_um: float, chunk_planes: int) -> h5py.Dataset:
    data = f.create_dataset(
        "data",
        (n, n, n),
        np.uint16,
        chunks=(chunk_planes, min(n, 256), min(n, 256)),
        **hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
    )
    data.attrs["voxel_size_um"] = voxel_um
    return data


def write_pair(n: int, console: Console) -> Path:
    """Make (or find) the cached pair: ``xct.h5::/data``, ``nct.h5::/data``, ``truth.json``."""
    folder = cache_folder(n)
    if (folder / "truth.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    twin = make_twin("aged_charged", "small", seed=SEED)
    m = n // 2
    fov = twin.size.n_translations * twin.pixel_size_um
    neutron_voxel = fov / n
    map_to_world, _ = twin_placement(SEED, (fov,) * 3)
    remount, draws = twin_remount(SEED, (fov,) * 3)  # neutron frame -> world = X-ray frame
    mu_x = mu_table("xray", energy_keV=XRAY_LAB_ENERGY_KEV)
    mu_n = mu_table("neutron", wavelength_A=NEUTRON_WAVELENGTH_A)
    top_x, top_n = (1.2 * max(mu.values()) for mu in (mu_x, mu_n))
    rng = np.random.default_rng(SEED)
    start = time.perf_counter()
    world_path, xct_part, nct_part = (
        folder / name for name in ("world.h5", "xct.part", "nct.part")
    )
    w = world_planes(n)
    world_voxel = fov / w
    with h5py.File(world_path, "w") as fw:
        world = {
            name: fw.create_dataset(name, (w, w, w), np.float32, chunks=(1, w, w))
            for name in ("xray", "neutron")
        }
        for k, _, fractions in nxct_fraction_slices(twin, w, world_voxel, map_to_world):
            world["xray"][k] = attenuation_map(fractions, mu_x)
            world["neutron"][k] = attenuation_map(fractions, mu_n)
    console.print(f"rasterised the {w}^3 world in {time.perf_counter() - start:.0f} s")
    # (file, side, volume frame -> world, in-plane blur (voxels), noise (of the range), top)
    made = {"xray": (xct_part, m, np.eye(4), 0.7, 0.02, top_x),
            "neutron": (nct_part, n, remount, 1.0, 0.03, top_n)}  # fmt: skip
    for name, (path, size, to_world, blur, noise, top) in made.items():
        start = time.perf_counter()
        with h5py.File(path, "w") as f, h5py.File(world_path, "r") as fw:
            data = _create(f, size, fov / size, 4 if name == "xray" else 8)
            for z0, values in resample_slabs(
                fw[name], world_voxel, to_world, (size,) * 3, fov / size, slab=SLAB
            ):
                ndimage.gaussian_filter(values, (0, blur, blur), output=values)
                data[z0 : z0 + values.shape[0]] = _to_uint16(values, top, noise, rng)
        console.print(f"wrote the {size}^3 {name} volume in {time.perf_counter() - start:.0f} s")
    world_path.unlink()
    xct_part.rename(folder / "xct.h5")
    nct_part.rename(folder / "nct.h5")
    truth = {"nct_to_xct": remount.tolist(), "neutron_voxel_um": neutron_voxel, "remount": draws}
    (folder / "truth.json").write_text(json.dumps(truth, indent=1))
    return folder


def run(
    console: Console | None = None,
    n: int | None = None,
    bend_slice_step: int = 16,
    profile: Path | None = None,
) -> None:
    console = console or Console()
    n = n or int(os.environ.get("JELLYROLL_BENCH_NXCT_N", "2048"))
    folder = write_pair(n, console)
    truth = json.loads((folder / "truth.json").read_text())
    anchor = streamed_read_seconds(folder / "nct.h5", slab=SLAB)
    output = folder / "NXCT.h5"
    output.unlink(missing_ok=True)
    python = [sys.executable] + ([] if profile is None else ["-m", "cProfile", "-o", str(profile)])
    command = [*python, "-m", "jellyroll.cli", "nxct", f"{folder / 'xct.h5'}::/data",
               f"{folder / 'nct.h5'}::/data", "-o", str(output),
               "--bend-slice-step", str(bend_slice_step)]  # fmt: skip
    seconds, cpu, peak = command_cost(command)
    found = read_nxct(output)
    voxel = truth["neutron_voxel_um"]
    true = np.asarray(truth["nct_to_xct"])
    error = rms_error(found.nct_to_xct, true, (n,) * 3, voxel) / voxel
    along, across = rms_error_along(found.nct_to_xct, true, (n,) * 3, voxel)
    with h5py.File(output, "r") as f:
        levels = {name: f["/entry/registration"].attrs.get(name, "") for name in
                  ("fine_level", "axial_level")}  # fmt: skip
    console.print(
        f"jellyroll nxct end to end, neutron {n}^3 uint16 ({n**3 * 2 / 2**30:.0f} GiB, "
        f"{voxel:g} um) / X-ray {n // 2}^3: {seconds:.0f} s (CPU {cpu:.0f} s, the machine's "
        f"load apart), {seconds / anchor:.1f} x one streamed read of the neutron volume "
        f"({anchor:.1f} s); peak RSS {peak:.2f} GiB; registration error {error:.2f} neutron "
        f"voxels RMS ({error * voxel:.2f} um; along the cell axis {along:.2f} um, across it "
        f"{across:.2f} um; fine level: {levels['fine_level']}; axial level: "
        f"{levels['axial_level']}); bends traced every {bend_slice_step}th X-ray "
        f"slice, {len(found.bends) if found.bends is not None else 0} found"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="neutron volume side (default 2048)")
    parser.add_argument("--bend-slice-step", type=int, default=16, help="trace every n-th slice")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output of the run")
    arguments = parser.parse_args()
    run(n=arguments.n, bend_slice_step=arguments.bend_slice_step, profile=arguments.profile)

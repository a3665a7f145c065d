"""Overview figure of a written phantom, made from its files alone (truth, scans, volumes)."""

from __future__ import annotations

from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the HDF5 compression filters)
import matplotlib
import numpy as np

from jellyroll.io.provenance import atomic_output
from jellyroll.io.volumes import read_volume
from jellyroll.phases import graphite_composite, nmc_composite

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def frame_sinogram(scan_path: Path, block: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total counts of every frame placed by its motor positions: (angles, translations, image).

    Reads the raw frames block by block; missing frames stay NaN.
    """
    with h5py.File(scan_path, "r") as f:
        data = f["/entry/instrument/detector/data"]
        angles = f["/entry/sample/rotation_angle"][()]
        translations = f["/entry/sample/translation"][()]
        totals = np.empty(data.shape[0])
        for start in range(0, data.shape[0], block):
            frames = data[start : start + block]
            totals[start : start + block] = np.where(frames > 0, frames, 0).sum(axis=(1, 2))
    unique_angles, angle_index = np.unique(angles, return_inverse=True)
    unique_translations, translation_index = np.unique(translations, return_inverse=True)
    image = np.full((unique_angles.size, unique_translations.size), np.nan)
    image[angle_index, translation_index] = totals
    return unique_angles, unique_translations, image


def overview_figure(phantom_dir: str | Path, output_png: str | Path) -> Path:
    """Write a 3 x 3 figure: true maps, a raw-scan sinogram and frame, and the NXCT slices."""
    folder = Path(phantom_dir)
    with h5py.File(folder / "truth.h5", "r") as f:
        maps = f["/entry/maps"]
        x_um = maps["saxs_intensity/x_um"][()]
        lic6, lic12, poor = (maps[n]["data"][()] for n in ("lic6", "lic12", "graphite_poor"))
        nmc_li, nmc_deli = (maps[n]["data"][()] for n in ("nmc_lithiated", "nmc_delithiated"))
        saxs = maps["saxs_intensity/data"][()]
        d_star = maps["d_star_nm/data"][()]
        displacement = maps["collector_displacement_um/data"][()]
    extent_mm = np.array([x_um[0], x_um[-1], x_um[-1], x_um[0]]) / 1000.0
    fig, axes = plt.subplots(3, 3, figsize=(13, 12.5), constrained_layout=True)
    ax = axes.ravel()
    ax[0].imshow(graphite_composite(lic6, lic12, poor), extent=extent_mm)
    ax[0].set_title("graphite: LiC6 green, LiC12 blue, poor red")
    ax[1].imshow(nmc_composite(nmc_li, nmc_deli), extent=extent_mm)
    ax[1].set_title("NMC: lithiated green, delithiated red")
    image = ax[2].imshow(saxs, extent=extent_mm, cmap="magma")
    fig.colorbar(image, ax=ax[2], shrink=0.8, label="arb. units")
    ax[2].set_title("SAXS intensity, q = 0.025-0.1 1/A")
    image = ax[3].imshow(d_star, extent=extent_mm, cmap="viridis", vmin=9, vmax=15)
    fig.colorbar(image, ax=ax[3], shrink=0.8, label="nm")
    ax[3].set_title("true d* (departure method)")
    limit = max(float(np.abs(displacement).max()), 1.0)
    image = ax[4].imshow(displacement, extent=extent_mm, cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=ax[4], shrink=0.8, label="um")
    ax[4].set_title("layer displacement (bends)")
    for axis in ax[:5]:
        axis.set_xlabel("x (mm)")
        axis.set_ylabel("y (mm)")
    angles, translations, sinogram = frame_sinogram(folder / "waxs_scan.h5")
    ax[5].imshow(
        sinogram,
        aspect="auto",
        cmap="gray",
        extent=[translations[0], translations[-1], angles[-1], angles[0]],
    )
    ax[5].set_title("raw WAXS scan: counts per frame")
    ax[5].set_xlabel("translation (mm)")
    ax[5].set_ylabel("rotation angle (deg)")
    with h5py.File(folder / "waxs_scan.h5", "r") as f:
        translation = f["/entry/sample/translation"][()]
        through_centre = int(np.argmin(np.abs(translation - np.median(translation))))
        frame = f["/entry/instrument/detector/data"][through_centre]
    ax[6].imshow(np.where(frame >= 0, frame, np.nan), cmap="inferno")
    ax[6].set_title("one raw WAXS frame (gaps blank)")
    for name, axis in (("xct.tif", ax[7]), ("nct.tif", ax[8])):
        volume, voxel = read_volume(folder / name)
        axis.imshow(volume[volume.shape[0] // 2], cmap="gray")
        axis.set_title(f"{'X-ray' if name == 'xct.tif' else 'neutron'} CT, {voxel:g} um voxels")
    output = Path(output_png)
    with atomic_output(output) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return output

"""Overview figure of a written phantom, made from its files alone (truth, scans, volumes)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from matplotlib.figure import Figure

from jellyroll.conventions import map_extent_mm
from jellyroll.io.images import save_png
from jellyroll.io.scans import open_scan
from jellyroll.io.volumes import read_volume
from jellyroll.phases import graphite_composite, nmc_composite
from jellyroll.sinogram import place, sinogram_layout


def frame_sinogram(
    scan_path: Path, block: int = 2048
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Total counts of every frame placed by its motor positions, and the frame through the
    cell centre: (angles (deg), translations (mm), image (n_angles, n_t), frame (H, W)).

    Reads the raw frames block by block; missing frames stay NaN.
    """
    reader = open_scan(scan_path)
    try:
        info = reader.info
        through_centre = int(
            np.argmin(np.abs(info.translation_mm - np.median(info.translation_mm)))
        )
        totals = np.full(info.n_frames, np.nan)
        for start in range(0, info.n_frames, block):
            frames = reader.read(start, min(start + block, info.n_frames))
            counts = np.where(frames.data > 0, frames.data, 0).sum(axis=(1, 2), dtype=np.float64)
            totals[start : frames.stop] = np.where(frames.valid, counts, np.nan)
            if start <= through_centre < frames.stop:
                frame = frames.data[through_centre - start]
    finally:
        reader.close()
    layout = sinogram_layout(info.rotation_angle_deg, info.translation_mm)
    image = place(layout, totals, np.isfinite(totals))
    return layout.rotation_angle_deg, layout.translation_mm, image, frame


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
    extent_mm = map_extent_mm(x_um, x_um)  # square maps
    fig = Figure(figsize=(13, 12.5), layout="constrained")
    ax = fig.subplots(3, 3).ravel()
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
    angles, translations, sinogram, frame = frame_sinogram(folder / "waxs_scan.h5")
    ax[5].imshow(
        sinogram,
        aspect="auto",
        cmap="gray",
        extent=[translations[0], translations[-1], angles[-1], angles[0]],
    )
    ax[5].set_title("raw WAXS scan: counts per frame")
    ax[5].set_xlabel("translation (mm)")
    ax[5].set_ylabel("rotation angle (deg)")
    ax[6].imshow(np.where(frame >= 0, frame, np.nan), cmap="inferno")
    ax[6].set_title("one raw WAXS frame (gaps blank)")
    for name, axis in (("xct.tif", ax[7]), ("nct.tif", ax[8])):
        volume, voxel = read_volume(folder / name)
        axis.imshow(volume[volume.shape[0] // 2], cmap="gray")
        axis.set_title(f"{'X-ray' if name == 'xct.tif' else 'neutron'} CT, {voxel:g} um voxels")
    return save_png(fig, output_png, dpi=90)

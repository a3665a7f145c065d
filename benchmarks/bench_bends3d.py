"""Bent collectors in 3D: depth and recall on the small twins, and the tracing time per
slice at the study's size.

Accuracy: for each small-twin seed (0-12 by default), the X-ray volume of
:func:`simulate_twin_nxct` (50 slices of 20 um, blurred by 0.7 voxel), its bends found on
every slice as ``jellyroll nxct`` does (the presence filter at half the slices: the 1 mm
stack is short beside a bend's ~130 um axial reach), each true bend matched to the
nearest found within 60 um (three voxels); printed: depth / truth per bend (the truth's
``amplitude_um`` is a magnitude, the table signed, outwards positive), recall, false
positives.

Speed: three 1024^2 X-ray slices of the small twin (seed 3, 3.125 um voxels, as the
X-ray volume of ``bench_nxct_big`` at N = 2048) traced by :func:`slice_bends` (the
per-slice part of :func:`find_bends_3d`), beside its anchor in the same run: scipy's
Gaussian filter (sigma 2 voxels) of the same slices; CPU seconds per slice.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from scipy import ndimage

from jellyroll.defects.bends3d import find_bends_3d, slice_bends
from jellyroll.phantom.materials import attenuation_map, mu_table
from jellyroll.phantom.parameters import SIZES
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import XRAY_LAB_ENERGY_KEV, nxct_fraction_slices, simulate_twin_nxct

MATCH_UM = 60.0


def depth_ratios(seed: int) -> tuple[list[float], int]:
    """Depth / truth per true bend of small twin ``seed`` (NaN where none was found within
    :data:`MATCH_UM`) and the number of found bends matching none."""
    twin = make_twin("aged_charged", SIZES["small"], seed=seed)
    nxct = simulate_twin_nxct(twin, seed=seed)
    volumes = nxct.volumes
    found, _ = find_bends_3d(volumes.xray, volumes.xray_voxel_um, max_presence=0.5)
    side = {g.id: g.side for g in twin.geometry.agglomerates}
    ratios, matched = [], set()
    for bend in nxct.bends.itertuples():
        gap = np.sqrt(
            (found.x_um - bend.x_um) ** 2
            + (found.y_um - bend.y_um) ** 2
            + (found.z_um - bend.z_um) ** 2
        )
        if found.empty or gap.min() > MATCH_UM:
            ratios.append(float("nan"))
            continue
        matched.add(gap.idxmin())
        outwards = 1.0 if side[bend.agglomerate_id] == "anode_inner" else -1.0
        ratios.append(float(found.amplitude_um[gap.idxmin()] * outwards / bend.amplitude_um))
    return ratios, len(found) - len(matched)


def tracing_seconds(console: Console, n_slices: int = 3) -> tuple[float, float]:
    """CPU seconds per 1024^2 slice: :func:`slice_bends`, and the anchor (a Gaussian
    filter of the same slice)."""
    twin = make_twin("aged_charged", SIZES["small"], seed=3)
    voxel = twin.size.n_translations * twin.pixel_size_um / 1024
    mu = mu_table("xray", energy_keV=XRAY_LAB_ENERGY_KEV)
    rng = np.random.default_rng(3)
    slices = []
    for _, _, fractions in nxct_fraction_slices(twin, n_slices, voxel):
        image = ndimage.gaussian_filter(attenuation_map(fractions, mu), 0.7)
        slices.append(image + rng.normal(0.0, 0.02 * float(np.ptp(image)), image.shape))
    volume = np.stack(slices)
    console.print(f"{n_slices} slices of {volume.shape[1]}^2 at {voxel:.3f} um")
    slice_bends(volume[:1], voxel, np.arange(1))  # compiled kernels loaded
    start = time.process_time()
    slice_bends(volume, voxel, np.arange(n_slices))
    tracing = (time.process_time() - start) / n_slices
    start = time.process_time()
    for image in volume:
        ndimage.gaussian_filter(image, 2.0)
    return tracing, (time.process_time() - start) / n_slices


def run(console: Console | None = None, seeds: tuple[int, ...] = tuple(range(13))) -> None:
    console = console or Console()
    tracing, anchor = tracing_seconds(console)
    console.print(
        f"bends: tracing {tracing:.2f} CPU s per 1024^2 slice, anchor (Gaussian filter) "
        f"{anchor:.3f} s: ratio {tracing / anchor:.0f}"
    )
    everything, false_positives = [], 0
    for seed in seeds:
        ratios, extra = depth_ratios(seed)
        everything += ratios
        false_positives += extra
        shown = ", ".join("missed" if np.isnan(r) else f"{r:.2f}" for r in ratios)
        console.print(f"bends: small twin seed {seed}: depth / truth {shown}; {extra} false")
    ratios = np.array(everything)
    found = ratios[np.isfinite(ratios)]
    within = int(np.sum(np.abs(found - 1.0) <= 0.2))
    console.print(
        f"bends: recall {found.size}/{ratios.size}, depth / truth {found.min():.2f}-"
        f"{found.max():.2f}, {within} of {found.size} within 20 %, "
        f"{false_positives} false positives"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(13)))
    run(seeds=tuple(parser.parse_args().seeds))

"""NXCT registration speed and accuracy: ``register_volumes`` against SimpleITK's Mattes MI
from the geometric centre (the out-of-the-box anchor, on the same block-mean copies of at
most 2e6 voxels that ``register_volumes`` works on) on the same remounted twin pair, in one
run, with the peak memory of the process.

The pair, the NXCT issue's 512^3 / 256^3: the small twin (seed 3) with a stack of 320
slices (3.2 mm tall, the roll ending under a head space with its tab), its X-ray and neutron
volumes (the neutron one under the twin's random remount) zoomed by 1.6 in every direction,
i.e. X-ray 256^3 at 12.5 um and neutron 512^3 at 6.25 um (the study's 2:1 voxels).

``python -m benchmarks.bench_nxct --dice``: the segmentation's Dice table of docs/nxct.md
instead (Cu / cathode / anode against the tiny twin's majority-component truth, seeds 0-2,
every state of charge, 10 and 2.5 um, the registered pair without remount, segmented on
the neutron grid as ``tests/nxct/test_segment.py`` does).
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import ndimage

from jellyroll.nxct.fuse import sample_voxels
from jellyroll.nxct.register import (
    downsample,
    mattes_from_centre,
    register_volumes,
    rms_error,
    rms_error_along,
)
from jellyroll.nxct.segment import LABELS, find_thresholds, segment_slabs
from jellyroll.phantom.materials import attenuation_map, mu_table
from jellyroll.phantom.nxct import simulate_nxct_from_attenuation
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import (
    COMPONENT_GROUPS,
    group_fractions,
    nxct_fraction_slices,
    simulate_twin_nxct,
)

ZOOM = 1.6
SLICES = 320  # x ZOOM = 512 neutron slices


def _pair() -> tuple[np.ndarray, float, np.ndarray, float, np.ndarray]:
    twin = make_twin("aged_charged", "small", seed=3)
    twin = dataclasses.replace(twin, size=twin.size.model_copy(update={"nxct_slices": SLICES}))
    volumes = simulate_twin_nxct(twin, seed=3).volumes
    # grid_mode: the zoomed voxel is exactly voxel / ZOOM (corner-aligned zoom is not)
    xray, neutron = (
        ndimage.zoom(v, ZOOM, order=1, grid_mode=True, mode="grid-constant")
        for v in (volumes.xray, volumes.neutron)
    )
    return (
        xray,
        volumes.xray_voxel_um / ZOOM,
        neutron,
        volumes.neutron_voxel_um / ZOOM,
        volumes.nct_to_xct,
    )


def run(console: Console | None = None) -> None:
    console = console or Console()
    xray, xv, neutron, nv, truth = _pair()
    start = time.perf_counter()
    ours = register_volumes(xray, xv, neutron, nv)
    ours_s = time.perf_counter() - start
    ours_error = rms_error(ours.nct_to_xct, truth, neutron.shape, nv) / nv
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    along, across = (e / nv for e in rms_error_along(ours.nct_to_xct, truth, neutron.shape, nv))
    console.print(
        f"jellyroll register_volumes: {ours_s:.1f} s (target < 60 s), {ours_error:.2f} neutron "
        f"voxels RMS (along the cell axis {along:.2f}, across it {across:.2f}; axial level: "
        f"{ours.axial_level}); peak RSS of the process so far {peak:.2f} GiB"
    )
    start = time.perf_counter()
    # the anchor on the block-mean copies register_volumes works on (at most 2e6 voxels each):
    # on the full 512^3 volumes SimpleITK's pyramid held > 6 GiB and ran for > 7 min
    (xc, xcv, x_to_fine), (nc, ncv, n_to_fine) = (
        downsample(v, voxel, 2_000_000) for v, voxel in ((xray, xv), (neutron, nv))
    )
    plain = x_to_fine @ mattes_from_centre(xc, xcv, nc, ncv) @ np.linalg.inv(n_to_fine)
    plain_s = time.perf_counter() - start
    table = Table(title=f"NXCT registration, X-ray {xray.shape} / neutron {neutron.shape}")
    for column in ("method", "seconds", "RMS error (neutron voxels)"):
        table.add_column(column)
    table.add_row("jellyroll register_volumes", f"{ours_s:.1f}", f"{ours_error:.2f}")
    plain_error = rms_error(plain, truth, neutron.shape, nv) / nv
    table.add_row("SimpleITK Mattes MI from the centre", f"{plain_s:.1f}", f"{plain_error:.2f}")
    console.print(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    console.print(
        f"jellyroll / SimpleITK time ratio {ours_s / plain_s:.2f}; "
        f"peak RSS of the process {peak:.2f} GiB"
    )


DICE_CLASSES = ("cu", "cathode", "anode")


def segmentation_dice(state: str, seed: int, voxel_um: float) -> dict[str, float]:
    """Dice of Cu, cathode and anode of the tiny twin (``seed``) at ``state``: two planes
    about its SWAXS slice at ``voxel_um``, the X-ray at twice it, 4 A neutrons, no remount,
    thresholds from both planes, labelled on the neutron grid."""
    twin = make_twin(state, "tiny", seed=seed)
    fractions = [f for _, _, f in nxct_fraction_slices(twin, 2, voxel_um)]
    volumes = simulate_nxct_from_attenuation(
        np.stack([attenuation_map(f, mu_table("xray", energy_keV=60.0)) for f in fractions]),
        np.stack([attenuation_map(f, mu_table("neutron", wavelength_A=4.0)) for f in fractions]),
        voxel_um,
        neutron_rotation_deg=(0, 0, 0),
        neutron_shift_um=(0, 0, 0),
    )
    truth = np.argmax(group_fractions(fractions), axis=0)  # index into COMPONENT_GROUPS
    xray, neutron = volumes.xray_in_world(), volumes.neutron
    thresholds = find_thresholds(sample_voxels(xray, neutron, n_planes=2).values)
    labels = np.concatenate([s for _, s in segment_slabs(xray, neutron, thresholds, slab=1)])
    found = {
        "cu": labels == LABELS["cu"],
        "cathode": labels == LABELS["cathode"],
        "anode": np.isin(labels, [LABELS["anode_lithiated"], LABELS["anode_li_poor"]]),
    }
    names = list(COMPONENT_GROUPS)
    dice = {}
    for name, mask in found.items():
        true = truth == names.index(name)
        dice[name] = 2 * float((mask & true).sum()) / max(int(mask.sum() + true.sum()), 1)
    return dice


def dice_table(console: Console | None = None) -> None:
    """Print the Dice table of docs/nxct.md: seeds 0 / 1 / 2 in each cell."""
    console = console or Console()
    table = Table(title="NXCT segmentation: Dice (seeds 0 / 1 / 2), tiny twin, neutron grid")
    for column in ("state, voxel", *DICE_CLASSES):
        table.add_column(column)
    for voxel in (10.0, 2.5):
        for state in ("aged_charged", "fresh_charged", "aged_discharged", "fresh_discharged"):
            dice = [segmentation_dice(state, seed, voxel) for seed in range(3)]
            cells = [" / ".join(f"{d[name]:.3f}" for d in dice) for name in DICE_CLASSES]
            table.add_row(f"{state}, {voxel:g} um", *cells)
            console.print(f"{state}, {voxel:g} um: " + " | ".join(cells))
    console.print(table)


if __name__ == "__main__":
    dice_table() if "--dice" in sys.argv[1:] else run()

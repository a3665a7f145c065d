"""Draw the figures of "Linking defects across modalities" (docs/locate.md):
``python docs/make_link_figures.py``.

The small aged twin (seed 3): its CT volumes simulated, its true placement of the SWAXS
slice in the X-ray volume, the bends traced through the X-ray volume
(:func:`jellyroll.defects.bends3d.find_bends_3d`, as ``jellyroll nxct`` does); the twin's
true SAXS, d* and graphite maps stand for the SWAXS-CT maps. Saves in ``docs/figures/``:
``link_dossier.png`` (the largest case-B defect through every modality),
``link_fractions.png`` (share on a bend per size bin) and ``link_slice.png`` (the slice in
a vertical cut of the X-ray volume), and prints the linked table and the threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jellyroll.defects.bends3d import find_bends_3d
from jellyroll.io.images import save_png
from jellyroll.locate import bend_fraction_by_size, link_to_bends, measured_bend_threshold
from jellyroll.locate.dossier import defect_dossiers, vertical_cut, volume_on_map
from jellyroll.locate.link_figures import (
    bend_fraction_figure,
    dossier_figure,
    slice_in_volume_figure,
)
from jellyroll.locate.link_run import PANEL_TITLES
from jellyroll.nxct.fuse import contrast_window, fuse_rgb
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import simulate_twin_nxct
from jellyroll.phases import graphite_composite
from jellyroll.unroll import find_cell, trace_spiral

OUT = Path(__file__).parent / "figures"
SEED = 3


def main() -> None:
    twin = make_twin("aged_charged", "small", seed=SEED)
    nxct = simulate_twin_nxct(twin, seed=SEED)
    volumes = nxct.volumes
    bends, _ = find_bends_3d(volumes.xray, volumes.xray_voxel_um)
    linked = link_to_bends(twin.agglomerates, bends, nxct.map_to_xct)
    bins = bend_fraction_by_size(linked)
    threshold = measured_bend_threshold(linked)
    columns = ["id", "case", "equivalent_diameter_um", "bend3d_id", "bend3d_distance_um",
               "bend3d_amplitude_um", "bend3d_extent_axial_um"]  # fmt: skip
    print(linked[columns].round(1).to_string(index=False))
    print(bins.dropna().to_string(index=False))
    print(threshold)
    shape, pixel = twin.shape, twin.pixel_size_um
    xray = volume_on_map(volumes.xray, volumes.xray_voxel_um, nxct.map_to_xct, shape, pixel)
    to_nct = np.linalg.inv(volumes.nct_to_xct) @ nxct.map_to_xct
    neutron = volume_on_map(volumes.neutron, volumes.neutron_voxel_um, to_nct, shape, pixel)
    fractions = twin.state.fractions
    maps = {
        "xray": xray,
        "neutron": neutron,
        "fused": fuse_rgb(xray, neutron, contrast_window(xray[np.isfinite(xray)], 1, 99.5),
                          contrast_window(neutron[np.isfinite(neutron)], 1, 99.5)) / 255.0,
        "graphite": graphite_composite(fractions["lic6"], fractions["lic12"],
                                       fractions["graphite_poor"]),
        "saxs_intensity": twin.saxs_intensity,
        "d_star_nm": twin.true_dstar_nm,
    }  # fmt: skip
    trace = trace_spiral(np.nan_to_num(xray), find_cell(np.nan_to_num(xray)), pixel)
    largest = linked[linked.case == "B"].nlargest(1, "equivalent_diameter_um")
    (dossier,) = defect_dossiers(
        maps, pixel, trace, largest, xray=volumes.xray, xray_voxel_um=volumes.xray_voxel_um
    )
    OUT.mkdir(exist_ok=True)
    save_png(dossier_figure(dossier, PANEL_TITLES), OUT / "link_dossier.png", dpi=80)
    save_png(bend_fraction_figure(bins, 50.0, threshold.diameter_um), OUT / "link_fractions.png")
    cut = vertical_cut(volumes.xray, volumes.xray_voxel_um, nxct.map_to_xct, shape[1] * pixel)
    save_png(slice_in_volume_figure(*cut), OUT / "link_slice.png", dpi=80)


if __name__ == "__main__":
    main()

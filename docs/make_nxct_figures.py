"""Draw the NXCT figures of the user guide: ``python docs/make_nxct_figures.py``.

Writes the small aged twin's CT volumes (seed 3, no raw scans), runs ``jellyroll nxct`` on
them, and saves in ``docs/figures/``: ``nxct_fused.png`` (orthogonal cuts of the fused
volume: red X-ray, cyan neutron), ``nxct_labels.png`` (the segmentation's axial slice) and
``nxct_bends.png`` (the Cu collector's displacement off its spiral, unrolled along the arc
against height: the bends in 3D).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import h5py
import matplotlib
import matplotlib.patches
import numpy as np
from matplotlib.figure import Figure

from jellyroll import figures
from jellyroll.io.images import save_png
from jellyroll.nxct.run import run_nxct
from jellyroll.phantom.write import write_phantom
from jellyroll.results.nxct import read_displacement, read_fused_cuts

OUT = Path(__file__).parent / "figures"


def labels_figure(labels: np.ndarray, names: dict[int, str], voxel_um: float) -> Figure:
    """The axial slice of the labels, one colour per component, with its legend."""
    figure = Figure(figsize=(7.5, 6), layout="constrained")
    axis = figure.subplots()
    values = sorted(names)
    colours = matplotlib.colormaps["tab10"](np.linspace(0, 1, 10))[: len(values)]
    index = np.searchsorted(values, labels)
    half = labels.shape[0] * voxel_um / 2000
    axis.imshow(colours[index], extent=[-half, half, half, -half], interpolation="nearest")
    handles = [
        matplotlib.patches.Patch(color=c, label=names[v])
        for v, c in zip(values, colours, strict=True)
    ]
    axis.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    axis.set_xlabel("x (mm)")
    axis.set_ylabel("y (mm)")
    axis.set_title("segmentation, axial slice")
    return figure


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_phantom(folder, preset="aged_charged", size="small", seed=3, raw=False)
        output = folder / "nxct.h5"
        result = run_nxct(folder / "xct.tif", folder / "nct.tif", output)
        fused = figures.orthogonal_views_figure(
            *read_fused_cuts(output), result.voxel_um, "fused: red = X-ray, cyan = neutron"
        )
        save_png(fused, OUT / "nxct_fused.png")
        with h5py.File(output) as f:
            labels = f["entry/segmentation/labels"]
            names = {int(k): v for k, v in json.loads(labels.attrs["names"]).items()}
            axial = labels[labels.shape[0] // 2]
        save_png(labels_figure(axial, names, result.voxel_um), OUT / "nxct_labels.png")
        displacement = read_displacement(output)
        if displacement is not None:
            save_png(figures.bends_figure(*displacement), OUT / "nxct_bends.png")


if __name__ == "__main__":
    main()

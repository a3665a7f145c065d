"""The operando figures on a tiny synthetic series (no scans): what a reader needs to read
them is drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from jellyroll.conventions import pixel_centres_um
from jellyroll.operando.figures import contact_sheet, curves_figure
from jellyroll.operando.timeline import SOC_UNITS
from jellyroll.results.operando import OperandoResult

PIXEL_UM = 10.0


def _series(n: int = 3, ny: int = 30, nx: int = 40) -> OperandoResult:
    """LiC6 growing from 0 to 1 over ``n`` steps on a ``ny`` x ``nx`` map, one round zone."""
    y, x = np.mgrid[:ny, :nx]
    zones = ((y - 15) ** 2 + (x - 20) ** 2 < 16).astype(int)
    done = np.linspace(0, 1, n)
    shares = np.zeros((n, ny, nx, 3))
    shares[..., 0], shares[..., 2] = done[:, None, None], 1 - done[:, None, None]
    curve = np.stack([done, np.zeros(n), 1 - done], axis=1)
    return OperandoResult(
        soc=done, soc_units=SOC_UNITS, time_s=np.arange(n) * 600.0, soc_source="test",
        steps=[f"s{k}" for k in range(n)], x_um=pixel_centres_um(nx, PIXEL_UM),
        y_um=pixel_centres_um(ny, PIXEL_UM), shares=shares, zones=zones,
        curves={"anode": curve, "zone_1": curve}, soc_half={"anode": 0.5, "zone_1": 0.5},
        pixels={"anode": 100, "zone_1": 12}, zones_table=pd.DataFrame(),
        cores={"area_um2": np.array([[1200.0, 600.0, 0.0]])}, shift_px=np.zeros((n, 2)),
        rotation_centre_mm=0.0,
    )  # fmt: skip


def test_the_contact_sheet_has_scale_bars_and_the_zoom_its_um() -> None:
    """The contact sheet's panels had no ticks and no scale bar (a zone's size could not be
    read), and the zoom was drawn in pixels: now a scale bar on the first step of each row,
    the zoom's extent in um (one map pixel each)."""
    axes = np.reshape(contact_sheet(_series()).axes, (2, -1))
    for axis in axes[:, 0]:
        assert any(isinstance(artist, AnchoredSizeBar) for artist in axis.artists)
    left, right, _, _ = axes[1, 0].images[0].get_extent()
    assert right - left == axes[1, 0].images[0].get_array().shape[1] * PIXEL_UM


def test_the_share_curves_name_the_phases() -> None:
    """The legend named the phases by their map names (lic6, graphite_poor), not as the
    rest of the report (LiC6, poorly lithiated)."""
    legend = curves_figure(_series()).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["LiC6", "LiC12", "poorly lithiated"]

"""Geometry of the twin measured back from its raster."""

from __future__ import annotations

import numpy as np
import pytest

from jellyroll.conventions import pixel_centres_um
from jellyroll.phantom.geometry import (
    REGIONS,
    agglomerate_table,
    build_geometry,
    rasterize,
)
from jellyroll.phantom.parameters import AgglomerateParameters, CellParameters, LayerStack

STACKS = [
    LayerStack(),
    LayerStack(separator_um=20, cathode_coating_um=48, al_um=12, anode_coating_um=60, cu_um=8),
]


def _plain_cell(stack: LayerStack, turns: float = 2.0) -> CellParameters:
    return CellParameters(
        outer_diameter_um=2 * (300 + (turns + 1) * stack.pitch_um + 150),
        casing_um=60,
        hollow_diameter_um=600,
        turns=turns,
        stack=stack,
        ovality=0.0,
        winding_irregularity_um=0.0,
        centre_um=(0.0, 0.0),
        agglomerates=AgglomerateParameters(count=0, count_large=0),
    )


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """(label, run length) of consecutive equal labels."""
    edges = np.flatnonzero(np.diff(labels)) + 1
    starts = np.r_[0, edges]
    lengths = np.diff(np.r_[starts, labels.size])
    return [(int(labels[s]), int(n)) for s, n in zip(starts, lengths, strict=True)]


@pytest.mark.parametrize("stack", STACKS)
def test_layers_measured_back_along_a_ray(stack: LayerStack) -> None:
    """Each layer's thickness along the +x ray equals the stack value within one pixel.

    A 2 um pixel resolves the 8-10 um foils; the majority label of a pixel can move each
    boundary by up to half a pixel, so a run is within one pixel of its nominal length.
    """
    pixel = 2.0
    cell = _plain_cell(stack)
    n = int(np.ceil(cell.outer_diameter_um / pixel)) + 4
    n += n % 2 == 0  # odd: a pixel row through the centre
    geometry = build_geometry(cell)
    # a thin band of rows around y = 0 is enough to measure the +x ray
    band = rasterize(geometry, (n, n), pixel, supersample=3, rows_per_chunk=n)
    labels = np.argmax(np.stack([band.fractions[r] for r in REGIONS]), axis=0)[n // 2]
    x = pixel_centres_um(n, pixel)
    ray = labels[x < 0][::-1]  # the -x ray (theta = 180 deg), away from the spiral start
    runs = _runs(ray)
    cu = REGIONS.index("cu")
    assert sum(1 for label, _ in runs if label == cu) == int(cell.turns)
    expected = {
        "cu": stack.cu_um,
        "al": stack.al_um,
        "separator": stack.separator_um,
    }
    for label, length in runs[1:-1]:
        name = REGIONS[label]
        if name in ("cu", "al", "separator"):
            assert abs(length * pixel - expected[name]) <= pixel, (name, length)
        if name == "cathode":
            assert abs(length * pixel - stack.cathode_coating_um) <= pixel
    # the anode coatings: each run between separator and Cu is one coating
    anode_runs = [length for label, length in runs[1:-1] if REGIONS[label] == "anode"]
    assert all(abs(r * pixel - stack.anode_coating_um) <= pixel for r in anode_runs)
    # turns: the pitch between successive Cu foils along the ray is the stack repeat
    cu_starts = np.flatnonzero(np.diff((ray == cu).astype(int)) == 1)
    assert np.allclose(np.diff(cu_starts) * pixel, stack.pitch_um, atol=pixel)


def test_same_seed_same_cell_and_other_seed_other_cell() -> None:
    cell = CellParameters(
        outer_diameter_um=2600, casing_um=100, hollow_diameter_um=500, turns=3, seed=4
    )
    a, b = build_geometry(cell), build_geometry(cell)
    c = build_geometry(cell.model_copy(update={"seed": 5}))
    assert a.agglomerate_table().equals(b.agglomerate_table())
    assert not a.agglomerate_table().equals(c.agglomerate_table())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agglomerate_table_agrees_with_raster(seed: int) -> None:
    """Table centroids and equivalent diameters match the rasterised agglomerates.

    The table's diameter comes from the supersampled area; the pixel-majority id map
    quantises the outline, so its equivalent diameter agrees within one pixel and its
    centroid within one pixel.
    """
    cell = CellParameters(
        outer_diameter_um=2600,
        casing_um=100,
        hollow_diameter_um=500,
        turns=3,
        seed=seed,
        agglomerates=AgglomerateParameters(count=10, count_large=2),
    )
    pixel = 5.0
    n = int(cell.outer_diameter_um / pixel) + 8
    geometry = build_geometry(cell)
    raster = rasterize(geometry, (n, n), pixel, supersample=4)
    table = agglomerate_table(geometry, raster)
    assert len(table) == len(geometry.agglomerates)
    y_um, x_um = np.meshgrid(*raster.axes_um(), indexing="ij")
    for row in table.itertuples():
        mask = raster.agglomerate_id == row.id
        assert mask.any()
        diameter = np.sqrt(4 * mask.sum() * pixel**2 / np.pi)
        assert abs(diameter - row.equivalent_diameter_um) <= pixel
        assert abs(x_um[mask].mean() - row.x_um) <= pixel
        assert abs(y_um[mask].mean() - row.y_um) <= pixel
        assert row.case == ("B" if row.nominal_diameter_um > 50.0 else "A")
    # the two drawn beyond the cutoff are case B; a regular one may exceed 50 um too
    assert (table["case"] == "B").sum() >= 2


def test_case_b_agglomerates_bend_the_collector() -> None:
    """Large agglomerates displace the Cu foil by about bend_factor x diameter."""
    cell = CellParameters(
        outer_diameter_um=2600,
        casing_um=100,
        hollow_diameter_um=500,
        turns=3,
        seed=3,
        agglomerates=AgglomerateParameters(count=6, count_large=2),
    )
    pixel = 5.0
    n = int(cell.outer_diameter_um / pixel) + 8
    geometry = build_geometry(cell)
    raster = rasterize(geometry, (n, n), pixel, supersample=3)
    y_um, x_um = np.meshgrid(*raster.axes_um(), indexing="ij")
    cu = raster.fractions["cu"] > 0.5
    for g in geometry.agglomerates:
        near = np.hypot(x_um - g.x_um, y_um - g.y_um) < 3 * max(g.semi_axes_um[:2])
        shift = np.abs(raster.displacement_um[near & cu]).max()
        if g.case == "B":
            # the Cu sits 5-40 um from the centre, where the push has ramped to most of A
            assert shift >= 0.5 * g.bend_amplitude_um
            assert g.bend_amplitude_um == pytest.approx(0.6 * g.nominal_diameter_um)
        else:
            assert g.bend_amplitude_um == 0.0


def test_a_twin_without_agglomerates_is_built() -> None:
    """A twin with no agglomerate (a control cell) failed with KeyError 'id' in its table."""
    from jellyroll.phantom.parameters import SIZES
    from jellyroll.phantom.twin import make_twin

    tiny = SIZES["tiny"]
    none = tiny.cell.agglomerates.model_copy(update={"count": 0, "count_large": 0})
    size = tiny.model_copy(update={"cell": tiny.cell.model_copy(update={"agglomerates": none})})
    twin = make_twin("aged_charged", size, seed=2)
    assert twin.agglomerates.empty and "equivalent_diameter_um" in twin.agglomerates
    assert not (twin.raster.agglomerate_id > 0).any()

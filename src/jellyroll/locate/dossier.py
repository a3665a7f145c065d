"""Per-defect dossier (the study's Fig. 3): one defect seen through every modality.

For each case-B agglomerate (and the largest case-A ones) of a linked defect table
(:func:`jellyroll.locate.link_to_bends`): cutouts of co-registered maps unrolled along the
traced Cu collector around the defect, each with its line profile across the layer (along
the depth, averaged over a few pixels of arc at the defect), and, when the defect sits on a
3D bend, three orthogonal slices of the X-ray volume through the bend.

Inputs are maps on the SWAXS map grid (``(ny, nx)``, pixels of ``pixel_size_um``, SPEC
section 6): the SWAXS-CT maps themselves and the CT volumes' planes at the slice
(:func:`volume_on_map`). Lengths in um.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from jellyroll.conventions import pixel_centres_um, px_to_um, um_to_px
from jellyroll.locate.link import check_map_to_xct
from jellyroll.nxct.resample import resample_slabs
from jellyroll.unroll import SpiralTrace, unroll_spiral

__all__ = [
    "BendViews",
    "Dossier",
    "bend_views",
    "defect_dossiers",
    "select_defects",
    "vertical_cut",
    "volume_on_map",
]


def volume_on_map(
    volume,
    voxel_um: float,
    map_to_xct: np.ndarray,
    map_shape: tuple[int, int],
    pixel_size_um: float,
    *,
    height_um: float = 0.0,
    order: int = 1,
) -> np.ndarray:
    """The plane of ``volume`` ((nz, ny, nx) array-like, read in one box) at the SWAXS map,
    or ``height_um`` above it, sampled on the map grid: float32 (ny, nx), NaN outside the
    volume. ``map_to_xct`` (4x4, um) maps the map frame to the volume frame."""
    to_volume = check_map_to_xct(map_to_xct).copy()
    to_volume[:3, 3] += to_volume[:3, 0] * float(height_um)  # shift along the map's normal
    ((_, plane),) = resample_slabs(
        volume, voxel_um, to_volume, (1, *map_shape), pixel_size_um, order=order, outside=np.nan
    )
    return plane[0]


def vertical_cut(
    volume, voxel_um: float, map_to_xct: np.ndarray, map_width_um: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vertical cut of ``volume`` through the map's centre along the map's x axis, in
    the map frame (z up from the map plane): (cut (n_z, n_x) float32, NaN outside the
    volume; x_um (n_x,); z_um (n_z,)), sampled at ``voxel_um``, the whole volume's height
    above and below the map."""
    # the cut's grid (0, v, u) is the map frame's (v, 0, u): swap z and y
    swap = np.eye(4)[[1, 0, 2, 3]]
    to_volume = check_map_to_xct(map_to_xct) @ swap
    n_x = max(2, round(map_width_um / voxel_um))
    n_z = 2 * int(volume.shape[0]) + 1
    ((_, cut),) = resample_slabs(
        volume, voxel_um, to_volume, (1, n_z, n_x), voxel_um, outside=np.nan
    )
    return cut[0], pixel_centres_um(n_x, voxel_um), pixel_centres_um(n_z, voxel_um)


def select_defects(agglomerates: pd.DataFrame, largest_case_a: int = 2) -> pd.DataFrame:
    """Every case-B agglomerate, then the ``largest_case_a`` largest case-A ones."""
    case_b = agglomerates[agglomerates["case"] == "B"]
    case_a = agglomerates[agglomerates["case"] == "A"].nlargest(
        max(largest_case_a, 0), "equivalent_diameter_um"
    )
    return pd.concat([case_b, case_a])


@dataclass
class BendViews:
    """Three orthogonal slices of the X-ray volume through a bend's deepest point, cropped
    around it: ``axial`` (y, x), ``along_x`` (z, x) at the bend's y, ``along_y`` (z, y) at
    its x; ``z_um``, ``y_um``, ``x_um``: their axes (X-ray frame); ``centre_zyx_um``: the
    point asked for; ``through_zyx_um``: the voxel centre nearest it, where the three
    slices meet."""

    axial: np.ndarray
    along_x: np.ndarray
    along_y: np.ndarray
    z_um: np.ndarray
    y_um: np.ndarray
    x_um: np.ndarray
    centre_zyx_um: tuple[float, float, float]
    through_zyx_um: tuple[float, float, float]


def bend_views(volume, voxel_um: float, centre_zyx_um, half_width_um: float) -> BendViews:
    """:class:`BendViews` of ``volume`` (array-like, only the box read) around a point of
    its frame (um); the dossier centres them on the defect, which its bend wraps."""
    shape = np.asarray(volume.shape)
    centre = np.asarray(centre_zyx_um, dtype=float) / voxel_um + (shape - 1) / 2
    index = np.clip(np.round(centre).astype(int), 0, shape - 1)
    half = max(1, round(half_width_um / voxel_um))
    box = [slice(max(0, i - half), min(n, i + half + 1)) for i, n in zip(index, shape, strict=True)]
    block = np.asarray(volume[tuple(box)], dtype=np.float32)
    local = index - np.array([b.start for b in box])
    axes = [
        px_to_um(np.arange(b.start, b.stop), n, voxel_um) for b, n in zip(box, shape, strict=True)
    ]
    return BendViews(
        axial=block[local[0]],
        along_x=block[:, local[1], :],
        along_y=block[:, :, local[2]],
        z_um=axes[0],
        y_um=axes[1],
        x_um=axes[2],
        centre_zyx_um=tuple(float(c) for c in centre_zyx_um),
        through_zyx_um=tuple(float(a[i]) for a, i in zip(axes, local, strict=True)),
    )


@dataclass
class Dossier:
    """One defect through every modality.

    ``defect``: its row of the linked table; ``arc_um``, ``depth_um``: its place on the
    unrolled layer; ``panels``: name -> cutout (n_depth, n_arc) or RGB (n_depth, n_arc, 3);
    ``arc_axis_um`` (n_arc,), ``depth_axis_um`` (n_depth,): the cutouts' axes (arc along
    the layer, depth across it, outwards positive); ``profiles``: name -> (n_depth,) mean
    across the layer over ``profile_width_um`` of arc at the defect (RGB: the luminance);
    ``bend``: the orthogonal X-ray slices through its 3D bend, None when not on one.
    """

    defect: pd.Series
    arc_um: float
    depth_um: float
    arc_axis_um: np.ndarray
    depth_axis_um: np.ndarray
    panels: dict[str, np.ndarray]
    profiles: dict[str, np.ndarray]
    profile_width_um: float
    bend: BendViews | None = None
    notes: list[str] = field(default_factory=list)


def defect_dossiers(
    maps: Mapping[str, np.ndarray],
    pixel_size_um: float,
    trace: SpiralTrace,
    defects: pd.DataFrame,
    *,
    half_width_um: float = 300.0,
    profile_width_um: float | None = None,
    xray=None,
    xray_voxel_um: float | None = None,
) -> list[Dossier]:
    """A :class:`Dossier` per row of ``defects`` (``x_um``, ``y_um`` in the map frame;
    with ``bend3d_id`` > 0 and ``xray`` (the X-ray volume) the bend's views too).

    ``maps``: name -> (ny, nx) map or (ny, nx, 3) RGB on the map grid; every one is unrolled
    along ``trace`` (one pitch deep) and cut ``half_width_um`` along the arc either side
    of the defect. ``profile_width_um`` defaults to three pixels. A defect off the traced
    layer gets no dossier: where the ray from the centre misses it, or where the defect lies
    beyond the cutouts' depth (half a pitch from the nearest traced turn: inside the first
    traced turn, beyond the last, where the trace was lost), whose cutouts would show the
    layer a turn away and not the defect.
    """
    if not maps:
        raise ValueError("no maps to cut out: give at least one co-registered map")
    shapes = {np.shape(m)[:2] for m in maps.values()}
    if len(shapes) != 1:
        raise ValueError(f"the maps are not on one grid: shapes {sorted(shapes)}")
    shape = shapes.pop()
    problem = trace.grid_problem(shape, pixel_size_um)
    if problem is not None:  # its centre and radii (pixels) would land elsewhere on the maps
        raise ValueError(f"trace: {problem}: trace the Cu layer on a plane of the maps' grid")
    width = 3 * pixel_size_um if profile_width_um is None else float(profile_width_um)
    names, planes = [], []
    for name, values in maps.items():
        values = np.asarray(values, dtype=np.float64)
        channels = [values] if values.ndim == 2 else [values[..., c] for c in range(3)]
        names.append((name, len(channels)))
        planes.extend(channels)
    view = unroll_spiral(np.stack(planes), trace)
    arc, depth = view.from_xy(
        um_to_px(defects["x_um"].to_numpy(float), shape[1], pixel_size_um),
        um_to_px(defects["y_um"].to_numpy(float), shape[0], pixel_size_um),
    )
    out = []
    for k, (_, defect) in enumerate(defects.iterrows()):
        if not view.depth_um[0] <= depth[k] <= view.depth_um[-1]:  # NaN too: off the layer
            continue
        columns = np.abs(view.arc_um - arc[k]) <= half_width_um
        near = np.abs(view.arc_um[columns] - arc[k]) <= width / 2
        panels, profiles, start = {}, {}, 0
        for name, n in names:
            cut = view.data[start : start + n][:, :, columns]
            start += n
            panel = cut[0] if n == 1 else np.moveaxis(cut, 0, -1)
            panels[name] = panel
            values = panel if n == 1 else panel.mean(axis=-1)
            profiles[name] = _nanmean_columns(values[:, near])
        dossier = Dossier(
            defect, float(arc[k]), float(depth[k]), view.arc_um[columns], view.depth_um,
            panels, profiles, width,
        )  # fmt: skip
        if xray is not None and int(defect.get("bend3d_id", 0) or 0) > 0:
            if xray_voxel_um is None:
                raise ValueError("xray_voxel_um is needed with the X-ray volume")
            centre = [defect[f"xct_{axis}_um"] for axis in "zyx"]
            dossier.bend = bend_views(xray, xray_voxel_um, centre, half_width_um)
        out.append(dossier)
    return out


def _nanmean_columns(values: np.ndarray) -> np.ndarray:
    """Mean over the columns of the finite values, NaN for rows with none."""
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0).sum(axis=1)
    count = finite.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)

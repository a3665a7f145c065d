"""Geometry of the wound cell: an Archimedean spiral layer stack with agglomerates and bends.

Coordinates are physical, in micrometres, with the rotation axis at the origin, x to the
right (columns) and y down (rows). A point (x, y) at polar radius r and angle theta lies in
turn ``k`` of the roll at radial depth ``(u - k) * pitch`` within that turn, where
``u = (r - r_inner) / pitch - theta / (2 pi)`` (Archimedean spiral of pitch = layer repeat).

Silicon agglomerates sit inside anode coatings. Each one pushes the layers beside it away
(the anode coating stretches around it); those above the critical diameter bend the Cu
collector by ``bend_factor * equivalent_diameter`` (SPEC section 4, Lübke et al. 2024) and are
surrounded by a compacted, damaged anode zone.

Along the cell axis (z) everything is confined: an agglomerate is an ellipsoid (axial
semi-axis ``c``, so slice z cuts an ellipse scaled by ``sqrt(1 - (dz/c)^2)``) and its push of
the layers, the bend of the Cu collector included, falls off as a Gaussian of standard
deviation ``c`` about the agglomerate's height, cut off beyond ``BEND_AXIAL_CUTOFF * c``.
Away from every agglomerate the roll is the same at every height (:func:`z_invariant`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from jellyroll.conventions import pixel_centres_um
from jellyroll.phantom.parameters import CellParameters

# Region codes of a rasterised sample point; fractions of each are computed per pixel.
REGIONS: tuple[str, ...] = (
    "air",
    "casing",
    "separator",
    "cathode",
    "al",
    "anode",
    "cu",
    "agglomerate",
    "damage",
)
REGION_CODE = {name: code for code, name in enumerate(REGIONS)}
BEND_AXIAL_CUTOFF = 3.0
"""Axial reach of a push, in standard deviations of its Gaussian profile along z."""
_LAYER_REGION = {
    "separator": "separator",
    "cathode_inner": "cathode",
    "cathode_outer": "cathode",
    "al": "al",
    "anode_inner": "anode",
    "cu": "cu",
    "anode_outer": "anode",
}


@dataclass(frozen=True)
class Agglomerate:
    """One silicon agglomerate (an ellipsoid), lengths in um, angles in radians.

    ``semi_axes_um`` are (tangential, radial, axial); the push amplitudes are the radial
    displacements it imposes on the layers towards the Cu collector and towards the
    separator; ``bend_amplitude_um`` is the push on the Cu foil (0 for case A), which its
    near face nominally takes (the bend's displacement, its mid-surface's, is
    :meth:`CellGeometry.bend_table`'s ``amplitude_um``).
    """

    id: int
    x_um: float
    y_um: float
    z_um: float
    theta_rad: float
    radius_um: float  # polar radius of the centre
    semi_axes_um: tuple[float, float, float]
    side: str  # "anode_inner" (Cu outwards) or "anode_outer" (Cu inwards)
    turn: int
    to_cu_um: float  # distance from the centre to the Cu surface, undeformed
    to_separator_um: float
    push_cu_um: float
    push_separator_um: float
    case: str

    @property
    def nominal_diameter_um(self) -> float:
        """Equivalent diameter of the central cross-section, 2 sqrt(a b) (um)."""
        a, b, _ = self.semi_axes_um
        return float(2.0 * np.sqrt(a * b))

    @property
    def bend_amplitude_um(self) -> float:
        return self.push_cu_um if self.case == "B" else 0.0

    @property
    def push_sigma_axial_um(self) -> float:
        """Standard deviation (um) of the push's Gaussian profile along z."""
        return self.semi_axes_um[2]

    @property
    def push_sigma_arc_um(self) -> float:
        """Standard deviation (um) of the push's Gaussian profile along the arc."""
        return 1.2 * self.semi_axes_um[0] + 0.5 * max(self.push_cu_um, self.push_separator_um)


AGGLOMERATE_TABLE_COLUMNS = (
    "id", "x_um", "y_um", "z_um", "nominal_diameter_um", "semi_axis_tangential_um",
    "semi_axis_radial_um", "semi_axis_axial_um", "turn", "side", "case", "bend_amplitude_um",
)  # fmt: skip
"""Columns of :meth:`CellGeometry.agglomerate_table`."""


@dataclass(frozen=True)
class CellGeometry:
    """A concrete, seeded cell: parameters plus all random draws."""

    params: CellParameters
    ovality_phase_rad: float
    irregularity: np.ndarray  # (n_modes, 4): angular order, amplitude um, phase, radial phase
    agglomerates: tuple[Agglomerate, ...]

    @property
    def pitch_um(self) -> float:
        return self.params.stack.pitch_um

    def agglomerate_table(self) -> pd.DataFrame:
        """Nominal agglomerate table (one row each); see ``Raster.agglomerate_table``."""
        rows = [
            {
                "id": g.id,
                "x_um": g.x_um,
                "y_um": g.y_um,
                "z_um": g.z_um,
                "nominal_diameter_um": g.nominal_diameter_um,
                "semi_axis_tangential_um": g.semi_axes_um[0],
                "semi_axis_radial_um": g.semi_axes_um[1],
                "semi_axis_axial_um": g.semi_axes_um[2],
                "turn": g.turn,
                "side": g.side,
                "case": g.case,
                "bend_amplitude_um": g.bend_amplitude_um,
            }
            for g in self.agglomerates
        ]
        # the columns even without a row (a twin built with no agglomerate)
        return pd.DataFrame(rows, columns=AGGLOMERATE_TABLE_COLUMNS)

    def bend_table(self) -> pd.DataFrame:
        """Collector bends (one per case-B agglomerate) in the geometry frame, lengths in um.

        ``z_um``, ``y_um``, ``x_um``: the bend's centre, on the mid-surface of the displaced
        Cu foil on the ray from the cell's centre through the agglomerate's, at its height;
        ``amplitude_um``: the radial displacement of that mid-surface there, off the same
        foil without the agglomerates (:func:`cu_mid_surface_um`). A foil is a surface: its
        displacement is its mid-surface's, what a tracer following the foil's centre line
        reads. It is less than the agglomerate's push ``push_cu_um``, which the foil's face
        nearest the agglomerate takes, as the push decays beyond that face (0.9-2.7 um
        less across the 10 um foil on the twins). ``extent_axial_um`` and
        ``extent_arc_um``: full widths at half maximum of that displacement along z and
        along the arc (:func:`bend_extents_um`; 0.7-0.9 times those of the push's Gaussian
        profiles, which the foil takes only at their peak); ``agglomerate_id``: the
        agglomerate that made it.
        """
        columns = ["id", "z_um", "y_um", "x_um", "turn", "amplitude_um", "extent_axial_um",
                   "extent_arc_um", "agglomerate_id"]  # fmt: skip
        rows = []
        for g in (g for g in self.agglomerates if g.bend_amplitude_um > 0):
            bent, flat = cu_mid_surface_um(self, g)
            outwards = 1.0 if g.side == "anode_inner" else -1.0
            rows.append(
                [len(rows) + 1, g.z_um,
                 self.params.centre_um[1] + bent * np.sin(g.theta_rad),
                 self.params.centre_um[0] + bent * np.cos(g.theta_rad),
                 g.turn, outwards * (bent - flat), *bend_extents_um(self, g), g.id]
            )  # fmt: skip
        table = pd.DataFrame(rows, columns=columns)
        return table.astype({"id": np.int64, "turn": np.int64, "agglomerate_id": np.int64})


def cu_mid_surface_um(
    geometry: CellGeometry, g: Agglomerate, *, step_um: float = 0.01
) -> tuple[float, float]:
    """Polar radius (um) of the mid-surface of the Cu foil that agglomerate ``g`` pushes,
    on the ray from the cell's centre through ``g``'s centre at its height: bent, and
    undeformed (the same turn's foil in the cell without its agglomerates). Read from the
    layers :func:`rasterize` draws (:func:`_classify`, the twin's own displacement field),
    sampled every ``step_um`` along the ray: the middle of the foil's run of samples."""
    bent, flat, _ = _pushed_foil(geometry, g, step_um)
    return bent, flat


def _pushed_foil(
    geometry: CellGeometry, g: Agglomerate, step_um: float
) -> tuple[float, float, int]:
    """:func:`cu_mid_surface_um`'s bent and undeformed radii (um), and the foil's turn."""
    bent, foil_turn = _foil_mid_um(geometry, g, g.theta_rad, g.z_um, None, step_um)
    if foil_turn is None:
        raise ValueError(f"agglomerate {g.id}: no Cu foil on its side within 1.5 pitches")
    flat_geometry = _without_agglomerates(geometry)
    flat, _ = _foil_mid_um(flat_geometry, g, g.theta_rad, g.z_um, foil_turn, step_um)
    return bent, flat, foil_turn


def bend_extents_um(
    geometry: CellGeometry, g: Agglomerate, *, step_um: float = 0.01, tolerance_um: float = 0.05
) -> tuple[float, float]:
    """Full widths at half maximum (um) along z and along the arc of the radial displacement
    of the mid-surface of the Cu foil that agglomerate ``g`` bends (:func:`cu_mid_surface_um`
    at the peak, on the ray through ``g``'s centre at its height), each side's half-maximum
    point found to ``tolerance_um``. The arc is taken at the radius of the mid-surface at
    half maximum. A side where the foil ends before half maximum (the roll's end) ends there.

    The foil takes the push's Gaussian profiles only at their peak: off it the push's ramp
    (as long as the peak push) leaves the foil on its rising part, so the widths are less
    than those of the Gaussians (:meth:`Agglomerate.push_sigma_axial_um`, ``_arc_um``).
    """
    flat_geometry = _without_agglomerates(geometry)
    outwards = 1.0 if g.side == "anode_inner" else -1.0
    bent, flat, foil_turn = _pushed_foil(geometry, g, step_um)
    half = 0.5 * outwards * (bent - flat)

    def above_half_axial(dz_um: float) -> bool:
        moved, _ = _foil_mid_um(geometry, g, g.theta_rad, g.z_um + dz_um, foil_turn, step_um)
        return bool(outwards * (moved - flat) > half)  # NaN (no foil) is not above

    def above_half_arc(arc_um: float) -> bool:
        theta = g.theta_rad + arc_um / radius
        moved, _ = _foil_mid_um(geometry, g, theta, g.z_um, foil_turn, step_um)
        still, _ = _foil_mid_um(flat_geometry, g, theta, g.z_um, foil_turn, step_um)
        return bool(outwards * (moved - still) > half)

    radius = flat + outwards * half
    reach_axial = BEND_AXIAL_CUTOFF * g.push_sigma_axial_um
    reach_arc = 4.0 * g.push_sigma_arc_um * radius / g.radius_um
    axial = sum(_half_point(above_half_axial, side * reach_axial, tolerance_um) for side in (-1, 1))
    arc = sum(_half_point(above_half_arc, side * reach_arc, tolerance_um) for side in (-1, 1))
    return float(axial), float(arc)


def _half_point(above: Callable[[float], bool], reach: float, tolerance: float) -> float:
    """Distance from 0 (where ``above``) towards ``reach`` of the last point ``above``, by
    bisection to ``tolerance``; ``abs(reach)`` when it is still above there."""
    if above(reach):
        return abs(reach)
    inner, outer = 0.0, reach
    while abs(outer - inner) > tolerance:
        middle = 0.5 * (inner + outer)
        inner, outer = (middle, outer) if above(middle) else (inner, middle)
    return abs(0.5 * (inner + outer))


def _without_agglomerates(geometry: CellGeometry) -> CellGeometry:
    """The same cell without its agglomerates (its undeformed layers)."""
    return replace(geometry, agglomerates=())


def _foil_mid_um(
    geometry: CellGeometry,
    g: Agglomerate,
    theta_rad: float,
    z_um: float,
    foil_turn: int | None,
    step_um: float,
) -> tuple[float, int | None]:
    """Polar radius (um) of the mid-surface of a Cu foil on the ray from the cell's centre
    at ``theta_rad``, at height ``z_um``, sampled every ``step_um`` from ``g``'s centre
    radius over 1.5 pitches on ``g``'s Cu side: the foil of turn ``foil_turn``, or the
    first one met (None); and that turn. (NaN, None) when there is none.

    The ray is classified every few samples first, then every sample across the foil only:
    the same samples as a full pass, as a foil is one run many samples thick."""
    outwards = 1.0 if g.side == "anode_inner" else -1.0
    r = g.radius_um + outwards * np.arange(0.0, 1.5 * geometry.pitch_um, step_um)
    coarse = max(1, int(0.25 * geometry.params.stack.cu_um / step_um))
    cx, cy = geometry.params.centre_um

    def foil(index: np.ndarray, turn: int | None) -> tuple[np.ndarray, int | None]:
        x, y = cx + r[index] * np.cos(theta_rad), cy + r[index] * np.sin(theta_rad)
        code, _, turns, _, _ = _classify(geometry, x, y, z_um)
        cu = code == REGION_CODE["cu"]
        if turn is None:  # the first foil met
            if not cu.any():
                return index[:0], None
            turn = int(turns[np.argmax(cu)])
        return index[cu & (turns == turn)], turn

    hits, foil_turn = foil(np.arange(0, r.size, coarse), foil_turn)
    if hits.size == 0:
        return float("nan"), None
    fine = np.arange(max(0, hits[0] - coarse), min(r.size, hits[-1] + coarse + 1))
    foil_index, _ = foil(fine, foil_turn)
    return float(np.mean(r[foil_index])), foil_turn


def z_invariant(geometry: CellGeometry, z_um: float) -> bool:
    """Whether no agglomerate or push reaches height ``z_um`` (um).

    All such slices are identical: the roll is extruded along z away from its defects.
    """
    return all(
        abs(z_um - g.z_um) > BEND_AXIAL_CUTOFF * g.push_sigma_axial_um
        for g in geometry.agglomerates
    )


def build_geometry(params: CellParameters) -> CellGeometry:
    """Draw the seeded random parts of a cell (winding irregularity, agglomerates)."""
    rng = np.random.default_rng(params.seed)
    n_modes = 6
    orders = rng.integers(1, 7, size=n_modes).astype(float)
    amplitudes = rng.normal(size=n_modes)
    amplitudes *= params.winding_irregularity_um * np.sqrt(2.0 / max(np.sum(amplitudes**2), 1e-12))
    irregularity = np.column_stack(
        [orders, amplitudes, rng.uniform(0, 2 * np.pi, n_modes), rng.uniform(0, 2 * np.pi, n_modes)]
    )
    geometry = CellGeometry(params, float(rng.uniform(0, np.pi)), irregularity, ())
    return CellGeometry(
        params, geometry.ovality_phase_rad, irregularity, _draw_agglomerates(geometry, rng)
    )


def _draw_agglomerates(geometry: CellGeometry, rng: np.random.Generator) -> tuple[Agglomerate, ...]:
    p = geometry.params
    ap = p.agglomerates
    radii = np.concatenate(
        [
            ap.median_radius_um * np.exp(ap.sigma_log * rng.normal(size=ap.count)),
            rng.uniform(*ap.large_radius_um, size=ap.count_large),
        ]
    )
    stack = p.stack
    depth_of = _layer_starts(geometry)
    placed: list[Agglomerate] = []
    for radius in radii:
        for _attempt in range(200):
            aspect = np.exp(ap.aspect_sigma * rng.normal(size=2))
            a, b, c = radius * aspect[0], radius / aspect[0], radius * aspect[1]
            turn_pos = rng.uniform(0.15, p.turns - 0.15)  # in turns along the spiral
            side = "anode_inner" if rng.random() < 0.5 else "anode_outer"
            # centred in the coating depth, within +-20 % of its thickness
            depth = depth_of[side] + stack.anode_coating_um * rng.uniform(0.3, 0.7)
            theta_unwrapped = 2 * np.pi * turn_pos
            r_ideal = p.roll_inner_radius_um + stack.pitch_um * (theta_unwrapped / (2 * np.pi))
            r_centre = r_ideal + depth
            theta = theta_unwrapped % (2 * np.pi)
            r_polar = r_centre / (
                1.0 - p.ovality * np.cos(2 * (theta - geometry.ovality_phase_rad))
            )
            r_polar += _irregularity(geometry, np.array(theta), np.array(r_polar))
            x = p.centre_um[0] + r_polar * np.cos(theta)
            y = p.centre_um[1] + r_polar * np.sin(theta)
            if any(
                np.hypot(x - g.x_um, y - g.y_um) < 2.5 * max(radius, g.semi_axes_um[0])
                for g in placed
            ):
                continue
            coating_start = depth_of[side]
            if side == "anode_inner":  # Cu is outwards (larger depth)
                to_cu = coating_start + stack.anode_coating_um - depth
                to_sep = depth - coating_start
            else:
                to_cu = depth - coating_start
                to_sep = coating_start + stack.anode_coating_um - depth
            diameter = 2 * np.sqrt(a * b)
            case = "B" if diameter > ap.critical_diameter_um else "A"
            margin = 2.0
            push_cu = max(0.0, b - to_cu + margin)
            if case == "B":
                push_cu = max(push_cu, ap.bend_factor * diameter)
            placed.append(
                Agglomerate(
                    id=len(placed) + 1,
                    x_um=float(x),
                    y_um=float(y),
                    z_um=float(rng.uniform(-0.25, 0.25) * c),
                    theta_rad=float(theta),
                    radius_um=float(r_polar),
                    semi_axes_um=(float(a), float(b), float(c)),
                    side=side,
                    turn=int(np.floor(turn_pos)),
                    to_cu_um=float(to_cu),
                    to_separator_um=float(to_sep),
                    push_cu_um=float(push_cu),
                    push_separator_um=float(max(0.0, b - to_sep + margin)),
                    case=case,
                )
            )
            break
    return tuple(placed)


def _layer_starts(geometry: CellGeometry) -> dict[str, float]:
    starts: dict[str, float] = {}
    depth = 0.0
    for name, thickness in geometry.params.stack.layers():
        starts.setdefault(name, depth)
        depth += thickness
    return starts


def _irregularity(geometry: CellGeometry, theta: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Smooth radial perturbation of the winding (um) at polar (theta, r)."""
    out = np.zeros(np.broadcast(theta, r).shape)
    scale = geometry.params.outer_radius_um / 3.0
    for order, amplitude, phase, radial_phase in geometry.irregularity:
        out += amplitude * np.sin(order * theta + phase) * np.cos(r / scale + radial_phase)
    return out


@dataclass
class Raster:
    """Per-pixel region fractions and ground-truth fields of one slice.

    ``fractions[name]`` are area fractions (ny, nx) of each region in :data:`REGIONS`;
    ``displacement_um`` the radial displacement of the layers (signed, outwards positive);
    ``turn`` the winding turn index (-1 outside the roll); ``agglomerate_id`` the majority
    agglomerate per pixel (0 = none); ``damage_radius`` the mean normalised elliptical
    radius (0 centre, 1 edge) of the damaged zone in the pixel (NaN outside).
    """

    pixel_size_um: float
    z_um: float
    fractions: dict[str, np.ndarray]
    displacement_um: np.ndarray
    turn: np.ndarray
    agglomerate_id: np.ndarray
    agglomerate_area_um2: dict[int, float]
    damage_radius: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.turn.shape

    def axes_um(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (y_um, x_um) with the rotation axis at 0."""
        return pixel_centres_um(self.shape[0], self.pixel_size_um), pixel_centres_um(
            self.shape[1], self.pixel_size_um
        )


def agglomerate_table(geometry: CellGeometry, raster: Raster) -> pd.DataFrame:
    """Agglomerates visible in ``raster`` with their measured in-slice size.

    ``equivalent_diameter_um`` is sqrt(4 area / pi) of the supersampled raster area of the
    agglomerate in this slice (what an image analysis can find); ``case`` compares the
    nominal diameter with the critical one.
    """
    table = geometry.agglomerate_table()
    areas = np.array([raster.agglomerate_area_um2.get(int(i), 0.0) for i in table["id"]])
    table["equivalent_diameter_um"] = np.sqrt(4.0 * areas / np.pi)
    return table[areas > 0].reset_index(drop=True)


def rasterize(
    geometry: CellGeometry,
    shape: tuple[int, int],
    pixel_size_um: float,
    *,
    z_um: float = 0.0,
    supersample: int = 3,
    rows_per_chunk: int = 64,
    grid_to_cell: np.ndarray | None = None,
) -> Raster:
    """Rasterise the slice at height ``z_um`` on a (ny, nx) grid of ``pixel_size_um`` pixels.

    Each pixel is sampled ``supersample**2`` times, so region fractions carry partial-volume
    effects (a 10 um Cu foil in a 20 um pixel gives a fraction of ~0.5). ``grid_to_cell``
    (3x3, um, homogeneous (y, x, 1)) places the grid in the cell's frame (an in-plane rotation
    and shift, see :func:`cell_coordinates`); default: the grid is the cell's frame.
    """
    ny, nx = shape
    s = int(supersample)
    n_regions = len(REGIONS)
    fractions = np.zeros((n_regions, ny, nx), dtype=np.float32)
    displacement = np.zeros(shape, dtype=np.float32)
    turn = np.full(shape, -1, dtype=np.int16)
    agg_id = np.zeros(shape, dtype=np.int32)
    damage_radius = np.full(shape, np.nan, dtype=np.float32)
    agg_area: dict[int, float] = {}
    sub = (np.arange(s) + 0.5) / s - 0.5
    x_fine = (pixel_centres_um(nx, pixel_size_um)[:, None] + sub[None, :] * pixel_size_um).ravel()
    y_all = pixel_centres_um(ny, pixel_size_um)
    sample_area = (pixel_size_um / s) ** 2
    for row0 in range(0, ny, rows_per_chunk):
        rows = slice(row0, min(ny, row0 + rows_per_chunk))
        n_rows = rows.stop - rows.start
        y_fine = (y_all[rows, None] + sub[None, :] * pixel_size_um).ravel()
        yy, xx = cell_coordinates(*np.meshgrid(y_fine, x_fine, indexing="ij"), grid_to_cell)
        code, disp, turn_fine, agg, zone = _classify(geometry, xx, yy, z_um)
        one_hot = np.zeros((n_regions, *code.shape), dtype=np.float32)
        np.put_along_axis(one_hot, code[None].astype(np.intp), 1.0, axis=0)
        fractions[:, rows] = one_hot.reshape(n_regions, n_rows, s, nx, s).mean(axis=(2, 4))
        displacement[rows] = disp.reshape(n_rows, s, nx, s).mean(axis=(1, 3))
        turn[rows] = turn_fine.reshape(n_rows, s, nx, s)[:, s // 2, :, s // 2]
        agg_id[rows] = _majority_id(agg.reshape(n_rows, s, nx, s))
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
            damage_radius[rows] = np.nanmean(zone.reshape(n_rows, s, nx, s), axis=(1, 3))
        ids, counts = np.unique(agg[agg > 0], return_counts=True)
        for i, count in zip(ids, counts, strict=True):
            agg_area[int(i)] = agg_area.get(int(i), 0.0) + float(count) * sample_area
    return Raster(
        pixel_size_um=float(pixel_size_um),
        z_um=float(z_um),
        fractions={name: fractions[code] for code, name in enumerate(REGIONS)},
        displacement_um=displacement,
        turn=turn,
        agglomerate_id=agg_id,
        agglomerate_area_um2=agg_area,
        damage_radius=damage_radius,
    )


def cell_coordinates(
    y_um: np.ndarray, x_um: np.ndarray, grid_to_cell: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Points (y, x) um of a grid in the cell's frame: ``grid_to_cell @ (y, x, 1)``."""
    if grid_to_cell is None:
        return y_um, x_um
    m = np.asarray(grid_to_cell, dtype=np.float64)
    return m[0, 0] * y_um + m[0, 1] * x_um + m[0, 2], m[1, 0] * y_um + m[1, 1] * x_um + m[1, 2]


def _majority_id(blocks: np.ndarray) -> np.ndarray:
    """Per pixel, the agglomerate id covering at least half of its samples (else 0)."""
    n_rows, s, nx, _ = blocks.shape
    flat = blocks.transpose(0, 2, 1, 3).reshape(n_rows, nx, s * s)
    top = flat.max(axis=-1)
    covered = (flat == top[..., None]).sum(axis=-1)
    return np.where((top > 0) & (2 * covered >= s * s), top, 0).astype(np.int32)


def _classify(
    geometry: CellGeometry, x: np.ndarray, y: np.ndarray, z_um: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Region code, displacement (um), turn, agglomerate id and damage radius of points."""
    p = geometry.params
    pitch = geometry.pitch_um
    xc, yc = x - p.centre_um[0], y - p.centre_um[1]
    r = np.hypot(xc, yc)
    theta = np.mod(np.arctan2(yc, xc), 2 * np.pi)
    code = np.full(x.shape, REGION_CODE["air"], dtype=np.int8)

    r_roll = r * (1.0 - p.ovality * np.cos(2 * (theta - geometry.ovality_phase_rad)))
    r_roll -= _irregularity(geometry, theta, r)
    displacement = _displacement(geometry, r, theta, z_um)
    r_eff = r_roll - displacement
    u = (r_eff - p.roll_inner_radius_um) / pitch - theta / (2 * np.pi)
    turn = np.floor(u).astype(np.int16)
    theta_unwrapped = theta + 2 * np.pi * turn
    in_roll = (theta_unwrapped >= 0) & (theta_unwrapped <= 2 * np.pi * p.turns)
    depth = (u - turn) * pitch
    layers = p.stack.layers()
    bounds = np.cumsum([t for _, t in layers])
    layer_codes = np.array([REGION_CODE[_LAYER_REGION[name]] for name, _ in layers], np.int8)
    layer_index = np.minimum(np.searchsorted(bounds, depth, side="right"), len(layers) - 1)
    code[in_roll] = layer_codes[layer_index[in_roll]]
    turn[~in_roll] = -1

    casing = (r >= p.outer_radius_um - p.casing_um) & (r <= p.outer_radius_um)
    code[casing] = REGION_CODE["casing"]

    agg_id = np.zeros(x.shape, dtype=np.int32)
    damage_radius = np.full(x.shape, np.nan, dtype=np.float32)
    anode = code == REGION_CODE["anode"]
    x_range, y_range = (x.min(), x.max()), (y.min(), y.max())
    for g in geometry.agglomerates:
        a, b, c = g.semi_axes_um
        dz = (z_um - g.z_um) / c
        reach = 2.0 * max(a, b) + g.push_cu_um + g.push_separator_um
        if abs(dz) >= 1 or not (
            x_range[0] - reach < g.x_um < x_range[1] + reach
            and y_range[0] - reach < g.y_um < y_range[1] + reach
        ):
            continue
        scale = np.sqrt(1 - dz * dz)
        near = (np.abs(x - g.x_um) < reach) & (np.abs(y - g.y_um) < reach)
        if not near.any():
            continue
        t_loc, r_loc = _local_frame(g, x[near], y[near], p.centre_um)
        inside = (t_loc / (a * scale)) ** 2 + (r_loc / (b * scale)) ** 2 <= 1.0
        hit = inside & anode[near]
        sub_code = code[near]
        sub_code[hit] = REGION_CODE["agglomerate"]
        sub_id = agg_id[near]
        sub_id[hit] = g.id
        if g.case == "B":
            # compacted, damaged anode around the agglomerate; both coatings of this Cu
            zone = np.hypot(t_loc / (2.0 * a), r_loc / (b + g.push_cu_um + 15.0)) / scale
            damaged = (zone <= 1.0) & ~hit & anode[near]
            sub_code[damaged] = REGION_CODE["damage"]
            sub_radius = damage_radius[near]
            sub_radius[damaged] = zone[damaged]
            damage_radius[near] = sub_radius
        code[near] = sub_code
        agg_id[near] = sub_id
    return code, displacement, turn, agg_id, damage_radius


def _local_frame(
    g: Agglomerate, x: np.ndarray, y: np.ndarray, centre: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Tangential and radial offsets (um) of points from an agglomerate centre."""
    dx, dy = x - g.x_um, y - g.y_um
    radial = np.array([np.cos(g.theta_rad), np.sin(g.theta_rad)])
    return -dx * radial[1] + dy * radial[0], dx * radial[0] + dy * radial[1]


def _displacement(geometry: CellGeometry, r: np.ndarray, theta: np.ndarray, z_um: float):
    """Radial displacement field (um, outwards positive) of all agglomerate pushes.

    Along the radius from an agglomerate centre the push ramps linearly from 0 to its
    amplitude A over ``h + A`` (h: distance to the coating boundary), so the coating
    stretches around the agglomerate without folding (slope A/(h+A) < 1), then decays
    exponentially over half a pitch into the next layers. Along the arc and the axis it is
    Gaussian.
    """
    out = np.zeros(r.shape, dtype=np.float64)
    r, theta, out_flat = r.ravel(), theta.ravel(), out.ravel()
    pitch = geometry.pitch_um
    for g in geometry.agglomerates:
        a = g.semi_axes_um[0]
        c = g.push_sigma_axial_um
        dz = z_um - g.z_um
        if abs(dz) > BEND_AXIAL_CUTOFF * c:
            continue
        reach = 4.0 * a + 2.0 * (g.push_cu_um + g.push_separator_um)
        near = np.flatnonzero(np.abs(r - g.radius_um) < 3 * pitch)
        arc = g.radius_um * (np.mod(theta[near] - g.theta_rad + np.pi, 2 * np.pi) - np.pi)
        on_arc = np.abs(arc) < reach
        near, arc = near[on_arc], arc[on_arc]
        if near.size == 0:
            continue
        v = r[near] - g.radius_um
        outwards_is_cu = g.side == "anode_inner"
        push_out, h_out = (
            (g.push_cu_um, g.to_cu_um)
            if outwards_is_cu
            else (g.push_separator_um, g.to_separator_um)
        )
        push_in, h_in = (
            (g.push_separator_um, g.to_separator_um)
            if outwards_is_cu
            else (g.push_cu_um, g.to_cu_um)
        )
        profile = np.where(
            v >= 0,
            push_out * _ramp(v, h_out + push_out, pitch),
            -push_in * _ramp(-v, h_in + push_in, pitch),
        )
        width = g.push_sigma_arc_um
        profile *= np.exp(-0.5 * (arc / width) ** 2) * np.exp(-0.5 * (dz / c) ** 2)
        out_flat[near] += profile
    return out


def _ramp(v: np.ndarray, length: float, pitch: float) -> np.ndarray:
    if length <= 0:
        return np.zeros_like(v)
    rising = np.clip(v / length, 0.0, 1.0)
    return rising * np.exp(-np.maximum(v - length, 0.0) / (0.5 * pitch))

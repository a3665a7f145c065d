"""Operando lithiation kinetics on arrays: graphite phase shares, regions, curves, cores.

The study (Lübke et al., Energy Environ. Sci. 2024, 17, 5048, Fig. 5) follows one WAXS-CT
slice through a charge: a bent (damaged) zone lithiates late, from its neighbours, as a
shrinking ellipse of poorly lithiated graphite. Inputs here are the Table 1 window
integrals of every step, (n_steps, ny, nx, 3) in the order lic6, lic12, graphite_poor,
on one grid of ``pixel_size_um`` pixels.

Shares: the three Table 1 windows touch, and the LiC12 line (1.79 A^-1) sits at its window's
edge, so plain window integrals under-count LiC12 and leak each line into its neighbour's
window. :func:`jellyroll.phases.fit_graphite_lines` fits one pseudo-Voigt line shape
(shared width and Lorentzian share, positions within 0.02 A^-1 of the SPEC section 5
d-spacings) to the mean graphite pattern of every step; the window integrals of these unit
lines form the 3 x 3 crosstalk matrix that :func:`jellyroll.phases.graphite_amounts`
inverts. Shares are then line-intensity shares, equal to amount shares when the three
phases scatter equally per unit graphite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.measure import inertia_tensor, inertia_tensor_eigvals
from skimage.registration import phase_cross_correlation

from jellyroll.conventions import block_mean, map_shift_px, pearson
from jellyroll.unroll import SpiralTrace


def shares(amounts: np.ndarray) -> np.ndarray:
    """(..., 3) shares of the clipped amounts (sum 1); NaN where none is positive."""
    clipped = np.clip(np.nan_to_num(np.asarray(amounts, np.float64)), 0.0, None)
    total = clipped.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, clipped / total, np.nan)


def drift_shifts(references: np.ndarray, upsample: int = 20) -> np.ndarray:
    """(n_steps, 2) shift (rows, columns; px) that registers each image of ``references``
    (n_steps, ny, nx) onto the first (:func:`~jellyroll.conventions.map_shift_px`)."""
    out = np.zeros((len(references), 2))
    for k in range(1, len(references)):
        out[k] = map_shift_px(references[0], references[k], upsample)
    return out


TURN_SEARCH_PX = 128
"""Longest side (px) the maps are block-averaged down to for :func:`step_turns`."""


def step_turns(references: np.ndarray, shifts: np.ndarray, step_deg: float = 2.0) -> np.ndarray:
    """(n_steps, 4): per image of ``references`` (n_steps, ny, nx), registered by ``shifts``
    (:func:`drift_shifts`, px), the in-plane turn (deg, about the map centre, as
    :func:`scipy.ndimage.rotate` turns) that matches it best to the first, the correlation
    with the first at that turn (each turn registered by translation again) and unturned,
    and the turn measured finely (:func:`fine_turn`, deg; NaN where it does not converge).
    Turns are searched every ``step_deg`` over a full circle, on the images block-averaged
    to at most :data:`TURN_SEARCH_PX` a side (43 s a step at 512 x 512 pixels, 3 s at
    128). The fine turn is measured from 0, and from the grid's best too when that beats
    the unturned match; the one of them that matches best is kept, and is the best turn
    (first two columns) when it matches better than the grid's best and the unturned. The
    first row is (0, 1, 1, 0)."""
    images, block = _search_images(references)
    shifts_block = np.asarray(shifts) / block
    out = np.zeros((images.shape[0], 4))
    out[0] = (0.0, 1.0, 1.0, 0.0)
    for k in range(1, images.shape[0]):
        plain = pearson(images[0], apply_shift(images[k], shifts_block[k]))
        angle, grid_best = _best_turn(
            lambda a, image=images[k]: _turned_match(images[0], image, a), step_deg
        )
        best = max(grid_best, plain)
        # a wound spiral turned is nearly itself: on the tiny twin's summed phase maps a
        # 2 deg turn matched best at -12 deg on the grid (0.827 against 0.826 at 0), and
        # the steps from there stopped at -12.0 deg; from 0 they find -2.1. On the blocks:
        # on every pixel, the noise of the turn's derivative shrinks its steps
        starts = (angle, 0.0) if grid_best > plain else (0.0,)
        measured, fit = float("nan"), -np.inf
        for start in starts:
            turn = fine_turn(images[0], images[k], start, shifts_block[k])[0]
            score = _turned_match(images[0], images[k], turn) if np.isfinite(turn) else -np.inf
            if score > fit:
                measured, fit = turn, score
        if fit > best:
            angle, best = measured, fit
        out[k] = (angle, best, plain, measured)
    return out


def _search_images(references: np.ndarray) -> tuple[np.ndarray, int]:
    """``references`` (n_steps, ny, nx; NaN as 0) block-averaged to at most
    :data:`TURN_SEARCH_PX` a side, and the block (px)."""
    images = np.nan_to_num(np.asarray(references, np.float64))
    block = max(1, int(np.ceil(max(images.shape[1:]) / TURN_SEARCH_PX)))
    return block_mean(images, block), block


def _turned_match(reference: np.ndarray, image: np.ndarray, angle_deg: float) -> float:
    """Correlation of ``image`` turned by ``angle_deg`` (about its centre) and registered by
    translation with ``reference``."""
    turned = ndimage.rotate(image, angle_deg, reshape=False, order=1, mode="nearest")
    offset = phase_cross_correlation(reference, turned, upsample_factor=10, normalization=None)[0]
    return pearson(reference, apply_shift(turned, offset))


def _best_turn(match: Callable[[float], float], step_deg: float) -> tuple[float, float]:
    """The turn (deg, in [-180, 180)) that ``match`` (a correlation per turn) finds best,
    and that correlation: every 3 ``step_deg`` round the circle, then every ``step_deg``
    about the best."""
    coarse = np.arange(-180.0, 180.0, 3 * step_deg)
    around = float(coarse[int(np.argmax([match(a) for a in coarse]))])
    fine = around + step_deg * np.arange(-2, 3)
    scores = [match(a) for a in fine]
    top = int(np.argmax(scores))
    return (float(fine[top]) + 180.0) % 360.0 - 180.0, float(scores[top])


def mirrored_matches(references: np.ndarray, step_deg: float = 2.0) -> np.ndarray:
    """(n_steps,) per image of ``references`` (n_steps, ny, nx), its best correlation with
    the first mirrored (columns reversed about the map centre, the rotation axis) and
    turned, on the images block-averaged as in :func:`step_turns` (the first: NaN). A scan
    whose rotation angles run the other way (written C - angle) reconstructs the cell
    mirrored about a line through the axis: a mirror and a turn. The turn is searched
    about the axis (:func:`_best_turn`, a rotation per turn tried), the best one then
    registered by translation too (:func:`_turned_match`; the drift measured for the step
    unmirrored says nothing of it)."""
    images, _ = _search_images(references)
    out = np.full(images.shape[0], np.nan)
    for k in range(1, images.shape[0]):

        def match(angle: float, image: np.ndarray = images[k][:, ::-1]) -> float:
            turned = ndimage.rotate(image, angle, reshape=False, order=1, mode="nearest")
            return pearson(images[0], turned)

        angle, _ = _best_turn(match, step_deg)
        out[k] = _turned_match(images[0], images[k][:, ::-1], angle)
    return out


FINE_TURN_SMOOTH_PX = 1.0
"""Gaussian blur (sigma, px) of both maps before :func:`fine_turn`: it widens the range the
Gauss-Newton steps converge from and evens out the interpolation's blur."""


def turned(image: np.ndarray, angle_deg: float, shift_px: np.ndarray, order: int = 1) -> np.ndarray:
    """``image`` (ny, nx) turned by ``angle_deg`` about its centre (as
    :func:`scipy.ndimage.rotate` turns it), then moved by ``shift_px`` (rows, columns);
    spline interpolation of ``order`` (1: linear), edges repeated."""
    centre = (np.asarray(image.shape, np.float64) - 1.0) / 2.0
    c, s = np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))
    back = np.array([[c, s], [-s, c]])  # output (row, col) offset -> input offset
    offset = centre - back @ (centre + np.asarray(shift_px, np.float64))
    return ndimage.affine_transform(image, back, offset=offset, order=order, mode="nearest")


def fine_turn(
    reference: np.ndarray,
    image: np.ndarray,
    angle_deg: float,
    shift_px: np.ndarray,
    iterations: int = 30,
) -> tuple[float, np.ndarray]:
    """The turn (deg, as :func:`turned`) and shift (rows, columns; px) that register
    ``image`` (ny, nx) onto ``reference`` (ny, nx) to a small fraction of a degree, by
    Gauss-Newton steps from ``angle_deg`` and ``shift_px`` on both maps blurred by
    :data:`FINE_TURN_SMOOTH_PX` (with a gain and an offset of the map's values, which a
    charge may change). The grid search of :func:`step_turns` (every 2 deg) and the
    correlation's interpolation blur hid turns under about 4 deg (tiny twin, 52 pixels a
    side: a 2 deg turn found as 0). (NaN, ``shift_px``) when the steps do not converge or
    run more than 2 px from ``shift_px`` (maps too unlike each other)."""
    ref = ndimage.gaussian_filter(
        np.nan_to_num(np.asarray(reference, np.float64)), FINE_TURN_SMOOTH_PX
    )
    img = ndimage.gaussian_filter(np.nan_to_num(np.asarray(image, np.float64)), FINE_TURN_SMOOTH_PX)
    start = np.asarray(shift_px, np.float64)
    params = np.array([angle_deg, *start])
    step = 0.1  # deg, the turn's finite difference
    for _ in range(iterations):
        moved = turned(img, params[0], params[1:], order=3)
        d_angle = (
            turned(img, params[0] + step, params[1:], order=3)
            - turned(img, params[0] - step, params[1:], order=3)
        ) / (2 * step)
        d_rows, d_cols = np.gradient(moved)
        design = np.column_stack(
            [d_angle.ravel(), -d_rows.ravel(), -d_cols.ravel(), moved.ravel(), np.ones(moved.size)]
        )
        delta = np.linalg.lstsq(design, (ref - moved).ravel(), rcond=None)[0][:3]
        params += delta
        if not np.all(np.isfinite(params)) or np.abs(params[1:] - start).max() > 2.0:
            break
        if abs(delta[0]) < 1e-3 and np.abs(delta[1:]).max() < 1e-3:
            return float((params[0] + 180.0) % 360.0 - 180.0), params[1:]
    return float("nan"), start


def apply_shift(image: np.ndarray, shift_px: np.ndarray, min_shift_px: float = 0.05) -> np.ndarray:
    """``image`` (ny, nx, ...) moved by ``shift_px`` (rows, columns), linear interpolation;
    unchanged (no interpolation blur) below ``min_shift_px``."""
    if np.all(np.abs(shift_px) < min_shift_px):
        return image
    extra = [0.0] * (np.ndim(image) - 2)
    return ndimage.shift(np.nan_to_num(image), [*shift_px, *extra], order=1, mode="nearest")


def mask_on_step(mask: np.ndarray, shift_px: np.ndarray) -> np.ndarray:
    """``mask`` (ny, nx) of the registered series (the first step's frame) on the pixels of
    the step that ``shift_px`` (:func:`drift_shifts`) registers: moved back by it."""
    return apply_shift(np.asarray(mask, np.float64), -np.asarray(shift_px)) >= 0.5


def filling_scale(total: np.ndarray, graphite: np.ndarray) -> float:
    """Graphite signal (summed amounts) of a pixel wholly inside the coating: the 99th
    percentile of ``total`` (ny, nx) over ``graphite``; 0 when there is none."""
    values = np.nan_to_num(np.asarray(total, np.float64))
    return float(np.percentile(values[graphite], 99)) if graphite.any() else 0.0


def graphite_mask(total: np.ndarray, fraction: float) -> np.ndarray:
    """Pixels whose graphite signal (summed amounts) reaches ``fraction`` of its p99."""
    values = np.nan_to_num(np.asarray(total, np.float64))
    positive = values[values > 0]
    if not positive.size:
        return np.zeros(values.shape, bool)
    return values >= fraction * np.percentile(positive, 99)


MIN_HALF_STEPS = 3
"""Fewest steps (with a state of charge and a share) that place a half-lithiation point."""


def soc_at_half(soc: np.ndarray, lithiated: np.ndarray) -> float:
    """State of charge where the lithiated share (1 - poorly lithiated share) first reaches
    half-way between its first and last values (linear interpolation between steps); NaN
    when the share does not rise or fewer than :data:`MIN_HALF_STEPS` steps have a state
    of charge and a share: between two steps, the half-way point is their midpoint
    whatever the share does (every lag 0 on the tiny twin's first and last steps, exit 0)."""
    soc, lithiated = np.asarray(soc, np.float64), np.asarray(lithiated, np.float64)
    keep = np.isfinite(soc) & np.isfinite(lithiated)
    soc, lithiated = soc[keep], lithiated[keep]
    if soc.size < MIN_HALF_STEPS or lithiated[-1] - lithiated[0] <= 0:
        return float("nan")
    half = 0.5 * (lithiated[0] + lithiated[-1])
    above = np.flatnonzero(lithiated >= half)[0]
    if above == 0:
        return float(soc[0])
    s0, s1, l0, l1 = soc[above - 1], soc[above], lithiated[above - 1], lithiated[above]
    return float(s0 + (half - l0) / (l1 - l0) * (s1 - s0))


def lag_map(poor_shares: np.ndarray, soc: np.ndarray, anode: np.ndarray) -> np.ndarray:
    """How long each pixel stays poorly lithiated beyond the regular anode (SOC units).

    ``poor_shares`` (n_steps, ny, nx): the poorly lithiated share per step. The lag of a
    pixel is the integral over the charge of its poor share minus the anode's median;
    steps without state of charge are skipped. Returns (ny, nx), 0 outside ``anode``.
    """
    soc = np.asarray(soc, np.float64)
    keep = np.isfinite(soc)
    if keep.sum() < 2:
        raise ValueError("the lagging zones need at least two steps with a state of charge")
    poor = np.nan_to_num(poor_shares[keep], nan=0.0)
    median = np.array([np.median(p[anode]) for p in poor])
    lag = np.trapezoid(poor - median[:, None, None], soc[keep], axis=0)
    return np.where(anode, lag, 0.0)


def zone_labels(lag: np.ndarray, min_lag_soc: float, min_pixels: int) -> np.ndarray:
    """Damaged zones from a :func:`lag_map`: connected (8-neighbour) groups of at least
    ``min_pixels`` pixels lagging by more than ``min_lag_soc``, each cut at half its peak lag
    (the blur of the reconstruction spreads a zone's lag over its neighbours; half the
    maximum keeps the zone's own extent, as a full width at half maximum does).
    Returns (ny, nx) int32 labels, 0 = none, 1..n."""
    labels, n = ndimage.label(lag > min_lag_soc, structure=np.ones((3, 3)))
    out = np.zeros(labels.shape, np.int32)
    zone = 0
    for old in range(1, n + 1):
        member = labels == old
        if member.sum() < min_pixels:
            continue
        zone += 1
        out[member & (lag >= 0.5 * lag[member].max())] = zone
    return out


def disk_zones(
    table: pd.DataFrame, x_um: np.ndarray, y_um: np.ndarray, scale: float = 1.5
) -> np.ndarray:
    """Zone labels (ny, nx) from a defect table (``x_um``, ``y_um``,
    ``equivalent_diameter_um``): a disk of ``scale`` equivalent radii each (a case-B
    damaged zone reaches beyond its agglomerate), at least one pixel. A row whose disk
    has no pixel left (off the grid, or under earlier disks) gets no label: labels run
    1..n over the zones that have pixels (an empty zone 1 ended the contact sheet in
    "cannot convert float NaN to integer")."""
    yy, xx = np.meshgrid(y_um, x_um, indexing="ij")
    pixel = abs(float(x_um[1] - x_um[0]))
    out = np.zeros(yy.shape, np.int32)
    label = 0
    for row in table.itertuples():
        radius = max(scale * row.equivalent_diameter_um / 2, 0.5 * pixel)
        disk = (np.hypot(xx - row.x_um, yy - row.y_um) <= radius) & (out == 0)
        if disk.any():
            label += 1
            out[disk] = label
    return out


@dataclass(frozen=True)
class Regions:
    """Masks (ny, nx) of the analysed regions: the regular anode, each zone and its ring,
    each turn (name -> bool)."""

    anode: np.ndarray
    zones: np.ndarray  # int32 labels, 0 = none
    masks: dict[str, np.ndarray]


def build_regions(
    graphite: np.ndarray,
    zones: np.ndarray,
    ring_px: int,
    turns: np.ndarray | None = None,
) -> Regions:
    """Regions of a slice: "zone_<i>" (the zone), "ring_<i>" (anode within ``ring_px`` of
    it, outside every zone), "anode" (graphite outside zones and rings), "turn_<k>" (the
    anode of turn k, when ``turns`` (ny, nx) int, -1 = none, is given)."""
    masks: dict[str, np.ndarray] = {}
    near_any = np.zeros(graphite.shape, bool)
    footprint = ndimage.generate_binary_structure(2, 2)
    for label in range(1, int(zones.max()) + 1):
        zone = zones == label
        grown = ndimage.binary_dilation(zone, footprint, iterations=max(ring_px, 1))
        masks[f"zone_{label}"] = zone
        masks[f"ring_{label}"] = grown & graphite & (zones == 0)
        near_any |= grown
    anode = graphite & ~near_any
    masks = {"anode": anode, **masks}
    if turns is not None:
        for turn in np.unique(turns[turns >= 0]):
            masks[f"turn_{int(turn)}"] = anode & (turns == turn)
    return Regions(anode, zones, masks)


def region_curves(amounts: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per region, (n_steps, 3) shares of the amounts (n_steps, ny, nx, 3) summed over it
    (summing before clipping keeps noise from biasing the shares)."""
    clean = np.nan_to_num(amounts)
    return {name: shares(clean[:, mask].sum(axis=1)) for name, mask in masks.items()}


@dataclass(frozen=True)
class Core:
    """The poorly lithiated core of a zone at one step: area (um^2), centre (um), full
    axes of the ellipse of equal second moments (um), major-axis angle from +x towards +y
    (deg, in (-90, 90])."""

    area_um2: float
    x_um: float
    y_um: float
    major_axis_um: float
    minor_axis_um: float
    orientation_deg: float


MIN_CORE_CONTRAST = 0.1
"""Least lithiated share of the regular anode (1 - its poorly lithiated share) at which a
step can weigh a zone's graphite: below it the noise of the excess is amplified > 10x."""

MAX_WHOLE_CONTRAST = 0.5
"""Most lithiated share of the regular anode at the first step that weighs a zone's graphite
(:data:`MIN_CORE_CONTRAST`) for the steps before it to be given the whole zone as their
core: the twin's zone, lagging 0.2 of the charge, had lost 11 % of its core at half charge
and 41 % at 0.75; a series of steps at 0 and 1 weighed its core at 1 (2818 um^2) and gave
step 0 the same for the true 12756, exit 0."""


def zone_cores(
    amounts: np.ndarray,
    neighbourhood: np.ndarray,
    background: np.ndarray,
    scale: float,
    x_um: np.ndarray,
    y_um: np.ndarray,
) -> list[Core]:
    """The poorly lithiated core of a zone at every step of ``amounts`` (n_steps, ny, nx,
    3; graphite line heights, poorly lithiated last); ``scale``: the summed heights of a
    pixel wholly inside the coating (:func:`filling_scale`), so that amounts / ``scale``
    are areas in pixels.

    A zone of a few pixels is blurred by the reconstruction over its neighbours and shares
    its edge pixels with the regular anode, so a count of thresholded pixels is biased by
    one-pixel edges. The core is measured from sums over ``neighbourhood`` (bool (ny, nx):
    the zone and a ring wide enough to hold its blur), which the blur keeps:

    1. the excess ``E_k``: the poorly lithiated graphite beyond the share ``p_k`` that the
       regular anode of ``background`` (bool (ny, nx), the anode around the neighbourhood)
       has at that step;
    2. the zone's graphite ``G``: the largest ``E_k / (1 - p_k)`` over the steps where the
       anode has lithiated by at least :data:`MIN_CORE_CONTRAST` (the excess of a zone
       still wholly poorly lithiated; a lower bound when no step catches it so);
    3. the core area ``E_k + p_k G`` (clipped to 0..G): the zone's graphite at the anode's
       share plus its excess; its centre and ellipse are the second moments of the core
       map ``e_k + p_k g`` (per-pixel excess ``e_k``; ``g`` the per-pixel excess of the
       step that gave ``G`` over its ``1 - p``), which sums to that area. The axes include
       the reconstruction's blur. The steps before the first with that contrast (the
       anode barely lithiated) have the whole zone ``G`` as their core, when that first
       step's anode is lithiated by at most :data:`MAX_WHOLE_CONTRAST` (else NaN: ``G``
       then weighs a core the charge has already shrunk).

    Areas are in graphite of a full coating pixel: a zone denser in graphite than the
    coating counts larger. Every area is NaN when no step has the contrast step 2 needs
    (the zone cannot be told from the anode), or ``scale`` is not positive.
    """
    clean = np.nan_to_num(np.asarray(amounts, np.float64))
    unknown = [Core(float("nan"), *[float("nan")] * 5) for _ in range(clean.shape[0])]
    if scale <= 0:
        return unknown
    total, poor = clean.sum(axis=-1), clean[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        anode_share = poor[:, background].sum(axis=1) / total[:, background].sum(axis=1)
    excess_map = np.where(neighbourhood, poor - anode_share[:, None, None] * total, 0.0) / scale
    excess = excess_map.sum(axis=(1, 2))
    contrast = 1.0 - anode_share
    usable = np.isfinite(contrast) & (contrast >= MIN_CORE_CONTRAST) & np.isfinite(excess)
    if not usable.any():
        return unknown
    ratios = np.where(usable, excess / np.where(usable, contrast, 1.0), -np.inf)
    best = int(np.argmax(ratios))
    graphite = max(float(ratios[best]), 0.0)
    graphite_map = excess_map[best] / contrast[best]
    pixel_area = abs(float(x_um[1] - x_um[0])) ** 2
    first = int(np.flatnonzero(usable)[0])
    weighed = np.arange(clean.shape[0]) >= (first if contrast[first] > MAX_WHOLE_CONTRAST else 0)
    cores = []
    for k in range(clean.shape[0]):
        if not weighed[k]:
            cores.append(unknown[k])
            continue
        area = float(np.clip(excess[k] + anode_share[k] * graphite, 0.0, graphite))
        core_map = np.clip(excess_map[k] + anode_share[k] * graphite_map, 0.0, None)
        cores.append(_ellipse(core_map, area * pixel_area, x_um, y_um))
    return cores


def _ellipse(weights: np.ndarray, area_um2: float, x_um: np.ndarray, y_um: np.ndarray) -> Core:
    """A :class:`Core` of ``area_um2`` placed and shaped by the second moments of
    ``weights`` (ny, nx; >= 0)."""
    pixel = abs(float(x_um[1] - x_um[0]))
    total = float(weights.sum())
    if total <= 0 or not np.isfinite(area_um2) or area_um2 <= 0:
        return Core(max(area_um2, 0.0), *[float("nan")] * 5)
    rows, cols = np.indices(weights.shape)
    cy, cx = (rows * weights).sum() / total, (cols * weights).sum() / total
    major, minor = (4.0 * pixel * np.sqrt(max(v, 0.0)) for v in inertia_tensor_eigvals(weights))
    values, vectors = np.linalg.eigh(inertia_tensor(weights))
    dy, dx = vectors[:, np.argmin(values)]
    angle = float(np.degrees(np.arctan2(dy, dx)))
    angle = angle - 180.0 if angle > 90 else angle + 180.0 if angle <= -90 else angle
    return Core(
        area_um2,
        float(np.interp(cx, np.arange(x_um.size), x_um)),
        float(np.interp(cy, np.arange(y_um.size), y_um)),
        float(major),
        float(minor),
        angle,
    )


def shrink_rate(soc: np.ndarray, area_um2: np.ndarray) -> float:
    """How fast a core shrinks (um^2 per unit state of charge, positive when shrinking):
    minus the slope of a straight line through the areas from the last step still at
    (95 % of) the largest area on."""
    soc, area = np.asarray(soc, np.float64), np.asarray(area_um2, np.float64)
    keep = np.isfinite(soc) & np.isfinite(area)
    soc, area = soc[keep], area[keep]
    if soc.size < 2:
        return float("nan")
    start = int(np.flatnonzero(area >= 0.95 * area.max())[-1])
    if soc.size - start < 2:
        return 0.0
    return float(-np.polyfit(soc[start:], area[start:], 1)[0])


def shared_rotation_centre(
    sinograms: list[np.ndarray], angles_deg: list[np.ndarray], translation_mm: np.ndarray
) -> float:
    """One rotation axis position (mm) for every step of a series.

    Each projection's centre of mass follows c + x0_k cos(theta) + y0_k sin(theta) (as in
    :func:`jellyroll.sinogram.estimate_rotation_centre`); the axis c is shared while each
    step k keeps its own centroid (x0_k, y0_k), so a cell that drifts between steps does
    not bias it. ``sinograms``: per step (n_angles, n_translations) attenuation or total
    intensity; projections with a missing cell are left out.
    """
    rows, targets = [], []
    n = len(sinograms)
    for k, (sinogram, angles) in enumerate(zip(sinograms, angles_deg, strict=True)):
        complete = np.all(np.isfinite(sinogram), axis=1)
        weights = np.clip(sinogram[complete], 0.0, None)
        mass = weights.sum(axis=1)
        good = mass > 0
        theta = np.deg2rad(np.asarray(angles)[complete][good])
        design = np.zeros((theta.size, 1 + 2 * n))
        design[:, 0] = 1.0
        design[:, 1 + 2 * k] = np.cos(theta)
        design[:, 2 + 2 * k] = np.sin(theta)
        rows.append(design)
        targets.append(weights[good] @ translation_mm / mass[good])
    design = np.concatenate(rows)
    if design.shape[0] < 3 * n:
        raise ValueError("too few complete projections to fit the shared rotation centre")
    coefficients, *_ = np.linalg.lstsq(design, np.concatenate(targets), rcond=None)
    return float(coefficients[0])


def turn_labels(shape: tuple[int, int], trace: SpiralTrace) -> np.ndarray:
    """(ny, nx) int16: the turn (0 = innermost) of the traced wound layer nearest each
    pixel along its ray from the cell centre; -1 farther than half a pitch from all."""
    rows, cols = np.indices(shape)
    dx, dy = cols - trace.centre[0], rows - trace.centre[1]
    radius = np.hypot(dx, dy)
    base = trace.direction * np.mod(np.arctan2(dy, dx), 2 * np.pi)
    first, last = trace.winding_rad[0], trace.winding_rad[-1]
    best = np.full(shape, np.inf)
    out = np.full(shape, -1, np.int16)
    for k in range(int(np.floor(first / (2 * np.pi))) - 1, int(np.ceil(last / (2 * np.pi))) + 2):
        winding = base + 2 * np.pi * k
        valid = (winding >= first) & (winding <= last)
        distance = np.abs(np.interp(winding, trace.winding_rad, trace.radius_px) - radius)
        closer = valid & (distance < best)
        best[closer] = distance[closer]
        out[closer] = np.floor((winding[closer] - first) / (2 * np.pi)).astype(np.int16)
    out[best > 0.5 * trace.pitch_um / trace.pixel_size_um] = -1
    return out

"""Segmentation of a registered X-ray / neutron pair into the cell's components.

Method (thresholds from the data, by physical order, not from a table of the phantom):

Every step holds at any state of charge: the anode's neutron level moves with its lithium (a
charged LiC6 anode about as bright as the cathode, a discharged graphite one darker than the
blur of a Cu foil), so no step places the anode against the metals or the cathode in neutrons.

1. Void: Otsu's threshold (Otsu, IEEE Trans. Syst. Man Cybern. 9 (1979) 62) of the log of the
   neutron values above their 1st percentile parts the void (a noise floor) from the cell,
   for the statistics of steps 2-3: on a log scale every material, also a dry foil or a
   discharged anode, lies far above the void (a volume clipped at its void: lifted first,
   :data:`CLIPPED_LIFT`). The void's final threshold lies
   :data:`VOID_SHARE` of the way from the void's level to the anode's (the void beside the
   casing, blurred by it, rises above the log split). Metal (high X-ray) overrides void in
   step 4: the void is what is low in both beams.
2. Otsu of the X-ray values of the rest, and of the void's voxels brighter in X-rays than
   the rest's median (the steel casing, dim in thermal neutrons, may lie under the void's
   split: :func:`_metal_split`), parts the metal (Fe, Cu: ~8-9 g/cm^3) from the cell's
   interior; Otsu of the interior's X-ray values parts the NMC cathode (Ni, Mn, Co oxides)
   from the light anode and separator. A three-class Otsu (Liao, Chen & Chung, J. Inf. Sci.
   Eng. 17 (2001) 713) of the light side's neutron values parts its top, the soaked porous
   separator (the brightest light class in every state), from the anode and the dry voxels
   (foil blur) below; the separator's threshold lies midway between the anode's and the
   separator's modes (their pure levels: the blurred edge of a layer crosses the midpoint at
   its boundary, and the modes, unlike the means or Otsu's split, are not pulled by the
   partial-volume voxels of the thin separator and foils).
3. The cathode's X-ray threshold lies midway between the light side's and the cathode's modes,
   the metal's :data:`METAL_SIGMAS` robust deviations above the cathode's mode (a Cu foil
   thinner than the voxels reads just above the cathode). A voxel of the cathode's X-ray band
   holds electrolyte if its neutron value is above :data:`CATHODE_FILL` of the cathode's
   level (over the void's); below, it is the Al foil's valley. That level is the brightest
   peak of the band's neutron density, not its tallest: the band also holds the foils and
   the anode blurred by the Cu foils' X-ray (Cu, Al, a charged anode: all darker in neutrons
   than the soaked cathode), on coarse voxels about as many voxels as the cathode
   (:func:`_mode`). Every mode is the peak of a density smoothed at a bandwidth from the
   data (:func:`_bandwidth`). A Li-poor anode voxel is
   darker in neutrons than the anode class by more than ``LI_POOR_SIGMAS`` of its
   deviations: relative to the cell's own anode, the study's black in cyan on a charged
   cell; on a discharged cell, where the whole anode is delithiated, it marks only what is
   poorer still (``anode_lithiated`` there means "at the anode's own level", not LiC6).
   Each class must hold :data:`MIN_CLASS_SHARE` of the interior sampled, or the thresholds
   are refused (:func:`check_classes`); so is a pair of inverted contrast, bright where
   transmitting (:func:`check_contrast`). Any threshold can be set by hand (:class:`Thresholds`).
4. Each plane is labelled by the thresholds; metal touching the outside void is the casing,
   other metal Cu. Void enclosed by cathode, and anode with cathode on both sides within a
   few voxels, is the Al collector (Al attenuates about as little as a void in both beams;
   averaged into coarse voxels with the cathode around it, it reads as anode, which never
   lies inside a cathode coating). An optional in-plane majority filter removes salt noise.
5. Foils thinner than the voxels (:func:`_thin_foils`): a Cu foil reads dimmer than the
   metal level (partial volume) and bleeds into its neighbours; an Al foil is a neutron
   valley whose blurred shoulders make the cathode around it look like anode. Each is
   redrawn one voxel thick on its mid-surface, found to a fraction of a voxel across it
   (along the Hessian's most negative curvature) after a mean along it (:func:`_sheet`). Cu:
   the X-ray says it is metal, the finer neutron where it is; the rest of the Al valley is
   cathode. Bright anode particles, blobs rather than sheets, keep only their crest. Cathode
   within :data:`CU_REACH` voxels of Cu is the anode blurred by the foil's X-ray.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_multiotsu, threshold_otsu

from jellyroll.conventions import parabola_vertex
from jellyroll.nxct.unmeasured import FillRings

LABEL_NAMES: dict[int, str] = {
    0: "void",
    1: "casing",
    2: "cu",
    3: "al",
    4: "separator_electrolyte",
    5: "cathode",
    6: "anode_lithiated",
    7: "anode_li_poor",
}
"""Label value -> component; ``anode_lithiated`` + ``anode_li_poor`` is the anode coating."""

LABELS: dict[str, int] = {name: value for value, name in LABEL_NAMES.items()}

MIN_SAMPLE = 100
"""Fewest voxels a sample (and each of its interior and outside parts) must hold."""

FULL_METAL_SIGMAS = 2.0
"""X-ray deficit, in the metal class's standard deviations, below which a metal voxel is
partial volume (a foil thinner than the voxel, or the rim of a thicker one). A voxel less
than half way from the anode to the brightest metal (its 99th percentile) is too: the metal
class's deviation, widened by the casing's blurred rim, can reach down to a blurred foil."""

VOID_FLOOR = 1e-4
"""Smallest height (fraction of a modality's span) whose log enters the void's Otsu threshold:
the noise of the void's voxels, around their 1st percentile, reaches to zero."""

CLIPPED_SHARE = 0.02
"""Share of a sample's values at (or under) its 1st percentile above which the volume is
clipped there: its void's noise cut at a floor (negative attenuation set to 0, as by a
conversion to unsigned integers: 30 % of the small twin's voxels); an unclipped one holds
1 % there."""

CLIPPED_LIFT = 0.02
"""Lift (fraction of the 1-99 % span) of the heights of a clipped sample before their log
(:func:`_log_otsu`): the void's noise left above the floor, at heights from 0 up, spread
over decades of the log under the floor's spike at :data:`VOID_FLOOR`, and Otsu parted the
spike from that noise instead of the void from the cell (the small twin's neutron volume
clipped at 0, 30 % of it at the floor: anode Dice 0.17, exit 0). Lifted, the floor and the
noise are one class below the cell. Measured on the small twin at 10 um, all four states
of charge, the neutron volume clipped at 0 to 4e-5 /um (3 deviations of its void's noise;
30-67 % of the voxels at the floor) and a noiseless void: Dice of Cu, cathode and anode
>= 0.905 with a lift of 0.02 or 0.03; 0.01 left the anode at 0.68-0.84 clipped at 0."""

VOID_SHARE = 0.5
"""Share of the way from the void's neutron level (its median) to the anode's (its mode, the
dimmest interior class in every state of charge) at which a voxel stops being void: the void
beside the casing, blurred by it, rises above the log threshold of step 1 but stays below
half the anode's level, even a discharged one's."""

MIN_CLASS_SHARE = 0.05
"""Smallest share of the sampled interior (neither void nor metal) that the metal, cathode and
anode classes must each hold: a cell's coatings fill most of it (the small twin: anode and
cathode about 40 % each, the separator 15 %); a class below it is not one the contrast parted."""

CATHODE_FILL = 0.7
"""Share of the cathode's neutron level (its mode, above the void's median) under which a voxel
in the cathode's X-ray band is not cathode but the Al foil's valley (Al holds no electrolyte;
module docstring, step 5) or the outside void beside the casing's X-ray blur. On the small
twin at 10 um the Al foil reads 0.53-0.55 of the cathode's level in all four states of charge
and 95 % of the cathode's voxels more than 0.72; the band rule gives back to the cathode the
valley's shoulders that fall under it."""

METAL_SIGMAS = 2.0
"""X-ray excess, in the cathode's robust standard deviations (1.4826 x the median absolute
deviation of its electrolyte-soaked voxels from their mode), above which a voxel holds metal."""

LI_POOR_SIGMAS = 2.5
"""Neutron deficit, in the anode class's standard deviations, of a Li-poor anode voxel."""

AL_SANDWICH_VOXELS = 2
"""Reach, in voxels, of the cathode on both sides of an anode-like voxel that makes it Al: the
Al foil (15-20 um) reads as anode once averaged into voxels of about its thickness; an anode
coating (>= 50 um) is wider than 2 * 2 + 1 voxels at such sizes."""


MAX_XRAY_VOXEL_UM = 25.0
"""Coarsest X-ray voxel (um) whose labels :func:`check_voxel_sizes` accepts: the X-ray parts
the cathode (and the metals) from the rest, so its voxel must stay well under the thinnest
coating (SPEC section 5: anode 45 um a side, cathode 55, separator 16, Cu 10). Measured on
the tiny twin (seed 0, aged_charged, on the neutron grid; Dice of Cu / cathode / anode):
neutron 10 um with X-ray 20 um 0.926 / 0.950 / 0.923 (all states >= 0.908); X-ray 24-25
um 0.76-0.90 / 0.91-0.93 / 0.89-0.90; X-ray 30 um 0.53-0.66 / 0.80-0.85 / 0.80-0.88 (three
states); 37.5-40 um 0.36-0.44 / 0.51-0.56 / 0.55-0.57: labels without meaning, exit 0."""

MAX_NEUTRON_VOXEL_UM = 15.0
"""Coarsest neutron voxel (um) whose labels :func:`check_voxel_sizes` accepts: the neutron
parts the separator (16 um) from the anode and locates the foils. Measured as
:data:`MAX_XRAY_VOXEL_UM` (both volumes at one voxel): 12.5 um 0.945 / 0.947 / 0.908, 15 um
0.909 / 0.960 / 0.856, 20 um 0.788 / 0.908 / 0.674, 25 um 0.675 / 0.872 / 0.594."""


def check_voxel_sizes(
    xray_voxel_um: float, neutron_voxel_um: float, names: tuple[str, str] = ("", "")
) -> None:
    """Refuse to segment a pair whose voxels are too coarse to resolve the electrode layers:
    an X-ray voxel over :data:`MAX_XRAY_VOXEL_UM` or a neutron one over
    :data:`MAX_NEUTRON_VOXEL_UM` (the layers of SPEC section 5, tens of um). Such a pair
    was labelled all the same, Dice down to 0.36 / 0.51 / 0.55 at a 40 um X-ray voxel, exit
    0. ``names``: the (X-ray, neutron) files, for the message."""
    for kind, voxel, limit, name in (
        ("X-ray", xray_voxel_um, MAX_XRAY_VOXEL_UM, names[0]),
        ("neutron", neutron_voxel_um, MAX_NEUTRON_VOXEL_UM, names[1]),
    ):
        if not float(voxel) <= limit:
            raise ValueError(
                f"{name + ': ' if name else ''}its {kind} voxel of {float(voxel):.4g} um is "
                f"coarser than the {limit:g} um at which the segmentation still labels the "
                "electrode layers (coatings of ~45-55 um a side, a 16 um separator, 10-15 um "
                "foils; on the twin, X-ray voxels of 40 um or neutron ones of 25 um labelled "
                "Cu, cathode and anode with Dice 0.36-0.87, at random in places). Give "
                f"{'an' if kind == 'X-ray' else 'a'} {kind} volume of voxels of at most "
                f"{limit:g} um "
                "(check its voxel size: --xct-voxel-um / --nct-voxel-um), or run without the "
                "labels: --no-segment (the fused volume and the bends only)"
            )


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds, in the units of the input volumes (e.g. 1/um).

    A voxel is metal if ``xray >= xray_metal``; else cathode if ``xray >= xray_cathode`` and
    ``neutron >= neutron_cathode``; else separator/electrolyte if ``neutron >=
    neutron_separator``; else void if ``neutron < neutron_void``; else anode, Li-poor if
    ``neutron < neutron_lithiated``. Cu below ``xray_full_metal`` is a foil thinner than the
    voxels, blurred into its neighbours: it is redrawn one voxel thick on its mid-surface; so
    is the Al foil, the neutron valley in the cathode's X-ray band (module docstring, step 5).
    """

    xray_metal: float
    xray_cathode: float
    neutron_cathode: float
    neutron_separator: float
    neutron_void: float
    neutron_lithiated: float
    xray_full_metal: float = np.inf


PEAK_SHARE = 0.3
"""Least height, as a share of the tallest peak's, of a peak of a class's density that
:func:`_mode` takes for the class's level when asked for the brightest one (the cathode's
neutron level, module docstring step 3). The band's other peaks are the foils' and the
anode's voxels blurred into the cathode's X-ray band, all darker in neutrons than the
soaked cathode and about as many on coarse voxels: the cathode's peak is 0.84-1 of the
tallest (the tiny twin, seeds 0-1, all four states of charge at 10 um on the neutron grid
and 20 um on the X-ray's, 1.8 A and 4 A; the small twin at 10 um 0.93), and what lies above
it at most 0.03 (bumps of the separator's partial volumes, 2.5 um)."""


def _bandwidth(values: np.ndarray) -> float:
    """Silverman's bandwidth (Silverman, Density Estimation, 1986, eq. 3.31) of a 1D sample,
    in its units: 0.9 min(sd, IQR / 1.349) n^(-1/5); the 0.5-99.5 % range / 256 where the
    sample has no spread by those measures."""
    low, q1, q3, high = np.percentile(values, [0.5, 25.0, 75.0, 99.5])
    spread = min(float(np.std(values)), float(q3 - q1) / 1.349)
    if not spread > 0:
        spread = float(high - low) / 256 / (0.9 * len(values) ** -0.2)
    return 0.9 * spread * len(values) ** -0.2


def _mode(values: np.ndarray, *, brightest: bool = False) -> float:
    """A 1D sample's level: the tallest peak of its density (a Gaussian kernel of
    :func:`_bandwidth` on the values in its 0.5-99.5 % range, binned at a quarter of it),
    refined by the parabola through the peak's bin and its neighbours; ``brightest``: the
    peak of the highest value among those at least :data:`PEAK_SHARE` as tall as the
    tallest.

    A histogram's bins of a fixed share of the range (256, smoothed over 2) gave a peak of
    noise on a broad class and, of two near-equal peaks, the one that a few % of the sample
    made taller: the cathode's neutron level of the tiny twin (X-ray grid, 20 um,
    discharged) the Cu foils' blur one time, the cathode the next, the threshold half of
    the neutron's span apart (:func:`find_thresholds`)."""
    low, high = np.percentile(values, [0.5, 99.5])
    if not high > low:
        return float(low)
    bandwidth = _bandwidth(values)
    bins = int(min(max(np.ceil(4 * (high - low) / bandwidth), 16), 4096))
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    width = edges[1] - edges[0]
    density = ndimage.gaussian_filter1d(
        counts.astype(np.float64), bandwidth / width, mode="constant"
    )
    padded = np.pad(density, 1)  # a peak at either end of the range counts too
    peaks = np.flatnonzero((density >= padded[:-2]) & (density > padded[2:]))
    peaks = peaks[density[peaks] >= (PEAK_SHARE if brightest else 1.0) * density.max()]
    peak = int(peaks[-1]) if len(peaks) else int(np.argmax(density))
    offset = float(parabola_vertex(*padded[peak : peak + 3]))
    return float(edges[peak] + (0.5 + offset) * width)


def _log_otsu(values: np.ndarray) -> float:
    """Otsu's threshold of the log of a 1D sample's heights above its 1st percentile (as a
    fraction of its 1-99 % span, floored at :data:`VOID_FLOOR`), back in the sample's units.
    A clipped floor (more than :data:`CLIPPED_SHARE` of the values at the 1st percentile)
    lifts the heights by :data:`CLIPPED_LIFT`."""
    low, high = np.percentile(values, [1.0, 99.0])
    lift = CLIPPED_LIFT if np.mean(values <= low) > CLIPPED_SHARE else 0.0
    height = np.clip((values - low) / (high - low) + lift, VOID_FLOOR, None)
    return float(low + (high - low) * (10 ** threshold_otsu(np.log10(height)) - lift))


ORDER_MARGIN = 1.5
"""Factor by which the first volume's bright share must exceed the second's for the pair to
be refused as swapped (:func:`check_modality_order`): the twin's right order is 2-15 %
against 32-62 %, its reverse 2.1 times or more the other way."""


def bright_share(sample: np.ndarray) -> float:
    """Share of the cell's voxels in a (n, 2) sample of (X-ray, neutron) values that lie in
    the X-ray's bright class: Otsu's split of the X-ray values of the voxels above the
    neutron's void split (:func:`_log_otsu`), as steps 1-2 part the metal. Any offset and
    positive scale of the grey values leaves it unchanged; NaN when the sample has too few
    voxels or no contrast to tell (:func:`find_thresholds` says so)."""
    values = np.asarray(sample, dtype=np.float64)
    values = values[np.isfinite(values).all(axis=1)]
    if len(values) < MIN_SAMPLE or not (np.ptp(values, axis=0) > 0).all():
        return float("nan")
    is_solid = values[:, 1] >= _log_otsu(values[:, 1])
    solid = values[is_solid, 0]
    if len(solid) < MIN_SAMPLE or not np.ptp(solid) > 0:
        return float("nan")
    return float(np.mean(solid >= _metal_split(values[:, 0], is_solid)))


def _metal_split(xray: np.ndarray, is_solid: np.ndarray) -> float:
    """Otsu's split of the X-ray values ``xray`` (n,) of a sample's voxels above the neutron's
    void split (``is_solid``) and of its other voxels brighter in X-rays than their median.

    The steel casing, dim in thermal neutrons, may lie under the void's split (the more so
    in a neutron volume clipped at its void, :func:`_log_otsu`); without it the Cu foils
    alone were too few for Otsu, which parted the cathode from the light side instead: the
    small twin at 1.8 A (a thermal beam; the study's cold 4 A keeps the casing above the
    split), aged_charged: Dice of the cathode 0.003, Cu 0.53, exit 0 (now 0.955, 0.926).
    The void's own voxels lie far under the median, the casing's far above it."""
    beside = ~is_solid & (xray > np.median(xray[is_solid]))
    return float(threshold_otsu(xray[is_solid | beside]))


def neutron_like_first(sample: np.ndarray) -> tuple[float, float] | None:
    """The bright-class shares (:func:`bright_share`) of the two columns of a (n, 2)
    ``sample`` when the first's is over :data:`ORDER_MARGIN` times the second's: the first
    has the neutron's contrast beside X-ray contrast (see :func:`check_modality_order`);
    else None (also when too little to tell: NaN)."""
    first, second = bright_share(sample), bright_share(np.asarray(sample)[:, ::-1])
    return (first, second) if first > ORDER_MARGIN * second else None


_CONTRASTS = (
    "in X-rays the bright class is the metals, a thin minority (foils, casing), in neutrons "
    "the electrolyte-soaked layers, a large part"
)


def check_modality_order(sample: np.ndarray, names: tuple[str, str] = ("", "")) -> None:
    """Refuse an X-ray / neutron pair given the wrong way round; the message names the two
    volumes as ``names`` (X-ray, neutron) when given.

    The X-ray's bright class is the metals (Cu foils, steel casing: ~1.5-2 /cm at 60 keV
    against < 0.9 /cm for the rest), a thin minority of the cell; the neutron's is the
    electrolyte-soaked cathode and separator (hydrogen and lithium: 3-6.6 /cm), a large
    part of it. So the share of the cell in the first volume's bright class
    (:func:`bright_share`) lies below that in the second's; refused when it is above by
    :data:`ORDER_MARGIN` (:func:`neutron_like_first`). Measured on the small twin, all four
    states of charge: 0.02-0.15 against 0.32-0.62 (voxels of 2.5, 10 and 20 um). A cell
    unlike it (e.g. an Al can, a cathode as bright as the foils in X-rays) may skip the
    check (``NXCTOptions.check_order``).
    """
    found = neutron_like_first(sample)
    if found is not None:
        given = f"{names[0]} (X-ray), {names[1]} (neutron): " if any(names) else ""
        raise ValueError(
            f"{given}the first volume's bright class holds {found[0]:.0%} of the cell, the "
            f"second's {found[1]:.0%}: {_CONTRASTS}. Are the volumes swapped? Give the X-ray "
            "volume first, then the neutron one (or, for a cell unlike that, skip the check: "
            "--no-order-check)"
        )


def check_xray_contrast(plane: np.ndarray, attenuation_map: np.ndarray, name: str = "") -> None:
    """Refuse a volume given as the X-ray one that has the neutron's contrast, from its
    ``plane`` (ny, nx) resampled at the SWAXS-CT slice and the slice's own X-ray
    ``attenuation_map`` (ny, nx) on the same grid, by the rule of
    :func:`check_modality_order` with the map as the X-ray side. Measured on the tiny
    twins (seeds 2, 3, 5; all four states of charge on seed 4): the X-ray volume 0.8 times
    the map's share, the neutron one 3.3-3.5 times. ``name`` names the volume."""
    found = neutron_like_first(np.column_stack([np.ravel(plane), np.ravel(attenuation_map)]))
    if found is not None:
        raise ValueError(
            f"{name + ': ' if name else ''}its bright class holds {found[0]:.0%} of the cell "
            f"at the slice, the SWAXS-CT attenuation map's (X-rays) {found[1]:.0%}: "
            f"{_CONTRASTS}. Is it the neutron volume? Give the X-ray volume (and the neutron "
            "one with --nct), or, for a cell unlike that, skip the check: --no-order-check"
        )


def find_thresholds(sample: np.ndarray) -> Thresholds:
    """Thresholds from a (n, 2) sample of (X-ray, neutron) values of the registered pair (see
    the module's method, steps 1-3). Raises ``ValueError`` where a class is missing
    (:func:`check_classes`)."""
    sample = np.asarray(sample, dtype=np.float64)
    sample = sample[np.isfinite(sample).all(axis=1)]
    if len(sample) < MIN_SAMPLE or not (np.ptp(sample, axis=0) > 0).all():
        raise ValueError(
            f"the sample ({len(sample)} finite voxels) has no contrast in one modality or is "
            f"smaller than {MIN_SAMPLE}: sample more voxels of the registered pair"
        )
    void_split = _log_otsu(sample[:, 1])
    void = sample[sample[:, 1] < void_split]
    solid = sample[sample[:, 1] >= void_split]
    if len(solid) < MIN_SAMPLE or len(void) < MIN_SAMPLE:
        raise ValueError(
            "the sample is all interior or all void in the neutron channel: it must cross the "
            "cell's wall (sample whole planes of the registered pair)"
        )
    metal_split = _metal_split(sample[:, 0], sample[:, 1] >= void_split)
    check_contrast(void[:, 0], solid[:, 0], metal_split)
    metal = sample[sample[:, 0] >= metal_split, 0]  # the casing may lie under the void's split
    interior = solid[solid[:, 0] < metal_split]
    xray_split = float(threshold_otsu(interior[:, 0]))
    cathode = interior[interior[:, 0] >= xray_split]
    light = interior[interior[:, 0] < xray_split]
    soaked_split = float(threshold_multiotsu(light[:, 1], classes=3)[1])
    anode = light[light[:, 1] < soaked_split]
    anode_neutron = _mode(anode[:, 1])
    neutron_separator = 0.5 * (anode_neutron + _mode(light[light[:, 1] >= soaked_split, 1]))
    check_classes(
        {"metal": metal, "cathode": cathode[:, 0], "anode": anode[:, 1]},
        interior=len(interior),
    )
    metal_mean, metal_sd = float(metal.mean()), float(metal.std())
    void_neutron = float(np.median(void[:, 1]))
    cathode_neutron = _mode(cathode[:, 1], brightest=True)
    neutron_cathode = void_neutron + CATHODE_FILL * (cathode_neutron - void_neutron)
    soaked = cathode[cathode[:, 1] >= neutron_cathode, 0]
    check_classes({"electrolyte-soaked cathode": soaked}, interior=len(interior))
    cathode_xray = _mode(soaked)
    xray_cathode = 0.5 * (_mode(light[:, 0]) + cathode_xray)
    spread = 1.4826 * float(np.median(np.abs(soaked - cathode_xray)))
    return Thresholds(
        xray_metal=cathode_xray + METAL_SIGMAS * spread,
        xray_cathode=xray_cathode,
        neutron_cathode=neutron_cathode,
        neutron_separator=neutron_separator,
        neutron_void=void_neutron + VOID_SHARE * (anode_neutron - void_neutron),
        neutron_lithiated=float(anode[:, 1].mean() - LI_POOR_SIGMAS * anode[:, 1].std()),
        xray_full_metal=max(
            metal_mean - FULL_METAL_SIGMAS * metal_sd,
            0.5 * (float(np.percentile(metal, 99)) + float(anode[:, 0].mean())),
        ),
    )


MAX_METAL_SHARE = 0.5
"""Largest share of the cell's voxels (above the neutron's void split) in the X-ray's metal
class: the foils and the casing are a thin minority (the small twin: 1-22 % in all four
states of charge, also clipped or noiseless; both volumes' contrast inverted: 88-90 %)."""


def check_contrast(void_xray: np.ndarray, solid_xray: np.ndarray, metal_split: float) -> None:
    """Refuse a pair whose contrast is inverted (bright = transmitting, not attenuating): the
    X-ray values of the neutron's void class (``void_xray``) must lie below those of the cell
    (``solid_xray``; medians: the void is low in both beams), and the X-ray's metal class
    (``metal_split`` up) must hold at most :data:`MAX_METAL_SHARE` of the cell. Inverted,
    one volume or both, the thresholds were found all the same and labelled the small twin
    with Dice of Cu, cathode, anode 0.00-0.24, 0.00-0.51, 0.08-0.65, exit 0. A field of view
    inside the cell (or one that cuts it deep) fails it too, the cathode the bright class
    (the small twin's planes cropped inside the roll: 59-68 %); the message says both."""
    void_level, cell_level = float(np.median(void_xray)), float(np.median(solid_xray))
    share = float(np.mean(solid_xray >= metal_split))
    if not void_level < cell_level:
        found = (
            f"the voxels darkest in the neutron volume are not dark in the X-ray one (X-ray "
            f"median {void_level:.4g} against {cell_level:.4g} for the rest)"
        )
    elif share > MAX_METAL_SHARE:
        found = (
            f"the X-ray's bright class holds {share:.0%} of the cell, not the thin metals "
            "(foils, casing)"
        )
    else:
        return
    raise ValueError(
        f"{found}: the void is dark in both volumes of an attenuation pair. Is one volume's "
        "contrast, or both, inverted (bright = transmitting)? Give attenuation volumes "
        "(bright = attenuating). Or does the field of view lie inside the cell, or cut it "
        "deep (no void and casing around the roll, its cathode taken for the metals)? Set "
        "the thresholds by hand"
    )


def check_classes(classes: dict[str, np.ndarray], interior: int) -> None:
    """Refuse a segmentation whose classes the contrast did not part: each of ``classes``
    (name -> its sample's values) must hold at least :data:`MIN_CLASS_SHARE` of the
    ``interior`` sample (voxels neither void nor metal)."""
    for name, values in classes.items():
        if len(values) < MIN_CLASS_SHARE * max(interior, 1):
            raise ValueError(
                f"the {name} class holds {len(values)} of the {interior} interior voxels sampled"
                f" (under {MIN_CLASS_SHARE:.0%}): the contrast of this pair does not part it;"
                " is it a registered X-ray / neutron pair of a cell? Set the thresholds by hand"
            )


def _majority(labels: np.ndarray, size: int) -> np.ndarray:
    """In-plane majority (mode) filter of ``size`` x ``size`` on (nz, ny, nx) labels."""
    best = np.zeros(labels.shape, np.float32)
    out = labels.copy()
    for value in np.unique(labels):
        share = ndimage.uniform_filter(
            (labels == value).astype(np.float32), size=(1, size, size), mode="nearest"
        )
        better = share > best
        out[better] = value
        best = np.maximum(best, share)
    return out


def _split_plane(plane: np.ndarray, metal: np.ndarray, seen: np.ndarray | None = None) -> None:
    """Casing vs Cu, and Al, in one labelled plane (in place); ``seen``: the voxels measured
    in both volumes (default all).

    The casing is the metal that touches the outside void: measured void voxels connected to
    the plane's border or to the edge of the field of view (the unmeasured voxels), or that
    runs along that edge (touches it over at least twice the square root of its area: an arc
    of the casing that the field of view cuts, longer than 4 times its thickness). Not metal
    that merely ends at the edge: a field of view that cut the roll made every Cu foil it cut
    "casing", drawn as thick as its X-ray blur (the small twin at 10 um, the X-ray's top 50
    rows NaN: 722 Cu and 935 anode voxels labelled casing, 663 anode ones cathode beside the
    foils, 96.4 % of the voxels in view as before, exit 0; now 99.8 %).

    Al attenuates about as little as a void in both beams: a void region enclosed mostly (>
    half its rim) by cathode is Al. At coarse voxels the foil, averaged with the cathode
    around it, reads as anode instead: anode voxels with cathode on both sides within
    :data:`AL_SANDWICH_VOXELS` along a line are Al too (no anode lies inside a cathode
    coating; the separator always parts them).
    """
    seen = np.ones(plane.shape, bool) if seen is None else seen
    void = (plane == LABELS["void"]) & seen
    regions, _ = ndimage.label(void)
    edge = np.zeros(plane.shape, bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    edge |= ndimage.binary_dilation(~seen)
    touching_edge = np.unique(regions[edge & void])
    outside = np.isin(regions, touching_edge[touching_edge > 0])
    parts, n_parts = ndimage.label(metal)
    if n_parts:
        touching = np.unique(parts[ndimage.binary_dilation(outside) & metal])
        along = np.bincount(
            parts[ndimage.binary_dilation(~seen) & metal], minlength=n_parts + 1
        ) >= 2 * np.sqrt(np.bincount(parts.ravel(), minlength=n_parts + 1))
        along[0] = False
        plane[metal] = LABELS["cu"]
        plane[np.isin(parts, touching[touching > 0]) | along[parts]] = LABELS["casing"]
    enclosed, n_enclosed = ndimage.label(void & ~outside)
    if n_enclosed:
        ring = ndimage.binary_dilation(enclosed > 0) & (enclosed == 0)
        grown = ndimage.grey_dilation(enclosed, size=(3, 3))
        cathode = np.bincount(
            grown[ring], weights=plane[ring] == LABELS["cathode"], minlength=n_enclosed + 1
        )
        total = np.bincount(grown[ring], minlength=n_enclosed + 1)
        is_al = cathode > 0.5 * np.maximum(total, 1)
        is_al[0] = False
        plane[is_al[enclosed]] = LABELS["al"]
    anode = np.isin(plane, (LABELS["anode_lithiated"], LABELS["anode_li_poor"]))
    plane[anode & _sandwiched(plane == LABELS["cathode"], AL_SANDWICH_VOXELS)] = LABELS["al"]


def _sandwiched(mask: np.ndarray, reach: int) -> np.ndarray:
    """Pixels of a 2D plane with ``mask`` on both sides within ``reach`` pixels along one of
    the four lines (rows, columns, diagonals) through them."""
    padded = np.pad(mask, reach)
    ny, nx = mask.shape
    out = np.zeros(mask.shape, bool)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ahead = np.zeros(mask.shape, bool)
        behind = np.zeros(mask.shape, bool)
        for step in range(1, reach + 1):
            y, x = reach + step * dy, reach + step * dx
            ahead |= padded[y : y + ny, x : x + nx]
            y, x = reach - step * dy, reach - step * dx
            behind |= padded[y : y + ny, x : x + nx]
        out |= ahead & behind
    return out


def mask_fill_rings(
    xray_slab: np.ndarray, neutron_slab: np.ndarray, rings: tuple[FillRings, FillRings]
) -> None:
    """Set NaN (in place) in both float (nz, ny, nx) slabs where either holds a
    reconstruction's fill ring or a blank plane (:func:`jellyroll.nxct.unmeasured.fill_ring`,
    found by ``rings``, the (X-ray, neutron) :class:`~jellyroll.nxct.unmeasured.FillRings`
    of the slabs before): not measured, black in the fused RGB and void in the labels, as
    NaN. Before, the fill kept its value in the RGB: a ring or a padding plane of 0 in a
    volume whose void reads -1000 (an integer volume's raw values) was as bright as the
    metals there (red 255), exit 0."""
    for x_plane, n_plane in zip(xray_slab, neutron_slab, strict=True):
        unmeasured = rings[0](x_plane) | rings[1](n_plane)
        x_plane[unmeasured] = n_plane[unmeasured] = np.nan


def classify(
    xray: np.ndarray,
    neutron: np.ndarray,
    thresholds: Thresholds,
    *,
    majority_size: int = 0,
    rings: tuple[FillRings, FillRings] | None = None,
    masked: bool = False,
) -> np.ndarray:
    """uint8 labels (:data:`LABEL_NAMES`) of (nz, ny, nx) slabs of the registered pair.

    Voxels not measured in either volume are void: NaN or inf (outside a field of view), or
    the fill ring outside a reconstruction's circle
    (:func:`jellyroll.nxct.unmeasured.fill_ring`).
    ``majority_size`` > 1: an in-plane majority filter of that size before the casing / Cu and
    Al rules. ``rings``: the (X-ray, neutron) :class:`~jellyroll.nxct.unmeasured.FillRings`
    of the slabs before, so that the next slab checks their last rings rather than searching
    (default: new ones for this slab). ``masked``: the slabs' rings are NaN already
    (:func:`mask_fill_rings`, as `jellyroll nxct` does for the fused RGB), not searched
    again.
    """
    x, n = (np.array(v, dtype=np.float32, ndmin=3) for v in (xray, neutron))
    if not masked:
        mask_fill_rings(x, n, rings if rings is not None else (FillRings(), FillRings()))
    x[~np.isfinite(x)] = -np.inf
    n[~np.isfinite(n)] = -np.inf
    t = thresholds
    labels = np.full(x.shape, LABELS["anode_lithiated"], np.uint8)
    labels[n < t.neutron_lithiated] = LABELS["anode_li_poor"]
    labels[n < t.neutron_void] = LABELS["void"]
    labels[n >= t.neutron_separator] = LABELS["separator_electrolyte"]
    labels[(x >= t.xray_cathode) & (n >= t.neutron_cathode)] = LABELS["cathode"]
    seen = np.isfinite(x) & np.isfinite(n)
    labels[~seen] = LABELS["void"]
    beside_foil = labels.copy()
    # in both fields of view only: casing outside the neutron's was labelled Cu, not void
    labels[(x >= t.xray_metal) & seen] = LABELS["cu"]
    if majority_size > 1:
        labels = _majority(labels, majority_size)
    for plane, x_plane, n_plane, below, seen_plane in zip(
        labels, x, n, beside_foil, seen, strict=True
    ):
        _split_plane(plane, plane == LABELS["cu"], seen_plane)
        x_finite = np.where(np.isfinite(x_plane), x_plane, 0.0)
        n_finite = np.where(np.isfinite(n_plane), n_plane, 0.0)
        _thin_foils(plane, x_finite, n_finite, below, t)
    labels[~seen] = LABELS["void"]  # the majority filter and the foils' redrawing too
    return labels


def _thin_foils(
    plane: np.ndarray,
    x: np.ndarray,
    n: np.ndarray,
    below: np.ndarray,
    t: Thresholds,
) -> None:
    """Cu and Al foils thinner than the voxels, in one labelled plane (in place).

    Cu dimmer than ``xray_full_metal`` is a foil blurred into its neighbours: it is redrawn
    one voxel thick on its mid-surface, the ridge across the sheet of the X-ray excess minus
    the neutron deficit (each in units of the span of its thresholds, metal to cathode and
    separator to void, so that an offset of the grey levels does not matter: the X-ray says
    it is metal, the finer neutron, where Cu is a valley between two anode coatings, where it
    is), located to a fraction of a voxel (:func:`_sheet`). Anode-like voxels in
    the cathode's X-ray band (X-ray above ``xray_cathode``, away from metal) lie inside a
    cathode coating pair: the Al foil, a neutron valley (Al holds no electrolyte), is redrawn
    the same way on the valley's mid-surface and the rest is cathode, which the blurred valley
    made look anode-like.
    """
    cu = plane == LABELS["cu"]
    thin = cu & (x < t.xray_full_metal)
    plane[thin] = below[thin]
    blurred = (plane == LABELS["cathode"]) & ndimage.binary_dilation(cu, iterations=CU_REACH)
    plane[blurred] = np.where(
        n[blurred] < t.neutron_lithiated, LABELS["anode_li_poor"], LABELS["anode_lithiated"]
    )
    anode = np.isin(plane, (LABELS["anode_lithiated"], LABELS["anode_li_poor"]))
    x_span = max(t.xray_metal - t.xray_cathode, np.finfo(np.float32).tiny)
    n_span = max(t.neutron_separator - t.neutron_void, np.finfo(np.float32).tiny)
    foil = _sheet(x / x_span - n / n_span, thin)
    plane[foil & (thin | anode)] = LABELS["cu"]
    near_metal = ndimage.maximum_filter(x >= t.xray_metal, size=5)
    band = (x >= t.xray_cathode) & ~near_metal
    band &= np.isin(plane, (LABELS["al"], LABELS["anode_lithiated"], LABELS["anode_li_poor"]))
    al = _sheet(-n, band)
    plane[band] = np.where(al[band], LABELS["al"], LABELS["cathode"])


CU_REACH = 2
"""Reach, in voxels, of a Cu foil's X-ray blur that makes its anode coating read as cathode
where the anode's neutron level is as high as the cathode's (a charged cell): no cathode lies
that near a Cu foil, the anode coating (>= 50 um) and the separator part them."""

ALONG_LAYER_VOXELS = 2
"""Reach, in voxels, of the Gaussian-weighted mean along the layers taken before locating a
foil across them (the noise drops by about sqrt(3); the layers bend over much longer arcs)."""

RIDGE_SCALE_VOXELS = 2.0
"""Gaussian scale, in voxels, of the Hessian whose most negative curvature gives the
direction across a sheet: about the width of a blurred foil's profile (the small twin's
10 um foil under its 20 um X-ray voxel and blur: a Gaussian of about 1.6 fine voxels).
Measured on the small twin at 10 um (seeds 0-2): 1 voxel gave Cu Dice 0.90-0.92, 1.5 and 2
voxels 0.91-0.92; at 2.5 um, 0.94, 0.95 and 0.96. A structure tensor's normal, tried first,
turned along the sheet near its end (the step into the void there outweighs the sheet) and
drew the end three voxels thick."""


def _across_sheets(score: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """(2, n) unit directions (y, x) of the most negative curvature of a 2D plane's ``score``
    at pixels (``ys``, ``xs``): the Hessian, by central differences, of the score smoothed by a
    Gaussian of :data:`RIDGE_SCALE_VOXELS`. Across a bright sheet, also near its end, where
    the step along the sheet bends the profile less than the sheet across."""
    smooth = np.pad(
        ndimage.gaussian_filter(score.astype(np.float32), RIDGE_SCALE_VOXELS, truncate=3.0),
        1,
        mode="edge",
    )
    y, x = ys + 1, xs + 1
    hyy = smooth[y + 1, x] - 2 * smooth[y, x] + smooth[y - 1, x]
    hxx = smooth[y, x + 1] - 2 * smooth[y, x] + smooth[y, x - 1]
    hxy = (
        smooth[y + 1, x + 1] - smooth[y + 1, x - 1] - smooth[y - 1, x + 1] + smooth[y - 1, x - 1]
    ) / 4
    angle = 0.5 * np.arctan2(2 * hxy, hyy - hxx) + np.pi / 2
    return np.stack([np.cos(angle), np.sin(angle)])


def _sheet(score: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The voxels of a sheet thinner than a voxel, drawn one voxel thick on its mid-surface.

    ``score`` peaks across the sheet; at each candidate pixel it is averaged along the layer
    (:data:`ALONG_LAYER_VOXELS`) at the pixel and one voxel to either side across the sheet
    (:func:`_across_sheets`; bilinear). Candidates at least as high as both sides are the
    ridge; a parabola through the three places the mid-surface to a fraction of a voxel, and
    the ridge's 8-neighbours whose centre lies within half a voxel of it across join it
    (where the sheet straddles two voxels, both hold about half of it).
    """
    ys, xs = np.nonzero(candidates)
    out = np.zeros(score.shape, bool)
    if len(ys) == 0:
        return out
    ny, nx = _across_sheets(score, ys, xs)
    reach = np.arange(-ALONG_LAYER_VOXELS, ALONG_LAYER_VOXELS + 1)
    weights = np.exp(-0.5 * (reach / (ALONG_LAYER_VOXELS / 2)) ** 2)
    weights /= weights.sum()
    profile = []
    for across in (-1.0, 0.0, 1.0):
        value = np.zeros(len(ys))
        for along, weight in zip(reach, weights, strict=True):
            coords = [ys + across * ny - along * nx, xs + across * nx + along * ny]
            value += weight * ndimage.map_coordinates(score, coords, order=1, mode="nearest")
        profile.append(value)
    down, centre, up = profile
    ridge = (centre >= up) & (centre >= down)
    offset = parabola_vertex(down, centre, up)
    ys, xs, ny, nx, offset = ys[ridge], xs[ridge], ny[ridge], nx[ridge], offset[ridge]
    out[ys, xs] = True
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near = np.abs(dy * ny + dx * nx - offset) <= 0.5
            y, x = ys[near] + dy, xs[near] + dx
            inside = (y >= 0) & (y < score.shape[0]) & (x >= 0) & (x < score.shape[1])
            out[y[inside], x[inside]] = True
    return out


def segment_slabs(
    xray: Any,
    neutron: Any,
    thresholds: Thresholds,
    *,
    slab: int = 16,
    majority_size: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(z_start, labels)`` of :func:`classify` slab by slab of two (nz, ny, nx)
    array-likes on one grid (arrays, memmaps, h5py datasets: only slabs are read)."""
    if tuple(xray.shape) != tuple(neutron.shape) or len(xray.shape) != 3:
        raise ValueError(f"volumes must share one 3D shape, got {xray.shape} and {neutron.shape}")
    rings = (FillRings(), FillRings())
    for z0 in range(0, xray.shape[0], slab):
        z1 = min(z0 + slab, xray.shape[0])
        yield (
            z0,
            classify(
                xray[z0:z1], neutron[z0:z1], thresholds, majority_size=majority_size, rings=rings
            ),
        )

"""Segmentation of a registered X-ray / neutron pair into the cell's components.

Method:

1. A Gaussian mixture of six components is fitted by expectation-maximisation (Dempster,
   Laird & Rubin, J. R. Stat. Soc. B 39 (1977) 1) to the joint (X-ray, neutron) histogram of a
   voxel sample (each axis scaled to its 1-99 % window; bins weighted by their counts).
2. The clusters are named by physical order, not by a table of the phantom: the two metals
   (steel casing, Cu collector: Fe and Cu, Z = 26 and 29 at ~8-9 g/cm^3) have the two highest
   X-ray attenuations (Cu the higher, but a collector thinner than the resolution appears
   dimmer, so the two are told apart by position, step 4); voids the lowest of both; at
   coarse voxels the void's rim, brightened in X-ray by the blurred casing but dark in
   neutrons, takes a cluster of its own (``extra``: the darkest-neutron one below Otsu's
   neutron threshold, else a second anode population); of the rest, the NMC cathode (Ni, Mn,
   Co oxides) the highest X-ray; the separator soaked in carbonate electrolyte the highest
   neutron (most H); the remaining cluster is the graphite anode (light elements, Li and H of
   the electrolyte).
3. Thresholds sit between adjacent clusters, at the point as many of each cluster's standard
   deviations from both means (the metal one between the cathode and the brighter metal
   cluster: the dimmer one gathers partial-volume voxels; the cathode's neutron one between
   anode and cathode, whose neutron contrast also parts the two where the X-ray, blurred at
   coarse voxels, does not); void is below Otsu's neutron threshold (Otsu, IEEE Trans. Syst.
   Man Cybern. 9 (1979) 62) of the sample; a Li-poor anode voxel is darker in neutrons than
   the anode cluster by more than ``LI_POOR_SIGMAS`` of its deviations (the study's black in
   cyan). Any threshold can be set by hand (:class:`Thresholds`).
4. Each plane is labelled by the thresholds; metal touching the outside void is the casing,
   other metal Cu; void enclosed by cathode, and anode with cathode on both sides (a foil
   thinner than a few voxels), is the Al collector (Al attenuates about as little as a void
   in both beams); an optional in-plane majority filter removes salt noise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

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

N_STARTS = 4
"""EM runs from different k-means++ seeds; the one of highest likelihood is kept."""

LI_POOR_SIGMAS = 2.5
"""Neutron deficit, in the anode cluster's standard deviations, of a Li-poor anode voxel."""

AL_SANDWICH_VOXELS = 2
"""Reach, in voxels, of the cathode on both sides of an anode-like voxel that makes it Al: the
Al foil (15-20 um) reads as anode once averaged into voxels of about its thickness; an anode
coating (>= 50 um) is wider than 2 * 2 + 1 voxels at such sizes."""

_CLUSTERS = ("metal", "metal_2", "void", "extra", "cathode", "separator", "anode")


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds, in the units of the input volumes (e.g. 1/um).

    A voxel is metal if ``xray >= xray_metal``; else cathode if ``xray >= xray_cathode`` and
    ``neutron >= neutron_cathode``; else separator/electrolyte if ``neutron >=
    neutron_separator``; else void if ``neutron < neutron_void``; else anode, Li-poor if
    ``neutron < neutron_lithiated``. Cu below ``xray_full_metal`` is a foil thinner than the
    voxels, blurred into its neighbours: only its ridge (the foil's centre line) stays Cu.
    """

    xray_metal: float
    xray_cathode: float
    neutron_cathode: float
    neutron_separator: float
    neutron_void: float
    neutron_lithiated: float
    xray_full_metal: float = np.inf


@dataclass(frozen=True)
class GaussianMixture:
    """A 2D Gaussian mixture: weights (k,), means (k, 2), covariances (k, 2, 2), and the mean
    log-likelihood per sample of the histogram it was fitted to."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    log_likelihood: float


def _log_gauss(points: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """log N(points; mean, cov) for points (n, 2)."""
    d = points - mean
    inv = np.linalg.inv(cov)
    maha = np.einsum("ni,ij,nj->n", d, inv, d)
    return -0.5 * (maha + np.log(np.linalg.det(cov)) + 2 * np.log(2 * np.pi))


def fit_gmm_histogram(
    points: np.ndarray,
    n_components: int = 5,
    *,
    bins: int = 64,
    n_iter: int = 300,
    tol: float = 1e-7,
    seed: int = 0,
) -> GaussianMixture:
    """EM fit (Dempster et al. 1977) of a 2D Gaussian mixture to the histogram of ``points``.

    ``points``: (n, 2). The EM runs on the ``bins`` x ``bins`` histogram's non-empty bin
    centres weighted by their counts; each covariance gets the binning variance (width^2 / 12)
    added. Initial means: weighted k-means++ seeding (Arthur & Vassilvitskii, SODA 2007) with
    ``numpy.random.default_rng(seed)``, then 20 weighted Lloyd iterations.
    """
    points = np.asarray(points, dtype=np.float64)
    counts, ex, ey = np.histogram2d(points[:, 0], points[:, 1], bins=bins)
    cx, cy = (ex[1:] + ex[:-1]) / 2, (ey[1:] + ey[:-1]) / 2
    keep = counts > 0
    grid = np.stack(np.meshgrid(cx, cy, indexing="ij"), axis=-1)[keep]
    w = counts[keep] / counts.sum()
    floor = np.diag([(ex[1] - ex[0]) ** 2 / 12, (ey[1] - ey[0]) ** 2 / 12])

    rng = np.random.default_rng(seed)
    means = [grid[rng.choice(len(grid), p=w)]]
    for _ in range(1, n_components):
        d2 = np.min([((grid - m) ** 2).sum(1) for m in means], axis=0) * w
        means.append(grid[rng.choice(len(grid), p=d2 / d2.sum())])
    means = np.array(means)
    for _ in range(20):
        nearest = np.argmin(((grid[:, None] - means[None]) ** 2).sum(-1), axis=1)
        for k in range(n_components):
            if w[nearest == k].sum() > 0:
                means[k] = np.average(grid[nearest == k], axis=0, weights=w[nearest == k])
    spread = np.cov(grid.T, aweights=w) / n_components + floor
    covs = np.repeat(spread[None], n_components, axis=0)
    weights = np.full(n_components, 1.0 / n_components)

    previous = -np.inf
    for _ in range(n_iter):
        log_p = np.stack(
            [np.log(weights[k]) + _log_gauss(grid, means[k], covs[k]) for k in range(n_components)],
            axis=1,
        )
        top = log_p.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(log_p - top).sum(axis=1))
        resp = np.exp(log_p - log_norm[:, None]) * w[:, None]
        nk = resp.sum(axis=0) + 1e-300
        weights = nk / nk.sum()
        means = (resp.T @ grid) / nk[:, None]
        for k in range(n_components):
            d = grid - means[k]
            covs[k] = (resp[:, k, None] * d).T @ d / nk[k] + floor
        likelihood = float((w * log_norm).sum())
        if likelihood - previous < tol:
            break
        previous = likelihood
    return GaussianMixture(weights, means, covs, likelihood)


def name_clusters(mixture: GaussianMixture, matter_neutron: float) -> dict[str, int]:
    """Cluster index of each of :data:`_CLUSTERS` by physical order.

    Metals: the two highest X-ray means (``metal`` the dimmer); void: lowest X-ray + neutron of
    the rest; ``extra``: of the rest, the lowest neutron mean if below ``matter_neutron`` (the
    rim of the void that the blurred casing brightens in X-ray at coarse voxels), else the
    smallest cluster that is neither of the highest X-ray nor the highest neutron (a
    second anode population); cathode: highest X-ray of the rest; separator: highest neutron
    of the rest; anode: the last.
    """
    if len(mixture.weights) != len(_CLUSTERS):
        raise ValueError(f"expected {len(_CLUSTERS)} clusters, got {len(mixture.weights)}")
    means, weights = mixture.means, mixture.weights
    left = list(range(len(means)))
    named = {}

    def take(name: str, key: Any) -> None:
        named[name] = min(left, key=key)
        left.remove(named[name])

    take("metal_2", lambda k: -means[k, 0])
    take("metal", lambda k: -means[k, 0])
    take("void", lambda k: means[k, 0] + means[k, 1])
    dimmest = min(left, key=lambda k: means[k, 1])
    if means[dimmest, 1] < matter_neutron:
        take("extra", lambda k: means[k, 1])
        take("cathode", lambda k: -means[k, 0])
        take("separator", lambda k: -means[k, 1])
    else:
        take("cathode", lambda k: -means[k, 0])
        take("separator", lambda k: -means[k, 1])
        take("extra", lambda k: weights[k])
    named["anode"] = left[0]
    return named


def _between(mean_a: float, sd_a: float, mean_b: float, sd_b: float) -> float:
    """The point between two means at the same number of each one's standard deviations."""
    return (mean_a * sd_b + mean_b * sd_a) / (sd_a + sd_b)


def find_thresholds(sample: np.ndarray, *, seed: int = 0) -> Thresholds:
    """Thresholds from a (n, 2) sample of (X-ray, neutron) values of the registered pair."""
    sample = np.asarray(sample, dtype=np.float64)
    sample = sample[np.isfinite(sample).all(axis=1)]
    lo = np.percentile(sample, 1, axis=0)
    scale = np.percentile(sample, 99, axis=0) - lo
    if not (scale > 0).all():
        raise ValueError("the sample has no contrast in one modality")
    scaled = (sample - lo) / scale
    fits = [fit_gmm_histogram(scaled, len(_CLUSTERS), seed=seed + k) for k in range(N_STARTS)]
    mixture = max(fits, key=lambda fit: fit.log_likelihood)
    matter = float(threshold_otsu(scaled[:, 1]))
    named = name_clusters(mixture, matter)
    mean = {n: mixture.means[k] * scale + lo for n, k in named.items()}
    sd = {n: np.sqrt(np.diag(mixture.covariances[k])) * scale for n, k in named.items()}

    def cut(a: str, b: str, axis: int) -> float:
        return float(_between(mean[a][axis], sd[a][axis], mean[b][axis], sd[b][axis]))

    return Thresholds(
        xray_metal=cut("cathode", "metal_2", 0),
        xray_cathode=cut("anode", "cathode", 0),
        neutron_cathode=cut("anode", "cathode", 1),
        neutron_separator=cut("anode", "separator", 1),
        neutron_void=matter * scale[1] + lo[1],
        neutron_lithiated=float(mean["anode"][1] - LI_POOR_SIGMAS * sd["anode"][1]),
        xray_full_metal=float((mean["metal_2"][0] + mean["anode"][0]) / 2),
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


def _split_plane(plane: np.ndarray, metal: np.ndarray) -> None:
    """Casing vs Cu, and Al, in one labelled plane (in place).

    Al attenuates about as little as a void in both beams: a void region enclosed mostly (>
    half its rim) by cathode is Al. At coarse voxels the foil, averaged with the cathode
    around it, reads as anode instead: anode voxels with cathode on both sides within
    :data:`AL_SANDWICH_VOXELS` along a line are Al too (no anode lies inside a cathode
    coating; the separator always parts them).
    """
    void = plane == LABELS["void"]
    regions, _ = ndimage.label(void)
    border = np.unique(np.r_[regions[0], regions[-1], regions[:, 0], regions[:, -1]])
    outside = np.isin(regions, border[border > 0])
    parts, n_parts = ndimage.label(metal)
    if n_parts:
        touching = np.unique(parts[ndimage.binary_dilation(outside) & metal])
        plane[metal] = LABELS["cu"]
        plane[np.isin(parts, touching[touching > 0])] = LABELS["casing"]
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


def classify(
    xray: np.ndarray, neutron: np.ndarray, thresholds: Thresholds, *, majority_size: int = 0
) -> np.ndarray:
    """uint8 labels (:data:`LABEL_NAMES`) of (nz, ny, nx) slabs of the registered pair.

    NaN voxels (outside a field of view) are void. ``majority_size`` > 1: an in-plane majority
    filter of that size before the casing / Cu and Al rules.
    """
    x = np.nan_to_num(np.asarray(xray, dtype=np.float32), nan=-np.inf)
    n = np.nan_to_num(np.asarray(neutron, dtype=np.float32), nan=-np.inf)
    t = thresholds
    labels = np.full(x.shape, LABELS["anode_lithiated"], np.uint8)
    labels[n < t.neutron_lithiated] = LABELS["anode_li_poor"]
    labels[n < t.neutron_void] = LABELS["void"]
    labels[n >= t.neutron_separator] = LABELS["separator_electrolyte"]
    labels[(x >= t.xray_cathode) & (n >= t.neutron_cathode)] = LABELS["cathode"]
    labels[~(np.isfinite(x) & np.isfinite(n))] = LABELS["void"]
    beside_foil = labels.copy()
    labels[x >= t.xray_metal] = LABELS["cu"]
    if majority_size > 1:
        labels = _majority(labels, majority_size)
    for plane, x_plane, below in zip(labels, x, beside_foil, strict=True):
        _split_plane(plane, plane == LABELS["cu"])
        blurred = (plane == LABELS["cu"]) & (x_plane < t.xray_full_metal) & ~_ridge(x_plane)
        plane[blurred] = below[blurred]
    return labels


def _ridge(plane: np.ndarray) -> np.ndarray:
    """Pixels of a 2D plane at least as bright as both neighbours along the line (rows,
    columns, diagonals) of the most negative second difference: across a bright sheet, its
    centre line (a non-maximum suppression along the Hessian's principal direction, quantised
    to four lines)."""
    padded = np.pad(plane, 1, mode="edge")
    ny, nx = plane.shape
    ahead, behind = [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ahead.append(padded[1 + dy : 1 + dy + ny, 1 + dx : 1 + dx + nx])
        behind.append(padded[1 - dy : 1 - dy + ny, 1 - dx : 1 - dx + nx])
    ahead_s, behind_s = np.stack(ahead), np.stack(behind)
    across = np.argmin(ahead_s + behind_s, axis=0)[None]
    near = np.maximum(
        np.take_along_axis(ahead_s, across, 0), np.take_along_axis(behind_s, across, 0)
    )[0]
    return plane >= near


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
    for z0 in range(0, xray.shape[0], slab):
        z1 = min(z0 + slab, xray.shape[0])
        yield z0, classify(xray[z0:z1], neutron[z0:z1], thresholds, majority_size=majority_size)

"""Simulated 2D area-detector frames (Pilatus-like) from 1D patterns, for the digital twin.

Geometry is a pyFAI :class:`~pyFAI.integrator.azimuthal.AzimuthalIntegrator`, so a frame rendered
here and integrated by pyFAI with the same geometry, solid-angle and polarisation corrections
gives back the 1D pattern (up to Poisson noise and bin averaging).

Conventions: q in A^-1 (pyFAI works in nm^-1 internally; ``q_A^-1`` is asked for explicitly);
detector pixel coordinates (row, col) in pyFAI's pixel-edge convention: the centre of pixel
``[i, j]`` is at ``(i + 0.5, j + 0.5)``. Frames are int32 like Pilatus images: module gaps read
-1 and bad (masked) pixels -2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pyFAI.detectors import Detector
from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from scipy import sparse

GAP_VALUE = -1
"""Pixel value of module gaps (as Pilatus images)."""
BAD_VALUE = -2
"""Pixel value of masked, bad pixels (as Pilatus images)."""

_INT32_MAX = np.iinfo(np.int32).max
_BLOCK_ELEMENTS = 1 << 22
"""Frames x valid pixels computed at once: bounds the temporary float arrays to ~16 MB each."""


def pilatus_gap_mask(
    shape: tuple[int, int],
    module_shape: tuple[int, int] = (195, 487),
    gap: tuple[int, int] = (17, 7),
    centre_gap: int = 3,
) -> np.ndarray:
    """Boolean (H, W) mask, True in the insensitive gaps of a Pilatus-like module assembly.

    Modules of ``module_shape`` pixels are tiled from pixel (0, 0), separated by ``gap`` pixels
    (rows, columns). CdTe Pilatus modules also have a ``centre_gap``-column dead strip in the
    middle of each module (columns 242-244 of a 487-wide module); set it to 0 for Si sensors.
    The defaults reproduce the Pilatus3 X CdTe 2M (1679 x 1475); for small test detectors pass
    scaled module and gap sizes. A partial module at the edge is simply cut.
    """
    height, width = shape
    mod_r, mod_c = module_shape
    gap_r, gap_c = gap
    if mod_r <= 0 or mod_c <= 0 or gap_r < 0 or gap_c < 0 or not 0 <= centre_gap < mod_c:
        raise ValueError(f"invalid module layout: module {module_shape}, gap {gap}")
    rows = np.arange(height) % (mod_r + gap_r) >= mod_r
    col_in_module = np.arange(width) % (mod_c + gap_c)
    start = (mod_c - centre_gap) // 2
    cols = (col_in_module >= mod_c) | (
        (col_in_module >= start) & (col_in_module < start + centre_gap)
    )
    return rows[:, None] | cols[None, :]


def make_integrator(
    shape: tuple[int, int],
    *,
    pixel_size_um: float = 172.0,
    distance_m: float,
    wavelength_A: float,
    beam_centre_px: tuple[float, float],
    rot: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> AzimuthalIntegrator:
    """pyFAI integrator for a flat detector of ``shape`` (H, W) square pixels.

    ``beam_centre_px`` (row, col) is the point of normal incidence (PONI) in pixels, which is
    the direct-beam position when ``rot`` (rot1, rot2, rot3 in radians, pyFAI convention) is
    zero; it may lie outside the detector.
    """
    pixel_m = pixel_size_um * 1e-6
    detector = Detector(pixel1=pixel_m, pixel2=pixel_m, max_shape=tuple(int(s) for s in shape))
    return AzimuthalIntegrator(
        dist=float(distance_m),
        poni1=float(beam_centre_px[0]) * pixel_m,
        poni2=float(beam_centre_px[1]) * pixel_m,
        rot1=float(rot[0]),
        rot2=float(rot[1]),
        rot3=float(rot[2]),
        detector=detector,
        wavelength=float(wavelength_A) * 1e-10,
    )


def geometry_for_q_range(
    shape: tuple[int, int],
    q_max_A: float,
    wavelength_A: float,
    beam_centre_px: tuple[float, float],
    pixel_size_um: float = 172.0,
) -> float:
    """Sample-detector distance (m) that puts the detector's farthest outer corner at q_max.

    Untilted geometry; the farthest of the four outer pixel corners from the beam centre is
    used, so every pixel centre lies at q < q_max_A (A^-1).
    """
    sin_theta = q_max_A * wavelength_A / (4 * math.pi)
    if not 0 < sin_theta < math.sqrt(0.5):
        raise ValueError(f"q_max {q_max_A} A^-1 needs 2theta >= 90 deg at {wavelength_A} A")
    two_theta = 2 * math.asin(sin_theta)
    row0, col0 = beam_centre_px
    corner_px = max(
        math.hypot(r - row0, c - col0) for r in (0.0, shape[0]) for c in (0.0, shape[1])
    )
    return corner_px * pixel_size_um * 1e-6 / math.tan(two_theta)


@dataclass(frozen=True)
class DetectorModel:
    """Per-pixel quantities of a detector geometry, computed once and reused for every frame.

    ``q_A`` and ``scale`` hold only the valid pixels (in C order, at ``valid``), to skip the
    gaps and bad pixels in all per-frame work.
    """

    shape: tuple[int, int]
    valid: np.ndarray
    """(H, W) bool: pixels that record photons."""
    gaps: np.ndarray
    """(H, W) bool: module gaps (read -1)."""
    bad: np.ndarray
    """(H, W) bool: bad pixels outside the gaps (read -2)."""
    q_A: np.ndarray
    """(P,) q at the valid pixel centres, A^-1."""
    q_sub_A: np.ndarray
    """(P, s*s) q at s x s sub-pixel points of each valid pixel, A^-1 (a pixel integrates
    the intensity over its area: narrow lines are averaged over the pixel's q span)."""
    scale: np.ndarray
    """(P,) relative solid angle x polarisation factor (pyFAI's corrections), dimensionless."""
    rows: np.ndarray
    """(P,) row index of each valid pixel."""
    cols: np.ndarray
    """(P,) column index of each valid pixel."""


def detector_model(
    integrator: AzimuthalIntegrator,
    *,
    mask: np.ndarray | None = None,
    gaps: np.ndarray | None = None,
    polarization_factor: float | None = 0.99,
    pixel_supersample: int = 3,
) -> DetectorModel:
    """Precompute q, solid angle and polarisation of every pixel of ``integrator``'s detector.

    ``mask`` (H, W), non-zero = bad pixel; ``gaps`` (H, W) bool, e.g. from
    :func:`pilatus_gap_mask`. The solid angle is pyFAI's relative one (cos^3 of the incidence
    angle, 1 at the PONI) and the polarisation uses pyFAI's formula, so pyFAI's
    ``correctSolidAngle=True`` and the same ``polarization_factor`` undo them exactly.
    ``pixel_supersample`` sub-pixel points per side sample the q span of each pixel.
    """
    shape = tuple(int(s) for s in integrator.detector.max_shape)
    gap_mask = np.zeros(shape, bool) if gaps is None else np.asarray(gaps, bool)
    bad = np.zeros(shape, bool) if mask is None else np.asarray(mask) != 0
    if gap_mask.shape != shape or bad.shape != shape:
        raise ValueError(f"mask/gaps must have the detector shape {shape}")
    bad = bad & ~gap_mask
    valid = ~(gap_mask | bad)
    q = integrator.array_from_unit(shape, "center", "q_A^-1")
    scale = np.asarray(integrator.solidAngleArray(shape), np.float64)
    if polarization_factor is not None:
        scale = scale * integrator.polarization(shape, factor=polarization_factor)
    rows, cols = np.nonzero(valid)
    step = (np.arange(pixel_supersample) + 0.5) / pixel_supersample - 0.5
    sub_rows = (rows[:, None, None] + step[None, :, None]) + 0 * step[None, None, :]
    sub_cols = (cols[:, None, None] + 0 * step[None, :, None]) + step[None, None, :]
    # pyFAI's qFunction takes pixel-centre index coordinates and returns nm^-1
    q_sub = integrator.qFunction(sub_rows.reshape(rows.size, -1), sub_cols.reshape(rows.size, -1))
    return DetectorModel(
        shape=shape,
        valid=valid,
        gaps=gap_mask,
        bad=bad,
        q_A=np.ascontiguousarray(q[valid], np.float64),
        q_sub_A=np.ascontiguousarray(q_sub / 10.0, np.float64),
        scale=np.ascontiguousarray(scale[valid], np.float64),
        rows=rows,
        cols=cols,
    )


@dataclass(frozen=True)
class RenderEvents:
    """Where artefacts were put: one row per event, columns (frame, row, col)."""

    spots: np.ndarray
    zingers: np.ndarray


def expected_counts(
    q_A: np.ndarray,
    patterns: np.ndarray,
    model: DetectorModel,
    *,
    counts_per_unit: float = 1000.0,
    dark_counts: float = 0.0,
    fill_value: float | None = None,
    weights: sparse.csr_matrix | None = None,
) -> np.ndarray:
    """Noise-free expected counts of the valid pixels, float64 (n, P).

    counts = <I>_pixel * scale * counts_per_unit + dark_counts, with <I>_pixel the mean of I,
    linearly interpolated in q, over the pixel's sub-pixel points (its area). ``patterns``
    (n, n_q) or (n_q,) are intensities per unit solid angle on the ascending grid ``q_A``
    (A^-1); ``counts_per_unit`` is the mean count of a pixel at the PONI for I = 1.
    Pixels outside the q grid get ``fill_value``; None, the default, gives them the edge
    values (as ``np.interp``): a grid of bin centres leaves out the outer halves of its end
    bins, and pixels there (and those that pixel splitting spreads into them) rendered as 0
    made the first SAXS bin of the twin integrate to 0.2-0.4 of its truth (0.97 now).
    ``weights`` is ``pixel_weights(q_A, model)`` (P, n_q), computed here when None; pass it
    to reuse it over many calls.
    """
    q_grid = np.asarray(q_A, np.float64)
    pats = np.atleast_2d(np.asarray(patterns, np.float64))
    if weights is None:
        weights = pixel_weights(q_grid, model)
    if pats.shape[1] != q_grid.size:
        raise ValueError(f"patterns {pats.shape} do not match the q grid {q_grid.shape}")
    intensity = (weights @ pats.T).T
    if fill_value is not None:
        outside = (model.q_A < q_grid[0]) | (model.q_A > q_grid[-1])
        intensity[:, outside] = fill_value
    intensity *= model.scale * counts_per_unit
    intensity += dark_counts
    return intensity


def pixel_weights(q_grid: np.ndarray, model: DetectorModel) -> sparse.csr_matrix:
    """(P, n_q) sparse weights: a pixel's mean of a pattern linearly interpolated on ``q_grid``.

    ``q_grid`` (n_q,) A^-1, strictly ascending, at least 2 points.
    """
    q_grid = np.asarray(q_grid, np.float64)
    if q_grid.ndim != 1 or q_grid.size < 2:
        raise ValueError(f"q grid must be 1D with at least 2 points, got shape {q_grid.shape}")
    if np.any(np.diff(q_grid) <= 0):
        raise ValueError("q grid must be strictly ascending")
    q_sub = model.q_sub_A
    n_pixels, n_sub = q_sub.shape
    right = np.clip(np.searchsorted(q_grid, q_sub), 1, q_grid.size - 1)
    left = right - 1
    frac = np.clip((q_sub - q_grid[left]) / (q_grid[right] - q_grid[left]), 0.0, 1.0)
    rows = np.repeat(np.arange(n_pixels), 2 * n_sub)
    cols = np.stack([left, right], axis=-1).ravel()
    values = (np.stack([1.0 - frac, frac], axis=-1) / n_sub).ravel()
    return sparse.csr_matrix((values, (rows, cols)), shape=(n_pixels, q_grid.size))


def render_frames(
    q_A: np.ndarray,
    patterns: np.ndarray,
    integrator: AzimuthalIntegrator | DetectorModel,
    *,
    counts_per_unit: float = 1000.0,
    mask: np.ndarray | None = None,
    gaps: np.ndarray | None = None,
    polarization_factor: float | None = 0.99,
    dark_counts: float = 0.0,
    spot_probability: float = 0.0,
    spot_strength: float = 30.0,
    spot_sigma_px: float = 1.0,
    zinger_probability: float = 0.0,
    zinger_counts: float = 1e5,
    fill_value: float | None = None,
    rng: np.random.Generator | int | None = None,
    return_events: bool = False,
) -> np.ndarray | tuple[np.ndarray, RenderEvents]:
    """Poisson-noisy int32 detector frames (n, H, W) of 1D patterns (n, n_q) on ``q_A`` (A^-1).

    Expected counts are as :func:`expected_counts`. Gap pixels read -1, bad pixels (``mask``
    non-zero) -2. ``integrator`` may be a precomputed :class:`DetectorModel`, faster for
    repeated calls; it carries its own mask, gaps and polarisation (``mask`` and ``gaps`` must
    then be None, ``polarization_factor`` is ignored).

    Artefacts, each independently per frame: with ``spot_probability`` a single-crystal spot,
    a Gaussian blob (``spot_sigma_px``) centred on a random valid pixel (hence on the ring of
    that pixel's q) whose peak is ``spot_strength`` x the frame's largest expected count, added
    before Poisson noise; with ``zinger_probability`` a zinger, one random valid pixel gaining
    ``zinger_counts`` counts. ``return_events`` also returns their (frame, row, col) positions.
    """
    if isinstance(integrator, DetectorModel):
        if mask is not None or gaps is not None:
            raise ValueError("pass mask/gaps to detector_model(), not with a DetectorModel")
        model = integrator
    else:
        model = detector_model(
            integrator, mask=mask, gaps=gaps, polarization_factor=polarization_factor
        )
    gen = np.random.default_rng(rng)
    pats = np.atleast_2d(np.asarray(patterns, np.float64))
    n_frames = pats.shape[0]
    height, width = model.shape
    n_valid = model.q_A.size
    frames = np.empty((n_frames, height, width), np.int32)
    frames[:] = np.where(model.gaps, GAP_VALUE, np.where(model.bad, BAD_VALUE, 0))
    flat = frames.reshape(n_frames, -1)
    flat_index = model.rows * width + model.cols
    # Lookup from (row, col) to the valid-pixel index, for painting spots.
    valid_index = np.full(model.shape, -1, np.int64)
    valid_index[model.rows, model.cols] = np.arange(n_valid)

    has_spot = gen.random(n_frames) < spot_probability
    has_zinger = gen.random(n_frames) < zinger_probability
    spots: list[tuple[int, int, int]] = []
    zingers: list[tuple[int, int, int]] = []
    weights = pixel_weights(q_A, model)
    block = max(1, _BLOCK_ELEMENTS // max(n_valid, 1))
    for start in range(0, n_frames, block):
        stop = min(start + block, n_frames)
        lam = expected_counts(
            q_A,
            pats[start:stop],
            model,
            counts_per_unit=counts_per_unit,
            dark_counts=dark_counts,
            fill_value=fill_value,
            weights=weights,
        )
        for k in np.flatnonzero(has_spot[start:stop]):
            centre = int(gen.integers(n_valid))
            peak = spot_strength * max(float(lam[k].max()), 1.0)
            _add_spot(lam[k], model, valid_index, centre, peak, spot_sigma_px)
            spots.append((start + int(k), int(model.rows[centre]), int(model.cols[centre])))
        counts = gen.poisson(np.maximum(lam, 0.0))
        for k in np.flatnonzero(has_zinger[start:stop]):
            pixel = int(gen.integers(n_valid))
            counts[k, pixel] += int(zinger_counts)
            zingers.append((start + int(k), int(model.rows[pixel]), int(model.cols[pixel])))
        flat[start:stop, flat_index] = np.minimum(counts, _INT32_MAX)
    if return_events:
        events = RenderEvents(
            spots=np.array(spots, np.int64).reshape(-1, 3),
            zingers=np.array(zingers, np.int64).reshape(-1, 3),
        )
        return frames, events
    return frames


def _add_spot(
    lam: np.ndarray,
    model: DetectorModel,
    valid_index: np.ndarray,
    centre: int,
    peak: float,
    sigma_px: float,
) -> None:
    """Add a Gaussian blob of height ``peak`` at valid pixel ``centre`` to ``lam`` (P,) in place."""
    half = max(1, math.ceil(3 * sigma_px))
    r0, c0 = int(model.rows[centre]), int(model.cols[centre])
    rr, cc = np.mgrid[
        max(r0 - half, 0) : min(r0 + half + 1, model.shape[0]),
        max(c0 - half, 0) : min(c0 + half + 1, model.shape[1]),
    ]
    index = valid_index[rr, cc]
    inside = index >= 0
    blob = peak * np.exp(-((rr - r0) ** 2 + (cc - c0) ** 2) / (2 * sigma_px**2))
    lam[index[inside]] += blob[inside]

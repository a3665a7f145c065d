"""astra-toolbox, one channel at a time: the study's reconstruction (CPU, or CUDA when
astra finds a GPU).

Geometry mapping (checked against :func:`jellyroll.recon.projector.forward` in the
tests): the ``(ny, nx)`` map is passed as is on the volume
``create_vol_geom(ny, nx, -nx p / 2, nx p / 2, -ny p / 2, ny p / 2)`` (um); astra's row 0
lies at +y, so its coordinates are ``(x, -y)``. The projections use a ``parallel_vec``
geometry with, per angle, ray direction ``(-sin, -cos)``, detector centre
``t_mid (cos, -sin)`` and pixel vector ``dt (cos, -sin)``, which places ray ``j`` at
``t0 + j dt`` whatever the rotation-centre offset.

astra's CPU FBP accepts only the centred ``parallel`` geometry, and resampling the
projections onto a centred detector costs accuracy on sharp layers (a 0.5-ray Fourier
shift changes the twin's FBP by ~20 %). FBP here is therefore astra's backprojector on
the exact geometry applied to Ram-Lak filtered projections
(:func:`jellyroll.recon.fbp.ramp_filter`, which reproduces astra's own FBP to ~1e-4 on a
centred geometry; tests).
"""

from __future__ import annotations

from collections.abc import Callable

import astra
import numpy as np

from jellyroll.recon.fbp import filtered_projections
from jellyroll.recon.geometry import ParallelGeometry
from jellyroll.recon.iterative import check_relaxation, sweep_strings
from jellyroll.recon.projector import as_block

__all__ = ["astra_geometries", "astra_reconstruct", "astra_version", "has_cuda"]


def astra_version() -> str:
    return str(astra.__version__)


def has_cuda() -> bool:
    """Whether astra was built with CUDA and sees a GPU."""
    return bool(astra.use_cuda())


def astra_geometries(geometry: ParallelGeometry) -> tuple[dict, dict]:
    """astra's (volume, ``parallel_vec`` projection) geometries of ``geometry``."""
    ny, nx = geometry.shape
    hx, hy = nx * geometry.pixel_size_um / 2, ny * geometry.pixel_size_um / 2
    volume = astra.create_vol_geom(ny, nx, -hx, hx, -hy, hy)
    theta = np.deg2rad(geometry.angles_deg)
    c, s = np.cos(theta), np.sin(theta)
    mid = geometry.t0_um + 0.5 * (geometry.n_t - 1) * geometry.t_step_um
    dt = geometry.t_step_um
    vectors = np.stack([-s, -c, mid * c, -mid * s, dt * c, -dt * s], axis=1)
    return volume, astra.create_proj_geom("parallel_vec", geometry.n_t, vectors)


def _run(config: dict, iterations: int) -> None:
    algorithm_id = astra.algorithm.create(config)
    try:
        astra.algorithm.run(algorithm_id, iterations)
    finally:
        astra.algorithm.delete(algorithm_id)


def _sart_strings(
    config: dict, volume: dict, strings: list[np.ndarray], iterations: int
) -> np.ndarray:
    """SART of ``config`` (its reconstruction the first string's), ``iterations`` sweeps
    of each string from the same map, their maps averaged weighted by the strings' sizes
    (:func:`~jellyroll.recon.iterative.sart`); ``(ny, nx)`` float64."""
    first = config["ReconstructionDataId"]
    if len(strings) == 1:
        config["option"]["ProjectionOrderList"] = strings[0].astype(np.float64)
        _run(config, iterations * strings[0].size)
        return astra.data2d.get(first)
    other = astra.data2d.create("-vol", volume, 0.0)
    algorithms: list[int] = []
    try:
        for string, rec_id in zip(strings, (first, other), strict=True):
            own = dict(config, ReconstructionDataId=rec_id)
            own["option"] = dict(config["option"], ProjectionOrderList=string.astype(np.float64))
            algorithms.append(astra.algorithm.create(own))
        share = strings[1].size / (strings[0].size + strings[1].size)
        x = astra.data2d.get(first)
        for _ in range(iterations):
            astra.data2d.store(other, x)
            for algorithm_id, string in zip(algorithms, strings, strict=True):
                astra.algorithm.run(algorithm_id, string.size)
            x = astra.data2d.get(first)
            x += share * (astra.data2d.get(other) - x)
            astra.data2d.store(first, x)
        return x
    finally:
        for algorithm_id in algorithms:
            astra.algorithm.delete(algorithm_id)
        astra.data2d.delete(other)


def _channel(
    geometry: ParallelGeometry,
    channel: np.ndarray,
    mask: np.ndarray,
    method: str,
    iterations: int,
    relaxation: float,
    nonnegative: bool,
    strings: list[np.ndarray],
) -> np.ndarray:
    cuda = has_cuda()
    if method == "fbp":
        geometry, filtered = filtered_projections(geometry, channel[..., None], mask)
        data = filtered[..., 0]
    else:
        data = np.where(mask, channel, 0).astype(np.float32)
    volume, projections = astra_geometries(geometry)
    ids: list[tuple[str, int]] = []
    try:
        projector = astra.create_projector("cuda" if cuda else "line", projections, volume)
        ids.append(("projector", projector))
        sino_id = astra.data2d.create("-sino", projections, data)
        ids.append(("data", sino_id))
        rec_id = astra.data2d.create("-vol", volume, 0.0)
        ids.append(("data", rec_id))
        name = {"fbp": "BP", "sart": "SART", "sirt": "SIRT"}[method]
        config = astra.astra_dict(f"{name}_CUDA" if cuda else name)
        config["ProjectorId"] = projector
        config["ProjectionDataId"] = sino_id
        config["ReconstructionDataId"] = rec_id
        options: dict = {}
        if method != "fbp":
            options["Relaxation"] = float(relaxation)
            if not mask.all():
                mask_id = astra.data2d.create("-sino", projections, mask.astype(np.float32))
                ids.append(("data", mask_id))
                options["SinogramMaskId"] = mask_id
            if nonnegative:
                options["MinConstraint"] = 0.0
        if method == "sart":
            options["ProjectionOrder"] = "custom"
        config["option"] = options
        if method == "sart":
            result = _sart_strings(config, volume, strings, iterations).astype(np.float32)
        else:
            _run(config, 1 if method == "fbp" else iterations)
            result = astra.data2d.get(rec_id).astype(np.float32)
    finally:
        for kind, object_id in ids:
            (astra.projector if kind == "projector" else astra.data2d).delete(object_id)
    if method == "fbp" and nonnegative:
        np.maximum(result, 0, out=result)
    return result


def astra_reconstruct(
    geometry: ParallelGeometry,
    sinogram: np.ndarray,
    method: str = "sart",
    iterations: int = 10,
    *,
    mask: np.ndarray | None = None,
    relaxation: float = 1.0,
    nonnegative: bool = False,
    order: np.ndarray | None = None,
    callback: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Reconstruct every channel of ``(n_angles, n_t[, nc])`` with astra, one at a time.

    ``method`` ``fbp``, ``sart`` (``iterations`` sweeps) or ``sirt``, with the same
    options as :func:`~jellyroll.recon.iterative.sart`; ``mask`` ``(n_angles, n_t)``
    measured rays (default: finite in every channel). Projections without a measured ray
    are left out first; ``order`` indexes those kept (default: the two
    :func:`~jellyroll.recon.iterative.sweep_strings`, averaged as by
    :func:`~jellyroll.recon.iterative.sart`). Returns
    ``(ny, nx[, nc])`` float32 (value / um); ``callback(channels done)``.
    """
    if method not in ("fbp", "sart", "sirt"):
        raise ValueError(f"unknown method {method!r}; choose fbp, sart or sirt")
    if method != "fbp":
        check_relaxation(relaxation)
    sino, single = as_block(sinogram, 3, "sinogram")
    if mask is None:
        mask = np.isfinite(sino).all(axis=2)
    if not mask.any(axis=1).all():
        keep = mask.any(axis=1)
        geometry, sino, mask = geometry.subset(keep), sino[keep], mask[keep]
    if order is None:
        strings = [s for s in sweep_strings(geometry.angles_deg, nonnegative) if s.size]
    else:
        strings = [np.asarray(order)]
    out = np.empty((*geometry.shape, sino.shape[2]), dtype=np.float32)
    for k in range(sino.shape[2]):
        channel = np.ascontiguousarray(sino[..., k])
        options = (method, iterations, relaxation, nonnegative, strings)
        out[..., k] = _channel(geometry, channel, mask, *options)
        if callback is not None:
            callback(k + 1)
    return out[..., 0] if single else out

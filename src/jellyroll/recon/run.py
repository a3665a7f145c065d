"""Reconstruct the sinogram of a run file into ``/entry/reconstruction`` and
``/entry/maps/attenuation`` (the ``jellyroll reconstruct`` command)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py

from jellyroll.io.provenance import provenance_record
from jellyroll.io.runfile import (
    Reconstruction,
    RunFileError,
    read_sinogram,
    update_run,
    write_maps_group,
    write_reconstruction_group,
)
from jellyroll.recon.astra_backend import astra_version
from jellyroll.recon.attenuation import attenuation_map, correct_self_absorption, transmission
from jellyroll.recon.engine import Progress, ReconstructionResult, check_method, reconstruct
from jellyroll.recon.geometry import ParallelGeometry
from jellyroll.recon.lowrank import DEFAULT_ENERGY
from jellyroll.recon.qwindows import select_channels

__all__ = ["RunReconstruction", "reconstruct_run"]


@dataclass
class RunReconstruction:
    """What :func:`reconstruct_run` wrote."""

    path: Path
    result: ReconstructionResult
    rotation_centre_mm: float
    attenuation: bool


def reconstruct_run(
    path: str | Path,
    *,
    method: str = "sart",
    iterations: int = 10,
    backend: str = "auto",
    channels: str = "all",
    rotation_centre_mm: float | None = None,
    nonnegative: bool = False,
    self_absorption: bool = False,
    energy: float = DEFAULT_ENERGY,
    progress: Progress | None = None,
) -> RunReconstruction:
    """Reconstruct the run file's sinogram channels picked by ``channels`` (``"all"`` or
    ``"lo:hi,..."`` in A^-1) and its attenuation sinogram, and store both in the file.

    The rotation centre is ``rotation_centre_mm`` when given, else the file's
    ``/entry/sinogram/rotation_centre``. ``self_absorption`` divides the scattering
    sinogram by the transmission through the reconstructed attenuation slice
    (:mod:`jellyroll.recon.attenuation`). Other options: :func:`reconstruct`.
    """
    check_method(method, backend, iterations)  # before reading a cube that may be GBs
    path = Path(path)
    sinogram = read_sinogram(path, errors=False)  # the reconstruction does not use them
    centre = rotation_centre_mm if rotation_centre_mm is not None else sinogram.rotation_centre_mm
    if centre is None:
        raise RunFileError(
            f"{path}: /entry/sinogram/rotation_centre is missing; give the rotation centre (mm)"
        )
    geometry = ParallelGeometry.from_scan(
        sinogram.rotation_angle_deg, sinogram.translation_mm, centre
    )
    picked = select_channels(sinogram.q_A, channels)
    # all channels: a view, not a copy of the cube
    data = sinogram.data if picked.size == sinogram.q_A.size else sinogram.data[..., picked]
    mu = None
    if sinogram.attenuation is not None:
        mu = attenuation_map(sinogram.attenuation, geometry, method, iterations, backend=backend)
    if self_absorption:
        if mu is None:
            raise RunFileError(f"{path}: no attenuation sinogram for the self-absorption step")
        data = correct_self_absorption(data, transmission(geometry, mu))
    result = reconstruct(
        data,
        geometry,
        method,
        iterations,
        backend=backend,
        nonnegative=nonnegative,
        energy=energy,
        progress=progress,
    )
    attrs = {
        **result.attrs(),
        "rotation_centre_mm": float(centre),
        "self_absorption_corrected": self_absorption,
        "channels": channels,
    }
    q_A = sinogram.q_A[picked]
    reconstruction = Reconstruction(result.data, q_A, geometry.x_um, geometry.y_um, attrs)

    def fill(entry: h5py.Group) -> None:
        write_reconstruction_group(entry, reconstruction)
        if mu is not None:
            maps = {"attenuation": (mu, "1/um")}
            group = write_maps_group(entry, maps, geometry.x_um, geometry.y_um)
            group.attrs.setdefault("default", "attenuation")

    configuration = {**attrs, "astra": astra_version(), "sinogram_shape": sinogram.shape}
    update_run(path, "reconstruction", fill, provenance_record(configuration))
    return RunReconstruction(path, result, float(centre), mu is not None)

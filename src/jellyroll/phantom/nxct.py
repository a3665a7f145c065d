"""Simulated neutron CT and lab X-ray CT volumes of the twin (the study's NXCT pair).

Frames and conventions (used by the registration stage too):

- Volumes are (nz, ny, nx) arrays; physical coordinates are (z, y, x) in um with the origin at
  the volume centre, i.e. voxel ``i`` along an axis of ``n`` voxels of size ``v`` sits at
  ``(i - (n - 1) / 2) * v``.
- The world frame is the frame of the fraction maps the volumes are simulated from.
- A 4x4 homogeneous matrix ``M`` "A_to_world" maps a point ``p_A`` (z, y, x, 1) of volume A's
  physical frame to the world: ``p_world = M @ p_A``.
- Rotations are given as (rz, ry, rx) degrees about the z, y and x axes, right-handed in
  (x, y, z); ``R = Rz @ Ry @ Rx`` (x applied first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from jellyroll.phantom.materials import attenuation_map, mu_table


@dataclass(frozen=True)
class NXCTVolumes:
    """The simulated lab X-ray and neutron CT volumes of one cell.

    ``xray``: float32 attenuation (1/um), (mz, my, mx), voxel ``xray_voxel_um``, aligned with the
    world axes (``xray_to_world`` is a pure translation, non-zero only when the world shape is
    not a multiple of the downsampling factor). ``neutron``: float32 attenuation (1/um), the
    world shape, voxel ``neutron_voxel_um``, seen through the rigid transform
    ``neutron_to_world``. ``noise_sigma``: absolute (1/um) standard deviation of the Gaussian
    noise added to (xray, neutron).
    """

    xray: np.ndarray
    xray_voxel_um: float
    xray_to_world: np.ndarray
    neutron: np.ndarray
    neutron_voxel_um: float
    neutron_to_world: np.ndarray
    world_shape: tuple[int, int, int]
    world_voxel_um: float
    xray_energy_keV: float
    neutron_wavelength_A: float
    noise_sigma: tuple[float, float]

    @property
    def nct_to_xct(self) -> np.ndarray:
        """4x4 map (um) of the neutron volume frame to the X-ray volume frame."""
        return np.linalg.inv(self.xray_to_world) @ self.neutron_to_world

    def neutron_in_world(self, order: int = 1) -> np.ndarray:
        """The neutron volume resampled onto the world grid (inverse of the known transform)."""
        return resample_rigid(
            self.neutron,
            self.neutron_voxel_um,
            self.neutron_to_world,
            output_shape=self.world_shape,
            output_voxel_um=self.world_voxel_um,
            order=order,
        )

    def xray_in_world(self, order: int = 1) -> np.ndarray:
        """The X-ray volume interpolated onto the world grid (the study's linear upscaling)."""
        return resample_rigid(
            self.xray,
            self.xray_voxel_um,
            self.xray_to_world,
            output_shape=self.world_shape,
            output_voxel_um=self.world_voxel_um,
            order=order,
        )


def rotation_matrix(rotation_deg: Sequence[float]) -> np.ndarray:
    """3x3 rotation acting on (z, y, x) vectors from (rz, ry, rx) in degrees; R = Rz Ry Rx."""
    rz, ry, rx = np.deg2rad(np.asarray(rotation_deg, dtype=np.float64))
    cz, sz, cy, sy, cx, sx = np.cos(rz), np.sin(rz), np.cos(ry), np.sin(ry), np.cos(rx), np.sin(rx)
    # rows/columns in (z, y, x) order
    r_z = np.array([[1, 0, 0], [0, cz, sz], [0, -sz, cz]])
    r_y = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    r_x = np.array([[cx, sx, 0], [-sx, cx, 0], [0, 0, 1]])
    return r_z @ r_y @ r_x


def rigid_matrix(rotation_deg: Sequence[float], shift_um: Sequence[float]) -> np.ndarray:
    """4x4 homogeneous matrix (um, z-y-x order): rotate by ``rotation_deg``, then shift."""
    matrix = np.eye(4)
    matrix[:3, :3] = rotation_matrix(rotation_deg)
    matrix[:3, 3] = np.asarray(shift_um, dtype=np.float64)
    return matrix


def axis_angle_matrix(axis_zyx: Sequence[float], angle_deg: float) -> np.ndarray:
    """3x3 rotation acting on (z, y, x) vectors: ``angle_deg`` about ``axis_zyx``.

    Right-handed in (x, y, z), like :func:`rotation_matrix` (whose ``Rz`` is this about z).
    """
    axis = np.asarray(axis_zyx, dtype=np.float64)[::-1]
    axis = axis / np.linalg.norm(axis)
    angle = np.deg2rad(float(angle_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    r_xyz = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)
    return r_xyz[::-1, ::-1].copy()


def random_remount(
    rng: np.random.Generator,
    field_of_view_um: Sequence[float],
    *,
    max_tilt_deg: float = 5.0,
    max_shift_fraction: float = 0.05,
) -> tuple[np.ndarray, dict[str, float]]:
    """A random rigid remount of a cylindrical cell: 4x4 neutron_to_world (um) and its draws.

    Rotation about the cell axis (z) uniform in 0-360 deg, then a tilt uniform in
    0-``max_tilt_deg`` about a horizontal axis of uniform azimuth, then a shift whose (z, y,
    x) components are uniform within +-``max_shift_fraction`` of ``field_of_view_um`` (z, y,
    x) along each axis. The draws are returned in deg and um.
    """
    spin = float(rng.uniform(0.0, 360.0))
    tilt = float(rng.uniform(0.0, max_tilt_deg))
    tilt_azimuth = float(rng.uniform(0.0, 360.0))
    fov = np.asarray(field_of_view_um, dtype=np.float64)
    shift = rng.uniform(-max_shift_fraction, max_shift_fraction, size=3) * fov
    horizontal = (0.0, np.sin(np.deg2rad(tilt_azimuth)), np.cos(np.deg2rad(tilt_azimuth)))
    matrix = np.eye(4)
    matrix[:3, :3] = axis_angle_matrix(horizontal, tilt) @ axis_angle_matrix((1, 0, 0), spin)
    matrix[:3, 3] = shift
    draws = {
        "rotation_about_axis_deg": spin,
        "tilt_deg": tilt,
        "tilt_axis_azimuth_deg": tilt_azimuth,
        "shift_z_um": float(shift[0]),
        "shift_y_um": float(shift[1]),
        "shift_x_um": float(shift[2]),
    }
    return matrix, draws


def resample_rigid(
    volume: np.ndarray,
    voxel_size_um: float,
    source_to_target: np.ndarray,
    *,
    output_shape: Sequence[int] | None = None,
    output_voxel_um: float | None = None,
    order: int = 1,
    mode: str = "nearest",
) -> np.ndarray:
    """Resample ``volume`` into a target frame, float32.

    ``source_to_target`` (4x4, um) maps the volume's physical frame into the target frame; the
    output grid (default: the input's shape and voxel) is centred on the target origin.
    ``mode="nearest"`` extends the edge voxels, i.e. the cell continues beyond the field of view.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"expected a (nz, ny, nx) volume, got shape {volume.shape}")
    shape_out = tuple(int(n) for n in (volume.shape if output_shape is None else output_shape))
    v_in = float(voxel_size_um)
    v_out = v_in if output_voxel_um is None else float(output_voxel_um)
    inverse = np.linalg.inv(np.asarray(source_to_target, dtype=np.float64))
    rot, shift = inverse[:3, :3], inverse[:3, 3]
    c_in = (np.asarray(volume.shape, dtype=np.float64) - 1) / 2
    c_out = (np.asarray(shape_out, dtype=np.float64) - 1) / 2
    # input index = rot (o - c_out) v_out / v_in + shift / v_in + c_in
    matrix = rot * (v_out / v_in)
    offset = c_in + shift / v_in - matrix @ c_out
    return ndimage.affine_transform(
        volume.astype(np.float32, copy=False),
        matrix,
        offset=offset,
        output_shape=shape_out,
        output=np.float32,
        order=order,
        mode=mode,
        prefilter=order > 1,
    )


def block_mean(volume: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``factor``^3 blocks (float32) and the resulting 4x4 coarse-to-fine translation.

    A shape that is not a multiple of ``factor`` is padded at the high-index end by repeating
    the edge voxels; the coarse grid's centre then sits ``pad / 2`` fine voxels above the fine
    one, which the returned matrix (in units of the fine voxel) records.
    """
    if factor < 1:
        raise ValueError(f"downsampling factor must be >= 1, got {factor}")
    pads = [(-n) % factor for n in volume.shape]
    if any(pads):
        volume = np.pad(volume, [(0, p) for p in pads], mode="edge")
    m = [n // factor for n in volume.shape]
    blocks = volume.reshape(m[0], factor, m[1], factor, m[2], factor)
    coarse = blocks.mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)
    to_fine = np.eye(4)
    to_fine[:3, 3] = np.asarray(pads, dtype=np.float64) / 2
    return coarse, to_fine


def _add_noise(
    volume: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Add Gaussian noise of std ``fraction * (max - min)`` of the clean volume, in place."""
    if fraction < 0:
        raise ValueError(f"noise fraction must be >= 0, got {fraction}")
    sigma = float(fraction) * float(volume.max() - volume.min()) if volume.size else 0.0
    if sigma > 0:
        volume += rng.standard_normal(volume.shape, dtype=np.float32) * np.float32(sigma)
    return volume, sigma


def simulate_nxct(
    fractions: Mapping[str, np.ndarray],
    voxel_size_um: float,
    *,
    xray_energy_keV: float = 60.0,
    neutron_wavelength_A: float = 4.0,
    **options: Any,
) -> NXCTVolumes:
    """Lab X-ray and neutron CT volumes (1/um) of fraction maps of shape (nz, ny, nx).

    Computes the two true attenuation volumes (X-ray at ``xray_energy_keV``, the effective
    energy of a 140 kV lab source; neutron at ``neutron_wavelength_A``, absorption +
    incoherent) and passes them, with ``options``, to :func:`simulate_nxct_from_attenuation`.
    """
    shapes = {np.shape(f) for f in fractions.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"fractions must share one (nz, ny, nx) shape, got {sorted(shapes)}")
    return simulate_nxct_from_attenuation(
        attenuation_map(fractions, mu_table("xray", energy_keV=xray_energy_keV)),
        attenuation_map(fractions, mu_table("neutron", wavelength_A=neutron_wavelength_A)),
        voxel_size_um,
        xray_energy_keV=xray_energy_keV,
        neutron_wavelength_A=neutron_wavelength_A,
        **options,
    )


def simulate_nxct_from_attenuation(
    xray_truth: np.ndarray,
    neutron_truth: np.ndarray,
    voxel_size_um: float,
    *,
    xray_energy_keV: float = 60.0,
    neutron_wavelength_A: float = 4.0,
    xray_downsample: int = 2,
    neutron_rotation_deg: Sequence[float] = (7.0, 0.5, -0.3),
    neutron_shift_um: Sequence[float] | None = None,
    neutron_to_world: np.ndarray | None = None,
    blur_sigma_voxels: tuple[float, float] = (0.7, 1.0),
    noise_fraction: tuple[float, float] = (0.02, 0.03),
    seed: int = 0,
) -> NXCTVolumes:
    """Measured-like CT volumes from true attenuation volumes (1/um), both (nz, ny, nx).

    X-ray: block-averaged by ``xray_downsample`` (the study's lab XCT is coarser, 1024^2 vs
    2048^2), then blurred with a Gaussian of ``blur_sigma_voxels[0]`` coarse voxels.
    Neutron: resampled with trilinear interpolation into a frame rotated by
    ``neutron_rotation_deg`` and shifted by ``neutron_shift_um`` (default (3, -2, 4) voxels;
    ``neutron_to_world`` holds the transform; a given 4x4 ``neutron_to_world`` replaces both),
    then blurred by ``blur_sigma_voxels[1]`` voxels. Noise: additive Gaussian, per volume,
    with std ``noise_fraction`` times the dynamic range (max - min) of the clean blurred
    volume, from
    ``numpy.random.default_rng(seed)``. The inputs are not modified.
    """
    if not voxel_size_um > 0:
        raise ValueError(f"voxel_size_um must be positive, got {voxel_size_um}")
    if xray_truth.shape != neutron_truth.shape or xray_truth.ndim != 3:
        raise ValueError(
            f"attenuation volumes must share one (nz, ny, nx) shape, got {xray_truth.shape} "
            f"and {neutron_truth.shape}"
        )
    world_shape: tuple[int, int, int] = tuple(int(n) for n in xray_truth.shape)  # type: ignore[assignment]
    voxel = float(voxel_size_um)
    factor = int(xray_downsample)
    rng = np.random.default_rng(seed)

    xray, coarse_to_fine = block_mean(xray_truth, factor)
    ndimage.gaussian_filter(xray, blur_sigma_voxels[0], output=xray, mode="nearest")
    xray, sigma_x = _add_noise(xray, noise_fraction[0], rng)
    xray_to_world = coarse_to_fine.copy()
    xray_to_world[:3, 3] *= voxel

    if neutron_to_world is None:
        if neutron_shift_um is None:
            neutron_shift_um = tuple(voxel * s for s in (3.0, -2.0, 4.0))
        neutron_to_world = rigid_matrix(neutron_rotation_deg, neutron_shift_um)
    neutron_to_world = np.asarray(neutron_to_world, dtype=np.float64)
    neutron = resample_rigid(neutron_truth, voxel, np.linalg.inv(neutron_to_world))
    ndimage.gaussian_filter(neutron, blur_sigma_voxels[1], output=neutron, mode="nearest")
    neutron, sigma_n = _add_noise(neutron, noise_fraction[1], rng)

    return NXCTVolumes(
        xray=xray,
        xray_voxel_um=voxel * factor,
        xray_to_world=xray_to_world,
        neutron=neutron,
        neutron_voxel_um=voxel,
        neutron_to_world=neutron_to_world,
        world_shape=world_shape,
        world_voxel_um=voxel,
        xray_energy_keV=float(xray_energy_keV),
        neutron_wavelength_A=float(neutron_wavelength_A),
        noise_sigma=(sigma_x, sigma_n),
    )

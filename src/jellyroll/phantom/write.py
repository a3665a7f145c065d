"""Write a twin's measurements and ground truth to disk (the ``jellyroll phantom`` command).

Every file is written atomically; scans stream frame blocks so that memory stays bounded
whatever the scan size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from rich.console import Console
from scipy import ndimage
from skimage.measure import inertia_tensor, inertia_tensor_eigvals, regionprops

from jellyroll.io.nexus import TWIN_TRUTH, nx_group, set_default, write_nxdata, write_table
from jellyroll.io.poni import poni_text
from jellyroll.io.provenance import atomic_output, provenance_json, provenance_record
from jellyroll.io.raw_scan import IntegratedScanWriter, RawScanWriter
from jellyroll.io.volumes import write_tiff_stack
from jellyroll.phantom.acquisition import interlaced_angles
from jellyroll.phantom.components import COMPONENTS
from jellyroll.phantom.detector import (
    detector_model,
    geometry_for_q_range,
    make_integrator,
    pilatus_gap_mask,
    render_frames,
)
from jellyroll.phantom.geometry import (
    BEND_AXIAL_CUTOFF,
    Raster,
    cell_coordinates,
    rasterize,
    z_invariant,
)
from jellyroll.phantom.materials import attenuation_map, mu_table
from jellyroll.phantom.nxct import (
    NXCTVolumes,
    block_mean,
    random_remount,
    rigid_matrix,
    simulate_nxct_from_attenuation,
)
from jellyroll.phantom.parameters import SIZES
from jellyroll.phantom.scan import (
    CENTRE_OFFSET_PX,
    STAGE_CENTRE_MM,
    Counters,
    Projections,
    ScanGeometry,
    iter_frame_patterns,
    project_twin,
    scan_geometry,
    simulate_acquisition,
)
from jellyroll.phantom.state import ANODE_REGIONS, PRESETS, cell_state
from jellyroll.phantom.twin import (
    SAXS_Q_RANGE_A,
    WAVELENGTH_A,
    WAXS_Q_RANGE_A,
    Twin,
    make_twin,
    q_grids,
)
from jellyroll.progress import fraction_progress, frame_progress

XRAY_LAB_ENERGY_KEV = 60.0
"""Effective energy of the 140 kV lab X-ray CT (SPEC section 1)."""
NEUTRON_WAVELENGTH_A = 4.0
"""Effective wavelength of the cold polychromatic neutron beam (NeXT-like)."""
XRAY_DOWNSAMPLE = 2
"""X-ray voxel / neutron voxel: the study's lab XCT is 1024^3 against the neutron 2048^3."""
LABEL_NAMES: dict[int, str] = {
    0: "void",
    1: "casing",
    2: "cu",
    3: "al",
    4: "anode",
    5: "cathode",
    6: "separator",
}
"""Component labels of the NXCT truth; void is the hollow, the gaps and the outside."""
_LABEL_REGIONS: dict[str, tuple[str, ...]] = {
    "void": ("air",),
    "casing": ("casing",),
    "cu": ("cu",),
    "al": ("al",),
    "anode": ("anode", "agglomerate", "damage"),
    "cathode": ("cathode",),
    "separator": ("separator",),
}
_REMOUNT_STREAM = 0x4E4354
"""Second word of the remount's seed sequence, apart from every other stream of a seed."""
_PLACEMENT_STREAM = 0x534C43
"""Second word of the SWAXS slice placement's seed sequence (:func:`twin_placement`)."""
PLACEMENT_HEIGHT_FRACTION = 0.3
"""The SWAXS slice sits up to this fraction of the NXCT stack's height from its centre."""
PLACEMENT_SHIFT_FRACTION = 0.05
"""In-plane shift of the SWAXS slice in the stack: up to this fraction of the field of view."""


@dataclass(frozen=True)
class DetectorSetup:
    """One detector position: shape (px), q range covered (A^-1), counts per unit pattern."""

    kind: str
    shape: tuple[int, int]
    q_max_A: float
    counts_per_unit: float
    pixel_size_um: float = 172.0

    @property
    def beam_centre_px(self) -> tuple[float, float]:
        """Just outside one corner, so that the detector is one radial sector."""
        return (-4.5, -4.5) if self.shape[0] < 400 else (-20.0, 700.0)

    def integrator(self):
        distance = geometry_for_q_range(
            self.shape, self.q_max_A, WAVELENGTH_A, self.beam_centre_px, self.pixel_size_um
        )
        return make_integrator(
            self.shape,
            pixel_size_um=self.pixel_size_um,
            distance_m=distance,
            wavelength_A=WAVELENGTH_A,
            beam_centre_px=self.beam_centre_px,
        )

    def gap_mask(self) -> np.ndarray:
        if self.shape == (1679, 1475):
            return pilatus_gap_mask(self.shape)
        rows, cols = self.shape
        # a small detector is a radial strip of modules: one gap along the strip (a gap
        # across it would blank every azimuth of some q bins, which a full detector never does)
        return pilatus_gap_mask(
            self.shape, module_shape=(rows // 2 - 1, cols), gap=(2, 0), centre_gap=0
        )


def detector_setups(twin: Twin) -> dict[str, DetectorSetup]:
    size = twin.size
    return {
        "waxs": DetectorSetup("waxs", size.waxs_detector_shape, 5.4, counts_per_unit=0.5),
        "saxs": DetectorSetup("saxs", size.saxs_detector_shape, 0.33, counts_per_unit=5.0),
    }


def write_phantom(
    output: str | Path,
    *,
    preset: str = "aged_charged",
    size: str = "small",
    seed: int = 0,
    raw: bool | None = None,
    nxct: bool = True,
    operando_steps: int = 0,
    console: Console | None = None,
) -> dict[Path, str]:
    """Simulate the twin and write scans, volumes and truth into ``output``.

    ``output`` is a new or empty folder, or one holding an earlier twin: that twin's files
    are removed first (see :func:`remove_earlier_twin`). Returns {path: description} of
    the files written.
    """
    check_phantom_settings(preset=preset, size=size, seed=seed, operando_steps=operando_steps)
    console = console or Console(quiet=True)
    out = Path(output)
    remove_earlier_twin(out)
    out.mkdir(parents=True, exist_ok=True)
    size_preset = SIZES[size]
    raw = size_preset.raw_frames if raw is None else raw
    configuration = {"preset": preset, "size": size, "seed": seed, "raw": raw}
    with console.status("building the twin"):
        twin = make_twin(preset, size_preset, seed=seed)
        geometry = scan_geometry(twin)
        projections = project_twin(twin, geometry)
        schedule, counters = simulate_acquisition(projections, seed=seed)
    written: dict[Path, str] = {}
    setups = detector_setups(twin)
    for kind in ("waxs", "saxs"):
        path = out / f"{kind}_scan.h5"
        config = {**configuration, "technique": kind}
        if raw:
            _write_raw_scan(
                path, projections, schedule, counters, setups[kind], config, seed, console
            )
            written[path] = f"raw {kind.upper()} frames, {int((~schedule.missing).sum())} frames"
        else:
            _write_integrated_scan(
                path, projections, schedule, counters, setups[kind], config, seed, console
            )
            written[path] = f"pre-integrated {kind.upper()} patterns"
    twin_nxct = None
    if nxct:
        twin_nxct = simulate_twin_nxct(twin, seed=seed, console=console)
        written.update(_write_nxct(out, twin_nxct.volumes, configuration))
    if operando_steps:
        written.update(_write_operando(out / "operando", twin, operando_steps, seed, console))
    path = out / "truth.h5"
    _write_truth(path, twin, geometry, configuration, twin_nxct)
    written[path] = "ground truth: maps, agglomerates, scan geometry"
    csv_path = out / "agglomerates.csv"
    with atomic_output(csv_path) as tmp:
        twin.agglomerates.to_csv(tmp, index=False)
    written[csv_path] = f"{len(twin.agglomerates)} true agglomerates"
    return written


def check_phantom_settings(*, preset: str, size: str, seed: int, operando_steps: int) -> None:
    """ValueError naming the setting when a twin cannot be made with it (checked before
    anything is written, so a bad setting never leaves a partial twin)."""
    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r}: unknown; choose one of {', '.join(PRESETS)}")
    if size not in SIZES:
        raise ValueError(f"size {size!r}: unknown; choose one of {', '.join(SIZES)}")
    if seed < 0:
        raise ValueError(f"seed {seed}: a seed is 0 or more")
    if operando_steps < 0 or operando_steps == 1:
        raise ValueError(
            f"operando steps {operando_steps}: give 0 (no charge series) or at least 2 (a "
            "series runs from the empty to the full cell)"
        )


TWIN_FILES = ("waxs_scan.h5", "saxs_scan.h5", "xct.tif", "nct.tif", "truth.h5", "agglomerates.csv")
"""The files :func:`write_phantom` may write in its folder (besides ``operando/``)."""
OPERANDO_FOLDER = "operando"
_OPERANDO_FILE = re.compile(r"step_\d{3,}_waxs\.h5|truth\.h5|potentiostat\.csv")


def _is_twin_file(path: Path, names: re.Pattern[str]) -> bool:
    """Whether ``path`` is a file the phantom writes, or the temporary file of one that a
    killed write left behind (``.NAME.<random>.part``, see ``atomic_output``)."""
    name = path.name
    if name.startswith(".") and name.endswith(".part"):
        name = name[1:].removesuffix(".part").rsplit(".", 1)[0]
    return path.is_file() and names.fullmatch(name) is not None


def earlier_twin_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(the files of an earlier twin in ``folder``, by the phantom's own file names; every
    other entry: files or folders the phantom does not write)."""
    top = re.compile("|".join(re.escape(name) for name in TWIN_FILES))
    twin: list[Path] = []
    foreign: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.name == OPERANDO_FOLDER and entry.is_dir() and not entry.is_symlink():
            for item in sorted(entry.iterdir()):
                (twin if _is_twin_file(item, _OPERANDO_FILE) else foreign).append(item)
            twin.append(entry)
        else:
            (twin if _is_twin_file(entry, top) else foreign).append(entry)
    return twin, foreign


def remove_earlier_twin(folder: Path) -> None:
    """Remove the files of an earlier twin from ``folder`` before a new one is written there.

    A twin folder is read whole by ``jellyroll demo`` and ``operando`` (every
    ``operando/step_*.h5`` is one step of the series; ``xct.tif`` next to the scans gives
    a cell its NXCT section), so the files of an earlier twin that the new one would not
    rewrite (its CT volumes, more operando steps) would be taken for the new twin's. They
    are all removed first, so a failure mid-way never leaves a mix of two twins. A folder
    that holds anything the phantom does not write, or files named like a twin's without
    the ``truth.h5`` of one (a user's own ``xct.tif``), is refused (ValueError): it is not
    a twin's folder, and nothing in it is deleted.
    """
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ValueError(f"{folder}: a file, not a folder; give a new or empty output folder")
    files, foreign = earlier_twin_files(folder)
    if foreign:
        shown = ", ".join(str(path.relative_to(folder)) for path in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise ValueError(
            f"{folder}: holds {shown}{more}, not written by `jellyroll phantom`; give a new "
            "or empty output folder (one holding only an earlier twin is replaced)"
        )
    if files and twin_settings(folder / "truth.h5") is None:
        # files named like a twin's (xct.tif, nct.tif...) without the truth of one: data
        shown = ", ".join(str(path.relative_to(folder)) for path in files[:3])
        raise ValueError(
            f"{folder}: holds {shown} but no truth.h5 of a twin: not deleted (they may be "
            "measured data); give a new or empty output folder"
        )
    for path in files:
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()


def twin_settings(truth: Path) -> dict[str, Any] | None:
    """The settings (preset, size, seed, ...) a twin's ``truth.h5`` records, or None when the
    file is not a twin's truth."""
    try:
        with h5py.File(truth, "r") as f:
            recorded = json.loads(f["/entry/provenance"].asstr()[()])["configuration"]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) and "preset" in recorded else None


def twin_mismatch(folder: Path, *, preset: str, size: str, seed: int, nxct: bool) -> str | None:
    """Why ``folder`` does not hold the twin asked for, in words (None: it does, and can be
    reused): no twin yet, another preset, size or seed recorded in its ``truth.h5``, or
    missing files (CT volumes included when ``nxct``, excluded when not)."""
    truth = folder / "truth.h5"
    if not truth.is_file():
        return "no twin yet"
    recorded = twin_settings(truth)
    if recorded is None:
        return f"{truth} records no twin settings"
    wanted = {"preset": preset, "size": size, "seed": seed, "raw": SIZES[size].raw_frames}
    changed = [
        f"{key} {recorded.get(key)} (asked: {value})"
        for key, value in wanted.items()
        if recorded.get(key) != value
    ]
    if changed:
        return "it holds " + ", ".join(changed)
    volumes = ("xct.tif", "nct.tif")
    needed = ("waxs_scan.h5", "saxs_scan.h5", "agglomerates.csv", *(volumes if nxct else ()))
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        return "it lacks " + ", ".join(missing)
    if not nxct and any((folder / name).exists() for name in volumes):
        return "it holds CT volumes this twin does not have"
    return None


def _iter_with_progress(
    blocks: Iterator[tuple[np.ndarray, np.ndarray]], total: int, label: str, console: Console
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    with frame_progress(console, label, total, transient=True) as advance:
        for frames, patterns in blocks:
            yield frames, patterns
            advance(frames.size)


def _write_raw_scan(
    path: Path,
    projections: Projections,
    schedule,
    counters: Counters,
    setup: DetectorSetup,
    configuration: dict[str, Any],
    seed: int,
    console: Console,
) -> None:
    rng = np.random.default_rng(seed + (1 if setup.kind == "waxs" else 2))
    integrator = setup.integrator()
    gaps = setup.gap_mask()
    model = detector_model(integrator, gaps=gaps, polarization_factor=0.99)
    n_present = int((~schedule.missing).sum())
    is_waxs = setup.kind == "waxs"
    with RawScanWriter(
        path,
        setup.shape,
        poni=poni_text(integrator),
        mask=gaps.astype(np.uint8),
        n_frames_hint=n_present,
        configuration=configuration,
    ) as writer:
        blocks = iter_frame_patterns(projections, schedule, counters, setup.kind, block_frames=256)
        q = projections.q[setup.kind]
        for frames, patterns in _iter_with_progress(
            blocks, n_present, f"{setup.kind} frames", console
        ):
            images = render_frames(
                q,
                patterns,
                model,
                counts_per_unit=setup.counts_per_unit,
                spot_probability=0.02 if is_waxs else 0.0,
                zinger_probability=0.01,
                rng=rng,
            )
            writer.append(
                images,
                rotation_angle_deg=schedule.angle_deg[frames],
                translation_mm=schedule.translation_mm[frames],
                monitor=counters.monitor[frames],
                diode=counters.diode[frames],
            )


def _write_integrated_scan(
    path: Path,
    projections: Projections,
    schedule,
    counters: Counters,
    setup: DetectorSetup,
    configuration: dict[str, Any],
    seed: int,
    console: Console,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Pre-integrated patterns with the Poisson noise of the pixels in each q bin;
    ``metadata``: the writer's ``start_time`` and ``state_of_charge``."""
    rng = np.random.default_rng(seed + (3 if setup.kind == "waxs" else 4))
    q = projections.q[setup.kind]
    pixels_per_bin = _pixels_per_bin(setup, q)
    n_present = int((~schedule.missing).sum())
    with IntegratedScanWriter(path, q, configuration=configuration, **(metadata or {})) as writer:
        blocks = iter_frame_patterns(projections, schedule, counters, setup.kind, block_frames=512)
        for frames, patterns in _iter_with_progress(
            blocks, n_present, f"{setup.kind} patterns", console
        ):
            expected = patterns * (setup.counts_per_unit * pixels_per_bin)
            noisy = rng.poisson(np.maximum(expected, 0.0)) / (
                setup.counts_per_unit * pixels_per_bin
            )
            writer.append(
                noisy.astype(np.float32),
                rotation_angle_deg=schedule.angle_deg[frames],
                translation_mm=schedule.translation_mm[frames],
                monitor=counters.monitor[frames],
                diode=counters.diode[frames],
            )


def _pixels_per_bin(setup: DetectorSetup, q: np.ndarray) -> np.ndarray:
    """Unmasked detector pixels falling in each q bin (at least 1)."""
    integrator = setup.integrator()
    q_pixels = integrator.array_from_unit(shape=setup.shape, typ="center", unit="q_A^-1")
    edges = np.r_[q[0] - (q[1] - q[0]) / 2, (q[1:] + q[:-1]) / 2, q[-1] + (q[-1] - q[-2]) / 2]
    counts, _ = np.histogram(q_pixels[~setup.gap_mask()], bins=edges)
    return np.maximum(counts, 1).astype(np.float32)


ROLL_END_FRACTION = 0.3
"""The roll's top end sits this fraction of the NXCT stack's height above its centre (or
just above the defects' band if that is higher): a real cell's roll ends under the cap, and
that end pins the axial position of a registration."""
TAB_THICKNESS_FRACTION = 0.05
"""Thickness of the tab standing on the roll's end, as a fraction of the roll's radius."""


def roll_end_um(twin: Twin, n_slices: int, voxel_um: float, slice_height_um: float = 0.0) -> float:
    """Height (um, from the stack's centre) of the roll's top end in the NXCT stack whose
    SWAXS slice (the cell's z = 0) sits at ``slice_height_um``: above it the head space holds
    the casing, air and the tab (:func:`nxct_fraction_slices`)."""
    band = max(
        (g.z_um + BEND_AXIAL_CUTOFF * g.push_sigma_axial_um for g in twin.geometry.agglomerates),
        default=0.0,
    )
    return max(ROLL_END_FRACTION * n_slices * voxel_um, slice_height_um + band + voxel_um)


def _head_space(raster: Raster, twin: Twin, grid_to_cell: np.ndarray | None) -> Raster:
    """A slice above the roll's end: the casing, air, and the tab (Cu, labelled ``cu``): a
    vertical strip from the hollow to the roll's outer turn along the winding's ovality
    azimuth, :data:`TAB_THICKNESS_FRACTION` of the roll's radius thick. ``grid_to_cell`` as
    in :func:`rasterize`."""
    params = twin.geometry.params
    y, x = raster.axes_um()
    yy, xx = cell_coordinates(*np.meshgrid(y, x, indexing="ij"), grid_to_cell)
    phase = twin.geometry.ovality_phase_rad
    along = xx * np.cos(phase) + yy * np.sin(phase)
    across = -xx * np.sin(phase) + yy * np.cos(phase)
    tab = (
        (along >= params.roll_inner_radius_um)
        & (along <= params.roll_outer_radius_um)
        & (np.abs(across) <= TAB_THICKNESS_FRACTION * params.roll_outer_radius_um / 2)
    ).astype(np.float32)
    kept = ("air", "casing")
    fractions = {name: np.zeros_like(values) for name, values in raster.fractions.items()}
    fractions["casing"] = raster.fractions["casing"].copy()
    roll = sum(v for name, v in raster.fractions.items() if name not in kept)
    fractions["cu"] = roll * tab
    fractions["air"] = raster.fractions["air"] + roll * (1 - tab)
    return replace(
        raster,
        fractions=fractions,
        displacement_um=np.zeros_like(raster.displacement_um),
        turn=np.full_like(raster.turn, -1),
        agglomerate_id=np.zeros_like(raster.agglomerate_id),
        agglomerate_area_um2={},
        damage_radius=np.full_like(raster.damage_radius, np.nan),
    )


COMPONENT_GROUPS: dict[str, tuple[str, ...]] = {
    "void": (),
    "casing": ("steel",),
    "cu": ("cu",),
    "al": ("al",),
    "separator_electrolyte": ("separator", "electrolyte"),
    "cathode": ("nmc_lithiated", "nmc_delithiated"),
    "anode": ("lic6", "lic12", "graphite_poor", "si", "lisi", "fesi2"),
}
"""The NXCT segmentation's classes as groups of the twin's components (void: what the
components leave, 1 - all; the binder in none): the truth its labels are judged by."""


def group_fractions(fractions: list[dict[str, np.ndarray]]) -> np.ndarray:
    """(n_groups, n_slices, ny, nx): per :data:`COMPONENT_GROUPS` group, in order, the
    summed fraction of its components in each slice's ``fractions``
    (:func:`nxct_fraction_slices`); the void 1 - all. Its argmax along the first axis is
    each voxel's true class."""
    stacked = {name: np.stack([f[name] for f in fractions]) for name in fractions[0]}
    total = sum(stacked.values())
    return np.stack(
        [
            sum(stacked[m] for m in members) if members else 1 - total
            for members in COMPONENT_GROUPS.values()
        ]
    )


def nxct_fraction_slices(
    twin: Twin, n_slices: int, voxel_um: float, map_to_world: np.ndarray | None = None
) -> Iterator[tuple[int, Raster, dict[str, np.ndarray]]]:
    """Raster and component fractions of ``n_slices`` slices of ``voxel_um`` of the world grid.

    ``map_to_world`` (4x4, um; default identity) places the SWAXS map frame (the cell's frame,
    z = 0 on the SWAXS slice) in the world grid's frame: a height, an in-plane rotation and
    shift (:func:`twin_placement`; no tilt: each world slice is one height of the cell).
    Slices above the roll's end (:func:`roll_end_um`) are head space (:func:`_head_space`).
    Slices that no agglomerate reaches are all alike (:func:`z_invariant`), and so are the
    head-space ones: the first of each is computed and shared by the others, so the yielded
    arrays must not be modified.
    """
    n = round(twin.size.n_translations * twin.pixel_size_um / voxel_um)
    geometry = twin.geometry
    params = geometry.params
    world_to_map = np.linalg.inv(np.eye(4) if map_to_world is None else map_to_world)
    if not np.allclose(world_to_map[0], [1.0, 0.0, 0.0, world_to_map[0, 3]]):
        raise ValueError("map_to_world must keep the slices horizontal (no tilt)")
    slice_height = -float(world_to_map[0, 3])
    grid_to_cell = world_to_map[1:, 1:]
    roll_end = roll_end_um(twin, n_slices, voxel_um, slice_height)
    shared: dict[bool, tuple[Raster, dict[str, np.ndarray]]] = {}
    for k in range(n_slices):
        z_um = (k - (n_slices - 1) / 2.0) * voxel_um
        head = z_um > roll_end
        z_cell = z_um - slice_height
        invariant = head or z_invariant(geometry, z_cell)
        if invariant and head in shared:
            yield k, *shared[head]
            continue
        raster = rasterize(
            geometry,
            (n, n),
            voxel_um,
            z_um=z_cell,
            supersample=twin.size.nxct_supersample,
            grid_to_cell=grid_to_cell,
        )
        if head:
            raster = _head_space(raster, twin, grid_to_cell)
        state = cell_state(
            raster,
            twin.state.health,
            twin.state.soc,
            seed=params.seed,
            silicon_enrichment=params.agglomerates.silicon_enrichment,
        )
        if invariant:
            shared[head] = (raster, state.fractions)
        yield k, raster, state.fractions


@dataclass(frozen=True)
class TwinNXCT:
    """The twin's NXCT volumes with their truth.

    ``labels``: (mz, my, mx) uint8 majority component (:data:`LABEL_NAMES`) on the X-ray
    grid; ``bends``: collector bends with (z_um, y_um, x_um) in the X-ray volume frame;
    ``remount``: the random draws of ``volumes.neutron_to_world`` (deg, um);
    ``map_to_world``: 4x4 (um) SWAXS map frame -> world, drawn by :func:`twin_placement`,
    whose draws are ``placement``.
    """

    volumes: NXCTVolumes
    labels: np.ndarray
    bends: pd.DataFrame
    remount: dict[str, float]
    map_to_world: np.ndarray
    placement: dict[str, float]

    @property
    def map_to_xct(self) -> np.ndarray:
        """4x4 (um): a point (z, y, x, 1) of the SWAXS map frame -> the X-ray volume frame."""
        return np.linalg.inv(self.volumes.xray_to_world) @ self.map_to_world


def twin_remount(
    seed: int, field_of_view_um: Sequence[float]
) -> tuple[np.ndarray, dict[str, float]]:
    """The neutron volume's random remount of a twin seed (:func:`random_remount`)."""
    return random_remount(np.random.default_rng([seed, _REMOUNT_STREAM]), field_of_view_um)


def twin_placement(
    seed: int, field_of_view_um: Sequence[float]
) -> tuple[np.ndarray, dict[str, float]]:
    """The random place of the twin's SWAXS slice in its NXCT stack: 4x4 map_to_world (um).

    The map frame (z = 0 on the slice) is rotated about z by an angle uniform in 0-360 deg,
    shifted in-plane by up to :data:`PLACEMENT_SHIFT_FRACTION` of the (y, x) field of view and
    raised to a height uniform within +-:data:`PLACEMENT_HEIGHT_FRACTION` of the stack's
    height ``field_of_view_um[0]`` from its centre. Draws returned in deg and um.
    """
    rng = np.random.default_rng([seed, _PLACEMENT_STREAM])
    fov = np.asarray(field_of_view_um, dtype=np.float64)
    rotation = float(rng.uniform(0.0, 360.0))
    height = float(rng.uniform(-PLACEMENT_HEIGHT_FRACTION, PLACEMENT_HEIGHT_FRACTION) * fov[0])
    shift = rng.uniform(-PLACEMENT_SHIFT_FRACTION, PLACEMENT_SHIFT_FRACTION, size=2) * fov[1:]
    draws = {
        "rotation_deg": rotation,
        "height_um": height,
        "shift_y_um": float(shift[0]),
        "shift_x_um": float(shift[1]),
    }
    return rigid_matrix((rotation, 0.0, 0.0), (height, *shift)), draws


def placed_xray_stack(
    twin: Twin,
    seed: int,
    n_slices: int,
    voxel_um: float,
    *,
    blur_voxels: float = 0.7,
    noise_fraction: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """A lab X-ray stack of the twin holding its SWAXS slice at the placement of ``seed``.

    ``n_slices`` x n x n voxels of ``voxel_um`` (n covers the SWAXS field of view), the
    attenuation at :data:`XRAY_LAB_ENERGY_KEV` (per um) blurred by ``blur_voxels`` (Gaussian
    sigma, voxels) plus Gaussian noise of ``noise_fraction`` of its range (from ``seed``);
    no neutron volume, labels or bends (:func:`simulate_twin_nxct` makes those). Returns the
    (n_slices, n, n) float32 volume and the true map_to_xct (4x4, um; the stack's frame is
    the world's, :func:`twin_placement`).
    """
    n = round(twin.size.n_translations * twin.pixel_size_um / voxel_um)
    fov = np.array([n_slices, n, n]) * voxel_um
    map_to_xct, _ = twin_placement(seed, fov)
    mu = mu_table("xray", energy_keV=XRAY_LAB_ENERGY_KEV)
    slices = nxct_fraction_slices(twin, n_slices, voxel_um, map_to_xct)
    volume = ndimage.gaussian_filter(
        np.stack([attenuation_map(f, mu) for _, _, f in slices]), blur_voxels
    )
    rng = np.random.default_rng(seed)
    volume += rng.standard_normal(volume.shape, dtype=np.float32) * noise_fraction * np.ptp(volume)
    return volume, map_to_xct


def simulate_twin_nxct(
    twin: Twin, *, seed: int = 0, console: Console | None = None, **options: Any
) -> TwinNXCT:
    """Neutron and lab X-ray CT of a stack around the twin's slice, with labels and bends.

    The world grid: ``nxct_slices`` x n x n voxels of ``nxct_voxel_um`` (n covers the SWAXS
    scan's field of view), in which the SWAXS slice is placed at random
    (:func:`twin_placement`); the X-ray volume is ``XRAY_DOWNSAMPLE`` times coarser and the
    neutron one is remounted at random (:func:`twin_remount`).
    ``options`` go to :func:`simulate_nxct_from_attenuation` (blur, noise). The true
    attenuation volumes are accumulated slice by slice, so memory holds two volumes, not one
    per component.
    """
    console = console or Console(quiet=True)
    voxel = twin.size.nxct_voxel_um
    n_slices = twin.size.nxct_slices
    factor = XRAY_DOWNSAMPLE
    mu_x = mu_table("xray", energy_keV=XRAY_LAB_ENERGY_KEV)
    mu_n = mu_table("neutron", wavelength_A=NEUTRON_WAVELENGTH_A)
    xray = neutron = labels = np.zeros(0, np.float32)
    block = np.zeros(0, np.float32)
    n = round(twin.size.n_translations * twin.pixel_size_um / voxel)
    map_to_world, placement = twin_placement(seed, np.array([n_slices, n, n]) * voxel)
    with fraction_progress(console, "NXCT slices", transient=True) as update:
        for k, raster, fractions in nxct_fraction_slices(twin, n_slices, voxel, map_to_world):
            if k == 0:
                xray = np.zeros((n_slices, *fractions["cu"].shape), np.float32)
                neutron = np.zeros_like(xray)
                block = np.zeros((len(LABEL_NAMES), factor, *xray.shape[1:]), np.float32)
                m = [-(-size // factor) for size in xray.shape]
                labels = np.zeros(m, np.uint8)
            xray[k] = attenuation_map(fractions, mu_x)
            neutron[k] = attenuation_map(fractions, mu_n)
            for label, name in LABEL_NAMES.items():
                block[label, k % factor] = sum(raster.fractions[r] for r in _LABEL_REGIONS[name])
            if k % factor == factor - 1 or k == n_slices - 1:
                block[:, k % factor + 1 :] = block[:, k % factor : k % factor + 1]  # edge pad
                means = np.stack([block_mean(b, factor)[0][0] for b in block])
                labels[k // factor] = np.argmax(means, axis=0)
            update((k + 1) / n_slices)
    remount, draws = twin_remount(seed, np.asarray(xray.shape) * voxel)
    volumes = simulate_nxct_from_attenuation(
        xray,
        neutron,
        voxel,
        xray_energy_keV=XRAY_LAB_ENERGY_KEV,
        neutron_wavelength_A=NEUTRON_WAVELENGTH_A,
        xray_downsample=factor,
        neutron_to_world=remount,
        seed=seed,
        **options,
    )
    bends = twin.geometry.bend_table()
    cell = np.column_stack([bends[["z_um", "y_um", "x_um"]].to_numpy(), np.ones(len(bends))])
    map_to_xct = np.linalg.inv(volumes.xray_to_world) @ map_to_world
    bends[["z_um", "y_um", "x_um"]] = (cell @ map_to_xct.T)[:, :3]
    return TwinNXCT(volumes, labels, bends, draws, map_to_world, placement)


def _write_nxct(out: Path, volumes: NXCTVolumes, configuration: dict[str, Any]) -> dict[Path, str]:
    xct, nct = out / "xct.tif", out / "nct.tif"
    description = {**configuration, "units": "1/um"}
    write_tiff_stack(
        xct,
        volumes.xray,
        volumes.xray_voxel_um,
        description={**description, "modality": f"lab X-ray CT, {XRAY_LAB_ENERGY_KEV} keV"},
    )
    write_tiff_stack(
        nct,
        volumes.neutron,
        volumes.neutron_voxel_um,
        description={**description, "modality": f"neutron CT, {NEUTRON_WAVELENGTH_A} A"},
    )
    return {
        xct: f"X-ray CT volume {volumes.xray.shape}, {volumes.xray_voxel_um:g} um voxels",
        nct: f"neutron CT volume {volumes.neutron.shape}, {volumes.neutron_voxel_um:g} um voxels",
    }


def truth_maps(twin: Twin) -> dict[str, tuple[np.ndarray, str]]:
    """Every true map of the twin: name -> (map (ny, nx), units)."""
    state = twin.state
    maps: dict[str, tuple[np.ndarray, str]] = {
        f"fraction_{c}": (state.fractions[c], "volume fraction") for c in COMPONENTS
    }
    maps.update(
        {f"region_{name}": (f, "area fraction") for name, f in twin.raster.fractions.items()}
    )
    maps.update(
        {
            # SPEC section 6 names for what the analysis must recover
            "lic6": (state.fractions["lic6"], "volume fraction"),
            "lic12": (state.fractions["lic12"], "volume fraction"),
            "graphite_poor": (state.fractions["graphite_poor"], "volume fraction"),
            "nmc_lithiated": (state.fractions["nmc_lithiated"], "volume fraction"),
            "nmc_delithiated": (state.fractions["nmc_delithiated"], "volume fraction"),
            "saxs_intensity": (twin.saxs_intensity, "arb. units / um x 1/angstrom"),
            "d_star_nm": (twin.true_dstar_nm, "nm"),
            "attenuation": (twin.mu_xray_per_um, "1/um"),
            "graphite_label": (state.graphite_label(), "0 LiC6, 1 LiC12, 2 poor, -1 none"),
            "nmc_label": (state.nmc_label(), "0 lithiated, 1 delithiated, -1 none"),
            "silicon": (state.silicon, "volume fraction"),
            "si_lithiation": (state.si_lithiation, "lithiated fraction"),
            "graphite_x": (state.graphite_x, "x in LixC6"),
            "d_star_target_nm": (state.dstar_target_nm, "nm"),
            "collector_displacement_um": (twin.raster.displacement_um, "um"),
            "turn": (twin.raster.turn, "turn index"),
            "agglomerate_id": (twin.raster.agglomerate_id, "id"),
            "damage_radius": (twin.raster.damage_radius, "normalised radius"),
            "anode_mask": (state.anode_mask.astype(np.uint8), "1 = anode"),
        }
    )
    return maps


def _write_truth(
    path: Path,
    twin: Twin,
    geometry: ScanGeometry,
    configuration: dict[str, Any],
    nxct: TwinNXCT | None,
) -> None:
    y_um, x_um = twin.raster.axes_um()
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        entry = nx_group(f, "entry", "NXentry")
        set_default(f, "entry")
        maps = nx_group(entry, "maps", "NXcollection")
        for name, (values, units) in truth_maps(twin).items():
            write_nxdata(
                maps, name, values, [("y_um", y_um, "um"), ("x_um", x_um, "um")], units=units
            )
        set_default(entry, "maps/saxs_intensity")
        write_table(entry, "agglomerates", twin.agglomerates)
        scan = nx_group(entry, "scan", "NXcollection")
        scan["rotation_angle_deg"] = geometry.angles_deg
        scan["rotation_angle_deg"].attrs["units"] = "deg"
        scan["translation_mm"] = geometry.translations_mm
        scan["translation_mm"].attrs["units"] = "mm"
        scan["rotation_centre_mm"] = geometry.rotation_centre_mm
        scan["rotation_centre_mm"].attrs["units"] = "mm"
        for name, value, units in (
            ("beam_fwhm_um", geometry.beam_fwhm_um, "um"),
            ("pixel_size_um", twin.pixel_size_um, "um"),
            ("wavelength_A", WAVELENGTH_A, "angstrom"),
        ):
            scan[name] = value
            scan[name].attrs["units"] = units
        patterns = nx_group(entry, "patterns", "NXcollection")
        for kind, basis in twin.pattern_bases().items():
            axes = [
                ("map_index", np.arange(basis.shape[0]), ""),
                ("q", getattr(twin.q, kind), "1/angstrom"),
            ]
            write_nxdata(patterns, kind, basis, axes)
        patterns["map_names"] = np.array(
            [name for name in twin.map_names if name != "mu"], dtype=object
        )
        if nxct is not None:
            _write_nxct_truth(entry, nxct)
        entry["provenance"] = provenance_json(provenance_record(configuration))


def _write_nxct_truth(entry: h5py.Group, nxct: TwinNXCT) -> None:
    """``/entry/nxct``: frames, voxel sizes, remount, labels and bends of the NXCT pair."""
    volumes = nxct.volumes
    group = nx_group(entry, "nxct", "NXcollection")
    group.attrs["xray_voxel_um"] = volumes.xray_voxel_um
    group.attrs["neutron_voxel_um"] = volumes.neutron_voxel_um
    group.attrs["world_voxel_um"] = volumes.world_voxel_um
    frames = "um, (z, y, x, 1) homogeneous; frames centred on their grids (SPEC section 6)"
    for name, matrix, meaning in (
        ("neutron_to_world", volumes.neutron_to_world, "neutron volume frame -> world"),
        ("xray_to_world", volumes.xray_to_world, "X-ray volume frame -> world"),
        ("nct_to_xct", volumes.nct_to_xct, "neutron volume frame -> X-ray volume frame"),
        ("map_to_world", nxct.map_to_world, "SWAXS map frame -> world"),
        ("map_to_xct", nxct.map_to_xct, "SWAXS map frame (z = 0 on the slice) -> X-ray frame"),
    ):
        group[name] = np.asarray(matrix, dtype=np.float64)
        group[name].attrs["units"] = frames
        group[name].attrs["description"] = meaning
    group["neutron_to_world"].attrs.update(nxct.remount)
    group["map_to_world"].attrs.update(nxct.placement)
    for name in ("xray_voxel_um", "neutron_voxel_um"):
        group[name] = getattr(volumes, name)
        group[name].attrs["units"] = "um"
    labels = group.create_dataset(
        "labels", data=nxct.labels, compression="gzip", chunks=(1, *nxct.labels.shape[1:])
    )
    labels.attrs["names"] = json.dumps({str(k): v for k, v in LABEL_NAMES.items()})
    labels.attrs["frame"] = "X-ray volume grid (xct.tif); to the world: xray_to_world"
    labels.attrs["voxel_um"] = volumes.xray_voxel_um
    bends = write_table(group, "bends", nxct.bends)
    bends.attrs["frame"] = "X-ray volume frame, um"
    bends.attrs["extents"] = (
        "full widths at half maximum of the Cu foil's mid-surface displacement, um"
    )
    bends.attrs["amplitude"] = "radial displacement of the Cu foil's mid-surface at the peak, um"


OPERANDO_START = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
"""Start of the twin's charge (the first scan of an operando series)."""
OPERANDO_STEP_MINUTES = 20.0
"""Time between two operando scans of the twin (a 512 x 150-frame scan takes ~15 min)."""


def _write_operando(
    out: Path, twin: Twin, n_steps: int, seed: int, console: Console
) -> dict[Path, str]:
    """A charge series: pre-integrated WAXS scans (half the translations, 3 x half the
    angles, as the study's operando scans), each with its start time and state of charge,
    the potentiostat log of the charge, and the truth per step: graphite phase maps and the
    poorly lithiated core of every damaged zone."""
    size = twin.size
    step_mm = 2 * twin.pixel_size_um / 1000.0
    n_t = size.n_translations // 2
    geometry = ScanGeometry(
        angles_deg=interlaced_angles(size.n_subsets, max(size.angles_per_subset // 2, 1)),
        translations_mm=STAGE_CENTRE_MM + (np.arange(n_t) - (n_t - 1) / 2.0) * step_mm,
        rotation_centre_mm=STAGE_CENTRE_MM + CENTRE_OFFSET_PX * twin.pixel_size_um / 1000.0,
    )
    setup = detector_setups(twin)["waxs"]
    socs = np.linspace(0.0, 1.0, n_steps)
    starts = [OPERANDO_START + timedelta(minutes=OPERANDO_STEP_MINUTES * k) for k in range(n_steps)]
    written: dict[Path, str] = {}
    phases = ("lic6", "lic12", "graphite_poor")
    truth = {name: np.zeros((n_steps, *twin.shape), np.float32) for name in phases}
    zones = damage_zone_ids(twin)
    cores = []
    for step, soc in enumerate(socs):
        state = cell_state(
            twin.raster,
            twin.state.health,
            float(soc),
            seed=twin.geometry.params.seed,
            silicon_enrichment=twin.geometry.params.agglomerates.silicon_enrichment,
        )
        twin_step = replace(twin, state=state)
        projections = project_twin(twin_step, geometry)
        schedule, counters = simulate_acquisition(projections, seed=seed + step)
        path = out / f"step_{step:03d}_waxs.h5"
        config = {"operando_step": step, "soc": float(soc), "technique": "waxs", "seed": seed}
        _write_integrated_scan(
            path, projections, schedule, counters, setup, config, seed + step, console,
            metadata={"start_time": starts[step].isoformat(), "state_of_charge": float(soc)},
        )  # fmt: skip
        written[path] = f"operando WAXS, state of charge {soc:.2f}"
        for name in phases:
            truth[name][step] = state.fractions[name]
        cores += _core_truth(twin, zones, step, float(soc))
    path = out / "truth.h5"
    y_um, x_um = twin.raster.axes_um()
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs[TWIN_TRUTH] = True  # beside the steps: no step, and no note says so
        entry = nx_group(f, "entry", "NXentry")
        set_default(f, "entry")
        axes = [("y_um", y_um, "um"), ("x_um", x_um, "um")]
        for name in phases:
            write_nxdata(
                entry, name, truth[name], [("soc", socs, ""), *axes], units="volume fraction"
            )
        write_nxdata(entry, "zone_id", zones, axes, units="case-B agglomerate id, 0 = none")
        write_table(entry, "cores", pd.DataFrame(cores, columns=list(CORE_COLUMNS)))
        entry["cores"].attrs["description"] = (
            "poorly lithiated core of each damaged zone per step: area (um2: over the "
            "pixels the zone reaches, the anode coating (damaged, regular and agglomerate) "
            "area fraction of each pixel times the poorly lithiated share of its graphite, "
            "which all of a pixel's graphite shares), centre and ellipse of equal second "
            "moments of that area (full axes, orientation of the major axis from +x towards "
            "+y, deg); damaged_area_um2: the damaged-zone area fraction alone times that "
            "share"
        )
        set_default(entry, "graphite_poor")
    written[path] = "operando truth: graphite phase fractions and zone cores per step"
    path = out / "potentiostat.csv"
    _write_potentiostat_log(path, starts[0], starts[-1])
    written[path] = "potentiostat log of the charge (time, voltage, current, charge)"
    return written


CORE_COLUMNS = (
    "step", "soc", "zone_id", "area_um2", "x_um", "y_um",
    "major_axis_um", "minor_axis_um", "orientation_deg", "damaged_area_um2",
)  # fmt: skip


def damage_zone_ids(twin: Twin) -> np.ndarray:
    """(ny, nx) int32: the id of the case-B agglomerate whose damaged zone covers a pixel
    (the nearest one, by centre), 0 where no damaged zone is."""
    table = twin.agglomerates
    table = table[table["case"] == "B"]
    ids = np.zeros(twin.shape, np.int32)
    damaged = twin.raster.fractions["damage"] > 0
    if table.empty or not damaged.any():
        return ids
    y_um, x_um = twin.raster.axes_um()
    rows, cols = np.nonzero(damaged)
    distance = np.hypot(
        x_um[cols, None] - table["x_um"].to_numpy()[None],
        y_um[rows, None] - table["y_um"].to_numpy()[None],
    )
    ids[rows, cols] = table["id"].to_numpy()[np.argmin(distance, axis=1)]
    return ids


def fractions_at(twin: Twin, soc: float) -> dict[str, np.ndarray]:
    """The twin's component fractions at state of charge ``soc``."""
    params = twin.geometry.params
    return cell_state(
        twin.raster,
        twin.state.health,
        float(soc),
        seed=params.seed,
        silicon_enrichment=params.agglomerates.silicon_enrichment,
    ).fractions


def _core_truth(twin: Twin, zones: np.ndarray, step: int, soc: float) -> list[tuple]:
    """Rows of :data:`CORE_COLUMNS` for every damaged zone at one step."""
    pixel = twin.pixel_size_um
    y_um, x_um = twin.raster.axes_um()
    state = fractions_at(twin, soc)
    graphite = sum(state[name] for name in ("lic6", "lic12", "graphite_poor"))
    with np.errstate(invalid="ignore", divide="ignore"):
        poor = np.where(graphite > 0, state["graphite_poor"] / graphite, 0.0)
    # all the graphite of a pixel shares one lithiation (cell_state), so the core is the
    # coating of the zone's pixels (the damaged zone and the regular anode and agglomerate
    # it shares pixels with) whose graphite is poorly lithiated
    coating = sum(twin.raster.fractions[region] for region in ANODE_REGIONS)
    damage = twin.raster.fractions["damage"]
    rows = []
    for zone in np.unique(zones[zones > 0]):
        member = zones == zone
        core = np.where(member, coating * poor, 0.0)
        area = float(core.sum()) * pixel**2
        damaged_area = float((damage * poor)[member].sum()) * pixel**2
        if area <= 0:
            rows.append((step, soc, int(zone), 0.0, *[np.nan] * 5, damaged_area))
            continue
        cy, cx = regionprops((core > 0).astype(int), intensity_image=core)[0].centroid_weighted
        major, minor = (4.0 * pixel * np.sqrt(max(v, 0.0)) for v in inertia_tensor_eigvals(core))
        orientation = _major_axis_angle_deg(core)
        centre = (float(np.interp(cx, np.arange(x_um.size), x_um)),
                  float(np.interp(cy, np.arange(y_um.size), y_um)))  # fmt: skip
        rows.append((step, soc, int(zone), area, *centre, major, minor, orientation, damaged_area))
    return rows


def _major_axis_angle_deg(weights: np.ndarray) -> float:
    """Angle (deg, in (-90, 90]) of the major axis of ``weights``' second moments, from +x
    towards +y (image rows)."""
    tensor = inertia_tensor(weights)  # (row, col) axes; the major axis has the least inertia
    values, vectors = np.linalg.eigh(tensor)
    dy, dx = vectors[:, np.argmin(values)]
    angle = float(np.degrees(np.arctan2(dy, dx)))
    return angle - 180.0 if angle > 90 else angle + 180.0 if angle <= -90 else angle


def _write_potentiostat_log(path: Path, start: datetime, stop: datetime) -> None:
    """CSV log of a constant-current charge from ``start`` (empty) to ``stop`` (full; the
    first and the last scans start then), one line a minute:
    time (ISO 8601), voltage (V), current (mA), charge (mAh; 0 at the start)."""
    minutes = np.arange(0.0, (stop - start).total_seconds() / 60.0 + 1e-9, 1.0)
    soc = minutes / minutes[-1]
    current_ma = 1.0
    lines = ["time,voltage,current,charge"]
    for minute, fraction in zip(minutes, soc, strict=True):
        time = (start + timedelta(minutes=float(minute))).isoformat()
        voltage = 3.45 + 0.75 * fraction - 0.08 * np.exp(-fraction / 0.05)
        lines.append(f"{time},{voltage:.4f},{current_ma:.4f},{current_ma * minute / 60.0:.5f}")
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


DEMO_TITLE_LINE = 'title = "jellyroll demo: fresh vs aged digital-twin cell"'
"""The first line of the demo's configuration: what marks a folder as an earlier demo's."""


def foreign_demo_config(folder: Path) -> Path | None:
    """``folder/demo.toml`` when it exists and is no demo configuration of jellyroll's (it
    does not begin with :data:`DEMO_TITLE_LINE`): a file of the user's that the demo would
    replace; None otherwise."""
    config = folder / "demo.toml"
    if not config.exists():
        return None
    if config.is_file():
        with config.open(encoding="utf-8", errors="replace") as handle:
            if handle.readline().rstrip("\n") == DEMO_TITLE_LINE:
                return None
    return config


def demo_config(output: Path, twins: Path, size: str) -> Path:
    """Write the ``jellyroll run`` configuration of the demo (fresh vs aged twin) and
    return its path; q ranges and bins are those of the twin's detectors, and each cell
    names its twin's truth.h5 so that the report compares the findings with it, and its
    X-ray and neutron CT volumes where the twin has them (the correlative section)."""
    q = q_grids(SIZES[size])
    lines = [
        DEMO_TITLE_LINE,
        'output = "."',
        "[waxs]",
        f"npt = {q.waxs.size}",
        f"q_range = [{WAXS_Q_RANGE_A[0]}, {WAXS_Q_RANGE_A[1]}]",
        "[saxs]",
        f"npt = {q.saxs.size}",
        f"q_range = [{SAXS_Q_RANGE_A[0]}, {SAXS_Q_RANGE_A[1]}]",
    ]
    for preset, label in (("fresh_charged", "fresh, charged"), ("aged_charged", "aged, charged")):
        folder = (twins / preset).resolve()
        lines += [
            "[[cells]]",
            f"name = {_toml_string(preset)}",
            f"label = {_toml_string(label)}",
            f"waxs = {_toml_string(folder / 'waxs_scan.h5')}",
            f"saxs = {_toml_string(folder / 'saxs_scan.h5')}",
            f"truth = {_toml_string(folder / 'truth.h5')}",
        ]
        volumes = {key: folder / f"{key}.tif" for key in ("xct", "nct")}
        if all(path.exists() for path in volumes.values()):
            lines += [f"{key} = {_toml_string(path)}" for key, path in volumes.items()]
    path = Path(output) / "demo.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def _toml_string(value: str | Path) -> str:
    """``value`` as a TOML basic string: JSON's string escapes (quotes, backslashes,
    control characters, ``\\uXXXX``) are TOML's too; TOML also escapes DEL."""
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def noisy_pixel_patterns(
    twin: Twin, kind: str, seed: int, rows: slice = slice(None)
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel true patterns (ny, nx, n_q) with the counting noise of one map pixel.

    Expected counts per q bin = pattern (per um) x pixel size (um) x counts per unit
    pattern x unmasked detector pixels in the bin: what one pixel alone adds to a frame of
    the twin's scans (no attenuation, mean monitor). ``rows`` limits the result to a slab of
    map rows (n_rows, nx, n_q). Returns the noisy patterns and their one-sigma errors as a
    reduction reports them (sqrt(max(counts, 1)) / gain).
    """
    setup = detector_setups(twin)[kind]
    q = getattr(twin.q, kind)
    gain = setup.counts_per_unit * _pixels_per_bin(setup, q) * twin.pixel_size_um
    counts = np.random.default_rng(seed).poisson(
        twin.patterns(kind, rows).astype(np.float64) * gain
    )
    return counts / gain, np.sqrt(np.maximum(counts, 1)) / gain

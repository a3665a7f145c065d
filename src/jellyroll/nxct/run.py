"""``jellyroll nxct XCT NCT -o NXCT.h5``: register a neutron CT volume onto a lab X-ray CT
volume of the same cell, fuse them as RGB, segment them and find the bent collectors in 3D,
streaming slab by slab (volumes of 2048^3 never held whole).

Steps: :func:`jellyroll.nxct.register.register_volumes` on downsampled copies; the
neutron volume resampled onto the common grid (:mod:`jellyroll.nxct.resample`) into a
temporary file; contrast windows and segmentation thresholds from a voxel sample of the
registered pair (:mod:`jellyroll.nxct.fuse`, :mod:`jellyroll.nxct.segment`); the fused RGB
and the labels written slab by slab; the bends of the Cu collector traced through the X-ray
volume (:mod:`jellyroll.defects.bends3d`); an orthogonal-views PNG beside the output.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np

from jellyroll import figures
from jellyroll.defects.bends3d import find_bends_3d
from jellyroll.io.images import refuse_foreign_images, save_png
from jellyroll.io.lock import output_lock
from jellyroll.io.provenance import provenance_record, refuse_overwrite
from jellyroll.io.volumes import (
    VolumeSource,
    open_volume,
    planes_digest,
    refuse_same_volume,
    split_dataset,
    volume_files,
    volume_fingerprints,
)
from jellyroll.nxct.fuse import contrast_window, fuse_rgb, sample_voxels
from jellyroll.nxct.options import NXCTOptions
from jellyroll.nxct.register import register_volumes
from jellyroll.nxct.resample import write_resampled
from jellyroll.nxct.segment import (
    LABEL_NAMES,
    check_modality_order,
    check_voxel_sizes,
    classify,
    find_thresholds,
    mask_fill_rings,
)
from jellyroll.nxct.unmeasured import FillRings, fill_ring
from jellyroll.progress import unique_warnings
from jellyroll.results.nxct import (
    NXCTResult,
    create_volume_datasets,
    read_fused_cuts,
    read_nxct,
    write_bends_group,
    write_registration_group,
)
from jellyroll.results.store import stage_key, write_stage_file

Progress = Callable[[str, float], None]
STEPS = {"registration": (0.0, 0.3), "resampling": (0.3, 0.5), "bends": (0.5, 0.7),
         "fusion": (0.7, 1.0)}  # fmt: skip
"""The share of the whole run each step takes, for one progress bar."""


def nxct_key(xct: str, nct: str, options: NXCTOptions) -> str:
    """Key of the NXCT result of two volumes (by fingerprint) with ``options``."""
    return stage_key("nxct", options.key_payload(), volume_fingerprints([xct, nct]))


def run_nxct(
    xct: str | os.PathLike[str],
    nct: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: NXCTOptions | None = None,
    progress: Callable[[float], None] | None = None,
) -> NXCTResult:
    """Register, fuse, segment and find the bends of an X-ray (``xct``) and a neutron
    (``nct``) CT volume of one cell into ``output`` (see the module docstring);
    ``progress(fraction)`` follows the whole run."""
    options = options or NXCTOptions()
    output = Path(output).resolve()

    def say(step: str, fraction: float) -> None:
        if progress is not None:
            low, high = STEPS[step]
            progress(low + (high - low) * fraction)

    refuse_overwrite([output], [split_dataset(given)[0] for given in (xct, nct)])
    refuse_same_volume(xct, nct)
    refuse_foreign_images([views_png(output)])
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _registered(xct, nct, output, options, say, lambda: _notes(caught))
    finally:
        for warning in unique_warnings(caught):  # said as they came, for the caller
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    _views(output, result)
    return result


def _notes(caught: list[warnings.WarningMessage]) -> list[str]:
    """What the user must know of the run, for the file's ``/entry/notes`` and the
    report: its :class:`UserWarning` messages, each once (that the shift along the axis is
    the metric's alone, that the collector's turns count from a cut, that slices were left
    out of the bends). Printed only, they were lost with the terminal."""
    return [str(w.message) for w in unique_warnings(caught) if issubclass(w.category, UserWarning)]


def _registered(
    xct: str | os.PathLike[str],
    nct: str | os.PathLike[str],
    output: Path,
    options: NXCTOptions,
    say: Progress,
    notes: Callable[[], list[str]],
) -> NXCTResult:
    """The run of :func:`run_nxct` once its inputs are checked: ``notes()`` gives what the
    run has said so far, for the file."""
    with (
        # its scratch file's and figure's leftovers
        output_lock(output, derived=["registered"], figures=[views_png(output).name]),
        open_volume(xct, options.xct_voxel_um, voxel_hint="give it with --xct-voxel-um") as xray,
        open_volume(nct, options.nct_voxel_um, voxel_hint="give it with --nct-voxel-um") as neutron,
    ):
        if options.segment:  # before the registration's minutes where neither order fits
            try:  # the voxels fit swapped: the order's check, after the registration, tells
                check_voxel_sizes(neutron.voxel_um, xray.voxel_um)
            except ValueError:
                check_voxel_sizes(xray.voxel_um, neutron.voxel_um, (str(xct), str(nct)))
        start = time.perf_counter()
        say("registration", 0.0)
        registration = register_volumes(
            xray,
            xray.voxel_um,
            neutron,
            neutron.voxel_um,
            scale=options.scale,
            max_voxels=options.max_voxels,
            fine_voxels=options.fine_voxels,
        )
        say("registration", 1.0)
        grid_source = xray if options.grid == "xct" else neutron
        shape, voxel = grid_source.shape, grid_source.voxel_um
        # grid frame -> X-ray frame: identity for the X-ray grid, the registration otherwise
        grid_to_xct = np.eye(4) if options.grid == "xct" else registration.nct_to_xct
        grid_to_nct = np.linalg.inv(registration.nct_to_xct) @ grid_to_xct
        scratch = output.with_name(f".{output.stem}.registered.h5.part")
        try:
            with h5py.File(scratch, "w") as work:
                moved = {
                    "xray": _on_grid(work, "xray", xray, grid_to_xct, shape, voxel, options),
                    "neutron": _on_grid(
                        work, "neutron", neutron, grid_to_nct, shape, voxel, options
                    ),
                }
                say("resampling", 1.0)
                result = _write(
                    output,
                    xct,
                    nct,
                    registration,
                    moved,
                    shape,
                    voxel,
                    xray,
                    neutron,
                    options,
                    start,
                    say,
                    notes,
                )
        finally:
            scratch.unlink(missing_ok=True)
    return result


def _on_grid(
    work: h5py.File,
    name: str,
    source: VolumeSource,
    grid_to_source: np.ndarray,
    shape: tuple[int, int, int],
    voxel_um: float,
    options: NXCTOptions,
):
    """``source`` on the common grid, its NaN and inf voxels as NaN (not measured: void, out
    of the sample, black in the RGB; as :class:`VolumeSource` reads them): itself when the
    grid is its own, else resampled into the scratch file slab by slab."""
    if np.allclose(grid_to_source, np.eye(4)) and source.shape == shape:
        return source
    return write_resampled(
        work, name, source, source.voxel_um, grid_to_source, shape, voxel_um,
        slab=options.slab, outside=np.nan,  # not measured there: void, left out of the sample
    )  # fmt: skip


MIN_MEASURED = 1000
"""Fewest sampled voxels both volumes must have measured (finite, off a reconstruction's fill
ring) for the windows and thresholds: their 1 % and 99 % percentiles rest on 10 voxels."""


def _check_measured(values: np.ndarray, moved: dict, names: tuple[str, str]) -> None:
    """ValueError naming the files when fewer than :data:`MIN_MEASURED` sampled voxels of
    the common grid are measured in both volumes (NaN or inf over most of the stack, or
    fields of view that barely overlap). Read as 0, an all-NaN X-ray stack was refused as
    a sample "with no contrast" to "sample more voxels" of."""
    if len(values) >= MIN_MEASURED:
        return
    shares = []
    for key, name in zip(("xray", "neutron"), names, strict=True):
        alone = sample_voxels(moved[key], unmeasured=fill_ring)
        shares.append(f"{name} {len(alone.values) / max(alone.n_read, 1):.1%}")
    raise ValueError(
        f"only {len(values)} of the voxels sampled on the common grid are measured in both "
        f"volumes (fewer than {MIN_MEASURED}); each measures (not NaN or inf, not a "
        f"reconstruction's fill): {', '.join(shares)}. Give volumes of the same cell whose "
        "measured parts overlap, not a stack that is NaN but for a few planes"
    )


def _write(
    output: Path,
    xct,
    nct,
    registration,
    moved: dict,
    shape: tuple[int, int, int],
    voxel_um: float,
    xray: VolumeSource,
    neutron: VolumeSource,
    options: NXCTOptions,
    start: float,
    say: Progress,
    notes: Callable[[], list[str]],
) -> NXCTResult:
    sample = sample_voxels(moved["xray"], moved["neutron"], unmeasured=fill_ring)
    _check_measured(sample.values, moved, (str(xct), str(nct)))
    if options.check_order:  # the labels, the fused RGB and the bends take the first as X-ray
        check_modality_order(sample.values, (str(xct), str(nct)))
    if options.segment:  # after the order's check: a swapped pair's message is that one
        check_voxel_sizes(xray.voxel_um, neutron.voxel_um, (str(xct), str(nct)))
    low, high = options.window_percentiles
    windows = {
        "xray": list(contrast_window(sample.values[:, 0], low, high)),
        "neutron": list(contrast_window(sample.values[:, 1], low, high)),
    }
    thresholds = find_thresholds(sample.values) if options.segment else None
    bends, displacement = (None, None)
    if options.bends:
        say("bends", 0.0)
        bends, displacement = find_bends_3d(
            xray,
            xray.voxel_um,
            slice_step=options.bend_slice_step,
            progress=lambda fraction: say("bends", fraction),
        )

    def fill(entry: h5py.Group) -> None:
        write_registration_group(
            entry,
            registration.nct_to_xct,
            metric=registration.metric,
            metric_value=registration.metric_value,
            seconds=registration.seconds,
            attrs={
                "rotation_about_axis_deg": registration.rotation_about_axis_deg,
                "fine_level": registration.fine_level,
                "axial_level": registration.axial_level,
                # the neutron volume's cell axis runs down its stack (mounted upside down);
                # the matrix holds the turn
                "nct_upside_down": registration.upside_down,
                "xct_voxel_um": xray.voxel_um,
                "nct_voxel_um": neutron.voxel_um,
                # the frames nct_to_xct and the fused volume lie in: the volumes' centred grids
                "xct_shape": np.asarray(xray.shape, np.int64),
                "nct_shape": np.asarray(neutron.shape, np.int64),
                # which volumes those are (check_nxct_volumes): a turned export of one
                # has its shape
                "xct_digest": planes_digest(xray),
                "nct_digest": planes_digest(neutron),
            },
        )
        fused, labels = create_volume_datasets(
            entry,
            shape,
            voxel_um,
            grid=options.grid,
            label_names=LABEL_NAMES if thresholds is not None else None,
            windows=windows,
            chunk=options.slab,
        )
        if thresholds is not None:
            entry["segmentation"].attrs["thresholds"] = str(asdict(thresholds))
        rings = (FillRings(), FillRings())  # a circle found once, checked in every plane
        for z in range(0, shape[0], options.slab):
            block = slice(z, min(z + options.slab, shape[0]))
            # copies: NaN is set in them, never in a volume read as a view or memmap
            x_slab = np.array(moved["xray"][block], dtype=np.float32)
            n_slab = np.array(moved["neutron"][block], dtype=np.float32)
            mask_fill_rings(x_slab, n_slab, rings)
            fused[block] = fuse_rgb(x_slab, n_slab, windows["xray"], windows["neutron"])
            if labels is not None:
                labels[block] = classify(x_slab, n_slab, thresholds, masked=True)
            say("fusion", block.stop / shape[0])
        if bends is not None:
            write_bends_group(entry, bends, displacement)
        entry["notes"] = "\n".join(notes())

    configuration = {
        "stage": "nxct",
        "options": options.key_payload(),
        "grid_voxel_um": voxel_um,
        "sample_planes": list(map(int, sample.planes)),
        "seconds": time.perf_counter() - start,
    }
    files = [*volume_files(xct), *volume_files(nct)]
    record = provenance_record(configuration, inputs=files)
    write_stage_file(
        output,
        fill,
        stage="nxct",
        key=nxct_key(str(xct), str(nct), options),
        upstream="",
        provenance=record,
        provenance_name="nxct",
        inputs=files,
    )
    return read_nxct(output)


def _views(output: Path, result: NXCTResult) -> Path:
    """Orthogonal cuts through the centre of the fused volume, as a PNG beside the file."""
    figure = figures.orthogonal_views_figure(
        *read_fused_cuts(output), result.voxel_um, "fused: red = X-ray, cyan = neutron"
    )
    return save_png(figure, views_png(output))


def views_png(output: Path) -> Path:
    """The orthogonal views' PNG beside the NXCT file ``output``."""
    return output.with_name(f"{output.stem}_views.png")

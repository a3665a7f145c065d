"""``jellyroll reconstruct``: the sinogram of a run file to ``/entry/reconstruction``
((y, x, q) channels and the attenuation slice)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jellyroll.conventions import empty_channels, sees_both_sides
from jellyroll.io.provenance import provenance_record
from jellyroll.io.scratch import scratch_volumes
from jellyroll.recon.astra_backend import astra_version
from jellyroll.recon.attenuation import (
    MIN_FINITE_SHARE,
    attenuation_map,
    attenuation_sinogram_problem,
    correct_self_absorption,
    self_absorption_transmission,
)
from jellyroll.recon.engine import (
    CHUNK_CHANNELS,
    Progress,
    ReconstructionResult,
    check_method,
    reconstruct,
)
from jellyroll.recon.geometry import ParallelGeometry
from jellyroll.recon.options import ReconstructOptions
from jellyroll.recon.qwindows import NoChannelError, select_channels
from jellyroll.results import (
    Q_UNITS,
    Reconstruction,
    RunFileError,
    Sinogram,
    read_sinogram,
    write_reconstruction,
)
from jellyroll.results.store import run_lock, run_stage_key, stage_file, stage_key
from jellyroll.sinogram import (
    estimate_rotation_centre,
    line_end_problems,
    projection_totals_spread,
    totals_spread_note,
)

__all__ = ["RunReconstruction", "reconstruct_key", "run_reconstruct"]


@dataclass
class RunReconstruction:
    """What :func:`run_reconstruct` wrote."""

    path: Path
    result: ReconstructionResult
    rotation_centre_mm: float
    attenuation: bool
    notes: list[str]


def summed_scattering(data: np.ndarray, empty: np.ndarray, chunk: int = 64) -> np.ndarray:
    """(n_angles, n_t) sum over the channels of ``data`` (n_angles, n_t, n_q) that hold data
    (``empty`` (n_q,) False), NaN where a cell is missing; ``chunk`` channels at a time."""
    total = np.zeros(data.shape[:2])
    for start in range(0, data.shape[2], chunk):
        used = np.flatnonzero(~empty[start : start + chunk]) + start
        if used.size:
            total += np.sum(data[..., used], axis=2, dtype=np.float64)
    return total


def _projections(
    attenuation: np.ndarray | None, data: np.ndarray, empty: np.ndarray
) -> tuple[np.ndarray, str]:
    """The (n_angles, n_t) projections the rotation centre and the totals' spread are read
    from: the (usable) ``attenuation``, else the summed scattering (one pass over the cube,
    made once), and where the centre then comes from in words."""
    if attenuation is not None:
        return attenuation, "estimated from the attenuation sinogram"
    return summed_scattering(data, empty), "estimated from the summed scattering"


def _estimated_centre(
    run: Path, sinogram: Sinogram, source: np.ndarray, what: str
) -> tuple[float, str]:
    """The rotation centre (mm) of a sinogram from its ``source`` projections
    (:func:`_projections`, :func:`jellyroll.sinogram.estimate_rotation_centre`), and where it
    came from in words."""
    try:
        centre = estimate_rotation_centre(
            source, sinogram.rotation_angle_deg, sinogram.translation_mm
        )
    except ValueError as error:
        raise RunFileError(
            f"{run}: /entry/sinogram/rotation_centre is missing and cannot be estimated "
            f"({error}); give the rotation centre (mm) with --rotation-centre"
        ) from error
    return centre, what


def _known_errors(errors: np.ndarray) -> np.ndarray:
    """The one-sigma ``errors`` with infinite values (written for "unknown") set to NaN,
    which the noise rule takes as unknown; infinite errors once stopped it with "every error
    is 0 or missing", naming no file."""
    if errors.dtype.kind != "f":
        errors = errors.astype(np.float32)
    errors[np.isinf(errors)] = np.nan  # the run's own copy (read, or picked channels)
    return errors


def _usable_attenuation(
    run: Path, attenuation: np.ndarray | None, measured: np.ndarray, notes: list[str]
) -> np.ndarray | None:
    """The attenuation sinogram (-ln T, relative to air) to reconstruct, or None: one with a
    value in fewer than :data:`MIN_FINITE_SHARE` of the cells ``measured`` (n_angles, n_t)
    is left out with a warning (as the reduction does; an all-NaN one gave a mu of 0 and
    "self-absorption corrected", exit 0; cells never measured, rows of angles the scan
    skipped, do not count); one that is not -ln T relative to air is refused
    (:func:`~jellyroll.recon.attenuation.attenuation_sinogram_problem`)."""
    if attenuation is None:
        return None
    share = float(np.isfinite(attenuation[measured]).mean()) if measured.any() else 0.0
    if share < MIN_FINITE_SHARE:
        note = (
            f"/entry/sinogram/attenuation holds a value in {share:.0%} of the cells measured "
            "only: left out, self-absorption not corrected and no attenuation map"
        )
        notes.append(note)
        warnings.warn(f"{run}: {note}", stacklevel=4)
        return None
    problem = attenuation_sinogram_problem(attenuation)
    if problem is not None:
        raise RunFileError(
            f"{run}: /entry/sinogram/attenuation is not -ln(diode / monitor) relative to air "
            f"(SPEC section 6): {problem}; write it so in the file the sinogram came from and "
            "import it again, or leave the dataset out (no self-absorption correction)"
        )
    return attenuation


CENTRE_DISAGREEMENT_STEPS = 2.0
"""How far (translation steps) a recorded rotation centre may lie from the one the
projections' centres of mass give before it is taken for a centre in another convention."""


def _centre_disagreement(
    run: Path, sinogram: Sinogram, source: np.ndarray, what: str, centre: float
) -> str | None:
    """Where the data's own rotation axis (:func:`_estimated_centre`) lies when ``centre``
    (mm) is more than :data:`CENTRE_DISAGREEMENT_STEPS` from it, in words; None when it is
    not, or the data give no estimate."""
    try:
        estimate, what = _estimated_centre(run, sinogram, source, what)
    except RunFileError:
        return None
    step = float(np.median(np.abs(np.diff(sinogram.translation_mm))))
    if abs(centre - estimate) <= CENTRE_DISAGREEMENT_STEPS * step:
        return None
    return (
        f"the rotation axis {what} lies at {estimate:.5g} mm "
        f"({(centre - estimate) / step:+.1f} translation steps away)"
    )


def _check_recorded_centre(run: Path, sinogram: Sinogram, source: np.ndarray, what: str) -> None:
    """Refuse a recorded rotation centre more than :data:`CENTRE_DISAGREEMENT_STEPS` from the
    data's own (:func:`_centre_disagreement`): another program's centre in another
    convention (a pixel index, um, relative to the scan's middle) that still fell inside the
    scan reconstructed a map 3 times the truth's size in relative error, exit 0. Kept when
    the data give no estimate."""
    recorded = float(sinogram.rotation_centre_mm)
    found = _centre_disagreement(run, sinogram, source, what, recorded)
    if found is not None:
        raise RunFileError(
            f"{run}: /entry/sinogram/rotation_centre is {recorded:.5g} mm, but {found}: a "
            "centre written in another convention (a pixel index, um, relative to the scan's "
            "middle) blurs every map. Give the right one with --rotation-centre (mm, stage "
            "coordinates)"
        )


def _given_centre_note(
    run: Path, sinogram: Sinogram, source: np.ndarray, what: str, centre: float
) -> str | None:
    """A note (and warning) when the centre given as an option lies more than
    :data:`CENTRE_DISAGREEMENT_STEPS` from the data's own: it is used as given (the user's
    choice), but a centre 3.7 steps off blurred every map without a word."""
    found = _centre_disagreement(run, sinogram, source, what, centre)
    if found is None:
        return None
    note = f"rotation centre {centre:.5g} mm as given (--rotation-centre), but {found}"
    warnings.warn(f"{run}: {note}; check the centre", stacklevel=4)
    return note


def _line_end_note(
    projections: np.ndarray, geometry: ParallelGeometry, measured: np.ndarray
) -> str:
    """A note when one end of the lines lies in the sample
    (:func:`~jellyroll.sinogram.line_end_problems` of ``projections`` (n_angles, n_t)) in a
    scan that does not see both sides
    (:func:`~jellyroll.conventions.sees_both_sides`; ``measured`` (n_angles, n_t) bool):
    the sample leaves the field at every angle; "" otherwise. A disk reaching past one
    end of the lines (a half turn with the axis a quarter of the way along them) reconstructed
    to 1.3-2.5 times its level by FBP and 0.7-1.8 by SART, symmetric, so that the projections'
    totals did not vary, exit 0 without a word."""
    if sees_both_sides(geometry.angles_deg[measured.any(axis=1)]):
        return ""
    for side, (_, problem) in zip(("first", "last"), line_end_problems(projections), strict=True):
        if problem is not None:
            return (
                f"the {side} end of the lines lies in the sample ({problem}): the sample "
                "leaves the field at every angle and the maps are biased; scan past its "
                "edges, or a full turn with the axis near the other end (half acquisition)"
            )
    return ""


def reconstruct_key(run: str | os.PathLike[str], options: ReconstructOptions) -> str:
    """Key of the reconstruction of ``run`` with ``options`` (from its sinogram's key)."""
    return stage_key("reconstruct", options.key_payload(), [run_stage_key(run, "reduce") or ""])


def run_reconstruct(
    run: str | os.PathLike[str],
    options: ReconstructOptions | None = None,
    progress: Progress | None = None,
) -> RunReconstruction:
    """Reconstruct the run file's sinogram channels picked by ``options.channels`` and its
    attenuation sinogram, and store both as the run's reconstruction (its maps, now stale,
    are deleted).

    The rotation centre is ``options.rotation_centre_mm`` when given, else the run file's,
    else (a sinogram written by another program) estimated from the attenuation or summed
    scattering sinogram, with a warning; its source is recorded.
    Self-absorption (divide by the transmission through the attenuation slice, SART's
    whatever the method: :func:`~jellyroll.recon.attenuation.self_absorption_transmission`)
    is applied when asked, or by default when the scan has a diode.
    """
    options = options or ReconstructOptions()
    check_method(options.method, options.backend, options.sweeps)  # before reading GBs
    run = Path(run)
    with run_lock(run):
        return _reconstruct(run, options, progress)


def _reconstruct(
    run: Path, options: ReconstructOptions, progress: Progress | None
) -> RunReconstruction:
    """:func:`run_reconstruct` under the run file's lock."""
    # the errors (as large as the data) serve only the noise rule of the low-rank step
    noise_rule = (
        options.backend != "astra"
        and not (options.nonnegative and options.method != "fbp")
        and (options.rank == "noise" or (options.rank == "auto" and options.energy is None))
    )
    sinogram = read_sinogram(run, errors=noise_rule)
    if sinogram.q_units != Q_UNITS and options.channels.strip().lower() != "all":
        # the ranges are q in 1/angstrom: on a 2theta axis "1.67:1.73" picked 2theta 1.67-1.73
        # deg and reconstructed them, exit 0
        raise RunFileError(
            f"{run}: /entry/sinogram/q is in {sinogram.q_units!r}, not {Q_UNITS}, and the "
            f"channels {options.channels!r} are q ranges in {Q_UNITS}: reconstruct all "
            "channels, or reduce the scan again with --unit q_A^-1"
        )
    try:
        picked = select_channels(sinogram.q_A, options.channels)
    except NoChannelError as error:  # named by the run and the option (it named neither)
        raise RunFileError(f"{run}: /entry/sinogram/q: {error}; check --channels") from error
    # all channels: a view, not a copy of the cube
    every = picked.size == sinogram.q_A.size
    data = sinogram.data if every else sinogram.data[..., picked]
    errors = None
    if noise_rule:
        errors = _known_errors(sinogram.errors if every else sinogram.errors[..., picked])
    method, iterations, backend = options.method, options.sweeps, options.backend
    notes: list[str] = []
    empty = empty_channels(data)
    if empty.all():
        raise RunFileError(
            f"{run}: /entry/sinogram/data holds no finite value in the channels picked; "
            "every frame was missing: reduce the scan again and check its warnings"
        )
    if empty.any():
        notes.append(f"{int(empty.sum())} channels without data: NaN in the reconstruction")
    # the cells measured: those of the first channel holding data (a missing frame is NaN
    # in every channel)
    measured = np.isfinite(data[..., int(np.argmin(empty))])
    attenuation = _usable_attenuation(run, sinogram.attenuation, measured, notes)
    projections, estimated = _projections(attenuation, data, empty)
    centre, centre_source = (
        options.rotation_centre_mm,
        "option --rotation-centre (rotation_centre_mm)",
    )
    if centre is not None:
        notes.extend(
            filter(None, [_given_centre_note(run, sinogram, projections, estimated, centre)])
        )
    if centre is None and sinogram.rotation_centre_mm is not None:
        centre, centre_source = sinogram.rotation_centre_mm, "/entry/sinogram/rotation_centre"
        _check_recorded_centre(run, sinogram, projections, estimated)
    if centre is None:
        centre, centre_source = _estimated_centre(run, sinogram, projections, estimated)
        notes.append(f"rotation centre {centre:.4f} mm {centre_source}")
        warnings.warn(
            f"{run}: /entry/sinogram/rotation_centre is missing; rotation centre "
            f"{centre:.4f} mm {centre_source} (give --rotation-centre to set it)",
            stacklevel=3,
        )
    try:
        geometry = ParallelGeometry.from_scan(
            sinogram.rotation_angle_deg,
            sinogram.translation_mm,
            centre,
            measured=measured.any(axis=1),
        )
    except ValueError as error:
        raise RunFileError(
            f"{run}: /entry/sinogram with the centre from {centre_source}: {error}"
        ) from None
    spread = projection_totals_spread(projections, geometry.angles_deg, geometry.t_um)
    for note in (totals_spread_note(spread), _line_end_note(projections, geometry, measured)):
        if note:
            notes.append(note)
            warnings.warn(f"{run}: {note}", stacklevel=3)
    mu = None
    if attenuation is not None:
        try:  # FBP of a turn with a gap whose sample reaches beyond the short side: refused
            mu = attenuation_map(attenuation, geometry, method, iterations, backend=backend)
        except ValueError as error:
            raise RunFileError(f"{run}: /entry/sinogram/attenuation: {error}") from error
    corrected = options.self_absorption is not False and mu is not None
    if options.self_absorption and mu is None:
        raise RunFileError(
            f"{run}: no usable /entry/sinogram/attenuation for the self-absorption step"
        )
    if options.self_absorption is None and sinogram.attenuation is None:  # else said above
        notes.append("no attenuation sinogram (no diode): self-absorption not corrected")
    if corrected:
        # from SART's map whatever the method: FBP's does not reproject onto the rays
        through = self_absorption_transmission(
            attenuation, geometry, mu, method, iterations, backend=backend
        )
        # in place: data and errors are this run's own arrays (read, or picked channels),
        # and a corrected copy beside them would hold each cube twice
        data = correct_self_absorption(data, through, in_place=True)
        if errors is not None:  # the same division by the ray's transmission
            errors = correct_self_absorption(errors, through, in_place=True)
    # a volume that is not factored (every channel reconstructed: no low rank) and too
    # large to hold is made on disk beside the run, and written from there by row slabs
    with scratch_volumes(run, CHUNK_CHANNELS) as volume:
        try:
            result = reconstruct(
                data,
                geometry,
                method,
                iterations,
                backend=backend,
                nonnegative=options.nonnegative,
                rank=options.rank_value,
                energy=options.energy,
                errors=errors,
                factored=True,  # written expanded row slab by row slab: the cube is never held
                chunk_channels=CHUNK_CHANNELS,
                volume=volume,
                overwrite_input=True,  # data and errors are this run's own arrays
                progress=progress,
            )
        except ValueError as error:  # e.g. the noise rule without any known error
            raise RunFileError(f"{run}: /entry/sinogram: {error}") from error
        if empty.any():
            result.blank(empty)
        attrs = {
            **result.attrs(),
            "rotation_centre_mm": float(centre),
            "rotation_centre_source": centre_source,
            "self_absorption_corrected": corrected,
            "channels": options.channels,
            "projection_totals_spread": spread,
        }
        reconstruction = Reconstruction(
            result.cube(),
            sinogram.q_A[picked],
            geometry.x_um,
            geometry.y_um,
            attrs,
            attenuation=mu,
            q_units=sinogram.q_units,
        )
        configuration = {
            **options.key_payload(),
            **attrs,
            "astra": astra_version(),
            "sinogram_shape": sinogram.shape,
            "notes": notes,
        }
        record = provenance_record(configuration, inputs=[stage_file(run, "reduce")])
        write_reconstruction(run, reconstruction, record, key=reconstruct_key(run, options))
    return RunReconstruction(run, result, float(centre), mu is not None, notes)

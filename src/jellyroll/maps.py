"""The maps stage: phase, SAXS intensity and d* maps of a reconstructed run file.

:func:`write_run_maps` reads ``/entry/reconstruction``, computes the maps with
:mod:`jellyroll.phases` and :mod:`jellyroll.saxs`, stores them under ``/entry/maps`` and
writes the PNG composites beside the run file (``jellyroll maps``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jellyroll.conventions import map_extent_mm

GRAPHITE_LABELS = "0 LiC6, 1 LiC12, 2 poorly lithiated, -1 none"
NMC_LABELS = "0 lithiated, 1 delithiated, -1 none"


@dataclass(frozen=True)
class MapsOptions:
    """Settings of the maps stage (recorded in the run file's provenance)."""

    label_threshold: float = 0.05
    denoise: bool = True
    rank: int | None = None
    dstar_min_intensity: float = 0.2
    dstar: dict[str, Any] = field(default_factory=dict)


@dataclass
class MapsResult:
    """What :func:`write_run_maps` wrote: maps (name -> (array, units)) and PNG paths."""

    maps: dict[str, tuple[np.ndarray, str]]
    figures: list[Path]
    notes: list[str]


def write_run_maps(run: str | Path, options: MapsOptions | None = None) -> MapsResult:
    """Compute the maps of ``/entry/reconstruction`` and store them under ``/entry/maps``.

    Phase maps when q covers the Table 1 windows, SAXS intensity and d* when q covers
    0.025-0.1 A^-1; maps already in the file that are not recomputed are kept. PNG
    composites are written beside the run file as ``<stem>_<name>.png``.
    """
    from jellyroll.io.provenance import provenance_record
    from jellyroll.io.runfile import open_run, read_reconstruction, write_maps
    from jellyroll.phases import GRAPHITE_OVERVIEW_WINDOW, TABLE1_WINDOWS, covers
    from jellyroll.saxs import SAXS_Q_RANGE

    options = options or MapsOptions()
    run = Path(run)
    recon = read_reconstruction(run)
    with open_run(run) as f:
        units = str(f["/entry/reconstruction/data"].attrs.get("units", "arb. units"))
    q = recon.q_A
    windows = {**TABLE1_WINDOWS, **GRAPHITE_OVERVIEW_WINDOW}
    new: dict[str, tuple[np.ndarray, str]] = {}
    figures: list[Path] = []
    notes: list[str] = []
    if covers(q, windows):
        new.update(_waxs_maps(q, recon.data, windows, units, options))
        figures += _waxs_figures(run, new, recon.x_um, recon.y_um)
    else:
        notes.append("q does not cover the Table 1 windows: no phase maps")
    if covers(q, {"saxs": SAXS_Q_RANGE}, shoulder_bins=0):
        saxs_maps, rank = _saxs_maps(q, recon.data, units, options)
        new.update(saxs_maps)
        if rank is not None:
            notes.append(_denoising_note(rank, q.size, chosen=options.rank is not None))
        figures.append(_dstar_figure(run, new["d_star_nm"][0], recon.x_um, recon.y_um))
    else:
        notes.append(f"q does not cover {SAXS_Q_RANGE} 1/A: no SAXS maps")
    if not new:
        raise ValueError(f"{run}: q range [{q.min():.3g}, {q.max():.3g}] 1/A gives no map")
    configuration = {"stage": "maps", **asdict(options), "source": "/entry/reconstruction"}
    default = "graphite" if "graphite" in new else "saxs_intensity"
    write_maps(run, new, recon.x_um, recon.y_um, provenance_record(configuration), default=default)
    return MapsResult(maps=new, figures=figures, notes=notes)


def _waxs_maps(
    q: np.ndarray,
    data: np.ndarray,
    windows: dict[str, tuple[float, float]],
    units: str,
    options: MapsOptions,
) -> dict[str, tuple[np.ndarray, str]]:
    from jellyroll.phases import GRAPHITE_PHASES, NMC_PHASES, phase_labels, phase_maps

    integrals = phase_maps(q, data, windows)
    out = {name: (values, f"{units} x 1/angstrom") for name, values in integrals.items()}
    for name, family, meaning in (
        ("graphite_label", GRAPHITE_PHASES, GRAPHITE_LABELS),
        ("nmc_label", NMC_PHASES, NMC_LABELS),
    ):
        labels = phase_labels(integrals, family, threshold=options.label_threshold)
        out[name] = (labels.label, meaning)
    return out


def _saxs_maps(
    q: np.ndarray, data: np.ndarray, units: str, options: MapsOptions
) -> tuple[dict[str, tuple[np.ndarray, str]], int | None]:
    from jellyroll.saxs import (
        LOW_INTENSITY,
        REASONS,
        denoise_profiles,
        departure_dstar_map,
        saxs_intensity_map,
    )

    profiles, rank = data, None
    if options.denoise:
        denoised = denoise_profiles(data, rank=options.rank)
        profiles, rank = denoised.profiles, denoised.rank
    result = departure_dstar_map(q, profiles, **options.dstar)
    intensity = saxs_intensity_map(q, data)
    d_star, reason = result.d_star_nm.astype(np.float32), result.reason_code
    # Weak voxels (no silicon: cathode, separator, outside) hold noise, not a d*.
    positive = intensity[np.isfinite(intensity) & (intensity > 0)]
    if positive.size:
        weak = ~(intensity >= options.dstar_min_intensity * np.percentile(positive, 99))
        d_star[weak] = np.nan
        reason[weak] = LOW_INTENSITY
    reasons = ", ".join(f"{code} {text}" for code, text in REASONS.items())
    maps = {
        "saxs_intensity": (intensity, f"{units} x 1/angstrom"),
        "d_star_nm": (d_star, "nm"),
        "d_star_reason": (reason, reasons),
    }
    return maps, rank


def _denoising_note(rank: int, n_q: int, *, chosen: bool) -> str:
    """What the low-rank denoising did, in words; warns when the automatic rank kept so many
    components that the profiles were barely denoised."""
    note = f"SAXS profiles denoised with {rank} of {n_q} components"
    if chosen or rank <= max(8, n_q // 10):
        return note
    return (
        f"{note}: barely denoised, the profiles do not split into a few components above a "
        "noise floor (reconstruction artefacts, or noise not proportional to |I|); "
        "choose the number of components with --rank"
    )


def _save(figure: Any, path: Path) -> Path:
    from jellyroll.io.provenance import atomic_output

    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    return path


def _waxs_figures(
    run: Path, maps: dict[str, tuple[np.ndarray, str]], x_um: np.ndarray, y_um: np.ndarray
) -> list[Path]:
    from matplotlib.figure import Figure

    from jellyroll.phases import graphite_composite, nmc_composite

    extent = map_extent_mm(x_um, y_um)
    images = {
        "graphite_rgb": (
            graphite_composite(maps["lic6"][0], maps["lic12"][0], maps["graphite_poor"][0]),
            "graphite: LiC6 green, LiC12 blue, poorly lithiated red",
        ),
        "nmc_rgb": (
            nmc_composite(maps["nmc_lithiated"][0], maps["nmc_delithiated"][0]),
            "NMC622: lithiated green, delithiated red",
        ),
    }
    paths = []
    for name, (rgb, title) in images.items():
        figure = Figure(figsize=(6, 6), layout="constrained")
        axis = figure.subplots()
        axis.imshow(rgb, extent=extent)
        axis.set_title(title)
        axis.set_xlabel("x (mm)")
        axis.set_ylabel("y (mm)")
        paths.append(_save(figure, run.with_name(f"{run.stem}_{name}.png")))
    return paths


def _dstar_figure(run: Path, d_star: np.ndarray, x_um: np.ndarray, y_um: np.ndarray) -> Path:
    from matplotlib.figure import Figure

    from jellyroll.saxs import dstar_histogram

    finite = d_star[np.isfinite(d_star)]
    low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    figure = Figure(figsize=(11, 5), layout="constrained")
    left, right = figure.subplots(1, 2)
    image = left.imshow(
        d_star, extent=map_extent_mm(x_um, y_um), cmap="viridis", vmin=low, vmax=high
    )
    figure.colorbar(image, ax=left, shrink=0.8, label="d* (nm)")
    left.set_title("d* (departure from power law); blank: no value")
    left.set_xlabel("x (mm)")
    left.set_ylabel("y (mm)")
    counts, edges = dstar_histogram(d_star, bins=60)
    right.stairs(counts, edges, fill=True)
    right.set_xlabel("d* (nm)")
    right.set_ylabel("voxels")
    mean = f", mean {finite.mean():.2f} nm" if finite.size else ""
    right.set_title(f"{finite.size} voxels with a value{mean}")
    return _save(figure, run.with_name(f"{run.stem}_d_star.png"))

"""``jellyroll maps``: the maps of a run file's reconstruction into ``/entry/maps``, and the
PNG composites beside the run file."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from jellyroll import figures
from jellyroll.io import scratch
from jellyroll.io.images import refuse_foreign_images, save_png
from jellyroll.io.provenance import provenance_record
from jellyroll.maps.core import compute_maps
from jellyroll.maps.options import MapsOptions
from jellyroll.results import MapName, MapSet, RunFileError
from jellyroll.results.run import open_reconstruction, sinogram_mean_pattern, write_map_set
from jellyroll.results.store import run_lock, run_stage_key, stage_figures, stage_file, stage_key


@dataclass
class MapsResult:
    """What :func:`run_maps` wrote: the map set and the PNG figures."""

    maps: MapSet
    figures: list[Path]


def maps_key(run: str | os.PathLike[str], options: MapsOptions) -> str:
    """Key of the maps of ``run`` made with ``options`` (from its reconstruction's key)."""
    return stage_key("maps", options.key_payload(), [run_stage_key(run, "reconstruct") or ""])


def run_maps(
    run: str | os.PathLike[str], options: MapsOptions | None = None, *, figures: bool = True
) -> MapsResult:
    """Compute every map of ``/entry/reconstruction`` and store them under ``/entry/maps``
    (the whole set: maps of an earlier run are replaced). PNG composites are written beside
    the run file as ``<stem>_<name>.png`` unless ``figures`` is False (e.g. the steps of an
    operando series, drawn together by that stage)."""
    options = options or MapsOptions()
    run = Path(run)
    with run_lock(run):
        return _maps(run, options, figures)


def _maps(run: Path, options: MapsOptions, figures: bool) -> MapsResult:
    """:func:`run_maps` under the run file's lock."""
    if figures:
        refuse_foreign_images(stage_figures(run, "maps").values())
    with open_reconstruction(run) as recon:
        recon.require_q_in_inverse_angstrom(run)
        cube = recon.data
        # up to scratch.IN_MEMORY_BYTES the cube is read once, not once a pass; a larger one
        # (8.4 GB at the study's 1024 x 1024 x 2000) stays on disk, read by row slabs in
        # each pass: a bounded peak for a few more reads (the denoised d* takes 3 more)
        if cube.size * cube.dtype.itemsize <= scratch.IN_MEMORY_BYTES:
            recon = replace(recon, data=cube[()])
        try:
            maps = compute_maps(
                recon, options, lambda: sinogram_mean_pattern(stage_file(run, "reduce"))
            )
        except ValueError as error:
            raise RunFileError(f"{run}: {error}") from error
    configuration = {"stage": "maps", **options.key_payload(), "source": "/entry/reconstruction"}
    record = provenance_record(configuration, inputs=[stage_file(run, "reconstruct")])
    drawn = []
    if figures:
        # the earlier maps' PNGs go first, and these are drawn before the maps are written:
        # a kill while drawing left the earlier PNGs beside new maps, and one after writing
        # the maps left them without PNGs, which `jellyroll run`, finding the maps up to
        # date, never drew
        for path in stage_figures(run, "maps").values():
            path.unlink(missing_ok=True)
        drawn = _figures(run, maps)
    write_map_set(run, maps, record, key=maps_key(run, options))
    return MapsResult(maps, drawn)


def _figures(run: Path, maps: MapSet) -> list[Path]:
    arrays = {name: item.values for name, item in maps.maps.items()}
    drawn = []
    if MapName.GRAPHITE in maps:
        drawn.append(("graphite_rgb", figures.graphite_rgb_figure(arrays, maps.x_um, maps.y_um)))
        drawn.append(("nmc_rgb", figures.nmc_rgb_figure(arrays, maps.x_um, maps.y_um)))
    if MapName.D_STAR in maps:
        drawn.append(("d_star", figures.dstar_figure(maps[MapName.D_STAR], maps.x_um, maps.y_um)))
    paths = stage_figures(run, "maps")
    return [save_png(f, paths[name]) for name, f in drawn]

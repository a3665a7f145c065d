"""Where the SWAXS-CT slice sits in the X-ray volume, and its defects seen in 3D.

:func:`jellyroll.locate.core.locate_slice` places the slice in the X-ray volume (driver
:func:`jellyroll.locate.run.run_locate`, ``jellyroll locate``); :mod:`jellyroll.locate.link`
links the map's agglomerates to the collector bends traced in the X-ray volume;
:mod:`jellyroll.locate.dossier` shows each defect through every modality;
:mod:`jellyroll.locate.link_run` is the linking driver (link file, figures).
"""

from jellyroll._lazy import lazy_exports

__all__ = lazy_exports(
    __name__,
    {
        "core": ["Location", "locate_slice", "pose_errors", "pose_parameters"],
        "dossier": ["defect_dossiers", "select_defects", "volume_on_map"],
        "link": [
            "SIZE_BIN_EDGES_UM",
            "BendThreshold",
            "bend_fraction_by_size",
            "link_to_bends",
            "map_points_to_xct",
            "measured_bend_threshold",
        ],
        "options": ["LocateOptions"],
    },
)

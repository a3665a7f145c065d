"""Where the SWAXS-CT slice sits in the X-ray volume, and its defects seen in 3D.

:mod:`jellyroll.locate.link` links the map's agglomerates to the collector bends traced in
the X-ray volume; :mod:`jellyroll.locate.dossier` shows each defect through every modality;
:mod:`jellyroll.locate.link_run` is the driver (link file, figures).
"""

from jellyroll.locate.dossier import defect_dossiers, select_defects, volume_on_map
from jellyroll.locate.link import (
    SIZE_BIN_EDGES_UM,
    BendThreshold,
    bend_fraction_by_size,
    link_to_bends,
    map_points_to_xct,
    measured_bend_threshold,
)

__all__ = [
    "SIZE_BIN_EDGES_UM",
    "BendThreshold",
    "bend_fraction_by_size",
    "defect_dossiers",
    "link_to_bends",
    "map_points_to_xct",
    "measured_bend_threshold",
    "select_defects",
    "volume_on_map",
]

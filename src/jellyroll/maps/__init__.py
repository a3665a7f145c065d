"""The maps stage: phase, SAXS intensity and d* maps of a reconstructed run file.

Core: :mod:`jellyroll.maps.core` (on arrays, built on :mod:`jellyroll.phases` and
:mod:`jellyroll.saxs`); options: :class:`MapsOptions`; driver: :func:`run_maps`.
"""

from jellyroll.maps.core import compute_maps, denoising_note
from jellyroll.maps.options import DstarOptions, MapsOptions
from jellyroll.maps.run import MapsResult, maps_key, run_maps

__all__ = [
    "DstarOptions",
    "MapsOptions",
    "MapsResult",
    "compute_maps",
    "denoising_note",
    "maps_key",
    "run_maps",
]

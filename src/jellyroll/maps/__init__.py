"""The maps stage: phase, SAXS intensity and d* maps of a reconstructed run file.

Core: :mod:`jellyroll.maps.core` (on arrays, built on :mod:`jellyroll.phases` and
:mod:`jellyroll.saxs`); options: :class:`MapsOptions`; driver: :func:`run_maps`.
"""

from jellyroll._lazy import lazy_exports

__all__ = lazy_exports(
    __name__,
    {
        "core": ["compute_maps", "denoising_note"],
        "options": ["DstarOptions", "MapsOptions"],
        "run": ["MapsResult", "maps_key", "run_maps"],
    },
)

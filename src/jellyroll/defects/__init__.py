"""Defects of the anode: silicon agglomerates, bent current collectors, local lithiation.

The analysis of the reference study (Lübke et al., Energy Environ. Sci. 2024, 17, 5048):
agglomerates are bright excess spots of the SAXS intensity map, classified at a critical
equivalent diameter (~50 um: case A below, mild; case B above, the Cu collector bends and
the anode around is compacted and poorly lithiated). Lengths in micrometres.
"""

from jellyroll._lazy import lazy_exports

__all__ = lazy_exports(
    __name__,
    {
        "agglomerates": [
            "UNRESOLVED",
            "find_agglomerates",
            "local_background",
            "median_radius_um",
            "silicon_mask",
            "size_class",
            "size_histogram",
        ],
        "bends": ["find_bends", "link_bends", "locate_on_layer"],
        "lithiation": ["defect_lithiation", "radial_profiles"],
    },
)

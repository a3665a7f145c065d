"""Typed results of every stage, with one reader and one writer each (SPEC section 6).

Stages read their inputs and write their outputs only through this package; how the files
are laid out (one file per stage, an index run file of external links, keys inside each
file) is :mod:`jellyroll.results.store`.
"""

from jellyroll._lazy import lazy_exports

__all__ = lazy_exports(
    __name__,
    {
        "diagnosis": [
            "Diagnosis",
            "FoundCell",
            "Unrolled",
            "defect_units",
            "read_diagnosis",
            "require_diagnosis",
            "write_diagnosis",
        ],
        "run": [
            "GRAPHITE_PHASE_MAPS",
            "NMC_PHASE_MAPS",
            "Q_UNITS",
            "Map",
            "MapName",
            "MapSet",
            "Reconstruction",
            "Sinogram",
            "read_map",
            "read_map_set",
            "read_reconstruction",
            "read_sinogram",
            "write_map_set",
            "write_reconstruction",
            "write_sinogram",
        ],
        "store": [
            "RunFileError",
            "is_up_to_date",
            "open_run",
            "recorded_key",
            "run_stage_key",
            "stage_file",
            "stage_key",
        ],
    },
)

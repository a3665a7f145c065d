"""Reduction of raw detector frames to 1D patterns: the integration engine.

:class:`IntegrationSetup` describes an integration (PONI geometry, mask, corrections, outlier
filter); :class:`Integrator` builds pyFAI's sparse matrix once and integrates blocks of frames
with jellyroll's kernels, with pyFAI's ``integrate1d`` semantics.
"""

from jellyroll._lazy import lazy_exports

__all__ = lazy_exports(
    __name__,
    {
        "engine": [
            "IntegrationResult",
            "IntegrationSetup",
            "Integrator",
            "SparseEngine",
            "geometry_from_setup",
        ],
    },
)

"""Reconstruction of pencil-beam SWAXS-CT sinograms (SPEC section 2, step 3).

FBP, SART and SIRT on (angle, translation, channel) sinograms with the study's backend
(astra-toolbox, one channel at a time) or jellyroll's multi-channel engine (all channels
through one projector pass, and low-rank acceleration for linear methods). Geometry:
:mod:`jellyroll.recon.geometry`; output maps are per um on a grid of the translation step
centred on the rotation axis.
"""

from jellyroll._lazy import lazy_exports

__all__ = lazy_exports(
    __name__,
    {
        "astra_backend": ["astra_reconstruct", "has_cuda"],
        "attenuation": ["attenuation_map", "correct_self_absorption", "transmission"],
        "engine": ["BACKENDS", "METHODS", "RANK_RULES", "ReconstructionResult", "reconstruct"],
        "fbp": ["fbp"],
        "geometry": ["ParallelGeometry"],
        "iterative": ["projection_order", "sart", "sirt"],
        "lowrank": ["LowRank", "compress", "compress_noisy", "expand"],
        "projector": ["back", "forward", "ray_lengths"],
        "qwindows": ["reconstruct_q_windows", "select_channels"],
    },
)

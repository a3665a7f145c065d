"""Reconstruction of pencil-beam SWAXS-CT sinograms (SPEC section 2, step 3).

FBP, SART and SIRT on (angle, translation, channel) sinograms with the study's backend
(astra-toolbox, one channel at a time) or jellyroll's multi-channel engine (all channels
through one projector pass, and low-rank acceleration for linear methods). Geometry:
:mod:`jellyroll.recon.geometry`; output maps are per um on a grid of the translation step
centred on the rotation axis.
"""

from jellyroll.recon.astra_backend import astra_reconstruct, has_cuda
from jellyroll.recon.attenuation import attenuation_map, correct_self_absorption, transmission
from jellyroll.recon.engine import (
    BACKENDS,
    METHODS,
    RANK_RULES,
    ReconstructionResult,
    reconstruct,
)
from jellyroll.recon.fbp import fbp
from jellyroll.recon.geometry import ParallelGeometry
from jellyroll.recon.iterative import projection_order, sart, sirt
from jellyroll.recon.lowrank import LowRank, compress, compress_noisy, expand
from jellyroll.recon.projector import back, forward, ray_lengths
from jellyroll.recon.qwindows import (
    reconstruct_q_windows,
    select_channels,
)

__all__ = [
    "BACKENDS",
    "METHODS",
    "RANK_RULES",
    "LowRank",
    "ParallelGeometry",
    "ReconstructionResult",
    "astra_reconstruct",
    "attenuation_map",
    "back",
    "compress",
    "compress_noisy",
    "correct_self_absorption",
    "expand",
    "fbp",
    "forward",
    "has_cuda",
    "projection_order",
    "ray_lengths",
    "reconstruct",
    "reconstruct_q_windows",
    "sart",
    "select_channels",
    "sirt",
    "transmission",
]

"""Realistic inputs for the defect tests: reconstructions of simulated scans of twins.

Accuracy is measured on maps with the blur, noise and streaks of a real reconstruction:
the twin is projected with the study's 20 um pencil beam (:mod:`jellyroll.phantom.scan`),
the SAXS signal integrated over q = 0.025-0.1 A^-1 gets the counting noise of the twin's
SAXS detector (:mod:`jellyroll.phantom.write`: counts per unit intensity and detector
pixels per q bin), the self-absorption is divided out, 0.2 % of the rays are dropped and
the sinogram is reconstructed by filtered backprojection (:mod:`jellyroll.recon`). The
attenuation map for the bends comes from the same projections with the transmission
noise of a 1e5-count monitor.

The test cell (:data:`TEST_CELL`) has the twin's layers and 35 agglomerates; scans and
detectors are those of the ``small`` size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from jellyroll.defects import find_agglomerates, find_bends, link_bends
from jellyroll.defects.truth import match_agglomerates as match
from jellyroll.phantom.parameters import (
    SIZES,
    AgglomerateParameters,
    CellParameters,
    SizePreset,
)
from jellyroll.phantom.scan import ScanGeometry, project_twin, scan_geometry
from jellyroll.phantom.twin import Twin, make_twin
from jellyroll.phantom.write import _pixels_per_bin, detector_setups
from jellyroll.recon.fbp import fbp
from jellyroll.recon.geometry import ParallelGeometry
from jellyroll.unroll import SpiralTrace, find_cell, trace_spiral

SAXS_WINDOW_A = (0.025, 0.1)
MISSING_RAYS = 0.002
MONITOR_COUNTS = 1e5


TEST_CELL = CellParameters(
    outer_diameter_um=3000.0,
    casing_um=100.0,
    hollow_diameter_um=500.0,
    turns=3.0,
    agglomerates=AgglomerateParameters(count=30, count_large=5),
)
"""A 3 mm three-turn cell with 30 regular and 5 large agglomerates; its outermost turn
clears the casing."""


def defect_size(pixel_size_um: float) -> SizePreset:
    """The test cell sampled at ``pixel_size_um`` (20 um: the twin's; 10 um: the study's)."""
    n = math.ceil(3200.0 / pixel_size_um)
    return SIZES["small"].model_copy(
        update={
            "name": f"defects_{pixel_size_um:g}um",
            "cell": TEST_CELL,
            "pixel_size_um": pixel_size_um,
            "n_translations": n,
            "angles_per_subset": math.ceil(0.125 * n),  # 3 x 0.125 n: undersampled, as the study
        }
    )


@dataclass(frozen=True)
class Reconstructed:
    """A twin and the maps reconstructed from its simulated scan, (ny, nx)."""

    twin: Twin
    saxs: np.ndarray  # integrated SAXS intensity, per um
    attenuation: np.ndarray  # X-ray linear attenuation at 77 keV, 1/um

    @property
    def pixel_size_um(self) -> float:
        return self.twin.pixel_size_um


def _trapezoid_weights(q: np.ndarray) -> np.ndarray:
    """Weights w with sum(w * I) = trapezoid of I over the SAXS window, (n_q,)."""
    inside = (q >= SAXS_WINDOW_A[0]) & (q <= SAXS_WINDOW_A[1])
    weights = np.zeros(q.size)
    weights[inside] = np.trapezoid(np.eye(int(inside.sum())), q[inside], axis=1)
    return weights


def reconstruct_twin(twin: Twin, seed: int) -> Reconstructed:
    """SAXS intensity and attenuation maps reconstructed from a noisy simulated scan.

    Both the q-integrated intensity and its counting variance are linear in the projected
    maps, so the noise is drawn per ray with the exact variance of the integral of the
    Poisson counts of every q bin (Gaussian: hundreds of counts per ray).
    """
    rng = np.random.default_rng(seed)
    geometry = scan_geometry(twin)
    projections = project_twin(twin, geometry)
    q = twin.q.saxs
    setup = detector_setups(twin)["saxs"]
    weights = _trapezoid_weights(q)
    per_count = weights**2 / (setup.counts_per_unit * _pixels_per_bin(setup, q))
    basis = projections.bases["saxs"]
    values = projections.values[..., :-1].astype(np.float64)
    transmission = np.exp(-projections.attenuation.astype(np.float64))
    mean = values @ (basis @ weights)  # self-absorption divided out
    variance = values @ (basis @ per_count) / transmission
    saxs = mean + np.sqrt(np.maximum(variance, 0)) * rng.standard_normal(mean.shape)
    saxs[rng.random(saxs.shape) < MISSING_RAYS] = np.nan
    counts = rng.poisson(MONITOR_COUNTS * transmission)
    attenuation = -np.log(np.maximum(counts, 1) / MONITOR_COUNTS)
    maps = fbp(
        recon_geometry(twin, geometry), np.stack([saxs, attenuation], axis=-1).astype(np.float32)
    )
    return Reconstructed(twin, maps[..., 0], maps[..., 1])


def recon_geometry(twin: Twin, geometry: ScanGeometry) -> ParallelGeometry:
    """The reconstruction geometry of the twin's simulated scan, on the twin's pixel grid."""
    return ParallelGeometry.from_scan(
        geometry.sorted_angles_deg,
        geometry.translations_mm,
        geometry.rotation_centre_mm,
        pixel_size_um=twin.pixel_size_um,
        shape=twin.shape,
    )


@cache
def reconstructed(preset: str, pixel_size_um: float, seed: int) -> Reconstructed:
    """Cached :func:`reconstruct_twin` of the test cell (shared by the test modules)."""
    return reconstruct_twin(make_twin(preset, defect_size(pixel_size_um), seed=seed), seed)


def true_agglomerates(twin: Twin) -> pd.DataFrame:
    """The twin's agglomerate table with centres moved to their in-slice centroids.

    Clipped by the coating, an agglomerate's cross-section need not be centred on the
    ellipsoid; its centroid is what a map shows. Weights: the agglomerate's area fraction
    per pixel near the pixels it covers.
    """
    table = twin.agglomerates.copy()
    p = twin.pixel_size_um
    ny, nx = twin.shape
    y, x = np.meshgrid(
        (np.arange(ny) - (ny - 1) / 2) * p, (np.arange(nx) - (nx - 1) / 2) * p, indexing="ij"
    )
    fraction = twin.raster.fractions["agglomerate"]
    for k, agglomerate_id in zip(table.index, table["id"], strict=True):
        weight = fraction * ndimage.binary_dilation(twin.raster.agglomerate_id == agglomerate_id)
        if weight.sum() > 0:
            table.loc[k, "x_um"] = float((weight * x).sum() / weight.sum())
            table.loc[k, "y_um"] = float((weight * y).sum() / weight.sum())
    return table


ACCURACY_CASES = (
    ("fresh_discharged", 10.0, 101),
    ("fresh_charged", 10.0, 102),
    ("aged_discharged", 10.0, 103),
    ("aged_charged", 10.0, 104),
    ("aged_charged", 20.0, 105),
    ("fresh_discharged", 20.0, 106),
)
"""(preset, pixel size um, seed) of the accuracy set: every state, the study's 10 um
pixels and the twin's 20 um, seeds never used while developing (those were 11-18)."""


@dataclass(frozen=True)
class Evaluated:
    """One accuracy case: inputs, detections, truth and matches."""

    preset: str
    seed: int
    maps: Reconstructed
    found: pd.DataFrame  # find_agglomerates on the reconstructed SAXS map, all extras
    truth: pd.DataFrame  # true_agglomerates, with ``match`` (row of found, -1 none)
    trace: SpiralTrace  # the Cu collector traced in the reconstructed attenuation map
    bends: pd.DataFrame  # find_bends along it, linked
    linked: pd.DataFrame  # found with ``bend_id``


@cache
def evaluated(preset: str, pixel_size_um: float, seed: int) -> Evaluated:
    """The accuracy case ``(preset, pixel_size_um, seed)`` of :data:`ACCURACY_CASES`, made
    once per worker (a module needing one case does not make the six)."""
    maps = reconstructed(preset, pixel_size_um, seed)
    twin = maps.twin
    trace = trace_spiral(maps.attenuation, find_cell(maps.attenuation), pixel_size_um)
    found = find_agglomerates(
        maps.saxs,
        pixel_size_um,
        d_star_map=twin.state.dstar_target_nm,
        layer_map=twin.raster.turn,
        trace=trace,
    )
    truth = true_agglomerates(twin)
    truth["match"] = match(found, truth, pixel_size_um)
    bends, linked = link_bends(found, find_bends(maps.attenuation, pixel_size_um, trace=trace))
    return Evaluated(preset, seed, maps, found, truth, trace, bends, linked)


@pytest.fixture(scope="session")
def evaluate() -> Callable[[str, float, int], Evaluated]:
    """:func:`evaluated`, for a module that needs one accuracy case."""
    return evaluated


@pytest.fixture(scope="session")
def accuracy_cases() -> list[Evaluated]:
    return [evaluated(*case) for case in ACCURACY_CASES]

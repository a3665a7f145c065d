"""The digital twin: a seeded cell in one state, with every true map and pattern.

``make_twin`` combines geometry, state and scattering models; the per-pixel WAXS and SAXS
patterns are linear in a small set of maps (component fractions and the silicon shoulder
coefficients), which is what makes projecting them exact and fast (see
:mod:`jellyroll.phantom.scan`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from jellyroll.phantom.components import COMPONENTS
from jellyroll.phantom.geometry import (
    CellGeometry,
    Raster,
    agglomerate_table,
    build_geometry,
    rasterize,
)
from jellyroll.phantom.materials import attenuation_map, mu_table
from jellyroll.phantom.parameters import SIZES, SizePreset
from jellyroll.phantom.patterns import (
    SaxsModel,
    ShoulderBasis,
    model_dstar_nm,
    patterns_from_maps,
    rg_for_dstar,
    shoulder_basis,
    waxs_basis,
)
from jellyroll.phantom.state import PRESETS, CellState, cell_state

WAVELENGTH_A = 0.1610
"""77 keV monochromatic beam of the study (A)."""
ENERGY_KEV = 77.0
WAXS_Q_RANGE_A = (0.8, 5.2)
SAXS_Q_RANGE_A = (0.008, 0.30)
SAXS_INTENSITY_Q_RANGE_A = (0.025, 0.1)
"""q range (A^-1) of the study's integrated SAXS intensity map."""


@dataclass(frozen=True)
class QGrids:
    """Canonical 1D q grids (A^-1) of the WAXS and SAXS detector positions."""

    waxs: np.ndarray
    saxs: np.ndarray


def q_grids(size: SizePreset) -> QGrids:
    """q grids of a size preset: the bins a reduction with the same npt would produce."""
    n_waxs, n_saxs = (1000, 500) if size.name == "paper" else (300, 500)
    return QGrids(
        waxs=_bin_centres(*WAXS_Q_RANGE_A, n_waxs), saxs=_bin_centres(*SAXS_Q_RANGE_A, n_saxs)
    )


def _bin_centres(lo: float, hi: float, n: int) -> np.ndarray:
    edges = np.linspace(lo, hi, n + 1)
    return 0.5 * (edges[1:] + edges[:-1])


@dataclass
class Twin:
    """A simulated slice of a cell in one state, with its ground truth."""

    size: SizePreset
    geometry: CellGeometry
    raster: Raster
    state: CellState
    q: QGrids
    saxs_model: SaxsModel
    shoulder: ShoulderBasis
    waxs_fwhm_A: float = 0.025

    @property
    def shape(self) -> tuple[int, int]:
        return self.raster.shape

    @property
    def pixel_size_um(self) -> float:
        return self.raster.pixel_size_um

    @cached_property
    def agglomerates(self) -> pd.DataFrame:
        """True agglomerate table (see :func:`jellyroll.phantom.geometry.agglomerate_table`)."""
        return agglomerate_table(self.geometry, self.raster)

    @cached_property
    def shoulder_ratio(self) -> np.ndarray:
        """(ny, nx) silicon shoulder over power law, both at ``saxs_model.reference_q``.

        0 where there is no lithiated silicon (or no scatterer at all).
        """
        power_law = self.state_map_sum(self.saxs_model.porod)
        amplitude = self.state.fractions["lisi"] * self.saxs_model.guinier_height
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(power_law > 0, amplitude / power_law, 0.0)

    @cached_property
    def shoulder_rg_A(self) -> np.ndarray:
        """(ny, nx) radius of gyration (A) of every pixel's shoulder.

        Calibrated on the model so that its d* is ``state.dstar_target_nm``; where the
        target cannot be reached (too weak a shoulder) the largest Rg of the expansion,
        whose shoulder then stays featureless. Clamped to the expansion's Rg range.
        """
        rg = rg_for_dstar(self.state.dstar_target_nm, self.shoulder_ratio, self.saxs_model)
        low, high = self.shoulder.rg_range_A
        return np.clip(np.nan_to_num(rg, nan=high), low, high)

    @cached_property
    def shoulder_coefficients(self) -> np.ndarray:
        """(ny, nx, rank) shoulder expansion coefficients times lithiated-Si fraction."""
        coefficients = self.shoulder.coefficients(self.shoulder_rg_A).astype(np.float32)
        return coefficients * self.state.fractions["lisi"][..., None]

    def state_map_sum(self, weights: tuple[tuple[str, float], ...]) -> np.ndarray:
        """sum_c weight_c * fraction_c over the given (component, weight) pairs, (ny, nx)."""
        return sum(w * self.state.fractions[c] for c, w in weights)

    @property
    def map_names(self) -> list[str]:
        """Names of the :meth:`projection_maps`, in their order."""
        return [*COMPONENTS, *(f"shoulder_{k}" for k in range(self.shoulder.rank)), "mu"]

    def projection_maps(self) -> tuple[np.ndarray, list[str]]:
        """Maps whose projections give every simulated sinogram: (n_maps, ny, nx), names.

        Components first (in :data:`COMPONENTS` order), then the shoulder coefficients,
        then the X-ray linear attenuation coefficient at the beam energy (1/um). The maps
        are built once and shared: read-only float32.
        """
        return self._stacked_maps, self.map_names

    @cached_property
    def _stacked_maps(self) -> np.ndarray:
        maps = [self.state.fractions[c] for c in COMPONENTS]
        maps += list(np.moveaxis(self.shoulder_coefficients, -1, 0))
        maps.append(self.mu_xray_per_um)
        stacked = np.stack(maps, dtype=np.float32)
        stacked.flags.writeable = False
        return stacked

    def pattern_bases(self) -> dict[str, np.ndarray]:
        """(n_maps - 1, n_q) pattern of each projection map (without ``mu``), per technique."""
        waxs = waxs_basis(self.q.waxs, self.waxs_fwhm_A)
        saxs = self.saxs_model.porod_basis(self.q.saxs)
        rank = self.shoulder.rank
        return {
            "waxs": np.vstack([waxs, np.zeros((rank, waxs.shape[1]))]),
            "saxs": np.vstack([saxs, self.shoulder.basis]),
        }

    def patterns(self, kind: str, rows: slice = slice(None)) -> np.ndarray:
        """Noise-free per-pixel patterns (ny, nx, n_q) of ``kind`` ("waxs" or "saxs")."""
        maps, names = self.projection_maps()
        return patterns_from_maps(
            np.moveaxis(maps[:, rows], 0, -1), names, self.pattern_bases()[kind]
        )

    @cached_property
    def mu_xray_per_um(self) -> np.ndarray:
        """Linear X-ray attenuation coefficient at 77 keV (1/um), (ny, nx)."""
        return attenuation_map(self.state.fractions, mu_table("xray", energy_keV=ENERGY_KEV))

    @cached_property
    def true_dstar_nm(self) -> np.ndarray:
        """d* (nm) of every pixel from the twin's own SAXS model, (ny, nx) float32.

        SPEC section 3's q* of the noise-free model curve (see
        :func:`~jellyroll.phantom.patterns.model_dstar_nm`): no fit, no q grid. NaN outside
        the anode and where the curve never departs by 3 % (no or too weak a shoulder).
        """
        d_star = model_dstar_nm(self.shoulder_ratio, self.shoulder_rg_A, self.saxs_model)
        return np.where(self.state.anode_mask, d_star, np.nan).astype(np.float32)

    def true_dstar_rows(self, rows: slice) -> np.ndarray:
        """:attr:`true_dstar_nm` of the map rows ``rows`` only (n_rows, nx), float32 nm."""
        return self.true_dstar_nm[rows]

    @cached_property
    def saxs_intensity(self) -> np.ndarray:
        """True integrated SAXS intensity (ny, nx), per um x A^-1: the integral over
        :data:`SAXS_INTENSITY_Q_RANGE_A` of the noise-free patterns (per um), interpolated
        linearly between the SAXS bins, against q (A^-1), edge to edge.

        Patterns are linear in the maps, so it is one value per basis pattern (0 for mu)
        contracted with the maps, without building the (ny, nx, n_q) patterns.
        """
        q = self.q.saxs
        lo, hi = SAXS_INTENSITY_Q_RANGE_A
        nodes = np.concatenate([[lo], q[(q > lo) & (q < hi)], [hi]])
        bases = self.pattern_bases()["saxs"]
        weights = np.trapezoid([np.interp(nodes, q, basis) for basis in bases], nodes, axis=-1)
        maps, names = self.projection_maps()
        return np.tensordot(np.insert(weights, names.index("mu"), 0.0), maps, axes=1)


def make_twin(
    preset: str = "aged_charged",
    size: str | SizePreset = "small",
    *,
    seed: int = 0,
    soc: float | None = None,
) -> Twin:
    """Build the twin of a named state preset (or ``soc`` within its state of health).

    ``size`` names an entry of :data:`jellyroll.phantom.parameters.SIZES` (``tiny``,
    ``small``, ``paper``) or is a :class:`SizePreset`. The same seed gives the same cell
    in every state.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    size_preset = SIZES[size] if isinstance(size, str) else size
    health, preset_soc = PRESETS[preset]
    cell = size_preset.cell.model_copy(update={"seed": seed})
    geometry = build_geometry(cell)
    n = size_preset.n_translations
    raster = rasterize(
        geometry, (n, n), size_preset.pixel_size_um, supersample=size_preset.supersample
    )
    state = cell_state(
        raster,
        health,
        preset_soc if soc is None else soc,
        seed=seed,
        silicon_enrichment=cell.agglomerates.silicon_enrichment,
    )
    grids = q_grids(size_preset)
    model = SaxsModel()
    return Twin(
        size=size_preset,
        geometry=geometry,
        raster=raster,
        state=state,
        q=grids,
        saxs_model=model,
        shoulder=shoulder_basis(model, grids.saxs),
    )

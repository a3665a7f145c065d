"""Validated parameters of the digital twin cell (lengths in micrometres).

Defaults follow ``SPEC.md`` section 5 (layer thicknesses, casing, hollow) and section 4
(agglomerate sizes); every value can be varied so that no downstream algorithm relies on
exact numbers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Health = Literal["fresh", "aged"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerStack(_Strict):
    """Thicknesses (um) of one winding repeat, inner to outer.

    Order: separator / cathode coating / Al / cathode coating / separator / anode coating /
    Cu / anode coating. One repeat is one turn of the roll (its radial pitch).
    """

    separator_um: float = Field(16.0, gt=0)
    cathode_coating_um: float = Field(55.0, gt=0)
    al_um: float = Field(15.0, gt=0)
    anode_coating_um: float = Field(45.0, gt=0)
    cu_um: float = Field(10.0, gt=0)

    def layers(self) -> list[tuple[str, float]]:
        """(layer name, thickness um) in winding order from the inner side of a turn."""
        return [
            ("separator", self.separator_um),
            ("cathode_inner", self.cathode_coating_um),
            ("al", self.al_um),
            ("cathode_outer", self.cathode_coating_um),
            ("separator", self.separator_um),
            ("anode_inner", self.anode_coating_um),
            ("cu", self.cu_um),
            ("anode_outer", self.anode_coating_um),
        ]

    @property
    def pitch_um(self) -> float:
        """Radial thickness of one turn (um)."""
        return sum(t for _, t in self.layers())


class AgglomerateParameters(_Strict):
    """Silicon agglomerates in the anode coatings (SPEC section 4).

    ``count`` regular agglomerates with log-normal radii (median ``median_radius_um``) and
    ``count_large`` beyond the distribution's cutoff, with radii uniform in
    ``large_radius_um``: the "few large ones" of the study, above the critical diameter.
    """

    count: int = Field(30, ge=0)
    median_radius_um: float = Field(20.0, gt=0)
    sigma_log: float = Field(0.15, ge=0)
    count_large: int = Field(3, ge=0)
    large_radius_um: tuple[float, float] = (28.0, 45.0)
    aspect_sigma: float = Field(0.15, ge=0, description="log-normal spread of the axis ratio")
    critical_diameter_um: float = Field(50.0, gt=0)
    bend_factor: float = Field(
        0.6, ge=0, description="collector displacement per um of equivalent diameter (case B)"
    )
    silicon_enrichment: float = Field(
        5.0,
        gt=1,
        le=5,
        description="Si fraction relative to the regular anode coating (at most 5, where the "
        "agglomerate's volume fractions sum to 1)",
    )


class CellParameters(_Strict):
    """Geometry of a wound cylindrical cell (um) and its defects."""

    outer_diameter_um: float = Field(8000.0, gt=0)
    centre_um: tuple[float, float] = Field(
        (37.0, -23.0), description="cell centre (x, y) relative to the rotation axis"
    )
    casing_um: float = Field(250.0, gt=0)
    hollow_diameter_um: float = Field(1500.0, gt=0)
    turns: float = Field(10.0, gt=0)
    stack: LayerStack = LayerStack()
    ovality: float = Field(0.01, ge=0, lt=0.3, description="relative radius modulation, 2-fold")
    winding_irregularity_um: float = Field(3.0, ge=0, description="rms radial perturbation")
    agglomerates: AgglomerateParameters = AgglomerateParameters()
    seed: int = 0

    @property
    def outer_radius_um(self) -> float:
        return self.outer_diameter_um / 2

    @property
    def roll_inner_radius_um(self) -> float:
        return self.hollow_diameter_um / 2

    @property
    def roll_outer_radius_um(self) -> float:
        return self.roll_inner_radius_um + self.turns * self.stack.pitch_um


class SizePreset(_Strict):
    """Grid and cell size of a simulated measurement (see :data:`SIZES`)."""

    name: str
    cell: CellParameters
    pixel_size_um: float
    n_translations: int
    angles_per_subset: int
    n_subsets: int = 3
    supersample: int = 3
    waxs_detector_shape: tuple[int, int]
    saxs_detector_shape: tuple[int, int]
    nxct_slices: int
    nxct_voxel_um: float = 10.0
    nxct_supersample: int = 2
    raw_frames: bool = True


def _small_cell() -> CellParameters:
    """A 2.7 mm mini cell: same layers and physics, three turns, fast to simulate."""
    return CellParameters(
        outer_diameter_um=2740.0,
        casing_um=100.0,
        hollow_diameter_um=400.0,
        turns=3.0,
        agglomerates=AgglomerateParameters(count=10, count_large=2),
    )


SIZES: dict[str, SizePreset] = {
    "tiny": SizePreset(
        name="tiny",
        cell=CellParameters(
            outer_diameter_um=1780.0,
            casing_um=60.0,
            hollow_diameter_um=300.0,
            turns=1.5,
            agglomerates=AgglomerateParameters(count=3, count_large=1),
        ),
        pixel_size_um=20.0,
        n_translations=104,
        angles_per_subset=12,
        waxs_detector_shape=(24, 192),
        saxs_detector_shape=(12, 512),
        nxct_slices=16,
    ),
    "small": SizePreset(
        name="small",
        cell=_small_cell(),
        pixel_size_um=20.0,
        n_translations=160,
        angles_per_subset=30,
        waxs_detector_shape=(48, 320),
        saxs_detector_shape=(24, 400),
        nxct_slices=100,
    ),
    "demo": SizePreset(
        name="demo",
        cell=_small_cell(),
        pixel_size_um=10.0,
        n_translations=300,
        angles_per_subset=30,
        waxs_detector_shape=(48, 320),
        saxs_detector_shape=(24, 400),
        nxct_slices=100,
    ),
    "paper": SizePreset(
        name="paper",
        cell=CellParameters(agglomerates=AgglomerateParameters(count=40, count_large=4)),
        pixel_size_um=10.0,
        n_translations=1024,
        angles_per_subset=100,
        supersample=2,
        waxs_detector_shape=(1679, 1475),
        saxs_detector_shape=(1679, 1475),
        nxct_slices=48,
        nxct_supersample=1,
        raw_frames=False,
    ),
}
"""Named sizes: ``tiny`` for unit tests, ``small`` (20 um pixels) for quick runs, ``demo``
(the mini cell at the study's 10 um translation step, what ``jellyroll demo`` scans),
``paper`` for the study's grid (1024 translations x 3 x 100 angles, pre-integrated
patterns). The NXCT stacks are ``nxct_slices`` x ``nxct_voxel_um`` tall: 160 um (tiny),
1 mm (small, demo), 480 um (paper)."""

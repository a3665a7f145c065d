"""Per-defect lithiation and radial profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jellyroll.defects import defect_lithiation, radial_profiles

PHASES = ("lic6", "lic12", "graphite_poor")


@pytest.fixture(scope="module")
def aged_charged(evaluate):
    return evaluate("aged_charged", 10.0, 104)


def test_case_b_core_stays_poorly_lithiated_in_aged_charged_cell(aged_charged):
    """Truth phase maps, detections of true agglomerates: the damaged zone around a case-B
    agglomerate keeps a poorly lithiated core while the cell around is LiC12 (SPEC 4)."""
    twin = aged_charged.maps.twin
    maps = {name: twin.state.fractions[name] for name in PHASES}
    table = defect_lithiation(aged_charged.found, maps, twin.pixel_size_um)
    assert list(table["id"]) == list(aged_charged.found["id"])
    shares = table[[f"{n}_{w}" for w in ("inside", "ring") for n in PHASES]].to_numpy()
    assert np.allclose(shares.reshape(-1, 2, 3).sum(axis=2), 1.0)
    truth = aged_charged.truth[aged_charged.truth["match"] >= 0]
    rows = {case: truth.loc[truth["case"] == case, "match"].to_numpy() for case in "AB"}
    b, a = table.iloc[rows["B"]], table.iloc[rows["A"]]
    assert len(b) >= 3
    # inside: the agglomerate (graphite at 0.8 of the regular x: LiC12) and the poor shell
    # of the damaged zone around it (thin for the smaller ones): 0.1-0.5 poorly lithiated
    # (median 0.38); the ring is LiC12 nearly everywhere
    assert (b["graphite_poor_inside"] >= b["graphite_poor_ring"] + 0.1).all()
    assert b["graphite_poor_inside"].median() >= 0.3
    assert (b["lic12_ring"] >= 0.75).all()
    assert a["graphite_poor_inside"].median() <= 0.1  # case A: mild, no damaged core


def test_lithiation_mask_and_empty_regions():
    maps = {"lic6": np.ones((20, 20)), "lic12": np.zeros((20, 20))}
    table = pd.DataFrame(
        {"id": [1], "x_um": [0.0], "y_um": [0.0], "equivalent_diameter_um": [40.0]}
    )
    out = defect_lithiation(table, maps, 10.0, mask=np.zeros((20, 20), bool))
    assert np.isnan(out.loc[0, "lic6_inside"]) and out.loc[0, "pixels_inside"] == 0
    out = defect_lithiation(table, maps, 10.0, inside_scale=1.0, ring_width_um=20.0)
    assert out.loc[0, "lic6_inside"] == 1.0 and out.loc[0, "lic12_ring"] == 0.0
    # the disk of radius 20 um around the map centre holds the pixels within it
    assert out.loc[0, "pixels_inside"] == 12


def test_radial_profiles_of_a_radial_map():
    p = 10.0
    n = 61
    axis = (np.arange(n) - (n - 1) / 2) * p
    distance = np.hypot(axis[None, :] - 30.0, axis[:, None] + 20.0)
    maps = {"linear": 2.0 * distance, "flat": np.full((n, n), 3.0)}
    maps["flat"][0, 0] = np.nan
    profile = radial_profiles(maps, (30.0, -20.0), p, 200.0, bin_um=20.0)
    assert list(profile.columns) == ["radius_um", "pixels", "linear", "flat"]
    assert np.allclose(profile["radius_um"], np.arange(10.0, 200.0, 20.0))
    # pixel centres (10 um apart) sample each 20 um ring unevenly: a few % off its middle
    assert np.allclose(profile["linear"][1:], 2 * profile["radius_um"][1:], rtol=0.05)
    assert np.allclose(profile["flat"], 3.0)
    assert profile["pixels"].sum() == np.count_nonzero(distance < 200.0)


def test_radial_profile_across_a_case_b_defect(aged_charged):
    """The SAXS intensity falls from the agglomerate to the anode around it."""
    twin = aged_charged.maps.twin
    b = aged_charged.found[aged_charged.found["case"] == "B"].iloc[0]
    profile = radial_profiles(
        {"saxs": aged_charged.maps.saxs}, (b["x_um"], b["y_um"]), twin.pixel_size_um, 150.0
    )
    inner = profile["saxs"][profile["radius_um"] < b["equivalent_diameter_um"] / 4]
    outer = profile["saxs"][profile["radius_um"] > 100.0]
    assert inner.mean() > 2 * outer.mean()


def test_a_mask_of_another_grid_is_refused() -> None:
    """An anode mask of another grid (the same anode at 10 um for maps at 20 um) was
    indexed by the maps' windows: its upper-left quarter read as the maps' mask, the defect
    got 0 pixels and NaN shares, exit 0 (radial_profiles failed with numpy's broadcasting
    message). Both now refuse it, naming the shapes."""
    n, p = 64, 20.0
    y, x = (np.mgrid[:n, :n] - (n - 1) / 2) * p
    poor = (np.hypot(x - 100.0, y) < 60.0).astype(float)
    maps = {"lic6": 1.0 - poor, "graphite_poor": poor}
    table = pd.DataFrame(
        {"id": [1], "x_um": [100.0], "y_um": [0.0], "equivalent_diameter_um": [80.0]}
    )
    same = defect_lithiation(table, maps, p, mask=np.ones((n, n), bool))
    assert same.loc[0, "graphite_poor_inside"] == 1.0 and same.loc[0, "pixels_inside"] > 0
    fine = np.ones((2 * n, 2 * n), bool)
    fine[:n, :n] = False
    with pytest.raises(ValueError, match=r"mask \(128, 128\)"):
        defect_lithiation(table, maps, p, mask=fine)
    with pytest.raises(ValueError, match=r"mask \(128, 128\)"):
        radial_profiles(maps, (100.0, 0.0), p, 100.0, mask=fine)
    with pytest.raises(ValueError, match=r"graphite_poor \(32, 32\)"):
        defect_lithiation(table, {"lic6": maps["lic6"], "graphite_poor": poor[::2, ::2]}, p)


def test_the_ring_leaves_out_the_other_defects() -> None:
    """Two poorly lithiated defects 120 um apart in a LiC12 anode: each one's 100 um ring
    took in the other's core (22 of 508 pixels) and read 4.3 % poorly lithiated, exit 0.
    The ring is the defect's neighbours: exactly LiC12, none of the other's pixels."""
    n, p = 60, 10.0
    y, x = (np.mgrid[:n, :n] - (n - 1) / 2) * p
    poor = ((np.hypot(x + 60.0, y) <= 30.0) | (np.hypot(x - 60.0, y) <= 30.0)).astype(float)
    maps = {"lic6": np.zeros((n, n)), "lic12": 1.0 - poor, "graphite_poor": poor}
    table = pd.DataFrame(
        {"id": [1, 2], "x_um": [-60.0, 60.0], "y_um": [0.0, 0.0], "equivalent_diameter_um": 40.0}
    )
    out = defect_lithiation(table, maps, p, ring_width_um=100.0)
    assert (out["graphite_poor_inside"] == 1.0).all()
    assert (out["graphite_poor_ring"] == 0.0).all() and (out["lic12_ring"] == 1.0).all()
    # the ring's pixels: 30-130 um from the centre, less the 22 of the other's disk in it
    ring = (np.hypot(x + 60.0, y) > 30.0) & (np.hypot(x + 60.0, y) <= 130.0) & (poor == 0)
    assert out.loc[0, "pixels_ring"] == np.count_nonzero(ring)


def test_a_pixel_without_every_phase_is_left_out() -> None:
    """Half the disk LiC6 = LiC12 = 0.5 with LiC6 unknown (NaN) on the other half, where
    LiC12 = 0.5 too: the unknown LiC6 counted as none, LiC6 read 1/3 of the graphite
    instead of 1/2 (exact: the pixels with both phases are half of each)."""
    n, p = 20, 10.0
    lic6 = np.full((n, n), 0.5)
    lic6[:, : n // 2] = np.nan
    maps = {"lic6": lic6, "lic12": np.full((n, n), 0.5)}
    table = pd.DataFrame({"id": [1], "x_um": [0.0], "y_um": [0.0], "equivalent_diameter_um": 60.0})
    out = defect_lithiation(table, maps, p, inside_scale=1.0)
    assert out.loc[0, "lic6_inside"] == 0.5 and out.loc[0, "lic12_ring"] == 0.5
    y, x = (np.mgrid[:n, :n] - (n - 1) / 2) * p
    assert out.loc[0, "pixels_inside"] == np.count_nonzero((np.hypot(x, y) <= 30.0) & (x > 0))


def test_zero_mean_noise_does_not_feed_the_absent_phases() -> None:
    """A poorly lithiated disk in a LiC12 anode, both maps with Gaussian noise of 0.3 times
    the signal (a noisy reconstruction): clipped pixel by pixel before the sums, the noise
    gave the absent LiC6 a share of 0.10 of the ring and LiC12 0.80 for 1, exit 0. Summed
    over the region first, a share's noise is 0.3 / sqrt(pixels): 0.016 over the ring's
    336 pixels, 0.028 over the 112 inside; bounds of about 3 of those."""
    n, p = 80, 10.0
    y, x = (np.mgrid[:n, :n] - (n - 1) / 2) * p
    poor = (np.hypot(x, y) <= 60.0).astype(float)
    clean = {"lic6": np.zeros((n, n)), "lic12": 1.0 - poor, "graphite_poor": poor}
    rng = np.random.default_rng(0)
    noisy = {name: values + rng.normal(0.0, 0.3, (n, n)) for name, values in clean.items()}
    table = pd.DataFrame({"id": [1], "x_um": [0.0], "y_um": [0.0], "equivalent_diameter_um": 80.0})
    out = defect_lithiation(table, noisy, p).iloc[0]
    assert out["pixels_inside"] == 112 and out["pixels_ring"] == 336
    for name, expected in (("lic6", 0.0), ("lic12", 1.0), ("graphite_poor", 0.0)):
        assert out[f"{name}_ring"] == pytest.approx(expected, abs=0.05), name
    for name, expected in (("lic6", 0.0), ("lic12", 0.0), ("graphite_poor", 1.0)):
        assert out[f"{name}_inside"] == pytest.approx(expected, abs=0.08), name

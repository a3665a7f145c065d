"""``jellyroll maps`` on run files built from the twin's per-pixel volumes."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

from jellyroll import conventions
from jellyroll.cli import app
from jellyroll.io import scratch
from jellyroll.io.images import save_png
from jellyroll.maps import core as maps_core
from jellyroll.maps.options import MapsOptions
from jellyroll.maps.run import run_maps
from jellyroll.phantom.twin import Twin, make_twin
from jellyroll.phantom.write import noisy_pixel_patterns
from jellyroll.results import Reconstruction, Sinogram, write_reconstruction, write_sinogram

TABLE1 = ("lic6", "lic12", "graphite_poor", "nmc_lithiated", "nmc_delithiated")


def make_run(
    path: Path, twin: Twin, kind: str, seed: int, attenuation: np.ndarray | None = None
) -> Path:
    """A run file whose reconstruction is the twin's per-pixel truth with one-pixel Poisson
    noise (expected counts = pattern x pixel size x counts per unit x pixels per q bin)."""
    q = getattr(twin.q, kind)
    volume = noisy_pixel_patterns(twin, kind, seed)[0]
    y_um, x_um = twin.raster.axes_um()
    write_sinogram(path, placeholder_sinogram(q, x_um), {"test": "placeholder"})
    recon = Reconstruction(volume.astype(np.float32), q, x_um, y_um, attenuation=attenuation)
    write_reconstruction(path, recon, {})
    return path


def placeholder_sinogram(q: np.ndarray, x_um: np.ndarray) -> Sinogram:
    """The maps stage reads only the reconstruction; a two-angle placeholder sinogram makes
    the run file valid."""
    placeholder = np.zeros((2, x_um.size, q.size), np.float32)
    return Sinogram(
        data=placeholder,
        errors=placeholder,
        rotation_angle_deg=np.array([0.0, 90.0]),
        translation_mm=x_um / 1000.0,
        q_A=q,
    )


@pytest.fixture(scope="module")
def twin() -> Twin:
    return make_twin("aged_charged", "tiny", seed=5)


def test_maps_on_a_waxs_run(tmp_path: Path, twin: Twin) -> None:
    run = make_run(tmp_path / "waxs_run.h5", twin, "waxs", seed=1)
    result = CliRunner().invoke(app, ["maps", str(run)])
    assert result.exit_code == 0, result.output
    assert "q axis checked against 7 lines" in " ".join(result.output.split())
    with h5py.File(run, "r") as f:
        maps = f["/entry/maps"]
        assert maps.attrs["default"] == "graphite"
        for name in (*TABLE1, "graphite", "graphite_label", "nmc_label"):
            group = maps[name]
            assert group.attrs["NX_class"] == "NXdata" and group.attrs["signal"] == "data"
            assert group["data"].shape == twin.shape
            assert group["x_um"].attrs["units"] == "um" and group["y_um"].attrs["units"] == "um"
        assert "saxs_intensity" not in maps  # WAXS q range: no SAXS maps
        label = maps["graphite_label/data"][()]
        assert "units" in maps["lic6/data"].attrs
        assert "provenance" in f["/entry"] and "maps" in f["/entry/provenance"]
    anode = twin.state.anode_mask
    assert np.mean(label[anode] == twin.state.graphite_label()[anode]) >= 0.95
    for name in ("graphite_rgb", "nmc_rgb"):
        png = tmp_path / f"waxs_run_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_maps_refuse_a_waxs_run_whose_q_axis_is_stretched(tmp_path: Path, twin: Twin) -> None:
    """The twin's per-pixel patterns on an axis read 2 % short (q measured = 0.98 q true, a
    PONI distance 2 % long): every phase map was made from the wrong lines, exit 0."""
    run = make_run(tmp_path / "waxs_run.h5", twin, "waxs", seed=1)
    with h5py.File(run, "r+") as f:  # the same patterns, the axis of a wrong geometry
        q = f["/entry/reconstruction/q"]
        q[...] = q[()] * 0.98
    result = CliRunner().invoke(app, ["maps", str(run)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    found = re.search(r"off by a factor (\d\.\d+)", text)
    # the twin's lines sit 0.03 % low at a correct calibration (parabola vertices of
    # 1.7-bin-wide lines): 0.9797
    assert found and float(found.group(1)) == pytest.approx(0.98, abs=5e-4), text
    assert "PONI distance" in text and "Cu (111) at" in text
    with h5py.File(run, "r") as f:
        assert "maps" not in f["/entry"]


def test_maps_killed_while_drawing_leave_no_earlier_figures(
    tmp_path: Path, twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed while drawing left the earlier maps' PNGs beside the new maps, and one
    killed after writing the maps left them without PNGs: `jellyroll run`, finding the maps
    up to date, never drew them (the red team's kill -9). The earlier PNGs go first, and the
    maps are written after the PNGs are drawn."""
    from jellyroll.maps import run as maps_run

    run = make_run(tmp_path / "waxs_run.h5", twin, "waxs", seed=1)
    stale = [tmp_path / f"waxs_run_{name}.png" for name in ("graphite_rgb", "nmc_rgb", "d_star")]
    for path in stale:
        save_png(Figure(figsize=(1, 1)), path, dpi=10)  # the earlier maps' figures

    def killed(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(maps_run, "_figures", killed)
    with pytest.raises(KeyboardInterrupt):
        maps_run.run_maps(run)
    assert not any(path.exists() for path in stale)
    with h5py.File(run, "r") as f:
        assert "maps" not in f["/entry"]  # nothing stands for up to date: a rerun draws


def test_ctrl_c_says_what_was_kept_and_how_to_go_on(
    tmp_path: Path, twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C printed a blank line and exit 130: nothing said whether the outputs were
    whole or how to go on."""
    from jellyroll.maps import run as maps_run

    run = make_run(tmp_path / "waxs_run.h5", twin, "waxs", seed=1)

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(maps_run, "_figures", interrupted)
    result = CliRunner().invoke(app, ["maps", str(run)])
    assert result.exit_code == 130
    assert "interrupted: no output was left half-written; run the same command" in " ".join(
        result.output.split()
    )


def test_maps_refuse_a_png_of_the_user_where_a_figure_goes(tmp_path: Path, twin: Twin) -> None:
    """A PNG jellyroll did not draw lying as ``RUN_d_star.png`` was deleted before the maps
    were computed (the stale figures' clean-up) and replaced, exit 0: refused before any
    work, named, kept."""
    run = make_run(tmp_path / "waxs_run.h5", twin, "waxs", seed=1)
    mine = tmp_path / "waxs_run_nmc_rgb.png"
    Figure(figsize=(1, 1)).savefig(mine, dpi=10, format="png")  # the user's own plot
    before = mine.read_bytes()
    result = CliRunner().invoke(app, ["maps", str(run)])
    assert result.exit_code == 1, result.output
    assert "waxs_run_nmc_rgb.png is where a figure goes" in " ".join(result.output.split())
    assert mine.read_bytes() == before
    with h5py.File(run, "r") as f:
        assert "maps" not in f["/entry"]


def test_a_new_reconstruction_takes_the_maps_figures_with_the_maps(
    tmp_path: Path, twin: Twin
) -> None:
    """A reconstruction written again deleted the maps stage file but left its composites
    (`RUN_graphite_rgb.png` ...): phase maps of a reconstruction that no longer exists, with
    nothing to tell them apart. They go with the maps now."""
    from jellyroll.maps.run import run_maps
    from jellyroll.results.store import invalidate_run, stage_file

    run = make_run(tmp_path / "waxs_run.h5", twin, "waxs", seed=1)
    drawn = run_maps(run).figures
    assert drawn and all(path.exists() for path in drawn)
    invalidate_run(run, after="reconstruct")  # what writing the reconstruction does first
    assert not stage_file(run, "maps").exists()
    assert not any(path.exists() for path in drawn)


def test_maps_on_a_saxs_run_with_its_attenuation_slice(tmp_path: Path, twin: Twin) -> None:
    run = make_run(tmp_path / "saxs_run.h5", twin, "saxs", seed=2, attenuation=twin.mu_xray_per_um)
    result = CliRunner().invoke(app, ["maps", str(run)])
    assert result.exit_code == 0, result.output
    with h5py.File(run, "r") as f:
        maps = f["/entry/maps"]
        assert maps.attrs["default"] == "saxs_intensity"
        assert "attenuation" in maps and "lic6" not in maps
        d_star = maps["d_star_nm/data"][()]
        assert maps["d_star_nm/data"].attrs["units"] == "nm"
        reason = maps["d_star_reason/data"][()]
    truth = twin.true_dstar_nm
    valid = np.isfinite(truth) & np.isfinite(d_star)
    assert np.all(np.isnan(d_star) == (reason != 0))
    assert valid.sum() >= 0.9 * np.isfinite(truth).sum()
    # Default denoising without errors assumes variance ~ |I|; the tiny twin's few pixels
    # keep more noise than the validation of test_saxs_maps: about two q bins.
    assert np.median(np.abs(d_star - truth)[valid]) < 1.0
    png = tmp_path / "saxs_run_d_star.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_maps_refuses_a_run_without_reconstruction(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["maps", str(tmp_path / "missing.h5")])
    assert result.exit_code == 1
    assert "no such run file" in result.output


def test_the_denoising_note_warns_when_the_automatic_rank_keeps_too_many() -> None:
    from jellyroll.maps import denoising_note as _denoising_note

    assert (
        _denoising_note(3, 500, chosen=False) == "SAXS profiles denoised with 3 of 500 components"
    )
    # Over a tenth of the channels, chosen automatically: the profiles were barely denoised.
    assert "barely denoised" in _denoising_note(236, 500, chosen=False)
    assert "--rank" in _denoising_note(236, 500, chosen=False)
    # A rank the user chose is reported as it is.
    assert "barely" not in _denoising_note(236, 500, chosen=True)


@pytest.mark.parametrize(
    ("kind", "analysis"), [("waxs", "jellyroll"), ("saxs", "jellyroll"), ("saxs", "study")]
)
def test_a_cube_left_on_disk_gives_the_maps_of_one_read_whole(
    tmp_path: Path, twin: Twin, monkeypatch: pytest.MonkeyPatch, kind: str, analysis: str
) -> None:
    """A cube over scratch.IN_MEMORY_BYTES (the study's is 8.4 GB) stays on disk and every pass of
    the maps reads it by row slabs: here slabs of one chunk row, so that every map is put
    together from several. The maps equal those of the cube read whole, bit for bit (the
    same sums on the same profiles; the denoiser's blocks hold the whole tiny map either
    way)."""
    run = make_run(tmp_path / "run.h5", twin, kind, seed=3)
    options = MapsOptions(analysis=analysis)
    whole = run_maps(run, options, figures=False).maps
    monkeypatch.setattr(scratch, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(conventions, "SLAB_BYTES", 1)
    read = []
    original = conventions.row_slabs

    def counted(cube, slab_bytes=None):
        read.append(type(cube))
        yield from original(cube, slab_bytes)

    monkeypatch.setattr(maps_core, "row_slabs", counted)
    streamed = run_maps(run, options, figures=False).maps
    assert read and all(kind is h5py.Dataset for kind in read)  # never an array read whole
    assert streamed.maps.keys() == whole.maps.keys() and streamed.notes == whole.notes
    for name, item in whole.maps.items():
        np.testing.assert_array_equal(streamed[name], item.values, err_msg=name)

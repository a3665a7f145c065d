"""`jellyroll run`: configuration, the whole chain on tiny twins, resumption, the report."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.io.nexus import read_table
from jellyroll.phantom.parameters import SIZES
from jellyroll.phantom.twin import make_twin
from jellyroll.phantom.write import _write_operando, demo_config, write_phantom
from jellyroll.pipeline import ConfigError, load_config, run_pipeline
from jellyroll.pipeline.config import written_by_the_run
from jellyroll.pipeline.run import SCAN_STAGES, TECHNIQUES
from jellyroll.report import run_report
from jellyroll.results import read_diagnosis
from jellyroll.results.operando import read_operando

FIGURES = ("composites", "saxs", "unrolled", "saxs_profiles", "histogram", "lithiation")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """Fresh and aged tiny twins and the demo configuration, run once."""
    out = tmp_path_factory.mktemp("demo")
    for preset in ("fresh_charged", "aged_charged"):
        write_phantom(out / "twins" / preset, preset=preset, size="tiny", seed=2, nxct=False)
    config = demo_config(out, out / "twins", "tiny")
    run_pipeline(load_config(config))
    return out


def _changed_copy(demo: Path, folder: Path) -> Path:
    """A copy of the demo's results in ``folder`` for a test that changes them (the twins
    they were made from stay shared, read only): the demo stays as run for the others."""
    shutil.copytree(demo, folder, ignore=shutil.ignore_patterns("twins"), dirs_exist_ok=True)
    return folder


def test_results_files_follow_the_contract(demo: Path) -> None:
    for cell in ("fresh_charged", "aged_charged"):
        with h5py.File(demo / cell / "results.h5", "r") as f:
            assert f.attrs["default"] == "entry"
            maps = f["/entry/maps"]
            for name in ("lic6", "lic12", "graphite_poor", "nmc_lithiated", "nmc_delithiated",
                         "saxs_intensity", "d_star_nm", "attenuation"):  # fmt: skip
                assert maps[name]["data"].ndim == 2 and maps[name]["x_um"].attrs["units"] == "um"
            # the unrolled views in the units of their maps (none: no units on a colour bar)
            for name, view in f["/entry/unrolled"].items():
                assert view["data"].attrs["units"] == maps[name]["data"].attrs["units"], name
            table = read_table(f["/entry/defects/agglomerates"])
            assert {"x_um", "y_um", "equivalent_diameter_um", "case"} <= set(table.columns)
            # every measured column states its unit (the excess intensities, significances
            # and the lithiation table's phase shares stated none); ids, counts, cases not
            for name in ("agglomerates", "bends", "lithiation"):
                for column, values in f[f"/entry/defects/{name}"].items():
                    counted = column in ("id", "turn", "bend_id") or column.startswith("pixels")
                    if values.dtype.kind == "f" and not counted:
                        assert "units" in values.attrs, f"{name}/{column}"
            excess = f["/entry/defects/agglomerates/excess_intensity"].attrs["units"]
            assert excess == maps["saxs_intensity"]["data"].attrs["units"]
            assert f["/entry/provenance"].attrs["NX_class"] == "NXcollection"  # had none
            profiles = f["/entry/saxs_profiles"]  # q and the mean profiles stated none
            assert profiles["q_A"].attrs["units"] == "1/angstrom"
            assert profiles["regular"].attrs["units"] == "arb. units / um"
            assert (
                read_diagnosis(demo / cell / "results.h5").saxs_profile_units == "arb. units / um"
            )
            # what made the diagnosis, all of which reruns it when changed: not the whole
            # configuration (a run that changed the title and added an operando series kept
            # the diagnosis, and its record, of the run before)
            made = json.loads(f["/entry/provenance/run"].asstr()[()])["configuration"]["config"]
            assert set(made) == {"cell", "waxs", "saxs", "reconstruct", "maps", "defects"}
            assert made["cell"]["name"] == cell and "operando" not in made["cell"]
        with h5py.File(demo / cell / "saxs_run.h5", "r") as f:
            assert f["/entry/reconstruction/data"].ndim == 3
            reading = f["/entry/sinogram/data"].attrs["monitor_reference"]
        # what the SAXS intensities are counts at, for the report to compare cells by
        summary = read_diagnosis(demo / cell / "results.h5").summary
        assert summary["saxs_monitor_reference"] == pytest.approx(reading, rel=1e-12)


def test_the_run_writes_in_a_cells_folder_only_the_names_it_checks_inputs_against(
    demo: Path,
) -> None:
    """The configuration refuses an input named as an output of the run
    (:func:`~jellyroll.pipeline.config.inputs_among_outputs`); that check knows the run's
    outputs by name, so every file the run writes must carry one of those names."""
    for cell in ("fresh_charged", "aged_charged"):
        written = [path.name for path in (demo / cell).iterdir()]
        assert written and all(written_by_the_run(name) for name in written), written


def test_every_result_records_the_checksums_of_its_inputs(demo: Path) -> None:
    with h5py.File(demo / "aged_charged" / "results.h5", "r") as f:
        record = json.loads(f["/entry/provenance/run"].asstr()[()])
    assert sorted(Path(p).name for p in record["inputs"]) == [
        "saxs_run.maps.h5",
        "saxs_run.reconstruction.h5",  # the region-averaged SAXS profiles
        "saxs_run.sinogram.h5",  # the monitor reading its intensities count at
        "waxs_run.maps.h5",
        "waxs_run.reconstruction.h5",  # the graphite lines' crosstalk
    ]
    assert all(value.startswith("sha256:") for value in record["inputs"].values())
    with h5py.File(demo / "aged_charged" / "saxs_run.h5", "r") as f:
        for stage, source in (("maps", "reconstruction"), ("reconstruction", "sinogram")):
            inputs = json.loads(f[f"/entry/provenance/{stage}"].asstr()[()])["inputs"]
            assert [Path(p).name for p in inputs] == [f"saxs_run.{source}.h5"]


def test_fresh_and_aged_differ_as_in_the_study(demo: Path) -> None:
    """Charged: fresh mostly LiC6, aged mostly LiC12 (lithium inventory loss). (d* needs the
    angular sampling of the small twin to be meaningful: checked by `make demo`, not here.)"""
    shares = {}
    for cell in ("fresh_charged", "aged_charged"):
        with h5py.File(demo / cell / "results.h5", "r") as f:
            anode = f["/entry/maps/graphite_label/data"][()]
        labelled = anode[anode >= 0]
        shares[cell] = (np.mean(labelled == 0), np.mean(labelled == 1))
    assert shares["fresh_charged"][0] > shares["fresh_charged"][1]
    assert shares["aged_charged"][1] > shares["aged_charged"][0]


def test_the_slices_graphite_shares_are_those_of_the_twin(demo: Path) -> None:
    """The graphite shares were those of the Table 1 window integrals, which touch and leak
    each line into its neighbour's window: the aged charged anode read 0.105 poorly
    lithiated for a true 0.0065 (and 0.766 LiC12 for 0.898), exit 0. Unmixed (one line shape
    fitted to the anode's mean pattern), each share is within 0.02 of the twin's graphite
    fractions summed over the slice (the reconstruction's noise and the lines' scattering
    power, alike per unit graphite in the twin)."""
    for cell in ("fresh_charged", "aged_charged"):
        found = read_diagnosis(demo / cell / "results.h5").summary
        with h5py.File(demo / "twins" / cell / "truth.h5", "r") as f:
            amounts = {
                name: float(f[f"/entry/maps/fraction_{name}/data"][()].sum())
                for name in ("lic6", "lic12", "graphite_poor")
            }
        total = sum(amounts.values())
        for name, amount in amounts.items():
            assert found[f"{name}_share"] == pytest.approx(amount / total, abs=0.02), (cell, name)


def test_second_run_skips_every_stage_and_a_change_reruns_downstream(
    demo: Path, tmp_path: Path
) -> None:
    config = load_config(_changed_copy(demo, tmp_path) / "demo.toml")
    again = run_pipeline(config)
    assert {e["status"] for e in again.log.entries} == {"up to date"}
    changed = config.model_copy(
        update={"defects": config.defects.model_copy(update={"critical_diameter_um": 40.0})}
    )
    third = run_pipeline(changed)
    status = {e["stage"]: e["status"] for e in third.log.entries}
    assert status["aged_charged diagnosis"] == "done"
    assert status["aged_charged saxs reduce"] == "up to date"


def test_files_the_user_left_where_the_run_writes_are_refused_and_kept(
    demo: Path, tmp_path: Path
) -> None:
    """A hand-written ``report.html`` in the output folder and the user's own ``results.h5``
    in a cell's folder were replaced by `jellyroll run` (and `demo`), exit 0. Refused
    before any stage, both named; the run's own files are replaced as before (the tests
    above)."""
    demo = _changed_copy(demo, tmp_path)
    (demo / "report.html").write_text("<html>my own notes</html>")
    mine = demo / "aged_charged" / "results.h5"
    with h5py.File(mine, "w") as f:
        f["notes"] = "mine"
    before = mine.read_bytes()
    plot = demo / "aged_charged" / "waxs_run_graphite_rgb.png"
    Image.new("RGB", (4, 4)).save(plot)  # a figure of the user's where the run draws one
    plotted = plot.read_bytes()
    with pytest.raises(ConfigError) as refused:
        run_pipeline(load_config(demo / "demo.toml"))
    assert "report.html is where the run writes its report" in str(refused.value)
    assert "results.h5 is where the run writes cell aged_charged" in str(refused.value)
    assert "waxs_run_graphite_rgb.png is where the run draws" in str(refused.value)
    assert (demo / "report.html").read_text() == "<html>my own notes</html>"
    assert mine.read_bytes() == before and plot.read_bytes() == plotted


def test_a_cells_scans_the_wrong_way_round_are_refused_before_any_stage(
    demo: Path, tmp_path: Path
) -> None:
    """A cell's waxs and saxs swapped was refused only once both scans had been reduced,
    reconstructed and mapped (the red team's run configuration): each scan's q reach, from
    its geometry, tells them apart before the first stage."""
    config = load_config(demo / "demo.toml")
    cell = config.cells[0].model_copy(
        update={"waxs": config.cells[0].saxs, "saxs": config.cells[0].waxs}
    )
    swapped = config.model_copy(update={"cells": [cell], "output": tmp_path / "out"})
    with pytest.raises(ConfigError, match=rf"cell {cell.name}: its waxs scan .* wrong way round"):
        run_pipeline(swapped)
    assert not (tmp_path / "out" / cell.name).exists()


def test_a_deleted_run_index_is_written_again_when_every_stage_is_up_to_date(
    demo: Path, tmp_path: Path
) -> None:
    """`c/waxs_run.h5` deleted: every stage file still recorded its key, so every stage was
    skipped and the run exited 0 without the index (the file users and `jellyroll maps`
    open)."""
    demo = _changed_copy(demo, tmp_path)
    index = demo / "aged_charged" / "waxs_run.h5"
    with h5py.File(index, "r") as f:
        before = f["/entry/maps/lic6/data"][()]
    index.unlink()
    status = {
        e["stage"]: e["status"] for e in run_pipeline(load_config(demo / "demo.toml")).log.entries
    }
    assert {status[f"aged_charged waxs {stage}"] for stage in SCAN_STAGES} == {"up to date"}
    with h5py.File(index, "r") as f:
        assert f.attrs["default"] == "entry" and f["entry"].attrs["default"] == "maps"
        assert np.array_equal(f["/entry/maps/lic6/data"][()], before, equal_nan=True)


def test_a_cell_with_an_operando_series_gets_its_stage_and_report_section(
    demo: Path, tmp_path: Path
) -> None:
    """A cell naming a charge series (3 steps of its own tiny twin) and its potentiostat
    log: the operando stage runs after the diagnosis, writes its file with the state of
    charge from the log, the report shows the series, and a second run skips it."""
    demo = _changed_copy(demo, tmp_path)
    series = demo / "aged_charged_series"
    twin = make_twin("aged_charged", SIZES["tiny"], seed=2)
    _write_operando(series, twin, 3, 2, Console(quiet=True))
    config = load_config(demo / "demo.toml")
    cells = [
        cell.model_copy(update={"operando": series, "operando_log": series / "potentiostat.csv"})
        if cell.name == "aged_charged"
        else cell
        for cell in config.cells
    ]
    config = config.model_copy(update={"cells": cells})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny series' coarse steps warn; not under test
        first = run_pipeline(config)
    status = {entry["stage"]: entry["status"] for entry in first.log.entries}
    assert status["aged_charged operando"] == "done"
    assert "fresh_charged operando" not in status
    found = read_operando(demo / "aged_charged" / "operando.h5")
    assert found.soc.shape == (3,) and np.all(np.isfinite(found.soc))
    assert found.soc_source.startswith("potentiostat log")
    page = first.report.read_text()
    assert 'data-name="operando_sheet"' in page and "operando charge" in page
    assert all(written_by_the_run(p.name) for p in (demo / "aged_charged").iterdir())
    again = run_pipeline(config)
    assert {entry["status"] for entry in again.log.entries} == {"up to date"}


def test_each_stage_runs_once_per_scan_in_chain_order(demo: Path) -> None:
    """The walk of a q value from a raw frame to the report: reduce, reconstruct and maps of
    each scan, then the cell's diagnosis, each visited once, in that order."""
    entries = run_pipeline(load_config(demo / "demo.toml")).log.entries
    expected = [
        f"{cell} {step}"
        for cell in ("fresh_charged", "aged_charged")
        for step in (
            *(f"{kind} {stage}" for kind in TECHNIQUES for stage in SCAN_STAGES),
            "diagnosis",
        )
    ]
    assert [entry["stage"] for entry in entries] == expected


def test_a_changed_maps_option_or_a_rewritten_result_reruns_from_there_on(
    demo: Path, tmp_path: Path
) -> None:
    demo = _changed_copy(demo, tmp_path)
    config = load_config(demo / "demo.toml")
    changed = config.model_copy(
        update={"maps": config.maps.model_copy(update={"label_threshold": 0.06})}
    )
    status = {e["stage"]: e["status"] for e in run_pipeline(changed).log.entries}
    for cell in ("fresh_charged", "aged_charged"):
        for kind in TECHNIQUES:
            assert status[f"{cell} {kind} reduce"] == "up to date"
            assert status[f"{cell} {kind} reconstruct"] == "up to date"
            assert status[f"{cell} {kind} maps"] == "done"
        assert status[f"{cell} diagnosis"] == "done"
    # another command rewrites a reconstruction: its key is in the file, so the run notices
    run_file = demo / "aged_charged" / "saxs_run.h5"
    result = CliRunner().invoke(
        app, ["reconstruct", str(run_file), "--method", "sirt", "--iterations", "10"]
    )
    assert result.exit_code == 0, result.output
    status = {e["stage"]: e["status"] for e in run_pipeline(config).log.entries}
    assert status["aged_charged saxs reduce"] == "up to date"
    assert status["aged_charged saxs reconstruct"] == "done"
    assert status["aged_charged saxs maps"] == "done"
    assert status["aged_charged waxs reconstruct"] == "up to date"


def test_report_is_self_contained_and_complete(demo: Path) -> None:
    html = (demo / "report.html").read_text()
    for name in FIGURES:
        assert html.count(f'data-name="{name}"') == 2  # one per cell
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    # the run's settings: one entry, each stage's nested in it (was "settings: waxs", ...)
    assert html.count("<dt>settings</dt><dd><dl>") == 1 and "settings: " not in html
    assert "<dt>reconstruct</dt><dd><dl><dt>method</dt><dd>sart</dd>" in html
    # each cell's scans: none was named, so a cell given another cell's scan could not be
    # told from its page (the red team's crossed run configuration)
    for preset in ("fresh_charged", "aged_charged"):
        scan = demo / "twins" / preset / "waxs_scan.h5"
        assert f"<dt>waxs</dt><dd>{scan}</dd>" in html


def test_report_has_the_study_sections_and_found_vs_truth(demo: Path, tmp_path: Path) -> None:
    html = (demo / "report.html").read_text()
    assert html.count('data-name="comparison"') == 1  # the states on one page
    # both cells unrolled along the spiral (the caption is the image's alt text too)
    assert html.count("<figcaption>Every modality unrolled at the same arc positions, along") == 2
    assert html.count("around the cell centre (polar") == 0
    assert html.count("<dt>defect share of the anode</dt>") == 2
    assert html.count("found vs truth (digital twin)") == 2  # the demo names its truth files
    assert html.count("class agreement (found case = true case)") == 2
    assert html.count("defect share of the anode, found / true") == 2
    # without truth (and with one cell): no comparison with a truth, no states compared
    alone = run_report([demo / "aged_charged" / "results.h5"], tmp_path / "alone.html")
    text = alone.read_text()
    assert "found vs truth" not in text and 'data-name="comparison"' not in text
    assert text.count('data-name="saxs_profiles"') == 1


def test_report_renders_in_headless_chromium(demo: Path, tmp_path: Path) -> None:
    """Every figure is an image that the browser decodes (naturalWidth > 0), and each
    section's figures are among them: per cell the study's figures, once the comparison."""
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (make test installs Debian's chromium when it can)")
    script = (
        "<script>window.onload=()=>{const imgs=[...document.images];"
        "const shown=[...document.querySelectorAll('figure')]"
        ".filter(f=>f.querySelector('img').naturalWidth>0).map(f=>f.dataset.name);"
        "document.title='rendered:'+imgs.filter(i=>i.naturalWidth>0).length+'/'+imgs.length"
        "+':'+shown.join(',');}</script>"
    )
    page = tmp_path / "probe.html"
    page.write_text((demo / "report.html").read_text().replace("</body>", script + "</body>"))
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    title = result.stdout.split("<title>")[1].split("</title>")[0]
    counts, names = title.removeprefix("rendered:").split(":")
    rendered, total = counts.split("/")
    assert int(total) >= 2 * len(FIGURES) + 1 and rendered == total
    shown = names.split(",")
    assert {name: shown.count(name) for name in (*FIGURES, "comparison")} == {
        **dict.fromkeys(FIGURES, 2),
        "comparison": 1,
    }


def test_the_demo_names_ct_volumes_where_a_twin_has_them(tmp_path: Path) -> None:
    """A twin folder with both CT volumes gets `xct`/`nct` in the demo's configuration (the
    aged cell's correlative section), one with none gets neither."""
    for preset in ("fresh_charged", "aged_charged"):
        (tmp_path / "twins" / preset).mkdir(parents=True)
    for name in ("xct.tif", "nct.tif"):
        (tmp_path / "twins" / "aged_charged" / name).write_bytes(b"")
    config = load_config(demo_config(tmp_path, tmp_path / "twins", "tiny"))
    fresh, aged = config.cells
    assert fresh.xct is None and fresh.nct is None
    assert (aged.xct.name, aged.nct.name) == ("xct.tif", "nct.tif")


def test_text_from_inputs_is_escaped(tmp_path: Path) -> None:
    from jellyroll.report import Report

    report = Report("<b>title</b>")
    report.section("cell <script>alert(1)</script>").note("a < b & c")
    html = report.render()
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_configuration_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[cells]]\nname = "a"\nwaxs = "w.h5"\nsaxs = "s.h5"\n'
        '[reconstruct]\nmethod = "art"\n[saxs]\nnpts = 3\n'
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "reconstruct.method" in message and "saxs.npts" in message and "bad.toml" in message
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2 and "reconstruct.method" in result.output


def test_every_stage_option_is_reachable_from_the_toml(tmp_path: Path) -> None:
    path = tmp_path / "full.toml"
    path.write_text(
        '[[cells]]\nname = "a"\nwaxs = "w.h5"\nsaxs = "s.h5"\n'
        '[waxs]\nfilter = "trimmed-mean"\n[reconstruct]\nself_absorption = false\n'
        "[maps]\nlabel_threshold = 0.1\ndenoise = false\n[maps.dstar]\ntolerance = 0.05\n"
        '[defects]\ncritical_diameter_um = 45.0\n[dask]\nscheduler = "local:2"\n'
    )
    config = load_config(path)
    assert config.waxs.filter == "trimmed-mean" and config.saxs.filter == "sigma-clip"
    assert config.reconstruct.self_absorption is False
    assert config.maps.label_threshold == 0.1 and config.maps.dstar.tolerance == 0.05
    assert config.defects.critical_diameter_um == 45.0 and config.dask.scheduler == "local:2"


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../up"])
def test_cell_names_are_plain_folder_names(tmp_path: Path, name: str) -> None:
    path = tmp_path / "bad_name.toml"
    path.write_text(f'[[cells]]\nname = "{name}"\nwaxs = "w.h5"\nsaxs = "s.h5"\n')
    with pytest.raises(ConfigError, match=r"cells\.0\.name"):
        load_config(path)


def test_a_killed_run_resumes_to_the_uninterrupted_result(
    demo: Path, tmp_path: Path, jellyroll_cli
) -> None:
    """`jellyroll run` killed (os._exit, no cleanup) in the middle of the first cell's SAXS
    maps, then run again: every run file and results file equals the uninterrupted run's,
    and no temporary, lock or work file is left."""
    _jellyroll = jellyroll_cli
    config = demo_config(tmp_path, demo / "twins", "tiny")
    # the stages before the kill are the reference's, copied: the first to run is the kill's
    first = tmp_path / "fresh_charged"
    first.mkdir(exist_ok=True)
    saxs = ("saxs_run.h5", "saxs_run.sinogram.h5", "saxs_run.reconstruction.h5")
    for done in [*(demo / first.name).glob("waxs_run*"), *(demo / first.name / n for n in saxs)]:
        shutil.copy2(done, first / done.name)
    kill = ("jellyroll.pipeline.run", "run_maps", 0)
    copied = {path: path.stat().st_mtime_ns for path in first.iterdir()}
    assert _jellyroll("run", str(config), kill=kill) == 137
    assert {path: path.stat().st_mtime_ns for path in copied} == copied  # up to date
    assert _jellyroll("run", str(config)) == 0
    for cell in ("fresh_charged", "aged_charged"):
        for name in ("waxs_run.h5", "saxs_run.h5", "results.h5"):
            with h5py.File(demo / cell / name) as want, h5py.File(tmp_path / cell / name) as got:
                for key in _datasets(want["entry"]):
                    assert np.array_equal(
                        want["entry"][key][()], got["entry"][key][()], equal_nan=True
                    ), (cell, name, key)
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".") or
                 p.suffix in (".partial", ".part", ".lock")]  # fmt: skip
    assert leftovers == []


def _datasets(group: h5py.Group) -> list[str]:
    """Paths of the numeric datasets below ``group`` (provenance and text left out)."""
    found: list[str] = []

    def visit(name: str, item) -> None:
        if (
            isinstance(item, h5py.Dataset)
            and item.dtype.kind in "fiub"
            and "provenance" not in name
        ):
            found.append(name)

    group.visititems(visit)
    return found

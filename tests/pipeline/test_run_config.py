"""The run configuration: keys that mean nothing alone, inputs that do not exist, the Dask
scheduler, and the demo's configuration in any folder."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.io.lock import OutputLockedError, lock_path
from jellyroll.phantom.write import demo_config
from jellyroll.pipeline import ConfigError, load_config, run_pipeline
from jellyroll.pipeline.config import missing_inputs
from jellyroll.pipeline.run import PREVIOUS_REPORT, REPORT, RUN_LOCK, _scan_channels, _scan_mask
from jellyroll.report.html import Report

CELL = '[[cells]]\nname = "a"\nwaxs = "w.h5"\nsaxs = "s.h5"\n'


def _config(folder: Path, text: str) -> Path:
    path = folder / "run.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("keys", "what"),
    [
        ('location = "loc.h5"\n', r"cells\.0\.location: .*needs xct and nct"),
        ('operando_log = "log.csv"\n', r"cells\.0\.operando_log: .*needs operando"),
    ],
)
def test_keys_that_mean_nothing_alone_are_refused(tmp_path: Path, keys: str, what: str) -> None:
    """A location without the volumes it places the slice in, or a potentiostat log without
    its series, were accepted and silently ignored by the run."""
    with pytest.raises(ConfigError, match=what):
        load_config(_config(tmp_path, CELL + keys))


VOLUMES = 'xct = "x.tif"\nnct = "n.tif"\n'


def test_a_link_without_its_3d_bends_is_refused(tmp_path: Path) -> None:
    """``[nxct] bends = false`` for a cell naming both volumes: the NXCT and location
    stages ran, then the link failed on a bend table without columns and left the link file
    of the run before (the red team's run)."""
    with pytest.raises(ConfigError, match=r"nxct\.bends: false, but a cell names xct and nct"):
        load_config(_config(tmp_path, CELL + VOLUMES + "[nxct]\nbends = false\n"))


@pytest.mark.parametrize(
    ("cell", "sections", "refused"),
    [
        (CELL, "[nxct]\nbend_slice_step = 2\n[link]\nlargest_case_a = 10\n", ["nxct", "link"]),
        (CELL, "[locate]\nmax_tilt_deg = 2.0\n[operando]\nring_width_um = 60.0\n",
         ["locate", "operando"]),
        (CELL + VOLUMES + 'location = "l.h5"\n', "[nxct]\nbend_slice_step = 2\n[locate]\n"
         "max_tilt_deg = 2.0\n", ["locate"]),
        (CELL + VOLUMES, "[nxct]\nbend_slice_step = 2\n[locate]\nmax_tilt_deg = 2.0\n"
         "[link]\nlargest_case_a = 10\n", []),
        (CELL + 'operando = "series"\n', "[operando]\nring_width_um = 60.0\n", []),
        (CELL, "[dask]\nworkers = 8\n", ["dask"]),
        (CELL, '[dask]\nscheduler = "local:4"\nworkers = 8\n', ["dask"]),
        (CELL, '[dask]\nscheduler = "local"\nslurm = { queue = "gpu" }\n', ["dask"]),
        (CELL, '[dask]\nscheduler = "local"\nworkers = 8\n', []),
        (CELL, '[dask]\nscheduler = "slurm"\nworkers = 8\nslurm = { queue = "gpu" }\n', []),
    ],
)  # fmt: skip
def test_a_section_read_by_no_stage_is_refused(
    tmp_path: Path, cell: str, sections: str, refused: list[str]
) -> None:
    """[nxct], [locate], [link] and [operando] for cells without volumes or series, and
    [dask] workers without a scheduler that starts them (and slurm without SLURM), were
    ignored without a word, and the report listed them among the run's settings (workers =
    8 alone: every stage in this process). Each is refused, named; where a cell reads it,
    it is taken."""
    path = _config(tmp_path, sections + cell)
    if not refused:
        load_config(path)
        return
    with pytest.raises(ConfigError) as error:
        load_config(path)
    named = [line.split(":")[0].strip() for line in str(error.value).splitlines()[1:]]
    assert named == refused
    assert "applies to no cell" in str(error.value) or "is read only with" in str(error.value)


def test_a_missing_input_is_reported_by_its_setting_before_any_stage(tmp_path: Path) -> None:
    """A missing CT volume (or truth, location, operando folder) was found only after the
    reduction, reconstruction, maps and diagnosis of every cell had run."""
    for name in ("w.h5", "s.h5"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "series").write_text("a file, not the series' folder")
    keys = 'xct = "x.tif"\nnct = "n.tif"\ntruth = "truth.h5"\noperando = "series"\n'
    path = _config(tmp_path, f'output = "out"\n{CELL}{keys}')
    config = load_config(path)
    with pytest.raises(ConfigError) as error:
        run_pipeline(config)
    lines = str(error.value).splitlines()
    assert lines == [
        f"cells.0.xct: {tmp_path.resolve() / 'x.tif'} does not exist",
        f"cells.0.nct: {tmp_path.resolve() / 'n.tif'} does not exist",
        f"cells.0.truth: {tmp_path.resolve() / 'truth.h5'} does not exist",
        f"cells.0.operando: {tmp_path.resolve() / 'series'} is not a folder (give the folder "
        "of the series' scans)",
    ]
    assert not (tmp_path / "out").exists()  # no stage ran
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 1 and "cells.0.xct:" in result.output


def test_volumes_given_as_hdf5_datasets_are_inputs_that_exist(tmp_path: Path) -> None:
    """``file.h5::/path`` (the form nxct, locate and link accept) was reported as a file
    that does not exist."""
    for name in ("w.h5", "s.h5", "volumes.h5"):
        (tmp_path / name).write_bytes(b"")
    keys = 'xct = "volumes.h5::/xray"\nnct = "volumes.h5::/neutron"\n'
    config = load_config(_config(tmp_path, f'output = "out"\n{CELL}{keys}'))
    assert missing_inputs(config) == []


@pytest.mark.parametrize("scheduler", ["local:0", "local:abc", "local:", "locale", "dask"])
def test_an_unusable_dask_scheduler_is_refused_by_the_configuration(
    tmp_path: Path, scheduler: str
) -> None:
    """ "local:0" hung the run (a cluster of no worker), "local:abc" ended on a bare int()
    error, once the configuration had been accepted."""
    with pytest.raises(ConfigError, match=r"dask\.scheduler: .*'local:N' \(N >= 1"):
        load_config(_config(tmp_path, CELL + f'[dask]\nscheduler = "{scheduler}"\n'))


@pytest.mark.parametrize("scheduler", ["local", "local:1", "local:16", "slurm", "tcp://h:8786"])
def test_the_documented_dask_schedulers_are_accepted(tmp_path: Path, scheduler: str) -> None:
    config = load_config(_config(tmp_path, CELL + f'[dask]\nscheduler = "{scheduler}"\n'))
    assert config.dask.scheduler == scheduler


def test_the_demo_configuration_holds_any_folder_name(tmp_path: Path) -> None:
    """A folder name with a backslash or a quote was written into the TOML unescaped: the
    demo's configuration did not parse (or named another path)."""
    twins = tmp_path / 'my "twins" \\ v2\tnew'
    for preset in ("fresh_charged", "aged_charged"):
        (twins / preset).mkdir(parents=True)
    for name in ("xct.tif", "nct.tif"):
        (twins / "aged_charged" / name).write_bytes(b"")
    config = load_config(demo_config(tmp_path, twins, "tiny"))
    fresh, aged = config.cells
    assert fresh.waxs == twins.resolve() / "fresh_charged" / "waxs_scan.h5"
    assert aged.truth == twins.resolve() / "aged_charged" / "truth.h5"
    assert aged.xct == twins.resolve() / "aged_charged" / "xct.tif"


@pytest.mark.parametrize(
    ("cells", "what"),
    [
        (
            '[[cells]]\nname = "fresh"\nlabel = "charged"\nwaxs = "w.h5"\nsaxs = "s.h5"\n'
            '[[cells]]\nname = "aged"\nlabel = "charged"\nwaxs = "w.h5"\nsaxs = "s.h5"\n',
            r"cells 'fresh', 'aged' have the same label \['charged'\]",
        ),
        (
            '[[cells]]\nname = "fresh"\nwaxs = "w.h5"\nsaxs = "s.h5"\n'
            '[[cells]]\nname = "fresh2"\nlabel = "fresh"\nwaxs = "w.h5"\nsaxs = "s.h5"\n',
            r"cells 'fresh', 'fresh2' have the same label \['fresh'\]",
        ),
    ],
)
def test_cells_the_report_could_not_tell_apart_are_refused(
    tmp_path: Path, cells: str, what: str
) -> None:
    """A [[cells]] block copied with its label (or a label equal to another cell's name)
    was accepted: the report's summary rows, cell sections and comparison bars carried the
    same label twice, and nothing told the fresh cell from the aged one."""
    with pytest.raises(ConfigError, match=what):
        load_config(_config(tmp_path, cells))


def test_cell_names_that_differ_only_in_case_are_refused(tmp_path: Path) -> None:
    """ "Fresh" and "fresh" were accepted: on a case-insensitive file system (macOS,
    Windows) both cells wrote <output>/fresh, each overwriting the other's results."""
    text = CELL.replace('"a"', '"Fresh"') + CELL.replace('"a"', '"fresh"')
    with pytest.raises(ConfigError, match=r"\['Fresh', 'fresh'\] differ only in case"):
        load_config(_config(tmp_path, text))


def test_inputs_where_the_run_writes_are_refused_before_any_stage(tmp_path: Path) -> None:
    """With the output folder ".", cell a's raw WAXS scan named `b/waxs_run.h5` was replaced
    by cell b's run file, and a truth named as the cell's own `results.h5` by its results
    (then refused as no truth file), exit 0 for the first. Refused, named; a cell's own
    `location.h5` given as its location is read, not written (the run locates no cell
    that names one), and an input of another name in a cell's folder is no output."""
    for name in ("w.h5", "s.h5", "b/waxs_run.h5", "a/results.h5", "a/location.h5", "b/raw.h5",
                 "report.html", "x.tif", "n.tif"):  # fmt: skip
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    cells = (
        '[[cells]]\nname = "a"\nwaxs = "b/waxs_run.h5"\nsaxs = "s.h5"\ntruth = "a/results.h5"\n'
        'xct = "x.tif"\nnct = "n.tif"\nlocation = "a/location.h5"\n'
        '[[cells]]\nname = "b"\nwaxs = "b/raw.h5"\nsaxs = "report.html"\n'
    )
    config = load_config(_config(tmp_path, f'output = "."\n{cells}'))
    with pytest.raises(ConfigError) as error:
        run_pipeline(config)
    root = tmp_path.resolve()
    assert str(error.value).splitlines() == [
        f"cells.0.waxs: {root / 'b/waxs_run.h5'} is where the run writes cell b's waxs_run.h5: "
        f"it would be replaced. Move it out of {root / 'b'}, or give another output",
        f"cells.0.truth: {root / 'a/results.h5'} is where the run writes cell a's results.h5: "
        f"it would be replaced. Move it out of {root / 'a'}, or give another output",
        f"cells.1.saxs: {root / 'report.html'} is the run's report file; move it out of the way",
    ]


@pytest.mark.parametrize("name", ["report.html", "Report.previous.html"])
def test_a_cell_named_as_the_report_is_refused(tmp_path: Path, name: str) -> None:
    """Its folder would be the report's: every stage ran, then the report failed with
    "out/report.html is a folder"."""
    with pytest.raises(ConfigError, match="is the name of the run's report"):
        load_config(_config(tmp_path, CELL.replace('"a"', f'"{name}"')))


def test_a_tilde_in_a_path_is_the_home_folder(tmp_path: Path, monkeypatch) -> None:
    """`output = "~/study"` wrote the results into a folder literally named "~" inside the
    configuration's folder (and `waxs = "~/data/w.h5"` was looked for there)."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    text = 'output = "~/study"\n' + CELL.replace('"w.h5"', '"~/data/w.h5"')
    (tmp_path / "cfg").mkdir()
    config = load_config(_config(tmp_path / "cfg", text))
    assert config.output == home.resolve() / "study"
    assert config.cells[0].waxs == home.resolve() / "data" / "w.h5"


def test_a_second_run_into_one_output_folder_is_refused_while_the_first_lives(
    tmp_path: Path,
) -> None:
    """Each stage locked only its own file: a second `jellyroll run` with other [waxs]
    options, its stages falling between the first's, left the first going on from the
    second's sinogram (its report stated npt 400 over maps of 300 bins, exit 0). The inputs
    here are empty files: a run that is not refused fails on them, not on the lock."""
    for name in ("w.h5", "s.h5"):
        (tmp_path / name).write_bytes(b"")
    config = load_config(_config(tmp_path, f'output = "out"\n{CELL}'))
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = lock_path(config.output / RUN_LOCK)
        lock.parent.mkdir()
        lock.write_text(json.dumps({"pid": first.pid, "host": socket.gethostname()}))
        with pytest.raises(OutputLockedError, match=f"another `jellyroll run`.*{first.pid}"):
            run_pipeline(config)
    finally:
        first.kill()
        first.wait()
    assert sorted(p.name for p in config.output.iterdir()) == [lock.name]  # nothing written


def test_a_run_that_fails_leaves_no_report_of_the_run_before_as_its_own(tmp_path: Path) -> None:
    """A run that failed left the folder's report.html of the run before (other options,
    other inputs) in place, nothing on it saying so. It now lies aside as
    report.previous.html until a run writes its own. The inputs here are empty files: the
    run fails on them."""
    for name in ("w.h5", "s.h5"):
        (tmp_path / name).write_bytes(b"")
    config = load_config(_config(tmp_path, f'output = "out"\n{CELL}'))
    config.output.mkdir()
    before = Report("the run before").render()  # a report of jellyroll's, not the user's page
    (config.output / REPORT).write_text(before)
    with pytest.raises(Exception, match=r"w\.h5"):
        run_pipeline(config)
    assert not (config.output / REPORT).exists()
    assert (config.output / PREVIOUS_REPORT).read_text() == before


def _sinogram_file(path: Path) -> Path:
    """A SPEC section 6 sinogram (4 angles x 5 translations x 6 q) as another program
    writes it."""
    with h5py.File(path, "w") as f:
        group = f.create_group("/entry/sinogram")
        group["data"] = np.ones((4, 5, 6), np.float32)
        group["errors"] = np.full((4, 5, 6), 0.1, np.float32)
        group["rotation_angle"] = np.linspace(0.0, 135.0, 4)
        group["translation"] = np.linspace(-0.2, 0.2, 5)
        group["q"] = np.linspace(1.0, 2.0, 6)
    return path


def test_a_cells_mask_is_for_its_frame_scans_and_refused_with_sinograms_only(
    tmp_path: Path,
) -> None:
    """A cell's mask beside two sinogram files hid nothing (their data are integrated
    already), exit 0; beside a frame scan and a sinogram file (or integrated patterns) it
    is the frame scan's."""
    waxs = _sinogram_file(tmp_path / "w.h5")
    _sinogram_file(tmp_path / "s.h5")
    np.save(tmp_path / "mask.npy", np.zeros((4, 4), np.uint8))
    config = _config(tmp_path, CELL + 'mask = "mask.npy"\n')
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code != 0
    assert "a sinogram reduced already" in result.output and "a mask" in result.output
    with h5py.File(waxs, "w") as f:  # now WAXS frames
        f["/entry/instrument/detector/data"] = np.zeros((2, 4, 4), np.int32)
    cell = load_config(config).cells[0]
    assert _scan_mask(cell, "waxs") == tmp_path / "mask.npy"
    assert _scan_mask(cell, "saxs") is None
    with h5py.File(tmp_path / "s.h5", "w") as f:  # now SAXS patterns integrated already
        f["/entry/integrated/intensity"] = np.ones((2, 6))
    assert _scan_mask(cell, "waxs") == tmp_path / "mask.npy"
    assert _scan_mask(cell, "saxs") is None


def _sinogram_run(folder: Path, kind: str, q: np.ndarray) -> Path:
    """``folder/<kind>_run.h5`` whose reduce stage file holds a sinogram q axis ``q``."""
    from jellyroll.results.store import stage_file

    run = folder / f"{kind}_run.h5"
    with h5py.File(stage_file(run, "reduce"), "w") as f:
        f["/entry/sinogram/q"] = q
    return run


def test_each_scan_reconstructs_the_configured_q_ranges_it_holds(tmp_path: Path) -> None:
    """`[reconstruct] channels` is one list for both scans of a cell (the WAXS windows and
    the SAXS range): since the reconstruction refuses a range beside its q axis, the
    WAXS scan of such a run was refused (exit 1). Each scan now keeps the ranges it holds;
    a range that no scan of the cell holds (a typo) is refused, naming it."""
    from jellyroll.recon.options import ReconstructOptions

    waxs = _sinogram_run(tmp_path, "waxs", np.linspace(0.8, 5.2, 300))
    saxs = _sinogram_run(tmp_path, "saxs", np.linspace(0.008, 0.3, 500))
    both = ReconstructOptions(channels="1.55:2.05,4.38:4.7,0.008:0.3")
    assert _scan_channels(both, waxs).channels == "1.55:2.05,4.38:4.7"
    assert _scan_channels(both, saxs, [waxs]).channels == "0.008:0.3"
    assert _scan_channels(ReconstructOptions(), saxs, [waxs]).channels == "all"
    # none held: left whole, for the reconstruction to refuse naming them
    assert _scan_channels(both.model_copy(update={"channels": "7:8"}), waxs).channels == "7:8"
    typo = both.model_copy(update={"channels": "1.55:2.05,0.008:0.3,15:16"})
    with pytest.raises(ConfigError, match=r"channels: no q channel of any scan.*within 15:16"):
        _scan_channels(typo, saxs, [waxs])

"""`jellyroll report` on results files as they come: what it refuses to write over, and how
it shows what a results file does not record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.text import Text
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.defects.run import run_diagnose, summary
from jellyroll.io.provenance import OutputWouldOverwriteInputError
from jellyroll.report import run as report_run
from jellyroll.report import run_report
from jellyroll.results.store import RunFileError

N = 48


def _disk_map() -> np.ndarray:
    """A disk of SAXS intensity 1 with one bright spot (an agglomerate), noise +-0.05."""
    y, x = np.mgrid[:N, :N] - (N - 1) / 2
    disk = (np.hypot(x, y) < 0.4 * N) + 4.0 * (np.hypot(x - 5, y) < 2)
    return disk + 0.05 * np.random.default_rng(1).standard_normal((N, N))


@pytest.fixture(scope="module")
def results(tmp_path_factory, saxs_maps_run) -> Path:
    """A results file of a synthetic SAXS map (fast: no twin, no reconstruction)."""
    folder = tmp_path_factory.mktemp("results")
    path = folder / "results.h5"
    run_diagnose({"saxs": saxs_maps_run(folder, _disk_map())}, path, name="cell", label="cell")
    return path


def _copy(results: Path, to: Path, *, name: str, label: str | None = None, **summary) -> Path:
    """A copy of ``results`` as cell ``name``, its summary values updated (None: removed)."""
    shutil.copyfile(results, to)
    with h5py.File(to, "r+") as f:
        entry = f["entry"]
        values = json.loads(entry["summary"].attrs["values"])
        values.update(summary)
        entry["summary"].attrs["values"] = json.dumps(
            {k: v for k, v in values.items() if v is not None}
        )
        for key, text in (("name", name), ("label", label or name)):
            del entry[key]
            entry[key] = text
    return to


def test_the_report_never_replaces_an_input(results: Path, tmp_path: Path) -> None:
    """`jellyroll report R.h5 -o R.h5` replaced the results file with the HTML report (and
    a truth, NXCT, link or operando file named as output the same): refused, untouched."""
    cell = _copy(results, tmp_path / "cell.h5", name="cell")
    before = cell.read_bytes()
    with pytest.raises(OutputWouldOverwriteInputError, match=r"cell\.h5"):
        run_report([cell], cell)
    truth = tmp_path / "truth.h5"
    truth.write_bytes(b"truth")
    with pytest.raises(OutputWouldOverwriteInputError, match=r"truth\.h5"):
        run_report([cell], truth, truth={"cell": truth})
    assert truth.read_bytes() == b"truth"
    result = CliRunner().invoke(app, ["report", str(cell), "-o", str(cell)])
    assert result.exit_code == 1 and "one of the inputs" in result.output
    assert cell.read_bytes() == before


def test_counts_a_results_file_lacks_are_shown_as_not_recorded(
    results: Path, tmp_path: Path
) -> None:
    """A summary without case_a / unresolved / defect_share (an older results file) was
    shown with 0 case A and 0 unresolved, as if counted."""
    older = _copy(
        results, tmp_path / "older.h5", name="older", case_a=None, unresolved=None,
        defect_share=None, case_b=1,
    )  # fmt: skip
    page = run_report([older], tmp_path / "report.html").read_text()
    assert "case A not recorded, 1 case B, unresolved not recorded" in page
    assert "0 case A" not in page and "0 unresolved" not in page
    assert "<dt>defect share of the anode</dt><dd>not recorded</dd>" in page
    summary = report_run.summary_table([report_run.require_diagnosis(older)])
    assert summary.loc[0, "case A"] == "not recorded"
    assert summary.loc[0, "defect share of anode (%)"] == "not recorded"


def test_a_defect_share_without_value_is_shown_as_no_value(results: Path, tmp_path: Path) -> None:
    """A slice without anode pixels has a NaN defect share: the cell's facts and the truth
    section printed "nan %"."""
    cell = _copy(results, tmp_path / "none.h5", name="none", defect_share=float("nan"))
    page = run_report([cell], tmp_path / "report.html").read_text()
    assert "nan %" not in page.lower()
    assert "<dt>defect share of the anode</dt><dd>no value (the study: &lt; 10 %)</dd>" in page


def test_the_psf_the_sizes_were_deconvolved_by_is_shown(results: Path, tmp_path: Path) -> None:
    """The diagnosis records the PSF it used and the one the map measures: both shown."""
    given = _copy(
        results, tmp_path / "given.h5", name="given", psf_fwhm_um=20.0,
        psf_measured_fwhm_um=27.5, psf_measured=0,
    )  # fmt: skip
    page = run_report([given], tmp_path / "report.html").read_text()
    assert "<dd>20 um (given, the map&#x27;s layers measure 27.5 um)</dd>" in page
    older = _copy(results, tmp_path / "older.h5", name="older", psf_fwhm_um=None)
    page = run_report([older], tmp_path / "older.html").read_text()
    assert "<dt>agglomerates deconvolved by (PSF FWHM)</dt><dd>not recorded</dd>" in page


def test_cells_diagnosed_with_other_critical_diameters_show_each(
    results: Path, tmp_path: Path
) -> None:
    """Two cells diagnosed with 40 and 50 um: the report said 'above nan um (case B)' and
    'critical equivalent diameter of nan um'."""
    cells = [
        _copy(results, tmp_path / "a.h5", name="a", critical_diameter_um=40.0),
        _copy(results, tmp_path / "b.h5", name="b", critical_diameter_um=50.0),
    ]
    page = run_report(cells, tmp_path / "report.html").read_text()
    assert "nan um" not in page
    assert "critical equivalent diameter of 40 um for a, 50 um for b" in page
    table = report_run.summary_table([report_run.require_diagnosis(p) for p in cells])
    assert list(table["critical diameter (um)"]) == [40.0, 50.0]
    assert "above the critical diameter (case B)" in table.columns
    same = report_run.summary_table([report_run.require_diagnosis(cells[0])])
    assert "above 40 um (case B)" in same.columns and "critical diameter (um)" not in same


def test_a_results_file_without_its_critical_diameter_is_refused_by_name(
    results: Path, tmp_path: Path
) -> None:
    """Its case A / B counts mean nothing without it; the report stopped on a bare
    `error: 'critical_diameter_um'` naming no file."""
    older = _copy(results, tmp_path / "older.h5", name="older", critical_diameter_um=None)
    with pytest.raises(RunFileError, match=r"older\.h5.*critical_diameter_um"):
        run_report([older], tmp_path / "report.html")
    result = CliRunner().invoke(app, ["report", str(older), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1 and "older.h5" in result.output
    assert not (tmp_path / "r.html").exists()


def test_a_dollar_in_a_cell_label_is_shown_as_written(
    results: Path, tmp_path: Path, monkeypatch
) -> None:
    """Matplotlib parsed a label with two `$` as mathtext: 'fresh $x^$' crashed the
    report, 'aged $x$' was drawn as an italic x."""
    drawn = []
    original = report_run.figures.comparison_figure

    def keep(rows):
        figure = original(rows)
        drawn.append(figure)
        return figure

    monkeypatch.setattr(report_run.figures, "comparison_figure", keep)
    labels = ["fresh $x^$", "aged $x$"]
    cells = [
        _copy(results, tmp_path / f"{k}.h5", name=f"c{k}", label=label)
        for k, label in enumerate(labels)
    ]
    page = run_report(cells, tmp_path / "report.html").read_text()
    assert 'data-name="comparison"' in page
    ticks = drawn[0].axes[0].get_xticklabels()
    # what matplotlib draws: the text after its own unescaping, and not as maths
    assert [Text()._preprocess_math(tick.get_text()) for tick in ticks] == [
        (label, False) for label in labels
    ]


def test_a_cell_whose_collector_was_not_traced_shows_no_bend_count(
    results: Path, tmp_path: Path
) -> None:
    """A diagnosis that could not trace the Cu collector counts NaN bends (not measured);
    the report must say so, not print "nan" or 0."""
    cell = _copy(results, tmp_path / "cell.h5", name="cell", bends=float("nan"))
    page = run_report([cell], tmp_path / "report.html").read_text()
    summary = report_run.summary_table([report_run.require_diagnosis(cell)])
    assert summary.loc[0, "bends"] == "collector not traced"
    assert ">nan<" not in page


def test_two_diagnoses_of_one_cell_keep_their_own_critical_diameter(
    results: Path, tmp_path: Path
) -> None:
    """`jellyroll report runA/cell/results.h5 runB/cell/results.h5` (one cell diagnosed
    with 40 and with 50 um, to compare): the critical diameters were kept by cell name, so
    the second replaced the first; the summary said "above 50 um (case B)" for both rows,
    both histograms drew 50 um, and the two rows and sections had the same label."""
    cells = []
    for run, critical in (("runA", 40.0), ("runB", 50.0)):
        (tmp_path / run / "cell").mkdir(parents=True)
        cells.append(
            _copy(
                results,
                tmp_path / run / "cell" / "results.h5",
                name="cell",
                label="fresh",
                critical_diameter_um=critical,
            )
        )
    page = run_report(cells, tmp_path / "report.html").read_text()
    assert "above 50 um (case B)" not in page
    assert "critical equivalent diameter of 40 um for fresh (runA), 50 um for fresh (runB)" in page
    assert "<h2>Cell fresh (runA)</h2>" in page and "<h2>Cell fresh (runB)</h2>" in page
    shown = report_run.distinct_labels([report_run.require_diagnosis(p) for p in cells])
    table = report_run.summary_table(shown)
    assert list(table["cell"]) == ["fresh (runA)", "fresh (runB)"]
    assert list(table["critical diameter (um)"]) == [40.0, 50.0]


def test_cells_of_one_label_are_told_apart_by_name(results: Path, tmp_path: Path) -> None:
    """Two cells labelled alike (a copied label) were shown as two identical rows."""
    cells = [
        _copy(results, tmp_path / f"{name}.h5", name=name, label="charged")
        for name in ("fresh", "aged")
    ]
    page = run_report(cells, tmp_path / "report.html").read_text()
    assert "<h2>Cell charged (fresh)</h2>" in page and "<h2>Cell charged (aged)</h2>" in page
    with pytest.raises(ValueError, match=r"fresh\.h5: given twice"):
        run_report([cells[0], cells[0]], tmp_path / "twice.html")


def test_a_number_that_is_not_one_is_shown_as_no_value(results: Path, tmp_path: Path) -> None:
    """A cell without any valid d* (delithiated, featureless SAXS) had its median d* shown
    as "nan" in the summary (SPEC section 3: report "no value", not a number); so was the d*
    of a region-averaged profile without a valid one."""
    cell = _copy(results, tmp_path / "cell.h5", name="cell", median_d_star_nm=float("nan"))
    page = run_report([cell], tmp_path / "report.html").read_text()
    assert ">nan<" not in page
    assert "<td>no value</td>" in page


def test_table_numbers_of_a_few_mm_keep_their_digits() -> None:
    """Coordinates and arc lengths of a few mm were written in powers of ten to 3
    significant digits (x_um 4567.8 as "4.57e+03"): not the number of the results file."""
    import pandas as pd

    from jellyroll.report.html import Section

    section = Section("t")
    section.table(pd.DataFrame({"x_um": [4567.8, -747.2], "excess": [0.238, 2.45e-5]}))
    cells = section.items[0].split("<tbody>")[1]
    assert "e+03" not in cells
    assert "<td>4568</td>" in cells and "<td>-747</td>" in cells
    assert "<td>0.238</td>" in cells and "<td>2.45e-05</td>" in cells


def test_table_headings_name_the_quantity_and_its_unit() -> None:
    """Tables were headed by the results file's column names ("x_um", "excess_intensity",
    "d_star_inside_nm"): the headings now say "x (um)" and so on, while the table (and the
    files it came from) keep the names, which the column formats are keyed by."""
    import pandas as pd

    from jellyroll.figures import beside_threshold
    from jellyroll.report.html import Section

    names = ["x_um", "equivalent_diameter_um", "excess_intensity", "d_star_inside_nm",
             "area_um2", "depth_limited", "extent_axial_um", "d* (nm)", "case"]  # fmt: skip
    table = pd.DataFrame([[1.0, 50.04, 2.0, 9.5, 3.0, True, 4.0, 9.6, "B"]], columns=names)
    section = Section("t")
    section.table(table, formats={"equivalent_diameter_um": beside_threshold(50.0, "{:.3g}")})
    head, body = section.items[0].split("</thead>")
    assert head.split("<tr>")[1] == (
        "<th>x (um)</th><th>equivalent diameter (um)</th><th>excess intensity (a.u.)</th>"
        "<th>d* inside (nm)</th><th>area (um^2)</th><th>depth limited</th>"
        "<th>axial extent (um)</th><th>d* (nm)</th><th>case</th></tr>"
    )
    assert "<td>50.04</td>" in body and '<td class="text">yes</td>' in body
    assert list(table.columns) == names


def test_size_bins_end_with_an_open_bin_not_inf() -> None:
    """The link section's size-bin table showed the file's columns as they are: a last
    bin "100" to "inf", headed lower_um / upper_um, and counts aligned as text."""
    import pandas as pd

    from jellyroll.locate.link import bend_fraction_by_size
    from jellyroll.report.html import Section

    linked = pd.DataFrame({"equivalent_diameter_um": [45.0, 55.0, 130.0], "bend3d_id": [0, 1, 2]})
    bins = bend_fraction_by_size(linked, (0, 50, 100, np.inf))
    shown = report_run.size_bins_table(bins)
    assert list(shown["equivalent diameter"]) == ["0-50 um", "50-100 um", "100 um and more"]
    section = Section("t")
    section.table(shown)
    page = section.items[0]
    assert "inf" not in page and "_um" not in page
    last = page.split("<tr>")[-1]
    assert last == '<td class="text">100 um and more</td><td>1</td><td>1</td><td>1</td></tr>' + (
        "</tbody></table>"
    )


def test_run_settings_are_listed_by_name_not_as_python_text() -> None:
    """`jellyroll run` showed each stage's settings as a Python dict ("{'npt': 300,
    'threads': None, 'dstar': {...}}"): they are nested name / value lists now, None as
    not set, flags as yes / no, and a value from a file still escaped."""
    from jellyroll.report.html import Section

    section = Section("t")
    section.facts(
        {
            "settings: maps": {"npt": 300, "threads": None, "q_check": True,
                               "dstar": {"tolerance": 0.05}, "slurm": {}},
            "settings: locate": {"offsets_um": [-20.0, 0.0], "map": "<script>x</script>"},
        }
    )  # fmt: skip
    page = section.items[0]
    assert "{" not in page and "None" not in page and "True" not in page
    assert page.startswith("<dl><dt>settings: maps</dt><dd><dl><dt>npt</dt><dd>300</dd>")
    assert "<dt>threads</dt><dd>not set</dd><dt>q_check</dt><dd>yes</dd>" in page
    assert "<dt>dstar</dt><dd><dl><dt>tolerance</dt><dd>0.05</dd></dl></dd>" in page
    assert "<dt>slurm</dt><dd>none</dd>" in page
    assert "<dd>-20.0, 0.0</dd>" in page
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_a_diameter_beside_the_critical_one_is_never_shown_on_it() -> None:
    """A 50.04 um case-B agglomerate read "50" (3 significant digits) beside a critical
    diameter of 50 um, as if it were case A (up to 50); 50.01 read "50.0" in one decimal.
    Such values get the decimals that keep them on their side; case A's side (up to 50)
    holds "50" for 49.96."""
    from jellyroll.figures import beside_threshold

    three = beside_threshold(50.0, "{:.3g}")
    assert three(50.04) == "50.04" and three(49.96) == "50" and three(50.0) == "50"
    assert three(62.37) == "62.4" and three(4567.8) == "4568"  # others as before
    assert beside_threshold(50.0, "{:.1f}")(50.01) == "50.01"


@given(
    value=st.floats(1e-3, 1e4, allow_nan=False),
    threshold=st.floats(1e-3, 1e4, allow_nan=False),
    float_format=st.sampled_from(["{:.3g}", "{:.1f}", "{:.0f}"]),
)
def test_a_value_shown_beside_a_threshold_stays_on_its_side(
    value: float, threshold: float, float_format: str
) -> None:
    from jellyroll.figures import beside_threshold

    shown = float(beside_threshold(threshold, float_format)(value))
    assert (shown > threshold) == (value > threshold)


def test_a_value_a_hair_above_the_threshold_is_written_whole() -> None:
    """Past 6 decimals the value is written in full (its shortest exact form)."""
    from jellyroll.figures import beside_threshold

    assert float(beside_threshold(50.0, "{:.3g}")(50.0 + 1e-12)) > 50.0


def _with_profiles(
    results: Path,
    to: Path,
    *,
    dstar: dict | None = ...,  # type: ignore[assignment]
    empty: int | None = None,
) -> Path:
    """A copy of ``results`` with a regular-anode SAXS profile whose d* depends on the
    departure tolerance (6.8 nm at the study's 3 %, 8.5 nm at 8 %), recording ``dstar``
    as the d* parameters of its maps (None: not recorded; left out: as recorded); channel
    ``empty`` without a value (NaN)."""
    import pandas as pd

    from jellyroll.io.nexus import write_table

    _copy(results, to, name="cell")
    q = np.linspace(0.008, 0.3, 500)
    profile = pd.DataFrame({"q_A": q, "regular": q**-3.5 / (1 + (0.04 / q) ** 2)})
    if empty is not None:
        profile.loc[empty, "regular"] = np.nan
    with h5py.File(to, "r+") as f:
        write_table(f["entry"], "saxs_profiles", profile)
        summary = f["entry/summary"].attrs
        if dstar is None:
            summary.pop("dstar_parameters", None)
        elif dstar is not ...:
            summary["dstar_parameters"] = json.dumps(dstar)
    return to


def _region_dstar(page: str) -> str:
    """The d* cell of the regular anode in the report's region-averaged d* table."""
    table = page.split("<caption>d* of the region-averaged profiles</caption>")[1]
    return table.split('<td class="text">regular</td><td>')[1].split("<")[0]


def test_the_region_dstar_uses_the_parameters_the_maps_were_made_with(
    results: Path, tmp_path: Path, saxs_maps_run
) -> None:
    """`[maps.dstar] tolerance = 0.08` made the d* maps (and the summary's median d*) at
    8 %, but the report's region-averaged d* were fitted at the study's 3 %: the demo's
    regular anode read 11.7 nm beside a median d* of 14.9 nm (14.7 nm at 8 %), exit 0.
    The values are compared as the table writes them (3 significant digits)."""
    from jellyroll.saxs import departure_dstar

    q = np.linspace(0.008, 0.3, 500)
    intensity = q**-3.5 / (1 + (0.04 / q) ** 2)
    at = {t: f"{departure_dstar(q, intensity, tolerance=t).d_star_nm:.3g}" for t in (0.03, 0.08)}
    assert at[0.03] != at[0.08]
    # recorded by the diagnosis in the results file
    config = {"maps": {"dstar": {"tolerance": 0.08}}}
    cell = _with_profiles(results, tmp_path / "run.h5", dstar=config["maps"]["dstar"])
    page = run_report([cell], tmp_path / "run.html").read_text()
    assert _region_dstar(page) == at[0.08]
    assert "tolerance 0.08" in page
    # `jellyroll maps` then `jellyroll diagnose`: from the SAXS run's maps stage
    folder = tmp_path / "alone"
    folder.mkdir()
    run = saxs_maps_run(folder, _disk_map())
    from jellyroll.results.store import stage_file

    with h5py.File(stage_file(run, "maps"), "r+") as f:
        del f["entry/provenance/maps"]
        f["entry/provenance/maps"] = json.dumps({"configuration": config["maps"]})
    alone = folder / "results.h5"
    run_diagnose({"saxs": run}, alone, name="cell", label="cell")
    cell = _with_profiles(alone, tmp_path / "alone.h5")
    page = run_report([cell], tmp_path / "alone.html").read_text()
    assert _region_dstar(page) == at[0.08]
    # recorded by neither: the study's parameters, said so
    plain = _with_profiles(results, tmp_path / "plain.h5", dstar=None)
    page = run_report([plain], tmp_path / "plain.html").read_text()
    assert _region_dstar(page) == at[0.03]


def test_the_region_dstar_leaves_an_empty_channel_out_as_the_maps_do(
    results: Path, tmp_path: Path
) -> None:
    """A channel without a value (NaN in every pixel, so in the region profiles): the maps
    leave it out of the q grid, but the report's d* took its NaN for a break in the run,
    moved the fit window and read 12.2 nm for the 6.81 nm of the same profile whole, exit
    0. The table writes 3 significant digits."""
    from jellyroll.saxs import departure_dstar

    q = np.linspace(0.008, 0.3, 500)
    whole = f"{departure_dstar(q, q**-3.5 / (1 + (0.04 / q) ** 2)).d_star_nm:.3g}"
    cell = _with_profiles(results, tmp_path / "run.h5", dstar=None, empty=250)
    assert _region_dstar(run_report([cell], tmp_path / "run.html").read_text()) == whole


def test_nmc_shares_are_not_biased_by_the_noise_of_the_maps(
    results: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison's "NMC phase shares" clipped every pixel at 0 before summing: the
    zero-mean noise of a reconstruction was added to every phase, and a fully delithiated
    cathode (lithiated map: noise of 0.3 times the signal) drew a lithiated share of 0.10,
    exit 0. The diagnosis's summary now holds them, summed, then clipped, as the graphite
    shares, and the report shows them: the lithiated sum of pure noise is below 0 for this
    seed, so its share is exactly 0; a pixel without a value in one phase is left out of
    both."""
    import dataclasses

    from jellyroll.report.html import Section
    from jellyroll.results import Map, MapSet

    rng = np.random.default_rng(0)
    cathode = np.zeros((N, N))
    cathode[10:30, 10:30] = 1.0
    lithiated = 0.3 * rng.standard_normal((N, N)) * cathode
    delithiated = (1.0 + 0.3 * rng.standard_normal((N, N))) * cathode
    delithiated[0, 0] = lithiated[1, 1] = np.nan
    assert float(np.sum(lithiated[np.isfinite(lithiated + delithiated)])) < 0
    cell = report_run.require_diagnosis(results)
    maps = MapSet(
        {
            **cell.maps.maps,
            "nmc_lithiated": Map(lithiated, ""),
            "nmc_delithiated": Map(delithiated, ""),
        },
        cell.maps.x_um,
        cell.maps.y_um,
    )
    found = summary(maps, cell.agglomerates, cell.bends)
    shares = {name: found[f"{name}_share"] for name in ("nmc_lithiated", "nmc_delithiated")}
    assert shares == {"nmc_lithiated": 0.0, "nmc_delithiated": 1.0}
    rows = []
    monkeypatch.setattr(report_run.figures, "comparison_figure", lambda r: rows.extend(r))
    monkeypatch.setattr(Section, "figure", lambda *args, **kwargs: None)
    diagnosed = dataclasses.replace(cell, maps=maps, summary={**cell.summary, **found})
    cells = [diagnosed, dataclasses.replace(cell, label="other")]
    report_run._comparison_section(report_run.Report("t"), cells)
    assert rows[0]["nmc"] == {"nmc_lithiated": 0.0, "nmc_delithiated": 1.0}
    assert rows[1]["nmc"] == {}  # no NMC maps: no bar, not a share of 1


def _operando_file(path: Path, soc_units: str) -> Path:
    """A 3-step operando file (8 x 8 pixels of 10 um, one zone) along ``soc_units``."""
    import pandas as pd

    from jellyroll.results.operando import CORE_FIELDS, OperandoResult, write_operando

    n, size = 3, 8
    axis = (np.arange(size) - (size - 1) / 2) * 10.0
    zones = np.zeros((size, size), dtype=int)
    zones[3:5, 3:5] = 1
    curve = np.tile([[0.5, 0.3, 0.2]], (n, 1))
    table = pd.DataFrame(
        [{"id": 1, "x_um": 0.0, "y_um": 0.0, "soc_half": 0.6, "lag_soc": 0.1,
          "shrink_rate_um2_per_soc": 1234.5, "pixels": 4}]
    )  # fmt: skip
    result = OperandoResult(
        soc=np.array([0.0, 0.5, 1.0]), soc_units=soc_units, time_s=np.array([0, 1800, 3600.0]),
        soc_source="test", steps=["a", "b", "c"], x_um=axis, y_um=axis,
        shares=np.full((n, size, size, 3), 1 / 3), zones=zones,
        curves={"anode": curve, "zone_1": curve}, soc_half={"anode": 0.5, "zone_1": 0.6},
        pixels={"anode": 60, "zone_1": 4}, zones_table=table,
        cores={name: np.full((1, n), 10.0) for name in CORE_FIELDS}, shift_px=np.zeros((n, 2)),
        rotation_centre_mm=0.0,
    )  # fmt: skip
    return write_operando(path, result, {}, key="k", inputs=[])


def test_a_core_shrink_rate_along_time_is_labelled_per_hour(tmp_path: Path) -> None:
    """A series without states of charge runs along time (h): the zone table's
    half-lithiation point and lag were renamed to hours, but the core's shrink rate kept
    its file name "shrink_rate_um2_per_soc": 1234.5 um^2 per hour read as per state of
    charge, exit 0. Along the state of charge they name it (the file names were shown)."""
    from jellyroll.operando.timeline import SOC_UNITS
    from jellyroll.report.html import Report
    from jellyroll.report.run import _operando_section

    heads = {}
    for units in ("h", SOC_UNITS):
        report = Report("operando")
        _operando_section(report, "cell", _operando_file(tmp_path / f"{units}.h5", units))
        table = report.render().split("damaged zones: lag behind the regular anode")[1]
        heads[units] = table.split("</thead>")[0]
    assert "<th>core shrink rate (um^2 per h)</th>" in heads["h"]
    assert "per_soc" not in heads["h"] and "<th>lag (h)</th>" in heads["h"]
    assert "<th>core shrink rate (um^2 per state of charge)</th>" in heads[SOC_UNITS]
    assert "<th>lag (state of charge)</th>" in heads[SOC_UNITS] and "_soc" not in heads[SOC_UNITS]


def _truth_file(path: Path, true_diameter_um: float, n: int = 20, pixel: float = 20.0) -> Path:
    """A twin's truth file holding one true case-B agglomerate at the map's centre."""
    import pandas as pd

    from jellyroll.io.nexus import write_table

    labels = np.zeros((n, n), dtype=int)
    labels[9:11, 9:11] = 1
    with h5py.File(path, "w") as f:
        table = pd.DataFrame(
            [{"id": 1, "x_um": 0.0, "y_um": 0.0, "equivalent_diameter_um": true_diameter_um,
              "case": "B"}]
        )  # fmt: skip
        write_table(f.require_group("entry"), "agglomerates", table)
        for name, data in (
            ("agglomerate_id", labels),
            ("region_agglomerate", (labels > 0).astype(float)),
            ("anode_mask", np.ones((n, n))),
        ):
            f[f"entry/maps/{name}/data"] = data
        f["entry/scan/pixel_size_um"] = pixel
    return path


def _truth_page(tmp_path: Path, found: list[dict]) -> str:
    """The found-vs-truth section of a cell whose agglomerate table is ``found``, against
    a truth of one 61.25 um agglomerate, rendered."""
    import pandas as pd

    from jellyroll.report.html import Report
    from jellyroll.results import Diagnosis, Map, MapSet

    axis = (np.arange(20) - 9.5) * 20.0
    table = pd.DataFrame(found, columns=["id", "x_um", "y_um", "equivalent_diameter_um", "case"])
    cell = Diagnosis(
        "c", "c", MapSet({"saxs_intensity": Map(np.ones((20, 20)), "")}, axis, axis), table,
        pd.DataFrame(), pd.DataFrame(), summary={"critical_diameter_um": 50.0},
    )  # fmt: skip
    report = Report("t")
    report_run._truth_section(report, cell, _truth_file(tmp_path / "truth.h5", 61.25), 50.0)
    return report.render()


def test_a_found_diameter_beside_the_critical_one_keeps_its_side_against_truth(
    tmp_path: Path,
) -> None:
    """Found vs truth wrote the matched diameters with one decimal: a found 50.04 um case-B
    agglomerate read "50.0" beside the critical diameter of 50 um (case A's side), exit 0;
    it now reads "50.04" (:func:`beside_threshold`), the others keep one decimal."""
    found = {"id": 1, "x_um": 10.0, "y_um": 10.0, "equivalent_diameter_um": 50.04, "case": "B"}
    table = _truth_page(tmp_path, [found]).split("true agglomerates and their matches")[1]
    row = table.split("<tbody>")[1].split("</tr>")[0]
    assert "<td>50.04</td>" in row and "<td>61.2</td>" in row and "50.0<" not in row


def test_found_vs_truth_with_nothing_found_reads_no_value(tmp_path: Path) -> None:
    """No agglomerate found: precision and the median size error printed "nan %", where
    every other figure of the report reads "no value"."""
    page = _truth_page(tmp_path, [])
    assert "nan" not in page.lower().replace("nanometre", "")
    assert report_run.NO_VALUE in page


def test_an_agglomerate_cut_by_the_map_is_shown_as_a_lower_bound(results: Path) -> None:
    """The diagnosis flags an agglomerate whose fitted ellipse reaches the map's edge
    (``truncated``: its diameter a lower bound), but the report's table left the flag out:
    a 70 um case-B agglomerate cut by the map read as measured whole, exit 0."""
    import dataclasses

    from jellyroll.report.html import Report

    cell = report_run.require_diagnosis(results)
    table = cell.agglomerates.copy()
    table["truncated"] = [True] + [False] * (len(table) - 1)
    report = Report("t")
    shown = dataclasses.replace(cell, agglomerates=table)
    report_run._cell_section(report, shown, 50.0, report_run.shared_colour_limits([shown])[0])
    page = report.render().split("<caption>agglomerates")[1].split("</table>")[0]
    assert "its diameter a lower bound" in page
    head, body = page.split("</thead>")
    assert "<th>case</th><th>truncated</th>" in head
    assert body.split("</tr>")[0].count('<td class="text">yes</td>') == 1


def test_a_region_dstar_at_the_fit_window_edge_says_so(results: Path, tmp_path: Path) -> None:
    """A Debye-Bueche profile of correlation length 2 nm bends all along the fit window and
    departs at its first point: the table gave 9.95 nm (as for 5 nm) with an empty note."""
    import pandas as pd

    from jellyroll.io.nexus import write_table

    cell = _with_profiles(results, tmp_path / "run.h5", dstar=None)
    q = np.linspace(0.008, 0.3, 500)
    profile = pd.DataFrame({"q_A": q, "regular": 1.0 / (1.0 + (20.0 * q) ** 2) ** 2})
    with h5py.File(cell, "r+") as f:
        del f["entry/saxs_profiles"]
        write_table(f["entry"], "saxs_profiles", profile)
    page = run_report([cell], tmp_path / "run.html").read_text()
    row = page.split("<caption>d* of the region-averaged profiles</caption>")[1].split("</tr>")[1]
    assert "departs at the first point below the fit window" in row


def test_saxs_intensities_at_other_monitor_readings_get_their_own_colour_scale(
    results: Path, tmp_path: Path
) -> None:
    """Each reduction normalises its frames to its scan's median monitor: the same cell
    scanned at half the flux drew half as bright on the colour scale the cells share, exit
    0. Where the cells' readings differ by more than 5 %, each SAXS intensity map gets its
    own scale and the summary says why; at one reading they share one."""
    import dataclasses

    from jellyroll.results.run import Map

    def cell(name: str, reading: float, flux: float):
        shown = report_run.require_diagnosis(
            _copy(results, tmp_path / f"{name}.h5", name=name, saxs_monitor_reference=reading)
        )
        saxs = shown.maps.maps["saxs_intensity"]
        maps = {**shown.maps.maps, "saxs_intensity": Map(flux * saxs.values, saxs.units)}
        return dataclasses.replace(shown, maps=dataclasses.replace(shown.maps, maps=maps))

    full, half = cell("full", 2e5, 1.0), cell("half", 1e5, 0.5)
    own = [report_run.shared_colour_limits([c])[0]["saxs_intensity"] for c in (full, half)]
    assert own[1][1] == pytest.approx(0.5 * own[0][1])
    limits = report_run.shared_colour_limits([full, half])
    assert [item["saxs_intensity"] for item in limits] == own
    assert limits[0]["d_star_nm"] == limits[1]["d_star_nm"]  # the ratios stay shared
    note = report_run.monitor_mismatch([full, half])
    assert "different monitor readings (full 2e+05, half 1e+05)" in note
    # the excess intensities are in the maps' units: they scale as the maps (the note said
    # every agglomerate number compared as it was)
    assert "each agglomerate's excess intensity" in note
    same = cell("same", 2.08e5, 0.5)  # within 5 %: one scale, no note
    limits = report_run.shared_colour_limits([full, same])
    assert limits[0]["saxs_intensity"] == limits[1]["saxs_intensity"]
    assert report_run.monitor_mismatch([full, same]) == ""


def test_cells_mapped_at_different_pixel_sizes_are_said_to_be(results: Path) -> None:
    """One cell mapped at 20 and at 10 um: the summary set 0 and 9 case A, 10 and 0
    unresolved, shares of 1.69 and 1.38 % side by side, with no word of the pixel sizes
    (the monitor readings and critical diameters had their notes). Now a note names them;
    at one size (within 1 %) there is none."""
    import dataclasses

    cell = report_run.require_diagnosis(results)
    pixel = cell.pixel_size_um
    halved = dataclasses.replace(
        cell,
        label="fine",
        maps=dataclasses.replace(cell.maps, x_um=cell.maps.x_um / 2, y_um=cell.maps.y_um / 2),
    )
    note = report_run.pixel_mismatch([cell, halved])
    assert f"different pixel sizes ({cell.label} {pixel:g} um, fine {pixel / 2:g} um)" in note
    assert report_run.pixel_mismatch([cell, dataclasses.replace(cell, label="again")]) == ""

"""The CLI's options are the stage options models': every field reachable, no default of
its own (the model's default applies and is the one shown in --help)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main
from pydantic import BaseModel
from typer.testing import CliRunner

from jellyroll.cli import app
from jellyroll.defects.options import DiagnoseOptions
from jellyroll.locate.link_options import LinkOptions
from jellyroll.locate.options import LocateOptions
from jellyroll.maps.options import DstarOptions, MapsOptions
from jellyroll.nxct.options import NXCTOptions
from jellyroll.operando.options import OperandoOptions
from jellyroll.options import OptionsError, options_from
from jellyroll.pipeline import load_config
from jellyroll.recon.options import ReconstructOptions
from jellyroll.reduce.options import ReduceOptions
from jellyroll.report.options import ReportOptions

# command -> [(model, {cli parameter: model field})]
COMMANDS: dict[str, list[tuple[type[BaseModel], dict[str, str]]]] = {
    "reduce": [
        (
            ReduceOptions,
            {"npt": "npt", "unit": "unit", "filter": "filter", "split": "split",
             "spot_filter": "spot_filter",
             "block": "block_frames",
             "polarization_factor": "polarization_factor", "air": "subtract_air",
             "q_min": "radial_range", "q_max": "radial_range", "threads": "threads",
             "decode_threads": "decode_threads"},
        )
    ],
    "reconstruct": [
        (
            ReconstructOptions,
            {"method": "method", "iterations": "iterations", "backend": "backend",
             "channels": "channels", "rotation_centre": "rotation_centre_mm",
             "nonnegative": "nonnegative", "self_absorption": "self_absorption",
             "rank": "rank", "energy": "energy"},
        )
    ],
    "maps": [
        (
            MapsOptions,
            {"analysis": "analysis", "label_threshold": "label_threshold", "denoise": "denoise",
             "rank": "rank",
             "dstar_min_intensity": "dstar_min_intensity", "q_check": "q_check"},
        ),
        (DstarOptions, {name: name for name in DstarOptions.model_fields}),
    ],
    "diagnose": [
        (
            DiagnoseOptions,
            {"critical_diameter": "critical_diameter_um", "psf_fwhm": "psf_fwhm_um",
             "background_window": "background_window_um"},
        )
    ],
    "nxct": [
        (
            NXCTOptions,
            {**{name: name for name in NXCTOptions.model_fields if name != "window_percentiles"},
             "window_low": "window_percentiles", "window_high": "window_percentiles"},
        )
    ],
    "locate": [
        (
            LocateOptions,
            {**{name: name for name in LocateOptions.model_fields
                if name not in ("map", "offsets_um")},
             "map_name": "map", "offset_um": "offsets_um"},
        )
    ],
    "link": [(LinkOptions, {name: name for name in LinkOptions.model_fields})],
    "operando": [(OperandoOptions, {name: name for name in OperandoOptions.model_fields})],
    "report": [(ReportOptions, {"title": "title"})],
}  # fmt: skip
NOT_ON_THE_COMMAND_LINE = {(MapsOptions, "dstar")}  # its fields are, one by one
COMPOSITE = ("q_min", "q_max", "window_low", "window_high")  # two options, one field


def _default_shown(model: type, field: str) -> str:
    """What the help must say of the default of ``field``: ``[default: X]``, or, for None
    standing for a value the description gives ("[0.03]", "(default 10)"), the description
    (a "[default: none]" after it contradicted it)."""
    info = model.model_fields[field]
    default, description = info.default, info.description or ""
    if default is None and ("default" in description or description.rstrip(". ").endswith("]")):
        return description
    shown = "none" if default is None else str(default).lower() if isinstance(
        default, bool) else str(default)  # fmt: skip
    return f"[default: {shown}]"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cli_options_follow_the_models(command: str) -> None:
    params = {p.name: p for p in typer.main.get_command(app).commands[command].params}
    for model, mapping in COMMANDS[command]:
        for parameter, field in mapping.items():
            assert field in model.model_fields, (command, field)
            assert params[parameter].default is None, (command, parameter)  # model's default
            if parameter not in COMPOSITE:
                shown = _default_shown(model, field)
                assert shown in params[parameter].help, (command, parameter)
        reachable = set(mapping.values())
        for field in model.model_fields:
            assert field in reachable or (model, field) in NOT_ON_THE_COMMAND_LINE, (model, field)


def test_invalid_option_values_are_usage_errors() -> None:
    """Exit code 2 and one line naming the option, on stderr."""
    result = CliRunner().invoke(app, ["reduce", "scan.h5", "-o", "run.h5", "--block", "-3"])
    assert result.exit_code == 2
    assert "--block" in result.stderr and "Traceback" not in result.output


def test_the_polarisation_correction_can_be_turned_off(tmp_path: Path) -> None:
    """Frames corrected for polarisation already (a reduction with None) could not be
    reduced without a second correction from the command line or the TOML: neither can say
    null, and a float option took no word. "none" says it in both now; a word that is
    neither is refused, naming the option."""
    assert options_from(ReduceOptions, {"polarization_factor": "none"}).polarization_factor is None
    assert options_from(ReduceOptions, {"polarization_factor": "0.5"}).polarization_factor == 0.5
    with pytest.raises(OptionsError, match="polarization_factor"):
        options_from(ReduceOptions, {"polarization_factor": "half"})
    config = tmp_path / "run.toml"
    config.write_text(
        'output = "out"\n[waxs]\npolarization_factor = "none"\n'
        '[[cells]]\nname = "a"\nwaxs = "w.h5"\nsaxs = "s.h5"\n'
    )
    for name in ("w.h5", "s.h5"):
        (tmp_path / name).touch()
    assert load_config(config).waxs.polarization_factor is None


def test_every_maps_option_is_reachable_from_the_toml(tmp_path: Path) -> None:
    """Each field of [maps] and [maps.dstar] set in a run configuration to a value other than
    its default arrives in the loaded options (rank in a second configuration: the study's
    analysis does not denoise, so a rank is refused with it)."""
    maps = {"analysis": "study", "label_threshold": 0.1, "denoise": False,
            "dstar_min_intensity": 0.3, "q_check": False}  # fmt: skip
    dstar = {"min_intensity": 1e-8, "min_points": 100, "skip_low_fraction": 0.2,
             "skip_high_fraction": 0.1, "min_slope": 2.0, "max_slope": 4.5,
             "tolerance": 0.05}  # fmt: skip
    denoised = {"denoise": True, "rank": 4}
    assert set(maps) | set(denoised) | {"dstar"} == set(MapsOptions.model_fields)
    assert set(dstar) == set(DstarOptions.model_fields)

    def toml(values: dict) -> str:
        return "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())

    def load(section: str) -> MapsOptions:
        path = tmp_path / "maps.toml"
        path.write_text(f'[[cells]]\nname = "a"\nwaxs = "w.h5"\nsaxs = "s.h5"\n[maps]\n{section}')
        return load_config(path).maps

    loaded = load(f"{toml(maps)}[maps.dstar]\n{toml(dstar)}")
    for name, value in maps.items():
        assert getattr(loaded, name) == value != MapsOptions.model_fields[name].default, name
    for name, value in dstar.items():
        assert getattr(loaded.dstar, name) == value, name
    assert load(toml(denoised)).rank == 4


@pytest.mark.parametrize(
    ("args", "field"),
    [
        # inf overflowed deep in the agglomerate fit, NaN in an int conversion; an
        # impossible window failed only after the whole registration
        (
            ["diagnose", "w.h5", "s.h5", "-o", "d.h5", "--critical-diameter", "inf"],
            "--critical-diameter",
        ),
        (["locate", "run.h5", "xct.tif", "-o", "l.h5", "--offset-um", "nan"], "offsets_um"),
        (
            ["nxct", "x.tif", "n.tif", "-o", "n.h5", "--window-high", "150"],
            "--window-low/--window-high",
        ),
    ],
)
def test_options_that_are_not_numbers_or_not_ordered_are_refused_at_once(
    args: list[str], field: str
) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert field in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("model", "given", "named"),
    [
        # each was accepted and ignored: the user believed the result had what they asked
        (ReconstructOptions, {"method": "fbp", "iterations": 50}, "iterations"),
        (ReconstructOptions, {"backend": "astra", "rank": "3"}, "rank"),
        (ReconstructOptions, {"backend": "astra", "energy": 0.99}, "energy"),
        (ReconstructOptions, {"nonnegative": True, "rank": "2"}, "nonnegative"),
        (ReconstructOptions, {"rank": "noise", "energy": 0.99}, "energy"),
        (MapsOptions, {"analysis": "study", "rank": 3}, "rank"),
        (MapsOptions, {"denoise": False, "rank": 3}, "rank"),
    ],
)
def test_options_the_method_would_ignore_are_refused(
    model: type[BaseModel], given: dict, named: str
) -> None:
    with pytest.raises(OptionsError, match=named):
        options_from(model, given)


@pytest.mark.parametrize(
    ("model", "given"),
    [
        (ReconstructOptions, {"method": "fbp", "nonnegative": True, "rank": "2"}),
        (ReconstructOptions, {"method": "sirt", "iterations": 5, "rank": "energy", "energy": 0.9}),
        (ReconstructOptions, {"backend": "astra", "iterations": 5}),
        (MapsOptions, {"denoise": True, "rank": 3}),
        (MapsOptions, {"rank": 3}),
        # defaults written out (docs/pipeline.md's example had iterations = 10) ask nothing
        (ReconstructOptions, {"method": "fbp", "iterations": 10}),
        (ReconstructOptions, {"backend": "astra", "rank": "auto", "energy": None}),
    ],
)
def test_options_that_act_are_accepted(model: type[BaseModel], given: dict) -> None:
    """Controls: FBP clips once at the end, after its low-rank step."""
    assert options_from(model, given).model_dump(include=set(given)) == given


def test_fbp_with_iterations_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        app, ["reconstruct", "run.h5", "--method", "fbp", "--iterations", "40"]
    )
    assert result.exit_code == 2, result.output
    assert "iterations" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_default_shows_in_the_help_a_user_reads(command: str) -> None:
    """The help is rich markup: `[default: 1000]` was read as a style tag and dropped, so
    `jellyroll reduce --help` showed no option's default (the raw help string had it)."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if "│    --" in line
             or "│ --" in line}  # fmt: skip
    params = {p.name: p for p in typer.main.get_command(app).commands[command].params}
    for model, mapping in COMMANDS[command]:
        for parameter, field in mapping.items():
            if parameter in COMPOSITE:
                continue
            flag = params[parameter].opts[0]
            shown = _default_shown(model, field)
            assert shown in lines[flag], (command, flag)
            assert shown.startswith("[default:") or "[default: none]" not in lines[flag]


STAGE_MODELS = sorted(
    {model for entries in COMMANDS.values() for model, _ in entries}, key=lambda m: m.__name__
)


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (model, field)
        for model in STAGE_MODELS
        for field, info in model.model_fields.items()
        if info.annotation not in (bool, bool | None)
    ],
)
def test_true_or_false_for_an_option_that_is_no_switch_is_refused(
    model: type[BaseModel], field: str
) -> None:
    """pydantic's lax mode took true as 1 and false as 0 for any number: a TOML
    `dstar_min_intensity = true` became 1.0 (d* kept in 41 of the tiny twin's 1371
    pixels), `registration_error_um = true` 1 um, `xct_voxel_um = true` 1 um voxels, all
    exit 0. The command line gives no bool to such an option; the TOML and Python now
    refuse it, naming it. Exact: a refusal or not, no tolerance."""
    for value in (True, False, [True, False]):
        with pytest.raises(OptionsError, match=field):
            options_from(model, {field: value})


def test_a_toml_switch_for_a_number_is_refused_naming_the_key(tmp_path: Path) -> None:
    """The same through `jellyroll run`'s configuration (exit 2, the key named); the
    switches themselves still take true/false."""
    config = tmp_path / "run.toml"
    cell = '[[cells]]\nname = "a"\nwaxs = "w.h5"\nsaxs = "s.h5"\n'
    for name in ("w.h5", "s.h5"):
        (tmp_path / name).touch()
    config.write_text(f"output = 'out'\n[maps]\ndstar_min_intensity = true\n{cell}")
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 2, result.output
    assert "maps.dstar_min_intensity" in result.stderr and "no switch" in result.stderr
    config.write_text(f"output = 'out'\n[maps]\nq_check = false\ndenoise = true\n{cell}")
    assert load_config(config).maps.q_check is False


def test_a_lag_no_charge_can_reach_is_refused() -> None:
    """`min_lag_soc = 1` (or more) can never be passed within one charge: every series
    found 0 damaged zones, exit 0."""
    with pytest.raises(ValueError, match=r"min_lag_soc"):
        OperandoOptions(min_lag_soc=1.0)
    assert OperandoOptions(min_lag_soc=0.5).min_lag_soc == 0.5


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"min_slope": 5.0}, r"min_slope 5\.0 > max_slope 4\.3"),
        ({"skip_low_fraction": 0.6, "skip_high_fraction": 0.5}, r"must be < 1"),
    ],
)
def test_d_star_parameters_that_cannot_go_together_are_refused_when_read(given, message) -> None:
    """`[maps.dstar] min_slope = 5` (above the study's max_slope 4.3) was accepted, and the
    maps stage refused it only after `jellyroll run` had reduced and reconstructed."""
    with pytest.raises(ValueError, match=message):
        MapsOptions(dstar=given)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["reduce", "scan.h5", "-o", "r.h5", "--block", "0"], "option: --block: Input should be"),
        (["reconstruct", "r.h5", "--channels", "1.55-2.05"], "option: --channels: bad q range"),
        (["reconstruct", "r.h5", "--rotation-centre", "nan"], "option: --rotation-centre: "),
        (["diagnose", "a.h5", "b.h5", "-o", "c.h5", "--critical-diameter", "-5"],
         "option: --critical-diameter: Input should be greater than 0"),
    ],
)  # fmt: skip
def test_a_refused_option_is_named_as_the_command_line_spells_it(
    args: list[str], said: str
) -> None:
    """An option's error named the options model's field (`block_frames: Input should be
    ...` for --block, `channels: Value error, ...`); a malformed --channels was found only
    once the reconstruction's key was computed (after `jellyroll run` had reduced the
    scan)."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split())
    assert "Value error" not in result.output

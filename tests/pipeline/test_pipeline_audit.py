"""`jellyroll run` refusals found by the pipeline audit: inputs that made a stage compute
a wrong number (or keep a stale one) with exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from jellyroll.pipeline import ConfigError, load_config, run_pipeline

BLISS = (
    '[bliss]\nframes = "measurement/pilatus"\nrotation_angle = "instrument/positioners/rot"\n'
    'translation = "measurement/ty"\n'
)


def _cell_files(folder: Path) -> None:
    """Empty scan files (the check runs before any is read), two PONIs and a mapping."""
    for name in ("waxs.h5", "saxs.h5", "waxs.poni", "saxs.poni"):
        (folder / name).write_bytes(b"")
    (folder / "map.toml").write_text(BLISS + 'poni = "waxs.poni"\n')


@pytest.mark.parametrize(
    ("saxs", "keys", "what"),
    [
        ("saxs.h5", 'mapping = "map.toml"\n', r"cells\.0: mapping .*map\.toml.* one PONI"),
        (
            "saxs.h5",
            'poni_waxs = "waxs.poni"\nponi_saxs = "waxs.poni"\n',
            r"cells\.0: poni_waxs and poni_saxs give .* one PONI",
        ),
        (
            "saxs.h5",
            'mapping = "map.toml"\nponi_saxs = "./waxs.poni"\n',
            r"cells\.0: poni_saxs and mapping .*map\.toml .* give .* one PONI",
        ),
        ("./waxs.h5", "", r"cells\.0\.saxs: .*waxs\.h5 is the WAXS scan too"),
    ],
)
def test_one_poni_or_scan_for_both_positions_is_refused(
    tmp_path: Path, saxs: str, keys: str, what: str
) -> None:
    """A cell's Bliss `mapping` naming a PONI, the cell naming neither poni_waxs nor
    poni_saxs: both scans were integrated with the mapping's one PONI, so the SAXS scan (3 m)
    got the WAXS geometry (0.245 m) and a q axis 12 times too large (0.0038-0.117 1/A for
    0.0003-0.0096 in the audit's repro), exit 0. One PONI or one scan file named for both
    positions is the same mistake. Refused before any stage (no output folder)."""
    _cell_files(tmp_path)
    cell = f'[[cells]]\nname = "a"\nwaxs = "waxs.h5"\nsaxs = "{saxs}"\n{keys}'
    (tmp_path / "run.toml").write_text(f'output = "out"\n{cell}')
    with pytest.raises(ConfigError, match=what):
        run_pipeline(load_config(tmp_path / "run.toml"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "keys",
    [
        'mapping = "map.toml"\nponi_saxs = "saxs.poni"\n',  # the mapping's PONI: the WAXS one
        'mapping = "map.toml"\nponi_waxs = "waxs.poni"\nponi_saxs = "saxs.poni"\n',
        'poni_waxs = "waxs.poni"\nponi_saxs = "saxs.poni"\n',
    ],
)
def test_a_poni_for_each_position_passes_the_check(tmp_path: Path, keys: str) -> None:
    from jellyroll.pipeline.config import shared_inputs

    _cell_files(tmp_path)
    cell = f'[[cells]]\nname = "a"\nwaxs = "waxs.h5"\nsaxs = "saxs.h5"\n{keys}'
    (tmp_path / "run.toml").write_text(cell)
    assert shared_inputs(load_config(tmp_path / "run.toml")) == []

"""Figures marked as jellyroll's, and the refusal to replace an image jellyroll did not draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from jellyroll.io.images import refuse_foreign_images, save_gif, save_png, written_by_jellyroll


def _figure() -> Figure:
    figure = Figure(figsize=(1, 1))
    figure.subplots().plot([0, 1], [1, 0])
    return figure


def test_a_saved_figure_is_marked_and_replaced_by_the_next(tmp_path: Path) -> None:
    png = save_png(_figure(), tmp_path / "a.png", dpi=20)
    assert written_by_jellyroll(png)
    with Image.open(png) as image:
        assert image.info["Software"].startswith("jellyroll ")
    save_png(_figure(), png, dpi=30)  # its own figure is replaced
    with Image.open(png) as image:
        assert image.size == (30, 30)


def test_a_saved_animation_is_marked(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((4, 4, 3), k * 60, np.uint8)) for k in range(3)]
    gif = save_gif(frames, tmp_path / "a.gif", duration_ms=100)
    assert written_by_jellyroll(gif)
    with Image.open(gif) as image:
        assert image.n_frames == 3


@pytest.mark.parametrize("software", [None, "Matplotlib version3.9", "jellyrollish 1.0"])
def test_an_image_of_another_program_is_refused_and_kept(
    tmp_path: Path, software: str | None
) -> None:
    """A user's PNG where a figure goes (a matplotlib plot of their own, a screenshot) was
    replaced by `maps`, `link` and `run`, exit 0: refused, named, left as it was."""
    mine = tmp_path / "run_d_star.png"
    if software is None:
        Image.new("RGB", (5, 5)).save(mine)
    else:
        _figure().savefig(mine, dpi=20, format="png", metadata={"Software": software})
    before = mine.read_bytes()
    assert not written_by_jellyroll(mine)
    with pytest.raises(FileExistsError, match=r"run_d_star\.png is where a figure goes"):
        save_png(_figure(), mine)
    assert mine.read_bytes() == before


def test_files_that_are_no_image_are_refused_but_an_empty_one_is_not(tmp_path: Path) -> None:
    notes, empty, absent = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    notes.write_text("my notes")
    empty.touch()  # what an interrupted write leaves
    refuse_foreign_images([empty, absent])
    with pytest.raises(FileExistsError) as refused:
        refuse_foreign_images([notes, empty, absent])
    assert "a.png" in str(refused.value) and "b.png" not in str(refused.value)

"""Figures written as PNG and GIF files, each marked as jellyroll's so that a later run
replaces its own figures and never a user's image that happens to lie where one goes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

from jellyroll.io.provenance import atomic_output

MARK = "jellyroll"
"""How a jellyroll figure's ``Software`` text (PNG) or comment (GIF) begins."""


def _mark() -> str:
    from jellyroll import __version__

    return f"{MARK} {__version__}"


def save_png(figure: Any, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write the matplotlib ``figure`` as a PNG at ``path`` atomically, marked as
    jellyroll's; refuses to replace an image jellyroll did not write
    (:func:`refuse_foreign_images`)."""
    path = Path(path)
    refuse_foreign_images([path])
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png", metadata={"Software": _mark()})
    return path


def save_gif(frames: list[Image.Image], path: str | os.PathLike[str], duration_ms: int) -> Path:
    """Write ``frames`` as an animated GIF at ``path`` atomically (looping), marked as
    jellyroll's; refuses to replace an image jellyroll did not write."""
    path = Path(path)
    refuse_foreign_images([path])
    with atomic_output(path) as tmp:
        frames[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=duration_ms,
            loop=0,
            comment=_mark().encode(),
        )
    return path


def written_by_jellyroll(path: str | os.PathLike[str]) -> bool:
    """Whether the image file ``path`` carries jellyroll's mark (an empty file counts: an
    interrupted write's). Figures of jellyroll before 0.4.3 carry none."""
    path = Path(path)
    if path.stat().st_size == 0:
        return True
    try:
        with Image.open(path) as image:
            mark = image.info.get("Software", image.info.get("comment", b""))
    except (OSError, ValueError, SyntaxError):
        return False
    if isinstance(mark, bytes):
        mark = mark.decode("latin-1")
    return str(mark).startswith(f"{MARK} ")


def refuse_foreign_images(paths: Iterable[str | os.PathLike[str]]) -> None:
    """:class:`FileExistsError` naming every existing file of ``paths`` that is no figure of
    jellyroll's: `link`, `maps` and `run` replaced a user's PNG lying where a figure goes."""
    foreign = [Path(p) for p in paths if Path(p).is_file() and not written_by_jellyroll(p)]
    if foreign:
        lines = [f"{p} is where a figure goes, but jellyroll did not draw it" for p in foreign]
        raise FileExistsError(
            "\n".join(lines) + "\nit would be replaced: move it out of the way or give another "
            "output (a figure of jellyroll before 0.4.3 carries no mark: delete it)"
        )

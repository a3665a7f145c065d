"""A self-contained HTML report: sections of figures (embedded PNG), tables and notes.

Every text that comes from data or files is escaped; figures are embedded as base64 PNG,
so the report is one file that opens anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from jellyroll.figures import number_text
from jellyroll.io.provenance import atomic_output

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #446; } h2 { margin-top: 2em; color: #335; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ccc; }
figcaption { font-size: 0.9em; color: #555; max-width: 560px; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; }
th { background: #eef; } td.text { text-align: left; }
.note { color: #555; font-size: 0.9em; }
dl { display: grid; grid-template-columns: max-content auto; }
dt { font-weight: bold; padding-right: 1em; } dd { margin: 0; } dd > dl { margin: 0; }
"""

NO_VALUE = "no value"
"""Shown in a table for a number that is not one (NaN: a d* with no valid value, say)."""

UNITS = {"um": "um", "um2": "um^2", "nm": "nm", "mm": "mm", "deg": "deg", "px": "px", "s": "s"}
"""Column-name suffixes that are units (``x_um``: x in um), with how a heading writes them."""

HEADINGS = {
    "excess_intensity": "excess intensity (a.u.)",
    "integrated_excess": "integrated excess (a.u.)",
    "d_star_nm": "d* (nm)",
    "d_star_inside_nm": "d* inside (nm)",
    "d_star_ring_nm": "d* in the ring around (nm)",
    "q_A": "q (1/A)",
    "on_bend": "on a bend",
    "extent_axial_um": "axial extent (um)",
    "extent_arc_um": "arc extent (um)",
    "bend3d_id": "3D bend",
    "bend3d_distance_um": "distance to the 3D bend (um)",
    "bend3d_amplitude_um": "3D bend amplitude (um)",
    "bend3d_extent_axial_um": "3D bend axial extent (um)",
    "bend3d_extent_arc_um": "3D bend arc extent (um)",
}
"""Headings of the column names that :func:`column_heading`'s rule would not write well."""


def column_heading(name: str) -> str:
    """The heading a table shows for column ``name`` (the results files keep theirs):
    ``equivalent_diameter_um`` -> "equivalent diameter (um)", ``depth_limited`` -> "depth
    limited", those of :data:`HEADINGS` as written there; a heading already written for a
    reader ("d* (nm)", no underscore) stays."""
    if name in HEADINGS:
        return HEADINGS[name]
    stem, _, suffix = name.rpartition("_")
    if stem and suffix in UNITS:
        return f"{stem.replace('_', ' ')} ({UNITS[suffix]})"
    return name.replace("_", " ")


def value_text(value: Any) -> str:
    """A value that is not a float as a reader reads it: yes / no for a flag, "not set"
    for None (a setting left to its default), a list's items joined by commas."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if value is None:
        return "not set"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(item) for item in value) or "none"
    return str(value)


def figure_png(figure: Figure, dpi: int = 90) -> bytes:
    """PNG bytes of a matplotlib figure."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


@dataclass
class Section:
    """A titled part of the report, rendered in the order items were added."""

    title: str
    items: list[str] = field(default_factory=list)

    def figure(self, figure: Figure, caption: str, *, name: str = "") -> None:
        self.png(figure_png(figure), caption, name=name)

    def png(self, png: bytes, caption: str, *, name: str = "") -> None:
        """A PNG image (bytes, e.g. a figure a stage saved) with its caption."""
        data = base64.b64encode(png).decode("ascii")
        self.items.append(
            f'<figure data-name="{html.escape(name)}"><img alt="{html.escape(caption)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
            "</figcaption></figure>"
        )

    def table(
        self,
        table: pd.DataFrame,
        caption: str = "",
        *,
        float_format: str = "{:.3g}",
        formats: Mapping[str, Callable[[float], str]] | None = None,
    ) -> None:
        """``table`` as HTML, its columns headed by :func:`column_heading`; numbers in
        ``float_format``, or by ``formats`` (a formatter per column name of ``table``, e.g.
        :func:`jellyroll.figures.beside_threshold`)."""
        head = "".join(f"<th>{html.escape(column_heading(str(c)))}</th>" for c in table.columns)
        default = partial(number_text, float_format=float_format)
        writers = [(formats or {}).get(column, default) for column in table.columns]
        rows = []
        for row in table.itertuples(index=False):
            cells = []
            for value, write in zip(row, writers, strict=True):
                if isinstance(value, float | np.floating) and math.isnan(value):
                    cells.append(f"<td>{NO_VALUE}</td>")  # NaN: no value (SPEC section 3)
                elif isinstance(value, float | np.floating):
                    cells.append(f"<td>{html.escape(write(float(value)))}</td>")
                elif isinstance(value, int | np.integer) and not isinstance(value, bool):
                    cells.append(f"<td>{value}</td>")  # a count: aligned as numbers are
                else:
                    cells.append(f'<td class="text">{html.escape(value_text(value))}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        caption_html = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.items.append(
            f"<table>{caption_html}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    def facts(self, facts: Mapping[str, Any]) -> None:
        """``facts`` as a list of names and values; a value that is a mapping (the
        settings of a stage) as a list of its own, nested."""
        self.items.append(_facts_html(facts))

    def note(self, text: str) -> None:
        self.items.append(f'<p class="note">{html.escape(text)}</p>')


def _facts_html(facts: Mapping[str, Any]) -> str:
    body = "".join(
        f"<dt>{html.escape(str(key))}</dt><dd>{_fact_html(value)}</dd>"
        for key, value in facts.items()
    )
    return f"<dl>{body}</dl>"


def _fact_html(value: Any) -> str:
    if isinstance(value, Mapping):
        return _facts_html(value) if value else "none"
    return html.escape(value_text(value))


@dataclass
class Report:
    """An HTML report made of :class:`Section` objects."""

    title: str
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        section = Section(title)
        self.sections.append(section)
        return section

    def render(self) -> str:
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for section in self.sections:
            parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
            parts.extend(section.items)
            parts.append("</section>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, path: str | Path, *, inputs: Iterable[str | Path] = ()) -> Path:
        """Write the report to ``path`` atomically; refused when ``path`` is one of the
        ``inputs`` (the files it was made from)."""
        path = Path(path)
        with atomic_output(path, inputs=[Path(item) for item in inputs]) as tmp:
            tmp.write_text(self.render(), encoding="utf-8")
        return path


def is_report(path: Path) -> bool:
    """Whether the file ``path`` begins as every page of :class:`Report` begins, up to its
    title: a report jellyroll wrote (any HTML page was taken for one: `report -o index.html`
    replaced a hand-written page, exit 0)."""
    page = Report("").render()
    start = page[: page.index("<title>") + len("<title>")].encode("utf-8")
    with Path(path).open("rb") as handle:
        return handle.read(len(start)) == start

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
dt { font-weight: bold; padding-right: 1em; } dd { margin: 0; }
"""

NO_VALUE = "no value"
"""Shown in a table for a number that is not one (NaN: a d* with no valid value, say)."""


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
        """``table`` as HTML; numbers in ``float_format``, or by ``formats`` (a formatter
        per column name, e.g. :func:`jellyroll.figures.beside_threshold`)."""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
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
                else:
                    cells.append(f'<td class="text">{html.escape(str(value))}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        caption_html = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.items.append(
            f"<table>{caption_html}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    def facts(self, facts: Mapping[str, Any]) -> None:
        body = "".join(
            f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
            for k, v in facts.items()
        )
        self.items.append(f"<dl>{body}</dl>")

    def note(self, text: str) -> None:
        self.items.append(f'<p class="note">{html.escape(text)}</p>')


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

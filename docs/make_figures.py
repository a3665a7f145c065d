"""Regenerate the figures of the user guide: ``make docs-figures``.

Writes ``docs/figures/phantom_overview.png`` from a freshly simulated ``small`` twin
(preset ``aged_charged``, seed 0) via ``jellyroll phantom`` and the overview figure.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from jellyroll.phantom.overview import overview_figure
from jellyroll.phantom.write import write_phantom

FIGURES = Path(__file__).resolve().parent / "figures"


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        write_phantom(scratch, preset="aged_charged", size="small", seed=0)
        path = overview_figure(scratch, FIGURES / "phantom_overview.png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

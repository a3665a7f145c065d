"""Regenerate the figures of ``docs/operando.md``: the small twin (``aged_charged``, seed 0)
with a 7-step charge series, analysed by :func:`jellyroll.operando.run.run_operando`.

Writes ``docs/figures/operando_contact_sheet.png``, ``operando_curves.png`` and
``operando_cores.png``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from jellyroll.operando.run import run_operando
from jellyroll.phantom.write import write_phantom

FIGURES = Path(__file__).resolve().parent / "figures"


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        twin = Path(scratch) / "twin"
        write_phantom(twin, preset="aged_charged", size="small", seed=0, raw=False, nxct=False,
                      operando_steps=7)  # fmt: skip
        done = run_operando(twin / "operando", Path(scratch) / "operando.h5",
                            log=twin / "operando" / "potentiostat.csv")  # fmt: skip
        for figure in done.figures:
            if figure.suffix == ".png":
                target = FIGURES / figure.name
                shutil.copyfile(figure, target)
                print(f"wrote {target}")


if __name__ == "__main__":
    main()

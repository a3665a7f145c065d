"""The command line starts without the numerical stack, and the packages' lazy re-exports
(:mod:`jellyroll._lazy`) give every public name as an eager import did."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types

import pytest

HEAVY = ("astra", "dask", "fabio", "h5py", "matplotlib", "numba", "pandas", "pyFAI", "scipy")
HEAVY += ("SimpleITK",)

LAZY_PACKAGES = ("defects", "locate", "maps", "nxct", "pipeline", "recon", "reduce", "report")
LAZY_PACKAGES += ("results", "unroll")


def test_the_command_line_imports_no_numerical_stack() -> None:
    """Before, ``import jellyroll.cli`` (so ``jellyroll --help`` and every command, before
    doing anything) took ~2 s: importing a stage's options model ran its package's
    ``__init__``, which imported the whole stage (numba, scipy.signal, SimpleITK,
    matplotlib). Checked by the modules loaded in a fresh interpreter, not by a timing."""
    code = "import json, sys, jellyroll.cli; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = {name.split(".")[0] for name in json.loads(done.stdout)}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_is_importable_and_listed(package: str) -> None:
    module = importlib.import_module(f"jellyroll.{package}")
    assert set(module.__all__) <= set(dir(module))
    names: dict[str, object] = {}
    exec(f"from jellyroll.{package} import *", names)
    assert set(module.__all__) <= set(names)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        module.not_a_name  # noqa: B018


def test_a_re_export_named_as_its_submodule_stays_the_value(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like ``jellyroll.recon.fbp`` (a submodule, and the function ``from jellyroll.recon
    import fbp`` gives): importing the submodule first binds the module on the package,
    which would hide the function from a plain PEP 562 ``__getattr__``."""
    package = tmp_path / "lazy_twin"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from jellyroll._lazy import lazy_exports\n"
        "__all__ = lazy_exports(__name__, {'fbp': ['fbp'], 'engine': ['run']})\n"
    )
    (package / "fbp.py").write_text("def fbp():\n    return 'fbp'\n")
    (package / "engine.py").write_text("from lazy_twin.fbp import fbp\nrun = fbp\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("lazy_twin", "lazy_twin.fbp", "lazy_twin.engine"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    import lazy_twin.engine  # noqa: F401  (loads the submodule lazy_twin.fbp first)
    from lazy_twin import fbp, run

    assert not isinstance(fbp, types.ModuleType)
    assert fbp is run is sys.modules["lazy_twin.fbp"].fbp
    assert "lazy_twin" in sys.modules and sys.modules["lazy_twin"].fbp is fbp
    from jellyroll.recon import fbp as recon_fbp

    assert not isinstance(recon_fbp, types.ModuleType)

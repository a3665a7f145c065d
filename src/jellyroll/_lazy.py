"""Lazy re-exports for package ``__init__`` files: importing one light submodule (a stage's
options model, say) does not import the whole stage, and ``jellyroll --help`` does not pay
for numba, matplotlib or SimpleITK.

A package lists, for each submodule, the public names it re-exports::

    __all__ = lazy_exports(
        __name__, {"agglomerates": ["find_agglomerates"], "bends": ["find_bends"]}
    )

``from package import name`` and ``package.name`` import the submodule on first use and
cache the value on the package; ``dir(package)`` and ``from package import *`` see every
name. A new public name of a package goes in its ``lazy_exports`` table.

Not scientific-python's ``lazy_loader`` (installed with scikit-image): its ``dir()`` lists
``__all__`` alone, and it would be one more pinned dependency for these fifty lines.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar


class _LazyPackage(ModuleType):
    """A package whose re-exported names come from their submodules on first use."""

    _homes: ClassVar[Mapping[str, str]] = {}
    """Re-exported name -> the submodule (relative to the package) that defines it."""

    def __getattr__(self, name: str) -> Any:
        module = self._homes.get(name)
        if module is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{self.__name__}.{module}"), name)
        super().__setattr__(name, value)  # later look-ups skip __getattr__
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._homes))

    def __setattr__(self, name: str, value: Any) -> None:
        # The import system binds a loaded submodule on its package: where the submodule
        # has the name of a re-exported value (jellyroll.recon.fbp and its fbp), that would
        # hide the value, so the package keeps the value, as an eager import leaves it.
        if (
            isinstance(value, ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
            and name in self._homes
        ):
            value = self.__getattr__(name)
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]) -> list[str]:
    """Make ``package`` re-export ``exports`` lazily; its ``__all__``.

    ``exports`` maps each submodule (relative to ``package``) to the names it defines.
    Call it from the package's ``__init__`` as ``__all__ = lazy_exports(__name__, ...)``.
    """
    homes = {name: module for module, names in exports.items() for name in names}
    sys.modules[package].__class__ = type("LazyPackage", (_LazyPackage,), {"_homes": homes})
    return sorted(homes)

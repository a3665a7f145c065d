"""jellyroll: correlative multimodal tomography of cylindrical Li-ion cells."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("jellyroll")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

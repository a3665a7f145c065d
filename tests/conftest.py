"""Shared fixtures: the real measured data beside the checkout (``../shared/data/real``)."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def shared_real() -> Path:
    """Folder of real measured files; skips (saying why) when the checkout has no ../shared."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder {REAL_DATA} not found (expected beside the checkout)")
    return REAL_DATA

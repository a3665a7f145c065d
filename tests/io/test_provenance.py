"""File fingerprints: what makes a result stale."""

from __future__ import annotations

import os
import time
from pathlib import Path

from jellyroll.io.provenance import file_fingerprint


def test_an_edit_with_its_time_restored_changes_the_fingerprint(tmp_path: Path) -> None:
    """A PONI edited in place at the same size, its modification time put back (as ``cp -p``
    or ``touch -r`` do), kept its fingerprint: the reduction stayed up to date with the old
    geometry. Reading the file changes nothing."""
    path = tmp_path / "calibration.poni"
    path.write_text("Distance: 0.5439\n")
    before = file_fingerprint(path)
    path.read_text()
    assert file_fingerprint(path) == before
    stat = path.stat()
    time.sleep(0.01)  # the status-change clock must move on (ns resolution on ext4, tmpfs)
    path.write_text("Distance: 0.5440\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size
    assert file_fingerprint(path) != before

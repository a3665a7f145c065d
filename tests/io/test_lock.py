"""Output locks: a stale lock is taken over and its writer's leftovers removed, and only
those."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jellyroll.io.lock import OutputLockedError, _process_start, lock_path, output_lock
from jellyroll.results.store import run_lock


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def test_a_stale_lock_removes_its_own_leftovers_of_a_name_with_glob_characters(
    tmp_path: Path,
) -> None:
    """`scan[1].h5`: its leftovers were looked up with ``[1]`` as a class of characters, so
    the temporary file of `scan1.h5` (another output, being written) was deleted and the
    killed writer's own was kept."""
    output = tmp_path / "scan[1].h5"
    owner = {"pid": _dead_pid(), "host": socket.gethostname(), "started": 0.0}
    lock_path(output).write_text(json.dumps(owner))
    own = tmp_path / ".scan[1].h5.abcd1234.part"
    other = tmp_path / ".scan1.h5.wxyz5678.part"
    own.write_text("left by the killed writer")
    other.write_text("being written")
    with output_lock(output):
        pass
    assert not own.exists()
    assert other.exists()
    assert not lock_path(output).exists()


def test_a_stale_run_lock_leaves_another_runs_files_alone(tmp_path: Path) -> None:
    """`r.h5`'s stale lock taken over: ``.r.*.part`` also matched the temporary files of
    `r.v2.h5` and its stage files, being written by another live process, which then failed
    renaming its reconstruction (its work lost). Now only the killed writer's own: the run
    file's, its stage files' and its scratch files'."""
    output = tmp_path / "r.h5"
    owner = {"pid": _dead_pid(), "host": socket.gethostname(), "started": 0.0}
    lock_path(output).write_text(json.dumps(owner))
    own = [".r.h5.a1.part", ".r.reconstruction.h5.b2.part", ".r.scratch-c3.part",
           ".r.maps.h5.d4.part", ".r.sinogram.h5.e5.part",
           ".r_graphite_rgb.png.i9.part", ".r_d_star.png.j0.part"]  # fmt: skip
    # a killed `maps` left its PNGs' temporary files for good (the red team's kill -9)
    others = [".r.v2.h5.f6.part", ".r.v2.reconstruction.h5.g7.part", ".r.v2.scratch-h8.part",
              "r.h5.partial", ".r_v2_graphite_rgb.png.k1.part"]  # fmt: skip
    for name in own + others:
        (tmp_path / name).write_text("x")
    with run_lock(output):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)


@pytest.mark.skipif(_process_start(os.getpid()) is None, reason="needs Linux's /proc")
def test_a_lock_whose_pid_now_belongs_to_another_process_is_taken_over(tmp_path: Path) -> None:
    """A container restarted (same host name, pids counted again): the lock of its killed
    run named a pid that a new process now held, and every later run was refused with
    "being written by process N" until the lock was deleted by hand. The lock of the
    process that holds the pid is still refused."""
    output = tmp_path / "run.h5"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = {"pid": live.pid, "host": socket.gethostname(), "started": 0.0}
        lock_path(output).write_text(json.dumps({**owner, "process_start": "another boot:1"}))
        with output_lock(output):
            pass
        lock_path(output).write_text(
            json.dumps({**owner, "process_start": _process_start(live.pid)})
        )
        with pytest.raises(OutputLockedError, match=rf"being written by process {live.pid}"):
            with output_lock(output):
                pass
    finally:
        live.kill()
        live.wait()

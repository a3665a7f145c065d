"""One writer per output: a lock file beside it, holding the owner's pid and host.

A second writer is refused with a message naming the owner while that process lives; a
lock left by a process that died (same host, pid gone, or the pid now another process's:
where Linux's /proc tells, the process's start time and the boot are recorded and compared)
is taken over, and the temporary
files its writes left behind (``.NAME.*.part`` and its stage files', ``NAME.partial`` is
kept: it resumes) are removed, so an interrupted run leaves no orphans once it is run again.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path


class OutputLockedError(RuntimeError):
    """Another live process is writing the same output."""


def lock_path(output: str | os.PathLike[str]) -> Path:
    """The lock file of ``output``: ``.NAME.lock`` beside it."""
    output = Path(output)
    return output.with_name(f".{output.name}.lock")


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (boot id and clock ticks since boot, Linux's /proc);
    None where /proc cannot tell."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count after its last ")"
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"


def _alive(owner: dict) -> bool:
    """Whether the process that wrote ``owner`` still runs: its pid exists and, where both
    are known, started when the lock says (a container or machine restarted reuses pids:
    its lock blocked every later run with "being written by process 7")."""
    pid = owner["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    recorded, now = owner.get("process_start"), _process_start(pid)
    return recorded is None or now is None or recorded == now


def _owner(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def output_lock(
    output: str | os.PathLike[str], derived: Iterable[str] = (), figures: Iterable[str] = ()
) -> Iterator[Path]:
    """Hold the lock of ``output`` (its folder is created) for the duration of the block.

    Raises :class:`OutputLockedError` when a live process holds it; a lock of a dead
    process on this host is taken over and its temporary files removed: those of
    ``output`` and of the files written with it, ``<stem>.<name>.h5`` for each name in
    ``derived`` (a run's stage files) and the files named in ``figures`` beside it (a
    killed `maps` left its PNGs' temporary files for good). A lock of another host is
    never taken over (its process cannot be checked from here): the message says which
    file to delete once that run is known to be over.
    """
    output = Path(output).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(output)
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "process_start": _process_start(os.getpid()),
    }
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(path)
            if owner is None:  # being written this instant, or garbage: look again
                time.sleep(0.05)
                owner = _owner(path)
            if owner is not None and (owner.get("host") != me["host"] or _alive(owner)):
                raise OutputLockedError(
                    f"{output} is being written by process {owner.get('pid')} on "
                    f"{owner.get('host')}; wait for it to finish (if that run is over, "
                    f"delete {path})"
                ) from None
            # stale: its owner died. Rename it away first: of two processes that found it,
            # only one wins the rename and cleans up; the other retries the O_EXCL create.
            claimed = path.with_name(f"{path.name}.{me['pid']}.stale")
            try:
                os.replace(path, claimed)
            except FileNotFoundError:
                continue
            if _owner(claimed) != owner:  # a live lock was taken meanwhile: give it back
                os.replace(claimed, path)
                continue
            claimed.unlink()
            _remove_leftovers(output, derived, figures)
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        break
    else:
        raise OutputLockedError(f"{output}: could not take the lock {path}")
    try:
        yield path
    finally:
        if _owner(path) == me:
            path.unlink(missing_ok=True)


def _remove_leftovers(output: Path, derived: Iterable[str], figures: Iterable[str] = ()) -> None:
    """Temporary files that a killed writer of ``output`` left behind: its atomic writes'
    (``.<name>.<random>.part``) and scratch files' (``.<stem>.scratch-<random>.part``), and
    those of the files ``<stem>.<derived>.h5`` written with it and of the ``figures`` (file
    names) beside it. Only these: ``.<stem>.*.part``
    also matched the files being written for another output whose name starts alike
    (``r.v2.h5`` beside ``r.h5``), and another process lost its work. Names are matched as
    they are written: in ``scan[1].h5``, ``[1]`` matched ``1`` and the temporary file of
    ``scan1.h5``, being written by another process, was deleted."""
    stems = [output.stem, *(f"{output.stem}.{name}" for name in derived)]
    patterns = [f".{glob.escape(output.name)}.*.part"]
    for stem in stems:
        patterns += [f".{glob.escape(stem)}.scratch-*.part", f".{glob.escape(stem)}.h5*.part"]
    patterns += [f".{glob.escape(name)}.*.part" for name in figures]
    for pattern in dict.fromkeys(patterns):
        for leftover in output.parent.glob(pattern):
            leftover.unlink(missing_ok=True)

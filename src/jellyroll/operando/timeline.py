"""Time and state of charge of each operando step: from the scans' metadata or from a
potentiostat log matched by the scans' start times.

Scan metadata (HDF5 scans): ``/entry/start_time`` and ``/entry/end_time`` (ISO 8601, the
NXentry fields) and ``/entry/sample/state_of_charge`` (fraction of full charge), all
optional. A step is read from the log at the middle of its scan when the scan records its
end, else at its start (with a note): a scan integrates over its whole duration (about
15 min at the study's operando size), and read at its start every step was half a scan's
charge early (0.025 of full charge during a 5-hour charge).

Potentiostat logs: a BioLogic EC-Lab text export (``.mpt``: ``Nb header lines``, the
``Acquisition started on`` date, tab-separated columns ``time/s``, ``Ewe/V``, ``I/mA``,
``(Q-Qo)/mA.h``) or a CSV with the columns ``time`` (ISO 8601, or seconds since the Unix
epoch), ``voltage``, ``current`` and ``charge`` (mAh). The state of charge is the charge
passed since the empty cell (the lowest charge of the log up to the first scan: its start,
or the end of a discharge before the charge) over ``capacity_mah`` (default: the charge
passed over the whole log). A scan outside the log's time range, or inside a gap of the
log longer than ``max_gap_s``, keeps its time and gets no state of charge (NaN), with a
warning; a log that covers none of the scans is refused, as is one whose charge jumps
between two records (not cumulative: :func:`_check_charge_continuous`). Where scans also
record their state of charge, the log's must agree with it (within :data:`SOC_SLACK`) or is
refused.

Time zones: an EC-Lab date, or an ISO time without a UTC offset, is the clock's local time.
Scans whose start times carry an offset then place the log's clock at that offset (the
potentiostat and the beamline share a place): read as UTC, a log beside scans at +02:00 put
every scan two hours of cycling off. A log whose times carry a zone (Unix seconds, ISO with
an offset) beside scans without one is refused: the scans' clock is then unknown. Summer
time: a CSV's local times are each record's reading of a clock that follows it, so a scan is
matched at its own offset (its local time); an EC-Lab log counts seconds from its start, so
it is placed at the first scan's offset, and refused when a place's clock at that offset
could have changed it between the log's start and the first scan (scans without an offset:
a note when any place's did, up to the last scan). Scans in UTC (+00:00) beside a log
without a zone are refused: a writer that records UTC says nothing of the potentiostat's
clock. The log's offset may be given instead (``log_utc_offset_h``,
``--log-utc-offset-h``). A CSV whose local times go backwards (the clock set back: the end
of summer time repeats an hour) is refused, as is an EC-Lab export whose ``time/s`` goes
back (more than one run in it).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import math
import os
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np


@dataclass(frozen=True)
class ScanTimes:
    """Per step: start time (s since the Unix epoch, NaN = unknown; a time without a UTC
    offset read as UTC), its UTC offset (s; NaN where the time carries none), state of
    charge from the scan (NaN = not recorded) and end time (as the start; NaN = not
    recorded)."""

    start_s: np.ndarray
    soc: np.ndarray
    utc_offset_s: np.ndarray
    end_s: np.ndarray

    @property
    def middle_s(self) -> np.ndarray:
        """The middle of each scan, its start where its end is not recorded."""
        return np.where(np.isfinite(self.end_s), 0.5 * (self.start_s + self.end_s), self.start_s)


@dataclass(frozen=True)
class PotentiostatLog:
    """A potentiostat log: time (s since the Unix epoch), voltage (V), current (mA),
    charge passed (mAh), one value per record; ``local_clock``: its times carry no time zone
    (read as UTC until :meth:`at_offset` places them); ``wall_clock``: those local times are
    each record's own reading of the clock (a CSV's), which may follow summer time, not the
    start's plus the seconds elapsed (EC-Lab's)."""

    source: str
    time_s: np.ndarray
    voltage_V: np.ndarray
    current_mA: np.ndarray
    charge_mAh: np.ndarray
    local_clock: bool = False
    wall_clock: bool = False
    day_first_shift_s: float | None = None
    """Where the start date reads both month first (as taken) and day first (an EC-Lab
    date, e.g. 04/01/2026): what the day-first reading adds to every time (s)."""

    def at_offset(self, utc_offset_s: float) -> PotentiostatLog:
        """The log with its local times placed at ``utc_offset_s`` (s east of UTC)."""
        return replace(self, time_s=self.time_s - utc_offset_s, local_clock=False, wall_clock=False)


SOC_UNITS = "fraction of full charge"


@dataclass
class Timeline:
    """What the steps are plotted against: state of charge (NaN where unknown), times
    (s since the first scan's start), and the warnings met on the way."""

    soc: np.ndarray
    time_s: np.ndarray
    source: str
    warnings: list[str] = field(default_factory=list)

    def axis(self) -> tuple[np.ndarray, str]:
        """What the curves run along, and its units: the state of charge when at least two
        steps have one, else the time in hours (NaN where unknown)."""
        if np.isfinite(self.soc).sum() >= 2:
            return self.soc, SOC_UNITS
        return self.time_s / 3600.0, "h"


def _epoch_seconds(text: str, source: str) -> tuple[float, float | None]:
    """Seconds since the Unix epoch of an ISO 8601 time (read as UTC when it carries no
    offset) and its UTC offset in seconds (None when it carries none)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise ValueError(f"{source}: time {text!r} is not ISO 8601 ({error})") from error
    offset = moment.utcoffset()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp(), None if offset is None else offset.total_seconds()


def scan_times(scans: list[Path]) -> ScanTimes:
    """Start time and state of charge recorded in each scan (HDF5 only; NaN otherwise).

    Refused: start times of which some carry a UTC offset and some do not. Those without
    were read as UTC beside the others' true instants (scans at 10:00+02:00, 11:00, 12:00+02:00
    put the second two hours late: the folder ordered it last, and its state of charge
    read from the log 1.0 instead of 0.5)."""
    start = np.full(len(scans), np.nan)
    end = np.full(len(scans), np.nan)
    soc = np.full(len(scans), np.nan)
    offset = np.full(len(scans), np.nan)
    texts: dict[int, str] = {}
    for k, path in enumerate(scans):
        if not h5py.is_hdf5(path):
            continue
        with h5py.File(path, "r") as f:
            if "entry/start_time" in f:
                texts[k] = _text(f["entry/start_time"][()])
                start[k], zone = _epoch_seconds(texts[k], f"{path}::/entry/start_time")
                offset[k] = np.nan if zone is None else zone
                if "entry/end_time" in f:
                    end[k] = _end_time(path, _text(f["entry/end_time"][()]), start[k], zone)
            if "entry/sample/state_of_charge" in f:
                soc[k] = float(f["entry/sample/state_of_charge"][()])
    zoned = [k for k in texts if np.isfinite(offset[k])]
    naive = [k for k in texts if not np.isfinite(offset[k])]
    if zoned and naive:
        a, b = zoned[0], naive[0]
        raise ValueError(
            f"{scans[b]}::/entry/start_time ({texts[b]!r}) carries no UTC offset but "
            f"{scans[a]}'s ({texts[a]!r}) does: the scans' times cannot be put on one clock; "
            "write every start time with its UTC offset (ISO 8601, e.g. "
            "2026-01-02T08:00:00+01:00)"
        )
    return ScanTimes(start, soc, offset, end)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _end_time(path: Path, text: str, start_s: float, start_zone: float | None) -> float:
    """``/entry/end_time`` (s since the epoch, as :func:`_epoch_seconds`); refused when it
    carries a UTC offset and the start time does not (or the reverse), or precedes the
    start."""
    end_s, zone = _epoch_seconds(text, f"{path}::/entry/end_time")
    if (zone is None) != (start_zone is None):
        raise ValueError(
            f"{path}: /entry/start_time and /entry/end_time are not on one clock (one "
            "carries a UTC offset, the other not); write both with their UTC offset"
        )
    if end_s < start_s:
        raise ValueError(
            f"{path}: /entry/end_time ({text!r}) is before /entry/start_time; correct it"
        )
    return end_s


def read_potentiostat_log(path: str | os.PathLike[str]) -> PotentiostatLog:
    """An EC-Lab ``.mpt`` text export or a CSV log (see the module docstring)."""
    path = Path(path)
    text = path.read_text(encoding="latin-1")
    if "\x00" in text[:4096]:  # a PNG or an HDF5 file was read as a CSV ("found png")
        raise ValueError(
            f"{path}: a binary file (or text in UTF-16), not a potentiostat log; give an "
            "EC-Lab text export (.mpt) or a CSV with the columns time, voltage, current, "
            "charge, in UTF-8 or Latin-1"
        )
    if path.suffix.lower() == ".mpt" or text.startswith("EC-Lab"):
        return _read_mpt(path, text)
    return _read_csv(path, text)


def _read_csv(path: Path, text: str) -> PotentiostatLog:
    reader = csv.DictReader(io.StringIO(text))
    needed = ("time", "voltage", "current", "charge")
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ValueError(
            f"{path}: a CSV potentiostat log needs the columns {', '.join(needed)}; "
            f"missing {', '.join(missing)} (found {', '.join(columns) or 'none'})"
        )
    values: dict[str, list[float]] = {c: [] for c in needed}
    zones = set()  # whether each time carries a zone (Unix seconds do)
    lines = []  # the file's line of each record (blank lines are skipped)
    for row in reader:
        line = reader.line_num
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        try:
            stamp = row["time"]
            if re.fullmatch(r"[-+.\deE]+", stamp):
                moment, zoned = float(stamp), True
            else:
                moment, offset = _epoch_seconds(stamp, "")
                zoned = offset is not None
            values["time"].append(moment)
            zones.add(zoned)
            for name in needed[1:]:
                values[name].append(float(row[name]))
        except ValueError as error:
            raise ValueError(f"{path}, line {line}: not a number or time ({error})") from error
        lines.append(line)
    if len(zones) > 1:
        raise ValueError(
            f"{path}: some times carry a time zone (a UTC offset, or Unix seconds) and some do "
            "not; write every time one way"
        )
    local = zones == {False}
    if local:
        _check_times_rise(
            path,
            values["time"],
            lines,
            lambda t: f"time {_clock_text(t, True)}",
            "the times carry no UTC offset: the clock was set back (the end of summer "
            "time?), and the records of the repeated hour cannot be told apart; write every "
            "time with its UTC offset (ISO 8601, e.g. 2026-10-25T02:30:00+01:00) or as Unix "
            "seconds",
        )
    columns = (values["time"], values["voltage"], values["current"], values["charge"])
    return _log(str(path), *columns, local_clock=local, wall_clock=local)


def _check_times_rise(
    path: Path,
    times: list[float],
    lines: list[int],
    shown: Callable[[float], str],
    cause: str,
) -> None:
    """Refuse a log whose times ``times`` (s, one per record, read from the file's lines
    ``lines``) go backwards from one record to the next, naming the line where they do
    (each time written by ``shown``) and what it means for this kind of log (``cause``).
    Times without a UTC offset that go back mean two runs or two readings of one clock,
    and sorted by time (:func:`_log`), their records interleave: the charge read at a scan
    would be the other run's (or hour's)."""
    back = np.flatnonzero(np.diff(np.asarray(times, np.float64)) < 0)
    if back.size == 0:
        return
    k = int(back[0])
    raise ValueError(
        f"{path}, line {lines[k + 1]}: {shown(times[k + 1])} is before the "
        f"{shown(times[k])} of line {lines[k]}: {cause}"
    )


def _read_mpt(path: Path, text: str) -> PotentiostatLog:
    lines = text.splitlines()
    header = re.search(r"Nb header lines\s*:\s*(\d+)", text)
    started = re.search(r"Acquisition started on\s*:\s*(.+)", text)
    if header is None or started is None:
        raise ValueError(
            f"{path}: not an EC-Lab text export (no 'Nb header lines' or 'Acquisition started "
            "on'); export the data as text with its header"
        )
    start, day_first = _mpt_date(started.group(1).strip(), path)
    n_header = int(header.group(1))
    names = lines[n_header - 1].split("\t")
    wanted = {"time/s": None, "Ewe/V": None, "I/mA": None, "(Q-Qo)/mA.h": None}
    for name in wanted:
        if name not in names:
            raise ValueError(f"{path}: EC-Lab export lacks the column {name!r}; export it")
        wanted[name] = names.index(name)
    columns: list[list[float]] = [[] for _ in wanted]
    numbers = []  # the file's line of each record
    for number, line in enumerate(lines[n_header:], start=n_header + 1):
        if not line.strip():
            continue
        cells = line.split("\t")
        try:
            for out, index in zip(columns, wanted.values(), strict=True):
                out.append(float(cells[index].replace(",", ".")))
        except (ValueError, IndexError) as error:
            raise ValueError(f"{path}, line {number}: unreadable record ({error})") from error
        numbers.append(number)
    # an export whose time/s restarts at 0 after 2 h read scans at 0.125, 0.25, 0.375 of
    # the charge as 0.625, 0.75, 0.875
    _check_times_rise(
        path,
        columns[0],
        numbers,
        lambda t: f"time/s {t:g}",
        "EC-Lab counts seconds from the acquisition's start, so the export holds more than "
        "one run (pasted together, or restarted); export the run of this charge alone",
    )
    time = [start + t for t in columns[0]]
    log = _log(
        str(path), time, columns[1], columns[2], columns[3], local_clock=True, wall_clock=False
    )
    return log if day_first is None else replace(log, day_first_shift_s=day_first - start)


def _mpt_date(text: str, path: Path) -> tuple[float, float | None]:
    """An EC-Lab start date (local time read as UTC, s): month first where it reads so,
    else day first; and the day-first reading where it reads both ways and differs (EC-Lab
    writes the date in the PC's order: 04/01/2026 is 1 April or 4 January)."""
    readings = []
    for order in ("%m/%d/%Y", "%d/%m/%Y"):
        for seconds in (" %H:%M:%S.%f", " %H:%M:%S"):
            try:
                moment = datetime.strptime(text, order + seconds)
            except ValueError:
                continue
            readings.append(moment.replace(tzinfo=UTC).timestamp())
            break
    if not readings:
        raise ValueError(
            f"{path}: 'Acquisition started on : {text}' is not a date EC-Lab writes "
            "(MM/DD/YYYY or DD/MM/YYYY, then HH:MM:SS)"
        )
    other = readings[1] if len(readings) == 2 and readings[1] != readings[0] else None
    return readings[0], other


def _log(
    source: str, *columns: list[float], local_clock: bool, wall_clock: bool
) -> PotentiostatLog:
    arrays = [np.asarray(c, np.float64) for c in columns]
    if arrays[0].size < 2:
        raise ValueError(f"{source}: the potentiostat log holds fewer than two records")
    for name, values in (("time", arrays[0]), ("charge", arrays[3])):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:  # a NaN charge was read as "no charge passes in the log"
            raise ValueError(
                f"{source}: record {bad[0] + 1} (of {values.size}, {bad.size} in all) holds no "
                f"{name} ({values[bad[0]]}): every record needs a time and a charge; remove "
                "those records"
            )
    order = np.argsort(arrays[0], kind="stable")
    return PotentiostatLog(
        source, *(a[order] for a in arrays), local_clock=local_clock, wall_clock=wall_clock
    )


def log_on_scan_clock(
    log: PotentiostatLog,
    scans: list[Path],
    start_s: np.ndarray,
    utc_offset_s: np.ndarray,
    log_offset_s: float | None = None,
) -> tuple[PotentiostatLog, np.ndarray, list[str]]:
    """The log and the scans' start times ``start_s`` (n_scans,) on one clock (module
    docstring, time zones), and a note when the log's local times were placed;
    ``utc_offset_s`` (n_scans,) NaN where a scan's start time carries none.

    A CSV's local times beside scans at more than one offset (summer time began or ended
    during the series) stay local, and each scan is read at its own local time: placed at
    the first scan's offset, the scans after the change read the charge an hour early
    (states of charge 0.375, 0.625 for 0.625, 0.875 of a 4 h charge, exit 0). An EC-Lab
    log's seconds run from its start, which lies before the first scan: the first scan's
    offset places it. ``log_offset_s``: the UTC offset (s) of the log's clock when given
    (``--log-utc-offset-h``), which places a log without a zone beside scans with one.

    Refused: scans at UTC (+00:00, Z) beside a log without a zone, unless its offset is
    given: a writer that records UTC says nothing of the potentiostat's clock (scans at
    09:00-11:00 UTC beside an EC-Lab log started at 09:00 in Berlin, 08:00 UTC, read 0,
    0.25 and 0.5 for 0.25, 0.5 and 0.75 of a 4 h charge, exit 0)."""
    zoned = np.isfinite(utc_offset_s)
    if log_offset_s is not None:
        if not log.local_clock:
            raise ValueError(
                f"{log.source}: its times carry a time zone (a UTC offset, or Unix seconds); "
                "leave --log-utc-offset-h out"
            )
        if not zoned.any():
            raise ValueError(
                f"{scans[0]}::/entry/start_time carries no UTC offset: the log's offset "
                "(--log-utc-offset-h) cannot place it beside the scans; write the scans' start "
                "times with their UTC offset (ISO 8601, e.g. 2026-01-02T08:00:00+01:00)"
            )
        if log.wall_clock:
            _refuse_wall_clock_change(log, log_offset_s)
        note = (
            f"the times of {log.source} carry no time zone: read at the UTC offset given, "
            f"{log_offset_s / 3600:+g} h"
        )
        return log.at_offset(log_offset_s), start_s, [note]
    if not zoned.any():
        if not log.local_clock:
            raise ValueError(
                f"{log.source}: its times carry a time zone (a UTC offset, or Unix seconds) "
                f"but the scans' start times do not ({scans[0]}::/entry/start_time): the two "
                "clocks cannot be matched; write the scans' start times with their UTC "
                "offset (ISO 8601, e.g. 2026-01-02T08:00:00+01:00)"
            )
        if not (not log.wall_clock and np.isfinite(start_s).any()):
            return log, start_s, []
        # seconds since the log's start beside the scans' wall clock, whose place is not
        # known: a note, not a refusal (some place changes its clock in a few weeks a year)
        last = int(np.nanargmax(start_s))
        zone = _zone_change(float(log.time_s[0]), float(start_s[last]), None)
        if zone is None:
            return log, start_s, []
        note = (
            f"{_summer_time_change(log, scans[last], zone)}; if the scans' clock is one of "
            "them, every state of charge after the change is an hour of the charge off. "
            "Write the scans' start times with their UTC offset (ISO 8601, e.g. "
            "2026-03-29T03:30:00+02:00) to have it checked"
        )
        return log, start_s, [note]
    if not log.local_clock:
        return log, start_s, []
    offsets = np.unique(utc_offset_s[zoned])
    listed = ", ".join(f"{o / 3600:+g}" for o in offsets)
    if offsets.size > 1:
        _refuse_offsets_no_clock_changes(scans, start_s, utc_offset_s)
    if offsets.size > 1 and log.wall_clock:
        note = (
            f"the times of {log.source} carry no time zone: each scan read at its own local "
            f"time (the scans record the UTC offsets {listed} h: summer time changed)"
        )
        return log, start_s + utc_offset_s, [note]
    if offsets.size == 1 and offsets[0] == 0:
        raise ValueError(
            f"{log.source}: its times carry no time zone, and the scans' start times are in "
            f"UTC ({scans[np.flatnonzero(zoned)[0]]}::/entry/start_time, +00:00): a writer "
            "that records UTC says nothing of the potentiostat's clock, and read as UTC a log "
            "of a clock an hour ahead puts every state of charge an hour of the charge off. "
            "Give the UTC offset of the log's clock (--log-utc-offset-h, h; 0 where it is UTC), "
            "or the log with its times' UTC offset (a CSV, ISO 8601 or Unix seconds)"
        )
    first = int(np.flatnonzero(zoned)[0])
    offset = float(utc_offset_s[first])
    _refuse_summer_time_change(log, scans[first], float(start_s[first]), offset)
    note = (
        f"the times of {log.source} carry no time zone: read at the scans' UTC offset "
        f"{offset / 3600:+g} h"
    )
    if offsets.size > 1:
        note += f" (the first scan's, as the log's start precedes it; the scans record {listed} h)"
    return log.at_offset(offset), start_s, [note]


@functools.cache
def _zone_database() -> tuple[tuple[str, zoneinfo.ZoneInfo], ...]:
    """Every zone of the zone database, by name (none where no database is installed)."""
    try:
        names = sorted(zoneinfo.available_timezones())
    except (OSError, ValueError):  # pragma: no cover - no zone database
        return ()
    zones = []
    for name in names:
        try:
            zones.append((name, zoneinfo.ZoneInfo(name)))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            continue
    return tuple(zones)


def _zone_change(first_local_s: float, last_s: float, utc_offset_s: float | None) -> str | None:
    """A time zone of the zone database whose UTC offset at the local time
    ``first_local_s`` (s since the epoch of the local time read as UTC) differs from its
    offset at ``last_s``: the local time, likewise, when ``utc_offset_s`` is None; else
    the instant (s since the epoch), where the zone's offset is ``utc_offset_s``. None
    when no zone's offset changes between them, or no zone database is installed."""
    first = datetime.fromtimestamp(first_local_s, UTC).replace(tzinfo=None)
    last = datetime.fromtimestamp(last_s, UTC)
    for name, zone in _zone_database():
        if utc_offset_s is None:
            at_last = last.replace(tzinfo=zone).utcoffset()
        else:
            at_last = last.astimezone(zone).utcoffset()
            if at_last is None or at_last.total_seconds() != utc_offset_s:
                continue
        if first.replace(tzinfo=zone).utcoffset() != at_last:
            return name
    return None


def _refuse_offsets_no_clock_changes(
    scans: list[Path], start_s: np.ndarray, utc_offset_s: np.ndarray
) -> None:
    """Refuse scans whose start times' UTC offsets change from one to the next (in time)
    where no place's clock at the first offset changes to the second between them (the zone
    database): one start time written at another offset, not summer time. Beside a CSV
    without zones each scan is read at its own local time: a January series at +01:00 with
    its last scan written at +02:00 (the same instant) read that scan's charge an hour
    late (0.583 for 0.333 of a 4 h charge) and found a lagging zone, exit 0."""
    if not _zone_database():  # pragma: no cover - no zone database to tell
        return
    order = [k for k in np.argsort(start_s) if np.isfinite(utc_offset_s[k] + start_s[k])]
    for a, b in itertools.pairwise(order):
        if utc_offset_s[a] == utc_offset_s[b]:
            continue
        instants = [datetime.fromtimestamp(float(start_s[k]), UTC) for k in (a, b)]
        wanted = [float(utc_offset_s[k]) for k in (a, b)]
        if any(
            [moment.astimezone(zone).utcoffset().total_seconds() for moment in instants] == wanted
            for _, zone in _zone_database()
        ):
            continue
        raise ValueError(
            f"{scans[a]}::/entry/start_time is at UTC {wanted[0] / 3600:+g} h and "
            f"{scans[b]}::/entry/start_time, the next scan, at {wanted[1] / 3600:+g} h, but no "
            "place's clock changes between those offsets between the two (no summer time "
            "change then): one of them was written with another UTC offset, and read at its "
            "own local time beside the log it would be an hour of the charge off. Write "
            "every start time with the UTC offset of the scans' clock at that time"
        )


def _refuse_wall_clock_change(log: PotentiostatLog, utc_offset_s: float) -> None:
    """Refuse the UTC offset ``utc_offset_s`` given for a CSV log whose local times are each
    record's reading of the clock (:attr:`PotentiostatLog.wall_clock`) when a place's clock
    at that offset at the log's first record changed its offset (summer time) by its last:
    one offset for every record put those after the change an hour off (a 4 h charge
    through the start of summer time, scans at 1.5, 2.5 and 3.5 h read no state of charge,
    0.375 and 0.625 for 0.375, 0.625 and 0.875, exit 0). Where the clock did not change
    (a place without summer time) one offset is right: which, the log does not say."""
    first, last = (
        datetime.fromtimestamp(float(t), UTC).replace(tzinfo=None)
        for t in (log.time_s[0], log.time_s[-1])
    )
    for name, zone in _zone_database():
        at_first = first.replace(tzinfo=zone).utcoffset()
        if at_first is None or at_first.total_seconds() != utc_offset_s:
            continue
        if last.replace(tzinfo=zone).utcoffset() != at_first:
            raise ValueError(
                f"{log.source}: its times carry no UTC offset, each the reading of a clock "
                f"that may follow summer time, and between its first record "
                f"({_clock_text(float(log.time_s[0]), True)}) and its last "
                f"({_clock_text(float(log.time_s[-1]), True)}) the clocks of some places at "
                f"the offset given ({utc_offset_s / 3600:+g} h) changed it (e.g. {name}): one "
                "offset for every record would put those after the change an hour of the "
                "charge off. Write the log's times with their UTC offset (ISO 8601) or as Unix "
                "seconds; or, when the scans' start times carry their offsets, leave "
                "--log-utc-offset-h out (each scan is then read at its own local time)"
            )


def _summer_time_change(log: PotentiostatLog, scan: Path, zone: str) -> str:
    """In words: an EC-Lab log counts seconds from its start, and a place's clock (``zone``,
    an example) changed its UTC offset between that start and ``scan``."""
    return (
        f"{log.source}: EC-Lab counts seconds from its start "
        f"({_clock_text(float(log.time_s[0]), True)}), and between it and {scan} the "
        f"clocks of some places changed their UTC offset (summer time; e.g. {zone})"
    )


def _refuse_summer_time_change(
    log: PotentiostatLog, scan: Path, first_s: float, utc_offset_s: float
) -> None:
    """Refuse an EC-Lab log (seconds counted from its local start) when a place whose clock
    is at ``utc_offset_s`` at the instant ``first_s`` of the first scan ``scan`` changed
    its UTC offset (summer time) since the log's start. Placed at the scans' offset, a log
    started at 01:30 in winter time read the scans of 03:30, 04:30 and 05:30 (+02:00,
    summer time since 03:00) two, three and four hours into the charge instead of one, two
    and three: states of charge 0.5, 0.75 and 1.0 for 0.25, 0.5 and 0.75, exit 0. Where
    the clock did not change (a zone without summer time) those were right: which, the
    files do not say."""
    zone = _zone_change(float(log.time_s[0]), first_s, utc_offset_s)
    if zone is None:
        return
    raise ValueError(
        f"{_summer_time_change(log, scan, zone)}: whether the log's start is at the scans' "
        "offset cannot be told, and an hour off would put every state of charge an hour of "
        "the charge off. Give the UTC offset of the log's clock at its start "
        "(--log-utc-offset-h, h), or the log as a CSV whose times carry their UTC offset "
        "(ISO 8601, e.g. 2026-03-29T01:30:00+01:00) or are Unix seconds"
    )


def soc_from_log(
    log: PotentiostatLog,
    start_s: np.ndarray,
    *,
    capacity_mah: float | None,
    max_gap_s: float,
) -> tuple[np.ndarray, list[str]]:
    """State of charge at each scan's moment ``start_s`` (its middle, or its start; on the
    log's clock) from the log (NaN where it cannot be read), and a warning per such scan.

    The empty cell is the lowest charge of the log up to the first scan: its start, or
    the end of a discharge that precedes the charge. From the log's start, a log that first
    emptied a half-charged cell read the scans at 0.5, 0.75 and 1.0 of the charge as 0,
    0.5 and 1.0 (0, 0.25, 0.5 with the capacity given), exit 0. Refused: a log that
    covers none of the scans (its times are not on the scans' clock)."""
    passed, capacity, emptied = _charge_passed(log, start_s, capacity_mah)
    _check_charge_continuous(log, emptied, start_s)
    if capacity_mah is not None:
        _check_log_charge(log, float(np.abs(passed).max()), capacity_mah)
    soc = np.interp(start_s, log.time_s, passed / capacity)
    notes = []
    if passed[0] > SOC_SLACK * capacity:
        notes.append(
            f"{log.source} discharges by {passed[0]:.4g} mAh before the "
            f"first scan: the cell taken as empty at {_clock_text(emptied, log.local_clock)}, "
            "where the charge is lowest, not at the log's start"
        )
    t0, t1 = log.time_s[0], log.time_s[-1]
    _check_log_covers(log, start_s)
    early = np.flatnonzero(np.isfinite(start_s) & (start_s < t0))
    if early.size:
        notes.append(
            f"{log.source} starts after {early.size} of the scans (from step {early[0]}): the "
            "charge passed before its first record is not counted, and the states of charge "
            "count from that record as the empty cell; check that the log and the scans are "
            "on one clock"
        )
    for k, moment in enumerate(start_s):
        if not math.isfinite(moment):
            soc[k] = np.nan
            notes.append(f"step {k}: {NO_START_TIME}")
            continue
        when = _clock_text(moment, log.local_clock)
        if moment < t0 or moment > t1:
            soc[k] = np.nan
            notes.append(
                f"step {k}: scan at {when} is outside the log {log.source} "
                f"({_clock_text(t0, log.local_clock)} to {_clock_text(t1, log.local_clock)}); "
                "kept with no state of charge"
            )
            continue
        after = int(np.searchsorted(log.time_s, moment))
        before = max(after - 1, 0)
        after = min(after, log.time_s.size - 1)
        if log.time_s[after] == moment:
            continue
        gap = log.time_s[after] - log.time_s[before]
        if gap > max_gap_s:
            soc[k] = np.nan
            notes.append(
                f"step {k}: scan at {when} falls in a {gap:.0f} s gap of the log {log.source} "
                f"(more than {max_gap_s:g} s); kept with no state of charge"
            )
    _check_soc_range(log, soc, capacity, capacity_mah is None)
    return soc, notes


def _charge_passed(
    log: PotentiostatLog, start_s: np.ndarray, capacity_mah: float | None
) -> tuple[np.ndarray, float, float]:
    """The charge passed since the empty cell (mAh, one per record; the empty cell as
    :func:`_empty_cell` finds it before the scans' moments ``start_s``), the capacity the
    states of charge count over (mAh: ``capacity_mah``, else the most charge passed) and
    when (s) the cell was empty."""
    empty, emptied = _empty_cell(log, start_s)
    passed = log.charge_mAh - empty
    capacity = capacity_mah if capacity_mah is not None else float(np.abs(passed).max())
    if not capacity > 0:
        raise ValueError(f"{log.source}: no charge passes in the log; give --capacity-mah")
    return passed, capacity, emptied


CHARGE_JUMP = 0.1
"""Largest share of the log's charge range one record may add or remove at a rate over
:data:`CHARGE_JUMP_RATE` times the log's median rate before the log is refused as not
cumulative (:func:`_check_charge_continuous`)."""
CHARGE_JUMP_RATE = 10.0


def _check_charge_continuous(log: PotentiostatLog, emptied_s: float, start_s: np.ndarray) -> None:
    """Refuse a log whose charge jumps between two records, from the empty cell (at
    ``emptied_s``) to the last scan of ``start_s``: by over :data:`CHARGE_JUMP` of the
    log's charge range, at over :data:`CHARGE_JUMP_RATE` times its median rate (of the
    records where it changes), against the current (the charge moving the other way than
    the current moves it elsewhere in the log, or no current). A counter that restarts at 0
    (a potentiostat's capacity per step or per cycle) read a charge at 0.25, 0.5 and 1 as
    0.5, 0 and 1, exit 0. The charge's and the current's units and signs do not matter; a
    gap of the log, or a sparse log's steps while the current flows (a few records a charge,
    a slow constant-voltage tail after them), pass."""
    known = np.asarray(start_s, np.float64)[np.isfinite(start_s)]
    if known.size == 0:
        return
    used = (log.time_s >= emptied_s) & (log.time_s <= known.max())
    used[1:] |= used[:-1]  # the record after the last scan, which the last scan is read from
    charge, time, current = log.charge_mAh[used], log.time_s[used], log.current_mA[used]
    step, span = np.diff(charge), np.diff(time)
    flowing = 0.5 * (current[1:] + current[:-1])  # mean current of each interval
    moving = (step != 0) & (span > 0)
    spread = float(np.ptp(log.charge_mAh))
    if not moving.any() or not spread > 0:
        return
    typical = float(np.median(np.abs(step[moving]) / span[moving]))
    driven = moving & (flowing != 0)
    # the way the current moves the charge in this log (+1, -1; 0 where it never flows)
    sense = np.sign(np.median(step[driven] * flowing[driven])) if driven.any() else 0.0
    against = (np.sign(step * flowing) != sense) | (flowing == 0) | ~np.isfinite(flowing)
    jumps = (
        (np.abs(step) > CHARGE_JUMP * spread)
        & (np.abs(step) > CHARGE_JUMP_RATE * typical * span)
        & against
    )
    if not jumps.any():
        return
    k = int(np.flatnonzero(jumps)[0])
    clock = [_clock_text(t, log.local_clock) for t in time[k : k + 2]]
    raise ValueError(
        f"{log.source}: the charge jumps from {charge[k]:.4g} to {charge[k + 1]:.4g} between "
        f"{clock[0]} and {clock[1]} ({span[k]:.0f} s; {abs(step[k]) / spread:.0%} of the "
        f"log's charge range, the current {flowing[k]:.4g}): no current passes that, so the "
        "column is not the charge passed since the log's start (a counter that restarts per "
        "step or per cycle?). Export the cumulative charge (EC-Lab: (Q-Qo)/mA.h)"
    )


def _empty_cell(log: PotentiostatLog, start_s: np.ndarray) -> tuple[float, float]:
    """The charge (mAh) of the empty cell, the lowest of the log up to the first scan of
    ``start_s`` (the whole log when none has a time), and when (s) the log last reaches it."""
    known = np.asarray(start_s, np.float64)[np.isfinite(start_s)]
    first = known.min() if known.size else log.time_s[-1]
    before = np.flatnonzero(log.time_s <= first)
    if before.size == 0:
        return float(log.charge_mAh[0]), float(log.time_s[0])
    charge = np.where(np.isfinite(log.charge_mAh[before]), log.charge_mAh[before], np.inf)
    # the last of equal lows: a counter restarted at 0 for the charge starts it there
    lowest = int(before[charge.size - 1 - np.argmin(charge[::-1])])
    return float(log.charge_mAh[lowest]), float(log.time_s[lowest])


def _check_log_covers(log: PotentiostatLog, start_s: np.ndarray) -> None:
    """Refuse a log that covers none of the scans that have a start time: its clock is not
    theirs (times in seconds or hours since the log's start, read as Unix seconds, put
    the log in 1970, and every step was kept with no state of charge, exit 0)."""
    known = np.asarray(start_s, np.float64)[np.isfinite(start_s)]
    if known.size == 0 or ((known >= log.time_s[0]) & (known <= log.time_s[-1])).any():
        return
    local = log.local_clock
    raise ValueError(
        f"{log.source}: the log runs from {_clock_text(log.time_s[0], local)} to "
        f"{_clock_text(log.time_s[-1], local)}, the scans start from "
        f"{_clock_text(known.min(), local)} to {_clock_text(known.max(), local)}: it covers "
        "none of them. Give the log of this charge, with its times as ISO 8601 or Unix "
        "seconds (not seconds or hours since its start)"
    )


def _clock_text(seconds: float, local: bool) -> str:
    """ISO 8601 text of ``seconds`` since the epoch: UTC, or local time (no offset)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment.replace(tzinfo=None).isoformat()} local" if local else moment.isoformat()


SOC_SLACK = 0.05
"""How far (fraction of full charge) a state of charge may leave 0-1, or one a scan records
differ from the log's over the scan, before it is refused: a writer's value rounded, or
counted over the cell's nominal capacity where the log counts over the charge it passed
(5 % apart at full charge)."""


COULOMBS_PER_MAH = 3.6
UNIT_MATCH = 0.1
"""How close (fraction) the log's charge over its integrated current must come to
:data:`COULOMBS_PER_MAH` to be taken as written in coulombs."""


def _check_log_charge(log: PotentiostatLog, passed_mah: float, capacity_mah: float) -> None:
    """Refuse, beside the capacity given (``capacity_mah``; ``passed_mah``: the most charge
    passed since the empty cell), a log whose charge is not in mAh: one that passes
    less than :data:`SOC_SLACK` of ``capacity_mah`` (in Ah, the tiny twin's charge ran the
    states of charge 0-0.001 and found no damaged zone, exit 0), or whose charge passed is
    :data:`COULOMBS_PER_MAH` times its current (mA) integrated over time (within
    :data:`UNIT_MATCH`): in coulombs, the first quarter of a 4 mAh charge read 0.075, 0.45
    and 0.9 for 0.021, 0.125 and 0.25, within 0-1, exit 0. (Without a capacity given, the
    charge is counted over the log's own: in any unit.)"""
    if passed_mah < SOC_SLACK * capacity_mah:
        raise ValueError(
            f"{log.source}: the charge passed over the whole log is {passed_mah:.4g}, "
            f"{100 * passed_mah / capacity_mah:.2g} % of --capacity-mah {capacity_mah:g} mAh: "
            "the states of charge would not rise over the series. Write the log's charge in "
            "mAh (not Ah), and give --capacity-mah in mAh"
        )
    integrated = float(np.trapezoid(log.current_mA, log.time_s)) / 3600.0  # mAh
    net = float(log.charge_mAh[-1] - log.charge_mAh[0])
    # a log whose current nets out (cycled) says nothing of the charge's unit
    if abs(integrated) < SOC_SLACK * capacity_mah:
        return
    if abs(abs(net / integrated) / COULOMBS_PER_MAH - 1) > UNIT_MATCH:
        return
    raise ValueError(
        f"{log.source}: its charge changes by {net:.4g} over the log, {abs(net / integrated):.3g}"
        f" times its current integrated over time ({integrated:.4g} mAh): the charge is in "
        f"coulombs (1 mAh = {COULOMBS_PER_MAH:g} C), and beside --capacity-mah every state of "
        "charge would be 3.6 times too large. Write the log's charge in mAh"
    )


def _check_soc_range(
    log: PotentiostatLog, soc: np.ndarray, capacity: float, from_log: bool
) -> None:
    """Refuse states of charge outside 0-1 (by more than :data:`SOC_SLACK`): a log that
    counts charge negative while charging, or a capacity in Ah given as mAh, would run
    every curve along a wrong axis."""
    finite = soc[np.isfinite(soc)]
    if finite.size == 0 or (finite.min() >= -SOC_SLACK and finite.max() <= 1 + SOC_SLACK):
        return
    source = "the charge passed over the whole log" if from_log else "--capacity-mah"
    raise ValueError(
        f"{log.source}: the state of charge at the scans runs from {finite.min():.3g} to "
        f"{finite.max():.3g} (charge passed since the empty cell over {capacity:.4g} mAh, "
        f"{source}); it must stay within 0-1. Check that --capacity-mah is in mAh and that "
        "the log counts charge positive while the cell charges (the lowest charge of the "
        "log up to the first scan is taken as the empty cell)"
    )


def build_timeline(
    scans: list[Path],
    log: PotentiostatLog | None,
    *,
    capacity_mah: float | None,
    max_gap_s: float,
    log_utc_offset_h: float | None = None,
) -> Timeline:
    """Times (of each scan's middle, its start without a recorded end) and states of charge
    of the steps: the log's at those times when given (refused where the scans record one
    it contradicts: :func:`_check_log_agrees`), else the scans'; ``log_utc_offset_h``: the
    UTC offset (h) of the clock of a log whose times carry none (:func:`log_on_scan_clock`)."""
    recorded = scan_times(scans)
    start, middle = recorded.start_s, recorded.middle_s
    first = np.nanmin(start) if np.isfinite(start).any() else np.nan
    time_s = middle - first
    if log is not None:
        log, read_day_first = _date_order(log, middle)
        log_offset = None if log_utc_offset_h is None else 3600.0 * log_utc_offset_h
        local, read_s = log.local_clock, float(log.time_s[0])
        log, on_log, placed = log_on_scan_clock(
            log, scans, middle, recorded.utc_offset_s, log_offset
        )
        soc, notes = soc_from_log(log, on_log, capacity_mah=capacity_mah, max_gap_s=max_gap_s)
        soc, notes = _recorded_without_time(scans, recorded, soc, notes)
        # the offset (s) the log's local times were placed at, where one offset placed them
        at_offset = read_s - float(log.time_s[0]) if local and not log.local_clock else None
        _check_log_agrees(scans, recorded, log, on_log, soc, capacity_mah, at_offset)
        _check_soc_rises(scans, soc, f"from the log {log.source}")
        at_start = np.isfinite(start) & ~np.isfinite(recorded.end_s)
        if at_start.any():
            notes.append(
                f"{int(at_start.sum())} of {start.size} scans record no /entry/end_time: "
                "their state of charge is read at their start, not at their middle"
            )
        return Timeline(
            soc, time_s, f"potentiostat log {log.source}", [*read_day_first, *placed, *notes]
        )
    _check_scan_soc(scans, recorded.soc)
    _check_soc_rises(scans, recorded.soc, "its /entry/sample/state_of_charge")
    notes = [
        f"step {k}: {scans[k]} records no state of charge (/entry/sample/state_of_charge); "
        "kept with none: give a potentiostat log (--log)"
        for k in np.flatnonzero(~np.isfinite(recorded.soc))
    ]
    notes += _repeated_states(scans, recorded)
    return Timeline(recorded.soc, time_s, "scan metadata", notes)


NO_START_TIME = "the scan has no start time; no state of charge"


def _recorded_without_time(
    scans: list[Path], recorded: ScanTimes, soc: np.ndarray, notes: list[str]
) -> tuple[np.ndarray, list[str]]:
    """``soc`` (n_scans,) from the log with the state of charge a scan records where it has
    no start time to place it on the log, and ``notes`` saying so (a step recording 0.5
    was kept with none, and the note said it had none)."""
    taken = np.flatnonzero(~np.isfinite(recorded.start_s) & np.isfinite(recorded.soc))
    if not taken.size:
        return soc, notes
    soc = soc.copy()
    soc[taken] = recorded.soc[taken]
    dropped = {f"step {k}: {NO_START_TIME}" for k in taken}
    notes = [note for note in notes if note not in dropped] + [
        f"step {k}: {scans[k]} has no start time to place it on the log: the state of charge "
        f"it records ({recorded.soc[k]:g}, /entry/sample/state_of_charge) taken"
        for k in taken
    ]
    return soc, notes


def _date_order(log: PotentiostatLog, scans_s: np.ndarray) -> tuple[PotentiostatLog, list[str]]:
    """The log with its start date read in the order that places it at the scans (``scans_s``
    (n_scans,), s; NaN unknown), and a note when that is day first; ValueError when both
    orders or neither place it within a day of them. Read month first, a log started on
    4 January (04/01/2026) was put on 1 April, and the refusal blamed summer time."""
    shift = log.day_first_shift_s
    known = scans_s[np.isfinite(scans_s)]
    if shift is None or not known.size:
        return log, []
    day = 86400.0

    def near(times: np.ndarray) -> bool:
        return times[0] - day <= known.min() and known.max() <= times[-1] + day

    as_read, day_first = near(log.time_s), near(log.time_s + shift)
    shown = [_clock_text(float(log.time_s[0] + s), True) for s in (0.0, shift)]
    if as_read == day_first:
        raise ValueError(
            f"{log.source}: its start date reads month first ({shown[0]}) and day first "
            f"({shown[1]}), and {'both place' if as_read else 'neither places'} the log "
            "within a day of the scans: which it is cannot be told. Export the log with the "
            "date written unambiguously, or as a CSV with ISO 8601 times"
        )
    if as_read:
        return replace(log, day_first_shift_s=None), []
    note = (
        f"{log.source}: its start date read day first ({shown[1]}): month first "
        f"({shown[0]}) it lies away from the scans"
    )
    return replace(log, time_s=log.time_s + shift, day_first_shift_s=None), [note]


def _repeated_states(scans: list[Path], recorded: ScanTimes) -> list[str]:
    """A note per pair of consecutive steps that record one state of charge and no start
    time to tell them apart: one scan given twice (re-exported, its values a little off,
    so not refused as a copy) counted twice in the curves and the cores' shrink rate,
    exit 0 (the tiny twin: 18889 um2 per unit charge for 18757)."""
    notes = []
    for before, after in itertools.pairwise(range(len(scans))):
        same = recorded.soc[before] == recorded.soc[after]
        untimed = not (
            np.isfinite(recorded.start_s[before]) and np.isfinite(recorded.start_s[after])
        )
        if same and untimed:
            notes.append(
                f"steps {before} and {after} ({scans[before].name}, {scans[after].name}) record "
                f"one state of charge ({recorded.soc[after]:g}) and no start time to tell them "
                "apart: one scan given twice? Each counts in the curves and the cores' rates"
            )
    return notes


CLOCK_HOURS = 26
"""The largest difference (h) between two places' clocks (UTC-12 to UTC+14): the shifts
tried to tell whether a log on another clock explains its disagreement with the scans."""


def _soc_miss(
    log: PotentiostatLog,
    recorded: ScanTimes,
    on_log_s: np.ndarray,
    capacity_mah: float | None,
    shift_s: float = 0.0,
) -> np.ndarray:
    """Per scan (n_scans,): how far (fraction of full charge) the state of charge it records
    lies outside the log's over the scan (from its start to its end, its start alone
    without a recorded end; read ``shift_s`` later on the log's clock), 0 inside; NaN where
    either is unknown. ``on_log_s``: each scan's middle on the log's clock."""
    moved = on_log_s + shift_s
    passed, capacity, _ = _charge_passed(log, moved, capacity_mah)
    to_log = moved - recorded.middle_s  # from the scans' clock to the log's, per scan

    def read(moment_s: np.ndarray) -> np.ndarray:
        at = moment_s + to_log
        return np.interp(at, log.time_s, passed / capacity, left=np.nan, right=np.nan)

    at_start = read(recorded.start_s)
    at_end = np.where(np.isfinite(recorded.end_s), read(recorded.end_s), at_start)
    low, high = np.fmin(at_start, at_end), np.fmax(at_start, at_end)
    return np.maximum(np.maximum(low - recorded.soc, recorded.soc - high), 0.0)


def _check_log_agrees(
    scans: list[Path],
    recorded: ScanTimes,
    log: PotentiostatLog,
    on_log_s: np.ndarray,
    soc: np.ndarray,
    capacity_mah: float | None,
    at_offset_s: float | None,
) -> None:
    """Refuse the log's states of charge ``soc`` (n_scans,) where the scans also record one
    (``recorded.soc``) and the two differ by more than :data:`SOC_SLACK` anywhere over a
    scan (the writer may read it at the scan's start, middle or end, and round it), naming
    the capacity, or the whole-hour shift of the log's clock, that makes them agree
    (``at_offset_s``: the UTC offset, s, the log's local times were placed at; None where
    none placed them; ``on_log_s``: each scan's middle on the log's clock). The log alone
    was used: its clock 2 h off the scans' (placed at +03:00 beside a PC at
    +01:00) read scans recording 0.1 and 0.4 of a 5 h charge as 0.5 and 0.8, a capacity
    given twice too large read 0.1, 0.4 and 0.8 as 0.05, 0.2 and 0.4, exit 0."""
    miss = _soc_miss(log, recorded, on_log_s, capacity_mah)
    miss[~np.isfinite(soc)] = np.nan  # a scan in a gap of the log is kept without one
    wrong = np.flatnonzero(miss > SOC_SLACK)
    if wrong.size == 0:
        return
    compared = int(np.isfinite(miss).sum())
    k = int(wrong[0])
    said = (
        f"{scans[k]}::/entry/sample/state_of_charge records {recorded.soc[k]:.3g} (step {k}) "
        f"and the log {log.source} reads {soc[k]:.3g} there: of the {compared} scans that "
        f"record a state of charge inside the log, {wrong.size} "
        f"{'differs' if wrong.size == 1 else 'differ'} from it by more than {SOC_SLACK:g} (up "
        f"to {np.nanmax(miss):.3g})."
    )
    if not np.isfinite(recorded.end_s[k]):
        said += (
            " It records no /entry/end_time, so the log is read at its start: record the "
            "scan's end if its value was read later in the scan."
        )
    hours = _clock_shift_h(log, recorded, on_log_s, capacity_mah)
    capacity = _agreeing_capacity(log, recorded, on_log_s, soc, capacity_mah)
    if capacity is not None:
        said += f" With --capacity-mah {capacity:.4g} every one agrees."
    if hours is not None:
        said += (
            f" Read {abs(hours):g} h {'later' if hours > 0 else 'earlier'} on the log, "
            f"every one agrees: the log's clock is likely of another time zone than the scans'"
        )
        if at_offset_s is not None:
            said += (
                f" (its local times were read at UTC{at_offset_s / 3600:+g} h; give "
                f"--log-utc-offset-h {at_offset_s / 3600 + hours:+g} if that is its clock's "
                "offset)"
            )
        said += "."
    raise ValueError(
        f"{said} Check --capacity-mah (mAh), --log-utc-offset-h and that the log is this "
        "charge's; or correct the scans' values, or leave --log out to use them"
    )


def _agreeing_capacity(
    log: PotentiostatLog,
    recorded: ScanTimes,
    on_log_s: np.ndarray,
    soc: np.ndarray,
    capacity_mah: float | None,
) -> float | None:
    """The capacity (mAh; the median over the scans of the one that turns the log's state of
    charge ``soc`` (n_scans,) into the scan's) at which the log agrees with the scans
    (:func:`_all_agree`); None where none does."""
    both = np.isfinite(soc) & (recorded.soc > SOC_SLACK) & (soc > SOC_SLACK)
    if both.sum() < 2:
        return None
    _, capacity, _ = _charge_passed(log, on_log_s, capacity_mah)
    candidate = capacity * float(np.median(soc[both] / recorded.soc[both]))
    miss = _soc_miss(log, recorded, on_log_s, candidate)
    miss[~np.isfinite(soc)] = np.nan
    return candidate if _all_agree(miss) else None


def _clock_shift_h(
    log: PotentiostatLog, recorded: ScanTimes, on_log_s: np.ndarray, capacity_mah: float | None
) -> int | None:
    """The shift (whole hours, the smallest; up to :data:`CLOCK_HOURS`) of the scans on the
    log's clock at which the log agrees with them (:func:`_all_agree`); None where none
    does."""
    for hours in sorted(range(-CLOCK_HOURS, CLOCK_HOURS + 1), key=lambda h: (abs(h), h)):
        if hours == 0:
            continue
        if _all_agree(_soc_miss(log, recorded, on_log_s, capacity_mah, 3600.0 * hours)):
            return hours
    return None


def _all_agree(miss: np.ndarray) -> bool:
    """Whether at least two scans were compared (``miss``, as :func:`_soc_miss`: NaN where
    not), and each agrees within :data:`SOC_SLACK`: one alone may match a wrong clock or
    capacity by chance."""
    known = miss[np.isfinite(miss)]
    return bool(known.size >= 2 and known.max() <= SOC_SLACK)


def _check_scan_soc(scans: list[Path], soc: np.ndarray) -> None:
    """Refuse states of charge recorded in the scans outside 0-1 (by more than
    :data:`SOC_SLACK`): a state of charge in percent (0-100) ran the curves along an axis
    100 times too long, and every pixel's lag with it (36 damaged zones found instead of
    one on the tiny twin, lags of 0.4-19.3 labelled fractions of full charge)."""
    outside = np.flatnonzero(np.isfinite(soc) & ((soc < -SOC_SLACK) | (soc > 1 + SOC_SLACK)))
    if outside.size == 0:
        return
    k = int(outside[0])
    finite = soc[np.isfinite(soc)]
    percent = " (in percent? divide by 100)" if finite.max() <= 100 + 100 * SOC_SLACK else ""
    raise ValueError(
        f"{scans[k]}::/entry/sample/state_of_charge is {soc[k]:g} (step {k}; the scans "
        f"record {finite.min():g} to {finite.max():g}): the state of charge is a fraction "
        f"of full charge, 0-1{percent}; correct the scans, or give a potentiostat log (--log)"
    )


SOC_DROP_SLACK = 0.01
"""How far (fraction of full charge) the state of charge may fall from one step to the
next (a log's charge counter drifting at rest) before the series is refused."""


def _check_soc_rises(scans: list[Path], soc: np.ndarray, source: str) -> None:
    """Refuse a state of charge that falls along the series (by more than
    :data:`SOC_DROP_SLACK`): the lags and half-lithiation points are read along a charge.
    Scans without start times given in a shuffled list (states of charge 1, 0, 0.5), or
    a discharge (1, 0.5, 0), found no damaged zone on the tiny twin (one, lag 0.19, in
    order) and no half lithiation, exit 0."""
    known = np.flatnonzero(np.isfinite(soc))
    for before, after in itertools.pairwise(known):
        if soc[after] < soc[before] - SOC_DROP_SLACK:
            raise ValueError(
                f"{scans[after]} (step {after}) has a state of charge of {soc[after]:.3g} "
                f"({source}), less than the {soc[before]:.3g} of {scans[before]} (step "
                f"{before}): an operando series follows a charge, its state of charge "
                "rising from step to step (a discharge is not analysed); give the scans in "
                "the order they were taken (a folder is ordered by /entry/start_time)"
            )

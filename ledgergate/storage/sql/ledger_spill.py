"""Spend records the database could not take, kept in append-only local files until it can (docs/decisions/0009).

Each gateway process writes its own file ``ledger-spill-<uuid>.jsonl`` in the spill directory and holds an
exclusive ``flock`` on it while it lives, so several processes (workers, instances on one host) may share the
directory: a file whose lock can be taken belongs to a process that is gone, and is adopted and replayed by the
next one that looks (at start-up, and whenever this process replays its own). Replaying twice is harmless: the
ledger keeps the first record of a request id.

A line is one JSON record. ``append`` returns only after ``fsync``: a record acknowledged to a client is on this
host's disk. A last line without its newline was cut by a crash before it was acknowledged: it is dropped (and
cut off before the next append, so it cannot corrupt a later line). A line that does not parse otherwise is moved
to ``<file>.rejected`` for the operator rather than lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import RequestStatus, SpendRecord

log = logging.getLogger("ledgergate.ledger")

SPILL_GLOB = "ledger-spill-*.jsonl"
DATABASE_MARKER = "DATABASE"


class SpillDirectoryError(RuntimeError):
    """The spill directory cannot be used: not writable, or it holds records of another database."""


_FORMAT = 1


def record_to_json(record: SpendRecord) -> bytes:
    return orjson.dumps(
        {
            "v": _FORMAT,
            "request_id": record.request_id,
            "key_id": record.key_id,
            "targets": [[target.type.value, target.id] for target in record.targets],
            "model": record.model,
            "deployment_id": record.deployment_id,
            "route": record.route,
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "cost_nanos": record.cost_nanos,
            "status": record.status.value,
            "charged_at_us": record.charged_at_us,
            "ended_at_us": record.ended_at_us,
            "user_id": record.user_id,
            "team_id": record.team_id,
            "organization_id": record.organization_id,
            "customer_id": record.customer_id,
            "tags": list(record.tags),
        }
    )


def record_from_json(line: bytes) -> SpendRecord:
    """The record of one spill line; ``ValueError`` (or ``KeyError``/``TypeError``) if it is not one."""
    data: dict[str, Any] = orjson.loads(line)
    if data.get("v") != _FORMAT:
        raise ValueError(f"unknown spill format {data.get('v')!r}")
    record = SpendRecord(
        request_id=str(data["request_id"]),
        key_id=str(data["key_id"]),
        targets=tuple(EntityRef(EntityType(kind), str(entity_id)) for kind, entity_id in data["targets"]),
        model=str(data["model"]),
        deployment_id=str(data["deployment_id"]),
        route=str(data["route"]),
        prompt_tokens=int(data["prompt_tokens"]),
        completion_tokens=int(data["completion_tokens"]),
        cost_nanos=int(data["cost_nanos"]),
        status=RequestStatus(data["status"]),
        charged_at_us=int(data["charged_at_us"]),
        ended_at_us=int(data["ended_at_us"]),
        user_id=data.get("user_id"),
        team_id=data.get("team_id"),
        organization_id=data.get("organization_id"),
        customer_id=data.get("customer_id"),
        tags=tuple(str(tag) for tag in data.get("tags") or ()),
    )
    # The gateway never spills these; a line that has them was altered, and must not lower anyone's spend.
    amounts = (record.cost_nanos, record.prompt_tokens, record.completion_tokens, record.charged_at_us)
    if min(amounts) < 0 or not record.request_id:  # (times are not compared: the wall clock may step back)
        raise ValueError(f"spill record {record.request_id!r} has a negative amount or no request id")
    return record


@dataclass
class SpillBacklog:
    """One spill file to replay, open and locked by this process (closed by ``done`` or ``give_back``); read in
    batches (``LedgerSpill.read_batch``) so a long outage's file never has to fit in memory."""

    path: Path
    handle: IO[bytes] | None = field(default=None, repr=False)
    lines_read: int = 0


class LedgerSpill:
    """The spill directory as seen by one process. Blocking calls (file I/O, fsync): run them in a thread."""

    def __init__(self, directory: Path, database_tag: str) -> None:
        self.directory = directory
        # Which database the records belong to: a directory shared by gateways on other databases would
        # replay records into the wrong ledger, so it is refused.
        self._database_tag = database_tag
        self._own: IO[bytes] | None = None  # this process's file, opened (and locked) at the first spill
        self._own_path: Path | None = None
        self.own_count = 0  # records in this process's file not yet replayed
        self.adoptable_count = 0  # records found in files of processes that are gone, not yet replayed

    @property
    def pending_count(self) -> int:
        return self.own_count + self.adoptable_count

    def append(self, records: Sequence[SpendRecord]) -> None:
        """Append the records and fsync; only then are they kept (``OSError`` if the disk refuses)."""
        if self._own is None:
            self._open_own()
        assert self._own is not None
        start = self._own.tell()
        try:
            self._own.write(b"".join(record_to_json(record) + b"\n" for record in records))
            self._own.flush()
            os.fsync(self._own.fileno())
        except BaseException:
            # A part written (disk full): cut it, so the next append cannot merge with a torn line.
            with contextlib.suppress(OSError):
                self._own.truncate(start)
                self._own.seek(start)
            raise
        self.own_count += len(records)

    def check_usable(self) -> None:
        """At start-up, not in the middle of an outage: the directory can be created and written, and holds no
        other database's records (``SpillDirectoryError``)."""
        existing = self.directory
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise SpillDirectoryError(
                f"ledger spill directory {self.directory} cannot be created or written ({existing} is not a "
                "writable directory); set general_settings.ledger_spill_dir to a writable persistent path"
            )
        self.check_database()

    def check_database(self) -> None:
        """Refuse a directory holding another database's records (``SpillDirectoryError``)."""
        marker = self.directory / DATABASE_MARKER
        try:
            found = marker.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return
        if found != self._database_tag:
            raise SpillDirectoryError(
                f"ledger spill directory {self.directory} belongs to another database ({found!r}, this one is "
                f"{self._database_tag!r}); give each database its own general_settings.ledger_spill_dir"
            )

    def _open_own(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        marker = self.directory / DATABASE_MARKER
        if not marker.exists():
            marker.write_text(self._database_tag + "\n", encoding="utf-8")
        self.check_database()
        path = self.directory / f"ledger-spill-{uuid.uuid4().hex}.jsonl"
        handle = path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            _fsync_directory(self.directory)  # the new file's name survives a power loss, not only its content
        except BaseException:
            handle.close()
            raise
        self._own, self._own_path = handle, path

    def release_own(self) -> None:
        """Close (and unlock) this process's file, so ``adopt`` replays it like any other; later spills start a
        new file."""
        if self._own is not None:
            self._own.close()
            self._own, self._own_path = None, None
        self.adoptable_count += self.own_count
        self.own_count = 0

    def adopt(self) -> list[SpillBacklog]:
        """The files of processes that are gone (their lock is free), locked by this process now, oldest first."""
        backlogs: list[SpillBacklog] = []
        if not self.directory.is_dir():
            return backlogs
        self.check_database()
        for path in sorted(self.directory.glob(SPILL_GLOB), key=_age):
            handle = self._lock_existing(path)
            if handle is not None:
                _cut_torn_tail(handle)
                handle.seek(0)
                backlogs.append(SpillBacklog(path, handle))
        return backlogs

    def _lock_existing(self, path: Path) -> IO[bytes] | None:
        if path == self._own_path:
            return None
        try:
            handle = path.open("r+b")
        except OSError:
            return None  # removed meanwhile by another process that replayed it
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()  # a live process's own file
            return None
        if not path.exists():  # replayed and removed by another process between our open and our lock
            handle.close()
            return None
        return handle

    def read_batch(self, backlog: SpillBacklog, size: int) -> list[SpendRecord]:
        """Up to ``size`` records of ``backlog`` (fewer at its end; none when it is all read). An unreadable line is
        kept in ``<file>.rejected``; a last line without its newline (never acknowledged) is dropped."""
        assert backlog.handle is not None
        records: list[SpendRecord] = []
        rejected: list[bytes] = []
        while len(records) < size:
            line = backlog.handle.readline()
            if not line:
                break
            if not line.endswith(b"\n"):
                log.warning(
                    "ledger spill %s: dropping a record cut by a crash before it was acknowledged", backlog.path
                )
                break
            backlog.lines_read += 1
            try:
                records.append(record_from_json(line[:-1]))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("ledger spill %s: unreadable line kept in .rejected: %s", backlog.path, exc)
                rejected.append(line[:-1])
        if rejected:
            reject_lines(backlog.path, rejected)
        return records

    def done(self, backlog: SpillBacklog) -> None:
        """Every record of ``backlog`` is in the ledger: remove its file (then release its lock)."""
        with contextlib.suppress(FileNotFoundError):
            backlog.path.unlink()
        _fsync_directory(self.directory)
        if backlog.handle is not None:
            backlog.handle.close()
            backlog.handle = None
        self.adoptable_count = max(0, self.adoptable_count - backlog.lines_read)

    def scan(self) -> bool:
        """Count the records waiting in files this process may replay (start-up); whether any spill file exists
        (a live process's counts: it is replayed once that process releases it)."""
        paths = sorted(self.directory.glob(SPILL_GLOB)) if self.directory.is_dir() else []
        waiting = 0
        for path in paths:
            handle = self._lock_existing(path)
            if handle is not None:
                with handle:
                    while chunk := handle.read(1 << 20):
                        waiting += chunk.count(b"\n")
        self.adoptable_count = waiting
        return bool(paths)

    def reject(self, path: Path, lines: Sequence[bytes]) -> None:
        reject_lines(path, lines)

    def give_back(self, backlog: SpillBacklog) -> None:
        """Replay failed: release the file for a later attempt (by this process or another)."""
        if backlog.handle is not None:
            backlog.handle.close()
            backlog.handle = None

    def close(self) -> None:
        """Release this process's file; its records stay for the next start-up (or another process)."""
        self.release_own()


def reject_lines(path: Path, lines: Sequence[bytes]) -> None:
    """Keep lines that cannot be replayed in ``<path>.rejected`` (fsync'd) for the operator."""
    with path.with_suffix(path.suffix + ".rejected").open("ab") as sink:
        sink.write(b"".join(line + b"\n" for line in lines))
        sink.flush()
        os.fsync(sink.fileno())


def _age(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _cut_torn_tail(handle: IO[bytes]) -> None:
    """Truncate a trailing partial line (never acknowledged), so nothing appended later can merge with it."""
    data = handle.read()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        handle.truncate(end)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

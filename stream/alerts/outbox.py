"""A durable outbox for the events of one deliverer (the webhook, the MQTT broker): SQLite
(WAL), written before any delivery attempt. Each deliverer has a file of its own: they
progress independently (one may be down while the other delivers), and each file's lock
keeps two detectors from sending the same alerts twice.

Every event bound for the deliverer becomes a row with a unique ``id`` (the event's own
``id`` if it has one, else a new one, added to the event so that a receiver can
de-duplicate). Rows are handed out oldest first and leave the pending set only when the
caller marks them delivered (a 2xx, a broker's ack) or rejected (a final 4xx), so events
pending when the process dies - even by SIGKILL - are sent again by the next process that
opens the file.
Delivery is at least once: a receiver that answered 2xx just before the crash sees that
event again, with the same ``id``.

The file is bounded: beyond ``max_rows`` rows the oldest finished rows are removed, and if
pending rows alone exceed it the oldest pending ones are dropped and counted.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import stat
import uuid
from pathlib import Path
from typing import IO

from errors import LipForensicsError

#: rows kept in the file by default (finished rows are pruned first).
MAX_ROWS = 10_000

PENDING, DELIVERED, REJECTED = 0, 1, 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    state INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, seq);
"""


#: per deliverer: the suffix of its file next to a JSON-lines file, its file name elsewhere.
_FILES = {
    "webhook": (".outbox.sqlite", "webhook-outbox.sqlite"),
    "mqtt": (".mqtt-outbox.sqlite", "mqtt-outbox.sqlite"),
}


def state_directory() -> Path:
    """The user's state folder for our files: ``$XDG_STATE_HOME/lipforensics``, by default
    ``~/.local/state/lipforensics``."""
    base = os.environ.get("XDG_STATE_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "lipforensics"


def default_outbox_path(jsonl: str | None, deliverer: str = "webhook") -> Path:
    """``EVENTS.jsonl.outbox.sqlite`` (``.mqtt-outbox.sqlite`` for MQTT) next to a
    JSON-lines file, else one in :func:`state_directory` (``webhook-outbox.sqlite``,
    ``mqtt-outbox.sqlite``): also when the JSON lines go to something that is not a plain
    file (``/dev/null``, ``/dev/stdout``, a pipe), whose folder is no place for a database."""
    suffix, name = _FILES[deliverer]
    if jsonl and jsonl != "-" and _plain_file_or_none(Path(jsonl)):
        return Path(jsonl).with_name(Path(jsonl).name + suffix)
    return state_directory() / name


def _plain_file_or_none(path: Path) -> bool:
    """Whether ``path`` is a regular file or does not exist yet, outside ``/dev`` and
    ``/proc`` (``/dev/stdout`` may lead to a plain file: its folder is still no place)."""
    if path.absolute().parts[1:2] in (("dev",), ("proc",)):
        return False
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return True


class Outbox:
    """One deliverer's events on disk, pending until marked (see the module doc).

    Attributes:
        dropped: pending events this process removed because the file was full.
    """

    def __init__(
        self, path: str | Path, max_rows: int = MAX_ROWS, deliverer: str = "webhook"
    ) -> None:
        """Open (or create) the outbox file ``path`` of ``deliverer`` (named in messages).

        Raises:
            LipForensicsError: the file cannot be created or is not an outbox database.
        """
        if max_rows < 1:
            raise LipForensicsError(f"outbox max_rows must be at least 1, got {max_rows}")
        self.path = Path(path)
        self.max_rows = max_rows
        self.dropped = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = self.path.with_name(self.path.name + ".lock")
            self._lock = _lock_exclusively(lock, deliverer)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash
            self._db.executescript(_SCHEMA)
            (self._rows,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        except (OSError, sqlite3.Error) as error:
            if hasattr(self, "_lock"):
                self._lock.close()
            reason = f"cannot open {deliverer} outbox {self.path}: {error}"
            raise LipForensicsError(reason) from None

    def add(self, event: dict[str, object]) -> dict[str, object]:
        """Store ``event`` as pending; returns it with its ``id``. An ``id`` already in the
        outbox is not stored twice."""
        event = {**event, "id": str(event.get("id") or uuid.uuid4().hex)}
        body = json.dumps(event, separators=(",", ":"))
        added = self._db.execute(
            "INSERT OR IGNORE INTO outbox (id, body) VALUES (?, ?)", (event["id"], body)
        ).rowcount
        self._rows += added
        if self._rows > self.max_rows:
            self._prune()
        return event

    def next_pending(self) -> tuple[int, dict[str, object]] | None:
        """The oldest pending event and its row number, or None when nothing is pending."""
        row = self._db.execute(
            "SELECT seq, body FROM outbox WHERE state = ? ORDER BY seq LIMIT 1", (PENDING,)
        ).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def mark(self, seq: int, state: int) -> None:
        """Finish row ``seq``: :data:`DELIVERED` or :data:`REJECTED`."""
        self._db.execute("UPDATE outbox SET state = ? WHERE seq = ?", (state, seq))

    @property
    def pending(self) -> int:
        """How many events wait for delivery."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state = ?", (PENDING,)
        ).fetchone()
        return count

    def close(self) -> None:
        """Close the file (pending rows stay for the next process)."""
        self._db.close()
        self._lock.close()  # releases the lock

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prune(self) -> None:
        """Bring the file back to ``max_rows``: finished rows first, then the oldest pending."""
        excess = self._rows - self.max_rows
        for states, counts in (((DELIVERED, REJECTED), False), ((PENDING,), True)):
            if excess <= 0:
                break
            marks = ",".join("?" * len(states))
            removed = self._db.execute(
                f"DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE state IN "
                f"({marks}) ORDER BY seq LIMIT ?)",
                (*states, excess),
            ).rowcount
            excess -= removed
            self._rows -= removed
            if counts:
                self.dropped += removed


def _lock_exclusively(path: Path, deliverer: str) -> IO[bytes]:
    """Hold an exclusive lock on ``path`` (created if needed) until the returned file is
    closed (or collected), or until this process ends, however it ends.

    Raises:
        LipForensicsError: another process (or another outbox here) holds it: two detectors
            sharing one outbox would send the same alerts twice.
    """
    lock = open(path, "ab")  # noqa: SIM115 (held open on purpose, closed by Outbox.close)
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise LipForensicsError(
            f"{deliverer} outbox {path.with_suffix('')} is in use by another detector; "
            f"give each one its own (--{deliverer}-outbox PATH)"
        ) from None
    return lock

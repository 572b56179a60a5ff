"""Which cameras a node runs: rendezvous (highest-random-weight) hashing over a camera list.

Every node of a fleet reads the same list (the ``[cameras]`` table of a TOML file: name =
address) and keeps the cameras whose highest score among nodes ``0..N-1`` is its own. The
score of (camera, node) is a hash of both, so the split needs no coordination, is the same
on every node and in every run, gives each node about 1/N of the cameras, and when a node
is added only the cameras that the new node now wins move (about 1/N of them); when one
leaves, only its own cameras move.

    [cameras]
    door = "rtsp://user:pass@10.0.0.5/stream1"
    "yard/east" = "rtsp://10.0.0.6/live"
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from errors import LipForensicsError
from stream.settings.toml_file import read_toml
from stream.sources.urls import redact


@dataclass(frozen=True, slots=True)
class Shard:
    """Node ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            shown = f"{self.index}/{self.count}"
            raise LipForensicsError(f"shard must be K/N with 0 <= K < N (from 0), got {shown}")

    def owns(self, camera: str) -> bool:
        """Whether ``camera`` (its name) belongs to this node."""
        return owner(camera, self.count) == self.index

    def pick(self, cameras: Iterable[str]) -> list[str]:
        """The cameras of this node, in their given order."""
        return [camera for camera in cameras if self.owns(camera)]


def parse_shard(text: str) -> Shard:
    """``"K/N"`` as a :class:`Shard`.

    Raises:
        LipForensicsError: not two whole numbers with 0 <= K < N.
    """
    index, slash, count = text.partition("/")
    if not (slash and index.strip().isdigit() and count.strip().isdigit()):
        raise LipForensicsError(f"shard must be K/N (e.g. 0/3), got {text!r}")
    return Shard(int(index), int(count))


def score(camera: str, node: int) -> int:
    """The rendezvous score of ``camera`` on node ``node``: 64 bits of BLAKE2b, stable
    across processes and machines (unlike Python's ``hash``)."""
    digest = hashlib.blake2b(f"{node}\0{camera}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(camera: str, count: int) -> int:
    """The node (0..count-1) with the highest score for ``camera``."""
    return max(range(count), key=lambda node: score(camera, node))


def read_cameras(config: str | Path, table: str = "cameras") -> dict[str, str]:
    """The ``[cameras]`` table (or ``table``: ``[rooms]`` for ``serve``) of the TOML file
    ``config``: name -> address.

    Raises:
        LipForensicsError: an unreadable file, a ``table`` that is not a table, or an
            address that is not a string.
    """
    found = read_toml(config).get(table, {})
    if not isinstance(found, dict):
        raise LipForensicsError(f"[{table}] in {config} must be a table")
    for name, address in found.items():
        if not isinstance(address, str) or not address:
            shown = redact(address) if isinstance(address, str) else repr(address)
            what = "room" if table == "rooms" else "camera"
            raise LipForensicsError(f"{what} {name!r} in {config} needs an address, got {shown}")
    return found

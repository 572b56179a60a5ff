"""Addresses given by users (cameras, webhooks): parsed and checked in one place, and shown
in messages and logs without their passwords. Light to import (no media libraries)."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from errors import LipForensicsError
from errors.text import redact

#: schemes served by :class:`stream.sources.rtsp.RtspSource`.
RTSP_SCHEMES = ("rtsp", "rtsps")
#: schemes of a Janus VideoRoom (:mod:`stream.sources.rooms.janus_address`): its HTTP API,
#: plain or over TLS.
JANUS_SCHEMES = ("janus", "janus+http", "janus+https")


def split_url(url: str) -> SplitResult:
    """``url`` in parts, checked: a bracket left open or a port that is not 0..65535 is an
    error here rather than a failure later.

    Raises:
        LipForensicsError: a malformed address (the message hides any password).
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # parsed lazily: raises ValueError for a bad port
    except ValueError as error:
        raise LipForensicsError(f"not a valid address: {redact(url)!r} ({error})") from None
    return parts

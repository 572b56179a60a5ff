"""Addresses given by users (cameras, webhooks): parsed and checked in one place, and shown
in messages and logs without their passwords. Light to import (no media libraries)."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from errors import LipForensicsError

#: schemes served by :class:`stream.sources.rtsp.RtspSource`.
RTSP_SCHEMES = ("rtsp", "rtsps")
#: schemes of a Janus VideoRoom (:mod:`stream.sources.rooms.janus_address`): its HTTP API,
#: plain or over TLS.
JANUS_SCHEMES = ("janus", "janus+http", "janus+https")
#: query options whose values are secrets (a room's PIN, an API secret or token).
SECRET_OPTIONS = ("pin", "secret", "token")


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


def redact(url: str) -> str:
    """``url`` without its user name, password and secret query options (safe to log),
    whatever its shape: a well-formed URL, a malformed one (``rtsp:/u:p@host``,
    ``u:p@host/path``) or a path. Everything between the scheme (if any) and the last ``@``
    becomes ``***``, and so does the value of each ``pin=``, ``secret=`` or ``token=``."""
    if "@" in url:
        url = _USERINFO.sub(lambda match: f"{match.group(1) or ''}***@", url, count=1)
    return _SECRET_VALUE.sub(lambda match: f"{match.group(1)}=***", url)


#: an optional scheme with its slashes, then anything up to the last "@".
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:/*)?.*@", re.DOTALL)
#: a secret query option and its value (up to the next option or fragment).
_SECRET_VALUE = re.compile(
    rf"(?<=[?&;])({'|'.join(SECRET_OPTIONS)})=[^&;#]*", re.IGNORECASE | re.DOTALL
)

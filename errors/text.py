"""Text from users shown in messages and logs: addresses without their passwords, names
without control characters (a camera named with an escape sequence or a newline could
recolour a terminal or forge a log line)."""

from __future__ import annotations

import re

#: query options whose values are secrets (a call room's PIN, an API secret or token).
SECRET_OPTIONS = ("pin", "secret", "token")


def redact(url: str) -> str:
    """``url`` without its user name, password and secret query options (safe to log),
    whatever its shape: a well-formed URL, a malformed one (``rtsp:/u:p@host``,
    ``u:p@host/path``) or a path. Everything between the scheme (if any) and the last ``@``
    becomes ``***``, and so does the value of each ``pin=``, ``secret=`` or ``token=``."""
    if "@" in url:
        url = _USERINFO.sub(lambda match: f"{match.group(1) or ''}***@", url, count=1)
    return _SECRET_VALUE.sub(lambda match: f"{match.group(1)}=***", url)


def printable(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1) written as an escape (``\\n``,
    ``\\x1b``), so that it stays on one line and cannot steer a terminal."""
    return _CONTROL.sub(lambda match: _ESCAPES.get(match[0], f"\\x{ord(match[0]):02x}"), text)


#: an optional scheme with its slashes, then anything up to the last "@".
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:/*)?.*@", re.DOTALL)
#: a secret query option and its value (up to the next option or fragment).
_SECRET_VALUE = re.compile(
    rf"(?<=[?&;])({'|'.join(SECRET_OPTIONS)})=[^&;#]*", re.IGNORECASE | re.DOTALL
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

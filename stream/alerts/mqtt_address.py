"""The MQTT broker address users give: ``mqtt://[user:pass@]HOST[:PORT][/PREFIX]`` or
``mqtts://`` (TLS), parsed and checked once; shown without its password."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from errors import LipForensicsError
from stream.sources.urls import redact, split_url

#: the first level of every topic when the address names no prefix.
DEFAULT_PREFIX = "lipforensics"
_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class MqttAddress:
    """Where the broker is and what this node's topics start with.

    Attributes:
        host, port: the broker (port 1883 for ``mqtt``, 8883 for ``mqtts`` unless given).
        tls: connect with TLS (``mqtts://``), checking the broker's certificate.
        username, password: credentials (None: anonymous).
        prefix: the topic levels before the node's name (the URL's path, default
            :data:`DEFAULT_PREFIX`).
        shown: the address without its password, for messages.
    """

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    prefix: str = DEFAULT_PREFIX
    shown: str = ""


def parse_mqtt_url(url: str) -> MqttAddress:
    """``url`` as an :class:`MqttAddress`.

    Raises:
        LipForensicsError: not ``mqtt://`` or ``mqtts://``, no host, a query, or a prefix
            with MQTT wildcards (the message hides any password).
    """
    parts = split_url(url)
    scheme = parts.scheme.lower()
    shown = redact(url)
    if scheme not in _PORTS or not parts.hostname:
        raise LipForensicsError(
            f"MQTT broker must be mqtt://[USER:PASS@]HOST[:PORT][/PREFIX] or mqtts://..., "
            f"got {shown!r}"
        )
    if parts.query or parts.fragment:
        raise LipForensicsError(f"MQTT address takes no ?query or #fragment: {shown!r}")
    prefix = unquote(parts.path).strip("/") or DEFAULT_PREFIX
    if any(char in prefix for char in "+#\0") or "" in prefix.split("/"):
        raise LipForensicsError(
            f"MQTT topic prefix {prefix!r} must not hold '+', '#' or empty levels"
        )
    return MqttAddress(
        host=parts.hostname,
        port=parts.port or _PORTS[scheme],
        tls=scheme == "mqtts",
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        prefix=prefix,
        shown=shown,
    )

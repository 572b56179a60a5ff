"""How ``serve`` listens and who may use it (``[server]``): :class:`ServerSettings` and the
WHIP endpoint's :class:`WhipSettings`, whose keys sit in the same table."""

from __future__ import annotations

import ipaddress
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from errors import LipForensicsError
from stream.settings.limits import check_positive, check_whole

#: a browser origin: scheme, host, optional port (what an Origin header holds).
ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
#: a STUN server as aiortc takes it (RFC 7064): stun: or stuns:, a host, an optional port.
STUN_URL = re.compile(r"stuns?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:\d{1,5})?")
#: tokens shorter than this get a warning at start-up.
STRONG_TOKEN = 16


@dataclass(frozen=True, slots=True)
class WhipSettings:
    """Limits and ICE settings of the WHIP endpoint.

    Attributes:
        max_sessions: publishers at once; more get 429 (a request counts from the moment
            it arrives, before its offer is read).
        max_tracks: video tracks one offer may publish; more get 422.
        max_body: largest accepted offer, bytes; larger gets 413.
        connect_timeout: seconds a new session has to connect before it is dropped (and a
            publisher has to send its whole offer).
        stall_timeout: seconds a connected publisher may send no new picture (no frame, or
            the same one again) before its streams are ``stalled``.
        ice_hosts: the only local addresses offered as ICE host candidates (empty: all).
        stun_servers: ``stun:HOST:PORT`` URLs for server-reflexive candidates (none by default).
    """

    max_sessions: int = 4
    max_tracks: int = 2
    max_body: int = 64 * 1024
    connect_timeout: float = 20.0
    stall_timeout: float = 5.0
    ice_hosts: tuple[str, ...] = ()
    stun_servers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse limits no publisher could meet and addresses ICE cannot use, in one line.

        Raises:
            LipForensicsError: naming the setting.
        """
        check_whole(
            self, {"max_sessions": (1, 1000), "max_tracks": (1, 16), "max_body": (1, 16 * 2**20)}
        )
        check_positive(self, {"connect_timeout": 3600.0, "stall_timeout": 3600.0})
        for host in self.ice_hosts:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise LipForensicsError(
                    f"ICE host {host!r} is not an IP address (e.g. 192.0.2.10)"
                ) from None
        for url in self.stun_servers:
            if not STUN_URL.fullmatch(url):
                raise LipForensicsError(f"STUN server {url!r} is not stun:HOST[:PORT]")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How ``serve`` listens and who may use it.

    Attributes:
        token: the bearer token for ``/whip`` and ``/events`` (and ``/metrics`` if
            ``protect_metrics``).
        host, port: where to listen.
        protect_metrics: require the token for ``/metrics`` too.
        cors_origins: browser origins allowed to call the API (none by default).
        tls_cert, tls_key: serve HTTPS with this certificate chain and key (PEM files).
        heartbeat: seconds between SSE keep-alive comments.
        idle_timeout: seconds a connection has to send a request head after it opens, and
            may sit idle between requests (see :mod:`stream.server.limits`).
        max_connections: connections open at once; beyond it a new connection closes the
            oldest one that has not shown the token, and gets 503 only when every open one
            has.
        max_streams: streams this node watches at once, from every WHIP session (a video
            track each) and every call-room participant; more get 503.
        whip: the WHIP endpoint's limits and ICE settings.
    """

    token: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    protect_metrics: bool = False
    cors_origins: tuple[str, ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    heartbeat: float = 15.0
    idle_timeout: float = 15.0
    max_connections: int = 256
    max_streams: int = 16
    whip: WhipSettings = field(default_factory=WhipSettings)

    def __post_init__(self) -> None:
        if not self.token:
            raise LipForensicsError("a bearer token is required (--token or LIPFORENSICS_TOKEN)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise LipForensicsError("TLS needs both a certificate and a key")
        for origin in self.cors_origins:
            if not ORIGIN.fullmatch(origin):
                raise LipForensicsError(
                    f"CORS origin {origin!r} is not an exact origin such as "
                    "https://console.example:8443 (no wildcards, no path)"
                )
        check_whole(
            self, {"port": (0, 65535), "max_connections": (1, 65_536), "max_streams": (1, 1000)}
        )
        check_positive(self, {"heartbeat": 3600.0, "idle_timeout": 3600.0})

    @property
    def weak_token(self) -> bool:
        """The token is shorter than :data:`STRONG_TOKEN` characters (easy to guess)."""
        return len(self.token) < STRONG_TOKEN

    @property
    def token_in_clear(self) -> bool:
        """Plain HTTP on an address other hosts can reach: the token crosses the network
        unencrypted."""
        if self.tls_cert is not None:
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name
            return self.host != "localhost"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context, or ``None`` for plain HTTP.

        Raises:
            LipForensicsError: unreadable or mismatched certificate and key.
        """
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as error:
            raise LipForensicsError(
                f"cannot use TLS certificate {self.tls_cert} with key {self.tls_key}: "
                f"{getattr(error, 'strerror', None) or error}"
            ) from None
        return context

"""Command-line addresses -> sources: a file path (or ``file://``), ``rtsp://`` /
``rtsps://`` (:mod:`stream.sources.rtsp`), or a call room, ``janus://`` (a
:class:`~stream.sources.rooms.Room`: :mod:`stream.sources.rooms.janus_room`)."""

from __future__ import annotations

from urllib.parse import unquote

from errors import LipForensicsError
from stream.sources.base import Source
from stream.sources.files import FileSource
from stream.sources.rooms import Room
from stream.sources.rooms.janus_address import parse_janus_url
from stream.sources.rtsp import RtspSource
from stream.sources.urls import JANUS_SCHEMES, RTSP_SCHEMES, redact, split_url


def open_source(
    uri: str,
    stream_id: str | None = None,
    *,
    realtime: bool = False,
    give_up_after: float | None = None,
    hwaccel: str | None = None,
) -> Source | Room:
    """The source for a command-line address: a video file path, ``file://PATH``,
    ``rtsp://`` or ``rtsps://``; or the room of a ``janus://`` address (``stream_id``: its
    participants' prefix). ``realtime`` paces files like a camera; a camera unreachable for
    ``give_up_after`` seconds ends (None: it is retried for ever). ``hwaccel`` decodes files
    and cameras on that device (:mod:`stream.sources.hwaccel`).

    Raises:
        LipForensicsError: an unknown scheme, a bad room address, or a file that cannot be
            read as a video.
    """
    scheme = split_url(uri).scheme.lower() if "://" in uri else ""
    if scheme in JANUS_SCHEMES:
        from stream.sources.rooms.janus_room import JanusRoom  # aiortc: loaded when needed

        return JanusRoom(parse_janus_url(uri), stream_id)
    if scheme in RTSP_SCHEMES:
        return RtspSource(uri, stream_id, give_up_after=give_up_after, hwaccel=hwaccel)
    if scheme == "file":
        return FileSource(_file_path(uri), stream_id, realtime=realtime, hwaccel=hwaccel)
    if scheme:
        raise LipForensicsError(
            f"unsupported source {redact(uri)!r}: "
            "expected a video file path, file://, rtsp://, rtsps:// or janus://"
        )
    return FileSource(uri, stream_id, realtime=realtime, hwaccel=hwaccel)


def _file_path(uri: str) -> str:
    """The path of a ``file://`` URL, percent-decoded (``file:///a%20b.mp4`` is ``/a b.mp4``);
    ``file://clip.mp4`` stays relative."""
    parts = split_url(uri)
    host = "" if parts.netloc in ("", "localhost") else parts.netloc
    return unquote(host + parts.path)

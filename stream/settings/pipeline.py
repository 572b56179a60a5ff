"""All the settings of a node: one small frozen group per stage, composed into
:class:`Settings`, filled from a TOML file (any layout :mod:`stream.settings.layout` reads)
and then from command-line flags::

    [faces]
    stride = 5

    [engine]
    backend = "onnxruntime"

    [alerts]
    webhook = "https://alerts.example/hook"

Flags given on the command line win over the file; the file wins over the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from stream.settings.engine import EngineSettings
from stream.settings.groups import AlertSettings, FaceSettings, FleetSettings, SourceSettings
from stream.settings.layout import GROUPS, Grouped, empty, grouped, read_grouped
from stream.settings.server import ServerSettings, WhipSettings
from stream.settings.toml_file import checked


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything that shapes a node, by the stage it configures; the defaults suit a
    2-core machine. Each stage is handed its own group.

    Attributes:
        sources: how sources are read (:class:`~stream.settings.groups.SourceSettings`).
        faces: faces, tracks and windows (:class:`~stream.settings.groups.FaceSettings`).
        engine: weights, backend, inference queue
            (:class:`~stream.settings.engine.EngineSettings`).
        alerts: where events go (:class:`~stream.settings.groups.AlertSettings`).
        fleet: this node's name and shard (:class:`~stream.settings.groups.FleetSettings`).
        server: the HTTP server's (``serve`` only; None elsewhere).
    """

    sources: SourceSettings = field(default_factory=SourceSettings)
    faces: FaceSettings = field(default_factory=FaceSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)
    server: ServerSettings | None = None

    @classmethod
    def of(cls, **values: Any) -> Settings:
        """Settings from flat names, each put in its group (``Settings.of(stride=5,
        jsonl=None)``); a server group only when a server setting is given.

        Raises:
            LipForensicsError: an unknown name, a value of the wrong type or out of range.
        """
        by_group = grouped(values)
        return _build(by_group, serve=bool(by_group["server"]))


def load_settings(
    config: str | Path | None = None, *, serve: bool = False, **overrides: Any
) -> Settings:
    """Settings from the TOML file ``config`` (if any), then ``overrides`` (flat names, as
    flags give them) that are not None; the server group only for ``serve``.

    Raises:
        LipForensicsError: unreadable or invalid TOML, an unknown or misplaced key or table,
            a value of the wrong type or out of range.
    """
    values = read_grouped(config) if config is not None else empty()
    for group, given in grouped(overrides).items():
        values[group].update(given)
    return _build(values, serve=serve)


def _build(values: Grouped, *, serve: bool) -> Settings:
    """Each group from its values (type-checked), the server's only for ``serve``."""
    groups = {
        name: kind(**checked(values[name], kind))
        for name, kind in GROUPS.items()
        if name != "server"
    }
    return Settings(**groups, server=_server(values["server"]) if serve else None)


def _server(values: dict[str, Any]) -> ServerSettings:
    """The server's settings, with its WHIP limits, from flat names."""
    values = checked(values, WhipSettings, ServerSettings, skip={"whip"}, what="server setting")
    whip = {f.name: values.pop(f.name) for f in fields(WhipSettings) if f.name in values}
    return ServerSettings(**values, whip=WhipSettings(**whip))

"""Where each setting lives: a group per stage (``[sources]``, ``[faces]``, ``[engine]``,
``[alerts]``, ``[fleet]``, ``[server]``), found by the setting's name, so that a file keeps
working in any of the layouts it was written for::

    stride = 5                     # a name at the top level (the first layout) ...

    [pipeline]                     # ... or under [pipeline] (the second) ...
    backend = "onnxruntime"
    port = 8443                    # (server settings too, as these layouts had them)

    [faces]                        # ... or under its own group's table
    max_faces = 3

    [server]
    token = "..."
    max_sessions = 4               # the WHIP endpoint's limits sit in [server]

A name under another group's table, a name set twice, an unknown name or table is one error
line that says which. ``[cameras]`` and ``[rooms]`` (name = address) are read by
:mod:`stream.settings.shard`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from errors import LipForensicsError
from stream.settings.engine import EngineSettings
from stream.settings.groups import AlertSettings, FaceSettings, FleetSettings, SourceSettings
from stream.settings.server import ServerSettings, WhipSettings
from stream.settings.toml_file import read_toml

#: group name -> the dataclass of its settings, in the order a frame meets them.
GROUPS: dict[str, type] = {
    "sources": SourceSettings,
    "faces": FaceSettings,
    "engine": EngineSettings,
    "alerts": AlertSettings,
    "fleet": FleetSettings,
    "server": ServerSettings,
}
#: setting name -> its group (the WHIP limits are server settings).
HOME: dict[str, str] = {
    **{f.name: group for group, kind in GROUPS.items() for f in fields(kind) if f.name != "whip"},
    **{f.name: "server" for f in fields(WhipSettings)},
}
#: tables of earlier layouts that hold names of any group.
FLAT_TABLES = ("pipeline",)
#: tables read elsewhere.
OTHER_TABLES = ("cameras", "rooms")

Grouped = dict[str, dict[str, Any]]


def empty() -> Grouped:
    """No values, one empty dict per group."""
    return {group: {} for group in GROUPS}


def read_grouped(path: str | Path) -> Grouped:
    """The settings of the TOML file ``path``, by group.

    Raises:
        LipForensicsError: see :func:`stream.settings.toml_file.read_toml`; an unknown
            table or name, a name under another group's table, a name set twice.
    """
    data = read_toml(path)
    tables = [name for name, value in data.items() if isinstance(value, dict)]
    unknown = [name for name in tables if name not in (*GROUPS, *FLAT_TABLES, *OTHER_TABLES)]
    if unknown:
        known = ", ".join(f"[{name}]" for name in (*GROUPS, *OTHER_TABLES))
        names = ", ".join(f"[{name}]" for name in unknown)
        raise LipForensicsError(f"unknown table(s) {names} in {path} (known: {known})")
    grouped, seen = empty(), {}
    top = {key: value for key, value in data.items() if key not in tables}
    _check_known(top, path)
    _place(grouped, seen, top, "at the top level", path)
    for table in tables:
        if table in OTHER_TABLES:
            continue
        _check_known(data[table], path)
        if table in GROUPS:
            _check_home(data[table], table, path)
        _place(grouped, seen, data[table], f"in [{table}]", path)
    return grouped


def grouped(values: Mapping[str, Any]) -> Grouped:
    """Flat ``values`` (``stride=5, port=8443``) by group; None values are left out.

    Raises:
        LipForensicsError: an unknown name.
    """
    _check_known(values)
    result = empty()
    for name, value in values.items():
        if value is not None:
            result[HOME[name]][name] = value
    return result


def _check_known(values: Mapping[str, Any], path: str | Path | None = None) -> None:
    """Raise naming the names of ``values`` that are no setting (with a close one if any)."""
    unknown = [name for name in values if name not in HOME]
    if not unknown:
        return
    close = [match for name in unknown for match in get_close_matches(name, HOME, n=1)]
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see README, Settings)"
    where = f" in {path}" if path is not None else ""
    raise LipForensicsError(f"unknown setting(s){where}: {', '.join(unknown)}{hint}")


def _check_home(values: Mapping[str, Any], table: str, path: str | Path) -> None:
    """Raise when a name of the group table ``table`` belongs to another group."""
    for name in values:
        if HOME[name] != table:
            raise LipForensicsError(
                f"setting {name} belongs in [{HOME[name]}], not [{table}] (in {path})"
            )


def _place(
    result: Grouped,
    seen: dict[str, str],
    values: Mapping[str, Any],
    where: str,
    path: str | Path,
) -> None:
    """Put ``values`` (found ``where``) into their groups; ``seen`` says where each name
    was found before."""
    for name, value in values.items():
        if name in seen:
            raise LipForensicsError(
                f"setting {name} is set twice in {path}: {seen[name]} and {where}"
            )
        seen[name] = where
        result[HOME[name]][name] = value

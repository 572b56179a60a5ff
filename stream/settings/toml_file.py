"""One reader for every TOML setting: the pipeline's (top level or ``[pipeline]``) and the
server's (``[server]``), with each value checked against its dataclass field.

    stride = 5                # or under [pipeline]
    backend = "onnxruntime"

    [server]
    port = 8443
    ice_hosts = ["192.0.2.10"]

A misspelled table, an unknown key or a value of the wrong kind is one error line naming it.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from errors import LipForensicsError

#: the tables a config file may hold; top-level keys belong to ``pipeline``; ``cameras``
#: (name = address) is read by :mod:`stream.settings.shard`.
TABLES = ("pipeline", "server", "cameras")


def read_tables(path: str | Path) -> dict[str, dict[str, Any]]:
    """Every table of the TOML file ``path`` (each of :data:`TABLES`, empty when absent).

    Raises:
        LipForensicsError: a missing or unreadable file, invalid TOML, an unknown table.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LipForensicsError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise LipForensicsError(f"cannot read config file {path}: {reason}") from None
    except tomllib.TOMLDecodeError as error:
        raise LipForensicsError(f"invalid TOML in {path}: {error}") from None
    unknown = sorted(key for key, value in data.items() if isinstance(value, dict))
    unknown = [key for key in unknown if key not in TABLES]
    if unknown:
        names = ", ".join(f"[{key}]" for key in unknown)
        raise LipForensicsError(
            f"unknown table(s) {names} in {path} (known: {', '.join(f'[{t}]' for t in TABLES)})"
        )
    tables: dict[str, dict[str, Any]] = {name: {} for name in TABLES}
    tables["pipeline"] = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for name in TABLES:
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise LipForensicsError(f"[{name}] in {path} must be a table")
        tables[name].update(table)
    return tables


def checked(
    values: Mapping[str, Any],
    *kinds: type,
    skip: frozenset[str] | set[str] = frozenset(),
    what: str = "setting",
) -> dict[str, Any]:
    """``values`` checked against the fields of the dataclasses ``kinds`` (but ``skip``):
    each key must be a field, each value of the field's declared type (an int where a float
    is declared is fine, a bool is never a number, a number must be finite). Lists become
    tuples and strings become paths where the field says so.

    Raises:
        LipForensicsError: an unknown key or a value of the wrong type, naming it.
    """
    declared = {f.name: str(f.type) for kind in kinds for f in fields(kind) if f.name not in skip}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise LipForensicsError(
            f"unknown {what}(s): {', '.join(unknown)} (known: {', '.join(sorted(declared))})"
        )
    return {name: _convert(name, value, declared[name], what) for name, value in values.items()}


def _convert(name: str, value: Any, annotation: str, what: str) -> Any:
    """One value, converted to its field's type, or an error naming the key."""
    kinds = [part.strip() for part in annotation.split("|")]
    if value is None and "None" in kinds:
        return None
    base = kinds[0]
    if base == "bool":
        ok, expected = isinstance(value, bool), "true or false"
    elif base == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok, expected = ok and math.isfinite(value), "a finite number"
    elif base == "int":
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif base.startswith("tuple"):
        value = tuple(value) if isinstance(value, list | tuple) else value
        ok = isinstance(value, tuple) and all(isinstance(item, str) for item in value)
        expected = "a list of strings"
    elif base == "Path":
        value = Path(value) if isinstance(value, str) else value
        ok, expected = isinstance(value, Path), "a path (string)"
    else:
        ok, expected = isinstance(value, str), "a string"
    if not ok:
        raise LipForensicsError(f"{what} {name} must be {expected}, got {value!r}")
    return value

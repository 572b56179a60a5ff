"""One reader for every TOML setting file, and the check of each value against its
dataclass field (for flags too). Where each key belongs is :mod:`stream.settings.layout`'s
business.

A file larger than :data:`MAX_BYTES`, one nested deeper than Python can parse, or invalid
TOML is one error line; a UTF-8 byte order mark (as some Windows editors write) is skipped.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from errors import LipForensicsError

#: the largest config file read (a settings file is a few KB; ``/dev/zero`` never ends).
MAX_BYTES = 1 << 20


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file ``path`` as a dict.

    Raises:
        LipForensicsError: a missing, unreadable or oversized file, or invalid TOML.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise LipForensicsError(f"config file not found: {path}") from None
    except OSError as error:
        reason = error.strerror or error
        raise LipForensicsError(f"cannot read config file {path}: {reason}") from None
    if len(data) > MAX_BYTES:
        raise LipForensicsError(f"config file {path} is larger than {MAX_BYTES >> 20} MiB")
    try:
        return tomllib.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise LipForensicsError(f"cannot read config file {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise LipForensicsError(f"invalid TOML in {path}: {error}") from None
    except RecursionError:
        raise LipForensicsError(f"invalid TOML in {path}: nested too deeply") from None


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

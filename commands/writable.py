"""Checks that an output file can be written, made before a long job (a scan, a
calibration) rather than after it."""

from __future__ import annotations

import os
from pathlib import Path

from errors import LipForensicsError


def check_writable(path: Path, what: str) -> None:
    """Raise a one-line error unless ``path`` (the ``what`` of the message, e.g. "--report")
    can be opened for writing: its folder exists and is writable, and it is not a folder.
    A file this check creates is removed again. (A device that fails only when written,
    such as ``/dev/full``, passes: the write itself says so later.)

    Raises:
        LipForensicsError: the path cannot be written, with the reason.
    """
    if path.is_dir():
        raise LipForensicsError(f"cannot write {what} {path}: it is a folder")
    if not path.parent.is_dir():
        raise LipForensicsError(f"cannot write {what} {path}: no folder {path.parent}")
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as error:
        raise LipForensicsError(f"cannot write {what} {path}: {error.strerror}") from None
    if not existed:
        os.unlink(path)

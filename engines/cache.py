"""The cache of exports, INT8 copies and engines: where it is, and writing into it safely.

- :func:`usable_cache_dir`: a cache folder that cannot be made or written (a read-only
  home, a file in its place) gives way to a temporary folder for this process, removed at
  exit, with one :class:`~errors.LipForensicsWarning`: the run goes on, only slower to
  start next time.
- :func:`written_in_place`: a file or folder is written under a ``.partial`` name and
  renamed only once complete; a write that fails (a full disk, a file-size limit) removes
  the partial and is one :class:`CacheError` line.
- :func:`readable_onnx`: whether a cached ONNX file parses (a corrupt entry is rebuilt).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from errors import LipForensicsError, LipForensicsWarning


class CacheError(LipForensicsError):
    """A cache entry could not be written."""


@functools.cache
def usable_cache_dir(folder: Path) -> Path:
    """``folder``, made if needed, when a file can be written in it; else a temporary
    folder (the same one for the whole process), said once in a warning."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(handle)
        os.unlink(probe)
        return folder
    except FileExistsError:
        reason = "a file, not a folder"
    except OSError as error:
        reason = error.strerror or str(error)
    temporary = Path(tempfile.mkdtemp(prefix="lipforensics-cache-"))
    atexit.register(shutil.rmtree, temporary, ignore_errors=True)
    warnings.warn(
        LipForensicsWarning(
            f"cannot use the cache folder {folder} ({reason}); using {temporary} for this "
            "run (set LIPFORENSICS_CACHE to a writable folder to keep exports between runs)"
        ),
        stacklevel=2,
    )
    return temporary


@contextlib.contextmanager
def written_in_place(path: Path) -> Iterator[Path]:
    """A ``.partial`` name beside ``path`` (its folder made) for the block to write, a
    file or a folder; renamed to ``path`` when the block succeeds, removed when it fails.
    A folder that another process completed at ``path`` first is kept (ours is removed).

    Raises:
        CacheError: the block failed to write (any ``OSError``), in one line.
    """
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield partial
        if partial.is_dir() and path.is_dir():
            _remove(partial)
        else:
            partial.replace(path)
    except BaseException as error:
        _remove(partial)
        if isinstance(error, OSError):
            raise CacheError(
                f"cannot write {path.name} into the cache {path.parent}: "
                f"{error.strerror or error} (free space, or set LIPFORENSICS_CACHE elsewhere)"
            ) from None
        raise


def readable_onnx(path: Path) -> dict[str, str] | None:
    """The metadata of a cached ONNX file (``key: value``), or None when it does not
    parse (cut short, overwritten): the caller rebuilds it."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (OSError, DecodeError, ValueError):
        return None
    if not proto.graph.node:
        return None
    return {p.key: p.value for p in proto.metadata_props}


def warn_rebuilt(path: Path) -> None:
    """Say that a corrupt cache entry is being rebuilt."""
    warnings.warn(
        LipForensicsWarning(f"the cached {path} is corrupt; building it again"), stacklevel=2
    )


def _remove(path: Path) -> None:
    """Remove a file or folder, if there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

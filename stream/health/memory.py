"""Memory that stays flat over days: glibc held to a few malloc arenas.

glibc gives each thread that allocates under contention an arena of its own (up to eight
per core), and an arena keeps what a burst of frames once needed: a node that runs for days
(decoder threads, landmark threads, inference threads, a backlog after a camera comes back)
sees its resident memory step up after each burst and stay there. Two arenas keep the
memory a burst leaves behind small, at no cost we could measure in the live pipeline
(`bench/soak.py`, docs/reliability.md#soak).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: glibc's ``mallopt`` parameter for the most arenas
_M_ARENA_MAX = -8
#: arenas the process keeps (``MALLOC_ARENA_MAX`` in the environment overrides it)
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Hold glibc to ``arenas`` malloc arenas from now on (call it before threads start);
    a ``MALLOC_ARENA_MAX`` the user set is left to glibc. False where there is no glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return False
    return bool(mallopt is not None and mallopt(_M_ARENA_MAX, arenas) == 1)

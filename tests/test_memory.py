"""The process holds glibc to a few malloc arenas unless the user chose a number."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = "from stream.health.memory import limit_malloc_arenas; print(limit_malloc_arenas())"


def arenas_limited(environment: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=environment, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_arenas_are_limited_unless_malloc_arena_max_is_set():
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert arenas_limited(environment) == "True"  # glibc: mallopt accepted the limit
    assert arenas_limited({**environment, "MALLOC_ARENA_MAX": "4"}) == "False"

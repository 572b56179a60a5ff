"""A one-line progress bar on stderr for long commands."""

from __future__ import annotations

import sys


class ProgressBar:
    """A one-line progress bar on stderr, used as ``progress(done, total)``; a no-op when
    disabled."""

    WIDTH = 30

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled, self._drawn = label, enabled, False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        share = min(done / total, 1.0) if total else 0.0
        filled = int(share * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        count = f"{done}/{total}" if total else str(done)
        print(f"\r{self.label:>12} [{bar}] {count}", end="", file=sys.stderr, flush=True)
        self._drawn = True

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._drawn:
            print(file=sys.stderr)

"""Progress bars (tqdm) on stderr for long commands; shown only to a person at a terminal."""

from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBar:
    """A tqdm bar on stderr, fed as ``progress(done, total)`` (``total`` 0: unknown).

    It draws nothing unless ``enabled`` (callers pass ``not args.json``) and stderr is a
    terminal, so logs and pipes stay clean. Use it as a context manager (the bar is
    removed at the end); :meth:`write` prints a line above it.
    """

    def __init__(self, label: str, enabled: bool = True, unit: str = "frame") -> None:
        self.label, self.unit = label, unit
        self.active = enabled and sys.stderr.isatty()
        self._bar: tqdm | None = None
        #: the last ``done`` reported
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        self.done = done
        if not self.active:
            return
        if self._bar is None:
            self._bar = tqdm(
                total=total or None, desc=self.label, unit=self.unit, file=sys.stderr, leave=False
            )
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def write(self, line: str) -> None:
        """Print ``line`` to stdout without breaking the bar."""
        if self._bar is not None:
            tqdm.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

"""When the inference backend is unavailable (a Triton server gone, or not answering in
time): say so, wait with backoff between retries, say when it is back.

The scheduler reports each failed and each successful backend call here. The first failure
starts an outage: a :class:`~stream.events.BackendStatus` event for the node (``status``
``degraded``; never a stream's), the ``lipforensics_backend_up`` gauge at 0 and a reason in
``/healthz``; the windows of failed calls are dropped and counted by the scheduler as usual.
The first success afterwards ends it (``status`` ``ok``, saying how long it lasted and how
many windows were dropped).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from stream.backoff import backoff_delays
from stream.events import Availability, BackendStatus
from stream.health.metrics import PipelineMetrics

log = logging.getLogger(__name__)

#: the first retry delay and the longest (seconds), doubling in between.
FIRST_RETRY = 0.5
LONGEST_RETRY = 5.0


class Outage:
    """Tracks whether the backend answers (see the module doc).

    Attributes:
        reason: why the backend is unavailable (None while it answers).
    """

    def __init__(
        self,
        backend: str,
        metrics: PipelineMetrics,
        emit: Callable[[BackendStatus], None] = lambda _: None,
    ) -> None:
        self.backend, self.metrics, self.emit = backend, metrics, emit
        self.reason: str | None = None
        self._since = 0.0
        self._dropped = 0
        self._delays: Iterator[float] = iter(())
        metrics.backend_up.set(1)

    def dropped(self) -> None:
        """A window was dropped (counted towards the outage, if there is one)."""
        if self.reason is not None:
            self._dropped += 1

    def failed(self, error: Exception) -> float:
        """A call failed for want of the backend (its windows are dropped after this);
        return the seconds to wait before the next call."""
        self.metrics.backend_failures.inc()
        if self.reason is None:
            self._since, self._dropped = time.monotonic(), 0
            self._delays = backoff_delays(FIRST_RETRY, LONGEST_RETRY)
            self.metrics.backend_up.set(0)
            log.warning("inference backend %s unavailable: %s", self.backend, error)
            detail = f"inference backend unavailable, windows are dropped until it returns: {error}"
            self.emit(BackendStatus(self.backend, Availability.DEGRADED, detail))
        self.reason = f"inference backend {self.backend} unavailable: {error}"
        return next(self._delays)

    def succeeded(self) -> None:
        """A call went through: end the outage, if there was one."""
        if self.reason is None:
            return
        seconds = time.monotonic() - self._since
        self.reason = None
        self.metrics.backend_up.set(1)
        detail = f"inference backend back after {seconds:.1f} s; {self._dropped} windows dropped"
        self._dropped = 0
        log.warning("%s", detail)
        self.emit(BackendStatus(self.backend, Availability.OK, detail))

"""Batch the encoder and temporal-head work of every stream into few backend calls.

Two bounded queues feed one inference thread:

* **windows** (complete :class:`MouthWindow` records, first served): each needs the features
  of its frames; those already in the face's feature cache are reused, the rest are encoded
  in the same batch, then one head call scores every window of the batch;
* **prefetch** (:class:`~stream.windows.face_window.FeatureJob` records): encodings that
  became computable while a window filled; they fill what is left of a batch, so that a
  window's own work at its end is small (about 3 encodings at any stride).

Under overload the oldest window is dropped (counted per stream) and the oldest prefetch
job is dropped (its window encodes the frame itself later). When the backend is unavailable
(:class:`~errors.BackendUnavailable`), the batch's windows are dropped and counted,
and the next call waits a backoff delay (:mod:`stream.health.backend` says degraded).
Memory is bounded by the queue sizes and by the feature caches, which keep only the frames
of the newest windows.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field

import numpy as np

from engines.backends import Backend
from engines.frames import FrameKey, five_frame_inputs, window_keys
from errors import BackendUnavailable
from stream.events import MouthWindow
from stream.health.backend import Outage
from stream.health.metrics import PipelineMetrics
from stream.windows.face_window import FeatureJob

log = logging.getLogger(__name__)

#: cached features older than this many frames before a face's newest one are discarded
CACHE_SPAN = 100
#: most prefetch encodings per backend call, so that a window arriving meanwhile waits for
#: a short call only (about 8 x 7 ms on 2 cores)
PREFETCH_BATCH = 8

FaceKey = tuple[str, int]
#: where a window's score goes back to: the logit, or None when the window was dropped
Reply = Callable[[MouthWindow, float | None], None]


@dataclass(slots=True)
class _Batch:
    """One backend round: the inputs to encode and, per window, where each feature is."""

    windows: list[MouthWindow] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    refs: list[list[np.ndarray | int]] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)
    owners: list[tuple[FaceKey, FrameKey]] = field(default_factory=list)
    slots: dict[tuple[FaceKey, FrameKey], int] = field(default_factory=dict)

    def add(self, face: FaceKey, key: FrameKey, frames: np.ndarray) -> int:
        """Put ``key``'s encoder input (1, 5, 88, 88) in the batch; return its position."""
        self.slots[face, key] = len(self.inputs)
        self.inputs.append(frames)
        self.owners.append((face, key))
        return self.slots[face, key]


class Scheduler:
    """Run windows and prefetch jobs through ``backend``; each window's logit (or None, when
    it is dropped unscored) goes back to the ``reply`` it was queued with.

        Call :meth:`run` as a task; :meth:`submit` and :meth:`prefetch` never block (live
        sources), :meth:`put` waits for room and never drops (files read as fast as possible).

        Attributes:
            dropped_windows: windows dropped unscored, per stream.
            dropped_prefetch: prefetch jobs dropped (their windows encoded the frames later).
            last_drop: ``time.monotonic()`` of the latest dropped window.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        max_batch: int = 32,
        window_queue: int = 16,
        prefetch_queue: int = 128,
        max_delay: float = 1.0,
        metrics: PipelineMetrics | None = None,
        outage: Outage | None = None,
    ) -> None:
        self.backend = backend
        self.max_batch = max_batch
        self.window_queue = window_queue
        self.max_delay = max_delay
        self.metrics = metrics or PipelineMetrics()
        self.outage = outage or Outage(backend.name, self.metrics)
        self.dropped_windows: Counter[str] = Counter()
        self.dropped_prefetch = 0
        self.last_drop = -math.inf
        self._windows: deque[tuple[MouthWindow, float, Reply]] = deque()  # deadline, reply
        self._prefetch: deque[FeatureJob] = deque(maxlen=prefetch_queue)
        self._caches: dict[FaceKey, dict[FrameKey, np.ndarray]] = {}
        self._floor: dict[FaceKey, int] = {}
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._scoring: list[MouthWindow] = []  # the windows of the batch in the engine
        self._progress = asyncio.Condition()  # notified after every batch and every drop
        self._stopping = False
        self._stopped = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="inference")

    @property
    def backlog(self) -> int:
        """Windows waiting for inference."""
        return len(self._windows)

    def submit(self, window: MouthWindow, reply: Reply) -> None:
        """Queue a window from a live source: the oldest waiting window is dropped when the
        queue is full, and a window still waiting ``max_delay`` seconds after its last frame
        arrived is dropped when a newer one waits behind it."""
        if len(self._windows) >= self.window_queue:
            self._drop_oldest()
        self._queue(window, window.arrival + self.max_delay, reply)

    async def put(self, window: MouthWindow, reply: Reply) -> None:
        """Queue a window, waiting for room instead of dropping (for sources that wait)."""
        while len(self._windows) >= self.window_queue:
            self._room.clear()
            await self._room.wait()
        self._queue(window, math.inf, reply)

    def _queue(self, window: MouthWindow, deadline: float, reply: Reply) -> None:
        self._windows.append((window, deadline, reply))
        self._caches.setdefault((window.stream_id, window.face), {})
        self._wake.set()

    def prefetch(self, job: FeatureJob) -> None:
        """Queue an encoding that a coming window will need (oldest dropped when full)."""
        if len(self._prefetch) == self._prefetch.maxlen:
            self.dropped_prefetch += 1
        self._prefetch.append(job)
        self._caches.setdefault((job.stream_id, job.face), {})
        self._wake.set()

    def forget(self, stream_id: str, face: int) -> None:
        """Free a face's cached features (its track ended)."""
        self._caches.pop((stream_id, face), None)
        self._floor.pop((stream_id, face), None)

    async def run(self) -> None:
        """Serve the queues until :meth:`stop`."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._windows and not self._prefetch:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._plan()
            self._scoring = batch.windows
            try:
                features, logits = await loop.run_in_executor(self._executor, self._infer, batch)
            except BackendUnavailable as error:
                delay = self.outage.failed(error)
                self._drop_batch(batch)
                await self._retry_after(delay)
                continue
            except Exception:
                log.exception("inference failed; %d windows lost", len(batch.windows))
                self._drop_batch(batch)
                continue
            else:
                self.outage.succeeded()
                self._finish(batch, features, logits)
            finally:
                self._scoring = []
                async with self._progress:
                    self._progress.notify_all()

    async def settled(self, stream_id: str) -> None:
        """Return once no window of ``stream_id`` is queued or being scored: each has had
        its verdict (or was dropped)."""

        def done() -> bool:
            waiting = (window for window, _, _ in self._windows)
            return all(w.stream_id != stream_id for w in (*waiting, *self._scoring))

        async with self._progress:
            await self._progress.wait_for(done)

    async def _retry_after(self, delay: float) -> None:
        """Wait ``delay`` seconds before the next backend call; when stopping, drop what is
        queued instead (the backend is gone: draining would only wait for it)."""
        if not self._stopping:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)
        if self._stopping:
            while self._windows:
                self._drop_oldest()
            self._prefetch.clear()

    async def stop(self, drain: bool = True) -> None:
        """Let :meth:`run` end: after the queued windows (``drain``) or after the current
        batch. Prefetch jobs are discarded (no window will come for them)."""
        self._prefetch.clear()
        if not drain:
            self._windows.clear()
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        async with self._progress:
            self._progress.notify_all()

    def close(self) -> None:
        """Release the inference thread (after :meth:`run` ended)."""
        self._executor.shutdown(wait=True)

    def _drop_oldest(self) -> None:
        window, _, reply = self._windows.popleft()
        self._dropped(window, reply)

    def _dropped(self, window: MouthWindow, reply: Reply) -> None:
        """Count a window that will not be scored, and say so to its reply."""
        self.dropped_windows[window.stream_id] += 1
        self.metrics.windows_dropped.labels(window.stream_id).inc()
        self.last_drop = time.monotonic()
        self.outage.dropped()
        reply(window, None)

    def _drop_batch(self, batch: _Batch) -> None:
        for window, reply in zip(batch.windows, batch.replies, strict=True):
            self._dropped(window, reply)

    def _plan(self) -> _Batch:
        """Take windows (oldest first), then a few prefetch jobs, up to about ``max_batch``
        inputs."""
        batch = _Batch()
        now = time.monotonic()
        while len(self._windows) > 1 and self._windows[0][1] < now:
            self._drop_oldest()
        while self._windows and len(batch.inputs) < self.max_batch:
            window, _, reply = self._windows.popleft()
            face = (window.stream_id, window.face)
            cache = self._caches.get(face, {})
            refs: list[np.ndarray | int] = []
            for key in window_keys(window.first, len(window.frames)):
                ref = cache.get(key)
                if ref is None:
                    ref = batch.slots.get((face, key))
                if ref is None:
                    row = five_frame_inputs(window.frames, [key], window.first)[0]
                    ref = batch.add(face, key, row)
                refs.append(ref)
            batch.windows.append(window)
            batch.replies.append(reply)
            batch.refs.append(refs)
        self._room.set()
        limit = min(self.max_batch, len(batch.inputs) + PREFETCH_BATCH)
        while self._prefetch and len(batch.inputs) < limit:
            job = self._prefetch.popleft()
            face = (job.stream_id, job.face)
            fresh = job.key[0] > self._floor.get(face, -1)
            known = job.key in self._caches.get(face, {}) or (face, job.key) in batch.slots
            if fresh and not known:
                batch.add(face, job.key, job.frames)
        return batch

    def _infer(self, batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
        """(In the inference thread.) Encode the batch's inputs, then score its windows."""
        features = np.zeros((0, 0), dtype=np.float32)
        if batch.inputs:
            began = time.perf_counter()
            chunks = [
                self.backend.encode_frames(np.stack(batch.inputs[i : i + self.max_batch]))
                for i in range(0, len(batch.inputs), self.max_batch)
            ]
            features = np.concatenate(chunks)
            self._timed("encode", began)
        logits = np.zeros(0, dtype=np.float32)
        if batch.windows:
            began = time.perf_counter()
            clips = np.stack(
                [[ref if isinstance(ref, np.ndarray) else features[ref] for ref in refs]
                 for refs in batch.refs]
            )  # fmt: skip
            logits = np.asarray(self.backend.head(clips)).reshape(-1)
            self._timed("head", began)
        return features, logits

    def _timed(self, stage: str, began: float) -> None:
        seconds = time.perf_counter() - began
        self.metrics.inference.labels(stage).observe(seconds)
        self.metrics.stage_seconds.labels(stage).inc(seconds)

    def _finish(self, batch: _Batch, features: np.ndarray, logits: np.ndarray) -> None:
        """Cache the new features of live faces, discard what no coming window needs, report."""
        for (face, key), feature in zip(batch.owners, features, strict=True):
            if face in self._caches and key[0] > self._floor.get(face, -1):
                self._caches[face][key] = feature
        for window in batch.windows:
            face = (window.stream_id, window.face)
            if face in self._caches:
                self._floor[face] = max(self._floor.get(face, -1), window.first)
        for face in {owner for owner, _ in batch.owners}:
            cache = self._caches.get(face)
            if cache:
                floor = max(self._floor.get(face, -1), max(cache)[0] - CACHE_SPAN)
                for key in [key for key in cache if key[0] <= floor]:
                    del cache[key]
        for window, reply, logit in zip(batch.windows, batch.replies, logits, strict=True):
            reply(window, float(logit))

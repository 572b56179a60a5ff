"""The live pipeline: sources in, verdicts and alerts out.

Per stream: source -> 25 fps clock -> bounded frame queue -> face stage (landmarks, track
ids, landmarks without look-ahead, mouth crops; in a thread, one landmarker per stream) -> one
:class:`~stream.windows.face_window.FaceWindow` per face. For all streams together: one
:class:`~stream.windows.scheduler.Scheduler` batches encodings and windows into backend calls,
then one :class:`~calibration.policy.AlertPolicy` per face turns logits into levels, and every
event goes to every sink (JSON lines, webhook, in-memory subscribers).

A live source whose frames pile up loses the whole backlog at once (counted), so the
frames that are scored stay consecutive and recent; a file read as fast as possible waits
for the pipeline instead.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing, suppress
from dataclasses import dataclass, field, replace
from typing import Protocol

from calibration.policy import AlertPolicy, PolicyConfig
from calibration.thresholds import describe_thresholds, load_thresholds_for
from engines.backends import Backend
from engines.errors import LipForensicsError
from engines.method import normalise_crops
from stream.alerts.outbox import Outbox, default_outbox_path
from stream.alerts.sinks import Broadcast, JsonlSink, Sink, WebhookSink
from stream.config import Settings
from stream.faces.stage import FaceStage
from stream.metrics import PipelineMetrics
from stream.records import Frame, MouthWindow, StatusEvent, Verdict
from stream.sources.base import Source
from stream.windows.clock import Resampler, Tick
from stream.windows.face_window import FaceWindow
from stream.windows.frame_queue import FrameQueue
from stream.windows.scheduler import Scheduler

log = logging.getLogger(__name__)

#: seconds after the last dropped frame or window during which health says "degraded".
DEGRADED_FOR = 10.0
#: ended streams whose state (for health and late verdicts) is kept; older ones are freed.
KEEP_ENDED = 64
#: source states in which a stream is not delivering frames.
DOWN_STATES = ("disconnected", "reconnecting", "error")


class Event(Protocol):
    """Anything with a JSON-ready form (records, status events)."""

    def to_dict(self) -> dict[str, object]: ...


@dataclass(slots=True)
class _Stream:
    """The state of one running source."""

    source: Source
    queue: FrameQueue[tuple[int, Tick[Frame]] | None]
    status: str = "starting"
    windows: dict[int, FaceWindow] = field(default_factory=dict)
    policies: dict[int, AlertPolicy] = field(default_factory=dict)


class Pipeline:
    """Sources in, events out (see the module doc).

    Inside a running event loop: build it with the settings and a backend, :meth:`add_source`
    each source (built with ``on_status=pipeline.emit``), then either await
    :meth:`run_until_sources_end` or serve and, at the end, await :meth:`stop`.
    """

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        *,
        sinks: list[Sink] | None = None,
        policy: PolicyConfig | None = None,
    ) -> None:
        """``policy`` overrides the alert policy; by default it is the one calibrated for
        ``settings.weights`` (``run_stream.py calibrate``), else the uncalibrated default.

        Raises:
            CheckpointError: the weights' thresholds file is unreadable or stale.
        """
        self.settings = settings
        self.metrics = PipelineMetrics()
        thresholds = None
        if policy is None and settings.weights is not None:
            thresholds = load_thresholds_for(settings.weights)
        self.thresholds_note = describe_thresholds(thresholds)
        self.policy = policy or (
            thresholds.policy_for(settings.stride) if thresholds else PolicyConfig()
        )
        self._probability = thresholds.probability if thresholds else _sigmoid
        self.sinks: list[Sink] = sinks if sinks is not None else _default_sinks(settings)
        self.broadcast = Broadcast()
        self.scheduler = Scheduler(
            backend,
            self._scored,
            max_batch=settings.max_batch,
            window_queue=settings.window_queue,
            prefetch_queue=settings.prefetch_queue,
            max_delay=settings.max_delay,
            metrics=self.metrics,
        )
        self._streams: dict[str, _Stream] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._scheduler_task: asyncio.Task[None] | None = None
        self._landmark_pool = ThreadPoolExecutor(
            settings.landmark_workers, thread_name_prefix="landmarks"
        )
        self._last_drop = -math.inf
        self._stopping: asyncio.Task[None] | None = None
        self._ended_ids: deque[str] = deque()

    def add_source(self, source: Source) -> asyncio.Task[None]:
        """Start reading ``source``; the task ends when the source ends (or on :meth:`stop`).

        Raises:
            ValueError: a stream with the same id is already running.
            RuntimeError: the pipeline was stopped.
        """
        if self._stopping is not None:
            raise RuntimeError("the pipeline was stopped")
        if source.stream_id in self._tasks and not self._tasks[source.stream_id].done():
            raise ValueError(f"stream {source.stream_id!r} is already running")
        if self._scheduler_task is None:
            self._scheduler_task = asyncio.get_running_loop().create_task(self.scheduler.run())
        size = self.settings.frame_queue if source.live else 2 * self.settings.window
        budget = round(self.settings.frame_queue_mb * 2**20)
        stream = _Stream(source, FrameQueue(size, budget))
        self._streams[source.stream_id] = stream
        task = asyncio.get_running_loop().create_task(self._run_stream(stream))
        self._tasks[source.stream_id] = task
        task.add_done_callback(lambda _: self._ended(source.stream_id))
        return task

    def emit(self, event: Event) -> None:
        """Send an event (verdict, alert, status) to every sink and subscriber."""
        if isinstance(event, StatusEvent) and event.stream in self._streams:
            self._streams[event.stream].status = event.status
        data = event.to_dict()
        for sink in self.sinks:
            sink.send(data)
        self.broadcast.send(data)

    def subscribe(self) -> AsyncIterator[dict[str, object]]:
        """Every event from now on (for Server-Sent Events); a slow subscriber loses its
        oldest events rather than holding the pipeline up."""
        return self.broadcast.subscribe()

    def metrics_text(self) -> bytes:
        """The Prometheus text exposition (``/metrics``)."""
        return self.metrics.text()

    def health(self) -> dict[str, object]:
        """``{"status": "ok" | "degraded", "reasons": [...], "streams": {...}}``: degraded
        while frames or windows were dropped in the last :data:`DEGRADED_FOR` seconds, or a
        source is disconnected."""
        reasons = []
        last_drop = max(self._last_drop, self.scheduler.last_drop)
        if time.monotonic() - last_drop < DEGRADED_FOR:
            reasons.append("falling behind: frames or windows dropped recently")
        streams = {}
        for stream_id, stream in self._streams.items():
            if stream.status in DOWN_STATES:
                reasons.append(f"stream {stream_id} is {stream.status}")
            streams[stream_id] = {
                "status": stream.status,
                "faces": len(stream.windows),
                "frames": self.metrics.value("lipforensics_frames_total", stream=stream_id),
                "frames_dropped": self.metrics.value(
                    "lipforensics_frames_dropped_total", stream=stream_id
                ),
                "windows_scored": self.metrics.value(
                    "lipforensics_windows_scored_total", stream=stream_id
                ),
                "windows_dropped": self.scheduler.dropped_windows[stream_id],
            }
        return {
            "status": "degraded" if reasons else "ok",
            "reasons": reasons,
            "backlog": self.scheduler.backlog,
            "streams": streams,
        }

    async def run_until_sources_end(self) -> None:
        """Wait for every added source to end, score what is left, flush the sinks."""
        while pending := [task for task in self._tasks.values() if not task.done()]:
            await asyncio.wait(pending)
        await self.stop(drain=True)

    async def stop(self, drain: bool = True) -> None:
        """Stop taking input; with ``drain``, score the frames and windows already in hand
        first. Then flush and close the sinks. Safe to call twice, or concurrently (a signal
        handler and the main task): the second call waits for the first."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop(drain))
        await asyncio.shield(self._stopping)

    async def _stop(self, drain: bool) -> None:
        for stream in self._streams.values():
            await stream.source.close()
        tasks = [task for task in self._tasks.values() if not task.done()]
        if not drain:
            for task in tasks:
                task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        if self._scheduler_task is not None:
            await self.scheduler.stop(drain)
            await self._scheduler_task
            self._scheduler_task = None
        for sink in self.sinks:
            await sink.close()
        await self.broadcast.close()
        self.scheduler.close()
        self._landmark_pool.shutdown(wait=True)

    def _ended(self, stream_id: str) -> None:
        """Remember that a stream ended; free the state of the oldest ended streams."""
        self._ended_ids.append(stream_id)
        while len(self._ended_ids) > KEEP_ENDED:
            old = self._ended_ids.popleft()
            if old not in self._ended_ids and self._tasks[old].done():
                del self._tasks[old], self._streams[old]
                self.scheduler.dropped_windows.pop(old, None)
                self.metrics.forget_stream(old)

    async def _run_stream(self, stream: _Stream) -> None:
        """Read and process one source until it ends."""
        loop = asyncio.get_running_loop()
        stage = await loop.run_in_executor(
            self._landmark_pool,
            FaceStage,
            self.settings.max_faces,
            self.settings.forget_frames,
            self.settings.hold_frames,
        )
        worker = loop.create_task(self._process(stream, stage))
        try:
            await self._read(stream)
            await stream.queue.put(None)
            await worker
        except LipForensicsError as error:
            self.emit(StatusEvent(stream.source.stream_id, "error", str(error)))
        except Exception as error:  # a bug must end this stream only, and say so
            log.exception("stream %s failed", stream.source.stream_id)
            detail = f"internal error: {type(error).__name__}: {error}"
            self.emit(StatusEvent(stream.source.stream_id, "error", detail))
        finally:
            worker.cancel()
            with suppress(asyncio.CancelledError):
                await worker
            await loop.run_in_executor(self._landmark_pool, stage.close)
            for face in stream.windows:
                self.scheduler.forget(stream.source.stream_id, face)
            stream.windows.clear()

    async def _read(self, stream: _Stream) -> None:
        """Source -> 25 fps clock -> the stream's queue."""
        source = stream.source
        clock: Resampler[Frame] = Resampler()
        frames_in = self.metrics.frames_in.labels(source.stream_id)
        index = 0
        async with aclosing(source.frames()) as frames:
            async for frame in frames:
                frames_in.inc()
                for tick in clock.push(frame.pts, frame):
                    await self._enqueue(stream, (index, tick))
                    index += 1
        for tick in clock.flush():
            await self._enqueue(stream, (index, tick))
            index += 1

    async def _enqueue(self, stream: _Stream, item: tuple[int, Tick[Frame]]) -> None:
        """Queue a 25 fps frame; a live stream that is behind loses its whole backlog."""
        queue = stream.queue
        size = item[1].item.image.nbytes
        if stream.source.live and queue.full_for(size):
            dropped = await queue.drop_all()
            self.metrics.frames_dropped.labels(stream.source.stream_id).inc(dropped)
            self._last_drop = time.monotonic()
        await queue.put(item, size)

    async def _process(self, stream: _Stream, stage: FaceStage) -> None:
        """The stream's queue -> face stage -> per-face windows -> scheduler."""
        loop = asyncio.get_running_loop()
        stream_id = stream.source.stream_id
        busy = self.metrics.stage_seconds.labels("landmarks")
        while (item := await stream.queue.get()) is not None:
            index, tick = item
            began = time.perf_counter()
            crops, ended = await loop.run_in_executor(
                self._landmark_pool, stage.process, index, tick.item.image, tick.pts, tick.restart
            )
            busy.inc(time.perf_counter() - began)
            for face in ended:
                stream.windows.pop(face, None)
                stream.policies.pop(face, None)
                self.scheduler.forget(stream_id, face)
            if tick.restart:
                for policy in stream.policies.values():
                    policy.reset()
            for face, crop in crops:
                window = stream.windows.get(face)
                if window is None:
                    window = stream.windows[face] = FaceWindow(
                        stream_id,
                        face,
                        length=self.settings.window,
                        stride=self.settings.stride,
                        hold=self.settings.hold_frames,
                    )
                    stream.policies[face] = AlertPolicy(self.policy)
                jobs, windows = window.push(
                    index, tick.pts, normalise_crops(crop[None])[0], tick.item.arrival, tick.restart
                )
                for job in jobs:
                    self.scheduler.prefetch(job)
                for complete in windows:
                    if stream.source.live:
                        self.scheduler.submit(complete)
                    else:
                        await self.scheduler.put(complete)

    def _scored(self, window: MouthWindow, logit: float) -> None:
        """A window's logit -> the face's level -> verdict (and alert) events."""
        stream = self._streams.get(window.stream_id)
        policy = stream.policies.get(window.face) if stream else None
        decision = (policy or AlertPolicy(self.policy)).update(logit)
        latency = time.monotonic() - window.arrival
        verdict = Verdict(
            stream=window.stream_id,
            face=window.face,
            pts=window.pts,
            logit=logit,
            probability=self._probability(logit),
            level=str(decision.level),
            latency_ms=round(latency * 1000.0, 1),
        )
        self.metrics.windows_scored.labels(window.stream_id).inc()
        self.metrics.verdict_latency.labels(window.stream_id).observe(latency)
        if decision.changed:
            self.metrics.alerts.labels(window.stream_id, verdict.level).inc()
        self.emit(verdict)
        if decision.alert:
            self.emit(replace(verdict, type="alert", id=uuid.uuid4().hex))


def _sigmoid(logit: float) -> float:
    """1 / (1 + e^-logit) without overflow for large negative logits."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    odds = math.exp(logit)
    return odds / (1.0 + odds)


def _default_sinks(settings: Settings) -> list[Sink]:
    """The sinks the settings ask for: a webhook (first, so that an alert is in its durable
    outbox before it is anywhere else) and JSON lines."""
    sinks: list[Sink] = []
    if settings.webhook is not None:
        outbox = Outbox(settings.webhook_outbox or default_outbox_path(settings.jsonl))
        sinks.append(WebhookSink(settings.webhook, outbox=outbox))
    if settings.jsonl is not None:
        sinks.append(JsonlSink(settings.jsonl))
    return sinks

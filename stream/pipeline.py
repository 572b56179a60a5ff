"""The live pipeline: sources in, verdicts and alerts out.

Per stream, a :class:`~stream.worker.StreamWorker`: source -> 25 fps clock -> frame queue ->
face stage -> per-face windows. For all streams together: one
:class:`~stream.windows.scheduler.Scheduler` batches encodings and windows into backend
calls; each scored window goes back to the worker that queued it (alert policy -> verdict
events), and every event goes out through one :class:`~stream.alerts.fanout.Fanout` (sinks,
subscribers): the workers' and the backend outage's (:mod:`stream.health.backend`) directly.

The pipeline reads no files: the caller hands it the alert policy and probability map
(:meth:`stream.detector.Detector.pipeline` takes them from the weights' thresholds file) and
the sinks (:func:`sinks_for`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing, suppress

from engines.backends import Backend
from engines.method import sigmoid
from stream.alerts.crops import AlertCrops
from stream.alerts.fanout import Fanout
from stream.alerts.mqtt import MqttSink
from stream.alerts.mqtt_address import parse_mqtt_url
from stream.alerts.outbox import Outbox, default_outbox_path
from stream.alerts.policy import PolicyConfig
from stream.alerts.sinks import JsonlSink, Sink, WebhookSink
from stream.events import KEEP_ENDED, Alert, Event, StreamStatus
from stream.faces.models import SharedFaceModels
from stream.faces.thumbnails import FaceThumbnails
from stream.health.backend import Outage
from stream.health.metrics import PipelineMetrics
from stream.health.node import Health
from stream.settings.groups import AlertSettings
from stream.settings.pipeline import Settings
from stream.sources.base import Source
from stream.sources.rooms import Room
from stream.sources.slots import StreamSlots
from stream.windows.scheduler import Scheduler
from stream.worker import ProbabilityMap, Shared, StreamWorker

#: failures of freed streams remembered for the end of a run (the rest are counted).
KEEP_FAILURES = 10_000


class Pipeline:
    """Sources in, events out (see the module doc).

    Inside a running event loop: build it, :meth:`add_source` each source, then either await
    :meth:`run_until_sources_end` or serve and, at the end, await :meth:`stop`.
    """

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        *,
        sinks: Sequence[Sink] = (),
        policy: PolicyConfig | None = None,
        probability: ProbabilityMap = sigmoid,
    ) -> None:
        """``policy``: the alert policy of every face (default: the uncalibrated one);
        ``probability``: logit -> fake probability (default: the sigmoid)."""
        self.settings = settings
        self.metrics = PipelineMetrics(node=settings.fleet.node)
        self.health_check = Health()
        self.events = Fanout(sinks, node=settings.fleet.node)
        #: the mouth crops of recent alert windows (for the dashboard)
        self.alert_crops = AlertCrops()
        #: each face's latest picture (the pages' face cards)
        self.thumbnails = FaceThumbnails()
        self.outage = Outage(backend.name, self.metrics, self.events.send)
        self.scheduler = Scheduler(
            backend,
            max_batch=settings.engine.max_batch,
            window_queue=settings.engine.window_queue,
            prefetch_queue=settings.engine.prefetch_queue,
            max_delay=settings.engine.max_delay,
            metrics=self.metrics,
            outage=self.outage,
        )
        self._landmark_pool = ThreadPoolExecutor(
            settings.faces.landmark_workers, thread_name_prefix="landmarks"
        )
        face_models = SharedFaceModels(settings.faces.landmarks)
        self._landmark_pool.submit(face_models)  # compiled now; streams wait for it to read
        self._shared = Shared(
            settings=settings,
            scheduler=self.scheduler,
            landmark_pool=self._landmark_pool,
            face_models=face_models,
            metrics=self.metrics,
            health=self.health_check,
            policy=policy or PolicyConfig(),
            probability=probability,
            emit=self.events.send,
            keep_alert_frames=self.alert_crops.keep_window,
            thumbnails=self.thumbnails,
        )
        self.workers: dict[str, StreamWorker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: each call room and the task that watches it
        self._rooms: list[tuple[Room, asyncio.Task[None]]] = []
        #: the stream slots of rooms added without the caller's own (``run``'s rooms)
        self.participant_slots = StreamSlots(settings.sources.max_participants)
        self._scheduler_task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._ended_ids: deque[str] = deque()
        self._old_failures: list[str] = []  # of streams whose state was freed
        self._old_failures_left_out = 0

    @property
    def policy(self) -> PolicyConfig:
        """The alert policy every face starts with."""
        return self._shared.policy

    @property
    def thresholds(self) -> dict[str, float]:
        """The policy's suspicious and alert thresholds as fake probabilities (for charts)."""
        probability, policy = self._shared.probability, self._shared.policy
        return {
            "suspicious": float(probability(policy.suspicious_logit)),
            "alert": float(probability(policy.alert_logit)),
        }

    def add_source(self, source: Source) -> asyncio.Task[None]:
        """Start reading ``source`` (its status events come to this pipeline); the task ends
        when the source ends (or on :meth:`stop`).

        Raises:
            ValueError: a stream with the same id is already running.
            RuntimeError: the pipeline was stopped.
        """
        if self._stopping is not None:
            raise RuntimeError("the pipeline was stopped")
        stream_id = source.stream_id
        if stream_id in self._tasks and not self._tasks[stream_id].done():
            raise ValueError(f"stream {stream_id!r} is already running")
        loop = asyncio.get_running_loop()
        if self._scheduler_task is None:
            self._scheduler_task = loop.create_task(self.scheduler.run())
        worker = self.workers[stream_id] = StreamWorker(source, self._shared)
        task = self._tasks[stream_id] = loop.create_task(worker.run())
        task.add_done_callback(lambda _: self._ended(stream_id))
        return task

    def add_room(self, room: Room, streams: StreamSlots | None = None) -> asyncio.Task[None]:
        """Start watching ``room``: each participant's stream is added with
        :meth:`add_source` as it comes and scored while it holds one of ``streams`` (the
        server's node-wide slots; default :attr:`participant_slots`), the room's own status
        goes out with :meth:`emit`, and a room that announces alerts is handed each alert;
        the task ends when the room is closed (by its owner, or on :meth:`stop`).

        Raises:
            RuntimeError: the pipeline was stopped.
        """
        if self._stopping is not None:
            raise RuntimeError("the pipeline was stopped")
        slots = streams if streams is not None else self.participant_slots
        loop = asyncio.get_running_loop()
        task = loop.create_task(room.run(self.add_source, self.emit, slots))
        if room.announces:
            hearing = loop.create_task(self._tell(room))
            task.add_done_callback(lambda _: hearing.cancel())
        self._rooms = [(known, done) for known, done in self._rooms if not done.done()]
        self._rooms.append((room, task))
        return task

    async def _tell(self, room: Room) -> None:
        """Hand ``room`` every alert while it is watched (it may announce its own)."""
        async with aclosing(self.subscribe()) as events:
            async for event in events:
                if isinstance(event, Alert):
                    room.on_alert(event)

    def add(self, source: Source | Room) -> asyncio.Task[None]:
        """:meth:`add_room` for a room, :meth:`add_source` for any other source."""
        return self.add_room(source) if isinstance(source, Room) else self.add_source(source)

    def emit(self, event: Event) -> None:
        """Send an event from outside the workers (the WHIP server's status of a session's
        stream) to every sink and subscriber. A status of a running stream goes to its
        worker, which owns the stream's status and sends it."""
        if isinstance(event, StreamStatus):
            task = self._tasks.get(event.stream)
            if task is not None and not task.done():
                self.workers[event.stream].on_status(event)
                return
        self.events.send(event)

    def subscribe(self) -> AsyncIterator[Event]:
        """Every event from now on (for Server-Sent Events); a slow subscriber loses its
        oldest events rather than holding the pipeline up."""
        return self.events.subscribe()

    def metrics_text(self) -> bytes:
        """The Prometheus text exposition (``/metrics``)."""
        return self.metrics.text()

    def health(self) -> dict[str, object]:
        """``{"status": "ok" | "degraded", "reasons": [...], "streams": {...}}`` (see
        :class:`stream.health.node.Health`)."""
        return self.health_check.report(
            self.workers,
            windows_dropped=self.scheduler.dropped_windows,
            windows_last_dropped=self.scheduler.last_drop,
            backlog=self.scheduler.backlog,
            backend_down=self.outage.reason,
        )

    @property
    def failures(self) -> list[str]:
        """``stream: reason`` for each stream whose last error was not followed by a
        connection, those of streams already freed included (the first
        :data:`KEEP_FAILURES` of them; :attr:`failed_streams` counts them all)."""
        current = [f"{w.stream_id}: {w.failure}" for w in self.workers.values() if w.failure]
        return self._old_failures + current

    @property
    def failed_streams(self) -> int:
        """How many streams failed (see :attr:`failures`)."""
        return len(self.failures) + self._old_failures_left_out

    async def run_until_sources_end(self) -> None:
        """Wait for every added source and room to end, score what is left, flush the
        sinks."""
        while pending := [
            task
            for task in [*self._tasks.values(), *(task for _, task in self._rooms)]
            if not task.done()
        ]:
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
        for room, task in self._rooms:
            await room.close()
            with suppress(asyncio.CancelledError):
                await task
        for worker in self.workers.values():
            await worker.source.close()
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
        await self.events.close()
        self.scheduler.close()
        self._landmark_pool.shutdown(wait=True)

    def _ended(self, stream_id: str) -> None:
        """Remember that a stream ended; free the state of the oldest ended streams."""
        self._ended_ids.append(stream_id)
        while len(self._ended_ids) > KEEP_ENDED:
            old = self._ended_ids.popleft()
            if old not in self._ended_ids and self._tasks[old].done():
                self._keep_failure(self.workers[old])
                del self._tasks[old], self.workers[old]
                self.scheduler.dropped_windows.pop(old, None)
                self.metrics.forget_stream(old)

    def _keep_failure(self, worker: StreamWorker) -> None:
        """Remember the failure of a stream whose state is being freed (counted beyond
        :data:`KEEP_FAILURES`)."""
        if not worker.failure:
            return
        if len(self._old_failures) < KEEP_FAILURES:
            self._old_failures.append(f"{worker.stream_id}: {worker.failure}")
        else:
            self._old_failures_left_out += 1


def sinks_for(alerts: AlertSettings, node: str) -> list[Sink]:
    """The sinks ``alerts`` ask for: a webhook and MQTT (first, so that an alert is in
    their durable outboxes before it is anywhere else; MQTT topics name ``node``) and JSON
    lines. Call it inside a running event loop."""
    sinks: list[Sink] = []
    if alerts.webhook is not None:
        outbox = Outbox(alerts.webhook_outbox or default_outbox_path(alerts.jsonl))
        sinks.append(WebhookSink(alerts.webhook, outbox=outbox))
    if alerts.mqtt is not None:
        path = alerts.mqtt_outbox or default_outbox_path(alerts.jsonl, "mqtt")
        outbox = Outbox(path, deliverer="mqtt")
        sinks.append(MqttSink(parse_mqtt_url(alerts.mqtt), node, outbox))
    if alerts.jsonl is not None:
        sinks.append(JsonlSink(alerts.jsonl))
    return sinks

"""One stream's path through the pipeline, and back out as events.

In: source -> 25 fps clock -> bounded frame queue -> face stage (landmarks, track ids,
mouth crops; on the landmark threads) -> one :class:`~stream.windows.face_window.FaceWindow`
per face -> the shared scheduler. Out: the scheduler hands each window's logit back to
this worker -> the face's :class:`~stream.alerts.policy.AlertPolicy` -> verdict (and alert)
events; a face whose track ended gets a ``FaceEnded`` after its last verdict. The worker
owns its stream's status: it sets it and sends it.

A live source whose frames pile up loses the whole backlog at once (counted), so the frames
that are scored stay consecutive and recent; a file read as fast as possible waits instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import aclosing, suppress
from dataclasses import dataclass, replace

import numpy as np

from engines.method import FPS, normalise_crops
from errors import LipForensicsError
from stream.alerts.policy import AlertPolicy, PolicyConfig
from stream.events import (
    Alert,
    CallParticipant,
    Connection,
    Event,
    FaceCrop,
    FaceEnded,
    FaceFrame,
    Frame,
    MouthWindow,
    StreamStatus,
    Verdict,
)
from stream.faces.models import SharedFaceModels
from stream.faces.stage import FaceStage
from stream.faces.thumbnails import FaceThumbnails, face_thumbnail
from stream.faces.turns import Turns
from stream.health.metrics import PipelineMetrics
from stream.health.node import Health, StreamCounts
from stream.pacing.clock import Resampler, Tick
from stream.pacing.frame_queue import FrameQueue
from stream.settings.pipeline import Settings
from stream.sources.base import Source
from stream.windows.face_window import FaceWindow
from stream.windows.quality import Sighting
from stream.windows.scheduler import Scheduler

log = logging.getLogger(__name__)

#: how long an ended stream's last windows may take to be scored before ``ended`` is sent
SETTLE_SECONDS = 10.0

#: logit -> fake probability (the calibrated map of a thresholds file, or the sigmoid).
ProbabilityMap = Callable[[float], float]


@dataclass(frozen=True, slots=True)
class Numbered:
    """A 25 fps frame with its index in the stream (what the frame queue holds)."""

    index: int
    tick: Tick[Frame]


@dataclass(frozen=True, slots=True)
class Shared:
    """What every stream worker of one pipeline uses together."""

    settings: Settings
    scheduler: Scheduler
    landmark_pool: Executor
    #: the face networks every stream's face stage runs (made once, on the first call)
    face_models: SharedFaceModels
    metrics: PipelineMetrics
    health: Health
    policy: PolicyConfig
    probability: ProbabilityMap
    #: sends an event to every sink and subscriber
    emit: Callable[[Event], None]
    #: called with an alert's id and the frames of the window that raised it (kept to show)
    keep_alert_frames: Callable[[str, tuple[np.ndarray, ...]], None] | None = None
    #: each face's latest picture, for people to tell faces apart (None: not kept)
    thumbnails: FaceThumbnails | None = None


class StreamWorker:
    """Reads one source and turns its frames into windows; turns its scores into events."""

    def __init__(self, source: Source, shared: Shared) -> None:
        settings = shared.settings
        self.source, self.shared = source, shared
        #: who the stream is when it is a call room's participant (on each of its events)
        self.participant: CallParticipant | None = getattr(source, "participant", None)
        self.status = Connection.STARTING
        self.counts = StreamCounts()
        size = settings.sources.frame_queue if source.live else 2 * settings.faces.window
        self.queue: FrameQueue[Numbered | None] = FrameQueue(
            size, round(settings.sources.frame_queue_mb * 2**20)
        )
        self.windows: dict[int, FaceWindow] = {}
        self.policies: dict[int, AlertPolicy] = {}
        #: the last error not followed by a connection (None: the stream is fine, or only
        #: waits for capacity: :attr:`held_back`)
        self.failure: str | None = None
        #: built at the first frame: a stream that never sends one (a WHIP publisher that
        #: never connects) costs no landmarker
        self.face_stage: FaceStage | None = None
        #: the source pts of the last frame the face stage looked at, and what it found
        self._seen: tuple[float, FaceFrame] | None = None
        #: which faces are followed on each frame when there are more than fit
        self.turns = Turns(span=2 * settings.faces.window)
        self._windows_dropped = 0
        self._followed = 0  # faces the face stage followed on its last frame
        self._last_verdict: dict[int, float] = {}  # face -> stream time of its last verdict
        #: face -> seconds between its last two verdicts (for the health report)
        self.intervals: dict[int, float] = {}
        self._recent_pts: deque[float] = deque(maxlen=2 * FPS)  # the source's latest frames
        #: the source's ``ended``, sent once the stream's last verdicts are out
        self._ended: StreamStatus | None = None
        #: per face, its windows at the scheduler (queued or being scored)
        self._in_flight: Counter[int] = Counter()
        #: faces whose track ended, waiting for their last verdicts: face -> pts it ended
        self._leaving: dict[int, float] = {}

    @property
    def stream_id(self) -> str:
        """The stream's name in events."""
        return self.source.stream_id

    @property
    def input_fps(self) -> float | None:
        """The rate at which the source delivered frames lately (its last 2 s or so, in
        its own time), or None before two frames."""
        recent = self._recent_pts
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return None
        return (len(recent) - 1) / (recent[-1] - recent[0])

    @property
    def held_back(self) -> str | None:
        """Why the node does not score this stream now, when it waits for capacity (a call
        participant waiting for a stream slot): its ``error`` status then is no failure.
        None: it is not held back."""
        return getattr(self.source, "held_back", None)

    @property
    def faces_at_once(self) -> int | None:
        """Faces followed at once while this stream's faces take turns (None: every face,
        every frame)."""
        return self.turns.at_once

    @property
    def faces(self) -> int:
        """Faces with an open window."""
        return len(self.windows)

    def on_status(self, event: StreamStatus) -> None:
        """A connection change reported by the source (or by the server for it): the
        stream's status, out as an event. ``ended`` waits until the stream's last verdicts
        are out (:meth:`run`), so that it is the stream's last event."""
        if event.status is Connection.ENDED:
            self._ended = event
        else:
            self._set_status(event)

    def _set_status(self, event: StreamStatus) -> None:
        """Take the stream's new status (and its failure if it did not recover); send it."""
        if event.participant is None and self.participant is not None:
            event = replace(event, participant=self.participant)
        self.status = event.status
        if event.status is Connection.ERROR:
            self.failure = None if self.held_back else event.detail
        elif event.status is Connection.CONNECTED:
            self.failure = None
        self.shared.emit(event)

    async def run(self) -> None:
        """Read and process the source until it ends; a failure ends this stream only, with
        an ``error`` status. ``ended`` is always the stream's last event (the source's own,
        or ``stopped`` when the source never sent one)."""
        shared = self.shared
        loop = asyncio.get_running_loop()
        processing = loop.create_task(self._process())
        try:
            # The face networks are compiled as the pipeline starts (a second or two); the
            # source is read once they are ready, so that a live source's first frames do
            # not queue behind the compiling and read as the stream falling behind.
            await loop.run_in_executor(shared.landmark_pool, shared.face_models)
            await self._read()
            await self.queue.put(None)
            await processing
            with suppress(TimeoutError):
                await asyncio.wait_for(shared.scheduler.settled(self.stream_id), SETTLE_SECONDS)
        except LipForensicsError as error:
            self.on_status(StreamStatus(self.stream_id, Connection.ERROR, str(error)))
        except Exception as error:  # a bug must end this stream only, and say so
            log.exception("stream %s failed", self.stream_id)
            detail = f"internal error: {type(error).__name__}: {error}"
            self.on_status(StreamStatus(self.stream_id, Connection.ERROR, detail))
        finally:
            processing.cancel()
            with suppress(asyncio.CancelledError):
                await processing
            if self.face_stage is not None:
                await loop.run_in_executor(shared.landmark_pool, self.face_stage.close)
            for face in self.windows:
                shared.scheduler.forget(self.stream_id, face)
            self.windows.clear()
            ended = self._ended or StreamStatus(self.stream_id, Connection.ENDED, "stopped")
            self._set_status(ended)

    def scored(self, window: MouthWindow, logit: float | None) -> None:
        """The scheduler's reply: a window's logit -> the face's level -> verdict (and
        alert) events; None: the window was dropped. The face's ``FaceEnded`` follows its
        last window when its track has ended."""
        face = window.face
        self._in_flight[face] -= 1
        if logit is not None:
            self._verdict(window, logit)
        if self._in_flight[face] <= 0:
            del self._in_flight[face]
            if face in self._leaving:
                self._face_ended(face)

    def _verdict(self, window: MouthWindow, logit: float) -> None:
        shared = self.shared
        policy = self.policies.get(window.face) or AlertPolicy(shared.policy)
        quality = window.quality
        decision = policy.update(logit, trusted=quality is None or not quality.caveats)
        latency = time.monotonic() - window.arrival
        verdict = Verdict(
            stream=window.stream_id,
            face=window.face,
            pts=window.pts,
            logit=logit,
            probability=shared.probability(logit),
            level=decision.level,
            latency_ms=round(latency * 1000.0, 1),
            quality=quality,
            interval=self._interval(window),
            participant=self.participant,
        )
        self.counts.windows_scored += 1
        shared.metrics.windows_scored.labels(window.stream_id).inc()
        shared.metrics.verdict_latency.labels(window.stream_id).observe(latency)
        if decision.changed:
            shared.metrics.alerts.labels(window.stream_id, str(verdict.level)).inc()
        shared.emit(verdict)
        if decision.alert:
            alert = Alert(verdict, id=uuid.uuid4().hex)
            if shared.keep_alert_frames is not None:
                shared.keep_alert_frames(alert.id, window.frames)
            shared.emit(alert)

    def _interval(self, window: MouthWindow) -> float | None:
        """Seconds of stream time since the face's previous verdict (None: its first)."""
        previous = self._last_verdict.get(window.face)
        self._last_verdict[window.face] = window.pts[1]
        if previous is None:
            return None
        self.intervals[window.face] = window.pts[1] - previous
        return self.intervals[window.face]

    def _leave(self, face: int, pts: float) -> None:
        """A face's track ended at ``pts``: its window closes; it is said to have left once
        its windows at the scheduler have had their verdicts."""
        if self.windows.pop(face, None) is None:
            return
        self.policies.pop(face, None)
        self._last_verdict.pop(face, None)
        self.intervals.pop(face, None)
        self.shared.scheduler.forget(self.stream_id, face)
        if self.shared.thumbnails is not None:
            self.shared.thumbnails.forget(self.stream_id, face)
        self._leaving[face] = pts
        if not self._in_flight[face]:
            self._face_ended(face)

    def _face_ended(self, face: int) -> None:
        pts = self._leaving.pop(face)
        self.shared.emit(FaceEnded(self.stream_id, face, pts, participant=self.participant))

    async def _read(self) -> None:
        """Source -> 25 fps clock -> the stream's queue."""
        clock: Resampler[Frame] = Resampler()
        frames_in = self.shared.metrics.frames_in.labels(self.stream_id)
        index = 0
        async with aclosing(self.source.frames(self.on_status)) as frames:
            async for frame in frames:
                frames_in.inc()
                self.counts.frames += 1
                self._recent_pts.append(frame.pts)
                for tick in clock.push(frame.pts, frame):
                    await self._enqueue(Numbered(index, tick))
                    index += 1
        for tick in clock.flush():
            await self._enqueue(Numbered(index, tick))
            index += 1

    async def _enqueue(self, item: Numbered) -> None:
        """Queue a 25 fps frame; a live stream that is behind loses its whole backlog."""
        size = item.tick.item.image.nbytes
        if self.source.live and self.queue.full_for(size):
            dropped = await self.queue.drop_all()
            self.turns.behind(self._followed)
            self.counts.frames_dropped += dropped
            self.shared.metrics.frames_dropped.labels(self.stream_id).inc(dropped)
            self.shared.health.frames_dropped()
        await self.queue.put(item, size)

    async def _process(self) -> None:
        """The stream's queue -> face stage -> per-face windows -> scheduler."""
        while (item := await self.queue.get()) is not None:
            found = await self._faces_of(item)
            tick = item.tick
            for face in found.ended:
                self._leave(face, tick.pts)
            if tick.restart:
                for policy in self.policies.values():
                    policy.reset()
            for face in found.crops:
                await self._push(item, face)

    async def _faces_of(self, item: Numbered) -> FaceFrame:
        """The faces of a 25 fps frame: the face stage's (those whose turn it is, while
        faces take turns), or the previous frame's when the clock repeats a frame."""
        loop = asyncio.get_running_loop()
        shared, faces, tick = self.shared, self.shared.settings.faces, item.tick
        if self._seen is not None and self._seen[0] == tick.source_pts and not tick.restart:
            return FaceFrame(self._seen[1].crops, ())
        if self.face_stage is None:
            self.face_stage = await loop.run_in_executor(
                shared.landmark_pool,
                lambda: FaceStage(
                    faces.max_faces,
                    faces.forget_frames,
                    faces.hold_frames,
                    models=shared.face_models(),
                ),
            )
        resting = frozenset[int]()
        if self.source.live:
            self._watch_pace()
            resting = self.turns.resting(self.face_stage.faces)
            waited = time.monotonic() - tick.item.arrival
            shared.metrics.frame_wait.labels(self.stream_id).observe(waited)
        began = time.perf_counter()
        found = await loop.run_in_executor(
            shared.landmark_pool,
            self.face_stage.process,
            item.index,
            tick.item.image,
            tick.pts,
            tick.restart,
            resting,
        )
        took = time.perf_counter() - began
        shared.metrics.stage_seconds.labels("landmarks").inc(took)
        self._seen = (tick.source_pts, found)
        self._followed = len(found.crops)
        self.turns.timed(took, self._followed)
        return found

    def _watch_pace(self) -> None:
        """Signs that this live stream falls behind (frames queued past half the queue,
        windows dropped at the scheduler) make its faces take turns
        (:class:`~stream.faces.turns.Turns`)."""
        dropped = self.shared.scheduler.dropped_windows[self.stream_id]
        if self.queue.qsize() > self.queue.max_items // 2 or dropped > self._windows_dropped:
            self.turns.behind(self._followed)
        self._windows_dropped = dropped

    async def _push(self, item: Numbered, face: FaceCrop) -> None:
        """One face's crop -> its window -> encodings and complete windows to the
        scheduler (and the face's picture, with each window)."""
        shared, faces, scheduler, tick = (
            self.shared,
            self.shared.settings.faces,
            self.shared.scheduler,
            item.tick,
        )
        window = self.windows.get(face.face)
        if window is None:
            window = self.windows[face.face] = FaceWindow(
                self.stream_id,
                face.face,
                length=faces.window,
                stride=faces.stride,
                hold=faces.hold_frames,
            )
            self.policies[face.face] = AlertPolicy(shared.policy)
        height, width = tick.item.image.shape[:2]
        normalised = normalise_crops(face.crop[None])[0]
        seen = Sighting(tick.source_pts, face.box, (width, height), face.cut)
        jobs, windows = window.push(
            item.index, tick.pts, normalised, tick.item.arrival, tick.restart, seen
        )
        for job in jobs:
            scheduler.prefetch(job)
        if windows and shared.thumbnails is not None:
            picture = face_thumbnail(tick.item.image, face.box)
            shared.thumbnails.update(self.stream_id, face.face, picture)
        for complete in windows:
            self._in_flight[face.face] += 1
            if self.source.live:
                scheduler.submit(complete, self.scored)
            else:
                await scheduler.put(complete, self.scored)

"""Shared helpers for the live-pipeline tests: a narrow real network and backends around it.

The network is the real model code with narrow widths (fast on 2 cores) and fixed random
weights; :class:`CountingBackend` is the real torch backend that also records its batches;
:class:`SlowBackend` sleeps before each call to play an overloaded engine; :func:`run` runs
a test's coroutine with a time limit. ``conftest.py`` turns these into fixtures.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Coroutine, Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import torch

from engines.backends import TorchBackend
from engines.model import LipForensics, ModelConfig
from stream.events import Event, Frame
from stream.sources.base import StatusCallback, ignore_status
from stream.sources.video_file import VideoFile
from stream.windows.scheduler import Scheduler

E = TypeVar("E", bound=Event)

#: the one narrow network of the test suite (feature_dim 32, tcn_width 48).
NARROW = ModelConfig(frontend_channels=8, trunk_widths=(8, 16, 16, 32), tcn_hidden=16)
#: the real clip: 4.0 s, 100 frames at 25 fps (300x400), one face throughout.
TALKING = Path(__file__).parent / "data" / "talking.mp4"
#: seconds :func:`run` gives a coroutine unless told otherwise.
RUN_TIMEOUT = 60.0


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(
    coroutine: Coroutine[object, object, object],
    timeout: float = RUN_TIMEOUT,
    events: Iterable[object] | None = None,
) -> object:
    """Run ``coroutine`` to the end in a fresh event loop and return its result; past
    ``timeout`` seconds fail the test (never hang), listing the status events in ``events``
    (objects with ``status`` and ``detail``) to say how far it got."""
    try:
        return asyncio.run(asyncio.wait_for(coroutine, timeout))
    except TimeoutError:
        story = "; ".join(f"{event.status}: {event.detail}" for event in events or [])
        pytest.fail(f"timed out after {timeout:g} s; status events: {story or 'none'}")


def narrow_model(seed: int = 0) -> LipForensics:
    """The LipForensics network at narrow widths with seeded random weights, eval mode."""
    torch.manual_seed(seed)
    model = LipForensics(NARROW)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                tensor.normal_(0.0, 0.1)
    return model.eval()


def clip_logit(model: LipForensics, frames: np.ndarray) -> float:
    """The whole network's logit on one (25, 88, 88) normalised clip (the reference)."""
    with torch.inference_mode():
        return float(model(torch.from_numpy(np.asarray(frames))[None, None]).reshape(-1)[0])


class CountingBackend(TorchBackend):
    """The torch backend, recording the batch size of every call and, once
    :func:`record_batch_streams` has hooked it to a scheduler, the stream of every window in
    every head call (:attr:`head_streams`)."""

    def __init__(self, model: LipForensics) -> None:
        super().__init__(model)
        self.encode_batches: list[int] = []
        self.head_batches: list[int] = []
        self.head_streams: list[list[str]] = []
        #: the stream ids of the windows in the batch being scored (set by the scheduler hook)
        self.batch_streams: list[str] | None = None

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        self.encode_batches.append(len(frames))
        return super().encode_frames(frames)

    def head(self, features: np.ndarray) -> np.ndarray:
        self.head_batches.append(len(features))
        if self.batch_streams is not None:
            assert len(self.batch_streams) == len(features), "one clip per window"
            self.head_streams.append(self.batch_streams)
        return super().head(features)


def record_batch_streams(scheduler: Scheduler) -> None:
    """Tell the scheduler's :class:`CountingBackend` which windows each batch holds, so that
    its :attr:`~CountingBackend.head_streams` says which streams shared a head call. (The
    backend only sees arrays: the hook wraps the scheduler's inference step, which scores
    one planned batch of windows with at most one ``head`` call.)"""
    backend, infer = scheduler.backend, scheduler._infer

    def infer_recording(batch):  # in the inference thread, one batch at a time
        backend.batch_streams = [window.stream_id for window in batch.windows]
        try:
            return infer(batch)
        finally:
            backend.batch_streams = None

    scheduler._infer = infer_recording


class SlowBackend(CountingBackend):
    """A backend made slow on purpose: every call first sleeps ``delay`` seconds."""

    def __init__(self, model: LipForensics, delay: float) -> None:
        super().__init__(model)
        self.delay = delay

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        time.sleep(self.delay)
        return super().encode_frames(frames)


class ListSink:
    """A sink that keeps every event record in :attr:`events`."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False

    def send(self, event: Event) -> None:
        self.events.append(event)

    async def close(self) -> None:
        self.closed = True

    def of(self, kind: type[E], stream: str | None = None) -> list[E]:
        """The events of one kind (and stream), in order."""
        kept = [e for e in self.events if isinstance(e, kind)]
        return kept if stream is None else [e for e in kept if e.stream == stream]


class MemorySource:
    """A live source that hands over already decoded frames all at once, without waiting:
    the pipeline cannot keep up with it, by construction."""

    live = True

    def __init__(self, path: Path, stream_id: str) -> None:
        self.stream_id = stream_id
        with VideoFile(path) as video:
            self._frames = [Frame(stream_id, pts, rgb) for pts, rgb in video.frames()]

    async def frames(self, on_status: StatusCallback = ignore_status) -> AsyncIterator[Frame]:
        for frame in self._frames:
            yield frame

    async def close(self) -> None:
        self._frames = []

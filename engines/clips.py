"""The paper's clip logits, computed exactly and with each frame feature encoded once.

A clip is 25 consecutive 25 fps mouth crops; its logit is the head over the 25 frame
features, each from the five-frame window around the frame *inside the clip* (zeros outside).
Overlapping clips share the features of their interior frames, so sliding clips cost little
more than disjoint ones. :func:`score_clips` scores clips of an array in memory;
:class:`StreamScorer` scores the clips of crops pushed one by one (a scan of a long video)
in memory that does not grow with the input. Both give the same logits, bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from engines.frames import FrameKey, five_frame_inputs, key_span, window_keys
from engines.method import CLIP_FRAMES, normalise_crops

if TYPE_CHECKING:
    from engines.backends import Backend


def clip_starts(
    runs: tuple[tuple[int, int], ...], stride: int, clip_frames: int = CLIP_FRAMES
) -> list[int]:
    """Start index of every clip: every ``stride`` frames from the start of each run, as long
    as a whole clip fits in the run (leftover frames are dropped)."""
    return [first for start, stop in runs for first in range(start, stop - clip_frames + 1, stride)]


class ClipScorer:
    """Logits of 25-frame clips added one at a time, each frame feature encoded once
    (:mod:`engines.frames`): exactly the paper's clip logits.

    Frame features are encoded in batches of ``batch`` and clips go through the head in
    batches of ``batch``, both in the order the clips were added, so the batches (and the
    logits, bit for bit) are the same however the adding is spread out. Only what queued
    clips still need is kept. Add clips in increasing start order: a feature is shared only
    with clips added after it and starting at or before its frame.
    """

    def __init__(
        self,
        backend: Backend,
        frames: Callable[[int, int], np.ndarray],
        *,
        batch: int = 64,
        preprocess: Callable[[np.ndarray], np.ndarray] = normalise_crops,
    ) -> None:
        """``frames(low, high)``: uint8 crops low .. high - 1; asked only for frames of clips
        already added, from :meth:`needs_from` on. ``preprocess`` turns them into the
        network's input (the weights' :class:`engines.method.Preprocessing`)."""
        self.backend, self.frames, self.batch = backend, frames, batch
        self.preprocess = preprocess
        self.seconds = 0.0  # spent preparing and running the network
        self._shared: dict[FrameKey, int] = {}  # features later clips may need: key -> number
        self._pending: list[FrameKey] = []  # not encoded yet, numbered from self._encoded on
        self._encoded = 0
        self._features: dict[int, np.ndarray] = {}
        self._queued: list[list[int]] = []  # feature numbers of the clips before the head
        self._logits: list[np.ndarray] = []

    def add(self, start: int) -> None:
        """Queue the clip of frames ``start`` .. ``start + 24``; scores full batches."""
        self._shared = {key: n for key, n in self._shared.items() if key[0] >= start}
        row = []
        for key in window_keys(start, CLIP_FRAMES):
            if key not in self._shared:
                self._shared[key] = self._encoded + len(self._pending)
                self._pending.append(key)
            row.append(self._shared[key])
        self._queued.append(row)
        self._score(final=False)

    def needs_from(self) -> int | None:
        """The first frame that queued clips still need, or None when they need none."""
        return min((key_span(key)[0] for key in self._pending), default=None)

    def finish(self) -> np.ndarray:
        """Score the rest; the float32 logits of every clip added, in order."""
        self._score(final=True)
        return np.concatenate([np.zeros(0, np.float32), *self._logits]).astype(np.float32)

    def _score(self, final: bool) -> None:
        started = time.perf_counter()
        while len(self._pending) >= self.batch or (final and self._pending):
            self._encode(self._pending[: self.batch])
            del self._pending[: self.batch]
        while len(self._queued) >= self.batch or (final and self._queued):
            clips = self._queued[: self.batch]
            if max(max(row) for row in clips) >= self._encoded:
                break
            features = np.stack([np.stack([self._features[n] for n in row]) for row in clips])
            self._logits.append(self.backend.head(features))
            del self._queued[: self.batch]
            needed = {n for row in self._queued for n in row} | set(self._shared.values())
            self._features = {n: f for n, f in self._features.items() if n in needed}
        self.seconds += time.perf_counter() - started

    def _encode(self, keys: list[FrameKey]) -> None:
        spans = [key_span(key) for key in keys]
        low, high = min(span[0] for span in spans), max(span[1] for span in spans)
        frames = self.preprocess(self.frames(low, high))
        features = self.backend.encode_frames(five_frame_inputs(frames, keys, first=low))
        self._features.update((self._encoded + i, f) for i, f in enumerate(features))
        self._encoded += len(keys)


def score_clips(
    crops: np.ndarray, starts: list[int], backend: Backend, *, batch: int = 64
) -> np.ndarray:
    """Logits (float32, one per start) of the 25-frame clips of uint8 ``crops`` beginning at
    ``starts``: each needed frame feature is encoded once (exactly the paper's clip logit).

    ``backend`` is an :class:`engines.backends.Backend`; see :class:`ClipScorer`.
    """
    scorer = ClipScorer(backend, lambda low, high: crops[low:high], batch=batch)
    for start in starts:
        scorer.add(start)
    return scorer.finish()


class StreamScorer:
    """Scores the clips of mouth crops pushed in frame order, holding only the frames still
    needed, however long the input: fewer than ``batch * stride + 25`` within one run, and
    fewer than ``batch * (stride + 24)`` across runs (the features of fewer than ``batch``
    frames wait to be encoded, each clip brings at least one, and consecutive clips start
    at most ``stride + 24`` frames apart).

    Clips start every ``stride`` frames from the start of each run and never span runs (as
    :func:`clip_starts` on the whole input); the logits equal :func:`score_clips`'s bit for
    bit.
    """

    def __init__(
        self,
        backend: Backend,
        stride: int,
        *,
        batch: int = 64,
        preprocess: Callable[[np.ndarray], np.ndarray] = normalise_crops,
    ) -> None:
        self.stride = stride
        self.clips = ClipScorer(backend, self._window, batch=batch, preprocess=preprocess)
        self.clip_times: list[float] = []  # each clip's start (seconds)
        self.frames_with_face = 0  # crops pushed
        self.longest_run = 0
        self._crops: list[np.ndarray] = []  # crops self._first .. self.frames_with_face - 1
        self._times: list[float] = []
        self._first = 0
        self._run: int | None = None
        self._run_start = 0
        self._next = 0  # where the next clip starts

    @property
    def buffered(self) -> int:
        """Crops held now."""
        return len(self._crops)

    def push(self, pts: float, crop: np.ndarray, run: int) -> None:
        """The next crop (uint8 (96, 96)), its time and run; scores full batches of clips."""
        if run != self._run:
            self._run, self._run_start = run, self.frames_with_face
            self._next = self.frames_with_face
        self._crops.append(crop)
        self._times.append(pts)
        self.frames_with_face += 1
        self.longest_run = max(self.longest_run, self.frames_with_face - self._run_start)
        if self.frames_with_face - self._next == CLIP_FRAMES:
            self.clip_times.append(self._times[self._next - self._first])
            self.clips.add(self._next)
            self._next += self.stride
        needed = self.clips.needs_from()
        keep = self._next if needed is None else min(needed, self._next)
        drop = min(keep - self._first, len(self._crops))
        del self._crops[:drop], self._times[:drop]
        self._first += drop

    def finish(self) -> np.ndarray:
        """Score the clips still queued; the float32 logits of every clip, in order."""
        return self.clips.finish()

    def _window(self, low: int, high: int) -> np.ndarray:
        return np.stack(self._crops[low - self._first : high - self._first])

"""The Python API: a detector loaded from weights, that scans files and watches live sources.

    from stream.detector import Detector

    detector = Detector.load("lipforensics_ff.pth", backend="onnxruntime")
    report = detector.scan("clip.mp4")  # clip logits, video logit, probability, level
    async for event in detector.watch(["rtsp://camera/stream", "call.mp4"]):
        ...  # verdict, alert and status events, as dicts

The detector carries the weights' calibrated thresholds (``<weights>.thresholds.json``, see
``calibrate``) when there are some, so that levels and probabilities mean the same here as
in the command line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

from engines.digest import file_sha256

from calibration.policy import PolicyConfig
from calibration.thresholds import Thresholds, describe_thresholds, load_thresholds_for
from engines.backends import Backend, backend_for_model
from engines.checkpoint import LoadedCheckpoint, load_checkpoint
from engines.errors import MediaError
from engines.method import sigmoid
from stream.alerts.sinks import Sink
from stream.config import Settings
from stream.pipeline import Pipeline
from stream.scan import Progress, ScanReport, open_input, report_scan, scan_source, why_no_clips
from stream.sources.base import Source
from stream.sources.open import open_source


@dataclass(frozen=True)
class Detector:
    """A LipForensics network behind a backend, with its thresholds (None: uncalibrated).

    Build it with :meth:`load`; it holds no per-stream state, so one detector serves any
    number of scans and pipelines (one at a time per backend).
    """

    checkpoint: LoadedCheckpoint
    backend: Backend
    thresholds: Thresholds | None

    @classmethod
    def load(
        cls,
        weights: str | Path,
        *,
        backend: str = "auto",
        threads: int | None = None,
        calibrated: bool = True,
    ) -> Detector:
        """Read ``weights`` (the authors' checkpoint, or any layout engines.checkpoint knows),
        its thresholds file if there is one (``calibrated=False`` ignores it, as ``calibrate``
        does), and start the backend named ``backend`` (``auto``, ``onnxruntime``, ``torch``,
        ``torch-cuda``, ``tensorrt``).

        Raises:
            LipForensicsError: a bad weight file, stale thresholds, an unusable backend.
        """
        loaded = load_checkpoint(weights)  # before the slow part: fail fast on bad weights
        thresholds = load_thresholds_for(weights) if calibrated else None
        engine = backend_for_model(
            backend, loaded.model, source_sha256=file_sha256(loaded.path), threads=threads
        )
        return cls(loaded, engine, thresholds)

    @property
    def weights(self) -> Path:
        """The weight file."""
        return self.checkpoint.path

    @property
    def thresholds_note(self) -> str:
        """One line saying which thresholds are in use."""
        return describe_thresholds(self.thresholds)

    def policy_for(self, stride: int) -> PolicyConfig:
        """The alert policy for windows every ``stride`` frames."""
        return self.thresholds.policy_for(stride) if self.thresholds else PolicyConfig()

    def probability(self, logit: float) -> float:
        """A window's or video's fake probability: the calibrated map, else the sigmoid."""
        return self.thresholds.probability(logit) if self.thresholds else float(sigmoid(logit))

    def scan(
        self, path: str | Path, *, stride: int = 25, progress: Progress | None = None
    ) -> ScanReport:
        """Score a video file or a .npy of mouth crops clip by clip (see :mod:`stream.scan`).

        Raises:
            MediaError: a missing or unreadable input, or one without 25 consecutive frames
                with a face.
        """
        path = Path(path)
        if not path.exists():
            raise MediaError(f"input not found: {path} (expected a video file or .npy crops)")
        scanned = scan_source(open_input(path, progress=progress), self.backend, stride)
        if not scanned.clip_times:
            raise MediaError(why_no_clips(path, scanned))
        return report_scan(
            scanned,
            input=path,
            weights=self.weights,
            checkpoint_layout=self.checkpoint.layout,
            backend=self.backend.name,
            stride=stride,
            thresholds=self.thresholds,
            notes=self.checkpoint.notes,
        )

    def pipeline(self, settings: Settings | None = None, sinks: Iterable[Sink] = ()) -> Pipeline:
        """A live pipeline on this detector's backend, with its policy and probability map;
        add sources to it inside a running event loop."""
        settings = settings or Settings(weights=self.weights, jsonl=None)
        return Pipeline(
            settings,
            self.backend,
            sinks=list(sinks),
            policy=self.policy_for(settings.stride),
            probability=self.probability,
        )

    async def watch(
        self, sources: Iterable[str | Source], settings: Settings | None = None
    ) -> AsyncIterator[dict[str, object]]:
        """Run the live pipeline on ``sources`` (addresses as ``run`` takes them, or
        :class:`~stream.sources.base.Source` objects) and yield every event (verdicts,
        alerts, status) as a dict until they all end. Leaving the loop early stops them."""
        settings = replace(settings or Settings(), weights=self.weights, jsonl=None)
        opened = [
            open_source(s, realtime=settings.realtime) if isinstance(s, str) else s for s in sources
        ]
        pipeline = self.pipeline(settings)
        events = pipeline.subscribe()
        following = asyncio.ensure_future(anext(events, None))  # subscribed from here on
        await asyncio.sleep(0)
        for source in opened:
            pipeline.add_source(source)
        running = asyncio.ensure_future(pipeline.run_until_sources_end())
        try:
            while (event := await following) is not None:
                yield event
                following = asyncio.ensure_future(anext(events, None))
            await running
        finally:
            following.cancel()
            if not running.done():
                await pipeline.stop(drain=False)
                running.cancel()
                with suppress(asyncio.CancelledError):
                    await running
            await events.aclose()

"""The Python API: a detector loaded from weights, that scans files and watches live sources.

    from stream.detector import Detector

    detector = Detector.load("lipforensics_ff.pth", backend="onnxruntime")
    report = detector.scan("clip.mp4")  # clip logits, video logit, probability, level
    async for event in detector.watch(["rtsp://camera/stream", "call.mp4"]):
        ...  # the event records of stream/events.py (Verdict, Alert, StreamStatus, ...)

The detector carries the weights' calibrated thresholds (``<weights>.thresholds.json``, see
``calibrate``, or a thresholds file given) when there are some, so that levels and
probabilities mean the same here as in the command line.

With ``backend="triton"`` the network runs on a Triton server (``triton=TritonTarget``); the
weights are then optional (given, the served models must come from them) and, without them,
neither PyTorch nor a checkpoint is needed: a node of a fleet. Its calibrated levels then
come from ``thresholds=PATH``, which must name the served checkpoint's SHA-256.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from calibration.thresholds import Thresholds, describe_thresholds, load_thresholds
from engines.backends import Backend
from engines.method import PAPER_PREPROCESSING, Preprocessing, sigmoid
from engines.registry import REMOTE, EngineRequest, build_backend, resolve_precision
from engines.weights import Weights, weights_of
from errors import LipForensicsError, MediaError
from stream.alerts.policy import PolicyConfig
from stream.alerts.sinks import Sink
from stream.events import Event
from stream.pipeline import Pipeline
from stream.scan.faces import scan_every_face
from stream.scan.scanner import (
    ScanReport,
    open_input,
    report_scan,
    scan_source,
    why_no_clips,
)
from stream.settings.engine import EngineSettings
from stream.settings.pipeline import Settings
from stream.sources.base import Source
from stream.sources.open import open_source

if TYPE_CHECKING:
    from engines.checkpoint import LoadedCheckpoint
    from engines.int8_cpu import Int8Check
    from engines.triton import TritonTarget
    from stream.faces.reader import Progress


def require_weights(weights: str | Path | None, backend: str) -> None:
    """Every backend but ``triton`` (whose server holds the network) needs a weight file.

    Raises:
        LipForensicsError: no weights where they are needed.
    """
    if weights is None and backend != REMOTE:
        raise LipForensicsError("--weights is required (or weights in the config file)")


@dataclass(frozen=True)
class Detector:
    """A LipForensics network behind a backend, with its thresholds (None: uncalibrated).

    Build it with :meth:`load`; it holds no per-stream state, so one detector serves any
    number of scans and pipelines (one at a time per backend).
    """

    checkpoint: LoadedCheckpoint | None
    backend: Backend
    thresholds: Thresholds | None
    #: the weight file's record (:mod:`engines.weights`: preprocessing, thresholds file,
    #: disclaimer); None for a Triton node started without weights
    card: Weights | None = None

    @classmethod
    def load(
        cls,
        weights: str | Path | None = None,
        *,
        backend: str = "auto",
        threads: int | None = None,
        calibrated: bool = True,
        triton: TritonTarget | None = None,
        thresholds: str | Path | None = None,
        precision: str | None = None,
        int8_calibration: str | Path | None = None,
    ) -> Detector:
        """Read ``weights`` (the authors' checkpoint, or any layout engines.checkpoint knows),
        its thresholds (``thresholds``, else the file next to the weights if there is one;
        ``calibrated=False`` ignores both, as ``calibrate`` does), and start the backend
        named ``backend`` (one of :data:`engines.registry.BACKENDS`: ``auto``,
        ``onnxruntime``, ``torch``, ``torch-cuda``, ``tensorrt``, or ``triton`` on the server
        ``triton``: see the module doc) in ``precision`` (:mod:`engines.precision`; None:
        the backend's own). ``int8`` on ONNX Runtime runs the INT8 network calibrated on the
        genuine crops or video ``int8_calibration``.

        Raises:
            LipForensicsError: a bad weight file, stale thresholds, an unusable backend or
                precision, a Triton server that is unreachable or serves other models.
        """
        resolve_precision(backend, precision)  # a bad name fails before the weights are read
        require_weights(weights, backend)
        if backend == REMOTE:
            return cls._remote(weights, triton, calibrated=calibrated, thresholds=thresholds)
        from engines.checkpoint import load_checkpoint

        loaded = load_checkpoint(weights)  # before the slow part: fail fast on bad weights
        card = weights_of(loaded.path, thresholds)
        found = _thresholds(card.thresholds, card.sha256, str(weights), calibrated)
        calibration = Path(int8_calibration) if int8_calibration is not None else None
        request = EngineRequest(
            loaded.model,
            card.sha256,
            precision=precision,
            threads=threads,
            calibration=calibration,
            crops=lambda: _calibration_crops(calibration),
        )
        return cls(loaded, build_backend(backend, request), found, card)

    @classmethod
    def from_settings(cls, engine: EngineSettings) -> Detector:
        """The detector ``engine`` describes (weights, backend, Triton server, thresholds)."""
        return cls.load(
            engine.weights,
            backend=engine.backend,
            threads=engine.engine_threads,
            triton=engine.triton_target() if engine.backend == "triton" else None,
            thresholds=engine.thresholds,
            precision=engine.precision,
            int8_calibration=engine.int8_calibration,
        )

    @classmethod
    def _remote(
        cls,
        weights: str | Path | None,
        triton: TritonTarget | None,
        *,
        calibrated: bool,
        thresholds: str | Path | None,
    ) -> Detector:
        """A detector on a Triton server: no PyTorch, and the weights only for their hash."""
        from engines.triton import TritonBackend

        if triton is None:
            raise LipForensicsError("--backend triton needs --triton-url HOST:PORT")
        card = weights_of(weights, thresholds) if weights is not None else None
        engine = TritonBackend.connect(triton, card.sha256 if card else None)
        served = engine.served.source_sha256
        what = str(weights) if weights is not None else f"the models served at {triton.url}"
        path = card.thresholds if card else (Path(thresholds) if thresholds else None)
        try:
            found = _thresholds(path, served, what, calibrated)
        except LipForensicsError:
            engine.close()
            raise
        return cls(None, engine, found, card)

    @property
    def weights(self) -> Path | None:
        """The weight file (None: a Triton node started without one)."""
        return self.card.path if self.card else None

    @property
    def int8(self) -> Int8Check | None:
        """The INT8 network's check against FP32 (None: the backend does not run INT8)."""
        return getattr(self.backend, "int8", None)

    @property
    def preprocessing(self) -> Preprocessing:
        """How mouth crops become the network's input (the paper's for a Triton node
        without weights)."""
        return self.card.preprocessing if self.card else PAPER_PREPROCESSING

    def close(self) -> None:
        """Release the backend's connection, if it holds one (a Triton server's)."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

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
        """Score a video file or a .npy of mouth crops clip by clip (see
        :mod:`stream.scan.scanner`).

        Raises:
            MediaError: a missing or unreadable input, or one without 25 consecutive frames
                with a face.
        """
        path = Path(path)
        if not path.exists():
            raise MediaError(f"input not found: {path} (expected a video file or .npy crops)")
        scanned = scan_source(
            open_input(path, progress=progress),
            self.backend,
            stride,
            preprocess=self.preprocessing,
        )
        if not scanned.clip_times:
            raise MediaError(why_no_clips(path, scanned))
        report = report_scan(
            scanned,
            input=path,
            weights=self.weights or f"served by {self.backend.target.url}",
            checkpoint_layout=self.checkpoint.layout if self.checkpoint else "triton",
            backend=self.backend.name,
            stride=stride,
            thresholds=self.thresholds,
            notes=self.checkpoint.notes if self.checkpoint else (),
        )
        if not scanned.crowded:
            return report
        faces = scan_every_face(
            path,
            self.backend,
            stride,
            policy=self.policy_for(stride),
            preprocess=self.preprocessing,
        )
        return replace(report, faces=[face.to_dict() for face in faces])

    def pipeline(self, settings: Settings | None = None, sinks: Iterable[Sink] = ()) -> Pipeline:
        """A live pipeline on this detector's backend, with its policy and probability map;
        add sources to it inside a running event loop."""
        settings = settings or Settings()
        return Pipeline(
            settings,
            self.backend,
            sinks=list(sinks),
            policy=self.policy_for(settings.faces.stride),
            probability=self.probability,
        )

    async def watch(
        self, sources: Iterable[str | Source], settings: Settings | None = None
    ) -> AsyncIterator[Event]:
        """Run the live pipeline on ``sources`` (addresses as ``run`` takes them, or
        :class:`~stream.sources.base.Source` objects) and yield every event record
        (:data:`stream.events.Event`; ``to_dict()`` is its JSON) until they all end. Leaving
        the loop early stops them."""
        settings = settings or Settings()
        realtime = settings.sources.realtime
        opened = [open_source(s, realtime=realtime) if isinstance(s, str) else s for s in sources]
        pipeline = self.pipeline(settings)
        events = pipeline.subscribe()
        following = asyncio.ensure_future(anext(events, None))  # subscribed from here on
        await asyncio.sleep(0)
        for source in opened:
            pipeline.add(source)
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


def _thresholds(
    path: Path | None, weights_sha256: str, what: str, calibrated: bool
) -> Thresholds | None:
    """The thresholds file ``path``, checked against ``weights_sha256`` (``what`` names the
    weights in errors); None when uncalibrated."""
    if not calibrated or path is None:
        return None
    return load_thresholds(path, weights_sha256, what)


def _calibration_crops(path: Path) -> np.ndarray:
    """Genuine uint8 (T, 96, 96) mouth crops from a ``.npy`` crops file or a video (read the
    offline way).

    Raises:
        MediaError: a missing or unreadable file, or a video without a face.
    """
    from engines.quantize import load_crops

    if path.suffix.lower() == ".npy":
        return load_crops([path])
    from stream.faces.reader import extract_mouth_crops

    return extract_mouth_crops(path).crops

"""The engine's settings (``[engine]``): the weights, the backend that runs them, and the
queue in front of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engines.precision import PRECISIONS
from engines.triton import TritonTarget
from errors import LipForensicsError
from stream.settings.groups import cores
from stream.settings.limits import check_positive, check_whole


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """What scores the windows, and how much may wait for it.

    Attributes:
        weights: checkpoint path (None only with ``triton``, or for tests that pass a
            backend directly).
        backend: engine backend name ("auto", "torch", "torch-cuda", "onnxruntime",
            "tensorrt", "triton").
        thresholds: a thresholds file (``calibrate``) to use instead of the one next to the
            weights; with ``triton`` and no weights, the only source of calibrated levels
            (it must name the served checkpoint's SHA-256).
        precision: None (the backend's own: FP16 on a GPU, FP32 on the CPU), ``"fp32"``,
            ``"fp16"``, or ``"int8"``: ONNX Runtime's INT8 network, calibrated on
            ``int8_calibration`` (genuine crops ``.npy`` or a genuine video; the commands
            default to the bundled genuine clip) and refused when too far from FP32
            (:mod:`engines.precision`, docs/benchmarks.md).
        inference_threads: threads of the engine (None: half the cores, see
            :attr:`engine_threads`).
        max_batch: frames per encoder call.
        window_queue: windows waiting for inference (all streams) before the oldest drop.
        prefetch_queue: per-frame encodings waiting before the oldest are dropped.
        max_delay: seconds a live window may wait for inference before a newer one of any
            stream takes its turn (it is dropped and counted).
        triton_url: the Triton server of ``backend = "triton"``: ``HOST:PORT`` of its gRPC
            endpoint, or ``grpcs://HOST:PORT`` for TLS (see docs/fleet.md).
        triton_ca, triton_cert, triton_key: PEM files for TLS: roots to trust (default: the
            system's), a client certificate and its key (mutual TLS).
        triton_headers: extra request headers, ``"Name: value"`` (a proxy's credentials).
        triton_timeout: seconds one Triton call may take before it counts as a failure.
    """

    weights: Path | None = None
    backend: str = "auto"
    thresholds: Path | None = None
    precision: str | None = None
    int8_calibration: Path | None = None
    inference_threads: int | None = None
    max_batch: int = 32
    window_queue: int = 16
    prefetch_queue: int = 128
    max_delay: float = 1.0
    triton_url: str | None = None
    triton_ca: Path | None = None
    triton_cert: Path | None = None
    triton_key: Path | None = None
    triton_headers: tuple[str, ...] = ()
    triton_timeout: float = 10.0

    def __post_init__(self) -> None:
        check_whole(
            self,
            {
                "inference_threads": (1, 256),
                "max_batch": (1, 1024),
                "window_queue": (1, 10_000),
                "prefetch_queue": (1, 100_000),
            },
        )
        check_positive(self, {"max_delay": 3600.0, "triton_timeout": 3600.0})
        if self.precision is not None and self.precision not in PRECISIONS:
            raise LipForensicsError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.backend == "triton" or self.triton_url is not None:
            self.triton_target()  # a bad address, header or TLS file fails here

    def triton_target(self) -> TritonTarget:
        """The Triton server to use (``backend = "triton"``).

        Raises:
            LipForensicsError: no ``triton_url``, or a bad address, header or TLS file.
        """
        if self.triton_url is None:
            raise LipForensicsError("--backend triton needs --triton-url HOST:PORT")
        return TritonTarget.parse(
            self.triton_url,
            ca=self.triton_ca,
            cert=self.triton_cert,
            key=self.triton_key,
            headers=self.triton_headers,
            timeout=self.triton_timeout,
        )

    @property
    def engine_threads(self) -> int:
        """Threads for the engine: ``inference_threads``, or half the cores (the other half
        runs landmarks: on 2 cores one inference thread gave about half the latency of two,
        see docs/benchmarks.md)."""
        return self.inference_threads or max(1, cores() // 2)

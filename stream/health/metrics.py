"""The pipeline's Prometheus metrics, in a registry of its own (two pipelines in one
process, as in tests, do not share counters).

Per stream: frames in, frames dropped, windows scored, windows dropped, verdict latency and
the part of it a frame waits for the stream's face stage (its backlog), alert-level
changes by level. Per stage (landmarks, encode, head): busy wall seconds.
Backend calls: an inference latency histogram; whether the backend answers, and its
failures. The node's name is the label of one constant ``lipforensics_node_info`` series
rather than a label on every series (the Prometheus convention for target metadata: join
on ``instance`` where a query needs it).
"""

from __future__ import annotations

from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from stream.alerts.policy import Level

_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
#: a frame's wait for the face stage is a few milliseconds while the stream keeps up
_WAIT_BUCKETS = (0.005, 0.01, *_LATENCY_BUCKETS)


class PipelineMetrics:
    """Counters and histograms of one pipeline; :meth:`text` renders them for ``/metrics``."""

    def __init__(self, node: str | None = None) -> None:
        """``node``: this node's name, exported as ``lipforensics_node_info{node=...} 1``."""
        self.registry = CollectorRegistry()
        registry = self.registry
        if node is not None:
            Info("lipforensics_node", "This node", registry=registry).info({"node": node})
        self.frames_in = Counter(
            "lipforensics_frames", "Frames received from the source", ["stream"], registry=registry
        )
        self.frames_dropped = Counter(
            "lipforensics_frames_dropped",
            "Frames dropped because the pipeline fell behind",
            ["stream"],
            registry=registry,
        )
        self.windows_scored = Counter(
            "lipforensics_windows_scored", "Mouth windows scored", ["stream"], registry=registry
        )
        self.windows_dropped = Counter(
            "lipforensics_windows_dropped",
            "Mouth windows dropped unscored because inference fell behind",
            ["stream"],
            registry=registry,
        )
        self.alerts = Counter(
            "lipforensics_alerts",
            "Alert-level changes of faces, by the new level (a change to alert is an alert event)",
            ["stream", "level"],
            registry=registry,
        )
        self.verdict_latency = Histogram(
            "lipforensics_verdict_latency_seconds",
            "From the arrival of a window's last frame to its verdict",
            ["stream"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.frame_wait = Histogram(
            "lipforensics_frame_wait_seconds",
            "From the arrival of a frame to the start of its face stage (the stream's backlog)",
            ["stream"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.inference = Histogram(
            "lipforensics_inference_seconds",
            "Duration of one batched backend call",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.stage_seconds = Counter(
            "lipforensics_stage_seconds",
            "Busy time per stage (landmarks, encode, head)",
            ["stage"],
            registry=registry,
        )
        self.backend_up = Gauge(
            "lipforensics_backend_up",
            "1 while the inference backend answers, 0 while it is unavailable",
            registry=registry,
        )
        self.backend_failures = Counter(
            "lipforensics_backend_failures",
            "Backend calls that failed because the backend was unavailable or too slow",
            registry=registry,
        )

    def forget_stream(self, stream_id: str) -> None:
        """Drop every series of one stream (a long-running server sees many short streams:
        their series must not pile up in ``/metrics``)."""
        for metric in (
            self.frames_in,
            self.frames_dropped,
            self.windows_scored,
            self.windows_dropped,
            self.verdict_latency,
            self.frame_wait,
        ):
            with suppress(KeyError):
                metric.remove(stream_id)
        for level in Level:
            with suppress(KeyError):
                self.alerts.remove(stream_id, str(level))

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def quantile(self, name: str, share: float, **labels: str) -> float:
        """The ``share`` quantile (0..1) of histogram ``name``'s observations, read from its
        buckets as Prometheus's ``histogram_quantile`` reads them (linear within the bucket
        it falls in); NaN before any observation."""
        bounds, counts = [], []
        for metric in self.registry.collect():
            for sample in metric.samples:
                if sample.name == f"{name}_bucket" and all(
                    sample.labels.get(key) == value for key, value in labels.items()
                ):
                    bounds.append(float(sample.labels["le"]))
                    counts.append(sample.value)
        if not counts or counts[-1] == 0:
            return float("nan")
        rank, lower, below = share * counts[-1], 0.0, 0.0
        for bound, count in zip(bounds, counts, strict=True):
            if count >= rank:
                if bound == float("inf"):
                    return lower
                return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
            lower, below = bound, count
        return lower

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (0.0 when it has not been recorded yet)."""
        found = self.registry.get_sample_value(name, labels)
        return found if found is not None else 0.0

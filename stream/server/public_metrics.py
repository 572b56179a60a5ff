"""What anyone may read of ``/metrics``: the node's totals, no stream's name.

The pipeline's series carry a ``stream`` label (and a call room's would carry ``face`` or
``participant``): names of cameras, publishers, people. Without the token, ``/metrics``
sums every series over those labels (counters, histogram buckets, sums and counts add up
across streams) and leaves out the per-stream creation times, so a scraper still sees how
much the node does and how fast, and nobody learns who is watched.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

#: labels that name a stream, a face or a call participant.
PRIVATE_LABELS = frozenset({"stream", "face", "participant"})


class _Families:
    """A collector that hands ``generate_latest`` families already built."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        """The families, as given."""
        yield from self._families


def public_text(text: bytes) -> bytes:
    """Prometheus ``text`` without the :data:`PRIVATE_LABELS`: each series summed over them."""
    families = []
    for family in text_string_to_metric_families(text.decode("utf-8")):
        totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for sample in family.samples:
            private = PRIVATE_LABELS.intersection(sample.labels)
            if private and family.name.endswith("_created"):
                continue  # the time a stream's series began: no total makes sense
            labels = tuple((k, v) for k, v in sample.labels.items() if k not in private)
            key = (sample.name, labels)
            totals[key] = totals.get(key, 0.0) + sample.value
        if not totals and family.name.endswith("_created"):
            continue
        public = Metric(family.name, family.documentation, family.type)
        for (name, labels), value in totals.items():
            public.add_sample(name, dict(labels), value)
        families.append(public)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)

"""Retry delays for anything that reconnects or redelivers (cameras, webhooks)."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff_delays(
    first: float, maximum: float, rng: random.Random | None = None
) -> Iterator[float]:
    """Endless retry delays: ``first``, doubling up to ``maximum``, each scaled by a random
    factor in [0.5, 1] so that many clients do not retry in lockstep."""
    rng = rng or random.Random()
    delay = first
    while True:
        yield delay * rng.uniform(0.5, 1.0)
        delay = min(maximum, delay * 2)

"""The pipeline's metrics read back: a histogram's quantile as Prometheus reads it."""

from __future__ import annotations

import math

import pytest

from stream.health.metrics import PipelineMetrics


def test_a_histogram_quantile_is_read_linearly_within_its_bucket() -> None:
    metrics = PipelineMetrics()
    assert math.isnan(metrics.quantile("lipforensics_frame_wait_seconds", 0.99, stream="cam"))
    wait = metrics.frame_wait.labels("cam")
    for _ in range(90):
        wait.observe(0.04)  # the (0.025, 0.05] bucket
    for _ in range(10):
        wait.observe(0.6)  # the (0.5, 0.75] bucket
    metrics.frame_wait.labels("other").observe(9.0)  # another stream's: not counted
    read = metrics.quantile
    assert read("lipforensics_frame_wait_seconds", 0.5, stream="cam") == pytest.approx(
        0.025 + 0.025 * 50 / 90
    )
    assert read("lipforensics_frame_wait_seconds", 0.99, stream="cam") == pytest.approx(
        0.5 + 0.25 * 9 / 10
    )
    assert read("lipforensics_frame_wait_seconds", 0.5, stream="other") == pytest.approx(7.5)
    metrics.forget_stream("cam")
    assert math.isnan(read("lipforensics_frame_wait_seconds", 0.5, stream="cam"))

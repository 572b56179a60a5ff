"""Do the FP32 thresholds still hold in INT8? The demo detector in both precisions.

Usage: ``python -m bench.int8_accuracy [--weights W] [--calibration CROPS.npy|VIDEO]``
(default: the demo detector, calibrated on the bundled genuine demo clip, as
``--precision int8`` is by default).

Scores every 25-frame window at stride 5 of the genuine clips (``media/*.mp4``, the demo's
``genuine.mp4``) and of the manipulated demo clip with FP32 and INT8, and runs both demo
clips through the live pipeline (the alert policy and thresholds of the weights). Prints one
table: window AUC genuine vs manipulated, the largest logit difference on each side, and
the alerts raised in the live run.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np

from calibration.metrics import auc
from stream.detector import Detector
from stream.events import Alert
from stream.settings.pipeline import Settings
from training.demo_detector import DEMO_GENUINE, DEMO_MANIPULATED, WEIGHTS

ROOT = Path(__file__).resolve().parents[1]

GENUINE = (*sorted((ROOT / "media").glob("*.mp4")), DEMO_GENUINE)


def window_logits(detector: Detector, videos: tuple[Path, ...]) -> np.ndarray:
    """Every stride-5 window's logit of each video, concatenated."""
    return np.concatenate([detector.scan(video, stride=5).clip_logits for video in videos])


async def live_alerts(detector: Detector) -> list[tuple[str, int, float]]:
    """(stream, face, window end) of each alert the live pipeline raises on the demo clips."""
    settings = Settings.of(stride=5)
    sources = [str(DEMO_GENUINE), str(DEMO_MANIPULATED)]
    return [
        (event.stream, event.verdict.face, round(event.verdict.pts[1], 2))
        async for event in detector.watch(sources, settings)
        if isinstance(event, Alert)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--calibration", type=Path, default=DEMO_GENUINE)
    args = parser.parse_args()
    rows = {}
    for precision in ("fp32", "int8"):
        detector = Detector.load(
            args.weights,
            backend="onnxruntime",
            threads=1,
            precision=precision,
            int8_calibration=args.calibration,
        )
        if detector.int8 is not None:
            print(f"# {detector.int8.summary()}")
        genuine = window_logits(detector, GENUINE)
        fake = window_logits(detector, (DEMO_MANIPULATED,))
        alerts = asyncio.run(live_alerts(detector))
        rows[precision] = genuine, fake, alerts
    print(
        "| precision | genuine windows | manipulated windows | window AUC "
        "| max logit change genuine | max logit change manipulated | live alerts |"
    )
    print("|---" * 7 + "|")
    base_genuine, base_fake, _ = rows["fp32"]
    for precision, (genuine, fake, alerts) in rows.items():
        scores = np.concatenate([genuine, fake])
        labels = np.concatenate([np.zeros(len(genuine)), np.ones(len(fake))])
        changes = [np.abs(genuine - base_genuine).max(), np.abs(fake - base_fake).max()]
        where = "; ".join(f"{stream} face {face} at {end} s" for stream, face, end in alerts)
        print(
            f"| {precision} | {len(genuine)} | {len(fake)} | {auc(scores, labels):.4f} "
            f"| {changes[0]:.3f} | {changes[1]:.3f} | {len(alerts)}: {where or 'none'} |"
        )


if __name__ == "__main__":
    main()

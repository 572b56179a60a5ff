"""`demo`: play the bundled demo clips through the live pipeline with the demo detector."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.detector import Detector
    from stream.events import Event
    from stream.pipeline import Pipeline

HELP = "play a genuine and a manipulated demo clip through the live pipeline (demo detector)"
DESCRIPTION = """\
Runs the bundled demo clips (training/demo/) through the live pipeline (landmarks, causal
smoothing, mouth crops, 25-frame windows every 5 frames, alert policy) with the bundled
demo detector (training/demo/demo_lipforensics.pth) and its calibrated thresholds, printing
each verdict and alert as it happens with its time in the clip, its logit and the fake
probability from the calibrated map, then one summary line per clip.

The demo detector is trained on synthetic mouth manipulations of genuine footage; it is
not a deepfake detector. Real use: `scan`/`run`/`serve` with the authors'
weights (lipforensics_ff.pth). `build-demo` rebuilds the detector and the clips."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``demo`` command."""
    parser.add_argument(
        "--quiet", action="store_true", help="print alerts and the summaries only, no verdicts"
    )


def run(args: argparse.Namespace) -> int:
    """Play both clips, one after the other; 0 when both behave as expected, else 1."""
    import asyncio

    from errors import LipForensicsError
    from stream.detector import Detector
    from stream.settings.pipeline import Settings
    from training.demo_detector import DEMO_GENUINE, DEMO_MANIPULATED, WEIGHTS

    for path in (WEIGHTS, DEMO_GENUINE, DEMO_MANIPULATED):
        if not path.exists():
            raise LipForensicsError(f"{path} is missing; run 'run_stream.py build-demo' first")
    settings = Settings.of(weights=WEIGHTS, backend="torch", jsonl=None, max_faces=1)
    detector = Detector.load(WEIGHTS, backend="torch", threads=settings.engine.inference_threads)
    if detector.thresholds is None:
        raise LipForensicsError(f"no thresholds next to {WEIGHTS}; run 'run_stream.py build-demo'")
    print(detector.card.disclaimer)
    print(detector.thresholds_note)
    print(levels_note(detector, settings.faces.stride))
    clips = (("genuine", DEMO_GENUINE, False), ("manipulated", DEMO_MANIPULATED, True))
    summaries = []
    for label, path, fake in clips:
        print(f"\n--- {label}: {path.name} (expected: {'alert' if fake else 'no alert'})")
        printer = ClipPrinter(label, verbose=not args.quiet)
        asyncio.run(_play(detector.pipeline(settings, [printer]), path))
        summaries.append(printer.summary(path, fake))
    print()
    for line, _correct in summaries:
        print(line)
    return 0 if all(correct for _line, correct in summaries) else 1


@dataclass
class ClipPrinter:
    """A pipeline sink that prints verdicts and alerts of one clip as they come."""

    label: str
    verbose: bool = True
    logits: list[float] = field(default_factory=list)
    alerts: list[float] = field(default_factory=list)

    def send(self, event: Event) -> None:
        """Print one event (verdicts only when verbose; alerts always)."""
        from stream.events import Alert, Verdict

        match event:
            case Alert(verdict=Verdict(pts=(_, end), logit=logit)):
                self.alerts.append(end)
                print(
                    f"  {end:6.2f} s  ALERT   {self.label}: the mouth looks manipulated "
                    f"(logit {logit:+.2f})"
                )
            case Verdict(pts=(start, end), logit=logit):
                self.logits.append(logit)
                if self.verbose:
                    print(
                        f"  {end:6.2f} s  window {start:5.2f}-{end:5.2f} s  logit {logit:+6.2f}  "
                        f"p(fake) {event.probability:.2f}  {event.level}"
                    )

    async def close(self) -> None:
        """Nothing to flush."""

    def summary(self, path: Path, fake: bool) -> tuple[str, bool]:
        """One line for the clip, and whether the outcome is the expected one."""
        alerted = bool(self.alerts)
        verdict = f"ALERT at {self.alerts[0]:.2f} s" if alerted else "no alert"
        correct = alerted == fake
        peak = f"{max(self.logits):+.2f}" if self.logits else "n/a"
        return (
            f"{self.label:>11}: {path.name}: {len(self.logits)} windows, {verdict}, highest logit "
            f"{peak} -> {'as expected' if correct else 'NOT as expected'}",
            correct,
        )


def levels_note(detector: Detector, stride: int) -> str:
    """How logits, probabilities and levels relate under the detector's thresholds, for
    windows every ``stride`` frames."""
    policy, p = detector.policy_for(stride), detector.probability
    mapped = detector.thresholds is not None and (
        detector.thresholds.scale,
        detector.thresholds.bias,
    ) != (1.0, 0.0)
    return (
        f"levels: a face turns suspicious once {policy.escalate_windows} windows in a row "
        f"reach logit {policy.suspicious_logit:+.2f} (p(fake) {p(policy.suspicious_logit):.2f}) "
        f"and alert once they reach {policy.alert_logit:+.2f} (p(fake) "
        f"{p(policy.alert_logit):.2f}), and falls back once {policy.clear_windows} windows "
        "in a row stay below; p(fake) is "
        + ("the calibrated probability map" if mapped else "the plain sigmoid (no map calibrated)")
    )


async def _play(pipeline: Pipeline, path: Path) -> None:
    """Run the live pipeline on one file, as fast as it goes."""
    from stream.sources.files import FileSource

    pipeline.add_source(FileSource(path, path.stem))
    await pipeline.run_until_sources_end()

"""Per-person and per-manipulation results of a demo build, and their tables.

A *scored video* is one version (genuine, perturbed genuine or manipulated) of one
person's recording, with the logits of its 25-frame windows at the calibration stride and
of the paper's non-overlapping 25-frame clips. From them:

* per person: how much genuine footage, its largest window logit, and the alerts the
  calibrated policy raises on it (a genuine alert is a false alert);
* per manipulation, on the held-out people only: clip-level AUC of their genuine clips
  against their manipulated clips, and how many manipulated recordings raise an alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calibration.metrics import auc
from engines.method import FPS
from stream.alerts.policy import PolicyConfig, count_alerts

GENUINE = "genuine"


@dataclass(frozen=True, eq=False)
class ScoredVideo:
    """One version of a recording, scored: ``windows`` every stride frames, ``clips``
    every 25 frames (both in order, inside the face runs)."""

    person: str
    recording: str
    kind: str
    label: int
    frames: int
    windows: np.ndarray
    clips: np.ndarray


@dataclass(frozen=True)
class PersonResult:
    """One person's genuine footage under the calibrated policy."""

    person: str
    description: str
    role: str
    genuine_seconds: float
    genuine_windows: int
    max_genuine_logit: float
    genuine_alerts: int


@dataclass(frozen=True)
class ManipulationResult:
    """One manipulation on the held-out people."""

    kind: str
    trained_on: bool
    auc: float
    genuine_clips: int
    manipulated_clips: int
    recordings_alerted: int
    recordings: int


def person_result(
    person: str, description: str, role: str, videos: Sequence[ScoredVideo], policy: PolicyConfig
) -> PersonResult:
    """``person``'s unperturbed genuine ``videos`` (one per recording) under ``policy``."""
    genuine = [v for v in videos if v.person == person and v.kind == GENUINE]
    logits = np.concatenate([v.windows for v in genuine])
    return PersonResult(
        person=person,
        description=description,
        role=role,
        genuine_seconds=round(sum(v.frames for v in genuine) / FPS, 1),
        genuine_windows=int(logits.size),
        max_genuine_logit=round(float(logits.max()), 2),
        genuine_alerts=sum(count_alerts(v.windows, policy) for v in genuine),
    )


def manipulation_result(
    kind: str, trained_on: bool, held_out: Sequence[ScoredVideo], policy: PolicyConfig
) -> ManipulationResult:
    """``kind`` on the held-out people's ``held_out`` videos: their genuine clips against
    their ``kind`` clips, pooled over people."""
    genuine = np.concatenate([v.clips for v in held_out if v.kind == GENUINE])
    fakes = [v for v in held_out if v.kind == kind]
    manipulated = np.concatenate([v.clips for v in fakes])
    labels = np.r_[np.zeros(genuine.size), np.ones(manipulated.size)]
    return ManipulationResult(
        kind=kind,
        trained_on=trained_on,
        auc=round(auc(np.r_[genuine, manipulated], labels), 4),
        genuine_clips=int(genuine.size),
        manipulated_clips=int(manipulated.size),
        recordings_alerted=sum(count_alerts(v.windows, policy) > 0 for v in fakes),
        recordings=len(fakes),
    )


def markdown_tables(people: Sequence[dict], manipulations: Sequence[dict]) -> str:
    """The two tables of docs/demo_detector.md from a report's ``people`` and
    ``manipulations`` entries."""
    lines = [
        "| person | role | genuine footage | windows | largest window logit | alerts |",
        "|---|---|---|---|---|---|",
    ]
    for p in people:
        lines.append(
            f"| {p['person']} {p['description']} | {p['role']} | {p['genuine_seconds']:.1f} s "
            f"| {p['genuine_windows']} | {p['max_genuine_logit']:+.2f} | {p['genuine_alerts']} |"
        )
    lines += [
        "",
        "| manipulation | in training | clip AUC, held-out people | clips (genuine / manipulated) "
        "| recordings alerted |",
        "|---|---|---|---|---|",
    ]
    for m in manipulations:
        lines.append(
            f"| `{m['kind']}` | {'yes' if m['trained_on'] else '**no**'} | {m['auc']:.3f} "
            f"| {m['genuine_clips']} / {m['manipulated_clips']} "
            f"| {m['recordings_alerted']} of {m['recordings']} |"
        )
    return "\n".join(lines)

"""Per-face alert policy: window logits in, a level (CLEAR / SUSPICIOUS / ALERT) out.

A face's level changes only on *sustained* evidence, so one noisy window never flips it:

* each window's logit has a raw level: ALERT if ``logit >= alert_logit``, SUSPICIOUS if
  ``logit >= suspicious_logit``, else CLEAR;
* the level **rises** to L when the last ``escalate_windows`` raw levels are all at least L;
* the level **falls** to L when the last ``clear_windows`` raw levels are all at most L.

Rising takes precedence over falling. An alert event is due exactly when the level enters
ALERT, so a face that stays fake alerts once, and alerts again only after it has been
sustained-below-alert for ``clear_windows`` windows. The policy is pure and synchronous:
the pipeline keeps one per face and turns :class:`Decision` into JSON events.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from itertools import islice


class Level(IntEnum):
    """How worried we are about one face; ordered, and ``str(level)`` is its JSON name."""

    CLEAR = 0
    SUSPICIOUS = 1
    ALERT = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The policy's thresholds (window logits, label 1 = fake) and hysteresis (windows).

    The defaults are *uncalibrated*: suspicious at the paper's decision (logit >= 0, p >= 0.5),
    alert at p >= 0.9, over 3 windows. ``run_stream.py calibrate`` chooses values measured on
    genuine footage (see :mod:`calibration.thresholds`).
    """

    suspicious_logit: float = 0.0
    alert_logit: float = math.log(9.0)
    escalate_windows: int = 3
    clear_windows: int = 10

    def __post_init__(self) -> None:
        if not self.suspicious_logit <= self.alert_logit:
            raise ValueError(
                f"suspicious_logit ({self.suspicious_logit}) must not exceed "
                f"alert_logit ({self.alert_logit})"
            )
        if self.escalate_windows < 1 or self.clear_windows < 1:
            raise ValueError("escalate_windows and clear_windows must be at least 1")

    def raw_level(self, logit: float) -> Level:
        """The level one window's logit points to, before any hysteresis."""
        if logit >= self.alert_logit:
            return Level.ALERT
        if logit >= self.suspicious_logit:
            return Level.SUSPICIOUS
        return Level.CLEAR


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer to one window.

    Attributes:
        level: the face's level after this window.
        previous: its level before this window.
        alert: True exactly when this window moved the face into ALERT (emit an alert event).
    """

    level: Level
    previous: Level
    alert: bool

    @property
    def changed(self) -> bool:
        """Whether this window changed the level."""
        return self.level != self.previous


class AlertPolicy:
    """The state machine of one face; feed it that face's window logits in order."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        self.level = Level.CLEAR
        self._recent: deque[Level] = deque(
            maxlen=max(self.config.escalate_windows, self.config.clear_windows)
        )

    def update(self, logit: float, trusted: bool = True) -> Decision:
        """Take the next window's logit; return the new level and whether to alert now. A
        window that is not ``trusted`` (it carries a caveat: a face too small, too few
        frames, cut by the frame) counts at most as SUSPICIOUS, so it cannot raise an
        alert on its own.

        Raises:
            ValueError: ``logit`` is NaN or infinite (a broken engine, not evidence).
        """
        if not math.isfinite(logit):
            raise ValueError(f"window logit must be finite, got {logit}")
        raw = self.config.raw_level(logit)
        self._recent.append(raw if trusted else min(raw, Level.SUSPICIOUS))
        previous = self.level
        sustained = self._extreme(self.config.escalate_windows, min)
        if sustained is not None and sustained > self.level:
            self.level = sustained
        else:
            ceiling = self._extreme(self.config.clear_windows, max)
            if ceiling is not None and ceiling < self.level:
                self.level = ceiling
        return Decision(
            level=self.level,
            previous=previous,
            alert=self.level == Level.ALERT and previous != Level.ALERT,
        )

    def reset(self) -> None:
        """Forget the window history but keep the level (the face's windows were broken by
        a gap): the level then moves only on fresh sustained evidence, so a gap can neither
        clear an alert nor raise a second one. A new face gets a new policy."""
        self._recent.clear()

    def _extreme(self, count: int, pick: Callable[[Iterable[Level]], Level]) -> Level | None:
        """``pick`` (min or max) of the last ``count`` raw levels; None before ``count``."""
        if len(self._recent) < count:
            return None
        return pick(islice(reversed(self._recent), count))


def replay(logits: Iterable[float], config: PolicyConfig) -> tuple[Level, int]:
    """One face's window logits through a fresh policy: the highest level it reached (CLEAR
    for none) and how many alert events it emitted."""
    policy = AlertPolicy(config)
    decisions = [policy.update(float(logit)) for logit in logits]
    return max((d.level for d in decisions), default=Level.CLEAR), sum(d.alert for d in decisions)


def count_alerts(logits: Iterable[float], config: PolicyConfig) -> int:
    """How many alert events a fresh policy emits over one face's window logits."""
    return replay(logits, config)[1]

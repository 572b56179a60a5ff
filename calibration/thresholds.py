"""Thresholds users can trust: chosen on genuine footage, saved next to the weights.

:func:`choose_policy` picks the alert policy's thresholds and hysteresis from the window
logits of genuine faces so that replaying those logits through the real
:class:`~stream.alerts.policy.AlertPolicy` meets a false-alert target (alerts per face-hour).
:func:`fit_platt` maps logits to probabilities when labelled fakes are available.
:class:`Thresholds` is what ``run_stream.py calibrate`` writes as
``<weights without suffix>.thresholds.json`` and what ``scan``, ``run`` and ``serve`` load
with :func:`load_thresholds_for`. The rules and the JSON schema are in docs/calibration.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from calibration.metrics import Reliability, poisson_upper, reliability
from engines.digest import file_sha256
from engines.method import CLIP_FRAMES, FPS, sigmoid
from engines.weights import thresholds_path_for
from errors import CheckpointError
from stream.alerts.policy import AlertPolicy, Level, PolicyConfig, count_alerts

FORMAT = "lipforensics-thresholds"
VERSION = 1
#: frames per window of the paper's protocol.
WINDOW = CLIP_FRAMES
#: share of genuine windows that may reach SUSPICIOUS on their own (before hysteresis).
SUSPICIOUS_QUANTILE = 0.999
#: the smallest margin (logits) added above the largest genuine logit by the conservative rule.
MIN_MARGIN = 0.5


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the thresholds rest on; everything here is measured, nothing is assumed.

    Attributes:
        rule: ``"empirical"`` (enough genuine face-hours to bound the false-alert rate) or
            ``"conservative"`` (too few: alert threshold = largest genuine logit + margin).
        target_false_alerts_per_hour: the false-alert target per face-hour.
        genuine_faces: genuine face tracks (videos) used.
        genuine_windows: their windows.
        face_hours: genuine face-time covered, in hours.
        false_alerts: alerts raised when replaying the genuine logits through the policy.
        false_alerts_per_hour_upper95: 95% upper bound on the false-alert rate from
            ``false_alerts`` in ``face_hours`` (Poisson); below the target only when the
            data are enough to prove it.
        suspicious_share: share of genuine windows whose level was SUSPICIOUS or higher.
        max_genuine_logit: the largest genuine window logit.
        margin: logits added above it (conservative rule; 0 for the empirical rule).
        fake_faces, fake_windows: labelled fakes used for the probability map (0 without).
        fake_faces_alerted: fake faces on which the policy raised at least one alert.
        ece_sigmoid, ece_calibrated: expected calibration error of ``sigmoid(logit)`` and of
            the fitted map on the windows it was fitted on (None without fakes).
    """

    rule: str
    target_false_alerts_per_hour: float
    genuine_faces: int
    genuine_windows: int
    face_hours: float
    false_alerts: int
    false_alerts_per_hour_upper95: float
    suspicious_share: float
    max_genuine_logit: float
    margin: float
    fake_faces: int = 0
    fake_windows: int = 0
    fake_faces_alerted: int = 0
    ece_sigmoid: float | None = None
    ece_calibrated: float | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A calibrated alert policy and probability map for one set of weights.

    Attributes:
        policy: thresholds (window logits) and hysteresis (windows at ``stride``).
        stride: frames between windows the policy was calibrated at.
        scale, bias: probability map ``p = sigmoid(scale * logit + bias)``; (1, 0) = plain
            sigmoid, used until fakes are given.
        weights_sha256: SHA-256 of the weight file it was calibrated for.
        evidence: what the choice rests on.
        created: ISO 8601 UTC time of calibration.
        landmarks: the landmark network whose crops it was calibrated on (``"full"`` or
            ``"lite"``, :mod:`stream.faces.networks`; files without it: ``"full"``).
        path: where it was loaded from (None when not saved yet).
    """

    policy: PolicyConfig
    stride: int
    scale: float
    bias: float
    weights_sha256: str
    evidence: Evidence
    created: str = ""
    landmarks: str = "full"
    path: Path | None = None

    def probability(self, logit: float) -> float:
        """Calibrated probability that the window is fake."""
        return float(sigmoid(self.scale * logit + self.bias))

    def policy_for(self, stride: int) -> PolicyConfig:
        """The policy for windows every ``stride`` frames: the hysteresis keeps its duration
        in seconds (the false-alert evidence was measured at :attr:`stride`)."""
        if stride == self.stride:
            return self.policy
        return replace(
            self.policy,
            escalate_windows=_rescale(self.policy.escalate_windows, self.stride, stride),
            clear_windows=_rescale(self.policy.clear_windows, self.stride, stride),
        )

    def describe(self) -> str:
        """One line for the user: where the thresholds come from and what they are."""
        p, e = self.policy, self.evidence
        seconds = (p.escalate_windows - 1) * self.stride / FPS + WINDOW / FPS
        return (
            f"thresholds {self.path or '(unsaved)'}: alert at window logit >= "
            f"{p.alert_logit:.3f} held {p.escalate_windows} windows ({seconds:.1f} s of video), "
            f"suspicious >= {p.suspicious_logit:.3f}, clear after {p.clear_windows} windows "
            f"(stride {self.stride}); {e.rule} rule, "
            f"{'replayed' if e.rule == 'cross-fold' else 'set'} on {e.face_hours:.3f} "
            "genuine face-hours"
        )

    def to_json(self) -> dict[str, object]:
        """The JSON document (schema in docs/calibration.md)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "weights_sha256": self.weights_sha256,
            "created": self.created,
            "landmarks": self.landmarks,
            "stride": self.stride,
            "policy": asdict(self.policy),
            "probability": {"scale": self.scale, "bias": self.bias},
            "evidence": asdict(self.evidence),
        }

    @classmethod
    def from_json(cls, document: dict, path: Path | None = None) -> Thresholds:
        """Parse :meth:`to_json`'s document; ``ValueError``/``KeyError``/``TypeError`` if bad."""
        if document.get("format") != FORMAT or document.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} version {VERSION} document")
        probability = document["probability"]
        return cls(
            policy=PolicyConfig(**document["policy"]),
            stride=int(document["stride"]),
            scale=float(probability["scale"]),
            bias=float(probability["bias"]),
            weights_sha256=str(document["weights_sha256"]),
            evidence=Evidence(**document["evidence"]),
            created=str(document.get("created", "")),
            landmarks=str(document.get("landmarks", "full")),
            path=path,
        )


def describe_thresholds(thresholds: Thresholds | None) -> str:
    """The line ``scan``, ``run`` and ``serve`` print: which thresholds they use."""
    if thresholds is not None:
        return thresholds.describe()
    default = PolicyConfig()
    return (
        "thresholds: none calibrated for these weights (run 'run_stream.py calibrate'); "
        f"uncalibrated defaults: alert at window logit >= {default.alert_logit:.3f} held "
        f"{default.escalate_windows} windows, suspicious >= {default.suspicious_logit:.3f}"
    )


def _rescale(windows: int, old_stride: int, new_stride: int) -> int:
    return max(1, round(windows * old_stride / new_stride))


def save_thresholds(thresholds: Thresholds, weights_path: str | Path) -> Path:
    """Write ``thresholds`` next to ``weights_path``; return the file written."""
    path = thresholds_path_for(weights_path)
    path.write_text(json.dumps(thresholds.to_json(), indent=2) + "\n")
    return path


def load_thresholds_for(weights_path: str | Path) -> Thresholds | None:
    """The calibrated thresholds saved next to ``weights_path``, or None if there are none.

    Raises:
        CheckpointError: the file is unreadable, or was calibrated for other weights (stale:
            its SHA-256 differs), with the fix in the message.
    """
    path = thresholds_path_for(weights_path)
    if not path.is_file():
        return None
    if not Path(weights_path).is_file():
        raise CheckpointError(f"weight file not found: {weights_path}")
    return load_thresholds(path, file_sha256(weights_path), str(weights_path))


def load_thresholds(path: str | Path, weights_sha256: str, weights: str) -> Thresholds:
    """The thresholds file ``path``, which must be calibrated for the weights whose SHA-256
    is ``weights_sha256`` (``weights`` names them in the message).

    Raises:
        CheckpointError: the file is missing or unreadable, or was calibrated for other
            weights (stale), with the fix in the message.
    """
    path = Path(path)
    try:
        thresholds = Thresholds.from_json(json.loads(path.read_text()), path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(
            f"cannot read thresholds file {path} ({error}); re-run 'run_stream.py calibrate' "
            "or delete it"
        ) from None
    if thresholds.weights_sha256 != weights_sha256:
        raise CheckpointError(
            f"thresholds file {path} was calibrated for other weights than {weights} "
            "(SHA-256 differs); re-run 'run_stream.py calibrate' or delete it"
        )
    return thresholds


def face_hours(sequences: Sequence[Sequence[float]], stride: int) -> float:
    """Face-time covered by window-logit sequences (windows of 25 frames every ``stride``)."""
    frames = sum((len(s) - 1) * stride + WINDOW for s in sequences if len(s))
    return frames / FPS / 3600


def hysteresis_windows(stride: int, escalate_s: float, clear_s: float) -> tuple[int, int]:
    """(escalate, clear) window counts at ``stride``: ``escalate_s`` seconds' worth of
    windows to escalate, ``clear_s`` seconds' worth to clear (at least one each)."""
    return (
        max(1, math.ceil(escalate_s * FPS / stride - 1e-9)),
        max(1, math.ceil(clear_s * FPS / stride - 1e-9)),
    )


def choose_policy(
    genuine: Sequence[Sequence[float]],
    *,
    stride: int,
    target_per_hour: float = 1.0,
    escalate_s: float = 0.6,
    clear_s: float = 2.0,
    margin: float | None = None,
) -> tuple[PolicyConfig, Evidence]:
    """Choose the policy from genuine window logits (one sequence per face track).

    Hysteresis: ``hysteresis_windows(stride, escalate_s, clear_s)``. Thresholds:

    * **empirical** rule, when the genuine face-hours are enough to show the target even with
      zero alerts (3.0 / target hours at 95%): the lowest alert threshold whose replayed
      false alerts keep the 95% Poisson upper bound on the rate at or under the target;
    * **conservative** rule otherwise: alert threshold = largest genuine window logit +
      ``margin`` (default: one standard deviation of the genuine logits, at least 0.5), so
      no genuine window even reaches ALERT on its own.

    SUSPICIOUS starts at the genuine logits' 99.9th percentile (capped at the alert
    threshold). The returned evidence is measured by replaying ``genuine`` through
    :class:`AlertPolicy`.
    """
    sequences = [np.asarray(s, dtype=np.float64) for s in genuine if len(s)]
    if not sequences:
        raise ValueError("calibration needs at least one genuine window logit")
    if target_per_hour <= 0:
        raise ValueError("the false-alert target must be positive")
    logits = np.concatenate(sequences)
    hours = face_hours(sequences, stride)
    escalate, clear = hysteresis_windows(stride, escalate_s, clear_s)
    suspicious = float(np.quantile(logits, SUSPICIOUS_QUANTILE, method="higher"))
    largest = float(logits.max())

    def config(alert: float) -> PolicyConfig:
        return PolicyConfig(min(suspicious, alert), alert, escalate, clear)

    def meets_target(alert: float) -> bool:
        alerts = sum(count_alerts(s, config(alert)) for s in sequences)
        return poisson_upper(alerts) / hours <= target_per_hour

    if poisson_upper(0) / hours <= target_per_hour:
        rule, used_margin = "empirical", 0.0
        alert = _lowest_passing(np.unique(logits), meets_target)
    else:
        rule = "conservative"
        used_margin = margin if margin is not None else max(MIN_MARGIN, float(logits.std()))
        alert = largest + used_margin
    chosen = config(alert)
    return chosen, genuine_evidence(sequences, chosen, rule, target_per_hour, hours, used_margin)


def _lowest_passing(candidates: np.ndarray, passes: Callable[[float], bool]) -> float:
    """The lowest threshold just above a candidate logit that ``passes``; binary search (the
    false-alert count falls as the threshold rises), then stepped up until it really passes."""
    thresholds = np.nextafter(candidates, np.inf)
    low, high = 0, thresholds.size - 1
    while low < high:
        middle = (low + high) // 2
        if passes(float(thresholds[middle])):
            high = middle
        else:
            low = middle + 1
    for threshold in thresholds[low:]:
        if passes(float(threshold)):
            return float(threshold)
    return float(thresholds[-1])


def genuine_evidence(
    sequences: Sequence[np.ndarray],
    config: PolicyConfig,
    rule: str,
    target: float,
    hours: float,
    margin: float,
) -> Evidence:
    """What ``config`` does on genuine window-logit ``sequences`` (``hours`` of face-time):
    replayed through :class:`AlertPolicy`, the alerts, their 95% upper rate and the share of
    windows at SUSPICIOUS or above, with the largest genuine logit; ``rule``, ``target`` and
    ``margin`` are recorded as given."""
    alerts, raised, windows = 0, 0, 0
    for sequence in sequences:
        policy = AlertPolicy(config)
        for logit in sequence:
            decision = policy.update(float(logit))
            alerts += decision.alert
            raised += decision.level >= Level.SUSPICIOUS
            windows += 1
    return Evidence(
        rule=rule,
        target_false_alerts_per_hour=target,
        genuine_faces=len(sequences),
        genuine_windows=windows,
        face_hours=hours,
        false_alerts=alerts,
        false_alerts_per_hour_upper95=poisson_upper(alerts) / hours,
        suspicious_share=raised / windows,
        max_genuine_logit=float(max(s.max() for s in sequences)),
        margin=margin,
    )


def fit_platt(
    logits: np.ndarray,
    labels: np.ndarray,
    iterations: int = 100,
    weights: np.ndarray | None = None,
) -> tuple[float, float]:
    """Fit ``p = sigmoid(scale * logit + bias)`` by maximum likelihood with Platt's targets
    (``(N+ + 1) / (N+ + 2)`` for fakes, ``1 / (N- + 2)`` for reals), which keep the fit
    finite even when the classes are perfectly separated. ``weights`` (one per window,
    default 1) weigh the likelihood, e.g. to give both classes the same total weight.
    Returns (scale, bias)."""
    x = np.asarray(logits, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    positives, negatives = float(w[y].sum()), float(w[~y].sum())
    if not (y.any() and (~y).any()):
        raise ValueError("a probability map needs both genuine and fake windows")
    target = np.where(y, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    design = np.stack([x, np.ones_like(x)], axis=1)
    params = np.zeros(2)

    def loss(p: np.ndarray) -> float:
        z = design @ p
        return float(np.sum(w * (np.logaddexp(0.0, z) - target * z)))

    for _ in range(iterations):
        prob = sigmoid(design @ params)
        gradient = design.T @ (w * (prob - target))
        hessian = design.T @ (design * (w * prob * (1 - prob))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        while loss(params - size * step) > loss(params) and size > 1e-6:
            size /= 2
        params = params - size * step
        if np.max(np.abs(size * step)) < 1e-10:
            break
    return float(params[0]), float(params[1])


@dataclass(frozen=True, slots=True)
class ProbabilityFit:
    """A fitted probability map and how well calibrated it is on the windows it saw."""

    scale: float
    bias: float
    before: Reliability
    after: Reliability


def fit_probability(
    genuine: Sequence[Sequence[float]], fake: Sequence[Sequence[float]], bins: int = 10
) -> ProbabilityFit:
    """Fit the logit -> probability map on genuine (0) and fake (1) window logits and
    measure the calibration error of plain ``sigmoid(logit)`` and of the fitted map."""
    real = np.concatenate([np.asarray(s, dtype=np.float64) for s in genuine if len(s)])
    fakes = np.concatenate([np.asarray(s, dtype=np.float64) for s in fake if len(s)])
    logits = np.r_[real, fakes]
    labels = np.r_[np.zeros(real.size, bool), np.ones(fakes.size, bool)]
    scale, bias = fit_platt(logits, labels)
    return ProbabilityFit(
        scale,
        bias,
        before=reliability(sigmoid(logits), labels, bins),
        after=reliability(sigmoid(scale * logits + bias), labels, bins),
    )


def readable(policy: PolicyConfig, fit: ProbabilityFit) -> PolicyConfig:
    """``policy`` with SUSPICIOUS starting where the fitted map reads 0.5, if that is
    lower, so that a window shown as clear never has a fake probability of 0.5 or more
    (a map that rises with the logit only; the alert threshold is kept)."""
    if fit.scale <= 0:
        return policy
    even_odds = -fit.bias / fit.scale
    return replace(policy, suspicious_logit=min(policy.suspicious_logit, even_odds))


def with_map(
    policy: PolicyConfig,
    evidence: Evidence,
    genuine: Sequence[Sequence[float]],
    fake: Sequence[Sequence[float]],
    fit: ProbabilityFit,
) -> tuple[PolicyConfig, Evidence]:
    """``policy`` and ``evidence`` once the map ``fit`` is read into them: SUSPICIOUS from
    where it reads 0.5 (:func:`readable`), the share of the ``genuine`` window logits then
    suspicious, and the ``fake`` ones' evidence (:func:`fake_evidence`). The alert threshold,
    so every other genuine figure, stays as it was."""
    policy = readable(policy, fit)
    sequences = [np.asarray(s, dtype=np.float64) for s in genuine if len(s)]
    replayed = genuine_evidence(
        sequences,
        policy,
        evidence.rule,
        evidence.target_false_alerts_per_hour,
        evidence.face_hours,
        evidence.margin,
    )
    evidence = replace(evidence, suspicious_share=replayed.suspicious_share)
    return policy, fake_evidence(evidence, policy, fake, fit)


def fake_evidence(
    evidence: Evidence, policy: PolicyConfig, fake: Sequence[Sequence[float]], fit: ProbabilityFit
) -> Evidence:
    """``evidence`` completed with the labelled fakes: how many the policy alerts on, and
    the calibration error before and after the probability map."""
    return replace(
        evidence,
        fake_faces=sum(1 for s in fake if len(s)),
        fake_windows=sum(len(s) for s in fake),
        fake_faces_alerted=sum(count_alerts(s, policy) > 0 for s in fake),
        ece_sigmoid=fit.before.ece,
        ece_calibrated=fit.after.ece,
    )


def calibrate(
    genuine: Sequence[Sequence[float]],
    fake: Sequence[Sequence[float]],
    *,
    stride: int,
    weights_sha256: str,
    target_per_hour: float = 1.0,
    landmarks: str = "full",
) -> tuple[Thresholds, ProbabilityFit | None]:
    """The whole calibration from window logits (one sequence per face run): the policy
    from ``genuine`` (:func:`choose_policy`), and the probability map when ``fake`` holds any
    window (:func:`fit_probability`, SUSPICIOUS then starting no higher than where the map
    reads 0.5: :func:`readable`; else the plain sigmoid and no fit); ``landmarks`` names
    the landmark network the windows' crops came from."""
    policy, evidence = choose_policy(genuine, stride=stride, target_per_hour=target_per_hour)
    fit = None
    if any(len(s) for s in fake):
        fit = fit_probability(genuine, fake)
        policy, evidence = with_map(policy, evidence, genuine, fake, fit)
    thresholds = Thresholds(
        policy=policy,
        stride=stride,
        scale=fit.scale if fit else 1.0,
        bias=fit.bias if fit else 0.0,
        weights_sha256=weights_sha256,
        evidence=evidence,
        created=now_iso(),
        landmarks=landmarks,
    )
    return thresholds, fit


def now_iso() -> str:
    """The current UTC time, ISO 8601, seconds precision."""
    return datetime.now(UTC).isoformat(timespec="seconds")

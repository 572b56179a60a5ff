"""``scan --report``: one self-contained HTML file that anyone can open and read.

It holds the verdict and fake probability, a timeline of the clip probabilities with the
suspicious and alert thresholds, the most suspicious clip's 25 mouth crops as a strip, a
few of its frames with the mouth boxed, and the settings (weights sha256, backend, stride,
thresholds file, versions). Everything is inline (CSS, SVG, images as ``data:`` URIs):
the file makes no request to anywhere.
"""

from __future__ import annotations

import base64
import html
import math
import platform
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engines.digest import file_sha256
from errors import LipForensicsError
from stream.alerts.policy import PolicyConfig
from stream.images import crop_strip, png_bytes
from stream.scan.evidence import ClipEvidence, FrameWithMouth, clip_evidence
from stream.scan.scanner import ScanReport

#: packages whose versions the report lists.
PACKAGES = ("lipforensics-live", "torch", "onnxruntime", "numpy", "av", "mediapipe")
#: widest a shown video frame is (pixels).
FRAME_WIDTH = 320
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; max-width: 60rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; }
.verdict { font-size: 1.2rem; padding: 0.6rem 1rem; border-radius: 6px; color: #fff; }
.level-clear { background: #1d6b2f; } .level-suspicious { background: #9a6700; }
.level-alert { background: #b3261e; }
.warning { border: 2px solid #b3261e; padding: 0.6rem 1rem; background: #fdecea; }
svg { background: #f6f6f6; } .clip { fill: #1f4e99; } .line { fill: none; stroke: #1f4e99; }
.suspicious { stroke: #9a6700; stroke-dasharray: 5 3; }
.alert { stroke: #b3261e; stroke-dasharray: 5 3; } .half { stroke: #bbb; }
.strip { image-rendering: pixelated; width: 100%; }
.frames img { margin-right: 0.5rem; }
table { border-collapse: collapse; } td, th { text-align: left; padding: 0.2rem 0.8rem 0.2rem 0; }
"""


def write_scan_report(
    target: Path,
    report: ScanReport,
    *,
    probability: Callable[[float], float],
    policy: PolicyConfig,
    warning: str | None = None,
) -> None:
    """Read the most suspicious clip's evidence again and write the report to ``target``.

    ``probability`` maps a logit to a fake probability and ``policy`` holds the
    thresholds (the detector's); ``warning`` is shown at the top (the demo detector's).

    Raises:
        LipForensicsError: the report cannot be written.
        MediaError: the input cannot be read again.
    """
    worst = int(np.argmax(report.clip_logits))
    evidence = clip_evidence(Path(report.input), report.clip_starts[worst])
    page = render(report, evidence, probability=probability, policy=policy, warning=warning)
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as error:
        raise LipForensicsError(f"cannot write the report: {error}") from None


def render(
    report: ScanReport,
    evidence: ClipEvidence,
    *,
    probability: Callable[[float], float],
    policy: PolicyConfig,
    warning: str | None = None,
) -> str:
    """The report's HTML (see the module)."""
    probabilities = [float(probability(x)) for x in report.clip_logits]
    thresholds = {
        "suspicious": float(probability(policy.suspicious_logit)),
        "alert": float(probability(policy.alert_logit)),
    }
    name = html.escape(Path(report.input).name)
    level = html.escape(report.level)
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>LipForensics scan: {name}</title><style>{STYLE}</style></head><body>",
        f"<h1>LipForensics scan of {name}</h1>",
    ]
    if warning:
        parts.append(f"<p class='warning'>{html.escape(warning)}</p>")
    parts += [
        f"<p class='verdict level-{level}'>Highest level of the live alert policy: "
        f"<b>{level}</b> ({report.alerts} alert(s); "
        f"{'calibrated' if report.thresholds else 'uncalibrated'} thresholds, a level needs "
        f"{report.escalate_windows} clips in a row past its threshold); "
        + (
            f"fake probability of the video <b>{report.fake_probability:.3f}</b> (calibrated map"
            if report.probability_map
            else f"sigmoid of the video logit <b>{report.fake_probability:.3f}</b> (not a "
            "calibrated probability: no map fitted on fakes"
        )
        + f", video logit {report.video_logit:+.3f})</p>",
        f"<p>{report.clips} clips of {report.clip_frames} frames, every {report.stride} "
        f"frames; {report.frames_with_face} of {report.frames} frames at 25 fps show a face."
        "</p>",
        "<h2>Clip probabilities</h2><p>One point per clip, on a log-odds scale; dashed: the "
        "suspicious and alert thresholds.</p>",
        timeline(report.clip_starts, probabilities, thresholds),
        f"<h2>The most suspicious clip: from {evidence.start:.2f} s "
        f"(probability {max(probabilities):.3f})</h2>",
        "<p>The 25 mouth crops the network saw, left to right:</p>",
        f"<img class='strip' alt='mouth crops' src='{png_uri(crop_strip(evidence.crops))}'>",
    ]
    if evidence.frames:
        parts.append("<p>Frames of that clip, the mouth boxed:</p><div class='frames'>")
        parts += [framed(frame) for frame in evidence.frames]
        parts.append("</div>")
    if report.faces:
        parts += [
            f"<h2>Every face ({len(report.faces)})</h2><p>The file shows several people: each "
            "face's own clips (the sections above are the main face's). Where: the face's box "
            "in its first scored frame, as shares of the frame.</p>",
            faces_table(report.faces, probability),
        ]
    parts += ["<h2>Settings</h2>", settings_table(report), "</body></html>"]
    return "\n".join(parts)


def faces_table(faces: list[dict], probability: Callable[[float], float]) -> str:
    """One row per face: its id, where it was, its clips, video logit and level."""
    rows = [
        "<tr><th>face</th><th>where (x0, y0, x1, y1)</th><th>clips</th>"
        "<th>video logit</th><th>probability</th><th>level</th><th>alerts</th></tr>"
    ]
    for face in faces:
        where = ", ".join(f"{v:.2f}" for v in face["box"])
        rows.append(
            f"<tr><td>{int(face['face'])}</td><td>{html.escape(where)}</td>"
            f"<td>{len(face['clip_logits'])}</td><td>{float(face['video_logit']):+.3f}</td>"
            f"<td>{float(probability(float(face['video_logit']))):.3f}</td>"
            f"<td>{html.escape(str(face['level']))}</td><td>{int(face['alerts'])}</td></tr>"
        )
    return f"<table>{''.join(rows)}</table>"


def log_odds(p: float) -> float:
    """The log-odds of probability ``p`` (clamped away from 0 and 1)."""
    q = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(q / (1 - q))


def timeline(starts: list[float], probabilities: list[float], thresholds: dict) -> str:
    """An inline SVG: one point per clip (time, probability) and the threshold lines, the
    probabilities on a log-odds scale (calibrated thresholds are often close to 1)."""
    width, height, pad = 800, 200, 24
    end = max(starts, default=0.0) + 1.0
    levels = [log_odds(p) for p in [*probabilities, *thresholds.values()]]
    low, high = min(-4.0, *levels) - 1, max(4.0, *levels) + 1

    def x(t: float) -> float:
        return pad + (width - 2 * pad) * t / end

    def y(p: float) -> float:
        return height - pad - (height - 2 * pad) * (log_odds(p) - low) / (high - low)

    rows = [f"<svg viewBox='0 0 {width} {height}' width='100%' role='img'>"]
    for name, value in thresholds.items():
        rows += [
            f"<line class='{name}' x1='{pad}' x2='{width - pad}' y1='{y(value):.1f}' "
            f"y2='{y(value):.1f}'><title>{name} threshold {value:.6f}</title></line>",
            f"<text x='{width - pad}' y='{y(value) - 3:.1f}' font-size='11' "
            f"text-anchor='end'>{name}</text>",
        ]
    points = [(x(t + 0.5), y(p)) for t, p in zip(starts, probabilities, strict=True)]
    path = " ".join(f"{a:.1f},{b:.1f}" for a, b in points)
    rows.append(f"<polyline class='line' points='{path}'/>")
    rows += [
        f"<circle class='clip' cx='{a:.1f}' cy='{b:.1f}' r='3'><title>{t:.2f} s: {p:.6f}"
        "</title></circle>"
        for (a, b), t, p in zip(points, starts, probabilities, strict=True)
    ]
    rows += [
        f"<text x='2' y='{y(0.5) - 3:.0f}' font-size='11'>p 0.5</text>",
        f"<line class='half' x1='{pad}' x2='{width - pad}' y1='{y(0.5):.1f}' y2='{y(0.5):.1f}'/>",
        f"<text x='{width - pad}' y='{height - 6}' font-size='11' text-anchor='end'>"
        f"{end:.0f} s</text>",
        "</svg>",
    ]
    return "\n".join(rows)


def framed(frame: FrameWithMouth) -> str:
    """One frame as an inline image, the mouth boxed in red, at most FRAME_WIDTH wide."""
    image = Image.fromarray(frame.image)
    ImageDraw.Draw(image).rectangle(frame.box, outline=(230, 30, 30), width=3)
    if image.width > FRAME_WIDTH:
        image = image.resize((FRAME_WIDTH, round(image.height * FRAME_WIDTH / image.width)))
    return f"<img alt='frame at {frame.pts:.2f} s' src='{png_uri(np.asarray(image))}'>"


def png_uri(pixels: np.ndarray) -> str:
    """``pixels`` (uint8, grayscale or RGB) as a ``data:image/png;base64`` URI."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def settings_table(report: ScanReport) -> str:
    """The settings and versions behind the result, as a table."""
    rows = [
        ("input", report.input),
        ("weights", report.weights),
        ("weights sha256", file_sha256(report.weights) if Path(report.weights).is_file() else "-"),
        ("checkpoint layout", report.checkpoint_layout),
        ("backend", report.backend),
        ("stride", str(report.stride)),
        ("thresholds", report.thresholds or "none (uncalibrated defaults)"),
        ("python", platform.python_version()),
        *((package, version) for package, version in versions(PACKAGES)),
        *(("warning", warning) for warning in report.warnings),
    ]
    cells = "".join(
        f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>" for key, value in rows
    )
    return f"<table>{cells}</table>"


def versions(packages: Iterable[str]) -> list[tuple[str, str]]:
    """``(package, version)`` of each installed package (``not installed`` otherwise)."""
    found = []
    for package in packages:
        try:
            found.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            found.append((package, "not installed"))
    return found

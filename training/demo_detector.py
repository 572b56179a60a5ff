"""Build the demo detector from the bundled genuine clips of several people, in one call.

**A demo, not a deepfake detector.** It is trained on synthetic mouth manipulations of a
few people's genuine footage and knows nothing about real deepfakes; real use takes the
authors' ``lipforensics_ff.pth``.

Who does what is :mod:`training.demo_people`: training people, a calibration person and
held-out people. The steps (:func:`build_demo`), each a real part of the product:

1. Every recording's stretch at 25 fps, its landmarks and mouth crops through the real
   crop pipeline (MediaPipe).
2. Its versions: synthetic manipulations (:mod:`training.manipulations`) in video-frame
   space and, for the calibration person, mildly perturbed genuine versions, written as
   H.264 videos, and their mouth crops through the same pipeline.
3. The network's narrow frame encoder, from scratch (:mod:`training.demo_encoder`), on
   the training people.
4. The paper's recipe on top (:mod:`training.features`, :mod:`training.finetune`):
   encoder frozen, frame features cached, the MS-TCN head trained on the training people's
   25-frame clips, its epoch chosen on the calibration person.
5. Thresholds from the calibration person's genuine footage, the probability map from it
   and their manipulations (:mod:`calibration.thresholds`), saved next to the weights.
6. Results per person and, on the held-out people, per manipulation, including the types
   never used in training (:data:`HELD_OUT_KINDS`); they go into a JSON report.
7. The two demo clips the ``demo`` command plays (:data:`DEMO_SOURCE`).
"""

from __future__ import annotations

import json
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from engines.clips import clip_starts
from engines.method import CLIP_FRAMES, FPS
from engines.model import LipForensics, ModelConfig
from engines.weights import DEMO
from training.demo_encoder import Crops, EncoderConfig, pretrain_encoder
from training.demo_people import CALIBRATE, HELD_OUT, PEOPLE, TRAIN, Person, Recording, people
from training.demo_results import (
    GENUINE,
    ScoredVideo,
    manipulation_result,
    markdown_tables,
    person_result,
)
from training.features import clip_features, encode_video
from training.finetune import FinetuneConfig, LabelledVideo, predict, train_head
from training.manipulations import Footage, manipulate, write_video

ROOT = Path(__file__).resolve().parent.parent
#: manipulations used in training (with ``flicker`` held out too, its held-out AUC was 0.64:
#: see docs/demo_detector.md)
TRAIN_KINDS = ("freeze", "shift", "stutter", "flicker")
#: manipulations never used in training or calibration, only in the held-out check
HELD_OUT_KINDS = ("swap",)
#: whose mouth ``swap`` pastes into the held-out people (a training person)
SWAP_DONOR = "P2"
#: mild, real-world variations of the calibration person's genuine footage
#: (:mod:`training.perturbations` at severity 1: what another camera, codec or room does to
#: genuine video) whose windows the thresholds are calibrated on too
CALIBRATION_PERTURBATIONS = ("blur", "noise", "compression", "contrast")
#: the shipped files
DEMO_DIR = Path(__file__).resolve().parent / "demo"
#: the demo detector (its record: :data:`engines.weights.DEMO`), its thresholds and the
#: report of the build that made it
WEIGHTS = DEMO.path
REPORT = DEMO_DIR / "demo_lipforensics.report.json"
DEMO_GENUINE = DEMO_DIR / "genuine.mp4"
DEMO_MANIPULATED = DEMO_DIR / "manipulated.mp4"
#: what the demo clips show: 8 s of P1's other recording (never trained or calibrated on),
#: genuine and with the ``swap`` of P1's training recording's lips
DEMO_SOURCE = Recording("cap13_edit2.mp4", 250, 200)
DEMO_DONOR = "P1"
#: the paper's architecture at an eighth of its widths (about 0.57 M parameters, 2.3 MB)
DEMO_CONFIG = ModelConfig(frontend_channels=8, trunk_widths=(8, 16, 32, 64), tcn_hidden=32)
#: the held-out bar: clip-level AUC of every held-out manipulation on the held-out people
MIN_AUC = 0.9
#: window stride the thresholds are calibrated at (the live pipeline's default)
STRIDE = 5
#: the statement everything that uses the demo detector prints
DISCLAIMER = DEMO.disclaimer

if TYPE_CHECKING:
    from stream.alerts.policy import PolicyConfig

Log = Callable[[str], None]


@dataclass(frozen=True)
class Version:
    """One version of a person's recording: ``kind`` is ``genuine``, a perturbation of
    the genuine footage (label 0) or a manipulation (label 1)."""

    person: Person
    recording: Recording
    kind: str
    label: int

    @property
    def name(self) -> str:
        """A unique name for files and logs."""
        return f"{self.person.key}_{self.recording.key}_{self.kind}"

    def seed(self, build_seed: int) -> int:
        """This version's own seed: fixed by its name and the build's seed, so a version
        comes out the same whichever other versions the build makes."""
        return build_seed * 1000 + zlib.crc32(self.name.encode()) % 1000


def versions_of(person: Person) -> list[Version]:
    """Every version the build makes of ``person``'s recordings, by role."""
    fakes = TRAIN_KINDS + (HELD_OUT_KINDS if person.role == HELD_OUT else ())
    genuine = (GENUINE,) + (CALIBRATION_PERTURBATIONS if person.role == CALIBRATE else ())
    return [
        Version(person, recording, kind, label)
        for recording in person.recordings
        for kinds, label in ((genuine, 0), (fakes, 1))
        for kind in kinds
    ]


# --- data ---------------------------------------------------------------------------------


def recording_video(recording: Recording, out: Path) -> Path:
    """Write ``recording``'s stretch as a 25 fps H.264 video (skipped if it exists), the
    way the manipulated versions are written too."""
    from stream.pacing.clock import resample
    from stream.sources.video_file import VideoFile

    if not out.exists():
        last = None if recording.frames is None else recording.first + recording.frames
        with VideoFile(recording.path) as video:
            frames = [tick.item for tick in resample(video.frames())][recording.first : last]
        _write(out, lambda: np.stack(frames))
    return out


def video_crops(path: Path, label: int) -> tuple[Crops, np.ndarray]:
    """Mouth crops of a video through the real pipeline and each 25 fps frame's landmarks
    (frames without a face take those of the nearest frame with one), cached beside it."""
    cache = path.with_suffix(".npz")
    if not cache.exists():
        from stream.faces.reader import extract_mouth_crops

        mouths = extract_mouth_crops(path)
        found = np.rint(mouths.pts * FPS).astype(int)
        nearest = np.abs(np.arange(mouths.frames)[:, None] - found[None]).argmin(axis=1)
        partial = cache.with_name(cache.stem + ".partial.npz")
        np.savez(
            partial,
            crops=mouths.crops,
            runs=np.asarray(mouths.runs).reshape(-1, 2),
            landmarks=mouths.landmarks[nearest],
        )
        partial.replace(cache)
    with np.load(cache) as data:
        runs = tuple((int(a), int(b)) for a, b in data["runs"])
        return Crops(path.stem, data["crops"], runs, label), data["landmarks"]


def read_footage(path: Path, landmarks: np.ndarray) -> Footage:
    """The video's frames with their landmarks."""
    from stream.sources.video_file import VideoFile

    with VideoFile(path) as video:
        frames = np.stack([rgb for _pts, rgb in video.frames()])
    return Footage(frames[: len(landmarks)], landmarks[: len(frames)])


def version_video(version: Version, footage: Footage, donor: Footage, out: Path, seed: int) -> Path:
    """Write a perturbed or manipulated version of ``footage`` (skipped if it exists)."""
    from training.perturbations import perturb

    if version.label == 0:
        _write(out, lambda: np.stack(list(perturb(footage.frames, version.kind, 1, seed=seed))))
    else:
        _write(out, lambda: manipulate(footage, version.kind, seed=seed, donor=donor))
    return out


def _write(out: Path, frames: Callable[[], np.ndarray]) -> None:
    """Write ``frames()`` as ``out`` through a partial file, unless ``out`` exists."""
    if not out.exists():
        partial = out.with_name(out.stem + ".partial.mp4")
        write_video(partial, frames())
        partial.replace(out)


# --- scoring ------------------------------------------------------------------------------


def labelled_features(encoder: torch.nn.Module, video: Crops) -> LabelledVideo:
    """The video's cached-feature form for the head (all five variants per frame)."""
    features = encode_video(encoder, video.crops, video.runs)
    return LabelledVideo(video.name, features, video.runs, video.label)


def window_logits(model: LipForensics, video: LabelledVideo, stride: int) -> np.ndarray:
    """Exact logits of the 25-frame windows every ``stride`` frames inside each run, in
    order (the sequence the live pipeline's alert policy would see)."""
    starts = clip_starts(video.runs, stride)
    if not starts:
        return np.zeros(0, np.float32)
    clips = np.stack([clip_features(video.features, s) for s in starts]).astype(np.float32)
    return predict(model.head, clips)


def scored(model: LipForensics, version: Version, video: LabelledVideo) -> ScoredVideo:
    """``video`` scored at the calibration stride and clip by clip."""
    return ScoredVideo(
        person=version.person.key,
        recording=version.recording.key,
        kind=version.kind,
        label=version.label,
        frames=len(video.features),
        windows=window_logits(model, video, STRIDE),
        clips=window_logits(model, video, CLIP_FRAMES),
    )


# --- the whole build ----------------------------------------------------------------------


@dataclass(frozen=True)
class DemoReport:
    """The measured figures of a build (also written to :data:`REPORT`)."""

    seconds: float
    weights_bytes: int
    parameters: int
    validation_auc: float
    alert_logit: float
    alert_probability: float
    held_out_genuine_alerts: int
    held_out_min_auc: float
    demo_genuine_alerts: int
    demo_manipulated_alerts: int
    people: list[dict] = field(default_factory=list)
    manipulations: list[dict] = field(default_factory=list)


def build_demo(
    work_dir: Path, out_dir: Path = DEMO_DIR, seed: int = 0, log: Log = print
) -> DemoReport:
    """Rebuild the demo detector, its thresholds, report and demo clips from scratch, into
    ``out_dir`` (by default :data:`DEMO_DIR`, the shipped files; the names stay those of
    :data:`WEIGHTS`, :data:`REPORT`, :data:`DEMO_GENUINE` and :data:`DEMO_MANIPULATED`).

    ``work_dir`` keeps the 25 fps stretches, synthetic videos and crops between runs, one
    folder per seed (delete it to redo them); everything else is recomputed. Torch runs on
    one thread meanwhile: its results depend on the thread count (sums in another order),
    and the same seed must give the same detector on any machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(work_dir, out_dir, seed, log)
    finally:
        torch.set_num_threads(threads)


def _build(work_dir: Path, out_dir: Path, seed: int, log: Log) -> DemoReport:
    """:func:`build_demo`'s steps."""
    from calibration.thresholds import calibrate, save_thresholds
    from engines.checkpoint import save_checkpoint
    from engines.digest import file_sha256

    started = time.perf_counter()
    torch.manual_seed(seed)
    work_dir = work_dir / f"seed{seed}"
    work_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS.name
    log(DISCLAIMER)

    log("1/7 genuine recordings at 25 fps -> landmarks and mouth crops")
    footage: dict[str, Footage] = {}
    crops: dict[str, Crops] = {}
    for person in PEOPLE:
        for recording in person.recordings:
            path = recording_video(
                recording, work_dir / f"{person.key}_{recording.key}_genuine.mp4"
            )
            crops[path.stem], landmarks = video_crops(path, 0)
            footage[person.key + recording.key] = read_footage(path, landmarks)
            found = len(crops[path.stem].crops)
            log(f"    {person.key} {person.role:9s} {path.name}: {found} frames with a face")

    log("2/7 synthetic manipulations and perturbed genuine versions -> videos -> mouth crops")
    donor = _first_footage(footage, SWAP_DONOR)
    versions = [v for person in PEOPLE for v in versions_of(person)]
    for version in versions:
        if version.kind != GENUINE:
            source = footage[version.person.key + version.recording.key]
            path = version_video(
                version, source, donor, work_dir / f"{version.name}.mp4", version.seed(seed)
            )
            crops[version.name] = video_crops(path, version.label)[0]
            log(f"    {path.name}")

    train_people = {p.key for p in people(TRAIN)}
    training = [v for v in versions if v.person.key in train_people]
    log(f"3/7 encoder from scratch on {len(training)} videos of {len(train_people)} people")
    model = LipForensics(DEMO_CONFIG)
    pretrain_encoder(model.encoder, [crops[v.name] for v in training], EncoderConfig(), seed, log)

    log("4/7 frozen encoder: cached features, MS-TCN head (epoch chosen on the calibration person)")
    features = {v.name: labelled_features(model.encoder, crops[v.name]) for v in versions}
    calibration = [v for v in versions if v.person.role == CALIBRATE]
    calibrators = {v.person.key for v in calibration}
    result = train_head(
        model.head,
        [features[v.name] for v in training],
        [features[v.name] for v in calibration],
        FinetuneConfig(seed=seed),
        log=log,
    )
    save_checkpoint(weights, model)
    scores = [scored(model, v, features[v.name]) for v in versions]

    log("5/7 thresholds and probability map from the calibration person")
    by_label = {
        label: [s.windows for s in scores if s.person in calibrators and s.label == label]
        for label in (0, 1)
    }
    thresholds, _fit = calibrate(
        by_label[0], by_label[1], stride=STRIDE, weights_sha256=file_sha256(weights)
    )
    thresholds = replace(thresholds, path=save_thresholds(thresholds, weights))
    policy = thresholds.policy
    log(f"    {thresholds.describe()}")

    log("6/7 results per person and, on the held-out people, per manipulation")
    per_person = [person_result(p.key, p.description, p.role, scores, policy) for p in PEOPLE]
    held_people = {p.key for p in people(HELD_OUT)}
    held = [s for s in scores if s.person in held_people]
    per_kind = [manipulation_result(k, True, held, policy) for k in TRAIN_KINDS] + [
        manipulation_result(k, False, held, policy) for k in HELD_OUT_KINDS
    ]

    log("7/7 demo clips")
    donor = _first_footage(footage, DEMO_DONOR)
    demo_alerts = _write_demo_clips(model, work_dir, out_dir, donor, seed, policy)

    report = DemoReport(
        seconds=round(time.perf_counter() - started, 1),
        weights_bytes=weights.stat().st_size,
        parameters=sum(p.numel() for p in model.parameters()),
        validation_auc=round(result.best_auc, 4),
        alert_logit=round(policy.alert_logit, 3),
        alert_probability=round(thresholds.probability(policy.alert_logit), 4),
        held_out_genuine_alerts=sum(r.genuine_alerts for r in per_person if r.role == HELD_OUT),
        held_out_min_auc=min(m.auc for m in per_kind if not m.trained_on),
        demo_genuine_alerts=demo_alerts[0],
        demo_manipulated_alerts=demo_alerts[1],
        people=[asdict(r) for r in per_person],
        manipulations=[asdict(m) for m in per_kind],
    )
    (out_dir / REPORT.name).write_text(
        json.dumps({"disclaimer": DISCLAIMER, **asdict(report)}, indent=2) + "\n"
    )
    log(markdown_tables(report.people, report.manipulations))
    return report


def _first_footage(footage: dict[str, Footage], person: str) -> Footage:
    """The footage of ``person``'s first recording."""
    first = next(p for p in PEOPLE if p.key == person).recordings[0]
    return footage[person + first.key]


def _write_demo_clips(
    model: LipForensics,
    work_dir: Path,
    out_dir: Path,
    donor: Footage,
    seed: int,
    policy: PolicyConfig,
) -> tuple[int, int]:
    """Write the two demo clips into ``out_dir`` and return the alerts each raises
    (through the real crops)."""
    from stream.alerts.policy import count_alerts

    source = recording_video(DEMO_SOURCE, work_dir / "demo_source.mp4")
    span = read_footage(source, video_crops(source, 0)[1])
    genuine, manipulated = out_dir / DEMO_GENUINE.name, out_dir / DEMO_MANIPULATED.name
    write_video(genuine, span.frames)
    write_video(manipulated, manipulate(span, "swap", seed=seed, donor=donor))
    alerts = []
    for label, path in ((0, genuine), (1, manipulated)):
        from stream.faces.reader import extract_mouth_crops

        mouths = extract_mouth_crops(path)
        video = labelled_features(model.encoder, Crops(path.stem, mouths.crops, mouths.runs, label))
        alerts.append(count_alerts(window_logits(model, video, STRIDE), policy))
    return alerts[0], alerts[1]


def install_build(built: Path, shipped: Path = DEMO_DIR) -> None:
    """Copy a build's files from ``built`` into ``shipped``."""
    shipped.mkdir(parents=True, exist_ok=True)
    thresholds = DEMO.thresholds.name
    for name in (REPORT.name, DEMO_GENUINE.name, DEMO_MANIPULATED.name, WEIGHTS.name, thresholds):
        shutil.copyfile(built / name, shipped / name)


def report_passes(report: DemoReport) -> tuple[bool, str]:
    """Whether a build meets the held-out bar, and a one-line account."""
    problems = []
    if not report.held_out_min_auc >= MIN_AUC:
        problems.append(f"held-out manipulation AUC {report.held_out_min_auc:.4f} < {MIN_AUC}")
    if report.held_out_genuine_alerts or report.demo_genuine_alerts:
        problems.append("alerts on held-out genuine video")
    if not report.demo_manipulated_alerts:
        problems.append("no alert on the manipulated demo clip")
    if problems:
        return False, "; ".join(problems)
    return True, (
        f"held-out people: no alert on their genuine clips, clip AUC >= "
        f"{report.held_out_min_auc:.4f} on manipulations never trained on; demo clips as expected"
    )

"""The demo detector's constants, and the videos, crops and scores it is built from.

**A demo, not a deepfake detector.** It is trained on synthetic mouth manipulations of a
few people's genuine footage and knows nothing about real deepfakes; real use takes the
authors' ``lipforensics_ff.pth``.

Who the people are is :mod:`training.demo_people`; how a detector is trained from them is
:mod:`training.fold_training`, and the shipped build is :mod:`training.demo_build`. Here:

* a :class:`Version` of a recording (genuine, perturbed genuine or manipulated) and its
  video (:func:`recording_video`, :func:`version_video`), written as H.264 like every
  input the product sees;
* its mouth crops through the real crop pipeline (:func:`video_crops`, MediaPipe);
* a network's window logits on its crops (:func:`scored`), at the calibration stride and
  clip by clip.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engines.clips import clip_starts
from engines.method import CLIP_FRAMES, FPS
from engines.model import LipForensics, ModelConfig
from engines.weights import DEMO
from training.demo_encoder import Crops
from training.demo_people import Person, Recording
from training.demo_results import ScoredVideo
from training.features import clip_features, encode_video
from training.finetune import LabelledVideo, predict
from training.manipulations import Footage, manipulate, write_video

ROOT = Path(__file__).resolve().parent.parent
#: manipulations used in training (with ``flicker`` held out too, its held-out AUC was 0.64:
#: see docs/demo_detector.md)
TRAIN_KINDS = ("freeze", "shift", "stutter", "flicker")
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
#: what the demo clips show: 8 s of P1's other recording, genuine and manipulated; the
#: shipped detector never trains or calibrates on P1 (:mod:`training.demo_build`)
DEMO_SOURCE = Recording("cap13_edit2.mp4", 250, 200)
#: whose mouth ``swap`` pastes into P2 (P2's is pasted into everyone else)
DEMO_DONOR = "P1"
#: the paper's architecture at an eighth of its widths (about 0.57 M parameters, 2.3 MB)
DEMO_CONFIG = ModelConfig(frontend_channels=8, trunk_widths=(8, 16, 32, 64), tcn_hidden=32)
#: window stride the thresholds are calibrated at (the live pipeline's default)
STRIDE = 5
#: the statement everything that uses the demo detector prints
DISCLAIMER = DEMO.disclaimer

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
        write_once(out, lambda: np.stack(frames))
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
        write_once(out, lambda: np.stack(list(perturb(footage.frames, version.kind, 1, seed=seed))))
    else:
        write_once(out, lambda: manipulate(footage, version.kind, seed=seed, donor=donor))
    return out


def write_once(out: Path, frames: Callable[[], np.ndarray]) -> Path:
    """Write ``frames()`` as ``out`` through a partial file, unless ``out`` exists; return
    ``out``."""
    if not out.exists():
        partial = out.with_name(out.stem + ".partial.mp4")
        write_video(partial, frames())
        partial.replace(out)
    return out


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


def video_window_logits(model: LipForensics, path: Path, stride: int = STRIDE) -> np.ndarray:
    """Window logits every ``stride`` frames of the video file ``path``, its mouth crops made
    through the real crop pipeline (as a user's file would be)."""
    from stream.faces.reader import extract_mouth_crops

    mouths = extract_mouth_crops(path)
    with torch.no_grad():
        video = labelled_features(model.encoder, Crops(path.stem, mouths.crops, mouths.runs, 0))
        return window_logits(model, video, stride)


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

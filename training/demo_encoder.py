"""The demo detector's frame encoder, trained from scratch on five-frame windows.

No pretrained lipreading encoder is available to us, so the network's narrow frame encoder
learns with a linear probe on single frame features (real 0 / fake 1): each sample is one
frame's five-frame window, the exact input one frame feature depends on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engines.method import FRAME_CONTEXT, INPUT_OFFSET, INPUT_SIZE, MEAN, STD
from engines.model import FrameEncoder
from training.crop_augment import Augmentation

Log = Callable[[str], None]
#: frames in one frame feature's window
_WIDTH = 2 * FRAME_CONTEXT + 1


@dataclass(frozen=True)
class EncoderConfig:
    """Encoder pretraining on five-frame windows (see :func:`pretrain_encoder`)."""

    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    #: camera, codec, lighting and frame-rate changes (:mod:`training.crop_augment`)
    augmentation: Augmentation = Augmentation()
    #: each genuine window comes with a manipulated version of the same recording at the
    #: same frame, both augmented alike, so that only the manipulation tells them apart
    paired: bool = False


@dataclass(frozen=True, eq=False)
class Crops:
    """One video's mouth crops (uint8 (N, 96, 96)) and runs of consecutive frames."""

    name: str
    crops: np.ndarray
    runs: tuple[tuple[int, int], ...]
    label: int
    #: the recording the video was made from: the genuine version and the manipulations of
    #: one recording share it, frame for frame (empty: not known)
    source: str = ""


def pretrain_encoder(
    encoder: FrameEncoder, videos: Sequence[Crops], config: EncoderConfig, seed: int, log: Log
) -> None:
    """Train ``encoder`` from scratch with a linear probe on single frame features: each
    sample is one frame's five-frame window (random shift inside the 96 x 96 crop, random
    horizontal flip and brightness/contrast); classes are drawn equally often, and within a
    class every video equally often (a short clip counts as much as a long one).

    With ``config.paired``, every genuine window's partner in the batch is the same frame
    of a manipulation of the same recording (:attr:`Crops.source`), augmented alike.
    Raises ``ValueError`` when a genuine video has no manipulation to pair with."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    probe = torch.nn.Linear(encoder.trunk.layer4[-1].bn2.num_features, 1)
    parameters = list(encoder.parameters()) + list(probe.parameters())
    optimiser = torch.optim.AdamW(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=config.steps
    )
    centres = {label: _window_centres(videos, label) for label in (0, 1)}
    partners = _manipulated_partners(videos) if config.paired else None
    encoder.train()
    running = []
    for step in range(1, config.steps + 1):
        if partners is None:
            windows, labels = _window_batch(
                videos, centres, config.batch_size, config.augmentation, rng
            )
        else:
            windows, labels = _paired_batch(
                videos, centres[0], partners, config.batch_size, config.augmentation, rng
            )
        logits = probe(encoder.encode_frames(windows)).squeeze(1)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append(loss.item())
        if step % 100 == 0 or step == config.steps:
            log(f"    encoder step {step:4d}/{config.steps}  loss {np.mean(running):.4f}")
            running = []
    encoder.eval()


def _window_centres(videos: Sequence[Crops], label: int) -> list[list[tuple[int, int]]]:
    """Per video of ``label``: (video index, frame) of every frame with two neighbours
    each side."""
    found = [
        [
            (index, frame)
            for start, stop in video.runs
            for frame in range(start + FRAME_CONTEXT, stop - FRAME_CONTEXT)
        ]
        for index, video in enumerate(videos)
        if video.label == label
    ]
    return [centres for centres in found if centres]


def _window_batch(
    videos: Sequence[Crops],
    centres: dict[int, list[list[tuple[int, int]]]],
    size: int,
    augmentation: Augmentation,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A balanced, augmented batch of (size, 1, 5, 88, 88) windows and their labels (the
    extra ``augmentation`` draws nothing unless it is active)."""
    windows = np.empty((size, 1, _WIDTH, INPUT_SIZE, INPUT_SIZE), np.float32)
    labels = np.arange(size) % 2
    for row, label in enumerate(labels):
        video = centres[label][rng.integers(len(centres[label]))]
        index, frame = video[rng.integers(len(video))]
        windows[row, 0] = _window(videos[index].crops, frame, augmentation, rng)
    return torch.from_numpy(windows), torch.from_numpy(labels.astype(np.float32))


def _manipulated_partners(videos: Sequence[Crops]) -> dict[int, list[int]]:
    """For every genuine video (by index), the indices of the manipulated videos of the
    same recording."""
    partners = {
        index: [
            other
            for other, fake in enumerate(videos)
            if fake.label == 1
            and fake.source
            and fake.source == video.source
            and any(stop - start > 2 * FRAME_CONTEXT for start, stop in fake.runs)
        ]
        for index, video in enumerate(videos)
        if video.label == 0
    }
    lonely = [videos[index].name for index, found in partners.items() if not found]
    if lonely:
        raise ValueError(f"no manipulated version to pair with: {', '.join(lonely)}")
    return partners


def _paired_batch(
    videos: Sequence[Crops],
    genuine: list[list[tuple[int, int]]],
    partners: dict[int, list[int]],
    size: int,
    augmentation: Augmentation,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of ``size`` // 2 genuine windows (every genuine video equally often), each
    followed by the same frame of one of its recording's manipulations, the two augmented
    with the same draws (the nearest usable frame where the manipulation lost the face)."""
    pairs = size // 2
    windows = np.empty((2 * pairs, 1, _WIDTH, INPUT_SIZE, INPUT_SIZE), np.float32)
    for pair in range(pairs):
        video = genuine[rng.integers(len(genuine))]
        index, frame = video[rng.integers(len(video))]
        fake = partners[index][rng.integers(len(partners[index]))]
        state = int(rng.integers(2**63))
        for row, (source, centre) in enumerate(
            ((index, frame), (fake, _nearest_centre(videos[fake].runs, frame)))
        ):
            draws = np.random.default_rng(state)
            windows[2 * pair + row, 0] = _window(videos[source].crops, centre, augmentation, draws)
    labels = np.tile(np.float32([0, 1]), pairs)
    return torch.from_numpy(windows), torch.from_numpy(labels)


def _nearest_centre(runs: tuple[tuple[int, int], ...], frame: int) -> int:
    """The frame nearest ``frame`` with two neighbours each side inside one of ``runs``."""
    spans = [(a + FRAME_CONTEXT, b - FRAME_CONTEXT - 1) for a, b in runs]
    return min(
        (min(max(frame, low), high) for low, high in spans if low <= high),
        key=lambda centre: abs(centre - frame),
    )


def _window(
    crops: np.ndarray, frame: int, augmentation: Augmentation, rng: np.random.Generator
) -> np.ndarray:
    """The normalised (5, 88, 88) window around ``frame``: a random shift inside the crop,
    ``augmentation`` (drawing nothing unless it is active), a random horizontal flip and
    random brightness/contrast."""
    top, left = rng.integers(0, 2 * INPUT_OFFSET + 1, size=2)
    window = crops[frame - FRAME_CONTEXT : frame + FRAME_CONTEXT + 1]
    if augmentation.active:
        window = augmentation.window(crops, frame, rng)
    patch = window[:, top : top + INPUT_SIZE, left : left + INPUT_SIZE] / np.float32(255)
    if rng.random() < 0.5:
        patch = patch[:, :, ::-1]
    patch = patch * rng.uniform(0.85, 1.15) + rng.uniform(-0.06, 0.06)
    return (patch - MEAN) / STD

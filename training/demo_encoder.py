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


@dataclass(frozen=True)
class EncoderConfig:
    """Encoder pretraining on five-frame windows (see :func:`pretrain_encoder`)."""

    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    #: camera, codec, lighting and frame-rate changes (:mod:`training.crop_augment`)
    augmentation: Augmentation = Augmentation()


@dataclass(frozen=True, eq=False)
class Crops:
    """One video's mouth crops (uint8 (N, 96, 96)) and runs of consecutive frames."""

    name: str
    crops: np.ndarray
    runs: tuple[tuple[int, int], ...]
    label: int


def pretrain_encoder(
    encoder: FrameEncoder, videos: Sequence[Crops], config: EncoderConfig, seed: int, log: Log
) -> None:
    """Train ``encoder`` from scratch with a linear probe on single frame features: each
    sample is one frame's five-frame window (random shift inside the 96 x 96 crop, random
    horizontal flip and brightness/contrast); classes are drawn equally often, and within a
    class every video equally often (a short clip counts as much as a long one)."""
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
    encoder.train()
    running = []
    for step in range(1, config.steps + 1):
        windows, labels = _window_batch(
            videos, centres, config.batch_size, config.augmentation, rng
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
    width = 2 * FRAME_CONTEXT + 1
    windows = np.empty((size, 1, width, INPUT_SIZE, INPUT_SIZE), np.float32)
    labels = np.arange(size) % 2
    for row, label in enumerate(labels):
        video = centres[label][rng.integers(len(centres[label]))]
        index, frame = video[rng.integers(len(video))]
        top, left = rng.integers(0, 2 * INPUT_OFFSET + 1, size=2)
        crops = videos[index].crops[frame - FRAME_CONTEXT : frame + FRAME_CONTEXT + 1]
        if augmentation.active:
            crops = augmentation.window(videos[index].crops, frame, rng)
        patch = crops[:, top : top + INPUT_SIZE, left : left + INPUT_SIZE] / np.float32(255)
        if rng.random() < 0.5:
            patch = patch[:, :, ::-1]
        patch = patch * rng.uniform(0.85, 1.15) + rng.uniform(-0.06, 0.06)
        windows[row, 0] = (patch - MEAN) / STD
    return torch.from_numpy(windows), torch.from_numpy(labels.astype(np.float32))

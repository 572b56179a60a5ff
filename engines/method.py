"""The method's constants, in one place: frame rate, clip length, crop geometry,
normalisation and the encoder's temporal reach; with the preprocessing (uint8 96x96 mouth
crops -> the network's normalised 88x88 input) and the logit -> probability map.

The constants are the ones the published checkpoint was trained with; export, engines,
the live pipeline, calibration and docs all take them from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import numpy as np

#: side of the grayscale mouth crop cut from the aligned 256x256 face
CROP_SIZE = 96
#: side of the network input, a centre crop of the mouth crop
INPUT_SIZE = 88
#: first row/column of the centre crop (pixels 4..91)
INPUT_OFFSET = (CROP_SIZE - INPUT_SIZE) // 2
#: mean and standard deviation of the [0, 1] gray levels
MEAN = 0.421
STD = 0.165
#: frames per clip in the paper's protocol (1 s at 25 fps)
CLIP_FRAMES = 25
#: frame rate the network expects
FPS = 25
#: seconds between two frames at :data:`FPS`
FRAME_PERIOD = 1 / FPS
#: frames on each side of a frame that its feature depends on (front end kernel 5, padding 2)
FRAME_CONTEXT = 2


@dataclass(frozen=True)
class Preprocessing:
    """How uint8 mouth crops become a network's input: a centre crop of ``input_size`` out
    of ``crop_size``, gray levels /255, then ``(x - mean) / std``."""

    crop_size: int = CROP_SIZE
    input_size: int = INPUT_SIZE
    mean: float = MEAN
    std: float = STD

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(T, crop_size, crop_size) uint8 -> (T, input_size, input_size) float32.

        Raises ``ValueError`` when the array is not (T, crop_size, crop_size) uint8.
        """
        size = self.crop_size
        if crops.dtype != np.uint8 or crops.ndim != 3 or crops.shape[1:] != (size, size):
            raise ValueError(
                f"expected uint8 crops of shape (T, {size}, {size}), "
                f"got {crops.dtype} {crops.shape}"
            )
        start = (size - self.input_size) // 2
        end = start + self.input_size
        centre = crops[:, start:end, start:end].astype(np.float32) / 255.0
        return (centre - np.float32(self.mean)) / np.float32(self.std)


#: the preprocessing the published checkpoint was trained with
PAPER_PREPROCESSING = Preprocessing()


def normalise_crops(crops: np.ndarray) -> np.ndarray:
    """(T, 96, 96) uint8 crops -> (T, 88, 88) float32: /255, centre crop, (x - 0.421) / 0.165
    (:data:`PAPER_PREPROCESSING`).

    Raises ``ValueError`` when the array is not (T, 96, 96) uint8.
    """
    return PAPER_PREPROCESSING(crops)


@overload
def sigmoid(logits: float) -> float: ...
@overload
def sigmoid(logits: np.ndarray) -> np.ndarray: ...
def sigmoid(logits: float | np.ndarray) -> float | np.ndarray:
    """The logistic function ``1 / (1 + e^-x)``, without overflow for any magnitude.

    A number (Python or numpy scalar) gives a ``float``; an array gives a float64 array of
    its shape. Negative values go through ``e^x / (1 + e^x)``, so -1000 gives 0.0 and no
    overflow warning.
    """
    if np.ndim(logits) == 0:
        x = float(logits)
        if x >= 0:
            return 1.0 / (1.0 + math.exp(-x))
        odds = math.exp(x)
        return odds / (1.0 + odds)
    values = np.asarray(logits, dtype=np.float64)
    odds = np.exp(-np.abs(values))  # e^-|x| <= 1: never overflows
    return np.where(values >= 0, 1.0 / (1.0 + odds), odds / (1.0 + odds))

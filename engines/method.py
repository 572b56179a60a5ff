"""Model-side preprocessing: uint8 96x96 mouth crops -> the network's normalised 88x88 input.

The constants are the ones the published checkpoint was trained with; export, engines and
docs all take them from here.
"""

from __future__ import annotations

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


def normalise_crops(crops: np.ndarray) -> np.ndarray:
    """(T, 96, 96) uint8 crops -> (T, 88, 88) float32: /255, centre crop, (x - 0.421) / 0.165.

    Raises ``ValueError`` when the array is not (T, 96, 96) uint8.
    """
    if crops.dtype != np.uint8 or crops.ndim != 3 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE):
        raise ValueError(
            f"expected uint8 crops of shape (T, {CROP_SIZE}, {CROP_SIZE}), "
            f"got {crops.dtype} {crops.shape}"
        )
    end = INPUT_OFFSET + INPUT_SIZE
    centre = crops[:, INPUT_OFFSET:end, INPUT_OFFSET:end].astype(np.float32) / 255.0
    return (centre - np.float32(MEAN)) / np.float32(STD)

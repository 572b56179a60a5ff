"""Is a live picture still moving? A frozen browser tab or a stuck capture keeps sending its
last picture, re-encoded each time, so the frames that arrive are never quite equal: the
encoder refines a still picture by a few levels per pixel, under :data:`LEVELS`
(``tests/test_whip_stall.py`` sends one frame again and again over loopback WebRTC). A
picture has moved when enough sampled pixels differ by more than that from the last picture
that moved; video of a person talking does so within a second, a frozen one never. A scene
that stays perfectly still (an empty room) reads as frozen too.
"""

from __future__ import annotations

import numpy as np

#: every STEP-th pixel of every STEP-th row (of the green channel) is compared.
STEP = 2
#: a sampled pixel differs when its level moved by more than this, out of 255.
LEVELS = 32
#: the picture moved when at least this many sampled pixels differ.
SAMPLES = 16


class PictureChange:
    """Compares each picture of a stream with the last one that moved (see the module)."""

    def __init__(self) -> None:
        self._reference: np.ndarray | None = None

    def moved(self, image: np.ndarray) -> bool:
        """``image`` (RGB, uint8, H x W x 3) differs from the last picture that moved (or
        is the first, or of another size); it then becomes the reference."""
        sample = image[::STEP, ::STEP, 1].astype(np.int16)
        reference = self._reference
        if reference is not None and reference.shape == sample.shape:
            changed = np.count_nonzero(np.abs(sample - reference) > LEVELS)
            if changed < SAMPLES:
                return False
        self._reference = sample
        return True

"""Frame-once bookkeeping: which encoder inputs a window needs, named one way everywhere.

The front end's only temporal operator is a convolution of kernel 5 with zero padding
:data:`~engines.method.FRAME_CONTEXT` (2), and the trunk is per frame, so the feature of
frame *i* in a window depends only on frames i-2..i+2 *of that window*, with zeros (in
normalised space) for the neighbours outside it. A feature is therefore named by a
:data:`FrameKey` ``(i, before, after)``: the frame, and how many of its neighbours on each
side are zeros. An *interior* frame, ``(i, 0, 0)``, has the same feature in every window
that holds i-2..i+2, so it is encoded once; only the two frames at each end of a window
need their zero-padded variants, and the logit of the window is exactly the network's.

:func:`window_keys` lists the keys of a window, :func:`frame_requests` those of many
windows (each once), and :func:`five_frame_inputs` builds the encoder's
(N, 1, 5, 88, 88) input for keys. The scan (:mod:`engines.clips`), the live windows
(:mod:`stream.windows.face_window`, :mod:`stream.windows.scheduler`), the feature cache
(:mod:`training.features`), the INT8 calibration data and the backends' clip helpers all
use them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from engines.method import FRAME_CONTEXT, INPUT_SIZE

#: a frame feature: (frame index, zero neighbours before it, zero neighbours after it)
FrameKey = tuple[int, int, int]


def window_keys(start: int, length: int) -> list[FrameKey]:
    """The key of each frame of the window of ``length`` frames beginning at ``start``, in
    order: ``(i, 0, 0)`` inside, zero neighbours only for the two frames at each end."""
    last = start + length - 1
    return [
        (i, max(0, start + FRAME_CONTEXT - i), max(0, i + FRAME_CONTEXT - last))
        for i in range(start, last + 1)
    ]


def key_span(key: FrameKey) -> tuple[int, int]:
    """``(first, stop)``: the real frames ``first .. stop - 1`` that ``key``'s input holds."""
    frame, before, after = key
    return frame - FRAME_CONTEXT + before, frame + FRAME_CONTEXT + 1 - after


def frame_requests(starts: Sequence[int], length: int) -> tuple[list[FrameKey], np.ndarray]:
    """Which frame features the windows of ``length`` beginning at ``starts`` need, each once.

    Returns:
        (keys, layout): the distinct keys in order of first use, and int64
        (windows, length) indices into keys.
    """
    index: dict[FrameKey, int] = {}
    layout = np.empty((len(starts), length), dtype=np.int64)
    for row, start in enumerate(starts):
        layout[row] = [index.setdefault(key, len(index)) for key in window_keys(start, length)]
    return list(index), layout


def five_frame_inputs(
    frames: Sequence[np.ndarray] | np.ndarray,
    keys: Sequence[FrameKey],
    first: int = 0,
    dtype: npt.DTypeLike = np.float32,
) -> np.ndarray:
    """The encoder input (N, 1, 5, H, W) of each of ``keys``, from normalised (H, W) frames.

    ``frames[j]`` is frame ``first + j``. Row n holds frames i-2..i+2 of key n, with the
    key's zero neighbours (and any frame outside ``frames``) as zeros: exactly the front
    end's padding at a window's ends.
    """
    height, width = np.shape(frames[0]) if len(frames) else (INPUT_SIZE, INPUT_SIZE)
    out = np.zeros((len(keys), 1, 2 * FRAME_CONTEXT + 1, height, width), dtype=dtype)
    for row, key in enumerate(keys):
        low, high = key_span(key)
        begin, end = max(low, first), min(high, first + len(frames))
        offset = begin - (key[0] - FRAME_CONTEXT)
        for slot, frame in enumerate(range(begin, end), start=offset):
            out[row, 0, slot] = frames[frame - first]
    return out

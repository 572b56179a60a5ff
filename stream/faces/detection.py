"""Face detection with MediaPipe's short-range detector, over the whole frame and over tiles.

The decoding is MediaPipe's for this network: 896 fixed-size SSD anchors (strides 8, 16,
16, 16 on a 128 x 128 input; 2 anchors per cell at stride 8, 6 at stride 16), box centre
and size and 6 keypoints as offsets scaled by 1/128, scores through a sigmoid (logits
clipped to +-100) kept from 0.5, then *weighted* non-maximum suppression (IoU 0.3: each
kept box is the score-weighted mean of the boxes it suppresses). The input is the square
around the image region (letterboxed with zeros), resized bilinearly, RGB in [-1, 1].

The network sees a face only when it fills roughly 1/6 to 3/4 of its input, so a 60 px
face in a 1280 x 720 call gallery (8 px in a 128 x 128 view of the whole frame) needs a
closer look: :func:`tiles` covers the frame with overlapping squares at a few scales,
each run as one item of the same batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from stream.faces.models import Model
from stream.faces.networks import DETECTOR_SIZE
from stream.faces.tile_memory import Found, TileMemory, face_blocks

#: MediaPipe's thresholds for this detector: score, and IoU of the boxes merged by NMS
MIN_SCORE = 0.5
NMS_IOU = 0.3
#: a face fills at least about this share of the detector's input side to be found
SMALLEST_SHARE = 0.2
#: neighbouring tiles overlap by this share of their side (a face on a seam is whole in one)
TILE_OVERLAP = 0.35
#: successive tile scales differ by this factor (the detector covers about 4x in face size)
SCALE_STEP = 2.5


@dataclass(frozen=True, slots=True)
class Detection:
    """One face found by the detector, in frame pixels.

    Attributes:
        box: (x0, y0, x1, y1).
        keypoints: (6, 2) x, y: right eye, left eye (as seen), nose tip, mouth, right and
            left ear tragion.
        score: the detector's confidence, 0..1.
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float


def anchors() -> np.ndarray:
    """The 896 anchor centres (x, y) of the 128 x 128 detector, normalised, in its order."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = DETECTOR_SIZE // stride
        y, x = np.mgrid[0:cells, 0:cells]
        grid = (np.stack([x, y], axis=-1).reshape(-1, 2) + 0.5) / cells
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres)


_ANCHORS = anchors()


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One input's detections before suppression, the anchors whose score reaches
    :data:`MIN_SCORE`: (K, 16) normalised x0, y0, x1, y1 then 6 keypoints x, y, and (K,)
    scores."""
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores >= MIN_SCORE)
    values = raw_boxes.reshape(-1, 16)[keep].astype(np.float64) / DETECTOR_SIZE
    centres = _ANCHORS[keep]
    middle, half = values[:, :2] + centres, values[:, 2:4] / 2
    points = values[:, 4:].reshape(-1, 6, 2) + centres[:, None]
    decoded = np.concatenate([middle - half, middle + half, points.reshape(-1, 12)], axis=1)
    return decoded, scores[keep]


def overlaps(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each row of ``boxes``
    (M, >= 4; the first four columns are the box): (M,)."""
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.maximum(width, 0.0) * np.maximum(height, 0.0)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = (box[2] - box[0]) * (box[3] - box[1]) + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def weighted_nms(values: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted suppression of (K, 16) candidates with (K,) scores: the best
    remaining candidate and every candidate overlapping it by more than :data:`NMS_IOU`
    become one detection, their values averaged by score, with the best one's score."""
    order = np.argsort(-scores, kind="stable")
    values, scores = values[order], scores[order]
    merged, best = [], []
    while len(values):
        group = overlaps(values[0], values) > NMS_IOU
        group[0] = True
        weights = scores[group]
        merged.append(values[group].T @ weights / weights.sum())
        best.append(scores[0])
        values, scores = values[~group], scores[~group]
    return np.array(merged).reshape(-1, 16), np.array(best)


@dataclass(frozen=True, slots=True)
class Tile:
    """A square region of the frame the detector looks at: top-left and side, pixels (it
    may reach past the frame; the outside is zeros, as MediaPipe's letterbox)."""

    x: float
    y: float
    side: float


def whole_frame(width: int, height: int) -> Tile:
    """The square around the whole frame, centred (MediaPipe's letterboxed view)."""
    side = float(max(width, height))
    return Tile((width - side) / 2, (height - side) / 2, side)


def tiles(width: int, height: int, smallest_face: float) -> list[Tile]:
    """The whole frame, then overlapping squares at growing scales: the smallest side is
    the one in which a face of ``smallest_face`` pixels fills :data:`SMALLEST_SHARE` of
    the input, each next one :data:`SCALE_STEP` times larger, up to the frame's shorter
    side. Each scale's squares overlap by :data:`TILE_OVERLAP` and cover the frame."""
    found = [whole_frame(width, height)]
    side = smallest_face / SMALLEST_SHARE
    while side < found[0].side:
        side = min(side, float(min(width, height)))
        step = side * (1 - TILE_OVERLAP)
        columns = math.ceil(max(width - side, 0) / step) + 1
        rows = math.ceil(max(height - side, 0) / step) + 1
        xs = np.linspace(0, width - side, columns)
        ys = np.linspace(0, height - side, rows)
        found.extend(Tile(float(x), float(y), side) for y in ys for x in xs)
        if side >= min(width, height):
            break
        side *= SCALE_STEP
    return found


def tile_inputs(rgb: np.ndarray, regions: list[Tile]) -> np.ndarray:
    """The detector's uint8 (N, 128, 128, 3) inputs for the tiles of one frame: bilinear,
    zeros outside (the model scales them to [-1, 1])."""
    batch = np.empty((len(regions), DETECTOR_SIZE, DETECTOR_SIZE, 3), np.uint8)
    for out, tile in zip(batch, regions, strict=True):
        scale = DETECTOR_SIZE / tile.side
        matrix = np.array([[scale, 0.0, -tile.x * scale], [0.0, scale, -tile.y * scale]])
        cv2.warpAffine(
            rgb,
            matrix,
            (DETECTOR_SIZE, DETECTOR_SIZE),
            dst=out,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    return batch


def detect(model: Model, rgb: np.ndarray, regions: list[Tile]) -> list[Detection]:
    """The faces the detector finds in ``regions`` of one RGB frame (see
    :func:`detect_frames`)."""
    return detect_frames(model, [(rgb, regions)])[0]


def detect_frames(
    model: Model,
    frames: Sequence[tuple[np.ndarray, list[Tile]]],
    memories: Sequence[TileMemory] = (),
    tracked: Sequence[list[np.ndarray]] = (),
) -> list[list[Detection]]:
    """The faces the detector finds in the regions of each (RGB frame, regions), all in
    one batch: per frame, in frame pixels, best first; each region decoded and suppressed
    as MediaPipe does, then the frame's regions' faces suppressed together (a face seen by
    two tiles or two scales is kept once). With ``memories`` (one per frame), a region
    whose input has not changed since the detector last ran on it, outside the blocks of
    the frame's ``tracked`` faces' boxes (one list per frame), keeps what it found then,
    without a call (:mod:`stream.faces.tile_memory`)."""
    inputs = [tile_inputs(rgb, regions) for rgb, regions in frames]
    remembered: list[TileMemory | None] = list(memories) or [None] * len(frames)
    boxes: list[list[np.ndarray]] = list(tracked) or [[] for _ in frames]
    found: list[list[Found | None]] = []
    pending: list[tuple[int, int]] = []  # (frame, region) the network runs on
    for number, ((_, regions), images, memory, faces) in enumerate(
        zip(frames, inputs, remembered, boxes, strict=True)
    ):
        recalled = [
            None
            if memory is None
            else memory.recall(tile, image, face_blocks(tile.x, tile.y, tile.side, faces))
            for tile, image in zip(regions, images, strict=True)
        ]
        pending.extend((number, index) for index, seen in enumerate(recalled) if seen is None)
        found.append(recalled)
    if pending:
        boxes, scores = model.run(np.stack([inputs[f][i] for f, i in pending]))
        for (number, index), raw_boxes, raw_scores in zip(pending, boxes, scores, strict=True):
            tile, memory = frames[number][1][index], remembered[number]
            values, best = weighted_nms(*decode(raw_boxes, raw_scores))
            found[number][index] = (values * tile.side + np.tile([tile.x, tile.y], 8), best)
            if memory is not None:
                memory.keep(tile, inputs[number][index], found[number][index])
    return [_faces(regions) for regions in found]  # type: ignore[arg-type]


def _faces(regions: list[Found]) -> list[Detection]:
    """One frame's detections from its regions' own (frame pixels, suppressed)."""
    if not regions:
        return []
    values = np.concatenate([values for values, _ in regions])
    best = np.concatenate([scores for _, scores in regions])
    kept: list[int] = []
    for index in np.argsort(-best, kind="stable"):
        if not kept or overlaps(values[index], values[kept]).max() <= NMS_IOU:
            kept.append(int(index))
    return [Detection(values[i, :4], values[i, 4:].reshape(6, 2), float(best[i])) for i in kept]

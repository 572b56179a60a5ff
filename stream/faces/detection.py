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
from dataclasses import dataclass

import cv2
import numpy as np

from stream.faces.models import DETECTOR_SIZE, TfliteModel

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


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """One input's detections as ((16,) normalised x0, y0, x1, y1 then 6 keypoints x, y;
    score), before suppression: the anchors whose score reaches :data:`MIN_SCORE`."""
    boxes = raw_boxes.reshape(-1, 16)
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.flatnonzero(scores >= MIN_SCORE)
    found = []
    for index in keep:
        values = boxes[index] / DETECTOR_SIZE
        centre = _ANCHORS[index]
        cx, cy = values[0] + centre[0], values[1] + centre[1]
        half_w, half_h = values[2] / 2, values[3] / 2
        points = values[4:].reshape(6, 2) + centre
        decoded = np.concatenate(
            [[cx - half_w, cy - half_h, cx + half_w, cy + half_h], points.ravel()]
        )
        found.append((decoded, float(scores[index])))
    return found


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def weighted_nms(found: list[tuple[np.ndarray, float]]) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted suppression: the best remaining candidate and every candidate
    overlapping it by more than :data:`NMS_IOU` become one detection, their values
    averaged by score, with the best one's score."""
    remaining = sorted(found, key=lambda item: -item[1])
    kept = []
    while remaining:
        best_values, best_score = remaining[0]
        group, rest = [], []
        for values, score in remaining:
            (group if iou(best_values, values) > NMS_IOU else rest).append((values, score))
        weights = np.array([score for _, score in group])
        merged = np.array([values for values, _ in group]).T @ weights / weights.sum()
        kept.append((merged, best_score))
        remaining = rest
    return kept


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


def detect(model: TfliteModel, rgb: np.ndarray, regions: list[Tile]) -> list[Detection]:
    """The faces the detector finds in ``regions`` of one RGB frame, in frame pixels, best
    first: each region decoded and suppressed as MediaPipe does, then the regions' faces
    suppressed together (a face seen by two tiles or two scales is kept once)."""
    if not regions:
        return []
    boxes, scores = model.run(tile_inputs(rgb, regions))
    found = []
    for tile, raw_boxes, raw_scores in zip(regions, boxes, scores, strict=True):
        for values, score in weighted_nms(decode(raw_boxes, raw_scores)):
            found.append((values * tile.side + np.tile([tile.x, tile.y], 8), score))
    found.sort(key=lambda item: -item[1])
    kept: list[tuple[np.ndarray, float]] = []
    for values, score in found:
        if all(iou(values, other) <= NMS_IOU for other, _ in kept):
            kept.append((values, score))
    return [Detection(values[:4], values[4:].reshape(6, 2), score) for values, score in kept]

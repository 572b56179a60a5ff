"""The landmark engine (MediaPipe's networks run directly, region tracking, tiled search):
crops (live and the scan's) within 0.5 gray levels of the Tasks graph's frozen crops, and
every face of a call gallery found with one id."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest
from live_support import TALKING

from engines.method import FPS
from stream.faces.detection import anchors, tiles
from stream.faces.reader import MouthCropReader
from stream.faces.stage import FaceStage
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile

DATA = Path(__file__).parent / "data"
#: docs/crops.md: the live crops may move this far (mean absolute difference, gray levels)
BOUND = 0.5


@pytest.fixture(scope="module")
def frozen():
    return np.load(DATA / "crops_tasks_graph.npz")


def frames(path: Path, count: int) -> list:
    with VideoFile(path) as video:
        return list(islice(resample(video.frames()), count))


def stage_crops(stage: FaceStage, images: list[np.ndarray]) -> list[list]:
    found = []
    for index, image in enumerate(images):
        found.append(list(stage.process(index, image, index / FPS, index == 0).crops))
    stage.close()
    return found


def test_one_face_keeps_the_crops_of_the_tasks_graph(frozen):
    ticks = frames(TALKING, 100)
    live = stage_crops(FaceStage(), [t.item for t in ticks])
    assert [len(faces) for faces in live] == [1] * 100
    crops = np.stack([faces[0].crop for faces in live]).astype(np.int16)
    assert np.abs(crops - frozen["live_talking"]).mean() <= BOUND
    (box,) = {faces[0].box for faces in live[:1]}
    assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1


def test_two_faces_keep_the_crops_of_the_tasks_graph(frozen):
    ticks = frames(DATA / "two_faces.mp4", 50)
    live = stage_crops(FaceStage(), [t.item for t in ticks])
    assert [len(faces) for faces in live] == [2] * 50
    before = frozen["live_two_faces"].reshape(50, 2, 96, 96).astype(np.int16)
    diffs = []
    for faces, old in zip(live, before, strict=True):
        new = np.stack([face.crop for face in faces]).astype(np.int16)
        straight = np.abs(new - old).mean()
        crossed = np.abs(new - old[::-1]).mean()
        diffs.append(min(straight, crossed))  # the same two faces, in either order
    assert np.mean(diffs) <= BOUND


def test_the_scan_keeps_the_crops_of_the_tasks_graph(frozen):
    reader = MouthCropReader(TALKING)
    scan = list(reader)
    frames = [round(crop.pts * FPS) for crop in scan]
    np.testing.assert_array_equal(frames, frozen["scan_talking_frames"])
    crops = np.stack([crop.crop for crop in scan]).astype(np.int16)
    difference = np.abs(crops - frozen["scan_talking"]).mean()
    assert 0 < difference <= BOUND  # another landmarker, the same faces
    assert (reader.sampled, reader.crowded) == (4, 0)


def gallery(side: int, tile: tuple[int, int], count: int) -> list[np.ndarray]:
    """``count`` frames of a side x side call gallery: the talking clip in every tile, each
    from another moment and every second one mirrored, scaled to ``tile`` (w, h)."""
    source = [t.item for t in frames(TALKING, 100)]
    width, height = tile
    out = []
    for index in range(count):
        frame = np.zeros((height * side, width * side, 3), np.uint8)
        for k in range(side * side):
            row, col = divmod(k, side)
            image = source[(index + 7 * k) % len(source)]
            image = image[:, ::-1] if k % 2 else image
            small = cv2.resize(image, tile, interpolation=cv2.INTER_AREA)
            frame[row * height : (row + 1) * height, col * width : (col + 1) * width] = small
        out.append(frame)
    return out


@pytest.mark.parametrize("side", [2, 3])
def test_every_face_of_a_gallery_is_found_within_a_second_with_one_id(side):
    """Faces about 80 px tall in a 640x360 (2x2) and 960x540 (3x3) gallery: MediaPipe's
    whole-frame detector sees them 16-20 px tall; the tiles find them all."""
    found = stage_crops(FaceStage(), gallery(side, (320, 180), FPS + 15))
    settled = found[FPS:]
    assert all(len(faces) == side * side for faces in settled)
    ids = {face.face for faces in settled for face in faces}
    assert len(ids) == side * side
    for faces in settled:  # one box per tile, each inside its tile
        tiles_hit = {(int(f.box[1] * side), int(f.box[0] * side)) for f in faces}
        assert len(tiles_hit) == side * side


def test_the_detector_has_mediapipes_anchors_and_the_tiles_cover_the_frame():
    assert anchors().shape == (896, 2)
    regions = tiles(1280, 720, 60)
    smallest = min(t.side for t in regions)
    assert smallest <= 60 / 0.2
    grid = np.zeros((720, 1280), bool)
    for t in regions:
        if t.side == smallest:
            grid[max(int(t.y), 0) : int(t.y + t.side), max(int(t.x), 0) : int(t.x + t.side)] = True
    assert grid.all()

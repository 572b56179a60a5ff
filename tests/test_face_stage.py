"""The live face stage finds more faces within a second of their arrival, keeps the ones
that stay, and closes cleanly (its crops: tests/test_landmark_engine.py)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np

from engines.method import FPS
from stream.faces.stage import FaceStage
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile
from tests.live_support import TALKING

TWO_FACES = Path(__file__).parent / "data" / "two_faces.mp4"


def frames(path: Path, count: int) -> list:
    with VideoFile(path) as video:
        return list(islice(resample(video.frames()), count))


def faces_per_frame(stage: FaceStage, ticks: list, images: list[np.ndarray]) -> list[list]:
    found = []
    for index, (tick, image) in enumerate(zip(ticks, images, strict=True)):
        found.append(list(stage.process(index, image, tick.pts, tick.restart).crops))
    stage.close()
    return found


def face_counts(right_person_in_view) -> list[int]:
    """Faces the stage reports in each frame of the two-face clip when the right person
    is blanked out of every frame ``right_person_in_view(index)`` is false for."""
    ticks = frames(TWO_FACES, 50)
    images = []
    for index, tick in enumerate(ticks):
        image = tick.item.copy()
        if not right_person_in_view(index):
            image[:, image.shape[1] // 2 :] = 0
        images.append(image)
    return [len(faces) for faces in faces_per_frame(FaceStage(max_faces=2), ticks, images)]


def test_a_second_face_is_tracked_within_a_second_of_coming_in():
    arrives = 10
    counts = face_counts(lambda index: index >= arrives)
    assert counts[:arrives] == [1] * arrives
    first_pair = counts.index(2)
    assert first_pair <= arrives + FPS
    assert counts[first_pair:] == [2] * (len(counts) - first_pair)


def test_one_face_is_never_lost_when_the_second_one_leaves():
    leaves = 10
    counts = face_counts(lambda index: index < leaves)
    assert counts[:leaves] == [2] * leaves
    assert counts[leaves:] == [1] * (len(counts) - leaves)


def test_closing_while_a_frame_is_processed_waits_for_it():
    """The pipeline closes a stream's stage from another landmark thread while a frame may
    still be in MediaPipe: close waits for it, and frames after it find no faces. The
    worker keeps processing (the clip over and over) until a frame finds none, so the test
    does not depend on how many frames it gets through before the close lands."""
    import threading

    ticks = frames(TALKING, 40)
    stage = FaceStage()
    found: list[int] = []
    started = threading.Event()

    def keep_processing() -> None:
        for index in range(4000):
            tick = ticks[index % len(ticks)]
            found.append(len(stage.process(index, tick.item, index / FPS, index == 0).crops))
            started.set()
            if found[-1] == 0:
                return

    worker = threading.Thread(target=keep_processing)
    worker.start()
    started.wait(30)
    stage.close()
    worker.join(60)
    assert not worker.is_alive() and found[-1] == 0 and len(found) < 4000
    assert set(found[:-1]) == {1}  # faces until closed (the frame under way too), none after
    after = [stage.process(9000 + k, ticks[k].item, 360.0 + k / FPS, False) for k in range(3)]
    assert [len(frame.crops) for frame in after] == [0, 0, 0]


def test_faces_keep_their_ids_when_the_source_changes_its_resolution():
    """A browser's encoder sends 640x360, then 800x450, then 1280x720 while its bandwidth
    estimate ramps up: the two people keep their ids through both changes."""
    import cv2

    ticks = frames(TWO_FACES, 48)
    sizes = [(640, 360)] * 16 + [(800, 450)] * 16 + [(1280, 720)] * 16
    images = [cv2.resize(t.item, size) for t, size in zip(ticks, sizes, strict=True)]
    found = faces_per_frame(FaceStage(), ticks, images)
    assert [len(faces) for faces in found[1:]] == [2] * 47
    assert {face.face for faces in found[1:] for face in faces} == {0, 1}


def test_a_hand_over_the_mouth_for_a_second_keeps_the_face_and_its_id():
    """A skin-coloured block over the lower half of the face for 25 frames (a hand over the
    mouth): the face is the same face, under the same id, before, during and after."""
    ticks = frames(TALKING, 100)
    stage = FaceStage()
    first = stage.process(0, ticks[0].item, ticks[0].pts, True).crops[0]
    x0, y0, x1, y1 = first.box
    height, width = ticks[0].item.shape[:2]
    hand = (
        slice(int((y0 + y1) / 2 * height), int(y1 * height)),
        slice(int(x0 * width), int(x1 * width)),
    )
    images = []
    for index, tick in enumerate(ticks):
        image = tick.item.copy()
        if 40 <= index < 65:
            image[hand] = (205, 160, 130)
        images.append(image)
    found = faces_per_frame(stage, ticks[1:], images[1:])
    ids = {face.face for faces in found for face in faces}
    assert ids == {first.face}
    assert sum(1 for faces in found[70:] if faces) == len(found[70:])  # seen again after


def test_a_layout_change_ends_old_ids_within_a_second_and_never_shows_a_face_twice():
    """A call app re-lays out its gallery: the person on the right moves to a tile further
    right. The id of the old place ends within a second, the face in the new place is
    followed under a new id, and no frame reports more faces than there are people."""
    ticks = frames(TWO_FACES, 50)
    half = ticks[0].item.shape[1] // 2
    images = []
    for index in range(100):
        image = ticks[index % 50].item
        canvas = np.zeros((image.shape[0], 4 * half, 3), np.uint8)
        canvas[:, :half] = image[:, :half]
        place = 1 if index < 25 else 3  # the right-hand person's tile, before and after
        canvas[:, place * half : (place + 1) * half] = image[:, half:]
        images.append(canvas)
    stage = FaceStage()
    seen, ids, ended_at = [], [], {}
    for index, image in enumerate(images):
        found = stage.process(index, image, index / FPS, index == 0)
        seen.append(len(found.crops))
        ids.append({face.face: face.box[0] for face in found.crops})
        ended_at.update((face, index) for face in found.ended)
    stage.close()
    assert max(seen) <= 2 and all(count == 2 for count in seen[60:])
    (moved,) = [face for face, x0 in ids[24].items() if x0 > 0.2]  # the right-hand one
    assert moved in ended_at and ended_at[moved] - 25 <= FPS + 2  # gone within about 1 s
    assert moved not in ids[-1] and len(ids[-1]) == 2  # the new place has a new id

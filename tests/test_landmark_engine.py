"""The landmark engine (MediaPipe's networks run directly, region tracking, tiled search):
crops (live and the scan's) within 0.5 gray levels of the Tasks graph's frozen crops, and
every face of a call gallery found with one id."""

from __future__ import annotations

import resource
import signal
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest

from engines.method import FPS
from errors import LipForensicsError, LipForensicsWarning
from stream.faces.detection import anchors, tile_inputs, tiles, whole_frame
from stream.faces.engine import StreamFaces, track
from stream.faces.models import FaceModels
from stream.faces.networks import BUNDLE_PATH, DETECTOR, bundled_model
from stream.faces.reader import MouthCropReader
from stream.faces.roi import network_inputs, roi_from_mesh
from stream.faces.stage import FaceStage
from stream.faces.tflite_onnx import cached_onnx
from stream.faces.tile_memory import CHANGE, TileMemory, face_blocks
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile
from tests.live_support import TALKING

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


def same_networks(models: FaceModels, reference: FaceModels) -> None:
    """``models`` give ``reference``'s landmarks for the faces of a real clip (within 0.01
    input pixels), its detector's outputs, and, tracking on their own, the same crops."""
    images = [t.item for t in frames(DATA / "two_faces.mp4", 25)]
    tracked = StreamFaces()
    jobs = [
        (image, roi_from_mesh(face.mesh))
        for index, image in enumerate(images)
        for face in tracked.track(reference, image, index / FPS)
    ]
    assert len(jobs) == 2 * len(images)
    batch = network_inputs(jobs, reference.landmarks.network.size)
    expected = reference.landmarks.run(batch)
    found = models.landmarks.run(batch)
    assert np.abs(found[0] - expected[0]).max() < 0.01  # 478 x 3 points, input pixels
    assert np.abs(found[1] - expected[1]).max() < 1e-3  # face presence logit
    height, width = images[0].shape[:2]
    regions = [whole_frame(width, height), *tiles(width, height, 60)[1:4]]
    tiled = tile_inputs(images[0], regions)
    for mine, theirs in zip(models.detector.run(tiled), reference.detector.run(tiled), strict=True):
        assert mine.shape == theirs.shape
        assert np.abs(mine - theirs).max() < 1e-3 * max(np.abs(theirs).max(), 1.0)
    crops = [stage_crops(FaceStage(models=m), images) for m in (reference, models)]
    differences = [
        np.abs(a.crop.astype(np.int16) - b.crop).mean()
        for one, two in zip(*crops, strict=True)
        for a, b in zip(sorted(one, key=_id), sorted(two, key=_id), strict=True)
    ]
    assert len(differences) == 2 * len(images) and np.mean(differences) < 0.1


def test_openvino_gives_litert_landmarks_on_real_frames():
    """The default runtime (OpenVINO, reading the .tflite files) against LiteRT's."""
    same_networks(FaceModels(runtime="openvino"), FaceModels(runtime="litert"))


@pytest.mark.parametrize("runtime", ["openvino", "litert"])
def test_a_batch_split_over_copies_gives_each_image_its_own_outputs(runtime):
    """Six search tiles of a real frame through the detector at once (split over a copy
    of the network per core, in threads) and one by one: the same outputs, in order."""
    image = frames(DATA / "two_faces.mp4", 1)[0].item
    height, width = image.shape[:2]
    tiled = tile_inputs(image, tiles(width, height, 60)[:6])
    detector = FaceModels(runtime=runtime).detector
    together = detector.run(tiled)
    alone = [detector.run(tile[None]) for tile in tiled]
    for index, outputs in enumerate(alone):
        for mine, theirs in zip(outputs, together, strict=True):
            np.testing.assert_allclose(mine[0], theirs[index], rtol=1e-5, atol=1e-5)


def test_the_onnx_models_give_litert_landmarks_on_real_frames(tmp_path):
    """The converted networks (stream/faces/tflite_onnx.py) on ONNX Runtime, batched,
    against LiteRT's; converted once, then reused."""
    onnx = FaceModels(runtime="onnxruntime", cache_dir=tmp_path)
    same_networks(onnx, FaceModels(runtime="litert"))
    (converted,) = tmp_path.glob("face_models/*/face_landmarks_detector.onnx")
    made = converted.stat().st_mtime_ns
    FaceModels(runtime="onnxruntime", cache_dir=tmp_path)
    assert converted.stat().st_mtime_ns == made


def test_a_corrupt_converted_face_model_is_converted_again_and_a_failed_write_leaves_nothing(
    tmp_path,
):
    content = bundled_model(DETECTOR.name, BUNDLE_PATH)
    path = cached_onnx(content, DETECTOR, tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])  # cut short, as by a crash mid-write elsewhere
    with pytest.warns(LipForensicsWarning, match="corrupt"):
        assert cached_onnx(content, DETECTOR, tmp_path) == path
    assert path.read_bytes() == good
    path.unlink()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    ignored = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))  # a write past 1000 bytes fails
    try:
        with pytest.raises(LipForensicsError, match="cannot write"):
            cached_onnx(content, DETECTOR, tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, ignored)
    assert list(path.parent.iterdir()) == []


class Counted:
    """A face model whose calls and images are counted."""

    def __init__(self, model) -> None:
        self.model, self.calls, self.images = model, 0, 0
        self.network = model.network

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        self.calls += 1
        self.images += len(images)
        return self.model.run(images)


def test_streams_tracked_together_share_each_batch_and_find_what_they_find_alone():
    one = [t.item for t in frames(TALKING, 30)]
    two = [t.item for t in frames(DATA / "two_faces.mp4", 30)]
    models = FaceModels()
    alone = [StreamFaces(), StreamFaces()]
    expected = [
        [alone[k].track(models, image, index / FPS) for index, image in enumerate(clip)]
        for k, clip in enumerate((one, two))
    ]
    models.detector, models.landmarks = Counted(models.detector), Counted(models.landmarks)
    together = [StreamFaces(), StreamFaces()]
    for index, pair in enumerate(zip(one, two, strict=True)):
        calls = models.detector.calls
        jobs = [(stream, image, index / FPS) for stream, image in zip(together, pair, strict=True)]
        found = track(models, jobs)
        made = models.detector.calls - calls  # every stream's regions in one call
        assert made <= 1 and (index > 0 or made == 1)  # the first frame: every tile of both
        for faces, clip in zip(found, expected, strict=True):
            assert [f.track for f in faces] == [f.track for f in clip[index]]
            for mine, theirs in zip(faces, clip[index], strict=True):
                np.testing.assert_array_equal(mine.mesh, theirs.mesh)
    # the 3 tracked faces of both streams in one landmark call a frame (and a few calls
    # for new faces), not one call per stream
    assert models.landmarks.images >= 3 * 30 and models.landmarks.calls <= 30 + 3


def _id(crop) -> int:
    return crop.face


def test_the_face_models_keep_opencv_on_the_calling_thread():
    """OpenCV's worker pool costs CPU per face for the face work's small warps."""
    cv2.setNumThreads(2)
    FaceModels()
    assert cv2.getNumThreads() == 1


def test_an_unknown_runtime_is_a_one_line_error():
    with pytest.raises(LipForensicsError, match="unknown face model runtime 'tpu'"):
        FaceModels(runtime="tpu")


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


def test_a_still_scene_is_not_searched_again_and_a_face_coming_in_is_found_within_a_second():
    """The detector's regions that have not changed keep what it found there
    (stream/faces/tile_memory.py): a still picture costs no detector call after its first
    search, and a person appearing in it is still followed within a second."""
    still = frames(DATA / "two_faces.mp4", 1)[0].item
    alone = still.copy()
    alone[:, still.shape[1] // 2 :] = 0
    arrives = 30
    models = FaceModels()
    models.detector = Counted(models.detector)
    stage = FaceStage(models=models)
    counts, calls = [], []
    for index in range(arrives + FPS + 5):
        image = still if index >= arrives else alone
        counts.append(len(stage.process(index, image, index / FPS, index == 0).crops))
        calls.append(models.detector.images)
    stage.close()
    assert counts[:arrives] == [1] * arrives
    assert calls[arrives - 1] == calls[0]  # nothing changed: no tile run again
    assert counts.index(2) <= arrives + FPS
    assert counts[-5:] == [2] * 5


def test_a_region_is_run_again_once_a_block_of_it_changes():
    image = np.full((128, 128, 3), 90, np.uint8)
    found = (np.zeros((0, 16)), np.zeros(0))
    memory = TileMemory()
    assert memory.recall("tile", image) is None  # never run there
    memory.keep("tile", image, found)
    assert memory.recall("tile", image) is found
    noisy = image + np.random.default_rng(0).integers(0, 2 * CHANGE, image.shape, np.uint8)
    noisy -= CHANGE
    assert memory.recall("tile", noisy) is found  # noise averages out over a block
    patched = image.copy()
    patched[40:48, 72:80] += CHANGE + 1  # one 8 x 8 block
    assert memory.recall("tile", patched) is None
    memory.clear()
    assert memory.recall("tile", image) is None


def test_the_blocks_around_a_tracked_face_do_not_count_as_change():
    image = np.full((128, 128, 3), 90, np.uint8)
    found = (np.zeros((0, 16)), np.zeros(0))
    memory = TileMemory()
    memory.keep("tile", image, found)
    face = np.array([40.0, 40.0, 72.0, 80.0])  # frame pixels; the region is the frame here
    mask = face_blocks(0.0, 0.0, 128.0, [face])
    assert mask[3:12, 3:11].all() and mask.sum() == 9 * 8  # the 1.5x square: x 26-86, y 30-90
    talking = image.copy()
    talking[56:72, 48:64] += 50  # the tracked face's mouth moves
    assert memory.recall("tile", talking) is None
    assert memory.recall("tile", talking, mask) is found
    beside = talking.copy()
    beside[96:120, 100:124] += 50  # something beside it
    assert memory.recall("tile", beside, mask) is None
    assert not face_blocks(200.0, 0.0, 128.0, [face]).any()  # a region the face is not in


def test_a_rejected_detection_is_forgotten_in_every_region_that_remembers_it():
    image = np.full((128, 128, 3), 90, np.uint8)
    false_face = [10.0, 10.0, 40.0, 40.0]
    values = np.array([false_face + [0.0] * 12, [60.0, 60.0, 100.0, 100.0] + [0.0] * 12])
    memory = TileMemory()
    memory.keep("small tile", image, (values, np.array([0.9, 0.8])))
    memory.keep("large tile", image, (values[:1], np.array([0.7])))
    memory.reject(np.array(false_face) + 0.25)  # as the detection the engine was given
    kept, scores = memory.recall("small tile", image)
    assert kept[:, :4].tolist() == [[60.0, 60.0, 100.0, 100.0]] and scores.tolist() == [0.8]
    assert len(memory.recall("large tile", image)[0]) == 0  # still unchanged: no new call


class Presence(Counted):
    """A landmark model whose face-presence scores are kept, per call."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.scores: list[list[float]] = []

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        outputs = super().run(images)
        self.scores.append((1 / (1 + np.exp(-outputs[1].reshape(-1)))).tolist())
        return outputs


def test_a_detection_without_a_face_is_not_tried_again_while_its_region_stays_still():
    """The talking clip scaled to 1280 x 720: the detector also finds a face-like patch
    beside the speaker, in which the landmark network finds no face. That costs one landmark
    call on the first frame, not one on every round of the search (every second) while the
    background stays as it was."""
    clip = [
        cv2.resize(t.item, (1280, 720), interpolation=cv2.INTER_AREA) for t in frames(TALKING, 80)
    ]
    models = FaceModels()
    models.landmarks = Presence(models.landmarks)
    faces = StreamFaces()
    tracked = [len(faces.track(models, image, index / FPS)) for index, image in enumerate(clip)]
    assert tracked == [1] * len(clip)
    rejected = [sum(s < 0.5 for s in scores) for scores in models.landmarks.scores]
    assert rejected[0] >= 1  # the first search's whole frame: the false detection
    assert sum(rejected) == rejected[0]  # never tried again over three rounds of the search


def test_a_talking_face_costs_no_search_and_a_face_beside_it_is_found_within_a_second():
    """Tracked faces' blocks are left out of the search's change test: while a close-up
    face talks beside a black half the detector is not run again (without the mask its
    mouth's blocks send some tiles back to it), and a face appearing in the black half at
    frame 30 is followed within a second."""
    clip = [cv2.resize(t.item, None, fx=2, fy=2) for t in frames(TALKING, 100)]
    height, width = clip[0].shape[:2]
    arrives = 30
    models = FaceModels()
    models.detector = Counted(models.detector)
    stage = FaceStage(models=models)
    counts, calls = [], []
    for index in range(arrives + FPS):
        image = np.zeros((height, 2 * width, 3), np.uint8)
        image[:, :width] = clip[index]
        if index >= arrives:
            image[:, width:] = clip[index - arrives][:, ::-1]
        counts.append(len(stage.process(index, image, index / FPS, index == 0).crops))
        calls.append(models.detector.images)
    stage.close()
    assert counts[:arrives] == [1] * arrives
    assert calls[arrives - 1] == calls[FPS // 2]  # the search ran on, with no detector call
    assert 2 in counts[arrives : arrives + FPS]

"""The live face stage's faster path (landmarks read from MediaPipe's C result, OpenCV warp)
gives the same landmarks and crops within 0.5 gray levels of the reference path."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest

from stream.faces.align import mean_face, mouth_crop
from stream.faces.landmarks import FaceLandmarks
from stream.faces.live_warp import warp_patch_opencv
from stream.faces.mediapipe_results import mesh_reader
from stream.faces.stage import FaceStage
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile
from tests.live_support import TALKING

#: docs/crops.md: the live crops may move this far (mean absolute difference, gray levels)
BOUND = 0.5


@pytest.fixture(scope="module")
def ticks():
    with VideoFile(TALKING) as video:
        return list(islice(resample(video.frames()), 50))


def crops(ticks, reference_path: bool) -> dict[tuple[int, int], np.ndarray]:
    stage = FaceStage(reference_path=reference_path)
    found = {}
    for index, tick in enumerate(ticks):
        for face in stage.process(index, tick.item, tick.pts, tick.restart).crops:
            found[index, face.face] = face.crop
    stage.close()
    return found


def test_live_crops_stay_within_half_a_gray_level_of_the_reference_path(ticks):
    reference, live = crops(ticks, reference_path=True), crops(ticks, reference_path=False)
    assert len(reference) >= 45 and reference.keys() == live.keys()
    diff = np.abs(
        np.stack([live[k] for k in reference]).astype(np.int16)
        - np.stack([reference[k] for k in reference])
    )
    assert diff.mean() <= BOUND
    assert diff.max() <= 2  # rounding, not a different crop


@pytest.mark.skipif(mesh_reader() is None, reason="this MediaPipe has no C result to read")
def test_meshes_read_from_the_c_result_equal_the_public_results(ticks):
    with FaceLandmarks(2) as fast, FaceLandmarks(2, native_results=False) as public:
        for tick in ticks[:20]:
            ours, theirs = fast.detect(tick.item, tick.pts), public.detect(tick.item, tick.pts)
            assert len(ours) == len(theirs) == 1
            np.testing.assert_array_equal(ours[0], theirs[0])


def test_the_opencv_warp_handles_patches_off_the_frame(ticks):
    rgb = ticks[0].item
    with FaceLandmarks(1) as marks:
        (points,) = marks.detect(rgb, 0.0)
    reference = mean_face()
    shifted = points + (rgb.shape[1] * 0.45, 0.0)  # the mouth half off the right edge
    expected, _, _ = mouth_crop(rgb, shifted, shifted, reference)
    got, _, _ = mouth_crop(rgb, shifted, shifted, reference, warp_patch_opencv)
    assert (expected == 0).any()  # zeros outside the frame, in both
    assert np.abs(got.astype(int) - expected).mean() <= BOUND
    far = points + (rgb.shape[1] * 5.0, 0.0)  # wholly outside
    got, _, _ = mouth_crop(rgb, far, far, reference, warp_patch_opencv)
    assert not got.any()

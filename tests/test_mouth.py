"""Mouth crops: the 478 -> 68 mapping, smoothing, alignment geometry, and real-video crops."""

from __future__ import annotations

import math
import re
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from commands.cli import main
from stream.faces.align import (
    MOUTH_POINTS,
    STABLE_POINTS,
    apply_transform,
    crop_box,
    mean_face,
    similarity_transform,
    to_gray,
    warp_patch,
)
from stream.faces.landmarks import IBUG68_FROM_MEDIAPIPE, FaceLandmarks, to_ibug68
from stream.faces.reader import MouthCrops, extract_mouth_crops
from stream.faces.smoothing import Smoother, Smoothing, smooth
from stream.sources.video_file import VideoFile
from tests.live_support import TALKING

DATA = Path(__file__).parent / "data"

# The mapping as the spec (docs/lipforensics.md) writes it, parsed independently.
SPEC_MAPPING = (
    "127,234,93,58,172,136,149,148,152,377,378,365,397,288,323,454,356;"
    "70,63,105,66,107,336,296,334,293,300;168,6,195,4;98,97,2,326,327;"
    "33+130,160,158,155+173,153,144;382+398,385,387,263,373,380;"
    "61,39,37,0,267,269,291,405,314,17,84,181;78,82,13,312,308,317,14,87"
)


@pytest.fixture(scope="session")
def talking() -> MouthCrops:
    return extract_mouth_crops(TALKING)


def test_mapping_matches_the_spec_with_68_unique_entries():
    spec = [
        tuple(int(i) for i in entry.split("+"))
        for group in SPEC_MAPPING.split(";")
        for entry in group.split(",")
    ]
    assert list(IBUG68_FROM_MEDIAPIPE) == spec
    assert len(set(IBUG68_FROM_MEDIAPIPE)) == 68
    assert all(0 <= i < 478 for entry in spec for i in entry)


def test_two_vertex_entries_are_averaged():
    mesh = np.stack([np.arange(478.0), 2 * np.arange(478.0), np.zeros(478)], axis=1)
    points = to_ibug68(mesh)
    assert points.shape == (68, 2)
    assert points[36].tolist() == [(33 + 130) / 2, 33 + 130]
    assert points[45].tolist() == [263, 526]
    assert points[33].tolist() == [2, 4]  # the stable point under the nose


def test_alignment_recovers_a_known_similarity_exactly():
    rng = np.random.default_rng(1)
    source = rng.uniform(0, 400, size=(5, 2))
    angle, scale, shift = math.radians(17), 1.3, np.array([-42.5, 11.25])
    rotation = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    target = source @ rotation.T + shift
    matrix = similarity_transform(source, target)
    np.testing.assert_allclose(matrix[:, :2], rotation, atol=1e-12)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)
    np.testing.assert_allclose(apply_transform(matrix, source), target, atol=1e-9)


def test_alignment_is_the_least_squares_optimum():
    rng = np.random.default_rng(2)
    source = rng.uniform(0, 300, size=(5, 2))
    target = rng.uniform(0, 300, size=(5, 2))
    matrix = similarity_transform(source, target)

    def cost(m: np.ndarray) -> float:
        return float(((apply_transform(m, source) - target) ** 2).sum())

    best = cost(matrix)
    for _ in range(200):  # no nearby similarity does better
        a, b, tx, ty = rng.normal(scale=[1e-3, 1e-3, 0.1, 0.1])
        nudge = np.array([[a, -b, tx], [b, a, ty]])
        assert cost(matrix + nudge) >= best


@pytest.mark.parametrize("name", ["lookahead", "causal", "none", "ahead:3", "ahead:11"])
@pytest.mark.parametrize("length", [1, 5, 11, 12, 13, 40])
def test_streaming_smoother_equals_the_definition(name, length):
    landmarks = np.random.default_rng(length).normal(size=(length, 68, 2))
    plan = Smoothing.named(name)
    smoother: Smoother[int] = Smoother(plan)
    released = [pair for i in range(length) for pair in smoother.push(landmarks[i], i)]
    released += smoother.flush()
    assert [item for item, _ in released] == list(range(length))
    streamed = np.stack([points for _, points in released])
    for i in range(length):
        if plan.reference_end:  # frames i..i+11; the last 11 reuse the last full window
            span = min(length, 12)
            first = min(i, length - span)
            expected = landmarks[first : first + span].mean(axis=0)
        else:
            expected = landmarks[
                max(0, i + plan.ahead - plan.window + 1) : i + plan.ahead + 1
            ].mean(0)
        np.testing.assert_allclose(streamed[i], expected, atol=1e-12)
    np.testing.assert_allclose(smooth(landmarks, plan), streamed, atol=1e-12)


def test_smoother_latency_is_its_look_ahead():
    for name, ahead in [("lookahead", 11), ("causal", 0), ("ahead:2", 2)]:
        smoother: Smoother[int] = Smoother(Smoothing.named(name))
        outputs = [len(smoother.push(np.zeros((68, 2)), i)) for i in range(20)]
        assert outputs == [0] * ahead + [1] * (20 - ahead)


def test_unknown_smoothing_is_refused():
    with pytest.raises(ValueError, match="unknown smoothing"):
        Smoothing.named("ahead:12")


def test_crop_box_rounds_half_to_even_and_stays_inside():
    assert crop_box(np.array([[100.5, 100.5]])) == (52, 52)  # round(100.5) = 100
    assert crop_box(np.array([[101.5, 99.4]])) == (51, 54)
    assert crop_box(np.array([[10.0, 250.0]])) == (256 - 96, 0)
    assert crop_box(np.array([[-30.0, 20.0]])) == (0, 0)


def test_warp_patch_is_bilinear_with_zeros_outside():
    rng = np.random.default_rng(3)
    image = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (9, 9), 3)
    matrix = np.array([[1.1, -0.2, -20.3], [0.2, 1.1, 13.7]])
    ours = warp_patch(image, matrix, 100, 80).astype(int)
    full = cv2.warpAffine(image, matrix, (256, 256), flags=cv2.INTER_LINEAR)
    theirs = full[100:196, 80:176].astype(int)
    # OpenCV rounds and snaps positions to 1/32 px; ours truncates like the reference
    assert np.abs(ours - theirs).max() <= 2
    assert 0 <= (theirs - ours).mean() <= 1
    far = np.array([[1.0, 0.0, 1000.0], [0.0, 1.0, 0.0]])
    assert not warp_patch(image, far, 0, 0).any()
    shifted = warp_patch(image, np.array([[1.0, 0.0, -7.0], [0.0, 1.0, -5.0]]), 0, 0)
    assert np.abs(shifted.astype(int) - image[5:101, 7:103]).max() <= 1


def test_gray_is_pil_convert_L_for_every_colour():
    values = np.arange(256**3, dtype=np.uint32)
    rgb = np.stack([values >> 16, (values >> 8) & 255, values & 255], axis=-1).astype(np.uint8)
    rgb = rgb.reshape(4096, 4096, 3)
    np.testing.assert_array_equal(to_gray(rgb), np.asarray(Image.fromarray(rgb).convert("L")))


def test_real_clip_has_a_face_in_nearly_every_frame(talking):
    assert talking.frames == 100
    assert len(talking.crops) >= 0.99 * talking.frames
    assert talking.crops.shape[1:] == (96, 96) and talking.crops.dtype == np.uint8
    assert talking.runs == ((0, len(talking.crops)),)
    np.testing.assert_allclose(np.diff(talking.pts), 0.04, atol=1e-6)


def _lip_centres(crops: MouthCrops) -> np.ndarray:
    """Lip centre (x, y) of every crop, in the crop's own pixels."""
    aligned = [
        apply_transform(matrix, points[MOUTH_POINTS]).mean(axis=0)
        for matrix, points in zip(crops.transforms, crops.landmarks, strict=True)
    ]
    return np.array(aligned) - crops.boxes[:, ::-1]


def test_real_crops_are_centred_on_the_mouth(talking):
    np.testing.assert_allclose(_lip_centres(talking), 48.0, atol=0.51)
    # independent of the landmarks: the dark open mouth (below the nostrils) is central
    lower = talking.crops[:, 24:, :].astype(float)
    rows, cols = np.mgrid[24:96, 0:96]
    dark = lower <= np.percentile(lower, 2, axis=(1, 2), keepdims=True)
    centre_x = np.array([cols[mask].mean() for mask in dark])
    centre_y = np.array([rows[mask].mean() for mask in dark])
    assert abs(np.median(centre_x) - 48) < 6 and abs(np.median(centre_y) - 48) < 6


def test_real_crops_move_little_between_frames(talking):
    # where the lip centre lands in the aligned frame, frame to frame
    aligned = _lip_centres(talking) + talking.boxes[:, ::-1]
    steps = np.linalg.norm(np.diff(aligned, axis=0), axis=1)
    assert np.median(steps) < 1.0 and steps.max() < 4.0
    # the scale is steady and near the mean face's: eye corners 36 and 45 about as far apart
    eyes = np.array(
        [
            apply_transform(m, p[[36, 45]])
            for m, p in zip(talking.transforms, talking.landmarks, strict=True)
        ]
    )
    spacing = np.linalg.norm(eyes[:, 1] - eyes[:, 0], axis=1)
    reference = np.linalg.norm(mean_face()[45] - mean_face()[36])
    assert spacing.max() / spacing.min() < 1.03
    assert np.abs(spacing / reference - 1).max() < 0.1


def test_resampled_clips_give_25_fps_crops():
    for name in ("talking_30fps.mp4", "talking_24fps.mp4"):
        crops = extract_mouth_crops(DATA / name, smoothing="causal")
        assert crops.frames == 75 and len(crops.crops) == 75, name


def test_video_without_a_face_gives_no_crops():
    crops = extract_mouth_crops(DATA / "no_face.mp4")
    assert crops.frames == 48
    assert crops.crops.shape == (0, 96, 96)
    assert crops.runs == ()


def test_causal_crops_stay_close_to_the_reference(talking):
    causal = extract_mouth_crops(TALKING, smoothing="causal")
    difference = np.abs(causal.crops.astype(int) - talking.crops.astype(int)).mean()
    consecutive = np.abs(np.diff(talking.crops.astype(int), axis=0)).mean()
    assert 0 < difference < consecutive


def test_crops_command_saves_the_array_and_a_contact_sheet(tmp_path, capsys):
    out = tmp_path / "crops.npy"
    assert main(["crops", str(TALKING), "--out", str(out)]) == 0
    crops = np.load(out)
    assert crops.shape == (100, 96, 96) and crops.dtype == np.uint8
    sheet = np.asarray(Image.open(out.with_suffix(".png")))
    assert sheet.shape == (5 * 96, 20 * 96)
    np.testing.assert_array_equal(sheet[96:192, 96:192], crops[21])
    assert "100 crops of 100 frames" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("video", "message"),
    [
        ("no_face.mp4", "no face found in .*no_face.mp4 \\(48 frames at 25 fps\\)"),
        ("missing.mp4", "video file not found"),
        ("README.md", "cannot read .* as a video"),
    ],
)
def test_crops_command_fails_with_one_line(tmp_path, capsys, video, message):
    out = tmp_path / "crops.npy"
    assert main(["crops", str(DATA / video), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error
    assert re.search(message, error) and not out.exists()


def test_crops_match_the_reference_pipeline_bit_for_bit(talking):
    """The authors' steps with the libraries they used: scikit-image's similarity estimate
    and full 256 x 256 warp, the patch cut from it, PIL's grayscale."""
    from skimage import transform

    with VideoFile(TALKING) as video:
        frames = [rgb for _, rgb in video.frames()]
    smoothed = smooth(talking.landmarks, Smoothing.named("lookahead"))
    stable = list(STABLE_POINTS)
    for index, (rgb, own, points) in enumerate(
        zip(frames, talking.landmarks, smoothed, strict=True)
    ):
        estimate = transform.estimate_transform("similarity", points[stable], mean_face()[stable])
        aligned = transform.warp(rgb, inverse_map=estimate.inverse, output_shape=(256, 256))
        aligned = (aligned * 255).astype("uint8")
        cx, cy = np.clip(estimate(own[48:68]).mean(axis=0), 48, 208)
        patch = aligned[round(cy) - 48 : round(cy) + 48, round(cx) - 48 : round(cx) + 48]
        expected = np.asarray(Image.fromarray(patch).convert("L"))
        np.testing.assert_array_equal(talking.crops[index], expected, err_msg=f"frame {index}")


@pytest.fixture(scope="module")
def first_frames() -> list[np.ndarray]:
    with VideoFile(TALKING) as video:
        return [rgb for _, rgb in islice(video.frames(), 5)]


def test_several_faces_come_largest_first(first_frames):
    with FaceLandmarks(num_faces=2) as landmarker:
        for index, frame in enumerate(first_frames):
            face = frame[30:300, 100:330]  # 230 x 270 around the face
            canvas = np.zeros((300, 460, 3), dtype=np.uint8)
            canvas[40:256, 10:194] = cv2.resize(face, (184, 216))  # smaller copy on the left
            canvas[:270, 230:] = face
            faces = landmarker.detect(canvas, index / 25)
            assert len(faces) == 2
            widths = [np.ptp(points[:, 0]) for points in faces]
            assert widths[0] > widths[1] * 1.1
            assert faces[0][:, 0].mean() > 230 > faces[1][:, 0].mean()


def test_landmarker_accepts_timestamps_that_go_back(first_frames):
    with FaceLandmarks() as landmarker:
        counts = [len(landmarker.detect(first_frames[0], pts)) for pts in (5.0, 5.0, 1.0, 1.04)]
    assert counts == [1, 1, 1, 1]

"""Each synthetic manipulation changes the mouth region as intended, and only it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream.faces.align import mean_face
from tests.live_support import TALKING
from training.manipulations import (
    MANIPULATIONS,
    Footage,
    manipulate,
    mouth_mask,
    write_video,
)

FRAMES, HEIGHT, WIDTH = 30, 240, 256
DATA = Path(__file__).parent / "data"


def textured_footage(seed: int) -> Footage:
    """Random texture frames, all with the same landmarks (a mean face in the frame), so
    every alignment is the identity and pasted pixels can be compared exactly."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    landmarks = np.repeat((mean_face() * 0.9 + (10, 0))[None], FRAMES, axis=0)
    return Footage(frames, landmarks)


@pytest.fixture(scope="module")
def footage() -> Footage:
    return textured_footage(1)


@pytest.fixture(scope="module")
def regions(footage: Footage) -> tuple[np.ndarray, np.ndarray]:
    """(core, outside): where the mask is fully on, and where it is off."""
    mask = mouth_mask(footage.landmarks[0], HEIGHT, WIDTH)
    return mask > 0.999, mask < 1e-4


def core_of(frames: np.ndarray, core: np.ndarray) -> np.ndarray:
    return frames[:, core].astype(int)


def test_the_mask_covers_the_lips_and_fades_out(footage: Footage) -> None:
    mask = mouth_mask(footage.landmarks[0], HEIGHT, WIDTH)
    lips = np.rint(footage.landmarks[0, 48:68]).astype(int)
    assert (mask[lips[:, 1], lips[:, 0]] > 0.9).all()
    centre = np.rint(footage.landmarks[0, 48:68].mean(axis=0)).astype(int)
    assert mask[centre[1], centre[0]] > 0.999  # the middle of the mouth is fully pasted
    assert 0.005 < mask.mean() < 0.1  # the mouth region, not the face
    assert ((mask > 0.05) & (mask < 0.95)).any()  # feathered edge


@pytest.mark.parametrize("kind", sorted(set(MANIPULATIONS) - {"swap"}))
def test_only_the_mouth_region_changes(kind: str, footage: Footage, regions) -> None:
    core, outside = regions
    out = manipulate(footage, kind, seed=3)
    assert out.shape == footage.frames.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, outside], footage.frames[:, outside])
    assert not np.array_equal(out[:, core], footage.frames[:, core])


def test_freeze_holds_one_mouth_while_the_rest_changes(footage: Footage, regions) -> None:
    core, outside = regions
    out = core_of(manipulate(footage, "freeze", seed=0), core)
    assert np.abs(out - out[0]).max() <= 1  # the mouth is constant across frames
    source = core_of(footage.frames, core)
    anchor = int(np.argmin(np.abs(source - out[0]).mean(axis=(1, 2))))
    assert np.abs(source[anchor] - out[0]).max() <= 1  # and it is one of the clip's mouths
    rest = footage.frames[:, outside].astype(int)
    assert (np.abs(np.diff(rest, axis=0)).mean(axis=1) > 10).all()  # the rest still changes


def test_shift_takes_the_mouth_from_a_fixed_offset_in_time(footage: Footage, regions) -> None:
    core, _ = regions
    out, source = core_of(manipulate(footage, "shift", seed=0), core), core_of(footage.frames, core)
    offset = int(np.argmin([np.abs(out[0] - s).mean() for s in source]))
    assert offset != 0
    for t in range(FRAMES):
        assert np.abs(out[t] - source[(t + offset) % FRAMES]).max() <= 1


def test_stutter_holds_each_mouth_for_several_frames(footage: Footage, regions) -> None:
    core, _ = regions
    out, source = (
        core_of(manipulate(footage, "stutter", seed=0), core),
        core_of(footage.frames, core),
    )
    changes = [t for t in range(1, FRAMES) if np.abs(out[t] - out[t - 1]).max() > 1]
    step = changes[0]
    assert 3 <= step <= 5 and changes == list(range(step, FRAMES, step))
    for t in range(FRAMES):
        assert np.abs(out[t] - source[t - t % step]).max() <= 1


def test_flicker_jitters_each_frame_differently(footage: Footage, regions) -> None:
    core, _ = regions
    out, source = (
        core_of(manipulate(footage, "flicker", seed=0), core),
        core_of(footage.frames, core),
    )
    brightness = out.mean(axis=(1, 2)) / source.mean(axis=(1, 2))
    assert brightness.std() > 0.03  # per-frame brightness changes
    assert (np.abs(out - source).mean(axis=(1, 2)) > 5).all()  # every frame is touched


def test_swap_pastes_the_donor_mouth(footage: Footage, regions) -> None:
    core, outside = regions
    donor = textured_footage(2)
    out = manipulate(footage, "swap", seed=0, donor=donor)
    np.testing.assert_array_equal(out[:, outside], footage.frames[:, outside])
    pasted, own = core_of(out, core), core_of(footage.frames, core)
    theirs = core_of(donor.frames, core)
    start = int(np.argmin([np.abs(pasted[0] - d).mean() for d in theirs]))
    for t in range(FRAMES):
        # the donor's mouth, colour-shifted by a few levels at most (same texture statistics)
        assert np.abs(pasted[t] - theirs[(start + t) % FRAMES]).mean() < 3
        assert np.abs(pasted[t] - own[t]).mean() > 40


@pytest.mark.parametrize("kind", sorted(MANIPULATIONS))
def test_manipulations_are_deterministic(kind: str, footage: Footage) -> None:
    donor = textured_footage(2)
    first = manipulate(footage, kind, seed=5, donor=donor)
    np.testing.assert_array_equal(first, manipulate(footage, kind, seed=5, donor=donor))


def test_bad_requests_are_refused(footage: Footage) -> None:
    with pytest.raises(ValueError, match="unknown manipulation"):
        manipulate(footage, "morph")
    with pytest.raises(ValueError, match="donor"):
        manipulate(footage, "swap")
    with pytest.raises(ValueError, match="landmarks"):
        Footage(footage.frames, footage.landmarks[:-1])


def test_a_frozen_mouth_survives_the_real_crop_pipeline(tmp_path: Path) -> None:
    """Through video encoding, MediaPipe and alignment, the frozen mouth's crops barely move
    while the genuine crops of the same clip do."""
    from stream.faces.reader import extract_mouth_crops
    from stream.sources.video_file import VideoFile

    source = TALKING
    genuine = extract_mouth_crops(source)
    with VideoFile(source) as video:
        frames = np.stack([rgb for _pts, rgb in video.frames()])
    assert len(genuine.crops) == len(frames)
    frozen_path = tmp_path / "frozen.mp4"
    write_video(frozen_path, manipulate(Footage(frames, genuine.landmarks), "freeze", seed=0))
    frozen = extract_mouth_crops(frozen_path)
    assert len(frozen.crops) == len(frames)

    def motion(crops: np.ndarray) -> float:
        centre = crops[:, 28:68, 20:76].astype(float)  # the lips inside the 96 x 96 crop
        return float(np.abs(np.diff(centre, axis=0)).mean())

    assert motion(frozen.crops) < 0.6 * motion(genuine.crops)

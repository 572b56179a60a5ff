"""What a verdict says about its window: the face's box and size, the frame rate its source
really delivered, a face cut by the frame's edge, and caveats that keep a weak window from
raising an alert on its own. End to end on the demo clips with the demo detector."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import numpy as np
import pytest

from stream.alerts.policy import AlertPolicy, Level, PolicyConfig
from stream.detector import Detector
from stream.events import Alert, Caveat, Verdict
from stream.faces.framing import cut_by_frame
from stream.settings.pipeline import Settings
from stream.windows.quality import FACE_FLOOR_PX, FPS_FLOOR, Sighting, window_quality
from tests.clip_builder import decode, write_clip
from training.demo_detector import DEMO_MANIPULATED, WEIGHTS

BOX = (0.4, 0.3, 0.6, 0.7)


def sightings(count: int = 25, *, distinct: int = 25, height: int = 720, cut: int = 0):
    """``count`` sightings of a face 40% of a 1280 x ``height`` frame tall, from
    ``distinct`` source frames, the first ``cut`` of them cut by the frame."""
    return [
        Sighting(float(k * distinct // count), BOX, (1280, height), cut=k < cut)
        for k in range(count)
    ]


def test_a_whole_face_at_full_rate_has_no_caveat():
    quality = window_quality(sightings())
    assert quality.caveats == ()
    assert quality.fps == 25.0 and quality.face_px == pytest.approx(0.4 * 720)
    assert quality.box == BOX and quality.frame_size == (1280, 720)


def test_each_floor_gives_its_caveat():
    small = round(FACE_FLOOR_PX / 0.4) - 10  # a frame height that makes the face too small
    assert window_quality(sightings(height=small)).caveats == (Caveat.TOO_SMALL,)
    slow = int(FPS_FLOOR * 25 / 25) - 1  # fewer distinct frames than the floor allows
    assert window_quality(sightings(distinct=slow)).caveats == (Caveat.LOW_FRAME_RATE,)
    assert window_quality(sightings(distinct=slow)).fps == pytest.approx(slow)
    assert window_quality(sightings(cut=10)).caveats == (Caveat.FACE_CUT,)
    assert window_quality(sightings(cut=3)).caveats == ()  # a face that brushes the edge


def test_a_window_with_a_caveat_cannot_raise_an_alert_on_its_own():
    config = PolicyConfig(suspicious_logit=0.0, alert_logit=2.0, escalate_windows=3)
    untrusted = AlertPolicy(config)
    levels = [untrusted.update(9.0, trusted=False).level for _ in range(10)]
    assert Level.ALERT not in levels and set(levels[2:]) == {Level.SUSPICIOUS}
    trusted = AlertPolicy(config)
    assert [trusted.update(9.0).alert for _ in range(3)] == [False, False, True]


def test_the_jaw_beyond_the_frame_is_a_cut_face():
    jaw = np.stack([np.linspace(100, 300, 17), 200 + 100 * np.sin(np.linspace(0, np.pi, 17))], 1)
    rest = np.stack([np.linspace(120, 280, 51), np.linspace(60, 250, 51)], 1)
    points = np.concatenate([jaw, rest])
    assert not cut_by_frame(points, (400, 400, 3))
    assert cut_by_frame(points, (280, 400, 3))  # the chin (y = 300) is below the frame


def watch(path, seconds: float = 120.0) -> list:
    """Every event of the demo detector watching ``path`` (a file, default settings)."""
    detector = Detector.load(WEIGHTS, backend="onnxruntime")

    async def collect():
        return [e async for e in detector.watch([str(path)], Settings.of())]

    try:
        return asyncio.run(asyncio.wait_for(collect(), seconds))
    finally:
        detector.close()


@pytest.fixture(scope="module")
def manipulated_frames():
    return decode(DEMO_MANIPULATED, (400, 300))


def test_verdicts_say_where_the_face_is_and_how_big(manipulated_frames, tmp_path):
    """The clip in the lower right of a 1280x720 frame: the box says so, in 0..1."""
    frame = np.full((720, 1280, 3), 90, np.uint8)
    images = []
    for image in manipulated_frames:
        placed = frame.copy()
        placed[400:700, 860:1260] = image
        images.append(placed)
    verdicts = [e for e in watch(write_clip(tmp_path / "corner.mp4", images, (1280, 720)))
                if isinstance(e, Verdict)]  # fmt: skip
    assert verdicts
    for verdict in verdicts:
        x0, y0, x1, y1 = verdict.quality.box
        assert 860 / 1280 < (x0 + x1) / 2 < 1260 / 1280 and 400 / 720 < (y0 + y1) / 2 < 1
        assert verdict.quality.frame_size == (1280, 720)
        assert 90 < verdict.quality.face_px < 150 and verdict.quality.fps == 25.0
    assert verdicts[0].to_dict()["frame"] == [1280, 720]


def test_a_face_cut_at_the_chin_is_marked_and_does_not_alert(manipulated_frames, tmp_path):
    """The shared-tab case: the clip as wide as a 1280x720 window, its lower quarter off
    screen. Whole, the same clip alerts (tests/test_api.py, the browser tests)."""
    import cv2

    images = [cv2.resize(image, (1280, 960))[:720] for image in manipulated_frames]
    events = watch(write_clip(tmp_path / "cut.mp4", images, (1280, 720)))
    verdicts = [e for e in events if isinstance(e, Verdict)]
    cut = [v for v in verdicts if Caveat.FACE_CUT in v.quality.caveats]
    assert len(cut) >= 0.8 * len(verdicts) and verdicts
    assert not any(isinstance(e, Alert) for e in events)


def test_a_source_below_the_frame_rate_floor_is_marked_and_its_rate_measured(
    manipulated_frames, tmp_path
):
    """The manipulated clip at 8.3 fps (every third frame, timed as such): verdicts measure
    about that, carry the caveat, and raise no alert; at 12.5 fps they carry none."""
    import av

    def at_rate(step: int):
        path = tmp_path / f"every{step}.mp4"
        with av.open(str(path), "w") as out:
            rate = Fraction(25, step)
            stream = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = 400, 300, "yuv420p"
            for image in manipulated_frames[::step]:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            out.mux(stream.encode(None))
        return watch(path)

    slow = at_rate(3)
    verdicts = [e for e in slow if isinstance(e, Verdict)]
    assert verdicts and all(Caveat.LOW_FRAME_RATE in v.quality.caveats for v in verdicts)
    assert all(abs(v.quality.fps - 25 / 3) <= 1.0 for v in verdicts)
    assert not any(isinstance(e, Alert) for e in slow)
    halved = [e for e in at_rate(2) if isinstance(e, Verdict)]  # 12.5 fps
    assert halved and all(v.quality.caveats == () for v in halved)
    assert all(abs(v.quality.fps - 12.5) <= 1.0 for v in halved)

"""The face stage of a stream: frame -> (track id, 96 x 96 mouth crop) for every face.

Composes MediaPipe landmarks (:mod:`stream.faces.landmarks`), face identity
(:mod:`stream.faces.tracks`), landmark smoothing per face (:mod:`stream.faces.smoothing`)
and the aligned mouth crop (:mod:`stream.faces.align`). Smoothing is per *track*, so two
faces never share a smoothing window even when their order in MediaPipe's output changes.

Live crops use no smoothing by default. The reference smooths frame i with the mean of
frames i..i+11 (a look-ahead); a causal mean lags behind the face by as much as the
reference leads it, so it lands further from the reference than raw landmarks do:
1.79 against 1.28 gray levels mean absolute difference on our genuine clips
(``bench/crop_smoothing.py``, docs/crops.md). ``smoothing="causal"`` remains available for
footage whose landmarks jitter.
"""

from __future__ import annotations

import numpy as np

from stream.faces.align import mean_face, mouth_crop, warp_patch
from stream.faces.landmarks import FaceLandmarks
from stream.faces.live_warp import warp_patch_opencv
from stream.faces.smoothing import Smoother, Smoothing
from stream.faces.tracks import Tracker
from stream.records import FaceCrop, FaceFrame


class FaceStage:
    """Frames of one stream -> (track id, uint8 96 x 96 mouth crop) per face.

    One MediaPipe landmarker in VIDEO mode; landmarks smoothed per track with a causal
    variant of :class:`stream.faces.smoothing.Smoothing` (``"none"`` or ``"causal"``; a face
    missing for more than ``hold`` frames, or a clock break, starts its smoothing over).
    Not thread-safe: call :meth:`process` for one stream's frames in order.

    The crops are warped with OpenCV (:mod:`stream.faces.live_warp`) and the landmarks read
    from MediaPipe's C result; ``reference_path=True`` uses the offline reference's float64
    warp and MediaPipe's public result objects instead (slower; what the live crops are
    checked against, within 0.5 gray levels: ``tests/test_live_crops.py``).
    """

    def __init__(
        self,
        max_faces: int = 2,
        forget: int = 25,
        hold: int = 2,
        smoothing: str = "none",
        reference_path: bool = False,
    ) -> None:
        self.hold = hold
        self.tracker = Tracker(forget)
        self._smoothing = Smoothing.named(smoothing)
        if self._smoothing.ahead:
            raise ValueError(f"live smoothing must not look ahead, got {smoothing!r}")
        self._landmarks = FaceLandmarks(num_faces=max_faces, native_results=not reference_path)
        self._warp = warp_patch if reference_path else warp_patch_opencv
        self._reference = mean_face()
        self._smoothers: dict[int, tuple[Smoother[None], int]] = {}

    def process(self, index: int, rgb: np.ndarray, pts: float, restart: bool) -> FaceFrame:
        """The faces of 25 fps frame ``index``: a crop per face, and the ids that ended."""
        faces = self._landmarks.detect(rgb, pts)
        ids, ended = self.tracker.update(index, faces)
        for track_id in ended:
            self._smoothers.pop(track_id, None)
        crops = []
        for track_id, points in zip(ids, faces, strict=True):
            smoother, last = self._smoothers.get(track_id, (None, -1))
            if smoother is None or restart or index - last > self.hold + 1:
                smoother = Smoother[None](self._smoothing)
            self._smoothers[track_id] = (smoother, index)
            ((_, smoothed),) = smoother.push(points, None)
            crop, _, _ = mouth_crop(rgb, points, smoothed, self._reference, self._warp)
            crops.append(FaceCrop(track_id, crop))
        return FaceFrame(tuple(crops), tuple(ended))

    def close(self) -> None:
        """Free the landmarker."""
        self._landmarks.close()

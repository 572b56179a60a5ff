"""The face stage of a stream: frame -> (track id, 96 x 96 mouth crop) for every face.

Composes MediaPipe landmarks (:mod:`stream.faces.landmarks`), face identity
(:mod:`stream.faces.tracks`), landmark smoothing per face (:mod:`stream.faces.smoothing`)
and the aligned mouth crop (:mod:`stream.faces.align`). Smoothing is per *track*, so two
faces never share a smoothing window even when their order in MediaPipe's output changes.

One face is tracked by a ``num_faces=1`` landmarker, as the offline scan does
(:mod:`stream.faces.reader`); a ``num_faces=max_faces`` landmarker looks for more faces
once a second and, while it finds them, tracks them all. A landmarker asked for more
faces than it tracks runs MediaPipe's face detector on every frame and re-seeds its
landmarks from it: on our clips that cost up to 1.9 ms more per frame and moved the
crops 1.4-4.8 gray levels (mean absolute) away from the scan's, further from the
reference pipeline's (``bench/face_tracking.py``, docs/benchmarks.md).

Live crops use no smoothing by default. The reference smooths frame i with the mean of
frames i..i+11 (a look-ahead); a causal mean lags behind the face by as much as the
reference leads it, so it lands further from the reference than raw landmarks do:
1.79 against 1.28 gray levels mean absolute difference on our genuine clips
(``bench/crop_smoothing.py``, docs/crops.md). ``smoothing="causal"`` remains available for
footage whose landmarks jitter.
"""

from __future__ import annotations

import threading

import numpy as np

from engines.method import FPS
from stream.events import FaceCrop, FaceFrame
from stream.faces.align import mean_face, mouth_crop, warp_patch
from stream.faces.landmarks import FaceLandmarks
from stream.faces.live_warp import warp_patch_opencv
from stream.faces.smoothing import Smoother, Smoothing
from stream.faces.tracks import Tracker


class FaceStage:
    """Frames of one stream -> (track id, uint8 96 x 96 mouth crop) per face.

    MediaPipe landmarkers in VIDEO mode (one face, and up to ``max_faces`` once a second
    or while there are several); landmarks smoothed per track with a causal
    variant of :class:`stream.faces.smoothing.Smoothing` (``"none"`` or ``"causal"``; a face
    missing for more than ``hold`` frames, or a clock break, starts its smoothing over).
    Call :meth:`process` for one stream's frames in order, one call at a time;
    :meth:`close` may come from another thread while a call is under way: it waits for it
    (MediaPipe must not be freed under a running graph), and later calls find no faces.

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
        native = not reference_path
        self._single = FaceLandmarks(num_faces=1, native_results=native)
        self._several = FaceLandmarks(max_faces, native_results=native) if max_faces > 1 else None
        self._several_until = -1  # the last frame the several-face landmarker answers for
        self._looked = -FPS  # the frame at which it last looked for more faces
        self._tracking = False  # whether the frame before had a face
        self._warp = warp_patch if reference_path else warp_patch_opencv
        self._reference = mean_face()
        self._smoothers: dict[int, tuple[Smoother[None], int]] = {}
        self._open = threading.Lock()  # held by a call under way, and by close
        self._closed = False

    def process(self, index: int, rgb: np.ndarray, pts: float, restart: bool) -> FaceFrame:
        """The faces of 25 fps frame ``index``: a crop per face, and the ids that ended."""
        with self._open:
            if self._closed:
                return FaceFrame((), ())
            return self._process(index, rgb, pts, restart)

    def _process(self, index: int, rgb: np.ndarray, pts: float, restart: bool) -> FaceFrame:
        faces = self._faces(index, rgb, pts, restart)
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

    def _faces(self, index: int, rgb: np.ndarray, pts: float, restart: bool) -> list[np.ndarray]:
        """The landmarks of frame ``index``: the several-face landmarker's while it finds
        more than one face (and for a second after), else the one-face landmarker's. When
        the one-face tracker loses the faces of the frame before (or takes over from the
        several-face one), the several-face one answers for that frame, so no frame of a
        face that is still there goes without a crop."""
        several = self._several
        if several is None:
            return self._single.detect(rgb, pts)
        looking = restart or index <= self._several_until or not 0 <= index - self._looked < FPS
        seen: list[np.ndarray] = []
        if looking:
            self._looked = index
            seen = several.detect(rgb, pts)
            if len(seen) > 1:
                self._several_until = index + FPS
        if index <= self._several_until:
            faces = seen
        else:
            faces = self._single.detect(rgb, pts)
            if not faces and self._tracking:
                faces = seen if looking else several.detect(rgb, pts)
        self._tracking = bool(faces)
        return faces

    def close(self) -> None:
        """Free the landmarkers (after the call under way, if any)."""
        with self._open:
            if self._closed:
                return
            self._closed = True
            self._single.close()
            if self._several is not None:
                self._several.close()

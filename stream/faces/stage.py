"""The face stage of a stream: frame -> (track id, 96 x 96 mouth crop, box) for every face.

Composes the landmark engine (:mod:`stream.faces.engine`: MediaPipe's detector and
landmark networks run directly, each face tracked by its own region, new faces looked for
over tiles once a second), the 478 -> 68 mapping (:mod:`stream.faces.landmarks`), face
identity (:mod:`stream.faces.tracks`), landmark smoothing per face
(:mod:`stream.faces.smoothing`) and the aligned mouth crop (:mod:`stream.faces.align`).
Identity and smoothing are per *track*, so two faces never share a smoothing window even
when their order changes, and a face the engine loses and finds again within ``forget``
frames keeps its id.

Each face's mesh is smoothed as MediaPipe's ``FaceLandmarker`` smoothed one tracked face
(:mod:`stream.faces.one_euro`), so one face gets the crops the stage had with that graph
(within 0.5 gray levels, ``tests/test_landmark_engine.py``). Live crops use no further
smoothing by default. The reference smooths frame i with the mean of frames i..i+11 (a
look-ahead); a causal mean lags behind the face by as much as the reference leads it, so
it lands further from the reference than raw landmarks do: 1.79 against 1.28 gray levels
mean absolute difference on our genuine clips (``bench/crop_smoothing.py``,
docs/crops.md). ``smoothing="causal"`` remains available for footage whose landmarks
jitter.
"""

from __future__ import annotations

import threading

import numpy as np

from engines.method import FPS
from stream.events import FaceCrop, FaceFrame
from stream.faces.align import mean_face, mouth_crop, warp_patch
from stream.faces.engine import SMALLEST_FACE, StreamFaces
from stream.faces.framing import cut_by_frame
from stream.faces.landmarks import to_ibug68
from stream.faces.live_warp import warp_patch_opencv
from stream.faces.models import FaceModels
from stream.faces.smoothing import Smoother, Smoothing
from stream.faces.tracks import Tracker


class FaceStage:
    """Frames of one stream -> (track id, uint8 96 x 96 mouth crop, box) per face.

    Up to ``max_faces`` faces of at least about ``smallest_face`` pixels are tracked
    (:class:`stream.faces.engine.StreamFaces`; ``models`` may be shared by the stages of
    several streams); landmarks smoothed per track with a causal
    variant of :class:`stream.faces.smoothing.Smoothing` (``"none"`` or ``"causal"``; a face
    missing for more than ``hold`` frames, or a clock break, starts its smoothing over).
    Call :meth:`process` for one stream's frames in order, one call at a time;
    :meth:`close` may come from another thread while a call is under way: it waits for it
    (and its caller's frame is not cut short), and later calls find no faces.

    The crops are warped with OpenCV (:mod:`stream.faces.live_warp`);
    ``reference_path=True`` uses the offline reference's float64 warp instead (slower;
    what the live crops are checked against, within 0.5 gray levels:
    ``tests/test_live_crops.py``). ``landmarks`` names the landmark network of the models
    made when none are given (``"full"`` or ``"lite"``: :class:`stream.faces.models.FaceModels`).
    """

    def __init__(
        self,
        max_faces: int = 25,
        forget: int = 25,
        hold: int = 2,
        smoothing: str = "none",
        reference_path: bool = False,
        smallest_face: float = SMALLEST_FACE,
        models: FaceModels | None = None,
        landmarks: str = "full",
    ) -> None:
        self.hold = hold
        self.tracker = Tracker(forget)
        self._smoothing = Smoothing.named(smoothing)
        if self._smoothing.ahead:
            raise ValueError(f"live smoothing must not look ahead, got {smoothing!r}")
        self._models = models or FaceModels(landmarks=landmarks)
        self._faces = StreamFaces(max_faces, smallest_face, search_frames=FPS)
        self._warp = warp_patch if reference_path else warp_patch_opencv
        self._reference = mean_face()
        self._smoothers: dict[int, tuple[Smoother[None], int]] = {}
        #: the engine's id of each face (track id) followed or resting
        self._engine_ids: dict[int, int] = {}
        self._size: tuple[int, int] | None = None  # (width, height) of the last frame
        self._looked = 0  # frames this stage has looked at (a face's age, for its id)
        self._open = threading.Lock()  # held by a call under way, and by close
        self._closed = False

    def process(
        self,
        index: int,
        rgb: np.ndarray,
        pts: float,
        restart: bool,
        resting: frozenset[int] = frozenset(),
    ) -> FaceFrame:
        """The faces of 25 fps frame ``index``: a crop per face, and the ids that ended.
        The faces (track ids) in ``resting`` are not followed on this frame: they keep
        their ids and places but get no crop (:mod:`stream.faces.turns`)."""
        with self._open:
            if self._closed:
                return FaceFrame((), ())
            return self._process(index, rgb, pts, restart, resting)

    @property
    def faces(self) -> list[int]:
        """The track ids of the faces known now (followed or resting)."""
        return list(self.tracker.tracks)

    def _process(
        self, index: int, rgb: np.ndarray, pts: float, restart: bool, resting: frozenset[int]
    ) -> FaceFrame:
        if restart:
            self._faces.reset()
            self._engine_ids.clear()
        height, width = rgb.shape[:2]
        if self._size is not None and self._size != (width, height):
            self.tracker.rescale(width / self._size[0], height / self._size[1])
            self._smoothers.clear()
        self._size = (width, height)
        self._faces.resting = frozenset(
            self._engine_ids[face] for face in resting if face in self._engine_ids
        )
        found = self._faces.track(self._models, rgb, pts)
        faces = [to_ibug68(face.mesh) for face in found]
        self._looked += 1  # frames dropped unseen (a backlog wiped) do not age a face
        ids, ended = self.tracker.update(self._looked, faces, still=resting)
        self._engine_ids = {
            **{face: engine for face, engine in self._engine_ids.items() if face in resting},
            **{face: seen.track for face, seen in zip(ids, found, strict=True)},
        }
        for track_id in ended:
            self._smoothers.pop(track_id, None)
            self._engine_ids.pop(track_id, None)
        crops = []
        for track_id, points, face in zip(ids, faces, found, strict=True):
            smoother, last = self._smoothers.get(track_id, (None, -1))
            if smoother is None or restart or index - last > self.hold + 1:
                smoother = Smoother[None](self._smoothing)
            self._smoothers[track_id] = (smoother, index)
            ((_, smoothed),) = smoother.push(points, None)
            crop, _, _ = mouth_crop(rgb, points, smoothed, self._reference, self._warp)
            cut = cut_by_frame(points, rgb.shape)
            crops.append(FaceCrop(track_id, crop, face.box, cut))
        return FaceFrame(tuple(crops), tuple(ended))

    def close(self) -> None:
        """Stop: later calls find no faces (after the call under way, if any)."""
        with self._open:
            self._closed = True

"""68 iBUG face landmarks per frame from MediaPipe's Face Landmarker (478-point mesh).

The model bundle is vendored in ``stream/faces/assets/face_landmarker.task``; nothing is
downloaded. The landmarker runs in VIDEO mode (tracking between frames, so timestamps must
strictly increase: :class:`FaceLandmarks` enforces that itself).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from stream.faces.mediapipe_results import mesh_reader

MODEL_PATH = Path(__file__).resolve().parent / "assets" / "face_landmarker.task"

#: iBUG-68 index -> MediaPipe mesh vertices; two vertices = their mean (the eye corners,
#: whose single MediaPipe vertices sit 1-2 px off the iBUG corners).
IBUG68_FROM_MEDIAPIPE: tuple[tuple[int, ...], ...] = (
    # jaw 0-16
    (127,), (234,), (93,), (58,), (172,), (136,), (149,), (148,), (152,),
    (377,), (378,), (365,), (397,), (288,), (323,), (454,), (356,),
    # brows 17-26
    (70,), (63,), (105,), (66,), (107,), (336,), (296,), (334,), (293,), (300,),
    # nose bridge 27-30, nose base 31-35
    (168,), (6,), (195,), (4,), (98,), (97,), (2,), (326,), (327,),
    # right eye 36-41
    (33, 130), (160,), (158,), (155, 173), (153,), (144,),
    # left eye 42-47
    (382, 398), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48-59
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (405,), (314,), (17,), (84,), (181,),
    # inner lips 60-67
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)  # fmt: skip

_FIRST = np.array([pair[0] for pair in IBUG68_FROM_MEDIAPIPE])
_SECOND = np.array([pair[-1] for pair in IBUG68_FROM_MEDIAPIPE])


def to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """The 68 iBUG points (68, 2) of one MediaPipe mesh (478 or 468, 2 or 3), same units."""
    points = np.asarray(mesh, dtype=np.float64)[:, :2]
    return (points[_FIRST] + points[_SECOND]) / 2.0


class FaceLandmarks:
    """One MediaPipe Face Landmarker in VIDEO mode for one stream of frames.

    Call :meth:`detect` with the frames in order; close it (or use ``with``) when done.
    ``native_results``: read the meshes from MediaPipe's C result where this MediaPipe has
    one (:mod:`stream.faces.mediapipe_results`; the same numbers, less Python); False uses
    MediaPipe's public result objects.
    """

    def __init__(
        self,
        num_faces: int = 1,
        model_path: str | Path = MODEL_PATH,
        native_results: bool = True,
    ) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=Path(model_path).read_bytes()),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=num_faces,
        )
        with _native_stderr.silenced():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._last_ms = -1
        self._offset_ms = 0
        self._read_meshes = mesh_reader() if native_results else None

    def detect(self, rgb: np.ndarray, pts: float) -> list[np.ndarray]:
        """The faces in one RGB uint8 (H, W, 3) frame as 68 iBUG points (68, 2) in pixels,
        largest face first; an empty list when there is none.

        ``pts`` (seconds) becomes the landmarker's timestamp. VIDEO mode needs them strictly
        increasing: a pts that goes back (a stream restart) shifts all later timestamps to
        continue 1 ms after the previous one.
        """
        import mediapipe as mp

        stamp = round(pts * 1000) + self._offset_ms
        if stamp <= self._last_ms:
            self._offset_ms += self._last_ms + 1 - stamp
            stamp = self._last_ms + 1
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        # the first call logs graph set-up warnings from native code: keep them off stderr
        quiet = _native_stderr.silenced() if self._last_ms < 0 else contextlib.nullcontext()
        with quiet:
            meshes = self._meshes(image, stamp)
        self._last_ms = stamp
        height, width = rgb.shape[:2]
        scale = np.array([width, height], dtype=np.float64)
        faces = [to_ibug68(mesh * scale) for mesh in meshes]
        return sorted(faces, key=_area, reverse=True)

    def _meshes(self, image: object, stamp: int) -> list[np.ndarray]:
        """Each face's (478, 2) normalised x, y: read from MediaPipe's C result where it
        has one (:mod:`stream.faces.mediapipe_results`), else from the public result."""
        if self._read_meshes is not None:
            return self._read_meshes(self._landmarker, image, stamp)
        result = self._landmarker.detect_for_video(image, stamp)
        return [np.array([(p.x, p.y) for p in face]) for face in result.face_landmarks]

    def close(self) -> None:
        """Free the landmarker's graph."""
        self._landmarker.close()

    def __enter__(self) -> FaceLandmarks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _area(points: np.ndarray) -> float:
    """Area of the bounding box of a set of points."""
    size = points.max(axis=0) - points.min(axis=0)
    return float(size[0] * size[1])


class _StderrSilencer:
    """Sends file descriptor 2 to /dev/null while anyone is inside :meth:`silenced`:
    MediaPipe's C++ logging writes set-up warnings there that a user has no use for.

    Landmarkers start in several threads at once (one per new stream): the first thread in
    redirects, the last one out restores, so overlapping uses can never leave stderr
    pointing at /dev/null for good. Other threads' stderr is silent meanwhile (a fraction
    of a second per new stream).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = -1

    @contextlib.contextmanager
    def silenced(self) -> Iterator[None]:
        """File descriptor 2 goes to /dev/null until the last overlapping user leaves."""
        with self._lock:
            if self._users == 0:
                sys.stderr.flush()
                self._saved = os.dup(2)
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 2)
                os.close(null)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    os.dup2(self._saved, 2)
                    os.close(self._saved)


_native_stderr = _StderrSilencer()

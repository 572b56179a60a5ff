"""MediaPipe's face meshes straight from its C result into numpy, without Python objects.

MediaPipe's own ``FaceLandmarker.detect_for_video`` turns every face's 478 landmarks into
478 Python dataclasses (about 0.7 ms per frame and face on our 2-core machine, as much as a
sixth of MediaPipe's own work). Recent MediaPipe releases (1.x) run the landmarker through a
C API with a ctypes result struct; :func:`mesh_reader` reads that struct's x and y fields as one
strided numpy view instead, and gives exactly the same numbers (float32 from the same
memory). Older MediaPipe releases (pybind11, no C result) get ``None`` and the caller uses
the public method.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np

#: (landmarker, image, timestamp ms) -> one (478, 2) float64 array of normalised x, y per face
MeshReader = Callable[[object, object, int], list[np.ndarray]]


def mesh_reader() -> MeshReader | None:
    """A fast reader of ``detect_for_video`` results, or None when this MediaPipe has no C
    result struct to read (then use the public method)."""
    try:
        from mediapipe.tasks.python.components.containers.landmark_c import (
            MpNormalizedLandmarkC,
        )
        from mediapipe.tasks.python.vision.face_landmarker import MpFaceLandmarkerResultC
    except ImportError:
        return None
    fields = {name for name, *_ in MpNormalizedLandmarkC._fields_}
    if not {"x", "y"} <= fields:
        return None
    point = np.dtype(
        {
            "names": ["x", "y"],
            "formats": ["<f4", "<f4"],
            "offsets": [MpNormalizedLandmarkC.x.offset, MpNormalizedLandmarkC.y.offset],
            "itemsize": ctypes.sizeof(MpNormalizedLandmarkC),
        }
    )

    def read(landmarker: object, image: object, stamp_ms: int) -> list[np.ndarray]:
        result = MpFaceLandmarkerResultC()
        lib = landmarker._lib  # the same calls detect_for_video makes, minus the conversion
        lib.MpFaceLandmarkerDetectForVideo(
            landmarker._handle, image._image_ptr, None, stamp_ms, ctypes.byref(result)
        )
        try:
            meshes = []
            for i in range(result.face_landmarks_count):
                face = result.face_landmarks[i]
                if face.landmarks_count == 0:
                    continue
                size = face.landmarks_count * point.itemsize
                memory = (ctypes.c_char * size).from_address(ctypes.addressof(face.landmarks[0]))
                points = np.frombuffer(memory, dtype=point)
                mesh = np.empty((len(points), 2))
                mesh[:, 0], mesh[:, 1] = points["x"], points["y"]  # copied before the close
                meshes.append(mesh)
            return meshes
        finally:
            lib.MpFaceLandmarkerCloseResult(ctypes.byref(result))

    return read

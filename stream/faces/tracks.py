"""Which face is which: give each face in a stream a stable id from frame to frame.

Faces are matched to the tracks of the previous frames by the distance between their
landmark centres, relative to the face's size (greedy, nearest pairs first). A face that
matches no track starts a new one; a track unmatched for more than ``forget`` frames ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Track:
    """One face's identity: where it was last seen (centre, size in pixels) and when."""

    id: int
    centre: np.ndarray
    size: float
    last_seen: int


def face_geometry(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and size (bounding-box diagonal) of one face's (68, 2) landmarks."""
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    return (low + high) / 2.0, float(np.hypot(*(high - low)))


class Tracker:
    """Stable ids for the faces of one stream.

    Args:
        forget: frames a face may be missing before its id is retired.
        max_shift: largest centre movement between sightings, as a share of the face size,
            that still counts as the same face.
    """

    def __init__(self, forget: int = 25, max_shift: float = 0.5) -> None:
        self.forget = forget
        self.max_shift = max_shift
        self.tracks: dict[int, Track] = {}
        self._next_id = 0

    def update(
        self, index: int, faces: Sequence[np.ndarray], still: Iterable[int] = ()
    ) -> tuple[list[int], list[int]]:
        """Match the faces (each (68, 2) landmarks) seen in frame ``index``; the tracks in
        ``still`` were not looked for in this frame (they rest: :mod:`stream.faces.turns`)
        and count as seen where they were (a face found there all the same is theirs).

        Returns:
            The track id of each face, in the order given, and the ids of the tracks that
            ended (missing for more than ``forget`` frames).
        """
        geometry = [face_geometry(face) for face in faces]
        ids: list[int | None] = [None] * len(faces)
        for track_id in still:
            if track_id in self.tracks:
                self.tracks[track_id].last_seen = index
        taken: set[int] = set()
        for face, track_id in self._nearest_pairs(geometry):
            if ids[face] is None and track_id not in taken:
                ids[face] = track_id
                taken.add(track_id)
        for face, (centre, size) in enumerate(geometry):
            track_id = ids[face]
            if track_id is None:
                track_id = ids[face] = self._next_id
                self._next_id += 1
            self.tracks[track_id] = Track(track_id, centre, size, index)
        ended = [t.id for t in self.tracks.values() if index - t.last_seen > self.forget]
        for track_id in ended:
            del self.tracks[track_id]
        return [i for i in ids if i is not None], ended

    def rescale(self, sx: float, sy: float) -> None:
        """The frame was scaled by ``sx`` across and ``sy`` down: so are the tracks."""
        for track in self.tracks.values():
            track.centre = track.centre * np.array([sx, sy])
            track.size *= float(np.sqrt(sx * sy))

    def _nearest_pairs(self, geometry: list[tuple[np.ndarray, float]]) -> list[tuple[int, int]]:
        """(face, track id) pairs whose centres are at most ``max_shift`` apart (relative
        to the larger size), nearest first (ties: lower face, then lower id first)."""
        if not geometry or not self.tracks:
            return []
        centres = np.array([centre for centre, _ in geometry])
        sizes = np.array([size for _, size in geometry])
        tracks = sorted(self.tracks.values(), key=lambda track: track.id)
        shift = np.linalg.norm(
            centres[:, None] - np.array([t.centre for t in tracks])[None], axis=2
        ) / np.maximum(sizes[:, None], np.array([t.size for t in tracks])[None])
        faces, columns = np.nonzero(shift <= self.max_shift)
        order = np.lexsort((columns, faces, shift[faces, columns]))
        return [(int(faces[i]), tracks[columns[i]].id) for i in order]

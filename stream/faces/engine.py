"""The landmark engine: MediaPipe's face networks run directly, with its region tracking.

Each tracked face's landmarks place its region in the next frame (:mod:`stream.faces.roi`),
so the landmark network runs once per face per frame and the detector only when it is
needed: on a frame where a tracked face is lost or none is tracked (the whole frame, as
MediaPipe's ``FaceLandmarker`` does), and to look for new faces, a share of the search
tiles (:func:`stream.faces.detection.tiles`) on every frame so that the whole search
takes ``search_frames`` frames (25: a new face is found within a second; 32 tiles for
1280 x 720 are 1 or 2 a frame). A region whose picture has not changed since the detector
last looked at it (outside the blocks around the faces it follows) keeps what the detector
found then, without running it again (:mod:`stream.faces.tile_memory`: a still background
behind talking faces costs no detector calls). A detection
over a face already tracked is ignored (its landmarks keep coming from tracking, as a
one-face ``FaceLandmarker`` tracks it), a face whose presence score falls below 0.5 is
dropped (a new detection whose landmarks score below it is not tried again while its
region stays still), and of two tracks that come to cover the same face the older one
stays.

:func:`track` runs many streams' frames together: one landmark batch for every tracked
face of every stream, one detector batch for every stream's regions, one landmark batch
for the new faces.
:class:`StreamFaces` holds one stream's tracks; ``StreamFaces.track(models, rgb)`` is the
one-stream call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from stream.faces.detection import Detection, Tile, detect_frames, overlaps, tiles, whole_frame
from stream.faces.models import FaceModels
from stream.faces.one_euro import OneEuro
from stream.faces.roi import Roi, network_inputs, roi_from_box, roi_from_mesh
from stream.faces.tile_memory import TileMemory

#: MediaPipe's face-presence threshold (the landmark network's sigmoid score)
MIN_PRESENCE = 0.5
#: two tracks whose boxes overlap this much are one face
SAME_FACE_IOU = 0.5
#: faces smaller than this (pixels, box height) are not searched for by default
SMALLEST_FACE = 60.0


@dataclass(frozen=True, slots=True)
class Face:
    """One face in one frame.

    Attributes:
        track: the engine's id for the face (increasing from 0 per stream; a face lost and
            found again gets a new one).
        mesh: float64 (478, 2) MediaPipe mesh points, frame pixels ((468, 2) from the lite
            landmark network: no iris points).
        box: (x0, y0, x1, y1) of the mesh, normalised to 0..1 by the frame's size.
        presence: the network's face-presence score, 0..1.
    """

    track: int
    mesh: np.ndarray
    box: tuple[float, float, float, float]
    presence: float


@dataclass(slots=True)
class _Track:
    """One tracked face: its id, the region for the next frame, its mesh's box (pixels)."""

    id: int
    roi: Roi
    box: np.ndarray = field(default_factory=lambda: np.zeros(4))
    smoother: OneEuro = field(default_factory=OneEuro)


class StreamFaces:
    """The faces tracked in one stream, frame after frame.

    Args:
        max_faces: at most this many faces are tracked (the biggest new ones first).
        smallest_face: the search's tiles find faces down to about this height in pixels;
            0 looks at the whole frame only (MediaPipe's search).
        search_frames: frames one round of the search is spread over (0: never search
            while a face is tracked, MediaPipe's one-face behaviour).
        smooth: while a single face is tracked, smooth its mesh as MediaPipe's
            ``FaceLandmarker`` does (:mod:`stream.faces.one_euro`; MediaPipe smooths no
            face when it tracks several); the regions follow the unsmoothed mesh.
    """

    def __init__(
        self,
        max_faces: int = 25,
        smallest_face: float = SMALLEST_FACE,
        search_frames: int = 25,
        smooth: bool = True,
    ) -> None:
        self.max_faces = max_faces
        self.smooth = smooth
        self.smallest_face = smallest_face
        self.search_frames = search_frames
        self._tracks: list[_Track] = []
        self._next_id = 0
        #: engine ids of the faces that rest this frame (:mod:`stream.faces.turns`): no
        #: landmarks, their regions and boxes kept as they were
        self.resting: frozenset[int] = frozenset()
        self._tiles: list[Tile] = []
        self._size = (0, 0)
        self._search_frame = 0  # frames of the search so far
        self._searched = 0  # the next tile to look at
        self._fresh = True
        #: what the detector found in each region, reused while the region stays still
        self._memory = TileMemory()

    def reset(self) -> None:
        """Forget every face (a clock break: the next frame is searched afresh)."""
        self._tracks.clear()
        self._search_frame = self._searched = 0
        self._fresh = True
        self._memory.clear()

    def track(self, models: FaceModels, rgb: np.ndarray, pts: float) -> list[Face]:
        """The faces of the next RGB uint8 (H, W, 3) frame (time ``pts``, seconds),
        biggest first."""
        return track(models, [(self, rgb, pts)])[0]

    def _regions(self, rgb: np.ndarray, lost: bool) -> list[Tile]:
        """The detector's regions for this frame: every tile on the first frame; then
        the whole frame when a face was lost or none is tracked, and this frame's share
        of the search."""
        height, width = rgb.shape[:2]
        if self._fresh:  # a new stream (or after a clock break): the whole search at once
            self._fresh = False
            return list(self._tiles)
        regions = []
        if lost or not self._tracks:
            regions.append(whole_frame(width, height))
        if self.search_frames > 0 and len(self._tracks) < self.max_faces:
            count, step = len(self._tiles), self._search_frame % self.search_frames
            share = (step + 1) * count // self.search_frames - step * count // self.search_frames
            start = self._searched
            chosen = [self._tiles[(start + i) % count] for i in range(share)]
            self._searched = (start + share) % count
            self._search_frame += 1
            regions.extend(tile for tile in chosen if tile not in regions)
        return regions

    def _follow_size(self, rgb: np.ndarray) -> None:
        """A frame of another size (a browser's encoder changing its resolution): the
        tracked faces' regions scale with it, so they keep their ids, and the search's
        tiles are laid out anew."""
        height, width = rgb.shape[:2]
        if (width, height) == self._size:
            return
        if self._size != (0, 0):
            sx, sy = width / self._size[0], height / self._size[1]
            for track in self._tracks:
                track.roi = track.roi.scaled(sx, sy)
                track.box = track.box * np.array([sx, sy, sx, sy])
                track.smoother = OneEuro()
        self._size = (width, height)
        self._tiles = tiles(width, height, self.smallest_face or max(width, height))
        self._search_frame = self._searched = 0
        self._memory.clear()

    def _new_faces(self, detections: list[Detection]) -> list[Detection]:
        """The detections that are not a face already tracked, best first, up to
        ``max_faces`` tracks."""
        new: list[Detection] = []
        boxes = [track.box for track in self._tracks]
        for found in detections:
            if len(self._tracks) + len(new) >= self.max_faces:
                break
            centre = (found.box[:2] + found.box[2:]) / 2
            if any(_inside(centre, box) for box in boxes):
                continue
            boxes.append(found.box)
            new.append(found)
        return new

    def _update(
        self, kept: list[tuple[_Track, np.ndarray, float]], rgb: np.ndarray, pts: float
    ) -> list[Face]:
        """Keep the tracks whose face is present, older first; one track per face."""
        height, width = rgb.shape[:2]
        stamp_ns = round(pts * 1000) * 1_000_000  # MediaPipe's millisecond timestamps
        present: list[tuple[_Track, np.ndarray, float, np.ndarray]] = []
        for track, mesh, presence in sorted(kept, key=lambda item: item[0].id):
            box = np.concatenate([mesh.min(axis=0), mesh.max(axis=0)])
            boxes = np.array([other[3] for other in present]).reshape(-1, 4)
            if not present or overlaps(box, boxes).max() <= SAME_FACE_IOU:
                present.append((track, mesh, presence, box))
        self._tracks = [track for track, *_ in present] + self._rested()
        # MediaPipe smooths only when it tracks a single face
        alone = len(present) == 1 and not self.resting
        scale = np.array([width, height, width, height], dtype=np.float64)
        faces: list[Face] = []
        for track, mesh, presence, box in present:
            track.roi, track.box = roi_from_mesh(mesh), box
            if not alone:
                track.smoother = OneEuro()
            shown = track.smoother(mesh, stamp_ns) if self.smooth and alone else mesh
            normal = tuple(float(v) for v in np.clip(box / scale, 0.0, 1.0))
            faces.append(Face(track.id, shown, normal, presence))  # type: ignore[arg-type]
        return sorted(faces, key=_area, reverse=True)

    def _rested(self) -> list[_Track]:
        """The tracks that rest this frame (kept as they were)."""
        return [track for track in self._tracks if track.id in self.resting]


def _inside(point: np.ndarray, box: np.ndarray) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def _area(face: Face) -> float:
    x0, y0, x1, y1 = face.box
    return (x1 - x0) * (y1 - y0)


def _landmarks(
    models: FaceModels, jobs: list[tuple[np.ndarray, Roi]]
) -> list[tuple[np.ndarray, float]]:
    """(mesh in frame pixels, presence) for each (frame, region), in one batch."""
    if not jobs:
        return []
    size = models.landmarks.network.size
    points, presence, *_ = models.landmarks.run(network_inputs(jobs, size))
    scores = 1.0 / (1.0 + np.exp(-presence.reshape(-1).astype(np.float64)))
    return [
        (roi.project(raw.reshape(-1, 3).astype(np.float64), size), float(score))
        for (_, roi), raw, score in zip(jobs, points, scores, strict=True)
    ]


def track(
    models: FaceModels, frames: Sequence[tuple[StreamFaces, np.ndarray, float]]
) -> list[list[Face]]:
    """The next frame (RGB, pts) of each stream: its faces, biggest first (one list per
    stream).

    Every tracked face of every stream goes through the landmark network in one batch;
    then the detector looks at every stream's regions, in one batch; then the new faces'
    landmarks, in one batch.
    """
    for stream, rgb, _ in frames:
        stream._follow_size(rgb)
    tracked = [
        (stream, rgb, t)
        for stream, rgb, _ in frames
        for t in stream._tracks
        if t.id not in stream.resting
    ]
    results = _landmarks(models, [(rgb, t.roi) for _, rgb, t in tracked])
    kept: dict[int, list[tuple[_Track, np.ndarray, float]]] = {id(s): [] for s, _, _ in frames}
    lost: set[int] = set()
    for (stream, _, t), (mesh, presence) in zip(tracked, results, strict=True):
        if presence >= MIN_PRESENCE:
            kept[id(stream)].append((t, mesh, presence))
        else:
            lost.add(id(stream))
    searched, followed = [], []
    for stream, rgb, _ in frames:
        stream._tracks = [t for t, _, _ in kept[id(stream)]] + stream._rested()
        for t, mesh, _ in kept[id(stream)]:
            t.box = np.concatenate([mesh.min(axis=0), mesh.max(axis=0)])
        searched.append((rgb, stream._regions(rgb, id(stream) in lost)))
        followed.append([t.box for t in stream._tracks])
    memories = [stream._memory for stream, _, _ in frames]
    new_jobs: list[tuple[StreamFaces, np.ndarray, Detection]] = []
    for (stream, rgb, _), detections in zip(
        frames, detect_frames(models.detector, searched, memories, followed), strict=True
    ):
        new_jobs.extend((stream, rgb, found) for found in stream._new_faces(detections))
    rois = [roi_from_box(found.box, *found.keypoints[:2]) for _, _, found in new_jobs]
    jobs = [(rgb, roi) for (_, rgb, _), roi in zip(new_jobs, rois, strict=True)]
    for (stream, _, found), roi, (mesh, presence) in zip(
        new_jobs, rois, _landmarks(models, jobs), strict=True
    ):
        if presence >= MIN_PRESENCE:
            kept[id(stream)].append((_Track(stream._next_id, roi), mesh, presence))
            stream._next_id += 1
        else:
            stream._memory.reject(found.box)
    return [stream._update(kept[id(stream)], rgb, pts) for stream, rgb, pts in frames]

"""How far a window can be trusted: the face's size, the frames the source really
delivered, and whether the face was whole in the picture.

The network was trained on 25 fps video of faces that fill much of the frame. A call's
gallery shows small faces; a shared tab or a congested link delivers fewer frames, which
the 25 fps clock repeats; a tile or a window edge can cut a face at the chin. A window
measured below a floor carries a :class:`~stream.events.Caveat`: its verdict says so and,
on its own, cannot raise an alert (:class:`~stream.alerts.policy.AlertPolicy` caps it at
SUSPICIOUS). The floors and how they were chosen: docs/calls.md (``bench/face_size.py``,
``bench/frame_rate.py``, ``bench/shared_tab.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engines.method import FPS
from stream.events import Caveat, WindowQuality

#: faces shorter than this (pixels, the mesh's box in the source frame) are too small
FACE_FLOOR_PX = 80.0
#: windows whose source delivered fewer distinct frames per second than this
FPS_FLOOR = 10.0
#: windows with more than this share of frames whose face reaches beyond the frame
CUT_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class Sighting:
    """What the face stage saw of a face in one 25 fps frame, besides its crop.

    Attributes:
        source_pts: the pts of the source frame behind the 25 fps frame (a repeated frame
            has its predecessor's).
        box: the face's box, (x0, y0, x1, y1) normalised to the frame's size.
        frame_size: the source frame's (width, height) in pixels.
        cut: the face reaches beyond the frame's edge (chin or cheek out of the picture).
    """

    source_pts: float
    box: tuple[float, float, float, float]
    frame_size: tuple[int, int]
    cut: bool = False


def window_quality(sightings: Sequence[Sighting]) -> WindowQuality:
    """The quality of a window from the sightings of its frames (oldest first)."""
    last = sightings[-1]
    width, height = last.frame_size
    heights = [(s.box[3] - s.box[1]) * s.frame_size[1] for s in sightings]
    face_px = float(np.median(heights))
    fps = FPS * len({s.source_pts for s in sightings}) / len(sightings)
    cut_share = sum(s.cut for s in sightings) / len(sightings)
    caveats = []
    if face_px < FACE_FLOOR_PX:
        caveats.append(Caveat.TOO_SMALL)
    if fps < FPS_FLOOR:
        caveats.append(Caveat.LOW_FRAME_RATE)
    if cut_share > CUT_SHARE:
        caveats.append(Caveat.FACE_CUT)
    return WindowQuality(
        box=last.box,
        frame_size=(width, height),
        fps=fps,
        face_px=face_px,
        caveats=tuple(caveats),
    )

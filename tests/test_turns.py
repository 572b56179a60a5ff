"""More faces than the machine can follow: the faces of a crowded stream take turns over
whole windows, every face gets verdicts, and their intervals stay close to each other."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from stream.detector import Detector
from stream.events import Verdict
from stream.faces.turns import CALM_FRAMES, Turns
from stream.settings.pipeline import Settings
from tests.clip_builder import decode, write_clip
from training.demo_detector import WEIGHTS

ROOT = Path(__file__).resolve().parents[1]


def test_every_face_fits_until_the_stream_falls_behind():
    turns = Turns(span=10)
    assert turns.resting(range(9)) == frozenset() and turns.at_once is None
    turns.behind(followed=9)
    assert turns.capacity == 6 and turns.at_once == 6
    assert len(turns.resting(range(9))) == 3


def test_groups_follow_each_other_round_robin_a_whole_span_each():
    turns = Turns(span=10)
    turns.behind(followed=5)  # 3 at once
    followed = Counter()
    groups = []
    for _ in range(90):
        resting = turns.resting(range(5))
        group = frozenset(range(5)) - resting
        followed.update(group)
        if not groups or groups[-1] != group:
            groups.append(group)
    assert all(len(g) == 3 for g in groups)
    assert max(followed.values()) - min(followed.values()) <= 10  # one span at most
    assert len(groups) == 9  # a new group every span of 10 frames


def test_a_face_that_appears_or_ends_changes_nobody_elses_place_in_the_turns():
    turns = Turns(span=10)
    turns.behind(followed=6)  # 4 at once
    turns.capacity = 2
    faces = [1, 2, 3, 4, 5, 6]
    first_turn: dict[int, int] = {}
    for frame in range(60):
        if frame == 12:
            faces = [0, *faces[1:]]  # face 1 ends, a new face 0 (a lower id) arrives
        followed = set(faces) - turns.resting(faces)
        for face in followed:
            first_turn.setdefault(face, frame)
    # faces 2..6 each wait for those that came before them, and the newcomer waits its turn
    assert [first_turn[f] for f in (2, 3, 4, 5, 6)] == [0, 10, 10, 20, 20]
    assert first_turn[0] == 40  # after 5, 6 (frame 20) and 2, 3 (frame 30): with 4


def test_the_group_grows_back_when_the_stream_keeps_up():
    turns = Turns(span=10)
    turns.behind(followed=4)
    assert turns.capacity == 2
    turns.behind(followed=2)  # too soon after the last change: ignored
    assert turns.capacity == 2
    for _ in range(2 * CALM_FRAMES + 1):
        turns.resting(range(4))
    assert turns.capacity is None and turns.resting(range(4)) == frozenset()


def gallery_clip(path: Path, side: int, seconds: float) -> Path:
    """A side x side gallery (1280x720) of the bundled clips, looped, at 25 fps."""
    tile = (1280 // side, 720 // side)
    clips = [decode(video, tile) for video in sorted((ROOT / "media").glob("*.mp4"))]
    frames = []
    for k in range(round(seconds * 25)):
        rows = []
        for row in range(side):
            cells = [clips[(row * side + col) % len(clips)] for col in range(side)]
            rows.append(np.concatenate([c[k % len(c)] for c in cells], axis=1))
        frames.append(np.concatenate(rows, axis=0))
    return write_clip(path, frames, (tile[0] * side, tile[1] * side))


def test_a_crowded_gallery_live_gives_every_face_verdicts_at_fair_intervals(tmp_path):
    """A 3x3 gallery paced like a call: more faces than two cores follow on every
    frame. Every face still gets verdicts, each under one id, and no face waits more than
    twice as long between verdicts as another."""
    clip = gallery_clip(tmp_path / "gallery.mp4", side=3, seconds=16.0)
    detector = Detector.load(WEIGHTS, backend="onnxruntime")

    async def collect():
        settings = Settings.of(realtime=True)
        return [e async for e in detector.watch([str(clip)], settings)]

    try:
        events = asyncio.run(asyncio.wait_for(collect(), 120.0))
    finally:
        detector.close()
    ends: dict[tuple[int, int], list[float]] = defaultdict(list)
    ids: dict[tuple[int, int], set[int]] = defaultdict(set)
    for event in events:
        if isinstance(event, Verdict):
            x0, y0, x1, y1 = event.quality.box
            tile = (int((x0 + x1) * 1.5), int((y0 + y1) * 1.5))  # 3 columns, 3 rows
            ends[tile].append(event.pts[1])
            ids[tile].add(event.face)
    assert len(ends) == 9, sorted(ends)
    assert all(len(faces) == 1 for faces in ids.values()), ids
    waits = {tile: max(np.diff([0.0, *sorted(times)])) for tile, times in ends.items()}
    assert max(waits.values()) <= 2 * min(waits.values()) + 1.0, waits

"""Face identity across frames."""

from __future__ import annotations

import numpy as np

from stream.faces.tracks import Tracker


def face(x: float, y: float, size: float = 100.0) -> np.ndarray:
    """68 landmarks filling a square of ``size`` pixels centred at (x, y)."""
    grid = np.random.default_rng(0).uniform(-0.5, 0.5, (68, 2))
    grid[0], grid[1] = (-0.5, -0.5), (0.5, 0.5)
    return np.array([x, y]) + grid * size


def test_two_faces_keep_their_ids_while_moving_and_swapping_order():
    tracker = Tracker()
    ids, ended = tracker.update(0, [face(100, 100), face(400, 100)])
    assert ids == [0, 1] and ended == []
    for index in range(1, 20):
        shift = 3.0 * index
        left, right = face(100 + shift, 100), face(400 - shift, 100)
        order = [right, left] if index % 2 else [left, right]
        ids, _ = tracker.update(index, order)
        assert ids == ([1, 0] if index % 2 else [0, 1])


def test_a_face_missing_for_a_moment_keeps_its_id_and_a_long_absence_ends_it():
    tracker = Tracker(forget=10)
    tracker.update(0, [face(100, 100)])
    assert tracker.update(8, [face(105, 100)]) == ([0], [])
    ids, ended = tracker.update(30, [])
    assert (ids, ended) == ([], [0])
    assert tracker.update(31, [face(105, 100)]) == ([1], [])


def test_a_face_that_jumps_across_the_frame_is_a_new_face():
    tracker = Tracker()
    tracker.update(0, [face(100, 100)])
    assert tracker.update(1, [face(500, 300)]) == ([1], [])
    assert tracker.update(2, [face(100, 100), face(500, 300)]) == ([0, 1], [])

"""MediaPipe's start-up noise is kept off stderr without ever losing stderr for good."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from stream.faces.landmarks import FaceLandmarks, _StderrSilencer


def stderr_identity() -> tuple[int, int]:
    """What file descriptor 2 points at now."""
    status = os.fstat(2)
    return status.st_dev, status.st_ino


def test_overlapping_silencers_restore_stderr_when_the_last_one_leaves():
    """Thread A enters, B enters, A leaves, B leaves: stderr is silenced throughout and is
    the original afterwards (one save per overlap, not one per thread)."""
    silencer, original, devnull = _StderrSilencer(), stderr_identity(), os.stat(os.devnull)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, tuple[int, int]] = {}

    def first() -> None:
        with silencer.silenced():
            a_in.set()
            b_in.wait(5)
        seen["after a left"] = stderr_identity()
        a_out.set()

    def second() -> None:
        a_in.wait(5)
        with silencer.silenced():
            b_in.set()
            a_out.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen["after a left"] == (devnull.st_dev, devnull.st_ino)  # b still inside
    assert stderr_identity() == original


def test_landmarkers_started_in_parallel_leave_stderr_as_it_was():
    original = stderr_identity()

    def start_and_detect(_: int) -> int:
        import numpy as np

        with FaceLandmarks() as landmarks:
            return len(landmarks.detect(np.zeros((120, 160, 3), np.uint8), 0.0))

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(start_and_detect, range(4))) == [0, 0, 0, 0]
    assert stderr_identity() == original

"""Test-wide settings and every shared fixture: a test module names a fixture as an
argument (or in ``pytestmark = pytest.mark.usefixtures(...)``) and never imports it.

Nothing a test writes lands in the user's home folder. The fixtures wrap the helpers of
:mod:`tests.live_support` (the one narrow config ``NARROW``, ``narrow_model()``, the clip
path ``TALKING``, the time-limited coroutine runner ``run``) and
:mod:`tests.browser_support` (Chromium, the server in a thread): a checkpoint of the seeded
narrow network, the real talking clip, torch on one thread for a module, a served page and
Playwright's driver.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Exported ONNX files and engines go to a throw-away cache for the whole test session
# (tests that need their own cache still set LIPFORENSICS_CACHE themselves).
os.environ.setdefault("LIPFORENSICS_CACHE", tempfile.mkdtemp(prefix="lipforensics-test-cache-"))


@pytest.fixture(scope="session")
def narrow_weights(tmp_path_factory) -> Path:
    """``narrow_model()`` (seed 0) saved by ``save_checkpoint``, once per session.

    Shared: a test that writes next to it (thresholds, tuned copies) copies it first."""
    from engines.checkpoint import save_checkpoint
    from tests.live_support import narrow_model

    return save_checkpoint(tmp_path_factory.mktemp("weights") / "narrow.pth", narrow_model())


@pytest.fixture(scope="session")
def alerting_weights(tmp_path_factory) -> Path:
    """A narrow network whose output is a constant logit of 10 (p ~ 1): every face alerts
    (deterministic alerts for the sinks' end-to-end tests)."""
    import torch

    from engines.checkpoint import save_checkpoint
    from tests.live_support import narrow_model

    model = narrow_model()
    with torch.no_grad():
        model.tcn.tcn_output.weight.zero_()
        model.tcn.tcn_output.bias.fill_(10.0)
    return save_checkpoint(tmp_path_factory.mktemp("weights") / "fake.pth", model)


@pytest.fixture(scope="session")
def talking_clip() -> Path:
    """tests/data/talking.mp4: 4.0 s, 100 frames at 25 fps, one face throughout."""
    from tests.live_support import TALKING

    return TALKING


@pytest.fixture(scope="session")
def faststart(tmp_path_factory) -> Path:
    """talking.mp4 remuxed with its index first, so that a cut or garbled copy still opens."""
    from tests.clip_builder import remuxed
    from tests.live_support import TALKING

    return remuxed(
        TALKING, tmp_path_factory.mktemp("video") / "faststart.mp4", movflags="faststart"
    )


@pytest.fixture(scope="module")
def one_torch_thread():
    """The narrow network runs far faster on one thread than on two threads that compete
    with MediaPipe's; restored after the module. A module that wants it for every test says
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def served():
    """One server for the module (``serve`` with the demo detector, in a thread of its own)."""
    from tests.browser_support import ServedInThread

    running = ServedInThread()
    yield running
    running.close()


@pytest.fixture(scope="module")
def playwright_driver():
    """Playwright's driver for the module (it starts no browser of its own)."""
    from tests.browser_support import chromium

    chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver

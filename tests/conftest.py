"""Test-wide settings and the shared fixtures.

Nothing a test writes lands in the user's home folder. The fixtures wrap
:mod:`live_support` (which holds the one narrow config ``NARROW``, ``narrow_model()``, the
clip path ``TALKING`` and the time-limited coroutine runner ``run``): a checkpoint of the
seeded narrow network and the real talking clip.
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
    from live_support import narrow_model

    from engines.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path_factory.mktemp("weights") / "narrow.pth", narrow_model())


@pytest.fixture(scope="session")
def alerting_weights(tmp_path_factory) -> Path:
    """A narrow network whose output is a constant logit of 10 (p ~ 1): every face alerts
    (deterministic alerts for the sinks' end-to-end tests)."""
    import torch
    from live_support import narrow_model

    from engines.checkpoint import save_checkpoint

    model = narrow_model()
    with torch.no_grad():
        model.tcn.tcn_output.weight.zero_()
        model.tcn.tcn_output.bias.fill_(10.0)
    return save_checkpoint(tmp_path_factory.mktemp("weights") / "fake.pth", model)


@pytest.fixture(scope="session")
def talking_clip() -> Path:
    """tests/data/talking.mp4: 4.0 s, 100 frames at 25 fps, one face throughout."""
    from live_support import TALKING

    return TALKING

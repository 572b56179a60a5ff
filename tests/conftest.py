"""Test-wide settings: nothing a test writes lands in the user's home folder."""

from __future__ import annotations

import os
import tempfile

# Exported ONNX files and engines go to a throw-away cache for the whole test session
# (tests that need their own cache still set LIPFORENSICS_CACHE themselves).
os.environ.setdefault("LIPFORENSICS_CACHE", tempfile.mkdtemp(prefix="lipforensics-test-cache-"))

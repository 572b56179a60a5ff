"""The Triton tests' stand-in for the onnxruntime backend (the test server has only the
python backend): runs this version folder's own model.onnx with ONNX Runtime on the batch
Triton's dynamic batcher merged (a list of requests, concatenated here)."""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = config["input"][0]["name"]
        self.output = config["output"][0]["name"]

    def execute(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input).as_numpy() for r in requests]
        merged = np.concatenate(arrays).astype(np.float32)
        result = self.session.run([self.output], {self.input: merged})[0]
        responses, start = [], 0
        for array in arrays:
            rows = result[start : start + len(array)]
            start += len(array)
            tensor = pb_utils.Tensor(self.output, np.ascontiguousarray(rows, np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses

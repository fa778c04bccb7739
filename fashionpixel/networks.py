"""How the pipelines reach a network: `Network.run(model, inputs)` with a registry entry
(fashionpixel/models.py). Triton implements it in the services (services/common/triton.py),
`OnnxNetwork` in-process for the evaluations; `infer_with` shapes either as the pipelines'
`infer` callables (fashionpixel/stages.py)."""

from typing import Protocol

import cv2
import numpy as np

from fashionpixel.models import Model
from fashionpixel.stages import Infer


class Network(Protocol):
    async def run(
        self, model: Model, inputs: dict[str, np.ndarray], outputs: tuple[str, ...] = ()
    ) -> dict[str, np.ndarray]:
        """`model` on one example: inputs and outputs without the batch axis; `outputs` names the
        ones wanted (all of the model's when empty)."""


class OnnxNetwork:
    """The served networks in-process: ONNX Runtime sessions by model name, e.g.
    `OnnxNetwork({m.name: onnx_session(m.onnx_path(repository)) for m in (SEGMENTATION, POSE)})`
    (export/onnxruntime_session.py opens them), so this module needs no onnxruntime itself."""

    def __init__(self, sessions: dict):
        self.sessions = sessions

    async def run(
        self, model: Model, inputs: dict[str, np.ndarray], outputs: tuple[str, ...] = ()
    ) -> dict[str, np.ndarray]:
        names = list(outputs or model.output_names)
        arrays = self.sessions[model.name].run(names, model.batch_of_one(inputs))
        return {name: array[0] for name, array in zip(names, arrays)}


def as_float32(a: np.ndarray) -> np.ndarray:
    """An FP16 network output as float32, what the pipelines compute in; other arrays as they are.
    OpenCV converts with the CPU's F16C instructions: 0.07 ms for a 7×384×256 parsing where numpy's
    astype takes 1.5 ms, and every segment request did that twice (docs/benchmarks.md, issue 23)."""
    if a.dtype != np.float16:
        return a
    if a.size == 0:
        return a.astype(np.float32)
    rows = np.ascontiguousarray(a).reshape(-1, a.shape[-1] if a.ndim else 1)
    return cv2.convertFp16(rows).reshape(a.shape)


def infer_with(network: Network, model: Model, *outputs: str) -> Infer:
    """`model` as the pipelines call it: one example's input (the array, for a model of one input; else
    a dict by name) → the output (an array, or a tuple in order when several are named or the model has
    several and none is named). FP16 outputs (what crosses the wire) arrive as float32."""
    names = outputs or model.output_names

    async def infer(x):
        out = await network.run(model, x if isinstance(x, dict) else {model.inputs[0].name: x}, names)
        arrays = [as_float32(out[name]) for name in names]
        return arrays[0] if len(names) == 1 else tuple(arrays)

    return infer

"""How the pipelines reach a network: `Network.run(model, inputs)` with a registry entry
(fashionpixel/models.py). Triton implements it in the services (services/common/triton.py),
`OnnxNetwork` in-process for the evaluations; `infer_with` shapes either as the pipelines'
`infer` callables (fashionpixel/stages.py)."""

from typing import Protocol

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


def infer_with(network: Network, model: Model, *outputs: str) -> Infer:
    """`model` as the pipelines call it: one example's input (the array, for a model of one input; else
    a dict by name) → the output (an array, or a tuple in order when several are named or the model has
    several and none is named)."""
    names = outputs or model.output_names

    async def infer(x):
        out = await network.run(model, x if isinstance(x, dict) else {model.inputs[0].name: x}, names)
        return out[names[0]] if len(names) == 1 else tuple(out[name] for name in names)

    return infer

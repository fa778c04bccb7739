"""Every served network's contract in one place: its Triton name (its folder in model_repository/),
the canvas it sees, and its tensors. The services and the evaluations call the networks through these
entries (fashionpixel/networks.py); tests/test_model_registry.py checks the committed Triton configs
and ONNX files against them."""

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fashionpixel.labels import FASHION_CLASSES, GARMENT_CLASSES, PERSON_CLASSES
from fashionpixel.pose import KEYPOINTS

DTYPES = {"UINT8": np.uint8, "FP16": np.float16}  # Triton's type names → numpy's


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str  # Triton's type name without TYPE_: UINT8, FP16
    dims: tuple[int, ...]  # without the batch axis, which every model has first


@dataclass(frozen=True)
class Model:
    name: str
    canvas: tuple[int, int]  # (width, height) of the picture the network sees
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def onnx_path(self, repository: Path, version: int = 1) -> Path:
        return repository / self.name / str(version) / "model.onnx"

    def batch_of_one(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One example's inputs → a batch of one. A wrong name, dtype or shape is the caller's bug:
        it is refused here with the contract in the message rather than left to the server."""
        if sorted(inputs) != sorted(t.name for t in self.inputs):
            raise ValueError(f"{self.name} takes {[t.name for t in self.inputs]}, not {sorted(inputs)}")
        for t in self.inputs:
            array = inputs[t.name]
            if array.shape != t.dims or array.dtype != DTYPES[t.dtype]:
                raise ValueError(f"{self.name} input {t.name}: {array.dtype} {array.shape}, not {t.dtype} {t.dims}")
        return {t.name: inputs[t.name][None] for t in self.inputs}


def hwc(canvas: tuple[int, int], channels: int) -> tuple[int, int, int]:
    """Dims of a picture on `canvas` (uint8, channels last)."""
    return canvas[1], canvas[0], channels


def chw(channels: int, canvas: tuple[int, int], stride: int = 1) -> tuple[int, int, int]:
    """Dims of per-class maps over `canvas` (channels first), `stride` canvas pixels per cell."""
    return channels, canvas[1] // stride, canvas[0] // stride


SEGMENTATION_CANVAS = (256, 384)  # 2:3 like the photos
POSE_CANVAS = (192, 256)
HEATMAP_STRIDE = 4  # the pose network's heatmaps have one cell per 4×4 canvas pixels
GENERATOR_CANVAS = (128, 192)  # skin generation and pose transfer
SKIN_CHANNELS = 7  # apparel_head_foot RGB + pose RGB + skin mask (fashionpixel/skin.py)

SEGMENTATION_PROBABILITIES = (
    Tensor("person", "FP16", chw(len(PERSON_CLASSES), SEGMENTATION_CANVAS)),
    Tensor("fashion", "FP16", chw(len(FASHION_CLASSES), SEGMENTATION_CANVAS)),
)
SEGMENTATION = Model(
    "segmentation",
    SEGMENTATION_CANVAS,
    inputs=(Tensor("image", "UINT8", hwc(SEGMENTATION_CANVAS, 3)),),
    # and its routing head's answer: the probability that the frame cuts the person (export/routing_head.py)
    outputs=(*SEGMENTATION_PROBABILITIES, Tensor("cut", "FP16", (1,))),
)
# the crop specialist (fashionpixel/segmentation.py), trained on product crops only: the probabilities
SEGMENTATION_CROPS = replace(SEGMENTATION, name="segmentation_crops", outputs=SEGMENTATION_PROBABILITIES)
CUTOUT = Model(
    "cutout",
    SEGMENTATION_CANVAS,
    inputs=SEGMENTATION.inputs,
    outputs=(Tensor("garment", "FP16", chw(len(GARMENT_CLASSES), SEGMENTATION_CANVAS)),),
)
SKIN = Model(
    "skin",
    GENERATOR_CANVAS,
    inputs=(Tensor("inputs", "UINT8", hwc(GENERATOR_CANVAS, SKIN_CHANNELS)),),
    outputs=(Tensor("image", "UINT8", hwc(GENERATOR_CANVAS, 3)),),
)
POSE = Model(
    "pose",
    POSE_CANVAS,
    inputs=(Tensor("image", "UINT8", hwc(POSE_CANVAS, 3)),),
    outputs=(Tensor("heatmaps", "FP16", chw(len(KEYPOINTS), POSE_CANVAS, HEATMAP_STRIDE)),),
)
POSE_CROPS = replace(POSE, name="pose_crops")  # the crop specialist (fashionpixel/keypoints.py)
POSE_TRANSFER = Model(  # the inputs of fashionpixel/pose_transfer.network_inputs
    "pose_transfer",
    GENERATOR_CANVAS,
    inputs=(
        Tensor("source", "UINT8", hwc(GENERATOR_CANVAS, 3)),  # the source person on white
        Tensor("parts", "UINT8", hwc(GENERATOR_CANVAS, 1)),  # its part indices
        Tensor("pose", "UINT8", hwc(GENERATOR_CANVAS, len(KEYPOINTS))),  # target heatmaps
        Tensor("warped", "UINT8", hwc(GENERATOR_CANVAS, 4)),
    ),  # part-wise warp + coverage
    outputs=(
        Tensor("image", "UINT8", hwc(GENERATOR_CANVAS, 3)),  # the result on the canvas
        # the heads the service composes at the output's resolution (fashionpixel/pose_transfer.py)
        Tensor("gate", "UINT8", hwc(GENERATOR_CANVAS, 1)),  # 255: take the warp's pixel
        Tensor("alpha", "UINT8", hwc(GENERATOR_CANVAS, 1)),  # 255: the person
        Tensor("painted", "UINT8", hwc(GENERATOR_CANVAS, 3)),  # the network's own RGB
    ),
)

MODELS = {m.name: m for m in (SEGMENTATION, SEGMENTATION_CROPS, CUTOUT, SKIN, POSE, POSE_CROPS, POSE_TRANSFER)}

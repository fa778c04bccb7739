"""Calls of the served networks that more than one service makes, shaped as the pipelines of
fashionpixel/ take them (the in-process twin for evaluations is training/served.py)."""
import numpy as np

from services.common.triton import Triton


def parse_and_pose(triton: Triton):
    """(parse, heatmaps): the segmentation model's (person, fashion) probabilities and the pose
    model's heatmaps of one canvas."""
    async def parse(canvas: np.ndarray):
        out = await triton.infer("segmentation", {"image": canvas[None]}, ["person", "fashion"])
        return out["person"][0], out["fashion"][0]

    async def heatmaps(canvas: np.ndarray):
        return (await triton.infer("pose", {"image": canvas[None]}, ["heatmaps"]))["heatmaps"][0]
    return parse, heatmaps

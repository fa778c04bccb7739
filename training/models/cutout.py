"""The cutout network: a segmentation architecture (training/models/segmentation_archs.py) with one
head, the garment groups (none, top, bottom, dress, shoes), exported with the segmentation's
serving wrapper (SegNetServing: uint8 canvas in, float16 probabilities out)."""

import torch

from fashionpixel.labels import GARMENT_CLASSES
from training.models.segmentation_archs import ARCHITECTURES


def garment_net(arch: str = "segnet") -> torch.nn.Module:
    return ARCHITECTURES[arch](heads={"garment": len(GARMENT_CLASSES)})

"""The services of the product: their ASGI app, default port, the env variable that overrides it, and
the networks each calls."""

from dataclasses import dataclass

from fashionpixel.models import CUTOUT, POSE, POSE_TRANSFER, SEGMENTATION, SEGMENTATION_CROPS, SKIN, Model
from fashionpixel.reading import READING_MODELS


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    app: str  # uvicorn import string
    port: int
    port_env: str
    models: tuple[Model, ...]  # the networks it calls: it is ready when Triton has them


SERVICES = (
    ServiceInfo(
        "segmentation",
        "services.segmentation.app:app",
        8080,
        "SEGMENTATION_PORT",
        (SEGMENTATION, SEGMENTATION_CROPS, POSE),
    ),
    ServiceInfo("cutout", "services.cutout.app:app", 8081, "CUTOUT_PORT", (CUTOUT, POSE)),
    # skin generation and pose transfer read the person as segmentation and pose do (fashionpixel/reading.py)
    ServiceInfo("skin-generation", "services.skin.app:app", 8082, "SKIN_GENERATION_PORT", (*READING_MODELS, SKIN)),
    ServiceInfo(
        "pose-transfer", "services.pose_transfer.app:app", 8083, "POSE_TRANSFER_PORT", (*READING_MODELS, POSE_TRANSFER)
    ),
)


def service(name: str) -> ServiceInfo:
    return next(s for s in SERVICES if s.name == name)

"""The services of the product: their ASGI app, default port and the env variable that overrides it."""
from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    app: str            # uvicorn import string
    port: int
    port_env: str
    models: tuple[str, ...]


SERVICES = (
    ServiceInfo("segmentation", "services.segmentation.app:app", 8080, "SEGMENTATION_PORT", ("segmentation",)),
    ServiceInfo("cutout", "services.cutout.app:app", 8081, "CUTOUT_PORT", ("cutout",)),
    ServiceInfo("skin-generation", "services.skin.app:app", 8082, "SKIN_GENERATION_PORT", ("segmentation", "pose", "skin")),
    ServiceInfo("pose-transfer", "services.pose_transfer.app:app", 8083, "POSE_TRANSFER_PORT",
                ("segmentation", "pose", "pose_transfer")),
)

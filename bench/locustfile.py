"""Load test of every endpoint with locust: one user class per service, a real photo as the body.

    locust -f bench/locustfile.py --headless -u 16 -r 4 -t 2m          # against `make up` (default ports)
    locust -f bench/locustfile.py                                       # web UI on :8089

Each service's base URL comes from <NAME>_URL (e.g. SEGMENTATION_URL=http://host:8080), defaulting to
localhost and the port in services/catalog.py. A 503 (saturated) counts as a failure: tune MAX_INFLIGHT
and the client count until there are none.
"""

import os
from pathlib import Path

from locust import HttpUser, between, task

from services.catalog import SERVICES

DATA_DIR = Path(os.environ.get("DATA_DIR", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))


def _photo() -> bytes:
    path = DATA_DIR / "fashionista" / "images" / "0001.jpg"
    if path.exists():
        return path.read_bytes()
    from tests.images import encode, synthetic_photo

    return encode(synthetic_photo(400, 600), quality=90)


PHOTO = _photo()


def _url(name: str) -> str:
    info = next(s for s in SERVICES if s.name == name)
    return os.environ.get(f"{name.upper().replace('-', '_')}_URL", f"http://127.0.0.1:{info.port}")


class _PhotoUser(HttpUser):
    abstract = True
    wait_time = between(0.0, 0.2)

    def post(self, path: str, name: str, fields: tuple[str, ...] = ("image",), **params):
        self.client.post(path, params=params, files={f: (f"{f}.jpg", PHOTO, "image/jpeg") for f in fields}, name=name)


class SegmentationUser(_PhotoUser):
    host = _url("segmentation")

    @task(3)
    def fashion(self):
        self.post("/v1/segment", "segment fashion")

    @task(1)
    def person_json(self):
        self.post("/v1/segment", "segment person json", task="person", format="json")


class CutoutUser(_PhotoUser):
    host = _url("cutout")

    @task
    def all_garments(self):
        self.post("/v1/cutout", "cutout all")

    @task
    def top_mask(self):
        self.post("/v1/cutout", "cutout top mask", garment="top", format="mask", crop="true")


class SkinUser(_PhotoUser):
    host = _url("skin-generation")

    @task
    def skin(self):
        self.post("/v1/skin", "skin")


class PoseUser(_PhotoUser):
    host = _url("pose-transfer")

    @task(3)
    def pose(self):
        self.post("/v1/pose", "pose")

    @task(1)
    def pose_transfer(self):
        self.post("/v1/pose-transfer", "pose transfer", fields=("source", "target"))

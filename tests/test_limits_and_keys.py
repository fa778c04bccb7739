"""Upload limits and API keys, on a second segmentation service configured by environment."""

import httpx
import numpy as np
import pytest

from tests.conftest import extra_segmentation_service
from tests.images import encode, synthetic_photo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def strict(stack, tmp_path_factory):
    """Same Triton, a service with small limits and API keys."""
    other = extra_segmentation_service(
        stack,
        tmp_path_factory.mktemp("home"),
        "strict",
        API_KEYS="key-one, key-two",
        MAX_UPLOAD_BYTES="60000",
        MAX_IMAGE_PIXELS="250000",
    )
    try:
        with httpx.Client(base_url=other.service_url("segmentation"), timeout=60) as client:
            yield client
    finally:
        other.stop()


def test_api_keys(strict):
    img = encode(synthetic_photo(200, 300), quality=70)
    files = {"image": ("a.jpg", img, "image/jpeg")}
    r = strict.post("/v1/segment", files=files)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert strict.post("/v1/segment", files=files, headers={"X-API-Key": "wrong"}).status_code == 401
    assert strict.post("/v1/segment", files=files, headers={"X-API-Key": "key-two"}).status_code == 200
    for open_path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert strict.get(open_path).status_code == 200


def test_byte_and_pixel_limits(strict):
    headers = {"X-API-Key": "key-one"}
    noisy = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    big = encode(noisy, "PNG")  # incompressible: well over 60000 bytes
    assert len(big) > 60000
    r = strict.post("/v1/segment", files={"image": ("a.png", big, "image/png")}, headers=headers)
    assert r.status_code == 413 and r.json()["status"] == 413
    many = encode(synthetic_photo(600, 600), quality=30)  # small file, 360000 pixels > 250000
    assert len(many) < 60000
    r = strict.post("/v1/segment", files={"image": ("a.jpg", many, "image/jpeg")}, headers=headers)
    assert r.status_code == 413
    # a body far over the limit is refused from its Content-Length, before it is parsed
    r = strict.post(
        "/v1/segment", content=b"x" * 2_000_000, headers=headers | {"content-type": "multipart/form-data; boundary=x"}
    )
    assert r.status_code == 413

"""POST /v1/pose on the pose-transfer service, with a real Triton behind it."""

import io

import httpx
import pytest
from PIL import Image

from tests.images import assert_problem, bad_uploads, encode, synthetic_photo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pose(stack):
    with httpx.Client(base_url=stack.service_url("pose-transfer"), timeout=120) as client:
        yield client


def post(client, image: bytes, **kw):
    return client.post("/v1/pose", files={"image": ("p.jpg", image, "image/jpeg")}, **kw)


def check_schema(body, w, h):
    assert body["format"] == "openpose18" and body["width"] == w and body["height"] == h
    assert len(body["keypoints"]) == 18 and len(body["names"]) == 18
    for x, y, s in body["keypoints"]:
        assert 0 <= s <= 1
        if s == 0:
            assert (x, y) == (-1, -1)
        else:
            assert 0 <= x < w and 0 <= y < h


def test_schema_on_a_photo(pose, photo):
    r = post(pose, encode(photo))
    assert r.status_code == 200, r.text
    check_schema(r.json(), photo.shape[1], photo.shape[0])
    assert "infer" in r.headers["server-timing"]


@pytest.mark.parametrize("w,h", [(640, 360), (300, 450), (64, 64)])
def test_landscape_portrait_and_small(pose, w, h):
    r = post(pose, encode(synthetic_photo(w, h)))
    assert r.status_code == 200
    check_schema(r.json(), w, h)


def test_png_limb_image(pose, photo):
    r = pose.post("/v1/pose", params={"format": "png"}, files={"image": ("p.jpg", encode(photo), "image/jpeg")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (photo.shape[1], photo.shape[0])


@pytest.mark.parametrize("name,data,status", bad_uploads())
def test_bad_images(pose, name, data, status):
    assert_problem(post(pose, data), status)
    assert pose.get("/readyz").status_code == 200


def test_bad_parameter(pose, photo):
    r = pose.post("/v1/pose", params={"format": "gif"}, files={"image": ("p.jpg", encode(photo), "image/jpeg")})
    assert r.status_code == 422

"""POST /v1/pose-transfer on the pose-transfer service, with a real Triton behind it."""

import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image

from fashionpixel.pose import FLIP_INDEX
from tests.images import assert_problem, bad_uploads, encode, synthetic_photo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(base_url=stack.service_url("pose-transfer"), timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def photo_keypoints(client, photo):
    r = client.post("/v1/pose", files={"image": ("p.jpg", encode(photo), "image/jpeg")})
    assert r.status_code == 200
    return r.json()


def transfer(client, source: bytes, target: bytes | None = None, keypoints: dict | str | None = None):
    files = {"source": ("s.jpg", source, "image/jpeg")}
    if target is not None:
        files["target"] = ("t.jpg", target, "image/jpeg")
    data = {}
    if keypoints is not None:
        data["target_keypoints"] = keypoints if isinstance(keypoints, str) else json.dumps(keypoints)
    return client.post("/v1/pose-transfer", files=files, data=data)


def rgb(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(response.content))
    assert img.mode == "RGB"
    return np.asarray(img)


def mirrored(keypoints: dict) -> dict:
    """The /v1/pose answer of the mirrored photo, computed from the photo's own answer."""
    k = [keypoints["keypoints"][i] for i in FLIP_INDEX]
    k = [[keypoints["width"] - 1 - x, y, s] if s > 0 else [-1, -1, 0] for x, y, s in k]
    return {"width": keypoints["width"], "height": keypoints["height"], "keypoints": k}


def test_target_photo_gives_its_size_on_white(client, photo):
    target = synthetic_photo(240, 320)
    r = transfer(client, encode(photo), target=encode(target))
    out = rgb(r)
    assert out.shape == (320, 240, 3)
    assert "infer" in r.headers["server-timing"]
    assert (out[:4] > 240).all(), "the top rows (above any person) are white"


def test_target_keypoints_render_the_person_where_the_pose_is(client, photo, photo_keypoints):
    """Keypoints squeezed into the left half: the person is drawn there."""
    h, w = photo.shape[:2]
    shifted = dict(photo_keypoints)
    shifted["keypoints"] = [[x * 0.5, y, s] if s > 0 else [-1, -1, 0] for x, y, s in photo_keypoints["keypoints"]]
    out = rgb(transfer(client, encode(photo), keypoints=shifted))
    assert out.shape == (h, w, 3)
    ink = out.astype(int).sum(2) < 600  # not white
    cols = np.nonzero(ink.any(0))[0]
    assert ink.mean() > 0.03, "a person was drawn"
    # every keypoint sits in the left half, so the drawing does too (mostly)
    assert np.mean(np.nonzero(ink)[1] < w * 0.55) > 0.8, cols


def test_mirrored_pose_resembles_the_mirrored_photo(client, photo, photo_keypoints):
    out = rgb(transfer(client, encode(photo), keypoints=mirrored(photo_keypoints)))
    mirror = photo[:, ::-1]
    ink = out.astype(int).sum(2) < 600
    drawn, truth = out[ink].astype(float), mirror[ink].astype(float)
    # the generator carries the person's appearance: where it drew, the mean colour is the mirrored
    # photo's there (per channel, 0-255)
    assert np.abs(drawn.mean(0) - truth.mean(0)).max() < 30, (drawn.mean(0), truth.mean(0))
    # and pixel by pixel it is clearly closer to the photo than a flat grey figure in its place would be
    # (measured: 0.63 of the grey figure's error on Fashionista 0001, 0.18 on the synthetic photo)
    error, grey = np.abs(drawn - truth).mean(), np.abs(128 - truth).mean()
    assert error < 0.75 * grey, (error, grey)


@pytest.mark.parametrize("w,h", [(512, 256), (200, 600), (64, 64)])
def test_canvas_sizes(client, photo, photo_keypoints, w, h):
    sx, sy = w / photo_keypoints["width"], h / photo_keypoints["height"]
    k = [[x * sx, y * sy] if s > 0 else [-1, -1] for x, y, s in photo_keypoints["keypoints"]]
    out = rgb(transfer(client, encode(photo), keypoints={"width": w, "height": h, "keypoints": k}))
    assert out.shape == (h, w, 3)


def test_missing_keypoints_still_render(client, photo, photo_keypoints):
    k = [p if i in (1, 2, 5, 8, 11) else [-1, -1, 0] for i, p in enumerate(photo_keypoints["keypoints"])]
    out = rgb(transfer(client, encode(photo), keypoints=dict(photo_keypoints, keypoints=k)))
    assert out.shape == photo.shape
    none = [[-1, -1]] * 18
    out = rgb(transfer(client, encode(photo), keypoints=dict(photo_keypoints, keypoints=none)))
    assert out.shape == photo.shape
    # degenerate poses (every point in one spot, or far off the canvas) are drawn, not crashed on
    for k in ([[50, 50]] * 18, [[1e9, -5]] * 9 + [[3, 1e12]] * 9):
        assert rgb(transfer(client, encode(photo), keypoints=dict(photo_keypoints, keypoints=k))).shape == photo.shape


def test_keypoints_as_a_file_part(client, photo, photo_keypoints):
    files = {
        "source": ("s.jpg", encode(photo), "image/jpeg"),
        "target_keypoints": ("k.json", json.dumps(photo_keypoints).encode(), "application/json"),
    }
    assert rgb(client.post("/v1/pose-transfer", files=files)).shape == photo.shape


@pytest.mark.parametrize(
    "keypoints,status",
    [
        ("not json", 422),
        ({"width": 100, "height": 100}, 422),  # no keypoints
        ({"width": 100, "height": 100, "keypoints": [[1, 2]] * 17}, 422),  # 17 points
        ({"width": 100, "height": 100, "keypoints": [["a", 2]] * 18}, 422),  # not numbers
        ({"width": "100", "height": 100, "keypoints": [[1, 2]] * 18}, 422),  # width not an int
        ({"width": 4, "height": 100, "keypoints": [[1, 2]] * 18}, 422),  # too small
        ({"width": 100000, "height": 100000, "keypoints": [[1, 2]] * 18}, 413),  # absurd canvas
        ([[1, 2]] * 18, 422),  # no canvas size
    ],
)
def test_bad_target_keypoints(client, photo, keypoints, status):
    assert_problem(transfer(client, encode(photo), keypoints=keypoints), status)


def test_exactly_one_target(client, photo, photo_keypoints):
    assert_problem(transfer(client, encode(photo)), 422)
    assert_problem(transfer(client, encode(photo), target=encode(photo), keypoints=photo_keypoints), 422)
    r = client.post("/v1/pose-transfer", files={"target": ("t.jpg", encode(photo), "image/jpeg")})
    assert_problem(r, 422)


@pytest.mark.parametrize("name,data,status", bad_uploads())
def test_bad_source_and_target_images(client, photo, name, data, status):
    assert_problem(transfer(client, data, target=encode(photo)), status)
    assert_problem(transfer(client, encode(photo), target=data), status)
    assert client.get("/readyz").status_code == 200

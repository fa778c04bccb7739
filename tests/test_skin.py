"""Skin generation: the dataset builder on real photos, and POST /v1/skin with a real Triton."""

import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image

from fashionpixel.skin import CANVAS_H, CANVAS_W, SKIN_CLASS, WHITE, body_skin
from tests.images import assert_problem, bad_uploads, encode, synthetic_photo


@pytest.fixture(scope="module")
def labelled(data_dir):
    from training.datasets import keypoint_samples, read_image, read_labels

    s, k = next((s, k) for s, k in keypoint_samples() if s.dataset == "fashionista" and s.name == "0001")
    person, fashion = read_labels(s)
    return read_image(s), person.astype(bool), fashion, k


@pytest.mark.data
def test_body_skin_keeps_head_and_feet(labelled):
    image, person, fashion, k = labelled
    skin = fashion == SKIN_CLASS
    region = body_skin(skin, person, k)
    assert region.any() and not (region & ~skin).any()
    rows = np.nonzero(region.any(1))[0]
    assert rows.min() >= k[1, 1]  # nothing of the head (above the neck)
    assert rows.max() <= max(k[10, 1], k[13, 1])  # nor of the feet (below the ankles)
    assert skin[: int(k[1, 1])].any()  # while the face is skin, and stays


@pytest.mark.data
def test_dataset_example_on_a_real_photo(labelled):
    from training.skin_data import example

    image, person, fashion, k = labelled
    x, target = example(image, person, fashion, k)
    assert x.shape == (CANVAS_H, CANVAS_W, 7) and target.shape == (CANVAS_H, CANVAS_W, 3)
    ahf, pose, mask = x[..., :3], x[..., 3:6], x[..., 6]
    assert set(np.unique(mask)) == {0, 255}
    assert (ahf[mask == 255] == WHITE).mean() > 0.5  # the skin to generate is painted out
    same = mask == 0
    assert np.abs(ahf[same].astype(int) - target[same]).max() <= 1  # elsewhere input = target
    assert (target == WHITE).all(2).mean() > 0.4  # the person on white
    assert pose.any() and (pose[mask == 0] > 0).any()  # the pose lines are drawn


@pytest.fixture(scope="module")
def skin_client(stack):
    with httpx.Client(base_url=stack.service_url("skin-generation"), timeout=120) as client:
        yield client


def post(client, image: bytes, files=None, data=None):
    return client.post("/v1/skin", files={"image": ("p.png", image, "image/png")} | (files or {}), data=data)


def rgba(r) -> np.ndarray:
    assert r.status_code == 200, r.text
    img = Image.open(io.BytesIO(r.content))
    assert r.headers["content-type"] == "image/png" and img.mode == "RGBA"
    return np.asarray(img)


@pytest.mark.slow
def test_from_a_plain_photo(skin_client, photo):
    out = rgba(post(skin_client, encode(photo, "PNG")))
    assert out.shape[:2] == photo.shape[:2]
    alpha = out[..., 3]
    assert 0.1 < (alpha == 255).mean() < 0.7  # the person's silhouette
    changed = (out[..., :3] != photo).any(2)
    assert 0 < changed.mean() < 0.1  # only the skin region was repainted
    stages = {
        p.split(";")[0].strip() for p in post(skin_client, encode(photo, "PNG")).headers["server-timing"].split(",")
    }
    assert {"decode", "preprocess", "infer", "postprocess", "encode"} <= stages


@pytest.mark.slow
def test_given_mask_and_keypoints_are_used(skin_client, photo):
    h, w = photo.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    mask[h // 2 : h // 2 + 40, w // 3 : w // 3 + 40] = 255  # a square the parsing would never choose
    keypoints = [[-1, -1, 0]] * 18
    out = rgba(
        post(
            skin_client,
            encode(photo, "PNG"),
            files={"skin_mask": ("m.png", encode(mask, "PNG"), "image/png")},
            data={"keypoints": json.dumps({"keypoints": keypoints})},
        )
    )
    changed = (out[..., :3] != photo).any(2)
    assert changed[mask == 255].mean() > 0.5 and not changed[mask == 0].any()
    assert (out[..., 3][mask == 255] == 255).all()  # the generated region is opaque


@pytest.mark.slow
@pytest.mark.parametrize(
    "keypoints",
    [
        '{"keypoints": [[1, 2]]}',
        "[1, 2, 3]",
        "not json",
        '[["a", 1]]',
        json.dumps([[0, 0, float("nan")]] * 18).replace("NaN", "1e999"),
    ],
)
def test_bad_keypoints(skin_client, photo, keypoints):
    assert_problem(post(skin_client, encode(photo, "PNG"), data={"keypoints": keypoints}), 422)


@pytest.mark.slow
def test_bad_masks(skin_client, photo):
    wrong_size = encode(np.zeros((10 + photo.shape[0], photo.shape[1]), np.uint8), "PNG")
    assert_problem(
        post(skin_client, encode(photo, "PNG"), files={"skin_mask": ("m.png", wrong_size, "image/png")}), 422
    )
    assert_problem(post(skin_client, encode(photo, "PNG"), files={"skin_mask": ("m.png", b"junk", "image/png")}), 415)


@pytest.mark.slow
@pytest.mark.parametrize("name,data,status", bad_uploads())
def test_bad_images(skin_client, name, data, status):
    assert_problem(post(skin_client, data), status)
    assert skin_client.get("/readyz").status_code == 200


@pytest.mark.slow
def test_sizes(skin_client):
    for w, h in [(640, 360), (48, 64)]:
        assert rgba(post(skin_client, encode(synthetic_photo(w, h), "PNG"))).shape == (h, w, 4)

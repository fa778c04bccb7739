"""The segmentation service against the API contract, with a real Triton behind it."""

import base64
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from tests.images import assert_problem, bad_uploads, encode, exif_rotated_jpeg, synthetic_photo

pytestmark = pytest.mark.slow


def post(client, image: bytes, params=None, filename="photo.jpg", mime="image/jpeg", **kw):
    return client.post("/v1/segment", params=params, files={"image": (filename, image, mime)}, **kw)


def png_labels(body: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(body))
    assert img.format == "PNG" and img.mode == "P"
    return np.asarray(img)


@pytest.mark.parametrize("task,n", [("fashion", 7), ("person", 2)])
def test_png_has_input_size_and_class_values(seg, photo, task, n):
    r = post(seg, encode(photo), {"task": task})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    labels = png_labels(r.content)
    assert labels.shape == photo.shape[:2]
    assert set(np.unique(labels)) <= set(range(n))
    assert len(np.unique(labels)) >= 2  # a person photo is not all one class


def test_json_format(seg, photo):
    r = post(seg, encode(photo), data={"format": "json", "task": "fashion"})
    assert r.status_code == 200
    body = r.json()
    assert body["task"] == "fashion" and body["width"] == photo.shape[1] and body["height"] == photo.shape[0]
    assert body["classes"] == ["background", "skin", "hair", "t-shirt", "shoes", "pants", "dress"]
    assert abs(sum(body["class_fractions"].values()) - 1) < 1e-3
    labels = png_labels(base64.b64decode(body["mask_png"]))
    assert labels.shape == photo.shape[:2]
    # the fractions describe the mask that came with them
    assert abs(body["class_fractions"]["background"] - (labels == 0).mean()) < 1e-3
    assert {"decode", "infer", "postprocess", "encode"} <= set(body["timings_ms"])


def test_overlay_is_rgb_photo_sized(seg, photo):
    r = post(seg, encode(photo), {"format": "overlay"})
    assert r.status_code == 200
    img = Image.open(io.BytesIO(r.content))
    assert img.mode == "RGB" and img.size == (photo.shape[1], photo.shape[0])
    assert not np.array_equal(np.asarray(img), photo)  # something was coloured


@pytest.mark.parametrize(
    "params",
    [
        {"crf": "true"},
        {"min_region": "5000"},
        {"superpixels": "true"},
        {"crf": "true", "min_region": "300", "superpixels": "true"},
    ],
)
def test_postprocessing_switches(seg, photo, params):
    plain = png_labels(post(seg, encode(photo), {"crf": "false", "min_region": "0", "superpixels": "false"}).content)
    r = post(seg, encode(photo), params)
    assert r.status_code == 200
    refined = png_labels(r.content)
    assert refined.shape == plain.shape
    assert 0 < (refined != plain).mean() < 0.2  # it changed something, but did not wreck the map


def test_min_region_leaves_no_small_regions(seg, photo):
    import cv2

    labels = png_labels(post(seg, encode(photo), {"min_region": "2000"}).content)
    for cls in np.unique(labels):
        _, _, stats, _ = cv2.connectedComponentsWithStats((labels == cls).astype(np.uint8), connectivity=8)
        assert stats[1:, cv2.CC_STAT_AREA].min() >= 2000


@pytest.mark.parametrize("fmt,mime", [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_png_and_webp_inputs(seg, fmt, mime):
    img = synthetic_photo(200, 320)
    r = post(seg, encode(img, fmt), filename="x", mime=mime)
    assert r.status_code == 200
    assert png_labels(r.content).shape == (320, 200)


def test_exif_orientation_is_applied(seg):
    stored = synthetic_photo(320, 200)  # stored landscape, EXIF says rotate → portrait 200×320
    r = post(seg, exif_rotated_jpeg(stored))
    assert r.status_code == 200
    assert png_labels(r.content).shape == (320, 200)


def test_landscape_and_small_images(seg):
    for w, h in [(640, 360), (48, 64)]:
        r = post(seg, encode(synthetic_photo(w, h)))
        assert r.status_code == 200
        assert png_labels(r.content).shape == (h, w)


def test_headers_request_id_and_server_timing(seg, photo):
    r = post(seg, encode(photo), headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    stages = {part.split(";")[0].strip() for part in r.headers["server-timing"].split(",")}
    assert {"decode", "preprocess", "infer", "postprocess", "encode"} <= stages
    assert post(seg, encode(photo)).headers["x-request-id"]  # generated when absent


@pytest.mark.parametrize("name,data,status", bad_uploads())
def test_bad_images(seg, name, data, status):
    assert_problem(post(seg, data), status)
    assert seg.get("/readyz").status_code == 200  # and the service is still fine


@pytest.mark.parametrize(
    "params",
    [
        {"task": "shoes"},
        {"format": "gif"},
        {"crf": "maybe"},
        {"min_region": "-1"},
        {"min_region": "lots"},
        {"superpixels": "2"},
    ],
)
def test_bad_parameters(seg, photo, params):
    body = assert_problem(post(seg, encode(photo), params), 422)
    assert body["errors"]


def test_missing_field_and_wrong_body(seg, photo):
    assert_problem(seg.post("/v1/segment", files={"picture": ("a.jpg", encode(photo), "image/jpeg")}), 422)
    assert_problem(
        seg.post("/v1/segment", data={"image": "not a file"}, files={"other": ("a.jpg", encode(photo), "image/jpeg")}),
        422,
    )
    assert_problem(seg.post("/v1/segment", content=encode(photo), headers={"content-type": "image/jpeg"}), 415)
    assert_problem(
        seg.post("/v1/segment", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}),
        422,
    )
    assert_problem(seg.get("/v1/segment"), 405)
    assert_problem(seg.get("/v1/nothing"), 404)


def test_health_ready_metrics_docs(seg, photo):
    assert seg.get("/healthz").status_code == 200
    ready = seg.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    post(seg, encode(photo))
    metrics = seg.get("/metrics").text
    assert 'http_requests_total{method="POST",route="/v1/segment",service="segmentation",status="200"}' in metrics
    assert "triton_infer_duration_seconds_bucket" in metrics
    assert seg.get("/docs").status_code == 200
    spec = seg.get("/openapi.json").json()
    body = spec["paths"]["/v1/segment"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"image", "task", "format", "crf", "min_region", "superpixels"} <= set(body["properties"])


def test_concurrent_requests_all_succeed(seg, photo):
    data = encode(photo)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: post(seg, data).status_code, range(16)))
    assert codes == [200] * 16

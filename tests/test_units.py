"""Fast tests of the pure code: letterbox, refinement, labels, split, image limits, configs."""
import numpy as np
import pytest

from fashionpixel.labels import CCP_GARMENT_GROUPS, CCP_TO_FASHION, FASHION_CLASSES, ccp_lookup
from fashionpixel.letterbox import PAD_VALUE, letterbox, unletterbox
from fashionpixel.refine import remove_small_regions, superpixel_vote, work_size
from services.common.errors import Problem
from services.common.imaging import decode_rgb, encode_palette_png
from services.common.settings import Settings
from tests.images import encode, exif_rotated_jpeg, png_claiming, synthetic_photo, truncated_jpeg
from training.datasets import is_validation
from training.metrics import confusion, summarize


def test_letterbox_round_trip_keeps_geometry():
    img = synthetic_photo(500, 300)  # landscape into a portrait canvas
    canvas, box = letterbox(img, 256, 384)
    assert canvas.shape == (384, 256, 3)
    assert box.w == 256 and abs(box.h - 154) <= 1 and box.x == 0
    assert (canvas[: box.y] == PAD_VALUE).all()
    maps = np.zeros((2, 384, 256), np.float32)
    maps[1, box.y:box.y + box.h, box.x:box.x + box.w] = 1
    back = unletterbox(maps, box, 500, 300)
    assert back.shape == (2, 300, 500) and np.allclose(back[1], 1)


def test_remove_small_regions_absorbs_islands():
    labels = np.zeros((100, 100), np.uint8)
    labels[20:80, 20:80] = 3
    labels[50:53, 50:53] = 5  # a 9-pixel island inside class 3
    labels[0:2, 0:2] = 4      # a 4-pixel island in the corner, inside background
    out = remove_small_regions(labels, 20)
    assert (out[50:53, 50:53] == 3).all() and (out[0:2, 0:2] == 0).all()
    assert (out[20:80, 20:80] == 3).all()
    assert np.array_equal(remove_small_regions(labels, 0), labels)


def test_superpixel_vote_snaps_to_colour_edges():
    rng = np.random.default_rng(0)
    img = np.full((80, 80, 3), 60, np.int16)
    img[:, 40:] = 200
    img = (img + rng.integers(-15, 15, img.shape)).clip(0, 255).astype(np.uint8)
    truth = np.zeros((80, 80), np.uint8)
    truth[:, 40:] = 1
    labels = np.zeros((80, 80), np.uint8)
    labels[:, 35:] = 1  # the label edge is 5 pixels off the colour edge
    out = superpixel_vote(img, labels)
    assert (out != truth).mean() < 0.5 * (labels != truth).mean()


def test_work_size_caps_pixels():
    assert work_size(400, 600, 1_000_000) == (400, 600)
    w, h = work_size(4000, 6000, 1_000_000)
    assert w * h <= 1_010_000 and abs(w / h - 4000 / 6000) < 0.01


def test_ccp_mapping_covers_known_names():
    names = ["null", "skin", "hair", "t-shirt", "jacket", "skirt", "sneakers", "jeans", "bag"]
    table = {t: [n for n in srcs if n in names] for t, srcs in CCP_TO_FASHION.items()}
    lut = ccp_lookup(names, table, FASHION_CLASSES)
    assert [FASHION_CLASSES[lut[i]] for i in range(len(names))] == [
        "background", "skin", "hair", "t-shirt", "background", "dress", "shoes", "pants", "background"]
    grouped = [n for srcs in CCP_GARMENT_GROUPS.values() for n in srcs]
    assert len(grouped) == len(set(grouped))  # each fine label in one group only


def test_split_is_stable_and_about_fifteen_percent():
    names = [f"{i:04d}" for i in range(1, 2000)]
    val = [n for n in names if is_validation("ccp", n)]
    assert 0.12 < len(val) / len(names) < 0.18
    assert val == [n for n in names if is_validation("ccp", n)]


def test_metrics():
    truth = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 1]])
    s = summarize(confusion(pred, truth, 2), ("a", "b"))
    assert s["iou"] == {"a": 0.5, "b": 2 / 3} and s["pixel_accuracy"] == 0.75


SETTINGS = Settings(max_upload_bytes=200_000, max_image_pixels=1_000_000)


@pytest.mark.parametrize("data,status", [
    (b"", 415), (b"GIF89a....", 415), (truncated_jpeg(synthetic_photo()), 415),
    (png_claiming(40000, 40000), 413), (encode(np.zeros((8, 8, 3), np.uint8), "PNG"), 422),
    (b"\xff\xd8" + b"\x00" * 300_000, 413),
])
def test_decode_refuses_bad_uploads(data, status):
    with pytest.raises(Problem) as err:
        decode_rgb(data, SETTINGS)
    assert err.value.status == status


def test_decode_applies_exif_and_alpha():
    assert decode_rgb(exif_rotated_jpeg(synthetic_photo(320, 200)), SETTINGS).shape == (320, 200, 3)
    rgba = np.zeros((40, 40, 4), np.uint8)
    out = decode_rgb(encode(rgba, "PNG"), SETTINGS)
    assert out.shape == (40, 40, 3) and (out == 255).all()  # transparent → white


def test_palette_png_pixel_values_are_indices():
    import io
    from PIL import Image
    labels = np.arange(7, dtype=np.uint8).repeat(10).reshape(7, 10)
    img = Image.open(io.BytesIO(encode_palette_png(labels, np.zeros((7, 3), np.uint8))))
    assert img.mode == "P" and np.array_equal(np.asarray(img), labels)

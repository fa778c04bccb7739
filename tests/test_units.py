"""Fast tests of the pure code: letterbox, refinement, labels, split, image limits, configs."""

import numpy as np
import pytest

from fashionpixel.labels import CCP_GARMENT_GROUPS, CCP_TO_FASHION, FASHION_CLASSES, ccp_lookup
from fashionpixel.letterbox import PAD_VALUE, letterbox, unletterbox
from fashionpixel.networks import as_float32
from fashionpixel.refine import remove_small_regions, snap_to_backdrop, superpixel_vote, work_size
from services.common.errors import Problem
from services.common.imaging import decode_rgb, encode_palette_png
from services.common.settings import Settings
from tests.images import encode, exif_rotated_jpeg, png_claiming, synthetic_photo, truncated_jpeg
from training.datasets import is_validation, pseudo_samples
from training.metrics import confusion, near_outline, summarize


def test_letterbox_round_trip_keeps_geometry():
    img = synthetic_photo(500, 300)  # landscape into a portrait canvas
    canvas, box = letterbox(img, 256, 384)
    assert canvas.shape == (384, 256, 3)
    assert box.w == 256 and abs(box.h - 154) <= 1 and box.x == 0
    assert (canvas[: box.y] == PAD_VALUE).all()
    maps = np.zeros((2, 384, 256), np.float32)
    maps[1, box.y : box.y + box.h, box.x : box.x + box.w] = 1
    back = unletterbox(maps, box, 500, 300)
    assert back.shape == (2, 300, 500) and np.allclose(back[1], 1)


def test_remove_small_regions_absorbs_islands():
    labels = np.zeros((100, 100), np.uint8)
    labels[20:80, 20:80] = 3
    labels[50:53, 50:53] = 5  # a 9-pixel island inside class 3
    labels[0:2, 0:2] = 4  # a 4-pixel island in the corner, inside background
    out = remove_small_regions(labels, 20)
    assert (out[50:53, 50:53] == 3).all() and (out[0:2, 0:2] == 0).all()
    assert (out[20:80, 20:80] == 3).all()
    assert np.array_equal(remove_small_regions(labels, 0), labels)


def _figure_on(backdrop: np.ndarray, radius: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """A two-class 'person' (a red disc, left half class 1, right half class 2) on `backdrop`."""
    import cv2

    image = backdrop.copy()
    cv2.circle(image, (75, 100), radius, (200, 40, 40), -1)
    labels = np.zeros(image.shape[:2], np.uint8)
    cv2.circle(labels, (75, 100), radius, 1, -1)
    labels[:, 75:][labels[:, 75:] > 0] = 2
    return image, labels


def test_snap_to_backdrop_moves_the_outline_to_a_plain_backdrop_and_nowhere_else():
    import cv2

    plain = np.full((200, 150, 3), 235, np.uint8)
    image, truth = _figure_on(plain)
    sides = np.where(np.arange(150) < 75, 1, 2).astype(np.uint8)[None, :]  # the class of each half

    def outline(labels: np.ndarray, px: int) -> np.ndarray:  # the figure's outline moved by px
        op = cv2.erode if px < 0 else cv2.dilate
        return np.where(op((labels > 0).astype(np.uint8), np.ones((2 * abs(px) + 1,) * 2, np.uint8)) > 0, sides, 0)

    for px in (-3, 3):  # a network outline 3 px inside, then 3 px outside the figure
        guess = outline(truth, px)
        out = snap_to_backdrop(image, guess)
        before, after = np.count_nonzero(guess != truth), np.count_nonzero(out != truth)
        assert before > 800 and after < 0.05 * before, (px, before, after)  # ties at the class border remain
    busy = np.random.default_rng(0).integers(0, 255, plain.shape).astype(np.uint8)
    image, truth = _figure_on(busy)
    guess = outline(truth, -3)
    assert np.array_equal(snap_to_backdrop(image, guess), guess)  # not a plain backdrop: unchanged
    white_on_white, truth = _figure_on(plain)
    white_on_white[truth > 0] = 245  # a white garment on a white backdrop: too little contrast to judge
    guess = outline(truth, -3)
    assert np.array_equal(snap_to_backdrop(white_on_white, guess), guess)


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
    assert w * h <= 1_000_000 and abs(w / h - 4000 / 6000) < 0.01
    # rounded where that fits (400×600 at the CRF's 80k: 231×346), never a pixel over the budget
    assert work_size(400, 600, 80_000) == (231, 346)
    assert work_size(600, 600, 80_000) == (282, 282)  # rounding gives 283×283 = 80 089
    sizes = [(w, h) for w in range(90, 3000, 37) for h in range(90, 4500, 53)]
    assert all(a * b <= 80_000 for a, b in (work_size(w, h, 80_000) for w, h in sizes if w * h > 80_000))


def test_ccp_mapping_covers_known_names():
    names = ["null", "skin", "hair", "t-shirt", "jacket", "skirt", "sneakers", "jeans", "bag"]
    table = {t: [n for n in srcs if n in names] for t, srcs in CCP_TO_FASHION.items()}
    lut = ccp_lookup(names, table, FASHION_CLASSES)
    assert [FASHION_CLASSES[lut[i]] for i in range(len(names))] == [
        "background",
        "skin",
        "hair",
        "t-shirt",
        "background",
        "dress",
        "shoes",
        "pants",
        "background",
    ]
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


@pytest.mark.parametrize(
    "data,status",
    [
        (b"", 415),
        (b"GIF89a....", 415),
        (truncated_jpeg(synthetic_photo()), 415),
        (png_claiming(40000, 40000), 413),
        (encode(np.zeros((8, 8, 3), np.uint8), "PNG"), 422),
        (b"\xff\xd8" + b"\x00" * 300_000, 413),
    ],
)
def test_decode_refuses_bad_uploads(data, status):
    with pytest.raises(Problem) as err:
        decode_rgb(data, SETTINGS)
    assert err.value.status == status


def test_decode_applies_exif_and_alpha():
    assert decode_rgb(exif_rotated_jpeg(synthetic_photo(320, 200)), SETTINGS).shape == (320, 200, 3)
    rgba = np.zeros((40, 40, 4), np.uint8)
    out = decode_rgb(encode(rgba, "PNG"), SETTINGS)
    assert out.shape == (40, 40, 3) and (out == 255).all()  # transparent → white


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_jpeg_through_opencv_equals_pillow(mode):
    """JPEGs are decoded by OpenCV (faster); the pixels must be Pillow's (±1 level for CMYK)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(synthetic_photo(120, 90)).convert(mode).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    want = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    got = decode_rgb(data, Settings())
    assert got.shape == want.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - want).max() <= (1 if mode == "CMYK" else 0)


def test_palette_png_pixel_values_are_indices():
    import io

    from PIL import Image

    labels = np.arange(7, dtype=np.uint8).repeat(10).reshape(7, 10)
    palette = np.random.default_rng(0).integers(0, 256, (7, 3), dtype=np.uint8)
    img = Image.open(io.BytesIO(encode_palette_png(labels, palette)))
    assert img.mode == "P" and np.array_equal(np.asarray(img), labels)
    assert np.array_equal(np.array(img.getpalette()[:21], np.uint8).reshape(7, 3), palette)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7, 3), (5, 1, 4), (17, 33), (31, 2, 3), (300, 200, 4)])
def test_our_png_writer_is_read_back_exactly_by_pillow_and_opencv(shape):
    """encode_png writes the PNG container itself (ISA-L deflates the rows): two decoders read the same
    pixels, grey, RGB and RGBA, odd sizes, random noise and a photo-like image."""
    import io

    import cv2
    from PIL import Image

    from services.common.imaging import encode_png

    noise = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    rgb = synthetic_photo(shape[1], shape[0])
    photo = {2: rgb[..., 0], 3: rgb, 4: np.dstack([rgb, rgb[..., 1]])}[len(shape) if len(shape) == 2 else shape[2]]
    for image in (noise, np.ascontiguousarray(photo)):
        data = encode_png(image)
        Image.open(io.BytesIO(data)).verify()  # chunk CRCs and structure
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), image)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if decoded.ndim == 3:
            decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA if shape[2] == 4 else cv2.COLOR_BGR2RGB)
        assert np.array_equal(decoded, image)


def test_focus_region_covers_the_garment_without_zooming_too_far():
    from fashionpixel.cutout import FOCUS_MAX_ZOOM, focus_region

    prob = np.zeros((600, 400), np.float32)
    prob[540:580, 180:220] = 0.9  # shoes: a small blob near the bottom edge
    r = focus_region(prob)
    assert r.x0 <= 180 and r.x1 >= 220 and r.y0 <= 540 and r.y1 >= 580
    assert r.x1 - r.x0 >= 400 / FOCUS_MAX_ZOOM and r.y1 - r.y0 >= 600 / FOCUS_MAX_ZOOM
    assert 0 <= r.x0 and r.x1 <= 400 and 0 <= r.y0 and r.y1 <= 600  # shifted inside, not clipped smaller
    prob[:] = 0.9  # a garment filling the photo: no second pass
    assert focus_region(prob) is None
    assert focus_region(np.zeros((60, 40), np.float32)) is None


def test_refine_edges_softens_only_a_band_around_the_boundary():
    from fashionpixel.cutout import edge_radius, refine_edges

    image = synthetic_photo(200, 300)
    prob = np.zeros((300, 200), np.float32)
    prob[75:150, 67:134] = 1.0  # the blue top of the synthetic figure
    hard = refine_edges(image, prob, "none")
    assert set(np.unique(hard)) == {0.0, 1.0}
    r = edge_radius(200, 300)
    for method in ("guided", "matting"):
        soft = refine_edges(image, prob, method)
        assert soft.dtype == np.float32 and 0 <= soft.min() and soft.max() <= 1
        assert ((soft > 0.02) & (soft < 0.98)).any(), method
        far = np.ones_like(prob, bool)
        far[75 - r - 1 : 150 + r + 1, 67 - r - 1 : 134 + r + 1] = False
        assert not soft[far].any(), method  # nothing appears far from the garment
        assert (soft[75 + r + 1 : 150 - r - 1, 67 + r + 1 : 134 - r - 1] == 1).all(), method


def test_compose_outputs():
    from fashionpixel.cutout import compose

    image = synthetic_photo(40, 60)
    alpha = np.zeros((60, 40), np.float32)
    alpha[10:20, 10:20] = 1
    assert compose(image, alpha, "mask", None).max() == 255 and compose(image, alpha, "mask", None).ndim == 2
    rgba = compose(image, alpha, "rgba", None)
    assert rgba.shape == (60, 40, 4) and (rgba[..., :3] == image).all()
    flat = compose(image, alpha, "rgba", (0, 255, 0))
    assert flat.shape == (60, 40, 3) and (flat[0, 0] == (0, 255, 0)).all() and (flat[15, 15] == image[15, 15]).all()


def test_points_to_canvas_keeps_missing_points():
    from fashionpixel.letterbox import fit_box, points_to_canvas

    box = fit_box(400, 600, 128, 192)
    out = points_to_canvas(np.array([[200, 300], [-1, -1], [0, 0]], np.float32), box, 400)
    assert np.allclose(out[0], (box.x + 200 * box.w / 400, box.y + 300 * box.w / 400))
    assert (out[1] == -1).all() and np.allclose(out[2], (box.x, box.y))


def test_evaluation_ensemble_and_mirror_averaging():
    from training.served import average, merge_mirror, with_mirror

    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    batch = with_mirror(canvas)
    assert batch.shape == (2, 6, 4, 3) and np.array_equal(batch[1], canvas[:, ::-1])
    p = rng.random((3, 6, 4)).astype(np.float16)
    # a network that sees the mirrored canvas answers with mirrored probabilities: merged, it is p again
    assert np.allclose(merge_mirror(np.stack([p, p[:, :, ::-1]])), p)
    assert not np.allclose(merge_mirror(np.stack([p, p])), p)  # an unmirrored answer is not
    q = rng.random((3, 6, 4)).astype(np.float16)
    assert average([p]) is p
    assert np.allclose(average([p, q]), (p.astype(np.float32) + q) / 2)


def test_an_unfinished_pseudo_label_folder_is_refused(tmp_path):
    (tmp_path / "1005_person.png").write_bytes(b"")  # labels, but the teacher never wrote teacher.json
    with pytest.raises(ValueError, match="did not finish"):
        pseudo_samples(tmp_path)
    (tmp_path / "teacher.json").write_text("{}")
    assert [s.name for s in pseudo_samples(tmp_path)] == ["1005"] and pseudo_samples(tmp_path, "garment") == []


def test_near_outline_marks_a_band_on_both_sides_of_the_edge():
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 10:30] = 1
    band = near_outline(mask, 2)
    assert band[20, 10] and band[20, 9] and band[20, 11]  # the edge, outside and inside
    assert not band[20, 20] and not band[20, 3]  # the middle and far outside
    assert band.sum() < 0.5 * mask.size


def test_the_research_cli_runs_each_recipe_as_written(capsys):
    import re

    from tests.conftest import REPO
    from training.__main__ import RECIPES, main

    main(["-n", "pose-transfer", "train", "--threads", "1"])
    assert capsys.readouterr().out.splitlines() == [
        f"+ python -m {c} --threads 1" for c in RECIPES["pose_transfer"]["train"]
    ]
    with pytest.raises(SystemExit, match="several modules"):  # train, export and evaluate share no options
        main(["-n", "segmentation", "compare", "--steps", "3"])
    # the Makefile's older names run recipes that exist
    calls = re.findall(r"-m training (\S+) (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert len(calls) >= 25 and all(recipe in RECIPES[model.replace("-", "_")] for model, recipe in calls)


@pytest.mark.parametrize("share", ["tiny", "everything"])
def test_matting_falls_back_where_the_trimap_has_no_sure_side(share):
    """pymatting needs sure garment and sure background: a garment thinner than the edge band, or one that
    fills the photo, gets the guided filter's edges instead of a ValueError (a 500)."""
    from fashionpixel.cutout import refine_edges

    image = (np.random.default_rng(0).random((300, 200, 3)) * 255).astype(np.uint8)
    prob = np.ones((300, 200), np.float32) if share == "everything" else np.zeros((300, 200), np.float32)
    if share == "tiny":
        prob[150:153, 100:103] = 1
    alpha = refine_edges(image, prob, "matting")
    assert np.array_equal(alpha, refine_edges(image, prob, "guided"))


WORKER_PROBE = """
import os, sys, time
import numpy as np
from fashionpixel import matting
from fashionpixel.cutout import refine_edges

if __name__ == "__main__":
    matting.WORKER.idle_s = 0.5
    image = (np.random.default_rng(0).random((200, 160, 3)) * 255).astype(np.uint8)
    prob = np.zeros((200, 160), np.float32)
    prob[50:150, 40:120] = 1
    alpha = refine_edges(image, prob, "matting")
    worker = matting.WORKER.pid()
    soft = ((alpha > 0) & (alpha < 1)).sum()
    print(worker != os.getpid() and worker is not None, "numba" in sys.modules, soft > 0, alpha[100, 80])
    time.sleep(3)
    print(matting.WORKER.pid(), os.path.exists(f"/proc/{worker}"))
"""


def test_matting_runs_in_a_worker_that_exits_when_idle():
    """pymatting's numba code (~150 MB that a process keeps) stays out of the service's process: matting
    runs in a worker started on demand, which exits once idle."""
    import subprocess
    import sys

    from tests.conftest import REPO

    out = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE], capture_output=True, text=True, timeout=300, cwd=REPO, check=True
    ).stdout.split("\n")
    assert out[0] == "True False True 1.0", out  # a worker of its own did the work; numba never loaded here
    assert out[1] == "None False", out  # idle: the worker has exited


SHUTDOWN_PROBE = """
import asyncio, os
import numpy as np
from fashionpixel import matting
from services.cutout.app import app

async def main():
    async with app.router.lifespan_context(app):
        before = set(os.listdir("/dev/shm"))
        image = np.random.default_rng(0).random((60, 40, 3))
        trimap = np.full((60, 40), 0.5); trimap[:20] = 0; trimap[40:] = 1
        matting.estimate_alpha_cf(image, trimap)
        worker, semaphores = matting.WORKER.pid(), set(os.listdir("/dev/shm")) - before
    print(worker is not None, os.path.exists(f"/proc/{worker}"), bool(semaphores), semaphores & set(os.listdir("/dev/shm")))

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_the_cutout_service_stops_its_matting_worker_on_shutdown():
    """uvicorn ends by re-raising its signal, so no exit handler of the service runs: the app's shutdown
    stops the matting worker, and the worker's named semaphores leave /dev/shm with it."""
    import subprocess
    import sys

    from tests.conftest import REPO

    out = subprocess.run(
        [sys.executable, "-c", SHUTDOWN_PROBE], capture_output=True, text=True, timeout=300, cwd=REPO, check=True
    ).stdout.split("\n")
    assert out[0] == "True False True set()", out


def test_crf_on_the_unsure_box_matches_the_whole_photo_crf():
    """The default CRF works on the box of the pixels the network is unsure of: where it is sure the
    marginals stand, and inside the box the labels are those of the CRF over the whole photo."""
    from fashionpixel.refine import CrfParams, dense_crf

    rng = np.random.default_rng(0)
    image = np.full((240, 200, 3), 40, np.uint8)
    image[60:180, 50:150] = 200  # a bright object on a dark background
    person = np.full((240, 200), 0.02, np.float32)
    person[60:180, 50:150] = 0.98
    person[50:190, 40:160] = np.clip(person[50:190, 40:160] + rng.normal(0, 0.3, (140, 120)), 0.01, 0.99)
    probs = np.stack([1 - person, person])
    boxed = dense_crf(image, probs, CrfParams(sure=0.9))
    whole = dense_crf(image, probs, CrfParams(sure=None))
    assert np.array_equal(boxed[:, :20], probs[:, :20])  # far from any doubt: untouched
    assert (boxed.argmax(0) == whole.argmax(0)).mean() > 0.995
    assert (boxed.argmax(0)[60:180, 50:150] == 1).mean() > 0.99  # the CRF cleaned the noisy object
    sure = np.stack([np.full((240, 200), 0.05, np.float32), np.full((240, 200), 0.95, np.float32)])
    assert np.array_equal(dense_crf(image, sure, CrfParams(sure=0.9)), sure)  # nothing to refine


def test_the_crf_reads_the_network_at_its_own_size_and_answers_at_the_photos(monkeypatch):
    """The CRF's probabilities come straight from the canvas at the CRF's smaller size (no photo-size
    copy made and shrunk again); its marginals are enlarged for labels at the photo's size, which are
    the same as without the CRF where the network is sure. A person mask takes the lighter smoothness."""
    import cv2

    from fashionpixel import segmentation
    from fashionpixel.letterbox import letterbox
    from fashionpixel.refine import PERSON_CRF, CrfParams, work_size

    image = np.full((600, 400, 3), 40, np.uint8)
    image[150:450, 100:300] = 200
    canvas, box = letterbox(image, segmentation.CANVAS_W, segmentation.CANVAS_H)
    person = np.zeros((segmentation.CANVAS_H, segmentation.CANVAS_W), np.float32)
    person[96:288, 64:192] = 1
    person = cv2.GaussianBlur(person, (0, 0), 4) * 0.98 + 0.01
    probs = np.stack([1 - person, person])
    sizes, params = [], []
    made, crf = segmentation.photo_probs, segmentation.dense_crf
    monkeypatch.setattr(segmentation, "photo_probs", lambda p, b, size, *a: sizes.append(size) or made(p, b, size, *a))
    monkeypatch.setattr(segmentation, "dense_crf", lambda i, p, prm: params.append(prm) or crf(i, p, prm))
    refined = segmentation.labels_from_probs(image, probs, box, crf=True)
    assert sizes == [work_size(400, 600, CrfParams().max_pixels)] and sizes[0][0] * sizes[0][1] <= 80_000
    assert params == [PERSON_CRF]  # a person mask (2 classes): the lighter smoothness
    segmentation.labels_from_probs(
        image, np.concatenate([probs, np.zeros((5, *person.shape), np.float32)]), box, crf=True
    )
    assert params[1] == CrfParams()  # the parsing (7 classes): the CRF's defaults
    plain = segmentation.labels_from_probs(image, probs, box)
    assert refined.shape == plain.shape == (600, 400)
    assert (refined == plain).mean() > 0.99 and refined[300, 200] == 1 and refined[20, 20] == 0


def test_network_outputs_arrive_as_float32_bit_for_bit():
    """The FP16 outputs are converted with OpenCV (20× numpy's astype here); every non-NaN half value
    must come out exactly as numpy's conversion gives it, whatever the shape."""
    halves = np.arange(2**16, dtype=np.uint16).view(np.float16)
    exact = halves.astype(np.float32)
    converted = as_float32(halves)
    finite = ~np.isnan(exact)
    assert converted.dtype == np.float32
    assert np.array_equal(converted[finite].view(np.uint32), exact[finite].view(np.uint32))
    assert np.isnan(converted[~finite]).all()
    probs = np.random.default_rng(0).random((7, 12, 8)).astype(np.float16)
    for a in (probs, probs[:, ::2], probs[0, 0], np.float16(0.5), np.zeros((2, 0), np.float16)):
        out = as_float32(np.asarray(a))
        assert out.dtype == np.float32 and out.shape == np.shape(a)
        assert np.array_equal(out, np.asarray(a).astype(np.float32))
    labels = np.zeros((3, 3), np.uint8)
    assert as_float32(labels) is labels


_FAULTS_PER_REQUEST = """
import resource, sys
import numpy as np
from fashionpixel.letterbox import Box
from fashionpixel.networks import as_float32
from fashionpixel.segmentation import photo_probs
from services.common.idle_trim import keep_freed_memory
assert sys.argv[1] == "default" or keep_freed_memory()
probs = np.random.default_rng(0).random((7, 384, 256)).astype(np.float16)
def request():  # a segment request's probability maps at a 400×600 photo's size, as the service makes them
    return photo_probs(as_float32(probs), Box(0, 0, 256, 384), (400, 600), (400, 600)).argmax(0)
for _ in range(3):
    request()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    request()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def test_a_service_keeps_freed_memory_for_the_next_request():
    """With glibc's defaults every request's large arrays are mmapped and unmapped again, and each of
    their pages is faulted in anew; kept (services/common/idle_trim.py) they are reused."""
    import subprocess
    import sys

    def faults(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", _FAULTS_PER_REQUEST, mode], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return float(out.stdout)

    kept, default = faults("keep"), faults("default")
    assert default > 500, default  # ~2 000 pages of fresh memory per request
    assert kept < default / 10, (kept, default)


def test_class_map_is_numpys_argmax_ties_included():
    from fashionpixel.refine import class_map

    rng = np.random.default_rng(3)
    for classes in (1, 2, 7, 9):
        probs = rng.random((classes, 50, 40)).astype(np.float32)
        probs[:, :10] = 0.5  # ties everywhere there: the first class wins, as with argmax
        probs[-1, 20:25] = probs.max(0)[20:25]  # the last class ties the best one
        assert np.array_equal(class_map(probs), probs.argmax(0).astype(np.uint8)), classes


def test_unletterbox_resizes_each_map_as_the_interleaved_resize_does():
    """unletterbox resizes one channel at a time (fast); the values are those of OpenCV's interleaved
    resize of the photo's part of the canvas, to float rounding."""
    import cv2

    from fashionpixel.letterbox import Box

    maps = np.random.default_rng(4).random((7, 96, 64)).astype(np.float32)
    box = Box(5, 0, 54, 96)
    out = unletterbox(maps, box, 150, 260)
    interleaved = cv2.resize(np.ascontiguousarray(maps[:, :, 5:59].transpose(1, 2, 0)), (150, 260))
    assert out.shape == (7, 260, 150) and out.flags["C_CONTIGUOUS"]
    assert np.abs(out - interleaved.transpose(2, 0, 1)).max() < 1e-4


def test_the_rembg_comparison_rewrites_its_table_and_keeps_the_paragraph_below_it(tmp_path):
    from bench.common import REMBG_SECTION
    from bench.rembg_compare import write_section

    out = tmp_path / "benchmarks.md"
    out.write_text(
        f"# B\n\n{REMBG_SECTION}\n\nold intro\n\n| a |\n|---|\n| old row |\n\nBy hand.\n\n## Big photos\n\nkept\n"
    )
    one = {1: {"p50": 80.0, "p95": 90.0, "rps": 12.0, "errors": 0}}
    write_section(
        out, {k: {"quality": {"dice": 0.9, "boundary_f": 0.5}, "load": one} for k in ("ours", "rembg")}, 60, 15
    )
    text = out.read_text()
    assert "old row" not in text and "old intro" not in text and "| 0.9000 | 0.500 | 1 | 80 | 90 | 12.0 | 0 |" in text
    assert text.index("| 0.9000") < text.index("By hand.") < text.index("## Big photos") < text.index("kept")


def test_services_do_not_load_scipy_until_a_request_asks_for_superpixels():
    """scikit-image's superpixels bring SciPy (~10 MB in every service process); they are off by default,
    so no service loads it at start, and a superpixel vote still does."""
    import subprocess
    import sys

    from tests.conftest import REPO

    probe = (
        "import sys, numpy as np\n"
        "import services.segmentation.app, services.cutout.app, services.skin.app, services.pose_transfer.app\n"
        "from fashionpixel.refine import superpixel_vote\n"
        "print('scipy' in sys.modules)\n"
        "superpixel_vote(np.zeros((40, 30, 3), np.uint8), np.zeros((40, 30), np.uint8))\n"
        "print('scipy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO, check=True
    ).stdout.split()
    assert out == ["False", "True"], out


def test_a_stage_entered_again_while_in_progress_counts_its_wall_time_once():
    """Server-Timing: two calls of one stage awaited side by side count as long as they were busy
    together; one after the other, they add up."""
    import asyncio

    from services.common.timing import Timings

    async def call(timings: Timings, seconds: float):
        with timings.stage("infer"):
            await asyncio.sleep(seconds)

    async def side_by_side(timings: Timings):
        await asyncio.gather(call(timings, 0.1), call(timings, 0.1))

    async def one_after_the_other(timings: Timings):
        await call(timings, 0.1)
        await call(timings, 0.1)

    together, apart = Timings(), Timings()
    asyncio.run(side_by_side(together))
    asyncio.run(one_after_the_other(apart))
    assert 100 <= together.ms["infer"] < 190  # once: 0.1 s and the loop's own time, not 0.2 s
    assert apart.ms["infer"] >= 200
    assert together.header() == f"infer;dur={together.ms['infer']:.1f}"

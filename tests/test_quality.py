"""Issue 22: every result says how far to trust it (X-Quality, X-Needs-Review; `quality` and
`needs_review` in JSON). The statistics and the models of fashionpixel/quality.py alone; then the real
stack: the fields on every endpoint, a photo without a person and a wide landscape with a tiny person
flagged, a clean studio photo not; the batch tool's report columns and review folder."""

import csv
import json
import time

import cv2
import httpx
import numpy as np
import pytest

from fashionpixel import quality
from services.common.settings import Settings
from tests.images import encode
from tools.batch import _outcome
from tools.batch import main as batch

STUDIO_PHOTO = "0198"  # a Fashionista validation photo whose studio framing is parsed cleanly
PARK_PHOTO = "0049"  # ... whose background (a park path) makes the landscape


# --- the statistics and the models, no stack --------------------------------------------------------


def test_a_confident_mask_scores_high_and_nothing_found_scores_lowest():
    mask = np.zeros((150, 100), bool)  # under quality.PIXELS: not shrunk
    mask[30:140, 25:75] = True
    sure = quality.mask_features(mask.astype(np.float32), mask)
    assert sure == {"found": 1.0, "soft_iou": 1.0, "confidence": 1.0, "edge_uncertainty": 0.0, "largest_part": 1.0}
    unsure = quality.mask_features(np.where(mask, 0.6, 0.3).astype(np.float32), mask)
    assert unsure["soft_iou"] < 0.6 and unsure["edge_uncertainty"] > 0.8 and unsure["confidence"] < 0.61
    empty = quality.mask_features(np.full(mask.shape, 0.1, np.float32), np.zeros_like(mask))
    assert empty == {"found": 0.0, "soft_iou": 0.0, "confidence": 0.0, "edge_uncertainty": 1.0, "largest_part": 0.0}
    for task in ("person", "cutout"):
        model = quality.models()[task]
        assert model.predict(sure) > model.threshold > model.predict(empty) >= 0, task


def test_a_coin_toss_outline_lowers_the_cutout_score():
    """edge_uncertainty: all else equal, a matte whose outline the network was unsure of scores lower."""
    garment = np.zeros((150, 100), bool)
    garment[40:110, 30:70] = True
    model = quality.models()["cutout"]
    assert "edge_uncertainty" in model.features
    one = quality.mask_features(garment.astype(np.float32), garment)
    typical = one | {"soft_iou": 0.85, "confidence": 0.95, "edge_uncertainty": 0.45}  # inside (0, 1): not clipped
    assert 0 < model.predict(typical) < 1
    assert model.predict(typical) > model.predict(typical | {"edge_uncertainty": 0.9})


def test_every_model_reads_features_the_pipelines_compute():
    mask = np.zeros((40, 30), bool)
    mask[5:35, 10:20] = True
    probs = np.stack([1.0 - mask, mask * 0.5, mask * 0.5]).astype(np.float32)
    computed = {
        "person": quality.mask_features(mask * 0.9, mask),
        "cutout": quality.mask_features(mask * 0.9, mask),
        "fashion": quality.parsing_features(probs, mask.astype(np.uint8)),
        "pose": quality.pose_features(np.full((18, 3), 0.5)),
    }
    for task, model in quality.models().items():
        assert set(model.features) <= set(computed[task]), task
        assert 0 <= model.predict(computed[task]) <= 1 and 0 < model.threshold < 1


def test_coefficients_were_fitted_on_the_served_networks():
    """The scores are fitted to the networks' own probabilities: a replaced file needs a refit."""
    from fashionpixel.models import MODELS
    from tests.conftest import REPO
    from training.served import file_md5

    fitted = json.loads(quality.COEFFICIENTS.read_text())["onnx_md5"]
    for name, md5 in fitted.items():
        served = file_md5(MODELS[name].onnx_path(REPO / "model_repository"))
        assert served == md5, f"{name} changed since the fit: run `python -m training quality fit`"


def test_a_result_is_as_trustworthy_as_its_weakest_part():
    mask = np.zeros((40, 30), bool)
    mask[5:35, 10:20] = True
    assess = quality.Assessment()
    assess.add("person", quality.mask_features(mask.astype(np.float32), mask))
    assess.add("pose", quality.pose_features(np.full((18, 3), 0.9)))
    assess.add("pose", quality.pose_features(np.zeros((18, 3))), part="target_pose")
    parts = assess.qualities()
    assert list(parts) == ["person", "pose", "target_pose"]
    assert assess.quality() == parts["target_pose"] < parts["pose"]
    assert assess.needs_review()  # the target's pose has no keypoint at all
    assert not assess.needs_review({"*": 0.0})
    assert assess.needs_review({"*": 0.0, "pose": 1.0})


def test_a_tiny_person_is_for_review_whatever_its_score():
    """Issue 22: a tiny person in a wide photo is flagged. The score predicts IoU, and the networks may
    well outline such a figure cleanly; below quality.TINY_PERSON of the photo it goes to a person anyway."""
    mask = np.zeros((40, 30), bool)
    mask[5:35, 10:20] = True
    features = quality.mask_features(mask.astype(np.float32), mask)
    for share, review in ((0.3, False), (0.0096, False), (0.004, True)):  # 0.0096: the small framing's least
        assess = quality.Assessment()
        assess.add("person", features | {"share": share})
        assert assess.needs_review({"*": 0.0}) == review, share


@pytest.mark.parametrize(
    "text, thresholds",
    [("", {}), ("0.8", {"*": 0.8}), ("person=0.92, pose=0.7", {"person": 0.92, "pose": 0.7})],
)
def test_review_threshold_setting(text, thresholds):
    assert Settings(review_threshold=text).review_thresholds == thresholds


@pytest.mark.parametrize("text", ["1.5", "hands=0.5", "person=high"])
def test_bad_review_threshold_setting_is_refused(text):
    with pytest.raises(ValueError):
        Settings(review_threshold=text)


# --- photos: none, tiny, studio ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(data_dir) -> dict[str, np.ndarray]:
    """A scene with no person, a wide landscape with a tiny person, and a clean studio photo, all made
    from Fashionista validation photos (training/framing.py's backdrop and studio framing)."""
    from training.datasets import fashionista_samples, label_maps, read_image
    from training.framing import affine, backdrop, composite, frame, soft_alpha, warp

    samples = {s.name: s for s in fashionista_samples() if s.split == "val"}
    studio = samples[STUDIO_PHOTO]
    image, labels = read_image(studio), label_maps(studio)
    park = samples[PARK_PHOTO]
    scene = backdrop(read_image(park), label_maps(park)["person"] > 0, (1600, 900))
    # the person at 15 % of the landscape's height, standing a third of the way across
    ys, xs = np.nonzero(labels["person"])
    s = 0.15 * 900 / (ys.max() - ys.min())
    m = affine(s, xs.min() - 520 / s, ys.max() - 760 / s)
    small, maps, _ = warp(image, labels, None, m, (1600, 900), 0)
    tiny = composite(small, soft_alpha(maps["person"] > 0, 0.7), scene.astype(np.float32))
    return {
        "no-person": scene,
        "tiny-person": tiny,
        "studio": frame("studio", image, labels, None, key=studio.name)[0],
    }


def trust(r: httpx.Response) -> tuple[float, bool]:
    """X-Quality and X-Needs-Review of a 200 answer, checked for form and range."""
    assert r.status_code == 200, r.text
    q, review = float(r.headers["X-Quality"]), r.headers["X-Needs-Review"]
    assert 0 <= q <= 1 and review in ("true", "false")
    parts = dict(p.split("=") for p in r.headers["X-Quality-Parts"].split(","))
    assert q == min(float(v) for v in parts.values())
    return q, review == "true"


@pytest.fixture(scope="module")
def clients(stack):
    with (
        httpx.Client(base_url=stack.service_url("segmentation"), timeout=120) as seg,
        httpx.Client(base_url=stack.service_url("cutout"), timeout=120) as cut,
        httpx.Client(base_url=stack.service_url("skin-generation"), timeout=120) as skin,
        httpx.Client(base_url=stack.service_url("pose-transfer"), timeout=120) as pose,
    ):
        yield {"segmentation": seg, "cutout": cut, "skin": skin, "pose": pose}


def image_file(image: np.ndarray, name: str = "image") -> dict:
    return {name: ("photo.jpg", encode(image), "image/jpeg")}


@pytest.mark.slow
@pytest.mark.data
def test_every_endpoint_says_how_far_to_trust_it(clients, photos):
    image = photos["studio"]
    seg, cut, skin, pose = (clients[k] for k in ("segmentation", "cutout", "skin", "pose"))
    for params in ({"task": "person"}, {"task": "fashion", "format": "overlay"}, {"crf": "false"}):
        trust(seg.post("/v1/segment", params=params, files=image_file(image)))
    for task in ("person", "fashion"):
        r = seg.post("/v1/segment", params={"task": task, "format": "json"}, files=image_file(image))
        body = r.json()
        assert (body["quality"], body["needs_review"]) == trust(r)
    for params in ({}, {"garment": "top", "format": "mask", "crop": "true"}):
        trust(cut.post("/v1/cutout", params=params, files=image_file(image)))
    r = pose.post("/v1/pose", files=image_file(image))
    body = r.json()
    assert (body["quality"], body["needs_review"]) == trust(r) and len(body["keypoints"]) == 18
    trust(pose.post("/v1/pose", params={"format": "png"}, files=image_file(image)))
    assert set(trust_parts(skin.post("/v1/skin", files=image_file(image)))) == {"person", "fashion", "pose"}
    given = {"keypoints": json.dumps(body)}
    assert set(trust_parts(skin.post("/v1/skin", files=image_file(image), data=given))) == {"person", "fashion"}
    both = image_file(image, "source") | image_file(image[:, ::-1].copy(), "target")
    parts = trust_parts(pose.post("/v1/pose-transfer", files=both))
    assert set(parts) == {"person", "fashion", "pose", "target_pose"}
    by_keypoints = {"target_keypoints": json.dumps(body)}
    r = pose.post("/v1/pose-transfer", files=image_file(image, "source"), data=by_keypoints)
    assert set(trust_parts(r)) == {"person", "fashion", "pose"}


def trust_parts(r: httpx.Response) -> dict[str, float]:
    trust(r)
    return {k: float(v) for k, v in (p.split("=") for p in r.headers["X-Quality-Parts"].split(","))}


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("name, flagged", [("no-person", True), ("tiny-person", True), ("studio", False)])
def test_people_are_asked_exactly_when_it_matters(clients, photos, name, flagged):
    image = photos[name]
    for task in ("person", "fashion"):
        r = clients["segmentation"].post("/v1/segment", params={"task": task}, files=image_file(image))
        assert trust(r)[1] == flagged, (task, r.headers["X-Quality"])
    r = clients["cutout"].post("/v1/cutout", files=image_file(image))
    assert trust(r)[1] == flagged, ("cutout", r.headers["X-Quality"])
    if name != "tiny-person":  # a tiny person's pose may well be right: the focus pass looks again
        r = clients["pose"].post("/v1/pose", files=image_file(image))
        assert trust(r)[1] == flagged, ("pose", r.headers["X-Quality"])


@pytest.mark.slow
@pytest.mark.data
def test_batch_tool_reports_quality_and_sets_flagged_results_aside(stack, photos, tmp_path):
    folder, out, review = tmp_path / "photos", tmp_path / "out", tmp_path / "review"
    folder.mkdir()
    for name, image in photos.items():
        cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    argv = [str(folder), str(out), "--url", stack.service_url("segmentation") + "/v1/segment", "--quiet"]
    assert batch([*argv, "--param", "task=person", "--review-dir", str(review)]) == 0
    with open(out / "report.csv") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    assert all(0 <= float(r["quality"]) <= 1 for r in rows.values())
    assert {f for f, r in rows.items() if r["needs_review"] == "true"} == {"no-person.jpg", "tiny-person.jpg"}
    assert sorted(p.name for p in review.iterdir()) == ["no-person.png", "tiny-person.png"]
    assert (review / "no-person.png").read_bytes() == (out / "no-person.png").read_bytes()


def test_batch_tool_reads_the_verdict_from_headers_or_a_json_body():
    """_outcome: the headers of any answer; a JSON result's own fields when the headers are absent."""
    start = time.perf_counter()
    png = httpx.Response(
        200, content=b"png", headers={"content-type": "image/png", "X-Quality": "0.41", "X-Needs-Review": "true"}
    )
    body = httpx.Response(200, json={"keypoints": [], "quality": 0.93, "needs_review": False})
    bare = httpx.Response(200, content=b"png", headers={"content-type": "image/png"})
    assert _outcome(png, start)[-2:] == ("0.41", "true")
    assert _outcome(body, start)[-2:] == ("0.93", "false") and _outcome(body, start).ext == ".json"
    assert _outcome(bare, start)[-2:] == ("", "")

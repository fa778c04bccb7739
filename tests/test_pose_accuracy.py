"""Pose accuracy end to end over HTTP on real validation photos, and flip consistency."""

import httpx
import numpy as np
import pytest

from fashionpixel.pose import FLIP_INDEX
from tests.images import encode
from training.metrics import pck

pytestmark = [pytest.mark.slow, pytest.mark.data]

PCK_FLOOR = 0.85  # the model card's validation PCK@0.1 minus a margin; see docs/models/pose.md


@pytest.fixture(scope="module")
def pose(stack):
    with httpx.Client(base_url=stack.service_url("pose-transfer"), timeout=120) as client:
        yield client


def val_photos(limit):
    from training.datasets import keypoint_samples, read_image

    return [(read_image(s), k) for s, k in [x for x in keypoint_samples() if x[0].split == "val"][:limit]]


def estimate(client, image) -> np.ndarray:
    r = client.post("/v1/pose", files={"image": ("p.jpg", encode(image, quality=95), "image/jpeg")})
    assert r.status_code == 200
    k = np.array(r.json()["keypoints"], dtype=np.float32)
    return np.where(k[:, 2:3] > 0, k[:, :2], -1)


def test_pck_against_teacher_on_validation_photos(pose, data_dir):
    photos = val_photos(120)
    preds = np.stack([estimate(pose, img) for img, _ in photos])
    result = pck(preds, np.stack([k for _, k in photos]))
    print("PCK@0.1", result)
    assert result["mean"] >= PCK_FLOOR


def test_mirrored_photo_gives_mirrored_keypoints(pose, data_dir):
    """Left and right stay the person's own: mirroring the photo swaps them."""
    agree, total = 0, 0
    for img, _ in val_photos(20):
        w = img.shape[1]
        a = estimate(pose, img)
        b = estimate(pose, np.ascontiguousarray(img[:, ::-1]))[FLIP_INDEX]
        both = (a[:, 0] >= 0) & (b[:, 0] >= 0)
        b[both, 0] = w - 1 - b[both, 0]
        scale = np.ptp(a[a[:, 0] >= 0], axis=0).max()
        agree += int((np.linalg.norm(a[both] - b[both], axis=1) <= 0.1 * scale).sum())
        total += int(both.sum())
    assert total > 100 and agree / total >= 0.85


def test_focus_pass_finds_a_small_person(pose, data_dir):
    """A person at ~30 % of the frame (training.framing's `small`): the second look finds the keypoints
    the first pass misses; on a full photo it does not look again (same answer)."""
    from training.datasets import keypoint_samples, label_maps
    from training.framing import framed_photos
    from training.skin_data import labelled

    def post(image, focus):
        r = pose.post(
            "/v1/pose",
            params={"focus": focus},
            files={"image": ("p.jpg", encode(image, quality=95), "image/jpeg")},
        )
        assert r.status_code == 200
        k = np.array(r.json()["keypoints"], dtype=np.float32)
        return np.where(k[:, 2:3] > 0, k[:, :2], -1)

    samples = [s for s, _ in keypoint_samples() if s.split == "val" and labelled(s)][:12]
    small = [(image, truth) for _, image, _, truth in framed_photos("small", samples, label_maps)]
    truths = np.stack([t for _, t in small])
    plain = pck(np.stack([post(img, "false") for img, _ in small]), truths)["mean"]
    focused = pck(np.stack([post(img, "true") for img, _ in small]), truths)["mean"]
    print("small framing PCK@0.1 without / with the focus pass", plain, focused)
    assert focused >= plain + 0.1  # measured on these 12 photos: 0.38 -> 0.53 (all 234: 0.44 -> 0.66)
    full, _ = val_photos(1)[0]
    assert np.array_equal(post(full, "false"), post(full, "true"))


def test_waist_up_crops_go_to_the_crop_specialist(pose, data_dir):
    """Issue 20: waist-up product crops over HTTP, scored on the keypoints still in the frame. The crop
    specialist (model_repository/pose_crops) answers them. Measured in-process on these 40 photos: 0.836
    (the general network alone: 0.785); on all 234: 0.9035 (alone: 0.863, docs/models/pose.md). The
    floor sits above what the general network alone scores here."""
    from training.datasets import keypoint_samples, label_maps
    from training.framing import framed_photos
    from training.skin_data import labelled

    samples = [s for s, _ in keypoint_samples() if s.split == "val" and labelled(s)][:40]
    crops = [(image, truth) for _, image, _, truth in framed_photos("waist-up", samples, label_maps)]
    result = pck(np.stack([estimate(pose, img) for img, _ in crops]), np.stack([t for _, t in crops]))
    print("waist-up PCK@0.1", result["mean"])
    assert result["mean"] >= 0.81

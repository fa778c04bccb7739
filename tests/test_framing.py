"""Shop framings (training/framing.py): photo, labels and keypoints stay aligned, checked on a real
photo; the training framings vary as the issue asks; continuing from a served ONNX file is exact."""

import cv2
import numpy as np
import pytest
import torch

from fashionpixel.labels import FASHION_PALETTE
from training.framing import FRAMINGS, SHOP, anchors, frame, random_frame, shop_mean

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def real(data_dir):
    """A Fashionista validation photo, its labels and keypoints, and a second photo for backdrops."""
    from training.datasets import fashionista_samples, read_image, read_labels, sample_keypoints

    a, b = [s for s in fashionista_samples() if s.split == "val"][:2]
    person, fashion = read_labels(a)
    return {
        "image": read_image(a),
        "labels": {"person": person, "fashion": fashion},
        "keypoints": sample_keypoints(a),
        "other": (read_image(b), read_labels(b)[0]),
    }


def painted(labels: dict) -> np.ndarray:
    """A 'photo' whose colours are its labels: after any framing, colour and label must still agree."""
    return FASHION_PALETTE[labels["fashion"]]


def agreement(image: np.ndarray, labels: np.ndarray) -> float:
    """Share of labelled pixels, 2 px or more from any class edge (where resizing and the soft paste
    blend colours), whose colour is their class's palette colour."""
    edges = cv2.dilate(
        cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)), np.ones((5, 5), np.uint8)
    )
    inside = (labels > 0) & (edges == 0)
    return float((np.abs(image.astype(int) - FASHION_PALETTE[labels].astype(int)).max(2)[inside] < 8).mean())


@pytest.mark.parametrize("name", [f for f in FRAMINGS if f not in ("studio", "small")])
def test_geometric_framings_move_photo_labels_and_keypoints_together(real, name):
    image, maps, points = frame(name, painted(real["labels"]), real["labels"], real["keypoints"], key="x")
    assert image.shape[:2] == maps["fashion"].shape == maps["person"].shape
    assert agreement(image, maps["fashion"]) > 0.98
    # keypoints land on the person where the teacher saw them on the person
    _, _, moved = frame(name, real["image"], real["labels"], real["keypoints"], key="x")
    on = [maps["person"][int(y), int(x)] for x, y in moved if x >= 0]
    assert len(on) >= 3 and np.mean(on) > 0.8


def test_crops_frame_what_their_names_say(real):
    h, w = real["image"].shape[:2]
    a = anchors(real["labels"]["person"] > 0, real["keypoints"])
    waist, labels, _ = frame("waist-up", real["image"], real["labels"], real["keypoints"])
    assert waist.shape[:2] == (h, w)  # enlarged back to the photo's size
    assert labels["fashion"].max(1).any() and (labels["fashion"] == 4).sum() == 0  # no shoes in a waist-up crop
    knee, labels, _ = frame("knee-up", real["image"], real["labels"], real["keypoints"])
    assert (labels["person"] > 0).mean() > (real["labels"]["person"] > 0).mean()
    nohead, labels, _ = frame("no-head", real["image"], real["labels"], real["keypoints"])
    assert (
        nohead.shape[0] == h - round(a.chin)
        and (labels["fashion"] == 2).sum() < (real["labels"]["fashion"] == 2).sum() / 2
    )
    square, labels, _ = frame("square", real["image"], real["labels"], real["keypoints"])
    assert square.shape[0] == square.shape[1] == max(h, w) and (square[:, :20] == 255).all()


def test_studio_and_small_paste_the_person_with_its_labels(real):
    image, labels, _ = frame("studio", real["image"], real["labels"], real["keypoints"], key="x")
    background = labels["person"] == 0
    assert np.isin(image[background], (200, 255)).mean() > 0.95  # plain grey or white around the person
    assert (labels["fashion"] == real["labels"]["fashion"]).all()
    image, labels, points = frame(
        "small", real["image"], real["labels"], real["keypoints"], key="x", other=real["other"]
    )
    rows = np.nonzero(labels["person"].any(1))[0]
    assert image.shape[1] > image.shape[0]  # a wider canvas
    assert 0.2 < (rows.max() - rows.min()) / image.shape[0] <= 0.31
    assert (
        agreement(
            frame("small", painted(real["labels"]), real["labels"], None, key="x", other=real["other"])[0],
            labels["fashion"],
        )
        > 0.95
    )


def test_random_training_framings_are_aligned_and_varied(real):
    rng = np.random.default_rng(0)
    heights, aspects = [], []
    for _ in range(60):
        image, maps, points = random_frame(
            rng, painted(real["labels"]), real["labels"], real["keypoints"], (256, 384), others=real["image"][None]
        )
        assert (
            image.shape[0] <= 384 and image.shape[1] <= 256 and max(image.shape[0] / 384, image.shape[1] / 256) > 0.99
        )
        person = maps["person"] > 0
        if person.any():
            if person.sum() > 2000:  # a tiny person has no pixels 2 px away from every edge
                assert agreement(image, maps["fashion"]) > 0.95
            rows = np.nonzero(person.any(1))[0]
            heights.append((rows.max() - rows.min() + 1) / image.shape[0])
        aspects.append(image.shape[1] / image.shape[0])
    heights = np.array(heights)
    assert len(heights) > 50
    assert (heights < 0.45).mean() > 0.03 and (heights > 0.97).mean() > 0.15  # small people and frame-filling crops
    assert len({round(a, 2) for a in aspects}) >= 4


def test_shop_mean_is_over_the_shop_framings_only():
    values = {f: float(i) for i, f in enumerate(FRAMINGS)}
    assert shop_mean(values) == pytest.approx(np.mean([values[f] for f in SHOP]))
    assert shop_mean({"full": 0.9}) is None


def test_served_weights_load_back_exactly(data_dir):
    """--init model.onnx: the network rebuilt from the served file computes what the file does."""
    from pathlib import Path

    from training.from_onnx import check_against_onnx, freeze_batchnorm, load_onnx_weights
    from training.models.segmentation import SegNet, SegNetServing

    path = Path(__file__).resolve().parent.parent / "model_repository/segmentation/1/model.onnx"
    net = load_onnx_weights(SegNet(), path, torch.zeros(1, 3, 384, 256))
    images = np.random.default_rng(0).integers(0, 256, (2, 384, 256, 3), dtype=np.uint8)
    assert check_against_onnx(SegNetServing(net), path, images, ["person", "fashion"]) < 2e-3
    freeze_batchnorm(net).train()  # frozen: training mode must not switch to batch statistics
    with torch.no_grad():
        a = net(torch.randn(2, 3, 384, 256))[0]
        net.eval()
        b = net(torch.randn(2, 3, 384, 256))[0]
    assert a.shape == b.shape
    x = torch.randn(1, 3, 384, 256)
    with torch.no_grad():
        assert torch.allclose(net.train()(x)[0], net.eval()(x)[0], atol=1e-5)


def test_thawed_batchnorms_keep_the_served_answers_and_train_on_batch_statistics():
    """--live-batchnorm: the folded network given live BatchNorms (training.from_onnx.thaw_batchnorm)
    still computes what the served file does, and in training mode normalises with the batch's own
    statistics; the run records that its BatchNorms are no longer frozen."""
    from pathlib import Path

    from training.from_onnx import check_against_onnx, is_frozen, load_onnx_weights, thaw_batchnorm
    from training.models.segmentation import SegNet, SegNetServing

    path = Path(__file__).resolve().parent.parent / "model_repository/segmentation_crops/1/model.onnx"
    net = load_onnx_weights(SegNet(), path, torch.zeros(1, 3, 384, 256))
    rng = np.random.default_rng(1)
    calibration = [torch.from_numpy(rng.uniform(0, 255, (2, 3, 384, 256)).astype(np.float32)) for _ in range(3)]
    thaw_batchnorm(net, calibration)
    images = rng.integers(0, 256, (2, 384, 256, 3), dtype=np.uint8)
    assert check_against_onnx(SegNetServing(net), path, images, ["person", "fashion"]) < 2e-3
    dark = torch.from_numpy(rng.uniform(0, 60, (2, 3, 384, 256)).astype(np.float32))
    with torch.no_grad():
        trained, served = net.train()(dark)[0], net.eval()(dark)[0]
    assert (trained - served).abs().max() > 0.1  # batch statistics, not the stored ones
    assert is_frozen({"init": "model.onnx"}) and not is_frozen({"init": "model.onnx", "frozen_batchnorm": False})


def test_backdrop_snap_finds_a_real_outline_on_studio_grey_and_leaves_the_street_alone(real):
    """fashionpixel.refine.snap_to_backdrop on a real person: an outline 2 px off all round, on the studio
    framing's plain backdrop, moves back to the person; on the street photo itself nothing changes."""
    from fashionpixel.refine import snap_to_backdrop

    image, labels, _ = frame("studio", real["image"], real["labels"], real["keypoints"], key="x")
    truth = labels["person"]  # the mask the paste used (Fashionista's fashion labels leave coats out)
    for op in (cv2.erode, cv2.dilate):
        guess = op(truth, np.ones((5, 5), np.uint8))
        before = np.count_nonzero((guess > 0) != (truth > 0))
        after = np.count_nonzero((snap_to_backdrop(image, guess) > 0) != (truth > 0))
        assert after < 0.5 * before, (op.__name__, before, after)
    street = cv2.erode(real["labels"]["person"], np.ones((5, 5), np.uint8))
    assert np.array_equal(snap_to_backdrop(real["image"], street), street)

"""The pose-transfer data: the part-wise warp, the training pairs, and the DeepFashion CSV reader."""

import shutil

import numpy as np
import pytest

from fashionpixel.pose_transfer import CANVAS_H, CANVAS_W, found, mirror, network_inputs, warp_to_pose
from training.datasets import parse_keypoint_csv, parse_pairs_csv
from training.pose_transfer_data import (
    DEEPFASHION,
    batch,
    build,
    build_real_pairs,
    cross_batch,
    deepfashion_pairs,
    real_batch,
)

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def val(data_dir):
    return build("val")


def test_identity_warp_reproduces_the_source(val):
    image, parts, k = val["images"][0], val["parts"][0], val["keypoints"][0]
    warped, cover = warp_to_pose(image, parts, k, k)
    covered = cover > 0
    assert covered.sum() > 0.8 * (parts > 0).sum()
    assert np.abs(warped[covered].astype(int) - image[covered]).mean() < 3


def test_mirror_warp_lands_on_the_mirrored_person(val):
    """The warp of a person to their mirrored pose covers mostly the mirrored person's pixels."""
    overlap = []
    for i in range(10):
        image, parts, k = val["images"][i], val["parts"][i], val["keypoints"][i]
        _, target_parts, target_kp = mirror(image, parts, k)
        _, cover = warp_to_pose(image, parts, k, target_kp)
        inter = ((cover > 0) & (target_parts > 0)).sum()
        overlap.append(inter / max(((cover > 0) | (target_parts > 0)).sum(), 1))
    assert np.mean(overlap) > 0.6, overlap  # measured 0.69 (IoU of the warp with the mirrored person)


def test_training_batches_have_the_exported_layout(val):
    inputs, targets, parts = batch(val, range(6), np.random.default_rng(0))
    assert inputs["source"].shape == (6, CANVAS_H, CANVAS_W, 3) and inputs["parts"].shape == (6, CANVAS_H, CANVAS_W, 1)
    assert inputs["pose"].shape == (6, CANVAS_H, CANVAS_W, 18) and inputs["warped"].shape == (6, CANVAS_H, CANVAS_W, 4)
    assert targets.shape == (6, CANVAS_H, CANVAS_W, 3) and parts.shape == (6, CANVAS_H, CANVAS_W)
    assert all(v.dtype == np.uint8 for v in inputs.values())
    # mirror mode: the target is exactly the mirrored source (or the source mirrored back)
    inputs, targets, _ = batch(val, [0], np.random.default_rng(1), "mirror")
    assert np.array_equal(targets[0], inputs["source"][0][:, ::-1])


def test_cross_pairs_carry_each_part_onto_the_other_persons_pose(val):
    inputs, carried = cross_batch(val, 6, np.random.default_rng(0))
    assert inputs["warped"].shape == (6, CANVAS_H, CANVAS_W, 4) and carried.shape == (6, CANVAS_H, CANVAS_W)
    assert all(v.dtype == np.uint8 for v in inputs.values())
    for source, parts, warped, labels in zip(inputs["source"], inputs["parts"][..., 0], inputs["warped"], carried):
        covered = warped[..., 3] > 0
        # a label only where the warp put a pixel, and nearly everywhere it did (its linear mask's edge
        # can fall on a nearest-neighbour background label)
        assert not (labels > 0)[~covered].any() and (labels > 0)[covered].mean() > 0.95
    # each carried part keeps its source colour, up to which of its pixels the target pose shows
    own, other = [], []
    for i, labels in enumerate(carried):
        for c in np.unique(labels[labels > 0]):
            if (labels == c).sum() >= 50:
                mean = inputs["warped"][i][..., :3][labels == c].mean(0)
                for j, distances in ((i, own), ((i + 1) % 6, other)):  # its own source, another person
                    part = inputs["source"][j][inputs["parts"][j][..., 0] == c]
                    if len(part):
                        distances.append(np.abs(mean - part.mean(0)).mean())
    assert len(own) >= 12 and np.median(own) < 8 and np.median(other) > 3 * np.median(own), (own, other)


def test_missing_keypoints_give_no_heatmap_and_no_warp(val):
    image, parts, k = val["images"][0], val["parts"][0], val["keypoints"][0].copy()
    k_target = k.copy()
    k_target[[3, 4]] = -1  # right elbow and wrist unknown in the target
    x = network_inputs(image, parts, k, k_target)
    assert x["pose"][..., 3].max() == 0 and x["pose"][..., 4].max() == 0 and x["pose"][..., 2].max() > 200
    nothing = network_inputs(image, parts, np.full((18, 2), -1, np.float32), k_target)
    assert nothing["warped"][..., 3].max() == 0, "nothing to warp without source keypoints"


def test_deepfashion_csvs_read():
    if not DEEPFASHION.is_dir():
        pytest.skip(f"needs {DEEPFASHION}")
    table = parse_keypoint_csv(DEEPFASHION / "fashion-resize-annotation-test.csv")
    pairs = parse_pairs_csv(DEEPFASHION / "fashion-resize-pairs-test.csv")
    assert len(table) == 4038 and len(pairs) == 8570
    k = np.stack(list(table.values()))
    ok = (k >= 0).all(2)
    assert ok.mean() > 0.5
    # the 176×256 resize space (8 of 46,971 points fall just outside it in the published file)
    inside = (k[ok][:, 0] < 176) & (k[ok][:, 1] < 256)
    assert inside.mean() > 0.999
    assert all(a in table and b in table for a, b in pairs)


def test_deepfashion_pairs_join_images_and_build(data_dir, tmp_path):
    """With two images standing in for one pair's files, that pair (only) is found and built."""
    pairs = parse_pairs_csv(DEEPFASHION / "fashion-resize-pairs-test.csv")
    table = parse_keypoint_csv(DEEPFASHION / "fashion-resize-annotation-test.csv")
    a, b = next((a, b) for a, b in pairs if found(table[a]).sum() >= 12 and found(table[b]).sum() >= 12)
    samples = sorted((DEEPFASHION / "samples").glob("*.jpg"))
    shutil.copy(samples[0], tmp_path / a)
    shutil.copy(samples[1], tmp_path / b)
    found_pairs, skipped = deepfashion_pairs(tmp_path)
    assert (a, b) in {(p.source.name, p.target.name) for p in found_pairs} <= {(a, b), (b, a)}
    assert len(found_pairs) + skipped["no_image"] == len(pairs) and skipped["no_keypoints"] == 0

    def parse(image):  # the whole image is one person in a t-shirt: enough to check the layout
        h, w = image.shape[:2]
        return np.ones((h, w), np.uint8), np.full((h, w), 3, np.uint8)

    real = build_real_pairs(found_pairs[:1], parse)
    assert real["images"].shape == (1, CANVAS_H, CANVAS_W, 3) and real["target_keypoints"].shape == (1, 18, 2)
    inputs, targets, _ = real_batch(real, [0])
    assert inputs["warped"].shape == (1, CANVAS_H, CANVAS_W, 4) and targets.shape == (1, CANVAS_H, CANVAS_W, 3)
    # the annotations' 176×256 coordinates were scaled to the 256×256 stand-in photo, then to the canvas
    k = real["target_keypoints"][0]
    assert (k[found(k)] >= 0).all() and (k[found(k), 0] < CANVAS_W).all()


def test_ssim_loss_is_scikit_images_metric():
    """Stage 2 of the training optimises SSIM; it must be the metric the model card reports."""
    import torch
    from skimage.metrics import structural_similarity

    from training.losses import ssim

    rng = np.random.default_rng(0)
    a = rng.random((48, 32, 3))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    unit = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None] * 2 - 1  # noqa: E731 - [0, 1] → [-1, 1]
    assert abs(ssim(unit(a), unit(b)).item() - structural_similarity(a, b, channel_axis=2, data_range=1.0)) < 1e-9
    assert abs(ssim(unit(a), unit(a)).item() - 1) < 1e-9


def test_fine_tuning_on_ssim_starts_from_a_checkpoint_and_resumes(data_dir, tmp_path):
    import subprocess
    import sys

    from training.datasets import REPO

    def train(out, *extra):
        cmd = [
            sys.executable,
            "-m",
            "training.train_pose_transfer",
            "--out",
            str(out),
            "--limit",
            "8",
            "--batch",
            "2",
            "--val-every",
            "2",
            "--threads",
            "2",
            *extra,
        ]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    train(tmp_path / "stage1", "--steps", "2")
    out = train(tmp_path / "stage2", "--steps", "2", "--init", str(tmp_path / "stage1/best.pt"), "--ssim-weight", "30")
    assert "initialised from" in out and "val {" in out
    again = train(
        tmp_path / "stage2", "--steps", "4", "--init", str(tmp_path / "stage1/best.pt"), "--ssim-weight", "30"
    )
    assert "resumed at step 2" in again and "initialised from" not in again

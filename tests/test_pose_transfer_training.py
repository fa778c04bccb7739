"""Issue 25's training pieces: `--init` from the served ONNX file, and the gate, texture, colour and anchor losses."""

import numpy as np
import onnxruntime as ort
import torch

from fashionpixel.models import POSE_TRANSFER
from training.datasets import REPO
from training.losses import detail_anchor_loss, gate_loss, part_colour_loss, texture_loss
from training.models.pose_transfer import PoseTransferGenerator, PoseTransferServing
from training.train_pose_transfer import load_served

SERVED = POSE_TRANSFER.onnx_path(REPO / "model_repository")


def random_inputs(n: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Random uint8 inputs shaped as the served model's, parts 0-7 and a 0/255 warp coverage."""
    rng = np.random.default_rng(seed)
    inputs = {t.name: rng.integers(0, 256, (n, *t.dims), dtype=np.uint8) for t in POSE_TRANSFER.inputs}
    inputs["parts"] = rng.integers(0, 8, inputs["parts"].shape, dtype=np.uint8)
    inputs["warped"][..., 3] = np.where(rng.random(inputs["warped"].shape[:3]) < 0.6, 255, 0)
    return inputs


def test_init_from_the_served_onnx_reproduces_its_output():
    torch.manual_seed(0)
    inputs = random_inputs()
    fresh = PoseTransferGenerator()
    with torch.no_grad():
        before = PoseTransferServing(fresh).eval()(*(torch.from_numpy(v) for v in inputs.values()))[0].numpy()
    want = ort.InferenceSession(str(SERVED)).run(["image"], inputs)[0]
    assert np.abs(before.astype(int) - want).max() > 20  # an untrained generator is far from the file
    assert load_served(fresh, SERVED, inputs) <= 1  # at most a grey level on a rounding boundary
    # other inputs than those the check saw
    other = random_inputs(seed=1)
    with torch.no_grad():
        got = PoseTransferServing(fresh).eval()(*(torch.from_numpy(v) for v in other.values()))[0].numpy()
    assert np.abs(got.astype(int) - ort.InferenceSession(str(SERVED)).run(["image"], other)[0]).max() <= 1


def test_gate_loss_copies_where_the_warp_agrees_and_paints_where_it_does_not():
    target = torch.rand(1, 3, 8, 8) * 2 - 1
    warp_rgb = target.clone()
    warp_rgb[..., 4:] = -target[..., 4:]  # the right half of the warp is wrong
    coverage = torch.ones(1, 1, 8, 8)
    coverage[..., :2, :] = -1  # the top rows are not covered: not scored
    warped = torch.cat([warp_rgb, coverage], 1)
    right = torch.zeros(1, 1, 8, 8)
    right[..., :4] = 1  # copy on the left, paint on the right
    wrong_top = right.clone()
    wrong_top[..., :2, :] = 1 - wrong_top[..., :2, :]
    assert gate_loss(right, warped, target) < 0.01
    assert gate_loss(wrong_top, warped, target) == gate_loss(right, warped, target)  # uncovered rows do not count
    assert gate_loss(torch.ones(1, 1, 8, 8), warped, target) > 1  # copying the wrong half costs
    assert gate_loss(torch.zeros(1, 1, 8, 8), warped, target) > 1  # painting over the right half costs


def test_texture_loss_prefers_shifted_texture_to_a_blur():
    torch.manual_seed(0)
    stripes = torch.zeros(1, 3, 48, 32)
    stripes[..., ::2, :] = 1.0  # a striped garment
    mask = torch.ones(1, 1, 48, 32)
    shifted = stripes.roll(1, dims=2)  # the same texture, one pixel off
    blur = torch.full_like(stripes, 0.5)  # its mean colour
    assert texture_loss(stripes, stripes, mask) == 0
    assert texture_loss(shifted, stripes, mask) < 0.1 * texture_loss(blur, stripes, mask)
    assert texture_loss(blur, stripes, mask * 0) == 0  # nothing inside the person: nothing to score


def test_part_colour_loss_asks_for_each_garments_mean_colour_not_its_pixels():
    source = torch.full((1, 3, 8, 8), -1.0)
    source[..., 4:] = 1.0  # a black class 3 on the left, a white class 5 on the right
    source_parts = torch.full((1, 8, 8), 3)
    source_parts[..., 4:] = 5
    carried = source_parts.flip(-1)  # the warp carried them to the other sides
    result = source.flip(-1)
    assert part_colour_loss(result, source, source_parts, carried, [3, 5], min_pixels=4) == 0
    # a texture with the right mean (a checkerboard of the white garment's colour ± 0.5) is not penalised
    textured = result.clone()
    textured[..., :4] = 0.5 + ((torch.arange(8)[:, None] + torch.arange(4)[None, :]) % 2).float()
    assert part_colour_loss(textured, source, source_parts, carried, [3, 5], min_pixels=4) < 1e-6
    grey = result.clone()
    grey[..., :4] = 0.0  # the white garment painted mid-grey: off by 1 on every channel, half the classes
    assert part_colour_loss(grey, source, source_parts, carried, [3, 5], min_pixels=4) == 0.5
    # a class the warp carried nowhere is not scored: class 3 over the whole result (mean −0.5 against −1) alone
    assert part_colour_loss(grey, source, source_parts, torch.full_like(carried, 3), [3, 5], min_pixels=4) == 0.5
    assert part_colour_loss(grey, source, source_parts, torch.zeros_like(carried), [3, 5]) == 0


def test_detail_anchor_loss_lets_the_paints_colour_move_but_not_its_detail():
    torch.manual_seed(0)
    paint = torch.rand(1, 3, 48, 32) * 0.2  # a faint texture
    alpha = torch.full((1, 1, 48, 32), 10.0)  # the person everywhere
    gate = torch.full((1, 1, 48, 32), 0.25)
    reference = (paint, alpha, gate)
    assert detail_anchor_loss(reference, reference) == 0
    recoloured = (paint + torch.tensor([0.5, -0.3, 0.1])[:, None, None], alpha, gate)  # each channel shifted
    assert detail_anchor_loss(recoloured, reference) < 1e-5
    stripes = torch.zeros_like(paint)
    stripes[..., ::2, :] = 0.6  # a sharp pattern the reference did not paint
    sharper = (paint + stripes, alpha, gate)
    assert detail_anchor_loss(sharper, reference) > 0.2
    # where the reference copies the warp (gate 1) or shows no person, its paint's detail is not held
    assert abs(detail_anchor_loss(sharper, (paint, alpha, torch.ones_like(gate))) - 0.75) < 1e-5
    assert detail_anchor_loss(sharper, (paint, torch.full_like(alpha, -30.0), gate)) < 1e-6
    # the gate is held everywhere
    assert abs(detail_anchor_loss((paint, alpha, gate + 0.1), reference) - 0.1) < 1e-5

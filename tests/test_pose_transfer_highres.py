"""Issue 25's composition at the output's resolution: the generator's canvas heads (gate, alpha, painted
RGB) enlarged onto the part-wise warp done again at the target's size (fashionpixel/pose_transfer.py)."""

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from fashionpixel.models import POSE_TRANSFER
from fashionpixel.pose import found, without_stray_face_points
from fashionpixel.pose_transfer import (
    CANVAS_H,
    CANVAS_W,
    MAX_SCALE,
    PART_NAMES,
    CarriedParts,
    Composite,
    compose_highres,
    highres_canvas,
    highres_warp,
    nearest_labels,
    part_lab_stats,
    parts_map,
    source_canvas,
    to_target_size,
    warp_to_pose,
)
from tests.test_pose_transfer_training import SERVED, random_inputs
from training.models.pose_transfer import PoseTransferGenerator, PoseTransferServing


def heads(gate: float, alpha: float, painted: int, h: int = 4, w: int = 4) -> tuple[np.ndarray, ...]:
    """Flat canvas heads as the exported graph returns them (image, gate, alpha, painted), uint8."""
    return (
        np.zeros((h, w, 3), np.uint8),
        np.full((h, w, 1), round(gate * 255), np.uint8),
        np.full((h, w, 1), round(alpha * 255), np.uint8),
        np.full((h, w, 3), painted, np.uint8),
    )


def test_the_highres_canvas_is_the_targets_size_within_limits():
    assert highres_canvas(64, 64) == (CANVAS_W, CANVAS_H)  # never smaller than the generator's
    assert highres_canvas(400, 600) == (400, 600)  # a 2:3 target: its own size
    assert highres_canvas(200, 600) == (400, 600)  # a narrow one: its box in the canvas is as tall
    assert highres_canvas(4000, 6000) == (round(CANVAS_W * MAX_SCALE), round(CANVAS_H * MAX_SCALE))


def test_composition_takes_the_warp_where_the_gate_copies_and_the_fill_elsewhere():
    rng = np.random.default_rng(0)
    warp = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)  # a high-resolution texture (3× the heads)
    cover = np.full((12, 12), 255, np.uint8)
    copy = compose_highres(heads(1, 1, 50), warp, cover, Composite(fill="painted"))
    assert np.array_equal(copy, warp)  # every sharp pixel kept
    paint = compose_highres(heads(0, 1, 50), warp, cover, Composite(fill="painted"))
    assert (paint == 50).all()
    white = compose_highres(heads(1, 0, 50), warp, cover, Composite(fill="painted"))
    assert (white == 255).all()
    uncovered = cover.copy()
    uncovered[:, :6] = 0  # the warp has no pixels on the left: painted there whatever the gate says
    half = compose_highres(heads(1, 1, 50), warp, uncovered, Composite(fill="painted"))
    assert (half[:, :6] == 50).all() and np.array_equal(half[:, 6:], warp[:, 6:])
    # feathering blends across the coverage's edge instead of cutting
    soft = compose_highres(heads(1, 1, 50), warp, uncovered, Composite(fill="painted", feather=2))
    assert 0 < np.abs(soft[:, 5].astype(int) - 50).mean() < np.abs(warp[:, 5].astype(int) - 50).mean()
    # a binarised gate copies all of a 0.6 gate, the soft gate only 60 %, a threshold of 0.4 a third of it
    hard = compose_highres(heads(0.6, 1, 50), warp, cover, Composite(fill="painted", threshold=0.5, binary=True))
    assert np.array_equal(hard, warp)
    mixed = compose_highres(heads(0.6, 1, 50), warp, cover, Composite(fill="painted"))
    assert np.abs(mixed.astype(float) - (0.6 * warp + 0.4 * 50)).max() <= 1
    third = compose_highres(heads(0.6, 1, 50), warp, cover, Composite(fill="painted", threshold=0.4))
    assert np.abs(third.astype(float) - (warp / 3 + 2 / 3 * 50)).max() <= 1
    below = compose_highres(heads(0.6, 1, 50), warp, cover, Composite(fill="painted", threshold=0.7))
    assert (below == 50).all()


def test_the_blurred_warp_brings_the_sources_colour_where_the_gate_is_unsure():
    flat = np.full((12, 12, 3), 200, np.uint8)  # the source's colour, warped
    cover = np.full((12, 12), 255, np.uint8)
    canvas = heads(0.3, 1, 50)
    canvas[0][:] = 50  # the canvas result: the network's own colour
    below = Composite(threshold=0.4)  # the sharp warp is not copied at a 0.3 gate
    assert (compose_highres(canvas, flat, cover, below) == 50).all()
    tinted = compose_highres(canvas, flat, cover, Composite(threshold=0.4, colour_sigma=2))
    assert np.abs(tinted.astype(float) - (0.3 * 200 + 0.7 * 50)).max() <= 1  # the soft gate's share
    cover[:, :6] = 0  # no warp on the left: the blur is normalised inside the coverage, not whitened
    inside = compose_highres(canvas, flat, cover, Composite(threshold=0.4, colour_sigma=2))
    # near the edge the blurred warp's share fades toward the canvas colour (50), never toward white
    assert (inside[:, 6:] <= 96).all() and (inside[:, 10:] >= 93).all() and (inside[:, :2] < 60).all()


def test_the_warp_carries_the_parts_with_the_pixels():
    """The labels ride on the same maps as the pixels: a shifted target pose shifts both alike."""
    image = np.full((CANVAS_H, CANVAS_W, 3), 255, np.uint8)
    parts = np.zeros((CANVAS_H, CANVAS_W), np.uint8)
    parts[40:100, 44:84], image[40:100, 44:84] = 3, (200, 30, 30)  # a red t-shirt
    parts[100:170, 44:84], image[100:170, 44:84] = 5, (30, 30, 200)  # blue pants
    k = np.full((18, 3), -1.0, np.float32)
    for i, xy in {1: (64, 40), 2: (48, 42), 5: (80, 42), 8: (52, 100), 11: (76, 100)}.items():
        k[i] = (*xy, 1)
    moved = k.copy()
    moved[found(k), 0] += 10
    warped, cover, carried = warp_to_pose(image, parts, k, moved, labels=True)
    assert np.array_equal(warp_to_pose(image, parts, k, moved)[0], warped)  # the same warp
    red, blue = (carried == 3), (carried == 5)
    assert red.sum() > 1000 and blue.sum() > 100 and not (carried[cover == 0]).any()
    assert (warped[red] == (200, 30, 30)).all() and (warped[blue] == (30, 30, 200)).all()
    assert red[60:90, 56:92].all()  # moved right by 10 px with the pixels


def skirt_case(garment: str):
    """A made-up person: a torso and a `garment` (dress or pants) from the shoulders to the knees, legs
    below in skin; every pixel's colour codes where it came from (R = x, G = y). The target spreads the
    legs apart (knees 16 px out, the torso where it was)."""
    ys, xs = np.mgrid[0:CANVAS_H, 0:CANVAS_W]
    image = np.dstack([xs * 2, ys, np.full_like(xs, 100)]).astype(np.uint8)
    parts = np.zeros((CANVAS_H, CANVAS_W), np.uint8)
    parts[42:140, 46:82] = PART_NAMES.index(garment)
    parts[140:184, 50:78] = PART_NAMES.index("skin")
    image[parts == 0] = 255
    k = np.full((18, 3), -1.0, np.float32)
    points = {1: (64, 40), 2: (50, 44), 5: (78, 44), 8: (56, 100), 11: (72, 100)}
    points |= {9: (56, 140), 12: (72, 140), 10: (56, 180), 13: (72, 180)}
    for i, xy in points.items():
        k[i] = (*xy, 1)
    spread = k.copy()
    spread[[9, 10], 0] -= (16, 28)
    spread[[12, 13], 0] += (16, 28)
    return image, parts, k, spread


def test_a_dress_moves_as_one_piece_with_the_skirt_option_and_pants_follow_the_legs():
    image, parts, k, spread = skirt_case("dress")
    centre = (120, 64)  # between the thighs, below the hips: the dress's middle
    torn, _, torn_labels = warp_to_pose(image, parts, k, spread, labels=True)
    # today's nearest-bone ownership: the two thighs pull the dress apart and its middle is not the source's
    assert not (torn_labels[centre] == PART_NAMES.index("dress") and abs(int(torn[centre][0]) - 128) <= 4)
    for how in ("torso", "legs", "hips"):
        whole, cover, labels = warp_to_pose(image, parts, k, spread, labels=True, skirt=how)
        assert labels[centre] == PART_NAMES.index("dress") and cover[centre] == 255
        # the middle of the skirt comes from the middle of the source's skirt (x = 64), at the same height
        assert abs(int(whole[centre][0]) - 2 * 64) <= 4 and abs(int(whole[centre][1]) - 120) <= 3
        # the skirt is one piece: no white gap across it at the mid-thigh
        row = labels[120, 40:90] == PART_NAMES.index("dress")
        first, last = np.argmax(row), len(row) - 1 - np.argmax(row[::-1])
        assert row[first : last + 1].all() and last - first >= 30
    # the torso map keeps the skirt where it was (the torso did not move); the legs' map widens it with the knees
    torso = warp_to_pose(image, parts, k, spread, skirt="torso")[0]
    legs, _, legs_labels = warp_to_pose(image, parts, k, spread, labels=True, skirt="legs")
    assert np.array_equal(torso[60:100], warp_to_pose(image, parts, k, k)[0][60:100])
    dress = PART_NAMES.index("dress")
    assert (legs_labels[130] == dress).sum() > (
        warp_to_pose(image, parts, k, spread, True, "torso")[2][130] == dress
    ).sum()
    # the hips' map follows the legs' mean: shorter thighs in the target shorten the skirt, not widen it
    short = spread.copy()
    short[[9, 10, 12, 13], 1] -= 10
    hips, _, hips_labels = warp_to_pose(image, parts, k, short, labels=True, skirt="hips")
    assert abs(int(hips[115, 64][1]) - 120) <= 3  # y = 115 shows the source's y = 120 (scaled by 30/40 below the hips)
    assert (hips_labels[115] == dress).sum() < (legs_labels[120] == dress).sum()
    # the shins (skin) still follow the legs
    assert (legs_labels[170, 20:40] == PART_NAMES.index("skin")).any()

    # pants: the option changes nothing, each leg still moves with its bone
    image, parts, k, spread = skirt_case("pants")
    plain = warp_to_pose(image, parts, k, spread, labels=True)
    for how in ("torso", "legs", "hips"):
        assert all(np.array_equal(a, b) for a, b in zip(plain, warp_to_pose(image, parts, k, spread, True, how)))
    # ... unless pants are named a skirt part
    assert not np.array_equal(plain[0], warp_to_pose(image, parts, k, spread, skirt="torso", skirt_parts=("pants",))[0])


def test_an_ear_far_from_the_face_is_dropped_and_a_face_close_by_kept():
    """ccp/0863's pose, as the served pose network reads it: its left ear lies 1.6 nose-to-neck lengths
    from the nose (on the wall behind), which drew a second head on a transfer into that pose."""
    k = np.full((18, 3), -1.0, np.float32)
    k[[0, 1, 14, 15, 16, 17]] = [
        (237.8, 105.2, 0.73),  # nose
        (263.7, 169.9, 0.75),  # neck
        (224.9, 85.7, 0.76),  # eyes
        (244.3, 85.7, 0.67),
        (224.9, 92.2, 0.74),  # right ear
        (315.4, 27.5, 0.68),  # left ear, on the wall
    ]
    given = k.copy()
    clean = without_stray_face_points(k)
    assert list(np.flatnonzero(found(k) & ~found(clean))) == [17]
    assert np.array_equal(clean[:17], k[:17]) and np.array_equal(k, given)  # a copy: the caller's are untouched
    assert np.array_equal(without_stray_face_points(k[:, :2])[:17], k[:17, :2])  # x, y without scores
    no_neck = k.copy()
    no_neck[1] = -1
    assert np.array_equal(without_stray_face_points(no_neck), no_neck)  # no scale to judge by: as it is


def test_nearest_labels_fill_where_the_warp_has_no_pixel():
    labels = np.zeros((6, 8), np.uint8)
    labels[1, 1], labels[4, 6] = 3, 5
    filled = nearest_labels(labels)
    assert filled[0, 0] == 3 and filled[2, 2] == 3 and filled[5, 7] == 5 and filled[3, 6] == 5
    assert (nearest_labels(np.zeros((3, 3), np.uint8)) == 0).all()


def test_a_source_with_nobody_found_has_no_colours_to_match():
    # a photo where the parsing finds no person (seen on a small framing): no part, no crash
    assert part_lab_stats(np.full((8, 6, 3), 200, np.uint8), np.zeros((8, 6), np.uint8)) == {}


def test_the_colour_correction_moves_painted_garments_toward_the_sources_colour():
    """Painted pixels of the wrong shade move to the source part's CIELAB colour; copied pixels stay,
    and a part whose colour the source does not give is left alone."""
    red, blue = (200, 40, 40), (40, 40, 200)
    source = np.full((24, 24, 3), 255, np.uint8)
    source_parts = np.zeros((24, 24), np.uint8)
    source_parts[2:12, 4:20], source[2:12, 4:20] = PART_NAMES.index("t-shirt"), red
    source_parts[12:22, 4:20], source[12:22, 4:20] = PART_NAMES.index("pants"), blue
    colours = part_lab_stats(source, source_parts)
    carried_labels = source_parts.copy()
    carried_labels[:, 4:6] = 0  # no warp there: the nearest carried part is used
    warp = np.full((24, 24, 3), 255, np.uint8)
    cover = (carried_labels > 0).astype(np.uint8) * 255
    canvas = heads(0.0, 1, 0)
    canvas[0][:] = (150, 90, 90)  # the canvas result: a greyish red everywhere, nothing copied
    how = Composite(colour_match=1.0)
    plain = compose_highres(canvas, warp, cover, how)  # without carried parts: no correction
    assert (plain == (150, 90, 90)).all()
    only_shirt = {PART_NAMES.index("t-shirt"): colours[PART_NAMES.index("t-shirt")]}
    out = compose_highres(canvas, warp, cover, how, CarriedParts(carried_labels, only_shirt))
    shirt = out[2:12, 4:20].reshape(-1, 3).astype(int)
    assert np.abs(shirt - red).max() <= 2  # a flat fill is moved all the way to the source's colour
    assert (out[12:22, 4:20] == (150, 90, 90)).all()  # pants: no source colour given, left alone
    assert np.abs(out[0:2, 4:20].astype(int) - red).max() <= 2  # outside the warp: the nearest part's
    both = compose_highres(canvas, warp, cover, how, CarriedParts(carried_labels, colours))
    pants = both[12:22, 4:20].reshape(-1, 3).astype(int)
    assert np.abs(pants - blue).max() <= 2
    half = compose_highres(canvas, warp, cover, Composite(colour_match=0.5), CarriedParts(carried_labels, colours))
    d_half = np.abs(half[2:12, 4:20].astype(int) - red).mean()
    assert (
        0.3 * np.abs(np.subtract((150, 90, 90), red)).mean() < d_half < np.abs(np.subtract((150, 90, 90), red)).mean()
    )
    # where the composition copies the warp (gate 1), "painted" leaves the pixels as they are
    copy = heads(1.0, 1, 0)
    copy[0][:] = (150, 90, 90)
    greyish = np.full((24, 24, 3), (150, 90, 90), np.uint8)
    kept = compose_highres(copy, greyish, cover, how, CarriedParts(carried_labels, colours))
    assert (kept[cover > 0] == (150, 90, 90)).all()
    moved = compose_highres(
        copy, greyish, cover, Composite(colour_match=1.0, match_pixels="all"), CarriedParts(carried_labels, colours)
    )
    assert np.abs(moved[2:12, 6:20].astype(int) - red).max() <= 2
    # chroma only (match_lightness 0): a* and b* take the source's, L* stays the network's
    chroma = compose_highres(
        canvas, warp, cover, Composite(colour_match=1.0, match_lightness=0.0), CarriedParts(carried_labels, colours)
    )
    lab = cv2.cvtColor(chroma[2:12, 6:20].astype(np.float32) / 255, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    before = cv2.cvtColor(np.float32([[[150, 90, 90]]]) / 255, cv2.COLOR_RGB2Lab)[0, 0]
    shirt_lab = colours[PART_NAMES.index("t-shirt")][0]
    assert np.abs(lab[:, 0] - before[0]).max() < 1.5  # the lightness kept
    assert np.abs(lab[:, 1:] - shirt_lab[1:]).max() < 3 < np.abs(before[1:] - shirt_lab[1:]).max()


def test_the_local_colour_goal_keeps_a_two_coloured_garment_two_coloured():
    """A t-shirt that is a light jacket over a dark top (one parser class): with match_sigma each painted
    pixel moves toward the warp's colour of that part around it, so both halves come back; the one goal
    per part (the source's mean) makes both the same middle shade. L* moves match_lightness of the way."""
    light, dark = (230, 230, 230), (30, 30, 30)
    source = np.full((24, 48, 3), 255, np.uint8)
    parts = np.zeros((24, 48), np.uint8)
    parts[4:20, 4:44] = PART_NAMES.index("t-shirt")
    source[4:20, 4:24], source[4:20, 24:44] = light, dark
    carried = CarriedParts(parts, part_lab_stats(source, parts))
    cover = (parts > 0).astype(np.uint8) * 255
    canvas = heads(0.0, 1, 0)  # nothing copied: every pixel is the network's grey paint
    canvas[0][:] = 128
    local = Composite(colour_match=1.0, match_lightness=1.0, match_sigma=3)
    out = compose_highres(canvas, source, cover, local, carried).astype(int)
    assert out[6:18, 6:16].min() > 200 and out[6:18, 32:42].max() < 60  # each half its own colour
    one_goal = compose_highres(canvas, source, cover, Composite(colour_match=1.0, match_lightness=1.0), carried)
    assert np.abs(one_goal[6:18, 6:16].astype(int) - one_goal[6:18, 32:42]).max() < 10  # one middle shade
    # half the lightness: the light half ends between the paint and the jacket
    half = compose_highres(
        canvas, source, cover, Composite(colour_match=1.0, match_lightness=0.5, match_sigma=3), carried
    )
    assert 150 < half[6:18, 6:16].mean() < 215
    # chroma only, with a tolerance: the grey paint is far (> 10) from the light goal, so its L* comes back
    # to within 10 of it; on a near miss (paint 220 against 230) the network's L* stays
    lab = lambda rgb: cv2.cvtColor(np.float32(rgb)[None, None] / 255, cv2.COLOR_RGB2Lab)[0, 0]
    chroma_tolerance = Composite(colour_match=1.0, match_lightness=0.0, match_sigma=3, match_tolerance=10)
    back = compose_highres(canvas, source, cover, chroma_tolerance, carried)[10, 10]
    assert abs(lab(back)[0] - lab(light)[0]) <= 10.5 and lab(back)[0] > lab((128,) * 3)[0] + 20
    near = heads(0.0, 1, 0)
    near[0][:] = 220
    assert compose_highres(near, source, cover, chroma_tolerance, carried)[10, 10].tolist() == [220, 220, 220]
    # a copied pixel (gate 1) is the warp's own and stays
    copied = heads(1.0, 1, 0)
    copied[0][:] = 128
    kept = compose_highres(copied, source, cover, local, carried)
    assert (kept[cover > 0] == source[cover > 0]).all()


def test_the_exported_heads_recompose_the_exported_image():
    """At the canvas's own size the service's composition is the generator's: the graph's `image` is
    its gate, alpha and painted RGB composed (up to the uint8 rounding of the heads)."""
    inputs = random_inputs()
    out = dict(zip(POSE_TRANSFER.output_names, ort.InferenceSession(str(SERVED)).run(None, inputs)))
    for i in range(2):
        warped = inputs["warped"][i]
        mine = compose_highres(
            tuple(out[n][i] for n in POSE_TRANSFER.output_names),
            warped[..., :3],
            warped[..., 3],
            Composite(fill="painted"),
        )
        assert np.abs(mine.astype(int) - out["image"][i]).max() <= 3


def test_the_serving_module_returns_the_registry_outputs():
    torch.manual_seed(0)
    inputs = random_inputs()
    with torch.no_grad():
        got = PoseTransferServing(PoseTransferGenerator()).eval()(*(torch.from_numpy(v) for v in inputs.values()))
    assert [tuple(t.shape[1:]) for t in got] == [t.dims for t in POSE_TRANSFER.outputs]
    assert all(t.dtype == torch.uint8 for t in got)
    gate = got[1].numpy()[..., 0]
    assert (gate[inputs["warped"][..., 3] == 0] == 0).all()  # no copying where the warp has no pixel


@pytest.mark.data
def test_the_highres_warp_keeps_the_photos_detail(data_dir):
    """The same person in the same pose warped at the photo's size keeps the photo's texture; the
    canvas warp enlarged to that size has lost most of it."""
    from training.datasets import keypoint_samples, read_image, read_labels
    from training.evaluate_cross_person import texture_energy
    from training.skin_data import labelled

    sample, k = next((s, k) for s, k in keypoint_samples() if s.split == "val" and labelled(s))
    photo = read_image(sample)
    person, fashion = read_labels(sample)
    size = (photo.shape[1], photo.shape[0])
    sharp, cover = highres_warp(photo, person, fashion, k, k, size)
    sharp = to_target_size(sharp, *size)
    image, parts, canvas_k = source_canvas(photo, person, fashion, k)
    blurred = to_target_size(warp_to_pose(image, parts, canvas_k, canvas_k)[0], *size)
    garments = np.isin(parts_map(person, fashion), [3, 5, 6])
    ratio = texture_energy(sharp, garments, person > 0) / texture_energy(blurred, garments, person > 0)
    assert ratio > 1.5, ratio
    reference = texture_energy(photo, garments, person > 0)
    assert texture_energy(sharp, garments, person > 0) > 0.7 * reference

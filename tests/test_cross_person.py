"""The cross-person pose-transfer evaluation (issue 25): each metric on cases whose answer is known, and
the command on a few real pairs."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fashionpixel.pose import skeleton_mask
from fashionpixel.pose_transfer import PART_NAMES
from tests.conftest import REPO
from training.evaluate_cross_person import (
    colour_differences,
    paired_colour,
    part_colours,
    silhouette,
    texture_ratio,
)

T_SHIRT, PANTS = PART_NAMES.index("t-shirt"), PART_NAMES.index("pants")
# a person standing in a 200×300 picture: nose, neck, arms, hips, legs (eyes and ears missing)
STANDING = np.array(
    [[100, 40], [100, 70], [80, 70], [70, 110], [65, 150], [120, 70], [130, 110], [135, 150]]
    + [[88, 160], [88, 215], [88, 270], [112, 160], [112, 215], [112, 270]]
    + [[-1, -1]] * 4,
    np.float32,
)


def dressed_person(scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A striped red t-shirt over striped blue pants on white, and its parts map; `scale` draws the same
    person (texture included) that many times larger."""
    image = np.full((300 * scale, 200 * scale, 3), 255, np.uint8)
    parts = np.zeros((300 * scale, 200 * scale), np.uint8)
    parts[70 * scale : 160 * scale, 70 * scale : 130 * scale] = T_SHIRT
    parts[160 * scale : 280 * scale, 75 * scale : 125 * scale] = PANTS
    ys, xs = np.mgrid[0 : 300 * scale, 0 : 200 * scale]
    stripes = (30 * np.sin(2 * np.pi * (xs + ys) / (8 * scale)))[..., None]
    image[parts == T_SHIRT] = (np.array([200, 40, 40]) + stripes[parts == T_SHIRT]).round()
    image[parts == PANTS] = (np.array([40, 60, 180]) + stripes[parts == PANTS]).round()
    return image, parts


def test_the_source_as_its_own_result_scores_perfect():
    image, parts = dressed_person()
    colours = part_colours(image, parts)
    assert set(colours) == {"t-shirt", "pants"}
    assert colour_differences(colours, colours) == {"t-shirt": 0.0, "pants": 0.0}
    assert texture_ratio(image, parts, image, parts) == pytest.approx(1.0)


def test_a_flat_result_has_no_texture_and_a_recoloured_garment_a_large_error():
    image, parts = dressed_person()
    grey = np.full_like(image, 128)
    assert texture_ratio(image, parts, grey, parts) < 0.01
    blurred = cv2.GaussianBlur(image, (0, 0), 2)  # what painting the mean does: in between
    assert 0.05 < texture_ratio(image, parts, blurred, parts) < 0.5
    recoloured = image.copy()
    recoloured[parts == T_SHIRT] = [40, 160, 40]  # the t-shirt comes out green
    d = colour_differences(part_colours(image, parts), part_colours(recoloured, parts))
    assert d["t-shirt"] > 30 and d["pants"] == 0.0


def test_a_part_found_on_one_side_only_is_counted_not_scored():
    image, parts = dressed_person()
    dress = parts.copy()
    dress[parts == PANTS] = PART_NAMES.index("dress")  # the pants come out as a dress
    d = colour_differences(part_colours(image, parts), part_colours(image, dress))
    assert d == {"t-shirt": 0.0, "pants": "lost", "dress": "new"}


def test_the_same_texture_at_another_scale_keeps_its_ratio():
    image, parts = dressed_person()
    big, big_parts = dressed_person(scale=2)  # a target photo twice the size
    assert texture_ratio(image, parts, big, big_parts) == pytest.approx(1.0, abs=0.1)


def test_two_reports_are_compared_on_the_garments_both_scored():
    def report(*colours):
        return {"per_pair": [{"source": f"s{i}", "target": f"t{i}", "colour": c} for i, c in enumerate(colours)]}

    before = report({"t-shirt": 8.0, "pants": 4.0, "skin": 50.0}, {"dress": 12.0})
    after = report({"t-shirt": 4.0, "pants": 2.0, "skin": 1.0}, {"dress": "lost"})
    c = paired_colour(before, after)
    # skin is not a garment; the dress the result lost does not count for it, nor its error for the one before
    assert (c["garments"], c["before"], c["after"], c["ratio"]) == (2, 6.0, 3.0, 0.5)
    assert c["ratio_95"][0] <= 0.5 <= c["ratio_95"][1]
    with pytest.raises(ValueError, match="different pairs"):
        paired_colour(before, report({"t-shirt": 1.0}))


def test_silhouette_coverage_of_the_target_skeleton():
    limbs = skeleton_mask(STANDING, (300, 200), 0.12)
    assert limbs.any() and limbs[100, 100] and not limbs[20, 20]
    assert silhouette(np.ones((300, 200), np.uint8), STANDING)[0] == 1.0  # a mask over everything covers it all
    assert silhouette(np.zeros((300, 200), np.uint8), STANDING)[0] == 0.0
    coverage, outside = silhouette(limbs, STANDING)  # exactly the skeleton: all covered, nothing outside
    assert coverage == 1.0 and outside == 0.0
    half = limbs.copy()
    half[:, 100:] = False  # the person's left side missing
    assert 0.3 < silhouette(half, STANDING)[0] < 0.7
    assert silhouette(np.ones((300, 200), np.uint8), np.full((18, 2), -1, np.float32)) is None  # no torso


def cross_person_report(tmp_path, pairs: int, *extra: str) -> tuple[dict, str]:
    """The served networks' cross-person report on the first `pairs` validation pairs, and what it printed."""
    report_file = tmp_path / "report.json"
    r = subprocess.run(
        [sys.executable, "-m", "training.evaluate_cross_person", "--pairs", str(pairs), "--threads", "1"]
        + ["--json", str(report_file), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(report_file.read_text()), r.stdout


@pytest.mark.data
def test_skipped_pairs_are_the_next_ones_with_new_people(data_dir):
    """--skip 80: the pairs after the card's 80, no person of which is in them."""
    from training.evaluate_cross_person import cross_person_pairs

    def names(pairs):
        return [tuple(f"{s.dataset}/{s.name}" for s, _ in pair) for pair in pairs]

    every = names(cross_person_pairs(117))
    first, rest = every[:80], names(cross_person_pairs(37, skip=80))
    assert rest == every[80:] and len(rest) == 37
    assert not {p for pair in first for p in pair} & {p for pair in rest for p in pair}
    assert all(a != b for a, b in rest)


@pytest.mark.data
@pytest.mark.slow
def test_the_command_reports_every_measure(data_dir, tmp_path):
    sheet = tmp_path / "sheet.jpg"
    report, printed = cross_person_report(tmp_path, 3, "--sheet", str(sheet))
    assert "garment colour ΔE2000" in printed and "texture ratio" in printed
    assert report["pairs"] == 3 and len(report["per_pair"]) == 3
    assert sheet.exists() and sheet.read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    for row in report["per_pair"]:
        assert row["source"] != row["target"]
        for value in row["colour"].values():
            assert value in ("lost", "new") or 0 <= value < 100
    colour = report["colour_delta_e"]
    assert colour["garments"]["pairs"] >= 1 and 0 <= colour["garments"]["mean"] < 100
    assert set(colour["by_part"]) == set(PART_NAMES[1:])
    assert 0 < report["texture_ratio"]["mean"] < 2
    sil = report["silhouette"]
    for key in ("coverage", "outside", "reference_coverage", "reference_outside"):
        assert 0 <= sil[key]["mean"] <= 1
    assert sil["reference_coverage"]["mean"] > 0.9  # real people cover their own skeleton
    mirror = report["mirror_pose"]["photo"]
    assert mirror["photos"] == 3 and 0.5 < mirror["ssim"] < 1 and 10 < mirror["psnr"] < 40
    assert report["ms_per_pair"] > 0


@pytest.mark.data
@pytest.mark.slow
def test_the_served_model_keeps_the_garment_across_people(data_dir, tmp_path):
    """Issue 25's targets as floors on the first 20 of the card's 80 validation pairs (the card measures
    all 80): the served model 3.05 / 0.426 / 0.966 / 0.804 here (its source's outline refined, limbs kept;
    3.07 before that); the weights served before them 3.46 colour;
    the first served model, a painted blur, 8.34 / 0.148 on the 80 pairs."""
    report, _ = cross_person_report(tmp_path, 20)
    assert report["colour_delta_e"]["garments"]["mean"] <= 4.17  # ΔE2000, half of the first model's
    assert report["texture_ratio"]["mean"] >= 0.296  # twice the first model's
    assert report["silhouette"]["coverage"]["mean"] >= 0.962  # the first model's
    assert report["mirror_pose"]["photo"]["ssim"] >= 0.80

"""The evaluations' --framing: each command scores a few validation photos in two framings (full +
waist-up) and reports every framing and the shop mean; `full` alone keeps the report it always had."""

import pytest

from tests.conftest import REPO
from training.served import framing_report

MODELS = REPO / "model_repository"
FRAMINGS = ("full", "waist-up")


def test_framing_report_keeps_full_alone_and_averages_the_shop_framings():
    full = {"photo": {"photos": 2, "psnr": 20.0}}
    assert framing_report({"full": full}) == full
    report = framing_report(
        {
            "full": full,
            "waist-up": {"photo": {"photos": 2, "psnr": 14.0}},
            "square": {"photo": {"photos": 2, "psnr": 18.0}},
        }
    )
    assert list(report["framings"]) == ["full", "waist-up", "square"]
    assert report["shop"] == {"photo": {"psnr": 16.0}}  # full is no shop framing; counts are not averaged


def check(report: dict, path: tuple[str, ...], low: float, high: float) -> None:
    """Every framing and the shop mean are there, with the score at `path` (e.g. photo, ssim) within
    [low, high]; the only shop framing measured is waist-up, so the shop mean is its score."""

    def at(scores):
        for key in path:
            scores = scores[key]
        return scores

    assert list(report["framings"]) == list(FRAMINGS)
    for name in FRAMINGS:
        assert low <= at(report["framings"][name]) <= high, (name, path)
    assert at(report["shop"]) == pytest.approx(at(report["framings"]["waist-up"]))


@pytest.mark.data
def test_pose_evaluation_in_framings(data_dir):
    from training.evaluate_pose import evaluate

    model = MODELS / "pose/1/model.onnx"
    report = evaluate(model, limit=3, framings=FRAMINGS, threads=1)
    assert report["images"] == 3
    check(report, ("pck@0.1",), 0.0, 1.0)
    framed = report["framings"]
    assert 0 < framed["waist-up"]["keypoints"] < framed["full"]["keypoints"]  # the legs left the frame
    assert set(evaluate(model, limit=2, threads=1)) >= {"pck@0.1", "per_keypoint", "sweep"}  # full alone: as before


@pytest.mark.data
def test_skin_evaluation_in_framings(data_dir):
    from training.evaluate_skin import evaluate

    report = evaluate(MODELS / "skin/1/model.onnx", MODELS, 2, 1, None, FRAMINGS)
    assert report["photos"] == 2
    for setting in ("photo", "photo_labelled_silhouette"):
        check(report, (setting, "ssim"), 0.0, 1.0)
        check(report, (setting, "psnr"), 5.0, 100.0)


@pytest.mark.data
def test_pose_transfer_evaluation_in_framings(data_dir):
    from training.evaluate_pose_transfer import evaluate

    report = evaluate(MODELS / "pose_transfer/1/model.onnx", MODELS, 2, 1, None, FRAMINGS)
    assert report["canvas_labelled"]["photos"] == 2  # the canvas generator scores stay full-only
    check(report, ("photo", "ssim"), 0.0, 1.0)
    check(report, ("photo", "psnr"), 5.0, 100.0)
    assert report["framings"]["waist-up"]["photo"]["photos"] == 2

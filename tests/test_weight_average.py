"""training.weight_average: the served network and its continuation, averaged weight for weight."""

import pytest
import torch

from tests.conftest import REPO
from training.weight_average import average

SERVED = REPO / "model_repository" / "segmentation" / "1" / "model.onnx"
CONTINUED = REPO / "checkpoints" / "segmentation-shop.pt"  # started from the served file (frozen BatchNorms)


def test_the_ends_are_the_two_networks_and_the_middle_lies_between():
    tuned = torch.load(CONTINUED, weights_only=False)["model"]
    base = average(SERVED, CONTINUED, 0.0)["model"]
    end = average(SERVED, CONTINUED, 1.0)["model"]
    middle = average(SERVED, CONTINUED, 0.5)
    assert middle["args"]["frozen_batchnorm"] and middle["args"]["weight_average"]["alpha"] == 0.5
    moved = 0
    for k, v in tuned.items():
        if not v.is_floating_point():
            continue
        assert torch.allclose(end[k].float(), v.float())
        assert torch.allclose(middle["model"][k].float(), (base[k].float() + v.float()) / 2, atol=1e-6)
        moved += int(not torch.allclose(base[k].float(), v.float(), atol=1e-4))
    assert moved > 10  # the continuation did train: the two ends differ


def test_a_run_that_did_not_start_from_the_served_file_is_refused(tmp_path):
    ck = torch.load(CONTINUED, weights_only=False)
    ck["args"] = {k: v for k, v in ck["args"].items() if k not in ("frozen_batchnorm", "init")}
    torch.save(ck, tmp_path / "other.pt")
    with pytest.raises(SystemExit, match="do not line up"):
        average(SERVED, tmp_path / "other.pt", 0.5)


def test_two_checkpoints_average_by_name_and_must_line_up(tmp_path):
    """A `.pt` base (pose transfer: the run both continued from) is averaged weight for weight."""
    torch.manual_seed(0)
    first = {"model": {"w": torch.randn(3, 4), "b": torch.randn(4).half(), "n": torch.tensor(7)}, "args": {"x": 1}}
    second = {"model": {"w": torch.randn(3, 4), "b": torch.randn(4).half(), "n": torch.tensor(9)}, "args": {"x": 2}}
    torch.save(first, tmp_path / "base.pt")
    torch.save(second, tmp_path / "tuned.pt")
    mixed = average(tmp_path / "base.pt", tmp_path / "tuned.pt", 0.25)
    assert torch.allclose(mixed["model"]["w"], 0.75 * first["model"]["w"] + 0.25 * second["model"]["w"])
    assert mixed["model"]["b"].dtype == torch.float16 and mixed["model"]["n"] == 9  # counters: the tuned run's
    assert mixed["args"]["x"] == 2 and mixed["args"]["weight_average"]["alpha"] == 0.25
    second["model"]["w"] = torch.randn(4, 3)
    torch.save(second, tmp_path / "other.pt")
    with pytest.raises(SystemExit, match="do not line up"):
        average(tmp_path / "base.pt", tmp_path / "other.pt", 0.5)

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

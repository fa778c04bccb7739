"""The shared training loop's moving average of the weights (`--ema`): what it saves, validates and resumes."""

import numpy as np
import torch

from training import loop


def _run(out, steps: int, ema: float):
    torch.manual_seed(0)
    net = torch.nn.Linear(1, 1, bias=False)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    target = torch.tensor([[3.0]])

    def loss_fn(rng):
        return ((net(torch.ones(1, 1)) - target) ** 2).mean()

    def validate():
        return {"score": -abs(net.weight.item() - 3.0), "weight": net.weight.item()}

    loop.train(
        out=out,
        steps=steps,
        batch=1,
        net=net,
        opt=opt,
        sched=sched,
        loss_fn=loss_fn,
        validate=validate,
        score="score",
        val_every=5,
        seed=0,
        args={},
        ema=ema,
    )
    return torch.load(out / "last.pt", weights_only=False)


def test_the_average_is_saved_as_the_model_and_validated_beside_the_raw_weights(tmp_path):
    ck = _run(tmp_path / "ema", 10, ema=0.9)
    raw, average = ck["raw"]["weight"].item(), ck["model"]["weight"].item()
    assert abs(raw - 3.0) < abs(average - 3.0)  # the average lags behind the weights it follows
    last = ck["history"][-1]
    assert np.isclose(last["weight"], average) and np.isclose(last["raw_weight"], raw)


def test_a_resumed_run_continues_both_weights(tmp_path):
    whole = _run(tmp_path / "whole", 10, ema=0.9)
    _run(tmp_path / "split", 5, ema=0.9)
    resumed = _run(tmp_path / "split", 10, ema=0.9)
    for key in ("model", "raw"):
        assert torch.allclose(whole[key]["weight"], resumed[key]["weight"])


def test_without_ema_the_model_is_the_raw_weights(tmp_path):
    ck = _run(tmp_path / "plain", 10, ema=0.0)
    assert "raw" not in ck and np.isclose(ck["history"][-1]["weight"], ck["model"]["weight"].item())

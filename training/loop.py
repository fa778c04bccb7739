"""The training loop every network shares: resumable checkpoints, progress lines, validation,
keeping the best checkpoint. `<out>/last.pt` is written atomically, so a run killed at any moment
resumes from its last save by re-running the same command."""

import argparse
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def arguments(doc: str, out: str, steps: int, batch: int) -> argparse.ArgumentParser:
    """The command-line options every training command has."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(out), help="checkpoints and the resume point")
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=2e-3, help="peak of the one-cycle schedule")
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, help="use only the first N photos of each set (smoke tests)")
    ap.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="keep an exponential moving average of the weights with this decay (e.g. 0.998): it is what is "
        "validated and saved as the model; the raw weights are validated beside it (raw_*) and kept to resume",
    )
    return ap


def run(args: argparse.Namespace, net, opt, sched, loss_fn, validate, score: str, **record) -> float:
    """`train` (see its parameters) with the options of `arguments`; the command line, and `record`, saved
    in each checkpoint."""
    return train(
        out=args.out,
        steps=args.steps,
        batch=args.batch,
        net=net,
        opt=opt,
        sched=sched,
        loss_fn=loss_fn,
        validate=validate,
        score=score,
        val_every=args.val_every,
        seed=args.seed,
        ema=args.ema,
        args=vars(args) | {"out": str(args.out)} | record,
    )


def train(
    *,
    out: Path,
    steps: int,
    batch: int,
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched,
    loss_fn: Callable[[np.random.Generator], torch.Tensor],
    validate: Callable[[], dict],
    score: str,
    val_every: int,
    seed: int,
    args: dict,
    save_every: int = 100,
    ema: float = 0.0,
) -> float:
    """Optimise `loss_fn` for `steps` steps; returns the best validation `score` (higher is better).
    With `ema` > 0 the checkpoints' "model" is the weights' moving average (what export reads), and "raw"
    the optimiser's own weights."""
    out.mkdir(parents=True, exist_ok=True)
    step, best, history = 0, -float("inf"), []
    last = out / "last.pt"
    # use_buffers: frozen or not, BatchNorm statistics are averaged with the weights they belong to
    averaged = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True) if ema else None
    if last.exists():
        ck = torch.load(last, weights_only=False)
        net.load_state_dict(ck["raw"] if averaged else ck["model"])
        if averaged:
            averaged.module.load_state_dict(ck["model"])
            averaged.n_averaged.fill_(ck["step"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        step, best, history = ck["step"], ck["best"], ck["history"]
        print(f"resumed at step {step}", flush=True)
    rng = np.random.default_rng(seed + step)  # a resumed run does not replay the same batches

    def save(path: Path):
        tmp = path.with_suffix(".tmp")
        torch.save(
            {
                "model": (averaged.module if averaged else net).state_dict(),
                **({"raw": net.state_dict()} if averaged else {}),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "step": step,
                "best": best,
                "history": history,
                "args": args,
            },
            tmp,
        )
        tmp.replace(path)

    net.train()
    start, seen = time.time(), 0
    while step < steps:
        loss = loss_fn(rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if averaged:
            averaged.update_parameters(net)
        step += 1
        seen += batch
        if step % 20 == 0:
            rate = seen / (time.time() - start)
            print(
                f"step {step}/{steps} loss {loss.item():.4f} lr {sched.get_last_lr()[0]:.2e} "
                f"{rate:.1f} img/s eta {(steps - step) * batch / rate / 60:.1f} min",
                flush=True,
            )
        if step % val_every == 0 or step == steps:
            net.eval()
            with torch.no_grad():
                metrics = validate_average(net, averaged, validate) if averaged else validate()
            net.train()
            history.append({"step": step} | metrics)
            if metrics[score] > best:
                best = metrics[score]
                save(out / "best.pt")
            save(last)
            print("val", json.dumps(history[-1]), flush=True)  # after saving: the checkpoint exists
        elif step % save_every == 0:
            save(last)
    print(f"done; best validation {score} {best:.4f}", flush=True)
    return best


def validate_average(net: torch.nn.Module, averaged: AveragedModel, validate: Callable[[], dict]) -> dict:
    """`validate` (which reads `net`) on the averaged weights, with the raw weights' scores beside as raw_*."""
    raw_scores = validate()
    raw = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(averaged.module.state_dict())
    scores = validate()
    net.load_state_dict(raw)
    return scores | {f"raw_{k}": v for k, v in raw_scores.items()}

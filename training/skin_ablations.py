"""The reference study's ablations of skin generation, re-run here at one short budget, and their table.

    python -m training.skin_ablations run [--steps 300] [--only in1 in2 ...]   # trains runs/skin-ablation-<name>
    python -m training.skin_ablations table                                    # Markdown table of the results

Each run is train_skin with one switch changed from the served configuration (3 inputs, L1 + adversarial,
generator writing only inside the skin mask); the metrics are its last validation (canvas size, labelled
inputs: MSE, PSNR, SSIM), so the runs compare with each other, not with the longer served run.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import torch

RUNS = Path("runs")
ABLATIONS = {  # name → (what it tests, train_skin flags)
    "in1": ("1 input: apparel_head_foot", ["--inputs", "1"]),
    "in2": ("2 inputs: + pose lines", ["--inputs", "2"]),
    "in3": ("3 inputs: + skin mask (served configuration)", ["--inputs", "3"]),
    "l1only": ("3 inputs, L1 only (no adversarial loss)", ["--inputs", "3", "--adv-weight", "0"]),
    "nomask": ("3 inputs, generator writes everywhere", ["--inputs", "3", "--no-mask-output"]),
}


def run(names: list[str], steps: int, threads: int) -> None:
    for name in names:
        cmd = [
            sys.executable,
            "-m",
            "training.train_skin",
            "--out",
            str(RUNS / f"skin-ablation-{name}"),
            "--steps",
            str(steps),
            "--val-every",
            str(steps),
            "--threads",
            str(threads),
            *ABLATIONS[name][1],
        ]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def table() -> str:
    lines = ["| run | configuration | steps | MSE | PSNR dB | SSIM |", "|---|---|---|---|---|---|"]
    for name, (what, _) in ABLATIONS.items():
        path = RUNS / f"skin-ablation-{name}" / "last.pt"
        if not path.exists():
            lines.append(f"| {name} | {what} | not run | | | |")
            continue
        last = torch.load(path, weights_only=False)["history"][-1]
        lines.append(
            f"| {name} | {what} | {last['step']} | {last['mse']:.4f} | {last['psnr']:.2f} | {last['ssim']:.4f} |"
        )
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("run", "table"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="+", choices=list(ABLATIONS), default=list(ABLATIONS))
    args = ap.parse_args()
    if args.action == "run":
        run(args.only, args.steps, args.threads)
    print(table())


if __name__ == "__main__":
    main()

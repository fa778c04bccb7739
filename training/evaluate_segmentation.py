"""Evaluate the exported segmentation model on the fixed validation split, at full photo size,
through exactly the service's pipeline (letterbox → network → post-processing).

    python -m training.evaluate_segmentation --model model_repository/segmentation/1/model.onnx \
        [--dataset fashionista|ccp] [--post none crf minregion superpixels all] [--limit N] [--mirror]

Prints per-class IoU, mean IoU and pixel accuracy for both tasks, and milliseconds per image for
the network and for each post-processing variant. `--model` takes any ONNX file with the served
model's I/O (uint8 `image` in, `person` and `fashion` probabilities out), e.g. another architecture
exported by export.export_segmentation to model_repository/segmentation_unet/1/model.onnx.
Several `--model` files are an ensemble (their probabilities averaged); `--mirror` adds test-time
flipping (each network also sees the mirrored canvas, in the same batch). `--split train` scores the
photos the network was trained on (without augmentation): near the validation score means the network
underfits, and more data of the same kind will not help it.

The report also gives, per variant, the share of person-mask errors lying within 2 px of the labelled
person's outline (`person_errors_at_outline`): outline jitter, against whole regions missed or spilled.

`--framing` (training/framing.py) scores the photos in shop framings (`all`: every framing and the
`shop` mean); `--focus` adds the service's focus pass (a second look at a person who fills little of
the photo, fashionpixel/segmentation.py), which the service runs by default, with the served pose
network locating a small person as the service does (`--no-locate`: without it). `--crops MODEL` adds the
service's crop specialist: a photo that cuts the person (fashionpixel.segmentation.cut_by_frame: the
general network's routing head where it is sure, elsewhere the served pose network) is answered by MODEL
instead; the report counts them. A `--model` file without the head is routed by the pose network alone.
"""

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np

from export.onnxruntime_session import onnx_session
from fashionpixel.labels import FASHION_CLASSES, PERSON_CLASSES
from fashionpixel.models import POSE, SEGMENTATION
from fashionpixel.networks import infer_with
from fashionpixel.refine import CrfParams
from fashionpixel.segmentation import (
    cut_by_frame,
    focus_input,
    focus_look,
    focus_target,
    labels_from_probs,
    prepare,
    second_opinion,
)
from fashionpixel.stages import inline, untimed
from training.datasets import ccp_samples, fashionista_samples, label_maps
from training.framing import SHOP, add_framing_argument, add_split_argument, chosen_framings, framed_photos, shop_mean
from training.metrics import OUTLINE_PX, confusion, near_outline, summarize
from training.served import onnx_network, predict

VARIANTS = {
    "none": dict(crf=False, min_region=0, superpixels=False),
    "crf": dict(crf=True, min_region=0, superpixels=False),
    "minregion": dict(crf=False, min_region=400, superpixels=False),
    "superpixels": dict(crf=False, min_region=0, superpixels=True),
    "crf+minregion": dict(crf=True, min_region=400, superpixels=False),
    "all": dict(crf=True, min_region=400, superpixels=True),
    # the CRF's cost: pixels (it runs on a shrunk copy; the default is 80k) and mean-field iterations,
    # measured on the whole photo (sure=None) before the CRF ran on the unsure box only
    "crf-160k": dict(
        crf=CrfParams(max_pixels=160_000, sure=None), min_region=0, superpixels=False
    ),  # the default until 2026-11
    "crf-40k": dict(crf=CrfParams(max_pixels=40_000, sure=None), min_region=0, superpixels=False),
    "crf-80k-3it": dict(crf=CrfParams(max_pixels=80_000, iterations=3, sure=None), min_region=0, superpixels=False),
    "crf-40k-3it": dict(crf=CrfParams(max_pixels=40_000, iterations=3, sure=None), min_region=0, superpixels=False),
    "crf-whole": dict(crf=CrfParams(sure=None), min_region=0, superpixels=False),  # the default until 2026-11-30
    # the outline snapped to a plain backdrop (fashionpixel.refine.snap_to_backdrop)
    "backdrop": dict(crf=False, min_region=0, superpixels=False, backdrop=True),
    "crf+backdrop": dict(crf=True, min_region=0, superpixels=False, backdrop=True),
}
# the CRF on the box of the pixels the network is unsure of: crf-sure<p>-m<margin>
VARIANTS |= {
    f"crf-sure{p}-m{m}": dict(crf=CrfParams(sure=p, margin=m), min_region=0, superpixels=False)
    for p in (0.8, 0.9, 0.97, 0.99, 0.999)
    for m in (8, 16, 32)
}
VARIANTS |= {
    f"crf-sure0.9-m16-{it}it-{px // 1000}k": dict(
        crf=CrfParams(sure=0.9, margin=16, iterations=it, max_pixels=px), min_region=0, superpixels=False
    )
    for it in (3, 4, 5)
    for px in (60_000, 80_000, 160_000, 240_000)
}
# the CRF's bilateral kernel: crf-b<sxy>-<srgb>-<compat> (the default is crf-b40-12-4)
VARIANTS |= {
    f"crf-b{sxy}-{srgb}-{compat}": dict(
        crf=CrfParams(bilateral_sxy=sxy, bilateral_srgb=srgb, bilateral_compat=compat, sure=None),
        min_region=0,
        superpixels=False,
    )
    for sxy in (20, 40, 60)
    for srgb in (8, 12, 20)
    for compat in (4, 8)
}


def picture(rows: list[tuple], path: Path) -> None:
    """A grid, one row per (photo, truth, prediction, score): the photo, truth and prediction overlays."""
    import cv2

    from fashionpixel.labels import FASHION_PALETTE

    tiles = []
    for image, truth, pred, score in rows:
        row = np.hstack([image, FASHION_PALETTE[truth], FASHION_PALETTE[pred]])
        row = cv2.resize(row, (row.shape[1] * 200 // row.shape[0], 200), interpolation=cv2.INTER_AREA)
        cv2.putText(row, f"mIoU {score:.2f}", (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        tiles.append(row)
    width = max(t.shape[1] for t in tiles)
    grid = np.vstack([np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles])
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def focus_pass(
    sessions: list, image: np.ndarray, probs: dict, box, mirror: bool, locate=None, crops: list | None = None
) -> dict:
    """Per task, the service's focus pass (fashionpixel.segmentation.focus_target): (region, crop
    probabilities, crop box) where the task's foreground is small, else None. `locate`: the pose
    network (an Infer), asked where a small person is as the service asks it; `crops`: the crop
    specialist's sessions, which answer where the service asks it (focus_by_specialist)."""
    out = {}
    for task, p in probs.items():

        async def first_network(canvas, task=task):
            return predict(sessions, canvas, mirror)[task]

        async def specialist(canvas, task=task):
            return predict(crops, canvas, mirror)[task]

        region = asyncio.run(focus_target(image, p, box, pose=locate, cpu=inline, stage=untimed, infer=first_network))
        if region is not None:
            crop, crop_box = focus_input(image, region)
            look = focus_look(crop, p, infer=first_network, infer_crops=specialist if crops else None)
            out[task] = (region, asyncio.run(look)[0], crop_box)
        else:
            out[task] = None
    return out


def route_crops(
    crops: list, image, canvas: np.ndarray, box, probs: dict, mirror: bool, pose, head: float | None
) -> tuple[dict, int]:
    """The service's crop routing per task: (probabilities, how many tasks the specialist answered).
    `head`: the general network's routing head's answer, None for a file without one."""
    routed = [
        task
        for task, p in probs.items()
        if asyncio.run(cut_by_frame(image, p, box, pose=pose, cpu=inline, stage=untimed, head=head))
    ]
    if not routed:
        return probs, 0
    special = predict(crops, canvas, mirror)
    return {task: second_opinion(special[task], p) if task in routed else p for task, p in probs.items()}, len(routed)


def score_photos(
    sessions: list,
    photos,
    variants: list[str],
    mirror: bool = False,
    pictures: Path | None = None,
    focus: bool = False,
    crops: list | None = None,
    pose=None,
    locate: bool = True,
) -> dict:
    """Per-variant person and fashion scores over (photo, {person, fashion} labels) pairs, and ms/image.
    `crops`: the crop specialist's sessions; `pose`: the pose network (routing, and with `locate`
    finding a small person; see the module doc)."""
    cms = {v: {"person": np.zeros((2, 2), np.int64), "fashion": np.zeros((7, 7), np.int64)} for v in variants}
    at_outline = {v: 0 for v in variants}  # wrong person pixels near the labelled outline (all of them: cms)
    ms = {v: 0.0 for v in variants} | {"network": 0.0}
    cases = []  # (fashion mIoU of one photo, photo, truth, prediction) for the pictures
    n = routed = 0
    for image, truth in photos:
        n += 1
        outline = near_outline(truth["person"])
        canvas, box = prepare(image)
        start = time.perf_counter()
        probs = predict(sessions, canvas, mirror)
        head = probs.pop("cut", None)
        if crops:
            probs, tasks = route_crops(
                crops, image, canvas, box, probs, mirror, pose, head=None if head is None else float(head[0])
            )
            routed += tasks
        second = focus_pass(sessions, image, probs, box, mirror, pose if locate else None, crops) if focus else {}
        ms["network"] += (time.perf_counter() - start) * 1000
        for v in variants:
            for task, classes in (("person", 2), ("fashion", 7)):
                start = time.perf_counter()
                labels = labels_from_probs(image, probs[task], box, focus=second.get(task), **VARIANTS[v])
                if task == "fashion":
                    ms[v] += (time.perf_counter() - start) * 1000
                cms[v][task] += confusion(labels, truth[task], classes)
                if task == "person":
                    at_outline[v] += np.count_nonzero((labels != truth[task]) & outline)
                if pictures and task == "fashion" and v == variants[0]:
                    score = summarize(confusion(labels, truth[task], classes), FASHION_CLASSES)["mean_iou"]
                    cases.append((score, image, truth[task], labels))
    if pictures and cases:
        cases.sort(key=lambda c: c[0])
        chosen = cases[-3:][::-1] + cases[:3]
        picture([(img, t, p, sc) for sc, img, t, p in chosen], pictures)

    def person_summary(v: str) -> dict:
        cm = cms[v]["person"]
        wrong = int(cm.sum() - np.trace(cm))
        return summarize(cm, PERSON_CLASSES) | {"person_errors_at_outline": at_outline[v] / max(wrong, 1)}

    return {
        "images": n,
        **({"routed_to_crops": routed / 2 / max(n, 1)} if crops else {}),
        "ms_per_image": {k: round(v / max(n, 1), 1) for k, v in ms.items()},
        "results": {
            v: {"person": person_summary(v), "fashion": summarize(cms[v]["fashion"], FASHION_CLASSES)} for v in variants
        },
    }


def evaluate(
    models: list[Path],
    dataset: str,
    variants: list[str],
    limit: int | None = None,
    threads: int = 2,
    pictures: Path | None = None,
    mirror: bool = False,
    split: str = "val",
    framings: tuple[str, ...] = ("full",),
    focus: bool = False,
    crops: Path | None = None,
    locate: bool = True,
) -> dict:
    """The report of one framing (`full`: the photos as they are) or, with several, one per framing
    under `framings` and their `shop` mean (mean IoU per variant and task over the shop framings)."""
    sessions = [onnx_session(m, threads) for m in models]
    specialist = [onnx_session(crops, threads)] if crops else None
    pose_file = POSE.onnx_path(Path("model_repository"))
    asks_pose = bool(crops) or (focus and locate)  # the pose network routes crops and finds small people
    pose = infer_with(onnx_network({POSE: pose_file}, threads), POSE) if asks_pose else None
    samples = fashionista_samples() if dataset == "fashionista" else ccp_samples()
    samples = [s for s in samples if s.split == split][:limit]
    head = {"dataset": dataset, "split": split, "model": " + ".join(map(str, models)), "mirror": mirror, "focus": focus}
    head |= {"crops": str(crops)} if crops else {}
    head |= {"pose": str(pose_file)} if asks_pose else {}

    per = {}
    for f in framings:
        photos = ((image, labels) for _, image, labels, _ in framed_photos(f, samples, label_maps))
        shots = pictures and (
            pictures if len(framings) == 1 else pictures.with_name(f"{pictures.stem}_{f}{pictures.suffix}")
        )
        per[f] = score_photos(sessions, photos, variants, mirror, shots, focus, specialist, pose, locate)
    if framings == ("full",):
        return head | per["full"]
    shop = {
        v: {
            task: shop_mean({f: r["results"][v][task]["mean_iou"] for f, r in per.items()})
            for task in ("person", "fashion")
        }
        for v in variants
    }
    return head | {"images": len(samples), "framings": per, "shop": shop}


def print_report(report: dict) -> None:
    if "framings" in report:
        for name, part in report["framings"].items():
            print(f"=== framing {name}")
            print_report({k: v for k, v in report.items() if k not in ("framings", "shop")} | part)
        print("=== shop mean (mean IoU over " + ", ".join(f for f in report["framings"] if f in SHOP) + ")")
        for variant, tasks in report["shop"].items():
            print(f"[{variant}] person {tasks['person']:.4f}  fashion {tasks['fashion']:.4f}")
        return
    routed = f", {report['routed_to_crops']:.0%} to the crop specialist" if "routed_to_crops" in report else ""
    print(
        f"{report['dataset']} {report['split']} split, {report['images']} images; "
        f"network {report['ms_per_image']['network']} ms/image{routed}"
    )
    for variant, res in report["results"].items():
        f, p = res["fashion"], res["person"]
        per_class = " ".join(f"{k}={v:.3f}" for k, v in f["iou"].items())
        print(f"[{variant}] ({report['ms_per_image'][variant]} ms post-processing, fashion)")
        print(
            f"  person:  mIoU {p['mean_iou']:.4f}  pixel acc {p['pixel_accuracy']:.4f}"
            f"  errors within {OUTLINE_PX} px of the outline {p['person_errors_at_outline']:.0%}"
        )
        print(f"  fashion: mIoU {f['mean_iou']:.4f}  pixel acc {f['pixel_accuracy']:.4f}  {per_class}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model",
        type=Path,
        nargs="+",
        default=[SEGMENTATION.onnx_path(Path("model_repository"))],
        help="ONNX files with the served model's I/O (any architecture); several = their average",
    )
    ap.add_argument("--mirror", action="store_true", help="test-time flip: average with the mirrored canvas")
    ap.add_argument("--dataset", choices=["fashionista", "ccp"], default="fashionista")
    ap.add_argument("--post", nargs="+", default=["none"], choices=list(VARIANTS))
    add_split_argument(ap)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    add_framing_argument(ap)
    ap.add_argument("--focus", action="store_true", help="the service's focus pass: a second look at a small person")
    ap.add_argument("--no-locate", action="store_true", help="the focus pass without the pose network's help")
    ap.add_argument("--crops", type=Path, help="the crop specialist's ONNX file, routed to as the service does")
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument("--pictures", type=Path, help="write the 3 best and 3 worst photos (fashion) to this PNG")
    args = ap.parse_args()
    report = evaluate(
        args.model,
        args.dataset,
        args.post,
        args.limit,
        args.threads,
        args.pictures,
        args.mirror,
        args.split,
        chosen_framings(args.framing),
        args.focus,
        args.crops,
        not args.no_locate,
    )
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""The research commands in one place: `python -m training <model> <recipe> [arguments]`.

    python -m training                                   # every model's recipes
    python -m training segmentation train                # trains runs/segmentation
    python -m training segmentation evaluate --limit 3   # arguments go after the recipe's own (later wins)
    python -m training -n pose-transfer train            # prints the recipe's commands, runs nothing

A recipe is one or more commands `python -m <module> <arguments>`, run one after another, each in a
process of its own, stopping at the first that fails. RECIPES below holds the exact arguments the
served models and the model cards' numbers were made with (docs/models/*.md): they document how, so
they change only together with a card. Only a recipe whose commands are all of one module takes more
arguments (train, export and evaluate do not share options). Stdlib only, so `make help` can list the
recipes before the venv exists.
"""

import argparse
import shlex
import subprocess
import sys
import textwrap


def screen(name: str, arguments: str) -> list[str]:
    """Issue 3's screens: a short segmentation run, exported outside model_repository/ (Triton would
    load it) and evaluated like the served model."""
    return [
        f"training.train_segmentation --out runs/seg-{name} --steps 400 --val-every 200 {arguments}",
        f"export.export_segmentation --checkpoint runs/seg-{name}/best.pt --name seg_{name} "
        "--repository runs/seg-cmp-repo",
        f"training.evaluate_segmentation --model runs/seg-cmp-repo/seg_{name}/1/model.onnx --post none crf "
        f"--json docs/models/segmentation_{name}.json",
    ]


ARCHITECTURES = ("segnet", "deeplabv3plus", "unet", "u2net")
LOSSES = {"ce": "--loss=ce", "dice": "--loss=dice", "bg1": "--background-weight=1.0"}

RECIPES = {
    "segmentation": {
        "train": ["training.train_segmentation --out runs/segmentation --steps 3200"],
        "export": ["export.export_segmentation --checkpoint runs/segmentation/best.pt"],
        "evaluate": ["training.evaluate_segmentation --model model_repository/segmentation/1/model.onnx"],
        # the architectures, each from scratch
        "compare": [c for arch in ARCHITECTURES for c in screen(f"compare_{arch}", f"--arch {arch}")],
        # the fashion loss on the winner; the ce+dice / background 0.5 baseline is compare's deeplabv3plus run
        "compare-losses": [
            c for name, loss in LOSSES.items() for c in screen(f"loss_{name}", f"--arch deeplabv3plus {loss}")
        ],
        # the DeepLabv3+ run the cutout network starts from (docs/models/cutout.md)
        "train-deeplabv3plus": [
            "training.train_segmentation --out runs/seg-dlv3p --arch deeplabv3plus --steps 3000 "
            "--val-every 500 --person-weight 2"
        ],
        # its full-canvas fine-tune, exported outside model_repository/ for the evaluations and the teacher
        "finetune-deeplabv3plus": [
            "training.train_segmentation --out runs/seg-dlv3p-ft --init runs/seg-dlv3p/best.pt --arch deeplabv3plus "
            "--steps 700 --lr 4e-4 --crop 256 384 --person-weight 2 --val-every 175 --threads 1",
            "export.export_segmentation --checkpoint runs/seg-dlv3p-ft/best.pt --name seg_dlv3p_ft "
            "--repository runs/seg-eval-repo",
        ],
        # self-training (docs/models/segmentation.md): the served SegNet and the fine-tuned DeepLabv3+,
        # with flipping and the CRF, label CCP's unlabelled photos; the DeepLabv3+ then trains on them
        # beside the labelled photos (the control: train-pseudo without --pseudo)
        "pseudo-label": [
            "training.pseudo_label --model model_repository/segmentation/1/model.onnx "
            "runs/seg-eval-repo/seg_dlv3p_ft/1/model.onnx --mirror --out runs/pseudo-ccp"
        ],
        "train-pseudo": [
            "training.train_segmentation --out runs/seg-pseudo --arch deeplabv3plus "
            "--init runs/seg-dlv3p-ft/best.pt --pseudo runs/pseudo-ccp --steps 1400 --lr 4e-4 "
            "--crop 256 384 --person-weight 2 --val-every 350 --threads 1"
        ],
        # issue 20: the served network continued on random shop framings from the served file's own
        # weights (BatchNorms folded and frozen: training/from_onnx.py), one core. Phase 1 was stopped at
        # step 600 (its full score fell); phase 2 mixes in plain full photos. Not served (its card says
        # why); checkpoints/segmentation-shop.pt holds phase 2's best weights to continue from.
        "train-shop": [
            "training.train_segmentation --out runs/seg-shop --init model_repository/segmentation/1/model.onnx "
            "--augment shop --steps 2200 --lr 3e-4 --val-every 550 --threads 1",
            "training.train_segmentation --out runs/seg-shop2 --init runs/seg-shop/last.pt "
            "--augment shop --steps 1500 --lr 2e-4 --val-every 500 --threads 1",
        ],
        # issue 20, second session: MediaPipe's soft person masks as a teacher against a control with as
        # many photos per step, both from checkpoints/segmentation-shop.pt (the card's table; neither served)
        "train-shop-teacher": [
            "training.pseudo_label --task person-teacher --out runs/teacher-ccp",
            "training.train_segmentation --out runs/seg-teacher --init checkpoints/segmentation-shop.pt "
            "--augment shop --steps 1000 --lr 2e-4 --val-every 250 --threads 1 --teacher runs/teacher-ccp "
            "--teacher-batch 4",
            "training.train_segmentation --out runs/seg-control --init checkpoints/segmentation-shop.pt "
            "--augment shop --steps 1000 --lr 2e-4 --val-every 250 --threads 1 --batch 12",
        ],
        # WiSE-FT: half the served weights, half the control's, exported beside the served model
        "average-shop": [
            "training.weight_average --tuned runs/seg-control/best.pt --alpha 0.5 --out runs/seg-wise/control-a50.pt",
            "export.export_segmentation --checkpoint runs/seg-wise/control-a50.pt --name seg_control_a50 "
            "--repository runs/seg-cmp",
        ],
        # issue 20, 2026-11-30: the crop specialist (model_repository/segmentation_crops), from the control
        "train-crops": [
            "training.train_segmentation --out runs/seg-crops --init checkpoints/segmentation-shop.pt --augment crops "
            "--steps 1200 --lr 3e-4 --val-every 300 --threads 1 --batch 12",
            "export.export_segmentation --checkpoint runs/seg-crops/best.pt --name segmentation_crops",
        ],
        # the crop specialist served since the afternoon of 2026-11-30: train-crops' run continued
        "train-crops-continued": [
            "training.train_segmentation --out runs/seg-crops2 --init checkpoints/segmentation-crops.pt "
            "--augment crops --steps 1600 --lr 2e-4 --val-every 400 --threads 1 --batch 12",
            "export.export_segmentation --checkpoint runs/seg-crops2/best.pt --name segmentation_crops",
        ],
        # served since the evening of 2026-11-30: train-crops-continued's weights, 1600 steps more with
        # MediaPipe's person masks on CCP's unlabelled photos (training.pseudo_label --task person-teacher)
        "train-crops-teacher": [
            "training.pseudo_label --task person-teacher --out runs/teacher-ccp",
            "training.train_segmentation --out runs/seg-crops3 --init checkpoints/segmentation-crops.pt "
            "--augment crops --steps 1600 --lr 2e-4 --val-every 400 --threads 1 --batch 8 "
            "--teacher runs/teacher-ccp --teacher-batch 4",
            "export.export_segmentation --checkpoint runs/seg-crops3/best.pt --name segmentation_crops",
        ],
        "evaluate-crops": [
            "training.evaluate_segmentation --crops model_repository/segmentation_crops/1/model.onnx --framing all "
            "--post none crf --focus --json docs/models/segmentation_framings_crops.json"
        ],
        # issue 23: the general network's routing head, fitted to the pose network's answers and written into
        # the served file (docs/models/segmentation_routing.md); re-run after exporting the general network,
        # then the quality fit; the second command scores the served pipeline with it
        "fit-routing": [
            "training.fit_routing --threads 2",
            "training.evaluate_segmentation --crops model_repository/segmentation_crops/1/model.onnx --framing all "
            "--post crf+backdrop --focus --threads 1 --json docs/models/segmentation_framings_routing_head.json",
        ],
        # every framing (training/framing.py) and the shop mean
        "evaluate-framings": [
            "training.evaluate_segmentation --framing all --post none crf --focus "
            "--json docs/models/segmentation_framings.json",
            "training.evaluate_segmentation --framing all --post none crf --dataset ccp "
            "--json docs/models/segmentation_framings_ccp.json",
        ],
    },
    "cutout": {
        "train": [
            "training.train_cutout --out runs/cutout --arch deeplabv3plus --init runs/seg-dlv3p/best.pt "
            "--steps 900 --lr 1e-3 --val-every 150"
        ],
        "export": ["export.export_cutout --checkpoint runs/cutout/best.pt"],
        "evaluate": [
            "training.evaluate_cutout --model model_repository/cutout/1/model.onnx "
            "--json docs/models/cutout_validation.json"
        ],
        # issue 20: the served network since 2026-11-29 (phase 1 stopped at step 500, as above)
        "train-shop": [
            "training.train_cutout --out runs/cutout-shop --init model_repository/cutout/1/model.onnx "
            "--arch deeplabv3plus --augment shop --steps 2000 --lr 3e-4 --val-every 500 --threads 1",
            "training.train_cutout --out runs/cutout-shop2 --init runs/cutout-shop/last.pt "
            "--arch deeplabv3plus --augment shop --steps 1400 --lr 2e-4 --val-every 350 --threads 1",
            "export.export_cutout --checkpoint runs/cutout-shop2/best.pt",
        ],
        "evaluate-framings": [
            "training.evaluate_cutout --framing all --variants first+guided focus+guided "
            "--json docs/models/cutout_framings.json"
        ],
    },
    "skin": {
        "train": ["training.train_skin --out runs/skin --steps 1500 --val-every 250"],
        "export": ["export.export_skin --checkpoint runs/skin/best.pt"],
        "evaluate": ["training.evaluate_skin --json docs/models/skin_validation.json"],
        "ablate": ["training.skin_ablations run --steps 300"],
    },
    "pose": {
        "train": ["training.train_pose --out runs/pose --steps 2400"],
        "export": ["export.export_pose --checkpoint runs/pose/best.pt"],
        "evaluate": ["training.evaluate_pose --model model_repository/pose/1/model.onnx"],
        # issue 20: the served network since 2026-11-29, continued from the file served before it
        # (`--init` reads whatever is served now: re-running continues from the current weights)
        "train-shop": [
            "training.train_pose --out runs/pose-shop --init model_repository/pose/1/model.onnx "
            "--augment shop --steps 1400 --batch 16 --lr 5e-4 --val-every 350 --threads 1",
            "export.export_pose --checkpoint runs/pose-shop/best.pt",
        ],
        # the served file since the evening of 2026-11-29: train-shop's network continued twice more
        "train-shop-continued": [
            "training.train_pose --out runs/pose-shop2 --init model_repository/pose/1/model.onnx "
            "--augment shop --steps 1600 --batch 16 --lr 4e-4 --val-every 400 --threads 1",
            "export.export_pose --checkpoint runs/pose-shop2/best.pt --repository runs/pose-cmp",
            "training.train_pose --out runs/pose-shop3 --init runs/pose-cmp/pose/1/model.onnx "
            "--augment shop --steps 1200 --batch 16 --lr 3e-4 --val-every 400 --threads 1",
            "export.export_pose --checkpoint runs/pose-shop3/best.pt",
        ],
        "evaluate-framings": ["training.evaluate_pose --framing all --json docs/models/pose_framings.json"],
        # issue 20, 2026-11-30: the crop specialist (model_repository/pose_crops), from a fourth shop run
        # of the served file (not served itself: docs/models/pose.md)
        "train-crops": [
            "training.train_pose --out runs/pose-shop4 --init model_repository/pose/1/model.onnx "
            "--augment shop --steps 1200 --batch 16 --lr 3e-4 --val-every 400 --threads 1",
            "export.export_pose --checkpoint runs/pose-shop4/best.pt --repository runs/pose-cmp4",
            "training.train_pose --out runs/pose-crops --init runs/pose-cmp4/pose/1/model.onnx "
            "--augment crops --steps 2000 --batch 16 --lr 3e-4 --val-every 500 --threads 1",
            "export.export_pose --checkpoint runs/pose-crops/best.pt --name pose_crops",
        ],
        "evaluate-crops": [
            "training.evaluate_pose --framing all --crops model_repository/pose_crops/1/model.onnx "
            "--json docs/models/pose_framings_crops.json"
        ],
    },
    "pose_transfer": {
        # four stages, each from the last one's best; the fourth was served until train-copy's fine-tunes of it
        "train": [
            "training.train_pose_transfer --out runs/pose-transfer --steps 1400",
            "training.train_pose_transfer --out runs/pose-transfer-ssim --init runs/pose-transfer/best.pt "
            "--steps 1000 --lr 1e-4 --ssim-weight 30",
            "training.train_pose_transfer --out runs/pose-transfer-ssim3 --init runs/pose-transfer-ssim/best.pt "
            "--steps 900 --lr 1e-4 --ssim-weight 100",
            "training.train_pose_transfer --out runs/pose-transfer-ssim4 --init runs/pose-transfer-ssim3/best.pt "
            "--steps 1100 --lr 1e-4 --ssim-weight 300 --adv-weight 0.5",
        ],
        # stage 4 (runs/pose-transfer-ssim4/best.pt) was served until issue 25's second fine-tune replaced it; that
        # one until its continuation (train-continued, 2026-12-01); that one until the anchored colour runs' mix
        # (train-anchored-mix, 2026-12-02)
        "export": ["export.export_pose_transfer --checkpoint runs/pt-anchored-mix/served.pt"],
        "evaluate": [
            "training.evaluate_pose_transfer --json docs/models/pose_transfer_validation.json "
            "--pictures docs/models/img/pose_transfer_examples.png"
        ],
        # issue 25: the second fine-tune's recipe continued 600 steps from its fp16 weights (served since 2026-12-01),
        # and beside it the same with the gate's agreement loosened and weighted up (not served). Both started from the
        # second fine-tune's weights, which checkpoints/pose-transfer.pt held until then (git show
        # 716de27:checkpoints/pose-transfer.pt); it now holds the continuation's, to go on from
        "train-continued": [
            "training.train_pose_transfer --out runs/pose-transfer-continued --init checkpoints/pose-transfer.pt "
            "--steps 600 --val-every 200 --threads 1 --lr 5e-5 --ssim-weight 150 --adv-weight 0.5 --gate-weight 10 "
            "--texture-weight 50 --feature-weight 10",
        ],
        "train-gate25": [
            "training.train_pose_transfer --out runs/pose-transfer-gate25 --init checkpoints/pose-transfer.pt "
            "--steps 600 --val-every 200 --threads 2 --lr 5e-5 --ssim-weight 150 --adv-weight 0.5 --gate-weight 30 "
            "--gate-tolerance 0.25 --texture-weight 50 --feature-weight 10",
        ],
        # issue 25, 2026-12-01 (not served): the continuation's recipe plus 4 pairs across people a step whose garments'
        # mean colour the painted head must keep (--cross-colour-weight 300); its fp16 weights are
        # checkpoints/pose-transfer-colour.pt. The session's run started from the fp32 weights of which
        # checkpoints/pose-transfer.pt is the fp16 copy. Then the served weights averaged with it (a fifth or a quarter)
        "train-cross-colour": [
            "training.train_pose_transfer --out runs/pt-paint300 --init checkpoints/pose-transfer.pt "
            "--steps 600 --val-every 200 --threads 1 --lr 5e-5 --ssim-weight 150 --adv-weight 0.5 --gate-weight 10 "
            "--texture-weight 50 --feature-weight 10 --cross-colour-weight 300",
        ],
        # issue 25, 2026-12-01 evening (not served): the same with the paint's detail and the gate held to the served
        # generator's (--anchor-weight 300) against the same recipe without it, 100 steps each (this machine: 0.5 img/s)
        "train-anchored-colour": [
            "training.train_pose_transfer --out runs/pt-anchor300 --init checkpoints/pose-transfer.pt "
            "--steps 100 --val-every 100 --threads 1 --lr 5e-5 --ssim-weight 150 --adv-weight 0.5 --gate-weight 10 "
            "--texture-weight 50 --feature-weight 10 --cross-colour-weight 300 --anchor-weight 300",
            "training.train_pose_transfer --out runs/pt-colour100 --init checkpoints/pose-transfer.pt "
            "--steps 100 --val-every 100 --threads 1 --lr 5e-5 --ssim-weight 150 --adv-weight 0.5 --gate-weight 10 "
            "--texture-weight 50 --feature-weight 10 --cross-colour-weight 300",
            "export.export_pose_transfer --checkpoint runs/pt-anchor300/last.pt --repository runs/pt-anchor300/repo",
            "training.evaluate_cross_person --pairs 80 --threads 1 --no-source-crf --model runs/pt-anchor300/repo/pose_transfer/1/model.onnx "
            "--json docs/models/pose_transfer_cross_person_anchor.json",
            "training.evaluate_pose_transfer --threads 1 --no-source-crf --model runs/pt-anchor300/repo/pose_transfer/1/model.onnx "
            "--json docs/models/pose_transfer_validation_anchor.json",
        ],
        # issue 25, 2026-12-02 (served since): the anchored colour run with the colour loss doubled (x 600), 100 steps,
        # twice (SSIM x 150 and x 300); the two averaged, then 0.7 of that with 0.3 of the weights it started from
        # (checkpoints/pose-transfer.pt, served until then). The served weights' fp16 copy is
        # checkpoints/pose-transfer-anchored.pt. The card's other runs of that session are these commands with
        # --steps, --seed, --anchor-weight or --cross-colour-weight changed
        "train-anchored-mix": [
            f"training.train_pose_transfer --out runs/{out} --init checkpoints/pose-transfer.pt "
            f"--steps 100 --val-every 100 --threads 1 --lr 5e-5 --ssim-weight {ssim} --adv-weight 0.5 --gate-weight 10 "
            "--texture-weight 50 --feature-weight 10 --cross-colour-weight 600 --anchor-weight 300"
            for out, ssim in (("pt-anchored-c600", 150), ("pt-anchored-c600-ssim300", 300))
        ]
        + [
            "training.weight_average --base runs/pt-anchored-c600/last.pt --tuned runs/pt-anchored-c600-ssim300/last.pt "
            "--alpha 0.5 --out runs/pt-anchored-mix/both.pt",
            "training.weight_average --base checkpoints/pose-transfer.pt --tuned runs/pt-anchored-mix/both.pt "
            "--alpha 0.7 --out runs/pt-anchored-mix/served.pt",
            "export.export_pose_transfer --checkpoint runs/pt-anchored-mix/served.pt",
            "training.evaluate_cross_person --pairs 80 --threads 1 --no-source-crf "
            "--json docs/models/pose_transfer_cross_person_anchored_mix.json "
            "--sheet docs/models/img/pose_transfer_cross_person_anchored_mix.jpg",
            "training.evaluate_pose_transfer --threads 1 --no-source-crf --json docs/models/pose_transfer_validation_anchored_mix.json",
            "training.evaluate_pose_transfer --threads 1 --no-source-crf --framing all --limit 20 "
            "--json docs/models/pose_transfer_framings_anchored_mix.json",
        ],
        "average-cross-colour": [
            "training.weight_average --base checkpoints/pose-transfer.pt --tuned checkpoints/pose-transfer-colour.pt "
            "--alpha 0.2 --out runs/pt-mix/a0.2.pt",
            "export.export_pose_transfer --checkpoint runs/pt-mix/a0.2.pt --repository runs/pt-mix/repo0.2",
            "training.evaluate_cross_person --pairs 80 --threads 1 --no-source-crf --model runs/pt-mix/repo0.2/pose_transfer/1/model.onnx "
            "--json docs/models/pose_transfer_cross_person_colour_loss_mix20.json",
            "training.evaluate_pose_transfer --threads 1 --no-source-crf --model runs/pt-mix/repo0.2/pose_transfer/1/model.onnx "
            "--json docs/models/pose_transfer_validation_colour_loss_mix20.json",
        ],
        # issue 25: person A's photo in person B's pose, 80 validation pairs, as served (the source's outline refined,
        # its limbs kept; the same with --no-source-crf: ..._anchored_mix.json; the canvas result:
        # pose_transfer_cross_person.json; stage 4's: ..._stage4.json), the mirror pose, the shop framings, and
        # the 37 pairs no setting was chosen on, paired garment by garment with stage 4
        "evaluate-cross-person": [
            "training.evaluate_cross_person --pairs 80 --threads 1 "
            "--json docs/models/pose_transfer_cross_person_limbs.json "
            "--sheet docs/models/img/pose_transfer_cross_person_limbs.jpg",
            "training.evaluate_pose_transfer --threads 1 --json docs/models/pose_transfer_validation_limbs.json",
            "training.evaluate_pose_transfer --threads 1 --framing all --limit 20 "
            "--json docs/models/pose_transfer_framings_limbs.json",
            "training.evaluate_cross_person --skip 80 --pairs 37 --threads 1 "
            "--json docs/models/pose_transfer_cross_person_fresh_limbs.json",
            "training.evaluate_cross_person --compare docs/models/pose_transfer_cross_person_fresh_stage4.json "
            "docs/models/pose_transfer_cross_person_fresh_limbs.json",
        ],
        # issue 25's composition against its control, the same network's canvas result enlarged (--canvas), both
        # without the colour correction; the variants of the card's table are the same commands with --threshold,
        # --colour-sigma, --fill, --binary
        "evaluate-composition": [
            "training.evaluate_cross_person --pairs 80 --threads 1 --canvas "
            "--json docs/models/pose_transfer_cross_person_canvas.json",
            "training.evaluate_pose_transfer --threads 1 --no-source-crf --colour-match 0 --skirt off "
            "--json docs/models/pose_transfer_validation_highres.json",
            "training.evaluate_pose_transfer --threads 1 --canvas --json docs/models/pose_transfer_validation_canvas.json",
        ],
        # issue 25's per-garment colour correction (served) against its control, the composition without it
        # (--colour-match 0); the variants of the card's table are the same commands with --match-pixels,
        # --match-std, --match-lightness, --match-parts
        "evaluate-colour-match": [
            "training.evaluate_cross_person --pairs 80 --threads 1 --no-source-crf --colour-match 0 --skirt off "
            "--json docs/models/pose_transfer_cross_person_highres.json "
            "--sheet docs/models/img/pose_transfer_cross_person_highres.jpg",
            "training.evaluate_pose_transfer --threads 1 --no-source-crf --skirt off "
            "--json docs/models/pose_transfer_validation_colour.json",
        ],
        # issue 25's garment-aware part ownership (served) against its control, the served pipeline without it
        # (--skirt off); the variants of the card's table are the same commands with --skirt, --skirt-parts,
        # --skirt-to, --no-skirt-canvas
        "evaluate-skirt": [
            "training.evaluate_cross_person --pairs 80 --threads 1 --no-source-crf --skirt off "
            "--json docs/models/pose_transfer_cross_person_colour.json "
            "--sheet docs/models/img/pose_transfer_cross_person_colour.jpg",
            "training.evaluate_pose_transfer --threads 1 --no-source-crf --json docs/models/pose_transfer_validation_skirt.json",
        ],
        # issue 25's local colour goal (not served): the variant closest to serving against the served control, across
        # people and end to end; the card's other variants are the same commands with --match-sigma, --match-tolerance,
        # --match-lightness
        "evaluate-local-colour": [
            "training.evaluate_cross_person --pairs 80 --threads 1 --no-source-crf --match-sigma 8 --match-lightness 0 --match-tolerance 10 "
            "--json docs/models/pose_transfer_cross_person_local.json",
            "training.evaluate_pose_transfer --threads 1 --no-source-crf --match-sigma 8 --match-lightness 0 --match-tolerance 10 "
            "--json docs/models/pose_transfer_validation_local.json",
        ],
        # issue 25's fine-tunes (served since 2026-11-30: the second): from the stage-4 ONNX file (MD5 cf41abff…,
        # then in model_repository) with the gate, texture and feature-matching losses and SSIM × 50, then SSIM × 150
        # to bring the mirror pose back; continue with --init checkpoints/pose-transfer.pt
        "train-copy": [
            "training.train_pose_transfer --out runs/pose-transfer-copy --init model_repository/pose_transfer/1/model.onnx "
            "--steps 1300 --threads 1 --lr 1e-4 --ssim-weight 50 --adv-weight 0.5 --gate-weight 10 --texture-weight 50 "
            "--feature-weight 10",
            "training.train_pose_transfer --out runs/pose-transfer-copy2 --init runs/pose-transfer-copy/last.pt "
            "--steps 300 --val-every 150 --threads 1 --lr 5e-5 --ssim-weight 150 --adv-weight 0.5 --gate-weight 10 "
            "--texture-weight 50 --feature-weight 10",
        ],
        # the fine-tunes outside model_repository/, evaluated like the served model (the first is not served)
        "export-copy": [
            "export.export_pose_transfer --checkpoint runs/pose-transfer-copy/last.pt --repository runs/pose-transfer-copy-repo",
            "export.export_pose_transfer --checkpoint runs/pose-transfer-copy2/last.pt "
            "--repository runs/pose-transfer-copy2-repo",
        ],
        "evaluate-copy": [
            "training.evaluate_cross_person --pairs 80 --threads 1 --no-source-crf "
            "--model runs/pose-transfer-copy-repo/pose_transfer/1/model.onnx "
            "--json docs/models/pose_transfer_cross_person_copy.json --sheet docs/models/img/pose_transfer_cross_person_copy.jpg",
            "training.evaluate_pose_transfer --threads 1 --no-source-crf --model runs/pose-transfer-copy-repo/pose_transfer/1/model.onnx "
            "--json docs/models/pose_transfer_validation_copy.json",
            "training.evaluate_pose_transfer --threads 1 --no-source-crf --model runs/pose-transfer-copy2-repo/pose_transfer/1/model.onnx "
            "--json docs/models/pose_transfer_validation_copy2.json",
        ],
    },
    # issue 22: the quality models and review thresholds over the served segmentation, cutout and pose
    # files (fashionpixel/quality_coefficients.json, docs/models/quality.md); re-run when one changes
    "quality": {"fit": ["training.fit_quality --threads 1"]},
}


def commands(model: str, recipe: str, extra: list[str]) -> list[list[str]]:
    """The recipe's commands as argument lists, `extra` appended to each."""
    steps = [shlex.split(c) for c in RECIPES[model][recipe]]
    if extra and len({s[0] for s in steps}) > 1:
        raise SystemExit(f"{model} {recipe} runs several modules; run them one by one to add arguments")
    return [[sys.executable, "-m", *s, *extra] for s in steps]


def listing() -> str:
    rows = [
        textwrap.fill(
            " ".join(recipes),
            100,
            initial_indent=f"  {model.replace('_', '-'):<15}",
            subsequent_indent=" " * 17,
            break_on_hyphens=False,
        )
        for model, recipes in RECIPES.items()
    ]
    return "models and their recipes (-n prints a recipe's commands):\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m training",
        description=__doc__,
        epilog=listing(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-n", "--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("model", nargs="?", help="segmentation, cutout, skin, pose, pose-transfer or quality")
    ap.add_argument("recipe", nargs="?")
    ap.add_argument("arguments", nargs=argparse.REMAINDER, help="appended to the recipe's command")
    args = ap.parse_args(argv)
    model = (args.model or "").replace("-", "_")
    if model not in RECIPES or args.recipe not in RECIPES[model]:
        print(listing())
        raise SystemExit(0 if args.model is None else f"no recipe {args.model} {args.recipe}")
    for command in commands(model, args.recipe, args.arguments):
        print("+ python -m " + shlex.join(command[2:]), flush=True)
        if not args.dry_run and (code := subprocess.run(command).returncode):
            raise SystemExit(code)


if __name__ == "__main__":
    main()

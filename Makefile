# Fashion Pixel. `make up` runs the product; `make test` runs every test. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help setup system-deps test-deps up test test-fast lock train-segmentation export-segmentation train-pose export-pose evaluate-pose \
        evaluate-segmentation compare-segmentation compare-segmentation-losses train-segmentation-deeplabv3plus finetune-segmentation-deeplabv3plus pseudo-label train-segmentation-pseudo train-cutout export-cutout evaluate-cutout train-skin export-skin evaluate-skin ablate-skin \
        train-pose-transfer export-pose-transfer evaluate-pose-transfer bench bench-tune bench-rembg clean

help:
	@echo "make up      start Triton (CPU) and the services; Ctrl-C stops them"
	@echo "make test    run the whole test suite"
	@echo "make train-<model> / export-<model> / evaluate-<model>   model: segmentation, cutout, skin, pose, pose-transfer"
	@echo "make bench  latency/throughput table → docs/benchmarks.md; make bench-tune: the tuning sweep → docs/tuning.md"

$(STAMP): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -r requirements.lock
	@# pymatting's numba functions compile at import when their cache is cold: ~1 min and ~300 MB the
	@# cutout service would keep. Compile them once here, into the venv's cache.
	$(PY) -c "import pymatting"
	touch $(STAMP)

setup: $(STAMP)

# Debian packages, installed when missing. Running: jemalloc, the allocator Triton runs with (returns
# freed memory, so Triton's memory stays flat under load; runtime/triton.py). Testing: docker-compose
# validates the compose file without an engine; chromium is the browser the demo-page test drives
# (Playwright's own browser download is not used).
RUN_DEBS := libjemalloc2
TEST_DEBS := docker-compose chromium
apt_install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

system-deps:
	@$(call apt_install,$(RUN_DEBS))

test-deps:
	@$(call apt_install,$(RUN_DEBS) $(TEST_DEBS))

up: setup system-deps
	$(PY) -m runtime.stack

test: setup test-deps
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

lock: setup
	$(PY) -m pip freeze | sed 's/+cpu//' > requirements.lock

train-segmentation: setup
	$(PY) -m training.train_segmentation --out runs/segmentation --steps 3200

export-segmentation: setup
	$(PY) -m export.export_segmentation --checkpoint runs/segmentation/best.pt

evaluate-segmentation: setup
	$(PY) -m training.evaluate_segmentation --model model_repository/segmentation/1/model.onnx

# Issue 3's screens, one recipe per run: train run $$n with $$args for the screen's short budget, export
# it outside model_repository/ (Triton would load it) and evaluate it like the served model.
COMPARE_STEPS := 400
SCREEN_RUN = $(PY) -m training.train_segmentation --out runs/seg-$$n --steps $(COMPARE_STEPS) --val-every 200 $$args && \
	  $(PY) -m export.export_segmentation --checkpoint runs/seg-$$n/best.pt --name seg_$$n --repository runs/seg-cmp-repo && \
	  $(PY) -m training.evaluate_segmentation --model runs/seg-cmp-repo/seg_$$n/1/model.onnx --post none crf \
	    --json docs/models/segmentation_$$n.json

# The architectures, each from scratch.
COMPARE_ARCHS := segnet deeplabv3plus unet u2net
compare-segmentation: setup
	for a in $(COMPARE_ARCHS); do n=compare_$$a args="--arch $$a"; $(SCREEN_RUN) || exit 1; done

# The fashion loss on the winner; the ce+dice / background 0.5 baseline is compare-segmentation's
# deeplabv3plus run. Each entry is name:extra-arguments.
LOSS_RUNS := ce:--loss=ce dice:--loss=dice bg1:--background-weight=1.0
compare-segmentation-losses: setup
	for r in $(LOSS_RUNS); do n=loss_$${r%%:*} args="--arch deeplabv3plus $${r#*:}"; $(SCREEN_RUN) || exit 1; done

# The cutout network is a DeepLabv3+ that starts from this segmentation run's weights (docs/models/cutout.md).
train-segmentation-deeplabv3plus: setup
	$(PY) -m training.train_segmentation --out runs/seg-dlv3p --arch deeplabv3plus --steps 3000 --val-every 500 --person-weight 2

# Its full-canvas fine-tune, exported outside model_repository/ for the evaluations and the teacher below.
finetune-segmentation-deeplabv3plus: setup
	$(PY) -m training.train_segmentation --out runs/seg-dlv3p-ft --init runs/seg-dlv3p/best.pt --arch deeplabv3plus \
	  --steps 700 --lr 4e-4 --crop 256 384 --person-weight 2 --val-every 175 --threads 1
	$(PY) -m export.export_segmentation --checkpoint runs/seg-dlv3p-ft/best.pt --name seg_dlv3p_ft --repository runs/seg-eval-repo

# Self-training (docs/models/segmentation.md): the ensemble of the served SegNet and the fine-tuned
# DeepLabv3+, with flipping and the CRF, labels CCP's 1094 unlabelled photos; the DeepLabv3+ then
# trains on them beside the labelled photos. The control is the same command without --pseudo.
pseudo-label: setup
	$(PY) -m training.pseudo_label --model model_repository/segmentation/1/model.onnx runs/seg-eval-repo/seg_dlv3p_ft/1/model.onnx \
	  --mirror --out runs/pseudo-ccp

train-segmentation-pseudo: setup
	$(PY) -m training.train_segmentation --out runs/seg-pseudo --arch deeplabv3plus --init runs/seg-dlv3p-ft/best.pt \
	  --pseudo runs/pseudo-ccp --steps 1400 --lr 4e-4 --crop 256 384 --person-weight 2 --val-every 350 --threads 1

train-cutout: setup
	$(PY) -m training.train_cutout --out runs/cutout --arch deeplabv3plus --init runs/seg-dlv3p/best.pt --steps 900 --lr 1e-3 --val-every 150

export-cutout: setup
	$(PY) -m export.export_cutout --checkpoint runs/cutout/best.pt

evaluate-cutout: setup
	$(PY) -m training.evaluate_cutout --model model_repository/cutout/1/model.onnx --json docs/models/cutout_validation.json

train-skin: setup
	$(PY) -m training.train_skin --out runs/skin --steps 1500 --val-every 250

export-skin: setup
	$(PY) -m export.export_skin --checkpoint runs/skin/best.pt

evaluate-skin: setup
	$(PY) -m training.evaluate_skin --json docs/models/skin_validation.json

ablate-skin: setup
	$(PY) -m training.skin_ablations run --steps 300

clean:
	rm -rf $(VENV) .venv-rembg .cache test-artifacts

train-pose: setup
	$(PY) -m training.train_pose --out runs/pose --steps 2400

export-pose: setup
	$(PY) -m export.export_pose --checkpoint runs/pose/best.pt

evaluate-pose: setup
	$(PY) -m training.evaluate_pose --model model_repository/pose/1/model.onnx

train-pose-transfer: setup
	$(PY) -m training.train_pose_transfer --out runs/pose-transfer --steps 1400
	$(PY) -m training.train_pose_transfer --out runs/pose-transfer-ssim --init runs/pose-transfer/best.pt \
	  --steps 1000 --lr 1e-4 --ssim-weight 30
	$(PY) -m training.train_pose_transfer --out runs/pose-transfer-ssim3 --init runs/pose-transfer-ssim/best.pt \
	  --steps 900 --lr 1e-4 --ssim-weight 100
	$(PY) -m training.train_pose_transfer --out runs/pose-transfer-ssim4 --init runs/pose-transfer-ssim3/best.pt \
	  --steps 1100 --lr 1e-4 --ssim-weight 300 --adv-weight 0.5

export-pose-transfer: setup
	$(PY) -m export.export_pose_transfer --checkpoint runs/pose-transfer-ssim4/best.pt

evaluate-pose-transfer: setup
	$(PY) -m training.evaluate_pose_transfer --json docs/models/pose_transfer_validation.json \
	  --pictures docs/models/img/pose_transfer_examples.png

bench: setup system-deps
	$(PY) -m bench.run

# rembg's HTTP server needs numpy 2, so it lives in a venv of its own, pinned by bench/requirements-rembg.lock.
.venv-rembg/.installed: bench/requirements-rembg.lock
	$(PYTHON) -m venv .venv-rembg
	.venv-rembg/bin/pip install --quiet -r bench/requirements-rembg.lock
	touch $@

bench-tune: setup system-deps
	$(PY) -m bench.tune

bench-rembg: setup .venv-rembg/.installed
	$(PY) -m bench.rembg_compare

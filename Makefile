# Fashion Pixel. `make up` runs the product; `make test` runs every test. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help setup system-deps test-deps up test test-fast lint lock bench bench-big bench-tune bench-rembg bench-anatomy teacher-venv clean

help:
	@echo "make up         start Triton (CPU) and the services; Ctrl-C stops them"
	@echo "make test       lint, then the whole test suite (make test-fast: without the slow tests)"
	@echo "make lint       ruff check + ruff format --check (settings: pyproject.toml)"
	@echo "make bench      latency/throughput table → docs/benchmarks.md; make bench-tune: the tuning sweep → docs/tuning.md"
	@echo "make bench-big  a 3000×4500 photo through cutout and skin: p50, stages, bytes (docs/benchmarks.md, Big photos)"
	@echo "make bench-anatomy  where a request's time goes beyond the network: Triton's trip, each service thread's CPU"
	@echo
	@echo "Training, export, evaluation: .venv/bin/python -m training <model> <recipe> [arguments]"
	@echo "  (the older make names still work: make train-pose, make evaluate-framings, ...)"
	@$(PYTHON) -m training

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

# The teacher venv is built too: tests/test_teacher.py runs MediaPipe's reference model.
test: setup lint test-deps teacher-venv
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

lock: setup
	$(PY) -m pip freeze | sed 's/+cpu//' > requirements.lock

# The research commands are `python -m training <model> <recipe> [arguments]`: training/__main__.py
# holds every recipe's arguments (`python -m training -n <model> <recipe>` prints its commands). These
# targets are their older make names.
RESEARCH := train-segmentation export-segmentation evaluate-segmentation compare-segmentation \
   compare-segmentation-losses train-segmentation-deeplabv3plus finetune-segmentation-deeplabv3plus \
   pseudo-label train-segmentation-pseudo train-segmentation-shop train-cutout export-cutout evaluate-cutout \
   train-cutout-shop train-skin export-skin evaluate-skin ablate-skin train-pose export-pose evaluate-pose \
   train-pose-shop train-pose-transfer export-pose-transfer evaluate-pose-transfer evaluate-framings
.PHONY: $(RESEARCH)
$(RESEARCH): setup
train-segmentation:                  ; $(PY) -m training segmentation train
export-segmentation:                 ; $(PY) -m training segmentation export
evaluate-segmentation:               ; $(PY) -m training segmentation evaluate
compare-segmentation:                ; $(PY) -m training segmentation compare
compare-segmentation-losses:         ; $(PY) -m training segmentation compare-losses
train-segmentation-deeplabv3plus:    ; $(PY) -m training segmentation train-deeplabv3plus
finetune-segmentation-deeplabv3plus: ; $(PY) -m training segmentation finetune-deeplabv3plus
pseudo-label:                        ; $(PY) -m training segmentation pseudo-label
train-segmentation-pseudo:           ; $(PY) -m training segmentation train-pseudo
train-segmentation-shop:             ; $(PY) -m training segmentation train-shop
train-cutout:                        ; $(PY) -m training cutout train
export-cutout:                       ; $(PY) -m training cutout export
evaluate-cutout:                     ; $(PY) -m training cutout evaluate
train-cutout-shop:                   ; $(PY) -m training cutout train-shop
train-skin:                          ; $(PY) -m training skin train
export-skin:                         ; $(PY) -m training skin export
evaluate-skin:                       ; $(PY) -m training skin evaluate
ablate-skin:                         ; $(PY) -m training skin ablate
train-pose:                          ; $(PY) -m training pose train
export-pose:                         ; $(PY) -m training pose export
evaluate-pose:                       ; $(PY) -m training pose evaluate
train-pose-shop:                     ; $(PY) -m training pose train-shop
train-pose-transfer:                 ; $(PY) -m training pose-transfer train
export-pose-transfer:                ; $(PY) -m training pose-transfer export
evaluate-pose-transfer:              ; $(PY) -m training pose-transfer evaluate
evaluate-framings:                   ; for m in segmentation cutout pose; do $(PY) -m training $$m evaluate-framings || exit 1; done

clean:
	rm -rf $(VENV) .venv-rembg .venv-teacher .cache test-artifacts

bench: setup system-deps
	$(PY) -m bench.run

# A 3000×4500 product photo through /v1/cutout (PNG and WebP) and /v1/skin, and each lever in-process.
bench-big: setup system-deps
	$(PY) -m bench.big_photo --levers

# rembg's HTTP server needs numpy 2, so it lives in a venv of its own, pinned by bench/requirements-rembg.lock.
.venv-rembg/.installed: bench/requirements-rembg.lock
	$(PYTHON) -m venv .venv-rembg
	.venv-rembg/bin/pip install --quiet -r bench/requirements-rembg.lock
	touch $@

bench-tune: setup system-deps
	$(PY) -m bench.tune

# A null model's trip through Triton beside the cutout network's; each service thread's CPU per request.
bench-anatomy: setup system-deps
	$(PY) -m bench.anatomy

bench-rembg: setup .venv-rembg/.installed
	$(PY) -m bench.rembg_compare

# MediaPipe's selfie-segmentation model, a teacher and reference (never served): it needs numpy<2 and
# protobuf 4.25 and pulls jax, so it lives in a venv of its own (training/teacher/requirements.txt).
.venv-teacher/.installed: training/teacher/requirements.txt
	$(PYTHON) -m venv .venv-teacher
	.venv-teacher/bin/pip install --quiet -r training/teacher/requirements.txt
	touch $@

teacher-venv: .venv-teacher/.installed

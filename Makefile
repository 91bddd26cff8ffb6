# fastgan: two commands on a fresh machine.
#   make demo   set everything up, build, run the main job on built-in data
#   make test   set everything up, build, run the test suite (what CI runs)
#   make quality  train and score the README quality tables (TABLE=..., MINUTES=...; ~2 h for all)
# On a machine whose Python already holds torch (e.g. the GPU machine, no registry):
#   make test PYTHON=python3 NO_VENV=1
PYTHON ?= python3
VENV ?= .venv
NO_VENV ?= 0
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=
BUILD_LOCK ?= /tmp/fastgan-build.lock

ifeq ($(NO_VENV),1)
PY := $(PYTHON)
STAMP := .deps-system.stamp
else
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deps.stamp
endif

BUILD_DEPS := scikit-build-core pybind11 "cmake>=3.26" ninja numpy pillow
TEST_DEPS := pytest hypothesis pytest-benchmark expecttest scikit-image pytorch-msssim torchmetrics kornia scipy "opencv-python-headless<5"
TRITON_DEP := triton

.PHONY: setup build test demo bench quality info clean
.DEFAULT_GOAL := test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

ifeq ($(NO_VENV),1)
# Nothing is installed: the environment must already hold torch and the build tools.
$(STAMP):
	$(PY) -c "import torch, pybind11, scikit_build_core, ninja, cmake, pytest" \
	  || { echo "NO_VENV=1 needs torch, pybind11, scikit-build-core, ninja, cmake, pytest installed"; exit 1; }
	touch $@
else
# torch first and pinned, so nothing later pulls a CUDA build from the registry.
$(STAMP): $(VENV)/bin/python Makefile
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q $(BUILD_DEPS) $(TEST_DEPS)
	$(PY) -m pip install -q $(TRITON_DEP) || echo "triton unavailable here: the Triton backend is skipped"
	touch $@
endif

setup: $(STAMP)

# The extension is rebuilt incrementally (build/ keeps the CMake tree); the lock keeps
# two concurrent builds out of one build directory.
build: setup
	flock $(BUILD_LOCK) $(PY) -m pip install -q --no-build-isolation --no-deps -e .

test: build
	bash .ci/check-cuda-compile
	$(PY) -m pytest $(PYTEST_ARGS)

demo: build
	$(PY) -m fastgan demo

bench: build
	$(PY) -m pytest bench --benchmark-only --benchmark-group-by=group --benchmark-columns=min,median,mean,rounds $(PYTEST_ARGS)

# The README quality tables: TABLE=pix2pix|pix2pix-levers|mask-removal|completion|vae|simgan|all;
# MINUTES=M gives every row that budget instead of its own (e.g. MINUTES=2 for a quick look).
TABLE ?= all
MINUTES ?=
quality: build
	$(PY) -m fastgan quality --table $(TABLE) $(if $(MINUTES),--minutes $(MINUTES)) $(QUALITY_ARGS)

info: build
	$(PY) -m fastgan info

clean:
	rm -rf build .deps-system.stamp $(VENV)/.deps.stamp

# Two commands a new user needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch 2.13.0 is what set-up installs; the package itself accepts torch>=2.2. It is named again
# beside the extras (rl: gymnasium 1.x with pygame-ce, which need no torch) so no extra can move it.
TORCH := torch==2.13.0

.PHONY: demo test test-vision setup browser clean bench bench-compile bench-images bench-continual bench-select bench-serve bench-kills bench-distill bench-rl bench-gan bench-ddp

$(BIN)/trainwright: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,tune,track,export,serve,rl]' $(TORCH)
	touch $@

setup: $(BIN)/trainwright

demo: setup
	$(BIN)/trainwright train examples/digits.yaml --runs-dir runs

# The report test opens a generated report in headless Chromium (Debian's package). Install it
# when this is root with apt-get (as CI is); otherwise that one test says why it is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "note: chromium is not installed and cannot be here (needs root and apt-get); the browser test will be skipped"

# The layers contract (import-linter, in pyproject.toml) and ruff come first: a wrong import fails in seconds.
# trainwright is compiled once before the suite: where PYTHONDONTWRITEBYTECODE is set (CI images often do), each
# of the suite's ~200 command-line processes would otherwise compile its modules again (~0.3 s of CPU each).
test: setup browser
	$(BIN)/lint-imports
	$(BIN)/ruff check trainwright tests benchmarks
	$(BIN)/python -m compileall -q trainwright
	$(BIN)/python -m pytest -q -n auto --dist worksteal --durations=25

# The pretrained-backbone tests (model: {type: timm | torchvision}) in a venv of their own: PyPI's torchvision
# does not load beside the CPU torch 2.13.0 above, so this one takes torch 2.14.1 with torchvision 0.29.1
# (CUDA builds, about 5.5 GB, which run on the CPU) and the vision extra. TRAINWRIGHT_VISION_TESTS turns
# the tests' skip (vision extra unusable) into a failure here. .ci/run calls it after `make test`.
VISION_VENV := .venv-vision
VISION_TORCH := torch==2.14.1 torchvision==0.29.1
PRETRAINED_TESTS := tests/models/test_pretrained.py tests/recipes/test_pretrained_run.py

$(VISION_VENV)/bin/trainwright: pyproject.toml
	$(PYTHON) -m venv $(VISION_VENV)
	$(VISION_VENV)/bin/pip install --quiet --upgrade pip
	$(VISION_VENV)/bin/pip install --quiet $(VISION_TORCH)
	$(VISION_VENV)/bin/pip install --quiet -e '.[dev,vision]' $(VISION_TORCH)
	touch $@

test-vision: $(VISION_VENV)/bin/trainwright
	TRAINWRIGHT_VISION_TESTS=1 $(VISION_VENV)/bin/python -m pytest -q -n auto --dist worksteal $(PRETRAINED_TESTS)

bench: setup
	$(BIN)/pip install --quiet -e '.[bench,track]'
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/overhead.py --track
	$(BIN)/python benchmarks/whole_process.py
	$(BIN)/python benchmarks/compute_bound.py
	$(BIN)/python benchmarks/images.py --per-class 500
	$(BIN)/python benchmarks/estimate_accuracy.py

# train.compile: auto on the compute-bound MLP for long enough that a compile could pay (its choice is
# printed; 100 epochs: at 60, eager training on a quiet machine is projected under the 120 s that
# auto measures from; about 15 minutes on our 2-core CPU).
bench-compile: setup
	$(BIN)/python benchmarks/compute_bound.py --epochs 100 --repeats 3 --no-frameworks

# An epoch of a CNN on a generated shapes folder, trainwright against a hand-written loop, plus
# the decode counter; then the image accuracy targets (several minutes on a CPU).
bench-images: setup
	$(BIN)/python benchmarks/images.py
	$(BIN)/python benchmarks/image_accuracy.py

# Continual learning's quality bars: split-digits (five tasks, every strategy, class- and task-incremental,
# seeds 0-2) and `trainwright continue` on a table run that meets a new class (about 15 minutes on a CPU).
bench-continual: setup
	nice -n 19 $(BIN)/python benchmarks/continual_digits.py
	nice -n 19 $(BIN)/python benchmarks/continue_table.py
# Model selection: 10-fold cv batched against one fit at a time, pruning against none over a 30-trial
# search, the learning-rate finder's suggestion against the default lr over 5 seeds (tens of minutes on a CPU).
bench-select: setup
	$(BIN)/python benchmarks/cv_batched.py
	$(BIN)/python benchmarks/tune_pruning.py
	$(BIN)/python benchmarks/lr_find_digits.py
# Serving over loopback (1, 8 and 32 concurrent clients, bounded by --requests and --seconds per level)
# and predict speed, PyTorch vs onnxruntime; the figures are in the README (a few minutes on a CPU).
bench-serve: setup
	$(BIN)/python benchmarks/serve_load.py
# 20 seeded digits runs killed at random moments (SIGKILL, SIGTERM, SIGINT), resumed and compared
# bit for bit with the uninterrupted run: prints `resumed bit-identically: N/20` (a few minutes).
bench-kills: setup
	$(BIN)/python benchmarks/kills.py
# Distillation under augmentation on digits-images: a small CNN student, distilled from the default CNN
# and from scratch, seeds 0-2 in three processes (minutes on a CPU); the last line is the share of the teacher-scratch gap recovered.
bench-distill: setup
	$(BIN)/python benchmarks/distill_augmented.py
# RL quality bars over 5 seeds (PPO and DQN on CartPole-v1, PPO on Acrobot-v1), then PPO's speed against
# Stable-Baselines3's with the same settings (about an hour on one busy CPU core; see README "Reinforcement learning").
bench-rl: setup
	$(BIN)/pip install --quiet -e '.[bench]' $(TORCH)
	$(BIN)/python benchmarks/rl_cartpole.py
	$(BIN)/python benchmarks/rl_acrobot.py
	$(BIN)/python benchmarks/rl_speed.py

# GANs' quality bars: the ring and the grid over seeds 0-4, digits conditional and unconditional, and the
# speed against a hand-written loop (hours on a busy 2-core CPU: the mixtures are 10,000 steps a seed).
bench-gan: setup
	nice -n 19 $(BIN)/python benchmarks/gan_quality.py

# Data-parallel throughput: the digits MLP and a compute-bound MLP on 1 process and on 2 gloo processes
# (and 1 GPU where there is one), each with its share of the cores; samples/s and the all-reduce's time.
bench-ddp: setup
	$(BIN)/python benchmarks/ddp_throughput.py

clean:
	rm -rf $(VENV) $(VISION_VENV) runs .pytest_cache

# Two commands a new user needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch 2.13.0 is what set-up installs; the package itself accepts torch>=2.2.
TORCH := torch==2.13.0

.PHONY: demo test setup browser clean bench bench-images bench-continual

$(BIN)/trainwright: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev]'
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
test: setup browser
	$(BIN)/lint-imports
	$(BIN)/ruff check trainwright tests benchmarks
	$(BIN)/python -m pytest -q -n auto --dist worksteal

bench: setup
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/whole_process.py
	$(BIN)/python benchmarks/compute_bound.py
	$(BIN)/python benchmarks/images.py --per-class 500

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

clean:
	rm -rf $(VENV) runs .pytest_cache

# Two commands a new user needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch 2.13.0 is what set-up installs; the package itself accepts torch>=2.2.
TORCH := torch==2.13.0

.PHONY: demo test setup clean bench bench-images

$(BIN)/trainwright: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/trainwright

demo: setup
	$(BIN)/trainwright train examples/digits.yaml --runs-dir runs

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/compute_bound.py

# An epoch of a CNN on a generated shapes folder, trainwright against a hand-written loop, plus
# the decode counter; then the image accuracy targets (several minutes on a CPU).
bench-images: setup
	$(BIN)/python benchmarks/images.py
	$(BIN)/python benchmarks/image_accuracy.py

clean:
	rm -rf $(VENV) runs .pytest_cache

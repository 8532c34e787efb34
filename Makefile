# careeredge developer entry points. Quickstart = `make run` (main job) and `make test` (tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell sha256sum pyproject.toml | cut -c1-12)
# Two install levels in one venv: the device extra alone (what a Pi runs: no torch) and everything.
DEVICE_STAMP := $(VENV)/.device-$(HASH)
FULL_STAMP   := $(VENV)/.full-$(HASH)

.PHONY: run test lint setup device-setup model-a pipeline embed-bundle serve tui clean-artifacts

## run: a venv with the device extra only, then serve the web page and API on the Model A bundle shipped in
##      device/embedded_bundle/ (Ctrl+C stops it). No training: `make pipeline` rebuilds that bundle from the data.
run: device-setup
	$(BIN)/careeredge serve

## test: set up the full venv and run the whole test suite
test: setup
	$(BIN)/python -m pytest -q

## lint: ruff lint + format check (CI runs it before the tests)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

device-setup: $(DEVICE_STAMP)

$(DEVICE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[device]'
	rm -f $(VENV)/.device-* && touch $@

setup: $(FULL_STAMP)

$(FULL_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[device,cloud,vertex,dev]'
	rm -f $(VENV)/.device-* $(VENV)/.full-* && touch $(DEVICE_STAMP) $@

## model-a: the Model A chain (prepare -> label -> train_a -> cv_a -> evaluate_a; ingest -> normalize -> distill_a -> export)
model-a: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro export evaluate_a

## pipeline: every out-of-date DVC stage, Model B's weekly chain included (offline; no remote needed)
pipeline: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

## embed-bundle: replace the shipped bundle with the one the pipeline built (verified first)
embed-bundle: setup
	$(BIN)/python scripts/embed_bundle.py artifacts/bundles/model_a_v1

serve: device-setup
	$(BIN)/careeredge serve

tui: device-setup
	$(BIN)/careeredge tui

clean-artifacts:
	rm -rf artifacts data/interim data/processed

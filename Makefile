# careeredge developer entry points. Quickstart = `make run` (main job) and `make test` (tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run test lint setup model-a pipeline serve tui clean-artifacts

## run: set up the venv, build Model A + its INT8 bundle with DVC, print the report and a sample prediction,
##      then serve the web page and API on the Model A bundle (Ctrl+C stops it)
run: setup model-a
	@$(BIN)/python scripts/show_report.py
	$(BIN)/careeredge serve --model artifacts/bundles/model_a_v1

## test: set up the venv and run the whole test suite
test: setup
	$(BIN)/python -m pytest -q

## lint: ruff lint + format check (CI runs it before the tests)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[device,cloud,dev]'
	rm -f $(VENV)/.installed-* && touch $@

## model-a: the Model A chain (prepare -> label -> train_a -> cv_a -> evaluate_a; ingest -> normalize -> distill_a -> export)
model-a: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro export evaluate_a

## pipeline: every out-of-date DVC stage, Model B's weekly chain included (offline; no remote needed)
pipeline: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

serve: setup
	$(BIN)/careeredge serve --model artifacts/bundles/model_a_v1

tui: setup
	$(BIN)/careeredge tui --model artifacts/bundles/model_a_v1

clean-artifacts:
	rm -rf artifacts data/interim data/processed

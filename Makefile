# Two commands: `make run` and `make test`. Both create .venv and install the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= out/demo

.PHONY: run test lint bench side-by-side clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ratecycle demo --out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m pytest bench --benchmark-enable --benchmark-only

# ratecycle vs the DuckDB SQL and Polars oracles on one generated month; writes
# bench/RESULTS.md. Not part of `make test`. `make side-by-side EVENTS=10000000 REPEAT=1`
EVENTS ?= 1000000
REPEAT ?= 3
side-by-side: $(STAMP)
	$(BIN)/python -m bench.side_by_side --events $(EVENTS) --repeat $(REPEAT)

clean:
	rm -rf $(VENV) out .pytest_cache

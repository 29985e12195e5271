# Developer and CI entry points. `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo up test unit test-without-datasets soak lint bench clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the package only asks for torch>=2.3, so pip never picks a build by itself.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/streamrec demo

up: $(STAMP)
	$(BIN)/streamrec up

# Command-line tools of the interop and monitoring tests (kcat; promtool and prometheus;
# docker-compose, whose `config` checks the compose file without a Docker engine). Installed with
# apt when one is missing and we may; otherwise those tests skip, or fail under STREAMREC_REQUIRE_TOOLS=1.
SYSTEM_TOOLS    := kcat promtool prometheus docker-compose
SYSTEM_PACKAGES := kcat prometheus docker-compose

system-deps:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing $(SYSTEM_PACKAGES) (missing:$$missing)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  log=$$( { apt-get update -qq && apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); } 2>&1 ) \
	    || echo "$$log" "warning: apt-get could not install $(SYSTEM_PACKAGES)"; \
	else \
	  echo "note: missing$$missing; install the Debian packages $(SYSTEM_PACKAGES) to run every test"; \
	fi

test: $(STAMP) system-deps
	$(BIN)/python -m pytest

# What needs no broker: the model, the evaluation, the layout rules, settings and contracts (under a minute).
unit: $(STAMP)
	$(BIN)/python -m pytest -m "not broker and not slow"

# A clone with nothing beside it: the datasets directory points nowhere, so the benchmark replays
# the packaged sample (and the tests that need a public dataset skip).
test-without-datasets: $(STAMP)
	STREAMREC_DATASETS_DIR=$(CURDIR)/.no-datasets $(BIN)/python -m pytest tests/streams/test_bench.py

bench: $(STAMP)
	$(BIN)/streamrec bench --json bench.json

soak: $(STAMP)
	$(BIN)/python -m pytest -m soak -s tests/streams/test_soak.py

# mypy: strict on model/, eval/ and learn/ (pyproject.toml), the default rules on streams/.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy streamrec/model streamrec/eval streamrec/learn streamrec/streams

clean:
	rm -rf $(VENV) .streamrec .pytest_cache .ruff_cache .mypy_cache

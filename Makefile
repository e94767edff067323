# Every target installs what it needs: a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck importlint unit clean venv cluster cluster-down

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check cctvchain tests scripts
	$(VENV)/bin/ruff format --check cctvchain tests scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy

importlint: $(STAMP)
	$(VENV)/bin/lint-imports

unit: $(STAMP)
	$(VENV)/bin/pytest -n auto

test: lint typecheck importlint unit

# The whole story on its own copy of the default cluster (ports +10000, state in
# nodes/demo): RTSP camera, participants, approval, ingest beside an NVR recording, verify
# of the recording and two copies, refusals. Installs Debian's ffmpeg and GStreamer RTSP
# server when missing; stops everything it started, also on failure or Ctrl-C.
demo: $(STAMP)
	$(VENV)/bin/cctvchain demo

# The default local network (configs/local.toml) as separate processes.
cluster: $(STAMP)
	$(VENV)/bin/cctvchain network up

cluster-down: $(STAMP)
	$(VENV)/bin/cctvchain network down

clean:
	rm -rf $(VENV) nodes/demo

# Benchmarks (not part of `make test`): each writes --json $(BENCH_OUT)/<name>.json, then
# bench_report.py writes BENCHMARKS.md from them (and runs any scripts/bench_*.py it knows
# whose JSON is missing).
BENCH_OUT := nodes/bench

.PHONY: bench
bench: $(STAMP)
	rm -rf $(BENCH_OUT) && mkdir -p $(BENCH_OUT) && touch $(BENCH_OUT)/.started
	$(VENV)/bin/python scripts/bench_commit.py --json $(BENCH_OUT)/commit.json
	$(VENV)/bin/python scripts/bench_ingest.py --json $(BENCH_OUT)/ingest.json
	$(VENV)/bin/python scripts/bench_cluster.py --json $(BENCH_OUT)/cluster.json
	$(VENV)/bin/python scripts/bench_verify.py --json $(BENCH_OUT)/verify.json
	$(VENV)/bin/python scripts/bench_ledger.py --json $(BENCH_OUT)/ledger.json
	$(VENV)/bin/python scripts/bench_report.py --results $(BENCH_OUT) --out BENCHMARKS.md

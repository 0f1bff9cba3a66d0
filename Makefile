# drctl: the README's two commands are `make demo` and `make test`.
# Everything here installs what it needs; nothing is set up by hand.

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

-include sandbox/sandbox.mk

DRCTL := $(or $(CARGO_TARGET_DIR),target)/debug/drctl

.PHONY: all build test test-all rust-test lint fmt demo fuzz man bench-journal bench-probe bench-failover bench-drill bench-state

all: build

build:
	$(CARGO) build --bin drctl

## Every test, in minutes: formatting and lints, Rust (unit, property, crash, lock, sandbox) under
## cargo-nextest, and the sandbox's own pytest. The crash sweeps try a sample of their kill points
## that rotates with each commit; stage times are printed at the end (scripts/test.sh).
## TEST_THREADS=N sets how many tests run at once (default 4, .config/nextest.toml).
test: sandbox-venv
	CARGO=$(CARGO) SANDBOX_PY=$(SANDBOX_PY) TEST_THREADS=$(TEST_THREADS) bash scripts/test.sh quick

## Everything `make test` runs, with every kill point of every crash sweep, then `make fuzz`.
test-all: sandbox-venv
	CARGO=$(CARGO) SANDBOX_PY=$(SANDBOX_PY) TEST_THREADS=$(TEST_THREADS) bash scripts/test.sh all

## The Rust tests alone (no lints, no pytest).
rust-test: sandbox-venv
	DRCTL_SANDBOX_PYTHON=$(SANDBOX_PY) $(CARGO) nextest run --all-targets $(if $(TEST_THREADS),--test-threads $(TEST_THREADS))

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## The parser fuzz at length (make test runs 256 cases per property): 20,000 per property.
fuzz:
	DRCTL_FUZZ_CASES=20000 $(CARGO) test --test fuzz_parsers

## Man pages into target/man (drctl.1 and one per command).
man: build
	$(DRCTL) man --dir $(or $(CARGO_TARGET_DIR),target)/man

## Start the two-region sandbox, seed it, and fail over to us-west-2. See scripts/demo.sh.
demo: sandbox-venv build
	SANDBOX_PY=$(SANDBOX_PY) DRCTL=$(DRCTL) bash scripts/demo.sh

## Benchmarks (never part of `make test`): results and how to read them in benches/RESULTS.md.
bench-journal: build
	DRCTL=$(DRCTL) bash benches/journal_bench.sh

bench-probe:
	bash benches/probe_bench.sh

bench-failover: sandbox-venv build
	SANDBOX_PY=$(SANDBOX_PY) DRCTL=$(DRCTL) bash benches/failover_bench.sh

## State backends: lease and append p50/p99, file vs the sandbox's DynamoDB, and a 15-step
## failover on each (benches/state_bench.rs; results in benches/results/state.json).
bench-state: sandbox-venv build
	SANDBOX_PY=$(SANDBOX_PY) DRCTL=$(abspath $(DRCTL)) cargo bench --profile dev --bench state_bench -- measure --n 300 --failovers 3

## Isolated drill times against the sandbox's restore delay (medians): benches/drill_bench.sh.
bench-drill: sandbox-venv build
	SANDBOX_PY=$(SANDBOX_PY) DRCTL=$(DRCTL) bash benches/drill_bench.sh

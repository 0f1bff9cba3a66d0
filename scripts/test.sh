#!/usr/bin/env bash
# `make test` and `make test-all`: every test, in stages, with each stage's elapsed time printed at
# the end (so the next slowdown shows where it is) and the Rust tests' time per binary.
#
#   scripts/test.sh [quick|all]
#     quick (make test)      crash sweeps on a sample of kill points that rotates with each commit,
#                            the parser fuzz at 256 cases per property
#     all   (make test-all)  every kill point of every sweep, then the fuzz at 20,000 cases
#
# Environment: CARGO, SANDBOX_PY (the sandbox venv's python), TEST_THREADS (parallel tests;
# default from .config/nextest.toml), TEST_SERIAL=1 (pytest after the Rust tests, not beside
# them), and anything the tests read (DRCTL_CRASH_*, see
# tests/common/sweep.rs). Without cargo-nextest the Rust tests run under `cargo test`.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
MODE=${1:-quick}
CARGO=${CARGO:-cargo}
PY=${SANDBOX_PY:-$ROOT/.venv/bin/python}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export DRCTL_SANDBOX_PYTHON=$PY

if [[ $MODE == all ]]; then
    export DRCTL_CRASH_STRIDE=1
fi

declare -a STAGES=()
failed=""
start_all=$SECONDS
# Per-binary times are printed only from a JUnit report this run wrote.
started_marker=$(mktemp)

# stage NAME COMMAND...: run, time, and remember a failure without stopping the later stages'
# report (a failed lint still stops the rest: there is no point testing code that will not land).
stage() {
    local name=$1 t0=$SECONDS rc
    shift
    printf '\n== %s: %s\n' "$name" "$*"
    "$@"
    rc=$?
    STAGES+=("$(printf '%-8s %6ds  %s' "$name" $((SECONDS - t0)) "$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")")")
    [[ $rc == 0 ]] || failed="$failed $name"
    return $rc
}

report() {
    echo
    echo "== stage times ($MODE)"
    printf '  %s\n' "${STAGES[@]}"
    printf '  %-8s %6ds\n' total $((SECONDS - start_all))
    local junit=$TARGET/nextest/default/junit.xml
    if [[ -f $junit && $junit -nt $started_marker ]]; then
        "$PY" "$ROOT/scripts/test_times.py" "$junit" || true
    fi
    rm -f "$started_marker"
    if [[ -n $failed ]]; then
        echo "FAILED:$failed"
        exit 1
    fi
}
trap report EXIT

stage fmt "$CARGO" fmt --all -- --check || exit
stage clippy "$CARGO" clippy --all-targets -- -D warnings || exit
stage build "$CARGO" test --all-targets --no-run || exit

# The sandbox's pytest runs beside the Rust tests (TEST_SERIAL=1: after them): the Rust tests
# mostly wait on their sandboxes' clocks and leave a core's worth of CPU idle.
pytest_log=$(mktemp)
run_pytest() { "$PY" -m pytest -q sandbox/tests; }
if [[ -z ${TEST_SERIAL:-} ]]; then
    (
        t0=$SECONDS
        run_pytest >"$pytest_log" 2>&1
        echo "$? $((SECONDS - t0))" >"$pytest_log.end"
    ) &
    pytest_pid=$!
fi

if "$CARGO" nextest --version >/dev/null 2>&1; then
    threads=()
    [[ -n ${TEST_THREADS:-} ]] && threads=(--test-threads "$TEST_THREADS")
    stage rust "$CARGO" nextest run --all-targets "${threads[@]}"
else
    echo "cargo-nextest not found: running the Rust tests with cargo test (slower; no per-test processes)"
    stage rust "$CARGO" test --all-targets -- --test-threads "${TEST_THREADS:-4}"
fi

if [[ -z ${TEST_SERIAL:-} ]]; then
    wait "$pytest_pid"
    printf '\n== pytest (ran beside the Rust tests): %s -m pytest -q sandbox/tests\n' "$PY"
    cat "$pytest_log"
    read -r rc took <"$pytest_log.end"
    STAGES+=("$(printf '%-8s %6ds  %s' pytest "$took" "$([[ $rc == 0 ]] && echo "ok (beside rust)" || echo "FAILED (exit $rc)")")")
    [[ $rc == 0 ]] || failed="$failed pytest"
    rm -f "$pytest_log" "$pytest_log.end"
else
    stage pytest run_pytest
fi

if [[ $MODE == all ]]; then
    stage fuzz env DRCTL_FUZZ_CASES=20000 "$CARGO" test --test fuzz_parsers
fi

#!/usr/bin/env bash
# Journal cost: run a runbook of N no-op steps one at a time (3 fsync'd events each, plus the
# run's own), REPEAT times, and report the median wall time per run and per journal event.
# Usage: bash benches/journal_bench.sh [N=200] [REPEAT=7]   (uses $DRCTL or target/debug/drctl)
set -euo pipefail
N=${1:-200}
REPEAT=${2:-7}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DRCTL=${DRCTL:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/drctl}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
printf 'name: bench\nprimary_region: us-east-1\nstandby_region: us-west-2\nregions:\n  us-east-1: {}\n  us-west-2: {}\n' > drctl.yaml
{
  printf 'name: journal-bench\nmax_parallel: 1\nsteps:\n'
  for i in $(seq 1 "$N"); do printf '  - id: s%d\n    kind: wait\n    with: { duration: 0s }\n' "$i"; done
} > rb.yaml
times=()
for _ in $(seq 1 "$REPEAT"); do
  rm -rf .drctl
  t0=$(date +%s%N)
  DRCTL_PLAIN=1 "$DRCTL" run rb.yaml --yes >/dev/null 2>&1
  t1=$(date +%s%N)
  times+=($(( (t1 - t0) / 1000 )))
done
events=$(wc -l < .drctl/runs/*/journal.jsonl)
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (REPEAT + 1) / 2 ))p")
echo "steps=$N events=$events runs=$REPEAT"
echo "median run: $(( median / 1000 )) ms; per journal event: $(( median / events )) us (fsync'd)"
echo "all runs (us): ${times[*]}"

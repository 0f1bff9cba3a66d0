#!/usr/bin/env bash
# Isolated drill times against the sandbox's own delays (not a test: `make bench-drill`).
#
# For each of RUNS isolated drills, on a fresh sandbox with the realistic profile at TIME_SCALE:
#   database   the drill's measured time to a writable database (journal `drill_database_seconds`)
#   floor      the sandbox's own delay for it: rds_restore (the restored instance coming up)
#   serving    the measured time from launching instances to the app answering /db
#   teardown   from the run's success to the end of the command (undo, sweep by tag, close)
#   command    the whole `drctl drill --mode isolated` wall time
# Prints one line per run and the medians; writes benches/results/drill.json.
#   RUNS=5 TIME_SCALE=1.0 bash benches/drill_bench.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${SANDBOX_PY:-$ROOT/.venv/bin/python}
DRCTL=${DRCTL:-$ROOT/target/debug/drctl}
case $DRCTL in /*) ;; *) DRCTL=$PWD/$DRCTL ;; esac
RUNS=${RUNS:-5}
SCALE=${TIME_SCALE:-1.0}
OUT=${OUT:-$ROOT/benches/results/drill.json}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 DRCTL_PLAIN=1
unset AWS_PROFILE AWS_ENDPOINT_URL DRCTL_ENV DRCTL_STATE_DIR
export PYTHONPATH=$ROOT/sandbox${PYTHONPATH:+:$PYTHONPATH}

one() { # n -> appends a JSON line to $WORK/runs.jsonl
  local n=$1 dir=$WORK/drill-$1
  mkdir -p "$dir"
  "$PY" -m drsandbox serve --port 0 --profile realistic --time-scale "$SCALE" >"$dir/sandbox.log" 2>&1 &
  local sb=$! ep=
  for _ in $(seq 1 600); do
    ep=$(sed -n 's/^listening on //p' "$dir/sandbox.log" | head -1); [[ -n $ep ]] && break; sleep 0.1
  done
  "$PY" -m drsandbox seed --endpoint "$ep" --out "$dir" >/dev/null
  local t0 t1
  t0=$("$PY" -c 'import time; print(time.time())')
  (cd "$dir" && "$DRCTL" --env drctl.yaml drill --mode isolated --yes --output json >"$dir/drill.json" 2>"$dir/drill.log") \
    || { echo "drill #$n failed:"; tail -20 "$dir/drill.log"; exit 1; }
  t1=$("$PY" -c 'import time; print(time.time())')
  local profile
  profile=$("$PY" -m drsandbox state --json --endpoint "$ep" | "$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["profile"]["seconds"]))')
  kill "$sb"; wait "$sb" 2>/dev/null || true
  "$PY" - "$dir" "$n" "$t0" "$t1" "$profile" >>"$WORK/runs.jsonl" <<'EOF'
import json, sys, glob, datetime
d, n, t0, t1, prof = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5])
out = [json.loads(l) for l in open(d + "/drill.json") if l.startswith("{")][-1]
j = [json.loads(l) for l in open(glob.glob(d + "/.drctl/runs/*/journal.jsonl")[0])]
at = lambda r: datetime.datetime.fromisoformat(r["at"].replace("Z", "+00:00")).timestamp()
ok = next(at(r) for r in j if r["type"] == "step_succeeded" and r["step"] == "app")
floor = prof["rds_restore"]
print(json.dumps({"run": n, "passed": out["passed"], "database_s": round(out["database_s"], 3),
                  "floor_s": round(floor, 3), "ratio": round(out["database_s"] / floor, 3),
                  "serving_s": round(out["serving_s"], 3), "teardown_s": round(t1 - ok, 3),
                  "command_wall_s": round(t1 - t0, 3), "leftovers": len(out["leftovers"])}))
EOF
  tail -1 "$WORK/runs.jsonl" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("drill #{run}: database {database_s:.2f}s (floor {floor_s:.2f}s, ratio {ratio:.3f}), serving {serving_s:.2f}s, teardown {teardown_s:.2f}s, command {command_wall_s:.2f}s, leftovers {leftovers}".format(**r))'
}

for n in $(seq 1 "$RUNS"); do one "$n"; done
mkdir -p "$(dirname "$OUT")"
"$PY" - "$WORK/runs.jsonl" "$OUT" "$SCALE" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
med = lambda k: round(statistics.median(r[k] for r in runs), 3)
summary = {"time_scale": float(sys.argv[3]), "runs": runs,
           "median": {k: med(k) for k in ("database_s", "floor_s", "ratio", "serving_s", "teardown_s", "command_wall_s")}}
json.dump(summary, open(sys.argv[2], "w"), indent=2)
m = summary["median"]
print(f"median of {len(runs)}: database {m['database_s']}s vs floor {m['floor_s']}s (ratio {m['ratio']}), "
      f"serving {m['serving_s']}s, teardown {m['teardown_s']}s, command {m['command_wall_s']}s")
EOF

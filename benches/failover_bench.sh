#!/usr/bin/env bash
# Failover RTO against the sandbox's own delays (not a test: `make bench-failover`).
#
# For each of RUNS planned and RUNS unplanned failovers (us-east-1 dark for the unplanned ones),
# on a fresh sandbox with the realistic profile at TIME_SCALE:
#   RTO            run start -> the outside check through the public name succeeded (journal)
#   critical path  the sandbox's own delays on that runbook's critical path:
#                    unplanned: max(rds_promotion + route53, cloudfront) + route53
#                    planned:   max(rds_parameter_apply + rds_promotion + route53, cloudfront) + route53
#                  (the DB CNAME and the held records each wait for one Route 53 change)
#   overhead       RTO - critical path: drctl's own time (polling granularity, scheduling,
#                  journaling, calls that return at once)
# Prints one line per run and the medians; writes benches/results/failover.json.
#   RUNS=5 TIME_SCALE=1.0 bash benches/failover_bench.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${SANDBOX_PY:-$ROOT/.venv/bin/python}
DRCTL=${DRCTL:-$ROOT/target/debug/drctl}
# The runs work in temporary directories: a relative path (the Makefile's) must be made absolute.
case $DRCTL in /*) ;; *) DRCTL=$PWD/$DRCTL ;; esac
RUNS=${RUNS:-5}
SCALE=${TIME_SCALE:-1.0}
OUT=${OUT:-$ROOT/benches/results/failover.json}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 DRCTL_PLAIN=1
unset AWS_PROFILE AWS_ENDPOINT_URL DRCTL_ENV DRCTL_STATE_DIR
export PYTHONPATH=$ROOT/sandbox${PYTHONPATH:+:$PYTHONPATH}

one() { # mode n -> appends a JSON line to $WORK/runs.jsonl
  local mode=$1 n=$2 dir=$WORK/$1-$2
  mkdir -p "$dir"
  "$PY" -m drsandbox serve --port 0 --profile realistic --time-scale "$SCALE" >"$dir/sandbox.log" 2>&1 &
  local sb=$! ep=
  for _ in $(seq 1 600); do
    ep=$(sed -n 's/^listening on //p' "$dir/sandbox.log" | head -1); [[ -n $ep ]] && break; sleep 0.1
  done
  "$PY" -m drsandbox seed --endpoint "$ep" --out "$dir" >/dev/null
  # Start from a caught-up replica, as a steady-state production pair would be.
  for _ in $(seq 1 600); do
    "$PY" -m drsandbox state --json --endpoint "$ep" | "$PY" -c '
import json,sys; s=json.load(sys.stdin)
sys.exit(0 if any(d["role"]=="replica" and d["status"]=="available" for d in s["regions"]["us-west-2"]["databases"]) else 1)' && break
    sleep 0.5
  done
  sleep "$("$PY" -c "print(65 * $SCALE + 2)")"   # the seeded replica's catch-up, then a fresh datapoint
  if [[ $mode = unplanned ]]; then
    "$PY" -m drsandbox fault set outage --region us-east-1 --endpoint "$ep" >/dev/null
  fi
  local t0 t1
  t0=$("$PY" -c 'import time; print(time.time())')
  (cd "$dir" && "$DRCTL" --env drctl.yaml failover --region us-west-2 --yes --approve-irreversible --mode "$mode" >"$dir/failover.log" 2>&1) \
    || { echo "failover $mode #$n failed:"; tail -20 "$dir/failover.log"; exit 1; }
  t1=$("$PY" -c 'import time; print(time.time())')
  local profile
  profile=$("$PY" -m drsandbox state --json --endpoint "$ep" | "$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["profile"]["seconds"]))')
  kill "$sb"; wait "$sb" 2>/dev/null || true
  "$PY" - "$dir" "$mode" "$n" "$t0" "$t1" "$profile" >>"$WORK/runs.jsonl" <<'EOF'
import json, sys, glob, datetime
d, mode, n, t0, t1, prof = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), json.loads(sys.argv[6])
j = [json.loads(l) for l in open(glob.glob(d + "/.drctl/runs/*/journal.jsonl")[0])]
at = lambda r: datetime.datetime.fromisoformat(r["at"].replace("Z", "+00:00")).timestamp()
start = at(j[0])
done = next(at(r) for r in j if r["type"] == "step_succeeded" and r["step"] == "public_serves")
r53, cf, promo, apply = prof["route53_change_propagation"], prof["cloudfront_deployment"], prof["rds_promotion"], prof["rds_parameter_apply"]
db = promo + r53 + (apply if mode == "planned" else 0)
critical = max(db, cf) + r53
rto = done - start
steps = {r["step"]: r["duration_ms"] / 1000 for r in j if r["type"] == "step_succeeded"}
print(json.dumps({"mode": mode, "run": n, "rto_s": round(rto, 3), "critical_path_s": round(critical, 3),
                  "ratio": round(rto / critical, 3), "overhead_s": round(rto - critical, 3),
                  "command_wall_s": round(t1 - t0, 3), "steps_s": steps}))
EOF
  tail -1 "$WORK/runs.jsonl" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("{mode:9} #{run}: RTO {rto_s:.2f}s, critical path {critical_path_s:.2f}s, ratio {ratio:.3f}, overhead {overhead_s:.2f}s, command {command_wall_s:.2f}s".format(**r))'
}

for n in $(seq 1 "$RUNS"); do one unplanned "$n"; one planned "$n"; done
mkdir -p "$(dirname "$OUT")"
"$PY" - "$WORK/runs.jsonl" "$OUT" "$SCALE" <<'EOF'
import json, sys, statistics
runs = [json.loads(l) for l in open(sys.argv[1])]
out = {"time_scale": float(sys.argv[3]), "runs": runs, "median": {}}
for mode in ("unplanned", "planned"):
    rs = [r for r in runs if r["mode"] == mode]
    med = lambda k: statistics.median(r[k] for r in rs)
    out["median"][mode] = {k: round(med(k), 3) for k in ("rto_s", "critical_path_s", "ratio", "overhead_s", "command_wall_s")}
    m = out["median"][mode]
    print(f"median {mode:9}: RTO {m['rto_s']:.2f}s / critical path {m['critical_path_s']:.2f}s = {m['ratio']:.3f} "
          f"(overhead {m['overhead_s']:.2f}s, {100 * m['overhead_s'] / m['rto_s']:.1f}% of the RTO); command {m['command_wall_s']:.2f}s")
json.dump(out, open(sys.argv[2], "w"), indent=1)
EOF

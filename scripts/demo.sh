#!/usr/bin/env bash
# `make demo`: the whole round trip on a two-region sandbox. A readiness check; us-east-1 goes
# dark, and with it the Route 53, CloudFront and IAM APIs (their control planes are in
# us-east-1: the harsh outage AWS documents); drctl fails over to us-west-2 (unplanned) through
# the failover gate, on data planes only, and defers what needs a control plane; the outage
# ends and the failover holds; a running `drctl watch` fences the old primary and finishes the
# deferred work by itself; reprotect; a planned failback; and
# `drctl status` says `protected` again. Runs and the lease live in the sandbox's DynamoDB (a
# table in us-east-2, outside the primary region), shared by a second operator's directory:
# two operators failing over at once cannot both run. Called by the Makefile with SANDBOX_PY (the sandbox
# venv's python) and DRCTL (the built binary). A few minutes.
#   DEMO_TIME_SCALE  realistic-profile time scale (default 0.2: RDS promotion 4 s, ...)
#   DEMO_OUTAGE=0    a planned switchover instead of the outage (us-east-1 stays up)
#   DEMO_GATE=0      no failover gate and an outage that spares the global control planes
#                    (the failover then swaps the records through Route 53's API)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${SANDBOX_PY:-$ROOT/.venv/bin/python}
DRCTL=${DRCTL:-$ROOT/target/debug/drctl}
[[ $DRCTL = /* ]] || DRCTL=$ROOT/$DRCTL
DEMO=$ROOT/.demo
SCALE=${DEMO_TIME_SCALE:-0.2}
OUTAGE=${DEMO_OUTAGE:-1}
GATE=${DEMO_GATE:-1}
SERVE_ARGS=() SEED_ARGS=() FAULT_ARGS=(--spare-control-planes)
if [[ $GATE = 1 ]]; then
  # The gate's alarm in us-west-2, and DNS answered by the sandbox's own name server, which
  # drctl asks to see where the public name answers without Route 53's API.
  SERVE_ARGS=(--dns-port 0) SEED_ARGS=(--gate alarm) FAULT_ARGS=(--control-planes)
fi

# The sandbox accepts any credentials; never let the demo touch a real account.
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 DRCTL_PLAIN=1
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_SESSION_TOKEN DRCTL_ENV DRCTL_STATE_DIR
export PYTHONPATH=$ROOT/sandbox${PYTHONPATH:+:$PYTHONPATH}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }
drctl() { "$DRCTL" --env drctl.yaml "$@"; }
state() { "$PY" -m drsandbox state --json --endpoint "$EP"; }
# Evaluate a Python expression over the sandbox state `s`; exit status says whether it holds.
holds() { state | "$PY" -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }
wait_for() { # what, seconds, python expression
  for _ in $(seq 1 $(( $2 * 5 ))); do holds "$3" && return 0; sleep 0.2; done
  die "$1 did not happen within $2 s"
}
phase() { drctl status --output json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["phase"])'; }

rm -rf "$DEMO" && mkdir -p "$DEMO"
say "starting the two-region sandbox (realistic profile, time scale $SCALE)"
"$PY" -m drsandbox serve --port 0 --profile realistic --time-scale "$SCALE" "${SERVE_ARGS[@]}" >"$DEMO/sandbox.log" 2>&1 &
SB=$!
WATCH=
trap 'kill $WATCH "$SB" 2>/dev/null || true; wait "$SB" 2>/dev/null || true' EXIT
EP=
for _ in $(seq 1 600); do
  EP=$(sed -n 's/^listening on //p' "$DEMO/sandbox.log" | head -1)
  [[ -n $EP ]] && break
  kill -0 "$SB" 2>/dev/null || { cat "$DEMO/sandbox.log" >&2; die "the sandbox exited"; }
  sleep 0.1
done
[[ -n $EP ]] || die "the sandbox did not start within 60 s"
echo "sandbox at $EP"
"$PY" -m drsandbox seed --endpoint "$EP" --out "$DEMO" --state-backend dynamodb "${SEED_ARGS[@]}"

cd "$DEMO"
say "shared state: runs and the lease in a DynamoDB table outside the primary region"
drctl state init --yes
drctl state show
# A second operator's laptop: another directory, the same drctl.yaml.
mkdir -p "$DEMO/laptop2" && cp drctl.yaml "$DEMO/laptop2/"
say "drctl status: the environment, observed from AWS"
drctl status || true
say "drctl check: is the standby ready?"
drctl check || true

say "drctl drill --mode isolated --yes: game day beside production (restore, launch, prove, tear down)"
drctl drill --mode isolated --yes
say "drctl drill cleanup: nothing may be left behind"
drctl drill cleanup --yes | tee "$DEMO/cleanup.txt"
grep -q "no drill resources found" "$DEMO/cleanup.txt" || die "the drill left resources behind"

if [[ $OUTAGE = 1 ]]; then
  if [[ $GATE = 1 ]]; then
    say "us-east-1 goes dark, and with it the Route 53, CloudFront and IAM APIs (their control planes live there)"
  else
    say "us-east-1 goes dark (requests hang, ALBs stop answering)"
  fi
  "$PY" -m drsandbox fault set outage --region us-east-1 "${FAULT_ARGS[@]}" --endpoint "$EP"
  # The operator fails over because the primary is down: wait until Route 53 sees it too.
  wait_for "Route 53 seeing the outage" 60 's["route53"]["health_checks"] and not s["route53"]["health_checks"][0]["healthy"]'
fi

say "drctl failover --region us-west-2, typed by two operators in two directories at once"
START=$(date +%s)
set +e
drctl failover --region us-west-2 --yes --approve-irreversible >"$DEMO/failover-1.log" 2>&1 &
P1=$!
(cd "$DEMO/laptop2" && "$DRCTL" --env drctl.yaml failover --region us-west-2 --yes --approve-irreversible) >"$DEMO/failover-2.log" 2>&1 &
P2=$!
wait $P1; RC1=$?
wait $P2; RC2=$?
set -e
echo "(wall clock: $(( $(date +%s) - START )) s; exit codes $RC1 and $RC2)"
if [[ $RC1 = 0 && $RC2 = 3 ]]; then WON=1 LOST=2; elif [[ $RC1 = 3 && $RC2 = 0 ]]; then WON=2 LOST=1;
else cat "$DEMO/failover-1.log" "$DEMO/failover-2.log"; die "expected one failover to run and the other to exit 3"; fi
cat "$DEMO/failover-$WON.log"
say "the other operator was locked out (exit 3), naming the holder"
grep -E "locked by|error" "$DEMO/failover-$LOST.log"

say "a second failover is a no-op"
drctl failover --region us-west-2 --yes --approve-irreversible

say "drctl status after the failover (exit 4 while the old primary may come back writable)"
drctl status || true

if [[ $OUTAGE = 1 ]]; then
  say "drctl watch runs; then us-east-1 comes back"
  "$DRCTL" --env drctl.yaml watch --listen 127.0.0.1:0 >"$DEMO/watch.out" 2>"$DEMO/watch.log" &
  WATCH=$!
  sleep 2
  "$PY" -m drsandbox fault clear --endpoint "$EP"
  wait_for "us-east-1 answering again" 60 's["regions"]["us-east-1"]["dark"] is False'
  wait_for "the old primary's health check passing" 60 's["route53"]["health_checks"][0]["healthy"]'
  INTERVAL=$(state | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["profile"]["seconds"]["health_check_interval"])')
  say "the failover holds: Route 53 keeps answering us-west-2 for 10 health-check intervals"
  END=$("$PY" -c "import time; print(time.time() + 10 * $INTERVAL)")
  while "$PY" -c "import time,sys; sys.exit(0 if time.time() < $END else 1)"; do
    holds 's["route53"]["answer_region"] == "us-west-2"' || die "Route 53 went back to us-east-1"
    sleep 0.5
  done
  echo "Route 53 still answers us-west-2 (the old primary's check passes)"
  say "the watch fences the old primary as soon as its region answers"
  for _ in $(seq 1 300); do grep -q "FENCE completed" "$DEMO/watch.log" && break; sleep 0.2; done
  grep -E "FENCE|fence_primary" "$DEMO/watch.log" || die "the watch did not fence the old primary"
  if [[ $GATE = 1 ]]; then
    say "the watch finishes the deferred control-plane work once Route 53's and CloudFront's APIs answer"
    for _ in $(seq 1 300); do grep -q "DEFERRED completed" "$DEMO/watch.log" && break; sleep 0.2; done
    grep -E "DEFERRED" "$DEMO/watch.log" || die "the watch did not finish the deferred work"
  fi
  kill "$WATCH"; wait "$WATCH" 2>/dev/null || true; WATCH=
  drctl status || true
fi

say "drctl reprotect --yes --approve-irreversible: a new replica of us-west-2's writer in us-east-1, AMIs copied back"
drctl reprotect --yes --approve-irreversible

say "drctl failback --region us-east-1 --yes --approve-irreversible: planned, no write lost"
drctl failback --region us-east-1 --yes --approve-irreversible

say "the sandbox now"
"$PY" -m drsandbox state --endpoint "$EP"

say "checking the end state: the roles as seeded"
state | "$PY" -c '
import json, sys
s = json.load(sys.stdin)
east, west = s["regions"]["us-east-1"], s["regions"]["us-west-2"]
db = lambda r, i: next(d for d in r["databases"] if d["id"] == i)
checks = {
    "us-east-1 holds the writer": db(east, "shop-db-use1")["role"] == "writer" and db(east, "shop-db-use1")["writable"],
    "us-west-2 holds a replica of it": db(west, "shop-db-usw2")["role"] == "replica",
    "Route 53 answers us-east-1": s["route53"]["answer_region"] == "us-east-1",
    "CloudFront prefers us-east-1": s["cloudfront"]["first_origin_region"] == "us-east-1",
    "us-west-2 is back at its warm size": all(g["desired"] == 1 for g in west["asgs"]),
    "no two writable databases traffic can reach": not s["split_brain"],
}
for name, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + name)
sys.exit(0 if all(checks.values()) else 1)
'
curl -fsS "$(sed -n 's/^  public_url: //p' drctl.yaml)/" | grep -o 'served by region=[a-z0-9-]*' | sed 's/^/public name: /'
P=$(phase)
echo "drctl status: $P"
[[ $P = protected ]] || die "expected protected, got $P"

say "drctl report: the failover's report from its journal alone (timeline, who approved, RTO/RPO vs targets)"
FAILOVER_RUN=$(drctl history --output json | "$PY" -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if (r.get("runbook") or "").startswith("warm-standby")]
print(rows[-1]["run_id"] if rows else "")')
[[ -n $FAILOVER_RUN ]] || die "no failover run in the history"
drctl report "$FAILOVER_RUN" | head -20
drctl report "$FAILOVER_RUN" --out "$DEMO/failover-report.html"
drctl verify "$FAILOVER_RUN"
drctl report --history --out "$DEMO/history.html"
say "the second operator's directory sees every run (they are in the table, not in a directory)"
(cd "$DEMO/laptop2" && "$DRCTL" --env drctl.yaml history)
echo "open $DEMO/failover-report.html and $DEMO/history.html in a browser"

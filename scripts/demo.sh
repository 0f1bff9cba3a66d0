#!/usr/bin/env bash
# `make demo`: a two-region sandbox, a readiness check, a us-east-1 outage, and a failover to
# us-west-2 with drctl, ending with the standby serving. Called by the Makefile with SANDBOX_PY
# (the sandbox venv's python) and DRCTL (the built binary). Under ~2 minutes.
#   DEMO_TIME_SCALE  realistic-profile time scale (default 0.2: RDS promotion 4 s, ...)
#   DEMO_OUTAGE=0    planned switchover instead (us-east-1 up; the fence stops the old primary)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${SANDBOX_PY:-$ROOT/.venv/bin/python}
DRCTL=${DRCTL:-$ROOT/target/debug/drctl}
[[ $DRCTL = /* ]] || DRCTL=$ROOT/$DRCTL
DEMO=$ROOT/.demo
SCALE=${DEMO_TIME_SCALE:-0.2}
OUTAGE=${DEMO_OUTAGE:-1}

# The sandbox accepts any credentials; never let the demo touch a real account.
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 DRCTL_PLAIN=1
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_SESSION_TOKEN DRCTL_ENV DRCTL_STATE_DIR
export PYTHONPATH=$ROOT/sandbox${PYTHONPATH:+:$PYTHONPATH}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

rm -rf "$DEMO" && mkdir -p "$DEMO"
say "starting the two-region sandbox (realistic profile, time scale $SCALE)"
"$PY" -m drsandbox serve --port 0 --profile realistic --time-scale "$SCALE" >"$DEMO/sandbox.log" 2>&1 &
SB=$!
trap 'kill "$SB" 2>/dev/null || true; wait "$SB" 2>/dev/null || true' EXIT
EP=
for _ in $(seq 1 600); do
  EP=$(sed -n 's/^listening on //p' "$DEMO/sandbox.log" | head -1)
  [[ -n $EP ]] && break
  kill -0 "$SB" 2>/dev/null || { cat "$DEMO/sandbox.log" >&2; die "the sandbox exited"; }
  sleep 0.1
done
[[ -n $EP ]] || die "the sandbox did not start within 60 s"
echo "sandbox at $EP"
"$PY" -m drsandbox seed --endpoint "$EP" --out "$DEMO"

cd "$DEMO"
say "drctl check: is the standby ready?"
"$DRCTL" check --env drctl.yaml || true

if [[ $OUTAGE = 1 ]]; then
  say "us-east-1 goes dark (requests hang, ALBs stop answering)"
  "$PY" -m drsandbox fault set outage --region us-east-1 --endpoint "$EP"
  # The operator fails over because the primary is down: wait until Route 53 sees it too.
  for _ in $(seq 1 300); do
    "$PY" -m drsandbox state --json --endpoint "$EP" | "$PY" -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["route53"]["health_checks"] and not s["route53"]["health_checks"][0]["healthy"] else 1)' && break
    sleep 0.2
  done
fi

say "drctl failover --region us-west-2 --yes"
START=$(date +%s)
"$DRCTL" failover --region us-west-2 --yes --env drctl.yaml
echo "(wall clock: $(( $(date +%s) - START )) s)"

say "the sandbox now"
"$PY" -m drsandbox state --endpoint "$EP"

say "checking the end state"
"$PY" -m drsandbox state --json --endpoint "$EP" | "$PY" -c '
import json, sys
s = json.load(sys.stdin)
west = s["regions"]["us-west-2"]
checks = {
    "promoted database is the writer": west["writer"] == ["shop-db-usw2"],
    "CloudFront prefers the standby origin": s["cloudfront"]["first_origin_region"] == "us-west-2",
    "Route 53 answers with the standby ALB": s["route53"]["answer_region"] == "us-west-2",
}
for name, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + name)
sys.exit(0 if all(checks.values()) else 1)
'
curl -fsS "$(sed -n 's/^  public_url: //p' drctl.yaml)/" | grep -o 'served by region=[a-z0-9-]*' | sed 's/^/public name: /'

say "a second failover is a no-op"
"$DRCTL" failover --region us-west-2 --yes --env drctl.yaml

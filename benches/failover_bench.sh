#!/usr/bin/env bash
# Failover RTO against the sandbox's own delays (not a test: `make bench-failover`).
#
# For each of RUNS rounds, one failover per mode in MODES (default: all four), each on a fresh
# sandbox with the realistic profile at TIME_SCALE, started from a caught-up replica:
#   unplanned  `failover --mode unplanned`, us-east-1 dark with the global control planes
#              spared (`control_planes: false`, set explicitly: the sandbox's default us-east-1
#              outage now takes them too); the records are swapped through Route 53's API
#   planned    `failover --mode planned`, no fault
#   gated      `serve --dns-port 0`, `seed --gate alarm`, us-east-1 dark *with* the Route 53,
#              CloudFront and IAM APIs (`control_planes: true`), then `failover` (no --mode:
#              unplanned) through runbooks/gated/warm-standby-failover.yaml; exit 0 required,
#              hold_dns and cloudfront_origin deferred
#   gated-arc  the same with `seed --gate arc` (an ARC routing control)
#
#   RTO            run start -> `public_serves` succeeded (the outside check through the public
#                  name: "users are served from us-west-2"), from the journal
#   to run end     run start -> the journal's last event (gated: the deferred steps' 20 s
#                  timeouts, after users are served, dominate it)
#   preflight      command start -> run start: process start, credentials and the read-only
#                  look at both regions before the run (bounded by 4 s: the primary's region
#                  does not answer in an outage); rto_from_command_s = preflight + RTO
#   critical path  the sandbox's own delays on that runbook's critical path, from the profile
#                  seconds the sandbox reports (`state --json`), as if drctl took no time:
#     unplanned:   max(rds_promotion + route53, cloudfront) + route53
#     planned:     max(rds_parameter_apply + rds_promotion + route53, cloudfront) + route53
#                  (the DB CNAME and the held records each wait for one Route 53 change)
#     gated:       the runbook closes the gate only after the promotion (close_gate depends on
#                  promote_replica), waits until the gate *reads* closed, then for DNS to answer
#                  the standby. With P = rds_promotion, M = cloudwatch_minute, I =
#                  health_check_interval (probe period of the seeded RequestInterval-10 check
#                  and the period of the rounds of the checks that probe nothing), T =
#                  health_check_timeout (a black-holed probe fails after it), F = the primary
#                  ALB check's FailureThreshold (read from Route 53 before the fault: 3), d =
#                  run start - fault set, times from the run start:
#                    g = P + e             the gate is in effect for Route 53: alarm, e = the
#                                          wait for the alarm's next evaluation after the
#                                          write, in [0, M); ARC: e = 0 (Off at once)
#                    g' = g, or P          when drctl reads the gate closed: at g, except for
#                                          an alarm in INSUFFICIENT_DATA at the write (the
#                                          steady state: no data for N + 2 periods), where
#                                          drctl reads the value it last wrote (0) and so
#                                          "closed" at once, at P (src/aws/gate.rs)
#                    a = -d + p + (F-1)*I + T   the primary's ALB check turns unhealthy (its
#                                          F-th failed probe; p in [0, I) the first probe's phase)
#                    served = max(g', round(min(a, g)))
#                  where round(x) is the first health-check round at or after x (rounds every I,
#                  phase r in [0, I)): the CALCULATED check on the PRIMARY record turns
#                  unhealthy at the first round after *either* child did, so in an outage the
#                  ALB check often moves the answer before the gate does; the gate is what
#                  holds it when us-east-1 returns (derived checks have no FailureThreshold:
#                  one round). critical_mean_s is the mean of `served` over uniform phases
#                  e, p, r (a 24-point grid each; min and max: critical_lo_s / _hi_s): about
#                  P + M/2 for an alarm in OK, about P for one in INSUFFICIENT_DATA or ARC.
#                  critical_path_s is `served` with this run's own phases: the sandbox is
#                  watched (every ~0.15 s through the control API) for when the alarm's data
#                  gave ALARM (or the routing control read Off), the gate's health check went
#                  unhealthy (the hold), the promoted replica became writable and Route 53
#                  answered the standby (and which check moved it); g is the first alarm
#                  evaluation at or after P (the observed one, or the one a minute earlier if
#                  that was already after P), the answer the observed change if the ALB check
#                  made it, else the first round at or after g. lag_s = RTO - the last of the
#                  observed events drctl waits for: its delay behind the sandbox on the last
#                  hop. By default (ALARM_STATE=steady) a gated run waits, before the fault,
#                  until the alarm is INSUFFICIENT_DATA, as in production; ALARM_STATE=any
#                  does not (the alarm may still be OK from the seed's datapoint). The runs
#                  are spread evenly over a CloudWatch minute (alarm) or a health-check
#                  interval (ARC) by a sleep before the fault, else they would all meet the
#                  same phase.
#   overhead       RTO - critical path: drctl's own time (polling granularity, scheduling,
#                  journaling, calls that return at once); observed times are +-0.1 s
# Prints one line per run and the medians; writes benches/results/failover.json (the runs of
# modes not in MODES are kept from the existing file when its time scale is the same).
#   RUNS=5 TIME_SCALE=1.0 bash benches/failover_bench.sh
#   RUNS=5 TIME_SCALE=0.2 MODES="gated unplanned" bash benches/failover_bench.sh
# KEEP_RUNS=DIR keeps every run's directory (journal, failover.log, observe.jsonl) in DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${SANDBOX_PY:-$ROOT/.venv/bin/python}
DRCTL=${DRCTL:-$ROOT/target/debug/drctl}
# The runs work in temporary directories: a relative path (the Makefile's) must be made absolute.
case $DRCTL in /*) ;; *) DRCTL=$PWD/$DRCTL ;; esac
RUNS=${RUNS:-5}
SCALE=${TIME_SCALE:-1.0}
MODES=${MODES:-unplanned planned gated gated-arc}
OUT=${OUT:-$ROOT/benches/results/failover.json}
KEEP=${KEEP_FAILED:-/tmp}   # a failed run's directory (journal, logs) is copied here
for m in $MODES; do
  case $m in unplanned|planned|gated|gated-arc) ;; *) echo "unknown mode $m (unplanned planned gated gated-arc)" >&2; exit 2 ;; esac
done
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 DRCTL_PLAIN=1
unset AWS_PROFILE AWS_ENDPOINT_URL DRCTL_ENV DRCTL_STATE_DIR
export PYTHONPATH=$ROOT/sandbox${PYTHONPATH:+:$PYTHONPATH}

# --- helpers (Python, on the sandbox's venv) ---------------------------------------------------
cat >"$WORK/fault.py" <<'EOF'
# fault.py ENDPOINT true|false: us-east-1 outage with control_planes as given; checks it took.
import json, sys, urllib.request
ep, cp = sys.argv[1], sys.argv[2] == "true"
def call(method, path, body=None):
    req = urllib.request.Request(ep + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=30))
call("POST", "/_sandbox/faults", {"region": "us-east-1", "kind": "outage", "control_planes": cp})
faults = call("GET", "/_sandbox/faults")["faults"]
assert [bool(f.get("control_planes", False)) for f in faults] == [cp], faults
EOF
cat >"$WORK/hcconfig.py" <<'EOF'
# hcconfig.py ENDPOINT TOPOLOGY: the primary ALB check's RequestInterval and FailureThreshold
# (read from Route 53's API before the fault: it is dark after).
import json, sys, boto3
topo = json.load(open(sys.argv[2]))
r53 = boto3.client("route53", endpoint_url=sys.argv[1], region_name="us-east-1")
c = r53.get_health_check(HealthCheckId=topo["route53"]["health_check_id"])["HealthCheck"]["HealthCheckConfig"]
print(json.dumps({"request_interval": c.get("RequestInterval", 30), "failure_threshold": c.get("FailureThreshold", 3)}))
EOF
cat >"$WORK/observe.py" <<'EOF'
# observe.py ENDPOINT: what the sandbox says, every ~0.25 s, one JSON line each, until killed.
import json, sys, time, urllib.request
ep = sys.argv[1]
get = lambda p: json.load(urllib.request.urlopen(ep + p, timeout=10))
while True:
    t = time.time()
    try:
        st, h = get("/_sandbox/state"), get("/_sandbox/health")
    except Exception as e:  # noqa: BLE001 - a missed sample is only a coarser observation
        print(json.dumps({"t": t, "error": str(e)}), flush=True)
        time.sleep(0.1)
        continue
    print(json.dumps({
        "t": t, "t_end": time.time(),
        "answer_region": st["route53"]["answer_region"],
        "writable_usw2": any(d["writable"] for d in st["regions"]["us-west-2"]["databases"]),
        "checks": {c["id"]: c["healthy"] for c in h["health_checks"]},
        "alarms": {a["name"]: a["evaluated"] for a in h["alarms"]},
        "controls": {rc["arn"]: rc["state"] for c in h["arc"] for p in c["control_panels"]
                     for rc in p["routing_controls"]},
    }), flush=True)
    time.sleep(0.1)
EOF
cat >"$WORK/analyse.py" <<'EOF'
# analyse.py DIR MODE N T0 T1 T_FAULT PROFILE_JSON HC_JSON: one JSON line for the run.
import datetime, glob, json, math, os, sys
d, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0, t1 = float(sys.argv[4]), float(sys.argv[5])
t_fault = float(sys.argv[6]) if sys.argv[6] else None
prof, hc = json.loads(sys.argv[7]), json.loads(sys.argv[8] or "{}")
j = [json.loads(l) for l in open(glob.glob(d + "/.drctl/runs/*/journal.jsonl")[0])]
at = lambda r: datetime.datetime.fromisoformat(r["at"].replace("Z", "+00:00")).timestamp()
start = at(j[0])
done = next(at(r) for r in j if r["type"] == "step_succeeded" and r["step"] == "public_serves")
end = at(j[-1])
rto = done - start
steps = {r["step"]: r["duration_ms"] / 1000 for r in j if r["type"] == "step_succeeded"}
r53, cf, promo, apply = (prof["route53_change_propagation"], prof["cloudfront_deployment"],
                         prof["rds_promotion"], prof["rds_parameter_apply"])
row = {"mode": mode, "run": n, "date": datetime.date.today().isoformat(), "rto_s": round(rto, 3)}
if mode in ("unplanned", "planned"):
    db = promo + r53 + (apply if mode == "planned" else 0)
    critical = max(db, cf) + r53
else:
    P, M = promo, prof["cloudwatch_minute"]
    I = prof["health_check_interval"] * hc["request_interval"] / 10.0   # the ALB check's probe period
    R = prof["health_check_interval"]                                     # rounds of the derived checks
    T, F = prof["health_check_timeout"], hc["failure_threshold"]
    dly = start - t_fault                                                 # the fault came first
    K = 24
    grid = lambda L: [(i + 0.5) * L / K for i in range(K)]
    es = grid(M) if mode == "gated" else [0.0]

    # The alarm's state when drctl writes the 0 (the observer's last sample before the fault):
    # in INSUFFICIENT_DATA (the steady state: no data for N + 2 periods) drctl reads the gate
    # from the value it last wrote, closed at once; in OK it waits for the evaluation.
    topo = json.load(open(os.path.join(d, "topology.json")))
    gate = topo["route53"]["gate"]
    obs = [o for o in (json.loads(l) for l in open(os.path.join(d, "observe.jsonl"))) if "error" not in o]
    before = [o for o in obs if o["t"] < t_fault]
    alarm_before = before[-1]["alarms"].get(gate["alarm"]["name"]) if mode == "gated" and before else None
    waits = mode == "gated" and alarm_before != "INSUFFICIENT_DATA"

    def served(e, p, r, alb=True):
        g = P + e                                   # the gate is in effect for Route 53
        x = min(-dly + p + (F - 1) * I + T, g) if alb else g
        return max(g if waits else P, r + math.ceil((x - r) / R - 1e-9) * R)

    vals = [served(e, p, r) for e in es for p in grid(I) for r in grid(R)]
    gate_only = [served(e, 0.0, r, alb=False) for e in es for r in grid(R)]
    mean = critical = sum(vals) / len(vals)
    row.update(critical_mean_s=round(mean, 3), critical_lo_s=round(min(vals), 3), critical_hi_s=round(max(vals), 3),
               critical_gate_only_s=round(sum(gate_only) / len(gate_only), 3), fault_before_start_s=round(dly, 3))
    # What the sandbox itself did, from the observer's samples.
    alb_id, gate_id = topo["route53"]["health_check_id"], gate["gate_health_check_id"]
    row["alarm_before"] = alarm_before
    def first(pred):
        """The first sample after the fault where pred holds, timed halfway between it and the
        sample before (the change happened in between)."""
        prev = None
        for o in obs:
            if o["t"] >= t_fault and pred(o):
                return dict(o, t=o["t"] if prev is None else (prev["t"] + o["t"]) / 2)
            prev = o
        return None
    if mode == "gated":
        closed = first(lambda o: o["alarms"].get(gate["alarm"]["name"]) == "ALARM")
    else:
        closed = first(lambda o: o["controls"].get(gate["routing_control"]["arn"]) == "Off")
    moved = first(lambda o: o["answer_region"] == "us-west-2")
    writable = first(lambda o: o["writable_usw2"])
    rel = lambda o: None if o is None else round(o["t"] - start, 3)
    by = None
    if moved is not None:
        g_ok, a_ok = moved["checks"].get(gate_id), moved["checks"].get(alb_id)
        by = "alb_check" if g_ok and not a_ok else "gate" if a_ok and not g_ok else "both"
    row.update(sandbox_gate_closed_s=rel(closed), sandbox_answer_moved_s=rel(moved), answer_moved_by=by,
               sandbox_promoted_s=rel(writable), samples=len(obs))
    last = [o["t"] for o in ((closed if waits or mode == "gated-arc" else None), moved, writable) if o is not None]
    row["lag_s"] = round(done - max(last), 3) if len(last) == (3 if waits or mode == "gated-arc" else 2) else None
    # This run's phases, from what the sandbox did: the first alarm evaluation at or after P
    # (the observed one that closed the gate, or the one a minute before it if that was
    # already after P: drctl's own delay made the write miss it), then the first round at or
    # after that (the observed answer change is a round; rounds are R apart).
    gc, mv = rel(closed), rel(moved)
    gate_held = first(lambda o: o["checks"].get(gate_id) is False)   # Route 53 holds: the hold
    row["sandbox_gate_check_unhealthy_s"] = rel(gate_held)
    if mv is not None and (gc is not None or mode == "gated-arc"):
        g = P if mode == "gated-arc" else (gc - M if gc - M >= P else gc)
        # the answer: the observed change if the ALB check made it or it came before g, else
        # the first round at or after g (the observed change is a round; rounds are R apart)
        answer = mv if (mv <= g or by == "alb_check") else mv - math.floor((mv - g) / R + 1e-9) * R
        critical = max(P, g if waits else P, answer)
        row["critical_from"] = "this run's phases"
    else:
        row["critical_from"] = "mean over phases (the sandbox was not observed)"
    row["deferred"] = sorted(r["step"] for r in j if r["type"] == "deferred")
row.update(critical_path_s=round(critical, 3), ratio=round(rto / critical, 3), overhead_s=round(rto - critical, 3),
           run_end_s=round(end - start, 3), command_wall_s=round(t1 - t0, 3), outcome=j[-1].get("status"),
           preflight_s=round(start - t0, 3), rto_from_command_s=round(done - t0, 3),
           steps_s=steps)
print(json.dumps(row))
EOF

one() { # mode n -> appends a JSON line to $WORK/runs.jsonl
  local mode=$1 n=$2 dir=$WORK/$1-$2
  mkdir -p "$dir"
  local serve=() seed=()
  case $mode in
    gated) serve=(--dns-port 0); seed=(--gate alarm) ;;
    gated-arc) serve=(--dns-port 0); seed=(--gate arc) ;;
  esac
  "$PY" -m drsandbox serve --port 0 --profile realistic --time-scale "$SCALE" "${serve[@]}" >"$dir/sandbox.log" 2>&1 &
  local sb=$! ep=
  for _ in $(seq 1 600); do
    ep=$(sed -n 's/^listening on //p' "$dir/sandbox.log" | head -1); [[ -n $ep ]] && break; sleep 0.1
  done
  "$PY" -m drsandbox seed --endpoint "$ep" --out "$dir" "${seed[@]}" >/dev/null
  # Start from a caught-up replica, as a steady-state production pair would be.
  for _ in $(seq 1 600); do
    "$PY" -m drsandbox state --json --endpoint "$ep" | "$PY" -c '
import json,sys; s=json.load(sys.stdin)
sys.exit(0 if any(d["role"]=="replica" and d["status"]=="available" for d in s["regions"]["us-west-2"]["databases"]) else 1)' && break
    sleep 0.5
  done
  sleep "$("$PY" -c "print(65 * $SCALE + 2)")"   # the seeded replica's catch-up, then a fresh datapoint
  local t_fault= hc= obs= args=(--mode "$mode")
  case $mode in
    unplanned) "$PY" "$WORK/fault.py" "$ep" false; t_fault=$("$PY" -c 'import time; print(time.time())') ;;
    gated|gated-arc)
      hc=$("$PY" "$WORK/hcconfig.py" "$ep" "$dir/topology.json")
      if [[ $mode = gated && ${ALARM_STATE:-steady} = steady ]]; then
        # The steady state of the alarm gate: no datapoint for N + 2 periods since the seed's
        # 1, so INSUFFICIENT_DATA (Route 53 keeps the check's last status), as in production
        # days after the gate was last written. ALARM_STATE=any skips this wait.
        for _ in $(seq 1 600); do
          "$PY" -m drsandbox health --json --endpoint "$ep" | "$PY" -c '
import json,sys; h=json.load(sys.stdin)
sys.exit(0 if any(a["evaluated"]=="INSUFFICIENT_DATA" for a in h["alarms"] if a["region"]=="us-west-2") else 1)' && break
          sleep 0.5
        done
      fi
      "$PY" "$WORK/observe.py" "$ep" >"$dir/observe.jsonl" 2>"$dir/observe.err" &
      obs=$!
      # The alarm's evaluations and the health checks' rounds and probes run on a schedule
      # fixed at seeding, and this script's own delays are nearly constant, so without this
      # every run would meet the same phase: spread the runs evenly over a CloudWatch minute
      # (alarm) or a health-check interval (ARC).
      sleep "$("$PY" -m drsandbox state --json --endpoint "$ep" | "$PY" -c "import json,sys; s=json.load(sys.stdin)['profile']['seconds']
print(round(($n - 0.5) / $RUNS * s['cloudwatch_minute' if '$mode' == 'gated' else 'health_check_interval'], 3))")"
      t_fault=$("$PY" -c 'import time; print(time.time())')
      "$PY" "$WORK/fault.py" "$ep" true
      args=() ;;
  esac
  local t0 t1 rc=0
  t0=$("$PY" -c 'import time; print(time.time())')
  (cd "$dir" && "$DRCTL" --env drctl.yaml failover --region us-west-2 --yes --approve-irreversible "${args[@]}" >"$dir/failover.log" 2>&1) || rc=$?
  t1=$("$PY" -c 'import time; print(time.time())')
  [[ -n $obs ]] && { kill "$obs"; wait "$obs" 2>/dev/null || true; }
  if [[ $rc -ne 0 ]]; then
    local keep=$KEEP/failover_bench-$mode-$n-$$
    rm -rf "$keep"; cp -r "$dir" "$keep"
    echo "failover $mode #$n exited $rc (run kept in $keep):"; tail -30 "$dir/failover.log"; exit 1
  fi
  local profile
  profile=$("$PY" -m drsandbox state --json --endpoint "$ep" | "$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["profile"]["seconds"]))')
  kill "$sb"; wait "$sb" 2>/dev/null || true
  [[ -n ${KEEP_RUNS:-} ]] && { mkdir -p "$KEEP_RUNS"; rm -rf "${KEEP_RUNS:?}/$mode-$n"; cp -r "$dir" "$KEEP_RUNS/$mode-$n"; }
  "$PY" "$WORK/analyse.py" "$dir" "$mode" "$n" "$t0" "$t1" "$t_fault" "$profile" "$hc" >>"$WORK/runs.jsonl"
  tail -1 "$WORK/runs.jsonl" | "$PY" -c '
import json,sys; r=json.load(sys.stdin)
line = "{mode:9} #{run}: RTO {rto_s:.2f}s, critical path {critical_path_s:.2f}s, ratio {ratio:.3f}, overhead {overhead_s:.2f}s, run end {run_end_s:.2f}s, preflight {preflight_s:.2f}s, command {command_wall_s:.2f}s".format(**r)
if "lag_s" in r:
    f = lambda v: "?" if v is None else "%.2fs" % v
    line += "; sandbox: promoted {}, gate closed {}, answer moved {} (by {}), hold {}, drctl lag {}; alarm before {}; deferred {}".format(
        f(r["sandbox_promoted_s"]), f(r["sandbox_gate_closed_s"]), f(r["sandbox_answer_moved_s"]), r["answer_moved_by"],
        f(r["sandbox_gate_check_unhealthy_s"]), f(r["lag_s"]), r["alarm_before"], ",".join(r["deferred"]) or "none")
print(line)'
}

for n in $(seq 1 "$RUNS"); do
  for m in $MODES; do one "$m" "$n"; done
done
mkdir -p "$(dirname "$OUT")"
"$PY" - "$WORK/runs.jsonl" "$OUT" "$SCALE" "$MODES" <<'EOF'
import json, os, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
scale, modes = float(sys.argv[3]), sys.argv[4].split()
order = ["unplanned", "planned", "gated", "gated-arc"]
out = {"time_scale": scale, "runs": [], "median": {}}
if os.path.exists(sys.argv[2]):  # keep the other modes' runs measured at the same scale
    old = json.load(open(sys.argv[2]))
    if old.get("time_scale") == scale:
        out["runs"] = [r for r in old.get("runs", []) if r["mode"] not in modes]
        out["median"] = {m: v for m, v in old.get("median", {}).items() if m not in modes}
out["runs"] += runs
KEYS = ("rto_s", "critical_path_s", "critical_mean_s", "ratio", "overhead_s", "run_end_s", "command_wall_s", "preflight_s",
        "rto_from_command_s", "lag_s",
        "sandbox_answer_moved_s", "sandbox_gate_closed_s", "sandbox_gate_check_unhealthy_s")
for mode in [m for m in order if m in modes]:
    rs = [r for r in runs if r["mode"] == mode]
    m = {}
    for k in KEYS:
        v = [r[k] for r in rs if r.get(k) is not None]
        if v:
            m[k] = round(statistics.median(v), 3)
    m["runs"], m["date"] = len(rs), rs[0]["date"]
    out["median"][mode] = m
    extra = f"; drctl lag {m['lag_s']:.2f}s" if "lag_s" in m else ""
    print(f"median {mode:9}: RTO {m['rto_s']:.2f}s / critical path {m['critical_path_s']:.2f}s = {m['ratio']:.3f} "
          f"(overhead {m['overhead_s']:.2f}s, {100 * m['overhead_s'] / m['rto_s']:.1f}% of the RTO); "
          f"run end {m['run_end_s']:.2f}s; preflight {m['preflight_s']:.2f}s; command {m['command_wall_s']:.2f}s{extra}")
out["median"] = {k: out["median"][k] for k in order if k in out["median"]}
json.dump(out, open(sys.argv[2], "w"), indent=1)
EOF

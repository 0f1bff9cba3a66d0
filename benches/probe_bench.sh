#!/usr/bin/env bash
# Probe benchmark: one `drctl watch` probing 10,000 loopback targets at a 1 s interval (CPU per
# probe, RSS, latency), detection time of a black-holed primary over 20 trials, and the same
# targets through prometheus-blackbox-exporter as the yardstick, in the same run.
#
#   bash benches/probe_bench.sh                 # defaults: TARGETS=10000 WINDOW=60 TRIALS=20
#   TARGETS=2000 WINDOW=20 TRIALS=5 bash benches/probe_bench.sh   # a quick one
#
# Loopback only; bounded (the driver gives up after 25 minutes); stops by itself and stops every
# process it started. Never part of `cargo test`. Results: benches/results/latest.json, and the
# table to copy into benches/RESULTS.md is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS="${TARGETS:-10000}"
WINDOW="${WINDOW:-60}"
TRIALS="${TRIALS:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/drctl-target}"

# The yardstick, installed by this script (Debian package).
if ! command -v prometheus-blackbox-exporter >/dev/null; then
  echo "installing prometheus-blackbox-exporter" >&2
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends prometheus-blackbox-exporter
fi

# Optimised build of drctl and of the load server. Thin LTO is turned off only to keep the
# build short on a 2-core machine; it changes little at run time.
export CARGO_PROFILE_RELEASE_LTO=false
cargo build --release --bin drctl --bench load_server --message-format=json-render-diagnostics > target-artifacts.json.tmp
LOAD=$(python3 -c '
import json, sys
for line in open("target-artifacts.json.tmp"):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "load_server" and m.get("executable"):
        print(m["executable"])')
rm -f target-artifacts.json.tmp
DRCTL="$CARGO_TARGET_DIR/release/drctl"

# Room for many sockets.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p benches/results
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)" >&2
timeout 1800 python3 benches/probe_bench.py --drctl "$DRCTL" --load-server "$LOAD" \
  --targets "$TARGETS" --window "$WINDOW" --trials "$TRIALS" --out benches/results/latest.json
python3 - <<'PY'
import json
r = json.load(open("benches/results/latest.json"))
d, b, t, q = r["drctl"], r["blackbox"], r["detection"], r["ratios"]
print(f"""
| {r['targets']} targets, 1 s interval, {r['window_s']} s window | drctl watch | {b['version']} |
|---|---|---|
| probes/s achieved | {d['probes_per_s']:.0f} | {b['probes_per_s']:.0f} (ok {b['ok']}, failed {b['failed']}, scrape errors {b['scrape_errors']}, missed slots {b['missed_slots']}) |
| CPU (cores) | {d['cpu_cores']:.3f} | {b['cpu_cores']:.3f} (+ scraper {b['scraper_cpu_cores']:.3f}) |
| CPU per probe | {d['cpu_us_per_probe']:.1f} us | {b['cpu_us_per_probe']:.1f} us |
| RSS (peak) | {d['rss_mib']:.0f} MiB ({d['peak_rss_mib']:.0f}) | {b['rss_mib']:.0f} MiB ({b['peak_rss_mib']:.0f}) |
| load server CPU (cores) | {d['load_server_cpu_cores']:.3f} | {b['load_server_cpu_cores']:.3f} |

Ratios: CPU per probe blackbox/drctl = {q['cpu_per_probe_blackbox_over_drctl']:.2f}; RSS blackbox/drctl = {q['rss_blackbox_over_drctl']:.2f}.
drctl probe latency (histogram bucket bounds): p50 <= {d['latency_p50_le_ms']:.1f} ms, p99 <= {d['latency_p99_le_ms']:.1f} ms; skipped slots {d['skipped_slots']:.0f}.

Detection, {t['trials']} trials under that load (limit threshold x interval + timeout = {t['limit_s']:.1f} s):
black hole -> down: median {t['to_down_median_s']:.2f} s (min {t['to_down_min_s']:.2f}, max {t['to_down_max_s']:.2f}); {t['within_limit']}/{t['trials']} within the limit.
black hole -> decision: median {t['to_decision_median_s']:.2f} s (max {t['to_decision_max_s']:.2f}), confirm_for 0 s.
""")
PY

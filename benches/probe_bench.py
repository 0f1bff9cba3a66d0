#!/usr/bin/env python3
"""Driver of benches/probe_bench.sh (run that, not this). Standard library only.

Phase A: one `drctl watch` probes N targets at a 1 s interval against local listeners (the Rust
load server); CPU per probe, RSS and latency are measured over a window, then the primary's
listener is black-holed TRIALS times under that load and the times to `down` and to the decision
are read from the watch's JSON records.
Phase B (the yardstick): the same targets through prometheus-blackbox-exporter, each target's
/probe fetched once per second by a scraper standing in for Prometheus.
Everything is on loopback, every wait is bounded, and every child is stopped by its pid.
"""

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
CHILDREN = []


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


def mem_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def http_get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def start(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    CHILDREN.append(p)
    return p


def stop(p, timeout=15):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def metrics_summary(text):
    """Total probes and the latency histogram summed over all targets."""
    count = 0.0
    buckets = {}
    skipped = 0.0
    for line in text.splitlines():
        if line.startswith("drctl_probe_duration_seconds_count{"):
            count += float(line.rsplit(" ", 1)[1])
        elif line.startswith("drctl_probe_duration_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            le = float("inf") if le == "+Inf" else float(le)
            buckets[le] = buckets.get(le, 0.0) + float(line.rsplit(" ", 1)[1])
        elif line.startswith("drctl_probes_skipped_total "):
            skipped = float(line.rsplit(" ", 1)[1])
    return count, buckets, skipped


def quantile(buckets0, buckets1, q):
    """Upper bound of the bucket holding quantile q of the probes observed between two scrapes."""
    diff = sorted((le, buckets1[le] - buckets0.get(le, 0.0)) for le in buckets1)
    total = diff[-1][1] if diff else 0
    for le, c in diff:
        if total and c >= q * total:
            return le
    return float("nan")


class Records:
    """Reads the watch's JSON lines as they are written."""

    def __init__(self, path):
        self.path, self.pos, self.items = path, 0, []

    def poll(self):
        with open(self.path) as f:
            f.seek(self.pos)
            data = f.read()
        cut = data.rfind("\n") + 1
        self.pos += len(data[:cut].encode())
        for line in data[:cut].splitlines():
            try:
                self.items.append(json.loads(line))
            except ValueError:
                pass
        return self.items

    def find(self, since, pred):
        for r in self.poll()[since:]:
            if pred(r):
                return r
        return None


def ts(s):
    # RFC 3339 with nanoseconds -> epoch seconds (float).
    from datetime import datetime
    base, frac = s.rstrip("Z").split(".") if "." in s else (s.rstrip("Z"), "0")
    return datetime.fromisoformat(base + "+00:00").timestamp() + float("0." + frac)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--drctl", required=True)
    ap.add_argument("--load-server", required=True)
    ap.add_argument("--targets", type=int, default=10000)
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    deadline = time.monotonic() + 1500
    work = tempfile.mkdtemp(prefix="drctl-bench-")
    res = {"targets": a.targets, "interval_s": 1.0, "timeout_s": 0.8, "failure_threshold": 3, "window_s": a.window}

    # Listeners: 10 addresses x 100 ports; the first two are the primary's and the standby's own.
    addrs, ports = 10, 100
    load = start([a.load_server, "serve", "--addrs", str(addrs), "--ports", str(ports), "--ports-from", "20000",
                  "--control", "127.0.0.1:19999"], stdout=subprocess.PIPE, text=True)
    line = load.stdout.readline()
    assert line.startswith("ready"), line
    listeners = [f"127.1.0.{i}:{p}" for i in range(1, addrs + 1) for p in range(20000, 20000 + ports)]
    primary, standby = listeners[0], listeners[1]
    fillers = listeners[2:]
    urls = [f"http://{primary}/health", f"http://{standby}/health"]
    urls += [f"http://{fillers[i % len(fillers)]}/t/{i}" for i in range(a.targets - 2)]
    with open(os.path.join(work, "targets.txt"), "w") as f:
        f.write("\n".join(urls) + "\n")

    env = ["name: bench", "primary_region: us-east-1", "standby_region: us-west-2",
           "regions:", "  us-east-1: {}", "  us-west-2: {}", "  eu-west-1: {}",
           "probes:", "  interval: 1s", "  timeout: 800ms", "  jitter: 100ms", "  failure_threshold: 3",
           "  recovery_threshold: 2", "  max_in_flight: 4096", "  watch:", "    primary: [primary]",
           "    standby: [standby]", "    confirm_for: 0s", "    cooldown: 0s", "    action: notify",
           "  targets:"]
    for i, u in enumerate(urls):
        name, region = ("primary", "us-east-1") if i == 0 else ("standby", "us-west-2") if i == 1 else (f"t{i}", "eu-west-1")
        env += [f"    - name: {name}", f"      region: {region}", f"      http: {{url: '{u}', body_contains: ok}}"]
    with open(os.path.join(work, "drctl.yaml"), "w") as f:
        f.write("\n".join(env) + "\n")

    # ---------------------------------------------------------------- phase A: drctl watch
    out = os.path.join(work, "watch.jsonl")
    with open(out, "w") as o, open(os.path.join(work, "watch.err"), "w") as e:
        watch = start([a.drctl, "watch", "--env", os.path.join(work, "drctl.yaml"), "--listen", "127.0.0.1:19464",
                       "--output", "json", "--state-dir", os.path.join(work, "state")], stdout=o, stderr=e)
    recs = Records(out)
    wait_until(lambda: recs.find(0, lambda r: r.get("event") == "transition" and r["target"] == "primary" and r["to"] == "healthy"), 30, "primary healthy")
    time.sleep(a.warmup)
    m0 = metrics_summary(http_get("http://127.0.0.1:19464/metrics"))
    c0, l0, t0 = cpu_seconds(watch.pid), cpu_seconds(load.pid), time.monotonic()
    time.sleep(a.window)
    c1, l1, t1 = cpu_seconds(watch.pid), cpu_seconds(load.pid), time.monotonic()
    m1 = metrics_summary(http_get("http://127.0.0.1:19464/metrics"))
    mem = mem_kib(watch.pid)
    probes = m1[0] - m0[0]
    res["drctl"] = {
        "probes": probes, "probes_per_s": probes / (t1 - t0), "cpu_s": c1 - c0,
        "cpu_cores": (c1 - c0) / (t1 - t0), "cpu_us_per_probe": 1e6 * (c1 - c0) / max(probes, 1),
        "rss_mib": mem["VmRSS"] / 1024, "peak_rss_mib": mem["VmHWM"] / 1024,
        "latency_p50_le_ms": 1000 * quantile(m0[1], m1[1], 0.5), "latency_p99_le_ms": 1000 * quantile(m0[1], m1[1], 0.99),
        "skipped_slots": m1[2] - m0[2], "load_server_cpu_cores": (l1 - l0) / (t1 - t0),
    }
    print("drctl:", json.dumps(res["drctl"]), flush=True)

    # Detection trials under the same load.
    trials = []
    for n in range(a.trials):
        if time.monotonic() > deadline - 120:
            break
        since = len(recs.poll())
        t_hole = time.time()
        http_get(f"http://127.0.0.1:19999/blackhole/{primary}")
        down = wait_until(lambda: recs.find(since, lambda r: r.get("event") == "transition" and r["target"] == "primary" and r["to"] == "down"), 15, "down")
        dec = wait_until(lambda: recs.find(since, lambda r: r.get("event") == "decision" and r["decision"] == "act"), 15, "decision")
        trials.append({"to_down_s": ts(down["at"]) - t_hole, "to_decision_s": ts(dec["at"]) - t_hole, "reason": down["reason"]})
        print(f"trial {n + 1}: down after {trials[-1]['to_down_s']:.3f}s, decision after {trials[-1]['to_decision_s']:.3f}s", flush=True)
        since = len(recs.poll())
        http_get(f"http://127.0.0.1:19999/up/{primary}")
        wait_until(lambda: recs.find(since, lambda r: r.get("event") == "transition" and r["target"] == "primary" and r["to"] == "healthy"), 15, "recovery")
        time.sleep(random.uniform(0.2, 1.2))  # desynchronise the fault from the probe schedule
    stop(watch)
    d = [t["to_down_s"] for t in trials]
    k = [t["to_decision_s"] for t in trials]
    res["detection"] = {
        "trials": len(trials), "limit_s": 3 * 1.0 + 0.8,
        "to_down_median_s": statistics.median(d), "to_down_min_s": min(d), "to_down_max_s": max(d),
        "to_decision_median_s": statistics.median(k), "to_decision_max_s": max(k),
        "within_limit": sum(1 for x in d if x <= 3.8), "runs": trials,
    }

    # ---------------------------------------------------------------- phase B: blackbox exporter
    bb_cfg = os.path.join(work, "blackbox.yml")
    with open(bb_cfg, "w") as f:
        f.write("modules:\n  http_2xx:\n    prober: http\n    timeout: 800ms\n    http:\n"
                "      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n      follow_redirects: false\n"
                "      fail_if_body_not_matches_regexp: [ok]\n")
    bb = start(["prometheus-blackbox-exporter", f"--config.file={bb_cfg}", "--web.listen-address=127.0.0.1:19115",
                "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "bb.err"), "w"))
    wait_until(lambda: _up("http://127.0.0.1:19115/metrics"), 20, "blackbox exporter")
    tfile = os.path.join(work, "targets.txt")
    warm = start([a.load_server, "scrape", "--exporter", "127.0.0.1:19115", "--targets", tfile, "--duration", f"{a.warmup}s"],
                 stdout=subprocess.DEVNULL)
    warm.wait(a.warmup + 30)
    b0, s_t0 = cpu_seconds(bb.pid), time.monotonic()
    l0 = cpu_seconds(load.pid)
    sc_out = os.path.join(work, "scrape.json")
    with open(sc_out, "w") as o:
        scraper = start([a.load_server, "scrape", "--exporter", "127.0.0.1:19115", "--targets", tfile, "--duration", f"{a.window}s"],
                        stdout=o)
    # wait4 gives the scraper's own CPU time (it stands in for Prometheus; reported apart).
    _, status, ru = os.wait4(scraper.pid, 0)
    scraper.returncode = status
    b1, s_t1 = cpu_seconds(bb.pid), time.monotonic()
    l1 = cpu_seconds(load.pid)
    with open(sc_out) as f:
        sc = json.loads(f.read().strip().splitlines()[-1])
    bmem = mem_kib(bb.pid)
    bprobes = sc["ok"] + sc["failed"]
    res["blackbox"] = {
        "probes": bprobes, "probes_per_s": bprobes / a.window, "ok": sc["ok"], "failed": sc["failed"], "scrape_errors": sc["errors"], "missed_slots": sc["missed"],
        "cpu_s": b1 - b0, "cpu_cores": (b1 - b0) / (s_t1 - s_t0), "cpu_us_per_probe": 1e6 * (b1 - b0) / max(bprobes, 1),
        "rss_mib": bmem["VmRSS"] / 1024, "peak_rss_mib": bmem["VmHWM"] / 1024,
        "load_server_cpu_cores": (l1 - l0) / (s_t1 - s_t0),
        "scraper_cpu_cores": (ru.ru_utime + ru.ru_stime) / (s_t1 - s_t0), "version": _version(),
    }
    print("blackbox:", json.dumps(res["blackbox"]), flush=True)
    stop(bb)
    stop(load)
    res["ratios"] = {
        "cpu_per_probe_blackbox_over_drctl": res["blackbox"]["cpu_us_per_probe"] / res["drctl"]["cpu_us_per_probe"],
        "rss_blackbox_over_drctl": res["blackbox"]["rss_mib"] / res["drctl"]["rss_mib"],
        "probes_per_s_drctl_over_blackbox": res["drctl"]["probes_per_s"] / max(res["blackbox"]["probes_per_s"], 1e-9),
    }
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res["ratios"]))


def _version():
    r = subprocess.run(["prometheus-blackbox-exporter", "--version"], capture_output=True, text=True)
    lines = (r.stdout + r.stderr).splitlines()
    return lines[0] if lines else "blackbox_exporter, version unknown"


def _up(url):
    try:
        http_get(url, timeout=2)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    # A SIGTERM (the shell's timeout) still stops every child through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    finally:
        for p in CHILDREN:
            try:
                stop(p, 5)
            except Exception:  # noqa: BLE001 - cleanup must reach every child
                pass

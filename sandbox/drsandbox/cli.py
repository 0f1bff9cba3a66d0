"""Command line: ``python -m drsandbox serve | seed | new-ami | fault | listener | lag | state |
health | snapshot | clock | iam``.

``iam enforce | off | show | admin`` switches IAM enforcement (see iam.py) and prints the
sandbox admin user's credentials (``export AWS_ACCESS_KEY_ID=...`` lines).

``health`` lists the ARC clusters' endpoints and routing controls, the CloudWatch alarms and
the Route 53 health checks (``GET /_sandbox/health``).

``snapshot save NAME`` / ``snapshot restore NAME`` save the running sandbox's whole state in
its memory and bring it back (see snapshot.py); ``clock pause | resume | step [--seconds N]``
stops the sandbox's clock and moves it by hand (see clock.py).

``new-ami`` is last night's backup reaching the standby: one primary frontend instance is
backed up and the recovery point copied into the standby vault (see new_ami.py); it prints
one JSON line ``{"recovery_point_arn", "copied_ami_id", "region"}``.

Exit codes: 0 ok; 1 the sandbox could not be reached or failed; 2 bad input (unknown fault
kind, region, service, mode or profile file), in which case nothing was changed.
``--endpoint`` defaults to the environment variable DRSANDBOX_ENDPOINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.parse
from urllib.parse import urlparse

from .control_client import Unreachable, UsageError, call
from .faults import CONTROL_PLANE_REGION, ERROR_KINDS, KINDS, FaultError, check_region, parse_fault
from .listeners import MODES


def _endpoint(args) -> str:
    ep = args.endpoint or os.environ.get("DRSANDBOX_ENDPOINT")
    if not ep:
        raise UsageError("no endpoint: pass --endpoint URL or set DRSANDBOX_ENDPOINT")
    return ep


# --------------------------------------------------------------------------- commands

def cmd_serve(args) -> int:
    from .profile import ProfileError, load

    try:
        profile = load(args.profile, args.time_scale)
    except ProfileError as e:
        raise UsageError(str(e)) from e
    if args.dns_answers is not None:
        profile.settings["dns_answers"] = args.dns_answers
    if args.dns_port is not None and not 0 <= args.dns_port <= 65535:
        raise UsageError(f"--dns-port must be 0-65535, got {args.dns_port}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from .server import Sandbox

    sandbox = Sandbox(profile, host=args.host, port=args.port, dns_port=args.dns_port, iam_mode=args.iam)
    try:
        url = sandbox.start()
    except OSError as e:
        print(f"drsandbox: cannot listen on {args.host}:{args.port}"
              f"{'' if args.dns_port is None else f' (or UDP {args.dns_port})'}: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"listening on {url}", flush=True)
    while not stop.wait(0.2):
        pass
    sandbox.stop()
    # Everything is shut down; skip tearing down moto's large in-memory state object by
    # object (seconds on a busy machine) and leave right away.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cmd_seed(args) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from .seed import SeedError, seed

    t0 = time.monotonic()
    try:
        topo = seed(_endpoint(args), args.out, args.domain, reset=args.reset,
                    state_backend=args.state_backend, gate=args.gate)
    except (SeedError, ClientError, BotoCoreError) as e:
        print(f"drsandbox: seeding failed: {e}", file=sys.stderr)
        return 1
    print(f"seeded {topo['domain']} in {time.monotonic() - t0:.1f}s: "
          f"{os.path.join(args.out, 'topology.json')}, {os.path.join(args.out, 'drctl.yaml')}"
          + (f" (gate: {args.gate})" if args.gate != "none" else ""), flush=True)
    return 0


def cmd_new_ami(args) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from .new_ami import new_ami
    from .seed import SeedError

    endpoint = _endpoint(args)
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"bad endpoint {endpoint!r}: expected a URL such as http://127.0.0.1:PORT")
    if args.dir is not None and not os.path.isdir(args.dir):
        raise UsageError(f"--dir {args.dir}: no such directory")
    try:
        out = new_ami(endpoint, args.dir)
    except (SeedError, ClientError, BotoCoreError) as e:
        print(f"drsandbox: new-ami failed: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    print(json.dumps(out), flush=True)
    return 0


def cmd_fault_set(args) -> int:
    body: dict = {"region": args.region, "service": args.service, "kind": args.kind}
    if args.client is not None:
        body["client"] = args.client
    if args.control_planes is not None:  # else the server's default (harsh for a us-east-1 outage)
        body["control_planes"] = args.control_planes
    if args.kind == "errors":
        body["rate"] = 1.0 if args.rate is None else args.rate
        body["error"] = args.error or "5xx"
    elif args.rate is not None or args.error is not None:
        raise UsageError("--rate and --error only apply to 'errors'")
    if args.kind == "latency":
        if args.ms is None:
            raise UsageError("latency needs --ms N")
        body["ms"] = args.ms
    elif args.ms is not None:
        raise UsageError("--ms only applies to 'latency'")
    try:
        parse_fault(body)  # same validation as the server, before touching it
    except FaultError as e:
        raise UsageError(str(e)) from e
    out = call(_endpoint(args), "POST", "/_sandbox/faults", body)
    print(out["id"])
    return 0


def cmd_fault_clear(args) -> int:
    path = "/_sandbox/faults"
    if args.region:
        try:
            check_region(args.region)
        except FaultError as e:
            raise UsageError(str(e)) from e
        path += f"?region={args.region}"
    if args.client:
        path += ("&" if "?" in path else "?") + "client=" + urllib.parse.quote(args.client, safe="")
    out = call(_endpoint(args), "DELETE", path)
    print(f"cleared {out.get('cleared', 0)} fault(s)")
    return 0


def cmd_fault_list(args) -> int:
    out = call(_endpoint(args), "GET", "/_sandbox/faults")
    if args.json:
        print(json.dumps(out, indent=2))
    for f in out["faults"] if not args.json else []:
        print(_fault_line(f))
    return 0


def _fault_line(f: dict) -> str:
    extra = ""
    if f["kind"] == "errors":
        extra = f" rate={f['rate']} error={f['error']}"
    elif f["kind"] == "latency":
        extra = f" ms={f['ms']}"
    if f.get("client"):
        extra += f" client={f['client']}"
    if f.get("control_planes"):
        extra += " +control-planes"
    elif f["region"] == CONTROL_PLANE_REGION and f["service"] is None:
        extra += " -control-planes"  # the global control planes there keep answering
    return f"{f['id']}  {f['region']}  {f['service'] or '*'}  {f['kind']}{extra}"


def cmd_listener_set(args) -> int:
    if args.mode not in MODES:
        raise UsageError(f"unknown mode {args.mode!r}: expected one of {', '.join(MODES)}")
    body = {"name": args.name, "mode": args.mode}
    if args.delay_ms is not None:
        body["delay_ms"] = args.delay_ms
    if args.addresses is not None:
        body["addresses"] = "rotate" if args.addresses == "rotate" else [a for a in args.addresses.split(",") if a]
    out = call(_endpoint(args), "POST", "/_sandbox/listeners", body)
    l = out["listener"]
    print(f"{l['name']} {l['mode']} {l['url']}")
    return 0


def cmd_listener_list(args) -> int:
    out = call(_endpoint(args), "GET", "/_sandbox/listeners")
    for l in out["listeners"]:
        addresses = ",".join(l.get("addresses") or [])
        print(f"{l['name']:<28} {l['region'] or '-':<10} {l['effective_mode']:<9} {l['url']}  {l.get('dns_name', '')}"
              + (f"  {addresses}" if addresses else ""))
    return 0


def cmd_lag_set(args) -> int:
    seconds = None if args.seconds.lower() in ("none", "null", "auto") else _number(args.seconds)
    out = call(_endpoint(args), "POST", "/_sandbox/replica-lag",
               {"region": args.region, "instance_id": args.instance_id, "seconds": seconds})
    print(f"{args.region}/{args.instance_id} ReplicaLag={out['published']}")
    return 0


def _number(s: str) -> float:
    try:
        return float(s)
    except ValueError as e:
        raise UsageError(f"seconds must be a number or 'auto', got {s!r}") from e


def cmd_snapshot_save(args) -> int:
    body = {"name": args.name}
    if args.wait is not None:
        body["wait"] = args.wait
    out = call(_endpoint(args), "POST", "/_sandbox/snapshot", body, timeout=max(15.0, (args.wait or 10) + 60))["snapshot"]
    print(f"saved {out['name']} ({out['bytes']} bytes) in {out['took']:.3f}s")
    return 0


def cmd_snapshot_restore(args) -> int:
    out = call(_endpoint(args), "POST", "/_sandbox/restore", {"name": args.name}, timeout=90)["restored"]
    print(f"restored {out['name']} in {out['took']:.3f}s")
    if out.get("moved"):
        print(f"drsandbox: listeners on new ports (their saved ports are taken): {', '.join(out['moved'])}",
              file=sys.stderr)
    return 0


def cmd_snapshot_list(args) -> int:
    out = call(_endpoint(args), "GET", "/_sandbox/snapshots")
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for snap in out["snapshots"]:
        print(f"{snap['name']:<24} {snap['bytes']:>10} bytes  saved {time.strftime('%H:%M:%S', time.localtime(snap['created']))}")
    return 0


def cmd_snapshot_delete(args) -> int:
    call(_endpoint(args), "DELETE", "/_sandbox/snapshots?name=" + urllib.parse.quote(args.name, safe=""))
    print(f"deleted {args.name}")
    return 0


def _clock_line(c: dict) -> str:
    line = f"clock {'paused' if c['paused'] else 'running'} at {c['now']:.3f}; {c['pending']} transition(s) pending"
    if c.get("next_transition_in") is not None:
        line += f", next in {c['next_transition_in']:.3f}s"
    if c.get("next_deadline_in") is not None:
        line += f"; next deadline in {c['next_deadline_in']:.3f}s"
    return line


def cmd_clock(args) -> int:
    ep = _endpoint(args)
    if args.action == "show":
        out = call(ep, "GET", "/_sandbox/clock")
    elif args.action in ("pause", "resume"):
        out = call(ep, "POST", "/_sandbox/clock", {"paused": args.action == "pause"})
    else:
        if args.seconds is not None and not 0 <= args.seconds <= 86400:
            raise UsageError("--seconds must be between 0 and 86400")
        out = call(ep, "POST", "/_sandbox/clock/step", {} if args.seconds is None else {"seconds": args.seconds},
                   timeout=120)
        print(f"advanced {out['advanced']:.3f}s, ran {out['ran']} transition(s)")
    print(_clock_line(out))
    return 0


def cmd_iam(args) -> int:
    ep = _endpoint(args)
    if args.action in ("enforce", "off"):
        out = call(ep, "POST", "/_sandbox/iam", {"mode": args.action})
    elif args.action == "admin":
        admin = call(ep, "POST", "/_sandbox/iam/admin", {})["admin"]
        if args.json:
            print(json.dumps(admin, indent=2))
        else:
            print(f"export AWS_ACCESS_KEY_ID={admin['access_key_id']}")
            print(f"export AWS_SECRET_ACCESS_KEY={admin['secret_access_key']}")
        return 0
    else:
        out = call(ep, "GET", "/_sandbox/iam")
    print(json.dumps(out, indent=2) if args.json else f"iam {out['mode']} (serve default: {out['default_mode']})")
    return 0


def cmd_health(args) -> int:
    out = call(_endpoint(args), "GET", "/_sandbox/health")
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for c in out["arc"]:
        print(f"ARC cluster {c['name']} {c['status']} {c['arn']}{'' if c['quorum'] else '  NO QUORUM'}")
        for e in c["endpoints"]:
            print(f"  endpoint {e['region']:<15} {e['url']}{'  (dark)' if e['dark'] else ''}")
        for p in c["control_panels"]:
            for rc in p["routing_controls"]:
                print(f"  routing control {p['name']}/{rc['name']} {rc['state']} ({rc['status']}) {rc['arn']}")
    for a in out["alarms"]:
        print(f"alarm {a['region']}/{a['name']} {a['state']} (data: {a['evaluated']}){'  (dark)' if a['dark'] else ''}")
    for h in out["health_checks"]:
        print(f"health check {h['id']} {h['type']} {'healthy' if h['healthy'] else 'UNHEALTHY'}")
    return 0


def cmd_state(args) -> int:
    st = call(_endpoint(args), "GET", "/_sandbox/state")
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(render_state(st))
    return 0


def render_state(st: dict) -> str:
    lines = []
    prof = st.get("profile", {})
    lines.append(f"profile   {prof.get('name')} (time scale {prof.get('time_scale')})")
    for region, r in st["regions"].items():
        dbs = []
        for d in r["databases"]:
            if d["role"] == "writer":
                mode = "writable" if d.get("writable") else \
                    (f"read_only via {d.get('parameter_group')}" if d.get("read_only") else "not writable")
                pending = "" if d.get("parameter_apply_status", "in-sync") == "in-sync" else \
                    f", {d.get('parameter_group')} {d['parameter_apply_status']}"
                dbs.append(f"writer {d['id']} ({d['status']}, {mode}{pending})")
            else:
                dbs.append(f"replica {d['id']} <- {d['source']} ({d['status']})")
        asgs = ", ".join(f"{a['name']} {a['in_service']}/{a['desired']} InService (max {a['max']})" for a in r["asgs"])
        dark = "  [DARK: outage]" if r["dark"] else ""
        lines.append(f"{region:<10}{'; '.join(dbs) or 'no database'}{dark}")
        if asgs:
            lines.append(f"{'':<10}ASGs: {asgs}")
        if r.get("app_database"):
            lines.append(f"{'':<10}app database (db CNAME): {r['app_database']} ({r.get('app_database_region')})")
    r53 = st.get("route53", {})
    if r53.get("record"):
        lines.append(f"route53   {r53['record']} -> {r53.get('answer')} "
                     f"({r53.get('failover') or 'simple'}, {r53.get('answer_region') or '?'})")
    for hc in r53.get("health_checks", []):
        lines.append(f"{'':<10}health check {hc['id']} {hc['target']}: {'healthy' if hc['healthy'] else 'UNHEALTHY'}")
    cf = st.get("cloudfront", {})
    if cf.get("distribution_id"):
        lines.append(f"cloudfront {cf['distribution_id']} first origin {cf['first_origin']} "
                     f"({cf.get('first_origin_region') or '?'}), {cf['status']}")
    if "reachable_writers" in st:
        writers = ", ".join(st["reachable_writers"]) or "none"
        lines.append(f"traffic   reaches {', '.join(st.get('reachable_regions') or []) or 'no region'}; "
                     f"writable databases reached: {writers}" + ("  [SPLIT BRAIN]" if st.get("split_brain") else ""))
    faults = st.get("faults", [])
    lines.append("faults    " + ("; ".join(_fault_line(f) for f in faults) if faults else "none"))
    return "\n".join(lines)


# --------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m drsandbox",
                                description="drsandbox: a two-region AWS sandbox (moto + honest fixes) for drctl")
    sub = p.add_subparsers(dest="command", required=True)

    def endpoint(sp):
        sp.add_argument("--endpoint", help="sandbox URL (default: $DRSANDBOX_ENDPOINT)")

    s = sub.add_parser("serve", help="run the sandbox until SIGTERM/SIGINT")
    s.add_argument("--port", type=int, default=0, help="0 picks a free port")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--profile", default="realistic", help="instant, realistic, or a JSON/YAML file")
    s.add_argument("--time-scale", type=float, default=1.0, help="multiply every duration (e.g. 0.5)")
    s.add_argument("--verbose", action="store_true", help="log every request to stderr")
    s.add_argument("--iam", choices=["off", "enforce"], default="off",
                   help="enforce: authenticate AWS requests against the sandbox's IAM users and authorize them "
                        "against their policies (default off: any credentials work)")
    s.add_argument("--dns-answers", choices=["names", "addresses"],
                   help="what TestDNSAnswer and the public edge answer for an alias A record: the target's DNS "
                        "name or its addresses, as AWS (default: the profile's dns_answers, names)")
    s.add_argument("--dns-port", type=int,
                   help="also serve DNS over UDP on HOST:PORT (0 picks a free port; GET /_sandbox/healthz "
                        "names it): ALB names and public zone records, answered with addresses")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("seed", help="create the two-region warm-standby topology")
    endpoint(s)
    s.add_argument("--out", required=True, help="directory for topology.json and drctl.yaml")
    s.add_argument("--domain", default="example.test")
    s.add_argument("--reset", action="store_true", help="forget all sandbox state first")
    s.add_argument("--state-backend", choices=["file", "dynamodb"], default="file",
                   help="where drctl.yaml keeps runs and the lease (dynamodb: table drctl-state in us-east-2)")
    s.add_argument("--gate", choices=["none", "arc", "alarm"], default="none",
                   help="also gate the primary's failover records (api.<domain>, and origin.<domain>: CloudFront's "
                        "primary origin) with a CALCULATED health check over the ALB's check and a gate drctl "
                        "controls from outside us-east-1: an ARC routing control (arc) or a CloudWatch alarm in "
                        "us-west-2 (alarm); drctl.yaml route53.gate names it (default: none). With serve --dns-port, "
                        "route53.name_servers names the UDP DNS server, gate or not")
    s.set_defaults(func=cmd_seed)

    s = sub.add_parser("new-ami", help="last night's backup: back up a primary frontend instance, copy it to "
                                      "the standby vault, print the copy as JSON")
    endpoint(s)
    s.add_argument("--dir", help="the seed's --out directory (its topology.json names the vaults and ASG); "
                                 "default: find them through the API")
    s.set_defaults(func=cmd_new_ami)

    f = sub.add_parser("fault", help="inject or clear faults").add_subparsers(dest="action", required=True)
    s = f.add_parser("set", help="add a fault")
    s.add_argument("kind", choices=KINDS)
    s.add_argument("--region", required=True)
    s.add_argument("--service", help="signing name (rds, ec2, route53, ...); default: every regional service")
    s.add_argument("--rate", type=float, help="errors: fraction of requests, 0..1 (default 1)")
    s.add_argument("--error", choices=ERROR_KINDS, help="errors: throttle or 5xx (default 5xx)")
    s.add_argument("--ms", type=int, help="latency: added delay in milliseconds")
    s.add_argument("--client", help="only requests of this client (X-Drctl-Client header or app/NAME in the "
                                    "User-Agent); default: every client")
    cp = s.add_mutually_exclusive_group()
    cp.add_argument("--control-planes", dest="control_planes", action="store_true", default=None,
                    help="us-east-1 without --service: also the global control planes hosted there (the Route 53, "
                         "CloudFront and IAM APIs; their data planes keep working). The default for a us-east-1 "
                         "outage without --service and --client (AWS Fault Isolation Boundaries whitepaper)")
    cp.add_argument("--spare-control-planes", dest="control_planes", action="store_false",
                    help="leave the global control planes answering (control_planes false): only the region's "
                         "own services go down")
    endpoint(s)
    s.set_defaults(func=cmd_fault_set)
    s = f.add_parser("clear", help="clear all faults, or one region's (and/or one client's)")
    s.add_argument("--region")
    s.add_argument("--client")
    endpoint(s)
    s.set_defaults(func=cmd_fault_clear)
    s = f.add_parser("list", help="list active faults")
    s.add_argument("--json", action="store_true")
    endpoint(s)
    s.set_defaults(func=cmd_fault_list)

    l = sub.add_parser("listener", help="local ALB / edge listeners").add_subparsers(dest="action", required=True)
    s = l.add_parser("set", help="set a listener's mode")
    s.add_argument("name", help="ALB name or DNS name, 'public' or 'cdn'")
    s.add_argument("mode", choices=MODES)
    s.add_argument("--delay-ms", type=int, help="slow: added delay (default 2000)")
    s.add_argument("--addresses", help="an ALB's new addresses: A,B,... (IPv4) or 'rotate' for a fresh set")
    endpoint(s)
    s.set_defaults(func=cmd_listener_set)
    s = l.add_parser("list", help="list listeners")
    endpoint(s)
    s.set_defaults(func=cmd_listener_list)

    g = sub.add_parser("lag", help="RDS ReplicaLag").add_subparsers(dest="action", required=True)
    s = g.add_parser("set", help="pin a replica's ReplicaLag (seconds, or 'auto')")
    s.add_argument("--region", required=True)
    s.add_argument("--instance-id", required=True)
    s.add_argument("--seconds", required=True)
    endpoint(s)
    s.set_defaults(func=cmd_lag_set)

    n = sub.add_parser("snapshot", help="save / restore the whole sandbox state (in its memory)").add_subparsers(
        dest="action", required=True)
    s = n.add_parser("save", help="save the state under NAME (waits for pending transitions)")
    s.add_argument("name")
    s.add_argument("--wait", type=float, help="seconds to wait for pending transitions (default 10)")
    endpoint(s)
    s.set_defaults(func=cmd_snapshot_save)
    s = n.add_parser("restore", help="bring the state saved under NAME back")
    s.add_argument("name")
    endpoint(s)
    s.set_defaults(func=cmd_snapshot_restore)
    s = n.add_parser("list", help="list saved snapshots")
    s.add_argument("--json", action="store_true")
    endpoint(s)
    s.set_defaults(func=cmd_snapshot_list)
    s = n.add_parser("delete", help="forget a snapshot")
    s.add_argument("name")
    endpoint(s)
    s.set_defaults(func=cmd_snapshot_delete)

    k = sub.add_parser("clock", help="the sandbox's clock: show, pause, resume, step").add_subparsers(
        dest="action", required=True)
    for action, text in (("show", "time, paused or not, pending transitions"), ("pause", "stop the clock"),
                         ("resume", "let it run again"),
                         ("step", "advance to the next event (or by --seconds), running what falls due")):
        s = k.add_parser(action, help=text)
        if action == "step":
            s.add_argument("--seconds", type=float)
        endpoint(s)
        s.set_defaults(func=cmd_clock)

    i = sub.add_parser("iam", help="IAM enforcement: show, enforce, off, admin credentials").add_subparsers(
        dest="action", required=True)
    for action, text in (("show", "the mode"), ("enforce", "authenticate and authorize every AWS request"),
                         ("off", "any credentials work again"),
                         ("admin", "credentials of the sandbox's admin user (Allow * on *), as export lines")):
        s = i.add_parser(action, help=text)
        s.add_argument("--json", action="store_true")
        endpoint(s)
        s.set_defaults(func=cmd_iam)

    s = sub.add_parser("health", help="ARC cluster endpoints and routing controls, alarms, health checks")
    s.add_argument("--json", action="store_true")
    endpoint(s)
    s.set_defaults(func=cmd_health)

    s = sub.add_parser("state", help="short summary of both regions")
    s.add_argument("--json", action="store_true")
    endpoint(s)
    s.set_defaults(func=cmd_state)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # argparse itself exits 2 on unknown choices
    try:
        return args.func(args)
    except UsageError as e:
        print(f"drsandbox: error: {e}", file=sys.stderr)
        return 2
    except Unreachable as e:
        print(f"drsandbox: {e}", file=sys.stderr)
        return 1

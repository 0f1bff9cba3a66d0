"""The control API under ``/_sandbox/`` (JSON in, JSON out; never subject to faults).

    GET    /_sandbox/healthz        200 once ready
    GET    /_sandbox/faults         {"faults": [...]}
    POST   /_sandbox/faults         {"region", "service"?, "kind", "rate"?, "error"?, "ms"?, "client"?,
                                     "control_planes"?} -> {"id"}  (control_planes: default true for a
                                     us-east-1 outage without service and client, else false; faults.py)
    DELETE /_sandbox/faults[?region=R][&client=NAME]
    GET    /_sandbox/listeners      {"listeners": [...]}
    POST   /_sandbox/listeners      {"name", "mode"?, "delay_ms"?, "addresses"?: [IPv4, ...] | "rotate"}
    GET    /_sandbox/dns?name=N[&type=A]   what the sandbox's DNS answers for N (ALB addresses, zone records)
    POST   /_sandbox/replica-lag    {"region", "instance_id", "seconds"}
    GET    /_sandbox/state          summary of both regions
    GET    /_sandbox/health         ARC clusters (endpoints, routing controls), alarms, health checks
    GET    /_sandbox/edges, POST /_sandbox/edges   which record / distribution the edges serve
    GET    /_sandbox/calls          the AWS calls answered, in order, and counts of mutating ones
    DELETE /_sandbox/calls          clear that log -> {"cleared": n}
    POST   /_sandbox/reset          forget all state (moto, faults, listener modes, edges, call log)
    POST   /_sandbox/snapshot       {"name", "wait"?} save the whole state in memory -> {"name", "bytes", ...}
    POST   /_sandbox/restore        {"name"} bring a saved state back -> {"name", "took", ...}
    GET    /_sandbox/snapshots      {"snapshots": [{"name", "created", "bytes", "clock"}, ...]}
    DELETE /_sandbox/snapshots?name=N   forget one
    GET    /_sandbox/clock          {"now", "paused", "pending", "next_transition_in", "next_deadline_in"}
    POST   /_sandbox/clock          {"paused": true|false} pause (after running what is due) or resume
    POST   /_sandbox/clock/step     {} to the next event, or {"seconds": N}: run what falls due, in order
    GET    /_sandbox/iam            {"mode": "off"|"enforce", "default_mode", "admin_user"}
    POST   /_sandbox/iam            {"mode": "enforce"|"off"}: authenticate and authorize AWS requests (iam.py)
    POST   /_sandbox/iam/admin      {"account"?} -> {"admin": {"user", "arn", "access_key_id", "secret_access_key", "account"}}

``GET /_sandbox/calls`` answers (see calls.py for how operations are worked out)::

    {"calls": [{"seq": 1, "time": 1718000000.123, "service": "rds",
                "operation": "PromoteReadReplica", "region": "us-west-2", "protocol": "query",
                "status": 200, "mutating": true, "faulted": false}, ...],
     "mutating": {"rds:PromoteReadReplica": 1, ...},
     "dropped": 0, "in_flight": 0, "connections": 1}

``calls`` lists every AWS API request answered since start, reset or DELETE, in the order
the answers were given (``seq`` counts from 1); not the control API, ``/moto-api`` or the
local listeners. ``service`` is the IAM service prefix (SigV4 signing name, but
``cloudwatch`` for ``monitoring``); ``protocol`` is query, ec2, json, rest-xml, rest-json or
smithy-rpc-v2-cbor. ``mutating`` is false only for reads: operations named Describe*, List*,
Get*, BatchGet*, Search*, Lookup*, Head*, and TestDNSAnswer. ``faulted`` is true when an
injected fault (errors, or an outage outliving its hang) answered instead of moto; latency
faults and released outages do not make a call faulted. The ``mutating`` map counts, per
``service:operation``, only mutating calls answered 2xx (so never faulted ones). The log keeps
the last 100000 calls; ``dropped`` says how many older ones it forgot (counts stay exact).
``in_flight`` counts AWS requests begun and not yet answered: a client killed in the middle
of a call leaves its request running, and a crash test waits for 0 before it counts.
``connections`` counts TCP connections accepted and not yet closed, the asking one included:
a request a killed client wrote but the server has not read yet is not in flight, but its
connection stays open until the server has read it, answered and seen the close.

Client-scoped faults: ``"client": "<name>"`` (1-64 of ``A-Za-z0-9!#$%&'*+-.^_`|~``; null or
absent = every client) makes a fault apply only to requests that identify as that client:

* the header ``X-Drctl-Client: <name>`` (exact, case-sensitive value), else
* a token ``app/<name>`` or ``drctl-client/<name>`` in ``X-Amz-User-Agent`` or ``User-Agent``
  (whitespace-separated; the AWS SDKs put a configured app name there as ``app/<name>``:
  Rust ``aws_config::AppName`` / ``.app_name()``, boto3 ``Config(user_agent_appid=...)``).

Requests that name no client are never hit by a client-scoped fault. Any kind may be scoped
(outage, errors, latency) for AWS API calls. A client-scoped ``outage`` also holds that
client's requests to the region's ALB listeners (it must send ``X-Drctl-Client`` or the
User-Agent token on its probes): the listener accepts and reads the request and never
answers until the fault is cleared (then it is served), as a cut network path would look;
other clients, Route 53 health checks, the app's database check and ``/_sandbox/state``
still see the region lit. The ``public`` edge passes the header on to the ALB it picks (the
client would reach that ALB itself); the ``cdn`` edge does not (CloudFront fetches from the
origin, not the client). ``GET /_sandbox/faults`` lists ``client`` for scoped faults.
``DELETE /_sandbox/faults?client=NAME`` removes only that client's faults.

Snapshots (snapshot.py): ``POST /_sandbox/snapshot`` saves everything that can differ
between a freshly seeded sandbox and a used one (every moto backend, ARC's and the alarms'
state among them, faults, listener modes, ports and ALB addresses, edges, health-check
observations, pinned ReplicaLag, Route 53 changes and token buckets, DynamoDB tokens, the IAM
enforcement mode, the call log, the clock); ``POST /_sandbox/restore`` brings it back exactly, in the
same process, in well under a second. A snapshot waits up to ``wait`` seconds (default 10,
at most 120) for scheduled transitions to finish and answers 409 while some are still pending
(at once when the clock is paused). Snapshots survive a reset; an unknown name is 400.

The clock (clock.py, scheduler.py): real time by default. ``{"paused": true}`` freezes it:
nothing that is not due yet happens (no transition, deadline, health-check probe or
ReplicaLag round) until a step. ``POST /_sandbox/clock/step`` with ``{}`` advances it to the
next event - the next scheduled transition, or a noted deadline (CloudFront deployment or
invalidation, Route 53 change INSYNC, DynamoDB table ACTIVE) - and runs every transition due
then; ``{"seconds": N}`` (0 to 86400) advances it N seconds, running every transition that
falls due, in order, with health-check probes and ReplicaLag rounds at the times they fall
on. A step answers once all of that has run: ``{"now", "advanced", "ran", "paused",
"pending", ...}``; 409 when ``{}`` finds nothing to step to. Steps work on a running clock
too (they skip ahead). A reset resumes a paused clock.

Bad input answers 400 ``{"error": "..."}`` and changes nothing.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from .faults import FaultError, check_client, check_region
from .iam import IamError
from .listeners import ListenerError
from .scheduler import MAX_STEP_SECONDS, NothingToStep
from .snapshot import SnapshotError

log = logging.getLogger("drsandbox.control")


class _BadRequest(Exception):
    pass


class _Conflict(Exception):
    """The request is valid but cannot be done in the sandbox's current state (409)."""


# Control calls run inside the gate (shared), so a snapshot or restore sees a change either
# before or after it, never halfway, and no read sees half a restore. Snapshot and restore
# take it themselves (exclusively).
_UNGATED = {("POST", "/_sandbox/snapshot"), ("POST", "/_sandbox/restore")}


class ControlApi:
    def __init__(self, sandbox) -> None:
        self.sb = sandbox
        self.routes = {
            ("GET", "/_sandbox/healthz"): self.healthz,
            ("GET", "/_sandbox/faults"): self.list_faults,
            ("POST", "/_sandbox/faults"): self.add_fault,
            ("DELETE", "/_sandbox/faults"): self.clear_faults,
            ("GET", "/_sandbox/listeners"): self.list_listeners,
            ("POST", "/_sandbox/listeners"): self.set_listener,
            ("GET", "/_sandbox/dns"): self.dns,
            ("POST", "/_sandbox/replica-lag"): self.replica_lag,
            ("GET", "/_sandbox/state"): self.state,
            ("GET", "/_sandbox/health"): self.health,
            ("GET", "/_sandbox/edges"): self.get_edges,
            ("POST", "/_sandbox/edges"): self.set_edges,
            ("GET", "/_sandbox/calls"): self.list_calls,
            ("DELETE", "/_sandbox/calls"): self.clear_calls,
            ("POST", "/_sandbox/reset"): self.reset,
            ("POST", "/_sandbox/snapshot"): self.snapshot,
            ("POST", "/_sandbox/restore"): self.restore,
            ("GET", "/_sandbox/snapshots"): self.list_snapshots,
            ("DELETE", "/_sandbox/snapshots"): self.delete_snapshot,
            ("GET", "/_sandbox/clock"): self.get_clock,
            ("POST", "/_sandbox/clock"): self.set_clock,
            ("POST", "/_sandbox/clock/step"): self.step_clock,
            ("GET", "/_sandbox/iam"): self.get_iam,
            ("POST", "/_sandbox/iam"): self.set_iam,
            ("POST", "/_sandbox/iam/admin"): self.iam_admin,
        }

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        handler = self.routes.get((method, path))
        if handler is None:
            known = any(p == path for _, p in self.routes)
            status, body = (405, {"error": f"{method} not allowed on {path}"}) if known else \
                (404, {"error": f"no such control endpoint: {path}"})
        else:
            try:
                if (method, path) in _UNGATED:
                    status, body = 200, handler(environ)
                else:
                    with self.sb.gate.shared():
                        status, body = 200, handler(environ)
            except (_BadRequest, FaultError, ListenerError, IamError) as e:
                status, body = 400, {"error": str(e)}
            except SnapshotError as e:
                status, body = e.status, {"error": str(e)}
            except _Conflict as e:
                status, body = 409, {"error": str(e)}
            except Exception as e:  # a sandbox bug must still answer, and in JSON
                log.exception("control API %s %s failed", method, path)
                status, body = 500, {"error": f"{type(e).__name__}: {e}"}
        data = json.dumps(body, default=str).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
                  503: "Service Unavailable"}.get(status, "Error")
        start_response(f"{status} {reason}", [("Content-Type", "application/json"),
                                              ("Content-Length", str(len(data)))])
        return [data]

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _json(environ) -> dict:
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            n = 0
        raw = environ["wsgi.input"].read(n) if n > 0 else b""
        if not raw:
            raise _BadRequest("request body must be a JSON object")
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise _BadRequest(f"request body is not valid JSON: {e}") from e
        if not isinstance(body, dict):
            raise _BadRequest("request body must be a JSON object")
        return body

    @staticmethod
    def _query(environ) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}

    # ------------------------------------------------------------------ handlers
    def healthz(self, environ) -> dict:
        return {"ok": True, "endpoint": self.sb.url, "profile": self.sb.profile.as_dict(),
                "dns": {"answers": self.sb.profile.setting("dns_answers"), "udp_port": self.sb.dns_port},
                "iam": self.sb.iam.mode}

    # ------------------------------------------------------------------ IAM
    def get_iam(self, environ) -> dict:
        return self.sb.iam.describe()

    def set_iam(self, environ) -> dict:
        body = self._json(environ)
        if set(body) != {"mode"}:
            raise _BadRequest('body must be {"mode": "enforce"} or {"mode": "off"}')
        self.sb.iam.set_mode(body["mode"])
        return self.sb.iam.describe()

    def iam_admin(self, environ) -> dict:
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            n = 0
        body = self._json(environ) if n > 0 else {}
        unknown = set(body) - {"account"}
        if unknown:
            raise _BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        account = body.get("account") or self.sb.edges["account"]
        if not (isinstance(account, str) and account.isdigit() and len(account) == 12):
            raise _BadRequest("account must be a 12-digit account id")
        return {"admin": self.sb.iam.admin(account)}

    def list_faults(self, environ) -> dict:
        return {"faults": [f.public() for f in self.sb.faults.list()]}

    def add_fault(self, environ) -> dict:
        fault = self.sb.faults.add(self._json(environ))
        return {"id": fault.id}

    def clear_faults(self, environ) -> dict:
        q = self._query(environ)
        unknown = set(q) - {"region", "client"}
        if unknown:
            raise _BadRequest(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
        region = check_region(q["region"]) if "region" in q else None
        client = check_client(q["client"]) if "client" in q else None
        return {"cleared": self.sb.faults.clear(region, client)}

    def list_listeners(self, environ) -> dict:
        self.sb.listeners.reconcile()
        return {"listeners": [l.describe() for l in self.sb.listeners.all()]}

    def set_listener(self, environ) -> dict:
        body = self._json(environ)
        unknown = set(body) - {"name", "mode", "delay_ms", "addresses"}
        if unknown:
            raise _BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        if "mode" not in body and "addresses" not in body:
            raise _BadRequest("give a mode, addresses, or both")
        self.sb.listeners.reconcile()
        listener = self.sb.listeners.find(body.get("name"))
        if "addresses" in body:  # an ALB's addresses change (AWS replaces its nodes)
            self.sb.listeners.set_addresses(listener, body["addresses"])
        if "mode" in body or "delay_ms" in body:
            listener.set_mode(body.get("mode", listener.mode), body.get("delay_ms"))
        return {"listener": listener.describe()}

    def dns(self, environ) -> dict:
        from .dns import resolve

        q = self._query(environ)
        unknown = set(q) - {"name", "type"}
        if unknown or not q.get("name"):
            raise _BadRequest("GET /_sandbox/dns needs ?name=NAME (and optionally &type=A|AAAA|CNAME)")
        rtype = q.get("type", "A").upper()
        if rtype not in ("A", "AAAA", "CNAME"):
            raise _BadRequest(f"type must be A, AAAA or CNAME, got {rtype!r}")
        return resolve(self.sb, q["name"], rtype)

    def replica_lag(self, environ) -> dict:
        body = self._json(environ)
        unknown = set(body) - {"region", "instance_id", "seconds", "account"}
        if unknown:
            raise _BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        if "seconds" not in body:
            raise _BadRequest("seconds is required (a number, or null to stop overriding)")
        account = body.get("account") or self.sb.edges["account"]
        value = self.sb.lag.set(account, body.get("region"), body.get("instance_id"), body["seconds"])
        return {"region": body["region"], "instance_id": body["instance_id"], "published": value}

    def get_edges(self, environ) -> dict:
        return {"edges": self.sb.edges, "public_url": self.sb.listeners.public.url,
                "cdn_url": self.sb.listeners.cdn.url}

    def set_edges(self, environ) -> dict:
        body = self._json(environ)
        unknown = set(body) - {"account", "public", "cdn"}
        if unknown:
            raise _BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        edges = dict(self.sb.edges)
        if "account" in body:
            if not (isinstance(body["account"], str) and body["account"].isdigit() and len(body["account"]) == 12):
                raise _BadRequest("account must be a 12-digit account id")
            edges["account"] = body["account"]
        if "public" in body:
            pub = body["public"]
            if pub is not None:
                if not isinstance(pub, dict) or not pub.get("zone_id") or not pub.get("record_name"):
                    raise _BadRequest("public needs zone_id and record_name")
                pub = {"zone_id": str(pub["zone_id"]).split("/")[-1], "record_name": str(pub["record_name"]),
                       "record_type": str(pub.get("record_type") or "A")}
            edges["public"] = pub
        if "cdn" in body:
            cdn = body["cdn"]
            if cdn is not None and (not isinstance(cdn, dict) or not cdn.get("distribution_id")):
                raise _BadRequest("cdn needs distribution_id")
            edges["cdn"] = cdn and {"distribution_id": str(cdn["distribution_id"])}
        self.sb.edges = edges
        return self.get_edges(environ)

    def list_calls(self, environ) -> dict:
        return self.sb.calls.snapshot()

    def clear_calls(self, environ) -> dict:
        return {"cleared": self.sb.calls.clear()}

    def reset(self, environ) -> dict:
        self.sb.reset()
        return {"reset": True}

    def state(self, environ) -> dict:
        from .state import summary

        return summary(self.sb)

    def health(self, environ) -> dict:
        """What the failover gates look like from inside: ARC clusters with their endpoints
        (the DescribeCluster ClusterEndpoints) and routing controls, every alarm with its
        shown and evaluated state, and every Route 53 health check's type and status."""
        from .state import health_summary

        return health_summary(self.sb)

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, environ) -> dict:
        body = self._json(environ)
        unknown = set(body) - {"name", "wait"}
        if unknown:
            raise _BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        from .snapshot import DEFAULT_WAIT

        return {"snapshot": self.sb.snapshots.save(body.get("name"), body.get("wait", DEFAULT_WAIT))}

    def restore(self, environ) -> dict:
        body = self._json(environ)
        unknown = set(body) - {"name"}
        if unknown:
            raise _BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        return {"restored": self.sb.snapshots.restore(body.get("name"))}

    def list_snapshots(self, environ) -> dict:
        return {"snapshots": self.sb.snapshots.list()}

    def delete_snapshot(self, environ) -> dict:
        q = self._query(environ)
        if set(q) != {"name"}:
            raise _BadRequest("DELETE /_sandbox/snapshots needs ?name=NAME (and nothing else)")
        if not self.sb.snapshots.delete(q["name"]):
            raise _BadRequest(f"no snapshot named {q['name']!r}")
        return {"deleted": q["name"]}

    # ------------------------------------------------------------------ clock
    def get_clock(self, environ) -> dict:
        clock, sched = self.sb.clock, self.sb.scheduler
        now = clock.monotonic()
        due, deadline = sched.next_due(), clock.next_deadline()
        return {"now": round(now, 6), "paused": clock.paused, "pending": sched.pending(),
                "next_transition_in": None if due is None else round(max(0.0, due - now), 6),
                "next_deadline_in": None if deadline is None else round(max(0.0, deadline - now), 6)}

    def set_clock(self, environ) -> dict:
        body = self._json(environ)
        if set(body) != {"paused"} or not isinstance(body["paused"], bool):
            raise _BadRequest('body must be {"paused": true} or {"paused": false}')
        if body["paused"]:
            self.sb.clock.pause()
            # What fell due before the pause happens at the frozen time, with the state as it
            # is now (a probe overdue on a busy machine sees the listener before the test
            # changes it), so steps count from a clean slate.
            self.sb.scheduler.step(0)
        else:
            self.sb.clock.resume()
        return self.get_clock(environ)

    def step_clock(self, environ) -> dict:
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            n = 0
        body = self._json(environ) if n > 0 else {}
        unknown = set(body) - {"seconds"}
        if unknown:
            raise _BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        seconds = body.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or not 0 <= seconds <= MAX_STEP_SECONDS):
            raise _BadRequest(f"seconds must be a number between 0 and {MAX_STEP_SECONDS:.0f}")
        try:
            result = self.sb.scheduler.step(seconds)
        except NothingToStep as e:
            raise _Conflict(str(e)) from e
        return {**result, **self.get_clock(environ)}

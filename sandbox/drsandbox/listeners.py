"""Local stand-ins for load balancers, plus the two edge listeners (public DNS name, CDN).

On AWS an ALB's DNS name resolves to the load balancer; here every ELBv2 load balancer that
exists in moto gets a small HTTP server on 127.0.0.1 (its "listener"), and topology.json
maps the DNS name to that URL. The port is reserved when the load balancer is created, but
accepts connections only while the load balancer has at least one ELBv2 listener
(CreateListener / DeleteListener): an ALB without a listener refuses connections, as on AWS.
Requests go to the running targets of the target groups its listeners forward to (default
actions and rules), in turn, like an ALB's round robin; like a real ALB it answers 503 when
there is none.

Each instance target runs "the app": ``/health`` answers 200 ``ok``; any other path a page
naming its region (``region=us-east-1``), the instance and the database it uses; ``/db``
is the app's database check: 200 when that database can be reached, else 503; ``/write`` is one
write through it, taken only by a writable instance (``rds.write_verdict``). The app finds
its database the way the seeded app does: the ``DB_HOST`` its user data sets
(``DB_HOST=host`` or ``export DB_HOST=host`` on a line of the instance's user data, which
RunInstances takes from the request or the launch template), else the ``db`` CNAME of a
private zone associated with the instance's VPC; a host name is followed through CNAMEs of
the private zones associated with that VPC to an RDS instance endpoint address (in any
region of the account). The database is reachable when it exists, is in a status that accepts
connections (``available``, ``backing-up``, ``modifying``, ...) and its region is not dark.

Modes (set through the control API): ``up``; ``down`` (the port is closed: connection
refused); ``blackhole`` (connections are accepted and never answered); ``slow`` (adds
``delay_ms``); ``error`` (500). A region ``outage`` fault makes that region's listeners
behave as ``blackhole`` until it is cleared. A client-scoped outage (a fault with ``client``)
holds only the requests that carry that client's ``X-Drctl-Client`` header (or its
``app/<name>`` / ``drctl-client/<name>`` User-Agent token): read, never answered until cleared.

Edges: ``public`` stands for ``api.<domain>``: every request is sent to whichever ALB
Route 53 currently answers for the failover record (a client that re-resolves DNS on every
request; failures of that ALB are passed through as they would reach such a client).
``cdn`` stands for the CloudFront distribution: it tries the members of the default
behaviour's origin group in order and fails over on connection errors, timeouts and the
group's failover status codes, using the configuration of the last completed deployment;
each origin's domain is resolved per request through the sandbox's DNS (``origin_target``), so
an origin named by a failover record follows Route 53's answer.

Addresses: on AWS an ALB's DNS name resolves to the IP addresses of its nodes (at least one per
enabled Availability Zone), the addresses clients send their requests to, and "the IP
addresses for Classic Load Balancers and Application Load Balancers change over time" (AWS
Knowledge Center, "How do I find the IP addresses of my load balancer", elb-find-load-balancer-ip;
ELB scales by adding and replacing nodes). Each ALB here gets as many IPv4 addresses as it has
subnets (at least one, at most 8) from the documentation ranges of RFC 5737 (192.0.2.0/24,
198.51.100.0/24, 203.0.113.0/24: never routed, so nothing is ever sent to them), chosen from a
hash of its account, region and name (the same ALB gets the same addresses in every sandbox),
distinct across ALBs. ``set_addresses`` changes them (a given list, or a fresh set).
``by_address`` maps an address back to its ALB, which is how the public edge follows an
answer that is an address.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import http.client
import ipaddress
import re
import logging
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from . import backends
from .faults import MAX_HANG_SECONDS, client_from_headers

log = logging.getLogger("drsandbox.listeners")

MODES = ("up", "down", "blackhole", "slow", "error")
MAX_DELAY_MS = int(MAX_HANG_SECONDS * 1000)

# ALB addresses: the RFC 5737 documentation ranges (TEST-NET-1/2/3), hosts .1-.254.
ADDRESS_RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
ADDRESS_POOL: tuple[str, ...] = tuple(str(h) for net in ADDRESS_RANGES for h in ipaddress.ip_network(net).hosts())
MAX_ADDRESSES = 8


class ListenerError(ValueError):
    """Bad listener request (unknown name or mode): the control API answers 400."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, addr, handler, listener: "Listener"):
        self.listener = listener
        super().__init__(addr, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Socket reads and writes give up eventually (a blackhole hold does not read the socket).
    timeout = MAX_HANG_SECONDS + 10
    def version_string(self) -> str:
        return "drsandbox"

    def handle(self) -> None:
        # Blackhole is decided per connection, before a byte is read: the peer sees an
        # accepted connection that never answers, exactly like a dead target behind a live
        # network path. Released connections (mode or fault cleared) are then served.
        if not self.server.listener.hold_if_blackholed(self.connection):
            self.close_connection = True
            return
        self.close_connection = True
        try:
            self.handle_one_request()
        except (ConnectionError, socket.timeout, OSError):
            pass

    def _dispatch(self) -> None:
        self.server.listener.respond(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _dispatch

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def reply(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8",
              headers: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in headers or []:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def abort(self) -> None:
        """Reset the client connection (what a client sees when the real target refuses)."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""


class Listener:
    """One local HTTP listener with a switchable failure mode."""

    kind = "alb"

    def __init__(self, name: str, region: str | None, manager: "ListenerManager") -> None:
        self.name = name
        self.region = region
        self.manager = manager
        self.mode = "up"
        self.delay_ms = 0
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        # False while the load balancer has no ELBv2 listener: the port stays closed.
        self.open = True
        self._next = -1  # round robin: index of the target that answered last

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        with self._lock:
            self._bind()

    def _bind(self) -> None:
        last: OSError | None = None
        for _ in range(20):
            try:
                self._server = _Server(("127.0.0.1", self.port), _Handler, self)
                break
            except OSError as e:  # the old port can linger briefly after 'down'
                last = e
                if e.errno != errno.EADDRINUSE:
                    raise
                time.sleep(0.05)
        else:
            log.warning("listener %s: port %s stays busy (%s); moving to a new port", self.name, self.port, last)
            self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"listener-{self.name}", daemon=True)
        self._thread.start()

    def _unbind(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        with self._lock:
            self._unbind()
        self._notify()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ snapshot
    def saved(self) -> dict:
        with self._lock:
            return {"mode": self.mode, "delay_ms": self.delay_ms, "open": self.open, "port": self.port,
                    "next": self._next}

    def restore(self, saved: dict) -> None:
        """Back to a saved mode, delay, open flag and round-robin position, on the saved port
        (drctl.yaml names it): rebinding only what has to change."""
        with self._lock:
            bound = saved["open"] and saved["mode"] != "down"
            if self._server is not None and (not bound or self.port != saved["port"]):
                self._unbind()
            self.port = saved["port"]
            self.mode, self.delay_ms, self.open, self._next = (saved["mode"], saved["delay_ms"], saved["open"],
                                                               saved["next"])
            if bound and self._server is None:
                self._bind()  # falls back to a new port only if another process holds this one
        self._notify()

    # ------------------------------------------------------------------ modes
    def set_mode(self, mode: str, delay_ms: int | None = None) -> None:
        if mode not in MODES:
            raise ListenerError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
        if delay_ms is not None:
            if isinstance(delay_ms, bool) or not isinstance(delay_ms, (int, float)) or not 0 <= delay_ms <= MAX_DELAY_MS:
                raise ListenerError(f"delay_ms must be between 0 and {MAX_DELAY_MS}")
        with self._lock:
            if (mode == "down" or not self.open) and self._server is not None:
                self._unbind()
            elif mode != "down" and self.open and self._server is None:
                self._bind()
            self.mode = mode
            if delay_ms is not None:
                self.delay_ms = int(delay_ms)
            elif mode == "slow" and not self.delay_ms:
                self.delay_ms = 2000
        self._notify()

    def set_open(self, open_: bool) -> None:
        """Open (bind) or close the port as the load balancer gains or loses its last
        ELBv2 listener; the port number is kept for re-opening when it is still free."""
        with self._lock:
            if open_ == self.open:
                return
            self.open = open_
            if not open_ and self._server is not None:
                self._unbind()
            elif open_ and self.mode != "down" and self._server is None:
                self._bind()
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def effective_mode(self) -> str:
        if self.mode == "up" and self.manager.faults.region_dark(self.region):
            return "blackhole"
        return self.mode

    def hold_if_blackholed(self, conn: socket.socket) -> bool:
        """Hold a blackholed connection; True once it may be served, False to drop it."""
        deadline = time.monotonic() + MAX_HANG_SECONDS
        while self.effective_mode() == "blackhole":
            if self.manager.stopping.is_set() or time.monotonic() > deadline:
                return False
            # Woken by mode changes; faults are polled because they live elsewhere.
            with self._changed:
                self._changed.wait(0.1)
        # Switched to 'down' (or closed) while held: the port is closed now, so the connection dies too.
        return self.effective_mode() != "down" and self.open

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "region": self.region, "mode": self.mode,
                "effective_mode": self.effective_mode(), "delay_ms": self.delay_ms,
                "url": self.url, "port": self.port, "open": self.open}

    # ------------------------------------------------------------------ serving
    def hold_if_client_cut(self, h: _Handler) -> bool:
        """A client-scoped outage of this region: hold the request of that client (read, never
        answered) until the fault is cleared. True once it may be served, False to drop it."""
        faults = self.manager.faults
        client = client_from_headers(h.headers.get)
        deadline = time.monotonic() + MAX_HANG_SECONDS
        while faults.client_dark(self.region, client):
            if self.manager.stopping.is_set() or time.monotonic() > deadline:
                return False
            faults.wait_change(0.1)
        return True

    def respond(self, h: _Handler) -> None:
        if not self.hold_if_client_cut(h):
            h.abort()
            return
        mode = self.effective_mode()
        if mode == "slow" and self.delay_ms:
            time.sleep(min(self.delay_ms, MAX_DELAY_MS) / 1000.0)
        if mode == "error":
            h.reply(500, b"drsandbox: injected error\n")
            return
        self.serve(h)

    def serve(self, h: _Handler) -> None:  # overridden
        h.reply(404, b"not found\n")


class AlbListener(Listener):
    kind = "alb"

    def __init__(self, name: str, region: str, account: str, arn: str, dns_name: str,
                 manager: "ListenerManager") -> None:
        super().__init__(name, region, manager)
        self.account = account
        self.arn = arn
        self.dns_name = dns_name
        self.addresses: list[str] = []  # what its DNS name resolves to (ListenerManager allocates)

    def describe(self) -> dict:
        d = super().describe()
        d.update(dns_name=self.dns_name, arn=self.arn, account=self.account,
                 healthy_targets=self.manager.healthy_targets(self), addresses=list(self.addresses))
        return d

    def serve(self, h: _Handler) -> None:
        targets = self.manager.serving_targets(self)
        hdrs = [("x-drsandbox-region", self.region or ""), ("x-drsandbox-alb", self.name)]
        if targets is None:
            h.reply(503, b"drsandbox: load balancer no longer exists\n", headers=hdrs)
            return
        if not targets:
            # What an ALB answers when no target in its target groups is healthy.
            h.reply(503, b"503 Service Temporarily Unavailable (no healthy targets)\n", headers=hdrs)
            return
        with self._lock:
            self._next = (self._next + 1) % len(targets)
            target = targets[self._next]
        path = h.path.split("?", 1)[0]
        if path == "/health":
            h.reply(200, b"ok", headers=hdrs)
            return
        app = self.manager.app_view(self, target)
        hdrs += [("x-drsandbox-target", target), ("x-drsandbox-database", app["database"] or "none")]
        facts = " ".join(f"{k}={'none' if v is None else v}" for k, v in app.items())
        if path == "/db":
            # The app's database check: can it open a connection to the database it is configured for?
            if app["database_reachable"] == "yes":
                h.reply(200, f"ok region={self.region} {facts}\n".encode(), headers=hdrs)
            else:
                h.reply(503, f"database unreachable: region={self.region} {facts}\n".encode(), headers=hdrs)
            return
        if path == "/write":
            # One write through the app's database (any method): did it reach a writer?
            status, words, app = self.manager.app_write(self, target)
            facts = " ".join(f"{k}={'none' if v is None else v}" for k, v in app.items())
            h.reply(status, f"{words}: region={self.region} {facts}\n".encode(),
                    headers=hdrs + [("x-drsandbox-write", "ok" if status == 200 else "refused")])
            return
        page = (f"<!doctype html><html><head><title>{self.name}</title></head><body>"
                f"<h1>{self.name}</h1><p>served by region={self.region}</p>"
                f"<p>alb={self.dns_name} healthy_targets={len(targets)}</p>"
                f"<p>{facts}</p></body></html>\n")
        h.reply(200, page.encode(), "text/html; charset=utf-8", hdrs)


class EdgeListener(Listener):
    """Base of ``public`` and ``cdn``: forwards requests to ALB listeners."""

    kind = "edge"
    # Whether the viewer's identity (X-Drctl-Client, User-Agent) reaches the origin: yes for
    # the public name (the client itself connects to the ALB), no for the CDN (CloudFront
    # fetches from the origin with its own User-Agent).
    forwards_client = True

    def forward(self, h: _Handler, target: Listener, body: bytes, host: str, timeout: float):
        """One HTTP exchange with a local listener; raises OSError/timeout on failure."""
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=timeout)
        try:
            drop = ("host", "connection", "content-length")
            if not self.forwards_client:
                drop += ("x-drctl-client", "user-agent", "x-amz-user-agent")
            headers = {k: v for k, v in h.headers.items() if k.lower() not in drop}
            if not self.forwards_client:
                headers["User-Agent"] = "Amazon CloudFront"
            headers["Host"] = host
            headers["Connection"] = "close"
            conn.request(h.command, h.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    @staticmethod
    def passthrough_headers(headers) -> list[tuple[str, str]]:
        skip = {"content-length", "connection", "date", "server", "content-type", "transfer-encoding"}
        return [(k, v) for k, v in headers if k.lower() not in skip]


class PublicEdge(EdgeListener):
    def __init__(self, manager: "ListenerManager") -> None:
        super().__init__("public", None, manager)

    def serve(self, h: _Handler) -> None:
        body = h.read_body()
        answer = self.manager.public_answer()
        if answer is None:
            h.reply(502, b"drsandbox: no public record configured (seed first, or POST /_sandbox/edges)\n")
            return
        record, dns = answer
        # The answer is the ALB's DNS name, or (dns_answers: addresses) one of its addresses:
        # the client connects to the first address, which leads to the ALB that has it.
        target = (self.manager.by_dns(dns) or self.manager.by_address(dns)) if dns else None
        if target is None:
            h.reply(502, f"drsandbox: {record} resolves to {dns!r}, which has no local listener\n".encode())
            return
        try:
            # A client reaching the ALB directly waits as long as the ALB makes it wait; the
            # cap only keeps the thread bounded.
            status, headers, data = self.forward(h, target, body, record.rstrip("."), MAX_HANG_SECONDS)
        except (ConnectionRefusedError, ConnectionResetError):
            h.abort()
            return
        except (OSError, http.client.HTTPException):
            h.abort()
            return
        ctype = dict((k.lower(), v) for k, v in headers).get("content-type", "text/plain")
        upstream = [("x-drsandbox-upstream", target.dns_name)]
        if dns != target.dns_name:
            upstream.append(("x-drsandbox-upstream-address", dns))
        h.reply(status, data, ctype, self.passthrough_headers(headers) + upstream)


class CdnEdge(EdgeListener):
    forwards_client = False

    def __init__(self, manager: "ListenerManager") -> None:
        super().__init__("cdn", None, manager)

    def serve(self, h: _Handler) -> None:
        body = h.read_body()
        plan = self.manager.cdn_plan()
        if plan is None:
            h.reply(503, b"drsandbox: no deployed CloudFront distribution configured\n")
            return
        members, codes, dist_domain = plan
        # CloudFront only fails over for idempotent methods.
        can_failover = h.command in ("GET", "HEAD", "OPTIONS")
        timeout = self.manager.profile.seconds("origin_timeout")
        last_status, last_err = None, "no origin"
        for i, (origin_id, domain) in enumerate(members):
            # The origin's domain is resolved for this request (CloudFront Developer Guide,
            # "HTTP 502 status code (DNS error)": "CloudFront performs a DNS resolution on the
            # origin domain"), through the sandbox's DNS: an ALB name gives that ALB's
            # addresses, a failover record (a gated origin) whatever Route 53 answers now.
            target, address, dns_error = self.manager.origin_target(domain)
            last = i == len(members) - 1 or not can_failover
            try:
                if target is None:
                    # NonS3OriginDnsError, or an address nothing listens on: CloudFront cannot
                    # connect to the origin, which is a reason to fail over (origin failover:
                    # "CloudFront fails to connect to the primary origin").
                    raise ConnectionRefusedError(f"origin {domain}: {dns_error or 'no local listener'}")
                status, headers, data = self.forward(h, target, body, domain, timeout)
            except (OSError, http.client.HTTPException) as e:
                last_err = f"{origin_id}: {type(e).__name__}"
                last_status = 504 if isinstance(e, (socket.timeout, TimeoutError)) else 502
                if last:
                    break
                continue
            if status in codes and not last:
                last_status, last_err = status, f"{origin_id}: HTTP {status}"
                continue
            ctype = dict((k.lower(), v) for k, v in headers).get("content-type", "text/plain")
            extra = [("x-drsandbox-origin", origin_id), ("x-drsandbox-origin-domain", domain),
                     ("x-cache", "Miss from cloudfront"), ("via", f"1.1 {dist_domain} (CloudFront)")]
            if address:
                extra.append(("x-drsandbox-origin-address", address))
            h.reply(status, data, ctype, self.passthrough_headers(headers) + extra)
            return
        msg = f"drsandbox CloudFront: could not get a response from any origin ({last_err})\n"
        h.reply(last_status or 502, msg.encode(), headers=[("x-cache", "Error from cloudfront")])


class ListenerManager:
    """Owns every listener; keeps ALB listeners in step with moto's ELBv2 state."""

    def __init__(self, faults, profile, stopping: threading.Event) -> None:
        self.faults = faults
        self.profile = profile
        self.stopping = stopping
        self._albs: dict[str, AlbListener] = {}  # by load balancer ARN
        self._lock = threading.RLock()
        # Held for a whole reconcile (and a snapshot or restore): ALB listeners are added and
        # removed by one of them at a time.
        self.reconcile_lock = threading.RLock()
        self.public = PublicEdge(self)
        self.cdn = CdnEdge(self)
        # Injected by server.py (route53/cloudfront know how to answer; this module does not).
        self.public_answer: Callable[[], tuple[str, str | None] | None] = lambda: None
        self.cdn_plan: Callable[[], tuple | None] = lambda: None
        # The sandbox's DNS (dns.resolve for an A query), for the cdn edge's origins.
        self.resolve: Callable[[str], dict | None] = lambda name: None
        # The app's write path (rds.py's view of a database: replica, read_only, writable).
        self.write_verdict: Callable[[object], tuple[bool, str]] = lambda db: (False, "no database engine")

    def start(self) -> None:
        self.public.start()
        self.cdn.start()

    def stop(self) -> None:
        with self._lock:
            listeners = list(self._albs.values())
            self._albs.clear()
        _stop_all(listeners + [self.public, self.cdn])

    # ------------------------------------------------------------------ snapshot
    def state(self) -> dict:
        """Every ALB listener (by load balancer ARN) and edge: mode, delay, open, port."""
        with self.reconcile_lock, self._lock:
            albs = {arn: {"name": l.name, "region": l.region, "account": l.account, "dns_name": l.dns_name,
                          "addresses": list(l.addresses), **l.saved()} for arn, l in self._albs.items()}
            return {"albs": albs, "public": self.public.saved(), "cdn": self.cdn.saved()}

    def restore(self, saved: dict) -> list[str]:
        """Listeners as saved, on their saved ports: those of load balancers created since
        are closed, those of load balancers deleted since are opened again. Returns the names
        of listeners that could not get their saved port back (another process holds it)."""
        with self.reconcile_lock:
            with self._lock:
                stale = [self._albs.pop(arn) for arn in list(self._albs) if arn not in saved["albs"]]
            _stop_all(stale)  # first: their ports may be the ones a restored listener needs
            for arn, info in saved["albs"].items():
                with self._lock:
                    listener = self._albs.get(arn)
                    if listener is None:
                        listener = AlbListener(info["name"], info["region"], info["account"], arn,
                                               info["dns_name"], self)
                        self._albs[arn] = listener
                    listener.addresses = list(info.get("addresses") or [])
                listener.restore(info)
            self.public.restore(saved["public"])
            self.cdn.restore(saved["cdn"])
            moved = [l.name for arn, l in self._albs.items() if l.port != saved["albs"][arn]["port"]]
            moved += [l.name for l in (self.public, self.cdn) if l.port != saved[l.name]["port"]]
            return moved

    # ------------------------------------------------------------------ ELBv2 sync
    def reconcile(self) -> None:
        from moto.elbv2.models import elbv2_backends

        with self.reconcile_lock:
            seen: set[str] = set()
            for account, region, backend in backends(elbv2_backends):
                for lb in list(backend.load_balancers.values()):
                    seen.add(lb.arn)
                    with self._lock:
                        listener = self._albs.get(lb.arn)
                        if listener is None:
                            name = lb.name if account == _default_account() else f"{account}/{lb.name}"
                            listener = AlbListener(name, region, account, lb.arn, lb.dns_name, self)
                            listener.addresses = self._allocate(f"{account}/{region}/{lb.name}",
                                                                len(getattr(lb, "subnets", None) or []))
                            listener.start()  # reserves the port (the URL is known from creation on)
                            self._albs[lb.arn] = listener
                    listener.set_open(bool(getattr(lb, "listeners", None)))
            with self._lock:
                gone = [arn for arn in self._albs if arn not in seen]
                stale = [self._albs.pop(arn) for arn in gone]
            for listener in stale:
                listener.stop()

    def healthy_targets(self, listener: AlbListener) -> int | None:
        """Running targets behind the load balancer, or None if it no longer exists."""
        targets = self.serving_targets(listener)
        return None if targets is None else len(targets)

    def serving_targets(self, listener: AlbListener) -> list[str] | None:
        """Ids of the running targets (instance ids; IP / Lambda targets as registered) of the
        target groups the load balancer's listeners forward to, in a stable order; None if the
        load balancer no longer exists."""
        from moto.ec2.models import ec2_backends
        from moto.elbv2.models import elbv2_backends

        try:
            backend = elbv2_backends[listener.account][listener.region]
        except KeyError:
            return None
        lb = backend.load_balancers.get(listener.arn)
        if lb is None:
            return None
        tg_arns: list[str] = []
        for l in list(getattr(lb, "listeners", {}).values()):
            actions = list(l.default_actions or [])
            for rule in list(getattr(l, "_non_default_rules", {}).values()):
                actions += list(getattr(rule, "actions", None) or [])
            for a in actions:
                data = getattr(a, "data", a) if not isinstance(a, dict) else a
                if not isinstance(data, dict) or data.get("Type") != "forward":
                    continue
                arns = [data.get("TargetGroupArn")] + [t.get("TargetGroupArn") for t in
                                                       (data.get("ForwardConfig") or {}).get("TargetGroups", [])]
                tg_arns += [x for x in arns if x and x not in tg_arns]
        ec2 = ec2_backends[listener.account][listener.region]
        out: list[str] = []
        for arn in tg_arns:
            tg = backend.target_groups.get(arn)
            if tg is None:
                continue
            for target_id in list(tg.targets):
                if target_id in out:
                    continue
                if target_id.startswith("i-"):
                    inst = _instance(ec2, target_id)
                    if inst is not None and inst.state == "running":
                        out.append(target_id)
                else:  # IP / Lambda targets: no instance to look at, count them as serving
                    out.append(target_id)
        return out

    def app_view(self, listener: AlbListener, target: str) -> dict:
        """What the app on ``target`` reports: its database and whether it can reach it."""
        return self._app(listener, target)[1]

    def _app(self, listener: AlbListener, target: str) -> tuple[object, dict]:
        """(the RDS instance the app on ``target`` uses or None, what the app reports)."""
        from moto.ec2.models import ec2_backends

        view = {"target": target, "database": None, "database_host": None, "database_endpoint": None,
                "database_region": None, "database_status": None, "database_reachable": "no"}
        inst = _instance(ec2_backends[listener.account][listener.region], target) if target.startswith("i-") else None
        if inst is None:
            return None, view
        host = db_host_from_user_data(inst.user_data)
        db, host = resolve_database(listener.account, listener.region, inst.vpc_id, host)
        view["database_host"] = host
        if db is not None:
            port = getattr(db, "port", None)
            view.update(database=db.db_instance_identifier, database_endpoint=f"{db.address}:{port}",
                        database_region=db.region, database_status=db.status)
            if db.status in CONNECTABLE and not self.faults.region_dark(db.region):
                view["database_reachable"] = "yes"
        return db, view

    def origin_target(self, domain: str) -> tuple["AlbListener | None", str | None, str | None]:
        """(ALB listener, address connected to, DNS failure) for a CloudFront origin's domain,
        resolved now through the sandbox's DNS: the first address answered leads to the ALB
        that has it."""
        found = self.resolve(domain)
        if found is None:  # no resolver wired in (a bare ListenerManager): by name only
            return self.by_dns(domain), None, None
        if found.get("rcode") != "NOERROR" or not found.get("addresses"):
            return None, None, f"DNS {found.get('rcode')}: no A record for {domain}"
        address = found["addresses"][0]
        return self.by_address(address), address, None

    def app_write(self, listener: AlbListener, target: str) -> tuple[int, str, dict]:
        """What the app on ``target`` answers for ``/write``: one write through the database it
        is configured for. (status, first words, app facts): 200 ``written`` when the database
        is reachable and takes writes, else 503 naming why (unreachable, a read replica,
        read_only in effect, not available)."""
        db, view = self._app(listener, target)
        if db is None:
            return 503, "write failed: no database", view
        if view["database_reachable"] != "yes":
            return 503, "write failed: database unreachable", view
        ok, why = self.write_verdict(db)
        if not ok:
            return 503, f"write refused: {why}", view
        return 200, "written", view

    # ------------------------------------------------------------------ addresses
    def _allocate(self, seed: str, n: int, avoid: set[str] | frozenset = frozenset()) -> list[str]:
        """``n`` (1..MAX_ADDRESSES) free addresses of the pool, from a hash of ``seed`` on
        (the same ALB gets the same addresses wherever it is created). Caller holds _lock."""
        n = max(1, min(MAX_ADDRESSES, n))
        taken = {a for l in self._albs.values() for a in l.addresses} | set(avoid)
        start = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
        out: list[str] = []
        for i in range(len(ADDRESS_POOL)):
            a = ADDRESS_POOL[(start + i * 7919) % len(ADDRESS_POOL)]  # 7919: prime, coprime to 762
            if a not in taken and a not in out:
                out.append(a)
                if len(out) == n:
                    break
        return sorted(out, key=ipaddress.ip_address)

    def set_addresses(self, listener: "AlbListener", addresses) -> list[str]:
        """Give an ALB new addresses: a list of 1-8 IPv4 addresses no other ALB has, or
        ``"rotate"`` for a fresh set of as many (none of its current ones), as when AWS replaces
        the load balancer's nodes."""
        if not isinstance(listener, AlbListener):
            raise ListenerError(f"{listener.name} is an edge, not a load balancer: it has no addresses")
        with self._lock:
            if addresses == "rotate":
                new = self._allocate(f"{listener.account}/{listener.region}/{listener.name}/{listener.addresses}",
                                     len(listener.addresses), avoid=set(listener.addresses))
                if len(new) < len(listener.addresses):
                    raise ListenerError("no free addresses left to rotate to")
            else:
                if not isinstance(addresses, list) or not 1 <= len(addresses) <= MAX_ADDRESSES:
                    raise ListenerError(f'addresses must be a list of 1-{MAX_ADDRESSES} IPv4 addresses, or "rotate"')
                new = []
                for a in addresses:
                    try:
                        ip = ipaddress.IPv4Address(a) if isinstance(a, str) else None
                    except ValueError:
                        ip = None
                    if ip is None or ip.is_loopback or ip.is_unspecified or ip.is_multicast:
                        raise ListenerError(f"not a usable IPv4 address: {a!r}")
                    if str(ip) in new:
                        raise ListenerError(f"address {ip} given twice")
                    new.append(str(ip))
                for other in self._albs.values():
                    clash = set(new) & set(other.addresses) if other is not listener else set()
                    if clash:
                        raise ListenerError(f"address {sorted(clash)[0]} belongs to {other.name}")
            listener.addresses = new
            return list(new)

    def by_address(self, address: str) -> "AlbListener | None":
        with self._lock:
            for listener in self._albs.values():
                if address in listener.addresses:
                    return listener
        return None

    # ------------------------------------------------------------------ lookups
    def all(self) -> list[Listener]:
        with self._lock:
            albs = sorted(self._albs.values(), key=lambda l: (l.region or "", l.name))
        return albs + [self.public, self.cdn]

    def by_dns(self, dns: str) -> AlbListener | None:
        dns = dns.lower().rstrip(".")
        if dns.startswith("dualstack."):
            dns = dns[len("dualstack."):]
        with self._lock:
            for listener in self._albs.values():
                if listener.dns_name.lower() == dns:
                    return listener
        return None

    def find(self, name: str) -> Listener:
        if not isinstance(name, str) or not name:
            raise ListenerError("name must be a non-empty string")
        for listener in self.all():
            if listener.name == name or (isinstance(listener, AlbListener)
                                         and name.lower().rstrip(".") in (listener.dns_name.lower(), listener.arn.lower())):
                return listener
        raise ListenerError(f"unknown listener {name!r}: expected an ALB name, DNS name or ARN, "
                            "'public' or 'cdn' (GET /_sandbox/listeners lists them)")

    def dns_map(self) -> dict[str, str]:
        with self._lock:
            return {l.dns_name: l.url for l in self._albs.values()}

    def reset_modes(self) -> None:
        for listener in self.all():
            if listener.mode != "up" or listener.delay_ms:
                listener.set_mode("up", 0)


# RDS statuses in which an instance accepts connections (RDS User Guide, "Viewing Amazon RDS
# DB instance status": billed and usable while the change is applied).
CONNECTABLE = ("available", "backing-up", "modifying", "configuring-enhanced-monitoring",
               "configuring-iam-database-auth", "configuring-log-exports", "storage-optimization",
               "moving-to-vpc", "resetting-master-credentials", "converting-to-vpc")

_DB_HOST = re.compile(r"""^\s*(?:export\s+)?DB_HOST\s*=\s*["']?([A-Za-z0-9.-]+)""", re.MULTILINE)


def _stop_all(listeners: list) -> None:
    """Stop listeners in parallel: each stop waits for its serve loop's poll interval."""
    if len(listeners) == 1:
        listeners[0].stop()
        return
    threads = [threading.Thread(target=l.stop, daemon=True) for l in listeners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)


def _instance(ec2, instance_id: str):
    try:
        return ec2.get_instance_by_id(instance_id)
    except Exception:  # noqa: BLE001 - moto raises InvalidInstanceID for unknown ids
        return None


def db_host_from_user_data(user_data) -> str | None:
    """The ``DB_HOST`` an instance's user data sets (base64, as EC2 keeps it), or None."""
    if not user_data:
        return None
    if isinstance(user_data, (list, tuple)):
        user_data = user_data[0] if user_data else ""
    if isinstance(user_data, bytes):
        user_data = user_data.decode("utf-8", "replace")
    text = str(user_data)
    try:
        decoded = base64.b64decode(text.strip(), validate=True).decode("utf-8")
        text = decoded
    except (binascii.Error, ValueError, UnicodeDecodeError):
        pass
    m = _DB_HOST.search(text)
    return m.group(1).lower().rstrip(".") if m else None


def resolve_database(account: str, region: str, vpc_id: str | None, host: str | None):
    """(RDS DBInstance or None, the host name the app starts from) for an app in ``vpc_id``.

    Without a host, the app uses the ``db`` CNAME of a private zone associated with its VPC.
    A name is followed through CNAMEs of the private zones associated with that VPC (up to 8
    hops) until it is an instance's endpoint address, in any region of the account."""
    from moto.rds.models import rds_backends
    from moto.route53.models import route53_backends

    from . import route53

    zones = [z for z in list(route53_backends[account]["aws"].zones.values())
             if z.private_zone and any(v.get("vpc_id") == vpc_id and v.get("vpc_region") in (region, None)
                                       for v in list(z.vpcs))]
    cnames: dict[str, str] = {}
    default = None
    for zone in zones:
        for rrset in route53.zone_rrsets(zone):
            if rrset.type == "CNAME" and rrset.records:
                name = rrset.name.lower().rstrip(".")
                cnames.setdefault(name, str(rrset.records[0]).lower().rstrip("."))
                if default is None and name.split(".", 1)[0] == "db":
                    default = name
    host = host or default
    if not host:
        return None, None
    addresses = {}
    for _, _, backend in backends(rds_backends):
        if backend.account_id != account:
            continue
        for db in list(backend.databases.values()):
            if db.address:
                addresses[db.address.lower()] = db
    name = host
    for _ in range(8):
        if name in addresses:
            return addresses[name], host
        if name not in cnames:
            break
        name = cnames[name]
    return None, host


def _default_account() -> str:
    from . import DEFAULT_ACCOUNT

    return DEFAULT_ACCOUNT

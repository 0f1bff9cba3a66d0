"""The sandbox process: moto in-process behind a fault-injecting WSGI middleware.

``Sandbox`` owns everything that runs: moto's ``ThreadedMotoServer`` (one endpoint for every
service and region), the per-service patches (rds, route53, cloudfront, backup, ec2, dynamodb), the local
listeners, the Route 53 health checker, the ReplicaLag publisher and the timer that drives
state transitions. Requests flow::

    client -> Middleware -> /_sandbox/*  control API (never faulted)
                         -> /moto-api/*  moto's own API (reset also resets the sandbox)
                         -> call log (calls.py: service, operation, region, status answered)
                         -> faults (by SigV4 region/service, and the client: X-Drctl-Client / User-Agent app/<name>)
                         -> the gate (shared; a snapshot or restore holds it alone: snapshot.py)
                         -> IAM, when enforced: credentials, signature, policies (iam.py)
                         -> Route 53's request rate (route53_limits.py: Throttling; after IAM, as
                            AWS attributes a request to the account its credentials belong to)
                         -> RPC v2 CBOR requests translated to JSON (rpcv2.py) -> moto
                            (ARC requests are answered by arc.py instead of moto)

Time is the sandbox's ``Clock`` (clock.py): real time unless a test pauses and steps it.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from . import (DEFAULT_ACCOUNT, arc, backup, cloudfront, cloudwatch, dynamodb, ec2, iam, rds, route53,
               route53_limits, rpcv2)
from .calls import CallLog, guard
from .calls import warm as warm_call_routes
from .clock import Clock
from .faults import MAX_HANG_SECONDS, FaultTable, error_response, request_client, request_scope, roll
from .listeners import ListenerManager
from .profile import Profile
from .scheduler import Scheduler
from .snapshot import Gate, Snapshots

log = logging.getLogger("drsandbox.server")


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without a stderr line per request (use --verbose for that)."""

    # A client that connects and then sends nothing must not hold a thread forever.
    timeout = MAX_HANG_SECONDS + 10

    # Counted so a crash test can wait until a killed client's last requests have been read
    # and answered (the call log's ``connections``).
    def setup(self) -> None:
        super().setup()
        self._calls = getattr(getattr(self.server, "app", None), "sb", None)
        self._calls = getattr(self._calls, "calls", None)
        if self._calls is not None:
            self._calls.connection_opened()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if getattr(self, "_calls", None) is not None:
                self._calls.connection_closed()

    def log_request(self, code="-", size="-") -> None:
        if log.isEnabledFor(logging.DEBUG):
            super().log_request(code, size)


class Middleware:
    """WSGI layer in front of moto: control API, moto reset hook, call log, fault injection."""

    def __init__(self, app, sandbox: "Sandbox") -> None:
        self.app = app
        self.sb = sandbox

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox"):
            return self.sb.control(environ, start_response)
        if path.startswith("/moto-api"):
            if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                self.sb.reset()
                start_response("200 OK", [("Content-Type", "application/json")])
                return [b'{"status": "ok"}']
            return self.app(environ, start_response)
        region, service = request_scope(environ)
        # ARC: a cluster endpoint's region is its path's, the control plane is us-west-2's.
        region = arc.fault_region(environ, service) or region
        calls = self.sb.calls
        call = calls.begin(environ, region, service)
        if region:
            answer = self.apply_faults(region, service, environ, request_client(environ))
            if answer is not None:
                status, headers, body = answer
                calls.record(call, status, faulted=True)
                start_response(f"{status} {http.client.responses.get(status, '')}", headers)
                return [body]
        respond = calls.recording(call, start_response)
        with self.sb.gate.shared():
            if call.epoch != calls.epoch:
                # Begun before a snapshot restore: it must not touch the restored state (a
                # client killed with its trial may still have requests on the way). The call
                # log's epoch decides both this and the log, so a call is applied iff logged.
                status, headers, body = error_response(
                    service, environ, "5xx", "drsandbox: the sandbox was restored from a snapshot while this "
                                             "request was on its way; it was not applied")
                calls.record(call, status)  # not in the restored log (the call began before it)
                start_response(f"{status} {http.client.responses.get(status, '')}", headers)
                return [body]
            if self.sb.iam.enforcing:  # authentication and authorization, as AWS (iam.py)
                refused = self.sb.iam.check(environ, call, region, service)
                if refused is not None:
                    status, headers, body = refused
                    calls.record(call, status)
                    start_response(f"{status} {http.client.responses.get(status, '')}", headers)
                    return [body]
            # After IAM: Route 53 throttles per account, counting the calls of the account's IAM
            # users against it (AWS Knowledge Center, "How can I avoid Route 53 API throttling
            # errors?"), so the caller is authenticated first; a request IAM refuses takes no
            # token (README, "IAM and the other sandbox features").
            if service == "route53" and not self.sb.r53limits.allow(route53_limits.request_account(environ),
                                                                     call.operation):
                # The account's Route 53 request rate: AWS's answer, not an injected fault.
                status, headers, body = error_response(service, environ, "throttle", "Rate exceeded")
                calls.record(call, status)
                start_response(f"{status} {http.client.responses.get(status, '')}", headers)
                return [body]
            try:
                if arc.handles(environ, service):
                    result = arc.handle(environ, respond, service)
                elif rpcv2.is_rpcv2(environ):
                    result = rpcv2.handle(self.app, environ, respond, service)
                else:
                    result = self.app(environ, respond)
            except BaseException:
                calls.record(call, 500)  # the server answers 500 for an app that raised
                raise
        return guard(result, calls, call)

    def apply_faults(self, region: str, service: str | None, environ, client: str | None = None):
        faults = self.sb.faults
        if not faults.matching(region, service, client):
            return None
        if faults.outage(region, service, client) is not None:
            # Hang like an unreachable region, but poll so clearing the fault releases us.
            deadline = time.monotonic() + MAX_HANG_SECONDS
            while faults.outage(region, service, client) is not None:
                if self.sb.stopping.is_set() or time.monotonic() > deadline:
                    return error_response(service, environ, "timeout")
                faults.wait_change(0.1)
        active = faults.matching(region, service, client)
        delay = sum(f.ms or 0 for f in active if f.kind == "latency")
        if delay:
            self.sb.stopping.wait(min(delay / 1000.0, MAX_HANG_SECONDS))
        for f in active:
            if f.kind == "errors" and roll(f.rate or 0.0):
                return error_response(service, environ, f.error or "5xx")
        return None


class _MotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose WSGI app is wrapped by our middleware."""

    def __init__(self, sandbox: "Sandbox", host: str, port: int) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self.sandbox = sandbox
        self.error: BaseException | None = None

    def _server_entry(self) -> None:
        try:
            self.dispatcher = DomainDispatcherApplication(create_backend_app)
            app = Middleware(self.dispatcher, self.sandbox)
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=_QuietHandler)
        except BaseException as e:  # e.g. port in use: report instead of hanging start()
            self.error = e
            self._server_ready_event.set()
            return
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.2)


class Sandbox:
    def __init__(self, profile: Profile, host: str = "127.0.0.1", port: int = 0, dns_port: int | None = None,
                 iam_mode: str = "off") -> None:
        self.profile = profile
        # IAM enforcement (off: any credentials work, as in moto); see iam.py.
        self.iam = iam.Iam(iam_mode)
        self.host, self.port = host, port
        # The UDP DNS server's port (dns.py) once started; None: no DNS server (the default).
        self.dns_port = dns_port
        self._dns = None
        self.stopping = threading.Event()
        self.clock = Clock()
        self.faults = FaultTable(now=self.clock.monotonic)
        self.calls = CallLog()
        self.scheduler = Scheduler(self.clock)
        # AWS requests hold it shared while moto handles them; a snapshot/restore alone.
        self.gate = Gate()
        self.listeners = ListenerManager(self.faults, profile, self.stopping)
        self.listeners.public_answer = self.public_answer
        self.listeners.cdn_plan = self.cdn_plan
        self.listeners.resolve = self._resolve_a
        self.listeners.write_verdict = rds.write_verdict
        self.health = route53.HealthChecker(self)
        self.lag = rds.LagPublisher(self)
        self.r53limits = route53_limits.Route53Limits(self)
        self.alarms = cloudwatch.AlarmEvaluator(self)
        self.scheduler.periodic = self._catch_up
        self.snapshots = Snapshots(self)
        self.edges: dict = {"account": DEFAULT_ACCOUNT, "public": None, "cdn": None}
        self._moto: _MotoServer | None = None
        from .control import ControlApi

        self.control = ControlApi(self)
        for module in (rds, route53, route53_limits, cloudfront, backup, ec2, dynamodb, cloudwatch, arc):
            module.install(self)
        _install_elbv2_hooks(self)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        self._moto = _MotoServer(self, self.host, self.port)
        self._moto.start()
        if self._moto.error is not None:
            raise self._moto.error
        self.port = self._moto.get_host_and_port()[1]
        if self.dns_port is not None:
            from .dns import UdpDnsServer

            self._dns = UdpDnsServer(self, self.dns_port, self.host)
            self.dns_port = self._dns.start()
        self.listeners.start()
        self.health.start()
        self.lag.start()
        self.alarms.start()
        threading.Thread(target=self._reconcile_loop, name="listener-reconcile", daemon=True).start()
        threading.Thread(target=self._auto_start_loop, name="rds-auto-start", daemon=True).start()
        threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        return self.url

    # The services and regions a warm-standby rehearsal touches first.
    WARM_SERVICES = ("sts", "ec2", "elbv2", "autoscaling", "rds", "backup", "route53", "cloudfront", "cloudwatch",
                     "dynamodb")
    WARM_REGIONS = ("us-east-1", "us-west-2")

    def _warm_up(self) -> None:
        """Pay moto's first-use costs (botocore models, Flask apps, regional backends) while
        the first client is still starting, instead of inside its first requests."""
        from moto.backends import get_backend
        from moto.core.utils import get_service_model

        dispatcher = self._moto.dispatcher
        for name in self.WARM_SERVICES:
            if self.stopping.is_set():
                return
            try:
                get_service_model(name)
                with dispatcher.lock:
                    if name not in dispatcher.app_instances:
                        dispatcher.app_instances[name] = dispatcher.create_app(name)
                backends = get_backend(name)
                # Building a backend changes moto's state: not while a snapshot copies it.
                with self.gate.shared():
                    for region in self.WARM_REGIONS if name not in ("route53", "cloudfront") else ("aws",):
                        backends[DEFAULT_ACCOUNT][region]
            except Exception:  # warming is an optimisation; a failure only costs time later
                log.debug("warm-up of %s failed", name, exc_info=True)
        for name in ("route53", "cloudfront", "backup"):  # the call log's REST route tables
            if not self.stopping.is_set():
                warm_call_routes(name)
        if self.iam.enforcing and not self.stopping.is_set():
            iam.definitions()  # the Service Authorization Reference (~0.2 s), before the first check

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _catch_up(self, now: float) -> None:
        """A step moved the clock to ``now``: the alarm evaluations, probes and ReplicaLag rounds
        due by then (alarms first: a CLOUDWATCH_METRIC health check reads what they give), and
        the stopped DB instances whose seven days are up."""
        self.alarms.catch_up(now)
        self.health.catch_up(now)
        self.lag.catch_up(now)
        rds.auto_start_due(now)

    def _auto_start_loop(self) -> None:
        """On a running clock: start stopped DB instances as their seven days run out (a
        paused clock moves only by steps, which call _catch_up)."""
        while not self.stopping.wait(0.25):
            if self.clock.paused:
                continue
            try:
                rds.auto_start_due(self.clock.monotonic())
            except Exception:
                log.exception("automatic start of stopped DB instances failed")

    def _reconcile_loop(self) -> None:
        while not self.stopping.wait(0.5):
            try:
                self.listeners.reconcile()
            except Exception:
                log.exception("listener reconcile failed")

    def stop(self) -> None:
        self.stopping.set()
        self.faults.clear()  # wakes every request held by an outage
        if self._moto is not None and self._moto._server is not None:
            self._moto._server.shutdown()
            self._moto._server.server_close()
        self.listeners.stop()
        if self._dns is not None:
            self._dns.stop()
        self.health.stop()
        self.scheduler.stop()

    def reset(self) -> None:
        """Forget everything: moto state, faults, listener modes, edges, pending transitions,
        the call log; a paused clock runs again. Saved snapshots are kept."""
        from moto.moto_api._internal.models import moto_api_backend

        self.scheduler.reset()
        self.clock.reset()
        self.faults.clear()
        self.calls.clear()
        moto_api_backend.reset()
        self.edges = {"account": DEFAULT_ACCOUNT, "public": None, "cdn": None}
        self.health.reset()
        self.lag.reset()
        self.iam.reset()
        route53.reset()
        self.r53limits.reset()
        dynamodb.reset()
        self.listeners.reconcile()
        self.listeners.reset_modes()

    # ------------------------------------------------------------------ edges
    def public_record_name(self) -> str | None:
        pub = self.edges.get("public")
        return pub["record_name"].lower().rstrip(".") if pub else None

    def record_answer(self, account: str, zone, name: str, rtype: str):
        """(record data, rcode, chosen record set, ALB listener) of a TestDNSAnswer-style query,
        as ``dns_answers`` says (dns.py; route53.py asks through here, not importing dns)."""
        from . import dns

        return dns.record_answer(self, account, zone, name, rtype)

    def public_answer(self):
        """(record name, what Route 53 answers now: a DNS name, or an ALB address under
        ``dns_answers: addresses``) for the public edge, or None. Read from Route 53's data
        plane (records and health), never through the API: a control-plane outage leaves it."""
        from moto.route53.models import route53_backends

        pub = self.edges.get("public")
        if not pub:
            return None
        zone = route53_backends[self.edges["account"]]["aws"].zones.get(pub["zone_id"])
        if zone is None:
            return None
        data, _, _, _ = self.record_answer(self.edges["account"], zone, pub["record_name"],
                                           pub.get("record_type", "A"))
        return pub["record_name"], (data[0] if data else None)

    def _resolve_a(self, name: str) -> dict:
        """The sandbox's DNS answer for an A query (dns.resolve): the cdn edge's origins."""
        from . import dns

        return dns.resolve(self, name, "A")

    def cdn_plan(self):
        cdn = self.edges.get("cdn") or {}
        return cloudfront.edge_plan(cdn.get("distribution_id"), self.edges["account"])


def _install_elbv2_hooks(sandbox: Sandbox) -> None:
    """Start/stop a load balancer's listener as soon as it is created/deleted in moto, and open/close
    its port as soon as its first ELBv2 listener is created / its last one deleted."""
    from moto.elbv2.models import ELBv2Backend

    global _SB
    _SB = sandbox
    if getattr(ELBv2Backend, "_sbx_hooked", False):
        return
    ELBv2Backend._sbx_hooked = True
    create, delete = ELBv2Backend.create_load_balancer, ELBv2Backend.delete_load_balancer

    def create_load_balancer(self, *args, **kwargs):
        lb = create(self, *args, **kwargs)
        _SB.listeners.reconcile()
        return lb

    def delete_load_balancer(self, *args, **kwargs):
        result = delete(self, *args, **kwargs)
        _SB.listeners.reconcile()
        return result

    ELBv2Backend.create_load_balancer = create_load_balancer
    ELBv2Backend.delete_load_balancer = delete_load_balancer

    # A load balancer accepts connections only while it has a listener: open/close its port at once.
    for op in ("create_listener", "delete_listener"):
        original = getattr(ELBv2Backend, op)

        def hooked(self, *args, _original=original, **kwargs):
            result = _original(self, *args, **kwargs)
            _SB.listeners.reconcile()
            return result

        setattr(ELBv2Backend, op, hooked)


_SB: Sandbox | None = None

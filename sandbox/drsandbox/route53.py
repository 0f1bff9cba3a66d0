"""Route 53 made honest: real health checks, answers by health, change propagation.

moto stores health checks and records but never probes anything. Here:

* A checker thread probes every health check's target at its RequestInterval (scaled by the
  profile: ``health_check_interval`` is the period of a 10 s check, a 30 s check waits 3x)
  and applies FailureThreshold the way Route 53 does: a healthy check turns unhealthy after
  that many consecutive failures and healthy again after that many successes. Targets are
  the sandbox's local listeners (an ALB DNS name, or the public name), or a loopback IP;
  nothing is ever sent off this machine. Disabled checks count as healthy; Inverted flips.
* CALCULATED, CLOUDWATCH_METRIC and RECOVERY_CONTROL checks probe nothing: the checker
  evaluates them in rounds, one every ``health_check_interval``, after that round's probes
  (Developer Guide, "How Route 53 determines whether a health check is healthy"): a calculated
  check counts its healthy children against HealthThreshold (children that probe nothing
  first); a CloudWatch-alarm check follows the state the alarm's *data* gives (cloudwatch.py;
  never a SetAlarmState), InsufficientDataHealthStatus when that is INSUFFICIENT_DATA or the
  alarm's region is dark; a routing-control check is healthy while the ARC routing control is
  On (arc.py). A new check is healthy until its first round. CreateHealthCheck validates their
  fields (an existing, supported alarm; an existing routing control; existing children) and
  HealthCheckConfig shows them as AWS does.
* get_health_check_status returns the last real observation (per checker region), or the last
  round's verdict; InvalidInput for a CALCULATED check (API reference: "You can't use
  GetHealthCheckStatus to get the status of a calculated health check"), whose status is the
  AWS/Route53 HealthCheckStatus metric, published in us-east-1 once a CloudWatch minute with
  ChildHealthCheckHealthyCount and HealthCheckPercentageHealthy.
* TestDNSAnswer (moto: 404) answers from the records and health: for failover records the
  PRIMARY if it is healthy, else the SECONDARY; if both are unhealthy Route 53 answers the
  PRIMARY. An alias answer is the target's DNS name, or with ``dns_answers: addresses`` the
  target ALB's addresses, as AWS answers (dns.py).
* Every change gets its own id and is PENDING until ``route53_change_propagation`` has
  passed, then INSYNC; an unknown id is NoSuchChange.
* ChangeResourceRecordSets applies a batch atomically: every change is checked against the
  records as the earlier changes of the same batch leave them, and only a batch without
  errors replaces the zone's records, in one step (no reader ever sees half a batch). A
  DELETE must name a record exactly as it is (InvalidChangeBatch "not found" / "values
  provided do not match" otherwise), a CREATE of an existing name/type/set identifier is
  InvalidChangeBatch, and a name keeps at most one PRIMARY and one SECONDARY failover record.
* create_health_check accepts RequestInterval 10 or 30 only and FailureThreshold 1-10;
  update_health_check honours HealthCheckVersion; a check still used by a record cannot be
  deleted (HealthCheckInUse).

Probe times and change propagation are on the sandbox's clock (clock.py): while it is paused
nothing is probed and nothing propagates; a step probes every check that fell due
(``HealthChecker.catch_up``) before it returns, so a test counts probe intervals exactly.
"""

from __future__ import annotations

import copy
import dataclasses
import http.client
import ipaddress
import logging
import random
import socket
import string
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.route53 import urls as r53_urls
from moto.route53.exceptions import DnsNameInvalidForZone, InvalidActionValue, InvalidInput, Route53ClientError
from moto.route53.models import HealthCheck, RecordSet, Route53Backend, route53_backends
from moto.route53.responses import Route53
from moto.route53.utils import validate_domain_name

from . import backends

log = logging.getLogger("drsandbox.route53")

_SB = None  # the running Sandbox (set by install)

# Route 53's default checker regions when a health check names none.
DEFAULT_CHECKER_REGIONS = ["us-east-1", "us-west-1", "us-west-2", "eu-west-1",
                           "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"]
_CHECKER_IPS = {r: f"15.177.{i * 8}.{10 + i}" for i, r in enumerate(DEFAULT_CHECKER_REGIONS)}

# Checks that probe nothing: evaluated in rounds from other state (children, an alarm's data
# stream, a routing control), not by sending requests.
DERIVED = ("CALCULATED", "CLOUDWATCH_METRIC", "RECOVERY_CONTROL")

TIMEOUT_TEXT = ("Failure: Connection timed out. The endpoint or the internet connection is down, "
                "or requests are being blocked by your firewall.")


# --------------------------------------------------------------------------- health checks

@dataclass
class _State:
    healthy: bool = True          # Route 53 treats a new check as healthy until proven otherwise
    ok_streak: int = 0
    fail_streak: int = 0
    report: str | None = None
    checked_at: object = None     # datetime of the last observation
    next_due: float = 0.0
    probing: bool = False
    children_healthy: int | None = None  # CALCULATED: healthy children at the last round


class HealthChecker:
    """Probes every health check in every account on its own schedule."""

    def __init__(self, sandbox) -> None:
        self.sb = sandbox
        self._states: dict[tuple[str, str], _State] = {}
        # When the next round of the checks that probe nothing (CALCULATED, CLOUDWATCH_METRIC,
        # RECOVERY_CONTROL) is due, on the clock: one every health_check_interval.
        self._derived_next = 0.0
        # When the next AWS/Route53 metrics are published (us-east-1), once a CloudWatch minute.
        self._metrics_next = 0.0
        self._lock = threading.Lock()
        # Held for a whole round of scheduling probes (the checker's tick, a step's catch-up,
        # a snapshot or restore): they never interleave.
        self.tick_lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="r53-probe")
        self._thread = threading.Thread(target=self._loop, name="r53-checker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def reset(self) -> None:
        with self._lock:
            self._states.clear()
            self._derived_next = 0.0
            self._metrics_next = 0.0

    # ------------------------------------------------------------------ snapshot
    def state(self) -> dict:
        """Every check's observations and streaks (copies), and when the next round of the
        checks that probe nothing is due. A probe in flight is not part of the state: its
        check is probed again when due."""
        with self._lock:
            return {"states": {k: dataclasses.replace(st, probing=False) for k, st in self._states.items()},
                    "derived_next": self._derived_next, "metrics_next": self._metrics_next}

    def restore(self, saved: dict) -> None:
        # Probes in flight finish on the old _State objects, which nothing reads any more.
        with self._lock:
            self._states = {k: dataclasses.replace(st) for k, st in saved["states"].items()}
            self._derived_next = saved["derived_next"]
            self._metrics_next = saved["metrics_next"]

    def _loop(self) -> None:
        while not self.sb.stopping.wait(0.05):
            try:
                self._tick()
            except Exception:  # keep checking whatever one bad check does
                log.exception("health checker tick failed")

    def _probed(self, hc) -> bool:
        return hc.type_ not in DERIVED

    def _tick(self) -> None:
        # While the clock is paused, probes happen only when a step passes their time
        # (catch_up), so a stepping test sees them at exactly the virtual times they fall on.
        if self.sb.clock.paused:
            return
        with self.tick_lock:
            now = self.sb.clock.monotonic()
            live: set[tuple[str, str]] = set()
            for account, _, backend in backends(route53_backends):
                for hc in list(backend.health_checks.values()):
                    key = (account, hc.id)
                    live.add(key)
                    if not self._probed(hc):
                        continue  # nothing to probe: evaluated in rounds (_derive_if_due)
                    with self._lock:
                        st = self._states.setdefault(key, _State())
                        if st.next_due > now + self.interval(hc):
                            st.next_due = now  # the clock was set back (a reset): probe now
                        if st.probing or now < st.next_due:
                            continue
                        st.probing = True
                        st.next_due = now + self.interval(hc)
                    self._submit(hc, st, 1)
            with self._lock:
                for key in [k for k in self._states if k not in live]:
                    del self._states[key]
            self._derive_if_due(now)
            self._publish_if_due(now)

    def _submit(self, hc, st: _State, times: int):
        try:
            return self._pool.submit(self._probe, hc, st, times)
        except RuntimeError:  # the pool is shut down: the sandbox is stopping
            with self._lock:
                st.probing = False
            return None

    def created(self, account: str, hc_id: str) -> None:
        """A new check: its first probe is due at once (on the clock)."""
        with self._lock:
            self._states.setdefault((account, hc_id), _State(next_due=self.sb.clock.monotonic()))

    def _wait_idle(self) -> None:
        """Wait (bounded) for probes in flight: a step counts them as done before it."""
        deadline = time.monotonic() + self.sb.profile.seconds("health_check_timeout") + 2.0
        while time.monotonic() < deadline:
            with self._lock:
                if not any(st.probing for st in self._states.values()):
                    return
            time.sleep(0.005)

    def catch_up(self, now: float) -> None:
        """A step moved the clock to ``now``: run every probe that fell due since, in this
        thread (one probe per check stands for all its due times in the step: nothing a
        probe looks at changes while the clock is stepped), then return."""
        with self.tick_lock:
            self._wait_idle()
            due = []
            for account, _, backend in backends(route53_backends):
                for hc in list(backend.health_checks.values()):
                    if not self._probed(hc):
                        continue
                    interval = self.interval(hc)
                    with self._lock:
                        st = self._states.setdefault((account, hc.id), _State())
                        if st.probing or now < st.next_due:
                            continue
                        if st.next_due <= 0:  # never probed: once now
                            times, st.next_due = 1, now + interval
                        else:
                            times = int((now - st.next_due) // interval) + 1
                            st.next_due += times * interval
                        st.probing = True
                    due.append(self._submit(hc, st, times))
            for f in due:
                if f is not None:
                    f.result()
            # After the probes: a CALCULATED check sees its endpoint children as of now.
            self._derive_if_due(now)
            self._publish_if_due(now)

    def interval(self, hc) -> float:
        return self.sb.profile.seconds("health_check_interval") * (int(hc.request_interval or 30) / 10.0)

    def _probe(self, hc, st: _State, times: int = 1) -> None:
        try:
            ok, text = self.check_once(hc)
        except Exception as e:  # a probe bug is a failed observation, not a dead checker
            ok, text = False, f"Failure: {type(e).__name__}: {e}"
        threshold = int(hc.failure_threshold or 3)
        with self._lock:
            st.report, st.checked_at = text, utcnow()
            # ``times`` observations of the same result (a step that passed several probe
            # times); beyond the threshold more of them change nothing.
            for _ in range(min(times, threshold + 1)):
                if ok:
                    st.ok_streak, st.fail_streak = st.ok_streak + 1, 0
                    if not st.healthy and st.ok_streak >= threshold:
                        st.healthy = True
                else:
                    st.fail_streak, st.ok_streak = st.fail_streak + 1, 0
                    if st.healthy and st.fail_streak >= threshold:
                        st.healthy = False
            st.probing = False

    # ------------------------------------------------------------------ one probe
    def _target(self, hc) -> tuple[str, int, str] | str:
        """(host, port, Host header) to connect to, or a failure text."""
        fqdn = (hc.fqdn or "").rstrip(".").lower()
        if fqdn:
            listener = self.sb.listeners.by_dns(fqdn)
            if listener is None and fqdn == self.sb.public_record_name():
                listener = self.sb.listeners.public
            if listener is not None:
                return "127.0.0.1", listener.port, fqdn
            if fqdn == "localhost" or _is_loopback(fqdn):
                return fqdn, int(hc.port or 80), fqdn
            return "Failure: DNS resolution failed: Rcode NXDomain(3)"
        ip = hc.ip_address
        if ip and _is_loopback(ip):
            return ip, int(hc.port or 80), ip
        listener = self.sb.listeners.by_address(ip) if ip else None
        if listener is not None:  # one of an ALB's addresses (listeners.py): that ALB
            return "127.0.0.1", listener.port, ip
        # Never send traffic off this machine: any other address looks unreachable.
        return TIMEOUT_TEXT

    def check_once(self, hc) -> tuple[bool, str]:
        target = self._target(hc)
        if isinstance(target, str):
            return False, target
        host, port, host_header = target
        timeout = self.sb.profile.seconds("health_check_timeout")
        kind = (hc.type_ or "HTTP").upper()
        try:
            if kind == "TCP":
                socket.create_connection((host, port), timeout=timeout).close()
                return True, "Success: TCP connection established."
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                conn.request("GET", hc.resource_path or "/", headers={
                    "Host": host_header, "Connection": "close",
                    "User-Agent": "Amazon-Route53-Health-Check-Service (ref drsandbox; report http://amzn.to/1vsZADi)"})
                resp = conn.getresponse()
                body = resp.read(5120)
            finally:
                conn.close()
        except ConnectionRefusedError:
            return False, "Failure: Connection refused. The endpoint is not accepting connections."
        except (socket.timeout, TimeoutError):
            return False, TIMEOUT_TEXT
        except (OSError, http.client.HTTPException) as e:
            return False, f"Failure: Connection error: {type(e).__name__}."
        reason = http.client.responses.get(resp.status, "")
        if not 200 <= resp.status < 400:
            return False, f"Failure: HTTP Status Code {resp.status}, {reason}"
        if kind.endswith("STR_MATCH") and (hc.search_string or "").encode() not in body:
            return False, (f"Failure: HTTP Status Code {resp.status}, {reason}. "
                           "Search string not found in the first 5120 bytes of the response body.")
        return True, f"Success: HTTP Status Code {resp.status}, {reason}"

    # ------------------------------------------------------------------ checks that probe nothing
    def _derive_if_due(self, now: float) -> None:
        """A round of the CALCULATED, CLOUDWATCH_METRIC and RECOVERY_CONTROL checks once every
        ``health_check_interval`` (one round stands for every due time a step passed)."""
        period = self.interval_of(10)
        with self._lock:
            if self._derived_next > now + period:
                self._derived_next = now  # the clock was set back (a reset)
            if now < self._derived_next:
                return
            self._derived_next = now + period
        for account, _, backend in backends(route53_backends):
            done: set[str] = set()
            for hc in list(backend.health_checks.values()):
                if hc.type_ in DERIVED:
                    try:
                        self._derive(account, backend, hc, done, 0)
                    except Exception:  # one broken check must not stop the others
                        log.exception("evaluating health check %s failed", hc.id)

    def _derive(self, account: str, backend, hc, done: set, depth: int) -> None:
        if hc.id in done or depth > 8:
            return
        done.add(hc.id)
        children_healthy = None
        if hc.type_ == "CALCULATED":
            # "Route 53 adds up the number of child health checks that are considered to be
            # healthy" and compares it with HealthThreshold (Developer Guide, "Health checks
            # that monitor other health checks"). Children that probe nothing are evaluated
            # first, in this round; a deleted child counts as unhealthy.
            children = [backend.health_checks.get(c) for c in hc.children or []]
            for c in children:
                if c is not None and c.type_ in DERIVED:
                    self._derive(account, backend, c, done, depth + 1)
            children_healthy = sum(1 for c in children if c is not None and self.is_healthy(account, c))
            threshold = int(hc.health_threshold or 0)
            healthy = children_healthy >= threshold
            report = (f"{'Success' if healthy else 'Failure'}: {children_healthy} of {len(children)} child health "
                      f"checks are healthy (HealthThreshold {threshold}).")
        elif hc.type_ == "RECOVERY_CONTROL":
            from . import arc

            state = arc.routing_control_state(account, getattr(hc, "routing_control_arn", None))
            healthy = state == "On"
            report = (f"{'Success' if healthy else 'Failure'}: Routing control state is "
                      f"{state if state else 'unknown (the routing control does not exist)'}.")
        else:  # CLOUDWATCH_METRIC
            healthy, report = self._alarm_health(account, hc)
        with self._lock:
            st = self._states.setdefault((account, hc.id), _State())
            st.healthy, st.report, st.checked_at = healthy, report, utcnow()
            st.children_healthy = children_healthy

    def _alarm_health(self, account: str, hc) -> tuple[bool, str]:
        """Developer Guide, "Health checks that monitor CloudWatch alarms": the alarm's data
        stream decides (OK healthy, ALARM unhealthy; a SetAlarmState never counts), and
        InsufficientDataHealthStatus when it does not: Healthy, Unhealthy, or LastKnownStatus
        (a new check has none: healthy). An alarm in a dark region cannot be read: that is
        insufficient data too."""
        from . import cloudwatch

        ident = getattr(hc, "alarm_identifier", None) or {}
        region, name = ident.get("Region"), ident.get("Name")
        what = f"CloudWatch alarm {name} in {region}"
        if region and self.sb.alarms.region_dark(region):
            state, why = None, f"{what} cannot be read (its region is unreachable)"
        else:
            state = cloudwatch.evaluated_state(account, region, name) if region and name else None
            why = f"{what} does not exist" if state is None else f"{what}: the data stream is {state}"
        if state == "OK":
            return True, f"Success: {why}."
        if state == "ALARM":
            return False, f"Failure: {why}."
        mode = getattr(hc, "insufficient_data_health_status", None) or "LastKnownStatus"
        if mode == "Healthy":
            healthy = True
        elif mode == "Unhealthy":
            healthy = False
        else:
            with self._lock:
                st = self._states.get((account, hc.id))
                healthy = True if st is None else st.healthy
        return healthy, f"{'Success' if healthy else 'Failure'}: {why}; InsufficientDataHealthStatus {mode}."

    def _publish_if_due(self, now: float) -> None:
        """The AWS/Route53 health-check metrics, once a CloudWatch minute, in us-east-1 (where
        Route 53 publishes them; Developer Guide, "Monitoring health checks using CloudWatch"):
        HealthCheckStatus (1 healthy, 0 unhealthy) for every check, HealthCheckPercentageHealthy
        for endpoint checks and ChildHealthCheckHealthyCount for calculated ones. This is how
        the status of a CALCULATED check is read, as GetHealthCheckStatus refuses it. Nothing is
        published while us-east-1's CloudWatch is dark."""
        from moto.cloudwatch.models import cloudwatch_backends

        period = self.sb.profile.seconds("cloudwatch_minute")
        with self._lock:
            if self._metrics_next > now + period:
                self._metrics_next = now
            if now < self._metrics_next:
                return
            self._metrics_next = now + period
        if self.sb.alarms.region_dark("us-east-1"):
            return
        for account, _, backend in backends(route53_backends):
            data = []
            for hc in list(backend.health_checks.values()):
                dims = [{"Name": "HealthCheckId", "Value": hc.id}]
                healthy = self.is_healthy(account, hc)
                data.append({"MetricName": "HealthCheckStatus", "Value": 1.0 if healthy else 0.0, "Dimensions": dims})
                if hc.type_ == "CALCULATED":
                    count = self.children_healthy(account, hc)
                    if count is not None:
                        data.append({"MetricName": "ChildHealthCheckHealthyCount", "Value": float(count),
                                     "Dimensions": dims})
                elif self._probed(hc) and not hc.disabled:
                    data.append({"MetricName": "HealthCheckPercentageHealthy", "Value": 100.0 if
                                 self.raw_healthy(account, hc) else 0.0, "Unit": "Percent", "Dimensions": dims})
            if data:
                cloudwatch_backends[account]["us-east-1"].put_metric_data("AWS/Route53", data)

    def interval_of(self, request_interval: int) -> float:
        return self.sb.profile.seconds("health_check_interval") * (int(request_interval) / 10.0)

    # ------------------------------------------------------------------ answers
    def raw_healthy(self, account: str, hc) -> bool:
        """Health before Disabled/Inverted are applied: the last observation (probes) or round
        (the checks that probe nothing); a new check is healthy until then (Developer Guide:
        "Route 53 considers a new health check to be healthy until there's enough data")."""
        with self._lock:
            st = self._states.get((account, hc.id))
            return True if st is None else st.healthy

    def is_healthy(self, account: str, hc) -> bool:
        if hc.disabled:
            return True
        healthy = self.raw_healthy(account, hc)
        return not healthy if hc.inverted else healthy

    def children_healthy(self, account: str, hc) -> int | None:
        with self._lock:
            st = self._states.get((account, hc.id))
            return None if st is None else st.children_healthy

    def observations(self, account: str, hc) -> list[dict]:
        with self._lock:
            st = self._states.get((account, hc.id))
            report, checked = (st.report, st.checked_at) if st else (None, None)
        if hc.disabled:
            report = "Success: Health checking is disabled; Route 53 considers this health check healthy."
            checked = checked or utcnow()
        elif report is None:
            return []
        elif hc.inverted:
            # Inverted: the observation still shows what was seen, with the verdict flipped.
            if report.startswith("Success"):
                report = "Failure (inverted): " + report[len("Success: "):]
            else:
                report = "Success (inverted): " + report.split(": ", 1)[-1]
        regions = hc.regions or DEFAULT_CHECKER_REGIONS
        return [{"Region": r, "IPAddress": _CHECKER_IPS.get(r, "15.177.2.10"),
                 "StatusReport": {"Status": report, "CheckedTime": checked}} for r in regions]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- DNS answers

def _truthy(v) -> bool:
    return v is True or (isinstance(v, str) and v.lower() == "true")


def record_healthy(account: str, rrset) -> bool:
    """What Route 53 uses to pick among failover records."""
    sb = _SB
    if rrset.health_check_id:
        hc = route53_backends[account]["aws"].health_checks.get(rrset.health_check_id)
        if hc is None or not sb.health.is_healthy(account, hc):
            return False
    alias = rrset.alias_target or {}
    if alias and _truthy(alias.get("EvaluateTargetHealth")):
        listener = sb.listeners.by_dns(alias.get("DNSName", ""))
        # An ALB alias is healthy when the load balancer has a healthy (running, registered)
        # target. Reachability of the ALB itself is deliberately not consulted: a region
        # going dark is what the Route 53 health check detects, at its own pace.
        if listener is not None and not sb.listeners.healthy_targets(listener):
            return False
    return True


def _data(rrset) -> list[str]:
    if rrset.alias_target:
        return [str(rrset.alias_target.get("DNSName", "")).rstrip(".")]
    return list(rrset.records or [])


def zone_rrsets(zone) -> list:
    """The zone's records as of one moment: a batch replaces the whole list at once."""
    return list(zone.rrsets)


def answer(account: str, zone, name: str, rtype: str) -> tuple[list[str], str, object]:
    """(record data, DNS response code, chosen record set) for one simulated query."""
    qname = name.lower().rstrip(".") + "."
    at_name = [r for r in zone_rrsets(zone) if r.name.lower() == qname]
    if not at_name:
        return [], "NXDOMAIN", None
    matches = [r for r in at_name if r.type == rtype] or [r for r in at_name if r.type == "CNAME"]
    if not matches:
        return [], "NOERROR", None
    chosen = None
    failover = [r for r in matches if r.failover]
    if failover:
        primary = next((r for r in failover if r.failover == "PRIMARY"), None)
        secondary = next((r for r in failover if r.failover == "SECONDARY"), None)
        if primary is not None and record_healthy(account, primary):
            chosen = primary
        elif secondary is not None and record_healthy(account, secondary):
            chosen = secondary
        else:
            # All unhealthy: Route 53 behaves as if all were healthy and answers the primary.
            chosen = primary or secondary
    elif any(r.weight is not None for r in matches):
        healthy = [r for r in matches if record_healthy(account, r)] or matches
        chosen = max(healthy, key=lambda r: int(r.weight or 0))
    else:
        chosen = next((r for r in matches if record_healthy(account, r)), matches[0])
    return _data(chosen), "NOERROR", chosen


# --------------------------------------------------------------------------- changes

_changes: dict[tuple[str, str], tuple[object, float]] = {}
_changes_lock = threading.Lock()


def _new_change_id() -> str:
    return "C" + "".join(random.choices(string.ascii_uppercase + string.digits, k=13))


def _register_change(account: str, submitted) -> dict:
    cid = _new_change_id()
    t0 = _SB.clock.monotonic()
    with _changes_lock:
        _changes[(account, cid)] = (submitted, t0)
    _SB.clock.note(t0 + _SB.profile.seconds("route53_change_propagation"))  # INSYNC from then on
    return {"Id": f"/change/{cid}", "Status": "PENDING", "SubmittedAt": submitted}


def _with_pending_change(original):
    """Wrap a response method whose result has a ChangeInfo: give it a fresh, PENDING id."""

    def wrapper(self):
        result = original(self)
        body = getattr(result, "result", None)
        if isinstance(body, dict) and isinstance(body.get("ChangeInfo"), dict):
            body = dict(body)
            submitted = body["ChangeInfo"].get("SubmittedAt") or utcnow()
            body["ChangeInfo"] = _register_change(self.current_account, submitted)
            return ActionResult(body)
        return result

    wrapper.__name__ = original.__name__
    return wrapper


class NoSuchChange(Route53ClientError):
    def __init__(self, change_id: str) -> None:
        super().__init__("NoSuchChange", f"A change with the specified change ID does not exist: {change_id}")


class HealthCheckInUse(Route53ClientError):
    def __init__(self, hc_id: str) -> None:
        super().__init__("HealthCheckInUse",
                         f"The health check {hc_id} is still referenced from one or more resource record sets.")


class HealthCheckVersionMismatch(Route53ClientError):
    def __init__(self) -> None:
        super().__init__("HealthCheckVersionMismatch",
                         "The value of HealthCheckVersion in the request doesn't match the value of "
                         "HealthCheckVersion in the health check.")


# --------------------------------------------------------------------------- record changes

class InvalidChangeBatch(Route53ClientError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidChangeBatch", message)


_batch_lock = threading.Lock()


def _describe(rs: dict) -> str:
    text = f"[name='{rs.get('Name')}', type='{rs.get('Type')}'"
    if rs.get("SetIdentifier") is not None:
        text += f", set-identifier='{rs['SetIdentifier']}'"
    return text + "]"


def _values(rs: dict) -> list[str]:
    return sorted(str(r.get("Value") if isinstance(r, dict) else r) for r in rs.get("ResourceRecords") or [])


def _comparable(rrset) -> dict:
    """What must match for a DELETE: every value of the record set, normalised."""
    get = (lambda k: rrset.get(k)) if isinstance(rrset, dict) else (lambda k: _RECORD_ATTRS[k](rrset))
    alias = get("AliasTarget") or None
    if alias:
        alias = {"HostedZoneId": str(alias.get("HostedZoneId", "")).split("/")[-1],
                 "DNSName": str(alias.get("DNSName", "")).lower().rstrip("."),
                 "EvaluateTargetHealth": _truthy(alias.get("EvaluateTargetHealth"))}
    ttl, weight = get("TTL"), get("Weight")
    return {"TTL": None if ttl is None else int(ttl), "Values": get("Values"), "AliasTarget": alias,
            "HealthCheckId": get("HealthCheckId") or None, "Failover": get("Failover") or None,
            "Weight": None if weight is None else int(weight), "Region": get("Region") or None,
            "GeoLocation": get("GeoLocation") or None, "MultiValueAnswer": _truthy(get("MultiValueAnswer"))}


_RECORD_ATTRS = {
    "AliasTarget": lambda r: r.alias_target, "TTL": lambda r: r.ttl,
    "Values": lambda r: sorted(str(v) for v in r.records or []),
    "HealthCheckId": lambda r: r.health_check_id, "Failover": lambda r: r.failover,
    "Weight": lambda r: r.weight, "Region": lambda r: r.region, "GeoLocation": lambda r: r.geo_location,
    "MultiValueAnswer": lambda r: r.multi_value_answer,
}


def _request_comparable(rs: dict) -> dict:
    return _comparable({**rs, "Values": _values(rs)})


def _change_resource_record_sets(self, zoneid: str, change_list: list) -> None:
    """Route53Backend.change_resource_record_sets, all or nothing (see the module docstring)."""
    zone = self.get_hosted_zone(zoneid)
    with _batch_lock:
        work = list(zone.rrsets)
        journal = []
        for change in change_list:
            original = copy.deepcopy(change)
            action = change.get("Action")
            if action not in ("CREATE", "UPSERT", "DELETE"):
                raise InvalidActionValue(action)
            rs = copy.deepcopy(change["ResourceRecordSet"])
            validate_domain_name(rs["Name"], code="InvalidChangeBatch")
            if not rs["Name"].strip(".").lower().endswith(zone.name.strip(".").lower()):
                raise DnsNameInvalidForZone(name=rs["Name"], zone_name=zone.name)
            if not rs["Name"].endswith("."):
                rs["Name"] += "."
            key = (rs["Name"].lower(), rs.get("Type"), rs.get("SetIdentifier"))
            at = next((i for i, r in enumerate(work) if (r.name.lower(), r.type, r.set_identifier) == key), None)
            if action == "DELETE":
                if at is None:
                    raise InvalidChangeBatch(f"Tried to delete resource record set {_describe(rs)} but it was not found")
                if _comparable(work[at]) != _request_comparable(rs):
                    raise InvalidChangeBatch(f"Tried to delete resource record set {_describe(rs)} but the values "
                                             "provided do not match the current values")
                del work[at]
            else:
                if action == "CREATE" and at is not None:
                    raise InvalidChangeBatch(f"Tried to create resource record set {_describe(rs)} but it already exists")
                if "ResourceRecords" in rs:
                    rs["ResourceRecords"] = [r["Value"] if isinstance(r, dict) else r for r in rs["ResourceRecords"]]
                record = RecordSet(rs)
                if at is None:
                    work.append(record)
                else:
                    work[at] = record
            journal.append(original)
        roles: dict = {}
        for r in work:
            if r.failover:
                k = (r.name.lower(), r.type, r.failover)
                if k in roles:
                    raise InvalidChangeBatch(
                        f"RRSet with DNS name {r.name}, type {r.type} cannot have two {r.failover} failover records "
                        f"(set identifiers '{roles[k]}' and '{r.set_identifier}')")
                roles[k] = r.set_identifier
        zone.rrsets = work  # one assignment: readers see the zone before or after the batch
        for entry in journal:
            zone.rr_changes.append(entry)


def change_status(account: str, cid: str) -> str | None:
    """PENDING or INSYNC for a change id (without ``/change/``), None if unknown."""
    with _changes_lock:
        entry = _changes.get((account, cid))
    if entry is None:
        return None
    done = _SB.clock.monotonic() >= entry[1] + _SB.profile.seconds("route53_change_propagation")
    return "INSYNC" if done else "PENDING"


# --------------------------------------------------------------------------- patches

def _get_change(self) -> ActionResult:
    raw = str(self._get_param("Id") or "")
    cid = raw.split("/")[-1]
    with _changes_lock:
        entry = _changes.get((self.current_account, cid))
    if entry is None:
        raise NoSuchChange(raw)
    submitted, t0 = entry
    # The same sum as the deadline noted at submission (a step lands on it exactly).
    done = _SB.clock.monotonic() >= t0 + _SB.profile.seconds("route53_change_propagation")
    return ActionResult({"ChangeInfo": {"Id": f"/change/{cid}", "Status": "INSYNC" if done else "PENDING",
                                        "SubmittedAt": submitted}})


def _get_health_check_status(self) -> ActionResult:
    hc = self.backend.get_health_check(self._get_param("HealthCheckId"))
    if hc.type_ == "CALCULATED":
        # GetHealthCheckStatus API reference, HealthCheckId: "You can't use GetHealthCheckStatus
        # to get the status of a calculated health check" (the console or the CloudWatch
        # HealthCheckStatus metric show it).
        raise InvalidInput(f"Invalid parameter: health check {hc.id} is a CALCULATED health check; you can't use "
                           "GetHealthCheckStatus to get the status of a calculated health check.")
    return ActionResult({"HealthCheckObservations": _SB.health.observations(self.current_account, hc)})


def _test_dns_answer(self) -> ActionResult:
    zone_id = str(self._get_param("HostedZoneId") or "").split("/")[-1]
    name = self._get_param("RecordName")
    rtype = self._get_param("RecordType")
    zone = self.backend.get_hosted_zone(zone_id)
    # An alias A record answers its ALB's addresses under dns_answers: addresses (dns.py).
    data, rcode, _, _ = _SB.record_answer(self.current_account, zone, name, rtype)
    return ActionResult({"Nameserver": "ns-2048.awsdns-64.com", "RecordName": name, "RecordType": rtype,
                         "RecordData": data, "ResponseCode": rcode, "Protocol": "UDP"})


ENDPOINT_TYPES = ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP")
INSUFFICIENT_DATA_STATUSES = ("Healthy", "Unhealthy", "LastKnownStatus")
MAX_CHILDREN = 256  # HealthCheckConfig.ChildHealthChecks: at most 256 (Route 53 API reference)


def _alarm_configuration(account: str, ident) -> dict:
    """The CloudWatchAlarmConfiguration Route 53 keeps for a CLOUDWATCH_METRIC check, read from
    the alarm; InvalidInput for an alarm Route 53 cannot use (AlarmIdentifier.Name in the
    Route 53 API reference: standard-resolution metrics only, statistics Average, Minimum,
    Maximum, Sum and SampleCount; no extended statistics)."""
    from . import cloudwatch

    if not isinstance(ident, dict) or not ident.get("Region") or not ident.get("Name"):
        raise InvalidInput("Invalid parameter: a CLOUDWATCH_METRIC health check needs AlarmIdentifier with Region "
                           "and Name.")
    region, name = ident["Region"], ident["Name"]
    if _SB.alarms.region_dark(region):
        raise InvalidInput(f"Invalid parameter: the CloudWatch alarm {name} in {region} cannot be read "
                           "(drsandbox: the region is in an outage).")
    alarm = cloudwatch.find_alarm(account, region, name)
    if alarm is None:
        raise InvalidInput(f"Invalid parameter: the CloudWatch alarm {name} does not exist in {region}.")
    if alarm.rule is not None or alarm.metric_data_queries:
        raise InvalidInput(f"Invalid parameter: the CloudWatch alarm {name} is not an alarm on a single metric.")
    if alarm.extended_statistic or alarm.statistic not in cloudwatch.STATISTICS:
        raise InvalidInput(f"Invalid parameter: the CloudWatch alarm {name} uses an extended statistic; Route 53 "
                           "supports Average, Minimum, Maximum, Sum and SampleCount.")
    if int(alarm.period or 0) < 60:
        raise InvalidInput(f"Invalid parameter: the CloudWatch alarm {name} is a high-resolution alarm (Period "
                           f"{alarm.period}); Route 53 supports standard-resolution metrics only.")
    return {"EvaluationPeriods": int(alarm.evaluation_periods), "Threshold": float(alarm.threshold),
            "ComparisonOperator": alarm.comparison_operator, "Period": int(alarm.period),
            "MetricName": alarm.metric_name, "Namespace": alarm.namespace, "Statistic": alarm.statistic,
            "Dimensions": [{"Name": d.name, "Value": d.value} for d in alarm.dimensions]}


def _insufficient_data_status(value):
    if value is not None and value not in INSUFFICIENT_DATA_STATUSES:
        raise InvalidInput(f"Invalid parameter value: InsufficientDataHealthStatus must be one of "
                           f"{', '.join(INSUFFICIENT_DATA_STATUSES)}, got {value}.")
    return value


def _validated_create(original):
    def create_health_check(self):
        config = self._get_param("HealthCheckConfig") or {}
        interval = config.get("RequestInterval")
        if interval is not None and int(interval) not in (10, 30):
            raise InvalidInput(f"Invalid parameter value: RequestInterval must be 10 or 30 seconds, got {interval}.")
        threshold = config.get("FailureThreshold")
        if threshold is not None and not 1 <= int(threshold) <= 10:
            raise InvalidInput(f"Invalid parameter value: FailureThreshold must be between 1 and 10, got {threshold}.")
        kind = config.get("Type")
        if kind not in ENDPOINT_TYPES + DERIVED:
            raise InvalidInput(f"Invalid parameter value: Type must be one of {', '.join(ENDPOINT_TYPES + DERIVED)}, "
                               f"got {kind}.")
        if kind in ENDPOINT_TYPES and not (config.get("IPAddress") or config.get("FullyQualifiedDomainName")):
            raise InvalidInput("Invalid parameter: an endpoint health check needs IPAddress or FullyQualifiedDomainName.")
        extra: dict = {}
        if kind == "CALCULATED":
            children = config.get("ChildHealthChecks") or []
            if len(children) > MAX_CHILDREN:
                raise InvalidInput(f"Invalid parameter: a calculated health check has at most {MAX_CHILDREN} "
                                   "child health checks.")
            for child in children:
                if child not in self.backend.health_checks:
                    raise InvalidInput(f"Invalid parameter: child health check {child} does not exist.")
            health_threshold = config.get("HealthThreshold")
            if health_threshold is not None and not 0 <= int(health_threshold) <= MAX_CHILDREN:
                raise InvalidInput(f"Invalid parameter value: HealthThreshold must be between 0 and {MAX_CHILDREN}.")
        elif kind == "CLOUDWATCH_METRIC":
            extra["alarm_identifier"] = dict(config.get("AlarmIdentifier") or {})
            extra["cloud_watch_alarm_configuration"] = _alarm_configuration(self.current_account,
                                                                            config.get("AlarmIdentifier"))
            extra["insufficient_data_health_status"] = _insufficient_data_status(
                config.get("InsufficientDataHealthStatus"))
        elif kind == "RECOVERY_CONTROL":
            from . import arc

            arn = config.get("RoutingControlArn")
            if not arn or arc.routing_control_state(self.current_account, arn) is None:
                raise InvalidInput(f"Invalid parameter: RoutingControlArn {arn} is not a routing control.")
            extra["routing_control_arn"] = arn
        result = original(self)
        hc = result.result["HealthCheck"]
        for attr, value in extra.items():
            setattr(hc, attr, value)
        _SB.health.created(self.current_account, hc.id)
        return result

    return create_health_check


def _versioned_update(original):
    def update_health_check(self):
        hc = self.backend.get_health_check(self._get_param("HealthCheckId"))
        version = self._get_param("HealthCheckVersion")
        if version is not None and int(version) != int(hc.health_check_version):
            raise HealthCheckVersionMismatch()
        ident = self._get_param("AlarmIdentifier")
        status = _insufficient_data_status(self._get_param("InsufficientDataHealthStatus"))
        alarm_config = None
        if ident is not None:
            if hc.type_ != "CLOUDWATCH_METRIC":
                raise InvalidInput("Invalid parameter: AlarmIdentifier applies to CLOUDWATCH_METRIC health checks only.")
            alarm_config = _alarm_configuration(self.current_account, ident)
        for child in self._get_param("ChildHealthChecks") or []:
            if child not in self.backend.health_checks:
                raise InvalidInput(f"Invalid parameter: child health check {child} does not exist.")
        # An element left out of UpdateHealthCheck is left as it is (API reference,
        # UpdateHealthCheck: "specify only the elements you want to change"); moto empties
        # ChildHealthChecks when the request does not name them.
        kept_children = list(hc.children or []) if self._get_param("ChildHealthChecks") is None else None
        result = original(self)
        if kept_children is not None:
            hc.children = kept_children
        if alarm_config is not None:
            hc.alarm_identifier, hc.cloud_watch_alarm_configuration = dict(ident), alarm_config
        if status is not None:
            hc.insufficient_data_health_status = status
        hc.health_check_version = int(hc.health_check_version) + 1
        return result

    return update_health_check


def _health_check_config(original):
    """HealthCheckConfig as AWS shows it for the types moto does not know: no endpoint fields
    for CLOUDWATCH_METRIC and RECOVERY_CONTROL, and their own fields (moto drops them)."""

    def health_check_config(self):
        config = original.fget(self)
        if self.type_ in ("CLOUDWATCH_METRIC", "RECOVERY_CONTROL"):
            for key in ("IPAddress", "Port", "RequestInterval", "FailureThreshold", "MeasureLatency", "EnableSNI"):
                config.pop(key, None)
        if self.type_ == "CLOUDWATCH_METRIC":
            config["AlarmIdentifier"] = getattr(self, "alarm_identifier", None)
            config["InsufficientDataHealthStatus"] = getattr(self, "insufficient_data_health_status", None)
        elif self.type_ == "RECOVERY_CONTROL":
            config["RoutingControlArn"] = getattr(self, "routing_control_arn", None)
        return config

    return property(health_check_config)


def _guarded_delete(original):
    def delete_health_check(self):
        hc_id = self._get_param("HealthCheckId")
        for zone in list(self.backend.zones.values()):
            if any(r.health_check_id == hc_id for r in zone_rrsets(zone)):
                raise HealthCheckInUse(hc_id)
        return original(self)

    return delete_health_check


_installed = False


def install(sandbox) -> None:
    """Patch moto's Route 53 responses (once per process) and point them at ``sandbox``."""
    global _SB, _installed
    _SB = sandbox
    if _installed:
        return
    _installed = True
    r53_urls.url_paths[r"{0}/(?P<api_version>[\d_-]+)/testdnsanswer$"] = Route53.dispatch
    Route53.test_dns_answer = _test_dns_answer
    Route53.get_change = _get_change
    Route53.get_health_check_status = _get_health_check_status
    Route53.create_health_check = _validated_create(Route53.create_health_check)
    Route53.update_health_check = _versioned_update(Route53.update_health_check)
    Route53.delete_health_check = _guarded_delete(Route53.delete_health_check)
    Route53Backend.change_resource_record_sets = _change_resource_record_sets
    HealthCheck.health_check_config = _health_check_config(HealthCheck.health_check_config)
    for op in ("create_hosted_zone", "delete_hosted_zone", "change_resource_record_sets",
               "associate_vpc_with_hosted_zone", "disassociate_vpc_from_hosted_zone"):
        setattr(Route53, op, _with_pending_change(getattr(Route53, op)))


def reset() -> None:
    with _changes_lock:
        _changes.clear()


def state() -> dict:
    """The changes and when they were submitted (on the clock), for a snapshot."""
    with _changes_lock:
        return dict(_changes)


def restore(saved: dict) -> None:
    with _changes_lock:
        _changes.clear()
        _changes.update(saved)

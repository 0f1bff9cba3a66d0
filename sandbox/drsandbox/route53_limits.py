"""Route 53 API limits: the account's request rate, and PriorRequestNotComplete.

moto answers every Route 53 request, however many and however close together. AWS does not:

* **Request rate** (Route 53 Developer Guide, "Throttling for Amazon Route 53 API requests"):
  Route 53 throttles API requests per account with token buckets. Every request takes a token
  from the account's bucket (all Route 53 API operations combined: capacity 50, refilled at 10
  a second) and one from its operation's bucket (50 / 10 for any operation not listed, lower for
  the few in ``OPERATION_LIMITS``); it is throttled if either is empty. A throttled request is
  HTTP 400 with ``Code`` ``Throttling`` and ``Message`` ``Rate exceeded`` (the same page, and
  the Route 53 API Reference, "Common Errors": Throttling, 400). botocore (standard and legacy
  retry modes) and the Rust SDK (``aws_runtime::retries::classifiers::THROTTLING_ERRORS``)
  both classify ``Throttling`` as a throttling error and retry it with backoff.

  The profile keys ``route53_api_rate`` (refill per second, AWS 10) and ``route53_api_burst``
  (capacity, AWS 50) set the account's bucket; the per-operation buckets scale with them
  (AWS's numbers at 10 / 50). ``route53_api_rate: 0`` turns throttling off (the instant
  profile). Buckets fill on the sandbox clock: a paused clock refills nothing, a step refills
  what the stepped time would have.

* **PriorRequestNotComplete** (Route 53 API Reference, ChangeResourceRecordSets, Errors:
  "If Amazon Route 53 can't process a request before the next request arrives, it will reject
  subsequent requests for the same hosted zone and return an HTTP 400 error"): a
  ChangeResourceRecordSets to a hosted zone whose previous ChangeResourceRecordSets is still
  PENDING (GetChange) is refused with 400 ``PriorRequestNotComplete``, "The request was
  rejected because Route 53 was still processing a prior request." AWS does not say how long
  "can't process" lasts; the sandbox takes the whole PENDING period (``route53_change_propagation``),
  which is never kinder. botocore retries it (``_retry.json`` route53 ``still_processing``,
  standard mode's throttled codes) and so does the Rust SDK (THROTTLING_ERRORS). Profile key
  ``route53_prior_request_not_complete`` (realistic true, instant false).

The state (every bucket's tokens and last refill, the last change of each zone) is part of a
snapshot (snapshot.py).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from moto.route53.exceptions import Route53ClientError

from . import DEFAULT_ACCOUNT

_SB = None  # the running Sandbox (set by install)

# The account's bucket at AWS's defaults, and the default bucket of every operation.
AWS_RATE, AWS_BURST = 10.0, 50.0
DEFAULT_OPERATION = (50.0, 10.0)  # (capacity, refill per second)
# Operations with their own default request rate (Route 53 Developer Guide, "Throttling for
# Amazon Route 53 API requests", request rate limits per API action): (capacity, refill/s).
OPERATION_LIMITS: dict[str, tuple[float, float]] = {
    "AssociateVPCWithHostedZone": (20, 5),
    "ChangeCidrCollection": (40, 5),
    "CreateCidrCollection": (40, 5),
    "CreateHealthCheck": (50, 0.5),
    "CreateHostedZone": (40, 2),
    "CreateReusableDelegationSet": (40, 2),
    "CreateTrafficPolicyInstance": (1, 1),
    "DeleteCidrCollection": (40, 5),
    "DeleteHealthCheck": (15, 3),
    "DeleteHostedZone": (40, 5),
    "DeleteReusableDelegationSet": (40, 5),
    "DeleteTrafficPolicyInstance": (1, 1),
    "DisassociateVPCFromHostedZone": (10, 5),
    "GetHealthCheckLastFailureReason": (4, 1),
    "GetHealthCheckStatus": (4, 1),
}
ACCOUNT = "*"  # the bucket key of "all Route 53 API operations combined"

PRIOR_REQUEST_MESSAGE = "The request was rejected because Route 53 was still processing a prior request."


class PriorRequestNotComplete(Route53ClientError):
    def __init__(self) -> None:
        super().__init__("PriorRequestNotComplete", PRIOR_REQUEST_MESSAGE)


@dataclass
class Bucket:
    tokens: float
    stamp: float  # sandbox clock time of the last refill

    def refill(self, now: float, capacity: float, rate: float) -> None:
        if now > self.stamp:
            self.tokens = min(capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now  # a clock set back (restore, reset) refills nothing


class Route53Limits:
    """The token buckets of every account, and the last record change of every zone."""

    def __init__(self, sandbox) -> None:
        self.sb = sandbox
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], Bucket] = {}
        # (account, zone id) -> id of the zone's last ChangeResourceRecordSets change
        self._zone_changes: dict[tuple[str, str], str] = {}
        # Held across a checked ChangeResourceRecordSets: the check and the change that makes
        # the zone busy are one step (two racing requests cannot both pass).
        self.change_lock = threading.Lock()

    # ------------------------------------------------------------------ settings
    @property
    def rate(self) -> float:
        return float(self.sb.profile.setting("route53_api_rate"))

    @property
    def throttling(self) -> bool:
        return self.rate > 0

    @property
    def prior_request_check(self) -> bool:
        return bool(self.sb.profile.setting("route53_prior_request_not_complete"))

    def _limits(self, key: str) -> tuple[float, float]:
        """(capacity, refill per second) of a bucket, scaled from AWS's numbers."""
        rate, burst = self.rate, float(self.sb.profile.setting("route53_api_burst"))
        if key == ACCOUNT:
            return burst, rate
        capacity, refill = OPERATION_LIMITS.get(key, DEFAULT_OPERATION)
        return max(1.0, capacity * burst / AWS_BURST), refill * rate / AWS_RATE

    # ------------------------------------------------------------------ the request rate
    def allow(self, account: str, operation: str | None) -> bool:
        """Take a token from the account's bucket and the operation's; False (nothing taken)
        when either is empty: the request is throttled."""
        if not self.throttling:
            return True
        now = self.sb.clock.monotonic()
        keys = [ACCOUNT] + ([operation] if operation else [])
        with self._lock:
            buckets = []
            for key in keys:
                capacity, refill = self._limits(key)
                b = self._buckets.get((account, key))
                if b is None:
                    b = self._buckets[(account, key)] = Bucket(capacity, now)
                b.refill(now, capacity, refill)
                buckets.append(b)
            if any(b.tokens < 1 for b in buckets):
                return False
            for b in buckets:
                b.tokens -= 1
            return True

    # ------------------------------------------------------------------ zones
    def zone_change(self, account: str, zone_id: str) -> str | None:
        with self._lock:
            return self._zone_changes.get((account, zone_id))

    def set_zone_change(self, account: str, zone_id: str, change_id: str) -> None:
        with self._lock:
            self._zone_changes[(account, zone_id)] = change_id

    # ------------------------------------------------------------------ snapshot
    def state(self) -> dict:
        with self._lock:
            return {"buckets": {k: Bucket(b.tokens, b.stamp) for k, b in self._buckets.items()},
                    "zones": dict(self._zone_changes)}

    def restore(self, saved: dict) -> None:
        with self._lock:
            self._buckets = {k: Bucket(b.tokens, b.stamp) for k, b in saved["buckets"].items()}
            self._zone_changes = dict(saved["zones"])

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._zone_changes.clear()

    def describe(self) -> dict:
        """The settings and every bucket now (for GET /_sandbox/state)."""
        now = self.sb.clock.monotonic()
        with self._lock:
            buckets = []
            for (account, key), b in sorted(self._buckets.items()):
                capacity, refill = self._limits(key)
                tokens = min(capacity, b.tokens + max(0.0, now - b.stamp) * refill)
                buckets.append({"account": account, "bucket": "account" if key == ACCOUNT else key,
                                "tokens": round(tokens, 3), "capacity": capacity, "refill_per_second": refill})
        return {"rate": self.rate, "burst": float(self.sb.profile.setting("route53_api_burst")),
                "prior_request_not_complete": self.prior_request_check, "buckets": buckets}


# --------------------------------------------------------------------------- requests

_CRED_RE = re.compile(r"Credential=([^/,\s]+)/")


def request_account(environ: dict) -> str:
    """The account a request acts in, as moto decides it: ``x-moto-account-id``, else the
    account of its access key (moto's IAM), else the default account."""
    header = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if header:
        return header
    m = _CRED_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not m:
        return DEFAULT_ACCOUNT
    try:
        from moto.iam.models import get_account_id_from

        return get_account_id_from(m.group(1))
    except Exception:  # an account we cannot work out counts against the default one
        return DEFAULT_ACCOUNT


def _guarded_change(original):
    """Route53.change_resource_record_sets refusing a zone whose previous change is PENDING."""

    def change_resource_record_sets(self):
        limits = _SB.r53limits
        if not limits.prior_request_check:
            return original(self)
        from . import route53

        account = self.current_account
        zone_id = str(self._get_param("HostedZoneId") or "").split("/")[-1]
        with limits.change_lock:
            last = limits.zone_change(account, zone_id)
            if last is not None and route53.change_status(account, last) == "PENDING":
                raise PriorRequestNotComplete()
            result = original(self)
            info = (getattr(result, "result", None) or {}).get("ChangeInfo") or {}
            if info.get("Id"):
                limits.set_zone_change(account, zone_id, str(info["Id"]).split("/")[-1])
            return result

    change_resource_record_sets.__name__ = original.__name__
    return change_resource_record_sets


_installed = False


def install(sandbox) -> None:
    """Wrap moto's ChangeResourceRecordSets (once per process; after route53.install, so the
    change id it sees is the sandbox's PENDING one) and point it at ``sandbox``."""
    global _SB, _installed
    _SB = sandbox
    if _installed:
        return
    _installed = True
    from moto.route53.responses import Route53

    Route53.change_resource_record_sets = _guarded_change(Route53.change_resource_record_sets)

"""Fault injection: the fault table, request classification and AWS-shaped error answers.

A fault targets one region and optionally one service. The region and service of an API
request come from its SigV4 credential scope (``Credential=AKID/date/REGION/SERVICE/...``),
exactly what moto itself routes on. Kinds:

* ``outage``  - the request hangs (polling the table, so clearing the fault releases it);
  the region's ALB listeners go dark too (see listeners.py).
* ``errors``  - a fraction ``rate`` of requests get a throttling or 5xx answer in the wire
  shape of the service's protocol (query XML, EC2 XML, REST-XML, JSON, CBOR).
* ``latency`` - a fixed delay before the request proceeds.

A fault may name a ``client``: it then applies only to requests that identify themselves
as that client (see ``request_client``): ``X-Drctl-Client: <name>``, else a ``app/<name>``
or ``drctl-client/<name>`` token in ``User-Agent`` / ``X-Amz-User-Agent`` (the AWS SDKs put
their configured app name there as ``app/<name>``). So one of several watchers can lose a
region while the others still see it. A client-scoped ``outage`` also hangs that client's
requests to the region's ALB listeners (``X-Drctl-Client`` header or the User-Agent token on
the probe); it does not make the region dark for anyone else.

Global services (Route 53, CloudFront, IAM) sign with us-east-1. A fault with ``control_planes``
true, which only a us-east-1 fault without a service may have, also covers the global control
planes hosted in us-east-1 - the Route 53 API (every operation, GetChange and TestDNSAnswer
included), the CloudFront API and the IAM API. It is the default for a us-east-1 ``outage``
with no service and no client: a plain ``{"region": "us-east-1", "kind": "outage"}`` takes
those APIs down with the region. The "AWS Fault Isolation Boundaries" whitepaper (Global
services; Appendix A - Partitional service guidance; Appendix B - Edge network global service
guidance) places the control planes of Route 53, CloudFront and IAM (partition aws) in
us-east-1, says their CRUDL-type operations may not work during an impairment of that control
plane or Region, and tells a recovery path not to rely on them; so the sandbox's default
outage is not kinder than AWS. Their data planes (Route 53 DNS answers and health checks,
CloudFront edge serving, IAM authentication and authorization) keep working. So do the
sandbox's: its health checkers, its public DNS edge (answers by health) and its CloudFront
edge never go through the API path that faults act on.

``"control_planes": false`` spares them: the region's own services go down and the global
APIs keep answering (the kinder, older default; what a test of a layout that moves traffic
through Route 53's API asks for). Every other fault - errors or latency, another region, one
naming a service or a client - has ``control_planes`` false unless it says ``true`` (allowed
for us-east-1 without a service), and a fault with it false (a "regional" fault) covers the
region's own services only and leaves the global APIs alone. Name the service explicitly
(``"service": "route53"``) to fault one global API. The public form of a fault (``GET
/_sandbox/faults``, the state's ``faults``) always shows ``control_planes`` true or false.

How a request's service and region are known: from its SigV4 credential scope, exactly what
moto routes on. Route 53, CloudFront and IAM (partition ``aws``) sign with ``us-east-1``
whatever region a client is configured for; STS signs with the region of the endpoint it calls
(the global endpoint ``sts.amazonaws.com`` with ``us-east-1``, the one Region it is hosted in:
IAM User Guide, "Manage AWS STS in an AWS Region"). So STS with a us-east-1 scope (the global
endpoint, or the us-east-1 regional one: the two cannot be told apart by scope, and both are
served from us-east-1) is one of the region's own services and is hit by every us-east-1
outage; regional STS of any other region is not.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs

KINDS = ("outage", "errors", "latency")
ERROR_KINDS = ("throttle", "5xx")

# The longest any injected hang or delay may hold a request thread (bounded by design).
MAX_HANG_SECONDS = 120.0

# SigV4 signing names the sandbox knows, plus friendlier aliases (boto3 client names).
SIGNING_NAMES = {
    "rds", "ec2", "elasticloadbalancing", "autoscaling", "route53", "cloudfront", "backup",
    "monitoring", "dynamodb", "sts", "iam", "s3", "logs", "kms", "sns", "sqs", "events",
    "lambda", "secretsmanager", "ssm", "tagging", "cloudformation",
    "route53-recovery-cluster", "route53-recovery-control-config",  # ARC data and control planes (arc.py)
}
ALIASES = {
    "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing", "alb": "elasticloadbalancing",
    "cloudwatch": "monitoring", "asg": "autoscaling", "resourcegroupstaggingapi": "tagging",
    "arc-cluster": "route53-recovery-cluster", "arc-control": "route53-recovery-control-config",
}
GLOBAL_SERVICES = {"route53", "cloudfront", "iam"}
# Where the global services' control planes live (partition aws): the only region a
# ``control_planes`` fault may name (Fault Isolation Boundaries whitepaper, Global services).
CONTROL_PLANE_REGION = "us-east-1"


# A client name: what the AWS SDKs accept as an app name (alphanumerics and !#$%&'*+-.^_`|~).
CLIENT_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,64}$")
_UA_CLIENT_RE = re.compile(r"(?:^|\s)(?:app|drctl-client)/([A-Za-z0-9!#$%&'*+\-.^_`|~]{1,64})(?=\s|$)")


class FaultError(ValueError):
    """Invalid fault specification (control API answers 400, CLI exits 2)."""


@lru_cache(maxsize=1)
def valid_regions() -> frozenset[str]:
    """Every region botocore knows in the standard partitions (aws, aws-cn, aws-us-gov)."""
    import botocore.session

    s = botocore.session.get_session()
    regions: set[str] = set()
    for partition in s.get_available_partitions():
        if partition not in ("aws", "aws-cn", "aws-us-gov"):
            continue
        for svc in ("ec2", "rds", "backup"):
            regions.update(s.get_available_regions(svc, partition_name=partition))
    return frozenset(regions)


def check_region(region: object) -> str:
    if not isinstance(region, str) or region not in valid_regions():
        raise FaultError(f"unknown region {region!r}: expected an AWS region name such as "
                         "us-east-1 or us-west-2")
    return region


def check_client(client: object) -> str | None:
    if client is None:
        return None
    if not isinstance(client, str) or not CLIENT_RE.match(client):
        raise FaultError(f"client must be null or a name of 1-64 letters, digits or !#$%&'*+-.^_`|~ "
                         f"(no spaces), got {client!r}")
    return client


def normalize_service(service: object) -> str | None:
    if service is None:
        return None
    if not isinstance(service, str):
        raise FaultError(f"service must be a string or null, got {service!r}")
    s = service.strip().lower()
    s = ALIASES.get(s, s)
    if s not in SIGNING_NAMES:
        raise FaultError(f"unknown service {service!r}: expected one of "
                         f"{', '.join(sorted(SIGNING_NAMES | set(ALIASES)))}")
    return s


@dataclass
class Fault:
    id: str
    region: str
    service: str | None
    kind: str
    rate: float | None = None
    error: str | None = None
    ms: int | None = None
    started: float = 0.0  # the sandbox clock when set; replica lag grows from here during an outage
    client: str | None = None  # only requests from this client (request_client) are faulted
    # A us-east-1 fault without a service that also covers the global control planes there
    # (parse_fault makes it the default for such an outage with no client).
    control_planes: bool = False

    def public(self) -> dict:
        d = {"id": self.id, "region": self.region, "service": self.service, "kind": self.kind,
             "control_planes": self.control_planes}
        if self.client is not None:
            d["client"] = self.client
        if self.kind == "errors":
            d.update(rate=self.rate, error=self.error)
        if self.kind == "latency":
            d["ms"] = self.ms
        return d

    def applies_to(self, region: str, service: str | None, client: str | None = None) -> bool:
        if self.region != region:
            return False
        if self.client is not None and self.client != client:
            return False
        if self.service is None:
            return self.control_planes or service not in GLOBAL_SERVICES
        return self.service == service


def parse_fault(body: object) -> dict:
    """Validate a fault spec (control API body); returns normalized fields or raises."""
    if not isinstance(body, dict):
        raise FaultError("body must be a JSON object")
    allowed = {"region", "service", "kind", "rate", "error", "ms", "client", "control_planes"}
    unknown = set(body) - allowed
    if unknown:
        raise FaultError(f"unknown field(s): {', '.join(sorted(unknown))}")
    kind = body.get("kind")
    if kind not in KINDS:
        raise FaultError(f"unknown fault kind {kind!r}: expected one of {', '.join(KINDS)}")
    out: dict = {"region": check_region(body.get("region")),
                 "service": normalize_service(body.get("service")), "kind": kind,
                 "client": check_client(body.get("client"))}
    # The harsh outage AWS documents is the default: a us-east-1 outage of every service and
    # every client also takes the global control planes hosted there (see the module docstring).
    harsh_default = (kind == "outage" and out["region"] == CONTROL_PLANE_REGION
                     and out["service"] is None and out["client"] is None)
    control_planes = body.get("control_planes", harsh_default)
    if not isinstance(control_planes, bool):
        raise FaultError(f"control_planes must be true or false, got {control_planes!r}")
    out["control_planes"] = control_planes
    if control_planes:
        if out["service"] is not None:
            raise FaultError("control_planes widens a fault without a service; a fault naming a service "
                             "(route53, cloudfront, iam, ...) already covers exactly that API")
        if out["region"] != CONTROL_PLANE_REGION:
            raise FaultError(f"control_planes only applies to {CONTROL_PLANE_REGION}, where the global "
                             f"services' control planes (Route 53, CloudFront, IAM) live; got {out['region']}")
    if kind == "errors":
        rate = body.get("rate", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise FaultError(f"rate must be a number between 0 and 1, got {rate!r}")
        error = body.get("error", "5xx")
        if error not in ERROR_KINDS:
            raise FaultError(f"error must be one of {', '.join(ERROR_KINDS)}, got {error!r}")
        out.update(rate=float(rate), error=error)
    elif "rate" in body or "error" in body:
        raise FaultError("rate and error only apply to kind 'errors'")
    if kind == "latency":
        ms = body.get("ms")
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not 0 <= ms <= MAX_HANG_SECONDS * 1000:
            raise FaultError(f"latency needs ms between 0 and {int(MAX_HANG_SECONDS * 1000)}, got {ms!r}")
        out["ms"] = int(ms)
    elif "ms" in body:
        raise FaultError("ms only applies to kind 'latency'")
    return out


class FaultTable:
    """Thread-safe list of active faults; waiters are woken whenever it changes.

    ``now`` is the clock a fault's start is taken from (the sandbox passes its Clock's
    monotonic time, so an outage's growing ReplicaLag follows a paused or stepped clock)."""

    def __init__(self, now=time.monotonic) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1
        self._now = now
        self._cv = threading.Condition()

    def add(self, body: object) -> Fault:
        spec = parse_fault(body)
        with self._cv:
            f = Fault(id=f"f{self._next_id}", started=self._now(), **spec)
            self._next_id += 1
            self._faults.append(f)
            self._cv.notify_all()
            return f

    def state(self) -> dict:
        """The faults and the next id, for a snapshot."""
        with self._cv:
            return {"faults": [dataclasses.replace(f) for f in self._faults], "next_id": self._next_id}

    def restore(self, saved: dict) -> None:
        with self._cv:
            self._faults = [dataclasses.replace(f) for f in saved["faults"]]
            self._next_id = saved["next_id"]
            self._cv.notify_all()  # requests held by an outage look again

    def clear(self, region: str | None = None, client: str | None = None) -> int:
        """Remove the faults of ``region`` (default: every region) and ``client`` (default:
        every fault, client-scoped or not)."""
        with self._cv:
            before = len(self._faults)
            self._faults = [f for f in self._faults
                            if not ((region is None or f.region == region) and (client is None or f.client == client))]
            self._cv.notify_all()
            return before - len(self._faults)

    def list(self) -> list[Fault]:
        with self._cv:
            return list(self._faults)

    def matching(self, region: str, service: str | None, client: str | None = None) -> list[Fault]:
        with self._cv:
            return [f for f in self._faults if f.applies_to(region, service, client)]

    def outage(self, region: str, service: str | None, client: str | None = None) -> Fault | None:
        for f in self.matching(region, service, client):
            if f.kind == "outage":
                return f
        return None

    def region_dark(self, region: str | None) -> bool:
        """True while ``region`` has an outage for everyone that covers its load balancers
        (client-scoped outages leave it lit)."""
        if region is None:
            return False
        with self._cv:
            return any(f.kind == "outage" and f.client is None and f.applies_to(region, "elasticloadbalancing")
                       for f in self._faults)

    def client_dark(self, region: str | None, client: str | None) -> bool:
        """True while a client-scoped outage cuts ``client`` off ``region``'s load balancers."""
        if region is None or client is None:
            return False
        with self._cv:
            return any(f.kind == "outage" and f.client == client and f.applies_to(region, "elasticloadbalancing", client)
                       for f in self._faults)

    def wait_change(self, timeout: float) -> None:
        with self._cv:
            self._cv.wait(timeout)


# --------------------------------------------------------------------------- requests

_CRED_RE = re.compile(r"Credential=([^,\s]+)")


def request_scope(environ: dict) -> tuple[str | None, str | None]:
    """(region, signing service) of an AWS request, from its SigV4 credential scope.

    The region of a global service's request (Route 53, CloudFront, IAM) is where its control
    plane is, ``us-east-1`` in the aws partition, whatever the scope says: the SDKs sign them
    with ``us-east-1`` when they call AWS (``route53.amazonaws.com`` and the others are
    us-east-1 endpoints), but a client given an ``endpoint_url`` (as every client of the
    sandbox is) signs with the region it was configured for, and a ``route53`` client made for
    ``us-west-2`` would otherwise escape a us-east-1 outage that the real one would hang in.
    STS keeps its scope's region: its regional endpoints are separate services per region."""
    cred = None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = _CRED_RE.search(auth)
    if m:
        cred = m.group(1)
    else:
        qs = parse_qs(environ.get("QUERY_STRING", ""))
        cred = (qs.get("X-Amz-Credential") or [None])[0]
    if not cred:
        return None, None
    parts = cred.split("/")
    if len(parts) < 5:
        return None, None
    region, service = parts[-3], parts[-2].lower()
    if service in GLOBAL_SERVICES and not region.startswith(("cn-", "us-gov-", "us-iso")):
        region = CONTROL_PLANE_REGION
    return region, service


def client_from_headers(get) -> str | None:
    """The client a request says it is, from a header getter (name -> value or None):
    ``X-Drctl-Client: <name>``, else the first ``app/<name>`` or ``drctl-client/<name>`` token
    of ``X-Amz-User-Agent`` or ``User-Agent``. None when it names none (or an invalid one)."""
    v = (get("X-Drctl-Client") or "").strip()
    if v:
        return v if CLIENT_RE.match(v) else None
    for h in ("X-Amz-User-Agent", "User-Agent"):
        m = _UA_CLIENT_RE.search(get(h) or "")
        if m:
            return m.group(1)
    return None


def request_client(environ: dict) -> str | None:
    """The client of a WSGI request (see client_from_headers)."""
    return client_from_headers(lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")))


def _protocol(service: str | None, environ: dict) -> str:
    ct = (environ.get("CONTENT_TYPE") or "").lower()
    if service == "ec2":
        return "ec2"
    if "x-www-form-urlencoded" in ct:
        return "query"
    if "cbor" in ct:
        return "cbor"
    if "x-amz-json" in ct:
        return "json"
    if service in ("route53", "cloudfront", "s3"):
        return "rest-xml"
    return "rest-json"


_XMLNS = {"route53": "https://route53.amazonaws.com/doc/2013-04-01/",
          "cloudfront": "http://cloudfront.amazonaws.com/doc/2020-05-31/"}


def _cbor_text(s: str) -> bytes:
    b = s.encode()
    n = len(b)
    if n < 24:
        head = bytes([0x60 + n])
    elif n < 256:
        head = bytes([0x78, n])
    else:
        head = bytes([0x79]) + n.to_bytes(2, "big")
    return head + b


def _cbor_map(d: dict[str, str]) -> bytes:
    out = bytes([0xA0 + len(d)])
    for k, v in d.items():
        out += _cbor_text(k) + _cbor_text(v)
    return out


def error_response(service: str | None, environ: dict, error: str,
                   message: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    """An AWS error answer in the wire shape the caller's protocol expects.

    ``error`` is ``throttle``, ``5xx`` or ``timeout`` (an outage that outlived MAX_HANG_SECONDS).
    """
    proto = _protocol(service, environ)
    rid = str(uuid.uuid4())
    if error == "throttle":
        status, fault_type = 400, "Sender"
        code = {"ec2": "RequestLimitExceeded", "query": "Throttling", "rest-xml": "Throttling"}.get(
            proto, "ThrottlingException")
        if proto == "ec2":
            status = 503  # EC2 answers RequestLimitExceeded with HTTP 503
        message = message or "Rate exceeded (drsandbox injected fault)"
    else:
        status, fault_type = 503, "Receiver"
        code = "ServiceUnavailableException" if proto in ("json", "cbor", "rest-json") else "ServiceUnavailable"
        message = message or ("Service unavailable (drsandbox injected fault)" if error == "5xx"
                              else "Request timed out during a drsandbox region outage")
    headers = [("x-amzn-RequestId", rid), ("Connection", "close")]
    if proto == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
        headers.append(("Content-Type", "text/xml"))
        return status, headers, body.encode()
    if proto in ("query", "rest-xml"):
        ns = _XMLNS.get(service or "", "")
        xmlns = f' xmlns="{ns}"' if ns else ""
        body = (f'<?xml version="1.0"?>\n<ErrorResponse{xmlns}><Error><Type>{fault_type}</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{rid}</RequestId></ErrorResponse>")
        headers.append(("Content-Type", "text/xml"))
        return status, headers, body.encode()
    headers.append(("x-amzn-ErrorType", code))
    if service in ("monitoring", "sqs"):  # awsQueryCompatible services read this header
        query_code = "Throttling" if error == "throttle" else "ServiceUnavailable"
        headers.append(("x-amzn-query-error", f"{query_code};{fault_type}"))
    if proto == "cbor":
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        return status, headers, _cbor_map({"__type": code, "message": message})
    ct = environ.get("CONTENT_TYPE") or "application/json"
    headers.append(("Content-Type", ct if "json" in ct else "application/json"))
    return status, headers, json.dumps({"__type": code, "message": message}).encode()


def roll(rate: float) -> bool:
    return random.random() < rate


def fault_dicts(faults: list[Fault]) -> list[dict]:
    return [f.public() for f in faults]



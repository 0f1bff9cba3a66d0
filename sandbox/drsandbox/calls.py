"""The call log: every AWS API request the sandbox answered, in the order it answered them.

A crash test uses it to check that each mutating AWS call of a failover happened exactly once
(``GET /_sandbox/calls``). Control API (``/_sandbox/*``), ``/moto-api/*`` and the local
listeners are not AWS API requests and are never logged.

Per request the log keeps the service, the AWS operation name, the region, the protocol, the
HTTP status answered, whether the operation mutates, and whether an injected fault answered
it instead of moto (``faulted``). The operation comes from the request itself, per protocol:

* query / ec2 (RDS, EC2, Auto Scaling, ELB, STS, IAM, CloudWatch query): the ``Action``
  form field (or query parameter);
* JSON (``X-Amz-Target: Prefix.Operation``): the part after the last dot;
* smithy-rpc-v2-cbor (``POST /service/<Shape>/operation/<Operation>``, translated by
  rpcv2.py): the last path segment;
* REST-XML (Route 53, CloudFront) and REST-JSON (Backup): method + path matched against the
  ``requestUri`` templates of the service's botocore model (the most specific match wins;
  ``?Key`` / ``?Key=Value`` parts of a template must be in the query string).

``service`` is the IAM service prefix, i.e. the SigV4 signing name except that CloudWatch
(signed ``monitoring``) is ``cloudwatch``; so ``service:operation`` is the IAM action
(``rds:PromoteReadReplica``). Unsigned requests have ``service`` and ``region`` null.

An operation is a *read* when its name starts with one of READ_PREFIXES (followed by an
upper-case letter) or is in READ_OPERATIONS; every other operation mutates. A request whose
operation cannot be determined has ``operation: null`` and mutates unless its method is
GET, HEAD or OPTIONS.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

log = logging.getLogger("drsandbox.calls")

READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Search", "Lookup", "Head")
READ_OPERATIONS = frozenset({"TestDNSAnswer"})

# SigV4 signing name -> IAM service prefix, where they differ.
SIGNING_TO_IAM = {"monitoring": "cloudwatch"}
# SigV4 signing name -> botocore model name, where they differ (REST services only matter).
SIGNING_TO_BOTO = {"monitoring": "cloudwatch", "tagging": "resourcegroupstaggingapi"}

MAX_CALLS = 100_000  # entries kept; older ones are dropped (counts stay exact)


def is_read(operation: str | None) -> bool:
    if operation is None:
        return False
    if operation in READ_OPERATIONS:
        return True
    for p in READ_PREFIXES:
        if operation.startswith(p) and (len(operation) == len(p) or operation[len(p)].isupper()):
            return True
    return False


# --------------------------------------------------------------------------- REST routes

@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    regex: re.Pattern
    query: tuple[tuple[str, str | None], ...]  # required (key, value or None for "present")
    literal: int  # literal characters in the path template: more = more specific


def _compile(method: str, uri: str, operation: str) -> _Route:
    path, _, q = uri.partition("?")
    query = tuple((k, v if "=" in part else None)
                  for part in q.split("&") if part
                  for k, _, v in [part.partition("=")])
    pattern, literal, pos = "", 0, 0
    trimmed = path.rstrip("/") or "/"
    for m in re.finditer(r"\{([^}]+)\}", trimmed):
        text = trimmed[pos:m.start()]
        pattern += re.escape(text)
        literal += len(text)
        pattern += "(?:.+)" if m.group(1).endswith("+") else "(?:[^/]+)"
        pos = m.end()
    pattern += re.escape(trimmed[pos:])
    literal += len(trimmed[pos:])
    if trimmed != "/":
        pattern += "/?"
    return _Route(operation, method.upper(), re.compile(f"^{pattern}$"), query, literal)


@lru_cache(maxsize=64)
def _routes(boto_name: str) -> tuple[str, tuple[_Route, ...]] | None:
    """(protocol, routes) of a REST service's botocore model, or None if there is none."""
    try:
        from moto.core.utils import get_service_model

        model = get_service_model(boto_name)
    except Exception:
        return None
    protocol = model.metadata.get("protocol", "")
    if not protocol.startswith("rest"):
        return protocol, ()
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        if http.get("method") and http.get("requestUri"):
            routes.append(_compile(http["method"], http["requestUri"], name))
    return protocol, tuple(routes)


def warm(boto_name: str) -> None:
    """Build a REST service's route table now (the sandbox's warm-up) instead of on first use."""
    _routes(boto_name)


def rest_operation(signing: str | None, method: str, raw_path: str, query: str) -> tuple[str | None, str | None]:
    """(operation, protocol) of a REST request: its method and raw (still %-encoded) path
    against the service's requestUri templates."""
    if not signing:
        return None, None
    found = _routes(SIGNING_TO_BOTO.get(signing, signing))
    if found is None:
        return None, None
    protocol, routes = found
    params = parse_qsl(query, keep_blank_values=True)
    keys = {k for k, _ in params}
    best, best_score = None, None
    for r in routes:
        if r.method != method or not r.regex.match(raw_path):
            continue
        if any(k not in keys if v is None else (k, v) not in params for k, v in r.query):
            continue
        score = (len(r.query), r.literal)
        if best_score is None or score > best_score:
            best, best_score = r, score
    return (best.operation if best else None), (protocol or None)


# --------------------------------------------------------------------------- requests

def _raw_path(environ) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if "://" in raw:
            raw = urlsplit(raw).path or "/"
        return raw.split("?", 1)[0] or "/"
    return quote(environ.get("PATH_INFO", "") or "/")


def _form_body(environ) -> str:
    """The form-encoded body, read once and put back for moto (as moto itself does)."""
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        n = 0
    if n <= 0:
        return ""
    raw = environ["wsgi.input"].read(n)
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw.decode("utf-8", errors="replace")


def identify(environ, signing: str | None) -> tuple[str | None, str]:
    """(operation, protocol) of an AWS API request."""
    path = environ.get("PATH_INFO", "")
    ctype = (environ.get("CONTENT_TYPE") or "").lower()
    if path.startswith("/service/") and "/operation/" in path and (
            "cbor" in ctype or "HTTP_SMITHY_PROTOCOL" in environ):
        return path.rstrip("/").rsplit("/", 1)[-1] or None, "smithy-rpc-v2-cbor"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1] or None, "json"
    query = environ.get("QUERY_STRING", "")
    action = (parse_qs(query).get("Action") or [None])[0]
    if action is None and ctype.startswith("application/x-www-form-urlencoded"):
        action = (parse_qs(_form_body(environ)).get("Action") or [None])[0]
    if action:
        return action, "ec2" if signing == "ec2" else "query"
    op, protocol = rest_operation(signing, environ.get("REQUEST_METHOD", "GET").upper(), _raw_path(environ), query)
    return op, protocol or ("rest-xml" if signing in ("route53", "cloudfront", "s3") else "rest-json")


@dataclass
class Call:
    service: str | None
    operation: str | None
    region: str | None
    protocol: str
    mutating: bool
    recorded: bool = False
    epoch: int = 0  # the log's epoch when the call began (a restore starts a new one)


class CallLog:
    """Thread-safe, bounded log of answered AWS calls plus exact counts of mutating ones."""

    def __init__(self, limit: int = MAX_CALLS) -> None:
        self._lock = threading.Lock()
        self._calls: deque[dict] = deque(maxlen=limit)
        self._mutating: dict[str, int] = {}
        self._seq = 0
        # Requests begun and not yet answered. A client killed mid-request leaves its request
        # running here; a crash test waits for this to reach 0 before it counts.
        self._open = 0
        # TCP connections accepted and not yet closed. A killed client may have written a
        # request that the server has not read yet: it is not in flight until read, but its
        # connection is open until the server has read everything and seen the close.
        self._connections = 0
        # Bumped by a snapshot restore: a call begun before it is not applied after it (the
        # middleware answers it 503) and does not appear in the restored log.
        self._epoch = 0

    def connection_opened(self) -> None:
        with self._lock:
            self._connections += 1

    def connection_closed(self) -> None:
        with self._lock:
            self._connections -= 1

    def begin(self, environ, region: str | None, signing: str | None) -> Call:
        try:
            operation, protocol = identify(environ, signing)
        except Exception:  # the log must never stop a request from being served
            log.debug("cannot identify %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
                      exc_info=True)
            operation, protocol = None, "unknown"
        if operation is None:
            mutating = environ.get("REQUEST_METHOD", "GET").upper() not in ("GET", "HEAD", "OPTIONS")
        else:
            mutating = not is_read(operation)
        service = SIGNING_TO_IAM.get(signing, signing) if signing else None
        with self._lock:
            self._open += 1
            epoch = self._epoch
        return Call(service, operation, region, protocol, mutating, epoch=epoch)

    def record(self, call: Call, status: int, faulted: bool = False) -> None:
        with self._lock:
            if call.recorded:
                return
            call.recorded = True
            self._open -= 1
            if call.epoch != self._epoch:
                return  # begun before a restore: not part of the restored log
            self._seq += 1
            self._calls.append({
                "seq": self._seq, "time": round(time.time(), 3), "service": call.service,
                "operation": call.operation, "region": call.region, "protocol": call.protocol,
                "status": status, "mutating": call.mutating, "faulted": faulted,
            })
            if call.mutating and not faulted and 200 <= status < 300:
                key = f"{call.service or '?'}:{call.operation or '?'}"
                self._mutating[key] = self._mutating.get(key, 0) + 1

    def recording(self, call: Call, start_response):
        """start_response that records ``call`` with the status moto answers."""

        def respond(status, headers, exc_info=None):
            try:
                code = int(str(status).split(None, 1)[0])
            except ValueError:
                code = 500
            self.record(call, code)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return respond

    def snapshot(self) -> dict:
        with self._lock:
            calls = list(self._calls)
            return {"calls": calls, "mutating": dict(sorted(self._mutating.items())),
                    "dropped": self._seq - len(calls), "in_flight": self._open,
                    "connections": self._connections}

    def state(self) -> dict:
        """The log and its counts (not the live in-flight and connection counts)."""
        with self._lock:
            return {"calls": [dict(c) for c in self._calls], "mutating": dict(self._mutating), "seq": self._seq}

    def restore(self, saved: dict) -> None:
        with self._lock:
            self._calls.clear()
            self._calls.extend(dict(c) for c in saved["calls"])
            self._mutating = dict(saved["mutating"])
            self._seq = saved["seq"]
            self._epoch += 1

    @property
    def epoch(self) -> int:
        return self._epoch

    def clear(self) -> int:
        with self._lock:
            n = len(self._calls)
            self._calls.clear()
            self._mutating.clear()
            self._seq = 0
            return n


class _Guarded:
    """Iterable result whose close() records a call that never got a status as 500."""

    def __init__(self, result, log: CallLog, call: Call) -> None:
        self.result, self.log, self.call = result, log, call

    def __iter__(self):
        return iter(self.result)

    def close(self) -> None:
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            self.log.record(self.call, 500)


def guard(result, log: CallLog, call: Call):
    return result if call.recorded else _Guarded(result, log, call)

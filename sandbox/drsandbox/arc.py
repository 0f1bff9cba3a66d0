"""Route 53 Application Recovery Controller (ARC) routing control: the smallest faithful subset.

moto 5.2.5 has no ARC at all (no route53-recovery-control-config, no route53-recovery-cluster:
requests for them get moto's HTML 404/500). The sandbox serves both, with AWS's wire shapes
(the botocore / Smithy models the SDKs are generated from):

* **Control plane** ``route53-recovery-control-config`` (REST-JSON; AWS hosts it in us-west-2
  only: "you must specify the US West (Oregon) Region ... when you create resources such as
  clusters, control panels, or routing controls", ARC Developer Guide, "AWS Region
  availability for routing control"). On the sandbox's main endpoint, like every other
  service; its faults and call log count it as us-west-2 whatever region signed it, so a
  us-west-2 outage takes it down and a us-east-1 one does not. CreateCluster (with its
  DefaultControlPanel), DescribeCluster, ListClusters, DeleteCluster, CreateControlPanel,
  DescribeControlPanel, ListControlPanels, UpdateControlPanel, DeleteControlPanel,
  CreateRoutingControl, DescribeRoutingControl, ListRoutingControls, UpdateRoutingControl,
  DeleteRoutingControl, ListAssociatedRoute53HealthChecks. Clusters, control panels and
  routing controls are ``PENDING`` for ``arc_cluster_create`` / ``arc_control_create``
  (profile) and ``DEPLOYED`` after; a cluster lists its endpoints once DEPLOYED, and the data
  plane knows a control panel or routing control once DEPLOYED. A new routing control is
  ``Off``. ClientToken makes a create idempotent. Safety rules and tags operations answer a
  clear 400 ValidationException "not emulated".
* **Data plane** ``route53-recovery-cluster`` (JSON 1.0, target prefix ``ToggleCustomerAPI``):
  GetRoutingControlState, ListRoutingControls, UpdateRoutingControlState,
  UpdateRoutingControlStates, served **only on a cluster's five regional endpoints**
  (CreateCluster: "an array of the five cluster endpoints (one for each supported AWS
  Region)"; us-east-1, us-west-2, eu-west-1, ap-northeast-1, ap-southeast-2). In the sandbox
  an endpoint is a path on the main port, ``http://127.0.0.1:PORT/arc/<cluster id>/<region>/v1``
  (DescribeCluster's ClusterEndpoints), as AWS's are ``https://<host>.<region>...amazonaws.com/v1``.
  A client uses one endpoint with that endpoint's region (endpoint_url override + region, one
  SDK client per endpoint: "Specify an endpoint and Amazon Web Services Region", CreateCluster
  API reference); a request signed for another region is refused 403
  InvalidSignatureException, as SigV4 would. Faults and the call log take the region from the
  path, so a region outage makes exactly that region's endpoint hang (like the rest of the
  region) while the other four answer ("If the endpoint is unavailable, you can try
  connecting to another one of your cluster endpoints", ARC Developer Guide, "Getting and
  updating routing control states using the ARC API"). The cluster keeps state by quorum
  across its five regions ("to get a quorum across five AWS Regions", ibid., "AWS Region
  availability for routing control"): with fewer than three of them lit (not dark) every
  data-plane call answers 503 EndpointTemporarilyUnavailableException. Requests to the
  control-plane address or to an unknown/undeployed cluster endpoint are refused (AWS has no
  such endpoint).

State lives in a moto ``BackendDict`` (``arc_backends``), so a reset clears it and a snapshot
saves and restores it with everything else. Route 53 RECOVERY_CONTROL health checks follow a
routing control's state (route53.py: On healthy, Off unhealthy).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

from moto.core.base_backend import BackendDict, BaseBackend
from moto.moto_api._internal import mock_random

_SB = None  # the running Sandbox (set by install)

CONTROL_SERVICE = "route53-recovery-control-config"
CLUSTER_SERVICE = "route53-recovery-cluster"
CONTROL_REGION = "us-west-2"
CLUSTER_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2")
QUORUM = 3
TARGET_PREFIX = "ToggleCustomerAPI"
STATES = ("On", "Off")
NAME_RE = re.compile(r"^\S{1,64}$")
ENDPOINT_RE = re.compile(r"^/arc/(?P<cluster>[0-9a-f-]{36})/(?P<region>[a-z0-9-]+)/v1/?$")

_lock = threading.RLock()  # one ARC request at a time (creates, state changes)


# --------------------------------------------------------------------------- state

@dataclass
class Cluster:
    arn: str
    name: str
    created: float                 # sandbox clock
    network_type: str = "IPV4"
    tags: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


@dataclass
class ControlPanel:
    arn: str
    cluster_arn: str
    name: str
    created: float
    default: bool = False
    tags: dict = field(default_factory=dict)


@dataclass
class RoutingControl:
    arn: str
    panel_arn: str
    name: str
    created: float
    state: str = "Off"             # a new routing control is Off


class ArcBackend(BaseBackend):
    """One account's ARC routing-control resources (region key "aws": ARC is global)."""

    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.clusters: dict[str, Cluster] = {}
        self.panels: dict[str, ControlPanel] = {}
        self.controls: dict[str, RoutingControl] = {}
        self.tokens: dict[tuple[str, str], str] = {}  # (operation, ClientToken) -> ARN made


arc_backends = BackendDict(ArcBackend, CONTROL_SERVICE, use_boto3_regions=False, additional_regions=["aws"])


def _backend(account: str) -> ArcBackend:
    return arc_backends[account]["aws"]


def _deployed(created: float, key: str) -> bool:
    # The same sum as the deadline noted at creation, so a step lands on it exactly.
    return _SB.clock.monotonic() >= created + _SB.profile.seconds(key)


def _status(obj) -> str:
    key = "arc_cluster_create" if isinstance(obj, Cluster) else "arc_control_create"
    return "DEPLOYED" if _deployed(obj.created, key) else "PENDING"


def endpoint_url(cluster: Cluster, region: str) -> str:
    return f"{_SB.url}/arc/{cluster.id}/{region}/v1"


def routing_control_state(account: str, arn: str | None) -> str | None:
    """A routing control's state (On/Off), or None if there is no such routing control."""
    if not arn or account not in arc_backends.keys():
        return None
    control = _backend(account).controls.get(arn)
    return control.state if control else None


def summary(account: str) -> list[dict]:
    """Clusters, their endpoints and routing controls (for /_sandbox/arc)."""
    if account not in arc_backends.keys():
        return []
    b = _backend(account)
    out = []
    for c in list(b.clusters.values()):
        panels = [p for p in b.panels.values() if p.cluster_arn == c.arn]
        out.append({"arn": c.arn, "name": c.name, "status": _status(c),
                    "endpoints": [{"region": r, "url": endpoint_url(c, r), "dark": _dark(r)} for r in CLUSTER_REGIONS],
                    "quorum": sum(1 for r in CLUSTER_REGIONS if not _dark(r)) >= QUORUM,
                    "control_panels": [{"arn": p.arn, "name": p.name, "default": p.default, "status": _status(p),
                                        "routing_controls": [{"arn": rc.arn, "name": rc.name, "state": rc.state,
                                                              "status": _status(rc)}
                                                             for rc in b.controls.values() if rc.panel_arn == p.arn]}
                                       for p in panels]})
    return out


def _dark(region: str) -> bool:
    """The region's share of the cluster is unreachable for everyone (an unscoped outage)."""
    return _SB.faults.outage(region, CLUSTER_SERVICE) is not None


# --------------------------------------------------------------------------- requests

def fault_region(environ, service: str | None) -> str | None:
    """The region a request counts for (faults, call log) when it is not its SigV4 scope's:
    the data plane's endpoint region, or us-west-2 for the control plane."""
    m = ENDPOINT_RE.match(environ.get("PATH_INFO", ""))
    if m:
        return m.group("region")
    if service == CONTROL_SERVICE:
        return CONTROL_REGION
    return None


def handles(environ, service: str | None) -> bool:
    return service in (CONTROL_SERVICE, CLUSTER_SERVICE) or environ.get("PATH_INFO", "").startswith("/arc/")


def _account(environ) -> str:
    import os

    from moto.iam.models import get_account_id_from

    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    m = re.search(r"Credential=([^/,\s]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return get_account_id_from(m.group(1) if m else "")


class ArcError(Exception):
    def __init__(self, code: str, message: str, status: int, **extra) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra


def _body(environ) -> bytes:
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        n = 0
    return environ["wsgi.input"].read(n) if n > 0 else b""


def _answer(start_response, status: int, body: dict, content_type: str, error: str | None = None):
    data = json.dumps(body).encode()
    headers = [("Content-Type", content_type), ("Content-Length", str(len(data))),
               ("x-amzn-RequestId", str(uuid.uuid4()))]  # not mock_random: ids stay reproducible
    if error:
        headers.append(("x-amzn-ErrorType", error))
    reasons = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
               500: "Internal Server Error", 503: "Service Unavailable"}
    start_response(f"{status} {reasons.get(status, 'Error')}", headers)
    return [data]


def handle(environ, start_response, service: str | None):
    """Serve one ARC request (control plane on the main endpoint, data plane on a cluster
    endpoint)."""
    from .faults import request_scope

    path = environ.get("PATH_INFO", "")
    m = ENDPOINT_RE.match(path)
    if m or service == CLUSTER_SERVICE:
        ctype = "application/x-amz-json-1.0"
        try:
            if not m:
                raise ArcError("UnknownEndpointException",
                               "route53-recovery-cluster is served only on a cluster's regional endpoints (see "
                               "DescribeCluster ClusterEndpoints); this request went to the sandbox's main address",
                               404)
            signed_region, signed_service = request_scope(environ)
            body = _cluster_request(environ, m.group("cluster"), m.group("region"), signed_region, signed_service)
            return _answer(start_response, 200, body, ctype)
        except ArcError as e:
            return _answer(start_response, e.status, {"__type": e.code, "message": e.message, **e.extra}, ctype, e.code)
    try:
        body = _control_request(environ)
        return _answer(start_response, 200, body, "application/json")
    except ArcError as e:
        return _answer(start_response, e.status, {"message": e.message}, "application/json", e.code)


# --------------------------------------------------------------------------- data plane

def _not_found(what: str, ident: str) -> ArcError:
    return ArcError("ResourceNotFoundException", f"{what} not found: {ident}", 404,
                    resourceId=ident, resourceType=what)


def _validation(message: str, name: str | None = None) -> ArcError:
    extra = {"reason": "fieldValidationFailed" if name else "other"}
    if name:
        extra["fields"] = [{"name": name, "message": message}]
    return ArcError("ValidationException", message, 400, **extra)


def _cluster_request(environ, cluster_id: str, region: str, signed_region, signed_service) -> dict:
    account = _account(environ)
    b = _backend(account)
    cluster = next((c for c in list(b.clusters.values()) if c.id == cluster_id), None)
    if cluster is None or region not in CLUSTER_REGIONS or not _deployed(cluster.created, "arc_cluster_create"):
        raise ArcError("UnknownEndpointException", f"no cluster endpoint {cluster_id} in {region}", 404)
    if signed_region is None:
        raise ArcError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
    if signed_region != region or signed_service != CLUSTER_SERVICE:
        raise ArcError("InvalidSignatureException",
                       f"Credential should be scoped to a valid region, not '{signed_region}'. (drsandbox: this is "
                       f"the {region} endpoint of the cluster; sign with region {region} and service "
                       f"{CLUSTER_SERVICE})" if signed_region != region else
                       f"Credential should be scoped to correct service: '{CLUSTER_SERVICE}'.", 403)
    lit = [r for r in CLUSTER_REGIONS if not _dark(r)]
    if len(lit) < QUORUM:
        raise ArcError("EndpointTemporarilyUnavailableException",
                       f"The cluster cannot reach a quorum: {len(lit)} of its {len(CLUSTER_REGIONS)} regions are "
                       "reachable", 503)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    prefix, _, op = target.partition(".")
    raw = _body(environ)
    try:
        params = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ArcError("SerializationException", "the request body is not valid JSON", 400)
    if prefix != TARGET_PREFIX or op not in _CLUSTER_OPS:
        raise ArcError("UnknownOperationException", f"unknown operation {target!r}", 400)
    if not isinstance(params, dict):
        raise _validation("the request body must be a JSON object")
    with _lock:
        return _CLUSTER_OPS[op](b, cluster, params)


def _control_in(b: ArcBackend, cluster: Cluster, arn) -> RoutingControl:
    """A deployed routing control of this cluster (the data plane knows nothing else)."""
    if not isinstance(arn, str) or not arn:
        raise _validation("RoutingControlArn is required", "RoutingControlArn")
    control = b.controls.get(arn)
    panel = b.panels.get(control.panel_arn) if control else None
    if control is None or panel is None or panel.cluster_arn != cluster.arn or \
            not _deployed(control.created, "arc_control_create"):
        raise _not_found("RoutingControl", arn)
    return control


def _state_of(params: dict, key: str = "RoutingControlState") -> str:
    state = params.get(key)
    if state not in STATES:
        raise _validation(f"Value '{state}' at '{key[0].lower() + key[1:]}' failed to satisfy constraint: Member must "
                          "satisfy enum value set: [On, Off]", key)
    return state


def _get_state(b, cluster, params) -> dict:
    control = _control_in(b, cluster, params.get("RoutingControlArn"))
    return {"RoutingControlArn": control.arn, "RoutingControlState": control.state, "RoutingControlName": control.name}


def _list_states(b, cluster, params) -> dict:
    panel_arn = params.get("ControlPanelArn")
    if panel_arn is not None:
        panel = b.panels.get(panel_arn)
        if panel is None or panel.cluster_arn != cluster.arn or not _deployed(panel.created, "arc_control_create"):
            raise _not_found("ControlPanel", panel_arn)
    items = []
    for control in list(b.controls.values()):
        panel = b.panels.get(control.panel_arn)
        if panel is None or panel.cluster_arn != cluster.arn or not _deployed(control.created, "arc_control_create"):
            continue
        if panel_arn is not None and panel.arn != panel_arn:
            continue
        items.append({"ControlPanelArn": panel.arn, "ControlPanelName": panel.name, "RoutingControlArn": control.arn,
                      "RoutingControlName": control.name, "RoutingControlState": control.state, "Owner": b.account_id})
    return _page(items, params, "RoutingControls", 500)


def _update_state(b, cluster, params) -> dict:
    control = _control_in(b, cluster, params.get("RoutingControlArn"))
    control.state = _state_of(params)
    return {}


def _update_states(b, cluster, params) -> dict:
    entries = params.get("UpdateRoutingControlStateEntries")
    if not isinstance(entries, list) or not entries:
        raise _validation("UpdateRoutingControlStateEntries is required", "UpdateRoutingControlStateEntries")
    # All or nothing: every entry is checked before any state changes.
    changes = [(_control_in(b, cluster, e.get("RoutingControlArn") if isinstance(e, dict) else None),
                _state_of(e if isinstance(e, dict) else {})) for e in entries]
    for control, state in changes:
        control.state = state
    return {}


_CLUSTER_OPS = {"GetRoutingControlState": _get_state, "ListRoutingControls": _list_states,
                "UpdateRoutingControlState": _update_state, "UpdateRoutingControlStates": _update_states}


def _page(items: list, params: dict, key: str, default_max: int) -> dict:
    try:
        start = int(params.get("NextToken") or 0)
    except (TypeError, ValueError):
        raise _validation("NextToken is not valid", "NextToken")
    size = params.get("MaxResults") or default_max
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if not isinstance(size, int) or size < 1:
        raise _validation("MaxResults must be at least 1", "MaxResults")
    out = {key: items[start:start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out


# --------------------------------------------------------------------------- control plane

def _raw_path(environ) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    if "://" in raw:
        raw = "/" + raw.split("://", 1)[1].split("/", 1)[-1]
    return raw.split("?", 1)[0]


def _control_request(environ) -> dict:
    account = _account(environ)
    method = environ.get("REQUEST_METHOD", "GET").upper()
    parts = [unquote(p) for p in _raw_path(environ).strip("/").split("/")]
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    raw = _body(environ)
    try:
        params = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ArcError("ValidationException", "the request body is not valid JSON", 400)
    if not isinstance(params, dict):
        raise ArcError("ValidationException", "the request body must be a JSON object", 400)
    params.update(query)
    b = _backend(account)
    head = parts[0] if parts else ""
    with _lock:
        if head == "cluster":
            if len(parts) == 1:
                if method == "POST":
                    return _create_cluster(b, params)
                if method == "GET":
                    return _page([_cluster_view(c) for c in b.clusters.values()], params, "Clusters", 100)
            elif len(parts) == 2:
                if method == "GET":
                    return {"Cluster": _cluster_view(_cluster(b, parts[1]))}
                if method == "DELETE":
                    return _delete_cluster(b, parts[1])
        elif head == "controlpanels" and len(parts) == 1 and method == "GET":
            panels = [p for p in b.panels.values() if not params.get("ClusterArn") or p.cluster_arn == params["ClusterArn"]]
            if params.get("ClusterArn"):
                _cluster(b, params["ClusterArn"])
            return _page([_panel_view(b, p) for p in panels], params, "ControlPanels", 100)
        elif head == "controlpanel":
            if len(parts) == 1 and method == "POST":
                return _create_panel(b, params)
            if len(parts) == 1 and method == "PUT":
                panel = _panel(b, params.get("ControlPanelArn"))
                panel.name = _name(params.get("ControlPanelName"), "ControlPanelName")
                return {"ControlPanel": _panel_view(b, panel)}
            if len(parts) == 2 and method == "GET":
                return {"ControlPanel": _panel_view(b, _panel(b, parts[1]))}
            if len(parts) == 2 and method == "DELETE":
                return _delete_panel(b, parts[1])
            if len(parts) == 3 and parts[2] == "routingcontrols" and method == "GET":
                panel = _panel(b, parts[1])
                controls = [_control_view(b, c) for c in b.controls.values() if c.panel_arn == panel.arn]
                return _page(controls, params, "RoutingControls", 100)
            if len(parts) == 3 and parts[2] == "safetyrules":
                raise _not_emulated("safety rules")
        elif head == "routingcontrol":
            if len(parts) == 1 and method == "POST":
                return _create_control(b, params)
            if len(parts) == 1 and method == "PUT":
                control = _control(b, params.get("RoutingControlArn"))
                control.name = _name(params.get("RoutingControlName"), "RoutingControlName")
                return {"RoutingControl": _control_view(b, control)}
            if len(parts) == 2 and method == "GET":
                return {"RoutingControl": _control_view(b, _control(b, parts[1]))}
            if len(parts) == 2 and method == "DELETE":
                control = _control(b, parts[1])
                del b.controls[control.arn]
                return {}
            if len(parts) == 3 and parts[2] == "associatedRoute53HealthChecks" and method == "GET":
                control = _control(b, parts[1])
                return _page(_associated_checks(account, control.arn), params, "HealthCheckIds", 100)
        elif head in ("safetyrule", "tags", "resourcePolicy"):
            raise _not_emulated({"safetyrule": "safety rules", "tags": "tagging operations",
                                 "resourcePolicy": "resource policies"}[head])
    raise ArcError("UnknownOperationException", f"drsandbox: no ARC control-plane operation {method} /{'/'.join(parts)}",
                   404)


def _not_emulated(what: str) -> ArcError:
    return ArcError("ValidationException", f"drsandbox: ARC {what} are not emulated", 400)


def _name(value, field_name: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ArcError("ValidationException", f"{field_name} must be 1-64 characters without whitespace", 400)
    return value


def _note(created: float, key: str) -> None:
    _SB.clock.note(created + _SB.profile.seconds(key))


def _idempotent(b: ArcBackend, op: str, params: dict, table: dict):
    token = params.get("ClientToken")
    if token:
        arn = b.tokens.get((op, token))
        if arn in table:
            return table[arn]
    return None


def _remember(b: ArcBackend, op: str, params: dict, arn: str) -> None:
    if params.get("ClientToken"):
        b.tokens[(op, params["ClientToken"])] = arn


def _cluster(b: ArcBackend, arn) -> Cluster:
    cluster = b.clusters.get(arn) if isinstance(arn, str) else None
    if cluster is None:
        raise ArcError("ResourceNotFoundException", f"Cluster not found: {arn}", 404)
    return cluster


def _panel(b: ArcBackend, arn) -> ControlPanel:
    panel = b.panels.get(arn) if isinstance(arn, str) else None
    if panel is None:
        raise ArcError("ResourceNotFoundException", f"Control panel not found: {arn}", 404)
    return panel


def _control(b: ArcBackend, arn) -> RoutingControl:
    control = b.controls.get(arn) if isinstance(arn, str) else None
    if control is None:
        raise ArcError("ResourceNotFoundException", f"Routing control not found: {arn}", 404)
    return control


def _cluster_view(c: Cluster) -> dict:
    status = _status(c)
    return {"ClusterArn": c.arn, "Name": c.name, "Status": status, "Owner": c.arn.split(":")[4],
            "NetworkType": c.network_type,
            # Endpoints once the cluster is deployed: until then there is nothing to talk to.
            "ClusterEndpoints": [{"Endpoint": endpoint_url(c, r), "Region": r} for r in CLUSTER_REGIONS]
            if status == "DEPLOYED" else []}


def _panel_view(b: ArcBackend, p: ControlPanel) -> dict:
    return {"ClusterArn": p.cluster_arn, "ControlPanelArn": p.arn, "DefaultControlPanel": p.default, "Name": p.name,
            "RoutingControlCount": sum(1 for c in b.controls.values() if c.panel_arn == p.arn),
            "Status": _status(p), "Owner": b.account_id}


def _control_view(b: ArcBackend, c: RoutingControl) -> dict:
    return {"ControlPanelArn": c.panel_arn, "Name": c.name, "RoutingControlArn": c.arn, "Status": _status(c),
            "Owner": b.account_id}


def _arn(account: str, resource: str) -> str:
    return f"arn:aws:route53-recovery-control::{account}:{resource}"


def _create_cluster(b: ArcBackend, params: dict) -> dict:
    found = _idempotent(b, "CreateCluster", params, b.clusters)
    if found is not None:
        return {"Cluster": _cluster_view(found)}
    name = _name(params.get("ClusterName"), "ClusterName")
    network = params.get("NetworkType") or "IPV4"
    if network not in ("IPV4", "DUALSTACK"):
        raise ArcError("ValidationException", "NetworkType must be IPV4 or DUALSTACK", 400)
    now = _SB.clock.monotonic()
    cluster = Cluster(_arn(b.account_id, f"cluster/{mock_random.uuid4()}"), name, now, network,
                      dict(params.get("Tags") or {}))
    b.clusters[cluster.arn] = cluster
    # Every cluster comes with a default control panel (Recovery Control Configuration API
    # reference: "You can use the default control panel that is created for each cluster").
    panel = ControlPanel(_arn(b.account_id, f"controlpanel/{mock_random.get_random_hex(32)}"), cluster.arn,
                         "DefaultControlPanel", now, default=True)
    b.panels[panel.arn] = panel
    _remember(b, "CreateCluster", params, cluster.arn)
    _note(now, "arc_cluster_create")
    return {"Cluster": _cluster_view(cluster)}


def _delete_cluster(b: ArcBackend, arn: str) -> dict:
    cluster = _cluster(b, arn)
    panels = [p for p in b.panels.values() if p.cluster_arn == cluster.arn]
    if any(c.panel_arn in {p.arn for p in panels} for c in b.controls.values()) or any(not p.default for p in panels):
        raise ArcError("ConflictException", f"Cluster {arn} still has control panels or routing controls", 409)
    for p in panels:
        del b.panels[p.arn]
    del b.clusters[cluster.arn]
    return {}


def _create_panel(b: ArcBackend, params: dict) -> dict:
    found = _idempotent(b, "CreateControlPanel", params, b.panels)
    if found is not None:
        return {"ControlPanel": _panel_view(b, found)}
    cluster = _cluster(b, params.get("ClusterArn"))
    name = _name(params.get("ControlPanelName"), "ControlPanelName")
    if any(p.cluster_arn == cluster.arn and p.name == name for p in b.panels.values()):
        raise ArcError("ConflictException", f"A control panel named {name} already exists in the cluster", 409)
    now = _SB.clock.monotonic()
    panel = ControlPanel(_arn(b.account_id, f"controlpanel/{mock_random.get_random_hex(32)}"), cluster.arn, name, now,
                         tags=dict(params.get("Tags") or {}))
    b.panels[panel.arn] = panel
    _remember(b, "CreateControlPanel", params, panel.arn)
    _note(now, "arc_control_create")
    return {"ControlPanel": _panel_view(b, panel)}


def _delete_panel(b: ArcBackend, arn: str) -> dict:
    panel = _panel(b, arn)
    if panel.default:
        raise ArcError("ValidationException", "The default control panel of a cluster cannot be deleted", 400)
    if any(c.panel_arn == panel.arn for c in b.controls.values()):
        raise ArcError("ConflictException", f"Control panel {arn} still has routing controls", 409)
    del b.panels[panel.arn]
    return {}


def _create_control(b: ArcBackend, params: dict) -> dict:
    found = _idempotent(b, "CreateRoutingControl", params, b.controls)
    if found is not None:
        return {"RoutingControl": _control_view(b, found)}
    cluster = _cluster(b, params.get("ClusterArn"))
    name = _name(params.get("RoutingControlName"), "RoutingControlName")
    if params.get("ControlPanelArn"):
        panel = _panel(b, params["ControlPanelArn"])
        if panel.cluster_arn != cluster.arn:
            raise ArcError("ValidationException", "The control panel is not in the cluster", 400)
    else:
        panel = next(p for p in b.panels.values() if p.cluster_arn == cluster.arn and p.default)
    # "routing control names must be unique within each control panel" (ARC Developer Guide,
    # "Creating a routing control").
    if any(c.panel_arn == panel.arn and c.name == name for c in b.controls.values()):
        raise ArcError("ConflictException", f"A routing control named {name} already exists in the control panel", 409)
    now = _SB.clock.monotonic()
    control = RoutingControl(f"{panel.arn}/routingcontrol/{mock_random.get_random_hex(16)}", panel.arn, name, now)
    b.controls[control.arn] = control
    _remember(b, "CreateRoutingControl", params, control.arn)
    _note(now, "arc_control_create")
    return {"RoutingControl": _control_view(b, control)}


def _associated_checks(account: str, arn: str) -> list[str]:
    from moto.route53.models import route53_backends

    return [hc.id for hc in list(route53_backends[account]["aws"].health_checks.values())
            if getattr(hc, "routing_control_arn", None) == arn]


def install(sandbox) -> None:
    global _SB
    _SB = sandbox

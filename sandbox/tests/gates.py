"""Helpers for the failover gates: ARC clusters and routing controls reached the way drctl will
reach them (one SDK client per cluster endpoint: endpoint_url + that endpoint's region, tried
in turn), CloudWatch alarms, and Route 53 health checks over them."""

from __future__ import annotations

import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

# Session sandbox: instant profile at time scale 0.5.
MINUTE = 0.5      # one CloudWatch minute (cloudwatch_minute 1.0 x 0.5)
INTERVAL = 0.5    # one health-checker round (health_check_interval 1.0 x 0.5)

_CLIENTS: dict = {}


def data_plane(endpoint: dict, read_timeout: float = 10.0):
    """A route53-recovery-cluster client for one cluster endpoint ({"Endpoint", "Region"})."""
    key = (endpoint["Endpoint"], endpoint["Region"], read_timeout)
    if key not in _CLIENTS:
        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2,
                     read_timeout=read_timeout)
        _CLIENTS[key] = boto3.client("route53-recovery-cluster", region_name=endpoint["Region"],
                                     endpoint_url=endpoint["Endpoint"], config=cfg,
                                     aws_access_key_id="test", aws_secret_access_key="test")
    return _CLIENTS[key]


def step_next(sbx) -> None:
    """Step the clock to its next event; nothing to step to (it already happened) is fine."""
    status, body = sbx.control("POST", "/_sandbox/clock/step", {})
    assert status in (200, 409), body


def make_cluster(sbx, name: str = "gate") -> tuple[dict, list[dict]]:
    """A DEPLOYED cluster (the clock stepped to its deployment) and its five endpoints."""
    cc = sbx.client("route53-recovery-control-config", "us-west-2")
    cluster = cc.create_cluster(ClusterName=name, ClientToken=str(uuid.uuid4()))["Cluster"]
    for _ in range(10):
        cluster = cc.describe_cluster(ClusterArn=cluster["ClusterArn"])["Cluster"]
        if cluster["Status"] == "DEPLOYED":
            return cluster, cluster["ClusterEndpoints"]
        step_next(sbx)
    raise AssertionError(f"cluster not deployed: {cluster}")


def make_control(sbx, cluster: dict, name: str = "primary-open", panel: str | None = None) -> str:
    """A DEPLOYED routing control in the cluster (its default control panel unless ``panel``)."""
    cc = sbx.client("route53-recovery-control-config", "us-west-2")
    kw = {"ControlPanelArn": panel} if panel else {}
    rc = cc.create_routing_control(ClusterArn=cluster["ClusterArn"], RoutingControlName=name, **kw)["RoutingControl"]
    for _ in range(10):
        if cc.describe_routing_control(RoutingControlArn=rc["RoutingControlArn"])["RoutingControl"]["Status"] == \
                "DEPLOYED":
            return rc["RoutingControlArn"]
        step_next(sbx)
    raise AssertionError("routing control not deployed")


def set_control(endpoints: list[dict], arn: str, state: str, read_timeout: float = 1.0) -> list[tuple[str, str]]:
    """Set a routing control through the first endpoint that answers, trying them in turn (as
    the ARC Developer Guide's examples do); returns what each attempt did, in order."""
    tried = []
    for ep in endpoints:
        try:
            data_plane(ep, read_timeout).update_routing_control_state(RoutingControlArn=arn, RoutingControlState=state)
        except (ReadTimeoutError, ConnectionError) as e:
            tried.append((ep["Region"], type(e).__name__))
            continue
        except ClientError as e:
            tried.append((ep["Region"], e.response["Error"]["Code"]))
            continue
        tried.append((ep["Region"], "ok"))
        return tried
    raise AssertionError(f"no endpoint took the update: {tried}")


def health_check(sbx, config: dict) -> str:
    return sbx.client("route53").create_health_check(CallerReference=str(uuid.uuid4()),
                                                     HealthCheckConfig=config)["HealthCheck"]["Id"]


def healthy(sbx, hc_id: str) -> bool:
    """The sandbox's view of a health check (GET /_sandbox/health)."""
    checks = sbx.control("GET", "/_sandbox/health")[1]["health_checks"]
    return next(h["healthy"] for h in checks if h["id"] == hc_id)


def gate_alarm(sbx, name: str = "gate", region: str = "us-west-2", **overrides) -> None:
    """An alarm that closes the gate: drctl/Gate Closed >= 1 over one minute; TreatMissingData
    ``ignore`` latches the last state while nobody writes."""
    spec = dict(AlarmName=name, Namespace="drctl/Gate", MetricName="Closed", Statistic="Maximum", Period=60,
                EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
                TreatMissingData="ignore")
    spec.update(overrides)
    sbx.client("cloudwatch", region).put_metric_alarm(**spec)


def alarm_state(sbx, name: str, region: str = "us-west-2") -> str:
    return sbx.client("cloudwatch", region).describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]

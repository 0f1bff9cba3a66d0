"""Route 53 health checks that probe nothing: CALCULATED and CLOUDWATCH_METRIC (route53.py).
RECOVERY_CONTROL checks are in test_arc.py.

Plain moto 5.2.5 evaluates none of them: GetHealthCheckStatus answers one fake "Success" for
any check, a CLOUDWATCH_METRIC check loses its AlarmIdentifier and InsufficientDataHealthStatus
(and shows Port 80, RequestInterval 30), TestDNSAnswer is 404 and no AWS/Route53 metric is
published. AWS's rules: Route 53 Developer Guide, "How Route 53 determines whether a health
check is healthy" (calculated checks, CloudWatch alarms); Route 53 API reference,
HealthCheckConfig and GetHealthCheckStatus.

The clock is paused and stepped: one health-checker round per INTERVAL, one alarm evaluation
per MINUTE.
"""

from __future__ import annotations

import datetime

import pytest
from botocore.exceptions import ClientError

from gates import INTERVAL, MINUTE, gate_alarm, health_check, healthy


def _tcp(port: int, threshold: int = 1) -> dict:
    return {"Type": "TCP", "IPAddress": "127.0.0.1", "Port": port, "RequestInterval": 10,
            "FailureThreshold": threshold}


def _calculated(children, threshold, **extra) -> dict:
    return {"Type": "CALCULATED", "ChildHealthChecks": list(children), "HealthThreshold": threshold, **extra}


def test_calculated_check_counts_its_healthy_children(sbx):
    """A CALCULATED check is healthy while at least HealthThreshold of its children are (a
    deleted or unhealthy child does not count); 0 is always healthy, more than the children
    always unhealthy; Inverted flips it, Disabled makes it healthy; it follows its children at
    the checker's next round (moto: never evaluated)."""
    alb = sbx.make_alb()
    up = health_check(sbx, {"Type": "HTTP", "FullyQualifiedDomainName": alb["dns"], "Port": 80,
                            "ResourcePath": "/health", "RequestInterval": 10, "FailureThreshold": 1})
    down = health_check(sbx, _tcp(9))  # nothing listens on port 9
    with sbx.paused():
        checks = {
            "2 of 2": health_check(sbx, _calculated([up, down], 2)),
            "1 of 2": health_check(sbx, _calculated([up, down], 1)),
            "0": health_check(sbx, _calculated([down], 0)),
            "3 of 2": health_check(sbx, _calculated([up, up], 3)),
            "inverted": health_check(sbx, _calculated([up, down], 2, Inverted=True)),
            "disabled": health_check(sbx, _calculated([down], 1, Disabled=True)),
        }
        # New checks are healthy until the checker has evaluated them (inverted: unhealthy).
        assert {k: healthy(sbx, c) for k, c in checks.items()} == {
            "2 of 2": True, "1 of 2": True, "0": True, "3 of 2": True, "inverted": False, "disabled": True}
        sbx.step(INTERVAL)
        assert {k: healthy(sbx, c) for k, c in checks.items()} == {
            "2 of 2": False, "1 of 2": True, "0": True, "3 of 2": False, "inverted": True, "disabled": True}
        sbx.listener(alb["name"], "down")
        sbx.step(INTERVAL)  # the probe sees it (FailureThreshold 1); the parent follows in the same round
        assert {k: healthy(sbx, c) for k, c in checks.items()} == {
            "2 of 2": False, "1 of 2": False, "0": True, "3 of 2": False, "inverted": True, "disabled": True}
        sbx.listener(alb["name"], "up")
        sbx.step(INTERVAL)
        assert healthy(sbx, checks["1 of 2"]) is True
        # A child that goes away counts as unhealthy.
        sbx.client("route53").delete_health_check(HealthCheckId=up)
        sbx.step(INTERVAL)
        assert healthy(sbx, checks["1 of 2"]) is False


def test_calculated_check_over_calculated_checks(sbx):
    """A calculated child is evaluated before its parent in the same round (moto: never)."""
    with sbx.paused():
        down = health_check(sbx, _tcp(9))
        inner = health_check(sbx, _calculated([down], 1, Inverted=True))   # healthy: its child is down
        outer = health_check(sbx, _calculated([inner], 1))
        sbx.step(INTERVAL)
        assert (healthy(sbx, inner), healthy(sbx, outer)) == (True, True)


def test_get_health_check_status_refuses_a_calculated_check(sbx):
    """GetHealthCheckStatus is InvalidInput for a CALCULATED check (API reference: "You can't use
    GetHealthCheckStatus to get the status of a calculated health check"); its status is the
    AWS/Route53 HealthCheckStatus metric in us-east-1, with ChildHealthCheckHealthyCount (moto:
    a fake Success, and no metrics)."""
    r53 = sbx.client("route53")
    cw = sbx.client("cloudwatch", "us-east-1")
    with sbx.paused():
        down = health_check(sbx, _tcp(9))
        calc = health_check(sbx, _calculated([down], 1))
        with pytest.raises(ClientError) as e:
            r53.get_health_check_status(HealthCheckId=calc)
        assert e.value.response["Error"]["Code"] == "InvalidInput"
        sbx.step(INTERVAL)
        sbx.step(MINUTE)  # a CloudWatch minute: the metrics are published
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)

    def metric(name, hc):
        points = cw.get_metric_statistics(Namespace="AWS/Route53", MetricName=name, StartTime=end - datetime.timedelta(
            hours=1), EndTime=end, Period=60, Statistics=["Minimum", "Maximum"],
            Dimensions=[{"Name": "HealthCheckId", "Value": hc}])["Datapoints"]
        return sorted({p["Minimum"] for p in points} | {p["Maximum"] for p in points})

    assert metric("HealthCheckStatus", calc) == [0.0]
    assert metric("ChildHealthCheckHealthyCount", calc) == [0.0]
    assert metric("HealthCheckStatus", down) == [0.0]
    assert metric("HealthCheckPercentageHealthy", down) == [0.0]


def test_create_calculated_check_validation(sbx):
    """A child that does not exist and a HealthThreshold above 256 are InvalidInput (moto
    accepts them)."""
    r53 = sbx.client("route53")
    for cfg in (_calculated(["00000000-0000-0000-0000-000000000000"], 1), _calculated([], 257)):
        with pytest.raises(ClientError) as e:
            r53.create_health_check(CallerReference=str(cfg), HealthCheckConfig=cfg)
        assert e.value.response["Error"]["Code"] == "InvalidInput"


def _cw_check(sbx, status: str | None, alarm: str = "gate", region: str = "us-west-2") -> str:
    cfg = {"Type": "CLOUDWATCH_METRIC", "AlarmIdentifier": {"Region": region, "Name": alarm}}
    if status:
        cfg["InsufficientDataHealthStatus"] = status
    return health_check(sbx, cfg)


def _closed(sbx, value: float, region: str = "us-west-2") -> None:
    sbx.client("cloudwatch", region).put_metric_data(Namespace="drctl/Gate", MetricData=[
        {"MetricName": "Closed", "Value": value}])


def test_cloudwatch_metric_check_follows_the_alarm_data_not_its_state(sbx):
    """OK -> healthy, ALARM -> unhealthy, at the checker's round after the alarm's evaluation;
    SetAlarmState changes nothing (Developer Guide: Route 53 "monitors the data stream for the
    corresponding alarm instead of monitoring the alarm state ... you can't force the status of
    a health check to change by using ... SetAlarmState"); GetHealthCheckStatus reports it
    (moto: a fake Success whatever the alarm)."""
    r53 = sbx.client("route53")
    cw = sbx.client("cloudwatch", "us-west-2")
    with sbx.paused():
        gate_alarm(sbx)
        hc = _cw_check(sbx, "Healthy")
        _closed(sbx, 0)
        sbx.step(MINUTE)
        assert healthy(sbx, hc) is True
        _closed(sbx, 1)
        sbx.step(MINUTE)
        assert cw.describe_alarms(AlarmNames=["gate"])["MetricAlarms"][0]["StateValue"] == "ALARM"
        assert healthy(sbx, hc) is False
        status = r53.get_health_check_status(HealthCheckId=hc)["HealthCheckObservations"][0]["StatusReport"]["Status"]
        assert status.startswith("Failure: CloudWatch alarm gate in us-west-2: the data stream is ALARM")
        cw.set_alarm_state(AlarmName="gate", StateValue="OK", StateReason="forcing the gate open")
        sbx.step(INTERVAL)
        assert healthy(sbx, hc) is False  # the data still says ALARM
        _closed(sbx, 0)
        sbx.step(MINUTE)
        assert healthy(sbx, hc) is True


def test_insufficient_data_health_status(sbx):
    """While the alarm's data is insufficient: Healthy, Unhealthy, or LastKnownStatus (a new
    check has none: healthy) (HealthCheckConfig.InsufficientDataHealthStatus; moto: ignored)."""
    with sbx.paused():
        gate_alarm(sbx, TreatMissingData="missing")
        checks = {s: _cw_check(sbx, s) for s in ("Healthy", "Unhealthy", "LastKnownStatus")}
        sbx.step(MINUTE)  # no data at all: INSUFFICIENT_DATA
        assert {s: healthy(sbx, c) for s, c in checks.items()} == {
            "Healthy": True, "Unhealthy": False, "LastKnownStatus": True}
        _closed(sbx, 1)
        sbx.step(MINUTE)
        assert {s: healthy(sbx, c) for s, c in checks.items()} == dict.fromkeys(checks, False)
        sbx.step(3 * MINUTE)  # the datapoint leaves the evaluation range: INSUFFICIENT_DATA again
        assert {s: healthy(sbx, c) for s, c in checks.items()} == {
            "Healthy": True, "Unhealthy": False, "LastKnownStatus": False}


def test_an_alarm_in_a_dark_region_is_insufficient_data(sbx):
    """The checker cannot read an alarm whose region is dark: InsufficientDataHealthStatus
    applies until the region is back (moto: no outage, no alarm evaluation)."""
    with sbx.paused():
        gate_alarm(sbx)
        checks = {s: _cw_check(sbx, s) for s in ("Healthy", "Unhealthy", "LastKnownStatus")}
        _closed(sbx, 1)
        sbx.step(MINUTE)
        assert {s: healthy(sbx, c) for s, c in checks.items()} == dict.fromkeys(checks, False)
        sbx.fault(region="us-west-2", service="cloudwatch", kind="outage")
        sbx.step(INTERVAL)
        assert {s: healthy(sbx, c) for s, c in checks.items()} == {
            "Healthy": True, "Unhealthy": False, "LastKnownStatus": False}
        sbx.control("DELETE", "/_sandbox/faults")
        sbx.step(INTERVAL)
        assert {s: healthy(sbx, c) for s, c in checks.items()} == dict.fromkeys(checks, False)


@pytest.mark.parametrize("alarm,message", [
    (None, "does not exist"),
    ({"Period": 10}, "high-resolution"),
    ({"Statistic": None, "ExtendedStatistic": "p99"}, "extended statistic"),
])
def test_create_cloudwatch_metric_check_validation(sbx, alarm, message):
    """The alarm must exist and be one Route 53 supports: standard resolution, a standard
    statistic (AlarmIdentifier.Name in the API reference) (moto accepts any, even none)."""
    if alarm is not None:
        spec = {k: v for k, v in alarm.items() if v is not None}
        if "ExtendedStatistic" in spec:
            gate_alarm(sbx, **{k: v for k, v in spec.items()})
        else:
            gate_alarm(sbx, **spec)
    with pytest.raises(ClientError) as e:
        _cw_check(sbx, "Healthy")
    assert e.value.response["Error"]["Code"] == "InvalidInput"
    assert message in e.value.response["Error"]["Message"]


def test_new_health_check_types_round_trip(sbx):
    """GetHealthCheck shows a CLOUDWATCH_METRIC check's AlarmIdentifier,
    InsufficientDataHealthStatus and CloudWatchAlarmConfiguration, and no endpoint fields;
    UpdateHealthCheck changes InsufficientDataHealthStatus (moto drops them and shows Port 80,
    RequestInterval 30)."""
    r53 = sbx.client("route53")
    gate_alarm(sbx, Dimensions=[{"Name": "Gate", "Value": "primary"}])
    hc = _cw_check(sbx, "LastKnownStatus")
    got = r53.get_health_check(HealthCheckId=hc)["HealthCheck"]
    assert got["HealthCheckConfig"] == {"Type": "CLOUDWATCH_METRIC", "Inverted": False, "Disabled": False,
                                        "AlarmIdentifier": {"Region": "us-west-2", "Name": "gate"},
                                        "InsufficientDataHealthStatus": "LastKnownStatus"}
    assert got["CloudWatchAlarmConfiguration"] == {
        "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Period": 60,
        "MetricName": "Closed", "Namespace": "drctl/Gate", "Statistic": "Maximum",
        "Dimensions": [{"Name": "Gate", "Value": "primary"}]}
    r53.update_health_check(HealthCheckId=hc, InsufficientDataHealthStatus="Unhealthy")
    got = r53.get_health_check(HealthCheckId=hc)["HealthCheck"]
    assert got["HealthCheckConfig"]["InsufficientDataHealthStatus"] == "Unhealthy"
    assert got["HealthCheckVersion"] == 2


def test_update_health_check_leaves_the_children_it_does_not_name(sbx):
    """UpdateHealthCheck changes only the elements the request names (API reference,
    UpdateHealthCheck); plain moto empties ChildHealthChecks when they are left out, so a
    HealthThreshold change would silently orphan a calculated check."""
    a, b = health_check(sbx, _tcp(9)), health_check(sbx, _tcp(9))
    calc = health_check(sbx, _calculated([a, b], 2))
    r53 = sbx.client("route53")
    r53.update_health_check(HealthCheckId=calc, HealthThreshold=1)
    cfg = r53.get_health_check(HealthCheckId=calc)["HealthCheck"]["HealthCheckConfig"]
    assert cfg["HealthThreshold"] == 1
    assert sorted(cfg["ChildHealthChecks"]) == sorted([a, b])
    r53.update_health_check(HealthCheckId=calc, ChildHealthChecks=[a])
    cfg = r53.get_health_check(HealthCheckId=calc)["HealthCheck"]["HealthCheckConfig"]
    assert cfg["ChildHealthChecks"] == [a] and cfg["HealthThreshold"] == 1

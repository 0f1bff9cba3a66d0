"""End to end: a failover built on the data plane only, as drctl's next issue will build it.

The seeded failover pair's PRIMARY record carries a CALCULATED health check over {the primary
ALB's HTTP check, a gate drctl controls from outside us-east-1}, HealthThreshold 2. The gate is
(a) an ARC routing control (On = open), set through the cluster's regional endpoints, tried in
turn, or (b) a CloudWatch alarm in us-west-2 on a metric drctl writes there (ALARM = closed;
TreatMissingData ``ignore`` latches it; InsufficientDataHealthStatus LastKnownStatus).

Closing the gate makes the public answer the SECONDARY with every ALB healthy; with us-east-1
dark the gate still closes (the other endpoints / the standby region's alarm), and once
us-east-1 is back and its ALB healthy again, the answer stays on the SECONDARY until the gate
opens. After the setup, neither the Route 53 nor the ARC control plane is called: only
route53-recovery-cluster or CloudWatch in us-west-2 (the "AWS Fault Isolation Boundaries"
whitepaper: a recovery path must not depend on a control plane; Route 53 ARC Developer Guide:
routing control states are changed through the data plane).

Plain moto cannot run any of it: no ARC (HTML 500), alarms never evaluated, CALCULATED and
CLOUDWATCH_METRIC checks never evaluated, TestDNSAnswer 404, no public edge.
"""

from __future__ import annotations

import pytest

from conftest import http_get, wait_for
from gates import INTERVAL, gate_alarm, health_check, healthy, make_cluster, make_control, set_control


def _answer_region(sbx) -> str | None:
    return sbx.control("GET", "/_sandbox/state")[1]["route53"]["answer_region"]


def _steps_until(sbx, done, max_steps: int = 12) -> int:
    """Step the paused clock one health-checker round at a time until ``done()``; how many."""
    for n in range(max_steps + 1):
        if done():
            return n
        sbx.step(INTERVAL)
    raise AssertionError(f"not done after {max_steps} rounds: {sbx.control('GET', '/_sandbox/health')[1]}")


@pytest.mark.parametrize("gate", ["routing-control", "alarm"])
def test_closing_the_gate_fails_over_and_holds_without_any_control_plane(seeded, gate):
    sbx, topo, _ = seeded
    r53 = sbx.client("route53")
    zone, alb_check = topo["route53"]["public_zone_id"], topo["route53"]["health_check_id"]

    # ---- setup (control planes allowed): the gate, the calculated check, the record.
    if gate == "routing-control":
        with sbx.paused():
            cluster, endpoints = make_cluster(sbx)
            arc = make_control(sbx, cluster, "primary-open")
        set_control(endpoints, arc, "On")
        gate_check = health_check(sbx, {"Type": "RECOVERY_CONTROL", "RoutingControlArn": arc})

        def close():
            return set_control(endpoints, arc, "Off", read_timeout=1.0)

        def reopen():
            return set_control(endpoints, arc, "On", read_timeout=1.0)
    else:
        cw = sbx.client("cloudwatch", "us-west-2")

        def put(value: float):
            cw.put_metric_data(Namespace="drctl/Gate", MetricData=[{"MetricName": "Closed", "Value": value}])
            return [("us-west-2", "ok")]

        gate_alarm(sbx)
        put(0)
        gate_check = health_check(sbx, {"Type": "CLOUDWATCH_METRIC", "InsufficientDataHealthStatus": "LastKnownStatus",
                                        "AlarmIdentifier": {"Region": "us-west-2", "Name": "gate"}})

        def close():
            return put(1)

        def reopen():
            return put(0)
    calculated = health_check(sbx, {"Type": "CALCULATED", "ChildHealthChecks": [alb_check, gate_check],
                                    "HealthThreshold": 2})
    primary = next(r for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
                   if r.get("Failover") == "PRIMARY")
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {**primary, "HealthCheckId": calculated}}]})

    with sbx.paused():
        _steps_until(sbx, lambda: healthy(sbx, calculated) and healthy(sbx, gate_check))
        assert _answer_region(sbx) == "us-east-1"
        sbx.control("DELETE", "/_sandbox/calls")

        # ---- 1. Closing the gate fails over, every ALB healthy.
        close()
        rounds = _steps_until(sbx, lambda: _answer_region(sbx) == "us-west-2")
        assert rounds <= 3
        assert healthy(sbx, alb_check) and not healthy(sbx, calculated)
        reopen()
        _steps_until(sbx, lambda: _answer_region(sbx) == "us-east-1")

        # ---- 2. us-east-1 dark: the gate closes from outside it.
        sbx.fault(region="us-east-1", kind="outage")
        tried = close()
        if gate == "routing-control":
            assert tried == [("us-east-1", "ReadTimeoutError"), ("us-west-2", "ok")]
        _steps_until(sbx, lambda: _answer_region(sbx) == "us-west-2")
        status, body, headers = http_get(topo["route53"]["public_url"] + "/", timeout=5)
        assert status == 200 and headers["x-drsandbox-region"] == "us-west-2"

        # ---- 3. us-east-1 back, its ALB healthy again: the failover holds while the gate is closed.
        sbx.control("DELETE", "/_sandbox/faults")
        # The update the dark endpoint held is served now (it sets Off again): let it land
        # before anything else changes the control.
        wait_for(lambda: sbx.control("GET", "/_sandbox/calls")[1]["in_flight"] == 0, what="held request served")
        _steps_until(sbx, lambda: healthy(sbx, alb_check))
        sbx.step(3 * INTERVAL)
        assert _answer_region(sbx) == "us-west-2"
        assert not healthy(sbx, calculated)

        # ---- 4. Opening the gate fails back.
        reopen()
        _steps_until(sbx, lambda: _answer_region(sbx) == "us-east-1")

    calls = sbx.control("GET", "/_sandbox/calls")[1]["calls"]
    used = {(c["service"], c["operation"], c["region"]) for c in calls if c["status"] == 200}
    assert not {c for c in used if c[0] in ("route53", "route53-recovery-control-config")}, used
    if gate == "routing-control":
        assert {c[:2] for c in used} == {("route53-recovery-cluster", "UpdateRoutingControlState")}
    else:
        assert used == {("cloudwatch", "PutMetricData", "us-west-2")}

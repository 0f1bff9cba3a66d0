"""Route 53: real health checks, TestDNSAnswer by health, change propagation, validation.

Plain moto never probes (get_health_check_status always reports one fake Success), answers
TestDNSAnswer with 404, reports every change INSYNC at once and accepts any RequestInterval;
each test below names the moto behaviour it would trip over.
"""

import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import wait_for

# Session sandbox: instant profile at time scale 0.5 -> a 10 s check is probed every 0.5 s.
INTERVAL = 0.5


def _hc(r53, **cfg):
    base = {"Type": "HTTP", "Port": 80, "ResourcePath": "/health", "RequestInterval": 10, "FailureThreshold": 3}
    base.update(cfg)
    return r53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig=base)["HealthCheck"]["Id"]


def _status(r53, hc_id):
    obs = r53.get_health_check_status(HealthCheckId=hc_id)["HealthCheckObservations"]
    return obs[0]["StatusReport"]["Status"] if obs else None


def _failover_zone(sbx, primary, secondary, hc_id, name="api.example.test."):
    r53 = sbx.client("route53")
    zone = r53.create_hosted_zone(Name="example.test.", CallerReference=str(uuid.uuid4()))["HostedZone"]["Id"]
    zone = zone.split("/")[-1]

    def rr(set_id, failover, alb, check=None):
        s = {"Name": name, "Type": "A", "SetIdentifier": set_id, "Failover": failover,
             "AliasTarget": {"HostedZoneId": alb["zone"], "DNSName": alb["dns"], "EvaluateTargetHealth": True}}
        if check:
            s["HealthCheckId"] = check
        return {"Action": "CREATE", "ResourceRecordSet": s}

    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        rr("primary", "PRIMARY", primary, hc_id), rr("secondary", "SECONDARY", secondary)]})
    return zone


def _answer(r53, zone, name="api.example.test"):
    return r53.test_dns_answer(HostedZoneId=zone, RecordName=name, RecordType="A")


def test_request_interval_only_10_or_30(sbx):
    """RequestInterval 15 is InvalidInput, 10 and 30 are accepted (moto accepts 15)."""
    r53 = sbx.client("route53")
    with pytest.raises(ClientError) as e:
        _hc(r53, IPAddress="127.0.0.1", RequestInterval=15)
    assert e.value.response["Error"]["Code"] == "InvalidInput"
    with pytest.raises(ClientError):
        _hc(r53, IPAddress="127.0.0.1", FailureThreshold=11)
    _hc(r53, IPAddress="127.0.0.1", RequestInterval=10)
    _hc(r53, IPAddress="127.0.0.1", RequestInterval=30)


def test_health_check_really_probes_target(sbx):
    """A check on an ALB's DNS name follows its listener: Success while up, Failure within
    interval x threshold once it is down, Success again after (moto: always Success)."""
    r53 = sbx.client("route53")
    alb = sbx.make_alb()
    hc = _hc(r53, FullyQualifiedDomainName=alb["dns"])
    wait_for(lambda: (_status(r53, hc) or "").startswith("Success: HTTP Status Code 200"), what="first success")
    sbx.listener(alb["name"], "error")
    t = time.monotonic()
    wait_for(lambda: (_status(r53, hc) or "").startswith("Failure: HTTP Status Code 500"), timeout=5)
    assert time.monotonic() - t <= INTERVAL * 3 + 1.0
    sbx.listener(alb["name"], "down")
    wait_for(lambda: "Connection refused" in (_status(r53, hc) or ""), timeout=5)
    sbx.listener(alb["name"], "up")
    wait_for(lambda: (_status(r53, hc) or "").startswith("Success"), timeout=5)


def test_health_check_string_match_and_tcp(sbx):
    """HTTP_STR_MATCH looks for the search string; TCP only connects (moto: never probes)."""
    r53 = sbx.client("route53")
    alb = sbx.make_alb()
    good = _hc(r53, Type="HTTP_STR_MATCH", FullyQualifiedDomainName=alb["dns"], ResourcePath="/", SearchString="region=us-east-1")
    bad = _hc(r53, Type="HTTP_STR_MATCH", FullyQualifiedDomainName=alb["dns"], ResourcePath="/", SearchString="region=eu-west-9")
    tcp = r53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig={
        "Type": "TCP", "FullyQualifiedDomainName": alb["dns"], "Port": 80, "RequestInterval": 10})["HealthCheck"]["Id"]
    wait_for(lambda: (_status(r53, good) or "").startswith("Success"))
    wait_for(lambda: "Search string not found" in (_status(r53, bad) or ""))
    wait_for(lambda: (_status(r53, tcp) or "").startswith("Success: TCP"))


def test_unreachable_targets_are_never_contacted(sbx):
    """A non-loopback IP or an unknown name fails without sending traffic off the machine
    (moto reports Success for anything)."""
    r53 = sbx.client("route53")
    ip = _hc(r53, IPAddress="10.1.2.3")
    name = _hc(r53, FullyQualifiedDomainName="nowhere.invalid")
    wait_for(lambda: "timed out" in (_status(r53, ip) or ""))
    wait_for(lambda: "DNS resolution failed" in (_status(r53, name) or ""))


def test_failover_answer_follows_health(sbx):
    """TestDNSAnswer answers PRIMARY while its check is healthy and SECONDARY once it has
    failed FailureThreshold times; the answer is the alias target's DNS name (moto: 404)."""
    r53 = sbx.client("route53")
    primary, secondary = sbx.make_alb("us-east-1"), sbx.make_alb("us-west-2")
    hc = _hc(r53, FullyQualifiedDomainName=primary["dns"])
    zone = _failover_zone(sbx, primary, secondary, hc)
    ans = _answer(r53, zone)
    assert ans["RecordData"] == [primary["dns"]] and ans["ResponseCode"] == "NOERROR"
    sbx.listener(primary["name"], "blackhole")
    wait_for(lambda: _answer(r53, zone)["RecordData"] == [secondary["dns"]], timeout=6, what="failover")
    sbx.listener(primary["name"], "up")
    wait_for(lambda: _answer(r53, zone)["RecordData"] == [primary["dns"]], timeout=6, what="failback")


def test_both_unhealthy_answers_primary_and_unknown_is_nxdomain(sbx):
    """When every record is unhealthy Route 53 answers the primary; unknown names are
    NXDOMAIN (moto: 404)."""
    r53 = sbx.client("route53")
    primary, secondary = sbx.make_alb("us-east-1"), sbx.make_alb("us-west-2", instances=0)
    hc = _hc(r53, FullyQualifiedDomainName=primary["dns"])
    zone = _failover_zone(sbx, primary, secondary, hc)
    sbx.listener(primary["name"], "down")
    wait_for(lambda: "refused" in (_status(r53, hc) or ""))
    time.sleep(INTERVAL * 4)
    assert _answer(r53, zone)["RecordData"] == [primary["dns"]]
    assert _answer(r53, zone, "nope.example.test")["ResponseCode"] == "NXDOMAIN"


def test_inverted_and_disabled(sbx):
    """Inverted flips the verdict; Disabled is always healthy (moto ignores both)."""
    r53 = sbx.client("route53")
    primary, secondary = sbx.make_alb("us-east-1"), sbx.make_alb("us-west-2")
    hc = _hc(r53, FullyQualifiedDomainName=primary["dns"])
    zone = _failover_zone(sbx, primary, secondary, hc)
    wait_for(lambda: (_status(r53, hc) or "").startswith("Success"))
    r53.update_health_check(HealthCheckId=hc, Inverted=True)
    assert _answer(r53, zone)["RecordData"] == [secondary["dns"]]
    assert _status(r53, hc).startswith("Failure (inverted)")
    r53.update_health_check(HealthCheckId=hc, Inverted=False, Disabled=True)
    sbx.listener(primary["name"], "down")
    time.sleep(INTERVAL * 4)
    assert _answer(r53, zone)["RecordData"] == [primary["dns"]]
    assert _status(r53, hc).startswith("Success")


def test_change_pending_then_insync(sbx):
    """get_change is PENDING, then INSYNC; each change has its own id; unknown ids are
    NoSuchChange (moto: always INSYNC, any id)."""
    r53 = sbx.client("route53")
    zone = r53.create_hosted_zone(Name="z.test.", CallerReference=str(uuid.uuid4()))["HostedZone"]["Id"]

    def change(value):
        return r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": "a.z.test.", "Type": "CNAME", "TTL": 60,
                                                      "ResourceRecords": [{"Value": value}]}}]})["ChangeInfo"]

    first, second = change("x.test"), change("y.test")
    assert first["Id"] != second["Id"] and first["Status"] == "PENDING"
    assert r53.get_change(Id=first["Id"])["ChangeInfo"]["Status"] == "PENDING"
    wait_for(lambda: r53.get_change(Id=first["Id"])["ChangeInfo"]["Status"] == "INSYNC", timeout=5)
    r53.get_waiter("resource_record_sets_changed").wait(Id=second["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    with pytest.raises(ClientError) as e:
        r53.get_change(Id="C0000000000000")
    assert e.value.response["Error"]["Code"] == "NoSuchChange"


def test_health_check_in_use_and_version(sbx):
    """A check used by a record cannot be deleted; a stale HealthCheckVersion is rejected
    (moto allows both)."""
    r53 = sbx.client("route53")
    primary, secondary = sbx.make_alb("us-east-1"), sbx.make_alb("us-west-2")
    hc = _hc(r53, FullyQualifiedDomainName=primary["dns"])
    _failover_zone(sbx, primary, secondary, hc)
    with pytest.raises(ClientError) as e:
        r53.delete_health_check(HealthCheckId=hc)
    assert e.value.response["Error"]["Code"] == "HealthCheckInUse"
    r53.update_health_check(HealthCheckId=hc, HealthCheckVersion=1, FailureThreshold=2)
    with pytest.raises(ClientError) as e:
        r53.update_health_check(HealthCheckId=hc, HealthCheckVersion=1, FailureThreshold=4)
    assert e.value.response["Error"]["Code"] == "HealthCheckVersionMismatch"

"""Route 53: real health checks, TestDNSAnswer by health, change propagation, validation.

Plain moto never probes (get_health_check_status always reports one fake Success), answers
TestDNSAnswer with 404, reports every change INSYNC at once and accepts any RequestInterval;
each test below names the moto behaviour it would trip over.
"""

import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import http_get, wait_for

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


def _healthy(sbx, hc_id) -> bool:
    return next(h["healthy"] for h in sbx.control("GET", "/_sandbox/state")[1]["route53"]["health_checks"]
                if h["id"] == hc_id)


def test_health_check_really_probes_target(sbx):
    """A check on an ALB's DNS name follows its listener: Success while up, Failure within
    interval x threshold once it is down, Success again after (moto: always Success). The
    clock is paused: the interval x threshold bound is on the sandbox's clock, stepped one
    interval at a time, so a slow machine cannot stretch it."""
    r53 = sbx.client("route53")
    alb = sbx.make_alb()
    hc = _hc(r53, FullyQualifiedDomainName=alb["dns"])
    wait_for(lambda: (_status(r53, hc) or "").startswith("Success: HTTP Status Code 200"), what="first success")
    with sbx.paused():
        sbx.listener(alb["name"], "error")
        reports, unhealthy_after = [], None
        for i in range(1, 4):  # FailureThreshold 3
            sbx.step(INTERVAL)
            reports.append(_status(r53, hc))
            if unhealthy_after is None and not _healthy(sbx, hc):
                unhealthy_after = i
        # The first probe after the change saw it; the check turned unhealthy at the threshold.
        assert reports[0].startswith("Failure: HTTP Status Code 500") and len(set(reports)) == 1, reports
        assert unhealthy_after == 3
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
    with sbx.paused():
        sbx.listener(primary["name"], "down")
        sbx.step(INTERVAL * 4)  # four probes: past the threshold
        assert "refused" in _status(r53, hc) and not _healthy(sbx, hc)
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
    with sbx.paused():
        r53.update_health_check(HealthCheckId=hc, Inverted=False, Disabled=True)
        sbx.listener(primary["name"], "down")
        sbx.step(INTERVAL * 4)  # four probes of a refusing target: past the threshold
        assert _answer(r53, zone)["RecordData"] == [primary["dns"]]
        assert _status(r53, hc).startswith("Success")
        assert _healthy(sbx, hc)


def test_change_pending_then_insync(sbx):
    """get_change is PENDING, then INSYNC; each change has its own id; unknown ids are
    NoSuchChange (moto: always INSYNC, any id)."""
    r53 = sbx.client("route53")
    zone = r53.create_hosted_zone(Name="z.test.", CallerReference=str(uuid.uuid4()))["HostedZone"]["Id"]

    def change(value):
        return r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": "a.z.test.", "Type": "CNAME", "TTL": 60,
                                                      "ResourceRecords": [{"Value": value}]}}]})["ChangeInfo"]

    with sbx.paused():  # PENDING for 0.1 s of the sandbox's clock, not of this machine's
        first, second = change("x.test"), change("y.test")
        assert first["Id"] != second["Id"] and first["Status"] == "PENDING"
        assert r53.get_change(Id=first["Id"])["ChangeInfo"]["Status"] == "PENDING"
        assert sbx.steps_until(lambda: r53.get_change(Id=first["Id"])["ChangeInfo"]["Status"],
                               lambda s: s == "INSYNC") == ["PENDING", "INSYNC"]
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


# --------------------------------------------------------------------------- swapped failover roles

def _failover_pair(r53, zone, name="api.example.test."):
    rrsets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return {r["Failover"]: r for r in rrsets if r["Name"] == name and r.get("Failover")}


def _swap_roles(r53, zone, hc_dns, hc):
    """drctl's failover hold in one batch: DELETE both records exactly as they are, CREATE them
    again with Failover exchanged; the new PRIMARY carries no health check, the record of the
    ALB the check watches (``hc_dns``) keeps it."""
    pair = _failover_pair(r53, zone)
    changes = [{"Action": "DELETE", "ResourceRecordSet": r} for r in pair.values()]
    for role, rec in pair.items():
        new = {k: v for k, v in rec.items() if k != "HealthCheckId"}
        new["Failover"] = "SECONDARY" if role == "PRIMARY" else "PRIMARY"
        if new["Failover"] == "SECONDARY" and rec["AliasTarget"]["DNSName"].rstrip(".") == hc_dns:
            new["HealthCheckId"] = hc
        changes.append({"Action": "CREATE", "ResourceRecordSet": new})
    return r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})["ChangeInfo"]


def test_swapped_roles_hold_after_the_old_primary_recovers(sbx):
    """The failover hold: with the standby's record PRIMARY (no health check) and the old
    primary's SECONDARY (keeping its check), TestDNSAnswer and the public edge answer the
    standby, and keep doing so after the old primary's check is healthy again (moto:
    TestDNSAnswer is a 404)."""
    r53 = sbx.client("route53")
    primary, standby = sbx.make_alb("us-east-1"), sbx.make_alb("us-west-2")
    hc = _hc(r53, FullyQualifiedDomainName=primary["dns"])
    zone = _failover_zone(sbx, primary, standby, hc)
    status, _ = sbx.control("POST", "/_sandbox/edges", {"public": {"zone_id": zone, "record_name": "api.example.test."}})
    assert status == 200
    public = sbx.control("GET", "/_sandbox/edges")[1]["public_url"]
    assert _answer(r53, zone)["RecordData"] == [primary["dns"]]
    sbx.listener(primary["name"], "down")
    wait_for(lambda: _answer(r53, zone)["RecordData"] == [standby["dns"]], timeout=6, what="failover by health")

    _swap_roles(r53, zone, primary["dns"], hc)
    pair = _failover_pair(r53, zone)
    assert pair["PRIMARY"]["SetIdentifier"] == "secondary" and "HealthCheckId" not in pair["PRIMARY"]
    assert pair["SECONDARY"]["SetIdentifier"] == "primary" and pair["SECONDARY"]["HealthCheckId"] == hc
    assert _answer(r53, zone)["RecordData"] == [standby["dns"]]

    sbx.listener(primary["name"], "up")
    wait_for(lambda: (_status(r53, hc) or "").startswith("Success"), timeout=6, what="old primary probed healthy")
    wait_for(lambda: all(h["healthy"] for h in sbx.control("GET", "/_sandbox/state")[1]["route53"]["health_checks"]),
             timeout=6, what="old primary's check healthy again")
    assert _answer(r53, zone)["RecordData"] == [standby["dns"]]
    st = sbx.control("GET", "/_sandbox/state")[1]["route53"]
    assert (st["answer"], st["failover"], st["set_identifier"], st["answer_region"]) == \
        (standby["dns"], "PRIMARY", "secondary", "us-west-2")
    assert "region=us-west-2" in http_get(public + "/")[1]


def test_change_batch_is_all_or_nothing(sbx):
    """A batch with one bad change fails with InvalidChangeBatch and changes nothing: a DELETE
    must name the record exactly as it is (moto: an alias DELETE with another HealthCheckId or a
    set identifier that does not exist passes, and a batch failing half-way keeps its first
    half)."""
    r53 = sbx.client("route53")
    primary = {"dns": "p-1.us-east-1.elb.amazonaws.com", "zone": "Z35SXDOTRQ7X7K"}
    standby = {"dns": "s-1.us-west-2.elb.amazonaws.com", "zone": "Z1H1FL5HABSF5"}
    hc = _hc(r53, IPAddress="127.0.0.1")
    zone = _failover_zone(sbx, primary, standby, hc)
    before = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    pair = _failover_pair(r53, zone)
    wrong_check = {**pair["SECONDARY"], "HealthCheckId": hc}
    missing = {**pair["SECONDARY"], "SetIdentifier": "nope"}
    elsewhere = {**pair["SECONDARY"], "Name": "api.other.test.", "SetIdentifier": "x"}
    second_primary = {**pair["SECONDARY"], "Failover": "PRIMARY", "SetIdentifier": "third"}
    for bad, words in ((wrong_check, "do not match"), (missing, "not found"), (elsewhere, "not permitted"),
                       (second_primary, "two PRIMARY")):
        changes = [{"Action": "DELETE", "ResourceRecordSet": pair["PRIMARY"]}]
        if bad is second_primary:
            changes += [{"Action": "CREATE", "ResourceRecordSet": pair["PRIMARY"]},
                        {"Action": "CREATE", "ResourceRecordSet": bad}]
        else:
            changes.append({"Action": "DELETE", "ResourceRecordSet": bad})
        with pytest.raises(ClientError) as e:
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
        assert e.value.response["Error"]["Code"] == "InvalidChangeBatch", bad
        assert words in e.value.response["Error"]["Message"]
        assert r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"] == before
    # Deleting the exact record works; creating one that exists does not.
    with pytest.raises(ClientError) as e:
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
            {"Action": "CREATE", "ResourceRecordSet": pair["SECONDARY"]}]})
    assert "already exists" in e.value.response["Error"]["Message"]
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "DELETE", "ResourceRecordSet": pair["SECONDARY"]}]})
    assert list(_failover_pair(r53, zone)) == ["PRIMARY"]


def test_swap_batch_is_never_seen_half_applied(sbx):
    """While role swaps are applied over and over, readers (TestDNSAnswer, the record list,
    /_sandbox/state and the public edge) always see exactly one PRIMARY and one SECONDARY and
    an answer. (moto applies a batch change by change, so between the DELETEs and the CREATEs
    a reader can find no record or one; the window is narrow, which is why
    test_change_batch_is_all_or_nothing is the deterministic check.)"""
    import threading

    r53 = sbx.client("route53")
    primary, standby = sbx.make_alb("us-east-1"), sbx.make_alb("us-west-2")
    hc = _hc(r53, FullyQualifiedDomainName=primary["dns"])
    zone = _failover_zone(sbx, primary, standby, hc)
    sbx.control("POST", "/_sandbox/edges", {"public": {"zone_id": zone, "record_name": "api.example.test."}})
    public = sbx.control("GET", "/_sandbox/edges")[1]["public_url"]
    stop, bad, samples = threading.Event(), [], []
    reader = sbx.client("route53", read_timeout=10)

    def sample():
        while not stop.is_set():
            ans = _answer(reader, zone)
            if ans["ResponseCode"] != "NOERROR" or ans["RecordData"] not in ([primary["dns"]], [standby["dns"]]):
                bad.append(("answer", ans["RecordData"]))
            roles = sorted(r.get("Failover") for r in reader.list_resource_record_sets(HostedZoneId=zone)[
                "ResourceRecordSets"] if r.get("Failover"))
            if roles != ["PRIMARY", "SECONDARY"]:
                bad.append(("records", roles))
            st = sbx.control("GET", "/_sandbox/state")[1]["route53"]
            if st["answer"] not in (primary["dns"], standby["dns"]):
                bad.append(("state", st["answer"]))
            status, body, _ = http_get(public + "/")
            if status != 200 or "region=" not in body:
                bad.append(("edge", status))
            samples.append(1)

    threads = [threading.Thread(target=sample) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(12):
            _swap_roles(r53, zone, primary["dns"], hc)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert samples and bad == []

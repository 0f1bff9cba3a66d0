"""A us-east-1 outage that takes the global control planes with it (``control_planes``, the
default for a us-east-1 outage without a service or a client; ``false`` spares them).

AWS Fault Isolation Boundaries whitepaper (Global services; Appendix A - Partitional service
guidance; Appendix B - Edge network global service guidance): Route 53's, CloudFront's and
IAM's control planes are hosted in us-east-1 and their CRUDL operations may fail with it, while
their data planes (DNS answers, health checks, CloudFront's edge) keep working.

Plain moto has no fault injection at all (no /_sandbox API; every request is answered at once),
so every test here fails on it; each docstring says what plain moto does.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from conftest import http_get, run_cli

HARSH = {"region": "us-east-1", "kind": "outage", "control_planes": True}
# What a harsh outage does to the calls of _calls.
HARSH_CALLS = {
    "route53 ListHostedZones": "hang", "route53 GetChange": "hang", "route53 TestDNSAnswer": "hang",
    "route53 CreateHostedZone": "hang", "route53 (us-west-2 client)": "hang",
    "cloudfront ListDistributions": "hang", "iam ListUsers": "hang",
    "sts us-east-1 (global endpoint)": "hang", "sts us-west-2": "ok",
    "ec2 us-west-2": "ok", "ec2 us-east-1": "hang",
}


def _calls(sbx, read_timeout: float = 1.5) -> dict:
    """Every API call the test cares about, each with its own client, run at once: name ->
    "ok", "hang" (read timeout: the outage holds it) or an error code."""
    def c(service, region="us-east-1"):
        return sbx.client(service, region, read_timeout=read_timeout)

    zone = {}
    calls = {
        "route53 ListHostedZones": lambda: c("route53").list_hosted_zones(),
        "route53 GetChange": lambda: c("route53").get_change(Id="/change/C0000000000000"),
        "route53 TestDNSAnswer": lambda: c("route53").test_dns_answer(
            HostedZoneId="Z0000000000000", RecordName="api.example.test", RecordType="A"),
        "route53 CreateHostedZone": lambda: zone.setdefault("z", c("route53").create_hosted_zone(
            Name="cp.example.test.", CallerReference=str(uuid.uuid4()))),
        # A route53 client made for us-west-2 signs with us-west-2 when given an endpoint_url;
        # against AWS it would still reach route53.amazonaws.com in us-east-1.
        "route53 (us-west-2 client)": lambda: c("route53", "us-west-2").list_hosted_zones(),
        "cloudfront ListDistributions": lambda: c("cloudfront").list_distributions(),
        "iam ListUsers": lambda: c("iam").list_users(),
        "sts us-east-1 (global endpoint)": lambda: c("sts").get_caller_identity(),
        "sts us-west-2": lambda: c("sts", "us-west-2").get_caller_identity(),
        "ec2 us-west-2": lambda: c("ec2", "us-west-2").describe_vpcs(),
        "ec2 us-east-1": lambda: c("ec2").describe_vpcs(),
    }
    out: dict = {}

    def run(name, fn):
        try:
            fn()
            out[name] = "ok"
        except ReadTimeoutError:
            out[name] = "hang"
        except ClientError as e:
            out[name] = e.response["Error"]["Code"]

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_control_planes_outage_takes_down_the_global_apis(sbx):
    """With control_planes, a us-east-1 outage also hangs every Route 53 operation (GetChange
    and TestDNSAnswer too), CloudFront, IAM and STS signed for us-east-1; regional STS and
    us-west-2 keep answering. Plain moto answers every one of them at once."""
    sbx.fault(**HARSH)
    got = _calls(sbx)
    assert got == HARSH_CALLS, got
    # Cleared: the control planes answer again.
    assert sbx.control("DELETE", "/_sandbox/faults")[0] == 200
    sbx.client("route53").list_hosted_zones()
    sbx.client("cloudfront").list_distributions()


def _change_records(sbx, zone_id: str, read_timeout: float = 1.5) -> str:
    """UPSERT one A record through the Route 53 API: "ok", "hang" or an error code."""
    try:
        sbx.client("route53", read_timeout=read_timeout).change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": "swap.cp-default.example.test.", "Type": "A", "TTL": 60,
                "ResourceRecords": [{"Value": "192.0.2.10"}]}}]})
        return "ok"
    except ReadTimeoutError:
        return "hang"
    except ClientError as e:
        return e.response["Error"]["Code"]


def test_a_plain_us_east_1_outage_takes_the_control_planes_by_default(sbx):
    """``{"region": "us-east-1", "kind": "outage"}`` with no service and no client is the harsh
    outage AWS documents (Fault Isolation Boundaries whitepaper, Global services): the Route 53
    API (ListHostedZones, ChangeResourceRecordSets, every operation), CloudFront and IAM hang
    with the region, and the fault lists ``control_planes: true``. Before this default the same
    body left those APIs answering. (Plain moto: nothing hangs.)"""
    zone_id = sbx.client("route53").create_hosted_zone(
        Name="cp-default.example.test.", CallerReference=str(uuid.uuid4()))["HostedZone"]["Id"]
    fid = sbx.fault(region="us-east-1", kind="outage")
    assert _change_records(sbx, zone_id) == "hang"
    got = _calls(sbx)
    assert got == HARSH_CALLS, got
    assert sbx.control("GET", "/_sandbox/faults")[1]["faults"] == [
        {"id": fid, "region": "us-east-1", "service": None, "kind": "outage", "control_planes": True}]
    # Cleared: the change goes through.
    assert sbx.control("DELETE", "/_sandbox/faults")[0] == 200
    assert _change_records(sbx, zone_id, read_timeout=30) == "ok"


def test_control_planes_false_spares_the_global_apis(sbx):
    """``"control_planes": false`` (the kinder outage, the old default) hangs the region's own
    services (STS signed for us-east-1 among them) but not Route 53, CloudFront or IAM: a
    record change through the Route 53 API goes through. (Plain moto: nothing hangs.)"""
    zone_id = sbx.client("route53").create_hosted_zone(
        Name="cp-default.example.test.", CallerReference=str(uuid.uuid4()))["HostedZone"]["Id"]
    fid = sbx.fault(region="us-east-1", kind="outage", control_planes=False)
    assert sbx.control("GET", "/_sandbox/faults")[1]["faults"] == [
        {"id": fid, "region": "us-east-1", "service": None, "kind": "outage", "control_planes": False}]
    assert _change_records(sbx, zone_id, read_timeout=30) == "ok"
    got = _calls(sbx)
    assert got["ec2 us-east-1"] == "hang" and got["sts us-east-1 (global endpoint)"] == "hang"
    assert got["sts us-west-2"] == "ok" and got["ec2 us-west-2"] == "ok"
    for name in ("route53 ListHostedZones", "route53 CreateHostedZone", "route53 (us-west-2 client)",
                 "cloudfront ListDistributions", "iam ListUsers"):
        assert got[name] == "ok", (name, got)
    assert got["route53 GetChange"] == "NoSuchChange" and got["route53 TestDNSAnswer"] == "NoSuchHostedZone"


@pytest.mark.parametrize("spec", [
    {"region": "us-east-1", "kind": "errors", "rate": 1.0, "error": "5xx"},
    {"region": "us-east-1", "kind": "latency", "ms": 5},
    {"region": "us-west-2", "kind": "outage"},
    {"region": "us-east-1", "service": "ec2", "kind": "outage"},
    {"region": "us-east-1", "kind": "outage", "client": "watch-b"},
])
def test_other_faults_default_to_sparing_the_control_planes(sbx, spec):
    """Only a us-east-1 outage of every service and every client takes the control planes by
    default: errors, latency, another region, a named service or a client default to
    ``control_planes: false`` (and a client-scoped us-east-1 outage may still ask for them).
    (Plain moto: no fault API.)"""
    fid = sbx.fault(**spec)
    listed = sbx.control("GET", "/_sandbox/faults")[1]["faults"]
    assert [(f["id"], f["control_planes"]) for f in listed] == [(fid, False)], listed
    if spec.get("client"):
        fid2 = sbx.fault(**spec, control_planes=True)
        listed = sbx.control("GET", "/_sandbox/faults")[1]["faults"]
        assert [(f["id"], f["control_planes"]) for f in listed] == [(fid, False), (fid2, True)], listed


def test_a_named_global_service_fault_catches_clients_made_for_other_regions(sbx):
    """A route53 fault (always us-east-1) also hits a route53 client configured for us-west-2:
    the sandbox takes a global service's region from where its control plane is, not from the
    scope such a client signs with when given an endpoint_url. (Plain moto: no faults.)"""
    sbx.fault(region="us-east-1", service="route53", kind="errors", error="throttle")
    with pytest.raises(ClientError) as e:
        sbx.client("route53", "us-west-2").list_hosted_zones()
    assert e.value.response["Error"]["Code"] == "Throttling"
    calls = sbx.control("GET", "/_sandbox/calls")[1]["calls"]
    assert [(c["service"], c["region"], c["faulted"]) for c in calls] == [("route53", "us-east-1", True)]


@pytest.mark.parametrize("body,needle", [
    ({**HARSH, "service": "route53"}, "without a service"),
    ({**HARSH, "region": "us-west-2"}, "only applies to us-east-1"),
    ({**HARSH, "control_planes": "yes"}, "true or false"),
    ({"region": "us-east-1", "kind": "outage", "control_planes": None}, "true or false"),
])
def test_control_planes_needs_us_east_1_and_no_service(sbx, body, needle):
    """control_planes widens a us-east-1 fault without a service; anything else is 400 and
    changes nothing (moto: 404, no such API)."""
    status, resp = sbx.control("POST", "/_sandbox/faults", body)
    assert status == 400 and needle in resp["error"], resp
    assert sbx.control("GET", "/_sandbox/faults")[1] == {"faults": []}


def test_fault_api_lists_control_planes(sbx):
    """GET /_sandbox/faults and /_sandbox/state show the flag, true or false, on every fault
    (moto: 404)."""
    fid = sbx.fault(**HARSH)
    plain = sbx.fault(region="us-west-2", kind="outage")
    faults = sbx.control("GET", "/_sandbox/faults")[1]["faults"]
    assert faults == [{"id": fid, "region": "us-east-1", "service": None, "kind": "outage", "control_planes": True},
                      {"id": plain, "region": "us-west-2", "service": None, "kind": "outage",
                       "control_planes": False}]
    state = sbx.control("GET", "/_sandbox/state")[1]
    assert state["faults"] == faults and state["regions"]["us-east-1"]["dark"] is True


def test_data_plane_keeps_working_while_the_control_planes_are_down(seeded):
    """The Route 53 data plane and CloudFront's edge work through a control-plane outage: the
    health checker keeps probing and turns the primary unhealthy, Route 53's answer (public
    edge, /_sandbox/state) moves to the standby, the CDN edge fails over to the standby origin
    with its last deployed configuration - while the Route 53 and CloudFront APIs hang.
    (Plain moto: no health checks, no answers, no edges, no faults.)"""
    sbx, topo, _ = seeded
    hc = topo["route53"]["health_check_id"]

    def healthy():
        return next(h["healthy"] for h in sbx.control("GET", "/_sandbox/state")[1]["route53"]["health_checks"]
                    if h["id"] == hc)

    with sbx.paused():
        assert healthy() is True
        sbx.fault(**HARSH)
        # Threshold 3 at a 10 s interval (0.5 s here): three probes of the dark primary.
        for _ in range(3):
            sbx.step(0.5)
        assert healthy() is False, "the health checker stopped probing during a control-plane outage"
        st = sbx.control("GET", "/_sandbox/state")[1]
        assert st["route53"]["answer_region"] == "us-west-2" and st["reachable_regions"] == ["us-west-2"]
        status, body, headers = http_get(topo["route53"]["public_url"] + "/", timeout=10)
        assert status == 200 and headers["x-drsandbox-region"] == "us-west-2", (status, body)
        status, body, headers = http_get(topo["cloudfront"]["url"] + "/", timeout=10)
        assert status == 200 and headers["x-drsandbox-origin"] == topo["cloudfront"]["origins"]["us-west-2"], body
    got = _calls(sbx, read_timeout=1)
    assert got["route53 TestDNSAnswer"] == "hang" and got["cloudfront ListDistributions"] == "hang"


def test_cli_fault_set_control_planes(sbx):
    """`fault set outage --region us-east-1 --control-planes` adds the harsh outage, `fault
    list` shows it; with another region it is exit 2 and nothing changes (moto: no such API)."""
    env_ep = ["--endpoint", sbx.url]
    r = run_cli("fault", "set", "outage", "--region", "us-east-1", "--control-planes", *env_ep)
    assert r.returncode == 0, r.stderr
    fid = r.stdout.strip()
    r = run_cli("fault", "list", *env_ep)
    assert r.returncode == 0 and f"{fid}  us-east-1  *  outage +control-planes" in r.stdout, r.stdout
    r = run_cli("fault", "set", "outage", "--region", "us-west-2", "--control-planes", *env_ep)
    assert r.returncode == 2 and "only applies to us-east-1" in r.stderr
    assert [f["id"] for f in sbx.control("GET", "/_sandbox/faults")[1]["faults"]] == [fid]


def test_cli_fault_set_outage_is_harsh_unless_spared(sbx):
    """`fault set outage --region us-east-1` is the harsh outage (control_planes true);
    `--spare-control-planes` sends control_planes false; the two flags together are exit 2;
    `fault list` marks which is which (moto: no such API)."""
    env_ep = ["--endpoint", sbx.url]
    r = run_cli("fault", "set", "outage", "--region", "us-east-1", *env_ep)
    assert r.returncode == 0, r.stderr
    harsh = r.stdout.strip()
    r = run_cli("fault", "set", "outage", "--region", "us-east-1", "--spare-control-planes", *env_ep)
    assert r.returncode == 0, r.stderr
    spared = r.stdout.strip()
    r = run_cli("fault", "set", "outage", "--region", "us-east-1", "--control-planes", "--spare-control-planes",
                *env_ep)
    assert r.returncode == 2 and "not allowed with" in r.stderr, r.stderr
    faults = sbx.control("GET", "/_sandbox/faults")[1]["faults"]
    assert [(f["id"], f["control_planes"]) for f in faults] == [(harsh, True), (spared, False)]
    r = run_cli("fault", "list", *env_ep)
    assert f"{harsh}  us-east-1  *  outage +control-planes" in r.stdout, r.stdout
    assert f"{spared}  us-east-1  *  outage -control-planes" in r.stdout, r.stdout

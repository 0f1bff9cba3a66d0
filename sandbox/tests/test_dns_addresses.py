"""DNS answers as AWS gives them: every ALB has IP addresses, and an alias A record answers them.

On AWS an ALB's DNS name resolves to its nodes' IP addresses, which change over time (AWS
Knowledge Center, elb-find-load-balancer-ip), and TestDNSAnswer "returns information similar
to what you would expect from the answer section of the dig command" (Route 53 API Reference):
for an alias A record to an ALB, the ALB's addresses. The sandbox gives every ALB a set of
RFC 5737 documentation addresses and, with ``dns_answers: addresses`` (``serve --dns-answers
addresses``), answers them from TestDNSAnswer and routes the public edge by them.

Plain moto: an ALB has no addresses (its DNS name resolves nowhere), TestDNSAnswer is 404, and
there is no /_sandbox API, no edge and no DNS server; each docstring says what fails there.
"""

from __future__ import annotations

import ipaddress
import uuid

import pytest

from conftest import TIME_SCALE, Proc, Sandbox, control, http_get, restore, run_cli, wait_for

DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]


def _doc(addr: str) -> bool:
    return any(ipaddress.ip_address(addr) in n for n in DOC_NETS)


def _alb_state(sbx, name: str) -> dict:
    for region in sbx.control("GET", "/_sandbox/state")[1]["regions"].values():
        for alb in region.get("albs", []):
            if alb["name"] == name:
                return alb
    raise AssertionError(f"{name} not in /_sandbox/state")


def _set_addresses(sbx, name, addresses):
    return sbx.control("POST", "/_sandbox/listeners", {"name": name, "addresses": addresses})


def _failover(sbx, primary, secondary, zone_name="addr.example.test."):
    """A public zone with api.<zone> failover alias A records (primary checked by an HTTP
    health check on its ALB) and a CNAME www -> the secondary ALB; the public edge serves api."""
    r53 = sbx.client("route53")
    zone = r53.create_hosted_zone(Name=zone_name, CallerReference=str(uuid.uuid4()))["HostedZone"]["Id"].split("/")[-1]
    hc = r53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig={
        "Type": "HTTP", "FullyQualifiedDomainName": primary["dns"], "Port": 80, "ResourcePath": "/health",
        "RequestInterval": 10, "FailureThreshold": 1})["HealthCheck"]["Id"]
    name = "api." + zone_name

    def alias(set_id, role, alb, check=None):
        rs = {"Name": name, "Type": "A", "SetIdentifier": set_id, "Failover": role,
              "AliasTarget": {"HostedZoneId": alb["zone"], "DNSName": alb["dns"], "EvaluateTargetHealth": True}}
        if check:
            rs["HealthCheckId"] = check
        return {"Action": "CREATE", "ResourceRecordSet": rs}

    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        alias("primary", "PRIMARY", primary, hc), alias("secondary", "SECONDARY", secondary),
        {"Action": "CREATE", "ResourceRecordSet": {"Name": "www." + zone_name, "Type": "CNAME", "TTL": 300,
                                                    "ResourceRecords": [{"Value": secondary["dns"]}]}}]})
    status, body = sbx.control("POST", "/_sandbox/edges", {"public": {"zone_id": zone, "record_name": name}})
    assert status == 200, body
    return zone, name.rstrip("."), hc


def _answer(sbx, zone, name, rtype="A"):
    return sbx.client("route53").test_dns_answer(HostedZoneId=zone, RecordName=name, RecordType=rtype)


# --------------------------------------------------------------------------- every ALB has addresses

def test_every_alb_has_stable_distinct_documentation_addresses(sbx):
    """An ALB gets one address per subnet from the RFC 5737 ranges, distinct from every other
    ALB's, listed by /_sandbox/listeners and /_sandbox/state; re-created under the same name it
    gets the same ones. (Plain moto: an ALB has a DNS name that resolves nowhere.)"""
    a = sbx.make_alb(name="addr-a", instances=0)
    b = sbx.make_alb(name="addr-b", instances=0)
    la, lb = sbx.listeners()["addr-a"], sbx.listeners()["addr-b"]
    assert len(la["addresses"]) == 2 and len(lb["addresses"]) == 2  # make_alb: two subnets
    assert all(_doc(x) for x in la["addresses"] + lb["addresses"])
    assert not set(la["addresses"]) & set(lb["addresses"])
    assert _alb_state(sbx, "addr-a") == {"name": "addr-a", "dns_name": a["dns"], "addresses": la["addresses"]}
    elb = sbx.client("elbv2")
    elb.delete_load_balancer(LoadBalancerArn=a["arn"])
    wait_for(lambda: "addr-a" not in sbx.listeners(), what="the listener to go")
    lb2 = elb.create_load_balancer(Name="addr-a", Subnets=a["subnets"], Type="application")["LoadBalancers"][0]
    assert sbx.listeners()["addr-a"]["addresses"] == la["addresses"] and lb2["DNSName"]
    assert b["dns"]


def test_dns_endpoint_resolves_alb_names(sbx):
    """GET /_sandbox/dns answers an ALB's DNS name (also with dualstack.) with its addresses;
    AAAA is empty (IPv4 ALBs); unknown names are NXDOMAIN; bad queries 400. (Plain moto: 404.)"""
    a = sbx.make_alb(name="addr-dns", instances=0)
    addresses = sbx.listeners()["addr-dns"]["addresses"]
    for name in (a["dns"], "dualstack." + a["dns"], a["dns"].upper() + "."):
        status, body = sbx.control("GET", f"/_sandbox/dns?name={name}")
        assert status == 200 and body["rcode"] == "NOERROR" and body["addresses"] == addresses, body
        assert body["alb"] == a["dns"] and [r["data"] for r in body["records"]] == addresses
        assert {(r["type"], r["ttl"]) for r in body["records"]} == {("A", 60)}
    assert sbx.control("GET", f"/_sandbox/dns?name={a['dns']}&type=AAAA")[1]["addresses"] == []
    assert sbx.control("GET", "/_sandbox/dns?name=nothing.example.test")[1]["rcode"] == "NXDOMAIN"
    assert sbx.control("GET", "/_sandbox/dns")[0] == 400
    assert sbx.control("GET", f"/_sandbox/dns?name={a['dns']}&type=MX")[0] == 400


def test_alb_addresses_can_change(sbx):
    """POST /_sandbox/listeners {"addresses": [...]} or "rotate" changes an ALB's addresses, as
    AWS replaces its nodes; another ALB's address or a non-address is 400 and changes nothing.
    (Plain moto: no addresses at all.)"""
    a = sbx.make_alb(name="addr-chg", instances=0)
    sbx.make_alb(name="addr-other", instances=0)
    other = sbx.listeners()["addr-other"]["addresses"]
    status, body = _set_addresses(sbx, "addr-chg", ["203.0.113.200"])
    assert status == 200 and body["listener"]["addresses"] == ["203.0.113.200"]
    assert sbx.control("GET", f"/_sandbox/dns?name={a['dns']}")[1]["addresses"] == ["203.0.113.200"]
    status, body = _set_addresses(sbx, "addr-chg", "rotate")
    assert status == 200 and len(body["listener"]["addresses"]) == 1
    rotated = body["listener"]["addresses"]
    assert rotated != ["203.0.113.200"] and _doc(rotated[0]) and rotated[0] not in other
    for bad in ([other[0]], ["300.1.1.1"], ["127.0.0.1"], [], "all", ["192.0.2.9", "192.0.2.9"]):
        status, body = _set_addresses(sbx, "addr-chg", bad)
        assert status == 400, (bad, body)
    assert _alb_state(sbx, "addr-chg")["addresses"] == rotated
    assert _set_addresses(sbx, "public", ["192.0.2.1"])[0] == 400  # an edge has no addresses


def test_names_mode_is_still_the_default(sbx):
    """Pin: without --dns-answers, TestDNSAnswer answers an alias A record with the ALB's DNS
    name (what drctl matches on until it resolves names); /_sandbox/dns still resolves it."""
    p, s = sbx.make_alb(name="addr-np"), sbx.make_alb(name="addr-ns")
    zone, name, _ = _failover(sbx, p, s)
    assert _answer(sbx, zone, name)["RecordData"] == [p["dns"]]
    st = sbx.control("GET", "/_sandbox/state")[1]["route53"]
    assert st["answer"] == p["dns"] and st["answer_alb"] == p["dns"] and st["answer_region"] == "us-east-1"
    assert sbx.control("GET", f"/_sandbox/dns?name={name}")[1]["addresses"] == sbx.listeners()["addr-np"]["addresses"]
    assert sbx.control("GET", "/_sandbox/healthz")[1]["dns"] == {"answers": "names", "udp_port": None}


def test_snapshot_keeps_alb_addresses(sbx):
    """A restore brings back the addresses each ALB had at the save. (Plain moto: no
    addresses, no snapshots.)"""
    sbx.make_alb(name="addr-snap", instances=0)
    assert _set_addresses(sbx, "addr-snap", ["198.51.100.77", "198.51.100.78"])[0] == 200
    assert sbx.control("POST", "/_sandbox/snapshot", {"name": "addr-snap"})[0] == 200
    _set_addresses(sbx, "addr-snap", "rotate")
    assert sbx.listeners()["addr-snap"]["addresses"] != ["198.51.100.77", "198.51.100.78"]
    restore(sbx.url, "addr-snap")
    assert sbx.listeners()["addr-snap"]["addresses"] == ["198.51.100.77", "198.51.100.78"]
    assert _alb_state(sbx, "addr-snap")["addresses"] == ["198.51.100.77", "198.51.100.78"]


# --------------------------------------------------------------------------- dns_answers: addresses

@pytest.fixture(scope="module")
def addr_proc():
    proc = Proc("--profile", "instant", "--time-scale", TIME_SCALE, "--dns-answers", "addresses", "--dns-port", "0")
    sbx = Sandbox(proc.url)  # build the backends the tests use before the snapshot
    sbx.client("ec2").describe_vpcs()
    sbx.client("elbv2").describe_load_balancers()
    sbx.client("route53").list_hosted_zones()
    status, body = control(proc.url, "POST", "/_sandbox/snapshot", {"name": "start"}, timeout=60)
    assert status == 200, body
    yield proc
    proc.stop()


@pytest.fixture
def asb(addr_proc) -> Sandbox:
    restore(addr_proc.url, "start")
    return Sandbox(addr_proc.url)


def test_test_dns_answer_gives_alb_addresses(asb):
    """With dns_answers: addresses, TestDNSAnswer answers an alias A record with the chosen
    ALB's addresses (NOERROR), an alias AAAA with nothing, and a CNAME with its name; the
    failover still follows health. (Plain moto: TestDNSAnswer is 404.)"""
    p, s = asb.make_alb(name="am-p"), asb.make_alb(name="am-s")
    zone, name, _ = _failover(asb, p, s)
    lst = asb.listeners()
    a = _answer(asb, zone, name)
    assert a["RecordData"] == lst["am-p"]["addresses"] and a["ResponseCode"] == "NOERROR"
    assert _answer(asb, zone, name, "AAAA")["RecordData"] == []
    assert _answer(asb, zone, "www.addr.example.test", "CNAME")["RecordData"] == [s["dns"]]
    st = asb.control("GET", "/_sandbox/state")[1]["route53"]
    assert st["answer_data"] == lst["am-p"]["addresses"] and st["answer"] == lst["am-p"]["addresses"][0]
    assert st["answer_alb"] == p["dns"] and st["answer_region"] == "us-east-1"
    assert asb.control("GET", "/_sandbox/healthz")[1]["dns"]["answers"] == "addresses"
    # The primary goes down: the answer is the secondary's addresses.
    asb.listener("am-p", "down")
    wait_for(lambda: _answer(asb, zone, name)["RecordData"] == lst["am-s"]["addresses"], timeout=20,
             what="the secondary's addresses")


def test_public_edge_routes_by_the_answered_address(asb):
    """The public edge connects to the first answered address, which leads to the ALB that
    has it: new addresses for the primary are followed at once. (Plain moto: no edge.)"""
    p, s = asb.make_alb(name="ae-p"), asb.make_alb(name="ae-s")
    zone, name, _ = _failover(asb, p, s)
    url = asb.control("GET", "/_sandbox/edges")[1]["public_url"]
    status, body, headers = http_get(url + "/")
    first = asb.listeners()["ae-p"]["addresses"][0]
    assert status == 200 and headers["x-drsandbox-alb"] == "ae-p", body
    assert headers["x-drsandbox-upstream-address"] == first and headers["x-drsandbox-upstream"] == p["dns"]
    assert _set_addresses(asb, "ae-p", ["192.0.2.250"])[0] == 200
    assert _answer(asb, zone, name)["RecordData"] == ["192.0.2.250"]
    status, body, headers = http_get(url + "/")
    assert headers["x-drsandbox-upstream-address"] == "192.0.2.250" and headers["x-drsandbox-alb"] == "ae-p"


def test_health_check_on_an_alb_address_probes_that_alb(asb):
    """A health check on one of an ALB's IP addresses probes that ALB's listener (Success
    while up, Failure when down); other IPs stay unreachable. (Plain moto: one fake Success.)"""
    asb.make_alb(name="ah")
    addr = asb.listeners()["ah"]["addresses"][1]
    r53 = asb.client("route53")
    hc = r53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig={
        "Type": "HTTP", "IPAddress": addr, "Port": 80, "ResourcePath": "/health", "RequestInterval": 10,
        "FailureThreshold": 1})["HealthCheck"]["Id"]

    def status():
        obs = r53.get_health_check_status(HealthCheckId=hc)["HealthCheckObservations"]
        return obs[0]["StatusReport"]["Status"] if obs else None

    wait_for(lambda: (status() or "").startswith("Success: HTTP Status Code 200"), timeout=20, what="Success")
    asb.listener("ah", "down")
    wait_for(lambda: "Connection refused" in (status() or ""), timeout=20, what="refused")


def test_udp_dns_server_answers_like_a_dns_server(asb):
    """serve --dns-port: a real DNS query over UDP gets the ALB's A records for an ALB name and
    for the alias record (TTL 60), a CNAME chain for a CNAME, NXDOMAIN for an unknown name.
    (Plain moto has no DNS server.)"""
    from dnslib import QTYPE, RCODE, DNSRecord

    p, s = asb.make_alb(name="au-p"), asb.make_alb(name="au-s")
    _failover(asb, p, s)
    port = asb.control("GET", "/_sandbox/healthz")[1]["dns"]["udp_port"]
    lst = asb.listeners()

    def ask(name, qtype="A"):
        return DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", port, timeout=5))

    r = ask("api.addr.example.test")
    assert r.header.rcode == RCODE.NOERROR
    assert [(QTYPE[x.rtype], str(x.rdata), x.ttl) for x in r.rr] == [("A", a, 60) for a in lst["au-p"]["addresses"]]
    r = ask(s["dns"])
    assert sorted(str(x.rdata) for x in r.rr) == sorted(lst["au-s"]["addresses"])
    r = ask("www.addr.example.test")
    assert [QTYPE[x.rtype] for x in r.rr] == ["CNAME", "A", "A"]
    assert str(r.rr[0].rdata).rstrip(".") == s["dns"]
    assert ask("nothing.addr.example.test").header.rcode == RCODE.NXDOMAIN


def test_bad_dns_answers_setting_is_exit_2(tmp_path):
    """A profile or flag naming another mode is refused before anything starts. (Plain moto:
    no such setting.)"""
    (tmp_path / "p.json").write_text('{"base": "instant", "dns_answers": "ips"}')
    r = run_cli("serve", "--port", "0", "--profile", str(tmp_path / "p.json"), timeout=30)
    assert r.returncode == 2 and "dns_answers" in r.stderr
    r = run_cli("serve", "--port", "0", "--dns-answers", "ips", timeout=30)
    assert r.returncode == 2

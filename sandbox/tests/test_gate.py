"""``seed --gate arc|alarm``: a failover that moves and holds on data planes only, as drctl sees it.

A sandbox serving UDP DNS (``serve --dns-port 0``) is seeded once per gate and saved; each test
restores it. The seed puts a CALCULATED health check over {the primary backend ALB's check, the
gate's check} (HealthThreshold 2) on the PRIMARY failover records of ``api.<domain>`` (the
public name, backend ALBs) and ``origin.<domain>`` (CloudFront's primary origin, frontend
ALBs), and writes ``route53.gate`` and ``route53.name_servers`` into drctl.yaml. drctl closes
the gate from outside us-east-1 on a data plane (ARC: UpdateRoutingControlState through a
cluster endpoint, tried in turn; alarm: PutMetricData 0 to CloudWatch in us-west-2) and reads
DNS by asking the name servers directly, never through Route 53's API (control plane,
us-east-1: "AWS Fault Isolation Boundaries", Appendix B).

Plain moto fails every test here: it has no ARC (HTML 500), never evaluates alarms or
CALCULATED / CLOUDWATCH_METRIC / RECOVERY_CONTROL health checks, answers no DNS (no
``/_sandbox/dns``, no UDP server, TestDNSAnswer 404), runs no ALBs or edges, cannot fault
a region or its control planes, and promotes a replica at once.
"""

from __future__ import annotations

import uuid

import pytest
import yaml
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from conftest import TIME_SCALE, Proc, Sandbox, control, http_get, restore, wait_for
from gates import INTERVAL, MINUTE, set_control

GATES = ["arc", "alarm"]
PRIMARY, STANDBY = "us-east-1", "us-west-2"


@pytest.fixture(scope="module")
def dns_proc():
    """A sandbox serving UDP DNS, as drctl's tests start it: instant profile, ``--dns-port 0``."""
    proc = Proc("--profile", "instant", "--time-scale", TIME_SCALE, "--dns-port", "0")
    status, body = control(proc.url, "POST", "/_sandbox/snapshot", {"name": "start"}, timeout=60)
    assert status == 200, body
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def seeds(dns_proc, tmp_path_factory):
    """``seeds(gate)``: the snapshot of the sandbox right after ``seed --gate GATE`` and the
    directory of its files (seeded on first use, once per module and worker)."""
    from drsandbox.seed import seed

    made: dict = {}

    def get(gate: str):
        if gate not in made:
            restore(dns_proc.url, "start")
            out = tmp_path_factory.mktemp(f"gate-{gate}")
            seed(dns_proc.url, str(out), gate=gate)
            status, body = control(dns_proc.url, "POST", "/_sandbox/snapshot", {"name": f"gate-{gate}"}, timeout=60)
            assert status == 200, body
            made[gate] = out
        restore(dns_proc.url, f"gate-{gate}")
        out = made[gate]
        topo = yaml.safe_load((out / "topology.json").read_text())
        cfg = yaml.safe_load((out / "drctl.yaml").read_text())
        return Sandbox(dns_proc.url), topo, cfg

    return get


# --------------------------------------------------------------------------- helpers

def _udp_port(sbx) -> int:
    return sbx.control("GET", "/_sandbox/healthz")[1]["dns"]["udp_port"]


def _udp(server: str, name: str) -> list[str]:
    """The A records a DNS query to ``server`` ("IP:PORT", as drctl.yaml names it) answers."""
    from dnslib import QTYPE, RCODE, DNSRecord

    host, port = server.rsplit(":", 1)
    reply = DNSRecord.parse(DNSRecord.question(name, "A").send(host, int(port), timeout=5))
    assert reply.header.rcode == RCODE.NOERROR, (name, RCODE[reply.header.rcode])
    return [str(r.rdata) for r in reply.rr if r.rtype == QTYPE.A]


def _answers(sbx, cfg, name: str) -> list[str]:
    """What the sandbox's DNS answers for ``name`` now, asked both ways (GET /_sandbox/dns and
    a UDP query to the name server drctl.yaml names), which must agree."""
    over_http = sbx.control("GET", f"/_sandbox/dns?name={name}&type=A")[1]["addresses"]
    over_udp = _udp(cfg["route53"]["name_servers"][0], name)
    assert over_http == over_udp, (name, over_http, over_udp)
    return over_udp


def _alb_addresses(sbx, topo, region: str, tier: str) -> list[str]:
    return sbx.listeners()[topo["regions"][region]["albs"][tier]["name"]]["addresses"]


def _healthy(sbx, hc_id: str) -> bool:
    return next(h["healthy"] for h in sbx.control("GET", "/_sandbox/health")[1]["health_checks"] if h["id"] == hc_id)


def _set_gate(sbx, cfg, open_: bool) -> list:
    """Open or close the gate the way drctl will, from drctl.yaml alone, on data planes only:
    ARC through the cluster endpoints in turn (1 s read timeout: a dark endpoint hangs), the
    alarm gate with one PutMetricData (1 open, 0 closed) to its region's CloudWatch."""
    gate = cfg["route53"]["gate"]
    if "routing_control" in gate:
        endpoints = [{"Endpoint": e["url"], "Region": e["region"]} for e in gate["routing_control"]["cluster_endpoints"]]
        return set_control(endpoints, gate["routing_control"]["arn"], "On" if open_ else "Off", read_timeout=1.0)
    a = gate["alarm"]
    sbx.client("cloudwatch", a["region"]).put_metric_data(Namespace=a["namespace"], MetricData=[{
        "MetricName": a["metric"], "Value": 1.0 if open_ else 0.0,
        "Dimensions": [{"Name": k, "Value": v} for k, v in a["dimensions"].items()]}])
    return [(a["region"], "ok")]


def _step_until(sbx, done, step: float = 0.1, limit: float = 30.0) -> float:
    """Step the paused clock ``step`` seconds at a time until ``done()``; the sandbox-clock
    seconds that took."""
    taken = 0.0
    while not done():
        assert taken < limit, f"not done after {limit} s of sandbox clock: {sbx.control('GET', '/_sandbox/health')[1]}"
        sbx.step(step)
        taken += step
    return round(taken, 3)


def _cdn(topo) -> tuple[int, dict, str]:
    status, body, headers = http_get(topo["cloudfront"]["url"] + "/", timeout=10)
    return status, headers, body


def _refused(call) -> bool:
    """A request to a dark control plane hangs (the SDK's 1 s read timeout gives up on it)."""
    try:
        call()
    except (ReadTimeoutError, ConnectionError):
        return True
    return False


# --------------------------------------------------------------------------- after seed

@pytest.mark.parametrize("gate", GATES)
def test_seeded_gate_answers_the_primary_and_names_the_name_servers(seeds, gate):
    """After ``seed --gate``: drctl.yaml's ``route53.gate`` names both health checks and the
    gate (ARC: routing control ARN and the five cluster endpoints; alarm: region, name,
    namespace, metric, dimensions), ``route53.name_servers`` the UDP server; the gate is open
    (the gate check and the calculated check healthy), so the public name and the CloudFront
    origin's name answer the primary ALBs' addresses over HTTP and UDP, and every ALB name in
    drctl.yaml answers its own addresses. (Plain moto: no ARC, no alarm or calculated
    evaluation, no DNS at all.)"""
    sbx, topo, cfg = seeds(gate)
    r53 = cfg["route53"]
    assert r53["name_servers"] == [f"127.0.0.1:{_udp_port(sbx)}"] == topo["route53"]["name_servers"]
    g = r53["gate"]
    if gate == "arc":
        assert set(g) == {"calculated_health_check_id", "gate_health_check_id", "routing_control"}
        assert set(g["routing_control"]) == {"arn", "cluster_endpoints"}
        assert [e["region"] for e in g["routing_control"]["cluster_endpoints"]] == [
            "us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"]
    else:
        assert set(g) == {"calculated_health_check_id", "gate_health_check_id", "alarm"}
        assert g["alarm"] == {"region": "us-west-2", "name": "sandbox-shop-primary-gate", "namespace": "drctl",
                              "metric": "PrimaryGate", "dimensions": {"Environment": "sandbox"}}
    assert topo["route53"]["gate"]["records"] == ["api.example.test.", "origin.example.test."]
    assert topo["cloudfront"]["gated_origin"] == {"id": "primary-frontend", "domain_name": "origin.example.test",
                                                  "record_name": "origin.example.test."}
    assert _healthy(sbx, g["gate_health_check_id"]) and _healthy(sbx, g["calculated_health_check_id"])
    checks = {h["id"]: h for h in sbx.control("GET", "/_sandbox/health")[1]["health_checks"]}
    assert checks[g["calculated_health_check_id"]]["children"] == [r53["health_check_id"], g["gate_health_check_id"]]
    assert checks[g["calculated_health_check_id"]]["health_threshold"] == 2

    assert _answers(sbx, cfg, "api.example.test") == _alb_addresses(sbx, topo, PRIMARY, "backend")
    assert _answers(sbx, cfg, "origin.example.test") == _alb_addresses(sbx, topo, PRIMARY, "frontend")
    for region in (PRIMARY, STANDBY):
        for tier in ("frontend", "backend"):
            assert _answers(sbx, cfg, cfg["regions"][region]["albs"][tier]["dns_name"]) == \
                _alb_addresses(sbx, topo, region, tier)
    # The distribution's primary origin is the gated name, resolved per request.
    status, headers, body = _cdn(topo)
    assert status == 200 and headers["x-drsandbox-origin"] == "primary-frontend", body
    assert headers["x-drsandbox-origin-domain"] == "origin.example.test"
    assert headers["x-drsandbox-region"] == PRIMARY and headers["x-drsandbox-alb"] == "shop-frontend-use1"
    assert sbx.control("GET", "/_sandbox/state")[1]["cloudfront"]["first_origin_region"] == PRIMARY


# --------------------------------------------------------------------------- the gate alone

@pytest.mark.parametrize("gate", GATES)
def test_the_gate_alone_moves_dns_and_cloudfront_with_every_alb_healthy(seeds, gate):
    """With only the Route 53 and CloudFront APIs dark (every ALB healthy), closing the gate on
    its data plane moves the public name and CloudFront's gated origin to the standby ALBs:
    ARC at the health checker's next round (at most one ``health_check_interval``), the alarm
    gate once the alarm has evaluated the 0 and a round has read it (at most one
    ``cloudwatch_minute`` plus one interval); opening it moves them back. The ALB's own check
    stays healthy throughout, so the gate did it. (Plain moto: no gate is evaluated, no DNS
    or edges; TestDNSAnswer is 404.)"""
    sbx, topo, cfg = seeds(gate)
    g = cfg["route53"]["gate"]
    sbx.fault(region="us-east-1", service="route53", kind="outage")
    sbx.fault(region="us-east-1", service="cloudfront", kind="outage")
    bound = INTERVAL + (MINUTE if gate == "alarm" else 0)
    standby_be = _alb_addresses(sbx, topo, STANDBY, "backend")
    with sbx.paused():
        _set_gate(sbx, cfg, open_=False)
        took = _step_until(sbx, lambda: _answers(sbx, cfg, "api.example.test") == standby_be)
        assert took <= bound + 0.1, took
        assert _healthy(sbx, cfg["route53"]["health_check_id"]) and not _healthy(sbx, g["gate_health_check_id"])
        assert _answers(sbx, cfg, "origin.example.test") == _alb_addresses(sbx, topo, STANDBY, "frontend")
        status, headers, body = _cdn(topo)
        # The first origin (the gated name) now leads to the standby: no failover was needed.
        assert status == 200 and headers["x-drsandbox-origin"] == "primary-frontend", body
        assert headers["x-drsandbox-alb"] == "shop-frontend-usw2"
        assert headers["x-drsandbox-origin-address"] in _alb_addresses(sbx, topo, STANDBY, "frontend")
        assert sbx.control("GET", "/_sandbox/state")[1]["cloudfront"]["first_origin_region"] == STANDBY

        sbx.step(2 * MINUTE)  # a later minute: the alarm's latest datapoint is the 1 written next
        _set_gate(sbx, cfg, open_=True)
        _step_until(sbx, lambda: _answers(sbx, cfg, "api.example.test") == _alb_addresses(sbx, topo, PRIMARY,
                                                                                           "backend"))
        assert _cdn(topo)[1]["x-drsandbox-alb"] == "shop-frontend-use1"


# --------------------------------------------------------------------------- the harsh outage

@pytest.mark.parametrize("gate", GATES)
def test_closing_the_gate_in_a_us_east_1_outage_fails_over_and_holds(seeds, gate):
    """``fault set outage --region us-east-1 --control-planes``: the Route 53 control plane
    hangs (ChangeResourceRecordSets, GetHealthCheckStatus, TestDNSAnswer), and so does the
    us-east-1 cluster endpoint; closing the gate through the next endpoint (ARC) or with one
    PutMetricData to us-west-2 (alarm) makes the public name and CloudFront's origin answer the
    standby ALBs' addresses (over HTTP and UDP) after stepping the clock. When the outage clears
    and the primary ALB is healthy again, the answer stays on the standby (the hold: the gate is
    still closed; the alarm's missing data keeps the last known status); opening the gate
    returns it to the primary. No Route 53, CloudFront or ARC control-plane call succeeds
    from the outage on. (Plain moto: no faults, so the control plane answers; no gate,
    calculated or alarm evaluation; no DNS answers or edges.)"""
    sbx, topo, cfg = seeds(gate)
    r53cfg, g = cfg["route53"], cfg["route53"]["gate"]
    zone = r53cfg["public_zone_id"]
    primary_be, standby_be = (_alb_addresses(sbx, topo, r, "backend") for r in (PRIMARY, STANDBY))
    standby_fe = _alb_addresses(sbx, topo, STANDBY, "frontend")
    sbx.control("DELETE", "/_sandbox/calls")
    with sbx.paused():
        sbx.fault(region="us-east-1", kind="outage", control_planes=True)

        # ---- the Route 53 control plane is gone (a stale DELETE: if it ever runs, it is refused).
        r53 = sbx.client("route53", read_timeout=1.0)
        assert _refused(lambda: r53.get_health_check_status(HealthCheckId=g["gate_health_check_id"]))
        assert _refused(lambda: r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
            "Action": "DELETE", "ResourceRecordSet": {"Name": f"gone-{uuid.uuid4().hex[:6]}.example.test.",
                                                      "Type": "A", "TTL": 60,
                                                      "ResourceRecords": [{"Value": "192.0.2.1"}]}}]}))
        assert _refused(lambda: r53.test_dns_answer(HostedZoneId=zone, RecordName="api.example.test", RecordType="A"))

        # ---- close the gate on the data plane.
        tried = _set_gate(sbx, cfg, open_=False)
        if gate == "arc":
            assert tried == [("us-east-1", "ReadTimeoutError"), ("us-west-2", "ok")]
        _step_until(sbx, lambda: _answers(sbx, cfg, "api.example.test") == standby_be)
        assert not _healthy(sbx, g["gate_health_check_id"]) and not _healthy(sbx, g["calculated_health_check_id"])
        assert _answers(sbx, cfg, "origin.example.test") == standby_fe
        status, body, headers = http_get(r53cfg["public_url"] + "/", timeout=10)
        assert status == 200 and headers["x-drsandbox-region"] == STANDBY, body
        status, headers, body = _cdn(topo)
        assert status == 200 and headers["x-drsandbox-origin"] == "primary-frontend", body
        assert headers["x-drsandbox-region"] == STANDBY

        # ---- the outage clears: held requests land (the stale ones change nothing), the
        # primary ALB is healthy again, and the answer holds on the standby.
        sbx.control("DELETE", "/_sandbox/faults")
        wait_for(lambda: sbx.control("GET", "/_sandbox/calls")[1]["in_flight"] == 0, what="held requests served")
        _step_until(sbx, lambda: _healthy(sbx, r53cfg["health_check_id"]))
        sbx.step(10 * MINUTE)  # long past the alarm's evaluation range: no data, INSUFFICIENT_DATA
        if gate == "alarm":
            alarm = next(a for a in sbx.control("GET", "/_sandbox/health")[1]["alarms"] if a["name"] == g["alarm"]["name"])
            assert alarm["evaluated"] == "INSUFFICIENT_DATA", alarm
        assert _answers(sbx, cfg, "api.example.test") == standby_be
        assert _answers(sbx, cfg, "origin.example.test") == standby_fe
        assert _cdn(topo)[1]["x-drsandbox-region"] == STANDBY

        # ---- opening the gate returns it to the primary.
        _set_gate(sbx, cfg, open_=True)
        _step_until(sbx, lambda: _answers(sbx, cfg, "api.example.test") == primary_be)
        assert _answers(sbx, cfg, "origin.example.test") == _alb_addresses(sbx, topo, PRIMARY, "frontend")
        assert _cdn(topo)[1]["x-drsandbox-region"] == PRIMARY

    counts = sbx.control("GET", "/_sandbox/calls")[1]["mutating"]
    assert not {k for k in counts if k.split(":")[0] in ("route53", "cloudfront", "route53-recovery-control-config")}, \
        counts


# --------------------------------------------------------------------------- writes

def _write(url: str) -> tuple[int, str, dict]:
    status, body, headers = http_get(url + "/write", timeout=10)
    return status, body, headers


def test_writes_reach_the_promoted_database_with_no_dns_change(seeds):
    """With a gate seeded, each region's app writes through its own region's database (the
    ``db`` CNAME of its VPC's private zone names that region's instance): the primary's app
    writes to shop-db-use1, the standby's is refused by the read replica. With us-east-1 and
    the control planes dark, PromoteReadReplica (us-west-2's own API) and closing the gate are
    enough: the standby app is refused while the replica is promoted (a replica, then
    rebooting: unreachable), then its write reaches the promoted instance, also through the
    public name, with no DNS change. (Plain moto: no ALBs or app, and a promotion is
    instant.)"""
    sbx, topo, cfg = seeds("arc")
    primary_url = cfg["regions"][PRIMARY]["albs"]["backend"]["url"]
    standby_url = cfg["regions"][STANDBY]["albs"]["backend"]["url"]
    status, body, headers = _write(primary_url)
    assert status == 200 and body.startswith("written: region=us-east-1") and "database=shop-db-use1" in body, body
    assert headers["x-drsandbox-write"] == "ok" and headers["x-drsandbox-database"] == "shop-db-use1"
    status, body, headers = _write(standby_url)
    assert status == 503 and body.startswith("write refused: read replica"), body
    assert "database=shop-db-usw2" in body and "--read-only" in body and headers["x-drsandbox-write"] == "refused"

    sbx.control("DELETE", "/_sandbox/calls")
    with sbx.paused():
        sbx.fault(region="us-east-1", kind="outage", control_planes=True)
        sbx.client("rds", STANDBY).promote_read_replica(DBInstanceIdentifier="shop-db-usw2")
        seen = []
        for _ in range(20):
            status, body, _ = _write(standby_url)
            seen.append((status, body.split(": region=")[0]))
            if status == 200:
                break
            sbx.step()
        assert [s for s, _ in seen][-1] == 200 and "database=shop-db-usw2" in body, seen
        words = [w for _, w in dict.fromkeys(seen)]
        assert words == ["write refused: read replica (ERROR 1290: The MySQL server is running with the --read-only "
                         "option so it cannot execute this statement)", "write failed: database unreachable",
                         "written"], words
        _set_gate(sbx, cfg, open_=False)
        _step_until(sbx, lambda: _answers(sbx, cfg, "api.example.test") == _alb_addresses(sbx, topo, STANDBY,
                                                                                           "backend"))
        status, body, headers = _write(cfg["route53"]["public_url"])
        assert status == 200 and "region=us-west-2" in body and "database=shop-db-usw2" in body, body
    calls = sbx.control("GET", "/_sandbox/calls")[1]
    assert calls["mutating"] == {"rds:PromoteReadReplica": 1,
                                 "route53-recovery-cluster:UpdateRoutingControlState": 1}, calls["mutating"]
    sbx.control("DELETE", "/_sandbox/faults")


def test_write_path_on_the_seeded_pair_and_the_fence(seeded):
    """``/write`` without a gate: 200 naming the writer on the primary, 503 naming the read
    replica on the standby; once the read_only fence is in effect on the primary's group, the
    primary's app is refused too (ERROR 1290), and ``/_sandbox/state`` agrees (writable false).
    (Plain moto: no ALBs or app; parameter groups never take effect.)"""
    sbx, topo, _ = seeded
    primary_url = topo["regions"][PRIMARY]["albs"]["backend"]["url"]
    assert _write(primary_url)[0] == 200
    status, body, _ = _write(topo["regions"][STANDBY]["albs"]["frontend"]["url"])
    assert status == 503 and "read replica" in body and "database=shop-db-usw2" in body, body
    with sbx.paused():
        sbx.client("rds", PRIMARY).modify_db_parameter_group(DBParameterGroupName="shop-mysql", Parameters=[
            {"ParameterName": "read_only", "ParameterValue": "1", "ApplyMethod": "immediate"}])
        assert _write(primary_url)[0] == 200  # applying: not in effect yet
        sbx.step()
        status, body, _ = _write(primary_url)
        assert status == 503 and body.startswith("write refused: read_only=1 in effect"), body
    db = next(d for d in sbx.control("GET", "/_sandbox/state")[1]["regions"][PRIMARY]["databases"]
              if d["id"] == "shop-db-use1")
    assert db["writable"] is False


# --------------------------------------------------------------------------- no gate

def test_seed_without_a_gate_names_the_udp_server_and_nothing_else_new(seeds):
    """``seed`` (no gate) on a sandbox serving UDP DNS writes ``route53.name_servers`` and
    nothing else new: no gate, the CloudFront origins are the frontend ALBs; the name server
    answers the public name by health (the primary backend ALB's addresses) and each ALB name
    with its addresses. (Plain moto: no DNS server, TestDNSAnswer 404.)"""
    sbx, topo, cfg = seeds("none")
    assert cfg["route53"]["name_servers"] == [f"127.0.0.1:{_udp_port(sbx)}"]
    assert "gate" not in cfg["route53"] and "gate" not in topo["route53"] and "gated_origin" not in topo["cloudfront"]
    assert _answers(sbx, cfg, "api.example.test") == _alb_addresses(sbx, topo, PRIMARY, "backend")
    for region in (PRIMARY, STANDBY):
        for tier in ("frontend", "backend"):
            assert _answers(sbx, cfg, cfg["regions"][region]["albs"][tier]["dns_name"]) == \
                _alb_addresses(sbx, topo, region, tier)
    with sbx.paused():
        sbx.listener(topo["regions"][PRIMARY]["albs"]["backend"]["name"], "down")
        _step_until(sbx, lambda: _answers(sbx, cfg, "api.example.test") == _alb_addresses(sbx, topo, STANDBY,
                                                                                           "backend"))
    assert _cdn(topo)[1]["x-drsandbox-origin-domain"] == topo["regions"][PRIMARY]["albs"]["frontend"]["dns_name"]


def test_seed_without_udp_dns_writes_no_name_servers(seeded):
    """A sandbox without ``--dns-port`` has no name server to name: drctl.yaml and
    topology.json carry no ``name_servers`` (and, with no gate, nothing else new). (Plain
    moto: GET /_sandbox/healthz is 404, so seeding stops.)"""
    sbx, topo, out = seeded
    cfg = yaml.safe_load((out / "drctl.yaml").read_text())
    assert sbx.control("GET", "/_sandbox/healthz")[1]["dns"]["udp_port"] is None
    assert "name_servers" not in cfg["route53"] and "name_servers" not in topo["route53"]
    assert "gate" not in cfg["route53"] and "gated_origin" not in topo["cloudfront"]

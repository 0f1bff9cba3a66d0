"""Fault injection: outage, errors, latency, per region and per service; the control API.

Plain moto has no fault injection at all, so every test here fails against it (the
/_sandbox/faults endpoint does not exist and requests are never delayed or refused).
"""

import threading
import time

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from conftest import wait_for


def test_fault_api_shapes(sbx):
    """The control API answers exactly the JSON shapes the Rust tests depend on (moto: 404)."""
    assert sbx.control("GET", "/_sandbox/faults") == (200, {"faults": []})
    status, body = sbx.control("POST", "/_sandbox/faults", {"region": "us-east-1", "service": None, "kind": "outage"})
    assert status == 200 and set(body) == {"id"}
    fid = body["id"]
    status, body = sbx.control("POST", "/_sandbox/faults",
                               {"region": "us-west-2", "service": "rds", "kind": "errors", "rate": 0.3,
                                "error": "throttle"})
    assert status == 200
    eid = body["id"]
    lid = sbx.fault(region="us-west-2", kind="latency", ms=200)
    status, body = sbx.control("GET", "/_sandbox/faults")
    assert body["faults"] == [
        {"id": fid, "region": "us-east-1", "service": None, "kind": "outage", "control_planes": True},
        {"id": eid, "region": "us-west-2", "service": "rds", "kind": "errors", "control_planes": False, "rate": 0.3,
         "error": "throttle"},
        {"id": lid, "region": "us-west-2", "service": None, "kind": "latency", "control_planes": False, "ms": 200},
    ]
    status, _ = sbx.control("DELETE", "/_sandbox/faults?region=us-east-1")
    assert status == 200
    assert [f["id"] for f in sbx.control("GET", "/_sandbox/faults")[1]["faults"]] == [eid, lid]
    assert sbx.control("DELETE", "/_sandbox/faults")[0] == 200
    assert sbx.control("GET", "/_sandbox/faults")[1] == {"faults": []}


@pytest.mark.parametrize("body,needle", [
    ({"region": "us-east-1", "kind": "meltdown"}, "kind"),
    ({"region": "mars-north-1", "kind": "outage"}, "region"),
    ({"region": "us-east-1", "service": "nosuchservice", "kind": "outage"}, "service"),
    ({"region": "us-east-1", "kind": "errors", "rate": 1.5}, "rate"),
    ({"region": "us-east-1", "kind": "errors", "error": "teapot"}, "error"),
    ({"region": "us-east-1", "kind": "latency"}, "ms"),
    ({"region": "us-east-1", "kind": "outage", "bogus": 1}, "bogus"),
])
def test_bad_fault_is_400_and_changes_nothing(sbx, body, needle):
    """Invalid fault specs answer 400 {"error": ...} and leave the table untouched (moto: 404)."""
    sbx.fault(region="us-west-2", kind="latency", ms=1)
    before = sbx.control("GET", "/_sandbox/faults")[1]
    status, resp = sbx.control("POST", "/_sandbox/faults", body)
    assert status == 400 and needle in resp["error"]
    assert sbx.control("GET", "/_sandbox/faults")[1] == before


def test_bad_json_and_bad_clear_are_400(sbx):
    """Malformed bodies and unknown regions on DELETE are rejected (moto: 404)."""
    assert sbx.control("POST", "/_sandbox/faults", raw=b"{not json")[0] == 400
    assert sbx.control("DELETE", "/_sandbox/faults?region=atlantis-1")[0] == 400
    assert sbx.control("GET", "/_sandbox/nope")[0] == 404


def test_outage_hangs_until_cleared(sbx):
    """A request to a region in outage hangs and is released when the fault is cleared
    (moto answers at once)."""
    rds = sbx.client("rds", "us-east-1")
    sbx.fault(region="us-east-1", kind="outage")
    sbx.control("DELETE", "/_sandbox/calls")
    result = {}

    def call():
        t = time.monotonic()
        result["dbs"] = rds.describe_db_instances()["DBInstances"]
        result["took"], result["done"] = time.monotonic() - t, time.monotonic()

    th = threading.Thread(target=call)
    th.start()
    time.sleep(1.0)
    assert th.is_alive(), "request should still be hanging"
    cleared = time.monotonic()
    sbx.control("DELETE", "/_sandbox/faults")
    th.join(60)  # the outage's own hang would last 120 s
    assert not th.is_alive() and result["dbs"] == [] and result["took"] >= 1.0
    # Released by the clear (answered after it), by moto (200, not the 503 an outage hang ends with).
    assert result["done"] >= cleared
    calls = sbx.control("GET", "/_sandbox/calls")[1]["calls"]
    assert [(c["operation"], c["status"], c["faulted"]) for c in calls] == [("DescribeDBInstances", 200, False)]


def test_outage_client_gives_up(sbx):
    """The client's own read timeout is what ends a request during an outage (moto: instant)."""
    ec2 = sbx.client("ec2", "us-west-2", read_timeout=1)
    sbx.fault(region="us-west-2", service="ec2", kind="outage")
    t = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        ec2.describe_vpcs()
    assert time.monotonic() - t >= 0.9


def test_outage_is_regional_and_spares_global_services(sbx):
    """A us-east-1 outage sparing the control planes (``control_planes: false``; the default
    takes them, test_control_planes.py) leaves us-west-2 and the global Route 53 / CloudFront
    APIs alone (they sign with us-east-1); naming the service faults them explicitly."""
    sbx.fault(region="us-east-1", kind="outage", control_planes=False)
    sbx.client("ec2", "us-west-2").describe_vpcs()
    sbx.client("route53").list_hosted_zones()
    sbx.client("cloudfront").list_distributions()
    sbx.fault(region="us-east-1", service="route53", kind="errors", error="throttle")
    with pytest.raises(ClientError) as e:
        sbx.client("route53").list_hosted_zones()
    assert e.value.response["Error"]["Code"] == "Throttling"


def test_control_api_not_subject_to_faults(sbx):
    """The control API answers during an outage of every region it could be confused with."""
    fid = sbx.fault(region="us-east-1", kind="outage")
    # control() gives up after 10 s: an answer at all means the outage (a 120 s hang) did not
    # hold it; and the outage is still on when it answered, so it was not released by a clear.
    assert sbx.control("GET", "/_sandbox/healthz")[0] == 200
    status, state = sbx.control("GET", "/_sandbox/state")
    assert status == 200 and state["regions"]["us-east-1"]["dark"] is True
    assert [f["id"] for f in sbx.control("GET", "/_sandbox/faults")[1]["faults"]] == [fid]


@pytest.mark.parametrize("service,region,call,error,code,status", [
    ("rds", "us-east-1", lambda c: c.describe_db_instances(), "throttle", "Throttling", 400),
    ("rds", "us-east-1", lambda c: c.describe_db_instances(), "5xx", "ServiceUnavailable", 503),
    ("ec2", "us-west-2", lambda c: c.describe_vpcs(), "throttle", "RequestLimitExceeded", 503),
    ("autoscaling", "us-west-2", lambda c: c.describe_auto_scaling_groups(), "throttle", "Throttling", 400),
    ("route53", "us-east-1", lambda c: c.list_hosted_zones(), "5xx", "ServiceUnavailable", 503),
    ("cloudfront", "us-east-1", lambda c: c.list_distributions(), "throttle", "Throttling", 400),
    ("backup", "us-west-2", lambda c: c.list_backup_vaults(), "throttle", "ThrottlingException", 400),
    ("dynamodb", "us-east-1", lambda c: c.list_tables(), "throttle", "ThrottlingException", 400),
    ("cloudwatch", "us-west-2", lambda c: c.list_metrics(), "throttle", "Throttling", 400),
])
def test_errors_in_protocol_shape(sbx, service, region, call, error, code, status):
    """Injected errors parse as proper AWS errors for each protocol (moto: never fails)."""
    sbx.fault(region=region, service=service, kind="errors", rate=1, error=error)
    with pytest.raises(ClientError) as e:
        call(sbx.client(service, region))
    assert e.value.response["Error"]["Code"] == code
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_error_rate_is_a_fraction(sbx):
    """rate=0.5 fails some requests, not all; rate=0 fails none (moto: never fails)."""
    r53 = sbx.client("route53")
    fid = sbx.fault(region="us-east-1", service="route53", kind="errors", rate=0.5, error="5xx")
    failures = 0
    for _ in range(40):
        try:
            r53.list_hosted_zones()
        except ClientError:
            failures += 1
    assert 5 <= failures <= 35
    sbx.control("DELETE", "/_sandbox/faults")
    sbx.fault(region="us-east-1", service="route53", kind="errors", rate=0.0)
    for _ in range(10):
        r53.list_hosted_zones()
    assert fid


def test_latency_adds_delay(sbx):
    """latency ms=400 delays each request by at least that (moto: no delay)."""
    ec2 = sbx.client("ec2", "us-east-1")
    ec2.describe_vpcs()
    sbx.fault(region="us-east-1", service="ec2", kind="latency", ms=400)
    t = time.monotonic()
    ec2.describe_vpcs()
    assert time.monotonic() - t >= 0.4
    # Scope: the fault names us-east-1/ec2 only (no upper bound on other calls' timing here:
    # a busy machine makes those slow too).
    assert [f["region"] for f in sbx.control("GET", "/_sandbox/faults")[1]["faults"]] == ["us-east-1"]
    sbx.client("ec2", "us-west-2").describe_vpcs()


def test_retry_survives_partial_errors(sbx):
    """The SDK's retries get through a low error rate: errors are retryable AWS errors."""
    sbx.fault(region="us-east-1", service="rds", kind="errors", rate=0.3, error="5xx")
    rds = sbx.client("rds", "us-east-1", retries=10)
    for _ in range(10):
        rds.describe_db_instances()
    wait_for(lambda: True)

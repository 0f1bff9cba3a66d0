"""Route 53's API limits: the account's request rate (Throttling) and PriorRequestNotComplete.

Route 53 Developer Guide, "Throttling for Amazon Route 53 API requests": token buckets per
account (all operations: 50, refilled at 10 a second) and per operation (GetHealthCheckStatus:
4, 1 a second; ...); a throttled request is HTTP 400 with Code Throttling and Message "Rate
exceeded". Route 53 API Reference, ChangeResourceRecordSets, Errors: PriorRequestNotComplete
(400) while Route 53 is still processing the zone's previous request.

Plain moto answers any number of requests at once and accepts every change batch at once, so
each test here fails on it (each docstring says how). These tests run their own sandbox with
the instant profile's timings and the realistic profile's Route 53 limits, and pause its clock:
buckets refill on the sandbox clock, so counting is exact.
"""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import TIME_SCALE, Proc, Sandbox, control, restore, wait_for
from drsandbox import profile

LIMITS = {"base": "instant", "route53_api_rate": 10, "route53_api_burst": 50,
          "route53_prior_request_not_complete": True}


@pytest.fixture(scope="module")
def limited_proc(tmp_path_factory):
    d = tmp_path_factory.mktemp("limits")
    (d / "limits.json").write_text(json.dumps(LIMITS))
    proc = Proc("--profile", str(d / "limits.json"), "--time-scale", TIME_SCALE)
    sbx = Sandbox(proc.url)
    sbx.client("route53").list_hosted_zones()  # builds the backend (and takes a token) ...
    assert control(proc.url, "POST", "/_sandbox/reset")[0] == 200  # ... which a reset gives back
    status, body = control(proc.url, "POST", "/_sandbox/snapshot", {"name": "start"}, timeout=60)
    assert status == 200, body
    yield proc
    proc.stop()


@pytest.fixture
def lim(limited_proc) -> Sandbox:
    """The limited sandbox as started: full buckets, no zones, clock running."""
    restore(limited_proc.url, "start")
    return Sandbox(limited_proc.url)


def _zone(sbx, name="limits.example.test."):
    return sbx.client("route53").create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))[
        "HostedZone"]["Id"].split("/")[-1]


def _txt(value: str, name="t.limits.example.test."):
    return {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": name, "Type": "TXT", "TTL": 60, "ResourceRecords": [{"Value": f'"{value}"'}]}}]}


def _count_until_throttled(r53, call, limit: int = 200) -> int:
    """How many ``call``s succeed before the first Throttling (asserted to come)."""
    for n in range(limit):
        try:
            call(r53)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "Throttling", e.response
            return n
    raise AssertionError(f"no Throttling after {limit} requests")


def _bucket(sbx, name: str) -> float:
    buckets = sbx.control("GET", "/_sandbox/state")[1]["route53_api"]["buckets"]
    return next(b["tokens"] for b in buckets if b["bucket"] == name)


def test_profiles_carry_the_route53_limits():
    """realistic: 10 requests a second, bursts of 50, PriorRequestNotComplete on (AWS's
    numbers); instant: off. Plain moto has neither limit nor profile."""
    r, i = profile.load("realistic"), profile.load("instant")
    assert (r.setting("route53_api_rate"), r.setting("route53_api_burst"),
            r.setting("route53_prior_request_not_complete")) == (10.0, 50.0, True)
    assert (i.setting("route53_api_rate"), i.setting("route53_prior_request_not_complete")) == (0.0, False)
    # Not durations: --time-scale leaves them alone.
    assert profile.load("realistic", time_scale=0.2).setting("route53_api_rate") == 10.0


def test_account_request_rate_is_a_token_bucket(lim):
    """A burst of 50 Route 53 requests passes, the 51st is Throttling; one second later 10
    more pass (refill 10/s). Plain moto answers all of them."""
    r53 = lim.client("route53")
    with lim.paused():
        assert _count_until_throttled(r53, lambda c: c.list_hosted_zones()) == 50
        lim.step(1.0)
        assert _count_until_throttled(r53, lambda c: c.list_hosted_zones()) == 10
        # Every Route 53 operation draws on the same account bucket.
        with pytest.raises(ClientError) as e:
            r53.list_health_checks()
        assert e.value.response["Error"]["Code"] == "Throttling"
        # Other services are not Route 53's business.
        lim.client("ec2", "us-west-2").describe_vpcs()
    calls = lim.control("GET", "/_sandbox/calls")[1]["calls"]
    throttled = [c for c in calls if c["status"] == 400]
    assert len(throttled) == 3 and all(c["service"] == "route53" and not c["faulted"] for c in throttled)


def test_throttling_is_route53s_error_shape(lim):
    """The answer is HTTP 400, REST-XML ErrorResponse in Route 53's namespace, Type Sender,
    Code Throttling, Message "Rate exceeded" - what botocore and the Rust SDK classify as
    throttling. (Plain moto: 200.)"""
    r53 = lim.client("route53")
    raw = []
    r53.meta.events.register("needs-retry.route53.ListHostedZones",
                             lambda response, **kw: raw.append(response[0]) if response else None)
    with lim.paused():
        _count_until_throttled(r53, lambda c: c.list_hosted_zones())
    http = raw[-1]
    body = http.content.decode()
    assert http.status_code == 400
    assert '<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">' in body
    assert "<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>" in body
    from botocore.retries.standard import ThrottledRetryableChecker

    assert "Throttling" in ThrottledRetryableChecker._THROTTLED_ERROR_CODES
    assert "PriorRequestNotComplete" in ThrottledRetryableChecker._THROTTLED_ERROR_CODES


def test_operation_buckets_are_smaller_for_some_operations(lim):
    """GetHealthCheckStatus has its own bucket (4, refilled at 1 a second): the fifth call in a
    burst is Throttling while the account bucket still has tokens. (Plain moto: never.)"""
    r53 = lim.client("route53")
    hc = r53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig={
        "Type": "TCP", "IPAddress": "127.0.0.1", "Port": 9, "RequestInterval": 30})["HealthCheck"]["Id"]
    with lim.paused():
        assert _count_until_throttled(r53, lambda c: c.get_health_check_status(HealthCheckId=hc)) == 4
        assert _bucket(lim, "account") >= 40
        r53.list_hosted_zones()
        lim.step(1.0)
        assert _count_until_throttled(r53, lambda c: c.get_health_check_status(HealthCheckId=hc)) == 1


def test_sdk_retries_through_throttling(lim):
    """boto3's standard retries get through: the first attempt is Throttling, a retry after
    the bucket refilled succeeds. (Plain moto: the first attempt succeeds.)"""
    r53 = lim.client("route53")
    patient = lim.client("route53", retries=10)
    done = {}
    with lim.paused():
        _count_until_throttled(r53, lambda c: c.list_hosted_zones())
        lim.control("DELETE", "/_sandbox/calls")
        import threading

        t = threading.Thread(target=lambda: done.setdefault("zones", patient.list_hosted_zones()["HostedZones"]))
        t.start()
        wait_for(lambda: any(c["status"] == 400 for c in lim.control("GET", "/_sandbox/calls")[1]["calls"]),
                 what="a throttled first attempt")
        lim.step(1.0)  # ten tokens
        t.join(60)
    assert done["zones"] == []
    statuses = [c["status"] for c in lim.control("GET", "/_sandbox/calls")[1]["calls"]]
    assert statuses[0] == 400 and statuses[-1] == 200 and set(statuses) == {400, 200}


def test_prior_request_not_complete_while_the_zone_change_is_pending(lim):
    """A second ChangeResourceRecordSets to a zone whose first change is PENDING is 400
    PriorRequestNotComplete (nothing applied); another zone is not affected; once the change
    is INSYNC the zone takes changes again; a refused batch does not make the zone busy.
    (Plain moto: every change INSYNC and accepted at once.)"""
    r53 = lim.client("route53")
    zone, other = _zone(lim), _zone(lim, "other.example.test.")
    with lim.paused():
        lim.step(1.0)  # the zones' own creation changes are done
        first = r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=_txt("one"))["ChangeInfo"]
        assert first["Status"] == "PENDING"
        with pytest.raises(ClientError) as e:
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=_txt("two"))
        err = e.value.response
        assert err["Error"]["Code"] == "PriorRequestNotComplete" and err["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert err["Error"]["Message"] == "The request was rejected because Route 53 was still processing a prior request."
        values = [r["ResourceRecords"][0]["Value"] for r in r53.list_resource_record_sets(HostedZoneId=zone)[
            "ResourceRecordSets"] if r["Type"] == "TXT"]
        assert values == ['"one"']
        r53.change_resource_record_sets(HostedZoneId=other, ChangeBatch=_txt("x", "t.other.example.test."))
        lim.step()  # the next deadline: the first change is INSYNC
        assert r53.get_change(Id=first["Id"])["ChangeInfo"]["Status"] == "INSYNC"
        lim.step(1.0)
        bad = {"Changes": [{"Action": "DELETE", "ResourceRecordSet": {
            "Name": "nope.limits.example.test.", "Type": "TXT", "TTL": 60, "ResourceRecords": [{"Value": '"n"'}]}}]}
        with pytest.raises(ClientError) as e:
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=bad)
        assert e.value.response["Error"]["Code"] == "InvalidChangeBatch"
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=_txt("three"))


def test_snapshot_keeps_buckets_and_busy_zones(lim):
    """A snapshot holds the token buckets and each zone's pending change: after a restore the
    same number of requests passes before Throttling, and the zone is busy again. (Plain moto:
    no limits, no snapshots.)"""
    r53 = lim.client("route53")
    zone = _zone(lim)
    with lim.paused():
        lim.step(1.0)
        for _ in range(20):
            r53.list_hosted_zones()
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=_txt("one"))
        saved = lim.control("GET", "/_sandbox/state")[1]["route53_api"]
        status, body = lim.control("POST", "/_sandbox/snapshot", {"name": "limits-mid"})
        assert status == 200, body
        left = _count_until_throttled(r53, lambda c: c.list_hosted_zones())
        lim.step(2.0)
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=_txt("two"))
        restore(lim.url, "limits-mid")
        assert lim.control("GET", "/_sandbox/state")[1]["route53_api"] == saved
        with pytest.raises(ClientError) as e:
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=_txt("three"))
        assert e.value.response["Error"]["Code"] == "PriorRequestNotComplete"
        assert _count_until_throttled(r53, lambda c: c.list_hosted_zones()) == left - 1


def test_iam_refusals_come_before_throttling_and_take_no_token(lim):
    """With IAM enforced, a request is authenticated and authorized before Route 53's request
    rate is applied (the rate is the account's, and the account is known once the caller is:
    AWS Knowledge Center, "How can I avoid Route 53 API throttling errors?": IAM users' calls
    count towards the account's throttling). So a made-up key is InvalidClientTokenId and a
    call the caller's policy does not allow AccessDenied, even with the account's bucket
    empty, and neither takes a token; an allowed user's calls are throttled after the burst
    of 50 like anyone's. Plain moto answers all of them."""
    import boto3
    from botocore.config import Config

    cfg = Config(retries={"total_max_attempts": 1})

    def r53(creds):
        return boto3.session.Session().client("route53", region_name="us-east-1", endpoint_url=lim.url, config=cfg,
                                              aws_access_key_id=creds[0], aws_secret_access_key=creds[1])

    def code(fn):
        with pytest.raises(ClientError) as e:
            fn()
        return e.value.response["Error"]["Code"]

    with lim.paused():  # no refill: every token is counted
        assert lim.control("POST", "/_sandbox/iam", {"mode": "enforce"})[0] == 200
        admin = lim.control("POST", "/_sandbox/iam/admin", {})[1]["admin"]
        iam = boto3.session.Session().client("iam", region_name="us-east-1", endpoint_url=lim.url, config=cfg,
                                             aws_access_key_id=admin["access_key_id"],
                                             aws_secret_access_key=admin["secret_access_key"])
        keys = {}
        for user, action in (("lister", "route53:ListHostedZones"), ("other", "route53:GetChange")):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}))
            k = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (k["AccessKeyId"], k["SecretAccessKey"])
        stranger, other, lister = r53(("AKIAEXAMPLEEXAMPLE00", "nope")), r53(keys["other"]), r53(keys["lister"])

        for _ in range(5):
            assert code(stranger.list_hosted_zones) == "InvalidClientTokenId"
            assert code(other.list_hosted_zones) == "AccessDenied"
        assert lim.control("GET", "/_sandbox/state")[1]["route53_api"]["buckets"] == []  # no token taken
        assert _count_until_throttled(lister, lambda c: c.list_hosted_zones()) == 50
        assert _bucket(lim, "account") < 1
        assert code(stranger.list_hosted_zones) == "InvalidClientTokenId"  # not Throttling
        assert code(other.list_hosted_zones) == "AccessDenied"
        assert code(lister.list_hosted_zones) == "Throttling"
        lim.step(0.5)  # refills at 10 a second of the sandbox clock: the user goes on
        assert _count_until_throttled(lister, lambda c: c.list_hosted_zones()) >= 1
    lim.control("POST", "/_sandbox/iam", {"mode": "off"})


def test_instant_profile_has_no_route53_limits(sbx):
    """Pin: the instant profile (drctl's tests) keeps both limits off: 80 requests in a row and
    two changes to one zone back to back all pass, as on plain moto."""
    r53 = sbx.client("route53")
    with sbx.paused():
        for _ in range(80):
            r53.list_hosted_zones()
        zone = _zone(sbx)
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=_txt("one"))
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=_txt("two"))
    assert sbx.control("GET", "/_sandbox/state")[1]["route53_api"]["rate"] == 0

"""Where the features of the three harsh branches meet: IAM enforcement over the ARC control and
data planes (and what it deliberately leaves alone), CloudWatch alarms evaluating the RDS
ReplicaLag -1 of broken replication on the stepped clock, and one snapshot carrying all of it.

(IAM before Route 53 throttling: tests/test_route53_limits.py, which runs a sandbox with the
Route 53 request rate on.)

Plain moto has no ARC, never evaluates an alarm, publishes no ReplicaLag and checks no
credentials: every test here fails on it.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import wait_for
from gates import INTERVAL, MINUTE, health_check, healthy, make_cluster, make_control

ACCOUNT = "123456789012"
CFG = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)


def _client(sbx, service, creds, region="us-east-1", endpoint_url=None):
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint_url or sbx.url,
                                          config=CFG, aws_access_key_id=creds[0], aws_secret_access_key=creds[1])


def _enforce(sbx) -> tuple[str, str]:
    status, body = sbx.control("POST", "/_sandbox/iam", {"mode": "enforce"})
    assert status == 200 and body["mode"] == "enforce", body
    status, body = sbx.control("POST", "/_sandbox/iam/admin", {})
    assert status == 200, body
    return body["admin"]["access_key_id"], body["admin"]["secret_access_key"]


def _user(sbx, admin, name, *statements) -> tuple[str, str]:
    iam = _client(sbx, "iam", admin)
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-inline",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _refused(fn):
    with pytest.raises(ClientError) as e:
        fn()
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


def _state(plane, arn: str) -> str:
    return plane.get_routing_control_state(RoutingControlArn=arn)["RoutingControlState"]


def _gate_user(sbx, admin, cluster: dict, allowed: str) -> tuple[str, str]:
    """A user who may read and set one routing control (data plane) and describe its cluster."""
    return _user(sbx, admin, "gatekeeper",
                 {"Effect": "Allow", "Action": ["route53-recovery-cluster:GetRoutingControlState",
                                                "route53-recovery-cluster:UpdateRoutingControlState",
                                                "route53-recovery-cluster:UpdateRoutingControlStates"],
                  "Resource": allowed},
                 {"Effect": "Allow", "Action": "route53-recovery-control-config:DescribeCluster",
                  "Resource": cluster["ClusterArn"]})


# --------------------------------------------------------------------------- IAM and ARC

def test_iam_enforcement_covers_both_arc_planes_but_not_the_sandbox_control_api(seeded):
    """With IAM enforced, ARC is an AWS API like the others: on a cluster endpoint a user may
    set only the routing control its policy names (route53-recovery-cluster:
    UpdateRoutingControlState on the routing control's ARN; the other is AccessDeniedException
    naming that ARN; UpdateRoutingControlStates is refused whole if one entry is not allowed,
    and nothing changes); the control plane checks CreateRoutingControl on the cluster's ARN;
    made-up keys are UnrecognizedClientException; a request signed for another region than the
    endpoint's is InvalidSignatureException before any authorization. The sandbox's own
    control API (/_sandbox/health, /_sandbox/dns) needs no credentials, and the Route 53 health
    checker reads the routing control the user set (a service-side read, no permission). With
    us-east-1 and its control planes dark (IAM API included), the user's keys still work on
    the us-west-2 endpoint: authentication is not the IAM control plane."""
    sbx, topo, _ = seeded
    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        rc1 = make_control(sbx, cluster, "primary-open")
        rc2 = make_control(sbx, cluster, "standby-open")
        admin = _enforce(sbx)
        hc = _client(sbx, "route53", admin).create_health_check(
            CallerReference="rc1", HealthCheckConfig={"Type": "RECOVERY_CONTROL", "RoutingControlArn": rc1})[
            "HealthCheck"]["Id"]
        sbx.step(INTERVAL)
        assert not healthy(sbx, hc)  # rc1 is Off
        creds = _gate_user(sbx, admin, cluster, rc1)
        east, west = (next(e for e in endpoints if e["Region"] == r) for r in ("us-east-1", "us-west-2"))
        plane = _client(sbx, "route53-recovery-cluster", creds, east["Region"], east["Endpoint"])

        plane.update_routing_control_state(RoutingControlArn=rc1, RoutingControlState="On")
        assert _state(plane, rc1) == "On"
        code, status, message = _refused(
            lambda: plane.update_routing_control_state(RoutingControlArn=rc2, RoutingControlState="On"))
        assert (code, status) == ("AccessDeniedException", 400)
        assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/gatekeeper is not authorized to perform: "
                           f"route53-recovery-cluster:UpdateRoutingControlState on resource: {rc2} because no "
                           "identity-based policy allows the route53-recovery-cluster:UpdateRoutingControlState action")
        code, _, message = _refused(lambda: plane.update_routing_control_states(UpdateRoutingControlStateEntries=[
            {"RoutingControlArn": rc1, "RoutingControlState": "Off"},
            {"RoutingControlArn": rc2, "RoutingControlState": "On"}]))
        assert code == "AccessDeniedException" and f"on resource: {rc2} " in message
        admin_plane = _client(sbx, "route53-recovery-cluster", admin, east["Region"], east["Endpoint"])
        assert (_state(admin_plane, rc1), _state(admin_plane, rc2)) == ("On", "Off")  # nothing applied

        cc = _client(sbx, "route53-recovery-control-config", creds, "us-west-2")
        assert cc.describe_cluster(ClusterArn=cluster["ClusterArn"])["Cluster"]["Status"] == "DEPLOYED"
        code, status, message = _refused(
            lambda: cc.create_routing_control(ClusterArn=cluster["ClusterArn"], RoutingControlName="sneaky"))
        assert (code, status) == ("AccessDeniedException", 403)
        assert f"route53-recovery-control-config:CreateRoutingControl on resource: {cluster['ClusterArn']} " in message

        stranger = _client(sbx, "route53-recovery-cluster", ("AKIAEXAMPLEEXAMPLE00", "nope"), east["Region"],
                           east["Endpoint"])
        assert _refused(lambda: _state(stranger, rc1))[:2] == ("UnrecognizedClientException", 400)
        # Signed for the wrong region: SigV4's scope check comes before authorization, as on AWS.
        astray = _client(sbx, "route53-recovery-cluster", creds, "us-west-2", east["Endpoint"])
        assert _refused(lambda: astray.update_routing_control_state(
            RoutingControlArn=rc2, RoutingControlState="On"))[:2] == ("InvalidSignatureException", 403)

        # The sandbox's control API is not AWS: no credentials, never refused.
        status, body = sbx.control("GET", "/_sandbox/health")
        assert status == 200 and body["arc"][0]["arn"] == cluster["ClusterArn"]
        alb = topo["regions"]["us-east-1"]["albs"]["backend"]["dns_name"]
        status, body = sbx.control("GET", f"/_sandbox/dns?name={alb}")
        assert status == 200 and body["rcode"] == "NOERROR", body
        # The health checker follows the state the user set (its read needs no permission).
        sbx.step(INTERVAL)
        assert body["addresses"], body
        assert healthy(sbx, hc)

        # us-east-1 dark with its control planes: the IAM API is down, IAM's checks are not.
        sbx.fault(region="us-east-1", kind="outage", control_planes=True)
        west_plane = _client(sbx, "route53-recovery-cluster", creds, west["Region"], west["Endpoint"])
        west_plane.update_routing_control_state(RoutingControlArn=rc1, RoutingControlState="Off")
        assert _state(west_plane, rc1) == "Off"
        assert _refused(lambda: west_plane.update_routing_control_state(
            RoutingControlArn=rc2, RoutingControlState="On"))[0] == "AccessDeniedException"
        sbx.control("DELETE", "/_sandbox/faults")
    calls = sbx.control("GET", "/_sandbox/calls")[1]["calls"]
    refused = [(c["service"], c["operation"], c["status"]) for c in calls if c["status"] in (400, 403)]
    assert ("route53-recovery-cluster", "UpdateRoutingControlState", 400) in refused
    assert ("route53-recovery-control-config", "CreateRoutingControl", 403) in refused


# --------------------------------------------------------------------------- ReplicaLag alarms

def _replica(sbx) -> None:
    """db1 (us-east-1) and its cross-region replica r1 (us-west-2), available and caught up."""
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    src = e1.create_db_instance(DBInstanceIdentifier="db1", Engine="mysql", DBInstanceClass="db.t3.micro",
                                MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                                BackupRetentionPeriod=1)["DBInstance"]
    w2.create_db_instance_read_replica(DBInstanceIdentifier="r1", SourceDBInstanceIdentifier=src["DBInstanceArn"])
    wait_for(lambda: w2.describe_db_instances(DBInstanceIdentifier="r1")["DBInstances"][0]["DBInstanceStatus"]
             == "available", timeout=10, what="r1 available")


def _lag_alarms(sbx) -> None:
    """Two alarms on r1's ReplicaLag in us-west-2: ``lag-high`` (Maximum > 30 s, the usual one)
    and ``replication-broken`` (Minimum < 0: the -1 RDS publishes while replication is not
    active)."""
    cw = sbx.client("cloudwatch", "us-west-2")
    common = dict(Namespace="AWS/RDS", MetricName="ReplicaLag", Period=60, EvaluationPeriods=1,
                  Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "r1"}], TreatMissingData="missing")
    cw.put_metric_alarm(AlarmName="lag-high", Statistic="Maximum", Threshold=30.0,
                        ComparisonOperator="GreaterThanThreshold", **common)
    cw.put_metric_alarm(AlarmName="replication-broken", Statistic="Minimum", Threshold=0.0,
                        ComparisonOperator="LessThanThreshold", **common)


def _alarms(sbx) -> dict:
    cw = sbx.client("cloudwatch", "us-west-2")
    return {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNames=["lag-high", "replication-broken"])[
        "MetricAlarms"]}


def _reason_data(sbx, name: str) -> dict:
    cw = sbx.client("cloudwatch", "us-west-2")
    return json.loads(cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateReasonData"])


def test_alarms_evaluate_replica_lag_minus_one_on_the_stepped_clock(sbx):
    """ReplicaLag and the alarm evaluator share the sandbox clock: with it paused, stepping
    CloudWatch minutes publishes the rounds and evaluates the alarms in order. While the
    source's region has an RDS outage the replica publishes -1 (replication not active), which
    a "lag > 30 s" alarm never sees as a breach (it stays OK, as on AWS) and a "lag < 0" alarm
    turns ALARM one evaluation later; once the outage ends the replica replays what it missed
    (a positive lag, the interruption's length) and both alarms are OK again."""
    _replica(sbx)
    with sbx.paused():
        _lag_alarms(sbx)
        for _ in range(4):
            sbx.step(MINUTE)
        assert _alarms(sbx) == {"lag-high": "OK", "replication-broken": "OK"}
        sbx.fault(region="us-east-1", service="rds", kind="outage")
        sbx.step(MINUTE)
        sbx.step(MINUTE)
        assert _alarms(sbx) == {"lag-high": "OK", "replication-broken": "ALARM"}
        assert _reason_data(sbx, "replication-broken")["recentDatapoints"] == [-1.0]
        sbx.control("DELETE", "/_sandbox/faults")
        sbx.step(MINUTE)
        sbx.step(MINUTE)
        assert _alarms(sbx) == {"lag-high": "OK", "replication-broken": "OK"}
        # What turned it OK: the replay after the outage, a lag of its length (three minutes of
        # the clock from the fault to the first round after it), not 0.
        assert _reason_data(sbx, "replication-broken")["recentDatapoints"] == [pytest.approx(3 * MINUTE, abs=0.1)]


# --------------------------------------------------------------------------- one snapshot for all

def test_one_snapshot_carries_iam_arc_alarms_and_broken_replication(sbx):
    """Saved with IAM enforced, a user allowed one routing control, ReplicaLag -1 under an RDS
    outage and the "replication-broken" alarm in ALARM; then enforcement off, the user's key
    deleted, the fault cleared, the routing control set by anyone and the alarm OK again. The
    restore brings every piece back: made-up keys refused again, the user's key works on the
    data plane for its routing control only, the state it had, the outage (ReplicaLag -1 at the
    next round) and the alarm."""
    _replica(sbx)
    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        rc = make_control(sbx, cluster)
        _lag_alarms(sbx)
        for _ in range(2):
            sbx.step(MINUTE)
        sbx.fault(region="us-east-1", service="rds", kind="outage")
        for _ in range(2):
            sbx.step(MINUTE)
        assert _alarms(sbx)["replication-broken"] == "ALARM"
        admin = _enforce(sbx)
        creds = _gate_user(sbx, admin, cluster, rc)
        ep = endpoints[2]
        plane = _client(sbx, "route53-recovery-cluster", creds, ep["Region"], ep["Endpoint"])
        plane.update_routing_control_state(RoutingControlArn=rc, RoutingControlState="On")
        status, body = sbx.control("POST", "/_sandbox/snapshot", {"name": "everything"})
        assert status == 200, body

        sbx.control("POST", "/_sandbox/iam", {"mode": "off"})
        sbx.client("iam").delete_access_key(UserName="gatekeeper", AccessKeyId=creds[0])
        sbx.control("DELETE", "/_sandbox/faults")
        anyone = _client(sbx, "route53-recovery-cluster", ("test", "test"), ep["Region"], ep["Endpoint"])
        anyone.update_routing_control_state(RoutingControlArn=rc, RoutingControlState="Off")
        for _ in range(3):
            sbx.step(MINUTE)
        assert _alarms(sbx)["replication-broken"] == "OK"

        status, body = sbx.control("POST", "/_sandbox/restore", {"name": "everything"})
        assert status == 200, body
        assert sbx.control("GET", "/_sandbox/iam")[1]["mode"] == "enforce"
        assert _refused(lambda: _state(anyone, rc))[0] == "UnrecognizedClientException"
        assert _state(plane, rc) == "On"
        assert [f["service"] for f in sbx.control("GET", "/_sandbox/faults")[1]["faults"]] == ["rds"]
        # CloudWatch reads need a permitted caller again (the admin is restored too); the
        # evaluator does not (it is CloudWatch itself).
        cw = _client(sbx, "cloudwatch", admin, "us-west-2")
        state = lambda: cw.describe_alarms(AlarmNames=["replication-broken"])["MetricAlarms"][0]  # noqa: E731
        assert state()["StateValue"] == "ALARM"
        sbx.step(MINUTE)
        sbx.step(MINUTE)
        assert state()["StateValue"] == "ALARM"
        assert json.loads(state()["StateReasonData"])["recentDatapoints"] == [-1.0]  # still broken
        sbx.control("POST", "/_sandbox/iam", {"mode": "off"})
        sbx.control("DELETE", "/_sandbox/faults")
    sbx.control("DELETE", "/_sandbox/snapshots?name=everything")

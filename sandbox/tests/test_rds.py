"""RDS: timed promotion that unlinks the replica, reboot/modify transitions, ReplicaLag.

Plain moto promotes instantly and keeps ReadReplicaSourceDBInstanceIdentifier, promotes a
non-replica, has no reboot/modify transitions, accepts ForceFailover on single-AZ, has no
ReplicaLag data and answers Aurora global failover with an HTML 500.
"""

import datetime

import pytest
import yaml
from botocore.exceptions import ClientError

from conftest import wait_for


def _pair(sbx, multi_az=False):
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    src = e1.create_db_instance(DBInstanceIdentifier="db1", Engine="mysql", DBInstanceClass="db.t3.micro",
                                MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                                MultiAZ=multi_az)["DBInstance"]
    w2.create_db_instance_read_replica(DBInstanceIdentifier="db1-replica", SourceDBInstanceIdentifier=src["DBInstanceArn"],
                                       SourceRegion="us-east-1", DBInstanceClass="db.t3.micro")
    wait_for(lambda: _db(w2, "db1-replica")["DBInstanceStatus"] == "available", timeout=10, what="replica available")
    return e1, w2


def _db(client, ident):
    return client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]


def test_promotion_transitions_and_unlinks(sbx):
    """modifying -> rebooting -> available, then the replica names no source and the source
    no longer lists it (moto: available at once, links kept on both sides). The clock is
    paused, so every state is seen, in order, however slow the machine."""
    e1, w2 = _pair(sbx)
    assert _db(e1, "db1")["ReadReplicaDBInstanceIdentifiers"]
    with sbx.paused():
        r = w2.promote_read_replica(DBInstanceIdentifier="db1-replica", BackupRetentionPeriod=3)["DBInstance"]
        assert r["DBInstanceStatus"] == "modifying"
        seen = sbx.steps_until(lambda: _db(w2, "db1-replica")["DBInstanceStatus"], lambda s: s == "available")
        assert seen == ["modifying", "rebooting", "available"]
        db = _db(w2, "db1-replica")
        assert "ReadReplicaSourceDBInstanceIdentifier" not in db and db["BackupRetentionPeriod"] == 3
        assert _db(e1, "db1").get("ReadReplicaDBInstanceIdentifiers", []) == []
    w2.get_waiter("db_instance_available").wait(DBInstanceIdentifier="db1-replica", WaiterConfig={"Delay": 1, "MaxAttempts": 3})


def test_delete_cross_region_replica_unlinks_it(sbx):
    """Deleting a cross-region read replica succeeds and its source stops listing it (moto:
    removes the instance, then answers HTML 500 while unlinking it by the wrong name)."""
    e1, w2 = _pair(sbx)
    w2.delete_db_instance(DBInstanceIdentifier="db1-replica", SkipFinalSnapshot=True)
    with pytest.raises(ClientError) as e:
        _db(w2, "db1-replica")
    assert e.value.response["Error"]["Code"] == "DBInstanceNotFound"
    assert _db(e1, "db1").get("ReadReplicaDBInstanceIdentifiers", []) == []


def test_promote_non_replica_is_invalid_state(sbx):
    """Promoting a non-replica is InvalidDBInstanceState (moto accepts it)."""
    e1, w2 = _pair(sbx)
    with pytest.raises(ClientError) as e:
        e1.promote_read_replica(DBInstanceIdentifier="db1")
    assert e.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    w2.promote_read_replica(DBInstanceIdentifier="db1-replica")
    with pytest.raises(ClientError) as e:  # twice: it is no longer available, then no longer a replica
        w2.promote_read_replica(DBInstanceIdentifier="db1-replica")
    assert e.value.response["Error"]["Code"] == "InvalidDBInstanceState"


def test_reboot_transitions_and_force_failover(sbx):
    """reboot goes rebooting -> available; ForceFailover needs Multi-AZ and moves the AZ
    (moto: no transition, ForceFailover accepted on single-AZ). With the clock paused the
    reboot is still going on when the second reboot is refused."""
    e1, _ = _pair(sbx)
    with pytest.raises(ClientError) as e:
        e1.reboot_db_instance(DBInstanceIdentifier="db1", ForceFailover=True)
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"
    with sbx.paused():
        assert e1.reboot_db_instance(DBInstanceIdentifier="db1")["DBInstance"]["DBInstanceStatus"] == "rebooting"
        with pytest.raises(ClientError) as e:
            e1.reboot_db_instance(DBInstanceIdentifier="db1")
        assert e.value.response["Error"]["Code"] == "InvalidDBInstanceState"
        assert sbx.steps_until(lambda: _db(e1, "db1")["DBInstanceStatus"], lambda s: s == "available") == \
            ["rebooting", "available"]
        e1.create_db_instance(DBInstanceIdentifier="maz", Engine="mysql", DBInstanceClass="db.t3.micro",
                              MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20, MultiAZ=True)
        az = _db(e1, "maz")["AvailabilityZone"]
        assert e1.reboot_db_instance(DBInstanceIdentifier="maz", ForceFailover=True)["DBInstance"]["DBInstanceStatus"] == "rebooting"
        assert sbx.steps_until(lambda: _db(e1, "maz")["DBInstanceStatus"], lambda s: s == "available") == \
            ["rebooting", "available"]
    assert _db(e1, "maz")["AvailabilityZone"] != az


def test_modify_apply_immediately_transitions(sbx):
    """modify with ApplyImmediately goes modifying -> available (moto: stays available)."""
    e1, _ = _pair(sbx)
    with sbx.paused():
        r = e1.modify_db_instance(DBInstanceIdentifier="db1", DBInstanceClass="db.t3.small", ApplyImmediately=True)
        assert r["DBInstance"]["DBInstanceStatus"] == "modifying"
        assert sbx.steps_until(lambda: _db(e1, "db1")["DBInstanceStatus"], lambda s: s == "available") == \
            ["modifying", "available"]
    assert _db(e1, "db1")["DBInstanceClass"] == "db.t3.small"


def _lag(cw, ident, since=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    r = cw.get_metric_statistics(Namespace="AWS/RDS", MetricName="ReplicaLag",
                                 Dimensions=[{"Name": "DBInstanceIdentifier", "Value": ident}],
                                 StartTime=since or now - datetime.timedelta(minutes=10),
                                 EndTime=now + datetime.timedelta(minutes=1),
                                 Period=60, Statistics=["Maximum", "Minimum"])["Datapoints"]
    return r[0] if r else None


def test_replica_lag_published_and_configurable(sbx):
    """ReplicaLag (AWS/RDS, DBInstanceIdentifier) is published for replicas and follows the
    control API (moto: no datapoints unless injected)."""
    _pair(sbx)
    cw = sbx.client("cloudwatch", "us-west-2")
    wait_for(lambda: _lag(cw, "db1-replica"), timeout=5, what="first ReplicaLag datapoint")
    status, body = sbx.control("POST", "/_sandbox/replica-lag",
                               {"region": "us-west-2", "instance_id": "db1-replica", "seconds": 12.5})
    assert status == 200 and body["published"] == 12.5
    assert _lag(cw, "db1-replica")["Maximum"] == 12.5
    assert _lag(sbx.client("cloudwatch", "us-east-1"), "db1") is None  # the source is no replica
    status, body = sbx.control("POST", "/_sandbox/replica-lag",
                               {"region": "us-east-1", "instance_id": "db1", "seconds": 1})
    assert status == 400 and "not a read replica" in body["error"]


def _published(sbx, cw, ident, steps):
    """(Minimum, Maximum) of the ReplicaLag datapoints published while ``steps()`` steps the
    paused clock, or None if none was. CloudWatch truncates StartTime to the second: the
    (paused, so idle) sandbox is given a wall-clock second first, and only datapoints from
    after it are read."""
    import time

    mark = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(1.05)
    steps()
    point = _lag(cw, ident, since=mark + datetime.timedelta(seconds=1))
    return (point["Minimum"], point["Maximum"]) if point else None


def test_replica_lag_is_minus_one_while_the_source_is_unreachable(sbx):
    """While the source region is down replication is not active: ReplicaLag is -1 (RDS User
    Guide, "Monitoring MySQL read replication": "If the ReplicaLag metric returns -1, then
    replication is currently not active"), published once per ``replica_lag_period``; once the
    source is back the replica replays what it missed, its lag falling to 0 over
    ``replica_catchup``. Plain moto publishes no ReplicaLag at all (the sandbox before this
    published the seconds since the outage began). The clock is paused: rounds happen only
    when a step passes them, so a datapoint measured before the outage stays the newest until
    the next round."""
    _pair(sbx)
    cw = sbx.client("cloudwatch", "us-west-2")
    period = 0.5  # replica_lag_period 1 s x time scale 0.5
    with sbx.paused():
        assert _published(sbx, cw, "db1-replica", lambda: sbx.step(5)) == (0, 0)  # caught up
        # The outage begins between two rounds: nothing is published until the next one.
        assert _published(sbx, cw, "db1-replica", lambda: sbx.fault(region="us-east-1", kind="outage")) is None
        assert _published(sbx, cw, "db1-replica", lambda: sbx.step(period)) == (-1, -1)
        assert _published(sbx, cw, "db1-replica", lambda: [sbx.step(period) for _ in range(6)]) == (-1, -1)
        sbx.control("DELETE", "/_sandbox/faults")
        low, high = _published(sbx, cw, "db1-replica", lambda: sbx.step(period))
        assert low == high and 0 < high <= 4.0  # replaying the ~3.5 s it missed
        assert _published(sbx, cw, "db1-replica", lambda: sbx.step(2))[1] < high  # falling
        assert _published(sbx, cw, "db1-replica", lambda: sbx.step(period)) == (0, 0)


def test_replica_lag_is_minus_one_while_being_promoted_or_its_source_reboots(tmp_path):
    """Replication stops while the source reboots and once a promotion begins: ReplicaLag is -1
    while the replica is modifying and rebooting on its way to a standalone instance (plain
    moto: no ReplicaLag at all; the sandbox before this kept publishing 0). A sandbox of its
    own whose reboots and promotions outlast a ReplicaLag period, so a round falls inside."""
    import json as _json

    from conftest import Proc, Sandbox

    profile = tmp_path / "slow-rds.json"
    profile.write_text(_json.dumps({"base": "instant", "rds_reboot": 4, "rds_promotion": 8}))
    proc = Proc("--profile", str(profile))
    try:
        sbx = Sandbox(proc.url)
        e1, w2 = _pair(sbx)
        cw = sbx.client("cloudwatch", "us-west-2")
        with sbx.paused():
            sbx.step(5)

            def reboot_source():
                e1.reboot_db_instance(DBInstanceIdentifier="db1")
                sbx.step(2)  # rounds every second (replica_lag_period), the reboot takes 4
                assert _db(e1, "db1")["DBInstanceStatus"] == "rebooting"

            assert _published(sbx, cw, "db1-replica", reboot_source) == (-1, -1)
            sbx.step(3)
            assert _db(e1, "db1")["DBInstanceStatus"] == "available"

            def promote():
                w2.promote_read_replica(DBInstanceIdentifier="db1-replica")
                sbx.step(2)
                assert _db(w2, "db1-replica")["DBInstanceStatus"] == "modifying"

            assert _published(sbx, cw, "db1-replica", promote) == (-1, -1)
    finally:
        proc.stop()


def test_aurora_global_failover_is_a_clear_error(sbx):
    """Out of scope, but a clear 4xx error instead of moto's HTML 500 (which SDKs retry)."""
    with pytest.raises(ClientError) as e:
        sbx.client("rds").failover_global_cluster(GlobalClusterIdentifier="g", TargetDbClusterIdentifier="c")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "not emulated" in e.value.response["Error"]["Message"]


def test_replica_lag_readable_over_rpcv2_cbor(sbx, monkeypatch):
    """The Rust SDK's CloudWatch client speaks smithy-rpc-v2-cbor, which moto does not
    understand; through the sandbox put/get of ReplicaLag work in CBOR, errors included."""
    import boto3
    import botocore.model
    from botocore.config import Config

    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS",
                        ("smithy-rpc-v2-cbor", "json", "rest-json", "rest-xml", "query", "ec2"))
    cw = boto3.session.Session().client("cloudwatch", region_name="us-west-2", endpoint_url=sbx.url,
                                        aws_access_key_id="t", aws_secret_access_key="t",
                                        config=Config(retries={"total_max_attempts": 1}))
    assert cw.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    sent = []
    cw.meta.events.register("before-send.*", lambda request, **kw: sent.append(request.headers.get("Content-Type")))
    _pair(sbx)
    sbx.control("POST", "/_sandbox/replica-lag", {"region": "us-west-2", "instance_id": "db1-replica", "seconds": 7})
    point = _lag(cw, "db1-replica")
    assert point["Maximum"] == 7 and isinstance(point["Timestamp"], datetime.datetime)
    cw.put_metric_data(Namespace="Custom", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert any(m["MetricName"] == "m" for m in cw.list_metrics(Namespace="Custom")["Metrics"])
    assert set(sent) == {b"application/cbor"} or set(sent) == {"application/cbor"}
    sbx.fault(region="us-west-2", service="cloudwatch", kind="errors", error="throttle")
    with pytest.raises(ClientError) as e:
        cw.list_metrics()
    assert e.value.response["Error"]["Code"] in ("Throttling", "ThrottlingException")


# --------------------------------------------------------------------------- stop, replicas, parameter groups, renames

def _code(e) -> str:
    return e.value.response["Error"]["Code"]


def _statuses(client, ident, until="available", timeout=10.0) -> list[str]:
    """The distinct statuses ``ident`` goes through, in order, until ``until``."""
    seen: list[str] = []

    def step():
        s = _db(client, ident)["DBInstanceStatus"]
        if not seen or seen[-1] != s:
            seen.append(s)
        return s == until

    wait_for(step, timeout=timeout, interval=0.02, what=f"{ident} {until}")
    return seen


def test_stop_refused_for_a_replica_and_for_its_source(sbx):
    """An instance that has a read replica, or is one, cannot be stopped: InvalidDBInstanceState
    (moto stops the source, and answers InvalidDBClusterStateFault for the replica). Once the
    replica is gone the source stops; a stopped instance cannot be modified."""
    e1, w2 = _pair(sbx)
    for client, ident in ((e1, "db1"), (w2, "db1-replica")):
        with pytest.raises(ClientError) as e:
            client.stop_db_instance(DBInstanceIdentifier=ident)
        assert _code(e) == "InvalidDBInstanceState" and e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert _db(e1, "db1")["DBInstanceStatus"] == "available"
    w2.delete_db_instance(DBInstanceIdentifier="db1-replica", SkipFinalSnapshot=True)
    assert e1.stop_db_instance(DBInstanceIdentifier="db1")["DBInstance"]["DBInstanceStatus"] == "stopped"
    with pytest.raises(ClientError) as e:
        e1.modify_db_instance(DBInstanceIdentifier="db1", NewDBInstanceIdentifier="db1-old", ApplyImmediately=True)
    assert _code(e) == "InvalidDBInstanceState" and "stopped" in e.value.response["Error"]["Message"]
    assert _db(e1, "db1")["DBInstanceStatus"] == "stopped"


def test_cross_region_replica_is_created_over_time_and_catches_up(sbx):
    """CreateDBInstanceReadReplica in the destination region with the source's ARN: the replica
    goes creating -> backing-up -> available, named with its source all along while the source
    lists its ARN; once available its ReplicaLag starts high and falls to 0 (moto: available at
    once, and the replica keeps the source region's parameter group and AZ). The clock is
    paused and stepped: each status is seen, and the lag is read at known times."""
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    src = e1.create_db_instance(DBInstanceIdentifier="db1", Engine="mysql", DBInstanceClass="db.t3.micro",
                                MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                                BackupRetentionPeriod=7)["DBInstance"]
    cw = sbx.client("cloudwatch", "us-west-2")
    with sbx.paused():
        r = w2.create_db_instance_read_replica(DBInstanceIdentifier="db1-replica", SourceDBInstanceIdentifier=src["DBInstanceArn"],
                                               DBInstanceClass="db.t3.micro")["DBInstance"]
        assert r["DBInstanceStatus"] == "creating" and r["ReadReplicaSourceDBInstanceIdentifier"] == src["DBInstanceArn"]
        assert r["AvailabilityZone"].startswith("us-west-2")
        assert r["DBParameterGroups"][0]["DBParameterGroupName"].startswith("default.mysql")
        assert _db(e1, "db1")["ReadReplicaDBInstanceIdentifiers"] == [r["DBInstanceArn"]]

        def status():
            d = _db(w2, "db1-replica")
            # Listed with its source all along.
            assert d["ReadReplicaSourceDBInstanceIdentifier"] == src["DBInstanceArn"]
            return d["DBInstanceStatus"]

        assert sbx.steps_until(status, lambda s: s == "available") == ["creating", "backing-up", "available"]
        # Published the moment it is available: replica_catchup_lag, 6 s x time scale 0.5.
        assert _lag(cw, "db1-replica")["Maximum"] == 3.0
        sbx.step(1.5)  # replica_catchup: 3 s x 0.5
    assert _lag(cw, "db1-replica")["Minimum"] == 0


def test_replica_sources_that_aws_refuses(sbx):
    """A cross-region replica of a replica, of an instance that is not available or has no
    automated backups, of an unknown instance, or under a taken id is refused with AWS's
    error codes (moto creates every one of them)."""
    e1, w2 = _pair(sbx)
    rep_arn = _db(w2, "db1-replica")["DBInstanceArn"]
    src_arn = _db(e1, "db1")["DBInstanceArn"]
    with pytest.raises(ClientError) as e:
        e1.create_db_instance_read_replica(DBInstanceIdentifier="cascade", SourceDBInstanceIdentifier=rep_arn)
    assert _code(e) == "InvalidDBInstanceState" and "read replica" in e.value.response["Error"]["Message"]
    for ident, retention in (("stopped-db", 1), ("no-backups", 0)):
        e1.create_db_instance(DBInstanceIdentifier=ident, Engine="mysql", DBInstanceClass="db.t3.micro",
                              MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                              BackupRetentionPeriod=retention)
    e1.stop_db_instance(DBInstanceIdentifier="stopped-db")
    for ident in ("stopped-db", "no-backups"):
        with pytest.raises(ClientError) as e:
            w2.create_db_instance_read_replica(DBInstanceIdentifier=f"{ident}-r", SourceDBInstanceIdentifier=
                                               _db(e1, ident)["DBInstanceArn"])
        assert _code(e) == "InvalidDBInstanceState", ident
    with pytest.raises(ClientError) as e:
        w2.create_db_instance_read_replica(DBInstanceIdentifier="db1-replica", SourceDBInstanceIdentifier=src_arn)
    assert _code(e) == "DBInstanceAlreadyExists"
    with pytest.raises(ClientError) as e:
        w2.create_db_instance_read_replica(DBInstanceIdentifier="x", SourceDBInstanceIdentifier=src_arn.replace("db1", "nope"))
    assert _code(e) == "DBInstanceNotFound"
    assert [d["DBInstanceIdentifier"] for d in w2.describe_db_instances()["DBInstances"]] == ["db1-replica"]


def _groups(client):
    client.create_db_parameter_group(DBParameterGroupName="app-rw", DBParameterGroupFamily="mysql8.0", Description="rw")
    client.create_db_parameter_group(DBParameterGroupName="app-ro", DBParameterGroupFamily="mysql8.0", Description="ro")
    client.modify_db_parameter_group(DBParameterGroupName="app-ro", Parameters=[
        {"ParameterName": "read_only", "ParameterValue": "1", "ApplyMethod": "immediate"}])


def _state_db(sbx, region, ident):
    st = sbx.control("GET", "/_sandbox/state")[1]
    return next(d for d in st["regions"][region]["databases"] if d["id"] == ident)


def _pg(client, ident):
    g = _db(client, ident)["DBParameterGroups"][0]
    return g["DBParameterGroupName"], g["ParameterApplyStatus"]


def test_parameter_group_fence_applies_at_reboot_or_at_once_when_dynamic(sbx):
    """Associating the read_only=1 group goes applying -> pending-reboot and fences only after
    a reboot ("the parameters are applied only after the DB instance is rebooted"); a dynamic
    change (ApplyMethod immediate) to the group an instance uses goes applying -> in-sync with
    no reboot. /_sandbox/state's writable/read_only follow what is in effect (moto: every
    group is in-sync at once, nothing is ever pending). The clock is paused: ``applying`` is
    seen every time, and not-yet-in-sync is checked while it is really not in sync."""
    e1 = sbx.client("rds")
    _groups(e1)
    params = e1.describe_db_parameters(DBParameterGroupName="app-ro")["Parameters"]
    assert {p["ParameterName"]: p["ParameterValue"] for p in params}["read_only"] == "1"
    e1.create_db_instance(DBInstanceIdentifier="db1", Engine="mysql", DBInstanceClass="db.t3.micro",
                          MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                          DBParameterGroupName="app-rw")
    assert _pg(e1, "db1") == ("app-rw", "in-sync")

    with sbx.paused():
        r = e1.modify_db_instance(DBInstanceIdentifier="db1", DBParameterGroupName="app-ro", ApplyImmediately=True)
        assert r["DBInstance"]["DBParameterGroups"] == [{"DBParameterGroupName": "app-ro", "ParameterApplyStatus": "applying"}]
        seen = sbx.steps_until(lambda: (_pg(e1, "db1"), _db(e1, "db1")["DBInstanceStatus"]),
                               lambda v: v == (("app-ro", "pending-reboot"), "available"))
        assert seen[0] == (("app-ro", "applying"), "modifying") and seen[-1] == (("app-ro", "pending-reboot"), "available")
        d = _state_db(sbx, "us-east-1", "db1")
        assert (d["parameter_group"], d["parameter_apply_status"], d["read_only"], d["writable"]) == \
            ("app-ro", "pending-reboot", False, True)
        e1.reboot_db_instance(DBInstanceIdentifier="db1")
        assert sbx.steps_until(lambda: _db(e1, "db1")["DBInstanceStatus"], lambda s: s == "available") == \
            ["rebooting", "available"]
        assert _pg(e1, "db1") == ("app-ro", "in-sync")
        d = _state_db(sbx, "us-east-1", "db1")
        assert (d["read_only"], d["writable"]) == (True, False)

        # A dynamic change to the group in use: applied without a reboot, after "applying".
        e1.modify_db_parameter_group(DBParameterGroupName="app-ro", Parameters=[
            {"ParameterName": "read_only", "ParameterValue": "0", "ApplyMethod": "immediate"}])
        assert _pg(e1, "db1") == ("app-ro", "applying")
        assert _state_db(sbx, "us-east-1", "db1")["writable"] is False  # not before it is in-sync
        assert sbx.steps_until(lambda: _pg(e1, "db1"), lambda v: v == ("app-ro", "in-sync")) == \
            [("app-ro", "applying"), ("app-ro", "in-sync")]
        assert _state_db(sbx, "us-east-1", "db1")["writable"] is True
        # pending-reboot: waits for the next reboot.
        e1.modify_db_parameter_group(DBParameterGroupName="app-ro", Parameters=[
            {"ParameterName": "read_only", "ParameterValue": "1", "ApplyMethod": "pending-reboot"}])
        assert sbx.steps_until(lambda: _pg(e1, "db1"), lambda v: v == ("app-ro", "pending-reboot"))[-1] == \
            ("app-ro", "pending-reboot")
        assert _state_db(sbx, "us-east-1", "db1")["writable"] is True


def test_rename_moves_the_instance_and_its_links(sbx):
    """NewDBInstanceIdentifier with ApplyImmediately: renaming (old id, PendingModifiedValues
    naming the new one), then available under the new id only; replica links, tags and ARNs
    follow; a taken id is DBInstanceAlreadyExists (moto renames on the spot, stays
    available, and overwrites a taken id)."""
    e1, w2 = _pair(sbx)
    src_arn = _db(e1, "db1")["DBInstanceArn"]
    e1.add_tags_to_resource(ResourceName=src_arn, Tags=[{"Key": "role", "Value": "primary"}])
    w2.create_db_instance(DBInstanceIdentifier="taken", Engine="mysql", DBInstanceClass="db.t3.micro",
                          MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20)
    with pytest.raises(ClientError) as e:
        w2.modify_db_instance(DBInstanceIdentifier="db1-replica", NewDBInstanceIdentifier="taken", ApplyImmediately=True)
    assert _code(e) == "DBInstanceAlreadyExists"

    with sbx.paused():
        r = e1.modify_db_instance(DBInstanceIdentifier="db1", NewDBInstanceIdentifier="db1-old", ApplyImmediately=True)["DBInstance"]
        assert (r["DBInstanceIdentifier"], r["DBInstanceStatus"], r["PendingModifiedValues"]) == \
            ("db1", "renaming", {"DBInstanceIdentifier": "db1-old"})
        listing = lambda: [(d["DBInstanceIdentifier"], d["DBInstanceStatus"])  # noqa: E731
                           for d in e1.describe_db_instances()["DBInstances"]]
        assert sbx.steps_until(listing, lambda v: v == [("db1-old", "available")]) == \
            [[("db1", "renaming")], [("db1-old", "available")]]
    with pytest.raises(ClientError) as e:
        _db(e1, "db1")
    assert _code(e) == "DBInstanceNotFound"
    new_arn = _db(e1, "db1-old")["DBInstanceArn"]
    assert new_arn.endswith(":db:db1-old") and "PendingModifiedValues" not in _db(e1, "db1-old")
    assert _db(w2, "db1-replica")["ReadReplicaSourceDBInstanceIdentifier"] == new_arn
    assert e1.list_tags_for_resource(ResourceName=new_arn)["TagList"] == [{"Key": "role", "Value": "primary"}]

    # Without ApplyImmediately the rename waits (no maintenance window here); applying it later does it.
    r = w2.modify_db_instance(DBInstanceIdentifier="db1-replica", NewDBInstanceIdentifier="db1-standby")["DBInstance"]
    assert r["DBInstanceStatus"] == "available" and r["PendingModifiedValues"] == {"DBInstanceIdentifier": "db1-standby"}
    assert _db(w2, "db1-replica")["DBInstanceIdentifier"] == "db1-replica"
    w2.modify_db_instance(DBInstanceIdentifier="db1-replica", ApplyImmediately=True)
    wait_for(lambda: sorted(d["DBInstanceIdentifier"] for d in w2.describe_db_instances()["DBInstances"]) ==
             ["db1-standby", "taken"], timeout=5, what="second rename")
    wait_for(lambda: _db(w2, "db1-standby")["DBInstanceStatus"] == "available", timeout=5)
    assert _db(e1, "db1-old")["ReadReplicaDBInstanceIdentifiers"] == [_db(w2, "db1-standby")["DBInstanceArn"]]
    st = sbx.control("GET", "/_sandbox/state")[1]
    assert st["replica_links"] == [{"replica": "us-west-2/db1-standby", "source": new_arn}]


# --------------------------------------------------------------------------- harsher RDS: backing-up, KMS, VPC, 7 days

def _source(e1, ident="db1", **kw):
    return e1.create_db_instance(DBInstanceIdentifier=ident, Engine="mysql", DBInstanceClass="db.t3.micro",
                                 MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                                 BackupRetentionPeriod=7, **kw)["DBInstance"]


def test_promote_refused_while_the_replica_is_backing_up(sbx):
    """PromoteReadReplica API reference: "a read replica cannot be promoted to a standalone
    instance when it is in the backing-up status" -> InvalidDBInstanceState; once available
    the promotion goes modifying -> rebooting -> available ("RDS reboots the DB instance before
    making it available", User Guide, promoting a read replica). Plain moto promotes a
    backing-up (or creating) replica at once."""
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    src = _source(e1)
    with sbx.paused():
        w2.create_db_instance_read_replica(DBInstanceIdentifier="db1-replica", SourceDBInstanceIdentifier=src["DBInstanceArn"])
        sbx.steps_until(lambda: _db(w2, "db1-replica")["DBInstanceStatus"], lambda s: s == "backing-up")
        with pytest.raises(ClientError) as e:
            w2.promote_read_replica(DBInstanceIdentifier="db1-replica")
        assert _code(e) == "InvalidDBInstanceState" and "backing-up" in e.value.response["Error"]["Message"]
        assert _db(w2, "db1-replica")["DBInstanceStatus"] == "backing-up"  # nothing changed
        assert _db(w2, "db1-replica")["ReadReplicaSourceDBInstanceIdentifier"] == src["DBInstanceArn"]
        sbx.steps_until(lambda: _db(w2, "db1-replica")["DBInstanceStatus"], lambda s: s == "available")
        assert w2.promote_read_replica(DBInstanceIdentifier="db1-replica")["DBInstance"]["DBInstanceStatus"] == "modifying"
        assert sbx.steps_until(lambda: _db(w2, "db1-replica")["DBInstanceStatus"], lambda s: s == "available") == \
            ["modifying", "rebooting", "available"]


def test_cross_region_replica_of_an_encrypted_source_needs_a_kms_key_there(sbx):
    """CreateDBInstanceReadReplica API reference, KmsKeyId: "If you create an encrypted read
    replica in a different AWS Region, then you must specify a KMS key identifier for the
    destination AWS Region. KMS keys are specific to the AWS Region that they are created in";
    a same-region replica uses the source's key; an unencrypted source has no encrypted
    replica. Without a key: InvalidParameterCombination (AWS: "Cannot create a cross region
    unencrypted read replica from encrypted source."); a key of another region or an unknown
    one: KMSKeyNotAccessibleFault; with the destination's key the replica is encrypted with
    it. Plain moto creates every one of these, the cross-region replica with the source's key."""
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    src = _source(e1, StorageEncrypted=True)
    key_east = sbx.client("kms", "us-east-1").create_key()["KeyMetadata"]["Arn"]
    kms_west = sbx.client("kms", "us-west-2")
    key_west = kms_west.create_key()["KeyMetadata"]["Arn"]
    kms_west.create_alias(AliasName="alias/db-west", TargetKeyId=key_west)

    def refused(client, **kw):
        with pytest.raises(ClientError) as e:
            client.create_db_instance_read_replica(SourceDBInstanceIdentifier=src["DBInstanceArn"], **kw)
        return _code(e), e.value.response["Error"]["Message"]

    assert refused(w2, DBInstanceIdentifier="r1") == \
        ("InvalidParameterCombination", "Cannot create a cross region unencrypted read replica from encrypted source.")
    assert refused(w2, DBInstanceIdentifier="r1", KmsKeyId=key_east)[0] == "KMSKeyNotAccessibleFault"
    assert refused(w2, DBInstanceIdentifier="r1", KmsKeyId="alias/nope")[0] == "KMSKeyNotAccessibleFault"
    assert refused(e1, DBInstanceIdentifier="r-same", KmsKeyId=key_east)[0] == "InvalidParameterCombination"
    assert [d["DBInstanceIdentifier"] for d in w2.describe_db_instances()["DBInstances"]] == []

    r = w2.create_db_instance_read_replica(DBInstanceIdentifier="r1", SourceDBInstanceIdentifier=src["DBInstanceArn"],
                                           KmsKeyId="alias/db-west")["DBInstance"]
    assert (r["StorageEncrypted"], r["KmsKeyId"]) == (True, key_west)
    same = e1.create_db_instance_read_replica(DBInstanceIdentifier="r-same", SourceDBInstanceIdentifier="db1")["DBInstance"]
    assert (same["StorageEncrypted"], same["KmsKeyId"]) == (True, src["KmsKeyId"])

    plain = _source(e1, "plain")
    with pytest.raises(ClientError) as e:
        w2.create_db_instance_read_replica(DBInstanceIdentifier="r2", SourceDBInstanceIdentifier=plain["DBInstanceArn"],
                                           KmsKeyId=key_west)
    assert _code(e) == "InvalidParameterCombination"
    r2 = w2.create_db_instance_read_replica(DBInstanceIdentifier="r2", SourceDBInstanceIdentifier=plain["DBInstanceArn"])
    assert r2["DBInstance"]["StorageEncrypted"] is False


def test_an_instance_without_a_db_subnet_group_is_not_in_a_vpc(sbx):
    """CreateDBInstanceReadReplica API reference, DBSubnetGroupName: "If no DB subnet group is
    specified, then the new DB instance isn't created in a VPC." Such an instance shows no
    DBSubnetGroup and no VPC security groups, and /_sandbox/state says ``in_vpc: false``; a
    replica given a subnet group of its own region is in that group's VPC. Plain moto gives
    every instance the default VPC's default security group, and a cross-region replica its
    source's subnet group and security groups."""
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    ec2e, ec2w = sbx.client("ec2", "us-east-1"), sbx.client("ec2", "us-west-2")
    vpc_e = ec2e.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets_e = [ec2e.create_subnet(VpcId=vpc_e, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"us-east-1{az}")
                 ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    e1.create_db_subnet_group(DBSubnetGroupName="db-e", DBSubnetGroupDescription="e", SubnetIds=subnets_e)
    src = _source(e1, DBSubnetGroupName="db-e")
    assert src["DBSubnetGroup"]["VpcId"] == vpc_e
    bare = _source(e1, "bare")
    assert "DBSubnetGroup" not in bare and bare["VpcSecurityGroups"] == []

    outside = w2.create_db_instance_read_replica(DBInstanceIdentifier="outside",
                                                 SourceDBInstanceIdentifier=src["DBInstanceArn"])["DBInstance"]
    assert "DBSubnetGroup" not in outside and outside["VpcSecurityGroups"] == []
    with pytest.raises(ClientError) as e:
        w2.create_db_instance_read_replica(DBInstanceIdentifier="inside", SourceDBInstanceIdentifier=src["DBInstanceArn"],
                                           DBSubnetGroupName="db-e")  # the source region's group
    assert _code(e) == "DBSubnetGroupNotFoundFault"
    vpc_w = ec2w.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    subnets_w = [ec2w.create_subnet(VpcId=vpc_w, CidrBlock=f"10.2.{i}.0/24", AvailabilityZone=f"us-west-2{az}")
                 ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    w2.create_db_subnet_group(DBSubnetGroupName="db-w", DBSubnetGroupDescription="w", SubnetIds=subnets_w)
    inside = w2.create_db_instance_read_replica(DBInstanceIdentifier="inside", SourceDBInstanceIdentifier=src["DBInstanceArn"],
                                                DBSubnetGroupName="db-w")["DBInstance"]
    assert inside["DBSubnetGroup"]["VpcId"] == vpc_w
    sg = ec2w.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_w]},
                                                {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    assert [g["VpcSecurityGroupId"] for g in inside["VpcSecurityGroups"]] == [sg["GroupId"]]
    dbs = {d["id"]: d for r in ("us-east-1", "us-west-2")
           for d in sbx.control("GET", "/_sandbox/state")[1]["regions"][r]["databases"]}
    assert {i: (dbs[i]["in_vpc"], dbs[i]["db_subnet_group"]) for i in ("db1", "bare", "outside", "inside")} == \
        {"db1": (True, "db-e"), "bare": (False, None), "outside": (False, None), "inside": (True, "db-w")}


def _vpc_with_group(ec2, rds, region, cidr, name):
    """A VPC with two subnets and a DB subnet group over them: (vpc id, its default sg id)."""
    vpc = ec2.create_vpc(CidrBlock=f"{cidr}.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr}.{i}.0/24", AvailabilityZone=f"{region}{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    rds.create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription=name, SubnetIds=subnets)
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                    {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    return vpc, default[0]["GroupId"]


def _vpc_groups(db) -> list[str]:
    return [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]]


def test_a_replicas_security_groups_must_be_of_its_subnet_groups_vpc(sbx):
    """CreateDBInstanceReadReplica VpcSecurityGroupIds with DBSubnetGroupName: the replica gets
    exactly the groups named, else "the default EC2 VPC security group for the DB subnet group's
    VPC" (API reference). A group of another VPC is InvalidParameterCombination ("The DB instance
    and EC2 security group are in different VPCs ..."), one of another region is unknown there
    (InvalidParameterValue "Invalid security group , groupId= ..."), groups without a subnet
    group (not in a VPC) InvalidParameterCombination; nothing is created. Plain moto creates all
    of them, with whatever ids it is given, and gives a replica named no groups its source's."""
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    ec2e, ec2w = sbx.client("ec2", "us-east-1"), sbx.client("ec2", "us-west-2")
    vpc_e, default_e = _vpc_with_group(ec2e, e1, "us-east-1", "10.1", "db-e")
    sg_e = ec2e.create_security_group(GroupName="db-e", Description="e", VpcId=vpc_e)["GroupId"]
    src = _source(e1, DBSubnetGroupName="db-e", VpcSecurityGroupIds=[sg_e])
    assert _vpc_groups(src) == [sg_e]
    vpc_w, default_w = _vpc_with_group(ec2w, w2, "us-west-2", "10.2", "db-w")
    sg_w = ec2w.create_security_group(GroupName="db-w", Description="w", VpcId=vpc_w)["GroupId"]
    other = ec2w.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    sg_other = ec2w.create_security_group(GroupName="elsewhere", Description="x", VpcId=other)["GroupId"]

    def refused(**kw):
        with pytest.raises(ClientError) as e:
            w2.create_db_instance_read_replica(DBInstanceIdentifier="r1", SourceDBInstanceIdentifier=src["DBInstanceArn"],
                                               **kw)
        return _code(e), e.value.response["Error"]["Message"]

    assert refused(DBSubnetGroupName="db-w", VpcSecurityGroupIds=[sg_other]) == (
        "InvalidParameterCombination", "The DB instance and EC2 security group are in different VPCs. The DB instance "
        f"is in {vpc_w} and the EC2 security group is in {other}")
    assert refused(DBSubnetGroupName="db-w", VpcSecurityGroupIds=[sg_w, sg_e]) == (
        "InvalidParameterValue", f"Invalid security group , groupId= {sg_e}, groupName=.")
    assert refused(VpcSecurityGroupIds=[sg_w]) == (
        "InvalidParameterCombination", "VPC Security Groups cannot be associated with non-VPC DB Instances.")
    assert w2.describe_db_instances()["DBInstances"] == []

    named = w2.create_db_instance_read_replica(DBInstanceIdentifier="r1", SourceDBInstanceIdentifier=src["DBInstanceArn"],
                                               DBSubnetGroupName="db-w", VpcSecurityGroupIds=[sg_w])["DBInstance"]
    assert (named["DBSubnetGroup"]["VpcId"], _vpc_groups(named)) == (vpc_w, [sg_w])
    default = w2.create_db_instance_read_replica(DBInstanceIdentifier="r2", SourceDBInstanceIdentifier=src["DBInstanceArn"],
                                                 DBSubnetGroupName="db-w")["DBInstance"]
    assert _vpc_groups(default) == [default_w]  # not the source's sg_e
    same = e1.create_db_instance_read_replica(DBInstanceIdentifier="r-same", SourceDBInstanceIdentifier="db1",
                                              DBSubnetGroupName="db-e")["DBInstance"]
    assert _vpc_groups(same) == [default_e]  # the VPC's default group, not the source's
    dbs = {d["id"]: d for r in ("us-east-1", "us-west-2")
           for d in sbx.control("GET", "/_sandbox/state")[1]["regions"][r]["databases"]}
    assert {i: (dbs[i]["in_vpc"], dbs[i]["vpc_security_groups"]) for i in ("db1", "r1", "r2")} == \
        {"db1": (True, [sg_e]), "r1": (True, [sg_w]), "r2": (True, [default_w])}


def test_create_instance_checks_its_security_groups_and_kms_key(sbx):
    """CreateDBInstance: with DBSubnetGroupName and no VpcSecurityGroupIds the instance gets its
    subnet group's VPC's default group (API reference, VpcSecurityGroupIds: "Default: The
    default EC2 VPC security group for the DB subnet group's VPC"); groups of another VPC or
    unknown ones are refused as for a replica. StorageEncrypted: KmsKeyId (id, ARN, alias) must
    be an enabled key of the region (KMSKeyNotAccessibleFault) and describe shows its ARN;
    without one the region's AWS managed key alias/aws/rds ("Amazon RDS uses your default KMS
    key"). /_sandbox/state shows storage_encrypted, kms_key_id and vpc_security_groups. Plain
    moto gives the default VPC's default group, takes any group id, stores KmsKeyId as given
    (an alias, another region's key) and "default_kms_key_id" without one."""
    e1, ec2 = sbx.client("rds", "us-east-1"), sbx.client("ec2", "us-east-1")
    vpc, default = _vpc_with_group(ec2, e1, "us-east-1", "10.4", "db-e")
    other = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
    sg_other = ec2.create_security_group(GroupName="elsewhere", Description="x", VpcId=other)["GroupId"]
    kms = sbx.client("kms", "us-east-1")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/db", TargetKeyId=key)
    key_west = sbx.client("kms", "us-west-2").create_key()["KeyMetadata"]["Arn"]

    def refused(**kw):
        with pytest.raises(ClientError) as e:
            _source(e1, "x", **kw)
        return _code(e)

    assert refused(DBSubnetGroupName="db-e", VpcSecurityGroupIds=[sg_other]) == "InvalidParameterCombination"
    assert refused(DBSubnetGroupName="db-e", VpcSecurityGroupIds=["sg-0123456789abcdef0"]) == "InvalidParameterValue"
    assert refused(StorageEncrypted=True, KmsKeyId=key_west) == "KMSKeyNotAccessibleFault"
    assert refused(StorageEncrypted=True, KmsKeyId="alias/nope") == "KMSKeyNotAccessibleFault"
    assert [d["DBInstanceIdentifier"] for d in e1.describe_db_instances()["DBInstances"]] == []

    placed = _source(e1, "placed", DBSubnetGroupName="db-e", StorageEncrypted=True, KmsKeyId="alias/db")
    assert (placed["DBSubnetGroup"]["VpcId"], _vpc_groups(placed)) == (vpc, [default])
    assert (placed["StorageEncrypted"], placed["KmsKeyId"]) == (True, key)
    managed = _source(e1, "managed", StorageEncrypted=True)
    aws_rds = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"]
    assert (managed["StorageEncrypted"], managed["KmsKeyId"]) == (True, aws_rds)
    plain = _source(e1, "plain")
    assert plain["StorageEncrypted"] is False and "KmsKeyId" not in plain
    dbs = {d["id"]: d for d in sbx.control("GET", "/_sandbox/state")[1]["regions"]["us-east-1"]["databases"]}
    assert {i: (dbs[i]["storage_encrypted"], dbs[i]["kms_key_id"], dbs[i]["vpc_security_groups"])
            for i in ("placed", "managed", "plain")} == \
        {"placed": (True, key, [default]), "managed": (True, aws_rds, []), "plain": (False, None, [])}


def test_reprotect_replica_of_the_promoted_standby_needs_a_key_and_subnet_group_of_us_east_1(seeded):
    """Reprotect as drctl does it after a failover: CreateDBInstanceReadReplica in us-east-1 with
    SourceDBInstanceIdentifier = the promoted us-west-2 writer's ARN. The seeded writer is
    encrypted, so without KmsKeyId it is InvalidParameterCombination ("Cannot create a cross
    region unencrypted read replica from encrypted source."), with the us-west-2 key
    KMSKeyNotAccessibleFault ("KMS keys are specific to the AWS Region that they are created
    in"), with us-west-2's security group InvalidParameterValue (unknown in us-east-1); with the
    us-east-1 key, subnet group and security group drctl.yaml names it is created, encrypted with
    that key and in that VPC (``in_vpc``). Plain moto creates every one of these, with the
    source's key, subnet group and security groups."""
    sbx, topo, out = seeded
    conf = yaml.safe_load((out / "drctl.yaml").read_text())["regions"]
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    writer = topo["regions"]["us-west-2"]["database"]
    with sbx.paused():
        w2.promote_read_replica(DBInstanceIdentifier=writer["instance_id"])
        sbx.steps_until(lambda: _db(w2, writer["instance_id"])["DBInstanceStatus"], lambda s: s == "available")
    assert "ReadReplicaSourceDBInstanceIdentifier" not in _db(w2, writer["instance_id"])
    east = conf["us-east-1"]["database"]

    def refused(**kw):
        with pytest.raises(ClientError) as e:
            e1.create_db_instance_read_replica(DBInstanceIdentifier="shop-db-use1-new",
                                               SourceDBInstanceIdentifier=writer["arn"], **kw)
        return _code(e), e.value.response["Error"]["Message"]

    assert refused(DBSubnetGroupName=east["subnet_group"], VpcSecurityGroupIds=east["security_group_ids"]) == \
        ("InvalidParameterCombination", "Cannot create a cross region unencrypted read replica from encrypted source.")
    assert refused(KmsKeyId=conf["us-west-2"]["database"]["kms_key_id"], DBSubnetGroupName=east["subnet_group"])[0] == \
        "KMSKeyNotAccessibleFault"
    assert refused(KmsKeyId=east["kms_key_id"], DBSubnetGroupName=east["subnet_group"],
                   VpcSecurityGroupIds=conf["us-west-2"]["database"]["security_group_ids"])[0] == "InvalidParameterValue"
    assert "shop-db-use1-new" not in {d["DBInstanceIdentifier"] for d in e1.describe_db_instances()["DBInstances"]}

    with sbx.paused():
        new = e1.create_db_instance_read_replica(
            DBInstanceIdentifier="shop-db-use1-new", SourceDBInstanceIdentifier=writer["arn"],
            DBParameterGroupName=east["parameter_group"], KmsKeyId=east["kms_key_id"],
            DBSubnetGroupName=east["subnet_group"], VpcSecurityGroupIds=east["security_group_ids"])["DBInstance"]
        assert new["DBInstanceStatus"] == "creating"
        sbx.steps_until(lambda: _db(e1, "shop-db-use1-new")["DBInstanceStatus"], lambda s: s == "available")
    live = _db(e1, "shop-db-use1-new")
    assert live["ReadReplicaSourceDBInstanceIdentifier"] == writer["arn"]
    assert (live["StorageEncrypted"], live["KmsKeyId"]) == (True, east["kms_key_id"])
    assert (live["DBSubnetGroup"]["DBSubnetGroupName"], live["DBSubnetGroup"]["VpcId"]) == \
        (east["subnet_group"], topo["regions"]["us-east-1"]["network"]["vpc_id"])
    assert _vpc_groups(live) == east["security_group_ids"]
    st = next(d for d in sbx.control("GET", "/_sandbox/state")[1]["regions"]["us-east-1"]["databases"]
              if d["id"] == "shop-db-use1-new")
    assert (st["role"], st["in_vpc"], st["db_subnet_group"], st["storage_encrypted"], st["kms_key_id"],
            st["vpc_security_groups"]) == ("replica", True, east["subnet_group"], True, east["kms_key_id"],
                                           east["security_group_ids"])


def test_a_stopped_instance_is_started_again_after_seven_days(sbx):
    """RDS User Guide, "Stopping an Amazon RDS DB instance temporarily": "You can stop a DB
    instance for up to seven days. If you don't manually start your DB instance after seven
    days, your DB instance is automatically started." On the sandbox clock, after
    ``rds_stopped_auto_start`` (instant profile: 4 h, x time scale 0.5); a manual start and a
    new stop start the count again. Plain moto keeps it stopped for ever."""
    e1 = sbx.client("rds")
    _source(e1)
    days = 14400 * 0.5
    with sbx.paused():
        e1.stop_db_instance(DBInstanceIdentifier="db1")
        sbx.step(days - 60)
        assert _db(e1, "db1")["DBInstanceStatus"] == "stopped"
        e1.start_db_instance(DBInstanceIdentifier="db1")
        e1.stop_db_instance(DBInstanceIdentifier="db1")  # a new stop: a new seven days
        sbx.step(120)
        assert _db(e1, "db1")["DBInstanceStatus"] == "stopped"
        # The deadline is an event of the clock: one step with no seconds goes there.
        before = sbx.control("GET", "/_sandbox/clock")[1]["now"]
        sbx.step()
        assert sbx.control("GET", "/_sandbox/clock")[1]["now"] - before == pytest.approx(days - 120, abs=0.01)
        assert _db(e1, "db1")["DBInstanceStatus"] == "available"
        assert _state_db(sbx, "us-east-1", "db1")["writable"] is True

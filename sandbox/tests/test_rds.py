"""RDS: timed promotion that unlinks the replica, reboot/modify transitions, ReplicaLag.

Plain moto promotes instantly and keeps ReadReplicaSourceDBInstanceIdentifier, promotes a
non-replica, has no reboot/modify transitions, accepts ForceFailover on single-AZ, has no
ReplicaLag data and answers Aurora global failover with an HTML 500.
"""

import datetime

import pytest
from botocore.exceptions import ClientError

from conftest import wait_for


def _pair(sbx, multi_az=False):
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    src = e1.create_db_instance(DBInstanceIdentifier="db1", Engine="mysql", DBInstanceClass="db.t3.micro",
                                MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                                MultiAZ=multi_az)["DBInstance"]
    w2.create_db_instance_read_replica(DBInstanceIdentifier="db1-replica", SourceDBInstanceIdentifier=src["DBInstanceArn"],
                                       SourceRegion="us-east-1", DBInstanceClass="db.t3.micro")
    return e1, w2


def _db(client, ident):
    return client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]


def test_promotion_transitions_and_unlinks(sbx):
    """modifying -> rebooting -> available, then the replica names no source and the source
    no longer lists it (moto: available at once, links kept on both sides)."""
    e1, w2 = _pair(sbx)
    assert _db(e1, "db1")["ReadReplicaDBInstanceIdentifiers"]
    r = w2.promote_read_replica(DBInstanceIdentifier="db1-replica", BackupRetentionPeriod=3)["DBInstance"]
    assert r["DBInstanceStatus"] == "modifying"
    seen = set()
    wait_for(lambda: seen.add(_db(w2, "db1-replica")["DBInstanceStatus"]) or "available" in seen, timeout=5)
    assert {"modifying", "rebooting"} & seen
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
    (moto: no transition, ForceFailover accepted on single-AZ)."""
    e1, _ = _pair(sbx)
    with pytest.raises(ClientError) as e:
        e1.reboot_db_instance(DBInstanceIdentifier="db1", ForceFailover=True)
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert e1.reboot_db_instance(DBInstanceIdentifier="db1")["DBInstance"]["DBInstanceStatus"] == "rebooting"
    with pytest.raises(ClientError) as e:
        e1.reboot_db_instance(DBInstanceIdentifier="db1")
    assert e.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    wait_for(lambda: _db(e1, "db1")["DBInstanceStatus"] == "available", timeout=5)
    e1.create_db_instance(DBInstanceIdentifier="maz", Engine="mysql", DBInstanceClass="db.t3.micro",
                          MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20, MultiAZ=True)
    az = _db(e1, "maz")["AvailabilityZone"]
    assert e1.reboot_db_instance(DBInstanceIdentifier="maz", ForceFailover=True)["DBInstance"]["DBInstanceStatus"] == "rebooting"
    wait_for(lambda: _db(e1, "maz")["DBInstanceStatus"] == "available", timeout=5)
    assert _db(e1, "maz")["AvailabilityZone"] != az


def test_modify_apply_immediately_transitions(sbx):
    """modify with ApplyImmediately goes modifying -> available (moto: stays available)."""
    e1, _ = _pair(sbx)
    r = e1.modify_db_instance(DBInstanceIdentifier="db1", DBInstanceClass="db.t3.small", ApplyImmediately=True)
    assert r["DBInstance"]["DBInstanceStatus"] == "modifying"
    wait_for(lambda: _db(e1, "db1")["DBInstanceStatus"] == "available", timeout=5)
    assert _db(e1, "db1")["DBInstanceClass"] == "db.t3.small"


def _lag(cw, ident):
    now = datetime.datetime.now(datetime.timezone.utc)
    r = cw.get_metric_statistics(Namespace="AWS/RDS", MetricName="ReplicaLag",
                                 Dimensions=[{"Name": "DBInstanceIdentifier", "Value": ident}],
                                 StartTime=now - datetime.timedelta(minutes=10), EndTime=now + datetime.timedelta(minutes=1),
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


def test_replica_lag_grows_during_source_outage(sbx):
    """While the source region is down the replica falls behind: ReplicaLag grows."""
    _pair(sbx)
    sbx.fault(region="us-east-1", kind="outage")
    cw = sbx.client("cloudwatch", "us-west-2")
    wait_for(lambda: (_lag(cw, "db1-replica") or {}).get("Maximum", 0) >= 0.5, timeout=6, what="growing lag")


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

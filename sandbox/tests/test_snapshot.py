"""Snapshots (POST /_sandbox/snapshot, /_sandbox/restore): a restored sandbox cannot be told
apart from a freshly seeded one, restores take well under a second, and a snapshot refuses
to hold a transition in progress.

"Told apart" is checked the way drctl and a person would look: the control API's state, the
call log and listeners, HTTP answers of every ALB in drctl.yaml and of both edges, and AWS
reads (RDS, Route 53, CloudFront, Auto Scaling, ELBv2, EC2, DynamoDB, Backup). Sandbox A
restored must equal A at save time exactly (ids, ports, timestamps, round-robin positions
and all); A must equal a separately started, freshly seeded sandbox B once the ids that are
random per seed are normalised. Plain moto has no /_sandbox API at all.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
import urllib.error

import pytest
import yaml
from botocore.exceptions import ClientError, ReadTimeoutError

from conftest import TIME_SCALE, Proc, Sandbox, http_get, restore, run_cli, wait_for

REGIONS = ("us-east-1", "us-west-2")


# --------------------------------------------------------------------------- looking

def _answer(url: str) -> tuple:
    """What a client sees at ``url``: status, body and the sandbox's headers, or the error."""
    try:
        status, body, headers = http_get(url, timeout=3)
    except (urllib.error.URLError, OSError) as e:
        return ("error", type(getattr(e, "reason", e)).__name__)
    keep = {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-") or k.lower() == "via"}
    return (status, body, keep)


def observe(sbx: Sandbox, topo: dict, cfg: dict) -> dict:
    """Everything a test can see of the sandbox, read in a fixed order. Reading changes two
    things (the call log grows, and GETs move the ALBs' round robin), so the call log is read
    first; two observations starting from the same state are equal."""
    obs: dict = {}
    calls = sbx.control("GET", "/_sandbox/calls")[1]
    obs["calls"] = {k: calls[k] for k in ("calls", "mutating", "dropped")}
    obs["state"] = sbx.control("GET", "/_sandbox/state")[1]
    obs["listeners"] = sbx.control("GET", "/_sandbox/listeners")[1]["listeners"]
    obs["edges"] = sbx.control("GET", "/_sandbox/edges")[1]
    obs["faults"] = sbx.control("GET", "/_sandbox/faults")[1]
    obs["clock"] = {k: v for k, v in sbx.control("GET", "/_sandbox/clock")[1].items() if k != "now"}

    aws: dict = {}
    for r in REGIONS:
        rds, asg, elb = sbx.client("rds", r), sbx.client("autoscaling", r), sbx.client("elbv2", r)
        aws[f"rds {r}"] = rds.describe_db_instances()["DBInstances"]
        aws[f"asg {r}"] = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
        aws[f"elbv2 {r}"] = elb.describe_load_balancers()["LoadBalancers"]
        aws[f"ec2 {r}"] = sorted((i["InstanceId"], i["State"]["Name"], i["ImageId"]) for res in sbx.client(
            "ec2", r).describe_instances()["Reservations"] for i in res["Instances"])
        aws[f"backup {r}"] = sbx.client("backup", r).list_backup_jobs()["BackupJobs"]
        aws[f"points {r}"] = sbx.client("backup", r).list_recovery_points_by_backup_vault(
            BackupVaultName=topo["regions"][r]["backup_vault"]["name"])["RecoveryPoints"]
        # The databases' network and keys (seeded per region): DB subnet groups, KMS keys, aliases.
        aws[f"subnet groups {r}"] = rds.describe_db_subnet_groups()["DBSubnetGroups"]
        kms = sbx.client("kms", r)
        aws[f"kms keys {r}"] = [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in kms.list_keys()["Keys"]]
        aws[f"kms aliases {r}"] = kms.list_aliases()["Aliases"]
    r53 = sbx.client("route53")
    zones = {"public": topo["route53"]["public_zone_id"],
             **{f"private {r}": topo["regions"][r]["database"]["private_zone_id"] for r in REGIONS}}
    for what, z in zones.items():
        aws[f"records {what}"] = r53.list_resource_record_sets(HostedZoneId=z)["ResourceRecordSets"]
    aws["health checks"] = r53.list_health_checks()["HealthChecks"]
    aws["health"] = r53.get_health_check_status(HealthCheckId=topo["route53"]["health_check_id"])[
        "HealthCheckObservations"]
    aws["dns answer"] = r53.test_dns_answer(HostedZoneId=topo["route53"]["public_zone_id"],
                                            RecordName=topo["route53"]["record_name"], RecordType="A")["RecordData"]
    cf = sbx.client("cloudfront")
    dist = cf.get_distribution_config(Id=topo["cloudfront"]["distribution_id"])
    aws["distribution config"] = {"config": dist["DistributionConfig"], "ETag": dist["ETag"]}
    aws["distribution status"] = cf.get_distribution(Id=topo["cloudfront"]["distribution_id"])["Distribution"]["Status"]
    aws["tables"] = {r: sbx.client("dynamodb", r).list_tables()["TableNames"] for r in ("us-east-1", "us-east-2")}
    aws["metrics"] = sbx.client("cloudwatch", "us-west-2").list_metrics()["Metrics"]
    obs["aws"] = json.loads(json.dumps(aws, default=str))
    for r in REGIONS:
        for db in obs["aws"][f"rds {r}"]:
            # Not state: moto answers the wall-clock time of the request.
            db["LatestRestorableTime"] = "now"

    http: dict = {}
    for r, reg in cfg["regions"].items():
        for tier, alb in reg["albs"].items():
            for path in ("/", "/health", "/db"):
                http[f"{r} {tier} {path}"] = _answer(alb["url"] + path)
    http["drill"] = _answer(cfg["drill"]["load_balancer"]["url"] + "/health")
    for path in ("/", "/db"):
        http[f"public {path}"] = _answer(topo["route53"]["public_url"] + path)
        http[f"cdn {path}"] = _answer(topo["cloudfront"]["url"] + path)
    obs["http"] = http
    return obs


# Ids and values that are random per seed (or per process), and what they become.
_RANDOM = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "UUID"),
    (re.compile(r"\b(vpc|subnet|sg|i|ami|lt|eni|igw|rtb|acl|vol|snap|r|db|eipalloc)-[0-9a-zA-Z]{8,26}\b"), r"\1-ID"),
    (re.compile(r"-\d{6,}\.(us-[a-z]+-\d)\.elb\.amazonaws\.com"), r"-N.\1.elb.amazonaws.com"),
    (re.compile(r"/(app|targetgroup|listener/app/[^/]+|net)/([^/\"]+)/[0-9a-f]{16}"), r"/\1/\2/HEX"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "HEX"),
    (re.compile(r"/change/C[0-9A-Z]{13}"), "/change/CHANGE"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?"), "TIME"),
]
_TIME_KEYS = {"time", "created", "CreationDate", "CompletionDate", "InitiationDate", "ExpectedCompletionDate",
              "LastModifiedTime", "CreatedTime", "CheckedTime"}


# The seed's own random ids, by where topology.json names them.
_TOPOLOGY_IDS = [("route53", "public_zone_id"), ("cloudfront", "distribution_id"), ("cloudfront", "domain_name"),
                 ("route53", "health_check_id")] + [("regions", r, "database", "private_zone_id") for r in REGIONS]


def _topology_ids(topo: dict) -> list[tuple[str, str]]:
    out = []
    for path in _TOPOLOGY_IDS:
        v = topo
        for k in path:
            v = v[k]
        out.append((v, "<" + ".".join(path) + ">"))
    return out


def normalised(value, ids: list[tuple[str, str]], key: str | None = None):
    """``value`` with random ids (``ids``: the seed's, then by pattern), ports and times
    replaced, and lists in a canonical order (ids decided the order, e.g. of instances)."""
    if isinstance(value, dict):
        return {k: normalised(v, ids, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [normalised(v, ids) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=str))
    if key in _TIME_KEYS and isinstance(value, (int, float, str)):
        return "TIME"
    if key == "port" and isinstance(value, int):
        return "PORT"
    if isinstance(value, str):
        if key == "ETag":
            return "ETAG"
        for real, name in ids:
            value = value.replace(real, name)
        for pattern, repl in _RANDOM:
            value = pattern.sub(repl, value)
    return value


def _calls_shape(calls: dict) -> dict:
    """The call log of a seed, as far as it does not depend on timing: the mutating calls in
    order and their counts (the seed polls while it waits, so how many reads it made varies)
    and which reads it made."""
    return {"mutating": calls["mutating"], "dropped": calls["dropped"],
            "writes": [(c["service"], c["operation"], c["region"], c["status"]) for c in calls["calls"]
                       if c["mutating"]],
            "reads": sorted({(c["service"], c["operation"], c["region"]) for c in calls["calls"] if not c["mutating"]})}


def _diff(a, b, path="") -> list[str]:
    """Where two observations differ (for a readable assertion message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:300]} != {str(b)[:300]}"]


def _assert_same(a, b, what: str) -> None:
    diff = _diff(a, b)
    assert not diff, f"{what}: {len(diff)} difference(s):\n" + "\n".join(diff[:30])


# --------------------------------------------------------------------------- changing

def _mutate_heavily(sbx: Sandbox, topo: dict, cfg: dict) -> threading.Thread:
    """Everything a failover, a drill or a test can change, and a request left hanging in an
    outage. Returns the thread of that request."""
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    # RDS: promote the replica (all the way), pin nothing, fence the old primary's group.
    w2.promote_read_replica(DBInstanceIdentifier=topo["regions"]["us-west-2"]["database"]["instance_id"])
    wait_for(lambda: w2.describe_db_instances(DBInstanceIdentifier="shop-db-usw2")["DBInstances"][0]
             ["DBInstanceStatus"] == "available" and sbx.control("GET", "/_sandbox/clock")[1]["pending"] == 0,
             what="promotion")
    e1.modify_db_instance(DBInstanceIdentifier="shop-db-use1", DBParameterGroupName="shop-mysql-readonly",
                          ApplyImmediately=True)
    # KMS and DB subnet groups: the standby's key disabled, the primary's alias gone, one more group.
    # (By key id: moto 5.2.5's DisableKey fails with an HTML 500 on a key ARN.)
    sbx.client("kms", "us-west-2").disable_key(
        KeyId=topo["regions"]["us-west-2"]["database"]["kms_key_id"].split("/")[-1])
    sbx.client("kms", "us-east-1").delete_alias(AliasName=topo["regions"]["us-east-1"]["database"]["kms_key_alias"])
    w2.create_db_subnet_group(DBSubnetGroupName="after-the-save", DBSubnetGroupDescription="after the save",
                              SubnetIds=topo["regions"]["us-west-2"]["network"]["subnet_ids"])
    # Route 53: the failover hold (roles swapped), the standby's db CNAME, a new health check.
    r53 = sbx.client("route53")
    zone = topo["route53"]["public_zone_id"]
    pair = {r["Failover"]: r for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
            if r.get("Failover")}
    changes = [{"Action": "DELETE", "ResourceRecordSet": r} for r in pair.values()]
    for role, rec in pair.items():
        new = {k: v for k, v in rec.items() if k != "HealthCheckId"}
        new["Failover"] = "SECONDARY" if role == "PRIMARY" else "PRIMARY"
        changes.append({"Action": "CREATE", "ResourceRecordSet": new})
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    r53.change_resource_record_sets(HostedZoneId=topo["regions"]["us-west-2"]["database"]["private_zone_id"],
                                    ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                                        "Name": "db.shop.internal.", "Type": "CNAME", "TTL": 5,
                                        "ResourceRecords": [{"Value": "elsewhere.example"}]}}]})
    r53.create_health_check(CallerReference="extra", HealthCheckConfig={
        "Type": "TCP", "IPAddress": "127.0.0.1", "Port": 9, "RequestInterval": 10})
    # CloudFront: the standby first.
    cf = sbx.client("cloudfront")
    dist = topo["cloudfront"]["distribution_id"]
    got = cf.get_distribution_config(Id=dist)
    members = got["DistributionConfig"]["OriginGroups"]["Items"][0]["Members"]
    members["Items"] = list(reversed(members["Items"]))
    cf.update_distribution(Id=dist, IfMatch=got["ETag"], DistributionConfig=got["DistributionConfig"])
    # Auto Scaling: the standby at production size.
    for tier in ("frontend", "backend"):
        sbx.client("autoscaling", "us-west-2").update_auto_scaling_group(
            AutoScalingGroupName=topo["regions"]["us-west-2"]["asgs"][tier]["name"], DesiredCapacity=2)
    # ELBv2: a new load balancer (it gets a port), and the standby frontend's goes away.
    extra = sbx.make_alb("us-east-1", name="after-the-save")
    sbx.client("elbv2", "us-west-2").delete_load_balancer(
        LoadBalancerArn=topo["regions"]["us-west-2"]["albs"]["frontend"]["arn"])
    assert _answer(extra["url"] + "/health")[0] == 200
    # DynamoDB: drctl's state table, with a lease in it.
    d = sbx.client("dynamodb", "us-east-2")
    d.create_table(TableName="drctl-state", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                   AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    d.get_waiter("table_exists").wait(TableName="drctl-state", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    d.put_item(TableName="drctl-state", Item={"pk": {"S": "lease"}, "owner": {"S": "trial"}})
    # Backup: a finished job, a new AMI copy, then (clock paused) jobs left pending.
    b1 = sbx.client("backup", "us-east-1")
    role = "arn:aws:iam::123456789012:role/backup"
    instance = sbx.client("ec2").describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
    job = b1.start_backup_job(BackupVaultName=topo["regions"]["us-east-1"]["backup_vault"]["name"], IamRoleArn=role,
                              ResourceArn=f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}")
    wait_for(lambda: b1.describe_backup_job(BackupJobId=job["BackupJobId"])["State"] == "COMPLETED")
    # Listener modes and edges.
    sbx.listener(topo["regions"]["us-east-1"]["albs"]["backend"]["dns_name"], "error")
    sbx.listener("public", "slow", delay_ms=20)
    sbx.listener("cdn", "down")
    sbx.control("POST", "/_sandbox/edges", {"cdn": None})
    # Pending transitions the restore must drop: a restore job that would launch an instance
    # and a backup job, both frozen by the paused clock.
    sbx.pause()
    b1.start_restore_job(RecoveryPointArn=topo["backup"]["recovery_point_arn"], IamRoleArn=role,
                         Metadata={"InstanceType": "t3.micro"})
    b1.start_backup_job(BackupVaultName=topo["regions"]["us-east-1"]["backup_vault"]["name"], IamRoleArn=role,
                        ResourceArn=f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}")
    sbx.step(0.05)
    assert sbx.control("GET", "/_sandbox/clock")[1]["pending"] > 0
    # The call log: emptied (restore brings it back).
    sbx.control("DELETE", "/_sandbox/calls")
    # Faults, last: an outage of the standby with a request hanging in it.
    sbx.fault(region="us-east-1", service="route53", kind="errors", rate=0.0)
    sbx.fault(region="us-east-1", kind="latency", ms=1, client="watch-b")
    sbx.fault(region="us-west-2", kind="outage")
    held = threading.Thread(target=_held_request, args=(sbx,), daemon=True)
    held.start()
    wait_for(lambda: sbx.control("GET", "/_sandbox/calls")[1]["in_flight"] == 1, what="request held by the outage")
    return held


_HELD: list = []


def _held_request(sbx: Sandbox) -> None:
    try:
        sbx.client("ec2", "us-west-2").create_vpc(CidrBlock="10.77.0.0/16")
        _HELD.append("applied")
    except ClientError as e:
        _HELD.append(e.response["Error"]["Code"])


# --------------------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def fresh_b(tmp_path_factory):
    """Sandbox B: its own process, freshly seeded (the same profile as the session sandbox)."""
    from drsandbox.seed import seed

    proc = Proc("--profile", "instant", "--time-scale", TIME_SCALE)
    out = tmp_path_factory.mktemp("b")
    try:
        topo = seed(proc.url, str(out))
        yield Sandbox(proc.url), topo, yaml.safe_load((out / "drctl.yaml").read_text())
    finally:
        proc.stop()


def test_restored_sandbox_cannot_be_told_apart_from_a_freshly_seeded_one(seeded, fresh_b):
    """Seed A, save it, change everything, restore: A equals A at save time, exactly (ports and
    ids included), and again after a second restore; A equals a freshly seeded B up to random
    ids; a request hanging in an outage across the restore is not applied and not logged; the
    transitions pending at the restore never happen; the listener of a load balancer created
    after the save is closed, the one of a load balancer deleted since is back on its port."""
    sbx, topo, out = seeded
    cfg = yaml.safe_load((out / "drctl.yaml").read_text())
    # Saved with the clock paused: nothing moves while observing (no probe lands between the
    # save and the first read), and the restore brings back a paused clock.
    sbx.pause()
    status, body = sbx.control("POST", "/_sandbox/snapshot", {"name": "a"})
    assert status == 200, body
    at_save = observe(sbx, topo, cfg)
    # The observation moved the call log and round robin on: start from the saved state again.
    assert sbx.control("POST", "/_sandbox/restore", {"name": "a"})[0] == 200
    _assert_same(observe(sbx, topo, cfg), at_save, "A restored right after the save")
    sbx.resume()

    held = _mutate_heavily(sbx, topo, cfg)
    extra_port = sbx.listeners()["after-the-save"]["url"]

    status, body = sbx.control("POST", "/_sandbox/restore", {"name": "a"})
    assert status == 200, body
    held.join(30)
    assert _HELD == ["ServiceUnavailable"], _HELD  # answered 503, never applied
    restored = observe(sbx, topo, cfg)
    _assert_same(restored, at_save, "A restored vs A at save")
    assert _answer(extra_port + "/health")[0] == "error"  # created after the save: closed
    assert "after-the-save" not in sbx.listeners()

    # Twice in a row.
    assert sbx.control("POST", "/_sandbox/restore", {"name": "a"})[0] == 200
    assert sbx.control("POST", "/_sandbox/restore", {"name": "a"})[0] == 200
    _assert_same(observe(sbx, topo, cfg), at_save, "A restored twice vs A at save")

    # The dropped transitions never come back: let the clock run past them.
    assert sbx.control("POST", "/_sandbox/restore", {"name": "a"})[0] == 200
    sbx.resume()
    sbx.step(5.0)
    for r in REGIONS:
        ec2 = sorted((i["InstanceId"], i["State"]["Name"], i["ImageId"]) for res in sbx.client(
            "ec2", r).describe_instances()["Reservations"] for i in res["Instances"])
        assert json.loads(json.dumps(ec2)) == at_save["aws"][f"ec2 {r}"]
        jobs = json.loads(json.dumps(sbx.client("backup", r).list_backup_jobs()["BackupJobs"], default=str))
        assert jobs == at_save["aws"][f"backup {r}"]

    # A freshly seeded B, paused too, looks the same up to random ids.
    sbx_b, topo_b, cfg_b = fresh_b
    sbx_b.pause()
    try:
        fresh = observe(sbx_b, topo_b, cfg_b)
    finally:
        sbx_b.resume()
    a, b = dict(at_save), dict(fresh)
    a_calls, b_calls = _calls_shape(a.pop("calls")), _calls_shape(b.pop("calls"))
    ids_a, ids_b = _topology_ids(topo), _topology_ids(topo_b)
    _assert_same(normalised(a_calls, ids_a), normalised(b_calls, ids_b), "A's call log vs B's")
    _assert_same(normalised(a, ids_a), normalised(b, ids_b), "A at save vs freshly seeded B")

    # The comparison can tell: one ASG of B at another size is a difference.
    asg = topo_b["regions"]["us-west-2"]["asgs"]["backend"]["name"]
    sbx_b.client("autoscaling", "us-west-2").update_auto_scaling_group(AutoScalingGroupName=asg, DesiredCapacity=2)
    sbx_b.pause()
    try:
        changed = observe(sbx_b, topo_b, cfg_b)
    finally:
        sbx_b.resume()
    changed.pop("calls")
    assert _diff(normalised(a, ids_a), normalised(changed, ids_b))


def test_restore_is_fast_and_repeatable(seeded, capsys):
    """A seeded sandbox restores in well under a second (measured and printed, not asserted:
    the time depends on the machine); every restore leaves the same state."""
    sbx, topo, out = seeded
    sbx.pause()
    assert sbx.control("POST", "/_sandbox/snapshot", {"name": "fast"})[0] == 200
    before = sbx.control("GET", "/_sandbox/state")[1]
    server, wall = [], []
    for _ in range(9):
        sbx.client("rds", "us-west-2").promote_read_replica(DBInstanceIdentifier="shop-db-usw2")
        t = time.perf_counter()
        status, body = sbx.control("POST", "/_sandbox/restore", {"name": "fast"})
        wall.append(time.perf_counter() - t)
        assert status == 200, body
        server.append(body["restored"]["took"])
        assert sbx.control("GET", "/_sandbox/state")[1] == before
    with capsys.disabled():
        print(f"\nrestore of a seeded sandbox ({body['restored']['bytes']} bytes): median {statistics.median(server):.3f}s "
              f"in the sandbox, {statistics.median(wall):.3f}s for the client; all: "
              + ", ".join(f"{t:.3f}" for t in server))


def test_snapshot_refuses_pending_transitions(seeded):
    """A transition in progress cannot be copied: with the clock paused a snapshot is refused at
    once (409); with it running, ``wait`` 0 is refused while one is pending and a bounded wait
    succeeds once it is done; the saved state is the finished one."""
    sbx, topo, _ = seeded
    w2 = sbx.client("rds", "us-west-2")
    sbx.pause()
    w2.promote_read_replica(DBInstanceIdentifier="shop-db-usw2")
    status, body = sbx.control("POST", "/_sandbox/snapshot", {"name": "mid-promotion", "wait": 30})
    assert status == 409 and "pending" in body["error"] and "paused" in body["error"]
    status, body = sbx.control("POST", "/_sandbox/snapshot", {"name": "mid-promotion", "wait": 0})
    assert status == 409
    sbx.resume()
    status, body = sbx.control("POST", "/_sandbox/snapshot", {"name": "promoted", "wait": 30}, timeout=60)
    assert status == 200, body
    names = [s["name"] for s in sbx.control("GET", "/_sandbox/snapshots")[1]["snapshots"]]
    assert "promoted" in names and "mid-promotion" not in names
    assert sbx.control("POST", "/_sandbox/restore", {"name": "seeded"})[0] == 200
    assert w2.describe_db_instances(DBInstanceIdentifier="shop-db-usw2")["DBInstances"][0].get(
        "ReadReplicaSourceDBInstanceIdentifier")
    assert sbx.control("POST", "/_sandbox/restore", {"name": "promoted"})[0] == 200
    db = w2.describe_db_instances(DBInstanceIdentifier="shop-db-usw2")["DBInstances"][0]
    assert db["DBInstanceStatus"] == "available" and "ReadReplicaSourceDBInstanceIdentifier" not in db
    assert sbx.control("GET", "/_sandbox/clock")[1]["pending"] == 0


def test_snapshot_api_errors(sbx):
    """Bad names, unknown snapshots and unknown fields are 400 and change nothing."""
    assert sbx.control("POST", "/_sandbox/snapshot", {"name": "bad name"})[0] == 400
    assert sbx.control("POST", "/_sandbox/snapshot", {"name": "x", "wait": -1})[0] == 400
    assert sbx.control("POST", "/_sandbox/snapshot", {"name": "x", "bogus": 1})[0] == 400
    status, body = sbx.control("POST", "/_sandbox/restore", {"name": "never-saved"})
    assert status == 400 and "never-saved" in body["error"]
    assert sbx.control("DELETE", "/_sandbox/snapshots?name=never-saved")[0] == 400
    assert sbx.control("POST", "/_sandbox/clock", {"paused": "yes"})[0] == 400
    assert sbx.control("POST", "/_sandbox/clock/step", {"seconds": -1})[0] == 400
    status, body = sbx.control("POST", "/_sandbox/clock/step", {})
    assert status == 409 and "nothing to step" in body["error"]
    assert sbx.control("GET", "/_sandbox/clock")[1]["paused"] is False


def test_snapshot_and_clock_cli(seeded):
    """snapshot save/list/restore/delete and clock pause/step/resume from the command line."""
    sbx, _, _ = seeded
    ep = ["--endpoint", sbx.url]
    r = run_cli("snapshot", "save", "cli", *ep)
    assert r.returncode == 0 and r.stdout.startswith("saved cli"), r.stderr
    assert "cli" in run_cli("snapshot", "list", *ep).stdout
    assert run_cli("clock", "pause", *ep).stdout.startswith("clock paused")
    w2 = sbx.client("rds", "us-west-2")
    assert w2.promote_read_replica(DBInstanceIdentifier="shop-db-usw2")["DBInstance"]["DBInstanceStatus"] == "modifying"
    r = run_cli("clock", "step", *ep)
    assert r.returncode == 0 and "ran 1 transition" in r.stdout, r.stdout + r.stderr
    assert w2.describe_db_instances(DBInstanceIdentifier="shop-db-usw2")["DBInstances"][0]["DBInstanceStatus"] == "rebooting"
    r = run_cli("snapshot", "save", "busy", "--wait", "0", *ep)
    assert r.returncode == 1 and "pending" in r.stderr
    assert run_cli("clock", "resume", *ep).stdout.startswith("clock running")
    r = run_cli("snapshot", "restore", "cli", *ep)
    assert r.returncode == 0 and r.stdout.startswith("restored cli"), r.stderr
    assert w2.describe_db_instances(DBInstanceIdentifier="shop-db-usw2")["DBInstances"][0]["DBInstanceStatus"] == "available"
    assert run_cli("snapshot", "delete", "cli", *ep).returncode == 0
    r = run_cli("snapshot", "restore", "cli", *ep)
    assert r.returncode == 2 and "no snapshot named 'cli'" in r.stderr


def test_restore_brings_back_iam_enforcement_auto_start_deadlines_and_kms_keys(sbx):
    """The state added for RDS and IAM rides along: a stopped instance's automatic start (its
    deadline on the clock), a KMS key and its state, the IAM enforcement mode and the users it
    checks. After the save the instance is started, the key scheduled for deletion, enforcement
    switched off; the restore brings every one back, and stepping to the deadline still
    starts the instance."""
    import boto3
    from botocore.config import Config

    rds = sbx.client("rds")
    rds.create_db_instance(DBInstanceIdentifier="parked", Engine="mysql", DBInstanceClass="db.t3.micro",
                           MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20)
    kms = sbx.client("kms", "us-west-2")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    iam = sbx.client("iam")
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"}]}))
    k = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = boto3.session.Session().client("rds", region_name="us-east-1", endpoint_url=sbx.url,
                                            aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"],
                                            config=Config(retries={"total_max_attempts": 1}))
    status_of = lambda: reader.describe_db_instances(DBInstanceIdentifier="parked")["DBInstances"][0]["DBInstanceStatus"]  # noqa: E731
    with sbx.paused():
        rds.stop_db_instance(DBInstanceIdentifier="parked")
        assert sbx.control("POST", "/_sandbox/iam", {"mode": "enforce"})[0] == 200
        status, body = sbx.control("POST", "/_sandbox/snapshot", {"name": "harsh"})
        assert status == 200, body
        sbx.control("POST", "/_sandbox/iam", {"mode": "off"})
        rds.start_db_instance(DBInstanceIdentifier="parked")
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
        assert status_of() == "available"

        assert sbx.control("POST", "/_sandbox/restore", {"name": "harsh"})[0] == 200
        assert sbx.control("GET", "/_sandbox/iam")[1]["mode"] == "enforce"
        with pytest.raises(ClientError) as e:
            rds.describe_db_instances()  # made-up keys are refused again
        assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"
        assert status_of() == "stopped"
        sbx.control("POST", "/_sandbox/iam", {"mode": "off"})
        assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
        sbx.step()  # the saved deadline: seven days (4 h x 0.5 here) after the stop
        assert status_of() == "available"
    sbx.control("DELETE", "/_sandbox/snapshots?name=harsh")


def test_snapshot_keeps_control_plane_faults_and_alb_addresses(seeded):
    """A harsh outage (``control_planes``) and changed ALB addresses are part of a snapshot: a
    restore brings back the fault with its flag (the Route 53 API hangs again) and each ALB's
    saved addresses. (The token buckets and busy zones: tests/test_route53_limits.py.)"""
    sbx, topo, _ = seeded
    backend = topo["regions"]["us-east-1"]["albs"]["backend"]["name"]
    status, body = sbx.control("POST", "/_sandbox/listeners", {"name": backend, "addresses": ["203.0.113.9"]})
    assert status == 200, body
    fid = sbx.fault(region="us-east-1", kind="outage", control_planes=True)
    assert sbx.control("POST", "/_sandbox/snapshot", {"name": "harsh"})[0] == 200
    sbx.control("DELETE", "/_sandbox/faults")
    sbx.control("POST", "/_sandbox/listeners", {"name": backend, "addresses": "rotate"})
    sbx.client("route53").list_hosted_zones()
    restore(sbx.url, "harsh")
    assert sbx.control("GET", "/_sandbox/faults")[1]["faults"] == [
        {"id": fid, "region": "us-east-1", "service": None, "kind": "outage", "control_planes": True}]
    assert sbx.listeners()[backend]["addresses"] == ["203.0.113.9"]
    with pytest.raises(ReadTimeoutError):
        sbx.client("route53", read_timeout=1).list_hosted_zones()
    sbx.control("DELETE", "/_sandbox/faults")

# --------------------------------------------------------------------------- failover gates

def _observe_gates(sbx: Sandbox, cluster_arn: str, endpoint: dict, checks: list[str]) -> dict:
    """What drctl can see of the gates (ARC, alarms, health checks) and the sandbox's view."""
    from gates import data_plane

    cc = sbx.client("route53-recovery-control-config", "us-west-2")
    r53 = sbx.client("route53")
    obs: dict = {"clusters": cc.list_clusters()["Clusters"],
                 "panels": cc.list_control_panels(ClusterArn=cluster_arn)["ControlPanels"]}
    obs["controls"] = {p["Name"]: cc.list_routing_controls(ControlPanelArn=p["ControlPanelArn"])["RoutingControls"]
                       for p in obs["panels"]}
    obs["states"] = data_plane(endpoint).list_routing_controls()["RoutingControls"]
    for r in REGIONS:
        obs[f"alarms {r}"] = sbx.client("cloudwatch", r).describe_alarms()["MetricAlarms"]
    obs["checks"] = {}
    for hc in checks:
        got = r53.get_health_check(HealthCheckId=hc)["HealthCheck"]
        obs["checks"][hc] = {"config": got}
        if got["HealthCheckConfig"]["Type"] != "CALCULATED":
            obs["checks"][hc]["status"] = r53.get_health_check_status(HealthCheckId=hc)["HealthCheckObservations"]
    obs["sandbox"] = sbx.control("GET", "/_sandbox/health")[1]
    obs["clock"] = {k: v for k, v in sbx.control("GET", "/_sandbox/clock")[1].items() if k != "now"}
    return json.loads(json.dumps(obs, default=str))


_WALL = [re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d"),
         re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000")]


def _untimed(value, key=None):
    """``value`` without wall-clock times (answers' timestamps, times in alarm reasons)."""
    if isinstance(value, dict):
        return {k: _untimed(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    if key in ("StateUpdatedTimestamp", "AlarmConfigurationUpdatedTimestamp", "CheckedTime"):
        return "TIME"
    if isinstance(value, str):
        for pattern in _WALL:
            value = pattern.sub("TIME", value)
    return value


def test_snapshot_covers_alarms_arc_and_health_checks(sbx):
    """Saved and restored exactly: ARC clusters, control panels, routing controls (their states
    and a control still PENDING), alarms (state, reason, forced state, evaluation schedule and
    the datapoints they read), and the health checks that follow them (observations, last known
    status); after a restore the next evaluations and rounds give what they gave after the save
    (moto: none of it exists)."""
    from gates import MINUTE, data_plane, gate_alarm, health_check, make_cluster, make_control

    cc = sbx.client("route53-recovery-control-config", "us-west-2")
    cw = sbx.client("cloudwatch", "us-west-2")
    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        panel = cc.create_control_panel(ClusterArn=cluster["ClusterArn"], ControlPanelName="drctl")["ControlPanel"]
        on = make_control(sbx, cluster, "on", panel=panel["ControlPanelArn"])
        off = make_control(sbx, cluster, "off")
        data_plane(endpoints[1]).update_routing_control_state(RoutingControlArn=on, RoutingControlState="On")
        gate_alarm(sbx, TreatMissingData="missing")
        gate_alarm(sbx, name="forced")
        cw.put_metric_data(Namespace="drctl/Gate", MetricData=[{"MetricName": "Closed", "Value": 1.0}])
        checks = [health_check(sbx, {"Type": "RECOVERY_CONTROL", "RoutingControlArn": on}),
                  health_check(sbx, {"Type": "RECOVERY_CONTROL", "RoutingControlArn": off}),
                  health_check(sbx, {"Type": "CLOUDWATCH_METRIC", "InsufficientDataHealthStatus": "LastKnownStatus",
                                     "AlarmIdentifier": {"Region": "us-west-2", "Name": "gate"}})]
        checks.append(health_check(sbx, {"Type": "CALCULATED", "ChildHealthChecks": checks[:], "HealthThreshold": 3}))
        sbx.step(MINUTE)
        cw.set_alarm_state(AlarmName="forced", StateValue="OK", StateReason="forced")
        pending = cc.create_routing_control(ClusterArn=cluster["ClusterArn"], RoutingControlName="pending")[
            "RoutingControl"]["RoutingControlArn"]
        status, body = sbx.control("POST", "/_sandbox/snapshot", {"name": "gates"})
        assert status == 200, body
        at_save = _observe_gates(sbx, cluster["ClusterArn"], endpoints[2], checks)
        assert [h["healthy"] for h in at_save["sandbox"]["health_checks"]] == [True, False, False, False]
        assert {a["name"]: (a["state"], a["evaluated"]) for a in at_save["sandbox"]["alarms"]} == {
            "forced": ("OK", "ALARM"), "gate": ("ALARM", "ALARM")}
        sbx.step(MINUTE)
        after_save = _observe_gates(sbx, cluster["ClusterArn"], endpoints[2], checks)

        # Change all of it.
        data_plane(endpoints[0]).update_routing_control_states(UpdateRoutingControlStateEntries=[
            {"RoutingControlArn": on, "RoutingControlState": "Off"},
            {"RoutingControlArn": off, "RoutingControlState": "On"}])
        cc.delete_routing_control(RoutingControlArn=pending)
        make_cluster(sbx, "another")
        cw.put_metric_data(Namespace="drctl/Gate", MetricData=[{"MetricName": "Closed", "Value": 0.0}])
        gate_alarm(sbx, name="new")
        sbx.step(5 * MINUTE)
        sbx.client("route53").delete_health_check(HealthCheckId=checks[3])
        assert _observe_gates(sbx, cluster["ClusterArn"], endpoints[2], checks[:3]) != at_save

        status, body = sbx.control("POST", "/_sandbox/restore", {"name": "gates"})
        assert status == 200, body
        _assert_same(_observe_gates(sbx, cluster["ClusterArn"], endpoints[2], checks), at_save, "gates restored")
        sbx.step(MINUTE)
        # Evaluated again at another time of day: the same, but for wall-clock timestamps.
        _assert_same(_untimed(_observe_gates(sbx, cluster["ClusterArn"], endpoints[2], checks)),
                     _untimed(after_save), "a minute after the restore vs a minute after the save")
    # The PENDING control was deployed by that minute, as it was after the save.
    assert [c["RoutingControlName"] for c in after_save["states"]].count("pending") == 1

"""The seeded warm-standby topology, its files, and the issue's "done when" scenarios, driven
with the aws CLI as a new user would.

On plain moto none of this works: there are no local listeners, TestDNSAnswer is a 404,
Backup jobs do not exist, promotion keeps the replica link and IfMatch is ignored.
"""

import json
import os

import yaml

from conftest import REPO, aws_cli, http_get, run_cli, wait_for

HC_INTERVAL, HC_THRESHOLD = 0.5, 3  # instant profile at time scale 0.5, seeded FailureThreshold


def _keys_match(example, ours, path="") -> list[str]:
    """Differences between the example's key layout and ours ('...' in the example is a
    placeholder for 'same shape')."""
    problems = []
    if isinstance(example, dict):
        if not isinstance(ours, dict):
            return [f"{path}: expected a mapping"]
        if set(ours) != set(example):
            problems.append(f"{path}: keys {sorted(ours)} != example {sorted(example)}")
        for k in set(ours) & set(example):
            if example[k] != "...":
                problems += _keys_match(example[k], ours[k], f"{path}.{k}")
    elif isinstance(example, list) and example and isinstance(example[0], dict):
        union = {k for e in example for k in e}
        required = set.intersection(*(set(e) for e in example))
        for i, item in enumerate(ours):
            if not required <= set(item) <= union:
                problems.append(f"{path}[{i}]: keys {sorted(item)} not within example {sorted(union)}")
            for k in set(item) & union:
                sub = next((e[k] for e in example if k in e and e[k] != "..."), None)
                if isinstance(sub, dict):
                    problems += _keys_match(sub, item[k], f"{path}[{i}].{k}")
    return problems


# Keys of regions.<r>.database that drctl's schema has (src/config/env.rs, `Database`) and that
# docs/drctl.yaml.example may not show yet: tolerated only while the example lacks them (once
# the example names them, they are compared like every other key).
DATABASE_KEYS_AHEAD_OF_THE_EXAMPLE = ("kms_key_id", "subnet_group", "security_group_ids")


def _with_keys_ahead(example: dict, ours: dict) -> dict:
    """``example`` with the database keys seed writes ahead of it copied from ``ours``."""
    example = json.loads(json.dumps(example))
    for region, reg in (example.get("regions") or {}).items():
        db, written = (reg or {}).get("database"), ((ours.get("regions") or {}).get(region) or {}).get("database")
        if isinstance(db, dict) and isinstance(written, dict):
            for key in DATABASE_KEYS_AHEAD_OF_THE_EXAMPLE:
                if key not in db and key in written:
                    db[key] = written[key]
    return example


def test_drctl_yaml_matches_example_layout(seeded):
    """drctl.yaml has exactly the keys of docs/drctl.yaml.example (the Rust side denies
    unknown fields), filled with the seeded ids; the database keys drctl's schema already has
    (DATABASE_KEYS_AHEAD_OF_THE_EXAMPLE) are allowed before the example shows them."""
    sbx, topo, out = seeded
    ours = yaml.safe_load((out / "drctl.yaml").read_text())
    example_path = os.path.join(REPO, "docs", "drctl.yaml.example")
    if os.path.exists(example_path):
        with open(example_path) as f:
            example = yaml.safe_load(f)
        assert _keys_match(_with_keys_ahead(example, ours), ours) == []
    assert ours["aws"]["endpoint_url"] == sbx.url
    east = ours["regions"]["us-east-1"]
    assert east["database"]["instance_id"] == "shop-db-use1"
    assert ours["regions"]["us-west-2"]["database"]["instance_id"] == "shop-db-usw2"
    assert ours["route53"]["record_name"] == "api.example.test."
    assert ours["cloudfront"]["origins"] == {"us-east-1": "primary-frontend", "us-west-2": "standby-frontend"}
    names = {t["name"] for t in ours["probes"]["targets"]}
    assert names == {"primary-frontend", "primary-backend", "standby-frontend", "standby-backend"}
    for t in ours["probes"]["targets"]:
        assert t["http"]["url"].endswith("/health")
        assert http_get(t["http"]["url"])[:2] == (200, "ok")


def test_topology_lists_every_id_and_listener(seeded):
    """topology.json maps every ALB DNS name (and the edges) to a live local listener, and
    the seeded resources exist as described."""
    sbx, topo, _ = seeded
    for region, reg in topo["regions"].items():
        for tier, alb in reg["albs"].items():
            assert topo["listeners"][alb["dns_name"]] == alb["url"]
            status, body, _ = http_get(alb["url"] + "/")
            assert status == 200 and f"region={region}" in body
        groups = sbx.client("autoscaling", region).describe_auto_scaling_groups()["AutoScalingGroups"]
        want = 2 if region == "us-east-1" else 1
        assert all(g["DesiredCapacity"] == want and g["MaxSize"] == 4 for g in groups)
    assert topo["listeners"]["api.example.test"] == topo["route53"]["public_url"]
    assert topo["listeners"][topo["cloudfront"]["domain_name"]] == topo["cloudfront"]["url"]
    # Standby launch templates run the AMI that AWS Backup copied over.
    lt = topo["regions"]["us-west-2"]["asgs"]["frontend"]
    assert lt["ami_id"] == topo["backup"]["copied_ami_id"]
    assert sbx.client("ec2", "us-west-2").describe_images(ImageIds=[lt["ami_id"]])["Images"][0]["State"] == "available"
    points = sbx.client("backup", "us-west-2").list_recovery_points_by_backup_vault(
        BackupVaultName="shop-vault-usw2")["RecoveryPoints"]
    assert [p["Status"] for p in points] == ["COMPLETED"]
    assert "region=us-east-1" in http_get(topo["route53"]["public_url"] + "/")[1]
    assert "region=us-east-1" in http_get(topo["cloudfront"]["url"] + "/")[1]


def test_done_when_outage_fails_over_dns(seeded):
    """After `fault set outage --region us-east-1 --spare-control-planes` (the Route 53 API keeps
    answering, so TestDNSAnswer can be asked) the primary health check reports failure
    within interval x threshold and `aws route53 test-dns-answer` returns the standby ALB;
    the public name then serves region=us-west-2. The bound is on the sandbox's clock: it is
    paused and stepped one probe interval at a time, so a slow machine cannot stretch it."""
    sbx, topo, _ = seeded
    r53 = sbx.client("route53")
    zone, hc = topo["route53"]["public_zone_id"], topo["route53"]["health_check_id"]
    standby = topo["regions"]["us-west-2"]["albs"]["backend"]["dns_name"]
    wait_for(lambda: r53.get_health_check_status(HealthCheckId=hc)["HealthCheckObservations"])
    answer = lambda: r53.test_dns_answer(HostedZoneId=zone, RecordName="api.example.test",  # noqa: E731
                                         RecordType="A")["RecordData"]
    with sbx.paused():
        assert answer() != [standby]
        r = run_cli("fault", "set", "outage", "--region", "us-east-1", "--spare-control-planes", "--endpoint",
                    sbx.url)
        assert r.returncode == 0, r.stderr
        intervals = 0
        while answer() != [standby]:
            assert intervals < HC_THRESHOLD, f"still no failover after {intervals} probe intervals"
            sbx.step(HC_INTERVAL)
            intervals += 1
        assert intervals == HC_THRESHOLD  # FailureThreshold consecutive failed probes, not fewer
    status = json.loads(aws_cli(sbx.url, "route53", "get-health-check-status", "--health-check-id", hc).stdout)
    assert status["HealthCheckObservations"][0]["StatusReport"]["Status"].startswith("Failure")
    answer = json.loads(aws_cli(sbx.url, "route53", "test-dns-answer", "--hosted-zone-id", zone,
                                "--record-name", "api.example.test", "--record-type", "A").stdout)
    assert answer["RecordData"] == [standby]
    assert "region=us-west-2" in http_get(topo["route53"]["public_url"] + "/")[1]
    assert "region=us-west-2" in http_get(topo["cloudfront"]["url"] + "/", timeout=10)[1]


def test_done_when_copy_job_via_aws_cli(seeded):
    """`aws backup start-copy-job` reaches COMPLETED and the AMI is described in us-west-2."""
    sbx, topo, _ = seeded
    r = aws_cli(sbx.url, "backup", "start-copy-job", "--region", "us-east-1",
                "--recovery-point-arn", topo["backup"]["recovery_point_arn"],
                "--source-backup-vault-name", "shop-vault-use1",
                "--destination-backup-vault-arn", topo["regions"]["us-west-2"]["backup_vault"]["arn"],
                "--iam-role-arn", "arn:aws:iam::123456789012:role/backup")
    assert r.returncode == 0, r.stderr
    job_id = json.loads(r.stdout)["CopyJobId"]

    def state():
        out = aws_cli(sbx.url, "backup", "describe-copy-job", "--region", "us-east-1", "--copy-job-id", job_id)
        job = json.loads(out.stdout)["CopyJob"]
        return job if job["State"] == "COMPLETED" else None

    job = wait_for(state, timeout=20, interval=0.2)
    ami = job["DestinationRecoveryPointArn"].split("/")[-1]
    images = json.loads(aws_cli(sbx.url, "ec2", "describe-images", "--region", "us-west-2", "--image-ids", ami).stdout)
    assert images["Images"][0]["ImageId"] == ami and images["Images"][0]["State"] == "available"


def test_done_when_promote_via_aws_cli(seeded):
    """`aws rds promote-read-replica` ends with a replica that no longer names a source."""
    sbx, topo, _ = seeded
    with sbx.paused():  # the answer is built before any transition can run, however slow the machine
        r = aws_cli(sbx.url, "rds", "promote-read-replica", "--region", "us-west-2", "--db-instance-identifier",
                    "shop-db-usw2")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["DBInstance"]["DBInstanceStatus"] == "modifying"

    def promoted():
        out = aws_cli(sbx.url, "rds", "describe-db-instances", "--region", "us-west-2",
                      "--db-instance-identifier", "shop-db-usw2")
        db = json.loads(out.stdout)["DBInstances"][0]
        return db if db["DBInstanceStatus"] == "available" else None

    db = wait_for(promoted, timeout=20, interval=0.2)
    assert "ReadReplicaSourceDBInstanceIdentifier" not in db
    st = sbx.control("GET", "/_sandbox/state")[1]
    assert st["regions"]["us-west-2"]["writer"] == ["shop-db-usw2"] and st["replica_links"] == []


def test_done_when_stale_etag_via_aws_cli(seeded, tmp_path):
    """`aws cloudfront update-distribution` with a stale ETag fails with PreconditionFailed."""
    sbx, topo, _ = seeded
    dist = topo["cloudfront"]["distribution_id"]
    got = json.loads(aws_cli(sbx.url, "cloudfront", "get-distribution-config", "--id", dist).stdout)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(got["DistributionConfig"]))
    ok = aws_cli(sbx.url, "cloudfront", "update-distribution", "--id", dist, "--if-match", got["ETag"],
                 "--distribution-config", f"file://{cfg}")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ETag"] != got["ETag"]
    stale = aws_cli(sbx.url, "cloudfront", "update-distribution", "--id", dist, "--if-match", got["ETag"],
                    "--distribution-config", f"file://{cfg}")
    assert stale.returncode != 0 and "PreconditionFailed" in stale.stderr


def test_cdn_fails_over_when_primary_frontend_breaks(seeded):
    """CloudFront's origin group sends users to the standby frontend when the primary one
    refuses connections or answers 5xx, and back when it recovers."""
    sbx, topo, _ = seeded
    primary = topo["regions"]["us-east-1"]["albs"]["frontend"]["dns_name"]
    for mode in ("down", "error"):
        sbx.listener(primary, mode)
        status, body, headers = http_get(topo["cloudfront"]["url"] + "/")
        assert status == 200 and "region=us-west-2" in body and headers["x-drsandbox-origin"] == "standby-frontend"
    sbx.listener(primary, "up")
    assert http_get(topo["cloudfront"]["url"] + "/")[2]["x-drsandbox-origin"] == "primary-frontend"


def test_seed_parameter_groups(seeded):
    """Both regions have the writable `shop-mysql` group (used by the instances, in-sync) and
    the `shop-mysql-readonly` group (read_only=1); topology.json names both; drctl.yaml names
    the group each database uses, where drctl's fence sets read_only. (Plain moto cannot be
    seeded: no listeners, no Backup jobs.)"""
    sbx, topo, out = seeded
    for region, reg in topo["regions"].items():
        db = reg["database"]
        assert (db["parameter_group"], db["readonly_parameter_group"]) == ("shop-mysql", "shop-mysql-readonly")
        rds = sbx.client("rds", region)
        for group, value in (("shop-mysql", "0"), ("shop-mysql-readonly", "1")):
            params = rds.describe_db_parameters(DBParameterGroupName=group)["Parameters"]
            assert {p["ParameterName"]: p["ParameterValue"] for p in params} == {"read_only": value}
        live = rds.describe_db_instances(DBInstanceIdentifier=db["instance_id"])["DBInstances"][0]
        assert live["DBParameterGroups"] == [{"DBParameterGroupName": "shop-mysql", "ParameterApplyStatus": "in-sync"}]
        assert live["DBInstanceStatus"] == "available"
    written = yaml.safe_load((out / "drctl.yaml").read_text())
    for region in topo["regions"]:
        db = written["regions"][region]["database"]
        assert db["parameter_group"] == "shop-mysql"
        assert "readonly_parameter_group" not in db


def _state(sbx):
    return sbx.control("GET", "/_sandbox/state")[1]


def _point_cdn_at_standby(sbx, topo):
    """Put the standby frontend first in the origin group (what a failover does) and wait for it."""
    cf = sbx.client("cloudfront")
    dist = topo["cloudfront"]["distribution_id"]
    got = cf.get_distribution_config(Id=dist)
    cfg = got["DistributionConfig"]
    members = cfg["OriginGroups"]["Items"][0]["Members"]
    members["Items"] = list(reversed(members["Items"]))
    cf.update_distribution(Id=dist, IfMatch=got["ETag"], DistributionConfig=cfg)
    wait_for(lambda: cf.get_distribution(Id=dist)["Distribution"]["Status"] == "Deployed", timeout=10)


def test_split_brain_is_seen_and_ends_with_the_read_only_fence(seeded):
    """/_sandbox/state: each region's app database (its private zone's db CNAME), the writable
    databases user traffic can reach, and split_brain. Promoting the standby while the primary
    stays writable and CloudFront sends users to the standby first is a split brain; it ends
    once the read_only group is in effect on the old primary (after its reboot), not while the
    change is pending. (Plain moto has no /_sandbox/state; its promotion keeps the replica
    link, so the standby would never be writable.)"""
    sbx, topo, _ = seeded
    st = _state(sbx)
    assert st["regions"]["us-east-1"]["app_database"] == "shop-db-use1"
    assert st["regions"]["us-west-2"]["app_database"] == "shop-db-usw2"
    assert (st["reachable_regions"], st["reachable_writers"], st["split_brain"]) == (["us-east-1"], ["shop-db-use1"], False)
    db = {d["id"]: d for r in st["regions"].values() for d in r["databases"]}
    assert db["shop-db-use1"]["writable"] is True and db["shop-db-usw2"]["writable"] is False

    w2, e1 = sbx.client("rds", "us-west-2"), sbx.client("rds", "us-east-1")
    w2.promote_read_replica(DBInstanceIdentifier="shop-db-usw2")
    wait_for(lambda: _state(sbx)["regions"]["us-west-2"]["databases"][0]["writable"], timeout=10, what="standby writable")
    assert _state(sbx)["split_brain"] is False  # users still reach us-east-1 only

    _point_cdn_at_standby(sbx, topo)
    st = _state(sbx)
    assert st["reachable_regions"] == ["us-east-1", "us-west-2"]
    assert (st["reachable_writers"], st["split_brain"]) == (["shop-db-use1", "shop-db-usw2"], True)

    sbx.fault(region="us-east-1", kind="outage")  # a dark region's app and database are out of reach
    st = _state(sbx)
    assert st["reachable_writers"] == ["shop-db-usw2"] and st["split_brain"] is False
    sbx.control("DELETE", "/_sandbox/faults")

    fence = topo["regions"]["us-east-1"]["database"]["readonly_parameter_group"]
    e1.modify_db_instance(DBInstanceIdentifier="shop-db-use1", DBParameterGroupName=fence, ApplyImmediately=True)
    wait_for(lambda: e1.describe_db_instances(DBInstanceIdentifier="shop-db-use1")["DBInstances"][0]
             ["DBParameterGroups"][0]["ParameterApplyStatus"] == "pending-reboot", timeout=5)
    wait_for(lambda: e1.describe_db_instances(DBInstanceIdentifier="shop-db-use1")["DBInstances"][0]
             ["DBInstanceStatus"] == "available", timeout=5)
    assert _state(sbx)["split_brain"] is True  # associated, not applied: still writable
    e1.reboot_db_instance(DBInstanceIdentifier="shop-db-use1")
    wait_for(lambda: not _state(sbx)["split_brain"] and
             e1.describe_db_instances(DBInstanceIdentifier="shop-db-use1")["DBInstances"][0]["DBInstanceStatus"] == "available",
             timeout=5, what="fenced")
    st = _state(sbx)
    assert st["reachable_writers"] == ["shop-db-usw2"]
    old = next(d for d in st["regions"]["us-east-1"]["databases"] if d["id"] == "shop-db-use1")
    assert (old["parameter_group"], old["parameter_apply_status"], old["read_only"], old["writable"]) == \
        (fence, "in-sync", True, False)


def test_seeded_databases_are_encrypted_in_their_subnet_groups_with_the_seeded_security_groups(seeded):
    """Each seeded database is what a production one is: encrypted with a KMS key of its own
    region (alias ``alias/shop-db-<r>``; a cross-region replica needs a key of its region,
    CreateDBInstanceReadReplica API reference, KmsKeyId), in its region's DB subnet group
    ``shop-db-<r>`` over the two seeded subnets (so in the seeded VPC: without a group "the new
    DB instance isn't created in a VPC", same page, DBSubnetGroupName) with the region's seeded
    security group. Describe, /_sandbox/state, topology.json and drctl.yaml agree. (Plain moto
    cannot be seeded; its cross-region replica would keep the source's key, subnet group and
    security groups.)"""
    sbx, topo, out = seeded
    written = yaml.safe_load((out / "drctl.yaml").read_text())
    state = sbx.control("GET", "/_sandbox/state")[1]
    short = {"us-east-1": "use1", "us-west-2": "usw2"}
    keys = {}
    for region, reg in topo["regions"].items():
        db, net = reg["database"], reg["network"]
        kms = sbx.client("kms", region)
        key = kms.describe_key(KeyId=f"alias/shop-db-{short[region]}")["KeyMetadata"]
        assert key["Arn"].startswith(f"arn:aws:kms:{region}:123456789012:key/") and key["KeyState"] == "Enabled"
        keys[region] = key["Arn"]
        assert (db["kms_key_id"], db["kms_key_alias"]) == (key["Arn"], f"alias/shop-db-{short[region]}")
        assert (db["subnet_group"], db["security_group_ids"]) == (f"shop-db-{short[region]}", [net["security_group_id"]])

        rds = sbx.client("rds", region)
        group = rds.describe_db_subnet_groups(DBSubnetGroupName=db["subnet_group"])["DBSubnetGroups"][0]
        assert group["VpcId"] == net["vpc_id"]
        assert sorted(s["SubnetIdentifier"] for s in group["Subnets"]) == sorted(net["subnet_ids"])
        live = rds.describe_db_instances(DBInstanceIdentifier=db["instance_id"])["DBInstances"][0]
        assert (live["StorageEncrypted"], live["KmsKeyId"]) == (True, key["Arn"])
        assert (live["DBSubnetGroup"]["DBSubnetGroupName"], live["DBSubnetGroup"]["VpcId"]) == \
            (db["subnet_group"], net["vpc_id"])
        assert [g["VpcSecurityGroupId"] for g in live["VpcSecurityGroups"]] == [net["security_group_id"]]

        st = next(d for d in state["regions"][region]["databases"] if d["id"] == db["instance_id"])
        assert (st["in_vpc"], st["db_subnet_group"], st["storage_encrypted"], st["kms_key_id"],
                st["vpc_security_groups"]) == (True, db["subnet_group"], True, key["Arn"], [net["security_group_id"]])

        conf = written["regions"][region]["database"]
        assert (conf["kms_key_id"], conf["subnet_group"], conf["security_group_ids"]) == \
            (key["Arn"], db["subnet_group"], [net["security_group_id"]])
    assert keys["us-east-1"] != keys["us-west-2"]
    # The replica is still the primary's replica (and still only that).
    assert state["replica_links"] == [{"replica": "us-west-2/shop-db-usw2",
                                       "source": topo["regions"]["us-east-1"]["database"]["arn"]}]

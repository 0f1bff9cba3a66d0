"""Isolated game-day drills: a drill stack built through the APIs beside production serves
end to end, reports the database it reaches, and disappears when torn down.

On plain moto each of these fails: an ALB's DNS name resolves nowhere (no local listener, no
``/_sandbox/listeners``); with the sandbox before these fixes, a load balancer's listener
served before CreateListener and after DeleteListener, its page did not say which database
the app uses (and there was no ``/db``), and a restored DB instance was ``available`` at once
and claimed to be a read replica of the snapshot's source (moto copies the instance wholesale).
"""

import base64
import socket

import pytest

from conftest import http_get, wait_for

RUN = "drill-20261201-0001"
TAG = [{"Key": "drctl:drill", "Value": RUN}]


def _restore_from_replica(sbx, topo, ident="shop-drill-0001"):
    region = topo["standby_region"]
    rds = sbx.client("rds", region)
    replica = topo["regions"][region]["database"]["instance_id"]
    rds.create_db_snapshot(DBInstanceIdentifier=replica, DBSnapshotIdentifier=f"{ident}-src")
    db = rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=ident, DBSnapshotIdentifier=f"{ident}-src",
                                                  DBInstanceClass="db.t3.micro", Tags=TAG,
                                                  CopyTagsToSnapshot=True)["DBInstance"]
    return rds, db


def _status(rds, ident):
    return rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]["DBInstanceStatus"]


def test_restored_instance_is_standalone_and_takes_time(seeded):
    """RestoreDBInstanceFromDBSnapshot of the replica's snapshot: a new standalone instance
    (no ReadReplicaSourceDBInstanceIdentifier; the primary does not list it), ``creating`` ->
    ``backing-up`` -> ``available``, the request's Tags, a writer in /_sandbox/state.
    moto 5.2.5: ``available`` at once and a "replica" of shop-db-use1."""
    sbx, topo, _ = seeded
    with sbx.paused():  # each status is seen, in order, however slow the machine
        rds, db = _restore_from_replica(sbx, topo)
        assert db["DBInstanceStatus"] == "creating"
        assert "ReadReplicaSourceDBInstanceIdentifier" not in db and not db.get("ReadReplicaDBInstanceIdentifiers")
        seen = sbx.steps_until(lambda: _status(rds, "shop-drill-0001"), lambda s: s == "available")
    assert seen == ["creating", "backing-up", "available"]
    desc = rds.describe_db_instances(DBInstanceIdentifier="shop-drill-0001")["DBInstances"][0]
    assert "ReadReplicaSourceDBInstanceIdentifier" not in desc
    assert rds.list_tags_for_resource(ResourceName=desc["DBInstanceArn"])["TagList"] == TAG
    primary = sbx.client("rds", topo["primary_region"]).describe_db_instances(
        DBInstanceIdentifier=topo["regions"][topo["primary_region"]]["database"]["instance_id"])["DBInstances"][0]
    assert all("shop-drill-0001" not in r for r in primary["ReadReplicaDBInstanceIdentifiers"])
    state = sbx.control("GET", "/_sandbox/state")[1]["regions"][topo["standby_region"]]
    drill = next(d for d in state["databases"] if d["id"] == "shop-drill-0001")
    assert drill["role"] == "writer" and drill["writable"] and drill["source"] is None
    # Production is untouched: the replica is still a replica and the app still uses it.
    assert state["app_database"] == topo["regions"][topo["standby_region"]]["database"]["instance_id"]


def test_drill_restore_goes_into_the_sources_subnet_group_and_security_groups(seeded):
    """What drctl's drill does (src/aws/drill.rs, ``restore``): describe the instance the snapshot
    is of, then RestoreDBInstanceFromDBSnapshot with its DBSubnetGroupName and
    VpcSecurityGroupIds. The restore is in the seeded us-west-2 subnet group and VPC with the
    seeded security group, encrypted with the snapshot's key (the us-west-2 one), ``in_vpc``.
    A security group of us-east-1 is unknown in us-west-2 (InvalidParameterValue) and one of
    another VPC is InvalidParameterCombination; without VpcSecurityGroupIds the restore gets its
    subnet group's VPC's default group (RestoreDBInstanceFromDBSnapshot API reference,
    VpcSecurityGroupIds: "Default: The default EC2 VPC security group for the DB subnet group's
    VPC"). Plain moto takes any group id and defaults to the default VPC's group."""
    from botocore.exceptions import ClientError

    sbx, topo, _ = seeded
    region = topo["standby_region"]
    reg = topo["regions"][region]
    rds, ec2 = sbx.client("rds", region), sbx.client("ec2", region)
    source = rds.describe_db_instances(DBInstanceIdentifier=reg["database"]["instance_id"])["DBInstances"][0]
    subnet_group = source["DBSubnetGroup"]["DBSubnetGroupName"]
    groups = [g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]]
    assert (subnet_group, groups) == (reg["database"]["subnet_group"], reg["database"]["security_group_ids"])
    rds.create_db_snapshot(DBInstanceIdentifier=source["DBInstanceIdentifier"], DBSnapshotIdentifier="drill-src",
                           Tags=TAG)

    def restore(ident, **kw):
        return rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=ident, DBSnapshotIdentifier="drill-src",
                                                        PubliclyAccessible=False, DBInstanceClass="db.t3.micro",
                                                        Tags=TAG, **kw)["DBInstance"]

    east_sg = topo["regions"][topo["primary_region"]]["network"]["security_group_id"]
    other_vpc = ec2.create_vpc(CidrBlock="10.97.0.0/16")["Vpc"]["VpcId"]
    other_sg = ec2.create_security_group(GroupName="elsewhere", Description="x", VpcId=other_vpc)["GroupId"]
    for bad, code in ((east_sg, "InvalidParameterValue"), (other_sg, "InvalidParameterCombination")):
        with pytest.raises(ClientError) as e:
            restore("shop-drill-bad", DBSubnetGroupName=subnet_group, VpcSecurityGroupIds=[bad])
        assert e.value.response["Error"]["Code"] == code
    assert "shop-drill-bad" not in {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}

    with sbx.paused():
        db = restore("shop-drill-0001", DBSubnetGroupName=subnet_group, VpcSecurityGroupIds=groups)
        plain = restore("shop-drill-0002", DBSubnetGroupName=subnet_group)
        sbx.steps_until(lambda: _status(rds, "shop-drill-0001"), lambda s: s == "available")
    assert (db["DBSubnetGroup"]["DBSubnetGroupName"], db["DBSubnetGroup"]["VpcId"]) == \
        (subnet_group, reg["network"]["vpc_id"])
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == groups
    assert (db["StorageEncrypted"], db["KmsKeyId"]) == (True, reg["database"]["kms_key_id"])
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [reg["network"]["vpc_id"]]},
                                                   {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    assert [g["VpcSecurityGroupId"] for g in plain["VpcSecurityGroups"]] == [default["GroupId"]]
    state = sbx.control("GET", "/_sandbox/state")[1]["regions"][region]
    drill = next(d for d in state["databases"] if d["id"] == "shop-drill-0001")
    assert (drill["role"], drill["in_vpc"], drill["db_subnet_group"], drill["vpc_security_groups"],
            drill["storage_encrypted"], drill["kms_key_id"]) == \
        ("writer", True, subnet_group, groups, True, reg["database"]["kms_key_id"])
    assert state["app_database"] == reg["database"]["instance_id"]  # production untouched


def test_load_balancer_serves_only_while_it_has_a_listener(sbx):
    """An ALB without an ELBv2 listener refuses connections (nothing listens on its port);
    CreateListener opens it, DeleteListener closes it again; the URL is known from creation.
    Before: served (503) from CreateLoadBalancer on, and still served after DeleteListener."""
    ec2, elb = sbx.client("ec2", "us-west-2"), sbx.client("elbv2", "us-west-2")
    vpc = ec2.create_vpc(CidrBlock="10.98.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.98.{i}.0/24", AvailabilityZone=f"us-west-2{az}")
               ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    lb = elb.create_load_balancer(Name="drill-lb", Subnets=subnets, Type="application", Tags=TAG)["LoadBalancers"][0]
    tg = elb.create_target_group(Name="drill-tg", Protocol="HTTP", Port=80, VpcId=vpc, Tags=TAG)["TargetGroups"][0]
    iid = ec2.run_instances(ImageId="ami-04681a1dbd79675a5", MinCount=1, MaxCount=1, SubnetId=subnets[0])[
        "Instances"][0]["InstanceId"]
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": iid}])
    listed = sbx.listeners()["drill-lb"]
    assert listed["open"] is False and listed["dns_name"] == lb["DNSName"]
    port = listed["port"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    lst = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    url = sbx.listeners()["drill-lb"]["url"]
    assert http_get(url + "/health")[:2] == (200, "ok")
    elb.delete_listener(ListenerArn=lst["Listeners"][0]["ListenerArn"])
    assert sbx.listeners()["drill-lb"]["open"] is False
    with pytest.raises(OSError):
        http_get(url + "/health", timeout=2)


def test_seeded_app_reports_its_database(seeded):
    """The seeded app names the database its region's ``db`` CNAME points at; ``/db`` is 200."""
    sbx, topo, _ = seeded
    for region, reg in topo["regions"].items():
        status, body, headers = http_get(reg["albs"]["backend"]["url"] + "/")
        assert status == 200 and f"region={region}" in body
        assert f"database={reg['database']['instance_id']}" in body
        assert f"database_endpoint={reg['database']['endpoint']}:{reg['database']['port']}" in body
        assert headers["x-drsandbox-database"] == reg["database"]["instance_id"]
        status, body, _ = http_get(reg["albs"]["backend"]["url"] + "/db")
        assert status == 200 and "database_reachable=yes" in body


def test_isolated_drill_end_to_end(seeded):
    """The whole isolated drill in the standby region, beside production: restore the replica's
    snapshot, launch the copied AMI with user data pointing at the restored database, put it
    behind its own target group, load balancer and listener, prove the app answers from the
    standby region and reaches the drill database (``/db`` 503 until the restore is available,
    then 200), find everything by tag, tear it down, find no leftovers."""
    sbx, topo, _ = seeded
    region = topo["standby_region"]
    reg = topo["regions"][region]
    ec2, elb = sbx.client("ec2", region), sbx.client("elbv2", region)
    tagging = sbx.client("resourcegroupstaggingapi", region)
    sbx.pause()  # the restore stays ``creating`` until stepped: the app's 503 is always checked
    rds, db = _restore_from_replica(sbx, topo)
    endpoint = f"shop-drill-0001.aaaaaaaaaa.{region}.rds.amazonaws.com"
    assert db["Endpoint"]["Address"] == endpoint

    images = ec2.describe_images(Owners=["self"])["Images"]
    ami = max(images, key=lambda i: i["CreationDate"])["ImageId"]
    assert ami == reg["asgs"]["backend"]["ami_id"]
    user_data = f"#!/bin/bash\nexport DB_HOST={endpoint}\n/opt/shop/start\n"
    run = ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2, InstanceType="t3.micro",
                            SubnetId=reg["network"]["subnet_ids"][0], UserData=user_data,
                            TagSpecifications=[{"ResourceType": "instance", "Tags": TAG}])
    ids = [i["InstanceId"] for i in run["Instances"]]
    tg = elb.create_target_group(Name="shop-drill-0001", Protocol="HTTP", Port=80, VpcId=reg["network"]["vpc_id"],
                                 HealthCheckPath="/health", Tags=TAG)["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": i} for i in ids])
    lb = elb.create_load_balancer(Name="shop-drill-0001", Subnets=reg["network"]["subnet_ids"],
                                  Type="application", Tags=TAG)["LoadBalancers"][0]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, Tags=TAG,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    url = sbx.listeners()[lb["DNSName"].split("-1.")[0]]["url"]

    # While the restore is still creating, the app answers but cannot reach its database.
    assert _status(rds, "shop-drill-0001") == "creating"
    status, body, _ = http_get(url + "/db")
    assert status == 503 and "database=shop-drill-0001" in body and "database_reachable=no" in body
    sbx.resume()
    wait_for(lambda: _status(rds, "shop-drill-0001") == "available", timeout=10, what="restore")
    served = set()
    for _ in range(4):
        status, body, headers = http_get(url + "/db")
        assert status == 200, body
        assert f"region={region}" in body and "database=shop-drill-0001" in body
        assert f"database_endpoint={endpoint}:3306" in body and "database_reachable=yes" in body
        served.add(headers["x-drsandbox-target"])
    assert served == set(ids)  # round robin over both targets
    # Production still uses the replica.
    assert "database=shop-db-usw2" in http_get(reg["albs"]["backend"]["url"] + "/")[1]

    found = tagging.get_resources(TagFilters=[{"Key": "drctl:drill", "Values": [RUN]}])["ResourceTagMappingList"]
    arns = {m["ResourceARN"] for m in found}
    assert {lb["LoadBalancerArn"], tg["TargetGroupArn"], db["DBInstanceArn"]} <= arns
    assert all(any(a.endswith(f"instance/{i}") for a in arns) for i in ids)

    # Teardown.
    for lst in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
        elb.delete_listener(ListenerArn=lst["ListenerArn"])
    with pytest.raises(OSError):
        http_get(url + "/health", timeout=2)
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    states = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert {s["CurrentState"]["Name"] for s in states} == {"shutting-down"}
    rds.delete_db_instance(DBInstanceIdentifier="shop-drill-0001", SkipFinalSnapshot=True)
    left = tagging.get_resources(TagFilters=[{"Key": "drctl:drill", "Values": [RUN]}])["ResourceTagMappingList"]
    # Terminated instances stay visible for a while (as on EC2): a leftover check looks at their state.
    live = [m["ResourceARN"] for m in left if ":instance/" not in m["ResourceARN"]]
    assert live == []
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:drctl:drill", "Values": [RUN]}])["Reservations"]
    assert {i["State"]["Name"] for r in reservations for i in r["Instances"]} <= {"shutting-down", "terminated"}
    assert lb["DNSName"].split("-1.")[0] not in sbx.listeners()


def test_db_host_from_launch_template_user_data(sbx):
    """An instance launched from a launch template gets the template's user data (EC2), and so
    the DB_HOST it sets; a host that names no database is reported and ``/db`` is 503."""
    ec2 = sbx.client("ec2", "us-west-2")
    lt = ec2.create_launch_template(LaunchTemplateName="drill-lt", LaunchTemplateData={
        "ImageId": "ami-04681a1dbd79675a5",
        "UserData": base64.b64encode(b"DB_HOST=nowhere.example.internal\n").decode()})["LaunchTemplate"]
    alb = sbx.make_alb("us-west-2", instances=0)
    iid = ec2.run_instances(LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"]}, MinCount=1, MaxCount=1,
                            SubnetId=alb["subnets"][0])["Instances"][0]["InstanceId"]
    sbx.client("elbv2", "us-west-2").register_targets(TargetGroupArn=alb["tg"], Targets=[{"Id": iid}])
    status, body, _ = http_get(alb["url"] + "/db")
    assert status == 503
    assert "database_host=nowhere.example.internal" in body and "database=none" in body
    assert http_get(alb["url"] + "/health")[:2] == (200, "ok")


ROLE = "arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole"


def test_backup_recovery_point_of_the_replica_restores_as_a_drill_database(seeded):
    """AWS Backup of the standby replica: StartBackupJob on its ARN makes an ``RDS`` recovery
    point (a DB snapshot ``awsbackup:job-...``, type ``awsbackup``); StartRestoreJob with
    Metadata DBInstanceIdentifier restores it as a standalone instance and the job completes,
    naming it, once the instance is available. The sandbox before this fix answered
    InvalidParameterValueException ("EC2 instances only"); moto 5.2.5 has no route (404)."""
    sbx, topo, _ = seeded
    region = topo["standby_region"]
    reg = topo["regions"][region]
    backup, rds = sbx.client("backup", region), sbx.client("rds", region)
    vault = reg["backup_vault"]["name"]
    job = backup.start_backup_job(BackupVaultName=vault, ResourceArn=reg["database"]["arn"], IamRoleArn=ROLE)
    assert job["RecoveryPointArn"].startswith(f"arn:aws:rds:{region}:123456789012:snapshot:awsbackup:job-")
    wait_for(lambda: backup.describe_backup_job(BackupJobId=job["BackupJobId"])["State"] == "COMPLETED",
             timeout=10, what="backup job")
    points = backup.list_recovery_points_by_backup_vault(BackupVaultName=vault, ByResourceType="RDS")["RecoveryPoints"]
    newest = max(points, key=lambda p: p["CreationDate"])
    assert newest["RecoveryPointArn"] == job["RecoveryPointArn"] and newest["Status"] == "COMPLETED"
    snaps = rds.describe_db_snapshots(DBInstanceIdentifier=reg["database"]["instance_id"],
                                      SnapshotType="awsbackup")["DBSnapshots"]
    assert [s["Status"] for s in snaps] == ["available"]

    with pytest.raises(backup.exceptions.InvalidParameterValueException):
        backup.start_restore_job(RecoveryPointArn=newest["RecoveryPointArn"], IamRoleArn=ROLE, Metadata={})
    with sbx.paused():  # PENDING and RUNNING are seen, in order, however slow the machine
        restore = backup.start_restore_job(RecoveryPointArn=newest["RecoveryPointArn"], IamRoleArn=ROLE,
                                           ResourceType="RDS", Metadata={"DBInstanceIdentifier": "shop-drill-bk",
                                                                         "DBInstanceClass": "db.t3.micro"})
        job = lambda: backup.describe_restore_job(RestoreJobId=restore["RestoreJobId"])  # noqa: E731
        seen = sbx.steps_until(lambda: job()["Status"], lambda s: s in ("COMPLETED", "FAILED"))
        j = job()
    assert seen == ["PENDING", "RUNNING", "COMPLETED"], seen
    assert j["Status"] == "COMPLETED", j.get("StatusMessage")
    assert j["CreatedResourceArn"] == f"arn:aws:rds:{region}:123456789012:db:shop-drill-bk"
    db = rds.describe_db_instances(DBInstanceIdentifier="shop-drill-bk")["DBInstances"][0]
    assert db["DBInstanceStatus"] == "available" and "ReadReplicaSourceDBInstanceIdentifier" not in db
    rds.add_tags_to_resource(ResourceName=db["DBInstanceArn"], Tags=TAG)

    # A second restore under the same id fails the job, as RDS refuses the id.
    again = backup.start_restore_job(RecoveryPointArn=newest["RecoveryPointArn"], IamRoleArn=ROLE,
                                     Metadata={"DBInstanceIdentifier": "shop-drill-bk"})
    j = wait_for(lambda: (lambda x: x if x["Status"] in ("COMPLETED", "FAILED") else None)(
        backup.describe_restore_job(RestoreJobId=again["RestoreJobId"])), timeout=10, what="second restore")
    assert j["Status"] == "FAILED" and "already exists" in j["StatusMessage"].lower()

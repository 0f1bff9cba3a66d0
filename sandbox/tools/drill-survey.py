#!/usr/bin/env python3
"""Survey: what an isolated game-day drill needs from AWS, against a running, seeded sandbox.

    python -m drsandbox serve --port 0 --profile instant &       # -> URL
    python -m drsandbox seed --endpoint URL --out DIR
    python sandbox/tools/drill-survey.py URL DIR/topology.json

Every line is ``[section] call | observation``; it reports what the sandbox answers, and the
README's "Game-day drills" section says which of these AWS does differently.
"""
import json
import sys
import time
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

URL, TOPO = sys.argv[1], json.load(open(sys.argv[2]))
R = TOPO["standby_region"]
RUN = "drill-20261201-0001"
TAG = [{"Key": "drctl:drill", "Value": RUN}]
CFG = Config(retries={"total_max_attempts": 1})


def c(svc, region=R):
    return boto3.client(svc, region_name=region, endpoint_url=URL, config=CFG,
                        aws_access_key_id="test", aws_secret_access_key="test")


def say(section, call, obs):
    print(f"[{section}] {call} | {obs}", flush=True)


def tryit(section, call, fn):
    try:
        return fn()
    except ClientError as e:
        say(section, call, f"ERROR {e.response['Error'].get('Code')}: {e.response['Error'].get('Message')}")
    except Exception as e:  # noqa: BLE001
        say(section, call, f"ERROR {type(e).__name__}: {str(e)[:300]}")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, r.read().decode()[:300]
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()[:300]
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {e}"


def listeners():
    with urllib.request.urlopen(URL + "/_sandbox/listeners") as r:
        return {l.get("dns_name"): l for l in json.load(r)["listeners"]}


rds, ec2, elb, bk = c("rds"), c("ec2"), c("elbv2"), c("backup")
reg = TOPO["regions"][R]
replica = reg["database"]["instance_id"]

# ---------------------------------------------------------------- (b) snapshots and restores
snaps = rds.describe_db_snapshots(DBInstanceIdentifier=replica)["DBSnapshots"]
say("rds", "DescribeDBSnapshots(replica)", f"{len(snaps)} snapshots: "
    + ", ".join(f"{s['DBSnapshotIdentifier']}({s['SnapshotType']},{s['Status']})" for s in snaps))
s = tryit("rds", "CreateDBSnapshot(replica)", lambda: rds.create_db_snapshot(
    DBInstanceIdentifier=replica, DBSnapshotIdentifier="drill-src", Tags=[{"Key": "snap", "Value": "1"}])["DBSnapshot"])
if s:
    say("rds", "CreateDBSnapshot(replica)", f"status={s['Status']} type={s['SnapshotType']}")
r = tryit("rds", "RestoreDBInstanceFromDBSnapshot", lambda: rds.restore_db_instance_from_db_snapshot(
    DBInstanceIdentifier=f"shop-drill-{RUN[-4:]}", DBSnapshotIdentifier="drill-src", DBInstanceClass="db.t3.micro",
    Tags=TAG, CopyTagsToSnapshot=True)["DBInstance"])
if r:
    say("rds", "RestoreDBInstanceFromDBSnapshot", f"status={r['DBInstanceStatus']} endpoint={r.get('Endpoint')} "
        f"copy_tags={r.get('CopyTagsToSnapshot')} replica_source={r.get('ReadReplicaSourceDBInstanceIdentifier')} "
        f"pg={[g['DBParameterGroupName'] for g in r.get('DBParameterGroups', [])]} tags={r.get('TagList')}")
    seen = []
    for _ in range(20):
        st = rds.describe_db_instances(DBInstanceIdentifier=r["DBInstanceIdentifier"])["DBInstances"][0]["DBInstanceStatus"]
        if not seen or seen[-1] != st:
            seen.append(st)
        time.sleep(0.1)
    say("rds", "DescribeDBInstances(restored) over 2 s", " -> ".join(seen))
    tags = rds.list_tags_for_resource(ResourceName=r["DBInstanceArn"])["TagList"]
    say("rds", "ListTagsForResource(restored)", tags)
r2 = tryit("rds", "Restore without Tags (snapshot tags?)", lambda: rds.restore_db_instance_from_db_snapshot(
    DBInstanceIdentifier="shop-drill-notags", DBSnapshotIdentifier="drill-src")["DBInstance"])
if r2:
    say("rds", "Restore without Tags", f"tags={rds.list_tags_for_resource(ResourceName=r2['DBInstanceArn'])['TagList']}")
    rds.delete_db_instance(DBInstanceIdentifier="shop-drill-notags", SkipFinalSnapshot=True)

# AWS Backup: a recovery point of the replica
job = tryit("backup", "StartBackupJob(RDS replica)", lambda: bk.start_backup_job(
    BackupVaultName=reg["backup_vault"]["name"], ResourceArn=reg["database"]["arn"],
    IamRoleArn="arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole"))
if job:
    say("backup", "StartBackupJob(RDS replica)", job["RecoveryPointArn"])
    for _ in range(100):
        if bk.describe_backup_job(BackupJobId=job["BackupJobId"])["State"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.1)
    rj = tryit("backup", "StartRestoreJob(RDS)", lambda: bk.start_restore_job(
        RecoveryPointArn=job["RecoveryPointArn"], IamRoleArn="arn:aws:iam::123456789012:role/x",
        Metadata={"DBInstanceIdentifier": "shop-drill-bk"}))
    if rj:
        seen = []
        for _ in range(100):
            d = bk.describe_restore_job(RestoreJobId=rj["RestoreJobId"])
            if not seen or seen[-1] != d["Status"]:
                seen.append(d["Status"])
            if d["Status"] in ("COMPLETED", "FAILED"):
                break
            time.sleep(0.05)
        say("backup", "DescribeRestoreJob(RDS)", f"{' -> '.join(seen)} created={d.get('CreatedResourceArn')} "
            f"msg={d.get('StatusMessage')}")
        tryit("rds", "DeleteDBInstance(shop-drill-bk)", lambda: rds.delete_db_instance(
            DBInstanceIdentifier="shop-drill-bk", SkipFinalSnapshot=True))
rps = bk.list_recovery_points_by_backup_vault(BackupVaultName=reg["backup_vault"]["name"])["RecoveryPoints"]
say("backup", "ListRecoveryPointsByBackupVault(standby)", [(p["ResourceType"], p["Status"]) for p in rps])

# ---------------------------------------------------------------- (c) instances
ami = reg["asgs"]["backend"]["ami_id"]
run = ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2, InstanceType="t3.micro",
                        SubnetId=reg["network"]["subnet_ids"][0],
                        UserData="DB_HOST=shop-drill-0001.example\n",
                        TagSpecifications=[{"ResourceType": "instance", "Tags": TAG},
                                           {"ResourceType": "volume", "Tags": TAG}])
ids = [i["InstanceId"] for i in run["Instances"]]
say("ec2", "RunInstances(TagSpecifications)", f"states={[i['State']['Name'] for i in run['Instances']]} "
    f"tags={run['Instances'][0].get('Tags')}")
d = ec2.describe_instances(Filters=[{"Name": "tag:drctl:drill", "Values": [RUN]}])
say("ec2", "DescribeInstances(tag filter)", [i["InstanceId"] in ids for rr in d["Reservations"] for i in rr["Instances"]])
vols = ec2.describe_volumes(Filters=[{"Name": "tag:drctl:drill", "Values": [RUN]}])["Volumes"]
say("ec2", "DescribeVolumes(tag filter; volume TagSpecification)", f"{len(vols)} volumes")
ud = ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="userData")["UserData"]
say("ec2", "DescribeInstanceAttribute(userData)", ud)

# ---------------------------------------------------------------- (a) ALB made through the API
vpc = reg["network"]["vpc_id"]
tg = elb.create_target_group(Name="drill-0001", Protocol="HTTP", Port=80, VpcId=vpc, HealthCheckPath="/health",
                             Tags=TAG)["TargetGroups"][0]
lb = elb.create_load_balancer(Name="drill-0001", Subnets=reg["network"]["subnet_ids"], Type="application",
                              Tags=TAG)["LoadBalancers"][0]
say("elbv2", "CreateLoadBalancer", f"state={lb['State']} dns={lb['DNSName']}")
l = listeners().get(lb["DNSName"])
say("elbv2", "local listener before CreateListener", f"{l and l['url']} GET / -> {l and get(l['url'] + '/')}")
elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": i} for i in ids])
say("elbv2", "GET / before CreateListener, targets registered in an unattached TG", get(l["url"] + "/"))
lst = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, Tags=TAG,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]
say("elbv2", "GET / after CreateListener", get(l["url"] + "/"))
say("elbv2", "GET /health after CreateListener", get(l["url"] + "/health"))
th = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
say("elbv2", "DescribeTargetHealth", [t["TargetHealth"]["State"] for t in th])
say("elbv2", "DescribeLoadBalancers state", elb.describe_load_balancers(
    LoadBalancerArns=[lb["LoadBalancerArn"]])["LoadBalancers"][0]["State"])
say("elbv2", "DescribeTags", [(t["ResourceArn"].split(":")[-1][:30], t["Tags"]) for t in elb.describe_tags(
    ResourceArns=[lb["LoadBalancerArn"], tg["TargetGroupArn"], lst["ListenerArn"]])["TagDescriptions"]])
prod = reg["albs"]["backend"]
say("elbv2", "seeded backend ALB GET /", get(prod["url"] + "/"))

# ---------------------------------------------------------------- (d) discovery by tag
tagging = c("resourcegroupstaggingapi")
res = tryit("tagging", "GetResources(drctl:drill)", lambda: tagging.get_resources(
    TagFilters=[{"Key": "drctl:drill", "Values": [RUN]}])["ResourceTagMappingList"])
if res is not None:
    say("tagging", "GetResources(drctl:drill)", sorted(m["ResourceARN"].split(":")[2] + ":" +
                                                        m["ResourceARN"].split(":")[-1][:40] for m in res))
for rt in (["ec2:instance"], ["rds:db"], ["elasticloadbalancing:loadbalancer"], ["elasticloadbalancing:targetgroup"]):
    res = tryit("tagging", f"GetResources({rt})", lambda: tagging.get_resources(
        TagFilters=[{"Key": "drctl:drill", "Values": [RUN]}], ResourceTypeFilters=rt)["ResourceTagMappingList"])
    if res is not None:
        say("tagging", f"GetResources({rt})", len(res))

# ---------------------------------------------------------------- teardown
say("elbv2", "DeleteListener", tryit("elbv2", "DeleteListener", lambda: elb.delete_listener(
    ListenerArn=lst["ListenerArn"]) and "ok"))
say("elbv2", "GET / after DeleteListener", get(l["url"] + "/"))
tryit("elbv2", "DeleteLoadBalancer", lambda: elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"]))
say("elbv2", "GET / after DeleteLoadBalancer", get(l["url"] + "/"))
tryit("elbv2", "DeleteTargetGroup", lambda: elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"]))
t = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
say("ec2", "TerminateInstances", [(x["PreviousState"]["Name"], x["CurrentState"]["Name"]) for x in t])
say("ec2", "DescribeInstances after terminate", [i["State"]["Name"] for rr in ec2.describe_instances(
    InstanceIds=ids)["Reservations"] for i in rr["Instances"]])
if r:
    dd = tryit("rds", "DeleteDBInstance", lambda: rds.delete_db_instance(
        DBInstanceIdentifier=r["DBInstanceIdentifier"], SkipFinalSnapshot=True)["DBInstance"])
    if dd:
        say("rds", "DeleteDBInstance", f"status={dd['DBInstanceStatus']}")
        x = tryit("rds", "DescribeDBInstances after delete", lambda: rds.describe_db_instances(
            DBInstanceIdentifier=r["DBInstanceIdentifier"])["DBInstances"][0]["DBInstanceStatus"])
        say("rds", "DescribeDBInstances after delete", x)
res = tryit("tagging", "GetResources after teardown", lambda: tagging.get_resources(
    TagFilters=[{"Key": "drctl:drill", "Values": [RUN]}])["ResourceTagMappingList"])
say("tagging", "GetResources after teardown", res and [m["ResourceARN"].split(":")[-1][:50] for m in res])

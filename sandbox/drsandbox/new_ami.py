"""Last night's backup reaches the standby: ``python -m drsandbox new-ami``.

On a seeded sandbox, does what the seed did once, the way AWS Backup's plan would do it
every night: backs up one InService instance of the primary region's frontend ASG into the
primary vault (start_backup_job, waits for COMPLETED), then copies that recovery point into
the standby region's vault (start_copy_job, waits for COMPLETED). The standby vault then holds
a COMPLETED recovery point whose AMI is ``available`` and newer - by CreationDate, strictly
(see ``backup._after_the_newest``) - than the copy the standby launch templates run, so
drctl's ``ec2.latest_image`` finds it and ``ec2.update_launch_template`` has work to do.

Names come from the seed's ``topology.json`` when a directory is given (``seed --out DIR``),
otherwise from the API: the vaults ``shop-vault-<region>`` and the ASG tagged ``app=shop``,
``tier=frontend`` in the primary region. Everything goes through the public APIs (boto3).
"""

from __future__ import annotations

import json
import os

from .control_client import call
from .seed import APP, PRIMARY, ROLE_ARN, SHORT, STANDBY, SeedError, _Clients, _wait


class NewAmiError(SeedError):
    pass


def _from_topology(out_dir: str) -> dict:
    path = os.path.join(out_dir, "topology.json")
    try:
        with open(path, encoding="utf-8") as f:
            t = json.load(f)
        regions = t["regions"]
        return {"account": t["account_id"],
                "primary": t.get("primary_region", PRIMARY), "standby": t.get("standby_region", STANDBY),
                "source_vault": regions[t.get("primary_region", PRIMARY)]["backup_vault"]["name"],
                "dest_vault_arn": regions[t.get("standby_region", STANDBY)]["backup_vault"]["arn"],
                "asg": regions[t.get("primary_region", PRIMARY)]["asgs"]["frontend"]["name"]}
    except FileNotFoundError as e:
        raise NewAmiError(f"no {path}: seed first with `python -m drsandbox seed --out {out_dir}`") from e
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise NewAmiError(f"{path} is not a seed's topology.json ({type(e).__name__}: {e})") from e


def _from_api(c: _Clients) -> dict:
    vaults = {}
    for region in (PRIMARY, STANDBY):
        name = f"{APP}-vault-{SHORT[region]}"
        found = [v for v in c("backup", region).list_backup_vaults()["BackupVaultList"] if v["BackupVaultName"] == name]
        if not found:
            raise NewAmiError(f"no backup vault {name} in {region}: is the sandbox seeded?")
        vaults[region] = found[0]
    groups = [g for g in c("autoscaling", PRIMARY).describe_auto_scaling_groups()["AutoScalingGroups"]
              if {"app": APP, "tier": "frontend"}.items() <= {t["Key"]: t["Value"] for t in g.get("Tags", [])}.items()]
    if not groups:
        raise NewAmiError(f"no ASG tagged app={APP}, tier=frontend in {PRIMARY}: is the sandbox seeded?")
    return {"account": c("sts").get_caller_identity()["Account"], "primary": PRIMARY, "standby": STANDBY,
            "source_vault": vaults[PRIMARY]["BackupVaultName"], "dest_vault_arn": vaults[STANDBY]["BackupVaultArn"],
            "asg": sorted(g["AutoScalingGroupName"] for g in groups)[0]}


def _done(what: str, describe, timeout: float):
    """Wait for a job to be COMPLETED; a job that ends any other way is an error at once."""
    def poll():
        job = describe()
        state = job.get("State")
        if state in ("FAILED", "ABORTED", "EXPIRED", "PARTIAL"):
            raise NewAmiError(f"{what} {state}: {job.get('StatusMessage', 'no message')}")
        return job if state == "COMPLETED" else None
    return _wait(what, poll, timeout=timeout)


def new_ami(endpoint: str, out_dir: str | None = None, timeout: float = 300.0) -> dict:
    """Back up a primary frontend instance and copy it to the standby vault; returns
    ``{"recovery_point_arn", "copied_ami_id", "region"}`` of the copy in the standby."""
    call(endpoint, "GET", "/_sandbox/healthz")
    c = _Clients(endpoint)
    names = _from_topology(out_dir) if out_dir else _from_api(c)
    primary, standby = names["primary"], names["standby"]

    groups = c("autoscaling", primary).describe_auto_scaling_groups(
        AutoScalingGroupNames=[names["asg"]])["AutoScalingGroups"]
    if not groups:
        raise NewAmiError(f"no ASG {names['asg']} in {primary}: is this the sandbox that was seeded?")
    running = [i["InstanceId"] for i in groups[0]["Instances"] if i["LifecycleState"] == "InService"]
    if not running:
        raise NewAmiError(f"ASG {names['asg']} in {primary} has no InService instance to back up")

    b1 = c("backup", primary)
    job = b1.start_backup_job(BackupVaultName=names["source_vault"], IamRoleArn=ROLE_ARN,
                              ResourceArn=f"arn:aws:ec2:{primary}:{names['account']}:instance/{sorted(running)[0]}")
    _done("backup job", lambda: b1.describe_backup_job(BackupJobId=job["BackupJobId"]), timeout)
    copy = b1.start_copy_job(RecoveryPointArn=job["RecoveryPointArn"], SourceBackupVaultName=names["source_vault"],
                             DestinationBackupVaultArn=names["dest_vault_arn"], IamRoleArn=ROLE_ARN)
    copy_job = _done("copy job", lambda: b1.describe_copy_job(CopyJobId=copy["CopyJobId"])["CopyJob"], timeout)
    point_arn = copy_job["DestinationRecoveryPointArn"]
    ami_id = point_arn.split("/")[-1]

    # What drctl's ec2.latest_image will see: this image available and strictly the newest
    # of the standby vault's COMPLETED recovery points.
    dest_vault = names["dest_vault_arn"].split(":backup-vault:", 1)[-1]
    points = c("backup", standby).list_recovery_points_by_backup_vault(BackupVaultName=dest_vault)["RecoveryPoints"]
    ids = {p["RecoveryPointArn"].split("/")[-1] for p in points
           if p.get("Status") == "COMPLETED" and ":image/" in p["RecoveryPointArn"]}
    if ami_id not in ids:
        raise NewAmiError(f"copied recovery point {point_arn} is not COMPLETED in {dest_vault}")
    images = {i["ImageId"]: i for i in c("ec2", standby).describe_images(ImageIds=sorted(ids))["Images"]}
    mine = images.get(ami_id)
    if mine is None or mine["State"] != "available":
        raise NewAmiError(f"copied AMI {ami_id} is {mine['State'] if mine else 'missing'} in {standby}")
    # (moto formats every CreationDate alike, %Y-%m-%dT%H:%M:%S.000Z, so strings compare as times.)
    rivals = [i for k, i in images.items() if k != ami_id and i.get("CreationDate", "") >= mine["CreationDate"]]
    if rivals:
        raise NewAmiError(f"copied AMI {ami_id} ({mine['CreationDate']}) is not newer than "
                          f"{rivals[0]['ImageId']} ({rivals[0]['CreationDate']}) in {dest_vault}")
    return {"recovery_point_arn": point_arn, "copied_ami_id": ami_id, "region": standby}

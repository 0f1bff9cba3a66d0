"""AWS Backup jobs over moto's EC2 backend.

Plain moto answers create_backup_selection with a 500 and has no route (404) for backup,
copy and restore jobs or recovery points, so every test here fails there.
"""

import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import wait_for

ROLE = "arn:aws:iam::123456789012:role/backup"


def _setup(sbx):
    b1, b2 = sbx.client("backup", "us-east-1"), sbx.client("backup", "us-west-2")
    b1.create_backup_vault(BackupVaultName="v1")
    v2 = b2.create_backup_vault(BackupVaultName="v2")["BackupVaultArn"]
    iid = sbx.client("ec2").run_instances(ImageId="ami-04681a1dbd79675a5", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return b1, b2, v2, f"arn:aws:ec2:us-east-1:123456789012:instance/{iid}"


def _backup(b1, resource):
    job = b1.start_backup_job(BackupVaultName="v1", ResourceArn=resource, IamRoleArn=ROLE)
    wait_for(lambda: b1.describe_backup_job(BackupJobId=job["BackupJobId"])["State"] == "COMPLETED", timeout=5)
    return job


def test_backup_selection_round_trip(sbx):
    """create/get/list/delete_backup_selection (moto: create answers 500)."""
    b1 = sbx.client("backup")
    plan = b1.create_backup_plan(BackupPlan={"BackupPlanName": "p", "Rules": [
        {"RuleName": "r", "TargetBackupVaultName": "v"}]})["BackupPlanId"]
    sel = b1.create_backup_selection(BackupPlanId=plan, BackupSelection={
        "SelectionName": "all", "IamRoleArn": ROLE, "Resources": ["arn:aws:ec2:*:*:instance/*"]})
    got = b1.get_backup_selection(BackupPlanId=plan, SelectionId=sel["SelectionId"])
    assert got["BackupSelection"]["SelectionName"] == "all"
    assert [s["SelectionId"] for s in b1.list_backup_selections(BackupPlanId=plan)["BackupSelectionsList"]] == [sel["SelectionId"]]
    b1.delete_backup_selection(BackupPlanId=plan, SelectionId=sel["SelectionId"])
    assert b1.list_backup_selections(BackupPlanId=plan)["BackupSelectionsList"] == []
    with pytest.raises(ClientError) as e:
        b1.create_backup_selection(BackupPlanId="nope", BackupSelection={"SelectionName": "x", "IamRoleArn": ROLE})
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_backup_job_makes_ami_recovery_point(sbx):
    """A backup of an EC2 instance goes CREATED/RUNNING -> COMPLETED and leaves an AMI
    recovery point in the vault (moto: no such operation)."""
    b1, _, _, resource = _setup(sbx)
    with sbx.paused():  # every state of the job is seen, in order
        job = b1.start_backup_job(BackupVaultName="v1", ResourceArn=resource, IamRoleArn=ROLE)
        first = b1.describe_backup_job(BackupJobId=job["BackupJobId"])
        assert first["State"] == "CREATED" and first["ResourceType"] == "EC2"
        ami = job["RecoveryPointArn"].split("/")[-1]
        assert job["RecoveryPointArn"] == f"arn:aws:ec2:us-east-1::image/{ami}"
        image = lambda: sbx.client("ec2").describe_images(ImageIds=[ami])["Images"][0]["State"]  # noqa: E731
        seen = sbx.steps_until(lambda: (b1.describe_backup_job(BackupJobId=job["BackupJobId"])["State"], image()),
                               lambda v: v[0] == "COMPLETED")
        assert seen == [("CREATED", "pending"), ("RUNNING", "pending"), ("COMPLETED", "available")]
    points = b1.list_recovery_points_by_backup_vault(BackupVaultName="v1")["RecoveryPoints"]
    assert [(p["RecoveryPointArn"], p["Status"]) for p in points] == [(job["RecoveryPointArn"], "COMPLETED")]
    assert b1.describe_recovery_point(BackupVaultName="v1", RecoveryPointArn=job["RecoveryPointArn"])["Status"] == "COMPLETED"
    assert [j["BackupJobId"] for j in b1.list_backup_jobs(ByState="COMPLETED")["BackupJobs"]] == [job["BackupJobId"]]
    assert b1.list_recovery_points_by_resource(ResourceArn=resource)["RecoveryPoints"][0]["Status"] == "COMPLETED"


def test_copy_job_copies_ami_to_destination_region(sbx):
    """A copy job goes CREATED/RUNNING -> COMPLETED and the AMI really exists in us-west-2's
    EC2 (describe-images there), with a recovery point in the destination vault."""
    b1, b2, v2, resource = _setup(sbx)
    job = _backup(b1, resource)
    with sbx.paused():
        copy = b1.start_copy_job(RecoveryPointArn=job["RecoveryPointArn"], SourceBackupVaultName="v1",
                                 DestinationBackupVaultArn=v2, IamRoleArn=ROLE)
        state = lambda: b1.describe_copy_job(CopyJobId=copy["CopyJobId"])["CopyJob"]["State"]  # noqa: E731
        assert sbx.steps_until(state, lambda s: s == "COMPLETED") == ["CREATED", "RUNNING", "COMPLETED"]
    done = wait_for(lambda: (lambda j: j if j["State"] == "COMPLETED" else None)(
        b1.describe_copy_job(CopyJobId=copy["CopyJobId"])["CopyJob"]), timeout=5)
    ami = done["DestinationRecoveryPointArn"].split("/")[-1]
    assert done["DestinationRecoveryPointArn"].startswith("arn:aws:ec2:us-west-2::image/")
    img = sbx.client("ec2", "us-west-2").describe_images(ImageIds=[ami])["Images"][0]
    assert img["State"] == "available"
    with pytest.raises(ClientError):
        sbx.client("ec2", "us-east-1").describe_images(ImageIds=[ami])
    points = b2.list_recovery_points_by_backup_vault(BackupVaultName="v2")["RecoveryPoints"]
    assert points[0]["RecoveryPointArn"] == done["DestinationRecoveryPointArn"]
    assert points[0]["SourceBackupVaultArn"].endswith("backup-vault:v1")
    assert [j["State"] for j in b1.list_copy_jobs(ByDestinationVaultArn=v2)["CopyJobs"]] == ["COMPLETED"]


def test_copy_job_fails_when_destination_region_is_down(sbx):
    """A copy that cannot reach its destination region ends FAILED, and no AMI appears."""
    b1, _, v2, resource = _setup(sbx)
    job = _backup(b1, resource)
    with sbx.paused():  # the outage starts while the copy is still running, however slow the machine
        copy = b1.start_copy_job(RecoveryPointArn=job["RecoveryPointArn"], SourceBackupVaultName="v1",
                                 DestinationBackupVaultArn=v2, IamRoleArn=ROLE)
        sbx.fault(region="us-west-2", kind="outage")
        job = lambda: b1.describe_copy_job(CopyJobId=copy["CopyJobId"])["CopyJob"]  # noqa: E731
        assert sbx.steps_until(lambda: job()["State"], lambda s: s in ("COMPLETED", "FAILED"))[-1] == "FAILED"
        done = job()
    assert done["State"] == "FAILED" and "us-west-2" in done["StatusMessage"]


def test_restore_job_launches_instance(sbx):
    """A restore of an EC2 recovery point launches an instance from its AMI."""
    b1, _, _, resource = _setup(sbx)
    job = _backup(b1, resource)
    r = b1.start_restore_job(RecoveryPointArn=job["RecoveryPointArn"], IamRoleArn=ROLE,
                             Metadata={"InstanceType": "t3.small"})
    done = wait_for(lambda: (lambda j: j if j["Status"] == "COMPLETED" else None)(
        b1.describe_restore_job(RestoreJobId=r["RestoreJobId"])), timeout=5)
    iid = done["CreatedResourceArn"].split("/")[-1]
    inst = sbx.client("ec2").describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["ImageId"] == job["RecoveryPointArn"].split("/")[-1]


def test_backup_validation(sbx):
    """Unknown vaults, non-EC2 resources and incomplete recovery points are rejected."""
    b1, _, v2, resource = _setup(sbx)
    with pytest.raises(ClientError) as e:
        b1.start_backup_job(BackupVaultName="nope", ResourceArn=resource, IamRoleArn=ROLE)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        b1.start_backup_job(BackupVaultName="v1", ResourceArn="arn:aws:rds:us-east-1:123456789012:db:x", IamRoleArn=ROLE)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with sbx.paused():  # the recovery point is still CREATING when the copy is asked for
        job = b1.start_backup_job(BackupVaultName="v1", ResourceArn=resource, IamRoleArn=ROLE)
        with pytest.raises(ClientError) as e:
            b1.start_copy_job(RecoveryPointArn=job["RecoveryPointArn"], SourceBackupVaultName="v1",
                              DestinationBackupVaultArn=v2, IamRoleArn=ROLE)
        assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        b1.describe_copy_job(CopyJobId=str(uuid.uuid4()))
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_copy_job_in_reverse_from_the_standby_vault(sbx):
    """The failback direction: a copy job started in us-west-2 from the standby vault into the
    us-east-1 vault copies the AMI recovery point into us-east-1's EC2 and completes over time,
    like the forward copy (moto: no StartCopyJob route, 404)."""
    b1, b2, v2, resource = _setup(sbx)
    v1 = b1.describe_backup_vault(BackupVaultName="v1")["BackupVaultArn"]
    job = _backup(b1, resource)
    forward = b1.start_copy_job(RecoveryPointArn=job["RecoveryPointArn"], SourceBackupVaultName="v1",
                                DestinationBackupVaultArn=v2, IamRoleArn=ROLE)
    copied = wait_for(lambda: (lambda j: j if j["State"] == "COMPLETED" else None)(
        b1.describe_copy_job(CopyJobId=forward["CopyJobId"])["CopyJob"]), timeout=5)["DestinationRecoveryPointArn"]
    with sbx.paused():
        back = b2.start_copy_job(RecoveryPointArn=copied, SourceBackupVaultName="v2", DestinationBackupVaultArn=v1,
                                 IamRoleArn=ROLE)
        state = lambda: b2.describe_copy_job(CopyJobId=back["CopyJobId"])["CopyJob"]["State"]  # noqa: E731
        assert sbx.steps_until(state, lambda s: s == "COMPLETED") == ["CREATED", "RUNNING", "COMPLETED"]
    done = wait_for(lambda: (lambda j: j if j["State"] == "COMPLETED" else None)(
        b2.describe_copy_job(CopyJobId=back["CopyJobId"])["CopyJob"]), timeout=5)
    assert done["SourceBackupVaultArn"].endswith("backup-vault:v2") and done["DestinationBackupVaultArn"] == v1
    assert done["DestinationRecoveryPointArn"].startswith("arn:aws:ec2:us-east-1::image/")
    ami = done["DestinationRecoveryPointArn"].split("/")[-1]
    assert sbx.client("ec2", "us-east-1").describe_images(ImageIds=[ami])["Images"][0]["State"] == "available"
    points = {p["RecoveryPointArn"]: p for p in b1.list_recovery_points_by_backup_vault(BackupVaultName="v1")["RecoveryPoints"]}
    assert points[done["DestinationRecoveryPointArn"]]["Status"] == "COMPLETED"
    assert points[done["DestinationRecoveryPointArn"]]["SourceBackupVaultArn"].endswith("backup-vault:v2")
    assert [j["CopyJobId"] for j in b2.list_copy_jobs(ByDestinationVaultArn=v1)["CopyJobs"]] == [back["CopyJobId"]]


def test_backup_and_copy_amis_are_strictly_newer_than_the_last(sbx):
    """EC2's CreationDate has whole seconds and drctl takes a vault's newest image by it:
    AMIs of backup and copy jobs started within one second still come out strictly in
    order (each one second after the newest of the account's AMIs in that region)."""
    b1, b2, v2, resource = _setup(sbx)
    jobs = [b1.start_backup_job(BackupVaultName="v1", ResourceArn=resource, IamRoleArn=ROLE) for _ in range(3)]
    east = sbx.client("ec2", "us-east-1")
    dates = [east.describe_images(ImageIds=[j["RecoveryPointArn"].split("/")[-1]])["Images"][0]["CreationDate"]
             for j in jobs]
    assert dates == sorted(set(dates)), dates
    for j in jobs:
        wait_for(lambda: b1.describe_backup_job(BackupJobId=j["BackupJobId"])["State"] == "COMPLETED", timeout=5)
    copies = [b1.start_copy_job(RecoveryPointArn=j["RecoveryPointArn"], SourceBackupVaultName="v1",
                                DestinationBackupVaultArn=v2, IamRoleArn=ROLE)["CopyJobId"] for j in jobs]
    arns = [wait_for(lambda: b1.describe_copy_job(CopyJobId=c)["CopyJob"].get("DestinationRecoveryPointArn"),
                     timeout=5) for c in copies]
    west = sbx.client("ec2", "us-west-2")
    dates = [west.describe_images(ImageIds=[a.split("/")[-1]])["Images"][0]["CreationDate"] for a in arns]
    assert dates == sorted(set(dates)), dates

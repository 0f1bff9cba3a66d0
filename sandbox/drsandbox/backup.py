"""AWS Backup jobs over moto's EC2 backend (moto has vaults and plans, but no jobs at all).

Implemented operations (moto 5.2.5 answers 404 or 500 for each of them):
create/get/list/delete_backup_selection, start/describe/list backup jobs,
list_recovery_points_by_backup_vault, describe_recovery_point,
list_recovery_points_by_resource, start/describe/list copy jobs, start/describe/list
restore jobs.

Semantics, following the AWS Backup API reference:

* A backup job of an EC2 instance creates an AMI in that region (pending while the job
  runs) and a recovery point ``arn:aws:ec2:<region>::image/<ami>`` in the vault. The job
  goes CREATED -> RUNNING -> COMPLETED over ``backup_job`` seconds; the recovery point is
  CREATING until then and COMPLETED after.
* A copy job (issued in the source region) copies the AMI into the destination vault's
  region - really, in moto's EC2 backend there, so ``ec2 describe-images`` shows it - and
  goes CREATED -> RUNNING -> COMPLETED over ``backup_copy_job`` seconds; only then does the
  destination recovery point appear.
* A restore job launches an instance from an EC2 recovery point's AMI
  (PENDING -> RUNNING -> COMPLETED over ``backup_restore_job`` seconds).
* A job still running when its region (or the copy's destination) suffers an ``outage``
  fault ends FAILED, as a job cut off from its service would.
* EC2 reports an image's CreationDate to the second, and drctl takes the newest image of a
  vault by it. Where the sandbox's compressed time puts an AMI made by a backup or copy job
  in the same second as another of the account's AMIs in that region, its CreationDate is
  set one second after the newest of them, so a later job's AMI is always strictly newer
  (see ``_after_the_newest``).

* RDS DB instances too: a backup job makes a DB snapshot ``awsbackup:job-<job id>`` (type
  ``awsbackup``; the recovery point is its ARN, ResourceType ``RDS``), ``creating`` until the
  job completes; a restore job (Metadata ``DBInstanceIdentifier`` required, plus
  DBInstanceClass, AvailabilityZone, DBSubnetGroupName, MultiAZ, Port, DBParameterGroupName,
  PubliclyAccessible, CopyTagsToSnapshot) restores it as RestoreDBInstanceFromDBSnapshot does
  and is COMPLETED (CreatedResourceArn = the instance) once the instance is ``available``.
  RDS recovery points are not copied across regions (InvalidParameterValueException).

Other resource types are rejected with InvalidParameterValueException (see README gaps). Backup plans are stored, not scheduled.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote

from moto.backup import urls as backup_urls
from moto.backup.exceptions import (InvalidParameterValueException, InvalidRequestException,
                                    ResourceNotFoundException)
from moto.backup.models import backup_backends
from moto.backup.responses import BackupResponse
from moto.core.exceptions import JsonRESTError

_SB = None
_lock = threading.RLock()


class MissingParameterValueException(JsonRESTError):
    def __init__(self, name: str) -> None:
        super().__init__("MissingParameterValueException", f"Missing required parameter: {name}")


class _State:
    """Sandbox-side Backup state of one (account, region); lives on moto's backend object so
    a moto reset discards it together with the vaults and plans."""

    def __init__(self) -> None:
        self.selections: dict[str, dict[str, dict]] = {}   # plan id -> selection id -> record
        self.backup_jobs: dict[str, dict] = {}
        self.copy_jobs: dict[str, dict] = {}
        self.restore_jobs: dict[str, dict] = {}
        self.points: dict[str, dict[str, dict]] = {}       # vault name -> arn -> record


def _state(backend) -> _State:
    with _lock:
        st = backend.__dict__.get("_sbx_backup")
        if st is None:
            st = backend.__dict__["_sbx_backup"] = _State()
        return st


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_") and v is not None}


def _vault(backend, name: str):
    if name not in backend.vaults:
        raise ResourceNotFoundException(msg=f"Backup vault {name} does not exist in {backend.region_name}.")
    return backend.vaults[name]


def _parse_arn(arn: str) -> list[str]:
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) != 6 or parts[0] != "arn":
        raise InvalidParameterValueException(msg=f"Invalid ARN: {arn}")
    return parts


def _region_down(region: str) -> bool:
    return _SB.faults.outage(region, "backup") is not None or _SB.faults.outage(region, "ec2") is not None


def _sync_vault_count(backend, vault_name: str) -> None:
    vault = backend.vaults.get(vault_name)
    if vault is not None:
        vault.num_of_recovery_points = len(_state(backend).points.get(vault_name, {}))


def _ec2(account: str, region: str):
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def _naive_utc(d: datetime) -> datetime:
    return d.astimezone(timezone.utc).replace(tzinfo=None) if d.tzinfo else d


def _after_the_newest(ec2, ami) -> None:
    """Make ``ami`` (just made by a backup or copy job) strictly newer, at EC2's one-second
    resolution, than every other AMI the same account owns in its region: if the clock has
    not left the second of the newest of them yet, stamp it one second after that. In AWS a
    night lies between two backups; in the sandbox they may be a fraction of a second
    apart, and a tie would leave "the newest image" to the order of a listing."""
    with _lock:
        others = [_naive_utc(a.creation_date) for a in list(ec2.amis.values())
                  if a is not ami and a.owner_id == ami.owner_id and isinstance(a.creation_date, datetime)]
        if not others:
            return
        floor = max(others).replace(microsecond=0) + timedelta(seconds=1)
        if _naive_utc(ami.creation_date) < floor:
            ami.creation_date = floor


def _ami_of(rp_arn: str) -> tuple[str, str]:
    """(region, ami id) of an EC2 recovery point ARN (arn:aws:ec2:<region>::image/<ami>)."""
    parts = _parse_arn(rp_arn)
    if parts[2] != "ec2" or not parts[5].startswith("image/"):
        raise InvalidParameterValueException(msg=f"Not an EC2 recovery point: {rp_arn}")
    return parts[3], parts[5].split("/", 1)[1]


def _find_point(backend, rp_arn: str, vault_name: str | None = None) -> dict:
    st = _state(backend)
    vaults = [vault_name] if vault_name else list(st.points)
    for v in vaults:
        rp = st.points.get(v, {}).get(rp_arn)
        if rp is not None:
            return rp
    where = f"vault {vault_name}" if vault_name else backend.region_name
    raise ResourceNotFoundException(msg=f"Recovery point {rp_arn} not found in {where}.")


# --------------------------------------------------------------------------- request helpers

def _body(self) -> dict:
    try:
        return json.loads(self.body or "{}") if self.body else {}
    except ValueError as e:
        raise InvalidParameterValueException(msg=f"Request body is not valid JSON: {e}") from e


def _query(self) -> dict[str, str]:
    raw = self.querystring or {}
    if not raw and "?" in getattr(self, "uri", ""):
        raw = parse_qs(self.uri.split("?", 1)[1])
    return {k: (v[0] if isinstance(v, list) else v) for k, v in raw.items()}


def _segments(self) -> list[str]:
    return [unquote(p) for p in self.path.split("?", 1)[0].strip("/").split("/")]


def _require(body: dict, *names: str) -> None:
    for n in names:
        if not body.get(n):
            raise MissingParameterValueException(n)


def _json(obj) -> str:
    return json.dumps(obj)


def _filter(records, query: dict, mapping: dict[str, str]):
    out = []
    for r in records:
        if all(str(r.get(field)) == query[param] for param, field in mapping.items() if param in query):
            out.append(r)
    return sorted(out, key=lambda r: r.get("CreationDate", 0), reverse=True)


# --------------------------------------------------------------------------- selections

def create_backup_selection(self) -> str:
    plan_id = _segments(self)[2]
    plan = self.backup_backend.plans.get(plan_id)
    if plan is None or plan.deletion_date is not None:
        raise ResourceNotFoundException(msg=f"Backup plan {plan_id} does not exist.")
    body = _body(self)
    sel = body.get("BackupSelection") or {}
    _require(sel, "SelectionName", "IamRoleArn")
    sel_id = str(uuid.uuid4())
    record = {"SelectionId": sel_id, "BackupPlanId": plan_id, "CreationDate": time.time(),
              "CreatorRequestId": body.get("CreatorRequestId"), "BackupSelection": sel}
    _state(self.backup_backend).selections.setdefault(plan_id, {})[sel_id] = record
    return _json({"SelectionId": sel_id, "BackupPlanId": plan_id, "CreationDate": record["CreationDate"]})


def _selection(self) -> dict:
    seg = _segments(self)
    plan_id, sel_id = seg[2], seg[4]
    record = _state(self.backup_backend).selections.get(plan_id, {}).get(sel_id)
    if record is None:
        raise ResourceNotFoundException(msg=f"Backup selection {sel_id} of plan {plan_id} does not exist.")
    return record


def get_backup_selection(self) -> str:
    return _json(_public(_selection(self)))


def delete_backup_selection(self) -> str:
    record = _selection(self)
    del _state(self.backup_backend).selections[record["BackupPlanId"]][record["SelectionId"]]
    return "{}"


def list_backup_selections(self) -> str:
    plan_id = _segments(self)[2]
    if plan_id not in self.backup_backend.plans:
        raise ResourceNotFoundException(msg=f"Backup plan {plan_id} does not exist.")
    items = [{"SelectionId": r["SelectionId"], "SelectionName": r["BackupSelection"].get("SelectionName"),
              "BackupPlanId": plan_id, "CreationDate": r["CreationDate"],
              "CreatorRequestId": r.get("CreatorRequestId"), "IamRoleArn": r["BackupSelection"].get("IamRoleArn")}
             for r in _state(self.backup_backend).selections.get(plan_id, {}).values()]
    return _json({"BackupSelectionsList": [_public(i) for i in items]})


# --------------------------------------------------------------------------- backup jobs

def start_backup_job(self) -> str:
    body = _body(self)
    _require(body, "BackupVaultName", "ResourceArn", "IamRoleArn")
    backend, region, account = self.backup_backend, self.region, self.current_account
    vault = _vault(backend, body["BackupVaultName"])
    parts = _parse_arn(body["ResourceArn"])
    is_rds = parts[2] == "rds" and parts[5].startswith("db:")
    if not is_rds and (parts[2] != "ec2" or not parts[5].startswith("instance/")):
        raise InvalidParameterValueException(
            msg=f"drsandbox supports backups of EC2 instances and RDS DB instances only, not {body['ResourceArn']}")
    if parts[3] != region:
        raise InvalidParameterValueException(
            msg=f"Resource {body['ResourceArn']} is not in {region}; start the job in the resource's region.")
    if is_rds:
        return _start_rds_backup_job(self, body, vault, parts[5].split(":", 1)[1])
    instance_id = parts[5].split("/", 1)[1]
    ec2 = _ec2(account, region)
    instance = ec2.get_instance_by_id(instance_id)
    if instance is None or instance.state == "terminated":
        raise InvalidParameterValueException(msg=f"Resource {body['ResourceArn']} does not exist.")
    job_id = str(uuid.uuid4()).upper()
    ami = ec2.create_image(instance_id, name=f"AwsBackup_{instance_id}_{job_id[:8]}",
                           description=f"This AMI was created by AWS Backup job {job_id}", tag_specifications=[])
    _after_the_newest(ec2, ami)
    ami.state = "pending"
    rp_arn = f"arn:aws:ec2:{region}::image/{ami.id}"
    now = time.time()
    total = _SB.profile.seconds("backup_job")
    created_by = {"BackupPlanId": body.get("BackupPlanId")} if body.get("BackupPlanId") else None
    job = {"AccountId": account, "BackupJobId": job_id, "BackupVaultName": vault.backup_vault_name,
           "BackupVaultArn": vault.backup_vault_arn, "RecoveryPointArn": rp_arn,
           "ResourceArn": body["ResourceArn"], "ResourceType": "EC2", "ResourceName": instance_id,
           "CreationDate": now, "State": "CREATED", "PercentDone": "0.0", "BackupSizeInBytes": 8589934592,
           "IamRoleArn": body["IamRoleArn"], "ExpectedCompletionDate": now + total, "IsParent": False,
           "BackupType": "", "CreatedBy": created_by, "Lifecycle": body.get("Lifecycle")}
    point = {"RecoveryPointArn": rp_arn, "BackupVaultName": vault.backup_vault_name,
             "BackupVaultArn": vault.backup_vault_arn, "ResourceArn": body["ResourceArn"], "ResourceType": "EC2",
             "ResourceName": instance_id, "IamRoleArn": body["IamRoleArn"], "Status": "CREATING",
             "CreationDate": now, "InitiationDate": now, "BackupSizeInBytes": 8589934592, "IsEncrypted": False,
             "IsParent": False, "VaultType": "BACKUP_VAULT", "Lifecycle": body.get("Lifecycle"),
             "CreatedBy": {"BackupPlanId": body["BackupPlanId"]} if body.get("BackupPlanId") else None}
    st = _state(backend)
    with _lock:
        st.backup_jobs[job_id] = job
        st.points.setdefault(vault.backup_vault_name, {})[rp_arn] = point
    _sync_vault_count(backend, vault.backup_vault_name)

    def running():
        if job["State"] == "CREATED":
            job.update(State="RUNNING", PercentDone="50.0", InitiationDate=time.time())

    def finish():
        if job["State"] not in ("CREATED", "RUNNING"):
            return
        if _region_down(region):
            job.update(State="FAILED", StatusMessage=f"Backup job failed: {region} is unavailable.",
                       CompletionDate=time.time())
            with _lock:
                st.points.get(vault.backup_vault_name, {}).pop(rp_arn, None)
            _sync_vault_count(backend, vault.backup_vault_name)
            ami.state = "failed"
            return
        ami.state = "available"
        done = time.time()
        point.update(Status="COMPLETED", CompletionDate=done)
        job.update(State="COMPLETED", PercentDone="100.0", CompletionDate=done)

    _SB.scheduler.after(total / 3, running)
    _SB.scheduler.after(total, finish)
    return _json({"BackupJobId": job_id, "RecoveryPointArn": rp_arn, "CreationDate": now, "IsParent": False})


def _rds(account: str, region: str):
    from moto.rds.models import rds_backends

    return rds_backends[account][region]


def _start_rds_backup_job(self, body: dict, vault, db_id: str) -> str:
    """A backup of an RDS DB instance is a DB snapshot named ``awsbackup:job-<job id>`` (type
    ``awsbackup``), ``creating`` while the job runs; its ARN is the recovery point's."""
    backend, region, account = self.backup_backend, self.region, self.current_account
    rds = _rds(account, region)
    db = rds.databases.get(db_id.lower())
    if db is None:
        raise InvalidParameterValueException(msg=f"Resource {body['ResourceArn']} does not exist.")
    job_id = str(uuid.uuid4()).upper()
    snap_id = f"awsbackup:job-{job_id.lower()}"
    snapshot = rds.create_db_snapshot(db.db_instance_identifier, snap_id, snapshot_type="awsbackup")
    snapshot.status = "creating"
    rp_arn = f"arn:aws:rds:{region}:{account}:snapshot:{snap_id}"
    now = time.time()
    total = _SB.profile.seconds("backup_job")
    plan = {"BackupPlanId": body["BackupPlanId"]} if body.get("BackupPlanId") else None
    size = int(db.allocated_storage or 20) * 1024 ** 3
    job = {"AccountId": account, "BackupJobId": job_id, "BackupVaultName": vault.backup_vault_name,
           "BackupVaultArn": vault.backup_vault_arn, "RecoveryPointArn": rp_arn,
           "ResourceArn": body["ResourceArn"], "ResourceType": "RDS", "ResourceName": db.db_instance_identifier,
           "CreationDate": now, "State": "CREATED", "PercentDone": "0.0", "BackupSizeInBytes": size,
           "IamRoleArn": body["IamRoleArn"], "ExpectedCompletionDate": now + total, "IsParent": False,
           "BackupType": "", "CreatedBy": plan, "Lifecycle": body.get("Lifecycle")}
    point = {"RecoveryPointArn": rp_arn, "BackupVaultName": vault.backup_vault_name,
             "BackupVaultArn": vault.backup_vault_arn, "ResourceArn": body["ResourceArn"], "ResourceType": "RDS",
             "ResourceName": db.db_instance_identifier, "IamRoleArn": body["IamRoleArn"], "Status": "CREATING",
             "CreationDate": now, "InitiationDate": now, "BackupSizeInBytes": size, "IsEncrypted": False,
             "IsParent": False, "VaultType": "BACKUP_VAULT", "Lifecycle": body.get("Lifecycle"), "CreatedBy": plan}
    st = _state(backend)
    with _lock:
        st.backup_jobs[job_id] = job
        st.points.setdefault(vault.backup_vault_name, {})[rp_arn] = point
    _sync_vault_count(backend, vault.backup_vault_name)

    def running():
        if job["State"] == "CREATED":
            job.update(State="RUNNING", PercentDone="50.0", InitiationDate=time.time())

    def finish():
        if job["State"] not in ("CREATED", "RUNNING"):
            return
        if _region_down(region) or _SB.faults.outage(region, "rds") is not None:
            job.update(State="FAILED", StatusMessage=f"Backup job failed: {region} is unavailable.",
                       CompletionDate=time.time())
            with _lock:
                st.points.get(vault.backup_vault_name, {}).pop(rp_arn, None)
            _sync_vault_count(backend, vault.backup_vault_name)
            rds.database_snapshots.pop(snap_id, None)
            return
        snapshot.status = "available"
        done = time.time()
        point.update(Status="COMPLETED", CompletionDate=done)
        job.update(State="COMPLETED", PercentDone="100.0", CompletionDate=done)

    _SB.scheduler.after(total / 3, running)
    _SB.scheduler.after(total, finish)
    return _json({"BackupJobId": job_id, "RecoveryPointArn": rp_arn, "CreationDate": now, "IsParent": False})


def describe_backup_job(self) -> str:
    job_id = _segments(self)[-1]
    job = _state(self.backup_backend).backup_jobs.get(job_id)
    if job is None:
        raise ResourceNotFoundException(msg=f"Backup job {job_id} does not exist.")
    return _json(_public(job))


def list_backup_jobs(self) -> str:
    jobs = [_public(j) for j in _state(self.backup_backend).backup_jobs.values()]
    jobs = _filter(jobs, _query(self), {"state": "State", "resourceArn": "ResourceArn",
                                         "backupVaultName": "BackupVaultName", "resourceType": "ResourceType"})
    return _json({"BackupJobs": jobs})


# --------------------------------------------------------------------------- recovery points

def list_recovery_points_by_backup_vault(self) -> str:
    vault_name = _segments(self)[1]
    _vault(self.backup_backend, vault_name)
    points = [_public(p) for p in _state(self.backup_backend).points.get(vault_name, {}).values()]
    q = _query(self)
    points = _filter(points, q, {"resourceArn": "ResourceArn", "resourceType": "ResourceType"})
    if "backupPlanId" in q:
        points = [p for p in points if (p.get("CreatedBy") or {}).get("BackupPlanId") == q["backupPlanId"]]
    return _json({"RecoveryPoints": points})


def describe_recovery_point(self) -> str:
    seg = _segments(self)
    vault_name, rp_arn = seg[1], "/".join(seg[3:])
    _vault(self.backup_backend, vault_name)
    rp = _find_point(self.backup_backend, rp_arn, vault_name)
    return _json(_public(rp))


def list_recovery_points_by_resource(self) -> str:
    seg = _segments(self)
    resource_arn = "/".join(seg[1:-1])
    out = []
    for vault_points in _state(self.backup_backend).points.values():
        for p in vault_points.values():
            if p["ResourceArn"] == resource_arn:
                out.append({"RecoveryPointArn": p["RecoveryPointArn"], "CreationDate": p["CreationDate"],
                            "Status": p["Status"], "BackupSizeBytes": p["BackupSizeInBytes"],
                            "BackupVaultName": p["BackupVaultName"], "IsParent": False,
                            "ResourceName": p.get("ResourceName"), "VaultType": "BACKUP_VAULT"})
    out.sort(key=lambda p: p["CreationDate"], reverse=True)
    return _json({"RecoveryPoints": [_public(p) for p in out]})


# --------------------------------------------------------------------------- copy jobs

def start_copy_job(self) -> str:
    body = _body(self)
    _require(body, "RecoveryPointArn", "SourceBackupVaultName", "DestinationBackupVaultArn", "IamRoleArn")
    backend, account = self.backup_backend, self.current_account
    src_vault = _vault(backend, body["SourceBackupVaultName"])
    rp = _find_point(backend, body["RecoveryPointArn"], src_vault.backup_vault_name)
    if rp["Status"] != "COMPLETED":
        raise InvalidRequestException(msg=f"Recovery point {rp['RecoveryPointArn']} is {rp['Status']}, not COMPLETED.")
    parts = _parse_arn(body["DestinationBackupVaultArn"])
    if parts[2] != "backup" or not parts[5].startswith("backup-vault:"):
        raise InvalidParameterValueException(msg=f"Invalid destination vault ARN: {body['DestinationBackupVaultArn']}")
    dest_region, dest_account, dest_name = parts[3], parts[4], parts[5].split(":", 1)[1]
    if dest_account != account:
        raise InvalidParameterValueException(msg="drsandbox supports copies within one account only.")
    from .faults import FaultError, check_region

    try:
        check_region(dest_region)
    except FaultError as e:
        raise InvalidParameterValueException(msg=str(e)) from e
    dest_backend = backup_backends[account][dest_region]
    dest_vault = _vault(dest_backend, dest_name)
    if rp["ResourceType"] != "EC2":
        raise InvalidParameterValueException(
            msg=f"drsandbox copies EC2 recovery points only, not {rp['ResourceType']} ({rp['RecoveryPointArn']}).")
    src_region, src_ami = _ami_of(rp["RecoveryPointArn"])
    dest_ec2 = _ec2(account, dest_region)
    ami = dest_ec2.copy_image(src_ami, src_region, name=f"AwsBackup_copy_{src_ami}",
                              description=f"Copied by AWS Backup from {src_region} {src_ami}")
    _after_the_newest(dest_ec2, ami)
    ami.state = "pending"
    job_id = str(uuid.uuid4()).upper()
    now = time.time()
    total = _SB.profile.seconds("backup_copy_job")
    job = {"AccountId": account, "CopyJobId": job_id, "SourceBackupVaultArn": src_vault.backup_vault_arn,
           "SourceRecoveryPointArn": rp["RecoveryPointArn"], "DestinationBackupVaultArn": dest_vault.backup_vault_arn,
           "DestinationRecoveryPointArn": None, "ResourceArn": rp["ResourceArn"], "ResourceType": rp["ResourceType"],
           "ResourceName": rp.get("ResourceName"), "CreationDate": now, "State": "CREATED",
           "BackupSizeInBytes": rp["BackupSizeInBytes"], "IamRoleArn": body["IamRoleArn"], "IsParent": False,
           "CreatedBy": rp.get("CreatedBy"), "DestinationVaultType": "BACKUP_VAULT"}
    _state(backend).copy_jobs[job_id] = job

    def running():
        if job["State"] == "CREATED":
            job["State"] = "RUNNING"

    def finish():
        if job["State"] not in ("CREATED", "RUNNING"):
            return
        down = [r for r in (src_region, dest_region) if _region_down(r)]
        if down:
            job.update(State="FAILED", CompletionDate=time.time(),
                       StatusMessage=f"Copy job failed: {', '.join(down)} unavailable.")
            dest_ec2.amis.pop(ami.id, None)
            return
        ami.state = "available"
        done = time.time()
        dest_arn = f"arn:aws:ec2:{dest_region}::image/{ami.id}"
        point = dict(rp, RecoveryPointArn=dest_arn, BackupVaultName=dest_vault.backup_vault_name,
                     BackupVaultArn=dest_vault.backup_vault_arn, SourceBackupVaultArn=src_vault.backup_vault_arn,
                     Status="COMPLETED", CreationDate=done, InitiationDate=now, CompletionDate=done,
                     IamRoleArn=body["IamRoleArn"], Lifecycle=body.get("Lifecycle") or rp.get("Lifecycle"))
        with _lock:
            _state(dest_backend).points.setdefault(dest_vault.backup_vault_name, {})[dest_arn] = point
        _sync_vault_count(dest_backend, dest_vault.backup_vault_name)
        job.update(State="COMPLETED", CompletionDate=done, DestinationRecoveryPointArn=dest_arn)

    _SB.scheduler.after(total / 3, running)
    _SB.scheduler.after(total, finish)
    return _json({"CopyJobId": job_id, "CreationDate": now, "IsParent": False})


def describe_copy_job(self) -> str:
    job_id = _segments(self)[-1]
    job = _state(self.backup_backend).copy_jobs.get(job_id)
    if job is None:
        raise ResourceNotFoundException(msg=f"Copy job {job_id} does not exist.")
    return _json({"CopyJob": _public(job)})


def list_copy_jobs(self) -> str:
    jobs = [_public(j) for j in _state(self.backup_backend).copy_jobs.values()]
    jobs = _filter(jobs, _query(self), {"state": "State", "resourceArn": "ResourceArn",
                                         "resourceType": "ResourceType",
                                         "destinationVaultArn": "DestinationBackupVaultArn",
                                         "sourceRecoveryPointArn": "SourceRecoveryPointArn"})
    return _json({"CopyJobs": jobs})


# --------------------------------------------------------------------------- restore jobs

def start_restore_job(self) -> str:
    body = _body(self)
    _require(body, "RecoveryPointArn", "IamRoleArn")
    backend, region, account = self.backup_backend, self.region, self.current_account
    if _parse_arn(body["RecoveryPointArn"])[2] == "rds":
        return _start_rds_restore_job(self, body)
    rp_region, ami_id = _ami_of(body["RecoveryPointArn"])
    if rp_region != region:
        raise InvalidParameterValueException(
            msg=f"Recovery point {body['RecoveryPointArn']} is in {rp_region}; restore it there.")
    rp = _find_point(backend, body["RecoveryPointArn"])
    if rp["Status"] != "COMPLETED":
        raise InvalidRequestException(msg=f"Recovery point {rp['RecoveryPointArn']} is not COMPLETED.")
    metadata = body.get("Metadata") or {}
    job_id = str(uuid.uuid4()).upper()
    now = time.time()
    total = _SB.profile.seconds("backup_restore_job")
    job = {"AccountId": account, "RestoreJobId": job_id, "RecoveryPointArn": rp["RecoveryPointArn"],
           "SourceResourceArn": rp["ResourceArn"], "BackupVaultArn": rp["BackupVaultArn"], "CreationDate": now,
           "Status": "PENDING", "PercentDone": "0.0", "BackupSizeInBytes": rp["BackupSizeInBytes"],
           "IamRoleArn": body["IamRoleArn"], "ExpectedCompletionTimeMinutes": max(1, int(total / 60)),
           "ResourceType": "EC2", "RecoveryPointCreationDate": rp["CreationDate"], "IsParent": False}
    _state(backend).restore_jobs[job_id] = job

    def running():
        if job["Status"] == "PENDING":
            job.update(Status="RUNNING", PercentDone="50.0")

    def finish():
        if job["Status"] not in ("PENDING", "RUNNING"):
            return
        if _region_down(region):
            job.update(Status="FAILED", StatusMessage=f"Restore failed: {region} is unavailable.",
                       CompletionDate=time.time())
            return
        # The same keyword set moto's own Auto Scaling passes to run_instances.
        kwargs = {"instance_type": metadata.get("InstanceType", "t3.micro"), "is_instance_type_default": False,
                  "placement": metadata.get("AvailabilityZone") or f"{region}a", "region_name": region,
                  "subnet_id": metadata.get("SubnetId"), "tags": {"instance": {"aws:backup:restore-job-id": job_id}},
                  "launch_template": None}
        reservation = _ec2(account, region).run_instances(ami_id, 1, None, [], **kwargs)
        instance = reservation.instances[0]
        job.update(Status="COMPLETED", PercentDone="100.0", CompletionDate=time.time(),
                   CreatedResourceArn=f"arn:aws:ec2:{region}:{account}:instance/{instance.id}")

    _SB.scheduler.after(total / 3, running)
    _SB.scheduler.after(total, finish)
    return _json({"RestoreJobId": job_id})


# StartRestoreJob Metadata keys for an RDS DB instance (AWS Backup developer guide, "Restore an
# Amazon RDS database"), and the RestoreDBInstanceFromDBSnapshot parameters they set.
_RDS_METADATA = {"DBInstanceIdentifier": "db_instance_identifier", "DBInstanceClass": "db_instance_class",
                 "AvailabilityZone": "availability_zone", "DBSubnetGroupName": "db_subnet_group_name",
                 "MultiAZ": "multi_az", "Port": "port", "DBParameterGroupName": "db_parameter_group_name",
                 "PubliclyAccessible": "publicly_accessible", "CopyTagsToSnapshot": "copy_tags_to_snapshot"}


def _start_rds_restore_job(self, body: dict) -> str:
    """Restore an RDS recovery point: RestoreDBInstanceFromDBSnapshot of its snapshot with the
    Metadata's DBInstanceIdentifier (required) and options. The job is PENDING, RUNNING while the
    new instance is created, COMPLETED with CreatedResourceArn once it is ``available``; an id
    already in use fails the job (as the RDS call would)."""
    backend, region, account = self.backup_backend, self.region, self.current_account
    parts = _parse_arn(body["RecoveryPointArn"])
    if parts[3] != region:
        raise InvalidParameterValueException(
            msg=f"Recovery point {body['RecoveryPointArn']} is in {parts[3]}; restore it there.")
    rp = _find_point(backend, body["RecoveryPointArn"])
    if rp["Status"] != "COMPLETED":
        raise InvalidRequestException(msg=f"Recovery point {rp['RecoveryPointArn']} is not COMPLETED.")
    metadata = body.get("Metadata") or {}
    if not metadata.get("DBInstanceIdentifier"):
        raise InvalidParameterValueException(msg="Metadata DBInstanceIdentifier is required to restore an RDS "
                                                 "recovery point.")
    overrides = {}
    for key, attr in _RDS_METADATA.items():
        if metadata.get(key) not in (None, ""):
            v = metadata[key]
            if key in ("MultiAZ", "PubliclyAccessible", "CopyTagsToSnapshot"):
                v = str(v).lower() == "true"
            elif key == "Port":
                v = int(v)
            overrides[attr] = v
    snap_id = parts[5].split(":", 1)[1]
    job_id = str(uuid.uuid4()).upper()
    now = time.time()
    total = _SB.profile.seconds("backup_restore_job")
    job = {"AccountId": account, "RestoreJobId": job_id, "RecoveryPointArn": rp["RecoveryPointArn"],
           "SourceResourceArn": rp["ResourceArn"], "BackupVaultArn": rp["BackupVaultArn"], "CreationDate": now,
           "Status": "PENDING", "PercentDone": "0.0", "BackupSizeInBytes": rp["BackupSizeInBytes"],
           "IamRoleArn": body["IamRoleArn"], "ExpectedCompletionTimeMinutes": max(1, int(total / 60)),
           "ResourceType": "RDS", "RecoveryPointCreationDate": rp["CreationDate"], "IsParent": False}
    _state(backend).restore_jobs[job_id] = job
    rds = _rds(account, region)

    def fail(msg):
        job.update(Status="FAILED", StatusMessage=msg, CompletionDate=time.time())

    def start():
        if job["Status"] != "PENDING":
            return
        if _region_down(region) or _SB.faults.outage(region, "rds") is not None:
            fail(f"Restore failed: {region} is unavailable.")
            return
        from . import rds as sbx_rds

        snapshot = rds.database_snapshots.get(snap_id)
        if snapshot is None:
            fail(f"Restore failed: DB snapshot {snap_id} no longer exists.")
            return
        # moto's restore finds the snapshot through describe_db_snapshots, which (like RDS
        # without a SnapshotType) lists automated and manual snapshots only: let it see this one.
        with _lock:
            snapshot.snapshot_type = "manual"
            try:
                db = rds.restore_db_instance_from_db_snapshot(snap_id, dict(overrides))
            except Exception as e:  # noqa: BLE001 - RDS refused: the job fails with its message
                fail(f"Restore failed: {getattr(e, 'message', None) or e}")
                return
            finally:
                snapshot.snapshot_type = "awsbackup"
        sbx_rds.standalone_restore(db)
        job.update(Status="RUNNING", PercentDone="50.0")

        def check():
            if job["Status"] != "RUNNING":
                return
            if db.status == "available":
                job.update(Status="COMPLETED", PercentDone="100.0", CompletionDate=time.time(),
                           CreatedResourceArn=db.db_instance_arn)
            elif db.db_instance_identifier not in rds.databases:
                fail("Restore failed: the restored DB instance was deleted.")
            else:
                _SB.scheduler.after(0.05, check)

        _SB.scheduler.after(0.05, check)

    _SB.scheduler.after(total / 3, start)
    return _json({"RestoreJobId": job_id})


def describe_restore_job(self) -> str:
    job_id = _segments(self)[-1]
    job = _state(self.backup_backend).restore_jobs.get(job_id)
    if job is None:
        raise ResourceNotFoundException(msg=f"Restore job {job_id} does not exist.")
    return _json(_public(job))


def list_restore_jobs(self) -> str:
    jobs = [_public(j) for j in _state(self.backup_backend).restore_jobs.values()]
    jobs = _filter(jobs, _query(self), {"status": "Status", "resourceType": "ResourceType"})
    return _json({"RestoreJobs": jobs})


# --------------------------------------------------------------------------- install

_OPERATIONS = [create_backup_selection, get_backup_selection, delete_backup_selection, list_backup_selections,
               start_backup_job, describe_backup_job, list_backup_jobs,
               list_recovery_points_by_backup_vault, describe_recovery_point, list_recovery_points_by_resource,
               start_copy_job, describe_copy_job, list_copy_jobs,
               start_restore_job, describe_restore_job, list_restore_jobs]

_PATHS = [
    r"{0}/backup-jobs/$", r"{0}/backup-jobs/(?P<job_id>[^/]+)$",
    r"{0}/copy-jobs/$", r"{0}/copy-jobs/(?P<job_id>[^/]+)$",
    r"{0}/restore-jobs/$", r"{0}/restore-jobs/(?P<job_id>[^/]+)$",
    r"{0}/backup-vaults/(?P<vault>[^/]+)/recovery-points/$",
    r"{0}/backup-vaults/(?P<vault>[^/]+)/recovery-points/(?P<rp>.+)$",
    r"{0}/resources/(?P<resource>.+)/recovery-points/$",
]

_installed = False


def install(sandbox) -> None:
    global _SB, _installed
    _SB = sandbox
    if _installed:
        return
    _installed = True
    for path in _PATHS:
        backup_urls.url_paths[path] = BackupResponse.dispatch
    for fn in _OPERATIONS:
        setattr(BackupResponse, fn.__name__, fn)

"""RDS made honest: timed transitions, replica links, parameter groups, renames, ReplicaLag.

moto promotes a read replica instantly, keeps the replica link on both sides, accepts a
promotion of a non-replica, has no reboot/modify transitions, accepts ForceFailover on a
single-AZ instance, stops a source that has replicas, creates replicas ``available`` at once,
renames on the spot, reports every parameter group ``in-sync`` and publishes no ReplicaLag.
Here:

* promote_read_replica: InvalidDBInstanceState unless the instance is an available read
  replica; then ``modifying`` -> ``rebooting`` -> ``available`` over ``rds_promotion``
  seconds, and at the end the link is gone on both sides (the replica names no source,
  the source no longer lists it).
* reboot_db_instance: ``rebooting`` -> ``available``; ForceFailover without Multi-AZ is
  InvalidParameterCombination; a Multi-AZ forced failover moves the instance to another AZ.
* modify_db_instance with ApplyImmediately: ``modifying`` -> ``available``; a stopped
  instance cannot be modified (InvalidDBInstanceState).
* All of them need the instance ``available`` first (InvalidDBInstanceState), as on AWS.
* stop_db_instance: InvalidDBInstanceState for a read replica and for an instance that has
  read replicas (RDS User Guide, "Stopping an Amazon RDS DB instance temporarily").
* create_db_instance_read_replica: the replica is ``creating`` -> ``backing-up`` ->
  ``available`` over ``rds_replica_create``, listed with its source all along (the source
  lists it, by ARN across regions); a cross-region source must be an available instance that
  is no read replica and has automated backups; a cross-region replica uses the default
  parameter group unless DBParameterGroupName names one in its own region. Once available
  its ReplicaLag starts at ``replica_catchup_lag`` and falls to 0 over ``replica_catchup``.
* Parameter groups: each instance has a ParameterApplyStatus and the values in effect.
  Associating another group (ModifyDBInstance DBParameterGroupName) goes ``applying`` ->
  ``pending-reboot``: its values apply at the next reboot (RebootDBInstance, the reboot of a
  promotion or a rename). Changing a group (ModifyDBParameterGroup) applies ApplyMethod
  ``immediate`` changes to the instances using it over ``rds_parameter_apply``
  (``applying`` -> ``in-sync``), ``pending-reboot`` ones at their next reboot. Only
  ``read_only`` has an effect here: see ``writable``.
* modify_db_instance NewDBInstanceIdentifier: with ApplyImmediately the instance is
  ``renaming`` (still under its old id, PendingModifiedValues naming the new one) for
  ``rds_rename``, then ``available`` under the new id only; replica links follow; an id in
  use is DBInstanceAlreadyExists. Without ApplyImmediately the rename stays pending.
* restore_db_instance_from_db_snapshot / restore_db_instance_to_point_in_time: the new
  instance is standalone (moto copies the snapshot's instance, replica link and replica list
  included) and goes ``creating`` -> ``backing-up`` -> ``available`` over ``rds_restore``.
* promote_read_replica of a replica that is ``backing-up``: InvalidDBInstanceState (API
  reference: "a read replica cannot be promoted ... when it is in the backing-up status").
* create_db_instance_read_replica KmsKeyId (API reference): a cross-region replica of an
  encrypted source needs a key of the destination region (InvalidParameterCombination without
  one, KMSKeyNotAccessibleFault for a key that is not an enabled key there) and is encrypted
  with it; a same-region replica refuses the parameter; an unencrypted source has no
  encrypted replica.
* DBSubnetGroupName: an instance created (or a replica) without one is not in a VPC ("If no
  DB subnet group is specified, then the new DB instance isn't created in a VPC"): no
  DBSubnetGroup, no VPC security groups (moto invents the default VPC's), ``in_vpc`` false
  in /_sandbox/state; a replica's group must be of its own region.
* VpcSecurityGroupIds (CreateDBInstance, CreateDBInstanceReadReplica, the restores): each
  group must exist in the instance's region (InvalidParameterValue "Invalid security group")
  and be in its DB subnet group's VPC (InvalidParameterCombination "The DB instance and EC2
  security group are in different VPCs"); none may be named for an instance outside a VPC;
  without them an instance in a VPC gets that VPC's default group ("Default: The default EC2
  VPC security group for the DB subnet group's VPC"; moto: the default VPC's, a replica its
  source's).
* CreateDBInstance StorageEncrypted: KmsKeyId must be an enabled key of the instance's region
  (KMSKeyNotAccessibleFault) and is shown as its ARN; without one the region's AWS managed key
  ``alias/aws/rds`` (moto: the string ``default_kms_key_id``).
* stop_db_instance: the instance is started again after ``rds_stopped_auto_start`` (RDS User
  Guide: "If you don't manually start your DB instance after seven days, your DB instance is
  automatically started"), a deadline on the sandbox clock (a step with no seconds goes there).
* CloudWatch ``AWS/RDS`` ``ReplicaLag`` (dimension DBInstanceIdentifier) is published every
  ``replica_lag_period`` for every replica past ``creating``/``backing-up``: the value set
  through the control API; else -1 while replication is not active (the source is gone, does
  not accept connections or its region has an outage; the replica does not accept connections
  or is being promoted); else the catch-up of a new replica (``replica_catchup_lag`` falling to
  0 over ``replica_catchup``) or of one whose replication just resumed (the length of the
  interruption, falling to 0 over ``replica_catchup``); else 0. A datapoint is what a round
  measured at its time: until the next round the newest one may predate a change (a fence).
  Rounds go through CloudWatch's put_metric_data, so each datapoint sits on the sandbox clock
  at its round's time and alarms evaluate it like any other (cloudwatch.py): -1 is just a
  value there (a "ReplicaLag > N" alarm stays OK through a broken link, as on AWS).
* Aurora global failover/switchover answer a clear, non-retryable error (out of scope).

Transitions are scheduled on the sandbox's clock (scheduler.py), and the ReplicaLag catch-up,
an outage's growing lag and the publication period are measured on it: a test that pauses
the clock sees every status, and a step publishes the ReplicaLag rounds it passes.
"""

from __future__ import annotations

import copy
import logging
import threading

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.rds.exceptions import (DBInstanceAlreadyExists, DBInstanceNotFoundError,
                                 DBParameterGroupNotFoundError, DBSubnetGroupNotFoundError, RDSClientError)
from moto.rds.models import DBInstance, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

from . import backends

log = logging.getLogger("drsandbox.rds")

_SB = None

# Statuses in which a replica is still being built: no replication yet, so no ReplicaLag.
BUILDING = ("creating", "backing-up")


class InvalidDBInstanceState(RDSClientError):
    def __init__(self, msg: str) -> None:
        super().__init__("InvalidDBInstanceState", msg)


def _truthy(v) -> bool:
    return v is True or (isinstance(v, str) and v.lower() == "true")


def _require_available(db, action: str) -> None:
    if db.status == "stopped" and action == "modify":
        raise InvalidDBInstanceState(
            f"Cannot modify DB instance {db.db_instance_identifier}: it is stopped. You can't modify a "
            "stopped DB instance; start it first.")
    if db.status != "available":
        raise InvalidDBInstanceState(
            f"Cannot {action} DB instance {db.db_instance_identifier}: it is {db.status}, not available.")


def _later(delay: float, db, status: str, then=None) -> None:
    """Set ``db.status`` after ``delay`` seconds, unless something else changed it meanwhile."""
    expected = db.status

    def step():
        if db.status != expected:
            return
        db.status = status
        if then is not None:
            then()

    _SB.scheduler.after(delay, step)


def is_replica(db) -> bool:
    return bool(db.is_replica and db.source_db_instance_identifier)


def _resolve(account: str, region: str, ref: str):
    """(backend, DBInstance or None) for an instance named by id (in ``region``) or by ARN."""
    if ref.startswith("arn:"):
        parts = ref.split(":")
        region, ref = parts[3], parts[-1]
    backend = rds_backends[account][region]
    return backend, backend.databases.get(ref.lower())


def _source_of(db):
    """(backend, source DBInstance) of a replica, or (None, None) if the source is gone."""
    src = db.source_db_instance_identifier
    if not src:
        return None, None
    return _resolve(db.account_id, db.region, src)


def _unlink(db) -> None:
    _, source = _source_of(db)
    if source is not None:
        source.replicas = [r for r in source.replicas
                           if r not in (db.db_instance_identifier, db.db_instance_arn)]
    db.is_replica = False
    db.source_db_instance_identifier = None


# --------------------------------------------------------------------------- parameter groups

def group_read_only(account: str, region: str, name: str | None) -> bool:
    """Whether DB parameter group ``name`` sets MySQL's read_only (1/ON/TRUE)."""
    if not name:
        return False
    group = rds_backends[account][region].db_parameter_groups.get(name.lower())
    if group is None:
        return False
    value = str((group.parameters.get("read_only") or {}).get("ParameterValue", "")).strip().lower()
    return value in ("1", "on", "true")


def read_only(db) -> bool:
    """The read_only value in effect on the instance (not necessarily its group's current one)."""
    frozen = getattr(db, "_sbx_ro", None)
    if frozen is not None:
        return frozen
    return group_read_only(db.account_id, db.region, db.db_parameter_group_name)


def apply_status(db) -> str:
    return getattr(db, "_sbx_pg_status", None) or "in-sync"


def parameter_group_name(db) -> str:
    name = db.db_parameter_group_name
    if not name or db.is_default_parameter_group(name):
        return db.default_db_parameter_group_details()[1]
    return name


def writable(db) -> bool:
    """Accepts writes: available, no read replica, and read_only not in effect. A change to a
    read_only group counts only once applied (in-sync), never while applying/pending-reboot."""
    return db.status == "available" and not is_replica(db) and not read_only(db)


def write_verdict(db) -> tuple[bool, str]:
    """Whether one write the app sends to ``db`` is taken (listeners.py, ``/write``): exactly
    when ``writable`` says so, else (False, why). MySQL refuses a write on a server whose
    read_only is ON with error 1290, "The MySQL server is running with the --read-only option
    so it cannot execute this statement"; an RDS read replica runs with read_only ON ("Read
    replicas are designed to support read queries", RDS User Guide, "Working with MySQL read
    replicas"; the default parameter group's read_only is {TrueIfReplica}). A promoted replica
    is a standalone instance with the same endpoint (ARC Developer Guide, "Amazon RDS Promote
    Read Replica execution block": "the DNS endpoint that you use to connect to your database
    stays the same"), so an app configured with that endpoint writes to it once it is
    available. Not kinder than AWS: a replica whose group sets read_only=0 would take the write
    there (User Guide, "Updating read replicas with MySQL"); here a replica never does, and a
    writer only while ``available``."""
    if is_replica(db):
        return False, ("read replica (ERROR 1290: The MySQL server is running with the --read-only option "
                       "so it cannot execute this statement)")
    if read_only(db):
        return False, ("read_only=1 in effect (ERROR 1290: The MySQL server is running with the --read-only "
                       "option so it cannot execute this statement)")
    if db.status != "available":
        return False, f"database status {db.status}, not available"
    return True, ""


def _parameter_change(db, before: bool, status: str, done) -> None:
    """Freeze the values in effect at ``before``, show ``status`` now, run ``done`` after
    ``rds_parameter_apply`` unless a newer change or a reboot came first."""
    token = object()
    db._sbx_ro, db._sbx_pg_status, db._sbx_pg_token = before, status, token

    def finish():
        if getattr(db, "_sbx_pg_token", None) is token:
            done()

    _SB.scheduler.after(_SB.profile.seconds("rds_parameter_apply"), finish)


def _rebooted(db) -> None:
    """A reboot applies every pending parameter change: the group's values are in effect."""
    db._sbx_ro, db._sbx_pg_status, db._sbx_pg_token = None, "in-sync", object()


def _pg_status_list(self):
    return [{"DBParameterGroupName": parameter_group_name(self), "ParameterApplyStatus": apply_status(self)}]


def _pending_modified_values(self):
    new_id = getattr(self, "_sbx_pending_rename", None)
    return {"DBInstanceIdentifier": new_id} if new_id else None


def _modify_parameter_group(original):
    def modify_db_parameter_group(self):
        name = (self.params.get("DBParameterGroupName") or "").lower()
        params = [p for p in (self.params.get("Parameters") or [])]
        users = [db for db in list(self.backend.databases.values())
                 if (db.db_parameter_group_name or "").lower() == name]
        before = {id(db): (read_only(db), apply_status(db) == "pending-reboot") for db in users}
        result = original(self)
        methods = {str(p.get("ParameterName", "")).lower(): str(p.get("ApplyMethod") or "immediate").lower()
                   for p in params}
        later_reboot = any(m == "pending-reboot" for m in methods.values())
        ro_now = methods.get("read_only") == "immediate"
        for db in users:
            ro_before, was_pending = before[id(db)]
            waits = later_reboot or was_pending

            def done(db=db, waits=waits):
                if waits:
                    # Immediate (dynamic) changes apply anyway; the rest waits for a reboot.
                    if ro_now:
                        db._sbx_ro = group_read_only(db.account_id, db.region, db.db_parameter_group_name)
                    db._sbx_pg_status = "pending-reboot"
                else:
                    db._sbx_ro, db._sbx_pg_status = None, "in-sync"

            _parameter_change(db, ro_before, "pending-reboot" if was_pending else "applying", done)
        return result

    return modify_db_parameter_group


# --------------------------------------------------------------------------- renames

def _rename_refs(refs: list, old: tuple[str, str], new: tuple[str, str]) -> list:
    """A replica list (ids and/or ARNs) with ``old`` (id, arn) replaced by ``new``."""
    return [new[0] if r == old[0] else new[1] if r == old[1] else r for r in refs]


def _finish_rename(db, new_id: str) -> None:
    backend = rds_backends[db.account_id][db.region]
    old = (db.db_instance_identifier, db.db_instance_arn)
    if db.status != "renaming" or backend.databases.get(old[0]) is not db:
        return
    if new_id in backend.databases:  # taken meanwhile: the rename does not happen
        db.status = "available"
        return
    del backend.databases[old[0]]
    db.db_instance_identifier = new_id
    backend.databases[new_id] = db
    new = (db.db_instance_identifier, db.db_instance_arn)
    if is_replica(db):  # the source lists it by id (same region) or ARN: follow the rename
        _, source = _source_of(db)
        if source is not None:
            source.replicas = _rename_refs(source.replicas, old, new)
    for ref in list(db.replicas):  # its replicas name it as their source
        _, replica = _resolve(db.account_id, db.region, ref)
        if replica is not None and replica.source_db_instance_identifier:
            replica.source_db_instance_identifier = _rename_refs([replica.source_db_instance_identifier], old, new)[0]
    _SB.lag.renamed(db.account_id, db.region, old[0], new_id)
    db._sbx_pending_rename = None
    db.status = "available"
    _rebooted(db)  # "The DB instance is rebooted when it is renamed."


# --------------------------------------------------------------------------- responses

def _promote_read_replica(self) -> ActionResult:
    ident = self.params.get("DBInstanceIdentifier")
    db = self.backend.describe_db_instances(ident)[0]
    if not is_replica(db):
        raise InvalidDBInstanceState(f"DB Instance {ident} is not a read replica.")
    if db.status == "backing-up":
        # PromoteReadReplica API reference: "a read replica cannot be promoted to a standalone
        # instance when it is in the backing-up status."
        raise InvalidDBInstanceState(
            f"Cannot promote DB instance {db.db_instance_identifier}: a read replica cannot be promoted to a "
            "standalone instance while it is in the backing-up status.")
    _require_available(db, "promote")
    if self.params.get("BackupRetentionPeriod") is not None:
        db.backup_retention_period = int(self.params["BackupRetentionPeriod"])
    if self.params.get("PreferredBackupWindow"):
        db.preferred_backup_window = self.params["PreferredBackupWindow"]
    total = _SB.profile.seconds("rds_promotion")
    db.status = "modifying"
    # Replication stops as the promotion begins: ReplicaLag is -1 until the link is gone.
    db._sbx_promoting = True

    def promoted():
        _unlink(db)
        _rebooted(db)
        db._sbx_promoting = False

    # Replication stops, the instance reboots as a standalone writer, then it is available.
    _later(total * 0.5, db, "rebooting", then=lambda: _later(total * 0.5, db, "available", then=promoted))
    return ActionResult({"DBInstance": db})


def _reboot_db_instance(self) -> ActionResult:
    ident = self.params.get("DBInstanceIdentifier")
    db = self.backend.describe_db_instances(ident)[0]
    force = _truthy(self.params.get("ForceFailover"))
    if force and not db.multi_az:
        raise RDSClientError("InvalidParameterCombination",
                             f"ForceFailover is only valid for a Multi-AZ DB instance; {ident} is single-AZ.")
    _require_available(db, "reboot")
    db.status = "rebooting"
    if force:
        az = db.availability_zone
        db.availability_zone = az[:-1] + ("b" if az.endswith("a") else "a")
    _later(_SB.profile.seconds("rds_reboot"), db, "available", then=lambda: _rebooted(db))
    return ActionResult({"DBInstance": db})


def _modify(original):
    def modify_db_instance(self) -> ActionResult:
        ident = self.params.get("DBInstanceIdentifier")
        db = self.backend.describe_db_instances(ident)[0]
        _require_available(db, "modify")
        # moto renames on the spot; the rename is ours (below).
        new_id = self.params.pop("NewDBInstanceIdentifier", None)
        if new_id:
            RDSBackend._validate_db_identifier(new_id)
            new_id = new_id.lower()
            if new_id == db.db_instance_identifier:
                new_id = None
            elif new_id in self.backend.databases:
                raise DBInstanceAlreadyExists()
        group = self.params.get("DBParameterGroupName")
        old_group, ro_before = (db.db_parameter_group_name or ""), read_only(db)
        result = original(self)
        db = result.result["DBInstance"]
        if group and group.lower() != old_group.lower():
            # "When you associate a new DB parameter group with a DB instance, the modified static
            # and dynamic parameters are applied only after the DB instance is rebooted."
            def associated(db=db):
                db._sbx_pg_status = "pending-reboot"

            _parameter_change(db, ro_before, "applying", associated)
        if new_id:
            db._sbx_pending_rename = new_id
        if _truthy(self.params.get("ApplyImmediately")):
            pending = getattr(db, "_sbx_pending_rename", None)
            if pending:
                db.status = "renaming"
                _SB.scheduler.after(_SB.profile.seconds("rds_rename"), lambda: _finish_rename(db, pending))
            else:
                db.status = "modifying"
                _later(_SB.profile.seconds("rds_modify"), db, "available")
        return result

    return modify_db_instance


def _stop(original):
    def stop_db_instance(self):
        ident = self.params.get("DBInstanceIdentifier")
        db = self.backend.describe_db_instances(ident)[0]
        # "You can't stop a DB instance that has a read replica, or that is a read replica."
        if is_replica(db):
            raise InvalidDBInstanceState(
                f"Cannot stop or start a Read-Replica instance: {db.db_instance_identifier} is a read replica "
                f"of {db.source_db_instance_identifier}.")
        if db.replicas:
            raise InvalidDBInstanceState(
                f"Cannot stop DB instance {db.db_instance_identifier} because it is the source for read replica "
                f"instance(s) {', '.join(db.replicas)}.")
        result = original(self)
        # "You can stop a DB instance for up to seven days. If you don't manually start your DB
        # instance after seven days, your DB instance is automatically started" (RDS User Guide,
        # "Stopping an Amazon RDS DB instance temporarily").
        due = _SB.clock.monotonic() + _SB.profile.seconds("rds_stopped_auto_start")
        db._sbx_auto_start_at = due
        _SB.clock.note(due)
        return result

    return stop_db_instance


def _backend_start(original):
    def start_db_instance(self, db_instance_identifier: str):
        db = original(self, db_instance_identifier)
        db._sbx_auto_start_at = None  # started: no automatic start pending
        return db

    return start_db_instance


def auto_start_due(now: float) -> list[str]:
    """Start every stopped instance whose seven days (``rds_stopped_auto_start``) are up at
    ``now`` on the sandbox clock, as RDS does; the ids started. Runs under the scheduler's
    run lock (a snapshot or restore never sees it half done)."""
    started = []
    with _SB.scheduler.run_lock:
        for _, _, backend in backends(rds_backends):
            try:
                dbs = list(backend.databases.values())
            except RuntimeError:  # a request is adding one right now: the next sweep sees it
                continue
            for db in dbs:
                due = getattr(db, "_sbx_auto_start_at", None)
                if due is None or due > now:
                    continue
                db._sbx_auto_start_at = None
                if db.status == "stopped":
                    backend.start_db_instance(db.db_instance_identifier)
                    started.append(db.db_instance_identifier)
    return started


def _create_read_replica(original):
    def create_db_instance_read_replica(self):
        ident = str(self.params.get("DBInstanceIdentifier") or "").lower()
        src_ref = str(self.params.get("SourceDBInstanceIdentifier") or "")
        if ident in self.backend.databases:
            raise DBInstanceAlreadyExists()
        src_backend, source = _resolve(self.current_account, self.region, src_ref)
        if source is None:
            raise DBInstanceNotFoundError(src_ref)
        cross = src_backend.region_name != self.region
        if cross and is_replica(source):
            raise InvalidDBInstanceState(
                f"Cannot create a cross-Region read replica of {source.db_instance_identifier}: it is itself a read "
                "replica. A cross-Region read replica needs a source that is not a read replica.")
        if source.status != "available":
            raise InvalidDBInstanceState(f"Instance {source.db_instance_identifier} is not in available state.")
        if not source.backup_retention_period:
            raise InvalidDBInstanceState(
                "Automated backups are not enabled for this database instance. To enable automated backups, use "
                "ModifyDBInstance to set the backup retention period to a non-zero value.")
        group = self.params.get("DBParameterGroupName")
        if group and not group.lower().startswith("default.") and group.lower() not in self.backend.db_parameter_groups:
            raise DBParameterGroupNotFoundError(group)
        key_arn = _replica_kms_key(self, source, cross)
        # moto looks the group up in the source's region: the placement is ours (below).
        subnet_group = self.params.pop("DBSubnetGroupName", None) or None
        vpc = _subnet_group_vpc(self.current_account, self.region, subnet_group)
        # VpcSecurityGroupIds: groups of the replica's region and of its subnet group's VPC
        # (moto copies whatever it is given, or the source's groups).
        _check_security_groups(self.current_account, self.region, vpc,
                               self.params.get("VpcSecurityGroupIds") or None)
        result = original(self)
        replica = result.result["DBInstance"]
        # moto's replica is a shallow copy of the source: nothing of ours, and no shared lists.
        for attr in [a for a in vars(replica) if a.startswith("_sbx_")]:
            delattr(replica, attr)
        for attr in ("vpc_security_group_ids", "enabled_cloudwatch_logs_exports", "domain_memberships"):
            if isinstance(getattr(replica, attr, None), list):
                setattr(replica, attr, copy.copy(getattr(replica, attr)))
        if cross:
            # "The read replica uses the default DB parameter group for the specified DB engine."
            replica.db_parameter_group_name = group or None
            if not self.params.get("AvailabilityZone"):
                replica.availability_zone = f"{self.region}a"
        if key_arn:
            # "... you must specify a KMS key identifier for the destination AWS Region": the
            # replica is encrypted with that key, not the source's.
            replica.storage_encrypted, replica.kms_key_id = True, key_arn
        _place_in_vpc(self, replica, subnet_group)
        replica.instance_create_time = utcnow()
        replica.status = "creating"
        total = _SB.profile.seconds("rds_replica_create")

        def available():
            replica._sbx_catchup_start = _SB.clock.monotonic()
            _SB.lag.publish(replica.account_id, replica.region, replica)

        _later(total * 2 / 3, replica, "backing-up", then=lambda: _later(total / 3, replica, "available", then=available))
        return result

    return create_db_instance_read_replica


def _kms_key_arn(account: str, region: str, ref: str) -> str:
    """The ARN of the KMS key ``ref`` (key id, key ARN, alias name or alias ARN) names in
    ``region``; KMSKeyNotAccessibleFault when there is no such enabled key there ("KMS keys
    are specific to the AWS Region that they are created in, and you can't use KMS keys from
    one AWS Region in another AWS Region")."""
    from moto.kms.models import kms_backends

    def refuse(why: str):
        return RDSClientError("KMSKeyNotAccessibleFault",
                              f"An error occurred accessing an AWS KMS key: {ref} {why} in {region}.")

    if ref.startswith("arn:") and ref.split(":")[3:4] != [region]:
        raise refuse("is not a key")
    try:
        key = kms_backends[account][region].describe_key(ref)
    except Exception:
        raise refuse("is not a key") from None
    if getattr(key, "key_state", "Enabled") != "Enabled":
        raise refuse(f"is {key.key_state}")
    return key.arn


def _replica_kms_key(response, source, cross: bool) -> str | None:
    """Check KmsKeyId as CreateDBInstanceReadReplica does (API reference, KmsKeyId): a
    cross-region replica of an encrypted source needs a key of the destination region; a
    same-region replica always uses the source's key (the parameter is refused); an
    unencrypted source cannot have an encrypted replica. The key's ARN, or None."""
    kms = response.params.get("KmsKeyId") or None
    encrypted = bool(source.storage_encrypted)
    if kms and not encrypted:
        raise RDSClientError("InvalidParameterCombination",
                             "Cannot create an encrypted read replica from an unencrypted DB instance "
                             f"({source.db_instance_identifier}).")
    if not cross:
        if kms:
            raise RDSClientError("InvalidParameterCombination",
                                 "Your request does not require the KMS key parameter. Please remove the KMS key "
                                 "parameter and try your request again.")
        return None
    if encrypted and not kms:
        raise RDSClientError("InvalidParameterCombination",
                             "Cannot create a cross region unencrypted read replica from encrypted source.")
    return _kms_key_arn(response.current_account, response.region, kms) if kms else None


def in_vpc(db) -> bool:
    """Whether the instance is in a VPC: it has a DB subnet group. CreateDBInstanceReadReplica
    API reference, DBSubnetGroupName: "If no DB subnet group is specified, then the new DB
    instance isn't created in a VPC"."""
    return bool(getattr(db, "_db_subnet_group_name", None))


def encryption_and_groups(db) -> dict:
    """/_sandbox/state's ``storage_encrypted``, ``kms_key_id`` (the key's ARN, None when not
    encrypted) and ``vpc_security_groups`` (the ids; empty outside a VPC) of an instance."""
    encrypted = bool(getattr(db, "storage_encrypted", False))
    groups = getattr(db, "vpc_security_group_ids", None) or []
    return {"storage_encrypted": encrypted,
            "kms_key_id": (getattr(db, "kms_key_id", None) or None) if encrypted else None,
            "vpc_security_groups": list(groups) if in_vpc(db) else []}


def _subnet_group_vpc(account: str, region: str, name: str | None) -> str | None:
    """The VPC of DB subnet group ``name`` in ``region`` (None without a name);
    DBSubnetGroupNotFoundFault when the region has no such group."""
    if not name:
        return None
    group = rds_backends[account][region].subnet_groups.get(name)
    if group is None:
        raise DBSubnetGroupNotFoundError(name)
    return group.vpc_id


def _check_security_groups(account: str, region: str, vpc_id: str | None, named) -> None:
    """VpcSecurityGroupIds as RDS checks them for a new instance (CreateDBInstance,
    CreateDBInstanceReadReplica, the restores): each must be a security group of the instance's
    region and of the VPC of its DB subnet group. RDS's own answers: an unknown id (a group of
    another region is one) InvalidParameterValue "Invalid security group , groupId= sg-..,
    groupName=."; a group of another VPC InvalidParameterCombination "The DB instance and EC2
    security group are in different VPCs. The DB instance is in vpc-.. and the EC2 security
    group is in vpc-.."; groups for an instance that is not in a VPC (no DB subnet group here)
    InvalidParameterCombination "VPC Security Groups cannot be associated with non-VPC DB
    Instances." (the API reference documents only the default, "The default EC2 VPC security
    group for the DB subnet group's VPC"; codes and messages are those of RDS's error answers
    as users report them)."""
    if not named:
        return
    from moto.ec2.models import ec2_backends

    if vpc_id is None:
        raise RDSClientError("InvalidParameterCombination",
                             "VPC Security Groups cannot be associated with non-VPC DB Instances.")
    ec2 = ec2_backends[account][region]
    for sg_id in named:
        sg = ec2.get_security_group_from_id(sg_id)
        if sg is None:
            raise RDSClientError("InvalidParameterValue", f"Invalid security group , groupId= {sg_id}, groupName=.")
        if sg.vpc_id != vpc_id:
            raise RDSClientError("InvalidParameterCombination",
                                 "The DB instance and EC2 security group are in different VPCs. The DB instance is "
                                 f"in {vpc_id} and the EC2 security group is in {sg.vpc_id}")


def _vpc_security_groups(db, named) -> None:
    """The instance's VPC security groups once it is placed: the ones named (checked before by
    ``_check_security_groups``); else, in a VPC, the default security group of its DB subnet
    group's VPC (API reference, CreateDBInstance / CreateDBInstanceReadReplica /
    RestoreDBInstanceFromDBSnapshot, VpcSecurityGroupIds: "Default: The default EC2 VPC
    security group for the DB subnet group's VPC"; moto gives the *default VPC's* default
    group, or a replica its source's); none outside a VPC."""
    from moto.ec2.models import ec2_backends

    if named:
        db.vpc_security_group_ids = list(named)
    elif in_vpc(db):
        sg = ec2_backends[db.account_id][db.region].get_default_security_group(db.db_subnet_group.vpc_id)
        db.vpc_security_group_ids = [sg.id] if sg is not None else []
    else:
        db.vpc_security_group_ids = []


def _place_in_vpc(response, db, subnet_group: str | None) -> None:
    """The instance's DB subnet group (the request's, in its own region), or none: then it is
    not in a VPC; then its VPC security groups (``_vpc_security_groups``)."""
    if subnet_group:
        db.db_subnet_group_name = subnet_group  # moto's setter: the group object, this region
    else:
        db._db_subnet_group_name = None
        db.db_subnet_group = None
    _vpc_security_groups(db, response.params.get("VpcSecurityGroupIds") or None)


def _instance_kms_key(response) -> str | None:
    """CreateDBInstance's key, as an ARN (API reference, KmsKeyId: "The Amazon Web Services KMS
    key identifier is the key ARN, key ID, alias ARN, or alias name for the KMS key"; "If you
    don't specify a value for the KmsKeyId parameter, then Amazon RDS uses your default KMS key"
    — the region's AWS managed key ``alias/aws/rds``): a key that is not an enabled key of the
    instance's region is KMSKeyNotAccessibleFault. moto stores KmsKeyId as given, and
    ``default_kms_key_id`` without one. None for an unencrypted instance."""
    if not _truthy(response.params.get("StorageEncrypted")):
        return None
    return _kms_key_arn(response.current_account, response.region,
                        response.params.get("KmsKeyId") or "alias/aws/rds")


def _create_instance(original):
    def create_db_instance(self):
        if self.params.get("DBClusterIdentifier"):
            return original(self)  # Aurora: the cluster decides (out of scope)
        named = self.params.get("VpcSecurityGroupIds") or None
        vpc = _subnet_group_vpc(self.current_account, self.region, self.params.get("DBSubnetGroupName") or None)
        _check_security_groups(self.current_account, self.region, vpc, named)
        key_arn = _instance_kms_key(self)
        result = original(self)
        db = result.result["DBInstance"]
        if not db.db_cluster_identifier:
            if not self.params.get("DBSubnetGroupName"):
                db._db_subnet_group_name = None
                db.db_subnet_group = None
            _vpc_security_groups(db, named)
            if key_arn:
                db.kms_key_id = key_arn
        return result

    return create_db_instance


def standalone_restore(db, named_security_groups=None) -> None:
    """Make ``db``, just restored by moto from a snapshot's copy of an instance, a new
    standalone instance that becomes available over ``rds_restore``, with the VPC security
    groups named in the request, else its subnet group's VPC's default one
    (``_vpc_security_groups``)."""
    for attr in [a for a in vars(db) if a.startswith("_sbx_")]:
        delattr(db, attr)
    for attr in ("vpc_security_group_ids", "enabled_cloudwatch_logs_exports", "domain_memberships"):
        if isinstance(getattr(db, attr, None), list):
            setattr(db, attr, copy.copy(getattr(db, attr)))
    db.is_replica = False
    db.source_db_instance_identifier = None
    db.replicas = []
    _vpc_security_groups(db, named_security_groups)
    db.instance_create_time = utcnow()
    db.status = "creating"
    total = _SB.profile.seconds("rds_restore")
    _later(total * 2 / 3, db, "backing-up", then=lambda: _later(total / 3, db, "available"))


def _restored_subnet_group(response, op: str) -> str | None:
    """The DB subnet group a restore puts its instance in: the request's DBSubnetGroupName, else
    (moto) the one of the instance the snapshot, or the point in time, is of."""
    if response.params.get("DBSubnetGroupName"):
        return response.params["DBSubnetGroupName"]
    try:
        if op == "restore_db_instance_from_db_snapshot":
            ref = str(response.params.get("DBSnapshotIdentifier") or "")
            if ref.startswith("arn:"):
                ref = ref.split(":", 6)[-1]
            source = response.backend.describe_db_snapshots(None, ref)[0].database
        else:
            ident = response.params.get("SourceDBInstanceIdentifier")
            if not ident:
                return None
            source = response.backend.describe_db_instances(ident)[0]
    except Exception:  # no such snapshot or instance: moto answers that
        return None
    return getattr(source, "_db_subnet_group_name", None) or None


def _restore(original, op: str):
    """A restored instance is a new, standalone instance: moto copies the snapshot's instance
    wholesale, so a restore of a replica's snapshot claims the replica's source (and a restore of
    a source claims its replicas) and is ``available`` at once. RDS creates it ``creating`` ->
    ``backing-up`` -> ``available`` (the first automated backup), with no replication links,
    the default DB parameter group unless DBParameterGroupName is given. VpcSecurityGroupIds
    are checked against the VPC of the subnet group it goes in (``_check_security_groups``);
    without them it gets that VPC's default group (moto: the default VPC's)."""
    def restore(self):
        named = self.params.get("VpcSecurityGroupIds") or None
        if named:
            vpc = _subnet_group_vpc(self.current_account, self.region, _restored_subnet_group(self, op))
            _check_security_groups(self.current_account, self.region, vpc, named)
        result = original(self)
        standalone_restore(result.result["DBInstance"], named)
        return result

    return restore


def _delete(original):
    def delete_db_instance(self):
        # A cross-region source lists its replica by ARN; moto unlinks by name, fails (HTML 500)
        # and has already removed the instance by then. AWS deletes the replica and the source
        # stops listing it: unlink first, by name or ARN, then let moto delete.
        db = self.backend.databases.get(self.params.get("DBInstanceIdentifier"))
        if db is not None and db.is_replica:
            _unlink(db)
        return original(self)
    return delete_db_instance


def _out_of_scope(name: str):
    def handler(self):
        raise RDSClientError("InvalidGlobalClusterStateFault",
                             f"drsandbox: {name} (Aurora global database) is not emulated; the sandbox "
                             "models RDS MySQL with a cross-region read replica.")

    return handler


_installed = False


def install(sandbox) -> None:
    global _SB, _installed
    _SB = sandbox
    if _installed:
        return
    _installed = True
    RDSResponse.promote_read_replica = _promote_read_replica
    RDSResponse.reboot_db_instance = _reboot_db_instance
    RDSResponse.modify_db_instance = _modify(RDSResponse.modify_db_instance)
    RDSResponse.delete_db_instance = _delete(RDSResponse.delete_db_instance)
    RDSResponse.stop_db_instance = _stop(RDSResponse.stop_db_instance)
    RDSBackend.start_db_instance = _backend_start(RDSBackend.start_db_instance)
    for op in ("restore_db_instance_from_db_snapshot", "restore_db_instance_to_point_in_time"):
        setattr(RDSResponse, op, _restore(getattr(RDSResponse, op), op))
    RDSResponse.create_db_instance_read_replica = _create_read_replica(RDSResponse.create_db_instance_read_replica)
    RDSResponse.create_db_instance = _create_instance(RDSResponse.create_db_instance)
    RDSResponse.modify_db_parameter_group = _modify_parameter_group(RDSResponse.modify_db_parameter_group)
    RDSResponse.failover_global_cluster = _out_of_scope("FailoverGlobalCluster")
    RDSResponse.switchover_global_cluster = _out_of_scope("SwitchoverGlobalCluster")
    DBInstance.db_parameter_group_status_list = property(_pg_status_list)
    DBInstance.pending_modified_values = property(_pending_modified_values)


# --------------------------------------------------------------------------- replica lag

class LagPublisher:
    """Feeds AWS/RDS ReplicaLag for every replica, as RDS does once a minute."""

    def __init__(self, sandbox) -> None:
        self.sb = sandbox
        self._overrides: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()
        # Held while publishing (the loop's round, a step's catch-up, a snapshot or restore).
        self.publish_lock = threading.RLock()
        self._next = 0.0  # when the next round is due, on the sandbox clock
        self._thread = threading.Thread(target=self._loop, name="rds-replica-lag", daemon=True)

    def start(self) -> None:
        self._next = self.sb.clock.monotonic() + self.sb.profile.seconds("replica_lag_period")
        self._thread.start()

    def reset(self) -> None:
        with self._lock:
            self._overrides.clear()

    def state(self) -> dict:
        with self._lock:
            return {"overrides": dict(self._overrides), "next": self._next}

    def restore(self, saved: dict) -> None:
        with self._lock:
            self._overrides = dict(saved["overrides"])
            self._next = saved["next"]

    def _loop(self) -> None:
        # Polls the sandbox clock (it may be moved, paused or set back by a restore) instead
        # of sleeping a whole period.
        while not self.sb.stopping.wait(0.05):
            if self.sb.clock.paused:
                continue  # a step publishes (catch_up) as it passes the due times
            try:
                self.catch_up()
            except Exception:
                log.exception("publishing ReplicaLag failed")

    def catch_up(self, now: float | None = None) -> None:
        """Publish a round if one is due at ``now`` (default: the clock, read under the lock,
        as a restore may set it back meanwhile). One round stands for every period a step
        passed: the values are those at ``now``."""
        with self.publish_lock:
            if now is None:
                now = self.sb.clock.monotonic()
            period = self.sb.profile.seconds("replica_lag_period")
            if self._next > now + period:
                self._next = now + period  # the clock was set back (a restore, a reset)
            if now < self._next:
                return
            self._next += (int((now - self._next) // period) + 1) * period
            self.publish_all()

    def replicas(self):
        """Every replica that replicates (a replica still being built has no ReplicaLag yet)."""
        for account, region, backend in backends(rds_backends):
            for db in list(backend.databases.values()):
                if is_replica(db) and db.status not in BUILDING:
                    yield account, region, db

    def renamed(self, account: str, region: str, old: str, new: str) -> None:
        """A pinned value follows its instance's rename."""
        with self._lock:
            value = self._overrides.pop((account, region, old), None)
            if value is not None:
                self._overrides[(account, region, new)] = value

    def replicating(self, db, now: float) -> bool:
        """Whether replication into ``db`` is active: the replica accepts connections and is
        not being promoted (promotion stops replication first), and its source exists, accepts
        connections and its region is not dark (a region outage for everyone; client-scoped
        outages cut one client off, not the replication link)."""
        from .listeners import CONNECTABLE

        if db.status not in CONNECTABLE or getattr(db, "_sbx_promoting", False):
            return False
        _, source = _source_of(db)
        if source is None or source.status not in CONNECTABLE:
            return False
        return self.sb.faults.outage(source.region, "rds") is None

    def value(self, account: str, region: str, db) -> float:
        """The ReplicaLag a round publishes now. -1 while replication is not active (RDS User
        Guide, "Monitoring MySQL read replication": "If the ReplicaLag metric returns -1, then
        replication is currently not active. ReplicaLag = -1 is equivalent to
        Seconds_Behind_Master = NULL"); once it is active again the replica first replays what
        it missed, so the lag restarts at the length of the interruption and falls to 0 over
        ``replica_catchup``, as a new replica's does from ``replica_catchup_lag``."""
        with self._lock:
            override = self._overrides.get((account, region, db.db_instance_identifier))
        if override is not None:
            return override
        now = self.sb.clock.monotonic()
        if not self.replicating(db, now):
            if getattr(db, "_sbx_inactive_since", None) is None:
                _, source = _source_of(db)
                outage = self.sb.faults.outage(source.region, "rds") if source is not None else None
                db._sbx_inactive_since = outage.started if outage is not None else now
            return -1.0
        since = getattr(db, "_sbx_inactive_since", None)
        if since is not None:
            db._sbx_inactive_since = None
            db._sbx_catchup_start, db._sbx_catchup_from = now, max(0.0, now - since)
        lag = 0.0
        started = getattr(db, "_sbx_catchup_start", None)
        if started is not None:
            span = self.sb.profile.seconds("replica_catchup")
            left = 1.0 - (now - started) / span if span > 0 else 0.0
            frm = getattr(db, "_sbx_catchup_from", None)
            frm = self.sb.profile.seconds("replica_catchup_lag") if frm is None else frm
            lag = frm * max(0.0, left)
        return round(lag, 1)

    def publish(self, account: str, region: str, db) -> float:
        from moto.cloudwatch.models import cloudwatch_backends

        v = self.value(account, region, db)
        cloudwatch_backends[account][region].put_metric_data("AWS/RDS", [{
            "MetricName": "ReplicaLag", "Value": v, "Unit": "Seconds",
            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db.db_instance_identifier}]}])
        return v

    def publish_all(self) -> None:
        for account, region, db in list(self.replicas()):
            self.publish(account, region, db)

    def set(self, account: str, region: str, instance_id: str, seconds) -> float | None:
        """Control API: pin one replica's lag (None returns it to the computed value)."""
        from .faults import FaultError, check_region

        check_region(region)
        if not isinstance(instance_id, str) or not instance_id:
            raise FaultError("instance_id must be a non-empty string")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or not 0 <= seconds <= 10 ** 7):
            raise FaultError(f"seconds must be a number >= 0 or null, got {seconds!r}")
        db = rds_backends[account][region].databases.get(instance_id)
        if db is None:
            raise FaultError(f"no DB instance {instance_id!r} in {region}")
        if not is_replica(db):
            raise FaultError(f"DB instance {instance_id!r} in {region} is not a read replica")
        with self._lock:
            if seconds is None:
                self._overrides.pop((account, region, instance_id), None)
            else:
                self._overrides[(account, region, instance_id)] = float(seconds)
        # Publish now so a reader does not wait a whole period to see the new value.
        return self.publish(account, region, db)

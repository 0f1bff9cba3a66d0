"""RDS made honest: timed promotion/reboot/modify, unlinked replicas, ReplicaLag metrics.

moto promotes a read replica instantly, keeps the replica link on both sides, accepts a
promotion of a non-replica, has no reboot/modify transitions, accepts ForceFailover on a
single-AZ instance and publishes no ReplicaLag. Here:

* promote_read_replica: InvalidDBInstanceState unless the instance is an available read
  replica; then ``modifying`` -> ``rebooting`` -> ``available`` over ``rds_promotion``
  seconds, and at the end the link is gone on both sides (the replica names no source,
  the source no longer lists it).
* reboot_db_instance: ``rebooting`` -> ``available``; ForceFailover without Multi-AZ is
  InvalidParameterCombination; a Multi-AZ forced failover moves the instance to another AZ.
* modify_db_instance with ApplyImmediately: ``modifying`` -> ``available``.
* All three need the instance ``available`` first (InvalidDBInstanceState), as on AWS.
* CloudWatch ``AWS/RDS`` ``ReplicaLag`` (dimension DBInstanceIdentifier) is published every
  ``replica_lag_period`` for every replica: the value set through the control API, else 0,
  or the seconds since the source region's outage began while one is active.
* Aurora global failover/switchover answer a clear, non-retryable error (out of scope).
"""

from __future__ import annotations

import logging
import threading
import time

from moto.core.responses import ActionResult
from moto.rds.exceptions import RDSClientError
from moto.rds.models import rds_backends
from moto.rds.responses import RDSResponse

from . import backends

log = logging.getLogger("drsandbox.rds")

_SB = None


class InvalidDBInstanceState(RDSClientError):
    def __init__(self, msg: str) -> None:
        super().__init__("InvalidDBInstanceState", msg)


def _truthy(v) -> bool:
    return v is True or (isinstance(v, str) and v.lower() == "true")


def _require_available(db, action: str) -> None:
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


def _source_of(db):
    """(backend, source DBInstance) of a replica, or (None, None) if the source is gone."""
    src = db.source_db_instance_identifier
    if not src:
        return None, None
    if src.startswith("arn:"):
        parts = src.split(":")
        region, name = parts[3], parts[-1]
    else:
        region, name = db.region, src
    backend = rds_backends[db.account_id][region]
    return backend, backend.databases.get(name)


def _unlink(db) -> None:
    _, source = _source_of(db)
    if source is not None:
        source.replicas = [r for r in source.replicas
                           if r not in (db.db_instance_identifier, db.db_instance_arn)]
    db.is_replica = False
    db.source_db_instance_identifier = None


# --------------------------------------------------------------------------- responses

def _promote_read_replica(self) -> ActionResult:
    ident = self.params.get("DBInstanceIdentifier")
    db = self.backend.describe_db_instances(ident)[0]
    if not db.is_replica or not db.source_db_instance_identifier:
        raise InvalidDBInstanceState(f"DB Instance {ident} is not a read replica.")
    _require_available(db, "promote")
    if self.params.get("BackupRetentionPeriod") is not None:
        db.backup_retention_period = int(self.params["BackupRetentionPeriod"])
    if self.params.get("PreferredBackupWindow"):
        db.preferred_backup_window = self.params["PreferredBackupWindow"]
    total = _SB.profile.seconds("rds_promotion")
    db.status = "modifying"
    # Replication stops, the instance reboots as a standalone writer, then it is available.
    _later(total * 0.5, db, "rebooting",
           then=lambda: _later(total * 0.5, db, "available", then=lambda: _unlink(db)))
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
    _later(_SB.profile.seconds("rds_reboot"), db, "available")
    return ActionResult({"DBInstance": db})


def _modify(original):
    def modify_db_instance(self) -> ActionResult:
        ident = self.params.get("DBInstanceIdentifier")
        db = self.backend.describe_db_instances(ident)[0]
        _require_available(db, "modify")
        result = original(self)
        if _truthy(self.params.get("ApplyImmediately")):
            db = result.result["DBInstance"]
            db.status = "modifying"
            _later(_SB.profile.seconds("rds_modify"), db, "available")
        return result

    return modify_db_instance


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
    RDSResponse.failover_global_cluster = _out_of_scope("FailoverGlobalCluster")
    RDSResponse.switchover_global_cluster = _out_of_scope("SwitchoverGlobalCluster")


# --------------------------------------------------------------------------- replica lag

class LagPublisher:
    """Feeds AWS/RDS ReplicaLag for every replica, as RDS does once a minute."""

    def __init__(self, sandbox) -> None:
        self.sb = sandbox
        self._overrides: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="rds-replica-lag", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def reset(self) -> None:
        with self._lock:
            self._overrides.clear()

    def _loop(self) -> None:
        while not self.sb.stopping.wait(self.sb.profile.seconds("replica_lag_period")):
            try:
                self.publish_all()
            except Exception:
                log.exception("publishing ReplicaLag failed")

    def replicas(self):
        for account, region, backend in backends(rds_backends):
            for db in list(backend.databases.values()):
                if db.is_replica and db.source_db_instance_identifier:
                    yield account, region, db

    def value(self, account: str, region: str, db) -> float:
        with self._lock:
            override = self._overrides.get((account, region, db.db_instance_identifier))
        if override is not None:
            return override
        src = db.source_db_instance_identifier or ""
        src_region = src.split(":")[3] if src.startswith("arn:") else region
        outage = self.sb.faults.outage(src_region, "rds")
        if outage is not None:
            return round(max(0.0, time.time() - outage.started), 1)
        return 0.0

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
        if not (db.is_replica and db.source_db_instance_identifier):
            raise FaultError(f"DB instance {instance_id!r} in {region} is not a read replica")
        with self._lock:
            if seconds is None:
                self._overrides.pop((account, region, instance_id), None)
            else:
                self._overrides[(account, region, instance_id)] = float(seconds)
        # Publish now so a reader does not wait a whole period to see the new value.
        return self.publish(account, region, db)

"""Timing profiles: how long each emulated AWS process takes.

A profile maps a handful of named durations (seconds) to values. ``realistic`` follows the
issue's numbers (RDS promotion 20 s, CloudFront deployment 15 s, ...); ``instant`` keeps every
intermediate state visible for a fraction of a second so tests stay fast. A file profile (JSON
or YAML) may name a ``base`` profile and override any key. ``--time-scale`` multiplies every
duration, which is how tests shrink time further without changing the shape of the timeline.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

# Seconds. Every key is documented in sandbox/README.md.
REALISTIC: dict[str, float] = {
    "rds_promotion": 20.0,          # promote_read_replica: modifying -> rebooting -> available
    "rds_reboot": 10.0,             # reboot_db_instance: rebooting -> available
    "rds_modify": 10.0,             # modify_db_instance(ApplyImmediately): modifying -> available
    "cloudfront_deployment": 15.0,  # create/update_distribution: InProgress -> Deployed
    "cloudfront_invalidation": 5.0,  # create_invalidation: InProgress -> Completed
    "backup_job": 10.0,             # start_backup_job: CREATED -> RUNNING -> COMPLETED
    "backup_copy_job": 10.0,        # start_copy_job: CREATED -> RUNNING -> COMPLETED
    "backup_restore_job": 10.0,     # start_restore_job: PENDING -> RUNNING -> COMPLETED
    "route53_change_propagation": 5.0,  # get_change: PENDING -> INSYNC
    "health_check_interval": 10.0,  # probe period of a RequestInterval=10 check (30 -> 3x this)
    "health_check_timeout": 4.0,    # a probe that takes longer is a failure
    "origin_timeout": 10.0,         # CloudFront edge: connect/read timeout per origin attempt
    "replica_lag_period": 60.0,     # how often AWS/RDS ReplicaLag datapoints are published
    "rds_parameter_apply": 5.0,     # DB parameter group change: ParameterApplyStatus applying -> ...
    "rds_rename": 15.0,             # modify_db_instance(NewDBInstanceIdentifier): renaming -> available
    "rds_replica_create": 30.0,     # create_db_instance_read_replica: creating -> backing-up -> available
    "rds_restore": 30.0,            # restore_db_instance_from_db_snapshot / _to_point_in_time: creating -> backing-up -> available
    "replica_catchup_lag": 120.0,   # ReplicaLag (seconds) a new replica reports once available ...
    "replica_catchup": 60.0,        # ... falling linearly to 0 over this many seconds
    "dynamodb_table_create": 5.0,   # create_table: CREATING -> ACTIVE (reads and writes refused until then)
    "rds_stopped_auto_start": 604800.0,  # a stopped DB instance is started again after seven days
    "cloudwatch_minute": 60.0,      # one CloudWatch minute: alarm periods and evaluations, Route 53 metrics
    "arc_cluster_create": 30.0,     # ARC CreateCluster: PENDING -> DEPLOYED (its endpoints answer from then on)
    "arc_control_create": 5.0,      # ARC CreateControlPanel / CreateRoutingControl: PENDING -> DEPLOYED
}

INSTANT: dict[str, float] = {
    "rds_promotion": 0.5,
    "rds_reboot": 0.3,
    "rds_modify": 0.3,
    "cloudfront_deployment": 0.3,
    "cloudfront_invalidation": 0.2,
    "backup_job": 0.6,              # 0.2 s CREATED, 0.4 s RUNNING
    "backup_copy_job": 0.6,
    "backup_restore_job": 0.6,
    "route53_change_propagation": 0.2,
    "health_check_interval": 1.0,
    "health_check_timeout": 0.5,
    "origin_timeout": 1.0,
    "replica_lag_period": 1.0,
    "rds_parameter_apply": 0.2,
    "rds_rename": 0.3,
    "rds_replica_create": 0.6,      # 0.4 s creating, 0.2 s backing-up
    "rds_restore": 0.6,             # 0.4 s creating, 0.2 s backing-up
    "replica_catchup_lag": 6.0,
    "replica_catchup": 3.0,
    "dynamodb_table_create": 0.3,
    # Four hours: longer than any test run (a stopped instance stays stopped), still reached
    # by one step of a paused clock.
    "rds_stopped_auto_start": 14400.0,
    "cloudwatch_minute": 1.0,
    "arc_cluster_create": 0.5,
    "arc_control_create": 0.2,
}

BUILTIN = {"realistic": REALISTIC, "instant": INSTANT}

# Settings that are not durations: never multiplied by --time-scale. Documented in
# sandbox/README.md (Profiles).
SETTINGS_REALISTIC: dict = {
    # Route 53 API request rate per account: the account's token bucket refills this many
    # tokens a second up to route53_api_burst (AWS: 10 and 50, Route 53 Developer Guide,
    # "Throttling for Amazon Route 53 API requests"); the per-operation buckets AWS lists there
    # scale with these two. 0 turns Route 53 throttling off.
    "route53_api_rate": 10.0,
    "route53_api_burst": 50.0,
    # ChangeResourceRecordSets to a zone whose previous change is still PENDING is
    # PriorRequestNotComplete (400).
    "route53_prior_request_not_complete": True,
    # What TestDNSAnswer and the public edge answer for an alias A record: the target's DNS
    # name (names, what drctl matches on today) or its addresses (addresses, as on AWS).
    "dns_answers": "names",
}
SETTINGS_INSTANT: dict = {
    "route53_api_rate": 0.0,
    "route53_api_burst": 50.0,
    "route53_prior_request_not_complete": False,
    "dns_answers": "names",
}
SETTINGS = {"realistic": SETTINGS_REALISTIC, "instant": SETTINGS_INSTANT}
DNS_ANSWERS = ("names", "addresses")


def check_setting(key: str, value, where: str = "profile"):
    """A setting's value, validated (ProfileError otherwise)."""
    if key in ("route53_api_rate", "route53_api_burst"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1_000_000:
            raise ProfileError(f"{where}: {key} must be a number in [0, 1000000], got {value!r}")
        if key == "route53_api_burst" and value < 1:
            raise ProfileError(f"{where}: route53_api_burst must be at least 1, got {value!r}")
        return float(value)
    if key == "route53_prior_request_not_complete":
        if not isinstance(value, bool):
            raise ProfileError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if key == "dns_answers":
        if value not in DNS_ANSWERS:
            raise ProfileError(f"{where}: dns_answers must be one of {', '.join(DNS_ANSWERS)}, got {value!r}")
        return value
    raise ProfileError(f"{where}: unknown setting {key!r}")

# Floors after scaling: below these, a loaded 2-core machine turns timing into flakiness
# (a localhost HTTP probe can take 50 ms when the box is busy).
FLOORS = {"health_check_timeout": 0.25, "health_check_interval": 0.2, "origin_timeout": 0.25,
          "replica_lag_period": 0.2, "cloudwatch_minute": 0.2}

# The largest value a profile file may give a key (seconds): a day, but the seven days of
# rds_stopped_auto_start need more.
MAX_SECONDS = 86400.0
MAX_SECONDS_BY_KEY = {"rds_stopped_auto_start": 30 * 86400.0}


class ProfileError(ValueError):
    """A profile name or file that cannot be used (the CLI turns it into exit code 2)."""


@dataclass
class Profile:
    name: str
    values: dict[str, float]
    time_scale: float = 1.0
    extra: dict = field(default_factory=dict)
    settings: dict = field(default_factory=lambda: dict(SETTINGS_REALISTIC))

    def seconds(self, key: str) -> float:
        """The scaled duration for ``key``, never below its floor."""
        v = self.values[key] * self.time_scale
        return max(v, FLOORS.get(key, 0.0))

    def setting(self, key: str):
        """A setting that is not a duration (SETTINGS_REALISTIC's keys), as given."""
        return self.settings[key]

    def as_dict(self) -> dict:
        return {"name": self.name, "time_scale": self.time_scale,
                "seconds": {k: round(self.seconds(k), 3) for k in sorted(self.values)},
                "settings": {k: self.settings[k] for k in sorted(self.settings)}}


def load(spec: str, time_scale: float = 1.0) -> Profile:
    """Resolve ``instant``, ``realistic`` or a path to a JSON/YAML file into a Profile."""
    if not (isinstance(time_scale, (int, float)) and 0 < time_scale <= 1000):
        raise ProfileError(f"--time-scale must be a number > 0 and <= 1000, got {time_scale!r}")
    if spec in BUILTIN:
        return Profile(spec, dict(BUILTIN[spec]), float(time_scale), settings=dict(SETTINGS[spec]))
    if not os.path.isfile(spec):
        raise ProfileError(f"unknown profile {spec!r}: expected 'instant', 'realistic' or a "
                           "path to a JSON/YAML profile file")
    try:
        with open(spec, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ProfileError(f"cannot read profile file {spec}: {e}") from e
    data = _parse(text, spec)
    if not isinstance(data, dict):
        raise ProfileError(f"profile file {spec} must hold a mapping of keys to seconds")
    base = data.pop("base", "realistic")
    if base not in BUILTIN:
        raise ProfileError(f"profile file {spec}: base must be 'instant' or 'realistic', got {base!r}")
    values = dict(BUILTIN[base])
    settings = dict(SETTINGS[base])
    for key, value in data.items():
        if key in settings:
            settings[key] = check_setting(key, value, f"profile file {spec}")
            continue
        if key not in values:
            raise ProfileError(f"profile file {spec}: unknown key {key!r} "
                               f"(known: {', '.join(sorted(set(values) | set(settings)))})")
        limit = MAX_SECONDS_BY_KEY.get(key, MAX_SECONDS)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value > limit:
            raise ProfileError(f"profile file {spec}: {key} must be a number of seconds in "
                               f"[0, {limit:.0f}], got {value!r}")
        values[key] = float(value)
    return Profile(os.path.basename(spec), values, float(time_scale), settings=settings)


def _parse(text: str, spec: str):
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml
    except ImportError as e:  # pragma: no cover - PyYAML is pinned in requirements
        raise ProfileError("profile file is not JSON and PyYAML is not installed") from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ProfileError(f"profile file {spec} is neither valid JSON nor YAML: {e}") from e

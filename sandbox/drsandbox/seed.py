"""Seed the warm-standby topology of a three-tier app through the AWS APIs, then describe it.

us-east-1 is the primary (production size), us-west-2 the warm standby:

* per region: a VPC with two subnets; frontend and backend ALBs with target groups and an
  HTTP:80 listener; frontend and backend ASGs on launch templates (primary desired 2,
  standby desired 1, max 4) registered with the target groups;
* RDS MySQL ``shop-db-use1`` with the cross-region read replica ``shop-db-usw2``, each
  encrypted with its own region's KMS key (``alias/shop-db-<r>``), in its region's DB subnet
  group ``shop-db-<r>`` (the two seeded subnets) with the region's seeded security group; a
  private zone ``shop.internal`` per region whose ``db`` CNAME points at that region's
  instance; in both regions the DB parameter groups ``shop-mysql`` (read_only=0, used by the
  instances) and ``shop-mysql-readonly`` (read_only=1, the fence);
* a public zone ``<domain>`` with failover alias records for ``api.<domain>`` (PRIMARY ->
  primary backend ALB with a health check on it, SECONDARY -> standby backend ALB);
* a CloudFront distribution whose default behaviour targets an origin group (primary
  frontend ALB first, standby second);
* Backup vaults in both regions and a plan whose rule copies to us-west-2; one primary
  instance is backed up and the AMI recovery point copied into the standby vault, and the
  standby launch templates run that copied AMI;
* with ``gate="arc"`` or ``gate="alarm"`` (``seed --gate``), a failover gate drctl controls from
  outside us-east-1 (an ARC routing control, or a CloudWatch alarm in us-west-2 on a metric
  drctl writes there) and a CALCULATED health check over {the primary ALB's check, the gate's
  check} on the PRIMARY records of ``api.<domain>`` and of ``origin.<domain>`` (failover
  aliases to the frontend ALBs, made only with a gate), which becomes the CloudFront origin
  group's primary origin so that CloudFront follows the gate through DNS (see ``_gate``).
  ``gate="none"`` (the default) builds none of it and writes exactly the files it always did;
* with either, when the sandbox serves UDP DNS (``serve --dns-port``), ``route53.name_servers``
  in both files names it (see ``name_servers``); without one nothing new is written.

Everything goes through the public APIs (boto3) except a few control calls: telling the edge
listeners which record and distribution they serve, reading the listener URLs and, for a
gate, the profile's durations and steps of the sandbox clock (a gate waits for ARC
deployments and an alarm evaluation on the sandbox clock; stepping it makes that quick in
every profile and works on a paused clock too).
Writes ``topology.json`` (every id and ARN, plus the DNS name -> local URL map) and
``drctl.yaml`` (docs/drctl.yaml.example's format) into the output directory.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time
import uuid
from urllib.parse import urlparse

import boto3
import yaml
from botocore.config import Config

from .control_client import call

PRIMARY, STANDBY = "us-east-1", "us-west-2"
SHORT = {PRIMARY: "use1", STANDBY: "usw2"}
APP = "shop"
TIERS = ("frontend", "backend")
# The shipped failover runbook, for the seeded `probes.watch.runbook` (drctl resolves a relative
# path against drctl.yaml's directory, which is wherever --out puts it, so this one is absolute).
FAILOVER_RUNBOOK = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "runbooks",
                                                 "warm-standby-failover.yaml"))
SIZES = {PRIMARY: {"min": 1, "desired": 2, "max": 4}, STANDBY: {"min": 1, "desired": 1, "max": 4}}
PRODUCTION_SIZE = 2
WARM_SIZE = SIZES[STANDBY]["desired"]
ROLE_ARN = "arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole"
PRIVATE_ZONE = f"{APP}.internal."
DB_RECORD = f"db.{PRIVATE_ZONE}"
CIDR = {PRIMARY: "10.10", STANDBY: "10.20"}
BASE_AMI = "ami-04681a1dbd79675a5"  # amzn2-ami-hvm-2.0.20180810-x86_64-gp2
DB_ENGINE_VERSION, DB_FAMILY = "8.0.35", "mysql8.0"
PARAMETER_GROUP = f"{APP}-mysql"               # what the instances use: read_only=0
READONLY_PARAMETER_GROUP = f"{APP}-mysql-readonly"  # the fence: read_only=1


class SeedError(RuntimeError):
    pass


def credentials(endpoint: str) -> tuple[str, str]:
    """The keys to call the sandbox with: any while IAM is not enforced; the sandbox admin
    user's (Allow * on *) while it is (GET /_sandbox/iam, POST /_sandbox/iam/admin)."""
    try:
        mode = call(endpoint, "GET", "/_sandbox/iam").get("mode")
    except Exception:  # not a drsandbox (plain moto): any credentials work there
        return "test", "test"
    if mode != "enforce":
        return "test", "test"
    admin = call(endpoint, "POST", "/_sandbox/iam/admin", {})["admin"]
    return admin["access_key_id"], admin["secret_access_key"]


class _Clients:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        key, secret = credentials(endpoint)
        self.session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret)
        self.cfg = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        self._cache: dict = {}

    def __call__(self, service: str, region: str = PRIMARY):
        key = (service, region)
        if key not in self._cache:
            self._cache[key] = self.session.client(service, region_name=region, endpoint_url=self.endpoint,
                                                   config=self.cfg)
        return self._cache[key]


def _wait(what: str, fn, timeout: float = 300.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SeedError(f"timed out waiting for {what}")
        time.sleep(interval)


def _network(c: _Clients, region: str) -> dict:
    ec2 = c("ec2", region)
    vpc = ec2.create_vpc(CidrBlock=f"{CIDR[region]}.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"{CIDR[region]}.{i + 1}.0/24",
                                 AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
               for i, az in enumerate("ab")]
    sg = ec2.create_security_group(GroupName=f"{APP}-web-{SHORT[region]}", Description="web tier",
                                   VpcId=vpc)["GroupId"]
    # An Amazon Linux 2 image from moto's built-in catalogue (present in every region).
    # Looking it up by name filter costs ~1 s per region in moto, so name it directly.
    base_ami = ec2.describe_images(ImageIds=[BASE_AMI])["Images"][0]["ImageId"]
    return {"vpc_id": vpc, "subnet_ids": subnets, "security_group_id": sg, "base_ami": base_ami}


def _tier(c: _Clients, region: str, net: dict, tier: str, ami: str) -> dict:
    """Launch template, target group, ALB + listener and ASG of one tier in one region."""
    ec2, elb, asg = c("ec2", region), c("elbv2", region), c("autoscaling", region)
    name = f"{APP}-{tier}-{SHORT[region]}"
    lt = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": ami, "InstanceType": "t3.micro", "SecurityGroupIds": [net["security_group_id"]],
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": APP},
                                                                    {"Key": "tier", "Value": tier}]}]})["LaunchTemplate"]
    tg = elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=net["vpc_id"], TargetType="instance",
                                 HealthCheckProtocol="HTTP", HealthCheckPath="/health",
                                 HealthCheckIntervalSeconds=10, HealthyThresholdCount=2,
                                 UnhealthyThresholdCount=2)["TargetGroups"][0]
    lb = elb.create_load_balancer(Name=name, Subnets=net["subnet_ids"], SecurityGroups=[net["security_group_id"]],
                                  Scheme="internet-facing", Type="application")["LoadBalancers"][0]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    size = SIZES[region]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Latest"},
        MinSize=size["min"], MaxSize=size["max"], DesiredCapacity=size["desired"],
        VPCZoneIdentifier=",".join(net["subnet_ids"]), TargetGroupARNs=[tg["TargetGroupArn"]],
        HealthCheckType="ELB", HealthCheckGracePeriod=60,
        Tags=[{"Key": "app", "Value": APP, "PropagateAtLaunch": True},
              {"Key": "tier", "Value": tier, "PropagateAtLaunch": True}])
    return {
        "alb": {"name": name, "arn": lb["LoadBalancerArn"], "dns_name": lb["DNSName"],
                "canonical_hosted_zone_id": lb["CanonicalHostedZoneId"],
                "listener_arn": listener["Listeners"][0]["ListenerArn"], "target_group_arn": tg["TargetGroupArn"]},
        "asg": {"name": name, "launch_template_id": lt["LaunchTemplateId"], "launch_template_name": name,
                "ami_id": ami, "min_size": size["min"], "desired_capacity": size["desired"], "max_size": size["max"]},
    }


def _parameter_groups(c: _Clients, region: str) -> dict:
    """The writable and the read-only (fence) DB parameter group of one region."""
    rds = c("rds", region)
    for name, value, what in ((PARAMETER_GROUP, "0", "writable"), (READONLY_PARAMETER_GROUP, "1", "read-only fence")):
        rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily=DB_FAMILY,
                                      Description=f"{APP} MySQL, {what} (read_only={value})",
                                      Tags=[{"Key": "app", "Value": APP}])
        rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=[
            {"ParameterName": "read_only", "ParameterValue": value, "ApplyMethod": "immediate"}])
    return {"parameter_group": PARAMETER_GROUP, "readonly_parameter_group": READONLY_PARAMETER_GROUP}


def _db_network(c: _Clients, region: str, net: dict) -> dict:
    """What a production database of one region sits on: a KMS key of the region for its
    storage (alias ``alias/<app>-db-<r>``) and a DB subnet group ``<app>-db-<r>`` over the
    region's two subnets, with the region's security group.

    A key per region because "KMS keys are specific to the AWS Region that they are created in,
    and you can't use KMS keys from one AWS Region in another AWS Region": a cross-region
    replica of an encrypted source must name a key of its own region (CreateDBInstanceReadReplica
    API reference, KmsKeyId), and so must drctl when it builds one (drctl.yaml
    ``database.kms_key_id``). A subnet group per region because without one "the new DB
    instance isn't created in a VPC" (same page, DBSubnetGroupName); the instance's
    VpcSecurityGroupIds must be groups of that subnet group's VPC."""
    name = f"{APP}-db-{SHORT[region]}"
    kms = c("kms", region)
    key = kms.create_key(Description=f"{APP} database storage, {region}", KeyUsage="ENCRYPT_DECRYPT",
                         Tags=[{"TagKey": "app", "TagValue": APP}])["KeyMetadata"]
    alias = f"alias/{name}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    c("rds", region).create_db_subnet_group(
        DBSubnetGroupName=name, DBSubnetGroupDescription=f"{APP} database subnets, {region}",
        SubnetIds=list(net["subnet_ids"]), Tags=[{"Key": "app", "Value": APP}])
    return {"kms_key_id": key["Arn"], "kms_key_alias": alias, "subnet_group": name,
            "security_group_ids": [net["security_group_id"]]}


def _private_zone(c: _Clients, region: str, vpc: str, db_address: str) -> str:
    r53 = c("route53")
    zone = r53.create_hosted_zone(Name=PRIVATE_ZONE, CallerReference=f"{APP}-private-{region}-{uuid.uuid4()}",
                                  VPC={"VPCRegion": region, "VPCId": vpc},
                                  HostedZoneConfig={"PrivateZone": True, "Comment": f"{APP} {region}"})
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
        "Action": "CREATE", "ResourceRecordSet": {"Name": DB_RECORD, "Type": "CNAME", "TTL": 60,
                                                  "ResourceRecords": [{"Value": db_address}]}}]})
    return zone_id


def _db_address(c: _Clients, region: str, ident: str) -> dict:
    db = c("rds", region).describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    return db


STATE_TABLE = "drctl-state"
STATE_REGION = "us-east-2"

ENV_NAME = "sandbox"  # drctl.yaml `name`: the environment, also the gate metric's dimension

# ---------------------------------------------------------------------------- failover gates
#
# `seed --gate arc|alarm`: the primary's failover record answers only while a CALCULATED
# health check over {the primary ALB's HTTP check, a gate} is healthy, HealthThreshold 2
# (Route 53 Developer Guide, "How Amazon Route 53 determines whether a health check is
# healthy", health checks that monitor other health checks: Route 53 "adds up the number of
# child health checks that are considered to be healthy" and compares it with the threshold;
# API reference, HealthCheckConfig.HealthThreshold). The gate is driven by drctl from outside
# us-east-1, on data planes only, so a failover and a failback need no Route 53 control plane
# ("AWS Fault Isolation Boundaries", Appendix B: during a Route 53 control-plane impairment
# "DNS resolution and health checks, and updates to routing resulting from changes in health
# checks, will continue to work"). Gate open = the primary may serve; closed = it may not.
GATES = ("none", "arc", "alarm")
GATE_CLUSTER = f"{APP}-dr"                  # ARC cluster ...
GATE_CONTROL_PANEL = f"{APP}-failover"      # ... its control panel ...
GATE_ROUTING_CONTROL = f"{APP}-primary-gate"  # ... and the routing control: On = open
GATE_REGION = STANDBY                       # the alarm gate lives in the standby region
GATE_NAMESPACE, GATE_METRIC = "drctl", "PrimaryGate"  # 1 = open, 0 = closed
GATE_ALARM = f"{ENV_NAME}-{APP}-primary-gate"
# The alarm's missing-data treatment. Missing data must never flip production by itself:
#
# * CloudWatch User Guide, "Configuring how CloudWatch alarms treat missing data":
#   `breaching` ("Missing data points are treated as 'bad' and breaching the threshold")
#   would close an open gate, i.e. fail over, as soon as drctl stopped writing;
#   `notBreaching` ("treated as 'good' and within the threshold") would open a closed gate,
#   i.e. fail back, a few minutes after drctl wrote its last 0 — a failover would have to be
#   held by writing 0 every minute for as long as it lasts, which is exactly the dependency a
#   gate exists to remove. `missing` ("If all data points in the alarm evaluation range are
#   missing, the alarm transitions to INSUFFICIENT_DATA"; also CloudWatch's default) says
#   "no data" instead of choosing a side.
# * Route 53 then decides what INSUFFICIENT_DATA means: InsufficientDataHealthStatus
#   `LastKnownStatus` — "Route 53 uses the status of the health check from the last time that
#   CloudWatch had sufficient data to determine the alarm state. For new health checks that
#   have no last known status, the default status for the health check is healthy" (Route 53
#   API reference, HealthCheckConfig.InsufficientDataHealthStatus). So with no data the gate
#   stays as drctl last set it, open or closed; the same holds while us-west-2's CloudWatch
#   cannot be read.
# * Not `ignore`: it keeps the alarm's *state*, but Route 53 "monitors the data stream for the
#   corresponding alarm instead of monitoring the alarm state" (Developer Guide, health checks
#   that monitor CloudWatch alarms), so `missing` + LastKnownStatus is the pair whose no-data
#   behaviour both guides document.
#
# Statistic Minimum over 60 s (Route 53 takes standard-resolution alarms only, Period >= 60):
# a minute in which drctl wrote any 0 is a closed minute (closing wins over a stale 1 in the
# same minute); to reopen, drctl writes 1 and the gate opens at the first evaluation whose
# latest minute holds only 1s.
GATE_TREAT_MISSING_DATA = "missing"
# With a gate, CloudFront's primary origin is this gated name (origin.<domain>): failover alias
# records to the frontend ALBs whose PRIMARY carries the same calculated check as api.<domain>.
ORIGIN_LABEL = "origin"
GATE_INSUFFICIENT_DATA = "LastKnownStatus"


def _profile_seconds(endpoint: str) -> dict:
    """The running profile's (scaled) durations, GET /_sandbox/healthz."""
    return call(endpoint, "GET", "/_sandbox/healthz")["profile"]["seconds"]


def _advance(endpoint: str, what: str, done, seconds: float, steps: int = 30):
    """Step the sandbox clock ``seconds`` at a time until ``done()`` is truthy (checked before
    every step). A step works on a running clock too (it skips ahead), so this is quick in
    every profile and never waits for the wall clock."""
    seconds = max(float(seconds), 0.05)
    for _ in range(steps):
        value = done()
        if value:
            return value
        call(endpoint, "POST", "/_sandbox/clock/step", {"seconds": seconds})
    value = done()
    if value:
        return value
    raise SeedError(f"{what}: not done after {steps} clock steps of {seconds:g} s")


def _set_routing_control(c: _Clients, endpoints: list[dict], arn: str, state: str) -> str:
    """Set a routing control through the cluster's endpoints, tried in turn (ARC Developer
    Guide, "Getting and updating routing control states using the ARC API": one client per
    endpoint, its URL and its Region; "If the endpoint is unavailable, you can try connecting
    to another one of your cluster endpoints"). Returns the region that took it."""
    from botocore.exceptions import BotoCoreError, ClientError

    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    failed = []
    for ep in endpoints:
        client = c.session.client("route53-recovery-cluster", region_name=ep["Region"],
                                  endpoint_url=ep["Endpoint"], config=cfg)
        try:
            client.update_routing_control_state(RoutingControlArn=arn, RoutingControlState=state)
            return ep["Region"]
        except (BotoCoreError, ClientError) as e:
            failed.append(f"{ep['Region']}: {e}")
    raise SeedError(f"no cluster endpoint took routing control {arn} -> {state}: {'; '.join(failed)}")


def _arc_gate(c: _Clients, endpoint: str, secs: dict) -> tuple[str, dict]:
    """A DEPLOYED cluster, control panel and routing control, the routing control On (gate
    open), and a RECOVERY_CONTROL health check on it (ARC Developer Guide, "Creating a routing
    control health check in ARC": the health check follows the routing control's state, On
    healthy, Off unhealthy, and is associated with a DNS failover record). Control plane in
    us-west-2 (the only region it is served from); the state through a cluster endpoint."""
    cc = c("route53-recovery-control-config", STANDBY)
    cluster_arn = cc.create_cluster(ClusterName=GATE_CLUSTER, ClientToken=str(uuid.uuid4()))["Cluster"]["ClusterArn"]
    def deployed_cluster():
        cluster = cc.describe_cluster(ClusterArn=cluster_arn)["Cluster"]
        return cluster if cluster["Status"] == "DEPLOYED" else None

    cluster = _advance(endpoint, "ARC cluster DEPLOYED", deployed_cluster, secs["arc_cluster_create"])
    panel_arn = cc.create_control_panel(ClusterArn=cluster_arn, ControlPanelName=GATE_CONTROL_PANEL,
                                        ClientToken=str(uuid.uuid4()))["ControlPanel"]["ControlPanelArn"]
    _advance(endpoint, "ARC control panel DEPLOYED", lambda: cc.describe_control_panel(
        ControlPanelArn=panel_arn)["ControlPanel"]["Status"] == "DEPLOYED", secs["arc_control_create"])
    control_arn = cc.create_routing_control(ClusterArn=cluster_arn, ControlPanelArn=panel_arn,
                                            RoutingControlName=GATE_ROUTING_CONTROL,
                                            ClientToken=str(uuid.uuid4()))["RoutingControl"]["RoutingControlArn"]
    _advance(endpoint, "ARC routing control DEPLOYED", lambda: cc.describe_routing_control(
        RoutingControlArn=control_arn)["RoutingControl"]["Status"] == "DEPLOYED", secs["arc_control_create"])
    # A new routing control is Off: open the gate before any record depends on it.
    _set_routing_control(c, cluster["ClusterEndpoints"], control_arn, "On")
    check = c("route53").create_health_check(CallerReference=f"{APP}-gate-{uuid.uuid4()}", HealthCheckConfig={
        "Type": "RECOVERY_CONTROL", "RoutingControlArn": control_arn})["HealthCheck"]["Id"]
    return check, {"routing_control": {
        "arn": control_arn,
        # Kept in drctl.yaml so that closing or opening the gate needs no control plane.
        "cluster_endpoints": [{"region": ep["Region"], "url": ep["Endpoint"]} for ep in cluster["ClusterEndpoints"]]}}


def _alarm_gate(c: _Clients, endpoint: str, secs: dict) -> tuple[str, dict]:
    """An alarm in the standby region on drctl/PrimaryGate (ALARM = closed), open from the
    start (a first datapoint 1, the clock stepped until the alarm is OK), and a
    CLOUDWATCH_METRIC health check on it. See GATE_TREAT_MISSING_DATA for the choices."""
    cw = c("cloudwatch", GATE_REGION)
    dimensions = [{"Name": "Environment", "Value": ENV_NAME}]
    cw.put_metric_alarm(
        AlarmName=GATE_ALARM, ActionsEnabled=False,
        AlarmDescription=(f"drctl failover gate of {ENV_NAME}: ALARM = closed, the primary's failover record "
                          f"stops answering. drctl writes {GATE_NAMESPACE}/{GATE_METRIC} here (1 open, 0 closed); "
                          "no data keeps the gate as it was (missing + Route 53 LastKnownStatus)."),
        Namespace=GATE_NAMESPACE, MetricName=GATE_METRIC, Dimensions=dimensions, Statistic="Minimum", Period=60,
        EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=1.0, ComparisonOperator="LessThanThreshold",
        TreatMissingData=GATE_TREAT_MISSING_DATA)
    cw.put_metric_data(Namespace=GATE_NAMESPACE, MetricData=[
        {"MetricName": GATE_METRIC, "Dimensions": dimensions, "Value": 1.0}])
    _advance(endpoint, f"alarm {GATE_ALARM} OK", lambda: cw.describe_alarms(
        AlarmNames=[GATE_ALARM])["MetricAlarms"][0]["StateValue"] == "OK", secs["cloudwatch_minute"])
    check = c("route53").create_health_check(CallerReference=f"{APP}-gate-{uuid.uuid4()}", HealthCheckConfig={
        "Type": "CLOUDWATCH_METRIC", "AlarmIdentifier": {"Region": GATE_REGION, "Name": GATE_ALARM},
        "InsufficientDataHealthStatus": GATE_INSUFFICIENT_DATA})["HealthCheck"]["Id"]
    return check, {"alarm": {"region": GATE_REGION, "name": GATE_ALARM, "namespace": GATE_NAMESPACE,
                             "metric": GATE_METRIC, "dimensions": {d["Name"]: d["Value"] for d in dimensions}}}


def _gate(c: _Clients, endpoint: str, kind: str, alb_check: str, zone_id: str, records: list[str]) -> dict:
    """The gate of ``kind``, the CALCULATED check over {ALB check, gate check}, and the PRIMARY
    record of each of ``records`` (the public name, and the CloudFront origin's name)
    UPSERTed to carry it in one change batch (every other field of each record, and the
    SECONDARY records, unchanged). Returns topology's ``route53.gate``."""
    secs = _profile_seconds(endpoint)
    r53 = c("route53")
    gate_check, spec = (_arc_gate if kind == "arc" else _alarm_gate)(c, endpoint, secs)
    calculated = r53.create_health_check(CallerReference=f"{APP}-calculated-{uuid.uuid4()}", HealthCheckConfig={
        "Type": "CALCULATED", "ChildHealthChecks": [alb_check, gate_check], "HealthThreshold": 2})["HealthCheck"]["Id"]
    for hc, name in ((gate_check, f"{APP}-api-primary-gate"), (calculated, f"{APP}-api-primary-calculated")):
        r53.change_tags_for_resource(ResourceType="healthcheck", ResourceId=hc,
                                     AddTags=[{"Key": "Name", "Value": name}])
    changes = []
    for record in records:
        primary = [r for r in r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=record,
                                                            StartRecordType="A")["ResourceRecordSets"]
                   if r["Name"] == record and r["Type"] == "A" and r.get("Failover") == "PRIMARY"]
        if len(primary) != 1:
            raise SeedError(f"expected one PRIMARY failover record {record}, found {len(primary)}")
        changes.append({"Action": "UPSERT", "ResourceRecordSet": {**primary[0], "HealthCheckId": calculated}})
    change = r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={
        "Comment": f"failover: the primary answers while its ALB is healthy and the {kind} gate is open",
        "Changes": changes})
    _advance(endpoint, "Route 53 change", lambda: r53.get_change(Id=change["ChangeInfo"]["Id"])["ChangeInfo"][
        "Status"] == "INSYNC", secs["route53_change_propagation"])
    # The gate is open: after a round of the health checker (the new checks were healthy
    # until it) the primary still answers.
    call(endpoint, "POST", "/_sandbox/clock/step", {"seconds": max(secs["health_check_interval"], 0.05)})
    _advance(endpoint, "the primary answering through the gate", lambda: call(
        endpoint, "GET", "/_sandbox/state")["route53"]["answer_region"] == PRIMARY, secs["health_check_interval"],
        steps=5)
    return {"calculated_health_check_id": calculated, "gate_health_check_id": gate_check, **spec,
            "records": list(records)}


def name_servers(endpoint: str, healthz: dict) -> list[str] | None:
    """``["HOST:PORT"]`` of the sandbox's UDP DNS server (``serve --dns-port``; healthz
    ``dns.udp_port``), the host being the serve host the endpoint names (as an IP address:
    drctl queries it directly), or None when the sandbox serves no UDP DNS.

    drctl checks DNS on the data plane by asking the zone's name servers directly, as the
    CloudFront Developer Guide's troubleshooting does ("HTTP 502 status code (DNS error)":
    "dig OriginDomainName @NameServer"); TestDNSAnswer is a Route 53 API call (control
    plane, us-east-1: "AWS Fault Isolation Boundaries", Appendix B)."""
    port = (healthz.get("dns") or {}).get("udp_port")
    if port is None:
        return None
    host = urlparse(endpoint).hostname or "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = ipaddress.ip_address(socket.gethostbyname(host))
    if ip.is_unspecified:  # serve --host 0.0.0.0: loopback reaches it
        ip = ipaddress.ip_address("127.0.0.1")
    return [f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"]


def seed(endpoint: str, out_dir: str, domain: str = "example.test", reset: bool = False,
         state_backend: str = "file", gate: str = "none") -> dict:
    domain = domain.strip(".").lower()
    if not domain or " " in domain:
        raise SeedError(f"invalid domain {domain!r}")
    if gate not in GATES:
        raise SeedError(f"unknown gate {gate!r}: expected one of {', '.join(GATES)}")
    healthz = call(endpoint, "GET", "/_sandbox/healthz")
    servers = name_servers(endpoint, healthz)
    if reset:
        call(endpoint, "POST", "/_sandbox/reset")
    c = _Clients(endpoint)  # after a reset: it forgets IAM users, the admin's keys with them
    taken = [lb["LoadBalancerName"] for lb in c("elbv2", PRIMARY).describe_load_balancers()["LoadBalancers"]
             if lb["LoadBalancerName"] == f"{APP}-frontend-{SHORT[PRIMARY]}"]
    if taken:
        raise SeedError(f"this sandbox is already seeded ({taken[0]} exists); seed again with --reset "
                        "to start over, or restart the sandbox")
    account = c("sts").get_caller_identity()["Account"]
    regions: dict = {r: {"role": "primary" if r == PRIMARY else "standby"} for r in (PRIMARY, STANDBY)}
    for r in regions:
        regions[r]["network"] = _network(c, r)

    # Backup vaults and the plan first: the primary's AMI is backed up and copied before the
    # standby's launch templates can point at it.
    vault_arns = {}
    for r in regions:
        v = c("backup", r).create_backup_vault(BackupVaultName=f"{APP}-vault-{SHORT[r]}")
        vault_arns[r] = v["BackupVaultArn"]
        regions[r]["backup_vault"] = {"name": v["BackupVaultName"], "arn": v["BackupVaultArn"]}
    b1 = c("backup", PRIMARY)
    plan = b1.create_backup_plan(BackupPlan={"BackupPlanName": f"{APP}-dr-plan", "Rules": [{
        "RuleName": "daily-with-dr-copy", "TargetBackupVaultName": regions[PRIMARY]["backup_vault"]["name"],
        "ScheduleExpression": "cron(0 5 ? * * *)", "Lifecycle": {"DeleteAfterDays": 35},
        "CopyActions": [{"DestinationBackupVaultArn": vault_arns[STANDBY], "Lifecycle": {"DeleteAfterDays": 35}}]}]})
    selection = b1.create_backup_selection(BackupPlanId=plan["BackupPlanId"], BackupSelection={
        "SelectionName": f"{APP}-instances", "IamRoleArn": ROLE_ARN, "Resources": ["arn:aws:ec2:*:*:instance/*"],
        "ListOfTags": [{"ConditionType": "STRINGEQUALS", "ConditionKey": "app", "ConditionValue": APP}]})

    # Primary compute, then back up one of its instances.
    net = regions[PRIMARY]["network"]
    tiers = {t: _tier(c, PRIMARY, net, t, net["base_ami"]) for t in TIERS}
    regions[PRIMARY]["albs"] = {t: v["alb"] for t, v in tiers.items()}
    regions[PRIMARY]["asgs"] = {t: v["asg"] for t, v in tiers.items()}
    group = c("autoscaling", PRIMARY).describe_auto_scaling_groups(
        AutoScalingGroupNames=[regions[PRIMARY]["asgs"]["frontend"]["name"]])["AutoScalingGroups"][0]
    instance_id = group["Instances"][0]["InstanceId"]
    job = b1.start_backup_job(BackupVaultName=regions[PRIMARY]["backup_vault"]["name"], IamRoleArn=ROLE_ARN,
                              ResourceArn=f"arn:aws:ec2:{PRIMARY}:{account}:instance/{instance_id}")

    # While the backup runs: the primary database and the DNS zones.
    groups = {r: _parameter_groups(c, r) for r in regions}
    db_nets = {r: _db_network(c, r, regions[r]["network"]) for r in regions}
    rds1 = c("rds", PRIMARY)
    # Encrypted with the region's key, in the region's DB subnet group (its VPC) with its
    # security group, as a production database is.
    db1 = rds1.create_db_instance(
        DBInstanceIdentifier=f"{APP}-db-{SHORT[PRIMARY]}", Engine="mysql", EngineVersion=DB_ENGINE_VERSION,
        DBInstanceClass="db.t3.micro", MasterUsername="admin", MasterUserPassword="sandbox-password-1",
        AllocatedStorage=20, BackupRetentionPeriod=7, MultiAZ=False, AvailabilityZone=f"{PRIMARY}a",
        DBParameterGroupName=groups[PRIMARY]["parameter_group"], StorageEncrypted=True,
        KmsKeyId=db_nets[PRIMARY]["kms_key_id"], DBSubnetGroupName=db_nets[PRIMARY]["subnet_group"],
        VpcSecurityGroupIds=db_nets[PRIMARY]["security_group_ids"],
        Tags=[{"Key": "app", "Value": APP}])["DBInstance"]
    regions[PRIMARY]["database"] = {"instance_id": db1["DBInstanceIdentifier"], "arn": db1["DBInstanceArn"],
                                    "role": "writer", "source": None, **groups[PRIMARY], **db_nets[PRIMARY]}

    _wait("backup job", lambda: b1.describe_backup_job(BackupJobId=job["BackupJobId"])["State"] == "COMPLETED")
    copy = b1.start_copy_job(RecoveryPointArn=job["RecoveryPointArn"],
                             SourceBackupVaultName=regions[PRIMARY]["backup_vault"]["name"],
                             DestinationBackupVaultArn=vault_arns[STANDBY], IamRoleArn=ROLE_ARN)

    # While the copy runs: the read replica in the standby region.
    rds2 = c("rds", STANDBY)
    # (A cross-region replica would get the default parameter group: name the region's own.
    # Of an encrypted source it needs a key of its own region, and without a DB subnet group
    # it would not be in a VPC: name the region's key, subnet group and security group.)
    db2 = rds2.create_db_instance_read_replica(
        DBInstanceIdentifier=f"{APP}-db-{SHORT[STANDBY]}", SourceDBInstanceIdentifier=db1["DBInstanceArn"],
        SourceRegion=PRIMARY, DBInstanceClass="db.t3.micro", AvailabilityZone=f"{STANDBY}a",
        DBParameterGroupName=groups[STANDBY]["parameter_group"], KmsKeyId=db_nets[STANDBY]["kms_key_id"],
        DBSubnetGroupName=db_nets[STANDBY]["subnet_group"], VpcSecurityGroupIds=db_nets[STANDBY]["security_group_ids"],
        Tags=[{"Key": "app", "Value": APP}])["DBInstance"]
    regions[STANDBY]["database"] = {"instance_id": db2["DBInstanceIdentifier"], "arn": db2["DBInstanceArn"],
                                    "role": "replica", "source": db1["DBInstanceArn"], **groups[STANDBY],
                                    **db_nets[STANDBY]}
    for r in regions:
        d = regions[r]["database"]
        desc = _db_address(c, r, d["instance_id"])
        d["endpoint"] = desc["Endpoint"]["Address"]
        d["port"] = desc["Endpoint"]["Port"]
        zone_id = _private_zone(c, r, regions[r]["network"]["vpc_id"], d["endpoint"])
        d.update(private_zone_id=zone_id, private_zone_name=PRIVATE_ZONE, record_name=DB_RECORD)

    copy_job = _wait("copy job", lambda: (lambda j: j if j["State"] == "COMPLETED" else None)(
        b1.describe_copy_job(CopyJobId=copy["CopyJobId"])["CopyJob"]))
    copied_ami = copy_job["DestinationRecoveryPointArn"].split("/")[-1]

    # Standby compute on the copied AMI.
    net = regions[STANDBY]["network"]
    tiers = {t: _tier(c, STANDBY, net, t, copied_ami) for t in TIERS}
    regions[STANDBY]["albs"] = {t: v["alb"] for t, v in tiers.items()}
    regions[STANDBY]["asgs"] = {t: v["asg"] for t, v in tiers.items()}
    # The drill load balancer: an ALB beside production with no listener of its own; an
    # isolated drill adds one for its copy of the app and removes it (drctl.yaml drill:).
    drill_lb = c("elbv2", STANDBY).create_load_balancer(
        Name=f"{APP}-drill-{SHORT[STANDBY]}", Subnets=net["subnet_ids"], SecurityGroups=[net["security_group_id"]],
        Scheme="internal", Type="application")["LoadBalancers"][0]
    drill = {"load_balancer": {"arn": drill_lb["LoadBalancerArn"], "dns_name": drill_lb["DNSName"]}}

    # Public DNS: health check on the primary backend ALB, failover aliases for api.<domain>
    # (and, with a gate, for origin.<domain>: the frontend ALBs, CloudFront's gated origin).
    r53 = c("route53")
    record = f"api.{domain}."
    origin_record = f"{ORIGIN_LABEL}.{domain}." if gate != "none" else None
    zone = r53.create_hosted_zone(Name=f"{domain}.", CallerReference=f"{APP}-public-{uuid.uuid4()}",
                                  HostedZoneConfig={"PrivateZone": False, "Comment": f"{APP} public"})
    public_zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    primary_be, standby_be = regions[PRIMARY]["albs"]["backend"], regions[STANDBY]["albs"]["backend"]
    hc = r53.create_health_check(CallerReference=f"{APP}-api-{uuid.uuid4()}", HealthCheckConfig={
        "Type": "HTTP", "FullyQualifiedDomainName": primary_be["dns_name"], "Port": 80, "ResourcePath": "/health",
        "RequestInterval": 10, "FailureThreshold": 3})["HealthCheck"]
    r53.change_tags_for_resource(ResourceType="healthcheck", ResourceId=hc["Id"],
                                 AddTags=[{"Key": "Name", "Value": f"{APP}-api-primary"}])

    def alias(set_id, failover, alb, health_check=None, name=record):
        rrset = {"Name": name, "Type": "A", "SetIdentifier": set_id, "Failover": failover,
                 "AliasTarget": {"HostedZoneId": alb["canonical_hosted_zone_id"], "DNSName": alb["dns_name"],
                                 "EvaluateTargetHealth": True}}
        if health_check:
            rrset["HealthCheckId"] = health_check
        return {"Action": "CREATE", "ResourceRecordSet": rrset}

    changes = [alias("primary", "PRIMARY", primary_be, hc["Id"]), alias("secondary", "SECONDARY", standby_be)]
    if origin_record:
        # CloudFront's gated origin: the frontend ALBs by failover. Its PRIMARY gets the
        # calculated check with the gate (below); until then the alias's target health alone.
        primary_fe, standby_fe = regions[PRIMARY]["albs"]["frontend"], regions[STANDBY]["albs"]["frontend"]
        changes += [alias("primary", "PRIMARY", primary_fe, name=origin_record),
                    alias("secondary", "SECONDARY", standby_fe, name=origin_record)]
    change = r53.change_resource_record_sets(HostedZoneId=public_zone_id, ChangeBatch={
        "Comment": "api failover", "Changes": changes})

    # CloudFront: default behaviour -> origin group (primary frontend first).
    cf = c("cloudfront")
    origin_ids = {PRIMARY: "primary-frontend", STANDBY: "standby-frontend"}
    group_id = f"{APP}-frontend-group"
    # With a gate, the primary origin is the gated name origin.<domain> instead of the primary
    # frontend ALB: CloudFront resolves an origin's domain through DNS for its requests to the
    # origin (CloudFront Developer Guide, "HTTP 502 status code (DNS error)": "CloudFront
    # performs a DNS resolution on the origin domain"), so closing the gate moves CloudFront
    # too, with no UpdateDistribution (its control plane is in us-east-1).
    origin_domains = {r: regions[r]["albs"]["frontend"]["dns_name"] for r in (PRIMARY, STANDBY)}
    if origin_record:
        origin_domains[PRIMARY] = origin_record.rstrip(".")
    origins = [{"Id": origin_ids[r], "DomainName": origin_domains[r],
                "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only",
                                       "OriginReadTimeout": 30, "OriginKeepaliveTimeout": 5}}
               for r in (PRIMARY, STANDBY)]
    dist = cf.create_distribution(DistributionConfig={
        "CallerReference": f"{APP}-{uuid.uuid4()}", "Comment": f"{APP} frontend", "Enabled": True,
        "Origins": {"Quantity": 2, "Items": origins},
        "OriginGroups": {"Quantity": 1, "Items": [{
            "Id": group_id, "FailoverCriteria": {"StatusCodes": {"Quantity": 4, "Items": [500, 502, 503, 504]}},
            "Members": {"Quantity": 2, "Items": [{"OriginId": origin_ids[PRIMARY]}, {"OriginId": origin_ids[STANDBY]}]}}]},
        "DefaultCacheBehavior": {"TargetOriginId": group_id, "ViewerProtocolPolicy": "redirect-to-https",
                                 "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"}})["Distribution"]

    # Tell the edge listeners what they stand for, then wait for everything to settle.
    call(endpoint, "POST", "/_sandbox/edges", {"account": account,
                                              "public": {"zone_id": public_zone_id, "record_name": record},
                                              "cdn": {"distribution_id": dist["Id"]}})
    _wait("CloudFront deployment", lambda: cf.get_distribution(Id=dist["Id"])["Distribution"]["Status"] == "Deployed")
    _wait("Route 53 change", lambda: r53.get_change(Id=change["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "INSYNC")
    _wait("read replica", lambda: _db_address(c, STANDBY, db2["DBInstanceIdentifier"])["DBInstanceStatus"] == "available")
    _wait("ASGs in service", lambda: all(
        len([i for i in g["Instances"] if i["LifecycleState"] == "InService"]) >= g["DesiredCapacity"]
        for r in regions for g in c("autoscaling", r).describe_auto_scaling_groups()["AutoScalingGroups"]))

    # The failover gate (none by default: then nothing here runs and nothing else changes).
    gate_spec = _gate(c, endpoint, gate, hc["Id"], public_zone_id, [record, origin_record]) \
        if gate != "none" else None

    listeners = call(endpoint, "GET", "/_sandbox/listeners")["listeners"]
    by_dns = {l["dns_name"]: l["url"] for l in listeners if l.get("dns_name")}
    edge = {l["name"]: l["url"] for l in listeners if l["kind"] == "edge"}
    for r in regions:
        for alb in regions[r]["albs"].values():
            if alb["dns_name"] not in by_dns:
                raise SeedError(f"no local listener for {alb['dns_name']}")
            alb["url"] = by_dns[alb["dns_name"]]
    if drill["load_balancer"]["dns_name"] not in by_dns:
        raise SeedError(f"no local listener for {drill['load_balancer']['dns_name']}")
    drill["load_balancer"]["url"] = by_dns[drill["load_balancer"]["dns_name"]]

    topology = {
        "endpoint": endpoint, "account_id": account, "domain": domain,
        "primary_region": PRIMARY, "standby_region": STANDBY, "regions": regions,
        "route53": {"public_zone_id": public_zone_id, "public_zone_name": f"{domain}.", "record_name": record,
                    "record_type": "A", "primary_set_identifier": "primary", "secondary_set_identifier": "secondary",
                    "health_check_id": hc["Id"], "public_url": edge["public"],
                    **({"name_servers": servers} if servers else {}),
                    **({"gate": gate_spec} if gate_spec else {})},
        "cloudfront": {"distribution_id": dist["Id"], "arn": dist["ARN"], "domain_name": dist["DomainName"],
                       "origin_group_id": group_id, "origins": origin_ids, "url": edge["cdn"],
                       **({"gated_origin": {"id": origin_ids[PRIMARY], "domain_name": origin_domains[PRIMARY],
                                            "record_name": origin_record}} if gate_spec else {})},
        "backup": {"plan_id": plan["BackupPlanId"], "plan_arn": plan["BackupPlanArn"],
                   "selection_id": selection["SelectionId"], "backup_job_id": job["BackupJobId"],
                   "recovery_point_arn": job["RecoveryPointArn"], "copy_job_id": copy["CopyJobId"],
                   "copied_recovery_point_arn": copy_job["DestinationRecoveryPointArn"],
                   "source_ami_id": job["RecoveryPointArn"].split("/")[-1], "copied_ami_id": copied_ami},
        "drill": drill,
        "listeners": {**by_dns, record.rstrip("."): edge["public"], dist["DomainName"]: edge["cdn"]},
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "topology.json"), "w", encoding="utf-8") as f:
        json.dump(topology, f, indent=2, sort_keys=False)
        f.write("\n")
    with open(os.path.join(out_dir, "drctl.yaml"), "w", encoding="utf-8") as f:
        f.write("# drctl environment file for the drsandbox; written by `python -m drsandbox seed`.\n")
        yaml.safe_dump(drctl_config(topology, state_backend), f, sort_keys=False, default_flow_style=False)
    return topology


def drctl_config(t: dict, state_backend: str = "file") -> dict:
    """The environment file, key for key in the shape of docs/drctl.yaml.example. Each
    database names the parameter group it uses (its own), where drctl's fence sets
    read_only (the read-only group stays in topology.json for people fencing by hand), and
    the KMS key, DB subnet group and security groups of its region."""
    regions = {}
    for r, reg in t["regions"].items():
        regions[r] = {
            "albs": {tier: {"arn": a["arn"], "dns_name": a["dns_name"], "target_group_arn": a["target_group_arn"],
                            "url": a["url"]} for tier, a in reg["albs"].items()},
            "asgs": {tier: {"name": g["name"], "launch_template_id": g["launch_template_id"],
                            "production_size": PRODUCTION_SIZE, "warm_size": WARM_SIZE, "max_size": g["max_size"]}
                     for tier, g in reg["asgs"].items()},
            "database": {"instance_id": reg["database"]["instance_id"],
                         "private_zone_id": reg["database"]["private_zone_id"],
                         "record_name": reg["database"]["record_name"],
                         "parameter_group": reg["database"]["parameter_group"],
                         # What a replica drctl builds in this region needs (reprotect, failback):
                         # the region's key (a cross-region replica of an encrypted source needs
                         # one of its own region), its DB subnet group and security groups.
                         "kms_key_id": reg["database"]["kms_key_id"],
                         "subnet_group": reg["database"]["subnet_group"],
                         "security_group_ids": list(reg["database"]["security_group_ids"])},
            "backup_vault": reg["backup_vault"]["name"],
        }
    probes = []
    for r, reg in t["regions"].items():
        for tier in TIERS:
            a = reg["albs"][tier]
            probes.append({"name": f"{reg['role']}-{tier}", "region": r,
                           "http": {"url": f"{a['url']}/health", "host": a["dns_name"],
                                    "expect_status": "200-299", "body_contains": "ok"}})
    rt = t["route53"]
    return {
        "name": ENV_NAME,
        "primary_region": t["primary_region"],
        "standby_region": t["standby_region"],
        "state_dir": ".drctl",
        "approvals": {"two_person": False},
        # `--state-backend dynamodb`: runs and the lease in a DynamoDB table in a third region
        # (never the primary), shared by every drctl with this file; `drctl state init` makes it.
        **({"state": {"backend": "dynamodb", "table": STATE_TABLE, "region": STATE_REGION}}
           if state_backend == "dynamodb" else {}),
        "aws": {"endpoint_url": t["endpoint"], "operation_timeout": "30s", "attempt_timeout": "10s",
                "max_attempts": 3},
        "regions": regions,
        "route53": {"public_zone_id": rt["public_zone_id"], "record_name": rt["record_name"],
                    "primary_set_identifier": rt["primary_set_identifier"],
                    "secondary_set_identifier": rt["secondary_set_identifier"],
                    "health_check_id": rt["health_check_id"], "public_url": rt["public_url"],
                    # Only when the sandbox serves UDP DNS (serve --dns-port): drctl's schema
                    # denies unknown keys, and without a server there is nothing to name.
                    **({"name_servers": list(rt["name_servers"])} if rt.get("name_servers") else {}),
                    **({"gate": gate_config(rt["gate"])} if rt.get("gate") else {})},
        "cloudfront": {"distribution_id": t["cloudfront"]["distribution_id"],
                       "origin_group_id": t["cloudfront"]["origin_group_id"],
                       "origins": dict(t["cloudfront"]["origins"]), "url": t["cloudfront"]["url"]},
        "backup": {"plan_id": t["backup"]["plan_id"], "iam_role_arn": ROLE_ARN},
        "targets": {"rto": "15m", "rpo": "5m", "max_ami_age": "7d"},
        "drill": {"load_balancer": {"arn": t["drill"]["load_balancer"]["arn"],
                                    "url": t["drill"]["load_balancer"]["url"]},
                  "instances": 1, "listener_port": 8080, "hold": "30s", "timeout": "15m"},
        "probes": {"interval": "1s", "timeout": "800ms", "jitter": "100ms", "failure_threshold": 3,
                   "recovery_threshold": 2, "max_in_flight": 4096, "targets": probes,
                   # `drctl watch` notifies by default; set action: failover to let it act.
                   "watch": {"confirm_for": "2s", "action": "notify", "runbook": FAILOVER_RUNBOOK,
                             "require_route53": False, "cooldown": "1h",
                             "primary": [p["name"] for p in probes if p["region"] == t["primary_region"]],
                             "standby": [p["name"] for p in probes if p["region"] == t["standby_region"]],
                             "notify_timeout": "5s", "notify_attempts": 3, "notifications": []}},
    }


def gate_config(g: dict) -> dict:
    """drctl.yaml's ``route53.gate``, key for key (drctl parses exactly this): the two health
    check ids and exactly one of ``routing_control`` / ``alarm``."""
    out = {"calculated_health_check_id": g["calculated_health_check_id"],
           "gate_health_check_id": g["gate_health_check_id"]}
    if "routing_control" in g:
        rc = g["routing_control"]
        out["routing_control"] = {"arn": rc["arn"], "cluster_endpoints": [
            {"region": ep["region"], "url": ep["url"]} for ep in rc["cluster_endpoints"]]}
    else:
        a = g["alarm"]
        out["alarm"] = {"region": a["region"], "name": a["name"], "namespace": a["namespace"],
                        "metric": a["metric"], "dimensions": dict(a["dimensions"])}
    return out

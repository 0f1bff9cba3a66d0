"""IAM enforced, on request (``serve --iam enforce`` / ``POST /_sandbox/iam``): requests are
authenticated against the sandbox's IAM users and access keys (signature included) and
authorized against their policies, resource ARNs included, with each protocol's AccessDenied.

Plain moto (and the sandbox with IAM off) accepts any credentials and any call: every test
here that expects a refusal fails there.
"""

from __future__ import annotations

import json

import boto3
import botocore.model
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import Proc, Sandbox, run_cli, wait_for

ACCOUNT = "123456789012"
CFG = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)


def _client(sbx, service, creds, region="us-east-1"):
    return boto3.session.Session().client(service, region_name=region, endpoint_url=sbx.url, config=CFG,
                                          aws_access_key_id=creds[0], aws_secret_access_key=creds[1])


def _enforce(sbx) -> tuple[str, str]:
    """Turn enforcement on; the admin user's credentials."""
    status, body = sbx.control("POST", "/_sandbox/iam", {"mode": "enforce"})
    assert status == 200 and body["mode"] == "enforce", body
    status, body = sbx.control("POST", "/_sandbox/iam/admin", {})
    assert status == 200, body
    return body["admin"]["access_key_id"], body["admin"]["secret_access_key"]


def _user(sbx, admin, name, *statements, managed=None) -> tuple[str, str]:
    """An IAM user with an inline policy of ``statements`` (and optionally a managed policy
    attached), made through moto's IAM API as a person would; its access key."""
    iam = _client(sbx, "iam", admin)
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-inline",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    if managed:
        arn = iam.create_policy(PolicyName=f"{name}-managed", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": managed}))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _refused(fn):
    with pytest.raises(ClientError) as e:
        fn()
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


def _db(client, ident):
    return client.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]


def _replicas(sbx):
    """db1 in us-east-1 and its cross-region read replicas r1, r2 in us-west-2 (made before
    enforcement, with any credentials)."""
    e1, w2 = sbx.client("rds", "us-east-1"), sbx.client("rds", "us-west-2")
    src = e1.create_db_instance(DBInstanceIdentifier="db1", Engine="mysql", DBInstanceClass="db.t3.micro",
                                MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
                                BackupRetentionPeriod=1)["DBInstance"]
    for r in ("r1", "r2"):
        w2.create_db_instance_read_replica(DBInstanceIdentifier=r, SourceDBInstanceIdentifier=src["DBInstanceArn"])
    for r in ("r1", "r2"):
        wait_for(lambda r=r: _db(w2, r)["DBInstanceStatus"] == "available", timeout=10, what=f"{r} available")


def test_allowed_by_action_but_denied_by_resource(sbx):
    """A policy that allows rds:PromoteReadReplica only on r1's ARN: promoting r2 is refused
    (403 AccessDenied naming r2's ARN, as AWS words it), promoting r1 goes ahead. Plain moto
    promotes both, whatever the credentials."""
    _replicas(sbx)
    admin = _enforce(sbx)
    creds = _user(sbx, admin, "drctl",
                  {"Effect": "Allow", "Action": "rds:PromoteReadReplica",
                   "Resource": f"arn:aws:rds:us-west-2:{ACCOUNT}:db:r1"},
                  {"Effect": "Allow", "Action": "rds:DescribeDBInstances", "Resource": "*"})
    w2 = _client(sbx, "rds", creds, "us-west-2")
    code, status, message = _refused(lambda: w2.promote_read_replica(DBInstanceIdentifier="r2"))
    assert (code, status) == ("AccessDenied", 403)
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/drctl is not authorized to perform: rds:PromoteReadReplica "
                       f"on resource: arn:aws:rds:us-west-2:{ACCOUNT}:db:r2 because no identity-based policy allows "
                       "the rds:PromoteReadReplica action")
    assert _db(w2, "r2")["ReadReplicaSourceDBInstanceIdentifier"]  # nothing happened
    assert w2.promote_read_replica(DBInstanceIdentifier="r1")["DBInstance"]["DBInstanceStatus"] == "modifying"
    calls = sbx.control("GET", "/_sandbox/calls")[1]
    assert calls["mutating"].get("rds:PromoteReadReplica") == 1  # the refusal is logged, not counted
    assert [c["status"] for c in calls["calls"] if c["operation"] == "PromoteReadReplica"] == [403, 200]


def test_a_list_without_an_identifier_is_authorized_on_the_wildcard_arn(sbx):
    """DescribeDBInstances without DBInstanceIdentifier is authorized on
    ``arn:aws:rds:<region>:<account>:db:*`` (the action's resource type, nothing named), so a
    policy naming one instance allows describing it but not listing them all (AWS answers
    "... on resource: arn:aws:rds:us-east-1:123456789012:db:*"). Plain moto lists them."""
    sbx.client("rds").create_db_instance(DBInstanceIdentifier="db1", Engine="mysql", DBInstanceClass="db.t3.micro",
                                         MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20)
    admin = _enforce(sbx)
    creds = _user(sbx, admin, "one", {"Effect": "Allow", "Action": "rds:DescribeDBInstances",
                                      "Resource": "arn:aws:rds:us-east-1:*:db:db1*"})
    rds = _client(sbx, "rds", creds)
    assert _db(rds, "db1")["DBInstanceIdentifier"] == "db1"
    code, status, message = _refused(lambda: rds.describe_db_instances())
    assert (code, status) == ("AccessDenied", 403)
    assert f"on resource: arn:aws:rds:us-east-1:{ACCOUNT}:db:* because" in message


# (family, boto3 service, region, call, AccessDenied code and status, unknown-key code and status,
#  bad-signature code and status), as boto3 parses them.
FAMILIES = [
    ("query", "rds", "us-east-1", lambda c: c.describe_db_instances(),
     ("AccessDenied", 403), ("InvalidClientTokenId", 403), ("SignatureDoesNotMatch", 403)),
    ("query", "elbv2", "us-west-2", lambda c: c.describe_load_balancers(),
     ("AccessDenied", 403), ("InvalidClientTokenId", 403), ("SignatureDoesNotMatch", 403)),
    ("query", "autoscaling", "us-west-2", lambda c: c.describe_auto_scaling_groups(),
     ("AccessDenied", 403), ("InvalidClientTokenId", 403), ("SignatureDoesNotMatch", 403)),
    ("query", "iam", "us-east-1", lambda c: c.list_users(),
     ("AccessDenied", 403), ("InvalidClientTokenId", 403), ("SignatureDoesNotMatch", 403)),
    ("ec2", "ec2", "us-west-2", lambda c: c.describe_instances(),
     ("UnauthorizedOperation", 403), ("AuthFailure", 401), ("AuthFailure", 401)),
    ("rest-xml", "route53", "us-east-1", lambda c: c.list_hosted_zones(),
     ("AccessDenied", 403), ("InvalidClientTokenId", 403), ("SignatureDoesNotMatch", 403)),
    ("rest-xml", "cloudfront", "us-east-1", lambda c: c.list_distributions(),
     ("AccessDenied", 403), ("InvalidClientTokenId", 403), ("SignatureDoesNotMatch", 403)),
    ("json", "dynamodb", "us-east-2", lambda c: c.list_tables(),
     ("AccessDeniedException", 400), ("UnrecognizedClientException", 400), ("InvalidSignatureException", 400)),
    ("rest-json", "backup", "us-west-2", lambda c: c.list_backup_vaults(),
     ("AccessDeniedException", 403), ("UnrecognizedClientException", 403), ("InvalidSignatureException", 403)),
    # CloudWatch is awsQueryCompatible: JSON and CBOR answers name the query code (x-amzn-query-error).
    ("json", "cloudwatch", "us-west-2", lambda c: c.list_metrics(),
     ("AccessDenied", 400), ("InvalidClientTokenId", 400), ("SignatureDoesNotMatch", 400)),
    ("smithy-rpc-v2-cbor", "cloudwatch", "us-west-2", lambda c: c.list_metrics(),
     ("AccessDenied", 400), ("InvalidClientTokenId", 400), ("SignatureDoesNotMatch", 400)),
]


@pytest.mark.parametrize("family,service,region,op,denied,unknown,badsig", FAMILIES,
                         ids=[f"{f[0]}-{f[1]}" for f in FAMILIES])
def test_refusals_in_each_protocol_as_boto3_parses_them(sbx, monkeypatch, family, service, region, op, denied,
                                                       unknown, badsig):
    """A user without a policy gets AccessDenied in the protocol's shape (query/REST-XML 403
    AccessDenied, EC2 403 UnauthorizedOperation, DynamoDB JSON 400 AccessDeniedException,
    Backup REST-JSON 403 AccessDeniedException, CloudWatch JSON/CBOR AccessDenied through
    x-amzn-query-error); an unknown access key gets the invalid-credentials error
    (InvalidClientTokenId, EC2 401 AuthFailure, UnrecognizedClientException) and a wrong secret
    the signature error; sts:GetCallerIdentity needs no permission. Plain moto answers every
    one of these calls 200."""
    if family == "smithy-rpc-v2-cbor":  # as the Rust SDK speaks to CloudWatch
        monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS",
                            ("smithy-rpc-v2-cbor", "json", "rest-json", "rest-xml", "query", "ec2"))
    admin = _enforce(sbx)
    creds = _user(sbx, admin, "nobody")
    client = _client(sbx, service, creds, region)
    assert client.meta.service_model.resolved_protocol == family
    code, status, message = _refused(lambda: op(client))
    assert (code, status) == denied
    assert f"User: arn:aws:iam::{ACCOUNT}:user/nobody is not authorized to perform: " in message
    assert _refused(lambda: op(_client(sbx, service, ("AKIAIOSFODNN7EXAMPLE", "x"), region)))[:2] == unknown
    assert _refused(lambda: op(_client(sbx, service, (creds[0], "not-the-secret"), region)))[:2] == badsig
    assert op(_client(sbx, service, admin, region))["ResponseMetadata"]["HTTPStatusCode"] == 200
    me = _client(sbx, "sts", creds).get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/nobody"


def test_policy_evaluation_deny_wins_wildcards_notaction_groups_and_managed_policies(sbx):
    """Explicit Deny wins over any Allow; ``*`` and ``?`` match in actions (any case) and
    resources; NotAction; a managed policy attached to the user and a group's inline policy
    count; an Allow with a Condition (not evaluated here) grants nothing; an inactive key is
    refused. Plain moto allows all of it."""
    rds0 = sbx.client("rds")
    for ident in ("app-1", "app-10"):
        rds0.create_db_instance(DBInstanceIdentifier=ident, Engine="mysql", DBInstanceClass="db.t3.micro",
                                MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20)
    admin = _enforce(sbx)
    creds = _user(sbx, admin, "ops",
                  {"Effect": "Allow", "Action": "RDS:describe*", "Resource": "*"},
                  {"Effect": "Allow", "Action": "rds:*", "Resource": "arn:aws:rds:us-east-1:*:db:app-?"},
                  {"Effect": "Deny", "Action": "rds:StopDBInstance", "Resource": "*"},
                  {"Effect": "Allow", "NotAction": ["iam:*", "rds:*", "ec2:*"], "Resource": "*"},
                  {"Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*",
                   "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
                  managed=[{"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"}])
    iam = _client(sbx, "iam", admin)
    iam.create_group(GroupName="readers")
    iam.put_group_policy(GroupName="readers", PolicyName="r", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeImages", "Resource": "*"}]}))
    iam.add_user_to_group(GroupName="readers", UserName="ops")
    rds, ec2 = _client(sbx, "rds", creds), _client(sbx, "ec2", creds)

    assert rds.reboot_db_instance(DBInstanceIdentifier="app-1")["DBInstance"]["DBInstanceStatus"] == "rebooting"
    code, _, message = _refused(lambda: rds.stop_db_instance(DBInstanceIdentifier="app-1"))
    assert code == "AccessDenied" and message.endswith("with an explicit deny in an identity-based policy")
    assert _refused(lambda: rds.reboot_db_instance(DBInstanceIdentifier="app-10"))[0] == "AccessDenied"
    assert len(rds.describe_db_instances()["DBInstances"]) == 2
    ec2.describe_instances()  # the attached managed policy
    ec2.describe_images(ImageIds=["ami-04681a1dbd79675a5"])  # the group's policy
    _client(sbx, "dynamodb", creds, "us-east-2").list_tables()  # NotAction
    assert _refused(lambda: ec2.describe_vpcs())[0] == "UnauthorizedOperation"  # Allow with a Condition
    assert _refused(lambda: _client(sbx, "iam", creds).list_users())[0] == "AccessDenied"  # NotAction excludes iam

    iam.update_access_key(UserName="ops", AccessKeyId=creds[0], Status="Inactive")
    assert _refused(lambda: rds.describe_db_instances())[0] == "InvalidClientTokenId"


def test_dependent_actions_transactions_and_pass_role(sbx):
    """DynamoDB authorizes TransactWriteItems as its parts (ConditionCheckItem, PutItem per
    table: there is no TransactWriteItems IAM action); Backup jobs need iam:PassRole on the
    role they pass; an RDS create with Tags needs rds:AddTagsToResource. Plain moto runs
    them all."""
    admin = _enforce(sbx)
    ddb_admin = _client(sbx, "dynamodb", admin, "us-east-2")
    ddb_admin.create_table(TableName="state", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                           AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                           BillingMode="PAY_PER_REQUEST")
    wait_for(lambda: ddb_admin.describe_table(TableName="state")["Table"]["TableStatus"] == "ACTIVE", timeout=10)
    table = f"arn:aws:dynamodb:us-east-2:{ACCOUNT}:table/state"
    put_only = _user(sbx, admin, "put-only", {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": table})
    both = _user(sbx, admin, "both", {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"],
                                      "Resource": table})
    items = [{"ConditionCheck": {"TableName": "state", "Key": {"pk": {"S": "lease"}},
                                 "ConditionExpression": "attribute_not_exists(pk)"}},
             {"Put": {"TableName": "state", "Item": {"pk": {"S": "journal-1"}}}}]
    code, status, message = _refused(lambda: _client(sbx, "dynamodb", put_only, "us-east-2").transact_write_items(
        TransactItems=items))
    assert (code, status) == ("AccessDeniedException", 400) and "dynamodb:ConditionCheckItem on resource: " + table in message
    _client(sbx, "dynamodb", both, "us-east-2").transact_write_items(TransactItems=items)

    role = f"arn:aws:iam::{ACCOUNT}:role/backup"
    _client(sbx, "backup", admin, "us-west-2").create_backup_vault(BackupVaultName="v")
    vault = f"arn:aws:backup:us-west-2:{ACCOUNT}:backup-vault:v"
    no_pass = _user(sbx, admin, "no-pass", {"Effect": "Allow", "Action": "backup:StartBackupJob", "Resource": vault})
    code, _, message = _refused(lambda: _client(sbx, "backup", no_pass, "us-west-2").start_backup_job(
        BackupVaultName="v", ResourceArn=f"arn:aws:ec2:us-west-2:{ACCOUNT}:instance/i-0123456789abcdef0",
        IamRoleArn=role))
    assert code == "AccessDeniedException" and f"iam:PassRole on resource: {role}" in message

    creator = _user(sbx, admin, "creator", {"Effect": "Allow", "Action": "rds:CreateDBInstance", "Resource": "*"})
    code, _, message = _refused(lambda: _client(sbx, "rds", creator).create_db_instance(
        DBInstanceIdentifier="tagged", Engine="mysql", DBInstanceClass="db.t3.micro", MasterUsername="admin",
        MasterUserPassword="password123", AllocatedStorage=20, Tags=[{"Key": "app", "Value": "shop"}]))
    assert code == "AccessDenied" and f"rds:AddTagsToResource on resource: arn:aws:rds:us-east-1:{ACCOUNT}:db:tagged" \
        in message


def test_a_drctl_shaped_policy_on_the_seeded_topology(seeded):
    """drctl's least-privilege statements (resources as `drctl iam-policy` prints them, with
    ``*`` for the account) allow a planned failover's calls on the seeded names and nothing
    else: describe and promote the standby replica, fence through the primary's parameter
    group, read ReplicaLag, move the Route 53 record, update the distribution. The same calls
    on the primary's instance are refused."""
    sbx, topo, _ = seeded
    prim, stby = topo["regions"]["us-east-1"]["database"], topo["regions"]["us-west-2"]["database"]
    zone, dist = topo["route53"]["public_zone_id"], topo["cloudfront"]["distribution_id"]
    admin = _enforce(sbx)
    db = lambda region, ident: f"arn:aws:rds:{region}:*:db:{ident}"  # noqa: E731
    creds = _user(
        sbx, admin, "drctl",
        {"Effect": "Allow", "Action": ["rds:DescribeDBInstances", "rds:PromoteReadReplica"],
         "Resource": db("us-west-2", stby["instance_id"])},
        {"Effect": "Allow", "Action": "rds:DescribeDBInstances", "Resource": db("us-east-1", prim["instance_id"])},
        {"Effect": "Allow", "Action": ["rds:DescribeDBParameters", "rds:ModifyDBParameterGroup"],
         "Resource": f"arn:aws:rds:us-east-1:*:pg:{prim['parameter_group']}"},
        {"Effect": "Allow", "Action": "cloudwatch:GetMetricStatistics", "Resource": "*"},
        {"Effect": "Allow", "Action": ["route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"],
         "Resource": f"arn:aws:route53:::hostedzone/{zone}"},
        {"Effect": "Allow", "Action": "route53:GetChange", "Resource": "arn:aws:route53:::change/*"},
        {"Effect": "Allow", "Action": ["cloudfront:GetDistribution", "cloudfront:GetDistributionConfig",
                                       "cloudfront:UpdateDistribution"],
         "Resource": f"arn:aws:cloudfront::*:distribution/{dist}"})
    e1, w2 = _client(sbx, "rds", creds, "us-east-1"), _client(sbx, "rds", creds, "us-west-2")
    assert _db(e1, prim["instance_id"])["DBInstanceStatus"] == "available"
    e1.describe_db_parameters(DBParameterGroupName=prim["parameter_group"])
    e1.modify_db_parameter_group(DBParameterGroupName=prim["parameter_group"], Parameters=[
        {"ParameterName": "read_only", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    assert _refused(lambda: e1.modify_db_parameter_group(DBParameterGroupName=prim["readonly_parameter_group"],
                                                         Parameters=[{"ParameterName": "read_only", "ParameterValue": "0",
                                                                      "ApplyMethod": "immediate"}]))[0] == "AccessDenied"
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    _client(sbx, "cloudwatch", creds, "us-west-2").get_metric_statistics(
        Namespace="AWS/RDS", MetricName="ReplicaLag", Period=60, Statistics=["Maximum"],
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": stby["instance_id"]}],
        StartTime=now - datetime.timedelta(minutes=10), EndTime=now)
    assert _refused(lambda: e1.promote_read_replica(DBInstanceIdentifier=prim["instance_id"]))[0] == "AccessDenied"
    assert w2.promote_read_replica(DBInstanceIdentifier=stby["instance_id"])["DBInstance"]["DBInstanceStatus"] == \
        "modifying"

    r53 = _client(sbx, "route53", creds)
    records = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    primary = next(r for r in records if r.get("SetIdentifier") == topo["route53"]["primary_set_identifier"])
    change = r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {**primary, "HealthCheckId": primary["HealthCheckId"]}}]})
    r53.get_change(Id=change["ChangeInfo"]["Id"])
    assert _refused(lambda: r53.list_hosted_zones())[0] == "AccessDenied"
    cf = _client(sbx, "cloudfront", creds)
    cfg = cf.get_distribution_config(Id=dist)
    cf.update_distribution(Id=dist, IfMatch=cfg["ETag"], DistributionConfig=cfg["DistributionConfig"])
    assert _refused(lambda: cf.list_distributions())[0] == "AccessDenied"


def test_modes_reset_snapshot_and_the_control_api(sbx):
    """The control API is never subject to IAM; ``GET/POST /_sandbox/iam`` show and switch the
    mode (bad input is 400); a snapshot keeps the mode and the IAM users (they are moto's
    state), and a restore brings both back; a reset returns to the mode serve started with
    (off here) and forgets the users."""
    assert sbx.control("GET", "/_sandbox/iam")[1]["mode"] == "off"
    assert sbx.control("POST", "/_sandbox/iam", {"mode": "strict"})[0] == 400
    admin = _enforce(sbx)
    creds = _user(sbx, admin, "reader", {"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"})
    assert sbx.control("GET", "/_sandbox/state")[0] == 200
    status, body = sbx.control("POST", "/_sandbox/snapshot", {"name": "iam-on"})
    assert status == 200, body
    sbx.control("POST", "/_sandbox/iam", {"mode": "off"})
    sbx.client("rds").describe_db_instances()  # any credentials again
    assert sbx.control("POST", "/_sandbox/restore", {"name": "iam-on"})[0] == 200
    assert sbx.control("GET", "/_sandbox/iam")[1]["mode"] == "enforce"
    _client(sbx, "rds", creds).describe_db_instances()
    assert _refused(lambda: sbx.client("rds").describe_db_instances())[0] == "InvalidClientTokenId"
    sbx.control("DELETE", "/_sandbox/snapshots?name=iam-on")


def test_serve_enforcing_from_the_start_seeds_as_the_admin_user(tmp_path):
    """``serve --iam enforce``: nothing gets in with made-up keys, the seed runs as the
    sandbox admin user (``POST /_sandbox/iam/admin``), ``iam admin`` prints its keys, and a
    reset keeps enforcing (the serve flag) with a new admin on request."""
    from drsandbox.seed import seed

    proc = Proc("--profile", "instant", "--iam", "enforce")
    try:
        sbx = Sandbox(proc.url)
        assert sbx.control("GET", "/_sandbox/healthz")[1]["iam"] == "enforce"
        assert _refused(lambda: sbx.client("sts").get_caller_identity())[0] == "InvalidClientTokenId"
        topo = seed(proc.url, str(tmp_path))
        assert topo["regions"]["us-west-2"]["database"]["role"] == "replica"
        env = dict(__import__("os").environ, DRSANDBOX_ENDPOINT=proc.url)
        r = run_cli("iam", "admin", env=env)
        assert r.returncode == 0, r.stderr
        lines = dict(line.removeprefix("export ").split("=", 1) for line in r.stdout.splitlines())
        creds = (lines["AWS_ACCESS_KEY_ID"], lines["AWS_SECRET_ACCESS_KEY"])
        assert _client(sbx, "sts", creds).get_caller_identity()["Arn"].endswith(":user/drsandbox-admin")
        assert run_cli("iam", "show", env=env).stdout.startswith("iam enforce")
        assert sbx.control("POST", "/_sandbox/reset")[0] == 200
        assert sbx.control("GET", "/_sandbox/iam")[1]["mode"] == "enforce"
        assert _refused(lambda: _client(sbx, "sts", creds).get_caller_identity())[0] == "InvalidClientTokenId"
        admin = sbx.control("POST", "/_sandbox/iam/admin", {})[1]["admin"]
        _client(sbx, "sts", (admin["access_key_id"], admin["secret_access_key"])).get_caller_identity()
    finally:
        proc.stop()


def test_signatures_of_query_strings_paths_and_the_aws_cli_verify(seeded):
    """SigV4 is recomputed from the request as sent: REST paths with labels, query strings with
    dots and escapes (Route 53 record names, TestDNSAnswer), form bodies with spaces, '*', '/',
    '=' and '&', JSON bodies, and the aws CLI all verify with the right secret (a wrong one is
    refused above). Plain moto checks no signature at all."""
    import os
    import subprocess
    import sys

    sbx, topo, _ = seeded
    admin = _enforce(sbx)
    zone = topo["route53"]["public_zone_id"]
    r53 = _client(sbx, "route53", admin)
    r53.list_resource_record_sets(HostedZoneId=zone, StartRecordName="api.example.test.", StartRecordType="A")
    r53.test_dns_answer(HostedZoneId=zone, RecordName="api.example.test", RecordType="A")
    r53.list_resource_record_sets(HostedZoneId=zone, StartRecordName="\\052.wild_card.example.test.", MaxItems="5")
    _client(sbx, "ec2", admin, "us-west-2").describe_instances(
        Filters=[{"Name": "tag:Name", "Values": ["a b*", "c/d=e&f"]}])
    _client(sbx, "backup", admin, "us-west-2").list_recovery_points_by_backup_vault(
        BackupVaultName=topo["regions"]["us-west-2"]["backup_vault"]["name"])
    _client(sbx, "cloudfront", admin).get_distribution_config(Id=topo["cloudfront"]["distribution_id"])
    env = dict(os.environ, AWS_ACCESS_KEY_ID=admin[0], AWS_SECRET_ACCESS_KEY=admin[1], AWS_DEFAULT_REGION="us-east-1")
    env.pop("AWS_SESSION_TOKEN", None)
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    for args in (["sts", "get-caller-identity"],
                 ["route53", "test-dns-answer", "--hosted-zone-id", zone, "--record-name", "api.example.test",
                  "--record-type", "A"],
                 ["rds", "describe-db-instances", "--region", "us-west-2"]):
        r = subprocess.run([aws, "--endpoint-url", sbx.url, *args], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (args, r.stderr)


def test_a_copy_of_an_ec2_recovery_point_is_authorized_on_the_ami(seeded):
    """Backup StartCopyJob is authorized on the recovery point, and an EC2 recovery point's ARN
    is its AMI's (``arn:aws:ec2:<region>::image/ami-...``; AWS Backup Developer Guide, "Access
    control"): a policy on ``arn:aws:backup:...:recovery-point:*`` does not cover it, one on
    the image does; iam:PassRole on the job's role is needed as well. RunInstances is checked
    on the new instance, its network interface and the default security group too. Plain moto
    has no Backup jobs at all, and checks nothing."""
    from drsandbox.seed import ROLE_ARN

    sbx, topo, _ = seeded
    point = topo["backup"]["recovery_point_arn"]
    assert point.startswith("arn:aws:ec2:us-east-1::image/")
    copy = dict(RecoveryPointArn=point, SourceBackupVaultName=topo["regions"]["us-east-1"]["backup_vault"]["name"],
                DestinationBackupVaultArn=topo["regions"]["us-west-2"]["backup_vault"]["arn"], IamRoleArn=ROLE_ARN)
    admin = _enforce(sbx)
    pass_role = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE_ARN}
    vault_points = _user(sbx, admin, "vault-points", pass_role, {
        "Effect": "Allow", "Action": "backup:StartCopyJob", "Resource": "arn:aws:backup:us-east-1:*:recovery-point:*"})
    code, _, message = _refused(lambda: _client(sbx, "backup", vault_points).start_copy_job(**copy))
    assert code == "AccessDeniedException" and f"backup:StartCopyJob on resource: {point} " in message
    images = _user(sbx, admin, "images", pass_role, {
        "Effect": "Allow", "Action": "backup:StartCopyJob", "Resource": "arn:aws:ec2:us-east-1::image/*"})
    assert _client(sbx, "backup", images).start_copy_job(**copy)["CopyJobId"]

    subnet = topo["regions"]["us-west-2"]["network"]["subnet_ids"][0]
    narrow = _user(sbx, admin, "narrow", {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": [
        "arn:aws:ec2:us-west-2::image/*", f"arn:aws:ec2:us-west-2:*:subnet/{subnet}", "arn:aws:ec2:us-west-2:*:instance/*"]})
    ami = topo["regions"]["us-west-2"]["asgs"]["frontend"]["ami_id"]
    code, _, message = _refused(lambda: _client(sbx, "ec2", narrow, "us-west-2").run_instances(
        ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet))
    assert code == "UnauthorizedOperation" and ":network-interface/* because" in message

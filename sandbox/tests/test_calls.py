"""The call log (GET/DELETE /_sandbox/calls): every AWS call the sandbox answered, its
operation, region, status, whether it mutates and whether a fault answered it, plus exact
counts of the mutating calls answered 2xx. Plain moto has no such endpoint (404).
"""

import datetime
import functools
import io
from urllib.parse import unquote, urlsplit

import botocore.model
import botocore.session
import pytest
from botocore.awsrequest import create_request_object, prepare_request_dict
from botocore.exceptions import ClientError
from botocore.serialize import create_serializer

from conftest import http_get
from drsandbox.calls import identify, is_read

KEYS = ("service", "operation", "region", "protocol", "status", "mutating", "faulted")


def _calls(sbx) -> dict:
    """The call log without its connection count (which includes the asking connection and
    any pooled boto3 ones; test_calls_count_open_connections checks it)."""
    status, body = sbx.control("GET", "/_sandbox/calls")
    assert status == 200, body
    assert body.pop("connections") >= 1, body
    return body


def _brief(body: dict) -> list[tuple]:
    return [tuple(c[k] for k in KEYS) for c in body["calls"]]


def test_calls_log_reads_mutations_and_faults(sbx):
    """A read, mutating calls in the query, EC2, REST-XML and REST-JSON protocols, a mutating
    call moto refuses and two faulted calls are logged in order; only the mutating calls
    answered 2xx are counted."""
    assert sbx.control("DELETE", "/_sandbox/calls")[0] == 200
    assert _calls(sbx) == {"calls": [], "mutating": {}, "dropped": 0, "in_flight": 0}

    sbx.client("rds", "us-east-1").describe_db_instances()
    sbx.client("rds", "us-west-2").create_db_parameter_group(
        DBParameterGroupName="pg1", DBParameterGroupFamily="mysql8.0", Description="d")
    sbx.client("ec2", "us-west-2").create_vpc(CidrBlock="10.5.0.0/16")
    r53 = sbx.client("route53")
    zone = r53.create_hosted_zone(Name="calls.test", CallerReference="c1")["HostedZone"]["Id"]
    batch = {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": "a.calls.test", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.0.1"}]}}]}
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=batch)
    sbx.client("backup", "us-west-2").create_backup_vault(BackupVaultName="v1")
    with pytest.raises(ClientError):  # refused by moto: logged with its status, not counted
        sbx.client("rds", "us-west-2").promote_read_replica(DBInstanceIdentifier="nope")

    sbx.fault(region="us-west-2", service="rds", kind="errors", rate=1.0, error="5xx")
    sbx.fault(region="us-east-1", service="route53", kind="errors", rate=1.0, error="throttle")
    with pytest.raises(ClientError):
        sbx.client("rds", "us-west-2").modify_db_parameter_group(
            DBParameterGroupName="pg1", Parameters=[{"ParameterName": "read_only", "ParameterValue": "1",
                                                     "ApplyMethod": "immediate"}])
    with pytest.raises(ClientError):
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=batch)

    body = _calls(sbx)
    calls = _brief(body)
    refused = calls[6]
    assert refused[:3] == ("rds", "PromoteReadReplica", "us-west-2") and 400 <= refused[4] < 500
    assert calls[:6] + calls[7:] == [
        ("rds", "DescribeDBInstances", "us-east-1", "query", 200, False, False),
        ("rds", "CreateDBParameterGroup", "us-west-2", "query", 200, True, False),
        ("ec2", "CreateVpc", "us-west-2", "ec2", 200, True, False),
        ("route53", "CreateHostedZone", "us-east-1", "rest-xml", 201, True, False),
        ("route53", "ChangeResourceRecordSets", "us-east-1", "rest-xml", 200, True, False),
        ("backup", "CreateBackupVault", "us-west-2", "rest-json", 200, True, False),
        ("rds", "ModifyDBParameterGroup", "us-west-2", "query", 503, True, True),
        ("route53", "ChangeResourceRecordSets", "us-east-1", "rest-xml", 400, True, True),
    ]
    assert refused[5:] == (True, False)
    assert [c["seq"] for c in body["calls"]] == list(range(1, 10))
    assert body["mutating"] == {
        "backup:CreateBackupVault": 1,
        "ec2:CreateVpc": 1,
        "rds:CreateDBParameterGroup": 1,
        "route53:ChangeResourceRecordSets": 1,
        "route53:CreateHostedZone": 1,
    }
    assert body["dropped"] == 0


def test_calls_json_and_cbor_operations(sbx, monkeypatch):
    """CloudWatch over the JSON protocol (boto3) and over smithy-rpc-v2-cbor (the Rust SDK's
    protocol, translated by the sandbox) log the same operation names under `cloudwatch`."""
    import boto3
    from botocore.config import Config

    sbx.control("DELETE", "/_sandbox/calls")
    cw_json = sbx.client("cloudwatch", "us-west-2")
    assert cw_json.meta.service_model.resolved_protocol == "json"
    cw_json.put_metric_data(Namespace="Calls", MetricData=[{"MetricName": "m", "Value": 1.0}])
    cw_json.list_metrics(Namespace="Calls")

    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS",
                        ("smithy-rpc-v2-cbor", "json", "rest-json", "rest-xml", "query", "ec2"))
    cw_cbor = boto3.session.Session().client("cloudwatch", region_name="us-east-1", endpoint_url=sbx.url,
                                             aws_access_key_id="t", aws_secret_access_key="t",
                                             config=Config(retries={"total_max_attempts": 1}))
    assert cw_cbor.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    cw_cbor.put_metric_data(Namespace="Calls", MetricData=[{"MetricName": "m", "Value": 2.0}])
    now = datetime.datetime.now(datetime.timezone.utc)
    cw_cbor.get_metric_statistics(Namespace="Calls", MetricName="m", StartTime=now - datetime.timedelta(hours=1),
                                  EndTime=now, Period=60, Statistics=["Maximum"])
    sbx.fault(region="us-east-1", service="cloudwatch", kind="errors", rate=1.0, error="throttle")
    with pytest.raises(ClientError):
        cw_cbor.put_metric_data(Namespace="Calls", MetricData=[{"MetricName": "m", "Value": 3.0}])

    body = _calls(sbx)
    assert _brief(body) == [
        ("cloudwatch", "PutMetricData", "us-west-2", "json", 200, True, False),
        ("cloudwatch", "ListMetrics", "us-west-2", "json", 200, False, False),
        ("cloudwatch", "PutMetricData", "us-east-1", "smithy-rpc-v2-cbor", 200, True, False),
        ("cloudwatch", "GetMetricStatistics", "us-east-1", "smithy-rpc-v2-cbor", 200, False, False),
        ("cloudwatch", "PutMetricData", "us-east-1", "smithy-rpc-v2-cbor", 400, True, True),
    ]
    assert body["mutating"] == {"cloudwatch:PutMetricData": 2}


def test_calls_skip_control_api_and_listeners_and_clear(sbx):
    """The control API and the local listeners are not AWS calls; DELETE empties the log and
    answers how many entries it held; a reset empties it too."""
    alb = sbx.make_alb("us-east-1")
    assert len(_calls(sbx)["calls"]) > 5
    status, body = sbx.control("DELETE", "/_sandbox/calls")
    assert status == 200 and body["cleared"] > 5
    assert http_get(alb["url"] + "/health")[0] == 200
    sbx.control("GET", "/_sandbox/state")
    sbx.control("GET", "/_sandbox/listeners")
    assert _calls(sbx) == {"calls": [], "mutating": {}, "dropped": 0, "in_flight": 0}
    sbx.client("elbv2", "us-east-1").describe_load_balancers()
    assert _brief(_calls(sbx)) == [
        ("elasticloadbalancing", "DescribeLoadBalancers", "us-east-1", "query", 200, False, False)]
    assert sbx.control("POST", "/_sandbox/reset")[0] == 200
    assert _calls(sbx)["calls"] == []
    assert sbx.control("PUT", "/_sandbox/calls")[0] == 405


# --------------------------------------------------------------------------- no sandbox needed

@functools.lru_cache(maxsize=None)
def _model(service: str):
    return botocore.session.get_session().get_service_model(service)


def _wire(service: str, operation: str, params: dict, protocol: str | None = None) -> tuple[dict, str]:
    """(WSGI environ, signing name) of the request botocore would send, as the server sees it."""
    model = _model(service)
    op = model.operation_model(operation)
    proto = protocol or model.resolved_protocol
    request = create_serializer(proto, include_validation=False).serialize_to_request(params, op)
    prepare_request_dict(request, endpoint_url="http://127.0.0.1:1")
    prepared = create_request_object(request).prepare()
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    environ = {"REQUEST_METHOD": prepared.method, "PATH_INFO": unquote(url.path),
               "RAW_URI": url.path + (f"?{url.query}" if url.query else ""), "QUERY_STRING": url.query,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    for k, v in prepared.headers.items():
        k = k.upper().replace("-", "_")
        v = v.decode() if isinstance(v, bytes) else v
        environ["CONTENT_TYPE" if k == "CONTENT_TYPE" else f"HTTP_{k}"] = v
    return environ, model.signing_name


# Every operation drctl calls (src/steps, src/aws), with the parameters that shape its request.
DRCTL_OPERATIONS = [
    ("rds", "PromoteReadReplica", {"DBInstanceIdentifier": "db"}),
    ("rds", "ModifyDBParameterGroup", {"DBParameterGroupName": "pg", "Parameters": []}),
    ("rds", "ModifyDBInstance", {"DBInstanceIdentifier": "db"}),
    ("rds", "StopDBInstance", {"DBInstanceIdentifier": "db"}),
    ("rds", "StartDBInstance", {"DBInstanceIdentifier": "db"}),
    ("rds", "RebootDBInstance", {"DBInstanceIdentifier": "db"}),
    ("rds", "DeleteDBInstance", {"DBInstanceIdentifier": "db"}),
    ("rds", "CreateDBInstanceReadReplica", {"DBInstanceIdentifier": "r", "SourceDBInstanceIdentifier": "db"}),
    ("rds", "AddTagsToResource", {"ResourceName": "arn:aws:rds:us-east-1:1:db:db", "Tags": []}),
    ("rds", "DescribeDBInstances", {}),
    ("rds", "DescribeDBParameters", {"DBParameterGroupName": "pg"}),
    ("ec2", "CreateLaunchTemplateVersion", {"LaunchTemplateId": "lt-1", "LaunchTemplateData": {}}),
    ("ec2", "ModifyLaunchTemplate", {"LaunchTemplateId": "lt-1", "DefaultVersion": "2"}),
    ("ec2", "DescribeLaunchTemplates", {}),
    ("ec2", "DescribeLaunchTemplateVersions", {"LaunchTemplateId": "lt-1"}),
    ("ec2", "DescribeImages", {}),
    ("autoscaling", "UpdateAutoScalingGroup", {"AutoScalingGroupName": "asg", "DesiredCapacity": 2}),
    ("autoscaling", "DescribeAutoScalingGroups", {}),
    ("elbv2", "DescribeTargetHealth", {"TargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:tg/x/1"}),
    ("route53", "ChangeResourceRecordSets", {"HostedZoneId": "Z1", "ChangeBatch": {"Changes": []}}),
    ("route53", "UpdateHealthCheck", {"HealthCheckId": "hc-1", "Disabled": True}),
    ("route53", "ListResourceRecordSets", {"HostedZoneId": "Z1"}),
    ("route53", "TestDNSAnswer", {"HostedZoneId": "Z1", "RecordName": "a.x", "RecordType": "A"}),
    ("route53", "GetChange", {"Id": "C1"}),
    ("route53", "GetHealthCheck", {"HealthCheckId": "hc-1"}),
    ("route53", "GetHealthCheckStatus", {"HealthCheckId": "hc-1"}),
    ("cloudfront", "UpdateDistribution", {"Id": "E1", "IfMatch": "e", "DistributionConfig": {}}),
    ("cloudfront", "GetDistributionConfig", {"Id": "E1"}),
    ("cloudfront", "GetDistribution", {"Id": "E1"}),
    ("cloudfront", "CreateInvalidation", {"DistributionId": "E1", "InvalidationBatch": {}}),
    ("cloudfront", "CreateDistribution", {"DistributionConfig": {}}),
    ("cloudfront", "CreateDistributionWithTags", {"DistributionConfigWithTags": {}}),
    ("cloudfront", "TagResource", {"Resource": "arn:aws:cloudfront::1:distribution/E1", "Tags": {}}),
    ("backup", "StartCopyJob", {"RecoveryPointArn": "arn:aws:ec2:us-east-1::image/ami-1",
                                "SourceBackupVaultName": "v", "DestinationBackupVaultArn": "arn:v2",
                                "IamRoleArn": "arn:r"}),
    ("backup", "StartBackupJob", {"BackupVaultName": "v", "ResourceArn": "arn:x", "IamRoleArn": "arn:r"}),
    ("backup", "DescribeCopyJob", {"CopyJobId": "c-1"}),
    ("backup", "ListCopyJobs", {}),
    ("backup", "DescribeBackupVault", {"BackupVaultName": "v"}),
    ("backup", "ListRecoveryPointsByBackupVault", {"BackupVaultName": "v"}),
    ("backup", "DescribeRecoveryPoint", {"BackupVaultName": "v",
                                         "RecoveryPointArn": "arn:aws:ec2:us-east-1::image/ami-1"}),
    ("cloudwatch", "GetMetricStatistics", {"Namespace": "AWS/RDS", "MetricName": "ReplicaLag"}),
]


@pytest.mark.parametrize("service,operation,params", DRCTL_OPERATIONS,
                         ids=[f"{s}:{o}" for s, o, _ in DRCTL_OPERATIONS])
def test_calls_identify_drctl_operations(service, operation, params):
    """Each operation drctl calls is named from the request botocore puts on the wire
    (Action field, X-Amz-Target, CBOR path, REST method + path), whatever the protocol."""
    model = _model(service)
    for proto in model.metadata.get("protocols") or [model.metadata["protocol"]]:
        if proto not in ("query", "ec2", "json", "rest-xml", "rest-json", "smithy-rpc-v2-cbor"):
            continue
        environ, signing = _wire(service, operation, params, proto)
        assert identify(environ, signing) == (operation, proto), proto
    assert is_read(operation) == operation.startswith(("Describe", "List", "Get", "Test"))


@pytest.mark.parametrize("service", ["route53", "cloudfront", "backup"])
def test_calls_identify_every_rest_operation(service):
    """Every operation of the REST services the sandbox serves maps back from its method
    and path (labels holding ARNs with '/' and ':' included)."""
    model = _model(service)
    wrong = []
    for name in model.operation_names:
        op = model.operation_model(name)
        params = {}
        for member, shape in (op.input_shape.members.items() if op.input_shape else []):
            if shape.serialization.get("location") == "uri":
                params[member] = 1 if shape.type_name in ("integer", "long") else "arn:aws:x:us-east-1:1:thing/a-1"
        environ, signing = _wire(service, name, params)
        if identify(environ, signing)[0] != name:
            wrong.append((name, environ["REQUEST_METHOD"], environ["RAW_URI"], identify(environ, signing)))
    assert wrong == []


@pytest.mark.parametrize("operation,read", [
    ("DescribeDBInstances", True), ("ListCopyJobs", True), ("GetChange", True), ("TestDNSAnswer", True),
    ("BatchGetItem", True), ("HeadObject", True), ("SearchTransitGatewayRoutes", True),
    ("PromoteReadReplica", False), ("ChangeResourceRecordSets", False), ("UpdateDistribution", False),
    ("CreateLaunchTemplateVersion", False), ("ModifyLaunchTemplate", False), ("StartCopyJob", False),
    ("Listen", False), ("Getaway", False), (None, False),
])
def test_calls_read_allow_list(operation, read):
    """Reads are a fixed allow-list of prefixes (followed by a capital) plus TestDNSAnswer;
    everything else mutates."""
    assert is_read(operation) is read


def test_calls_count_requests_in_flight_until_answered():
    """A request that has begun and not been answered is in flight; answering it (or the
    guard closing an unanswered one) ends that, exactly once."""
    from drsandbox.calls import CallLog, guard

    log = CallLog()
    env = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "Action=PromoteReadReplica"}
    a = log.begin(dict(env), "us-west-2", "rds")
    b = log.begin(dict(env), "us-west-2", "rds")
    assert log.snapshot()["in_flight"] == 2
    log.record(a, 200)
    log.record(a, 200)  # a second record of the same call changes nothing
    assert log.snapshot()["in_flight"] == 1
    guard([], log, b).close()  # never answered: recorded as 500 when the server lets go
    snap = log.snapshot()
    assert snap["in_flight"] == 0
    assert snap["mutating"] == {"rds:PromoteReadReplica": 1}
    log.clear()
    assert log.snapshot()["in_flight"] == 0


def test_calls_count_open_connections_until_the_server_lets_go(sbx):
    """A client killed after writing a request leaves it unread in the server's socket: not in
    flight yet, but its connection is still open. ``connections`` counts accepted connections
    not yet closed (the asking one included), so a crash test can wait until a dead client's
    requests have all landed."""
    import socket
    import time

    def settle(want: int) -> int:
        n = -1
        for _ in range(200):  # bounded: 10 s
            status, body = sbx.control("GET", "/_sandbox/calls")
            assert status == 200, body
            n = body["connections"]
            if n == want:
                break
            time.sleep(0.05)
        return n

    host, port = urlsplit(sbx.url).hostname, urlsplit(sbx.url).port
    # The baseline once the connections of earlier calls (answered with Connection: close)
    # are closed on the server's side too: just the asking one. Read at once, on a busy
    # machine it may still count one of those, which then closes mid-test.
    base = settle(1)
    assert base == 1
    held = [socket.create_connection((host, port), timeout=5) for _ in range(2)]
    try:
        assert settle(base + 2) == base + 2
        held[0].close()
        assert settle(base + 1) == base + 1
    finally:
        for s in held:
            s.close()
    assert settle(base) == base

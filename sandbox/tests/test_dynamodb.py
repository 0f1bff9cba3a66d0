"""DynamoDB for drctl's shared state (lease, journal, watcher heartbeats), and faults on it.

Tests named ``test_fix_*`` fail on plain moto 5.2.5 (their docstrings say how); tests named
``test_pin_*`` pin behaviour moto already has right, so a moto upgrade that breaks it is caught.
"""

from __future__ import annotations

import threading
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from conftest import http_get, wait_for


def _table(d, name=None, sort=False, wait=True):
    name = name or f"t-{uuid.uuid4().hex[:8]}"
    ks = [{"AttributeName": "pk", "KeyType": "HASH"}]
    ad = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort:
        ks.append({"AttributeName": "sk", "KeyType": "RANGE"})
        ad.append({"AttributeName": "sk", "AttributeType": "N"})
    r = d.create_table(TableName=name, KeySchema=ks, AttributeDefinitions=ad, BillingMode="PAY_PER_REQUEST")
    if wait:
        d.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    return name, r


def _code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def _lease(d, table, token=5, owner="a", expires=100):
    d.put_item(TableName=table, Item={"pk": {"S": "lease"}, "owner": {"S": owner}, "token": {"N": str(token)},
                                      "expires_at": {"N": str(expires)}})


# --------------------------------------------------------------------------- fixes


def test_fix_new_table_is_creating_until_active(sbx):
    """moto: CreateTable answers TableStatus ACTIVE and the table takes writes at once. AWS:
    CREATING, reads and writes are ResourceNotFoundException until ACTIVE."""
    d = sbx.client("dynamodb")
    with sbx.paused():  # CREATING lasts until stepped, however slow the machine
        name, r = _table(d, wait=False)
        assert r["TableDescription"]["TableStatus"] == "CREATING"
        assert d.describe_table(TableName=name)["Table"]["TableStatus"] == "CREATING"
        with pytest.raises(ClientError) as e:
            d.put_item(TableName=name, Item={"pk": {"S": "x"}})
        assert _code(e.value) == "ResourceNotFoundException"
        with pytest.raises(ClientError) as e:
            d.transact_write_items(TransactItems=[{"Put": {"TableName": name, "Item": {"pk": {"S": "x"}}}}])
        assert _code(e.value) == "ResourceNotFoundException"
        assert sbx.steps_until(lambda: d.describe_table(TableName=name)["Table"]["TableStatus"],
                               lambda s: s == "ACTIVE") == ["CREATING", "ACTIVE"]
    d.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    assert d.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    d.put_item(TableName=name, Item={"pk": {"S": "x"}})
    assert d.delete_table(TableName=name)["TableDescription"]["TableStatus"] == "DELETING"  # moto: ACTIVE


def test_fix_transaction_client_request_token_is_idempotent(sbx):
    """moto ignores ClientRequestToken: a retried journal append (same token) runs again and is
    cancelled by its own attribute_not_exists; a different request with the token is accepted.
    AWS: the same request answers 200 without re-applying; another request is
    IdempotentParameterMismatchException."""
    d = sbx.client("dynamodb")
    table, _ = _table(d)
    _lease(d, table, token=7)

    def append(seq, token="tok-1"):
        return d.transact_write_items(ClientRequestToken=token, TransactItems=[
            {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "lease"}}, "ConditionExpression": "#t = :t",
                                "ExpressionAttributeNames": {"#t": "token"}, "ExpressionAttributeValues": {":t": {"N": "7"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": f"run#{seq}"}, "n": {"N": "1"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}}])

    append(1)
    d.update_item(TableName=table, Key={"pk": {"S": "run#1"}}, UpdateExpression="SET n = :n",
                  ExpressionAttributeValues={":n": {"N": "2"}})
    append(1)  # the SDK's retry: success, and nothing re-applied
    assert d.get_item(TableName=table, Key={"pk": {"S": "run#1"}}, ConsistentRead=True)["Item"]["n"] == {"N": "2"}
    with pytest.raises(ClientError) as e:
        append(2)
    assert _code(e.value) == "IdempotentParameterMismatchException"
    assert "Item" not in d.get_item(TableName=table, Key={"pk": {"S": "run#2"}}, ConsistentRead=True)
    append(2, token="tok-2")
    # A cancelled transaction does not use up its token: its retry is evaluated again.
    with pytest.raises(ClientError) as e:
        append(2, token="tok-3")
    assert _code(e.value) == "TransactionCanceledException"
    d.delete_item(TableName=table, Key={"pk": {"S": "run#2"}})
    append(2, token="tok-3")


def test_fix_query_limit_reached_gives_last_evaluated_key(sbx):
    """moto: when the page that reaches Limit holds the last matching item, no LastEvaluatedKey.
    AWS: LastEvaluatedKey whenever Limit stopped the evaluation; the next page is empty."""
    d = sbx.client("dynamodb")
    table, _ = _table(d, sort=True)
    for i in range(1, 6):
        d.put_item(TableName=table, Item={"pk": {"S": "run#1"}, "sk": {"N": str(i)}})
    r = d.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "run#1"}},
                Limit=5, ConsistentRead=True)
    assert [i["sk"]["N"] for i in r["Items"]] == ["1", "2", "3", "4", "5"]
    assert r["LastEvaluatedKey"] == {"pk": {"S": "run#1"}, "sk": {"N": "5"}}
    r = d.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "run#1"}},
                Limit=5, ExclusiveStartKey=r["LastEvaluatedKey"])
    assert r["Items"] == [] and "LastEvaluatedKey" not in r
    r = d.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "run#1"}},
                Limit=6)
    assert len(r["Items"]) == 5 and "LastEvaluatedKey" not in r


def test_fix_item_size_limit_is_400_kib(sbx):
    """moto refuses items above 405000 bytes; DynamoDB's limit is 400 KB = 409600 bytes
    (attribute names and UTF-8 values), ValidationException "Item size has exceeded the
    maximum allowed size" above it."""
    d = sbx.client("dynamodb")
    table, _ = _table(d)
    overhead = len("pk") + len("big") + len("s")
    d.put_item(TableName=table, Item={"pk": {"S": "s"}, "big": {"S": "x" * (409_600 - overhead)}})
    with pytest.raises(ClientError) as e:
        d.put_item(TableName=table, Item={"pk": {"S": "s"}, "big": {"S": "x" * (409_601 - overhead)}})
    assert _code(e.value) == "ValidationException"
    assert e.value.response["Error"]["Message"] == "Item size has exceeded the maximum allowed size"
    d.put_item(TableName=table, Item={"pk": {"S": "u"}, "a": {"S": "x" * 300_000}})
    with pytest.raises(ClientError) as e:
        d.update_item(TableName=table, Key={"pk": {"S": "u"}}, UpdateExpression="SET b = :b",
                      ExpressionAttributeValues={":b": {"S": "y" * 200_000}})
    assert e.value.response["Error"]["Message"] == "Item size to update has exceeded the maximum allowed size"


def test_fix_time_to_live_errors(sbx):
    """moto accepts enabling TTL that is already enabled and answers ``ResourceNotFound`` for a
    missing table. AWS: ValidationException "TimeToLive is already enabled";
    ResourceNotFoundException."""
    d = sbx.client("dynamodb")
    table, _ = _table(d)
    spec = {"Enabled": True, "AttributeName": "expires_at"}
    assert d.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)["TimeToLiveSpecification"] == spec
    assert d.describe_time_to_live(TableName=table)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    with pytest.raises(ClientError) as e:
        d.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)
    assert _code(e.value) == "ValidationException" and "already enabled" in e.value.response["Error"]["Message"]
    for call in (lambda: d.update_time_to_live(TableName="missing", TimeToLiveSpecification=spec),
                 lambda: d.describe_time_to_live(TableName="missing")):
        with pytest.raises(ClientError) as e:
            call()
        assert _code(e.value) == "ResourceNotFoundException"
    # An expired item stays readable until DynamoDB's sweep (days on AWS; never here).
    d.put_item(TableName=table, Item={"pk": {"S": "old"}, "expires_at": {"N": str(int(time.time()) - 3600)}})
    assert "Item" in d.get_item(TableName=table, Key={"pk": {"S": "old"}}, ConsistentRead=True)


def test_fix_cancelled_transactions_do_not_lose_concurrent_writes(sbx):
    """moto: a cancelled TransactWriteItems restores a deep copy of the table taken when it
    began, so heartbeats other clients wrote meanwhile (answered 200) vanish (about 1 in 150
    in 4 s on a 2-core box; the test fails on plain moto in most runs). AWS: every
    acknowledged write stays."""
    d = sbx.client("dynamodb")
    table, _ = _table(d)
    for i in range(300):
        d.put_item(TableName=table, Item={"pk": {"S": f"fill-{i}"}, "pad": {"S": "p" * 300}})
    stop = threading.Event()
    written: list[str] = []
    odd: list[str] = []

    def client():
        return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=sbx.url, aws_access_key_id="test",
                            aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}))

    def writer(k):
        c, n = client(), 0
        while not stop.is_set():
            c.put_item(TableName=table, Item={"pk": {"S": f"hb-{k}-{n}"}})
            written.append(f"hb-{k}-{n}")
            n += 1

    def failing_tx():
        c = client()
        while not stop.is_set():
            try:
                c.transact_write_items(TransactItems=[
                    {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "never"}},
                                        "ConditionExpression": "attribute_exists(pk)"}},
                    {"Put": {"TableName": table, "Item": {"pk": {"S": "tx"}}}}])
            except ClientError as e:
                if _code(e) != "TransactionCanceledException":
                    odd.append(_code(e))
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)] + \
        [threading.Thread(target=failing_tx) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()
    lost = [k for k in written if "Item" not in d.get_item(TableName=table, Key={"pk": {"S": k}}, ConsistentRead=True)]
    assert written and lost == [] and odd == []


# --------------------------------------------------------------------------- pins


def test_pin_conditional_writes_for_a_lease(sbx):
    """moto is faithful: attribute_not_exists, version equality, numeric < (numbers compare as
    numbers: 9 < 10), ConditionalCheckFailedException with the current item under
    ReturnValuesOnConditionCheckFailure=ALL_OLD (and none without it), for put, update, delete."""
    d = sbx.client("dynamodb")
    table, _ = _table(d)
    item = {"pk": {"S": "lease"}, "owner": {"S": "a"}, "token": {"N": "9"}, "expires_at": {"N": "9"}}
    d.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as e:
        d.put_item(TableName=table, Item={**item, "owner": {"S": "b"}}, ConditionExpression="attribute_not_exists(pk)")
    assert _code(e.value) == "ConditionalCheckFailedException" and "Item" not in e.value.response
    with pytest.raises(ClientError) as e:
        d.put_item(TableName=table, Item={**item, "owner": {"S": "b"}}, ConditionExpression="attribute_not_exists(pk)",
                   ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert e.value.response["Item"] == item
    # Take over an expired lease: 9 < 10 numerically (as strings "9" > "10").
    d.put_item(TableName=table, Item={**item, "owner": {"S": "b"}, "token": {"N": "10"}},
               ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
               ExpressionAttributeValues={":now": {"N": "10"}})
    with pytest.raises(ClientError) as e:  # a stale fencing token
        d.update_item(TableName=table, Key={"pk": {"S": "lease"}}, UpdateExpression="SET expires_at = :e",
                      ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": "token"},
                      ExpressionAttributeValues={":e": {"N": "20"}, ":t": {"N": "9"}},
                      ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert _code(e.value) == "ConditionalCheckFailedException" and e.value.response["Item"]["token"] == {"N": "10"}
    r = d.update_item(TableName=table, Key={"pk": {"S": "lease"}}, UpdateExpression="SET #t = #t + :one",
                      ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": "token"},
                      ExpressionAttributeValues={":t": {"N": "10"}, ":one": {"N": "1"}}, ReturnValues="ALL_NEW")
    assert r["Attributes"]["token"] == {"N": "11"}
    with pytest.raises(ClientError) as e:  # reserved words must go through ExpressionAttributeNames
        d.update_item(TableName=table, Key={"pk": {"S": "lease"}}, UpdateExpression="SET expires_at = :e",
                      ConditionExpression="owner = :o", ExpressionAttributeValues={":e": {"N": "1"}, ":o": {"S": "b"}})
    assert _code(e.value) == "ValidationException"
    with pytest.raises(ClientError) as e:
        d.delete_item(TableName=table, Key={"pk": {"S": "lease"}}, ConditionExpression="#o = :me",
                      ExpressionAttributeNames={"#o": "owner"}, ExpressionAttributeValues={":me": {"S": "a"}},
                      ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert e.value.response["Item"]["owner"] == {"S": "b"}
    with pytest.raises(ClientError) as e:  # renewing a lease that is gone does not create it
        d.update_item(TableName=table, Key={"pk": {"S": "gone"}}, UpdateExpression="SET x = :x",
                      ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":x": {"N": "1"}})
    assert _code(e.value) == "ConditionalCheckFailedException"
    assert "Item" not in d.get_item(TableName=table, Key={"pk": {"S": "gone"}})


def test_pin_transaction_fenced_journal_append(sbx):
    """moto is faithful: ConditionCheck on the lease + Put of a journal entry is all or nothing;
    TransactionCanceledException lists a reason per action in request order (Code
    ConditionalCheckFailed / None; the Item with ALL_OLD); two actions on one item is
    ValidationException."""
    d = sbx.client("dynamodb")
    table, _ = _table(d)
    _lease(d, table, token=11)

    def append(key, token, rv=None):
        cc = {"TableName": table, "Key": {"pk": {"S": "lease"}}, "ConditionExpression": "#t = :t",
              "ExpressionAttributeNames": {"#t": "token"}, "ExpressionAttributeValues": {":t": {"N": str(token)}}}
        if rv:
            cc["ReturnValuesOnConditionCheckFailure"] = rv
        return d.transact_write_items(TransactItems=[{"ConditionCheck": cc}, {"Put": {
            "TableName": table, "Item": {"pk": {"S": key}}, "ConditionExpression": "attribute_not_exists(pk)"}}])

    append("run#1#1", 11)
    with pytest.raises(ClientError) as e:
        append("run#1#2", 10, "ALL_OLD")
    assert _code(e.value) == "TransactionCanceledException"
    reasons = e.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["ConditionalCheckFailed", "None"]
    assert reasons[0]["Item"]["token"] == {"N": "11"}
    assert "[ConditionalCheckFailed, None]" in e.value.response["Error"]["Message"]
    assert "Item" not in d.get_item(TableName=table, Key={"pk": {"S": "run#1#2"}}, ConsistentRead=True)
    with pytest.raises(ClientError) as e:
        append("run#1#1", 11)
    assert [r["Code"] for r in e.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    with pytest.raises(ClientError) as e:
        d.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "dup"}}}},
                                              {"Put": {"TableName": table, "Item": {"pk": {"S": "dup"}}}}])
    assert _code(e.value) == "ValidationException"


def test_pin_query_ranges_order_and_pages(sbx):
    """moto is faithful: sort-key ranges, ScanIndexForward, Limit pages chained with
    LastEvaluatedKey/ExclusiveStartKey, ConsistentRead accepted; other partitions untouched."""
    d = sbx.client("dynamodb")
    table, _ = _table(d, sort=True)
    for i in range(1, 26):
        d.put_item(TableName=table, Item={"pk": {"S": "run#1"}, "sk": {"N": str(i)}})
    d.put_item(TableName=table, Item={"pk": {"S": "run#2"}, "sk": {"N": "7"}})

    def pages(**kw):
        out, start = [], None
        while True:
            args = dict(TableName=table, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                        ExpressionAttributeValues={":p": {"S": "run#1"}, ":a": {"N": "5"}, ":b": {"N": "20"}}, **kw)
            if start:
                args["ExclusiveStartKey"] = start
            r = d.query(**args)
            out.append([int(i["sk"]["N"]) for i in r["Items"]])
            start = r.get("LastEvaluatedKey")
            if not start:
                return out
    assert pages(Limit=7, ConsistentRead=True) == [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17, 18], [19, 20]]
    assert pages(Limit=10, ScanIndexForward=False) == [list(range(20, 10, -1)), list(range(10, 4, -1))]
    r = d.query(TableName=table, KeyConditionExpression="pk = :p AND sk > :a", ScanIndexForward=False, Limit=1,
                ExpressionAttributeValues={":p": {"S": "run#1"}, ":a": {"N": "0"}})
    assert [i["sk"]["N"] for i in r["Items"]] == ["25"]


def test_pin_tables_are_per_region(sbx):
    """moto is faithful: a table lives in its region only (another region answers
    ResourceNotFoundException and does not list it)."""
    e1, w2 = sbx.client("dynamodb", "us-east-1"), sbx.client("dynamodb", "us-west-2")
    table, _ = _table(e1)
    with pytest.raises(ClientError) as e:
        w2.describe_table(TableName=table)
    assert _code(e.value) == "ResourceNotFoundException"
    assert table not in w2.list_tables()["TableNames"] and table in e1.list_tables()["TableNames"]
    _table(w2, name=table)  # the same name in another region is another table
    e1.put_item(TableName=table, Item={"pk": {"S": "x"}})
    assert "Item" not in w2.get_item(TableName=table, Key={"pk": {"S": "x"}})


def test_pin_one_winner_per_conditional_race(sbx):
    """AWS: of clients racing attribute_not_exists on one key, exactly one wins. (moto's check
    and store are not atomic; the sandbox's lock makes it so.)"""
    d = sbx.client("dynamodb")
    table, _ = _table(d)
    clients = [boto3.client("dynamodb", region_name="us-east-1", endpoint_url=sbx.url, aws_access_key_id="test",
                            aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}))
               for _ in range(6)]
    for round_ in range(10):
        wins: list[int] = []

        def grab(i):
            try:
                clients[i].put_item(TableName=table, Item={"pk": {"S": f"race-{round_}"}, "o": {"N": str(i)}},
                                    ConditionExpression="attribute_not_exists(pk)")
                wins.append(i)
            except ClientError as e:
                assert _code(e) == "ConditionalCheckFailedException"
        ts = [threading.Thread(target=grab, args=(i,)) for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert len(wins) == 1


# --------------------------------------------------------------------------- faults


def test_region_faults_apply_to_dynamodb(sbx):
    """outage (regional and service=dynamodb), errors (throttle / 5xx in the JSON protocol) and
    latency apply to DynamoDB calls of the faulted region only; the call log names them."""
    e1, w2 = sbx.client("dynamodb", "us-east-1"), sbx.client("dynamodb", "us-west-2")
    table, _ = _table(e1)
    sbx.fault(region="us-east-1", service="dynamodb", kind="errors", rate=1.0, error="throttle")
    with pytest.raises(ClientError) as e:
        e1.put_item(TableName=table, Item={"pk": {"S": "x"}})
    assert _code(e.value) == "ThrottlingException"
    w2.list_tables()
    sbx.control("DELETE", "/_sandbox/faults")
    sbx.fault(region="us-east-1", kind="errors", rate=1.0, error="5xx")  # regional: covers dynamodb
    with pytest.raises(ClientError) as e:
        e1.get_item(TableName=table, Key={"pk": {"S": "x"}})
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    sbx.control("DELETE", "/_sandbox/faults")
    sbx.fault(region="us-east-1", service="dynamodb", kind="latency", ms=400)
    t0 = time.monotonic()
    e1.get_item(TableName=table, Key={"pk": {"S": "x"}})
    assert time.monotonic() - t0 >= 0.4
    sbx.control("DELETE", "/_sandbox/faults")
    sbx.fault(region="us-east-1", kind="outage")
    short = sbx.client("dynamodb", "us-east-1", read_timeout=1.0)
    with pytest.raises(ReadTimeoutError):
        short.put_item(TableName=table, Item={"pk": {"S": "during"}})
    w2.list_tables()  # the other region answers
    sbx.control("DELETE", "/_sandbox/faults")
    calls = sbx.control("GET", "/_sandbox/calls")[1]["calls"]
    ops = [(c["service"], c["operation"], c["faulted"]) for c in calls if c["service"] == "dynamodb"]
    assert ("dynamodb", "PutItem", True) in ops and ("dynamodb", "GetItem", True) in ops


def _ddb(sbx, region="us-east-1", app=None, header=None, read_timeout=30.0):
    c = boto3.client("dynamodb", region_name=region, endpoint_url=sbx.url, aws_access_key_id="test",
                     aws_secret_access_key="test",
                     config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout,
                                   **({"user_agent_appid": app} if app else {})))
    if header:
        c.meta.events.register("before-sign.*.*", lambda request, **kw: request.headers.__setitem__(
            "X-Drctl-Client", header))
    return c


def test_client_scoped_faults_on_aws_calls(sbx):
    """A fault with ``client`` hits only that client's calls: identified by X-Drctl-Client or by
    app/<name> in the User-Agent (what an SDK's app name sends); other clients, and clients
    naming none, are untouched."""
    table, _ = _table(sbx.client("dynamodb"))
    status, body = sbx.control("POST", "/_sandbox/faults", {"region": "us-east-1", "kind": "outage", "client": "watch-b"})
    assert status == 200
    listed = sbx.control("GET", "/_sandbox/faults")[1]["faults"]
    assert listed == [{"id": body["id"], "region": "us-east-1", "service": None, "kind": "outage",
                       "control_planes": False, "client": "watch-b"}]
    a, anon = _ddb(sbx, app="watch-a"), _ddb(sbx)
    b_ua = _ddb(sbx, app="watch-b", read_timeout=1.0)
    b_hdr = _ddb(sbx, header="watch-b", read_timeout=1.0)
    a.put_item(TableName=table, Item={"pk": {"S": "hb-a"}})
    anon.get_item(TableName=table, Key={"pk": {"S": "hb-a"}})
    for c in (b_ua, b_hdr):
        with pytest.raises(ReadTimeoutError):
            c.put_item(TableName=table, Item={"pk": {"S": "hb-b"}})
    _ddb(sbx, "us-west-2", app="watch-b").list_tables()  # only the faulted region
    assert sbx.control("DELETE", "/_sandbox/faults?client=watch-a")[1] == {"cleared": 0}
    assert sbx.control("DELETE", "/_sandbox/faults?client=watch-b")[1] == {"cleared": 1}
    b_ua.put_item(TableName=table, Item={"pk": {"S": "hb-b"}})
    # errors scoped to a client
    sbx.fault(region="us-east-1", service="dynamodb", kind="errors", rate=1.0, error="throttle", client="watch-a")
    with pytest.raises(ClientError) as e:
        a.get_item(TableName=table, Key={"pk": {"S": "hb-a"}})
    assert _code(e.value) == "ThrottlingException"
    b_hdr.get_item(TableName=table, Key={"pk": {"S": "hb-a"}})


@pytest.mark.parametrize("spec", [{"client": ""}, {"client": "has space"}, {"client": 5}, {"client": "x" * 65}])
def test_client_fault_validation(sbx, spec):
    status, body = sbx.control("POST", "/_sandbox/faults", {"region": "us-east-1", "kind": "outage", **spec})
    assert status == 400 and "client" in body["error"]
    assert sbx.control("GET", "/_sandbox/faults")[1]["faults"] == []


def test_client_scoped_outage_on_alb_listeners(sbx):
    """A client-scoped outage holds that client's requests to the region's ALB listeners (read,
    never answered until cleared, then served) while other clients, and the region's state,
    stay lit; the public edge passes the client on, the cdn edge does not."""
    alb = sbx.make_alb("us-east-1")
    other = sbx.make_alb("us-west-2")
    sbx.fault(region="us-east-1", kind="outage", client="watch-b")
    assert http_get(alb["url"] + "/health", headers={"X-Drctl-Client": "watch-a"})[0] == 200
    assert http_get(alb["url"] + "/health")[0] == 200
    assert http_get(alb["url"] + "/health", headers={"User-Agent": "probe drctl-client/watch-a"})[0] == 200
    for hdrs in ({"X-Drctl-Client": "watch-b"}, {"User-Agent": "drctl/0.1 drctl-client/watch-b"}):
        with pytest.raises(OSError):  # socket.timeout / TimeoutError
            http_get(alb["url"] + "/health", timeout=1.0, headers=hdrs)
    assert http_get(other["url"] + "/health", headers={"X-Drctl-Client": "watch-b"})[0] == 200
    st = sbx.control("GET", "/_sandbox/state")[1]
    assert st["regions"]["us-east-1"]["dark"] is False
    listeners = sbx.listeners()
    assert listeners[alb["name"]]["effective_mode"] == "up"
    # A held request is served once the fault is cleared.
    result: list = []
    t = threading.Thread(target=lambda: result.append(
        http_get(alb["url"] + "/health", timeout=10.0, headers={"X-Drctl-Client": "watch-b"})))
    t.start()
    time.sleep(0.5)
    assert not result
    sbx.control("DELETE", "/_sandbox/faults?client=watch-b")
    t.join(10)
    assert result and result[0][0] == 200


def test_client_identity_rule():
    """The matching rule the Rust side relies on (unit test of faults.client_from_headers)."""
    from drsandbox.faults import client_from_headers

    def ident(**h):
        h = {k.replace("_", "-").lower(): v for k, v in h.items()}
        return client_from_headers(lambda name: h.get(name.lower()))

    assert ident(X_Drctl_Client="watch-b") == "watch-b"
    assert ident(X_Drctl_Client=" watch-b ", User_Agent="x app/other") == "watch-b"  # the header wins
    assert ident(X_Amz_User_Agent="aws-sdk-rust/1.3.9 ua/2.1 api/dynamodb#1.80.0 os/linux lang/rust#1.88.0 "
                                  "app/drctl-watch-b") == "drctl-watch-b"
    assert ident(User_Agent="Boto3/1.44.5 md/Botocore#1.44.5 ua/2.1 app/watch-a cfg/retry-mode#standard") == "watch-a"
    assert ident(User_Agent="drctl/0.1 drctl-client/watch-c") == "watch-c"
    assert ident(User_Agent="myapp/watch-b") is None  # not an app/ token
    assert ident(User_Agent="curl/8.0") is None
    assert ident() is None

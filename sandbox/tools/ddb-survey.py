#!/usr/bin/env python3
"""Survey: what DynamoDB gives drctl's shared state (lease, journal, watcher heartbeats).

    python -m drsandbox serve --port 0 --profile instant &       # -> URL  (or: moto_server -p PORT)
    python sandbox/tools/ddb-survey.py URL

Works against the sandbox or a plain moto server (compare the two). It creates tables named
``ddb-survey-*`` in us-east-1 and us-west-2 and deletes them at the end. Every line is
``[section] call | observation``; the README's "DynamoDB" section says what AWS does.
"""
import json
import sys
import threading
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

URL = sys.argv[1]
CFG = Config(retries={"total_max_attempts": 1}, read_timeout=30)
RUN = str(int(time.time()))


def c(region="us-east-1"):
    return boto3.client("dynamodb", region_name=region, endpoint_url=URL, config=CFG,
                        aws_access_key_id="test", aws_secret_access_key="test")


def say(section, call, obs):
    print(f"[{section}] {call} | {obs}", flush=True)


def err(e: ClientError) -> str:
    r = e.response
    extra = {k: v for k, v in r.items() if k not in ("Error", "ResponseMetadata", "message", "Message")}
    return (f"ERROR {r['Error'].get('Code')} (HTTP {r['ResponseMetadata'].get('HTTPStatusCode')}): "
            f"{r['Error'].get('Message')}" + (f" extra={json.dumps(extra, default=str)}" if extra else ""))


def tryit(section, call, fn, show=lambda r: "ok"):
    try:
        r = fn()
    except ClientError as e:
        say(section, call, err(e))
        return None
    except Exception as e:  # noqa: BLE001
        say(section, call, f"ERROR {type(e).__name__}: {str(e)[:300]}")
        return None
    say(section, call, show(r))
    return r


def table(d, name, sort=False, ttl=None):
    ks = [{"AttributeName": "pk", "KeyType": "HASH"}]
    ad = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort:
        ks.append({"AttributeName": "sk", "KeyType": "RANGE"})
        ad.append({"AttributeName": "sk", "AttributeType": "N"})
    r = d.create_table(TableName=name, KeySchema=ks, AttributeDefinitions=ad, BillingMode="PAY_PER_REQUEST")
    d.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
    return r


def tables(d, w2):
    S = "tables"
    name = f"ddb-survey-t-{RUN}"
    r = tryit(S, "CreateTable PAY_PER_REQUEST (AWS: TableStatus CREATING)", lambda: d.create_table(
        TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST"),
        lambda r: f"TableStatus={r['TableDescription']['TableStatus']} "
                  f"BillingMode={r['TableDescription'].get('BillingModeSummary', {}).get('BillingMode')}")
    if not r:
        return
    tryit(S, "DescribeTable right after (AWS: CREATING for seconds)", lambda: d.describe_table(TableName=name),
          lambda r: f"TableStatus={r['Table']['TableStatus']}")
    tryit(S, "PutItem right after CreateTable (AWS: ResourceNotFoundException while CREATING)",
          lambda: d.put_item(TableName=name, Item={"pk": {"S": "early"}}), lambda r: "accepted")
    t0 = time.monotonic()
    tryit(S, "waiter table_exists", lambda: d.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}),
        lambda r: f"ACTIVE after {time.monotonic() - t0:.1f}s")
    tryit(S, "DescribeTable in us-west-2 of a us-east-1 table (AWS: ResourceNotFoundException)",
          lambda: w2.describe_table(TableName=name), lambda r: f"VISIBLE status={r['Table']['TableStatus']}")
    tryit(S, "ListTables us-west-2", lambda: w2.list_tables(), lambda r: f"{[n for n in r['TableNames'] if n == name]}")
    tryit(S, "UpdateTimeToLive enable expires_at", lambda: d.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}),
        lambda r: json.dumps(r["TimeToLiveSpecification"]))
    tryit(S, "DescribeTimeToLive", lambda: d.describe_time_to_live(TableName=name),
          lambda r: json.dumps(r["TimeToLiveDescription"]))
    tryit(S, "UpdateTimeToLive enable again (AWS: ValidationException TimeToLive is already enabled)",
          lambda: d.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}),
          lambda r: "accepted")
    tryit(S, "UpdateTimeToLive on a missing table (AWS: ResourceNotFoundException)",
          lambda: d.update_time_to_live(TableName="ddb-survey-missing", TimeToLiveSpecification={"Enabled": True, "AttributeName": "x"}))
    tryit(S, "DescribeTimeToLive on a missing table (AWS: ResourceNotFoundException)",
          lambda: d.describe_time_to_live(TableName="ddb-survey-missing"))
    d.put_item(TableName=name, Item={"pk": {"S": "expired"}, "expires_at": {"N": str(int(time.time()) - 3600)}})
    tryit(S, "GetItem of an item whose TTL passed an hour ago (AWS: still there until the sweep, days)",
          lambda: d.get_item(TableName=name, Key={"pk": {"S": "expired"}}, ConsistentRead=True),
          lambda r: f"Item present={'Item' in r}")
    tryit(S, "DeleteTable (AWS: TableStatus DELETING)", lambda: d.delete_table(TableName=name),
          lambda r: f"TableStatus={r['TableDescription']['TableStatus']}")


def conditions(d, name):
    S = "conditions"
    lease = {"pk": {"S": "lease"}, "owner": {"S": "a"}, "token": {"N": "9"}, "expires_at": {"N": "9"}}
    tryit(S, "PutItem attribute_not_exists(pk) first", lambda: d.put_item(
        TableName=name, Item=lease, ConditionExpression="attribute_not_exists(pk)"))
    tryit(S, "PutItem attribute_not_exists(pk) second (AWS: ConditionalCheckFailedException)", lambda: d.put_item(
        TableName=name, Item={**lease, "owner": {"S": "b"}}, ConditionExpression="attribute_not_exists(pk)"),
        lambda r: "ACCEPTED")
    tryit(S, "... with ReturnValuesOnConditionCheckFailure=ALL_OLD (AWS: Item in the error)", lambda: d.put_item(
        TableName=name, Item={**lease, "owner": {"S": "b"}}, ConditionExpression="attribute_not_exists(pk)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD"), lambda r: "ACCEPTED")
    tryit(S, "numeric < : expires_at(9) < :now(10) (AWS: true, numbers compare as numbers)", lambda: d.put_item(
        TableName=name, Item={**lease, "owner": {"S": "b"}, "token": {"N": "10"}},
        ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
        ExpressionAttributeValues={":now": {"N": "10"}}), lambda r: "taken over")
    tryit(S, "UpdateItem token = :t (stale 9) (AWS: ConditionalCheckFailedException)", lambda: d.update_item(
        TableName=name, Key={"pk": {"S": "lease"}}, UpdateExpression="SET expires_at = :e",
        ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": "token"},
        ExpressionAttributeValues={":e": {"N": "20"}, ":t": {"N": "9"}}), lambda r: "ACCEPTED")
    tryit(S, "UpdateItem token = :t (current 10) ReturnValues=ALL_NEW", lambda: d.update_item(
        TableName=name, Key={"pk": {"S": "lease"}}, UpdateExpression="SET expires_at = :e, #t = #t + :one",
        ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": "token"},
        ExpressionAttributeValues={":e": {"N": "20"}, ":t": {"N": "10"}, ":one": {"N": "1"}}, ReturnValues="ALL_NEW"),
        lambda r: f"token={r['Attributes']['token']['N']}")
    tryit(S, "UpdateItem ConditionExpression with an unescaped reserved word (owner = :o) (AWS: ValidationException)",
          lambda: d.update_item(TableName=name, Key={"pk": {"S": "lease"}}, UpdateExpression="SET expires_at = :e",
                                ConditionExpression="owner = :o", ExpressionAttributeValues={":e": {"N": "1"}, ":o": {"S": "b"}}),
          lambda r: "ACCEPTED")
    tryit(S, "UpdateItem of a missing item with attribute_exists(pk) (AWS: ConditionalCheckFailedException)",
          lambda: d.update_item(TableName=name, Key={"pk": {"S": "nope"}}, UpdateExpression="SET x = :x",
                                ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":x": {"N": "1"}},
                                ReturnValuesOnConditionCheckFailure="ALL_OLD"), lambda r: "ACCEPTED (item created)")
    tryit(S, "DeleteItem owner = :me wrong owner ALL_OLD (AWS: ConditionalCheckFailedException + Item)",
          lambda: d.delete_item(TableName=name, Key={"pk": {"S": "lease"}}, ConditionExpression="#o = :me",
                                ExpressionAttributeNames={"#o": "owner"}, ExpressionAttributeValues={":me": {"S": "zzz"}},
                                ReturnValuesOnConditionCheckFailure="ALL_OLD"), lambda r: "ACCEPTED")


def transactions(d, name):
    S = "transactions"

    def append(seq, token, rvcf=None, crt=None):
        cc = {"TableName": name, "Key": {"pk": {"S": "lease"}}, "ConditionExpression": "#t = :t",
              "ExpressionAttributeNames": {"#t": "token"}, "ExpressionAttributeValues": {":t": {"N": str(token)}}}
        if rvcf:
            cc["ReturnValuesOnConditionCheckFailure"] = rvcf
        put = {"TableName": name, "Item": {"pk": {"S": "run#1"}, "sk": {"S": f"{seq:08d}"}, "pk2": {"S": f"run#1#{seq}"}},
               "ConditionExpression": "attribute_not_exists(pk)"}
        put["Item"] = {"pk": {"S": f"run#1#{seq:08d}"}, "event": {"S": "StepStarted"}}
        kw = {"ClientRequestToken": crt} if crt else {}
        return d.transact_write_items(TransactItems=[{"ConditionCheck": cc}, {"Put": put}], **kw)

    tryit(S, "ConditionCheck(lease token=11) + Put(journal 1)", lambda: append(1, 11))
    tryit(S, "ConditionCheck(lease token=10, stale) + Put(journal 2) ALL_OLD (AWS: TransactionCanceledException, "
             "reasons [ConditionalCheckFailed + Item, None])", lambda: append(2, 10, "ALL_OLD"), lambda r: "ACCEPTED")
    tryit(S, "  journal 2 written? (AWS: no)", lambda: d.get_item(TableName=name, Key={"pk": {"S": "run#1#00000002"}},
                                                                  ConsistentRead=True), lambda r: f"present={'Item' in r}")
    tryit(S, "ConditionCheck ok + Put of an existing journal entry (AWS: reasons [None, ConditionalCheckFailed])",
          lambda: append(1, 11), lambda r: "ACCEPTED")
    tryit(S, "two actions on one item (AWS: ValidationException ... multiple operations on one item)",
          lambda: d.transact_write_items(TransactItems=[
              {"Put": {"TableName": name, "Item": {"pk": {"S": "dup"}}}},
              {"Put": {"TableName": name, "Item": {"pk": {"S": "dup"}, "x": {"N": "1"}}}}]), lambda r: "ACCEPTED")
    tryit(S, "ClientRequestToken tok-1: journal 3", lambda: append(3, 11, crt=f"tok-1-{RUN}"))
    tryit(S, "same token, same request again (AWS: 200, idempotent, nothing re-applied)",
          lambda: append(3, 11, crt=f"tok-1-{RUN}"), lambda r: "200 (idempotent)")
    tryit(S, "same token, another request (AWS: IdempotentParameterMismatchException)",
          lambda: append(4, 11, crt=f"tok-1-{RUN}"), lambda r: "ACCEPTED")


def queries(d, name):
    S = "query"
    for i in range(1, 26):
        d.put_item(TableName=name, Item={"pk": {"S": "run#1"}, "sk": {"N": str(i)}, "e": {"S": f"event {i}"}})
    d.put_item(TableName=name, Item={"pk": {"S": "run#2"}, "sk": {"N": "1"}})

    def pages(**kw):
        out, start, n = [], None, 0
        while True:
            args = dict(TableName=name, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                        ExpressionAttributeValues={":p": {"S": "run#1"}, ":a": {"N": "5"}, ":b": {"N": "20"}}, **kw)
            if start:
                args["ExclusiveStartKey"] = start
            r = d.query(**args)
            n += 1
            out += [int(i["sk"]["N"]) for i in r["Items"]]
            start = r.get("LastEvaluatedKey")
            if not start:
                return out, n
    tryit(S, "sk BETWEEN 5 AND 20, Limit 4, pages", lambda: pages(Limit=4), lambda r: f"{r[1]} pages: {r[0]}")
    tryit(S, "... ScanIndexForward=False", lambda: pages(Limit=4, ScanIndexForward=False), lambda r: f"{r[1]} pages: {r[0]}")
    tryit(S, "... ConsistentRead=True", lambda: pages(Limit=7, ConsistentRead=True), lambda r: f"{r[1]} pages: {r[0]}")
    tryit(S, "sk > 20 newest first Limit 1 (last event)", lambda: d.query(
        TableName=name, KeyConditionExpression="pk = :p AND sk > :a", ScanIndexForward=False, Limit=1,
        ExpressionAttributeValues={":p": {"S": "run#1"}, ":a": {"N": "20"}}),
        lambda r: f"{[i['sk']['N'] for i in r['Items']]} LastEvaluatedKey={r.get('LastEvaluatedKey')}")
    tryit(S, "Limit exactly the remaining count (AWS: LastEvaluatedKey present, next page empty)", lambda: d.query(
        TableName=name, KeyConditionExpression="pk = :p AND sk > :a", Limit=5,
        ExpressionAttributeValues={":p": {"S": "run#1"}, ":a": {"N": "20"}}),
        lambda r: f"{len(r['Items'])} items LastEvaluatedKey={r.get('LastEvaluatedKey')}")


def sizes(d, name):
    S = "item size"
    overhead = len("pk") + len("big") + len("s")
    for total in (400_000, 405_000, 405_001, 409_600, 409_601):
        tryit(S, f"PutItem of {total} bytes (names + UTF-8 string; AWS limit 400 KB = 409600)", lambda total=total: d.put_item(
            TableName=name, Item={"pk": {"S": "s"}, "big": {"S": "x" * (total - overhead)}}), lambda r: "accepted")
    tryit(S, "PutItem with a 350000-byte Binary (AWS: 350000 bytes count, accepted)", lambda: d.put_item(
        TableName=name, Item={"pk": {"S": "b"}, "blob": {"B": b"\x01" * 350_000}}), lambda r: "accepted")
    d.put_item(TableName=name, Item={"pk": {"S": "u"}, "a": {"S": "x" * 300_000}})
    tryit(S, "UpdateItem growing an item past the limit (AWS: ValidationException "
             "Item size to update has exceeded the maximum allowed size)", lambda: d.update_item(
        TableName=name, Key={"pk": {"S": "u"}}, UpdateExpression="SET b = :b",
        ExpressionAttributeValues={":b": {"S": "y" * 200_000}}), lambda r: "accepted")


def concurrency(name):
    S = "concurrency"
    ds = [c() for _ in range(8)]
    wins, errors = [], []

    def grab(i, d, key):
        try:
            d.put_item(TableName=name, Item={"pk": {"S": key}, "owner": {"N": str(i)}},
                       ConditionExpression="attribute_not_exists(pk)")
            wins.append(i)
        except ClientError as e:
            if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
                errors.append(err(e))
    double = 0
    for round_ in range(30):
        wins.clear()
        ts = [threading.Thread(target=grab, args=(i, ds[i], f"race-{round_}")) for i in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        double += len(wins) > 1
    say(S, "8 clients race attribute_not_exists on one key, 30 rounds (AWS: exactly one winner each)",
        f"rounds with more than one winner: {double}; other errors: {errors[:2]}")
    # A failing transaction while other clients write: does moto lose their writes?
    d0 = ds[0]
    for i in range(400):
        d0.put_item(TableName=name, Item={"pk": {"S": f"fill-{i}"}, "pad": {"S": "p" * 500}})
    stop = threading.Event()
    written: list[str] = []

    def writer(d, k):
        n = 0
        while not stop.is_set():
            key = f"hb-{k}-{n}"
            try:
                d.put_item(TableName=name, Item={"pk": {"S": key}})
                written.append(key)
            except ClientError as e:
                errors.append(err(e))
            n += 1

    def failing_tx(d):
        while not stop.is_set():
            try:
                d.transact_write_items(TransactItems=[
                    {"ConditionCheck": {"TableName": name, "Key": {"pk": {"S": "never"}},
                                        "ConditionExpression": "attribute_exists(pk)"}},
                    {"Put": {"TableName": name, "Item": {"pk": {"S": "tx"}}}}])
            except ClientError:
                pass
    ts = [threading.Thread(target=writer, args=(ds[i], i)) for i in range(1, 4)] + \
         [threading.Thread(target=failing_tx, args=(ds[j],)) for j in (4, 5)]
    [t.start() for t in ts]
    time.sleep(4)
    stop.set()
    [t.join() for t in ts]
    lost = [k for k in written if "Item" not in d0.get_item(TableName=name, Key={"pk": {"S": k}}, ConsistentRead=True)]
    say(S, "3 clients put heartbeats (acknowledged 200) while 2 run failing transactions for 4 s "
           "(AWS: every acknowledged write stays)", f"{len(written)} acknowledged, {len(lost)} lost; errors: {errors[:2]}")


def main():
    d, w2 = c(), c("us-west-2")
    tables(d, w2)
    name = f"ddb-survey-{RUN}"
    table(d, name)
    conditions(d, name)
    transactions(d, name)
    qname = f"ddb-survey-q-{RUN}"
    table(d, qname, sort=True)
    queries(d, qname)
    sizes(d, name)
    concurrency(name)
    for n in (name, qname):
        try:
            d.delete_table(TableName=n)
        except ClientError:
            pass


if __name__ == "__main__":
    main()

"""DynamoDB made honest for drctl's shared state (lease, journal, watcher heartbeats).

moto 5.2.5 gets conditional writes, ReturnValuesOnConditionCheckFailure, transactions and
their CancellationReasons, queries and per-region tables right (tests/test_dynamodb.py pins
them). What it gets wrong, and what this module does instead:

* Concurrency: moto runs requests on many threads with no lock. A TransactWriteItems that
  is cancelled restores a deep copy of every table it touched, taken when it began, so a
  write another client made meanwhile (already answered 200) silently disappears; a
  conditional write's check and store are not atomic either. Here every DynamoDB request
  runs under one lock: each call is atomic and isolated, as on AWS.
* CreateTable answers ``ACTIVE`` and the table takes writes at once. Here a new table is
  ``CREATING`` for ``dynamodb_table_create`` (profile) and reads and writes of it answer
  ResourceNotFoundException until it is ``ACTIVE`` ("You can perform read and write
  operations only on an ACTIVE table"). DeleteTable answers ``DELETING`` (moto: ``ACTIVE``).
* TransactWriteItems ignores ClientRequestToken: an SDK retry of a transaction that was
  applied is applied again (or cancelled by its own conditions). Here, for 10 minutes, the
  same token with the same request answers success without applying anything, and the
  same token with another request is IdempotentParameterMismatchException.
* Query/Scan with Limit: moto returns no LastEvaluatedKey when the page that reached Limit
  happens to hold the last matching item; DynamoDB returns one whenever it stopped because
  of Limit (the next page is then empty). Here too.
* The item size limit: moto refuses items above 405000 bytes; DynamoDB's limit is 400 KB
  (409600 bytes, attribute names included).
* UpdateTimeToLive: enabling TTL that is already enabled (or disabling a disabled one) is
  accepted by moto; DynamoDB answers ValidationException "TimeToLive is already enabled".
  A missing table is ``ResourceNotFound`` in moto, ResourceNotFoundException on AWS.

CREATING ends, and tokens expire, on the sandbox's clock (clock.py).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import threading
import time

from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, MockValidationException, ResourceNotFoundException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models.dynamo_type import bytesize

_SB = None
_installed = False

# One lock for every DynamoDB request of every account and region (an RLock: moto's
# transactions call put_item/update_item of the same backend).
LOCK = threading.RLock()

# DynamoDB's item size limit: 400 KB, attribute names and values (UTF-8) included.
ITEM_SIZE_LIMIT = 400 * 1024

# How long a TransactWriteItems ClientRequestToken is remembered.
IDEMPOTENCY_WINDOW = 600.0

# Operations that read or write items: refused while a table they name is CREATING.
DATA_PLANE = {"PutItem", "GetItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
              "BatchWriteItem", "TransactWriteItems", "TransactGetItems"}

# (account, region, token) -> (request digest, answer, expires at)
_tokens: dict[tuple[str, str, str], tuple[str, tuple, float]] = {}


def reset() -> None:
    with LOCK:
        _tokens.clear()


def state() -> dict:
    """The remembered ClientRequestTokens (expiry on the sandbox clock), for a snapshot."""
    with LOCK:
        return dict(_tokens)


def restore(saved: dict) -> None:
    with LOCK:
        _tokens.clear()
        _tokens.update(saved)


def _table_names(op: str, params: dict) -> list[str]:
    if op in ("BatchGetItem", "BatchWriteItem"):
        return list((params.get("RequestItems") or {}).keys())
    if op in ("TransactWriteItems", "TransactGetItems"):
        names = []
        for item in params.get("TransactItems") or []:
            for body in item.values():
                if isinstance(body, dict) and body.get("TableName"):
                    names.append(body["TableName"])
        return names
    return [params["TableName"]] if params.get("TableName") else []


def _now() -> float:
    """The sandbox clock (time.monotonic() when the module is used without a sandbox)."""
    return _SB.clock.monotonic() if _SB is not None else time.monotonic()


def _status(table: Table) -> str:
    if getattr(table, "_sbx_deleting", False):
        return "DELETING"
    if _now() < getattr(table, "_sbx_active_at", 0.0):
        return "CREATING"
    return "ACTIVE"


def _error_answer(e: JsonRESTError):
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": e.error_type.split("#")[-1]}
    return e.code, headers, e.description


def _call_action(original):
    def call_action(self):
        op = self.get_endpoint_name(self.headers) or ""
        params = getattr(self, "params", None) or {}
        with LOCK:
            try:
                if op in DATA_PLANE:
                    backend = self.dynamodb_backend
                    for name in _table_names(op, params):
                        table = backend.tables.get(name)
                        if table is not None and _status(table) == "CREATING":
                            raise ResourceNotFoundException()
                if op == "TransactWriteItems" and params.get("ClientRequestToken"):
                    return _idempotent(self, original, params)
            except JsonRESTError as e:
                return _error_answer(e)
            return original(self)

    return call_action


def _idempotent(handler, original, params: dict):
    now = _now()
    for k in [k for k, v in _tokens.items() if v[2] <= now]:
        del _tokens[k]
    key = (handler.current_account, handler.region, params["ClientRequestToken"])
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    seen = _tokens.get(key)
    if seen is not None:
        if seen[0] != digest:
            raise JsonRESTError(ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                                "Specified idempotent token was used with different request parameters "
                                "within the idempotency window.")
        return seen[1]
    answer = original(handler)
    status = answer[0] if isinstance(answer, tuple) else 200
    if isinstance(status, int) and 200 <= status < 300:
        _tokens[key] = (digest, answer, now + IDEMPOTENCY_WINDOW)
    return answer


def _create_table(original):
    def create_table(self, *args, **kwargs):
        table = original(self, *args, **kwargs)
        table._sbx_active_at = _now() + (_SB.profile.seconds("dynamodb_table_create") if _SB else 0.0)
        if _SB is not None:
            _SB.clock.note(table._sbx_active_at)  # ACTIVE from then on: a step can stop there
        return table

    return create_table


def _delete_table(original):
    def delete_table(self, *args, **kwargs):
        table = original(self, *args, **kwargs)
        table._sbx_deleting = True
        return table

    return delete_table


def _describe(original):
    def describe(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        for body in result.values():
            if isinstance(body, dict) and "TableStatus" in body:
                body["TableStatus"] = _status(self)
        return result

    return describe


def _limited_query(original):
    """Query/Scan: a LastEvaluatedKey whenever Limit stopped the evaluation."""
    sig = inspect.signature(original)

    def run(self, *args, **kwargs):
        results, scanned, last = original(self, *args, **kwargs)
        bound = sig.bind(self, *args, **kwargs)
        limit = bound.arguments.get("limit")
        if last is None and limit and scanned >= limit:
            # Evaluate the same page again without filter and projection, to find the key
            # of the last item evaluated (the filter may have dropped it from the answer).
            for name in ("filter_expression", "projection_expression", "projection_expressions"):
                if name in sig.parameters:
                    bound.arguments[name] = None
            raw, _, _ = original(*bound.args, **bound.kwargs)
            if raw:
                last = self._get_last_evaluated_key(raw[-1], bound.arguments.get("index_name"))
        return results, scanned, last

    run.__name__ = original.__name__
    return run


def _setitem(self, key, value):
    current = sum(item.size() if type(item) is dynamo_type.DynamoType else bytesize(str(item))
                  for item in (list(self.keys()) + list(self.values())))
    new = bytesize(key) + (value.size() if type(value) is dynamo_type.DynamoType else bytesize(str(value)))
    if current + new > ITEM_SIZE_LIMIT:
        raise dynamo_type.ItemSizeTooLarge
    dict.__setitem__(self, key, value)


def _update_time_to_live(self, table_name, ttl_spec):
    try:
        table = self.get_table(table_name)
    except ResourceNotFoundException:
        raise ResourceNotFoundException(table_name=table_name) from None
    enabled = bool(ttl_spec.get("Enabled"))
    status = table.ttl.get("TimeToLiveStatus")
    if enabled and status == "ENABLED":
        raise MockValidationException("TimeToLive is already enabled")
    if not enabled and status in (None, "DISABLED"):
        raise MockValidationException("TimeToLive is already disabled")
    return _ORIG["update_time_to_live"](self, table_name, ttl_spec)


def _describe_time_to_live(self, table_name):
    try:
        self.get_table(table_name)
    except ResourceNotFoundException:
        raise ResourceNotFoundException(table_name=table_name) from None
    return _ORIG["describe_time_to_live"](self, table_name)


_ORIG: dict = {}


def install(sandbox) -> None:
    global _SB, _installed
    _SB = sandbox
    if _installed:
        return
    _installed = True
    DynamoHandler.call_action = _call_action(DynamoHandler.call_action)
    DynamoDBBackend.create_table = _create_table(DynamoDBBackend.create_table)
    DynamoDBBackend.delete_table = _delete_table(DynamoDBBackend.delete_table)
    Table.describe = _describe(Table.describe)
    Table.query = _limited_query(Table.query)
    Table.scan = _limited_query(Table.scan)
    dynamo_type.LimitedSizeDict.__setitem__ = _setitem
    _ORIG["update_time_to_live"] = DynamoDBBackend.update_time_to_live
    _ORIG["describe_time_to_live"] = DynamoDBBackend.describe_time_to_live
    DynamoDBBackend.update_time_to_live = _update_time_to_live
    DynamoDBBackend.describe_time_to_live = _describe_time_to_live

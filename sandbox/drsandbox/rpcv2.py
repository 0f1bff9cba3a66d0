"""Smithy RPC v2 CBOR for moto: translate CBOR requests to moto's JSON protocol and back.

Newer AWS SDKs speak ``smithy-rpc-v2-cbor`` to services that offer it; the Rust SDK's
CloudWatch client (aws-sdk-cloudwatch 1.140) is one, and drctl reads RDS ReplicaLag through
it. Such a request is ``POST /service/<ServiceShape>/operation/<Operation>`` with a CBOR body.
moto 5.2.5 only understands the JSON (and query) protocol of those services, so the
middleware rewrites the request into the equivalent ``X-Amz-Target`` JSON request, lets moto
answer it, and encodes moto's answer (or error) back into CBOR. The two protocols share one
model; only timestamps (CBOR tag 1 vs epoch numbers) and blobs (bytes vs base64) differ, and
the operation's shapes say where those are.
"""

from __future__ import annotations

import base64
import datetime
import io
import json

import cbor2
from moto.core.utils import get_service_model

# SigV4 signing name -> botocore service name, where they differ.
SIGNING_TO_BOTO = {"monitoring": "cloudwatch"}


def is_rpcv2(environ) -> bool:
    path = environ.get("PATH_INFO", "")
    if not (path.startswith("/service/") and "/operation/" in path):
        return False
    return "cbor" in (environ.get("CONTENT_TYPE") or "").lower() or "HTTP_SMITHY_PROTOCOL" in environ


def _epoch(value) -> float:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def to_json(shape, value):
    """A decoded CBOR value -> what the JSON protocol carries for ``shape``."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: to_json(shape.members.get(k), v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [to_json(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: to_json(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        return _epoch(value)
    if kind == "blob" and isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value


def to_cbor(shape, value):
    """A JSON-protocol value -> its CBOR form for ``shape`` (timestamps as tag 1)."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: to_cbor(shape.members.get(k), v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [to_cbor(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: to_cbor(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        return cbor2.CBORTag(1, _epoch(value))
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    if kind in ("float", "double") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind in ("integer", "long", "short", "byte") and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _answer(start_response, status: int, payload: bytes, extra: list[tuple[str, str]] | None = None):
    headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
               ("Content-Length", str(len(payload)))] + (extra or [])
    reason = "OK" if status < 400 else "Error"
    start_response(f"{status} {reason}", headers)
    return [payload]


def handle(app, environ, start_response, service: str | None):
    """Serve one RPC v2 CBOR request through moto's JSON protocol."""
    path = environ.get("PATH_INFO", "")
    op_name = path.rsplit("/", 1)[-1]
    try:
        model = get_service_model(SIGNING_TO_BOTO.get(service or "", service or ""))
        op = model.operation_model(op_name)
        target_prefix = model.metadata["targetPrefix"]
    except Exception:  # unknown service or operation: answer in CBOR, never crash
        body = cbor2.dumps({"__type": "UnknownOperationException", "message": f"unknown operation {path}"})
        return _answer(start_response, 404, body)
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        n = 0
    raw = environ["wsgi.input"].read(n) if n > 0 else b""
    try:
        params = cbor2.loads(raw) if raw else {}
    except Exception as e:
        body = cbor2.dumps({"__type": "SerializationException", "message": f"invalid CBOR body: {e}"})
        return _answer(start_response, 400, body)
    data = json.dumps(to_json(op.input_shape, params) if op.input_shape else {}).encode()
    inner = dict(environ)
    inner.update({
        "PATH_INFO": "/", "CONTENT_TYPE": f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}",
        "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data),
        "HTTP_X_AMZ_TARGET": f"{target_prefix}.{op_name}",
    })
    inner.pop("HTTP_SMITHY_PROTOCOL", None)
    captured: dict = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda chunk: None

    result = app(inner, capture)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    status = int(str(captured.get("status", "500")).split()[0])
    headers = {k.lower(): v for k, v in captured.get("headers", [])}
    extra = [(k, headers[k]) for k in ("x-amzn-requestid", "x-amzn-query-error") if k in headers]
    if status < 400:
        out = json.loads(body or b"{}") if body.strip() else {}
        payload = cbor2.dumps(to_cbor(op.output_shape, out)) if op.output_shape else b""
        return _answer(start_response, status, payload, extra)
    try:
        err = json.loads(body)
    except ValueError:
        err = {"message": body.decode(errors="replace")[:500]}
    code = err.get("__type") or headers.get("x-amzn-errortype") or "InternalFailure"
    code = code.split("#")[-1].split(":")[0]
    message = err.get("message") or err.get("Message") or ""
    return _answer(start_response, status, cbor2.dumps({"__type": code, "message": message}), extra)

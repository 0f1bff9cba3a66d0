"""A small client for the sandbox's control API (``/_sandbox/*``), shared by the CLI and the seed.

Errors are split the way the CLI reports them: ``UsageError`` (the sandbox answered 400: bad
input, nothing changed; exit code 2) and ``Unreachable`` (no answer, or any other failure;
exit code 1). This module imports nothing else from the package, so every other module may
import it without creating an import cycle.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class UsageError(Exception):
    """Bad input: reported on stderr, exit code 2."""


class Unreachable(Exception):
    """The sandbox did not answer: exit code 1."""


def call(endpoint: str, method: str, path: str, body: dict | None = None, timeout: float = 15.0):
    """JSON answer of one control API request; raises UsageError on 400, Unreachable otherwise."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(endpoint.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            msg = json.loads(e.read()).get("error", str(e))
        except ValueError:
            msg = str(e)
        if e.code == 400:
            raise UsageError(msg) from e
        raise Unreachable(f"sandbox answered {e.code}: {msg}") from e
    except (urllib.error.URLError, OSError) as e:
        raise Unreachable(f"cannot reach the sandbox at {endpoint}: {getattr(e, 'reason', e)}") from e

"""Snapshots: save the whole sandbox state in memory under a name, restore it in well under
a second, in the same process (``POST /_sandbox/snapshot``, ``POST /_sandbox/restore``).

A crash sweep seeds once, saves ``seeded`` and restores it before each trial instead of
starting and seeding a new sandbox (5-8 s) every time.

What a snapshot holds - everything that can differ between a freshly seeded sandbox and a
used one:

* every moto backend that holds state: each ``BackendDict`` in ``BackendDict._instances``
  (EC2, ELBv2, Auto Scaling, RDS, Route 53, CloudFront, CloudWatch, DynamoDB, Backup, STS,
  IAM, KMS (private keys as PKCS8 PEM), the sandbox's own ARC clusters, control panels and
  routing controls (arc.py), ...) with every account and region in it, pickled in one go so
  that references between backends stay references (an ASG's EC2 backend is the restored EC2
  backend). The sandbox's own per-object state rides along (``_sbx_*`` attributes: Backup jobs
  and recovery points, launch template ClientTokens, CloudFront deployments, parameter-group
  and rename state, replica catch-up and ReplicaLag -1 bookkeeping, a stopped instance's
  automatic start, CREATING tables, alarms' evaluated state and schedule, datapoints' clock
  times);
* the sandbox's module state: Route 53 changes (and each zone's last one), the Route 53 request
  rate's token buckets, DynamoDB idempotency tokens, health-check observations and streaks,
  pinned ReplicaLag and the next publication, edges, faults (and the next fault id, and
  whether they cover the control planes), listener modes, delays, open flags, ports, ALB
  addresses and round-robin positions, the call log (entries, counts, seq), the clock (its
  time, paused or not, noted deadlines), the IAM enforcement mode (users, keys and policies
  are moto's IAM state, above), and
  the random generators moto and the sandbox draw ids from (so ids made after a restore are
  the ones made after the save the first time: trials are reproducible).

What it does not hold: scheduled transitions. They are callbacks on live objects, which a
copy cannot follow, so a snapshot waits (bounded, ``wait`` seconds, default 10) for pending
transitions to finish and answers 409 if some are still pending then (at once if the clock
is paused). A restore drops whatever is pending (the state it belonged to is gone).

How: the moto state is pickled (``pickle`` protocol 5) with live singletons kept by reference
(``BackendDict``/``AccountSpecificBackend`` objects, which module globals point at, and
functions, builtins and modules, which a deepcopy would not copy either) and locks recreated
empty. A restore unpickles a fresh copy (so one snapshot can be restored any number of
times) and puts it *into* the live BackendDicts (other code holds references to them: they
are mutated, never rebound). Unpickling is a C loop over a few MB: tens of milliseconds for a
seeded sandbox, against ~180 ms for ``copy.deepcopy``.

Consistency: a snapshot or restore runs alone. AWS requests pass a shared gate (``Gate``)
around moto; a snapshot/restore takes it exclusively, so no request is inside moto while the
state is copied or replaced, and it holds the scheduler's run lock (no transition runs), the
health checker's and ReplicaLag publisher's locks and the listeners' reconcile lock. A
request that began before a restore and reaches moto after it is answered 503 (it never
touches the restored state) and does not appear in the restored call log.
"""

from __future__ import annotations

import copy
import functools
import gc
import io
import logging
import pickle
import random
import re
import threading
import time
import types
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("drsandbox.snapshot")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_WAIT = 10.0   # seconds a snapshot waits for pending transitions
MAX_WAIT = 120.0
GATE_TIMEOUT = 60.0   # seconds a snapshot/restore waits for requests inside moto to finish


class SnapshotError(Exception):
    """A snapshot or restore that cannot be done; ``status`` is the control API's answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- the gate

class Gate:
    """Many holders at once (AWS requests inside moto, control calls that change state), or
    one exclusive holder (a snapshot or restore). Waiting exclusive holders go first, so a
    stream of requests cannot starve a restore. Reentrant for the thread that holds it."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._shared = 0
        self._owner: int | None = None   # thread holding it exclusively
        self._waiting = 0                # exclusive holders waiting
        self._local = threading.local()

    @contextmanager
    def shared(self):
        me = threading.get_ident()
        depth = getattr(self._local, "depth", 0)
        if depth == 0 and self._owner != me:
            with self._cv:
                while self._owner is not None or self._waiting:
                    self._cv.wait()
                self._shared += 1
            counted = True
        else:
            counted = False
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if counted:
                with self._cv:
                    self._shared -= 1
                    if self._shared == 0:
                        self._cv.notify_all()

    @contextmanager
    def exclusive(self, timeout: float = GATE_TIMEOUT):
        me = threading.get_ident()
        with self._cv:
            self._waiting += 1
            try:
                ok = self._cv.wait_for(lambda: self._owner is None and self._shared == 0, timeout)
                if ok:
                    self._owner = me
            finally:
                self._waiting -= 1
                if not ok:
                    self._cv.notify_all()
        if not ok:
            raise SnapshotError(f"requests still inside moto after {timeout:.0f} s; try again", 503)
        try:
            yield
        finally:
            with self._cv:
                self._owner = None
                self._cv.notify_all()


# --------------------------------------------------------------------------- moto state

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))
# Kept by reference, as copy.deepcopy does: functions (defaultdict factories, callbacks),
# builtins, modules and classes are code, not state.
_KEEP_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.ModuleType, types.MethodWrapperType,
               types.WrapperDescriptorType, types.MethodDescriptorType, type)


def _live_dicts() -> list:
    from moto.core.base_backend import BackendDict

    return list(BackendDict._instances)


class _Pickler(pickle.Pickler):
    def __init__(self, buf, dicts: list) -> None:
        super().__init__(buf, protocol=5)
        self.dispatch_table = dict(copyreg_table())
        for t in _LOCK_TYPES:
            self.dispatch_table[t] = _fresh_lock
        for t in _private_key_types():
            self.dispatch_table[t] = _pem_private_key
        self._dicts = {id(bd): i for i, bd in enumerate(dicts)}
        self._asbs = {id(asb): (i, account) for i, bd in enumerate(dicts) for account, asb in dict.items(bd)}
        self.kept: list = []
        self._kept_ids: dict[int, int] = {}

    def persistent_id(self, obj):
        i = self._dicts.get(id(obj))
        if i is not None:
            return ("bd", i)
        where = self._asbs.get(id(obj))
        if where is not None:
            return ("asb",) + where
        if isinstance(obj, _KEEP_TYPES):
            if isinstance(obj, type) and obj.__qualname__ == obj.__name__ and "<locals>" not in obj.__qualname__:
                return None  # a module-level class: pickle names it, as usual
            n = self._kept_ids.get(id(obj))
            if n is None:
                n = self._kept_ids[id(obj)] = len(self.kept)
                self.kept.append(obj)
            return ("keep", n)
        return None


@functools.lru_cache(maxsize=1)
def _private_key_types() -> tuple:
    """The concrete classes of cryptography's RSA and EC private keys: moto's KMS keys hold one
    each (for Sign/Verify), and they cannot be pickled as they are."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
    except ImportError:  # pragma: no cover - cryptography comes with moto
        return ()
    return (type(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
            type(ec.generate_private_key(ec.SECP256R1())))


def _pem_private_key(key):
    """Pickle a private key as its PKCS8 PEM (restored by ``_load_private_key``)."""
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return (_load_private_key, (pem,))


def _load_private_key(pem: bytes):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password=None)


def copyreg_table() -> dict:
    import copyreg

    return copyreg.dispatch_table


def _fresh_lock(lock):
    # A lock in moto state is never held between requests (the gate guarantees no request
    # is inside moto): a copy starts unlocked.
    return (threading.RLock if isinstance(lock, _LOCK_TYPES[1]) else threading.Lock, ())


class _Unpickler(pickle.Unpickler):
    def __init__(self, buf, dicts: list, kept: list) -> None:
        super().__init__(buf)
        self._dicts, self._kept = dicts, kept

    def persistent_load(self, pid):
        kind = pid[0]
        if kind == "bd":
            return self._dicts[pid[1]]
        if kind == "asb":
            return self._dicts[pid[1]][pid[2]]  # the live one (created if a reset dropped it)
        return self._kept[pid[1]]


def _capture_moto() -> dict:
    from moto.moto_api._internal import mock_random

    dicts = _live_dicts()
    data = [{account: dict(asb) for account, asb in dict.items(bd)} for bd in dicts]
    buf = io.BytesIO()
    pickler = _Pickler(buf, dicts)
    try:
        pickler.dump(data)
    except Exception as e:
        raise SnapshotError(f"cannot copy the state of {_culprit(dicts, data)}: {type(e).__name__}: {e}", 500) from e
    return {"dicts": dicts, "kept": pickler.kept, "blob": buf.getvalue(),
            "random": (random.getstate(), mock_random.getstate())}


def _culprit(dicts: list, data: list) -> str:
    """Which service's state cannot be copied (e.g. S3 keeps object bodies in open files)."""
    for bd, accounts in zip(dicts, data):
        try:
            _Pickler(io.BytesIO(), dicts).dump(accounts)
        except Exception:
            return f"moto service {bd.service_name!r}"
    return "moto's backends"


def _install_moto(saved: dict) -> None:
    from moto.core.base_backend import BackendDict, backend_lock
    from moto.core.model_instances import reset_model_data
    from moto.moto_api._internal import mock_random

    dicts = saved["dicts"]
    # moto tracks every model instance it creates (for its dashboard); the unpickled copies
    # are tracked as they are made, the thrown-away ones are forgotten.
    reset_model_data()
    enabled = gc.isenabled()
    gc.disable()  # a few hundred thousand new objects: no collection passes in the middle
    try:
        data = _Unpickler(io.BytesIO(saved["blob"]), dicts, saved["kept"]).load()
    finally:
        if enabled:
            gc.enable()
    with backend_lock:
        wanted = {id(bd) for bd in dicts}
        for bd in list(BackendDict._instances):
            if id(bd) not in wanted:
                for asb in dict.values(bd):
                    dict.clear(asb)
                dict.clear(bd)
        for bd, accounts in zip(dicts, data):
            for account in [a for a in dict.keys(bd) if a not in accounts]:
                dict.__delitem__(bd, account)
            for account, regions in accounts.items():
                asb = bd[account]  # the live AccountSpecificBackend (created if missing)
                dict.clear(asb)
                dict.update(asb, regions)
        BackendDict._instances[:] = dicts
    random.setstate(saved["random"][0])
    mock_random.setstate(saved["random"][1])


# --------------------------------------------------------------------------- snapshots

@dataclass
class Snapshot:
    name: str
    created: float                    # wall-clock time of the save
    moto: dict
    sandbox: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"name": self.name, "created": round(self.created, 3), "bytes": len(self.moto["blob"]),
                "clock": round(self.sandbox["clock"]["now"], 6)}


class Snapshots:
    """The named snapshots of one sandbox (kept across resets; gone with the process)."""

    def __init__(self, sandbox) -> None:
        self.sb = sandbox
        self._saved: dict[str, Snapshot] = {}
        self._lock = threading.Lock()   # one snapshot or restore at a time
        self._frozen = False

    @contextmanager
    def _quiet(self):
        """Nothing else changes the state while held (see the module docstring)."""
        sb = self.sb
        with ExitStack() as stack:
            stack.enter_context(sb.gate.exclusive())
            stack.enter_context(sb.scheduler.run_lock)
            stack.enter_context(sb.health.tick_lock)
            stack.enter_context(sb.lag.publish_lock)
            stack.enter_context(sb.alarms.eval_lock)
            stack.enter_context(sb.listeners.reconcile_lock)
            yield

    # ------------------------------------------------------------------ API
    def list(self) -> list[dict]:
        with self._lock:
            return [s.describe() for s in self._saved.values()]

    def delete(self, name: str) -> bool:
        with self._lock:
            return self._saved.pop(_check_name(name), None) is not None

    def save(self, name: str, wait: float = DEFAULT_WAIT) -> dict:
        name = _check_name(name)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= MAX_WAIT:
            raise SnapshotError(f"wait must be a number of seconds between 0 and {MAX_WAIT:.0f}")
        t0 = time.monotonic()
        deadline = t0 + wait
        with self._lock:
            while True:
                with self._quiet():
                    pending = self.sb.scheduler.pending()
                    if pending == 0:
                        snap = Snapshot(name, time.time(), _capture_moto(), self._capture_sandbox())
                        break
                # Transitions run only outside _quiet(): let them, then look again.
                if self.sb.clock.paused:
                    raise SnapshotError(
                        f"{pending} scheduled transition(s) pending and the clock is paused: step it "
                        "(POST /_sandbox/clock/step) or resume it, then save", 409)
                if time.monotonic() >= deadline:
                    raise SnapshotError(
                        f"{pending} scheduled transition(s) still pending after {wait:g} s (a snapshot "
                        "cannot hold a transition in progress); save again once they are done", 409)
                time.sleep(0.02)
            self._saved[name] = snap
            self._freeze_once()
        out = snap.describe()
        out["took"] = round(time.monotonic() - t0, 4)
        return out

    def _freeze_once(self) -> None:
        """Every restore makes a few hundred thousand objects; a garbage collection pass that
        lands in a restore then also rescans everything long-lived (botocore's models, moto,
        Flask: most of the process). Moving what is alive at the first save into the permanent
        generation once (gc.freeze) keeps those passes short: restores at p90 ~0.1 s instead
        of ~0.3 s on a busy 2-core machine. The price is bounded: the state alive then is
        never collected after a restore replaces it (one copy, once per process)."""
        if not self._frozen:
            self._frozen = True
            gc.collect()
            gc.freeze()

    def restore(self, name: str) -> dict:
        name = _check_name(name)
        t0 = time.monotonic()
        with self._lock:
            snap = self._saved.get(name)
            if snap is None:
                known = ", ".join(sorted(self._saved)) or "none"
                raise SnapshotError(f"no snapshot named {name!r} (saved: {known})")
            with self._quiet():
                # Drop pending transitions first (under run_lock: none is running), then
                # everything they could have touched.
                self.sb.scheduler.reset()
                _install_moto(snap.moto)
                moved = self._restore_sandbox(snap.sandbox)
        out = snap.describe()
        out["took"] = round(time.monotonic() - t0, 4)
        if moved:
            out["moved"] = moved
            log.warning("restore %s: listeners %s could not get their saved ports back", name, moved)
        return out

    # ------------------------------------------------------------------ sandbox state
    def _capture_sandbox(self) -> dict:
        from . import dynamodb, route53

        sb = self.sb
        return {
            "clock": sb.clock.state(),
            "faults": sb.faults.state(),
            "calls": sb.calls.state(),
            "edges": copy.deepcopy(sb.edges),
            "health": sb.health.state(),
            "lag": sb.lag.state(),
            "route53": route53.state(),
            "dynamodb": dynamodb.state(),
            "listeners": sb.listeners.state(),
            "route53_limits": sb.r53limits.state(),
            "iam": sb.iam.state(),
        }

    def _restore_sandbox(self, saved: dict) -> list[str]:
        from . import dynamodb, route53

        sb = self.sb
        sb.clock.restore(saved["clock"])
        sb.faults.restore(saved["faults"])
        sb.calls.restore(saved["calls"])
        sb.edges = copy.deepcopy(saved["edges"])
        sb.health.restore(saved["health"])
        sb.lag.restore(saved["lag"])
        route53.restore(saved["route53"])
        dynamodb.restore(saved["dynamodb"])
        sb.r53limits.restore(saved["route53_limits"])
        sb.iam.restore(saved.get("iam", {"mode": "off"}))
        return sb.listeners.restore(saved["listeners"])


def _check_name(name) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SnapshotError("name must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit)")
    return name

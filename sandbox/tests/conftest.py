"""Shared fixtures: a sandbox process per session (instant profile, time scale 0.5), brought
back to a clean state before every test, plus helpers to build small topologies, to wait
for conditions and to step the sandbox's clock.

Every test talks to a real ``python -m drsandbox serve`` process over HTTP, exactly as drctl
and the aws CLI do; nothing reaches into the sandbox's memory.

Clean and seeded states come from snapshots of the session sandbox (``POST
/_sandbox/restore``, tens of milliseconds) instead of a reset (which re-creates every moto
backend) or a new seed (3-8 s): ``clean_snapshot`` is the session sandbox as started,
``seeded_snapshot`` the same sandbox right after ``seed``. tests/test_snapshot.py proves a
restored sandbox cannot be told apart from a freshly seeded one.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config

SANDBOX_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(SANDBOX_DIR)
if SANDBOX_DIR not in sys.path:
    sys.path.insert(0, SANDBOX_DIR)

TIME_SCALE = "0.5"
ENV = dict(os.environ, PYTHONPATH=SANDBOX_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""),
           AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
ENV.pop("DRSANDBOX_ENDPOINT", None)


_PROCS: list = []


@atexit.register
def _kill_leftovers() -> None:
    """Never leave a sandbox behind, whatever happened to the test that started it."""
    for p in _PROCS:
        if p.poll() is None:
            p.kill()


class Proc:
    """A running ``python -m drsandbox serve``."""

    def __init__(self, *args: str, timeout: float = 30.0) -> None:
        self.started = time.monotonic()
        # stderr goes to a file: a pipe nobody drains would block the sandbox once it fills.
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "drsandbox", "serve", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=ENV)
        _PROCS.append(self.proc)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not line or not line[0].startswith("listening on "):
            self.proc.kill()
            self.stderr.seek(0)
            raise RuntimeError(f"sandbox did not start: {line!r} {self.stderr.read()[-2000:]}")
        self.ready = time.monotonic()
        self.url = line[0].split("listening on ", 1)[1].strip()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def control(url: str, method: str, path: str, body=None, raw: bytes | None = None, timeout: float = 10.0):
    """(status, json) of a control API call."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def http_get(url: str, timeout: float = 5.0, headers: dict | None = None):
    """(status, body text, headers) of a plain GET; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def wait_for(fn, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Sandbox:
    """Test-side handle on the shared sandbox."""

    # boto3 clients, shared by every test on the same endpoint (making one costs ~50 ms).
    _clients: dict = {}

    def __init__(self, url: str) -> None:
        self.url = url

    def client(self, service: str, region: str = "us-east-1", retries: int = 1, read_timeout: float = 30.0):
        key = (self.url, service, region, retries, read_timeout)
        if key not in self._clients:
            cfg = Config(retries={"total_max_attempts": retries, "mode": "standard"},
                         connect_timeout=5, read_timeout=read_timeout)
            self._clients[key] = boto3.client(service, region_name=region, endpoint_url=self.url, config=cfg,
                                              aws_access_key_id="test", aws_secret_access_key="test")
        return self._clients[key]

    def control(self, method: str, path: str, body=None, **kw):
        return control(self.url, method, path, body, **kw)

    def fault(self, **spec) -> str:
        status, body = self.control("POST", "/_sandbox/faults", spec)
        assert status == 200, body
        return body["id"]

    def listener(self, name: str, mode: str, **kw) -> dict:
        status, body = self.control("POST", "/_sandbox/listeners", {"name": name, "mode": mode, **kw})
        assert status == 200, body
        return body["listener"]

    def listeners(self) -> dict:
        return {l["name"]: l for l in self.control("GET", "/_sandbox/listeners")[1]["listeners"]}

    # ------------------------------------------------------------------ the clock
    def pause(self) -> dict:
        status, body = self.control("POST", "/_sandbox/clock", {"paused": True})
        assert status == 200, body
        return body

    def resume(self) -> dict:
        status, body = self.control("POST", "/_sandbox/clock", {"paused": False})
        assert status == 200, body
        return body

    @contextlib.contextmanager
    def paused(self):
        """The clock stands still inside the block (nothing that is not due happens until
        ``step``); it runs again afterwards."""
        self.pause()
        try:
            yield self
        finally:
            self.resume()

    def step(self, seconds: float | None = None) -> dict:
        """Advance the clock to the next event (a scheduled transition or a deadline), or by
        ``seconds``; everything that falls due has run when this returns."""
        status, body = self.control("POST", "/_sandbox/clock/step", {} if seconds is None else {"seconds": seconds})
        assert status == 200, body
        return body

    def steps_until(self, read, done, max_steps: int = 20) -> list:
        """Step to the next event until ``done(read())``; the distinct values ``read()`` gave,
        in order (the first one before any step)."""
        seen = [read()]
        for _ in range(max_steps):
            if done(seen[-1]):
                return seen
            self.step()
            value = read()
            if value != seen[-1]:
                seen.append(value)
        raise AssertionError(f"not done after {max_steps} steps: {seen!r}")

    # ------------------------------------------------------------------ small topologies
    def make_alb(self, region: str = "us-east-1", name: str | None = None, instances: int = 1) -> dict:
        """A VPC, an ALB with a target group and ``instances`` running registered targets."""
        name = name or f"t-{uuid.uuid4().hex[:8]}"
        ec2, elb = self.client("ec2", region), self.client("elbv2", region)
        vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.99.{i}.0/24", AvailabilityZone=f"{region}{az}")
                   ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
        lb = elb.create_load_balancer(Name=name, Subnets=subnets, Type="application")["LoadBalancers"][0]
        tg = elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc,
                                     HealthCheckPath="/health")["TargetGroups"][0]
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
        ids = []
        if instances:
            ids = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-04681a1dbd79675a5", MinCount=instances,
                                                              MaxCount=instances, SubnetId=subnets[0])["Instances"]]
            elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": i} for i in ids])
        url = self.listeners()[name]["url"]
        return {"name": name, "arn": lb["LoadBalancerArn"], "dns": lb["DNSName"], "zone": lb["CanonicalHostedZoneId"],
                "tg": tg["TargetGroupArn"], "instances": ids, "url": url, "vpc": vpc, "subnets": subnets}


@pytest.fixture(scope="session")
def sandbox_proc():
    proc = Proc("--profile", "instant", "--time-scale", TIME_SCALE)
    yield proc
    proc.stop()


# The services and regions the tests touch: created once for the clean snapshot, as the
# sandbox's own start-up warm-up does, so no test pays for moto building them.
_WARM = [("ec2", r) for r in ("us-east-1", "us-west-2")] + [
    ("rds", "us-east-1"), ("rds", "us-west-2"), ("elbv2", "us-east-1"), ("elbv2", "us-west-2"),
    ("autoscaling", "us-east-1"), ("autoscaling", "us-west-2"), ("route53", "us-east-1"),
    ("cloudfront", "us-east-1"), ("dynamodb", "us-east-1"), ("backup", "us-east-1"), ("backup", "us-west-2")]


def _touch(sbx: "Sandbox", service: str, region: str) -> None:
    c = sbx.client(service, region)
    {"ec2": lambda: c.describe_vpcs(), "rds": lambda: c.describe_db_instances(),
     "elbv2": lambda: c.describe_load_balancers(), "autoscaling": lambda: c.describe_auto_scaling_groups(),
     "route53": lambda: c.list_hosted_zones(), "cloudfront": lambda: c.list_distributions(),
     "dynamodb": lambda: c.list_tables(), "backup": lambda: c.list_backup_vaults()}[service]()


def restore(url: str, name: str) -> dict:
    status, body = control(url, "POST", "/_sandbox/restore", {"name": name})
    assert status == 200, body
    # A listener whose saved port another process took meanwhile comes back elsewhere, and
    # the URLs in topology.json / drctl.yaml would be wrong: say so here, not in a later test.
    assert "moved" not in body["restored"], f"listeners lost their ports: {body['restored']['moved']}"
    return body["restored"]


@pytest.fixture(scope="session")
def clean_snapshot(sandbox_proc) -> str:
    """Snapshot ``clean``: the session sandbox as a fresh process has it (no resources, no
    faults, empty call log), its common backends already built."""
    sbx = Sandbox(sandbox_proc.url)
    assert control(sandbox_proc.url, "POST", "/_sandbox/reset")[0] == 200
    for service, region in _WARM:
        _touch(sbx, service, region)
    assert control(sandbox_proc.url, "DELETE", "/_sandbox/calls")[0] == 200
    status, body = control(sandbox_proc.url, "POST", "/_sandbox/snapshot", {"name": "clean"}, timeout=60)
    assert status == 200, body
    return "clean"


@pytest.fixture
def sbx(sandbox_proc, clean_snapshot) -> Sandbox:
    """The session sandbox, clean (as started: no resources, faults, listener modes, edges or
    calls; the clock running)."""
    restore(sandbox_proc.url, clean_snapshot)
    return Sandbox(sandbox_proc.url)


@pytest.fixture(scope="session")
def seeded_snapshot(sandbox_proc, clean_snapshot, tmp_path_factory):
    """Snapshot ``seeded``: the session sandbox right after ``seed`` (same code as `python -m
    drsandbox seed`, minus an interpreter start-up; test_cli.py runs the real command), and
    the directory seed wrote topology.json and drctl.yaml to."""
    from drsandbox.seed import seed

    restore(sandbox_proc.url, clean_snapshot)
    out = tmp_path_factory.mktemp("seeded")
    seed(sandbox_proc.url, str(out))
    status, body = control(sandbox_proc.url, "POST", "/_sandbox/snapshot", {"name": "seeded"}, timeout=60)
    assert status == 200, body
    return "seeded", out


@pytest.fixture
def seeded(sandbox_proc, seeded_snapshot, tmp_path):
    """The full warm-standby topology, as freshly seeded: the session's ``seeded`` snapshot
    restored, and a copy of the seed's files in ``tmp_path``."""
    name, out = seeded_snapshot
    restore(sandbox_proc.url, name)
    for f in os.listdir(out):
        shutil.copy(os.path.join(out, f), tmp_path / f)
    with open(tmp_path / "topology.json") as f:
        topo = json.load(f)
    return Sandbox(sandbox_proc.url), topo, tmp_path


def run_cli(*args: str, env: dict | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drsandbox", *args], env=env or ENV, capture_output=True,
                          text=True, timeout=timeout)


def aws_cli(url: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """The aws CLI from this virtualenv, as a user would run it."""
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    cmd = [aws, "--endpoint-url", url, "--output", "json", *args] if os.path.exists(aws) else \
        [sys.executable, "-m", "awscli", "--endpoint-url", url, "--output", "json", *args]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)

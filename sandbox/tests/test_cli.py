"""The command line: serve (readiness line, profiles, clean exit), bad input (exit 2, sandbox
unharmed), fault/listener/state commands, and start-up plus seeding.
"""

import json
import signal
import threading

import pytest

from conftest import ENV, Proc, control, run_cli, wait_for

from drsandbox import profile


def test_bad_fault_input_exits_2_and_leaves_sandbox_unharmed(sbx):
    """Unknown kind, region or service: a clear message on stderr, exit code 2, no change."""
    sbx.fault(region="us-west-2", kind="latency", ms=1)
    before = sbx.control("GET", "/_sandbox/faults")[1]
    cases = [
        (["fault", "set", "meltdown", "--region", "us-east-1"], "invalid choice"),
        (["fault", "set", "outage", "--region", "mars-north-1"], "unknown region"),
        (["fault", "set", "outage", "--region", "us-east-1", "--service", "teleport"], "unknown service"),
        (["fault", "set", "errors", "--region", "us-east-1", "--rate", "2"], "rate"),
        (["fault", "set", "latency", "--region", "us-east-1"], "--ms"),
        (["fault", "clear", "--region", "moon-1"], "unknown region"),
        (["listener", "set", "no-such-alb", "down"], "unknown listener"),
        (["listener", "set", "public", "sideways"], "invalid choice"),
    ]
    for args, needle in cases:
        r = run_cli(*args, "--endpoint", sbx.url)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert needle in r.stderr, (args, r.stderr)
    assert sbx.control("GET", "/_sandbox/healthz")[0] == 200
    assert sbx.control("GET", "/_sandbox/faults")[1] == before


def test_fault_commands_and_env_endpoint(sbx):
    """fault set/list/clear work with --endpoint or DRSANDBOX_ENDPOINT."""
    env = dict(ENV, DRSANDBOX_ENDPOINT=sbx.url)
    r = run_cli("fault", "set", "errors", "--region", "us-west-2", "--service", "rds", "--rate", "0.3",
                "--error", "throttle", env=env)
    assert r.returncode == 0 and r.stdout.strip().startswith("f")
    assert run_cli("fault", "set", "latency", "--region", "eu-west-1", "--ms", "50", env=env).returncode == 0
    r = run_cli("fault", "list", env=env)
    assert "us-west-2  rds  errors rate=0.3 error=throttle" in r.stdout and "eu-west-1" in r.stdout
    r = run_cli("fault", "clear", "--region", "us-west-2", env=env)
    assert r.returncode == 0 and "cleared 1" in r.stdout
    assert [f["region"] for f in sbx.control("GET", "/_sandbox/faults")[1]["faults"]] == ["eu-west-1"]
    assert run_cli("fault", "clear", env=env).returncode == 0
    assert sbx.control("GET", "/_sandbox/faults")[1]["faults"] == []


def test_missing_or_unreachable_endpoint():
    """No endpoint is a usage error (2); an endpoint nobody listens on is exit 1."""
    r = run_cli("fault", "list")
    assert r.returncode == 2 and "DRSANDBOX_ENDPOINT" in r.stderr
    r = run_cli("state", "--endpoint", "http://127.0.0.1:9")
    assert r.returncode == 1 and "cannot reach" in r.stderr


@pytest.mark.parametrize("content,needle", [
    (None, "unknown profile"),
    ('{"rds_promotion": 3, "warp_speed": 1}', "unknown key"),
    ("rds_promotion: [1, 2\n", "neither valid JSON nor YAML"),
    ('{"rds_promotion": -1}', "rds_promotion"),
    ('{"base": "ludicrous"}', "base"),
])
def test_bad_profile_exits_2(tmp_path, content, needle):
    """An unknown profile or a bad profile file is exit 2 with a clear message, before any
    port is opened."""
    path = tmp_path / "profile.yaml"
    if content is not None:
        path.write_text(content)
    r = run_cli("serve", "--port", "0", "--profile", str(path if content is not None else tmp_path / "missing.json"),
                timeout=30)
    assert r.returncode == 2 and needle in r.stderr and "listening" not in r.stdout


def test_bad_time_scale_exits_2():
    """A non-positive --time-scale is a usage error (exit 2)."""
    r = run_cli("serve", "--profile", "instant", "--time-scale", "-1", timeout=30)
    assert r.returncode == 2 and "time-scale" in r.stderr


def test_profile_files_json_and_yaml(tmp_path):
    """A profile file (JSON or YAML) overrides keys of its base; --time-scale multiplies."""
    (tmp_path / "p.yaml").write_text("base: instant\nrds_promotion: 4\ncloudfront_deployment: 2.5\n")
    p = profile.load(str(tmp_path / "p.yaml"), time_scale=2)
    assert p.seconds("rds_promotion") == 8 and p.seconds("cloudfront_deployment") == 5
    assert p.seconds("route53_change_propagation") == profile.INSTANT["route53_change_propagation"] * 2
    (tmp_path / "p.json").write_text(json.dumps({"health_check_interval": 3}))
    assert profile.load(str(tmp_path / "p.json")).values["rds_promotion"] == profile.REALISTIC["rds_promotion"]
    r = profile.load("realistic")
    assert (r.values["rds_promotion"], r.values["cloudfront_deployment"], r.values["backup_copy_job"],
            r.values["route53_change_propagation"], r.values["health_check_interval"]) == (20, 15, 10, 5, 10)


def test_serve_with_file_profile_and_clean_sigterm(tmp_path):
    """serve prints its readiness line, uses the file profile, and exits 0 on SIGTERM even
    with a request held by an outage."""
    (tmp_path / "p.json").write_text(json.dumps({"base": "instant", "rds_promotion": 1.5}))
    proc = Proc("--profile", str(tmp_path / "p.json"))
    try:
        status, body = control(proc.url, "GET", "/_sandbox/healthz")
        assert status == 200 and body["profile"]["seconds"]["rds_promotion"] == 1.5
        control(proc.url, "POST", "/_sandbox/faults", {"region": "us-east-1", "kind": "outage"})
        import boto3
        from botocore.config import Config

        ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=proc.url, aws_access_key_id="t",
                           aws_secret_access_key="t", config=Config(retries={"total_max_attempts": 1}, read_timeout=30))
        held = threading.Thread(target=lambda: _swallow(ec2.describe_vpcs), daemon=True)
        held.start()
        wait_for(lambda: control(proc.url, "GET", "/_sandbox/calls")[1]["in_flight"] == 1, what="request held")
        # stop() sends SIGTERM and waits up to 10 s before a SIGKILL (exit -9): 0 means the
        # sandbox exited on its own with the request held, not after the outage's 120 s hang.
        assert proc.stop(signal.SIGTERM) == 0
    finally:
        proc.stop(signal.SIGKILL)


def test_sigint_exits_cleanly():
    """Ctrl-C (SIGINT) ends serve with exit code 0."""
    proc = Proc("--profile", "instant")
    assert proc.stop(signal.SIGINT) == 0


def _swallow(fn):
    try:
        fn()
    except Exception:
        pass


def test_start_plus_seed_under_10s(tmp_path):
    """Start-up plus seeding with the instant profile takes under 10 s (as a new user would:
    serve, wait for the readiness line, then python -m drsandbox seed)."""
    proc = Proc("--profile", "instant")
    try:
        r = run_cli("seed", "--endpoint", proc.url, "--out", str(tmp_path), "--domain", "shop.test")
        assert r.returncode == 0, r.stderr
        topo = json.loads((tmp_path / "topology.json").read_text())
        assert topo["route53"]["record_name"] == "api.shop.test."
    finally:
        proc.stop()


def test_state_command(seeded):
    """state prints which DB is the writer (and whether it is writable), each region's app
    database, Route 53's answer, CloudFront's first origin, the writers traffic reaches, ASG
    sizes and faults."""
    sbx, topo, _ = seeded
    sbx.fault(region="us-west-2", kind="latency", ms=5)
    r = run_cli("state", "--endpoint", sbx.url)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "writer shop-db-use1 (available, writable)" in out and "replica shop-db-usw2" in out
    assert "app database (db CNAME): shop-db-usw2 (us-west-2)" in out
    assert "traffic   reaches us-east-1; writable databases reached: shop-db-use1" in out and "SPLIT" not in out
    assert f"-> {topo['regions']['us-east-1']['albs']['backend']['dns_name']} (PRIMARY, us-east-1)" in out
    assert "first origin primary-frontend (us-east-1)" in out
    assert "shop-frontend-use1 2/2 InService" in out and "shop-frontend-usw2 1/1 InService" in out
    assert "us-west-2  *  latency ms=5" in out
    st = json.loads(run_cli("state", "--json", "--endpoint", sbx.url).stdout)
    assert st["regions"]["us-east-1"]["writer"] == ["shop-db-use1"]
    assert st["regions"]["us-west-2"]["writer"] == []
    assert st["replica_links"][0]["replica"] == "us-west-2/shop-db-usw2"
    assert st["cloudfront"]["first_origin"] == "primary-frontend"
    assert {a["name"]: a["desired"] for a in st["regions"]["us-west-2"]["asgs"]} == {
        "shop-frontend-usw2": 1, "shop-backend-usw2": 1}


def test_seeding_twice_is_refused(seeded):
    """A second seed on a seeded sandbox stops with a clear message before changing anything."""
    sbx, _, out = seeded
    r = run_cli("seed", "--endpoint", sbx.url, "--out", str(out / "again"))
    assert r.returncode == 1 and "already seeded" in r.stderr and "--reset" in r.stderr

"""Local ALB listeners: every ELBv2 load balancer's DNS name stands for a local HTTP server.

On plain moto an ALB's DNS name resolves nowhere and nothing listens for it, so each test
here fails there (there is no /_sandbox/listeners and no URL to connect to).
"""

import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import http_get, wait_for


def test_alb_listener_serves_health_and_region(sbx):
    """/health answers 200 ok and / names the region that served it."""
    alb = sbx.make_alb("us-west-2")
    assert http_get(alb["url"] + "/health")[:2] == (200, "ok")
    status, body, headers = http_get(alb["url"] + "/")
    assert status == 200 and "region=us-west-2" in body
    assert headers["x-drsandbox-region"] == "us-west-2"
    listed = sbx.listeners()[alb["name"]]
    assert listed["dns_name"] == alb["dns"] and listed["mode"] == "up" and listed["region"] == "us-west-2"


def test_listener_follows_load_balancer_lifecycle(sbx):
    """Creating a load balancer starts its listener; deleting it stops it."""
    alb = sbx.make_alb("us-east-1", instances=0)
    assert alb["name"] in sbx.listeners()
    sbx.client("elbv2").delete_load_balancer(LoadBalancerArn=alb["arn"])
    assert alb["name"] not in sbx.listeners()
    with pytest.raises(OSError):
        urllib.request.urlopen(alb["url"] + "/health", timeout=2)


def test_no_healthy_targets_is_503(sbx):
    """Like an ALB, a listener with no running registered target answers 503."""
    alb = sbx.make_alb("us-east-1", instances=0)
    assert http_get(alb["url"] + "/health")[0] == 503
    ec2 = sbx.client("ec2")
    iid = ec2.run_instances(ImageId="ami-04681a1dbd79675a5", MinCount=1, MaxCount=1,
                            SubnetId=alb["subnets"][0])["Instances"][0]["InstanceId"]
    sbx.client("elbv2").register_targets(TargetGroupArn=alb["tg"], Targets=[{"Id": iid}])
    assert http_get(alb["url"] + "/health")[0] == 200
    ec2.stop_instances(InstanceIds=[iid])
    assert http_get(alb["url"] + "/health")[0] == 503


def test_mode_down_refuses_connections_and_up_restores(sbx):
    """down: connection refused on the same port; up: served again at the same URL."""
    alb = sbx.make_alb()
    sbx.listener(alb["dns"], "down")
    port = int(alb["url"].rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    up = sbx.listener(alb["name"], "up")
    assert up["url"] == alb["url"]
    assert http_get(alb["url"] + "/health")[0] == 200


def test_mode_blackhole_accepts_and_never_answers(sbx):
    """blackhole: the TCP connection is accepted, the request never answered; switching
    back to up releases held connections."""
    alb = sbx.make_alb()
    sbx.listener(alb["name"], "blackhole")
    port = int(alb["url"].rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(0.8)
    with pytest.raises(socket.timeout):
        s.recv(100)
    sbx.listener(alb["name"], "up")
    s.settimeout(5)
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    s.close()


def test_mode_slow_and_error(sbx):
    """slow adds delay_ms; error answers 500."""
    alb = sbx.make_alb()
    sbx.listener(alb["name"], "slow", delay_ms=500)
    t = time.monotonic()
    assert http_get(alb["url"] + "/health")[0] == 200
    assert time.monotonic() - t >= 0.5
    sbx.listener(alb["name"], "error")
    assert http_get(alb["url"] + "/health")[0] == 500


def test_region_outage_darkens_listeners(sbx):
    """An outage makes the region's listeners hang (not the other region's); clearing the
    fault releases a held request."""
    east, west = sbx.make_alb("us-east-1"), sbx.make_alb("us-west-2")
    sbx.fault(region="us-east-1", kind="outage")
    assert sbx.listeners()[east["name"]]["effective_mode"] == "blackhole"
    with pytest.raises((socket.timeout, urllib.error.URLError)):
        urllib.request.urlopen(east["url"] + "/health", timeout=0.8)
    assert http_get(west["url"] + "/health")[0] == 200
    got = {}
    th = threading.Thread(target=lambda: got.update(r=http_get(east["url"] + "/health", timeout=10)))
    th.start()
    time.sleep(0.5)
    sbx.control("DELETE", "/_sandbox/faults")
    th.join(10)
    assert got["r"][0] == 200


def test_bad_listener_requests(sbx):
    """Unknown listener names and modes are 400 and change nothing."""
    alb = sbx.make_alb()
    assert sbx.control("POST", "/_sandbox/listeners", {"name": "nope", "mode": "down"})[0] == 400
    assert sbx.control("POST", "/_sandbox/listeners", {"name": alb["name"], "mode": "sideways"})[0] == 400
    assert sbx.listeners()[alb["name"]]["mode"] == "up"


def test_reset_restores_edges_and_modes(sbx):
    """The edge listeners exist from the start and keep their URLs across resets."""
    edges = {n: l for n, l in sbx.listeners().items() if l["kind"] == "edge"}
    assert set(edges) == {"public", "cdn"}
    sbx.listener("public", "error")
    sbx.control("POST", "/_sandbox/reset")
    after = sbx.listeners()
    assert after["public"]["mode"] == "up" and after["public"]["url"] == edges["public"]["url"]
    wait_for(lambda: http_get(after["public"]["url"] + "/")[0] == 502, what="unconfigured public edge")

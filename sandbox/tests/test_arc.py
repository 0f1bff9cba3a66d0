"""Route 53 ARC routing control (arc.py): the control plane (route53-recovery-control-config, in
us-west-2), the cluster data plane (route53-recovery-cluster) on five regional endpoints, and
RECOVERY_CONTROL health checks.

Plain moto 5.2.5 has no ARC: every call to either API answers an HTML 500, and a
RECOVERY_CONTROL health check is stored without its RoutingControlArn (and reported as a fake
Success). AWS's rules: ARC Developer Guide ("Getting and updating routing control states using
the ARC API", "AWS Region availability for routing control", "Creating a routing control");
Recovery Control Configuration and Routing Control (Recovery Cluster) API references; Route 53
API reference, HealthCheckConfig.Type RECOVERY_CONTROL.
"""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from conftest import wait_for
from gates import INTERVAL, data_plane, health_check, healthy, make_cluster, make_control, set_control, step_next

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"]


def _cc(sbx):
    return sbx.client("route53-recovery-control-config", "us-west-2")


def _state(endpoint, arn) -> str:
    return data_plane(endpoint).get_routing_control_state(RoutingControlArn=arn)["RoutingControlState"]


def test_cluster_is_pending_then_deployed_with_five_regional_endpoints(sbx):
    """CreateCluster answers PENDING without endpoints; once DEPLOYED the cluster lists one
    endpoint per region (us-east-1, us-west-2, eu-west-1, ap-northeast-1, ap-southeast-2) and
    has a default control panel; ClientToken makes the create idempotent (moto: HTML 500)."""
    cc = _cc(sbx)
    with sbx.paused():
        cluster = cc.create_cluster(ClusterName="gate", ClientToken="once")["Cluster"]
        assert (cluster["Status"], cluster["ClusterEndpoints"]) == ("PENDING", [])
        assert cc.create_cluster(ClusterName="gate", ClientToken="once")["Cluster"]["ClusterArn"] == cluster["ClusterArn"]
        assert len(cc.list_clusters()["Clusters"]) == 1
        assert cluster["ClusterArn"].startswith("arn:aws:route53-recovery-control::123456789012:cluster/")
        step_next(sbx)
        got = cc.describe_cluster(ClusterArn=cluster["ClusterArn"])["Cluster"]
    assert got["Status"] == "DEPLOYED"
    assert [e["Region"] for e in got["ClusterEndpoints"]] == REGIONS
    assert all(e["Endpoint"].startswith(sbx.url + "/arc/") and e["Endpoint"].endswith(f"/{e['Region']}/v1")
               for e in got["ClusterEndpoints"])
    panels = cc.list_control_panels(ClusterArn=cluster["ClusterArn"])["ControlPanels"]
    assert [(p["Name"], p["DefaultControlPanel"], p["RoutingControlCount"]) for p in panels] == [
        ("DefaultControlPanel", True, 0)]


def test_routing_controls_start_off_and_names_are_unique_per_panel(sbx):
    """A new routing control is Off and PENDING (unknown to the data plane) until deployed; a
    second control of the same name in a panel is a ConflictException; controls are listed
    per panel and described (moto: HTML 500)."""
    cc = _cc(sbx)
    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        panel = cc.create_control_panel(ClusterArn=cluster["ClusterArn"], ControlPanelName="drctl")["ControlPanel"]
        rc = cc.create_routing_control(ClusterArn=cluster["ClusterArn"], ControlPanelArn=panel["ControlPanelArn"],
                                       RoutingControlName="primary-open")["RoutingControl"]
        assert rc["Status"] == "PENDING"
        with pytest.raises(ClientError) as e:
            data_plane(endpoints[1]).get_routing_control_state(RoutingControlArn=rc["RoutingControlArn"])
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
        with pytest.raises(ClientError) as e:
            cc.create_routing_control(ClusterArn=cluster["ClusterArn"], ControlPanelArn=panel["ControlPanelArn"],
                                      RoutingControlName="primary-open")
        assert e.value.response["Error"]["Code"] == "ConflictException"
        step_next(sbx)
        assert _state(endpoints[1], rc["RoutingControlArn"]) == "Off"
    listed = cc.list_routing_controls(ControlPanelArn=panel["ControlPanelArn"])["RoutingControls"]
    assert [(c["Name"], c["Status"]) for c in listed] == [("primary-open", "DEPLOYED")]
    assert cc.describe_control_panel(ControlPanelArn=panel["ControlPanelArn"])["ControlPanel"]["RoutingControlCount"] == 1
    with pytest.raises(ClientError) as e:
        cc.describe_routing_control(RoutingControlArn=rc["RoutingControlArn"] + "0")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        cc.delete_control_panel(ControlPanelArn=panel["ControlPanelArn"])
    assert e.value.response["Error"]["Code"] == "ConflictException"


def test_every_endpoint_serves_the_same_states(sbx):
    """A state set through one endpoint is read back through every other; ListRoutingControls
    shows the cluster's controls with their panel; UpdateRoutingControlStates is all or nothing;
    a bad state is a ValidationException with its field (moto: HTML 500)."""
    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        a, b = make_control(sbx, cluster, "a"), make_control(sbx, cluster, "b")
    dp = data_plane(endpoints[2])
    dp.update_routing_control_state(RoutingControlArn=a, RoutingControlState="On")
    assert [_state(e, a) for e in endpoints] == ["On"] * 5
    listed = data_plane(endpoints[4]).list_routing_controls()["RoutingControls"]
    assert sorted((c["RoutingControlName"], c["RoutingControlState"], c["ControlPanelName"]) for c in listed) == [
        ("a", "On", "DefaultControlPanel"), ("b", "Off", "DefaultControlPanel")]
    with pytest.raises(ClientError) as e:
        dp.update_routing_control_states(UpdateRoutingControlStateEntries=[
            {"RoutingControlArn": b, "RoutingControlState": "On"},
            {"RoutingControlArn": b + "0", "RoutingControlState": "On"}])
    err = e.value.response["Error"]
    assert err["Code"] == "ResourceNotFoundException"
    assert e.value.response["resourceId"] == b + "0"
    assert _state(endpoints[0], b) == "Off"
    dp.update_routing_control_states(UpdateRoutingControlStateEntries=[
        {"RoutingControlArn": a, "RoutingControlState": "Off"}, {"RoutingControlArn": b, "RoutingControlState": "On"}])
    assert (_state(endpoints[0], a), _state(endpoints[0], b)) == ("Off", "On")
    with pytest.raises(ClientError) as e:
        dp.update_routing_control_state(RoutingControlArn=a, RoutingControlState="ON")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert e.value.response["fields"][0]["name"] == "RoutingControlState"


def test_an_endpoint_answers_only_to_its_own_region(sbx):
    """A client must use an endpoint with that endpoint's region: another signing region is a
    403 InvalidSignatureException, as SigV4 would make it; the data plane is not served at the
    sandbox's main address (AWS: no such endpoint) (moto: HTML 500 everywhere)."""
    import boto3

    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        arc = make_control(sbx, cluster)
    wrong = data_plane({"Endpoint": endpoints[0]["Endpoint"], "Region": "us-west-2"})
    with pytest.raises(ClientError) as e:
        wrong.get_routing_control_state(RoutingControlArn=arc)
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    main = boto3.client("route53-recovery-cluster", region_name="us-east-1", endpoint_url=sbx.url,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        main.get_routing_control_state(RoutingControlArn=arc)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_region_outage_cuts_exactly_its_endpoint(sbx):
    """With us-east-1 dark its endpoint hangs like the rest of the region; trying the endpoints
    in turn, the next one takes the update, and every other endpoint serves it; the call log
    names each endpoint's region (moto: no ARC, no outage)."""
    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        arc = make_control(sbx, cluster)
    sbx.control("DELETE", "/_sandbox/calls")
    sbx.fault(region="us-east-1", kind="outage")
    tried = set_control(endpoints, arc, "On", read_timeout=1.0)
    assert tried == [("us-east-1", "ReadTimeoutError"), ("us-west-2", "ok")]
    assert [_state(e, arc) for e in endpoints[1:]] == ["On"] * 4
    sbx.control("DELETE", "/_sandbox/faults")
    assert _state(endpoints[0], arc) == "On"
    calls = wait_for(lambda: (lambda c: c if len(c) >= 7 else None)(
        [(c["service"], c["operation"], c["region"], c["status"]) for c in sbx.control("GET", "/_sandbox/calls")[1]
         ["calls"]]), what="calls logged")
    assert ("route53-recovery-cluster", "UpdateRoutingControlState", "us-west-2", 200) in calls
    assert [c[2] for c in calls if c[1] == "GetRoutingControlState"][:4] == REGIONS[1:]


def test_a_cluster_without_quorum_refuses_every_call(sbx):
    """State lives in a quorum across the five regions: with three of them dark the two lit
    endpoints answer 503 EndpointTemporarilyUnavailableException; with two dark, the rest work
    (moto: no ARC)."""
    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        arc = make_control(sbx, cluster)
    for region in REGIONS[2:]:
        sbx.fault(region=region, service="arc-cluster", kind="outage")
    for ep in endpoints[:2]:
        with pytest.raises(ClientError) as e:
            data_plane(ep).update_routing_control_state(RoutingControlArn=arc, RoutingControlState="On")
        assert e.value.response["Error"]["Code"] == "EndpointTemporarilyUnavailableException"
    sbx.control("DELETE", "/_sandbox/faults?region=ap-southeast-2")
    data_plane(endpoints[0]).update_routing_control_state(RoutingControlArn=arc, RoutingControlState="On")
    assert _state(endpoints[1], arc) == "On"
    assert sbx.control("GET", "/_sandbox/health")[1]["arc"][0]["quorum"] is True


def test_control_plane_lives_in_us_west_2(sbx):
    """The control plane answers during a us-east-1 outage and hangs during a us-west-2 one,
    whatever region a client signs with; the call log counts it in us-west-2 (moto: HTML 500)."""
    sbx.fault(region="us-east-1", kind="outage")
    assert _cc(sbx).list_clusters()["Clusters"] == []
    sbx.control("DELETE", "/_sandbox/faults")
    sbx.fault(region="us-west-2", kind="outage")
    slow = sbx.client("route53-recovery-control-config", "us-east-1", read_timeout=1.0)
    with pytest.raises(ReadTimeoutError):
        slow.list_clusters()
    sbx.control("DELETE", "/_sandbox/faults")
    calls = [(c["service"], c["operation"], c["region"]) for c in sbx.control("GET", "/_sandbox/calls")[1]["calls"]]
    assert ("route53-recovery-control-config", "ListClusters", "us-west-2") in calls


def test_recovery_control_health_check_follows_its_routing_control(sbx):
    """A RECOVERY_CONTROL check is healthy while its routing control is On, unhealthy while Off,
    at the checker's next round; GetHealthCheck shows its RoutingControlArn and
    ListAssociatedRoute53HealthChecks lists it; an unknown routing control is InvalidInput
    (moto: drops the ARN, answers a fake Success, no ARC)."""
    r53 = sbx.client("route53")
    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        arc = make_control(sbx, cluster)
        hc = health_check(sbx, {"Type": "RECOVERY_CONTROL", "RoutingControlArn": arc})
        assert r53.get_health_check(HealthCheckId=hc)["HealthCheck"]["HealthCheckConfig"] == {
            "Type": "RECOVERY_CONTROL", "Inverted": False, "Disabled": False, "RoutingControlArn": arc}
        assert _cc(sbx).list_associated_route53_health_checks(RoutingControlArn=arc)["HealthCheckIds"] == [hc]
        sbx.step(INTERVAL)
        assert healthy(sbx, hc) is False
        set_control(endpoints[3:], arc, "On")
        assert healthy(sbx, hc) is False  # not before the checker's next round
        sbx.step(INTERVAL)
        assert healthy(sbx, hc) is True
        status = r53.get_health_check_status(HealthCheckId=hc)["HealthCheckObservations"][0]["StatusReport"]["Status"]
        assert status == "Success: Routing control state is On."
    with pytest.raises(ClientError) as e:
        health_check(sbx, {"Type": "RECOVERY_CONTROL", "RoutingControlArn": arc + "0"})
    assert e.value.response["Error"]["Code"] == "InvalidInput"


def test_injected_errors_answer_in_the_data_planes_protocol(sbx):
    """An ``errors`` fault on one region's endpoint answers ThrottlingException in JSON 1.0 (what
    the SDKs retry on); the next endpoint takes the update (moto: no ARC, no faults)."""
    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        arc = make_control(sbx, cluster)
    sbx.fault(region="us-east-1", service="route53-recovery-cluster", kind="errors", rate=1.0, error="throttle")
    assert set_control(endpoints, arc, "On") == [("us-east-1", "ThrottlingException"), ("us-west-2", "ok")]
    assert _state(endpoints[4], arc) == "On"


def test_health_cli_lists_the_cluster_endpoints(sbx):
    """``python -m drsandbox health`` shows where the cluster's endpoints are (the same URLs
    DescribeCluster lists), its routing controls and their states (moto: no such thing)."""
    from conftest import run_cli

    with sbx.paused():
        cluster, endpoints = make_cluster(sbx)
        arc = make_control(sbx, cluster)
    r = run_cli("health", "--endpoint", sbx.url)
    assert r.returncode == 0, r.stderr
    for ep in endpoints:
        assert f"endpoint {ep['Region']:<15} {ep['Endpoint']}" in r.stdout
    assert f"routing control DefaultControlPanel/primary-open Off (DEPLOYED) {arc}" in r.stdout

"""CloudFront: origin groups, ETags, deployments, invalidations and the cdn edge.

Plain moto rejects a behaviour targeting an origin group (NoSuchOrigin), ignores IfMatch,
keeps one ETag forever, is Deployed at once and reports invalidations as COMPLETED.
"""

import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import http_get, wait_for


def _config(primary, secondary, target="grp", codes=(500, 502, 503, 504)):
    origin = lambda i, d: {"Id": i, "DomainName": d, "CustomOriginConfig": {  # noqa: E731
        "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}}
    return {"CallerReference": str(uuid.uuid4()), "Comment": "t", "Enabled": True,
            "Origins": {"Quantity": 2, "Items": [origin("p", primary), origin("s", secondary)]},
            "OriginGroups": {"Quantity": 1, "Items": [{
                "Id": "grp", "FailoverCriteria": {"StatusCodes": {"Quantity": len(codes), "Items": list(codes)}},
                "Members": {"Quantity": 2, "Items": [{"OriginId": "p"}, {"OriginId": "s"}]}}]},
            "DefaultCacheBehavior": {"TargetOriginId": target, "ViewerProtocolPolicy": "allow-all",
                                     "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"}}


def _deployed(cf, dist_id):
    return cf.get_distribution(Id=dist_id)["Distribution"]["Status"] == "Deployed"


def test_behaviour_may_target_origin_group(sbx):
    """The default behaviour targets the origin group and it round-trips (moto: NoSuchOrigin)."""
    cf = sbx.client("cloudfront")
    d = cf.create_distribution(DistributionConfig=_config("a.example", "b.example"))["Distribution"]
    cfg = cf.get_distribution_config(Id=d["Id"])["DistributionConfig"]
    assert cfg["DefaultCacheBehavior"]["TargetOriginId"] == "grp"
    assert [m["OriginId"] for m in cfg["OriginGroups"]["Items"][0]["Members"]["Items"]] == ["p", "s"]
    with pytest.raises(ClientError) as e:
        cf.create_distribution(DistributionConfig=_config("a.example", "b.example", target="nope"))
    assert e.value.response["Error"]["Code"] == "NoSuchOrigin"


def _status(cf, dist_id):
    return cf.get_distribution(Id=dist_id)["Distribution"]["Status"]


def test_if_match_etag_and_deployment(sbx):
    """A stale IfMatch is PreconditionFailed; each update issues a new ETag; the status goes
    InProgress then Deployed (moto: IfMatch ignored, one ETag, Deployed at once). The clock
    is paused while a deployment runs: InProgress is seen however slow the machine."""
    cf = sbx.client("cloudfront")
    with sbx.paused():
        d = cf.create_distribution(DistributionConfig=_config("a.example", "b.example"))
        assert d["Distribution"]["Status"] == "InProgress"
        assert sbx.steps_until(lambda: _status(cf, d["Distribution"]["Id"]), lambda s: s == "Deployed") == \
            ["InProgress", "Deployed"]
    got = cf.get_distribution_config(Id=d["Distribution"]["Id"])
    cfg, etag = got["DistributionConfig"], got["ETag"]
    cfg["Comment"] = "changed"
    with sbx.paused():
        upd = cf.update_distribution(Id=d["Distribution"]["Id"], IfMatch=etag, DistributionConfig=cfg)
        assert upd["ETag"] != etag and upd["Distribution"]["Status"] == "InProgress"
        assert _status(cf, d["Distribution"]["Id"]) == "InProgress"
    with pytest.raises(ClientError) as e:
        cf.update_distribution(Id=d["Distribution"]["Id"], IfMatch=etag, DistributionConfig=cfg)
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert cf.get_distribution(Id=d["Distribution"]["Id"])["ETag"] == upd["ETag"]
    cf.get_waiter("distribution_deployed").wait(Id=d["Distribution"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 5})


def test_invalidation_completes(sbx):
    """Invalidations go InProgress -> Completed, so the SDK waiter succeeds (moto: COMPLETED)."""
    cf = sbx.client("cloudfront")
    d = cf.create_distribution(DistributionConfig=_config("a.example", "b.example"))["Distribution"]
    with sbx.paused():
        inv = cf.create_invalidation(DistributionId=d["Id"], InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(uuid.uuid4())})["Invalidation"]
        assert inv["Status"] == "InProgress"
        status = lambda: cf.get_invalidation(DistributionId=d["Id"], Id=inv["Id"])["Invalidation"]["Status"]  # noqa: E731
        assert sbx.steps_until(status, lambda s: s == "Completed") == ["InProgress", "Completed"]
    cf.get_waiter("invalidation_completed").wait(DistributionId=d["Id"], Id=inv["Id"],
                                                 WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    assert cf.get_invalidation(DistributionId=d["Id"], Id=inv["Id"])["Invalidation"]["Status"] == "Completed"


def test_delete_needs_disabled_and_current_etag(sbx):
    """Deleting an enabled distribution is DistributionNotDisabled; a stale ETag is
    PreconditionFailed (moto deletes anything)."""
    cf = sbx.client("cloudfront")
    d = cf.create_distribution(DistributionConfig=_config("a.example", "b.example"))
    dist_id, etag = d["Distribution"]["Id"], d["ETag"]
    with pytest.raises(ClientError) as e:
        cf.delete_distribution(Id=dist_id, IfMatch=etag)
    assert e.value.response["Error"]["Code"] == "DistributionNotDisabled"
    got = cf.get_distribution_config(Id=dist_id)
    cfg = dict(got["DistributionConfig"], Enabled=False)
    new = cf.update_distribution(Id=dist_id, IfMatch=got["ETag"], DistributionConfig=cfg)["ETag"]
    with pytest.raises(ClientError) as e:
        cf.delete_distribution(Id=dist_id, IfMatch=etag)
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    cf.delete_distribution(Id=dist_id, IfMatch=new)


def test_cdn_edge_origin_failover(sbx):
    """The cdn edge tries the group's members in order and fails over on connection
    failure and on the group's status codes, serving the deployed configuration."""
    cf = sbx.client("cloudfront")
    p, s = sbx.make_alb("us-east-1"), sbx.make_alb("us-west-2")
    d = cf.create_distribution(DistributionConfig=_config(p["dns"], s["dns"]))["Distribution"]
    sbx.control("POST", "/_sandbox/edges", {"cdn": {"distribution_id": d["Id"]}})
    cdn = sbx.listeners()["cdn"]["url"]
    wait_for(lambda: _deployed(cf, d["Id"]))
    status, body, headers = http_get(cdn + "/")
    assert status == 200 and "region=us-east-1" in body and headers["x-drsandbox-origin"] == "p"
    sbx.listener(p["name"], "error")
    status, body, headers = http_get(cdn + "/")
    assert "region=us-west-2" in body and headers["x-drsandbox-origin"] == "s"
    sbx.listener(p["name"], "down")
    assert "region=us-west-2" in http_get(cdn + "/")[1]
    sbx.listener(p["name"], "up")
    # Swap the members: the edge keeps the old order until the deployment completes.
    got = cf.get_distribution_config(Id=d["Id"])
    cfg = got["DistributionConfig"]
    cfg["OriginGroups"]["Items"][0]["Members"]["Items"].reverse()
    with sbx.paused():  # the deployment stays InProgress until stepped
        cf.update_distribution(Id=d["Id"], IfMatch=got["ETag"], DistributionConfig=cfg)
        assert http_get(cdn + "/")[2]["x-drsandbox-origin"] == "p"
        assert sbx.steps_until(lambda: _status(cf, d["Id"]), lambda s: s == "Deployed") == ["InProgress", "Deployed"]
        assert http_get(cdn + "/")[2]["x-drsandbox-origin"] == "s"

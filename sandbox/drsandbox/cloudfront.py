"""CloudFront made honest: origin groups, ETags, deployments and invalidations.

moto rejects a cache behaviour that targets an origin group (NoSuchOrigin), ignores IfMatch,
never changes a distribution's ETag and reports Deployed at once. Here:

* A cache behaviour may target an origin group; groups must name existing origins, and
  behaviours must target an existing origin or group (NoSuchOrigin otherwise).
* update_distribution (and delete) require IfMatch to equal the current ETag
  (PreconditionFailed, HTTP 412, when stale); every update issues a new ETag.
* create/update put the distribution InProgress for ``cloudfront_deployment`` seconds, then
  Deployed. The ``cdn`` edge listener serves the configuration of the last *completed*
  deployment, as CloudFront's edges do.
* Invalidations are InProgress for ``cloudfront_invalidation`` seconds, then ``Completed``
  (moto says ``COMPLETED``, which the SDK waiter never accepts).
* Deleting requires a disabled distribution (DistributionNotDisabled), as on AWS.

Deployments and invalidations end on the sandbox's clock (clock.py), which notes each end so
that a step to "the next event" stops there.
"""

from __future__ import annotations

import threading

from moto.cloudfront import models as cf_models
from moto.cloudfront.exceptions import CloudFrontException, OriginDoesNotExist
from moto.cloudfront.models import CloudFrontBackend, Distribution, DistributionConfig, Invalidation

_SB = None
_lock = threading.Lock()


class PreconditionFailed(CloudFrontException):
    def __init__(self) -> None:
        super().__init__("PreconditionFailed",
                         "The precondition given in one or more of the request header fields evaluated to false.")


class DistributionNotDisabled(CloudFrontException):
    def __init__(self) -> None:
        super().__init__("DistributionNotDisabled",
                         "The distribution you are trying to delete has not been disabled.")


class InvalidOriginGroup(CloudFrontException):
    def __init__(self, msg: str) -> None:
        super().__init__("InvalidArgument", msg)


# --------------------------------------------------------------------------- config

def _items(block) -> list:
    if not isinstance(block, dict):
        return []
    items = block.get("Items") or []
    return items if isinstance(items, list) else [items]


def _config_init(original):
    def __init__(self, config: dict) -> None:
        origin_ids = [o.get("Id") if isinstance(o, dict) else o.id for o in _items(config.get("Origins"))]
        groups = _items(config.get("OriginGroups"))
        group_ids = []
        for g in groups:
            gid = g.get("Id")
            members = [m.get("OriginId") for m in _items(g.get("Members"))]
            if gid in origin_ids or gid in group_ids:
                raise InvalidOriginGroup(f"Origin group id {gid} is not unique among origins and origin groups.")
            if len(members) != 2:
                raise InvalidOriginGroup(f"Origin group {gid} must have exactly 2 members, got {len(members)}.")
            if any(m not in origin_ids for m in members):
                raise OriginDoesNotExist()
            group_ids.append(gid)
        for cb in _items(config.get("CacheBehaviors")):
            if isinstance(cb, dict) and cb.get("TargetOriginId") not in origin_ids + group_ids:
                raise OriginDoesNotExist()
        dcb = config.get("DefaultCacheBehavior") or {}
        target = dcb.get("TargetOriginId") if isinstance(dcb, dict) else None
        if target in group_ids and origin_ids:
            # moto only knows plain origins: let it validate against one, then restore the
            # group as the real target.
            config["DefaultCacheBehavior"] = dict(dcb, TargetOriginId=origin_ids[0])
            original(self, config)
            self.DefaultCacheBehavior.target_origin_id = target
        else:
            original(self, config)

    return __init__


def snapshot(dist: Distribution) -> dict:
    """The parts of a distribution's configuration the cdn edge needs."""
    cfg = dist.distribution_config
    groups = {}
    for g in _items(getattr(cfg, "OriginGroups", {})):
        codes = [int(c) for c in _items((g.get("FailoverCriteria") or {}).get("StatusCodes"))]
        groups[g.get("Id")] = {"members": [m.get("OriginId") for m in _items(g.get("Members"))],
                               "codes": codes}
    return {"origins": {o.id: o.domain_name for o in _items(cfg.Origins)},
            "groups": groups,
            "target": cfg.DefaultCacheBehavior.target_origin_id,
            "enabled": bool(getattr(cfg, "Enabled", True)),
            "domain": dist.domain_name}


def _now() -> float:
    return _SB.clock.monotonic()


def _deploy(dist: Distribution) -> None:
    """Start a deployment of the distribution's current configuration."""
    done_at = _now() + _SB.profile.seconds("cloudfront_deployment")
    _SB.clock.note(done_at)  # Deployed from then on: a step can stop there
    with _lock:
        dist._sbx_deployed_at = done_at
        history = getattr(dist, "_sbx_history", [])
        dist._sbx_history = (history + [(done_at, snapshot(dist))])[-5:]


def deployed(dist: Distribution) -> dict | None:
    """Configuration of the last completed deployment (None before the first completes)."""
    now = _now()
    with _lock:
        done = [snap for at, snap in getattr(dist, "_sbx_history", []) if at <= now]
    return done[-1] if done else None


def _status(self) -> str:
    return "InProgress" if _now() < getattr(self, "_sbx_deployed_at", 0.0) else "Deployed"


def _invalidation_status(self) -> str:
    started = getattr(self, "_sbx_started", 0.0)
    # The same sum as the deadline noted at creation (a step lands on it exactly).
    return "InProgress" if _now() < started + _SB.profile.seconds("cloudfront_invalidation") else "Completed"


def _invalidation_init(original):
    def __init__(self, *args, **kwargs):
        self._sbx_started = _now()
        _SB.clock.note(self._sbx_started + _SB.profile.seconds("cloudfront_invalidation"))
        original(self, *args, **kwargs)

    return __init__


# --------------------------------------------------------------------------- backend

def _create(original):
    def create_distribution_with_tags(self, distribution_config, tags):
        dist, location, etag = original(self, distribution_config, tags)
        _deploy(dist)
        return dist, location, etag

    return create_distribution_with_tags


def _update(original):
    def update_distribution(self, dist_config, _id, if_match):
        dist = self.distributions.get(_id)
        if dist is not None and if_match and if_match != dist.etag:
            raise PreconditionFailed()
        dist, location, _ = original(self, dist_config, _id, if_match)
        dist.etag = cf_models.random_id()
        _deploy(dist)
        return dist, location, dist.etag

    return update_distribution


def _delete(original):
    def delete_distribution(self, distribution_id, if_match):
        dist = self.distributions.get(distribution_id)
        if dist is not None and if_match:
            if if_match != dist.etag:
                raise PreconditionFailed()
            if getattr(dist.distribution_config, "Enabled", False):
                raise DistributionNotDisabled()
        return original(self, distribution_id, if_match)

    return delete_distribution


_installed = False


def install(sandbox) -> None:
    global _SB, _installed
    _SB = sandbox
    if _installed:
        return
    _installed = True
    DistributionConfig.__init__ = _config_init(DistributionConfig.__init__)
    Distribution.status = property(_status, lambda self, value: None)
    Invalidation.__init__ = _invalidation_init(Invalidation.__init__)
    Invalidation.status = property(_invalidation_status, lambda self, value: None)
    CloudFrontBackend.create_distribution_with_tags = _create(CloudFrontBackend.create_distribution_with_tags)
    CloudFrontBackend.update_distribution = _update(CloudFrontBackend.update_distribution)
    CloudFrontBackend.delete_distribution = _delete(CloudFrontBackend.delete_distribution)


def edge_plan(distribution_id: str | None, account: str):
    """(members [(origin id, domain)], failover codes, distribution domain) for the cdn edge."""
    from moto.cloudfront.models import cloudfront_backends

    backend = cloudfront_backends[account]["aws"]
    dists = list(backend.distributions.values())
    dist = backend.distributions.get(distribution_id) if distribution_id else (dists[0] if len(dists) == 1 else None)
    if dist is None:
        return None
    snap = deployed(dist)
    if snap is None or not snap["enabled"]:
        return None
    target = snap["target"]
    if target in snap["groups"]:
        group = snap["groups"][target]
        members = [(m, snap["origins"].get(m, "")) for m in group["members"]]
        codes = set(group["codes"])
    else:
        members, codes = [(target, snap["origins"].get(target, ""))], set()
    return members, codes, snap["domain"]


def first_origin(dist: Distribution) -> str | None:
    """The origin CloudFront tries first under the current (not necessarily deployed) config."""
    snap = snapshot(dist)
    target = snap["target"]
    if target in snap["groups"]:
        members = snap["groups"][target]["members"]
        return members[0] if members else None
    return target

"""A read-only summary of the deployment as a DR operator sees it (``GET /_sandbox/state``).

Per region: which database is the writer, the replica links, the ASGs' desired and
InService counts, whether the region is dark; globally: Route 53's current answer for the
public record, CloudFront's first origin and status, and the active faults.
"""

from __future__ import annotations

from . import backends as moto_backends
from . import cloudfront, route53


def _regions_of(account: str) -> set[str]:
    from moto.autoscaling.models import autoscaling_backends
    from moto.elbv2.models import elbv2_backends
    from moto.rds.models import rds_backends

    regions: set[str] = set()
    for backend_dict, attr in ((rds_backends, "databases"), (autoscaling_backends, "autoscaling_groups"),
                               (elbv2_backends, "load_balancers")):
        for acct, region, backend in moto_backends(backend_dict):
            if acct == account and getattr(backend, attr, None):
                regions.add(region)
    return regions


def summary(sb) -> dict:
    from moto.autoscaling.models import autoscaling_backends
    from moto.cloudfront.models import cloudfront_backends
    from moto.rds.models import rds_backends
    from moto.route53.models import route53_backends

    account = sb.edges["account"]
    regions = _regions_of(account) | {f.region for f in sb.faults.list()}
    out: dict = {"profile": sb.profile.as_dict(), "regions": {}, "replica_links": []}
    for region in sorted(regions):
        dbs, asgs = [], []
        if region in rds_backends[account].keys():
            for db in list(rds_backends[account][region].databases.values()):
                role = "replica" if db.is_replica and db.source_db_instance_identifier else "writer"
                dbs.append({"id": db.db_instance_identifier, "status": db.status, "role": role,
                            "source": db.source_db_instance_identifier if role == "replica" else None,
                            "replicas": list(db.replicas)})
                if role == "replica":
                    out["replica_links"].append({"replica": f"{region}/{db.db_instance_identifier}",
                                                 "source": db.source_db_instance_identifier})
        if region in autoscaling_backends[account].keys():
            for g in list(autoscaling_backends[account][region].autoscaling_groups.values()):
                in_service = sum(1 for s in g.instance_states if s.lifecycle_state == "InService")
                asgs.append({"name": g.name, "min": g.min_size, "desired": g.desired_capacity,
                             "max": g.max_size, "in_service": in_service})
        out["regions"][region] = {
            "writer": [d["id"] for d in dbs if d["role"] == "writer"],
            "databases": dbs, "asgs": asgs, "dark": sb.faults.region_dark(region),
        }

    r53: dict = {"record": None, "answer": None, "answer_region": None, "health_checks": []}
    pub = sb.edges.get("public")
    if pub:
        r53["record"] = pub["record_name"]
        zone = route53_backends[account]["aws"].zones.get(pub["zone_id"])
        if zone is not None:
            data, _, chosen = route53.answer(account, zone, pub["record_name"], pub.get("record_type", "A"))
            r53["answer"] = data[0] if data else None
            r53["failover"] = getattr(chosen, "failover", None)
            r53["set_identifier"] = getattr(chosen, "set_identifier", None)
            listener = sb.listeners.by_dns(r53["answer"]) if r53["answer"] else None
            r53["answer_region"] = listener.region if listener else None
    for hc in list(route53_backends[account]["aws"].health_checks.values()):
        r53["health_checks"].append({"id": hc.id, "target": hc.fqdn or hc.ip_address,
                                     "healthy": sb.health.is_healthy(account, hc)})
    out["route53"] = r53

    cf: dict = {"distribution_id": None}
    cdn = sb.edges.get("cdn") or {}
    dists = cloudfront_backends[account]["aws"].distributions
    dist = dists.get(cdn.get("distribution_id")) if cdn else (next(iter(dists.values())) if len(dists) == 1 else None)
    if dist is not None:
        first = cloudfront.first_origin(dist)
        origins = {o.id: o.domain_name for o in dist.distribution_config.Origins.get("Items", [])}
        listener = sb.listeners.by_dns(origins.get(first, "")) if first else None
        deployed = cloudfront.deployed(dist)
        cf = {"distribution_id": dist.distribution_id, "status": dist.status, "first_origin": first,
              "first_origin_domain": origins.get(first), "first_origin_region": listener.region if listener else None,
              "deployed": deployed is not None}
    out["cloudfront"] = cf
    out["faults"] = [f.public() for f in sb.faults.list()]
    out["edges"] = {"public_url": sb.listeners.public.url, "cdn_url": sb.listeners.cdn.url}
    return out

"""A read-only summary of the deployment as a DR operator sees it (``GET /_sandbox/state``).

Per region: which database is the writer, each database's writability and parameter group,
its network and encryption (``in_vpc``, ``db_subnet_group``, ``vpc_security_groups``,
``storage_encrypted``, ``kms_key_id``: rds.py), the replica links, the database the region's app uses (its private zone's ``db`` CNAME), the
ASGs' desired and InService counts, the EC2 launch templates and their versions, whether the
region is dark; globally: Route 53's current answer for the public record, CloudFront's first
origin and status, the writable databases user traffic can reach right now
(``reachable_writers``; more than one is a split brain), and the active faults.

``regions[<region>]["albs"]`` lists the region's load balancers: ``{"name", "dns_name",
"addresses"}`` (the IPv4 addresses their DNS names resolve to, listeners.py). ``route53``
gives Route 53's answer for the public record now: ``answer`` (its first value), ``answer_data``
(all of it: the ALB's DNS name, or its addresses under ``dns_answers: addresses``),
``answer_alb`` and ``answer_region`` (the ALB it leads to and its region). ``route53_api`` is
the Route 53 request rate (route53_limits.py): ``rate``, ``burst``,
``prior_request_not_complete`` and every token bucket in use (``tokens`` now).

``regions[<region>]["launch_templates"]`` lists the region's launch templates sorted by name::

    [{"id": "lt-0a1b2c3d4e5f60718", "name": "shop-backend-usw2", "default_version": 1,
      "latest_version": 2, "versions": 2, "default_image_id": "ami-0123456789abcdef0"}, ...]

``versions`` is how many versions the template has; ``default_image_id`` is the ImageId of
the default version's LaunchTemplateData (None when it names none). A region is listed
when it holds databases, ASGs, load balancers or launch templates, or has a fault.
"""

from __future__ import annotations

from . import backends as moto_backends
from . import cloudfront, dns, rds, route53


def _regions_of(account: str) -> set[str]:
    from moto.autoscaling.models import autoscaling_backends
    from moto.ec2.models import ec2_backends
    from moto.elbv2.models import elbv2_backends
    from moto.rds.models import rds_backends

    regions: set[str] = set()
    for backend_dict, attr in ((rds_backends, "databases"), (autoscaling_backends, "autoscaling_groups"),
                               (elbv2_backends, "load_balancers"), (ec2_backends, "launch_templates")):
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
                role = "replica" if rds.is_replica(db) else "writer"
                dbs.append({"id": db.db_instance_identifier, "status": db.status, "role": role,
                            "source": db.source_db_instance_identifier if role == "replica" else None,
                            "replicas": list(db.replicas), "writable": rds.writable(db),
                            "parameter_group": rds.parameter_group_name(db),
                            "parameter_apply_status": rds.apply_status(db), "read_only": rds.read_only(db),
                            "address": db.address, "in_vpc": rds.in_vpc(db),
                            "db_subnet_group": getattr(db, "_db_subnet_group_name", None) or None,
                            **rds.encryption_and_groups(db)})
                if role == "replica":
                    out["replica_links"].append({"replica": f"{region}/{db.db_instance_identifier}",
                                                 "source": db.source_db_instance_identifier})
        if region in autoscaling_backends[account].keys():
            for g in list(autoscaling_backends[account][region].autoscaling_groups.values()):
                in_service = sum(1 for s in g.instance_states if s.lifecycle_state == "InService")
                asgs.append({"name": g.name, "min": g.min_size, "desired": g.desired_capacity,
                             "max": g.max_size, "in_service": in_service})
        app_db = app_database(account, region)
        albs = [{"name": l.name, "dns_name": l.dns_name, "addresses": list(l.addresses)}
                for l in sb.listeners.all() if getattr(l, "account", None) == account and l.region == region]
        out["regions"][region] = {
            "writer": [d["id"] for d in dbs if d["role"] == "writer"],
            "databases": dbs, "asgs": asgs, "launch_templates": launch_templates(account, region),
            "albs": albs,
            "dark": sb.faults.region_dark(region),
            "app_database": app_db.db_instance_identifier if app_db else None,
            "app_database_region": app_db.region if app_db else None,
        }

    r53: dict = {"record": None, "answer": None, "answer_region": None, "health_checks": []}
    pub = sb.edges.get("public")
    if pub:
        r53["record"] = pub["record_name"]
        zone = route53_backends[account]["aws"].zones.get(pub["zone_id"])
        if zone is not None:
            data, _, chosen, listener = dns.record_answer(sb, account, zone, pub["record_name"],
                                                          pub.get("record_type", "A"))
            r53["answer"] = data[0] if data else None
            r53["answer_data"] = data
            r53["failover"] = getattr(chosen, "failover", None)
            r53["set_identifier"] = getattr(chosen, "set_identifier", None)
            if listener is None and r53["answer"]:
                listener = sb.listeners.by_dns(r53["answer"]) or sb.listeners.by_address(r53["answer"])
            r53["answer_alb"] = listener.dns_name if listener else None
            r53["answer_region"] = listener.region if listener else None
    for hc in list(route53_backends[account]["aws"].health_checks.values()):
        r53["health_checks"].append({"id": hc.id, "target": hc.fqdn or hc.ip_address, "type": hc.type_,
                                     "healthy": sb.health.is_healthy(account, hc)})
    out["route53"] = r53

    cf: dict = {"distribution_id": None}
    cdn = sb.edges.get("cdn") or {}
    dists = cloudfront_backends[account]["aws"].distributions
    dist = dists.get(cdn.get("distribution_id")) if cdn else (next(iter(dists.values())) if len(dists) == 1 else None)
    if dist is not None:
        first = cloudfront.first_origin(dist)
        origins = {o.id: o.domain_name for o in dist.distribution_config.Origins.get("Items", [])}
        # Resolved through the sandbox's DNS, as the cdn edge does: a gated origin's name
        # (seed --gate) leads to whichever frontend ALB Route 53 answers now.
        listener = dns.alb_of(sb, origins.get(first, ""), account) if first else None
        deployed = cloudfront.deployed(dist)
        cf = {"distribution_id": dist.distribution_id, "status": dist.status, "first_origin": first,
              "first_origin_domain": origins.get(first), "first_origin_region": listener.region if listener else None,
              "deployed": deployed is not None}
    out["cloudfront"] = cf
    reach = reachable(sb, account, out)
    out["reachable_regions"] = reach["regions"]
    out["reachable_writers"] = reach["writers"]
    out["split_brain"] = len(reach["writers"]) > 1
    out["route53_api"] = sb.r53limits.describe()
    out["faults"] = [f.public() for f in sb.faults.list()]
    out["edges"] = {"public_url": sb.listeners.public.url, "cdn_url": sb.listeners.cdn.url}
    return out


def launch_templates(account: str, region: str) -> list[dict]:
    """The region's EC2 launch templates, sorted by name: id, name, default and latest version
    numbers, how many versions there are, and the default version's ImageId."""
    from moto.ec2.models import ec2_backends

    # Only look at a backend that exists: indexing ec2_backends would create one (and its
    # default VPC) for a region nothing has touched.
    if region not in ec2_backends[account].keys():
        return []
    out = []
    for t in list(ec2_backends[account][region].launch_templates.values()):
        versions = list(t.versions)
        default = next((v for v in versions if v.number == t.default_version_number), None)
        out.append({"id": t.id, "name": t.name, "default_version": t.default_version_number,
                    "latest_version": versions[-1].number if versions else None, "versions": len(versions),
                    "default_image_id": (default.data or {}).get("ImageId") if default else None})
    return sorted(out, key=lambda t: (t["name"], t["id"]))


def app_database(account: str, region: str):
    """The DB instance the region's app talks to: what the ``db`` CNAME of a private zone
    associated with one of the region's VPCs names (an instance endpoint address), or None."""
    from moto.rds.models import rds_backends
    from moto.route53.models import route53_backends

    targets = []
    for zone in list(route53_backends[account]["aws"].zones.values()):
        if not zone.private_zone or not any(v.get("vpc_region") == region for v in list(zone.vpcs)):
            continue
        for rrset in route53.zone_rrsets(zone):
            if rrset.type == "CNAME" and rrset.name.lower().split(".", 1)[0] == "db":
                targets += [str(r).lower().rstrip(".") for r in rrset.records or []]
    if not targets:
        return None
    for _, _, backend in moto_backends(rds_backends):
        if backend.account_id != account:
            continue
        for db in list(backend.databases.values()):
            if db.address.lower() in targets:
                return db
    return None


def reachable(sb, account: str, state: dict) -> dict:
    """Regions user traffic reaches right now, and the writable databases their apps use.

    Traffic reaches region R's app when R is not dark and R is where Route 53's public answer
    points or where the CloudFront edge sends requests first (the first origin of the last
    completed deployment). A database counts when the app's ``db`` CNAME names it, its own
    region is not dark either, and it is writable (``rds.writable``)."""
    regions = set()
    if state.get("route53", {}).get("answer_region"):
        regions.add(state["route53"]["answer_region"])
    plan = sb.cdn_plan()
    if plan and plan[0]:
        listener = dns.alb_of(sb, plan[0][0][1], account)
        if listener is not None:
            regions.add(listener.region)
    regions = sorted(r for r in regions if not sb.faults.region_dark(r))
    writers = set()
    for region in regions:
        db = app_database(account, region)
        if db is not None and not sb.faults.region_dark(db.region) and rds.writable(db):
            writers.add(db.db_instance_identifier)
    return {"regions": regions, "writers": sorted(writers)}


def health_summary(sb) -> dict:
    """``GET /_sandbox/health``: ARC clusters (endpoints, quorum, control panels, routing
    controls and states), CloudWatch alarms (shown state, the state their data gives, how many
    evaluations ran) and Route 53 health checks (type, status, children / alarm / routing
    control)."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.route53.models import route53_backends

    from . import arc

    account = sb.edges["account"]
    alarms = []
    for acct, region, backend in moto_backends(cloudwatch_backends):
        if acct != account:
            continue
        for a in list(backend.alarms.values()):
            alarms.append({"region": region, "name": a.name, "state": a.state_value,
                           "evaluated": getattr(a, "_sbx_evaluated", None),
                           "evaluations": getattr(a, "_sbx_evaluations", 0), "reason": a.state_reason,
                           "dark": sb.alarms.region_dark(region)})
    checks = []
    for hc in list(route53_backends[account]["aws"].health_checks.values()):
        entry = {"id": hc.id, "type": hc.type_, "healthy": sb.health.is_healthy(account, hc),
                 "inverted": bool(hc.inverted), "disabled": bool(hc.disabled)}
        if hc.type_ == "CALCULATED":
            entry.update(children=list(hc.children or []), health_threshold=hc.health_threshold,
                         healthy_children=sb.health.children_healthy(account, hc))
        elif hc.type_ == "CLOUDWATCH_METRIC":
            entry.update(alarm=getattr(hc, "alarm_identifier", None),
                         insufficient_data_health_status=getattr(hc, "insufficient_data_health_status", None))
        elif hc.type_ == "RECOVERY_CONTROL":
            entry["routing_control_arn"] = getattr(hc, "routing_control_arn", None)
        else:
            entry["target"] = hc.fqdn or hc.ip_address
        checks.append(entry)
    return {"arc": arc.summary(account), "alarms": sorted(alarms, key=lambda a: (a["region"], a["name"])),
            "health_checks": checks}

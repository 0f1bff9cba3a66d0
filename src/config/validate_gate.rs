//! Checks of `route53.gate` and `route53.name_servers`: the gate must be drivable without
//! the primary region or a global control plane, so it says how to reach it by itself.

use super::env::{Environment, Gate};

/// Problems of a gate, each at its key (`at(path, message, hint)`).
pub(super) fn gate_problems(
    env: &Environment,
    g: &Gate,
    at: &mut impl FnMut(&[&str], String, &str),
) {
    let primary = env.primary_region.as_str();
    match (&g.routing_control, &g.alarm) {
        (None, None) | (Some(_), Some(_)) => at(
            &["route53", "gate"],
            "route53.gate needs exactly one of `routing_control` and `alarm`".into(),
            "routing_control: an ARC routing control (arn, cluster_endpoints); alarm: a CloudWatch alarm in the standby region on a metric drctl writes",
        ),
        (Some(rc), None) => {
            if !rc.arn.starts_with("arn:") {
                at(
                    &["route53", "gate", "routing_control", "arn"],
                    format!("route53.gate.routing_control.arn `{}` is not an ARN", rc.arn),
                    "arn:aws:route53-recovery-control::ACCOUNT:controlpanel/ID/routingcontrol/ID",
                );
            }
            let away = rc
                .cluster_endpoints
                .iter()
                .filter(|e| e.region != primary)
                .count();
            if away == 0 {
                at(
                    &["route53", "gate", "routing_control", "cluster_endpoints"],
                    format!(
                        "route53.gate.routing_control.cluster_endpoints has no endpoint outside the primary region {primary}"
                    ),
                    "list the cluster's endpoints (aws route53-recovery-control-config describe-cluster): drctl tries them in turn",
                );
            }
            for e in &rc.cluster_endpoints {
                if !(e.url.starts_with("https://") || e.url.starts_with("http://")) {
                    at(
                        &["route53", "gate", "routing_control", "cluster_endpoints"],
                        format!("cluster endpoint `{}` must be a URL", e.url),
                        "",
                    );
                }
            }
        }
        (None, Some(a)) => {
            if a.region == primary {
                at(
                    &["route53", "gate", "alarm", "region"],
                    format!(
                        "route53.gate.alarm.region is the primary region {primary}: the gate must be closed from outside it"
                    ),
                    "put the alarm and its metric in the standby region",
                );
            }
        }
    }
    if g.calculated_health_check_id == g.gate_health_check_id {
        at(
            &["route53", "gate", "gate_health_check_id"],
            "route53.gate: the gate's health check and the calculated one must differ".into(),
            "the calculated check's children are the primary ALB's check and the gate's check",
        );
    }
}

/// Problems of `route53.name_servers`: `host` or `host:port`.
pub(super) fn name_server_problems(servers: &[String], at: &mut impl FnMut(&[&str], String, &str)) {
    for s in servers {
        let host = match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                if p.parse::<u16>().is_err() {
                    at(
                        &["route53", "name_servers"],
                        format!("name server `{s}`: `{p}` is not a port"),
                        "host or host:port, e.g. ns-123.awsdns-45.com",
                    );
                }
                h
            }
            _ => s.as_str(),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            at(
                &["route53", "name_servers"],
                format!("name server `{s}` is not a host name or address"),
                "host or host:port, e.g. ns-123.awsdns-45.com",
            );
        }
    }
}

//! Route 53's data plane as a user sees it: DNS answers, asked of the hosted zone's name
//! servers directly (or the system resolver when none are configured). Route 53's DNS keeps
//! answering while its control plane (the API, in us-east-1) does not ("AWS Fault Isolation
//! Boundaries", Appendix B), so this is how a statically stable failover proves where the
//! public name points. An alias A record to a load balancer answers the load balancer's
//! addresses, not its name (Route 53 Developer Guide, "Choosing between alias and non-alias
//! records"), so answers are matched by address.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;

use super::{AwsError, AwsResult, ErrorKind};

/// What DNS answered for a name: its addresses, and the names it went through (CNAMEs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsAnswer {
    pub addresses: Vec<String>,
    pub names: Vec<String>,
}

#[async_trait]
pub trait DnsApi: Send + Sync {
    /// The A records of `name` (CNAMEs followed). No such name or no records: an empty answer.
    async fn lookup(&self, name: &str) -> AwsResult<DnsAnswer>;
}

/// DNS through hickory-resolver, without a cache: every answer is the server's now.
pub struct HickoryDns {
    resolver: TokioResolver,
    /// The servers asked, for messages.
    servers: String,
}

impl HickoryDns {
    /// A resolver that asks `servers` (`host` or `host:port`, port 53 by default; host names
    /// are looked up once, here, through the system resolver), or the system's resolver when
    /// `servers` is empty.
    pub async fn new(servers: &[String], timeout: Duration) -> AwsResult<HickoryDns> {
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        let (config, label) = if servers.is_empty() {
            let (c, o) = hickory_resolver::system_conf::read_system_conf().map_err(|e| {
                err(
                    "-",
                    ErrorKind::Other,
                    format!("cannot read the system's resolver configuration: {e}"),
                )
            })?;
            opts.timeout = timeout.min(o.timeout.max(Duration::from_secs(1)));
            (c, "the system resolver".to_string())
        } else {
            let mut c = ResolverConfig::new();
            for s in servers {
                for addr in socket_addrs(s).await? {
                    c.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                    c.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
                }
            }
            (c, servers.join(", "))
        };
        let resolver =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build();
        Ok(HickoryDns {
            resolver,
            servers: label,
        })
    }
}

async fn socket_addrs(server: &str) -> AwsResult<Vec<SocketAddr>> {
    if let Ok(a) = server.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    if let Ok(ip) = server.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, 53)]);
    }
    let with_port = if server
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        server.to_string()
    } else {
        format!("{server}:53")
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map(|a| a.collect())
        .map_err(|e| {
            err(
                server,
                ErrorKind::Unavailable,
                format!("cannot look up name server {server}: {e}"),
            )
        })
}

fn err(server: &str, kind: ErrorKind, message: String) -> AwsError {
    AwsError::local("dns", "Query", server, kind, message)
}

#[async_trait]
impl DnsApi for HickoryDns {
    async fn lookup(&self, name: &str) -> AwsResult<DnsAnswer> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.lookup(fqdn.as_str(), RecordType::A).await {
            Ok(l) => {
                let mut a = DnsAnswer::default();
                for r in l.record_iter() {
                    match r.data() {
                        RData::A(ip) => a.addresses.push(ip.to_string()),
                        RData::CNAME(n) => a
                            .names
                            .push(n.to_utf8().trim_end_matches('.').to_lowercase()),
                        _ => {}
                    }
                }
                a.addresses.sort();
                a.addresses.dedup();
                Ok(a)
            }
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(DnsAnswer::default()),
            Err(e) => {
                let kind = if e.to_string().contains("timed out") {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Unavailable
                };
                Err(err(
                    &self.servers,
                    kind,
                    format!("DNS query for {name} A to {}: {e}", self.servers),
                ))
            }
        }
    }
}

/// Which region a DNS answer points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerRegion {
    Region(String),
    /// No answer, or addresses of neither region's ALBs (or of both).
    Unknown(String),
}

/// Where the public name points now, by DNS: its answer matched against each region's ALB
/// addresses (and names, for a resolver that answers with a CNAME to one).
///
/// The public name is asked of `dns` (the zone's name servers). An ALB's name is not in that
/// zone (it is under `elb.amazonaws.com`), and a zone's authoritative servers refuse names
/// outside it, so each ALB name is asked of `dns` first and then of `fallback` (the system's
/// resolver): one that no resolver answers matches nothing, and its region cannot be told.
pub async fn where_answers(
    env: &crate::config::Environment,
    dns: &dyn DnsApi,
    fallback: Option<&dyn DnsApi>,
) -> AwsResult<(AnswerRegion, Vec<String>)> {
    let Some(r53) = env.route53.as_ref() else {
        return Ok((
            AnswerRegion::Unknown("no `route53` in the environment".into()),
            vec![],
        ));
    };
    let answer = dns.lookup(&r53.record_name).await?;
    let got: BTreeSet<&str> = answer.addresses.iter().map(String::as_str).collect();
    let mut shown: Vec<String> = answer.addresses.clone();
    shown.extend(answer.names.iter().cloned());
    if got.is_empty() && answer.names.is_empty() {
        return Ok((
            AnswerRegion::Unknown(format!("{} has no A records", r53.record_name)),
            shown,
        ));
    }
    let mut matched = vec![];
    for (region, res) in &env.regions {
        let mut theirs = BTreeSet::new();
        let mut names = BTreeSet::new();
        for alb in res.albs.values() {
            names.insert(alb.dns_name.trim_end_matches('.').to_lowercase());
            let mut found = match dns.lookup(&alb.dns_name).await {
                Ok(a) => a.addresses,
                Err(_) => vec![],
            };
            if found.is_empty() {
                if let Some(f) = fallback {
                    found = f
                        .lookup(&alb.dns_name)
                        .await
                        .map(|a| a.addresses)
                        .unwrap_or_default();
                }
            }
            theirs.extend(found);
        }
        let by_address = !got.is_empty() && got.iter().all(|a| theirs.contains(*a));
        let by_name = answer.names.iter().any(|n| names.contains(n));
        if by_address || by_name {
            matched.push(region.clone());
        }
    }
    Ok(match matched.as_slice() {
        [one] => (AnswerRegion::Region(one.clone()), shown),
        [] => (
            AnswerRegion::Unknown(format!(
                "{} answers {}: no region's ALB",
                r53.record_name,
                shown.join(",")
            )),
            shown,
        ),
        _ => (
            AnswerRegion::Unknown(format!(
                "{} answers {}: addresses of more than one region",
                r53.record_name,
                shown.join(",")
            )),
            shown,
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Answers from a table; a name not in it is refused, as a zone's servers refuse a name
    /// outside their zone.
    struct Table(HashMap<&'static str, Vec<&'static str>>);

    #[async_trait]
    impl DnsApi for Table {
        async fn lookup(&self, name: &str) -> AwsResult<DnsAnswer> {
            match self.0.get(name.trim_end_matches('.')) {
                Some(a) => Ok(DnsAnswer {
                    addresses: a.iter().map(|s| s.to_string()).collect(),
                    names: vec![],
                }),
                None => Err(err(
                    "test",
                    ErrorKind::Unavailable,
                    format!("REFUSED {name}"),
                )),
            }
        }
    }

    const FE1: &str = "shop-frontend-use1-1.us-east-1.elb.amazonaws.com";
    const BE1: &str = "shop-backend-use1-1.us-east-1.elb.amazonaws.com";
    const FE2: &str = "shop-frontend-usw2-1.us-west-2.elb.amazonaws.com";
    const BE2: &str = "shop-backend-usw2-1.us-west-2.elb.amazonaws.com";

    fn env() -> crate::config::Environment {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/drctl.yaml.example");
        crate::config::load_env(&p).expect("the example").1
    }

    fn albs() -> HashMap<&'static str, Vec<&'static str>> {
        HashMap::from([
            (FE1, vec!["192.0.2.1", "192.0.2.2"]),
            (BE1, vec!["192.0.2.9"]),
            (FE2, vec!["198.51.100.1", "198.51.100.2"]),
            (BE2, vec!["198.51.100.9"]),
        ])
    }

    #[tokio::test]
    async fn an_answer_is_placed_by_the_addresses_of_one_regions_albs_and_never_guessed() {
        let env = env();
        let name = "api.example.test";
        let case = |answer: Vec<&'static str>| {
            let mut t = albs();
            t.insert(name, answer);
            Table(t)
        };
        let (at, _) = where_answers(&env, &case(vec!["198.51.100.2"]), None)
            .await
            .unwrap();
        assert_eq!(at, AnswerRegion::Region("us-west-2".into()));
        let (at, _) = where_answers(&env, &case(vec!["192.0.2.1", "192.0.2.2"]), None)
            .await
            .unwrap();
        assert_eq!(at, AnswerRegion::Region("us-east-1".into()));
        // An address of neither region, one of each, or nothing: unknown.
        for answer in [
            vec!["203.0.113.7"],
            vec!["192.0.2.1", "198.51.100.1"],
            vec![],
        ] {
            let (at, _) = where_answers(&env, &case(answer.clone()), None)
                .await
                .unwrap();
            assert!(matches!(at, AnswerRegion::Unknown(_)), "{answer:?}: {at:?}");
        }
    }

    #[tokio::test]
    async fn alb_names_outside_the_zone_are_asked_of_the_fallback_resolver() {
        let env = env();
        // The zone's servers know only the public name; the system resolver knows the ALBs.
        let zone = Table(HashMap::from([("api.example.test", vec!["198.51.100.1"])]));
        let (at, _) = where_answers(&env, &zone, None).await.unwrap();
        assert!(
            matches!(at, AnswerRegion::Unknown(_)),
            "no ALB known: {at:?}"
        );
        let system = Table(albs());
        let (at, shown) = where_answers(&env, &zone, Some(&system)).await.unwrap();
        assert_eq!(at, AnswerRegion::Region("us-west-2".into()));
        assert_eq!(shown, ["198.51.100.1"]);
    }
}

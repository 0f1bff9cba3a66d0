//! [`Sdk`]: the AWS SDK for Rust behind the per-service traits. One loader for every client
//! drctl makes (runs, `check`, the watch's Route 53 oracle): credentials from aws-config's
//! default chain (environment, profiles, SSO, IMDS), loaded once and shared, so a run resolves
//! credentials once and not per region; operation and attempt timeouts and standard retries on
//! every call; one SDK client per service per region, built on first use and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use super::{autoscaling, backup, cloudfront, cloudwatch, drill, ec2, elbv2, gate, rds, route53};
use super::{Aws, GLOBAL_REGION};
use crate::config::env::AwsSettings;
use crate::config::env::{AlarmGate, Gate};

/// A cached per-service handle (downcast by [`Sdk::handle`]).
type AnyHandle = Box<dyn std::any::Any + Send + Sync>;

/// AWS through the SDK: settings now, clients lazily.
#[derive(Debug, Default)]
pub struct Sdk {
    pub settings: AwsSettings,
    base: tokio::sync::OnceCell<SdkConfig>,
    handles: Mutex<HashMap<(&'static str, String), AnyHandle>>,
}

impl Sdk {
    pub fn new(settings: AwsSettings) -> Self {
        Self {
            settings,
            base: tokio::sync::OnceCell::new(),
            handles: Mutex::new(HashMap::new()),
        }
    }

    /// The shared configuration: credentials chain, profile, endpoint, timeouts, retries.
    async fn base(&self) -> &SdkConfig {
        self.base
            .get_or_init(|| async {
                let s = &self.settings;
                // The loader's region is the one the credential providers call STS in
                // (assume-role profiles, web identity): never us-east-1 by default. Each
                // client's own region is set per handle.
                let sts = Region::new(
                    s.sts_region
                        .clone()
                        .unwrap_or_else(|| GLOBAL_REGION.to_string()),
                );
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(sts.clone())
                    .timeout_config(
                        TimeoutConfig::builder()
                            .operation_timeout(s.operation_timeout)
                            .operation_attempt_timeout(s.attempt_timeout)
                            .connect_timeout(
                                s.attempt_timeout.min(std::time::Duration::from_secs(5)),
                            )
                            .build(),
                    )
                    .retry_config(RetryConfig::standard().with_max_attempts(s.max_attempts.max(1)));
                if let Some(p) = &s.profile {
                    // A profile asked for by name is the credentials, not one link of the
                    // default chain: keys in the environment must not quietly win over it, and
                    // a profile that does not exist must fail the credentials check.
                    loader = loader.profile_name(p).credentials_provider(
                        aws_config::profile::ProfileFileCredentialsProvider::builder()
                            .profile_name(p)
                            .configure(
                                &aws_config::provider_config::ProviderConfig::without_region()
                                    .with_region(Some(sts)),
                            )
                            .build(),
                    );
                }
                if let Some(e) = &s.endpoint_url {
                    loader = loader.endpoint_url(e);
                }
                loader.load().await
            })
            .await
    }

    /// One handle per service per region, built on first use and kept for the process.
    async fn handle<H: ?Sized + Send + Sync + 'static>(
        &self,
        service: &'static str,
        region: &str,
        build: impl FnOnce(&SdkConfig, Region) -> Arc<H>,
    ) -> Arc<H> {
        let key = (service, region.to_string());
        if let Some(h) = self
            .handles
            .lock()
            .expect("handles lock")
            .get(&key)
            .and_then(|b| b.downcast_ref::<Arc<H>>())
        {
            return h.clone();
        }
        let base = self.base().await;
        let h = build(base, Region::new(region.to_string()));
        self.handles
            .lock()
            .expect("handles lock")
            .entry(key)
            .or_insert_with(|| Box::new(h.clone()));
        h
    }
}

/// A DynamoDB client for drctl's own state table (journals, the lease): the same credentials
/// chain and retries as every client, in the table's region, at `endpoint` if given, each call
/// bounded by `timeout`. The crash-test hook is not on it: a state write is not one of the
/// run's AWS side effects, which the crash test counts.
pub async fn state_client(
    settings: &AwsSettings,
    region: &str,
    endpoint: Option<&str>,
    timeout: std::time::Duration,
) -> aws_sdk_dynamodb::Client {
    let sdk = Sdk::new(settings.clone());
    let base = sdk.base().await;
    let mut b = aws_sdk_dynamodb::config::Builder::from(base)
        .region(Region::new(region.to_string()))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(timeout)
                .operation_attempt_timeout(timeout.min(settings.attempt_timeout).max(timeout / 3))
                .connect_timeout(timeout.min(std::time::Duration::from_secs(3)))
                .build(),
        );
    if let Some(e) = endpoint {
        b = b.endpoint_url(e);
    }
    aws_sdk_dynamodb::Client::from_conf(b.build())
}

/// `Client::from_conf` for an SDK crate, in `region` (with the crash-test hook when it is set).
macro_rules! client {
    ($krate:ident, $base:expr, $region:expr) => {{
        let mut b = $krate::config::Builder::from($base).region($region);
        if let Some(h) = crash_hook::armed() {
            b = b.interceptor(h);
        }
        $krate::Client::from_conf(b.build())
    }};
}

/// Crash-test hook: `DRCTL_TEST_KILL_AFTER_MUTATING_CALL=N` makes the process SIGKILL itself as
/// soon as the answer to its Nth successful mutating AWS call arrives, before drctl has read it
/// or journaled anything about it: the side effect happened and drctl does not know. The crash
/// test against the sandbox kills the failover there for every N. A call mutates unless its
/// operation is a read (Describe*, List*, Get*, ...), the rule the sandbox's call log uses, so
/// the two count the same calls. Inert unless the variable is set.
mod crash_hook {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::orchestrator::Metadata;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::ConfigBag;

    const READS: [&str; 7] = [
        "Describe", "List", "Get", "BatchGet", "Search", "Lookup", "Head",
    ];
    static SEEN: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug)]
    pub struct KillAfter(usize);

    pub fn armed() -> Option<KillAfter> {
        static AT: OnceLock<Option<usize>> = OnceLock::new();
        AT.get_or_init(|| {
            std::env::var("DRCTL_TEST_KILL_AFTER_MUTATING_CALL")
                .ok()
                .and_then(|v| v.parse().ok())
        })
        .map(KillAfter)
    }

    fn mutates(op: &str) -> bool {
        op != "TestDNSAnswer"
            && !READS.iter().any(|p| {
                op.strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
            })
    }

    impl Intercept for KillAfter {
        fn name(&self) -> &'static str {
            "drctl-crash-test-kill-after-mutating-call"
        }

        fn read_before_deserialization(
            &self,
            ctx: &BeforeDeserializationInterceptorContextRef<'_>,
            _rc: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let ok = ctx.response().status().is_success();
            let op = cfg.load::<Metadata>().map(|m| m.name().to_string());
            if ok && op.as_deref().is_some_and(mutates) {
                let n = SEEN.fetch_add(1, Ordering::SeqCst) + 1;
                if n == self.0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::this(),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            Ok(())
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn reads_are_the_sandbox_call_logs_reads() {
            for op in [
                "DescribeDBInstances",
                "ListResourceRecordSets",
                "GetDistribution",
                "GetCallerIdentity",
                "TestDNSAnswer",
            ] {
                assert!(!super::mutates(op), "{op}");
            }
            for op in [
                "PromoteReadReplica",
                "ModifyDBParameterGroup",
                "UpdateDistribution",
                "ChangeResourceRecordSets",
                "CreateLaunchTemplateVersion",
                "Listen",
                "Getaway",
            ] {
                assert!(super::mutates(op), "{op}");
            }
        }
    }
}

#[async_trait]
impl Aws for Sdk {
    async fn rds(&self, region: &str) -> Arc<dyn rds::RdsApi> {
        self.handle("rds", region, |b, r| {
            Arc::new(rds::SdkRds {
                c: client!(aws_sdk_rds, b, r),
                region: region.to_string(),
            }) as Arc<dyn rds::RdsApi>
        })
        .await
    }

    async fn cloudwatch(&self, region: &str) -> Arc<dyn cloudwatch::CloudWatchApi> {
        self.handle("cloudwatch", region, |b, r| {
            Arc::new(cloudwatch::SdkCloudWatch {
                c: client!(aws_sdk_cloudwatch, b, r),
                region: region.to_string(),
            }) as Arc<dyn cloudwatch::CloudWatchApi>
        })
        .await
    }

    async fn route53(&self) -> Arc<dyn route53::Route53Api> {
        self.handle("route53", GLOBAL_REGION, |b, r| {
            Arc::new(route53::SdkRoute53 {
                c: client!(aws_sdk_route53, b, r),
            }) as Arc<dyn route53::Route53Api>
        })
        .await
    }

    async fn cloudfront(&self) -> Arc<dyn cloudfront::CloudFrontApi> {
        self.handle("cloudfront", GLOBAL_REGION, |b, r| {
            Arc::new(cloudfront::SdkCloudFront {
                c: client!(aws_sdk_cloudfront, b, r),
            }) as Arc<dyn cloudfront::CloudFrontApi>
        })
        .await
    }

    async fn backup(&self, region: &str) -> Arc<dyn backup::BackupApi> {
        self.handle("backup", region, |b, r| {
            Arc::new(backup::SdkBackup {
                c: client!(aws_sdk_backup, b, r),
                region: region.to_string(),
            }) as Arc<dyn backup::BackupApi>
        })
        .await
    }

    async fn ec2(&self, region: &str) -> Arc<dyn ec2::Ec2Api> {
        self.handle("ec2", region, |b, r| {
            Arc::new(ec2::SdkEc2 {
                c: client!(aws_sdk_ec2, b, r),
                region: region.to_string(),
            }) as Arc<dyn ec2::Ec2Api>
        })
        .await
    }

    async fn autoscaling(&self, region: &str) -> Arc<dyn autoscaling::AutoScalingApi> {
        self.handle("autoscaling", region, |b, r| {
            Arc::new(autoscaling::SdkAutoScaling {
                c: client!(aws_sdk_autoscaling, b, r),
                region: region.to_string(),
            }) as Arc<dyn autoscaling::AutoScalingApi>
        })
        .await
    }

    async fn identity(&self, region: &str) -> super::AwsResult<super::CallerIdentity> {
        let sts = client!(
            aws_sdk_sts,
            self.base().await,
            Region::new(region.to_string())
        );
        let out = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(super::sdk_err!("sts", "GetCallerIdentity", region))?;
        Ok(super::CallerIdentity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
            user_id: out.user_id().unwrap_or_default().to_string(),
        })
    }

    async fn elbv2(&self, region: &str) -> Arc<dyn elbv2::Elbv2Api> {
        self.handle("elbv2", region, |b, r| {
            Arc::new(elbv2::SdkElbv2 {
                c: client!(aws_sdk_elasticloadbalancingv2, b, r),
                region: region.to_string(),
            }) as Arc<dyn elbv2::Elbv2Api>
        })
        .await
    }

    async fn gate(&self, gate: &Gate, primary_region: &str) -> Arc<dyn gate::GateApi> {
        if let Some(rc) = &gate.routing_control {
            // One client per cluster endpoint, with that endpoint's URL and region: ARC's data
            // plane is served only there (CreateCluster API reference, ClusterEndpoints).
            return self
                .handle("route53-recovery-cluster", &rc.arn, |b, _| {
                    let endpoints = gate::SdkRoutingControl::order(rc, primary_region)
                        .into_iter()
                        .map(|(region, url)| {
                            let mut c = aws_sdk_route53recoverycluster::config::Builder::from(b)
                                .region(Region::new(region.clone()))
                                .endpoint_url(url);
                            if let Some(h) = crash_hook::armed() {
                                c = c.interceptor(h);
                            }
                            (
                                region,
                                aws_sdk_route53recoverycluster::Client::from_conf(c.build()),
                            )
                        })
                        .collect();
                    Arc::new(gate::SdkRoutingControl {
                        arn: rc.arn.clone(),
                        endpoints,
                    }) as Arc<dyn gate::GateApi>
                })
                .await;
        }
        let alarm = gate.alarm.clone().unwrap_or_else(|| AlarmGate {
            region: primary_region.to_string(),
            name: String::new(),
            namespace: String::new(),
            metric: String::new(),
            dimensions: Default::default(),
        });
        let key = format!("{}/{}", alarm.region, alarm.name);
        self.handle("gate-alarm", &key, |b, _| {
            let r = Region::new(alarm.region.clone());
            Arc::new(gate::SdkAlarmGate {
                c: client!(aws_sdk_cloudwatch, b, r),
                gate: alarm.clone(),
            }) as Arc<dyn gate::GateApi>
        })
        .await
    }

    async fn drill(&self, region: &str) -> Arc<dyn drill::DrillApi> {
        self.handle("drill", region, |b, r| {
            Arc::new(drill::SdkDrill {
                rds: client!(aws_sdk_rds, b, r.clone()),
                ec2: client!(aws_sdk_ec2, b, r.clone()),
                elb: client!(aws_sdk_elasticloadbalancingv2, b, r),
                region: region.to_string(),
            }) as Arc<dyn drill::DrillApi>
        })
        .await
    }
}

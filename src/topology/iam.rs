//! The IAM actions of drctl's own reads: the observation every command starts from (`status`,
//! the preflights of `failover`, `fence`, `reprotect`, `failback`), `check`'s and the
//! readiness drill's checks, and the look for drill leftovers. Steps name what they call on
//! the kind (`Step::iam`); these are the reads around them, so `drctl iam-policy` prints a
//! policy the whole command runs with (proven with the sandbox enforcing IAM,
//! tests/iam_enforced.rs).
//!
//! All are read-only Describe/Get/List actions granted on `*`: most take no resource-level
//! permissions at all (EC2, Elastic Load Balancing and Auto Scaling Describe*, CloudWatch
//! GetMetricStatistics, Route 53 TestDNSAnswer: Service Authorization Reference), and the
//! rest read instances, groups and plans drctl finds by tag or from AWS's answers, not only
//! by the names in drctl.yaml. `sts:GetCallerIdentity` needs no permission (STS API
//! reference).

use crate::config::env::Environment;

const READS: &[&str] = &[
    "autoscaling:DescribeAutoScalingGroups",
    "backup:DescribeBackupVault",
    "backup:DescribeCopyJob",
    "backup:GetBackupPlan",
    "backup:ListCopyJobs",
    "backup:ListRecoveryPointsByBackupVault",
    "cloudfront:GetDistribution",
    "cloudfront:GetDistributionConfig",
    "cloudwatch:GetMetricStatistics",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeLaunchTemplates",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "rds:DescribeDBInstances",
    "rds:DescribeDBParameters",
    "rds:DescribeDBSnapshots",
    "route53:GetChange",
    "route53:GetHealthCheck",
    "route53:GetHealthCheckStatus",
    "route53:ListResourceRecordSets",
    "route53:TestDNSAnswer",
];

/// (action, resource) for every read drctl makes outside its steps in `env`: the list above,
/// and the failover gate's reads when drctl.yaml has one.
pub fn reads(env: &Environment) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = READS.iter().map(|a| (*a, "*".into())).collect();
    if let Some(g) = env.route53.as_ref().and_then(|r| r.gate.as_ref()) {
        if let Some(rc) = &g.routing_control {
            out.push((
                "route53-recovery-cluster:GetRoutingControlState",
                rc.arn.clone(),
            ));
        }
        if g.alarm.is_some() {
            out.push(("cloudwatch:DescribeAlarms", "*".into()));
        }
    }
    out
}

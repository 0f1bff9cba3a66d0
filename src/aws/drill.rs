//! What game-day drills call, in one narrow trait per region: restore a database from a
//! snapshot, launch and terminate instances, give them a target group and a listener, and
//! find everything a drill tagged. Drill resources carry [`DRILL_TAG`] = the run id, so a
//! crash never leaves anything that `drctl drill cleanup` cannot find.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::rds::RdsApi as _;
use super::{sdk_err, AwsError, AwsResult, ErrorKind};

/// The tag every drill resource carries: the drill's run id.
pub const DRILL_TAG: &str = "drctl:drill";
/// The tag naming the environment the drill belongs to.
pub const DRILL_ENV_TAG: &str = "drctl:environment";

pub type Tags = BTreeMap<String, String>;

/// The name of a drill's resources: `drill-<run id>` in the characters every AWS name takes
/// (target groups: letters, digits, hyphens, at most 32; DB instances also start with a letter
/// and never hold two hyphens in a row).
pub fn resource_name(run_id: &str) -> String {
    let mut name = String::from("drill-");
    for c in run_id.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    name.truncate(32);
    name.trim_end_matches('-').to_string()
}

/// The tags of a drill's resources.
pub fn tags(run_id: &str, env: &str) -> Tags {
    Tags::from([
        (DRILL_TAG.to_string(), run_id.to_string()),
        (DRILL_ENV_TAG.to_string(), env.to_string()),
        ("Name".to_string(), resource_name(run_id)),
    ])
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub id: String,
    pub arn: String,
    pub status: String,
    /// `manual`, `automated`, `awsbackup`.
    pub kind: String,
    /// Seconds since the epoch.
    pub created: Option<i64>,
    pub tags: Tags,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Instance {
    pub id: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, ...
    pub state: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadBalancer {
    pub arn: String,
    pub vpc_id: String,
    pub dns_name: String,
}

/// A target group or listener with its tags.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tagged {
    pub arn: String,
    pub tags: Tags,
}

/// A database restored from a snapshot for a drill.
#[derive(Debug, Clone)]
pub struct Restore<'a> {
    pub id: &'a str,
    pub snapshot_id: &'a str,
    /// The instance the snapshot is of: the copy goes into its subnet group and security
    /// groups (not the account's default VPC), and is never publicly accessible.
    pub network_of: &'a str,
    pub instance_class: Option<&'a str>,
    pub tags: &'a Tags,
}

/// Instances to launch for a drill.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    pub image_id: &'a str,
    /// The network, type and security groups come from this template's default version.
    pub launch_template_id: &'a str,
    pub count: u32,
    pub user_data: &'a str,
    /// EC2 answers a repeated token with the instances it already launched.
    pub client_token: &'a str,
    pub tags: &'a Tags,
}

/// The calls a drill makes in one region.
#[async_trait]
pub trait DrillApi: Send + Sync {
    /// Snapshots of `instance_id` (manual, automated and AWS Backup's), or every snapshot.
    async fn snapshots(&self, instance_id: Option<&str>) -> AwsResult<Vec<Snapshot>>;
    async fn create_snapshot(
        &self,
        instance_id: &str,
        snapshot_id: &str,
        tags: &Tags,
    ) -> AwsResult<()>;
    async fn delete_snapshot(&self, snapshot_id: &str) -> AwsResult<()>;
    async fn restore(&self, r: &Restore<'_>) -> AwsResult<()>;
    /// Every DB instance in the region: id, status, endpoint and tags.
    async fn db_instances(&self) -> AwsResult<Vec<crate::aws::rds::DbInstance>>;
    /// Delete a DB instance without a final snapshot (a drill's copy holds nothing to keep).
    async fn delete_db_instance(&self, id: &str) -> AwsResult<()>;
    /// Instances carrying tag `key` (with `value` when given), terminated ones included.
    async fn instances_tagged(&self, key: &str, value: Option<&str>) -> AwsResult<Vec<Instance>>;
    /// Launch instances; returns their ids.
    async fn launch(&self, l: &Launch<'_>) -> AwsResult<Vec<String>>;
    async fn terminate(&self, ids: &[String]) -> AwsResult<()>;
    async fn load_balancer(&self, arn: &str) -> AwsResult<LoadBalancer>;
    /// Create an HTTP target group for instances on port 80; returns its ARN.
    async fn create_target_group(&self, name: &str, vpc_id: &str, tags: &Tags)
        -> AwsResult<String>;
    async fn register(&self, target_group_arn: &str, ids: &[String]) -> AwsResult<()>;
    /// An HTTP listener forwarding to a target group; returns its ARN.
    async fn create_listener(
        &self,
        load_balancer_arn: &str,
        port: u16,
        target_group_arn: &str,
        tags: &Tags,
    ) -> AwsResult<String>;
    async fn delete_listener(&self, arn: &str) -> AwsResult<()>;
    async fn delete_target_group(&self, arn: &str) -> AwsResult<()>;
    /// Every target group in the region, with its tags.
    async fn target_groups(&self) -> AwsResult<Vec<Tagged>>;
    /// The listeners of a load balancer, with their tags.
    async fn listeners(&self, load_balancer_arn: &str) -> AwsResult<Vec<Tagged>>;
}

/// For clients that do not drill (the in-process fakes): every call is refused.
pub struct Unsupported;

fn unsupported<T>(op: &'static str) -> AwsResult<T> {
    Err(AwsError::local(
        "drill",
        op,
        "-",
        ErrorKind::Other,
        "this AWS client does not support drills",
    ))
}

#[async_trait]
impl DrillApi for Unsupported {
    async fn snapshots(&self, _: Option<&str>) -> AwsResult<Vec<Snapshot>> {
        unsupported("DescribeDBSnapshots")
    }
    async fn create_snapshot(&self, _: &str, _: &str, _: &Tags) -> AwsResult<()> {
        unsupported("CreateDBSnapshot")
    }
    async fn delete_snapshot(&self, _: &str) -> AwsResult<()> {
        unsupported("DeleteDBSnapshot")
    }
    async fn restore(&self, _: &Restore<'_>) -> AwsResult<()> {
        unsupported("RestoreDBInstanceFromDBSnapshot")
    }
    async fn db_instances(&self) -> AwsResult<Vec<crate::aws::rds::DbInstance>> {
        unsupported("DescribeDBInstances")
    }
    async fn delete_db_instance(&self, _: &str) -> AwsResult<()> {
        unsupported("DeleteDBInstance")
    }
    async fn instances_tagged(&self, _: &str, _: Option<&str>) -> AwsResult<Vec<Instance>> {
        unsupported("DescribeInstances")
    }
    async fn launch(&self, _: &Launch<'_>) -> AwsResult<Vec<String>> {
        unsupported("RunInstances")
    }
    async fn terminate(&self, _: &[String]) -> AwsResult<()> {
        unsupported("TerminateInstances")
    }
    async fn load_balancer(&self, _: &str) -> AwsResult<LoadBalancer> {
        unsupported("DescribeLoadBalancers")
    }
    async fn create_target_group(&self, _: &str, _: &str, _: &Tags) -> AwsResult<String> {
        unsupported("CreateTargetGroup")
    }
    async fn register(&self, _: &str, _: &[String]) -> AwsResult<()> {
        unsupported("RegisterTargets")
    }
    async fn create_listener(&self, _: &str, _: u16, _: &str, _: &Tags) -> AwsResult<String> {
        unsupported("CreateListener")
    }
    async fn delete_listener(&self, _: &str) -> AwsResult<()> {
        unsupported("DeleteListener")
    }
    async fn delete_target_group(&self, _: &str) -> AwsResult<()> {
        unsupported("DeleteTargetGroup")
    }
    async fn target_groups(&self) -> AwsResult<Vec<Tagged>> {
        unsupported("DescribeTargetGroups")
    }
    async fn listeners(&self, _: &str) -> AwsResult<Vec<Tagged>> {
        unsupported("DescribeListeners")
    }
}

#[derive(Debug, Clone)]
pub struct SdkDrill {
    pub(crate) rds: aws_sdk_rds::Client,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub region: String,
}

fn rds_tags(tags: &Tags) -> Vec<aws_sdk_rds::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
        .collect()
}

fn elb_tags(tags: &Tags) -> Vec<aws_sdk_elasticloadbalancingv2::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect()
}

fn snapshot(s: &aws_sdk_rds::types::DbSnapshot) -> Snapshot {
    Snapshot {
        id: s.db_snapshot_identifier().unwrap_or_default().to_string(),
        arn: s.db_snapshot_arn().unwrap_or_default().to_string(),
        status: s.status().unwrap_or("unknown").to_string(),
        kind: s.snapshot_type().unwrap_or("manual").to_string(),
        created: s.snapshot_create_time().map(|t| t.secs()),
        tags: s
            .tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect(),
    }
}

impl SdkDrill {
    async fn describe_tags(&self, arns: Vec<String>) -> AwsResult<BTreeMap<String, Tags>> {
        let mut out = BTreeMap::new();
        // DescribeTags takes at most 20 ARNs.
        for chunk in arns.chunks(20) {
            let r = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(sdk_err!("elbv2", "DescribeTags", self.region))?;
            for d in r.tag_descriptions() {
                let tags = d
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))
                    })
                    .collect();
                out.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl DrillApi for SdkDrill {
    async fn snapshots(&self, instance_id: Option<&str>) -> AwsResult<Vec<Snapshot>> {
        let mut all = Vec::new();
        // Without a type, DescribeDBSnapshots answers manual and automated ones; AWS Backup's
        // are asked for by name.
        for kind in [None, Some("awsbackup")] {
            let mut marker = None;
            loop {
                let out = self
                    .rds
                    .describe_db_snapshots()
                    .set_db_instance_identifier(instance_id.map(String::from))
                    .set_snapshot_type(kind.map(String::from))
                    .set_marker(marker.take())
                    .send()
                    .await
                    .map_err(sdk_err!("rds", "DescribeDBSnapshots", self.region))?;
                all.extend(out.db_snapshots().iter().map(snapshot));
                match out.marker() {
                    Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                    _ => break,
                }
            }
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all.dedup_by(|a, b| a.id == b.id);
        Ok(all)
    }

    async fn create_snapshot(
        &self,
        instance_id: &str,
        snapshot_id: &str,
        tags: &Tags,
    ) -> AwsResult<()> {
        self.rds
            .create_db_snapshot()
            .db_instance_identifier(instance_id)
            .db_snapshot_identifier(snapshot_id)
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .map_err(sdk_err!("rds", "CreateDBSnapshot", self.region))?;
        Ok(())
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> AwsResult<()> {
        self.rds
            .delete_db_snapshot()
            .db_snapshot_identifier(snapshot_id)
            .send()
            .await
            .map_err(sdk_err!("rds", "DeleteDBSnapshot", self.region))?;
        Ok(())
    }

    async fn restore(&self, r: &Restore<'_>) -> AwsResult<()> {
        let src = self
            .rds
            .describe_db_instances()
            .db_instance_identifier(r.network_of)
            .send()
            .await
            .map_err(sdk_err!("rds", "DescribeDBInstances", self.region))?;
        let src = src.db_instances().first();
        let subnet_group = src
            .and_then(|d| d.db_subnet_group())
            .and_then(|g| g.db_subnet_group_name())
            .map(String::from);
        let security_groups: Vec<String> = src
            .map(|d| {
                d.vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        self.rds
            .restore_db_instance_from_db_snapshot()
            .db_instance_identifier(r.id)
            .db_snapshot_identifier(r.snapshot_id)
            .set_db_subnet_group_name(subnet_group)
            .set_vpc_security_group_ids((!security_groups.is_empty()).then_some(security_groups))
            .publicly_accessible(false)
            .set_db_instance_class(r.instance_class.map(String::from))
            .set_tags(Some(rds_tags(r.tags)))
            .send()
            .await
            .map_err(sdk_err!(
                "rds",
                "RestoreDBInstanceFromDBSnapshot",
                self.region
            ))?;
        Ok(())
    }

    async fn db_instances(&self) -> AwsResult<Vec<crate::aws::rds::DbInstance>> {
        crate::aws::rds::SdkRds {
            c: self.rds.clone(),
            region: self.region.clone(),
        }
        .instances()
        .await
    }

    async fn delete_db_instance(&self, id: &str) -> AwsResult<()> {
        crate::aws::rds::SdkRds {
            c: self.rds.clone(),
            region: self.region.clone(),
        }
        .delete(id)
        .await
    }

    async fn instances_tagged(&self, key: &str, value: Option<&str>) -> AwsResult<Vec<Instance>> {
        use aws_sdk_ec2::types::Filter;
        let filter = match value {
            Some(v) => Filter::builder()
                .name(format!("tag:{key}"))
                .values(v)
                .build(),
            None => Filter::builder().name("tag-key").values(key).build(),
        };
        let mut all = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .ec2
                .describe_instances()
                .filters(filter.clone())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(sdk_err!("ec2", "DescribeInstances", self.region))?;
            for i in out.reservations().iter().flat_map(|r| r.instances()) {
                all.push(Instance {
                    id: i.instance_id().unwrap_or_default().to_string(),
                    state: i
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_default(),
                    tags: i
                        .tags()
                        .iter()
                        .filter_map(|t| {
                            Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))
                        })
                        .collect(),
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(all)
    }

    async fn launch(&self, l: &Launch<'_>) -> AwsResult<Vec<String>> {
        use aws_sdk_ec2::types::{
            LaunchTemplateSpecification, ResourceType, Tag, TagSpecification,
        };
        let tags: Vec<Tag> = l
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let spec = |rt: ResourceType| {
            TagSpecification::builder()
                .resource_type(rt)
                .set_tags(Some(tags.clone()))
                .build()
        };
        let n = l.count.max(1) as i32;
        let out = self
            .ec2
            .run_instances()
            .image_id(l.image_id)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(l.launch_template_id)
                    .version("$Default")
                    .build(),
            )
            .min_count(n)
            .max_count(n)
            .user_data(aws_smithy_types::base64::encode(l.user_data))
            .client_token(l.client_token)
            .tag_specifications(spec(ResourceType::Instance))
            .tag_specifications(spec(ResourceType::Volume))
            .send()
            .await
            .map_err(sdk_err!("ec2", "RunInstances", self.region))?;
        Ok(out
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(String::from))
            .collect())
    }

    async fn terminate(&self, ids: &[String]) -> AwsResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.ec2
            .terminate_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(sdk_err!("ec2", "TerminateInstances", self.region))?;
        Ok(())
    }

    async fn load_balancer(&self, arn: &str) -> AwsResult<LoadBalancer> {
        let out = self
            .elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .map_err(sdk_err!("elbv2", "DescribeLoadBalancers", self.region))?;
        let lb = out.load_balancers().first().ok_or_else(|| {
            AwsError::local(
                "elbv2",
                "DescribeLoadBalancers",
                &self.region,
                ErrorKind::NotFound,
                format!("no load balancer {arn}"),
            )
        })?;
        Ok(LoadBalancer {
            arn: arn.to_string(),
            vpc_id: lb.vpc_id().unwrap_or_default().to_string(),
            dns_name: lb.dns_name().unwrap_or_default().to_string(),
        })
    }

    async fn create_target_group(
        &self,
        name: &str,
        vpc_id: &str,
        tags: &Tags,
    ) -> AwsResult<String> {
        use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};
        let out = self
            .elb
            .create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Http)
            .port(80)
            .vpc_id(vpc_id)
            .target_type(TargetTypeEnum::Instance)
            .health_check_path("/health")
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await
            .map_err(sdk_err!("elbv2", "CreateTargetGroup", self.region))?;
        out.target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .map(String::from)
            .ok_or_else(|| {
                AwsError::local(
                    "elbv2",
                    "CreateTargetGroup",
                    &self.region,
                    ErrorKind::Other,
                    "answer has no target group",
                )
            })
    }

    async fn register(&self, target_group_arn: &str, ids: &[String]) -> AwsResult<()> {
        use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
        let targets = ids
            .iter()
            .map(|id| TargetDescription::builder().id(id).build())
            .collect();
        self.elb
            .register_targets()
            .target_group_arn(target_group_arn)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(sdk_err!("elbv2", "RegisterTargets", self.region))?;
        Ok(())
    }

    async fn create_listener(
        &self,
        load_balancer_arn: &str,
        port: u16,
        target_group_arn: &str,
        tags: &Tags,
    ) -> AwsResult<String> {
        use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
        let action = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(target_group_arn)
            .build();
        let out = self
            .elb
            .create_listener()
            .load_balancer_arn(load_balancer_arn)
            .protocol(ProtocolEnum::Http)
            .port(i32::from(port))
            .default_actions(action)
            .set_tags(Some(elb_tags(tags)))
            .send()
            .await
            .map_err(sdk_err!("elbv2", "CreateListener", self.region))?;
        out.listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .map(String::from)
            .ok_or_else(|| {
                AwsError::local(
                    "elbv2",
                    "CreateListener",
                    &self.region,
                    ErrorKind::Other,
                    "answer has no listener",
                )
            })
    }

    async fn delete_listener(&self, arn: &str) -> AwsResult<()> {
        self.elb
            .delete_listener()
            .listener_arn(arn)
            .send()
            .await
            .map_err(sdk_err!("elbv2", "DeleteListener", self.region))?;
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> AwsResult<()> {
        self.elb
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(sdk_err!("elbv2", "DeleteTargetGroup", self.region))?;
        Ok(())
    }

    async fn target_groups(&self) -> AwsResult<Vec<Tagged>> {
        let mut arns = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .elb
                .describe_target_groups()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(sdk_err!("elbv2", "DescribeTargetGroups", self.region))?;
            arns.extend(
                out.target_groups()
                    .iter()
                    .filter_map(|t| t.target_group_arn().map(String::from)),
            );
            match out.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        let mut tags = self.describe_tags(arns.clone()).await?;
        Ok(arns
            .into_iter()
            .map(|arn| Tagged {
                tags: tags.remove(&arn).unwrap_or_default(),
                arn,
            })
            .collect())
    }

    async fn listeners(&self, load_balancer_arn: &str) -> AwsResult<Vec<Tagged>> {
        let out = self
            .elb
            .describe_listeners()
            .load_balancer_arn(load_balancer_arn)
            .send()
            .await
            .map_err(sdk_err!("elbv2", "DescribeListeners", self.region))?;
        let arns: Vec<String> = out
            .listeners()
            .iter()
            .filter_map(|l| l.listener_arn().map(String::from))
            .collect();
        let mut tags = self.describe_tags(arns.clone()).await?;
        Ok(arns
            .into_iter()
            .map(|arn| Tagged {
                tags: tags.remove(&arn).unwrap_or_default(),
                arn,
            })
            .collect())
    }
}

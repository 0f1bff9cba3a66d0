//! The deployment the kind tests run against, shaped like the sandbox's seed
//! (`sandbox/drsandbox/seed.py`): us-east-1 the primary, us-west-2 the warm standby. [`seed`]
//! puts it into a [`FakeAws`]; [`env_yaml`] is its environment file.

use crate::aws::backup::CopyJob;
use crate::aws::fake::{FakeAws, FakeCopy};
use crate::aws::route53::Record;

pub const PRIMARY: &str = "us-east-1";
pub const STANDBY: &str = "us-west-2";
pub const ACCOUNT: &str = "123456789012";
pub const TIERS: [&str; 2] = ["frontend", "backend"];

/// The DB parameter group each region's instance uses (read_only = 0), as the sandbox names it.
pub const PARAMS: &str = "shop-mysql";
/// The sandbox's read-only group, kept for people fencing by hand; drctl does not use it.
pub const READONLY_PARAMS: &str = "shop-mysql-readonly";
/// The standby replica's ReplicaLag datapoint, seconds.
pub const STANDBY_LAG: f64 = 2.0;

pub const DB_RECORD: &str = "db.shop.internal.";
pub const PUBLIC_ZONE: &str = "Z0PUBLICEXAMPLE";
pub const API_RECORD: &str = "api.example.test.";
pub const HEALTH_CHECK: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

pub const DISTRIBUTION: &str = "E2FAKEDIST0001";
pub const ORIGIN_GROUP: &str = "shop-frontend-group";
pub const ORIGIN_PRIMARY: &str = "primary-frontend";
pub const ORIGIN_STANDBY: &str = "standby-frontend";

pub const PLAN: &str = "0d5e0000-plan-shop-dr";
pub const ROLE_ARN: &str =
    "arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole";
/// What the primary's launch templates run.
pub const AMI_BASE: &str = "ami-0base00000000000001";
/// Yesterday's backup of a primary instance, already copied to the standby (`AMI_COPY_NEW`).
pub const AMI_BACKUP_OLD: &str = "ami-0use1backup0000001";
/// Today's backup, not copied yet: what `backup.copy_recovery_point` copies.
pub const AMI_BACKUP_NEW: &str = "ami-0use1backup0000002";
/// An older copy in the standby vault: what the standby launch templates run.
pub const AMI_COPY_OLD: &str = "ami-0usw2copy000000001";
/// The newest copy in the standby vault: what `ec2.latest_image` finds.
pub const AMI_COPY_NEW: &str = "ami-0usw2copy000000002";

pub fn short(region: &str) -> &'static str {
    if region == PRIMARY {
        "use1"
    } else {
        "usw2"
    }
}
pub fn db_id(region: &str) -> String {
    format!("shop-db-{}", short(region))
}
pub fn db_arn(region: &str) -> String {
    format!("arn:aws:rds:{region}:{ACCOUNT}:db:{}", db_id(region))
}
/// The endpoint the fake gives an instance.
pub fn db_endpoint(region: &str) -> String {
    format!("{}.fake.{region}.rds.amazonaws.com", db_id(region))
}
pub fn private_zone(region: &str) -> String {
    format!("Z0PRIVATE{}", short(region).to_uppercase())
}
pub fn vault(region: &str) -> String {
    format!("shop-vault-{}", short(region))
}
pub fn image_arn(region: &str, ami: &str) -> String {
    format!("arn:aws:ec2:{region}::image/{ami}")
}
pub fn asg_name(tier: &str, region: &str) -> String {
    format!("shop-{tier}-{}", short(region))
}
pub fn lt_id(tier: &str, region: &str) -> String {
    format!("lt-0{}{tier}", short(region))
}
pub fn alb_dns(tier: &str, region: &str) -> String {
    format!("shop-{tier}-{}-1.{region}.elb.amazonaws.com", short(region))
}
pub fn tg_arn(tier: &str, region: &str) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:targetgroup/shop-{tier}-{}/0001",
        short(region)
    )
}
/// `(region, id)`, the fake's key for regional resources.
pub fn key(region: &str, id: &str) -> (String, String) {
    (region.to_string(), id.to_string())
}

/// The environment file of the deployment, with every ALB and the public name served at `url`.
pub fn env_yaml(url: &str) -> String {
    let mut regions = String::new();
    for r in [PRIMARY, STANDBY] {
        regions += &format!("  {r}:\n    albs:\n");
        for t in TIERS {
            regions += &format!(
                "      {t}:\n        arn: arn:aws:elasticloadbalancing:{r}:{ACCOUNT}:loadbalancer/app/{}/0001\n        dns_name: {}\n        target_group_arn: {}\n        url: {url}\n",
                asg_name(t, r),
                alb_dns(t, r),
                tg_arn(t, r)
            );
        }
        regions += "    asgs:\n";
        for t in TIERS {
            regions += &format!(
                "      {t}:\n        name: {}\n        launch_template_id: {}\n        production_size: 2\n        max_size: 4\n",
                asg_name(t, r),
                lt_id(t, r)
            );
        }
        regions += &format!(
            "    database:\n      instance_id: {}\n      private_zone_id: {}\n      record_name: {DB_RECORD}\n      parameter_group: {PARAMS}\n    backup_vault: {}\n",
            db_id(r),
            private_zone(r),
            vault(r)
        );
    }
    format!(
        "name: fake\nprimary_region: {PRIMARY}\nstandby_region: {STANDBY}\nregions:\n{regions}\
         route53:\n  public_zone_id: {PUBLIC_ZONE}\n  record_name: {API_RECORD}\n  primary_set_identifier: primary\n  secondary_set_identifier: secondary\n  health_check_id: {HEALTH_CHECK}\n  public_url: {url}\n\
         cloudfront:\n  distribution_id: {DISTRIBUTION}\n  origin_group_id: {ORIGIN_GROUP}\n  origins:\n    {PRIMARY}: {ORIGIN_PRIMARY}\n    {STANDBY}: {ORIGIN_STANDBY}\n\
         backup:\n  plan_id: {PLAN}\n\
         targets:\n  rto: 15m\n  rpo: 5m\n  max_ami_age: 7d\n"
    )
}

fn cname(target: &str) -> Record {
    Record {
        name: DB_RECORD.into(),
        rtype: "CNAME".into(),
        ttl: Some(60),
        values: vec![target.into()],
        set_identifier: None,
        failover: None,
        health_check_id: None,
        alias_dns_name: None,
        alias_zone_id: None,
        evaluate_target_health: None,
    }
}

fn failover_alias(set: &str, role: &str, region: &str, check: Option<&str>) -> Record {
    Record {
        name: API_RECORD.into(),
        rtype: "A".into(),
        ttl: None,
        values: vec![],
        set_identifier: Some(set.into()),
        failover: Some(role.into()),
        health_check_id: check.map(String::from),
        alias_dns_name: Some(alb_dns("backend", region)),
        alias_zone_id: Some("Z35SXDOTRQ7X7K".into()),
        evaluate_target_health: Some(false),
    }
}

fn timestamp(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("fixture time")
        .timestamp()
}

/// Seed the two-region deployment into `aws`.
pub fn seed(aws: &FakeAws) {
    // RDS: the writer and its cross-region read replica, each on its region's own `shop-mysql`.
    aws.add_db(PRIMARY, &db_id(PRIMARY), None, None);
    aws.add_db(
        STANDBY,
        &db_id(STANDBY),
        Some(&db_arn(PRIMARY)),
        Some(STANDBY_LAG),
    );
    {
        let mut w = aws.world();
        w.parameter_groups.clear();
        for r in [PRIMARY, STANDBY] {
            for (group, read_only) in [(PARAMS, "0"), (READONLY_PARAMS, "1")] {
                w.parameter_groups.insert(
                    key(r, group),
                    [("read_only".to_string(), read_only.to_string())].into(),
                );
            }
        }
        for d in w.dbs.values_mut() {
            d.db.parameter_group = Some(PARAMS.into());
        }
    }

    // Private zones: the app finds its database by `db.shop.internal.`. The standby app writes
    // through to the primary's writer until a failover points it at the promoted replica (in
    // the sandbox it names the replica, which would make the runbook's `db_cname` a no-op).
    aws.add_record(&private_zone(PRIMARY), cname(&db_endpoint(PRIMARY)));
    aws.add_record(&private_zone(STANDBY), cname(&db_endpoint(PRIMARY)));

    // Public DNS: failover aliases for the API, a health check on the primary backend ALB.
    aws.add_health_check(HEALTH_CHECK, &alb_dns("backend", PRIMARY));
    aws.add_record(
        PUBLIC_ZONE,
        failover_alias("primary", "PRIMARY", PRIMARY, Some(HEALTH_CHECK)),
    );
    aws.add_record(
        PUBLIC_ZONE,
        failover_alias("secondary", "SECONDARY", STANDBY, None),
    );

    // CloudFront: the origin group prefers the primary frontend.
    aws.add_distribution(
        DISTRIBUTION,
        ORIGIN_GROUP,
        &[ORIGIN_PRIMARY, ORIGIN_STANDBY],
    );

    // Backup: a vault per region, a plan copying to the standby, AMI recovery points.
    aws.add_vault(PRIMARY, &vault(PRIMARY));
    let standby_vault = aws.add_vault(STANDBY, &vault(STANDBY));
    aws.world()
        .plans
        .insert(PLAN.into(), vec![standby_vault.clone()]);
    aws.add_image(PRIMARY, AMI_BASE, "2024-04-01T00:00:00Z", None);
    aws.add_image(
        PRIMARY,
        AMI_BACKUP_OLD,
        "2024-05-01T05:00:00Z",
        Some(&vault(PRIMARY)),
    );
    aws.add_image(
        PRIMARY,
        AMI_BACKUP_NEW,
        "2024-05-02T05:00:00Z",
        Some(&vault(PRIMARY)),
    );
    aws.add_image(
        STANDBY,
        AMI_COPY_OLD,
        "2024-04-30T06:00:00Z",
        Some(&vault(STANDBY)),
    );
    aws.add_image(
        STANDBY,
        AMI_COPY_NEW,
        "2024-05-01T06:00:00Z",
        Some(&vault(STANDBY)),
    );
    aws.world().copy_jobs.push(FakeCopy {
        job: CopyJob {
            id: "copy-seeded-0001".into(),
            state: "COMPLETED".into(),
            source_recovery_point_arn: Some(image_arn(PRIMARY, AMI_BACKUP_OLD)),
            destination_vault_arn: Some(standby_vault),
            destination_recovery_point_arn: Some(image_arn(STANDBY, AMI_COPY_NEW)),
            created: Some(timestamp("2024-05-01T05:30:00Z")),
            message: None,
        },
        source_region: PRIMARY.into(),
        destination_region: STANDBY.into(),
        destination_vault: vault(STANDBY),
        reads_left: 0,
    });

    // Compute: launch templates, ASGs (primary at production size, standby warm), targets.
    for t in TIERS {
        aws.add_template(PRIMARY, &lt_id(t, PRIMARY), AMI_BASE);
        aws.add_template(STANDBY, &lt_id(t, STANDBY), AMI_COPY_OLD);
        aws.add_group(PRIMARY, &asg_name(t, PRIMARY), &lt_id(t, PRIMARY), 1, 2, 4);
        aws.add_group(STANDBY, &asg_name(t, STANDBY), &lt_id(t, STANDBY), 1, 1, 4);
        aws.add_target_group(PRIMARY, &tg_arn(t, PRIMARY), 2);
        aws.add_target_group(STANDBY, &tg_arn(t, STANDBY), 1);
    }
}

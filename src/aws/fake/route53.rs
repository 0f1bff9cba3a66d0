//! The fake Route 53: record sets and atomic change batches, changes that go INSYNC, health
//! checks and the answer they lead to.

use async_trait::async_trait;

use super::hc_healthy;
use super::{Handle, SETTLE_READS};
use crate::aws::route53::{same_name, ChangeKind, HealthCheck, Record, Route53Api};
use crate::aws::{AwsResult, ErrorKind};

fn zone(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

#[async_trait]
impl Route53Api for Handle {
    async fn records(&self, zone_id: &str, name: &str) -> AwsResult<Vec<Record>> {
        self.f
            .enter("route53", "ListResourceRecordSets", &self.region, false)
            .await?;
        Ok(self
            .f
            .world()
            .zones
            .get(zone(zone_id))
            .map(|v| {
                v.iter()
                    .filter(|r| same_name(&r.name, name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn record(&self, zone_id: &str, name: &str, rtype: &str) -> AwsResult<Option<Record>> {
        Ok(self
            .records(zone_id, name)
            .await?
            .into_iter()
            .find(|r| r.rtype.eq_ignore_ascii_case(rtype) && r.set_identifier.is_none()))
    }

    async fn upsert(&self, zone_id: &str, rec: &Record, _comment: &str) -> AwsResult<String> {
        self.f
            .enter("route53", "ChangeResourceRecordSets", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let recs = w.zones.entry(zone(zone_id).into()).or_default();
        recs.retain(|r| {
            !(same_name(&r.name, &rec.name)
                && r.rtype.eq_ignore_ascii_case(&rec.rtype)
                && r.set_identifier == rec.set_identifier)
        });
        recs.push(rec.clone());
        let id = w.id("C");
        w.changes.insert(id.clone(), SETTLE_READS);
        Ok(format!("/change/{id}"))
    }

    async fn delete(&self, zone_id: &str, rec: &Record, _comment: &str) -> AwsResult<String> {
        self.f
            .enter("route53", "ChangeResourceRecordSets", &self.region, true)
            .await?;
        let mut w = self.f.world();
        let recs = w.zones.entry(zone(zone_id).into()).or_default();
        let before = recs.len();
        recs.retain(|r| r != rec);
        if recs.len() == before {
            return self.refuse(
                "route53",
                "ChangeResourceRecordSets",
                "InvalidChangeBatch",
                ErrorKind::Other,
                format!("record {} {} not found as given", rec.name, rec.rtype),
            );
        }
        let id = w.id("C");
        w.changes.insert(id.clone(), SETTLE_READS);
        Ok(format!("/change/{id}"))
    }

    async fn change_batch(
        &self,
        zone_id: &str,
        changes: &[(ChangeKind, Record)],
        _comment: &str,
    ) -> AwsResult<String> {
        self.f
            .enter("route53", "ChangeResourceRecordSets", &self.region, true)
            .await?;
        let mut w = self.f.world();
        // All or nothing, as Route 53 applies a batch.
        let mut recs = w.zones.get(zone(zone_id)).cloned().unwrap_or_default();
        let same = |a: &Record, b: &Record| {
            same_name(&a.name, &b.name)
                && a.rtype.eq_ignore_ascii_case(&b.rtype)
                && a.set_identifier == b.set_identifier
        };
        for (kind, rec) in changes {
            match kind {
                ChangeKind::Delete => {
                    let before = recs.len();
                    recs.retain(|r| r != rec);
                    if recs.len() == before {
                        return self.refuse(
                            "route53",
                            "ChangeResourceRecordSets",
                            "InvalidChangeBatch",
                            ErrorKind::Other,
                            format!(
                                "Tried to delete resource record set {} {} but it was not found",
                                rec.name, rec.rtype
                            ),
                        );
                    }
                }
                ChangeKind::Create => {
                    if recs.iter().any(|r| same(r, rec)) {
                        return self.refuse(
                            "route53",
                            "ChangeResourceRecordSets",
                            "InvalidChangeBatch",
                            ErrorKind::Other,
                            format!(
                                "Tried to create resource record set {} {} but it already exists",
                                rec.name, rec.rtype
                            ),
                        );
                    }
                    recs.push(rec.clone());
                }
                ChangeKind::Upsert => {
                    recs.retain(|r| !same(r, rec));
                    recs.push(rec.clone());
                }
            }
        }
        w.zones.insert(zone(zone_id).into(), recs);
        let id = w.id("C");
        w.changes.insert(id.clone(), SETTLE_READS);
        Ok(format!("/change/{id}"))
    }

    async fn change_status(&self, change_id: &str) -> AwsResult<String> {
        self.f
            .enter("route53", "GetChange", &self.region, false)
            .await?;
        let mut w = self.f.world();
        let Some(left) = w.changes.get_mut(zone(change_id)) else {
            return self.not_found("route53", "GetChange", format!("no change {change_id}"));
        };
        *left = left.saturating_sub(1);
        Ok(if *left == 0 { "INSYNC" } else { "PENDING" }.into())
    }

    async fn health_check(&self, id: &str) -> AwsResult<HealthCheck> {
        self.f
            .enter("route53", "GetHealthCheck", &self.region, false)
            .await?;
        match self.f.world().health_checks.get(id) {
            Some(h) => Ok(h.check.clone()),
            None => self.not_found("route53", "GetHealthCheck", format!("no health check {id}")),
        }
    }

    async fn health_check_healthy(&self, id: &str) -> AwsResult<Option<bool>> {
        self.f
            .enter("route53", "GetHealthCheckStatus", &self.region, false)
            .await?;
        match self.f.world().health_checks.get(id) {
            Some(h) => Ok(Some(hc_healthy(h))),
            None => self.not_found(
                "route53",
                "GetHealthCheckStatus",
                format!("no health check {id}"),
            ),
        }
    }

    async fn set_inverted(&self, id: &str, inverted: bool) -> AwsResult<()> {
        self.f
            .enter("route53", "UpdateHealthCheck", &self.region, true)
            .await?;
        match self.f.world().health_checks.get_mut(id) {
            Some(h) => {
                h.check.inverted = inverted;
                Ok(())
            }
            None => self.not_found(
                "route53",
                "UpdateHealthCheck",
                format!("no health check {id}"),
            ),
        }
    }

    async fn answer(&self, zone_id: &str, name: &str, rtype: &str) -> AwsResult<Vec<String>> {
        self.f
            .enter("route53", "TestDNSAnswer", &self.region, false)
            .await?;
        Ok(self.f.world().answer(zone(zone_id), name, rtype))
    }
}

//! `ec2.update_launch_template`: a new launch template version with the given AMI becomes the
//! one the ASG's instances launch from: the default version when the group uses `$Default`,
//! the latest when it uses `$Latest`, and the group's own pinned number when it names one
//! (UpdateAutoScalingGroup). Undo puts back exactly what the group launched from.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    arn, default_poll, default_standby, problem, Observation, Problem, Reversibility, Satisfied,
    Step, StepCx, StepError, Text,
};
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLaunchTemplate {
    #[serde(default = "default_standby")]
    pub role: Role,
    /// The ASG (by name in drctl.yaml) whose `launch_template_id` is updated.
    #[serde(default)]
    pub asg: Option<String>,
    /// Or a launch template id directly.
    #[serde(default)]
    pub launch_template_id: Option<String>,
    /// The AMI, e.g. `${steps.latest_ami.image_id}`.
    #[schemars(with = "String")]
    pub image_id: Text,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

impl UpdateLaunchTemplate {
    fn lt_id(&self, env: &Environment) -> Result<String, String> {
        if let Some(id) = &self.launch_template_id {
            return Ok(id.clone());
        }
        let name = self
            .asg
            .as_deref()
            .ok_or("neither `asg` nor `launch_template_id` is given")?;
        let asg = env.resources(self.role).asgs.get(name).ok_or_else(|| {
            format!(
                "the {} region ({}) has no ASG named `{name}` (defined: {})",
                self.role,
                env.region_of(self.role),
                env.resources(self.role)
                    .asgs
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        asg.launch_template_id
            .clone()
            .ok_or_else(|| format!("ASG `{name}` has no launch_template_id in the environment"))
    }
}

/// Which version of the template the instances launch from: what the ASG names (a number,
/// `$Latest` or `$Default`; none means `$Default`: "If you don't specify a version, Amazon
/// EC2 Auto Scaling uses the default version", LaunchTemplateSpecification, Auto Scaling API
/// reference), or `$Default` for a template named directly.
#[derive(Debug, Clone, PartialEq)]
enum Uses {
    Default,
    Latest,
    Number(i64),
}

impl Uses {
    fn parse(v: Option<&str>) -> Uses {
        match v {
            None | Some("$Default") => Uses::Default,
            Some("$Latest") => Uses::Latest,
            Some(n) => n.parse().map(Uses::Number).unwrap_or(Uses::Default),
        }
    }
    fn spec(&self) -> String {
        match self {
            Uses::Default => "$Default".into(),
            Uses::Latest => "$Latest".into(),
            Uses::Number(n) => n.to_string(),
        }
    }
}

impl UpdateLaunchTemplate {
    /// The template and the version the instances launch from, read from the ASG when one is
    /// named (a template other than drctl.yaml's is configuration drift: refused).
    async fn uses(&self, cx: &StepCx, id: &str) -> Result<Uses, StepError> {
        let Some(name) = &self.asg else {
            return Ok(Uses::Default);
        };
        let asg_name = &cx.env.resources(self.role).asgs[name].name;
        let g = cx
            .aws
            .autoscaling(cx.env.region_of(self.role))
            .await
            .group(asg_name)
            .await?;
        match g.launch_template_id.as_deref() {
            Some(t) if t != id => Err(StepError::permanent(format!(
                "Auto Scaling group {asg_name} launches from {t}, not {id} as drctl.yaml says: fix `launch_template_id`"
            ))),
            // A group on a mixed instances policy names no top-level template (not handled).
            None => Err(StepError::permanent(format!(
                "Auto Scaling group {asg_name} names no launch template (a mixed instances policy is not supported)"
            ))),
            Some(_) => Ok(Uses::parse(g.launch_template_version.as_deref())),
        }
    }
}

/// EC2's ClientToken for a version this step makes: the same run, step and request give the
/// same token, so a resumed step gets its version back instead of a second one.
fn client_token(cx: &StepCx, request: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{}|{}|{request}", cx.run_id, cx.step_id).as_bytes());
    format!("drctl-{}", &hex::encode(h)[..32])
}

#[async_trait]
impl Step for UpdateLaunchTemplate {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let id = self.lt_id(&cx.env).map_err(StepError::permanent)?;
        let image = cx.render(&self.image_id.value)?;
        let uses = self.uses(cx, &id).await?;
        let ec2 = cx.aws.ec2(cx.env.region_of(self.role)).await;
        let lt = ec2.launch_template(&id).await?;
        let (n, runs) = ec2.version_image(&id, &uses.spec()).await?;
        let current = format!(
            "{id} version {n} ({}) runs {}",
            uses.spec(),
            runs.as_deref().unwrap_or("?")
        );
        // What undo puts back: the default version, and what the group launched from.
        let prior = json!({"launch_template_id": id, "default_version": lt.default_version, "uses": uses.spec(), "latest_version": lt.latest_version});
        if runs.as_deref() == Some(image.as_str()) {
            return Ok(Observation::new(Satisfied::Done, current, "nothing")
                .with_prior(prior)
                .with_result(json!({"launch_template_id": id, "version": n, "image_id": image, "uses": uses.spec()})));
        }
        let how = match uses {
            Uses::Default => "the new default version".to_string(),
            Uses::Latest => "the new latest version".to_string(),
            Uses::Number(_) => format!(
                "the version Auto Scaling group {} launches from",
                self.asg.as_deref().unwrap_or("?")
            ),
        };
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!("a version of {id} with {image} becomes {how}"),
        )
        .with_prior(prior))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let id = self.lt_id(&cx.env).map_err(StepError::permanent)?;
        let image = cx.render(&self.image_id.value)?;
        let uses = self.uses(cx, &id).await?;
        let region = cx.env.region_of(self.role);
        let ec2 = cx.aws.ec2(region).await;
        let (source, _) = ec2.version_image(&id, &uses.spec()).await?;
        // The same run, step and request give the same token: a resumed step that already
        // created its version gets that version back instead of a second one.
        let token = client_token(cx, &format!("{id}|{image}|{source}"));
        let version = ec2
            .create_version(
                &id,
                source,
                &image,
                &format!("drctl run {}: {image}", cx.run_id),
                &token,
            )
            .await?;
        match &uses {
            Uses::Default => ec2.set_default_version(&id, version).await?,
            // The new version is the latest: the group launches from it already.
            Uses::Latest => {}
            Uses::Number(_) => {
                let name =
                    &cx.env.resources(self.role).asgs[self.asg.as_deref().unwrap_or("")].name;
                cx.aws
                    .autoscaling(region)
                    .await
                    .set_launch_template(name, &id, &version.to_string())
                    .await?
            }
        }
        Ok(
            json!({"launch_template_id": id, "version": version, "previous_version": source, "image_id": image, "uses": uses.spec()}),
        )
    }

    async fn verify(&self, cx: &StepCx, result: &Value) -> Result<(), StepError> {
        let (Some(id), Some(image)) = (
            result["launch_template_id"].as_str(),
            result["image_id"].as_str(),
        ) else {
            return Ok(());
        };
        let ec2 = cx.aws.ec2(cx.env.region_of(self.role)).await;
        cx.poll(
            &format!("the instances of {id} to launch from {image}"),
            self.poll_interval,
            || async {
                let uses = self.uses(cx, id).await?;
                let (_, runs) = ec2.version_image(id, &uses.spec()).await?;
                Ok((runs.as_deref() == Some(image)).then_some(()))
            },
        )
        .await
    }

    /// Put back exactly what the group launched from: the default version, the group's
    /// pinned number, or (`$Latest`) a copy of the version that was latest before.
    async fn undo(&self, cx: &StepCx, prior: &Value, _result: &Value) -> Result<(), StepError> {
        let (Some(id), Some(default)) = (
            prior["launch_template_id"].as_str(),
            prior["default_version"].as_i64(),
        ) else {
            return Err(StepError::permanent(
                "journaled prior state has no launch template version",
            ));
        };
        let region = cx.env.region_of(self.role);
        let ec2 = cx.aws.ec2(region).await;
        match Uses::parse(prior["uses"].as_str()) {
            Uses::Default => ec2.set_default_version(id, default).await?,
            Uses::Latest => {
                // EC2 keeps versions; the group launches from the newest. A new latest that
                // copies the version that was latest before (SourceVersion: all its data,
                // AMI included) puts back exactly what it launched, whether or not drctl
                // journaled the version it made. Done once `$Latest` runs that AMI again.
                let Some(before) = prior["latest_version"].as_i64() else {
                    return Err(StepError::permanent(
                        "journaled prior state has no latest launch template version",
                    ));
                };
                let (_, was) = ec2.version_image(id, &before.to_string()).await?;
                let (_, now) = ec2.version_image(id, "$Latest").await?;
                if now != was {
                    let token = client_token(cx, &format!("undo|{id}|{before}"));
                    ec2.create_version(
                        id,
                        before,
                        was.as_deref().unwrap_or_default(),
                        &format!("drctl run {}: undo, as version {before}", cx.run_id),
                        &token,
                    )
                    .await?;
                }
            }
            Uses::Number(n) => {
                let name =
                    &cx.env.resources(self.role).asgs[self.asg.as_deref().unwrap_or("")].name;
                cx.aws
                    .autoscaling(region)
                    .await
                    .set_launch_template(name, id, &n.to_string())
                    .await?
            }
        }
        Ok(())
    }

    fn outputs(&self) -> &'static [&'static str] {
        &[
            "launch_template_id",
            "version",
            "previous_version",
            "image_id",
        ]
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn templates(&self) -> Vec<&Text> {
        vec![&self.image_id]
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        match self.lt_id(env) {
            Ok(_) => vec![],
            Err(e) => vec![problem(e)],
        }
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let region = env.region_of(self.role);
        let a = arn(
            "ec2",
            region,
            &format!(
                "launch-template/{}",
                self.lt_id(env).unwrap_or_else(|_| "*".into())
            ),
        );
        let mut out = vec![
            ("ec2:DescribeLaunchTemplates", "*".into()),
            ("ec2:DescribeLaunchTemplateVersions", "*".into()),
            ("ec2:CreateLaunchTemplateVersion", a.clone()),
            ("ec2:ModifyLaunchTemplate", a),
            ("autoscaling:DescribeAutoScalingGroups", "*".into()),
        ];
        // A group pinned to a version number is moved to the new one (and back).
        if let Some(g) = self
            .asg
            .as_ref()
            .and_then(|n| env.resources(self.role).asgs.get(n))
        {
            out.push((
                "autoscaling:UpdateAutoScalingGroup",
                arn(
                    "autoscaling",
                    region,
                    &format!("autoScalingGroup:*:autoScalingGroupName/{}", g.name),
                ),
            ));
        }
        out
    }
}

//! `ec2.update_launch_template`: a new launch template version with the given AMI becomes the
//! default (the ASG's instances launch from it). Undo makes the previous version the default.

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

#[async_trait]
impl Step for UpdateLaunchTemplate {
    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let id = self.lt_id(&cx.env).map_err(StepError::permanent)?;
        let image = cx.render(&self.image_id.value)?;
        let lt = cx
            .aws
            .ec2(cx.env.region_of(self.role))
            .await
            .launch_template(&id)
            .await?;
        let current = format!(
            "{id} default version {} runs {}",
            lt.default_version,
            lt.default_image_id.as_deref().unwrap_or("?")
        );
        let prior = json!({"launch_template_id": id, "default_version": lt.default_version});
        if lt.default_image_id.as_deref() == Some(image.as_str()) {
            return Ok(Observation::new(Satisfied::Done, current, "nothing").with_prior(prior).with_result(json!({"launch_template_id": id, "version": lt.default_version, "image_id": image})));
        }
        Ok(Observation::new(
            Satisfied::NotDone,
            current,
            format!("new default version of {id} with {image}"),
        )
        .with_prior(prior))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let id = self.lt_id(&cx.env).map_err(StepError::permanent)?;
        let image = cx.render(&self.image_id.value)?;
        let ec2 = cx.aws.ec2(cx.env.region_of(self.role)).await;
        let lt = ec2.launch_template(&id).await?;
        // The same run, step and request give the same token: a resumed step that already
        // created its version gets that version back instead of a second one.
        let token = {
            use sha2::{Digest, Sha256};
            let h = Sha256::digest(
                format!(
                    "{}|{}|{id}|{image}|{}",
                    cx.run_id, cx.step_id, lt.default_version
                )
                .as_bytes(),
            );
            format!("drctl-{}", &hex::encode(h)[..32])
        };
        let version = ec2
            .create_version(
                &id,
                lt.default_version,
                &image,
                &format!("drctl run {}: {image}", cx.run_id),
                &token,
            )
            .await?;
        ec2.set_default_version(&id, version).await?;
        Ok(
            json!({"launch_template_id": id, "version": version, "previous_version": lt.default_version, "image_id": image}),
        )
    }

    async fn verify(&self, cx: &StepCx, result: &Value) -> Result<(), StepError> {
        let (Some(id), Some(version)) = (
            result["launch_template_id"].as_str(),
            result["version"].as_i64(),
        ) else {
            return Ok(());
        };
        let ec2 = cx.aws.ec2(cx.env.region_of(self.role)).await;
        cx.poll(
            &format!("{id} default version {version}"),
            self.poll_interval,
            || async {
                Ok((ec2.launch_template(id).await?.default_version == version).then_some(()))
            },
        )
        .await
    }

    async fn undo(&self, cx: &StepCx, prior: &Value, _result: &Value) -> Result<(), StepError> {
        let (Some(id), Some(version)) = (
            prior["launch_template_id"].as_str(),
            prior["default_version"].as_i64(),
        ) else {
            return Err(StepError::permanent(
                "journaled prior state has no launch template version",
            ));
        };
        cx.aws
            .ec2(cx.env.region_of(self.role))
            .await
            .set_default_version(id, version)
            .await?;
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
        vec![
            ("ec2:DescribeLaunchTemplates", "*".into()),
            ("ec2:DescribeLaunchTemplateVersions", "*".into()),
            ("ec2:CreateLaunchTemplateVersion", a.clone()),
            ("ec2:ModifyLaunchTemplate", a),
        ]
    }
}

//! `drill.serve_app`: an isolated drill's compute. Launches instances from an AMI (the newest
//! copied one) with a region's launch template and user data pointing the app at the drill
//! database, registers them in their own target group behind a listener on the drill load
//! balancer (`drill.load_balancer` in drctl.yaml), and waits until the app answers through it
//! and reaches the drill database (`GET /db` names it). Every resource is tagged with the run
//! id; undo removes them by tag (listener, instances, target group), so it works after a
//! crash that lost the step's result. Production's target groups and listeners are never
//! touched.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    arn, default_poll, default_standby, problem, Measure, Observation, Problem, Reversibility,
    Satisfied, Step, StepCx, StepError, Text,
};
use crate::aws::drill::{resource_name, tags, DrillApi, Launch};
use crate::aws::leftovers::{self, Kind, Scope};
use crate::config::env::{Environment, Role};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServeApp {
    #[serde(default = "default_standby")]
    pub role: Role,
    /// The AMI to launch, e.g. `${steps.image.image_id}`.
    #[schemars(with = "String")]
    pub image_id: Text,
    /// The database host the app is given (`DB_HOST=` in the user data).
    #[schemars(with = "String")]
    pub db_host: Text,
    /// The database the app must report reaching (`database=<id>` in `GET /db`).
    #[schemars(with = "String")]
    pub database: Text,
    /// The ASG (by name in drctl.yaml) whose launch template gives network, instance type and
    /// security groups (default: the region's first).
    #[serde(default)]
    pub asg: Option<String>,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
}

struct Parts<'a> {
    api: std::sync::Arc<dyn DrillApi>,
    lb_arn: &'a str,
    url: String,
}

impl ServeApp {
    fn launch_template<'a>(&self, env: &'a Environment) -> Result<&'a str, String> {
        let asgs = &env.resources(self.role).asgs;
        let asg = match &self.asg {
            Some(n) => asgs
                .get(n)
                .ok_or_else(|| format!("the {} region has no ASG named `{n}`", self.role))?,
            None => asgs
                .values()
                .next()
                .ok_or_else(|| format!("the {} region has no ASGs", self.role))?,
        };
        asg.launch_template_id
            .as_deref()
            .ok_or_else(|| "that ASG has no launch_template_id in drctl.yaml".to_string())
    }

    async fn parts<'a>(&self, cx: &'a StepCx) -> Result<Parts<'a>, StepError> {
        let lb = cx.env.drill.load_balancer.as_ref().ok_or_else(|| {
            StepError::permanent(
                "drctl.yaml has no `drill.load_balancer` for the drill to serve from",
            )
        })?;
        Ok(Parts {
            api: cx.aws.drill(cx.env.region_of(self.role)).await,
            lb_arn: &lb.arn,
            url: lb.url.trim_end_matches('/').to_string(),
        })
    }

    fn scope<'a>(cx: &'a StepCx, lb: &'a str) -> Scope<'a> {
        Scope {
            env: &cx.env.name,
            run: Some(&cx.run_id),
            load_balancer: Some(lb),
        }
    }

    /// The app's answers through the drill listener: `Ok(Some(body of /db))` when it serves
    /// and reaches `database`.
    async fn serving(
        &self,
        cx: &StepCx,
        url: &str,
        database: &str,
    ) -> Result<Option<String>, StepError> {
        let get = |path: &str| {
            let req = cx
                .http
                .get(format!("{url}{path}"))
                .timeout(Duration::from_secs(5));
            async move {
                match req.send().await {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        Some((ok, r.text().await.unwrap_or_default()))
                    }
                    Err(_) => None,
                }
            }
        };
        match get("/health").await {
            Some((true, _)) => {}
            _ => return Ok(None),
        }
        match get("/db").await {
            Some((true, body)) if body.contains(&format!("database={database}")) => Ok(Some(body)),
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl Step for ServeApp {
    fn makes_drill_resources(&self) -> bool {
        true
    }

    async fn observe(&self, cx: &StepCx) -> Result<Observation, StepError> {
        let p = self.parts(cx).await?;
        let mine = leftovers::find(p.api.as_ref(), Self::scope(cx, p.lb_arn)).await?;
        let has = |k: Kind| mine.iter().filter(|l| l.kind == k).count();
        let current = format!(
            "{} instance(s), {} target group(s), {} listener(s) of this drill",
            has(Kind::Instance),
            has(Kind::TargetGroup),
            has(Kind::Listener)
        );
        let intended = format!(
            "launch {} instance(s) in {} behind a listener on port {} of the drill load balancer; wait until {}/db answers",
            cx.env.drill.instances,
            cx.env.region_of(self.role),
            cx.env.drill.listener_port,
            p.url
        );
        // Never Done from observation alone: the proof that it serves is the point.
        Ok(Observation::new(Satisfied::NotDone, current, intended)
            .with_prior(json!({"run": cx.run_id})))
    }

    async fn execute(&self, cx: &StepCx, _obs: &Observation) -> Result<Value, StepError> {
        let started = Instant::now();
        let p = self.parts(cx).await?;
        let image = cx.render(&self.image_id.value)?;
        let db_host = cx.render(&self.db_host.value)?;
        let database = cx.render(&self.database.value)?;
        let name = resource_name(&cx.run_id);
        let t = tags(&cx.run_id, &cx.env.name);
        let mine = leftovers::find(p.api.as_ref(), Self::scope(cx, p.lb_arn)).await?;
        let of = |k: Kind| -> Vec<String> {
            mine.iter()
                .filter(|l| l.kind == k)
                .map(|l| l.id.clone())
                .collect()
        };

        let tg = match of(Kind::TargetGroup).into_iter().next() {
            Some(tg) => tg,
            None => {
                let lb = p.api.load_balancer(p.lb_arn).await?;
                p.api.create_target_group(&name, &lb.vpc_id, &t).await?
            }
        };
        let mut ids = of(Kind::Instance);
        if ids.is_empty() {
            let template = self
                .launch_template(&cx.env)
                .map_err(StepError::permanent)?;
            cx.note(&format!(
                "launching {} instance(s) from {image}",
                cx.env.drill.instances
            ));
            ids = p
                .api
                .launch(&Launch {
                    image_id: &image,
                    launch_template_id: template,
                    count: cx.env.drill.instances,
                    user_data: &format!("DB_HOST={db_host}\n"),
                    // The same run launches once, even when retried after a crash.
                    client_token: &cx.run_id,
                    tags: &t,
                })
                .await?;
        }
        p.api.register(&tg, &ids).await?;
        let listener = match of(Kind::Listener).into_iter().next() {
            Some(l) => l,
            None => {
                p.api
                    .create_listener(p.lb_arn, cx.env.drill.listener_port, &tg, &t)
                    .await?
            }
        };
        let url = p.url.clone();
        let body = cx
            .poll(
                &format!("{url}/db answers database={database}"),
                self.poll_interval,
                || self.serving(cx, &url, &database),
            )
            .await?;
        let secs = started.elapsed().as_secs_f64();
        cx.measure(Measure::DrillServingSeconds, secs);
        Ok(json!({
            "instance_ids": ids,
            "target_group_arn": tg,
            "listener_arn": listener,
            "url": url,
            "db_check": body.lines().next().unwrap_or_default(),
            "serving_after_s": secs,
        }))
    }

    async fn undo(&self, cx: &StepCx, _prior: &Value, _result: &Value) -> Result<(), StepError> {
        let p = self.parts(cx).await?;
        let mine: Vec<_> = leftovers::find(p.api.as_ref(), Self::scope(cx, p.lb_arn))
            .await?
            .into_iter()
            .filter(|l| matches!(l.kind, Kind::Listener | Kind::Instance | Kind::TargetGroup))
            .collect();
        let (_, failed) = leftovers::remove(p.api.as_ref(), &mine, Duration::from_secs(120)).await;
        match failed.first() {
            None => Ok(()),
            Some((l, why)) => Err(StepError::retryable(format!("{} {}: {why}", l.kind, l.id))),
        }
    }

    fn reversibility(&self) -> Reversibility {
        Reversibility::Reversible
    }

    fn templates(&self) -> Vec<&Text> {
        vec![&self.image_id, &self.db_host, &self.database]
    }

    fn validate(&self, env: &Environment) -> Vec<Problem> {
        let mut p = vec![];
        if self.role != Role::Standby {
            p.push(problem(
                "a drill acts in the standby region only: `role` must be standby",
            ));
        }
        if let Err(e) = self.launch_template(env) {
            p.push(problem(e));
        }
        if env.drill.load_balancer.is_none() {
            p.push(problem(
                "drctl.yaml has no `drill.load_balancer`: an isolated drill needs an ALB in the standby region to serve from",
            ));
        }
        p
    }

    fn outputs(&self) -> &'static [&'static str] {
        &[
            "instance_ids",
            "target_group_arn",
            "listener_arn",
            "url",
            "db_check",
            "serving_after_s",
        ]
    }

    fn estimate(&self) -> Duration {
        Duration::from_secs(5 * 60)
    }

    fn iam(&self, env: &Environment) -> Vec<(&'static str, String)> {
        let region = env.region_of(self.role);
        vec![
            ("ec2:RunInstances", "*".to_string()),
            ("ec2:CreateTags", "*".to_string()),
            ("ec2:DescribeInstances", "*".to_string()),
            ("ec2:TerminateInstances", "*".to_string()),
            (
                "elasticloadbalancing:DescribeLoadBalancers",
                "*".to_string(),
            ),
            ("elasticloadbalancing:DescribeTargetGroups", "*".to_string()),
            ("elasticloadbalancing:DescribeListeners", "*".to_string()),
            ("elasticloadbalancing:DescribeTags", "*".to_string()),
            (
                "elasticloadbalancing:CreateTargetGroup",
                arn("elasticloadbalancing", region, "targetgroup/drill-*"),
            ),
            (
                "elasticloadbalancing:RegisterTargets",
                arn("elasticloadbalancing", region, "targetgroup/drill-*"),
            ),
            (
                "elasticloadbalancing:DeleteTargetGroup",
                arn("elasticloadbalancing", region, "targetgroup/drill-*"),
            ),
            ("elasticloadbalancing:CreateListener", "*".to_string()),
            ("elasticloadbalancing:DeleteListener", "*".to_string()),
            ("elasticloadbalancing:AddTags", "*".to_string()),
        ]
    }
}

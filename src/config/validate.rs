//! Meaning checks after parsing: ids, dependencies, cycles, references to the environment, and
//! the rule that an irreversible step must have an approval before it.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::env::Environment;
use super::runbook::{Runbook, StepKinds};
use super::template;
use super::{Diagnostic, Source};

pub fn environment(src: &Source, env: &Environment) -> Vec<Diagnostic> {
    let mut d = Vec::new();
    // Names, regions, URLs and bounds, each placed at its key in the file.
    {
        let mut at = |path: &[&str], m: String, h: &str| {
            d.push(Diagnostic::at_key(src, path, m).hint(h));
        };
        if !super::safe_name(&env.name) {
            at(
                &["name"],
                format!("environment name `{}` is not a safe name", env.name),
                "use letters, digits, `-`, `_` and `.` (it names the lease and journal files)",
            );
        }
        let known = |r: &str| {
            super::AWS_REGIONS.contains(&r) || env.aws.extra_regions.iter().any(|x| x == r)
        };
        let region_hint = |r: &str| {
            match super::closest_region(r) {
            Some(k) => format!("did you mean `{k}`? (a region newer than drctl's list goes under aws.extra_regions)"),
            None => "use an AWS region name like us-west-2 (a newer region goes under aws.extra_regions)".into(),
        }
        };
        for (key, r) in [
            ("primary_region", &env.primary_region),
            ("standby_region", &env.standby_region),
        ] {
            if !known(r) {
                at(
                    &[key],
                    format!("{key} `{r}` is not an AWS region"),
                    &region_hint(r),
                );
            }
        }
        for r in env.regions.keys() {
            if !known(r) {
                at(
                    &["regions", r],
                    format!("regions: `{r}` is not an AWS region"),
                    &region_hint(r),
                );
            }
        }
        let a = &env.aws;
        for (key, v) in [
            ("operation_timeout", a.operation_timeout),
            ("attempt_timeout", a.attempt_timeout),
        ] {
            if v.is_zero() {
                at(
                    &["aws", key],
                    format!("aws.{key} must be more than zero"),
                    "every AWS call is bounded by it; e.g. 30s",
                );
            }
        }
        if a.max_attempts == 0 {
            at(
                &["aws", "max_attempts"],
                "aws.max_attempts must be at least 1".into(),
                "",
            );
        }
        let url_ok = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        for (region, res) in &env.regions {
            for (name, alb) in &res.albs {
                if let Some(u) = alb.url.as_deref().filter(|u| !url_ok(u)) {
                    at(
                        &["regions", region, "albs", name, "url"],
                        format!("albs.{name}.url `{u}` must start with http:// or https://"),
                        "how drctl reaches the ALB, e.g. https://<dns_name>",
                    );
                }
            }
        }
        if let Some(u) = env
            .route53
            .as_ref()
            .and_then(|r| r.public_url.as_deref())
            .filter(|u| !url_ok(u))
        {
            at(
                &["route53", "public_url"],
                format!("route53.public_url `{u}` must start with http:// or https://"),
                "",
            );
        }
        if let Some(r) = &env.route53 {
            if let Some(g) = &r.gate {
                super::validate_gate::gate_problems(env, g, &mut at);
            }
            super::validate_gate::name_server_problems(&r.name_servers, &mut at);
        }
        if let Some(u) = env
            .cloudfront
            .as_ref()
            .and_then(|c| c.url.as_deref())
            .filter(|u| !url_ok(u))
        {
            at(
                &["cloudfront", "url"],
                format!("cloudfront.url `{u}` must start with http:// or https://"),
                "",
            );
        }
    }
    // Each problem at the place its message names: a probe's `name:` line, else the key the
    // message starts with (`probes.watch.action` -> probes / watch / action), else 1:1.
    let mut err = |m: String, h: &str| {
        let probe = m
            .strip_prefix("probe `")
            .or_else(|| m.strip_prefix("probe target `"))
            .and_then(|r| r.split_once('`'))
            .and_then(|(name, _)| {
                src.text.lines().position(|l| {
                    let t = l.trim_start().trim_start_matches("- ");
                    t == format!("name: {name}") || t == format!("name: \"{name}\"")
                })
            });
        let diag = match probe {
            Some(n) => {
                let line = src.text.lines().nth(n).unwrap_or("");
                Diagnostic::at_line(
                    src,
                    n as u64 + 1,
                    (line.len() - line.trim_start().len()) as u64 + 1,
                    m,
                )
            }
            None => {
                let head: String = m
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
                    .collect();
                let path: Vec<&str> = head.split('.').filter(|p| !p.is_empty()).collect();
                Diagnostic::at_key(src, &path, m)
            }
        };
        d.push(diag.hint(h))
    };
    if env.primary_region == env.standby_region {
        err(
            format!(
                "standby_region and primary_region are both `{}`",
                env.primary_region
            ),
            "a warm standby lives in a second region",
        );
    }
    for r in [&env.primary_region, &env.standby_region] {
        if !env.regions.contains_key(r) {
            err(
                format!("regions has no entry for `{r}`"),
                "add its resources under `regions:`",
            );
        }
    }
    if let Some(cf) = &env.cloudfront {
        for r in [&env.primary_region, &env.standby_region] {
            if !cf.origins.contains_key(r) {
                err(
                    format!("cloudfront.origins has no origin for `{r}`"),
                    "map each region to its origin id",
                );
            }
        }
    }
    if let Some(p) = &env.probes {
        let mut seen = HashSet::new();
        for t in &p.targets {
            if !seen.insert(&t.name) {
                err(
                    format!("probe target `{}` is defined twice", t.name),
                    "probe names must be unique",
                );
            }
            if !env.regions.contains_key(&t.region) {
                err(
                    format!(
                        "probe `{}` names region `{}`, which is not under `regions`",
                        t.name, t.region
                    ),
                    "use one of the environment's regions",
                );
            }
            if t.http.is_some() == t.tcp.is_some() {
                err(
                    format!("probe `{}` needs exactly one of `http` or `tcp`", t.name),
                    "",
                );
            }
            if let Some(h) = &t.http {
                if let Err(m) = super::parse_status_range(&h.expect_status) {
                    err(format!("probe `{}`: {m}", t.name), "");
                }
                if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                    err(
                        format!(
                            "probe `{}`: url `{}` must start with http:// or https://",
                            t.name, h.url
                        ),
                        "",
                    );
                }
                if let Some(r) = &h.resolve {
                    if r.parse::<std::net::SocketAddr>().is_err() {
                        err(
                            format!("probe `{}`: resolve `{r}` is not an ip:port", t.name),
                            "like curl's --resolve: the address to connect to, e.g. 10.0.0.5:443",
                        );
                    }
                }
                if h.sni.is_some() && !h.url.starts_with("https://") {
                    err(
                        format!("probe `{}`: sni is set but the url is not https://", t.name),
                        "",
                    );
                }
            }
            if let Some(tcp) = &t.tcp {
                if tcp
                    .address
                    .rsplit_once(':')
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                    .is_none()
                {
                    err(
                        format!(
                            "probe `{}`: tcp address `{}` is not host:port",
                            t.name, tcp.address
                        ),
                        "",
                    );
                }
            }
            if t.failure_threshold == Some(0) || t.recovery_threshold == Some(0) {
                err(
                    format!("probe `{}`: thresholds must be at least 1", t.name),
                    "",
                );
            }
            if t.interval.is_some_and(|d| d.is_zero()) || t.timeout.is_some_and(|d| d.is_zero()) {
                err(
                    format!(
                        "probe `{}`: interval and timeout must be more than zero",
                        t.name
                    ),
                    "",
                );
            }
        }
        if p.failure_threshold == 0 || p.recovery_threshold == 0 {
            err(
                "probes: failure_threshold and recovery_threshold must be at least 1".into(),
                "",
            );
        }
        if p.interval.is_zero() || p.timeout.is_zero() {
            err(
                "probes: interval and timeout must be more than zero".into(),
                "",
            );
        }
        if p.max_in_flight == 0 {
            err("probes: max_in_flight must be at least 1".into(), "");
        }
        let w = &p.watch;
        for (list, field) in [(&w.primary, "primary"), (&w.standby, "standby")] {
            for n in list {
                if !p.targets.iter().any(|t| &t.name == n) {
                    err(
                        format!("probes.watch.{field} names `{n}`, which is not a probe target"),
                        "list names from probes.targets",
                    );
                }
            }
        }
        if w.action == super::env::WatchAction::Failover && w.runbook.is_none() {
            err(
                "probes.watch.action is `failover` but no runbook is given".into(),
                "set probes.watch.runbook to the failover runbook (relative to this file)",
            );
        }
        if w.notify_attempts == 0 {
            err("probes.watch.notify_attempts must be at least 1".into(), "");
        }
        for n in &w.notifications {
            let (super::env::Notification::Webhook(u) | super::env::Notification::Slack(u)) = n;
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                err(
                    "probes.watch.notifications: a webhook URL must start with http:// or https://"
                        .into(),
                    "",
                );
            }
        }
    }
    // drill.schedules: cron, time zone, blackouts, names (config/schedule.rs).
    d.extend(super::schedule::diagnostics(src, &env.drill.schedules));
    super::validate_state::state(src, env, &mut d);
    // Errors from serde carry positions; these structural ones point at the file.
    d.iter_mut().for_each(|x| {
        if x.hint.as_deref() == Some("") {
            x.hint = None
        }
    });
    d
}

/// The dependencies of each step, by index: `depends_on` if given, else the previous step.
/// Unknown ids are left out here (reported by `runbook`).
pub fn edges<S>(rb: &Runbook<S>) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = rb
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id(), i))
        .collect();
    rb.steps
        .iter()
        .enumerate()
        .map(|(i, s)| match &s.depends_on {
            Some(deps) => deps
                .iter()
                .filter_map(|d| index.get(d.value.as_str()).copied())
                .collect(),
            None if i == 0 => vec![],
            None => vec![i - 1],
        })
        .collect()
}

/// Transitive dependencies of each step.
pub fn ancestors(edges: &[Vec<usize>]) -> Vec<HashSet<usize>> {
    fn visit(
        i: usize,
        edges: &[Vec<usize>],
        memo: &mut Vec<Option<HashSet<usize>>>,
        stack: &mut HashSet<usize>,
    ) -> HashSet<usize> {
        if let Some(a) = &memo[i] {
            return a.clone();
        }
        if !stack.insert(i) {
            return HashSet::new(); // cycle: reported elsewhere
        }
        let mut out = HashSet::new();
        for &d in &edges[i] {
            out.insert(d);
            out.extend(visit(d, edges, memo, stack));
        }
        stack.remove(&i);
        memo[i] = Some(out.clone());
        out
    }
    let mut memo = vec![None; edges.len()];
    (0..edges.len())
        .map(|i| visit(i, edges, &mut memo, &mut HashSet::new()))
        .collect()
}

/// A cycle in the graph, as a list of indices, if there is one.
pub fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    // 0 = new, 1 = on stack, 2 = done
    fn dfs(
        i: usize,
        edges: &[Vec<usize>],
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[i] = 1;
        path.push(i);
        for &d in &edges[i] {
            if mark[d] == 1 {
                let start = path.iter().position(|&p| p == d).unwrap_or(0);
                return Some(path[start..].to_vec());
            }
            if mark[d] == 0 {
                if let Some(c) = dfs(d, edges, mark, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        mark[i] = 2;
        None
    }
    let mut mark = vec![0u8; edges.len()];
    for i in 0..edges.len() {
        if mark[i] == 0 {
            if let Some(c) = dfs(i, edges, &mut mark, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

pub fn runbook<S: StepKinds>(
    src: &Source,
    rb: &Runbook<S>,
    env: Option<&Environment>,
) -> Vec<Diagnostic> {
    let mut d = Vec::new();
    if rb.steps.is_empty() {
        d.push(
            Diagnostic::at(src, None, "the runbook has no steps")
                .hint("add at least one step under `steps:`"),
        );
        return d;
    }
    if rb.max_parallel == Some(0) {
        d.push(Diagnostic::at(src, None, "max_parallel must be at least 1"));
    }
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, s) in rb.steps.iter().enumerate() {
        let id = s.id();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            d.push(Diagnostic::at(
                src,
                Some(s.id.referenced),
                format!("step id `{id}` may use only letters, digits, `-` and `_`"),
            ));
        }
        if let Some(&first) = ids.get(id) {
            let l = rb.steps[first].id.referenced.line();
            d.push(
                Diagnostic::at(
                    src,
                    Some(s.id.referenced),
                    format!("duplicate step id `{id}` (first defined on line {l})"),
                )
                .hint("give every step a unique id"),
            );
        } else {
            ids.insert(id, i);
        }
    }
    for s in &rb.steps {
        for dep in s.depends_on.iter().flatten() {
            if dep.value == s.id() {
                d.push(Diagnostic::at(
                    src,
                    Some(dep.referenced),
                    format!("step `{}` depends on itself", s.id()),
                ));
            } else if !ids.contains_key(dep.value.as_str()) {
                let known: Vec<&str> = rb.steps.iter().map(|s| s.id()).collect();
                d.push(
                    Diagnostic::at(
                        src,
                        Some(dep.referenced),
                        format!(
                            "step `{}` depends on `{}`, which is not a step in this runbook",
                            s.id(),
                            dep.value
                        ),
                    )
                    .hint(format!("known steps: {}", known.join(", "))),
                );
            }
        }
    }
    let mut checkpoints: HashMap<&str, u64> = HashMap::new();
    for s in &rb.steps {
        if let Some(cp) = &s.checkpoint {
            if let Some(line) = checkpoints.insert(&cp.value, cp.referenced.line()) {
                d.push(Diagnostic::at(
                    src,
                    Some(cp.referenced),
                    format!("checkpoint `{}` is already named on line {line}", cp.value),
                ));
            }
        }
    }
    let edges = edges(rb);
    if let Some(cycle) = find_cycle(&edges) {
        let names: Vec<&str> = cycle.iter().map(|&i| rb.steps[i].id()).collect();
        let at = rb.steps[cycle[0]]
            .depends_on
            .as_ref()
            .and_then(|v| v.first())
            .map(|x| x.referenced);
        d.push(
            Diagnostic::at(
                src,
                at.or(Some(rb.steps[cycle[0]].id.referenced)),
                format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]),
            )
            .hint("remove one of these depends_on edges"),
        );
        return d;
    }
    let anc = ancestors(&edges);
    // Where each step's text starts, to find `${...}` outside its templated fields.
    let starts: Vec<u64> = rb.steps.iter().map(|s| s.id.referenced.line()).collect();
    let lines: Vec<&str> = src.text.lines().collect();
    for (i, s) in rb.steps.iter().enumerate() {
        if s.timeout.is_some_and(|t| t.is_zero()) {
            d.push(
                Diagnostic::at(
                    src,
                    Some(s.id.referenced),
                    format!("step `{}`: timeout must be more than zero", s.id()),
                )
                .hint("it bounds every attempt; e.g. 30s or 10m"),
            );
        }
        let templated: HashSet<u64> = s
            .spec
            .templates()
            .iter()
            .map(|t| t.referenced.line())
            .collect();
        let first = starts[i].saturating_sub(1) as usize;
        let end = starts
            .get(i + 1)
            .map_or(lines.len(), |n| n.saturating_sub(1) as usize);
        for (n, line) in lines
            .iter()
            .enumerate()
            .take(end.min(lines.len()))
            .skip(first)
        {
            let t = line.trim_start().trim_start_matches("- ");
            let Some(col) = line.find("${") else { continue };
            if t.starts_with('#')
                || t.starts_with("description:")
                || templated.contains(&(n as u64 + 1))
            {
                continue;
            }
            d.push(
                Diagnostic::at_line(src, n as u64 + 1, col as u64 + 1, format!(
                    "step `{}`: `${{...}}` in a field that is not templated: it would be used as written",
                    s.id()
                ))
                .hint("references work in the fields `drctl schema runbook` marks as templated (urls, values, messages, commands)"),
            );
        }
        if let Some(why) = s.spec.irreversible() {
            let gated = anc[i].iter().any(|&a| rb.steps[a].spec.is_approval());
            if !gated {
                d.push(
                    Diagnostic::at(src, Some(s.kind.referenced), format!("step `{}` ({}) is irreversible ({why}) and no approval step comes before it", s.id(), s.kind.value))
                        .hint("add a step of kind `approval` and list it in this step's depends_on (directly or through earlier steps)"),
                );
            }
        }
        for t in s.spec.templates() {
            let refs = match template::references(&t.value) {
                Ok(r) => r,
                Err(m) => {
                    d.push(Diagnostic::at(src, Some(t.referenced), m));
                    continue;
                }
            };
            for (_, path) in refs {
                let root = path.split('.').next().unwrap_or("");
                match root {
                    "steps" => {
                        let target = path.split('.').nth(1).unwrap_or("");
                        match ids.get(target) {
                            None => d.push(Diagnostic::at(src, Some(t.referenced), format!("`${{{path}}}` names step `{target}`, which does not exist"))),
                            Some(&j) if !anc[i].contains(&j) => d.push(
                                Diagnostic::at(src, Some(t.referenced), format!("`${{{path}}}` uses the output of `{target}`, which does not run before `{}`", s.id()))
                                    .hint(format!("add `{target}` to this step's depends_on")),
                            ),
                            Some(&j) => {
                                // A typo in an output key fails only at run time, maybe after
                                // an irreversible step: catch it here.
                                let outs = rb.steps[j].spec.outputs();
                                let key = path.split('.').nth(2).unwrap_or("");
                                if !outs.is_empty() && !outs.contains(&key) {
                                    d.push(
                                        Diagnostic::at(src, Some(t.referenced), format!(
                                            "`${{{path}}}`: step `{target}` ({}) has no output `{key}`",
                                            rb.steps[j].kind.value
                                        ))
                                        .hint(format!("its outputs: {}", outs.join(", "))),
                                    );
                                }
                            }
                        }
                    }
                    "secret" | "run" => {}
                    "env" | "primary" | "standby" => {
                        if let Some(env) = env {
                            let ctx = template::context(env, "run", &BTreeMap::new());
                            let found = template::lookup(&ctx, path);
                            if found.is_some_and(|v| v.is_object() || v.is_array()) {
                                d.push(
                                    Diagnostic::at(
                                        src,
                                        Some(t.referenced),
                                        format!(
                                            "`${{{path}}}` is a mapping or a list, not a value"
                                        ),
                                    )
                                    .hint(
                                        "name one of its keys, e.g. `${standby.albs.frontend.url}`",
                                    ),
                                );
                            } else if found.is_none_or(|v| v.is_null()) {
                                d.push(
                                    Diagnostic::at(
                                        src,
                                        Some(t.referenced),
                                        format!(
                                            "`${{{path}}}` is not defined in environment `{}`",
                                            env.name
                                        ),
                                    )
                                    .hint("check the name against drctl.yaml"),
                                );
                            }
                        }
                    }
                    other => d.push(
                        Diagnostic::at(
                            src,
                            Some(t.referenced),
                            format!("`${{{path}}}`: unknown root `{other}`"),
                        )
                        .hint("references start with env, primary, standby, steps, run or secret"),
                    ),
                }
            }
        }
        if let Some(env) = env {
            for p in s.spec.validate(env) {
                d.push(Diagnostic::at(
                    src,
                    p.at.or(Some(s.kind.referenced)),
                    format!("step `{}`: {}", s.id(), p.message),
                ));
            }
        }
    }
    d
}

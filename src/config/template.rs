//! `${...}` references inside step parameters.
//!
//! A runbook names things by role so one file serves every environment:
//! `${standby.albs.frontend.url}`, `${env.route53.public_url}`, `${run.id}`, and outputs of
//! earlier steps, `${steps.latest_ami.image_id}`. `$${` writes a literal `${`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::env::{Environment, Role};

/// The paths referenced by `text`, in order, with their byte offsets.
pub fn references(text: &str) -> Result<Vec<(usize, &str)>, String> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(i) = text[rest..].find("${") {
        let start = rest + i;
        if start > 0 && text.as_bytes()[start - 1] == b'$' {
            rest = start + 2;
            continue;
        }
        let Some(len) = text[start + 2..].find('}') else {
            return Err(format!("unclosed `${{` at offset {start}"));
        };
        let path = text[start + 2..start + 2 + len].trim();
        if path.is_empty() {
            return Err("empty `${}` reference".into());
        }
        out.push((start, path));
        rest = start + 2 + len + 1;
    }
    Ok(out)
}

/// Build the lookup context for a run.
pub fn context(env: &Environment, run_id: &str, outputs: &BTreeMap<String, Value>) -> Value {
    let role = |r: Role| {
        let mut v = serde_json::to_value(env.resources(r)).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("region".into(), json!(env.region_of(r)));
        }
        v
    };
    json!({
        "env": serde_json::to_value(env).unwrap_or(Value::Null),
        "primary": role(Role::Primary),
        "standby": role(Role::Standby),
        "run": { "id": run_id },
        "steps": outputs,
    })
}

/// Look a dotted path up in the context.
pub fn lookup<'a>(ctx: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(ctx, |v, seg| v.get(seg))
}

/// Replace every reference; an unknown one is an error naming it.
pub fn render(text: &str, ctx: &Value) -> Result<String, String> {
    let refs = references(text)?;
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, path) in refs {
        out.push_str(&text[last..start]);
        // Secrets come from drctl's own environment at the moment of use and are never stored.
        if let Some(name) = path.strip_prefix("secret.") {
            let v = std::env::var(name)
                .map_err(|_| format!("`${{{path}}}`: environment variable {name} is not set"))?;
            out.push_str(&v);
            let close = text[start..].find('}').expect("checked by references") + start;
            last = close + 1;
            continue;
        }
        match lookup(ctx, path) {
            Some(Value::String(s)) => out.push_str(s),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&v.to_string()),
            Some(Value::Null) | None => return Err(format!("`${{{path}}}` is not defined")),
            Some(_) => return Err(format!("`${{{path}}}` is not a single value")),
        }
        let close = text[start..].find('}').expect("checked by references") + start;
        last = close + 1;
    }
    out.push_str(&text[last..]);
    Ok(out.replace("$${", "${"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_escapes() {
        let ctx = json!({"standby": {"region": "us-west-2", "n": 3}});
        assert_eq!(
            render("to ${standby.region} x${standby.n} $${lit}", &ctx).unwrap(),
            "to us-west-2 x3 ${lit}"
        );
        assert!(render("${standby.nope}", &ctx)
            .unwrap_err()
            .contains("standby.nope"));
        assert!(render("${standby", &ctx).is_err());
    }
}

//! A catalogue of broken runbooks (tests/bad/*.yaml). Each file's `# expect:` lines give a
//! diagnostic it must produce (`LINE:COL message`, or just a message). `validate` must report
//! every one with exit code 2, and `run` must refuse the file before doing anything.
mod common;

use common::{drctl, run, text, workspace};

#[test]
fn every_bad_runbook_gives_its_message_at_its_place_and_exit_2() {
    let bad = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&bad)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        // The bad-input catalogue and its README live beside the broken runbooks.
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yaml")
                && p.file_name().is_some_and(|n| n != "catalogue.yaml")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the catalogue shrank: {files:?}");
    let ws = workspace();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(&f).unwrap();
        std::fs::write(ws.path().join(&name), &src).unwrap();
        let out = run(drctl(ws.path()).args(["validate", &name]));
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {t}");
        let expects: Vec<&str> = src
            .lines()
            .filter_map(|l| l.strip_prefix("# expect:"))
            .map(str::trim)
            .collect();
        assert!(!expects.is_empty(), "{name} has no # expect: line");
        for e in expects {
            let (place, msg) = match e.split_once(' ') {
                Some((p, m)) if p.contains(':') => (Some(p), m),
                None if e.contains(':') && e.chars().next().unwrap().is_ascii_digit() => {
                    (Some(e), "")
                }
                _ => (None, e),
            };
            let line = t
                .lines()
                .find(|l| l.starts_with(&format!("{name}:")) && l.contains(msg));
            let line =
                line.unwrap_or_else(|| panic!("{name}: no diagnostic containing {msg:?}:\n{t}"));
            if let Some(p) = place {
                assert!(
                    line.starts_with(&format!("{name}:{p}")),
                    "{name}: wanted {name}:{p}, got {line}"
                );
            }
        }
        // Every diagnostic says what to do, or is self-explanatory about the fix.
        assert!(t.contains("error:"), "{name}: {t}");

        // No command ever starts executing a file that does not validate.
        let out = run(drctl(ws.path()).args(["run", &name, "--yes"]));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: run accepted it: {}",
            text(&out)
        );
        assert!(
            !ws.path().join(".drctl/runs").exists(),
            "{name}: a run was started"
        );
        assert!(
            !ws.path().join(".drctl/leases").exists(),
            "{name}: the lease was taken"
        );
    }
}

#[test]
fn a_good_runbook_validates_with_exit_0() {
    let ws = workspace();
    std::fs::write(
        ws.path().join("ok.yaml"),
        "name: ok\nsteps:\n  - id: a\n    kind: wait\n    with: { duration: 1s }\n",
    )
    .unwrap();
    let out = run(drctl(ws.path()).args(["validate", "ok.yaml", "drctl.yaml"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ok.yaml: ok (runbook `ok`, 1 steps)"));
}

#[test]
fn a_bad_environment_file_is_refused_with_exit_2() {
    let ws = workspace();
    std::fs::write(
        ws.path().join("drctl.yaml"),
        "name: x\nprimary_region: us-east-1\nstandby_region: us-east-1\nregion: {}\n",
    )
    .unwrap();
    let out = run(drctl(ws.path()).args(["validate", "drctl.yaml"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("drctl.yaml:4:1: error: unknown field `region`"),
        "{}",
        text(&out)
    );
}

#[test]
fn schema_prints_both_schemas() {
    let ws = workspace();
    for (which, needle) in [("runbook", "\"http.check\""), ("env", "standby_region")] {
        let out = run(drctl(ws.path()).args(["schema", which]));
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v.to_string().contains(needle), "{which}");
    }
}

/// The documented example environment is a real one: it validates, and every shipped runbook
/// validates against it with its references to the environment checked.
#[test]
fn the_documented_example_and_the_shipped_runbooks_validate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("docs/drctl.yaml.example");
    let mut files = vec![example.clone()];
    let mut rbs: Vec<_> = std::fs::read_dir(root.join("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    rbs.sort();
    assert!(rbs.len() >= 5, "runbooks/: {rbs:?}");
    files.extend(rbs.iter().cloned());
    let ws = workspace();
    let out = run(drctl(ws.path())
        .arg("--env")
        .arg(&example)
        .arg("validate")
        .args(&files));
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("drctl.yaml.example: ok (environment `sandbox`)"),
        "{t}"
    );
    for rb in &rbs {
        assert!(
            t.contains(&format!("{}: ok (runbook", rb.display())),
            "{} not validated:\n{t}",
            rb.display()
        );
    }
    assert!(!t.contains("were not checked"), "{t}");
}

/// The gated variants (runbooks/gated/, chosen when drctl.yaml has `route53.gate`) validate
/// against the example with a gate, and refuse an environment without one, at the step.
#[test]
fn the_gated_runbooks_validate_against_an_environment_with_a_gate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("docs/drctl.yaml.example")).unwrap();
    let anchor = "  public_url: http://127.0.0.1:40010";
    let line_end = example.find(anchor).expect("the example's public_url line");
    let line_end = line_end + example[line_end..].find('\n').unwrap() + 1;
    let gated = format!(
        "{}  name_servers: [\"127.0.0.1:5353\"]\n  gate:\n    calculated_health_check_id: calc-1\n    gate_health_check_id: gate-1\n    alarm: {{ region: us-west-2, name: sandbox-gate, namespace: drctl, metric: PrimaryGate, dimensions: {{ Environment: sandbox }} }}\n{}",
        &example[..line_end],
        &example[line_end..]
    );
    let ws = workspace();
    let env = ws.path().join("gated.yaml");
    std::fs::write(&env, gated).unwrap();
    let mut rbs: Vec<_> = std::fs::read_dir(root.join("runbooks/gated"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    rbs.sort();
    assert!(rbs.len() >= 2, "runbooks/gated/: {rbs:?}");
    let out = run(drctl(ws.path())
        .arg("--env")
        .arg(&env)
        .arg("validate")
        .args(&rbs));
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for rb in &rbs {
        assert!(t.contains(&format!("{}: ok (runbook", rb.display())), "{t}");
    }
    // Without a gate the same runbooks are refused, naming what is missing.
    let out = run(drctl(ws.path())
        .arg("--env")
        .arg(root.join("docs/drctl.yaml.example"))
        .arg("validate")
        .args(&rbs));
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("route53.gate"), "{t}");
}

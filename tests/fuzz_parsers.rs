//! Parser fuzz: arbitrary text and mutated real files (the shipped runbooks, the documented
//! environment, a real journal) through every parser drctl feeds user or disk input to. None
//! may panic; every refusal must point inside the file it names.
//!
//! `make test` runs a bounded number of cases (DRCTL_FUZZ_CASES, default 256 per property);
//! `make fuzz` runs 20,000 per property.
mod common;

use std::path::{Path, PathBuf};

use drctl::config::{self, ConfigError, Environment, Source};
use drctl::journal::RunState;
use drctl::steps::StepSpec;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("DRCTL_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files a mutation starts from: every shipped runbook and the example environment.
fn seeds() -> Vec<(PathBuf, String)> {
    // The runbooks and their gated variants (runbooks/gated/).
    let files = |d: PathBuf| {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect::<Vec<_>>()
    };
    let mut all = files(root().join("runbooks"));
    all.extend(files(root().join("runbooks/gated")));
    let mut v: Vec<(PathBuf, String)> = all
        .into_iter()
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect();
    v.sort();
    let ex = root().join("docs/drctl.yaml.example");
    let t = std::fs::read_to_string(&ex).unwrap();
    v.push((ex, t));
    v
}

fn example_env() -> Environment {
    config::load_env(&root().join("docs/drctl.yaml.example"))
        .expect("the example environment loads")
        .1
}

/// Pieces of YAML (and of trouble) that mutations insert.
const TOKENS: &[&str] = &[
    ":",
    "- ",
    " ",
    "\n",
    "\t",
    "${",
    "}",
    "${steps.",
    "${env.",
    "[",
    "]",
    "{",
    "\"",
    "'",
    "&a ",
    "*a",
    "!!binary ",
    "!!str ",
    "~",
    "null",
    "1e999",
    "-1",
    "0s",
    "99999999999999999999",
    "\0",
    "é",
    "#",
    "? ",
    "|",
    ">",
    "---\n",
    "...\n",
    "<<: *a\n",
    "id: x\n",
    "kind: wait\n",
    "depends_on: [",
    "timeout: ",
    "with:\n  ",
    "    ",
    "\u{feff}",
    "\r\n",
    "%YAML 1.2\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: usize },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Indent { line: usize, by: i8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<usize>(), -4i8..4).prop_map(|(line, by)| Mutation::Indent { line, by }),
    ]
}

/// The nearest char boundary at or before `i`.
fn boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut s = text.to_string();
    for m in muts {
        match *m {
            Mutation::Delete { at, len } => {
                if s.is_empty() {
                    continue;
                }
                let a = boundary(&s, at % s.len());
                let b = boundary(&s, a + len);
                s.replace_range(a..b, "");
            }
            Mutation::Insert { at, token } => {
                let a = boundary(&s, at % (s.len() + 1));
                s.insert_str(a, TOKENS[token]);
            }
            Mutation::DuplicateLine { line } => {
                let mut lines: Vec<&str> = s.split('\n').collect();
                let i = line % lines.len();
                lines.insert(i, lines[i]);
                s = lines.join("\n");
            }
            Mutation::SwapLines { a, b } => {
                let mut lines: Vec<&str> = s.split('\n').collect();
                let n = lines.len();
                lines.swap(a % n, b % n);
                s = lines.join("\n");
            }
            Mutation::Indent { line, by } => {
                let mut lines: Vec<String> = s.split('\n').map(String::from).collect();
                let i = line % lines.len();
                if by >= 0 {
                    lines[i] = format!("{}{}", " ".repeat(by as usize), lines[i]);
                } else {
                    let strip = lines[i]
                        .chars()
                        .take((-by) as usize)
                        .take_while(|c| *c == ' ')
                        .count();
                    lines[i] = lines[i][strip..].to_string();
                }
                s = lines.join("\n");
            }
        }
    }
    s
}

/// Every diagnostic names the file and a place inside it (line 0 means "the whole file").
fn check_refusal(path: &Path, text: &str, e: &ConfigError) -> Result<(), TestCaseError> {
    let ConfigError::Invalid(diags) = e else {
        return Err(TestCaseError::fail(format!("not a diagnostic: {e}")));
    };
    prop_assert!(!diags.is_empty(), "an empty refusal");
    let lines = text.split('\n').count() as u64;
    for d in diags {
        prop_assert_eq!(&d.file, &path.display().to_string());
        prop_assert!(!d.message.trim().is_empty(), "an empty message");
        prop_assert!(
            d.line <= lines + 1,
            "line {} of a {lines}-line file: {}",
            d.line,
            d.message
        );
        prop_assert!(d.line == 0 || d.column >= 1, "column 0: {}", d.message);
    }
    Ok(())
}

fn parse_both(path: &Path, text: String, env: &Environment) -> Result<(), TestCaseError> {
    let src = Source::from_text(path, text.clone());
    if let Err(e) = config::parse_env(&src) {
        check_refusal(path, &text, &e)?;
    }
    if let Err(e) = config::parse_runbook::<StepSpec>(&src, Some(env)) {
        check_refusal(path, &text, &e)?;
    }
    if let Err(e) = config::parse_runbook::<StepSpec>(&src, None) {
        check_refusal(path, &text, &e)?;
    }
    Ok(())
}

/// A real journal: one small run of the binary.
fn real_journal() -> Vec<u8> {
    let ws = common::workspace();
    std::fs::write(
        ws.path().join("rb.yaml"),
        "name: r\nsteps:\n  - id: a\n    kind: exec\n    with: { command: [\"true\"], undo: [\"true\"] }\n    checkpoint: c\n  - id: b\n    kind: wait\n    with: { duration: 1ms }\n",
    )
    .unwrap();
    let out = common::run(common::drctl(ws.path()).args(["run", "rb.yaml", "--yes"]));
    assert!(out.status.success(), "{}", common::text(&out));
    let id = common::only_run(ws.path());
    std::fs::read(ws.path().join(".drctl/runs").join(id).join("journal.jsonl")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Any text at all: refused with a placed diagnostic, or accepted; never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let env = example_env();
        parse_both(Path::new("fuzz.yaml"), text, &env)?;
    }

    /// Text in YAML's own alphabet reaches deeper into the parser than arbitrary text.
    #[test]
    fn yaml_shaped_text_never_panics(text in "([a-z_]{1,8}: ?|- |  |\\{|\\}|\\[|\\]|\\$\\{[a-z.]{0,12}\\}|&a |\\*a|\n|[0-9]{1,3}(ms|s|m)?|'|\"){0,80}") {
        let env = example_env();
        parse_both(Path::new("fuzz.yaml"), text, &env)?;
    }

    /// The shipped files, mutated a few times each.
    #[test]
    fn mutated_real_files_never_panic(which in any::<usize>(), muts in proptest::collection::vec(mutation(), 1..6)) {
        let seeds = seeds();
        let env = example_env();
        let (path, text) = &seeds[which % seeds.len()];
        parse_both(path, apply(text, &muts), &env)?;
    }

    /// A real journal, mutated: read back or refused, never a panic.
    #[test]
    fn mutated_journals_never_panic(muts in proptest::collection::vec(mutation(), 1..4)) {
        static JOURNAL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let j = JOURNAL.get_or_init(|| String::from_utf8(real_journal()).unwrap());
        let bytes = apply(j, &muts).into_bytes();
        if let Ok((records, _, _)) = drctl::journal::file::parse(Path::new("journal.jsonl"), &bytes) {
            let _ = RunState::replay(&records);
        }
    }
}

//! Headless Chromium for HTML checks: the DOM a browser builds from a report, and a
//! screenshot kept for people. `.ci/run` installs Debian's `chromium`; `DRCTL_CHROMIUM`
//! names another binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("DRCTL_CHROMIUM") {
        return p.into();
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("no chromium found: `.ci/run` installs it (apt-get install chromium), or set DRCTL_CHROMIUM");
}

/// Run chromium headless on `file` with `args`, bounded at 120 s.
fn headless(file: &Path, args: &[&str]) -> Vec<u8> {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!(
            "file://{}",
            file.canonicalize().expect("report file").display()
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = vec![];
        std::io::Read::read_to_end(&mut out, &mut buf).ok();
        buf
    });
    let t = Instant::now();
    loop {
        if child.try_wait().expect("wait chromium").is_some() {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().expect("reader")
}

/// The DOM Chromium built from `file`, serialized.
pub fn dom(file: &Path) -> String {
    let d = String::from_utf8_lossy(&headless(file, &["--dump-dom"])).into_owned();
    assert!(
        d.contains("<html"),
        "chromium rendered no DOM for {}",
        file.display()
    );
    d
}

/// How many Gantt bars (`<rect class="bar ...">`) the DOM has for `step`.
pub fn bars(dom: &str, step: &str) -> usize {
    dom.split("<rect")
        .skip(1)
        .map(|t| &t[..t.find('>').unwrap_or(t.len())])
        .filter(|t| t.contains("class=\"bar") && t.contains(&format!("data-step=\"{step}\"")))
        .count()
}

/// Save a screenshot of `file` as `<target tmp>/<name>.png` and say where, for people.
pub fn screenshot(file: &Path, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let png = dir.join(format!("{name}.png"));
    headless(
        file,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1000,1400",
        ],
    );
    assert!(png.is_file(), "no screenshot written");
    eprintln!("screenshot of the report: {}", png.display());
}

//! A two-region sandbox for one test: `python -m drsandbox serve` on a free port (instant
//! profile), seeded into a temp dir. Killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sandbox {
    child: Child,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
    /// The workspace files (drctl.yaml, topology.json, ...) as they were at each snapshot.
    saved: std::collections::HashMap<String, Vec<(std::ffi::OsString, Vec<u8>)>>,
}

/// The venv's python (set by `make test`), else the repo's `.venv`.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("DRCTL_SANDBOX_PYTHON") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "no sandbox venv at {}: run `make sandbox-venv` (make test does)",
        p.display()
    );
    p
}

/// Credentials for the library's own AWS clients in a test process (the sandbox takes any). Set
/// once, before any client exists: every test runs in a process of its own under nextest, so no
/// test may count on another having set them.
pub fn sdk_credentials() {
    static CREDS: std::sync::Once = std::sync::Once::new();
    CREDS.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::remove_var("AWS_PROFILE");
    });
}

impl Sandbox {
    /// Start and seed. Panics with the sandbox's own output if either fails.
    pub fn start() -> Sandbox {
        Self::start_with(&["--profile", "instant"])
    }

    pub fn start_with(args: &[&str]) -> Sandbox {
        Self::start_seeded(args, &[])
    }

    /// Start with `serve` arguments `args` and seed with the `seed` arguments `seed_args`
    /// (`--gate alarm`).
    pub fn start_seeded(args: &[&str], seed_args: &[&str]) -> Sandbox {
        let mut child = Command::new(python())
            .args(["-m", "drsandbox", "serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let endpoint = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("sandbox did not print `listening on` within 60 s");
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        let out = Command::new(python())
            .args(["-m", "drsandbox", "seed", "--endpoint", &endpoint, "--out"])
            .arg(dir.path())
            .args(seed_args)
            .output()
            .expect("run seed");
        assert!(
            out.status.success(),
            "seed failed after {:?}: {}{}",
            t.elapsed(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Sandbox {
            child,
            endpoint,
            dir,
            saved: Default::default(),
        }
    }

    /// Save the sandbox's whole state under `name` (`POST /_sandbox/snapshot`: it waits for
    /// pending transitions), with the workspace's files as they are now.
    pub fn snapshot(&mut self, name: &str) {
        self.control(
            "POST",
            "/_sandbox/snapshot",
            Some(serde_json::json!({"name": name, "wait": 30})),
        );
        let files = std::fs::read_dir(self.dir.path())
            .expect("workspace")
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| (e.file_name(), std::fs::read(e.path()).expect("read")))
            .collect();
        self.saved.insert(name.to_string(), files);
    }

    /// Bring back the state saved as `name`, in a new workspace holding the files saved with it
    /// and nothing else (no state dir, no runs): as fresh as a newly seeded sandbox, in well
    /// under a second instead of 5-8 s.
    pub fn restore(&mut self, name: &str) {
        let files = self
            .saved
            .get(name)
            .unwrap_or_else(|| panic!("no snapshot {name:?} saved by this test"));
        let dir = tempfile::tempdir().expect("tempdir");
        for (file, bytes) in files {
            std::fs::write(dir.path().join(file), bytes).expect("write");
        }
        self.control(
            "POST",
            "/_sandbox/restore",
            Some(serde_json::json!({"name": name})),
        );
        self.dir = dir;
    }

    /// The seeded environment file.
    pub fn env_file(&self) -> PathBuf {
        self.dir.path().join("drctl.yaml")
    }

    pub fn topology(&self) -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(self.dir.path().join("topology.json")).expect("topology.json"),
        )
        .expect("json")
    }

    /// Call the control API (`/_sandbox/...`).
    pub fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let url = format!("{}{}", self.endpoint, path);
        let client = mini_http::Client;
        let mut req = client.request(method.to_string(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        assert!(status.is_success(), "{method} {path} -> {status}: {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    pub fn state(&self) -> serde_json::Value {
        self.control("GET", "/_sandbox/state", None)
    }

    pub fn fault(&self, body: serde_json::Value) {
        self.control("POST", "/_sandbox/faults", Some(body));
    }

    pub fn clear_faults(&self) {
        self.control("DELETE", "/_sandbox/faults", None);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny blocking HTTP client over std, so tests need no extra runtime.
pub mod mini_http {
    pub struct Client;
    pub struct Request {
        method: String,
        url: String,
        body: Option<String>,
    }
    pub struct Response {
        status: u16,
        body: String,
    }
    pub struct Status(u16);
    impl Status {
        pub fn is_success(&self) -> bool {
            (200..300).contains(&self.0)
        }
    }
    impl std::fmt::Display for Status {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}", self.0)
        }
    }
    impl Client {
        pub fn request(&self, method: String, url: &str) -> Request {
            Request {
                method,
                url: url.to_string(),
                body: None,
            }
        }
    }
    impl Request {
        pub fn json(mut self, v: &serde_json::Value) -> Self {
            self.body = Some(v.to_string());
            self
        }
        pub fn send(self) -> Result<Response, String> {
            use std::io::{Read, Write};
            let rest = self.url.strip_prefix("http://").ok_or("only http")?;
            let (host, path) = rest
                .split_once('/')
                .map(|(h, p)| (h, format!("/{p}")))
                .unwrap_or((rest, "/".into()));
            let mut s = std::net::TcpStream::connect(host).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .ok();
            let body = self.body.unwrap_or_default();
            write!(s, "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", self.method, path, body.len()).map_err(|e| e.to_string())?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&buf).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or("bad status line")?;
            // The control API answers without chunking; tolerate it anyway by returning raw text.
            Ok(Response {
                status,
                body: body.to_string(),
            })
        }
    }
    impl Response {
        pub fn status(&self) -> Status {
            Status(self.status)
        }
        pub fn text(self) -> Result<String, String> {
            Ok(self.body)
        }
    }
}

//! Notifications of watch decisions: a generic JSON webhook and Slack incoming webhooks.
//!
//! Posting happens on its own task behind a bounded queue: a slow or failing webhook delays
//! other notifications at most, never probing or deciding. Each post has a timeout, and a
//! message is tried a bounded number of times with backoff. URLs may hold tokens, so they are
//! never logged: a sink is named by its kind and position (`webhook#1`).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::config::env::Notification;
use crate::retry::{retry, Backoff};

/// How one message fared at one sink.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub sink: String,
    pub ok: bool,
    pub attempts: u32,
    pub error: Option<String>,
}

/// A message: one line for people (Slack) and the whole document for machines (webhooks).
#[derive(Debug, Clone)]
pub struct Message {
    pub text: String,
    pub document: Value,
}

#[derive(Clone)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Message>>,
    dropped: Arc<dyn Fn(&Message) + Send + Sync>,
}

/// Messages waiting beyond this are dropped (and reported): a stuck sink must not grow memory.
const QUEUE: usize = 256;

impl Notifier {
    /// A notifier that sends nothing.
    pub fn none() -> Self {
        Self {
            tx: None,
            dropped: Arc::new(|_| {}),
        }
    }

    /// Start the posting task. `report` hears every delivery (for metrics and the journal).
    pub fn start(
        sinks: Vec<Notification>,
        timeout: Duration,
        attempts: u32,
        report: Arc<dyn Fn(Delivery) + Send + Sync>,
    ) -> Self {
        if sinks.is_empty() {
            return Self::none();
        }
        let client = client(timeout);
        let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
        let r2 = report.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                let posts = sinks
                    .iter()
                    .enumerate()
                    .map(|(i, s)| deliver(&client, i, s, &m, timeout, attempts.max(1)));
                for d in futures::future::join_all(posts).await {
                    r2(d);
                }
            }
        });
        let dropped: Arc<dyn Fn(&Message) + Send + Sync> = Arc::new(move |_m: &Message| {
            report(Delivery {
                sink: "queue".into(),
                ok: false,
                attempts: 0,
                error: Some("notification queue full; message dropped".into()),
            })
        });
        Self {
            tx: Some(tx),
            dropped,
        }
    }

    /// Queue a message; never waits.
    pub fn send(&self, m: Message) {
        if let Some(tx) = &self.tx {
            if let Err(mpsc::error::TrySendError::Full(m)) = tx.try_send(m) {
                (self.dropped)(&m);
            }
        }
    }
}

/// Post `m` to every sink now and wait for the deliveries (each bounded by `timeout` and
/// `attempts`): for a drill's result, sent once at its end.
pub async fn send_now(
    sinks: &[Notification],
    m: &Message,
    timeout: Duration,
    attempts: u32,
) -> Vec<Delivery> {
    let client = client(timeout);
    let posts = sinks
        .iter()
        .enumerate()
        .map(|(i, s)| deliver(&client, i, s, m, timeout, attempts.max(1)));
    futures::future::join_all(posts).await
}

/// The client for posting notifications: every post bounded by `timeout`.
fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("drctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

fn sink_name(i: usize, s: &Notification) -> String {
    match s {
        Notification::Webhook(_) => format!("webhook#{}", i + 1),
        Notification::Slack(_) => format!("slack#{}", i + 1),
    }
}

async fn deliver(
    client: &reqwest::Client,
    i: usize,
    s: &Notification,
    m: &Message,
    timeout: Duration,
    attempts: u32,
) -> Delivery {
    let (url, body) = match s {
        Notification::Webhook(u) => {
            let mut doc = m.document.clone();
            if let Some(o) = doc.as_object_mut() {
                o.insert("text".into(), json!(m.text));
            }
            (u, doc)
        }
        Notification::Slack(u) => (u, json!({ "text": m.text })),
    };
    let mut tried = 0;
    let res = retry(
        Backoff::new(Duration::from_millis(500)),
        attempts,
        |_| true,
        |attempt| {
            tried = attempt;
            let post = client.post(url.as_str()).json(&body).send();
            async move {
                // The client's timeout bounds the post; this one also bounds a server that trickles.
                match tokio::time::timeout(timeout, post).await {
                    Ok(Ok(r)) if r.status().is_success() => Ok(()),
                    Ok(Ok(r)) => Err(format!("answered {}", r.status())),
                    Ok(Err(e)) => Err(e.without_url().to_string()),
                    Err(_) => Err(format!(
                        "no answer within {}",
                        humantime::format_duration(timeout)
                    )),
                }
            }
        },
    )
    .await;
    Delivery {
        sink: sink_name(i, s),
        ok: res.is_ok(),
        attempts: tried,
        error: res.err(),
    }
}

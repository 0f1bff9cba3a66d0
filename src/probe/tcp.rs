//! TCP connect probes: the target is up when a connection is accepted within the timeout.

use std::time::Duration;

use tokio::net::TcpStream;

use super::{ProbeResult, Reason};

#[derive(Debug, Clone)]
pub struct TcpCheck {
    /// `host:port`, resolved on every probe (DNS changes are part of what is probed).
    pub address: String,
}

impl TcpCheck {
    pub async fn probe(&self, timeout: Duration) -> ProbeResult {
        let start = tokio::time::Instant::now();
        match tokio::time::timeout(timeout, TcpStream::connect(&self.address)).await {
            Ok(Ok(stream)) => {
                drop(stream);
                ProbeResult::ok(start.elapsed(), "connected")
            }
            Ok(Err(e)) => {
                let reason = io_reason(&e);
                ProbeResult::fail(
                    reason,
                    start.elapsed(),
                    format!("connect to {}: {e}", self.address),
                )
            }
            Err(_) => ProbeResult::fail(
                Reason::TimedOut,
                start.elapsed(),
                format!("connect to {} timed out", self.address),
            ),
        }
    }
}

/// Map an I/O error to a reason.
pub fn io_reason(e: &std::io::Error) -> Reason {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => Reason::Refused,
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
            Reason::Reset
        }
        TimedOut | WouldBlock => Reason::TimedOut,
        // `lookup_host` failures surface as Other/Uncategorized with a resolver message.
        _ if e.to_string().contains("failed to lookup address")
            || e.to_string().contains("Name or service not known") =>
        {
            Reason::Dns
        }
        _ => Reason::Error,
    }
}

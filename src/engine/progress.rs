//! Where the engine reports what happens, besides the journal: the terminal, logs, JSON lines.
//! The engine knows nothing about terminals; the CLI provides the sink.

use crate::journal::Record;

pub trait ProgressSink: Send + Sync {
    /// Every journal record, after it is durable.
    fn record(&self, r: &Record);
    /// A transient note from a running step ("waiting for status available").
    fn note(&self, step: &str, message: &str);
    /// A message for the operator outside any step ("took over the lease", "journal at ...").
    fn notice(&self, message: &str);
    /// Stop redrawing while a human is asked something on the same terminal.
    fn hold(&self) {}
    /// Redraw again after `hold`.
    fn release(&self) {}
}

/// Reports nothing. For tests and for commands whose caller prints its own summary.
pub struct Silent;

impl ProgressSink for Silent {
    fn record(&self, _r: &Record) {}
    fn note(&self, _step: &str, _message: &str) {}
    fn notice(&self, _message: &str) {}
}

//! drctl: disaster-recovery orchestration for AWS warm-standby, multi-region deployments.
//!
//! Data flows one way: files -> [`config`] (validated, typed) -> [`run`] (lease, journal,
//! preflight, summary) -> [`engine`] plan -> executor -> [`steps`] -> [`aws`] traits. Events flow
//! back: executor -> [`journal`] (durable) and a progress sink (terminal, logs).

pub mod aws;
pub mod config;
pub mod engine;
pub mod exit;
pub mod journal;
pub mod probe;
pub mod readiness;
pub mod report;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod steps;
pub mod topology;

/// The version of the JSON documents drctl prints (`--output json`: status, plan, summary);
/// `drctl schema NAME` prints each one's JSON Schema. A field is never removed or retyped
/// without a new version. Durations are milliseconds (`_ms`); replica lag and RPO are seconds
/// (`_s`), as CloudWatch and the targets give them; enums are snake_case.
pub const SCHEMA_VERSION: u32 = 1;

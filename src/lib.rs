//! drctl: disaster-recovery orchestration for AWS warm-standby, multi-region deployments.
//!
//! Data flows one way: files -> [`config`] (validated, typed) -> [`engine`] plan -> executor ->
//! [`steps`] -> [`aws`] adapters. Events flow back: executor -> [`journal`] (durable) and a
//! progress sink (terminal, logs).

pub mod aws;
pub mod config;
pub mod engine;
pub mod exit;
pub mod journal;
pub mod probe;
pub mod readiness;
pub mod steps;

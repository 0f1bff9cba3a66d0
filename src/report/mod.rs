//! Reports and evidence, from journals alone: one run's report (Markdown, HTML with an SVG
//! timeline, versioned JSON), the history of an environment's runs with its RTO/RPO trend and
//! per-kind step durations, and the predicted RTO of a plan. Nothing here reads AWS or writes
//! a file; `run::report` finds the journals and the CLI writes the output.

pub mod drill;
pub mod history;
pub mod model;
pub mod render;
pub mod svg;

pub use history::{History, Prediction};
pub use model::{Report, Verdict, SCHEMA};

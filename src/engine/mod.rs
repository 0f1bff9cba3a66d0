//! The engine: plan (DAG), executor, rollback, approvals and progress events. It knows nothing
//! about AWS (steps do) and nothing about the terminal (the CLI's progress sink does).

pub mod approval;
mod core;
pub mod executor;
pub mod gate;
pub mod plan;
pub mod progress;
pub mod rollback;

pub use self::core::{Decision, Engine, EngineError, EngineParts, RunEnd, StepPrompter};
pub use plan::Plan;
pub use rollback::RollbackReport;

#[cfg(test)]
mod gate_tests;
#[cfg(test)]
mod tests;

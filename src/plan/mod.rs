//! The plan language: model, YAML loading, expressions, the compiler and its diagnostics.

pub mod catalog;
pub mod compiled;
pub mod compiler;
pub mod count;
pub mod diagnostic;
pub mod duration;
pub mod expr;
pub mod graph;
pub mod model;
pub mod params;
pub mod ratio;
pub mod schema_check;
pub mod size;
pub mod template;
pub mod yaml;

pub use compiled::{CompiledPlan, Role, Unit};
pub use compiler::compile;
pub use diagnostic::Diagnostic;

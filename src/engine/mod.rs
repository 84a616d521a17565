//! The executor: a deterministic core ([`state`]) driven by a runner ([`runner`]) that
//! journals before it acts.

pub mod background;
pub mod guards;
pub mod redact;
pub mod runner;
pub mod state;

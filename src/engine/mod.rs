//! The executor: a deterministic core ([`state`]) driven by a runner ([`runner`]) that
//! journals before it acts.

pub mod guards;
pub mod runner;
pub mod state;

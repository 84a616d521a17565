//! The executor: a deterministic core ([`state`]) driven by a runner ([`runner`]) that
//! journals before it acts; [`view`] is what a run looks like to people and APIs.

pub mod guards;
pub mod runner;
pub mod state;
pub mod view;

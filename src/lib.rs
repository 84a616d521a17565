//! lifeboat: a disaster-recovery automation engine. Recovery plans are DAGs of steps,
//! compiled without I/O ([`plan`]), run durably by the executor ([`engine`]) against a
//! journal ([`journal`]), with one adapter per step kind ([`steps`]). Drills inject
//! faults ([`chaos`]) and are measured and reported ([`drill`]).

pub mod chaos;
pub mod cli;
pub mod drill;
pub mod engine;
pub mod evidence;
pub mod import;
pub mod journal;
pub mod operator;
pub mod plan;
pub mod runbook;
pub mod secrets;
pub mod serve;
pub mod steps;

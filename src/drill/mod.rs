//! Drills: what a run achieved against its plan's objectives. [`measure`] turns a run's
//! journal (events and side-channel evidence) into RTO, RPO, rows lost and a verdict;
//! [`report`] renders that as HTML, Markdown, JSON or JUnit; [`trend`] summarizes a
//! plan's history.
//!
//! Every figure comes from recorded evidence: the injector's observed time, the probe's
//! first passing check, the canary's acknowledged writes. Nothing is measured by this
//! module's own clock.

pub mod measure;
pub mod report;
pub mod trend;

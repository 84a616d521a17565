//! Monitoring systems as drills see them: Prometheus-compatible query APIs (is the SLO met?)
//! and Alertmanager (silence the drill's blast radius, check that an alert fired).

pub mod alertmanager;
mod api;
pub mod prometheus;

pub use api::Auth;

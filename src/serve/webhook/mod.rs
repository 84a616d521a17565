//! Incoming incident webhooks: authenticate the request, parse the alerts, and route each alert to
//! a recovery plan with its params.
//!
//! A handler does, in order:
//! 1. [`verify`] the signature (Grafana, PagerDuty, `X-Hub-Signature-256`) over the raw body, or
//!    [`check_authorization`] for an Alertmanager receiver that sends a bearer token or basic auth;
//! 2. [`alertmanager::parse`] the body (or [`alertmanager::parse_grafana`] for a Grafana contact point);
//! 3. for each firing alert, [`dedupe_key`] to start its plan once, [`route`] to find the plan, and
//!    [`render_params`] to fill in the plan's params.
//!
//! Any error answers with [`WebhookError::status`]. Schemes without a signed timestamp (PagerDuty,
//! `X-Hub-Signature-256`, Grafana without a timestamp header, bearer and basic auth) cannot tell a
//! replay from a first delivery: the dedupe in step 3 is what makes a replay harmless.

pub mod alertmanager;
mod auth;
mod dedupe;
mod error;
mod routing;
mod signature;

pub use auth::{Credentials, check_authorization};
pub use dedupe::{dedupe_key, fingerprint};
pub use error::WebhookError;
pub use routing::{MatchOp, Matcher, Route, render_params, route};
pub use signature::{
    GRAFANA_SIGNATURE_HEADER, GRAFANA_TIMESTAMP_HEADER, HUB_SIGNATURE_256_HEADER, PAGERDUTY_SIGNATURE_HEADER, PAGERDUTY_WEBHOOK_ID_HEADER,
    SignatureScheme, verify,
};

//! The `alertmanager.*` step kinds: silencing a drill's blast radius for exactly the run
//! (`silence`), and asserting that monitoring saw the disaster (`expect_alert`).

pub mod expect_alert;
pub mod silence;

use super::StepError;
use super::monitoring::{AuthOption, LabelMatcher, REQUEST_TIMEOUT, auth};
use crate::plan::model::Limit;
use lifeboat_validation::monitoring::alertmanager::{Alertmanager, Matcher};

fn client(url: &str, credentials: &Option<AuthOption>, timeout: Option<Limit>) -> Result<Alertmanager, StepError> {
    Ok(Alertmanager::new(
        url,
        auth(credentials),
        timeout.map_or(REQUEST_TIMEOUT, |d| d.get()),
    )?)
}

fn matchers(options: &[LabelMatcher], what: &str) -> Result<Vec<Matcher>, StepError> {
    if options.is_empty() {
        return Err(StepError::terminal(format!(
            "matchers: {what} needs at least one, e.g. `alertname=\"InstanceDown\"`"
        )));
    }
    Ok(options.iter().map(|m| m.0.clone()).collect())
}

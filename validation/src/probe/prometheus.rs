//! PromQL probe: an instant query whose samples must meet a condition (an error ratio below
//! 1%, `up` equal to 1). What it judged (the query, the instant, every sample and its
//! labels) is the evidence.

use crate::ValidationError;
use crate::monitoring::prometheus::{OnEmpty, Prometheus, SeriesRule, judge};
use crate::threshold::Threshold;
use chrono::Utc;

#[derive(Debug, Clone)]
pub struct PromProbe {
    pub prometheus: Prometheus,
    pub query: String,
    pub threshold: Threshold,
    pub series: SeriesRule,
    pub on_empty: OnEmpty,
}

impl PromProbe {
    pub async fn check(&self) -> Result<super::Observation, ValidationError> {
        let evaluated_at = Utc::now();
        let samples = self.prometheus.instant(&self.query, Some(evaluated_at)).await?;
        let judged = judge(&self.query, &self.threshold, self.series, self.on_empty, samples, evaluated_at)?;
        let summary = match judged.samples.as_slice() {
            [] => format!("`{}` returned no series", self.query),
            [one] => format!("`{}` = {} ({})", self.query, one.value, self.threshold),
            many => format!("`{}`: {} series {}", self.query, many.len(), self.threshold),
        };
        Ok(super::Observation {
            summary,
            detail: serde_json::to_value(&judged).ok(),
        })
    }
}

//! Queries against the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`), which
//! Thanos, Mimir and VictoriaMetrics speak too, and judging the samples they return.

use super::api::{Api, Auth};
use crate::ValidationError;
use crate::threshold::Threshold;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// One series' value at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    #[serde(serialize_with = "finite_or_text")]
    pub value: f64,
    pub at: DateTime<Utc>,
}

/// One series over a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(DateTime<Utc>, f64)>,
}

#[derive(Debug, Clone)]
pub struct Prometheus {
    api: Api,
}

impl Prometheus {
    pub fn new(url: &str, auth: Option<Auth>, timeout: Duration) -> Result<Prometheus, ValidationError> {
        Ok(Prometheus {
            api: Api::new("Prometheus", url, auth, timeout)?,
        })
    }

    pub fn url(&self) -> &str {
        self.api.base()
    }

    /// An instant query evaluated at `at` (the server's now when `None`). A scalar comes back
    /// as one sample without labels.
    pub async fn instant(&self, query: &str, at: Option<DateTime<Utc>>) -> Result<Vec<Sample>, ValidationError> {
        let mut form = vec![("query", query.to_owned())];
        if let Some(at) = at {
            form.push(("time", seconds(at)));
        }
        let request = self.api.request(reqwest::Method::POST, "/api/v1/query").form(&form);
        let data = self.data(request, query).await?;
        match data.get("resultType").and_then(Value::as_str) {
            Some("vector") => array(&data["result"])
                .iter()
                .map(|s| {
                    let (at, value) = value(&s["value"], query)?;
                    Ok(Sample {
                        labels: labels(&s["metric"]),
                        value,
                        at,
                    })
                })
                .collect(),
            Some("scalar") => {
                let (at, value) = value(&data["result"], query)?;
                Ok(vec![Sample {
                    labels: BTreeMap::new(),
                    value,
                    at,
                }])
            }
            Some("matrix") => Err(ValidationError::Invalid(format!(
                "`{query}` returns a range vector; an instant check needs an instant vector (e.g. wrap it in rate() or avg_over_time())"
            ))),
            other => Err(ValidationError::Invalid(format!(
                "`{query}` returns a {}, not a number",
                other.unwrap_or("result of no type")
            ))),
        }
    }

    /// A range query from `start` to `end` every `step`.
    pub async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>, ValidationError> {
        let form = [
            ("query", query.to_owned()),
            ("start", seconds(start)),
            ("end", seconds(end)),
            ("step", format!("{:.3}", step.as_secs_f64())),
        ];
        let request = self.api.request(reqwest::Method::POST, "/api/v1/query_range").form(&form);
        let data = self.data(request, query).await?;
        array(&data["result"])
            .iter()
            .map(|s| {
                Ok(Series {
                    labels: labels(&s["metric"]),
                    points: array(&s["values"]).iter().map(|p| value(p, query)).collect::<Result<_, _>>()?,
                })
            })
            .collect()
    }

    async fn data(&self, request: reqwest::RequestBuilder, query: &str) -> Result<Value, ValidationError> {
        let mut answer = self.api.json(request, &format!("the query `{query}`")).await?;
        if answer.get("status").and_then(Value::as_str) != Some("success") {
            return Err(ValidationError::Invalid(format!(
                "Prometheus at {} answered `{query}` without success: {answer}",
                self.url()
            )));
        }
        if let Some(warnings) = answer.get("warnings").and_then(Value::as_array).filter(|w| !w.is_empty()) {
            tracing::warn!(query, warnings = ?warnings, "Prometheus warned about a query");
        }
        Ok(answer["data"].take())
    }
}

/// `{a="1", b="2"}`, as PromQL writes a series.
pub fn series_name(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

/// Which series a check judges when the query returns several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeriesRule {
    /// Exactly one series (or a scalar); several are an error naming them.
    #[default]
    One,
    /// Every series must meet the condition.
    All,
    /// At least one series must meet it.
    Any,
}

/// What an empty result means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnEmpty {
    /// The check fails at once: the query names nothing, which is the plan's mistake.
    #[default]
    Fail,
    /// The check passes (an alert-style query: no series means nothing is wrong).
    Pass,
    /// Not yet: keep polling (series appear after a restart's first scrape).
    Wait,
}

/// The verdict on an instant query's samples.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    pub query: String,
    pub condition: String,
    pub evaluated_at: DateTime<Utc>,
    pub samples: Vec<Sample>,
    /// The samples that did not meet the condition.
    pub failing: Vec<String>,
}

/// Judges `samples` of `query` against `threshold`. `Ok` when they pass; a `NotPassing`
/// error (keep polling) when they do not; `Invalid` when they can never be judged.
pub fn judge(
    query: &str,
    threshold: &Threshold,
    series: SeriesRule,
    on_empty: OnEmpty,
    samples: Vec<Sample>,
    evaluated_at: DateTime<Utc>,
) -> Result<Judged, ValidationError> {
    let describe = |s: &Sample| format!("{} = {}", series_name(&s.labels), s.value);
    if samples.is_empty() {
        let nothing = format!("`{query}` returned no series");
        return match on_empty {
            OnEmpty::Pass => Ok(Judged {
                query: query.to_owned(),
                condition: threshold.to_string(),
                evaluated_at,
                samples,
                failing: Vec::new(),
            }),
            OnEmpty::Wait => Err(ValidationError::NotPassing(format!("{nothing} yet"))),
            OnEmpty::Fail => Err(ValidationError::Invalid(format!(
                "{nothing}; check the metric and label names, or set `on_empty: pass` (nothing is wrong) or `wait` (series appear later)"
            ))),
        };
    }
    if series == SeriesRule::One && samples.len() > 1 {
        let names: Vec<String> = samples.iter().take(10).map(describe).collect();
        return Err(ValidationError::Invalid(format!(
            "`{query}` returned {} series where one was expected: {}{}; aggregate them (e.g. sum by () or max()) or set `series: all` or `any`",
            samples.len(),
            names.join("; "),
            if samples.len() > 10 { "; …" } else { "" }
        )));
    }
    let failing: Vec<String> = samples.iter().filter(|s| !threshold.holds(s.value)).map(describe).collect();
    let passes = match series {
        SeriesRule::One | SeriesRule::All => failing.is_empty(),
        SeriesRule::Any => failing.len() < samples.len(),
    };
    if !passes {
        return Err(ValidationError::NotPassing(format!(
            "`{query}`: {} not {threshold}",
            failing.join("; ")
        )));
    }
    Ok(Judged {
        query: query.to_owned(),
        condition: threshold.to_string(),
        evaluated_at,
        samples,
        failing,
    })
}

/// A condition checked at every point of a window.
#[derive(Debug, Clone, Serialize)]
pub struct RangeReport {
    pub query: String,
    pub condition: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub step_ms: u128,
    pub series: usize,
    pub points: usize,
    /// Points that broke the condition, `series @ time = value` (the first 20).
    pub violations: Vec<String>,
    pub violation_count: usize,
}

/// Checks that `threshold` held at every point of every series of `query` from `start` to
/// `end`. An empty window is judged by `on_empty` (`wait` counts as `fail`: the window is over).
pub async fn check_range(
    prometheus: &Prometheus,
    query: &str,
    threshold: &Threshold,
    (start, end, step): (DateTime<Utc>, DateTime<Utc>, Duration),
    on_empty: OnEmpty,
) -> Result<RangeReport, ValidationError> {
    let series = prometheus.range(query, start, end, step).await?;
    let points = series.iter().map(|s| s.points.len()).sum();
    if points == 0 && on_empty != OnEmpty::Pass {
        return Err(ValidationError::Invalid(format!(
            "`{query}` has no data from {start} to {end}; check the metric and label names, or set `on_empty: pass`"
        )));
    }
    let broken: Vec<String> = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .filter(|(_, v)| !threshold.holds(*v))
                .map(move |(at, v)| format!("{} @ {} = {v}", series_name(&s.labels), at.format("%H:%M:%S%.3f")))
        })
        .collect();
    let report = RangeReport {
        query: query.to_owned(),
        condition: threshold.to_string(),
        start,
        end,
        step_ms: step.as_millis(),
        series: series.len(),
        points,
        violation_count: broken.len(),
        violations: broken.into_iter().take(20).collect(),
    };
    if report.violation_count > 0 {
        return Err(ValidationError::NotPassing(format!(
            "`{query}` was not {threshold} at {} of {points} points from {start} to {end}: {}{}",
            report.violation_count,
            report.violations.join("; "),
            if report.violation_count > report.violations.len() {
                "; …"
            } else {
                ""
            }
        )));
    }
    Ok(report)
}

fn seconds(at: DateTime<Utc>) -> String {
    format!("{:.3}", at.timestamp_millis() as f64 / 1000.0)
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `[<unix seconds>, "<value>"]`; values are strings so that NaN and ±Inf survive JSON.
fn value(v: &Value, query: &str) -> Result<(DateTime<Utc>, f64), ValidationError> {
    let malformed = || ValidationError::Invalid(format!("Prometheus answered `{query}` with a malformed sample: {v}"));
    let at = v[0].as_f64().ok_or_else(malformed)?;
    let value = v[1].as_str().and_then(|s| s.parse::<f64>().ok()).ok_or_else(malformed)?;
    let at = Utc
        .timestamp_millis_opt((at * 1000.0).round() as i64)
        .single()
        .ok_or_else(malformed)?;
    Ok((at, value))
}

fn finite_or_text<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_str(&v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(instance: &str, value: f64) -> Sample {
        Sample {
            labels: [("instance".to_owned(), instance.to_owned())].into(),
            value,
            at: Utc::now(),
        }
    }

    #[test]
    fn values_as_prometheus_writes_them() {
        for (text, expected) in [("1", 1.0), ("0.25", 0.25), ("+Inf", f64::INFINITY), ("-Inf", f64::NEG_INFINITY)] {
            let v = value(&serde_json::json!([1700000000.5, text]), "q").unwrap();
            assert_eq!(v.1, expected, "{text}");
            assert_eq!(v.0.timestamp_millis(), 1_700_000_000_500);
        }
        assert!(value(&serde_json::json!([1, "NaN"]), "q").unwrap().1.is_nan());
        assert!(value(&serde_json::json!(["x", "1"]), "q").is_err());
    }

    #[test]
    fn several_series_where_one_was_expected_are_named() {
        let lt: Threshold = "< 1".parse().unwrap();
        let e = judge(
            "up",
            &lt,
            SeriesRule::One,
            OnEmpty::Fail,
            vec![sample("a", 0.0), sample("b", 0.0)],
            Utc::now(),
        )
        .unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.to_string().contains(r#"{instance="a"} = 0; {instance="b"} = 0"#), "{e}");
        assert!(
            judge(
                "up",
                &lt,
                SeriesRule::All,
                OnEmpty::Fail,
                vec![sample("a", 0.0), sample("b", 2.0)],
                Utc::now()
            )
            .is_err()
        );
        assert!(
            judge(
                "up",
                &lt,
                SeriesRule::Any,
                OnEmpty::Fail,
                vec![sample("a", 0.0), sample("b", 2.0)],
                Utc::now()
            )
            .is_ok()
        );
    }

    #[test]
    fn empty_results_do_what_the_plan_says() {
        let eq: Threshold = "== 1".parse().unwrap();
        assert!(
            !judge("x", &eq, SeriesRule::One, OnEmpty::Fail, vec![], Utc::now())
                .unwrap_err()
                .is_retryable()
        );
        assert!(
            judge("x", &eq, SeriesRule::One, OnEmpty::Wait, vec![], Utc::now())
                .unwrap_err()
                .is_retryable()
        );
        assert!(judge("x", &eq, SeriesRule::One, OnEmpty::Pass, vec![], Utc::now()).is_ok());
    }
}

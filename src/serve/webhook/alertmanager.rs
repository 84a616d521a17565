//! The Alertmanager webhook payload (`webhook_config`, payload version "4") and its parser.
//!
//! Alertmanager posts one JSON object per notification: the group (`groupKey`, `groupLabels`,
//! `commonLabels`, `commonAnnotations`, `receiver`, `externalURL`, `status`, `truncatedAlerts`) and
//! its `alerts`, each with `status`, `labels`, `annotations`, `startsAt`, `endsAt`, `generatorURL`
//! and `fingerprint`. Fields this receiver does not know are ignored, so a newer Alertmanager (or
//! Grafana, whose payload adds `orgId`, `title`, `values`, ...) still parses. Timestamps are RFC 3339
//! with any offset and are kept in UTC; an `endsAt` of `0001-01-01T00:00:00Z` (Go's zero time, what
//! Alertmanager sends while an alert has no end yet) becomes `None`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Deserializer};

use super::WebhookError;

/// The only payload version of Alertmanager's webhook that [`parse`] accepts.
pub const ALERTMANAGER_VERSION: &str = "4";

/// The payload version of Grafana alerting's webhook contact point, accepted by [`parse_grafana`].
pub const GRAFANA_VERSION: &str = "1";

/// One webhook notification: a group of alerts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Payload {
    /// The payload version: "4" from Alertmanager, "1" from Grafana.
    pub version: String,
    /// The key Alertmanager groups these alerts under.
    #[serde(rename = "groupKey", default)]
    pub group_key: String,
    /// How many alerts of the group were left out because of the receiver's `max_alerts`.
    #[serde(rename = "truncatedAlerts", default)]
    pub truncated_alerts: u64,
    /// `firing` if at least one alert of the group fires, else `resolved`.
    pub status: AlertStatus,
    /// The name of the Alertmanager receiver that sent this.
    #[serde(default)]
    pub receiver: String,
    #[serde(rename = "groupLabels", default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(rename = "commonLabels", default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(rename = "commonAnnotations", default)]
    pub common_annotations: BTreeMap<String, String>,
    /// The sending Alertmanager's external URL.
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    pub alerts: Vec<Alert>,
}

/// One alert of a notification.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Alert {
    pub status: AlertStatus,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing, in UTC.
    #[serde(rename = "startsAt")]
    pub starts_at: DateTime<Utc>,
    /// When the alert ended or is expected to end, in UTC; `None` for Go's zero time or when absent.
    #[serde(rename = "endsAt", default, deserialize_with = "zero_time_is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// The link back to the rule that produced the alert.
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    /// Alertmanager's hash of the alert's labels; may be empty from other senders
    /// (see [`super::dedupe_key`] for what is used then).
    #[serde(default)]
    pub fingerprint: String,
}

/// Whether an alert (or a group) fires or has resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    /// The word Alertmanager uses: `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl std::fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the raw body of an Alertmanager webhook, refusing any payload version but "4".
pub fn parse(body: &[u8]) -> Result<Payload, WebhookError> {
    parse_version(
        body,
        ALERTMANAGER_VERSION,
        "point an Alertmanager webhook_config (which posts version \"4\") at this endpoint; a Grafana contact \
         point (version \"1\") must be read with the Grafana parser",
    )
}

/// Parses the raw body of a Grafana alerting webhook contact point, refusing any payload version but
/// "1". Its alerts have the same shape as Alertmanager's; Grafana's extra fields are ignored.
pub fn parse_grafana(body: &[u8]) -> Result<Payload, WebhookError> {
    parse_version(
        body,
        GRAFANA_VERSION,
        "this endpoint takes Grafana alerting webhooks without a custom payload template; an Alertmanager \
         webhook_config (version \"4\") must be read with the Alertmanager parser",
    )
}

/// Only the version field, read first so that a payload of another version is refused for its
/// version rather than for whichever field it lacks.
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(default)]
    version: Option<serde_json::Value>,
}

fn parse_version(body: &[u8], expected: &'static str, hint: &'static str) -> Result<Payload, WebhookError> {
    let probe: VersionProbe = serde_json::from_slice(body).map_err(malformed)?;
    match probe.version {
        Some(serde_json::Value::String(v)) if v == expected => {}
        Some(other) => {
            let shown = other.to_string();
            let mut found: String = shown.chars().take(40).collect();
            if found.len() < shown.len() {
                found.push('…');
            }
            return Err(WebhookError::UnsupportedVersion { found, expected, hint });
        }
        None => {
            return Err(WebhookError::UnsupportedVersion {
                found: "(no version field)".into(),
                expected,
                hint,
            });
        }
    }
    serde_json::from_slice(body).map_err(malformed)
}

fn malformed(err: serde_json::Error) -> WebhookError {
    WebhookError::MalformedBody { reason: err.to_string() }
}

fn zero_time_is_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let time = Option::<DateTime<Utc>>::deserialize(deserializer)?;
    // Go's zero time.Time is year 1; nothing real ends then.
    Ok(time.filter(|t| t.year() > 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A notification as Alertmanager 0.27 posts it, plus fields it does not send today (`silenceURL`,
    /// `orgId`, `values`, `futureField`) that must be ignored.
    const FIRING_AND_RESOLVED: &str = r#"{
      "receiver": "lifeboat",
      "status": "firing",
      "alerts": [
        {
          "status": "firing",
          "labels": {"alertname": "PostgresPrimaryDown", "service": "db-main", "severity": "critical", "env": "prod"},
          "annotations": {"summary": "primary db-main unreachable", "runbook_url": "https://runbooks.example/db"},
          "startsAt": "2024-05-01T10:15:30.123456789+02:00",
          "endsAt": "0001-01-01T00:00:00Z",
          "generatorURL": "http://prometheus.example:9090/graph?g0.expr=pg_up+%3D%3D+0",
          "fingerprint": "1a30ba71cca2921f",
          "silenceURL": "http://am.example/#/silences/new",
          "values": {"B": 0}
        },
        {
          "status": "resolved",
          "labels": {"alertname": "ReplicaLag", "service": "db-replica", "severity": "warning"},
          "annotations": {"summary": "replica lag back to normal"},
          "startsAt": "2024-05-01T07:00:00Z",
          "endsAt": "2024-05-01T08:05:00Z",
          "generatorURL": "http://prometheus.example:9090/graph?g0.expr=pg_lag",
          "fingerprint": "c6eadffa33fcdf37"
        }
      ],
      "groupLabels": {"alertname": "PostgresPrimaryDown"},
      "commonLabels": {"env": "prod"},
      "commonAnnotations": {},
      "externalURL": "http://alertmanager.example:9093",
      "version": "4",
      "groupKey": "{}/{severity=\"critical\"}:{alertname=\"PostgresPrimaryDown\"}",
      "truncatedAlerts": 2,
      "orgId": 1,
      "futureField": {"nested": [1, 2, 3]}
    }"#;

    #[test]
    fn parses_a_realistic_v4_body_and_ignores_unknown_fields() {
        let payload = parse(FIRING_AND_RESOLVED.as_bytes()).expect("a v4 body parses");
        assert_eq!(payload.version, "4");
        assert_eq!(payload.receiver, "lifeboat");
        assert_eq!(payload.status, AlertStatus::Firing);
        assert_eq!(payload.truncated_alerts, 2);
        assert_eq!(payload.group_key, "{}/{severity=\"critical\"}:{alertname=\"PostgresPrimaryDown\"}");
        assert_eq!(
            payload.group_labels.get("alertname").map(String::as_str),
            Some("PostgresPrimaryDown")
        );
        assert_eq!(payload.common_labels.get("env").map(String::as_str), Some("prod"));
        assert!(payload.common_annotations.is_empty());
        assert_eq!(payload.external_url, "http://alertmanager.example:9093");
        assert_eq!(payload.alerts.len(), 2);

        let firing = &payload.alerts[0];
        assert_eq!(firing.status, AlertStatus::Firing);
        assert_eq!(firing.labels["service"], "db-main");
        assert_eq!(firing.annotations["summary"], "primary db-main unreachable");
        // +02:00 is normalised to UTC, nanoseconds kept.
        let expected_start = Utc.with_ymd_and_hms(2024, 5, 1, 8, 15, 30).unwrap() + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(firing.starts_at, expected_start);
        assert_eq!(firing.ends_at, None, "Go's zero time means no end yet");
        assert_eq!(firing.fingerprint, "1a30ba71cca2921f");
        assert!(firing.generator_url.starts_with("http://prometheus.example:9090/graph"));

        let resolved = &payload.alerts[1];
        assert_eq!(resolved.status, AlertStatus::Resolved);
        assert_eq!(resolved.ends_at, Some(Utc.with_ymd_and_hms(2024, 5, 1, 8, 5, 0).unwrap()));
        assert_eq!(resolved.starts_at, Utc.with_ymd_and_hms(2024, 5, 1, 7, 0, 0).unwrap());
    }

    #[test]
    fn a_resolved_group_parses() {
        let body = FIRING_AND_RESOLVED.replacen(r#""status": "firing","#, r#""status": "resolved","#, 1);
        let payload = parse(body.as_bytes()).unwrap();
        assert_eq!(payload.status, AlertStatus::Resolved);
    }

    #[test]
    fn refuses_version_3_with_a_clear_error() {
        let body = FIRING_AND_RESOLVED.replace(r#""version": "4""#, r#""version": "3""#);
        let err = parse(body.as_bytes()).unwrap_err();
        assert!(matches!(err, WebhookError::UnsupportedVersion { .. }), "{err:?}");
        assert_eq!(err.status(), 400);
        let text = err.to_string();
        assert!(text.contains("version \"3\""), "{text}");
        assert!(text.contains("only accepts version \"4\""), "{text}");
    }

    #[test]
    fn refuses_a_body_without_version_or_with_a_numeric_one() {
        let err = parse(br#"{"status":"firing","alerts":[]}"#).unwrap_err();
        assert!(err.to_string().contains("no version field"), "{err}");
        let err = parse(br#"{"version":4,"status":"firing","alerts":[]}"#).unwrap_err();
        assert!(err.to_string().contains("version 4,"), "a number is shown unquoted: {err}");
    }

    #[test]
    fn grafana_bodies_need_the_grafana_parser() {
        let grafana = FIRING_AND_RESOLVED.replace(r#""version": "4""#, r#""version": "1""#);
        let err = parse(grafana.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("Grafana parser"), "{err}");
        let payload = parse_grafana(grafana.as_bytes()).expect("Grafana's version 1 parses");
        assert_eq!(payload.alerts.len(), 2);
        assert!(parse_grafana(FIRING_AND_RESOLVED.as_bytes()).is_err(), "version 4 is not Grafana's");
    }

    #[test]
    fn malformed_bodies_are_400_and_say_why() {
        let err = parse(b"not json").unwrap_err();
        assert!(matches!(err, WebhookError::MalformedBody { .. }));
        assert_eq!(err.status(), 400);

        let no_starts_at = r#"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{}}]}"#;
        let err = parse(no_starts_at.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("startsAt"), "{err}");

        let bad_status = r#"{"version":"4","status":"burning","alerts":[]}"#;
        let err = parse(bad_status.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("burning"), "{err}");

        let bad_time = r#"{"version":"4","status":"firing","alerts":[{"status":"firing","startsAt":"yesterday"}]}"#;
        assert!(matches!(
            parse(bad_time.as_bytes()).unwrap_err(),
            WebhookError::MalformedBody { .. }
        ));
    }

    #[test]
    fn absent_or_null_ends_at_is_none() {
        let body = r#"{"version":"4","status":"firing","alerts":[
            {"status":"firing","startsAt":"2024-05-01T07:00:00Z"},
            {"status":"firing","startsAt":"2024-05-01T07:00:00Z","endsAt":null}]}"#;
        let payload = parse(body.as_bytes()).unwrap();
        assert!(payload.alerts.iter().all(|a| a.ends_at.is_none() && a.fingerprint.is_empty()));
    }
}

//! The dedupe key of a firing alert, so that a notification Alertmanager repeats (every
//! `repeat_interval`, on retry, or from each peer of an HA pair) starts its plan once.
//!
//! The key is (fingerprint, `startsAt` as RFC 3339 in UTC): the same alert firing again after it
//! resolved has a new `startsAt`, and so a new key. The fingerprint is the alert's own; when it is
//! empty (a sender that does not set one) it is computed from the labels: SHA-256 over each label,
//! in name order, as the name, a 0xFF byte, the value, a 0xFF byte (0xFF never occurs in UTF-8, so
//! no two label sets hash alike by running together), written as lower-case hex and cut to its
//! first 16 characters, the length of Alertmanager's own fingerprints. It is not Alertmanager's
//! fingerprint (an FNV-1a hash), so an alert keys the same only while its sender keeps sending, or
//! keeps omitting, the fingerprint.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use super::alertmanager::Alert;

/// The dedupe key of an alert: (fingerprint, `startsAt` as RFC 3339 UTC). See the module's doc for
/// the fingerprint computed when the alert has none.
pub fn dedupe_key(alert: &Alert) -> (String, String) {
    (fingerprint(alert), rfc3339_utc(&alert.starts_at))
}

/// The alert's fingerprint, or, when it is empty, the one computed from its labels (see the
/// module's doc).
pub fn fingerprint(alert: &Alert) -> String {
    if !alert.fingerprint.is_empty() {
        return alert.fingerprint.clone();
    }
    let mut hasher = Sha256::new();
    // A BTreeMap iterates in name order.
    for (name, value) in &alert.labels {
        hasher.update(name.as_bytes());
        hasher.update([0xff]);
        hasher.update(value.as_bytes());
        hasher.update([0xff]);
    }
    let mut hex = hex::encode(hasher.finalize());
    hex.truncate(16);
    hex
}

/// RFC 3339 in UTC with a `Z`, and as many fractional digits as the time has (none, 3, 6 or 9).
pub(super) fn rfc3339_utc(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::alertmanager::{AlertStatus, parse};
    use super::*;

    fn alert(fingerprint: &str, labels: &[(&str, &str)], starts_at: &str) -> Alert {
        Alert {
            status: AlertStatus::Firing,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            annotations: BTreeMap::new(),
            starts_at: DateTime::parse_from_rfc3339(starts_at).unwrap().with_timezone(&Utc),
            ends_at: None,
            generator_url: String::new(),
            fingerprint: fingerprint.to_owned(),
        }
    }

    #[test]
    fn with_a_fingerprint_the_key_is_it_and_starts_at_in_utc() {
        let a = alert("1a30ba71cca2921f", &[("alertname", "X")], "2024-05-01T10:15:30.123+02:00");
        assert_eq!(
            dedupe_key(&a),
            ("1a30ba71cca2921f".to_owned(), "2024-05-01T08:15:30.123Z".to_owned())
        );
        let whole = alert("f", &[], "2024-05-01T08:15:30Z");
        assert_eq!(dedupe_key(&whole).1, "2024-05-01T08:15:30Z");
    }

    #[test]
    fn without_a_fingerprint_it_is_computed_from_sorted_labels() {
        let a = alert(
            "",
            &[("service", "db-main"), ("alertname", "PostgresPrimaryDown")],
            "2024-05-01T08:15:30Z",
        );
        let (fp, starts) = dedupe_key(&a);
        assert_eq!(starts, "2024-05-01T08:15:30Z");
        // Independently: sha256("alertname" FF "PostgresPrimaryDown" FF "service" FF "db-main" FF), first 16 hex.
        let mut message = Vec::new();
        for part in ["alertname", "PostgresPrimaryDown", "service", "db-main"] {
            message.extend_from_slice(part.as_bytes());
            message.push(0xff);
        }
        assert_eq!(fp, hex::encode(Sha256::digest(&message))[..16]);
        assert_eq!(fp.len(), 16);
        assert!(fp.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));

        // Same labels, same key; other labels, or the same text split differently, another.
        let same = alert(
            "",
            &[("alertname", "PostgresPrimaryDown"), ("service", "db-main")],
            "2024-05-01T08:15:30Z",
        );
        assert_eq!(dedupe_key(&same).0, fp);
        let split = alert(
            "",
            &[("alertname", "PostgresPrimaryDownservice"), ("", "db-main")],
            "2024-05-01T08:15:30Z",
        );
        assert_ne!(dedupe_key(&split).0, fp);
        // The same alert firing again later is a new key.
        let again = alert(
            "",
            &[("alertname", "PostgresPrimaryDown"), ("service", "db-main")],
            "2024-05-01T09:00:00Z",
        );
        assert_ne!(dedupe_key(&again), dedupe_key(&a));
    }

    #[test]
    fn parsed_payload_keys_are_stable_across_offsets() {
        let body = |starts: &str| {
            format!(r#"{{"version":"4","status":"firing","alerts":[{{"status":"firing","labels":{{"a":"b"}},"startsAt":"{starts}"}}]}}"#)
        };
        let utc = parse(body("2024-05-01T08:00:00.5Z").as_bytes()).unwrap();
        let cest = parse(body("2024-05-01T10:00:00.500+02:00").as_bytes()).unwrap();
        assert_eq!(dedupe_key(&utc.alerts[0]), dedupe_key(&cest.alerts[0]));
        assert_eq!(dedupe_key(&utc.alerts[0]).1, "2024-05-01T08:00:00.500Z");
    }
}

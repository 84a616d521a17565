//! HMAC-SHA256 signature schemes of incoming webhooks, verified in constant time.
//!
//! * Grafana alerting (contact point `hmacConfig`): the signature header (default
//!   `X-Grafana-Alerting-Signature`) holds the bare lower-case hex HMAC-SHA256. When the contact
//!   point sets a timestamp header, Grafana puts the Unix time in seconds in it and signs
//!   `<timestamp>:<raw body>`; otherwise it signs the raw body alone. Grafana has no default name for
//!   the timestamp header: [`SignatureScheme::Grafana`] expects `X-Grafana-Alerting-Signature-Timestamp`
//!   (the name Grafana's provisioning docs use) and refuses requests without it;
//!   [`SignatureScheme::GrafanaCustom`] takes other names, or none.
//! * PagerDuty v3 webhooks: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`, one HMAC-SHA256 of the
//!   raw body per active secret during a rotation; one match suffices. PagerDuty signs no timestamp,
//!   so nothing here stops a replay: the caller must dedupe (on the `X-Webhook-Id` header, which
//!   PagerDuty repeats on each redelivery of one webhook, or on the event id in the body).
//! * `X-Hub-Signature-256: sha256=<hex>` (GitHub-style), HMAC-SHA256 of the raw body; no timestamp
//!   either, so replays are again the caller's dedupe to stop.
//!
//! The HMAC is always of the raw body as received: a body that was parsed and re-serialised will not
//! verify.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::WebhookError;

type HmacSha256 = Hmac<Sha256>;

/// Grafana's default signature header.
pub const GRAFANA_SIGNATURE_HEADER: &str = "X-Grafana-Alerting-Signature";
/// The timestamp header [`SignatureScheme::Grafana`] expects; set it as the contact point's
/// `hmacConfig.timestampHeader` (Grafana has no default for it).
pub const GRAFANA_TIMESTAMP_HEADER: &str = "X-Grafana-Alerting-Signature-Timestamp";
/// PagerDuty v3's signature header.
pub const PAGERDUTY_SIGNATURE_HEADER: &str = "X-PagerDuty-Signature";
/// The header PagerDuty repeats on every delivery attempt of one webhook: the key to dedupe on.
pub const PAGERDUTY_WEBHOOK_ID_HEADER: &str = "X-Webhook-Id";
/// The GitHub-style signature header of [`SignatureScheme::HubSignature256`].
pub const HUB_SIGNATURE_256_HEADER: &str = "X-Hub-Signature-256";

/// How a sender signs its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureScheme {
    /// Grafana alerting with the signature in `X-Grafana-Alerting-Signature` and a required signed
    /// timestamp in `X-Grafana-Alerting-Signature-Timestamp`, checked against `max_age`.
    Grafana,
    /// Grafana alerting with other header names. `timestamp_header: None` accepts body-only
    /// signatures, which carry no timestamp: replays are then the caller's dedupe to stop.
    GrafanaCustom {
        signature_header: String,
        timestamp_header: Option<String>,
    },
    /// PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]`. No timestamp: replays are the
    /// caller's dedupe to stop (see [`PAGERDUTY_WEBHOOK_ID_HEADER`]).
    PagerDuty,
    /// `X-Hub-Signature-256: sha256=<hex>`. No timestamp: replays are the caller's dedupe to stop.
    HubSignature256,
}

/// Verifies a signed request.
///
/// `headers` looks a header up by its lower-case name. `now` is the time to judge a signed
/// timestamp's freshness by, and `max_age` how far from `now` (past or future) it may be, when the
/// scheme carries one; schemes without a timestamp ignore both. The secret is used as given (for
/// Grafana and PagerDuty: the secret string's UTF-8 bytes, not decoded).
pub fn verify(
    scheme: &SignatureScheme,
    secret: &[u8],
    headers: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<(), WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::NotConfigured {
            what: "webhook signing secret",
        });
    }
    match scheme {
        SignatureScheme::Grafana => verify_grafana(
            secret,
            headers,
            body,
            GRAFANA_SIGNATURE_HEADER,
            Some(GRAFANA_TIMESTAMP_HEADER),
            now,
            max_age,
        ),
        SignatureScheme::GrafanaCustom {
            signature_header,
            timestamp_header,
        } => verify_grafana(secret, headers, body, signature_header, timestamp_header.as_deref(), now, max_age),
        SignatureScheme::PagerDuty => verify_pagerduty(secret, headers, body),
        SignatureScheme::HubSignature256 => verify_hub(secret, headers, body),
    }
}

const GRAFANA_HINT: &str = "set a secret in the Grafana contact point's HMAC signature settings (hmacConfig), the same \
                            secret this receiver has";
const GRAFANA_TIMESTAMP_HINT: &str = "set the Grafana contact point's HMAC timestamp header (hmacConfig.timestampHeader) \
                                      to this name, so that each request carries a signed time and a replay can be told";
const PAGERDUTY_HINT: &str = "verify that the sender is a PagerDuty v3 webhook subscription, and give this receiver \
                              the subscription's signing secret";
const HUB_HINT: &str = "configure the sender's webhook secret, so that it signs with sha256=<hex>";

fn lookup(headers: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    headers(&name.to_ascii_lowercase())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    HmacSha256::new_from_slice(secret).expect("HMAC-SHA256 accepts keys of any length")
}

/// Decodes a hex HMAC-SHA256 (either case); `None` if it is not 64 hex digits.
fn decode_digest(hex_digest: &str) -> Option<Vec<u8>> {
    let bytes = hex::decode(hex_digest).ok()?;
    (bytes.len() == 32).then_some(bytes)
}

#[allow(clippy::too_many_arguments)]
fn verify_grafana(
    secret: &[u8],
    headers: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    signature_header: &str,
    timestamp_header: Option<&str>,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<(), WebhookError> {
    let presented = lookup(headers, signature_header).ok_or_else(|| WebhookError::MissingSignature {
        header: signature_header.to_owned(),
        hint: GRAFANA_HINT,
    })?;
    let mut mac = keyed(secret);
    let mut signed_at = None;
    if let Some(ts_header) = timestamp_header {
        let raw = lookup(headers, ts_header).ok_or_else(|| WebhookError::MissingTimestamp {
            header: ts_header.to_owned(),
            hint: GRAFANA_TIMESTAMP_HINT,
        })?;
        let seconds: i64 = raw.parse().map_err(|_| WebhookError::MalformedTimestamp {
            header: ts_header.to_owned(),
        })?;
        // Exactly the bytes Grafana signed: the timestamp as sent, a colon, the body.
        mac.update(raw.as_bytes());
        mac.update(b":");
        signed_at = Some((ts_header, seconds));
    }
    mac.update(body);
    let digest = decode_digest(&presented).ok_or_else(|| WebhookError::MalformedSignature {
        header: signature_header.to_owned(),
        reason: "it is not 64 hex digits (Grafana sends the bare hex HMAC-SHA256, with no prefix)",
    })?;
    mac.verify_slice(&digest).map_err(|_| WebhookError::BadSignature {
        header: signature_header.to_owned(),
        what_else: if signed_at.is_some() { " or the timestamp" } else { "" },
    })?;
    // Freshness is judged only once the timestamp is known to be the sender's.
    if let Some((ts_header, seconds)) = signed_at {
        check_fresh(ts_header, seconds, now, max_age)?;
    }
    Ok(())
}

fn check_fresh(header: &str, signed_at: i64, now: DateTime<Utc>, max_age: Duration) -> Result<(), WebhookError> {
    let max_age_secs = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    let age = now.timestamp().saturating_sub(signed_at);
    let (age_secs, direction) = if age >= 0 {
        (age, "old")
    } else {
        (age.saturating_neg(), "in the future")
    };
    if age_secs > max_age_secs {
        return Err(WebhookError::StaleTimestamp {
            header: header.to_owned(),
            age_secs,
            max_age_secs,
            direction,
        });
    }
    Ok(())
}

fn verify_pagerduty(secret: &[u8], headers: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> Result<(), WebhookError> {
    let header = PAGERDUTY_SIGNATURE_HEADER;
    let presented = lookup(headers, header).ok_or_else(|| WebhookError::MissingSignature {
        header: header.to_owned(),
        hint: PAGERDUTY_HINT,
    })?;
    let mut mac = keyed(secret);
    mac.update(body);
    let mut candidates = 0usize;
    let mut matched = false;
    for entry in presented.split(',').map(str::trim) {
        // Other versions than v1 may appear in the future; they are skipped, as PagerDuty's docs say.
        let Some(hex_digest) = entry.strip_prefix("v1=") else { continue };
        let Some(digest) = decode_digest(hex_digest) else { continue };
        candidates += 1;
        // Every candidate is checked, whether or not an earlier one matched.
        matched |= mac.clone().verify_slice(&digest).is_ok();
    }
    if candidates == 0 {
        return Err(WebhookError::MalformedSignature {
            header: header.to_owned(),
            reason: "it holds no v1=<64 hex digits> signature (PagerDuty v3 sends v1=<hex>, comma-separated during a \
                     secret rotation)",
        });
    }
    if !matched {
        return Err(WebhookError::BadSignature {
            header: header.to_owned(),
            what_else: "",
        });
    }
    Ok(())
}

fn verify_hub(secret: &[u8], headers: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> Result<(), WebhookError> {
    let header = HUB_SIGNATURE_256_HEADER;
    let presented = lookup(headers, header).ok_or_else(|| WebhookError::MissingSignature {
        header: header.to_owned(),
        hint: HUB_HINT,
    })?;
    let digest = presented
        .strip_prefix("sha256=")
        .and_then(decode_digest)
        .ok_or_else(|| WebhookError::MalformedSignature {
            header: header.to_owned(),
            reason: "it is not sha256=<64 hex digits>",
        })?;
    let mut mac = keyed(secret);
    mac.update(body);
    mac.verify_slice(&digest).map_err(|_| WebhookError::BadSignature {
        header: header.to_owned(),
        what_else: "",
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;

    use super::*;

    const SECRET: &[u8] = b"grafana-hmac-secret-7f3a";
    const BODY: &[u8] = br#"{"version":"1","status":"firing","alerts":[]}"#;
    const MAX_AGE: Duration = Duration::from_secs(300);

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
    }

    /// An independent signer: HMAC-SHA256 of `message` as lower-case hex.
    fn sign(secret: &[u8], message: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Headers as a server hands them: lookup by lower-case name.
    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())).collect();
        move |name: &str| map.get(name).cloned()
    }

    fn grafana_request(secret: &[u8], ts: i64, body: &[u8]) -> (String, String) {
        let ts = ts.to_string();
        let mut message = format!("{ts}:").into_bytes();
        message.extend_from_slice(body);
        (sign(secret, &message), ts)
    }

    fn verify_grafana_default(h: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> Result<(), WebhookError> {
        verify(&SignatureScheme::Grafana, SECRET, h, body, now(), MAX_AGE)
    }

    #[test]
    fn grafana_good_signature_with_timestamp() {
        let (sig, ts) = grafana_request(SECRET, now().timestamp() - 30, BODY);
        let h = headers(&[(GRAFANA_SIGNATURE_HEADER, &sig), (GRAFANA_TIMESTAMP_HEADER, &ts)]);
        verify_grafana_default(&h, BODY).expect("a fresh, correctly signed request verifies");
        // Upper-case hex verifies too.
        let h = headers(&[(GRAFANA_SIGNATURE_HEADER, &sig.to_uppercase()), (GRAFANA_TIMESTAMP_HEADER, &ts)]);
        verify_grafana_default(&h, BODY).unwrap();
    }

    #[test]
    fn grafana_forged_signature_is_refused_without_echoing_it() {
        let (_, ts) = grafana_request(SECRET, now().timestamp(), BODY);
        let (forged, _) = grafana_request(b"attacker-guess", now().timestamp(), BODY);
        let h = headers(&[(GRAFANA_SIGNATURE_HEADER, &forged), (GRAFANA_TIMESTAMP_HEADER, &ts)]);
        let err = verify_grafana_default(&h, BODY).unwrap_err();
        assert!(matches!(err, WebhookError::BadSignature { .. }), "{err:?}");
        assert_eq!(err.status(), 401);
        let text = err.to_string();
        assert!(!text.contains(&forged), "the presented signature must not be echoed: {text}");
        assert!(!text.contains("grafana-hmac-secret"), "the secret must not be echoed: {text}");
        assert!(text.contains(GRAFANA_SIGNATURE_HEADER), "{text}");

        // A valid signature over another body is a forgery of this one.
        let (sig, ts) = grafana_request(SECRET, now().timestamp(), BODY);
        let h = headers(&[(GRAFANA_SIGNATURE_HEADER, &sig), (GRAFANA_TIMESTAMP_HEADER, &ts)]);
        assert!(matches!(
            verify_grafana_default(&h, b"{}").unwrap_err(),
            WebhookError::BadSignature { .. }
        ));
    }

    #[test]
    fn grafana_missing_signature_or_timestamp() {
        let (sig, ts) = grafana_request(SECRET, now().timestamp(), BODY);
        let err = verify_grafana_default(&headers(&[(GRAFANA_TIMESTAMP_HEADER, &ts)]), BODY).unwrap_err();
        assert!(matches!(err, WebhookError::MissingSignature { .. }), "{err:?}");
        assert!(err.to_string().contains("X-Grafana-Alerting-Signature is missing"), "{err}");
        assert_eq!(err.status(), 401);

        let err = verify_grafana_default(&headers(&[(GRAFANA_SIGNATURE_HEADER, &sig)]), BODY).unwrap_err();
        assert!(matches!(err, WebhookError::MissingTimestamp { .. }), "{err:?}");
        assert!(err.to_string().contains("hmacConfig.timestampHeader"), "{err}");
        assert_eq!(err.status(), 401);

        // An empty header is no header.
        let h = headers(&[(GRAFANA_SIGNATURE_HEADER, "  "), (GRAFANA_TIMESTAMP_HEADER, &ts)]);
        assert!(matches!(
            verify_grafana_default(&h, BODY).unwrap_err(),
            WebhookError::MissingSignature { .. }
        ));
    }

    #[test]
    fn grafana_stale_timestamp_is_refused_after_the_signature_checks() {
        let signed_at = now().timestamp() - 301;
        let (sig, ts) = grafana_request(SECRET, signed_at, BODY);
        let h = headers(&[(GRAFANA_SIGNATURE_HEADER, &sig), (GRAFANA_TIMESTAMP_HEADER, &ts)]);
        let err = verify_grafana_default(&h, BODY).unwrap_err();
        match &err {
            WebhookError::StaleTimestamp {
                age_secs,
                max_age_secs,
                direction,
                ..
            } => {
                assert_eq!((*age_secs, *max_age_secs, *direction), (301, 300, "old"));
            }
            other => panic!("expected a stale timestamp, got {other:?}"),
        }
        assert_eq!(err.status(), 401);
        assert!(err.to_string().contains("301 s old"), "{err}");

        // Exactly max_age old still passes; too far in the future does not.
        let (sig, ts) = grafana_request(SECRET, now().timestamp() - 300, BODY);
        verify_grafana_default(&headers(&[(GRAFANA_SIGNATURE_HEADER, &sig), (GRAFANA_TIMESTAMP_HEADER, &ts)]), BODY).unwrap();
        let (sig, ts) = grafana_request(SECRET, now().timestamp() + 600, BODY);
        let err = verify_grafana_default(&headers(&[(GRAFANA_SIGNATURE_HEADER, &sig), (GRAFANA_TIMESTAMP_HEADER, &ts)]), BODY).unwrap_err();
        assert!(err.to_string().contains("600 s in the future"), "{err}");
    }

    #[test]
    fn grafana_tampered_timestamp_breaks_the_signature() {
        // Signed 20 minutes ago; an attacker replays it with a fresh timestamp.
        let (sig, _) = grafana_request(SECRET, now().timestamp() - 1200, BODY);
        let fresh = now().timestamp().to_string();
        let h = headers(&[(GRAFANA_SIGNATURE_HEADER, &sig), (GRAFANA_TIMESTAMP_HEADER, &fresh)]);
        let err = verify_grafana_default(&h, BODY).unwrap_err();
        assert!(matches!(err, WebhookError::BadSignature { .. }), "{err:?}");
        assert!(err.to_string().contains("or the timestamp"), "{err}");

        let h = headers(&[(GRAFANA_SIGNATURE_HEADER, &sig), (GRAFANA_TIMESTAMP_HEADER, "2024-05-01T10:00:00Z")]);
        assert!(matches!(
            verify_grafana_default(&h, BODY).unwrap_err(),
            WebhookError::MalformedTimestamp { .. }
        ));
    }

    #[test]
    fn grafana_malformed_signature_is_401() {
        let (_, ts) = grafana_request(SECRET, now().timestamp(), BODY);
        for bad in ["sha256=abcd", "zz", &"a".repeat(63)] {
            let h = headers(&[(GRAFANA_SIGNATURE_HEADER, bad), (GRAFANA_TIMESTAMP_HEADER, &ts)]);
            let err = verify_grafana_default(&h, BODY).unwrap_err();
            assert!(matches!(err, WebhookError::MalformedSignature { .. }), "{bad}: {err:?}");
            assert_eq!(err.status(), 401);
            assert!(!err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn grafana_custom_headers_and_body_only_signing() {
        let scheme = SignatureScheme::GrafanaCustom {
            signature_header: "X-Lifeboat-Signature".into(),
            timestamp_header: Some("X-Grafana-Alerting-Timestamp".into()),
        };
        let (sig, ts) = grafana_request(SECRET, now().timestamp(), BODY);
        let h = headers(&[("X-Lifeboat-Signature", &sig), ("X-Grafana-Alerting-Timestamp", &ts)]);
        verify(&scheme, SECRET, &h, BODY, now(), MAX_AGE).unwrap();

        let body_only = SignatureScheme::GrafanaCustom {
            signature_header: GRAFANA_SIGNATURE_HEADER.into(),
            timestamp_header: None,
        };
        let h = headers(&[(GRAFANA_SIGNATURE_HEADER, &sign(SECRET, BODY))]);
        verify(&body_only, SECRET, &h, BODY, now(), MAX_AGE).expect("body-only signature verifies");
        // The default scheme refuses the same request: it has no timestamp.
        assert!(matches!(
            verify_grafana_default(&h, BODY).unwrap_err(),
            WebhookError::MissingTimestamp { .. }
        ));
    }

    #[test]
    fn pagerduty_known_answer() {
        // HMAC-SHA256(key "key", "The quick brown fox jumps over the lazy dog"), a published test vector.
        let body = b"The quick brown fox jumps over the lazy dog";
        let h = headers(&[(
            PAGERDUTY_SIGNATURE_HEADER,
            "v1=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
        )]);
        verify(&SignatureScheme::PagerDuty, b"key", &h, body, now(), MAX_AGE).unwrap();
    }

    #[test]
    fn pagerduty_good_signature() {
        let secret = b"pd-subscription-secret";
        let body = br#"{"event":{"id":"01DEN4HPBQAFLWLA5I7RVBKGLM","event_type":"incident.triggered"}}"#;
        let h = headers(&[(PAGERDUTY_SIGNATURE_HEADER, &format!("v1={}", sign(secret, body)))]);
        verify(&SignatureScheme::PagerDuty, secret, &h, body, now(), MAX_AGE).unwrap();
    }

    #[test]
    fn pagerduty_rotation_second_of_two_signatures_valid() {
        let secret = b"pd-new-secret";
        let body = br#"{"event":{"id":"x"}}"#;
        let old = sign(b"pd-old-secret", body);
        let new = sign(secret, body);
        let h = headers(&[(PAGERDUTY_SIGNATURE_HEADER, &format!("v1={old},v1={new}"))]);
        verify(&SignatureScheme::PagerDuty, secret, &h, body, now(), MAX_AGE).expect("the second signature matches");
        // Spaces after commas and unknown versions are tolerated.
        let h = headers(&[(PAGERDUTY_SIGNATURE_HEADER, &format!("v2=abc, v1={old}, v1={new}"))]);
        verify(&SignatureScheme::PagerDuty, secret, &h, body, now(), MAX_AGE).unwrap();
        // With only the old one, the new secret refuses it.
        let h = headers(&[(PAGERDUTY_SIGNATURE_HEADER, &format!("v1={old}"))]);
        assert!(matches!(
            verify(&SignatureScheme::PagerDuty, secret, &h, body, now(), MAX_AGE).unwrap_err(),
            WebhookError::BadSignature { .. }
        ));
    }

    #[test]
    fn pagerduty_forged_and_missing() {
        let secret = b"pd-subscription-secret";
        let body = br#"{"event":{"id":"x"}}"#;
        let forged = format!("v1={}", sign(b"guess", body));
        let h = headers(&[(PAGERDUTY_SIGNATURE_HEADER, &forged)]);
        let err = verify(&SignatureScheme::PagerDuty, secret, &h, body, now(), MAX_AGE).unwrap_err();
        assert!(matches!(err, WebhookError::BadSignature { .. }), "{err:?}");
        assert!(!err.to_string().contains(&forged[3..]), "{err}");
        assert_eq!(err.status(), 401);

        let err = verify(&SignatureScheme::PagerDuty, secret, &headers(&[]), body, now(), MAX_AGE).unwrap_err();
        assert!(matches!(err, WebhookError::MissingSignature { .. }), "{err:?}");
        assert!(err.to_string().contains("X-PagerDuty-Signature is missing"), "{err}");

        let h = headers(&[(PAGERDUTY_SIGNATURE_HEADER, &sign(secret, body))]);
        let err = verify(&SignatureScheme::PagerDuty, secret, &h, body, now(), MAX_AGE).unwrap_err();
        assert!(
            matches!(err, WebhookError::MalformedSignature { .. }),
            "a bare hex without v1= is malformed: {err:?}"
        );
    }

    #[test]
    fn hub_signature_256() {
        let secret = b"hub-secret";
        let h = headers(&[(HUB_SIGNATURE_256_HEADER, &format!("sha256={}", sign(secret, BODY)))]);
        verify(&SignatureScheme::HubSignature256, secret, &h, BODY, now(), MAX_AGE).unwrap();
        let h = headers(&[(HUB_SIGNATURE_256_HEADER, &format!("sha256={}", sign(b"other", BODY)))]);
        let err = verify(&SignatureScheme::HubSignature256, secret, &h, BODY, now(), MAX_AGE).unwrap_err();
        assert!(matches!(err, WebhookError::BadSignature { .. }));
        let h = headers(&[(HUB_SIGNATURE_256_HEADER, &sign(secret, BODY))]);
        let err = verify(&SignatureScheme::HubSignature256, secret, &h, BODY, now(), MAX_AGE).unwrap_err();
        assert!(matches!(err, WebhookError::MalformedSignature { .. }));
    }

    #[test]
    fn an_empty_secret_refuses_everything() {
        let h = headers(&[(PAGERDUTY_SIGNATURE_HEADER, &format!("v1={}", sign(b"", BODY)))]);
        let err = verify(&SignatureScheme::PagerDuty, b"", &h, BODY, now(), MAX_AGE).unwrap_err();
        assert!(matches!(err, WebhookError::NotConfigured { .. }));
        assert_eq!(err.status(), 500);
    }
}

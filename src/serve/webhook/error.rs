//! The one error type of the webhook receiver, and the HTTP status each error answers with.
//!
//! Every message says what is wrong and how to fix it. No message ever carries a secret, nor a
//! signature, token or password that the request presented: only header names, schemes and
//! non-secret facts (a version string, a timestamp's age, a label name).

/// Why an incoming webhook was refused, or why a route could not be used for it.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The body is not JSON of the Alertmanager webhook shape.
    #[error(
        "the webhook body is not a valid Alertmanager webhook payload ({reason}); send the JSON that Alertmanager's \
         webhook_config posts, unchanged"
    )]
    MalformedBody { reason: String },

    /// The payload's `version` is not the one this receiver understands.
    #[error("the webhook payload has version {found}, and this receiver only accepts version \"{expected}\"; {hint}")]
    UnsupportedVersion {
        /// The version as it appeared in the body (already quoted for display), or `no version field`.
        found: String,
        expected: &'static str,
        hint: &'static str,
    },

    /// No secret or expected credential is configured: the receiver cannot authenticate anything.
    #[error("no {what} is configured for this webhook receiver, so every request is refused; configure one")]
    NotConfigured { what: &'static str },

    /// The signature header is absent.
    #[error("the request is not signed: header {header} is missing; {hint}")]
    MissingSignature { header: String, hint: &'static str },

    /// The signature header is present but not of the scheme's form.
    #[error("the signature in header {header} is malformed: {reason}")]
    MalformedSignature { header: String, reason: &'static str },

    /// The signature is well-formed but does not match the body.
    #[error(
        "the signature in header {header} does not match the request: either the shared secret differs from the one \
         the sender signs with, or the body{what_else} was altered on the way (a proxy that re-encodes JSON does \
         that); check the secret on both sides"
    )]
    BadSignature {
        header: String,
        /// Extra signed parts besides the body, e.g. " or the timestamp".
        what_else: &'static str,
    },

    /// The scheme requires a signed timestamp and none was sent.
    #[error("the request carries no signed timestamp: header {header} is missing; {hint}")]
    MissingTimestamp { header: String, hint: &'static str },

    /// The timestamp header is not an integer count of Unix seconds.
    #[error("the timestamp in header {header} is not a whole number of Unix seconds")]
    MalformedTimestamp { header: String },

    /// The signed timestamp is outside the allowed window.
    #[error(
        "the signed timestamp in header {header} is {age_secs} s {direction}, more than the {max_age_secs} s allowed: \
         either the request is a replay, or the sender's clock is off (check NTP on the sender and on this host)"
    )]
    StaleTimestamp {
        header: String,
        age_secs: i64,
        max_age_secs: i64,
        /// "old" or "in the future".
        direction: &'static str,
    },

    /// No `Authorization` header was sent.
    #[error("the request has no Authorization header; {hint}")]
    MissingAuthorization { hint: &'static str },

    /// The `Authorization` header uses another scheme than the one expected.
    #[error("the Authorization header does not use the {expected} scheme this receiver expects; {hint}")]
    WrongAuthScheme { expected: &'static str, hint: &'static str },

    /// The `Authorization` header has the right scheme but cannot be decoded.
    #[error("the {scheme} credentials in the Authorization header are malformed: {reason}")]
    MalformedAuthorization { scheme: &'static str, reason: &'static str },

    /// The credentials were decoded and are wrong.
    #[error("the {scheme} credentials in the Authorization header are wrong; {hint}")]
    BadCredentials { scheme: &'static str, hint: &'static str },

    /// A route matcher does not parse (a configuration error, found when routes are loaded).
    #[error(
        "invalid matcher {text:?}: {reason}; write name=\"value\", name!=\"value\", name=~\"regex\" or \
         name!~\"regex\" (a regex must match the whole value, as in Alertmanager)"
    )]
    InvalidMatcher { text: String, reason: String },

    /// A route's param template refers to a label or annotation the alert does not carry.
    #[error(
        "route {route:?} param {param:?} uses {{{{ {kind}s.{name} }}}}, but the alert (fingerprint {fingerprint}) has \
         no {kind} {name:?}; add the {kind} to the alerting rule, or change the route's template or matchers so this \
         alert does not reach it"
    )]
    MissingTemplateValue {
        route: String,
        param: String,
        /// "label" or "annotation".
        kind: &'static str,
        name: String,
        fingerprint: String,
    },

    /// A route's param template is not of the template syntax.
    #[error(
        "route {route:?} param {param:?} has an invalid template: {reason}; write text with {{{{ labels.NAME }}}}, \
         {{{{ annotations.NAME }}}}, {{{{ fingerprint }}}}, {{{{ startsAt }}}}, {{{{ status }}}} or \
         {{{{ generatorURL }}}} in it"
    )]
    BadTemplate { route: String, param: String, reason: String },
}

impl WebhookError {
    /// The HTTP status the caller should answer with.
    ///
    /// * 400: the body is malformed or of an unsupported version. Alertmanager does not retry a 4xx.
    /// * 401: unsigned, forged or malformed signature; missing, stale or malformed timestamp; missing,
    ///   wrong or malformed credentials.
    /// * 422: the alert is authentic and well-formed, but the route it matched cannot render its params
    ///   for it (the caller refuses the alert and logs the message).
    /// * 500: the receiver itself is misconfigured (no secret, an invalid matcher): no request can fix
    ///   that, and a 5xx makes Alertmanager retry once the configuration is repaired.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::MalformedBody { .. } | WebhookError::UnsupportedVersion { .. } => 400,
            WebhookError::MissingSignature { .. }
            | WebhookError::MalformedSignature { .. }
            | WebhookError::BadSignature { .. }
            | WebhookError::MissingTimestamp { .. }
            | WebhookError::MalformedTimestamp { .. }
            | WebhookError::StaleTimestamp { .. }
            | WebhookError::MissingAuthorization { .. }
            | WebhookError::WrongAuthScheme { .. }
            | WebhookError::MalformedAuthorization { .. }
            | WebhookError::BadCredentials { .. } => 401,
            WebhookError::MissingTemplateValue { .. } | WebhookError::BadTemplate { .. } => 422,
            WebhookError::NotConfigured { .. } | WebhookError::InvalidMatcher { .. } => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_contract() {
        let malformed = WebhookError::MalformedBody { reason: "x".into() };
        assert_eq!(malformed.status(), 400);
        let forged = WebhookError::BadSignature {
            header: "X-Sig".into(),
            what_else: "",
        };
        assert_eq!(forged.status(), 401);
        let stale = WebhookError::StaleTimestamp {
            header: "X-Ts".into(),
            age_secs: 900,
            max_age_secs: 300,
            direction: "old",
        };
        assert_eq!(stale.status(), 401);
        let template = WebhookError::BadTemplate {
            route: "r".into(),
            param: "p".into(),
            reason: "x".into(),
        };
        assert_eq!(template.status(), 422);
        assert_eq!(WebhookError::NotConfigured { what: "secret" }.status(), 500);
    }

    #[test]
    fn template_message_shows_the_braces_literally() {
        let err = WebhookError::MissingTemplateValue {
            route: "db".into(),
            param: "service".into(),
            kind: "label",
            name: "service".into(),
            fingerprint: "abc".into(),
        };
        let text = err.to_string();
        assert!(text.contains("{{ labels.service }}"), "{text}");
        assert!(text.contains("no label \"service\""), "{text}");
    }
}
